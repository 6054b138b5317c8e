/*
 * Token expiry: sessions in a min-heap by who.exp (cable_heap.h) and one lws timer for
 * its root, which closes every session whose token has expired. One lws timer per
 * session would cost O(n) each (lws keeps timers in a sorted list), O(n^2) over a storm
 * of new connections. expiry.c alone writes struct gw_expiry. Gateway thread.
 */
#ifndef CABLE_EXPIRY_H
#define CABLE_EXPIRY_H

#include <libwebsockets.h>

#include "cable_heap.h"

struct gw;
struct session;

struct gw_expiry {
	struct cable_heap heap; /* of struct session, by who.exp; slot in s->expiry_slot */
	lws_sorted_usec_list_t sul;
};

void expiry_init(struct gw_expiry *e);

/* Watch s (its who.exp is set); CABLE_ENOMEM when out of memory. */
int expiry_add(struct session *s);

/* Stop watching s (closed); nothing when it is not watched. */
void expiry_remove(struct session *s);

void expiry_release(struct gw_expiry *e);

#endif
