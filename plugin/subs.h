/*
 * A session's channel subscriptions: subscribe and unsubscribe, the ACL and budget
 * checks, and re-binding after a reload. Each subscription is an entry of the index
 * (fanout.h), which sees it only as that entry. subs.c alone writes struct gw_subs.
 * Gateway thread.
 */
#ifndef CABLE_SUBS_H
#define CABLE_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable_chanmap.h"
#include "cable_proto.h"
#include "cable_queue.h"
#include "fanout.h"
#include "gw_hash.h"

struct gw;
struct session;
struct answer_slot; /* answer.c */
struct held;        /* ext.c */
struct room;        /* room.c */

struct sub {
	UT_hash_handle hh;        /* in session->subs, keyed by entry.ident->raw */
	struct index_entry entry; /* what the index knows; entry.owner is this sub */
	struct session *session;
	struct cable_binding *binding;
	bool acl_topic_ok;   /* the cached ACL answer for acl_topic (entry.check_each) */
	bool replay_pending; /* subscribed before the internal client synchronised (state.c) */
	char *acl_topic;
	struct answer_slot *answer; /* NULL until it performs an action that is answered */
	size_t cost;                /* its share of the subscription budgets (sub_cost in subs.c) */
	struct held *held;          /* restored, waiting for its history command (ext.c) */
	struct room *room;          /* room.c; NULL unless the channel has presence or whisper */
	uint32_t room_slot;         /* index in room->subs */
	bool joined;                /* present in the room's presence (as presence_id) */
	bool presence_aware;        /* used a presence command: presence frames go to it */
};

struct gw_subs {
	uint64_t subscribes, rejects;
	uint64_t subscriptions; /* current */
};

/*
 * A new subscription to identifier `id`, bound, authorized and linked, without a reply
 * (subs_subscribe's, and a session restore's in ext.c). NULL with the reason in err.
 */
struct sub *sub_create(struct session *s, const char *id, size_t len, struct cable_error *err);

void subs_subscribe(struct session *s, const struct cable_cmd *cmd);
void subs_unsubscribe(struct session *s, const struct cable_cmd *cmd);

/* Remove every subscription of a closed session. */
void subs_clear(struct session *s);

/* Re-resolve every subscription against new rules (after a reload). */
void subs_rebind_all(struct gw *gw);

/* May this subscription's user read m's topic (the ACL allows part of a stream)? */
bool sub_may_read(struct sub *sub, const struct cable_msg *m);

/* The index's callbacks (fanout.h), entry.owner being a struct sub, ctx the gateway. */
extern const struct index_ops subs_index_ops;

#endif
