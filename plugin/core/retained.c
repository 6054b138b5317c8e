/*
 * The last-value cache (see include/cable_retained.h): a hash of topics.
 */
#include <stdlib.h>
#include <string.h>

/* A failed allocation inside uthash leaves the element out instead of exit()ing. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "cable_retained.h"
#include "cable_topic.h"

struct node {
	UT_hash_handle hh;
	struct cable_retained_entry e;
	char data[]; /* topic NUL payload NUL */
};

struct cable_retained {
	struct node *nodes;
	size_t max_entries, max_bytes;
	size_t entries, bytes;
	uint64_t refused;
};

size_t cable_retained_overhead(void)
{
	/* The node, two NULs and uthash's share of its bucket array. */
	return sizeof(struct node) + 2 + 2 * sizeof(void *);
}

static size_t node_cost(size_t topic_len, size_t payload_len)
{
	return cable_retained_overhead() + topic_len + payload_len;
}

struct cable_retained *cable_retained_new(size_t max_entries, size_t max_bytes)
{
	struct cable_retained *r;

	if (max_entries == 0 || max_bytes == 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->max_entries = max_entries;
	r->max_bytes = max_bytes;
	return r;
}

static void remove_node(struct cable_retained *r, struct node *n)
{
	HASH_DELETE(hh, r->nodes, n);
	r->entries--;
	r->bytes -= node_cost(n->e.topic_len, n->e.payload_len);
	free(n);
}

void cable_retained_clear(struct cable_retained *r)
{
	struct node *n, *tmp;

	HASH_ITER(hh, r->nodes, n, tmp)
	{
		remove_node(r, n);
	}
}

void cable_retained_free(struct cable_retained *r)
{
	if (r == NULL)
		return;
	cable_retained_clear(r);
	free(r);
}

static struct node *find(const struct cable_retained *r, const char *topic, size_t topic_len)
{
	struct node *n;

	HASH_FIND(hh, r->nodes, topic, topic_len, n);
	return n;
}

int cable_retained_apply(struct cable_retained *r, const char *topic, size_t topic_len,
                         const void *payload, size_t payload_len, uint8_t qos)
{
	struct node *old = find(r, topic, topic_len), *n;
	size_t cost = node_cost(topic_len, payload_len);
	size_t entries = r->entries - (old != NULL);
	size_t bytes = r->bytes - (old ? node_cost(old->e.topic_len, old->e.payload_len) : 0);

	if (old)
		remove_node(r, old);
	if (payload_len == 0)
		return CABLE_OK;
	if (entries + 1 > r->max_entries || cost > r->max_bytes || bytes > r->max_bytes - cost) {
		r->refused++;
		return CABLE_EFULL;
	}
	n = malloc(sizeof(*n) + topic_len + payload_len + 2);
	if (n == NULL) {
		r->refused++;
		return CABLE_ENOMEM;
	}
	memset(&n->hh, 0, sizeof(n->hh));
	memcpy(n->data, topic, topic_len);
	n->data[topic_len] = '\0';
	memcpy(n->data + topic_len + 1, payload, payload_len);
	n->data[topic_len + 1 + payload_len] = '\0';
	n->e.topic = n->data;
	n->e.topic_len = topic_len;
	n->e.payload = n->data + topic_len + 1;
	n->e.payload_len = payload_len;
	n->e.qos = qos;
	HASH_ADD_KEYPTR(hh, r->nodes, n->e.topic, topic_len, n);
	if (r->nodes == NULL) {
		/* uthash could not allocate (HASH_NONFATAL_OOM): the node is not in. */
		free(n);
		r->refused++;
		return CABLE_ENOMEM;
	}
	r->entries++;
	r->bytes += cost;
	return CABLE_OK;
}

const struct cable_retained_entry *cable_retained_get(const struct cable_retained *r,
                                                      const char *topic, size_t topic_len)
{
	struct node *n = find(r, topic, topic_len);

	return n ? &n->e : NULL;
}

void cable_retained_each(const struct cable_retained *r, const char *filter, size_t filter_len,
                         void (*fn)(const struct cable_retained_entry *e, void *arg), void *arg)
{
	struct node *n, *tmp;

	if (!cable_topic_has_wildcard(filter, filter_len)) {
		n = find(r, filter, filter_len);
		if (n)
			fn(&n->e, arg);
		return;
	}
	HASH_ITER(hh, r->nodes, n, tmp)
	{
		if (cable_topic_matches(filter, filter_len, n->e.topic, n->e.topic_len))
			fn(&n->e, arg);
	}
}

void cable_retained_stats(const struct cable_retained *r, struct cable_retained_stats *out)
{
	out->entries = r->entries;
	out->bytes = r->bytes;
	out->refused = r->refused;
}
