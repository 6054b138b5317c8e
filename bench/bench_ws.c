/*
 * cable-bench's WebSocket client: libwebsockets' client side on a libev (epoll) loop of
 * ours, one lws connection per struct conn. Each connection has an outbound queue
 * (conn_send) drained on WRITEABLE, and a reassembly buffer for fragmented frames; what
 * arrives goes to bench_wire.c (on_text, mqtt_stream). Thread: main only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <libwebsockets.h>

#include "bench.h"

/* ---- Sending on a WebSocket ------------------------------------------------------- */
void conn_send(struct conn *c, const void *data, size_t len, bool binary)
{
	struct out *o;

	if (c->wsi == NULL || c->state == C_FAILED || c->state == C_CLOSED)
		return;
	o = xmalloc(sizeof(*o) + LWS_PRE + len);
	o->next = NULL;
	o->len = len;
	o->binary = binary;
	memcpy(o->buf + LWS_PRE, data, len);
	if (c->oq_tail)
		c->oq_tail->next = o;
	else
		c->oq_head = o;
	c->oq_tail = o;
	lws_callback_on_writable(c->wsi);
}

static void conn_free_queue(struct conn *c)
{
	struct out *o;

	while ((o = c->oq_head) != NULL) {
		c->oq_head = o->next;
		free(o);
	}
	c->oq_tail = NULL;
}

void frag_append(struct conn *c, const void *in, size_t len)
{
	size_t cap;

	if (c->frag_len + len > c->frag_cap) {
		cap = c->frag_cap ? c->frag_cap : 512;
		while (cap < c->frag_len + len)
			cap *= 2;
		c->frag = xrealloc(c->frag, cap);
		c->frag_cap = cap;
	}
	memcpy(c->frag + c->frag_len, in, len);
	c->frag_len += len;
}

/* ---- libwebsockets ------------------------------------------------------------------- */
static void conn_gone(struct conn *c, bool error, const char *why)
{
	if (c->state == C_FAILED || c->state == C_CLOSED)
		return;
	if (c->state == C_CONNECTING || error) {
		if (bench.nfailed < 5)
			note("connection %u failed: %s", c->idx, why ? why : "closed");
		c->state = C_FAILED;
		bench.nfailed++;
	} else {
		if (bench.nclosed_early < 5)
			note("connection %u closed by the server", c->idx);
		c->state = C_CLOSED;
		bench.nclosed_early++;
	}
	c->wsi = NULL;
	conn_free_queue(c);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	struct conn *c = user;
	struct out *o;
	bool final;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (bench.proto == P_MQTT) {
			unsigned char buf[128];
			char id[64];

			snprintf(id, sizeof(id), "cb%d-%u", (int)getpid(), c->idx);
			conn_send(c, buf, mqtt_connect(buf, id), true);
		}
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c == NULL)
			return 0;
		if (bench.proto == P_MQTT) {
			mqtt_stream(c, in, len);
			return 0;
		}
		final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
		if (final && c->frag_len == 0) {
			on_text(c, in, len);
			return 0;
		}
		if (c->frag_len + len > MAX_FRAME)
			return -1;
		frag_append(c, in, len);
		if (final) {
			on_text(c, (const char *)c->frag, c->frag_len);
			c->frag_len = 0;
		}
		return 0;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c == NULL || (o = c->oq_head) == NULL)
			return 0;
		c->oq_head = o->next;
		if (c->oq_head == NULL)
			c->oq_tail = NULL;
		if (lws_write(wsi, o->buf + LWS_PRE, o->len,
		              o->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)o->len) {
			free(o);
			return -1;
		}
		free(o);
		if (c->oq_head)
			lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c)
			conn_gone(c, true, in ? (const char *)in : "connection error");
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c)
			conn_gone(c, false, NULL);
		return 0;

	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
        {"actioncable-v1-json", callback, 0, 4096, 0, NULL, 0},
        {EXT_PROTOCOL, callback, 0, 4096, 0, NULL, 0},
        {"mqtt", callback, 0, 4096, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* A timer that keeps service() returning often, so the run loops can look at time. */
static void tick(lws_sorted_usec_list_t *sul)
{
	lws_sul_schedule(bench.ctx, 0, sul, tick, 1000);
}

/*
 * One turn of the event loop: wait for events (at most until the next tick) and handle
 * them, or with wait == false handle only what is ready now. lws runs on a libev loop of
 * ours (epoll): its default poll() backend scans every descriptor on each turn, about
 * 1 ms at 10,000 connections, which made the generator, not the server, the bottleneck.
 */
void service(bool wait)
{
	ev_run(bench.loop, wait ? EVRUN_ONCE : EVRUN_NOWAIT);
}

void make_context(void)
{
	struct lws_context_creation_info info;
	static void *loops[1];

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.timeout_secs = 60;
	info.connect_timeout_secs = 60;
	info.pt_serv_buf_size = 65536;
	bench.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (bench.loop == NULL)
		die("ev_loop_new failed");
	loops[0] = bench.loop;
	info.options |= LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = loops;
	bench.ctx = lws_create_context(&info);
	if (bench.ctx == NULL)
		die("lws_create_context failed");
	lws_sul_schedule(bench.ctx, 0, &bench.tick, tick, 1000);
}

static const lws_retry_bo_t no_validity_checks = {0};

void open_conn(struct conn *c, uint32_t idx)
{
	struct lws_client_connect_info i;
	char *tok;

	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->last_seq = -1;
	c->counted = true;
	if (bench.secret_file && bench.proto != P_MQTT) {
		tok = make_token(idx);
		c->path = token_path(bench.path, tok);
		free(tok);
	}
	memset(&i, 0, sizeof(i));
	i.context = bench.ctx;
	i.address = bench.host;
	i.port = bench.port;
	i.path = c->path ? c->path : bench.path;
	i.host = bench.host;
	i.origin = bench.host;
	/*
	 * Spread the client ends over 64 loopback addresses. From one address the kernel's
	 * search for a free source port to the one server port grows with the connections
	 * already open (most of the generator's time in a storm of 19,000).
	 */
	if (bench.spread_sources && strcmp(bench.host, "127.0.0.1") == 0) {
		static char src[64][16];

		snprintf(src[idx % 64], sizeof(src[0]), "127.0.1.%u", 1 + idx % 64);
		i.iface = src[idx % 64];
	}
	c->ext = bench.proto == P_CABLE && idx % 100 < bench.ext_pct;
	i.protocol = bench.proto == P_MQTT ? "mqtt" : c->ext ? EXT_PROTOCOL : "actioncable-v1-json";
	i.local_protocol_name = i.protocol;
	i.userdata = c;
	i.pwsi = &c->wsi;
	/* No lws validity pings: one more lws timer per connection, O(n) to insert. */
	i.retry_and_idle_policy = &no_validity_checks;
	c->state = C_CONNECTING;
	c->t_start = now_ns();
	if (lws_client_connect_via_info(&i) == NULL && c->state == C_CONNECTING) {
		c->state = C_FAILED;
		bench.nfailed++;
	}
}

/* Service until cond() or the deadline (ns, monotonic); true if cond() held. */
bool pump_until(bool (*cond)(void), uint64_t deadline)
{
	while (!(cond && cond())) {
		if (now_ns() >= deadline)
			return false;
		service(true);
	}
	return true;
}

void pump_for_ms(uint64_t ms)
{
	pump_until(NULL, now_ns() + ms * 1000000ull);
}

static uint32_t want_ready;

static bool all_ready(void)
{
	return bench.nready + bench.nfailed + bench.nclosed_early >= want_ready;
}

/* Open connections [bench.nconns, bench.nconns + n) with at most connect_conc handshakes at once.
 */
void connect_more(uint32_t n, bool need_ready)
{
	uint32_t target = bench.nconns + n;
	uint64_t t0 = now_ns(), deadline = t0 + 120ull * 1000000000ull;

	want_ready = target;
	while (bench.nconns < target) {
		uint32_t busy = bench.nconns - (need_ready ? bench.nready : bench.nwelcomed) -
		                bench.nfailed - bench.nclosed_early;

		while (busy < bench.connect_conc && bench.nconns < target) {
			open_conn(&bench.conns[bench.nconns], bench.nconns);
			bench.nconns++;
			busy++;
		}
		service(true);
		if (now_ns() > deadline)
			break;
	}
	pump_until(all_ready, deadline);
	note("%u connections: %u ready, %u failed, %u closed (%.1f s)", bench.nconns, bench.nready,
	     bench.nfailed, bench.nclosed_early, (double)(now_ns() - t0) / 1e9);
}
