/*
 * The channel map: which ActionCable channels exist, which MQTT topics each one
 * streams, and which actions (perform) publish where.
 *
 * Pure: jansson, libc regex; no I/O, no globals. The configuration arrives as a
 * buffer (the adapter reads the file). Thread: any; a map is immutable once built,
 * so it can be shared read-only.
 *
 * ---- File format (JSON) -----------------------------------------------------------
 *
 * {
 *   "channels": {
 *     "ActuatorChannel": {
 *       "params": {
 *         "id": { "type": "integer", "min": 0, "max": 1000000 }
 *       },
 *       "streams": [ "actuators/{id}/state", "actuators/{id}/cmd" ],
 *       "deliver": "message",
 *       "actions": {
 *         "speak": { "topic": "actuators/{id}/cmd", "payload": "identity",
 *                    "qos": 0, "retain": false }
 *       }
 *     },
 *     "RoomChannel": {
 *       "params": { "room": { "type": "string", "pattern": "^[a-z0-9-]{1,32}$" } },
 *       "streams": [ "rooms/{room}/#" ],
 *       "deliver": "envelope"
 *     }
 *   }
 * }
 *
 * params: name -> spec. The identifier must carry every declared param; other keys
 *   in the identifier are ignored (they still make it a distinct identifier).
 *   "type": "string" (default): a JSON string; must be a valid topic level
 *           (cable_topic_level_valid: non-empty, no / + # NUL, no leading $),
 *           at most "max_length" bytes (default 128), and match "pattern" (POSIX
 *           extended regex, anchored by the author) when given.
 *   "type": "integer": a JSON integer, or a string of decimal digits without
 *           leading zeros; optional "min"/"max" (inclusive). Substituted in
 *           canonical decimal form.
 * streams: topic names or filters. Placeholders "{name}" stand for a whole level
 *   only ("a/{id}/b" is fine, "a/x{id}" is rejected when the map is loaded).
 *   Besides params: "{user}" (the principal's user; must itself be a valid level
 *   or the binding fails).
 * deliver: "message" (default) sends the MQTT payload as ActionCable "message"
 *   (JSON payloads as JSON, other UTF-8 text as a string, binary dropped and
 *   counted); "envelope" sends {"topic":...,"payload":...,"retain":...}.
 * actions: name -> {"topic": template (no wildcards after expansion, never '$'),
 *   "payload": "message" | "data" | "identity", "qos": 0..2 (default 0),
 *   "retain": bool (default false: a client asking for retain is refused unless
 *   true)}. perform data without "action" means action "receive" (as in Rails).
 *     "message":  the data's "message" member, published as-is if it is a string
 *                 (its bytes), or as JSON text otherwise. Missing -> EINVAL.
 *     "data":     the whole data object minus "action", as JSON text.
 *     "identity": {"user":<user>, ...data members minus "action"} as JSON text; with
 *                 "with_sid": true in the action also "sid":<connection sid>.
 *
 * Every error names the channel and the key (err->text), e.g.
 *   channels.ActuatorChannel.streams[1]: placeholder {idd} is not a declared param
 */
#ifndef CABLE_CHANMAP_H
#define CABLE_CHANMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "cable.h"
#include "cable_principal.h"

struct cable_chanmap;
struct cable_binding;

enum cable_deliver {
	CABLE_DELIVER_MESSAGE,
	CABLE_DELIVER_ENVELOPE,
};

/* Parse and validate a map. NULL on error (err says where and why). */
struct cable_chanmap *cable_chanmap_new(const char *buf, size_t len, struct cable_error *err);
void cable_chanmap_free(struct cable_chanmap *map); /* accepts NULL */

/*
 * Resolve a subscription identifier (the raw identifier string the client sent,
 * itself JSON such as {"channel":"ActuatorChannel","id":"42"}) for a principal.
 * On success *out is a new binding (free with cable_binding_free).
 * Errors: CABLE_ENOTFOUND (no such channel, or identifier has no "channel"),
 *         CABLE_EINVAL (identifier not a JSON object, param missing or invalid,
 *         expanded topic invalid), CABLE_ENOMEM. err->text explains, for the log.
 * `sid` is the connection's session id (for "with_sid").
 */
int cable_chanmap_bind(const struct cable_chanmap *map, const char *identifier, size_t len,
		       const struct cable_principal *who, const char *sid,
		       struct cable_binding **out, struct cable_error *err);

void cable_binding_free(struct cable_binding *b); /* accepts NULL */

const char *cable_binding_channel(const struct cable_binding *b);
size_t cable_binding_stream_count(const struct cable_binding *b);
/* The i-th expanded stream: a valid topic name or filter, NUL-terminated. */
const char *cable_binding_stream(const struct cable_binding *b, size_t i);
enum cable_deliver cable_binding_deliver(const struct cable_binding *b);

/* A publish produced by an action. All members owned (malloc'd). */
struct cable_publish {
	char *topic;
	char *payload;
	size_t payload_len;
	int qos;
	bool retain;
};

/*
 * Run an action: `data` is the contents of the ActionCable "data" string (JSON text
 * of an object). On success fills *out (release with cable_publish_release); the
 * topic is a valid topic name that does not start with '$'.
 * Errors: CABLE_EINVAL (data not a JSON object, "action" not a string, payload
 * member missing), CABLE_ENOTFOUND (no such action), CABLE_ENOMEM.
 * err->text names the action.
 */
int cable_binding_perform(const struct cable_binding *b, const char *data, size_t len,
			  struct cable_publish *out, struct cable_error *err);

void cable_publish_release(struct cable_publish *p); /* accepts a zeroed struct */

#endif
