/*
 * The channel map, loading: configuration -> channels (params, streams, actions), with
 * every refusal made here, once; and freeing. Pure; the file format in cable_chanmap.h
 * is the specification; the other parts are listed in chanmap_internal.h.
 */
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cable_chanmap.h"
#include "cable_topic.h"
#include "chanmap_internal.h"

#define PARAM_MAX_LENGTH_DEFAULT 128

/* ---- Loading ---------------------------------------------------------------------- */

static int check_keys(json_t *obj, const char *const *allowed, const char *where,
                      struct cable_error *err)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return cable_error_set(err, CABLE_EINVAL, "%s: unknown key \"%s\"", where,
			                       key);
	}
	return CABLE_OK;
}

/* An optional boolean member; *out keeps its default when absent. */
static int get_bool(json_t *obj, const char *key, bool *out, const char *where,
                    struct cable_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return CABLE_OK;
	if (!json_is_boolean(v))
		return cable_error_set(err, CABLE_EINVAL, "%s.%s: must be true or false", where,
		                       key);
	*out = json_is_true(v);
	return CABLE_OK;
}

static int get_int(json_t *obj, const char *key, json_int_t lo, json_int_t hi, json_int_t *out,
                   const char *where, struct cable_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return CABLE_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s.%s: must be an integer from %" JSON_INTEGER_FORMAT
		                       " to %" JSON_INTEGER_FORMAT,
		                       where, key, lo, hi);
	*out = json_integer_value(v);
	return CABLE_OK;
}

/* An optional "answer" member: "none", "refusals" or "all"; *out keeps its default. */
static int get_answer(json_t *obj, enum cable_answer *out, const char *where,
                      struct cable_error *err)
{
	json_t *v = json_object_get(obj, "answer");
	const char *s = json_is_string(v) ? json_string_value(v) : "";

	if (v == NULL)
		return CABLE_OK;
	if (strcmp(s, "none") == 0)
		*out = CABLE_ANSWER_NONE;
	else if (strcmp(s, "refusals") == 0)
		*out = CABLE_ANSWER_REFUSALS;
	else if (strcmp(s, "all") == 0)
		*out = CABLE_ANSWER_ALL;
	else
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s.answer: must be \"none\", \"refusals\" or \"all\"",
		                       where);
	return CABLE_OK;
}

static bool param_name_ok(const char *s)
{
	size_t i;

	if (*s == '\0' || strcmp(s, "channel") == 0 || strcmp(s, "user") == 0)
		return false;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/*
 * glibc compiles an extended regex into an automaton whose size multiplies with
 * stacked and nested repetitions: "a+++++..." or "((a{1,99}){1,99}){1,99}" makes
 * regcomp allocate gigabytes (found by fuzz_config). A parameter pattern needs none of
 * that, so keep patterns short, never stack two quantifiers, keep bounds small and
 * few.
 */
#define PATTERN_MAX_LEN     256
#define PATTERN_MAX_BOUND   255
#define PATTERN_MAX_BOUNDED 4

static int pattern_tame(const char *re, size_t len, const char *where, struct cable_error *err)
{
	size_t i, bounded = 0;
	bool after_quantifier = false, in_class = false;

	if (len > PATTERN_MAX_LEN || memchr(re, '\0', len))
		return cable_error_set(err, CABLE_EINVAL, "%s.pattern: longer than %d bytes", where,
		                       PATTERN_MAX_LEN);
	for (i = 0; i < len; i++) {
		char c = re[i];

		if (in_class) { /* [...]: quantifier characters are literals here */
			if (c == ']' && i > 0 && re[i - 1] != '[' &&
			    !(re[i - 1] == '^' && i > 1 && re[i - 2] == '['))
				in_class = false;
			continue;
		}
		if (c == '\\') {
			i++;
			after_quantifier = false;
			continue;
		}
		if (c == '[') {
			in_class = true;
			after_quantifier = false;
			continue;
		}
		if (c == '*' || c == '+' || c == '?' || c == '{') {
			if (after_quantifier)
				return cable_error_set(err, CABLE_EINVAL,
				                       "%s.pattern: two quantifiers in a row",
				                       where);
			if (c == '{') {
				unsigned long lo, hi;
				char *end;

				if (++bounded > PATTERN_MAX_BOUNDED)
					return cable_error_set(
					        err, CABLE_EINVAL,
					        "%s.pattern: more than %d {m,n} repetitions", where,
					        PATTERN_MAX_BOUNDED);
				lo = strtoul(re + i + 1, &end, 10);
				hi = *end == ',' ? (end[1] == '}' ? PATTERN_MAX_BOUND
				                                  : strtoul(end + 1, &end, 10))
				                 : lo;
				if (lo > PATTERN_MAX_BOUND || hi > PATTERN_MAX_BOUND)
					return cable_error_set(
					        err, CABLE_EINVAL,
					        "%s.pattern: a repetition bound over %d", where,
					        PATTERN_MAX_BOUND);
				while (i < len && re[i] != '}')
					i++;
			}
			after_quantifier = true;
			continue;
		}
		after_quantifier = false;
	}
	return CABLE_OK;
}

static int load_param(struct param *p, const char *name, json_t *spec, const char *where,
                      struct cable_error *err)
{
	static const char *const keys[] = {"type", "max_length", "pattern", "min", "max", NULL};
	json_t *type, *pattern;
	json_int_t maxlen = PARAM_MAX_LENGTH_DEFAULT;
	char msg[100];
	int rc;

	if (!param_name_ok(name))
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s: a param name is [A-Za-z0-9_]+ and not \"channel\" "
		                       "or \"user\"",
		                       where);
	p->name = chanmap_dup_mem(name, strlen(name));
	if (p->name == NULL)
		return chanmap_nomem(err);
	if (!json_is_object(spec))
		return cable_error_set(err, CABLE_EINVAL, "%s: must be an object", where);
	if ((rc = check_keys(spec, keys, where, err)) != CABLE_OK)
		return rc;
	type = json_object_get(spec, "type");
	if (type == NULL ||
	    (json_is_string(type) && strcmp(json_string_value(type), "string") == 0))
		p->type = PARAM_STRING;
	else if (json_is_string(type) && strcmp(json_string_value(type), "integer") == 0)
		p->type = PARAM_INTEGER;
	else
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s.type: must be \"string\" or \"integer\"", where);

	if (p->type == PARAM_INTEGER) {
		if (json_object_get(spec, "max_length") || json_object_get(spec, "pattern"))
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: max_length and pattern apply to string params",
			                       where);
		p->min = LLONG_MIN;
		p->max = LLONG_MAX;
		if ((rc = get_int(spec, "min", LLONG_MIN, LLONG_MAX, &p->min, where, err)) ||
		    (rc = get_int(spec, "max", LLONG_MIN, LLONG_MAX, &p->max, where, err)))
			return rc;
		if (p->min > p->max)
			return cable_error_set(err, CABLE_EINVAL, "%s: min is greater than max",
			                       where);
		return CABLE_OK;
	}

	if (json_object_get(spec, "min") || json_object_get(spec, "max"))
		return cable_error_set(err, CABLE_EINVAL, "%s: min and max apply to integer params",
		                       where);
	if ((rc = get_int(spec, "max_length", 1, CABLE_TOPIC_MAX_LEN, &maxlen, where, err)))
		return rc;
	p->max_length = (size_t)maxlen;
	pattern = json_object_get(spec, "pattern");
	if (pattern == NULL)
		return CABLE_OK;
	if (!json_is_string(pattern))
		return cable_error_set(err, CABLE_EINVAL, "%s.pattern: must be a string", where);
	if ((rc = pattern_tame(json_string_value(pattern), json_string_length(pattern), where,
	                       err)) != CABLE_OK)
		return rc;
	rc = regcomp(&p->pattern, json_string_value(pattern), REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, &p->pattern, msg, sizeof(msg));
		return cable_error_set(err, CABLE_EINVAL, "%s.pattern: %s", where, msg);
	}
	p->has_pattern = true;
	return CABLE_OK;
}

static int load_params(struct channel *ch, json_t *params, struct cable_error *err)
{
	char where[CABLE_ERROR_TEXT_MAX];
	const char *name;
	json_t *spec;
	int rc;

	if (params == NULL)
		return CABLE_OK;
	if (!json_is_object(params))
		return cable_error_set(err, CABLE_EINVAL, "channels.%s.params: must be an object",
		                       ch->name);
	ch->params = calloc(json_object_size(params) + 1, sizeof(*ch->params));
	if (ch->params == NULL)
		return chanmap_nomem(err);
	json_object_foreach(params, name, spec)
	{
		snprintf(where, sizeof(where), "channels.%s.params.%s", ch->name, name);
		rc = load_param(&ch->params[ch->nparams++], name, spec, where, err);
		if (rc != CABLE_OK)
			return rc;
	}
	return CABLE_OK;
}

static int load_streams(struct channel *ch, json_t *streams, struct cable_error *err)
{
	char where[CABLE_ERROR_TEXT_MAX];
	json_t *s;
	size_t i;
	int rc;

	if (streams == NULL)
		return CABLE_OK;
	if (!json_is_array(streams))
		return cable_error_set(err, CABLE_EINVAL, "channels.%s.streams: must be an array",
		                       ch->name);
	ch->streams = calloc(json_array_size(streams) + 1, sizeof(*ch->streams));
	if (ch->streams == NULL)
		return chanmap_nomem(err);
	json_array_foreach(streams, i, s)
	{
		snprintf(where, sizeof(where), "channels.%s.streams[%zu]", ch->name, i);
		if (!json_is_string(s))
			return cable_error_set(err, CABLE_EINVAL, "%s: must be a string", where);
		rc = chanmap_template_parse(&ch->streams[ch->nstreams++], ch, json_string_value(s),
		                            where, err);
		if (rc == CABLE_OK)
			rc = chanmap_template_check(&ch->streams[i], false, where, err);
		if (rc != CABLE_OK)
			return rc;
	}
	return CABLE_OK;
}

static int load_action(struct channel *ch, struct action *a, const char *name, json_t *spec,
                       const char *where, struct cable_error *err)
{
	static const char *const keys[] = {"topic",    "payload", "qos",     "retain",
	                                   "with_sid", "answer",  "request", NULL};
	static const char *const generic_keys[] = {"qos", "retain", "answer", "request", NULL};
	json_t *topic, *payload;
	json_int_t qos = 0;
	const char *shape;
	int rc;

	a->name = chanmap_dup_mem(name, strlen(name));
	if (a->name == NULL)
		return chanmap_nomem(err);
	if (!json_is_object(spec))
		return cable_error_set(err, CABLE_EINVAL, "%s: must be an object", where);
	if (ch->generic && strcmp(name, "publish") != 0)
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s: a generic channel has only the action \"publish\"",
		                       where);
	if ((rc = check_keys(spec, ch->generic ? generic_keys : keys, where, err)) ||
	    (rc = get_int(spec, "qos", 0, 2, &qos, where, err)) ||
	    (rc = get_bool(spec, "retain", &a->retain, where, err)) ||
	    (rc = get_bool(spec, "with_sid", &a->with_sid, where, err)) ||
	    (rc = get_bool(spec, "request", &a->request, where, err)))
		return rc;
	a->answer = ch->answer;
	if ((rc = get_answer(spec, &a->answer, where, err)))
		return rc;
	a->qos = (int)qos;
	a->shape = PAYLOAD_MESSAGE;
	if (ch->generic)
		return CABLE_OK;

	payload = json_object_get(spec, "payload");
	shape = json_is_string(payload) ? json_string_value(payload) : "";
	if (strcmp(shape, "message") == 0)
		a->shape = PAYLOAD_MESSAGE;
	else if (strcmp(shape, "data") == 0)
		a->shape = PAYLOAD_DATA;
	else if (strcmp(shape, "identity") == 0)
		a->shape = PAYLOAD_IDENTITY;
	else
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s.payload: must be \"message\", \"data\" or \"identity\"",
		                       where);
	if (a->with_sid && a->shape != PAYLOAD_IDENTITY)
		return cable_error_set(err, CABLE_EINVAL,
		                       "%s.with_sid: applies only to payload \"identity\"", where);
	topic = json_object_get(spec, "topic");
	if (!json_is_string(topic))
		return cable_error_set(err, CABLE_EINVAL, "%s.topic: missing or not a string",
		                       where);
	{
		/* Room for where plus the suffix; the error text truncates anyway. */
		char twhere[CABLE_ERROR_TEXT_MAX + sizeof(".topic")];

		snprintf(twhere, sizeof(twhere), "%s.topic", where);
		rc = chanmap_template_parse(&a->topic, ch, json_string_value(topic), twhere, err);
		if (rc == CABLE_OK)
			rc = chanmap_template_check(&a->topic, true, twhere, err);
	}
	return rc;
}

static int load_actions(struct channel *ch, json_t *actions, struct cable_error *err)
{
	char where[CABLE_ERROR_TEXT_MAX];
	const char *name;
	json_t *spec;
	int rc;

	if (actions == NULL)
		return CABLE_OK;
	if (!json_is_object(actions))
		return cable_error_set(err, CABLE_EINVAL, "channels.%s.actions: must be an object",
		                       ch->name);
	ch->actions = calloc(json_object_size(actions) + 1, sizeof(*ch->actions));
	if (ch->actions == NULL)
		return chanmap_nomem(err);
	json_object_foreach(actions, name, spec)
	{
		snprintf(where, sizeof(where), "channels.%s.actions.%s", ch->name, name);
		if (*name == '\0')
			return cable_error_set(err, CABLE_EINVAL, "%s: empty action name", where);
		rc = load_action(ch, &ch->actions[ch->nactions++], name, spec, where, err);
		if (rc != CABLE_OK)
			return rc;
	}
	return CABLE_OK;
}

/*
 * "presence": true | false | {"ttl", "info_max_bytes", "watchers_topic"}. Loaded after the
 * params, so the watchers topic can use them.
 */
static int load_presence(struct channel *ch, json_t *v, struct cable_error *err)
{
	static const char *const keys[] = {"ttl", "info_max_bytes", "watchers_topic", NULL};
	char where[CABLE_ERROR_TEXT_MAX];
	json_int_t ttl = CABLE_PRESENCE_TTL_DEFAULT, info = CABLE_PRESENCE_INFO_MAX_DEFAULT;
	json_t *topic;
	int rc;

	snprintf(where, sizeof(where), "channels.%s.presence", ch->name);
	ch->presence_cfg.ttl = (unsigned)ttl;
	ch->presence_cfg.info_max = (size_t)info;
	if (v == NULL || json_is_boolean(v)) {
		ch->presence = json_is_true(v);
		return CABLE_OK;
	}
	if (!json_is_object(v))
		return cable_error_set(err, CABLE_EINVAL, "%s: must be true, false or an object",
		                       where);
	if ((rc = check_keys(v, keys, where, err)) ||
	    (rc = get_int(v, "ttl", 0, 3600, &ttl, where, err)) ||
	    (rc = get_int(v, "info_max_bytes", 2, 65536, &info, where, err)))
		return rc;
	ch->presence = true;
	ch->presence_cfg.ttl = (unsigned)ttl;
	ch->presence_cfg.info_max = (size_t)info;
	topic = json_object_get(v, "watchers_topic");
	if (topic == NULL)
		return CABLE_OK;
	{
		char twhere[CABLE_ERROR_TEXT_MAX + sizeof(".watchers_topic")];

		snprintf(twhere, sizeof(twhere), "%s.watchers_topic", where);
		if (ch->generic)
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: a generic channel has no watchers topic",
			                       twhere);
		if (!json_is_string(topic))
			return cable_error_set(err, CABLE_EINVAL, "%s: must be a string", twhere);
		rc = chanmap_template_parse(&ch->watchers, ch, json_string_value(topic), twhere,
		                            err);
		if (rc == CABLE_OK)
			rc = chanmap_template_check(&ch->watchers, true, twhere, err);
	}
	return rc;
}

/* "whisper": true | false | {"rate", "burst", "max_bytes"}. */
static int load_whisper(struct channel *ch, json_t *v, struct cable_error *err)
{
	static const char *const keys[] = {"rate", "burst", "max_bytes", NULL};
	char where[CABLE_ERROR_TEXT_MAX];
	json_int_t rate = CABLE_WHISPER_RATE_DEFAULT, burst = CABLE_WHISPER_BURST_DEFAULT,
	           max = CABLE_WHISPER_MAX_BYTES_DEFAULT;
	int rc;

	snprintf(where, sizeof(where), "channels.%s.whisper", ch->name);
	if (v != NULL && !json_is_boolean(v)) {
		if (!json_is_object(v))
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: must be true, false or an object", where);
		if ((rc = check_keys(v, keys, where, err)) ||
		    (rc = get_int(v, "rate", 1, 10000, &rate, where, err)) ||
		    (rc = get_int(v, "burst", 1, 10000, &burst, where, err)) ||
		    (rc = get_int(v, "max_bytes", 2, 1024 * 1024, &max, where, err)))
			return rc;
	}
	ch->whisper = v != NULL && !json_is_false(v);
	ch->whisper_cfg.rate = (unsigned)rate;
	ch->whisper_cfg.burst = (unsigned)burst;
	ch->whisper_cfg.max_bytes = (size_t)max;
	return CABLE_OK;
}

static int load_channel(struct channel *ch, const char *name, json_t *spec, struct cable_error *err)
{
	static const char *const keys[] = {"generic",    "params", "streams",  "deliver",
	                                   "actions",    "answer", "presence", "whisper",
	                                   "last_value", NULL};
	static const char *const generic_keys[] = {"generic",  "deliver", "actions",    "answer",
	                                           "presence", "whisper", "last_value", NULL};
	char where[CABLE_ERROR_TEXT_MAX];
	json_t *deliver;
	int rc;

	snprintf(where, sizeof(where), "channels.%s", name);
	if (*name == '\0')
		return cable_error_set(err, CABLE_EINVAL, "channels: empty channel name");
	ch->name = chanmap_dup_mem(name, strlen(name));
	if (ch->name == NULL)
		return chanmap_nomem(err);
	if (!json_is_object(spec))
		return cable_error_set(err, CABLE_EINVAL, "%s: must be an object", where);
	ch->last_value = true;
	if ((rc = get_bool(spec, "generic", &ch->generic, where, err)) ||
	    (rc = get_bool(spec, "last_value", &ch->last_value, where, err)) ||
	    (rc = check_keys(spec, ch->generic ? generic_keys : keys, where, err)))
		return rc;

	/* A generic channel's stream is a filter chosen by the client; the receiver needs
	 * the concrete topic of each message, hence the envelope by default. */
	ch->deliver = ch->generic ? CABLE_DELIVER_ENVELOPE : CABLE_DELIVER_MESSAGE;
	deliver = json_object_get(spec, "deliver");
	if (deliver != NULL) {
		if (json_is_string(deliver) && strcmp(json_string_value(deliver), "message") == 0)
			ch->deliver = CABLE_DELIVER_MESSAGE;
		else if (json_is_string(deliver) &&
		         strcmp(json_string_value(deliver), "envelope") == 0)
			ch->deliver = CABLE_DELIVER_ENVELOPE;
		else
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s.deliver: must be \"message\" or \"envelope\"",
			                       where);
	}
	if ((rc = get_answer(spec, &ch->answer, where, err)) ||
	    (rc = load_params(ch, json_object_get(spec, "params"), err)) ||
	    (rc = load_streams(ch, json_object_get(spec, "streams"), err)) ||
	    (rc = load_actions(ch, json_object_get(spec, "actions"), err)) ||
	    (rc = load_presence(ch, json_object_get(spec, "presence"), err)) ||
	    (rc = load_whisper(ch, json_object_get(spec, "whisper"), err)))
		return rc;
	return CABLE_OK;
}

struct cable_chanmap *cable_chanmap_new(const char *buf, size_t len, struct cable_error *err)
{
	static const char *const keys[] = {"channels", NULL};
	struct cable_chanmap *map = NULL;
	json_error_t jerr;
	json_t *root, *channels, *spec;
	const char *name;

	/* No JSON_ALLOW_NUL: nothing in the map has a use for NUL bytes, so every string
	 * in it can be handled as a C string. */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		cable_error_set(err, CABLE_EINVAL, "line %d column %d: %s", jerr.line, jerr.column,
		                jerr.text);
		if (err)
			err->offset = (size_t)jerr.position;
		return NULL;
	}
	if (!json_is_object(root)) {
		cable_error_set(err, CABLE_EINVAL, "the channel map must be a JSON object");
		goto fail;
	}
	if (check_keys(root, keys, "top level", err) != CABLE_OK)
		goto fail;
	channels = json_object_get(root, "channels");
	if (!json_is_object(channels)) {
		cable_error_set(err, CABLE_EINVAL, "channels: missing or not an object");
		goto fail;
	}
	map = calloc(1, sizeof(*map));
	if (map == NULL)
		goto fail_nomem;
	map->channels = calloc(json_object_size(channels) + 1, sizeof(*map->channels));
	if (map->channels == NULL)
		goto fail_nomem;
	json_object_foreach(channels, name, spec)
	{
		/* Count first: cable_chanmap_free then releases a half-loaded channel too. */
		if (load_channel(&map->channels[map->nchannels++], name, spec, err) != CABLE_OK)
			goto fail;
	}
	json_decref(root);
	return map;

fail_nomem:
	chanmap_nomem(err);
fail:
	cable_chanmap_free(map);
	json_decref(root);
	return NULL;
}

void cable_chanmap_free(struct cable_chanmap *map)
{
	struct channel *ch;
	size_t i, j;

	if (map == NULL)
		return;
	for (i = 0; i < map->nchannels; i++) {
		ch = &map->channels[i];
		for (j = 0; j < ch->nparams; j++) {
			free(ch->params[j].name);
			if (ch->params[j].has_pattern)
				regfree(&ch->params[j].pattern);
		}
		free(ch->params);
		for (j = 0; j < ch->nclaims; j++)
			free(ch->claims[j]);
		free(ch->claims);
		for (j = 0; j < ch->nstreams; j++)
			chanmap_template_release(&ch->streams[j]);
		free(ch->streams);
		for (j = 0; j < ch->nactions; j++) {
			free(ch->actions[j].name);
			chanmap_template_release(&ch->actions[j].topic);
		}
		free(ch->actions);
		chanmap_template_release(&ch->watchers);
		free(ch->name);
	}
	free(map->channels);
	free(map);
}

bool cable_chanmap_has_generic(const struct cable_chanmap *map)
{
	size_t i;

	for (i = 0; i < map->nchannels; i++) {
		if (map->channels[i].generic)
			return true;
	}
	return false;
}

bool cable_chanmap_uses_claims(const struct cable_chanmap *map)
{
	size_t i;

	for (i = 0; i < map->nchannels; i++) {
		if (map->channels[i].nclaims)
			return true;
	}
	return false;
}
