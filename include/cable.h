/*
 * mosquitto-cable: shared basics for every module.
 *
 * Status codes: every function that can fail returns an int from enum cable_status
 * (0 = success, negative = error). Out-parameters are left untouched on failure.
 * Parsers and verifiers also fill a struct cable_error with a short human-readable
 * text (never containing secrets such as tokens) for the log.
 *
 * Thread: any. Nothing here has global state.
 */
#ifndef CABLE_H
#define CABLE_H

#include <stdbool.h>
#include <stddef.h>

enum cable_status {
	CABLE_OK = 0,
	CABLE_ENOMEM = -1,    /* allocation failed */
	CABLE_EINVAL = -2,    /* bad input (syntax, type, range) */
	CABLE_EPROTO = -3,    /* protocol violation by the peer */
	CABLE_EAUTH = -4,     /* authentication failed (bad token, bad signature, expired) */
	CABLE_ENOTFOUND = -5, /* no such channel / action / key */
	CABLE_EFULL = -6,     /* a bounded queue or limit is full */
	CABLE_EDENIED = -7,   /* authorization denied */
	CABLE_EIO = -8,       /* reading a file or socket failed (adapter code only) */
};

#define CABLE_ERROR_TEXT_MAX 200

struct cable_error {
	int code;                        /* one of enum cable_status */
	size_t offset;                   /* byte offset into the input, where meaningful */
	char text[CABLE_ERROR_TEXT_MAX]; /* NUL-terminated, safe to log */
};

/* Fill err (if not NULL) and return code. printf-style text. */
int cable_error_set(struct cable_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Name of a status code, e.g. "EINVAL". Never NULL. */
const char *cable_status_name(int code);

/*
 * Room for element n of an array of *cap elements of elem bytes: returns the array as it
 * is when n < *cap, else a larger copy (the capacity doubles, starting at first, and *cap
 * says the new one). NULL when out of memory or on overflow; then the array and *cap are
 * unchanged and still valid. Usage: p = cable_grow(v, n, &cap, sizeof(*v), 4); if (p)
 * v = p;
 */
void *cable_grow(void *array, size_t n, size_t *cap, size_t elem, size_t first);

#define CABLE_UNUSED(x)    ((void)(x))
#define CABLE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
