/*
 * The history of reliable streams; see cable_history.h. Pure; one thread at a time.
 */
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "cable_history.h"

struct cable_history_stream {
	UT_hash_handle hh;
	struct cable_history_entry *oldest, *newest;
	uint64_t last_offset; /* of the newest message appended, kept or not */
	size_t count, bytes;
	size_t tlen;
	char topic[];
};

struct cable_history {
	struct cable_history_limits lim;
	struct cable_history_stream *streams;
	struct cable_history_entry *oldest, *newest; /* the whole store */
	size_t entries, bytes, nstreams;
	uint64_t appended, evicted;
};

struct cable_history *cable_history_new(const struct cable_history_limits *limits)
{
	struct cable_history *h = calloc(1, sizeof(*h));

	if (h)
		h->lim = *limits;
	return h;
}

static size_t entry_cost(const struct cable_history_stream *st, size_t plen)
{
	return plen + st->tlen + CABLE_HISTORY_ENTRY_OVERHEAD;
}

static void stream_free(struct cable_history *h, struct cable_history_stream *st)
{
	HASH_DELETE(hh, h->streams, st);
	h->nstreams--;
	free(st);
}

/* Remove the oldest entry of its topic (which `e` must be). */
static void entry_drop(struct cable_history *h, struct cable_history_entry *e)
{
	struct cable_history_stream *st = e->stream;
	size_t cost = entry_cost(st, e->len);

	st->oldest = e->next;
	if (st->oldest == NULL)
		st->newest = NULL;
	st->count--;
	st->bytes -= cost;
	if (e->older)
		e->older->newer = e->newer;
	else
		h->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		h->newest = e->older;
	h->entries--;
	h->bytes -= cost;
	free(e);
}

void cable_history_free(struct cable_history *h)
{
	struct cable_history_stream *st, *tmp;

	if (h == NULL)
		return;
	while (h->oldest)
		entry_drop(h, h->oldest);
	HASH_ITER(hh, h->streams, st, tmp)
	{
		stream_free(h, st);
	}
	free(h);
}

static struct cable_history_stream *stream_find(const struct cable_history *h, const char *topic,
                                                size_t tlen)
{
	struct cable_history_stream *st;

	HASH_FIND(hh, h->streams, topic, tlen, st);
	return st;
}

int cable_history_append(struct cable_history *h, const char *topic, size_t tlen,
                         const char *payload, size_t plen, bool retain, long long now,
                         uint64_t *offset)
{
	struct cable_history_stream *st = stream_find(h, topic, tlen);
	struct cable_history_entry *e;
	size_t cost;
	bool added;

	*offset = 0;
	if (st == NULL) {
		st = calloc(1, sizeof(*st) + tlen + 1);
		if (st == NULL)
			return CABLE_ENOMEM;
		memcpy(st->topic, topic, tlen);
		st->tlen = tlen;
		/* Above any offset this topic had before (see cable_history.h). */
		st->last_offset = h->appended;
		HASH_ADD_KEYPTR(hh, h->streams, st->topic, st->tlen, st);
		added = h->streams != NULL;
		if (!added) {
			free(st);
			return CABLE_ENOMEM;
		}
		h->nstreams++;
	}
	h->appended++;
	*offset = ++st->last_offset;
	cost = entry_cost(st, plen);
	if (h->lim.messages == 0 || cost > h->lim.bytes || cost > h->lim.total_bytes) {
		/* Kept nowhere: the older entries would no longer be contiguous with it. */
		while (st->oldest)
			entry_drop(h, st->oldest), h->evicted++;
		return CABLE_EFULL;
	}
	e = malloc(sizeof(*e) + plen + 1);
	if (e == NULL) {
		while (st->oldest)
			entry_drop(h, st->oldest), h->evicted++;
		return CABLE_ENOMEM;
	}
	while (st->count >= h->lim.messages || st->bytes + cost > h->lim.bytes) {
		entry_drop(h, st->oldest);
		h->evicted++;
	}
	while (h->bytes + cost > h->lim.total_bytes) {
		entry_drop(h, h->oldest);
		h->evicted++;
	}
	e->stream = st;
	e->seq = h->appended;
	e->offset = *offset;
	e->time = now;
	e->retain = retain;
	e->len = plen;
	if (plen)
		memcpy(e->payload, payload, plen);
	e->payload[plen] = '\0';
	e->next = NULL;
	if (st->newest)
		st->newest->next = e;
	else
		st->oldest = e;
	st->newest = e;
	st->count++;
	st->bytes += cost;
	e->newer = NULL;
	e->older = h->newest;
	if (h->newest)
		h->newest->newer = e;
	else
		h->oldest = e;
	h->newest = e;
	h->entries++;
	h->bytes += cost;
	return CABLE_OK;
}

void cable_history_expire(struct cable_history *h, long long now)
{
	struct cable_history_stream *st, *tmp;

	while (h->oldest && h->oldest->time + h->lim.ttl <= now) {
		entry_drop(h, h->oldest);
		h->evicted++;
	}
	/*
	 * Records without entries go too (their offsets restart above every offset the
	 * store has given, so nothing is lost by forgetting them). Only when there are
	 * many more records than entries, so the walk stays amortised.
	 */
	if (h->nstreams > 64 && h->nstreams > 2 * h->entries) {
		HASH_ITER(hh, h->streams, st, tmp)
		{
			if (st->oldest == NULL)
				stream_free(h, st);
		}
	}
}

int cable_history_from_offset(const struct cable_history *h, const char *topic, size_t tlen,
                              uint64_t after, const struct cable_history_entry **first)
{
	const struct cable_history_stream *st = stream_find(h, topic, tlen);
	const struct cable_history_entry *e;

	*first = NULL;
	if (st == NULL || st->oldest == NULL)
		return CABLE_ENOTFOUND;
	if (after + 1 < st->oldest->offset || after > st->last_offset)
		return CABLE_ENOTFOUND;
	if (after >= st->newest->offset)
		return CABLE_OK; /* up to date (newer ones, if any, were not kept: caught above) */
	for (e = st->oldest; e && e->offset <= after; e = e->next)
		;
	*first = e;
	return CABLE_OK;
}

int cable_history_from_time(const struct cable_history *h, const char *topic, size_t tlen,
                            long long since, const struct cable_history_entry **first)
{
	const struct cable_history_stream *st = stream_find(h, topic, tlen);
	const struct cable_history_entry *e;

	*first = NULL;
	if (st == NULL)
		return CABLE_OK;
	for (e = st->oldest; e && e->time < since; e = e->next)
		;
	*first = e;
	return CABLE_OK;
}

const char *cable_history_topic(const struct cable_history_entry *e, size_t *len)
{
	*len = e->stream->tlen;
	return e->stream->topic;
}

void cable_history_each_topic(const struct cable_history *h,
                              void (*fn)(const char *topic, size_t len, void *arg), void *arg)
{
	const struct cable_history_stream *st;

	for (st = h->streams; st; st = st->hh.next)
		fn(st->topic, st->tlen, arg);
}

void cable_history_stats(const struct cable_history *h, struct cable_history_stats *out)
{
	out->streams = h->nstreams;
	out->entries = h->entries;
	out->bytes = h->bytes;
	out->appended = h->appended;
	out->evicted = h->evicted;
}
