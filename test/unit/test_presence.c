/*
 * Unit tests for plugin/core/presence.c: ids counted once over several connections,
 * explicit leave versus a dropped connection lingering until its deadline, a quick
 * return without events, expiry order across rooms, and the frame values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable.h"
#include "cable_presence.h"
#include "test.h"

static int J(struct cable_presence_room *r, uintptr_t conn, const char *id, const char *info,
             enum cable_presence_change *ch)
{
	return cable_presence_join(r, conn, id, strlen(id), info, info ? strlen(info) : 0, ch);
}

#define L(r, conn, id, until, ch) cable_presence_leave(r, conn, id, strlen(id), until, ch)

struct gone_log {
	char ids[8][16];
	void *owners[8];
	size_t n;
};

static void gone(void *owner, const char *id, size_t id_len, void *arg)
{
	struct gone_log *g = arg;

	ASSERT_LT(g->n, 8);
	ASSERT_LT(id_len, 16);
	memcpy(g->ids[g->n], id, id_len);
	g->ids[g->n][id_len] = '\0';
	g->owners[g->n++] = owner;
}

/* Pointers, not values: the call that fills them is an argument of the same call. */
static void check_value(int rc, char **v, size_t *len, const char *want)
{
	ASSERT_OK(rc);
	ASSERT_EQ(*len, strlen(want));
	ASSERT_STR_EQ(*v, want);
	free(*v);
}

static void test_join_counts_ids_once(void)
{
	struct cable_presence *p = cable_presence_new();
	struct cable_presence_room *r = cable_presence_room_new(p, NULL);
	enum cable_presence_change ch;

	ASSERT_OK(J(r, 1, "alice", "{\"n\":1}", &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_JOINED);
	/* A second tab of alice: no event, still one record. */
	ASSERT_OK(J(r, 2, "alice", "{\"n\":2}", &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_SAME);
	/* A repeated join of the same connection updates the info only. */
	ASSERT_OK(J(r, 2, "alice", "{\"n\":3}", &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_SAME);
	ASSERT_OK(J(r, 3, "bob", NULL, &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_JOINED);
	ASSERT_EQ(cable_presence_total(r), 2);

	/* alice's first tab leaves: she is still there (her second tab). */
	ASSERT_OK(L(r, 1, "alice", 0, &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_SAME);
	ASSERT_EQ(cable_presence_total(r), 2);
	/* Leaving twice, or as someone else, is not found and changes nothing. */
	ASSERT_EQ(L(r, 1, "alice", 0, &ch), CABLE_ENOTFOUND);
	ASSERT_EQ(L(r, 2, "bob", 0, &ch), CABLE_ENOTFOUND);
	ASSERT_OK(L(r, 2, "alice", 0, &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_LEFT);
	ASSERT_EQ(cable_presence_total(r), 1);
	ASSERT_EQ(J(r, 4, "", NULL, &ch), CABLE_EINVAL);
	ASSERT_EQ(cable_presence_next_deadline(p), 0);
	cable_presence_room_free(r);
	cable_presence_free(p);
}

static void test_drop_lingers_until_deadline(void)
{
	struct cable_presence *p = cable_presence_new();
	struct cable_presence_room *a = cable_presence_room_new(p, (void *)0xa);
	struct cable_presence_room *b = cable_presence_room_new(p, (void *)0xb);
	enum cable_presence_change ch;
	struct gone_log g = {0};

	ASSERT_OK(J(a, 1, "alice", NULL, &ch));
	ASSERT_OK(J(b, 2, "bob", NULL, &ch));
	ASSERT_OK(J(b, 3, "carol", NULL, &ch));
	/* Dropped connections: records linger, nothing to announce yet. */
	ASSERT_OK(L(a, 1, "alice", 3000, &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_SAME);
	ASSERT_OK(L(b, 3, "carol", 2000, &ch));
	ASSERT_OK(L(b, 2, "bob", 1000, &ch));
	ASSERT_EQ(cable_presence_total(a), 1);
	ASSERT_EQ(cable_presence_total(b), 2);
	ASSERT_EQ(cable_presence_next_deadline(p), 1000);

	/* carol comes back before her deadline: silently present again, out of the heap. */
	ASSERT_OK(J(b, 4, "carol", "{\"back\":true}", &ch));
	ASSERT_EQ(ch, CABLE_PRESENCE_SAME);

	ASSERT_EQ(cable_presence_expire(p, 999, gone, &g), 0);
	ASSERT_EQ(cable_presence_expire(p, 2500, gone, &g), 1);
	ASSERT_STR_EQ(g.ids[0], "bob");
	ASSERT(g.owners[0] == (void *)0xb);
	ASSERT_EQ(cable_presence_total(b), 1);
	ASSERT_EQ(cable_presence_next_deadline(p), 3000);
	ASSERT_EQ(cable_presence_expire(p, 10000, gone, &g), 1);
	ASSERT_STR_EQ(g.ids[1], "alice");
	ASSERT(g.owners[1] == (void *)0xa);
	ASSERT_EQ(cable_presence_total(a), 0);
	ASSERT_EQ(cable_presence_next_deadline(p), 0);

	/* A room freed with a lingering record takes it out of the heap. */
	ASSERT_OK(L(b, 4, "carol", 5000, &ch));
	ASSERT_EQ(cable_presence_next_deadline(p), 5000);
	cable_presence_room_free(b);
	ASSERT_EQ(cable_presence_next_deadline(p), 0);
	cable_presence_room_free(a);
	cable_presence_free(p);
}

static void test_values(void)
{
	struct cable_presence *p = cable_presence_new();
	struct cable_presence_room *r = cable_presence_room_new(p, NULL);
	enum cable_presence_change ch;
	char *v = NULL;
	size_t len = 0;

	check_value(cable_presence_info_value(r, true, &v, &len), &v, &len,
	            "{\"type\":\"info\",\"total\":0}");
	ASSERT_OK(J(r, 1, "alice", "{\"name\":\"Ann\"}", &ch));
	ASSERT_OK(J(r, 2, "b\"o", NULL, &ch));
	check_value(cable_presence_join_value(r, "alice", 5, &v, &len), &v, &len,
	            "{\"type\":\"join\",\"id\":\"alice\",\"info\":{\"name\":\"Ann\"}}");
	check_value(cable_presence_join_value(r, "b\"o", 3, &v, &len), &v, &len,
	            "{\"type\":\"join\",\"id\":\"b\\\"o\"}");
	ASSERT_EQ(cable_presence_join_value(r, "nobody", 6, &v, &len), CABLE_EINVAL);
	check_value(cable_presence_leave_value("alice", 5, &v, &len), &v, &len,
	            "{\"type\":\"leave\",\"id\":\"alice\"}");
	check_value(cable_presence_info_value(r, true, &v, &len), &v, &len,
	            "{\"type\":\"info\",\"total\":2,\"records\":[{\"id\":\"alice\",\"info\":{"
	            "\"name\":\"Ann\"}},{\"id\":\"b\\\"o\"}]}");
	check_value(cable_presence_info_value(r, false, &v, &len), &v, &len,
	            "{\"type\":\"info\",\"total\":2}");
	check_value(cable_presence_error_value(&v, &len), &v, &len, "{\"type\":\"error\"}");
	/* Not UTF-8: no value. */
	ASSERT_EQ(cable_presence_leave_value("\xff", 1, &v, &len), CABLE_EINVAL);
	cable_presence_room_free(r);
	cable_presence_free(p);
}

/* Many ids, joins and drops in a mixed order: expiry comes out in deadline order. */
static void test_many(void)
{
	struct cable_presence *p = cable_presence_new();
	struct cable_presence_room *r = cable_presence_room_new(p, NULL);
	enum cable_presence_change ch;
	char id[16];
	long long last = 0, d;
	size_t i;

	for (i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "u%zu", i);
		ASSERT_OK(J(r, i, id, NULL, &ch));
		ASSERT_EQ(ch, CABLE_PRESENCE_JOINED);
	}
	for (i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "u%zu", i);
		ASSERT_OK(L(r, i, id, 1000 + (long long)((i * 7919) % 500), &ch));
	}
	ASSERT_EQ(cable_presence_total(r), 500);
	while ((d = cable_presence_next_deadline(p)) != 0) {
		struct gone_log g = {0};

		ASSERT_GE(d, last);
		last = d;
		ASSERT_EQ(cable_presence_expire(p, d, gone, &g), 1);
	}
	ASSERT_EQ(cable_presence_total(r), 0);
	cable_presence_room_free(r);
	cable_presence_free(p);
}

TEST_MAIN(TEST(test_join_counts_ids_once), TEST(test_drop_lingers_until_deadline),
          TEST(test_values), TEST(test_many))
