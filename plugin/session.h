/*
 * One browser connection (struct session, lws' per-session data) and the sessions as a
 * whole: open, the ActionCable commands in order, backpressure towards the broker, and
 * closing. session.c alone writes struct gw_sessions. Gateway thread.
 *
 * A session owns its subscriptions (subs.h) and its outbound frame ring (outbound.h).
 */
#ifndef CABLE_SESSION_H
#define CABLE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cable_log.h"
#include "cable_principal.h"
#include "cable_proto.h"
#include "cable_queue.h"

#define CABLE_SID_LEN 16

struct gw;
struct sub;
struct counter;
struct resume; /* ext.c */

/* WebSocket close codes the gateway sends (RFC 6455, 7.4.1). */
enum close_code {
	CLOSE_NORMAL = 1000,
	CLOSE_GOING_AWAY = 1001,
	CLOSE_POLICY_VIOLATION = 1008,
	CLOSE_MESSAGE_TOO_LARGE = 1009,
	CLOSE_UNEXPECTED = 1011,
	CLOSE_TRY_AGAIN_LATER = 1013,
};

/* A command read while the connection was paused, kept to preserve order. */
struct deferred {
	struct deferred *next;
	size_t len;
	char buf[];
};

/*
 * One per WebSocket, libwebsockets' zeroed per-session data (user_space), so kept small: counts are
 * 32-bit (their bounds are far below that: plugin_opt_max_subscriptions, max_message_size, the
 * ring's bytes over plugin_opt_max_outbound_bytes) and the flags sit together.
 */
struct session {
	struct lws *wsi;
	struct gw *gw;
	struct session *prev, *next; /* gw->sess.list */
	struct cable_principal who;
	struct sub *subs;
	struct counter *user; /* in gw->limits.per_user while counted_user */
	size_t sub_bytes;     /* the subs' costs, against plugin_opt_max_subscription_bytes */
	struct resume *ext;   /* the extended protocol's state (ext.c); NULL for v1 */

	/* Outbound frames, a ring that grows on demand (nothing allocated up front). */
	struct cable_frame **ring;
	size_t out_bytes;
	uint32_t ring_cap, ring_head, ring_count;

	uint32_t nsubs;
	uint32_t expiry_slot; /* 1 + index in gw->expiry.heap, 0 when not there */
	uint32_t performs;    /* perform commands so far: the default request id */

	/* Inbound message reassembly (a message that lws hands over in pieces). */
	uint32_t rx_len, rx_cap;
	char *rx;

	/* Backpressure: a publish the broker queue refused, and what arrived after it. */
	struct cable_msg *pending;
	struct deferred *deferred_head, *deferred_tail;
	struct session *paused_next;
	uint32_t ndeferred;

	/* Refusals: log lines per interval, and invalid commands before a close. */
	struct cable_rate log_rate, invalid_rate;

	uint16_t close_code;
	bool active;      /* authenticated and welcomed */
	bool closing;     /* disconnect queued: read nothing more, close once written */
	bool lingering;   /* disconnect written; waiting for the client to close */
	bool unsupported; /* the client chose actioncable-unsupported */
	bool counted_ip, counted_user; /* included in gw->limits.per_ip / per_user */
	bool rx_binary;
	bool rx_overflow;
	bool paused;
	bool dropped;         /* session_closed runs: presence lingers for the TTL (room.c) */
	float whisper_tokens; /* whisper token bucket (room.c) */
	long long whisper_ms; /* its last refill, ms; 0 = full */
	char sid[CABLE_SID_LEN + 1];
	char peer[48]; /* the client's address as text (INET6_ADDRSTRLEN is 46) */
};

struct gw_sessions {
	struct session *list;
	size_t n;
	struct session *paused; /* waiting for room in to_broker */
	uint64_t connections;   /* accepted WebSockets, ever */
	uint64_t commands_in;   /* client commands read */
	uint64_t bytes_in;
	uint64_t publishes;  /* browser performs handed to the broker */
	bool warned_sockopt; /* a socket option failed (logged once) */
};

/* LWS_CALLBACK_ESTABLISHED, LWS_CALLBACK_RECEIVE, LWS_CALLBACK_CLOSED. */
void session_open(struct session *s, struct gw *gw, struct lws *wsi);
void session_receive(struct session *s, const void *in, size_t len);
void session_closed(struct session *s);

/*
 * Refusals (docs/protocol.md, "Malformed input"). session_refusal_logged: may a refusal of
 * this connection be logged now (at most a few lines a minute, the rest counted into one
 * line)? session_invalid_command: one more invalid command; past the limit in a minute the
 * connection is closed with invalid_request.
 */
bool session_refusal_logged(struct session *s);
void session_invalid_command(struct session *s);

/*
 * Queue a disconnect with this reason and close once it is written. What was queued
 * before is dropped when the reason is too_slow (it is what the client could not take).
 */
void session_close(struct session *s, enum cable_disconnect reason, bool reconnect,
                   enum close_code code);

/* Tell every session `reason` and close it (the gateway is stopping). */
void sessions_close_all(struct gw *gw, enum cable_disconnect reason, enum close_code code);

/* The broker queue has room again: resume every paused session. */
void sessions_resume_paused(struct gw *gw);

#endif
