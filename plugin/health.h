/*
 * The gateway's periodic duties: ActionCable pings, the broker TICK watchdog (what
 * /health and performs answer when publishes cannot leave) and giving freed memory
 * back. health.c alone writes struct gw_health. Gateway thread.
 */
#ifndef CABLE_HEALTH_H
#define CABLE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

struct gw;

struct gw_health {
	lws_sorted_usec_list_t ping_sul;
	unsigned pings;        /* ping rounds so far, for the TICK watchdog */
	bool warned_tick;      /* the no-TICK watchdog has looked */
	const char *unhealthy; /* why /health answers 503 and performs are refused, or NULL */
	/* shard 0 only (trim_memory decides for the process): */
	size_t peak_sessions;                  /* over every shard, since the last malloc_trim */
	size_t unused_base, unused_after_trim; /* resident, not malloc'ed bytes (trim_memory) */
};

/* hub->tick_verdict: the TICK watchdog's, taken by the first shard to look. */
enum { HEALTH_UNDECIDED, HEALTH_TICKING, HEALTH_NO_TICK };

/* Start the ping round (first thing on the gateway thread). */
void health_start(struct gw *gw);

/* Why /health answers 503 (the same on every shard), or NULL. Any gateway thread. */
const char *health_problem(struct gw *gw);

#endif
