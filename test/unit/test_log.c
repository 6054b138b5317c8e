/* Escaping client strings for log lines, and per-connection log rate limits. */
#include <string.h>

#include "cable_log.h"
#include "test.h"

static const char *esc(const char *s, size_t len, size_t cap)
{
	static char buf[512];

	ASSERT_LE(cap, sizeof(buf));
	memset(buf, 'Z', sizeof(buf));
	ASSERT(cable_log_escape(buf, cap, s, len) == buf);
	ASSERT_LT(strlen(buf), cap);
	return buf;
}

#define E(lit) esc(lit, sizeof(lit) - 1, CABLE_LOG_FIELD)

static void test_plain_kept(void)
{
	ASSERT_STR_EQ(E("alice"), "alice");
	ASSERT_STR_EQ(E("{\"channel\":\"RoomChannel\",\"id\":42}"),
	              "{\"channel\":\"RoomChannel\",\"id\":42}");
	ASSERT_STR_EQ(E("https://app.example.com:3000"), "https://app.example.com:3000");
	ASSERT_STR_EQ(E(""), "");
	ASSERT_STR_EQ(E("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
	              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	ASSERT_STR_EQ(esc(NULL, 5, 64), "(null)");
}

static void test_controls_escaped(void)
{
	ASSERT_STR_EQ(E("evil\nFORGED"), "evil\\nFORGED");
	ASSERT_STR_EQ(E("a\r\nb\tc"), "a\\r\\nb\\tc");
	ASSERT_STR_EQ(E("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
	ASSERT_STR_EQ(E("nul\0x"), "nul\\x00x");
	ASSERT_STR_EQ(E("\x7f\x01"), "\\x7f\\x01");
	/* The backslash itself, so that an escape in the input cannot pass for ours. */
	ASSERT_STR_EQ(E("a\\nb"), "a\\\\nb");
	/* C1 controls (CSI U+009B, NEL U+0085), line separators and bidi overrides. */
	ASSERT_STR_EQ(E("\xc2\x9b"
	                "31m"),
	              "\\u{009b}31m");
	ASSERT_STR_EQ(E("a\xc2\x85"
	                "b"),
	              "a\\u{0085}b");
	ASSERT_STR_EQ(E("a\xe2\x80\xa8"
	                "b\xe2\x80\xa9"),
	              "a\\u{2028}b\\u{2029}");
	ASSERT_STR_EQ(E("\xe2\x80\xae"
	                "txt.exe\xe2\x81\xa6\xe2\x80\x8f"),
	              "\\u{202e}txt.exe\\u{2066}\\u{200f}");
}

static void test_bad_utf8_escaped(void)
{
	ASSERT_STR_EQ(E("\xff\xfe"), "\\xff\\xfe");
	ASSERT_STR_EQ(E("\xc0\xaf"), "\\xc0\\xaf");                   /* overlong '/' */
	ASSERT_STR_EQ(E("\xe0\x80\x8a"), "\\xe0\\x80\\x8a");          /* overlong '\n' */
	ASSERT_STR_EQ(E("\xed\xa0\x80"), "\\xed\\xa0\\x80");          /* surrogate */
	ASSERT_STR_EQ(E("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); /* beyond U+10FFFF */
	ASSERT_STR_EQ(E("ok\xe2\x82"), "ok\\xe2\\x82");               /* truncated */
	ASSERT_STR_EQ(E("\xc3"
	                "A"),
	              "\\xc3A"); /* resynchronises */
	ASSERT_STR_EQ(E("\x80\n"), "\\x80\\n");
}

static void test_cut_with_marker(void)
{
	char in[1000];
	const char *out;
	size_t i;

	memset(in, 'a', sizeof(in));
	out = esc(in, sizeof(in), CABLE_LOG_FIELD);
	ASSERT_LT(strlen(out), CABLE_LOG_FIELD);
	ASSERT_NOT_NULL(strstr(out, "...(+"));
	/* The count is right: shown + cut = input. */
	{
		size_t shown = (size_t)(strstr(out, "...(+") - out), cut = 0;

		ASSERT_EQ(sscanf(strstr(out, "...(+"), "...(+%zu bytes)", &cut), 1);
		ASSERT_EQ(shown + cut, sizeof(in));
	}
	/* Exactly fitting: no marker. */
	out = esc(in, 63, 64);
	ASSERT_EQ(strlen(out), 63);
	ASSERT_NULL(strstr(out, "..."));
	out = esc(in, 64, 64);
	ASSERT_NOT_NULL(strstr(out, "...(+"));
	/* Never cut inside an escape or a UTF-8 sequence. */
	for (i = 0; i < sizeof(in); i += 2) {
		in[i] = '\n';
		in[i + 1] = 'b';
	}
	out = esc(in, sizeof(in), 64);
	ASSERT_NOT_NULL(strstr(out, "\\nb\\nb"));
	ASSERT_NULL(strstr(out, "\\..."));
	for (i = 0; i + 2 < sizeof(in); i += 3)
		memcpy(in + i, "\xe2\x82\xac", 3);
	out = esc(in, 999, 64);
	ASSERT_NOT_NULL(strstr(out, "\xe2\x82\xac...(+"));
	/* Tiny buffers: cut without a marker, still terminated. */
	ASSERT_STR_EQ(esc("abcdef", 6, 4), "abc");
	ASSERT_STR_EQ(esc("\n\n", 2, 4), "\\n");
	ASSERT_STR_EQ(esc("abc", 3, 1), "");
}

static void test_macros(void)
{
	const char *user = "mallory\r\nNOTICE fake";
	char line[512];

	snprintf(line, sizeof(line), "user %s id %s", CABLE_LOG_STR(user),
	         CABLE_LOG_MEM("x\ny", 3));
	ASSERT_STR_EQ(line, "user mallory\\r\\nNOTICE fake id x\\ny");
	user = NULL;
	ASSERT_STR_EQ(CABLE_LOG_STR(user), "(null)");
}

static void test_lograte(void)
{
	struct cable_rate r = {0};
	uint64_t report = 99, t = 1000;
	int i, allowed = 0;

	for (i = 0; i < 1000; i++) {
		if (cable_rate_allow(&r, t + (uint64_t)i, 60000, 5, &report)) {
			allowed++;
			ASSERT_EQ(report, 0);
		}
	}
	ASSERT_EQ(allowed, 5);
	/* The next window: the first line allowed carries the count of the last one. */
	ASSERT_TRUE(cable_rate_allow(&r, t + 60000, 60000, 5, &report));
	ASSERT_EQ(report, 995);
	ASSERT_TRUE(cable_rate_allow(&r, t + 60001, 60000, 5, &report));
	ASSERT_EQ(report, 0);
	for (i = 0; i < 3; i++)
		ASSERT_TRUE(cable_rate_allow(&r, t + 60002, 60000, 5, &report));
	ASSERT_FALSE(cable_rate_allow(&r, t + 60003, 60000, 5, &report));
	ASSERT_FALSE(cable_rate_allow(&r, t + 60004, 60000, 5, &report));
	/* Going away: what is left is reported once. */
	ASSERT_EQ(cable_rate_flush(&r), 2);
	ASSERT_EQ(cable_rate_flush(&r), 0);
	/* burst 0: nothing, everything counted. */
	memset(&r, 0, sizeof(r));
	ASSERT_FALSE(cable_rate_allow(&r, 0, 10, 0, &report));
	ASSERT_EQ(cable_rate_flush(&r), 1);
}

TEST_MAIN(TEST(test_plain_kept), TEST(test_controls_escaped), TEST(test_bad_utf8_escaped),
          TEST(test_cut_with_marker), TEST(test_macros), TEST(test_lograte))
