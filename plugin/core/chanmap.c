/*
 * The channel map: configuration -> channels, identifier -> binding, perform -> publish.
 * Pure; the file format in cable_chanmap.h is the specification.
 *
 * DESIGN
 * Templates are split into levels once, when the map is loaded: each level is literal
 * text or a placeholder (a param index, or {user}). Load-time validation expands every
 * template with a harmless stand-in for each placeholder and runs the MQTT topic checks
 * on the result, so literal levels, wildcard placement and the level count are judged
 * by the same code that judges expanded topics at bind time.
 *
 * At bind time every param value is first validated on its own (it must be one clean
 * level), and then every expanded topic is checked again as a whole. Both checks have
 * to be wrong before a client could widen a subscription or reach a '$' topic.
 *
 * A binding copies what it needs (expanded topics, action settings, user, sid) and
 * never points into the map, so a reload can free the old map while subscriptions made
 * under it live on.
 *
 * Client JSON (identifiers, perform data) is parsed with JSON_ALLOW_NUL so that a
 * "\u0000" reaches our own validation instead of depending on the parser's refusal;
 * every client string is therefore handled as (pointer, length), never strlen'd.
 */
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cable_chanmap.h"
#include "cable_topic.h"

#define PARAM_MAX_LENGTH_DEFAULT 128
/* Longest client-chosen name (channel, action) quoted in an error text. */
#define QUOTE_MAX 48
/* What a placeholder becomes when a template is checked at load time: a valid level. */
#define STANDIN "x"
/* Enough for the decimal form of any json_int_t (long long) and its sign. */
#define INT_TEXT_MAX 24

/* ---- Types ------------------------------------------------------------------------ */

enum param_type {
	PARAM_STRING,
	PARAM_INTEGER,
};

struct param {
	char *name;
	enum param_type type;
	size_t max_length; /* string */
	bool has_pattern;  /* string; `pattern` is compiled only when true */
	regex_t pattern;
	json_int_t min, max; /* integer, inclusive */
};

enum level_kind {
	LEVEL_LITERAL,
	LEVEL_PARAM,
	LEVEL_USER,
};

struct level {
	enum level_kind kind;
	size_t param;     /* LEVEL_PARAM: index into channel->params */
	const char *text; /* LEVEL_LITERAL: points into the template's src */
	size_t len;
};

struct template
{
	char *src;
	struct level *levels;
	size_t nlevels;
};

enum payload_shape {
	PAYLOAD_MESSAGE,
	PAYLOAD_DATA,
	PAYLOAD_IDENTITY,
};

struct action {
	char *name;
	struct template topic; /* nlevels == 0: the generic publish, topic from data */
	enum payload_shape shape;
	int qos;
	bool retain;
	bool with_sid;
	bool request;
	enum cable_answer answer;
};

struct channel {
	char *name;
	bool generic;
	bool uses_user; /* some template has {user} */
	char **claims;  /* names used as {claim.NAME}; their values follow the params in vals */
	size_t nclaims;
	struct param *params;
	size_t nparams;
	struct template *streams;
	size_t nstreams;
	enum cable_deliver deliver;
	enum cable_answer answer; /* for actions without their own, and unknown actions */
	bool last_value;          /* replay retained values on subscribe (default true) */
	struct action *actions;
	size_t nactions;
	bool presence, whisper;
	struct cable_presence_config presence_cfg; /* watchers_topic unused: see watchers */
	struct template watchers;                  /* nlevels == 0: no watcher-count mirror */
	struct cable_whisper_config whisper_cfg;
};

struct cable_chanmap {
	struct channel *channels;
	size_t nchannels;
};

struct bound_action {
	char *name;
	char *topic; /* NULL: the generic publish, topic from data */
	enum payload_shape shape;
	int qos;
	bool retain;
	bool with_sid;
	bool request;
	enum cable_answer answer;
};

struct cable_binding {
	char *channel;
	char **streams;
	size_t nstreams;
	enum cable_deliver deliver;
	enum cable_answer answer; /* the channel's */
	bool last_value;
	struct bound_action *actions;
	size_t nactions;
	char *user; /* NULL without a principal */
	char *sid;  /* NULL when none was given */
	bool presence, whisper;
	struct cable_presence_config presence_cfg; /* watchers_topic: owned, expanded */
	struct cable_whisper_config whisper_cfg;
};

/* A param value during bind: points into the identifier's JSON, or into `num`. */
struct value {
	const char *s;
	size_t len;
	char num[INT_TEXT_MAX];
};

/* ---- Small helpers ---------------------------------------------------------------- */

static char *dup_mem(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static bool name_is(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

/*
 * Client-chosen names are quoted in error texts, which go to the log: bounded, and
 * anything but printable ASCII replaced, so a name can neither flood the log nor
 * forge a line in it.
 */
static void quote(char dst[QUOTE_MAX + 4], const char *s, size_t len)
{
	size_t i, n = len > QUOTE_MAX ? QUOTE_MAX : len;

	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	if (n < len) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

static int nomem(struct cable_error *err)
{
	return cable_error_set(err, CABLE_ENOMEM, "out of memory");
}

/* Serialize into our own malloc'd buffer (NUL-terminated), so that cable_publish_release
 * can free() it whatever allocator jansson was given. */
static int dump(const json_t *j, size_t flags, char **out, size_t *outlen)
{
	size_t n;
	char *buf;

	n = json_dumpb(j, NULL, 0, flags);
	if (n == 0)
		return CABLE_ENOMEM;
	buf = malloc(n + 1);
	if (buf == NULL)
		return CABLE_ENOMEM;
	if (json_dumpb(j, buf, n, flags) != n) {
		free(buf);
		return CABLE_ENOMEM;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return CABLE_OK;
}

/*
 * jansson prints reals with 17 significant digits by default, which turns the 0.1 a
 * browser sent into 0.10000000000000001. Find the fewest digits (15..17) that still
 * round-trip every real in the document, so common values come out as sent and none
 * changes its value.
 */
static int real_precision(const json_t *j)
{
	char buf[40];
	const char *key;
	json_t *v;
	size_t i;
	int p, best = 15, sub;
	double d;

	switch (json_typeof(j)) {
	case JSON_REAL:
		d = json_real_value(j);
		for (p = 15; p < 17; p++) {
			snprintf(buf, sizeof(buf), "%.*g", p, d);
			if (strtod(buf, NULL) == d)
				return p;
		}
		return 17;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
		{
			sub = real_precision(v);
			best = sub > best ? sub : best;
		}
		return best;
	case JSON_OBJECT:
		json_object_foreach((json_t *)j, key, v)
		{
			sub = real_precision(v);
			best = sub > best ? sub : best;
		}
		return best;
	default:
		return best;
	}
}

static size_t dump_flags(const json_t *j)
{
	return JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
	       JSON_REAL_PRECISION((size_t)real_precision(j));
}

/* ---- Templates -------------------------------------------------------------------- */

/* The text a level expands to; NULL when it is {user} and there is no usable user.
 * vals == NULL means "stand-ins everywhere" (the load-time check). */
static const char *level_text(const struct level *l, const struct value *vals, const char *user,
                              size_t user_len, size_t *len)
{
	switch (l->kind) {
	case LEVEL_LITERAL:
		*len = l->len;
		return l->text;
	case LEVEL_PARAM:
		if (vals == NULL)
			break;
		*len = vals[l->param].len;
		return vals[l->param].s;
	case LEVEL_USER:
		if (vals == NULL)
			break;
		*len = user_len;
		return user;
	}
	*len = strlen(STANDIN);
	return STANDIN;
}

/*
 * Expand a template into a new NUL-terminated string. EINVAL when a {user} level has
 * no user or the result would exceed CABLE_TOPIC_MAX_LEN (checked before allocating,
 * so a long value cannot make us allocate much), ENOMEM.
 */
static int expand(const struct template *t, const struct value *vals, const char *user,
                  size_t user_len, char **out)
{
	size_t i, n, total = 0;
	const char *s;
	char *buf, *p;

	for (i = 0; i < t->nlevels; i++) {
		s = level_text(&t->levels[i], vals, user, user_len, &n);
		if (s == NULL || n > CABLE_TOPIC_MAX_LEN)
			return CABLE_EINVAL;
		total += n + (i > 0);
		if (total > CABLE_TOPIC_MAX_LEN)
			return CABLE_EINVAL;
	}
	buf = malloc(total + 1);
	if (buf == NULL)
		return CABLE_ENOMEM;
	p = buf;
	for (i = 0; i < t->nlevels; i++) {
		s = level_text(&t->levels[i], vals, user, user_len, &n);
		if (i > 0)
			*p++ = '/';
		memcpy(p, s, n);
		p += n;
	}
	*p = '\0';
	*out = buf;
	return CABLE_OK;
}

static void template_release(struct template *t)
{
	free(t->src);
	free(t->levels);
	memset(t, 0, sizeof(*t));
}

/*
 * The index of claim `name` among the channel's {claim.NAME} placeholders, adding it
 * if new; a negative status on a bad name or ENOMEM.
 */
static int claim_slot(struct channel *ch, const char *name, size_t len, const char *where,
                      struct cable_error *err)
{
	char **grown;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: a claim name is letters, digits and '_' only",
			                       where);
	}
	for (i = 0; i < ch->nclaims; i++) {
		if (strlen(ch->claims[i]) == len && memcmp(ch->claims[i], name, len) == 0)
			return (int)i;
	}
	grown = realloc(ch->claims, (ch->nclaims + 1) * sizeof(*grown));
	if (grown == NULL)
		return nomem(err);
	ch->claims = grown;
	ch->claims[ch->nclaims] = dup_mem(name, len);
	if (ch->claims[ch->nclaims] == NULL)
		return nomem(err);
	return (int)ch->nclaims++;
}

/*
 * Split a template into levels and resolve placeholders against the channel's params.
 * Braces are reserved: a level containing one must be exactly "{name}".
 */
static int template_parse(struct template *t, struct channel *ch, const char *src,
                          const char *where, struct cable_error *err)
{
	size_t i, n, len = strlen(src), start, end;
	const char *lv, *name;
	size_t lvlen, namelen;
	struct level *l;

	if (len == 0)
		return cable_error_set(err, CABLE_EINVAL, "%s: empty topic", where);
	if (src[0] == '$')
		return cable_error_set(err, CABLE_EINVAL, "%s: a topic may not start with '$'",
		                       where);
	t->src = dup_mem(src, len);
	if (t->src == NULL)
		return nomem(err);
	for (i = 0, n = 1; i < len; i++)
		n += src[i] == '/';
	t->levels = calloc(n, sizeof(*t->levels));
	if (t->levels == NULL)
		return nomem(err);
	t->nlevels = n;
	for (i = 0, start = 0; i < n; i++, start = end + 1) {
		for (end = start; end < len && t->src[end] != '/'; end++)
			;
		lv = t->src + start;
		lvlen = end - start;
		l = &t->levels[i];
		if (memchr(lv, '{', lvlen) == NULL && memchr(lv, '}', lvlen) == NULL) {
			l->kind = LEVEL_LITERAL;
			l->text = lv;
			l->len = lvlen;
			continue;
		}
		name = lv + 1;
		namelen = lvlen >= 2 ? lvlen - 2 : 0;
		if (lvlen < 3 || lv[0] != '{' || lv[lvlen - 1] != '}' ||
		    memchr(name, '{', namelen) || memchr(name, '}', namelen))
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: a placeholder must be a whole level, "
			                       "like a/{name}/b (level %zu is \"%.*s\")",
			                       where, i + 1, (int)(lvlen > 40 ? 40 : lvlen), lv);
		if (name_is(name, namelen, "user")) {
			l->kind = LEVEL_USER;
			ch->uses_user = true;
			continue;
		}
		if (namelen > 6 && memcmp(name, "claim.", 6) == 0) {
			int rc = claim_slot(ch, name + 6, namelen - 6, where, err);

			if (rc < 0)
				return rc;
			l->kind = LEVEL_PARAM;
			l->param = ch->nparams + (size_t)rc;
			continue;
		}
		for (l->param = 0; l->param < ch->nparams; l->param++)
			if (name_is(name, namelen, ch->params[l->param].name))
				break;
		if (l->param == ch->nparams)
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: placeholder {%.*s} is not a declared param",
			                       where, (int)(namelen > 40 ? 40 : namelen), name);
		l->kind = LEVEL_PARAM;
	}
	return CABLE_OK;
}

/* Judge a template by its expansion with stand-ins: streams must be valid filters,
 * action topics valid names (so no wildcards). */
static int template_check(const struct template *t, bool is_action, const char *where,
                          struct cable_error *err)
{
	char *s;
	size_t len;
	int rc;

	rc = expand(t, NULL, NULL, 0, &s);
	if (rc == CABLE_ENOMEM)
		return nomem(err);
	if (rc != CABLE_OK)
		return cable_error_set(err, CABLE_EINVAL, "%s: longer than %d bytes", where,
		                       CABLE_TOPIC_MAX_LEN);
	len = strlen(s);
	if (is_action && cable_topic_filter_valid(s, len) && cable_topic_has_wildcard(s, len))
		rc = cable_error_set(err, CABLE_EINVAL,
		                     "%s: an action topic may not contain wildcards", where);
	else if (is_action && !cable_topic_name_valid(s, len))
		rc = cable_error_set(err, CABLE_EINVAL, "%s: not a valid topic name", where);
	else if (!is_action && !cable_topic_filter_valid(s, len))
		rc = cable_error_set(err, CABLE_EINVAL, "%s: not a valid topic filter", where);
	free(s);
	return rc;
}

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
	p->name = dup_mem(name, strlen(name));
	if (p->name == NULL)
		return nomem(err);
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
		return nomem(err);
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
		return nomem(err);
	json_array_foreach(streams, i, s)
	{
		snprintf(where, sizeof(where), "channels.%s.streams[%zu]", ch->name, i);
		if (!json_is_string(s))
			return cable_error_set(err, CABLE_EINVAL, "%s: must be a string", where);
		rc = template_parse(&ch->streams[ch->nstreams++], ch, json_string_value(s), where,
		                    err);
		if (rc == CABLE_OK)
			rc = template_check(&ch->streams[i], false, where, err);
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

	a->name = dup_mem(name, strlen(name));
	if (a->name == NULL)
		return nomem(err);
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
		rc = template_parse(&a->topic, ch, json_string_value(topic), twhere, err);
		if (rc == CABLE_OK)
			rc = template_check(&a->topic, true, twhere, err);
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
		return nomem(err);
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
		rc = template_parse(&ch->watchers, ch, json_string_value(topic), twhere, err);
		if (rc == CABLE_OK)
			rc = template_check(&ch->watchers, true, twhere, err);
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
	ch->name = dup_mem(name, strlen(name));
	if (ch->name == NULL)
		return nomem(err);
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
	nomem(err);
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
			template_release(&ch->streams[j]);
		free(ch->streams);
		for (j = 0; j < ch->nactions; j++) {
			free(ch->actions[j].name);
			template_release(&ch->actions[j].topic);
		}
		free(ch->actions);
		template_release(&ch->watchers);
		free(ch->name);
	}
	free(map->channels);
	free(map);
}

/* ---- Binding ---------------------------------------------------------------------- */

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
		copy = dup_mem(s, len);
		if (copy == NULL)
			return nomem(err);
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
		if (name_is(name, len, map->channels[i].name))
			return &map->channels[i];
	return NULL;
}

static bool stream_ok(const char *s)
{
	size_t len = strlen(s);

	return s[0] != '$' && cable_topic_filter_valid(s, len);
}

static bool publish_topic_ok(const char *s, size_t len)
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
	b->streams[0] = dup_mem(json_string_value(t), json_string_length(t));
	if (b->streams[0] == NULL)
		return nomem(err);
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
		return nomem(err);
	for (i = 0; i < ch->nparams && rc == CABLE_OK; i++)
		rc = bind_param(ch, &ch->params[i], json_object_get(root, ch->params[i].name),
		                &vals[i], err);
	for (i = 0; i < ch->nclaims && rc == CABLE_OK; i++)
		rc = bind_claim(ch, ch->claims[i], claims, &vals[ch->nparams + i], err);
	b->nstreams = ch->nstreams; /* zeroed array: cable_binding_free copes with gaps */
	for (i = 0; i < ch->nstreams && rc == CABLE_OK; i++) {
		rc = expand(&ch->streams[i], vals, user, ulen, &b->streams[i]);
		if (rc == CABLE_ENOMEM)
			nomem(err);
		else if (rc != CABLE_OK || !stream_ok(b->streams[i]))
			rc = cable_error_set(
			        err, CABLE_EINVAL,
			        "channels.%s.streams[%zu]: expands to an invalid topic", ch->name,
			        i);
	}
	for (i = 0; i < ch->nactions && rc == CABLE_OK; i++) {
		rc = expand(&ch->actions[i].topic, vals, user, ulen, &b->actions[i].topic);
		if (rc == CABLE_ENOMEM)
			nomem(err);
		else if (rc != CABLE_OK ||
		         !publish_topic_ok(b->actions[i].topic, strlen(b->actions[i].topic)))
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "channels.%s.actions.%s.topic: expands to an invalid "
			                     "topic",
			                     ch->name, ch->actions[i].name);
	}
	if (rc == CABLE_OK && ch->watchers.nlevels) {
		char *t = NULL;

		rc = expand(&ch->watchers, vals, user, ulen, &t);
		b->presence_cfg.watchers_topic = t;
		if (rc == CABLE_ENOMEM)
			nomem(err);
		else if (rc != CABLE_OK || !publish_topic_ok(t, strlen(t)))
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
		quote(q, json_string_value(jch), json_string_length(jch));
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
	b->channel = dup_mem(ch->name, strlen(ch->name));
	b->streams = calloc(ch->nstreams + 1, sizeof(*b->streams));
	b->actions = calloc(ch->nactions + 1, sizeof(*b->actions));
	if (b->channel == NULL || b->streams == NULL || b->actions == NULL)
		goto nomem;
	if (user && (b->user = dup_mem(user, strlen(user))) == NULL)
		goto nomem;
	if (sid && (b->sid = dup_mem(sid, strlen(sid))) == NULL)
		goto nomem;
	/* The arrays are zeroed, so cable_binding_free can release a half-filled one. */
	b->nactions = ch->nactions;
	for (i = 0; i < ch->nactions; i++) {
		b->actions[i].name = dup_mem(ch->actions[i].name, strlen(ch->actions[i].name));
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
	rc = nomem(err);
done:
	cable_binding_free(b);
	json_decref(root);
	return rc;
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

/* ---- Perform ---------------------------------------------------------------------- */

static int payload_message(const struct cable_binding *b, const struct bound_action *a,
                           json_t *data, char **out, size_t *outlen, struct cable_error *err)
{
	json_t *m = json_object_get(data, "message");

	if (m == NULL)
		return cable_error_set(err, CABLE_EINVAL,
		                       "channels.%s.actions.%s: data has no \"message\"",
		                       b->channel, a->name);
	if (json_is_string(m)) {
		*out = dup_mem(json_string_value(m), json_string_length(m));
		*outlen = json_string_length(m);
		return *out ? CABLE_OK : nomem(err);
	}
	return dump(m, dump_flags(m), out, outlen) == CABLE_OK ? CABLE_OK : nomem(err);
}

static int payload_identity(const struct cable_binding *b, const struct bound_action *a,
                            json_t *data, char **out, size_t *outlen, struct cable_error *err)
{
	json_t *obj, *user, *v;
	const char *key;
	int rc = CABLE_ENOMEM;

	obj = json_object();
	if (obj == NULL)
		return nomem(err);
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
	if (dump(obj, dump_flags(obj), out, outlen) != CABLE_OK)
		goto nomem;
	rc = CABLE_OK;
	goto done;
nomem:
	rc = nomem(err);
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
	else if (info && dump(r, JSON_ENCODE_ANY | JSON_COMPACT, &info->request_id,
	                      &info->request_id_len) != CABLE_OK)
		rc = nomem(err);
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
		if (name_is(name, namelen, b->actions[i].name))
			a = &b->actions[i];
	if (a != NULL && info) {
		info->answer = a->answer;
		info->request = a->request;
	}
	/* The name is copied only for an answer (no allocation on the plain path). */
	if (info && (info->answer != CABLE_ANSWER_NONE || info->request) &&
	    namelen <= ANSWER_ACTION_MAX) {
		info->action = dup_mem(name, namelen);
		info->action_len = namelen;
		if (info->action == NULL) {
			rc = nomem(err);
			goto done;
		}
	}
	/* Before anything can fail on the action, so a refusal still echoes the request. */
	if ((rc = take_request_id(b, root, info, err)) != CABLE_OK)
		goto done;
	if (a == NULL) {
		quote(q, name, namelen);
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
		topic = dup_mem(a->topic, strlen(a->topic));
	} else {
		jt = json_object_get(root, "topic");
		if (!json_is_string(jt) ||
		    !publish_topic_ok(json_string_value(jt), json_string_length(jt))) {
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "channels.%s.actions.%s: \"topic\" is missing or not "
			                     "a topic name outside '$'",
			                     b->channel, a->name);
			goto done;
		}
		topic = dup_mem(json_string_value(jt), json_string_length(jt));
	}
	if (topic == NULL) {
		rc = nomem(err);
		goto done;
	}

	switch (a->shape) {
	case PAYLOAD_MESSAGE:
		rc = payload_message(b, a, root, &payload, &plen, err);
		break;
	case PAYLOAD_DATA:
		json_object_del(root, "action");
		rc = dump(root, dump_flags(root), &payload, &plen);
		if (rc != CABLE_OK)
			nomem(err);
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
