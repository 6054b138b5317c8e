/*
 * cable-soak: the soak test of issue 4 (item 8). Run by bench/soak.sh, which starts a
 * private broker with the plugin (JWT auth, default limits) and passes its ports and pid.
 *
 * What it does, in phases:
 *   idle     MQTT devices (libmosquitto) publish stamped messages at --rate across the
 *            topics of config/channels.example.json (actuators/<id>/state and
 *            sites/<site>/sensors/<n>); an MQTT probe subscriber on the same broker
 *            measures publish -> receive latency with no browser connected.
 *   ramp     --healthy healthy browsers and --clients churning browsers connect
 *            (JWT per browser, ?jid=), at most --connect-concurrency handshakes at once.
 *   soak     for --duration seconds the churning browsers subscribe, unsubscribe,
 *            resubscribe, speak and reconnect at random; --fault-pct of their sessions
 *            end in a fault: an abrupt close (RST, or FIN without a WebSocket close), a
 *            half-written frame then close, a half-written handshake (then close, or
 *            left hanging for the server's handshake timeout), a short pause in
 *            reading (3-10 s, under every bound: the server must keep it), or a
 *            stalled reader that subscribes to every channel and stops reading for
 *            --stall seconds (the server must disconnect it as too_slow; it resumes
 *            reading later to see that, or, for a "hung" stall, vanishes with a RST).
 *            The browser thread runs at --browser-nice (10): the simulated browsers
 *            share the CPUs with the broker and yield to it. The healthy browsers never
 *            fault: they
 *            check that every device message on their topics arrives, in order, once,
 *            and that their own speaks come back.
 *   end      the churners close; the devices' sequence numbers at that moment are the
 *            healthy browsers' finish line; then the healthy browsers close.
 *   after    the broker settles for --settle seconds (latency measured again), then its
 *            RSS, descriptors and /metrics are read and compared with the idle baseline.
 *
 * Everything is bounded: the number of connections, every wait (handshake, close,
 * drain), every buffer, and the run as a whole (--duration plus fixed margins).
 * Traffic goes to --host only (127.0.0.1).
 *
 * The browser side is a small WebSocket client of its own on one epoll thread (not
 * libwebsockets): faults need control of the socket that lws does not give, such as
 * writing half a frame or stopping reads on one connection.
 *
 * Output: progress lines on stderr every 10 s, a summary, and the last line on stdout:
 * "RESULT mode=soak key=value ...". Exit status: 0 all checks passed; 1 a correctness
 * check failed (healthy browser lost/duplicated/reordered a message or was
 * disconnected, a message reached a connection that never subscribed to it, a
 * non-stalled browser was called too slow, the broker died or stopped answering,
 * connections or subscriptions left behind); 3 only a performance criterion was missed
 * (RSS not back near baseline, MQTT latency p99 above --lat-ratio x idle); 2 setup.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

static struct {
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
} O = {
        .host = "127.0.0.1",
        .path = "/cable",
        .label = "-",
        .port = 8080,
        .mqtt_port = 1883,
        .clients = 3000,
        .healthy = 200,
        .duration_s = 300,
        .idle_s = 20,
        .settle_s = 15,
        .rate = 200,
        .actuators = 40,
        .sites = 8,
        .sensors = 3,
        .pad = 160,
        .fault_pct = 10,
        .action_ms = 3000,
        .life_min_s = 10,
        .life_max_s = 60,
        .stall_s = 90,
        .connect_conc = 200,
        .seed = 1,
        .browser_nice = 10,
        .speak_share = 20,
        .fault_mask = ~0u,
        .lat_ratio = 2.0,
        .rss_slack_kib = 16384,
};

/* ---- Utilities ------------------------------------------------------------------------ */

#define MS(x) ((uint64_t)(x)*1000000ull)

/* xorshift64*: the browser thread's only random source (--seed makes a run repeatable). */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/* Exponentially distributed delay with the given mean, capped at 4x the mean. */
static uint64_t rnd_exp_ns(uint32_t mean_ms)
{
	double u = (double)(rnd() >> 11) / 9007199254740992.0, v;

	if (u < 1e-6)
		u = 1e-6;
	v = -log(u);
	if (v > 4)
		v = 4;
	return (uint64_t)(v * (double)MS(mean_ms));
}

static uint64_t rnd_range_ns(uint32_t lo_ms, uint32_t hi_ms)
{
	return MS(lo_ms) + (hi_ms > lo_ms ? (uint64_t)rnd_below(hi_ms - lo_ms) * 1000000ull : 0);
}

/* Open descriptors of a process; -1 when it is gone. */
static long fd_count(int pid)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool broker_alive(void)
{
	return kill(O.pid, 0) == 0 || errno == EPERM;
}

/* ---- Tokens: HS256 JWT {sub, exp}, minted as cable-bench does (common.c) --------------- */

/* The key from --secret-file, read once in main. */
static char secret[512];
static size_t secret_len;

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

static struct topic *T;
static uint32_t NT, NCH;
static char **id_esc; /* per channel: the identifier as it appears inside a JSON string */
static size_t *id_esc_len;

static void make_topics(void)
{
	uint32_t k, s, j, ch;
	char id[128], *e, *p;

	NCH = O.actuators + O.sites;
	NT = O.actuators + O.sites * O.sensors;
	T = xcalloc(NT, sizeof(*T));
	for (k = 0; k < O.actuators; k++) {
		snprintf(T[k].name, sizeof(T[k].name), "actuators/%u/state", k);
		T[k].ch = k;
	}
	for (s = 0; s < O.sites; s++)
		for (j = 0; j < O.sensors; j++) {
			k = O.actuators + s * O.sensors + j;
			snprintf(T[k].name, sizeof(T[k].name), "sites/s%u/sensors/t%u", s, j);
			T[k].ch = O.actuators + s;
		}
	id_esc = xcalloc(NCH, sizeof(*id_esc));
	id_esc_len = xcalloc(NCH, sizeof(*id_esc_len));
	for (ch = 0; ch < NCH; ch++) {
		if (ch < O.actuators)
			snprintf(id, sizeof(id), "{\"channel\":\"ActuatorChannel\",\"id\":%u}", ch);
		else
			snprintf(id, sizeof(id), "{\"channel\":\"SensorChannel\",\"site\":\"s%u\"}",
			         ch - O.actuators);
		e = xcalloc(2 * strlen(id) + 1, 1);
		for (p = id, j = 0; *p; p++) {
			if (*p == '"')
				e[j++] = '\\';
			e[j++] = *p;
		}
		id_esc[ch] = e;
		id_esc_len[ch] = j;
	}
}

/* The channel named by an identifier as the server echoes it; -1 if none of ours. */
static int channel_of(const char *p, size_t len)
{
	const char *q, *end = p + len;
	uint32_t v = 0;
	bool digits = false;

	if ((q = memmem(p, len, "ActuatorChannel\\\",\\\"id\\\":", 25)) != NULL) {
		q += 25;
		while (q < end && *q >= '0' && *q <= '9') {
			v = v * 10 + (uint32_t)(*q++ - '0');
			digits = true;
		}
		return digits && v < O.actuators ? (int)v : -1;
	}
	if ((q = memmem(p, len, "SensorChannel\\\",\\\"site\\\":\\\"s", 28)) != NULL) {
		q += 28;
		while (q < end && *q >= '0' && *q <= '9') {
			v = v * 10 + (uint32_t)(*q++ - '0');
			digits = true;
		}
		return digits && v < O.sites ? (int)(O.actuators + v) : -1;
	}
	return -1;
}

/* The number after `key` (e.g. "\"seq\":"), or -1. */
static int64_t num_after(const char *p, size_t len, const char *key)
{
	size_t kl = strlen(key);
	const char *q = memmem(p, len, key, kl), *end = p + len;
	int64_t v = 0;
	bool ok = false;

	if (q == NULL)
		return -1;
	q += kl;
	while (q < end && *q >= '0' && *q <= '9') {
		v = v * 10 + (*q++ - '0');
		ok = true;
	}
	return ok ? v : -1;
}

/* ---- MQTT: devices and the latency probe ----------------------------------------------- */

enum phase { PH_WARM, PH_IDLE, PH_RAMP, PH_SOAK, PH_END, PH_AFTER, PH_N };

static struct {
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
} M = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void dev_on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	(void)obj;
	if (rc == 0)
		atomic_fetch_add(&M.connected, 1);
}

static void probe_on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)obj;
	if (rc == 0) {
		mosquitto_subscribe(m, NULL, "actuators/+/state", 0);
		mosquitto_subscribe(m, NULL, "sites/+/sensors/#", 0);
		mosquitto_subscribe(m, NULL, "soak/marker", 0);
	}
}

static void probe_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *q)
{
	(void)m;
	(void)obj;
	(void)mid;
	(void)n;
	(void)q;
	atomic_fetch_add(&M.probe_ready, 1);
}

static void probe_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	uint64_t now = now_ns();
	int64_t t, lat_us;
	int ph;

	(void)m;
	(void)obj;
	if (strcmp(msg->topic, "soak/marker") == 0) {
		atomic_store(&M.marker_seen,
		             num_after(msg->payload, (size_t)msg->payloadlen, "\"m\":"));
		return;
	}
	t = num_after(msg->payload, (size_t)msg->payloadlen, "\"t\":");
	if (t < 0)
		return;
	atomic_fetch_add(&M.probe_rx, 1);
	lat_us = (int64_t)(now - (uint64_t)t) / 1000;
	if (lat_us < 0)
		lat_us = 0;
	ph = atomic_load(&M.phase);
	pthread_mutex_lock(&M.lock);
	if (M.nlat[ph] < M.cap[ph])
		M.lat[ph][M.nlat[ph]++] = (uint32_t)(lat_us > UINT32_MAX ? UINT32_MAX : lat_us);
	if (ph == PH_SOAK && lat_us > (int64_t)atomic_load(&M.spike_us) && M.nspikes < M.spike_cap)
		M.spikes[M.nspikes++] = (uint64_t)t;
	pthread_mutex_unlock(&M.lock);
}

/* Connect the probe and the devices (before any browser socket: libmosquitto's loop uses
 * select(), so its descriptors must stay below FD_SETSIZE). */
static void mqtt_start(void)
{
	uint64_t deadline = now_ns() + MS(10000);
	size_t per_phase;
	char id[64];
	int i;

	/* Latency samples: the rate times each phase's length, with room. */
	per_phase = (size_t)O.rate * (O.duration_s + O.idle_s + O.settle_s + 120) + 10000;
	for (i = 0; i < PH_N; i++) {
		M.cap[i] = per_phase;
		M.lat[i] = xcalloc(per_phase, sizeof(uint32_t));
	}
	M.spike_cap = per_phase / 10;
	M.spikes = xcalloc(M.spike_cap, sizeof(*M.spikes));
	atomic_store(&M.spike_us, UINT32_MAX);
	snprintf(id, sizeof(id), "soak-probe-%d", (int)getpid());
	M.probe = mqtt_client(id);
	mosquitto_connect_callback_set(M.probe, probe_on_connect);
	mosquitto_subscribe_callback_set(M.probe, probe_on_subscribe);
	mosquitto_message_callback_set(M.probe, probe_on_message);
	mqtt_connect_start(M.probe, O.host, O.mqtt_port, 30);
	for (i = 0; i < NDEV; i++) {
		snprintf(id, sizeof(id), "soak-device-%d-%d", (int)getpid(), i);
		M.dev[i] = mqtt_client(id);
		mosquitto_connect_callback_set(M.dev[i], dev_on_connect);
		if (mosquitto_connect(M.dev[i], O.host, O.mqtt_port, 30) != MOSQ_ERR_SUCCESS)
			die("device %d cannot connect to MQTT", i);
		mosquitto_loop_start(M.dev[i]);
	}
	while (atomic_load(&M.connected) < NDEV || atomic_load(&M.probe_ready) < 3) {
		if (now_ns() > deadline)
			die("MQTT devices/probe did not connect and subscribe");
		usleep(2000);
	}
}

/* The devices: --rate messages per second, round robin over the topics, each topic's
 * messages numbered 1, 2, 3... from its own device client (so in order on the wire). */
static void *device_main(void *arg)
{
	char buf[512], pad[1024];
	uint64_t next = now_ns(), interval = 1000000000ull / (O.rate ? O.rate : 1), i = 0, now;
	struct timespec ts;
	uint32_t k;
	long long seq;
	int n;

	(void)arg;
	memset(pad, 'x', sizeof(pad));
	pad[O.pad < sizeof(pad) ? O.pad : sizeof(pad) - 1] = '\0';
	while (!atomic_load(&M.stop)) {
		k = (uint32_t)(i++ % NT);
		seq = atomic_load(&T[k].started) + 1;
		atomic_store(&T[k].started, seq); /* before the publish: see healthy must_from */
		n = snprintf(buf, sizeof(buf),
		             "{\"dev\":%u,\"seq\":%lld,\"t\":%" PRIu64 ",\"pad\":\"%s\"}", k, seq,
		             now_ns(), pad);
		if (mosquitto_publish(M.dev[k % NDEV], NULL, T[k].name, n, buf, 0, false) !=
		    MOSQ_ERR_SUCCESS)
			atomic_fetch_add(&M.publish_errors, 1);
		atomic_fetch_add(&M.published, 1);
		next += interval;
		now = now_ns();
		if (next > now) {
			ts.tv_sec = (time_t)(next / 1000000000ull);
			ts.tv_nsec = (long)(next % 1000000000ull);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		} else if (now - next > MS(100)) {
			atomic_fetch_add(&M.late, 1); /* this thread was held up: do not burst */
			next = now;
		}
	}
	return NULL;
}

static void set_phase(enum phase p)
{
	atomic_store(&M.phase, (int)p);
}

/* p50/p99/max of a phase's latencies in ms, over [from, n). */
static void lat_stats(int ph, size_t from, double *p50, double *p99, double *max, size_t *count)
{
	uint32_t *v;
	size_t n;

	pthread_mutex_lock(&M.lock);
	n = M.nlat[ph] > from ? M.nlat[ph] - from : 0;
	v = xcalloc(n, sizeof(*v));
	memcpy(v, M.lat[ph] + from, n * sizeof(*v));
	pthread_mutex_unlock(&M.lock);
	*count = n;
	if (n == 0) {
		*p50 = *p99 = *max = -1;
		free(v);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u32);
	*p50 = v[pct_index(n, 500)] / 1000.0;
	*p99 = v[pct_index(n, 990)] / 1000.0;
	*max = v[n - 1] / 1000.0;
	free(v);
}

/* A marker through the broker and back to the probe: the broker still works. */
static bool broker_round_trip(void)
{
	char buf[64];
	uint64_t deadline = now_ns() + MS(5000);
	long long m = (long long)(now_ns() % 1000000000ull) + 1;
	int n = snprintf(buf, sizeof(buf), "{\"m\":%lld}", m);

	if (mosquitto_publish(M.dev[0], NULL, "soak/marker", n, buf, 0, false) != MOSQ_ERR_SUCCESS)
		return false;
	while (now_ns() < deadline) {
		if (atomic_load(&M.marker_seen) == m)
			return true;
		usleep(1000);
	}
	return false;
}

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
static const char *fault_name[F_N] = {
        "none",           "rst",   "fin",   "half_frame", "half_handshake",
        "slow_handshake", "pause", "stall", "stall_hung"};
/*
 * How a faulting session faults, in percent of the faulting sessions (sums to 100).
 * A stall holds a lot of kernel memory on both ends of the loopback connection (see
 * docs/soak.md), so stalls are a smaller share than the cheap faults.
 */
static const unsigned fault_share[F_N] = {0, 20, 15, 20, 10, 5, 15, 10, 5};
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

static struct {
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
} S;

static struct bc *C;
static uint32_t NC;
/* When the plugin's ActionCable pings reached the browsers: the first ping after a quiet
 * second starts a burst (the plugin pings every connection at once). */
static uint64_t *bursts, last_ping_rx;
static size_t nbursts, burst_cap;
static int ep = -1;
static bool churning; /* churners reconnect and act only while true */
static struct sockaddr_in server_addr;

#define NOTE_FIRST(counter, ...)                                                                   \
	do {                                                                                       \
		if ((counter) <= 3)                                                                \
			note(__VA_ARGS__);                                                         \
	} while (0)

static void bc_update_events(struct bc *c)
{
	struct epoll_event e = {0};
	uint32_t want = 0;

	if (c->fd < 0)
		return;
	if (!c->stalled)
		want |= EPOLLIN;
	if (c->st == S_CONNECTING || c->tx_len)
		want |= EPOLLOUT;
	if (want == c->ev)
		return;
	e.events = want;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->ev = want;
}

static void bc_flush(struct bc *c)
{
	ssize_t n;
	size_t off = 0;

	while (off < c->tx_len) {
		n = send(c->fd, c->tx + off, c->tx_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		c->broken = true; /* handled by the caller's loop */
		c->tx_len = 0;
		return;
	}
	if (off) {
		memmove(c->tx, c->tx + off, c->tx_len - off);
		c->tx_len -= off;
	}
	bc_update_events(c);
}

static void bc_queue(struct bc *c, const void *data, size_t len)
{
	if (c->fd < 0 || c->broken)
		return;
	if (c->tx_len + len > TX_MAX) {
		S.proto_errors++;
		NOTE_FIRST(S.proto_errors,
		           "browser %u: %zu bytes unsent (the server stopped reading)", c->idx,
		           c->tx_len);
		c->broken = true;
		return;
	}
	if (c->tx_len + len > c->tx_cap) {
		c->tx_cap = c->tx_len + len + 1024;
		c->tx = xrealloc(c->tx, c->tx_cap);
	}
	memcpy(c->tx + c->tx_len, data, len);
	c->tx_len += len;
}

/* A masked client frame (RFC 6455 5.3) into buf; returns its length. */
static size_t ws_frame(unsigned char *buf, int op, const void *data, size_t len)
{
	const unsigned char *d = data;
	uint32_t mk = (uint32_t)rnd();
	unsigned char *m;
	size_t h = 0, i;

	buf[h++] = (unsigned char)(0x80 | op);
	if (len < 126) {
		buf[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(len >> 8);
		buf[h++] = (unsigned char)len;
	} else {
		buf[h++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			buf[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	m = buf + h;
	memcpy(m, &mk, 4);
	h += 4;
	for (i = 0; i < len; i++)
		buf[h + i] = d[i] ^ m[i & 3];
	return h + len;
}

static void ws_send(struct bc *c, int op, const void *data, size_t len)
{
	unsigned char buf[1024];
	size_t n;

	if (len > sizeof(buf) - 16)
		return;
	n = ws_frame(buf, op, data, len);
	bc_queue(c, buf, n);
	bc_flush(c);
}

static size_t cmd_text(char *out, size_t cap, const char *command, uint32_t ch, const char *data)
{
	int n;

	if (data)
		n = snprintf(out, cap, "{\"command\":\"%s\",\"identifier\":\"%s\",\"data\":\"%s\"}",
		             command, id_esc[ch], data);
	else
		n = snprintf(out, cap, "{\"command\":\"%s\",\"identifier\":\"%s\"}", command,
		             id_esc[ch]);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void cmd_subscribe(struct bc *c, uint32_t ch)
{
	char buf[512];
	size_t n = cmd_text(buf, sizeof(buf), "subscribe", ch, NULL);

	if (c->sub[ch] != SUB_PENDING && c->sub[ch] != SUB_OK)
		c->nsubs++;
	c->sub[ch] = SUB_PENDING;
	S.subscribes++;
	ws_send(c, 1, buf, n);
}

static void cmd_unsubscribe(struct bc *c, uint32_t ch)
{
	char buf[512];
	size_t n = cmd_text(buf, sizeof(buf), "unsubscribe", ch, NULL);

	if (c->sub[ch] == SUB_PENDING || c->sub[ch] == SUB_OK)
		c->nsubs--;
	c->sub[ch] = SUB_GONE;
	S.unsubscribes++;
	ws_send(c, 1, buf, n);
}

static void cmd_speak(struct bc *c, uint32_t ch, const char *data)
{
	char buf[512];
	size_t n = cmd_text(buf, sizeof(buf), "message", ch, data);

	S.speaks++;
	ws_send(c, 1, buf, n);
}

static void bc_close_fd(struct bc *c, bool rst)
{
	struct linger l = {1, 0};

	if (c->fd < 0)
		return;
	if (rst)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(c->fd);
	c->fd = -1;
	c->ev = 0;
	S.open_now--;
}

/* The session is over: the socket goes, the browser reconnects later (churners). */
static void bc_end(struct bc *c, bool rst)
{
	uint64_t now = now_ns();

	bc_close_fd(c, rst);
	c->rx_len = c->msg_len = c->tx_len = 0;
	c->welcomed = c->stalled = c->resumed = c->saw_too_slow = c->broken = false;
	c->sent_close = false;
	memset(c->sub, 0, NCH);
	c->nsubs = 0;
	S.sessions++;
	if (c->kind == K_HEALTHY) {
		c->st = S_DONE;
		c->t_next = UINT64_MAX;
		return;
	}
	c->st = S_DOWN;
	c->t_next = now + rnd_range_ns(100, 3000);
	/* Shrink what a big drain grew. */
	if (c->rx_cap > 65536) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
}

static const char upgrade_fmt[] = "GET %s HTTP/1.1\r\n"
                                  "Host: %s:%d\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Protocol: actioncable-v1-json\r\n"
                                  "Origin: http://%s\r\n"
                                  "\r\n";

static void bc_connect(struct bc *c)
{
	struct epoll_event e = {0};
	int one = 1, fd;
	unsigned r;

	c->fault = F_NONE;
	if (c->kind == K_CHURN && rnd_below(100) < O.fault_pct) {
		unsigned total = 0, k;

		for (k = 1; k < F_N; k++)
			if (O.fault_mask & (1u << k))
				total += fault_share[k];
		r = rnd_below(total);
		for (k = 1; k < F_N; k++) {
			if (!(O.fault_mask & (1u << k)))
				continue;
			if (r < fault_share[k]) {
				c->fault = (uint8_t)k;
				break;
			}
			r -= fault_share[k];
		}
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		S.connect_errors++;
		NOTE_FIRST(S.connect_errors, "socket: %s", strerror(errno));
		c->t_next = now_ns() + MS(1000);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	S.connects++;
	S.open_now++;
	if (S.open_now > S.open_peak)
		S.open_peak = S.open_now;
	c->fd = fd;
	c->st = S_CONNECTING;
	c->t_next = now_ns() + MS(HS_TIMEOUT);
	if (connect(fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0 &&
	    errno != EINPROGRESS) {
		S.connect_errors++;
		NOTE_FIRST(S.connect_errors, "connect: %s", strerror(errno));
		bc_end(c, false);
		return;
	}
	e.events = EPOLLIN | EPOLLOUT;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->ev = e.events;
}

/* Connected: send the upgrade (or, for a handshake fault, part of it). */
static void bc_connected(struct bc *c)
{
	char req[4096];
	int n, err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		S.connect_errors++;
		NOTE_FIRST(S.connect_errors, "connect: %s", strerror(err ? err : errno));
		bc_end(c, false);
		return;
	}
	n = snprintf(req, sizeof(req), upgrade_fmt, c->path, O.host, O.port, O.host);
	c->st = S_HANDSHAKE;
	if (c->fault == F_HALF_HS || c->fault == F_SLOW_HS) {
		S.faults[c->fault]++;
		bc_queue(c, req, 1 + rnd_below((uint32_t)n - 5)); /* never the final CRLFCRLF */
		bc_flush(c);
		if (c->fault == F_HALF_HS) {
			bc_end(c, rnd_below(2));
			return;
		}
		c->t_next = now_ns() + MS(SLOWHS_WAIT); /* the server must drop us first */
		bc_update_events(c);
		return;
	}
	bc_queue(c, req, (size_t)n);
	bc_flush(c);
}

static void healthy_subscribe_all(struct bc *c)
{
	uint32_t i, ch;

	for (i = 0; i < NCH; i++) {
		ch = i;
		if (c->sub[ch] == SUB_NONE) {
			bool mine = false;

			for (uint8_t t = 0; t < c->ntr; t++)
				if (T[c->tr[t].topic].ch == ch)
					mine = true;
			if (mine)
				cmd_subscribe(c, ch);
		}
	}
}

static void on_welcome(struct bc *c)
{
	uint64_t now = now_ns();
	uint32_t n, i;

	if (c->welcomed) {
		S.proto_errors++;
		return;
	}
	c->welcomed = true;
	S.welcomed++;
	if (c->kind == K_HEALTHY) {
		healthy_subscribe_all(c);
		c->t_next = now + rnd_exp_ns(5000);
		return;
	}
	c->t_end = now + rnd_range_ns(O.life_min_s * 1000, O.life_max_s * 1000);
	n = 1 + rnd_below(3);
	for (i = 0; i < n; i++) {
		uint32_t ch = rnd_below(NCH);

		if (c->sub[ch] == SUB_NONE)
			cmd_subscribe(c, ch);
	}
	c->t_next = now + rnd_exp_ns(O.action_ms);
}

static void on_confirm(struct bc *c, int ch)
{
	uint8_t t;

	if (ch < 0) {
		S.proto_errors++;
		return;
	}
	S.confirms++;
	if (c->sub[ch] != SUB_PENDING)
		return; /* unsubscribed meanwhile, or the confirm of an earlier subscribe */
	c->sub[ch] = SUB_OK;
	if (c->kind != K_HEALTHY)
		return;
	for (t = 0; t < c->ntr; t++)
		if (T[c->tr[t].topic].ch == (uint32_t)ch)
			c->tr[t].must_from = atomic_load(&T[c->tr[t].topic].started) + 1;
}

static void check_seq(struct track *tr, int64_t seq)
{
	int64_t from;

	if (tr->must_from == INT64_MAX) {
		S.h_early++; /* a message before its subscription's confirm */
		return;
	}
	if (seq <= tr->last) {
		if (seq == tr->last)
			S.h_dup++;
		else
			S.h_reorder++;
		return;
	}
	from = tr->last + 1 > tr->must_from ? tr->last + 1 : tr->must_from;
	if (seq > from)
		S.h_lost += (uint64_t)(seq - from);
	tr->last = seq;
}

static void on_message(struct bc *c, const char *p, size_t len)
{
	int ch = channel_of(p, len < 160 ? len : 160);
	int64_t dev, seq, h, hs;
	uint8_t t;

	S.msgs++;
	if (ch < 0) {
		S.proto_errors++;
		return;
	}
	if (c->sub[ch] == SUB_NONE) {
		S.foreign++;
		NOTE_FIRST(S.foreign,
		           "browser %u got a message on a channel it never subscribed "
		           "to: %.*s",
		           c->idx, (int)(len > 200 ? 200 : len), p);
		return;
	}
	if (c->kind != K_HEALTHY)
		return;
	dev = num_after(p, len, "\"dev\":");
	if (dev >= 0) {
		seq = num_after(p, len, "\"seq\":");
		S.h_msgs++;
		if ((uint64_t)dev >= NT || T[dev].ch != (uint32_t)ch || seq < 0) {
			S.h_misrouted++;
			return;
		}
		for (t = 0; t < c->ntr; t++)
			if (c->tr[t].topic == (uint32_t)dev) {
				check_seq(&c->tr[t], seq);
				return;
			}
		S.h_misrouted++;
		return;
	}
	h = num_after(p, len, "\"h\":");
	if (h == (int64_t)c->idx) {
		hs = num_after(p, len, "\"hs\":");
		if (hs == (int64_t)c->hs_next) {
			c->hs_next++;
			S.h_speak_echo++;
		} else if (hs > (int64_t)c->hs_next) {
			S.h_speak_lost += (uint64_t)(hs - c->hs_next);
			S.h_speak_echo++;
			c->hs_next = (uint32_t)hs + 1;
		} else {
			S.h_speak_dup++;
		}
	}
}

static void on_text(struct bc *c, const char *p, size_t len)
{
	static const char confirm[] = "\"type\":\"confirm_subscription\"}";
	static const char reject[] = "\"type\":\"reject_subscription\"}";

	if (len >= 9 && memcmp(p, "{\"type\":\"", 9) == 0) {
		if (len >= 16 && memcmp(p + 9, "welcome", 7) == 0) {
			on_welcome(c);
		} else if (len >= 13 && memcmp(p + 9, "ping", 4) == 0) {
			uint64_t now = now_ns();

			if (now - last_ping_rx > MS(1000) && nbursts < burst_cap &&
			    atomic_load(&M.phase) == PH_SOAK)
				bursts[nbursts++] = now;
			last_ping_rx = now;
		} else if (len >= 19 && memcmp(p + 9, "disconnect", 10) == 0) {
			if (memmem(p, len, "\"too_slow\"", 10)) {
				c->saw_too_slow = true;
				if (!c->stalled && !c->resumed) {
					S.too_slow_unexpected++;
					NOTE_FIRST(S.too_slow_unexpected,
					           "browser %u (%s) called too slow while reading",
					           c->idx,
					           c->kind == K_HEALTHY ? "healthy" : "churn");
				}
			} else {
				S.disconnect_other++;
				NOTE_FIRST(S.disconnect_other, "browser %u: %.*s", c->idx,
				           (int)(len > 120 ? 120 : len), p);
			}
		} else {
			S.proto_errors++;
		}
		return;
	}
	if (len < 14 || memcmp(p, "{\"identifier\":", 14) != 0) {
		S.proto_errors++;
		return;
	}
	if (len >= sizeof(confirm) - 1 &&
	    memcmp(p + len - (sizeof(confirm) - 1), confirm, sizeof(confirm) - 1) == 0) {
		on_confirm(c, channel_of(p, len));
		return;
	}
	if (len >= sizeof(reject) - 1 &&
	    memcmp(p + len - (sizeof(reject) - 1), reject, sizeof(reject) - 1) == 0) {
		S.rejects++;
		NOTE_FIRST(S.rejects, "browser %u: %.*s", c->idx, (int)(len > 160 ? 160 : len), p);
		return;
	}
	on_message(c, p, len);
}

/* The server closed (EOF, reset, or a close frame): account for it and end the session. */
static void on_server_close(struct bc *c)
{
	switch (c->st) {
	case S_CONNECTING:
		S.connect_errors++;
		break;
	case S_HANDSHAKE:
		if (c->fault == F_SLOW_HS)
			S.slow_hs_closed++;
		else {
			S.hs_refused++;
			NOTE_FIRST(S.hs_refused, "browser %u: closed during the handshake", c->idx);
		}
		break;
	case S_OPEN:
		if (c->kind == K_HEALTHY) {
			S.h_disconnects++;
			NOTE_FIRST(S.h_disconnects, "healthy browser %u was disconnected", c->idx);
		} else if (c->resumed) {
			if (c->saw_too_slow)
				S.too_slow_seen++;
			else
				S.stall_no_too_slow++;
		} else if (c->stalled && c->fault == F_PAUSE) {
			S.pause_dropped++;
			NOTE_FIRST(S.pause_dropped, "browser %u: closed during a short pause",
			           c->idx);
		} else if (c->stalled) {
			S.stall_closed_unread++;
		} else if (!c->saw_too_slow && !c->welcomed) {
			S.hs_refused++;
		} else if (!c->saw_too_slow) {
			S.server_dropped++;
			NOTE_FIRST(S.server_dropped, "browser %u: the server closed it unasked",
			           c->idx);
		}
		break;
	case S_CLOSING:
		S.clean_closes++;
		break;
	default:
		break;
	}
	bc_end(c, false);
}

/* Frames in c->rx after the upgrade. Returns false once the session has ended. */
static bool parse_frames(struct bc *c)
{
	size_t off = 0, avail, hdr, i;
	uint64_t plen;
	unsigned char *p;
	bool fin;
	int op;

	while (c->fd >= 0) {
		p = (unsigned char *)c->rx + off;
		avail = c->rx_len - off;
		if (avail < 2)
			break;
		fin = p[0] & 0x80;
		op = p[0] & 0x0f;
		plen = p[1] & 0x7f;
		hdr = 2;
		if (p[1] & 0x80) {
			S.proto_errors++; /* a server must not mask */
			bc_end(c, true);
			return false;
		}
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)p[2] << 8 | p[3];
			hdr = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			for (plen = 0, i = 0; i < 8; i++)
				plen = plen << 8 | p[2 + i];
			hdr = 10;
		}
		if (plen > RX_MAX) {
			S.proto_errors++;
			bc_end(c, true);
			return false;
		}
		if (avail < hdr + plen)
			break;
		off += hdr + plen;
		S.frames++;
		p += hdr;
		switch (op) {
		case 0x0:
		case 0x1:
			if (fin && c->msg_len == 0 && op == 1) {
				on_text(c, (const char *)p, plen);
				break;
			}
			if (c->msg_len + plen > RX_MAX) {
				S.proto_errors++;
				bc_end(c, true);
				return false;
			}
			if (c->msg_len + plen > c->msg_cap) {
				c->msg_cap = c->msg_len + plen + 1024;
				c->msg = xrealloc(c->msg, c->msg_cap);
			}
			memcpy(c->msg + c->msg_len, p, plen);
			c->msg_len += plen;
			if (fin) {
				on_text(c, c->msg, c->msg_len);
				c->msg_len = 0;
			}
			break;
		case 0x8: /* close: answer it, then end */
			if (!c->sent_close) {
				c->sent_close = true;
				ws_send(c, 0x8, p, plen >= 2 ? 2 : 0);
			}
			on_server_close(c);
			return false;
		case 0x9:
			ws_send(c, 0xA, p, plen);
			break;
		case 0xA:
			break;
		default:
			S.proto_errors++;
			break;
		}
		if (c->broken) {
			on_server_close(c);
			return false;
		}
	}
	if (c->fd >= 0 && off) {
		memmove(c->rx, c->rx + off, c->rx_len - off);
		c->rx_len -= off;
	}
	return c->fd >= 0;
}

static bool parse_handshake(struct bc *c)
{
	char *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
	size_t hl;

	if (end == NULL) {
		if (c->rx_len > 16384) {
			S.proto_errors++;
			bc_end(c, true);
			return false;
		}
		return true;
	}
	hl = (size_t)(end - c->rx) + 4;
	if (c->rx_len < 12 || memcmp(c->rx, "HTTP/1.1 101", 12) != 0) {
		S.hs_refused++;
		NOTE_FIRST(S.hs_refused, "browser %u: upgrade refused: %.*s", c->idx,
		           (int)(strcspn(c->rx, "\r\n") < 80 ? strcspn(c->rx, "\r\n") : 80), c->rx);
		bc_end(c, false);
		return false;
	}
	memmove(c->rx, c->rx + hl, c->rx_len - hl);
	c->rx_len -= hl;
	c->st = S_OPEN;
	return true;
}

static void bc_read(struct bc *c)
{
	ssize_t n;
	int rounds;

	for (rounds = 0; rounds < 8 && c->fd >= 0 && !c->stalled; rounds++) {
		if (c->rx_cap - c->rx_len < 16384) {
			if (c->rx_cap >= RX_MAX) {
				S.proto_errors++;
				bc_end(c, true);
				return;
			}
			c->rx_cap = c->rx_cap ? c->rx_cap * 2 : 32768;
			c->rx = xrealloc(c->rx, c->rx_cap + 1);
		}
		n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, MSG_DONTWAIT);
		if (n == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			on_server_close(c);
			return;
		}
		if (n < 0)
			return;
		c->rx_len += (size_t)n;
		S.bytes += (uint64_t)n;
		if (c->st == S_HANDSHAKE) {
			if (c->fault == F_SLOW_HS) {
				c->rx_len = 0; /* whatever it says, the server answered: fine */
				continue;
			}
			c->rx[c->rx_len] = '\0';
			if (!parse_handshake(c))
				return;
		}
		if (c->st == S_OPEN || c->st == S_CLOSING)
			if (!parse_frames(c))
				return;
		if ((size_t)n < 16384)
			return;
	}
}

/* A half-written frame: part of a subscribe (header only, or header and some payload). */
static void fault_half_frame(struct bc *c)
{
	unsigned char buf[1024];
	char cmd[512];
	size_t n = cmd_text(cmd, sizeof(cmd), "subscribe", rnd_below(NCH), NULL), f;

	f = ws_frame(buf, 1, cmd, n);
	bc_queue(c, buf, 1 + rnd_below((uint32_t)f - 1));
	bc_flush(c);
	bc_end(c, rnd_below(2));
}

/*
 * A stalled reader subscribes to every channel, then stops reading for --stall seconds,
 * long enough to pass the kernel buffers and plugin_opt_max_outbound_bytes. A pause stops
 * reading for 3-10 s with its own subscriptions: far under the bound, so the server must
 * keep it and deliver everything afterwards.
 */
static void fault_stall(struct bc *c)
{
	uint32_t ch;

	if (c->fault != F_PAUSE)
		for (ch = 0; ch < NCH; ch++)
			if (c->sub[ch] != SUB_PENDING && c->sub[ch] != SUB_OK)
				cmd_subscribe(c, ch);
	c->stalled = true;
	c->t_next = now_ns() + (c->fault == F_PAUSE ? rnd_range_ns(3000, 10000)
	                                            : MS((uint64_t)O.stall_s * 1000));
	bc_update_events(c);
}

static void churn_action(struct bc *c)
{
	uint32_t r = rnd_below(100), ch, i, k;
	char data[128];

	if (r < 30) { /* subscribe */
		if (c->nsubs >= MAX_SUBS)
			return;
		ch = rnd_below(NCH);
		if (c->sub[ch] == SUB_NONE || c->sub[ch] == SUB_GONE) {
			if (c->sub[ch] == SUB_GONE)
				S.resubscribes++;
			cmd_subscribe(c, ch);
		}
		return;
	}
	/* Pick one of the channels this browser holds (PENDING or OK). */
	if (c->nsubs == 0)
		return;
	k = rnd_below(c->nsubs);
	for (ch = 0, i = 0; ch < NCH; ch++)
		if (c->sub[ch] == SUB_PENDING || c->sub[ch] == SUB_OK) {
			if (i++ == k)
				break;
		}
	if (ch == NCH)
		return;
	if (r < 45) {
		cmd_unsubscribe(c, ch);
	} else if (r < 50) { /* unsubscribe and subscribe again, back to back */
		cmd_unsubscribe(c, ch);
		S.resubscribes++;
		cmd_subscribe(c, ch);
	} else if (r < 50 + O.speak_share && ch < O.actuators && c->sub[ch] == SUB_OK) {
		snprintf(data, sizeof(data),
		         "{\\\"action\\\":\\\"speak\\\",\\\"message\\\":\\\"c\\\","
		         "\\\"n\\\":%u}",
		         c->speak_n++);
		cmd_speak(c, ch, data);
	}
}

static void churn_end(struct bc *c)
{
	switch (c->fault) {
	case F_RST:
	case F_FIN:
		S.faults[c->fault]++;
		bc_end(c, c->fault == F_RST);
		return;
	case F_HALF_FRAME:
		S.faults[c->fault]++;
		fault_half_frame(c);
		return;
	case F_STALL:
	case F_STALL_HUNG:
	case F_PAUSE:
		S.faults[c->fault]++;
		fault_stall(c);
		return;
	default: /* a clean close: 1000, and wait for the server's close */
		c->sent_close = true;
		ws_send(c, 0x8, "\x03\xe8", 2);
		c->st = S_CLOSING;
		c->t_next = now_ns() + MS(CLOSE_WAIT);
		return;
	}
}

static void bc_timer(struct bc *c, uint64_t now)
{
	char data[128];

	switch (c->st) {
	case S_DOWN:
		if (churning && c->kind == K_CHURN)
			bc_connect(c);
		else
			c->t_next = UINT64_MAX;
		return;
	case S_CONNECTING:
	case S_HANDSHAKE:
		if (c->fault == F_SLOW_HS && c->st == S_HANDSHAKE) {
			S.slow_hs_kept++;
			NOTE_FIRST(S.slow_hs_kept,
			           "browser %u: a half-sent upgrade was kept for %d s", c->idx,
			           SLOWHS_WAIT / 1000);
		} else {
			S.hs_timeouts++;
			NOTE_FIRST(S.hs_timeouts, "browser %u: no welcome within %d s", c->idx,
			           HS_TIMEOUT / 1000);
		}
		bc_end(c, true);
		return;
	case S_OPEN:
		if (!c->welcomed) {
			S.hs_timeouts++;
			NOTE_FIRST(S.hs_timeouts, "browser %u: upgraded but no welcome within %d s",
			           c->idx, HS_TIMEOUT / 1000);
			bc_end(c, true);
		} else if (c->stalled && c->fault == F_PAUSE) {
			c->stalled = false; /* back to normal; the session then ends cleanly */
			c->fault = F_NONE;
			S.pauses_ok++;
			c->t_end = now + rnd_range_ns(1000, 10000);
			c->t_next = now + rnd_exp_ns(O.action_ms);
			bc_update_events(c);
		} else if (c->stalled) {
			if (c->fault == F_STALL_HUNG) {
				bc_end(c, true); /* vanishes without reading */
				return;
			}
			c->stalled = false; /* resume and read what waits */
			c->resumed = true;
			c->t_next = now + MS(DRAIN_WAIT);
			bc_update_events(c);
		} else if (c->resumed) {
			S.stall_no_too_slow++;
			NOTE_FIRST(S.stall_no_too_slow,
			           "browser %u: stalled %u s, resumed, %s and still open", c->idx,
			           O.stall_s,
			           c->saw_too_slow ? "told too_slow" : "not told too_slow");
			bc_end(c, true);
		} else if (c->kind == K_HEALTHY) {
			snprintf(data, sizeof(data),
			         "{\\\"action\\\":\\\"speak\\\",\\\"message\\\":\\\"h\\\","
			         "\\\"h\\\":%u,"
			         "\\\"hs\\\":%u}",
			         c->idx, c->hs_sent++);
			S.h_speak_sent++;
			cmd_speak(c, T[c->tr[0].topic].ch, data);
			c->t_next = now + rnd_exp_ns(5000);
		} else if (now >= c->t_end) {
			churn_end(c);
		} else {
			churn_action(c);
			c->t_next = now + rnd_exp_ns(O.action_ms);
			if (c->t_next > c->t_end)
				c->t_next = c->t_end;
		}
		if (c->fd >= 0 && c->broken)
			on_server_close(c);
		return;
	case S_CLOSING:
		S.clean_close_timeouts++;
		NOTE_FIRST(S.clean_close_timeouts, "browser %u: no close from the server in %d ms",
		           c->idx, CLOSE_WAIT);
		bc_end(c, true);
		return;
	default:
		c->t_next = UINT64_MAX;
		return;
	}
}

static void engine_events(int timeout_ms)
{
	struct epoll_event ev[512];
	struct bc *c;
	int n, i;

	n = epoll_wait(ep, ev, 512, timeout_ms);
	for (i = 0; i < n; i++) {
		c = ev[i].data.ptr;
		if (c->fd < 0)
			continue;
		if (c->st == S_CONNECTING) {
			if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				bc_connected(c);
			if (c->fd < 0 || c->st == S_CONNECTING)
				continue;
		}
		if ((ev[i].events & EPOLLOUT) && c->tx_len)
			bc_flush(c);
		if (c->fd >= 0 && !c->broken && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
			if (c->stalled)
				on_server_close(c); /* reset while not reading */
			else
				bc_read(c);
		}
		if (c->fd >= 0 && c->broken)
			on_server_close(c);
	}
}

static uint64_t fault_total(void)
{
	uint64_t n = 0;
	unsigned k;

	for (k = 1; k < F_N; k++)
		n += S.faults[k];
	return n;
}

static uint64_t last_scan;
static void engine_timers(void)
{
	uint64_t now = now_ns();
	uint32_t i;

	if (now - last_scan < MS(5))
		return;
	last_scan = now;
	for (i = 0; i < NC; i++)
		if (C[i].t_next <= now)
			bc_timer(&C[i], now);
}

static void browsers_init(long long exp)
{
	uint32_t i, j, s;
	char *tok;

	NC = O.healthy + O.clients;
	C = xcalloc(NC, sizeof(*C));
	server_addr.sin_family = AF_INET;
	server_addr.sin_port = htons((uint16_t)O.port);
	if (inet_pton(AF_INET, O.host, &server_addr.sin_addr) != 1)
		die("--host must be an IPv4 address: %s", O.host);
	for (i = 0; i < NC; i++) {
		struct bc *c = &C[i];

		c->fd = -1;
		c->idx = i;
		c->kind = i < O.healthy ? K_HEALTHY : K_CHURN;
		c->sub = xcalloc(NCH, 1);
		c->st = S_DOWN;
		c->t_next = UINT64_MAX;
		/* User soak<i>, valid for the run plus an hour (main sets exp). */
		tok = mint_token(secret, secret_len, "soak", i, exp);
		c->path = token_path(O.path, tok);
		free(tok);
		if (c->kind != K_HEALTHY)
			continue;
		/* Two actuators and one site each; together the healthy set covers every topic. */
		for (j = 0; j < 2 && O.actuators; j++) {
			c->tr[c->ntr].topic = (2 * i + j) % O.actuators;
			c->tr[c->ntr].must_from = INT64_MAX;
			c->tr[c->ntr++].last = -1;
		}
		s = O.sites ? i % O.sites : 0;
		for (j = 0; j < O.sensors && O.sites && c->ntr < MAX_TRACK; j++) {
			c->tr[c->ntr].topic = O.actuators + s * O.sensors + j;
			c->tr[c->ntr].must_from = INT64_MAX;
			c->tr[c->ntr++].last = -1;
		}
	}
}

/* Connect every browser, at most --connect-concurrency handshakes at a time. */
static void browsers_ramp(void)
{
	uint64_t t0 = now_ns(), deadline = t0 + MS(120000);
	uint32_t next = 0, i, busy;

	while (now_ns() < deadline) {
		busy = 0;
		for (i = 0; i < next; i++)
			if ((C[i].st == S_CONNECTING || C[i].st == S_HANDSHAKE ||
			     (C[i].st == S_OPEN && !C[i].welcomed)) &&
			    C[i].fault != F_SLOW_HS && C[i].fault != F_HALF_HS)
				busy++;
		while (busy < O.connect_conc && next < NC) {
			bc_connect(&C[next++]);
			busy++;
		}
		engine_events(2);
		engine_timers();
		if (next == NC && busy == 0)
			break;
	}
	note("ramp: %u browsers connecting/connected in %.1f s (%" PRIu64 " welcomed, %" PRIu64
	     " refused, %" PRIu64 " connect errors)",
	     NC, (double)(now_ns() - t0) / 1e9, S.welcomed, S.hs_refused, S.connect_errors);
}

static bool healthy_caught_up(const long long *fin)
{
	uint32_t i;
	uint8_t t;

	for (i = 0; i < O.healthy; i++) {
		if (C[i].st != S_OPEN)
			continue;
		if (C[i].hs_next < C[i].hs_sent)
			return false;
		for (t = 0; t < C[i].ntr; t++)
			if (C[i].tr[t].last < fin[C[i].tr[t].topic])
				return false;
	}
	return true;
}

/* ---- The plugin's /metrics (Prometheus text on the cable port) ------------------------------ */

struct metrics {
	bool ok;
	long long connections, connections_total, subscriptions, slow, dropped, broker_full,
	        publishes;
};

static long long metric_value(const char *text, const char *name)
{
	char key[96];
	const char *p;
	size_t kl;

	kl = (size_t)snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	return p ? strtoll(p + kl, NULL, 10) : -1;
}

static struct metrics get_metrics(void)
{
	static char buf[131072];
	struct metrics m = {0};
	struct timeval tv = {3, 0};
	size_t len = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char req[128];

	if (fd < 0)
		return m;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0) {
		close(fd);
		return m;
	}
	n = snprintf(req, sizeof(req),
	             "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", O.host);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return m;
	}
	while (len < sizeof(buf) - 1 && (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0) {
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\ncable_queue_to_broker_full_total "))
			break; /* the last counter we need is in */
	}
	close(fd);
	buf[len] = '\0';
	m.connections = metric_value(buf, "cable_connections");
	m.connections_total = metric_value(buf, "cable_connections_total");
	m.subscriptions = metric_value(buf, "cable_subscriptions");
	m.slow = metric_value(buf, "cable_slow_disconnects_total");
	m.dropped = metric_value(buf, "cable_queue_to_gateway_dropped_total");
	m.broker_full = metric_value(buf, "cable_queue_to_broker_full_total");
	m.publishes = metric_value(buf, "cable_publishes_total");
	m.ok = m.connections >= 0 && m.subscriptions >= 0;
	return m;
}

/* Spikes published from 30 ms before to 70 ms after the start of a ping burst. */
static size_t spikes_near_bursts(void)
{
	size_t i, lo, hi, mid, n = 0;
	uint64_t t;

	for (i = 0; i < M.nspikes; i++) {
		t = M.spikes[i];
		/* the first burst at or after t - 70 ms */
		lo = 0;
		hi = nbursts;
		while (lo < hi) {
			mid = (lo + hi) / 2;
			if (bursts[mid] + MS(70) < t)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < nbursts && bursts[lo] <= t + MS(30))
			n++;
	}
	return n;
}

/* ---- main ---------------------------------------------------------------------------------- */

static long rss_peak;
static uint64_t last_rss_sample;

static void sample_rss(void)
{
	uint64_t now = now_ns();
	long r;

	if (now - last_rss_sample < MS(500))
		return;
	last_rss_sample = now;
	r = rss_kib(O.pid);
	if (r > rss_peak)
		rss_peak = r;
}

static void usage(FILE *f)
{
	fputs("usage: cable-soak --port P --mqtt-port P --secret-file F --pid BROKER [options]\n"
	      "  --host H --path /cable         the plugin's listener (127.0.0.1, /cable)\n"
	      "  --clients N                    churning browsers (3000)\n"
	      "  --healthy N                    healthy browsers that check delivery (200)\n"
	      "  --duration S                   soak seconds (300)\n"
	      "  --idle S --settle S            idle latency before (20); settling after (15)\n"
	      "  --rate R                       device messages per second, all topics (200)\n"
	      "  --actuators N --sites N --sensors N   topics (40, 8, 3 per site)\n"
	      "  --pad B                        padding bytes in each device message (160)\n"
	      "  --fault-pct P                  churner sessions that end in a fault (10)\n"
	      "  --action-ms M                  mean time between a churner's actions (3000)\n"
	      "  --life S1,S2                   churner session length range, s (10,60)\n"
	      "  --stall S                      a stalled reader stops reading this long (90)\n"
	      "  --connect-concurrency N        handshakes at once during the ramp (200)\n"
	      "  --seed N                       random seed (1)\n"
	      "  --speak-share P                percent of a churner's actions that speak (20)\n"
	      "  --faults K1,K2                 fault kinds to inject: rst fin half_frame\n"
	      "                                 half_handshake slow_handshake stall stall_hung\n"
	      "                                 (all)\n"
	      "  --browser-nice N               nice value of the browsers' thread (10), so\n"
	      "                                 the simulated browsers, which share the CPUs\n"
	      "                                 with the broker, yield to it and to the probe\n"
	      "  --lat-ratio X                  soak p99 may be X times idle p99 (2)\n"
	      "  --rss-slack KiB                RSS may end this far above baseline (16384)\n"
	      "  --label L --quiet\n",
	      f);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"host", required_argument, NULL, 'H'},
	        {"port", required_argument, NULL, 'p'},
	        {"path", required_argument, NULL, 'u'},
	        {"mqtt-port", required_argument, NULL, 'q'},
	        {"secret-file", required_argument, NULL, 's'},
	        {"pid", required_argument, NULL, 'k'},
	        {"clients", required_argument, NULL, 'n'},
	        {"healthy", required_argument, NULL, 'y'},
	        {"duration", required_argument, NULL, 'd'},
	        {"idle", required_argument, NULL, 'I'},
	        {"settle", required_argument, NULL, 'S'},
	        {"rate", required_argument, NULL, 'r'},
	        {"actuators", required_argument, NULL, 'A'},
	        {"sites", required_argument, NULL, 'B'},
	        {"sensors", required_argument, NULL, 'E'},
	        {"pad", required_argument, NULL, 'P'},
	        {"fault-pct", required_argument, NULL, 'f'},
	        {"action-ms", required_argument, NULL, 'a'},
	        {"life", required_argument, NULL, 'L'},
	        {"stall", required_argument, NULL, 'T'},
	        {"connect-concurrency", required_argument, NULL, 'C'},
	        {"seed", required_argument, NULL, 'R'},
	        {"browser-nice", required_argument, NULL, 'N'},
	        {"speak-share", required_argument, NULL, 'K'},
	        {"faults", required_argument, NULL, 'F'},
	        {"lat-ratio", required_argument, NULL, 'x'},
	        {"rss-slack", required_argument, NULL, 'X'},
	        {"label", required_argument, NULL, 'l'},
	        {"quiet", no_argument, NULL, 'Q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'H':
			O.host = optarg;
			break;
		case 'p':
			O.port = (int)num_arg(optarg, "--port");
			break;
		case 'u':
			O.path = optarg;
			break;
		case 'q':
			O.mqtt_port = (int)num_arg(optarg, "--mqtt-port");
			break;
		case 's':
			O.secret_file = optarg;
			break;
		case 'k':
			O.pid = (int)num_arg(optarg, "--pid");
			break;
		case 'n':
			O.clients = num_arg(optarg, "--clients");
			break;
		case 'y':
			O.healthy = num_arg(optarg, "--healthy");
			break;
		case 'd':
			O.duration_s = num_arg(optarg, "--duration");
			break;
		case 'I':
			O.idle_s = num_arg(optarg, "--idle");
			break;
		case 'S':
			O.settle_s = num_arg(optarg, "--settle");
			break;
		case 'r':
			O.rate = num_arg(optarg, "--rate");
			break;
		case 'A':
			O.actuators = num_arg(optarg, "--actuators");
			break;
		case 'B':
			O.sites = num_arg(optarg, "--sites");
			break;
		case 'E':
			O.sensors = num_arg(optarg, "--sensors");
			break;
		case 'P':
			O.pad = num_arg(optarg, "--pad");
			break;
		case 'f':
			O.fault_pct = num_arg(optarg, "--fault-pct");
			break;
		case 'a':
			O.action_ms = num_arg(optarg, "--action-ms");
			break;
		case 'L':
			if (sscanf(optarg, "%u,%u", &O.life_min_s, &O.life_max_s) != 2 ||
			    O.life_min_s > O.life_max_s)
				die("--life: want MIN,MAX seconds");
			break;
		case 'T':
			O.stall_s = num_arg(optarg, "--stall");
			break;
		case 'C':
			O.connect_conc = num_arg(optarg, "--connect-concurrency");
			break;
		case 'R':
			O.seed = num_arg(optarg, "--seed");
			break;
		case 'N':
			O.browser_nice = atoi(optarg);
			break;
		case 'K':
			O.speak_share = num_arg(optarg, "--speak-share");
			break;
		case 'F': {
			char *list = strdup(optarg), *tok, *save = NULL;
			unsigned k;

			O.fault_mask = 0;
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				bool known = strcmp(tok, "all") == 0;

				if (known)
					O.fault_mask = ~0u;
				for (k = 1; k < F_N; k++)
					if (strcmp(tok, fault_name[k]) == 0) {
						O.fault_mask |= 1u << k;
						known = true;
					}
				if (!known)
					die("--faults: unknown kind %s", tok);
			}
			free(list);
			break;
		}
		case 'x':
			O.lat_ratio = atof(optarg);
			break;
		case 'X':
			O.rss_slack_kib = (long)num_arg(optarg, "--rss-slack");
			break;
		case 'l':
			O.label = optarg;
			break;
		case 'Q':
			log_quiet();
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (!(O.fault_mask & ~1u))
		O.fault_pct = 0;
	if (O.speak_share > 50)
		die("--speak-share: at most 50");
	if (!O.secret_file || O.pid <= 0)
		die("--secret-file and --pid are required (bench/soak.sh passes them)");
	if (O.actuators == 0 || O.sites == 0 || O.sensors == 0 || O.rate == 0 || O.rate > 100000 ||
	    O.healthy == 0 || O.fault_pct > 100 || O.action_ms == 0 || O.life_max_s == 0 ||
	    O.pad > 1000 || O.actuators + O.sites > 200 || 2 + O.sensors > MAX_TRACK)
		die("a count is out of range (see --help)");
}

int main(int argc, char **argv)
{
	long rss_start, rss_base, rss_end, fds_base, fds_end;
	double lat[PH_N][3], cpu_b0, cpu_b1, cpu_g0, cpu_g1, spike_ms;
	size_t near_bursts;
	size_t nlat[PH_N], prog_from = 0;
	uint64_t t_soak0, t_soak1, t_end, next_prog, prog_h_msgs = 0;
	long long *fin, exp;
	struct metrics m_end, m_soak;
	unsigned long long nofile;
	bool alive, round_trip, correct, criteria;
	uint32_t i;
	int ph, rc;

	log_init("cable-soak", "soak: ");
	parse_args(argc, argv);
	rng_state = O.seed * 0x9E3779B97F4A7C15ull + 1;
	nofile = raise_nofile();
	if ((uint64_t)O.clients + O.healthy + 64 > nofile)
		die("%u browsers need more descriptors than nofile %llu", O.clients + O.healthy,
		    nofile);
	signal(SIGPIPE, SIG_IGN);
	secret_len = read_secret(O.secret_file, secret, sizeof(secret));
	make_topics();
	if (!broker_alive())
		die("no broker with pid %d", O.pid);
	rss_start = rss_kib(O.pid);

	/* ---- idle: devices and the probe only ---- */
	mosquitto_lib_init();
	mqtt_start();
	set_phase(PH_WARM);
	if (pthread_create(&M.thread, NULL, device_main, NULL) != 0)
		die("pthread_create failed");
	M.thread_started = true;
	note("devices: %u msgs/s over %u topics (%u actuators, %u sites x %u sensors); idle %u s",
	     O.rate, NT, O.actuators, O.sites, O.sensors, O.idle_s);
	usleep(2000000);
	set_phase(PH_IDLE);
	usleep(O.idle_s * 1000000u);
	set_phase(PH_RAMP);
	rss_base = rss_kib(O.pid);
	fds_base = fd_count(O.pid);
	rss_peak = rss_base;
	lat_stats(PH_IDLE, 0, &lat[PH_IDLE][0], &lat[PH_IDLE][1], &lat[PH_IDLE][2], &nlat[PH_IDLE]);
	/* A spike: above 1 ms and above 3x the idle p99. */
	spike_ms = lat[PH_IDLE][1] * 3 > 1.0 ? lat[PH_IDLE][1] * 3 : 1.0;
	atomic_store(&M.spike_us, (unsigned)(spike_ms * 1000));
	burst_cap = O.duration_s + 100;
	bursts = xcalloc(burst_cap, sizeof(*bursts));
	note("idle: MQTT latency p50 %.3f ms, p99 %.3f ms (%zu samples); broker RSS %ld KiB",
	     lat[PH_IDLE][0], lat[PH_IDLE][1], nlat[PH_IDLE], rss_base);

	/* ---- ramp ---- */
	/* This thread is the browsers from here on; the devices and the probe keep theirs. */
	if (O.browser_nice &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), O.browser_nice) != 0)
		note("setpriority(%d): %s", O.browser_nice, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	exp = (long long)time(NULL) + O.duration_s + O.idle_s + 3600;
	browsers_init(exp);
	churning = true;
	cpu_b0 = cpu_of_pid(O.pid);
	cpu_g0 = cpu_self_s();
	browsers_ramp();
	/* The churners start their lives from here. */
	for (i = O.healthy; i < NC; i++)
		if (C[i].st == S_OPEN && C[i].welcomed)
			C[i].t_end = now_ns() + rnd_range_ns(0, O.life_max_s * 1000);

	/* ---- soak ---- */
	set_phase(PH_SOAK);
	t_soak0 = now_ns();
	t_end = t_soak0 + MS((uint64_t)O.duration_s * 1000);
	next_prog = t_soak0 + MS(10000);
	m_soak.ok = false;
	while (now_ns() < t_end) {
		engine_events(2);
		engine_timers();
		sample_rss();
		if (now_ns() >= next_prog) {
			double p50, p99, mx;
			size_t n;

			next_prog += MS(10000);
			if (!broker_alive()) {
				note("the broker (pid %d) is gone", O.pid);
				break;
			}
			lat_stats(PH_SOAK, prog_from, &p50, &p99, &mx, &n);
			prog_from += n;
			note("t=%3.0fs open %u, connects %" PRIu64 ", faults %" PRIu64
			     ", too_slow seen %" PRIu64 ", healthy msgs +%" PRIu64 " lost %" PRIu64
			     ", RSS %ld KiB, MQTT p50/p99 %.2f/%.2f ms",
			     (double)(now_ns() - t_soak0) / 1e9, S.open_now, S.connects,
			     fault_total(), S.too_slow_seen, S.h_msgs - prog_h_msgs, S.h_lost,
			     rss_kib(O.pid), p50, p99);
			prog_h_msgs = S.h_msgs;
			if (now_ns() > t_soak0 + (t_end - t_soak0) / 2 && !m_soak.ok)
				m_soak = get_metrics(); /* mid-run snapshot */
		}
	}
	t_soak1 = now_ns();
	cpu_b1 = cpu_of_pid(O.pid);
	cpu_g1 = cpu_self_s();

	/* ---- end: churners go; the healthy browsers catch up to the devices' finish line ---- */
	set_phase(PH_END);
	churning = false;
	for (i = O.healthy; i < NC; i++)
		if (C[i].fd >= 0)
			bc_end(&C[i], false);
	fin = xcalloc(NT, sizeof(*fin));
	for (i = 0; i < NT; i++)
		fin[i] = atomic_load(&T[i].started);
	{
		uint64_t deadline = now_ns() + MS(10000);

		while (now_ns() < deadline && !healthy_caught_up(fin)) {
			engine_events(2);
			engine_timers();
		}
	}
	for (i = 0; i < O.healthy; i++) {
		struct bc *c = &C[i];
		uint8_t t;

		if (c->st != S_OPEN)
			continue;
		for (t = 0; t < c->ntr; t++) {
			struct track *tr = &c->tr[t];
			int64_t have = tr->last > tr->must_from - 1 ? tr->last : tr->must_from - 1;

			if (tr->must_from == INT64_MAX) {
				S.h_lost++; /* never confirmed */
				continue;
			}
			if (fin[tr->topic] > have)
				S.h_lost += (uint64_t)(fin[tr->topic] - have);
		}
		if (c->hs_next < c->hs_sent)
			S.h_speak_lost += c->hs_sent - c->hs_next;
	}
	for (i = 0; i < O.healthy; i++)
		if (C[i].fd >= 0)
			bc_end(&C[i], false);
	note("end: every browser closed; settling %u s", O.settle_s);

	/* ---- after: the broker settles; latency again; then memory and descriptors ---- */
	set_phase(PH_AFTER);
	usleep(O.settle_s * 1000000u);
	set_phase(PH_END);
	rss_end = rss_kib(O.pid);
	fds_end = fd_count(O.pid);
	m_end = get_metrics();
	alive = broker_alive();
	round_trip = alive && broker_round_trip();
	atomic_store(&M.stop, true);
	pthread_join(M.thread, NULL);

	for (ph = 0; ph < PH_N; ph++)
		lat_stats(ph, 0, &lat[ph][0], &lat[ph][1], &lat[ph][2], &nlat[ph]);
	pthread_mutex_lock(&M.lock);
	near_bursts = spikes_near_bursts();
	pthread_mutex_unlock(&M.lock);

	/* ---- verdicts ---- */
	correct = alive && round_trip && S.h_lost == 0 && S.h_dup == 0 && S.h_reorder == 0 &&
	          S.h_disconnects == 0 && S.h_misrouted == 0 && S.h_early == 0 &&
	          S.h_speak_lost == 0 && S.h_speak_dup == 0 && S.foreign == 0 &&
	          S.too_slow_unexpected == 0 && S.server_dropped == 0 && S.hs_refused == 0 &&
	          S.hs_timeouts == 0 && S.slow_hs_kept == 0 && S.stall_no_too_slow == 0 &&
	          S.rejects == 0 && S.disconnect_other == 0 && S.proto_errors == 0 &&
	          S.clean_close_timeouts == 0 && S.pause_dropped == 0 && m_end.ok &&
	          m_end.connections == 0 && m_end.subscriptions == 0 && m_end.dropped == 0 &&
	          fds_end <= fds_base && atomic_load(&M.publish_errors) == 0 && S.welcomed > 0;
	criteria = rss_end >= 0 && rss_end - rss_base <= O.rss_slack_kib && lat[PH_IDLE][1] > 0 &&
	           lat[PH_SOAK][1] <= O.lat_ratio * lat[PH_IDLE][1];
	rc = !correct ? 1 : !criteria ? 3 : 0;

	fprintf(stderr,
	        "\n== soak summary (%s) ==\n"
	        "browsers        %u churning + %u healthy, %u s soak, %u device msgs/s over %u "
	        "topics\n"
	        "connections     %" PRIu64 " made, %" PRIu64 " welcomed, peak %u open; %" PRIu64
	        " connect errors, %" PRIu64 " refused, %" PRIu64 " handshake timeouts\n"
	        "commands        %" PRIu64 " subscribes (%" PRIu64 " re-), %" PRIu64
	        " confirms, %" PRIu64 " rejects, %" PRIu64 " unsubscribes, %" PRIu64 " speaks\n"
	        "faults          %" PRIu64 ": rst %" PRIu64 ", fin %" PRIu64 ", half frame %" PRIu64
	        ", half handshake %" PRIu64 ", slow handshake %" PRIu64 ", pause %" PRIu64
	        ", stall %" PRIu64 ", stall+vanish %" PRIu64 "\n"
	        "too_slow        %" PRIu64 " seen by resumed stalled readers, %" PRIu64
	        " stalls not told, %" PRIu64 " closed while stalled, %" PRIu64
	        " on readers that kept up; server counted %lld\n"
	        "slow handshake  %" PRIu64 " dropped by the server, %" PRIu64 " kept\n"
	        "pauses          %" PRIu64 " short pauses resumed normally, %" PRIu64 " dropped\n"
	        "other           %" PRIu64 " clean closes (%" PRIu64 " timed out), %" PRIu64
	        " dropped unasked, %" PRIu64 " other disconnects, %" PRIu64
	        " foreign messages, %" PRIu64 " protocol errors\n"
	        "browsers rx     %" PRIu64 " frames, %" PRIu64 " messages, %.1f MB\n"
	        "healthy         %" PRIu64 " device messages checked: %" PRIu64 " lost, %" PRIu64
	        " duplicated, %" PRIu64 " out of order, %" PRIu64 " misrouted, %" PRIu64
	        " disconnects; speaks %" PRIu64 " sent, %" PRIu64 " echoed, %" PRIu64 " lost\n"
	        "devices         %llu published, %llu errors, probe received %llu\n"
	        "MQTT latency    idle p50/p99/max %.3f/%.3f/%.3f ms (%zu); ramp %.3f/%.3f/%.3f "
	        "(%zu);"
	        " soak %.3f/%.3f/%.3f ms (%zu); after %.3f/%.3f/%.3f ms (%zu)\n"
	        "                soak p99 / idle p99 = %.2f (criterion <= %.1f)\n"
	        "latency spikes  %zu soak samples above %.2f ms; %zu of them published within "
	        "-30..+70 ms of one of %zu ping bursts (those windows are %.1f %% of the time)\n"
	        "broker RSS      start %ld, baseline %ld, peak %ld, end %ld KiB: end - baseline = "
	        "%+ld KiB (slack %ld)\n"
	        "broker fds      baseline %ld, end %ld\n"
	        "broker CPU      %.1f %% during the soak; generator %.1f %%\n"
	        "metrics at end  connections %lld, subscriptions %lld, slow disconnects %lld, "
	        "gateway queue drops %lld, broker queue full %lld, accepted %lld\n"
	        "broker          %s, MQTT round trip %s\n"
	        "verdict         %s\n",
	        O.label, O.clients, O.healthy, O.duration_s, O.rate, NT, S.connects, S.welcomed,
	        S.open_peak, S.connect_errors, S.hs_refused, S.hs_timeouts, S.subscribes,
	        S.resubscribes, S.confirms, S.rejects, S.unsubscribes, S.speaks, fault_total(),
	        S.faults[F_RST], S.faults[F_FIN], S.faults[F_HALF_FRAME], S.faults[F_HALF_HS],
	        S.faults[F_SLOW_HS], S.faults[F_PAUSE], S.faults[F_STALL], S.faults[F_STALL_HUNG],
	        S.too_slow_seen, S.stall_no_too_slow, S.stall_closed_unread, S.too_slow_unexpected,
	        m_end.slow, S.slow_hs_closed, S.slow_hs_kept, S.pauses_ok, S.pause_dropped,
	        S.clean_closes, S.clean_close_timeouts, S.server_dropped, S.disconnect_other,
	        S.foreign, S.proto_errors, S.frames, S.msgs, (double)S.bytes / 1e6, S.h_msgs,
	        S.h_lost, S.h_dup, S.h_reorder, S.h_misrouted, S.h_disconnects, S.h_speak_sent,
	        S.h_speak_echo, S.h_speak_lost, (unsigned long long)atomic_load(&M.published),
	        (unsigned long long)atomic_load(&M.publish_errors),
	        (unsigned long long)atomic_load(&M.probe_rx), lat[PH_IDLE][0], lat[PH_IDLE][1],
	        lat[PH_IDLE][2], nlat[PH_IDLE], lat[PH_RAMP][0], lat[PH_RAMP][1], lat[PH_RAMP][2],
	        nlat[PH_RAMP], lat[PH_SOAK][0], lat[PH_SOAK][1], lat[PH_SOAK][2], nlat[PH_SOAK],
	        lat[PH_AFTER][0], lat[PH_AFTER][1], lat[PH_AFTER][2], nlat[PH_AFTER],
	        lat[PH_IDLE][1] > 0 ? lat[PH_SOAK][1] / lat[PH_IDLE][1] : -1, O.lat_ratio,
	        M.nspikes, spike_ms, near_bursts, nbursts,
	        100.0 * (double)nbursts * 0.1 / ((double)(t_soak1 - t_soak0) / 1e9), rss_start,
	        rss_base, rss_peak, rss_end, rss_end - rss_base, O.rss_slack_kib, fds_base, fds_end,
	        100.0 * (cpu_b1 - cpu_b0) / ((double)(t_soak1 - t_soak0) / 1e9),
	        100.0 * (cpu_g1 - cpu_g0) / ((double)(t_soak1 - t_soak0) / 1e9), m_end.connections,
	        m_end.subscriptions, m_end.slow, m_end.dropped, m_end.broker_full,
	        m_end.connections_total, alive ? "alive" : "DEAD", round_trip ? "ok" : "FAILED",
	        rc == 0   ? "PASS"
	        : rc == 1 ? "FAIL (correctness)"
	                  : "FAIL (a criterion: RSS or latency)");
	if (m_soak.ok)
		fprintf(stderr, "metrics mid-run connections %lld, subscriptions %lld, slow %lld\n",
		        m_soak.connections, m_soak.subscriptions, m_soak.slow);
	printf("RESULT mode=soak label=%s clients=%u healthy=%u seconds=%.0f rate=%u topics=%u "
	       "connects=%" PRIu64 " welcomed=%" PRIu64 " open_peak=%u connect_errors=%" PRIu64
	       " refused=%" PRIu64 " hs_timeouts=%" PRIu64 " subscribes=%" PRIu64
	       " unsubscribes=%" PRIu64 " speaks=%" PRIu64,
	       O.label, O.clients, O.healthy, (double)(t_soak1 - t_soak0) / 1e9, O.rate, NT,
	       S.connects, S.welcomed, S.open_peak, S.connect_errors, S.hs_refused, S.hs_timeouts,
	       S.subscribes, S.unsubscribes, S.speaks);
	for (i = 1; i < F_N; i++)
		printf(" fault_%s=%" PRIu64, fault_name[i], S.faults[i]);
	printf(" too_slow_seen=%" PRIu64 " stall_not_told=%" PRIu64 " too_slow_unexpected=%" PRIu64
	       " too_slow_server=%lld slow_hs_dropped=%" PRIu64 " slow_hs_kept=%" PRIu64
	       " dropped_unasked=%" PRIu64 " foreign=%" PRIu64 " proto_errors=%" PRIu64
	       " healthy_checked=%" PRIu64 " healthy_lost=%" PRIu64 " healthy_dup=%" PRIu64
	       " healthy_reorder=%" PRIu64 " healthy_disconnects=%" PRIu64
	       " healthy_speak_lost=%" PRIu64 " lat_idle_p50_ms=%.3f lat_idle_p99_ms=%.3f"
	       " lat_soak_p50_ms=%.3f lat_soak_p99_ms=%.3f lat_soak_max_ms=%.3f"
	       " lat_after_p50_ms=%.3f lat_after_p99_ms=%.3f lat_ratio=%.2f spikes=%zu"
	       " spikes_near_pings=%zu ping_bursts=%zu pauses_ok=%" PRIu64 " pause_dropped=%" PRIu64
	       " rss_start_kib=%ld"
	       " rss_base_kib=%ld rss_peak_kib=%ld rss_end_kib=%ld rss_delta_kib=%ld"
	       " fds_base=%ld fds_end=%ld server_cpu_pct=%.1f gen_cpu_pct=%.1f"
	       " end_connections=%lld end_subscriptions=%lld queue_drops=%lld browser_nice=%d "
	       "alive=%d rc=%d\n",
	       S.too_slow_seen, S.stall_no_too_slow, S.too_slow_unexpected, m_end.slow,
	       S.slow_hs_closed, S.slow_hs_kept, S.server_dropped, S.foreign, S.proto_errors,
	       S.h_msgs, S.h_lost, S.h_dup, S.h_reorder, S.h_disconnects, S.h_speak_lost,
	       lat[PH_IDLE][0], lat[PH_IDLE][1], lat[PH_SOAK][0], lat[PH_SOAK][1], lat[PH_SOAK][2],
	       lat[PH_AFTER][0], lat[PH_AFTER][1],
	       lat[PH_IDLE][1] > 0 ? lat[PH_SOAK][1] / lat[PH_IDLE][1] : -1, M.nspikes, near_bursts,
	       nbursts, S.pauses_ok, S.pause_dropped, rss_start, rss_base, rss_peak, rss_end,
	       rss_end - rss_base, fds_base, fds_end,
	       100.0 * (cpu_b1 - cpu_b0) / ((double)(t_soak1 - t_soak0) / 1e9),
	       100.0 * (cpu_g1 - cpu_g0) / ((double)(t_soak1 - t_soak0) / 1e9), m_end.connections,
	       m_end.subscriptions, m_end.dropped, O.browser_nice, alive ? 1 : 0, rc);
	fflush(stdout);
	for (i = 0; i < NDEV; i++) {
		mosquitto_disconnect(M.dev[i]);
		mosquitto_loop_stop(M.dev[i], true);
	}
	mosquitto_disconnect(M.probe);
	mosquitto_loop_stop(M.probe, true);
	_exit(rc);
}
