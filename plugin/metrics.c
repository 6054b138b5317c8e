/*
 * GET /metrics: Prometheus text exposition of the gateway's counters, which each part
 * of struct gw keeps for itself (this file reads them all and writes none but its
 * own), and their periodic publish as retained MQTT messages. No label carries a user
 * name, a token or a topic: only counts.
 *
 * The figures are summed over every shard, and no shard reads another's struct gw: the
 * serving shard (the one the HTTP request landed on, or shard 0 for the publishes)
 * makes a struct metrics_req, adds its own figures and asks every other shard, with a
 * shard_call, to add theirs; the last one to answer calls the serving shard back,
 * which writes the answer (LWS_CALLBACK_HTTP_WRITEABLE) or publishes. Collecting (one
 * function per part, collect_*) is apart from rendering (the table `rows`, and
 * ext_metrics_format for the extended protocol's).
 *
 * Thread: each function's shard's gateway thread; a call may also run at shutdown on
 * the broker thread (shard.h), where it only reads its own shard and lets go.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

#define TEXT_MAX (64 * 1024)

/* ---- Collecting ---------------------------------------------------------------------- */

struct metrics_req {
	atomic_uint refs;
	pthread_mutex_t lock;   /* guards the two below */
	unsigned pending;       /* shards that have not added their figures yet */
	struct metrics_fig fig; /* the sum so far */
	struct gw *home;        /* the serving shard */
	/* home's thread only: */
	struct lws *wsi;          /* the HTTP request; NULL once it closed, or for a publish */
	bool publish;             /* plugin_opt_metrics_topic's, not an HTTP request */
	bool listed, ready;       /* in home->metrics.waiting; every shard has answered */
	struct metrics_req *next; /* in home->metrics.waiting */
};

static void collect_sessions(struct gw *gw, struct metrics_fig *f)
{
	f->connections = gw->sess.n;
	f->connections_total = gw->sess.connections;
	f->commands_in = gw->sess.commands_in;
	f->bytes_in = gw->sess.bytes_in;
	f->publishes = gw->sess.publishes;
	f->frames_out = gw->out.frames_out;
	f->bytes_out = gw->out.bytes_out;
	f->slow_disconnects = gw->out.too_slow;
	f->shard_connections[gw->shard] = gw->sess.n;
	for (unsigned i = 0; i < AUTH_NREASONS; i++)
		f->auth_failures[i] = gw->limits.failures[i];
}

static void collect_subs(struct gw *gw, struct metrics_fig *f)
{
	f->subscriptions = gw->subs.subscriptions;
	f->subscribes = gw->subs.subscribes;
	f->rejects = gw->subs.rejects;
	/* Every shard matches every device message: counted once, by the sequencer. */
	if (gw->shard == 0)
		f->broadcasts = gw->index.broadcasts;
	f->deliveries = gw->index.deliveries;
	f->shard_deliveries[gw->shard] = gw->index.deliveries;
	f->binary_skipped += gw->index.binary_skipped;
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++)
		f->latency_bucket[i] = gw->index.latency_bucket[i];
	f->latency_count = gw->index.latency_count;
	f->latency_sum = gw->index.latency_sum;
}

static void collect_answers(struct gw *gw, struct metrics_fig *f)
{
	f->acks = gw->answers.acks;
	f->refusals = gw->answers.refusals;
	f->replies = gw->answers.replies;
	f->replies_unclaimed = gw->answers.replies_unclaimed;
}

static void collect_rooms(struct gw *gw, struct metrics_fig *f)
{
	f->presence_joins = gw->rooms.presence_joins;
	f->presence_leaves = gw->rooms.presence_leaves;
	f->presence_errors = gw->rooms.presence_refused;
	f->presence_events_dropped = gw->rooms.events_dropped;
	f->watchers_published = gw->rooms.watchers_published;
	f->whispers = gw->rooms.whispers;
	f->whispers_rate = gw->rooms.whispers_rate_limited;
	f->whispers_size = gw->rooms.whispers_too_large;
	f->whispers_disabled = gw->rooms.whispers_disabled;
}

/*
 * Last values (plugin_opt_state_listener): the internal client runs on shard 0, each
 * shard replays; the cache's gauges are shared (collect_shared).
 */
static void collect_state(struct gw *gw, struct metrics_fig *f)
{
	if (!gw->cfg.state_listener)
		return;
	f->state_connects = gw->state.connects;
	f->state_dropped = gw->state.dropped;
	f->retained_replayed = gw->state.replayed;
	f->binary_skipped += gw->state.skipped;
}

/*
 * The extended protocol's counters: ext.c adds this shard's into a sum, so this one
 * runs on the request's sum itself (under its lock); the shared gauges are read in
 * collect_shared.
 */
static void collect_ext(struct gw *gw, struct metrics_fig *sum)
{
	sum->binary_skipped += ext_skipped(gw);
	ext_counters_add(gw, &sum->ext);
}

/* This shard's own figures. */
static void collect(struct gw *gw, struct metrics_fig *f)
{
	memset(f, 0, sizeof(*f));
	collect_sessions(gw, f);
	collect_subs(gw, f);
	collect_answers(gw, f);
	collect_rooms(gw, f);
	collect_state(gw, f);
}

/* The shared figures, read once by the serving shard. */
static void collect_shared(struct gw *gw, struct metrics_fig *f)
{
	size_t count;
	uint64_t dropped;

	f->threads = gw->hub->n;
	f->presence_members = room_presence_members(gw); /* the registry's, every shard's */
	pthread_mutex_lock(&gw->hub->lock);
	f->sockets = gw->hub->nsockets;
	f->handshakes = gw->hub->nhandshakes;
	pthread_mutex_unlock(&gw->hub->lock);
	cable_queue_stats(&gw->link->to_gateway, &count, &dropped);
	f->queue_to_gateway = count;
	f->queue_to_gateway_dropped = dropped;
	cable_queue_stats(&gw->link->to_broker, &count, &dropped);
	f->queue_to_broker = count;
	f->queue_to_broker_full = dropped;
	ext_gauges(gw->hub, &f->ext_gauges); /* history, restorable sessions */
	if (gw->cfg.state_listener) {
		struct state_stats st;

		state_stats(gw, &st); /* the last-value cache */
		f->state_connected = st.live;
		f->retained_entries = st.entries;
		f->retained_bytes = st.bytes;
		f->retained_refused = st.refused;
	}
}

/* ---- Rendering ----------------------------------------------------------------------- */

enum { SUMMED = 0, SHARED = 1, STATE = 2 /* only with plugin_opt_state_listener */ };

/* One sample; rows of one metric follow each other (HELP and TYPE come with the first). */
struct row {
	const char *name, *label, *type, *help;
	size_t off;
	unsigned flags;
};

#define ROW(name, label, type, member, flags, help)                                                \
	{                                                                                          \
		name, label, type, help, offsetof(struct metrics_fig, member), flags               \
	}

static const struct row rows[] = {
        ROW("connections", NULL, "gauge", connections, SUMMED, "Open WebSocket connections."),
        ROW("connections_total", NULL, "counter", connections_total, SUMMED,
            "WebSocket connections accepted."),
        ROW("gateway_threads", NULL, "gauge", threads, SHARED,
            "Gateway threads (plugin_opt_threads), each one shard."),
        ROW("sockets", NULL, "gauge", sockets, SHARED,
            "Browser sockets open, in any state (plugin_opt_max_descriptors)."),
        ROW("handshakes", NULL, "gauge", handshakes, SHARED,
            "Of those, not yet WebSockets (plugin_opt_max_handshakes)."),
        ROW("subscriptions", NULL, "gauge", subscriptions, SUMMED,
            "Current channel subscriptions."),
        ROW("subscribes_total", NULL, "counter", subscribes, SUMMED, "Subscriptions confirmed."),
        ROW("rejects_total", NULL, "counter", rejects, SUMMED, "Subscriptions rejected."),
        ROW("commands_in_total", NULL, "counter", commands_in, SUMMED, "Client commands received."),
        ROW("bytes_in_total", NULL, "counter", bytes_in, SUMMED,
            "Bytes of client commands received."),
        ROW("frames_out_total", NULL, "counter", frames_out, SUMMED, "Frames written to browsers."),
        ROW("bytes_out_total", NULL, "counter", bytes_out, SUMMED,
            "Bytes of frames written to browsers."),
        ROW("broadcasts_total", NULL, "counter", broadcasts, SUMMED,
            "MQTT messages matched against subscriptions (by every gateway thread)."),
        ROW("deliveries_total", NULL, "counter", deliveries, SUMMED,
            "Messages queued for browsers."),
        ROW("binary_skipped_total", NULL, "counter", binary_skipped, SUMMED,
            "Payloads a plain message channel could not carry (binary, or an object with the "
            "reserved \"$cable\" key)."),
        ROW("publishes_total", NULL, "counter", publishes, SUMMED,
            "Browser performs handed to the broker."),
        ROW("acks_total", NULL, "counter", acks, SUMMED,
            "Performs acknowledged to the browser (answer all)."),
        ROW("refusals_total", NULL, "counter", refusals, SUMMED,
            "Refused performs answered to the browser."),
        ROW("replies_total", NULL, "counter", replies, SUMMED,
            "Device replies delivered to the asking browser."),
        ROW("replies_unclaimed_total", NULL, "counter", replies_unclaimed, SUMMED,
            "Device replies on a response topic no subscription holds (any more)."),
        ROW("slow_disconnects_total", NULL, "counter", slow_disconnects, SUMMED,
            "Connections closed as too slow."),
        ROW("presence_members", NULL, "gauge", presence_members, SHARED,
            "Users present, over every presence room (lingering ones included)."),
        ROW("presence_joins_total", NULL, "counter", presence_joins, SUMMED,
            "Presence joins announced."),
        ROW("presence_leaves_total", NULL, "counter", presence_leaves, SUMMED,
            "Presence leaves announced (explicit, unsubscribe, or after the TTL)."),
        ROW("presence_errors_total", NULL, "counter", presence_errors, SUMMED,
            "Presence commands answered with an error (foreign id, info too large, presence "
            "off)."),
        ROW("presence_events_dropped_total", NULL, "counter", presence_events_dropped, SUMMED,
            "Presence events or whispers for another gateway thread dropped (its queue was "
            "full)."),
        ROW("watchers_published_total", NULL, "counter", watchers_published, SUMMED,
            "Watcher counts published to MQTT (channel presence.watchers_topic)."),
        ROW("whispers_total", NULL, "counter", whispers, SUMMED, "Whispers relayed."),
        ROW("whispers_dropped_total", "reason=\"rate\"", "counter", whispers_rate, SUMMED,
            "Whispers dropped, by reason."),
        ROW("whispers_dropped_total", "reason=\"size\"", "counter", whispers_size, SUMMED, NULL),
        ROW("whispers_dropped_total", "reason=\"disabled\"", "counter", whispers_disabled, SUMMED,
            NULL),
        ROW("queue_to_gateway", NULL, "gauge", queue_to_gateway, SHARED,
            "Messages waiting for the gateway thread."),
        ROW("queue_to_gateway_dropped_total", NULL, "counter", queue_to_gateway_dropped, SHARED,
            "Messages for browsers dropped because the gateway queue was full."),
        ROW("queue_to_broker", NULL, "gauge", queue_to_broker, SHARED,
            "Messages waiting for the broker thread."),
        ROW("queue_to_broker_full_total", NULL, "counter", queue_to_broker_full, SHARED,
            "Times a browser was paused because the broker queue was full."),
        ROW("state_connected", NULL, "gauge", state_connected, SHARED | STATE,
            "1 while the internal client is connected and synchronised."),
        ROW("state_connects_total", NULL, "counter", state_connects, STATE,
            "Connections of the internal client to the broker."),
        ROW("state_dropped_total", NULL, "counter", state_dropped, STATE,
            "Messages for browsers dropped because the fan-out queue was full."),
        ROW("retained_entries", NULL, "gauge", retained_entries, SHARED | STATE,
            "Topics in the last-value cache."),
        ROW("retained_bytes", NULL, "gauge", retained_bytes, SHARED | STATE,
            "Bytes the last-value cache counts against plugin_opt_retained_max_bytes."),
        ROW("retained_refused_total", NULL, "counter", retained_refused, SHARED | STATE,
            "Retained values not cached (or dropped) at the cache's limits."),
        ROW("retained_replayed_total", NULL, "counter", retained_replayed, STATE,
            "Retained values sent to browsers after a subscribe."),
};

static uint64_t *at(struct metrics_fig *f, size_t off)
{
	return (uint64_t *)((char *)f + off);
}

/* f += g, for every figure that each shard keeps for itself. */
static void fig_add(struct metrics_fig *f, struct metrics_fig *g)
{
	for (size_t i = 0; i < CABLE_ARRAY_LEN(rows); i++)
		if (!(rows[i].flags & SHARED))
			*at(f, rows[i].off) += *at(g, rows[i].off);
	for (unsigned i = 0; i < AUTH_NREASONS; i++)
		f->auth_failures[i] += g->auth_failures[i];
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++)
		f->latency_bucket[i] += g->latency_bucket[i];
	f->latency_count += g->latency_count;
	f->latency_sum += g->latency_sum;
	for (unsigned i = 0; i < CABLE_MAX_THREADS; i++) {
		f->shard_connections[i] += g->shard_connections[i];
		f->shard_deliveries[i] += g->shard_deliveries[i];
	}
}

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

static void head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP cable_%s %s\n# TYPE cable_%s %s\n", name, help, name, type);
}

/* The summed figures as Prometheus text; NUL-terminated, the length returned. */
static size_t render(struct gw *gw, struct metrics_fig *f, char *buf, size_t len)
{
	struct out o = {buf, len - 1, 0};
	unsigned i;

	for (i = 0; i < CABLE_ARRAY_LEN(rows); i++) {
		const struct row *r = &rows[i];

		if ((r->flags & STATE) && !gw->cfg.state_listener)
			continue;
		if (r->help)
			head(&o, r->name, r->type, r->help);
		put(&o, "cable_%s%s%s%s %llu\n", r->name, r->label ? "{" : "",
		    r->label ? r->label : "", r->label ? "}" : "",
		    (unsigned long long)*at(f, r->off));
	}
	head(&o, "auth_failures_total", "counter", "Connections refused at authentication.");
	for (i = 0; i < AUTH_NREASONS; i++)
		put(&o, "cable_auth_failures_total{reason=\"%s\"} %llu\n",
		    auth_failure_name((enum auth_failure)i),
		    (unsigned long long)f->auth_failures[i]);
	head(&o, "shard_connections", "gauge", "Open WebSocket connections, by gateway thread.");
	for (i = 0; i < gw->hub->n; i++)
		put(&o, "cable_shard_connections{shard=\"%u\"} %llu\n", i,
		    (unsigned long long)f->shard_connections[i]);
	head(&o, "shard_deliveries_total", "counter",
	     "Messages queued for browsers, by gateway thread.");
	for (i = 0; i < gw->hub->n; i++)
		put(&o, "cable_shard_deliveries_total{shard=\"%u\"} %llu\n", i,
		    (unsigned long long)f->shard_deliveries[i]);
	head(&o, "delivery_seconds", "histogram",
	     "From the broker receiving a message to its frames being queued for every "
	     "subscribed browser (one observation per message and gateway thread).");
	for (i = 0; i < LATENCY_BUCKETS; i++)
		put(&o, "cable_delivery_seconds_bucket{le=\"%g\"} %llu\n", index_latency_bounds[i],
		    (unsigned long long)f->latency_bucket[i]);
	put(&o, "cable_delivery_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)f->latency_count);
	put(&o, "cable_delivery_seconds_sum %.6f\ncable_delivery_seconds_count %llu\n",
	    f->latency_sum, (unsigned long long)f->latency_count);
	if (o.used < o.len)
		o.used +=
		        ext_metrics_format(&f->ext, &f->ext_gauges, o.buf + o.used, o.len - o.used);
	buf[o.used] = '\0';
	return o.used;
}

/* ---- Gathering ----------------------------------------------------------------------- */

static void req_put(struct metrics_req *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1) {
		pthread_mutex_destroy(&r->lock);
		free(r);
	}
}

static void unlist(struct gw *gw, struct metrics_req *r)
{
	struct metrics_req **p;

	for (p = &gw->metrics.waiting; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			r->listed = false;
			req_put(r);
			return;
		}
}

static void metrics_publish(struct gw *gw, struct metrics_fig *f);

/* The serving shard: every shard has added its figures. */
static void finished(struct gw *gw, struct metrics_req *r)
{
	if (atomic_load(&gw->hub->exiting))
		return; /* shutdown (broker thread): no lws, no publish */
	if (r->publish) {
		metrics_publish(gw, &r->fig);
		return;
	}
	r->ready = true;
	if (r->listed) /* the client is still there */
		lws_callback_on_writable(r->wsi);
}

static void finished_call(struct gw *gw, void *arg)
{
	finished(gw, arg);
	req_put(arg);
}

/* Shard gw has added its figures (or cannot); the last one calls the serving shard. */
static void answered(struct gw *gw, struct metrics_req *r)
{
	bool last;

	pthread_mutex_lock(&r->lock);
	last = --r->pending == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	if (gw == r->home) {
		finished(gw, r);
		return;
	}
	atomic_fetch_add(&r->refs, 1);
	if (shard_call(r->home, finished_call, r, true) != CABLE_OK)
		req_put(r); /* stopping */
}

static void add_figures(struct gw *gw, struct metrics_req *r)
{
	struct metrics_fig *mine = malloc(sizeof(*mine));

	if (mine) { /* out of memory: this shard's figures are missing, the answer comes */
		collect(gw, mine);
		pthread_mutex_lock(&r->lock);
		fig_add(&r->fig, mine);
		collect_ext(gw, &r->fig);
		pthread_mutex_unlock(&r->lock);
		free(mine);
	}
	answered(gw, r);
}

/* Another shard's thread (or the broker thread at shutdown). */
static void gather_here(struct gw *gw, void *arg)
{
	add_figures(gw, arg);
	req_put(arg);
}

/*
 * Start gathering for wsi (NULL: a publish). The calls are forced: a busy shard's full
 * inbox must not make the figures wrong, and each request holds an HTTP connection
 * (bounded by plugin_opt_max_descriptors) or is shard 0's one publish per interval.
 */
static int gather(struct gw *gw, struct lws *wsi)
{
	struct metrics_req *r = calloc(1, sizeof(*r));
	unsigned n = gw->hub->n;

	if (r == NULL || pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return -1;
	}
	atomic_init(&r->refs, n + (wsi ? 1 : 0)); /* every shard's turn, and the list */
	r->pending = n;
	r->home = gw;
	r->wsi = wsi;
	r->publish = wsi == NULL;
	collect_shared(gw, &r->fig);
	if (wsi) {
		r->listed = true;
		r->next = gw->metrics.waiting;
		gw->metrics.waiting = r;
	}
	for (unsigned i = 0; i < n; i++) {
		struct gw *to = gw->hub->shards[i];

		if (to != gw && shard_call(to, gather_here, r, true) != CABLE_OK) {
			answered(gw, r); /* stopping */
			req_put(r);
		}
	}
	add_figures(gw, r);
	req_put(r);
	return 0;
}

int metrics_request(struct gw *gw, struct lws *wsi)
{
	return gather(gw, wsi);
}

static struct metrics_req *find(struct gw *gw, struct lws *wsi)
{
	struct metrics_req *r;

	for (r = gw->metrics.waiting; r; r = r->next)
		if (r->wsi == wsi)
			return r;
	return NULL;
}

char *metrics_response(struct gw *gw, struct lws *wsi)
{
	struct metrics_req *r = find(gw, wsi);
	char *text;

	if (r == NULL || !r->ready)
		return NULL;
	text = malloc(TEXT_MAX);
	if (text)
		render(gw, &r->fig, text, TEXT_MAX);
	unlist(gw, r);
	return text;
}

void metrics_wsi_gone(struct gw *gw, struct lws *wsi)
{
	struct metrics_req *r;

	if (gw->metrics.waiting && (r = find(gw, wsi)) != NULL) {
		r->wsi = NULL;
		unlist(gw, r);
	}
}

void metrics_release(struct gw *gw)
{
	while (gw->metrics.waiting)
		unlist(gw, gw->metrics.waiting);
}

/* ---- Publishing ---------------------------------------------------------------------- */

/*
 * Publish every metric as a retained MQTT message under plugin_opt_metrics_topic:
 * cable_connections -> <prefix>/connections, cable_auth_failures_total{reason="x"} ->
 * <prefix>/auth_failures_total/x. Histogram buckets are left out (sum and count stay).
 * The messages go to the broker thread like a browser's publish.
 */
static void metrics_publish(struct gw *gw, struct metrics_fig *f)
{
	const char *prefix = gw->cfg.metrics_topic;
	char *text, *line, *save = NULL, topic[256];
	struct cable_msg *m;

	text = malloc(TEXT_MAX);
	if (text == NULL)
		return;
	render(gw, f, text, TEXT_MAX);
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

	gather(gw, NULL);
	gw_schedule(gw, &gw->metrics.sul, metrics_tick,
	            (lws_usec_t)gw->cfg.metrics_interval * LWS_US_PER_SEC);
}

void metrics_start(struct gw *gw)
{
	if (gw->cfg.metrics_topic)
		gw_schedule(gw, &gw->metrics.sul, metrics_tick,
		            (lws_usec_t)gw->cfg.metrics_interval * LWS_US_PER_SEC);
}
