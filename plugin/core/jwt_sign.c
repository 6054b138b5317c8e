/*
 * Minting JSON Web Tokens: header and claims serialized compactly, signed with a secret
 * (HS*) or a PEM private key, ECDSA signatures converted from DER to JWS R||S. Pure; see
 * cable_jwt_sign.h. Built as its own library (cable_sign) so that it never ships in the
 * broker plugin.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "cable_b64url.h"
#include "cable_jwt_sign.h"
#include "jwt_alg.h"

static EVP_PKEY *jwt_read_private_pem(const unsigned char *pem, size_t len)
{
	BIO *bio;
	EVP_PKEY *pk;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return NULL;
	pk = PEM_read_bio_PrivateKey(bio, NULL, jwt_no_passphrase, NULL);
	BIO_free(bio);
	return pk;
}

/*
 * DER ECDSA-Sig-Value from EVP to the JWS form: R and S, each left-padded to coord_len,
 * with S made low (n - S when S > n/2; OpenSSL signs with either half).
 */
static int jwt_ecdsa_der_to_raw(const struct jwt_alg *alg, const unsigned char *der, size_t der_len,
                                unsigned char *raw)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	BIGNUM *low = BN_new();
	ECDSA_SIG *sig;
	int coord_len = (int)alg->coord_len, high, rc = CABLE_EINVAL;

	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (sig == NULL || low == NULL) {
		rc = sig == NULL ? CABLE_EINVAL : CABLE_ENOMEM;
		goto out;
	}
	ECDSA_SIG_get0(sig, &r, &s);
	high = jwt_ecdsa_s_high(alg->curve_nid, s, low);
	if (high < 0) {
		rc = CABLE_ENOMEM;
		goto out;
	}
	if (BN_bn2binpad(r, raw, coord_len) == coord_len &&
	    BN_bn2binpad(high ? low : s, raw + coord_len, coord_len) == coord_len)
		rc = CABLE_OK;
out:
	BN_free(low);
	ECDSA_SIG_free(sig);
	return rc;
}

/* ---- Sign ---------------------------------------------------------------------------- */

/* Signature with a private key; the result is in JWS form (R||S for ECDSA). */
static int jwt_pkey_sign(const struct jwt_alg *alg, EVP_PKEY *pk, const unsigned char *data,
                         size_t len, unsigned char *out, size_t *out_len, struct cable_error *err)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	int rc = CABLE_EINVAL;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return cable_error_set(err, CABLE_ENOMEM, "out of memory");
	if (EVP_DigestSignInit(ctx, &pctx, alg->md ? alg->md() : NULL, NULL, pk) != 1)
		goto fail;
	if (alg->family == JWT_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto fail;
	if (EVP_DigestSign(ctx, NULL, &sig_len, data, len) != 1)
		goto fail;
	sig = malloc(sig_len);
	if (sig == NULL) {
		rc = CABLE_ENOMEM;
		goto fail;
	}
	if (EVP_DigestSign(ctx, sig, &sig_len, data, len) != 1)
		goto fail;
	if (alg->family == JWT_EC) {
		if (jwt_ecdsa_der_to_raw(alg, sig, sig_len, out) != CABLE_OK)
			goto fail;
		*out_len = 2 * alg->coord_len;
	} else {
		memcpy(out, sig, sig_len);
		*out_len = sig_len;
	}
	free(sig);
	EVP_MD_CTX_free(ctx);
	return CABLE_OK;
fail:
	free(sig);
	EVP_MD_CTX_free(ctx);
	if (rc == CABLE_ENOMEM)
		return cable_error_set(err, rc, "out of memory");
	return cable_error_set(err, rc, "signing failed");
}

/* Serialize `v` compactly; CABLE_ENOMEM only. */
static int jwt_dump(const json_t *v, char **out, struct cable_error *err)
{
	*out = json_dumps(v, JSON_COMPACT);
	if (*out == NULL)
		return cable_error_set(err, CABLE_ENOMEM, "out of memory");
	return CABLE_OK;
}

/* The header {"alg":..,"typ":"JWT"[,"kid":..]} as compact JSON text. */
static int jwt_header_text(const struct jwt_alg *alg, const char *kid, char **out,
                           struct cable_error *err)
{
	json_t *hdr, *kid_v = NULL;
	int rc;

	if (kid) {
		kid_v = json_string(kid);
		if (kid_v == NULL)
			return cable_error_set(err, CABLE_EINVAL, "kid is not UTF-8");
	}
	hdr = json_object();
	if (hdr == NULL || json_object_set_new(hdr, "alg", json_string(alg->name)) != 0 ||
	    json_object_set_new(hdr, "typ", json_string("JWT")) != 0 ||
	    (kid_v && json_object_set(hdr, "kid", kid_v) != 0)) {
		rc = cable_error_set(err, CABLE_ENOMEM, "out of memory");
		goto out;
	}
	rc = jwt_dump(hdr, out, err);
out:
	json_decref(kid_v);
	json_decref(hdr);
	return rc;
}

int cable_jwt_sign(const char *alg_name, const char *kid, const unsigned char *key, size_t key_len,
                   const char *claims_json, size_t claims_len, char **out, struct cable_error *err)
{
	const struct jwt_alg *alg;
	EVP_PKEY *pk = NULL;
	json_t *claims = NULL;
	json_error_t jerr;
	char *hdr_txt = NULL, *claims_txt = NULL, *tok = NULL;
	unsigned char *sig = NULL;
	size_t sig_max, sig_len = 0, hdr_len, claims_txt_len, n;
	int rc;

	if (err)
		err->offset = 0;
	if (alg_name == NULL || out == NULL || (key == NULL && key_len > 0) ||
	    (claims_json == NULL && claims_len > 0))
		return cable_error_set(err, CABLE_EINVAL, "invalid argument");
	alg = jwt_alg_find(alg_name, strlen(alg_name));
	if (alg == NULL)
		return cable_error_set(err, CABLE_EINVAL, "unknown alg \"%.16s\"", alg_name);
	if (key_len > INT_MAX)
		return cable_error_set(err, CABLE_EINVAL, "key too large");

	ERR_set_mark();
	if (alg->family == JWT_HMAC) {
		if (key_len < alg->min_secret) {
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "%s secret too short (%zu bytes, need %zu)", alg->name,
			                     key_len, alg->min_secret);
			goto out;
		}
		sig_max = JWT_HMAC_MAX_LEN;
	} else {
		pk = jwt_read_private_pem(key, key_len);
		if (pk == NULL) {
			rc = cable_error_set(err, CABLE_EINVAL, "unparsable PEM private key");
			goto out;
		}
		rc = jwt_key_fits(alg, pk, err);
		if (rc != CABLE_OK)
			goto out;
		/* EVP_PKEY_get_size is the largest signature EVP produces (DER for ECDSA). */
		sig_max = (size_t)EVP_PKEY_get_size(pk);
		if (sig_max < 2 * alg->coord_len)
			sig_max = 2 * alg->coord_len;
	}

	claims = json_loadb(claims_json ? claims_json : "", claims_len, JSON_REJECT_DUPLICATES,
	                    &jerr);
	if (claims == NULL || !json_is_object(claims)) {
		rc = cable_error_set(err, CABLE_EINVAL, "claims are not a JSON object");
		goto out;
	}
	rc = jwt_header_text(alg, kid, &hdr_txt, err);
	if (rc == CABLE_OK)
		rc = jwt_dump(claims, &claims_txt, err);
	if (rc != CABLE_OK)
		goto out;

	hdr_len = strlen(hdr_txt);
	claims_txt_len = strlen(claims_txt);
	sig = malloc(sig_max);
	tok = malloc(cable_b64url_len(hdr_len) + 1 + cable_b64url_len(claims_txt_len) + 1 +
	             cable_b64url_len(sig_max) + 1);
	if (sig == NULL || tok == NULL) {
		rc = cable_error_set(err, CABLE_ENOMEM, "out of memory");
		goto out;
	}
	n = cable_b64url_encode((const unsigned char *)hdr_txt, hdr_len, tok);
	tok[n++] = '.';
	n += cable_b64url_encode((const unsigned char *)claims_txt, claims_txt_len, tok + n);

	if (alg->family == JWT_HMAC) {
		rc = jwt_hmac(alg, key, key_len, (const unsigned char *)tok, n, sig, &sig_len);
		if (rc != CABLE_OK)
			cable_error_set(err, rc, "out of memory");
	} else {
		rc = jwt_pkey_sign(alg, pk, (const unsigned char *)tok, n, sig, &sig_len, err);
	}
	if (rc != CABLE_OK)
		goto out;
	tok[n++] = '.';
	n += cable_b64url_encode(sig, sig_len, tok + n);
	tok[n] = '\0';
	*out = tok;
	tok = NULL;
out:
	if (sig) {
		OPENSSL_cleanse(sig, sig_max);
		free(sig);
	}
	free(tok);
	free(claims_txt);
	free(hdr_txt);
	json_decref(claims);
	EVP_PKEY_free(pk);
	ERR_pop_to_mark();
	return rc;
}
