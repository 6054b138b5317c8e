/*
 * The topic tree (cable_tree.h). Pure.
 *
 * A node per filter level. Exact children are kept in an array sorted by level, so a
 * node with many children (one per site, per user) costs a pointer per child and a
 * binary search; '+' has its own child pointer, and a filter that ends in '#' is just a
 * value slot on the node of the level before it: "a/#" is node "a", slot `hash`.
 * Nodes that hold nothing are removed as soon as they empty.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cable.h"
#include "cable_topic.h"
#include "cable_tree.h"

struct node {
	struct node *parent;
	struct node **kids; /* exact levels, sorted by level_cmp */
	size_t nkids, cap;
	struct node *plus; /* the '+' child */
	void *value;       /* the filter that ends at this node */
	void *hash;        /* the filter that ends at this node's "/#" ("#" at the root) */
	size_t len;
	char level[];
};

struct cable_tree {
	size_t count;
	struct node root; /* last: struct node ends in a flexible array (empty here) */
};

struct cable_tree *cable_tree_new(void)
{
	return calloc(1, sizeof(struct cable_tree));
}

/* Free what n holds: its values (with free_value, if any) and its children. */
static void node_clear(struct node *n, void (*free_value)(void *value))
{
	size_t i;

	if (free_value && n->value)
		free_value(n->value);
	if (free_value && n->hash)
		free_value(n->hash);
	for (i = 0; i < n->nkids; i++) {
		node_clear(n->kids[i], free_value);
		free(n->kids[i]);
	}
	free(n->kids);
	if (n->plus) {
		node_clear(n->plus, free_value);
		free(n->plus);
	}
}

void cable_tree_free(struct cable_tree *t, void (*free_value)(void *value))
{
	if (t == NULL)
		return;
	node_clear(&t->root, free_value);
	free(t);
}

size_t cable_tree_count(const struct cable_tree *t)
{
	return t->count;
}

static int level_cmp(const struct node *n, const char *lvl, size_t len)
{
	int c = memcmp(n->level, lvl, n->len < len ? n->len : len);

	if (c != 0)
		return c;
	return n->len < len ? -1 : n->len > len;
}

/* Index of the child with this level, or of where it would go; *found says which. */
static size_t kid_index(const struct node *n, const char *lvl, size_t len, bool *found)
{
	size_t lo = 0, hi = n->nkids, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = level_cmp(n->kids[mid], lvl, len);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static bool is_level(const char *lvl, size_t len, char c)
{
	return len == 1 && lvl[0] == c;
}

static struct node *child(const struct node *n, const char *lvl, size_t len)
{
	bool found;
	size_t i;

	if (is_level(lvl, len, '+'))
		return n->plus;
	i = kid_index(n, lvl, len, &found);
	return found ? n->kids[i] : NULL;
}

static struct node *child_add(struct node *n, const char *lvl, size_t len)
{
	struct node *c, **grown;
	bool found;
	size_t i;

	c = child(n, lvl, len);
	if (c)
		return c;
	c = calloc(1, sizeof(*c) + len);
	if (c == NULL)
		return NULL;
	c->parent = n;
	c->len = len;
	memcpy(c->level, lvl, len);
	if (is_level(lvl, len, '+')) {
		n->plus = c;
		return c;
	}
	grown = cable_grow(n->kids, n->nkids, &n->cap, sizeof(*grown), 2);
	if (grown == NULL) {
		free(c);
		return NULL;
	}
	n->kids = grown;
	i = kid_index(n, lvl, len, &found);
	memmove(&n->kids[i + 1], &n->kids[i], (n->nkids - i) * sizeof(*n->kids));
	n->kids[i] = c;
	n->nkids++;
	return c;
}

/* Remove empty nodes from n up towards the root. */
static void prune(struct node *n)
{
	struct node *p;
	bool found;
	size_t i;

	while (n->parent && !n->value && !n->hash && !n->plus && n->nkids == 0) {
		p = n->parent;
		if (p->plus == n) {
			p->plus = NULL;
		} else {
			i = kid_index(p, n->level, n->len, &found);
			memmove(&p->kids[i], &p->kids[i + 1],
			        (p->nkids - i - 1) * sizeof(*p->kids));
			p->nkids--;
		}
		free(n->kids);
		free(n);
		n = p;
	}
}

/*
 * The value slot of `filter` (which must be valid), creating nodes when `create`; NULL
 * when a node is missing (or cannot be made). *last is the deepest node reached.
 */
static void **slot_of(struct node *root, const char *filter, size_t len, bool create,
                      struct node **last)
{
	struct cable_topic_cursor c;
	struct node *n = root, *next;
	const char *lvl;
	size_t n_len;

	cable_topic_cursor_init(&c, filter, len);
	while (cable_topic_cursor_next(&c, &lvl, &n_len)) {
		if (is_level(lvl, n_len, '#')) {
			*last = n;
			return &n->hash; /* '#' is always the last level of a valid filter */
		}
		next = create ? child_add(n, lvl, n_len) : child(n, lvl, n_len);
		*last = n;
		if (next == NULL)
			return NULL;
		n = next;
	}
	*last = n;
	return &n->value;
}

int cable_tree_put(struct cable_tree *t, const char *filter, size_t len, void *value)
{
	struct node *last;
	void **slot;

	if (value == NULL || !cable_topic_filter_valid(filter, len))
		return CABLE_EINVAL;
	slot = slot_of(&t->root, filter, len, true, &last);
	if (slot == NULL) {
		prune(last);
		return CABLE_ENOMEM;
	}
	if (*slot == NULL)
		t->count++;
	*slot = value;
	return CABLE_OK;
}

void *cable_tree_get(const struct cable_tree *t, const char *filter, size_t len)
{
	struct node *last;
	void **slot;

	if (!cable_topic_filter_valid(filter, len))
		return NULL;
	/* slot_of without `create` changes nothing; the cast only shares the walk. */
	slot = slot_of((struct node *)&t->root, filter, len, false, &last);
	return slot ? *slot : NULL;
}

void *cable_tree_del(struct cable_tree *t, const char *filter, size_t len)
{
	struct node *last;
	void **slot, *old;

	if (!cable_topic_filter_valid(filter, len))
		return NULL;
	slot = slot_of(&t->root, filter, len, false, &last);
	if (slot == NULL || *slot == NULL)
		return NULL;
	old = *slot;
	*slot = NULL;
	t->count--;
	prune(last);
	return old;
}

struct match {
	void (*fn)(void *value, void *arg);
	void *arg;
	size_t calls;
};

/* The filters below n that match the rest of the topic in c; wild: '+' and '#' may match. */
static void walk(const struct node *n, struct cable_topic_cursor c, bool wild, struct match *m)
{
	const struct node *next;
	const char *lvl;
	size_t len;

	if (n->hash && wild) {
		m->fn(n->hash, m->arg);
		m->calls++;
	}
	if (!cable_topic_cursor_next(&c, &lvl, &len)) {
		if (n->value) {
			m->fn(n->value, m->arg);
			m->calls++;
		}
		return;
	}
	next = child(n, lvl, len);
	if (next)
		walk(next, c, true, m);
	if (n->plus && wild)
		walk(n->plus, c, true, m);
}

size_t cable_tree_match(const struct cable_tree *t, const char *topic, size_t len,
                        void (*fn)(void *value, void *arg), void *arg)
{
	struct cable_topic_cursor c;
	struct match m = {fn, arg, 0};

	if (!cable_topic_name_valid(topic, len))
		return 0;
	cable_topic_cursor_init(&c, topic, len);
	/* A wildcard in the first level never matches a topic that starts with '$'. */
	walk(&t->root, c, topic[0] != '$', &m);
	return m.calls;
}
