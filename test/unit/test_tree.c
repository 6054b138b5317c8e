/*
 * Unit tests for plugin/core/tree.c: known answers, and a differential check against
 * a brute-force matcher (every filter tried with cable_topic_matches, itself checked
 * against libmosquitto in test_topic.c) on random filters and topics, through inserts
 * and deletes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cable.h"
#include "cable_topic.h"
#include "cable_tree.h"
#include "test.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Records which values a match reported: values are small integers cast to pointers. */
#define MAX_VALUES 512

struct seen {
	unsigned hits[MAX_VALUES];
	size_t calls;
};

static void record(void *value, void *arg)
{
	struct seen *s = arg;
	uintptr_t v = (uintptr_t)value;

	ASSERT(v > 0 && v < MAX_VALUES);
	s->hits[v]++;
	s->calls++;
}

static struct seen match(const struct cable_tree *t, const char *topic)
{
	struct seen s;
	size_t n;

	memset(&s, 0, sizeof(s));
	n = cable_tree_match(t, topic, strlen(topic), record, &s);
	ASSERT_EQ(n, s.calls);
	return s;
}

static void put(struct cable_tree *t, const char *filter, uintptr_t v)
{
	ASSERT_EQ(cable_tree_put(t, filter, strlen(filter), (void *)v), CABLE_OK);
}

static void test_known_answers(void)
{
	static const char *filters[] = {
	        NULL,     "a/b/c", "a/+/c", "a/#", "#",     "+",    "+/#", "a/b",
	        "$SYS/#", "/+",    "a//c",  "+/+", "a/b/#", "$SYS", "",    "a/+",
	};
	static const struct {
		const char *topic;
		const char *expect; /* the indexes of matching filters, as characters */
	} cases[] = {
	        {"a/b/c", "\x01\x02\x03\x04\x06\x0c"},
	        {"a", "\x03\x04\x05\x06"},
	        {"a/b", "\x03\x04\x06\x07\x0b\x0c\x0f"},
	        {"$SYS/x", "\x08"},
	        {"$SYS", "\x08\x0d"},
	        {"/x", "\x04\x06\x09\x0b"},
	        {"a//c", "\x02\x03\x04\x06\x0a"},
	        {"b", "\x04\x05\x06"},
	};
	struct cable_tree *t = cable_tree_new();
	size_t i, k;

	ASSERT(t != NULL);
	for (i = 1; i < sizeof(filters) / sizeof(filters[0]); i++) {
		if (filters[i][0] == '\0') {
			/* The empty filter is invalid, and so is a NULL value. */
			ASSERT_EQ(cable_tree_put(t, "", 0, (void *)i), CABLE_EINVAL);
			continue;
		}
		put(t, filters[i], i);
	}
	ASSERT_EQ(cable_tree_put(t, S("a/b"), NULL), CABLE_EINVAL);
	ASSERT_EQ(cable_tree_put(t, S("a/#/b"), (void *)1), CABLE_EINVAL);
	ASSERT_EQ(cable_tree_count(t), 14);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen s = match(t, cases[i].topic);
		size_t want = strlen(cases[i].expect);

		for (k = 0; k < want; k++)
			ASSERT_EQ(s.hits[(unsigned char)cases[i].expect[k]], 1);
		if (s.calls != want)
			TEST_FAIL_("topic %s: %zu matches, want %zu", cases[i].topic, s.calls,
			           want);
	}
	/* Invalid topics match nothing. */
	ASSERT_EQ(match(t, "a/+").calls, 0);
	ASSERT_EQ(match(t, "").calls, 0);
	cable_tree_free(t, NULL);
}

static void test_put_get_del(void)
{
	struct cable_tree *t = cable_tree_new();

	put(t, "a/+/c", 1);
	put(t, "a/+/c", 2); /* replaces */
	ASSERT_EQ(cable_tree_count(t), 1);
	ASSERT_EQ((uintptr_t)cable_tree_get(t, S("a/+/c")), 2);
	ASSERT(cable_tree_get(t, S("a/+")) == NULL);
	ASSERT(cable_tree_get(t, S("a/x/c")) == NULL); /* get does not match */
	put(t, "a/#", 3);
	ASSERT(cable_tree_del(t, S("a/+/x")) == NULL);
	ASSERT_EQ((uintptr_t)cable_tree_del(t, S("a/+/c")), 2);
	ASSERT(cable_tree_del(t, S("a/+/c")) == NULL);
	ASSERT_EQ(cable_tree_count(t), 1);
	ASSERT_EQ(match(t, "a/x/c").calls, 1);
	ASSERT_EQ((uintptr_t)cable_tree_del(t, S("a/#")), 3);
	ASSERT_EQ(cable_tree_count(t), 0);
	ASSERT_EQ(match(t, "a/x/c").calls, 0);
	/* Emptied nodes are gone (ASan's leak check covers the rest); the tree still works. */
	put(t, "a/b", 4);
	ASSERT_EQ(match(t, "a/b").hits[4], 1);
	cable_tree_free(t, NULL);
	cable_tree_free(NULL, NULL);
}

static size_t freed;

static void count_free(void *value)
{
	ASSERT(value != NULL);
	freed++;
}

/* cable_tree_free hands every value, '#' slots included, to free_value once. */
static void test_free_values(void)
{
	struct cable_tree *t = cable_tree_new();

	put(t, "a/+/c", 1);
	put(t, "a/#", 2);
	put(t, "#", 3);
	put(t, "a", 4);
	put(t, "+/b/#", 5);
	freed = 0;
	cable_tree_free(t, count_free);
	ASSERT_EQ(freed, 5);
}

/* splitmix64, seeded: deterministic. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A random topic (wild = false) or filter over a small alphabet, so that they collide. */
static void random_topic(uint64_t *rng, char *out, size_t cap, bool wild)
{
	static const char *levels[] = {"a", "b", "", "$s", "ab"};
	size_t n = 1 + rng_next(rng) % 4, i, len = 0;
	const char *lvl;

	for (i = 0; i < n; i++) {
		uint64_t r = rng_next(rng) % 8;

		if (wild && r == 6)
			lvl = "+";
		else if (wild && r == 7 && i == n - 1)
			lvl = "#";
		else
			lvl = levels[r % 5];
		ASSERT(len + strlen(lvl) + 2 < cap);
		if (i > 0)
			out[len++] = '/';
		memcpy(out + len, lvl, strlen(lvl));
		len += strlen(lvl);
	}
	out[len] = '\0';
}

static void test_against_brute_force(void)
{
	static char filters[MAX_VALUES][32];
	bool present[MAX_VALUES] = {false};
	struct cable_tree *t = cable_tree_new();
	uint64_t rng = 42;
	size_t round, i, want, count = 0;
	char topic[32];

	for (round = 0; round < 20000; round++) {
		uintptr_t v = 1 + rng_next(&rng) % (MAX_VALUES - 1);

		/* Insert or delete a random filter under value v (one filter per value). */
		if (present[v]) {
			ASSERT_EQ((uintptr_t)cable_tree_del(t, filters[v], strlen(filters[v])), v);
			present[v] = false;
			count--;
		} else {
			random_topic(&rng, filters[v], sizeof(filters[v]), true);
			if (!cable_topic_filter_valid(filters[v], strlen(filters[v])))
				continue;
			if (cable_tree_get(t, filters[v], strlen(filters[v])) != NULL)
				continue; /* another value holds this filter */
			put(t, filters[v], v);
			present[v] = true;
			count++;
		}
		ASSERT_EQ(cable_tree_count(t), count);
		random_topic(&rng, topic, sizeof(topic), false);
		struct seen s = match(t, topic);
		want = 0;
		for (i = 1; i < MAX_VALUES; i++) {
			bool m = present[i] && cable_topic_matches(filters[i], strlen(filters[i]),
			                                           topic, strlen(topic));
			if (s.hits[i] != (m ? 1u : 0u))
				TEST_FAIL_("topic '%s' filter '%s': tree %u, brute force %d", topic,
				           filters[i], s.hits[i], m);
			want += m;
		}
		ASSERT_EQ(s.calls, want);
	}
	cable_tree_free(t, NULL);
}

/* Many filters that do not match cost nothing: a match visits only matching branches. */
static void test_many_filters(void)
{
	struct cable_tree *t = cable_tree_new();
	char f[64];
	uintptr_t i;

	for (i = 1; i < 20000; i++) {
		snprintf(f, sizeof(f), "sites/%lu/sensors/#", (unsigned long)i);
		ASSERT_EQ(cable_tree_put(t, f, strlen(f), (void *)(i % (MAX_VALUES - 1) + 1)),
		          CABLE_OK);
	}
	ASSERT_EQ(cable_tree_count(t), 19999);
	ASSERT_EQ(match(t, "sites/777/sensors/t").calls, 1);
	ASSERT_EQ(match(t, "sites/20000/sensors/t").calls, 0);
	for (i = 1; i < 20000; i += 2) {
		snprintf(f, sizeof(f), "sites/%lu/sensors/#", (unsigned long)i);
		ASSERT(cable_tree_del(t, f, strlen(f)) != NULL);
	}
	ASSERT_EQ(match(t, "sites/777/sensors/t").calls, 0);
	ASSERT_EQ(match(t, "sites/778/sensors").calls, 1);
	cable_tree_free(t, NULL);
}

TEST_MAIN(TEST(test_known_answers), TEST(test_put_get_del), TEST(test_free_values),
          TEST(test_against_brute_force), TEST(test_many_filters))
