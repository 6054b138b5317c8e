/*
 * GET /metrics: Prometheus text exposition of the gateway's counters, which each part
 * of struct gw keeps for itself (this file reads them all and writes none but its
 * timer), and their periodic publish as retained MQTT messages. Gateway thread only.
 * No label carries a user name, a token or a topic: only counts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

struct out {
	char *buf;
	size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->used >= o->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n < o->len - o->used ? (size_t)n : o->len - o->used;
}

static void metric(struct out *o, const char *name, const char *type, const char *help,
                   unsigned long long value)
{
	put(o, "# HELP cable_%s %s\n# TYPE cable_%s %s\ncable_%s %llu\n", name, help, name, type,
	    name, value);
}

size_t metrics_render(struct gw *gw, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	uint64_t to_gw_dropped, to_broker_dropped;
	size_t to_gw, to_broker, i;

	size_t nsockets, nhandshakes;

	pthread_mutex_lock(&gw->hub->lock);
	nsockets = gw->hub->nsockets;
	nhandshakes = gw->hub->nhandshakes;
	pthread_mutex_unlock(&gw->hub->lock);
	cable_queue_stats(&gw->link->to_gateway, &to_gw, &to_gw_dropped);
	cable_queue_stats(&gw->link->to_broker, &to_broker, &to_broker_dropped);

	metric(&o, "connections", "gauge", "Open WebSocket connections.", gw->sess.n);
	metric(&o, "connections_total", "counter", "WebSocket connections accepted.",
	       gw->sess.connections);
	metric(&o, "sockets", "gauge",
	       "Browser sockets open, in any state (plugin_opt_max_descriptors).", nsockets);
	metric(&o, "handshakes", "gauge",
	       "Of those, not yet WebSockets (plugin_opt_max_handshakes).", nhandshakes);
	metric(&o, "subscriptions", "gauge", "Current channel subscriptions.",
	       gw->subs.subscriptions);
	metric(&o, "subscribes_total", "counter", "Subscriptions confirmed.", gw->subs.subscribes);
	metric(&o, "rejects_total", "counter", "Subscriptions rejected.", gw->subs.rejects);
	put(&o, "# HELP cable_auth_failures_total Connections refused at authentication.\n"
	        "# TYPE cable_auth_failures_total counter\n");
	for (i = 0; i < AUTH_NREASONS; i++)
		put(&o, "cable_auth_failures_total{reason=\"%s\"} %llu\n",
		    auth_failure_name((enum auth_failure)i),
		    (unsigned long long)gw->limits.failures[i]);
	metric(&o, "commands_in_total", "counter", "Client commands received.",
	       gw->sess.commands_in);
	metric(&o, "bytes_in_total", "counter", "Bytes of client commands received.",
	       gw->sess.bytes_in);
	metric(&o, "frames_out_total", "counter", "Frames written to browsers.",
	       gw->out.frames_out);
	metric(&o, "bytes_out_total", "counter", "Bytes of frames written to browsers.",
	       gw->out.bytes_out);
	metric(&o, "broadcasts_total", "counter", "MQTT messages matched against subscriptions.",
	       gw->index.broadcasts);
	metric(&o, "deliveries_total", "counter", "Messages queued for browsers.",
	       gw->index.deliveries);
	metric(&o, "binary_skipped_total", "counter",
	       "Payloads a plain message channel could not carry (binary, or an object with the "
	       "reserved \"$cable\" key).",
	       gw->index.binary_skipped + gw->state.skipped + ext_skipped(gw));
	metric(&o, "publishes_total", "counter", "Browser performs handed to the broker.",
	       gw->sess.publishes);
	metric(&o, "acks_total", "counter", "Performs acknowledged to the browser (answer all).",
	       gw->answers.acks);
	metric(&o, "refusals_total", "counter", "Refused performs answered to the browser.",
	       gw->answers.refusals);
	metric(&o, "replies_total", "counter", "Device replies delivered to the asking browser.",
	       gw->answers.replies);
	metric(&o, "replies_unclaimed_total", "counter",
	       "Device replies on a response topic no subscription holds (any more).",
	       gw->answers.replies_unclaimed);
	metric(&o, "slow_disconnects_total", "counter", "Connections closed as too slow.",
	       gw->out.too_slow);
	metric(&o, "presence_members", "gauge",
	       "Users present, over every presence room (lingering ones included).",
	       gw->rooms.presence_members);
	metric(&o, "presence_joins_total", "counter", "Presence joins announced.",
	       gw->rooms.presence_joins);
	metric(&o, "presence_leaves_total", "counter",
	       "Presence leaves announced (explicit, unsubscribe, or after the TTL).",
	       gw->rooms.presence_leaves);
	metric(&o, "presence_errors_total", "counter",
	       "Presence commands answered with an error (foreign id, info too large, presence "
	       "off).",
	       gw->rooms.presence_refused);
	metric(&o, "watchers_published_total", "counter",
	       "Watcher counts published to MQTT (channel presence.watchers_topic).",
	       gw->rooms.watchers_published);
	metric(&o, "whispers_total", "counter", "Whispers relayed.", gw->rooms.whispers);
	put(&o,
	    "# HELP cable_whispers_dropped_total Whispers dropped, by reason.\n"
	    "# TYPE cable_whispers_dropped_total counter\n"
	    "cable_whispers_dropped_total{reason=\"rate\"} %llu\n"
	    "cable_whispers_dropped_total{reason=\"size\"} %llu\n"
	    "cable_whispers_dropped_total{reason=\"disabled\"} %llu\n",
	    (unsigned long long)gw->rooms.whispers_rate_limited,
	    (unsigned long long)gw->rooms.whispers_too_large,
	    (unsigned long long)gw->rooms.whispers_disabled);
	metric(&o, "queue_to_gateway", "gauge", "Messages waiting for the gateway thread.", to_gw);
	metric(&o, "queue_to_gateway_dropped_total", "counter",
	       "Messages for browsers dropped because the gateway queue was full.", to_gw_dropped);
	metric(&o, "queue_to_broker", "gauge", "Messages waiting for the broker thread.",
	       to_broker);
	metric(&o, "queue_to_broker_full_total", "counter",
	       "Times a browser was paused because the broker queue was full.", to_broker_dropped);
	if (gw->cfg.state_listener) {
		struct cable_retained_stats rs = {0};

		if (gw->state.cache)
			cable_retained_stats(gw->state.cache, &rs);
		metric(&o, "state_connected", "gauge",
		       "1 while the internal client is connected and synchronised.",
		       gw->state.phase == STATE_LIVE);
		metric(&o, "state_connects_total", "counter",
		       "Connections of the internal client to the broker.", gw->state.connects);
		metric(&o, "state_dropped_total", "counter",
		       "Messages for browsers dropped because the fan-out queue was full.",
		       gw->state.dropped);
		metric(&o, "retained_entries", "gauge", "Topics in the last-value cache.",
		       rs.entries);
		metric(&o, "retained_bytes", "gauge",
		       "Bytes the last-value cache counts against plugin_opt_retained_max_bytes.",
		       rs.bytes);
		metric(&o, "retained_refused_total", "counter",
		       "Retained values not cached (or dropped) at the cache's limits.",
		       gw->state.refused_before + rs.refused);
		metric(&o, "retained_replayed_total", "counter",
		       "Retained values sent to browsers after a subscribe.", gw->state.replayed);
	}

	put(&o, "# HELP cable_delivery_seconds From the broker receiving a message to its frames "
	        "being queued for every subscribed browser.\n"
	        "# TYPE cable_delivery_seconds histogram\n");
	for (i = 0; i < LATENCY_BUCKETS; i++)
		put(&o, "cable_delivery_seconds_bucket{le=\"%g\"} %llu\n", index_latency_bounds[i],
		    (unsigned long long)gw->index.latency_bucket[i]);
	put(&o, "cable_delivery_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)gw->index.latency_count);
	put(&o, "cable_delivery_seconds_sum %.6f\ncable_delivery_seconds_count %llu\n",
	    gw->index.latency_sum, (unsigned long long)gw->index.latency_count);
	if (gw->ext && o.used < o.len)
		o.used += ext_metrics(gw, o.buf + o.used, o.len - o.used);
	return o.used;
}

/*
 * Publish every metric as a retained MQTT message under plugin_opt_metrics_topic:
 * cable_connections -> <prefix>/connections, cable_auth_failures_total{reason="x"} ->
 * <prefix>/auth_failures_total/x. Histogram buckets are left out (sum and count stay).
 * The messages go to the broker thread like a browser's publish.
 */
static void metrics_publish(struct gw *gw)
{
	const char *prefix = gw->cfg.metrics_topic;
	char *text, *line, *save = NULL, topic[256];
	struct cable_msg *m;

	text = malloc(64 * 1024);
	if (text == NULL)
		return;
	text[metrics_render(gw, text, 64 * 1024 - 1)] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *name, *label, *value;
		int n;

		if (line[0] == '#' || strncmp(line, "cable_", 6) != 0 || strstr(line, "_bucket{"))
			continue;
		name = line + 6;
		value = strrchr(name, ' ');
		if (value == NULL)
			continue;
		*value++ = '\0';
		label = strchr(name, '{');
		if (label) {
			char *q1 = strchr(label, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;

			*label = '\0';
			if (q2 == NULL)
				continue;
			*q2 = '\0';
			n = snprintf(topic, sizeof(topic), "%s/%s/%s", prefix, name, q1 + 1);
		} else {
			n = snprintf(topic, sizeof(topic), "%s/%s", prefix, name);
		}
		if (n < 0 || (size_t)n >= sizeof(topic))
			continue;
		m = cable_msg_new(CABLE_MSG_PUBLISH, topic, (size_t)n, value, strlen(value));
		if (m == NULL)
			break;
		m->retain = true;
		if (cable_queue_push(&gw->link->to_broker, m, false) != CABLE_OK) {
			cable_msg_free(m);
			break; /* the broker is busy; the next round will do */
		}
	}
	free(text);
}

static void metrics_tick(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, metrics.sul);

	metrics_publish(gw);
	gw_schedule(gw, &gw->metrics.sul, metrics_tick,
	            (lws_usec_t)gw->cfg.metrics_interval * LWS_US_PER_SEC);
}

void metrics_start(struct gw *gw)
{
	if (gw->cfg.metrics_topic)
		gw_schedule(gw, &gw->metrics.sul, metrics_tick,
		            (lws_usec_t)gw->cfg.metrics_interval * LWS_US_PER_SEC);
}
