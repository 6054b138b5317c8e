/*
 * The outbound path of a session: its frame ring, the writes that drain it (a lone
 * frame at the end of a hold, else corked batches in the writable callback), the
 * slow-consumer bound (plugin_opt_max_outbound_bytes) and the linger after the final
 * disconnect. outbound.c alone writes struct gw_out and the ring members of struct
 * session. Gateway thread.
 */
#ifndef CABLE_OUTBOUND_H
#define CABLE_OUTBOUND_H

#include <stdbool.h>
#include <stdint.h>

#include "cable_frame.h"

struct gw;
struct session;

struct gw_out {
	uint64_t frames_out, bytes_out; /* frames written to sockets */
	uint64_t too_slow;              /* slow-consumer disconnects */
	struct session **held;          /* sessions given their first frame during a hold */
	size_t nheld, held_cap;
	unsigned hold;    /* outbound_hold depth */
	bool warned_cork; /* a TCP_CORK failure was logged */
};

/* Queue any frame for an active session (takes a new reference). */
void session_send(struct session *s, struct cable_frame *f);

/* The same for a session not yet welcomed (the welcome itself, replies). */
void send_frame(struct session *s, struct cable_frame *f);

/* The final disconnect: queued without the slow-consumer check. */
void outbound_push(struct session *s, struct cable_frame *f);

/*
 * A hold: between outbound_hold and outbound_flush, a session's first queued frame
 * does not ask lws for the writable callback. The flush writes it at once if it is
 * still the session's only frame; a session given more asks for the callback then.
 * Around work that queues frames for many sessions in one go (the broker's messages,
 * the pings). No session may be freed during a hold (lws closes connections only
 * between callbacks).
 */
void outbound_hold(struct gw *gw);
void outbound_flush(struct gw *gw);

/* Drop every queued frame (too_slow: what the client could not take). */
void outbound_clear(struct session *s);

/* Free the ring (the session is closed). */
void outbound_release(struct session *s);

/* LWS_CALLBACK_SERVER_WRITEABLE and LWS_CALLBACK_TIMER (the linger). */
int session_writeable(struct session *s);
int session_timer(struct session *s);

#endif
