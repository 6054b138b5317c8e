/*
 * Presence and whisper (AnyCable's, docs/protocol.md and docs/channels.md): rooms, the
 * presence registry's timers, the watcher-count mirror, over every gateway shard.
 * room.c alone writes struct gw_rooms and struct room_hub (room.h) and the room members
 * of struct sub. Each function says which thread runs it; "gateway thread" means the
 * shard's own (gw's).
 *
 * DESIGN
 * A room is the identity of a channel subscription: the channel, its bound streams
 * and its presence/whisper settings (what `room_key` writes). Two browsers whose
 * identifiers differ only in key order, or in keys the channel ignores, bind the same
 * streams and so share a room; two users of a channel whose streams contain {user} do
 * not. Only subscriptions of channels with presence or whisper have a room.
 *
 * Shards. A room exists twice over: each shard that has subscriptions in it keeps a
 * `struct room` (its subscriptions, its thread only), and the shards share one
 * `struct shared_room` in the room hub (hub->rooms, under room_hub.lock): who is present
 * (the registry, cable_presence.h, whose keys are subscriptions: unique over the
 * process), which shards have subscribers in it (a bit each), the watcher count's
 * state. The shared room lives while a shard has the room, a record lingers, or its
 * count waits to be published.
 *
 * Events. A presence event (join, leave) or a whisper is made once, where it happens,
 * under the lock, and put in the box of every shard that has the room (room_hub.box):
 * in the order the registry changed, the same for every shard. Each shard then
 * delivers its box to its own subscriptions of the room: the shard that made the
 * events at once (after letting go of the lock), the others when woken (a shard_call,
 * one at a time per box: `poked`). A box is bounded (BOX_MAX_BYTES): over it, that
 * shard's browsers miss the event (counted in events_dropped). Frames are made by the
 * shard that sends them (frames are per shard); events carry the JSON text.
 *
 * Presence frames go to the subscriptions of ext connections and to those that showed
 * they speak presence (a join, leave or presence command on them): the stock Rails
 * client would hand {"type":"presence",...} to received(data). Whispers go to every
 * subscription of the room but the sender's connection.
 *
 * TTL. The shard where a connection dropped arms its own timer at that record's
 * deadline (presence_due); when it fires it expires every record that is due (any
 * shard's) and re-arms at the registry's next deadline. So every deadline is watched
 * by the shard that made it, without calls between shards; a timer that finds nothing
 * due (someone else expired it, or the user came back) just re-arms or stops.
 *
 * The watcher-count mirror publishes the room's presence total (over every shard),
 * retained, to the channel's watchers_topic through the broker thread (to_broker, as a
 * browser's publish). It runs on shard 0 alone, so publishes leave in the order the
 * counts were read: a shard that changes a count queues the room (room_hub.mirror_queue)
 * and, when shard 0's mirror is idle, wakes it (one call at a time: mirror_running).
 * Changes are coalesced: at most one publish per room per MIRROR_MS, and none when the
 * count is what was published last.
 *
 * Reloads. Every shard re-binds its own subscriptions (room_rebind_all). With one
 * shard, the leaves of a reload are announced while the old room still has all its
 * subscriptions; over shards, each shard announces its leaves, then tells every other
 * shard so through their boxes (after those leaves), and moves its subscriptions to
 * their new rooms only once every other shard has told it the same: every leave of the
 * reload reaches every subscription of the old room.
 *
 * Locks: room_hub.lock is a leaf, held only to change or read the registry, the
 * shared rooms and the boxes. Nothing is sent, scheduled, logged or called on a shard
 * under it: what must follow is noted in gw->rooms (to_poke, drain_self, kick_mirror)
 * and done by hub_unlock once it is let go.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "cable_clock.h"
#include "cable_presence.h"
#include "cable_proto.h"
#include "gw.h"

#define MIRROR_MS      1000       /* at most one watcher-count publish per room per second */
#define WHISPER_LOG_MS 10000      /* at most one log line about dropped whispers per 10 s */
#define BOX_MAX_BYTES  (8u << 20) /* room events waiting for one shard */
#define MIRROR_BATCH   64         /* counts published per run of the mirror (more: next run) */

#define SHARD_BIT(i) ((uint64_t)1 << (i))

_Static_assert(CABLE_MAX_THREADS <= 64, "a bit per shard in shared_room.shards");

enum event_kind {
	EVENT_PRESENCE, /* a presence frame's message to the room */
	EVENT_WHISPER,  /* a whisper to the room, but the sender's connection */
	EVENT_REBIND,   /* the origin announced the leaves of its reload number `gen` */
};

/* An event for the shards that have a room; in one box per shard, freed by the last. */
struct room_event {
	atomic_uint refs;
	enum event_kind kind;
	unsigned origin;              /* the shard that made it */
	const struct session *except; /* EVENT_WHISPER: the sender, on `origin` (compared only) */
	uint64_t gen;                 /* EVENT_REBIND */
	size_t key_len, len;
	char *value; /* the JSON text, after the room's key in data */
	char data[];
};

/* The events waiting for one shard, in the order they were made. */
struct box {
	struct room_event **evs;
	size_t n, cap, bytes;
	bool poked; /* a call to drain it is on its way to the shard */
};

/* A room over every shard. Under room_hub.lock, but for what is set at its creation. */
struct shared_room {
	UT_hash_handle hh;                /* room_hub.table, by key */
	uint64_t shards;                  /* bit i: shard i has the room (subscriptions in it) */
	struct cable_presence_room *pres; /* NULL: the channel has no presence (set at creation) */
	char *watchers_topic;             /* NULL: no mirror (set at creation) */
	long long mirror_sent;            /* count last published, -1 none */
	long long mirror_at;              /* when (ms) it was published (or tried) */
	long long mirror_count;           /* shard 0: the count it is publishing */
	struct shared_room *mirror_next;  /* in room_hub.mirror_queue while queued */
	bool mirror_queued, mirror_inflight, mirror_ok; /* the last two: shard 0's */
	size_t key_len;
	char key[];
};

struct room_hub {
	pthread_mutex_t lock; /* guards everything here */
	struct shared_room *table;
	struct cable_presence *presence;  /* the registry: records and their deadlines */
	size_t members;                   /* records over every room */
	struct shared_room *mirror_queue; /* rooms whose count waits to be published */
	bool mirror_running;              /* shard 0's mirror will run (armed or called) */
	unsigned n;
	struct box box[]; /* one per shard */
};

/* A room on one shard: its subscriptions there. */
struct room {
	UT_hash_handle hh; /* gw->rooms.table, by key */
	struct sub **subs; /* sub->room_slot is the index */
	size_t nsubs, cap;
	struct shared_room *shared; /* the same key; lives while this room does */
	size_t key_len;
	char key[];
};

static long long now_ms(void)
{
	return (long long)(cable_now_ns() / 1000000u);
}

/* The presence id of a connection: its user; with anonymous auth, the connection. */
static const char *presence_id(const struct session *s)
{
	return s->gw->cfg.anonymous ? s->sid : s->who.user;
}

/* ---- Keys ----------------------------------------------------------------------------- */

/* channel, streams, the watchers topic and the two switches, NUL-separated; malloc'd. */
static char *room_key(const struct cable_binding *b, size_t *len)
{
	const struct cable_presence_config *pc = cable_binding_presence(b);
	const char *parts[3 + 1];
	size_t i, n, total = 3, np = 0;
	char *key, *p;

	parts[np++] = cable_binding_channel(b);
	parts[np++] = pc && pc->watchers_topic ? pc->watchers_topic : "";
	n = cable_binding_stream_count(b);
	for (i = 0; i < np; i++)
		total += strlen(parts[i]) + 1;
	for (i = 0; i < n; i++)
		total += strlen(cable_binding_stream(b, i)) + 1;
	key = malloc(total);
	if (key == NULL)
		return NULL;
	p = key;
	*p++ = pc ? 'P' : '-';
	*p++ = cable_binding_whisper(b) ? 'W' : '-';
	for (i = 0; i < np; i++) {
		memcpy(p, parts[i], strlen(parts[i]) + 1);
		p += strlen(parts[i]) + 1;
	}
	for (i = 0; i < n; i++) {
		memcpy(p, cable_binding_stream(b, i), strlen(cable_binding_stream(b, i)) + 1);
		p += strlen(cable_binding_stream(b, i)) + 1;
	}
	*p++ = '\0';
	*len = (size_t)(p - key);
	return key;
}

/* ---- The lock and the boxes ----------------------------------------------------------- */

static void drain(struct gw *gw);
static void mirror_arm(struct gw *gw, long long delay_ms);

static void hub_lock(struct gw *gw)
{
	pthread_mutex_lock(&gw->hub->rooms->lock);
}

/* Gateway thread of the shard called: deliver its box. */
static void drain_call(struct gw *gw, void *arg)
{
	(void)arg;
	drain(gw);
}

/* Shard 0 (called by another shard): a count is queued and the mirror was idle. */
static void mirror_call(struct gw *gw, void *arg)
{
	(void)arg;
	mirror_arm(gw, 0);
}

/*
 * Gateway thread: let go of the lock, then do what the critical section noted: wake
 * the shards that have new events, wake shard 0's mirror, deliver this shard's events.
 */
static void hub_unlock(struct gw *gw)
{
	struct room_hub *h = gw->hub->rooms;
	struct gw_rooms *gr = &gw->rooms;
	uint64_t poke = gr->to_poke;
	bool kick = gr->kick_mirror, self = gr->drain_self;
	unsigned i;

	gr->to_poke = 0;
	gr->kick_mirror = gr->drain_self = false;
	pthread_mutex_unlock(&h->lock);
	for (i = 0; poke; i++, poke >>= 1) {
		if ((poke & 1) &&
		    shard_call(gw->hub->shards[i], drain_call, NULL, true) != CABLE_OK) {
			pthread_mutex_lock(&h->lock); /* stopping: the next event tries again */
			h->box[i].poked = false;
			pthread_mutex_unlock(&h->lock);
		}
	}
	if (kick && gw->shard == 0) {
		mirror_arm(gw, 0);
	} else if (kick && shard_call(gw->hub->shards[0], mirror_call, NULL, true) != CABLE_OK) {
		pthread_mutex_lock(&h->lock);
		h->mirror_running = false;
		pthread_mutex_unlock(&h->lock);
	}
	if (self)
		drain(gw);
}

/* A new event (refs set when posted); NULL when out of memory. */
static struct room_event *event_new(struct gw *gw, enum event_kind kind, const char *key,
                                    size_t key_len, const char *value, size_t len)
{
	struct room_event *ev = malloc(sizeof(*ev) + key_len + len + 1);

	if (ev == NULL)
		return NULL;
	ev->kind = kind;
	ev->origin = gw->shard;
	ev->except = NULL;
	ev->gen = 0;
	ev->key_len = key_len;
	ev->len = len;
	memcpy(ev->data, key, key_len);
	ev->value = ev->data + key_len;
	memcpy(ev->value, value, len);
	ev->value[len] = '\0';
	return ev;
}

static void event_put(struct room_event *ev)
{
	if (atomic_fetch_sub(&ev->refs, 1) == 1)
		free(ev);
}

/*
 * Under the lock: put ev (owned from here) in the boxes of `shards`. A box over
 * BOX_MAX_BYTES refuses room events (that shard's browsers miss it, counted here), never
 * reload notices.
 */
static void post(struct gw *gw, uint64_t shards, struct room_event *ev)
{
	struct room_hub *h = gw->hub->rooms;
	size_t size = sizeof(*ev) + ev->key_len + ev->len;
	struct room_event **grown;
	unsigned i, refs = 0;
	struct box *b;

	for (i = 0; i < h->n; i++) {
		if (!(shards & SHARD_BIT(i)))
			continue;
		b = &h->box[i];
		if (ev->kind != EVENT_REBIND && b->bytes + size > BOX_MAX_BYTES) {
			gw->rooms.events_dropped++;
			continue;
		}
		grown = cable_grow(b->evs, b->n, &b->cap, sizeof(*grown), 16);
		if (grown == NULL) {
			gw->rooms.events_dropped++;
			continue;
		}
		b->evs = grown;
		b->evs[b->n++] = ev;
		b->bytes += size;
		refs++;
		if (i == gw->shard) {
			gw->rooms.drain_self = true;
		} else if (!b->poked) {
			b->poked = true;
			gw->rooms.to_poke |= SHARD_BIT(i);
		}
	}
	atomic_init(&ev->refs, refs);
	if (refs == 0)
		free(ev);
}

/* ---- Sending -------------------------------------------------------------------------- */

enum frame_kind { FRAME_PRESENCE, FRAME_MESSAGE };

/*
 * Send value to this shard's subscriptions of the room: presence frames to those that
 * speak presence, whispers to all but the sender's connection. One frame per distinct
 * identifier in a row (usually all of them share one).
 */
static void room_send(struct room *r, enum frame_kind kind, const char *value, size_t len,
                      const struct session *except)
{
	struct cable_frame *f = NULL;
	struct ident *fid = NULL;
	struct sub *sub;
	size_t i;

	for (i = 0; i < r->nsubs; i++) {
		sub = r->subs[i];
		if (sub->session == except ||
		    (kind == FRAME_PRESENCE && !sub->presence_aware && !sub->session->ext))
			continue;
		if (sub->entry.ident != fid) {
			cable_frame_unref(f);
			fid = sub->entry.ident;
			f = kind == FRAME_PRESENCE
			            ? cable_proto_presence(fid->json, fid->json_len, value, len)
			            : cable_proto_message(fid->json, fid->json_len, value, len);
		}
		if (f)
			session_send(sub->session, f);
	}
	cable_frame_unref(f);
}

static void send_value(struct session *s, struct sub *sub, char *value, size_t len)
{
	struct cable_frame *f;

	if (value == NULL)
		return;
	f = cable_proto_presence(sub->entry.ident->json, sub->entry.ident->json_len, value, len);
	if (f)
		session_send(s, f);
	cable_frame_unref(f);
	free(value);
}

/* The presence "error" answer (always answered, or the client's info() would hang). */
static void send_error(struct session *s, struct sub *sub)
{
	char *v = NULL;
	size_t len = 0;

	s->gw->rooms.presence_refused++;
	if (cable_presence_error_value(&v, &len) == CABLE_OK)
		send_value(s, sub, v, len);
}

static void rebind_try(struct gw *gw);

/* Gateway thread: one event from the box, to this shard's subscriptions of its room. */
static void deliver(struct gw *gw, const struct room_event *ev)
{
	struct room *r;

	if (ev->kind == EVENT_REBIND) {
		gw->rooms.rebind_seen[ev->origin] = ev->gen;
		rebind_try(gw);
		return;
	}
	HASH_FIND(hh, gw->rooms.table, ev->data, ev->key_len, r);
	if (r)
		room_send(r, ev->kind == EVENT_PRESENCE ? FRAME_PRESENCE : FRAME_MESSAGE, ev->value,
		          ev->len, ev->origin == gw->shard ? ev->except : NULL);
}

/*
 * Gateway thread (or, stopping, the broker thread for a leftover call): deliver this
 * shard's box in order. What a delivery adds (a reload's moves announce leaves) is taken
 * by the same loop, after the rest: a nested call returns at once.
 */
static void drain(struct gw *gw)
{
	struct room_hub *h = gw->hub->rooms;
	struct box *b = &h->box[gw->shard];
	struct room_event **evs;
	size_t n, i;

	if (gw->rooms.draining)
		return;
	gw->rooms.draining = true;
	for (;;) {
		pthread_mutex_lock(&h->lock);
		evs = b->evs;
		n = b->n;
		b->evs = NULL;
		b->n = b->cap = b->bytes = 0;
		b->poked = false;
		pthread_mutex_unlock(&h->lock);
		for (i = 0; i < n; i++) {
			deliver(gw, evs[i]);
			event_put(evs[i]);
		}
		free(evs);
		if (n == 0)
			break;
	}
	gw->rooms.draining = false;
}

/* ---- Shared rooms and the watcher-count mirror ----------------------------------------- */

/* Under the lock: the room's count may have changed: publish it soon (coalesced). */
static void mirror_touch(struct gw *gw, struct shared_room *sr)
{
	struct room_hub *h = gw->hub->rooms;

	if (sr->watchers_topic == NULL || sr->mirror_queued || gw->finished)
		return;
	sr->mirror_queued = true;
	sr->mirror_next = h->mirror_queue;
	h->mirror_queue = sr;
	if (!h->mirror_running) {
		h->mirror_running = true;
		gw->rooms.kick_mirror = true;
	}
}

static size_t shared_total(const struct shared_room *sr)
{
	return sr->pres ? cable_presence_total(sr->pres) : 0;
}

static void shared_free(struct room_hub *h, struct shared_room *sr)
{
	HASH_DELETE(hh, h->table, sr);
	cable_presence_room_free(sr->pres);
	free(sr->watchers_topic);
	free(sr);
}

/*
 * Under the lock: free sr if nothing holds it any more: no shard has it, nobody is
 * present, and no count waits. The last word goes first: nobody is watching (if that
 * is not what devices already see).
 */
static void shared_free_if_unused(struct gw *gw, struct shared_room *sr)
{
	if (sr->shards || shared_total(sr) || sr->mirror_queued)
		return;
	if (sr->watchers_topic && sr->mirror_sent > 0 && !gw->finished) {
		mirror_touch(gw, sr);
		return;
	}
	shared_free(gw->hub->rooms, sr);
}

/* Under the lock: the shared room for key, made if new; NULL when out of memory. */
static struct shared_room *shared_get(struct gw *gw, const char *key, size_t len,
                                      const struct cable_presence_config *pc)
{
	struct room_hub *h = gw->hub->rooms;
	struct shared_room *sr;
	bool added;

	HASH_FIND(hh, h->table, key, len, sr);
	if (sr)
		return sr;
	sr = calloc(1, sizeof(*sr) + len);
	if (sr == NULL)
		return NULL;
	memcpy(sr->key, key, len);
	sr->key_len = len;
	sr->mirror_sent = -1;
	sr->mirror_at = now_ms() - MIRROR_MS;
	if ((pc && (sr->pres = cable_presence_room_new(h->presence, sr)) == NULL) ||
	    (pc && pc->watchers_topic &&
	     (sr->watchers_topic = strdup(pc->watchers_topic)) == NULL)) {
		cable_presence_room_free(sr->pres);
		free(sr);
		return NULL;
	}
	GW_HASH_ADD(h->table, sr->key, sr->key_len, sr, added);
	if (!added) {
		cable_presence_room_free(sr->pres);
		free(sr->watchers_topic);
		free(sr);
		return NULL;
	}
	/* Devices learn the count (0) as soon as someone could watch. */
	mirror_touch(gw, sr);
	return sr;
}

/* Shard 0: publish the count to the watchers topic; false when the broker queue is full. */
static bool mirror_publish(struct gw *gw, const char *topic, long long count)
{
	struct cable_msg *m;
	char text[32];

	if (gw->finished)
		return false; /* shutting down: the broker publishes nothing more of ours */
	snprintf(text, sizeof(text), "%lld", count);
	m = cable_msg_new(CABLE_MSG_PUBLISH, topic, strlen(topic), text, strlen(text));
	if (m == NULL)
		return false;
	m->retain = true;
	if (gw_push_to_broker(gw, m) != CABLE_OK) {
		cable_msg_free(m);
		return false;
	}
	gw->rooms.watchers_published++;
	return true;
}

static void mirror_fire(lws_sorted_usec_list_t *sul);

/* Shard 0: run mirror_fire in delay_ms, unless it is already due to run sooner. */
static void mirror_arm(struct gw *gw, long long delay_ms)
{
	long long now = now_ms();

	if (gw->finished)
		return;
	if (delay_ms < 0)
		delay_ms = 0;
	if (gw->rooms.mirror_due && gw->rooms.mirror_due <= now + delay_ms)
		return;
	gw->rooms.mirror_due = now + delay_ms;
	gw_schedule(gw, &gw->rooms.mirror_sul, mirror_fire,
	            (lws_usec_t)delay_ms * LWS_US_PER_MS + 1);
}

/*
 * Shard 0: publish the count of every queued room that has waited MIRROR_MS since its
 * last publish. The counts are read under the lock and published after it (queued rooms
 * are not freed meanwhile); a count that changed since, or a publish the full broker
 * queue refused, waits for the next second.
 */
static void mirror_fire(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, rooms.mirror_sul);
	struct room_hub *h = gw->hub->rooms;
	struct shared_room *batch[MIRROR_BATCH], **pp, *r;
	long long now = now_ms(), next = -1, wait;
	size_t nb = 0, i;

	gw->rooms.mirror_due = 0;
	pthread_mutex_lock(&h->lock);
	for (r = h->mirror_queue; r && nb < MIRROR_BATCH; r = r->mirror_next) {
		r->mirror_count = (long long)shared_total(r);
		if (r->mirror_at + MIRROR_MS <= now && r->mirror_count != r->mirror_sent) {
			r->mirror_inflight = true;
			batch[nb++] = r;
		}
	}
	pthread_mutex_unlock(&h->lock);
	for (i = 0; i < nb; i++)
		batch[i]->mirror_ok =
		        mirror_publish(gw, batch[i]->watchers_topic, batch[i]->mirror_count);
	pthread_mutex_lock(&h->lock);
	pp = &h->mirror_queue;
	while ((r = *pp) != NULL) {
		if (r->mirror_inflight) {
			r->mirror_inflight = false;
			r->mirror_at = now; /* published, or the broker queue is full: a second */
			if (r->mirror_ok)
				r->mirror_sent = r->mirror_count;
		}
		if ((long long)shared_total(r) == r->mirror_sent) {
			*pp = r->mirror_next;
			r->mirror_queued = false;
			shared_free_if_unused(gw, r);
			continue;
		}
		wait = r->mirror_at + MIRROR_MS - now;
		if (next < 0 || wait < next)
			next = wait;
		pp = &r->mirror_next;
	}
	if (h->mirror_queue == NULL)
		h->mirror_running = false;
	pthread_mutex_unlock(&h->lock);
	if (next >= 0)
		mirror_arm(gw, next);
}

/* ---- Presence ----------------------------------------------------------------------- */

/* Under the lock: a change in sr's presence, to every shard that has the room. */
static void announce(struct gw *gw, struct shared_room *sr, enum cable_presence_change ch,
                     const char *id, size_t id_len)
{
	struct room_hub *h = gw->hub->rooms;
	struct room_event *ev;
	char *v = NULL;
	size_t len = 0;
	int rc;

	if (ch == CABLE_PRESENCE_SAME)
		return;
	if (ch == CABLE_PRESENCE_JOINED) {
		gw->rooms.presence_joins++;
		h->members++;
		rc = cable_presence_join_value(sr->pres, id, id_len, &v, &len);
	} else {
		gw->rooms.presence_leaves++;
		h->members--;
		rc = cable_presence_leave_value(id, id_len, &v, &len);
	}
	gw->rooms.presence_members = h->members;
	if (rc == CABLE_OK &&
	    (ev = event_new(gw, EVENT_PRESENCE, sr->key, sr->key_len, v, len)) != NULL)
		post(gw, sr->shards, ev);
	free(v);
	mirror_touch(gw, sr);
}

static void presence_fire(lws_sorted_usec_list_t *sul);

/* Gateway thread: make this shard's presence timer fire by `at` (ms; 0: nothing). */
static void presence_arm(struct gw *gw, long long at)
{
	long long delay;

	if (gw->finished || at == 0 || (gw->rooms.presence_due && gw->rooms.presence_due <= at))
		return;
	gw->rooms.presence_due = at;
	delay = at - now_ms();
	gw_schedule(gw, &gw->rooms.presence_sul, presence_fire,
	            (lws_usec_t)(delay > 0 ? delay : 0) * LWS_US_PER_MS + 1);
}

/* Under the lock: an expired record (the user's connections all dropped a TTL ago). */
static void presence_gone(void *owner, const char *id, size_t id_len, void *arg)
{
	struct shared_room *sr = owner;
	struct gw *gw = arg;

	announce(gw, sr, CABLE_PRESENCE_LEFT, id, id_len);
	shared_free_if_unused(gw, sr);
}

/* Expire every record that is due (whichever shard's), then watch the next deadline. */
static void presence_fire(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, rooms.presence_sul);
	struct room_hub *h = gw->hub->rooms;
	long long next;

	gw->rooms.presence_due = 0;
	hub_lock(gw);
	cable_presence_expire(h->presence, now_ms(), presence_gone, gw);
	next = cable_presence_next_deadline(h->presence);
	hub_unlock(gw);
	presence_arm(gw, next);
}

size_t room_presence_members(struct gw *gw)
{
	size_t n;

	if (gw->hub->rooms == NULL)
		return 0;
	hub_lock(gw);
	n = gw->hub->rooms->members;
	pthread_mutex_unlock(&gw->hub->rooms->lock); /* nothing noted: no hub_unlock */
	return n;
}

/* ---- Attach and detach ---------------------------------------------------------------- */

/*
 * What a subscription may hold in rooms, for the subscription budgets (session.c): a
 * room and its key (which repeats the streams), a place in its list, and with presence
 * a record with the largest info the channel allows.
 */
size_t room_cost(const struct cable_binding *b)
{
	const struct cable_presence_config *pc = cable_binding_presence(b);
	size_t cost, i;

	if (pc == NULL && cable_binding_whisper(b) == NULL)
		return 0;
	cost = sizeof(struct room) + sizeof(struct shared_room) + sizeof(struct sub *) +
	       2 * strlen(cable_binding_channel(b)) + 64;
	for (i = 0; i < cable_binding_stream_count(b); i++)
		cost += 2 * (strlen(cable_binding_stream(b, i)) + 1);
	if (pc)
		cost += pc->info_max + 2 * (pc->watchers_topic ? strlen(pc->watchers_topic) : 0) +
		        256; /* the record, its id and connections, the watchers topic */
	return cost;
}

/* Gateway thread: this shard no longer has the room (its last subscription went). */
static void room_free(struct gw *gw, struct room *r)
{
	HASH_DELETE(hh, gw->rooms.table, r);
	hub_lock(gw);
	r->shared->shards &= ~SHARD_BIT(gw->shard);
	shared_free_if_unused(gw, r->shared);
	hub_unlock(gw);
	free(r->subs);
	free(r);
}

/* Gateway thread: this shard's room for key, made (with its shared room) if new. */
static struct room *room_get(struct gw *gw, const char *key, size_t len,
                             const struct cable_presence_config *pc)
{
	struct shared_room *sr;
	struct room *r;
	bool added;

	HASH_FIND(hh, gw->rooms.table, key, len, r);
	if (r)
		return r;
	r = calloc(1, sizeof(*r) + len);
	if (r == NULL)
		return NULL;
	memcpy(r->key, key, len);
	r->key_len = len;
	hub_lock(gw);
	sr = shared_get(gw, key, len, pc);
	if (sr)
		sr->shards |= SHARD_BIT(gw->shard);
	hub_unlock(gw);
	if (sr == NULL) {
		free(r);
		return NULL;
	}
	r->shared = sr;
	GW_HASH_ADD(gw->rooms.table, r->key, r->key_len, r, added);
	if (!added) {
		hub_lock(gw);
		sr->shards &= ~SHARD_BIT(gw->shard);
		shared_free_if_unused(gw, sr);
		hub_unlock(gw);
		free(r);
		return NULL;
	}
	return r;
}

int room_attach(struct gw *gw, struct sub *sub)
{
	const struct cable_presence_config *pc = cable_binding_presence(sub->binding);
	struct sub **grown;
	struct room *r;
	size_t len;
	char *key;

	if (pc == NULL && cable_binding_whisper(sub->binding) == NULL)
		return CABLE_OK;
	key = room_key(sub->binding, &len);
	if (key == NULL)
		return CABLE_ENOMEM;
	r = room_get(gw, key, len, pc);
	free(key);
	if (r == NULL)
		return CABLE_ENOMEM;
	grown = cable_grow(r->subs, r->nsubs, &r->cap, sizeof(*grown), 4);
	if (grown == NULL) {
		if (r->nsubs == 0)
			room_free(gw, r);
		return CABLE_ENOMEM;
	}
	r->subs = grown;
	sub->room = r;
	sub->room_slot = (uint32_t)r->nsubs;
	r->subs[r->nsubs++] = sub;
	return CABLE_OK;
}

/*
 * The sub leaves presence in room r: now (explicitly), or after the TTL (its connection
 * dropped). This shard watches the deadline it made.
 */
static void presence_leave(struct gw *gw, struct room *r, struct sub *sub, bool dropped)
{
	const struct cable_presence_config *pc = cable_binding_presence(sub->binding);
	const char *id = presence_id(sub->session);
	enum cable_presence_change ch = CABLE_PRESENCE_SAME;
	long long until = 0;

	if (!sub->joined)
		return;
	sub->joined = false;
	if (dropped && pc && pc->ttl)
		until = now_ms() + (long long)pc->ttl * 1000;
	hub_lock(gw);
	cable_presence_leave(r->shared->pres, (uintptr_t)sub, id, strlen(id), until, &ch);
	announce(gw, r->shared, ch, id, strlen(id));
	hub_unlock(gw);
	if (until)
		presence_arm(gw, until);
}

void room_detach(struct gw *gw, struct sub *sub, bool dropped)
{
	struct room *r = sub->room;
	size_t slot = sub->room_slot;

	if (r == NULL)
		return;
	/* Out of the room first: a closing connection is sent nothing (not even its leave). */
	r->subs[slot] = r->subs[--r->nsubs];
	r->subs[slot]->room_slot = (uint32_t)slot;
	sub->room = NULL;
	presence_leave(gw, r, sub, dropped);
	if (r->nsubs == 0)
		room_free(gw, r);
}

/* Does the sub's (new) binding belong in another room than the one it is in? */
static bool room_moves(const struct sub *sub)
{
	size_t len;
	char *key;
	bool same;

	if (sub->room == NULL)
		return cable_binding_presence(sub->binding) || cable_binding_whisper(sub->binding);
	key = room_key(sub->binding, &len);
	if (key == NULL)
		return true; /* out of memory: detach (room_attach will fail and say so) */
	same = len == sub->room->key_len && memcmp(key, sub->room->key, len) == 0;
	free(key);
	return !same;
}

/* Move every subscription whose room changed with the rules to its new room. */
static void rebind_move(struct gw *gw)
{
	struct session *s;
	struct sub *sub, *tmp;

	for (s = gw->sess.list; s; s = s->next) {
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			if (!room_moves(sub))
				continue;
			room_detach(gw, sub, false);
			if (room_attach(gw, sub) != CABLE_OK)
				gw_log(gw, MOSQ_LOG_ERR,
				       "connection %s: out of memory; presence and whisper are off "
				       "for a subscription after the reload",
				       s->sid);
		}
	}
}

/* The moves wait until every other shard has announced the leaves of this reload. */
static void rebind_try(struct gw *gw)
{
	unsigned i;

	if (!gw->rooms.rebind_pending)
		return;
	for (i = 0; i < gw->hub->n; i++)
		if (i != gw->shard && gw->rooms.rebind_seen[i] < gw->rooms.rebind_gen)
			return;
	gw->rooms.rebind_pending = false;
	rebind_move(gw);
}

/*
 * After a reload, once every subscription has its new binding: those whose room changed
 * move. First every leave is announced while the old room still has all its
 * subscriptions, on every shard (the order of the sessions and of the shards decides
 * nothing); then the subscriptions move (rebind_try).
 */
void room_rebind_all(struct gw *gw)
{
	struct room_event *ev;
	struct session *s;
	struct sub *sub, *tmp;

	for (s = gw->sess.list; s; s = s->next) {
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			if (sub->room && room_moves(sub))
				presence_leave(gw, sub->room, sub, false);
		}
	}
	gw->rooms.rebind_gen++;
	gw->rooms.rebind_pending = true;
	if (gw->hub->n > 1) {
		ev = event_new(gw, EVENT_REBIND, "", 0, "", 0);
		if (ev == NULL) { /* the others would wait for this shard forever */
			gw_log(gw, MOSQ_LOG_ERR,
			       "reload: out of memory; presence rooms may not "
			       "follow the new rules");
		} else {
			ev->gen = gw->rooms.rebind_gen;
			hub_lock(gw);
			post(gw, ~SHARD_BIT(gw->shard), ev);
			hub_unlock(gw);
		}
	}
	rebind_try(gw);
}

/* ---- Commands ------------------------------------------------------------------------- */

/* join, or a subscribe carrying "presence" (a client re-joining after a reconnect). */
static void do_join(struct session *s, struct sub *sub, const json_t *presence)
{
	const struct cable_presence_config *pc = cable_binding_presence(sub->binding);
	const char *id = presence_id(s), *asked = NULL;
	enum cable_presence_change ch;
	json_t *jid = NULL, *info = NULL;
	char *text = NULL;
	size_t text_len = 0;
	int rc;

	sub->presence_aware = true;
	if (pc == NULL || sub->room == NULL || sub->room->shared->pres == NULL || id == NULL) {
		send_error(s, sub);
		return;
	}
	if (presence) {
		jid = json_object_get(presence, "id");
		info = json_object_get(presence, "info");
	}
	/*
	 * The presence id is the authenticated user: a page cannot appear as somebody else.
	 * A different id is refused rather than replaced, so the page learns at once that
	 * its idea of "me" is not the server's (AnyCable's client keeps the ids it is told).
	 */
	if (json_is_string(jid))
		asked = json_string_value(jid);
	if ((jid && !json_is_string(jid) && !json_is_null(jid)) ||
	    (asked && strcmp(asked, id) != 0)) {
		gw_log(s->gw, MOSQ_LOG_INFO,
		       "connection %s (user %s): presence join refused: the id is not the "
		       "connection's user",
		       s->sid, CABLE_LOG_STR(s->who.user));
		send_error(s, sub);
		return;
	}
	if (info && !json_is_null(info)) {
		text_len = json_dumpb(info, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text_len > pc->info_max) {
			gw_log(s->gw, MOSQ_LOG_INFO,
			       "connection %s (user %s): presence join refused: info of %zu bytes "
			       "(the channel allows %zu)",
			       s->sid, CABLE_LOG_STR(s->who.user), text_len, pc->info_max);
			send_error(s, sub);
			return;
		}
		text = malloc(text_len + 1);
		if (text == NULL ||
		    json_dumpb(info, text, text_len, JSON_COMPACT | JSON_ENCODE_ANY) != text_len) {
			free(text);
			send_error(s, sub);
			return;
		}
	}
	hub_lock(s->gw);
	rc = cable_presence_join(sub->room->shared->pres, (uintptr_t)sub, id, strlen(id), text,
	                         text_len, &ch);
	if (rc == CABLE_OK)
		announce(s->gw, sub->room->shared, ch, id, strlen(id));
	hub_unlock(s->gw);
	free(text);
	if (rc != CABLE_OK) {
		send_error(s, sub);
		return;
	}
	sub->joined = true;
}

static void do_info(struct session *s, struct sub *sub, const json_t *data)
{
	char *v = NULL;
	size_t len = 0;
	int rc;

	sub->presence_aware = true;
	if (sub->room == NULL || sub->room->shared->pres == NULL) {
		send_error(s, sub);
		return;
	}
	drain(s->gw); /* the events made before the answer go before it */
	hub_lock(s->gw);
	rc = cable_presence_info_value(sub->room->shared->pres,
	                               !json_is_false(json_object_get(data, "return_records")), &v,
	                               &len);
	hub_unlock(s->gw);
	if (rc != CABLE_OK) {
		send_error(s, sub);
		return;
	}
	send_value(s, sub, v, len);
}

/* Is this whisper within the connection's token bucket? Takes a token if so. */
static bool whisper_allowed(struct session *s, const struct cable_whisper_config *wc)
{
	long long now = now_ms();
	double tokens = s->whisper_tokens;

	if (s->whisper_ms == 0)
		tokens = wc->burst;
	else
		tokens += (double)(now - s->whisper_ms) * wc->rate / 1000.0;
	if (tokens > wc->burst)
		tokens = wc->burst;
	s->whisper_ms = now;
	if (tokens < 1.0) {
		s->whisper_tokens = (float)tokens;
		return false;
	}
	s->whisper_tokens = (float)(tokens - 1.0);
	return true;
}

static void whisper_dropped(struct session *s, uint64_t *counter, const char *why)
{
	struct gw *gw = s->gw;
	long long now = now_ms();

	(*counter)++;
	gw->rooms.whispers_unlogged++;
	if (now - gw->rooms.whisper_logged_at < WHISPER_LOG_MS)
		return;
	gw_log(gw, MOSQ_LOG_NOTICE,
	       "whispers dropped: %llu in the last %d s (latest: connection %s, user %s, %s; see "
	       "cable_whispers_dropped_total)",
	       (unsigned long long)gw->rooms.whispers_unlogged, WHISPER_LOG_MS / 1000, s->sid,
	       CABLE_LOG_STR(s->who.user), why);
	gw->rooms.whispers_unlogged = 0;
	gw->rooms.whisper_logged_at = now;
}

static void do_whisper(struct session *s, struct sub *sub, const json_t *data)
{
	const struct cable_whisper_config *wc = cable_binding_whisper(sub->binding);
	struct room_event *ev;
	struct gw *gw = s->gw;
	size_t len;
	char *text;

	if (wc == NULL || sub->room == NULL) {
		/* As AnyCable: a channel without whisper ignores it. */
		whisper_dropped(s, &gw->rooms.whispers_disabled, "whisper is off for the channel");
		return;
	}
	len = json_dumpb(data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (len == 0 || len > wc->max_bytes) {
		whisper_dropped(s, &gw->rooms.whispers_too_large, "too large");
		return;
	}
	if (!whisper_allowed(s, wc)) {
		whisper_dropped(s, &gw->rooms.whispers_rate_limited, "over the rate");
		return;
	}
	text = malloc(len + 1);
	if (text == NULL || json_dumpb(data, text, len, JSON_COMPACT | JSON_ENCODE_ANY) != len) {
		free(text);
		return;
	}
	ev = event_new(gw, EVENT_WHISPER, sub->room->key, sub->room->key_len, text, len);
	free(text);
	if (ev == NULL)
		return;
	ev->except = s;
	gw->rooms.whispers++;
	hub_lock(gw);
	post(gw, sub->room->shared->shards, ev);
	hub_unlock(gw);
}

void room_command(struct session *s, struct sub *sub, const struct cable_cmd *cmd)
{
	switch (cmd->kind) {
	case CABLE_CMD_SUBSCRIBE:
		if (cmd->presence)
			do_join(s, sub, cmd->presence);
		break;
	case CABLE_CMD_JOIN:
		do_join(s, sub, cmd->presence);
		break;
	case CABLE_CMD_LEAVE:
		sub->presence_aware = true;
		if (sub->room)
			presence_leave(s->gw, sub->room, sub, false);
		break;
	case CABLE_CMD_PRESENCE:
		do_info(s, sub, cmd->value);
		break;
	case CABLE_CMD_WHISPER:
		do_whisper(s, sub, cmd->value);
		break;
	default:
		break;
	}
}

/* ---- Start and release ---------------------------------------------------------------- */

int room_start(struct gw *gw)
{
	struct gw_hub *hub = gw->hub;
	struct room_hub *h;

	if (gw->shard != 0)
		return CABLE_OK;
	h = calloc(1, sizeof(*h) + hub->n * sizeof(h->box[0]));
	if (h == NULL)
		return CABLE_ENOMEM;
	h->n = hub->n;
	h->presence = cable_presence_new();
	if (h->presence == NULL || pthread_mutex_init(&h->lock, NULL) != 0) {
		cable_presence_free(h->presence);
		free(h);
		return CABLE_ENOMEM;
	}
	hub->rooms = h;
	return CABLE_OK;
}

void room_release(struct gw *gw)
{
	struct room_hub *h = gw->hub->rooms;
	struct shared_room *sr, *stmp;
	struct room *r, *tmp;
	unsigned i;
	size_t j;

	/* Every session is gone; rooms' shared halves are shard 0's to free, below. */
	HASH_ITER(hh, gw->rooms.table, r, tmp)
	{
		HASH_DELETE(hh, gw->rooms.table, r);
		free(r->subs);
		free(r);
	}
	if (gw->shard != 0 || h == NULL)
		return;
	for (i = 0; i < h->n; i++) {
		for (j = 0; j < h->box[i].n; j++)
			event_put(h->box[i].evs[j]);
		free(h->box[i].evs);
	}
	HASH_ITER(hh, h->table, sr, stmp)
	{
		shared_free(h, sr);
	}
	cable_presence_free(h->presence);
	pthread_mutex_destroy(&h->lock);
	free(h);
	gw->hub->rooms = NULL;
}
