/*
 * The JWS algorithms and what verification and signing both need: the table, the
 * no-prompt PEM callback, the key-type check, HMAC, and (ECDSA) the low-S test.
 * Pure; see jwt_alg.h.
 */
#include <string.h>

#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>

#include "jwt_alg.h"

static const struct jwt_alg jwt_algs[] = {
        {"HS256", JWT_HMAC, EVP_sha256, 32, NID_undef, 0},
        {"HS384", JWT_HMAC, EVP_sha384, 48, NID_undef, 0},
        {"HS512", JWT_HMAC, EVP_sha512, 64, NID_undef, 0},
        {"RS256", JWT_RSA, EVP_sha256, 0, NID_undef, 0},
        {"RS384", JWT_RSA, EVP_sha384, 0, NID_undef, 0},
        {"RS512", JWT_RSA, EVP_sha512, 0, NID_undef, 0},
        {"ES256", JWT_EC, EVP_sha256, 0, NID_X9_62_prime256v1, 32},
        {"ES384", JWT_EC, EVP_sha384, 0, NID_secp384r1, 48},
        {"EdDSA", JWT_ED25519, NULL, 0, NID_undef, 0},
};

const struct jwt_alg *jwt_alg_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(jwt_algs); i++) {
		if (strlen(jwt_algs[i].name) == len && memcmp(jwt_algs[i].name, name, len) == 0)
			return &jwt_algs[i];
	}
	return NULL;
}

/*
 * PEM callbacks must never prompt: the default one reads a passphrase from the
 * terminal, which is I/O this module must not do. Encrypted keys simply fail to load.
 */
int jwt_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	CABLE_UNUSED(buf);
	CABLE_UNUSED(size);
	CABLE_UNUSED(rwflag);
	CABLE_UNUSED(u);
	return -1;
}

static int jwt_ec_curve_nid(const EVP_PKEY *pk)
{
	char name[80];
	size_t name_len = 0;
	int nid;

	if (EVP_PKEY_get_group_name(pk, name, sizeof(name), &name_len) != 1)
		return NID_undef;
	nid = OBJ_sn2nid(name);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(name); /* "P-256" spelling */
	return nid;
}

/* Does `pk` have the type (and size, and curve) that `alg` demands? */
int jwt_key_fits(const struct jwt_alg *alg, const EVP_PKEY *pk, struct cable_error *err)
{
	switch (alg->family) {
	case JWT_RSA:
		/* "RSA" only: an RSA-PSS key is a different type and does not fit RS*. */
		if (!EVP_PKEY_is_a(pk, "RSA"))
			return cable_error_set(err, CABLE_EINVAL, "%s needs an RSA key", alg->name);
		if (EVP_PKEY_get_bits(pk) < JWT_RSA_MIN_BITS)
			return cable_error_set(err, CABLE_EINVAL, "RSA key shorter than %d bits",
			                       JWT_RSA_MIN_BITS);
		return CABLE_OK;
	case JWT_EC:
		if (!EVP_PKEY_is_a(pk, "EC"))
			return cable_error_set(err, CABLE_EINVAL, "%s needs an EC key", alg->name);
		if (jwt_ec_curve_nid(pk) != alg->curve_nid)
			return cable_error_set(err, CABLE_EINVAL, "%s needs an EC key on %s",
			                       alg->name, OBJ_nid2sn(alg->curve_nid));
		return CABLE_OK;
	case JWT_ED25519:
		if (!EVP_PKEY_is_a(pk, "ED25519"))
			return cable_error_set(err, CABLE_EINVAL, "EdDSA needs an Ed25519 key");
		return CABLE_OK;
	case JWT_HMAC:
		break;
	}
	return cable_error_set(err, CABLE_EINVAL, "%s takes a secret, not a key", alg->name);
}

int jwt_hmac(const struct jwt_alg *alg, const unsigned char *key, size_t key_len,
             const unsigned char *data, size_t len, unsigned char *mac, size_t *mac_len)
{
	unsigned int n = 0;

	if (HMAC(alg->md(), key, (int)key_len, data, len, mac, &n) == NULL)
		return CABLE_ENOMEM;
	*mac_len = n;
	return CABLE_OK;
}

/* ---- Signatures ---------------------------------------------------------------------- */

/*
 * Is s in the upper half of the curve's order (s > n/2)? 1 yes, 0 no, -1 out of memory.
 * If n_minus_s is not NULL and s is high, it is set to n - s (the low-S twin).
 */
int jwt_ecdsa_s_high(int curve_nid, const BIGNUM *s, BIGNUM *n_minus_s)
{
	EC_GROUP *group = EC_GROUP_new_by_curve_name(curve_nid);
	BIGNUM *half = BN_new();
	const BIGNUM *order;
	int rc = -1;

	if (group == NULL || half == NULL || (order = EC_GROUP_get0_order(group)) == NULL ||
	    BN_rshift1(half, order) != 1)
		goto out;
	rc = BN_cmp(s, half) > 0;
	if (rc == 1 && n_minus_s != NULL && BN_sub(n_minus_s, order, s) != 1)
		rc = -1;
out:
	BN_free(half);
	EC_GROUP_free(group);
	return rc;
}
