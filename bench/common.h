/*
 * What cable-bench and cable-soak share: exits and progress notes, clocks, allocation,
 * percentiles, the server's RSS and CPU from /proc, tokens and argument parsing.
 *
 * Errors are fatal here, as in a command-line tool: die() prints "<prog>: <text>" on
 * stderr and exits with status 2, both programs' "could not set up" status, kept apart
 * from 1 (a check failed) and, in cable-soak, 3 (a criterion missed).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cable_clock.h"

struct mosquitto;

/* Names the program for die() and sets the prefix of note()'s lines; first thing in main. */
void log_init(const char *prog, const char *note_prefix);
/* --quiet: note() prints nothing from here on (die() still does). */
void log_quiet(void);
/* "<prog>: <text>" on stderr, then exit status 2. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A progress line on stderr, unless --quiet. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in ns, the core's clock; inline because it stamps every message. */
static inline uint64_t now_ns(void)
{
	return cable_now_ns();
}
/* CLOCK_REALTIME in ns, for stamps another process reads (websocket-bench's sendTime). */
uint64_t wall_ns(void);

/* calloc that never returns NULL, not even for n == 0 (it dies instead). */
void *xcalloc(size_t n, size_t size);
/* malloc that never returns NULL (it dies instead). */
void *xmalloc(size_t size);
/* realloc that never returns NULL (it dies instead). */
void *xrealloc(void *p, size_t size);

/* qsort comparator for uint64_t, ascending. */
int cmp_u64(const void *a, const void *b);
/* qsort comparator for uint32_t, ascending. */
int cmp_u32(const void *a, const void *b);
/* websocket-bench's percentile index, sorted[p * n / 100], p in tenths (990 = p99); n > 0. */
size_t pct_index(size_t n, unsigned p10);

/* CPU seconds (user + system) this process has used so far. */
double cpu_self_s(void);
/* CPU seconds (utime + stime, all threads) of process pid; -1 when unreadable or gone. */
double cpu_of_pid(int pid);
/* VmRSS of process pid in KiB; -1 when unreadable or gone. */
long rss_kib(int pid);

/* Reads the HS256 key into buf, less trailing CR/LF; returns its length, dies if unreadable. */
size_t read_secret(const char *file, char *buf, size_t cap);
/* A JWT {"sub":"<user><idx>","exp":exp} signed HS256 by the core (malloc'd); dies on failure. */
char *mint_token(const char *key, size_t key_len, const char *user, uint32_t idx, long long exp);
/* "<path>?jid=<token>" (malloc'd): how a browser hands its token to the server. */
char *token_path(const char *path, const char *token);

/* A libmosquitto client with a clean session and TCP_NODELAY; dies on failure. */
struct mosquitto *mqtt_client(const char *id);
/* Connects m to host:port and starts its network thread; dies if the connect fails. */
void mqtt_connect_start(struct mosquitto *m, const char *host, int port, int keepalive);

struct mosquitto_message;

/* An MQTT client's callbacks; the NULL ones are not set. */
struct mqtt_callbacks {
	void (*on_connect)(struct mosquitto *m, void *obj, int rc);
	void (*on_subscribe)(struct mosquitto *m, void *obj, int mid, int n, const int *qos);
	void (*on_message)(struct mosquitto *m, void *obj, const struct mosquitto_message *msg);
};
/* mqtt_client(id) with the callbacks cb, then mqtt_connect_start; dies on failure. */
struct mosquitto *mqtt_client_start(const char *id, const struct mqtt_callbacks *cb,
                                    const char *host, int port, int keepalive);

/* A decimal option value up to 100,000,000; dies naming the option otherwise. */
uint32_t num_arg(const char *s, const char *name);
/* Raises the soft descriptor limit to the hard one; returns the soft limit then in force. */
unsigned long long raise_nofile(void);

#endif
