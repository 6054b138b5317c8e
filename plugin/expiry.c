/*
 * Token expiry (expiry.h): the sessions whose token has an exp, in a min-heap by
 * who.exp (the core's cable_heap), and one lws timer for the heap's root. When it fires,
 * every session whose token has expired is told token_expired and closed. expiry.c
 * alone writes struct gw_expiry and s->expiry_slot. Gateway thread.
 */
#include <time.h>

#include <mosquitto.h>

#include "gw.h"

static bool earlier(const void *a, const void *b)
{
	return ((const struct session *)a)->who.exp < ((const struct session *)b)->who.exp;
}

/* The heap tells each session where it sits: 1 + index, 0 once it left. */
static void moved(void *item, size_t index)
{
	((struct session *)item)->expiry_slot = index == CABLE_HEAP_NONE ? 0 : (uint32_t)index + 1;
}

void expiry_init(struct gw_expiry *e)
{
	cable_heap_init(&e->heap, earlier, moved);
}

static void expiry_fire(lws_sorted_usec_list_t *sul);

/* Point the one timer at the earliest expiry (or cancel it when none is left). */
static void expiry_arm(struct gw *gw)
{
	struct session *first = cable_heap_peek(&gw->expiry.heap);
	long long left;

	if (gw->finished)
		return; /* the context is going away with its timers */
	if (first == NULL) {
		gw_schedule(gw, &gw->expiry.sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
		return;
	}
	left = first->who.exp - (long long)time(NULL);
	if (left < 0)
		left = 0;
	if (left > 86400LL * 365)
		left = 86400LL * 365;
	gw_schedule(gw, &gw->expiry.sul, expiry_fire, (lws_usec_t)left * LWS_US_PER_SEC + 1);
}

void expiry_remove(struct session *s)
{
	struct gw *gw = s->gw;
	bool was_first = s->expiry_slot == 1;

	if (s->expiry_slot == 0)
		return;
	cable_heap_remove(&gw->expiry.heap, s->expiry_slot - 1);
	if (was_first)
		expiry_arm(gw);
}

int expiry_add(struct session *s)
{
	struct gw *gw = s->gw;

	if (cable_heap_push(&gw->expiry.heap, s) != CABLE_OK)
		return CABLE_ENOMEM;
	if (s->expiry_slot == 1)
		expiry_arm(gw);
	return CABLE_OK;
}

/* The earliest token expired: close every connection whose token has. */
static void expiry_fire(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, expiry.sul);
	long long now = (long long)time(NULL);
	struct session *s;

	/* Many tokens can share one exp (minted together): the timer is re-armed once. */
	while ((s = cable_heap_peek(&gw->expiry.heap)) != NULL && s->who.exp <= now) {
		cable_heap_pop(&gw->expiry.heap);
		if (s->active && !s->closing) {
			gw_log(gw, MOSQ_LOG_NOTICE,
			       "connection %s (%s) closed: token_expired (its exp plus "
			       "plugin_opt_jwt_leeway has passed)",
			       s->sid, s->peer);
			session_close(s, CABLE_DISCONNECT_TOKEN_EXPIRED, false, CLOSE_NORMAL);
		}
	}
	expiry_arm(gw);
}

void expiry_release(struct gw_expiry *e)
{
	cable_heap_free(&e->heap);
}
