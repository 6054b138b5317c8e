/* Escaping for log lines and per-source log rate limits; see cable_log.h. Pure. */
#include <stdio.h>
#include <string.h>

#include "cable_log.h"

#define MARKER_MIN_CAP 32

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if there is none.
 * *cp receives the code point. Well-formed as RFC 3629: shortest form, no surrogates,
 * at most U+10FFFF.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2, c = s[0] & 0x1Fu, min = 0x80;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3, c = s[0] & 0x0Fu, min = 0x800;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4, c = s[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3Fu);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* Code points that must not reach a log line as they are. */
static int hidden(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9F) || c == 0x2028 || c == 0x2029 || c == 0x200E ||
	       c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * The escaped form of the character at s into unit (at least 12 bytes); returns its
 * length, and *used the input bytes it stands for.
 */
static size_t escape_one(const unsigned char *s, size_t n, char *unit, size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t c = 0;
	size_t len = utf8_seq(s, n, &c);

	*used = len ? len : 1;
	if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7F))) {
		if (len == 1 && (c == '\n' || c == '\r' || c == '\t')) {
			unit[0] = '\\';
			unit[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			return 2;
		}
		unit[0] = '\\';
		unit[1] = 'x';
		unit[2] = hex[s[0] >> 4];
		unit[3] = hex[s[0] & 15];
		return 4;
	}
	if (len == 1 && c == '\\') {
		unit[0] = unit[1] = '\\';
		return 2;
	}
	if (hidden(c))
		return (size_t)snprintf(unit, 12, "\\u{%04x}", (unsigned)c);
	memcpy(unit, s, len);
	return len;
}

static size_t digits(size_t v)
{
	size_t d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

char *cable_log_escape(char *out, size_t cap, const char *s, size_t len)
{
	const unsigned char *in = (const unsigned char *)s;
	char unit[12];
	size_t i, o = 0, u, used, total = 0, room, reserve;

	if (cap == 0)
		return out;
	if (s == NULL) {
		snprintf(out, cap, "(null)");
		return out;
	}
	/* Does all of it fit? */
	for (i = 0; i < len && total < cap; i += used)
		total += escape_one(in + i, len - i, unit, &used);
	if (i >= len && total < cap) {
		room = cap - 1;
		reserve = 0;
	} else {
		/* "...(+N bytes)": N is at most len. */
		reserve = cap >= MARKER_MIN_CAP ? strlen("...(+ bytes)") + digits(len) : 0;
		room = cap - 1 - reserve;
	}
	for (i = 0; i < len; i += used) {
		u = escape_one(in + i, len - i, unit, &used);
		if (o + u > room)
			break;
		memcpy(out + o, unit, u);
		o += u;
	}
	if (i < len && reserve > 0)
		o += (size_t)snprintf(out + o, cap - o, "...(+%zu bytes)", len - i);
	out[o] = '\0';
	return out;
}

bool cable_rate_allow(struct cable_rate *r, uint64_t now, uint64_t interval, uint32_t burst,
                      uint64_t *report)
{
	if (report != NULL)
		*report = 0;
	if (!r->started || now - r->window_start >= interval) {
		r->started = true;
		r->window_start = now;
		r->logged = 0;
	}
	if (r->logged >= burst) {
		r->suppressed++;
		return false;
	}
	r->logged++;
	if (report != NULL) {
		*report = r->suppressed;
		r->suppressed = 0;
	}
	return true;
}

uint64_t cable_rate_flush(struct cable_rate *r)
{
	uint64_t n = r->suppressed;

	r->suppressed = 0;
	return n;
}
