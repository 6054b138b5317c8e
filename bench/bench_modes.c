/*
 * cable-bench's modes: the stamped MQTT publisher, then one run_<mode> per --mode, each
 * connecting, measuring and printing its "RESULT mode=... key=value ..." line on stdout
 * (bench/run.sh parses these lines). Thread: main, except the perform mode's MQTT
 * subscriber callbacks (libmosquitto's thread; they touch only atomics and perf_lat).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bench.h"

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

/* ---- Publishing stamped messages ------------------------------------------------------ */
static void mqtt_log_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	(void)obj;
	if (rc == 0)
		atomic_store(&bench.mqtt_pub_connected, 1);
}

static void publisher_start(void)
{
	char id[64];
	uint64_t deadline = now_ns() + 5000000000ull;

	if (bench.proto == P_RAILS)
		return; /* the publisher is an extra WebSocket connection */
	snprintf(id, sizeof(id), "cable-bench-pub-%d", (int)getpid());
	bench.mosq_pub =
	        mqtt_client_start(id, &(struct mqtt_callbacks){mqtt_log_connect, NULL, NULL},
	                          bench.host, bench.mqtt_port, 60);
	while (!atomic_load(&bench.mqtt_pub_connected)) {
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
	if (bench.seq_t)
		bench.seq_t[seq % SEQ_RING] = t;
	/*
	 * The slot's previous message (seq - SEQ_RING) is long complete (the window is below
	 * SEQ_RING / 2): clear its counts, or a run past SEQ_RING messages (one browser at
	 * tens of thousands a second) would never see a message complete again.
	 */
	if (bench.seq_count)
		bench.seq_count[seq % SEQ_RING] = 0;
	if (bench.seq_last)
		bench.seq_last[seq % SEQ_RING] = 0;
	bench.published++;
	if (bench.proto == P_RAILS) {
		send_broadcast(bench.publisher, data, (size_t)n);
		return;
	}
	/* MQTT: the payload as a device would send it (without the action member). */
	n = snprintf(data, sizeof(data), "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 "}", seq, t);
	mosquitto_publish(bench.mosq_pub, NULL, TOPIC, n, data, 0, false);
}

static void alloc_seq_tables(void)
{
	bench.seq_t = xcalloc(SEQ_RING, sizeof(*bench.seq_t));
	bench.seq_count = xcalloc(SEQ_RING, sizeof(*bench.seq_count));
	bench.seq_last = xcalloc(SEQ_RING, sizeof(*bench.seq_last));
}

/* Connect the subscribers, plus the rails publisher (not counted). */
static void setup_subscribers(void)
{
	bench.conns = xcalloc(bench.clients + 1, sizeof(*bench.conns));
	connect_more(bench.clients, true);
	if (bench.proto == P_RAILS) {
		connect_more(1, true);
		bench.publisher = &bench.conns[bench.nconns - 1];
		bench.publisher->counted = false;
	}
	if (bench.nready < bench.nconns)
		note("warning: only %u of %u connections subscribed", bench.nready, bench.nconns);
}

static uint64_t total_expected;

static bool all_delivered(void)
{
	return bench.delivered >= total_expected;
}

/* Lost deliveries and per-connection anomalies after a phase of `per_conn` messages. */
static void check_conns(uint32_t per_conn, uint64_t *lost, uint64_t *dups, uint64_t *reorders)
{
	uint32_t i;

	*lost = *dups = *reorders = 0;
	for (i = 0; i < bench.nconns; i++) {
		struct conn *c = &bench.conns[i];

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

	for (i = 0; i < bench.nconns; i++)
		n += bench.conns[i].off_gaps;
	return n;
}

static void print_result_head(void)
{
	printf("RESULT mode=%s proto=%s label=%s clients=%u", mode_name[bench.mode],
	       proto_name[bench.proto], bench.label[0] ? bench.label : "-", bench.clients);
}

static int run_latency(void)
{
	uint64_t next, lost, dups, reorders, t0;
	double c0, w0, s0;
	uint32_t s;
	uint64_t *last;

	alloc_seq_tables();
	/* First: libmosquitto's loop uses select(), so its socket must stay below FD_SETSIZE. */
	publisher_start();
	setup_subscribers();
	bench.lat_cap = (size_t)bench.clients * bench.messages;
	bench.lat = xcalloc(bench.lat_cap, sizeof(*bench.lat));
	if (bench.ext_pct) {
		bench.lat_ext = xcalloc(bench.lat_cap, sizeof(*bench.lat_ext));
		bench.lat_v1 = xcalloc(bench.lat_cap, sizeof(*bench.lat_v1));
	}
	bench.record_lat = true;
	pump_for_ms(500);
	c0 = cpu_self_s();
	s0 = cpu_of_pid(bench.server_pid);
	w0 = (double)now_ns() / 1e9;
	t0 = now_ns();
	next = t0;
	for (s = 0; s < bench.messages; s++) {
		publish_stamped(s);
		next += (uint64_t)bench.interval_ms * 1000000ull;
		pump_until(NULL, next);
	}
	total_expected = (uint64_t)bench.clients * bench.messages;
	pump_until(all_delivered, now_ns() + 20000000000ull); /* Rails needs seconds */
	check_conns(bench.messages, &lost, &dups, &reorders);
	qsort(bench.lat, bench.nlat, sizeof(*bench.lat), cmp_u64);
	if (bench.lat_ext) {
		qsort(bench.lat_ext, bench.nlat_ext, sizeof(*bench.lat_ext), cmp_u64);
		qsort(bench.lat_v1, bench.nlat_v1, sizeof(*bench.lat_v1), cmp_u64);
	}
	last = xcalloc(bench.messages, sizeof(*last));
	for (s = 0; s < bench.messages; s++)
		last[s] = bench.seq_last[s];
	qsort(last, bench.messages, sizeof(*last), cmp_u64);
	print_result_head();
	printf(" messages=%u interval_ms=%u deliveries=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "last_p50_ms=%.3f last_p99_ms=%.3f last_max_ms=%.3f lost=%" PRIu64 " dup=%" PRIu64
	       " reorder=%" PRIu64 " failed=%u gen_cpu_pct=%.1f server_cpu_ms=%.1f\n",
	       bench.messages, bench.interval_ms, bench.nlat, pct_ms(bench.lat, bench.nlat, 500),
	       pct_ms(bench.lat, bench.nlat, 990),
	       bench.nlat ? (double)bench.lat[bench.nlat - 1] / 1e6 : -1,
	       pct_ms(last, bench.messages, 500), pct_ms(last, bench.messages, 990),
	       (double)last[bench.messages - 1] / 1e6, lost, dups, reorders,
	       bench.nfailed + bench.nclosed_early,
	       100.0 * (cpu_self_s() - c0) / ((double)now_ns() / 1e9 - w0),
	       s0 >= 0 ? 1e3 * (cpu_of_pid(bench.server_pid) - s0) : -1.0);
	if (bench.ext_pct) {
		/* The ext connections' own figures (the v1 ones are the rest of the above). */
		fflush(stdout);
		printf("RESULT mode=latency-ext proto=cable label=%s-ext clients=%u ext_pct=%u "
		       "deliveries=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f v1_deliveries=%zu "
		       "v1_p50_ms=%.3f v1_p99_ms=%.3f offset_gaps=%u\n",
		       bench.label[0] ? bench.label : "-", bench.clients, bench.ext_pct,
		       bench.nlat_ext, pct_ms(bench.lat_ext, bench.nlat_ext, 500),
		       pct_ms(bench.lat_ext, bench.nlat_ext, 990),
		       bench.nlat_ext ? (double)bench.lat_ext[bench.nlat_ext - 1] / 1e6 : -1,
		       bench.nlat_v1, pct_ms(bench.lat_v1, bench.nlat_v1, 500),
		       pct_ms(bench.lat_v1, bench.nlat_v1, 990), ext_gaps());
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
	end = now_ns() + (1 + (uint64_t)bench.duration_s) * 1000000000ull;
	t_meas0 = now_ns() + 1000000000ull; /* 1 s warm-up */
	t_meas1 = end;
	d0 = d1 = 0;
	c0 = c1 = s0 = s1 = 0;
	last_done = 0;
	bool in_meas = false;

	while (now_ns() < end) {
		uint64_t now;

		while (bench.published - bench.completed < bench.window)
			publish_stamped(bench.published);
		service(true);
		now = now_ns();
		if (!in_meas && now >= t_meas0) {
			in_meas = true;
			d0 = bench.delivered;
			c0 = cpu_self_s();
			s0 = cpu_of_pid(bench.server_pid);
			t_meas0 = now;
		}
		if (bench.completed != last_done) {
			last_done = bench.completed;
			stall_since = now;
		} else if (stall_since && now - stall_since > 3000000000ull) {
			note("no message completed for 3 s: stopping (loss?)");
			break;
		} else if (!stall_since) {
			stall_since = now;
		}
	}
	t_meas1 = now_ns();
	d1 = bench.delivered;
	c1 = cpu_self_s();
	s1 = cpu_of_pid(bench.server_pid);
	secs = (double)(t_meas1 - t_meas0) / 1e9;
	total_expected = bench.published * bench.clients;
	pump_until(all_delivered, now_ns() + 5000000000ull);
	check_conns((uint32_t)bench.published, &lost, &dups, &reorders);
	print_result_head();
	printf(" window=%u seconds=%.2f published=%" PRIu64 " deliveries_per_s=%.0f "
	       "msgs_per_s=%.1f lost=%" PRIu64 " dup=%" PRIu64 " reorder=%" PRIu64
	       " failed=%u gen_cpu_pct=%.1f server_cpu_pct=%.1f ext_pct=%u offset_gaps=%u\n",
	       bench.window, secs, bench.published, (double)(d1 - d0) / secs,
	       (double)(d1 - d0) / secs / bench.clients, lost, dups, reorders,
	       bench.nfailed + bench.nclosed_early, 100.0 * (c1 - c0) / secs,
	       s0 >= 0 ? 100.0 * (s1 - s0) / secs : -1.0, bench.ext_pct, ext_gaps());
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

	for (i = 0; i < bench.concurrent && bench.fl[i].active; i++)
		;
	if (i == bench.concurrent)
		return;
	for (tries = 0;; tries++) {
		c = &bench.conns[(uint32_t)rand() % bench.nconns];
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
	for (uint32_t k = 0; k < bench.padding && (size_t)n < sizeof(data) - 8; k++)
		data[n++] = "1234567890"[k % 10];
	n += snprintf(data + n, sizeof(data) - (size_t)n, "\"}}");
	bench.fl[i].active = true;
	bench.fl[i].sender = c->idx;
	bench.fl[i].send_wall = wall;
	bench.fl[i].t_mono = now_ns();
	bcast_sent++;
	send_broadcast(c, data, (size_t)n);
}

void broadcast_received(struct conn *c, const char *data, size_t len)
{
	uint64_t t;
	uint32_t i;
	bool ok;

	t = num_after(data, len, "\"sendTime\":", &ok);
	if (!ok)
		return;
	c->rx++;
	bench.brx++;
	for (i = 0; i < bench.concurrent; i++) {
		if (bench.fl[i].active && bench.fl[i].send_wall == t &&
		    bench.fl[i].sender == c->idx) {
			bench.fl[i].active = false;
			bench.rtt[bench.nrtt++] = now_ns() - bench.fl[i].t_mono;
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
	return bench.brx >= bcast_expected;
}

static int run_broadcast(void)
{
	uint32_t step, i, active;
	int rc = 0;

	bench.conns = xcalloc((size_t)bench.step_size * bench.steps, sizeof(*bench.conns));
	bench.fl = xcalloc(bench.concurrent, sizeof(*bench.fl));
	bench.rtt = xcalloc(bench.sample_size, sizeof(*bench.rtt));
	srand(12345);
	for (step = 1; step <= bench.steps; step++) {
		uint64_t deadline, lost;

		connect_more(bench.step_size, true);
		for (i = 0; i < bench.nconns; i++)
			bench.conns[i].rx = 0;
		bench.brx = 0;
		bench.nrtt = 0;
		bench.bdrops = 0;
		bcast_samples = bcast_sent = 0;
		bcast_target = bench.sample_size;
		memset(bench.fl, 0, bench.concurrent * sizeof(*bench.fl));
		for (i = 0; i < bench.concurrent && bcast_sent < bcast_target; i++)
			send_random_broadcast();
		deadline = now_ns() + 120ull * 1000000000ull;
		while (bcast_samples + bench.bdrops < bcast_target && now_ns() < deadline) {
			uint64_t now;

			service(true);
			now = now_ns();
			for (i = 0; i < bench.concurrent; i++) {
				if (bench.fl[i].active &&
				    now - bench.fl[i].t_mono > 10000000000ull) {
					bench.fl[i].active =
					        false; /* the sender never saw it: a drop */
					bench.bdrops++;
					if (bcast_sent < bcast_target)
						send_random_broadcast();
				}
			}
		}
		active = bench.nready;
		bcast_expected = (uint64_t)active * bcast_sent;
		pump_until(bcast_all_in, now_ns() + 2000000000ull);
		lost = bcast_expected > bench.brx ? bcast_expected - bench.brx : 0;
		qsort(bench.rtt, bench.nrtt, sizeof(*bench.rtt), cmp_u64);
		print_result_head();
		printf(" step=%u active=%u samples=%zu drops=%u p95_ms=%.3f min_ms=%.3f "
		       "p50_ms=%.3f "
		       "max_ms=%.3f expected=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
		       " failed=%u\n",
		       step, active, bench.nrtt, bench.bdrops, pct_ms(bench.rtt, bench.nrtt, 950),
		       bench.nrtt ? (double)bench.rtt[0] / 1e6 : -1,
		       pct_ms(bench.rtt, bench.nrtt, 500),
		       bench.nrtt ? (double)bench.rtt[bench.nrtt - 1] / 1e6 : -1, bcast_expected,
		       bench.brx, lost, bench.nfailed + bench.nclosed_early);
		fflush(stdout);
		if (lost || bench.bdrops)
			rc = 1;
		if (bench.nrtt && bench.rtt[bench.nrtt * 95 / 100] > 10000000000ull) {
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

	if (bench.server_pid <= 0)
		die("--mode idle needs --pid (the server process)");
	rss0 = rss_kib(bench.server_pid);
	sockstat(&in0, &mem0);
	slab0 = slab_kib();
	bench.conns = xcalloc(bench.clients, sizeof(*bench.conns));
	connect_more(bench.clients, true);
	pump_for_ms(3500); /* one ping round, allocator settles */
	rss1 = rss_kib(bench.server_pid);
	sockstat(&in1, &mem1);
	slab1 = slab_kib();
	cpu0 = cpu_of_pid(bench.server_pid);
	t0 = now_ns();
	pump_for_ms((uint64_t)bench.idle_s * 1000);
	cpu1 = cpu_of_pid(bench.server_pid);
	secs = (double)(now_ns() - t0) / 1e9;
	print_result_head();
	printf(" ready=%u rss0_kib=%ld rss1_kib=%ld bytes_per_conn=%.0f sock_inuse_delta=%ld "
	       "sock_mem_bytes_per_conn=%.0f slab_bytes_per_conn=%.0f idle_secs=%.1f "
	       "server_cpu_pct=%.3f "
	       "cpu_us_per_conn_per_s=%.4f failed=%u\n",
	       bench.nready, rss0, rss1,
	       bench.nready ? (double)(rss1 - rss0) * 1024.0 / bench.nready : -1, in1 - in0,
	       bench.nready ? (double)(mem1 - mem0) * 4096.0 / bench.nready : -1,
	       bench.nready ? (double)(slab1 - slab0) * 1024.0 / bench.nready : -1, secs,
	       100.0 * (cpu1 - cpu0) / secs,
	       bench.nready ? 1e6 * (cpu1 - cpu0) / secs / bench.nready : -1,
	       bench.nfailed + bench.nclosed_early);
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

	if (bench.server_pid <= 0)
		die("--mode history needs --pid (the server process)");
	publisher_start();
	bench.conns = xcalloc(bench.clients, sizeof(*bench.conns));
	connect_more(bench.clients, true);
	pump_for_ms(1000);
	rss0 = rss_kib(bench.server_pid);
	for (r = 0; r < bench.messages; r++) {
		for (i = 0; i < bench.clients; i++) {
			snprintf(topic, sizeof(topic), "actuators/%u/state", i);
			n = snprintf(data, sizeof(data), "{\"seq\":%u,\"t\":%" PRIu64 "}", r,
			             now_ns());
			mosquitto_publish(bench.mosq_pub, NULL, topic, n, data, 0, false);
			bench.published++;
			if (i % 500 == 499)
				pump_for_ms(5);
		}
	}
	pump_for_ms(3000);
	rss1 = rss_kib(bench.server_pid);
	print_result_head();
	printf(" ready=%u messages=%u published=%" PRIu64 " delivered=%" PRIu64
	       " rss0_kib=%ld rss1_kib=%ld rss_growth_bytes=%ld offset_gaps=%u failed=%u\n",
	       bench.nready, bench.messages, bench.published, bench.delivered, rss0, rss1,
	       (rss1 - rss0) * 1024, ext_gaps(), bench.nfailed + bench.nclosed_early);
	return 0;
}

static bool storm_done(void)
{
	return bench.nwelcomed + bench.nfailed + bench.nclosed_early >= bench.nconns;
}

static int run_storm(void)
{
	uint64_t *d, t0, t1;
	size_t n = 0;
	uint32_t i, j;

	bench.conns = xcalloc(bench.clients, sizeof(*bench.conns));
	/* Tokens are signed before the clock starts (open_conn signs; pre-warm OpenSSL). */
	if (bench.secret_file && bench.proto != P_MQTT)
		free(make_token(0));
	t0 = now_ns();
	for (i = 0; i < bench.clients;) {
		for (j = 0; j < 256 && i < bench.clients; j++, i++) {
			open_conn(&bench.conns[i], i);
			bench.nconns++;
		}
		service(false); /* timestamp early welcomes without blocking */
	}
	t1 = now_ns();
	pump_until(storm_done, now_ns() + 90ull * 1000000000ull);
	d = xcalloc(bench.clients, sizeof(*d));
	for (i = 0; i < bench.nconns; i++) {
		if (bench.conns[i].t_welcome)
			d[n++] = bench.conns[i].t_welcome - bench.conns[i].t_start;
	}
	qsort(d, n, sizeof(*d), cmp_u64);
	print_result_head();
	printf(" token=%s welcomed=%zu failed=%u issue_ms=%.0f p50_ms=%.3f p95_ms=%.3f "
	       "p99_ms=%.3f max_ms=%.3f\n",
	       bench.secret_file && bench.proto != P_MQTT ? "yes" : "no", n,
	       bench.nfailed + bench.nclosed_early, (double)(t1 - t0) / 1e6, pct_ms(d, n, 500),
	       pct_ms(d, n, 950), pct_ms(d, n, 990), n ? (double)d[n - 1] / 1e6 : -1);
	free(d);
	return n == bench.clients ? 0 : 1;
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
	idx = atomic_fetch_add(&bench.perf_n, 1);
	if (idx < bench.perf_cap)
		bench.perf_lat[idx] = now > t ? now - t : 0;
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
	atomic_store(&bench.mqtt_sub_ready, 1);
}

static bool perf_all_in(void)
{
	return atomic_load(&bench.perf_n) >= bench.messages;
}

static int run_perform(void)
{
	char id[64], data[128];
	uint64_t next, deadline = now_ns() + 5000000000ull;
	uint32_t s, got;
	int n;

	if (bench.proto == P_RAILS)
		die("--mode perform needs an MQTT side (cable or mqtt)");
	bench.perf_cap = bench.messages;
	bench.perf_lat = xcalloc(bench.messages, sizeof(*bench.perf_lat));
	snprintf(id, sizeof(id), "cable-bench-sub-%d", (int)getpid());
	bench.mosq_sub = mqtt_client_start(
	        id, &(struct mqtt_callbacks){perf_on_connect, perf_on_subscribe, perf_on_message},
	        bench.host, bench.mqtt_port, 60);
	while (!atomic_load(&bench.mqtt_sub_ready)) {
		if (now_ns() > deadline)
			die("MQTT subscriber did not subscribe");
		usleep(1000);
	}
	bench.conns = xcalloc(bench.clients, sizeof(*bench.conns));
	connect_more(bench.clients, true);
	if (bench.nready == 0)
		die("no connection ready");
	pump_for_ms(300);
	next = now_ns();
	for (s = 0; s < bench.messages; s++) {
		n = snprintf(data, sizeof(data),
		             "{\"action\":\"broadcast\",\"seq\":%u,\"t\":%" PRIu64 "}", s,
		             now_ns());
		send_broadcast(&bench.conns[s % bench.nready], data, (size_t)n);
		next += (uint64_t)bench.interval_ms * 1000000ull;
		pump_until(NULL, next);
	}
	pump_until(perf_all_in, now_ns() + 3000000000ull);
	got = atomic_load(&bench.perf_n);
	if (got > bench.perf_cap)
		got = bench.perf_cap;
	qsort(bench.perf_lat, got, sizeof(*bench.perf_lat), cmp_u64);
	print_result_head();
	printf(" messages=%u interval_ms=%u received=%u p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "lost=%u\n",
	       bench.messages, bench.interval_ms, got, pct_ms(bench.perf_lat, got, 500),
	       pct_ms(bench.perf_lat, got, 990), got ? (double)bench.perf_lat[got - 1] / 1e6 : -1,
	       bench.messages - got);
	mosquitto_loop_stop(bench.mosq_sub, true);
	return got == bench.messages ? 0 : 1;
}

/* Correctness only: every client gets every message, once, in order. */
static int run_smoke(void)
{
	uint64_t lost, dups, reorders;
	uint32_t s, half = bench.messages / 2;
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
		pump_for_ms(bench.interval_ms);
	}
	for (; s < bench.messages; s++) {
		struct conn *c = &bench.conns[(uint32_t)rand() % bench.clients];

		n = snprintf(data, sizeof(data),
		             "{\"action\":\"broadcast\",\"seq\":%u,\"t\":%" PRIu64 "}", s,
		             now_ns());
		if (c->state != C_READY)
			c = &bench.conns[0];
		send_broadcast(c, data, (size_t)n);
		bench.published++;
		pump_for_ms(bench.interval_ms);
	}
	total_expected = (uint64_t)bench.clients * bench.messages;
	pump_until(all_delivered, now_ns() + 3000000000ull);
	check_conns(bench.messages, &lost, &dups, &reorders);
	print_result_head();
	printf(" messages=%u ready=%u expected=%" PRIu64 " delivered=%" PRIu64 " lost=%" PRIu64
	       " dup=%" PRIu64 " reorder=%" PRIu64 " failed=%u\n",
	       bench.messages, bench.nready, total_expected, bench.delivered, lost, dups, reorders,
	       bench.nfailed + bench.nclosed_early);
	if (lost || dups || reorders || bench.nready < bench.nconns || bench.nfailed ||
	    bench.nclosed_early) {
		fprintf(stderr,
		        "cable-bench: SMOKE FAILED (%" PRIu64 " lost, %" PRIu64
		        " duplicated, %" PRIu64 " out of order, %u not ready)\n",
		        lost, dups, reorders, bench.nconns - bench.nready);
		return 1;
	}
	fprintf(stderr, "cable-bench: smoke OK: %u clients x %u messages, none lost\n",
	        bench.clients, bench.messages);
	return 0;
}

int run_mode(enum mode m)
{
	static int (*const run[])(void) = {
	        [M_SMOKE] = run_smoke,     [M_BROADCAST] = run_broadcast,
	        [M_LATENCY] = run_latency, [M_THROUGHPUT] = run_throughput,
	        [M_IDLE] = run_idle,       [M_STORM] = run_storm,
	        [M_PERFORM] = run_perform, [M_HISTORY] = run_history,
	};

	return run[m]();
}
