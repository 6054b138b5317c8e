/*
 * libFuzzer target for plugin/core/tree.c, differential against a brute-force matcher.
 *
 * Input: lines, each an operation on one tree and on a shadow list of filters:
 *   "+<filter>"  put (value: the filter's slot in the shadow list)
 *   "-<filter>"  delete
 *   "?<topic>"   match: the tree must report exactly the shadow filters for which
 *                cable_topic_matches(filter, topic) holds, each once
 * Anything else is a match. get and count are checked against the shadow after every
 * operation that changes it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cable.h"
#include "cable_topic.h"
#include "cable_tree.h"
#include "fuzz.h"

#define MAX_FILTERS 64

struct shadow {
	const char *f[MAX_FILTERS + 1]; /* slot 0 unused: values are 1..MAX_FILTERS */
	size_t len[MAX_FILTERS + 1];
	unsigned hits[MAX_FILTERS + 1];
	size_t n;
};

static size_t slot_of(const struct shadow *s, const char *f, size_t len)
{
	size_t i;

	for (i = 1; i <= MAX_FILTERS; i++) {
		if (s->f[i] && s->len[i] == len && memcmp(s->f[i], f, len) == 0)
			return i;
	}
	return 0;
}

static void hit(void *value, void *arg)
{
	struct shadow *s = arg;
	uintptr_t v = (uintptr_t)value;

	CHECK(v >= 1 && v <= MAX_FILTERS && s->f[v] != NULL);
	s->hits[v]++;
}

static void op_put(struct cable_tree *t, struct shadow *s, const char *f, size_t len)
{
	bool valid = cable_topic_filter_valid(f, len);
	size_t slot = slot_of(s, f, len), i;
	int rc;

	if (slot == 0 && valid) {
		for (i = 1; i <= MAX_FILTERS && s->f[i]; i++)
			;
		if (i > MAX_FILTERS)
			return;
		slot = i;
	}
	rc = cable_tree_put(t, f, len, (void *)(uintptr_t)(slot ? slot : 1));
	if (!valid) {
		CHECK(rc == CABLE_EINVAL);
		return;
	}
	if (rc == CABLE_ENOMEM)
		return;
	CHECK(rc == CABLE_OK);
	if (s->f[slot] == NULL) {
		s->f[slot] = f;
		s->len[slot] = len;
		s->n++;
	}
	CHECK((uintptr_t)cable_tree_get(t, f, len) == slot);
}

static void op_del(struct cable_tree *t, struct shadow *s, const char *f, size_t len)
{
	size_t slot = slot_of(s, f, len);
	void *old = cable_tree_del(t, f, len);

	CHECK((uintptr_t)old == slot);
	if (slot) {
		s->f[slot] = NULL;
		s->n--;
	}
	CHECK(cable_tree_get(t, f, len) == NULL);
}

static void op_match(struct cable_tree *t, struct shadow *s, const char *topic, size_t len)
{
	size_t i, calls, want = 0;
	bool m;

	memset(s->hits, 0, sizeof(s->hits));
	calls = cable_tree_match(t, topic, len, hit, s);
	for (i = 1; i <= MAX_FILTERS; i++) {
		m = s->f[i] && cable_topic_name_valid(topic, len) &&
		    cable_topic_matches(s->f[i], s->len[i], topic, len);
		CHECK(s->hits[i] == (m ? 1u : 0u));
		want += m;
	}
	CHECK(calls == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct cable_tree *t = cable_tree_new();
	struct shadow s;

	CHECK(t != NULL);
	memset(&s, 0, sizeof(s));
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl > p && p[0] == '+')
			op_put(t, &s, p + 1, (size_t)(nl - p - 1));
		else if (nl > p && p[0] == '-')
			op_del(t, &s, p + 1, (size_t)(nl - p - 1));
		else if (nl > p)
			op_match(t, &s, p + 1, (size_t)(nl - p - 1));
		CHECK(cable_tree_count(t) == s.n);
		p = nl + 1;
	}
	cable_tree_free(t, NULL);
	return 0;
}
