/*
 * The reloadable part of the configuration: everything read from the files that
 * plugin options name (token keys, channel map). Built on the broker thread (at start
 * and on SIGHUP), handed to the gateway through the queue, and then owned and used by
 * the gateway thread only. Immutable once built.
 */
#ifndef CABLE_RULES_H
#define CABLE_RULES_H

#include "cable_acl.h"
#include "cable_chanmap.h"
#include "cable_jwt.h"

struct cable_rules {
	struct cable_chanmap *chanmap;
	struct cable_keyset *keys;      /* NULL in anonymous mode */
	struct cable_acl *acl;          /* NULL: no ACL file, the channel map alone decides */
	struct cable_jwt_policy policy; /* string members point into `strings` below */
	char *strings[4];               /* owned copies backing policy strings */
};

/*
 * The bytes of the configuration files, read by the adapter (broker thread). The
 * gateway parses them with its own copy of the core, so every object in a rule set is
 * created and used by one copy of the code (static tables compared by address stay
 * consistent). File names are for error messages only.
 */
/* One verification key from plugin_opt_jwt_keys_file, with the bytes of its key file. */
struct cable_key_source {
	const char *kid; /* may be NULL */
	const char *alg; /* HS256 ... EdDSA */
	const unsigned char *key;
	size_t key_len;
	const char *file;
};

struct cable_rules_source {
	const char *channels;
	size_t channels_len;
	const char *channels_file;
	const unsigned char *secret; /* NULL in anonymous mode */
	size_t secret_len;
	const char *secret_file;
	const char *acl; /* NULL: no ACL file */
	size_t acl_len;
	const char *acl_file;
	const struct cable_key_source *keys; /* from plugin_opt_jwt_keys_file */
	size_t nkeys;
	const char *keys_file;
	const char *issuer, *audience, *user_claim, *roles_claim;
	long long leeway;
	bool ecdsa_low_s; /* plugin_opt_jwt_ecdsa_low_s: only low-S ECDSA signatures */
};

/*
 * Parse and validate a rule set. NULL with one line naming the file in err (errlen
 * bytes, like the plugin's other start-up errors, which are longer than a
 * cable_error's text): a channel map, key or ACL that does not parse, or a generic
 * channel without an ACL (it would expose every topic). Free with cable_rules_free.
 */
struct cable_rules *cable_rules_new(const struct cable_rules_source *src, char *err, size_t errlen);

void cable_rules_free(struct cable_rules *r); /* accepts NULL */

#endif
