/*
 * The subscription index and fan-out (fanout.c, which alone writes struct gw_index).
 * Gateway thread.
 *
 * The index sees a subscriber only as a struct index_entry: an identifier, how it
 * wants messages, and an owner pointer that it hands back to two callbacks (may_read,
 * deliver). It knows nothing about sessions, so nothing here includes their headers.
 *
 * Ownership:
 *   struct gw_index --owns--> routes (one per distinct stream topic/filter), in `exact`
 *                             (hash by topic) or `wild` (a topic tree of filters with + or #)
 *                   --owns--> idents (interned identifier strings, reference counted)
 *   struct index_entry --refers to--> its ident and the routes of its streams; each route
 *                   holds a pointer back to the entry at links[i].slot.
 */
#ifndef CABLE_FANOUT_H
#define CABLE_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable_chanmap.h"
#include "cable_frame.h"
#include "cable_queue.h"
#include "cable_tree.h"
#include "gw_hash.h"

#define LATENCY_BUCKETS 12

/* An identifier string, interned: one copy and one JSON encoding per distinct string. */
struct ident {
	UT_hash_handle hh;
	size_t refs;
	char *raw; /* as the client sent it */
	size_t raw_len;
	char *json; /* the same as a JSON string literal, encoded once */
	size_t json_len;
	uint64_t seq;                  /* message whose frame is cached below */
	struct cable_frame *frame;     /* {"identifier":...,"message":...} for message `seq` */
	struct cable_frame *frame_ext; /* the same with stream_id, epoch, offset (ext.c) */
};

/* Everything subscribed to one stream topic or filter. */
struct route {
	UT_hash_handle hh; /* in exact (topics); filters with wildcards are in wild */
	bool wildcard;
	/*
	 * Ext entries on this route (n_ext): while there are some, its filter is in the
	 * shards' shared interest (index_ops.interest, `tracked` when that worked), so
	 * shard 0 records its topics' history.
	 */
	uint32_t n_ext;
	bool tracked;
	struct index_entry **entries; /* unordered; entries[i]->links[..].slot == i */
	size_t n, cap;
	size_t len;
	char filter[];
};

struct index_link {
	struct route *route;
	size_t slot;
};

/* A subscriber as the index sees it. */
struct index_entry {
	struct ident *ident;
	enum cable_deliver deliver;
	/*
	 * The ACL allows some but not all topics under a stream filter (PARTIAL): the
	 * index asks may_read for each message.
	 */
	bool check_each;
	bool ext;     /* wants the extended protocol's frames (counted in its routes' n_ext) */
	uint64_t seq; /* last message delivered: a message matching two streams goes once */
	/*
	 * Deliver only messages sequenced after this one (cable_msg.seq > since): what a
	 * replay of a snapshot (last values, history) already covered. 0: everything.
	 */
	uint64_t since;
	size_t nlinks;
	struct index_link *links;
	void *owner; /* handed to the callbacks */
};

struct gw_index {
	struct route *exact;
	struct cable_tree *wild; /* NULL until the first wildcard route */
	struct ident *idents;
	uint64_t seq;
	uint64_t last_seq;      /* cable_msg.seq of the last message dispatched */
	struct ident **touched; /* idents whose frame cache the current dispatch filled */
	size_t ntouched, touched_cap;
	struct route **matched; /* routes of the message being dispatched */
	size_t matched_cap;
	const struct index_ops *ops;
	void *ctx;               /* ops' context (the gateway) */
	uint64_t broadcasts;     /* MQTT messages dispatched to the index */
	uint64_t deliveries;     /* frames queued for browsers by broadcasts */
	uint64_t binary_skipped; /* non-text payloads a "message" channel cannot carry */
	/* Broker receipt -> frames queued on every receiver, in seconds. */
	uint64_t latency_count, latency_bucket[LATENCY_BUCKETS];
	double latency_sum;
};

/* What the index calls back. */
struct index_ops {
	/* May the entry's owner read m (asked only for entries with check_each)? */
	bool (*may_read)(void *owner, const struct cable_msg *m);
	/* Queue f (a new reference) for the owner; offset in the topic's history, or 0. */
	void (*deliver)(void *owner, struct cable_frame *f, const struct cable_msg *m,
	                uint64_t offset);
	/*
	 * A route's ext entries went from none to some (on) or back: its filter's history is
	 * (no longer) wanted. false: it could not be registered (out of memory).
	 */
	bool (*interest)(void *ctx, const char *filter, size_t len, bool on);
	/* The extended form of a frame (stream id, epoch, offset) for an ext entry. */
	struct cable_frame *(*ext_frame)(void *owner, const char *value, size_t len,
	                                 const struct cable_msg *m, uint64_t offset);
};

/* The upper bounds of the latency buckets, in seconds. */
extern const double index_latency_bounds[LATENCY_BUCKETS];

void index_init(struct gw_index *ix, const struct index_ops *ops, void *ctx);

struct ident *ident_get(struct gw_index *ix, const char *raw, size_t len);
void ident_put(struct gw_index *ix, struct ident *id);

/* Add the entry to the routes of the binding's streams; CABLE_ENOMEM leaves it out. */
int index_link(struct gw_index *ix, struct index_entry *e, const struct cable_binding *b);
void index_unlink(struct gw_index *ix, struct index_entry *e);

/*
 * Deliver m to every entry whose streams match its topic; ext frames carry m->offset
 * (its offset in the topic's history, given by shard 0; 0: not recorded).
 */
void fanout_dispatch(struct gw_index *ix, const struct cable_msg *m);

/* Free the index and the interned identifiers (at shutdown). */
void fanout_release(struct gw_index *ix);

#endif
