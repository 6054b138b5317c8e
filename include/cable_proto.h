/*
 * The ActionCable wire protocol ("actioncable-v1-json"): decoding client commands and
 * encoding server messages. See docs/protocol.md.
 *
 * Pure: jansson for JSON, no I/O, no globals. Inputs are (pointer, length).
 * Thread: any.
 */
#ifndef CABLE_PROTO_H
#define CABLE_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cable.h"
#include "cable_frame.h"

#define CABLE_PROTOCOL_V1_JSON     "actioncable-v1-json"
#define CABLE_PROTOCOL_UNSUPPORTED "actioncable-unsupported"
/* AnyCable's extended protocol: reliable streams, session restore, pongs. */
#define CABLE_PROTOCOL_EXT_JSON "actioncable-v1-ext-json"

/* ---- Client -> server ---------------------------------------------------------- */

enum cable_cmd_kind {
	CABLE_CMD_SUBSCRIBE,
	CABLE_CMD_UNSUBSCRIBE,
	CABLE_CMD_MESSAGE,
	CABLE_CMD_JOIN,     /* AnyCable presence: join (with "presence":{"id","info"}) */
	CABLE_CMD_LEAVE,    /* AnyCable presence: leave */
	CABLE_CMD_PRESENCE, /* AnyCable presence: info request ("data" optional) */
	CABLE_CMD_WHISPER,  /* AnyCable whisper ("data": any JSON value) */
	CABLE_CMD_UNKNOWN,  /* a well-formed object with an unrecognised "command" */
	CABLE_CMD_HISTORY,  /* ext: {"command":"history","identifier":...,"history":{...}} */
	CABLE_CMD_PONG,     /* ext: {"command":"pong"} (no identifier) */
};

/*
 * A decoded command. `command`, `identifier` and `data` point into `root` (borrowed);
 * they stay valid until cable_cmd_release. `identifier` is the identifier string
 * exactly as the client sent it (after JSON unescaping of the outer document), so it
 * can be echoed byte for byte. `data` is set only for CABLE_CMD_MESSAGE: the contents
 * of the "data" string (itself JSON text, decoded later by the channel map).
 */
struct cable_cmd {
	enum cable_cmd_kind kind;
	const char *command;
	size_t command_len;
	const char *identifier;
	size_t identifier_len;
	const char *data;
	size_t data_len;
	json_t *presence; /* subscribe, join: the "presence" member when it is an object */
	json_t *value;    /* whisper (always set), presence (may be NULL): the "data" value */
	json_t *root;     /* owner of the strings above */
	/*
	 * The "history" member of subscribe and history commands when it is an object,
	 * else NULL (borrowed from root; read it with cable_proto_history_request).
	 */
	json_t *history;
};

/*
 * Decode one text frame. On success fills *out (release with cable_cmd_release).
 * Errors (CABLE_EPROTO, err->text says which): not JSON (err->offset = byte
 * position; this includes duplicate keys and "\u0000" in a string), not an object,
 * "command" missing or not a string, "identifier" missing or not a string or empty
 * (for every kind but unknown), "data" missing or not a string (for message), "data"
 * missing (for whisper).
 * CABLE_ENOMEM on allocation failure. For CABLE_CMD_UNKNOWN, `identifier` is set
 * when the frame has a string "identifier" and is NULL otherwise.
 */
int cable_proto_decode(const char *buf, size_t len, struct cable_cmd *out, struct cable_error *err);

/* Release what decode filled in. Accepts a zeroed struct. */
void cable_cmd_release(struct cable_cmd *cmd);

/* ---- Ext: history requests --------------------------------------------------------- */

#define CABLE_PROTO_MAX_POSITIONS 256 /* stream positions in one history request */

/* One known position: {"<stream>":{"epoch":"...","offset":N}}. */
struct cable_stream_pos {
	const char *stream; /* borrowed from the command's JSON */
	size_t stream_len;
	const char *epoch;
	size_t epoch_len;
	unsigned long long offset;
	bool valid; /* epoch a string and offset an integer >= 0; an invalid one fails */
};

struct cable_history_request {
	long long since;  /* Unix seconds; 0 when absent, not a number or not positive */
	bool has_streams; /* "streams" is an object ({} counts) */
	size_t npos;
	struct cable_stream_pos *pos; /* malloc'd */
};

/*
 * Read a "history" object (cable_cmd.history). As the AnyCable client sends it: a
 * non-number `since` counts as absent; `streams` maps a stream name to its position.
 * A request is wanted when since > 0 or has_streams. CABLE_EPROTO with more than
 * CABLE_PROTO_MAX_POSITIONS positions; CABLE_ENOMEM. Release with
 * cable_history_request_release (also after a failure).
 */
int cable_proto_history_request(const json_t *history, struct cable_history_request *out,
                                struct cable_error *err);
void cable_history_request_release(struct cable_history_request *req);

/*
 * A session id for the ext welcome: CABLE_PROTO_SID_LEN base64url characters made from
 * CABLE_PROTO_SID_BYTES random bytes (the caller draws them), and the check of one a
 * client sends back in ?sid= (exactly that length and alphabet).
 */
#define CABLE_PROTO_SID_BYTES 24
#define CABLE_PROTO_SID_LEN   32
void cable_proto_sid_encode(const unsigned char raw[CABLE_PROTO_SID_BYTES],
                            char out[CABLE_PROTO_SID_LEN + 1]);
bool cable_proto_sid_valid(const char *s, size_t len);

/* ---- Server -> client ---------------------------------------------------------- */
/*
 * Each encoder returns a new frame (refs = 1) or NULL on ENOMEM. String arguments
 * are written as JSON strings; bytes that are not well-formed UTF-8 cannot be, and
 * also give NULL (never the case for an identifier from cable_proto_decode).
 */

/* {"type":"welcome","sid":"<sid>"}; sid NULL gives Rails' {"type":"welcome"} */
struct cable_frame *cable_proto_welcome(const char *sid);

/* {"type":"ping","message":<unix seconds>} */
struct cable_frame *cable_proto_ping(long long unix_seconds);

/* {"identifier":"<id>","type":"confirm_subscription"} ; id echoed byte for byte */
struct cable_frame *cable_proto_confirm(const char *id, size_t id_len);

/* {"identifier":"<id>","type":"reject_subscription"} */
struct cable_frame *cable_proto_reject(const char *id, size_t id_len);

/*
 * Ext welcome: {"type":"welcome","sid":"<sid>"} or, after a restore,
 * {"type":"welcome","sid":"<sid>","restored":true,"restored_ids":[<ids>]} (the ids as
 * JSON string literals from cable_proto_json_string, spliced).
 */
struct cable_frame *cable_proto_welcome_restored(const char *sid, const char *const *ids_json,
                                                 const size_t *ids_len, size_t nids);

/* {"type":"confirm_history"|"reject_history","identifier":"<id>"} */
struct cable_frame *cable_proto_history_reply(const char *id, size_t id_len, bool confirmed);

/*
 * {"type":"presence","identifier":<id_json>,"message":<value_json>}: AnyCable's presence
 * frame; both arguments are JSON text, spliced (cable_presence.h makes the values).
 */
struct cable_frame *cable_proto_presence(const char *id_json, size_t id_json_len,
                                         const char *value_json, size_t value_json_len);

/* {"type":"disconnect","reason":"<reason>","reconnect":true|false} */
struct cable_frame *cable_proto_disconnect(const char *reason, bool reconnect);

/* Why the server closes a connection: the "reason" of its disconnect message. */
enum cable_disconnect {
	CABLE_DISCONNECT_UNAUTHORIZED,
	CABLE_DISCONNECT_INVALID_REQUEST,
	CABLE_DISCONNECT_SERVER_RESTART,
	CABLE_DISCONNECT_SERVER_ERROR,
	CABLE_DISCONNECT_TOKEN_EXPIRED,
	CABLE_DISCONNECT_TOO_SLOW,
	CABLE_DISCONNECT_TOO_MANY_CONNECTIONS,
	CABLE_DISCONNECT_NO_PONG, /* the extended protocol's pong timeout */
	CABLE_DISCONNECT_COUNT
};

/* The wire name of a reason ("unauthorized", ...); NULL when out of range. */
const char *cable_disconnect_name(enum cable_disconnect reason);

/*
 * JSON string literal for `s` (quotes included, escaped), malloc'd and NUL-terminated;
 * *out_len gets its length. Used to encode an identifier once and splice it into many
 * frames. NULL on ENOMEM or if s is not valid UTF-8.
 */
char *cable_proto_json_string(const char *s, size_t len, size_t *out_len);

/*
 * The one top-level key of a "message" value that only the plugin writes: answers to
 * a perform carry it ({"$cable":"ack"|"refused"|"reply",...}), so received(data) code
 * tells them from device data with `"$cable" in data`. A device payload that is a JSON
 * object with this key is therefore never delivered as a plain "message" (it is in an
 * envelope, where it sits under "payload").
 */
#define CABLE_PROTO_RESERVED_KEY "$cable"

/*
 * The "message" value that carries an MQTT payload, as JSON text (malloc'd,
 * NUL-terminated, length in *out_len):
 *   - a JSON object with the top-level key CABLE_PROTO_RESERVED_KEY: CABLE_EDENIED
 *     (the caller drops and counts it, as binary);
 *   - a payload that is a valid JSON document (any JSON value) is used verbatim;
 *   - otherwise, valid UTF-8 text becomes a JSON string ("text" here is well-formed
 *     UTF-8 without NUL bytes; control characters are fine and get escaped);
 *   - otherwise (binary) the result is CABLE_EINVAL: the caller decides (the plain
 *     delivery mode drops such messages and counts them).
 */
int cable_proto_payload_value(const char *payload, size_t len, char **out, size_t *out_len);

/*
 * The envelope value for channels that ask for it:
 *   {"topic":"<topic>","payload":<payload value>,"retain":false}
 * and, for binary payloads, {"topic":...,"payload_base64":"...","retain":...}.
 * malloc'd, NUL-terminated; CABLE_ENOMEM / CABLE_EINVAL (topic not UTF-8).
 */
int cable_proto_envelope_value(const char *topic, size_t topic_len, const char *payload, size_t len,
                               bool retain, char **out, size_t *out_len);

/*
 * The plugin's answer to a perform, as a "message" value (malloc'd, NUL-terminated):
 *   {"$cable":<kind>,"action":<action>,"request":<request>,"reason":<reason>}
 * kind is "ack" or "refused". action (a JSON string; omitted when NULL), request
 * (JSON text of a string or an integer, spliced; omitted when NULL or anything else)
 * and reason (omitted when NULL). CABLE_EINVAL (kind NULL, action not UTF-8),
 * CABLE_ENOMEM.
 */
int cable_proto_answer_value(const char *kind, const char *action, size_t action_len,
                             const char *request_json, size_t request_len, const char *reason,
                             char **out, size_t *out_len);

/*
 * A device's reply to a request, as a "message" value:
 *   {"$cable":"reply","request":<request>,"payload":<payload value>}
 * with "payload_base64" instead for a binary payload, as in the envelope. request is
 * the correlation data the device sent back: spliced when it is the JSON text of a
 * string or an integer (what the gateway sends), else omitted. The payload may be any
 * JSON, the reserved key included (it is nested). CABLE_EINVAL, CABLE_ENOMEM.
 */
int cable_proto_reply_value(const char *request_json, size_t request_len, const char *payload,
                            size_t len, char **out, size_t *out_len);

/*
 * A data message: {"identifier":<id_json>,"message":<value_json>}. Both arguments are
 * already JSON text (from cable_proto_json_string and cable_proto_payload_value /
 * cable_proto_envelope_value) and are spliced without re-encoding.
 */
struct cable_frame *cable_proto_message(const char *id_json, size_t id_json_len,
                                        const char *value_json, size_t value_json_len);

/*
 * An ext data message: {"identifier":<id_json>,"message":<value_json>,
 * "stream_id":"<stream>","epoch":"<epoch>","offset":N}. NULL on ENOMEM or a stream or
 * epoch that is not UTF-8.
 */
struct cable_frame *cable_proto_message_ext(const char *id_json, size_t id_json_len,
                                            const char *value_json, size_t value_json_len,
                                            const char *stream, size_t stream_len,
                                            const char *epoch, unsigned long long offset);

#endif
