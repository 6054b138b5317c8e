/*
 * Minting JSON Web Tokens: what the token tool (tools/cable_token.c), the load generators
 * (bench/) and the tests need, and the broker plugin must not have. It is its own library
 * (cable_sign, plugin/core/jwt_sign.c): the adapter and the gateway link only cable_core,
 * so no signing code or private-key parsing is in mosquitto_cable.so or
 * mosquitto_cable_gateway.so (test/shell/no_signing.sh checks with nm).
 *
 * Pure: OpenSSL (EVP) and jansson; no I/O, no globals. Thread: any. The algorithms are
 * cable_jwt.h's; ECDSA signatures are in JWS R||S form.
 */
#ifndef CABLE_JWT_SIGN_H
#define CABLE_JWT_SIGN_H

#include <stddef.h>

#include "cable.h"

/*
 * Mint a token: header {"alg":alg,"typ":"JWT"[,"kid":kid]}, the given claims object
 * (JSON text), signed with `key` (HS*: the secret; others: a PEM private key).
 * *out is malloc'd and NUL-terminated. Errors: CABLE_EINVAL, CABLE_ENOMEM.
 */
int cable_jwt_sign(const char *alg, const char *kid, const unsigned char *key, size_t key_len,
                   const char *claims_json, size_t claims_len, char **out, struct cable_error *err);

#endif
