/*
 * The outbound path of a session (outbound.h): the frame ring that grows on demand, the
 * slow-consumer bound checked as frames are queued, the writes that drain the ring (a
 * lone frame at the end of a hold, else corked batches in the writable callback), and
 * the linger after the final disconnect. outbound.c alone writes struct gw_out and the
 * ring members of struct session. Gateway thread.
 */
#include <stdlib.h>

#include <mosquitto.h>

#include "gw.h"
#include "sock.h"

#define SLOW_GRACE 16                    /* see send_frame */
#define LINGER_US  (300 * LWS_US_PER_MS) /* see session_writeable */
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

void outbound_clear(struct session *s)
{
	while (s->ring_count)
		cable_frame_unref(ring_pop(s));
}

/* During a hold: note a session whose ring has just had its first frame. */
static bool hold_add(struct gw_out *o, struct session *s)
{
	struct session **grown;
	size_t cap;

	if (o->nheld == o->held_cap) {
		cap = o->held_cap ? o->held_cap * 2 : 64;
		grown = realloc(o->held, cap * sizeof(*grown));
		if (grown == NULL)
			return false;
		o->held = grown;
		o->held_cap = cap;
	}
	o->held[o->nheld++] = s;
	return true;
}

/*
 * Queue a frame without the slow-consumer check: only session_close's one disconnect
 * (every other frame goes through send_frame).
 */
void outbound_push(struct session *s, struct cable_frame *f)
{
	bool was_empty = s->ring_count == 0;

	if (f == NULL || ring_push(s, f) != CABLE_OK || !was_empty)
		return;
	if (s->gw->out.hold && !s->closing && hold_add(&s->gw->out, s))
		return; /* written by outbound_flush */
	lws_callback_on_writable(s->wsi);
}

/*
 * Queue any frame for the client: replies, pings, broadcasts, everything but the final
 * disconnect. It counts against plugin_opt_max_outbound_bytes now, as it is queued: a
 * client that sends commands and never reads is closed near the bound, whatever kind of
 * frames pile up for it.
 */
void send_frame(struct session *s, struct cable_frame *f)
{
	if (f == NULL || s->closing)
		return;
	/*
	 * Over the bound, a connection is too slow only if its socket has stopped taking
	 * data: a burst queued within one service round is ours to write, not the
	 * browser's fault. Even then the backlog stays within SLOW_GRACE times the bound.
	 */
	if (s->out_bytes + f->len > s->gw->cfg.max_outbound &&
	    (s->out_bytes + f->len > SLOW_GRACE * s->gw->cfg.max_outbound ||
	     sock_send_full(lws_get_socket_fd(s->wsi)))) {
		s->gw->out.too_slow++;
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) closed: too slow, %zu bytes waiting "
		       "(plugin_opt_max_outbound_bytes)",
		       s->sid, s->peer, s->out_bytes);
		session_close(s, CABLE_DISCONNECT_TOO_SLOW, true, CLOSE_NORMAL);
		return;
	}
	outbound_push(s, f);
}

void session_send(struct session *s, struct cable_frame *f)
{
	if (s->active)
		send_frame(s, f);
}

/*
 * TCP_CORK around a batch: lws writes each frame with its own send(), and corked, the
 * kernel joins them into full segments and sends them at the uncork, so a backlog of
 * small frames costs one trip through TCP (and one wake-up of the reader) instead of
 * one per frame. The framing stays lws'. A failure costs only that batching: logged once.
 */
static void cork(struct session *s, bool on)
{
	char why[128];

	if (sock_set_cork(lws_get_socket_fd(s->wsi), on, why, sizeof(why)) == CABLE_OK ||
	    s->gw->out.warned_cork)
		return;
	s->gw->out.warned_cork = true;
	gw_log(s->gw, MOSQ_LOG_WARNING, "connection %s (%s): %s; frames go out unbatched", s->sid,
	       s->peer, why);
}

/*
 * Write up to 64 queued frames, corked when there is more than one; the rest stays
 * queued. -1 when the socket failed.
 */
static int write_batch(struct session *s)
{
	struct cable_frame *f;
	bool corked = s->ring_count > 1;
	int n = 0;

	if (corked)
		cork(s, true);
	while (s->ring_count && n < 64) {
		f = ring_pop(s);
		if (lws_write(s->wsi, (unsigned char *)cable_frame_data(f), f->len,
		              LWS_WRITE_TEXT) < (int)f->len) {
			cable_frame_unref(f);
			return -1;
		}
		s->gw->out.frames_out++;
		s->gw->out.bytes_out += f->len;
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
		cork(s, false);
	return 0;
}

void outbound_hold(struct gw *gw)
{
	gw->out.hold++;
}

/*
 * The end of a hold: a session that was given one frame gets it written now, outside
 * the writable callback. Asking lws for that callback costs two epoll_ctl() per
 * connection (write interest on, then off) and a turn of the loop: when one message goes
 * to every browser, that was two of the three system calls per delivery. lws allows
 * lws_write() outside the callback while nothing of the connection's is pending (no
 * partial write held by lws); a partial write is then held and sent by lws itself, which
 * asks for the callback. A session given several frames waits for the callback as
 * before: by then more have usually joined them, and the larger corked batch is what a
 * saturated fan-out rests on (writing those at once too measured 17 % fewer deliveries/s
 * at 10,000 subscribers: smaller batches). So does a closing session, and one whose
 * socket did not take its last write whole.
 */
void outbound_flush(struct gw *gw)
{
	struct gw_out *o = &gw->out;
	struct session *s;
	size_t i;

	if (o->hold == 0 || --o->hold)
		return;
	for (i = 0; i < o->nheld; i++) {
		s = o->held[i];
		if (s->ring_count == 0)
			continue;
		if (s->ring_count == 1 && !s->closing && !lws_partial_buffered(s->wsi)) {
			if (write_batch(s) < 0) {
				/* No callback to return -1 from: lws closes it next turn. */
				lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
				gw_kick(gw, 0);
			}
			continue;
		}
		lws_callback_on_writable(s->wsi);
	}
	o->nheld = 0;
}

/* LWS_CALLBACK_SERVER_WRITEABLE: write a batch of queued frames. */
int session_writeable(struct session *s)
{
	if (write_batch(s) < 0)
		return -1;
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
	if (!lws_is_ssl(s->wsi)) /* under TLS the bytes belong to OpenSSL's record layer */
		sock_drain_unread(lws_get_socket_fd(s->wsi));
	lws_close_reason(s->wsi, (enum lws_close_status)s->close_code, NULL, 0);
	return -1;
}

void outbound_release(struct session *s)
{
	struct gw_out *o = &s->gw->out;
	size_t i;

	outbound_clear(s);
	free(s->ring);
	s->ring = NULL;
	s->ring_cap = s->ring_head = 0;
	/* Not expected during a hold (see outbound.h), but never leave a dangling entry. */
	for (i = 0; o->hold && i < o->nheld;) {
		if (o->held[i] == s)
			o->held[i] = o->held[--o->nheld];
		else
			i++;
	}
	/* The last session: the hold list goes too (the gateway is idle or stopping). */
	if (s->gw->sess.n <= 1 && o->hold == 0) {
		free(o->held);
		o->held = NULL;
		o->held_cap = o->nheld = 0;
	}
}
