/*
 * The history of reliable streams (AnyCable's extended protocol): for each MQTT topic
 * that is kept, the last messages with their offsets, bounded per topic (messages,
 * bytes, age) and in total (bytes).
 *
 * Offsets. A topic's offsets go up by one per message. When a topic's record is
 * created (its first kept message, or again after its history aged out), its first
 * offset is one more than the number of messages the store has ever appended, so an
 * offset never means two messages within one store (one epoch): a client holding a
 * position from the topic's earlier life asks for an offset below the lowest kept
 * one, and its request fails instead of skipping or repeating messages.
 *
 * Eviction. Every entry also sits on one list in append order. The oldest entry of the
 * whole store is always the oldest of its own topic, so the total byte cap and the age
 * limit evict from the head of that list in O(1) per entry; the per-topic limits evict
 * the topic's own oldest entry.
 *
 * Pure: no I/O, no globals, no clock (the caller passes `now`, Unix seconds). One
 * thread at a time.
 */
#ifndef CABLE_HISTORY_H
#define CABLE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable.h"

struct cable_history_limits {
	size_t messages;    /* per topic (100); 0 keeps nothing */
	size_t bytes;       /* per topic, payload + topic + overhead (1 MiB) */
	long long ttl;      /* seconds an entry is kept (300) */
	size_t total_bytes; /* the whole store (64 MiB) */
};

/* Bytes an entry counts beyond its payload (its bookkeeping, rounded). */
#define CABLE_HISTORY_ENTRY_OVERHEAD 64

struct cable_history_entry {
	struct cable_history_entry *older, *newer; /* the whole store, append order */
	struct cable_history_entry *next;          /* this topic, towards newer */
	struct cable_history_stream *stream;
	uint64_t seq;    /* position in the whole store's append order */
	uint64_t offset; /* in its topic */
	long long time;  /* Unix seconds when appended */
	bool retain;
	size_t len;
	char payload[]; /* len bytes, then a NUL */
};

struct cable_history_stream; /* one kept topic */

struct cable_history_stats {
	size_t streams, entries, bytes;
	uint64_t appended, evicted;
};

struct cable_history *cable_history_new(const struct cable_history_limits *limits);
void cable_history_free(struct cable_history *h);

/*
 * Append a message on `topic`; *offset gets its offset. Evicts what the limits require
 * (this topic's oldest first for the per-topic limits, the store's oldest for the total).
 * CABLE_EFULL: the message alone is over a limit (not kept; *offset is still a fresh
 * offset of the topic when the topic has a record, else 0). CABLE_ENOMEM.
 */
int cable_history_append(struct cable_history *h, const char *topic, size_t tlen,
                         const char *payload, size_t plen, bool retain, long long now,
                         uint64_t *offset);

/* Drop entries older than the ttl, and topic records left empty. */
void cable_history_expire(struct cable_history *h, long long now);

/*
 * A replay request for one topic, checked before anything is sent (all or nothing):
 *   by offset: entries with offset > `after`. CABLE_ENOTFOUND when the topic has no
 *     entry, when `after` is below the lowest kept offset minus one (a gap), or above
 *     the latest offset;
 *   by time (`by_time`): entries appended at or after `since`; a topic without entries
 *     gives none (CABLE_OK).
 * On CABLE_OK *first is the first entry to send (NULL: none); follow ->next.
 */
int cable_history_from_offset(const struct cable_history *h, const char *topic, size_t tlen,
                              uint64_t after, const struct cable_history_entry **first);
int cable_history_from_time(const struct cable_history *h, const char *topic, size_t tlen,
                            long long since, const struct cable_history_entry **first);

/* Topic text of an entry (NUL-terminated) and its length. */
const char *cable_history_topic(const struct cable_history_entry *e, size_t *len);

/* Calls fn for every topic that has a record (e.g. to match a wildcard filter). */
void cable_history_each_topic(const struct cable_history *h,
                              void (*fn)(const char *topic, size_t len, void *arg), void *arg);

void cable_history_stats(const struct cable_history *h, struct cable_history_stats *out);

#endif
