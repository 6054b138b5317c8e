/*
 * Presence and whisper (AnyCable's): rooms, the presence registry's timer, the
 * watcher-count mirror (room.c, which alone writes struct gw_rooms and the room members
 * of struct sub). Gateway thread.
 */
#ifndef CABLE_ROOM_H
#define CABLE_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cable_chanmap.h"

struct gw;
struct session;
struct sub;
struct room;
struct cable_cmd;
struct cable_presence;

struct gw_rooms {
	struct room *table;              /* by key */
	struct cable_presence *presence; /* NULL until the first presence channel is used */
	size_t presence_members;         /* records over every room */
	lws_sorted_usec_list_t presence_sul;
	lws_sorted_usec_list_t mirror_sul;
	struct room *mirror_queue; /* rooms whose watcher count waits to be published */
	long long mirror_due;      /* when mirror_sul fires (ms), 0 when not armed */
	uint64_t whispers_unlogged;
	long long whisper_logged_at;
	uint64_t presence_joins, presence_leaves, presence_refused;
	uint64_t whispers, whispers_disabled, whispers_too_large, whispers_rate_limited;
	uint64_t watchers_published;
};

size_t room_cost(const struct cable_binding *b);
int room_attach(struct gw *gw, struct sub *sub);
void room_detach(struct gw *gw, struct sub *sub, bool dropped);
void room_rebind_all(struct gw *gw);
void room_command(struct session *s, struct sub *sub, const struct cable_cmd *cmd);
void room_release(struct gw *gw);

#endif
