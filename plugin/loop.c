/*
 * The gateway's event loop (loop.h): libwebsockets on a libev epoll loop of ours or on
 * lws' own poll loop, the kick that keeps lws' timers on time under libev, and the
 * thread's main loop. It knows nothing about sessions; struct gw_loop is written here
 * only. loop_open runs on the broker thread (in start()), the rest on the gateway
 * thread.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "cable.h"
#include "loop.h"

/*
 * Timers under libev: lws 4.1.6's libev glue re-arms its one loop timer with
 * ev_timer_set() + ev_timer_start(), which libev ignores while that timer is already
 * running. A timer scheduled earlier than the one armed (a 300 ms linger while the
 * 3 s ping is armed) then fires only when the armed one does, unless socket activity
 * comes first. So every timer the gateway sets also arms an ev timer of ours for the
 * same moment (the kick), and the kick wakes lws (lws_cancel_service), whose wake-up
 * path runs every lws timer that is due. A slow kick every KICK_MAX_US covers lws' own
 * timeouts (handshake, close).
 */
#define KICK_MAX_US (100 * LWS_US_PER_MS)

#define KICK_MAX ((ev_tstamp)KICK_MAX_US / LWS_US_PER_SEC)

/* The kick: after firing it repeats every KICK_MAX until loop_kick brings it forward. */
static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_loop *l = w->data;

	(void)loop;
	(void)revents;
	lws_cancel_service(l->ctx);
}

void loop_kick(struct gw_loop *l, lws_usec_t us)
{
	ev_tstamp after = (ev_tstamp)us / LWS_US_PER_SEC;

	if (l->ev == NULL)
		return; /* lws' own loop has no such problem */
	if (ev_is_active(&l->kick) && ev_timer_remaining(l->ev, &l->kick) <= after)
		return;
	ev_timer_stop(l->ev, &l->kick);
	ev_timer_set(&l->kick, after, KICK_MAX);
	ev_timer_start(l->ev, &l->kick);
}

void loop_schedule(struct gw_loop *l, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
	lws_sul_schedule(l->ctx, 0, sul, cb, us);
	if (us != (lws_usec_t)LWS_SET_TIMER_USEC_CANCEL)
		loop_kick(l, us);
}

/*
 * lws' own loop calls poll() over every connection on every turn, so its cost grows
 * with the connections whether they are busy or not: at 19,000 connections it was 70 %
 * of the gateway thread during a connection storm. With plugin_opt_event_loop epoll (the
 * default) lws runs on a libev loop of ours, on epoll, whose cost follows the sockets
 * that are ready.
 *
 * lws loads its libev glue, libwebsockets-evlib_ev.so, with a plain dlopen(), which would
 * bind the glue's lws calls to the first lws in the process: the copy inside Debian's
 * mosquitto (see plugin/broker.c). Loading it here first with RTLD_DEEPBIND binds them to
 * libwebsockets.so.17, the one this gateway uses; lws' own dlopen then finds it loaded.
 */
#define EVLIB_FILE LWS_INSTALL_LIBDIR "/libwebsockets-evlib_ev.so"

static int event_loop_open(struct gw_loop *l, char *err, size_t errlen)
{
	int mode = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;

	if (getenv("CABLE_NO_DEEPBIND")) /* sanitizer builds: see plugin/broker.c */
		mode &= ~RTLD_DEEPBIND;
	l->evlib = dlopen(EVLIB_FILE, mode);
	if (l->evlib == NULL) {
		snprintf(err, errlen,
		         "plugin_opt_event_loop epoll needs %s (Debian: libwebsockets-evlib-ev): "
		         "%s; or set plugin_opt_event_loop poll",
		         EVLIB_FILE, dlerror());
		return CABLE_EINVAL;
	}
	/* No signal handling of libev's: the broker owns the process's signals. */
	l->ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (l->ev == NULL) {
		snprintf(err, errlen, "plugin_opt_event_loop epoll: cannot create an epoll loop");
		return CABLE_EINVAL;
	}
	l->foreign[0] = l->ev;
	ev_timer_init(&l->kick, kick_cb, KICK_MAX, KICK_MAX);
	l->kick.data = l;
	ev_timer_start(l->ev, &l->kick);
	return CABLE_OK;
}

int loop_open(struct gw_loop *l, struct lws_context_creation_info *info, bool poll_loop, char *err,
              size_t errlen)
{
	if (!poll_loop) {
		if (event_loop_open(l, err, errlen) != CABLE_OK)
			return CABLE_EINVAL;
		info->options |= LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = l->foreign;
	}
	l->ctx = lws_create_context(info);
	if (l->ctx == NULL) {
		snprintf(err, errlen, "libwebsockets failed to start");
		return CABLE_EINVAL;
	}
	return CABLE_OK;
}

void loop_run(struct gw_loop *l, const bool *finished)
{
	while (!*finished) {
		if (l->ev)
			ev_run(l->ev, EVRUN_ONCE);
		else
			lws_service(l->ctx, 0);
	}
}

void loop_end(struct gw_loop *l)
{
	lws_context_destroy(l->ctx);
	l->ctx = NULL;
}

void loop_close(struct gw_loop *l)
{
	if (l->ctx)
		lws_context_destroy(l->ctx);
	l->ctx = NULL;
	if (l->ev) {
		ev_timer_stop(l->ev, &l->kick);
		ev_loop_destroy(l->ev);
	}
	l->ev = NULL;
	if (l->evlib)
		dlclose(l->evlib);
	l->evlib = NULL;
}
