/*
 * GET /metrics and the periodic metric publishes: metrics.c reads every part's
 * counters and alone writes struct gw_metrics. Gateway thread.
 */
#ifndef CABLE_METRICS_H
#define CABLE_METRICS_H

#include <stddef.h>

#include <libwebsockets.h>

struct gw;

struct gw_metrics {
	lws_sorted_usec_list_t sul; /* plugin_opt_metrics_topic publishes */
};

size_t metrics_render(struct gw *gw, char *buf, size_t len);

/* Publish the metrics every plugin_opt_metrics_interval (when metrics_topic is set). */
void metrics_start(struct gw *gw);

#endif
