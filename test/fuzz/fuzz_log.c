/*
 * libFuzzer target for plugin/core/log.c.
 *
 * Input: one byte choosing the buffer size (1..256, or CABLE_LOG_FIELD when it is 0),
 * then the client string. Checked on cable_log_escape's output:
 *   - NUL-terminated within the buffer;
 *   - one line of text: no byte below 0x20, no DEL;
 *   - well-formed UTF-8 (checked here by a separate decoder), with no C1 control,
 *     line/paragraph separator or bidirectional control left raw;
 *   - reversible: unescaping the output gives the input back, or, when cut, a prefix of
 *     it followed by "...(+N bytes)" where N is exactly the rest.
 * The same bytes then drive cable_rate as clock steps: per window no more than
 * `burst` lines pass, and allowed + reported + flushed = lines offered.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_log.h"
#include "fuzz.h"

/* Decode one UTF-8 sequence the long way; 0 if it is not well-formed. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const struct {
		unsigned char lead_lo, lead_hi, second_lo, second_hi;
		size_t len;
	} forms[] = {
	        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2},
	        {0xE0, 0xE0, 0xA0, 0xBF, 3}, {0xE1, 0xEC, 0x80, 0xBF, 3},
	        {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
	        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4},
	        {0xF4, 0xF4, 0x80, 0x8F, 4},
	}; /* RFC 3629 section 4 */
	size_t f, i;

	for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		if (s[0] < forms[f].lead_lo || s[0] > forms[f].lead_hi)
			continue;
		if (n < forms[f].len)
			return 0;
		if (forms[f].len > 1 && (s[1] < forms[f].second_lo || s[1] > forms[f].second_hi))
			return 0;
		for (i = 2; i < forms[f].len; i++)
			if (s[i] < 0x80 || s[i] > 0xBF)
				return 0;
		*cp = forms[f].len == 1   ? s[0]
		      : forms[f].len == 2 ? (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F)
		      : forms[f].len == 3
		              ? (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 |
		                        (s[2] & 0x3F)
		              : (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
		                        (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
		return forms[f].len;
	}
	return 0;
}

static bool line_breaking(uint32_t c)
{
	return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029 || c == 0x200E ||
	       c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

static size_t put_utf8(uint32_t c, unsigned char *o)
{
	if (c < 0x80) {
		o[0] = (unsigned char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (unsigned char)(0xC0 | c >> 6);
		o[1] = (unsigned char)(0x80 | (c & 0x3F));
		return 2;
	}
	o[0] = (unsigned char)(0xE0 | c >> 12);
	o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
	o[2] = (unsigned char)(0x80 | (c & 0x3F));
	return 3;
}

static unsigned hexval(unsigned char c)
{
	CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* Undo the escaping of o[0, len) into back; returns the bytes written. */
static size_t unescape(const unsigned char *o, size_t len, unsigned char *back)
{
	size_t i, b = 0;
	uint32_t c;

	for (i = 0; i < len; i++) {
		if (o[i] != '\\') {
			back[b++] = o[i];
			continue;
		}
		CHECK(i + 1 < len);
		switch (o[++i]) {
		case '\\':
			back[b++] = '\\';
			break;
		case 'n':
			back[b++] = '\n';
			break;
		case 'r':
			back[b++] = '\r';
			break;
		case 't':
			back[b++] = '\t';
			break;
		case 'x':
			CHECK(i + 2 < len);
			back[b++] = (unsigned char)(hexval(o[i + 1]) << 4 | hexval(o[i + 2]));
			i += 2;
			break;
		case 'u':
			CHECK(i + 6 < len && o[i + 1] == '{' && o[i + 6] == '}');
			c = hexval(o[i + 2]) << 12 | hexval(o[i + 3]) << 8 | hexval(o[i + 4]) << 4 |
			    hexval(o[i + 5]);
			CHECK(line_breaking(c));
			b += put_utf8(c, back + b);
			i += 6;
			break;
		default:
			CHECK(false);
		}
	}
	return b;
}

static void check_escape(const unsigned char *in, size_t n, size_t cap)
{
	char *out = malloc(cap);
	unsigned char *back = malloc(n * 4 + 8);
	const unsigned char *o = (const unsigned char *)out;
	const char *marker = NULL;
	size_t len, i, k, b, cut = 0;
	uint32_t c = 0;

	CHECK(out && back);
	CHECK(cable_log_escape(out, cap, (const char *)in, n) == out);
	CHECK(memchr(out, '\0', cap) != NULL);
	len = strlen(out);
	for (i = 0; i < len; i += k) {
		k = decode(o + i, len - i, &c);
		CHECK(k > 0);
		CHECK(!line_breaking(c));
	}
	b = unescape(o, len, back);
	if (b == n && memcmp(back, in, n) == 0)
		goto out; /* shown whole */
	/* Cut: the shown part is a prefix of the input; with room, the marker counts the rest. */
	if (cap >= 32) {
		for (i = 0; i + 5 <= len; i++)
			if (memcmp(out + i, "...(+", 5) == 0)
				marker = out + i;
		CHECK(marker != NULL);
		CHECK(sscanf(marker, "...(+%zu bytes)", &cut) == 1);
		CHECK(out[len - 1] == ')' && strchr(marker, ')') == out + len - 1);
		len = (size_t)(marker - out);
		b = unescape(o, len, back);
		CHECK(b + cut == n);
	}
	CHECK(b < n && memcmp(back, in, b) == 0);
out:
	free(back);
	free(out);
}

static void check_rate(const unsigned char *in, size_t n)
{
	struct cable_rate r = {0};
	uint64_t now = 0, report, window = 0, reported = 0;
	uint32_t burst = n ? in[0] % 8 : 3, in_window = 0;
	size_t i, allowed = 0;
	const uint64_t interval = 100;

	for (i = 1; i < n; i++) {
		now += in[i];
		if (i == 1 || now - window >= interval) {
			window = now;
			in_window = 0;
		}
		if (cable_rate_allow(&r, now, interval, burst, &report)) {
			allowed++;
			reported += report;
			CHECK(++in_window <= burst);
		} else {
			CHECK(report == 0);
		}
	}
	CHECK(allowed + reported + cable_rate_flush(&r) == (n ? n - 1 : 0));
	CHECK(cable_rate_flush(&r) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cap;

	if (size == 0)
		return 0;
	cap = data[0] ? data[0] : CABLE_LOG_FIELD;
	check_escape(data + 1, size - 1, cap);
	if (cap != CABLE_LOG_FIELD)
		check_escape(data + 1, size - 1, CABLE_LOG_FIELD);
	check_rate(data, size);
	return 0;
}
