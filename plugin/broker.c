/*
 * The broker adapter: what mosquitto loads with `plugin`.
 *
 * DESIGN. Two threads (see docs/architecture.md):
 *   - the broker thread runs every function in this file. It alone calls mosquitto_*,
 *     logging included;
 *   - the gateway thread, inside mosquitto_cable_gateway.so, runs libwebsockets.
 * They share two bounded queues (struct cable_link) and wake each other:
 *   - broker -> gateway: MOSQ_EVT_MESSAGE copies each PUBLISH onto link.to_gateway;
 *     the queue's wake hook calls the gateway's lws_cancel_service();
 *   - gateway -> broker: the gateway pushes browser publishes and log lines onto
 *     link.to_broker; the wake hook sends SIGRTMIN+k to the broker thread, whose no-op
 *     handler interrupts epoll_wait, so MOSQ_EVT_TICK drains the queue within about a
 *     millisecond instead of the broker's 100 ms poll.
 * A browser publish is handed to mosquitto_broker_publish_copy and then pushed onto
 * to_gateway, so browsers see it in the same order as device traffic (the broker
 * never reports a plugin's own publishes as MOSQ_EVT_MESSAGE).
 *
 * State lives in one heap object passed to every callback as userdata; nothing here
 * is global. per_listener_settings must be false (2.0.11 sends no TICK otherwise).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "cable.h"
#include "cable_chanmap.h"
#include "cable_clock.h"
#include "cable_gateway.h"
#include "cable_log.h"
#include "cable_options.h"

#define LOG_PREFIX "mosquitto-cable: "

struct cable_plugin {
	mosquitto_plugin_id_t *id;
	struct cable_options opts;
	struct cable_link link;
	bool link_ready;
	void *gw_handle;
	const struct cable_gateway_api *gw_api;
	struct cable_gateway *gw;
	pthread_t broker_thread;
	int wake_signo;
	uint64_t reported_drops; /* to_gateway drops already logged */
	bool per_listener;       /* per_listener_settings true: TICK may never come */
	/* The gateway's internal MQTT client (plugin_opt_state_listener; see state.c). */
	char state_client_id[40];
	char state_secret[65];
	const struct mosquitto *state_client; /* its broker context while connected */
};

/* ---- Waking ---------------------------------------------------------------------- */

/* The handler only has to exist: its delivery interrupts the broker's epoll_wait. */
static void wake_handler(int signo)
{
	(void)signo;
}

/* Gateway thread (to_broker's wake hook): interrupt the broker's epoll_wait. */
static void wake_broker(void *arg)
{
	struct cable_plugin *p = arg;

	pthread_kill(p->broker_thread, p->wake_signo);
}

/* Broker thread (to_gateway's wake hook). */
static void wake_gateway(void *arg)
{
	struct cable_plugin *p = arg;

	if (p->gw)
		p->gw_api->wake(p->gw);
}

static int install_wake_signal(struct cable_plugin *p)
{
	struct sigaction sa;

	p->wake_signo = SIGRTMIN + (int)p->opts.wake_signal;
	if (p->wake_signo > SIGRTMAX) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     LOG_PREFIX
		                     "plugin_opt_wake_signal: SIGRTMIN+%u is beyond SIGRTMAX",
		                     p->opts.wake_signal);
		return MOSQ_ERR_INVAL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;
	sa.sa_flags = SA_RESTART; /* other blocking calls on the broker thread just resume */
	sigemptyset(&sa.sa_mask);
	if (sigaction(p->wake_signo, &sa, NULL) != 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     LOG_PREFIX "plugin_opt_wake_signal: sigaction: %s",
		                     strerror(errno));
		return MOSQ_ERR_UNKNOWN;
	}
	return MOSQ_ERR_SUCCESS;
}

/* ---- Loading the gateway with its own libwebsockets ------------------------------ */

/* The gateway's default location: next to this plugin. */
static int gateway_path(char *buf, size_t len)
{
	Dl_info info;
	const char *slash;

	if (dladdr((void *)gateway_path, &info) == 0 || info.dli_fname == NULL)
		return -1;
	slash = strrchr(info.dli_fname, '/');
	if (slash == NULL)
		return snprintf(buf, len, "./mosquitto_cable_gateway.so") >= (int)len ? -1 : 0;
	return snprintf(buf, len, "%.*s/mosquitto_cable_gateway.so", (int)(slash - info.dli_fname),
	                info.dli_fname) >= (int)len
	               ? -1
	               : 0;
}

/*
 * Prove that every lws entry point the gateway uses lives in one shared object that
 * is not the broker executable. Logs the finding; MOSQ_ERR_SUCCESS or an error.
 */
static int check_lws_copy(struct cable_plugin *p)
{
	void *addrs[32];
	const char *names[32];
	Dl_info info;
	const char *first = NULL, *version;
	size_t i, n, vlen;

	n = p->gw_api->lws_entry_points(addrs, names, CABLE_ARRAY_LEN(addrs));
	for (i = 0; i < n; i++) {
		if (dladdr(addrs[i], &info) == 0 || info.dli_fname == NULL) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     LOG_PREFIX "cannot locate %s; refusing to start",
			                     names[i]);
			return MOSQ_ERR_UNKNOWN;
		}
		if (first == NULL)
			first = info.dli_fname;
		if (strstr(info.dli_fname, "libwebsockets") == NULL) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     LOG_PREFIX
			                     "%s resolves to %s, not to libwebsockets.so: the "
			                     "gateway would share the broker's embedded copy; "
			                     "refusing to start (see docs/architecture.md)",
			                     names[i], info.dli_fname);
			return MOSQ_ERR_UNKNOWN;
		}
		if (strcmp(first, info.dli_fname) != 0) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     LOG_PREFIX
			                     "libwebsockets is mixed: %s resolves to %s, %s "
			                     "to %s; refusing to start (see docs/architecture.md)",
			                     names[0], first, names[i], info.dli_fname);
			return MOSQ_ERR_UNKNOWN;
		}
	}
	if (n == 0)
		return MOSQ_ERR_UNKNOWN;
	/* Debian's lws reports "4.1.6-" (an empty git suffix): print the version alone. */
	version = p->gw_api->lws_version();
	vlen = strcspn(version, " ");
	while (vlen && version[vlen - 1] == '-')
		vlen--;
	mosquitto_log_printf(MOSQ_LOG_INFO,
	                     LOG_PREFIX
	                     "libwebsockets %.*s from %s (%zu entry points checked, isolated "
	                     "from the broker's own copy)",
	                     (int)vlen, version, first, n);
	return MOSQ_ERR_SUCCESS;
}

static int load_gateway(struct cable_plugin *p)
{
	static const size_t layout[] = CABLE_GATEWAY_LAYOUT;
	char path[4096];
	const char *file = p->opts.gateway_path;
	int mode = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;

	if (file == NULL) {
		if (gateway_path(path, sizeof(path)) != 0) {
			mosquitto_log_printf(MOSQ_LOG_ERR, LOG_PREFIX
			                     "cannot find my own path; set plugin_opt_gateway");
			return MOSQ_ERR_UNKNOWN;
		}
		file = path;
	}
	/*
	 * Under AddressSanitizer DEEPBIND would bind malloc past the ASan runtime; sanitizer
	 * builds set CABLE_NO_DEEPBIND and run against a broker without its own lws.
	 */
	if (getenv("CABLE_NO_DEEPBIND"))
		mode &= ~RTLD_DEEPBIND;
	p->gw_handle = dlopen(file, mode);
	if (p->gw_handle == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     LOG_PREFIX "plugin_opt_gateway: cannot load '%s': %s", file,
		                     dlerror());
		return MOSQ_ERR_UNKNOWN;
	}
	p->gw_api = dlsym(p->gw_handle, CABLE_GATEWAY_SYMBOL);
	if (p->gw_api == NULL || p->gw_api->abi != CABLE_GATEWAY_ABI ||
	    memcmp(p->gw_api->layout, layout, sizeof(layout)) != 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     LOG_PREFIX
		                     "plugin_opt_gateway: '%s' is not from the same build as this "
		                     "plugin; install both files of one build",
		                     file);
		return MOSQ_ERR_UNKNOWN;
	}
	return check_lws_copy(p);
}

/* ---- Broker callbacks (broker thread) ---------------------------------------------- */

static void drain_to_broker(struct cable_plugin *p);

/*
 * A device's reply to a request: keep its correlation data (the request id the gateway
 * sent) for the browser. false when out of memory.
 */
static bool reply_correlation(struct cable_msg *m, const mosquitto_property *props)
{
	void *data = NULL;
	uint16_t len = 0;

	if (props == NULL || mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA,
	                                                    &data, &len, false) == NULL)
		data = NULL;
	m->answer = cable_answer_to_new(NULL, NULL, 0, data, data ? len : 0);
	mosquitto_free(data);
	return m->answer != NULL;
}

/*
 * Every PUBLISH the broker receives from a client or bridge. Copy it for the gateway;
 * never block and never fail (any error return would disconnect the device).
 */
static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ev = event_data;
	struct cable_plugin *p = userdata;
	struct cable_msg *m;
	bool reply = strncmp(ev->topic, CABLE_REPLY_PREFIX, strlen(CABLE_REPLY_PREFIX)) == 0;

	(void)event;
	/*
	 * With the internal client every other message reaches the gateway through it; a
	 * reply's '$cable/reply/' topic does not match its '#', and needs the properties.
	 */
	if (!reply && p->opts.gw.state_listener)
		return MOSQ_ERR_SUCCESS;
	m = cable_msg_new(reply ? CABLE_MSG_REPLY : CABLE_MSG_PUBLISH, ev->topic, strlen(ev->topic),
	                  ev->payload, ev->payloadlen);
	if (m == NULL)
		return MOSQ_ERR_SUCCESS; /* out of memory: browsers miss this one message */
	if (reply && !reply_correlation(m, ev->properties)) {
		cable_msg_free(m);
		return MOSQ_ERR_SUCCESS;
	}
	m->qos = ev->qos;
	m->retain = ev->retain;
	m->t_ns = cable_now_ns();
	if (cable_queue_push(&p->link.to_gateway, m, false) != CABLE_OK)
		cable_msg_free(m);
	/* Without TICKs (per_listener_settings true) this is our only turn to log. */
	if (p->per_listener)
		drain_to_broker(p);
	return MOSQ_ERR_SUCCESS;
}

/*
 * MQTT 5 request/response: the response topic names the performing subscription's
 * answer token, the correlation data is the request id. MOSQ_ERR_* (props is then
 * freed and NULL).
 */
static int request_properties(const struct cable_answer_to *a, mosquitto_property **props)
{
	char topic[sizeof(CABLE_REPLY_PREFIX) + CABLE_ANSWER_TOKEN_LEN];
	int rc;

	snprintf(topic, sizeof(topic), "%s%s", CABLE_REPLY_PREFIX, a->token);
	rc = mosquitto_property_add_string(props, MQTT_PROP_RESPONSE_TOPIC, topic);
	if (rc == MOSQ_ERR_SUCCESS && a->request_id)
		rc = mosquitto_property_add_binary(props, MQTT_PROP_CORRELATION_DATA, a->request_id,
		                                   (uint16_t)a->request_id_len);
	if (rc != MOSQ_ERR_SUCCESS)
		mosquitto_property_free_all(props);
	return rc;
}

static void publish_from_browser(struct cable_plugin *p, struct cable_msg *m)
{
	mosquitto_property *props = NULL;
	int rc = MOSQ_ERR_SUCCESS;

	if (m->answer && m->answer->request)
		rc = request_properties(m->answer, &props);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_broker_publish_copy(NULL, m->topic, (int)m->payload_len, m->payload,
		                                   m->qos, m->retain, props);
	if (rc != MOSQ_ERR_SUCCESS) {
		/* Not taken: the properties are still ours. */
		mosquitto_property_free_all(&props);
		mosquitto_log_printf(MOSQ_LOG_WARNING, LOG_PREFIX "publish to '%s' failed: %s",
		                     CABLE_LOG_STR(m->topic), mosquitto_strerror(rc));
		/* Tell the browser, if it wants to know (the gateway checks its answer mode). */
		if (m->answer) {
			m->kind = CABLE_MSG_REFUSED;
			m->answer->refusal = CABLE_REFUSED_BROKER;
			if (cable_queue_push(&p->link.to_gateway, m, false) == CABLE_OK)
				return;
		}
		cable_msg_free(m);
		return;
	}
	/*
	 * With the internal client (plugin_opt_state_listener) the publish comes back to the
	 * gateway through it, in the broker's order, like every other message; the browser
	 * that performed is only told that the broker took it (its answer mode permitting).
	 */
	if (p->opts.gw.state_listener) {
		if (m->answer) {
			m->kind = CABLE_MSG_ACK;
			if (cable_queue_push(&p->link.to_gateway, m, false) == CABLE_OK)
				return;
		}
		cable_msg_free(m);
		return;
	}
	/* Local fan-out, in the broker's order (see DESIGN). */
	m->local = true;
	m->t_ns = cable_now_ns();
	if (cable_queue_push(&p->link.to_gateway, m, false) != CABLE_OK)
		cable_msg_free(m);
}

static void report_drops(struct cable_plugin *p)
{
	uint64_t dropped;

	cable_queue_stats(&p->link.to_gateway, NULL, &dropped);
	if (dropped != p->reported_drops) {
		mosquitto_log_printf(
		        MOSQ_LOG_WARNING,
		        LOG_PREFIX "%llu messages for browsers dropped: the gateway queue is full "
		                   "(plugin_opt_queue_messages / plugin_opt_queue_bytes)",
		        (unsigned long long)(dropped - p->reported_drops));
		p->reported_drops = dropped;
	}
}

/* Drain what the gateway sent: publishes and log lines. */
static void drain_to_broker(struct cable_plugin *p)
{
	struct cable_msg *m, *next;
	bool was_waiting = false;

	m = cable_queue_take_all(&p->link.to_broker, &was_waiting);
	for (; m; m = next) {
		next = m->next;
		switch (m->kind) {
		case CABLE_MSG_PUBLISH:
			publish_from_browser(p, m);
			break;
		case CABLE_MSG_LOG:
			mosquitto_log_printf(m->level, LOG_PREFIX "%s", m->topic);
			cable_msg_free(m);
			break;
		case CABLE_MSG_RULES: /* never sent this way */
		case CABLE_MSG_REFUSED:
		case CABLE_MSG_REPLY:
		case CABLE_MSG_ACK:
		case CABLE_MSG_CALL: /* never sent this way */
			cable_msg_free(m);
			break;
		}
	}
	/* The gateway paused browsers while the queue was full: there is room now. */
	if (was_waiting)
		wake_gateway(p);
	report_drops(p);
}

static int on_tick(int event, void *event_data, void *userdata)
{
	struct cable_plugin *p = userdata;

	(void)event;
	(void)event_data;
	atomic_fetch_add_explicit(&p->link.ticks, 1, memory_order_relaxed);
	drain_to_broker(p);
	return MOSQ_ERR_SUCCESS;
}

/* The reload line names every file that was read again. */
static void log_reloaded(const struct cable_plugin *p)
{
	const char *files[] = {
	        p->opts.channels_file, p->opts.gw.anonymous ? NULL : p->opts.jwt_secret_file,
	        p->opts.gw.anonymous ? NULL : p->opts.jwt_keys_file, p->opts.acl_file};
	char line[1024];
	size_t i, n = 0;

	line[0] = '\0';
	for (i = 0; i < CABLE_ARRAY_LEN(files); i++) {
		if (files[i] && n < sizeof(line))
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", n ? ", " : "",
			                      files[i]);
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, LOG_PREFIX "reloaded %s", line);
}

/* SIGHUP: re-read the files; keep the old rules if the new ones are bad. */
static int on_reload(int event, void *event_data, void *userdata)
{
	struct cable_plugin *p = userdata;
	struct cable_rules *rules;
	struct cable_msg *m;
	char err[512];

	(void)event;
	(void)event_data;
	rules = cable_rules_load(&p->opts, p->gw_api, err, sizeof(err));
	if (rules == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     LOG_PREFIX "reload failed, keeping the previous rules: %s",
		                     err);
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	m = cable_msg_new(CABLE_MSG_RULES, "", 0, NULL, 0);
	if (m == NULL) {
		p->gw_api->rules_free(rules);
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	m->ptr = rules;
	cable_queue_push(&p->link.to_gateway, m, true);
	log_reloaded(p);
	/* Returning DEFER lets the broker run the other plugins' reload callbacks too. */
	return MOSQ_ERR_PLUGIN_DEFER;
}

/* ---- The gateway's internal client (broker thread) ------------------------------- */

#define STATE_AUTH_METHOD "mosquitto-cable"

static bool is_state_client(const struct cable_plugin *p, const struct mosquitto *client)
{
	return client != NULL && client == p->state_client;
}

/*
 * MQTT 5 enhanced authentication with our method: only the gateway's client, with this
 * start's random client id and secret, is admitted. Any other method is not ours
 * (NOT_SUPPORTED passes it on); clients without a method never reach this callback, so
 * the broker's own password checks are untouched.
 */
static int on_ext_auth_start(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_extended_auth *ev = event_data;
	struct cable_plugin *p = userdata;
	const char *id;
	size_t len = strlen(p->state_secret);

	(void)event;
	if (ev->auth_method == NULL || strcmp(ev->auth_method, STATE_AUTH_METHOD) != 0)
		return MOSQ_ERR_NOT_SUPPORTED;
	id = mosquitto_client_id(ev->client);
	if (id == NULL || strcmp(id, p->state_client_id) != 0 || ev->data_in_len != len ||
	    CRYPTO_memcmp(ev->data_in, p->state_secret, len) != 0) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     LOG_PREFIX "refused a client using the %s authentication "
		                                "method from %s: wrong credentials",
		                     STATE_AUTH_METHOD, mosquitto_client_address(ev->client));
		return MOSQ_ERR_AUTH;
	}
	p->state_client = ev->client;
	return MOSQ_ERR_SUCCESS;
}

static int on_ext_auth_continue(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_extended_auth *ev = event_data;

	(void)event;
	(void)userdata;
	if (ev->auth_method && strcmp(ev->auth_method, STATE_AUTH_METHOD) == 0)
		return MOSQ_ERR_AUTH; /* our method has one step */
	return MOSQ_ERR_NOT_SUPPORTED;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ev = event_data;
	struct cable_plugin *p = userdata;

	(void)event;
	if (is_state_client(p, ev->client))
		p->state_client = NULL;
	return MOSQ_ERR_SUCCESS;
}

/*
 * plugin_opt_state_grant_read: the internal client may read and subscribe to anything,
 * and write nothing; every other client is left to the broker's own ACL (DEFER). Only
 * for brokers that have an ACL of their own: on 2.0 an ACL check every callback
 * deferred is a denial, so on a broker without one this would lock out everyone else.
 */
static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	struct cable_plugin *p = userdata;

	(void)event;
	if (!is_state_client(p, ev->client))
		return MOSQ_ERR_PLUGIN_DEFER;
	return ev->access == MOSQ_ACL_READ || ev->access == MOSQ_ACL_SUBSCRIBE ||
	                       ev->access == MOSQ_ACL_UNSUBSCRIBE
	               ? MOSQ_ERR_SUCCESS
	               : MOSQ_ERR_ACL_DENIED;
}

/* This start's client id and secret for the internal client. */
static int make_state_credentials(struct cable_plugin *p)
{
	unsigned char raw[32];
	size_t i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return MOSQ_ERR_UNKNOWN;
	for (i = 0; i < sizeof(raw); i++)
		snprintf(p->state_secret + 2 * i, 3, "%02x", raw[i]);
	if (RAND_bytes(raw, 8) != 1)
		return MOSQ_ERR_UNKNOWN;
	snprintf(p->state_client_id, sizeof(p->state_client_id),
	         "mosquitto-cable-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3],
	         raw[4], raw[5], raw[6], raw[7]);
	OPENSSL_cleanse(raw, sizeof(raw));
	p->opts.gw.state_client_id = p->state_client_id;
	p->opts.gw.state_secret = p->state_secret;
	return MOSQ_ERR_SUCCESS;
}

/* Which callbacks: the internal client's only with it, ACL only when asked. */
enum { CB_ALWAYS, CB_WITH_STATE, CB_GRANT_READ };

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
	int when;
} callbacks[] = {
        {MOSQ_EVT_MESSAGE, on_message, CB_ALWAYS},
        {MOSQ_EVT_TICK, on_tick, CB_ALWAYS},
        {MOSQ_EVT_RELOAD, on_reload, CB_ALWAYS},
        {MOSQ_EVT_EXT_AUTH_START, on_ext_auth_start, CB_WITH_STATE},
        {MOSQ_EVT_EXT_AUTH_CONTINUE, on_ext_auth_continue, CB_WITH_STATE},
        {MOSQ_EVT_DISCONNECT, on_disconnect, CB_WITH_STATE},
        {MOSQ_EVT_ACL_CHECK, on_acl_check, CB_GRANT_READ},
};

/*
 * per_listener_settings true. Mosquitto 2.0 then initialises the plugin for the listener
 * its `plugin` line follows and records that listener in the plugin id, the first (and
 * in 2.0 only) member of struct mosquitto_plugin_id_t, which is NULL otherwise. In that
 * mode 2.0.11-2.0.14 send plugins no MOSQ_EVT_TICK (browser publishes never leave) and
 * every 2.0 leaves bridged messages and other listeners' clients out of
 * MOSQ_EVT_MESSAGE. Say so here, from the broker thread, so it is in the broker's log.
 */
static bool per_listener_settings(const mosquitto_plugin_id_t *id)
{
	const void *listener = NULL;

	memcpy(&listener, (const void *)id, sizeof(listener));
	return listener != NULL;
}

static bool callback_wanted(const struct cable_plugin *p, int when)
{
	bool state = p->opts.gw.state_listener != NULL;

	switch (when) {
	case CB_WITH_STATE:
		return state;
	case CB_GRANT_READ:
		return state && p->opts.state_grant_read;
	default:
		return true;
	}
}

/* ---- Plugin entry points (broker thread) ------------------------------------------- */

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions);
int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                          struct mosquitto_opt *opts, int opt_count);
int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count);

__attribute__((visibility("default"))) int mosquitto_plugin_version(int supported_version_count,
                                                                    const int *supported_versions)
{
	int i;

	for (i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5)
			return 5;
	}
	return -1;
}

static void teardown(struct cable_plugin *p)
{
	size_t i;

	if (p->id) {
		for (i = 0; i < CABLE_ARRAY_LEN(callbacks); i++)
			if (callback_wanted(p, callbacks[i].when))
				mosquitto_callback_unregister(p->id, callbacks[i].event,
				                              callbacks[i].cb, NULL);
	}
	if (p->gw)
		p->gw_api->stop(p->gw); /* joins the gateway thread */
	p->gw = NULL;
	/*
	 * The broker unloads this library after cleanup: a wake signal arriving later must
	 * not run a handler that is gone (and the default action of a real-time signal is to
	 * terminate). The gateway is stopped, so nothing sends one any more; ignore strays.
	 */
	if (p->wake_signo)
		signal(p->wake_signo, SIG_IGN);
	if (p->link_ready) {
		cable_queue_release(&p->link.to_gateway);
		cable_queue_release(&p->link.to_broker);
	}
	if (p->gw_handle)
		dlclose(p->gw_handle);
	free(p);
}

__attribute__((visibility("default"))) int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier,
                                                                 void **user_data,
                                                                 struct mosquitto_opt *opts,
                                                                 int opt_count)
{
	struct cable_plugin *p;
	struct cable_rules *rules;
	char err[512];
	size_t i;
	int rc;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return MOSQ_ERR_NOMEM;
	p->broker_thread = pthread_self();

	if (cable_options_parse(opts, opt_count, &p->opts, err, sizeof(err)) != CABLE_OK) {
		mosquitto_log_printf(MOSQ_LOG_ERR, LOG_PREFIX "%s", err);
		free(p);
		return MOSQ_ERR_INVAL;
	}
	/* jansson seeds its hash function lazily; do it once before a second thread exists. */
	json_object_seed(0);

	if (cable_queue_init(&p->link.to_gateway, p->opts.queue_messages, p->opts.queue_bytes,
	                     wake_gateway, p) != CABLE_OK ||
	    cable_queue_init(&p->link.to_broker, p->opts.queue_messages, p->opts.queue_bytes,
	                     wake_broker, p) != CABLE_OK) {
		free(p);
		return MOSQ_ERR_NOMEM;
	}
	p->link_ready = true;

	rc = install_wake_signal(p);
	if (rc == MOSQ_ERR_SUCCESS && p->opts.gw.state_listener)
		rc = make_state_credentials(p);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = load_gateway(p);
	if (rc != MOSQ_ERR_SUCCESS) {
		teardown(p);
		return rc;
	}

	rules = cable_rules_load(&p->opts, p->gw_api, err, sizeof(err));
	if (rules == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, LOG_PREFIX "%s", err);
		teardown(p);
		return MOSQ_ERR_INVAL;
	}
	p->gw = p->gw_api->start(&p->opts.gw, &p->link, rules, err, sizeof(err));
	if (p->gw == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, LOG_PREFIX "%s", err);
		p->gw_api->rules_free(rules);
		teardown(p);
		return MOSQ_ERR_UNKNOWN;
	}

	p->id = identifier;
	for (i = 0; i < CABLE_ARRAY_LEN(callbacks); i++) {
		if (!callback_wanted(p, callbacks[i].when))
			continue;
		rc = mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].cb,
		                                 NULL, p);
		if (rc != MOSQ_ERR_SUCCESS) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     LOG_PREFIX "cannot register callback %d: %s",
			                     callbacks[i].event, mosquitto_strerror(rc));
			teardown(p);
			return rc;
		}
	}
	p->per_listener = per_listener_settings(identifier);
	if (p->per_listener)
		mosquitto_log_printf(MOSQ_LOG_ERR, LOG_PREFIX
		                     "error: per_listener_settings is true: browser "
		                     "publishes are lost (Mosquitto 2.0.11-2.0.14 send plugins no "
		                     "MOSQ_EVT_TICK) and only clients of one listener reach "
		                     "browsers (no bridged messages). Set per_listener_settings "
		                     "false (/health answers 503 while no TICK arrives)");
	mosquitto_log_printf(
	        MOSQ_LOG_NOTICE,
	        LOG_PREFIX "listening on %s://%s:%d%s (auth %s, event loop: %s, up to %zu "
	                   "descriptors)",
	        p->opts.gw.tls_cert ? "wss" : "ws", p->opts.gw.address, p->opts.gw.port,
	        p->opts.gw.path, p->opts.gw.anonymous ? "anonymous" : "jwt",
	        p->opts.gw.poll_loop ? "poll" : "epoll", p->opts.gw.max_descriptors);
	*user_data = p;
	return MOSQ_ERR_SUCCESS;
}

__attribute__((visibility("default"))) int
mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	struct cable_plugin *p = user_data;
	struct cable_msg *head, *m;

	(void)opts;
	(void)opt_count;
	if (p == NULL)
		return MOSQ_ERR_SUCCESS;
	/*
	 * The broker's loop has ended: nothing queued for it will be published now. Stop the
	 * gateway (it tells every browser server_restart), then log what it left behind.
	 */
	if (p->gw)
		p->gw_api->stop(p->gw);
	p->gw = NULL;
	head = cable_queue_take_all(&p->link.to_broker, NULL);
	for (m = head; m; m = m->next) {
		if (m->kind == CABLE_MSG_LOG)
			mosquitto_log_printf(m->level, LOG_PREFIX "%s", m->topic);
	}
	cable_msg_free_chain(head);
	teardown(p);
	return MOSQ_ERR_SUCCESS;
}
