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
 * writing half a frame or stopping reads on one connection. The parts: soak.h.
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

#include "cable.h"
#include "common.h"
#include "opts.h"
#include "soak.h"

/* ---- Options ----------------------------------------------------------------------------- */

struct soak_opt opt = {
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
        .connect_conc = 48, /* below plugin_opt_max_handshakes_per_ip (64): one address */
        .seed = 1,
        .browser_nice = 10,
        .speak_share = 20,
        .fault_mask = ~0u,
        .lat_ratio = 2.0,
        .rss_slack_kib = 16384,
};

/* --life MIN,MAX: a churner's session length range in seconds. */
static void opt_life(const char *arg, void *dest)
{
	(void)dest;
	if (sscanf(arg, "%u,%u", &opt.life_min_s, &opt.life_max_s) != 2 ||
	    opt.life_min_s > opt.life_max_s)
		die("--life: want MIN,MAX seconds");
}

/* --faults K1,K2: the fault kinds to inject, by fault_name, or "all". */
static void opt_faults(const char *arg, void *dest)
{
	char *list = strdup(arg), *tok, *save = NULL;
	unsigned k;

	(void)dest;
	if (list == NULL)
		die("out of memory");
	opt.fault_mask = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool known = strcmp(tok, "all") == 0;

		if (known)
			opt.fault_mask = ~0u;
		for (k = 1; k < F_N; k++)
			if (strcmp(tok, fault_name[k]) == 0) {
				opt.fault_mask |= 1u << k;
				known = true;
			}
		if (!known)
			die("--faults: unknown kind %s", tok);
	}
	free(list);
}

static const struct opt soak_opts[] = {
        {"host", OPT_STR, &opt.host, NULL, "H", "the plugin's listener host (127.0.0.1)"},
        {"port", OPT_INT, &opt.port, NULL, "P", "the plugin's listener port (8080)"},
        {"path", OPT_STR, &opt.path, NULL, "PATH", "the plugin's listener path (/cable)"},
        {"mqtt-port", OPT_INT, &opt.mqtt_port, NULL, "P", "the broker's MQTT port (1883)"},
        {"secret-file", OPT_STR, &opt.secret_file, NULL, "F", "HS256 key for the tokens"},
        {"pid", OPT_INT, &opt.pid, NULL, "BROKER", "the broker's process"},
        {"clients", OPT_U32, &opt.clients, NULL, "N", "churning browsers (3000)"},
        {"healthy", OPT_U32, &opt.healthy, NULL, "N", "healthy browsers that check delivery (200)"},
        {"duration", OPT_U32, &opt.duration_s, NULL, "S", "soak seconds (300)"},
        {"idle", OPT_U32, &opt.idle_s, NULL, "S", "idle latency before the ramp (20)"},
        {"settle", OPT_U32, &opt.settle_s, NULL, "S", "settling after the soak (15)"},
        {"rate", OPT_U32, &opt.rate, NULL, "R", "device messages per second, all topics (200)"},
        {"actuators", OPT_U32, &opt.actuators, NULL, "N", "actuator topics (40)"},
        {"sites", OPT_U32, &opt.sites, NULL, "N", "sites (8)"},
        {"sensors", OPT_U32, &opt.sensors, NULL, "N", "sensor topics per site (3)"},
        {"pad", OPT_U32, &opt.pad, NULL, "B", "padding bytes in each device message (160)"},
        {"fault-pct", OPT_U32, &opt.fault_pct, NULL, "P",
         "churner sessions that end in a fault (10)"},
        {"action-ms", OPT_U32, &opt.action_ms, NULL, "M",
         "mean time between a churner's actions (3000)"},
        {"life", OPT_FN, NULL, opt_life, "S1,S2", "churner session length range, s (10,60)"},
        {"stall", OPT_U32, &opt.stall_s, NULL, "S",
         "a stalled reader stops reading this long (90)"},
        {"connect-concurrency", OPT_U32, &opt.connect_conc, NULL, "N",
         "handshakes at once during the ramp (48)"},
        {"seed", OPT_U64, &opt.seed, NULL, "N", "random seed (1)"},
        {"speak-share", OPT_U32, &opt.speak_share, NULL, "P",
         "percent of a churner's actions that speak (20, at most 50)"},
        {"faults", OPT_FN, NULL, opt_faults, "K1,K2",
         "fault kinds: rst fin half_frame half_handshake slow_handshake pause stall "
         "stall_hung (all)"},
        {"browser-nice", OPT_SINT, &opt.browser_nice, NULL, "N",
         "nice value of the browsers' thread, so they yield to the broker (10)"},
        {"lat-ratio", OPT_DOUBLE, &opt.lat_ratio, NULL, "X",
         "soak p99 may be X times idle p99 (2)"},
        {"rss-slack", OPT_LONG, &opt.rss_slack_kib, NULL, "KiB",
         "RSS may end this far above baseline (16384)"},
        {"label", OPT_STR, &opt.label, NULL, "L", "label of the RESULT line"},
};

static const char soak_synopsis[] =
        "usage: cable-soak --port P --mqtt-port P --secret-file F --pid BROKER [options]\n";

static void parse_args(int argc, char **argv)
{
	opts_parse(soak_opts, CABLE_ARRAY_LEN(soak_opts), argc, argv, soak_synopsis);
	if (!(opt.fault_mask & ~1u))
		opt.fault_pct = 0;
	if (opt.speak_share > 50)
		die("--speak-share: at most 50");
	if (!opt.secret_file || opt.pid <= 0)
		die("--secret-file and --pid are required (bench/soak.sh passes them)");
	if (opt.actuators == 0 || opt.sites == 0 || opt.sensors == 0 || opt.rate == 0 ||
	    opt.rate > 100000 || opt.healthy == 0 || opt.fault_pct > 100 || opt.action_ms == 0 ||
	    opt.life_max_s == 0 || opt.pad > 1000 || opt.actuators + opt.sites > 200 ||
	    2 + opt.sensors > MAX_TRACK)
		die("a count is out of range (see --help)");
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
	return kill(opt.pid, 0) == 0 || errno == EPERM;
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
	             "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", opt.host);
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

	for (i = 0; i < mq.nspikes; i++) {
		t = mq.spikes[i];
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

/* ---- The broker's RSS, sampled every 500 ms during the soak ---------------------------------- */

static long rss_peak;
static uint64_t last_rss_sample;

static void sample_rss(void)
{
	uint64_t now = now_ns();
	long r;

	if (now - last_rss_sample < MS(500))
		return;
	last_rss_sample = now;
	r = rss_kib(opt.pid);
	if (r > rss_peak)
		rss_peak = r;
}

/* ---- The phases ------------------------------------------------------------------------ */

/* What the phases measure, for the verdicts and the report. */
struct soak_run {
	long rss_start, rss_base, rss_end, fds_base, fds_end;
	double lat[PH_N][3]; /* p50, p99, max in ms per phase */
	size_t nlat[PH_N];
	double cpu_b0, cpu_b1, cpu_g0, cpu_g1; /* broker and generator CPU s, soak start/end */
	double spike_ms;                       /* a soak sample above this is a spike */
	size_t near_bursts;                    /* spikes near a ping burst */
	uint64_t t_soak0, t_soak1;
	struct metrics m_end, m_soak;
	bool alive, round_trip;
};

/* idle: the devices and the probe only; the baseline RSS, descriptors and latency. */
static void phase_idle(struct soak_run *r)
{
	mosquitto_lib_init();
	mqtt_start();
	set_phase(PH_WARM);
	if (pthread_create(&mq.thread, NULL, device_main, NULL) != 0)
		die("pthread_create failed");
	mq.thread_started = true;
	note("devices: %u msgs/s over %u topics (%u actuators, %u sites x %u sensors); idle %u s",
	     opt.rate, ntopics, opt.actuators, opt.sites, opt.sensors, opt.idle_s);
	usleep(2000000);
	set_phase(PH_IDLE);
	usleep(opt.idle_s * 1000000u);
	set_phase(PH_RAMP);
	r->rss_base = rss_kib(opt.pid);
	r->fds_base = fd_count(opt.pid);
	rss_peak = r->rss_base;
	lat_stats(PH_IDLE, 0, &r->lat[PH_IDLE][0], &r->lat[PH_IDLE][1], &r->lat[PH_IDLE][2],
	          &r->nlat[PH_IDLE]);
	/* A spike: above 1 ms and above 3x the idle p99. */
	r->spike_ms = r->lat[PH_IDLE][1] * 3 > 1.0 ? r->lat[PH_IDLE][1] * 3 : 1.0;
	atomic_store(&mq.spike_us, (unsigned)(r->spike_ms * 1000));
	burst_cap = opt.duration_s + 100;
	bursts = xcalloc(burst_cap, sizeof(*bursts));
	note("idle: MQTT latency p50 %.3f ms, p99 %.3f ms (%zu samples); broker RSS %ld KiB",
	     r->lat[PH_IDLE][0], r->lat[PH_IDLE][1], r->nlat[PH_IDLE], r->rss_base);
}

/* ramp: every browser connects; this thread is the browsers from here on. */
static void phase_ramp(struct soak_run *r)
{
	long long exp;
	uint32_t i;

	if (opt.browser_nice &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), opt.browser_nice) != 0)
		note("setpriority(%d): %s", opt.browser_nice, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	exp = (long long)time(NULL) + opt.duration_s + opt.idle_s + 3600;
	browsers_init(exp);
	churning = true;
	r->cpu_b0 = cpu_of_pid(opt.pid);
	r->cpu_g0 = cpu_self_s();
	browsers_ramp();
	/* The churners start their lives from here. */
	for (i = opt.healthy; i < nbrowsers; i++)
		if (browsers[i].st == S_OPEN && browsers[i].welcomed)
			browsers[i].t_end = now_ns() + rnd_range_ns(0, opt.life_max_s * 1000);
}

/* soak: --duration seconds of churn and faults, a progress line every 10 s. */
static void phase_soak(struct soak_run *r)
{
	uint64_t t_end, next_prog, prog_h_msgs = 0;
	size_t prog_from = 0;

	set_phase(PH_SOAK);
	r->t_soak0 = now_ns();
	t_end = r->t_soak0 + MS((uint64_t)opt.duration_s * 1000);
	next_prog = r->t_soak0 + MS(10000);
	r->m_soak.ok = false;
	while (now_ns() < t_end) {
		engine_events(2);
		engine_timers();
		sample_rss();
		if (now_ns() >= next_prog) {
			double p50, p99, mx;
			size_t n;

			next_prog += MS(10000);
			if (!broker_alive()) {
				note("the broker (pid %d) is gone", opt.pid);
				break;
			}
			lat_stats(PH_SOAK, prog_from, &p50, &p99, &mx, &n);
			prog_from += n;
			note("t=%3.0fs open %u, connects %" PRIu64 ", faults %" PRIu64
			     ", too_slow seen %" PRIu64 ", healthy msgs +%" PRIu64 " lost %" PRIu64
			     ", RSS %ld KiB, MQTT p50/p99 %.2f/%.2f ms",
			     (double)(now_ns() - r->t_soak0) / 1e9, stats.open_now, stats.connects,
			     fault_total(), stats.too_slow_seen, stats.h_msgs - prog_h_msgs,
			     stats.h_lost, rss_kib(opt.pid), p50, p99);
			prog_h_msgs = stats.h_msgs;
			if (now_ns() > r->t_soak0 + (t_end - r->t_soak0) / 2 && !r->m_soak.ok)
				r->m_soak = get_metrics(); /* mid-run snapshot */
		}
	}
	r->t_soak1 = now_ns();
	r->cpu_b1 = cpu_of_pid(opt.pid);
	r->cpu_g1 = cpu_self_s();
}

/* end: the churners go; the healthy browsers catch up to the devices' finish line. */
static void phase_end(void)
{
	uint64_t deadline;
	long long *fin;
	uint32_t i;

	set_phase(PH_END);
	churning = false;
	for (i = opt.healthy; i < nbrowsers; i++)
		if (browsers[i].fd >= 0)
			bc_end(&browsers[i], false);
	fin = xcalloc(ntopics, sizeof(*fin));
	for (i = 0; i < ntopics; i++)
		fin[i] = atomic_load(&topics[i].started);
	deadline = now_ns() + MS(10000);
	while (now_ns() < deadline && !healthy_caught_up(fin)) {
		engine_events(2);
		engine_timers();
	}
	for (i = 0; i < opt.healthy; i++) {
		struct bc *c = &browsers[i];
		uint8_t t;

		if (c->st != S_OPEN)
			continue;
		for (t = 0; t < c->ntr; t++) {
			struct track *tr = &c->tr[t];
			int64_t have = tr->last > tr->must_from - 1 ? tr->last : tr->must_from - 1;

			if (tr->must_from == INT64_MAX) {
				stats.h_lost++; /* never confirmed */
				continue;
			}
			if (fin[tr->topic] > have)
				stats.h_lost += (uint64_t)(fin[tr->topic] - have);
		}
		if (c->hs_next < c->hs_sent)
			stats.h_speak_lost += c->hs_sent - c->hs_next;
	}
	for (i = 0; i < opt.healthy; i++)
		if (browsers[i].fd >= 0)
			bc_end(&browsers[i], false);
	free(fin);
	note("end: every browser closed; settling %u s", opt.settle_s);
}

/* after: the broker settles; latency again; then memory, descriptors and /metrics. */
static void phase_after(struct soak_run *r)
{
	int ph;

	set_phase(PH_AFTER);
	usleep(opt.settle_s * 1000000u);
	set_phase(PH_END);
	r->rss_end = rss_kib(opt.pid);
	r->fds_end = fd_count(opt.pid);
	r->m_end = get_metrics();
	r->alive = broker_alive();
	r->round_trip = r->alive && broker_round_trip();
	atomic_store(&mq.stop, true);
	pthread_join(mq.thread, NULL);
	for (ph = 0; ph < PH_N; ph++)
		lat_stats(ph, 0, &r->lat[ph][0], &r->lat[ph][1], &r->lat[ph][2], &r->nlat[ph]);
	pthread_mutex_lock(&mq.lock);
	r->near_bursts = spikes_near_bursts();
	pthread_mutex_unlock(&mq.lock);
}

/* ---- Verdict and report ----------------------------------------------------------------- */

/* 0 every check passed, 1 a correctness check failed, 3 only a criterion was missed. */
static int verdict(const struct soak_run *r)
{
	bool correct, criteria;

	correct = r->alive && r->round_trip && stats.h_lost == 0 && stats.h_dup == 0 &&
	          stats.h_reorder == 0 && stats.h_disconnects == 0 && stats.h_misrouted == 0 &&
	          stats.h_early == 0 && stats.h_speak_lost == 0 && stats.h_speak_dup == 0 &&
	          stats.foreign == 0 && stats.too_slow_unexpected == 0 &&
	          stats.server_dropped == 0 && stats.hs_refused == 0 && stats.hs_timeouts == 0 &&
	          stats.slow_hs_kept == 0 && stats.stall_no_too_slow == 0 && stats.rejects == 0 &&
	          stats.disconnect_other == 0 && stats.proto_errors == 0 &&
	          stats.clean_close_timeouts == 0 && stats.pause_dropped == 0 && r->m_end.ok &&
	          r->m_end.connections == 0 && r->m_end.subscriptions == 0 &&
	          r->m_end.dropped == 0 && r->fds_end <= r->fds_base &&
	          atomic_load(&mq.publish_errors) == 0 && stats.welcomed > 0;
	criteria = r->rss_end >= 0 && r->rss_end - r->rss_base <= opt.rss_slack_kib &&
	           r->lat[PH_IDLE][1] > 0 &&
	           r->lat[PH_SOAK][1] <= opt.lat_ratio * r->lat[PH_IDLE][1];
	return !correct ? 1 : !criteria ? 3 : 0;
}

/* The summary on stderr, then the RESULT line on stdout (bench/soak.sh reads it). */
static void report(const struct soak_run *r, int rc)
{
	uint32_t i;

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
	        opt.label, opt.clients, opt.healthy, opt.duration_s, opt.rate, ntopics,
	        stats.connects, stats.welcomed, stats.open_peak, stats.connect_errors,
	        stats.hs_refused, stats.hs_timeouts, stats.subscribes, stats.resubscribes,
	        stats.confirms, stats.rejects, stats.unsubscribes, stats.speaks, fault_total(),
	        stats.faults[F_RST], stats.faults[F_FIN], stats.faults[F_HALF_FRAME],
	        stats.faults[F_HALF_HS], stats.faults[F_SLOW_HS], stats.faults[F_PAUSE],
	        stats.faults[F_STALL], stats.faults[F_STALL_HUNG], stats.too_slow_seen,
	        stats.stall_no_too_slow, stats.stall_closed_unread, stats.too_slow_unexpected,
	        r->m_end.slow, stats.slow_hs_closed, stats.slow_hs_kept, stats.pauses_ok,
	        stats.pause_dropped, stats.clean_closes, stats.clean_close_timeouts,
	        stats.server_dropped, stats.disconnect_other, stats.foreign, stats.proto_errors,
	        stats.frames, stats.msgs, (double)stats.bytes / 1e6, stats.h_msgs, stats.h_lost,
	        stats.h_dup, stats.h_reorder, stats.h_misrouted, stats.h_disconnects,
	        stats.h_speak_sent, stats.h_speak_echo, stats.h_speak_lost,
	        (unsigned long long)atomic_load(&mq.published),
	        (unsigned long long)atomic_load(&mq.publish_errors),
	        (unsigned long long)atomic_load(&mq.probe_rx), r->lat[PH_IDLE][0],
	        r->lat[PH_IDLE][1], r->lat[PH_IDLE][2], r->nlat[PH_IDLE], r->lat[PH_RAMP][0],
	        r->lat[PH_RAMP][1], r->lat[PH_RAMP][2], r->nlat[PH_RAMP], r->lat[PH_SOAK][0],
	        r->lat[PH_SOAK][1], r->lat[PH_SOAK][2], r->nlat[PH_SOAK], r->lat[PH_AFTER][0],
	        r->lat[PH_AFTER][1], r->lat[PH_AFTER][2], r->nlat[PH_AFTER],
	        r->lat[PH_IDLE][1] > 0 ? r->lat[PH_SOAK][1] / r->lat[PH_IDLE][1] : -1,
	        opt.lat_ratio, mq.nspikes, r->spike_ms, r->near_bursts, nbursts,
	        100.0 * (double)nbursts * 0.1 / ((double)(r->t_soak1 - r->t_soak0) / 1e9),
	        r->rss_start, r->rss_base, rss_peak, r->rss_end, r->rss_end - r->rss_base,
	        opt.rss_slack_kib, r->fds_base, r->fds_end,
	        100.0 * (r->cpu_b1 - r->cpu_b0) / ((double)(r->t_soak1 - r->t_soak0) / 1e9),
	        100.0 * (r->cpu_g1 - r->cpu_g0) / ((double)(r->t_soak1 - r->t_soak0) / 1e9),
	        r->m_end.connections, r->m_end.subscriptions, r->m_end.slow, r->m_end.dropped,
	        r->m_end.broker_full, r->m_end.connections_total, r->alive ? "alive" : "DEAD",
	        r->round_trip ? "ok" : "FAILED",
	        rc == 0   ? "PASS"
	        : rc == 1 ? "FAIL (correctness)"
	                  : "FAIL (a criterion: RSS or latency)");
	if (r->m_soak.ok)
		fprintf(stderr, "metrics mid-run connections %lld, subscriptions %lld, slow %lld\n",
		        r->m_soak.connections, r->m_soak.subscriptions, r->m_soak.slow);
	printf("RESULT mode=soak label=%s clients=%u healthy=%u seconds=%.0f rate=%u topics=%u "
	       "connects=%" PRIu64 " welcomed=%" PRIu64 " open_peak=%u connect_errors=%" PRIu64
	       " refused=%" PRIu64 " hs_timeouts=%" PRIu64 " subscribes=%" PRIu64
	       " unsubscribes=%" PRIu64 " speaks=%" PRIu64,
	       opt.label, opt.clients, opt.healthy, (double)(r->t_soak1 - r->t_soak0) / 1e9,
	       opt.rate, ntopics, stats.connects, stats.welcomed, stats.open_peak,
	       stats.connect_errors, stats.hs_refused, stats.hs_timeouts, stats.subscribes,
	       stats.unsubscribes, stats.speaks);
	for (i = 1; i < F_N; i++)
		printf(" fault_%s=%" PRIu64, fault_name[i], stats.faults[i]);
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
	       stats.too_slow_seen, stats.stall_no_too_slow, stats.too_slow_unexpected,
	       r->m_end.slow, stats.slow_hs_closed, stats.slow_hs_kept, stats.server_dropped,
	       stats.foreign, stats.proto_errors, stats.h_msgs, stats.h_lost, stats.h_dup,
	       stats.h_reorder, stats.h_disconnects, stats.h_speak_lost, r->lat[PH_IDLE][0],
	       r->lat[PH_IDLE][1], r->lat[PH_SOAK][0], r->lat[PH_SOAK][1], r->lat[PH_SOAK][2],
	       r->lat[PH_AFTER][0], r->lat[PH_AFTER][1],
	       r->lat[PH_IDLE][1] > 0 ? r->lat[PH_SOAK][1] / r->lat[PH_IDLE][1] : -1, mq.nspikes,
	       r->near_bursts, nbursts, stats.pauses_ok, stats.pause_dropped, r->rss_start,
	       r->rss_base, rss_peak, r->rss_end, r->rss_end - r->rss_base, r->fds_base, r->fds_end,
	       100.0 * (r->cpu_b1 - r->cpu_b0) / ((double)(r->t_soak1 - r->t_soak0) / 1e9),
	       100.0 * (r->cpu_g1 - r->cpu_g0) / ((double)(r->t_soak1 - r->t_soak0) / 1e9),
	       r->m_end.connections, r->m_end.subscriptions, r->m_end.dropped, opt.browser_nice,
	       r->alive ? 1 : 0, rc);
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct soak_run run = {0};
	unsigned long long nofile;
	uint32_t i;
	int rc;

	log_init("cable-soak", "soak: ");
	parse_args(argc, argv);
	rng_state = opt.seed * 0x9E3779B97F4A7C15ull + 1;
	nofile = raise_nofile();
	if ((uint64_t)opt.clients + opt.healthy + 64 > nofile)
		die("%u browsers need more descriptors than nofile %llu", opt.clients + opt.healthy,
		    nofile);
	signal(SIGPIPE, SIG_IGN);
	secret_len = read_secret(opt.secret_file, secret, sizeof(secret));
	make_topics();
	if (!broker_alive())
		die("no broker with pid %d", opt.pid);
	run.rss_start = rss_kib(opt.pid);

	phase_idle(&run);
	phase_ramp(&run);
	phase_soak(&run);
	phase_end();
	phase_after(&run);
	rc = verdict(&run);
	report(&run, rc);

	fflush(stdout);
	for (i = 0; i < NDEV; i++) {
		mosquitto_disconnect(mq.dev[i]);
		mosquitto_loop_stop(mq.dev[i], true);
	}
	mosquitto_disconnect(mq.probe);
	mosquitto_loop_stop(mq.probe, true);
	_exit(rc);
}
