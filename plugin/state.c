/*
 * Last values: the gateway's internal MQTT client of its own broker, and the
 * last-value cache it keeps (docs/architecture.md, "Last values"). Gateway threads: the
 * client on shard 0's, replays on every shard's; state_release on the broker thread.
 *
 * With plugin_opt_state_listener the gateway connects to that broker listener as an
 * MQTT 5 client admitted only by the adapter (enhanced authentication with a random
 * per-start client id and secret, broker.c), subscribes to "#" with retain-as-published
 * and reads, in one broker-ordered stream on this thread: the retained messages the
 * broker replays to a new subscription (including those restored from persistence),
 * then every message a subscriber sees, wills and other plugins' publishes included,
 * each with its own retain flag. A retained one updates the cache (an empty payload
 * clears the topic) and every one goes to the fan-out. A browser's new subscription
 * is answered from the cache between two messages of that stream, so replay and live
 * delivery can neither overlap nor leave a gap.
 *
 * Start and reconnect: the client sends CONNECT, SUBSCRIBE and PINGREQ at once. The
 * broker answers SUBSCRIBE with SUBACK and all the retained messages before it reads
 * the PINGREQ, so the PINGRESP closes the replay: until then messages only build a new
 * cache, which then replaces the old one, and fan-out starts.
 *
 * Shards: the client runs on shard 0, whose thread alone writes the cache, and every
 * shard replays from it (struct state_shared, under its rwlock). A message gets its
 * sequence number when it is read, as the cache takes it; a replay notes the number of
 * the last message its snapshot reflects, and its subscription takes only later ones
 * (index_entry.since), whichever shard it is on and however far behind that shard's
 * fan-out is. Subscriptions made while the client was not synchronised get their replay
 * when it is: shard 0 then calls every other shard (state_pending_here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "cable_clock.h"
#include "cable_mqtt.h"
#include "cable_proto.h"
#include "cable_topic.h"
#include "gw.h"

#define STATE_PROTOCOL    "cable-state"
#define STATE_AUTH_METHOD "mosquitto-cable" /* broker.c checks it */
#define STATE_USERNAME    "mosquitto-cable" /* for grants in the broker's own ACL */
#define RETRY_US          (250 * LWS_US_PER_MS)
#define RECONNECT_US      (1000 * LWS_US_PER_MS)
#define WARN_AFTER_US     (3 * LWS_US_PER_SEC)
#define WARN_EVERY_US     (60 * LWS_US_PER_SEC)
#define KEEPALIVE_S       60
#define PING_US           (30 * LWS_US_PER_SEC)
#define ROOM_WAIT_US      (1 * LWS_US_PER_MS) /* another shard's inbox is full */

/* The cache every shard replays from; NULL until shard 0 has started the client. */
static struct state_shared *shared_of(struct gw *gw)
{
	return atomic_load_explicit(&gw->hub->state, memory_order_acquire);
}

/* ---- Configuration ----------------------------------------------------------------- */

/*
 * "ADDRESS:PORT" (IPv4 loopback or localhost, no '/') for TCP; anything else is a unix socket
 * path, relative ones to the broker's working directory as for its own listener.
 * Broker thread, in start().
 */
int state_parse_listener(const char *spec, struct sockaddr_storage *ss, unsigned *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	const char *colon = strrchr(spec, ':');
	char host[64];
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (colon == NULL || strchr(spec, '/') != NULL) {
		if (*spec == '\0' || strlen(spec) >= sizeof(un->sun_path))
			return CABLE_EINVAL;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, spec);
		*len = sizeof(*un);
		return CABLE_OK;
	}
	if ((size_t)(colon - spec) >= sizeof(host))
		return CABLE_EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		return CABLE_EINVAL;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	/* This broker's own listener: loopback, so a connect never waits on a network. */
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1 ||
	    (ntohl(in->sin_addr.s_addr) >> 24) != 127)
		return CABLE_EINVAL;
	*len = sizeof(*in);
	return CABLE_OK;
}

/* ---- Writing ------------------------------------------------------------------------- */

static void state_flush(struct gw *gw)
{
	struct state_client *st = &gw->state;
	ssize_t n;

	while (st->out_len) {
		n = send(st->fd, st->out, st->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				lws_callback_on_writable(st->wsi);
			return; /* an error shows as a close */
		}
		memmove(st->out, st->out + n, st->out_len - (size_t)n);
		st->out_len -= (size_t)n;
	}
}

static void state_ping(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, state.ping_sul);
	struct state_client *st = &gw->state;

	if (st->wsi == NULL)
		return;
	st->out_len += cable_mqtt_pingreq(st->out + st->out_len, sizeof(st->out) - st->out_len);
	state_flush(gw);
	gw_schedule(gw, &st->ping_sul, state_ping, PING_US);
}

/* ---- Connecting ---------------------------------------------------------------------- */

static void state_connect(lws_sorted_usec_list_t *sul);

static void state_retry(struct gw *gw, lws_usec_t after)
{
	if (gw->stopping || gw->finished)
		return;
	gw_schedule(gw, &gw->state.retry_sul, state_connect, after);
}

static void state_warn(struct gw *gw, const char *why)
{
	struct state_client *st = &gw->state;
	lws_usec_t now = lws_now_usecs();

	if (st->failing_since == 0)
		st->failing_since = now;
	/*
	 * The broker opens its listeners after the plugin starts: failures are expected
	 * until its main loop runs (the first TICK), and reported at once after that.
	 */
	if (atomic_load_explicit(&gw->link->ticks, memory_order_relaxed) == 0 &&
	    now - st->failing_since < WARN_AFTER_US)
		return;
	if (now < st->next_warn)
		return;
	st->next_warn = now + WARN_EVERY_US;
	gw_log(gw, MOSQ_LOG_ERR,
	       "plugin_opt_state_listener %s: cannot connect (%s): the broker needs that listener "
	       "(mosquitto.conf: 'listener 0 %s' for a unix socket, or 'listener PORT ADDRESS'); "
	       "browsers get no messages until it can",
	       gw->cfg.state_listener, why, gw->cfg.state_listener);
}

static void state_connect(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, state.retry_sul);
	struct state_client *st = &gw->state;
	struct sockaddr_storage ss;
	lws_sock_file_fd_type u;
	unsigned sslen;
	int fd;

	if (st->wsi || gw->stopping)
		return;
	if (state_parse_listener(gw->cfg.state_listener, &ss, &sslen) != CABLE_OK)
		return; /* checked in start() */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		state_warn(gw, strerror(errno));
		state_retry(gw, RETRY_US);
		return;
	}
	/* A local connect completes (or fails) at once; the socket is non-blocking after. */
	if (connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
		state_warn(gw, strerror(errno));
		close(fd);
		state_retry(gw, RETRY_US);
		return;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	st->fd = fd;
	u.sockfd = fd;
	st->wsi = lws_adopt_descriptor_vhost(lws_get_vhost_by_name(gw->loop.ctx, "default"),
	                                     LWS_ADOPT_SOCKET, u, STATE_PROTOCOL, NULL);
	if (st->wsi == NULL) { /* lws closed the descriptor */
		state_warn(gw, "libwebsockets could not adopt the socket");
		state_retry(gw, RECONNECT_US);
		return;
	}
	st->in_len = 0;
	st->out_len = cable_mqtt_connect(st->out, sizeof(st->out), gw->cfg.state_client_id,
	                                 STATE_USERNAME, STATE_AUTH_METHOD, gw->cfg.state_secret,
	                                 strlen(gw->cfg.state_secret), KEEPALIVE_S);
	st->out_len += cable_mqtt_subscribe(st->out + st->out_len, sizeof(st->out) - st->out_len, 1,
	                                    "#", CABLE_MQTT_SUB_RETAIN_AS_PUBLISHED, 1);
	st->out_len += cable_mqtt_pingreq(st->out + st->out_len, sizeof(st->out) - st->out_len);
	cable_retained_free(st->next);
	st->next = cable_retained_new(gw->cfg.retained_max_entries, gw->cfg.retained_max_bytes);
	st->phase = STATE_SYNCING;
	st->sync_started = lws_now_usecs();
	st->connects++;
	state_flush(gw);
}

/* ---- Reading ------------------------------------------------------------------------- */

/*
 * Live messages wait in a bounded queue for the fan-out, which runs STATE_BATCH of them
 * per turn of the loop, so sockets are written between batches (as drain_inbox does
 * with to_gateway, whose bounds it shares). The socket is read at once whatever the
 * fan-out's pace, so the broker never holds a backlog for us; when the queue is full a
 * message is dropped for browsers and counted, as to_gateway drops. The cache is
 * updated as messages are read, and a subscribe first fans out everything queued
 * (state_catch_up), so a replay and the live messages after it start at the same place
 * in the stream.
 */
#define STATE_BATCH 16

static void state_dispatch(struct gw *gw, size_t max);

static void state_dispatch_continue(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, state.dispatch_sul);

	gw->state.dispatch_pending = false;
	state_dispatch(gw, STATE_BATCH);
}

static void state_dispatch(struct gw *gw, size_t max)
{
	struct state_client *st = &gw->state;
	struct cable_msg *m;
	bool room = true;
	size_t n;

	/*
	 * A batch at a time, while every other shard's inbox has room (shards_dispatch
	 * forces, overshooting by a batch at most): a slow shard makes this backlog wait and
	 * fill, and messages are dropped here, for every browser alike, as with one shard.
	 */
	for (n = 0; n < max && (m = st->backlog) != NULL; n++) {
		if (n % STATE_BATCH == 0 && !(room = shards_inboxes_have_room(gw)))
			break;
		st->backlog = m->next;
		if (st->backlog == NULL)
			st->backlog_tail = NULL;
		st->backlog_count--;
		st->backlog_bytes -= m->topic_len + m->payload_len;
		shards_dispatch(gw, m); /* takes m */
	}
	if (st->backlog && !st->dispatch_pending && !gw->finished) {
		st->dispatch_pending = true;
		gw_schedule(gw, &st->dispatch_sul, state_dispatch_continue,
		            room ? 1 : ROOM_WAIT_US);
	}
}

/*
 * Before a subscription is linked: fan out everything queued (see above), as far as the
 * other shards take it (what stays queued is older than the replay: since skips it).
 * Only shard 0 has a backlog.
 */
void state_catch_up(struct gw *gw)
{
	if (gw->state.backlog)
		state_dispatch(gw, SIZE_MAX);
}

static void state_queue(struct gw *gw, const struct cable_mqtt_packet *pk, uint64_t seq)
{
	struct state_client *st = &gw->state;
	const struct cable_queue *bound = &gw->link->to_gateway;
	size_t bytes = pk->topic_len + pk->payload_len;
	struct cable_msg *m = NULL;

	if (st->backlog_count < bound->max_count && st->backlog_bytes + bytes <= bound->max_bytes)
		m = cable_msg_new(CABLE_MSG_PUBLISH, pk->topic, pk->topic_len, pk->payload,
		                  pk->payload_len);
	if (m == NULL) {
		st->dropped++;
		return;
	}
	m->qos = pk->qos;
	m->retain = pk->retain;
	m->t_ns = cable_now_ns();
	m->seq = seq;
	if (st->backlog_tail)
		st->backlog_tail->next = m;
	else
		st->backlog = m;
	st->backlog_tail = m;
	st->backlog_count++;
	st->backlog_bytes += bytes;
}

/* Say how many messages were dropped since the last time, at most every 10 s. */
static void state_report_drops(struct gw *gw)
{
	struct state_client *st = &gw->state;
	lws_usec_t now;

	if (st->dropped == st->reported_drops || (now = lws_now_usecs()) < st->next_drop_log)
		return;
	gw_log(gw, MOSQ_LOG_WARNING,
	       "last values: %llu messages for browsers dropped: the fan-out is behind "
	       "(plugin_opt_queue_messages / plugin_opt_queue_bytes)",
	       (unsigned long long)(st->dropped - st->reported_drops));
	st->reported_drops = st->dropped;
	st->next_drop_log = now + 10 * LWS_US_PER_SEC;
}

static void state_publish(struct gw *gw, const struct cable_mqtt_packet *pk)
{
	struct state_client *st = &gw->state;
	struct state_shared *sh = shared_of(gw);
	uint64_t seq;
	int rc = CABLE_OK;

	if (st->phase == STATE_SYNCING) {
		if (pk->retain && st->next)
			cable_retained_apply(st->next, pk->topic, pk->topic_len, pk->payload,
			                     pk->payload_len, pk->qos);
		return;
	}
	/* Numbered as the cache takes it: a replay from now on covers it (state_replay). */
	seq = shard_next_seq(gw);
	if (pk->retain) {
		pthread_rwlock_wrlock(&sh->lock);
		rc = cable_retained_apply(st->cache, pk->topic, pk->topic_len, pk->payload,
		                          pk->payload_len, pk->qos);
		atomic_store(&sh->seq, seq);
		pthread_rwlock_unlock(&sh->lock);
	} else {
		atomic_store(&sh->seq, seq);
	}
	if (rc != CABLE_OK && !st->warned_full) {
		st->warned_full = true;
		gw_log(gw, MOSQ_LOG_WARNING,
		       "last-value cache full (plugin_opt_retained_max_entries %zu, "
		       "plugin_opt_retained_max_bytes %zu): retained values that do not fit are "
		       "not "
		       "replayed to new subscribers (cable_retained_refused_total)",
		       gw->cfg.retained_max_entries, gw->cfg.retained_max_bytes);
	}
	state_queue(gw, pk, seq);
}

/* Replay what this shard's subscriptions made before the synchronisation are owed. */
static void state_replay_pending(struct gw *gw)
{
	struct session *sess;
	struct sub *sub, *tmp;

	if (!gw->state.pending)
		return;
	gw->state.pending = false;
	for (sess = gw->sess.list; sess; sess = sess->next) {
		HASH_ITER(hh, sess->subs, sub, tmp)
		{
			if (sub->replay_pending) {
				sub->replay_pending = false;
				state_replay(sess, sub, NULL);
			}
		}
	}
}

/* Another shard, called by shard 0 when the cache went live. */
static void state_pending_here(struct gw *gw, void *arg)
{
	(void)arg;
	if (!gw->stopping && !gw->finished) /* not at shutdown (gateway.c, leftover calls) */
		state_replay_pending(gw);
}

static void state_synced(struct gw *gw)
{
	struct state_client *st = &gw->state;
	struct state_shared *sh = shared_of(gw);
	struct cable_retained_stats rs;

	state_catch_up(gw); /* what an earlier connection read goes out first */
	if (st->lost_at) {
		gw_log(gw, MOSQ_LOG_WARNING,
		       "last values: the connection to the broker was lost for %lld ms; browsers "
		       "missed the live messages of that time",
		       (long long)((lws_now_usecs() - st->lost_at) / LWS_US_PER_MS));
		st->lost_at = 0;
	}
	pthread_rwlock_wrlock(&sh->lock);
	if (st->next) {
		struct cable_retained_stats old;

		cable_retained_stats(st->cache, &old);
		sh->refused_before += old.refused; /* the metric stays a counter */
		cable_retained_free(st->cache);
		st->cache = st->next;
		st->next = NULL;
		sh->cache = st->cache;
	}
	sh->live = true;
	/* The new cache is the broker's store now: every message so far is in it. */
	atomic_store(&sh->seq, gw->hub->seq);
	pthread_rwlock_unlock(&sh->lock);
	st->refused_before = sh->refused_before;
	st->phase = STATE_LIVE;
	st->refusals = 0;
	st->failing_since = 0;
	st->next_warn = 0;
	st->warned_full = false;
	/*
	 * Subscriptions made while we were not synchronised get their values now, on every
	 * shard (after whatever this shard dispatched to them above).
	 */
	state_replay_pending(gw);
	for (unsigned i = 0; i < gw->hub->n; i++)
		if (gw->hub->shards[i] != gw)
			shard_call(gw->hub->shards[i], state_pending_here, NULL, true);
	cable_retained_stats(st->cache, &rs);
	gw_log(gw, MOSQ_LOG_NOTICE,
	       "last values: connected to the broker at %s, %zu retained topics (%zu bytes) in "
	       "%lld ms",
	       gw->cfg.state_listener, rs.entries, rs.bytes,
	       (long long)((lws_now_usecs() - st->sync_started) / LWS_US_PER_MS));
	gw_schedule(gw, &st->ping_sul, state_ping, PING_US);
}

static const char *reason_text(uint8_t rc)
{
	switch (rc) {
	case 0x87:
		return "not authorized: the broker's ACL refuses it; see "
		       "plugin_opt_state_grant_read";
	case 0x8C:
		return "bad authentication method: the adapter did not admit it";
	case 0x86:
		return "bad credentials";
	case 0x8E:
		return "session taken over";
	default:
		return "see the broker log";
	}
}

/* The broker refused what: log it, count it for the back-off; false (drop the connection). */
static bool state_refused(struct gw *gw, const char *what, uint8_t reason)
{
	gw->state.refusals++;
	gw_log(gw, MOSQ_LOG_ERR, "last values: the broker refused %s (reason 0x%02x: %s)", what,
	       reason, reason_text(reason));
	return false;
}

/* One packet from the broker. false: drop the connection. */
static bool state_packet(struct gw *gw, const uint8_t *buf, size_t len)
{
	struct cable_mqtt_packet pk;
	struct cable_error err = {0};

	if (cable_mqtt_decode(buf, len, &pk, &err) != CABLE_OK) {
		gw_log(gw, MOSQ_LOG_ERR, "last values: malformed packet from the broker: %s",
		       CABLE_LOG_STR(err.text));
		return false;
	}
	switch (pk.type) {
	case CABLE_MQTT_PUBLISH:
		if (pk.qos != 0) /* we subscribed at QoS 0; never acknowledged */
			return false;
		state_publish(gw, &pk);
		return true;
	case CABLE_MQTT_CONNACK:
		return pk.reason == 0 || state_refused(gw, "the internal client", pk.reason);
	case CABLE_MQTT_SUBACK:
		return pk.reason < 0x80 || state_refused(gw, "the subscription to '#'", pk.reason);
	case CABLE_MQTT_PINGRESP:
		if (gw->state.phase == STATE_SYNCING)
			state_synced(gw);
		return true;
	case CABLE_MQTT_DISCONNECT:
		gw_log(gw, MOSQ_LOG_WARNING,
		       "last values: the broker disconnected the internal client (reason 0x%02x: "
		       "%s)",
		       pk.reason, reason_text(pk.reason));
		return false;
	default:
		return true;
	}
}

/* Bytes from the socket: whole packets are handled, a partial one is kept. */
static bool state_receive(struct gw *gw, const uint8_t *in, size_t len)
{
	struct state_client *st = &gw->state;
	size_t off = 0, total;
	uint8_t *grown;
	int rc;

	if (st->in_len + len > st->in_cap) {
		size_t cap = st->in_cap ? st->in_cap : 16384;

		while (cap < st->in_len + len)
			cap *= 2;
		grown = realloc(st->in, cap);
		if (grown == NULL)
			return false;
		st->in = grown;
		st->in_cap = cap;
	}
	memcpy(st->in + st->in_len, in, len);
	st->in_len += len;
	for (;;) {
		rc = cable_mqtt_packet_length(st->in + off, st->in_len - off, &total);
		if (rc == CABLE_EFULL)
			break;
		if (rc != CABLE_OK) {
			gw_log(gw, MOSQ_LOG_ERR, "last values: bad packet length from the broker");
			return false;
		}
		if (total > st->in_len - off)
			break;
		if (!state_packet(gw, st->in + off, total))
			return false;
		off += total;
	}
	memmove(st->in, st->in + off, st->in_len - off);
	st->in_len -= off;
	if (!st->dispatch_pending)
		state_dispatch(gw, STATE_BATCH);
	state_report_drops(gw);
	/* Give back a buffer a large message grew. */
	if (st->in_cap > 1024 * 1024 && st->in_len < 16384) {
		grown = realloc(st->in, 16384);
		if (grown) {
			st->in = grown;
			st->in_cap = 16384;
		}
	}
	return true;
}

static int state_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct gw *gw = lws_context_user(lws_get_context(wsi));
	struct state_client *st = &gw->state;
	struct state_shared *sh;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (wsi != st->wsi)
			return -1;
		return state_receive(gw, in, len) ? 0 : -1;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (wsi == st->wsi)
			state_flush(gw);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE:
		if (wsi != st->wsi)
			return 0;
		st->wsi = NULL;
		st->fd = -1;
		st->out_len = 0;
		/*
		 * Said when the connection is back: the broker closes it when it shuts down,
		 * before the plugin is told, and that needs no warning.
		 */
		if (st->phase == STATE_LIVE && !gw->stopping)
			st->lost_at = lws_now_usecs();
		st->phase = STATE_DOWN;
		/* Subscribes wait for the next synchronisation now, on every shard. */
		sh = shared_of(gw);
		pthread_rwlock_wrlock(&sh->lock);
		sh->live = false;
		pthread_rwlock_unlock(&sh->lock);
		gw_schedule(gw, &st->ping_sul, NULL, LWS_SET_TIMER_USEC_CANCEL);
		/* Refused again and again (ACL, credentials): back off, up to a minute. */
		state_retry(gw, RECONNECT_US << (st->refusals < 6 ? st->refusals : 6));
		return 0;
	default:
		return 0;
	}
}

/* ---- Replay on subscribe --------------------------------------------------------------- */

struct replay {
	struct gw *gw;
	struct sub *sub;
	size_t stream;               /* the stream being replayed; earlier ones were done */
	const struct ext_plan *plan; /* the subscribe's history request, if any (ext.c) */
	struct cable_frame **frames; /* built under the lock, sent after it */
	size_t n, cap;
};

static void replay_one(const struct cable_retained_entry *e, void *arg)
{
	struct replay *r = arg;
	struct sub *sub = r->sub;
	struct cable_msg m;
	struct cable_frame *f;
	const char *stream;
	char *value = NULL;
	size_t i, vlen = 0;
	void *grown;
	int rc;

	/* A topic two streams cover goes once. */
	for (i = 0; i < r->stream; i++) {
		stream = cable_binding_stream(sub->binding, i);
		if (cable_topic_matches(stream, strlen(stream), e->topic, e->topic_len))
			return;
	}
	/* Covered by the history replay that follows (ext.c): never applied twice. */
	if (ext_skip_last_value(r->plan, e->topic, e->topic_len))
		return;
	memset(&m, 0, sizeof(m));
	m.kind = CABLE_MSG_PUBLISH;
	m.topic = (char *)e->topic;
	m.topic_len = e->topic_len;
	m.payload = (char *)e->payload;
	m.payload_len = e->payload_len;
	m.qos = e->qos;
	m.retain = true;
	if (sub->entry.check_each && !sub_may_read(sub, &m))
		return;
	if (sub->entry.deliver == CABLE_DELIVER_ENVELOPE)
		rc = cable_proto_envelope_value(e->topic, e->topic_len, e->payload, e->payload_len,
		                                true, &value, &vlen);
	else
		rc = cable_proto_payload_value(e->payload, e->payload_len, &value, &vlen);
	if (rc != CABLE_OK) {
		r->gw->state.skipped++;
		return;
	}
	f = cable_proto_message(sub->entry.ident->json, sub->entry.ident->json_len, value, vlen);
	free(value);
	if (f == NULL)
		return;
	grown = cable_grow(r->frames, r->n, &r->cap, sizeof(*r->frames), 4);
	if (grown == NULL) {
		cable_frame_unref(f);
		return;
	}
	r->frames = grown;
	r->frames[r->n++] = f;
}

/*
 * Right after confirm_subscription: the current value of every topic the streams cover.
 * Before the internal client has synchronised (the broker starting, or reconnecting) the
 * cache is not the broker's store yet: the replay waits for the synchronisation, which
 * sends it before any live message (state_synced, state_pending_here).
 *
 * The frames are built under the read lock and sent after it; the subscription then
 * takes only the messages read after those the snapshot reflects (index_entry.since):
 * those still on their way to this shard are skipped, the rest delivered.
 */
void state_replay(struct session *s, struct sub *sub, const struct ext_plan *plan)
{
	struct gw *gw = s->gw;
	struct state_shared *sh;
	struct replay r = {.gw = gw, .sub = sub, .plan = plan};
	const char *stream;
	uint64_t since;
	size_t i;

	if (gw->cfg.state_listener == NULL || !cable_binding_last_value(sub->binding))
		return;
	sh = shared_of(gw);
	if (sh)
		pthread_rwlock_rdlock(&sh->lock);
	if (sh == NULL || !sh->live) {
		if (sh)
			pthread_rwlock_unlock(&sh->lock);
		sub->replay_pending = true;
		gw->state.pending = true;
		return;
	}
	for (r.stream = 0; r.stream < cable_binding_stream_count(sub->binding); r.stream++) {
		stream = cable_binding_stream(sub->binding, r.stream);
		cable_retained_each(sh->cache, stream, strlen(stream), replay_one, &r);
	}
	since = atomic_load(&sh->seq);
	pthread_rwlock_unlock(&sh->lock);
	if (since > sub->entry.since)
		sub->entry.since = since;
	gw->state.replayed += r.n;
	for (i = 0; i < r.n; i++) {
		session_send(sub->session, r.frames[i]);
		cable_frame_unref(r.frames[i]);
	}
	free(r.frames);
}

void state_stats(struct gw *gw, struct state_stats *out)
{
	struct state_shared *sh = shared_of(gw);
	struct cable_retained_stats rs = {0};

	memset(out, 0, sizeof(*out));
	if (sh == NULL)
		return;
	pthread_rwlock_rdlock(&sh->lock);
	if (sh->cache)
		cable_retained_stats(sh->cache, &rs);
	out->live = sh->live;
	out->entries = rs.entries;
	out->bytes = rs.bytes;
	out->refused = sh->refused_before + rs.refused;
	pthread_rwlock_unlock(&sh->lock);
}

/* ---- Life cycle ---------------------------------------------------------------------- */

/*
 * Shard 0's gateway thread, when the loop starts: the shared cache (the other shards'
 * subscribes wait for it, as for a synchronisation), then the client.
 */
void state_start(struct gw *gw)
{
	struct state_client *st = &gw->state;
	struct state_shared *sh;

	st->fd = -1;
	if (gw->cfg.state_listener == NULL)
		return;
	sh = calloc(1, sizeof(*sh));
	st->cache = cable_retained_new(gw->cfg.retained_max_entries, gw->cfg.retained_max_bytes);
	if (sh == NULL || st->cache == NULL || pthread_rwlock_init(&sh->lock, NULL) != 0) {
		gw_log(gw, MOSQ_LOG_ERR, "last values: out of memory");
		free(sh);
		cable_retained_free(st->cache);
		st->cache = NULL;
		return;
	}
	sh->cache = st->cache;
	atomic_init(&sh->seq, 0);
	atomic_store_explicit(&gw->hub->state, sh, memory_order_release);
	state_retry(gw, 1);
}

/*
 * Broker thread, after every gateway thread ended (the contexts, and the socket, are
 * gone). Shard 0 frees the shared cache.
 */
void state_release(struct gw *gw)
{
	struct state_client *st = &gw->state;
	struct state_shared *sh = gw->shard == 0 ? shared_of(gw) : NULL;

	if (sh) {
		atomic_store(&gw->hub->state, NULL);
		pthread_rwlock_destroy(&sh->lock);
		free(sh);
	}
	cable_retained_free(st->cache);
	cable_retained_free(st->next);
	cable_msg_free_chain(st->backlog);
	free(st->in);
	memset(st, 0, sizeof(*st));
}

const struct lws_protocols state_protocol = {STATE_PROTOCOL, state_callback, 0, 0, 0, NULL, 0};
