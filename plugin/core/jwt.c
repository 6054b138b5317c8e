/*
 * JSON Web Tokens: verification and minting. Pure; see cable_jwt.h for the contract.
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

#include "cable_jwt.h"

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

/* RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used with these algorithms." */
#define JWT_RSA_MIN_BITS 2048

#define JWT_ED25519_SIG_LEN 64

/* Largest HMAC tag; public-key signatures are sized from the key (EVP_PKEY_get_size). */
#define JWT_HMAC_MAX_LEN EVP_MAX_MD_SIZE

static const struct jwt_alg *jwt_alg_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(jwt_algs); i++) {
		if (strlen(jwt_algs[i].name) == len && memcmp(jwt_algs[i].name, name, len) == 0)
			return &jwt_algs[i];
	}
	return NULL;
}

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

/*
 * PEM callbacks must never prompt: the default one reads a passphrase from the
 * terminal, which is I/O this module must not do. Encrypted keys simply fail to load.
 */
static int jwt_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	CABLE_UNUSED(buf);
	CABLE_UNUSED(size);
	CABLE_UNUSED(rwflag);
	CABLE_UNUSED(u);
	return -1;
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
static int jwt_key_fits(const struct jwt_alg *alg, const EVP_PKEY *pk, struct cable_error *err)
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

/* ---- base64url ----------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict decoding (RFC 7515 2): the URL-safe alphabet only, no '=' padding, no
 * whitespace, and the unused low bits of the last character must be zero, so that
 * every byte string has exactly one accepted spelling. *out is malloc'd with one
 * spare byte, NUL-terminated. Returns CABLE_OK, CABLE_EAUTH (bad input), CABLE_ENOMEM.
 */
static int b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	uint32_t acc = 0;
	size_t i, n = 0;
	int v, bits = 0;

	if (len % 4 == 1)
		return CABLE_EAUTH;
	buf = malloc(len / 4 * 3 + 3);
	if (buf == NULL)
		return CABLE_ENOMEM;
	for (i = 0; i < len; i++) {
		v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* leftover bits (2 or 4) must be zero */
		goto bad;
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return CABLE_OK;
bad:
	free(buf);
	return CABLE_EAUTH;
}

static size_t b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes b64url_len(n) characters to out (no NUL); returns that count. */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = abc[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = abc[(acc << (6 - bits)) & 63];
	return o;
}

/* ---- Signatures ---------------------------------------------------------------------- */

/*
 * Is s in the upper half of the curve's order (s > n/2)? 1 yes, 0 no, -1 out of memory.
 * If n_minus_s is not NULL and s is high, it is set to n - s (the low-S twin).
 */
static int jwt_ecdsa_s_high(int curve_nid, const BIGNUM *s, BIGNUM *n_minus_s)
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

static int jwt_hmac(const struct jwt_alg *alg, const unsigned char *key, size_t key_len,
                    const unsigned char *data, size_t len, unsigned char *mac, size_t *mac_len)
{
	unsigned int n = 0;

	if (HMAC(alg->md(), key, (int)key_len, data, len, mac, &n) == NULL)
		return CABLE_ENOMEM;
	*mac_len = n;
	return CABLE_OK;
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
	int rc = b64url_decode(token + start, end - start, out, out_len);

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
	tok = malloc(b64url_len(hdr_len) + 1 + b64url_len(claims_txt_len) + 1 +
	             b64url_len(sig_max) + 1);
	if (sig == NULL || tok == NULL) {
		rc = cable_error_set(err, CABLE_ENOMEM, "out of memory");
		goto out;
	}
	n = b64url_encode((const unsigned char *)hdr_txt, hdr_len, tok);
	tok[n++] = '.';
	n += b64url_encode((const unsigned char *)claims_txt, claims_txt_len, tok + n);

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
	n += b64url_encode(sig, sig_len, tok + n);
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
