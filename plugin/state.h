/*
 * Last values: the internal MQTT client and the last-value cache (state.c, which alone
 * writes struct state_client and struct state_shared). The client runs on shard 0; the
 * cache it keeps is shared by every shard (gw->hub->state). Gateway thread, except
 * state_parse_listener.
 */
#ifndef CABLE_STATE_H
#define CABLE_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cable_queue.h"
#include "cable_retained.h"

struct gw;
struct session;
struct sub;
struct sockaddr_storage;

enum state_phase { STATE_DOWN, STATE_SYNCING, STATE_LIVE };

/*
 * What every shard's subscribe reads (gw->hub->state): shard 0 writes it under the write
 * lock, any shard replays from it under the read lock (never across an lws call).
 */
struct state_shared {
	pthread_rwlock_t lock;
	bool live;                          /* {lock} the client is synchronised */
	const struct cable_retained *cache; /* {lock} what subscribes replay from */
	uint64_t refused_before;            /* {lock} refusals of caches already replaced */
	/*
	 * The last message read from the broker (cable_msg.seq): the cache reflects it and
	 * every one before, none after. A replay's subscription takes only later messages
	 * (index_entry.since). Stored under the write lock with a retained message's update,
	 * without it for a message that leaves the cache alone.
	 */
	_Atomic uint64_t seq;
};

/* Cache-wide figures for /metrics (state_stats). */
struct state_stats {
	bool live;             /* the internal client is connected and synchronised */
	size_t entries, bytes; /* in the cache */
	uint64_t refused;      /* values the cache's limits refused, over every cache */
};

/*
 * The internal client (shard 0) and each shard's share of the replays. On shards other
 * than 0 only pending, replayed and skipped are used.
 */
struct state_client {
	enum state_phase phase; /* the client's connection (shard 0) */
	struct lws *wsi;        /* NULL while not connected */
	int fd;
	uint8_t *in; /* a partial packet */
	size_t in_len, in_cap;
	uint8_t out[512]; /* CONNECT, SUBSCRIBE, PINGREQ not yet written */
	size_t out_len;
	struct cable_retained *cache; /* shard 0's (the writer's) pointer to the shared cache */
	struct cable_retained *next;  /* being filled by the broker's replay (SYNCING) */
	struct cable_msg *backlog, *backlog_tail; /* read, not yet fanned out */
	size_t backlog_count, backlog_bytes;      /* bounded as to_gateway is */
	bool dispatch_pending;                    /* dispatch_sul will continue */
	uint64_t dropped, reported_drops;         /* live messages dropped: the queue was full */
	lws_usec_t next_drop_log;
	lws_sorted_usec_list_t retry_sul, ping_sul, dispatch_sul;
	lws_usec_t failing_since, next_warn, sync_started;
	lws_usec_t lost_at; /* a live connection was lost then (reported at the next sync) */
	bool warned_full;
	unsigned refusals;           /* CONNACK/SUBACK refusals since the last synchronisation */
	bool pending;                /* some sub->replay_pending is set (on this shard) */
	uint64_t connects, replayed; /* counters: connects on shard 0, replayed per shard */
	uint64_t skipped;            /* replayed values a "message" channel could not carry */
	uint64_t refused_before;     /* shard 0: as state_shared's (read by metrics.c) */
};

/* Broker thread, in start(): is spec a usable listener address? */
int state_parse_listener(const char *spec, struct sockaddr_storage *ss, unsigned *len);
void state_start(struct gw *gw);
void state_release(struct gw *gw);
struct ext_plan;
/* plan: an ext subscribe's history request (ext.c), whose topics' values are left out */
void state_replay(struct session *s, struct sub *sub, const struct ext_plan *plan);
void state_catch_up(struct gw *gw);
/* Any shard: the cache-wide figures (all zero without plugin_opt_state_listener). */
void state_stats(struct gw *gw, struct state_stats *out);
extern const struct lws_protocols state_protocol;

#endif
