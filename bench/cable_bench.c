/*
 * cable-bench: a load generator for mosquitto-cable and its peers.
 *
 * One process, one libwebsockets client context on one thread, holding up to the
 * descriptor limit of WebSocket connections (hard nofile is 20,000 on these machines,
 * so about 19,900). libmosquitto (its own network thread) publishes stamped MQTT
 * messages and subscribes where a mode needs an MQTT end.
 *
 * Targets (--proto):
 *   cable  mosquitto-cable's ActionCable listener (subscribe BenchmarkChannel; perform
 *          "broadcast" publishes the data object to bench/all)
 *   mqtt   Mosquitto's own MQTT-over-WebSockets listener ("mqtt" subprotocol; the
 *          CONNECT/SUBSCRIBE/PUBLISH packets are encoded here, lws does the framing)
 *   rails  Rails ActionCable (bench/rails/config.ru on puma), which has no MQTT side:
 *          its "publisher" is one extra connection that performs broadcast
 *
 * Modes (--mode), one measurement per run; the last line is "RESULT key=value ...":
 *   smoke       ~50 clients, MQTT publishes + performs, checks every client got every
 *               message in order; exit status 1 on any loss
 *   broadcast   websocket-bench's algorithm (clients in steps, random sender, percentile
 *               = sorted[p*n/100], loss check). No broadcastResult in mosquitto-cable or
 *               MQTT: the RTT is until the sender receives its own broadcast
 *   latency     stamped publishes, latency at every recipient, and of the last one
 *   throughput  publishes kept W in flight; deliveries/s and the generator's own CPU
 *   idle        server RSS and kernel socket memory per idle connection, idle CPU
 *   storm       all connections at once (with tokens), connect-to-welcome
 *   perform     perform / WS publish -> MQTT subscriber latency
 *
 * Clock: every stamp is CLOCK_MONOTONIC in this process, except websocket-bench's
 * sendTime, which is wall-clock nanoseconds as in the original tool.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <libwebsockets.h>
#include <mosquitto.h>

#include "common.h"

#define IDENTIFIER     "{\"channel\":\"BenchmarkChannel\"}"
#define IDENTIFIER_ESC "{\\\"channel\\\":\\\"BenchmarkChannel\\\"}"
#define TOPIC          "bench/all"
#define MAX_FRAME      65536
#define SEQ_RING       65536 /* throughput: per-message counters, indexed seq % SEQ_RING */

enum proto { P_CABLE, P_MQTT, P_RAILS };
enum mode { M_SMOKE, M_BROADCAST, M_LATENCY, M_THROUGHPUT, M_IDLE, M_STORM, M_PERFORM, M_HISTORY };

#define EXT_PROTOCOL "actioncable-v1-ext-json"
enum cstate { C_NONE, C_CONNECTING, C_WELCOMED, C_READY, C_FAILED, C_CLOSED };

struct out {
	struct out *next;
	size_t len;
	bool binary;
	unsigned char buf[]; /* LWS_PRE + len */
};

struct conn {
	struct lws *wsi;
	uint32_t idx;
	uint8_t state;
	bool counted; /* included in delivery statistics (not the rails publisher) */
	uint64_t t_start, t_welcome;
	uint32_t rx;      /* data messages in the current phase */
	uint32_t dup;     /* same seq twice */
	uint32_t reorder; /* seq lower than the last one */
	int64_t last_seq;
	bool ext;             /* actioncable-v1-ext-json (--ext) */
	uint64_t last_offset; /* ext: the last "offset" seen */
	uint32_t off_gaps;    /* ext: an offset that was not the last one plus one */
	struct out *oq_head, *oq_tail;
	unsigned char *frag; /* partial frame (cable) or partial MQTT packet (mqtt) */
	size_t frag_len, frag_cap;
	char *path;
};

/* A websocket-bench broadcast in flight. */
struct inflight {
	bool active;
	uint32_t sender;
	uint64_t send_wall; /* sendTime */
	uint64_t t_mono;
};

static struct {
	/* configuration */
	enum mode mode;
	enum proto proto;
	const char *host;
	int port, mqtt_port;
	const char *path;
	uint32_t clients;
	uint32_t messages;
	uint32_t interval_ms;
	uint32_t duration_s;
	uint32_t window;
	uint32_t connect_conc;
	uint32_t idle_s;
	uint32_t decoy_subs; /* idle: wildcard decoy subscriptions per connection */
	uint32_t ext_pct;    /* percent of connections in actioncable-v1-ext-json */
	int server_pid;
	const char *secret_file;
	char secret[512];
	size_t secret_len;
	const char *label;
	uint32_t step_size, steps, concurrent, sample_size, padding;

	/* state */
	struct lws_context *ctx;
	bool spread_sources;  /* client ends on 127.0.1.1-64 (see open_conn) */
	struct ev_loop *loop; /* epoll, under lws (see service()) */
	struct conn *conns;
	uint32_t nconns; /* created */
	uint32_t nready, nwelcomed, nfailed, nclosed_early;
	struct conn *publisher; /* rails: the connection that performs */
	struct mosquitto *mosq_pub, *mosq_sub;
	atomic_int mqtt_pub_connected, mqtt_sub_ready;
	lws_sorted_usec_list_t tick;

	/* delivery accounting (latency, throughput, smoke) */
	uint64_t *seq_t;      /* publish stamp per seq */
	uint32_t *seq_count;  /* recipients so far per seq */
	uint64_t *seq_last;   /* latency of the last recipient so far, per seq */
	uint64_t *lat;        /* every delivery's latency, ns */
	size_t nlat, lat_cap; /* */
	uint64_t *lat_ext;    /* the same, ext connections only (--ext) */
	uint64_t *lat_v1;     /* and v1 connections only (--ext) */
	size_t nlat_ext, nlat_v1;
	uint64_t delivered; /* data messages at counted connections */
	uint64_t published; /* messages sent (any path) */
	uint64_t completed; /* seqs that reached every recipient */
	bool record_lat;

	/* broadcast */
	struct inflight *fl;
	uint64_t *rtt;
	size_t nrtt;
	uint32_t bdrops;
	uint64_t brx; /* broadcasts received, all clients */

	/* perform (MQTT subscriber side; written by libmosquitto's thread) */
	uint64_t *perf_lat;
	atomic_uint perf_n;
	uint32_t perf_cap;
} B = {
        .mode = M_LATENCY,
        .proto = P_CABLE,
        .host = "127.0.0.1",
        .port = 8080,
        .mqtt_port = 1883,
        .path = "/cable",
        .clients = 1000,
        .messages = 50,
        .interval_ms = 100,
        .duration_s = 5,
        .window = 32,
        .connect_conc = 200,
        .idle_s = 15,
        .server_pid = 0,
        .label = "",
        .step_size = 1000,
        .steps = 10,
        .concurrent = 8,
        .sample_size = 100,
        .padding = 200,
};

static const char *proto_name[] = {"cable", "mqtt", "rails"};
static const char *mode_name[] = {"smoke", "broadcast", "latency", "throughput",
                                  "idle",  "storm",     "perform", "history"};

/* ---- Small utilities (the shared ones are in common.c) --------------------------- */

/* A percentile in ms by websocket-bench's rule (pct_index); -1 when there are no samples. */
static double pct_ms(uint64_t *v, size_t n, unsigned p10)
{
	return n ? (double)v[pct_index(n, p10)] / 1e6 : -1;
}

/* "Slab:" of /proc/meminfo in KiB (kernel objects: sockets, skbs, dentries...). */
static long slab_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Slab: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* /proc/net/sockstat "TCP: inuse X orphan X tw X alloc X mem X": mem in pages. */
static void sockstat(long *inuse, long *mem_pages)
{
	char line[256];
	FILE *f = fopen("/proc/net/sockstat", "r");

	*inuse = *mem_pages = -1;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		long a, o, t, al, m;

		if (sscanf(line, "TCP: inuse %ld orphan %ld tw %ld alloc %ld mem %ld", &a, &o, &t,
		           &al, &m) == 5) {
			*inuse = a;
			*mem_pages = m;
		}
	}
	fclose(f);
}

/* ---- Tokens: HS256 JWT {sub, exp}, signed with the secret file's contents ---------- */

/* A token for user "bench<idx>", valid one hour, minted by the core. malloc'd. */
static char *make_token(uint32_t idx)
{
	return mint_token(B.secret, B.secret_len, "bench", idx, (long long)time(NULL) + 3600);
}

/* ---- MQTT packets (v3.1.1, QoS 0), encoded by hand ------------------------------- */

static size_t mqtt_varint(unsigned char *p, size_t v)
{
	size_t n = 0;

	do {
		unsigned char b = v % 128;

		v /= 128;
		if (v)
			b |= 128;
		p[n++] = b;
	} while (v);
	return n;
}

static size_t mqtt_str(unsigned char *p, const char *s, size_t len)
{
	p[0] = (unsigned char)(len >> 8);
	p[1] = (unsigned char)len;
	memcpy(p + 2, s, len);
	return len + 2;
}

/* Each encoder writes into buf (at least 64 + payload bytes) and returns the length. */
static size_t mqtt_connect(unsigned char *buf, const char *client_id)
{
	unsigned char body[128];
	size_t n = 0, idlen = strlen(client_id), o = 0;

	n += mqtt_str(body + n, "MQTT", 4);
	body[n++] = 4;    /* protocol level 3.1.1 */
	body[n++] = 0x02; /* clean session */
	body[n++] = 0;    /* keepalive 0: no PINGREQ needed during a run */
	body[n++] = 0;
	n += mqtt_str(body + n, client_id, idlen);
	buf[o++] = 0x10;
	o += mqtt_varint(buf + o, n);
	memcpy(buf + o, body, n);
	return o + n;
}

static size_t mqtt_subscribe(unsigned char *buf, const char *topic)
{
	size_t tlen = strlen(topic), rem = 2 + 2 + tlen + 1, o = 0;

	buf[o++] = 0x82;
	o += mqtt_varint(buf + o, rem);
	buf[o++] = 0;
	buf[o++] = 1; /* packet id */
	o += mqtt_str(buf + o, topic, tlen);
	buf[o++] = 0; /* QoS 0 */
	return o;
}

static size_t mqtt_publish(unsigned char *buf, const char *topic, const char *payload, size_t plen)
{
	size_t tlen = strlen(topic), o = 0;

	buf[o++] = 0x30;
	o += mqtt_varint(buf + o, 2 + tlen + plen);
	o += mqtt_str(buf + o, topic, tlen);
	memcpy(buf + o, payload, plen);
	return o + plen;
}

/* ---- Sending on a WebSocket ------------------------------------------------------- */

static void conn_send(struct conn *c, const void *data, size_t len, bool binary)
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

/*
 * --decoy-subs K: K subscriptions to SensorChannel, each its own wildcard stream
 * sites/d<conn>-<k>/sensors/#, which no benchmark message matches. They make the
 * server's index large without adding recipients.
 */
static void send_decoy_subscribes(struct conn *c)
{
	char cmd[192];
	uint32_t k;
	int n;

	for (k = 0; k < B.decoy_subs; k++) {
		n = snprintf(cmd, sizeof(cmd),
		             "{\"command\":\"subscribe\",\"identifier\":\"{\\\"channel\\\":"
		             "\\\"SensorChannel\\\",\\\"site\\\":\\\"d%u-%u\\\"}\"}",
		             c->idx, k);
		conn_send(c, cmd, (size_t)n, false);
	}
}

static void send_subscribe(struct conn *c)
{
	static const char cmd[] =
	        "{\"command\":\"subscribe\",\"identifier\":\"" IDENTIFIER_ESC "\"}";
	unsigned char buf[128];

	if (B.decoy_subs)
		send_decoy_subscribes(c);
	else if (B.mode == M_HISTORY) {
		/* One topic per connection: ActuatorChannel id=idx streams actuators/<idx>/state.
		 */
		char cmd2[160];
		int n = snprintf(cmd2, sizeof(cmd2),
		                 "{\"command\":\"subscribe\",\"identifier\":\"{\\\"channel\\\":"
		                 "\\\"ActuatorChannel\\\",\\\"id\\\":%u}\"}",
		                 c->idx);
		conn_send(c, cmd2, (size_t)n, false);
	} else if (B.proto == P_MQTT)
		conn_send(c, buf, mqtt_subscribe(buf, TOPIC), true);
	else
		conn_send(c, cmd, sizeof(cmd) - 1, false);
}

/*
 * Send `data` (a JSON object with "action":"broadcast" first) as the connection's
 * broadcast: a perform on ActionCable, a PUBLISH of the same object to bench/all on MQTT.
 */
static void send_broadcast(struct conn *c, const char *data, size_t len)
{
	unsigned char *buf;
	char *esc, *p;
	size_t i, n;

	if (B.proto == P_MQTT) {
		buf = xmalloc(len + 64);
		n = mqtt_publish(buf, TOPIC, data, len);
		conn_send(c, buf, n, true);
		free(buf);
		return;
	}
	/* {"command":"message","identifier":"...","data":"<data as a JSON string>"} */
	esc = xmalloc(2 * len + 128);
	p = esc + sprintf(esc, "{\"command\":\"message\",\"identifier\":\"%s\",\"data\":\"",
	                  IDENTIFIER_ESC);
	for (i = 0; i < len; i++) {
		if (data[i] == '"' || data[i] == '\\')
			*p++ = '\\';
		*p++ = data[i];
	}
	p += sprintf(p, "\"}");
	conn_send(c, esc, (size_t)(p - esc), false);
	free(esc);
}

/* ---- Receiving ------------------------------------------------------------------------ */

static const char *find(const char *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle));
}

static uint64_t num_after(const char *hay, size_t len, const char *key, bool *ok)
{
	const char *p = find(hay, len, key), *end = hay + len;
	uint64_t v = 0;

	*ok = false;
	if (p == NULL)
		return 0;
	p += strlen(key);
	if (p < end && *p == '"')
		p++;
	while (p < end && *p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
		*ok = true;
	}
	return v;
}

static void mark_ready(struct conn *c)
{
	if (c->state == C_READY)
		return;
	c->state = C_READY;
	B.nready++;
}

static void mark_welcomed(struct conn *c)
{
	if (c->state != C_CONNECTING)
		return;
	c->state = C_WELCOMED;
	c->t_welcome = now_ns();
	B.nwelcomed++;
	if (B.mode != M_STORM)
		send_subscribe(c);
}

static void broadcast_received(struct conn *c, const char *data, size_t len);

/* A data message (stamped payload inside). */
static void on_data(struct conn *c, const char *data, size_t len)
{
	uint64_t t, seq, lat, now;
	uint32_t slot;
	bool ok1, ok2;

	if (B.mode == M_BROADCAST) {
		broadcast_received(c, data, len);
		return;
	}
	if (!c->counted)
		return;
	now = now_ns();
	seq = num_after(data, len, "\"seq\":", &ok1);
	t = num_after(data, len, "\"t\":", &ok2);
	if (!ok1 || !ok2)
		return;
	c->rx++;
	B.delivered++;
	if (c->ext) {
		bool ok3;
		uint64_t off = num_after(data, len, "\"offset\":", &ok3);

		if (!ok3 || (c->last_offset && off != c->last_offset + 1))
			c->off_gaps++;
		c->last_offset = off;
	}
	if ((int64_t)seq == c->last_seq)
		c->dup++;
	else if ((int64_t)seq < c->last_seq)
		c->reorder++;
	c->last_seq = (int64_t)seq;
	lat = now > t ? now - t : 0;
	if (B.record_lat && B.nlat < B.lat_cap)
		B.lat[B.nlat++] = lat;
	if (B.record_lat && c->ext && B.lat_ext && B.nlat_ext < B.lat_cap)
		B.lat_ext[B.nlat_ext++] = lat;
	else if (B.record_lat && !c->ext && B.lat_v1 && B.nlat_v1 < B.lat_cap)
		B.lat_v1[B.nlat_v1++] = lat;
	if (B.seq_count == NULL)
		return; /* perform mode: the sender's own copy */
	slot = (uint32_t)(seq % SEQ_RING);
	if (B.seq_last && lat > B.seq_last[slot])
		B.seq_last[slot] = lat;
	if (++B.seq_count[slot] == B.clients)
		B.completed++;
}

static void on_text(struct conn *c, const char *in, size_t len)
{
	const char *type = find(in, len < 200 ? len : 200, "\"type\":\"");

	if (type) {
		type += 8;
		if (!strncmp(type, "welcome", 7))
			mark_welcomed(c);
		else if (!strncmp(type, "confirm_subscription", 20))
			mark_ready(c);
		else if (!strncmp(type, "reject_subscription", 19) ||
		         !strncmp(type, "disconnect", 10)) {
			note("connection %u: %.*s", c->idx, (int)(len > 160 ? 160 : len), in);
			if (c->state != C_FAILED) {
				c->state = C_FAILED;
				B.nfailed++;
			}
		}
		return; /* ping */
	}
	if (find(in, len, "broadcastResult"))
		return; /* Rails answers the sender too; we time the broadcast itself */
	on_data(c, in, len);
}

static void mqtt_packet(struct conn *c, unsigned char hdr, const unsigned char *p, size_t len)
{
	size_t tlen, off;

	switch (hdr >> 4) {
	case 2: /* CONNACK */
		if (len >= 2 && p[1] == 0)
			mark_welcomed(c);
		else if (c->state != C_FAILED) {
			c->state = C_FAILED;
			B.nfailed++;
		}
		break;
	case 9: /* SUBACK */
		mark_ready(c);
		break;
	case 3: /* PUBLISH */
		if (len < 2)
			return;
		tlen = (size_t)p[0] << 8 | p[1];
		off = 2 + tlen + (((hdr >> 1) & 3) ? 2 : 0);
		if (off <= len)
			on_data(c, (const char *)p + off, len - off);
		break;
	default:
		break;
	}
}

static void frag_append(struct conn *c, const void *in, size_t len)
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

/* MQTT over WebSocket is a byte stream: packets may span frames. */
static void mqtt_stream(struct conn *c, const unsigned char *in, size_t len)
{
	const unsigned char *d = in;
	size_t n = len, off = 0, i, rem, mult;
	int k;

	if (c->frag_len) {
		frag_append(c, in, len);
		d = c->frag;
		n = c->frag_len;
	}
	while (n - off >= 2) {
		rem = 0;
		mult = 1;
		i = off + 1;
		for (k = 0; k < 4 && i < n; k++, i++) {
			rem += (d[i] & 127u) * mult;
			mult *= 128;
			if (!(d[i] & 128u))
				break;
		}
		if (k == 4 || i >= n)
			break; /* header incomplete */
		i++;
		if (n - i < rem)
			break; /* body incomplete */
		mqtt_packet(c, d[off], d + i, rem);
		off = i + rem;
	}
	if (off == n) {
		c->frag_len = 0;
	} else if (d == c->frag) {
		memmove(c->frag, c->frag + off, n - off);
		c->frag_len = n - off;
	} else {
		c->frag_len = 0;
		frag_append(c, in + off, n - off);
	}
}

/* ---- libwebsockets ------------------------------------------------------------------- */

static void conn_gone(struct conn *c, bool error, const char *why)
{
	if (c->state == C_FAILED || c->state == C_CLOSED)
		return;
	if (c->state == C_CONNECTING || error) {
		if (B.nfailed < 5)
			note("connection %u failed: %s", c->idx, why ? why : "closed");
		c->state = C_FAILED;
		B.nfailed++;
	} else {
		if (B.nclosed_early < 5)
			note("connection %u closed by the server", c->idx);
		c->state = C_CLOSED;
		B.nclosed_early++;
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
		if (B.proto == P_MQTT) {
			unsigned char buf[128];
			char id[64];

			snprintf(id, sizeof(id), "cb%d-%u", (int)getpid(), c->idx);
			conn_send(c, buf, mqtt_connect(buf, id), true);
		}
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c == NULL)
			return 0;
		if (B.proto == P_MQTT) {
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
	lws_sul_schedule(B.ctx, 0, sul, tick, 1000);
}

/*
 * One turn of the event loop: wait for events (at most until the next tick) and handle
 * them, or with wait == false handle only what is ready now. lws runs on a libev loop of
 * ours (epoll): its default poll() backend scans every descriptor on each turn, about
 * 1 ms at 10,000 connections, which made the generator, not the server, the bottleneck.
 */
static void service(bool wait)
{
	ev_run(B.loop, wait ? EVRUN_ONCE : EVRUN_NOWAIT);
}

static void make_context(void)
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
	B.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (B.loop == NULL)
		die("ev_loop_new failed");
	loops[0] = B.loop;
	info.options |= LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = loops;
	B.ctx = lws_create_context(&info);
	if (B.ctx == NULL)
		die("lws_create_context failed");
	lws_sul_schedule(B.ctx, 0, &B.tick, tick, 1000);
}

static const lws_retry_bo_t no_validity_checks = {0};

static void open_conn(struct conn *c, uint32_t idx)
{
	struct lws_client_connect_info i;
	char *tok;

	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->last_seq = -1;
	c->counted = true;
	if (B.secret_file && B.proto != P_MQTT) {
		tok = make_token(idx);
		c->path = token_path(B.path, tok);
		free(tok);
	}
	memset(&i, 0, sizeof(i));
	i.context = B.ctx;
	i.address = B.host;
	i.port = B.port;
	i.path = c->path ? c->path : B.path;
	i.host = B.host;
	i.origin = B.host;
	/*
	 * Spread the client ends over 64 loopback addresses. From one address the kernel's
	 * search for a free source port to the one server port grows with the connections
	 * already open (most of the generator's time in a storm of 19,000).
	 */
	if (B.spread_sources && strcmp(B.host, "127.0.0.1") == 0) {
		static char src[64][16];

		snprintf(src[idx % 64], sizeof(src[0]), "127.0.1.%u", 1 + idx % 64);
		i.iface = src[idx % 64];
	}
	c->ext = B.proto == P_CABLE && idx % 100 < B.ext_pct;
	i.protocol = B.proto == P_MQTT ? "mqtt" : c->ext ? EXT_PROTOCOL : "actioncable-v1-json";
	i.local_protocol_name = i.protocol;
	i.userdata = c;
	i.pwsi = &c->wsi;
	/* No lws validity pings: one more lws timer per connection, O(n) to insert. */
	i.retry_and_idle_policy = &no_validity_checks;
	c->state = C_CONNECTING;
	c->t_start = now_ns();
	if (lws_client_connect_via_info(&i) == NULL && c->state == C_CONNECTING) {
		c->state = C_FAILED;
		B.nfailed++;
	}
}

/* Service until cond() or the deadline (ns, monotonic); true if cond() held. */
static bool pump_until(bool (*cond)(void), uint64_t deadline)
{
	while (!(cond && cond())) {
		if (now_ns() >= deadline)
			return false;
		service(true);
	}
	return true;
}

static void pump_for_ms(uint64_t ms)
{
	pump_until(NULL, now_ns() + ms * 1000000ull);
}

static uint32_t want_ready;
static bool all_ready(void)
{
	return B.nready + B.nfailed + B.nclosed_early >= want_ready;
}

/* Open connections [B.nconns, B.nconns + n) with at most connect_conc handshakes at once. */
static void connect_more(uint32_t n, bool need_ready)
{
	uint32_t target = B.nconns + n;
	uint64_t t0 = now_ns(), deadline = t0 + 120ull * 1000000000ull;

	want_ready = target;
	while (B.nconns < target) {
		uint32_t busy = B.nconns - (need_ready ? B.nready : B.nwelcomed) - B.nfailed -
		                B.nclosed_early;

		while (busy < B.connect_conc && B.nconns < target) {
			open_conn(&B.conns[B.nconns], B.nconns);
			B.nconns++;
			busy++;
		}
		service(true);
		if (now_ns() > deadline)
			break;
	}
	pump_until(all_ready, deadline);
	note("%u connections: %u ready, %u failed, %u closed (%.1f s)", B.nconns, B.nready,
	     B.nfailed, B.nclosed_early, (double)(now_ns() - t0) / 1e9);
}

/* ---- Publishing stamped messages ------------------------------------------------------ */

static void mqtt_log_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	(void)obj;
	if (rc == 0)
		atomic_store(&B.mqtt_pub_connected, 1);
}

static void publisher_start(void)
{
	char id[64];
	uint64_t deadline = now_ns() + 5000000000ull;

	if (B.proto == P_RAILS)
		return; /* the publisher is an extra WebSocket connection */
	snprintf(id, sizeof(id), "cable-bench-pub-%d", (int)getpid());
	B.mosq_pub = mqtt_client(id);
	mosquitto_connect_callback_set(B.mosq_pub, mqtt_log_connect);
	mqtt_connect_start(B.mosq_pub, B.host, B.mqtt_port, 60);
	while (!atomic_load(&B.mqtt_pub_connected)) {
		if (now_ns() > deadline)
			die("MQTT publisher did not connect");
		usleep(1000);
	}
}

/* One stamped message {"seq":S,"t":T} to every subscriber. */
static void publish_stamped(uint64_t seq)
{
	char data[96];
	uint64_t t = now_ns();
	int n;

	n = snprintf(data, sizeof(data),
	             "{\"action\":\"broadcast\",\"seq\":%" PRIu64 ",\"t\":%" PRIu64 "}", seq, t);
	if (B.seq_t)
		B.seq_t[seq % SEQ_RING] = t;
	B.published++;
	if (B.proto == P_RAILS) {
		send_broadcast(B.publisher, data, (size_t)n);
		return;
	}
	/* MQTT: the payload as a device would send it (without the action member). */
	n = snprintf(data, sizeof(data), "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 "}", seq, t);
	mosquitto_publish(B.mosq_pub, NULL, TOPIC, n, data, 0, false);
}

static void alloc_seq_tables(void)
{
	B.seq_t = xcalloc(SEQ_RING, sizeof(*B.seq_t));
	B.seq_count = xcalloc(SEQ_RING, sizeof(*B.seq_count));
	B.seq_last = xcalloc(SEQ_RING, sizeof(*B.seq_last));
}

/* Connect the subscribers, plus the rails publisher (not counted). */
static void setup_subscribers(void)
{
	B.conns = xcalloc(B.clients + 1, sizeof(*B.conns));
	connect_more(B.clients, true);
	if (B.proto == P_RAILS) {
		connect_more(1, true);
		B.publisher = &B.conns[B.nconns - 1];
		B.publisher->counted = false;
	}
	if (B.nready < B.nconns)
		note("warning: only %u of %u connections subscribed", B.nready, B.nconns);
}

static uint64_t total_expected;
static bool all_delivered(void)
{
	return B.delivered >= total_expected;
}

/* Lost deliveries and per-connection anomalies after a phase of `per_conn` messages. */
static void check_conns(uint32_t per_conn, uint64_t *lost, uint64_t *dups, uint64_t *reorders)
{
	uint32_t i;

	*lost = *dups = *reorders = 0;
	for (i = 0; i < B.nconns; i++) {
		struct conn *c = &B.conns[i];

		if (!c->counted)
			continue;
		if (c->rx < per_conn)
			*lost += per_conn - c->rx;
		*dups += c->dup;
		*reorders += c->reorder;
	}
}

/* ---- Modes ------------------------------------------------------------------------------ */

static uint32_t ext_gaps(void)
{
	uint32_t i, n = 0;

	for (i = 0; i < B.nconns; i++)
		n += B.conns[i].off_gaps;
	return n;
}

static void print_result_head(void)
{
	printf("RESULT mode=%s proto=%s label=%s clients=%u", mode_name[B.mode],
	       proto_name[B.proto], B.label[0] ? B.label : "-", B.clients);
}

static int run_latency(void)
{
	uint64_t next, lost, dups, reorders, t0;
	double c0, w0;
	uint32_t s;
	uint64_t *last;

	alloc_seq_tables();
	/* First: libmosquitto's loop uses select(), so its socket must stay below FD_SETSIZE. */
	publisher_start();
	setup_subscribers();
	B.lat_cap = (size_t)B.clients * B.messages;
	B.lat = xcalloc(B.lat_cap, sizeof(*B.lat));
	if (B.ext_pct) {
		B.lat_ext = xcalloc(B.lat_cap, sizeof(*B.lat_ext));
		B.lat_v1 = xcalloc(B.lat_cap, sizeof(*B.lat_v1));
	}
	B.record_lat = true;
	pump_for_ms(500);
	c0 = cpu_self_s();
	w0 = (double)now_ns() / 1e9;
	t0 = now_ns();
	next = t0;
	for (s = 0; s < B.messages; s++) {
		publish_stamped(s);
		next += (uint64_t)B.interval_ms * 1000000ull;
		pump_until(NULL, next);
	}
	total_expected = (uint64_t)B.clients * B.messages;
	pump_until(all_delivered, now_ns() + 20000000000ull); /* Rails needs seconds */
	check_conns(B.messages, &lost, &dups, &reorders);
	qsort(B.lat, B.nlat, sizeof(*B.lat), cmp_u64);
	if (B.lat_ext) {
		qsort(B.lat_ext, B.nlat_ext, sizeof(*B.lat_ext), cmp_u64);
		qsort(B.lat_v1, B.nlat_v1, sizeof(*B.lat_v1), cmp_u64);
	}
	last = xcalloc(B.messages, sizeof(*last));
	for (s = 0; s < B.messages; s++)
		last[s] = B.seq_last[s];
	qsort(last, B.messages, sizeof(*last), cmp_u64);
	print_result_head();
	printf(" messages=%u interval_ms=%u deliveries=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "last_p50_ms=%.3f last_p99_ms=%.3f last_max_ms=%.3f lost=%" PRIu64 " dup=%" PRIu64
	       " reorder=%" PRIu64 " failed=%u gen_cpu_pct=%.1f\n",
	       B.messages, B.interval_ms, B.nlat, pct_ms(B.lat, B.nlat, 500),
	       pct_ms(B.lat, B.nlat, 990), B.nlat ? (double)B.lat[B.nlat - 1] / 1e6 : -1,
	       pct_ms(last, B.messages, 500), pct_ms(last, B.messages, 990),
	       (double)last[B.messages - 1] / 1e6, lost, dups, reorders,
	       B.nfailed + B.nclosed_early,
	       100.0 * (cpu_self_s() - c0) / ((double)now_ns() / 1e9 - w0));
	if (B.ext_pct) {
		/* The ext connections' own figures (the v1 ones are the rest of the above). */
		fflush(stdout);
		printf("RESULT mode=latency-ext proto=cable label=%s-ext clients=%u ext_pct=%u "
		       "deliveries=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f v1_deliveries=%zu "
		       "v1_p50_ms=%.3f v1_p99_ms=%.3f offset_gaps=%u\n",
		       B.label[0] ? B.label : "-", B.clients, B.ext_pct, B.nlat_ext,
		       pct_ms(B.lat_ext, B.nlat_ext, 500), pct_ms(B.lat_ext, B.nlat_ext, 990),
		       B.nlat_ext ? (double)B.lat_ext[B.nlat_ext - 1] / 1e6 : -1, B.nlat_v1,
		       pct_ms(B.lat_v1, B.nlat_v1, 500), pct_ms(B.lat_v1, B.nlat_v1, 990),
		       ext_gaps());
	}
	free(last);
	return lost ? 1 : 0;
}

static int run_throughput(void)
{
	uint64_t end, t_meas0, t_meas1, d0, d1, lost, dups, reorders, stall_since = 0, last_done;
	double c0, c1, s0, s1, secs;

	alloc_seq_tables();
	/* First: libmosquitto's loop uses select(), so its socket must stay below FD_SETSIZE. */
	publisher_start();
	setup_subscribers();
	pump_for_ms(500);
	end = now_ns() + (1 + (uint64_t)B.duration_s) * 1000000000ull;
	t_meas0 = now_ns() + 1000000000ull; /* 1 s warm-up */
	t_meas1 = end;
	d0 = d1 = 0;
	c0 = c1 = s0 = s1 = 0;
	last_done = 0;
	bool in_meas = false;

	while (now_ns() < end) {
		uint64_t now;

		while (B.published - B.completed < B.window)
			publish_stamped(B.published);
		service(true);
		now = now_ns();
		if (!in_meas && now >= t_meas0) {
			in_meas = true;
			d0 = B.delivered;
			c0 = cpu_self_s();
			s0 = cpu_of_pid(B.server_pid);
			t_meas0 = now;
		}
		if (B.completed != last_done) {
			last_done = B.completed;
			stall_since = now;
		} else if (stall_since && now - stall_since > 3000000000ull) {
			note("no message completed for 3 s: stopping (loss?)");
			break;
		} else if (!stall_since) {
			stall_since = now;
		}
	}
	t_meas1 = now_ns();
	d1 = B.delivered;
	c1 = cpu_self_s();
	s1 = cpu_of_pid(B.server_pid);
	secs = (double)(t_meas1 - t_meas0) / 1e9;
	total_expected = B.published * B.clients;
	pump_until(all_delivered, now_ns() + 5000000000ull);
	check_conns((uint32_t)B.published, &lost, &dups, &reorders);
	print_result_head();
	printf(" window=%u seconds=%.2f published=%" PRIu64 " deliveries_per_s=%.0f "
	       "msgs_per_s=%.1f lost=%" PRIu64 " dup=%" PRIu64 " reorder=%" PRIu64
	       " failed=%u gen_cpu_pct=%.1f server_cpu_pct=%.1f ext_pct=%u offset_gaps=%u\n",
	       B.window, secs, B.published, (double)(d1 - d0) / secs,
	       (double)(d1 - d0) / secs / B.clients, lost, dups, reorders,
	       B.nfailed + B.nclosed_early, 100.0 * (c1 - c0) / secs,
	       s0 >= 0 ? 100.0 * (s1 - s0) / secs : -1.0, B.ext_pct, ext_gaps());
	return lost ? 1 : 0;
}

static uint32_t bcast_samples, bcast_sent, bcast_target;

static void send_random_broadcast(void)
{
	char data[MAX_FRAME];
	struct conn *c;
	uint32_t i, tries;
	uint64_t wall;
	int n;

	for (i = 0; i < B.concurrent && B.fl[i].active; i++)
		;
	if (i == B.concurrent)
		return;
	for (tries = 0;; tries++) {
		c = &B.conns[(uint32_t)rand() % B.nconns];
		if (c->state == C_READY)
			break;
		if (tries > 1000)
			die("no ready connection to broadcast from");
	}
	wall = wall_ns();
	n = snprintf(data, sizeof(data),
	             "{\"action\":\"broadcast\",\"payload\":{\"sendTime\":\"%" PRIu64
	             "\",\"padding\":\"",
	             wall);
	for (uint32_t k = 0; k < B.padding && (size_t)n < sizeof(data) - 8; k++)
		data[n++] = "1234567890"[k % 10];
	n += snprintf(data + n, sizeof(data) - (size_t)n, "\"}}");
	B.fl[i].active = true;
	B.fl[i].sender = c->idx;
	B.fl[i].send_wall = wall;
	B.fl[i].t_mono = now_ns();
	bcast_sent++;
	send_broadcast(c, data, (size_t)n);
}

static void broadcast_received(struct conn *c, const char *data, size_t len)
{
	uint64_t t;
	uint32_t i;
	bool ok;

	t = num_after(data, len, "\"sendTime\":", &ok);
	if (!ok)
		return;
	c->rx++;
	B.brx++;
	for (i = 0; i < B.concurrent; i++) {
		if (B.fl[i].active && B.fl[i].send_wall == t && B.fl[i].sender == c->idx) {
			B.fl[i].active = false;
			B.rtt[B.nrtt++] = now_ns() - B.fl[i].t_mono;
			bcast_samples++;
			if (bcast_sent < bcast_target)
				send_random_broadcast();
			break;
		}
	}
}

static uint64_t bcast_expected;
static bool bcast_all_in(void)
{
	return B.brx >= bcast_expected;
}

static int run_broadcast(void)
{
	uint32_t step, i, active;
	int rc = 0;

	B.conns = xcalloc((size_t)B.step_size * B.steps, sizeof(*B.conns));
	B.fl = xcalloc(B.concurrent, sizeof(*B.fl));
	B.rtt = xcalloc(B.sample_size, sizeof(*B.rtt));
	srand(12345);
	for (step = 1; step <= B.steps; step++) {
		uint64_t deadline, lost;

		connect_more(B.step_size, true);
		for (i = 0; i < B.nconns; i++)
			B.conns[i].rx = 0;
		B.brx = 0;
		B.nrtt = 0;
		B.bdrops = 0;
		bcast_samples = bcast_sent = 0;
		bcast_target = B.sample_size;
		memset(B.fl, 0, B.concurrent * sizeof(*B.fl));
		for (i = 0; i < B.concurrent && bcast_sent < bcast_target; i++)
			send_random_broadcast();
		deadline = now_ns() + 120ull * 1000000000ull;
		while (bcast_samples + B.bdrops < bcast_target && now_ns() < deadline) {
			uint64_t now;

			service(true);
			now = now_ns();
			for (i = 0; i < B.concurrent; i++) {
				if (B.fl[i].active && now - B.fl[i].t_mono > 10000000000ull) {
					B.fl[i].active =
					        false; /* the sender never saw it: a drop */
					B.bdrops++;
					if (bcast_sent < bcast_target)
						send_random_broadcast();
				}
			}
		}
		active = B.nready;
		bcast_expected = (uint64_t)active * bcast_sent;
		pump_until(bcast_all_in, now_ns() + 2000000000ull);
		lost = bcast_expected > B.brx ? bcast_expected - B.brx : 0;
		qsort(B.rtt, B.nrtt, sizeof(*B.rtt), cmp_u64);
		print_result_head();
		printf(" step=%u active=%u samples=%zu drops=%u p95_ms=%.3f min_ms=%.3f "
		       "p50_ms=%.3f "
		       "max_ms=%.3f expected=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
		       " failed=%u\n",
		       step, active, B.nrtt, B.bdrops, pct_ms(B.rtt, B.nrtt, 950),
		       B.nrtt ? (double)B.rtt[0] / 1e6 : -1, pct_ms(B.rtt, B.nrtt, 500),
		       B.nrtt ? (double)B.rtt[B.nrtt - 1] / 1e6 : -1, bcast_expected, B.brx, lost,
		       B.nfailed + B.nclosed_early);
		fflush(stdout);
		if (lost || B.bdrops)
			rc = 1;
		if (B.nrtt && B.rtt[B.nrtt * 95 / 100] > 10000000000ull) {
			note("p95 above 10 s: stopping the steps here");
			break;
		}
	}
	return rc;
}

static int run_idle(void)
{
	long rss0, rss1, in0, in1, mem0, mem1, slab0, slab1;
	double cpu0, cpu1, secs;
	uint64_t t0;

	if (B.server_pid <= 0)
		die("--mode idle needs --pid (the server process)");
	rss0 = rss_kib(B.server_pid);
	sockstat(&in0, &mem0);
	slab0 = slab_kib();
	B.conns = xcalloc(B.clients, sizeof(*B.conns));
	connect_more(B.clients, true);
	pump_for_ms(3500); /* one ping round, allocator settles */
	rss1 = rss_kib(B.server_pid);
	sockstat(&in1, &mem1);
	slab1 = slab_kib();
	cpu0 = cpu_of_pid(B.server_pid);
	t0 = now_ns();
	pump_for_ms((uint64_t)B.idle_s * 1000);
	cpu1 = cpu_of_pid(B.server_pid);
	secs = (double)(now_ns() - t0) / 1e9;
	print_result_head();
	printf(" ready=%u rss0_kib=%ld rss1_kib=%ld bytes_per_conn=%.0f sock_inuse_delta=%ld "
	       "sock_mem_bytes_per_conn=%.0f slab_bytes_per_conn=%.0f idle_secs=%.1f "
	       "server_cpu_pct=%.3f "
	       "cpu_us_per_conn_per_s=%.4f failed=%u\n",
	       B.nready, rss0, rss1, B.nready ? (double)(rss1 - rss0) * 1024.0 / B.nready : -1,
	       in1 - in0, B.nready ? (double)(mem1 - mem0) * 4096.0 / B.nready : -1,
	       B.nready ? (double)(slab1 - slab0) * 1024.0 / B.nready : -1, secs,
	       100.0 * (cpu1 - cpu0) / secs, B.nready ? 1e6 * (cpu1 - cpu0) / secs / B.nready : -1,
	       B.nfailed + B.nclosed_early);
	return 0;
}

/*
 * History memory: every connection (ext) streams its own topic actuators/<idx>/state;
 * `messages` rounds of one stamped message per topic, paced, then the server's RSS
 * growth over the publishing. The caller reads cable_history_* from /metrics.
 */
static int run_history(void)
{
	long rss0, rss1;
	uint32_t r, i;
	char topic[64], data[96];
	int n;

	if (B.server_pid <= 0)
		die("--mode history needs --pid (the server process)");
	publisher_start();
	B.conns = xcalloc(B.clients, sizeof(*B.conns));
	connect_more(B.clients, true);
	pump_for_ms(1000);
	rss0 = rss_kib(B.server_pid);
	for (r = 0; r < B.messages; r++) {
		for (i = 0; i < B.clients; i++) {
			snprintf(topic, sizeof(topic), "actuators/%u/state", i);
			n = snprintf(data, sizeof(data), "{\"seq\":%u,\"t\":%" PRIu64 "}", r,
			             now_ns());
			mosquitto_publish(B.mosq_pub, NULL, topic, n, data, 0, false);
			B.published++;
			if (i % 500 == 499)
				pump_for_ms(5);
		}
	}
	pump_for_ms(3000);
	rss1 = rss_kib(B.server_pid);
	print_result_head();
	printf(" ready=%u messages=%u published=%" PRIu64 " delivered=%" PRIu64
	       " rss0_kib=%ld rss1_kib=%ld rss_growth_bytes=%ld offset_gaps=%u failed=%u\n",
	       B.nready, B.messages, B.published, B.delivered, rss0, rss1, (rss1 - rss0) * 1024,
	       ext_gaps(), B.nfailed + B.nclosed_early);
	return 0;
}

static bool storm_done(void)
{
	return B.nwelcomed + B.nfailed + B.nclosed_early >= B.nconns;
}

static int run_storm(void)
{
	uint64_t *d, t0, t1;
	size_t n = 0;
	uint32_t i, j;

	B.conns = xcalloc(B.clients, sizeof(*B.conns));
	/* Tokens are signed before the clock starts (open_conn signs; pre-warm OpenSSL). */
	if (B.secret_file && B.proto != P_MQTT)
		free(make_token(0));
	t0 = now_ns();
	for (i = 0; i < B.clients;) {
		for (j = 0; j < 256 && i < B.clients; j++, i++) {
			open_conn(&B.conns[i], i);
			B.nconns++;
		}
		service(false); /* timestamp early welcomes without blocking */
	}
	t1 = now_ns();
	pump_until(storm_done, now_ns() + 90ull * 1000000000ull);
	d = xcalloc(B.clients, sizeof(*d));
	for (i = 0; i < B.nconns; i++) {
		if (B.conns[i].t_welcome)
			d[n++] = B.conns[i].t_welcome - B.conns[i].t_start;
	}
	qsort(d, n, sizeof(*d), cmp_u64);
	print_result_head();
	printf(" token=%s welcomed=%zu failed=%u issue_ms=%.0f p50_ms=%.3f p95_ms=%.3f "
	       "p99_ms=%.3f max_ms=%.3f\n",
	       B.secret_file && B.proto != P_MQTT ? "yes" : "no", n, B.nfailed + B.nclosed_early,
	       (double)(t1 - t0) / 1e6, pct_ms(d, n, 500), pct_ms(d, n, 950), pct_ms(d, n, 990),
	       n ? (double)d[n - 1] / 1e6 : -1);
	free(d);
	return n == B.clients ? 0 : 1;
}

/* libmosquitto's thread: a message on bench/all from the perform path. */
static void perf_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	uint64_t now = now_ns(), t;
	unsigned idx;
	bool ok;

	(void)m;
	(void)obj;
	t = num_after(msg->payload, (size_t)msg->payloadlen, "\"t\":", &ok);
	if (!ok)
		return;
	idx = atomic_fetch_add(&B.perf_n, 1);
	if (idx < B.perf_cap)
		B.perf_lat[idx] = now > t ? now - t : 0;
}

static void perf_on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)obj;
	if (rc == 0)
		mosquitto_subscribe(m, NULL, TOPIC, 0);
}

static void perf_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *q)
{
	(void)m;
	(void)obj;
	(void)mid;
	(void)n;
	(void)q;
	atomic_store(&B.mqtt_sub_ready, 1);
}

static bool perf_all_in(void)
{
	return atomic_load(&B.perf_n) >= B.messages;
}

static int run_perform(void)
{
	char id[64], data[128];
	uint64_t next, deadline = now_ns() + 5000000000ull;
	uint32_t s, got;
	int n;

	if (B.proto == P_RAILS)
		die("--mode perform needs an MQTT side (cable or mqtt)");
	B.perf_cap = B.messages;
	B.perf_lat = xcalloc(B.messages, sizeof(*B.perf_lat));
	snprintf(id, sizeof(id), "cable-bench-sub-%d", (int)getpid());
	B.mosq_sub = mqtt_client(id);
	mosquitto_connect_callback_set(B.mosq_sub, perf_on_connect);
	mosquitto_subscribe_callback_set(B.mosq_sub, perf_on_subscribe);
	mosquitto_message_callback_set(B.mosq_sub, perf_on_message);
	mqtt_connect_start(B.mosq_sub, B.host, B.mqtt_port, 60);
	while (!atomic_load(&B.mqtt_sub_ready)) {
		if (now_ns() > deadline)
			die("MQTT subscriber did not subscribe");
		usleep(1000);
	}
	B.conns = xcalloc(B.clients, sizeof(*B.conns));
	connect_more(B.clients, true);
	if (B.nready == 0)
		die("no connection ready");
	pump_for_ms(300);
	next = now_ns();
	for (s = 0; s < B.messages; s++) {
		n = snprintf(data, sizeof(data),
		             "{\"action\":\"broadcast\",\"seq\":%u,\"t\":%" PRIu64 "}", s,
		             now_ns());
		send_broadcast(&B.conns[s % B.nready], data, (size_t)n);
		next += (uint64_t)B.interval_ms * 1000000ull;
		pump_until(NULL, next);
	}
	pump_until(perf_all_in, now_ns() + 3000000000ull);
	got = atomic_load(&B.perf_n);
	if (got > B.perf_cap)
		got = B.perf_cap;
	qsort(B.perf_lat, got, sizeof(*B.perf_lat), cmp_u64);
	print_result_head();
	printf(" messages=%u interval_ms=%u received=%u p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "lost=%u\n",
	       B.messages, B.interval_ms, got, pct_ms(B.perf_lat, got, 500),
	       pct_ms(B.perf_lat, got, 990), got ? (double)B.perf_lat[got - 1] / 1e6 : -1,
	       B.messages - got);
	mosquitto_loop_stop(B.mosq_sub, true);
	return got == B.messages ? 0 : 1;
}

/* Correctness only: every client gets every message, once, in order. */
static int run_smoke(void)
{
	uint64_t lost, dups, reorders;
	uint32_t s, half = B.messages / 2;
	char data[128];
	int n;

	alloc_seq_tables();
	/* First: libmosquitto's loop uses select(), so its socket must stay below FD_SETSIZE. */
	publisher_start();
	setup_subscribers();
	pump_for_ms(200);
	/* Half from MQTT (device -> browsers), half from browsers' perform (browser -> all). */
	for (s = 0; s < half; s++) {
		publish_stamped(s);
		pump_for_ms(B.interval_ms);
	}
	for (; s < B.messages; s++) {
		struct conn *c = &B.conns[(uint32_t)rand() % B.clients];

		n = snprintf(data, sizeof(data),
		             "{\"action\":\"broadcast\",\"seq\":%u,\"t\":%" PRIu64 "}", s,
		             now_ns());
		if (c->state != C_READY)
			c = &B.conns[0];
		send_broadcast(c, data, (size_t)n);
		B.published++;
		pump_for_ms(B.interval_ms);
	}
	total_expected = (uint64_t)B.clients * B.messages;
	pump_until(all_delivered, now_ns() + 3000000000ull);
	check_conns(B.messages, &lost, &dups, &reorders);
	print_result_head();
	printf(" messages=%u ready=%u expected=%" PRIu64 " delivered=%" PRIu64 " lost=%" PRIu64
	       " dup=%" PRIu64 " reorder=%" PRIu64 " failed=%u\n",
	       B.messages, B.nready, total_expected, B.delivered, lost, dups, reorders,
	       B.nfailed + B.nclosed_early);
	if (lost || dups || reorders || B.nready < B.nconns || B.nfailed || B.nclosed_early) {
		fprintf(stderr,
		        "cable-bench: SMOKE FAILED (%" PRIu64 " lost, %" PRIu64
		        " duplicated, %" PRIu64 " out of order, %u not ready)\n",
		        lost, dups, reorders, B.nconns - B.nready);
		return 1;
	}
	fprintf(stderr, "cable-bench: smoke OK: %u clients x %u messages, none lost\n", B.clients,
	        B.messages);
	return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: cable-bench [--smoke] [--mode MODE] [--proto cable|mqtt|rails] [options]\n"
	      "modes: smoke broadcast latency throughput idle storm perform history\n"
	      "  --host H --port P --path /cable     WebSocket endpoint (127.0.0.1:8080/cable)\n"
	      "  --mqtt-port P                       broker's MQTT port for publish/subscribe "
	      "(1883)\n"
	      "  --clients N                         connections (1000)\n"
	      "  --messages M --interval-ms I        latency/perform/smoke: M messages, I ms "
	      "apart\n"
	      "  --duration S --window W             throughput: S seconds, W messages in flight\n"
	      "  --idle S                            idle: seconds of idle CPU measurement (15)\n"
	      "  --decoy-subs K                      idle: each connection subscribes to K "
	      "wildcard\n"
	      "                                      streams no benchmark message matches (0)\n"
	      "  --ext PCT                           cable: PCT %% of the connections in\n"
	      "                                      actioncable-v1-ext-json (offsets checked)\n"
	      "  --pid PID                           server process for RSS / CPU\n"
	      "  --secret-file F                     sign a JWT per connection (?jid=)\n"
	      "  --connect-concurrency C             handshakes in flight while connecting (200)\n"
	      "  --step-size N --steps K --concurrent C --sample-size S --payload-padding B\n"
	      "                                      broadcast (websocket-bench) parameters\n"
	      "  --label L  --quiet\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"smoke", no_argument, NULL, 'S'},
	        {"mode", required_argument, NULL, 'm'},
	        {"proto", required_argument, NULL, 'P'},
	        {"host", required_argument, NULL, 'H'},
	        {"port", required_argument, NULL, 'p'},
	        {"path", required_argument, NULL, 'u'},
	        {"mqtt-port", required_argument, NULL, 'q'},
	        {"clients", required_argument, NULL, 'n'},
	        {"messages", required_argument, NULL, 'M'},
	        {"interval-ms", required_argument, NULL, 'i'},
	        {"duration", required_argument, NULL, 'd'},
	        {"window", required_argument, NULL, 'w'},
	        {"idle", required_argument, NULL, 'I'},
	        {"decoy-subs", required_argument, NULL, 6},
	        {"ext", required_argument, NULL, 7},
	        {"pid", required_argument, NULL, 'k'},
	        {"secret-file", required_argument, NULL, 's'},
	        {"connect-concurrency", required_argument, NULL, 'C'},
	        {"step-size", required_argument, NULL, 1},
	        {"steps", required_argument, NULL, 2},
	        {"concurrent", required_argument, NULL, 3},
	        {"sample-size", required_argument, NULL, 4},
	        {"payload-padding", required_argument, NULL, 5},
	        {"label", required_argument, NULL, 'l'},
	        {"quiet", no_argument, NULL, 'Q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	unsigned long long nofile;
	size_t k;
	int o, rc = 2;
	bool smoke_defaults = false;

	log_init("cable-bench", "  ");
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'S':
			B.mode = M_SMOKE;
			smoke_defaults = true;
			break;
		case 'm':
			for (k = 0; k < sizeof(mode_name) / sizeof(*mode_name); k++)
				if (!strcmp(optarg, mode_name[k]))
					break;
			if (k == sizeof(mode_name) / sizeof(*mode_name))
				die("unknown mode %s", optarg);
			B.mode = (enum mode)k;
			smoke_defaults = B.mode == M_SMOKE;
			break;
		case 'P':
			if (!strcmp(optarg, "cable"))
				B.proto = P_CABLE;
			else if (!strcmp(optarg, "mqtt"))
				B.proto = P_MQTT;
			else if (!strcmp(optarg, "rails"))
				B.proto = P_RAILS;
			else
				die("unknown proto %s", optarg);
			break;
		case 'H':
			B.host = optarg;
			break;
		case 'p':
			B.port = (int)num_arg(optarg, "--port");
			break;
		case 'u':
			B.path = optarg;
			break;
		case 'q':
			B.mqtt_port = (int)num_arg(optarg, "--mqtt-port");
			break;
		case 'n':
			B.clients = num_arg(optarg, "--clients");
			smoke_defaults = false;
			break;
		case 'M':
			B.messages = num_arg(optarg, "--messages");
			break;
		case 'i':
			B.interval_ms = num_arg(optarg, "--interval-ms");
			break;
		case 'd':
			B.duration_s = num_arg(optarg, "--duration");
			break;
		case 'w':
			B.window = num_arg(optarg, "--window");
			break;
		case 'I':
			B.idle_s = num_arg(optarg, "--idle");
			break;
		case 6:
			B.decoy_subs = num_arg(optarg, "--decoy-subs");
			break;
		case 7:
			B.ext_pct = num_arg(optarg, "--ext");
			if (B.ext_pct > 100)
				die("--ext is a percentage (0-100)");
			break;
		case 'k':
			B.server_pid = (int)num_arg(optarg, "--pid");
			break;
		case 's':
			B.secret_file = optarg;
			break;
		case 'C':
			B.connect_conc = num_arg(optarg, "--connect-concurrency");
			break;
		case 1:
			B.step_size = num_arg(optarg, "--step-size");
			break;
		case 2:
			B.steps = num_arg(optarg, "--steps");
			break;
		case 3:
			B.concurrent = num_arg(optarg, "--concurrent");
			break;
		case 4:
			B.sample_size = num_arg(optarg, "--sample-size");
			break;
		case 5:
			B.padding = num_arg(optarg, "--payload-padding");
			break;
		case 'l':
			B.label = optarg;
			break;
		case 'Q':
			log_quiet();
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (smoke_defaults && B.mode == M_SMOKE) {
		B.clients = 50;
	}
	if (B.mode == M_SMOKE && B.messages == 50)
		B.messages = 40;
	if (B.mode == M_SMOKE && B.interval_ms == 100)
		B.interval_ms = 20;
	if (B.decoy_subs && (B.mode != M_IDLE || B.proto != P_CABLE))
		die("--decoy-subs goes with --mode idle --proto cable");
	if (B.clients == 0 || B.messages == 0 || B.window == 0 || B.concurrent == 0 ||
	    B.sample_size == 0 || B.step_size == 0 || B.steps == 0)
		die("counts must be positive");
	if (B.window >= SEQ_RING / 2)
		die("--window must be below %d", SEQ_RING / 2);

	/* Every descriptor the hard limit allows (20,000 here): one per connection. */
	nofile = raise_nofile();
	if ((uint64_t)B.clients + 64 > nofile && B.mode != M_BROADCAST)
		die("%u connections need more descriptors than nofile %llu allows", B.clients,
		    nofile);
	if (B.secret_file)
		B.secret_len = read_secret(B.secret_file, B.secret, sizeof(B.secret));
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	B.spread_sources = getenv("BENCH_NO_SPREAD") == NULL;
	make_context();
	note("%s / %s: %u clients -> ws://%s:%d%s", mode_name[B.mode], proto_name[B.proto],
	     B.clients, B.host, B.port, B.path);

	switch (B.mode) {
	case M_SMOKE:
		rc = run_smoke();
		break;
	case M_BROADCAST:
		rc = run_broadcast();
		break;
	case M_LATENCY:
		rc = run_latency();
		break;
	case M_THROUGHPUT:
		rc = run_throughput();
		break;
	case M_IDLE:
		rc = run_idle();
		break;
	case M_STORM:
		rc = run_storm();
		break;
	case M_PERFORM:
		rc = run_perform();
		break;
	case M_HISTORY:
		rc = run_history();
		break;
	}
	fflush(stdout);
	if (B.mosq_pub) {
		mosquitto_disconnect(B.mosq_pub);
		mosquitto_loop_stop(B.mosq_pub, true);
		mosquitto_destroy(B.mosq_pub);
	}
	/* Closing thousands of sockets one by one through lws is slow and measures nothing. */
	_exit(rc);
}
