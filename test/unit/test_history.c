/* Unit tests for plugin/core/history.c (the history of reliable streams). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_history.h"
#include "test.h"

static const struct cable_history_limits LIM = {5, 1 << 20, 300, 1 << 24};

static uint64_t add(struct cable_history *h, const char *topic, const char *payload, long long now)
{
	uint64_t off = 0;

	ASSERT_OK(cable_history_append(h, topic, strlen(topic), payload, strlen(payload), false,
	                               now, &off));
	return off;
}

/* The offsets a replay would send, as a string "a,b,c". */
static void chain(const struct cable_history_entry *e, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (; e; e = e->next)
		used += (size_t)snprintf(out + used, len - used, "%s%llu", used ? "," : "",
		                         (unsigned long long)e->offset);
}

static void test_offsets_and_replay(void)
{
	struct cable_history *h = cable_history_new(&LIM);
	const struct cable_history_entry *e;
	char buf[128];
	uint64_t o1, o;
	int i;

	o1 = add(h, "a", "1", 100);
	ASSERT_EQ(o1, 1);
	ASSERT_EQ(add(h, "b", "x", 100), 1 + 1); /* a new topic starts above all appends */
	ASSERT_EQ(add(h, "a", "2", 101), 2);
	ASSERT_EQ(add(h, "a", "3", 102), 3);

	ASSERT_OK(cable_history_from_offset(h, "a", 1, 1, &e));
	chain(e, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "2,3");
	ASSERT_STR_EQ(e->payload, "2");
	/* Up to date: nothing, and no error. */
	ASSERT_OK(cable_history_from_offset(h, "a", 1, 3, &e));
	ASSERT_NULL(e);
	/* Ahead of the latest, unknown topic: refused. */
	ASSERT_EQ(cable_history_from_offset(h, "a", 1, 4, &e), CABLE_ENOTFOUND);
	ASSERT_EQ(cable_history_from_offset(h, "zz", 2, 0, &e), CABLE_ENOTFOUND);
	/* By time: from 101 on; an unknown topic gives nothing without an error. */
	ASSERT_OK(cable_history_from_time(h, "a", 1, 101, &e));
	chain(e, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "2,3");
	ASSERT_OK(cable_history_from_time(h, "zz", 2, 1, &e));
	ASSERT_NULL(e);

	/* The per-topic message limit (5): the oldest go, and a gap is refused. */
	for (i = 0; i < 4; i++)
		o = add(h, "a", "n", 103);
	ASSERT_EQ(o, 7);
	ASSERT_EQ(cable_history_from_offset(h, "a", 1, 1, &e), CABLE_ENOTFOUND);
	ASSERT_OK(cable_history_from_offset(h, "a", 1, 2, &e));
	chain(e, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "3,4,5,6,7");
	cable_history_free(h);
}

static void test_age_and_restart_of_offsets(void)
{
	struct cable_history *h = cable_history_new(&LIM);
	const struct cable_history_entry *e;
	struct cable_history_stats st;
	uint64_t last;

	add(h, "a", "1", 100);
	last = add(h, "a", "2", 100);
	cable_history_expire(h, 399);
	cable_history_stats(h, &st);
	ASSERT_EQ(st.entries, 2);
	cable_history_expire(h, 400);
	cable_history_stats(h, &st);
	ASSERT_EQ(st.entries, 0);
	ASSERT_EQ(st.bytes, 0);
	/* Aged out: a position in it cannot be resumed. */
	ASSERT_EQ(cable_history_from_offset(h, "a", 1, last, &e), CABLE_ENOTFOUND);
	/* Offsets keep counting up: an old position never names a new message. */
	ASSERT_GT(add(h, "a", "3", 500), last);
	cable_history_free(h);
}

static void test_byte_limits(void)
{
	struct cable_history_limits lim = {100, 3 * (CABLE_HISTORY_ENTRY_OVERHEAD + 2), 300,
	                                   5 * (CABLE_HISTORY_ENTRY_OVERHEAD + 2)};
	struct cable_history *h = cable_history_new(&lim);
	const struct cable_history_entry *e;
	struct cable_history_stats st;
	char big[4096];
	uint64_t off;

	/* 1-byte payload + 1-byte topic: exactly three fit per topic, five in total. */
	add(h, "a", "1", 1);
	add(h, "a", "2", 1);
	add(h, "a", "3", 1);
	add(h, "a", "4", 1);
	cable_history_stats(h, &st);
	ASSERT_EQ(st.entries, 3);
	add(h, "b", "1", 2);
	add(h, "b", "2", 2);
	add(h, "b", "3", 2); /* the total cap evicts the store's oldest: a's */
	cable_history_stats(h, &st);
	ASSERT_EQ(st.entries, 5);
	ASSERT_LE(st.bytes, lim.total_bytes);
	ASSERT_OK(cable_history_from_time(h, "a", 1, 0, &e));
	ASSERT_STR_EQ(e->payload, "3");
	/* A message over the per-topic bytes alone: not kept, and the topic's older ones go. */
	memset(big, 'x', sizeof(big));
	ASSERT_EQ(cable_history_append(h, "b", 1, big, sizeof(big), false, 3, &off), CABLE_EFULL);
	ASSERT_GT(off, 0);
	ASSERT_EQ(cable_history_from_offset(h, "b", 1, off - 1, &e), CABLE_ENOTFOUND);
	cable_history_free(h);
}

/* A random mix against a model: offsets strictly up by one per topic, limits hold. */
static void test_random(void)
{
	struct cable_history_limits lim = {7, 2000, 50, 6000};
	struct cable_history *h = cable_history_new(&lim);
	const struct cable_history_entry *e;
	struct cable_history_stats st;
	uint64_t last[4] = {0}, off;
	char topic[2] = "t", payload[300];
	long long now = 1000;
	unsigned seed = 7;
	int i, t, rc;

	memset(payload, 'p', sizeof(payload));
	for (i = 0; i < 20000; i++) {
		seed = seed * 1103515245u + 12345u;
		t = (int)((seed >> 16) % 4);
		topic[0] = (char)('a' + t);
		if ((seed >> 8) % 10 == 0)
			now += (seed >> 4) % 20;
		rc = cable_history_append(h, topic, 1, payload, (seed >> 12) % 300, false, now,
		                          &off);
		ASSERT(rc == CABLE_OK || rc == CABLE_EFULL);
		if (last[t])
			ASSERT(off == last[t] + 1 || off > last[t]);
		last[t] = off;
		if (i % 50 == 0)
			cable_history_expire(h, now);
		cable_history_stats(h, &st);
		ASSERT_LE(st.bytes, lim.total_bytes);
		ASSERT_OK(cable_history_from_time(h, topic, 1, 0, &e));
		for (; e && e->next; e = e->next)
			ASSERT_EQ(e->next->offset, e->offset + 1);
	}
	cable_history_free(h);
}

TEST_MAIN(TEST(test_offsets_and_replay), TEST(test_age_and_restart_of_offsets),
          TEST(test_byte_limits), TEST(test_random))
