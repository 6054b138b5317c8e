/*
 * Presence and whisper (AnyCable's, docs/protocol.md and docs/channels.md): rooms, the
 * presence registry's timer, the watcher-count mirror. Gateway thread only. room.c
 * alone writes struct gw_rooms (room.h) and the room members of struct sub.
 *
 * DESIGN
 * A room is the identity of a channel subscription: the channel, its bound streams
 * and its presence/whisper settings (what `room_key` writes). Two browsers whose
 * identifiers differ only in key order, or in keys the channel ignores, bind the same
 * streams and so share a room; two users of a channel whose streams contain {user} do
 * not. Only subscriptions of channels with presence or whisper have a room. A room
 * lives while it has subscriptions or presence records (a dropped user lingers for the
 * channel's TTL after the last subscription went).
 *
 * The registry (cable_presence.h) keeps who is present; the gateway keeps one timer at
 * its next deadline (presence_sul), as token expiry does. Presence frames go to the
 * subscriptions of ext connections and to those that showed they speak presence (a join,
 * leave or presence command on them): the stock Rails client would hand
 * {"type":"presence",...} to received(data).
 *
 * The watcher-count mirror publishes the room's presence total, retained, to the
 * channel's watchers_topic through the broker thread (to_broker, as a browser's
 * publish). Changes are coalesced: at most one publish per room per MIRROR_MS, and
 * none when the count is what was published last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "cable_clock.h"
#include "cable_presence.h"
#include "cable_proto.h"
#include "gw.h"

#define MIRROR_MS      1000  /* at most one watcher-count publish per room per second */
#define WHISPER_LOG_MS 10000 /* at most one log line about dropped whispers per 10 s */

struct room {
	UT_hash_handle hh; /* gw->rooms.table, by key */
	struct sub **subs; /* sub->room_slot is the index */
	size_t nsubs, cap;
	struct cable_presence_room *pres; /* NULL: the channel has no presence */
	char *watchers_topic;             /* NULL: no mirror */
	long long mirror_sent;            /* count last published, -1 none */
	long long mirror_at;              /* when (ms) */
	struct room *mirror_next;         /* in gw->rooms.mirror_queue while queued */
	bool mirror_queued;
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

/* ---- Keys and lifetime -------------------------------------------------------------- */

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

static void mirror_unqueue(struct gw *gw, struct room *r)
{
	struct room **pp;

	if (!r->mirror_queued)
		return;
	for (pp = &gw->rooms.mirror_queue; *pp; pp = &(*pp)->mirror_next) {
		if (*pp == r) {
			*pp = r->mirror_next;
			break;
		}
	}
	r->mirror_queued = false;
}

/* Publish the count to the watchers topic; false when the broker queue is full. */
static bool mirror_publish(struct gw *gw, struct room *r, long long count)
{
	struct cable_msg *m;
	char text[32];

	if (gw->finished)
		return false; /* shutting down: the broker publishes nothing more of ours */
	snprintf(text, sizeof(text), "%lld", count);
	m = cable_msg_new(CABLE_MSG_PUBLISH, r->watchers_topic, strlen(r->watchers_topic), text,
	                  strlen(text));
	if (m == NULL)
		return false;
	m->retain = true;
	if (gw_push_to_broker(gw, m) != CABLE_OK) {
		cable_msg_free(m);
		return false;
	}
	gw->rooms.watchers_published++;
	r->mirror_sent = count;
	r->mirror_at = now_ms();
	return true;
}

static void room_free(struct gw *gw, struct room *r)
{
	mirror_unqueue(gw, r);
	/* The last word: nobody is watching (if that is not what devices already see). */
	if (r->watchers_topic && r->mirror_sent > 0 && !mirror_publish(gw, r, 0) && !gw->finished)
		gw_log(gw, MOSQ_LOG_WARNING, "watcher count for '%s' not published: queue full",
		       CABLE_LOG_STR(r->watchers_topic));
	HASH_DELETE(hh, gw->rooms.table, r);
	cable_presence_room_free(r->pres);
	free(r->watchers_topic);
	free(r->subs);
	free(r);
}

static void room_free_if_empty(struct gw *gw, struct room *r)
{
	if (r->nsubs == 0 && (r->pres == NULL || cable_presence_total(r->pres) == 0))
		room_free(gw, r);
}

/* ---- Timers ------------------------------------------------------------------------- */

static void mirror_fire(lws_sorted_usec_list_t *sul);

/* Run mirror_fire in delay_ms, unless it is already due to run sooner. */
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

/* Publish every queued count whose room has waited MIRROR_MS since its last publish. */
static void mirror_fire(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, rooms.mirror_sul);
	long long now = now_ms(), next = -1, wait, count;
	struct room **pp = &gw->rooms.mirror_queue, *r;

	gw->rooms.mirror_due = 0;
	while ((r = *pp) != NULL) {
		wait = r->mirror_at + MIRROR_MS - now;
		count = (long long)cable_presence_total(r->pres);
		if (wait <= 0 && (count == r->mirror_sent || mirror_publish(gw, r, count))) {
			*pp = r->mirror_next;
			r->mirror_queued = false;
			continue;
		}
		if (wait <= 0)
			wait = MIRROR_MS; /* the broker queue is full: try again later */
		if (next < 0 || wait < next)
			next = wait;
		pp = &r->mirror_next;
	}
	if (next >= 0)
		mirror_arm(gw, next);
}

/* The room's count may have changed: publish it soon (coalesced). */
static void mirror_touch(struct gw *gw, struct room *r)
{
	if (r->watchers_topic == NULL || r->mirror_queued)
		return;
	r->mirror_queued = true;
	r->mirror_next = gw->rooms.mirror_queue;
	gw->rooms.mirror_queue = r;
	mirror_arm(gw, r->mirror_at + MIRROR_MS - now_ms());
}

static void presence_fire(lws_sorted_usec_list_t *sul);

/* Point the one presence timer at the registry's next deadline (or cancel it). */
static void presence_arm(struct gw *gw)
{
	long long next;

	if (gw->finished || gw->rooms.presence == NULL)
		return;
	next = cable_presence_next_deadline(gw->rooms.presence);
	if (next == 0) {
		gw_schedule(gw, &gw->rooms.presence_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
		return;
	}
	next -= now_ms();
	gw_schedule(gw, &gw->rooms.presence_sul, presence_fire,
	            (lws_usec_t)(next > 0 ? next : 0) * LWS_US_PER_MS + 1);
}

/* ---- Sending -------------------------------------------------------------------------- */

enum frame_kind { FRAME_PRESENCE, FRAME_MESSAGE };

/*
 * Send value to the room's subscriptions: presence frames to those that speak
 * presence, whispers to all but the sender's connection. One frame per distinct
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

static void announce(struct gw *gw, struct room *r, enum cable_presence_change ch, const char *id,
                     size_t id_len)
{
	char *v = NULL;
	size_t len = 0;
	int rc;

	if (ch == CABLE_PRESENCE_SAME)
		return;
	if (ch == CABLE_PRESENCE_JOINED) {
		gw->rooms.presence_joins++;
		gw->rooms.presence_members++;
		rc = cable_presence_join_value(r->pres, id, id_len, &v, &len);
	} else {
		gw->rooms.presence_leaves++;
		gw->rooms.presence_members--;
		rc = cable_presence_leave_value(id, id_len, &v, &len);
	}
	if (rc == CABLE_OK)
		room_send(r, FRAME_PRESENCE, v, len, NULL);
	free(v);
	mirror_touch(gw, r);
}

/* An expired record: the user's connections all dropped more than the TTL ago. */
static void presence_gone(void *owner, const char *id, size_t id_len, void *arg)
{
	struct room *r = owner;
	struct gw *gw = arg;

	announce(gw, r, CABLE_PRESENCE_LEFT, id, id_len);
	room_free_if_empty(gw, r);
}

static void presence_fire(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, rooms.presence_sul);

	cable_presence_expire(gw->rooms.presence, now_ms(), presence_gone, gw);
	presence_arm(gw);
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
	cost = sizeof(struct room) + sizeof(struct sub *) + strlen(cable_binding_channel(b)) + 64;
	for (i = 0; i < cable_binding_stream_count(b); i++)
		cost += strlen(cable_binding_stream(b, i)) + 1;
	if (pc)
		cost += pc->info_max + 2 * (pc->watchers_topic ? strlen(pc->watchers_topic) : 0) +
		        256; /* the record, its id and connections, the watchers topic */
	return cost;
}

int room_attach(struct gw *gw, struct sub *sub)
{
	const struct cable_presence_config *pc = cable_binding_presence(sub->binding);
	struct room *r;
	struct sub **grown;
	size_t len;
	char *key;
	bool added;

	if (pc == NULL && cable_binding_whisper(sub->binding) == NULL)
		return CABLE_OK;
	key = room_key(sub->binding, &len);
	if (key == NULL)
		return CABLE_ENOMEM;
	HASH_FIND(hh, gw->rooms.table, key, len, r);
	if (r == NULL) {
		r = calloc(1, sizeof(*r) + len);
		if (r == NULL)
			goto nomem;
		memcpy(r->key, key, len);
		r->key_len = len;
		r->mirror_sent = -1;
		r->mirror_at = now_ms() - MIRROR_MS;
		if (pc && gw->rooms.presence == NULL)
			gw->rooms.presence = cable_presence_new();
		if (pc && (gw->rooms.presence == NULL ||
		           (r->pres = cable_presence_room_new(gw->rooms.presence, r)) == NULL)) {
			free(r);
			goto nomem;
		}
		if (pc && pc->watchers_topic &&
		    (r->watchers_topic = strdup(pc->watchers_topic)) == NULL) {
			cable_presence_room_free(r->pres);
			free(r);
			goto nomem;
		}
		GW_HASH_ADD(gw->rooms.table, r->key, r->key_len, r, added);
		if (!added) {
			cable_presence_room_free(r->pres);
			free(r->watchers_topic);
			free(r);
			goto nomem;
		}
		/* Devices learn the count (0) as soon as someone could watch. */
		mirror_touch(gw, r);
	}
	free(key);
	grown = cable_grow(r->subs, r->nsubs, &r->cap, sizeof(*grown), 4);
	if (grown == NULL) {
		room_free_if_empty(gw, r);
		return CABLE_ENOMEM;
	}
	r->subs = grown;
	sub->room = r;
	sub->room_slot = (uint32_t)r->nsubs;
	r->subs[r->nsubs++] = sub;
	return CABLE_OK;
nomem:
	free(key);
	return CABLE_ENOMEM;
}

/*
 * The sub leaves presence in room r: now (explicitly), or after the TTL (its connection
 * dropped).
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
	cable_presence_leave(r->pres, (uintptr_t)sub, id, strlen(id), until, &ch);
	announce(gw, r, ch, id, strlen(id));
	if (until)
		presence_arm(gw);
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
	room_free_if_empty(gw, r);
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

/*
 * After a reload, once every subscription has its new binding: those whose room changed
 * move. In two passes, so that every leave is announced while the old room still has
 * all its subscriptions (the order of the sessions decides nothing).
 */
void room_rebind_all(struct gw *gw)
{
	struct session *s;
	struct sub *sub, *tmp;

	for (s = gw->sess.list; s; s = s->next) {
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			sub->room_moving = room_moves(sub);
			if (sub->room_moving && sub->room)
				presence_leave(gw, sub->room, sub, false);
		}
	}
	for (s = gw->sess.list; s; s = s->next) {
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			if (!sub->room_moving)
				continue;
			sub->room_moving = false;
			room_detach(gw, sub, false);
			if (room_attach(gw, sub) != CABLE_OK)
				gw_log(gw, MOSQ_LOG_ERR,
				       "connection %s: out of memory; presence and whisper are off "
				       "for "
				       "a subscription after the reload",
				       s->sid);
		}
	}
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
	if (pc == NULL || sub->room == NULL || sub->room->pres == NULL || id == NULL) {
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
	rc = cable_presence_join(sub->room->pres, (uintptr_t)sub, id, strlen(id), text, text_len,
	                         &ch);
	free(text);
	if (rc != CABLE_OK) {
		send_error(s, sub);
		return;
	}
	sub->joined = true;
	announce(s->gw, sub->room, ch, id, strlen(id));
}

static void do_info(struct session *s, struct sub *sub, const json_t *data)
{
	char *v = NULL;
	size_t len = 0;

	sub->presence_aware = true;
	if (sub->room == NULL || sub->room->pres == NULL) {
		send_error(s, sub);
		return;
	}
	if (cable_presence_info_value(sub->room->pres,
	                              !json_is_false(json_object_get(data, "return_records")), &v,
	                              &len) != CABLE_OK) {
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
	size_t len;
	char *text;

	if (wc == NULL || sub->room == NULL) {
		/* As AnyCable: a channel without whisper ignores it. */
		whisper_dropped(s, &s->gw->rooms.whispers_disabled,
		                "whisper is off for the channel");
		return;
	}
	len = json_dumpb(data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (len == 0 || len > wc->max_bytes) {
		whisper_dropped(s, &s->gw->rooms.whispers_too_large, "too large");
		return;
	}
	if (!whisper_allowed(s, wc)) {
		whisper_dropped(s, &s->gw->rooms.whispers_rate_limited, "over the rate");
		return;
	}
	text = malloc(len + 1);
	if (text == NULL || json_dumpb(data, text, len, JSON_COMPACT | JSON_ENCODE_ANY) != len) {
		free(text);
		return;
	}
	s->gw->rooms.whispers++;
	room_send(sub->room, FRAME_MESSAGE, text, len, s);
	free(text);
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

/* Shutdown: every session is gone; free what lingers. */
void room_release(struct gw *gw)
{
	struct room *r, *tmp;

	gw->rooms.mirror_queue = NULL;
	HASH_ITER(hh, gw->rooms.table, r, tmp)
	{
		HASH_DELETE(hh, gw->rooms.table, r);
		cable_presence_room_free(r->pres);
		free(r->watchers_topic);
		free(r->subs);
		free(r);
	}
	cable_presence_free(gw->rooms.presence);
	gw->rooms.presence = NULL;
}
