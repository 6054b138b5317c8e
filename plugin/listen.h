/*
 * The WebSocket port's listening socket and the accepted sockets' caps (listen.c, which
 * alone writes struct gw_listener). Gateway thread, except listen_open (broker thread).
 */
#ifndef CABLE_LISTEN_H
#define CABLE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

/* The lws protocol of the listening socket (listen.c); never a WebSocket sub-protocol. */
#define CABLE_PROTOCOL_LISTENER "mosquitto-cable-listener"

struct gw;
struct counter;

/* A log line that may repeat: logged once, then once per interval with a count. */
struct rate_log {
	long long last_us;
	unsigned long count;
	int level;
	char text[400];
};

/* The listener's repeating log lines, one set for all shards (in struct gw_hub). */
struct gw_listen_logs {
	struct rate_log accept_failed, paused, ip_refused;
};

struct gw_listener {
	int fd;
	bool fd_owned_by_lws;
	bool watching;       /* lws polls wsi for readability */
	bool accept_backoff; /* accept() ran out of descriptors: waiting for accept_sul */
	bool warned_nodelay; /* TCP_NODELAY failed on an accepted socket (logged once) */
	struct lws_vhost *vhost;
	struct lws *wsi;
	lws_sorted_usec_list_t accept_sul;
};

void listen_init(struct gw_listener *l);
int listen_open(struct gw *gw, char *err, size_t errlen);
int listen_adopt(struct gw *gw, char *err, size_t errlen);
void listen_release(struct gw *gw);
void listen_update(struct gw *gw);
void listen_established(struct gw *gw, struct lws *wsi);
void listen_destroyed(struct gw *gw, struct lws *wsi);
void listen_flush_logs(struct gw *gw);
int callback_listener(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
