/*
 * minihost: a stand-in for "a Mosquitto built without websockets", to show that the
 * plugin works where the executable carries no libwebsockets at all.
 *
 * It implements the few plugin-API functions mosquitto_cable.so calls, loads the
 * plugin exactly as mosquitto does (dlopen RTLD_NOW | RTLD_GLOBAL, version, init),
 * and runs a loop shaped like mosquitto's: wait up to 100 ms (a signal cuts the wait
 * short), then fire MOSQ_EVT_TICK. It is not a broker: "device" messages arrive as
 * lines "topic<TAB>payload" on stdin and become MOSQ_EVT_MESSAGE; the plugin's
 * publishes are printed as "PUBLISH topic<TAB>payload" on stdout. SIGTERM or end of
 * stdin stops it, calling the plugin's cleanup. With MINIHOST_REFUSE_TOPIC set, a
 * publish to that topic is refused (MOSQ_ERR_NOMEM), as a broker that cannot take it.
 * The MQTT 5 property helpers come from libmosquitto, as the broker exports its own.
 *
 * Usage: minihost PLUGIN.so key=value...   (the plugin_opt_ options, without prefix)
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define EXPORT __attribute__((visibility("default")))

struct callback {
	int event;
	MOSQ_FUNC_generic_callback cb;
	void *userdata;
};

static struct callback callbacks[16];
static size_t ncallbacks;
static volatile sig_atomic_t stop;

/* The broker's header declares it without the attribute; add it for -Wformat=2. */
void mosquitto_log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

EXPORT void mosquitto_log_printf(int level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "log %d: ", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

EXPORT int mosquitto_callback_register(mosquitto_plugin_id_t *id, int event,
                                       MOSQ_FUNC_generic_callback cb, const void *event_data,
                                       void *userdata)
{
	(void)id;
	(void)event_data;
	if (ncallbacks == sizeof(callbacks) / sizeof(callbacks[0]))
		return MOSQ_ERR_NOMEM;
	callbacks[ncallbacks++] = (struct callback){event, cb, userdata};
	return MOSQ_ERR_SUCCESS;
}

EXPORT int mosquitto_callback_unregister(mosquitto_plugin_id_t *id, int event,
                                         MOSQ_FUNC_generic_callback cb, const void *event_data)
{
	size_t i;

	(void)id;
	(void)event_data;
	for (i = 0; i < ncallbacks; i++) {
		if (callbacks[i].event == event && callbacks[i].cb == cb) {
			callbacks[i] = callbacks[--ncallbacks];
			return MOSQ_ERR_SUCCESS;
		}
	}
	return MOSQ_ERR_NOT_FOUND;
}

EXPORT int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
                                         const void *payload, int qos, bool retain,
                                         mosquitto_property *properties)
{
	const char *refuse = getenv("MINIHOST_REFUSE_TOPIC");

	(void)clientid;
	if (refuse && strcmp(refuse, topic) == 0) {
		printf("REFUSED %s\n", topic);
		fflush(stdout);
		return MOSQ_ERR_NOMEM; /* the properties stay the caller's */
	}
	mosquitto_property_free_all(&properties); /* taken on success, as the broker does */
	printf("PUBLISH %s\t%.*s\tqos=%d retain=%d\n", topic, payloadlen, (const char *)payload,
	       qos, retain);
	fflush(stdout);
	return MOSQ_ERR_SUCCESS;
}

/* libmosquitto allocates property copies with the C library's allocator. */
EXPORT void mosquitto_free(void *mem)
{
	free(mem);
}

/* Used by the plugin's internal-client callbacks, which this host never fires. */
EXPORT const char *mosquitto_client_id(const struct mosquitto *client)
{
	(void)client;
	return NULL;
}

EXPORT const char *mosquitto_client_address(const struct mosquitto *client)
{
	(void)client;
	return NULL;
}

EXPORT const char *mosquitto_strerror(int mosq_errno)
{
	return mosq_errno == MOSQ_ERR_SUCCESS ? "No error." : "Error.";
}

static void fire(int event, void *data)
{
	size_t i;

	for (i = 0; i < ncallbacks; i++) {
		if (callbacks[i].event == event)
			callbacks[i].cb(event, data, callbacks[i].userdata);
	}
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Feed complete stdin lines to the plugin as MOSQ_EVT_MESSAGE. */
static int read_messages(char *buf, size_t *used, size_t cap)
{
	ssize_t n = read(STDIN_FILENO, buf + *used, cap - *used - 1);
	char *line, *nl, *tab;

	if (n <= 0)
		return n == 0 || errno != EAGAIN ? -1 : 0;
	*used += (size_t)n;
	buf[*used] = '\0';
	line = buf;
	while ((nl = strchr(line, '\n')) != NULL) {
		struct mosquitto_evt_message ev;

		*nl = '\0';
		tab = strchr(line, '\t');
		if (tab) {
			*tab = '\0';
			memset(&ev, 0, sizeof(ev));
			ev.topic = line;
			ev.payload = tab + 1;
			ev.payloadlen = (uint32_t)strlen(tab + 1);
			fire(MOSQ_EVT_MESSAGE, &ev);
		}
		line = nl + 1;
	}
	*used -= (size_t)(line - buf);
	memmove(buf, line, *used);
	return 0;
}

int main(int argc, char **argv)
{
	int (*version)(int, const int *);
	int (*init)(mosquitto_plugin_id_t *, void **, struct mosquitto_opt *, int);
	int (*cleanup)(void *, struct mosquitto_opt *, int);
	static const int offered[] = {5, 4, 3, 2};
	struct mosquitto_opt *opts;
	struct mosquitto_evt_tick tick;
	struct sigaction sa;
	static char buf[65536];
	size_t used = 0;
	void *lib, *userdata = NULL;
	int i, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PLUGIN.so key=value...\n", argv[0]);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL); /* as mosquitto's lib_load.h */
	if (lib == NULL) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&version = dlsym(lib, "mosquitto_plugin_version");
	*(void **)&init = dlsym(lib, "mosquitto_plugin_init");
	*(void **)&cleanup = dlsym(lib, "mosquitto_plugin_cleanup");
	if (!version || !init || !cleanup || version(4, offered) != 5) {
		fprintf(stderr, "not a version 5 plugin\n");
		return 1;
	}
	opts = calloc((size_t)argc, sizeof(*opts));
	for (i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL)
			return 2;
		*eq = '\0';
		opts[i - 2].key = argv[i];
		opts[i - 2].value = eq + 1;
	}
	rc = init((mosquitto_plugin_id_t *)&callbacks, &userdata, opts, argc - 2);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "plugin init returned %d\n", rc);
		return 1;
	}
	fprintf(stderr, "minihost running\n");
	fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
	while (!stop) {
		struct pollfd p = {STDIN_FILENO, POLLIN, 0};

		/* mosquitto's shape: wait up to 100 ms; the plugin's wake signal ends it early. */
		if (poll(&p, 1, 100) > 0 && read_messages(buf, &used, sizeof(buf)) < 0)
			stop = 1;
		memset(&tick, 0, sizeof(tick));
		fire(MOSQ_EVT_TICK, &tick);
	}
	cleanup(userdata, opts, argc - 2);
	fprintf(stderr, "minihost stopped\n");
	free(opts);
	return 0;
}
