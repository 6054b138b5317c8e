/*
 * One browser connection: authentication, the ActionCable commands in order, the
 * outbound frame ring, backpressure and closing. Gateway thread only.
 */
#include <stdint.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mosquitto.h>
#include <openssl/rand.h>

#include "cable_jwt.h"
#include "cable_proto.h"
#include "gateway_internal.h"

#define MAX_DEFERRED 64 /* commands buffered behind a paused publish before we give up */
#define SLOW_GRACE   16 /* see session_send */
#define LINGER_US    (300 * LWS_US_PER_MS) /* see session_writeable */
#define DEAD_PEER_MS (300 * 1000)          /* see session_open */

/* ---- Outbound ---------------------------------------------------------------------- */

static int ring_push(struct session *s, struct cable_frame *f)
{
	struct cable_frame **grown;
	size_t cap, i;

	if (s->ring_count == s->ring_cap) {
		cap = s->ring_cap ? s->ring_cap * 2 : 4;
		grown = malloc(cap * sizeof(*grown));
		if (grown == NULL)
			return CABLE_ENOMEM;
		for (i = 0; i < s->ring_count; i++)
			grown[i] = s->ring[(s->ring_head + i) % s->ring_cap];
		free(s->ring);
		s->ring = grown;
		s->ring_cap = cap;
		s->ring_head = 0;
	}
	s->ring[(s->ring_head + s->ring_count) % s->ring_cap] = cable_frame_ref(f);
	s->ring_count++;
	s->out_bytes += f->len;
	return CABLE_OK;
}

static struct cable_frame *ring_pop(struct session *s)
{
	struct cable_frame *f;

	f = s->ring[s->ring_head];
	s->ring_head = (s->ring_head + 1) % s->ring_cap;
	s->ring_count--;
	s->out_bytes -= f->len;
	return f;
}

static void ring_clear(struct session *s)
{
	while (s->ring_count)
		cable_frame_unref(ring_pop(s));
}

/*
 * Queue a frame without the slow-consumer check: only session_close's one disconnect
 * (every other frame goes through send_frame).
 */
static void push_frame(struct session *s, struct cable_frame *f)
{
	bool was_empty = s->ring_count == 0;

	if (f == NULL)
		return;
	if (ring_push(s, f) == CABLE_OK && was_empty)
		lws_callback_on_writable(s->wsi);
}

/*
 * Is the kernel refusing more data for this socket? Asked with poll() and not with
 * lws_send_pipe_choked(), which also says yes while lws holds the tail of a partial
 * write that the next service round flushes: a writable socket in the middle of a
 * burst is not a slow client.
 */
static bool socket_full(struct lws *wsi)
{
	struct pollfd p = {lws_get_socket_fd(wsi), POLLOUT, 0};

	return p.fd < 0 || poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT);
}

/*
 * Queue any frame for the client: replies, pings, broadcasts, everything but the final
 * disconnect. It counts against plugin_opt_max_outbound_bytes now, as it is queued: a
 * client that sends commands and never reads is closed near the bound, whatever kind of
 * frames pile up for it.
 */
static void send_frame(struct session *s, struct cable_frame *f)
{
	if (f == NULL || s->closing)
		return;
	/*
	 * Over the bound, a connection is too slow only if its socket has stopped taking
	 * data: a burst queued within one service round is ours to write, not the
	 * browser's fault. Even then the backlog stays within SLOW_GRACE times the bound.
	 */
	if (s->out_bytes + f->len > s->gw->cfg.max_outbound &&
	    (s->out_bytes + f->len > SLOW_GRACE * s->gw->cfg.max_outbound || socket_full(s->wsi))) {
		s->gw->stats.too_slow++;
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) closed: too slow, %zu bytes waiting "
		       "(plugin_opt_max_outbound_bytes)",
		       s->sid, s->peer, s->out_bytes);
		session_close(s, "too_slow", true, LWS_CLOSE_STATUS_NORMAL);
		return;
	}
	push_frame(s, f);
}

void session_send(struct session *s, struct cable_frame *f)
{
	if (s->active)
		send_frame(s, f);
}

/*
 * Queue a disconnect and close once it is written. What was queued before is dropped
 * when the reason is too_slow (it is what the client could not take).
 */
void session_close(struct session *s, const char *reason, bool reconnect, uint16_t code)
{
	struct cable_frame *f;

	if (s->closing)
		return;
	s->closing = true;
	s->close_code = code;
	if (s->paused)
		lws_rx_flow_control(s->wsi, 1); /* read (and drop) until the close */
	if (strcmp(reason, "too_slow") == 0)
		ring_clear(s);
	f = cable_proto_disconnect(reason, reconnect);
	push_frame(s, f);
	cable_frame_unref(f);
	lws_callback_on_writable(s->wsi);
}

/*
 * Before closing, read and drop what the client sent that we have not read. Closing a
 * TCP socket with unread data makes the kernel send a reset instead of a FIN, and a
 * reset makes the client's kernel discard what it has not yet handed to the client:
 * the disconnect frame we just wrote would be lost. Bounded, non-blocking.
 */
static void drain_unread(struct lws *wsi)
{
	char buf[4096];
	int fd = lws_get_socket_fd(wsi), i;

	if (fd < 0 || lws_is_ssl(wsi))
		return; /* under TLS the bytes belong to OpenSSL's record layer */
	for (i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
		;
}

/*
 * TCP_CORK around a batch: lws writes each frame with its own send(), and corked, the
 * kernel joins them into full segments and sends them at the uncork, so a backlog of
 * small frames costs one trip through TCP (and one wake-up of the reader) instead of
 * one per frame. The framing stays lws'.
 */
static void cork(struct lws *wsi, int on)
{
	setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

int session_writeable(struct session *s)
{
	struct cable_frame *f;
	bool corked = s->ring_count > 1;
	int n = 0;

	if (corked)
		cork(s->wsi, 1);
	while (s->ring_count && n < 64) {
		f = ring_pop(s);
		if (lws_write(s->wsi, (unsigned char *)cable_frame_data(f), f->len,
		              LWS_WRITE_TEXT) < (int)f->len) {
			cable_frame_unref(f);
			return -1;
		}
		s->gw->stats.frames_out++;
		s->gw->stats.bytes_out += f->len;
		cable_frame_unref(f);
		n++;
		/*
		 * Stop once the kernel took less than a whole frame (lws holds the rest). Not
		 * lws_send_pipe_choked(): that polls the socket, a second system call per frame.
		 */
		if (lws_partial_buffered(s->wsi))
			break;
	}
	if (corked)
		cork(s->wsi, 0);
	if (s->ring_count) {
		lws_callback_on_writable(s->wsi);
		return 0;
	}
	if (s->closing && !s->lingering) {
		/*
		 * The disconnect is written. Give the client a moment to read it and close
		 * by itself (the Rails client does), reading and dropping what it still
		 * sends; session_timer closes if it does not. Closing at once raced with a
		 * client that was still sending: the kernel answered its data with a reset
		 * and the client never saw the disconnect.
		 */
		s->lingering = true;
		lws_set_timer_usecs(s->wsi, LINGER_US);
		gw_kick(s->gw, LINGER_US);
	}
	return 0;
}

/* LWS_CALLBACK_TIMER: the linger after a disconnect ended. */
int session_timer(struct session *s)
{
	if (s->gw == NULL || !s->lingering)
		return 0;
	drain_unread(s->wsi);
	lws_close_reason(s->wsi, (enum lws_close_status)s->close_code, NULL, 0);
	return -1;
}

/* ---- Token expiry: a min-heap by who.exp (gw->expiring), one timer for its root ---- */

static void expiry_set(struct gw *gw, size_t i, struct session *s)
{
	gw->expiring[i] = s;
	s->expiry_slot = i + 1;
}

static void expiry_sift(struct gw *gw, size_t i)
{
	struct session *s = gw->expiring[i], *c;
	size_t k;

	while (i > 0 && gw->expiring[(i - 1) / 2]->who.exp > s->who.exp) {
		expiry_set(gw, i, gw->expiring[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		k = 2 * i + 1;
		if (k >= gw->nexpiring)
			break;
		if (k + 1 < gw->nexpiring &&
		    gw->expiring[k + 1]->who.exp < gw->expiring[k]->who.exp)
			k++;
		c = gw->expiring[k];
		if (c->who.exp >= s->who.exp)
			break;
		expiry_set(gw, i, c);
		i = k;
	}
	expiry_set(gw, i, s);
}

static void expiry_fire(lws_sorted_usec_list_t *sul);

/* Point the one timer at the earliest expiry (or cancel it when none is left). */
static void expiry_arm(struct gw *gw)
{
	long long left;

	if (gw->finished)
		return; /* the context is going away with its timers */
	if (gw->nexpiring == 0) {
		gw_schedule(gw, &gw->expiry_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
		return;
	}
	left = gw->expiring[0]->who.exp - (long long)time(NULL);
	if (left < 0)
		left = 0;
	if (left > 86400LL * 365)
		left = 86400LL * 365;
	gw_schedule(gw, &gw->expiry_sul, expiry_fire, (lws_usec_t)left * LWS_US_PER_SEC + 1);
}

/* Take s out of the heap; true if it was the root (the caller re-arms the timer). */
static bool expiry_remove(struct session *s)
{
	struct gw *gw = s->gw;
	size_t i = s->expiry_slot - 1;

	s->expiry_slot = 0;
	if (--gw->nexpiring > i) {
		gw->expiring[i] = gw->expiring[gw->nexpiring];
		expiry_sift(gw, i);
	}
	return i == 0;
}

static int expiry_add(struct session *s)
{
	struct gw *gw = s->gw;
	struct session **grown;

	grown = cable_grow(gw->expiring, gw->nexpiring, &gw->expiring_cap, sizeof(*grown), 64);
	if (grown == NULL)
		return CABLE_ENOMEM;
	gw->expiring = grown;
	expiry_set(gw, gw->nexpiring++, s);
	expiry_sift(gw, gw->nexpiring - 1);
	if (s->expiry_slot == 1)
		expiry_arm(gw);
	return CABLE_OK;
}

/* The earliest token expired: close every connection whose token has. */
static void expiry_fire(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, expiry_sul);
	long long now = (long long)time(NULL);
	struct session *s;

	/* Many tokens can share one exp (minted together): the timer is re-armed once. */
	while (gw->nexpiring && gw->expiring[0]->who.exp <= now) {
		s = gw->expiring[0];
		expiry_remove(s);
		if (s->active && !s->closing) {
			gw_log(gw, MOSQ_LOG_NOTICE,
			       "connection %s (%s) closed: token_expired (its exp plus "
			       "plugin_opt_jwt_leeway has passed)",
			       s->sid, s->peer);
			session_close(s, "token_expired", false, LWS_CLOSE_STATUS_NORMAL);
		}
	}
	expiry_arm(gw);
}

void expiry_release(struct gw *gw)
{
	free(gw->expiring);
	gw->expiring = NULL;
	gw->nexpiring = gw->expiring_cap = 0;
}

/* ---- Opening: authentication and welcome ---------------------------------------- */

static void make_sid(char *out)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[CABLE_SID_LEN];
	size_t i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		memset(raw, 0, sizeof(raw)); /* never happens with a seeded OpenSSL 3 */
	for (i = 0; i < CABLE_SID_LEN; i++)
		out[i] = alphabet[raw[i] & 63];
	out[CABLE_SID_LEN] = '\0';
}

/*
 * The token, from the first place that has one: the query parameter (browsers and
 * AnyCable clients), the configured cookie, or "Authorization: Bearer" (non-browser
 * clients). NULL if none.
 */
static const char *find_token(struct session *s, char *buf, size_t len, const char **where)
{
	char name[80];
	const char *t;
	size_t n = len;
	int hl;

	snprintf(name, sizeof(name), "%s=", s->gw->cfg.token_param);
	t = lws_get_urlarg_by_name(s->wsi, name, buf, (int)len);
	if (t && *t) {
		*where = "query";
		return t;
	}
	if (s->gw->cfg.token_cookie &&
	    lws_http_cookie_get(s->wsi, s->gw->cfg.token_cookie, buf, &n) == 0 && n > 0) {
		buf[n < len ? n : len - 1] = '\0';
		*where = "cookie";
		return buf;
	}
	hl = lws_hdr_copy(s->wsi, buf, (int)len, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (hl > 7 && strncasecmp(buf, "Bearer ", 7) == 0) {
		*where = "authorization";
		return buf + 7;
	}
	*where = "none";
	return NULL;
}

static int authenticate(struct session *s)
{
	struct cable_rules *rules = s->gw->rules;
	struct cable_error err = {0};
	char buf[CABLE_JWT_MAX_LEN + 64];
	const char *token, *where;
	long long now = (long long)time(NULL);
	int rc;

	if (s->gw->cfg.anonymous) {
		s->who.user = strdup("anonymous");
		return s->who.user ? CABLE_OK : CABLE_ENOMEM;
	}
	token = find_token(s, buf, sizeof(buf), &where);
	if (token == NULL || *token == '\0') {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) unauthorized: no token (?%s=%s%s, or Authorization: "
		       "Bearer)",
		       s->sid, s->peer, s->gw->cfg.token_param,
		       s->gw->cfg.token_cookie ? ", cookie " : "",
		       s->gw->cfg.token_cookie ? s->gw->cfg.token_cookie : "");
		s->gw->stats.auth_failures[AUTH_NO_TOKEN]++;
		return CABLE_EAUTH;
	}
	rc = cable_jwt_verify(rules->keys, &rules->policy, token, strlen(token), now, &s->who,
	                      &err);
	if (rc != CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) unauthorized: %s (token from %s)", s->sid, s->peer,
		       err.text, where);
		s->gw->stats.auth_failures[strstr(err.text, "expired")     ? AUTH_EXPIRED
		                           : strstr(err.text, "signature") ? AUTH_BAD_SIGNATURE
		                                                           : AUTH_INVALID]++;
		return rc;
	}
	/*
	 * The claim set is kept for {claim.NAME} placeholders only: a jansson object per
	 * connection is about 400 bytes. (After a reload that adds such placeholders, a
	 * connection opened before it must reconnect to use them; tokens are short-lived.)
	 */
	if (!cable_chanmap_uses_claims(rules->chanmap)) {
		json_decref(s->who.claims);
		s->who.claims = NULL;
	}
	/*
	 * A token is accepted while now < exp + leeway, so that is also when the connection
	 * ends: from here on who.exp is that moment (accepting a token inside the leeway and
	 * closing it at once as expired would contradict itself).
	 */
	if (s->who.exp && rules->policy.leeway > 0 && s->who.exp < LLONG_MAX - rules->policy.leeway)
		s->who.exp += rules->policy.leeway;
	if (s->who.exp && expiry_add(s) != CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_WARNING, "connection %s (%s) refused: out of memory", s->sid,
		       s->peer);
		return CABLE_ENOMEM;
	}
	return CABLE_OK;
}

/* The entry for key, created at zero if there is none; NULL when out of memory. */
struct counter *counter_get(struct counter **table, const char *key)
{
	struct counter *c;
	size_t len = strlen(key);
	bool added;

	HASH_FIND(hh, *table, key, len, c);
	if (c)
		return c;
	c = calloc(1, sizeof(*c) + len + 1);
	if (c == NULL)
		return NULL;
	memcpy(c->key, key, len + 1);
	GW_HASH_ADD(*table, c->key, len, c, added);
	if (!added) {
		free(c);
		return NULL;
	}
	return c;
}

/* Free an entry whose count is zero. */
void counter_drop(struct counter **table, struct counter *c)
{
	if (c->n == 0) {
		HASH_DELETE(hh, *table, c);
		free(c);
	}
}

/* Add delta to the count of key; returns the new count. Entries at zero are freed. */
static size_t counter_add(struct counter **table, const char *key, int delta)
{
	struct counter *c;
	size_t n;

	if (delta < 0) {
		HASH_FIND(hh, *table, key, strlen(key), c);
		if (c == NULL)
			return 0;
	} else if ((c = counter_get(table, key)) == NULL) {
		return SIZE_MAX; /* out of memory counts as over the limit */
	}
	c->n = delta < 0 ? c->n - 1 : c->n + 1;
	n = c->n;
	counter_drop(table, c);
	return n;
}

/* The connection limits. A refused connection is told why and closed (1013). */
static bool within_limits(struct session *s)
{
	struct gw *gw = s->gw;

	if (gw->cfg.max_connections && gw->nsessions > gw->cfg.max_connections) {
		gw_log(gw, MOSQ_LOG_WARNING,
		       "connection from %s refused: %zu connections (plugin_opt_max_connections)",
		       s->peer, gw->cfg.max_connections);
		session_close(s, "too_many_connections", true, 1013);
		return false;
	}
	s->counted_ip = true;
	if (counter_add(&gw->per_ip, s->peer, +1) > gw->cfg.max_per_ip && gw->cfg.max_per_ip) {
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "connection from %s refused: %zu connections from that address "
		       "(plugin_opt_max_connections_per_ip)",
		       s->peer, gw->cfg.max_per_ip);
		session_close(s, "too_many_connections", true, 1013);
		return false;
	}
	return true;
}

static bool within_user_limit(struct session *s)
{
	struct gw *gw = s->gw;
	size_t n;

	s->counted_user = true;
	n = counter_add(&gw->per_user, s->who.user, +1);
	if (n != SIZE_MAX && n != 0)
		HASH_FIND(hh, gw->per_user, s->who.user, strlen(s->who.user), s->user);
	if (n > gw->cfg.max_per_user && gw->cfg.max_per_user) {
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) refused: user %s has %zu connections "
		       "(plugin_opt_max_connections_per_user)",
		       s->sid, s->peer, s->who.user, gw->cfg.max_per_user);
		/* Probably a page that leaks consumers: tell it not to retry. */
		session_close(s, "too_many_connections", false, 1013);
		return false;
	}
	return true;
}

void session_open(struct session *s, struct gw *gw, struct lws *wsi)
{
	struct cable_frame *f;

	s->gw = gw;
	s->wsi = wsi;
	make_sid(s->sid);
	if (gw->cfg.socket_send_buffer) {
		/*
		 * Bound the kernel's share too: with autotuning a stalled reader absorbs about
		 * 4 MiB in socket buffers before plugin_opt_max_outbound_bytes is even reached.
		 */
		int sz = (int)gw->cfg.socket_send_buffer;

		setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	/*
	 * A browser that vanished without a FIN or RST (a laptop lid, a dropped network)
	 * stops acknowledging the pings: after DEAD_PEER_MS of unacknowledged data the
	 * kernel ends the connection, and lws closes it. The same clock runs while a
	 * browser that stopped reading keeps its window shut, and ending the connection
	 * discards the too_slow disconnect still queued for it; so it is as long as lws'
	 * own validity hang-up it replaces (310 s), not short (the soak's 90 s stalls must
	 * still read why they were dropped).
	 */
	unsigned int dead_ms = DEAD_PEER_MS;

	setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_USER_TIMEOUT, &dead_ms,
	           sizeof(dead_ms));
	lws_get_peer_simple(wsi, s->peer, sizeof(s->peer));
	s->next = gw->sessions;
	if (gw->sessions)
		gw->sessions->prev = s;
	gw->sessions = s;
	gw->nsessions++;
	gw->stats.connections++;

	if (gw->stopping) {
		session_close(s, "server_restart", true, LWS_CLOSE_STATUS_GOINGAWAY);
		return;
	}
	if (!within_limits(s))
		return;
	if (authenticate(s) != CABLE_OK) {
		/* As Rails: the upgrade completes, then disconnect and a normal close. */
		session_close(s, "unauthorized", false, LWS_CLOSE_STATUS_NORMAL);
		return;
	}
	/* Anonymous connections all share one name: the per-user limit does not apply. */
	if (!gw->cfg.anonymous && !within_user_limit(s))
		return;
	s->active = true;
	if (strcmp(lws_get_protocol(wsi)->name, CABLE_PROTOCOL_EXT_JSON) == 0) {
		if (!ext_attach(s)) {
			session_close(s, "server_error", true,
			              LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
			return;
		}
		ext_welcome(s); /* a restore, or a welcome with a session id to restore later */
		return;
	}
	f = cable_proto_welcome(s->sid);
	send_frame(s, f);
	cable_frame_unref(f);
}

/* ---- Subscriptions ------------------------------------------------------------------ */

static void reply(struct session *s, struct cable_frame *(*enc)(const char *, size_t),
                  const char *id, size_t len)
{
	struct cable_frame *f = enc(id, len);

	if (enc == cable_proto_reject)
		s->gw->stats.rejects++;
	send_frame(s, f);
	cable_frame_unref(f);
}

/*
 * The ACL's answer for every stream of a binding (no ACL file: allowed). DENY if any
 * stream is not readable; *each is set when some stream is only partly readable.
 */
static int authorize_streams(struct session *s, const struct cable_binding *b, bool *each,
                             struct cable_error *err)
{
	const struct cable_acl *acl = s->gw->rules->acl;
	const char *stream;
	size_t i;

	*each = false;
	if (acl == NULL)
		return CABLE_OK;
	for (i = 0; i < cable_binding_stream_count(b); i++) {
		stream = cable_binding_stream(b, i);
		switch (cable_acl_subscribe(acl, &s->who, stream, strlen(stream))) {
		case CABLE_ACL_ALLOW:
			break;
		case CABLE_ACL_PARTIAL:
			*each = true;
			break;
		default:
			return cable_error_set(err, CABLE_EDENIED,
			                       "the ACL does not let user %s read '%s'",
			                       s->who.user, stream);
		}
	}
	return CABLE_OK;
}

bool sub_may_read(struct gw *gw, struct sub *sub, const struct cable_msg *m)
{
	char *copy;
	bool ok;

	if (sub->acl_topic && strcmp(sub->acl_topic, m->topic) == 0)
		return sub->acl_topic_ok;
	ok = cable_acl_check(gw->rules->acl, &sub->session->who, CABLE_ACL_READ, m->topic,
	                     m->topic_len) == CABLE_ACL_ALLOW;
	copy = strdup(m->topic);
	free(sub->acl_topic);
	sub->acl_topic = copy;
	sub->acl_topic_ok = ok;
	return ok;
}

static void sub_free(struct gw *gw, struct sub *sub)
{
	ext_sub_gone(gw, sub);
	/* Unsubscribe implies leave; a dropped connection's user lingers for the TTL. */
	room_detach(gw, sub, sub->session->dropped);
	sub_unlink_streams(gw, sub);
	answer_forget(gw, sub);
	cable_binding_free(sub->binding);
	ident_put(gw, sub->ident);
	free(sub->acl_topic);
	free(sub);
}

static void sub_remove(struct session *s, struct sub *sub)
{
	HASH_DELETE(hh, s->subs, sub);
	s->sub_bytes -= sub->cost;
	if (s->user)
		s->user->sub_bytes -= sub->cost;
	s->nsubs--;
	s->gw->stats.subscriptions--;
	sub_free(s->gw, sub);
}

/*
 * What a subscription holds, as charged to plugin_opt_max_subscription_bytes(_per_user):
 * the identifier twice (as sent, and JSON-encoded for replies and messages), each
 * stream topic, and the bookkeeping around them. An estimate, close to what malloc
 * hands out; shared identifiers and routes are charged to every subscription.
 */
#define SUB_OVERHEAD 256 /* allocator headers, hash handles, the binding */

static size_t sub_cost(size_t identifier_len, const struct cable_binding *b)
{
	size_t cost = sizeof(struct sub) + sizeof(struct ident) + 2 * identifier_len + SUB_OVERHEAD;

	for (size_t i = 0; i < cable_binding_stream_count(b); i++)
		cost += 2 * strlen(cable_binding_stream(b, i)) + sizeof(struct sub_link) +
		        sizeof(struct route) + SUB_OVERHEAD;
	return cost + room_cost(b); /* presence and whisper */
}

/* A subscription of this cost fits the connection's and the user's budgets. */
static bool within_sub_budget(struct session *s, size_t cost, struct cable_error *err)
{
	const struct cable_gateway_config *cfg = &s->gw->cfg;

	if (s->sub_bytes + cost > cfg->max_sub_bytes) {
		cable_error_set(err, CABLE_EFULL,
		                "its subscriptions would hold more than %zu bytes "
		                "(plugin_opt_max_subscription_bytes)",
		                cfg->max_sub_bytes);
		return false;
	}
	if (s->user && cfg->max_user_sub_bytes &&
	    s->user->sub_bytes + cost > cfg->max_user_sub_bytes) {
		cable_error_set(err, CABLE_EFULL,
		                "the user's subscriptions would hold more than %zu bytes "
		                "(plugin_opt_max_subscription_bytes_per_user)",
		                cfg->max_user_sub_bytes);
		return false;
	}
	return true;
}

/*
 * A new subscription to identifier `id`, bound, authorized and linked, without a reply
 * (do_subscribe's, and a session restore's in ext.c). NULL with the reason in err.
 */
struct sub *sub_create(struct session *s, const char *id, size_t len, struct cable_error *err)
{
	struct cable_binding *b = NULL;
	struct sub *sub;
	bool each, added;
	size_t cost;

	if (s->nsubs >= s->gw->cfg.max_subscriptions) {
		cable_error_set(err, CABLE_EFULL, "limit of %zu subscriptions reached",
		                s->gw->cfg.max_subscriptions);
		return NULL;
	}
	if (len > s->gw->cfg.max_identifier) {
		cable_error_set(
		        err, CABLE_EFULL,
		        "identifier of %zu bytes, over %zu (plugin_opt_max_identifier_size)", len,
		        s->gw->cfg.max_identifier);
		return NULL;
	}
	if (cable_chanmap_bind(s->gw->rules->chanmap, id, len, &s->who, s->sid, &b, err) !=
	    CABLE_OK)
		return NULL;
	if (authorize_streams(s, b, &each, err) != CABLE_OK) {
		cable_binding_free(b);
		return NULL;
	}
	cost = sub_cost(len, b);
	if (!within_sub_budget(s, cost, err)) {
		cable_binding_free(b);
		return NULL;
	}
	sub = calloc(1, sizeof(*sub));
	if (sub == NULL)
		goto nomem;
	sub->cost = cost;
	sub->acl_each = each;
	sub->session = s;
	sub->ext = s->ext != NULL;
	sub->binding = b;
	sub->deliver = cable_binding_deliver(b);
	sub->ident = ident_get(s->gw, id, len);
	if (sub->ident == NULL || sub_link_streams(s->gw, sub) != CABLE_OK) {
		ident_put(s->gw, sub->ident);
		free(sub);
		goto nomem;
	}
	if (room_attach(s->gw, sub) != CABLE_OK) {
		sub_free(s->gw, sub); /* the binding with it */
		b = NULL;
		goto nomem;
	}
	GW_HASH_ADD(s->subs, sub->ident->raw, sub->ident->raw_len, sub, added);
	if (!added) {
		sub_free(s->gw, sub); /* the binding with it */
		b = NULL;
		goto nomem;
	}
	s->nsubs++;
	s->sub_bytes += cost;
	if (s->user)
		s->user->sub_bytes += cost;
	s->gw->stats.subscriptions++;
	s->gw->stats.subscribes++;
	return sub;
nomem:
	cable_binding_free(b);
	cable_error_set(err, CABLE_ENOMEM, "out of memory");
	return NULL;
}

static void do_subscribe(struct session *s, const struct cable_cmd *cmd)
{
	struct cable_error err = {0};
	struct ext_plan *plan = NULL;
	struct sub *sub;

	/* Last values: the replay and live delivery must start at one place (state.c). */
	state_catch_up(s->gw);
	if (s->closing)
		return;
	HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub)
		return; /* duplicate: the first confirm is already on the wire; never confirm twice
		         */
	sub = sub_create(s, cmd->identifier, cmd->identifier_len, &err);
	if (sub == NULL) {
		gw_log(s->gw, err.code == CABLE_ENOMEM ? MOSQ_LOG_ERR : MOSQ_LOG_NOTICE,
		       "connection %s (user %s) subscription rejected: %s", s->sid, s->who.user,
		       err.text);
		reply(s, cable_proto_reject, cmd->identifier, cmd->identifier_len);
		return;
	}
	reply(s, cable_proto_confirm, cmd->identifier, cmd->identifier_len);
	/*
	 * History on subscribe (ext.c), planned before and sent after anything else this
	 * subscription is sent first: a replay of last values goes between the two and
	 * leaves out the topics ext_skip_last_value(plan, ...) names.
	 */
	if (s->ext && cmd->history)
		plan = ext_history_plan(s, sub, cmd);
	state_replay(s, sub, plan); /* last values, before any live message (state.c) */
	if (plan)
		ext_history_send(s, sub, plan, false);
	room_command(s, sub, cmd); /* a "presence" to re-join with, after the history */
}

static void do_unsubscribe(struct session *s, const struct cable_cmd *cmd)
{
	struct sub *sub;

	HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub)
		sub_remove(s, sub); /* ActionCable sends no reply */
}

/*
 * Re-resolve every subscription against new rules (after a reload). A subscription
 * the new rules refuse ends with reject_subscription, which the Rails client treats
 * as "this subscription is gone"; the connection stays open.
 */
void session_rebind_all(struct gw *gw)
{
	struct cable_error err = {0};
	struct cable_binding *b;
	struct session *s;
	struct sub *sub, *tmp;
	bool each;

	for (s = gw->sessions; s; s = s->next) {
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			b = NULL;
			if (cable_chanmap_bind(gw->rules->chanmap, sub->ident->raw,
			                       sub->ident->raw_len, &s->who, s->sid, &b,
			                       &err) == CABLE_OK &&
			    authorize_streams(s, b, &each, &err) == CABLE_OK) {
				sub_unlink_streams(gw, sub);
				cable_binding_free(sub->binding);
				sub->binding = b;
				sub->deliver = cable_binding_deliver(b);
				sub->acl_each = each;
				free(sub->acl_topic); /* cached answers were for the old rules */
				sub->acl_topic = NULL;
				if (sub_link_streams(gw, sub) == CABLE_OK)
					continue;
				cable_error_set(&err, CABLE_ENOMEM, "out of memory");
			} else {
				cable_binding_free(b);
			}
			gw_log(gw, MOSQ_LOG_NOTICE,
			       "connection %s (user %s): subscription ended by the new rules: %s",
			       s->sid, s->who.user, err.text);
			if (!s->closing)
				reply(s, cable_proto_reject, sub->ident->raw, sub->ident->raw_len);
			sub_remove(s, sub);
		}
	}
	room_rebind_all(gw); /* presence and whisper rooms follow the new bindings */
}

/* ---- Actions and backpressure ---------------------------------------------------- */

static void pause_session(struct session *s)
{
	if (s->paused)
		return;
	s->paused = true;
	s->paused_next = s->gw->paused;
	s->gw->paused = s;
	lws_rx_flow_control(s->wsi, 0);
}

static void do_message(struct session *s, const struct cable_cmd *cmd)
{
	struct cable_perform_info info = {0};
	struct cable_error err = {0};
	struct cable_publish pub = {0};
	struct cable_msg *m;
	struct sub *sub;
	uint32_t seq = ++s->performs;

	HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub == NULL) {
		gw_log(s->gw, MOSQ_LOG_INFO,
		       "connection %s (user %s): message for an identifier it is not subscribed "
		       "to; ignored",
		       s->sid, s->who.user);
		return;
	}
	if (cable_binding_perform(sub->binding, cmd->data, cmd->data_len, &pub, &info, &err) !=
	    CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (user %s) perform refused: %s", s->sid,
		       s->who.user, err.text);
		answer_refuse(s, sub, &info, info.refusal, seq);
		goto done;
	}
	if (s->gw->rules->acl && cable_acl_check(s->gw->rules->acl, &s->who, CABLE_ACL_WRITE,
	                                         pub.topic, strlen(pub.topic)) != CABLE_ACL_ALLOW) {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (user %s) perform refused: the ACL does not let it write "
		       "'%s'",
		       s->sid, s->who.user, pub.topic);
		cable_publish_release(&pub);
		answer_refuse(s, sub, &info, CABLE_REFUSED_ACL, seq);
		goto done;
	}
	if (s->gw->unhealthy) {
		/* The broker would never publish it (no TICK): say so instead of losing it. */
		gw_log(s->gw, MOSQ_LOG_ERR, "connection %s (user %s) perform refused: %s", s->sid,
		       s->who.user, s->gw->unhealthy);
		cable_publish_release(&pub);
		answer_refuse(s, sub, &info, CABLE_REFUSED_BROKER, seq);
		goto done;
	}
	m = cable_msg_new(CABLE_MSG_PUBLISH, pub.topic, strlen(pub.topic), pub.payload,
	                  pub.payload_len);
	if (m) {
		m->qos = pub.qos;
		m->retain = pub.retain;
	}
	/* The answer (or the request's response topic) travels with the publish. */
	if (m && (info.answer != CABLE_ANSWER_NONE || info.request) &&
	    (m->answer = answer_prepare(s, sub, &info, seq)) == NULL) {
		cable_msg_free(m);
		m = NULL;
	}
	cable_publish_release(&pub);
	if (m == NULL) {
		gw_log(s->gw, MOSQ_LOG_ERR, "connection %s: out of memory; publish dropped",
		       s->sid);
		answer_refuse(s, sub, &info, CABLE_REFUSED_SERVER, seq);
		goto done;
	}
	s->gw->stats.publishes++;
	if (gw_push_to_broker(s->gw, m) != CABLE_OK) {
		/* The broker is behind: keep this publish and stop reading from this browser. */
		s->pending = m;
		pause_session(s);
	}
done:
	cable_perform_info_release(&info);
}

/* AnyCable's presence and whisper commands, on any connection (room.c). */
static void do_room_command(struct session *s, const struct cable_cmd *cmd)
{
	struct sub *sub;

	HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub == NULL) {
		gw_log(s->gw, MOSQ_LOG_INFO,
		       "connection %s (user %s): %.*s for an identifier it is not subscribed to; "
		       "ignored",
		       s->sid, s->who.user, (int)cmd->command_len, cmd->command);
		return;
	}
	room_command(s, sub, cmd);
}

static void handle_command(struct session *s, const char *buf, size_t len)
{
	struct cable_error err = {0};
	struct cable_cmd cmd = {0};

	s->gw->stats.commands_in++;
	s->gw->stats.bytes_in += len;
	if (cable_proto_decode(buf, len, &cmd, &err) != CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (%s): ignored a malformed command: %s",
		       s->sid, s->peer, err.text);
		return;
	}
	switch (cmd.kind) {
	case CABLE_CMD_SUBSCRIBE:
		do_subscribe(s, &cmd);
		break;
	case CABLE_CMD_UNSUBSCRIBE:
		do_unsubscribe(s, &cmd);
		break;
	case CABLE_CMD_MESSAGE:
		do_message(s, &cmd);
		break;
	case CABLE_CMD_HISTORY:
	case CABLE_CMD_PONG:
		if (s->ext == NULL)
			goto unknown; /* the plain protocol has neither */
		if (cmd.kind == CABLE_CMD_HISTORY)
			ext_history(s, &cmd);
		break;
	case CABLE_CMD_JOIN:
	case CABLE_CMD_LEAVE:
	case CABLE_CMD_PRESENCE:
	case CABLE_CMD_WHISPER:
		do_room_command(s, &cmd);
		break;
	case CABLE_CMD_UNKNOWN:
	unknown:
		gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (%s): ignored unknown command '%.*s'",
		       s->sid, s->peer, (int)(cmd.command_len > 64 ? 64 : cmd.command_len),
		       cmd.command);
		break;
	}
	cable_cmd_release(&cmd);
}

static void defer_command(struct session *s, const char *buf, size_t len)
{
	struct deferred *d;

	if (s->ndeferred >= MAX_DEFERRED || (d = malloc(sizeof(*d) + len)) == NULL) {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) closed: invalid_request (more than %d commands "
		       "waiting for the broker)",
		       s->sid, s->peer, MAX_DEFERRED);
		session_close(s, "invalid_request", true, LWS_CLOSE_STATUS_POLICY_VIOLATION);
		return;
	}
	d->next = NULL;
	d->len = len;
	memcpy(d->buf, buf, len);
	if (s->deferred_tail)
		s->deferred_tail->next = d;
	else
		s->deferred_head = d;
	s->deferred_tail = d;
	s->ndeferred++;
}

/* Called when the broker queue has room again: retry, then replay what waited. */
void session_resume(struct session *s)
{
	struct deferred *d;

	s->paused = false;
	if (s->pending) {
		if (gw_push_to_broker(s->gw, s->pending) != CABLE_OK) {
			pause_session(s);
			return;
		}
		s->pending = NULL;
	}
	while ((d = s->deferred_head) != NULL && !s->pending && !s->closing) {
		s->deferred_head = d->next;
		if (s->deferred_head == NULL)
			s->deferred_tail = NULL;
		s->ndeferred--;
		handle_command(s, d->buf, d->len);
		free(d);
	}
	if (s->pending) {
		pause_session(s);
		return;
	}
	lws_rx_flow_control(s->wsi, 1);
}

/* ---- Inbound ----------------------------------------------------------------------- */

/* A whole command: handled now, or kept in order behind a paused publish. */
static void dispatch_command(struct session *s, const char *buf, size_t len)
{
	if (s->paused)
		defer_command(s, buf, len);
	else
		handle_command(s, buf, len);
}

void session_receive(struct session *s, const void *in, size_t len)
{
	char *grown;
	size_t cap;
	bool final;

	if (s->unsupported || s->closing || !s->active)
		return;
	if (s->ext)
		ext_received(s);
	if (lws_is_first_fragment(s->wsi)) {
		s->rx_len = 0;
		s->rx_binary = lws_frame_is_binary(s->wsi);
		s->rx_overflow = false;
	}
	final = lws_is_final_fragment(s->wsi) && lws_remaining_packet_payload(s->wsi) == 0;
	if (s->rx_binary) {
		/* As Rails: the JSON protocol has no binary frames; ignore them. */
		if (final)
			gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (%s): ignored a binary frame",
			       s->sid, s->peer);
		return;
	}
	if (final && s->rx_len == 0 && len <= s->gw->cfg.max_message) {
		/* A whole message in one piece, the usual case: no copy, no buffer kept. */
		dispatch_command(s, in, len);
		return;
	}
	if (s->rx_len + len > s->gw->cfg.max_message) {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) closed: message larger than %zu bytes "
		       "(plugin_opt_max_message_size)",
		       s->sid, s->peer, s->gw->cfg.max_message);
		session_close(s, "invalid_request", false, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
		return;
	}
	if (s->rx_len + len > s->rx_cap) {
		cap = s->rx_cap ? s->rx_cap : 256;
		while (cap < s->rx_len + len)
			cap *= 2;
		grown = realloc(s->rx, cap);
		if (grown == NULL) {
			gw_log(s->gw, MOSQ_LOG_WARNING,
			       "connection %s (%s) closed: server_error (out of memory)", s->sid,
			       s->peer);
			session_close(s, "server_error", true,
			              LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
			return;
		}
		s->rx = grown;
		s->rx_cap = cap;
	}
	memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += len;
	if (!final)
		return;
	dispatch_command(s, s->rx, s->rx_len);
	s->rx_len = 0;
	/* Give back a large buffer once a large message has been handled. */
	if (s->rx_cap > 4096) {
		free(s->rx);
		s->rx = NULL;
		s->rx_cap = 0;
	}
}

/* ---- Closing ------------------------------------------------------------------------ */

void session_closed(struct session *s)
{
	struct sub *sub, *tmp;
	struct session **pp;
	struct deferred *d;
	struct gw *gw = s->gw;

	if (gw == NULL)
		return; /* never opened (a refused handshake) */
	s->dropped = true;
	if (s->ext)
		ext_detach(s); /* before its subscriptions go: a restore needs them */
	HASH_ITER(hh, s->subs, sub, tmp)
	{
		sub_remove(s, sub);
	}
	if (s->expiry_slot && expiry_remove(s))
		expiry_arm(gw);
	if (s->paused) {
		for (pp = &gw->paused; *pp; pp = &(*pp)->paused_next) {
			if (*pp == s) {
				*pp = s->paused_next;
				break;
			}
		}
	}
	cable_msg_free(s->pending);
	while ((d = s->deferred_head) != NULL) {
		s->deferred_head = d->next;
		free(d);
	}
	ring_clear(s);
	free(s->ring);
	free(s->rx);
	if (s->counted_ip)
		counter_add(&gw->per_ip, s->peer, -1);
	if (s->counted_user)
		counter_add(&gw->per_user, s->who.user, -1);
	s->user = NULL;
	cable_principal_release(&s->who);
	if (s->prev)
		s->prev->next = s->next;
	else
		gw->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	gw->nsessions--;
	s->gw = NULL;
}
