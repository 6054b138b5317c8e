/*
 * The gateway's side of the two queues to and from the broker thread (cable_link):
 * log lines and publishes out, the inbox in. bridge.c alone writes struct gw_bridge.
 * Gateway thread, except where a function says otherwise.
 */
#ifndef CABLE_BRIDGE_H
#define CABLE_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cable_queue.h"

struct gw;

struct gw_bridge {
	struct cable_msg *backlog, *backlog_tail; /* taken from to_gateway, not yet handled */
	bool backlog_pending;                     /* inbox_sul will continue the backlog */
	lws_sorted_usec_list_t inbox_sul;         /* continues a large inbox after the writes */
	lws_sorted_usec_list_t nudge_sul; /* re-wakes the broker while to_broker is not empty */
	bool nudging;
};

/* Queue a log line for the broker thread (a full queue drops it). Gateway thread. */
void gw_log(struct gw *gw, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Queue a browser's publish for the broker thread; CABLE_EFULL when the queue is full. */
int gw_push_to_broker(struct gw *gw, struct cable_msg *m);

/* LWS_CALLBACK_EVENT_WAIT_CANCELLED: handle what the broker queued. */
void drain_inbox(struct gw *gw, bool from_timer);

/* libwebsockets' own errors and warnings go to gw's log (NULL: nowhere). Broker thread. */
void bridge_log_lws(struct gw *gw);

void bridge_release(struct gw_bridge *b);

#endif
