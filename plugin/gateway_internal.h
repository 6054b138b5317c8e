/*
 * The gateway's private types. Everything declared here is used by the gateway thread
 * only (gateway.c, session.c, fanout.c), except where a member says otherwise.
 *
 * Ownership in one picture:
 *   struct gw  --owns--> sessions (lws per-session data, lifetime = the WebSocket)
 *              --owns--> routes (one per distinct stream topic/filter), in `exact`
 *                        (hash by topic) or `wild` (a topic tree of filters with + or #)
 *              --owns--> idents (interned identifier strings, reference counted)
 *   struct session --owns--> subs (hash by identifier), outbound frame ring
 *   struct sub --refers to--> its ident and the routes of its streams; each route
 *              holds a pointer back to the sub at links[i].slot.
 */
#ifndef CABLE_GATEWAY_INTERNAL_H
#define CABLE_GATEWAY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <libwebsockets.h>
/*
 * uthash calls exit() when it cannot allocate, which would take the broker down with
 * the plugin. With HASH_NONFATAL_OOM it leaves the element out instead. The only
 * allocation an add can fail is a table's first (a failed growth keeps the table as it
 * is), so an add failed exactly when the table is still empty afterwards: GW_HASH_ADD.
 */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
/*
 * Every connection with a subscription has its own uthash table (session->subs), and
 * uthash starts a table at 32 buckets: 512 bytes per connection, an eighth of its
 * memory, for the one to few subscriptions a browser usually has. Tables start at 4
 * buckets and double as they fill, as before. (uthash.h defines these unconditionally.)
 */
#undef HASH_INITIAL_NUM_BUCKETS
#undef HASH_INITIAL_NUM_BUCKETS_LOG2
#define HASH_INITIAL_NUM_BUCKETS      4U
#define HASH_INITIAL_NUM_BUCKETS_LOG2 2U

/* HASH_ADD_KEYPTR(hh, ...); false when it ran out of memory (the item is not added). */
#define GW_HASH_ADD(head, key, len, item, added)                                                   \
	do {                                                                                       \
		HASH_ADD_KEYPTR(hh, head, key, len, item);                                         \
		(added) = (head) != NULL;                                                          \
	} while (0)

#include "cable_chanmap.h"
#include "cable_frame.h"
#include "cable_gateway.h"
#include "cable_origin.h"
#include "cable_principal.h"
#include "cable_queue.h"
#include "cable_retained.h"
#include "cable_rules.h"
#include "cable_tree.h"

#define CABLE_SID_LEN 16

/* The lws protocol of the listening socket (listen.c); never a WebSocket sub-protocol. */
#define CABLE_PROTOCOL_LISTENER "mosquitto-cable-listener"

/* A log line that may repeat (listen.c): logged once, then once per interval with a count. */
struct rate_log {
	long long last_us;
	unsigned long count;
	int level;
	char text[400];
};

/* An identifier string, interned: one copy and one JSON encoding per distinct string. */
struct ident {
	UT_hash_handle hh;
	size_t refs;
	char *raw; /* as the client sent it */
	size_t raw_len;
	char *json; /* the same as a JSON string literal, encoded once */
	size_t json_len;
	uint64_t seq;                  /* message whose frame is cached below */
	struct cable_frame *frame;     /* {"identifier":...,"message":...} for message `seq` */
	struct cable_frame *frame_ext; /* the same with stream_id, epoch, offset (ext.c) */
};

/* Everything subscribed to one stream topic or filter. */
struct route {
	UT_hash_handle hh; /* in gw->exact (topics); filters with wildcards are in gw->wild */
	bool wildcard;
	/*
	 * History is recorded for the topics of a route while ext subscriptions use it
	 * (n_ext) or restorable dropped sessions keep it (keep); ext.c.
	 */
	uint32_t n_ext, keep;
	struct sub **subs; /* unordered; subs[i]->links[..].slot == i */
	size_t nsubs, cap;
	size_t len;
	char filter[];
};

struct sub_link {
	struct route *route;
	size_t slot;
};

struct answer_slot; /* answer.c */

struct sub {
	UT_hash_handle hh; /* in session->subs, keyed by ident->raw */
	struct session *session;
	struct ident *ident;
	struct cable_binding *binding;
	uint64_t seq; /* last message delivered: a message matching two streams goes once */
	enum cable_deliver deliver;
	/*
	 * The ACL allows some but not all topics under a stream filter (PARTIAL): each
	 * delivery is checked, with the last answer cached (devices repeat topics).
	 */
	bool acl_each;
	bool acl_topic_ok;
	bool replay_pending; /* subscribed before the internal client synchronised (state.c) */
	char *acl_topic;
	size_t nlinks;
	struct sub_link *links;
	struct answer_slot *answer; /* NULL until it performs an action that is answered */
	size_t cost;         /* its share of the subscription budgets (sub_cost in session.c) */
	struct held *held;   /* restored, waiting for its history command (ext.c) */
	bool ext;            /* of an ext connection: counted in its routes' n_ext */
	struct room *room;   /* room.c; NULL unless the channel has presence or whisper */
	uint32_t room_slot;  /* index in room->subs */
	bool joined;         /* present in the room's presence (as presence_id) */
	bool presence_aware; /* used a presence command: presence frames go to it */
	bool room_moving;    /* room_rebind_all: its room changes with the new rules */
};

/* How many connections share a key (a client address or a user). */
struct counter {
	UT_hash_handle hh;
	size_t n;
	union {
		size_t sub_bytes;  /* gw->per_user: the subscription state of all its connections */
		size_t handshakes; /* gw->peers (listen.c): of its n sockets, not yet WebSockets */
	};
	char key[];
};

/* A command read while the connection was paused, kept to preserve order. */
struct deferred {
	struct deferred *next;
	size_t len;
	char buf[];
};

/*
 * One per WebSocket, libwebsockets' zeroed per-session data (user_space), so kept small: counts are
 * 32-bit (their bounds are far below that: plugin_opt_max_subscriptions, max_message_size, the
 * ring's bytes over plugin_opt_max_outbound_bytes) and the flags sit together.
 */
struct session {
	struct lws *wsi;
	struct gw *gw;
	struct session *prev, *next; /* gw->sessions */
	struct cable_principal who;
	struct sub *subs;
	struct counter *user; /* in gw->per_user while counted_user */
	size_t sub_bytes;     /* the subs' costs, against plugin_opt_max_subscription_bytes */
	struct resume *ext;   /* the extended protocol's state (ext.c); NULL for v1 */

	/* Outbound frames, a ring that grows on demand (nothing allocated up front). */
	struct cable_frame **ring;
	size_t out_bytes;
	uint32_t ring_cap, ring_head, ring_count;

	uint32_t nsubs;
	uint32_t expiry_slot; /* 1 + index in gw->expiring, 0 when not there */
	uint32_t performs;    /* perform commands so far: the default request id */

	/* Inbound message reassembly (a message that lws hands over in pieces). */
	uint32_t rx_len, rx_cap;
	char *rx;

	/* Backpressure: a publish the broker queue refused, and what arrived after it. */
	struct cable_msg *pending;
	struct deferred *deferred_head, *deferred_tail;
	struct session *paused_next;
	uint32_t ndeferred;

	uint16_t close_code;
	bool active;      /* authenticated and welcomed */
	bool closing;     /* disconnect queued: read nothing more, close once written */
	bool lingering;   /* disconnect written; waiting for the client to close */
	bool unsupported; /* the client chose actioncable-unsupported */
	bool counted_ip, counted_user; /* included in gw->per_ip / gw->per_user */
	bool rx_binary;
	bool rx_overflow;
	bool paused;
	bool dropped;         /* session_closed runs: presence lingers for the TTL (room.c) */
	float whisper_tokens; /* whisper token bucket (room.c) */
	long long whisper_ms; /* its last refill, ms; 0 = full */
	char sid[CABLE_SID_LEN + 1];
	char peer[48]; /* the client's address as text (INET6_ADDRSTRLEN is 46) */
};

enum auth_failure { AUTH_NO_TOKEN, AUTH_EXPIRED, AUTH_BAD_SIGNATURE, AUTH_INVALID, AUTH_NREASONS };

/* The internal MQTT client and the last-value cache (state.c). */
enum state_phase { STATE_DOWN, STATE_SYNCING, STATE_LIVE };

struct state_client {
	enum state_phase phase;
	struct lws *wsi; /* NULL while not connected */
	int fd;
	uint8_t *in; /* a partial packet */
	size_t in_len, in_cap;
	uint8_t out[512]; /* CONNECT, SUBSCRIBE, PINGREQ not yet written */
	size_t out_len;
	struct cable_retained *cache; /* what subscribes replay from */
	struct cable_retained *next;  /* being filled by the broker's replay (SYNCING) */
	struct cable_msg *backlog, *backlog_tail; /* read, not yet fanned out */
	size_t backlog_count, backlog_bytes;      /* bounded as to_gateway is */
	bool dispatch_pending;                    /* dispatch_sul will continue */
	uint64_t dropped, reported_drops;         /* live messages dropped: the queue was full */
	lws_usec_t next_drop_log;
	lws_sorted_usec_list_t retry_sul, ping_sul, dispatch_sul;
	lws_usec_t failing_since, next_warn, sync_started;
	lws_usec_t lost_at; /* a live connection was lost then (reported at the next sync) */
	bool warned_full;
	unsigned refusals; /* CONNACK/SUBACK refusals since the last synchronisation */
	bool pending;      /* some sub->replay_pending is set */
	uint64_t connects, replayed;
	uint64_t refused_before; /* refusals of caches already replaced */
};

#define LATENCY_BUCKETS 12

/* Counters for /metrics. Gateway thread only, like everything else here. */
struct gw_stats {
	uint64_t connections; /* accepted WebSockets, ever */
	uint64_t auth_failures[AUTH_NREASONS];
	uint64_t commands_in; /* client commands read */
	uint64_t bytes_in;
	uint64_t frames_out, bytes_out; /* frames written to sockets */
	uint64_t broadcasts;            /* MQTT messages dispatched to the index */
	uint64_t deliveries;            /* frames queued for browsers by broadcasts */
	uint64_t binary_skipped;        /* non-text payloads a "message" channel cannot carry */
	uint64_t too_slow;              /* slow-consumer disconnects */
	uint64_t publishes;             /* browser performs handed to the broker */
	uint64_t subscribes, rejects;
	uint64_t acks, refusals, replies; /* answers sent to performing browsers */
	uint64_t replies_unclaimed;       /* device replies for no (longer) subscribed token */
	uint64_t subscriptions;           /* current */
	uint64_t presence_joins, presence_leaves, presence_refused; /* room.c */
	uint64_t whispers, whispers_disabled, whispers_too_large, whispers_rate_limited;
	uint64_t watchers_published;
	/* Broker receipt -> frames queued on every receiver, in seconds. */
	uint64_t latency_count, latency_bucket[LATENCY_BUCKETS];
	double latency_sum;
};

struct gw {
	struct cable_gateway_config cfg; /* strings owned (copied) */
	char *strings[14];
	struct cable_origins *origins;     /* NULL: no Origin check */
	struct lws_http_mount mounts[3];   /* /health, /metrics, and the static directory if any */
	struct lws_protocols protocols[6]; /* gateway.c's, with plugin_opt_receive_buffer */
	struct cable_link *link;
	struct cable_rules *rules;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	struct ev_loop *loop; /* epoll under lws (gateway.c, event_loop_open); NULL with poll */
	void *loops[1];       /* lws' foreign_loops */
	void *evlib;          /* our handle on lws' libev glue */
	ev_timer kick;        /* see gw_kick */
	pthread_t thread;
	bool thread_started;
	atomic_bool stop_requested; /* any thread */
	bool stopping, finished;
	long long stop_deadline_us;

	/* The listening socket and the accepted ones (listen.c). */
	int listen_fd;
	bool listen_fd_owned_by_lws;
	bool listen_watching; /* lws polls listen_wsi for readability */
	bool accept_backoff;  /* accept() ran out of descriptors: waiting for accept_sul */
	struct lws *listen_wsi;
	size_t nsockets;       /* accepted and not yet destroyed */
	size_t nhandshakes;    /* of those, not (yet) one of our WebSockets */
	struct counter *peers; /* sockets per client address */
	lws_sorted_usec_list_t accept_sul;
	struct rate_log log_accept_failed, log_paused, log_ip_refused;

	struct session *sessions;
	size_t nsessions;
	size_t peak_sessions;                  /* since the last malloc_trim */
	size_t unused_base, unused_after_trim; /* resident, not malloc'ed bytes (trim_memory) */
	struct session *paused;
	struct cable_msg *backlog, *backlog_tail; /* taken from to_gateway, not yet handled */
	bool backlog_pending;                     /* inbox_sul will continue the backlog */
	struct counter *per_ip, *per_user;

	struct route *exact;
	struct cable_tree *wild; /* NULL until the first wildcard route */
	struct ident *idents;
	struct answer_slot *answers; /* by token (answer.c) */
	uint64_t seq;
	struct ident **touched; /* idents whose frame cache the current dispatch filled */
	size_t ntouched, touched_cap;

	lws_sorted_usec_list_t ping_sul;
	unsigned pings;        /* ping rounds so far, for the TICK watchdog */
	bool warned_tick;      /* the no-TICK watchdog has looked */
	const char *unhealthy; /* why /health answers 503 and performs are refused, or NULL */
	lws_sorted_usec_list_t stop_sul;
	lws_sorted_usec_list_t metrics_sul;
	lws_sorted_usec_list_t inbox_sul; /* continues a large inbox after the writes */
	lws_sorted_usec_list_t nudge_sul; /* re-wakes the broker while to_broker is not empty */
	bool nudging;
	/*
	 * Token expiry: a min-heap of sessions by who.exp and one timer for its root. One
	 * lws timer per session would cost O(n) each (lws keeps timers in a sorted list),
	 * O(n^2) over a storm of new connections.
	 */
	struct session **expiring;
	size_t nexpiring, expiring_cap;
	lws_sorted_usec_list_t expiry_sul;
	/* Presence and whisper (room.c). */
	struct room *rooms;              /* by key */
	struct cable_presence *presence; /* NULL until the first presence channel is used */
	size_t presence_members;         /* records over every room */
	lws_sorted_usec_list_t presence_sul;
	lws_sorted_usec_list_t mirror_sul;
	struct room *mirror_queue; /* rooms whose watcher count waits to be published */
	long long mirror_due;      /* when mirror_sul fires (ms), 0 when not armed */
	uint64_t whispers_unlogged;
	long long whisper_logged_at;
	struct gw_stats stats;
	struct state_client state;
	struct ext_gw *ext;     /* history, epoch, restorable sessions (ext.c) */
	struct route **matched; /* routes of the message being dispatched */
	size_t matched_cap;
};

/* gateway.c */
const char *listen_error_text(int e);
void gw_log(struct gw *gw, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int gw_push_to_broker(struct gw *gw, struct cable_msg *m);
void gw_schedule(struct gw *gw, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us);
void gw_kick(struct gw *gw, lws_usec_t us);

/* listen.c */
int listen_open(struct gw *gw, char *err, size_t errlen);
int listen_adopt(struct gw *gw, char *err, size_t errlen);
void listen_release(struct gw *gw);
void listen_update(struct gw *gw);
void listen_established(struct gw *gw, struct lws *wsi);
void listen_destroyed(struct gw *gw, struct lws *wsi);
void listen_flush_logs(struct gw *gw);
int callback_listener(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

/* session.c */
struct counter *counter_get(struct counter **table, const char *key);
void counter_drop(struct counter **table, struct counter *c);
void expiry_release(struct gw *gw);
void session_open(struct session *s, struct gw *gw, struct lws *wsi);
void session_receive(struct session *s, const void *in, size_t len);
int session_writeable(struct session *s);
int session_timer(struct session *s);
void session_closed(struct session *s);
void session_send(struct session *s, struct cable_frame *f); /* takes a new reference */
void session_close(struct session *s, const char *reason, bool reconnect, uint16_t code);
void session_resume(struct session *s);
void session_rebind_all(struct gw *gw);
bool sub_may_read(struct gw *gw, struct sub *sub, const struct cable_msg *m);

/* metrics.c */
size_t metrics_render(struct gw *gw, char *buf, size_t len);
void metrics_publish(struct gw *gw);
void metrics_observe_latency(struct gw *gw, double seconds);

/* answer.c */
struct cable_answer_to *answer_prepare(struct session *s, struct sub *sub,
                                       const struct cable_perform_info *info, uint32_t seq);
void answer_refuse(struct session *s, struct sub *sub, const struct cable_perform_info *info,
                   enum cable_refusal refusal, uint32_t seq);
void answer_from_broker(struct gw *gw, const struct cable_msg *m);
void answer_forget(struct gw *gw, struct sub *sub);
void answer_release(struct gw *gw);
/* state.c */
struct sockaddr_storage;
int state_parse_listener(const char *spec, struct sockaddr_storage *ss, unsigned *len);
void state_start(struct gw *gw);
void state_release(struct gw *gw);
struct ext_plan;
/* plan: an ext subscribe's history request (ext.c), whose topics' values are left out */
void state_replay(struct session *s, struct sub *sub, const struct ext_plan *plan);
void state_catch_up(struct gw *gw);
extern const struct lws_protocols state_protocol;

/* ext.c: the extended protocol (reliable streams, session restore, pongs) */
struct cable_cmd;
struct held; /* frames of a restored subscription held until its history command */
struct resume;
struct ext_gw;
int ext_start(struct gw *gw);
void ext_release(struct gw *gw);
bool ext_attach(struct session *s);   /* an ext connection opened; false: out of memory */
void ext_welcome(struct session *s);  /* restore or greet */
void ext_detach(struct session *s);   /* it closed: park it for restore, or forget it */
void ext_received(struct session *s); /* any frame from the client (pongs) */
void ext_tick(struct gw *gw);         /* every ping: expiry, pong timeouts */
void ext_history(struct session *s, const struct cable_cmd *cmd); /* the history command */
/* History on subscribe: plan, (last values, skipping what the plan covers), send. */
struct ext_plan;
struct ext_plan *ext_history_plan(struct session *s, struct sub *sub, const struct cable_cmd *cmd);
bool ext_skip_last_value(const struct ext_plan *rp, const char *topic, size_t len);
void ext_history_send(struct session *s, struct sub *sub, struct ext_plan *rp, bool answer);
void ext_sub_gone(struct gw *gw, struct sub *sub);
bool ext_tracked(struct gw *gw, const struct cable_msg *m, uint64_t *offset);
struct cable_frame *ext_frame(struct gw *gw, struct sub *sub, const char *value, size_t len,
                              const struct cable_msg *m, uint64_t offset);
bool ext_hold(struct sub *sub, struct cable_frame *f, const struct cable_msg *m, uint64_t offset);
size_t ext_metrics(struct gw *gw, char *buf, size_t len);

/* session.c, for ext.c */
struct sub *sub_create(struct session *s, const char *id, size_t len, struct cable_error *err);

/* room.c */
struct room;
size_t room_cost(const struct cable_binding *b);
int room_attach(struct gw *gw, struct sub *sub);
void room_detach(struct gw *gw, struct sub *sub, bool dropped);
void room_rebind_all(struct gw *gw);
struct cable_cmd;
void room_command(struct session *s, struct sub *sub, const struct cable_cmd *cmd);
void room_release(struct gw *gw);

/* fanout.c */
struct route *route_keep(struct gw *gw, const char *filter);
void route_unkeep(struct gw *gw, struct route *r);
struct ident *ident_get(struct gw *gw, const char *raw, size_t len);
void ident_put(struct gw *gw, struct ident *id);
int sub_link_streams(struct gw *gw, struct sub *sub);
void sub_unlink_streams(struct gw *gw, struct sub *sub);
void fanout_dispatch(struct gw *gw, const struct cable_msg *m);
void fanout_release(struct gw *gw);

#endif
