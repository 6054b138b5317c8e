/*
 * Perform: a client's perform on a binding becomes an MQTT publish (topic, payload in
 * the action's shape, QoS, retain) or a refusal, with the answer the action asks for
 * (cable_binding_perform). Pure; see cable_chanmap.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_topic.h"

#include "chanmap_internal.h"

static int payload_message(const struct cable_binding *b, const struct bound_action *a,
                           json_t *data, char **out, size_t *outlen, struct cable_error *err)
{
	json_t *m = json_object_get(data, "message");

	if (m == NULL)
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s.actions.%s: data has no \"message\"",
		                       b->channel, a->name);
	if (json_is_string(m)) {
		*out = chanmap_dup_mem(json_string_value(m), json_string_length(m));
		*outlen = json_string_length(m);
		return *out ? CABLE_OK : chanmap_nomem(err);
	}
	return chanmap_dump(m, chanmap_dump_flags(m), out, outlen) == CABLE_OK ? CABLE_OK
	                                                                       : chanmap_nomem(err);
}

static int payload_identity(const struct cable_binding *b, const struct bound_action *a,
                            json_t *data, char **out, size_t *outlen, struct cable_error *err)
{
	json_t *obj, *user, *v;
	const char *key;
	int rc = CABLE_ENOMEM;

	obj = json_object();
	if (obj == NULL)
		return chanmap_nomem(err);
	/* json_string checks UTF-8; a user that is not valid UTF-8 cannot go into JSON. */
	user = b->user ? json_string(b->user) : json_null();
	if (user == NULL) {
		rc = cable_error_set(err, CABLE_EINVAL,
		                     "channels.%s.actions.%s: the user is not valid UTF-8",
		                     b->channel, a->name);
		goto done;
	}
	if (json_object_set_new(obj, "user", user) != 0)
		goto nomem;
	json_object_foreach(data, key, v)
	{
		if (strcmp(key, "action") == 0 || strcmp(key, "user") == 0 ||
		    strcmp(key, "sid") == 0)
			continue;
		if (json_object_set(obj, key, v) != 0)
			goto nomem;
	}
	if (a->with_sid) {
		v = b->sid ? json_string(b->sid) : json_null();
		if (v == NULL || json_object_set_new(obj, "sid", v) != 0)
			goto nomem;
	}
	if (chanmap_dump(obj, chanmap_dump_flags(obj), out, outlen) != CABLE_OK)
		goto nomem;
	rc = CABLE_OK;
	goto done;
nomem:
	rc = chanmap_nomem(err);
done:
	json_decref(obj);
	return rc;
}

const char *cable_refusal_name(enum cable_refusal r)
{
	switch (r) {
	case CABLE_REFUSED_INVALID:
		return "invalid_data";
	case CABLE_REFUSED_UNKNOWN_ACTION:
		return "unknown_action";
	case CABLE_REFUSED_RETAIN:
		return "retain_not_allowed";
	case CABLE_REFUSED_ACL:
		return "acl_denied";
	case CABLE_REFUSED_BROKER:
		return "broker_refused";
	case CABLE_REFUSED_SERVER:
		return "server_error";
	case CABLE_REFUSED_NONE:
		break;
	}
	return "";
}

void cable_perform_info_release(struct cable_perform_info *info)
{
	if (info == NULL)
		return;
	free(info->action);
	free(info->request_id);
	memset(info, 0, sizeof(*info));
}

/* Longest action name echoed back in an answer (a longer one is not named). */
#define ANSWER_ACTION_MAX 256

/*
 * The data's "$request", taken out of the data: its JSON text into info, or EINVAL when
 * it is neither a short string nor an integer.
 */
static int take_request_id(const struct cable_binding *b, json_t *root,
                           struct cable_perform_info *info, struct cable_error *err)
{
	json_t *r = json_object_get(root, "$request");
	int rc = CABLE_OK;

	if (r == NULL)
		return CABLE_OK;
	if (!(json_is_integer(r) ||
	      (json_is_string(r) && json_string_length(r) <= CABLE_REQUEST_MAX)))
		rc = cable_error_set(
		        err, CABLE_EINVAL,
		        "channels.%s: \"$request\" must be a string of at most %d bytes "
		        "or an integer",
		        b->channel, CABLE_REQUEST_MAX);
	else if (info && chanmap_dump(r, JSON_ENCODE_ANY | JSON_COMPACT, &info->request_id,
	                              &info->request_id_len) != CABLE_OK)
		rc = chanmap_nomem(err);
	json_object_del(root, "$request");
	return rc;
}

static enum cable_refusal refusal_for(int rc)
{
	switch (rc) {
	case CABLE_OK:
		return CABLE_REFUSED_NONE;
	case CABLE_ENOTFOUND:
		return CABLE_REFUSED_UNKNOWN_ACTION;
	case CABLE_EDENIED:
		return CABLE_REFUSED_RETAIN;
	case CABLE_ENOMEM:
		return CABLE_REFUSED_SERVER;
	default:
		return CABLE_REFUSED_INVALID;
	}
}

static int perform(const struct cable_binding *b, const char *data, size_t len,
                   struct cable_publish *out, struct cable_perform_info *info,
                   struct cable_error *err);

int cable_binding_perform(const struct cable_binding *b, const char *data, size_t len,
                          struct cable_publish *out, struct cable_perform_info *info,
                          struct cable_error *err)
{
	int rc;

	if (info) {
		memset(info, 0, sizeof(*info));
		info->answer = b->answer;
	}
	rc = perform(b, data, len, out, info, err);
	if (info)
		info->refusal = refusal_for(rc);
	return rc;
}

static int perform(const struct cable_binding *b, const char *data, size_t len,
                   struct cable_publish *out, struct cable_perform_info *info,
                   struct cable_error *err)
{
	char q[QUOTE_MAX + 4];
	const struct bound_action *a = NULL;
	const char *name = "receive";
	size_t i, namelen = strlen("receive"), plen = 0;
	char *topic = NULL, *payload = NULL;
	json_error_t jerr;
	json_t *root, *ja, *jt;
	int rc = CABLE_EINVAL; /* the switch below sets it; this quiets -Wmaybe-uninitialized */

	root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		rc = cable_error_set(err, CABLE_EINVAL,
		                     "channels.%s: perform data is not valid JSON (byte %d)",
		                     b->channel, jerr.position);
		if (err)
			err->offset = (size_t)jerr.position;
		return rc;
	}
	if (!json_is_object(root)) {
		rc = cable_error_set(err, CABLE_EINVAL,
		                     "channels.%s: perform data is not a JSON object", b->channel);
		goto done;
	}
	ja = json_object_get(root, "action");
	if (ja != NULL) {
		if (!json_is_string(ja)) {
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "channels.%s: \"action\" is not a string", b->channel);
			goto done;
		}
		name = json_string_value(ja);
		namelen = json_string_length(ja);
	}
	for (i = 0; i < b->nactions && a == NULL; i++)
		if (chanmap_name_is(name, namelen, b->actions[i].name))
			a = &b->actions[i];
	if (a != NULL && info) {
		info->answer = a->answer;
		info->request = a->request;
	}
	/* The name is copied only for an answer (no allocation on the plain path). */
	if (info && (info->answer != CABLE_ANSWER_NONE || info->request) &&
	    namelen <= ANSWER_ACTION_MAX) {
		info->action = chanmap_dup_mem(name, namelen);
		info->action_len = namelen;
		if (info->action == NULL) {
			rc = chanmap_nomem(err);
			goto done;
		}
	}
	/* Before anything can fail on the action, so a refusal still echoes the request. */
	if ((rc = take_request_id(b, root, info, err)) != CABLE_OK)
		goto done;
	if (a == NULL) {
		chanmap_quote(q, name, namelen);
		rc = cable_error_set(err, CABLE_ENOTFOUND, "channels.%s: no action \"%s\"",
		                     b->channel, q);
		goto done;
	}
	if (!a->retain && json_is_true(json_object_get(root, "retain"))) {
		rc = cable_error_set(err, CABLE_EDENIED,
		                     "channels.%s.actions.%s: retain is not allowed", b->channel,
		                     a->name);
		goto done;
	}

	if (a->topic != NULL) {
		topic = chanmap_dup_mem(a->topic, strlen(a->topic));
	} else {
		jt = json_object_get(root, "topic");
		if (!json_is_string(jt) ||
		    !chanmap_publish_topic_ok(json_string_value(jt), json_string_length(jt))) {
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "channels.%s.actions.%s: \"topic\" is missing or not "
			                     "a topic name outside '$'",
			                     b->channel, a->name);
			goto done;
		}
		topic = chanmap_dup_mem(json_string_value(jt), json_string_length(jt));
	}
	if (topic == NULL) {
		rc = chanmap_nomem(err);
		goto done;
	}

	switch (a->shape) {
	case PAYLOAD_MESSAGE:
		rc = payload_message(b, a, root, &payload, &plen, err);
		break;
	case PAYLOAD_DATA:
		json_object_del(root, "action");
		rc = chanmap_dump(root, chanmap_dump_flags(root), &payload, &plen);
		if (rc != CABLE_OK)
			chanmap_nomem(err);
		break;
	case PAYLOAD_IDENTITY:
		rc = payload_identity(b, a, root, &payload, &plen, err);
		break;
	}
	if (rc != CABLE_OK)
		goto done;

	out->topic = topic;
	out->payload = payload;
	out->payload_len = plen;
	out->qos = a->qos;
	out->retain = a->retain;
	topic = NULL;
	payload = NULL;
done:
	free(topic);
	free(payload);
	json_decref(root);
	return rc;
}

void cable_publish_release(struct cable_publish *p)
{
	if (p == NULL)
		return;
	free(p->topic);
	free(p->payload);
	memset(p, 0, sizeof(*p));
}
