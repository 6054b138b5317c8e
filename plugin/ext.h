/*
 * AnyCable's extended protocol (actioncable-v1-ext-json): reliable streams (offsets,
 * epoch, history), session restore and pongs (ext.c, which alone writes struct ext_hub
 * and struct ext_gw, opaque here, and the sessions' struct resume). The history, the
 * epoch, what is recorded and the restorable sessions are shared by the shards (struct
 * ext_hub, gw_hub.ext, under its own lock); counters and pongs are each shard's.
 * Gateway thread of the calling shard unless a function says otherwise.
 */
#ifndef CABLE_EXT_H
#define CABLE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable_frame.h"
#include "cable_queue.h"

struct gw;
struct session;
struct sub;
struct cable_cmd;
struct held;    /* frames of a restored subscription held until its history command */
struct resume;  /* a session's ext state */
struct ext_gw;  /* a shard's: its counters */
struct ext_hub; /* the shards': history, epoch, interest, restorable sessions */
struct gw_hub;

/* A shard's counters (metrics.c sums them over the shards: ext_counters_add). */
struct ext_counters {
	uint64_t restored, restore_failed, parked, parked_expired;
	uint64_t history_confirmed, history_rejected, replayed, no_pong;
	uint64_t skipped; /* replayed values a "message" channel could not carry */
};

/* The shared gauges (ext_gauges). */
struct ext_gauges {
	size_t streams, messages, bytes, restorable;
	uint64_t evicted; /* a counter, kept by the shared store */
};
struct ext_plan; /* a subscribe's history request */

int ext_start(struct gw *gw);          /* broker thread, in start(); shard 0 makes the ext_hub */
void ext_release(struct gw *gw);       /* broker thread, the shard ended */
void ext_hub_free(struct ext_hub *xh); /* broker thread, hub_free */
bool ext_attach(struct session *s);    /* an ext connection opened; false: out of memory */
void ext_welcome(struct session *s);   /* restore or greet */
void ext_detach(struct session *s);    /* it closed: park it for restore, or forget it */
void ext_received(struct session *s);  /* any frame from the client (pongs) */
void ext_tick(struct gw *gw);          /* every ping: expiry, pong timeouts */
void ext_history(struct session *s, const struct cable_cmd *cmd); /* the history command */
/* History on subscribe: plan, (last values, skipping what the plan covers), send. */
struct ext_plan *ext_history_plan(struct session *s, struct sub *sub, const struct cable_cmd *cmd);
bool ext_skip_last_value(const struct ext_plan *rp, const char *topic, size_t len);
void ext_history_send(struct session *s, struct sub *sub, struct ext_plan *rp, bool answer);
void ext_sub_added(struct sub *sub); /* subs.c: a new subscription (restorable by sid) */
void ext_sub_gone(struct gw *gw, struct sub *sub);
/* Shard 0, before m goes to the shards: record it if streamed; sets m->offset. */
void ext_record(struct gw *gw, struct cable_msg *m);
/* fanout.c: this shard's ext subscriptions started (on) or stopped streaming a filter. */
bool ext_interest(struct gw *gw, const char *filter, size_t len, bool on);
struct cable_frame *ext_frame(struct gw *gw, struct sub *sub, const char *value, size_t len,
                              const struct cable_msg *m, uint64_t offset);
bool ext_hold(struct sub *sub, struct cable_frame *f, const struct cable_msg *m, uint64_t offset);
/* This shard's counters added to *sum (the shard's thread). */
void ext_counters_add(const struct gw *gw, struct ext_counters *sum);
/* The shared gauges, under the ext lock (any gateway thread). */
void ext_gauges(struct gw_hub *hub, struct ext_gauges *out);
/* The exposition text of summed counters and the gauges. */
size_t ext_metrics_format(const struct ext_counters *c, const struct ext_gauges *g, char *buf,
                          size_t len);
/* This shard's counters with the shared gauges (ext_metrics_format). */
size_t ext_metrics(struct gw *gw, char *buf, size_t len);
/* Values a "message" channel could not carry in history replays (binary_skipped_total). */
uint64_t ext_skipped(const struct gw *gw);

#endif
