/*
 * cable-soak's MQTT side: NDEV device clients publish stamped, numbered messages at
 * --rate from a thread of their own (device_main), and a probe subscriber measures
 * publish-to-receive latency per phase on libmosquitto's network thread.
 */
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

struct soak_mqtt mq = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void dev_on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	(void)obj;
	if (rc == 0)
		atomic_fetch_add(&mq.connected, 1);
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
	atomic_fetch_add(&mq.probe_ready, 1);
}

static void probe_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	uint64_t now = now_ns();
	int64_t t, lat_us;
	int ph;

	(void)m;
	(void)obj;
	if (strcmp(msg->topic, "soak/marker") == 0) {
		atomic_store(&mq.marker_seen,
		             num_after(msg->payload, (size_t)msg->payloadlen, "\"m\":"));
		return;
	}
	t = num_after(msg->payload, (size_t)msg->payloadlen, "\"t\":");
	if (t < 0)
		return;
	atomic_fetch_add(&mq.probe_rx, 1);
	lat_us = (int64_t)(now - (uint64_t)t) / 1000;
	if (lat_us < 0)
		lat_us = 0;
	ph = atomic_load(&mq.phase);
	pthread_mutex_lock(&mq.lock);
	if (mq.nlat[ph] < mq.cap[ph])
		mq.lat[ph][mq.nlat[ph]++] = (uint32_t)(lat_us > UINT32_MAX ? UINT32_MAX : lat_us);
	if (ph == PH_SOAK && lat_us > (int64_t)atomic_load(&mq.spike_us) &&
	    mq.nspikes < mq.spike_cap)
		mq.spikes[mq.nspikes++] = (uint64_t)t;
	pthread_mutex_unlock(&mq.lock);
}

/* Connect the probe and the devices (before any browser socket: libmosquitto's loop uses
 * select(), so its descriptors must stay below FD_SETSIZE). */
void mqtt_start(void)
{
	uint64_t deadline = now_ns() + MS(10000);
	size_t per_phase;
	char id[64];
	int i;

	/* Latency samples: the rate times each phase's length, with room. */
	per_phase = (size_t)opt.rate * (opt.duration_s + opt.idle_s + opt.settle_s + 120) + 10000;
	for (i = 0; i < PH_N; i++) {
		mq.cap[i] = per_phase;
		mq.lat[i] = xcalloc(per_phase, sizeof(uint32_t));
	}
	mq.spike_cap = per_phase / 10;
	mq.spikes = xcalloc(mq.spike_cap, sizeof(*mq.spikes));
	atomic_store(&mq.spike_us, UINT32_MAX);
	snprintf(id, sizeof(id), "soak-probe-%d", (int)getpid());
	mq.probe = mqtt_client_start(
	        id,
	        &(struct mqtt_callbacks){probe_on_connect, probe_on_subscribe, probe_on_message},
	        opt.host, opt.mqtt_port, 30);
	for (i = 0; i < NDEV; i++) {
		snprintf(id, sizeof(id), "soak-device-%d-%d", (int)getpid(), i);
		mq.dev[i] = mqtt_client(id);
		mosquitto_connect_callback_set(mq.dev[i], dev_on_connect);
		if (mosquitto_connect(mq.dev[i], opt.host, opt.mqtt_port, 30) != MOSQ_ERR_SUCCESS)
			die("device %d cannot connect to MQTT", i);
		mosquitto_loop_start(mq.dev[i]);
	}
	while (atomic_load(&mq.connected) < NDEV || atomic_load(&mq.probe_ready) < 3) {
		if (now_ns() > deadline)
			die("MQTT devices/probe did not connect and subscribe");
		usleep(2000);
	}
}

/* The devices: --rate messages per second, round robin over the topics, each topic's
 * messages numbered 1, 2, 3... from its own device client (so in order on the wire). */
void *device_main(void *arg)
{
	char buf[512], pad[1024];
	uint64_t next = now_ns(), interval = 1000000000ull / (opt.rate ? opt.rate : 1), i = 0, now;
	struct timespec ts;
	uint32_t k;
	long long seq;
	int n;

	(void)arg;
	memset(pad, 'x', sizeof(pad));
	pad[opt.pad < sizeof(pad) ? opt.pad : sizeof(pad) - 1] = '\0';
	while (!atomic_load(&mq.stop)) {
		k = (uint32_t)(i++ % ntopics);
		seq = atomic_load(&topics[k].started) + 1;
		atomic_store(&topics[k].started,
		             seq); /* before the publish: see healthy must_from */
		n = snprintf(buf, sizeof(buf),
		             "{\"dev\":%u,\"seq\":%lld,\"t\":%" PRIu64 ",\"pad\":\"%s\"}", k, seq,
		             now_ns(), pad);
		if (mosquitto_publish(mq.dev[k % NDEV], NULL, topics[k].name, n, buf, 0, false) !=
		    MOSQ_ERR_SUCCESS)
			atomic_fetch_add(&mq.publish_errors, 1);
		atomic_fetch_add(&mq.published, 1);
		next += interval;
		now = now_ns();
		if (next > now) {
			ts.tv_sec = (time_t)(next / 1000000000ull);
			ts.tv_nsec = (long)(next % 1000000000ull);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		} else if (now - next > MS(100)) {
			atomic_fetch_add(&mq.late, 1); /* this thread was held up: do not burst */
			next = now;
		}
	}
	return NULL;
}

void set_phase(enum phase p)
{
	atomic_store(&mq.phase, (int)p);
}

/* p50/p99/max of a phase's latencies in ms, over [from, n). */
void lat_stats(int ph, size_t from, double *p50, double *p99, double *max, size_t *count)
{
	uint32_t *v;
	size_t n;

	pthread_mutex_lock(&mq.lock);
	n = mq.nlat[ph] > from ? mq.nlat[ph] - from : 0;
	v = xcalloc(n, sizeof(*v));
	memcpy(v, mq.lat[ph] + from, n * sizeof(*v));
	pthread_mutex_unlock(&mq.lock);
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
bool broker_round_trip(void)
{
	char buf[64];
	uint64_t deadline = now_ns() + MS(5000);
	long long m = (long long)(now_ns() % 1000000000ull) + 1;
	int n = snprintf(buf, sizeof(buf), "{\"m\":%lld}", m);

	if (mosquitto_publish(mq.dev[0], NULL, "soak/marker", n, buf, 0, false) != MOSQ_ERR_SUCCESS)
		return false;
	while (now_ns() < deadline) {
		if (atomic_load(&mq.marker_seen) == m)
			return true;
		usleep(1000);
	}
	return false;
}
