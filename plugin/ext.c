/*
 * AnyCable's extended protocol (actioncable-v1-ext-json): reliable streams (offsets,
 * epoch, history on subscribe and on the history command), session restore, pongs.
 * docs/reliable-streams.md says what it guarantees; docs/protocol.md has the frames.
 * Gateway thread only. ext.c alone writes struct ext_gw and the sessions' struct
 * resume (ext.h).
 *
 * Ordering. History is appended and offsets assigned in fanout_dispatch, on this
 * thread, for every message whatever its source; a history replay runs on the same
 * thread between two dispatches. So a replay on subscribe is never raced by live
 * traffic: it ends with the latest offset, and live frames with later ones follow.
 * After a restore the subscriptions are live at once but the client asks for its
 * history only afterwards: until that history command, their live frames are held
 * (struct held), and then only those above the replayed offsets are sent.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <openssl/rand.h>

#include "cable_clock.h"
#include "cable_heap.h"
#include "cable_history.h"
#include "cable_jwt.h"
#include "cable_proto.h"
#include "cable_topic.h"
#include "counter.h"
#include "gw.h"

#define HOLD_MAX_FRAMES  4096 /* held frames per restored subscription, then dropped */
#define HOLD_MAX_SECONDS 10   /* a restored subscription whose history never comes */

struct held_frame {
	struct held_frame *next;
	struct cable_frame *f;
	uint64_t offset; /* 0: not recorded (always sent) */
	size_t tlen;
	char topic[];
};

struct held {
	struct held_frame *head, *tail;
	size_t n, bytes;
	long long since; /* monotonic seconds */
	bool dropped;    /* over the bound: later frames are left to the history replay */
};

/*
 * One per ext session id: a live ext connection (live != NULL) or a dropped one that can
 * be restored until `expires` (parked). Found by sid; the sid is a bearer secret and is
 * never logged (the connection's log id is session->sid, another value).
 */
struct resume {
	UT_hash_handle hh;
	char sid[CABLE_PROTO_SID_LEN + 1];
	struct session *live;
	bool consumed;     /* its sid was used: it will not be parked */
	long long last_rx; /* live: monotonic seconds of the last frame from the client */
	/* parked */
	char *user;
	struct ident **ids;
	size_t nids;
	struct route **keep; /* routes kept so their topics' history goes on */
	size_t nkeep;
	long long expires; /* monotonic seconds */
	size_t slot;
	bool counted; /* in ext_gw.parked_per_user */
};

struct ext_gw {
	struct cable_history *history; /* NULL with plugin_opt_history_limit 0 */
	char epoch[12];
	struct resume *by_sid;
	struct cable_heap parked; /* by expires */
	/*
	 * Parked sessions per user. A parked session keeps its identifiers and routes alive
	 * after its connection's subscription budget was given back, so without this one
	 * user could park up to plugin_opt_max_connections sessions by reconnecting.
	 */
	struct counter *parked_per_user;
	uint64_t restored, restore_failed, parked_total, parked_expired;
	uint64_t history_confirmed, history_rejected, replayed, no_pong;
	uint64_t skipped; /* replayed values a "message" channel could not carry */
};

static long long mono_seconds(void)
{
	return (long long)(cable_now_ns() / 1000000000u);
}

static bool parked_less(const void *a, const void *b)
{
	return ((const struct resume *)a)->expires < ((const struct resume *)b)->expires;
}

static void parked_moved(void *item, size_t index)
{
	((struct resume *)item)->slot = index;
}

int ext_start(struct gw *gw)
{
	struct cable_history_limits lim = {gw->cfg.history_limit, gw->cfg.history_max_bytes,
	                                   gw->cfg.history_ttl, gw->cfg.history_total_bytes};
	unsigned char raw[CABLE_PROTO_SID_BYTES];
	char text[CABLE_PROTO_SID_LEN + 1];
	struct ext_gw *x;

	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return CABLE_ENOMEM;
	if (lim.messages) {
		x->history = cable_history_new(&lim);
		if (x->history == NULL) {
			free(x);
			return CABLE_ENOMEM;
		}
	}
	/* A new epoch at every start: offsets of another run never compare equal. */
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		cable_history_free(x->history);
		free(x);
		return CABLE_ENOMEM;
	}
	cable_proto_sid_encode(raw, text);
	memcpy(x->epoch, text, sizeof(x->epoch) - 1);
	cable_heap_init(&x->parked, parked_less, parked_moved);
	gw->ext = x;
	return CABLE_OK;
}

static void resume_free(struct gw *gw, struct resume *r)
{
	size_t i;

	for (i = 0; i < r->nids; i++)
		ident_put(&gw->index, r->ids[i]);
	for (i = 0; i < r->nkeep; i++)
		route_unkeep(&gw->index, r->keep[i]);
	if (r->counted)
		counter_add(&gw->ext->parked_per_user, r->user, -1);
	free(r->ids);
	free(r->keep);
	free(r->user);
	free(r);
}

void ext_release(struct gw *gw)
{
	struct ext_gw *x = gw->ext;
	struct resume *r, *tmp;

	if (x == NULL)
		return;
	HASH_ITER(hh, x->by_sid, r, tmp)
	{
		HASH_DELETE(hh, x->by_sid, r);
		if (r->live)
			r->live->ext = NULL;
		resume_free(gw, r);
	}
	cable_heap_free(&x->parked);
	counter_clear(&x->parked_per_user);
	cable_history_free(x->history);
	free(x);
	gw->ext = NULL;
}

/* ---- Connections -------------------------------------------------------------------- */

bool ext_attach(struct session *s)
{
	struct ext_gw *x = s->gw->ext;
	unsigned char raw[CABLE_PROTO_SID_BYTES];
	struct resume *r;
	bool added;

	r = calloc(1, sizeof(*r));
	if (r == NULL || RAND_bytes(raw, sizeof(raw)) != 1) {
		free(r);
		return false;
	}
	cable_proto_sid_encode(raw, r->sid);
	r->live = s;
	r->last_rx = mono_seconds();
	GW_HASH_ADD(x->by_sid, r->sid, CABLE_PROTO_SID_LEN, r, added);
	if (!added) {
		free(r);
		return false;
	}
	s->ext = r;
	return true;
}

void ext_received(struct session *s)
{
	s->ext->last_rx = mono_seconds();
}

/* The identifiers to restore from a sid, if it is usable by this session's user. */
static bool take_session(struct session *s, const char *sid, struct ident ***ids, size_t *nids,
                         struct resume **parked)
{
	struct ext_gw *x = s->gw->ext;
	struct resume *r;
	struct session *old;
	struct sub *sub, *tmp;
	size_t n = 0;

	*ids = NULL;
	*nids = 0;
	*parked = NULL;
	if (!cable_proto_sid_valid(sid, strlen(sid)))
		return false;
	HASH_FIND(hh, x->by_sid, sid, CABLE_PROTO_SID_LEN, r);
	if (r == NULL || r == s->ext)
		return false;
	/* Single use, whatever happens next. */
	HASH_DELETE(hh, x->by_sid, r);
	if (r->live == NULL) {
		cable_heap_remove(&x->parked, r->slot);
		if (strcmp(r->user, s->who.user) != 0) {
			resume_free(s->gw, r);
			return false;
		}
		*ids = r->ids;
		*nids = r->nids;
		r->ids = NULL;
		r->nids = 0;
		*parked = r; /* its routes stay kept until the new subscriptions hold them */
		return true;
	}
	/*
	 * The old connection is still open here (the drop has not reached us yet): take
	 * its subscriptions and end it without parking it.
	 */
	old = r->live;
	r->consumed = true;
	if (strcmp(old->who.user, s->who.user) != 0)
		return false;
	*ids = calloc(old->nsubs ? old->nsubs : 1, sizeof(**ids));
	if (*ids == NULL)
		return false;
	HASH_ITER(hh, old->subs, sub, tmp)
	{
		ident_ref(sub->entry.ident);
		(*ids)[n++] = sub->entry.ident;
	}
	*nids = n;
	lws_set_timeout(old->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	return true;
}

/* Restore from ?sid= when it names a session of this user; false: a fresh session. */
static bool restore(struct session *s, const char *sid)
{
	struct ext_gw *x = s->gw->ext;
	struct cable_error err = {0};
	struct resume *parked;
	struct ident **ids;
	const char **json = NULL;
	size_t *lens = NULL, nids, n = 0, i;
	struct cable_frame *f;
	struct sub *sub;

	if (!take_session(s, sid, &ids, &nids, &parked)) {
		x->restore_failed++;
		gw_log(s->gw, MOSQ_LOG_INFO,
		       "connection %s (user %s): session not restored (unknown, expired, used "
		       "or another user's); a fresh session",
		       s->sid, CABLE_LOG_STR(s->who.user));
		return false;
	}
	json = calloc(nids ? nids : 1, sizeof(*json));
	lens = calloc(nids ? nids : 1, sizeof(*lens));
	for (i = 0; i < nids; i++) {
		if (json == NULL || lens == NULL)
			break;
		sub = sub_create(s, ids[i]->raw, ids[i]->raw_len, &err);
		if (sub == NULL) {
			gw_log(s->gw, MOSQ_LOG_NOTICE,
			       "connection %s (user %s): a subscription was not restored: %s",
			       s->sid, CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(err.text));
			continue;
		}
		sub->held = calloc(1, sizeof(*sub->held));
		if (sub->held)
			sub->held->since = mono_seconds();
		json[n] = sub->entry.ident->json;
		lens[n++] = sub->entry.ident->json_len;
	}
	for (i = 0; i < nids; i++)
		ident_put(&s->gw->index, ids[i]);
	free(ids);
	if (parked)
		resume_free(s->gw, parked);
	f = cable_proto_welcome_restored(s->ext->sid, json, lens, n);
	free(json);
	free(lens);
	if (f == NULL) {
		session_close(s, CABLE_DISCONNECT_SERVER_ERROR, true, CLOSE_UNEXPECTED);
		return true;
	}
	session_send(s, f);
	cable_frame_unref(f);
	x->restored++;
	gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (user %s): session restored, %zu subscriptions",
	       s->sid, CABLE_LOG_STR(s->who.user), n);
	return true;
}

void ext_welcome(struct session *s)
{
	/* lws copies each query fragment into buf to compare it: room for a token too. */
	char buf[CABLE_JWT_MAX_LEN + 64];
	struct cable_frame *f;
	const char *sid;

	/* An empty sid (the client dropped it after a disconnect) is no sid. */
	sid = lws_get_urlarg_by_name(s->wsi, "sid=", buf, sizeof(buf));
	if (sid && *sid && restore(s, sid))
		return;
	f = cable_proto_welcome(s->ext->sid);
	session_send(s, f);
	cable_frame_unref(f);
}

/*
 * Gateway thread, from session_closed (the subscriptions are still there). A connection
 * that dropped is parked for plugin_opt_session_ttl seconds; one the server ended (a
 * disconnect frame: too_slow, no_pong, token_expired, server_restart...), one that never
 * authenticated and one whose sid was used are forgotten.
 */
void ext_detach(struct session *s)
{
	struct gw *gw = s->gw;
	struct ext_gw *x = gw->ext;
	struct resume *r = s->ext;
	struct sub *sub, *tmp;
	size_t i, nroutes = 0;
	bool added;

	s->ext = NULL;
	if (r->consumed) {
		resume_free(gw, r);
		return;
	}
	HASH_DELETE(hh, x->by_sid, r);
	r->live = NULL;
	if (!s->active || s->closing || gw->stopping || gw->cfg.session_ttl == 0 ||
	    (gw->cfg.max_connections && x->parked.n >= gw->cfg.max_connections))
		goto forget;
	HASH_ITER(hh, s->subs, sub, tmp)
	{
		nroutes += sub->entry.nlinks;
	}
	r->user = strdup(s->who.user);
	if (r->user == NULL)
		goto forget;
	/* At most plugin_opt_max_connections_per_user parked sessions per user. */
	if (gw->cfg.max_per_user && !gw->cfg.anonymous) {
		size_t n = counter_add(&x->parked_per_user, r->user, +1);

		if (n == SIZE_MAX)
			goto forget;
		r->counted = true;
		if (n > gw->cfg.max_per_user)
			goto forget;
	}
	r->ids = calloc(s->nsubs ? s->nsubs : 1, sizeof(*r->ids));
	r->keep = calloc(nroutes ? nroutes : 1, sizeof(*r->keep));
	if (r->ids == NULL || r->keep == NULL)
		goto forget;
	HASH_ITER(hh, s->subs, sub, tmp)
	{
		ident_ref(sub->entry.ident);
		r->ids[r->nids++] = sub->entry.ident;
		for (i = 0; i < sub->entry.nlinks; i++) {
			if (sub->entry.links[i].route == NULL)
				continue;
			route_hold(sub->entry.links[i].route);
			r->keep[r->nkeep++] = sub->entry.links[i].route;
		}
	}
	r->expires = mono_seconds() + gw->cfg.session_ttl;
	if (cable_heap_push(&x->parked, r) != CABLE_OK)
		goto forget;
	GW_HASH_ADD(x->by_sid, r->sid, CABLE_PROTO_SID_LEN, r, added);
	if (!added) {
		cable_heap_remove(&x->parked, r->slot);
		goto forget;
	}
	x->parked_total++;
	return;
forget:
	resume_free(gw, r);
}

/* ---- Holding the live frames of a restored subscription ---------------------------- */

static void held_clear(struct held *h)
{
	struct held_frame *hf;

	while ((hf = h->head) != NULL) {
		h->head = hf->next;
		cable_frame_unref(hf->f);
		free(hf);
	}
	h->tail = NULL;
	h->n = h->bytes = 0;
}

void ext_sub_gone(struct gw *gw, struct sub *sub)
{
	(void)gw;
	if (sub->held == NULL)
		return;
	held_clear(sub->held);
	free(sub->held);
	sub->held = NULL;
}

/* fanout.c: a live frame for a subscription that is held; true if it took it. */
bool ext_hold(struct sub *sub, struct cable_frame *f, const struct cable_msg *m, uint64_t offset)
{
	struct held *h = sub->held;
	struct held_frame *hf;

	if (h->dropped)
		return offset != 0; /* recorded: the replay has it */
	if (h->n >= HOLD_MAX_FRAMES || h->bytes + f->len > sub->session->gw->cfg.max_outbound ||
	    (hf = malloc(sizeof(*hf) + m->topic_len + 1)) == NULL) {
		/* The history replay brings these (or says it cannot, with reject_history). */
		held_clear(h);
		h->dropped = true;
		return offset != 0;
	}
	hf->next = NULL;
	hf->f = cable_frame_ref(f);
	hf->offset = offset;
	hf->tlen = m->topic_len;
	memcpy(hf->topic, m->topic, m->topic_len + 1);
	if (h->tail)
		h->tail->next = hf;
	else
		h->head = hf;
	h->tail = hf;
	h->n++;
	h->bytes += f->len;
	return true;
}

/* ---- History ------------------------------------------------------------------------ */

/* One topic of a replay: what was asked, and the last offset the replay sends. */
struct replay_topic {
	UT_hash_handle hh;
	uint64_t last;
	bool resumed;  /* from a known position */
	bool retained; /* the replay has a retained message of it */
	size_t len;
	char topic[];
};

/* A history request, planned (all of it checked) before anything is sent. */
struct ext_plan {
	struct gw *gw;
	struct sub *sub;
	struct cable_history_request req;
	struct replay_topic *topics;
	const struct cable_history_entry **entries;
	size_t n, cap;
	const char *filter; /* the wildcard stream being expanded */
	size_t filter_len;
	bool failed;
};

static const struct cable_stream_pos *position(const struct cable_history_request *req,
                                               const char *topic, size_t len)
{
	size_t i;

	for (i = 0; i < req->npos; i++) {
		if (req->pos[i].stream_len == len && memcmp(req->pos[i].stream, topic, len) == 0)
			return &req->pos[i];
	}
	return NULL;
}

/* Plan the replay of one topic (once per topic even if two streams cover it). */
static void plan_topic(struct ext_plan *rp, const char *topic, size_t len)
{
	const struct cable_history *h = rp->gw->ext->history;
	const struct cable_history_entry *e = NULL, **grown;
	const struct cable_stream_pos *pos;
	struct replay_topic *t;
	bool added;
	int rc = CABLE_OK;

	if (rp->failed)
		return;
	HASH_FIND(hh, rp->topics, topic, len, t);
	if (t)
		return;
	t = calloc(1, sizeof(*t) + len + 1);
	if (t == NULL) {
		rp->failed = true;
		return;
	}
	memcpy(t->topic, topic, len);
	t->len = len;
	GW_HASH_ADD(rp->topics, t->topic, t->len, t, added);
	if (!added) {
		free(t);
		rp->failed = true;
		return;
	}
	pos = position(&rp->req, topic, len);
	if (pos) {
		if (!pos->valid || h == NULL || strlen(rp->gw->ext->epoch) != pos->epoch_len ||
		    memcmp(rp->gw->ext->epoch, pos->epoch, pos->epoch_len) != 0)
			rc = CABLE_ENOTFOUND;
		else
			rc = cable_history_from_offset(h, topic, len, pos->offset, &e);
		t->last = pos->offset;
		t->resumed = true;
	} else if (rp->req.since > 0 && h) {
		rc = cable_history_from_time(h, topic, len, rp->req.since, &e);
	}
	if (rc != CABLE_OK) {
		rp->failed = true;
		return;
	}
	for (; e; e = e->next) {
		grown = cable_grow(rp->entries, rp->n, &rp->cap, sizeof(*grown), 16);
		if (grown == NULL) {
			rp->failed = true;
			return;
		}
		rp->entries = grown;
		rp->entries[rp->n++] = e;
		t->last = e->offset;
		t->retained |= e->retain;
	}
}

static void plan_wild_topic(const char *topic, size_t len, void *arg)
{
	struct ext_plan *rp = arg;

	if (cable_topic_matches(rp->filter, rp->filter_len, topic, len))
		plan_topic(rp, topic, len);
}

static bool sub_covers(const struct sub *sub, const char *topic, size_t len)
{
	size_t i;

	for (i = 0; i < sub->entry.nlinks; i++) {
		if (sub->entry.links[i].route &&
		    cable_topic_matches(sub->entry.links[i].route->filter,
		                        sub->entry.links[i].route->len, topic, len))
			return true;
	}
	return false;
}

static int by_seq(const void *a, const void *b)
{
	uint64_t x = (*(const struct cable_history_entry *const *)a)->seq;
	uint64_t y = (*(const struct cable_history_entry *const *)b)->seq;

	return x < y ? -1 : x > y;
}

/* Send one history entry as the live frame would have looked. */
static void replay_entry(struct ext_plan *rp, const struct cable_history_entry *e)
{
	struct gw *gw = rp->gw;
	struct sub *sub = rp->sub;
	struct cable_frame *f;
	struct cable_msg probe;
	const char *topic;
	char *value = NULL;
	size_t tlen, vlen = 0;
	int rc;

	topic = cable_history_topic(e, &tlen);
	memset(&probe, 0, sizeof(probe));
	probe.topic = (char *)topic;
	probe.topic_len = tlen;
	/* The user's ACL for every replayed message, as for live ones. */
	if (sub->entry.check_each && !sub_may_read(sub, &probe))
		return;
	if (sub->entry.deliver == CABLE_DELIVER_ENVELOPE)
		rc = cable_proto_envelope_value(topic, tlen, e->payload, e->len, e->retain, &value,
		                                &vlen);
	else
		rc = cable_proto_payload_value(e->payload, e->len, &value, &vlen);
	if (rc != CABLE_OK) {
		gw->ext->skipped++;
		return;
	}
	f = cable_proto_message_ext(sub->entry.ident->json, sub->entry.ident->json_len, value, vlen,
	                            topic, tlen, gw->ext->epoch, e->offset);
	free(value);
	if (f == NULL)
		return;
	gw->ext->replayed++;
	session_send(sub->session, f);
	cable_frame_unref(f);
}

/*
 * End the hold of a restored subscription: send the held frames the replay did not
 * cover (all of them when nothing was replayed), in order.
 */
static void release_hold(struct session *s, struct sub *sub, struct replay_topic *topics)
{
	struct held *h = sub->held;
	struct held_frame *hf;
	struct replay_topic *t;

	if (h == NULL)
		return;
	for (hf = h->head; hf; hf = hf->next) {
		t = NULL;
		if (topics && hf->offset)
			HASH_FIND(hh, topics, hf->topic, hf->tlen, t);
		if (t == NULL || hf->offset > t->last)
			session_send(s, hf->f);
	}
	ext_sub_gone(s->gw, sub);
}

static void history_reply(struct session *s, struct sub *sub, bool ok)
{
	struct cable_frame *f =
	        cable_proto_history_reply(sub->entry.ident->raw, sub->entry.ident->raw_len, ok);

	if (ok)
		s->gw->ext->history_confirmed++;
	else
		s->gw->ext->history_rejected++;
	session_send(s, f);
	cable_frame_unref(f);
}

static void plan_free(struct ext_plan *rp)
{
	struct replay_topic *t, *tmp;

	if (rp == NULL)
		return;
	HASH_ITER(hh, rp->topics, t, tmp)
	{
		HASH_DELETE(hh, rp->topics, t);
		free(t);
	}
	free(rp->entries);
	cable_history_request_release(&rp->req);
	free(rp);
}

/*
 * Plan the history request of a subscribe or history command: every topic of the
 * subscription checked, the entries to send collected. NULL when the command asks for
 * none (a subscribe then says nothing; ext_history_send answers a history command).
 */
struct ext_plan *ext_history_plan(struct session *s, struct sub *sub, const struct cable_cmd *cmd)
{
	struct cable_error err = {0};
	struct ext_plan *rp;
	struct route *r;
	size_t i;

	rp = calloc(1, sizeof(*rp));
	if (rp == NULL) {
		gw_log(s->gw, MOSQ_LOG_ERR, "connection %s: out of memory for a history request",
		       s->sid);
		return NULL;
	}
	rp->gw = s->gw;
	rp->sub = sub;
	if (cable_proto_history_request(cmd->history, &rp->req, &err) != CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (user %s): history request refused: %s",
		       s->sid, CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(err.text));
		rp->failed = true;
		return rp;
	}
	if (rp->req.since <= 0 && !rp->req.has_streams) {
		plan_free(rp);
		return NULL;
	}
	if (s->gw->ext->history)
		cable_history_expire(s->gw->ext->history, (long long)time(NULL));
	for (i = 0; i < sub->entry.nlinks && !rp->failed; i++) {
		r = sub->entry.links[i].route;
		if (r == NULL)
			continue;
		if (!r->wildcard) {
			plan_topic(rp, r->filter, r->len);
		} else if (s->gw->ext->history) {
			rp->filter = r->filter;
			rp->filter_len = r->len;
			cable_history_each_topic(s->gw->ext->history, plan_wild_topic, rp);
		}
	}
	/* A known position on a topic the store no longer has: that history is gone. */
	for (i = 0; i < rp->req.npos && !rp->failed; i++) {
		if (sub_covers(sub, rp->req.pos[i].stream, rp->req.pos[i].stream_len))
			plan_topic(rp, rp->req.pos[i].stream, rp->req.pos[i].stream_len);
	}
	return rp;
}

/*
 * The last value of `topic` (the retained message, replayed on subscribe) is not sent to
 * a subscription whose planned history resumes that topic from a known position (the
 * client has every message since, so it has the value) or replays a retained message of
 * it (that entry is the current value): nothing is applied twice. The last value carries
 * no offset, so it never moves the client's position either way.
 */
bool ext_skip_last_value(const struct ext_plan *rp, const char *topic, size_t len)
{
	struct replay_topic *t;

	if (rp == NULL || rp->failed)
		return false;
	HASH_FIND(hh, rp->topics, topic, len, t);
	return t && (t->resumed || t->retained);
}

/*
 * Send what was planned (entries then confirm_history, or reject_history alone: all or
 * nothing), end the hold of a restored subscription, and free the plan. rp NULL: nothing
 * was asked; a history command (answer) still gets confirm_history.
 */
void ext_history_send(struct session *s, struct sub *sub, struct ext_plan *rp, bool answer)
{
	size_t i;

	if (rp == NULL) {
		if (answer)
			history_reply(s, sub, true);
		release_hold(s, sub, NULL);
		return;
	}
	if (rp->failed) {
		history_reply(s, sub, false);
		release_hold(s, sub, NULL);
	} else {
		if (rp->n > 1)
			qsort(rp->entries, rp->n, sizeof(*rp->entries), by_seq);
		for (i = 0; i < rp->n; i++)
			replay_entry(rp, rp->entries[i]);
		history_reply(s, sub, true);
		release_hold(s, sub, rp->topics);
	}
	plan_free(rp);
}

/* The history command: for a subscription this connection has. */
void ext_history(struct session *s, const struct cable_cmd *cmd)
{
	struct sub *sub = NULL;

	if (cmd->identifier)
		HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub == NULL) {
		gw_log(s->gw, MOSQ_LOG_INFO,
		       "connection %s (user %s): history for an identifier it is not subscribed "
		       "to; ignored",
		       s->sid, CABLE_LOG_STR(s->who.user));
		return;
	}
	ext_history_send(s, sub, ext_history_plan(s, sub, cmd), true);
}

/* ---- Fan-out ------------------------------------------------------------------------ */

/* fanout.c: record a message some ext subscription (or parked session) streams. */
bool ext_tracked(struct gw *gw, const struct cable_msg *m, uint64_t *offset)
{
	struct cable_history *h = gw->ext->history;

	*offset = 0;
	if (h == NULL)
		return false;
	cable_history_append(h, m->topic, m->topic_len, m->payload, m->payload_len, m->retain,
	                     (long long)time(NULL), offset);
	return *offset != 0;
}

struct cable_frame *ext_frame(struct gw *gw, struct sub *sub, const char *value, size_t len,
                              const struct cable_msg *m, uint64_t offset)
{
	return cable_proto_message_ext(sub->entry.ident->json, sub->entry.ident->json_len, value,
	                               len, m->topic, m->topic_len, gw->ext->epoch, offset);
}

/* ---- Timers ------------------------------------------------------------------------- */

/* Every ping: history age, parked sessions' TTL, pong timeouts, forgotten holds. */
void ext_tick(struct gw *gw)
{
	struct ext_gw *x = gw->ext;
	long long now = mono_seconds();
	struct resume *r;
	struct session *s;
	struct sub *sub, *tmp;

	if (x->history)
		cable_history_expire(x->history, (long long)time(NULL));
	while ((r = cable_heap_peek(&x->parked)) != NULL && r->expires <= now) {
		cable_heap_pop(&x->parked);
		HASH_DELETE(hh, x->by_sid, r);
		x->parked_expired++;
		resume_free(gw, r);
	}
	for (s = gw->sess.list; s; s = s->next) {
		if (s->ext == NULL || !s->active || s->closing)
			continue;
		if (gw->cfg.pong_timeout &&
		    now - s->ext->last_rx >
		            (long long)(gw->cfg.ping_interval + gw->cfg.pong_timeout)) {
			x->no_pong++;
			gw_log(gw, MOSQ_LOG_INFO,
			       "connection %s (%s) closed: nothing received for %lld s "
			       "(plugin_opt_pong_timeout)",
			       s->sid, s->peer, now - s->ext->last_rx);
			session_close(s, CABLE_DISCONNECT_NO_PONG, true, CLOSE_NORMAL);
			continue;
		}
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			if (sub->held && now - sub->held->since >= HOLD_MAX_SECONDS)
				release_hold(s, sub, NULL);
		}
	}
}

size_t ext_metrics(struct gw *gw, char *buf, size_t len)
{
	struct ext_gw *x = gw->ext;
	struct cable_history_stats st = {0};
	int n;

	if (x->history)
		cable_history_stats(x->history, &st);
	n = snprintf(
	        buf, len,
	        "# HELP cable_history_streams Topics with a kept history.\n"
	        "# TYPE cable_history_streams gauge\ncable_history_streams %zu\n"
	        "# HELP cable_history_messages Messages kept in histories.\n"
	        "# TYPE cable_history_messages gauge\ncable_history_messages %zu\n"
	        "# HELP cable_history_bytes Bytes the histories count (payload, topic, overhead).\n"
	        "# TYPE cable_history_bytes gauge\ncable_history_bytes %zu\n"
	        "# HELP cable_history_evicted_total Messages dropped from histories by the "
	        "limits.\n"
	        "# TYPE cable_history_evicted_total counter\ncable_history_evicted_total %llu\n"
	        "# HELP cable_history_replayed_total Messages sent from histories.\n"
	        "# TYPE cable_history_replayed_total counter\ncable_history_replayed_total %llu\n"
	        "# HELP cable_history_requests_total History requests answered.\n"
	        "# TYPE cable_history_requests_total counter\n"
	        "cable_history_requests_total{result=\"confirmed\"} %llu\n"
	        "cable_history_requests_total{result=\"rejected\"} %llu\n"
	        "# HELP cable_sessions_restorable Dropped ext sessions that can be restored.\n"
	        "# TYPE cable_sessions_restorable gauge\ncable_sessions_restorable %zu\n"
	        "# HELP cable_session_restores_total Session restores.\n"
	        "# TYPE cable_session_restores_total counter\n"
	        "cable_session_restores_total{result=\"restored\"} %llu\n"
	        "cable_session_restores_total{result=\"failed\"} %llu\n"
	        "# HELP cable_no_pong_total Ext connections closed for lack of pongs.\n"
	        "# TYPE cable_no_pong_total counter\ncable_no_pong_total %llu\n",
	        st.streams, st.entries, st.bytes, (unsigned long long)st.evicted,
	        (unsigned long long)x->replayed, (unsigned long long)x->history_confirmed,
	        (unsigned long long)x->history_rejected, x->parked.n,
	        (unsigned long long)x->restored, (unsigned long long)x->restore_failed,
	        (unsigned long long)x->no_pong);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len;
}

uint64_t ext_skipped(const struct gw *gw)
{
	return gw->ext ? gw->ext->skipped : 0;
}
