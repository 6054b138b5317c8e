/* Utilities shared by cable-bench and cable-soak (see common.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "cable_jwt_sign.h"
#include "common.h"

/* ---- Exits and progress notes ------------------------------------------------------- */

/* Defaults only matter if something dies before main's log_init(). */
static const char *log_prog = "bench";
static const char *log_prefix = "  ";
static bool log_silent;

void log_init(const char *prog, const char *note_prefix)
{
	log_prog = prog;
	log_prefix = note_prefix;
}

void log_quiet(void)
{
	log_silent = true;
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", log_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

void note(const char *fmt, ...)
{
	va_list ap;

	if (log_silent)
		return;
	va_start(ap, fmt);
	fputs(log_prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- Clocks and memory ---------------------------------------------------------------- */

uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void *xcalloc(size_t n, size_t size)
{
	/* calloc(0, ...) may return NULL, which is not a failure: ask for one element. */
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		die("out of memory");
	return p;
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

void *xrealloc(void *p, size_t size)
{
	/* realloc(p, 0) may free p and return NULL; never ask for 0. */
	p = realloc(p, size ? size : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

/* ---- Sorting and percentiles ------------------------------------------------------------ */

int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t pct_index(size_t n, unsigned p10)
{
	size_t i = (size_t)p10 * n / 1000;

	/* p100 (and anything above) is the largest value, not one past it. */
	return i < n ? i : n - 1;
}

/* ---- The server process, from /proc ----------------------------------------------------- */

double cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

double cpu_of_pid(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	int i;

	/* Without --pid there is no server to read, not even our own /proc/0. */
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command may contain spaces */
	if (p == NULL)
		return -1;
	p += 2; /* field 3 */
	for (i = 3; i < 14 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p == NULL || sscanf(p, "%lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* ---- Tokens: HS256 JWT {sub, exp}, signed with the secret file's contents --------------- */

size_t read_secret(const char *file, char *buf, size_t cap)
{
	FILE *f = fopen(file, "rb");
	size_t n;

	if (f == NULL)
		die("cannot read --secret-file %s: %s", file, strerror(errno));
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	/* `echo secret > file` leaves a newline the broker does not count as key. */
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	return n;
}

char *mint_token(const char *key, size_t key_len, const char *user, uint32_t idx, long long exp)
{
	struct cable_error err = {0};
	char claims[128], *tok = NULL;
	int n;

	n = snprintf(claims, sizeof(claims), "{\"sub\":\"%s%" PRIu32 "\",\"exp\":%lld}", user, idx,
	             exp);
	/* A truncated claims text would be signed as if whole: refuse it. */
	if (n < 0 || (size_t)n >= sizeof(claims))
		die("cannot mint a token: user name too long");
	if (cable_jwt_sign("HS256", NULL, (const unsigned char *)key, key_len, claims, (size_t)n,
	                   &tok, &err) != CABLE_OK)
		die("cannot mint a token: %s", err.text);
	return tok;
}

char *token_path(const char *path, const char *token)
{
	size_t n = strlen(path) + strlen(token) + 8;
	char *p = xmalloc(n);

	snprintf(p, n, "%s?jid=%s", path, token);
	return p;
}

/* ---- MQTT clients --------------------------------------------------------------------- */

struct mosquitto *mqtt_client(const char *id)
{
	struct mosquitto *m = mosquitto_new(id, true, NULL);

	if (m == NULL)
		die("mosquitto_new failed");
	/* Small stamped packets must not wait for Nagle and the broker's delayed ACK. */
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	return m;
}

void mqtt_connect_start(struct mosquitto *m, const char *host, int port, int keepalive)
{
	if (mosquitto_connect(m, host, port, keepalive) != MOSQ_ERR_SUCCESS)
		die("cannot connect to MQTT %s:%d", host, port);
	/* Its own thread: the callers' loops (lws, epoll) never service libmosquitto. */
	mosquitto_loop_start(m);
}

struct mosquitto *mqtt_client_start(const char *id, const struct mqtt_callbacks *cb,
                                    const char *host, int port, int keepalive)
{
	struct mosquitto *m = mqtt_client(id);

	if (cb->on_connect)
		mosquitto_connect_callback_set(m, cb->on_connect);
	if (cb->on_subscribe)
		mosquitto_subscribe_callback_set(m, cb->on_subscribe);
	if (cb->on_message)
		mosquitto_message_callback_set(m, cb->on_message);
	mqtt_connect_start(m, host, port, keepalive);
	return m;
}

/* ---- Command line and limits ---------------------------------------------------------- */

uint32_t num_arg(const char *s, const char *name)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v > 100000000ul)
		die("%s: not a number: %s", name, s);
	return (uint32_t)v;
}

unsigned long long raise_nofile(void)
{
	/* Zeroed: if the limit cannot be read at all, callers see 0 and refuse to start. */
	struct rlimit rl = {0};

	/* One descriptor per connection: every one the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	return (unsigned long long)rl.rlim_cur;
}
