/*
 * The channel map: which ActionCable channels exist, which MQTT topics each one
 * streams, and which actions (perform) publish where.
 *
 * Pure: jansson, libc regex; no I/O, no globals. The configuration arrives as a
 * buffer (the adapter reads the file). Thread: any; a map is immutable once built,
 * so it can be shared read-only.
 *
 * Three parts, each its own file in plugin/core/ (chanmap_internal.h describes them):
 * loading, cable_chanmap_new/free and the map queries (chanmap_load.c); binding,
 * cable_chanmap_bind and the cable_binding_* accessors (chanmap_bind.c); perform,
 * cable_binding_perform and what it fills (chanmap_perform.c). Templates, the topic
 * patterns with placeholders, are internal to them (chanmap_template.c).
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
 *     },
 *     "TopicChannel": {
 *       "generic": true,
 *       "actions": { "publish": { "qos": 0, "retain": false } }
 *     }
 *   }
 * }
 *
 * The parser is strict: an unknown key anywhere, a duplicated key, or a value of the
 * wrong type is an error, so that a typo ("stream" for "streams") cannot silently
 * drop a stream or an action. Channel, param and action names are non-empty; param
 * names are [A-Za-z0-9_]+ and may not be "channel" or "user" (reserved).
 *
 * params: name -> spec. The identifier must carry every declared param; other keys
 *   in the identifier are ignored (they still make it a distinct identifier).
 *   "type": "string" (default): a JSON string; must be a valid topic level
 *           (cable_topic_level_valid: non-empty, no / + # NUL, no leading $),
 *           at most "max_length" bytes (default 128), and match "pattern" (POSIX
 *           extended regex, anchored by the author) when given.
 *   "type": "integer": a JSON integer, or a string of decimal digits without
 *           leading zeros; optional "min"/"max" (inclusive). Substituted in
 *           canonical decimal form. ("pattern"/"max_length" belong to strings and
 *           "min"/"max" to integers; the other combinations are load errors.)
 * streams: topic names or filters (may be absent or empty: a channel that only
 *   performs actions). Placeholders "{name}" stand for a whole level
 *   only ("a/{id}/b" is fine, "a/x{id}" is rejected when the map is loaded).
 *   Besides params: "{user}" (the principal's user; must itself be a valid level
 *   or the binding fails; with no principal, or one without a user, it fails too),
 *   and "{claim.NAME}": claim NAME of the verified token (a string, or an integer in
 *   decimal; missing, another type, or not a valid level fails the binding), e.g.
 *   "tenants/{claim.tenant}/actuators/{id}/state".
 *   A template never starts with '$', and braces appear only in placeholders.
 *   Every template is checked when the map is loaded (each literal level, the
 *   wildcard rules, the level count), and every expanded topic again at bind time.
 * deliver: "message" (default) sends the MQTT payload as ActionCable "message"
 *   (JSON payloads as JSON, other UTF-8 text as a string, binary dropped and
 *   counted); "envelope" sends {"topic":...,"payload":...,"retain":...}.
 * answer: "none" (default) | "refusals" | "all": what the browser that performs on
 *   this channel is told (docs/protocol.md has the frames). "none" is ActionCable's
 *   behaviour: nothing. "refusals": a refused perform (unknown action, bad data,
 *   retain not allowed, ACL, the broker refusing the publish) is answered on the
 *   subscription's identifier with {"$cable":"refused","reason":...}. "all": also
 *   {"$cable":"ack"} once the broker has accepted the publish. An action may set its
 *   own "answer"; the channel's applies to everything else (an unknown action, data
 *   that is not an object).
 * last_value: bool (default true). With the internal client on
 *   (plugin_opt_state_listener), a confirmed subscription is followed at once by the
 *   broker's retained message of each topic its streams cover, as an MQTT subscriber
 *   gets them; false turns that off for the channel.
 * actions: name -> {"topic": template (no wildcards after expansion, never '$'),
 *   "payload": "message" | "data" | "identity" (required), "qos": 0..2 (default 0),
 *   "retain": bool (default false), "with_sid": bool (identity only, default false),
 *   "answer": as above (default: the channel's), "request": bool (default false)}.
 *   "request": true publishes with MQTT 5 request/response properties: a response
 *   topic private to the performing subscription and correlation data; what a device
 *   publishes to that response topic reaches only that subscription, as
 *   {"$cable":"reply","request":...,"payload":...}.
 *   Perform data may carry "$request": a string of at most CABLE_REQUEST_MAX bytes or
 *   an integer, echoed as "request" in every answer (and used as the correlation
 *   data); without it the gateway numbers the connection's performs. "$request" is
 *   never part of a published payload.
 *   The publish always uses the action's qos and retain; data carrying
 *   "retain": true for an action whose retain is false is refused (EDENIED), so a
 *   client can neither pin a retained value nor believe it did.
 *   perform data without "action" means action "receive" (as in Rails).
 *     "message":  the data's "message" member, published as-is if it is a string
 *                 (its bytes), or as JSON text otherwise. Missing -> EINVAL.
 *     "data":     the whole data object minus "action", as compact JSON text.
 *     "identity": {"user":<user>, ...data members minus "action"} as compact JSON
 *                 text, members in the client's order; with "with_sid": true also
 *                 "sid":<connection sid>, last. The data's own "user" and "sid"
 *                 members are dropped: the server's values cannot be forged.
 *                 Without a principal "user" is null.
 *
 * generic: true makes a channel that maps the identifier's "topic" member straight
 *   to one MQTT topic or filter: {"channel":"TopicChannel","topic":"sites/7/#"}
 *   streams sites/7/#. The topic must be a string, a valid filter, and not start
 *   with '$'. A generic channel takes no "params" or "streams"; "deliver" defaults
 *   to "envelope" (a filter spans topics, so the receiver needs the topic). Its only
 *   possible action is "publish", enabled by listing it under "actions" with
 *   optional "qos"/"retain"/"answer"/"request" (no "topic", "payload" or "with_sid"):
 *   perform("publish", {"topic":<name>,"message":<m>}) publishes m as the "message"
 *   shape does to <name>, which must be a valid topic name without wildcards that
 *   does not start with '$'. What a user may read or write through a generic
 *   channel is decided by the ACL alone.
 *
 * presence: true | false (default) | {"ttl": seconds 0..3600 (15), "info_max_bytes":
 *   2..65536 (1024), "watchers_topic": template}. Turns on AnyCable's presence (join,
 *   leave, presence info) for the channel's subscriptions; true takes the defaults.
 *   "ttl": how long a user whose connections all dropped (without leaving) stays
 *   present, so a quick reconnect shows no leave/join. "info_max_bytes": the largest
 *   join info, as compact JSON. "watchers_topic": a topic template (the same
 *   placeholders as streams, no wildcards, never '$'; not on a generic channel) to
 *   which the number of present users is published, retained, as decimal text.
 * whisper: true | false (default) | {"rate": per second 1..10000 (10), "burst": 1..10000
 *   (20), "max_bytes": 2..1048576 (4096)}. Turns on AnyCable's whisper: a transient
 *   message to the other subscribers of the same channel and streams, never to MQTT.
 *   "rate"/"burst": a token bucket per connection; "max_bytes": the largest whisper
 *   data, as compact JSON. Over either the whisper is dropped.
 *
 * JSON documents (the map, identifiers, perform data) with duplicate keys are
 * rejected, so no later reader can resolve them differently from this one.
 *
 * Every error names the channel and the key (err->text), e.g.
 *   channels.ActuatorChannel.streams[1]: placeholder {idd} is not a declared param
 * Bind and perform errors name the channel, param or action, never a value.
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

/* What the browser that performed is told (the channel map's "answer"). */
enum cable_answer {
	CABLE_ANSWER_NONE,     /* ActionCable's behaviour: no reply */
	CABLE_ANSWER_REFUSALS, /* refusals only */
	CABLE_ANSWER_ALL,      /* refusals and acknowledgements */
};

/* Why a perform was refused; cable_refusal_name gives the wire name. */
enum cable_refusal {
	CABLE_REFUSED_NONE,
	CABLE_REFUSED_INVALID,        /* "invalid_data": not an object, no "message", bad topic */
	CABLE_REFUSED_UNKNOWN_ACTION, /* "unknown_action" */
	CABLE_REFUSED_RETAIN,         /* "retain_not_allowed" */
	CABLE_REFUSED_ACL,            /* "acl_denied": the ACL does not let the user write */
	CABLE_REFUSED_BROKER,         /* "broker_refused": mosquitto did not accept the publish */
	CABLE_REFUSED_SERVER,         /* "server_error": out of memory */
};

/* "invalid_data", "unknown_action", ... ("" for NONE or an unknown value). Never NULL. */
const char *cable_refusal_name(enum cable_refusal r);

/* Longest "$request" string accepted in perform data, in bytes. */
#define CABLE_REQUEST_MAX 64

/*
 * How to answer a perform, filled by cable_binding_perform whether it succeeds or not
 * (release with cable_perform_info_release; a zeroed struct is a valid empty one).
 */
struct cable_perform_info {
	enum cable_answer answer;   /* the action's, or the channel's when there is no action */
	bool request;               /* the action asks for MQTT 5 request/response */
	enum cable_refusal refusal; /* why it failed (NONE on success) */
	char *action;               /* the action name as performed, NUL-terminated; NULL if
	                               there is none to name (data not an object, a name over
	                               256 bytes) or nothing to answer (answer NONE and no
	                               request) */
	size_t action_len;
	char *request_id; /* JSON text of the data's "$request" (a string or an integer), NULL
	                     when the data has none or it is not usable */
	size_t request_id_len;
};

void cable_perform_info_release(struct cable_perform_info *info); /* accepts a zeroed struct */

/* Parse and validate a map. NULL on error (err says where and why). */
struct cable_chanmap *cable_chanmap_new(const char *buf, size_t len, struct cable_error *err);
void cable_chanmap_free(struct cable_chanmap *map); /* accepts NULL */

/* Does the map have a generic channel (one the ACL alone governs)? */
bool cable_chanmap_has_generic(const struct cable_chanmap *map);

/* Does any channel use a {claim.NAME} placeholder (so bind needs the token's claims)? */
bool cable_chanmap_uses_claims(const struct cable_chanmap *map);

/*
 * Resolve a subscription identifier (the raw identifier string the client sent,
 * itself JSON such as {"channel":"ActuatorChannel","id":"42"}) for a principal.
 * On success *out is a new binding (free with cable_binding_free). A binding owns
 * copies of everything it needs and does not refer to the map: it stays valid after
 * cable_chanmap_free, so a reload can swap maps while subscriptions live on.
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
/* The channel's "last_value": replay retained values on subscribe. */
bool cable_binding_last_value(const struct cable_binding *b);

#define CABLE_PRESENCE_TTL_DEFAULT      15
#define CABLE_PRESENCE_INFO_MAX_DEFAULT 1024
#define CABLE_WHISPER_RATE_DEFAULT      10
#define CABLE_WHISPER_BURST_DEFAULT     20
#define CABLE_WHISPER_MAX_BYTES_DEFAULT 4096

/* A channel's "presence" settings, as bound (see the file format above). */
struct cable_presence_config {
	unsigned ttl;               /* seconds */
	size_t info_max;            /* bytes of compact JSON */
	const char *watchers_topic; /* expanded; NULL when the channel mirrors no count */
};

/* A channel's "whisper" settings. */
struct cable_whisper_config {
	unsigned rate, burst; /* token bucket per connection: whispers per second, bucket size */
	size_t max_bytes;     /* bytes of compact JSON */
};

/* The binding's presence settings, or NULL when the channel has no presence. */
const struct cable_presence_config *cable_binding_presence(const struct cable_binding *b);

/* The binding's whisper settings, or NULL when the channel has no whisper. */
const struct cable_whisper_config *cable_binding_whisper(const struct cable_binding *b);

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
 * member missing, generic publish topic missing or invalid, "$request" neither a
 * string of at most CABLE_REQUEST_MAX bytes nor an integer), CABLE_ENOTFOUND (no
 * such action), CABLE_EDENIED (retain asked for but not allowed), CABLE_ENOMEM.
 * err->text names the action. The payload is also NUL-terminated (not counted in
 * payload_len) for convenience; it may contain NUL bytes of its own.
 * `info` (may be NULL) is filled in both cases, to answer the browser: the answer
 * mode, whether the action is a request, the refusal reason, the action name and the
 * "$request" value. The caller releases it (cable_perform_info_release).
 */
int cable_binding_perform(const struct cable_binding *b, const char *data, size_t len,
                          struct cable_publish *out, struct cable_perform_info *info,
                          struct cable_error *err);

void cable_publish_release(struct cable_publish *p); /* accepts a zeroed struct */

#endif
