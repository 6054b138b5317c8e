/*
 * Making log lines safe from the clients they describe.
 *
 * Pure: no I/O, no globals, no allocation. Thread: any (a struct cable_rate belongs
 * to whoever owns it; it has no lock).
 *
 * 1. cable_log_escape: a client-supplied string (a command name, an identifier, a token's
 *    sub, an Origin, a path, an error text quoting any of these) made fit for one log
 *    line. Whatever the input, the output is one line of printable text:
 *      - printable ASCII is kept, except '\' which becomes "\\";
 *      - "\n", "\r", "\t" are shown as such, every other C0 control and DEL as "\xHH"
 *        (ESC is "\x1b": no terminal escape sequence survives);
 *      - well-formed UTF-8 is kept, except code points that can disguise or break a line:
 *        C1 controls (U+0080-U+009F), U+2028/U+2029 and the bidirectional controls
 *        (U+200E/F, U+202A-U+202E, U+2066-U+2069), shown as "\u{XXXX}";
 *      - a byte that is not part of well-formed UTF-8 (overlong, surrogate, beyond
 *        U+10FFFF, truncated) is shown as "\xHH";
 *      - what does not fit in the buffer is cut at a character boundary and replaced by
 *        "...(+N bytes)", N counting the input bytes not shown.
 *    The escaping is reversible (no two inputs print the same unless cut).
 *
 * 2. cable_rate: at most `burst` events per interval for one source (a connection);
 *    further events are only counted. For log lines the count is handed back to be
 *    logged as one summary line, before the next line that is allowed or when the
 *    source goes away; for other events "not allowed" is the limit being hit.
 */
#ifndef CABLE_LOG_H
#define CABLE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for one escaped field in a log line, NUL included. */
#define CABLE_LOG_FIELD 160

/*
 * Escape (s, len) into out (cap bytes, cap >= 1) as described above; s may be NULL
 * (written as "(null)"). The result is always NUL-terminated. With cap below 32 the cut
 * has no marker. Returns out, so that a call can be a printf argument.
 */
char *cable_log_escape(char *out, size_t cap, const char *s, size_t len);

/*
 * A C string escaped into a fresh CABLE_LOG_FIELD buffer that lives until the end of the
 * enclosing block (a compound literal): gw_log(gw, lvl, "user %s", CABLE_LOG_STR(user)).
 * The argument is evaluated more than once.
 */
#define CABLE_LOG_STR(s)                                                                           \
	cable_log_escape((char[CABLE_LOG_FIELD]){0}, CABLE_LOG_FIELD, (s),                         \
	                 (s) != NULL ? strlen(s) : 0)
/* The same for (pointer, length). */
#define CABLE_LOG_MEM(s, n) cable_log_escape((char[CABLE_LOG_FIELD]){0}, CABLE_LOG_FIELD, (s), (n))

struct cable_rate {
	uint64_t window_start; /* clock units of the caller (e.g. ns) */
	uint32_t logged;       /* lines allowed in the current window */
	uint64_t suppressed;   /* lines counted and not yet reported */
	bool started;
};

/*
 * May one more line be logged at `now`? Windows are `interval` long (same units as now)
 * and start at the first line. true: log it; if *report is then non-zero, first log a
 * summary saying that many lines were left out. false: the line is counted; log nothing.
 * burst 0 allows nothing. report may be NULL (the count then keeps growing, for
 * cable_rate_flush).
 */
bool cable_rate_allow(struct cable_rate *r, uint64_t now, uint64_t interval, uint32_t burst,
                      uint64_t *report);

/* Lines counted and not reported yet (for a last summary line); resets the count. */
uint64_t cable_rate_flush(struct cable_rate *r);

#endif
