/*
 * Authentication at connect (auth.h): the session id, the token from its first source
 * (query parameter, cookie, Authorization header), its verification against the rules'
 * keys and policy, and the connection limits in total, per client address and per user.
 * auth.c alone writes struct gw_limits. Gateway thread.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mosquitto.h>
#include <openssl/rand.h>

#include "cable_cookie.h"
#include "cable_jwt.h"
#include "counter.h"
#include "gw.h"

const char *auth_failure_name(enum auth_failure f)
{
	static const char *const names[AUTH_NREASONS] = {
	        [AUTH_NO_TOKEN] = "no_token",
	        [AUTH_EXPIRED] = "expired",
	        [AUTH_BAD_SIGNATURE] = "bad_signature",
	        [AUTH_INVALID] = "invalid",
	};

	return (unsigned)f < AUTH_NREASONS ? names[f] : "invalid";
}
void make_sid(char *out)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[CABLE_SID_LEN];
	size_t i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		memset(raw, 0, sizeof(raw)); /* never happens with a seeded OpenSSL 3 */
	for (i = 0; i < CABLE_SID_LEN; i++)
		out[i] = alphabet[raw[i] & 63];
	out[CABLE_SID_LEN] = '\0';
}

/*
 * The token cookie (plugin_opt_token_cookie) copied into buf, NUL-terminated; NULL when
 * there is none. Parsed by cable_cookie_get: the exact name only, and refused when it
 * occurs twice (cookie tossing from a sibling subdomain), with a log line.
 */
static const char *token_cookie(struct session *s, char *buf, size_t len)
{
	const char *name = s->gw->cfg.token_cookie, *v;
	struct cable_error err = {0};
	int total = lws_hdr_total_length(s->wsi, WSI_TOKEN_HTTP_COOKIE);
	size_t vn;
	char *header;
	int rc;

	if (total <= 0 || (header = malloc((size_t)total + 1)) == NULL)
		return NULL;
	if (lws_hdr_copy(s->wsi, header, total + 1, WSI_TOKEN_HTTP_COOKIE) < 0) {
		free(header);
		return NULL;
	}
	rc = cable_cookie_get(header, strlen(header), name, strlen(name), &v, &vn, &err);
	if (rc == CABLE_EINVAL)
		gw_log(s->gw, MOSQ_LOG_NOTICE, "connection %s (%s): token cookie ignored: %s",
		       s->sid, s->peer, CABLE_LOG_STR(err.text));
	if (rc != CABLE_OK || vn == 0 || vn >= len) {
		free(header);
		return NULL;
	}
	memcpy(buf, v, vn);
	buf[vn] = '\0';
	free(header);
	return buf;
}

/*
 * The token, from the first place that has one: the query parameter (browsers and
 * AnyCable clients), the configured cookie, or "Authorization: Bearer" (non-browser
 * clients). NULL if none.
 */
static const char *find_token(struct session *s, char *buf, size_t len, const char **where)
{
	char name[80];
	const char *t;
	int hl;

	snprintf(name, sizeof(name), "%s=", s->gw->cfg.token_param);
	t = lws_get_urlarg_by_name(s->wsi, name, buf, (int)len);
	if (t && *t) {
		*where = "query";
		return t;
	}
	if (s->gw->cfg.token_cookie) {
		t = token_cookie(s, buf, len);
		if (t != NULL) {
			*where = "cookie";
			return t;
		}
	}
	hl = lws_hdr_copy(s->wsi, buf, (int)len, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (hl > 7 && strncasecmp(buf, "Bearer ", 7) == 0) {
		*where = "authorization";
		return buf + 7;
	}
	*where = "none";
	return NULL;
}

/*
 * Which metric label a verification failure counts under. cable_jwt_verify reports
 * every refusal as CABLE_EAUTH with a fixed text (cable_jwt.h), so the text is what
 * tells them apart, here and nowhere else.
 */
static enum auth_failure failure_of(const struct cable_error *err)
{
	if (strstr(err->text, "expired"))
		return AUTH_EXPIRED;
	if (strstr(err->text, "signature"))
		return AUTH_BAD_SIGNATURE;
	return AUTH_INVALID;
}

int authenticate(struct session *s)
{
	struct cable_rules *rules = s->gw->rules;
	struct cable_error err = {0};
	char buf[CABLE_JWT_MAX_LEN + 64];
	const char *token, *where;
	long long now = (long long)time(NULL);
	int rc;

	if (s->gw->cfg.anonymous) {
		s->who.user = strdup("anonymous");
		return s->who.user ? CABLE_OK : CABLE_ENOMEM;
	}
	token = find_token(s, buf, sizeof(buf), &where);
	if (token == NULL || *token == '\0') {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) unauthorized: no token (?%s=%s%s, or Authorization: "
		       "Bearer)",
		       s->sid, s->peer, s->gw->cfg.token_param,
		       s->gw->cfg.token_cookie ? ", cookie " : "",
		       s->gw->cfg.token_cookie ? s->gw->cfg.token_cookie : "");
		s->gw->limits.failures[AUTH_NO_TOKEN]++;
		return CABLE_EAUTH;
	}
	rc = cable_jwt_verify(rules->keys, &rules->policy, token, strlen(token), now, &s->who,
	                      &err);
	if (rc != CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) unauthorized: %s (token from %s)", s->sid, s->peer,
		       CABLE_LOG_STR(err.text), where);
		s->gw->limits.failures[failure_of(&err)]++;
		return rc;
	}
	/*
	 * The claim set is kept for {claim.NAME} placeholders only: a jansson object per
	 * connection is about 400 bytes. (After a reload that adds such placeholders, a
	 * connection opened before it must reconnect to use them; tokens are short-lived.)
	 */
	if (!cable_chanmap_uses_claims(rules->chanmap)) {
		json_decref(s->who.claims);
		s->who.claims = NULL;
	}
	/*
	 * A token is accepted while now < exp + leeway, so that is also when the connection
	 * ends: from here on who.exp is that moment (accepting a token inside the leeway and
	 * closing it at once as expired would contradict itself).
	 */
	if (s->who.exp && rules->policy.leeway > 0 && s->who.exp < LLONG_MAX - rules->policy.leeway)
		s->who.exp += rules->policy.leeway;
	if (s->who.exp && expiry_add(s) != CABLE_OK) {
		gw_log(s->gw, MOSQ_LOG_WARNING, "connection %s (%s) refused: out of memory", s->sid,
		       s->peer);
		return CABLE_ENOMEM;
	}
	return CABLE_OK;
}

/* The connection limits. A refused connection is told why and closed (1013). */
bool within_limits(struct session *s)
{
	struct gw *gw = s->gw;

	size_t n;

	if (gw->cfg.max_connections && atomic_load(&gw->hub->sessions) > gw->cfg.max_connections) {
		gw_log(gw, MOSQ_LOG_WARNING,
		       "connection from %s refused: %zu connections (plugin_opt_max_connections)",
		       s->peer, gw->cfg.max_connections);
		session_close(s, CABLE_DISCONNECT_TOO_MANY_CONNECTIONS, true,
		              CLOSE_TRY_AGAIN_LATER);
		return false;
	}
	s->counted_ip = true;
	pthread_mutex_lock(&gw->hub->lock);
	n = counter_add(&gw->hub->per_ip, s->peer, +1);
	pthread_mutex_unlock(&gw->hub->lock);
	if (n > gw->cfg.max_per_ip && gw->cfg.max_per_ip) {
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "connection from %s refused: %zu connections from that address "
		       "(plugin_opt_max_connections_per_ip)",
		       s->peer, gw->cfg.max_per_ip);
		session_close(s, CABLE_DISCONNECT_TOO_MANY_CONNECTIONS, true,
		              CLOSE_TRY_AGAIN_LATER);
		return false;
	}
	return true;
}

bool within_user_limit(struct session *s)
{
	struct gw *gw = s->gw;
	size_t n;

	s->counted_user = true;
	pthread_mutex_lock(&gw->hub->lock);
	n = counter_add(&gw->hub->per_user, s->who.user, +1);
	if (n != SIZE_MAX && n != 0)
		HASH_FIND(hh, gw->hub->per_user, s->who.user, strlen(s->who.user), s->user);
	pthread_mutex_unlock(&gw->hub->lock);
	if (n > gw->cfg.max_per_user && gw->cfg.max_per_user) {
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "connection %s (%s) refused: user %s has %zu connections "
		       "(plugin_opt_max_connections_per_user)",
		       s->sid, s->peer, CABLE_LOG_STR(s->who.user), gw->cfg.max_per_user);
		/* Probably a page that leaks consumers: tell it not to retry. */
		session_close(s, CABLE_DISCONNECT_TOO_MANY_CONNECTIONS, false,
		              CLOSE_TRY_AGAIN_LATER);
		return false;
	}
	return true;
}

void auth_closed(struct session *s)
{
	struct gw_hub *hub = s->gw->hub;

	pthread_mutex_lock(&hub->lock);
	if (s->counted_ip)
		counter_add(&hub->per_ip, s->peer, -1);
	if (s->counted_user)
		counter_add(&hub->per_user, s->who.user, -1);
	pthread_mutex_unlock(&hub->lock);
	s->counted_ip = s->counted_user = false;
	s->user = NULL;
}

/*
 * Charge a new subscription's cost to its user's budget (shared by the user's
 * connections on every shard); false, and nothing charged, when it would exceed it.
 */
bool auth_user_charge(struct session *s, size_t cost)
{
	size_t max = s->gw->cfg.max_user_sub_bytes;
	bool ok = true;

	if (s->user == NULL)
		return true;
	pthread_mutex_lock(&s->gw->hub->lock);
	if (max && s->user->sub_bytes + cost > max)
		ok = false;
	else
		s->user->sub_bytes += cost;
	pthread_mutex_unlock(&s->gw->hub->lock);
	return ok;
}

void auth_user_refund(struct session *s, size_t cost)
{
	if (s->user == NULL)
		return;
	pthread_mutex_lock(&s->gw->hub->lock);
	s->user->sub_bytes -= cost;
	pthread_mutex_unlock(&s->gw->hub->lock);
}
