/*
 * MQTT topic names and filters: validation and matching. Pure; any thread; see
 * cable_topic.h.
 *
 * DESIGN: a topic is a sequence of levels separated by '/' (n slashes give n + 1
 * levels, empty levels included). Matching and containment walk the levels of both
 * inputs in step with a small cursor, so no input is copied or NUL-terminated. The
 * rules are Mosquitto 2.0's (lib/util_topic.c and lib/utf8_mosq.c), checked against
 * libmosquitto by test/unit/test_topic.c and test/fuzz/fuzz_topic.c.
 */
#include <stdint.h>
#include <string.h>

#include "cable_topic.h"

void cable_topic_cursor_init(struct cable_topic_cursor *c, const char *s, size_t len)
{
	c->s = s;
	c->len = len;
	c->pos = 0;
	c->more = true;
}

bool cable_topic_cursor_next(struct cable_topic_cursor *c, const char **lvl, size_t *n)
{
	const char *slash;

	if (!c->more)
		return false;
	*lvl = c->s + c->pos;
	slash = memchr(*lvl, '/', c->len - c->pos);
	if (slash == NULL) {
		*n = c->len - c->pos;
		c->more = false;
	} else {
		*n = (size_t)(slash - *lvl);
		c->pos += *n + 1;
	}
	return true;
}

static bool level_is(const char *lvl, size_t n, char c)
{
	return n == 1 && lvl[0] == c;
}

static bool level_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

bool cable_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, j;
	uint32_t cp;
	unsigned char c;

	if (s == NULL)
		return len == 0;
	while (i < len) {
		c = u[i];
		if (c < 0x80) {
			/* U+0000 and the C0 controls, and DEL (the first of U+007F..U+009F). */
			if (c <= 0x1F || c == 0x7F)
				return false;
			i++;
			continue;
		}
		/* 0x80..0xBF are stray continuation bytes; 0xC0/0xC1 only start overlong
		 * two-byte forms; 0xF5.. would encode code points above U+10FFFF. */
		if (c >= 0xC2 && c <= 0xDF) {
			n = 2;
			cp = c & 0x1Fu;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 3;
			cp = c & 0x0Fu;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 4;
			cp = c & 0x07u;
		} else {
			return false;
		}
		/* Mosquitto 2.0.11 checks truncation with `i == len-codelen+1` and so reads
		 * past the end for some truncated tails; compare the remaining length. */
		if (len - i < n)
			return false;
		for (j = 1; j < n; j++) {
			if ((u[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (u[i + j] & 0x3Fu);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
			return false; /* overlong or out of range */
		if (cp >= 0xD800 && cp <= 0xDFFF)
			return false; /* UTF-16 surrogate halves */
		/* Non-characters: Mosquitto rejects them too, and the broker would refuse a
		 * topic that contains one, so accepting it here would only fail later. */
		if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu)
			return false;
		if (cp <= 0x9F)
			return false; /* C1 controls U+0080..U+009F */
		i += n;
	}
	return true;
}

/*
 * Shared syntax check for names and filters. Wildcards are judged by their
 * neighbours: '+' must fill its whole level, '#' too and must be the last byte.
 */
static bool topic_valid(const char *s, size_t len, bool filter)
{
	size_t i, levels = 1;

	if (s == NULL || len == 0 || len > CABLE_TOPIC_MAX_LEN)
		return false;
	if (!cable_utf8_valid(s, len))
		return false;
	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '/':
			if (++levels > CABLE_TOPIC_MAX_LEVELS)
				return false;
			break;
		case '+':
			if (!filter)
				return false;
			if ((i > 0 && s[i - 1] != '/') || (i + 1 < len && s[i + 1] != '/'))
				return false;
			break;
		case '#':
			if (!filter)
				return false;
			if ((i > 0 && s[i - 1] != '/') || i + 1 != len)
				return false;
			break;
		default:
			break;
		}
	}
	return true;
}

bool cable_topic_name_valid(const char *s, size_t len)
{
	return topic_valid(s, len, false);
}

bool cable_topic_filter_valid(const char *s, size_t len)
{
	return topic_valid(s, len, true);
}

bool cable_topic_has_wildcard(const char *s, size_t len)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] != '+' && s[i] != '#')
			continue;
		/* Only a whole level is a wildcard ("a+b" is not, though it is invalid). */
		if ((i == 0 || s[i - 1] == '/') && (i + 1 == len || s[i + 1] == '/'))
			return true;
	}
	return false;
}

/* A filter whose first level is a wildcard never matches a topic that starts with '$'. */
static bool leading_wildcard(const char *filter)
{
	return filter[0] == '+' || filter[0] == '#';
}

bool cable_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	return cable_topic_filter_valid(filter, flen) && cable_topic_name_valid(topic, tlen) &&
	       cable_topic_matches_valid(filter, flen, topic, tlen);
}

bool cable_topic_matches_valid(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	struct cable_topic_cursor f, t;
	const char *fl, *tl;
	size_t fn, tn;

	if (flen == 0 || tlen == 0)
		return false;
	if (topic[0] == '$' && leading_wildcard(filter))
		return false;
	cable_topic_cursor_init(&f, filter, flen);
	cable_topic_cursor_init(&t, topic, tlen);
	for (;;) {
		if (!cable_topic_cursor_next(&f, &fl, &fn))
			return !cable_topic_cursor_next(&t, &tl, &tn); /* both used up: match */
		/* '#' is last and matches zero or more levels: "a/#" matches "a". */
		if (level_is(fl, fn, '#'))
			return true;
		if (!cable_topic_cursor_next(&t, &tl, &tn))
			return false;
		if (level_is(fl, fn, '+'))
			continue; /* any single level, the empty one included */
		if (!level_eq(fl, fn, tl, tn))
			return false;
	}
}

/*
 * The set of topics a filter matches is a product of per-level sets (plus the '$'
 * rule on the first level and the length rule of '#'), and every valid filter
 * matches at least one topic, so containment can be decided level by level.
 */
bool cable_topic_filter_within(const char *inner, size_t ilen, const char *outer, size_t olen)
{
	return cable_topic_filter_valid(inner, ilen) && cable_topic_filter_valid(outer, olen) &&
	       cable_topic_filter_within_valid(inner, ilen, outer, olen);
}

bool cable_topic_filter_within_valid(const char *inner, size_t ilen, const char *outer, size_t olen)
{
	struct cable_topic_cursor o, i;
	const char *ol, *il;
	size_t on, in, levels = 0;
	bool first_empty = false;

	if (ilen == 0 || olen == 0)
		return false;
	/* An outer leading wildcard excludes '$' topics; an inner literal "$..." first
	 * level matches only such topics. (An inner leading wildcard excludes them too.) */
	if (leading_wildcard(outer) && inner[0] == '$')
		return false;
	cable_topic_cursor_init(&o, outer, olen);
	cable_topic_cursor_init(&i, inner, ilen);
	for (;;) {
		if (!cable_topic_cursor_next(&o, &ol, &on))
			return !cable_topic_cursor_next(&i, &il,
			                                &in); /* inner must not be longer */
		if (level_is(ol, on, '#'))
			return true; /* anything from here on, zero levels included */
		if (!cable_topic_cursor_next(&i, &il, &in))
			return false; /* outer needs one more level, inner stops here */
		if (level_is(il, in, '#')) {
			/*
			 * Inner allows stopping before this level or going on; outer (not '#'
			 * here) does not allow both. Except where stopping makes no topic: after
			 * no level, or after one empty level (the empty string is not a topic).
			 * There "#" and "+/#" match the same topics ("#" and "+/#"; "/#" and
			 * "/+/#"), so outer may go on with exactly "+/#".
			 */
			return (levels == 0 || (levels == 1 && first_empty)) &&
			       (size_t)(outer + olen - ol) == 3 && memcmp(ol, "+/#", 3) == 0;
		}
		if (levels++ == 0)
			first_empty = in == 0;
		if (level_is(ol, on, '+'))
			continue; /* covers a literal or '+' on the inner side */
		if (level_is(il, in, '+'))
			return false; /* outer pins a literal, inner allows any value */
		if (!level_eq(il, in, ol, on))
			return false;
	}
}

bool cable_topic_level_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > CABLE_TOPIC_MAX_LEN)
		return false;
	/* A leading '$' would let a substituted value reach $SYS-style topics. */
	if (s[0] == '$')
		return false;
	if (memchr(s, '/', len) || memchr(s, '+', len) || memchr(s, '#', len))
		return false;
	return cable_utf8_valid(s, len);
}
