/*
 * The subscription index and fan-out. Gateway thread only.
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
#include "gateway_internal.h"

#include <mosquitto.h>

/* ---- Interned identifiers --------------------------------------------------------- */

struct ident *ident_get(struct gw *gw, const char *raw, size_t len)
{
	struct ident *id;
	bool added;

	HASH_FIND(hh, gw->idents, raw, len, id);
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
	GW_HASH_ADD(gw->idents, id->raw, id->raw_len, id, added);
	if (!added) {
		free(id->raw);
		free(id->json);
		free(id);
		return NULL;
	}
	return id;
}

static void ident_free(struct gw *gw, struct ident *id)
{
	HASH_DELETE(hh, gw->idents, id);
	cable_frame_unref(id->frame);
	cable_frame_unref(id->frame_ext);
	free(id->raw);
	free(id->json);
	free(id);
}

void ident_put(struct gw *gw, struct ident *id)
{
	if (id != NULL && --id->refs == 0)
		ident_free(gw, id);
}

/* ---- Routes ------------------------------------------------------------------------- */

static struct route *route_find(struct gw *gw, const char *filter, size_t len, bool wildcard)
{
	struct route *r;

	if (wildcard)
		return gw->wild ? cable_tree_get(gw->wild, filter, len) : NULL;
	HASH_FIND(hh, gw->exact, filter, len, r);
	return r;
}

static struct route *route_get(struct gw *gw, const char *filter)
{
	size_t len = strlen(filter);
	bool wildcard = cable_topic_has_wildcard(filter, len);
	struct route *r;
	bool added;

	r = route_find(gw, filter, len, wildcard);
	if (r)
		return r;
	r = calloc(1, sizeof(*r) + len + 1);
	if (r == NULL)
		return NULL;
	memcpy(r->filter, filter, len + 1);
	r->len = len;
	r->wildcard = wildcard;
	if (wildcard) {
		if (gw->wild == NULL)
			gw->wild = cable_tree_new();
		if (gw->wild == NULL ||
		    cable_tree_put(gw->wild, r->filter, r->len, r) != CABLE_OK) {
			free(r);
			return NULL;
		}
	} else {
		GW_HASH_ADD(gw->exact, r->filter, r->len, r, added);
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

	free(r->subs);
	free(r);
}

static void route_free_if_empty(struct gw *gw, struct route *r)
{
	if (r->nsubs > 0 || r->keep > 0)
		return;
	if (r->wildcard)
		cable_tree_del(gw->wild, r->filter, r->len);
	else
		HASH_DELETE(hh, gw->exact, r);
	route_free(r);
}

static int route_add(struct route *r, struct sub *sub, size_t link)
{
	struct sub **grown;

	grown = cable_grow(r->subs, r->nsubs, &r->cap, sizeof(*grown), 4);
	if (grown == NULL)
		return CABLE_ENOMEM;
	r->subs = grown;
	if (sub->ext)
		r->n_ext++;
	sub->links[link].route = r;
	sub->links[link].slot = r->nsubs;
	r->subs[r->nsubs++] = sub;
	return CABLE_OK;
}

/* Remove the sub's link `link` from its route in O(1): move the last entry into its slot. */
static void route_remove(struct route *r, struct sub *sub, size_t link)
{
	size_t slot = sub->links[link].slot, i;
	struct sub *moved;

	if (sub->ext)
		r->n_ext--;
	moved = r->subs[--r->nsubs];
	if (moved != sub || slot != r->nsubs) {
		r->subs[slot] = moved;
		/* The moved sub points at this route from one of its links: update that slot. */
		for (i = 0; i < moved->nlinks; i++) {
			if (moved->links[i].route == r && moved->links[i].slot == r->nsubs) {
				moved->links[i].slot = slot;
				break;
			}
		}
	}
	sub->links[link].route = NULL;
}

int sub_link_streams(struct gw *gw, struct sub *sub)
{
	size_t i, n = cable_binding_stream_count(sub->binding);
	struct route *r;

	sub->links = calloc(n ? n : 1, sizeof(*sub->links));
	if (sub->links == NULL)
		return CABLE_ENOMEM;
	sub->nlinks = n;
	for (i = 0; i < n; i++) {
		r = route_get(gw, cable_binding_stream(sub->binding, i));
		if (r == NULL || route_add(r, sub, i) != CABLE_OK) {
			if (r)
				route_free_if_empty(gw, r);
			sub->nlinks = i;
			sub_unlink_streams(gw, sub);
			return CABLE_ENOMEM;
		}
	}
	return CABLE_OK;
}

/* A route kept for a dropped session that can still be restored (ext.c). */
struct route *route_keep(struct gw *gw, const char *filter)
{
	struct route *r = route_get(gw, filter);

	if (r)
		r->keep++;
	return r;
}

void route_unkeep(struct gw *gw, struct route *r)
{
	r->keep--;
	route_free_if_empty(gw, r);
}

void sub_unlink_streams(struct gw *gw, struct sub *sub)
{
	size_t i;
	struct route *r;

	for (i = 0; i < sub->nlinks; i++) {
		r = sub->links[i].route;
		if (r == NULL)
			continue;
		route_remove(r, sub, i);
		route_free_if_empty(gw, r);
	}
	free(sub->links);
	sub->links = NULL;
	sub->nlinks = 0;
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
static struct cable_frame *frame_for(struct gw *gw, struct sub *sub, struct values *v, bool ext)
{
	struct ident *id = sub->ident;
	struct ident **grown;
	const char *value;
	size_t len;

	if (id->seq != gw->seq) {
		grown = cable_grow(gw->touched, gw->ntouched, &gw->touched_cap, sizeof(*grown), 16);
		if (grown == NULL)
			return NULL;
		gw->touched = grown;
		id->seq = gw->seq;
		gw->touched[gw->ntouched++] = id;
	} else if (ext ? id->frame_ext != NULL : id->frame != NULL) {
		return ext ? id->frame_ext : id->frame;
	}
	if (value_for(v, sub->deliver, &value, &len) != CABLE_OK) {
		gw->stats.binary_skipped++;
		return NULL; /* this identifier cannot carry this message */
	}
	if (ext && v->offset)
		return id->frame_ext = ext_frame(gw, sub, value, len, v->m, v->offset);
	if (ext)
		return id->frame_ext = cable_proto_message(id->json, id->json_len, value, len);
	return id->frame = cable_proto_message(id->json, id->json_len, value, len);
}

static void deliver_route(struct gw *gw, struct route *r, struct values *v)
{
	struct cable_frame *f;
	struct sub *sub;
	size_t i;

	for (i = 0; i < r->nsubs; i++) {
		sub = r->subs[i];
		if (sub->seq == gw->seq)
			continue;
		sub->seq = gw->seq;
		if (sub->acl_each && !sub_may_read(gw, sub, v->m))
			continue;
		f = frame_for(gw, sub, v, sub->ext);
		if (f == NULL)
			continue;
		gw->stats.deliveries++;
		if (sub->held == NULL || !ext_hold(sub, f, v->m, v->offset))
			session_send(sub->session, f);
	}
}

struct dispatch {
	struct gw *gw;
	size_t n;
	bool keep;  /* some matching route records history */
	bool nomem; /* gw->matched could not grow */
};

static void collect(struct dispatch *d, struct route *r)
{
	struct gw *gw = d->gw;
	struct route **grown;

	grown = cable_grow(gw->matched, d->n, &gw->matched_cap, sizeof(*grown), 16);
	if (grown == NULL) {
		d->nomem = true;
		return;
	}
	gw->matched = grown;
	gw->matched[d->n++] = r;
	if (r->n_ext || r->keep)
		d->keep = true;
}

static void collect_wild(void *route, void *arg)
{
	collect(arg, route);
}

void fanout_dispatch(struct gw *gw, const struct cable_msg *m)
{
	struct values v = {.m = m};
	struct dispatch d = {gw, 0, false, false};
	struct route *r;
	size_t i;

	gw->seq++;
	gw->stats.broadcasts++;
	/*
	 * The matching routes first, then the history (the offset every ext frame of this
	 * message carries), then delivery. The tree must not change while it is walked, nor
	 * routes while they are delivered to: session_send may close a slow session, but a
	 * closing session's subscriptions stay in place until lws reports it closed,
	 * outside this call, so no route is added or freed here.
	 */
	HASH_FIND(hh, gw->exact, m->topic, m->topic_len, r);
	if (r)
		collect(&d, r);
	if (gw->wild)
		cable_tree_match(gw->wild, m->topic, m->topic_len, collect_wild, &d);
	if (d.nomem)
		gw_log(gw, MOSQ_LOG_ERR, "out of memory: a message reached only some browsers");
	if (d.keep)
		ext_tracked(gw, m, &v.offset);
	for (i = 0; i < d.n; i++)
		deliver_route(gw, gw->matched[i], &v);
	/* Frames are cached only for the duration of one dispatch. */
	for (i = 0; i < gw->ntouched; i++) {
		cable_frame_unref(gw->touched[i]->frame);
		gw->touched[i]->frame = NULL;
		cable_frame_unref(gw->touched[i]->frame_ext);
		gw->touched[i]->frame_ext = NULL;
	}
	gw->ntouched = 0;
	free(v.plain);
	free(v.envelope);
	if (m->t_ns)
		metrics_observe_latency(gw, (double)(cable_now_ns() - m->t_ns) / 1e9);
}

/* Free the index and the interned identifiers (at shutdown, whatever still refers to them). */
void fanout_release(struct gw *gw)
{
	struct ident *id, *itmp;
	struct route *r, *tmp;

	HASH_ITER(hh, gw->exact, r, tmp)
	{
		HASH_DELETE(hh, gw->exact, r);
		route_free(r);
	}
	cable_tree_free(gw->wild, route_free);
	gw->wild = NULL;
	free(gw->touched);
	gw->touched = NULL;
	free(gw->matched);
	gw->matched = NULL;
	HASH_ITER(hh, gw->idents, id, itmp)
	{
		ident_free(gw, id);
	}
}
