/*
 * Plain HTTP on the WebSocket port: /health, /metrics, the static directory, and the
 * filters an upgrade passes (path, Origin, header sizes). http.c alone writes struct
 * gw_http. Gateway thread, except http_init (broker thread, in start()).
 */
#ifndef CABLE_HTTP_H
#define CABLE_HTTP_H

#include <libwebsockets.h>

#include "cable_gateway.h"
#include "cable_origin.h"

struct gw;

struct gw_http {
	struct cable_origins *origins;   /* NULL: no Origin check */
	struct lws_http_mount mounts[3]; /* /health, /metrics, and the static directory if any */
};

/* Parse the Origin list and set up the mounts; CABLE_OK or a reason in err. */
int http_init(struct gw_http *h, const struct cable_gateway_config *cfg, char *err, size_t errlen);
void http_release(struct gw_http *h);

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION, LWS_CALLBACK_HTTP. */
int http_confirm_upgrade(struct gw *gw, struct lws *wsi);
int http_filter_upgrade(struct gw *gw, struct lws *wsi);
int http_serve(struct gw *gw, struct lws *wsi);
/* LWS_CALLBACK_HTTP_WRITEABLE: a /metrics answer gathered from every shard. */
int http_writeable(struct gw *gw, struct lws *wsi);

#endif
