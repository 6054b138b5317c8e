/*
 * cable-soak's random source (xorshift64*, seeded from --seed) and its topics and
 * channels, as config/channels.example.json defines them:
 *
 * Channel ch < A is ActuatorChannel id=ch (streams actuators/ch/state and
 * actuators/ch/cmd; speak publishes to actuators/ch/cmd); channel A + s is SensorChannel
 * site="s<s>" (stream sites/s<s>/sensors/#, envelope delivery). Device topic k < A is
 * actuators/k/state; topic A + s * S + j is sites/s<s>/sensors/t<j>.
 *
 * Thread: main (rnd is the browser thread's; the topics are read by the devices after
 * make_topics, which runs before they start).
 */
#include <math.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

/* xorshift64*: the browser thread's only random source (--seed makes a run repeatable). */
uint64_t rng_state;

uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/* Exponentially distributed delay with the given mean, capped at 4x the mean. */
uint64_t rnd_exp_ns(uint32_t mean_ms)
{
	double u = (double)(rnd() >> 11) / 9007199254740992.0, v;

	if (u < 1e-6)
		u = 1e-6;
	v = -log(u);
	if (v > 4)
		v = 4;
	return (uint64_t)(v * (double)MS(mean_ms));
}

uint64_t rnd_range_ns(uint32_t lo_ms, uint32_t hi_ms)
{
	return MS(lo_ms) + (hi_ms > lo_ms ? (uint64_t)rnd_below(hi_ms - lo_ms) * 1000000ull : 0);
}

struct topic *topics;

uint32_t ntopics, nchannels;

char **id_esc; /* per channel: the identifier as it appears inside a JSON string */
size_t *id_esc_len;

void make_topics(void)
{
	uint32_t k, s, j, ch;
	char id[128], *e, *p;

	nchannels = opt.actuators + opt.sites;
	ntopics = opt.actuators + opt.sites * opt.sensors;
	topics = xcalloc(ntopics, sizeof(*topics));
	for (k = 0; k < opt.actuators; k++) {
		snprintf(topics[k].name, sizeof(topics[k].name), "actuators/%u/state", k);
		topics[k].ch = k;
	}
	for (s = 0; s < opt.sites; s++)
		for (j = 0; j < opt.sensors; j++) {
			k = opt.actuators + s * opt.sensors + j;
			snprintf(topics[k].name, sizeof(topics[k].name), "sites/s%u/sensors/t%u", s,
			         j);
			topics[k].ch = opt.actuators + s;
		}
	id_esc = xcalloc(nchannels, sizeof(*id_esc));
	id_esc_len = xcalloc(nchannels, sizeof(*id_esc_len));
	for (ch = 0; ch < nchannels; ch++) {
		if (ch < opt.actuators)
			snprintf(id, sizeof(id), "{\"channel\":\"ActuatorChannel\",\"id\":%u}", ch);
		else
			snprintf(id, sizeof(id), "{\"channel\":\"SensorChannel\",\"site\":\"s%u\"}",
			         ch - opt.actuators);
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
int channel_of(const char *p, size_t len)
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
		return digits && v < opt.actuators ? (int)v : -1;
	}
	if ((q = memmem(p, len, "SensorChannel\\\",\\\"site\\\":\\\"s", 28)) != NULL) {
		q += 28;
		while (q < end && *q >= '0' && *q <= '9') {
			v = v * 10 + (uint32_t)(*q++ - '0');
			digits = true;
		}
		return digits && v < opt.sites ? (int)(opt.actuators + v) : -1;
	}
	return -1;
}

/* The number after `key` (e.g. "\"seq\":"), or -1. */
int64_t num_after(const char *p, size_t len, const char *key)
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
