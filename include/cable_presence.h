/*
 * The presence registry: who is present in which room, with how many connections, and
 * until when someone whose connections all dropped still counts (AnyCable's presence,
 * docs/protocol.md and docs/channels.md).
 *
 * A room is what the gateway makes of one channel subscription's identity (the channel
 * and its bound streams); the registry knows rooms only as opaque owners. In a room a
 * record is one presence id (the authenticated user) with its info (JSON text) and the
 * connections (opaque keys, uintptr_t) that joined as it. Several connections of one
 * id count once. A connection that leaves explicitly takes the record with it when it
 * was the last one (a "leave" to announce); a connection that dropped leaves the record
 * lingering until a deadline, and a join of the same id before then takes it back
 * without any event (no leave/join flicker on a quick reconnect). Lingering records
 * sit in one min-heap by deadline (cable_heap.h): the gateway arms one timer at
 * cable_presence_next_deadline and calls cable_presence_expire when it fires.
 *
 *   struct cable_presence *p = cable_presence_new();
 *   struct cable_presence_room *r = cable_presence_room_new(p, my_room);
 *   cable_presence_join(r, conn, "alice", 5, "{\"name\":\"Ann\"}", 14, &ch);  // JOINED
 *   cable_presence_leave(r, conn, "alice", 5, now_ms + 15000, &ch);         // SAME: lingers
 *   cable_presence_expire(p, now_ms + 15000, gone_cb, arg);                 // gone: "alice"
 *
 * Times are the caller's milliseconds (any monotonic origin). Pure: no I/O, no globals,
 * no threads; a registry is used by one thread at a time.
 */
#ifndef CABLE_PRESENCE_H
#define CABLE_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable.h"

struct cable_presence;
struct cable_presence_room;

enum cable_presence_change {
	CABLE_PRESENCE_SAME,   /* nothing to announce */
	CABLE_PRESENCE_JOINED, /* the id was not present: announce a join */
	CABLE_PRESENCE_LEFT,   /* the id's record is gone: announce a leave */
};

/* NULL when out of memory. */
struct cable_presence *cable_presence_new(void);

/* Frees the registry and every room still in it. Accepts NULL. */
void cable_presence_free(struct cable_presence *p);

/* A new, empty room; `owner` is handed back by cable_presence_expire. NULL on ENOMEM. */
struct cable_presence_room *cable_presence_room_new(struct cable_presence *p, void *owner);

/* Frees a room and its records (lingering ones included, without events). Accepts NULL. */
void cable_presence_room_free(struct cable_presence_room *r);

/*
 * Connection `conn` joins as `id` with `info` (JSON text, or NULL/0 for none). The
 * record's info becomes `info` (a repeated join updates it). *change: JOINED when the id
 * had no record, SAME when it had one (another connection, a repeated join, or a
 * lingering record taken back before its deadline).
 * A connection joins a room as one id only: the caller keeps which (the gateway joins
 * a subscription as its connection's user), and leaves with the same id.
 * Errors: CABLE_EINVAL (id empty), CABLE_ENOMEM (nothing changes).
 */
int cable_presence_join(struct cable_presence_room *r, uintptr_t conn, const char *id,
                        size_t id_len, const char *info, size_t info_len,
                        enum cable_presence_change *change);

/*
 * Connection `conn`, joined as `id`, goes. If it was the id's last connection: with
 * linger_until == 0 (an explicit leave, an unsubscribe) the record goes now and *change
 * is LEFT; otherwise (a dropped connection) the record lingers until linger_until and
 * *change is SAME. A conn that had not joined as id: CABLE_ENOTFOUND, nothing changes.
 * CABLE_ENOMEM when the record cannot be put in the deadline heap: it then goes now
 * (LEFT), so nothing lingers forever.
 */
int cable_presence_leave(struct cable_presence_room *r, uintptr_t conn, const char *id,
                         size_t id_len, long long linger_until, enum cable_presence_change *change);

/* Records in the room (each id once; lingering ones count: no leave was announced). */
size_t cable_presence_total(const struct cable_presence_room *r);

/* The earliest deadline of a lingering record, or 0 when none lingers. */
long long cable_presence_next_deadline(const struct cable_presence *p);

/*
 * Remove every lingering record whose deadline is <= now, calling gone(owner, id,
 * id_len, arg) for each (the record is freed after the call). Returns how many. `gone`
 * may free the owner's room once that room is empty (cable_presence_total == 0).
 */
size_t cable_presence_expire(struct cable_presence *p, long long now,
                             void (*gone)(void *owner, const char *id, size_t id_len, void *arg),
                             void *arg);

/*
 * The "message" values of presence frames, as JSON text (malloc'd, NUL-terminated):
 *   join:  {"type":"join","id":<id>,"info":<info>}   ("info" omitted when it has none)
 *   leave: {"type":"leave","id":<id>}
 *   info:  {"type":"info","total":N,"records":[{"id":..,"info":..},...]}
 *          (records omitted when `records` is false or the room is empty)
 *   error: {"type":"error"}
 * CABLE_EINVAL (id not UTF-8), CABLE_ENOMEM.
 */
int cable_presence_join_value(const struct cable_presence_room *r, const char *id, size_t id_len,
                              char **out, size_t *out_len);
int cable_presence_leave_value(const char *id, size_t id_len, char **out, size_t *out_len);
int cable_presence_info_value(const struct cable_presence_room *r, bool records, char **out,
                              size_t *out_len);
int cable_presence_error_value(char **out, size_t *out_len);

#endif
