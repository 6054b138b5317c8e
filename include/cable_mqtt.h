/*
 * A small MQTT 5 client codec: just what the gateway's internal client of the broker
 * needs (see docs/architecture.md, "Last values"). It encodes CONNECT (with MQTT 5
 * enhanced authentication), SUBSCRIBE (with a subscription identifier and options),
 * PINGREQ and DISCONNECT, and decodes whatever the broker sends (CONNACK, SUBACK,
 * PUBLISH with its properties, PINGRESP, DISCONNECT, ...).
 *
 * Pure: no I/O, no allocation. Encoders write into the caller's buffer and return the
 * length, 0 if it does not fit. The decoder works on (pointer, length): it reports a
 * complete packet with pointers into the input, asks for more bytes, or refuses
 * malformed input (the caller then drops the connection).
 *
 * Thread: any. Fuzzed by test/fuzz/fuzz_mqtt.c.
 */
#ifndef CABLE_MQTT_H
#define CABLE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable.h"

enum cable_mqtt_type {
	CABLE_MQTT_CONNECT = 1,
	CABLE_MQTT_CONNACK = 2,
	CABLE_MQTT_PUBLISH = 3,
	CABLE_MQTT_PUBACK = 4,
	CABLE_MQTT_PUBREC = 5,
	CABLE_MQTT_PUBREL = 6,
	CABLE_MQTT_PUBCOMP = 7,
	CABLE_MQTT_SUBSCRIBE = 8,
	CABLE_MQTT_SUBACK = 9,
	CABLE_MQTT_UNSUBSCRIBE = 10,
	CABLE_MQTT_UNSUBACK = 11,
	CABLE_MQTT_PINGREQ = 12,
	CABLE_MQTT_PINGRESP = 13,
	CABLE_MQTT_DISCONNECT = 14,
	CABLE_MQTT_AUTH = 15,
};

/* Subscription options (MQTT 5, 3.8.3.1). */
#define CABLE_MQTT_SUB_NO_LOCAL            0x04
#define CABLE_MQTT_SUB_RETAIN_AS_PUBLISHED 0x08

/* The largest remaining length MQTT can express. */
#define CABLE_MQTT_MAX_REMAINING 268435455u

/* A decoded packet; pointers point into the decoder's input. */
struct cable_mqtt_packet {
	enum cable_mqtt_type type;
	uint8_t flags;  /* low nibble of the fixed header */
	uint8_t reason; /* CONNACK, SUBACK (first granted QoS / reason), DISCONNECT */
	uint16_t id;    /* packet identifier (PUBLISH with QoS > 0, SUBACK, ...) */
	/* PUBLISH */
	const char *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain, dup;
	uint32_t sub_id; /* the first subscription identifier, 0 if none */
};

/*
 * CONNECT, MQTT 5, clean start, with an Authentication Method and Data (enhanced
 * authentication) when auth_method is not NULL. username may be NULL.
 */
size_t cable_mqtt_connect(uint8_t *buf, size_t cap, const char *client_id, const char *username,
                          const char *auth_method, const void *auth_data, size_t auth_len,
                          uint16_t keepalive);

/* SUBSCRIBE to one filter at QoS 0 with options and a subscription identifier (0: none). */
size_t cable_mqtt_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *filter,
                            uint8_t options, uint32_t sub_id);

/* PINGREQ and DISCONNECT (normal) are two bytes each. */
size_t cable_mqtt_pingreq(uint8_t *buf, size_t cap);
size_t cable_mqtt_disconnect(uint8_t *buf, size_t cap);

/*
 * The total length of the packet at the start of buf (fixed header included):
 * CABLE_OK with *total set; CABLE_EFULL if more bytes are needed to tell; CABLE_EPROTO
 * if the length field is malformed.
 */
int cable_mqtt_packet_length(const uint8_t *buf, size_t len, size_t *total);

/*
 * Decode one complete packet of exactly len bytes (as sized by cable_mqtt_packet_length).
 * CABLE_OK, or CABLE_EPROTO for a malformed packet (err says what).
 */
int cable_mqtt_decode(const uint8_t *buf, size_t len, struct cable_mqtt_packet *out,
                      struct cable_error *err);

#endif
