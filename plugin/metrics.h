/*
 * GET /metrics and the periodic metric publishes: metrics.c reads every part's
 * counters and alone writes struct gw_metrics. The figures are summed over every
 * shard: the shard that serves a request (or publishes) asks each other shard for its
 * own figures with a shard_call, and answers once the last one has added them (a
 * struct metrics_req, shared by reference count, with its own mutex). Gateway thread,
 * except where a function says otherwise.
 */
#ifndef CABLE_METRICS_H
#define CABLE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "auth.h"
#include "cable_gateway.h"
#include "ext.h"
#include "fanout.h"

struct gw;
struct metrics_req;

/*
 * What /metrics shows. Each shard's own figures are summed over the shards; the shared
 * ones are read once, by the shard that serves the request (the listener's counts, the
 * queues). A part that moves a figure into a shared structure moves it to the shared
 * members, reads it in metrics.c's collect_shared() and marks its row SHARED.
 */
struct metrics_fig {
	/* each shard's own (summed) */
	uint64_t connections, connections_total, subscriptions, subscribes, rejects;
	uint64_t commands_in, bytes_in, frames_out, bytes_out, broadcasts, deliveries;
	uint64_t binary_skipped, publishes, acks, refusals, replies, replies_unclaimed;
	uint64_t slow_disconnects;
	uint64_t presence_joins, presence_leaves, presence_errors, presence_events_dropped;
	uint64_t watchers_published, whispers, whispers_rate, whispers_size, whispers_disabled;
	uint64_t state_connects, state_dropped, retained_replayed;
	uint64_t auth_failures[AUTH_NREASONS];
	uint64_t latency_bucket[LATENCY_BUCKETS], latency_count;
	double latency_sum;
	uint64_t shard_connections[CABLE_MAX_THREADS], shard_deliveries[CABLE_MAX_THREADS];
	struct ext_counters ext; /* ext.c sums them (ext_counters_add) */
	/* shared (read once) */
	uint64_t threads, sockets, handshakes, presence_members;
	uint64_t state_connected, retained_entries, retained_bytes, retained_refused;
	uint64_t queue_to_gateway, queue_to_gateway_dropped, queue_to_broker, queue_to_broker_full;
	struct ext_gauges ext_gauges;
};

struct gw_metrics {
	lws_sorted_usec_list_t sul;  /* plugin_opt_metrics_topic publishes */
	struct metrics_req *waiting; /* HTTP requests of this shard being gathered or written */
};

/*
 * LWS_CALLBACK_HTTP for /metrics: start gathering every shard's figures. 0: the answer
 * comes with LWS_CALLBACK_HTTP_WRITEABLE (metrics_response); -1: close.
 */
int metrics_request(struct gw *gw, struct lws *wsi);

/* LWS_CALLBACK_HTTP_WRITEABLE: the text for wsi once gathered (malloc'ed), else NULL. */
char *metrics_response(struct gw *gw, struct lws *wsi);

/* wsi is gone (LWS_CALLBACK_WSI_DESTROY): forget its request. */
void metrics_wsi_gone(struct gw *gw, struct lws *wsi);

/* Publish the metrics every plugin_opt_metrics_interval (when metrics_topic is set). */
void metrics_start(struct gw *gw);

/* Broker thread, in stop(), after the leftover calls: drop what is still waiting. */
void metrics_release(struct gw *gw);

#endif
