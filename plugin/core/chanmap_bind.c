/*
 * Binding: a client's identifier against the map gives a binding, its params validated
 * one by one and every stream and action topic expanded and checked again as a whole
 * (cable_chanmap_bind), plus the binding's accessors. Pure; see cable_chanmap.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_topic.h"

#include "chanmap_internal.h"

/* Decimal digits without a sign or leading zeros, within json_int_t. */
static bool parse_decimal(const char *s, size_t len, json_int_t *out)
{
	json_int_t v = 0;
	size_t i;

	if (len == 0 || (s[0] == '0' && len > 1))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (LLONG_MAX - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Validate one param value; on success *val holds its canonical text. The reason
 * names the param, never the value. */
static int bind_param(const struct channel *ch, const struct param *p, json_t *v, struct value *val,
                      struct cable_error *err)
{
	const char *s;
	size_t len;
	json_int_t n;
	char *copy;
	int match;

	if (v == NULL)
		return cable_error_set(err, CABLE_EINVAL, "channels.%s: param %s is missing",
		                       ch->name, p->name);
	if (p->type == PARAM_INTEGER) {
		if (json_is_integer(v))
			n = json_integer_value(v);
		else if (!json_is_string(v) ||
		         !parse_decimal(json_string_value(v), json_string_length(v), &n))
			return cable_error_set(err, CABLE_EINVAL,
			                       "channels.%s: param %s is not an integer", ch->name,
			                       p->name);
		if (n < p->min || n > p->max)
			return cable_error_set(err, CABLE_EINVAL,
			                       "channels.%s: param %s is out of range", ch->name,
			                       p->name);
		snprintf(val->num, sizeof(val->num), "%" JSON_INTEGER_FORMAT, n);
		val->s = val->num;
		val->len = strlen(val->num);
		return CABLE_OK;
	}

	if (!json_is_string(v))
		return cable_error_set(err, CABLE_EINVAL, "channels.%s: param %s is not a string",
		                       ch->name, p->name);
	s = json_string_value(v);
	len = json_string_length(v);
	/* Length first: it bounds the copy regexec needs and all later work. */
	if (len > p->max_length)
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s: param %s is longer than %zu bytes", ch->name,
		                       p->name, p->max_length);
	if (!cable_topic_level_valid(s, len))
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s: param %s is not a valid topic level", ch->name,
		                       p->name);
	if (p->has_pattern) {
		/* level_valid excluded NUL, so the C string copy is the whole value. */
		copy = chanmap_dup_mem(s, len);
		if (copy == NULL)
			return chanmap_nomem(err);
		match = regexec(&p->pattern, copy, 0, NULL, 0);
		free(copy);
		if (match != 0)
			return cable_error_set(err, CABLE_EINVAL,
			                       "channels.%s: param %s does not match its pattern",
			                       ch->name, p->name);
	}
	val->s = s;
	val->len = len;
	return CABLE_OK;
}

static const struct channel *find_channel(const struct cable_chanmap *map, const char *name,
                                          size_t len)
{
	size_t i;

	/* Linear: maps are small and bind runs once per subscribe. */
	for (i = 0; i < map->nchannels; i++)
		if (chanmap_name_is(name, len, map->channels[i].name))
			return &map->channels[i];
	return NULL;
}

static bool stream_ok(const char *s)
{
	size_t len = strlen(s);

	return s[0] != '$' && cable_topic_filter_valid(s, len);
}

bool chanmap_publish_topic_ok(const char *s, size_t len)
{
	/* A valid name has no wildcards; '$' topics are never a browser's to write. */
	return len > 0 && s[0] != '$' && cable_topic_name_valid(s, len);
}

/* The generic channel: the identifier's "topic" is the one stream. */
static int bind_generic(const struct channel *ch, json_t *root, struct cable_binding *b,
                        struct cable_error *err)
{
	json_t *t = json_object_get(root, "topic");

	if (!json_is_string(t))
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s: topic is missing or not a string", ch->name);
	if (json_string_length(t) == 0 || json_string_value(t)[0] == '$' ||
	    !cable_topic_filter_valid(json_string_value(t), json_string_length(t)))
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s: topic is not a valid filter outside '$'",
		                       ch->name);
	b->streams[0] = chanmap_dup_mem(json_string_value(t), json_string_length(t));
	if (b->streams[0] == NULL)
		return chanmap_nomem(err);
	b->nstreams = 1;
	return CABLE_OK;
}

/*
 * The value of claim `name` of the verified token, as one topic level: a string, or an
 * integer in decimal. Anything else, or a value that is not a valid level, is EINVAL.
 */
static int bind_claim(const struct channel *ch, const char *name, const json_t *claims,
                      struct value *val, struct cable_error *err)
{
	const json_t *v = claims ? json_object_get(claims, name) : NULL;

	if (json_is_string(v)) {
		val->s = json_string_value(v);
		val->len = json_string_length(v);
	} else if (json_is_integer(v)) {
		snprintf(val->num, sizeof(val->num), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v));
		val->s = val->num;
		val->len = strlen(val->num);
	} else {
		return cable_error_set(
		        err, CABLE_EINVAL,
		        "channels.%s: the token has no string or integer claim \"%s\"", ch->name,
		        name);
	}
	if (!cable_topic_level_valid(val->s, val->len))
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s: claim \"%s\" is not usable as a topic level",
		                       ch->name, name);
	return CABLE_OK;
}

static int bind_templates(const struct channel *ch, json_t *root, const char *user,
                          const json_t *claims, struct cable_binding *b, struct cable_error *err)
{
	struct value *vals;
	size_t i, ulen = user ? strlen(user) : 0;
	int rc = CABLE_OK;

	if (ch->uses_user && (user == NULL || !cable_topic_level_valid(user, ulen)))
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s: the user is not usable as a topic level",
		                       ch->name);
	vals = calloc(ch->nparams + ch->nclaims + 1, sizeof(*vals));
	if (vals == NULL)
		return chanmap_nomem(err);
	for (i = 0; i < ch->nparams && rc == CABLE_OK; i++)
		rc = bind_param(ch, &ch->params[i], json_object_get(root, ch->params[i].name),
		                &vals[i], err);
	for (i = 0; i < ch->nclaims && rc == CABLE_OK; i++)
		rc = bind_claim(ch, ch->claims[i], claims, &vals[ch->nparams + i], err);
	b->nstreams = ch->nstreams; /* zeroed array: cable_binding_free copes with gaps */
	for (i = 0; i < ch->nstreams && rc == CABLE_OK; i++) {
		rc = chanmap_expand(&ch->streams[i], vals, user, ulen, &b->streams[i]);
		if (rc == CABLE_ENOMEM)
			chanmap_nomem(err);
		else if (rc != CABLE_OK || !stream_ok(b->streams[i]))
			rc = cable_error_set(
			        err, CABLE_EINVAL,
			        "channels.%s.streams[%zu]: expands to an invalid topic", ch->name,
			        i);
	}
	for (i = 0; i < ch->nactions && rc == CABLE_OK; i++) {
		rc = chanmap_expand(&ch->actions[i].topic, vals, user, ulen, &b->actions[i].topic);
		if (rc == CABLE_ENOMEM)
			chanmap_nomem(err);
		else if (rc != CABLE_OK || !chanmap_publish_topic_ok(b->actions[i].topic,
		                                                     strlen(b->actions[i].topic)))
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "channels.%s.actions.%s.topic: expands to an invalid "
			                     "topic",
			                     ch->name, ch->actions[i].name);
	}
	if (rc == CABLE_OK && ch->watchers.nlevels) {
		char *t = NULL;

		rc = chanmap_expand(&ch->watchers, vals, user, ulen, &t);
		b->presence_cfg.watchers_topic = t;
		if (rc == CABLE_ENOMEM)
			chanmap_nomem(err);
		else if (rc != CABLE_OK || !chanmap_publish_topic_ok(t, strlen(t)))
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "channels.%s.presence.watchers_topic: expands to an "
			                     "invalid topic",
			                     ch->name);
	}
	free(vals);
	return rc;
}

int cable_chanmap_bind(const struct cable_chanmap *map, const char *identifier, size_t len,
                       const struct cable_principal *who, const char *sid,
                       struct cable_binding **out, struct cable_error *err)
{
	char q[QUOTE_MAX + 4];
	const struct channel *ch;
	struct cable_binding *b = NULL;
	const char *user = who ? who->user : NULL;
	json_error_t jerr;
	json_t *root, *jch;
	size_t i;
	int rc;

	root = json_loadb(identifier, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		/* jerr.text quotes the input; the log gets only the position. */
		rc = cable_error_set(err, CABLE_EINVAL, "identifier is not valid JSON (byte %d)",
		                     jerr.position);
		if (err)
			err->offset = (size_t)jerr.position;
		return rc;
	}
	if (!json_is_object(root)) {
		rc = cable_error_set(err, CABLE_EINVAL, "identifier is not a JSON object");
		goto done;
	}
	jch = json_object_get(root, "channel");
	if (jch == NULL) {
		rc = cable_error_set(err, CABLE_ENOTFOUND, "identifier has no \"channel\"");
		goto done;
	}
	if (!json_is_string(jch)) {
		rc = cable_error_set(err, CABLE_EINVAL, "identifier \"channel\" is not a string");
		goto done;
	}
	ch = find_channel(map, json_string_value(jch), json_string_length(jch));
	if (ch == NULL) {
		chanmap_quote(q, json_string_value(jch), json_string_length(jch));
		rc = cable_error_set(err, CABLE_ENOTFOUND, "no channel \"%s\"", q);
		goto done;
	}

	b = calloc(1, sizeof(*b));
	if (b == NULL)
		goto nomem;
	b->deliver = ch->deliver;
	b->answer = ch->answer;
	b->last_value = ch->last_value;
	b->presence = ch->presence;
	b->presence_cfg = ch->presence_cfg;
	b->presence_cfg.watchers_topic = NULL; /* expanded in bind_templates */
	b->whisper = ch->whisper;
	b->whisper_cfg = ch->whisper_cfg;
	b->channel = chanmap_dup_mem(ch->name, strlen(ch->name));
	b->streams = calloc(ch->nstreams + 1, sizeof(*b->streams));
	b->actions = calloc(ch->nactions + 1, sizeof(*b->actions));
	if (b->channel == NULL || b->streams == NULL || b->actions == NULL)
		goto nomem;
	if (user && (b->user = chanmap_dup_mem(user, strlen(user))) == NULL)
		goto nomem;
	if (sid && (b->sid = chanmap_dup_mem(sid, strlen(sid))) == NULL)
		goto nomem;
	/* The arrays are zeroed, so cable_binding_free can release a half-filled one. */
	b->nactions = ch->nactions;
	for (i = 0; i < ch->nactions; i++) {
		b->actions[i].name =
		        chanmap_dup_mem(ch->actions[i].name, strlen(ch->actions[i].name));
		if (b->actions[i].name == NULL)
			goto nomem;
		b->actions[i].shape = ch->actions[i].shape;
		b->actions[i].qos = ch->actions[i].qos;
		b->actions[i].retain = ch->actions[i].retain;
		b->actions[i].with_sid = ch->actions[i].with_sid;
		b->actions[i].request = ch->actions[i].request;
		b->actions[i].answer = ch->actions[i].answer;
	}

	if (ch->generic)
		rc = bind_generic(ch, root, b, err);
	else
		rc = bind_templates(ch, root, user, who ? who->claims : NULL, b, err);
	if (rc != CABLE_OK)
		goto done;
	*out = b;
	b = NULL;
	rc = CABLE_OK;
	goto done;

nomem:
	rc = chanmap_nomem(err);
done:
	cable_binding_free(b);
	json_decref(root);
	return rc;
}

void cable_binding_free(struct cable_binding *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->nstreams; i++)
		free(b->streams[i]);
	free(b->streams);
	for (i = 0; i < b->nactions; i++) {
		free(b->actions[i].name);
		free(b->actions[i].topic);
	}
	free(b->actions);
	free((char *)b->presence_cfg.watchers_topic);
	free(b->channel);
	free(b->user);
	free(b->sid);
	free(b);
}

const char *cable_binding_channel(const struct cable_binding *b)
{
	return b->channel;
}

size_t cable_binding_stream_count(const struct cable_binding *b)
{
	return b->nstreams;
}

const char *cable_binding_stream(const struct cable_binding *b, size_t i)
{
	return i < b->nstreams ? b->streams[i] : NULL;
}

const struct cable_presence_config *cable_binding_presence(const struct cable_binding *b)
{
	return b->presence ? &b->presence_cfg : NULL;
}

const struct cable_whisper_config *cable_binding_whisper(const struct cable_binding *b)
{
	return b->whisper ? &b->whisper_cfg : NULL;
}

enum cable_deliver cable_binding_deliver(const struct cable_binding *b)
{
	return b->deliver;
}

bool cable_binding_last_value(const struct cable_binding *b)
{
	return b->last_value;
}
