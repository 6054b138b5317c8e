/*
 * The session proper (session.h): a browser connection's opening (authentication and
 * limits are auth.c's), its ActionCable commands handled in order (subscriptions are
 * subs.c's, performs here), backpressure when the broker's queue is full, inbound
 * message reassembly, and closing. session.c alone writes struct gw_sessions and the
 * session list. Gateway thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "cable_clock.h"
#include "cable_proto.h"
#include "gw.h"
#include "sock.h"

#define MAX_DEFERRED 64           /* commands buffered behind a paused publish before we give up */
#define DEAD_PEER_MS (300 * 1000) /* see session_open */

/*
 * Refusals (docs/protocol.md, "Malformed input"): per connection, at most
 * REFUSAL_LOG_BURST log lines per REFUSAL_WINDOW_NS, the rest counted into one summary
 * line; more than MAX_INVALID invalid commands in one window close the connection.
 */
#define REFUSAL_WINDOW_NS (60 * 1000000000ull)
#define REFUSAL_LOG_BURST 5
#define MAX_INVALID       100

void session_close(struct session *s, enum cable_disconnect reason, bool reconnect,
                   enum close_code code)
{
	struct cable_frame *f;

	if (s->closing)
		return;
	s->closing = true;
	s->close_code = (uint16_t)code;
	if (s->paused)
		lws_rx_flow_control(s->wsi, 1); /* read (and drop) until the close */
	if (reason == CABLE_DISCONNECT_TOO_SLOW)
		outbound_clear(s);
	f = cable_proto_disconnect(cable_disconnect_name(reason), reconnect);
	outbound_push(s, f);
	cable_frame_unref(f);
	lws_callback_on_writable(s->wsi);
}

/*
 * May a refusal of this connection be logged now? Past the burst, lines are counted and
 * the count is logged as one line with the next allowed line or when the connection ends.
 */
bool session_refusal_logged(struct session *s)
{
	uint64_t missed;

	if (!cable_rate_allow(&s->log_rate, cable_now_ns(), REFUSAL_WINDOW_NS, REFUSAL_LOG_BURST,
	                      &missed))
		return false;
	if (missed)
		gw_log(s->gw, MOSQ_LOG_INFO,
		       "connection %s: %llu more refusals not logged (at most %d a minute)", s->sid,
		       (unsigned long long)missed, REFUSAL_LOG_BURST);
	return true;
}

/* One more invalid command; past MAX_INVALID in a window the connection is closed. */
void session_invalid_command(struct session *s)
{
	if (cable_rate_allow(&s->invalid_rate, cable_now_ns(), REFUSAL_WINDOW_NS, MAX_INVALID,
	                     NULL))
		return;
	gw_log(s->gw, MOSQ_LOG_NOTICE,
	       "connection %s (%s) closed: more than %d invalid commands in a minute", s->sid,
	       s->peer, MAX_INVALID);
	session_close(s, CABLE_DISCONNECT_INVALID_REQUEST, false, CLOSE_POLICY_VIOLATION);
}

/* The socket options of a new WebSocket; a failure is logged once per gateway. */
static void set_socket_options(struct session *s)
{
	int fd = lws_get_socket_fd(s->wsi), rc = CABLE_OK;
	char why[128];

	/*
	 * Bound the kernel's share too: with autotuning a stalled reader absorbs about
	 * 4 MiB in socket buffers before plugin_opt_max_outbound_bytes is even reached.
	 */
	if (s->gw->cfg.socket_send_buffer)
		rc = sock_set_sndbuf(fd, (int)s->gw->cfg.socket_send_buffer, why, sizeof(why));
	/*
	 * A browser that vanished without a FIN or RST (a laptop lid, a dropped network)
	 * stops acknowledging the pings: after DEAD_PEER_MS of unacknowledged data the
	 * kernel ends the connection, and lws closes it. The same clock runs while a
	 * browser that stopped reading keeps its window shut, and ending the connection
	 * discards the too_slow disconnect still queued for it; so it is as long as lws'
	 * own validity hang-up it replaces (310 s), not short (the soak's 90 s stalls must
	 * still read why they were dropped).
	 */
	if (rc == CABLE_OK)
		rc = sock_set_user_timeout(fd, DEAD_PEER_MS, why, sizeof(why));
	if (rc != CABLE_OK && !s->gw->sess.warned_sockopt) {
		s->gw->sess.warned_sockopt = true;
		gw_log(s->gw, MOSQ_LOG_WARNING, "connection %s (%s): %s", s->sid, s->peer, why);
	}
}

void session_open(struct session *s, struct gw *gw, struct lws *wsi)
{
	struct cable_frame *f;

	s->gw = gw;
	s->wsi = wsi;
	make_sid(s->sid);
	lws_get_peer_simple(wsi, s->peer, sizeof(s->peer));
	set_socket_options(s);
	s->next = gw->sess.list;
	if (gw->sess.list)
		gw->sess.list->prev = s;
	gw->sess.list = s;
	gw->sess.n++;
	atomic_fetch_add(&gw->hub->sessions, 1);
	gw->sess.connections++;

	if (gw->stopping) {
		session_close(s, CABLE_DISCONNECT_SERVER_RESTART, true, CLOSE_GOING_AWAY);
		return;
	}
	if (!within_limits(s))
		return;
	if (authenticate(s) != CABLE_OK) {
		/* As Rails: the upgrade completes, then disconnect and a normal close. */
		session_close(s, CABLE_DISCONNECT_UNAUTHORIZED, false, CLOSE_NORMAL);
		return;
	}
	/* Anonymous connections all share one name: the per-user limit does not apply. */
	if (!gw->cfg.anonymous && !within_user_limit(s))
		return;
	s->active = true;
	if (strcmp(lws_get_protocol(wsi)->name, CABLE_PROTOCOL_EXT_JSON) == 0) {
		if (!ext_attach(s)) {
			session_close(s, CABLE_DISCONNECT_SERVER_ERROR, true, CLOSE_UNEXPECTED);
			return;
		}
		ext_welcome(s); /* a restore, or a welcome with a session id to restore later */
		return;
	}
	f = cable_proto_welcome(s->sid);
	send_frame(s, f);
	cable_frame_unref(f);
}

/* ---- Performs and backpressure ------------------------------------------------- */

static void pause_session(struct session *s)
{
	if (s->paused)
		return;
	s->paused = true;
	s->paused_next = s->gw->sess.paused;
	s->gw->sess.paused = s;
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
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_INFO,
			       "connection %s (user %s): message for an identifier it is not "
			       "subscribed to; ignored",
			       s->sid, CABLE_LOG_STR(s->who.user));
		session_invalid_command(s);
		return;
	}
	if (cable_binding_perform(sub->binding, cmd->data, cmd->data_len, &pub, &info, &err) !=
	    CABLE_OK) {
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (user %s) perform refused: %s",
			       s->sid, CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(err.text));
		answer_refuse(s, sub, &info, info.refusal, seq);
		goto done;
	}
	if (s->gw->rules->acl && cable_acl_check(s->gw->rules->acl, &s->who, CABLE_ACL_WRITE,
	                                         pub.topic, strlen(pub.topic)) != CABLE_ACL_ALLOW) {
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_NOTICE,
			       "connection %s (user %s) perform refused: the ACL does not let it "
			       "write '%s'",
			       s->sid, CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(pub.topic));
		cable_publish_release(&pub);
		answer_refuse(s, sub, &info, CABLE_REFUSED_ACL, seq);
		goto done;
	}
	if (s->gw->health.unhealthy) {
		/* The broker would never publish it (no TICK): say so instead of losing it. */
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_ERR, "connection %s (user %s) perform refused: %s",
			       s->sid, CABLE_LOG_STR(s->who.user), s->gw->health.unhealthy);
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
	s->gw->sess.publishes++;
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
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_INFO,
			       "connection %s (user %s): %s for an identifier it is not subscribed "
			       "to; ignored",
			       s->sid, CABLE_LOG_STR(s->who.user),
			       CABLE_LOG_MEM(cmd->command, cmd->command_len));
		session_invalid_command(s);
		return;
	}
	room_command(s, sub, cmd);
}

static void handle_command(struct session *s, const char *buf, size_t len)
{
	struct cable_error err = {0};
	struct cable_cmd cmd = {0};

	s->gw->sess.commands_in++;
	s->gw->sess.bytes_in += len;
	if (cable_proto_decode(buf, len, &cmd, &err) != CABLE_OK) {
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_INFO,
			       "connection %s (%s): ignored a malformed command: %s", s->sid,
			       s->peer, CABLE_LOG_STR(err.text));
		session_invalid_command(s);
		return;
	}
	switch (cmd.kind) {
	case CABLE_CMD_SUBSCRIBE:
		subs_subscribe(s, &cmd);
		break;
	case CABLE_CMD_UNSUBSCRIBE:
		subs_unsubscribe(s, &cmd);
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
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_INFO,
			       "connection %s (%s): ignored unknown command '%s'", s->sid, s->peer,
			       CABLE_LOG_MEM(cmd.command, cmd.command_len));
		session_invalid_command(s);
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
		session_close(s, CABLE_DISCONNECT_INVALID_REQUEST, true, CLOSE_POLICY_VIOLATION);
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
static void session_resume(struct session *s)
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
		if (!final)
			return;
		if (session_refusal_logged(s))
			gw_log(s->gw, MOSQ_LOG_INFO, "connection %s (%s): ignored a binary frame",
			       s->sid, s->peer);
		session_invalid_command(s);
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
		session_close(s, CABLE_DISCONNECT_INVALID_REQUEST, false, CLOSE_MESSAGE_TOO_LARGE);
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
			session_close(s, CABLE_DISCONNECT_SERVER_ERROR, true, CLOSE_UNEXPECTED);
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
	struct session **pp;
	struct deferred *d;
	struct gw *gw = s->gw;
	uint64_t missed;

	if (gw == NULL)
		return; /* never opened (a refused handshake) */
	missed = cable_rate_flush(&s->log_rate);
	if (missed)
		gw_log(gw, MOSQ_LOG_INFO, "connection %s: %llu more refusals not logged", s->sid,
		       (unsigned long long)missed);
	s->dropped = true;
	if (s->ext)
		ext_detach(s); /* before its subscriptions go: a restore needs them */
	subs_clear(s);
	expiry_remove(s);
	if (s->paused) {
		for (pp = &gw->sess.paused; *pp; pp = &(*pp)->paused_next) {
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
	outbound_release(s);
	free(s->rx);
	auth_closed(s);
	cable_principal_release(&s->who);
	if (s->prev)
		s->prev->next = s->next;
	else
		gw->sess.list = s->next;
	if (s->next)
		s->next->prev = s->prev;
	gw->sess.n--;
	atomic_fetch_sub(&gw->hub->sessions, 1);
	s->gw = NULL;
}

void sessions_close_all(struct gw *gw, enum cable_disconnect reason, enum close_code code)
{
	for (struct session *s = gw->sess.list; s; s = s->next)
		session_close(s, reason, true, code);
}

/* The broker has drained to_broker since we paused: retry the paused browsers. */
void sessions_resume_paused(struct gw *gw)
{
	struct session *s, *paused = gw->sess.paused;

	gw->sess.paused = NULL;
	while ((s = paused) != NULL) {
		paused = s->paused_next;
		s->paused_next = NULL;
		session_resume(s);
	}
}
