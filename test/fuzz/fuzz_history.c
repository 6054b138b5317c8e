/*
 * libFuzzer target for plugin/core/history.c.
 *
 * The input is a program: each byte pair is an operation (append on one of 8 topics
 * with a payload length, advance the clock and expire, replay by offset or by time).
 * After every step the store's invariants hold: offsets of a topic go up by one along
 * its entries and never go down, the byte counts stay within the limits, a replay by
 * offset returns exactly the entries above the asked offset.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cable_history.h"
#include "fuzz.h"

#define TOPICS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cable_history_limits lim = {6, 900, 20, 2500};
	struct cable_history *h = cable_history_new(&lim);
	const struct cable_history_entry *e;
	struct cable_history_stats st;
	uint64_t last[TOPICS] = {0}, off;
	static const char payload[512];
	char topic[3] = {'t', '/', 0};
	long long now = 1;
	size_t i;
	int rc, t;

	CHECK(h != NULL);
	for (i = 0; i + 1 < size; i += 2) {
		t = data[i] & (TOPICS - 1);
		topic[2] = (char)('a' + t);
		switch (data[i] >> 6) {
		case 0:
		case 1:
			rc = cable_history_append(h, topic, 3, payload, data[i + 1] * 2u,
			                          data[i] & 8, now, &off);
			CHECK(rc == CABLE_OK || rc == CABLE_EFULL);
			CHECK(off > last[t]);
			last[t] = off;
			break;
		case 2:
			now += data[i + 1] & 31;
			cable_history_expire(h, now);
			break;
		default:
			if (data[i + 1] & 1) {
				rc = cable_history_from_time(h, topic, 3, now - (data[i + 1] >> 1),
				                             &e);
				CHECK(rc == CABLE_OK);
				for (; e; e = e->next)
					CHECK(e->time >= now - (data[i + 1] >> 1));
			} else {
				uint64_t after = last[t] >= data[i + 1] / 16
				                         ? last[t] - data[i + 1] / 16
				                         : 0;

				rc = cable_history_from_offset(h, topic, 3, after, &e);
				CHECK(rc == CABLE_OK || rc == CABLE_ENOTFOUND);
				if (rc == CABLE_OK && e)
					CHECK(e->offset == after + 1);
				for (; rc == CABLE_OK && e; e = e->next) {
					CHECK(e->offset > after);
					CHECK(e->next == NULL || e->next->offset == e->offset + 1);
					CHECK(e->next != NULL || e->offset == last[t]);
				}
			}
			break;
		}
		cable_history_stats(h, &st);
		CHECK(st.bytes <= lim.total_bytes);
		CHECK(st.entries <= TOPICS * lim.messages);
	}
	cable_history_free(h);
	return 0;
}
