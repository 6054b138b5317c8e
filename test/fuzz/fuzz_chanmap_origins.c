/*
 * libFuzzer target for the configuration files a deployment writes: the channel map
 * (cable_chanmap_new) and the Origin allow-list (cable_origins_new). The ACL file has
 * its own target (fuzz_acl.c).
 *
 * The first byte picks the parser; the rest is the file. Loading must never crash or
 * leak. A map that loads must then bind and perform on a few fixed identifiers
 * without crashing, and every stream it produces must be a valid filter that does not
 * start with '$'; every action topic a valid name without wildcards or '$'. A list
 * that loads must answer consistently for a few origins.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cable_chanmap.h"
#include "cable_origin.h"
#include "cable_topic.h"
#include "fuzz.h"

static void exercise_map(const struct cable_chanmap *map)
{
	static const char *const ids[] = {
	        "{\"channel\":\"ActuatorChannel\",\"id\":42}",
	        "{\"channel\":\"ActuatorChannel\",\"id\":\"7\"}",
	        "{\"channel\":\"SensorChannel\",\"site\":\"north\"}",
	        "{\"channel\":\"C\",\"x\":\"a\",\"id\":1,\"topic\":\"a/b\"}",
	        "{\"channel\":\"MqttChannel\",\"topic\":\"sensors/+/t\"}",
	};
	static const char *const datas[] = {
	        "{\"action\":\"speak\",\"message\":\"on\"}",
	        "{\"message\":\"x\"}",
	        "{\"action\":\"publish\",\"topic\":\"a/b\",\"message\":\"m\"}",
	        "{\"action\":\"broadcast\",\"retain\":true}",
	};
	struct cable_principal who = {0};
	struct cable_binding *b;
	struct cable_publish pub;
	struct cable_error err;
	size_t i, j, n;

	who.user = "alice";
	who.claims = json_pack("{s:s, s:i}", "tenant", "acme", "org", 42);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		b = NULL;
		if (cable_chanmap_bind(map, ids[i], strlen(ids[i]), &who, "sid", &b, &err) !=
		    CABLE_OK) {
			CHECK(b == NULL);
			continue;
		}
		if (cable_binding_presence(b) && cable_binding_presence(b)->watchers_topic) {
			const char *w = cable_binding_presence(b)->watchers_topic;

			CHECK(cable_topic_name_valid(w, strlen(w)) && w[0] != '$');
		}
		n = cable_binding_stream_count(b);
		for (j = 0; j < n; j++) {
			const char *s = cable_binding_stream(b, j);

			CHECK(cable_topic_filter_valid(s, strlen(s)));
			CHECK(s[0] != '$');
		}
		for (j = 0; j < sizeof(datas) / sizeof(datas[0]); j++) {
			memset(&pub, 0, sizeof(pub));
			if (cable_binding_perform(b, datas[j], strlen(datas[j]), &pub, NULL,
			                          &err) != CABLE_OK)
				continue;
			CHECK(cable_topic_name_valid(pub.topic, strlen(pub.topic)));
			CHECK(pub.topic[0] != '$');
			CHECK(pub.qos >= 0 && pub.qos <= 2);
			cable_publish_release(&pub);
		}
		cable_binding_free(b);
	}
	json_decref(who.claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cable_chanmap *map;
	struct cable_origins *o;
	struct cable_error err;
	static const char *const origins[] = {"https://app.example.com", "https://a.example.com",
	                                      "http://localhost:3000", "null", ""};
	size_t i;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		map = cable_chanmap_new((const char *)data + 1, size - 1, &err);
		if (map) {
			exercise_map(map);
			cable_chanmap_free(map);
		} else {
			CHECK(err.code == CABLE_EINVAL || err.code == CABLE_ENOMEM);
		}
	} else {
		o = cable_origins_new((const char *)data + 1, size - 1, &err);
		if (o) {
			for (i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
				bool a = cable_origins_allow(o, origins[i], strlen(origins[i]));

				CHECK(a == cable_origins_allow(o, origins[i], strlen(origins[i])));
			}
			/* No Origin header passes only a list with "*". */
			if (cable_origins_allow(o, NULL, 0))
				CHECK(cable_origins_allow(o, "https://unlisted.invalid", 24));
			cable_origins_free(o);
		}
	}
	return 0;
}
