/*
 * The gateway's event loop: libwebsockets on a libev epoll loop (or lws' own poll loop),
 * its timers, and the thread's main loop. It knows nothing about sessions. Written by
 * loop.c only. Gateway thread, except loop_open (broker thread, in start()).
 */
#ifndef CABLE_LOOP_H
#define CABLE_LOOP_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <libwebsockets.h>

struct gw_loop {
	struct lws_context *ctx;
	struct ev_loop *ev; /* epoll under lws (loop_open); NULL with poll */
	void *foreign[1];   /* lws' foreign_loops */
	void *evlib;        /* our handle on lws' libev glue */
	ev_timer kick;      /* see loop_kick */
};

/*
 * Broker thread: create the lws context from info, on an epoll loop of ours unless
 * poll_loop. CABLE_OK, or CABLE_EINVAL with a reason in err.
 */
int loop_open(struct gw_loop *l, struct lws_context_creation_info *info, bool poll_loop, char *err,
              size_t errlen);

/* Run until *finished. Gateway thread. */
void loop_run(struct gw_loop *l, const bool *finished);

/* Destroy the context on the thread that ran it (after loop_run). Gateway thread. */
void loop_end(struct gw_loop *l);

/* Free what loop_open made (after loop_run, or when start() fails). */
void loop_close(struct gw_loop *l);

/* lws_sul_schedule on the loop, and the kick that makes libev honour it. */
void loop_schedule(struct gw_loop *l, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us);

/* Wake lws' timers in `us` at the latest (for lws_set_timer_usecs and the like). */
void loop_kick(struct gw_loop *l, lws_usec_t us);

#endif
