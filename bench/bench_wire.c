/*
 * What cable-bench's connections say and hear: ActionCable commands (subscribe, the
 * broadcast perform), MQTT v3.1.1 packets at QoS 0 for Mosquitto's own WebSocket
 * listener, and the accounting of each data message that arrives (sequence, duplicates,
 * order, latency). Thread: main only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* ---- Tokens: HS256 JWT {sub, exp}, signed with the secret file's contents ---------- */

/* A token for user "bench<idx>", valid one hour, minted by the core. malloc'd. */
char *make_token(uint32_t idx)
{
	return mint_token(bench.secret, bench.secret_len, "bench", idx,
	                  (long long)time(NULL) + 3600);
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
size_t mqtt_connect(unsigned char *buf, const char *client_id)
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

	for (k = 0; k < bench.decoy_subs; k++) {
		n = snprintf(cmd, sizeof(cmd),
		             "{\"command\":\"subscribe\",\"identifier\":\"{\\\"channel\\\":"
		             "\\\"SensorChannel\\\",\\\"site\\\":\\\"d%u-%u\\\"}\"}",
		             c->idx, k);
		conn_send(c, cmd, (size_t)n, false);
	}
}

void send_subscribe(struct conn *c)
{
	static const char cmd[] =
	        "{\"command\":\"subscribe\",\"identifier\":\"" IDENTIFIER_ESC "\"}";
	unsigned char buf[128];

	if (bench.decoy_subs)
		send_decoy_subscribes(c);
	else if (bench.mode == M_HISTORY) {
		/* One topic per connection: ActuatorChannel id=idx streams actuators/<idx>/state.
		 */
		char cmd2[160];
		int n = snprintf(cmd2, sizeof(cmd2),
		                 "{\"command\":\"subscribe\",\"identifier\":\"{\\\"channel\\\":"
		                 "\\\"ActuatorChannel\\\",\\\"id\\\":%u}\"}",
		                 c->idx);
		conn_send(c, cmd2, (size_t)n, false);
	} else if (bench.proto == P_MQTT)
		conn_send(c, buf, mqtt_subscribe(buf, TOPIC), true);
	else
		conn_send(c, cmd, sizeof(cmd) - 1, false);
}

/*
 * Send `data` (a JSON object with "action":"broadcast" first) as the connection's
 * broadcast: a perform on ActionCable, a PUBLISH of the same object to bench/all on MQTT.
 */
void send_broadcast(struct conn *c, const char *data, size_t len)
{
	unsigned char *buf;
	char *esc, *p;
	size_t i, n;

	if (bench.proto == P_MQTT) {
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
const char *find(const char *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle));
}

uint64_t num_after(const char *hay, size_t len, const char *key, bool *ok)
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
	bench.nready++;
}

static void mark_welcomed(struct conn *c)
{
	if (c->state != C_CONNECTING)
		return;
	c->state = C_WELCOMED;
	c->t_welcome = now_ns();
	bench.nwelcomed++;
	if (bench.mode != M_STORM)
		send_subscribe(c);
}

/* A data message (stamped payload inside). */
static void on_data(struct conn *c, const char *data, size_t len)
{
	uint64_t t, seq, lat, now;
	uint32_t slot;
	bool ok1, ok2;

	if (bench.mode == M_BROADCAST) {
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
	bench.delivered++;
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
	if (bench.record_lat && bench.nlat < bench.lat_cap)
		bench.lat[bench.nlat++] = lat;
	if (bench.record_lat && c->ext && bench.lat_ext && bench.nlat_ext < bench.lat_cap)
		bench.lat_ext[bench.nlat_ext++] = lat;
	else if (bench.record_lat && !c->ext && bench.lat_v1 && bench.nlat_v1 < bench.lat_cap)
		bench.lat_v1[bench.nlat_v1++] = lat;
	if (bench.seq_count == NULL)
		return; /* perform mode: the sender's own copy */
	slot = (uint32_t)(seq % SEQ_RING);
	if (bench.seq_last && lat > bench.seq_last[slot])
		bench.seq_last[slot] = lat;
	if (++bench.seq_count[slot] == bench.clients)
		bench.completed++;
}

void on_text(struct conn *c, const char *in, size_t len)
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
				bench.nfailed++;
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
			bench.nfailed++;
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

/* MQTT over WebSocket is a byte stream: packets may span frames. */
void mqtt_stream(struct conn *c, const unsigned char *in, size_t len)
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
