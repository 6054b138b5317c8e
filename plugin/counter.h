/*
 * Counts by key (a client address, a user), in a uthash table the caller owns.
 * Gateway thread, like the tables (listen.c's per-address sockets, auth.c's limits).
 */
#ifndef CABLE_COUNTER_H
#define CABLE_COUNTER_H

#include <stddef.h>

#include "gw_hash.h"

/* How many connections share a key (a client address or a user). */
struct counter {
	UT_hash_handle hh;
	size_t n;
	union {
		size_t sub_bytes;  /* auth's per_user: the subscription state of all its connections
		                    */
		size_t handshakes; /* listen's peers: of its n sockets, not yet WebSockets */
	};
	char key[];
};

/* The entry for key, created at zero if there is none; NULL when out of memory. */
struct counter *counter_get(struct counter **table, const char *key);

/* Free an entry whose count is zero. */
void counter_drop(struct counter **table, struct counter *c);

/* Add +1 or -1 to the count of key; the new count (SIZE_MAX when out of memory). */
size_t counter_add(struct counter **table, const char *key, int delta);

/* Free every entry. */
void counter_clear(struct counter **table);

#endif
