/*
 * The last-value cache: the broker's retained messages, as the gateway's internal
 * client receives them (docs/architecture.md, "Last values"), so that a browser's new
 * subscription can be answered with the current value of each topic it covers.
 *
 * Bounded in entries and bytes (each entry counts its topic, its payload and a fixed
 * overhead). At either limit a new topic is not stored, and a topic whose new value
 * does not fit loses its old one: the cache never answers with a value the broker no
 * longer holds; it may answer with nothing. Such refusals are counted.
 *
 * Pure: no I/O, no globals, no threads. Thread: one owner (the gateway thread).
 */
#ifndef CABLE_RETAINED_H
#define CABLE_RETAINED_H

#include <stddef.h>
#include <stdint.h>

#include "cable.h"

struct cable_retained;

struct cable_retained_entry {
	const char *topic; /* NUL-terminated */
	size_t topic_len;
	const char *payload; /* NUL-terminated for convenience */
	size_t payload_len;
	uint8_t qos;
};

struct cable_retained_stats {
	size_t entries, bytes;
	uint64_t refused; /* values not stored (or dropped) because of the limits */
};

/* Bytes an entry costs beyond its topic and payload (the limit counts them too). */
size_t cable_retained_overhead(void);

/* max_entries and max_bytes must be > 0. NULL on ENOMEM. */
struct cable_retained *cable_retained_new(size_t max_entries, size_t max_bytes);
void cable_retained_free(struct cable_retained *r); /* accepts NULL */
void cable_retained_clear(struct cable_retained *r);

/*
 * A retained message as the broker now holds it: an empty payload deletes the topic.
 * CABLE_OK, or CABLE_EFULL / CABLE_ENOMEM when it was not stored (the topic then has
 * no entry).
 */
int cable_retained_apply(struct cable_retained *r, const char *topic, size_t topic_len,
                         const void *payload, size_t payload_len, uint8_t qos);

/* The entry of exactly this topic, or NULL. Valid until the next apply/clear. */
const struct cable_retained_entry *cable_retained_get(const struct cable_retained *r,
                                                      const char *topic, size_t topic_len);

/*
 * Call fn for every entry whose topic the filter matches (cable_topic_matches), in no
 * particular order. A filter without wildcards is a single lookup; one with wildcards
 * visits every entry. fn must not change the cache.
 */
void cable_retained_each(const struct cable_retained *r, const char *filter, size_t filter_len,
                         void (*fn)(const struct cable_retained_entry *e, void *arg), void *arg);

void cable_retained_stats(const struct cable_retained *r, struct cable_retained_stats *out);

#endif
