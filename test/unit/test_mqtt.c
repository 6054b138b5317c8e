/*
 * The MQTT 5 client codec: encodings byte for byte, the decoder on packets as the
 * broker sends them, truncated and malformed input.
 */
#include <string.h>

#include "cable.h"
#include "cable_mqtt.h"
#include "test.h"

static void test_connect_bytes(void)
{
	uint8_t buf[128];
	static const uint8_t want[] = {0x10, 27, /* CONNECT, remaining length */
	                               0,    4,  'M',  'Q', 'T',
	                               'T',  5,  0x82, 0,   60, /* protocol, v5, user+clean, 60 s */
	                               9,                       /* properties */
	                               0x15, 0,  1,    'm', 0x16,
	                               0,    2,  's',  'k', /* auth method "m", data "sk" */
	                               0,    2,  'i',  'd', /* client id */
	                               0,    1,  'u'};      /* username */
	size_t n = cable_mqtt_connect(buf, sizeof(buf), "id", "u", "m", "sk", 2, 60);

	ASSERT_EQ(n, sizeof(want));
	ASSERT_MEM_EQ(buf, want, sizeof(want));
	ASSERT_EQ(cable_mqtt_connect(buf, 10, "id", "u", "m", "sk", 2, 60), 0);
}

static void test_subscribe_bytes(void)
{
	uint8_t buf[64];
	static const uint8_t want[] = {0x82, 9, 0, 7, 2, 0x0B, 1, 0, 1, '#', 0x08};
	size_t n = cable_mqtt_subscribe(buf, sizeof(buf), 7, "#",
	                                CABLE_MQTT_SUB_RETAIN_AS_PUBLISHED, 1);

	ASSERT_EQ(n, sizeof(want));
	ASSERT_MEM_EQ(buf, want, sizeof(want));
	ASSERT_EQ(cable_mqtt_subscribe(buf, sizeof(buf), 0, "#", 0, 1), 0); /* id 0 is invalid */
	ASSERT_EQ(cable_mqtt_pingreq(buf, sizeof(buf)), 2);
	ASSERT_EQ(buf[0], 0xC0);
	ASSERT_EQ(cable_mqtt_disconnect(buf, 1), 0);
}

static void test_decode_publish(void)
{
	/* QoS 0, retain, topic "a/b", properties: sub id 1, user property, payload "hi". */
	static const uint8_t pub[] = {0x31, 18, 0, 3,   'a', '/', 'b', 10,  0x0B, 1,
	                              0x26, 0,  1, 'k', 0,   2,   'v', 'v', 'h',  'i'};
	struct cable_mqtt_packet pk;
	size_t total;

	ASSERT_OK(cable_mqtt_packet_length(pub, sizeof(pub), &total));
	ASSERT_EQ(total, sizeof(pub));
	ASSERT_OK(cable_mqtt_decode(pub, sizeof(pub), &pk, NULL));
	ASSERT_EQ(pk.type, CABLE_MQTT_PUBLISH);
	ASSERT_TRUE(pk.retain);
	ASSERT_EQ(pk.qos, 0);
	ASSERT_EQ(pk.topic_len, 3);
	ASSERT_MEM_EQ(pk.topic, "a/b", 3);
	ASSERT_EQ(pk.payload_len, 2);
	ASSERT_MEM_EQ(pk.payload, "hi", 2);
	ASSERT_EQ(pk.sub_id, 1);
	/* Every shorter prefix is incomplete or malformed, never a packet. */
	for (size_t i = 0; i < sizeof(pub); i++) {
		if (cable_mqtt_packet_length(pub, i, &total) == CABLE_OK)
			ASSERT_GT(total, i);
		ASSERT_EQ(cable_mqtt_decode(pub, i, &pk, NULL), CABLE_EPROTO);
	}
}

static void test_decode_control(void)
{
	static const uint8_t connack[] = {0x20, 3, 0, 0, 0};
	static const uint8_t refused[] = {0x20, 3, 0, 0x87, 0};
	static const uint8_t suback[] = {0x90, 4, 0, 7, 0, 0};
	static const uint8_t pingresp[] = {0xD0, 0};
	static const uint8_t disc[] = {0xE0, 1, 0x8E};
	struct cable_mqtt_packet pk;

	ASSERT_OK(cable_mqtt_decode(connack, sizeof(connack), &pk, NULL));
	ASSERT_EQ(pk.type, CABLE_MQTT_CONNACK);
	ASSERT_EQ(pk.reason, 0);
	ASSERT_OK(cable_mqtt_decode(refused, sizeof(refused), &pk, NULL));
	ASSERT_EQ(pk.reason, 0x87);
	ASSERT_OK(cable_mqtt_decode(suback, sizeof(suback), &pk, NULL));
	ASSERT_EQ(pk.type, CABLE_MQTT_SUBACK);
	ASSERT_EQ(pk.id, 7);
	ASSERT_EQ(pk.reason, 0);
	ASSERT_OK(cable_mqtt_decode(pingresp, sizeof(pingresp), &pk, NULL));
	ASSERT_EQ(pk.type, CABLE_MQTT_PINGRESP);
	ASSERT_OK(cable_mqtt_decode(disc, sizeof(disc), &pk, NULL));
	ASSERT_EQ(pk.type, CABLE_MQTT_DISCONNECT);
	ASSERT_EQ(pk.reason, 0x8E);
}

static void test_decode_malformed(void)
{
	static const uint8_t longlen[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t qos3[] = {0x36, 5, 0, 1, 'a', 0, 0};
	static const uint8_t badprop[] = {0x30, 6, 0, 1, 'a', 2, 0x7f, 0};
	static const uint8_t proplen[] = {0x30, 5, 0, 1, 'a', 9, 0};
	static const uint8_t notopic[] = {0x30, 3, 0, 0, 0};
	static const uint8_t subid0[] = {0x30, 6, 0, 1, 'a', 2, 0x0B, 0};
	static const uint8_t connect[] = {0x10, 0};
	struct cable_mqtt_packet pk;
	struct cable_error err = {0};
	size_t total;

	ASSERT_EQ(cable_mqtt_packet_length(longlen, sizeof(longlen), &total), CABLE_EPROTO);
	ASSERT_EQ(cable_mqtt_decode(qos3, sizeof(qos3), &pk, &err), CABLE_EPROTO);
	ASSERT_EQ(cable_mqtt_decode(badprop, sizeof(badprop), &pk, &err), CABLE_EPROTO);
	ASSERT_EQ(cable_mqtt_decode(proplen, sizeof(proplen), &pk, &err), CABLE_EPROTO);
	ASSERT_EQ(cable_mqtt_decode(notopic, sizeof(notopic), &pk, &err), CABLE_EPROTO);
	ASSERT_EQ(cable_mqtt_decode(subid0, sizeof(subid0), &pk, &err), CABLE_EPROTO);
	ASSERT_EQ(cable_mqtt_decode(connect, sizeof(connect), &pk, &err), CABLE_EPROTO);
	ASSERT_TRUE(err.text[0] != '\0');
}

TEST_MAIN(TEST(test_connect_bytes), TEST(test_subscribe_bytes), TEST(test_decode_publish),
          TEST(test_decode_control), TEST(test_decode_malformed))
