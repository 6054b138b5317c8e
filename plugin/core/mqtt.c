/*
 * MQTT 5 client codec (see include/cable_mqtt.h). Pure: no I/O, no allocation.
 */
#include <string.h>

#include "cable_mqtt.h"

/* ---- Encoding ----------------------------------------------------------------------- */

struct out {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void put_u8(struct out *o, uint8_t v)
{
	put(o, &v, 1);
}

static void put_u16(struct out *o, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(o, b, 2);
}

static size_t varint_len(uint32_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void put_varint(struct out *o, uint32_t v)
{
	do {
		uint8_t b = v & 0x7f;

		v >>= 7;
		put_u8(o, v ? (uint8_t)(b | 0x80) : b);
	} while (v);
}

static void put_str(struct out *o, const void *s, size_t n)
{
	if (n > 65535) {
		o->overflow = true;
		return;
	}
	put_u16(o, (uint16_t)n);
	put(o, s, n);
}

/* Fixed header for a body of body bytes; false if it cannot be expressed. */
static bool put_header(struct out *o, uint8_t first, size_t body)
{
	if (body > CABLE_MQTT_MAX_REMAINING)
		return false;
	put_u8(o, first);
	put_varint(o, (uint32_t)body);
	return true;
}

static size_t finish(struct out *o)
{
	return o->overflow ? 0 : o->len;
}

size_t cable_mqtt_connect(uint8_t *buf, size_t cap, const char *client_id, const char *username,
                          const char *auth_method, const void *auth_data, size_t auth_len,
                          uint16_t keepalive)
{
	struct out o = {buf, cap, 0, false};
	size_t props = 0, body;
	uint8_t flags = 0x02; /* clean start */

	if (auth_method) {
		props += 1 + 2 + strlen(auth_method);
		if (auth_data)
			props += 1 + 2 + auth_len;
	}
	if (username)
		flags |= 0x80;
	body = 2 + 4 + 1 + 1 + 2 + varint_len((uint32_t)props) + props + 2 + strlen(client_id) +
	       (username ? 2 + strlen(username) : 0);
	if (props > 65535 * 3 || !put_header(&o, CABLE_MQTT_CONNECT << 4, body))
		return 0;
	put_str(&o, "MQTT", 4);
	put_u8(&o, 5);
	put_u8(&o, flags);
	put_u16(&o, keepalive);
	put_varint(&o, (uint32_t)props);
	if (auth_method) {
		put_u8(&o, 0x15);
		put_str(&o, auth_method, strlen(auth_method));
		if (auth_data) {
			put_u8(&o, 0x16);
			put_str(&o, auth_data, auth_len);
		}
	}
	put_str(&o, client_id, strlen(client_id));
	if (username)
		put_str(&o, username, strlen(username));
	return finish(&o);
}

size_t cable_mqtt_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *filter,
                            uint8_t options, uint32_t sub_id)
{
	struct out o = {buf, cap, 0, false};
	size_t props = sub_id ? 1 + varint_len(sub_id) : 0, body;

	if (sub_id > CABLE_MQTT_MAX_REMAINING || packet_id == 0)
		return 0;
	body = 2 + varint_len((uint32_t)props) + props + 2 + strlen(filter) + 1;
	if (!put_header(&o, (CABLE_MQTT_SUBSCRIBE << 4) | 0x02, body))
		return 0;
	put_u16(&o, packet_id);
	put_varint(&o, (uint32_t)props);
	if (sub_id) {
		put_u8(&o, 0x0B);
		put_varint(&o, sub_id);
	}
	put_str(&o, filter, strlen(filter));
	put_u8(&o, options & 0x3c); /* QoS 0; no local, retain as published, retain handling */
	return finish(&o);
}

static size_t two_bytes(uint8_t *buf, size_t cap, uint8_t first)
{
	if (cap < 2)
		return 0;
	buf[0] = first;
	buf[1] = 0;
	return 2;
}

size_t cable_mqtt_pingreq(uint8_t *buf, size_t cap)
{
	return two_bytes(buf, cap, CABLE_MQTT_PINGREQ << 4);
}

size_t cable_mqtt_disconnect(uint8_t *buf, size_t cap)
{
	return two_bytes(buf, cap, CABLE_MQTT_DISCONNECT << 4);
}

/* ---- Decoding ----------------------------------------------------------------------- */

/* A variable byte integer at *p (< end). CABLE_OK, CABLE_EFULL (truncated), CABLE_EPROTO. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
	uint32_t value = 0;
	int i;

	for (i = 0; i < 4; i++) {
		if (*p >= end)
			return CABLE_EFULL;
		value |= (uint32_t)(**p & 0x7f) << (7 * i);
		if ((*(*p)++ & 0x80) == 0) {
			*v = value;
			return CABLE_OK;
		}
	}
	return CABLE_EPROTO;
}

int cable_mqtt_packet_length(const uint8_t *buf, size_t len, size_t *total)
{
	const uint8_t *p = buf + 1;
	uint32_t rem;
	int rc;

	if (len < 2)
		return CABLE_EFULL;
	rc = get_varint(&p, buf + len, &rem);
	if (rc != CABLE_OK)
		return rc;
	*total = (size_t)(p - buf) + rem;
	return CABLE_OK;
}

struct in {
	const uint8_t *p, *end;
	bool bad;
};

static size_t left(const struct in *in)
{
	return (size_t)(in->end - in->p);
}

static uint8_t get_u8(struct in *in)
{
	if (in->bad || left(in) < 1) {
		in->bad = true;
		return 0;
	}
	return *in->p++;
}

static uint16_t get_u16(struct in *in)
{
	uint16_t hi = get_u8(in);

	return (uint16_t)((hi << 8) | get_u8(in));
}

static const uint8_t *get_bytes(struct in *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->bad || left(in) < n) {
		in->bad = true;
		return NULL;
	}
	in->p += n;
	return p;
}

static uint32_t get_vbi(struct in *in)
{
	uint32_t v = 0;

	if (in->bad || get_varint(&in->p, in->end, &v) != CABLE_OK)
		in->bad = true;
	return v;
}

/* Walk a property block; remember the first subscription identifier. */
static void get_properties(struct in *in, uint32_t *sub_id)
{
	uint32_t len = get_vbi(in);
	struct in props;
	uint8_t id;
	uint32_t v;

	if (in->bad || len > left(in)) {
		in->bad = true;
		return;
	}
	props.p = in->p;
	props.end = in->p + len;
	props.bad = false;
	in->p += len;
	while (!props.bad && left(&props) > 0) {
		id = get_u8(&props);
		switch (id) {
		case 0x01:
		case 0x17:
		case 0x19:
		case 0x24:
		case 0x25:
		case 0x28:
		case 0x29:
		case 0x2A:
			get_u8(&props);
			break;
		case 0x13:
		case 0x21:
		case 0x22:
		case 0x23:
			get_u16(&props);
			break;
		case 0x02:
		case 0x11:
		case 0x18:
		case 0x27:
			get_bytes(&props, 4);
			break;
		case 0x0B:
			v = get_vbi(&props);
			if (v == 0)
				props.bad = true;
			else if (sub_id && *sub_id == 0)
				*sub_id = v;
			break;
		case 0x03:
		case 0x08:
		case 0x09:
		case 0x12:
		case 0x15:
		case 0x16:
		case 0x1A:
		case 0x1C:
		case 0x1F:
			get_bytes(&props, get_u16(&props));
			break;
		case 0x26:
			get_bytes(&props, get_u16(&props));
			get_bytes(&props, get_u16(&props));
			break;
		default:
			props.bad = true;
		}
	}
	if (props.bad)
		in->bad = true;
}

int cable_mqtt_decode(const uint8_t *buf, size_t len, struct cable_mqtt_packet *out,
                      struct cable_error *err)
{
	struct cable_mqtt_packet pk;
	struct in in;
	size_t total;
	uint32_t rem;

	if (cable_mqtt_packet_length(buf, len, &total) != CABLE_OK || total != len)
		return cable_error_set(err, CABLE_EPROTO, "bad packet length");
	memset(&pk, 0, sizeof(pk));
	pk.type = (enum cable_mqtt_type)(buf[0] >> 4);
	pk.flags = buf[0] & 0x0f;
	in.p = buf + 1;
	in.end = buf + len;
	in.bad = false;
	rem = get_vbi(&in);
	(void)rem;
	switch (pk.type) {
	case CABLE_MQTT_CONNACK:
		get_u8(&in); /* acknowledge flags */
		pk.reason = get_u8(&in);
		if (left(&in))
			get_properties(&in, NULL);
		break;
	case CABLE_MQTT_PUBLISH: {
		uint16_t tlen;

		pk.qos = (pk.flags >> 1) & 3;
		pk.retain = pk.flags & 1;
		pk.dup = (pk.flags >> 3) & 1;
		if (pk.qos == 3)
			return cable_error_set(err, CABLE_EPROTO, "PUBLISH with QoS 3");
		tlen = get_u16(&in);
		pk.topic = (const char *)get_bytes(&in, tlen);
		pk.topic_len = tlen;
		if (pk.qos)
			pk.id = get_u16(&in);
		get_properties(&in, &pk.sub_id);
		if (in.bad)
			break;
		pk.payload = in.p;
		pk.payload_len = left(&in);
		in.p = in.end;
		if (pk.topic_len == 0 || memchr(pk.topic, 0, pk.topic_len))
			return cable_error_set(err, CABLE_EPROTO, "PUBLISH with a bad topic");
		break;
	}
	case CABLE_MQTT_PUBACK:
	case CABLE_MQTT_PUBREC:
	case CABLE_MQTT_PUBREL:
	case CABLE_MQTT_PUBCOMP:
	case CABLE_MQTT_UNSUBACK:
		pk.id = get_u16(&in);
		in.p = in.end; /* reason codes and properties: not needed */
		break;
	case CABLE_MQTT_SUBACK:
		pk.id = get_u16(&in);
		get_properties(&in, NULL);
		pk.reason = get_u8(&in);
		in.p = in.end;
		break;
	case CABLE_MQTT_PINGRESP:
		break;
	case CABLE_MQTT_DISCONNECT:
	case CABLE_MQTT_AUTH:
		if (left(&in))
			pk.reason = get_u8(&in);
		if (left(&in))
			get_properties(&in, NULL);
		break;
	default:
		return cable_error_set(err, CABLE_EPROTO, "unexpected packet type %d", pk.type);
	}
	if (in.bad || left(&in) != 0)
		return cable_error_set(err, CABLE_EPROTO, "malformed packet of type %d", pk.type);
	*out = pk;
	return CABLE_OK;
}
