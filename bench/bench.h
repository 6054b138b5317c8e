/*
 * cable-bench's parts and what they share (cable_bench.c has the overview):
 *
 *   bench_ws.c     the WebSocket client: libwebsockets on a libev (epoll) loop, one
 *                  connection per struct conn, an outbound queue each, the event loop
 *                  turns (service, pump_until) and the paced connect (connect_more)
 *   bench_wire.c   what the connections say and hear: ActionCable JSON commands, MQTT
 *                  v3.1.1 packets (hand-encoded; lws does the WebSocket framing), and the
 *                  accounting of every received data message
 *   bench_modes.c  the stamped publisher and one function per --mode; each prints the
 *                  run's "RESULT ..." line (bench/run.sh parses them)
 *   cable_bench.c  the option table (opts.h) and main
 *
 * All of it runs on the main thread, except the perform mode's MQTT subscriber callbacks
 * (libmosquitto's network thread), which touch only the atomics and perf_lat.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

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

struct bench {
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
	uint32_t hold_s;     /* seconds to keep the connections open after the RESULT line */
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
};

/* The run's configuration (options) and state; one per process, defined in cable_bench.c. */
extern struct bench bench;

/* Names of enum proto and enum mode, as the options and the RESULT lines spell them. */
extern const char *const proto_name[];
extern const char *const mode_name[];

/* ---- The WebSocket client (bench_ws.c) ---------------------------------------------- */

/* Queues one frame (text, or binary for MQTT) on c; dropped when c is not open. */
void conn_send(struct conn *c, const void *data, size_t len, bool binary);

/* Appends to c's reassembly buffer (a fragmented frame, or a partial MQTT packet). */
void frag_append(struct conn *c, const void *in, size_t len);

/*
 * One turn of the event loop: wait for events (at most until the next tick) and handle
 * them, or with wait == false handle only what is ready now. lws runs on a libev loop of
 * ours (epoll): its default poll() backend scans every descriptor on each turn, about
 * 1 ms at 10,000 connections, which made the generator, not the server, the bottleneck.
 */
void service(bool wait);

/* The lws client context on a new libev epoll loop, with the service tick; dies on failure. */
void make_context(void);

/*
 * Starts connection idx into c (zeroed first): a token in the path with --secret-file,
 * the subprotocol of --proto (and --ext), the client end spread over 127.0.1.x.
 */
void open_conn(struct conn *c, uint32_t idx);

/* Service until cond() or the deadline (ns, monotonic); true if cond() held. */
bool pump_until(bool (*cond)(void), uint64_t deadline);

/* Services the loop for ms milliseconds. */
void pump_for_ms(uint64_t ms);

/*
 * Opens connections [bench.nconns, bench.nconns + n), at most connect_conc handshakes at
 * once (need_ready: counting a connection busy until subscribed, else until welcomed),
 * then waits (within 120 s of the start) until each is subscribed, failed or closed.
 */
void connect_more(uint32_t n, bool need_ready);

/* ---- ActionCable and MQTT on the connections (bench_wire.c) ---------------------------- */

/* A token for user "bench<idx>", valid one hour, minted by the core. malloc'd. */
char *make_token(uint32_t idx);

/* Each encoder writes into buf (at least 64 + payload bytes) and returns the length. */
size_t mqtt_connect(unsigned char *buf, const char *client_id);

/* Subscribes c as its mode wants (BenchmarkChannel, decoys, its own actuator, MQTT). */
void send_subscribe(struct conn *c);

/*
 * Send `data` (a JSON object with "action":"broadcast" first) as the connection's
 * broadcast: a perform on ActionCable, a PUBLISH of the same object to bench/all on MQTT.
 */
void send_broadcast(struct conn *c, const char *data, size_t len);

/* The first needle in hay[0..len), or NULL. */
const char *find(const char *hay, size_t len, const char *needle);

/* The decimal number after key (quoted or not); *ok false when there is none. */
uint64_t num_after(const char *hay, size_t len, const char *key, bool *ok);

/* A complete ActionCable message on c: welcome, confirm, reject, ping or data. */
void on_text(struct conn *c, const char *in, size_t len);

/* MQTT over WebSocket is a byte stream: packets may span frames. */
void mqtt_stream(struct conn *c, const unsigned char *in, size_t len);

/* ---- Publishing and the modes (bench_modes.c) ---------------------------------------- */

/* Broadcast mode: a connection received a broadcast (websocket-bench's payload). */
void broadcast_received(struct conn *c, const char *data, size_t len);

/* Runs the mode: connects, measures, prints the RESULT line; returns the exit status. */
int run_mode(enum mode m);

#endif
