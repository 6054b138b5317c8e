/*
 * Presence and whisper (AnyCable's): rooms, the presence registry's timer, the
 * watcher-count mirror (room.c, which alone writes struct gw_rooms, struct room_hub and
 * the room members of struct sub).
 *
 * Over gateway shards (shard.h): each shard keeps its own rooms for its own
 * subscriptions (struct gw_rooms, its thread only); what a room is over every shard
 * (who is present, the lingering records' deadlines, the watcher count, which shards
 * have subscribers in it) lives once in struct room_hub, under its own mutex, pointed
 * to by gw_hub.rooms. Gateway threads, except room_start/room_release (broker thread).
 */
#ifndef CABLE_ROOM_H
#define CABLE_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cable_chanmap.h"
#include "cable_gateway.h"

struct gw;
struct session;
struct sub;
struct room;
struct room_hub; /* room.c: the registry shared by the shards, with its lock */
struct cable_cmd;

/* One shard's rooms and counters. */
struct gw_rooms {
	struct room *table; /* this shard's rooms, by key */
	lws_sorted_usec_list_t presence_sul;
	long long presence_due;            /* when presence_sul fires (ms), 0 when not armed */
	lws_sorted_usec_list_t mirror_sul; /* shard 0: the watcher-count mirror */
	long long mirror_due;              /* when mirror_sul fires (ms), 0 when not armed */
	/* What the current lock holder must do once it lets go (room.c, hub_unlock). */
	uint64_t to_poke; /* shards to wake for their room events */
	bool drain_self, kick_mirror, draining;
	/* Reloads (room_rebind_all): rooms move once every shard announced its leaves. */
	uint64_t rebind_gen;                     /* this shard's reloads so far */
	uint64_t rebind_seen[CABLE_MAX_THREADS]; /* each shard's, as it told this one */
	bool rebind_pending;                     /* its rooms wait for the others' leaves */
	uint64_t whispers_unlogged;
	long long whisper_logged_at;
	/*
	 * Counters of this shard (sum them over the shards). presence_members is the
	 * registry's count (every shard) as it was when this shard last changed it: read
	 * room_presence_members() instead.
	 */
	size_t presence_members;
	uint64_t presence_joins, presence_leaves, presence_refused;
	uint64_t whispers, whispers_disabled, whispers_too_large, whispers_rate_limited;
	uint64_t watchers_published; /* shard 0 publishes them */
	uint64_t events_dropped;     /* presence events or whispers another shard's box refused */
};

/* Broker thread, in start(), shard by shard: shard 0 makes the shared registry. */
int room_start(struct gw *gw);

size_t room_cost(const struct cable_binding *b);
int room_attach(struct gw *gw, struct sub *sub);
void room_detach(struct gw *gw, struct sub *sub, bool dropped);
void room_rebind_all(struct gw *gw);
void room_command(struct session *s, struct sub *sub, const struct cable_cmd *cmd);

/* Users present over every presence room and shard (lingering ones included). Any shard. */
size_t room_presence_members(struct gw *gw);

/*
 * Shutdown (broker thread, every loop ended, leftover calls run): free this shard's
 * rooms; shard 0 frees the shared registry too (the other shards' releases never touch
 * it, so the order does not matter).
 */
void room_release(struct gw *gw);

#endif
