/*
 * struct gw: the gateway as a whole, assembled from parts. Each part is declared in the
 * header of the one file that writes it (loop.h, listen.h, http.h, bridge.h, health.h,
 * auth.h, expiry.h, outbound.h, session.h, subs.h, fanout.h, answer.h, metrics.h,
 * state.h, ext.h, room.h); the members here are written by gateway.c alone (at start, at a reload
 * and at stop). Other files read what they need. Gateway thread, except where gateway.c says
 * otherwise.
 *
 * Headers include downwards only: part headers never include this one.
 */
#ifndef CABLE_GW_H
#define CABLE_GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "answer.h"
#include "auth.h"
#include "bridge.h"
#include "cable_gateway.h"
#include "cable_rules.h"
#include "expiry.h"
#include "ext.h"
#include "fanout.h"
#include "health.h"
#include "http.h"
#include "listen.h"
#include "loop.h"
#include "metrics.h"
#include "outbound.h"
#include "room.h"
#include "session.h"
#include "shard.h"
#include "state.h"
#include "subs.h"

/* One shard of the gateway (shard.h): one thread, one lws context. */
struct gw {
	struct cable_gateway_config cfg; /* strings owned (copied) */
	char *strings[14];
	struct lws_protocols protocols[6]; /* gateway.c's, with plugin_opt_receive_buffer */
	struct gw_hub *hub;                /* what the shards share */
	unsigned shard;                    /* this one's index in hub->shards */
	struct cable_queue inbox;          /* calls from other threads (shard_call); any thread */
	struct cable_link *link;           /* = hub->link */
	struct shared_rules *rules_ref;    /* the rule set in use, shared with the other shards */
	struct cable_rules *rules;         /* = rules_ref->rules */
	pthread_t thread;
	bool thread_started;
	bool stopping, finished;
	long long stop_deadline_us;
	lws_sorted_usec_list_t stop_sul;

	struct gw_loop loop;
	struct gw_listener listener;
	struct gw_http http;
	struct gw_bridge bridge;
	struct gw_health health;
	struct gw_limits limits;
	struct gw_expiry expiry;
	struct gw_out out;
	struct gw_sessions sess;
	struct gw_subs subs;
	struct gw_index index;
	struct gw_answers answers;
	struct gw_metrics metrics;
	struct gw_rooms rooms;
	struct state_client state;
	struct ext_gw *ext; /* history, epoch, restorable sessions (ext.c) */
};

/* loop_schedule / loop_kick on the gateway's loop. Gateway thread. */
static inline void gw_schedule(struct gw *gw, lws_sorted_usec_list_t *sul, sul_cb_t cb,
                               lws_usec_t us)
{
	loop_schedule(&gw->loop, sul, cb, us);
}

static inline void gw_kick(struct gw *gw, lws_usec_t us)
{
	loop_kick(&gw->loop, us);
}

/* gateway.c: new rules from a reload replace the current ones (takes a reference). */
void gw_replace_rules(struct gw *gw, struct shared_rules *rules);

/* gateway.c: the broker asked to stop; close the sessions and finish. */
void gw_begin_stop(struct gw *gw);

#endif
