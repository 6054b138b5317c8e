/*
 * libFuzzer target for plugin/core/jwt_verify.c (tokens minted by jwt_sign.c).
 *
 * Every input is used twice:
 *
 *   1. As a token, verified against a fixed keyset (HS256, HS384 "k2", RS256, ES256,
 *      EdDSA "ed") at a fixed clock. It must never be accepted unless it is one of the
 *      VALID tokens below, which the corpus (test/fuzz/corpus/jwt/) seeds: any other
 *      acceptance is a forgery. Every signature has exactly one valid value: HMAC,
 *      RSA PKCS#1 v1.5 and Ed25519 by construction, ECDSA because the policy sets
 *      ecdsa_low_s, so only the low-S form is accepted (the seeded ES256 token is
 *      low-S; its high-S twin (r, n - s) must be refused). Strict base64url gives
 *      that value one spelling.
 *
 *   2. As a claim set: signed with the HS256 key and verified. Phase 1 reaches the
 *      claim checks only through a valid signature; this phase feeds them arbitrary
 *      JSON. Anything accepted must have produced a sane principal.
 *
 * The VALID tokens were made once with Python's `cryptography`, not with this code.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cable_jwt.h"
#include "cable_jwt_sign.h"
#include "fuzz.h"

/* Both libFuzzer and replay builds keep the checks: a failure must abort. */
#define NOW 1700000000LL

static const char HS256_SECRET[] = "fuzz-hs256-secret-0123456789abcd";
static const char HS384_SECRET[] = "fuzz-hs384-secret-0123456789abcdefghijklmnopqrst";

static const char RSA_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkbQAX6GrzKlSmiCJpRSU\n"
                              "isxzBb568NjVvkKfYQ+jEKm2qG3wEntNS89ObNqmSHHrBl2WlEl2FvRHR4BAiGga\n"
                              "q5+cI3NGX66psjzaPZB8b3jf8noy9r+O+WEn/lL3JjmVVVQxdv29DF+TvX76KXEp\n"
                              "FBPzWOG5HMqrDNj865OamyLAwN8n9rmbxkDVE4wxUVaKe6JyEI5xllfBMq30iKpS\n"
                              "StHLXZ4YY8ZWAaA4ki+fan1KtvhBaTQlaPp1+g6S5kdo9akfp7HWaDEjD5BzqLez\n"
                              "YoCxtcfZGnUv6X6bC88qxsxv0cS1SoGsdlY4HnfJDMonIC7DXbgD68V0fKQJEsxA\n"
                              "yQIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static const char P256_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoaSVY4ZSI0ubxxtF/qXyCQIswtIc\n"
                               "Rk4MTiDHzpDpbHtABYvhY+juHkTNfPJUfApiKi632Nors+PyJUJLxvJw6w==\n"
                               "-----END PUBLIC KEY-----\n";

static const char ED_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MCowBQYDK2VwAyEA6UlRFsQkyeRLgahRamXegeXuxeo/viLh7uDNAEvT0zg=\n"
                             "-----END PUBLIC KEY-----\n";

static const struct {
	const char *token;
} VALID[] = {
        {
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                "eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vYXBwLmV4YW1wbGUiLCJhdWQiOiJjYWJsZSIsImV4cC"
                "I6MjAw"
                "MDAwMDAwMCwicm9sZXMiOlsidmlld2VyIl19."
                "b4yE8dvZA-nUecbBu-OGefvGR329tQcIkE1fQQuAfCI",
        },
        {
                "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImsyIn0."
                "eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vYXBwLmV4YW1wbGUiLCJhdWQiOiJjYWJsZSIsImV4cC"
                "I6MjAw"
                "MDAwMDAwMCwicm9sZXMiOlsidmlld2VyIl19."
                "YUJq65V3i9p0Y-XRGEjOPQcJnRB4DySuj6TbFNg3lKe2V1Pjc1rLcjkbc8LuyO1m",
        },
        {
                "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
                "eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vYXBwLmV4YW1wbGUiLCJhdWQiOiJjYWJsZSIsImV4cC"
                "I6MjAw"
                "MDAwMDAwMCwicm9sZXMiOlsidmlld2VyIl19."
                "KnOBmlhfDqLc5WTza6U72MsqFeoFfjSD2WrizJvunXulxhdIJd2ZhJc2UfeHCP5lNRshl7crlpyMe7S7cw"
                "25WfWV"
                "cUxa0V0c-"
                "nrs8y0uvvg6VYzbnLPJhFfYrXvcsQpsyhGV4HS081wdpfuPXC0Dnd76hleZzUaUynsITIKhf2HpUX4c"
                "KZW_IXbCu8STdM-jJ1hOEVx2wUqM1L8iG_h7lmDNBH6clPs5yFrSaZ97ZZjy_4nhstrSVCaw9F_"
                "q4AK3ywghrmft"
                "93IpOsguThG-IMWry3B9u6la5qxFFkjE3VVDsBSLPESB0kc1H9jIiJT7500aKyCgt0-d44rvLq6sjg",
        },
        {
                "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImVkIn0."
                "eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vYXBwLmV4YW1wbGUiLCJhdWQiOiJjYWJsZSIsImV4cC"
                "I6MjAw"
                "MDAwMDAwMCwicm9sZXMiOlsidmlld2VyIl19."
                "aulxKxLoKMQpCXoG9OWWYmpD1I1XrMhEPC49QGBBysweQCQjZTOh89VOrGfYT_2uSB8wJ6E-"
                "NylPjDKetaArBw",
        },
        {
                "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9."
                "eyJzdWIiOiJhbGljZSIsImlzcyI6Imh0dHBzOi8vYXBwLmV4YW1wbGUiLCJhdWQiOiJjYWJsZSIsImV4cC"
                "I6MjAw"
                "MDAwMDAwMCwicm9sZXMiOlsidmlld2VyIl19."
                "dDFfuiVzODO4psc6WLF_GT9desdYM3tkCfuyl5e229NV0UXPrngTFIQuWFogVWGuVwkjskRIAauOMQLmZ-"
                "vHEQ",
        },
};

static const struct cable_jwt_policy POLICY = {
        .leeway = 30,
        .issuer = "https://app.example",
        .audience = "cable",
        .user_claim = NULL,
        .roles_claim = "roles",
        .require_exp = true,
        .ecdsa_low_s = true, /* one valid spelling per signature (see above) */
};

/*
 * Built once and never changed (keysets are immutable after construction), so every
 * run sees the same state; parsing PEM keys per input would only slow the fuzzer.
 */
static const struct cable_keyset *keyset(void)
{
	static struct cable_keyset *ks;
	struct cable_error err;

	if (ks)
		return ks;
	ks = cable_keyset_new();
	CHECK(ks != NULL);
	CHECK(cable_keyset_add(ks, NULL, "HS256", (const unsigned char *)HS256_SECRET,
	                       sizeof(HS256_SECRET) - 1, &err) == CABLE_OK);
	CHECK(cable_keyset_add(ks, "k2", "HS384", (const unsigned char *)HS384_SECRET,
	                       sizeof(HS384_SECRET) - 1, &err) == CABLE_OK);
	CHECK(cable_keyset_add(ks, NULL, "RS256", (const unsigned char *)RSA_PUB,
	                       sizeof(RSA_PUB) - 1, &err) == CABLE_OK);
	CHECK(cable_keyset_add(ks, NULL, "ES256", (const unsigned char *)P256_PUB,
	                       sizeof(P256_PUB) - 1, &err) == CABLE_OK);
	CHECK(cable_keyset_add(ks, "ed", "EdDSA", (const unsigned char *)ED_PUB, sizeof(ED_PUB) - 1,
	                       &err) == CABLE_OK);
	return ks;
}

static bool is_seeded(const char *tok, size_t len)
{
	size_t i, vlen;

	for (i = 0; i < sizeof(VALID) / sizeof(VALID[0]); i++) {
		vlen = strlen(VALID[i].token);
		if (len == vlen && memcmp(tok, VALID[i].token, len) == 0)
			return true;
	}
	return false;
}

/* What every accepted token must have produced. */
static void check_principal(const struct cable_principal *p)
{
	size_t i;

	CHECK(p->user != NULL && p->user[0] != '\0');
	CHECK(json_is_object(p->claims));
	CHECK(p->nroles == 0 || p->roles != NULL);
	for (i = 0; i < p->nroles; i++)
		CHECK(p->roles[i] != NULL);
}

/* The result of a failed verification: EAUTH with a text, *out untouched. */
static void check_rejection(int rc, const struct cable_principal *p, const struct cable_error *err)
{
	CHECK(rc == CABLE_EAUTH || rc == CABLE_ENOMEM);
	CHECK(err->code == rc);
	CHECK(err->text[0] != '\0' && memchr(err->text, '\0', sizeof(err->text)) != NULL);
	CHECK(p->user == NULL && p->claims == NULL && p->roles == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cable_keyset *ks = keyset();
	struct cable_principal p = {0};
	struct cable_error err = {0};
	char *tok = NULL;
	int rc;

	/* 1: the input as a token */
	rc = cable_jwt_verify(ks, &POLICY, (const char *)data, size, NOW, &p, &err);
	if (rc == CABLE_OK) {
		CHECK(is_seeded((const char *)data, size));
		check_principal(&p);
		cable_principal_release(&p);
	} else {
		check_rejection(rc, &p, &err);
	}

	/* 2: the input as a claim set, genuinely signed */
	memset(&err, 0, sizeof(err));
	rc = cable_jwt_sign("HS256", NULL, (const unsigned char *)HS256_SECRET,
	                    sizeof(HS256_SECRET) - 1, (const char *)data, size, &tok, &err);
	if (rc != CABLE_OK) {
		CHECK(rc == CABLE_EINVAL || rc == CABLE_ENOMEM);
		CHECK(tok == NULL);
		return 0;
	}
	memset(&err, 0, sizeof(err));
	rc = cable_jwt_verify(ks, &POLICY, tok, strlen(tok), NOW, &p, &err);
	if (rc == CABLE_OK) {
		check_principal(&p);
		cable_principal_release(&p);
	} else {
		check_rejection(rc, &p, &err);
		/* Our own signature is never what is wrong with our own token. */
		CHECK(strcmp(err.text, "bad signature") != 0);
	}
	free(tok);
	return 0;
}
