/*
 * AnyCable's extended protocol (actioncable-v1-ext-json): reliable streams (offsets,
 * epoch, history on subscribe and on the history command), session restore, pongs.
 * docs/reliable-streams.md says what it guarantees; docs/protocol.md has the frames.
 * ext.c alone writes struct ext_hub (shared by the shards, under its lock), each
 * shard's struct ext_gw and the sessions' struct resume (ext.h). Gateway threads, as
 * each function says.
 *
 * Ordering. Shard 0 records a message and gives it its offset (ext_record) when it
 * sequences it, before any shard fans it out; every shard's frames carry that offset
 * (cable_msg.offset). A replay copies the history under the lock at message `upto`; the
 * shard that sends it may still have earlier messages in its inbox, so until it has fanned
 * out message `upto`, live frames the replay already sent (a recorded offset at or below
 * the topic's last replayed one) are left out (struct held, covered). With one shard
 * nothing is ever behind: a replay runs between two dispatches.
 * After a restore the subscriptions are live at once but the client asks for its
 * history only afterwards: until that history command, their live frames are held
 * (struct held), and then only those above the replayed offsets are sent.
 */
#include <pthread.h>
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

/* A history entry copied out of the shared store (the plan is sent without the lock). */
struct replay_item {
	uint64_t seq;    /* the store's append order */
	uint64_t offset; /* in its topic */
	bool retain;
	size_t tlen, len;
	char *payload; /* into data, after the topic */
	char data[];   /* topic, NUL, payload, NUL */
};

/* One topic of a replay: what was asked, and the last offset the replay sends. */
struct replay_topic {
	UT_hash_handle hh;
	uint64_t last;
	bool resumed;  /* from a known position */
	bool retained; /* the replay has a retained message of it */
	size_t len;
	char topic[];
};

struct held_frame {
	struct held_frame *next;
	struct cable_frame *f;
	uint64_t offset; /* 0: not recorded (always sent) */
	size_t tlen;
	char topic[];
};

/*
 * What ext.c decides about a subscription's live frames. Restored (`holding`): they are
 * held until its history command. After a replay on a shard that has not yet fanned out
 * every message the replay covered (covered != NULL): a live frame the replay already
 * sent (a recorded offset at or below the topic's last replayed one) is left out, until
 * the shard has fanned out message `upto`.
 */
struct held {
	struct held_frame *head, *tail;
	size_t n, bytes;
	long long since; /* monotonic seconds */
	bool holding;    /* restored, before its history command */
	bool dropped;    /* over the bound: later frames are left to the history replay */
	struct replay_topic *covered;
	uint64_t upto; /* cable_msg.seq the replay was taken at */
};

/* An identifier or a stream filter, copied (may hold any byte). */
struct rid {
	size_t len;
	char text[];
};

/*
 * One per ext session id, in the shared ext_hub.by_sid: a live ext connection (live) or a
 * dropped one that can be restored until `expires` (parked), on any shard. The sid is a
 * bearer secret and is never logged (the connection's log id is session->sid, another
 * value). A parked session is shard-independent: identifier strings, and its streams'
 * filters registered in the shared interest (so their history goes on).
 */
struct resume {
	UT_hash_handle hh;                 /* {lock} in ext_hub.by_sid */
	char sid[CABLE_PROTO_SID_LEN + 1]; /* set at creation */
	char *user;                        /* set at creation */
	unsigned shard;                    /* the connection's shard */
	long long last_rx;                 /* live: its shard only; the last frame received */
	bool live;                         /* {lock} */
	bool consumed;                     /* {lock} its sid was used: it will not be parked */
	struct rid **ids;                  /* {lock} the subscriptions' identifiers */
	size_t nids, ids_cap;              /* {lock} */
	struct rid **filters;              /* {lock} parked: registered in the interest */
	size_t nfilters;                   /* {lock} */
	long long expires;                 /* {lock} monotonic seconds */
	size_t slot;                       /* {lock} in ext_hub.parked */
	bool counted;                      /* {lock} in ext_hub.parked_per_user */
};

/* A stream filter that ext subscriptions (on any shard) or parked sessions stream. */
struct interest {
	UT_hash_handle hh; /* in exact (filters without wildcards) */
	size_t refs;
	size_t len;
	char filter[];
};

/*
 * What the shards share (gw_hub.ext), under `lock`: the history, appended to by shard 0
 * alone (ext_record, in sequence order, before a message goes to any shard), read (and
 * aged) by every shard; the interest that decides what is recorded; the restorable
 * sessions. Each critical section is a few lookups or copies: no lws call, no other lock.
 */
struct ext_hub {
	pthread_mutex_t lock;
	char epoch[12]; /* set at start */
	/* {lock} */
	struct cable_history *history; /* NULL with plugin_opt_history_limit 0 */
	uint64_t seq;                  /* the last message shard 0 recorded or passed over */
	struct interest *exact;
	struct cable_tree *wild; /* NULL until the first wildcard filter */
	struct resume *by_sid;
	struct cable_heap parked; /* by expires */
	/*
	 * Parked sessions per user. A parked session keeps its streams recorded after its
	 * connection's subscription budget was given back, so without this one user could
	 * park up to plugin_opt_max_connections sessions by reconnecting.
	 */
	struct counter *parked_per_user;
};

/* A shard's: its counters. */
struct ext_gw {
	struct ext_hub *hub;
	struct ext_counters c;
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

static struct rid *rid_new(const char *text, size_t len)
{
	struct rid *r = malloc(sizeof(*r) + len + 1);

	if (r == NULL)
		return NULL;
	r->len = len;
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	return r;
}

static void rids_free(struct rid **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- The interest: which topics are recorded (under the hub's lock) ------------------ */

static struct interest *interest_find(struct ext_hub *xh, const char *filter, size_t len, bool wild)
{
	struct interest *i = NULL;

	if (wild)
		return xh->wild ? cable_tree_get(xh->wild, filter, len) : NULL;
	HASH_FIND(hh, xh->exact, filter, len, i);
	return i;
}

static bool interest_add(struct ext_hub *xh, const char *filter, size_t len)
{
	bool wild = cable_topic_has_wildcard(filter, len), added;
	struct interest *i = interest_find(xh, filter, len, wild);

	if (i) {
		i->refs++;
		return true;
	}
	i = calloc(1, sizeof(*i) + len + 1);
	if (i == NULL)
		return false;
	memcpy(i->filter, filter, len);
	i->len = len;
	i->refs = 1;
	if (wild) {
		if (xh->wild == NULL)
			xh->wild = cable_tree_new();
		if (xh->wild && cable_tree_put(xh->wild, i->filter, len, i) == CABLE_OK)
			return true;
	} else {
		GW_HASH_ADD(xh->exact, i->filter, i->len, i, added);
		if (added)
			return true;
	}
	free(i);
	return false;
}

static void interest_del(struct ext_hub *xh, const char *filter, size_t len)
{
	bool wild = cable_topic_has_wildcard(filter, len);
	struct interest *i = interest_find(xh, filter, len, wild);

	if (i == NULL || --i->refs > 0)
		return;
	if (wild)
		cable_tree_del(xh->wild, filter, len);
	else
		HASH_DELETE(hh, xh->exact, i);
	free(i);
}

static void match_none(void *value, void *arg)
{
	(void)value;
	(void)arg;
}

static bool interested(struct ext_hub *xh, const char *topic, size_t len)
{
	struct interest *i;

	HASH_FIND(hh, xh->exact, topic, len, i);
	return i != NULL || (xh->wild && cable_tree_match(xh->wild, topic, len, match_none, NULL));
}

/* ---- Start and stop ------------------------------------------------------------------ */

/* Broker thread, in start() (shard 0 first). */
static struct ext_hub *ext_hub_new(struct gw *gw)
{
	struct cable_history_limits lim = {gw->cfg.history_limit, gw->cfg.history_max_bytes,
	                                   gw->cfg.history_ttl, gw->cfg.history_total_bytes};
	unsigned char raw[CABLE_PROTO_SID_BYTES];
	char text[CABLE_PROTO_SID_LEN + 1];
	struct ext_hub *xh = calloc(1, sizeof(*xh));

	if (xh == NULL)
		return NULL;
	if (pthread_mutex_init(&xh->lock, NULL) != 0) {
		free(xh);
		return NULL;
	}
	/* A new epoch at every start: offsets of another run never compare equal. */
	if ((lim.messages && (xh->history = cable_history_new(&lim)) == NULL) ||
	    RAND_bytes(raw, sizeof(raw)) != 1) {
		ext_hub_free(xh);
		return NULL;
	}
	cable_proto_sid_encode(raw, text);
	memcpy(xh->epoch, text, sizeof(xh->epoch) - 1);
	cable_heap_init(&xh->parked, parked_less, parked_moved);
	return xh;
}

int ext_start(struct gw *gw)
{
	struct ext_gw *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return CABLE_ENOMEM;
	if (gw->hub->ext == NULL && (gw->hub->ext = ext_hub_new(gw)) == NULL) {
		free(x);
		return CABLE_ENOMEM;
	}
	x->hub = gw->hub->ext;
	gw->ext = x;
	return CABLE_OK;
}

static void resume_free(struct resume *r)
{
	rids_free(r->ids, r->nids);
	rids_free(r->filters, r->nfilters);
	free(r->user);
	free(r);
}

/* Under the lock: what a parked session holds in the shared structures goes. */
static void resume_unpark(struct ext_hub *xh, struct resume *r)
{
	for (size_t i = 0; i < r->nfilters; i++)
		interest_del(xh, r->filters[i]->text, r->filters[i]->len);
	if (r->counted)
		counter_add(&xh->parked_per_user, r->user, -1);
	r->counted = false;
}

static void free_interest(void *value)
{
	free(value);
}

/* Broker thread, after every shard ended (hub_free). */
void ext_hub_free(struct ext_hub *xh)
{
	struct resume *r, *rtmp;
	struct interest *i, *itmp;

	if (xh == NULL)
		return;
	HASH_ITER(hh, xh->by_sid, r, rtmp)
	{
		HASH_DELETE(hh, xh->by_sid, r);
		resume_free(r);
	}
	HASH_ITER(hh, xh->exact, i, itmp)
	{
		HASH_DELETE(hh, xh->exact, i);
		free(i);
	}
	cable_tree_free(xh->wild, free_interest);
	cable_heap_free(&xh->parked);
	counter_clear(&xh->parked_per_user);
	cable_history_free(xh->history);
	pthread_mutex_destroy(&xh->lock);
	free(xh);
}

/* Broker thread, after the shard ended: its sessions are gone (ext_detach forgot them). */
void ext_release(struct gw *gw)
{
	free(gw->ext);
	gw->ext = NULL;
}

/* ---- Connections -------------------------------------------------------------------- */

bool ext_attach(struct session *s)
{
	struct ext_hub *xh = s->gw->ext->hub;
	unsigned char raw[CABLE_PROTO_SID_BYTES];
	struct resume *r;
	bool added;

	r = calloc(1, sizeof(*r));
	if (r == NULL || RAND_bytes(raw, sizeof(raw)) != 1 ||
	    (r->user = strdup(s->who.user ? s->who.user : "")) == NULL) {
		free(r);
		return false;
	}
	cable_proto_sid_encode(raw, r->sid);
	r->shard = s->gw->shard;
	r->live = true;
	r->last_rx = mono_seconds();
	pthread_mutex_lock(&xh->lock);
	GW_HASH_ADD(xh->by_sid, r->sid, CABLE_PROTO_SID_LEN, r, added);
	pthread_mutex_unlock(&xh->lock);
	if (!added) {
		resume_free(r);
		return false;
	}
	s->ext = r;
	return true;
}

void ext_received(struct session *s)
{
	s->ext->last_rx = mono_seconds();
}

/* subs.c: a new subscription of a live ext connection (its identifier, for a restore). */
void ext_sub_added(struct sub *sub)
{
	struct resume *r = sub->session->ext;
	struct ext_hub *xh;
	struct rid *id, **grown;

	if (r == NULL)
		return;
	xh = sub->session->gw->ext->hub;
	id = rid_new(sub->entry.ident->raw, sub->entry.ident->raw_len);
	if (id == NULL)
		return; /* not restorable; the subscription works */
	pthread_mutex_lock(&xh->lock);
	grown = cable_grow(r->ids, r->nids, &r->ids_cap, sizeof(*grown), 4);
	if (grown) {
		r->ids = grown;
		r->ids[r->nids++] = id;
		id = NULL;
	}
	pthread_mutex_unlock(&xh->lock);
	free(id);
}

/* Any connection's session with this sid ends without being parked (its sid was used). */
static void end_taken(struct gw *gw, void *arg)
{
	char *sid = arg;

	for (struct session *s = gw->finished ? NULL : gw->sess.list; s; s = s->next) {
		if (s->ext && strcmp(s->ext->sid, sid) == 0) {
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			break;
		}
	}
	free(sid);
}

/*
 * The identifiers to restore from a sid, if it is usable by this session's user.
 * *parked: the parked session they came from (its streams stay recorded until the new
 * subscriptions record them; resume_unpark).
 */
static bool take_session(struct session *s, const char *sid, struct rid ***ids, size_t *nids,
                         struct resume **parked, unsigned *from)
{
	struct ext_hub *xh = s->gw->ext->hub;
	struct resume *r;
	struct rid **copy = NULL;
	size_t i, n = 0;
	unsigned shard;
	char *arg;
	bool same;

	*ids = NULL;
	*nids = 0;
	*parked = NULL;
	if (!cable_proto_sid_valid(sid, strlen(sid)))
		return false;
	pthread_mutex_lock(&xh->lock);
	HASH_FIND(hh, xh->by_sid, sid, CABLE_PROTO_SID_LEN, r);
	if (r == NULL || r == s->ext) {
		pthread_mutex_unlock(&xh->lock);
		return false;
	}
	/* Single use, whatever happens next. */
	HASH_DELETE(hh, xh->by_sid, r);
	same = strcmp(r->user, s->who.user ? s->who.user : "") == 0;
	*from = r->shard;
	if (!r->live) {
		cable_heap_remove(&xh->parked, r->slot);
		if (!same) {
			resume_unpark(xh, r);
			pthread_mutex_unlock(&xh->lock);
			resume_free(r);
			return false;
		}
		pthread_mutex_unlock(&xh->lock);
		*ids = r->ids;
		*nids = r->nids;
		r->ids = NULL;
		r->nids = 0;
		*parked = r;
		return true;
	}
	/*
	 * The old connection is still open (the drop has not reached its shard yet): take its
	 * subscriptions and end it without parking it. Its shard frees r.
	 */
	r->consumed = true;
	shard = r->shard;
	if (same && (copy = calloc(r->nids ? r->nids : 1, sizeof(*copy))) != NULL) {
		for (i = 0; i < r->nids; i++)
			if ((copy[n] = rid_new(r->ids[i]->text, r->ids[i]->len)) != NULL)
				n++;
	}
	pthread_mutex_unlock(&xh->lock);
	if (copy == NULL)
		return false;
	arg = strdup(sid); /* NULL: the old connection ends when its network does */
	if (arg && shard == s->gw->shard)
		end_taken(s->gw, arg);
	else if (arg && shard_call(s->gw->hub->shards[shard], end_taken, arg, true) != CABLE_OK)
		free(arg); /* stopping */
	*ids = copy;
	*nids = n;
	return true;
}

/* Restore from ?sid= when it names a session of this user; false: a fresh session. */
static bool restore(struct session *s, const char *sid)
{
	struct ext_gw *x = s->gw->ext;
	struct cable_error err = {0};
	struct resume *parked;
	struct rid **ids;
	const char **json = NULL;
	size_t *lens = NULL, nids, n = 0, i;
	struct cable_frame *f;
	struct sub *sub;
	unsigned from = s->gw->shard;

	if (!take_session(s, sid, &ids, &nids, &parked, &from)) {
		x->c.restore_failed++;
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
		sub = sub_create(s, ids[i]->text, ids[i]->len, &err);
		if (sub == NULL) {
			gw_log(s->gw, MOSQ_LOG_NOTICE,
			       "connection %s (user %s): a subscription was not restored: %s",
			       s->sid, CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(err.text));
			continue;
		}
		sub->held = calloc(1, sizeof(*sub->held));
		if (sub->held) {
			sub->held->holding = true;
			sub->held->since = mono_seconds();
		}
		json[n] = sub->entry.ident->json;
		lens[n++] = sub->entry.ident->json_len;
	}
	rids_free(ids, nids);
	if (parked) { /* the new subscriptions record its streams now */
		pthread_mutex_lock(&x->hub->lock);
		resume_unpark(x->hub, parked);
		pthread_mutex_unlock(&x->hub->lock);
		resume_free(parked);
	}
	f = cable_proto_welcome_restored(s->ext->sid, json, lens, n);
	free(json);
	free(lens);
	if (f == NULL) {
		session_close(s, CABLE_DISCONNECT_SERVER_ERROR, true, CLOSE_UNEXPECTED);
		return true;
	}
	session_send(s, f);
	cable_frame_unref(f);
	x->c.restored++;
	gw_log(s->gw, MOSQ_LOG_INFO,
	       "connection %s (user %s): session restored on shard %u from shard %u, %zu "
	       "subscriptions",
	       s->sid, CABLE_LOG_STR(s->who.user), s->gw->shard, from, n);
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

/* The stream filters of a session's subscriptions, copied; false: out of memory. */
static bool session_filters(struct session *s, struct rid ***out, size_t *n)
{
	struct sub *sub, *tmp;
	struct route *route;
	size_t i, count = 0;

	HASH_ITER(hh, s->subs, sub, tmp)
	{
		count += sub->entry.nlinks;
	}
	*n = 0;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (*out == NULL)
		return false;
	HASH_ITER(hh, s->subs, sub, tmp)
	{
		for (i = 0; i < sub->entry.nlinks; i++) {
			if ((route = sub->entry.links[i].route) == NULL)
				continue;
			if (((*out)[*n] = rid_new(route->filter, route->len)) == NULL)
				return false;
			(*n)++;
		}
	}
	return true;
}

/*
 * Gateway thread, from session_closed (the subscriptions are still there). A connection
 * that dropped is parked for plugin_opt_session_ttl seconds, restorable on any shard; one
 * the server ended (a disconnect frame: too_slow, no_pong, token_expired,
 * server_restart...), one that never authenticated and one whose sid was used are
 * forgotten.
 */
void ext_detach(struct session *s)
{
	struct gw *gw = s->gw;
	struct ext_gw *x = gw->ext;
	struct ext_hub *xh = x->hub;
	struct resume *r = s->ext;
	struct rid **filters = NULL;
	size_t i, nfilters = 0, n;
	bool park, added;

	s->ext = NULL;
	park = s->active && !s->closing && !gw->stopping && gw->cfg.session_ttl != 0;
	if (park && !session_filters(s, &filters, &nfilters))
		park = false;
	pthread_mutex_lock(&xh->lock);
	if (r->consumed)
		goto forget; /* out of by_sid already */
	HASH_DELETE(hh, xh->by_sid, r);
	r->live = false;
	if (!park || (gw->cfg.max_connections && xh->parked.n >= gw->cfg.max_connections))
		goto forget;
	/* At most plugin_opt_max_connections_per_user parked sessions per user. */
	if (gw->cfg.max_per_user && !gw->cfg.anonymous) {
		n = counter_add(&xh->parked_per_user, r->user, +1);
		if (n == SIZE_MAX)
			goto forget;
		r->counted = true;
		if (n > gw->cfg.max_per_user)
			goto forget;
	}
	/* Its streams stay recorded while it can be restored. */
	for (i = 0; i < nfilters; i++) {
		if (!interest_add(xh, filters[i]->text, filters[i]->len))
			break;
		r->filters = filters; /* resume_unpark drops the first nfilters */
		r->nfilters = i + 1;
	}
	if (i < nfilters)
		goto forget;
	r->filters = filters;
	r->nfilters = nfilters;
	filters = NULL;
	r->expires = mono_seconds() + gw->cfg.session_ttl;
	if (cable_heap_push(&xh->parked, r) != CABLE_OK)
		goto forget;
	GW_HASH_ADD(xh->by_sid, r->sid, CABLE_PROTO_SID_LEN, r, added);
	if (!added) {
		cable_heap_remove(&xh->parked, r->slot);
		goto forget;
	}
	pthread_mutex_unlock(&xh->lock);
	x->c.parked++;
	return;
forget:
	resume_unpark(xh, r);
	pthread_mutex_unlock(&xh->lock);
	if (r->filters == filters) {
		r->filters = NULL;
		r->nfilters = 0;
	}
	rids_free(filters, nfilters);
	resume_free(r);
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

static void topics_free(struct replay_topic **topics)
{
	struct replay_topic *t, *tmp;

	HASH_ITER(hh, *topics, t, tmp)
	{
		HASH_DELETE(hh, *topics, t);
		free(t);
	}
}

/* The subscription's frames are sent as they come again. */
static void held_free(struct sub *sub)
{
	if (sub->held == NULL)
		return;
	held_clear(sub->held);
	topics_free(&sub->held->covered);
	free(sub->held);
	sub->held = NULL;
}

void ext_sub_gone(struct gw *gw, struct sub *sub)
{
	struct resume *r = sub->session->ext;
	struct ext_hub *xh;
	struct rid *gone = NULL;
	size_t i;

	held_free(sub);
	if (r == NULL)
		return;
	/* A live ext connection's identifiers, for a restore (ext_sub_added). */
	xh = gw->ext->hub;
	pthread_mutex_lock(&xh->lock);
	for (i = 0; i < r->nids; i++) {
		if (r->ids[i]->len == sub->entry.ident->raw_len &&
		    memcmp(r->ids[i]->text, sub->entry.ident->raw, r->ids[i]->len) == 0) {
			gone = r->ids[i];
			r->ids[i] = r->ids[--r->nids];
			break;
		}
	}
	pthread_mutex_unlock(&xh->lock);
	free(gone);
}

/* A frame the replay that `h` remembers already sent: a recorded offset it covered. */
static bool covered(const struct held *h, const struct cable_msg *m, uint64_t offset)
{
	struct replay_topic *t;

	if (offset == 0)
		return false;
	HASH_FIND(hh, h->covered, m->topic, m->topic_len, t);
	return t && offset <= t->last;
}

/* fanout.c: a live frame for a subscription that is held or covered; true if it took it. */
bool ext_hold(struct sub *sub, struct cable_frame *f, const struct cable_msg *m, uint64_t offset)
{
	struct held *h = sub->held;
	struct held_frame *hf;

	if (!h->holding) {
		if (m->seq > h->upto) { /* past the replay: nothing more to leave out */
			held_free(sub);
			return false;
		}
		return covered(h, m, offset);
	}
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

/*
 * A history request, planned (all of it checked, the entries copied out of the shared
 * store) before anything is sent.
 */
struct ext_plan {
	struct gw *gw;
	struct sub *sub;
	struct ext_hub *xh;
	struct cable_history_request req;
	struct replay_topic *topics;
	struct replay_item **entries;
	size_t n, cap;
	const char *filter; /* the wildcard stream being expanded */
	size_t filter_len;
	uint64_t upto; /* the last message the store had seen when planned */
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

static struct replay_item *item_copy(const struct cable_history_entry *e)
{
	size_t tlen;
	const char *topic = cable_history_topic(e, &tlen);
	struct replay_item *it = malloc(sizeof(*it) + tlen + 1 + e->len + 1);

	if (it == NULL)
		return NULL;
	it->seq = e->seq;
	it->offset = e->offset;
	it->retain = e->retain;
	it->tlen = tlen;
	it->len = e->len;
	memcpy(it->data, topic, tlen + 1);
	it->payload = it->data + tlen + 1;
	memcpy(it->payload, e->payload, e->len + 1);
	return it;
}

/* Plan the replay of one topic (once per topic even if two streams cover it). Locked. */
static void plan_topic(struct ext_plan *rp, const char *topic, size_t len)
{
	const struct cable_history *h = rp->xh->history;
	const struct cable_history_entry *e = NULL;
	const struct cable_stream_pos *pos;
	struct replay_item **grown;
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
		if (!pos->valid || h == NULL || strlen(rp->xh->epoch) != pos->epoch_len ||
		    memcmp(rp->xh->epoch, pos->epoch, pos->epoch_len) != 0)
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
		if (grown == NULL || (grown[rp->n] = item_copy(e)) == NULL) {
			if (grown)
				rp->entries = grown;
			rp->failed = true;
			return;
		}
		rp->entries = grown;
		rp->n++;
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
	uint64_t x = (*(const struct replay_item *const *)a)->seq;
	uint64_t y = (*(const struct replay_item *const *)b)->seq;

	return x < y ? -1 : x > y;
}

/* Send one history entry as the live frame would have looked. */
static void replay_entry(struct ext_plan *rp, const struct replay_item *e)
{
	struct gw *gw = rp->gw;
	struct sub *sub = rp->sub;
	struct cable_frame *f;
	struct cable_msg probe;
	char *value = NULL;
	size_t vlen = 0;
	int rc;

	memset(&probe, 0, sizeof(probe));
	probe.topic = (char *)e->data;
	probe.topic_len = e->tlen;
	/* The user's ACL for every replayed message, as for live ones. */
	if (sub->entry.check_each && !sub_may_read(sub, &probe))
		return;
	if (sub->entry.deliver == CABLE_DELIVER_ENVELOPE)
		rc = cable_proto_envelope_value(e->data, e->tlen, e->payload, e->len, e->retain,
		                                &value, &vlen);
	else
		rc = cable_proto_payload_value(e->payload, e->len, &value, &vlen);
	if (rc != CABLE_OK) {
		gw->ext->c.skipped++;
		return;
	}
	f = cable_proto_message_ext(sub->entry.ident->json, sub->entry.ident->json_len, value, vlen,
	                            e->data, e->tlen, rp->xh->epoch, e->offset);
	free(value);
	if (f == NULL)
		return;
	gw->ext->c.replayed++;
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

	if (h == NULL || !h->holding)
		return;
	for (hf = h->head; hf; hf = hf->next) {
		t = NULL;
		if (topics && hf->offset)
			HASH_FIND(hh, topics, hf->topic, hf->tlen, t);
		if (t == NULL || hf->offset > t->last)
			session_send(s, hf->f);
	}
	held_free(sub);
}

/*
 * After a replay taken at message rp->upto: this shard may not have fanned out every
 * message up to there yet (they come through its inbox). Their live frames for the
 * replayed topics are left out while their offsets are covered (ext_hold); those of
 * other topics, and unrecorded ones, go out: nothing twice, no gap.
 */
static void cover(struct session *s, struct sub *sub, struct ext_plan *rp)
{
	struct held *h;

	if (rp->upto <= s->gw->index.last_seq || rp->topics == NULL)
		return;
	h = sub->held ? sub->held : calloc(1, sizeof(*h));
	if (h == NULL)
		return;
	topics_free(&h->covered); /* an earlier history command's */
	sub->held = h;
	h->upto = rp->upto;
	h->covered = rp->topics;
	rp->topics = NULL;
}

static void history_reply(struct session *s, struct sub *sub, bool ok)
{
	struct cable_frame *f =
	        cable_proto_history_reply(sub->entry.ident->raw, sub->entry.ident->raw_len, ok);

	if (ok)
		s->gw->ext->c.history_confirmed++;
	else
		s->gw->ext->c.history_rejected++;
	session_send(s, f);
	cable_frame_unref(f);
}

static void plan_free(struct ext_plan *rp)
{
	size_t i;

	if (rp == NULL)
		return;
	topics_free(&rp->topics);
	for (i = 0; i < rp->n; i++)
		free(rp->entries[i]);
	free(rp->entries);
	cable_history_request_release(&rp->req);
	free(rp);
}

/*
 * Plan the history request of a subscribe or history command: every topic of the
 * subscription checked, the entries to send copied, under the shared store's lock.
 * NULL when the command asks for none (a subscribe then says nothing; ext_history_send
 * answers a history command).
 */
struct ext_plan *ext_history_plan(struct session *s, struct sub *sub, const struct cable_cmd *cmd)
{
	struct cable_error err = {0};
	struct ext_plan *rp;
	struct ext_hub *xh = s->gw->ext->hub;
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
	rp->xh = xh;
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
	pthread_mutex_lock(&xh->lock);
	rp->upto = xh->seq;
	if (xh->history)
		cable_history_expire(xh->history, (long long)time(NULL));
	for (i = 0; i < sub->entry.nlinks && !rp->failed; i++) {
		r = sub->entry.links[i].route;
		if (r == NULL)
			continue;
		if (!r->wildcard) {
			plan_topic(rp, r->filter, r->len);
		} else if (xh->history) {
			rp->filter = r->filter;
			rp->filter_len = r->len;
			cable_history_each_topic(xh->history, plan_wild_topic, rp);
		}
	}
	/* A known position on a topic the store no longer has: that history is gone. */
	for (i = 0; i < rp->req.npos && !rp->failed; i++) {
		if (sub_covers(sub, rp->req.pos[i].stream, rp->req.pos[i].stream_len))
			plan_topic(rp, rp->req.pos[i].stream, rp->req.pos[i].stream_len);
	}
	pthread_mutex_unlock(&xh->lock);
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
		/*
		 * A last-value replay between plan and send (state.c) may have started live
		 * delivery after a later message than this replay's; the replayed topics must
		 * not miss what lies between (cover leaves out what the replay sent).
		 */
		if (sub->entry.since > rp->upto)
			sub->entry.since = rp->upto;
		cover(s, sub, rp);
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

/*
 * Shard 0, before m goes to any shard (shards_dispatch): record it when some ext
 * subscription on any shard, or a parked session, streams its topic; m->offset is its
 * offset (0: not recorded), which every shard's frames carry.
 */
void ext_record(struct gw *gw, struct cable_msg *m)
{
	struct ext_hub *xh = gw->ext->hub;

	m->offset = 0;
	pthread_mutex_lock(&xh->lock);
	xh->seq = m->seq;
	if (xh->history && interested(xh, m->topic, m->topic_len))
		cable_history_append(xh->history, m->topic, m->topic_len, m->payload,
		                     m->payload_len, m->retain, (long long)time(NULL), &m->offset);
	pthread_mutex_unlock(&xh->lock);
}

/* fanout.c: ext subscriptions of this shard started (on) or stopped streaming a filter. */
bool ext_interest(struct gw *gw, const char *filter, size_t len, bool on)
{
	struct ext_hub *xh = gw->ext->hub;
	bool ok = true;

	pthread_mutex_lock(&xh->lock);
	if (on)
		ok = interest_add(xh, filter, len);
	else
		interest_del(xh, filter, len);
	pthread_mutex_unlock(&xh->lock);
	if (!ok)
		gw_log(gw, MOSQ_LOG_ERR, "out of memory: a stream's history is not recorded");
	return ok;
}

struct cable_frame *ext_frame(struct gw *gw, struct sub *sub, const char *value, size_t len,
                              const struct cable_msg *m, uint64_t offset)
{
	return cable_proto_message_ext(sub->entry.ident->json, sub->entry.ident->json_len, value,
	                               len, m->topic, m->topic_len, gw->ext->hub->epoch, offset);
}

/* ---- Timers ------------------------------------------------------------------------- */

/* Shard 0, every ping: history age, parked sessions' TTL. */
static void expire_shared(struct gw *gw)
{
	struct ext_hub *xh = gw->ext->hub;
	long long now = mono_seconds();
	struct resume *r, *gone = NULL;

	pthread_mutex_lock(&xh->lock);
	if (xh->history)
		cable_history_expire(xh->history, (long long)time(NULL));
	while ((r = cable_heap_peek(&xh->parked)) != NULL && r->expires <= now) {
		cable_heap_pop(&xh->parked);
		HASH_DELETE(hh, xh->by_sid, r);
		resume_unpark(xh, r);
		r->hh.next = gone; /* out of the table: its handle links the ones to free */
		gone = r;
		gw->ext->c.parked_expired++;
	}
	pthread_mutex_unlock(&xh->lock);
	while ((r = gone) != NULL) {
		gone = r->hh.next;
		resume_free(r);
	}
}

/* Every ping: pong timeouts, forgotten holds, covers the shard has caught up with. */
void ext_tick(struct gw *gw)
{
	struct ext_gw *x = gw->ext;
	long long now = mono_seconds();
	struct session *s;
	struct sub *sub, *tmp;

	if (gw->shard == 0)
		expire_shared(gw);
	for (s = gw->sess.list; s; s = s->next) {
		if (s->ext == NULL || !s->active || s->closing)
			continue;
		if (gw->cfg.pong_timeout &&
		    now - s->ext->last_rx >
		            (long long)(gw->cfg.ping_interval + gw->cfg.pong_timeout)) {
			x->c.no_pong++;
			gw_log(gw, MOSQ_LOG_INFO,
			       "connection %s (%s) closed: nothing received for %lld s "
			       "(plugin_opt_pong_timeout)",
			       s->sid, s->peer, now - s->ext->last_rx);
			session_close(s, CABLE_DISCONNECT_NO_PONG, true, CLOSE_NORMAL);
			continue;
		}
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			if (sub->held == NULL)
				continue;
			if (sub->held->holding && now - sub->held->since >= HOLD_MAX_SECONDS)
				release_hold(s, sub, NULL);
			else if (!sub->held->holding && sub->held->upto <= gw->index.last_seq)
				held_free(sub);
		}
	}
}

/* ---- Metrics ------------------------------------------------------------------------ */

void ext_counters_add(const struct gw *gw, struct ext_counters *sum)
{
	const struct ext_counters *c;

	if (gw->ext == NULL)
		return;
	c = &gw->ext->c;
	sum->restored += c->restored;
	sum->restore_failed += c->restore_failed;
	sum->parked += c->parked;
	sum->parked_expired += c->parked_expired;
	sum->history_confirmed += c->history_confirmed;
	sum->history_rejected += c->history_rejected;
	sum->replayed += c->replayed;
	sum->no_pong += c->no_pong;
	sum->skipped += c->skipped;
}

void ext_gauges(struct gw_hub *hub, struct ext_gauges *out)
{
	struct ext_hub *xh = hub->ext;
	struct cable_history_stats st = {0};

	memset(out, 0, sizeof(*out));
	if (xh == NULL)
		return;
	pthread_mutex_lock(&xh->lock);
	if (xh->history)
		cable_history_stats(xh->history, &st);
	out->restorable = xh->parked.n;
	pthread_mutex_unlock(&xh->lock);
	out->streams = st.streams;
	out->messages = st.entries;
	out->bytes = st.bytes;
	out->evicted = st.evicted;
}

size_t ext_metrics_format(const struct ext_counters *c, const struct ext_gauges *g, char *buf,
                          size_t len)
{
	int n = snprintf(
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
	        g->streams, g->messages, g->bytes, (unsigned long long)g->evicted,
	        (unsigned long long)c->replayed, (unsigned long long)c->history_confirmed,
	        (unsigned long long)c->history_rejected, g->restorable,
	        (unsigned long long)c->restored, (unsigned long long)c->restore_failed,
	        (unsigned long long)c->no_pong);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len;
}

size_t ext_metrics(struct gw *gw, char *buf, size_t len)
{
	struct ext_counters c = {0};
	struct ext_gauges g;

	ext_counters_add(gw, &c);
	ext_gauges(gw->hub, &g);
	return ext_metrics_format(&c, &g, buf, len);
}

uint64_t ext_skipped(const struct gw *gw)
{
	return gw->ext ? gw->ext->c.skipped : 0;
}
