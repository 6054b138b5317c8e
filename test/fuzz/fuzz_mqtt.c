/*
 * libFuzzer target for plugin/core/mqtt.c: the input is a byte stream from the broker,
 * split into packets exactly as the gateway's internal client splits it. Decoding must
 * never read outside a packet, and a decoded PUBLISH must point inside it.
 */
#include <stdint.h>
#include <string.h>

#include "cable_mqtt.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cable_mqtt_packet pk;
	size_t off = 0, total;
	uint8_t buf[256];

	while (off < size) {
		if (cable_mqtt_packet_length(data + off, size - off, &total) != CABLE_OK)
			break;
		if (total > size - off)
			break;
		if (cable_mqtt_decode(data + off, total, &pk, NULL) == CABLE_OK &&
		    pk.type == CABLE_MQTT_PUBLISH) {
			CHECK((const uint8_t *)pk.topic > data + off);
			CHECK((const uint8_t *)pk.topic + pk.topic_len <= data + off + total);
			CHECK(pk.payload + pk.payload_len == data + off + total);
			CHECK(pk.topic_len > 0 && pk.qos < 3);
		}
		off += total;
	}
	/* The encoders with the input as strings: never past the buffer. */
	if (size > 0 && memchr(data, 0, size) != NULL) {
		const char *s = (const char *)data;

		CHECK(cable_mqtt_connect(buf, sizeof(buf), s, s, s, data, size, 60) <= sizeof(buf));
		CHECK(cable_mqtt_subscribe(buf, sizeof(buf), 1, s, data[0], size) <= sizeof(buf));
	}
	return 0;
}
