/*
 * libFuzzer target for plugin/core/proto.c.
 *
 * The input is one client text frame. Decoding must never crash; when a command
 * decodes, the confirm and reject replies for its identifier must be valid JSON that
 * echo the identifier byte for byte. The same bytes are then used as an MQTT payload
 * and as a string to encode: every value produced must parse back (jansson) to what
 * went in, and base64 in the envelope must decode to the payload.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cable_proto.h"
#include "fuzz.h"

/* How the encoders' output is read back: any JSON value, NUL escapes allowed. */
#define READ_FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

static bool str_eq(const json_t *v, const char *s, size_t len)
{
	return json_is_string(v) && json_string_length(v) == len &&
	       (len == 0 || memcmp(json_string_value(v), s, len) == 0);
}

/* A reply frame parses as {"identifier": id, "type": type} and nothing else. */
static void check_reply(struct cable_frame *f, const char *id, size_t id_len, const char *type)
{
	json_t *root;

	CHECK(f != NULL);
	CHECK(cable_frame_data(f)[f->len] == '\0');
	root = json_loadb(cable_frame_data(f), f->len, 0, NULL);
	CHECK(json_is_object(root));
	CHECK(json_object_size(root) == 2);
	CHECK(str_eq(json_object_get(root, "identifier"), id, id_len));
	CHECK(str_eq(json_object_get(root, "type"), type, strlen(type)));
	json_decref(root);
	cable_frame_unref(f);
}

/* An ext history request reads without failing oddly, whatever it holds. */
static void check_history(const struct cable_cmd *cmd)
{
	struct cable_history_request req;
	size_t i;
	int rc;

	CHECK(cmd->history == NULL || cmd->kind == CABLE_CMD_SUBSCRIBE ||
	      cmd->kind == CABLE_CMD_HISTORY);
	rc = cable_proto_history_request(cmd->history, &req, NULL);
	CHECK(rc == CABLE_OK || rc == CABLE_EPROTO || rc == CABLE_ENOMEM);
	CHECK(req.since >= 0);
	if (rc == CABLE_OK) {
		CHECK(req.npos <= CABLE_PROTO_MAX_POSITIONS);
		for (i = 0; i < req.npos; i++) {
			CHECK(req.pos[i].stream != NULL);
			CHECK(!req.pos[i].valid || req.pos[i].epoch != NULL);
		}
	}
	cable_history_request_release(&req);
}

static void check_command(const struct cable_cmd *cmd)
{
	struct cable_frame *f;
	char *id_json;
	size_t id_json_len;
	json_t *root;

	CHECK(cmd->root != NULL && cmd->command != NULL);
	CHECK(cmd->kind <= CABLE_CMD_PONG);
	if (cmd->kind != CABLE_CMD_UNKNOWN && cmd->kind != CABLE_CMD_PONG)
		CHECK(cmd->identifier != NULL && cmd->identifier_len > 0);
	check_history(cmd);
	CHECK((cmd->kind == CABLE_CMD_MESSAGE) == (cmd->data != NULL));
	/* Presence and whisper values are borrowed from the command, of the promised types. */
	CHECK(cmd->kind != CABLE_CMD_WHISPER || cmd->value != NULL);
	CHECK(cmd->value == NULL || cmd->kind == CABLE_CMD_WHISPER ||
	      cmd->kind == CABLE_CMD_PRESENCE);
	CHECK(cmd->presence == NULL ||
	      (json_is_object(cmd->presence) &&
	       (cmd->kind == CABLE_CMD_SUBSCRIBE || cmd->kind == CABLE_CMD_JOIN)));
	if (cmd->identifier == NULL)
		return;

	check_reply(cable_proto_confirm(cmd->identifier, cmd->identifier_len), cmd->identifier,
	            cmd->identifier_len, "confirm_subscription");
	check_reply(cable_proto_reject(cmd->identifier, cmd->identifier_len), cmd->identifier,
	            cmd->identifier_len, "reject_subscription");

	/* The pre-encoded form used for broadcasts splices into a valid message. */
	id_json = cable_proto_json_string(cmd->identifier, cmd->identifier_len, &id_json_len);
	CHECK(id_json != NULL);
	f = cable_proto_message(id_json, id_json_len, "{\"k\":[1,\"v\"]}", 13);
	CHECK(f != NULL);
	root = json_loadb(cable_frame_data(f), f->len, 0, NULL);
	CHECK(json_is_object(root));
	CHECK(str_eq(json_object_get(root, "identifier"), cmd->identifier, cmd->identifier_len));
	CHECK(json_is_object(json_object_get(root, "message")));
	json_decref(root);
	cable_frame_unref(f);
	/* The presence frame splices the same way. */
	f = cable_proto_presence(id_json, id_json_len, "{\"type\":\"error\"}", 16);
	CHECK(f != NULL);
	root = json_loadb(cable_frame_data(f), f->len, 0, NULL);
	CHECK(str_eq(json_object_get(root, "identifier"), cmd->identifier, cmd->identifier_len));
	CHECK(str_eq(json_object_get(root, "type"), "presence", 8));
	json_decref(root);
	cable_frame_unref(f);
	free(id_json);
}

static void check_decode(const char *in, size_t size)
{
	struct cable_cmd cmd;
	struct cable_error err;
	size_t i;
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	memset(&err, 0, sizeof(err));
	rc = cable_proto_decode(in, size, &cmd, &err);
	if (rc == CABLE_OK) {
		check_command(&cmd);
		cable_cmd_release(&cmd);
		CHECK(cmd.root == NULL);
		return;
	}
	CHECK(rc == CABLE_EPROTO || rc == CABLE_ENOMEM);
	CHECK(err.code == rc);
	CHECK(cmd.root == NULL);
	CHECK(err.offset <= size);
	for (i = 0; err.text[i] != '\0'; i++)
		CHECK(err.text[i] >= 0x20 && err.text[i] < 0x7F); /* safe to log */
}

/* Standard base64 with padding decodes back to the payload. */
static void check_base64(const json_t *v, const char *payload, size_t len)
{
	const char *b64;
	size_t n, pad = 0;
	unsigned char *out;
	int got;

	CHECK(json_is_string(v));
	b64 = json_string_value(v);
	n = json_string_length(v);
	CHECK(n == (len + 2) / 3 * 4);
	if (n == 0)
		return;
	while (pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	CHECK(out != NULL);
	got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	CHECK(got >= 0 && (size_t)got == n / 4 * 3);
	CHECK((size_t)got - pad == len && memcmp(out, payload, len) == 0);
	free(out);
}

static void check_payload(const char *in, size_t size)
{
	char *value = NULL, *env = NULL, *lit;
	size_t value_len = 0, env_len = 0, lit_len = 0;
	json_t *v, *root;
	int rc;

	/* As a string: absent only for ill-formed UTF-8; otherwise reads back exactly. */
	lit = cable_proto_json_string(in, size, &lit_len);
	if (lit != NULL) {
		CHECK(lit[lit_len] == '\0');
		v = json_loadb(lit, lit_len, READ_FLAGS, NULL);
		CHECK(str_eq(v, in, size));
		json_decref(v);
	}

	rc = cable_proto_payload_value(in, size, &value, &value_len);
	if (rc == CABLE_OK) {
		CHECK(value[value_len] == '\0');
		v = json_loadb(value, value_len, READ_FLAGS, NULL);
		CHECK(v != NULL);
		/* Either the payload itself (a JSON document) or a string holding it. */
		CHECK((value_len == size && memcmp(value, in, size) == 0) || str_eq(v, in, size));
		json_decref(v);
	} else {
		CHECK(rc == CABLE_EINVAL || rc == CABLE_ENOMEM);
		if (rc == CABLE_EINVAL)
			CHECK(lit == NULL || memchr(in, 0, size) != NULL); /* binary */
	}

	rc = cable_proto_envelope_value("t/\xc3\xa9", 4, in, size, size & 1, &env, &env_len);
	CHECK(rc == CABLE_OK || rc == CABLE_ENOMEM);
	if (rc == CABLE_OK) {
		root = json_loadb(env, env_len, READ_FLAGS, NULL);
		CHECK(json_is_object(root) && json_object_size(root) == 3);
		CHECK(str_eq(json_object_get(root, "topic"), "t/\xc3\xa9", 4));
		CHECK(json_is_boolean(json_object_get(root, "retain")));
		CHECK(json_is_true(json_object_get(root, "retain")) == (int)(size & 1));
		if (value != NULL) {
			/* Same value as payload_value, spliced verbatim. */
			CHECK(json_object_get(root, "payload") != NULL);
			CHECK(memmem(env, env_len, value, value_len) != NULL);
		} else {
			check_base64(json_object_get(root, "payload_base64"), in, size);
		}
		json_decref(root);
		free(env);
	}
	free(value);
	free(lit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;

	check_decode(in, size);
	check_payload(in, size);
	/* A ?sid= value: valid only as 32 base64url characters. */
	if (cable_proto_sid_valid(in, size))
		CHECK(size == CABLE_PROTO_SID_LEN && memchr(in, '=', size) == NULL);
	return 0;
}
