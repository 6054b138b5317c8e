/*
 * The ActionCable wire protocol: decoding client commands, encoding server messages.
 * Pure; any thread; see cable_proto.h.
 *
 * DESIGN: decoding goes through jansson (json_loadb, never a NUL-terminated copy).
 * Encoding does not: every server message is a fixed template with at most a few
 * variable parts, so each encoder describes its output as a short list of pieces
 * (raw bytes, bytes to write as a JSON string, bytes to write as base64), measures
 * it, allocates once and writes each piece in place. Identifiers are thus echoed
 * byte for byte, and cable_proto_message splices two ready JSON texts with memcpy.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cable_proto.h"

/* ---- UTF-8 and JSON string escaping ---------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629, Unicode table 3-7) at p, or 0
 * if it is ill-formed (overlong, surrogate, above U+10FFFF, truncated). This is the
 * JSON notion of text: unlike cable_utf8_valid (MQTT's rules) it allows control
 * characters and non-characters, which a JSON string can carry.
 */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		n = 2;
	} else if (c < 0xF0) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c < 0xF5) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	return n;
}

/* Well-formed UTF-8 without NUL bytes: text we can put in a JSON string. */
static bool utf8_text(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if (u[i] == 0)
			return false;
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		n = utf8_seq(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * Length of s written as a JSON string literal, quotes included. False if s is not
 * well-formed UTF-8 (NUL is allowed and written as \u0000).
 */
static bool json_string_len(const char *s, size_t len, size_t *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, total = 2;

	/* Each byte becomes at most 6: "\u00XX". Keeps the sum below from overflowing. */
	if (len > (SIZE_MAX - 2) / 6)
		return false;
	while (i < len) {
		if (u[i] >= 0x80) {
			n = utf8_seq(u + i, len - i);
			if (n == 0)
				return false;
			total += n;
			i += n;
			continue;
		}
		switch (u[i]) {
		case '"':
		case '\\':
		case '\b':
		case '\f':
		case '\n':
		case '\r':
		case '\t':
			total += 2;
			break;
		default:
			total += u[i] < 0x20 ? 6 : 1;
			break;
		}
		i++;
	}
	*out = total;
	return true;
}

/*
 * Write s as a JSON string literal at dst (json_string_len bytes, already checked).
 * Runs of bytes that need no escape, UTF-8 sequences included, are copied whole.
 * '/' and U+007F stay raw: JSON allows both.
 */
static char *json_string_write(char *dst, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i, run = 0;
	unsigned char c;

	*dst++ = '"';
	for (i = 0; i < len; i++) {
		c = u[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		memcpy(dst, s + run, i - run);
		dst += i - run;
		run = i + 1;
		*dst++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*dst++ = (char)c;
			break;
		case '\b':
			*dst++ = 'b';
			break;
		case '\f':
			*dst++ = 'f';
			break;
		case '\n':
			*dst++ = 'n';
			break;
		case '\r':
			*dst++ = 'r';
			break;
		case '\t':
			*dst++ = 't';
			break;
		default:
			*dst++ = 'u';
			*dst++ = '0';
			*dst++ = '0';
			*dst++ = hex[c >> 4];
			*dst++ = hex[c & 0xF];
			break;
		}
	}
	if (len > run) {
		memcpy(dst, s + run, len - run);
		dst += len - run;
	}
	*dst++ = '"';
	return dst;
}

/* ---- Output built from pieces ----------------------------------------------------- */

enum piece_kind {
	PIECE_RAW,    /* copied as is */
	PIECE_STRING, /* written as a JSON string literal */
	PIECE_BASE64, /* written as standard base64 with padding, no quotes, no newlines */
};

struct piece {
	enum piece_kind kind;
	const char *p;
	size_t len;
};

/* A raw piece for a string literal (never NULL, length known at compile time). */
#define RAW(lit) ((struct piece){PIECE_RAW, (lit), sizeof(lit) - 1})

/* EVP_EncodeBlock takes an int length; whole groups of 3 bytes encode independently. */
#define BASE64_CHUNK ((size_t)3 * 16384)

static bool base64_len(size_t len, size_t *out)
{
	if (len > SIZE_MAX / 4 - 3)
		return false;
	*out = (len + 2) / 3 * 4;
	return true;
}

/*
 * EVP_EncodeBlock NUL-terminates its output, so it writes one byte past the base64
 * text. Every buffer built here reserves a final NUL byte after the last piece, so
 * that byte is either overwritten by the next piece or is the terminator itself.
 */
static char *base64_write(char *dst, const char *s, size_t len)
{
	size_t chunk;
	int n;

	while (len > 0) {
		chunk = len < BASE64_CHUNK ? len : BASE64_CHUNK;
		n = EVP_EncodeBlock((unsigned char *)dst, (const unsigned char *)s, (int)chunk);
		dst += n;
		s += chunk;
		len -= chunk;
	}
	return dst;
}

/* Total output length of the pieces; false if a string piece is not valid UTF-8. */
static bool pieces_len(const struct piece *pc, size_t n, size_t *out)
{
	size_t i, total = 0, l;

	for (i = 0; i < n; i++) {
		switch (pc[i].kind) {
		case PIECE_RAW:
			l = pc[i].len;
			break;
		case PIECE_STRING:
			if (!json_string_len(pc[i].p, pc[i].len, &l))
				return false;
			break;
		case PIECE_BASE64:
			if (!base64_len(pc[i].len, &l))
				return false;
			break;
		default:
			return false;
		}
		if (l > SIZE_MAX - 64 - total)
			return false; /* leave room for the frame header and the NUL */
		total += l;
	}
	*out = total;
	return true;
}

static void pieces_write(char *dst, const struct piece *pc, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		switch (pc[i].kind) {
		case PIECE_RAW:
			/* len may be 0 with p NULL; memcpy must not see a NULL pointer. */
			if (pc[i].len > 0) {
				memcpy(dst, pc[i].p, pc[i].len);
				dst += pc[i].len;
			}
			break;
		case PIECE_STRING:
			dst = json_string_write(dst, pc[i].p, pc[i].len);
			break;
		case PIECE_BASE64:
			dst = base64_write(dst, pc[i].p, pc[i].len);
			break;
		}
	}
}

/* A frame holding the pieces; NULL on ENOMEM or a string piece that is not UTF-8. */
static struct cable_frame *frame_from_pieces(const struct piece *pc, size_t n)
{
	struct cable_frame *f;
	size_t len;

	if (!pieces_len(pc, n, &len))
		return NULL;
	f = cable_frame_new(len);
	if (f == NULL)
		return NULL;
	pieces_write(cable_frame_data(f), pc, n);
	return f;
}

/* A malloc'd NUL-terminated text holding the pieces. */
static int text_from_pieces(const struct piece *pc, size_t n, char **out, size_t *out_len)
{
	char *s;
	size_t len;

	if (!pieces_len(pc, n, &len))
		return CABLE_EINVAL;
	s = malloc(len + 1);
	if (s == NULL)
		return CABLE_ENOMEM;
	pieces_write(s, pc, n);
	s[len] = '\0';
	*out = s;
	*out_len = len;
	return CABLE_OK;
}

/* ---- Decoding --------------------------------------------------------------------- */

/*
 * jansson's message quotes the input near the error ("near 'xyz'"); keep it for the
 * log but replace anything that is not printable ASCII, so a client cannot write
 * control characters or broken UTF-8 into our log lines.
 */
static int decode_syntax_error(struct cable_error *err, const json_error_t *jerr)
{
	char text[sizeof(jerr->text)];
	size_t i;

	for (i = 0; i + 1 < sizeof(text) && jerr->text[i] != '\0'; i++) {
		unsigned char c = (unsigned char)jerr->text[i];
		text[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
	}
	text[i] = '\0';
	if (err)
		err->offset = jerr->position > 0 ? (size_t)jerr->position : 0;
	return cable_error_set(err, CABLE_EPROTO, "not JSON: %s", text);
}

/* Fail with "<key> missing/not a string/empty"; offset 0 (a JSON value has no single byte). */
static int decode_field_error(struct cable_error *err, const char *key, const char *what)
{
	if (err)
		err->offset = 0;
	return cable_error_set(err, CABLE_EPROTO, "\"%s\" %s", key, what);
}

static bool bytes_eq(const char *a, size_t alen, const char *lit)
{
	size_t n = strlen(lit);

	return alen == n && memcmp(a, lit, n) == 0;
}

/* A string member of obj: 0 if present and a string, else an EPROTO naming the key. */
static int string_member(json_t *obj, const char *key, const char **s, size_t *len,
                         struct cable_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return decode_field_error(err, key, "missing");
	if (!json_is_string(v))
		return decode_field_error(err, key, "is not a string");
	*s = json_string_value(v);
	*len = json_string_length(v);
	return CABLE_OK;
}

/* The commands we know, by their exact name. */
static const struct {
	const char *name;
	enum cable_cmd_kind kind;
} commands[] = {
        {"subscribe", CABLE_CMD_SUBSCRIBE}, {"unsubscribe", CABLE_CMD_UNSUBSCRIBE},
        {"message", CABLE_CMD_MESSAGE},     {"join", CABLE_CMD_JOIN},
        {"leave", CABLE_CMD_LEAVE},         {"presence", CABLE_CMD_PRESENCE},
        {"whisper", CABLE_CMD_WHISPER},     {"history", CABLE_CMD_HISTORY},
        {"pong", CABLE_CMD_PONG},
};

int cable_proto_decode(const char *buf, size_t len, struct cable_cmd *out, struct cable_error *err)
{
	struct cable_cmd cmd;
	size_t i;
	json_error_t jerr;
	json_t *root, *v;
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	/* Duplicate keys are refused: which copy wins differs between parsers, and a
	 * command whose meaning depends on the parser is not one we want to act on.
	 * NUL inside strings ("\u0000") stays refused too (no JSON_ALLOW_NUL), so the
	 * identifier and data never contain a NUL byte. */
	root = json_loadb(buf ? buf : "", buf ? len : 0, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                  &jerr);
	if (root == NULL) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return cable_error_set(err, CABLE_ENOMEM, "out of memory");
		return decode_syntax_error(err, &jerr);
	}
	if (!json_is_object(root)) {
		if (err)
			err->offset = 0;
		rc = cable_error_set(err, CABLE_EPROTO, "not a JSON object");
		goto fail;
	}
	rc = string_member(root, "command", &cmd.command, &cmd.command_len, err);
	if (rc)
		goto fail;

	cmd.kind = CABLE_CMD_UNKNOWN;
	for (i = 0; i < CABLE_ARRAY_LEN(commands); i++) {
		if (bytes_eq(cmd.command, cmd.command_len, commands[i].name)) {
			cmd.kind = commands[i].kind;
			break;
		}
	}

	if (cmd.kind == CABLE_CMD_PONG)
		goto done;

	if (cmd.kind == CABLE_CMD_UNKNOWN) {
		/* Not ours to judge (e.g. AnyCable's "ping", "history"): pass the
		 * identifier along when there is a usable one, and nothing else. */
		v = json_object_get(root, "identifier");
		if (json_is_string(v)) {
			cmd.identifier = json_string_value(v);
			cmd.identifier_len = json_string_length(v);
		}
		goto done;
	}

	rc = string_member(root, "identifier", &cmd.identifier, &cmd.identifier_len, err);
	if (rc)
		goto fail;
	if (cmd.identifier_len == 0) {
		rc = decode_field_error(err, "identifier", "is empty");
		goto fail;
	}
	if (cmd.kind == CABLE_CMD_MESSAGE) {
		rc = string_member(root, "data", &cmd.data, &cmd.data_len, err);
		if (rc)
			goto fail;
	}
	if (cmd.kind == CABLE_CMD_SUBSCRIBE || cmd.kind == CABLE_CMD_HISTORY) {
		v = json_object_get(root, "history");
		cmd.history = json_is_object(v) ? v : NULL;
	}
	/* AnyCable's presence and whisper (a subscribe may carry a presence to re-join). */
	v = json_object_get(root, "presence");
	if (json_is_object(v) && (cmd.kind == CABLE_CMD_SUBSCRIBE || cmd.kind == CABLE_CMD_JOIN))
		cmd.presence = v;
	v = json_object_get(root, "data");
	if (cmd.kind == CABLE_CMD_WHISPER || cmd.kind == CABLE_CMD_PRESENCE)
		cmd.value = v;
	if (cmd.kind == CABLE_CMD_WHISPER && v == NULL) {
		rc = decode_field_error(err, "data", "is missing");
		goto fail;
	}
done:
	cmd.root = root;
	*out = cmd;
	return CABLE_OK;
fail:
	json_decref(root);
	return rc;
}

void cable_cmd_release(struct cable_cmd *cmd)
{
	if (cmd == NULL)
		return;
	json_decref(cmd->root);
	memset(cmd, 0, sizeof(*cmd));
}

/* ---- Ext: history requests and session ids --------------------------------------- */

int cable_proto_history_request(const json_t *history, struct cable_history_request *out,
                                struct cable_error *err)
{
	json_t *since, *streams, *pos, *epoch, *offset;
	struct cable_stream_pos *p;
	const char *name;
	void *iter;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(history))
		return CABLE_OK;
	since = json_object_get(history, "since");
	if (json_is_integer(since) && json_integer_value(since) > 0)
		out->since = (long long)json_integer_value(since);
	else if (json_is_real(since) && json_real_value(since) >= 1 &&
	         json_real_value(since) < 9.0e15)
		out->since = (long long)json_real_value(since);
	streams = json_object_get(history, "streams");
	if (!json_is_object(streams))
		return CABLE_OK;
	out->has_streams = true;
	if (json_object_size(streams) > CABLE_PROTO_MAX_POSITIONS)
		return cable_error_set(err, CABLE_EPROTO, "more than %d stream positions",
		                       CABLE_PROTO_MAX_POSITIONS);
	if (json_object_size(streams) == 0)
		return CABLE_OK;
	out->pos = calloc(json_object_size(streams), sizeof(*out->pos));
	if (out->pos == NULL)
		return cable_error_set(err, CABLE_ENOMEM, "out of memory");
	/* Keys come back NUL-terminated; a key with a NUL inside cannot occur (decode refuses). */
	for (iter = json_object_iter(streams); iter; iter = json_object_iter_next(streams, iter)) {
		name = json_object_iter_key(iter);
		pos = json_object_iter_value(iter);
		p = &out->pos[out->npos++];
		p->stream = name;
		p->stream_len = strlen(name);
		epoch = json_object_get(pos, "epoch");
		offset = json_object_get(pos, "offset");
		if (json_is_string(epoch) && json_is_integer(offset) &&
		    json_integer_value(offset) >= 0) {
			p->epoch = json_string_value(epoch);
			p->epoch_len = json_string_length(epoch);
			p->offset = (unsigned long long)json_integer_value(offset);
			p->valid = true;
		}
	}
	return CABLE_OK;
}

void cable_history_request_release(struct cable_history_request *req)
{
	if (req == NULL)
		return;
	free(req->pos);
	memset(req, 0, sizeof(*req));
}

static const char sid_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void cable_proto_sid_encode(const unsigned char raw[CABLE_PROTO_SID_BYTES],
                            char out[CABLE_PROTO_SID_LEN + 1])
{
	size_t i, o = 0;
	unsigned v;

	/* base64url without padding: 3 bytes -> 4 characters, 24 bytes -> 32. */
	for (i = 0; i < CABLE_PROTO_SID_BYTES; i += 3) {
		v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
		out[o++] = sid_alphabet[(v >> 18) & 63];
		out[o++] = sid_alphabet[(v >> 12) & 63];
		out[o++] = sid_alphabet[(v >> 6) & 63];
		out[o++] = sid_alphabet[v & 63];
	}
	out[CABLE_PROTO_SID_LEN] = '\0';
}

bool cable_proto_sid_valid(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || len != CABLE_PROTO_SID_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '\0' || strchr(sid_alphabet, s[i]) == NULL)
			return false;
	}
	return true;
}

/* ---- Encoding --------------------------------------------------------------------- */

struct cable_frame *cable_proto_welcome(const char *sid)
{
	const struct piece plain[] = {RAW("{\"type\":\"welcome\"}")};
	struct piece with_sid[] = {
	        RAW("{\"type\":\"welcome\",\"sid\":"),
	        {PIECE_STRING, sid, 0},
	        RAW("}"),
	};

	/* Rails sends no sid; AnyCable always does. NULL selects the Rails form. */
	if (sid == NULL)
		return frame_from_pieces(plain, CABLE_ARRAY_LEN(plain));
	with_sid[1].len = strlen(sid);
	return frame_from_pieces(with_sid, CABLE_ARRAY_LEN(with_sid));
}

struct cable_frame *cable_proto_welcome_restored(const char *sid, const char *const *ids_json,
                                                 const size_t *ids_len, size_t nids)
{
	struct piece *pc;
	struct cable_frame *f;
	size_t n = 0, i;

	if (sid == NULL || (nids && (ids_json == NULL || ids_len == NULL)) ||
	    nids > (SIZE_MAX / sizeof(*pc) - 4) / 2)
		return NULL;
	pc = malloc((2 * nids + 4) * sizeof(*pc));
	if (pc == NULL)
		return NULL;
	pc[n++] = RAW("{\"type\":\"welcome\",\"sid\":");
	pc[n++] = (struct piece){PIECE_STRING, sid, strlen(sid)};
	pc[n++] = RAW(",\"restored\":true,\"restored_ids\":[");
	for (i = 0; i < nids; i++) {
		if (i)
			pc[n++] = RAW(",");
		pc[n++] = (struct piece){PIECE_RAW, ids_json[i], ids_len[i]};
	}
	pc[n++] = RAW("]}");
	f = frame_from_pieces(pc, n);
	free(pc);
	return f;
}

struct cable_frame *cable_proto_history_reply(const char *id, size_t id_len, bool confirmed)
{
	const struct piece pc[] = {
	        confirmed ? RAW("{\"type\":\"confirm_history\",\"identifier\":")
	                  : RAW("{\"type\":\"reject_history\",\"identifier\":"),
	        {PIECE_STRING, id, id_len},
	        RAW("}"),
	};

	if (id == NULL)
		return NULL;
	return frame_from_pieces(pc, CABLE_ARRAY_LEN(pc));
}

struct cable_frame *cable_proto_ping(long long unix_seconds)
{
	char buf[64];
	struct cable_frame *f;
	int n;

	n = snprintf(buf, sizeof(buf), "{\"type\":\"ping\",\"message\":%lld}", unix_seconds);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	f = cable_frame_new((size_t)n);
	if (f == NULL)
		return NULL;
	memcpy(cable_frame_data(f), buf, (size_t)n);
	return f;
}

/* {"identifier":<id>,"type":"<type>"}: the key order Rails uses. */
static struct cable_frame *subscription_reply(const char *id, size_t id_len,
                                              const struct piece *tail)
{
	const struct piece pc[] = {
	        RAW("{\"identifier\":"),
	        {PIECE_STRING, id, id_len},
	        *tail,
	};

	if (id == NULL && id_len > 0)
		return NULL;
	return frame_from_pieces(pc, CABLE_ARRAY_LEN(pc));
}

struct cable_frame *cable_proto_confirm(const char *id, size_t id_len)
{
	const struct piece tail = RAW(",\"type\":\"confirm_subscription\"}");

	return subscription_reply(id, id_len, &tail);
}

struct cable_frame *cable_proto_reject(const char *id, size_t id_len)
{
	const struct piece tail = RAW(",\"type\":\"reject_subscription\"}");

	return subscription_reply(id, id_len, &tail);
}

struct cable_frame *cable_proto_disconnect(const char *reason, bool reconnect)
{
	const struct piece yes = RAW(",\"reconnect\":true}");
	const struct piece no = RAW(",\"reconnect\":false}");
	struct piece pc[] = {
	        RAW("{\"type\":\"disconnect\",\"reason\":"),
	        {PIECE_STRING, reason, 0},
	        reconnect ? yes : no,
	};

	/* Rails and AnyCable always send a reason; an empty one beats dropping the key. */
	if (reason == NULL)
		pc[1].p = "";
	pc[1].len = strlen(pc[1].p);
	return frame_from_pieces(pc, CABLE_ARRAY_LEN(pc));
}

char *cable_proto_json_string(const char *s, size_t len, size_t *out_len)
{
	const struct piece pc[] = {{PIECE_STRING, s, len}};
	char *out;
	size_t n;

	if (s == NULL && len > 0)
		return NULL;
	if (text_from_pieces(pc, 1, &out, &n) != CABLE_OK)
		return NULL;
	if (out_len)
		*out_len = n;
	return out;
}

/*
 * Is the payload one JSON document? Returns 1 yes, 0 no, CABLE_ENOMEM. The value is
 * parsed only to be validated; the caller sends the original bytes. Large integers
 * are parsed as reals so a valid document such as 18446744073709551616 (too big for
 * jansson's json_int_t) still counts as JSON; "\u0000" is valid JSON and is allowed.
 */
static int payload_is_json(const char *payload, size_t len)
{
	json_error_t jerr;
	json_t *v;
	int rc = 1;

	if (len == 0)
		return 0;
	v = json_loadb(payload, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
	               &jerr);
	if (v == NULL)
		return json_error_code(&jerr) == json_error_out_of_memory ? CABLE_ENOMEM : 0;
	/* An object with the plugin's own key would pass for an answer (see the header). */
	if (json_is_object(v) && json_object_get(v, CABLE_PROTO_RESERVED_KEY) != NULL)
		rc = 2;
	json_decref(v);
	return rc;
}

static int payload_value(const char *payload, size_t len, bool reserve, char **out,
                         size_t *out_len);

int cable_proto_payload_value(const char *payload, size_t len, char **out, size_t *out_len)
{
	return payload_value(payload, len, true, out, out_len);
}

/* reserve: refuse (EDENIED) an object with the reserved key, which only answers carry. */
static int payload_value(const char *payload, size_t len, bool reserve, char **out, size_t *out_len)
{
	const struct piece as_string[] = {{PIECE_STRING, payload, len}};
	const struct piece verbatim[] = {{PIECE_RAW, payload, len}};
	int rc;

	if (out == NULL || out_len == NULL || (payload == NULL && len > 0))
		return CABLE_EINVAL;
	/* A raw NUL byte marks binary data (C strings, packed structs) even where the
	 * rest happens to be UTF-8; no JSON document contains one either. */
	if (!utf8_text(payload, len))
		return CABLE_EINVAL;
	rc = payload_is_json(payload, len);
	if (rc < 0)
		return rc;
	if (rc == 2 && reserve)
		return CABLE_EDENIED;
	if (rc >= 1)
		return text_from_pieces(verbatim, 1, out, out_len);
	return text_from_pieces(as_string, 1, out, out_len);
}

int cable_proto_envelope_value(const char *topic, size_t topic_len, const char *payload, size_t len,
                               bool retain, char **out, size_t *out_len)
{
	const struct piece yes = RAW(",\"retain\":true}");
	const struct piece no = RAW(",\"retain\":false}");
	char *value = NULL;
	size_t value_len = 0;
	int rc;

	if (out == NULL || out_len == NULL || (topic == NULL && topic_len > 0) ||
	    (payload == NULL && len > 0))
		return CABLE_EINVAL;
	if (!utf8_text(topic, topic_len))
		return CABLE_EINVAL;
	/* Nested under "payload", an object with the reserved key cannot pass for an answer. */
	rc = payload_value(payload, len, false, &value, &value_len);
	if (rc == CABLE_OK) {
		const struct piece pc[] = {
		        RAW("{\"topic\":"),   {PIECE_STRING, topic, topic_len},
		        RAW(",\"payload\":"), {PIECE_RAW, value, value_len},
		        retain ? yes : no,
		};

		rc = text_from_pieces(pc, CABLE_ARRAY_LEN(pc), out, out_len);
		free(value);
	} else if (rc == CABLE_EINVAL) {
		/* Binary: base64 under its own key, so a consumer never has to guess
		 * whether a string payload was text or encoded bytes. */
		const struct piece pc[] = {
		        RAW("{\"topic\":"),
		        {PIECE_STRING, topic, topic_len},
		        RAW(",\"payload_base64\":\""),
		        {PIECE_BASE64, payload, len},
		        RAW("\""),
		        retain ? yes : no,
		};

		rc = text_from_pieces(pc, CABLE_ARRAY_LEN(pc), out, out_len);
	}
	return rc;
}

/* {<head>"identifier":<id_json>,"message":<value_json>}; head is "" or "\"type\":…," */
static struct cable_frame *identified(struct piece head, const char *id_json, size_t id_json_len,
                                      const char *value_json, size_t value_json_len)
{
	const struct piece pc[] = {
	        RAW("{"),
	        head,
	        RAW("\"identifier\":"),
	        {PIECE_RAW, id_json, id_json_len},
	        RAW(",\"message\":"),
	        {PIECE_RAW, value_json, value_json_len},
	        RAW("}"),
	};

	if ((id_json == NULL && id_json_len > 0) || (value_json == NULL && value_json_len > 0))
		return NULL;
	return frame_from_pieces(pc, CABLE_ARRAY_LEN(pc));
}

struct cable_frame *cable_proto_message(const char *id_json, size_t id_json_len,
                                        const char *value_json, size_t value_json_len)
{
	return identified(RAW(""), id_json, id_json_len, value_json, value_json_len);
}

struct cable_frame *cable_proto_message_ext(const char *id_json, size_t id_json_len,
                                            const char *value_json, size_t value_json_len,
                                            const char *stream, size_t stream_len,
                                            const char *epoch, unsigned long long offset)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%llu}", offset);
	const struct piece pc[] = {
	        RAW("{\"identifier\":"), {PIECE_RAW, id_json, id_json_len},
	        RAW(",\"message\":"),    {PIECE_RAW, value_json, value_json_len},
	        RAW(",\"stream_id\":"),  {PIECE_STRING, stream, stream_len},
	        RAW(",\"epoch\":"),      {PIECE_STRING, epoch, epoch ? strlen(epoch) : 0},
	        RAW(",\"offset\":"),     {PIECE_RAW, num, n > 0 ? (size_t)n : 0},
	};

	if ((id_json == NULL && id_json_len > 0) || (value_json == NULL && value_json_len > 0) ||
	    stream == NULL || epoch == NULL)
		return NULL;
	return frame_from_pieces(pc, CABLE_ARRAY_LEN(pc));
}

struct cable_frame *cable_proto_presence(const char *id_json, size_t id_json_len,
                                         const char *value_json, size_t value_json_len)
{
	return identified(RAW("\"type\":\"presence\","), id_json, id_json_len, value_json,
	                  value_json_len);
}

/* Is s (len bytes) the JSON text of a string or an integer? */
static bool request_id_valid(const char *s, size_t len)
{
	json_error_t jerr;
	json_t *v;
	bool ok;

	if (s == NULL || len == 0)
		return false;
	v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	ok = v != NULL && (json_is_string(v) || json_is_integer(v));
	json_decref(v);
	return ok;
}

int cable_proto_answer_value(const char *kind, const char *action, size_t action_len,
                             const char *request_json, size_t request_len, const char *reason,
                             char **out, size_t *out_len)
{
	struct piece pc[10];
	size_t n = 0;

	if (kind == NULL || out == NULL || out_len == NULL)
		return CABLE_EINVAL;
	pc[n++] = RAW("{\"" CABLE_PROTO_RESERVED_KEY "\":");
	pc[n++] = (struct piece){PIECE_STRING, kind, strlen(kind)};
	if (action) {
		pc[n++] = RAW(",\"action\":");
		pc[n++] = (struct piece){PIECE_STRING, action, action_len};
	}
	if (request_id_valid(request_json, request_len)) {
		pc[n++] = RAW(",\"request\":");
		pc[n++] = (struct piece){PIECE_RAW, request_json, request_len};
	}
	if (reason) {
		pc[n++] = RAW(",\"reason\":");
		pc[n++] = (struct piece){PIECE_STRING, reason, strlen(reason)};
	}
	pc[n++] = RAW("}");
	return text_from_pieces(pc, n, out, out_len);
}

int cable_proto_reply_value(const char *request_json, size_t request_len, const char *payload,
                            size_t len, char **out, size_t *out_len)
{
	struct piece pc[8];
	char *value = NULL;
	size_t value_len = 0, n = 0;
	int rc;

	if (out == NULL || out_len == NULL || (payload == NULL && len > 0))
		return CABLE_EINVAL;
	pc[n++] = RAW("{\"" CABLE_PROTO_RESERVED_KEY "\":\"reply\"");
	if (request_id_valid(request_json, request_len)) {
		pc[n++] = RAW(",\"request\":");
		pc[n++] = (struct piece){PIECE_RAW, request_json, request_len};
	}
	rc = payload_value(payload, len, false, &value, &value_len);
	if (rc == CABLE_OK) {
		pc[n++] = RAW(",\"payload\":");
		pc[n++] = (struct piece){PIECE_RAW, value, value_len};
	} else if (rc == CABLE_EINVAL) {
		pc[n++] = RAW(",\"payload_base64\":\"");
		pc[n++] = (struct piece){PIECE_BASE64, payload, len};
		pc[n++] = RAW("\"");
	} else {
		return rc;
	}
	pc[n++] = RAW("}");
	rc = text_from_pieces(pc, n, out, out_len);
	free(value);
	return rc;
}

const char *cable_disconnect_name(enum cable_disconnect reason)
{
	static const char *const names[CABLE_DISCONNECT_COUNT] = {
	        [CABLE_DISCONNECT_UNAUTHORIZED] = "unauthorized",
	        [CABLE_DISCONNECT_INVALID_REQUEST] = "invalid_request",
	        [CABLE_DISCONNECT_SERVER_RESTART] = "server_restart",
	        [CABLE_DISCONNECT_SERVER_ERROR] = "server_error",
	        [CABLE_DISCONNECT_TOKEN_EXPIRED] = "token_expired",
	        [CABLE_DISCONNECT_TOO_SLOW] = "too_slow",
	        [CABLE_DISCONNECT_TOO_MANY_CONNECTIONS] = "too_many_connections",
	        [CABLE_DISCONNECT_NO_PONG] = "no_pong",
	};

	return (unsigned)reason < CABLE_DISCONNECT_COUNT ? names[reason] : NULL;
}
