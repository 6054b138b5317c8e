/*
 * A topic tree: a set of MQTT subscription filters, each with a value, that finds
 * every filter matching a topic name in time that depends on the topic and on the
 * filters that match it, not on how many filters there are.
 *
 * Each level of a filter is a node; a node's exact children are hashed by level, and
 * '+' and '#' have a slot of their own, so matching "a/b/c" visits at most the nodes
 * reachable by spelling the topic with some levels replaced by '+' (plus each '#'
 * found on the way). Matching follows cable_topic_matches exactly: '+' is one level,
 * "a/#" also matches "a", and a wildcard in the first level never matches a topic
 * that starts with '$'.
 *
 * Pure: no I/O, no globals. Values are the caller's (never freed or dereferenced
 * here). A tree is used by one thread at a time.
 *
 *   struct cable_tree *t = cable_tree_new();
 *   cable_tree_put(t, "sites/+/sensors/#", 17, route);
 *   cable_tree_match(t, "sites/7/sensors/t", 17, deliver, ctx);  // deliver(route, ctx)
 *   route = cable_tree_del(t, "sites/+/sensors/#", 17);
 *   cable_tree_free(t, NULL);
 */
#ifndef CABLE_TREE_H
#define CABLE_TREE_H

#include <stddef.h>

struct cable_tree;

/* An empty tree; NULL when out of memory. */
struct cable_tree *cable_tree_new(void);

/* Free the tree and its nodes, calling free_value (if not NULL) on each value. NULL is fine. */
void cable_tree_free(struct cable_tree *t, void (*free_value)(void *value));

/*
 * Set the value of `filter` (a valid filter, cable_topic_filter_valid; value not
 * NULL), replacing any value it had. CABLE_EINVAL for an invalid filter or a NULL
 * value, CABLE_ENOMEM when out of memory (the tree is then as it was).
 */
int cable_tree_put(struct cable_tree *t, const char *filter, size_t len, void *value);

/* The value of exactly this filter (no matching), or NULL. */
void *cable_tree_get(const struct cable_tree *t, const char *filter, size_t len);

/* Remove the filter; returns its value, or NULL when it was not there. */
void *cable_tree_del(struct cable_tree *t, const char *filter, size_t len);

/* How many filters the tree holds. */
size_t cable_tree_count(const struct cable_tree *t);

/*
 * Call fn(value, arg) once for every filter that matches the topic name (a valid name,
 * cable_topic_name_valid; otherwise nothing matches), in no particular order. fn must
 * not change the tree. Returns the number of calls.
 */
size_t cable_tree_match(const struct cable_tree *t, const char *topic, size_t len,
                        void (*fn)(void *value, void *arg), void *arg);

#endif
