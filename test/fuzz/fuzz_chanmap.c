/*
 * libFuzzer target for the channel map: arbitrary identifiers and perform data against
 * a fixed map. The properties checked are the security promises of cable_chanmap.h:
 *
 *   - every stream of a successful bind is a valid filter that does not start with '$';
 *   - template streams keep their literal levels, and each placeholder became exactly
 *     one level (so no value could add, remove or widen a level);
 *   - every topic a perform produces is a valid topic name (hence without wildcards)
 *     that does not start with '$'; a template action publishes to its own template;
 *   - an identity payload carries the principal's user, whatever the data said;
 *   - the answer to a perform is consistent: a refusal reason exactly when it failed,
 *     a "$request" echo that is the JSON of a string or an integer, and never part of
 *     the published payload.
 *
 * Input: identifier NUL data [NUL user]. Without a second NUL the user is "fuzzer".
 * Seeds: test/fuzz/corpus/chanmap/. The map is loaded once and kept (a fuzz target may
 * hold static state as long as every run leaves it unchanged).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cable_chanmap.h"
#include "cable_topic.h"
#include "fuzz.h"

/* Never compiled out (unlike assert under NDEBUG). */
/* config/channels.example.json plus a {user} channel, a free string param and a
 * generic channel, so every kind of placeholder and the generic path are explored. */
static const char MAP[] =
        "{\"channels\":{"
        "\"ActuatorChannel\":{\"params\":{\"id\":{\"type\":\"integer\",\"min\":0,"
        "\"max\":1000000}},\"streams\":[\"actuators/{id}/state\",\"actuators/{id}/cmd\"],"
        "\"deliver\":\"message\",\"answer\":\"refusals\",\"actions\":{\"speak\":{\"topic\":"
        "\"actuators/{id}/cmd\",\"payload\":\"identity\",\"qos\":0,\"retain\":false},"
        "\"status\":{\"topic\":\"actuators/{id}/cmd\",\"payload\":\"identity\","
        "\"request\":true,\"answer\":\"all\"}},\"presence\":{\"ttl\":5,"
        "\"watchers_topic\":\"actuators/{id}/watchers\"},\"whisper\":true},"
        "\"SensorChannel\":{\"params\":{\"site\":{\"type\":\"string\","
        "\"pattern\":\"^[a-z0-9][a-z0-9-]{0,31}$\"}},\"streams\":[\"sites/{site}/sensors/#\"],"
        "\"deliver\":\"envelope\"},"
        "\"BenchmarkChannel\":{\"streams\":[\"bench/all\"],\"actions\":{\"broadcast\":"
        "{\"topic\":\"bench/all\",\"payload\":\"data\"}}},"
        "\"NameChannel\":{\"params\":{\"name\":{},\"n\":{\"type\":\"integer\"}},"
        "\"streams\":[\"+/{name}/x/{n}/#\",\"{n}\"],\"actions\":{\"say\":{\"topic\":"
        "\"names/{name}/{n}\",\"payload\":\"message\",\"retain\":true},\"hello\":{\"topic\":"
        "\"hello/{name}\",\"payload\":\"identity\",\"with_sid\":true}}},"
        "\"InboxChannel\":{\"streams\":[\"users/{user}/inbox\"],\"actions\":{\"send\":"
        "{\"topic\":\"users/{user}/outbox\",\"payload\":\"data\"}},\"presence\":{"
        "\"watchers_topic\":\"users/{user}/watchers\"}},"
        "\"TopicChannel\":{\"generic\":true,\"actions\":{\"publish\":{\"qos\":1}}}"
        "}}";

/* What each template channel's streams and action topics must look like; "{}" marks a
 * placeholder level. */
struct expect {
	const char *channel;
	const char *streams[3];
	const char *actions[3];
	const char *watchers; /* presence.watchers_topic, NULL for none */
};

static const struct expect EXPECT[] = {
        {"ActuatorChannel",
         {"actuators/{}/state", "actuators/{}/cmd"},
         {"actuators/{}/cmd", "actuators/{}/cmd"},
         "actuators/{}/watchers"},
        {"SensorChannel", {"sites/{}/sensors/#"}, {NULL}, NULL},
        {"BenchmarkChannel", {"bench/all"}, {"bench/all"}, NULL},
        {"NameChannel", {"+/{}/x/{}/#", "{}"}, {"names/{}/{}", "hello/{}"}, NULL},
        {"InboxChannel", {"users/{}/inbox"}, {"users/{}/outbox"}, "users/{}/watchers"},
};

/* Does `topic` follow `tmpl` level by level: literal levels equal, each "{}" one clean
 * level (what cable_topic_level_valid accepts)? */
static int follows(const char *topic, const char *tmpl)
{
	const char *t = topic, *p = tmpl, *te, *pe;

	for (;;) {
		te = strchr(t, '/');
		pe = strchr(p, '/');
		if (te == NULL)
			te = t + strlen(t);
		if (pe == NULL)
			pe = p + strlen(p);
		if (pe - p == 2 && memcmp(p, "{}", 2) == 0) {
			if (!cable_topic_level_valid(t, (size_t)(te - t)))
				return 0;
		} else if (pe - p != te - t || memcmp(p, t, (size_t)(pe - p)) != 0) {
			return 0;
		}
		if (*te == '\0' || *pe == '\0')
			return *te == '\0' && *pe == '\0';
		t = te + 1;
		p = pe + 1;
	}
}

static const struct expect *expect_for(const char *channel)
{
	size_t i;

	for (i = 0; i < sizeof(EXPECT) / sizeof(EXPECT[0]); i++)
		if (strcmp(EXPECT[i].channel, channel) == 0)
			return &EXPECT[i];
	return NULL;
}

static void check_binding(const struct cable_binding *b, const struct expect *e)
{
	size_t i, n = cable_binding_stream_count(b);
	const char *s;

	for (i = 0; i < n; i++) {
		s = cable_binding_stream(b, i);
		CHECK(s != NULL);
		CHECK(cable_topic_filter_valid(s, strlen(s)));
		CHECK(s[0] != '$');
		if (e != NULL) {
			CHECK(i < 3 && e->streams[i] != NULL);
			CHECK(follows(s, e->streams[i]));
		}
	}
	if (e != NULL)
		CHECK(n == 3 || e->streams[n] == NULL);
	else
		CHECK(n == 1); /* the generic channel */
	CHECK(cable_binding_stream(b, n) == NULL);
	/* The watcher-count topic is published to by the plugin: a clean name, its template. */
	s = cable_binding_presence(b) ? cable_binding_presence(b)->watchers_topic : NULL;
	CHECK((s != NULL) == (e != NULL && e->watchers != NULL));
	if (s != NULL) {
		CHECK(cable_topic_name_valid(s, strlen(s)) && s[0] != '$');
		CHECK(follows(s, e->watchers));
	}
	CHECK((cable_binding_whisper(b) != NULL) ==
	      (e != NULL && strcmp(e->channel, "ActuatorChannel") == 0));
}

static void check_publish(const struct cable_binding *b, const struct expect *e,
                          const struct cable_publish *p, const char *user)
{
	size_t i, len = strlen(p->topic);
	json_t *j;

	CHECK(cable_topic_name_valid(p->topic, len));
	CHECK(!cable_topic_has_wildcard(p->topic, len));
	CHECK(p->topic[0] != '$');
	CHECK(p->qos >= 0 && p->qos <= 2);
	CHECK(p->payload != NULL && p->payload[p->payload_len] == '\0');
	if (e == NULL)
		return;
	for (i = 0; e->actions[i] != NULL; i++)
		if (follows(p->topic, e->actions[i]))
			break;
	CHECK(e->actions[i] != NULL);
	/* Identity payloads: JSON whose first member is the real user. */
	if (strcmp(e->channel, "ActuatorChannel") == 0 ||
	    strncmp(p->topic, "hello/", strlen("hello/")) == 0) {
		j = json_loadb(p->payload, p->payload_len, JSON_ALLOW_NUL, NULL);
		CHECK(j != NULL);
		CHECK(json_is_string(json_object_get(j, "user")));
		CHECK(strcmp(json_string_value(json_object_get(j, "user")), user) == 0);
		CHECK(json_object_get(j, "action") == NULL);
		json_decref(j);
	}
	CHECK(!p->retain || strncmp(p->topic, "names/", strlen("names/")) == 0);
	CHECK(cable_binding_channel(b) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cable_chanmap *map;
	const char *in = (const char *)data, *ident = in, *pdata = NULL, *user = "fuzzer";
	char *userbuf = NULL;
	size_t ilen = size, dlen = 0;
	const char *nul, *nul2;
	const struct expect *e;
	struct cable_principal who = {0};
	struct cable_binding *b = NULL;
	struct cable_publish p = {0};
	struct cable_perform_info info = {0};
	struct cable_error err = {0};
	json_error_t jerr;
	json_t *rid;
	int rc;

	if (map == NULL) {
		map = cable_chanmap_new(MAP, strlen(MAP), &err);
		if (map == NULL) {
			fprintf(stderr, "fuzz map: %s\n", err.text);
			abort();
		}
	}

	nul = memchr(in, '\0', size);
	if (nul != NULL) {
		ilen = (size_t)(nul - in);
		pdata = nul + 1;
		dlen = size - ilen - 1;
		nul2 = memchr(pdata, '\0', dlen);
		if (nul2 != NULL) {
			userbuf = strndup(nul2 + 1, size - (size_t)(nul2 + 1 - in));
			if (userbuf == NULL)
				return 0;
			user = userbuf;
			dlen = (size_t)(nul2 - pdata);
		}
	}
	/* The principal's user is a C string; strndup stopped at any further NUL. */
	who.user = (char *)user;

	if (cable_chanmap_bind(map, ident, ilen, &who, "sid-fuzz", &b, &err) != CABLE_OK) {
		CHECK(b == NULL);
		CHECK(err.code != CABLE_OK);
		goto done;
	}
	e = expect_for(cable_binding_channel(b));
	check_binding(b, e);
	if (pdata != NULL) {
		rc = cable_binding_perform(b, pdata, dlen, &p, &info, &err);
		if (rc == CABLE_OK) {
			check_publish(b, e, &p, user);
			CHECK(info.refusal == CABLE_REFUSED_NONE);
			/* ActuatorChannel's actions are identity payloads: an object. */
			if (strcmp(cable_binding_channel(b), "ActuatorChannel") == 0) {
				/* The browser's data may hold "\u0000", which jansson refuses
				 * without JSON_ALLOW_NUL. */
				rid = json_loadb(p.payload, p.payload_len, JSON_ALLOW_NUL, &jerr);
				CHECK(rid != NULL && json_object_get(rid, "$request") == NULL);
				json_decref(rid);
			}
		} else {
			CHECK(p.topic == NULL && p.payload == NULL);
			CHECK(info.refusal != CABLE_REFUSED_NONE);
			CHECK(*cable_refusal_name(info.refusal) != '\0');
		}
		CHECK(info.answer == CABLE_ANSWER_NONE || info.answer == CABLE_ANSWER_REFUSALS ||
		      info.answer == CABLE_ANSWER_ALL);
		CHECK(info.action == NULL || strlen(info.action) <= info.action_len);
		if (info.request_id) {
			rid = json_loadb(info.request_id, info.request_id_len,
			                 JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
			CHECK(rid != NULL && (json_is_integer(rid) || json_is_string(rid)));
			json_decref(rid);
		}
		cable_publish_release(&p);
		cable_perform_info_release(&info);
	}
done:
	cable_binding_free(b);
	free(userbuf);
	return 0;
}
