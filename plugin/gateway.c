/*
 * The gateway: a libwebsockets server on its own thread, loaded by the broker adapter
 * with its own libwebsockets copy (see cable_gateway.h for why).
 *
 * Thread: start() and stop() run on the broker thread; wake() on any thread (it only
 * calls lws_cancel_service); everything else on the gateway thread. The broker thread
 * creates the context in start() so that a port in use fails the broker's start-up
 * with a clear message; from then on only the gateway thread touches it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include <ev.h>
#include <mosquitto.h>
#include <openssl/ssl.h>

#include "cable_proto.h"
#include "gateway_internal.h"

_Static_assert(CABLE_FRAME_HEADROOM >= LWS_PRE, "frames need LWS_PRE bytes of headroom");

#define STOP_GRACE_US (1500 * LWS_US_PER_MS) /* time for server_restart frames to leave */

/* Broker thread (listen_open): what a failed bind() or listen() means, for the operator. */
const char *listen_error_text(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "in use (another broker, or a previous run still up? "
		       "ss -ltnp shows who holds it)";
	case EADDRNOTAVAIL:
		return "not a local address of this host";
	case EACCES:
	case EPERM:
		return "not permitted (ports below 1024 need privileges the broker has dropped "
		       "by the time it loads plugins)";
	default:
		return strerror(e);
	}
}

/* ---- Logging: lines go to the broker thread, which alone may call mosquitto_log ---- */

void gw_log(struct gw *gw, int level, const char *fmt, ...)
{
	struct cable_msg *m;
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	m = cable_msg_new(CABLE_MSG_LOG, line, (size_t)n, NULL, 0);
	if (m == NULL)
		return;
	m->level = level;
	/* A full queue drops the line: logs never push out a browser's publish. */
	if (cable_queue_push(&gw->link->to_broker, m, false) != CABLE_OK)
		cable_msg_free(m);
}

/*
 * libwebsockets' own log lines (errors and warnings only). They are emitted on the
 * gateway thread, or on the broker thread inside start(); either way they only queue.
 */
static struct gw *lws_log_target;

static void lws_log_emit(int level, const char *line)
{
	size_t len = strlen(line);

	if (lws_log_target == NULL)
		return;
	/* Our own refusals (path, Origin) are logged by us, with the reason. */
	if (strstr(line, "User code denied connection"))
		return;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	gw_log(lws_log_target, level == LLL_ERR ? MOSQ_LOG_ERR : MOSQ_LOG_WARNING,
	       "libwebsockets: %.*s", (int)len, line);
}

/* ---- Handing publishes to the broker ------------------------------------------------ */

#define NUDGE_US (2 * LWS_US_PER_MS)

/*
 * The wake signal can be lost: if it arrives while the broker thread is finishing a
 * TICK, after it took the queue but before its next epoll_wait, the handler runs, the
 * wait then sleeps its full 100 ms, and the publish waits with it (the benchmark's
 * perform p99 showed that tail). So while anything we queued is still waiting, signal
 * again every 2 ms.
 */
static void broker_nudge(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, nudge_sul);
	struct cable_queue *q = &gw->link->to_broker;
	size_t waiting;

	cable_queue_stats(q, &waiting, NULL);
	if (waiting == 0) {
		gw->nudging = false;
		return;
	}
	if (q->wake)
		q->wake(q->wake_arg);
	gw_schedule(gw, &gw->nudge_sul, broker_nudge, NUDGE_US);
}

/* Gateway thread: queue a browser's publish for the broker thread. */
int gw_push_to_broker(struct gw *gw, struct cable_msg *m)
{
	int rc = cable_queue_push(&gw->link->to_broker, m, false);

	if (rc == CABLE_OK && !gw->nudging) {
		gw->nudging = true;
		gw_schedule(gw, &gw->nudge_sul, broker_nudge, NUDGE_US);
	}
	return rc;
}

/* ---- Timers ------------------------------------------------------------------------- */

/*
 * The broker runs MOSQ_EVT_TICK about ten times a second. If it never has after a few
 * seconds (Mosquitto 2.0.11 with per_listener_settings true sends plugins none), no
 * browser publish and no log line of ours can leave: say so on stderr, the one channel
 * that needs no broker thread.
 */
static void check_ticks(struct gw *gw)
{
	if (gw->warned_tick || ++gw->pings * gw->cfg.ping_interval < 5)
		return;
	gw->warned_tick = true;
	if (atomic_load_explicit(&gw->link->ticks, memory_order_relaxed) != 0)
		return;
	/* From now on /health answers 503 with this, and performs are refused with it. */
	gw->unhealthy = "the broker sends no MOSQ_EVT_TICK, so browser publishes cannot be "
	                "delivered: set per_listener_settings false (Mosquitto 2.0.11-2.0.14 "
	                "send plugins no TICK otherwise)";
	fprintf(stderr, "mosquitto-cable: error: %s\n", gw->unhealthy);
	gw_log(gw, MOSQ_LOG_ERR, "%s", gw->unhealthy);
}

/*
 * glibc returns a thread arena's memory only from its top, so after a crowd of
 * browsers leaves, the gateway's freed memory stays mapped, pinned by a few
 * long-lived blocks (the soak test saw RSS stay 25 MB up with 94 KiB in use). When
 * the connection count has halved since the last look, give the free pages back.
 * The same after any other burst (large identifiers and messages, replies waiting for
 * a slow reader): when the memory resident but not handed out by malloc is TRIM_GROWTH
 * above its lowest level and malloc holds that much free. A trim that could not give
 * enough back (fragmentation) is retried only once TRIM_RETRY more is resident.
 */
#define TRIM_GROWTH ((size_t)4 * 1024 * 1024)
#define TRIM_RETRY  ((size_t)1024 * 1024)

/* Resident bytes that malloc has not handed out (code, libraries, free heap pages). */
static size_t resident_unused(struct mallinfo2 *mi)
{
	unsigned long size, pages = 0;
	size_t rss, used;
	FILE *f;

	*mi = mallinfo2();
	used = mi->uordblks + mi->hblkhd;
	f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &pages) != 2)
		pages = 0;
	fclose(f);
	rss = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
	return rss > used ? rss - used : 0;
}

static void trim_now(struct gw *gw)
{
	struct mallinfo2 mi;

	malloc_trim(0);
	gw->unused_after_trim = resident_unused(&mi);
}

static void trim_memory(struct gw *gw)
{
	struct mallinfo2 mi;
	size_t unused;

	if (gw->nsessions > gw->peak_sessions)
		gw->peak_sessions = gw->nsessions;
	if (gw->peak_sessions >= 256 && gw->nsessions < gw->peak_sessions / 2) {
		trim_now(gw);
		gw->peak_sessions = gw->nsessions;
		return;
	}
	unused = resident_unused(&mi);
	if (unused < gw->unused_base)
		gw->unused_base = unused;
	if (unused < gw->unused_after_trim)
		gw->unused_after_trim = unused;
	if (unused >= gw->unused_base + TRIM_GROWTH && mi.fordblks >= TRIM_GROWTH &&
	    unused >= gw->unused_after_trim + TRIM_RETRY)
		trim_now(gw);
}

static void ping_all(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, ping_sul);
	struct cable_frame *f;
	struct session *s;

	f = cable_proto_ping((long long)time(NULL));
	if (f) {
		for (s = gw->sessions; s; s = s->next)
			session_send(s, f);
		cable_frame_unref(f);
	}
	gw_schedule(gw, &gw->ping_sul, ping_all,
	            (lws_usec_t)gw->cfg.ping_interval * LWS_US_PER_SEC);
	ext_tick(gw);
	check_ticks(gw);
	trim_memory(gw);
	listen_flush_logs(gw);
}

static void metrics_tick(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, metrics_sul);

	metrics_publish(gw);
	gw_schedule(gw, &gw->metrics_sul, metrics_tick,
	            (lws_usec_t)gw->cfg.metrics_interval * LWS_US_PER_SEC);
}

static void stop_check(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, stop_sul);

	if (gw->nsessions == 0 || lws_now_usecs() >= gw->stop_deadline_us) {
		gw->finished = true;
		return;
	}
	gw_schedule(gw, &gw->stop_sul, stop_check, 20 * LWS_US_PER_MS);
}

static void begin_stop(struct gw *gw)
{
	struct session *s;

	gw->stopping = true;
	if (gw->nsessions)
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "closing %zu connections: server_restart (the broker is stopping)",
		       gw->nsessions);
	listen_update(gw); /* accept nothing more */
	for (s = gw->sessions; s; s = s->next)
		session_close(s, "server_restart", true, LWS_CLOSE_STATUS_GOINGAWAY);
	gw->stop_deadline_us = lws_now_usecs() + STOP_GRACE_US;
	stop_check(&gw->stop_sul);
}

/* ---- The inbox from the broker ------------------------------------------------------ */

/*
 * Messages handled per wake-up. A larger backlog is left for the next round of the
 * service loop (we wake ourselves), so sockets get written between rounds: a healthy
 * browser drains a device's burst as it goes instead of owing all of it at once.
 */
#define INBOX_BATCH 16

static void drain_inbox(struct gw *gw, bool from_timer);

static void inbox_continue(lws_sorted_usec_list_t *sul)
{
	drain_inbox(lws_container_of(sul, struct gw, inbox_sul), true);
}

/*
 * from_timer: called by the continuation timer, which runs once per service round.
 * A wake-up that finds a backlog only appends to it, so batches never run twice in a
 * round without the writes between them.
 */
static void drain_inbox(struct gw *gw, bool from_timer)
{
	struct cable_msg *m, *next;
	struct session *s, *paused;
	bool was_waiting = false;
	int n = 0;

	/* Append what the broker queued to what is left from the last round. */
	m = cable_queue_take_all(&gw->link->to_gateway, &was_waiting);
	if (m) {
		if (gw->backlog_tail)
			gw->backlog_tail->next = m;
		else
			gw->backlog = m;
		while (m->next)
			m = m->next;
		gw->backlog_tail = m;
	}
	if (gw->backlog_pending && !from_timer)
		goto resume_paused;
	gw->backlog_pending = false;
	for (m = gw->backlog; m && n < INBOX_BATCH; m = next, n++) {
		next = m->next;
		switch (m->kind) {
		case CABLE_MSG_PUBLISH:
			fanout_dispatch(gw, m);
			if (m->answer)
				answer_from_broker(gw, m); /* acknowledged after its fan-out */
			break;
		case CABLE_MSG_REFUSED:
		case CABLE_MSG_REPLY:
		case CABLE_MSG_ACK:
			answer_from_broker(gw, m);
			break;
		case CABLE_MSG_RULES:
			cable_rules_free(gw->rules);
			gw->rules = m->ptr;
			session_rebind_all(gw);
			break;
		case CABLE_MSG_LOG:
			break;
		}
		cable_msg_free(m);
	}
	gw->backlog = m;
	if (m == NULL)
		gw->backlog_tail = NULL;
	else { /* come back after this round's writes (timers run before the poll) */
		gw->backlog_pending = true;
		gw_schedule(gw, &gw->inbox_sul, inbox_continue, 1);
	}
resume_paused:
	/* The broker has drained to_broker since we paused: retry the paused browsers. */
	paused = gw->paused;
	gw->paused = NULL;
	while ((s = paused) != NULL) {
		paused = s->paused_next;
		s->paused_next = NULL;
		session_resume(s);
	}
	if (atomic_load(&gw->stop_requested) && !gw->stopping)
		begin_stop(gw);
}

/* ---- lws protocol callbacks -------------------------------------------------------- */

static int header_equals(struct lws *wsi, enum lws_token_indexes t, const char *want)
{
	char buf[1024];
	int n = lws_hdr_copy(wsi, buf, sizeof(buf), t);

	return n >= 0 && strcmp(buf, want) == 0;
}

/* Origin check before the upgrade; a refusal is an HTTP 403 (and a log line). */
static bool origin_allowed(struct gw *gw, struct lws *wsi)
{
	char origin[512], peer[64];
	int n;

	if (gw->origins == NULL)
		return true;
	n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (cable_origins_allow(gw->origins, n > 0 ? origin : NULL, n > 0 ? (size_t)n : 0))
		return true;
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	gw_log(gw, MOSQ_LOG_NOTICE,
	       "upgrade from %s refused: Origin '%.100s' is not allowed "
	       "(plugin_opt_allowed_origins)",
	       peer, n > 0 ? origin : "(none)");
	lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, "Origin not allowed");
	return false;
}

static int http_reply(struct lws *wsi, unsigned status, const char *body)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
	                                  *end = buf + sizeof(buf) - 1;
	size_t len = strlen(body);

	if (lws_add_http_common_headers(wsi, status, "text/plain", (lws_filepos_t)len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (lws_write(wsi, (unsigned char *)body, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/* /health: 200 ok, or 503 with the reason the gateway cannot do its job. */
static int health_reply(struct gw *gw, struct lws *wsi)
{
	char body[512];

	if (gw->unhealthy == NULL)
		return http_reply(wsi, HTTP_STATUS_OK, "ok\n");
	snprintf(body, sizeof(body), "unhealthy: %s\n", gw->unhealthy);
	return http_reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, body);
}

static int metrics_reply(struct gw *gw, struct lws *wsi)
{
	char *body = malloc(64 * 1024);
	int rc;

	if (body == NULL)
		return -1;
	body[metrics_render(gw, body, 64 * 1024 - 1)] = '\0';
	rc = http_reply(wsi, HTTP_STATUS_OK, body);
	free(body);
	return rc;
}

static int callback_cable(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct gw *gw = lws_context_user(lws_get_context(wsi));
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (gw)
			drain_inbox(gw, false);
		return 0;

	case LWS_CALLBACK_WSI_DESTROY: /* every wsi of the vhost comes here (protocols[0]) */
		if (gw)
			listen_destroyed(gw, wsi);
		return 0;

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/*
		 * libwebsockets 4.1 cannot parse a Sec-WebSocket-Protocol list of 128 bytes or
		 * more (AnyCable's anycable-token.<jwt> makes one) and would hang up without a
		 * word. Refuse it with a reason instead.
		 */
		if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) >= 128) {
			gw_log(gw, MOSQ_LOG_NOTICE,
			       "upgrade refused: Sec-WebSocket-Protocol is over 127 bytes (a token "
			       "sub-protocol?); pass the token as ?%s=",
			       gw->cfg.token_param);
			lws_return_http_status(
			        wsi, HTTP_STATUS_BAD_REQUEST,
			        "Sec-WebSocket-Protocol too long: pass the token in the "
			        "query string");
			return 1;
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* Only upgrades on the configured path, and only from allowed origins. */
		if (!header_equals(wsi, WSI_TOKEN_GET_URI, gw->cfg.path)) {
			lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "Page not found");
			return -1;
		}
		return origin_allowed(gw, wsi) ? 0 : -1;

	case LWS_CALLBACK_HTTP:
		/* Plain HTTP: /health, else 404 as Rails answers a non-WebSocket request. */
		if (header_equals(wsi, WSI_TOKEN_GET_URI, "/health"))
			return health_reply(gw, wsi);
		if (header_equals(wsi, WSI_TOKEN_GET_URI, "/metrics"))
			return metrics_reply(gw, wsi);
		return http_reply(wsi, HTTP_STATUS_NOT_FOUND, "Page not found\n");

	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		/*
		 * A static file went out: end the HTTP/1.1 transaction so the keep-alive
		 * connection can carry the next request.
		 */
		return lws_http_transaction_completed(wsi) ? -1 : 0;

	case LWS_CALLBACK_ESTABLISHED:
		listen_established(gw, wsi);
		session_open(s, gw, wsi);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		session_receive(s, in, len);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s->gw ? session_writeable(s) : -1;

	case LWS_CALLBACK_TIMER:
		return session_timer(s);

	case LWS_CALLBACK_CLOSED:
		session_closed(s);
		return 0;

	default:
		return 0;
	}
}

/*
 * Rails clients offer ["actioncable-v1-json", "actioncable-unsupported"]. A client that
 * offers only the sentinel gets it, which tells a Rails client to stop for good; we
 * then say nothing and let it close.
 */
static int callback_unsupported(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                void *in, size_t len)
{
	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_ESTABLISHED)
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 10);
	return 0;
}

/*
 * lws caps every send() at tx_packet_size, or at rx_buffer_size when that is 0: a frame
 * larger than the receive buffer would leave in pieces, one per turn of the loop. Frames
 * go out whole instead (the kernel takes what fits; lws keeps the rest).
 */
#define TX_PACKET_SIZE (1024 * 1024)

static const struct lws_protocols protocols[] = {
        /*
         * rx_buffer_size (set from plugin_opt_receive_buffer in start()): lws allocates it
         * for every connection and reads at most that much from a socket per turn of the
         * loop; session_receive() reassembles larger messages.
         */
        {CABLE_PROTOCOL_V1_JSON, callback_cable, sizeof(struct session), 0, 0, NULL,
         TX_PACKET_SIZE},
        /* AnyCable's extended protocol: the same sessions, with ext.c's additions. */
        {CABLE_PROTOCOL_EXT_JSON, callback_cable, sizeof(struct session), 0, 0, NULL,
         TX_PACKET_SIZE},
        {CABLE_PROTOCOL_UNSUPPORTED, callback_unsupported, 0, 256, 0, NULL, 0},
        {CABLE_PROTOCOL_LISTENER, callback_listener, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0}, /* state_protocol, set in start() */
        {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- Thread -------------------------------------------------------------------------- */

static void *gateway_main(void *arg)
{
	struct gw *gw = arg;
	struct mallinfo2 mi;

	gw->unused_base = gw->unused_after_trim = resident_unused(&mi); /* see trim_memory */
	gw_schedule(gw, &gw->ping_sul, ping_all,
	            (lws_usec_t)gw->cfg.ping_interval * LWS_US_PER_SEC);
	state_start(gw);
	if (gw->cfg.metrics_topic)
		gw_schedule(gw, &gw->metrics_sul, metrics_tick,
		            (lws_usec_t)gw->cfg.metrics_interval * LWS_US_PER_SEC);
	/* A stop requested before the thread ran is seen at the first wake-up. */
	lws_cancel_service(gw->ctx);
	while (!gw->finished) {
		if (gw->loop)
			ev_run(gw->loop, EVRUN_ONCE);
		else
			lws_service(gw->ctx, 0);
	}
	lws_context_destroy(gw->ctx);
	gw->ctx = NULL;
	return NULL;
}

/* ---- The event loop ------------------------------------------------------------------ */

/*
 * Timers under libev: lws 4.1.6's libev glue re-arms its one loop timer with
 * ev_timer_set() + ev_timer_start(), which libev ignores while that timer is already
 * running. A timer scheduled earlier than the one armed (a 300 ms linger while the
 * 3 s ping is armed) then fires only when the armed one does, unless socket activity
 * comes first. So every timer the gateway sets also arms an ev timer of ours for the
 * same moment (the kick), and the kick wakes lws (lws_cancel_service), whose wake-up
 * path runs every lws timer that is due. A slow kick every KICK_MAX_US covers lws' own
 * timeouts (handshake, close).
 */
#define KICK_MAX_US (100 * LWS_US_PER_MS)

#define KICK_MAX ((ev_tstamp)KICK_MAX_US / LWS_US_PER_SEC)

/* The kick: after firing it repeats every KICK_MAX until gw_kick brings it forward. */
static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw *gw = w->data;

	(void)loop;
	(void)revents;
	lws_cancel_service(gw->ctx);
}

/* Gateway thread. */
void gw_kick(struct gw *gw, lws_usec_t us)
{
	ev_tstamp after = (ev_tstamp)us / LWS_US_PER_SEC;

	if (gw->loop == NULL)
		return; /* lws' own loop has no such problem */
	if (ev_is_active(&gw->kick) && ev_timer_remaining(gw->loop, &gw->kick) <= after)
		return;
	ev_timer_stop(gw->loop, &gw->kick);
	ev_timer_set(&gw->kick, after, KICK_MAX);
	ev_timer_start(gw->loop, &gw->kick);
}

/* lws_sul_schedule, and the kick (see above). Gateway thread. */
void gw_schedule(struct gw *gw, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
	lws_sul_schedule(gw->ctx, 0, sul, cb, us);
	if (us != (lws_usec_t)LWS_SET_TIMER_USEC_CANCEL)
		gw_kick(gw, us);
}

/*
 * Broker thread, in start(). lws' own loop calls poll() over every connection on every
 * turn, so its cost grows with the connections whether they are busy or not: at 19,000
 * connections it was 70 % of the gateway thread during a connection storm. With
 * plugin_opt_event_loop epoll (the default) lws runs on a libev loop of ours, on epoll,
 * whose cost follows the sockets that are ready.
 *
 * lws loads its libev glue, libwebsockets-evlib_ev.so, with a plain dlopen(), which would
 * bind the glue's lws calls to the first lws in the process: the copy inside Debian's
 * mosquitto (see plugin/broker.c). Loading it here first with RTLD_DEEPBIND binds them to
 * libwebsockets.so.17, the one this gateway uses; lws' own dlopen then finds it loaded.
 */
#define EVLIB_FILE LWS_INSTALL_LIBDIR "/libwebsockets-evlib_ev.so"

static int event_loop_open(struct gw *gw, char *err, size_t errlen)
{
	int mode = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;

	if (getenv("CABLE_NO_DEEPBIND")) /* sanitizer builds: see plugin/broker.c */
		mode &= ~RTLD_DEEPBIND;
	gw->evlib = dlopen(EVLIB_FILE, mode);
	if (gw->evlib == NULL) {
		snprintf(err, errlen,
		         "plugin_opt_event_loop epoll needs %s (Debian: libwebsockets-evlib-ev): "
		         "%s; or set plugin_opt_event_loop poll",
		         EVLIB_FILE, dlerror());
		return CABLE_EINVAL;
	}
	/* No signal handling of libev's: the broker owns the process's signals. */
	gw->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (gw->loop == NULL) {
		snprintf(err, errlen, "plugin_opt_event_loop epoll: cannot create an epoll loop");
		return CABLE_EINVAL;
	}
	gw->loops[0] = gw->loop;
	ev_timer_init(&gw->kick, kick_cb, KICK_MAX, KICK_MAX);
	gw->kick.data = gw;
	ev_timer_start(gw->loop, &gw->kick);
	return CABLE_OK;
}

static void event_loop_close(struct gw *gw)
{
	if (gw->loop) {
		ev_timer_stop(gw->loop, &gw->kick);
		ev_loop_destroy(gw->loop);
	}
	gw->loop = NULL;
	if (gw->evlib)
		dlclose(gw->evlib);
	gw->evlib = NULL;
}

static void gw_free(struct gw *gw)
{
	size_t i;

	if (gw == NULL)
		return;
	answer_release(gw);
	ext_release(gw);
	room_release(gw);
	fanout_release(gw);
	expiry_release(gw);
	listen_release(gw);
	state_release(gw);
	event_loop_close(gw);
	cable_msg_free_chain(gw->backlog);
	cable_rules_free(gw->rules);
	cable_origins_free(gw->origins);
	for (i = 0; i < CABLE_ARRAY_LEN(gw->strings); i++)
		free(gw->strings[i]);
	free(gw);
}

static int copy_config(struct gw *gw, const struct cable_gateway_config *cfg)
{
	const char **fields[] = {&gw->cfg.address,        &gw->cfg.path,
	                         &gw->cfg.token_param,    &gw->cfg.tls_cert,
	                         &gw->cfg.tls_key,        &gw->cfg.tls_ca,
	                         &gw->cfg.http_dir,       &gw->cfg.allowed_origins,
	                         &gw->cfg.token_cookie,   &gw->cfg.metrics_topic,
	                         &gw->cfg.state_listener, &gw->cfg.state_client_id,
	                         &gw->cfg.state_secret};
	size_t i;

	_Static_assert(CABLE_ARRAY_LEN(fields) <= CABLE_ARRAY_LEN(gw->strings), "gw->strings");
	gw->cfg = *cfg;
	for (i = 0; i < CABLE_ARRAY_LEN(fields); i++) {
		if (*fields[i] == NULL)
			continue;
		gw->strings[i] = strdup(*fields[i]);
		if (gw->strings[i] == NULL)
			return CABLE_ENOMEM;
		*fields[i] = gw->strings[i];
	}
	return CABLE_OK;
}

static const lws_retry_bo_t no_validity_checks = {0};

static struct cable_gateway *gw_start(const struct cable_gateway_config *cfg,
                                      struct cable_link *link, struct cable_rules *rules, char *err,
                                      size_t errlen)
{
	struct lws_context_creation_info info;
	sigset_t all, old;
	struct gw *gw;

	gw = calloc(1, sizeof(*gw));
	if (gw == NULL || copy_config(gw, cfg) != CABLE_OK) {
		snprintf(err, errlen, "out of memory");
		gw_free(gw);
		return NULL;
	}
	gw->link = link;
	gw->listen_fd = -1;
	atomic_init(&gw->stop_requested, false);
	if (gw->cfg.state_listener) {
		struct sockaddr_storage ss;
		unsigned sslen;

		if (state_parse_listener(gw->cfg.state_listener, &ss, &sslen) != CABLE_OK ||
		    gw->cfg.state_client_id == NULL || gw->cfg.state_secret == NULL) {
			snprintf(err, errlen,
			         "plugin_opt_state_listener: '%s' is neither a unix socket path "
			         "(a path with no ':' or with a '/') nor LOOPBACKADDRESS:PORT",
			         gw->cfg.state_listener);
			gw_free(gw);
			return NULL;
		}
	}
	if (ext_start(gw) != CABLE_OK) {
		snprintf(err, errlen, "out of memory");
		gw_free(gw);
		return NULL;
	}
	if (gw->cfg.allowed_origins) {
		struct cable_error e = {0};

		gw->origins = cable_origins_new(gw->cfg.allowed_origins,
		                                strlen(gw->cfg.allowed_origins), &e);
		if (gw->origins == NULL) {
			snprintf(err, errlen, "plugin_opt_allowed_origins: %s", e.text);
			gw_free(gw);
			return NULL;
		}
	}

	lws_log_target = gw;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

	if (listen_open(gw, err, errlen) != CABLE_OK) {
		gw_free(gw);
		return NULL;
	}
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the listening socket is ours: listen.c */
	_Static_assert(sizeof(gw->protocols) == sizeof(protocols), "gw->protocols");
	memcpy(gw->protocols, protocols, sizeof(protocols));
	gw->protocols[0].rx_buffer_size = gw->cfg.receive_buffer;
	gw->protocols[1].rx_buffer_size = gw->cfg.receive_buffer;
	gw->protocols[4] = state_protocol;
	info.protocols = gw->protocols;
	info.user = gw;
	info.uid = -1;
	info.gid = -1;
	info.max_http_header_data = (unsigned short)gw->cfg.max_header_size;
	info.pt_serv_buf_size =
	        256 *
	        1024; /* one per thread: what a raw read (the internal client) takes per turn */
	info.timeout_secs = gw->cfg.handshake_timeout; /* an unfinished handshake is dropped */
	info.timeout_secs_ah_idle = gw->cfg.handshake_timeout; /* also a half-sent request */
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
	               LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (gw->cfg.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = gw->cfg.tls_cert;
		info.ssl_private_key_filepath = gw->cfg.tls_key;
		info.ssl_ca_filepath = gw->cfg.tls_ca;
		info.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	}
	/* /health always; the static directory (off by default) under "/". */
	/* /health and /metrics always; the static directory (off by default) under "/". */
	gw->mounts[0].mountpoint = "/health";
	gw->mounts[0].mountpoint_len = 7;
	gw->mounts[1].mountpoint = "/metrics";
	gw->mounts[1].mountpoint_len = 8;
	for (int i = 0; i < 2; i++) {
		gw->mounts[i].origin = CABLE_PROTOCOL_V1_JSON;
		gw->mounts[i].origin_protocol = LWSMPRO_CALLBACK;
	}
	gw->mounts[0].mount_next = &gw->mounts[1];
	if (gw->cfg.http_dir) {
		gw->mounts[1].mount_next = &gw->mounts[2];
		gw->mounts[2].mountpoint = "/";
		gw->mounts[2].mountpoint_len = 1;
		gw->mounts[2].origin = gw->cfg.http_dir;
		gw->mounts[2].def = "index.html";
		gw->mounts[2].origin_protocol = LWSMPRO_FILE;
	}
	info.mounts = gw->mounts;
	/*
	 * No lws "validity" pings: they would give every connection an lws timer, and lws
	 * keeps its timers in one sorted list, so each new connection cost O(n) (41 % of
	 * the gateway thread in a 19,000-connection storm). ActionCable pings every few
	 * seconds instead, and TCP_USER_TIMEOUT (session_open) ends connections to peers that
	 * stopped acknowledging them.
	 */
	info.retry_and_idle_policy = &no_validity_checks;
	if (!gw->cfg.poll_loop) {
		if (event_loop_open(gw, err, errlen) != CABLE_OK) {
			gw_free(gw);
			return NULL;
		}
		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = gw->loops;
	}
	gw->ctx = lws_create_context(&info);
	if (gw->ctx == NULL) {
		snprintf(err, errlen, "cannot serve on %s:%d: libwebsockets failed to start%s",
		         gw->cfg.address, gw->cfg.port,
		         gw->cfg.tls_cert ? " (check the plugin_opt_tls_* files)" : "");
		gw_free(gw);
		return NULL;
	}
	if (listen_adopt(gw, err, errlen) != CABLE_OK) {
		lws_context_destroy(gw->ctx);
		gw_free(gw);
		return NULL;
	}
	gw->rules = rules;

	/* No process signal (SIGTERM, SIGHUP, our wake signal) may land on this thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&gw->thread, NULL, gateway_main, gw) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		snprintf(err, errlen, "cannot start the gateway thread");
		lws_context_destroy(gw->ctx);
		gw->rules = NULL; /* stays with the caller on failure */
		gw_free(gw);
		return NULL;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	gw->thread_started = true;
	return (struct cable_gateway *)gw;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Broker thread. See cable_gateway_api.rules_new. */
static struct cable_rules *gw_rules_new(const struct cable_rules_source *src, char *err,
                                        size_t errlen)
{
	struct cable_error e = {0};
	struct cable_rules *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto nomem;
	r->chanmap = cable_chanmap_new(src->channels, src->channels_len, &e);
	if (r->chanmap == NULL) {
		snprintf(err, errlen, "plugin_opt_channels_file: '%s': %s", src->channels_file,
		         e.text);
		goto fail;
	}
	if (src->secret || src->nkeys) {
		r->keys = cable_keyset_new();
		if (r->keys == NULL)
			goto nomem;
	}
	for (size_t i = 0; i < src->nkeys; i++) {
		const struct cable_key_source *k = &src->keys[i];

		if (cable_keyset_add(r->keys, k->kid, k->alg, k->key, k->key_len, &e) != CABLE_OK) {
			snprintf(err, errlen,
			         "plugin_opt_jwt_keys_file: '%s': key %s%s (%s, '%s'): %s",
			         src->keys_file, k->kid ? "kid " : "#", k->kid ? k->kid : "",
			         k->alg, k->file, e.text);
			goto fail;
		}
	}
	if (src->secret) {
		if (cable_keyset_add(r->keys, NULL, "HS256", src->secret, src->secret_len, &e) !=
		    CABLE_OK) {
			snprintf(err, errlen, "plugin_opt_jwt_secret_file: '%s': %s",
			         src->secret_file, e.text);
			goto fail;
		}
	}
	if (src->acl) {
		r->acl = cable_acl_new(src->acl, src->acl_len, &e);
		if (r->acl == NULL) {
			snprintf(err, errlen, "plugin_opt_acl_file: '%s': %s", src->acl_file,
			         e.text);
			goto fail;
		}
	} else if (cable_chanmap_has_generic(r->chanmap)) {
		snprintf(err, errlen,
		         "plugin_opt_channels_file: '%s' has a generic channel, which needs "
		         "plugin_opt_acl_file (without an ACL it would expose every topic)",
		         src->channels_file);
		goto fail;
	}
	r->strings[0] = dup_or_null(src->issuer);
	r->strings[1] = dup_or_null(src->audience);
	r->strings[2] = dup_or_null(src->user_claim);
	r->strings[3] = dup_or_null(src->roles_claim);
	if ((src->issuer && !r->strings[0]) || (src->audience && !r->strings[1]) ||
	    (src->user_claim && !r->strings[2]) || (src->roles_claim && !r->strings[3]))
		goto nomem;
	r->policy.issuer = r->strings[0];
	r->policy.audience = r->strings[1];
	r->policy.user_claim = r->strings[2];
	r->policy.roles_claim = r->strings[3];
	r->policy.leeway = src->leeway;
	r->policy.require_exp = true; /* tokens are short-lived by design */
	return r;
nomem:
	snprintf(err, errlen, "out of memory while loading the configuration files");
fail:
	cable_rules_free(r);
	return NULL;
}

static void gw_wake(struct cable_gateway *g)
{
	struct gw *gw = (struct gw *)g;

	if (gw->ctx)
		lws_cancel_service(gw->ctx);
}

static void gw_stop(struct cable_gateway *g)
{
	struct gw *gw = (struct gw *)g;

	atomic_store(&gw->stop_requested, true);
	lws_cancel_service(gw->ctx);
	pthread_join(gw->thread, NULL);
	lws_log_target = NULL;
	gw_free(gw);
}

static const char *gw_lws_version(void)
{
	return lws_get_library_version();
}

static size_t gw_lws_entry_points(void **out, const char **names, size_t max)
{
#define ENTRY(fn)                                                                                  \
	{                                                                                          \
		(void *)fn, #fn                                                                    \
	}
	const struct {
		void *addr;
		const char *name;
	} entries[] = {
	        ENTRY(lws_create_context),  ENTRY(lws_service),
	        ENTRY(lws_cancel_service),  ENTRY(lws_context_destroy),
	        ENTRY(lws_write),           ENTRY(lws_callback_on_writable),
	        ENTRY(lws_set_log_level),   ENTRY(lws_sul_schedule),
	        ENTRY(lws_rx_flow_control), ENTRY(lws_get_library_version),
	};
#undef ENTRY
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(entries) && i < max; i++) {
		out[i] = entries[i].addr;
		names[i] = entries[i].name;
	}
	return i;
}

__attribute__((visibility("default"))) extern const struct cable_gateway_api cable_gateway_api_v1;
const struct cable_gateway_api cable_gateway_api_v1 = {
        .abi = CABLE_GATEWAY_ABI,
        .layout = CABLE_GATEWAY_LAYOUT,
        .start = gw_start,
        .rules_new = gw_rules_new,
        .rules_free = cable_rules_free,
        .wake = gw_wake,
        .stop = gw_stop,
        .lws_version = gw_lws_version,
        .lws_entry_points = gw_lws_entry_points,
};
