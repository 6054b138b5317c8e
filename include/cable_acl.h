/*
 * Topic ACL: who may read (subscribe, receive) and write (perform) which MQTT topics.
 * This is the security boundary between browsers and the broker; docs/acl.md is the
 * operator's reference, this comment is the contract.
 *
 * Pure: no I/O, no globals, no threads. The rules arrive as a buffer (the adapter reads
 * the file); a loaded struct cable_acl is immutable, so any number of threads may call
 * the check functions on it at once. Every topic input is (pointer, length) and need
 * not be NUL-terminated.
 *
 * Rule file (Mosquitto's acl_file syntax, plus roles), one statement per line:
 *
 *   # comment                          (a line whose first non-blank byte is '#')
 *   topic [read|write|readwrite|deny] <filter>
 *   pattern [read|write|readwrite|deny] <filter>
 *   user <name>
 *   role <name>
 *
 *   - The access word defaults to readwrite. <filter> is the rest of the line (it may
 *     contain spaces), a valid MQTT filter. A line with only an access word and no
 *     filter ("topic read") is an error, not a rule for the topic "read".
 *   - `topic` lines before any `user`/`role` line apply to every principal; after
 *     `user <name>` to that user only; after `role <name>` to principals whose roles
 *     include <name>. Each user and each role has at most one block.
 *   - `pattern` lines apply to every principal wherever they appear. A level that is
 *     exactly "%u" is replaced by the principal's user. The user is substituted only
 *     if it is a valid single level with no '$' (so not empty, no '/', '+', '#', '$',
 *     control characters or invalid UTF-8) and the result is a valid filter.
 *     Otherwise an allowing pattern never matches and a denying pattern applies with
 *     "%u" read as '+': an odd user name can lose access, never gain it.
 *   - Load errors: unknown keyword, bad access word, missing or invalid filter or name,
 *     in a pattern "%u" inside a level or any "%c" (browsers have no client id), in a
 *     topic line a level that is exactly "%u" or "%c" (elsewhere '%' is plain text), a
 *     second block for the same user or role, a NUL byte.
 *   - Tolerated: CRLF line ends, leading and trailing blanks (spaces, tabs), a last line
 *     without a newline, a UTF-8 byte order mark at the start.
 *
 * Evaluation for a principal: the applicable rules are the common block, the user's
 * block, the block of each role in principal->roles, and every pattern.
 *   - Deny wins: if any applicable deny rule matches the topic, the answer is DENY,
 *     whatever allows it and wherever the rules appear.
 *   - Otherwise ALLOW if an applicable rule with the requested access matches.
 *   - Otherwise DENY (default deny).
 *   - MQTT's '$' rule holds throughout: a wildcard never matches a first level that
 *     starts with '$', so '$' topics are reachable only through rules whose filter
 *     itself starts with '$'.
 *   - A NULL acl, a NULL principal or one without a user is denied everything.
 *
 * Thread: any; see above.
 */
#ifndef CABLE_ACL_H
#define CABLE_ACL_H

#include <stddef.h>

#include "cable.h"
#include "cable_principal.h"

struct cable_acl;

enum cable_acl_access {
	CABLE_ACL_READ = 1,  /* subscribe to, or be delivered, a message on the topic */
	CABLE_ACL_WRITE = 2, /* publish to the topic (an ActionCable perform) */
};

enum cable_acl_result {
	CABLE_ACL_DENY = 0,
	CABLE_ACL_ALLOW = 1,
	CABLE_ACL_PARTIAL = 2, /* cable_acl_subscribe only; see there */
};

/*
 * Parse rule text (buf, len). Returns a new ACL (free with cable_acl_free), or NULL with
 * err filled: code CABLE_EINVAL and text "line N: <what>" (offset = byte offset of the
 * offending line), or code CABLE_ENOMEM. An empty text is valid and denies everything.
 */
struct cable_acl *cable_acl_new(const char *buf, size_t len, struct cable_error *err);

/* Accepts NULL. */
void cable_acl_free(struct cable_acl *acl);

/* Number of rules loaded (every topic and pattern line), for the load log line. */
size_t cable_acl_rule_count(const struct cable_acl *acl);

/*
 * May `who` read or write (access: exactly one of enum cable_acl_access) the topic
 * name (topic, len)? Returns CABLE_ACL_ALLOW or CABLE_ACL_DENY; an invalid topic name
 * (wildcards included) is denied. Used for every perform (WRITE) and for each message
 * delivered on a subscription that cable_acl_subscribe answered PARTIAL (READ).
 */
enum cable_acl_result cable_acl_check(const struct cable_acl *acl,
                                      const struct cable_principal *who, int access,
                                      const char *topic, size_t len);

/*
 * May `who` subscribe to the filter (filter, len)? A topic name is a filter too.
 *   CABLE_ACL_DENY     the filter is invalid, or it does not lie within one single
 *                      applicable rule that allows read, or every topic it matches is
 *                      denied by a single deny rule;
 *   CABLE_ACL_ALLOW    every topic it matches is readable: cable_acl_check(READ) would
 *                      answer ALLOW for each, so deliveries need no check;
 *   CABLE_ACL_PARTIAL  allowed, but an applicable deny rule covers some of the topics
 *                      it matches: the caller must check each delivered message with
 *                      cable_acl_check(READ) (and may cache that answer per topic for
 *                      the life of the subscription and this ACL).
 * For a topic name (no wildcard) the answer is never PARTIAL and always equals
 * cable_acl_check(READ). A literal "#" is allowed only by a rule that allows read on
 * every non-'$' topic, i.e. "#" (or its equivalent "+/#").
 */
enum cable_acl_result cable_acl_subscribe(const struct cable_acl *acl,
                                          const struct cable_principal *who, const char *filter,
                                          size_t len);

#endif
