/*
 * The Origin allow-list for WebSocket upgrades (cross-site WebSocket hijacking
 * protection: a page on another site must not open a cable with the user's cookies).
 *
 * Pure: no I/O, no globals. Thread: any; immutable once built.
 *
 * The list is written as origins separated by spaces or commas:
 *   https://app.example.com            exact (scheme, host and port must all match)
 *   https:// followed by *.example.com  any subdomain of example.com (not example.com itself)
 *   http://localhost:3000
 *   *                                  any origin, and a missing Origin header too
 * Scheme and host compare case-insensitively; a port must match exactly (an entry
 * without a port matches only an Origin without one). A request without an Origin
 * header, or with "null", is refused unless the list contains "*".
 */
#ifndef CABLE_ORIGIN_H
#define CABLE_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "cable.h"

struct cable_origins;

/* NULL on error (err names the bad entry) or ENOMEM. */
struct cable_origins *cable_origins_new(const char *spec, size_t len, struct cable_error *err);
void cable_origins_free(struct cable_origins *o); /* accepts NULL */

/* Is this Origin header value (NULL = header absent) allowed? */
bool cable_origins_allow(const struct cable_origins *o, const char *origin, size_t len);

#endif
