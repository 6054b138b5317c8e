/*
 * cable-soak's parts and what they share (cable_soak.c has the overview):
 *
 *   soak_world.c     the random source and the topics and channels of
 *                    config/channels.example.json the run uses
 *   soak_mqtt.c      the MQTT side: devices that publish stamped messages (their own
 *                    thread) and the latency probe (libmosquitto's threads)
 *   soak_ws.c        the browsers' WebSocket client: non-blocking sockets on one epoll,
 *                    the upgrade, masked frames, send buffers, the frame parser
 *   soak_browsers.c  what the browsers do: healthy ones check every message, churners
 *                    subscribe, speak, reconnect and inject the faults
 *   cable_soak.c     the option table, the phases, the verdict and the report
 *
 * Threads: the browsers (soak_ws.c, soak_browsers.c) run on the main thread only. The
 * devices have a thread of their own, the probe runs on libmosquitto's; what they share
 * with main is in struct soak_mqtt (atomics, and the lock for the latency samples) and
 * topics[].started (atomic).
 */
#ifndef BENCH_SOAK_H
#define BENCH_SOAK_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

#include "common.h"

#define NDEV        8          /* MQTT device clients; topic k belongs to device k % NDEV */
#define MAX_SUBS    4          /* a churning browser's ordinary subscriptions */
#define MAX_TRACK   16         /* topics a healthy browser checks */
#define RX_MAX      (4u << 20) /* a browser's receive buffer bound */
#define TX_MAX      (1u << 20) /* a browser's send buffer bound */
#define HS_TIMEOUT  15000      /* ms: client side bound for connect + upgrade + welcome */
#define CLOSE_WAIT  3000       /* ms: a clean close waits this long for the server */
#define DRAIN_WAIT  10000      /* ms: a resumed stalled reader reads this long at most */
#define SLOWHS_WAIT 25000      /* ms: a hanging handshake waits for the server this long */

/* ---- Configuration ----------------------------------------------------------------- */
struct soak_opt {
	const char *host, *path, *secret_file, *label, *metrics_host;
	int port, mqtt_port, pid;
	uint32_t clients, healthy, duration_s, idle_s, settle_s, rate, actuators, sites, sensors,
	        pad, fault_pct, action_ms, life_min_s, life_max_s, stall_s, connect_conc;
	uint64_t seed;
	int browser_nice;
	uint32_t speak_share;
	unsigned fault_mask; /* bit per enum fault */
	double lat_ratio;
	long rss_slack_kib;
};

/* ---- Utilities ------------------------------------------------------------------------ */
#define MS(x) ((uint64_t)(x)*1000000ull)

/* ---- Topics and channels (config/channels.example.json) --------------------------------
 *
 * Channel ch < A is ActuatorChannel id=ch (streams actuators/ch/state and
 * actuators/ch/cmd; speak publishes to actuators/ch/cmd); channel A + s is SensorChannel
 * site="s<s>" (stream sites/s<s>/sensors/#, envelope delivery). Device topic k < A is
 * actuators/k/state; topic A + s * S + j is sites/s<s>/sensors/t<j>.
 */
struct topic {
	char name[64];
	uint32_t ch;
	atomic_llong started; /* highest seq whose publish may have begun (device thread) */
};

/* ---- MQTT: devices and the latency probe ----------------------------------------------- */
enum phase { PH_WARM, PH_IDLE, PH_RAMP, PH_SOAK, PH_END, PH_AFTER, PH_N };

struct soak_mqtt {
	struct mosquitto *dev[NDEV], *probe;
	atomic_int connected, probe_ready;
	atomic_int phase;
	atomic_bool stop;
	pthread_t thread;
	bool thread_started;
	atomic_ullong published, publish_errors, late;
	/* probe, written by its libmosquitto thread */
	pthread_mutex_t lock;
	uint32_t *lat[PH_N]; /* microseconds */
	size_t nlat[PH_N], cap[PH_N];
	atomic_ullong probe_rx;
	atomic_llong marker_seen;
	/* soak-phase samples above spike_us: their publish times, to set against ping bursts */
	atomic_uint spike_us;
	uint64_t *spikes;
	size_t nspikes, spike_cap;
};

/* ---- Browsers ------------------------------------------------------------------------------- */
enum kind { K_HEALTHY, K_CHURN };

enum state { S_DOWN, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING, S_DONE };

enum fault {
	F_NONE,
	F_RST,
	F_FIN,
	F_HALF_FRAME,
	F_HALF_HS,
	F_SLOW_HS,
	F_PAUSE,
	F_STALL,
	F_STALL_HUNG,
	F_N
};

enum sub_state { SUB_NONE, SUB_PENDING, SUB_OK, SUB_GONE };

struct track {
	uint32_t topic;
	int64_t must_from; /* first seq that must arrive (INT64_MAX before the confirm) */
	int64_t last;      /* last seq seen, -1 before the first */
};

struct bc {
	int fd;
	uint32_t idx; /* also the token's user: soak<idx> */
	uint8_t kind, st, fault;
	bool welcomed, stalled, resumed, saw_too_slow, broken, sent_close;
	uint8_t nsubs; /* channels PENDING or OK */
	uint8_t *sub;  /* per channel, enum sub_state */
	uint64_t t_next, t_end;
	char *path;
	char *rx, *msg, *tx;
	size_t rx_len, rx_cap, msg_len, msg_cap, tx_len, tx_cap;
	uint32_t ev;
	uint32_t speak_n;
	/* healthy browsers */
	struct track tr[MAX_TRACK];
	uint8_t ntr;
	uint32_t hs_sent, hs_next;
};

struct soak_stats {
	uint64_t connects, connect_errors, hs_refused, hs_timeouts, welcomed, sessions;
	uint64_t faults[F_N];
	uint64_t clean_closes, clean_close_timeouts;
	uint64_t subscribes, confirms, rejects, unsubscribes, resubscribes, speaks;
	uint64_t too_slow_seen, too_slow_unexpected, stall_no_too_slow, stall_closed_unread;
	uint64_t pauses_ok, pause_dropped;
	uint64_t slow_hs_closed, slow_hs_kept;
	uint64_t disconnect_other, server_dropped;
	uint64_t frames, msgs, bytes, foreign, proto_errors;
	uint64_t h_msgs, h_lost, h_dup, h_reorder, h_early, h_misrouted, h_disconnects;
	uint64_t h_speak_sent, h_speak_echo, h_speak_lost, h_speak_dup;
	uint32_t open_now, open_peak;
};

#define NOTE_FIRST(counter, ...)                                                                   \
	do {                                                                                       \
		if ((counter) <= 3)                                                                \
			note(__VA_ARGS__);                                                         \
	} while (0)

/* The options (cable_soak.c). */
extern struct soak_opt opt;

/* ---- The random source, topics and channels (soak_world.c) -------------------------- */

extern uint64_t rng_state; /* seeded by main from --seed */
extern struct topic *topics;
extern uint32_t ntopics, nchannels;
extern char **id_esc; /* per channel: the identifier as it appears inside a JSON string */
extern size_t *id_esc_len;

/* xorshift64*: the browser thread's only random source (--seed makes a run repeatable). */
uint64_t rnd(void);

/* Uniform in [0, n); 0 when n is 0. */
uint32_t rnd_below(uint32_t n);

/* Exponentially distributed delay with the given mean, capped at 4x the mean. */
uint64_t rnd_exp_ns(uint32_t mean_ms);

/* Uniform in [lo_ms, hi_ms) milliseconds, in ns. */
uint64_t rnd_range_ns(uint32_t lo_ms, uint32_t hi_ms);

/* The topics and channels from the options (topics, ntopics, nchannels, id_esc). */
void make_topics(void);

/* The channel named by an identifier as the server echoes it; -1 if none of ours. */
int channel_of(const char *p, size_t len);

/* The number after `key` (e.g. "\"seq\":"), or -1. */
int64_t num_after(const char *p, size_t len, const char *key);

/* ---- The MQTT side: devices and the latency probe (soak_mqtt.c) ---------------------- */

extern struct soak_mqtt mq;

/* Connect the probe and the devices (before any browser socket: libmosquitto's loop uses
 * select(), so its descriptors must stay below FD_SETSIZE). */
void mqtt_start(void);

/* The devices: --rate messages per second, round robin over the topics, each topic's
 * messages numbered 1, 2, 3... from its own device client (so in order on the wire). */
void *device_main(void *arg);

/* The phase the probe files its latency samples under. */
void set_phase(enum phase p);

/* p50/p99/max of a phase's latencies in ms, over [from, n). */
void lat_stats(int ph, size_t from, double *p50, double *p99, double *max, size_t *count);

/* A marker through the broker and back to the probe: the broker still works. */
bool broker_round_trip(void);

/* ---- The browsers' WebSocket client (soak_ws.c) --------------------------------------- */

/* Sets the epoll interest from the state: reads unless stalled, writes while connecting or queued.
 */
void bc_update_events(struct bc *c);

/* Sends what is queued, as far as the socket takes it; a send error marks c broken. */
void bc_flush(struct bc *c);

/* Queues bytes to send (at most TX_MAX pending, else c is broken and counted). */
void bc_queue(struct bc *c, const void *data, size_t len);

/* A masked client frame (RFC 6455 5.3) into buf; returns its length. */
size_t ws_frame(unsigned char *buf, int op, const void *data, size_t len);

/* One masked frame (opcode op) queued and flushed; payloads over 1 KiB are not sent. */
void ws_send(struct bc *c, int op, const void *data, size_t len);

/* Closes the socket (with a RST when rst); the session state is the caller's. */
void bc_close_fd(struct bc *c, bool rst);

/* Reads what arrived: the upgrade answer, then frames, passed to on_text. */
void bc_read(struct bc *c);

/* One epoll_wait of at most timeout_ms and the socket events it returns. */
void engine_events(int timeout_ms);

/* ---- The browsers (soak_browsers.c) ----------------------------------------------------- */

extern struct soak_stats stats;
extern const char *const fault_name[F_N];
extern struct bc *browsers;
extern uint32_t nbrowsers;
/* When the plugin's ActionCable pings reached the browsers (starts of ping bursts). */
extern uint64_t *bursts;
extern size_t nbursts, burst_cap;
extern int ep;        /* the browsers' epoll */
extern bool churning; /* churners reconnect and act only while true */
extern struct sockaddr_in server_addr;
extern char secret[512]; /* the key from --secret-file, read once in main */
extern size_t secret_len;

/* ActionCable commands on channel ch (queued and flushed). */
void cmd_subscribe(struct bc *c, uint32_t ch);

void cmd_unsubscribe(struct bc *c, uint32_t ch);

void cmd_speak(struct bc *c, uint32_t ch, const char *data);

/* The session is over: the socket goes, the browser reconnects later (churners). */
void bc_end(struct bc *c, bool rst);

/* Connected: send the upgrade (or, for a handshake fault, part of it). */
void bc_connected(struct bc *c);

/* A complete text message from the server (welcome, confirm, ping, data...). */
void on_text(struct bc *c, const char *p, size_t len);

/* The server closed (EOF, reset, or a close frame): account for it and end the session. */
void on_server_close(struct bc *c);

/* Faults injected so far, all kinds. */
uint64_t fault_total(void);

/* Runs the browsers whose timer is due (at most every 5 ms). */
void engine_timers(void);

/* The browsers, each with a token that expires at exp (Unix seconds). */
void browsers_init(long long exp);

/* Connect every browser, at most --connect-concurrency handshakes at a time. */
void browsers_ramp(void);

/* Every open healthy browser has each of its topics up to fin[topic], and its speaks. */
bool healthy_caught_up(const long long *fin);

#endif
