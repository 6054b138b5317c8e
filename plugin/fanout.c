/*
 * The subscription index and fan-out (fanout.h). Gateway thread only. fanout.c alone
 * writes struct gw_index; it sees subscribers only as struct index_entry and reaches
 * them through the index's callbacks (struct index_ops), so it includes no session
 * header.
 *
 * A message is matched against routes: exact topics by hash, filters with wildcards
 * in a topic tree (cable_tree.h), so a message costs nothing for the wildcard filters
 * it does not match. For each subscriber the frame
 * {"identifier":...,"message":...} is encoded once per distinct identifier and
 * shared, by reference, by every connection that has that identifier: the cost per
 * receiver is a pointer push, whatever the payload size.
 */
#include <stdlib.h>
#include <string.h>

#include "cable_clock.h"
#include "cable_proto.h"
#include "cable_topic.h"
#include "cable_tree.h"
#include "bridge.h" /* gw_log, with ix->ctx */
#include "fanout.h"

#include <mosquitto.h>

/* ---- Interned identifiers --------------------------------------------------------- */

void index_init(struct gw_index *ix, const struct index_ops *ops, void *ctx)
{
	ix->ops = ops;
	ix->ctx = ctx;
}

struct ident *ident_get(struct gw_index *ix, const char *raw, size_t len)
{
	struct ident *id;
	bool added;

	HASH_FIND(hh, ix->idents, raw, len, id);
	if (id) {
		id->refs++;
		return id;
	}
	id = calloc(1, sizeof(*id));
	if (id == NULL)
		return NULL;
	id->raw = malloc(len + 1);
	id->json = cable_proto_json_string(raw, len, &id->json_len);
	if (id->raw == NULL || id->json == NULL) {
		free(id->raw);
		free(id->json);
		free(id);
		return NULL;
	}
	memcpy(id->raw, raw, len);
	id->raw[len] = '\0';
	id->raw_len = len;
	id->refs = 1;
	GW_HASH_ADD(ix->idents, id->raw, id->raw_len, id, added);
	if (!added) {
		free(id->raw);
		free(id->json);
		free(id);
		return NULL;
	}
	return id;
}

static void ident_free(struct gw_index *ix, struct ident *id)
{
	HASH_DELETE(hh, ix->idents, id);
	cable_frame_unref(id->frame);
	cable_frame_unref(id->frame_ext);
	free(id->raw);
	free(id->json);
	free(id);
}

void ident_put(struct gw_index *ix, struct ident *id)
{
	if (id != NULL && --id->refs == 0)
		ident_free(ix, id);
}

/* ---- Routes ------------------------------------------------------------------------- */

static struct route *route_find(struct gw_index *ix, const char *filter, size_t len, bool wildcard)
{
	struct route *r;

	if (wildcard)
		return ix->wild ? cable_tree_get(ix->wild, filter, len) : NULL;
	HASH_FIND(hh, ix->exact, filter, len, r);
	return r;
}

static struct route *route_get(struct gw_index *ix, const char *filter)
{
	size_t len = strlen(filter);
	bool wildcard = cable_topic_has_wildcard(filter, len);
	struct route *r;
	bool added;

	r = route_find(ix, filter, len, wildcard);
	if (r)
		return r;
	r = calloc(1, sizeof(*r) + len + 1);
	if (r == NULL)
		return NULL;
	memcpy(r->filter, filter, len + 1);
	r->len = len;
	r->wildcard = wildcard;
	if (wildcard) {
		if (ix->wild == NULL)
			ix->wild = cable_tree_new();
		if (ix->wild == NULL ||
		    cable_tree_put(ix->wild, r->filter, r->len, r) != CABLE_OK) {
			free(r);
			return NULL;
		}
	} else {
		GW_HASH_ADD(ix->exact, r->filter, r->len, r, added);
		if (!added) {
			free(r);
			return NULL;
		}
	}
	return r;
}

static void route_free(void *route)
{
	struct route *r = route;

	free(r->entries);
	free(r);
}

static void route_free_if_empty(struct gw_index *ix, struct route *r)
{
	if (r->n > 0)
		return;
	if (r->wildcard)
		cable_tree_del(ix->wild, r->filter, r->len);
	else
		HASH_DELETE(hh, ix->exact, r);
	route_free(r);
}

static int route_add(struct gw_index *ix, struct route *r, struct index_entry *e, size_t link)
{
	struct index_entry **grown;

	grown = cable_grow(r->entries, r->n, &r->cap, sizeof(*grown), 4);
	if (grown == NULL)
		return CABLE_ENOMEM;
	r->entries = grown;
	if (e->ext && r->n_ext++ == 0)
		r->tracked = ix->ops->interest(ix->ctx, r->filter, r->len, true);
	e->links[link].route = r;
	e->links[link].slot = r->n;
	r->entries[r->n++] = e;
	return CABLE_OK;
}

/* Remove the entry's link `link` from its route in O(1): move the last entry into its slot. */
static void route_remove(struct gw_index *ix, struct route *r, struct index_entry *e, size_t link)
{
	size_t slot = e->links[link].slot, i;
	struct index_entry *moved;

	if (e->ext && --r->n_ext == 0 && r->tracked) {
		ix->ops->interest(ix->ctx, r->filter, r->len, false);
		r->tracked = false;
	}
	moved = r->entries[--r->n];
	if (moved != e || slot != r->n) {
		r->entries[slot] = moved;
		/* The moved entry points at this route from one of its links: update that slot. */
		for (i = 0; i < moved->nlinks; i++) {
			if (moved->links[i].route == r && moved->links[i].slot == r->n) {
				moved->links[i].slot = slot;
				break;
			}
		}
	}
	e->links[link].route = NULL;
}

int index_link(struct gw_index *ix, struct index_entry *e, const struct cable_binding *b)
{
	size_t i, n = cable_binding_stream_count(b);
	struct route *r;

	e->links = calloc(n ? n : 1, sizeof(*e->links));
	if (e->links == NULL)
		return CABLE_ENOMEM;
	e->nlinks = n;
	for (i = 0; i < n; i++) {
		r = route_get(ix, cable_binding_stream(b, i));
		if (r == NULL || route_add(ix, r, e, i) != CABLE_OK) {
			if (r)
				route_free_if_empty(ix, r);
			e->nlinks = i;
			index_unlink(ix, e);
			return CABLE_ENOMEM;
		}
	}
	return CABLE_OK;
}

void index_unlink(struct gw_index *ix, struct index_entry *e)
{
	size_t i;
	struct route *r;

	for (i = 0; i < e->nlinks; i++) {
		r = e->links[i].route;
		if (r == NULL)
			continue;
		route_remove(ix, r, e, i);
		route_free_if_empty(ix, r);
	}
	free(e->links);
	e->links = NULL;
	e->nlinks = 0;
}

/* ---- Dispatch ----------------------------------------------------------------------- */

/* The "message" values of the message being dispatched, computed at most once each. */
struct values {
	const struct cable_msg *m;
	uint64_t offset; /* in the topic's history; 0: not recorded */
	char *plain, *envelope;
	size_t plain_len, envelope_len;
	int plain_rc, envelope_rc;
	bool plain_done, envelope_done;
};

static int value_for(struct values *v, enum cable_deliver how, const char **out, size_t *len)
{
	if (how == CABLE_DELIVER_ENVELOPE) {
		if (!v->envelope_done) {
			v->envelope_rc = cable_proto_envelope_value(
			        v->m->topic, v->m->topic_len, v->m->payload, v->m->payload_len,
			        v->m->retain, &v->envelope, &v->envelope_len);
			v->envelope_done = true;
		}
		*out = v->envelope;
		*len = v->envelope_len;
		return v->envelope_rc;
	}
	if (!v->plain_done) {
		v->plain_rc = cable_proto_payload_value(v->m->payload, v->m->payload_len, &v->plain,
		                                        &v->plain_len);
		v->plain_done = true;
	}
	*out = v->plain;
	*len = v->plain_len;
	return v->plain_rc;
}

/*
 * The frame for this identifier and message, built once per identifier: the v1 form, or
 * for ext connections the form with stream_id, epoch and offset (when it is recorded).
 */
static struct cable_frame *frame_for(struct gw_index *ix, struct index_entry *e, struct values *v,
                                     bool ext)
{
	struct ident *id = e->ident;
	struct ident **grown;
	const char *value;
	size_t len;

	if (id->seq != ix->seq) {
		grown = cable_grow(ix->touched, ix->ntouched, &ix->touched_cap, sizeof(*grown), 16);
		if (grown == NULL)
			return NULL;
		ix->touched = grown;
		id->seq = ix->seq;
		ix->touched[ix->ntouched++] = id;
	} else if (ext ? id->frame_ext != NULL : id->frame != NULL) {
		return ext ? id->frame_ext : id->frame;
	}
	if (value_for(v, e->deliver, &value, &len) != CABLE_OK) {
		ix->binary_skipped++;
		return NULL; /* this identifier cannot carry this message */
	}
	if (ext && v->offset)
		return id->frame_ext = ix->ops->ext_frame(e->owner, value, len, v->m, v->offset);
	if (ext)
		return id->frame_ext = cable_proto_message(id->json, id->json_len, value, len);
	return id->frame = cable_proto_message(id->json, id->json_len, value, len);
}

static void deliver_route(struct gw_index *ix, struct route *r, struct values *v)
{
	struct cable_frame *f;
	struct index_entry *e;
	size_t i;

	for (i = 0; i < r->n; i++) {
		e = r->entries[i];
		if (e->seq == ix->seq || v->m->seq <= e->since)
			continue;
		e->seq = ix->seq;
		if (e->check_each && !ix->ops->may_read(e->owner, v->m))
			continue;
		f = frame_for(ix, e, v, e->ext);
		if (f == NULL)
			continue;
		ix->deliveries++;
		ix->ops->deliver(e->owner, f, v->m, v->offset);
	}
}

struct dispatch {
	struct gw_index *ix;
	size_t n;
	bool nomem; /* ix->matched could not grow */
};

static void collect(struct dispatch *d, struct route *r)
{
	struct gw_index *ix = d->ix;
	struct route **grown;

	grown = cable_grow(ix->matched, d->n, &ix->matched_cap, sizeof(*grown), 16);
	if (grown == NULL) {
		d->nomem = true;
		return;
	}
	ix->matched = grown;
	ix->matched[d->n++] = r;
}

static void collect_wild(void *route, void *arg)
{
	collect(arg, route);
}

const double index_latency_bounds[LATENCY_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

static void observe_latency(struct gw_index *ix, double seconds)
{
	size_t i;

	ix->latency_count++;
	ix->latency_sum += seconds;
	for (i = 0; i < LATENCY_BUCKETS; i++) {
		if (seconds <= index_latency_bounds[i])
			ix->latency_bucket[i]++;
	}
}

void fanout_dispatch(struct gw_index *ix, const struct cable_msg *m)
{
	struct values v = {.m = m, .offset = m->offset};
	struct dispatch d = {ix, 0, false};
	struct route *r;
	size_t i;

	ix->seq++;
	ix->last_seq = m->seq;
	ix->broadcasts++;
	/*
	 * The matching routes first, then delivery (ext frames with the offset shard 0 gave
	 * the message, ext_record). The tree must not change while it is walked, nor
	 * routes while they are delivered to: session_send may close a slow session, but a
	 * closing session's subscriptions stay in place until lws reports it closed,
	 * outside this call, so no route is added or freed here.
	 */
	HASH_FIND(hh, ix->exact, m->topic, m->topic_len, r);
	if (r)
		collect(&d, r);
	if (ix->wild)
		cable_tree_match(ix->wild, m->topic, m->topic_len, collect_wild, &d);
	if (d.nomem)
		gw_log(ix->ctx, MOSQ_LOG_ERR,
		       "out of memory: a message reached only some browsers");
	for (i = 0; i < d.n; i++)
		deliver_route(ix, ix->matched[i], &v);
	/* Frames are cached only for the duration of one dispatch. */
	for (i = 0; i < ix->ntouched; i++) {
		cable_frame_unref(ix->touched[i]->frame);
		ix->touched[i]->frame = NULL;
		cable_frame_unref(ix->touched[i]->frame_ext);
		ix->touched[i]->frame_ext = NULL;
	}
	ix->ntouched = 0;
	free(v.plain);
	free(v.envelope);
	if (m->t_ns)
		observe_latency(ix, (double)(cable_now_ns() - m->t_ns) / 1e9);
}

/* Free the index and the interned identifiers (at shutdown, whatever still refers to them). */
void fanout_release(struct gw_index *ix)
{
	struct ident *id, *itmp;
	struct route *r, *tmp;

	HASH_ITER(hh, ix->exact, r, tmp)
	{
		HASH_DELETE(hh, ix->exact, r);
		route_free(r);
	}
	cable_tree_free(ix->wild, route_free);
	ix->wild = NULL;
	free(ix->touched);
	ix->touched = NULL;
	free(ix->matched);
	ix->matched = NULL;
	HASH_ITER(hh, ix->idents, id, itmp)
	{
		ident_free(ix, id);
	}
}
