/*
 * The gateway's side of the two queues between the threads (bridge.h): log lines and
 * browsers' publishes to the broker thread (with the nudge that makes up for a lost
 * wake-up), and the inbox from it (messages to fan out, answers, new rules). bridge.c
 * alone writes struct gw_bridge. Gateway thread, except bridge_log_lws and lws' log
 * lines emitted inside start() (broker thread; they only queue).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "gw.h"
void gw_log(struct gw *gw, int level, const char *fmt, ...)
{
	struct cable_msg *m;
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	m = cable_msg_new(CABLE_MSG_LOG, line, (size_t)n, NULL, 0);
	if (m == NULL)
		return;
	m->level = level;
	/* A full queue drops the line: logs never push out a browser's publish. */
	if (cable_queue_push(&gw->link->to_broker, m, false) != CABLE_OK)
		cable_msg_free(m);
}

/*
 * libwebsockets' own log lines (errors and warnings only). They are emitted on the
 * gateway thread, or on the broker thread inside start(); either way they only queue.
 */
static struct gw *lws_log_target;

static void lws_log_emit(int level, const char *line);

void bridge_log_lws(struct gw *gw)
{
	lws_log_target = gw;
	if (gw)
		lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
}

static void lws_log_emit(int level, const char *line)
{
	size_t len = strlen(line);

	if (lws_log_target == NULL)
		return;
	/* Our own refusals (path, Origin) are logged by us, with the reason. */
	if (strstr(line, "User code denied connection"))
		return;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	gw_log(lws_log_target, level == LLL_ERR ? MOSQ_LOG_ERR : MOSQ_LOG_WARNING,
	       "libwebsockets: %s", CABLE_LOG_MEM(line, len));
}

#define NUDGE_US (2 * LWS_US_PER_MS)

/*
 * The wake signal can be lost: if it arrives while the broker thread is finishing a
 * TICK, after it took the queue but before its next epoll_wait, the handler runs, the
 * wait then sleeps its full 100 ms, and the publish waits with it (the benchmark's
 * perform p99 showed that tail). So while anything we queued is still waiting, signal
 * again every 2 ms.
 */
static void broker_nudge(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, bridge.nudge_sul);
	struct cable_queue *q = &gw->link->to_broker;
	size_t waiting;

	cable_queue_stats(q, &waiting, NULL);
	/*
	 * The broker's wake-up after it made room reaches shard 0 only: every shard retries
	 * its own paused browsers here (one that is refused again pauses again).
	 */
	if (gw->sess.paused)
		sessions_resume_paused(gw);
	if (waiting == 0 && gw->sess.paused == NULL) {
		gw->bridge.nudging = false;
		return;
	}
	if (q->wake)
		q->wake(q->wake_arg);
	gw_schedule(gw, &gw->bridge.nudge_sul, broker_nudge, NUDGE_US);
}

/*
 * Gateway thread: queue a browser's publish for the broker thread. A refusal also
 * starts the nudge, which retries the paused browser (broker_nudge).
 */
int gw_push_to_broker(struct gw *gw, struct cable_msg *m)
{
	int rc = cable_queue_push(&gw->link->to_broker, m, false);

	if (!gw->bridge.nudging) {
		gw->bridge.nudging = true;
		gw_schedule(gw, &gw->bridge.nudge_sul, broker_nudge, NUDGE_US);
	}
	return rc;
}

/*
 * Messages handled per wake-up. A larger backlog is left for the next round of the
 * service loop (we wake ourselves), so sockets get written between rounds: a healthy
 * browser drains a device's burst as it goes instead of owing all of it at once.
 */
#define INBOX_BATCH 16

static void inbox_continue(lws_sorted_usec_list_t *sul)
{
	drain_inbox(lws_container_of(sul, struct gw, bridge.inbox_sul), true);
}

static void backlog_append(struct gw_bridge *b, struct cable_msg *m)
{
	if (m == NULL)
		return;
	if (b->backlog_tail)
		b->backlog_tail->next = m;
	else
		b->backlog = m;
	while (m->next)
		m = m->next;
	b->backlog_tail = m;
}

/* One message from the broker (shard 0) or from another shard; frees it. */
static void handle(struct gw *gw, struct cable_msg *m)
{
	struct gw *to;

	switch (m->kind) {
	case CABLE_MSG_PUBLISH:
		shards_dispatch(gw, m); /* takes it */
		return;
	case CABLE_MSG_REFUSED:
	case CABLE_MSG_REPLY:
	case CABLE_MSG_ACK:
		to = shard_for_answer(gw, m);
		if (to != gw) { /* the performing browser is on another shard */
			m->next = NULL;
			/* forced: it passed to_gateway's bound already (see take_queued) */
			cable_queue_push(&to->inbox, m, true);
			return;
		}
		answer_from_broker(gw, m);
		break;
	case CABLE_MSG_RULES:
		shards_replace_rules(gw, m->ptr);
		break;
	case CABLE_MSG_CALL:
		shard_run_call(gw, m);
		break;
	case CABLE_MSG_LOG:
		break;
	}
	cable_msg_free(m);
}

/*
 * Take what waits for this shard, only once the last take is handled: so a queue's
 * bound is the bound on what a shard holds, and a shard that falls behind fills its
 * queue. Shard 0 also takes the broker's queue, but only while every other shard's
 * inbox has room (shards_have_room): a slow shard then makes the broker's queue fill,
 * and device messages are dropped there, for every browser alike and counted, as with
 * one shard; what shard 0 forwards (forced) overshoots an inbox by one take at most.
 */
static void take_queued(struct gw *gw)
{
	if (gw->shard == 0 && shards_have_room(gw))
		backlog_append(&gw->bridge, cable_queue_take_all(&gw->link->to_gateway, NULL));
	backlog_append(&gw->bridge, cable_queue_take_all(&gw->inbox, NULL));
	shards_room_made(gw);
}

/*
 * Is something queued that no wake-up will announce? A push wakes a shard only when it
 * finds the queue empty, and what arrived while the backlog was being handled found it
 * not empty. (Shard 0 waiting for room in another shard's inbox is woken by that shard.)
 */
static bool queued_unannounced(struct gw *gw)
{
	size_t n = 0;

	cable_queue_stats(&gw->inbox, &n, NULL);
	if (n == 0 && gw->shard == 0 && !atomic_load(&gw->hub->sequencer_waiting))
		cable_queue_stats(&gw->link->to_gateway, &n, NULL);
	return n > 0;
}

/*
 * from_timer: called by the continuation timer, which runs once per service round.
 * A wake-up that finds a backlog leaves it to the timer, so batches never run twice in
 * a round without the writes between them.
 */
void drain_inbox(struct gw *gw, bool from_timer)
{
	struct cable_msg *m, *next;
	int n = 0;

	outbound_hold(gw); /* the frames queued below are written at the end, in one go */
	if (gw->bridge.backlog_pending && !from_timer)
		goto resume_paused;
	if (gw->bridge.backlog == NULL)
		take_queued(gw);
	for (m = gw->bridge.backlog; m && n < INBOX_BATCH; m = next, n++) {
		next = m->next;
		handle(gw, m);
	}
	gw->bridge.backlog = m;
	if (m == NULL)
		gw->bridge.backlog_tail = NULL;
	/* come back after this round's writes (timers run before the poll) */
	gw->bridge.backlog_pending = m != NULL || queued_unannounced(gw);
	if (gw->bridge.backlog_pending)
		gw_schedule(gw, &gw->bridge.inbox_sul, inbox_continue, 1);
resume_paused:
	/* The broker has drained to_broker since we paused: retry the paused browsers. */
	sessions_resume_paused(gw);
	listen_update(gw); /* another shard may have closed sockets under a shared cap */
	if (atomic_load(&gw->hub->stop_requested) && !gw->stopping)
		gw_begin_stop(gw);
	outbound_flush(gw);
}

void bridge_release(struct gw_bridge *b)
{
	cable_msg_free_chain(b->backlog);
	b->backlog = b->backlog_tail = NULL;
}
