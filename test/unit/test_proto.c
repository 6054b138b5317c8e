/*
 * Unit tests for plugin/core/proto.c: command decoding (every error the header lists),
 * exact bytes of every server message, identifier echo byte for byte, and the
 * payload / envelope values spliced into data messages.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cable_proto.h"
#include "test.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- helpers ------------------------------------------------------------------------ */

static int decode(const char *json, struct cable_cmd *cmd, struct cable_error *err)
{
	return cable_proto_decode(json, strlen(json), cmd, err);
}

/* Decoding must fail with EPROTO, say `what` somewhere in the text, and leave *out alone. */
static void expect_decode_error(const char *buf, size_t len, const char *what)
{
	struct cable_cmd cmd;
	struct cable_error err;
	unsigned char sentinel[sizeof(cmd)];

	memset(&cmd, 0xA5, sizeof(cmd));
	memset(sentinel, 0xA5, sizeof(sentinel));
	memset(&err, 0, sizeof(err));
	ASSERT_EQ(cable_proto_decode(buf, len, &cmd, &err), CABLE_EPROTO);
	ASSERT_EQ(err.code, CABLE_EPROTO);
	if (strstr(err.text, what) == NULL)
		TEST_FAIL_("error text \"%s\" lacks \"%s\" for input \"%.*s\"", err.text, what,
		           (int)len, buf);
	ASSERT(memcmp(&cmd, sentinel, sizeof(cmd)) == 0); /* untouched */
}

static void expect_frame(struct cable_frame *f, const char *expected)
{
	ASSERT_NOT_NULL(f);
	ASSERT_EQ(f->refs, 1);
	ASSERT_EQ(f->len, strlen(expected));
	ASSERT_MEM_EQ(cable_frame_data(f), expected, f->len);
	ASSERT_EQ(cable_frame_data(f)[f->len], '\0');
	cable_frame_unref(f);
}

/* Takes the outputs by address: they are read only after `rc` has been computed. */
static void expect_text(int rc, char **out, const size_t *out_len, const char *expected)
{
	ASSERT_EQ(rc, CABLE_OK);
	ASSERT_NOT_NULL(*out);
	ASSERT_EQ(*out_len, strlen(expected));
	ASSERT_MEM_EQ(*out, expected, *out_len);
	ASSERT_EQ((*out)[*out_len], '\0');
	free(*out);
	*out = NULL;
}

/* Parse a frame as JSON and return its string member `key` (borrowed from *root). */
static const char *frame_member(struct cable_frame *f, const char *key, json_t **root, size_t *len)
{
	json_error_t jerr;
	json_t *v;

	*root = json_loadb(cable_frame_data(f), f->len, 0, &jerr);
	if (*root == NULL)
		TEST_FAIL_("frame is not JSON (%s): %s", jerr.text, cable_frame_data(f));
	v = json_object_get(*root, key);
	ASSERT(json_is_string(v));
	*len = json_string_length(v);
	return json_string_value(v);
}

/* ---- decoding ----------------------------------------------------------------------- */

static void test_decode_subscribe(void)
{
	static const char id[] = "{\"channel\":\"ChatChannel\",\"id\":42}";
	struct cable_cmd cmd;
	struct cable_error err;

	ASSERT_OK(decode("{\"command\":\"subscribe\",\"identifier\":"
	                 "\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"id\\\":42}\"}",
	                 &cmd, &err));
	ASSERT_EQ(cmd.kind, CABLE_CMD_SUBSCRIBE);
	ASSERT_EQ(cmd.command_len, 9);
	ASSERT_MEM_EQ(cmd.command, "subscribe", 9);
	ASSERT_EQ(cmd.identifier_len, sizeof(id) - 1);
	ASSERT_MEM_EQ(cmd.identifier, id, sizeof(id) - 1);
	ASSERT_NULL(cmd.data);
	ASSERT_EQ(cmd.data_len, 0);
	ASSERT_NOT_NULL(cmd.root);
	cable_cmd_release(&cmd);
	ASSERT_NULL(cmd.root);
	ASSERT_NULL(cmd.identifier);
	cable_cmd_release(&cmd); /* a released (zeroed) command may be released again */
}

static void test_decode_unsubscribe_and_message(void)
{
	struct cable_cmd cmd;

	/* Key order does not matter; extra keys are ignored. */
	ASSERT_OK(decode("{\"identifier\":\"x\",\"extra\":[1,2],\"command\":\"unsubscribe\"}", &cmd,
	                 NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNSUBSCRIBE);
	ASSERT_EQ(cmd.identifier_len, 1);
	ASSERT_MEM_EQ(cmd.identifier, "x", 1);
	ASSERT_NULL(cmd.data);
	cable_cmd_release(&cmd);

	ASSERT_OK(decode("{\"command\":\"message\",\"identifier\":\"{\\\"channel\\\":\\\"C\\\"}\","
	                 "\"data\":\"{\\\"text\\\":\\\"hi\\\",\\\"action\\\":\\\"speak\\\"}\"}",
	                 &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_MESSAGE);
	ASSERT_EQ(cmd.identifier_len, strlen("{\"channel\":\"C\"}"));
	ASSERT_MEM_EQ(cmd.identifier, "{\"channel\":\"C\"}", cmd.identifier_len);
	ASSERT_EQ(cmd.data_len, strlen("{\"text\":\"hi\",\"action\":\"speak\"}"));
	ASSERT_MEM_EQ(cmd.data, "{\"text\":\"hi\",\"action\":\"speak\"}", cmd.data_len);
	cable_cmd_release(&cmd);

	/* An empty data string is a string: whether it means anything is not ours to say. */
	ASSERT_OK(
	        decode("{\"command\":\"message\",\"identifier\":\"x\",\"data\":\"\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_MESSAGE);
	ASSERT_NOT_NULL(cmd.data);
	ASSERT_EQ(cmd.data_len, 0);
	cable_cmd_release(&cmd);
}

static void test_decode_unknown_command(void)
{
	struct cable_cmd cmd;

	ASSERT_OK(decode("{\"command\":\"ping\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNKNOWN);
	ASSERT_EQ(cmd.command_len, 4);
	ASSERT_MEM_EQ(cmd.command, "ping", 4);
	ASSERT_NULL(cmd.identifier);
	ASSERT_NULL(cmd.data);
	cable_cmd_release(&cmd);

	ASSERT_OK(
	        decode("{\"command\":\"history\",\"identifier\":\"id\",\"history\":{\"since\":1}}",
	               &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_HISTORY);
	ASSERT_NOT_NULL(cmd.history);
	ASSERT_EQ(cmd.identifier_len, 2);
	ASSERT_MEM_EQ(cmd.identifier, "id", 2);
	cable_cmd_release(&cmd);

	/* The identifier rules are for known commands only. */
	ASSERT_OK(decode("{\"command\":\"shout\",\"identifier\":7,\"data\":{}}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNKNOWN);
	ASSERT_NULL(cmd.identifier);
	ASSERT_NULL(cmd.data);
	cable_cmd_release(&cmd);

	/* Commands are compared byte for byte: no case folding, no prefixes. */
	ASSERT_OK(decode("{\"command\":\"Subscribe\",\"identifier\":\"x\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNKNOWN);
	cable_cmd_release(&cmd);
	ASSERT_OK(decode("{\"command\":\"subscribex\",\"identifier\":\"x\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNKNOWN);
	cable_cmd_release(&cmd);
	ASSERT_OK(decode("{\"command\":\"\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNKNOWN);
	ASSERT_EQ(cmd.command_len, 0);
	cable_cmd_release(&cmd);
}

/* AnyCable's presence and whisper commands (docs/protocol.md). */
static void test_decode_presence_whisper(void)
{
	struct cable_cmd cmd;

	ASSERT_OK(decode("{\"command\":\"join\",\"identifier\":\"i\",\"presence\":{\"id\":\"7\","
	                 "\"info\":{\"name\":\"Ann\"}}}",
	                 &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_JOIN);
	ASSERT(json_is_object(cmd.presence));
	ASSERT_NULL(cmd.value);
	cable_cmd_release(&cmd);
	/* A join without a presence object is still a join (the id is the user's anyway). */
	ASSERT_OK(decode("{\"command\":\"join\",\"identifier\":\"i\",\"presence\":7}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_JOIN);
	ASSERT_NULL(cmd.presence);
	cable_cmd_release(&cmd);
	ASSERT_OK(decode("{\"command\":\"leave\",\"identifier\":\"i\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_LEAVE);
	cable_cmd_release(&cmd);
	ASSERT_OK(
	        decode("{\"command\":\"presence\",\"identifier\":\"i\",\"data\":{}}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_PRESENCE);
	ASSERT(json_is_object(cmd.value));
	cable_cmd_release(&cmd);
	ASSERT_OK(decode("{\"command\":\"presence\",\"identifier\":\"i\"}", &cmd, NULL));
	ASSERT_NULL(cmd.value);
	cable_cmd_release(&cmd);
	/* Whisper data is raw JSON, of any type. */
	ASSERT_OK(decode("{\"command\":\"whisper\",\"identifier\":\"i\",\"data\":[1,\"x\"]}", &cmd,
	                 NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_WHISPER);
	ASSERT(json_is_array(cmd.value));
	ASSERT_NULL(cmd.data);
	cable_cmd_release(&cmd);
	ASSERT_EQ(decode("{\"command\":\"whisper\",\"identifier\":\"i\"}", &cmd, NULL),
	          CABLE_EPROTO);
	ASSERT_EQ(decode("{\"command\":\"join\",\"identifier\":7}", &cmd, NULL), CABLE_EPROTO);
	ASSERT_EQ(decode("{\"command\":\"leave\",\"identifier\":\"\"}", &cmd, NULL), CABLE_EPROTO);
	/* A subscribe may carry the presence to re-join with. */
	ASSERT_OK(decode(
	        "{\"command\":\"subscribe\",\"identifier\":\"i\",\"presence\":{\"id\":\"7\"}}",
	        &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_SUBSCRIBE);
	ASSERT(json_is_object(cmd.presence));
	cable_cmd_release(&cmd);
}

static void test_encode_presence(void)
{
	struct cable_frame *f =
	        cable_proto_presence("\"i\"", 3, "{\"type\":\"leave\",\"id\":\"u\"}", 25);

	ASSERT_NOT_NULL(f);
	ASSERT_STR_EQ(cable_frame_data(f),
	              "{\"type\":\"presence\",\"identifier\":\"i\",\"message\":{\"type\":\"leave\","
	              "\"id\":\"u\"}}");
	cable_frame_unref(f);
}

static void test_decode_identifier_unicode_and_escapes(void)
{
	/* \u escapes, raw UTF-8, an escaped quote and backslash, a newline, an emoji as a
	 * surrogate pair: the identifier is the unescaped bytes, exactly. */
	static const char json[] = "{\"command\":\"subscribe\",\"identifier\":"
	                           "\"{\\\"room\\\":\\\"caf\\u00e9 caf\xc3\xa9 \\\\ \\\" \\n "
	                           "\\ud83d\\ude00\\\"}\"}";
	static const char id[] = "{\"room\":\"caf\xc3\xa9 caf\xc3\xa9 \\ \" \n "
	                         "\xf0\x9f\x98\x80\"}";
	struct cable_cmd cmd;

	ASSERT_OK(decode(json, &cmd, NULL));
	ASSERT_EQ(cmd.identifier_len, sizeof(id) - 1);
	ASSERT_MEM_EQ(cmd.identifier, id, sizeof(id) - 1);
	cable_cmd_release(&cmd);
}

static void test_decode_uses_length_not_nul(void)
{
	static const char buf[] = "{\"command\":\"unsubscribe\",\"identifier\":\"a\"}GARBAGE";
	struct cable_cmd cmd;
	size_t len = sizeof(buf) - 1 - strlen("GARBAGE");

	ASSERT_OK(cable_proto_decode(buf, len, &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_UNSUBSCRIBE);
	cable_cmd_release(&cmd);
	/* With the garbage included it is not one JSON document. */
	expect_decode_error(buf, sizeof(buf) - 1, "not JSON");
}

static void test_decode_errors(void)
{
	struct cable_cmd cmd;
	struct cable_error err;

	/* Invalid JSON, with the byte offset of the problem. */
	memset(&err, 0, sizeof(err));
	ASSERT_EQ(decode("{\"command\":subscribe}", &cmd, &err), CABLE_EPROTO);
	ASSERT(strstr(err.text, "not JSON") != NULL);
	ASSERT_GE(err.offset, 11);
	ASSERT_LE(err.offset, 20);
	expect_decode_error(S(""), "not JSON");
	expect_decode_error(NULL, 0, "not JSON");
	expect_decode_error(S("{"), "not JSON");
	expect_decode_error(S("{\"command\":\"subscribe\",}"), "not JSON");
	expect_decode_error(S("{\"command\":\"subscribe\"} {}"), "not JSON");
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":\"a\xff\"}"), "not JSON");
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":\"\xed\xa0\x80\"}"),
	                    "not JSON"); /* UTF-8-encoded surrogate */
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":\"a\0b\"}"), "not JSON");
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":\"a\\u0000b\"}"),
	                    "not JSON");
	/* Duplicate keys: which one wins differs between parsers, so neither does. */
	expect_decode_error(S("{\"command\":\"subscribe\",\"command\":\"message\","
	                      "\"identifier\":\"x\",\"data\":\"{}\"}"),
	                    "not JSON");

	/* Valid JSON but not an object. */
	expect_decode_error(S("[]"), "not a JSON object");
	expect_decode_error(S("[{\"command\":\"subscribe\",\"identifier\":\"x\"}]"),
	                    "not a JSON object");
	expect_decode_error(S("\"subscribe\""), "not a JSON object");
	expect_decode_error(S("42"), "not a JSON object");
	expect_decode_error(S("null"), "not a JSON object");

	/* "command" missing or not a string. */
	expect_decode_error(S("{}"), "\"command\" missing");
	expect_decode_error(S("{\"identifier\":\"x\"}"), "\"command\" missing");
	expect_decode_error(S("{\"command\":1,\"identifier\":\"x\"}"),
	                    "\"command\" is not a string");
	expect_decode_error(S("{\"command\":null}"), "\"command\" is not a string");
	expect_decode_error(S("{\"command\":[\"subscribe\"]}"), "\"command\" is not a string");

	/* "identifier" missing, not a string, or empty, for every known command. */
	expect_decode_error(S("{\"command\":\"subscribe\"}"), "\"identifier\" missing");
	expect_decode_error(S("{\"command\":\"unsubscribe\"}"), "\"identifier\" missing");
	expect_decode_error(S("{\"command\":\"message\",\"data\":\"{}\"}"),
	                    "\"identifier\" missing");
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":42}"),
	                    "\"identifier\" is not a string");
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":{\"channel\":\"C\"}}"),
	                    "\"identifier\" is not a string");
	expect_decode_error(S("{\"command\":\"unsubscribe\",\"identifier\":null}"),
	                    "\"identifier\" is not a string");
	expect_decode_error(S("{\"command\":\"subscribe\",\"identifier\":\"\"}"),
	                    "\"identifier\" is empty");

	/* "data" missing or not a string (message only). */
	expect_decode_error(S("{\"command\":\"message\",\"identifier\":\"x\"}"),
	                    "\"data\" missing");
	expect_decode_error(S("{\"command\":\"message\",\"identifier\":\"x\",\"data\":{\"a\":1}}"),
	                    "\"data\" is not a string");
	expect_decode_error(S("{\"command\":\"message\",\"identifier\":\"x\",\"data\":null}"),
	                    "\"data\" is not a string");
	expect_decode_error(S("{\"command\":\"message\",\"identifier\":\"x\",\"data\":7}"),
	                    "\"data\" is not a string");
}

/* The error text is safe to log: no control characters or raw bytes from the input. */
static void test_decode_error_text_is_printable(void)
{
	struct cable_cmd cmd;
	struct cable_error err;
	size_t i;

	ASSERT_EQ(decode("{\"command\":\x01\n\x1b[31m\xc3\xa9}", &cmd, &err), CABLE_EPROTO);
	for (i = 0; err.text[i]; i++)
		ASSERT(err.text[i] >= 0x20 && err.text[i] < 0x7F);
	ASSERT_EQ(decode("{\"command\":\"x\"", &cmd, NULL), CABLE_EPROTO); /* NULL err is fine */
}

/* ---- server messages ----------------------------------------------------------------- */

static void test_welcome(void)
{
	expect_frame(cable_proto_welcome("yD7QnW1b"),
	             "{\"type\":\"welcome\",\"sid\":\"yD7QnW1b\"}");
	expect_frame(cable_proto_welcome(NULL), "{\"type\":\"welcome\"}");
	expect_frame(cable_proto_welcome("a\"b"), "{\"type\":\"welcome\",\"sid\":\"a\\\"b\"}");
}

static void test_ping(void)
{
	expect_frame(cable_proto_ping(1724318400), "{\"type\":\"ping\",\"message\":1724318400}");
	expect_frame(cable_proto_ping(0), "{\"type\":\"ping\",\"message\":0}");
	expect_frame(cable_proto_ping(-1), "{\"type\":\"ping\",\"message\":-1}");
	expect_frame(cable_proto_ping(LLONG_MAX),
	             "{\"type\":\"ping\",\"message\":9223372036854775807}");
	expect_frame(cable_proto_ping(LLONG_MIN),
	             "{\"type\":\"ping\",\"message\":-9223372036854775808}");
}

static void test_disconnect(void)
{
	expect_frame(cable_proto_disconnect("unauthorized", false),
	             "{\"type\":\"disconnect\",\"reason\":\"unauthorized\",\"reconnect\":false}");
	expect_frame(cable_proto_disconnect("server_restart", true),
	             "{\"type\":\"disconnect\",\"reason\":\"server_restart\",\"reconnect\":true}");
	expect_frame(cable_proto_disconnect(NULL, true),
	             "{\"type\":\"disconnect\",\"reason\":\"\",\"reconnect\":true}");
}

/* Every reason has one wire name, the one ActionCable clients know; none is shared. */
static void test_disconnect_names(void)
{
	static const char *const want[] = {
	        "unauthorized",  "invalid_request", "server_restart",       "server_error",
	        "token_expired", "too_slow",        "too_many_connections", "no_pong"};

	ASSERT_EQ(CABLE_ARRAY_LEN(want), CABLE_DISCONNECT_COUNT);
	for (size_t i = 0; i < CABLE_DISCONNECT_COUNT; i++)
		ASSERT_STR_EQ(cable_disconnect_name((enum cable_disconnect)i), want[i]);
	ASSERT_NULL(cable_disconnect_name(CABLE_DISCONNECT_COUNT));
	expect_frame(cable_proto_disconnect(cable_disconnect_name(CABLE_DISCONNECT_TOO_SLOW), true),
	             "{\"type\":\"disconnect\",\"reason\":\"too_slow\",\"reconnect\":true}");
}

static void test_confirm_reject_exact(void)
{
	static const char id[] = "{\"channel\":\"ChatChannel\",\"id\":42}";

	expect_frame(cable_proto_confirm(id, sizeof(id) - 1),
	             "{\"identifier\":\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"id\\\":42}\","
	             "\"type\":\"confirm_subscription\"}");
	expect_frame(cable_proto_reject(id, sizeof(id) - 1),
	             "{\"identifier\":\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"id\\\":42}\","
	             "\"type\":\"reject_subscription\"}");
	/* Only id_len bytes are used. */
	expect_frame(cable_proto_confirm("abcdef", 3),
	             "{\"identifier\":\"abc\",\"type\":\"confirm_subscription\"}");
	expect_frame(cable_proto_confirm("", 0),
	             "{\"identifier\":\"\",\"type\":\"confirm_subscription\"}");
	/* Bytes that cannot be a JSON string are refused, not mangled. */
	ASSERT_NULL(cable_proto_confirm("a\xff", 2));
	ASSERT_NULL(cable_proto_reject("\xc3", 1));
}

/* Decode a subscribe, reply, parse the reply: the identifier comes back byte for byte. */
static void test_identifier_echo_round_trip(void)
{
	static const char *const ids[] = {
	        "{\"channel\":\"ChatChannel\",\"id\":42}",
	        "{\"id\":42,\"channel\":\"ChatChannel\"}", /* not canonicalised */
	        "{\"channel\":\"C\",\"room\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
	        "{\"channel\":\"C\",\"q\":\"say \\\"hi\\\" \\\\o/\"}",
	        "quote\" backslash\\ slash/ tab\t nl\n cr\r bs\b ff\f",
	        "ctl\x01\x1f del\x7f u2028\xe2\x80\xa8 </script>",
	        "{\"channel\":\"$pubsub\",\"signed_stream_name\":\"ImNoYXQ6NDIi--abc\"}",
	        "plain",
	};
	size_t i, len;
	int reject;

	for (i = 0; i < CABLE_ARRAY_LEN(ids); i++) {
		for (reject = 0; reject <= 1; reject++) {
			struct cable_cmd cmd;
			struct cable_frame *f;
			json_t *root;
			const char *echo;
			char *lit;
			size_t lit_len;
			char *json;

			/* Put the identifier in a command the way a client would. */
			lit = cable_proto_json_string(ids[i], strlen(ids[i]), &lit_len);
			ASSERT_NOT_NULL(lit);
			json = malloc(lit_len + 64);
			ASSERT_NOT_NULL(json);
			len = (size_t)sprintf(json, "{\"command\":\"subscribe\",\"identifier\":%s}",
			                      lit);
			ASSERT_OK(cable_proto_decode(json, len, &cmd, NULL));
			ASSERT_EQ(cmd.identifier_len, strlen(ids[i]));
			ASSERT_MEM_EQ(cmd.identifier, ids[i], cmd.identifier_len);

			f = reject ? cable_proto_reject(cmd.identifier, cmd.identifier_len)
			           : cable_proto_confirm(cmd.identifier, cmd.identifier_len);
			ASSERT_NOT_NULL(f);
			echo = frame_member(f, "identifier", &root, &len);
			ASSERT_EQ(len, strlen(ids[i]));
			ASSERT_MEM_EQ(echo, ids[i], len);
			ASSERT_STR_EQ(json_string_value(json_object_get(root, "type")),
			              reject ? "reject_subscription" : "confirm_subscription");
			ASSERT_EQ(json_object_size(root), 2);

			json_decref(root);
			cable_frame_unref(f);
			cable_cmd_release(&cmd);
			free(json);
			free(lit);
		}
	}
}

static void test_json_string(void)
{
	char *s;
	size_t n;

	s = cable_proto_json_string(S("a\"b\\c/d\n\x01\x1f\x7f\xc3\xa9\xf0\x9f\x98\x80"), &n);
	ASSERT_NOT_NULL(s);
	ASSERT_STR_EQ(s, "\"a\\\"b\\\\c/d\\n\\u0001\\u001f\x7f\xc3\xa9\xf0\x9f\x98\x80\"");
	ASSERT_EQ(n, strlen(s));
	free(s);

	s = cable_proto_json_string(S("\b\f\r\t"), &n);
	ASSERT_STR_EQ(s, "\"\\b\\f\\r\\t\"");
	free(s);

	/* NUL is representable in JSON and is escaped, not cut off. */
	s = cable_proto_json_string("a\0b", 3, &n);
	ASSERT_STR_EQ(s, "\"a\\u0000b\"");
	ASSERT_EQ(n, 10);
	free(s);

	s = cable_proto_json_string(NULL, 0, &n);
	ASSERT_STR_EQ(s, "\"\"");
	ASSERT_EQ(n, 2);
	free(s);

	ASSERT_NULL(cable_proto_json_string(S("\xff"), &n));
	ASSERT_NULL(cable_proto_json_string(S("\xc0\xaf"), &n));         /* overlong */
	ASSERT_NULL(cable_proto_json_string(S("\xed\xa0\x80"), &n));     /* surrogate */
	ASSERT_NULL(cable_proto_json_string(S("\xf4\x90\x80\x80"), &n)); /* > U+10FFFF */
	ASSERT_NULL(cable_proto_json_string(S("ab\xe2\x82"), &n));       /* truncated */
	/* Non-characters and C1 controls are valid in JSON (unlike in MQTT topics). */
	s = cable_proto_json_string(S("\xef\xbf\xbf\xc2\x85"), &n);
	ASSERT_STR_EQ(s, "\"\xef\xbf\xbf\xc2\x85\"");
	free(s);
}

static void test_payload_value(void)
{
	char untouched[] = "untouched";
	char *out = NULL;
	size_t n = 0;

	/* Any JSON document is used verbatim, whitespace and all. */
	expect_text(cable_proto_payload_value(S("{\"text\":\"hi\"}"), &out, &n), &out, &n,
	            "{\"text\":\"hi\"}");
	expect_text(cable_proto_payload_value(S("[1, 2]"), &out, &n), &out, &n, "[1, 2]");
	expect_text(cable_proto_payload_value(S(" 42 \n"), &out, &n), &out, &n, " 42 \n");
	expect_text(cable_proto_payload_value(S("\"quoted\""), &out, &n), &out, &n, "\"quoted\"");
	expect_text(cable_proto_payload_value(S("true"), &out, &n), &out, &n, "true");
	expect_text(cable_proto_payload_value(S("null"), &out, &n), &out, &n, "null");
	expect_text(cable_proto_payload_value(S("-1.5e3"), &out, &n), &out, &n, "-1.5e3");
	expect_text(cable_proto_payload_value(S("18446744073709551616"), &out, &n), &out, &n,
	            "18446744073709551616");
	expect_text(cable_proto_payload_value(S("\"a\\u0000b\""), &out, &n), &out, &n,
	            "\"a\\u0000b\"");

	/* Other UTF-8 text becomes a JSON string. */
	expect_text(cable_proto_payload_value(S("hello"), &out, &n), &out, &n, "\"hello\"");
	expect_text(cable_proto_payload_value(S(""), &out, &n), &out, &n, "\"\"");
	expect_text(cable_proto_payload_value(NULL, 0, &out, &n), &out, &n, "\"\"");
	expect_text(cable_proto_payload_value(S("21.5 C"), &out, &n), &out, &n, "\"21.5 C\"");
	expect_text(cable_proto_payload_value(S("{\"a\":1"), &out, &n), &out, &n,
	            "\"{\\\"a\\\":1\"");
	expect_text(cable_proto_payload_value(S("line1\nline2\t\"x\""), &out, &n), &out, &n,
	            "\"line1\\nline2\\t\\\"x\\\"\"");
	expect_text(cable_proto_payload_value(S("caf\xc3\xa9"), &out, &n), &out, &n,
	            "\"caf\xc3\xa9\"");
	expect_text(cable_proto_payload_value(S("NaN"), &out, &n), &out, &n, "\"NaN\"");
	expect_text(cable_proto_payload_value(S("{\"a\":1}{\"b\":2}"), &out, &n), &out, &n,
	            "\"{\\\"a\\\":1}{\\\"b\\\":2}\"");

	/* Binary: the caller decides. Outputs stay untouched. */
	out = untouched;
	n = 77;
	ASSERT_EQ(cable_proto_payload_value(S("\xff\xfe"), &out, &n), CABLE_EINVAL);
	ASSERT_EQ(cable_proto_payload_value("a\0b", 3, &out, &n), CABLE_EINVAL);
	ASSERT_EQ(cable_proto_payload_value("\"a\0\"", 4, &out, &n), CABLE_EINVAL);
	ASSERT_EQ(cable_proto_payload_value(S("\"\xc3\""), &out, &n), CABLE_EINVAL);
	ASSERT_EQ(cable_proto_payload_value(S("\xed\xa0\x80"), &out, &n), CABLE_EINVAL);
	ASSERT_STR_EQ(out, "untouched");
	ASSERT_EQ(n, 77);
}

static void test_envelope_value(void)
{
	char *out;
	size_t n;

	expect_text(cable_proto_envelope_value(S("sensors/1"), S("{\"t\":21}"), false, &out, &n),
	            &out, &n, "{\"topic\":\"sensors/1\",\"payload\":{\"t\":21},\"retain\":false}");
	expect_text(cable_proto_envelope_value(S("a/\"b\""), S("hi"), true, &out, &n), &out, &n,
	            "{\"topic\":\"a/\\\"b\\\"\",\"payload\":\"hi\",\"retain\":true}");
	expect_text(cable_proto_envelope_value(S("bin"), "\x00\x01\x02\xff", 4, true, &out, &n),
	            &out, &n,
	            "{\"topic\":\"bin\",\"payload_base64\":\"AAEC/w==\",\"retain\":true}");
	expect_text(cable_proto_envelope_value(S("bin"), S("\xfb\xff"), false, &out, &n), &out, &n,
	            "{\"topic\":\"bin\",\"payload_base64\":\"+/8=\",\"retain\":false}");
	expect_text(cable_proto_envelope_value(S("e"), NULL, 0, false, &out, &n), &out, &n,
	            "{\"topic\":\"e\",\"payload\":\"\",\"retain\":false}");

	out = NULL;
	ASSERT_EQ(cable_proto_envelope_value(S("a\xff"), S("x"), false, &out, &n), CABLE_EINVAL);
	ASSERT_NULL(out);
}

/* Base64 of a payload larger than one EVP_EncodeBlock chunk equals the one-shot answer. */
static void test_envelope_large_binary(void)
{
	static const char prefix[] = "{\"topic\":\"t\",\"payload_base64\":\"";
	static const char suffix[] = "\",\"retain\":false}";
	size_t len = 200003, i, n, b64;
	unsigned char *payload, *expect;
	char *out;

	payload = malloc(len);
	expect = malloc(len / 3 * 4 + 8);
	ASSERT_NOT_NULL(payload);
	ASSERT_NOT_NULL(expect);
	for (i = 0; i < len; i++)
		payload[i] = (unsigned char)(0x80 + i * 7);
	b64 = (size_t)EVP_EncodeBlock(expect, payload, (int)len);
	ASSERT_EQ(b64, (len + 2) / 3 * 4);

	ASSERT_OK(cable_proto_envelope_value(S("t"), (const char *)payload, len, false, &out, &n));
	ASSERT_EQ(n, sizeof(prefix) - 1 + b64 + sizeof(suffix) - 1);
	ASSERT_MEM_EQ(out, prefix, sizeof(prefix) - 1);
	ASSERT(memcmp(out + sizeof(prefix) - 1, expect, b64) == 0);
	ASSERT_STR_EQ(out + sizeof(prefix) - 1 + b64, suffix);
	free(out);
	free(expect);
	free(payload);
}

static void test_message(void)
{
	static const char id[] = "{\"channel\":\"C\",\"room\":\"caf\xc3\xa9\"}";
	struct cable_frame *f;
	char *id_json, *value;
	size_t id_len, value_len, len;
	const char *echo;
	json_t *root;

	id_json = cable_proto_json_string(id, sizeof(id) - 1, &id_len);
	ASSERT_OK(cable_proto_payload_value(S("{\"text\":\"hi\"}"), &value, &value_len));
	f = cable_proto_message(id_json, id_len, value, value_len);
	ASSERT_NOT_NULL(f);
	ASSERT_STR_EQ(cable_frame_data(f),
	              "{\"identifier\":\"{\\\"channel\\\":\\\"C\\\",\\\"room\\\":"
	              "\\\"caf\xc3\xa9\\\"}\",\"message\":{\"text\":\"hi\"}}");
	echo = frame_member(f, "identifier", &root, &len);
	ASSERT_EQ(len, sizeof(id) - 1);
	ASSERT_MEM_EQ(echo, id, len);
	ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(root, "message"), "text")),
	              "hi");
	json_decref(root);
	cable_frame_unref(f);

	/* A shared frame lives until its last reference goes. */
	f = cable_proto_message(id_json, id_len, "1", 1);
	ASSERT_EQ(cable_frame_ref(f)->refs, 2);
	cable_frame_unref(f);
	ASSERT_EQ(f->refs, 1);
	cable_frame_unref(f);
	cable_frame_unref(NULL);

	free(value);
	free(id_json);
}

/* Device data with the reserved key: refused as a plain message, fine in an envelope. */
static void test_reserved_key(void)
{
	char *out = NULL;
	size_t n = 0;

	ASSERT_EQ(cable_proto_payload_value(S("{\"$cable\":\"ack\"}"), &out, &n), CABLE_EDENIED);
	ASSERT_EQ(cable_proto_payload_value(S(" { \"a\": 1, \"$cable\": null } "), &out, &n),
	          CABLE_EDENIED);
	ASSERT_NULL(out);
	/* Only a top-level member of an object counts. */
	expect_text(cable_proto_payload_value(S("{\"a\":{\"$cable\":1}}"), &out, &n), &out, &n,
	            "{\"a\":{\"$cable\":1}}");
	expect_text(cable_proto_payload_value(S("[{\"$cable\":1}]"), &out, &n), &out, &n,
	            "[{\"$cable\":1}]");
	expect_text(cable_proto_payload_value(S("\"$cable\""), &out, &n), &out, &n, "\"$cable\"");
	expect_text(cable_proto_payload_value(S("{\"$cablex\":1}"), &out, &n), &out, &n,
	            "{\"$cablex\":1}");
	expect_text(cable_proto_envelope_value(S("t"), S("{\"$cable\":\"ack\"}"), false, &out, &n),
	            &out, &n,
	            "{\"topic\":\"t\",\"payload\":{\"$cable\":\"ack\"},\"retain\":false}");
}

static void test_answer_value(void)
{
	char *out = NULL;
	size_t n = 0;

	expect_text(cable_proto_answer_value("ack", S("speak"), S("7"), NULL, &out, &n), &out, &n,
	            "{\"$cable\":\"ack\",\"action\":\"speak\",\"request\":7}");
	expect_text(cable_proto_answer_value("refused", S("sp\"k"), S("\"r-1\""), "acl_denied",
	                                     &out, &n),
	            &out, &n,
	            "{\"$cable\":\"refused\",\"action\":\"sp\\\"k\",\"request\":\"r-1\","
	            "\"reason\":\"acl_denied\"}");
	/* Nothing to name, nothing to echo. */
	expect_text(cable_proto_answer_value("refused", NULL, 0, NULL, 0, "invalid_data", &out, &n),
	            &out, &n, "{\"$cable\":\"refused\",\"reason\":\"invalid_data\"}");
	expect_text(cable_proto_answer_value("ack", S("a"), S("\"\\u0000\""), NULL, &out, &n), &out,
	            &n, "{\"$cable\":\"ack\",\"action\":\"a\",\"request\":\"\\u0000\"}");
	/* A request id that is not the JSON of a string or an integer is left out. */
	expect_text(cable_proto_answer_value("ack", S("a"), S("{\"x\":1}"), NULL, &out, &n), &out,
	            &n, "{\"$cable\":\"ack\",\"action\":\"a\"}");
	expect_text(cable_proto_answer_value("ack", S("a"), S("1.5"), NULL, &out, &n), &out, &n,
	            "{\"$cable\":\"ack\",\"action\":\"a\"}");
	expect_text(cable_proto_answer_value("ack", S("a"), S("7 8"), NULL, &out, &n), &out, &n,
	            "{\"$cable\":\"ack\",\"action\":\"a\"}");
	ASSERT_EQ(cable_proto_answer_value("ack", S("\xff"), NULL, 0, NULL, &out, &n),
	          CABLE_EINVAL);
	ASSERT_EQ(cable_proto_answer_value(NULL, NULL, 0, NULL, 0, NULL, &out, &n), CABLE_EINVAL);
}

static void test_reply_value(void)
{
	char *out = NULL;
	size_t n = 0;

	expect_text(cable_proto_reply_value(S("\"q1\""), S("{\"on\":true}"), &out, &n), &out, &n,
	            "{\"$cable\":\"reply\",\"request\":\"q1\",\"payload\":{\"on\":true}}");
	expect_text(cable_proto_reply_value(S("3"), S("plain"), &out, &n), &out, &n,
	            "{\"$cable\":\"reply\",\"request\":3,\"payload\":\"plain\"}");
	/* The device's data may carry the reserved key: it is nested. */
	expect_text(cable_proto_reply_value(NULL, 0, S("{\"$cable\":1}"), &out, &n), &out, &n,
	            "{\"$cable\":\"reply\",\"payload\":{\"$cable\":1}}");
	/* Correlation data we did not send (not JSON, binary) is not echoed. */
	expect_text(cable_proto_reply_value("\x01\x02", 2, S("1"), &out, &n), &out, &n,
	            "{\"$cable\":\"reply\",\"payload\":1}");
	expect_text(cable_proto_reply_value(NULL, 0, "\x00\x01\xff", 3, &out, &n), &out, &n,
	            "{\"$cable\":\"reply\",\"payload_base64\":\"AAH/\"}");
	expect_text(cable_proto_reply_value(NULL, 0, NULL, 0, &out, &n), &out, &n,
	            "{\"$cable\":\"reply\",\"payload\":\"\"}");
	ASSERT_EQ(cable_proto_reply_value(NULL, 0, NULL, 1, &out, &n), CABLE_EINVAL);
}

static void test_ext_commands(void)
{
	struct cable_history_request req;
	struct cable_cmd cmd;
	const char *sub = "{\"command\":\"subscribe\",\"identifier\":\"id\",\"history\":{"
	                  "\"since\":1700000000,\"streams\":{\"a/b\":{\"epoch\":\"ep\",\"offset\":"
	                  "7},\"bad\":{\"epoch\":3,\"offset\":1},\"neg\":{\"epoch\":\"e\","
	                  "\"offset\":-1}}}}";

	ASSERT_OK(decode("{\"command\":\"pong\"}", &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_PONG);
	ASSERT_NULL(cmd.identifier);
	cable_cmd_release(&cmd);

	ASSERT_OK(decode(sub, &cmd, NULL));
	ASSERT_EQ(cmd.kind, CABLE_CMD_SUBSCRIBE);
	ASSERT_NOT_NULL(cmd.history);
	ASSERT_OK(cable_proto_history_request(cmd.history, &req, NULL));
	ASSERT_EQ(req.since, 1700000000);
	ASSERT_TRUE(req.has_streams);
	ASSERT_EQ(req.npos, 3);
	for (size_t i = 0; i < req.npos; i++) {
		if (req.pos[i].stream_len == 3 && memcmp(req.pos[i].stream, "a/b", 3) == 0) {
			ASSERT_TRUE(req.pos[i].valid);
			ASSERT_EQ(req.pos[i].offset, 7);
			ASSERT_MEM_EQ(req.pos[i].epoch, "ep", 2);
		} else {
			ASSERT_FALSE(req.pos[i].valid); /* a request with it fails, whole */
		}
	}
	cable_history_request_release(&req);
	cable_cmd_release(&cmd);

	/* since false, a string, absent: no since; {} streams still counts as asked. */
	ASSERT_OK(decode("{\"command\":\"history\",\"identifier\":\"i\",\"history\":{\"since\":"
	                 "false,\"streams\":{}}}",
	                 &cmd, NULL));
	ASSERT_OK(cable_proto_history_request(cmd.history, &req, NULL));
	ASSERT_EQ(req.since, 0);
	ASSERT_TRUE(req.has_streams);
	ASSERT_EQ(req.npos, 0);
	cable_history_request_release(&req);
	cable_cmd_release(&cmd);
	ASSERT_OK(cable_proto_history_request(NULL, &req, NULL));
	ASSERT_EQ(req.since, 0);
	ASSERT_FALSE(req.has_streams);
	/* A history that is not an object is no history. */
	ASSERT_OK(decode("{\"command\":\"subscribe\",\"identifier\":\"i\",\"history\":1}", &cmd,
	                 NULL));
	ASSERT_NULL(cmd.history);
	cable_cmd_release(&cmd);
}

static void test_ext_frames(void)
{
	const char *ids[] = {"\"a\"", "\"b\\\"\""};
	size_t lens[] = {3, 5};
	unsigned char raw[CABLE_PROTO_SID_BYTES];
	char sid[CABLE_PROTO_SID_LEN + 1];
	struct cable_frame *f;

	f = cable_proto_welcome_restored("S", ids, lens, 2);
	ASSERT_STR_EQ(
	        cable_frame_data(f),
	        "{\"type\":\"welcome\",\"sid\":\"S\",\"restored\":true,\"restored_ids\":[\"a\","
	        "\"b\\\"\"]}");
	cable_frame_unref(f);
	f = cable_proto_welcome_restored("S", NULL, NULL, 0);
	ASSERT_STR_EQ(cable_frame_data(f),
	              "{\"type\":\"welcome\",\"sid\":\"S\",\"restored\":true,\"restored_ids\":[]}");
	cable_frame_unref(f);
	f = cable_proto_history_reply("i\"d", 3, false);
	ASSERT_STR_EQ(cable_frame_data(f),
	              "{\"type\":\"reject_history\",\"identifier\":\"i\\\"d\"}");
	cable_frame_unref(f);
	f = cable_proto_message_ext("\"id\"", 4, "{}", 2, "a/\"b", 4, "ep", 42);
	ASSERT_STR_EQ(cable_frame_data(f), "{\"identifier\":\"id\",\"message\":{},\"stream_id\":"
	                                   "\"a/\\\"b\",\"epoch\":\"ep\",\"offset\":42}");
	cable_frame_unref(f);

	memset(raw, 0xff, sizeof(raw));
	cable_proto_sid_encode(raw, sid);
	ASSERT_EQ(strlen(sid), CABLE_PROTO_SID_LEN);
	ASSERT_STR_EQ(sid, "________________________________");
	ASSERT_TRUE(cable_proto_sid_valid(sid, CABLE_PROTO_SID_LEN));
	ASSERT_FALSE(cable_proto_sid_valid(sid, CABLE_PROTO_SID_LEN - 1));
	sid[3] = '=';
	ASSERT_FALSE(cable_proto_sid_valid(sid, CABLE_PROTO_SID_LEN));
	ASSERT_FALSE(cable_proto_sid_valid(NULL, 0));
}

TEST_MAIN(TEST(test_decode_presence_whisper), TEST(test_encode_presence), TEST(test_ext_commands),
          TEST(test_ext_frames), TEST(test_decode_subscribe),
          TEST(test_decode_unsubscribe_and_message), TEST(test_decode_unknown_command),
          TEST(test_decode_identifier_unicode_and_escapes), TEST(test_decode_uses_length_not_nul),
          TEST(test_decode_errors), TEST(test_decode_error_text_is_printable), TEST(test_welcome),
          TEST(test_ping), TEST(test_disconnect), TEST(test_disconnect_names),
          TEST(test_confirm_reject_exact), TEST(test_identifier_echo_round_trip),
          TEST(test_json_string), TEST(test_payload_value), TEST(test_envelope_value),
          TEST(test_envelope_large_binary), TEST(test_message), TEST(test_reserved_key),
          TEST(test_answer_value), TEST(test_reply_value))
