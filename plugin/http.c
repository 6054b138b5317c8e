/*
 * Plain HTTP on the WebSocket port (http.h): /health, /metrics and the static directory,
 * and the filters an upgrade must pass (Sec-WebSocket-Protocol length, path, Origin).
 * http.c alone writes struct gw_http. Gateway thread, except http_init and
 * http_release (broker thread, in start() and stop()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "gw.h"

static int header_equals(struct lws *wsi, enum lws_token_indexes t, const char *want)
{
	char buf[1024];
	int n = lws_hdr_copy(wsi, buf, sizeof(buf), t);

	return n >= 0 && strcmp(buf, want) == 0;
}

/* Origin check before the upgrade; a refusal is an HTTP 403 (and a log line). */
static bool origin_allowed(struct gw *gw, struct lws *wsi)
{
	char origin[512], peer[64];
	int n;

	if (gw->http.origins == NULL)
		return true;
	n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (cable_origins_allow(gw->http.origins, n > 0 ? origin : NULL, n > 0 ? (size_t)n : 0))
		return true;
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	gw_log(gw, MOSQ_LOG_NOTICE,
	       "upgrade from %s refused: Origin '%s' is not allowed "
	       "(plugin_opt_allowed_origins)",
	       peer, n > 0 ? CABLE_LOG_MEM(origin, (size_t)n) : "(none)");
	lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, "Origin not allowed");
	return false;
}

static int http_reply(struct lws *wsi, unsigned status, const char *body)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
	                                  *end = buf + sizeof(buf) - 1;
	size_t len = strlen(body);

	if (lws_add_http_common_headers(wsi, status, "text/plain", (lws_filepos_t)len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (lws_write(wsi, (unsigned char *)body, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/* /health: 200 ok, or 503 with the reason the gateway cannot do its job. */
static int health_reply(struct gw *gw, struct lws *wsi)
{
	const char *problem = health_problem(gw);
	char body[512];

	if (problem == NULL)
		return http_reply(wsi, HTTP_STATUS_OK, "ok\n");
	snprintf(body, sizeof(body), "unhealthy: %s\n", problem);
	return http_reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, body);
}

/* LWS_CALLBACK_HTTP_WRITEABLE: the /metrics answer, once every shard's figures are in. */
int http_writeable(struct gw *gw, struct lws *wsi)
{
	char *body = metrics_response(gw, wsi);
	int rc;

	if (body == NULL)
		return 0; /* not ours, or not gathered yet */
	rc = http_reply(wsi, HTTP_STATUS_OK, body);
	free(body);
	return rc;
}

int http_confirm_upgrade(struct gw *gw, struct lws *wsi)
{
	/*
	 * libwebsockets 4.1 cannot parse a Sec-WebSocket-Protocol list of 128 bytes or
	 * more (AnyCable's anycable-token.<jwt> makes one) and would hang up without a
	 * word. Refuse it with a reason instead.
	 */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) >= 128) {
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "upgrade refused: Sec-WebSocket-Protocol is over 127 bytes (a token "
		       "sub-protocol?); pass the token as ?%s=",
		       gw->cfg.token_param);
		lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
		                       "Sec-WebSocket-Protocol too long: pass the token in the "
		                       "query string");
		return 1;
	}
	return 0;
}

/* Only upgrades on the configured path, and only from allowed origins. */
int http_filter_upgrade(struct gw *gw, struct lws *wsi)
{
	if (!header_equals(wsi, WSI_TOKEN_GET_URI, gw->cfg.path)) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "Page not found");
		return -1;
	}
	return origin_allowed(gw, wsi) ? 0 : -1;
}

/* Plain HTTP: /health, /metrics, else 404 as Rails answers a non-WebSocket request. */
int http_serve(struct gw *gw, struct lws *wsi)
{
	if (header_equals(wsi, WSI_TOKEN_GET_URI, "/health"))
		return health_reply(gw, wsi);
	if (header_equals(wsi, WSI_TOKEN_GET_URI, "/metrics"))
		return metrics_request(gw, wsi); /* answered in http_writeable */
	return http_reply(wsi, HTTP_STATUS_NOT_FOUND, "Page not found\n");
}

int http_init(struct gw_http *h, const struct cable_gateway_config *cfg, char *err, size_t errlen)
{
	if (cfg->allowed_origins) {
		struct cable_error e = {0};

		h->origins =
		        cable_origins_new(cfg->allowed_origins, strlen(cfg->allowed_origins), &e);
		if (h->origins == NULL) {
			snprintf(err, errlen, "plugin_opt_allowed_origins: %s", e.text);
			return CABLE_EINVAL;
		}
	}
	/* /health and /metrics always; the static directory (off by default) under "/". */
	h->mounts[0].mountpoint = "/health";
	h->mounts[0].mountpoint_len = 7;
	h->mounts[1].mountpoint = "/metrics";
	h->mounts[1].mountpoint_len = 8;
	for (int i = 0; i < 2; i++) {
		h->mounts[i].origin = CABLE_PROTOCOL_V1_JSON;
		h->mounts[i].origin_protocol = LWSMPRO_CALLBACK;
	}
	h->mounts[0].mount_next = &h->mounts[1];
	if (cfg->http_dir) {
		h->mounts[1].mount_next = &h->mounts[2];
		h->mounts[2].mountpoint = "/";
		h->mounts[2].mountpoint_len = 1;
		h->mounts[2].origin = cfg->http_dir;
		h->mounts[2].def = "index.html";
		h->mounts[2].origin_protocol = LWSMPRO_FILE;
	}
	return CABLE_OK;
}

void http_release(struct gw_http *h)
{
	cable_origins_free(h->origins);
	h->origins = NULL;
}
