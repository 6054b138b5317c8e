/*
 * The JWS algorithms, shared by the two halves of the token code and by nothing else:
 * jwt_verify.c (the keyset and cable_jwt_verify, in every program) and jwt_sign.c
 * (cable_jwt_sign, only in the token tool, the bench and the tests). Not part of the
 * core's API (include/cable_jwt.h and include/cable_jwt_sign.h are), hence jwt_ names
 * without the cable_ prefix.
 *
 * Pure: OpenSSL EVP, no I/O, no globals but the constant table. Thread: any.
 */
#ifndef CABLE_JWT_ALG_H
#define CABLE_JWT_ALG_H

#include <stddef.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "cable.h"

/* ---- Algorithms ---------------------------------------------------------------------- */
enum jwt_family {
	JWT_HMAC,
	JWT_RSA,     /* RSASSA-PKCS1-v1_5 */
	JWT_EC,      /* ECDSA, JWS R||S signature */
	JWT_ED25519, /* EdDSA over Ed25519 (RFC 8037) */
};

struct jwt_alg {
	const char *name;
	enum jwt_family family;
	const EVP_MD *(*md)(void); /* NULL for EdDSA, which hashes internally */
	size_t min_secret;         /* HMAC: shortest secret, the hash size (RFC 7518 3.2) */
	int curve_nid;             /* EC: the only curve this alg may use */
	size_t coord_len;          /* EC: bytes of R and of S in the signature */
};

/* RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used with these algorithms." */
#define JWT_RSA_MIN_BITS    2048
#define JWT_ED25519_SIG_LEN 64

/* Largest HMAC tag; public-key signatures are sized from the key (EVP_PKEY_get_size). */
#define JWT_HMAC_MAX_LEN EVP_MAX_MD_SIZE

/* The algorithm named name[0..len) ("HS256", ..., "EdDSA"); NULL if none of ours. */
const struct jwt_alg *jwt_alg_find(const char *name, size_t len);

/*
 * PEM callbacks must never prompt: the default one reads a passphrase from the
 * terminal, which is I/O this module must not do. Encrypted keys simply fail to load.
 */
int jwt_no_passphrase(char *buf, int size, int rwflag, void *u);

/*
 * Does `pk` have the type (and size, and curve) that `alg` demands? CABLE_OK, or
 * CABLE_EINVAL with err saying why (an HMAC alg never fits a key).
 */
int jwt_key_fits(const struct jwt_alg *alg, const EVP_PKEY *pk, struct cable_error *err);

/* HMAC of data under key with alg's hash into mac (JWT_HMAC_MAX_LEN bytes); CABLE_OK or
 * CABLE_ENOMEM. */
int jwt_hmac(const struct jwt_alg *alg, const unsigned char *key, size_t key_len,
             const unsigned char *data, size_t len, unsigned char *mac, size_t *mac_len);

/*
 * Is s in the upper half of the curve's order (s > n/2)? 1 yes, 0 no, -1 out of memory.
 * If n_minus_s is not NULL and s is high, it is set to n - s (the low-S twin).
 */
int jwt_ecdsa_s_high(int curve_nid, const BIGNUM *s, BIGNUM *n_minus_s);

#endif
