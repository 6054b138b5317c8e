/*
 * One cookie out of a Cookie request header (RFC 6265 section 4.2 / 5.4).
 *
 * Pure: no I/O, no globals, no allocation. Thread: any.
 *
 * The header is "name=value" pairs separated by ';' (browsers send "; "). Blanks
 * (space, tab) around a pair, and around its '=', are ignored. The name is everything
 * before the first '=' of the pair and compares exactly, byte for byte and case
 * sensitive: "xcable_jwt" is not "cable_jwt", and in "a=cable_jwt=v" the name is "a".
 * A value in double quotes is returned without them. A pair without '=', or with an
 * empty name, names no cookie and is skipped.
 *
 * Duplicates are refused, not resolved: a browser sends two cookies of the same name
 * when a page on a sibling subdomain sets one for the parent domain (cookie tossing),
 * and the planted one may come first (a longer Path sorts first). Picking either
 * would let that page choose whose cookie counts.
 */
#ifndef CABLE_COOKIE_H
#define CABLE_COOKIE_H

#include <stddef.h>

#include "cable.h"

/*
 * Find the cookie `name` (name_len bytes) in the header (len bytes, NUL not needed).
 * CABLE_OK: *value and *value_len point into header (possibly empty, not
 * NUL-terminated). CABLE_ENOTFOUND: no such cookie. CABLE_EINVAL: the name occurs more
 * than once (err says so, without quoting any value). The out-parameters are set only
 * on CABLE_OK; err may be NULL.
 */
int cable_cookie_get(const char *header, size_t len, const char *name, size_t name_len,
                     const char **value, size_t *value_len, struct cable_error *err);

#endif
