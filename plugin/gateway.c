/*
 * The gateway's wiring: the exported API (start, stop, wake, rules), struct gw's
 * assembly from its parts, lws' protocol table and the callback that hands each lws
 * event to the file that handles it (http.c, listen.c, session.c, outbound.c). The
 * files and their concerns are listed in docs/architecture.md. Loaded by the broker adapter with
 * its own libwebsockets copy (see cable_gateway.h for why).
 *
 * Thread: start() and stop() run on the broker thread; wake() on any thread (it only
 * calls lws_cancel_service); everything else on the gateway thread. The broker thread
 * creates the context in start() so that a port in use fails the broker's start-up
 * with a clear message; from then on only the gateway thread touches it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <mosquitto.h>
#include <openssl/ssl.h>

#include "cable_proto.h"
#include "gw.h"

_Static_assert(CABLE_FRAME_HEADROOM >= LWS_PRE, "frames need LWS_PRE bytes of headroom");

#define STOP_GRACE_US (1500 * LWS_US_PER_MS) /* time for server_restart frames to leave */

static void stop_check(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, stop_sul);

	if (gw->sess.n == 0 || lws_now_usecs() >= gw->stop_deadline_us) {
		gw->finished = true;
		return;
	}
	gw_schedule(gw, &gw->stop_sul, stop_check, 20 * LWS_US_PER_MS);
}

void gw_begin_stop(struct gw *gw)
{
	gw->stopping = true;
	if (gw->sess.n)
		gw_log(gw, MOSQ_LOG_NOTICE,
		       "closing %zu connections: server_restart (the broker is stopping)",
		       gw->sess.n);
	listen_update(gw); /* accept nothing more */
	sessions_close_all(gw, CABLE_DISCONNECT_SERVER_RESTART, CLOSE_GOING_AWAY);
	gw->stop_deadline_us = lws_now_usecs() + STOP_GRACE_US;
	stop_check(&gw->stop_sul);
}

void gw_replace_rules(struct gw *gw, struct shared_rules *rules)
{
	shared_rules_put(gw->rules_ref);
	gw->rules_ref = rules;
	gw->rules = rules->rules;
	subs_rebind_all(gw);
}

static int callback_cable(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct gw *gw = lws_context_user(lws_get_context(wsi));
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (gw)
			drain_inbox(gw, false);
		return 0;

	case LWS_CALLBACK_WSI_DESTROY: /* every wsi of the vhost comes here (protocols[0]) */
		if (gw) {
			listen_destroyed(gw, wsi);
			metrics_wsi_gone(gw, wsi);
		}
		return 0;

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return http_confirm_upgrade(gw, wsi);

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return http_filter_upgrade(gw, wsi);

	case LWS_CALLBACK_HTTP:
		return http_serve(gw, wsi);

	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_writeable(gw, wsi);

	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		/*
		 * A static file went out: end the HTTP/1.1 transaction so the keep-alive
		 * connection can carry the next request.
		 */
		return lws_http_transaction_completed(wsi) ? -1 : 0;

	case LWS_CALLBACK_ESTABLISHED:
		listen_established(gw, wsi);
		session_open(s, gw, wsi);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		session_receive(s, in, len);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s->gw ? session_writeable(s) : -1;

	case LWS_CALLBACK_TIMER:
		return session_timer(s);

	case LWS_CALLBACK_CLOSED:
		session_closed(s);
		return 0;

	default:
		return 0;
	}
}

/*
 * Rails clients offer ["actioncable-v1-json", "actioncable-unsupported"]. A client that
 * offers only the sentinel gets it, which tells a Rails client to stop for good; we
 * then say nothing and let it close.
 */
static int callback_unsupported(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                void *in, size_t len)
{
	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_ESTABLISHED)
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 10);
	return 0;
}

/*
 * lws caps every send() at tx_packet_size, or at rx_buffer_size when that is 0: a frame
 * larger than the receive buffer would leave in pieces, one per turn of the loop. Frames
 * go out whole instead (the kernel takes what fits; lws keeps the rest).
 */
#define TX_PACKET_SIZE (1024 * 1024)

static const struct lws_protocols protocols[] = {
        /*
         * rx_buffer_size (set from plugin_opt_receive_buffer in start()): lws allocates it
         * for every connection and reads at most that much from a socket per turn of the
         * loop; session_receive() reassembles larger messages.
         */
        {CABLE_PROTOCOL_V1_JSON, callback_cable, sizeof(struct session), 0, 0, NULL,
         TX_PACKET_SIZE},
        /* AnyCable's extended protocol: the same sessions, with ext.c's additions. */
        {CABLE_PROTOCOL_EXT_JSON, callback_cable, sizeof(struct session), 0, 0, NULL,
         TX_PACKET_SIZE},
        {CABLE_PROTOCOL_UNSUPPORTED, callback_unsupported, 0, 256, 0, NULL, 0},
        {CABLE_PROTOCOL_LISTENER, callback_listener, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0}, /* state_protocol, set in start() */
        {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- Threads ------------------------------------------------------------------------- */

static void *gateway_main(void *arg)
{
	struct gw *gw = arg;

	health_start(gw);
	if (gw->shard == 0) { /* one internal client and one metrics publisher for all */
		state_start(gw);
		metrics_start(gw);
	}
	/* A stop requested before the thread ran is seen at the first wake-up. */
	lws_cancel_service(gw->loop.ctx);
	loop_run(&gw->loop, &gw->finished);
	/*
	 * Every shard has closed its sessions: wait for the others, then stop taking calls
	 * (shard.h) and destroy this shard's context on its own thread.
	 */
	pthread_barrier_wait(&gw->hub->exit_barrier);
	atomic_store(&gw->hub->exiting, true);
	loop_end(&gw->loop);
	return NULL;
}

/* Calls still queued when the threads are gone; they only touch their shard. */
static void run_leftover_calls(struct gw *gw)
{
	struct cable_msg *m, *next;

	/* The batch taken but not handled yet (bridge.c's backlog) holds calls too. */
	for (m = gw->bridge.backlog; m; m = m->next)
		if (m->kind == CABLE_MSG_CALL)
			shard_run_call(gw, m);
	bridge_release(&gw->bridge);
	for (m = cable_queue_take_all(&gw->inbox, NULL); m; m = next) {
		next = m->next;
		if (m->kind == CABLE_MSG_CALL)
			shard_run_call(gw, m);
		cable_msg_free(m);
	}
}

static void gw_free(struct gw *gw)
{
	size_t i;

	if (gw == NULL)
		return;
	answer_release(gw);
	metrics_release(gw);
	ext_release(gw);
	room_release(gw);
	fanout_release(&gw->index);
	expiry_release(&gw->expiry);
	listen_release(gw);
	state_release(gw);
	loop_close(&gw->loop);
	bridge_release(&gw->bridge);
	cable_queue_release(&gw->inbox);
	shared_rules_put(gw->rules_ref);
	http_release(&gw->http);
	for (i = 0; i < CABLE_ARRAY_LEN(gw->strings); i++)
		free(gw->strings[i]);
	free(gw);
}

static int copy_config(struct gw *gw, const struct cable_gateway_config *cfg)
{
	const char **fields[] = {&gw->cfg.address,        &gw->cfg.path,
	                         &gw->cfg.token_param,    &gw->cfg.tls_cert,
	                         &gw->cfg.tls_key,        &gw->cfg.tls_ca,
	                         &gw->cfg.http_dir,       &gw->cfg.allowed_origins,
	                         &gw->cfg.token_cookie,   &gw->cfg.metrics_topic,
	                         &gw->cfg.state_listener, &gw->cfg.state_client_id,
	                         &gw->cfg.state_secret};
	size_t i;

	_Static_assert(CABLE_ARRAY_LEN(fields) <= CABLE_ARRAY_LEN(gw->strings), "gw->strings");
	gw->cfg = *cfg;
	for (i = 0; i < CABLE_ARRAY_LEN(fields); i++) {
		if (*fields[i] == NULL)
			continue;
		gw->strings[i] = strdup(*fields[i]);
		if (gw->strings[i] == NULL)
			return CABLE_ENOMEM;
		*fields[i] = gw->strings[i];
	}
	return CABLE_OK;
}

static const lws_retry_bo_t no_validity_checks = {0};

/* Broker thread: shard i's struct gw, context and listening socket; NULL with err. */
static struct gw *shard_new(struct gw_hub *hub, unsigned i, const struct cable_gateway_config *cfg,
                            char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	char why[256];
	struct gw *gw;

	gw = calloc(1, sizeof(*gw));
	if (gw == NULL || copy_config(gw, cfg) != CABLE_OK ||
	    shard_inbox_init(gw, &hub->link->to_gateway) != CABLE_OK) {
		snprintf(err, errlen, "out of memory");
		gw_free(gw);
		return NULL;
	}
	gw->hub = hub;
	gw->shard = i;
	gw->link = hub->link;
	hub->shards[i] = gw;
	listen_init(&gw->listener);
	index_init(&gw->index, &subs_index_ops, gw);
	expiry_init(&gw->expiry);
	if (ext_start(gw) != CABLE_OK || room_start(gw) != CABLE_OK) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (http_init(&gw->http, &gw->cfg, err, errlen) != CABLE_OK)
		return NULL;
	if (i == 0)
		bridge_log_lws(gw);
	if (listen_open(gw, err, errlen) != CABLE_OK)
		return NULL;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the listening socket is ours: listen.c */
	_Static_assert(sizeof(gw->protocols) == sizeof(protocols), "gw->protocols");
	memcpy(gw->protocols, protocols, sizeof(protocols));
	gw->protocols[0].rx_buffer_size = gw->cfg.receive_buffer;
	gw->protocols[1].rx_buffer_size = gw->cfg.receive_buffer;
	gw->protocols[4] = state_protocol;
	info.protocols = gw->protocols;
	info.user = gw;
	info.uid = -1;
	info.gid = -1;
	info.max_http_header_data = (unsigned short)gw->cfg.max_header_size;
	info.pt_serv_buf_size =
	        256 *
	        1024; /* one per thread: what a raw read (the internal client) takes per turn */
	info.timeout_secs = gw->cfg.handshake_timeout; /* an unfinished handshake is dropped */
	info.timeout_secs_ah_idle = gw->cfg.handshake_timeout; /* also a half-sent request */
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
	               LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (gw->cfg.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = gw->cfg.tls_cert;
		info.ssl_private_key_filepath = gw->cfg.tls_key;
		info.ssl_ca_filepath = gw->cfg.tls_ca;
		info.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	}
	info.mounts = gw->http.mounts;
	/*
	 * No lws "validity" pings: they would give every connection an lws timer, and lws
	 * keeps its timers in one sorted list, so each new connection cost O(n) (41 % of
	 * the gateway thread in a 19,000-connection storm). ActionCable pings every few
	 * seconds instead, and TCP_USER_TIMEOUT (session_open) ends connections to peers that
	 * stopped acknowledging them.
	 */
	info.retry_and_idle_policy = &no_validity_checks;
	if (loop_open(&gw->loop, &info, gw->cfg.poll_loop, why, sizeof(why)) != CABLE_OK) {
		if (gw->loop.ctx == NULL && (gw->cfg.poll_loop || gw->loop.ev))
			snprintf(err, errlen, "cannot serve on %s:%d: %s%s", gw->cfg.address,
			         gw->cfg.port, why,
			         gw->cfg.tls_cert ? " (check the plugin_opt_tls_* files)" : "");
		else
			snprintf(err, errlen, "%s", why);
		return NULL;
	}
	if (listen_adopt(gw, err, errlen) != CABLE_OK)
		return NULL;
	return gw;
}

static void hub_destroy(struct gw_hub *hub)
{
	unsigned i;

	for (i = 0; i < hub->n; i++)
		if (hub->shards[i])
			run_leftover_calls(hub->shards[i]);
	for (i = 0; i < hub->n; i++)
		gw_free(hub->shards[i]);
	bridge_log_lws(NULL);
	hub_free(hub);
}

static void gw_stop(struct cable_gateway *g);

static struct cable_gateway *gw_start(const struct cable_gateway_config *cfg,
                                      struct cable_link *link, struct cable_rules *rules, char *err,
                                      size_t errlen)
{
	struct shared_rules *shared;
	sigset_t all, old;
	struct gw_hub *hub;
	unsigned i, n = cfg->threads ? cfg->threads : 1;

	if (cfg->state_listener) {
		struct sockaddr_storage ss;
		unsigned sslen;

		if (state_parse_listener(cfg->state_listener, &ss, &sslen) != CABLE_OK ||
		    cfg->state_client_id == NULL || cfg->state_secret == NULL) {
			snprintf(err, errlen,
			         "plugin_opt_state_listener: '%s' is neither a unix socket path "
			         "(a path with no ':' or with a '/') nor LOOPBACKADDRESS:PORT",
			         cfg->state_listener);
			return NULL;
		}
	}
	hub = hub_new(n, link);
	shared = malloc(sizeof(*shared));
	if (hub == NULL || shared == NULL) {
		snprintf(err, errlen, "out of memory");
		free(shared);
		hub_free(hub);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (shard_new(hub, i, cfg, err, errlen) == NULL) {
			free(shared);
			hub_destroy(hub);
			return NULL;
		}
	}
	/* From here the rules are the shards' (the caller keeps them on failure above). */
	atomic_init(&shared->refs, n);
	shared->rules = rules;
	for (i = 0; i < n; i++) {
		hub->shards[i]->rules_ref = shared;
		hub->shards[i]->rules = rules;
	}

	/* No process signal (SIGTERM, SIGHUP, our wake signal) may land on these threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n; i++) {
		struct gw *gw = hub->shards[i];

		if (pthread_create(&gw->thread, NULL, gateway_main, gw) != 0)
			break;
		gw->thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (i < n) {
		snprintf(err, errlen, "cannot start gateway thread %u of %u", i + 1, n);
		/* The rules stay with the caller: take them back from the shards. */
		for (unsigned j = 0; j < n; j++)
			hub->shards[j]->rules_ref = NULL;
		free(shared);
		/* Only the started threads meet at the barrier (none waits there yet). */
		pthread_barrier_destroy(&hub->exit_barrier);
		pthread_barrier_init(&hub->exit_barrier, NULL, i + 1);
		gw_stop((struct cable_gateway *)hub);
		return NULL;
	}
	return (struct cable_gateway *)hub;
}

static void gw_wake(struct cable_gateway *g)
{
	struct gw_hub *hub = (struct gw_hub *)g;

	lws_cancel_service(hub->shards[0]->loop.ctx);
}

static void gw_stop(struct cable_gateway *g)
{
	struct gw_hub *hub = (struct gw_hub *)g;
	unsigned i;

	atomic_store(&hub->stop_requested, true);
	for (i = 0; i < hub->n; i++)
		if (hub->shards[i]->thread_started)
			lws_cancel_service(hub->shards[i]->loop.ctx);
	/*
	 * This thread is the barrier's last party: no shard destroys its context before
	 * every shard has been woken above (a shard woken by its own timer could otherwise
	 * finish first and free the context this loop is about to wake).
	 */
	pthread_barrier_wait(&hub->exit_barrier);
	for (i = 0; i < hub->n; i++)
		if (hub->shards[i]->thread_started)
			pthread_join(hub->shards[i]->thread, NULL);
	hub_destroy(hub);
}

static const char *gw_lws_version(void)
{
	return lws_get_library_version();
}

static size_t gw_lws_entry_points(void **out, const char **names, size_t max)
{
#define ENTRY(fn)                                                                                  \
	{                                                                                          \
		(void *)fn, #fn                                                                    \
	}
	const struct {
		void *addr;
		const char *name;
	} entries[] = {
	        ENTRY(lws_create_context),  ENTRY(lws_service),
	        ENTRY(lws_cancel_service),  ENTRY(lws_context_destroy),
	        ENTRY(lws_write),           ENTRY(lws_callback_on_writable),
	        ENTRY(lws_set_log_level),   ENTRY(lws_sul_schedule),
	        ENTRY(lws_rx_flow_control), ENTRY(lws_get_library_version),
	};
#undef ENTRY
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(entries) && i < max; i++) {
		out[i] = entries[i].addr;
		names[i] = entries[i].name;
	}
	return i;
}

__attribute__((visibility("default"))) extern const struct cable_gateway_api CABLE_GATEWAY_API;
const struct cable_gateway_api CABLE_GATEWAY_API = {
        .abi = CABLE_GATEWAY_ABI,
        .layout = CABLE_GATEWAY_LAYOUT,
        .start = gw_start,
        .rules_new = cable_rules_new,
        .rules_free = cable_rules_free,
        .wake = gw_wake,
        .stop = gw_stop,
        .lws_version = gw_lws_version,
        .lws_entry_points = gw_lws_entry_points,
};
