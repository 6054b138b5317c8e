/*
 * A session's channel subscriptions (subs.h): subscribe (limits, the channel map's
 * binding, the ACL for every stream, the memory budgets) and unsubscribe, re-binding
 * every subscription after a reload, and the callbacks through which the index
 * (fanout.c) reaches a subscription. subs.c alone writes struct gw_subs and a session's
 * subscription table. Gateway thread.
 */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "counter.h"
#include "gw.h"
static void reply(struct session *s, struct cable_frame *(*enc)(const char *, size_t),
                  const char *id, size_t len)
{
	struct cable_frame *f = enc(id, len);

	if (enc == cable_proto_reject)
		s->gw->subs.rejects++;
	send_frame(s, f);
	cable_frame_unref(f);
}

/*
 * The ACL's answer for every stream of a binding (no ACL file: allowed). DENY if any
 * stream is not readable; *each is set when some stream is only partly readable.
 */
static int authorize_streams(struct session *s, const struct cable_binding *b, bool *each,
                             struct cable_error *err)
{
	const struct cable_acl *acl = s->gw->rules->acl;
	const char *stream;
	size_t i;

	*each = false;
	if (acl == NULL)
		return CABLE_OK;
	for (i = 0; i < cable_binding_stream_count(b); i++) {
		stream = cable_binding_stream(b, i);
		switch (cable_acl_subscribe(acl, &s->who, stream, strlen(stream))) {
		case CABLE_ACL_ALLOW:
			break;
		case CABLE_ACL_PARTIAL:
			*each = true;
			break;
		default:
			return cable_error_set(err, CABLE_EDENIED,
			                       "the ACL does not let user %s read '%s'",
			                       s->who.user, stream);
		}
	}
	return CABLE_OK;
}

bool sub_may_read(struct sub *sub, const struct cable_msg *m)
{
	char *copy;
	bool ok;

	if (sub->acl_topic && strcmp(sub->acl_topic, m->topic) == 0)
		return sub->acl_topic_ok;
	ok = cable_acl_check(sub->session->gw->rules->acl, &sub->session->who, CABLE_ACL_READ,
	                     m->topic, m->topic_len) == CABLE_ACL_ALLOW;
	copy = strdup(m->topic);
	free(sub->acl_topic);
	sub->acl_topic = copy;
	sub->acl_topic_ok = ok;
	return ok;
}

static void sub_free(struct gw *gw, struct sub *sub)
{
	ext_sub_gone(gw, sub);
	/* Unsubscribe implies leave; a dropped connection's user lingers for the TTL. */
	room_detach(gw, sub, sub->session->dropped);
	index_unlink(&gw->index, &sub->entry);
	answer_forget(gw, sub);
	cable_binding_free(sub->binding);
	ident_put(&gw->index, sub->entry.ident);
	free(sub->acl_topic);
	free(sub);
}

static void sub_remove(struct session *s, struct sub *sub)
{
	HASH_DELETE(hh, s->subs, sub);
	s->sub_bytes -= sub->cost;
	auth_user_refund(s, sub->cost);
	s->nsubs--;
	s->gw->subs.subscriptions--;
	sub_free(s->gw, sub);
}

/*
 * What a subscription holds, as charged to plugin_opt_max_subscription_bytes(_per_user):
 * the identifier twice (as sent, and JSON-encoded for replies and messages), each
 * stream topic, and the bookkeeping around them. An estimate, close to what malloc
 * hands out; shared identifiers and routes are charged to every subscription.
 */
#define SUB_OVERHEAD 256 /* allocator headers, hash handles, the binding */

static size_t sub_cost(size_t identifier_len, const struct cable_binding *b)
{
	size_t cost = sizeof(struct sub) + sizeof(struct ident) + 2 * identifier_len + SUB_OVERHEAD;

	for (size_t i = 0; i < cable_binding_stream_count(b); i++)
		cost += 2 * strlen(cable_binding_stream(b, i)) + sizeof(struct index_link) +
		        sizeof(struct route) + SUB_OVERHEAD;
	return cost + room_cost(b); /* presence and whisper */
}

/*
 * A subscription of this cost fits the connection's and the user's budgets; the user's
 * is charged now (auth_user_refund gives it back).
 */
static bool within_sub_budget(struct session *s, size_t cost, struct cable_error *err)
{
	const struct cable_gateway_config *cfg = &s->gw->cfg;

	if (s->sub_bytes + cost > cfg->max_sub_bytes) {
		cable_error_set(err, CABLE_EFULL,
		                "its subscriptions would hold more than %zu bytes "
		                "(plugin_opt_max_subscription_bytes)",
		                cfg->max_sub_bytes);
		return false;
	}
	if (!auth_user_charge(s, cost)) {
		cable_error_set(err, CABLE_EFULL,
		                "the user's subscriptions would hold more than %zu bytes "
		                "(plugin_opt_max_subscription_bytes_per_user)",
		                cfg->max_user_sub_bytes);
		return false;
	}
	return true;
}

/*
 * A new subscription to identifier `id`, bound, authorized and linked, without a reply
 * (do_subscribe's, and a session restore's in ext.c). NULL with the reason in err.
 */
struct sub *sub_create(struct session *s, const char *id, size_t len, struct cable_error *err)
{
	struct cable_binding *b = NULL;
	struct sub *sub;
	bool each, added;
	size_t cost;

	if (s->nsubs >= s->gw->cfg.max_subscriptions) {
		cable_error_set(err, CABLE_EFULL, "limit of %zu subscriptions reached",
		                s->gw->cfg.max_subscriptions);
		return NULL;
	}
	if (len > s->gw->cfg.max_identifier) {
		cable_error_set(
		        err, CABLE_EFULL,
		        "identifier of %zu bytes, over %zu (plugin_opt_max_identifier_size)", len,
		        s->gw->cfg.max_identifier);
		return NULL;
	}
	if (cable_chanmap_bind(s->gw->rules->chanmap, id, len, &s->who, s->sid, &b, err) !=
	    CABLE_OK)
		return NULL;
	if (authorize_streams(s, b, &each, err) != CABLE_OK) {
		cable_binding_free(b);
		return NULL;
	}
	cost = sub_cost(len, b);
	if (!within_sub_budget(s, cost, err)) {
		cable_binding_free(b);
		return NULL;
	}
	sub = calloc(1, sizeof(*sub));
	if (sub == NULL)
		goto nomem;
	sub->cost = cost;
	sub->entry.check_each = each;
	sub->session = s;
	sub->entry.owner = sub;
	sub->entry.ext = s->ext != NULL;
	sub->binding = b;
	sub->entry.deliver = cable_binding_deliver(b);
	sub->entry.ident = ident_get(&s->gw->index, id, len);
	if (sub->entry.ident == NULL || index_link(&s->gw->index, &sub->entry, b) != CABLE_OK) {
		ident_put(&s->gw->index, sub->entry.ident);
		free(sub);
		goto nomem;
	}
	if (room_attach(s->gw, sub) != CABLE_OK) {
		sub_free(s->gw, sub); /* the binding with it */
		b = NULL;
		goto nomem;
	}
	GW_HASH_ADD(s->subs, sub->entry.ident->raw, sub->entry.ident->raw_len, sub, added);
	if (!added) {
		sub_free(s->gw, sub); /* the binding with it */
		b = NULL;
		goto nomem;
	}
	s->nsubs++;
	s->sub_bytes += cost;
	s->gw->subs.subscriptions++;
	s->gw->subs.subscribes++;
	ext_sub_added(sub); /* restorable by its session id (ext.c) */
	return sub;
nomem:
	auth_user_refund(s, cost);
	cable_binding_free(b);
	cable_error_set(err, CABLE_ENOMEM, "out of memory");
	return NULL;
}

void subs_subscribe(struct session *s, const struct cable_cmd *cmd)
{
	struct cable_error err = {0};
	struct ext_plan *plan = NULL;
	struct sub *sub;

	/* Last values: the replay and live delivery must start at one place (state.c). */
	state_catch_up(s->gw);
	if (s->closing)
		return;
	HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub)
		return; /* duplicate: the first confirm is already on the wire; never confirm twice
		         */
	sub = sub_create(s, cmd->identifier, cmd->identifier_len, &err);
	if (sub == NULL) {
		if (err.code == CABLE_ENOMEM || session_refusal_logged(s))
			gw_log(s->gw, err.code == CABLE_ENOMEM ? MOSQ_LOG_ERR : MOSQ_LOG_NOTICE,
			       "connection %s (user %s) subscription rejected: %s", s->sid,
			       CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(err.text));
		reply(s, cable_proto_reject, cmd->identifier, cmd->identifier_len);
		return;
	}
	reply(s, cable_proto_confirm, cmd->identifier, cmd->identifier_len);
	/*
	 * History on subscribe (ext.c), planned before and sent after anything else this
	 * subscription is sent first: a replay of last values goes between the two and
	 * leaves out the topics ext_skip_last_value(plan, ...) names.
	 */
	if (s->ext && cmd->history)
		plan = ext_history_plan(s, sub, cmd);
	state_replay(s, sub, plan); /* last values, before any live message (state.c) */
	if (plan)
		ext_history_send(s, sub, plan, false);
	room_command(s, sub, cmd); /* a "presence" to re-join with, after the history */
}

void subs_unsubscribe(struct session *s, const struct cable_cmd *cmd)
{
	struct sub *sub;

	HASH_FIND(hh, s->subs, cmd->identifier, cmd->identifier_len, sub);
	if (sub)
		sub_remove(s, sub); /* ActionCable sends no reply */
}

/*
 * Re-resolve every subscription against new rules (after a reload). A subscription
 * the new rules refuse ends with reject_subscription, which the Rails client treats
 * as "this subscription is gone"; the connection stays open.
 */
void subs_rebind_all(struct gw *gw)
{
	struct cable_error err = {0};
	struct cable_binding *b;
	struct session *s;
	struct sub *sub, *tmp;
	bool each;

	for (s = gw->sess.list; s; s = s->next) {
		HASH_ITER(hh, s->subs, sub, tmp)
		{
			b = NULL;
			if (cable_chanmap_bind(gw->rules->chanmap, sub->entry.ident->raw,
			                       sub->entry.ident->raw_len, &s->who, s->sid, &b,
			                       &err) == CABLE_OK &&
			    authorize_streams(s, b, &each, &err) == CABLE_OK) {
				index_unlink(&gw->index, &sub->entry);
				cable_binding_free(sub->binding);
				sub->binding = b;
				sub->entry.deliver = cable_binding_deliver(b);
				sub->entry.check_each = each;
				free(sub->acl_topic); /* cached answers were for the old rules */
				sub->acl_topic = NULL;
				if (index_link(&gw->index, &sub->entry, b) == CABLE_OK)
					continue;
				cable_error_set(&err, CABLE_ENOMEM, "out of memory");
			} else {
				cable_binding_free(b);
			}
			gw_log(gw, MOSQ_LOG_NOTICE,
			       "connection %s (user %s): subscription ended by the new rules: %s",
			       s->sid, CABLE_LOG_STR(s->who.user), CABLE_LOG_STR(err.text));
			if (!s->closing)
				reply(s, cable_proto_reject, sub->entry.ident->raw,
				      sub->entry.ident->raw_len);
			sub_remove(s, sub);
		}
	}
	room_rebind_all(gw); /* presence and whisper rooms follow the new bindings */
}

void subs_clear(struct session *s)
{
	struct sub *sub, *tmp;

	HASH_ITER(hh, s->subs, sub, tmp)
	{
		sub_remove(s, sub);
	}
}

static bool entry_may_read(void *owner, const struct cable_msg *m)
{
	return sub_may_read(owner, m);
}

/* A restored subscription holds its live frames until its history command (ext.c). */
static void entry_deliver(void *owner, struct cable_frame *f, const struct cable_msg *m,
                          uint64_t offset)
{
	struct sub *sub = owner;

	if (sub->held == NULL || !ext_hold(sub, f, m, offset))
		session_send(sub->session, f);
}

static bool index_interest(void *ctx, const char *filter, size_t len, bool on)
{
	return ext_interest(ctx, filter, len, on);
}

static struct cable_frame *entry_ext_frame(void *owner, const char *value, size_t len,
                                           const struct cable_msg *m, uint64_t offset)
{
	struct sub *sub = owner;

	return ext_frame(sub->session->gw, sub, value, len, m, offset);
}

const struct index_ops subs_index_ops = {entry_may_read, entry_deliver, index_interest,
                                         entry_ext_frame};
