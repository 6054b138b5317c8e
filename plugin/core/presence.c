/*
 * The presence registry (cable_presence.h). Pure.
 *
 * DESIGN
 * A room holds its records in a hash by id (uthash, in insertion order, which is the
 * order "info" lists them in). A record holds the keys of the connections that joined
 * as its id in a small array: a user has a few tabs open, not thousands. A record with
 * no connection left lingers: it sits in the registry's one heap by deadline, and
 * `slot` is its index there (CABLE_HEAP_NONE otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As in the gateway: uthash must never exit() the broker when out of memory. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "cable_heap.h"
#include "cable_presence.h"
#include "cable_proto.h"

struct record {
	UT_hash_handle hh;
	struct cable_presence_room *room;
	uintptr_t *conns;
	size_t nconns, cap;
	size_t slot; /* index in the deadline heap, CABLE_HEAP_NONE when not lingering */
	long long deadline;
	char *info; /* JSON text, NULL for none */
	size_t info_len;
	size_t id_len;
	char id[];
};

struct cable_presence_room {
	struct cable_presence *p;
	void *owner;
	struct record *records;
};

struct cable_presence {
	struct cable_heap lingering;
};

static bool earlier(const void *a, const void *b)
{
	return ((const struct record *)a)->deadline < ((const struct record *)b)->deadline;
}

static void set_slot(void *item, size_t index)
{
	((struct record *)item)->slot = index;
}

struct cable_presence *cable_presence_new(void)
{
	struct cable_presence *p = calloc(1, sizeof(*p));

	if (p)
		cable_heap_init(&p->lingering, earlier, set_slot);
	return p;
}

static void record_free(struct record *rec)
{
	free(rec->conns);
	free(rec->info);
	free(rec);
}

/* Take rec out of its room (and the heap) and free it. */
static void record_remove(struct record *rec)
{
	struct cable_presence_room *r = rec->room;

	if (rec->slot != CABLE_HEAP_NONE)
		cable_heap_remove(&r->p->lingering, rec->slot);
	HASH_DELETE(hh, r->records, rec);
	record_free(rec);
}

void cable_presence_free(struct cable_presence *p)
{
	struct record *rec;

	if (p == NULL)
		return;
	/* Rooms still alive are the caller's; their lingering records only leave the heap. */
	while ((rec = cable_heap_pop(&p->lingering)) != NULL)
		rec->slot = CABLE_HEAP_NONE;
	cable_heap_free(&p->lingering);
	free(p);
}

struct cable_presence_room *cable_presence_room_new(struct cable_presence *p, void *owner)
{
	struct cable_presence_room *r = calloc(1, sizeof(*r));

	if (r) {
		r->p = p;
		r->owner = owner;
	}
	return r;
}

void cable_presence_room_free(struct cable_presence_room *r)
{
	struct record *rec, *tmp;

	if (r == NULL)
		return;
	HASH_ITER(hh, r->records, rec, tmp)
	{
		record_remove(rec);
	}
	free(r);
}

static struct record *find(const struct cable_presence_room *r, const char *id, size_t id_len)
{
	struct record *rec;

	HASH_FIND(hh, r->records, id, id_len, rec);
	return rec;
}

static size_t conn_index(const struct record *rec, uintptr_t conn)
{
	size_t i;

	for (i = 0; i < rec->nconns; i++)
		if (rec->conns[i] == conn)
			return i;
	return SIZE_MAX;
}

static int set_info(struct record *rec, const char *info, size_t info_len)
{
	char *copy = NULL;

	if (info && info_len) {
		copy = malloc(info_len + 1);
		if (copy == NULL)
			return CABLE_ENOMEM;
		memcpy(copy, info, info_len);
		copy[info_len] = '\0';
	}
	free(rec->info);
	rec->info = copy;
	rec->info_len = copy ? info_len : 0;
	return CABLE_OK;
}

int cable_presence_join(struct cable_presence_room *r, uintptr_t conn, const char *id,
                        size_t id_len, const char *info, size_t info_len,
                        enum cable_presence_change *change)
{
	struct record *rec;
	uintptr_t *grown;
	bool added, fresh = false;

	if (id_len == 0)
		return CABLE_EINVAL;
	rec = find(r, id, id_len);
	if (rec == NULL) {
		rec = calloc(1, sizeof(*rec) + id_len + 1);
		if (rec == NULL)
			return CABLE_ENOMEM;
		memcpy(rec->id, id, id_len);
		rec->id_len = id_len;
		rec->room = r;
		rec->slot = CABLE_HEAP_NONE;
		if (set_info(rec, info, info_len) != CABLE_OK) {
			record_free(rec);
			return CABLE_ENOMEM;
		}
		fresh = true;
	} else if (set_info(rec, info, info_len) != CABLE_OK) {
		return CABLE_ENOMEM;
	}
	if (conn_index(rec, conn) == SIZE_MAX) {
		grown = cable_grow(rec->conns, rec->nconns, &rec->cap, sizeof(*grown), 2);
		if (grown == NULL) {
			if (fresh)
				record_free(rec);
			return CABLE_ENOMEM;
		}
		rec->conns = grown;
		rec->conns[rec->nconns++] = conn;
	}
	if (fresh) {
		HASH_ADD_KEYPTR(hh, r->records, rec->id, rec->id_len, rec);
		added = find(r, id, id_len) == rec;
		if (!added) {
			record_free(rec);
			return CABLE_ENOMEM;
		}
	}
	/* A lingering record taken back: it stays, silently. */
	if (rec->slot != CABLE_HEAP_NONE)
		cable_heap_remove(&r->p->lingering, rec->slot);
	*change = fresh ? CABLE_PRESENCE_JOINED : CABLE_PRESENCE_SAME;
	return CABLE_OK;
}

int cable_presence_leave(struct cable_presence_room *r, uintptr_t conn, const char *id,
                         size_t id_len, long long linger_until, enum cable_presence_change *change)
{
	struct record *rec = find(r, id, id_len);
	size_t i = rec ? conn_index(rec, conn) : SIZE_MAX;

	if (i == SIZE_MAX)
		return CABLE_ENOTFOUND;
	rec->conns[i] = rec->conns[--rec->nconns];
	*change = CABLE_PRESENCE_SAME;
	if (rec->nconns > 0)
		return CABLE_OK;
	if (linger_until != 0) {
		rec->deadline = linger_until;
		if (cable_heap_push(&r->p->lingering, rec) == CABLE_OK)
			return CABLE_OK;
		record_remove(rec);
		*change = CABLE_PRESENCE_LEFT;
		return CABLE_ENOMEM;
	}
	record_remove(rec);
	*change = CABLE_PRESENCE_LEFT;
	return CABLE_OK;
}

size_t cable_presence_total(const struct cable_presence_room *r)
{
	return HASH_COUNT(r->records);
}

long long cable_presence_next_deadline(const struct cable_presence *p)
{
	const struct record *rec = cable_heap_peek(&p->lingering);

	return rec ? rec->deadline : 0;
}

size_t cable_presence_expire(struct cable_presence *p, long long now,
                             void (*gone)(void *owner, const char *id, size_t id_len, void *arg),
                             void *arg)
{
	struct cable_presence_room *r;
	struct record *rec;
	size_t n = 0;

	while ((rec = cable_heap_peek(&p->lingering)) != NULL && rec->deadline <= now) {
		cable_heap_pop(&p->lingering);
		r = rec->room;
		HASH_DELETE(hh, r->records, rec);
		/* The record is out of the room first, so `gone` sees the room as it now is. */
		gone(r->owner, rec->id, rec->id_len, arg);
		record_free(rec);
		n++;
	}
	return n;
}

/* ---- Frame values --------------------------------------------------------------------- */

/* A growing buffer; `failed` sticks after the first error. */
struct buf {
	char *s;
	size_t len, cap;
	int failed;
};

static void put(struct buf *b, const char *s, size_t len)
{
	char *grown;
	size_t cap;

	if (b->failed)
		return;
	if (b->len + len + 1 > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < b->len + len + 1)
			cap *= 2;
		grown = realloc(b->s, cap);
		if (grown == NULL) {
			b->failed = CABLE_ENOMEM;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_string(struct buf *b, const char *s, size_t len)
{
	size_t n;
	char *q;

	if (b->failed)
		return;
	q = cable_proto_json_string(s, len, &n);
	if (q == NULL) {
		b->failed = CABLE_EINVAL;
		return;
	}
	put(b, q, n);
	free(q);
}

static int finish(struct buf *b, char **out, size_t *out_len)
{
	if (b->failed) {
		free(b->s);
		return b->failed;
	}
	*out = b->s;
	*out_len = b->len;
	return CABLE_OK;
}

static void put_member(struct buf *b, const struct record *rec)
{
	puts_(b, "\"id\":");
	put_string(b, rec->id, rec->id_len);
	if (rec->info) {
		puts_(b, ",\"info\":");
		put(b, rec->info, rec->info_len);
	}
}

int cable_presence_join_value(const struct cable_presence_room *r, const char *id, size_t id_len,
                              char **out, size_t *out_len)
{
	const struct record *rec = find(r, id, id_len);
	struct buf b = {0};

	if (rec == NULL)
		return CABLE_EINVAL;
	puts_(&b, "{\"type\":\"join\",");
	put_member(&b, rec);
	puts_(&b, "}");
	return finish(&b, out, out_len);
}

int cable_presence_leave_value(const char *id, size_t id_len, char **out, size_t *out_len)
{
	struct buf b = {0};

	puts_(&b, "{\"type\":\"leave\",\"id\":");
	put_string(&b, id, id_len);
	puts_(&b, "}");
	return finish(&b, out, out_len);
}

int cable_presence_info_value(const struct cable_presence_room *r, bool records, char **out,
                              size_t *out_len)
{
	const struct record *rec;
	struct buf b = {0};
	char num[32];

	snprintf(num, sizeof(num), "%zu", cable_presence_total(r));
	puts_(&b, "{\"type\":\"info\",\"total\":");
	puts_(&b, num);
	if (records && r->records) {
		puts_(&b, ",\"records\":[");
		for (rec = r->records; rec; rec = rec->hh.next) {
			puts_(&b, rec == r->records ? "{" : ",{");
			put_member(&b, rec);
			puts_(&b, "}");
		}
		puts_(&b, "]");
	}
	puts_(&b, "}");
	return finish(&b, out, out_len);
}

int cable_presence_error_value(char **out, size_t *out_len)
{
	struct buf b = {0};

	puts_(&b, "{\"type\":\"error\"}");
	return finish(&b, out, out_len);
}
