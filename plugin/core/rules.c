/*
 * The reloadable rule set (cable_rules.h): built from the bytes of the configuration
 * files by cable_rules_new, which also refuses combinations that are unsafe (a generic
 * channel without an ACL). Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_rules.h"

void cable_rules_free(struct cable_rules *r)
{
	size_t i;

	if (r == NULL)
		return;
	cable_chanmap_free(r->chanmap);
	cable_keyset_free(r->keys);
	cable_acl_free(r->acl);
	for (i = 0; i < CABLE_ARRAY_LEN(r->strings); i++)
		free(r->strings[i]);
	free(r);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct cable_rules *cable_rules_new(const struct cable_rules_source *src, char *err, size_t errlen)
{
	struct cable_error e = {0};
	struct cable_rules *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto nomem;
	r->chanmap = cable_chanmap_new(src->channels, src->channels_len, &e);
	if (r->chanmap == NULL) {
		snprintf(err, errlen, "plugin_opt_channels_file: '%s': %s", src->channels_file,
		         e.text);
		goto fail;
	}
	if (src->secret || src->nkeys) {
		r->keys = cable_keyset_new();
		if (r->keys == NULL)
			goto nomem;
	}
	for (size_t i = 0; i < src->nkeys; i++) {
		const struct cable_key_source *k = &src->keys[i];

		if (cable_keyset_add(r->keys, k->kid, k->alg, k->key, k->key_len, &e) != CABLE_OK) {
			snprintf(err, errlen,
			         "plugin_opt_jwt_keys_file: '%s': key %s%s (%s, '%s'): %s",
			         src->keys_file, k->kid ? "kid " : "#", k->kid ? k->kid : "",
			         k->alg, k->file, e.text);
			goto fail;
		}
	}
	if (src->secret) {
		if (cable_keyset_add(r->keys, NULL, "HS256", src->secret, src->secret_len, &e) !=
		    CABLE_OK) {
			snprintf(err, errlen, "plugin_opt_jwt_secret_file: '%s': %s",
			         src->secret_file, e.text);
			goto fail;
		}
	}
	if (src->acl) {
		r->acl = cable_acl_new(src->acl, src->acl_len, &e);
		if (r->acl == NULL) {
			snprintf(err, errlen, "plugin_opt_acl_file: '%s': %s", src->acl_file,
			         e.text);
			goto fail;
		}
	} else if (cable_chanmap_has_generic(r->chanmap)) {
		snprintf(err, errlen,
		         "plugin_opt_channels_file: '%s' has a generic channel, which needs "
		         "plugin_opt_acl_file (without an ACL it would expose every topic)",
		         src->channels_file);
		goto fail;
	}
	r->strings[0] = dup_or_null(src->issuer);
	r->strings[1] = dup_or_null(src->audience);
	r->strings[2] = dup_or_null(src->user_claim);
	r->strings[3] = dup_or_null(src->roles_claim);
	if ((src->issuer && !r->strings[0]) || (src->audience && !r->strings[1]) ||
	    (src->user_claim && !r->strings[2]) || (src->roles_claim && !r->strings[3]))
		goto nomem;
	r->policy.issuer = r->strings[0];
	r->policy.audience = r->strings[1];
	r->policy.user_claim = r->strings[2];
	r->policy.roles_claim = r->strings[3];
	r->policy.leeway = src->leeway;
	r->policy.ecdsa_low_s = src->ecdsa_low_s;
	r->policy.require_exp = true; /* tokens are short-lived by design */
	return r;
nomem:
	snprintf(err, errlen, "out of memory while loading the configuration files");
fail:
	cable_rules_free(r);
	return NULL;
}
