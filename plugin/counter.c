/*
 * Counts by key in a uthash table the caller owns (counter.h): listen.c's sockets per
 * client address, auth.c's connections per address and per user. Gateway thread.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
/* The entry for key, created at zero if there is none; NULL when out of memory. */
struct counter *counter_get(struct counter **table, const char *key)
{
	struct counter *c;
	size_t len = strlen(key);
	bool added;

	HASH_FIND(hh, *table, key, len, c);
	if (c)
		return c;
	c = calloc(1, sizeof(*c) + len + 1);
	if (c == NULL)
		return NULL;
	memcpy(c->key, key, len + 1);
	GW_HASH_ADD(*table, c->key, len, c, added);
	if (!added) {
		free(c);
		return NULL;
	}
	return c;
}

/* Free an entry whose count is zero. */
void counter_drop(struct counter **table, struct counter *c)
{
	if (c->n == 0) {
		HASH_DELETE(hh, *table, c);
		free(c);
	}
}

/* Entries at zero are freed. */
size_t counter_add(struct counter **table, const char *key, int delta)
{
	struct counter *c;
	size_t n;

	if (delta < 0) {
		HASH_FIND(hh, *table, key, strlen(key), c);
		if (c == NULL)
			return 0;
	} else if ((c = counter_get(table, key)) == NULL) {
		return SIZE_MAX; /* out of memory counts as over the limit */
	}
	c->n = delta < 0 ? c->n - 1 : c->n + 1;
	n = c->n;
	counter_drop(table, c);
	return n;
}

void counter_clear(struct counter **table)
{
	struct counter *c, *tmp;

	HASH_ITER(hh, *table, c, tmp)
	{
		HASH_DELETE(hh, *table, c);
		free(c);
	}
}
