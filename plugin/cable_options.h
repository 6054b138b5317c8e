/*
 * plugin_opt_* parsing and loading of the files they name. Adapter code (broker
 * thread, during init and reload): it reads files, so it is not part of the pure core.
 * The option table in plugin/config.c is the single list of options; docs/configuration.md
 * documents each one.
 */
#ifndef CABLE_OPTIONS_H
#define CABLE_OPTIONS_H

#include <stddef.h>

#include "cable_gateway.h"
#include "cable_rules.h"

struct mosquitto_opt;

struct cable_options {
	struct cable_gateway_config
	        gw; /* strings point into the broker's opts (valid until cleanup) */
	const char *channels_file;
	const char *jwt_secret_file;
	const char *acl_file;
	const char *jwt_keys_file;
	const char *jwt_roles_claim;
	const char *jwt_issuer;
	const char *jwt_audience;
	const char *jwt_user_claim;
	long long jwt_leeway;
	bool jwt_ecdsa_low_s;     /* refuse high-S ES256/ES384 signatures */
	const char *gateway_path; /* NULL: next to the plugin */
	unsigned wake_signal;     /* offset from SIGRTMIN */
	size_t queue_messages;    /* bound of each cross-thread queue, in messages */
	size_t queue_bytes;       /* and in bytes */
	bool state_grant_read;    /* ACL_CHECK lets the internal client read (broker.c) */
};

/*
 * Fill *out from the broker's options (defaults for the rest). Unknown options are an
 * error, so a typo never silently falls back to a default. On error returns
 * CABLE_EINVAL and writes one line naming the option into err.
 */
int cable_options_parse(const struct mosquitto_opt *opts, int n, struct cable_options *out,
                        char *err, size_t errlen);

/*
 * Read every file the options name and have the gateway build a rule set from them.
 * NULL on error with one line naming the option and the file in err. Used at start and
 * on reload; free the result with api->rules_free.
 */
struct cable_rules *cable_rules_load(const struct cable_options *o,
                                     const struct cable_gateway_api *api, char *err, size_t errlen);

/* Read a whole file into a NUL-terminated malloc'd buffer. CABLE_OK, CABLE_EIO, CABLE_ENOMEM. */
int cable_read_file(const char *path, char **out, size_t *len, size_t max);

#endif
