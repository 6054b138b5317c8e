/*
 * The last-value cache: set, replace, clear with an empty payload, wildcard visits,
 * and both limits (a refused value never leaves a stale one behind).
 */
#include <stdio.h>
#include <string.h>

#include "cable.h"
#include "cable_retained.h"
#include "test.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void count(const struct cable_retained_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
}

static size_t matches(struct cable_retained *r, const char *filter)
{
	size_t n = 0;

	cable_retained_each(r, filter, strlen(filter), count, &n);
	return n;
}

static void test_set_replace_clear(void)
{
	struct cable_retained *r = cable_retained_new(10, 1 << 20);
	const struct cable_retained_entry *e;
	struct cable_retained_stats st;

	ASSERT_NOT_NULL(r);
	ASSERT_OK(cable_retained_apply(r, S("a/1"), S("one"), 1));
	ASSERT_OK(cable_retained_apply(r, S("a/1"), S("uno"), 0));
	e = cable_retained_get(r, S("a/1"));
	ASSERT_NOT_NULL(e);
	ASSERT_STR_EQ(e->payload, "uno");
	ASSERT_STR_EQ(e->topic, "a/1");
	ASSERT_EQ(e->qos, 0);
	ASSERT_OK(cable_retained_apply(r, S("a/2"), S("two"), 0));
	ASSERT_OK(cable_retained_apply(r, S("b"), S("bee"), 0));
	ASSERT_EQ(matches(r, "a/+"), 2);
	ASSERT_EQ(matches(r, "#"), 3);
	ASSERT_EQ(matches(r, "a/2"), 1);
	ASSERT_EQ(matches(r, "a/3"), 0);
	ASSERT_OK(cable_retained_apply(r, S("a/1"), "", 0, 0)); /* cleared */
	ASSERT_NULL(cable_retained_get(r, S("a/1")));
	ASSERT_EQ(matches(r, "a/#"), 1);
	cable_retained_stats(r, &st);
	ASSERT_EQ(st.entries, 2);
	ASSERT_EQ(st.bytes, 2 * cable_retained_overhead() + strlen("a/2two") + strlen("bbee"));
	ASSERT_EQ(st.refused, 0);
	cable_retained_clear(r);
	cable_retained_stats(r, &st);
	ASSERT_EQ(st.entries, 0);
	ASSERT_EQ(st.bytes, 0);
	cable_retained_free(r);
}

static void test_entry_limit(void)
{
	struct cable_retained *r = cable_retained_new(2, 1 << 20);
	struct cable_retained_stats st;

	ASSERT_OK(cable_retained_apply(r, S("t/1"), S("x"), 0));
	ASSERT_OK(cable_retained_apply(r, S("t/2"), S("x"), 0));
	ASSERT_EQ(cable_retained_apply(r, S("t/3"), S("x"), 0), CABLE_EFULL);
	ASSERT_NULL(cable_retained_get(r, S("t/3")));
	ASSERT_OK(cable_retained_apply(r, S("t/2"), S("y"), 0)); /* replacing still works */
	ASSERT_OK(cable_retained_apply(r, S("t/1"), "", 0, 0));
	ASSERT_OK(cable_retained_apply(r, S("t/3"), S("x"), 0)); /* room again */
	cable_retained_stats(r, &st);
	ASSERT_EQ(st.entries, 2);
	ASSERT_EQ(st.refused, 1);
	cable_retained_free(r);
}

static void test_byte_limit(void)
{
	size_t one = cable_retained_overhead() + 3 + 10;
	struct cable_retained *r = cable_retained_new(100, 2 * one);
	char big[64];

	memset(big, 'b', sizeof(big));
	ASSERT_OK(cable_retained_apply(r, S("t/1"), big, 10, 0));
	ASSERT_OK(cable_retained_apply(r, S("t/2"), big, 10, 0));
	ASSERT_EQ(cable_retained_apply(r, S("t/3"), big, 10, 0), CABLE_EFULL);
	/* t/1 grows beyond the limit: its old value goes, no stale answer stays. */
	ASSERT_EQ(cable_retained_apply(r, S("t/1"), big, 11, 0), CABLE_EFULL);
	ASSERT_NULL(cable_retained_get(r, S("t/1")));
	ASSERT_NOT_NULL(cable_retained_get(r, S("t/2")));
	ASSERT_EQ(cable_retained_apply(r, S("t/4"), big, sizeof(big), 0), CABLE_EFULL);
	cable_retained_free(r);
	ASSERT_NULL(cable_retained_new(0, 1));
}

static void test_many(void)
{
	struct cable_retained *r = cable_retained_new(100000, 64u << 20);
	char topic[32];
	struct cable_retained_stats st;

	for (int i = 0; i < 20000; i++) {
		snprintf(topic, sizeof(topic), "d/%d/state", i);
		ASSERT_OK(cable_retained_apply(r, topic, strlen(topic), topic, strlen(topic), 0));
	}
	for (int i = 0; i < 20000; i += 2) {
		snprintf(topic, sizeof(topic), "d/%d/state", i);
		ASSERT_OK(cable_retained_apply(r, topic, strlen(topic), "", 0, 0));
	}
	cable_retained_stats(r, &st);
	ASSERT_EQ(st.entries, 10000);
	ASSERT_EQ(matches(r, "d/+/state"), 10000);
	ASSERT_EQ(matches(r, "d/7/state"), 1);
	ASSERT_EQ(matches(r, "d/8/state"), 0);
	cable_retained_free(r);
}

TEST_MAIN(TEST(test_set_replace_clear), TEST(test_entry_limit), TEST(test_byte_limit),
          TEST(test_many))
