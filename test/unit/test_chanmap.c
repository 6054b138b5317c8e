/*
 * Unit tests for the channel map (plugin/core/chanmap_*.c, include/cable_chanmap.h):
 * loading and its error texts, binding identifiers (and refusing topic injection),
 * and perform with every payload shape.
 *
 * JSON in this file is written with single quotes and turned into JSON by q(), so the
 * cases stay readable; none of them needs a literal apostrophe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_chanmap.h"
#include "cable_topic.h"
#include "test.h"

/* A map with one channel per feature under test. */
static const char MAP[] =
        "{'channels': {"
        " 'ActuatorChannel': {"
        "  'params': {'id': {'type': 'integer', 'min': 0, 'max': 1000000}},"
        "  'streams': ['actuators/{id}/state', 'actuators/{id}/cmd'],"
        "  'actions': {"
        "   'speak': {'topic': 'actuators/{id}/cmd', 'payload': 'identity'},"
        "   'hello': {'topic': 'actuators/{id}/cmd', 'payload': 'identity', 'with_sid': true},"
        "   'set': {'topic': 'actuators/{id}/set', 'payload': 'message', 'qos': 1},"
        "   'raw': {'topic': 'actuators/{id}/raw', 'payload': 'data', 'qos': 2},"
        "   'pin': {'topic': 'actuators/{id}/pinned', 'payload': 'message', 'retain': true},"
        "   'receive': {'topic': 'actuators/{id}/log', 'payload': 'data'}}},"
        " 'RoomChannel': {"
        "  'params': {'room': {'type': 'string', 'pattern': '^[a-z0-9-]{1,32}$'}},"
        "  'streams': ['rooms/{room}/#'], 'deliver': 'envelope'},"
        " 'NameChannel': {'params': {'name': {}}, 'streams': ['names/{name}/x']},"
        " 'LongChannel': {'params': {'name': {'max_length': 65535}}, 'streams': ['l/{name}']},"
        " 'InboxChannel': {"
        "  'streams': ['users/{user}/inbox'],"
        "  'actions': {'send': {'topic': 'users/{user}/outbox', 'payload': 'data'}}},"
        " 'TopicChannel': {'generic': true, 'actions': {'publish': {'qos': 1}}},"
        " 'WatchChannel': {'generic': true, 'deliver': 'message'}"
        "}}";

/* ---- Helpers ---------------------------------------------------------------------- */

/* Single quotes to double quotes, into one of a few rotating static buffers. */
static const char *q(const char *s)
{
	static char bufs[4][8192];
	static size_t next;
	char *b = bufs[next++ % 4];
	size_t i, n = strlen(s);

	ASSERT_LT(n, sizeof(bufs[0]));
	for (i = 0; i <= n; i++)
		b[i] = s[i] == '\'' ? '"' : s[i];
	return b;
}

static struct cable_chanmap *load(const char *json)
{
	struct cable_error err = {0};
	struct cable_chanmap *map = cable_chanmap_new(json, strlen(json), &err);

	if (map == NULL)
		TEST_FAIL_("load failed: %s", err.text);
	return map;
}

/* Loading must fail with EINVAL and a text that contains `text`. */
static void load_fails(const char *json, const char *text)
{
	struct cable_error err = {0};
	struct cable_chanmap *map = cable_chanmap_new(json, strlen(json), &err);

	if (map != NULL)
		TEST_FAIL_("loaded, expected \"%s\": %s", text, json);
	ASSERT_EQ(err.code, CABLE_EINVAL);
	if (strstr(err.text, text) == NULL)
		TEST_FAIL_("error text \"%s\" lacks \"%s\"", err.text, text);
}

/* Wrap one channel spec in a map and expect the load to fail. */
static void channel_fails(const char *spec, const char *text)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "{'channels': {'C': %s}}", spec);
	load_fails(q(buf), text);
}

static int bind_as(const struct cable_chanmap *map, const char *ident, size_t len, const char *user,
                   struct cable_binding **b, struct cable_error *err)
{
	char ubuf[256];
	struct cable_principal who = {0};

	if (user != NULL) {
		snprintf(ubuf, sizeof(ubuf), "%s", user);
		who.user = ubuf;
	}
	return cable_chanmap_bind(map, ident, len, user ? &who : NULL, "sid-1", b, err);
}

static struct cable_binding *bind_ok(const struct cable_chanmap *map, const char *ident)
{
	struct cable_error err = {0};
	struct cable_binding *b = NULL;

	if (bind_as(map, ident, strlen(ident), "alice", &b, &err) != CABLE_OK)
		TEST_FAIL_("bind %s failed: %s", ident, err.text);
	ASSERT_NOT_NULL(b);
	return b;
}

/* Bind must fail with `code`, leave *out alone, and not quote `secret` in the text. */
static void bind_fails(const struct cable_chanmap *map, const char *ident, size_t len, int code,
                       const char *text)
{
	struct cable_error err = {0};
	struct cable_binding *b = (struct cable_binding *)&err; /* sentinel: must stay */
	int rc = bind_as(map, ident, len, "alice", &b, &err);

	if (rc != code)
		TEST_FAIL_("bind %.200s: %s, expected %s (%s)", ident, cable_status_name(rc),
		           cable_status_name(code), err.text);
	ASSERT_EQ(err.code, code);
	ASSERT(b == (struct cable_binding *)&err);
	if (text && strstr(err.text, text) == NULL)
		TEST_FAIL_("error text \"%s\" lacks \"%s\"", err.text, text);
}

/* A param value must be refused, with a text that names the param but not the value. */
static void value_refused(const struct cable_chanmap *map, const char *channel, const char *member,
                          const char *text)
{
	char ident[512];

	snprintf(ident, sizeof(ident), "{\"channel\":\"%s\",%s}", channel, member);
	bind_fails(map, ident, strlen(ident), CABLE_EINVAL, text);
}

static int perform(const struct cable_binding *b, const char *data, struct cable_publish *p,
                   struct cable_error *err)
{
	return cable_binding_perform(b, data, strlen(data), p, NULL, err);
}

/* Perform must succeed and publish exactly `payload` to `topic`. */
static void perform_ok(const struct cable_binding *b, const char *data, const char *topic,
                       const char *payload, int qos, bool retain)
{
	struct cable_error err = {0};
	struct cable_publish p = {0};

	if (perform(b, data, &p, &err) != CABLE_OK)
		TEST_FAIL_("perform %s failed: %s", data, err.text);
	ASSERT_STR_EQ(p.topic, topic);
	if (p.payload_len != strlen(payload) || memcmp(p.payload, payload, p.payload_len) != 0)
		TEST_FAIL_("payload \"%.*s\", expected \"%s\"", (int)p.payload_len, p.payload,
		           payload);
	ASSERT_EQ(p.payload[p.payload_len], '\0');
	ASSERT_EQ(p.qos, qos);
	ASSERT_EQ(p.retain, retain);
	cable_publish_release(&p);
	ASSERT_NULL(p.topic);
	ASSERT_NULL(p.payload);
}

static void perform_fails(const struct cable_binding *b, const char *data, int code,
                          const char *text)
{
	struct cable_error err = {0};
	struct cable_publish p = {0};
	int rc = perform(b, data, &p, &err);

	if (rc != code)
		TEST_FAIL_("perform %s: %s, expected %s (%s)", data, cable_status_name(rc),
		           cable_status_name(code), err.text);
	ASSERT_NULL(p.topic);
	ASSERT_NULL(p.payload);
	if (text && strstr(err.text, text) == NULL)
		TEST_FAIL_("error text \"%s\" lacks \"%s\"", err.text, text);
}

/* ---- Loading ---------------------------------------------------------------------- */

static void test_load_ok(void)
{
	struct cable_chanmap *map = load(q(MAP));

	cable_chanmap_free(map);
	cable_chanmap_free(NULL);
	map = load(q("{'channels': {}}"));
	cable_chanmap_free(map);
}

/* The shipped example map must load (found next to this file, as CMake passes absolute
 * source paths in __FILE__). */
static void test_load_example_file(void)
{
	char path[4096], *buf, *slash;
	struct cable_chanmap *map;
	struct cable_binding *b;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s", __FILE__);
	slash = strrchr(path, '/');
	ASSERT_NOT_NULL(slash);
	snprintf(slash, sizeof(path) - (size_t)(slash - path),
	         "/../../config/channels.example.json");
	f = fopen(path, "rb");
	if (f == NULL)
		TEST_FAIL_("cannot open %s", path);
	buf = malloc(1 << 20);
	ASSERT_NOT_NULL(buf);
	n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	map = cable_chanmap_new(buf, n, NULL);
	ASSERT_NOT_NULL(map);
	b = bind_ok(map, "{\"channel\":\"ActuatorChannel\",\"id\":\"42\"}");
	ASSERT_EQ(cable_binding_stream_count(b), 2);
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "actuators/42/state");
	ASSERT_STR_EQ(cable_binding_stream(b, 1), "actuators/42/cmd");
	perform_ok(b, "{\"message\":\"on\",\"action\":\"speak\"}", "actuators/42/cmd",
	           "{\"user\":\"alice\",\"message\":\"on\"}", 0, false);
	{
		/* The example answers refusals, and "status" is an acknowledged request. */
		struct cable_perform_info info = {0};
		struct cable_publish p = {0};
		const char *st = "{\"message\":\"status\",\"action\":\"status\"}";

		ASSERT_EQ(cable_binding_perform(b, st, strlen(st), &p, &info, NULL), CABLE_OK);
		ASSERT_STR_EQ(p.topic, "actuators/42/cmd");
		ASSERT_EQ(info.answer, CABLE_ANSWER_ALL);
		ASSERT(info.request);
		cable_publish_release(&p);
		cable_perform_info_release(&info);
		ASSERT_EQ(cable_binding_perform(b, "{}", 2, &p, &info, NULL), CABLE_ENOTFOUND);
		ASSERT_EQ(info.answer, CABLE_ANSWER_REFUSALS);
		cable_perform_info_release(&info);
	}
	cable_binding_free(b);
	cable_chanmap_free(map);
	free(buf);
}

static void test_load_bad_json(void)
{
	struct cable_error err = {0};

	ASSERT_NULL(cable_chanmap_new("{\"channels\": {", 14, &err));
	ASSERT_EQ(err.code, CABLE_EINVAL);
	ASSERT_NOT_NULL(strstr(err.text, "line 1"));
	ASSERT_EQ(err.offset, 14);
	ASSERT_NULL(cable_chanmap_new("", 0, NULL)); /* err may be NULL */
	load_fails("[]", "must be a JSON object");
	load_fails("{}", "channels: missing or not an object");
	load_fails(q("{'channels': []}"), "channels: missing or not an object");
	load_fails(q("{'channels': {}, 'extra': 1}"), "top level: unknown key \"extra\"");
	/* Duplicate keys would let two readers disagree; typo'd twins are caught too. */
	load_fails(q("{'channels': {'A': {}, 'A': {}}}"), "duplicate");
}

static void test_load_template_errors(void)
{
	struct cable_error err = {0};
	const char *json = q("{'channels': {'ActuatorChannel': {"
	                     "'params': {'id': {'type': 'integer'}},"
	                     "'streams': ['actuators/{id}/state', 'actuators/{idd}/cmd']}}}");

	/* The exact text the header promises. */
	ASSERT_NULL(cable_chanmap_new(json, strlen(json), &err));
	ASSERT_EQ(err.code, CABLE_EINVAL);
	ASSERT_STR_EQ(err.text, "channels.ActuatorChannel.streams[1]: placeholder {idd} is not "
	                        "a declared param");

	channel_fails("{'params': {'id': {}}, 'streams': ['a/x{id}']}",
	              "channels.C.streams[0]: a placeholder must be a whole level");
	channel_fails("{'params': {'id': {}}, 'streams': ['a/{id}x/b']}", "whole level");
	channel_fails("{'params': {'id': {}}, 'streams': ['a/{id']}", "whole level");
	channel_fails("{'params': {'id': {}}, 'streams': ['a/id}']}", "whole level");
	channel_fails("{'params': {'id': {}}, 'streams': ['a/{}']}", "whole level");
	channel_fails("{'params': {'id': {}}, 'streams': ['a/{{id}}']}", "whole level");
	channel_fails("{'streams': ['$SYS/x']}", "channels.C.streams[0]: a topic may not start "
	                                         "with '$'");
	channel_fails("{'streams': ['$share/g/a']}", "may not start with '$'");
	channel_fails("{'streams': ['']}", "channels.C.streams[0]: empty topic");
	channel_fails("{'streams': ['a/#/b']}", "channels.C.streams[0]: not a valid topic filter");
	channel_fails("{'streams': ['a/b#']}", "not a valid topic filter");
	channel_fails("{'streams': ['a/b+/c']}", "not a valid topic filter");
	channel_fails("{'streams': ['ok', 7]}", "channels.C.streams[1]: must be a string");
	channel_fails("{'streams': 'a/b'}", "channels.C.streams: must be an array");
	channel_fails("{'actions': {'go': {'topic': 'a/+/b', 'payload': 'data'}}}",
	              "channels.C.actions.go.topic: an action topic may not contain wildcards");
	channel_fails("{'actions': {'go': {'topic': 'a/#', 'payload': 'data'}}}",
	              "may not contain wildcards");
	channel_fails("{'actions': {'go': {'topic': '$SYS/x', 'payload': 'data'}}}",
	              "channels.C.actions.go.topic: a topic may not start with '$'");
	channel_fails("{'actions': {'go': {'topic': 'a/{nope}', 'payload': 'data'}}}",
	              "channels.C.actions.go.topic: placeholder {nope} is not a declared param");
	channel_fails("{'actions': {'go': {'topic': 'a/b#', 'payload': 'data'}}}",
	              "not a valid topic name");
}

static void test_load_level_limit(void)
{
	char buf[2048], *p;
	int i;

	/* 201 levels: one more than MQTT's limit, caught at load time. */
	p = buf + sprintf(buf, "{\"channels\":{\"C\":{\"streams\":[\"a");
	for (i = 0; i < 200; i++)
		p += sprintf(p, "/a");
	sprintf(p, "\"]}}}");
	load_fails(buf, "not a valid topic filter");
}

static void test_load_param_errors(void)
{
	channel_fails("{'params': {'p': {'pattern': '([a-z'}}, 'streams': ['a/{p}']}",
	              "channels.C.params.p.pattern: ");
	channel_fails("{'params': {'p': {'pattern': 5}}}", "channels.C.params.p.pattern: must be "
	                                                   "a string");
	channel_fails("{'params': {'p': {'type': 'float'}}}",
	              "channels.C.params.p.type: must be \"string\" or \"integer\"");
	channel_fails("{'params': {'p': {'type': 3}}}", "channels.C.params.p.type: must be");
	channel_fails("{'params': {'p': {'type': 'integer', 'pattern': 'x'}}}",
	              "max_length and pattern apply to string params");
	channel_fails("{'params': {'p': {'min': 1}}}", "min and max apply to integer params");
	channel_fails("{'params': {'p': {'type': 'integer', 'min': 5, 'max': 1}}}",
	              "min is greater than max");
	channel_fails("{'params': {'p': {'type': 'integer', 'min': 'x'}}}",
	              "channels.C.params.p.min: must be an integer");
	channel_fails("{'params': {'p': {'max_length': 0}}}",
	              "channels.C.params.p.max_length: must be an integer from 1 to 65535");
	channel_fails("{'params': {'p': {'max_length': 65536}}}", "max_length");
	channel_fails("{'params': {'p': {'maxlength': 5}}}",
	              "channels.C.params.p: unknown key \"maxlength\"");
	channel_fails("{'params': {'p': 'string'}}", "channels.C.params.p: must be an object");
	channel_fails("{'params': {'user': {}}}", "channels.C.params.user: a param name is");
	channel_fails("{'params': {'channel': {}}}", "a param name is");
	channel_fails("{'params': {'a-b': {}}}", "a param name is");
	channel_fails("{'params': {'': {}}}", "a param name is");
	channel_fails("{'params': []}", "channels.C.params: must be an object");
}

/* Patterns that would make glibc's regcomp allocate without bound are refused. */
static void test_load_pattern_limits(void)
{
	char big[400];

	load_fails(q("{'channels': {'C': {'params': {'x': {'pattern': '^a++$'}}}}}"),
	           "two quantifiers in a row");
	load_fails(q("{'channels': {'C': {'params': {'x': {'pattern': '^a*?$'}}}}}"),
	           "two quantifiers in a row");
	load_fails(q("{'channels': {'C': {'params': {'x': {'pattern': '^a{1,999}$'}}}}}"),
	           "bound over");
	load_fails(q("{'channels': {'C': {'params': {'x': {'pattern': "
	             "'((((a{1,9}){1,9}){1,9}){1,9}){1,9}'}}}}}"),
	           "repetitions");
	snprintf(big, sizeof(big),
	         "{\"channels\": {\"C\": {\"params\": {\"x\": {\"pattern\": \"%0300d\"}}}}}", 0);
	load_fails(big, "longer than");
	/* Ordinary patterns, quantifier characters inside a class, and escapes are fine. */
	cable_chanmap_free(load(q("{'channels': {'C': {'params': {'x': {'pattern': "
	                          "'^[a-z0-9+*?-]{1,32}(\\\\.[a-z]+)?$'}}}}}")));
}

static void test_load_channel_errors(void)
{
	channel_fails("{'stream': ['a']}", "channels.C: unknown key \"stream\"");
	channel_fails("[]", "channels.C: must be an object");
	channel_fails("{'deliver': 'json'}", "channels.C.deliver: must be \"message\" or");
	channel_fails("{'generic': 'yes'}", "channels.C.generic: must be true or false");
	channel_fails("{'actions': []}", "channels.C.actions: must be an object");
	channel_fails("{'actions': {'go': 1}}", "channels.C.actions.go: must be an object");
	channel_fails("{'actions': {'': {'topic': 'a', 'payload': 'data'}}}", "empty action name");
	channel_fails("{'actions': {'go': {'topic': 'a'}}}",
	              "channels.C.actions.go.payload: must be \"message\", \"data\" or");
	channel_fails("{'actions': {'go': {'payload': 'data'}}}",
	              "channels.C.actions.go.topic: missing or not a string");
	channel_fails("{'actions': {'go': {'topic': 'a', 'payload': 'data', 'qos': 3}}}",
	              "channels.C.actions.go.qos: must be an integer from 0 to 2");
	channel_fails("{'actions': {'go': {'topic': 'a', 'payload': 'data', 'retain': 1}}}",
	              "channels.C.actions.go.retain: must be true or false");
	channel_fails("{'actions': {'go': {'topic': 'a', 'payload': 'data', 'with_sid': true}}}",
	              "channels.C.actions.go.with_sid: applies only to payload \"identity\"");
	channel_fails("{'actions': {'go': {'topic': 'a', 'payload': 'data', 'retian': true}}}",
	              "channels.C.actions.go: unknown key \"retian\"");
	/* Generic channels: the topic comes from the identifier, the only action is publish. */
	channel_fails("{'generic': true, 'streams': ['a']}", "channels.C: unknown key \"streams\"");
	channel_fails("{'generic': true, 'params': {}}", "channels.C: unknown key \"params\"");
	channel_fails("{'generic': true, 'actions': {'speak': {}}}",
	              "channels.C.actions.speak: a generic channel has only the action "
	              "\"publish\"");
	channel_fails("{'generic': true, 'actions': {'publish': {'topic': 'a'}}}",
	              "channels.C.actions.publish: unknown key \"topic\"");
	load_fails(q("{'channels': {'': {}}}"), "empty channel name");
}

/* ---- Binding ---------------------------------------------------------------------- */

static void test_bind_actuator(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b;
	const char *idents[] = {
	        "{\"channel\":\"ActuatorChannel\",\"id\":\"42\"}",
	        "{\"channel\":\"ActuatorChannel\",\"id\":42}",
	        "{\"id\":42,\"channel\":\"ActuatorChannel\",\"extra\":\"ignored/#\"}",
	        " {\"channel\" : \"ActuatorChannel\" , \"id\" : \"42\"} ",
	};
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(idents); i++) {
		b = bind_ok(map, idents[i]);
		ASSERT_STR_EQ(cable_binding_channel(b), "ActuatorChannel");
		ASSERT_EQ(cable_binding_deliver(b), CABLE_DELIVER_MESSAGE);
		ASSERT_EQ(cable_binding_stream_count(b), 2);
		ASSERT_STR_EQ(cable_binding_stream(b, 0), "actuators/42/state");
		ASSERT_STR_EQ(cable_binding_stream(b, 1), "actuators/42/cmd");
		ASSERT_NULL(cable_binding_stream(b, 2));
		cable_binding_free(b);
	}
	cable_binding_free(NULL);

	/* The range ends are inclusive; the canonical form has no leading zeros. */
	b = bind_ok(map, "{\"channel\":\"ActuatorChannel\",\"id\":\"0\"}");
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "actuators/0/state");
	cable_binding_free(b);
	b = bind_ok(map, "{\"channel\":\"ActuatorChannel\",\"id\":1000000}");
	ASSERT_STR_EQ(cable_binding_stream(b, 1), "actuators/1000000/cmd");
	cable_binding_free(b);
	b = bind_ok(map, "{\"channel\":\"ActuatorChannel\",\"id\":-0}");
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "actuators/0/state");
	cable_binding_free(b);

	b = bind_ok(map, "{\"channel\":\"RoomChannel\",\"room\":\"lobby-1\"}");
	ASSERT_EQ(cable_binding_deliver(b), CABLE_DELIVER_ENVELOPE);
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "rooms/lobby-1/#");
	cable_binding_free(b);
	cable_chanmap_free(map);
}

static void test_bind_integer_refused(void)
{
	struct cable_chanmap *map = load(q(MAP));
	const char *bad[] = {
	        "\"id\":\"042\"",
	        "\"id\":\"00\"",
	        "\"id\":\"-1\"",
	        "\"id\":-1",
	        "\"id\":1000001",
	        "\"id\":\"1000001\"",
	        "\"id\":\"+42\"",
	        "\"id\":\" 42\"",
	        "\"id\":\"42 \"",
	        "\"id\":\"4 2\"",
	        "\"id\":\"0x2a\"",
	        "\"id\":\"\"",
	        "\"id\":42.0",
	        "\"id\":4.2e1",
	        "\"id\":true",
	        "\"id\":null",
	        "\"id\":[42]",
	        "\"id\":{\"a\":42}",
	        "\"id\":\"42/x\"",
	        "\"id\":\"#\"",
	        "\"id\":\"+\"",
	        "\"id\":\"4\\u00002\"",
	        "\"id\":\"99999999999999999999\"",
	        "\"id\":\"9223372036854775807\"",
	        "\"id\":\"9223372036854775808\"",
	};
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(bad); i++)
		value_refused(map, "ActuatorChannel", bad[i], "channels.ActuatorChannel: param id");
	value_refused(map, "ActuatorChannel", "\"id\":\"042\"", "is not an integer");
	value_refused(map, "ActuatorChannel", "\"id\":1000001", "is out of range");
	value_refused(map, "ActuatorChannel", "\"idd\":42",
	              "channels.ActuatorChannel: param id "
	              "is missing");
	cable_chanmap_free(map);
}

static void test_bind_injection_refused(void)
{
	struct cable_chanmap *map = load(q(MAP));
	const char *bad[] = {
	        "\"name\":\"#\"",       "\"name\":\"+\"",
	        "\"name\":\"a/b\"",     "\"name\":\"/\"",
	        "\"name\":\"a#\"",      "\"name\":\"a+b\"",
	        "\"name\":\"$SYS\"",    "\"name\":\"$share\"",
	        "\"name\":\"\"",        "\"name\":\"a\\u0000b\"",
	        "\"name\":\"\\u0000\"", "\"name\":\"a\\u0001\"",
	        "\"name\":7",           "\"name\":null",
	        "\"name\":[\"a\"]",
	};
	char *big, *ident;
	size_t i, n = 70 * 1024;
	struct cable_error err = {0};

	for (i = 0; i < CABLE_ARRAY_LEN(bad); i++)
		value_refused(map, "NameChannel", bad[i], "channels.NameChannel: param name");
	/* The text names the param, never the value. */
	value_refused(map, "NameChannel", "\"name\":\"$SYS\"", "is not a valid topic level");
	{
		struct cable_binding *b = NULL;
		const char *id = q("{'channel': 'NameChannel', 'name': '$SYS'}");

		ASSERT_EQ(bind_as(map, id, strlen(id), "alice", &b, &err), CABLE_EINVAL);
		ASSERT_NULL(strstr(err.text, "$SYS"));
	}
	value_refused(map, "RoomChannel", "\"room\":\"Lobby\"",
	              "channels.RoomChannel: param room does not match its pattern");
	value_refused(map, "RoomChannel", "\"room\":\"a/b\"", "param room is not a valid topic");
	value_refused(map, "RoomChannel", "\"room\":\"#\"", "param room");

	/* 70 KB: over max_length (default 128), and over MQTT's 65535 even where the
	 * channel allows the maximum. */
	big = malloc(n + 64);
	ident = malloc(n + 128);
	ASSERT_NOT_NULL(big);
	ASSERT_NOT_NULL(ident);
	memset(big, 'a', n);
	big[n] = '\0';
	snprintf(ident, n + 128, "{\"channel\":\"NameChannel\",\"name\":\"%s\"}", big);
	bind_fails(map, ident, strlen(ident), CABLE_EINVAL,
	           "channels.NameChannel: param name is longer than 128 bytes");
	snprintf(ident, n + 128, "{\"channel\":\"LongChannel\",\"name\":\"%s\"}", big);
	bind_fails(map, ident, strlen(ident), CABLE_EINVAL, "param name is longer than 65535");
	/* At the limit the value fits, but the expanded topic ("l/" + value) does not. */
	big[65535] = '\0';
	snprintf(ident, n + 128, "{\"channel\":\"LongChannel\",\"name\":\"%s\"}", big);
	bind_fails(map, ident, strlen(ident), CABLE_EINVAL,
	           "channels.LongChannel.streams[0]: expands to an invalid topic");
	free(big);
	free(ident);

	/* Duplicate keys: a later reader might take the other value. */
	ident = (char *)q("{'channel': 'NameChannel', 'name': 'a', 'name': '#'}");
	bind_fails(map, ident, strlen(ident), CABLE_EINVAL, "not valid JSON");
	cable_chanmap_free(map);
}

static void test_bind_identifier_errors(void)
{
	struct cable_chanmap *map = load(q(MAP));
	const char *s;

	s = q("{'channel': 'NopeChannel', 'id': '1'}");
	bind_fails(map, s, strlen(s), CABLE_ENOTFOUND, "no channel \"NopeChannel\"");
	/* Client names are quoted with control characters and quotes replaced. */
	s = "{\"channel\":\"Bad\\n\\\"Name\"}";
	bind_fails(map, s, strlen(s), CABLE_ENOTFOUND, "no channel \"Bad??Name\"");
	s = "{\"channel\":\"ActuatorChannel\\u0000\",\"id\":1}";
	bind_fails(map, s, strlen(s), CABLE_ENOTFOUND, "no channel \"ActuatorChannel?\"");
	s = q("{'channel': 'actuatorchannel', 'id': '1'}");
	bind_fails(map, s, strlen(s), CABLE_ENOTFOUND, "no channel");
	s = q("{'id': '42'}");
	bind_fails(map, s, strlen(s), CABLE_ENOTFOUND, "identifier has no \"channel\"");
	s = q("{'channel': 7}");
	bind_fails(map, s, strlen(s), CABLE_EINVAL, "identifier \"channel\" is not a string");
	bind_fails(map, "ActuatorChannel", 15, CABLE_EINVAL, "identifier is not valid JSON");
	bind_fails(map, "", 0, CABLE_EINVAL, "identifier is not valid JSON");
	bind_fails(map, "[1]", 3, CABLE_EINVAL, "identifier is not a JSON object");
	bind_fails(map, "\"x\"", 3, CABLE_EINVAL, "not");
	/* (pointer, length): bytes after len are not part of the identifier. */
	s = q("{'channel': 'ActuatorChannel', 'id': 42}garbage");
	bind_fails(map, s, strlen(s), CABLE_EINVAL, "not valid JSON");
	{
		struct cable_binding *b = NULL;

		ASSERT_OK(bind_as(map, s, strlen(s) - 7, "alice", &b, NULL));
		cable_binding_free(b);
	}
	cable_chanmap_free(map);
}

static void test_bind_user(void)
{
	struct cable_chanmap *map = load(q(MAP));
	const char *id = q("{'channel': 'InboxChannel'}");
	struct cable_binding *b = NULL;
	struct cable_error err = {0};
	const char *bad[] = {"a/b", "#", "+", "$SYS", ""};
	size_t i;

	ASSERT_OK(bind_as(map, id, strlen(id), "alice", &b, &err));
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "users/alice/inbox");
	perform_ok(b, q("{'action': 'send', 'text': 'hi'}"), "users/alice/outbox",
	           q("{'text':'hi'}"), 0, false);
	cable_binding_free(b);
	/* A "user" in the identifier is just another ignored key: the token decides. */
	b = bind_ok(map, q("{'channel': 'InboxChannel', 'user': 'bob'}"));
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "users/alice/inbox");
	cable_binding_free(b);

	for (i = 0; i < CABLE_ARRAY_LEN(bad); i++) {
		b = NULL;
		ASSERT_EQ(bind_as(map, id, strlen(id), bad[i], &b, &err), CABLE_EINVAL);
		ASSERT_NULL(b);
		ASSERT_STR_EQ(err.text, "channels.InboxChannel: the user is not usable as a topic "
		                        "level");
	}
	/* No principal at all. */
	ASSERT_EQ(bind_as(map, id, strlen(id), NULL, &b, &err), CABLE_EINVAL);
	cable_chanmap_free(map);
}

/* {claim.NAME}: a claim of the verified token, as one level (string or integer). */
static void test_bind_claims(void)
{
	struct cable_chanmap *map = load(
	        q("{'channels': {'TenantChannel': {'params': {'id': {'type': 'integer'}},"
	          "'streams': ['tenants/{claim.tenant}/actuators/{id}/state', 'orgs/{claim.org}'],"
	          "'actions': {'speak': {'topic': 'tenants/{claim.tenant}/actuators/{id}/cmd',"
	          "'payload': 'data'}}}}}"));
	const char *id = "{\"channel\": \"TenantChannel\", \"id\": 7}";
	struct cable_principal who = {0};
	struct cable_binding *b = NULL;
	struct cable_error err = {0};
	const char *bad[] = {"{'tenant': 'a/b', 'org': 1}",   "{'tenant': '#', 'org': 1}",
	                     "{'tenant': '$x', 'org': 1}",    "{'tenant': '', 'org': 1}",
	                     "{'tenant': true, 'org': 1}",    "{'org': 1}",
	                     "{'tenant': 'acme', 'org': 1.5}"};
	size_t i;

	ASSERT(cable_chanmap_uses_claims(map));
	who.user = "alice";
	who.claims = json_loads(q("{'tenant': 'acme', 'org': 42}"), 0, NULL);
	ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), &who, "sid", &b, &err));
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "tenants/acme/actuators/7/state");
	ASSERT_STR_EQ(cable_binding_stream(b, 1), "orgs/42");
	perform_ok(b, q("{'action': 'speak', 'x': 1}"), "tenants/acme/actuators/7/cmd",
	           q("{'x':1}"), 0, false);
	cable_binding_free(b);
	json_decref(who.claims);

	for (i = 0; i < CABLE_ARRAY_LEN(bad); i++) {
		b = NULL;
		who.claims = json_loads(q(bad[i]), 0, NULL);
		ASSERT_NOT_NULL(who.claims);
		ASSERT_EQ(cable_chanmap_bind(map, id, strlen(id), &who, "sid", &b, &err),
		          CABLE_EINVAL);
		ASSERT_NULL(b);
		ASSERT(strstr(err.text, "claim") != NULL);
		json_decref(who.claims);
	}
	/* No claims at all (anonymous). */
	who.claims = NULL;
	ASSERT_EQ(cable_chanmap_bind(map, id, strlen(id), &who, "sid", &b, &err), CABLE_EINVAL);
	cable_chanmap_free(map);
	load_fails(q("{'channels': {'C': {'streams': ['a/{claim.x-y}']}}}"), "claim name");
}

static void test_bind_generic(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b;
	const char *bad[] = {
	        "\"topic\":\"$SYS/#\"", "\"topic\":\"$share/g/a\"",
	        "\"topic\":\"\"",       "\"topic\":\"a/#/b\"",
	        "\"topic\":\"a/b#\"",   "\"topic\":\"a\\u0000b\"",
	        "\"topic\":7",          "\"top\":\"a\"",
	};
	size_t i;

	ASSERT(!cable_chanmap_uses_claims(map)); /* {user} and {id}, no {claim.*} */
	b = bind_ok(map, q("{'channel': 'TopicChannel', 'topic': 'sites/7/+/temp/#'}"));
	ASSERT_STR_EQ(cable_binding_channel(b), "TopicChannel");
	ASSERT_EQ(cable_binding_stream_count(b), 1);
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "sites/7/+/temp/#");
	ASSERT_EQ(cable_binding_deliver(b), CABLE_DELIVER_ENVELOPE);
	cable_binding_free(b);
	b = bind_ok(map, q("{'channel': 'WatchChannel', 'topic': '#'}"));
	ASSERT_STR_EQ(cable_binding_stream(b, 0), "#");
	ASSERT_EQ(cable_binding_deliver(b), CABLE_DELIVER_MESSAGE);
	cable_binding_free(b);

	for (i = 0; i < CABLE_ARRAY_LEN(bad); i++)
		value_refused(map, "TopicChannel", bad[i], "channels.TopicChannel: topic");
	cable_chanmap_free(map);
}

/* A binding owns its data: it must work after the map is gone (reload). */
static void test_binding_outlives_map(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b = bind_ok(map, q("{'channel': 'ActuatorChannel', 'id': 7}"));

	cable_chanmap_free(map);
	ASSERT_STR_EQ(cable_binding_channel(b), "ActuatorChannel");
	ASSERT_STR_EQ(cable_binding_stream(b, 1), "actuators/7/cmd");
	perform_ok(b, q("{'message': 'on', 'action': 'speak'}"), "actuators/7/cmd",
	           q("{'user':'alice','message':'on'}"), 0, false);
	cable_binding_free(b);
}

/* ---- Perform ---------------------------------------------------------------------- */

static void test_perform_identity(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b = bind_ok(map, q("{'channel': 'ActuatorChannel', 'id': '42'}"));

	/* The motivating example, byte for byte, in both key orders. */
	perform_ok(b, "{\"message\":\"on\",\"action\":\"speak\"}", "actuators/42/cmd",
	           "{\"user\":\"alice\",\"message\":\"on\"}", 0, false);
	perform_ok(b, "{\"action\":\"speak\",\"message\":\"on\"}", "actuators/42/cmd",
	           "{\"user\":\"alice\",\"message\":\"on\"}", 0, false);
	/* Members keep the client's order; "user" and "sid" cannot be forged. */
	perform_ok(b,
	           q("{'b': 2, 'user': 'mallory', 'a': [1, {'z': null}], 'sid': 'x', "
	             "'action': 'speak'}"),
	           "actuators/42/cmd", q("{'user':'alice','b':2,'a':[1,{'z':null}]}"), 0, false);
	perform_ok(b, q("{'action': 'speak'}"), "actuators/42/cmd", q("{'user':'alice'}"), 0,
	           false);
	/* with_sid: the connection's sid, last. */
	perform_ok(b, q("{'action': 'hello', 'sid': 'forged', 'message': 'hi'}"),
	           "actuators/42/cmd", q("{'user':'alice','message':'hi','sid':'sid-1'}"), 0,
	           false);
	/* Non-ASCII survives as UTF-8. */
	perform_ok(b, "{\"action\":\"speak\",\"message\":\"gr\\u00fc\\u00df\"}", "actuators/42/cmd",
	           "{\"user\":\"alice\",\"message\":\"gr\xc3\xbc\xc3\x9f\"}", 0, false);
	cable_binding_free(b);

	/* Without a principal the user is null; without a sid, too. */
	{
		const char *id = q("{'channel': 'ActuatorChannel', 'id': 1}");
		struct cable_error err = {0};

		ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), NULL, NULL, &b, &err));
		perform_ok(b, q("{'action': 'hello'}"), "actuators/1/cmd",
		           q("{'user':null,'sid':null}"), 0, false);
		cable_binding_free(b);
	}
	cable_chanmap_free(map);
}

static void test_perform_message(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b = bind_ok(map, q("{'channel': 'ActuatorChannel', 'id': 42}"));
	struct cable_error err = {0};
	struct cable_publish p = {0};
	const char *d;

	/* A string goes out as its bytes, anything else as compact JSON. */
	perform_ok(b, q("{'action': 'set', 'message': 'on'}"), "actuators/42/set", "on", 1, false);
	perform_ok(b, q("{'action': 'set', 'message': ''}"), "actuators/42/set", "", 1, false);
	perform_ok(b, q("{'action': 'set', 'message': {'on': true, 'level': 3}}"),
	           "actuators/42/set", q("{'on':true,'level':3}"), 1, false);
	perform_ok(b, q("{'action': 'set', 'message': 0.1}"), "actuators/42/set", "0.1", 1, false);
	perform_ok(b, q("{'action': 'set', 'message': 0.30000000000000004}"), "actuators/42/set",
	           "0.30000000000000004", 1, false);
	perform_ok(b, q("{'action': 'set', 'message': [1, 'a', null]}"), "actuators/42/set",
	           q("[1,'a',null]"), 1, false);
	perform_ok(b, q("{'action': 'set', 'message': null}"), "actuators/42/set", "null", 1,
	           false);
	/* Embedded NUL: the payload carries it, payload_len counts it. */
	d = "{\"action\":\"set\",\"message\":\"a\\u0000b\"}";
	ASSERT_OK(perform(b, d, &p, &err));
	ASSERT_EQ(p.payload_len, 3);
	ASSERT_MEM_EQ(p.payload, "a\0b", 3);
	cable_publish_release(&p);
	cable_publish_release(&p); /* a zeroed struct is fine */
	perform_fails(b, q("{'action': 'set', 'msg': 'on'}"), CABLE_EINVAL,
	              "channels.ActuatorChannel.actions.set: data has no \"message\"");
	cable_binding_free(b);
	cable_chanmap_free(map);
}

static void test_perform_data(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b = bind_ok(map, q("{'channel': 'ActuatorChannel', 'id': 42}"));

	perform_ok(b, q("{'x': 1, 'action': 'raw', 'y': [true, null], 'z': {'s': 'a/b'}}"),
	           "actuators/42/raw", q("{'x':1,'y':[true,null],'z':{'s':'a/b'}}"), 2, false);
	perform_ok(b, q("{'action': 'raw'}"), "actuators/42/raw", "{}", 2, false);
	/* No "action": Rails' default, "receive". */
	perform_ok(b, q("{'x': 1}"), "actuators/42/log", q("{'x':1}"), 0, false);
	perform_ok(b, "{}", "actuators/42/log", "{}", 0, false);
	cable_binding_free(b);
	cable_chanmap_free(map);
}

static void test_perform_errors(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b = bind_ok(map, q("{'channel': 'ActuatorChannel', 'id': 42}"));
	struct cable_binding *r = bind_ok(map, q("{'channel': 'RoomChannel', 'room': 'a'}"));
	struct cable_publish p = {0};

	perform_fails(b, q("{'action': 'nope'}"), CABLE_ENOTFOUND,
	              "channels.ActuatorChannel: no action \"nope\"");
	perform_fails(b, q("{'action': 'Speak'}"), CABLE_ENOTFOUND, "no action");
	perform_fails(b, "{\"action\":\"speak\\u0000\"}", CABLE_ENOTFOUND, "\"speak?\"");
	perform_fails(b, q("{'action': 7}"), CABLE_EINVAL,
	              "channels.ActuatorChannel: \"action\" is not a string");
	perform_fails(b, "not json", CABLE_EINVAL, "perform data is not valid JSON");
	perform_fails(b, "[]", CABLE_EINVAL, "perform data is not a JSON object");
	perform_fails(b, q("{'action': 'speak', 'action': 'raw'}"), CABLE_EINVAL, "not valid JSON");
	/* A channel without actions: even the default one is unknown. */
	perform_fails(r, "{}", CABLE_ENOTFOUND, "channels.RoomChannel: no action \"receive\"");
	/* Out-param untouched on failure. */
	p.qos = 77;
	ASSERT_EQ(perform(b, "[]", &p, NULL), CABLE_EINVAL);
	ASSERT_EQ(p.qos, 77);
	cable_binding_free(r);
	cable_binding_free(b);
	cable_chanmap_free(map);
}

static void test_perform_retain(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b = bind_ok(map, q("{'channel': 'ActuatorChannel', 'id': 42}"));

	perform_fails(b, q("{'action': 'speak', 'message': 'on', 'retain': true}"), CABLE_EDENIED,
	              "channels.ActuatorChannel.actions.speak: retain is not allowed");
	perform_fails(b, q("{'action': 'set', 'message': 'on', 'retain': true}"), CABLE_EDENIED,
	              "retain is not allowed");
	/* Asking for no retain is fine, and passes through as data. */
	perform_ok(b, q("{'action': 'speak', 'message': 'on', 'retain': false}"),
	           "actuators/42/cmd", q("{'user':'alice','message':'on','retain':false}"), 0,
	           false);
	/* An action that allows retain publishes with its configured flag. */
	perform_ok(b, q("{'action': 'pin', 'message': 'on', 'retain': true}"),
	           "actuators/42/pinned", "on", 0, true);
	perform_ok(b, q("{'action': 'pin', 'message': 'on'}"), "actuators/42/pinned", "on", 0,
	           true);
	cable_binding_free(b);
	cable_chanmap_free(map);
}

static void test_perform_generic(void)
{
	struct cable_chanmap *map = load(q(MAP));
	struct cable_binding *b =
	        bind_ok(map, q("{'channel': 'TopicChannel', 'topic': 'sites/#'}"));
	struct cable_binding *w = bind_ok(map, q("{'channel': 'WatchChannel', 'topic': 'a'}"));

	perform_ok(b, q("{'action': 'publish', 'topic': 'sites/7/x', 'message': 'm'}"), "sites/7/x",
	           "m", 1, false);
	perform_ok(b, q("{'action': 'publish', 'topic': 'other', 'message': {'a': 1}}"), "other",
	           q("{'a':1}"), 1, false);
	perform_fails(b, q("{'action': 'publish', 'topic': '$SYS/x', 'message': 'm'}"),
	              CABLE_EINVAL,
	              "channels.TopicChannel.actions.publish: \"topic\" is missing or not");
	perform_fails(b, q("{'action': 'publish', 'topic': 'a/+', 'message': 'm'}"), CABLE_EINVAL,
	              "\"topic\"");
	perform_fails(b, q("{'action': 'publish', 'topic': 'a/#', 'message': 'm'}"), CABLE_EINVAL,
	              "\"topic\"");
	perform_fails(b, q("{'action': 'publish', 'topic': '', 'message': 'm'}"), CABLE_EINVAL,
	              "\"topic\"");
	perform_fails(b, "{\"action\":\"publish\",\"topic\":\"a\\u0000\",\"message\":\"m\"}",
	              CABLE_EINVAL, "\"topic\"");
	perform_fails(b, q("{'action': 'publish', 'message': 'm'}"), CABLE_EINVAL, "\"topic\"");
	perform_fails(b, q("{'action': 'publish', 'topic': 'a'}"), CABLE_EINVAL,
	              "data has no \"message\"");
	perform_fails(b, q("{'action': 'publish', 'topic': 'a', 'message': 'm', 'retain': true}"),
	              CABLE_EDENIED, "retain is not allowed");
	perform_fails(b, q("{'topic': 'a', 'message': 'm'}"), CABLE_ENOTFOUND,
	              "no action \"receive\"");
	/* A generic channel without "actions" publishes nothing. */
	perform_fails(w, q("{'action': 'publish', 'topic': 'a', 'message': 'm'}"), CABLE_ENOTFOUND,
	              "channels.WatchChannel: no action \"publish\"");
	cable_binding_free(w);
	cable_binding_free(b);
	cable_chanmap_free(map);
}

/* ---- Answers: "answer", "request", "$request" ------------------------------------- */

static const char ANSWER_MAP[] =
        "{'channels': {"
        " 'A': {'params': {'id': {'type': 'integer'}}, 'streams': ['a/{id}'],"
        "  'answer': 'refusals',"
        "  'actions': {"
        "   'speak': {'topic': 'a/{id}/cmd', 'payload': 'identity'},"
        "   'ask': {'topic': 'a/{id}/cmd', 'payload': 'data', 'request': true, 'answer': 'all'},"
        "   'quiet': {'topic': 'a/{id}/cmd', 'payload': 'message', 'answer': 'none'}}},"
        " 'Plain': {'streams': ['p'], 'actions': {'go': {'topic': 'p', 'payload': 'data'}}},"
        " 'G': {'generic': true, 'answer': 'all', 'actions': {'publish': {'request': true}}}"
        "}}";

/* Perform and check the answer info; returns the status. */
static int perform_info(const struct cable_binding *b, const char *data,
                        struct cable_perform_info *info, struct cable_publish *p)
{
	struct cable_error err = {0};

	return cable_binding_perform(b, data, strlen(data), p, info, &err);
}

static void info_is(const struct cable_perform_info *info, enum cable_answer answer, bool request,
                    enum cable_refusal refusal, const char *action, const char *request_id)
{
	ASSERT_EQ(info->answer, answer);
	ASSERT_EQ(info->request, request);
	ASSERT_EQ(info->refusal, refusal);
	if (action == NULL)
		ASSERT_NULL(info->action);
	else {
		ASSERT_NOT_NULL(info->action);
		ASSERT_STR_EQ(info->action, action);
		ASSERT_EQ(info->action_len, strlen(action));
	}
	if (request_id == NULL)
		ASSERT_NULL(info->request_id);
	else {
		ASSERT_NOT_NULL(info->request_id);
		ASSERT_STR_EQ(info->request_id, request_id);
		ASSERT_EQ(info->request_id_len, strlen(request_id));
	}
}

static void test_answer_load_errors(void)
{
	channel_fails("{'answer': 'yes'}", "channels.C.answer: must be \"none\", \"refusals\" or");
	channel_fails("{'answer': true}", "channels.C.answer: must be");
	channel_fails("{'actions': {'a': {'topic': 't', 'payload': 'data', 'answer': 'ack'}}}",
	              "channels.C.actions.a.answer: must be");
	channel_fails("{'actions': {'a': {'topic': 't', 'payload': 'data', 'request': 'yes'}}}",
	              "channels.C.actions.a.request: must be true or false");
	channel_fails("{'actions': {'a': {'topic': 't', 'payload': 'data', 'answers': 'all'}}}",
	              "unknown key \"answers\"");
	channel_fails("{'generic': true, 'answer': 'loud'}", "channels.C.answer: must be");
	channel_fails("{'generic': true, 'actions': {'publish': {'request': 1}}}",
	              "channels.C.actions.publish.request: must be true or false");
	cable_chanmap_free(load(q(ANSWER_MAP)));
}

static void test_answer_info(void)
{
	struct cable_chanmap *map = load(q(ANSWER_MAP));
	struct cable_binding *a = bind_ok(map, q("{'channel': 'A', 'id': 1}"));
	struct cable_binding *plain = bind_ok(map, q("{'channel': 'Plain'}"));
	struct cable_binding *g = bind_ok(map, q("{'channel': 'G', 'topic': 'x/#'}"));
	struct cable_perform_info info = {0};
	struct cable_publish p = {0};

	/* Accepted: the action's answer (or the channel's), request flag, "$request". */
	ASSERT_EQ(perform_info(a, q("{'action': 'speak', 'message': 'on'}"), &info, &p), CABLE_OK);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_NONE, "speak", NULL);
	cable_publish_release(&p);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 'ask', '$request': 'r-1', 'x': 1}"), &info, &p),
	          CABLE_OK);
	info_is(&info, CABLE_ANSWER_ALL, true, CABLE_REFUSED_NONE, "ask", q("'r-1'"));
	/* "$request" is never published. */
	ASSERT_STR_EQ(p.payload, q("{'x':1}"));
	cable_publish_release(&p);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 'speak', '$request': 42, 'message': 'on'}"), &info,
	                       &p),
	          CABLE_OK);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_NONE, "speak", "42");
	ASSERT_STR_EQ(p.payload, q("{'user':'alice','message':'on'}"));
	cable_publish_release(&p);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 'quiet', 'message': 'm'}"), &info, &p), CABLE_OK);
	/* Nothing to answer: the name is not even copied. */
	info_is(&info, CABLE_ANSWER_NONE, false, CABLE_REFUSED_NONE, NULL, NULL);
	cable_publish_release(&p);
	cable_perform_info_release(&info);

	/* Refused: each reason, with the answer that applies. */
	ASSERT_EQ(perform_info(a, q("{'action': 'dance', '$request': 'd'}"), &info, &p),
	          CABLE_ENOTFOUND);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_UNKNOWN_ACTION, "dance",
	        q("'d'"));
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 'ask', 'retain': true}"), &info, &p),
	          CABLE_EDENIED);
	info_is(&info, CABLE_ANSWER_ALL, true, CABLE_REFUSED_RETAIN, "ask", NULL);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 'speak', '$request': [1]}"), &info, &p),
	          CABLE_EINVAL);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_INVALID, "speak", NULL);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a,
	                       q("{'action': 'speak', '$request': "
	                         "'0123456789012345678901234567890123456789012345678901234567890123"
	                         "4'}"),
	                       &info, &p),
	          CABLE_EINVAL);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_INVALID, "speak", NULL);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 'quiet'}"), &info, &p), CABLE_EINVAL);
	info_is(&info, CABLE_ANSWER_NONE, false, CABLE_REFUSED_INVALID, NULL, NULL);
	cable_perform_info_release(&info);
	/* Not an object, or no string action: nothing to name; the channel's answer. */
	ASSERT_EQ(perform_info(a, "[1]", &info, &p), CABLE_EINVAL);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_INVALID, NULL, NULL);
	cable_perform_info_release(&info);
	ASSERT_EQ(perform_info(a, q("{'action': 5}"), &info, &p), CABLE_EINVAL);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_INVALID, NULL, NULL);
	cable_perform_info_release(&info);
	/* No action member: "receive", which A does not have. */
	ASSERT_EQ(perform_info(a, q("{'message': 'm'}"), &info, &p), CABLE_ENOTFOUND);
	info_is(&info, CABLE_ANSWER_REFUSALS, false, CABLE_REFUSED_UNKNOWN_ACTION, "receive", NULL);
	cable_perform_info_release(&info);

	/* A channel that says nothing answers nothing (ActionCable's behaviour). */
	ASSERT_EQ(perform_info(plain, q("{'action': 'nope'}"), &info, &p), CABLE_ENOTFOUND);
	info_is(&info, CABLE_ANSWER_NONE, false, CABLE_REFUSED_UNKNOWN_ACTION, NULL, NULL);
	cable_perform_info_release(&info);

	/* The generic publish may be a request too. */
	ASSERT_EQ(perform_info(g, q("{'action': 'publish', 'topic': 'x/1', 'message': 'm'}"), &info,
	                       &p),
	          CABLE_OK);
	info_is(&info, CABLE_ANSWER_ALL, true, CABLE_REFUSED_NONE, "publish", NULL);
	cable_publish_release(&p);
	cable_perform_info_release(&info);
	cable_perform_info_release(&info); /* twice is fine: it zeroes */
	cable_perform_info_release(NULL);

	ASSERT_STR_EQ(cable_refusal_name(CABLE_REFUSED_ACL), "acl_denied");
	ASSERT_STR_EQ(cable_refusal_name(CABLE_REFUSED_BROKER), "broker_refused");
	ASSERT_STR_EQ(cable_refusal_name(CABLE_REFUSED_SERVER), "server_error");
	ASSERT_STR_EQ(cable_refusal_name(CABLE_REFUSED_NONE), "");
	ASSERT_STR_EQ(cable_refusal_name((enum cable_refusal)99), "");
	cable_binding_free(g);
	cable_binding_free(plain);
	cable_binding_free(a);
	cable_chanmap_free(map);
}

/* presence and whisper: defaults, settings, the watchers topic bound per subscription. */
static void test_presence_whisper(void)
{
	struct cable_chanmap *map =
	        load(q("{'channels': {"
	               " 'D': {'params': {'id': {'type': 'integer'}}, 'streams': ['d/{id}'],"
	               "       'presence': {'ttl': 0, 'info_max_bytes': 2,"
	               "                    'watchers_topic': 'd/{id}/watchers/{user}'},"
	               "       'whisper': {'rate': 3, 'burst': 7, 'max_bytes': 9}},"
	               " 'T': {'streams': ['t'], 'presence': true, 'whisper': true},"
	               " 'F': {'streams': ['f'], 'presence': false, 'whisper': false},"
	               " 'N': {'streams': ['n']},"
	               " 'G': {'generic': true, 'presence': true, 'whisper': {'rate': 1}}}}"));
	struct cable_principal who = {.user = "alice"};
	const struct cable_presence_config *pc;
	const struct cable_whisper_config *wc;
	struct cable_error err = {0};
	struct cable_binding *b = NULL;
	const char *id;

	id = q("{'channel': 'D', 'id': 7}");
	ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), &who, NULL, &b, &err));
	pc = cable_binding_presence(b);
	wc = cable_binding_whisper(b);
	ASSERT_NOT_NULL(pc);
	ASSERT_NOT_NULL(wc);
	ASSERT_EQ(pc->ttl, 0);
	ASSERT_EQ(pc->info_max, 2);
	ASSERT_STR_EQ(pc->watchers_topic, "d/7/watchers/alice");
	ASSERT_EQ(wc->rate, 3);
	ASSERT_EQ(wc->burst, 7);
	ASSERT_EQ(wc->max_bytes, 9);
	cable_binding_free(b);
	/* A user that is not a valid level cannot make the watchers topic: refused. */
	who.user = "al/ice";
	b = NULL;
	ASSERT_EQ(cable_chanmap_bind(map, id, strlen(id), &who, NULL, &b, &err), CABLE_EINVAL);
	ASSERT_NULL(b);
	who.user = "alice";

	id = q("{'channel': 'T'}");
	ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), &who, NULL, &b, &err));
	pc = cable_binding_presence(b);
	ASSERT_EQ(pc->ttl, CABLE_PRESENCE_TTL_DEFAULT);
	ASSERT_EQ(pc->info_max, CABLE_PRESENCE_INFO_MAX_DEFAULT);
	ASSERT_NULL(pc->watchers_topic);
	ASSERT_EQ(cable_binding_whisper(b)->rate, CABLE_WHISPER_RATE_DEFAULT);
	ASSERT_EQ(cable_binding_whisper(b)->burst, CABLE_WHISPER_BURST_DEFAULT);
	ASSERT_EQ(cable_binding_whisper(b)->max_bytes, CABLE_WHISPER_MAX_BYTES_DEFAULT);
	cable_binding_free(b);

	id = q("{'channel': 'F'}");
	ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), &who, NULL, &b, &err));
	ASSERT_NULL(cable_binding_presence(b));
	ASSERT_NULL(cable_binding_whisper(b));
	cable_binding_free(b);
	id = q("{'channel': 'N'}");
	ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), &who, NULL, &b, &err));
	ASSERT_NULL(cable_binding_presence(b));
	ASSERT_NULL(cable_binding_whisper(b));
	cable_binding_free(b);

	id = q("{'channel': 'G', 'topic': 'a/+'}");
	ASSERT_OK(cable_chanmap_bind(map, id, strlen(id), &who, NULL, &b, &err));
	ASSERT_NOT_NULL(cable_binding_presence(b));
	ASSERT_EQ(cable_binding_whisper(b)->rate, 1);
	ASSERT_EQ(cable_binding_whisper(b)->burst, CABLE_WHISPER_BURST_DEFAULT);
	cable_binding_free(b);
	cable_chanmap_free(map);
}

static void test_presence_whisper_load_errors(void)
{
	load_fails(q("{'channels': {'C': {'presence': 1}}}"),
	           "channels.C.presence: must be true, false or an object");
	load_fails(q("{'channels': {'C': {'presence': {'tll': 5}}}}"),
	           "channels.C.presence: unknown key \"tll\"");
	load_fails(q("{'channels': {'C': {'presence': {'ttl': -1}}}}"),
	           "channels.C.presence.ttl: must be an integer from 0 to 3600");
	load_fails(q("{'channels': {'C': {'presence': {'ttl': 3601}}}}"), "presence.ttl");
	load_fails(q("{'channels': {'C': {'presence': {'info_max_bytes': 1}}}}"),
	           "presence.info_max_bytes: must be an integer from 2 to 65536");
	load_fails(q("{'channels': {'C': {'presence': {'watchers_topic': 5}}}}"),
	           "channels.C.presence.watchers_topic: must be a string");
	load_fails(q("{'channels': {'C': {'presence': {'watchers_topic': 'w/#'}}}}"),
	           "channels.C.presence.watchers_topic: an action topic may not contain wildcards");
	load_fails(q("{'channels': {'C': {'presence': {'watchers_topic': '$SYS/w'}}}}"),
	           "may not start with '$'");
	load_fails(q("{'channels': {'C': {'presence': {'watchers_topic': 'w/{nope}'}}}}"),
	           "placeholder {nope} is not a declared param");
	load_fails(q("{'channels': {'G': {'generic': true,"
	             " 'presence': {'watchers_topic': 'w'}}}}"),
	           "a generic channel has no watchers topic");
	load_fails(q("{'channels': {'C': {'whisper': 'yes'}}}"),
	           "channels.C.whisper: must be true, false or an object");
	load_fails(q("{'channels': {'C': {'whisper': {'rate': 0}}}}"),
	           "channels.C.whisper.rate: must be an integer from 1 to 10000");
	load_fails(q("{'channels': {'C': {'whisper': {'burst': 10001}}}}"), "whisper.burst");
	load_fails(q("{'channels': {'C': {'whisper': {'max_bytes': 1}}}}"), "whisper.max_bytes");
	load_fails(q("{'channels': {'C': {'whisper': {'size': 1}}}}"),
	           "channels.C.whisper: unknown key \"size\"");
}

TEST_MAIN(TEST(test_presence_whisper), TEST(test_presence_whisper_load_errors), TEST(test_load_ok),
          TEST(test_load_example_file), TEST(test_load_bad_json), TEST(test_load_template_errors),
          TEST(test_load_level_limit), TEST(test_load_param_errors), TEST(test_load_pattern_limits),
          TEST(test_load_channel_errors), TEST(test_bind_actuator), TEST(test_bind_integer_refused),
          TEST(test_bind_injection_refused), TEST(test_bind_identifier_errors),
          TEST(test_bind_user), TEST(test_bind_claims), TEST(test_bind_generic),
          TEST(test_binding_outlives_map), TEST(test_perform_identity), TEST(test_perform_message),
          TEST(test_perform_data), TEST(test_perform_errors), TEST(test_perform_retain),
          TEST(test_perform_generic), TEST(test_answer_load_errors), TEST(test_answer_info))
