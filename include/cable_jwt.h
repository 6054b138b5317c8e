/*
 * JSON Web Tokens (RFC 7519, compact JWS RFC 7515): verification with OpenSSL. Minting
 * is in cable_jwt_sign.h, a separate library that the broker plugin does not link.
 *
 * Pure: OpenSSL (EVP) and jansson; no I/O, no globals. Keys arrive as bytes (the
 * adapter reads the files); the clock is passed in. Thread: any; a keyset is
 * immutable once built and may be shared read-only across threads.
 *
 * Algorithms: HS256/384/512, RS256/384/512, ES256/384, EdDSA (Ed25519). Each key is
 * pinned to one algorithm by configuration; a token whose header "alg" differs from
 * the selected key's algorithm is rejected (so "none" and HS/RS confusion never
 * verify). HMAC tags are compared in constant time (CRYPTO_memcmp).
 *
 * Key selection: a token with a "kid" header uses the key with that kid (none ->
 * EAUTH). A token without "kid" tries the keys that have no kid, in the order they
 * were added, whose algorithm equals the token's "alg".
 */
#ifndef CABLE_JWT_H
#define CABLE_JWT_H

#include <stdbool.h>
#include <stddef.h>

#include "cable.h"
#include "cable_principal.h"

#define CABLE_JWT_MAX_LEN 8192 /* longer tokens are rejected before any parsing */

struct cable_keyset;

struct cable_keyset *cable_keyset_new(void);
void cable_keyset_free(struct cable_keyset *ks); /* accepts NULL */

/*
 * Add a key. `alg` is the pinned algorithm name ("HS256", ..., "EdDSA"); `kid` may be
 * NULL. For HS*: `key` is the raw secret (at least 32 bytes for HS256, 48 for HS384,
 * 64 for HS512, else EINVAL: short secrets are brute-forceable). For the others: a
 * PEM public key (or certificate) of the matching type. Errors: CABLE_EINVAL (unknown
 * alg, key type mismatch, unparsable PEM, duplicate kid), CABLE_ENOMEM.
 */
int cable_keyset_add(struct cable_keyset *ks, const char *kid, const char *alg,
                     const unsigned char *key, size_t key_len, struct cable_error *err);

size_t cable_keyset_count(const struct cable_keyset *ks);

struct cable_jwt_policy {
	long long leeway;        /* seconds of clock skew tolerated on exp/nbf (e.g. 30) */
	const char *issuer;      /* required "iss" when not NULL */
	const char *audience;    /* required in "aud" (string or array) when not NULL */
	const char *user_claim;  /* claim holding the user; NULL means "sub" */
	const char *roles_claim; /* claim holding roles (array of strings); NULL: none */
	bool require_exp;        /* reject tokens without "exp" */
	bool ecdsa_low_s; /* refuse high-S ES256/ES384 signatures (the twin of a low-S one) */
};

/*
 * Verify a compact JWS token at time `now` (Unix seconds). On success fills *out
 * (release with cable_principal_release): user from the user claim (a non-empty
 * string, or an integer rendered in decimal), roles, exp, and the full claim set.
 * Errors: CABLE_EAUTH for every reason a token is not accepted (malformed, unknown
 * kid, alg mismatch or "none", bad signature, expired, not yet valid, wrong iss/aud,
 * missing user claim); err->text says which without quoting the token.
 * CABLE_ENOMEM on allocation failure.
 */
int cable_jwt_verify(const struct cable_keyset *ks, const struct cable_jwt_policy *policy,
                     const char *token, size_t len, long long now, struct cable_principal *out,
                     struct cable_error *err);

#endif
