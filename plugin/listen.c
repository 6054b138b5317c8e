/*
 * The WebSocket port's listening socket, owned by the gateway instead of libwebsockets,
 * so that the gateway decides when to accept.
 *
 * libwebsockets 4.1.6 accepts whenever its listening socket is readable and, when
 * accept() fails (EMFILE: the process is out of descriptors), logs one line and
 * returns, with the socket still readable: a busy loop that logged "accept: errno 24"
 * millions of times while idle sockets held every descriptor of the broker. So the
 * gateway makes the socket itself, hands it to lws as a plain file descriptor (lws
 * watches it in whichever event loop runs, epoll or poll, and calls callback_listener
 * when it is readable), accepts, and gives each accepted socket to lws with
 * lws_adopt_descriptor_vhost(), as lws' own listener would.
 *
 * Every accepted socket counts until lws destroys it (LWS_CALLBACK_WSI_DESTROY): in
 * total against plugin_opt_max_descriptors, and while it is not yet a WebSocket
 * (HTTP request, upgrade, TLS handshake) against plugin_opt_max_handshakes, in total and
 * per client address. At a total cap the listener stops watching its socket (connections
 * wait in the kernel's backlog) and starts again when a socket closes or completes its
 * handshake. A client address over its handshake cap has its new connection closed at
 * once (a peer cannot be known before accept()). accept() failing for want of
 * descriptors or memory pauses the listener for ACCEPT_RETRY_US. Each of these is
 * logged at most once per LOG_INTERVAL, with a count.
 *
 * Gateway thread, except listen_open (broker thread, in start()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mosquitto.h>

#include "counter.h"
#include "gw.h"
#include "sock.h"

#define ACCEPT_BATCH    64                      /* accepts per readable event */
#define ACCEPT_RETRY_US (250 * LWS_US_PER_MS)   /* after EMFILE, ENFILE, ENOMEM */
#define LOG_INTERVAL_US (10LL * LWS_US_PER_SEC) /* see rate_log */

/* One accepted socket: lws' opaque user data of its wsi. */
struct conn {
	struct counter *peer; /* in gw->listener.peers: n sockets, of them handshakes */
	bool handshake;       /* not (yet) one of our WebSockets */
};

/* ---- Logging what may repeat ------------------------------------------------------- */

/*
 * The first occurrence is logged at once; later ones within LOG_INTERVAL_US are counted
 * and reported in one line when the interval is over (by the next occurrence, or by
 * listen_flush_logs from the ping timer).
 */
static void rate_log_emit(struct gw *gw, struct rate_log *r)
{
	gw_log(gw, r->level, "%s (%lu time%s in the last %lld s)", r->text, r->count,
	       r->count == 1 ? "" : "s", LOG_INTERVAL_US / LWS_US_PER_SEC);
	r->count = 0;
	r->last_us = lws_now_usecs();
}

static void rate_log(struct gw *gw, struct rate_log *r, int level, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* The logs are shared by the shards (one line per interval for all): under hub->lock. */
static void rate_log(struct gw *gw, struct rate_log *r, int level, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&gw->hub->lock);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	r->level = level;
	r->count++;
	if (r->last_us == 0 || lws_now_usecs() - r->last_us >= LOG_INTERVAL_US)
		rate_log_emit(gw, r);
	pthread_mutex_unlock(&gw->hub->lock);
}

void listen_flush_logs(struct gw *gw)
{
	struct gw_listen_logs *l = &gw->hub->listen_logs;
	struct rate_log *logs[] = {&l->accept_failed, &l->paused, &l->ip_refused};

	pthread_mutex_lock(&gw->hub->lock);
	for (size_t i = 0; i < CABLE_ARRAY_LEN(logs); i++)
		if (logs[i]->count && lws_now_usecs() - logs[i]->last_us >= LOG_INTERVAL_US)
			rate_log_emit(gw, logs[i]);
	pthread_mutex_unlock(&gw->hub->lock);
}

/* ---- Pausing ------------------------------------------------------------------------- */

static void set_watching(struct gw *gw, bool on)
{
	if (gw->listener.wsi == NULL || gw->listener.watching == on)
		return;
	gw->listener.watching = on;
	lws_rx_flow_control(gw->listener.wsi, on ? 1 : 0);
}

/* Why the listener may not accept now; NULL when it may. Under hub->lock. */
static const char *at_cap_locked(struct gw *gw)
{
	if (gw->hub->nsockets >= gw->cfg.max_descriptors)
		return "plugin_opt_max_descriptors";
	if (gw->hub->nhandshakes >= gw->cfg.max_handshakes)
		return "plugin_opt_max_handshakes";
	return NULL;
}

/*
 * The same, and the counts for a log line. A shard that finds a cap marks the hub
 * `capped`, so that the shard which next makes room wakes every shard (below).
 */
static const char *at_cap(struct gw *gw, size_t *nsockets, size_t *nhandshakes)
{
	const char *cap;

	pthread_mutex_lock(&gw->hub->lock);
	cap = at_cap_locked(gw);
	if (cap)
		gw->hub->capped = true;
	if (nsockets)
		*nsockets = gw->hub->nsockets;
	if (nhandshakes)
		*nhandshakes = gw->hub->nhandshakes;
	pthread_mutex_unlock(&gw->hub->lock);
	return cap;
}

/* Under hub->lock, after a socket closed or finished its handshake: room at a cap? */
static bool room_made_locked(struct gw *gw)
{
	if (!gw->hub->capped || at_cap_locked(gw))
		return false;
	gw->hub->capped = false;
	return true;
}

/* Watch the listening socket exactly when accepting is allowed. */
void listen_update(struct gw *gw)
{
	set_watching(gw, !gw->stopping && !gw->listener.accept_backoff &&
	                         at_cap(gw, NULL, NULL) == NULL);
}

static void accept_retry(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, listener.accept_sul);

	gw->listener.accept_backoff = false;
	listen_update(gw);
}

/* ---- Accepting ----------------------------------------------------------------------- */

static void peer_key(const struct sockaddr_storage *sa, char *out, size_t len)
{
	const void *addr = sa->ss_family == AF_INET6
	                           ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
	                           : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (inet_ntop(sa->ss_family, addr, out, (socklen_t)len) == NULL)
		snprintf(out, len, "?");
}

/* accept() failed for want of a resource: stop for a moment, say so (rate-limited). */
static void accept_failed(struct gw *gw, int err)
{
	size_t nsockets;

	at_cap(gw, &nsockets, NULL);
	rate_log(gw, &gw->hub->listen_logs.accept_failed, MOSQ_LOG_ERR,
	         "WebSocket accept failed: %s; new connections wait in the kernel's backlog, "
	         "retried every %d ms (%zu browser sockets open, plugin_opt_max_descriptors "
	         "%zu; is the process's descriptor limit shared with too many MQTT clients?)",
	         strerror(err), (int)(ACCEPT_RETRY_US / LWS_US_PER_MS), nsockets,
	         gw->cfg.max_descriptors);
	gw->listener.accept_backoff = true;
	gw_schedule(gw, &gw->listener.accept_sul, accept_retry, ACCEPT_RETRY_US);
}

/*
 * Count a new socket from address `key` against the shared caps; its address's entry,
 * or NULL when refused (*refused_at: that address's handshakes) or out of memory.
 */
static struct counter *count_socket(struct gw *gw, const char *key, size_t *refused_at)
{
	struct gw_hub *hub = gw->hub;
	struct counter *p;

	*refused_at = 0;
	pthread_mutex_lock(&hub->lock);
	p = counter_get(&hub->peers, key);
	if (p && gw->cfg.max_handshakes_per_ip && p->handshakes >= gw->cfg.max_handshakes_per_ip) {
		*refused_at = p->handshakes;
		counter_drop(&hub->peers, p);
		p = NULL;
	} else if (p) {
		p->n++;
		p->handshakes++;
		hub->nsockets++;
		hub->nhandshakes++;
	}
	pthread_mutex_unlock(&hub->lock);
	return p;
}

/* Take back what count_socket counted (the socket is gone). */
static void uncount_socket(struct gw *gw, struct counter *p, bool handshake)
{
	struct gw_hub *hub = gw->hub;
	bool wake;

	pthread_mutex_lock(&hub->lock);
	if (handshake) {
		p->handshakes--;
		hub->nhandshakes--;
	}
	p->n--;
	hub->nsockets--;
	counter_drop(&hub->peers, p);
	wake = room_made_locked(gw);
	pthread_mutex_unlock(&hub->lock);
	if (wake)
		shards_wake_others(gw); /* they re-check their listeners (drain_inbox) */
}

static void accept_one(struct gw *gw, int fd, const struct sockaddr_storage *sa)
{
	lws_sock_file_fd_type desc;
	struct conn *c = NULL;
	struct counter *p;
	struct lws *wsi;
	char key[INET6_ADDRSTRLEN], why[128];
	size_t refused_at;

	peer_key(sa, key, sizeof(key));
	p = count_socket(gw, key, &refused_at);
	if (p == NULL) {
		if (refused_at)
			rate_log(gw, &gw->hub->listen_logs.ip_refused, MOSQ_LOG_NOTICE,
			         "connection from %s refused: %zu connections from that address "
			         "are not yet WebSockets (plugin_opt_max_handshakes_per_ip)",
			         key, refused_at);
		close(fd);
		return;
	}
	if (sock_set_nodelay(fd, why, sizeof(why)) != CABLE_OK && !gw->listener.warned_nodelay) {
		gw->listener.warned_nodelay =
		        true; /* once: every later socket would say the same */
		gw_log(gw, MOSQ_LOG_WARNING, "connection from %s: %s", key, why);
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		uncount_socket(gw, p, true);
		return;
	}
	c->peer = p;
	c->handshake = true;
	desc.sockfd = fd;
	/*
	 * lws closes fd itself when the adoption fails. The opaque data is set after the
	 * adoption returns, so a socket that lws destroys inside it is not uncounted twice.
	 */
	wsi = lws_adopt_descriptor_vhost(gw->listener.vhost,
	                                 LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP |
	                                         (gw->cfg.tls_cert ? LWS_ADOPT_ALLOW_SSL : 0),
	                                 desc, NULL, NULL);
	if (wsi == NULL) {
		free(c);
		uncount_socket(gw, p, true);
		return;
	}
	lws_set_opaque_user_data(wsi, c);
}

/* The listening socket is readable: accept what the caps allow. */
static void listen_accept(struct gw *gw)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	int fd, n;
	const char *cap;

	size_t nsockets, nhandshakes;

	for (n = 0; n < ACCEPT_BATCH && !gw->stopping; n++) {
		cap = at_cap(gw, &nsockets, &nhandshakes);
		if (cap) {
			rate_log(gw, &gw->hub->listen_logs.paused, MOSQ_LOG_WARNING,
			         "WebSocket listener paused: %zu browser sockets open, %zu of them "
			         "not yet WebSockets (%s); new connections wait in the kernel's "
			         "backlog",
			         nsockets, nhandshakes, cap);
			break;
		}
		salen = sizeof(sa);
		fd = accept4(gw->listener.fd, (struct sockaddr *)&sa, &salen,
		             SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue; /* that one connection is gone; the next may be fine */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				accept_failed(gw, errno);
			break;
		}
		accept_one(gw, fd, &sa);
	}
	listen_update(gw);
}

/* LWS_CALLBACK_ESTABLISHED: the socket is a WebSocket of ours; no longer a handshake. */
void listen_established(struct gw *gw, struct lws *wsi)
{
	struct conn *c = lws_get_opaque_user_data(wsi);

	bool wake;

	if (c == NULL || !c->handshake)
		return;
	c->handshake = false;
	pthread_mutex_lock(&gw->hub->lock);
	c->peer->handshakes--;
	gw->hub->nhandshakes--;
	wake = room_made_locked(gw);
	pthread_mutex_unlock(&gw->hub->lock);
	if (wake)
		shards_wake_others(gw);
	listen_update(gw);
}

/* LWS_CALLBACK_WSI_DESTROY, for every wsi of the vhost: an accepted socket is gone. */
void listen_destroyed(struct gw *gw, struct lws *wsi)
{
	struct conn *c = lws_get_opaque_user_data(wsi);

	if (wsi == gw->listener.wsi) {
		gw->listener.wsi = NULL;
		return;
	}
	if (c == NULL)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	uncount_socket(gw, c->peer, c->handshake);
	free(c);
	listen_update(gw);
}

/*
 * The listener's lws protocol: only the raw-file events of the listening socket. It is
 * named in the vhost's protocol list, so a client could ask for it by name as a
 * WebSocket sub-protocol: refused.
 */
int callback_listener(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
	struct gw *gw = lws_context_user(lws_get_context(wsi));

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		listen_accept(gw);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_ESTABLISHED:
		return -1;
	default:
		return 0;
	}
}

/* ---- Setting up ---------------------------------------------------------------------- */

/* Broker thread, in start(), first: no socket yet. */
void listen_init(struct gw_listener *l)
{
	l->fd = -1;
}

/*
 * Broker thread, in start(): bind and listen now, so a port in use fails the start.
 * Every shard has its own socket on the port (SO_REUSEPORT) and the kernel spreads new
 * connections over them. SO_REUSEPORT would also let another process of the same user
 * share the port unnoticed, so shard 0 first binds a probe socket without it: a port
 * that anything holds fails here as it always did.
 */
int listen_open(struct gw *gw, char *err, size_t errlen)
{
	char why[256];
	int probe = -1, rc = CABLE_OK;

	if (gw->shard == 0 && gw->hub->n > 1)
		rc = sock_listen_tcp(gw->cfg.address, gw->cfg.port, false, &probe, why,
		                     sizeof(why));
	if (probe >= 0)
		close(probe);
	if (rc == CABLE_OK)
		rc = sock_listen_tcp(gw->cfg.address, gw->cfg.port, gw->hub->n > 1,
		                     &gw->listener.fd, why, sizeof(why));
	if (rc != CABLE_OK) {
		snprintf(err, errlen,
		         "cannot listen on %s:%d (plugin_opt_address / plugin_opt_port): %s",
		         gw->cfg.address, gw->cfg.port, why);
		return CABLE_EINVAL;
	}
	return CABLE_OK;
}

/*
 * Broker thread, in start(), after the context exists: hand the socket to lws to watch.
 * From then on lws owns it (and closes it with the context).
 */
int listen_adopt(struct gw *gw, char *err, size_t errlen)
{
	lws_sock_file_fd_type desc;

	gw->listener.vhost = lws_get_vhost_by_name(gw->loop.ctx, "default");
	desc.filefd = gw->listener.fd;
	if (gw->listener.vhost)
		gw->listener.wsi =
		        lws_adopt_descriptor_vhost(gw->listener.vhost, LWS_ADOPT_RAW_FILE_DESC,
		                                   desc, CABLE_PROTOCOL_LISTENER, NULL);
	if (gw->listener.wsi == NULL) {
		snprintf(err, errlen, "cannot watch the listening socket (libwebsockets)");
		return CABLE_EINVAL;
	}
	gw->listener.fd_owned_by_lws = true;
	gw->listener.watching = true;
	return CABLE_OK;
}

/* With the gateway: the socket, if lws never took it, and the address table. */
void listen_release(struct gw *gw)
{
	if (gw->listener.fd >= 0 && !gw->listener.fd_owned_by_lws)
		close(gw->listener.fd);
	gw->listener.fd = -1;
}
