/*
 * Authentication at connect: the token's sources (query, cookie, Authorization), its
 * verification, the session id, and the connection limits in total, per client address
 * and per user. auth.c alone writes struct gw_limits. Gateway thread.
 */
#ifndef CABLE_AUTH_H
#define CABLE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

struct session;
struct counter;

/* Why a connection was refused at authentication (cable_auth_failures_total{reason}). */
enum auth_failure { AUTH_NO_TOKEN, AUTH_EXPIRED, AUTH_BAD_SIGNATURE, AUTH_INVALID, AUTH_NREASONS };

/* The counts per address and per user span the shards: in struct gw_hub (shard.h). */
struct gw_limits {
	uint64_t failures[AUTH_NREASONS];
};

/* The metric label of a failure. Never NULL. */
const char *auth_failure_name(enum auth_failure f);

/* A new random session id (CABLE_SID_LEN characters and a NUL). */
void make_sid(char *out);

/* The limits before authentication (total, per address); false: closed with a reason. */
bool within_limits(struct session *s);

/* Find and verify the token, fill s->who; CABLE_OK, or logged and counted. */
int authenticate(struct session *s);

/* The per-user limit, after authentication; false: closed with a reason. */
bool within_user_limit(struct session *s);

/* The session is gone: uncount it. */
void auth_closed(struct session *s);

/*
 * The user's subscription budget (plugin_opt_max_subscription_bytes_per_user) over all
 * its connections: charge fails, charging nothing, when cost would exceed it.
 */
bool auth_user_charge(struct session *s, size_t cost);
void auth_user_refund(struct session *s, size_t cost);

#endif
