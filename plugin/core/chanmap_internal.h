/*
 * The channel map's parts and what they share. The contract is include/cable_chanmap.h;
 * this header is private to the core's chanmap_*.c files (hence chanmap_ names without
 * the cable_ prefix):
 *
 *   chanmap_load.c      configuration -> map: channels, params, streams, actions,
 *                       every refusal at load time; freeing the map
 *   chanmap_template.c  topic templates: split into levels once, checked with stand-ins,
 *                       expanded at bind time
 *   chanmap_bind.c      identifier -> binding: params validated, streams and action
 *                       topics expanded; the binding's accessors
 *   chanmap_perform.c   perform -> publish: the action's payload shape, answers
 *   chanmap_text.c      small helpers the parts share: copies, names, quoting client
 *                       text for error messages, exact JSON serialization
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
 *
 * Pure: jansson and POSIX regex, no I/O, no globals. Thread: any; a loaded map is
 * immutable and may be read from several threads.
 */
#ifndef CABLE_CHANMAP_INTERNAL_H
#define CABLE_CHANMAP_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cable_chanmap.h"

/* Longest client-chosen name (channel, action) quoted in an error text. */
#define QUOTE_MAX 48
/* What a placeholder becomes when a template is checked at load time: a valid level. */
#define STANDIN "x"
/* Enough for the decimal form of any json_int_t (long long) and its sign. */
#define INT_TEXT_MAX 24

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

/* ---- chanmap_text.c ----------------------------------------------------------------- */

/* A NUL-terminated malloc'd copy of s[0..len); NULL when out of memory. */
char *chanmap_dup_mem(const char *s, size_t len);

/* Is a[0..alen) exactly the string b? */
bool chanmap_name_is(const char *a, size_t alen, const char *b);

/*
 * Client-chosen names are quoted in error texts, which go to the log: bounded, and
 * anything but printable ASCII replaced, so a name can neither flood the log nor
 * forge a line in it.
 */
void chanmap_quote(char dst[QUOTE_MAX + 4], const char *s, size_t len);

/* Fills err with "out of memory"; returns CABLE_ENOMEM. */
int chanmap_nomem(struct cable_error *err);

/* Serialize into our own malloc'd buffer (NUL-terminated), so that cable_publish_release
 * can free() it whatever allocator jansson was given. */
int chanmap_dump(const json_t *j, size_t flags, char **out, size_t *outlen);

/* The json_dumpb flags that keep every real number of j exact (shortest %.17g form). */
size_t chanmap_dump_flags(const json_t *j);

/* ---- chanmap_template.c ------------------------------------------------------------- */

/*
 * Expand a template into a new NUL-terminated string. EINVAL when a {user} level has
 * no user or the result would exceed CABLE_TOPIC_MAX_LEN (checked before allocating,
 * so a long value cannot make us allocate much), ENOMEM.
 */
int chanmap_expand(const struct template *t, const struct value *vals, const char *user,
                   size_t user_len, char **out);

/* Frees what a template owns (not t itself); accepts a zeroed template. */
void chanmap_template_release(struct template *t);

/*
 * Split a template into levels and resolve placeholders against the channel's params.
 * Braces are reserved: a level containing one must be exactly "{name}".
 */
int chanmap_template_parse(struct template *t, struct channel *ch, const char *src,
                           const char *where, struct cable_error *err);

/* Judge a template by its expansion with stand-ins: streams must be valid filters,
 * action topics valid names (so no wildcards). */
int chanmap_template_check(const struct template *t, bool is_action, const char *where,
                           struct cable_error *err);

/* ---- chanmap_bind.c ----------------------------------------------------------------- */

/* May a client publish to s[0..len)? A valid topic name, not under '$'. */
bool chanmap_publish_topic_ok(const char *s, size_t len);

#endif
