/*
 * The outbound path of a session: its frame ring, the writable callback that drains it
 * in corked batches, the slow-consumer bound (plugin_opt_max_outbound_bytes) and the
 * linger after the final disconnect. outbound.c alone writes struct gw_out and the
 * ring members of struct session. Gateway thread.
 */
#ifndef CABLE_OUTBOUND_H
#define CABLE_OUTBOUND_H

#include <stdbool.h>
#include <stdint.h>

#include "cable_frame.h"

struct session;

struct gw_out {
	uint64_t frames_out, bytes_out; /* frames written to sockets */
	uint64_t too_slow;              /* slow-consumer disconnects */
	bool warned_cork;               /* a TCP_CORK failure was logged */
};

/* Queue any frame for an active session (takes a new reference). */
void session_send(struct session *s, struct cable_frame *f);

/* The same for a session not yet welcomed (the welcome itself, replies). */
void send_frame(struct session *s, struct cable_frame *f);

/* The final disconnect: queued without the slow-consumer check. */
void outbound_push(struct session *s, struct cable_frame *f);

/* Drop every queued frame (too_slow: what the client could not take). */
void outbound_clear(struct session *s);

/* Free the ring (the session is closed). */
void outbound_release(struct session *s);

/* LWS_CALLBACK_SERVER_WRITEABLE and LWS_CALLBACK_TIMER (the linger). */
int session_writeable(struct session *s);
int session_timer(struct session *s);

#endif
