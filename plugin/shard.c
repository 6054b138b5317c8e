/*
 * Gateway shards (shard.h): the hub they share, the calls one shard queues for another,
 * and shard 0's sequencing of device messages, answers and rule reloads. Each function
 * says which thread runs it.
 */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "counter.h"
#include "gw.h"

static const char token_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

_Static_assert(sizeof(token_alphabet) - 1 >= CABLE_MAX_THREADS, "a token character per shard");

struct call {
	shard_fn fn;
	void *arg;
};

/* ---- Calls between shards ---------------------------------------------------------- */

/* Any thread: the inbox's wake hook (a push onto an empty inbox). */
static void wake_shard(void *arg)
{
	struct gw *gw = arg;

	lws_cancel_service(gw->loop.ctx);
}

int shard_call(struct gw *to, shard_fn fn, void *arg, bool force)
{
	struct call c = {fn, arg};
	struct cable_msg *m;

	/* Past the exit barrier the contexts are going away: nothing more is delivered. */
	if (atomic_load(&to->hub->exiting))
		return CABLE_EFULL;
	m = cable_msg_new(CABLE_MSG_CALL, NULL, 0, &c, sizeof(c));
	if (m == NULL)
		return CABLE_ENOMEM;
	if (cable_queue_push(&to->inbox, m, force) != CABLE_OK) {
		cable_msg_free(m);
		return CABLE_EFULL;
	}
	return CABLE_OK;
}

void shard_run_call(struct gw *gw, const struct cable_msg *m)
{
	struct call c;

	memcpy(&c, m->payload, sizeof(c));
	c.fn(gw, c.arg);
}

void shards_wake_others(struct gw *gw)
{
	if (atomic_load(&gw->hub->exiting))
		return;
	for (unsigned i = 0; i < gw->hub->n; i++)
		if (gw->hub->shards[i] != gw)
			lws_cancel_service(gw->hub->shards[i]->loop.ctx);
}

int shard_inbox_init(struct gw *gw, const struct cable_queue *like)
{
	return cable_queue_init(&gw->inbox, like->max_count, like->max_bytes, wake_shard, gw);
}

/* ---- Device messages ----------------------------------------------------------------- */

static void shared_msg_put(struct shared_msg *sm)
{
	if (atomic_fetch_sub(&sm->refs, 1) == 1) {
		cable_msg_free(sm->m);
		free(sm);
	}
}

/* Gateway thread of each shard: fan out one sequenced message, then its answer. */
static void fan_out_here(struct gw *gw, const struct cable_msg *m)
{
	fanout_dispatch(&gw->index, m);
	/* acknowledged after its fan-out, by the shard of the performing browser */
	if (m->answer && shard_for_answer(gw, m) == gw)
		answer_from_broker(gw, m);
}

static void dispatch_here(struct gw *gw, void *arg)
{
	struct shared_msg *sm = arg;

	fan_out_here(gw, sm->m);
	shared_msg_put(sm);
}

uint64_t shard_next_seq(struct gw *gw)
{
	return ++gw->hub->seq;
}

/* Shard 0. */
void shards_dispatch(struct gw *gw, struct cable_msg *m)
{
	struct gw_hub *hub = gw->hub;
	struct shared_msg *sm;

	if (m->seq == 0)
		m->seq = shard_next_seq(gw);
	ext_record(gw, m); /* history once, in this order; m->offset for every shard */
	if (hub->n == 1) { /* nothing to share: no allocation */
		fan_out_here(gw, m);
		cable_msg_free(m);
		return;
	}
	sm = malloc(sizeof(*sm));
	if (sm == NULL) {
		cable_msg_free(m); /* out of memory: browsers miss this one message */
		return;
	}
	atomic_init(&sm->refs, hub->n);
	sm->m = m;
	/* Forced: shards_have_room bounds the inboxes (bridge.c, take_queued). */
	for (unsigned i = 1; i < hub->n; i++)
		if (shard_call(hub->shards[i], dispatch_here, sm, true) != CABLE_OK)
			shared_msg_put(sm); /* out of memory, or stopping */
	dispatch_here(gw, sm);
}

bool shards_inboxes_have_room(struct gw *gw)
{
	struct gw_hub *hub = gw->hub;
	size_t count;

	for (unsigned i = 1; i < hub->n; i++) {
		cable_queue_stats(&hub->shards[i]->inbox, &count, NULL);
		if (count >= hub->shards[i]->inbox.max_count)
			return false;
	}
	return true;
}

/*
 * Shard 0: may it take more from the broker's queue? Not while another shard's inbox is
 * full. It says first that it waits, then looks, so a shard that makes room after the
 * look sees the flag (shards_room_made) and wakes it.
 */
bool shards_have_room(struct gw *gw)
{
	atomic_store(&gw->hub->sequencer_waiting, true);
	if (!shards_inboxes_have_room(gw))
		return false;
	atomic_store(&gw->hub->sequencer_waiting, false);
	return true;
}

/* Any shard, after taking its inbox: wake shard 0 if it waits for room. */
void shards_room_made(struct gw *gw)
{
	if (gw->shard != 0 && atomic_exchange(&gw->hub->sequencer_waiting, false))
		lws_cancel_service(gw->hub->shards[0]->loop.ctx);
}

/* ---- Answers and rules --------------------------------------------------------------- */

char shard_token_char(unsigned i)
{
	return token_alphabet[i % CABLE_MAX_THREADS];
}

struct gw *shard_for_answer(struct gw *gw, const struct cable_msg *m)
{
	const char *token = NULL, *p;
	const size_t plen = strlen(CABLE_REPLY_PREFIX);
	unsigned i;

	if (m->kind == CABLE_MSG_REPLY) {
		if (m->topic_len > plen && strncmp(m->topic, CABLE_REPLY_PREFIX, plen) == 0)
			token = m->topic + plen;
	} else if (m->answer) {
		token = m->answer->token;
	}
	if (token == NULL || *token == '\0' || (p = strchr(token_alphabet, *token)) == NULL)
		return gw->hub->shards[0]; /* unclaimed: counted there */
	i = (unsigned)(p - token_alphabet);
	return i < gw->hub->n ? gw->hub->shards[i] : gw->hub->shards[0];
}

void shared_rules_put(struct shared_rules *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		cable_rules_free(r->rules);
		free(r);
	}
}

static void rules_here(struct gw *gw, void *arg)
{
	gw_replace_rules(gw, arg);
}

/* Shard 0. */
void shards_replace_rules(struct gw *gw, struct cable_rules *rules)
{
	struct shared_rules *r = malloc(sizeof(*r));

	if (r == NULL) {
		gw_log(gw, MOSQ_LOG_ERR, "reload: out of memory; the previous rules stay");
		cable_rules_free(rules);
		return;
	}
	atomic_init(&r->refs, gw->hub->n);
	r->rules = rules;
	for (unsigned i = 1; i < gw->hub->n; i++)
		shard_call(gw->hub->shards[i], rules_here, r, true);
	rules_here(gw, r);
}

/* ---- The hub ------------------------------------------------------------------------- */

struct gw_hub *hub_new(unsigned n, struct cable_link *link)
{
	struct gw_hub *hub = calloc(1, sizeof(*hub));

	if (hub == NULL)
		return NULL;
	hub->shards = calloc(n, sizeof(*hub->shards));
	if (hub->shards == NULL || pthread_mutex_init(&hub->lock, NULL) != 0) {
		free(hub->shards);
		free(hub);
		return NULL;
	}
	if (pthread_barrier_init(&hub->exit_barrier, NULL, n + 1) != 0) {
		pthread_mutex_destroy(&hub->lock);
		free(hub->shards);
		free(hub);
		return NULL;
	}
	hub->n = n;
	hub->link = link;
	atomic_init(&hub->stop_requested, false);
	atomic_init(&hub->exiting, false);
	atomic_init(&hub->sessions, 0);
	atomic_init(&hub->sequencer_waiting, false);
	atomic_init(&hub->tick_verdict, HEALTH_UNDECIDED);
	return hub;
}

void hub_free(struct gw_hub *hub)
{
	if (hub == NULL)
		return;
	counter_clear(&hub->peers);
	counter_clear(&hub->per_ip);
	counter_clear(&hub->per_user);
	ext_hub_free(hub->ext);
	pthread_barrier_destroy(&hub->exit_barrier);
	pthread_mutex_destroy(&hub->lock);
	free(hub->shards);
	free(hub);
}
