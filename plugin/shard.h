/*
 * Gateway shards (plugin_opt_threads). The gateway runs N threads, each one shard: a
 * struct gw with its own lws context and event loop, its own listening socket on the
 * shared port (SO_REUSEPORT: the kernel spreads new connections over the shards), and its
 * own sessions, subscription index, timers and counters. What must span the shards lives
 * in one struct gw_hub that every shard points to:
 *
 *   - the connection limits (in total, per client address, per user) and the listener's
 *     caps on sockets and handshakes, under hub.lock (auth.c, listen.c write them);
 *   - the rule set, reference counted: a reload hands every shard the same copy;
 *   - each shard's inbox, a bounded queue of calls that other threads made for it
 *     (shard_call): the only way one shard acts on another. A call runs on the shard's
 *     own thread, between its other events, so nothing in struct gw needs a lock.
 *
 * Shard 0 also drains the broker's queue (cable_link.to_gateway) and is the sequencer:
 * each device message gets the next sequence number and goes to every shard as one
 * shared, reference-counted copy (shards_dispatch), so every shard sees device traffic
 * in the same order. Answers from the broker go to the shard that the answer token names
 * (its first character, answer.c). Browsers' publishes go straight from every shard to
 * the one to_broker queue, which the broker thread drains in one order.
 *
 * Thread: as each function says; shard.c alone writes struct gw_hub, except the members
 * marked {auth}, {listen} (those files, under hub.lock), {room} (room.c: set by
 * room_start, freed by room_release), {ext} (ext.c: set by ext_start, freed by
 * hub_free), {state} (state.c: set by state_start, freed by state_release) and
 * {health} (health.c, an atomic).
 */
#ifndef CABLE_SHARD_H
#define CABLE_SHARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable_queue.h"
#include "cable_rules.h"
#include "listen.h"

struct gw;
struct counter;
struct room_hub;
struct ext_hub;
struct state_shared;

/* A rule set that several shards use; freed by the last one to let go. */
struct shared_rules {
	atomic_uint refs;
	struct cable_rules *rules;
};

/* A device message that every shard fans out; freed by the last one. */
struct shared_msg {
	atomic_uint refs;
	uint64_t seq;        /* shard 0's count of sequenced messages, from 1 */
	struct cable_msg *m; /* owned */
};

struct gw_hub {
	unsigned n;         /* shards, 1..CABLE_MAX_THREADS */
	struct gw **shards; /* shards[i]->shard == i */
	struct cable_link *link;
	atomic_bool stop_requested; /* the broker is stopping (any thread) */
	/*
	 * Stopping: each shard, its sessions closed, waits at exit_barrier for the others
	 * and for the broker thread (gw_stop, once it has woken every shard), sets `exiting`
	 * (shard_call refuses from then on) and destroys its lws context. So no thread wakes
	 * a context that is gone.
	 */
	pthread_barrier_t exit_barrier;
	atomic_bool exiting;
	atomic_size_t sessions;        /* WebSocket sessions open in every shard (session.c) */
	atomic_bool sequencer_waiting; /* shard 0 waits for room in an inbox (bridge.c) */
	atomic_int tick_verdict; /* {health} the TICK watchdog's, for every shard (health.h) */
	/* {room}: presence and whisper over every shard, under its own lock (room.h) */
	struct room_hub *rooms;

	pthread_mutex_t lock; /* guards the members below */
	/* {listen}: accepted browser sockets over every shard (listen.c) */
	size_t nsockets, nhandshakes;
	struct counter *peers; /* sockets per client address */
	bool capped;           /* a shard stopped accepting at a cap: wake the others on room */
	struct gw_listen_logs listen_logs;
	/* {auth}: connections per client address and per user (auth.c) */
	struct counter *per_ip, *per_user;

	/*
	 * Shard 0's thread only: the last sequence number given (cable_msg.seq). Every shard
	 * sees messages in this order; a subscription that replayed a snapshot taken after
	 * message k (last values, history) gets only messages after k (index_entry.since).
	 */
	uint64_t seq;

	/*
	 * {ext}: the extended protocol's history, epoch, recorded streams and restorable
	 * sessions, under its own lock (ext.c; made by shard 0's ext_start, freed by hub_free).
	 */
	struct ext_hub *ext;

	/*
	 * {state}: the last-value cache every shard replays from (state.h), set once by
	 * shard 0 when its internal client starts (NULL until then, and without
	 * plugin_opt_state_listener); freed after every thread has ended.
	 */
	_Atomic(struct state_shared *) state;
};

/* A call made on another shard's thread: fn(gw, arg) runs there. */
typedef void (*shard_fn)(struct gw *gw, void *arg);

/*
 * Any thread: queue fn(to, arg) on shard `to` and wake it. CABLE_EFULL when its inbox is
 * full (the caller still owns arg), unless `force` (for the few calls that must not be
 * lost: new rules, stopping).
 */
int shard_call(struct gw *to, shard_fn fn, void *arg, bool force);

/* Broker thread, in start(): the shard's inbox, bounded as `like` (the broker's queue). */
int shard_inbox_init(struct gw *gw, const struct cable_queue *like);

/* Run a CABLE_MSG_CALL taken from the inbox. Gateway thread (the receiving shard). */
void shard_run_call(struct gw *gw, const struct cable_msg *m);

/*
 * Shard 0: sequence m (a device message, owned from here on; m->seq is kept if the
 * caller set it from shard_next_seq) and fan it out on every shard, with its answer (an
 * acknowledgement after the fan-out) on the shard it names.
 */
void shards_dispatch(struct gw *gw, struct cable_msg *m);

/* Shard 0: the next sequence number (for a message sequenced before its dispatch). */
uint64_t shard_next_seq(struct gw *gw);

/* Shard 0: does every other shard's inbox have room for another take? */
bool shards_have_room(struct gw *gw);

/*
 * Shard 0: the same look, with no wake-up arranged: for state.c's backlog, which waits on
 * a timer (shards_have_room's flag is the broker queue's).
 */
bool shards_inboxes_have_room(struct gw *gw);

/* After a shard took its inbox: wake shard 0 if it waits for room. */
void shards_room_made(struct gw *gw);

/* Shard 0: new rules from a reload (owned from here on) for every shard. */
void shards_replace_rules(struct gw *gw, struct cable_rules *rules);

/* The shard a broker answer is for (by its token); NULL if none. */
struct gw *shard_for_answer(struct gw *gw, const struct cable_msg *m);

/* The token character naming shard i (answer tokens start with it). */
char shard_token_char(unsigned i);

/* Drop one reference to a rule set (the last one frees it). Any thread. */
void shared_rules_put(struct shared_rules *r);

/* Wake every shard but `gw` (lws_cancel_service). Any thread. */
void shards_wake_others(struct gw *gw);

/* Broker thread, in start(): the hub for n shards (their gw pointers set later). */
struct gw_hub *hub_new(unsigned n, struct cable_link *link);
void hub_free(struct gw_hub *hub);

#endif
