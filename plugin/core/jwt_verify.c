/*
 * JSON Web Tokens: the keyset and verification. Pure; see cable_jwt.h for the contract.
 * The algorithm table is in jwt_alg.c, base64url in b64url.c, minting in jwt_sign.c.
 *
 * DESIGN
 *
 * A compact JWS is three base64url segments, "header.payload.signature". Verification
 * goes in this order, and each step only looks at what the previous one vouched for:
 *
 *   1. size and shape: at most CABLE_JWT_MAX_LEN bytes, exactly two dots;
 *   2. header: strict base64url, a JSON object with a string "alg"; "crit" is refused
 *      (we understand no extension, and RFC 7515 4.1.11 says such a token must be
 *      rejected) and "none" is refused outright;
 *   3. key: by "kid" when the header has one, else every kid-less key pinned to the
 *      header's alg; the header's alg must equal the key's pinned alg, so the header
 *      can never choose how a key is used (no "none", no HMAC keyed with a public key);
 *   4. signature over the first two segments, exactly as they appear in the token;
 *   5. only then the payload: strict base64url, a JSON object, and the claim checks.
 *
 * Every rejection is CABLE_EAUTH with a short fixed text. The texts never quote the
 * token or anything taken from it, so they are safe to log as they are.
 *
 * All cryptography is OpenSSL 3 EVP. The only encodings done here by hand are
 * base64url (strict: no padding, no other alphabet, no stray bits, so a signature has
 * exactly one spelling) and the JWS R||S form of ECDSA signatures, which EVP wants as
 * DER (RFC 7518 3.4). ECDSA signatures are malleable ((r, s) and (r, n - s) both
 * verify): our own signatures are normalised to the low-S form (s <= n/2), and with
 * policy->ecdsa_low_s only that form is accepted, so a token has one spelling.
 *
 * OpenSSL reports failures on its thread-local error queue. Every public function
 * sets a mark on entry and pops back to it on exit, so a rejected token leaves no
 * error behind that a later TLS call on the same thread (SSL_get_error) could trip on.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "cable_b64url.h"
#include "cable_jwt.h"
#include "jwt_alg.h"

/* ---- Key set ------------------------------------------------------------------------- */

struct jwt_key {
	char *kid;                 /* NULL: the key has no kid */
	const struct jwt_alg *alg; /* the one algorithm this key may verify */
	unsigned char *secret;     /* HMAC keys: the raw secret */
	size_t secret_len;
	EVP_PKEY *pkey; /* other keys: the public key */
};

/* Invariant: kids are unique and non-empty; keys[0..count) are fully built. */
struct cable_keyset {
	struct jwt_key *keys;
	size_t count;
	size_t cap;
};

struct cable_keyset *cable_keyset_new(void)
{
	return calloc(1, sizeof(struct cable_keyset));
}

static void jwt_key_release(struct jwt_key *k)
{
	free(k->kid);
	if (k->secret) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	EVP_PKEY_free(k->pkey);
}

void cable_keyset_free(struct cable_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->count; i++)
		jwt_key_release(&ks->keys[i]);
	free(ks->keys);
	free(ks);
}

size_t cable_keyset_count(const struct cable_keyset *ks)
{
	return ks ? ks->count : 0;
}

static const struct jwt_key *jwt_key_by_kid(const struct cable_keyset *ks, const char *kid)
{
	size_t i;

	for (i = 0; i < ks->count; i++) {
		if (ks->keys[i].kid && strcmp(ks->keys[i].kid, kid) == 0)
			return &ks->keys[i];
	}
	return NULL;
}

/* A public key from a PEM "PUBLIC KEY" block, or from a PEM certificate. */
static EVP_PKEY *jwt_read_public_pem(const unsigned char *pem, size_t len)
{
	BIO *bio;
	EVP_PKEY *pk;
	X509 *cert;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return NULL;
	pk = PEM_read_bio_PUBKEY(bio, NULL, jwt_no_passphrase, NULL);
	BIO_free(bio);
	if (pk)
		return pk;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return NULL;
	cert = PEM_read_bio_X509(bio, NULL, jwt_no_passphrase, NULL);
	BIO_free(bio);
	if (cert == NULL)
		return NULL;
	pk = X509_get_pubkey(cert);
	X509_free(cert);
	return pk;
}

/*
 * A secret that is really a PEM file means alg and key file were mixed up in the
 * configuration. Accepting it would turn a public key into an HMAC secret, which is
 * exactly the algorithm-confusion forgery, so refuse it.
 */
static bool jwt_looks_like_pem(const unsigned char *key, size_t len)
{
	static const char tag[] = "-----BEGIN";
	size_t i = 0;

	while (i < len && (key[i] == ' ' || key[i] == '\t' || key[i] == '\r' || key[i] == '\n'))
		i++;
	return len - i >= sizeof(tag) - 1 && memcmp(key + i, tag, sizeof(tag) - 1) == 0;
}

int cable_keyset_add(struct cable_keyset *ks, const char *kid, const char *alg_name,
                     const unsigned char *key, size_t key_len, struct cable_error *err)
{
	const struct jwt_alg *alg;
	struct jwt_key k = {0};
	struct jwt_key *grown;
	int rc;

	if (err)
		err->offset = 0;
	if (ks == NULL || alg_name == NULL || (key == NULL && key_len > 0))
		return cable_error_set(err, CABLE_EINVAL, "invalid argument");
	alg = jwt_alg_find(alg_name, strlen(alg_name));
	if (alg == NULL)
		return cable_error_set(err, CABLE_EINVAL, "unknown alg \"%.16s\"", alg_name);
	if (kid && kid[0] == '\0')
		return cable_error_set(err, CABLE_EINVAL, "empty kid");
	if (kid && jwt_key_by_kid(ks, kid))
		return cable_error_set(err, CABLE_EINVAL, "duplicate kid \"%.64s\"", kid);
	if (key_len > INT_MAX)
		return cable_error_set(err, CABLE_EINVAL, "key too large");

	ERR_set_mark();
	k.alg = alg;
	if (alg->family == JWT_HMAC) {
		if (key_len < alg->min_secret) {
			rc = cable_error_set(err, CABLE_EINVAL,
			                     "%s secret too short (%zu bytes, need %zu)", alg->name,
			                     key_len, alg->min_secret);
			goto fail;
		}
		if (jwt_looks_like_pem(key, key_len)) {
			rc = cable_error_set(err, CABLE_EINVAL, "%s secret looks like a PEM key",
			                     alg->name);
			goto fail;
		}
		k.secret = malloc(key_len);
		if (k.secret == NULL) {
			rc = cable_error_set(err, CABLE_ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(k.secret, key, key_len);
		k.secret_len = key_len;
	} else {
		k.pkey = jwt_read_public_pem(key, key_len);
		if (k.pkey == NULL) {
			rc = cable_error_set(err, CABLE_EINVAL, "unparsable PEM public key");
			goto fail;
		}
		rc = jwt_key_fits(alg, k.pkey, err);
		if (rc != CABLE_OK)
			goto fail;
	}
	if (kid) {
		k.kid = strdup(kid);
		if (k.kid == NULL) {
			rc = cable_error_set(err, CABLE_ENOMEM, "out of memory");
			goto fail;
		}
	}
	grown = cable_grow(ks->keys, ks->count, &ks->cap, sizeof(*grown), 4);
	if (grown == NULL) {
		rc = cable_error_set(err, CABLE_ENOMEM, "out of memory");
		goto fail;
	}
	ks->keys = grown;
	ks->keys[ks->count++] = k;
	ERR_pop_to_mark();
	return CABLE_OK;

fail:
	jwt_key_release(&k);
	ERR_pop_to_mark();
	return rc;
}

/* JWS ECDSA signature (R||S, each coord_len bytes) to the DER ECDSA-Sig-Value EVP wants. */
static int jwt_ecdsa_raw_to_der(const unsigned char *raw, size_t coord_len, unsigned char **der,
                                size_t *der_len)
{
	ECDSA_SIG *sig;
	BIGNUM *r, *s;
	unsigned char *buf, *p;
	int n, rc = CABLE_ENOMEM;

	sig = ECDSA_SIG_new();
	r = BN_bin2bn(raw, (int)coord_len, NULL);
	s = BN_bin2bn(raw + coord_len, (int)coord_len, NULL);
	if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	/* sig owns r and s now */
	n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0)
		goto out;
	buf = malloc((size_t)n);
	if (buf == NULL)
		goto out;
	p = buf;
	if (i2d_ECDSA_SIG(sig, &p) != n) {
		free(buf);
		goto out;
	}
	*der = buf;
	*der_len = (size_t)n;
	rc = CABLE_OK;
out:
	ECDSA_SIG_free(sig);
	return rc;
}

/*
 * policy->ecdsa_low_s: a verified ECDSA signature (R||S) must be low-S, the one spelling
 * of its twins. CABLE_OK, CABLE_EAUTH (high S), CABLE_ENOMEM.
 */
static int jwt_ecdsa_low_s(const struct jwt_alg *alg, const unsigned char *sig,
                           struct cable_error *err)
{
	BIGNUM *s = BN_bin2bn(sig + alg->coord_len, (int)alg->coord_len, NULL);
	int high = s ? jwt_ecdsa_s_high(alg->curve_nid, s, NULL) : -1;

	BN_free(s);
	if (high < 0)
		return cable_error_set(err, CABLE_ENOMEM, "out of memory");
	if (high)
		return cable_error_set(err, CABLE_EAUTH,
		                       "bad signature: high-S ECDSA (not canonical)");
	return CABLE_OK;
}

/* Public-key verification. CABLE_OK, CABLE_EAUTH (does not verify), CABLE_ENOMEM. */
static int jwt_pkey_verify(const struct jwt_key *k, const unsigned char *data, size_t len,
                           const unsigned char *sig, size_t sig_len)
{
	const struct jwt_alg *alg = k->alg;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	int rc;

	if (alg->family == JWT_EC) {
		/* RFC 7518 3.4: exactly two fixed-size integers, nothing else. */
		if (sig_len != 2 * alg->coord_len)
			return CABLE_EAUTH;
		rc = jwt_ecdsa_raw_to_der(sig, alg->coord_len, &der, &der_len);
		if (rc != CABLE_OK)
			return rc;
		sig = der;
		sig_len = der_len;
	} else if (alg->family == JWT_ED25519 && sig_len != JWT_ED25519_SIG_LEN) {
		return CABLE_EAUTH;
	} else if (alg->family == JWT_RSA && sig_len != (size_t)EVP_PKEY_get_size(k->pkey)) {
		return CABLE_EAUTH;
	}

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = CABLE_ENOMEM;
		goto out;
	}
	rc = CABLE_EAUTH;
	if (EVP_DigestVerifyInit(ctx, &pctx, alg->md ? alg->md() : NULL, NULL, k->pkey) != 1)
		goto out;
	if (alg->family == JWT_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto out;
	if (EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1)
		rc = CABLE_OK;
out:
	EVP_MD_CTX_free(ctx);
	free(der);
	return rc;
}

/* CABLE_OK when `sig` is a valid signature of `data` under `k`, else EAUTH or ENOMEM. */
static int jwt_sig_check(const struct jwt_key *k, const unsigned char *data, size_t len,
                         const unsigned char *sig, size_t sig_len)
{
	unsigned char mac[JWT_HMAC_MAX_LEN];
	size_t mac_len = 0;
	int rc;

	if (k->alg->family != JWT_HMAC)
		return jwt_pkey_verify(k, data, len, sig, sig_len);
	rc = jwt_hmac(k->alg, k->secret, k->secret_len, data, len, mac, &mac_len);
	if (rc != CABLE_OK)
		return rc;
	/* The length is public (it follows from alg); the bytes are compared in constant time. */
	if (sig_len != mac_len || CRYPTO_memcmp(mac, sig, mac_len) != 0)
		rc = CABLE_EAUTH;
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* ---- Claims -------------------------------------------------------------------------- */

/* now + delta, clamped instead of overflowing; both come from the caller, not the token. */
static long long jwt_sat_add(long long now, long long delta)
{
	if (delta > 0 && now > LLONG_MAX - delta)
		return LLONG_MAX;
	if (delta < 0 && now < LLONG_MIN - delta)
		return LLONG_MIN;
	return now + delta;
}

/*
 * A NumericDate (RFC 7519 2): integer or real seconds. Returns 1 if `v` is at or before
 * `t` (i.e. t >= v), 0 if not, -1 if `v` is not a number.
 */
static int jwt_date_reached(const json_t *v, long long t)
{
	if (json_is_integer(v))
		return t >= json_integer_value(v);
	if (json_is_real(v))
		return (double)t >= json_real_value(v);
	return -1;
}

/* The integer second of a NumericDate, rounded down and clamped (jansson reals are finite). */
static long long jwt_date_floor(const json_t *v)
{
	double d;
	long long s;

	if (json_is_integer(v))
		return json_integer_value(v);
	d = json_real_value(v);
	if (d >= 9.2e18)
		return LLONG_MAX;
	if (d <= -9.2e18)
		return LLONG_MIN;
	s = (long long)d;
	if ((double)s > d)
		s--;
	return s;
}

static bool jwt_str_eq(const json_t *v, const char *s)
{
	size_t n = strlen(s);

	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), s, n) == 0;
}

static int jwt_check_times(const json_t *claims, const struct cable_jwt_policy *policy,
                           long long now, long long *exp_out, struct cable_error *err)
{
	long long leeway = policy->leeway > 0 ? policy->leeway : 0;
	const json_t *exp = json_object_get(claims, "exp");
	const json_t *nbf = json_object_get(claims, "nbf");
	int r;

	*exp_out = 0;
	if (exp) {
		/* RFC 7519 4.1.4: the current time must be before exp (plus leeway). */
		r = jwt_date_reached(exp, jwt_sat_add(now, -leeway));
		if (r < 0)
			return cable_error_set(err, CABLE_EAUTH, "bad exp");
		if (r)
			return cable_error_set(err, CABLE_EAUTH, "expired");
		*exp_out = jwt_date_floor(exp);
	} else if (policy->require_exp) {
		return cable_error_set(err, CABLE_EAUTH, "missing exp");
	}
	if (nbf) {
		/* RFC 7519 4.1.5: the current time must be at or after nbf (minus leeway). */
		r = jwt_date_reached(nbf, jwt_sat_add(now, leeway));
		if (r < 0)
			return cable_error_set(err, CABLE_EAUTH, "bad nbf");
		if (!r)
			return cable_error_set(err, CABLE_EAUTH, "not yet valid");
	}
	return CABLE_OK;
}

static int jwt_check_iss_aud(const json_t *claims, const struct cable_jwt_policy *policy,
                             struct cable_error *err)
{
	const json_t *iss = json_object_get(claims, "iss");
	const json_t *aud = json_object_get(claims, "aud");
	const json_t *v;
	bool found = false;
	size_t i;

	if (policy->issuer) {
		if (iss == NULL)
			return cable_error_set(err, CABLE_EAUTH, "missing iss");
		if (!jwt_str_eq(iss, policy->issuer))
			return cable_error_set(err, CABLE_EAUTH, "wrong iss");
	}
	if (aud == NULL) {
		if (policy->audience)
			return cable_error_set(err, CABLE_EAUTH, "missing aud");
		return CABLE_OK;
	}
	/*
	 * RFC 7519 4.1.3: a token that names audiences must be rejected by a recipient
	 * that is not one of them. With no audience configured we are none of them.
	 */
	if (policy->audience == NULL)
		return cable_error_set(err, CABLE_EAUTH, "unexpected aud");
	if (json_is_string(aud)) {
		found = jwt_str_eq(aud, policy->audience);
	} else if (json_is_array(aud)) {
		json_array_foreach(aud, i, v)
		{
			if (!json_is_string(v))
				return cable_error_set(err, CABLE_EAUTH, "bad aud");
			if (jwt_str_eq(v, policy->audience))
				found = true;
		}
	} else {
		return cable_error_set(err, CABLE_EAUTH, "bad aud");
	}
	if (!found)
		return cable_error_set(err, CABLE_EAUTH, "wrong aud");
	return CABLE_OK;
}

static int jwt_take_user(const json_t *claims, const struct cable_jwt_policy *policy,
                         struct cable_principal *p, struct cable_error *err)
{
	const char *name = policy->user_claim ? policy->user_claim : "sub";
	const json_t *v = json_object_get(claims, name);
	char num[32];

	if (v == NULL)
		return cable_error_set(err, CABLE_EAUTH, "missing %.40s", name);
	if (json_is_string(v) && json_string_length(v) > 0) {
		/* jansson refuses \u0000 without JSON_ALLOW_NUL, so the C string is the whole
		 * value. */
		p->user = strdup(json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		p->user = strdup(num);
	} else {
		return cable_error_set(err, CABLE_EAUTH, "bad %.40s", name);
	}
	if (p->user == NULL)
		return cable_error_set(err, CABLE_ENOMEM, "out of memory");
	return CABLE_OK;
}

static int jwt_take_roles(const json_t *claims, const struct cable_jwt_policy *policy,
                          struct cable_principal *p, struct cable_error *err)
{
	const json_t *roles, *v;
	size_t i, n;

	if (policy->roles_claim == NULL)
		return CABLE_OK;
	roles = json_object_get(claims, policy->roles_claim);
	if (roles == NULL)
		return CABLE_OK;
	if (!json_is_array(roles))
		return cable_error_set(err, CABLE_EAUTH, "bad %.40s", policy->roles_claim);
	json_array_foreach(roles, i, v)
	{
		if (!json_is_string(v))
			return cable_error_set(err, CABLE_EAUTH, "bad %.40s", policy->roles_claim);
	}
	n = json_array_size(roles);
	if (n == 0)
		return CABLE_OK;
	p->roles = calloc(n, sizeof(*p->roles));
	if (p->roles == NULL)
		return cable_error_set(err, CABLE_ENOMEM, "out of memory");
	json_array_foreach(roles, i, v)
	{
		p->roles[i] = strdup(json_string_value(v));
		if (p->roles[i] == NULL)
			return cable_error_set(err, CABLE_ENOMEM, "out of memory");
		p->nroles = i + 1;
	}
	return CABLE_OK;
}

/* ---- Verify -------------------------------------------------------------------------- */

/* Fill err with a rejection and the byte offset it refers to. */
static int jwt_reject(struct cable_error *err, int code, size_t offset, const char *text)
{
	cable_error_set(err, code, "%s", text);
	if (err)
		err->offset = offset;
	return code;
}

/* Decode one segment; a failure is reported against `what` at `offset`. */
static int jwt_segment(const char *token, size_t start, size_t end, unsigned char **out,
                       size_t *out_len, const char *what, struct cable_error *err)
{
	int rc = cable_b64url_decode(token + start, end - start, out, out_len);

	if (rc == CABLE_ENOMEM)
		return jwt_reject(err, rc, start, "out of memory");
	if (rc != CABLE_OK)
		return jwt_reject(err, CABLE_EAUTH, start, what);
	return CABLE_OK;
}

/* Parse a decoded segment as a JSON object. Duplicate names are refused, not resolved. */
static int jwt_json_object(const unsigned char *buf, size_t len, json_t **out, size_t offset,
                           const char *what, struct cable_error *err)
{
	json_error_t jerr;
	json_t *v;

	v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL && json_error_code(&jerr) == json_error_out_of_memory)
		return jwt_reject(err, CABLE_ENOMEM, offset, "out of memory");
	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		return jwt_reject(err, CABLE_EAUTH, offset, what);
	}
	*out = v;
	return CABLE_OK;
}

/*
 * Find the key and check the signature. With a kid the choice is the keyset's, not
 * the token's: the named key must be pinned to the header's alg. Without one, every
 * kid-less key pinned to that alg is tried in order (several during a rotation).
 */
static int jwt_select_and_check(const struct cable_keyset *ks, const struct jwt_alg *alg,
                                const json_t *kid, const unsigned char *data, size_t len,
                                const unsigned char *sig, size_t sig_len, struct cable_error *err)
{
	const struct jwt_key *k;
	size_t i, tried = 0;
	int rc;

	if (kid) {
		k = jwt_key_by_kid(ks, json_string_value(kid));
		if (k == NULL)
			return jwt_reject(err, CABLE_EAUTH, 0, "unknown kid");
		if (k->alg != alg)
			return jwt_reject(err, CABLE_EAUTH, 0, "alg mismatch");
		rc = jwt_sig_check(k, data, len, sig, sig_len);
	} else {
		rc = CABLE_EAUTH;
		for (i = 0; i < ks->count && rc == CABLE_EAUTH; i++) {
			k = &ks->keys[i];
			if (k->kid || k->alg != alg)
				continue;
			tried++;
			rc = jwt_sig_check(k, data, len, sig, sig_len);
		}
		if (tried == 0)
			return jwt_reject(err, CABLE_EAUTH, 0, "alg mismatch");
	}
	if (rc == CABLE_ENOMEM)
		return jwt_reject(err, rc, 0, "out of memory");
	if (rc != CABLE_OK)
		return jwt_reject(err, CABLE_EAUTH, len + 1, "bad signature");
	return CABLE_OK;
}

static int jwt_check_claims(const json_t *claims, const struct cable_jwt_policy *policy,
                            long long now, struct cable_principal *p, struct cable_error *err)
{
	int rc;

	rc = jwt_check_times(claims, policy, now, &p->exp, err);
	if (rc == CABLE_OK)
		rc = jwt_check_iss_aud(claims, policy, err);
	if (rc == CABLE_OK)
		rc = jwt_take_user(claims, policy, p, err);
	if (rc == CABLE_OK)
		rc = jwt_take_roles(claims, policy, p, err);
	if (rc != CABLE_OK && err)
		err->offset = 0;
	return rc;
}

int cable_jwt_verify(const struct cable_keyset *ks, const struct cable_jwt_policy *policy,
                     const char *token, size_t len, long long now, struct cable_principal *out,
                     struct cable_error *err)
{
	struct cable_principal p = {0};
	const char *dot1, *dot2;
	size_t p_start, s_start; /* payload and signature segment offsets */
	unsigned char *hdr_raw = NULL, *claims_raw = NULL, *sig = NULL;
	size_t hdr_len = 0, claims_len = 0, sig_len = 0;
	json_t *hdr = NULL, *claims = NULL;
	const json_t *alg_v, *kid_v;
	const struct jwt_alg *alg;
	int rc;

	if (ks == NULL || policy == NULL || out == NULL || (token == NULL && len > 0))
		return jwt_reject(err, CABLE_EINVAL, 0, "invalid argument");
	if (len == 0)
		return jwt_reject(err, CABLE_EAUTH, 0, "empty token");
	if (len > CABLE_JWT_MAX_LEN)
		return jwt_reject(err, CABLE_EAUTH, CABLE_JWT_MAX_LEN, "token too long");

	/* Exactly three segments: two dots. A JWE (five segments) ends here too. */
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL)
		return jwt_reject(err, CABLE_EAUTH, len, "malformed token");
	p_start = (size_t)(dot1 - token) + 1;
	s_start = (size_t)(dot2 - token) + 1;
	if (memchr(dot2 + 1, '.', len - s_start))
		return jwt_reject(err, CABLE_EAUTH, s_start, "malformed token");

	ERR_set_mark();
	rc = jwt_segment(token, 0, p_start - 1, &hdr_raw, &hdr_len, "bad base64 in header", err);
	if (rc != CABLE_OK)
		goto out;
	rc = jwt_json_object(hdr_raw, hdr_len, &hdr, 0, "header is not a JSON object", err);
	if (rc != CABLE_OK)
		goto out;

	rc = CABLE_EAUTH;
	alg_v = json_object_get(hdr, "alg");
	if (!json_is_string(alg_v)) {
		jwt_reject(err, rc, 0, "missing alg");
		goto out;
	}
	/* RFC 7515 4.1.11: a recipient that does not understand a "crit" extension must reject. */
	if (json_object_get(hdr, "crit")) {
		jwt_reject(err, rc, 0, "crit header not supported");
		goto out;
	}
	if (jwt_str_eq(alg_v, "none")) {
		jwt_reject(err, rc, 0, "alg none not accepted");
		goto out;
	}
	alg = jwt_alg_find(json_string_value(alg_v), json_string_length(alg_v));
	if (alg == NULL) {
		jwt_reject(err, rc, 0, "unsupported alg");
		goto out;
	}
	kid_v = json_object_get(hdr, "kid");
	if (kid_v && !json_is_string(kid_v)) {
		jwt_reject(err, rc, 0, "bad kid");
		goto out;
	}

	rc = jwt_segment(token, s_start, len, &sig, &sig_len, "bad base64 in signature", err);
	if (rc != CABLE_OK)
		goto out;
	rc = jwt_select_and_check(ks, alg, kid_v, (const unsigned char *)token, s_start - 1, sig,
	                          sig_len, err);
	if (rc != CABLE_OK)
		goto out;
	if (policy->ecdsa_low_s && alg->family == JWT_EC) {
		rc = jwt_ecdsa_low_s(alg, sig, err);
		if (rc != CABLE_OK)
			goto out;
	}

	/* Authentic from here on: the payload is what the key holder signed. */
	rc = jwt_segment(token, p_start, s_start - 1, &claims_raw, &claims_len,
	                 "bad base64 in payload", err);
	if (rc != CABLE_OK)
		goto out;
	rc = jwt_json_object(claims_raw, claims_len, &claims, p_start,
	                     "claims are not a JSON object", err);
	if (rc != CABLE_OK)
		goto out;
	rc = jwt_check_claims(claims, policy, now, &p, err);
	if (rc != CABLE_OK)
		goto out;

	p.claims = claims; /* the principal takes our reference */
	claims = NULL;
	*out = p;
	memset(&p, 0, sizeof(p));
out:
	cable_principal_release(&p);
	json_decref(claims);
	json_decref(hdr);
	free(claims_raw);
	free(hdr_raw);
	free(sig);
	ERR_pop_to_mark();
	return rc;
}
