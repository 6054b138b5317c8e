/*
 * Unit tests for plugin/core/topic.c: tables of known answers, plus differential
 * checks against libmosquitto (the broker's own matcher and UTF-8 validator) and a
 * brute-force check of filter containment over a small universe of topics.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>

#include "cable.h"
#include "cable_topic.h"
#include "test.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- helpers ------------------------------------------------------------------------ */

/* splitmix64: a seeded, deterministic generator; the state lives with the caller. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *state, size_t n)
{
	return (size_t)(rng_next(state) % n);
}

/* mosquitto_validate_utf8 as the broker sees it. libmosquitto 2.0.11 can read up to
 * three bytes past a truncated sequence at the end, so pad the copy with NULs (which
 * stop it cleanly) instead of handing it our exact-length buffer. */
static bool mosq_utf8_valid(const unsigned char *s, size_t len)
{
	unsigned char buf[64];

	ASSERT(len + 4 <= sizeof(buf));
	memset(buf, 0, sizeof(buf));
	memcpy(buf, s, len);
	return mosquitto_validate_utf8((const char *)buf, (int)len) == MOSQ_ERR_SUCCESS;
}

/* libmosquitto's answer for a filter/topic pair given as C strings. */
static bool mosq_matches(const char *filter, const char *topic)
{
	bool result = false;
	int rc = mosquitto_topic_matches_sub(filter, topic, &result);

	ASSERT_EQ(rc, MOSQ_ERR_SUCCESS);
	return result;
}

/* Each answer is checked against the variant for validated arguments, too. */
static bool matches(const char *filter, const char *topic)
{
	size_t fl = strlen(filter), tl = strlen(topic);
	bool m = cable_topic_matches(filter, fl, topic, tl);

	if (cable_topic_filter_valid(filter, fl) && cable_topic_name_valid(topic, tl))
		ASSERT_EQ(cable_topic_matches_valid(filter, fl, topic, tl), m);
	return m;
}

static bool within(const char *inner, const char *outer)
{
	size_t il = strlen(inner), ol = strlen(outer);
	bool w = cable_topic_filter_within(inner, il, outer, ol);

	if (cable_topic_filter_valid(inner, il) && cable_topic_filter_valid(outer, ol))
		ASSERT_EQ(cable_topic_filter_within_valid(inner, il, outer, ol), w);
	return w;
}

/* Encode any value up to 0x1FFFFF as 1..4 UTF-8-shaped bytes, surrogates included. */
static size_t encode_cp(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static void test_utf8_table(void)
{
	ASSERT_TRUE(cable_utf8_valid(S("")));
	ASSERT_TRUE(cable_utf8_valid(NULL, 0));
	ASSERT_TRUE(cable_utf8_valid(S("plain/ascii $x + #")));
	ASSERT_TRUE(cable_utf8_valid(S("caf\xc3\xa9")));      /* U+00E9 */
	ASSERT_TRUE(cable_utf8_valid(S("\xe2\x82\xac")));     /* U+20AC euro */
	ASSERT_TRUE(cable_utf8_valid(S("\xf0\x9f\x98\x80"))); /* U+1F600 */
	ASSERT_TRUE(cable_utf8_valid(S("\xf4\x8f\xbf\xbd"))); /* U+10FFFD */
	ASSERT_TRUE(cable_utf8_valid(S("\xc2\xa0")));         /* U+00A0, first after C1 */
	ASSERT_TRUE(cable_utf8_valid(S("\xef\xbf\xbd")));     /* U+FFFD */

	ASSERT_FALSE(cable_utf8_valid("a\0b", 3)); /* U+0000 */
	ASSERT_FALSE(cable_utf8_valid(S("a\nb"))); /* C0 control */
	ASSERT_FALSE(cable_utf8_valid(S("\x1f")));
	ASSERT_FALSE(cable_utf8_valid(S("\x7f")));     /* DEL */
	ASSERT_FALSE(cable_utf8_valid(S("\xc2\x80"))); /* U+0080, C1 control */
	ASSERT_FALSE(cable_utf8_valid(S("\xc2\x9f"))); /* U+009F */
	ASSERT_FALSE(cable_utf8_valid(S("\xc0\xaf"))); /* overlong '/' */
	ASSERT_FALSE(cable_utf8_valid(S("\xc1\xbf")));
	ASSERT_FALSE(cable_utf8_valid(S("\xe0\x80\xaf")));     /* overlong, 3 bytes */
	ASSERT_FALSE(cable_utf8_valid(S("\xf0\x80\x80\xaf"))); /* overlong, 4 bytes */
	ASSERT_FALSE(cable_utf8_valid(S("\xed\xa0\x80")));     /* U+D800 surrogate */
	ASSERT_FALSE(cable_utf8_valid(S("\xed\xbf\xbf")));     /* U+DFFF */
	ASSERT_FALSE(cable_utf8_valid(S("\xf4\x90\x80\x80"))); /* U+110000 */
	ASSERT_FALSE(cable_utf8_valid(S("\xf5\x80\x80\x80")));
	ASSERT_FALSE(cable_utf8_valid(S("\xff")));
	ASSERT_FALSE(cable_utf8_valid(S("\x80"))); /* stray continuation */
	ASSERT_FALSE(cable_utf8_valid(S("\xc3"))); /* truncated */
	ASSERT_FALSE(cable_utf8_valid(S("\xe2\x82")));
	ASSERT_FALSE(cable_utf8_valid(S("\xf0\x9f\x98")));
	ASSERT_FALSE(cable_utf8_valid(S("\xf0\x9f"))); /* mosquitto over-reads */
	ASSERT_FALSE(cable_utf8_valid(S("a\xf0")));
	ASSERT_FALSE(cable_utf8_valid(S("\xc3(")));            /* bad continuation */
	ASSERT_FALSE(cable_utf8_valid(S("\xef\xb7\x90")));     /* U+FDD0 non-character */
	ASSERT_FALSE(cable_utf8_valid(S("\xef\xbf\xbe")));     /* U+FFFE */
	ASSERT_FALSE(cable_utf8_valid(S("\xef\xbf\xbf")));     /* U+FFFF */
	ASSERT_FALSE(cable_utf8_valid(S("\xf0\x9f\xbf\xbf"))); /* U+1FFFF */
	ASSERT_FALSE(cable_utf8_valid(S("\xf4\x8f\xbf\xbf"))); /* U+10FFFF */

	/* Only `len` bytes are read: what follows does not matter. */
	ASSERT_TRUE(cable_utf8_valid("ab\xff", 2));
}

/* Every value from 0 to 0x1FFFFF, encoded in its shortest form, against mosquitto. */
static void test_utf8_every_code_point_vs_mosquitto(void)
{
	unsigned char buf[8];
	uint32_t cp;
	size_t n, valid = 0;

	for (cp = 0; cp <= 0x1FFFFF; cp++) {
		n = encode_cp(cp, buf);
		ASSERT_EQ(cable_utf8_valid((const char *)buf, n), mosq_utf8_valid(buf, n));
		valid += cable_utf8_valid((const char *)buf, n);
	}
	/* 0x110000 values minus 65 controls (U+0000 included), 2048 surrogates and 66
	 * non-characters. */
	ASSERT_EQ(valid, 0x110000 - 65 - 2048 - 66);
}

/* Random short strings over bytes chosen to hit lead, continuation and edge values. */
static void test_utf8_random_vs_mosquitto(void)
{
	static const unsigned char bytes[] = {
	        0x00, 0x01, 0x1f, 0x20, 'a',  '/',  0x7e, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
	        0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
	        0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xfe, 0xff, 0xb7, 0xbe, 0x8e,
	};
	unsigned char buf[16];
	uint64_t rng = 0x7011C0DEull;
	size_t i, j, len, valid = 0;

	for (i = 0; i < 200000; i++) {
		len = rng_below(&rng, 9);
		for (j = 0; j < len; j++)
			buf[j] = bytes[rng_below(&rng, sizeof(bytes))];
		ASSERT_EQ(cable_utf8_valid((const char *)buf, len), mosq_utf8_valid(buf, len));
		valid += cable_utf8_valid((const char *)buf, len);
	}
	ASSERT_GT(valid, 1000); /* the alphabet is not hopeless */
}

/* ---- validation ------------------------------------------------------------------------ */

static void test_name_valid(void)
{
	ASSERT_TRUE(cable_topic_name_valid(S("a")));
	ASSERT_TRUE(cable_topic_name_valid(S("a/b/c")));
	ASSERT_TRUE(cable_topic_name_valid(S("/")));
	ASSERT_TRUE(cable_topic_name_valid(S("//")));
	ASSERT_TRUE(cable_topic_name_valid(S("a//b/")));
	ASSERT_TRUE(cable_topic_name_valid(S("$SYS/broker")));
	ASSERT_TRUE(cable_topic_name_valid(S("cable/s/chat:Z2lk")));
	ASSERT_TRUE(cable_topic_name_valid(S("sensors/caf\xc3\xa9")));

	ASSERT_FALSE(cable_topic_name_valid(S("")));
	ASSERT_FALSE(cable_topic_name_valid(NULL, 0));
	ASSERT_FALSE(cable_topic_name_valid(S("+")));
	ASSERT_FALSE(cable_topic_name_valid(S("#")));
	ASSERT_FALSE(cable_topic_name_valid(S("a/+/b")));
	ASSERT_FALSE(cable_topic_name_valid(S("a/b#")));
	ASSERT_FALSE(cable_topic_name_valid(S("a+b")));
	ASSERT_FALSE(cable_topic_name_valid("a\0b", 3));
	ASSERT_FALSE(cable_topic_name_valid(S("a\xff")));
	ASSERT_FALSE(cable_topic_name_valid(S("a\tb")));

	/* Only len bytes count. */
	ASSERT_TRUE(cable_topic_name_valid("a/b+", 3));
}

static void test_filter_valid(void)
{
	ASSERT_TRUE(cable_topic_filter_valid(S("a")));
	ASSERT_TRUE(cable_topic_filter_valid(S("#")));
	ASSERT_TRUE(cable_topic_filter_valid(S("+")));
	ASSERT_TRUE(cable_topic_filter_valid(S("+/+")));
	ASSERT_TRUE(cable_topic_filter_valid(S("a/+/c")));
	ASSERT_TRUE(cable_topic_filter_valid(S("a/#")));
	ASSERT_TRUE(cable_topic_filter_valid(S("+/#")));
	ASSERT_TRUE(cable_topic_filter_valid(S("/#")));
	ASSERT_TRUE(cable_topic_filter_valid(S("/+/")));
	ASSERT_TRUE(cable_topic_filter_valid(S("$SYS/#")));

	ASSERT_FALSE(cable_topic_filter_valid(S("")));
	ASSERT_FALSE(cable_topic_filter_valid(S("a/#/b")));
	ASSERT_FALSE(cable_topic_filter_valid(S("#/")));
	ASSERT_FALSE(cable_topic_filter_valid(S("##")));
	ASSERT_FALSE(cable_topic_filter_valid(S("a#")));
	ASSERT_FALSE(cable_topic_filter_valid(S("a/b#")));
	ASSERT_FALSE(cable_topic_filter_valid(S("a+")));
	ASSERT_FALSE(cable_topic_filter_valid(S("+a")));
	ASSERT_FALSE(cable_topic_filter_valid(S("a/+b/c")));
	ASSERT_FALSE(cable_topic_filter_valid(S("++")));
	ASSERT_FALSE(cable_topic_filter_valid(S("$#")));
	ASSERT_FALSE(cable_topic_filter_valid("a/\0", 3));
	ASSERT_FALSE(cable_topic_filter_valid(S("a/\xc0\xaf")));

	/* The length bound decides, not a terminator: "a/#" cut before '#' is "a/". */
	ASSERT_TRUE(cable_topic_filter_valid("a/#/b", 3));
}

static void test_length_and_level_limits(void)
{
	static char buf[CABLE_TOPIC_MAX_LEN + 2];
	size_t i, n;

	memset(buf, 'x', sizeof(buf));
	ASSERT_TRUE(cable_topic_name_valid(buf, CABLE_TOPIC_MAX_LEN));
	ASSERT_FALSE(cable_topic_name_valid(buf, CABLE_TOPIC_MAX_LEN + 1));
	ASSERT_TRUE(cable_topic_level_valid(buf, CABLE_TOPIC_MAX_LEN));
	ASSERT_FALSE(cable_topic_level_valid(buf, CABLE_TOPIC_MAX_LEN + 1));
	buf[CABLE_TOPIC_MAX_LEN - 1] = '#';
	buf[CABLE_TOPIC_MAX_LEN - 2] = '/';
	ASSERT_TRUE(cable_topic_filter_valid(buf, CABLE_TOPIC_MAX_LEN));

	/* CABLE_TOPIC_MAX_LEVELS levels "a/a/.../a" are fine; one more is not. */
	n = 0;
	for (i = 0; i < CABLE_TOPIC_MAX_LEVELS; i++) {
		buf[n++] = 'a';
		buf[n++] = '/';
	}
	ASSERT_TRUE(cable_topic_name_valid(buf, n - 1));
	ASSERT_TRUE(cable_topic_filter_valid(buf, n - 1));
	ASSERT_FALSE(cable_topic_name_valid(buf, n + 1)); /* "a/.../a/a": one level more */
	ASSERT_FALSE(cable_topic_name_valid(buf, n));     /* trailing '/': an empty level */
	buf[n] = '#';
	ASSERT_FALSE(cable_topic_filter_valid(buf, n + 1));
}

static void test_has_wildcard(void)
{
	ASSERT_TRUE(cable_topic_has_wildcard(S("#")));
	ASSERT_TRUE(cable_topic_has_wildcard(S("+")));
	ASSERT_TRUE(cable_topic_has_wildcard(S("a/+/c")));
	ASSERT_TRUE(cable_topic_has_wildcard(S("a/#")));
	ASSERT_TRUE(cable_topic_has_wildcard(S("/+")));
	ASSERT_FALSE(cable_topic_has_wildcard(S("a/b/c")));
	ASSERT_FALSE(cable_topic_has_wildcard(S("$SYS/x")));
	ASSERT_FALSE(cable_topic_has_wildcard(S("")));
	ASSERT_FALSE(cable_topic_has_wildcard("a/#", 2));
}

static void test_level_valid(void)
{
	ASSERT_TRUE(cable_topic_level_valid(S("42")));
	ASSERT_TRUE(cable_topic_level_valid(S("alice@example.com")));
	ASSERT_TRUE(cable_topic_level_valid(S("chat:Z2lkOi8vYXBwL1Jvb20vNDI")));
	ASSERT_TRUE(cable_topic_level_valid(S("a$")));
	ASSERT_TRUE(cable_topic_level_valid(S("\xe2\x82\xac")));

	ASSERT_FALSE(cable_topic_level_valid(S("")));
	ASSERT_FALSE(cable_topic_level_valid(NULL, 0));
	ASSERT_FALSE(cable_topic_level_valid(S("a/b")));
	ASSERT_FALSE(cable_topic_level_valid(S("/")));
	ASSERT_FALSE(cable_topic_level_valid(S("+")));
	ASSERT_FALSE(cable_topic_level_valid(S("a+")));
	ASSERT_FALSE(cable_topic_level_valid(S("#")));
	ASSERT_FALSE(cable_topic_level_valid(S("x#")));
	ASSERT_FALSE(cable_topic_level_valid(S("$SYS")));
	ASSERT_FALSE(cable_topic_level_valid(S("$")));
	ASSERT_FALSE(cable_topic_level_valid("a\0b", 3));
	ASSERT_FALSE(cable_topic_level_valid(S("a\nb")));
	ASSERT_FALSE(cable_topic_level_valid(S("\xc3")));
}

/* Validity agrees with libmosquitto's syntax checks plus UTF-8 (its lib versions do
 * not count levels, and accept the empty string; we refuse it). */
static void test_validity_vs_mosquitto(void)
{
	static const char *const parts[] = {"a", "b", "+", "#", "$", "/", "//", "x+", "#a", ""};
	char buf[64];
	uint64_t rng = 42;
	size_t i, j, n, len;
	bool ours, theirs;

	for (i = 0; i < 50000; i++) {
		len = 0;
		n = 1 + rng_below(&rng, 6);
		for (j = 0; j < n; j++) {
			const char *p = parts[rng_below(&rng, CABLE_ARRAY_LEN(parts))];
			memcpy(buf + len, p, strlen(p));
			len += strlen(p);
		}
		buf[len] = '\0';
		ours = cable_topic_filter_valid(buf, len);
		theirs = len > 0 && mosquitto_sub_topic_check2(buf, len) == MOSQ_ERR_SUCCESS;
		ASSERT_EQ(ours, theirs);
		ours = cable_topic_name_valid(buf, len);
		theirs = len > 0 && mosquitto_pub_topic_check2(buf, len) == MOSQ_ERR_SUCCESS;
		ASSERT_EQ(ours, theirs);
	}
}

/* ---- matching ------------------------------------------------------------------------- */

struct match_case {
	const char *filter;
	const char *topic;
	bool match;
};

static void test_matches_table(void)
{
	static const struct match_case cases[] = {
	        {"a", "a", true},
	        {"a", "b", false},
	        {"a", "ab", false},
	        {"ab", "a", false},
	        {"a/b", "a/b", true},
	        {"a/b", "a", false},
	        {"a", "a/b", false},
	        {"+", "a", true},
	        {"+", "a/b", false},
	        {"+", "/", false},
	        {"+/+", "/", true},
	        {"/+", "/", true},
	        {"+/", "a/", true},
	        {"a/+", "a/", true},
	        {"a/+", "a", false},
	        {"a/+/c", "a/b/c", true},
	        {"a/+/c", "a/b/d", false},
	        {"a/+/c", "a//c", true},
	        {"#", "a", true},
	        {"#", "a/b/c", true},
	        {"#", "/", true},
	        {"a/#", "a", true}, /* '#' includes the parent level */
	        {"a/#", "a/", true},
	        {"a/#", "a/b/c", true},
	        {"a/#", "ab", false},
	        {"a/#", "b/a", false},
	        {"/#", "/", true},
	        {"/#", "a", false},
	        {"+/#", "a", true},
	        {"+/#", "/", true},
	        {"a/+/#", "a/b", true},
	        {"a/+/#", "a", false},
	        {"+/+/#", "a", false},
	        {"a/b/#", "a/b", true},
	        {"a/b/#", "a", false},
	        {"#", "$SYS", false},
	        {"#", "$SYS/broker", false},
	        {"+", "$x", false},
	        {"+/b", "$x/b", false},
	        {"$SYS/#", "$SYS", true},
	        {"$SYS/#", "$SYS/broker/load", true},
	        {"$SYS/+", "$SYS/x", true},
	        {"$x", "$x", true},
	        {"a/$x", "a/$x", true},
	        {"+/$x", "a/$x", true},
	        {"caf\xc3\xa9/+", "caf\xc3\xa9/x", true},
	};
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		const struct match_case *c = &cases[i];

		if (matches(c->filter, c->topic) != c->match ||
		    mosq_matches(c->filter, c->topic) != c->match)
			TEST_FAIL_("case %zu: \"%s\" vs \"%s\": expected %d, ours %d, mosquitto %d",
			           i, c->filter, c->topic, c->match, matches(c->filter, c->topic),
			           mosq_matches(c->filter, c->topic));
	}

	/* Invalid inputs never match. */
	ASSERT_FALSE(matches("a/#/b", "a/x/b"));
	ASSERT_FALSE(matches("a+", "a+"));
	ASSERT_FALSE(matches("#", "a/+"));
	ASSERT_FALSE(matches("#", ""));
	ASSERT_FALSE(matches("", ""));
	ASSERT_FALSE(cable_topic_matches("a", 1, "a\0", 2));
	ASSERT_FALSE(cable_topic_matches("#", 1, "\xff", 1));
	/* Lengths, not terminators, bound the inputs. */
	ASSERT_TRUE(cable_topic_matches("a/b/c", 3, "a/bxyz", 3));
}

/* Build "l1/l2/..." from 1..maxlv random levels of the alphabet. */
static size_t random_topic(uint64_t *rng, const char *const *alpha, size_t nalpha, size_t maxlv,
                           char *buf)
{
	size_t i, n = 1 + rng_below(rng, maxlv), len = 0;

	for (i = 0; i < n; i++) {
		const char *lv = alpha[rng_below(rng, nalpha)];

		if (i > 0)
			buf[len++] = '/';
		memcpy(buf + len, lv, strlen(lv));
		len += strlen(lv);
	}
	buf[len] = '\0';
	return len;
}

/* Differential test against libmosquitto's matcher over a small alphabet of levels. */
static void test_matches_random_vs_mosquitto(void)
{
	static const char *const alpha[] = {"a", "b", "+", "#", "$x", ""};
	char filter[64], topic[64];
	uint64_t rng = 0xCAB1E;
	size_t i, fl, tl, compared = 0, matched = 0;
	bool ours;

	for (i = 0; i < 20000; i++) {
		fl = random_topic(&rng, alpha, CABLE_ARRAY_LEN(alpha), 4, filter);
		tl = random_topic(&rng, alpha, CABLE_ARRAY_LEN(alpha), 4, topic);
		ours = cable_topic_matches(filter, fl, topic, tl);
		if (!cable_topic_filter_valid(filter, fl) || !cable_topic_name_valid(topic, tl)) {
			ASSERT_FALSE(ours);
			continue;
		}
		if (ours != mosq_matches(filter, topic))
			TEST_FAIL_("\"%s\" vs \"%s\": ours %d, mosquitto %d", filter, topic, ours,
			           !ours);
		compared++;
		matched += ours;
	}
	/* The alphabet must exercise both answers, or the test proves little. */
	ASSERT_GT(compared, 3000);
	ASSERT_GT(matched, 300);
}

/* ---- containment ------------------------------------------------------------------------ */

static void test_filter_within_table(void)
{
	ASSERT_TRUE(within("a/+/c", "a/#"));
	ASSERT_FALSE(within("a/#", "a/+/c"));
	ASSERT_TRUE(within("a/b", "a/b"));
	ASSERT_TRUE(within("a/b", "a/+"));
	ASSERT_FALSE(within("a/+", "a/b"));
	ASSERT_TRUE(within("a/+", "a/+"));
	ASSERT_TRUE(within("a", "a/#"));
	ASSERT_TRUE(within("a/#", "a/#"));
	ASSERT_TRUE(within("a/b/#", "a/#"));
	ASSERT_FALSE(within("a/#", "a/b/#"));
	ASSERT_FALSE(within("a/#", "a/+/#")); /* "a" itself */
	ASSERT_TRUE(within("a/+/#", "a/#"));
	ASSERT_FALSE(within("a/#", "a/+")); /* "a/b/c" */
	ASSERT_FALSE(within("a/+", "a"));
	ASSERT_FALSE(within("a", "a/+"));
	ASSERT_TRUE(within("#", "#"));
	ASSERT_TRUE(within("+/+", "#"));
	ASSERT_TRUE(within("a/b/c", "#"));
	ASSERT_FALSE(within("$SYS/#", "#")); /* '#' never matches '$' topics */
	ASSERT_FALSE(within("$x", "+"));
	ASSERT_TRUE(within("$SYS/x", "$SYS/#"));
	ASSERT_TRUE(within("$SYS/+", "$SYS/+"));
	ASSERT_TRUE(within("+", "#"));
	/* Equal sets: no topic has zero levels, so "+/#" also matches every non-'$' topic. */
	ASSERT_TRUE(within("#", "+/#"));
	ASSERT_TRUE(within("+/#", "#"));
	ASSERT_FALSE(within("#", "+/+/#"));
	ASSERT_FALSE(within("a/#", "a/+/#"));
	/* The same after one empty level: "/#" cannot stop at "", which is no topic
	 * (found by fuzz_topic, corpus/topic/within-empty-level-hash). */
	ASSERT_TRUE(within("/#", "/+/#"));
	ASSERT_TRUE(within("/+/#", "/#"));
	ASSERT_TRUE(within("/#", "+/+/#"));
	ASSERT_FALSE(within("/#", "/"));
	ASSERT_FALSE(within("/#", "/+"));
	ASSERT_FALSE(within("//#", "//+/#"));
	ASSERT_FALSE(within("a/#/b", "#")); /* invalid inner */
	ASSERT_FALSE(within("a", "a/#/b")); /* invalid outer */
	ASSERT_FALSE(within("", "#"));
}

/* All topics of 1..4 levels over `alpha`, for the brute-force containment check. */
struct universe {
	char topics[1600][16];
	size_t lens[1600];
	size_t n;
};

static void universe_fill(struct universe *u, const char *const *alpha, size_t nalpha, size_t lv,
                          char *prefix, size_t plen)
{
	size_t i, len;

	for (i = 0; i < nalpha; i++) {
		len = plen;
		if (lv > 0)
			prefix[len++] = '/';
		memcpy(prefix + len, alpha[i], strlen(alpha[i]));
		len += strlen(alpha[i]);
		if (cable_topic_name_valid(prefix, len)) {
			ASSERT_LT(u->n, CABLE_ARRAY_LEN(u->topics));
			memcpy(u->topics[u->n], prefix, len);
			u->lens[u->n++] = len;
		}
		if (lv + 1 < 4)
			universe_fill(u, alpha, nalpha, lv + 1, prefix, len);
	}
}

/*
 * filter_within(inner, outer) must equal "every topic inner matches, outer matches".
 * Filters have at most 3 levels over {a, b, +, #, $x, ""}; topics up to 4 levels over
 * those literals plus fresh values ("c", "$y"), enough to witness any difference.
 */
static void test_filter_within_brute_force(void)
{
	static const char *const falpha[] = {"a", "b", "+", "#", "$x", ""};
	static const char *const talpha[] = {"a", "b", "c", "$x", "$y", ""};
	static struct universe u;
	char inner[64], outer[64], prefix[64];
	uint64_t rng = 7;
	size_t i, k, il, ol, yes = 0, no = 0;
	bool expect, got;

	u.n = 0;
	universe_fill(&u, talpha, CABLE_ARRAY_LEN(talpha), 0, prefix, 0);
	ASSERT_GT(u.n, 1000);

	for (i = 0; i < 4000; i++) {
		il = random_topic(&rng, falpha, CABLE_ARRAY_LEN(falpha), 3, inner);
		ol = random_topic(&rng, falpha, CABLE_ARRAY_LEN(falpha), 3, outer);
		/* Often compare a filter with a close variant, or containment is rare. */
		if (i % 3 == 0)
			ol = (size_t)snprintf(outer, sizeof(outer), "%s/#", inner);
		got = cable_topic_filter_within(inner, il, outer, ol);
		if (!cable_topic_filter_valid(inner, il) || !cable_topic_filter_valid(outer, ol)) {
			ASSERT_FALSE(got);
			continue;
		}
		expect = true;
		for (k = 0; k < u.n && expect; k++) {
			if (cable_topic_matches(inner, il, u.topics[k], u.lens[k]) &&
			    !cable_topic_matches(outer, ol, u.topics[k], u.lens[k]))
				expect = false;
		}
		if (got != expect)
			TEST_FAIL_("within(\"%s\", \"%s\"): got %d, brute force %d", inner, outer,
			           got, expect);
		if (got)
			yes++;
		else
			no++;
		ASSERT_TRUE(cable_topic_filter_within(inner, il, inner, il));
	}
	ASSERT_GT(yes, 300);
	ASSERT_GT(no, 300);
}

/* A topic name is a filter without wildcards; it lies within F exactly when F matches it. */
static void test_within_agrees_with_matches(void)
{
	static const char *const alpha[] = {"a", "b", "+", "#", "$x", ""};
	char f[64], t[64];
	uint64_t rng = 99;
	size_t i, fl, tl;

	for (i = 0; i < 20000; i++) {
		fl = random_topic(&rng, alpha, CABLE_ARRAY_LEN(alpha), 4, f);
		tl = random_topic(&rng, alpha, CABLE_ARRAY_LEN(alpha), 4, t);
		if (!cable_topic_name_valid(t, tl))
			continue;
		ASSERT_EQ(cable_topic_filter_within(t, tl, f, fl),
		          cable_topic_matches(f, fl, t, tl));
	}
}

TEST_MAIN(TEST(test_utf8_table), TEST(test_utf8_every_code_point_vs_mosquitto),
          TEST(test_utf8_random_vs_mosquitto), TEST(test_name_valid), TEST(test_filter_valid),
          TEST(test_length_and_level_limits), TEST(test_has_wildcard), TEST(test_level_valid),
          TEST(test_validity_vs_mosquitto), TEST(test_matches_table),
          TEST(test_matches_random_vs_mosquitto), TEST(test_filter_within_table),
          TEST(test_filter_within_brute_force), TEST(test_within_agrees_with_matches))
