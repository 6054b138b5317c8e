/*
 * MQTT topic names and filters: validation and matching.
 *
 * Pure: no I/O, no globals, no allocation. Every input is (pointer, length) and need
 * not be NUL-terminated. Semantics are MQTT 3.1.1/5 as implemented by Mosquitto 2.0
 * (lib/util_topic.c): '+' matches one level, '#' the rest (including the parent level:
 * "a/#" matches "a"), and a wildcard in the first level never matches a topic that
 * starts with '$'.
 *
 * Thread: any.
 */
#ifndef CABLE_TOPIC_H
#define CABLE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define CABLE_TOPIC_MAX_LEN    65535
#define CABLE_TOPIC_MAX_LEVELS 200

/*
 * Valid UTF-8 as MQTT requires (and mosquitto_validate_utf8 checks): well-formed,
 * no overlong forms, no surrogates, no code points above U+10FFFF, no U+0000,
 * no control characters U+0001..U+001F and U+007F..U+009F, and no non-characters
 * (U+FDD0..U+FDEF and U+xFFFE/U+xFFFF in every plane). Unlike libmosquitto, a
 * sequence truncated by `len` is always rejected without reading past `len`.
 */
bool cable_utf8_valid(const char *s, size_t len);

/*
 * A topic name a client may publish to: 1..CABLE_TOPIC_MAX_LEN bytes, valid UTF-8,
 * no '+' or '#', at most CABLE_TOPIC_MAX_LEVELS levels. (A leading '$' is valid
 * syntax; whether it is allowed is policy, decided by the caller.)
 */
bool cable_topic_name_valid(const char *s, size_t len);

/*
 * A subscription filter: as a name, but '+' may stand alone as a whole level and '#'
 * only alone as the last level.
 */
bool cable_topic_filter_valid(const char *s, size_t len);

/* True when a filter contains '+' or '#' as a level (assumes a valid filter). */
bool cable_topic_has_wildcard(const char *s, size_t len);

/*
 * Does the topic name match the filter? Both must be valid (the result is false
 * otherwise). Same answer as libmosquitto's mosquitto_topic_matches_sub.
 */
bool cable_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/*
 * Is every topic matched by filter `inner` also matched by filter `outer`?
 * ("a/+/c" lies within "a/#"; "a/#" does not lie within "a/+/c".) Both must be
 * valid filters; the result is false otherwise. Used by the ACL to check that a
 * wildcard subscription stays inside an allowed filter.
 */
bool cable_topic_filter_within(const char *inner, size_t ilen, const char *outer, size_t olen);

/*
 * The same two tests for arguments the caller has already validated
 * (cable_topic_filter_valid / cable_topic_name_valid), without validating them again:
 * the ACL tests one query against every rule, all checked once. Given invalid
 * arguments the answer is meaningless, but nothing outside them is read.
 */
bool cable_topic_matches_valid(const char *filter, size_t flen, const char *topic, size_t tlen);
bool cable_topic_filter_within_valid(const char *inner, size_t ilen, const char *outer,
                                     size_t olen);

/*
 * A value that is substituted into a topic template as one whole level (a channel
 * parameter, a user name): 1..CABLE_TOPIC_MAX_LEN bytes, valid UTF-8, no '/', '+',
 * '#', and not starting with '$'. Such a value can never widen a topic or reach a
 * system topic.
 */
bool cable_topic_level_valid(const char *s, size_t len);

/*
 * Walks the '/'-separated levels of (s, len): n slashes give n + 1 levels, and the
 * empty string has one (empty) level.
 *
 *   struct cable_topic_cursor c;
 *   cable_topic_cursor_init(&c, s, len);
 *   while (cable_topic_cursor_next(&c, &level, &level_len)) ...
 */
struct cable_topic_cursor {
	const char *s;
	size_t len;
	size_t pos; /* start of the next level */
	bool more;  /* a next level exists */
};

void cable_topic_cursor_init(struct cable_topic_cursor *c, const char *s, size_t len);

/* The next level in (*lvl, *n); false once every level has been returned. */
bool cable_topic_cursor_next(struct cable_topic_cursor *c, const char **lvl, size_t *n);

#endif
