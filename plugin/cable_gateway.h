/*
 * The boundary between the broker adapter (mosquitto_cable.so, broker thread) and the
 * gateway (mosquitto_cable_gateway.so, its own thread running libwebsockets).
 *
 * Why two shared objects: Debian's /usr/sbin/mosquitto contains a static copy of
 * libwebsockets and exports its symbols, so a plugin linked with -lwebsockets would
 * silently mix that copy with libwebsockets.so (two sets of globals, interleaved).
 * The adapter therefore never links libwebsockets; it loads the gateway with
 * dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), which puts the gateway's own
 * dependencies (libwebsockets.so.17) ahead of the executable in its symbol lookup,
 * and then proves with dladdr() that the gateway's lws entry points live in
 * libwebsockets.so and not in the broker. The same holds on a broker built without
 * websockets (there is then only one copy to find).
 *
 * The gateway exports exactly one symbol, CABLE_GATEWAY_SYMBOL, a struct of function
 * pointers. Everything else crosses as queue pushes (cable_queue.h) and wake calls.
 */
#ifndef CABLE_GATEWAY_H
#define CABLE_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cable_queue.h"
#include "cable_rules.h"

#define CABLE_GATEWAY_ABI 4

/*
 * The exported symbol's name carries the ABI version: cable_gateway_api_v4 for ABI 4,
 * so an adapter and a gateway of different ABIs do not even find each other.
 */
#define CABLE_GATEWAY_CAT_(a, b) a##b
#define CABLE_GATEWAY_CAT(a, b)  CABLE_GATEWAY_CAT_(a, b)
#define CABLE_GATEWAY_STR_(x)    #x
#define CABLE_GATEWAY_STR(x)     CABLE_GATEWAY_STR_(x)
#define CABLE_GATEWAY_API        CABLE_GATEWAY_CAT(cable_gateway_api_v, CABLE_GATEWAY_ABI)
#define CABLE_GATEWAY_SYMBOL     CABLE_GATEWAY_STR(CABLE_GATEWAY_API)

/*
 * Response topics of request actions: this prefix and the performing subscription's
 * answer token (CABLE_ANSWER_TOKEN_LEN base64url characters). The broker thread sets
 * it on the publish and sends whatever devices publish under it to the gateway as
 * CABLE_MSG_REPLY; the gateway hands it to the subscription holding the token.
 */
#define CABLE_REPLY_PREFIX "$cable/reply/"

/* Most gateway threads (plugin_opt_threads); answer tokens name their shard in one character. */
#define CABLE_MAX_THREADS 64

/* Listener and protocol settings (plugin_opt_*). Strings are copied by start(). */
struct cable_gateway_config {
	const char *address; /* bind address, e.g. "127.0.0.1" */
	int port;
	const char *path;             /* WebSocket path, e.g. "/cable" */
	const char *token_param;      /* query parameter carrying the token ("jid") */
	bool anonymous;               /* explicit anonymous mode: no token needed */
	unsigned ping_interval;       /* seconds between ActionCable pings (3) */
	size_t max_message;           /* largest client message in bytes; bigger closes 1009 */
	size_t max_outbound;          /* per-connection queued bytes before too_slow */
	size_t max_subscriptions;     /* per connection */
	size_t max_connections;       /* in total; 0 = no limit */
	size_t max_per_ip;            /* per client address; 0 = no limit */
	size_t max_per_user;          /* per authenticated user; 0 = no limit */
	size_t max_descriptors;       /* browser sockets open at once, any state (listen.c) */
	size_t max_handshakes;        /* sockets not yet a WebSocket (HTTP, handshake) */
	size_t max_handshakes_per_ip; /* the same per client address; 0 = no limit */
	size_t max_identifier;        /* longest identifier subscribed; longer is rejected */
	size_t max_sub_bytes;         /* subscription state per connection, in bytes */
	size_t max_user_sub_bytes;    /* the same per authenticated user; 0 = no limit */
	unsigned handshake_timeout;   /* seconds for the HTTP upgrade to complete */
	unsigned max_header_size;     /* bytes of HTTP headers accepted (cookies!) */
	size_t socket_send_buffer;    /* SO_SNDBUF per browser socket; 0 = kernel autotuning */
	bool poll_loop;               /* lws' own poll() loop instead of epoll (libev) */
	unsigned threads;             /* gateway shards, 1..CABLE_MAX_THREADS (shard.h) */
	size_t receive_buffer;        /* lws' per-connection receive buffer, in bytes */
	const char *tls_cert;         /* PEM files; all NULL = plain ws:// */
	const char *tls_key;
	const char *tls_ca;
	const char *http_dir;        /* serve static files from here on the same port; NULL = off */
	const char *allowed_origins; /* Origin allow-list (cable_origin.h); NULL = no check */
	const char *token_cookie;    /* cookie carrying the token; NULL = none */
	bool token_cookie_any_origin; /* a cookie without allowed_origins was allowed */
	const char *metrics_topic;    /* publish metrics as retained messages under this prefix */
	unsigned metrics_interval;    /* seconds between those publishes */
	/*
	 * Last values (docs/architecture.md): the broker listener the internal client
	 * connects to ("/path" for a unix socket, "host:port" for TCP); NULL = off, and
	 * MOSQ_EVT_MESSAGE feeds browsers as before.
	 */
	const char *state_listener;
	const char *state_client_id; /* set by the adapter: random per start */
	const char *state_secret;    /* set by the adapter: random per start, checked by it */
	size_t retained_max_entries; /* bounds of the last-value cache */
	size_t retained_max_bytes;
	/* The extended protocol (actioncable-v1-ext-json); docs/reliable-streams.md. */
	size_t history_limit;       /* messages kept per topic (100); 0 = no history */
	size_t history_max_bytes;   /* bytes kept per topic (1 MiB) */
	unsigned history_ttl;       /* seconds a message is kept (300) */
	size_t history_total_bytes; /* bytes kept in all (64 MiB) */
	unsigned session_ttl;       /* seconds a dropped session can be restored (300); 0 = off */
	unsigned pong_timeout;      /* seconds without a pong before no_pong; 0 = off */
};

/* The queues and wake-up the two sides share; owned by the adapter. */
struct cable_link {
	struct cable_queue to_gateway; /* broker thread -> gateway */
	struct cable_queue to_broker;  /* gateway -> broker thread; wake = signal the broker */
	atomic_ulong ticks;            /* broker TICK count (relaxed), for the gateway's watchdog */
};

struct cable_gateway;

/* What cable_gateway_api.layout holds, in this order. */
#define CABLE_GATEWAY_LAYOUT                                                                       \
	{                                                                                          \
		sizeof(struct cable_gateway_api), sizeof(struct cable_gateway_config),             \
		        sizeof(struct cable_link), sizeof(struct cable_rules_source),              \
		        sizeof(struct cable_rules), sizeof(struct cable_queue),                    \
		        sizeof(struct cable_msg)                                                   \
	}

struct cable_gateway_api {
	int abi; /* CABLE_GATEWAY_ABI */
	/*
	 * The layouts both sides share, as the gateway was compiled. The adapter refuses a
	 * gateway from another build instead of misreading its structs (a plugin and a
	 * gateway from different builds crashed the broker during development).
	 */
	size_t layout[7];

	/*
	 * Broker thread. Create the listener (binding the port now, so a port in use fails
	 * here) and start the gateway thread. `rules` passes to the gateway on success.
	 * NULL on failure with a one-line reason in err.
	 */
	struct cable_gateway *(*start)(const struct cable_gateway_config *cfg,
	                               struct cable_link *link, struct cable_rules *rules,
	                               char *err, size_t errlen);

	/*
	 * Broker thread (init and reload). Parse and validate a rule set. NULL with one line
	 * naming the file in err. Free with rules_free unless handed to start() or queued.
	 */
	struct cable_rules *(*rules_new)(const struct cable_rules_source *src, char *err,
	                                 size_t errlen);
	void (*rules_free)(struct cable_rules *rules);

	/* Any thread: wake the gateway (lws_cancel_service) to look at its queue. */
	void (*wake)(struct cable_gateway *gw);

	/*
	 * Broker thread, at shutdown: tell every browser server_restart (close 1001), give
	 * the writes a moment to leave, stop the thread and free everything.
	 */
	void (*stop)(struct cable_gateway *gw);

	/* The libwebsockets version string of the copy the gateway uses. */
	const char *(*lws_version)(void);

	/*
	 * Addresses of lws entry points as the gateway's code resolved them, for the
	 * adapter's dladdr() check. Returns how many were written (at most max).
	 */
	size_t (*lws_entry_points)(void **out, const char **names, size_t max);
};

#endif
