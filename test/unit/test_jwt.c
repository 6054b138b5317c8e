/*
 * Tests for the JWT module: published vectors (RFC 7515 A.1-A.3, RFC 8037 A.4),
 * byte-exact agreement with an independent implementation (tokens below were made
 * once with Python's `cryptography`), round trips for every algorithm, and forgeries.
 *
 * Keys: the RFC keys converted from their JWKs to PEM, and keys generated once with
 * `openssl genpkey`; all of them are test-only and public.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cable_jwt.h"
#include "cable_jwt_sign.h"
#include "test.h"

/* ---- Keys ------------------------------------------------------------------------------ */

static const char RFC_RSA_PUB[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj\n"
        "NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz\n"
        "P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo\n"
        "9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB\n"
        "EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX\n"
        "FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp\n"
        "oQIDAQAB\n"
        "-----END PUBLIC KEY-----\n";

static const char RFC_EC_PUB[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
        "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
        "-----END PUBLIC KEY-----\n";

static const char RFC_ED_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                                 "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
                                 "-----END PUBLIC KEY-----\n";

static const char RFC_ED_PRIV[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
        "-----END PRIVATE KEY-----\n";

static const char RSA_PRIV[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCRtABfoavMqVKa\n"
                               "IImlFJSKzHMFvnrw2NW+Qp9hD6MQqbaobfASe01Lz05s2qZIcesGXZaUSXYW9EdH\n"
                               "gECIaBqrn5wjc0ZfrqmyPNo9kHxveN/yejL2v475YSf+UvcmOZVVVDF2/b0MX5O9\n"
                               "fvopcSkUE/NY4bkcyqsM2Pzrk5qbIsDA3yf2uZvGQNUTjDFRVop7onIQjnGWV8Ey\n"
                               "rfSIqlJK0ctdnhhjxlYBoDiSL59qfUq2+EFpNCVo+nX6DpLmR2j1qR+nsdZoMSMP\n"
                               "kHOot7NigLG1x9kadS/pfpsLzyrGzG/RxLVKgax2Vjged8kMyicgLsNduAPrxXR8\n"
                               "pAkSzEDJAgMBAAECggEAD3cb8AqkxeM2F5J7EbjiwG3Niq9KdNyLKXgAW0jR3d+p\n"
                               "uex7ZjbMwE53jFHUAw4GbIVMCZ7XiD2zACmij+f+5rcZF2Ext8++BuNzJcQ7lQhv\n"
                               "OtlSJgM0rY8ss8/CGH5VtborSu5JXfIaKCu9aV8vxUgN1SIWaDIx4Dn69JVU/IDV\n"
                               "kMpmjqUhHxyC3esYbrUsMGBOUGIjjw5+j+6DOzEqUWWTAWonqDRKTsYdi7YhVefW\n"
                               "mKRj5ROzk3topuX8adwzaCbKdys4apyZ8OIodqD9HEJAPysnM+5CbfPaG00qVu46\n"
                               "eZJu2ppEC5C9y6HbQgP0KApexFRxw3e/Fo5mh2uaxQKBgQDG9U/ZXrkyCiymE+O+\n"
                               "FmpjFfU8edqsLn9p459Ll7uE2LlY7dN/waKEzxnTKMGxtFbvvIgTuurLCjGw0uyy\n"
                               "QFVjxdSPSt6XNQVwU5F3qFkig1vm4YtPfqQkAHwkwo6auUqZLaH1HZ87dKhSe/tB\n"
                               "BbysnIfZqePm+0ex+JmszKZwbQKBgQC7ef2bRJM4+R5Lq2lldueq/PVS7kzzNQB/\n"
                               "CeeUezDAFaBsN7fvbO+o7ymsH3rJ94C2SIphNDskW323xf/CpG6s4MYIQQPNoKw3\n"
                               "T+W50A0GBRmtlYV0gleZBHsRQFhutQZazW4rM6kp6+2kaKgXA9oy2lY5QCdkKaJi\n"
                               "aCnu1UgwTQKBgDp9threiS2X5iZxJHwm1OIKe41q+YmzJcw4mgU8N2nH2T22tX4S\n"
                               "rDfFNv9oNQGMVh6m246JXiuQ9KjaabHBzhjF+UajKStk8BNkzhhSitnlqmgHGNCn\n"
                               "F5Rp/BVGiWwdWzwLOVj5e22cTzvorSYhjKVmY13vX0vxxdMhlfRCOhBFAoGATHkV\n"
                               "fvl5CFtuBTXVl0LqezAWLg7wqqBrJGb45PNfTmtD9gDAcdTA6ess1347yxi/kxuB\n"
                               "/uacXVdIr+b/Tfle//vsK7/BemZY+XMI5UO9nEAGWm1Mc9sbOlq+jKnvqLEE95Mm\n"
                               "pk67aVNIq7DZKBI1NlsjotTNfKkTCQsuV7L+cF0CgYEApRkzsHV0Ev+oiG1lhabV\n"
                               "n8XQSocuKZXcGxBXkjQ2TR70CP88DAnjmOf5dTbcWi4uK5FcOKu/cpbEGOuxq1if\n"
                               "xQxnnio+K+ZJuYUA/VnVrBnzoGLam2Dl+kkREBwe3dMRrRZQlgBKrRieBWNV7yWZ\n"
                               "/QCbzynNKJ2pfuLHyoVIIes=\n"
                               "-----END PRIVATE KEY-----\n";

static const char RSA_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkbQAX6GrzKlSmiCJpRSU\n"
                              "isxzBb568NjVvkKfYQ+jEKm2qG3wEntNS89ObNqmSHHrBl2WlEl2FvRHR4BAiGga\n"
                              "q5+cI3NGX66psjzaPZB8b3jf8noy9r+O+WEn/lL3JjmVVVQxdv29DF+TvX76KXEp\n"
                              "FBPzWOG5HMqrDNj865OamyLAwN8n9rmbxkDVE4wxUVaKe6JyEI5xllfBMq30iKpS\n"
                              "StHLXZ4YY8ZWAaA4ki+fan1KtvhBaTQlaPp1+g6S5kdo9akfp7HWaDEjD5BzqLez\n"
                              "YoCxtcfZGnUv6X6bC88qxsxv0cS1SoGsdlY4HnfJDMonIC7DXbgD68V0fKQJEsxA\n"
                              "yQIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static const char RSA_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIDDTCCAfWgAwIBAgIUMpkp6Zz8pkuKBAwWXX2ggJHcAJEwDQYJKoZIhvcNAQEL\n"
                               "BQAwFTETMBEGA1UEAwwKY2FibGUtdGVzdDAgFw0yNjExMjcxODMwMTZaGA8yMTI2\n"
                               "MTEwMzE4MzAxNlowFTETMBEGA1UEAwwKY2FibGUtdGVzdDCCASIwDQYJKoZIhvcN\n"
                               "AQEBBQADggEPADCCAQoCggEBAJG0AF+hq8ypUpogiaUUlIrMcwW+evDY1b5Cn2EP\n"
                               "oxCptqht8BJ7TUvPTmzapkhx6wZdlpRJdhb0R0eAQIhoGqufnCNzRl+uqbI82j2Q\n"
                               "fG943/J6Mva/jvlhJ/5S9yY5lVVUMXb9vQxfk71++ilxKRQT81jhuRzKqwzY/OuT\n"
                               "mpsiwMDfJ/a5m8ZA1ROMMVFWinuichCOcZZXwTKt9IiqUkrRy12eGGPGVgGgOJIv\n"
                               "n2p9Srb4QWk0JWj6dfoOkuZHaPWpH6ex1mgxIw+Qc6i3s2KAsbXH2Rp1L+l+mwvP\n"
                               "KsbMb9HEtUqBrHZWOB53yQzKJyAuw124A+vFdHykCRLMQMkCAwEAAaNTMFEwHQYD\n"
                               "VR0OBBYEFFv9EjoKXnoNfumjiSwlB+9uw/OCMB8GA1UdIwQYMBaAFFv9EjoKXnoN\n"
                               "fumjiSwlB+9uw/OCMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEB\n"
                               "ACBv2h0F659u7LX1Cb6mOfvd+14IcWtroWSUFy6mpM6HqTk7jsP1yEeEHNn/NU+N\n"
                               "mazGnJSInGZFEqiGmFE00kPQi9gInNI/eLrN2TiMAtVEjNOYxT54iOSCWXUy1sEg\n"
                               "SPlonteqNykflrT6wgbjUcPmKLo4dhn+ENf8vLhQtRJZdEXC8yqj00GEn6VanDDv\n"
                               "eo6W1+7t+vN6OClq0437M5mQO//2X7lHiz/GjLO+keq39kbTYJSYqgMHxf3hIHY0\n"
                               "eQWo3JpAHL1fNvr01/gi7naOyDEibNE2EM49jeAIVbSE+U7P9wD5D0uiNlSTNuN4\n"
                               "WQQHrsr573nU9vIuuJ2Ebok=\n"
                               "-----END CERTIFICATE-----\n";

static const char RSA1024_PUB[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQClNoF8hMEDEwmMrMz6hLLrGa8+\n"
        "IutGkOvATgOv75Knjdj1Or0/rvH92gXpbNrRDit5kVs2CewWrPKpJxPpDHtS52dG\n"
        "TEHsjY/xMM5Yu50r5MOhMdlJs7fhJHCgrQZpSdVkq8RFscHcmfXyoOnHlAoySvn4\n"
        "ie7JwGXtK0oS4zSVfwIDAQAB\n"
        "-----END PUBLIC KEY-----\n";

static const char P256_PRIV[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNb95LNLeFWiEWOZm\n"
                                "8Wscoliuubuhnon8cAOtLfov85KhRANCAAShpJVjhlIjS5vHG0X+pfIJAizC0hxG\n"
                                "TgxOIMfOkOlse0AFi+Fj6O4eRM188lR8CmIqLrfY2iuz4/IlQkvG8nDr\n"
                                "-----END PRIVATE KEY-----\n";

static const char P256_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoaSVY4ZSI0ubxxtF/qXyCQIswtIc\n"
                               "Rk4MTiDHzpDpbHtABYvhY+juHkTNfPJUfApiKi632Nors+PyJUJLxvJw6w==\n"
                               "-----END PUBLIC KEY-----\n";

static const char P384_PRIV[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCadECugHzQIFUhxYiM\n"
                                "7lCxYhn5+sAIebCndRnANUv/tqx+8mUVRfjP0mKlUVM1CXOhZANiAAQ6U5ReHwvT\n"
                                "zAqRePTMC3oZLMCANsIr9zXqHSmJ9GouhyZkfb8p3CC5KAefJ0+5Lq4tMrCHc9mq\n"
                                "5vH7xRszZsdn5IS9Nu1OU1qmI7xydjJBFNH2cwIe6I87x23WoiSgziE=\n"
                                "-----END PRIVATE KEY-----\n";

static const char P384_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEOlOUXh8L08wKkXj0zAt6GSzAgDbCK/c1\n"
                               "6h0pifRqLocmZH2/KdwguSgHnydPuS6uLTKwh3PZqubx+8UbM2bHZ+SEvTbtTlNa\n"
                               "piO8cnYyQRTR9nMCHuiPO8dt1qIkoM4h\n"
                               "-----END PUBLIC KEY-----\n";

static const char P521_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAfuGftZZzF29vD9iyHf+xswfVE28s\n"
                               "j6hq6IeGq0gCt/75r14pk3EikjlFzTdOFRmzOMRcKe+Uj3mM+V81ZVNl6zQAEOV8\n"
                               "wKeJOFR7S+jv/gt95QN+vrL2/y7eyU8UooRfqnusmlOss4krBMmY3/yjaN/2lSIz\n"
                               "xHtbgbB+//hSMMeXuQ8=\n"
                               "-----END PUBLIC KEY-----\n";

static const char ED_PRIV[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MC4CAQAwBQYDK2VwBCIEIFsh0H7Rgi8QQfLOPkMGYDeY1kFRxwcvQg0kFPqob1eh\n"
                              "-----END PRIVATE KEY-----\n";

static const char ED_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MCowBQYDK2VwAyEA6UlRFsQkyeRLgahRamXegeXuxeo/viLh7uDNAEvT0zg=\n"
                             "-----END PUBLIC KEY-----\n";

static const char ED2_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MCowBQYDK2VwAyEAbFPtHVGpNy5/W2AEhHYnnTGf8QW6a6m5VzOZPOAvdzo=\n"
                              "-----END PUBLIC KEY-----\n";

static const char ED448_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MEMwBQYDK2VxAzoAY4hrBziPFoXBCpy6n8AJLgSU4Hh/Ma9D2rG+QtWg3E2IfpKY\n"
                                "IuWgutKA+BuL2tbBg2njCM+nqQGA\n"
                                "-----END PUBLIC KEY-----\n";

static const unsigned char RFC_HS_KEY[] = {
        0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77,
        0x7b, 0xa6, 0x8f, 0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f,
        0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf, 0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47,
        0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22, 0x3d, 0x2e, 0x21, 0x72,
        0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3,
};

static const char HS256_SECRET[] = "cable-test-secret-hs256-01234567";
static const char HS384_SECRET[] = "cable-test-secret-hs384-0123456789abcdefghijklmn";
static const char HS512_SECRET[] =
        "cable-test-secret-hs512-0123456789abcdefghijklmnopqrstuvwxyz0123";
static const char OTHER_SECRET[] = "another-secret-of-32-bytes-00000";

#define KEY(s) (const unsigned char *)(s), (sizeof(s) - 1) /* string literal, no NUL */
#define RAW(a) (a), sizeof(a)                              /* byte array */

/* ---- Fixed times ------------------------------------------------------------------------ */

#define NOW 1700000000LL /* 2023-11-14; the reference tokens expire at 2000000000 */

/* RFC 7515 A.1-A.3 share one payload: {"iss":"joe","exp":1300819380,...is_root":true}. */
#define RFC_EXP 1300819380LL
#define RFC_NOW 1300819000LL
#define RFC_PAYLOAD                                                                                \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0" \
	"cnVl"                                                                                     \
	"fQ"

/* ---- Helpers ---------------------------------------------------------------------------- */

static struct cable_jwt_policy policy_default(void)
{
	struct cable_jwt_policy p = {0};

	p.leeway = 30;
	p.roles_claim = "roles";
	p.require_exp = true;
	return p;
}

static struct cable_keyset *keyset_with(const char *kid, const char *alg, const void *key,
                                        size_t len)
{
	struct cable_keyset *ks = cable_keyset_new();
	struct cable_error err = {0};

	ASSERT_NOT_NULL(ks);
	if (cable_keyset_add(ks, kid, alg, key, len, &err) != CABLE_OK)
		TEST_FAIL_("cable_keyset_add(%s): %s", alg, err.text);
	return ks;
}

static void add_key(struct cable_keyset *ks, const char *kid, const char *alg, const void *key,
                    size_t len)
{
	struct cable_error err = {0};

	if (cable_keyset_add(ks, kid, alg, key, len, &err) != CABLE_OK)
		TEST_FAIL_("cable_keyset_add(%s): %s", alg, err.text);
}

static void expect_add_fails(const char *kid, const char *alg, const void *key, size_t len,
                             const char *text_part)
{
	struct cable_keyset *ks = cable_keyset_new();
	struct cable_error err = {0};
	int rc;

	ASSERT_NOT_NULL(ks);
	rc = cable_keyset_add(ks, kid, alg, key, len, &err);
	if (rc != CABLE_EINVAL)
		TEST_FAIL_("add %s: expected EINVAL, got %s", alg, cable_status_name(rc));
	if (strstr(err.text, text_part) == NULL)
		TEST_FAIL_("add %s: \"%s\" does not mention \"%s\"", alg, err.text, text_part);
	ASSERT_EQ(cable_keyset_count(ks), 0);
	ASSERT_EQ(ERR_peek_error(), 0);
	cable_keyset_free(ks);
}

/*
 * The token comes back through a heap slot rather than a local: GCC 12 at -O2 takes a
 * local whose address went to cable_jwt_sign for a dangling pointer once inlined.
 */
static char *mint(const char *alg, const char *kid, const void *key, size_t len, const char *claims)
{
	struct cable_error err = {0};
	char **slot = calloc(1, sizeof(*slot));
	char *tok;

	ASSERT_NOT_NULL(slot);
	if (cable_jwt_sign(alg, kid, key, len, claims, strlen(claims), slot, &err) != CABLE_OK)
		TEST_FAIL_("cable_jwt_sign(%s): %s", alg, err.text);
	tok = *slot;
	free(slot);
	ASSERT_NOT_NULL(tok);
	return tok;
}

static char *mint_hs(const char *claims)
{
	return mint("HS256", NULL, KEY(HS256_SECRET), claims);
}

/* Verify and return the principal; the test must release it. */
static struct cable_principal expect_ok(const struct cable_keyset *ks,
                                        const struct cable_jwt_policy *policy, const char *tok,
                                        long long now, const char *user)
{
	struct cable_principal p = {0};
	struct cable_error err = {0};
	int rc;

	rc = cable_jwt_verify(ks, policy, tok, strlen(tok), now, &p, &err);
	if (rc != CABLE_OK)
		TEST_FAIL_("verify: %s (%s)", cable_status_name(rc), err.text);
	ASSERT_STR_EQ(p.user, user);
	ASSERT_NOT_NULL(p.claims);
	ASSERT_EQ(ERR_peek_error(), 0);
	return p;
}

static void expect_ok_release(const struct cable_keyset *ks, const struct cable_jwt_policy *policy,
                              const char *tok, long long now, const char *user)
{
	struct cable_principal p = expect_ok(ks, policy, tok, now, user);

	cable_principal_release(&p);
}

/*
 * Verify (pointer, length) and expect EAUTH with exactly `text`. Also checks what every
 * rejection must guarantee: *out untouched, no OpenSSL error left on the queue, and a
 * text that quotes no part of the token.
 */
static void expect_reject_n(const struct cable_keyset *ks, const struct cable_jwt_policy *policy,
                            const char *tok, size_t len, long long now, const char *text)
{
	struct cable_principal p, sentinel;
	struct cable_error err = {0};
	size_t i;
	int rc;

	memset(&sentinel, 0x5a, sizeof(sentinel));
	p = sentinel;
	rc = cable_jwt_verify(ks, policy, tok, len, now, &p, &err);
	if (rc != CABLE_EAUTH)
		TEST_FAIL_("expected EAUTH \"%s\", got %s (%s)", text, cable_status_name(rc),
		           rc == CABLE_OK ? p.user : err.text);
	if (strcmp(err.text, text) != 0)
		TEST_FAIL_("expected \"%s\", got \"%s\"", text, err.text);
	ASSERT_EQ(err.code, CABLE_EAUTH);
	ASSERT(memcmp(&p, &sentinel, sizeof(p)) == 0);
	ASSERT_EQ(ERR_peek_error(), 0);
	for (i = 0; i + 12 <= len; i++)
		ASSERT(memmem(err.text, strlen(err.text), tok + i, 12) == NULL);
}

static void expect_reject(const struct cable_keyset *ks, const struct cable_jwt_policy *policy,
                          const char *tok, long long now, const char *text)
{
	expect_reject_n(ks, policy, tok, strlen(tok), now, text);
}

/* Any rejection: for inputs where several reasons are equally right (fuzz-like loops). */
static void expect_eauth_n(const struct cable_keyset *ks, const struct cable_jwt_policy *policy,
                           const char *tok, size_t len, long long now)
{
	struct cable_principal p = {0};
	struct cable_error err = {0};
	int rc;

	rc = cable_jwt_verify(ks, policy, tok, len, now, &p, &err);
	if (rc != CABLE_EAUTH)
		TEST_FAIL_("expected EAUTH for %zu bytes, got %s", len, cable_status_name(rc));
	ASSERT_NULL(p.user);
	ASSERT_EQ(ERR_peek_error(), 0);
}

static char *b64u(const void *data, size_t len)
{
	char *out = malloc(len / 3 * 4 + 8);
	int n, i, o = 0;

	ASSERT_NOT_NULL(out);
	n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	for (i = 0; i < n; i++) {
		if (out[i] == '=')
			break;
		out[o++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[o] = '\0';
	return out;
}

/* Decode canonical base64url into out (large enough); returns the byte count. */
static size_t b64u_decode(const char *in, size_t len, unsigned char *out)
{
	char *std = malloc(len + 4);
	size_t i, pad = (4 - len % 4) % 4;
	int n;

	ASSERT_NOT_NULL(std);
	for (i = 0; i < len; i++)
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(std + len, '=', pad);
	n = EVP_DecodeBlock(out, (const unsigned char *)std, (int)(len + pad));
	ASSERT_GE(n, 0);
	free(std);
	return (size_t)n - pad;
}

static char *concat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *out = malloc(la + lb + lc + 3);

	ASSERT_NOT_NULL(out);
	memcpy(out, a, la);
	out[la] = '.';
	memcpy(out + la + 1, b, lb);
	out[la + 1 + lb] = '.';
	memcpy(out + la + 2 + lb, c, lc + 1);
	return out;
}

/* A token from raw header and claims text and an already encoded signature. */
static char *forge(const char *hdr, const char *claims, const char *sig_b64)
{
	char *h = b64u(hdr, strlen(hdr)), *c = b64u(claims, strlen(claims));
	char *tok = concat3(h, c, sig_b64);

	free(h);
	free(c);
	return tok;
}

/*
 * A token with a genuine HS256 signature (HS256_SECRET) over arbitrary encoded
 * segments: whatever it is rejected for, it is not the signature.
 */
static char *forge_hs_segments(const char *hdr_b64, const char *claims_b64)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char *input = concat3(hdr_b64, claims_b64, ""), *sig, *tok;

	input[strlen(input) - 1] = '\0'; /* drop the trailing dot: "h.c" */
	ASSERT_NOT_NULL(HMAC(EVP_sha256(), HS256_SECRET, (int)strlen(HS256_SECRET),
	                     (const unsigned char *)input, strlen(input), mac, &mac_len));
	sig = b64u(mac, mac_len);
	tok = concat3(hdr_b64, claims_b64, sig);
	free(sig);
	free(input);
	return tok;
}

static char *forge_hs(const char *hdr, const char *claims)
{
	char *h = b64u(hdr, strlen(hdr)), *c = b64u(claims, strlen(claims));
	char *tok = forge_hs_segments(h, c);

	free(h);
	free(c);
	return tok;
}

static const char *sig_of(const char *tok)
{
	return strrchr(tok, '.') + 1;
}

/* Decoded length of the signature segment (tokens from cable_jwt_sign are canonical). */
static size_t sig_bytes(const char *tok)
{
	return strlen(sig_of(tok)) * 3 / 4;
}

static const char REF_CLAIMS[] = "{\"sub\":\"alice\",\"exp\":2000000000,"
                                 "\"roles\":[\"viewer\",\"operator\"]}";

/* ---- Reference tokens ------------------------------------------------------------------- */

/* REF_CLAIMS signed by Python's `cryptography` with the keys above (header alg, typ[, kid]). */
static const char REF_HS256[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "A2WWEJevNS_fPTMfFV6o93LAlMV4y5gcojvH4o6IVVw";
static const char REF_HS384[] =
        "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "QkiF-vSm6tVcVXil7ZQTI0vUqS9IkMnWTyac-WB5Wh3Q2cumWjOAFgYgoGMEQ2cJ";
static const char REF_HS512[] =
        "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "6AAzBIqi80LiUI3KoXQ6yDgqrQsR4E2ojGAPgdy4WfEh7sBySEQbH2a8Vj6UxUYG5AT4qN5bdspJMnmRS2Juow";
static const char REF_RS256[] =
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "EiQqKLgvqTy4tx2i4ZXn6mfkM8maHWATjphlyv-eHesETC-m5f6ozxYNH1wpjVjDWafaJEFXBdxHHzW6Eajknva7"
        "WysNBBTbhGyr8AGO913svdYvpdPfoFOS0mqNUlLf7P42E0oGLUWQUPAOitIUrmPnMvIjQBTR0awNS5ANfvroRxCl"
        "lSqAeYNjM3UeDCwJgIIx4rlKK5lmfFDK1DsHJwTiC_VyyWID_TE_MawFZyDn3zct9FIjyowEL_9VQd1utzalMD0T"
        "S_WgEak2w-kjXhxhYHwmFyOzN8i4tvQFoOgTajgapD61NR7fHJjc7bmM3bdD8adbrlSFEeFLQIk4rg";
static const char REF_RS384[] =
        "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "b-MkqONtru2ZjS_8Y3LF8rBcplfKav8qyvGRTTsnqaPnxIIxGNo6GeQnbk_jV1GrDznlFtEGFbE7zNdU0A86wMkI"
        "GBVJhYYQ2QfMH464BfjO8uKRgAn-hROTfdAd3FSbk1jP5_C5H73ngr_tW3-s4gcpV9tNiLkn2A3bBzPeaEYPOq1T"
        "zPXDRUEKfW1zZpaKh9CuSEUW3rTh2h4wuFLNhu47yzTTuHEzp142vzfcCwEvmb7YAe6WwhyOOrLx0pjuzpBsACGM"
        "EgdvR1PznFYK4WZ_e9BvR6WVnt6s1m9_8uTNSVvf9EqooNq_ncJcBH6t5qFkO-kLnmxLwLIWus0LtA";
static const char REF_RS512[] =
        "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "Z1OrZCw9HZvBIDuOyXPQ5m9V7b4OkxqDxTayHrqjkk7sPPZxxbyVkdYuapt-k2t9aCxHE001swfWUhQnSW9TYen9"
        "lpnJ6GLOjB2U4i7hVQMCcH49ZxvTAxkZ6JRX46cJpZBDb0KbvI29FO6xLnpAik7CP-pefscw0l2_uq6Y9VEM18il"
        "FgNGMOKLw56EO0oQXy8_FCrIupDiMkr_CN8xFGeU7ABonSeuLKZJhwFKuE1FrYLJl7KCarGJSzvqKLjUu4hT0xrH"
        "U-lFvbQDtfkTaM7GfOTcOWz292ihH0kk1bMSgM1AoH59mqma8w-9DXSIhoe-YI99egjoSjrud0ksGg";
static const char REF_EDDSA[] = /* kid "ed-1" */
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImVkLTEifQ."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "PT1XzhonUDshirohgW8U0w0tTZrUjy-L_RNhI0G7zFAXHi44r1Vt8h7Gybn1Iw1njK8_YXy94VNuELT5lP1pCw";
/* ECDSA is randomized, so these can only be verified, not reproduced. */
static const char REF_ES256[] =
        "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "c6ebUYM3rfW-TEicoscv-tpQD9omTfGCUDtCvfUb3sQ0fgksv0dRUjpII2iXiuDr2tbVyKnM_9ZAp0VH3kcyzA";
static const char REF_ES384[] =
        "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsidmlld2VyIiwib3BlcmF0b3IiXX0."
        "2fi7RmfLladYS_QO6ohVetop7E3NGyN60nE9w5-p9PdQh9nlJ8JyiCdNAU01LLA3NW6neTmJVxpJK4OHdl1P4mKn"
        "ivQ-0WXXQOeRzSF36cCTlPzywYYiOtzlpX9TLWVu";

/* ---- Published vectors ------------------------------------------------------------------ */

/* A copy of `tok` with the character at `pos` replaced (a still-valid base64url char). */
static char *tamper(const char *tok, size_t pos)
{
	char *t = strdup(tok);

	ASSERT_NOT_NULL(t);
	ASSERT_LT(pos, strlen(t));
	t[pos] = t[pos] == 'A' ? 'B' : 'A';
	return t;
}

/* Tamper inside the signature, away from its last character (whose low bits are fixed). */
static char *tamper_sig(const char *tok)
{
	return tamper(tok, (size_t)(sig_of(tok) - tok) + 5);
}

static char *tamper_payload(const char *tok)
{
	return tamper(tok, (size_t)(strchr(tok, '.') - tok) + 5);
}

/* The A.1-A.3 payload has no "sub": use "iss" ("joe") as the user claim. */
static struct cable_jwt_policy policy_rfc(void)
{
	struct cable_jwt_policy p = {0};

	p.user_claim = "iss";
	p.require_exp = true;
	return p;
}

static void check_rfc7515_token(const struct cable_keyset *ks, const char *tok)
{
	struct cable_jwt_policy pol = policy_rfc();
	struct cable_principal p;
	char *t;

	p = expect_ok(ks, &pol, tok, RFC_NOW, "joe");
	ASSERT_EQ(p.exp, RFC_EXP);
	ASSERT_EQ(p.nroles, 0);
	ASSERT(json_is_true(json_object_get(p.claims, "http://example.com/is_root")));
	cable_principal_release(&p);

	expect_ok_release(ks, &pol, tok, RFC_EXP - 1, "joe");
	/* The vector expired in 2011: checked against the real clock it must fail. */
	expect_reject(ks, &pol, tok, RFC_EXP, "expired");
	expect_reject(ks, &pol, tok, NOW, "expired");

	pol.issuer = "joe";
	expect_ok_release(ks, &pol, tok, RFC_NOW, "joe");
	pol.issuer = "jane";
	expect_reject(ks, &pol, tok, RFC_NOW, "wrong iss");

	pol = policy_rfc();
	t = tamper_sig(tok);
	expect_reject(ks, &pol, t, RFC_NOW, "bad signature");
	free(t);
	t = tamper_payload(tok);
	expect_reject(ks, &pol, t, RFC_NOW, "bad signature");
	free(t);
}

static void test_rfc7515_a1_hs256(void)
{
	static const char tok[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC_PAYLOAD
	                          ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	struct cable_keyset *ks = keyset_with(NULL, "HS256", RAW(RFC_HS_KEY));

	check_rfc7515_token(ks, tok);
	cable_keyset_free(ks);
}

static void test_rfc7515_a2_rs256(void)
{
	static const char tok[] =
	        "eyJhbGciOiJSUzI1NiJ9." RFC_PAYLOAD
	        ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_"
	        "lF5YKt_O8W"
	        "2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
	        "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkS"
	        "jtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
	        "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnv"
	        "Wh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
	struct cable_keyset *ks = keyset_with(NULL, "RS256", KEY(RFC_RSA_PUB));

	check_rfc7515_token(ks, tok);
	cable_keyset_free(ks);
}

/*
 * The ECDSA twin of a token: the same R, and S replaced by n - S (n: the curve's order).
 * Both verify mathematically; with policy.ecdsa_low_s only the one with S <= n/2 (low S)
 * is accepted.
 */
static char *ecdsa_twin(const char *tok, int curve_nid, size_t coord_len)
{
	unsigned char raw[96];
	EC_GROUP *group = EC_GROUP_new_by_curve_name(curve_nid);
	BIGNUM *s, *twin = BN_new();
	size_t hc_len = (size_t)(sig_of(tok) - tok);
	char *sig, *out;

	ASSERT_NOT_NULL(group);
	ASSERT_EQ(b64u_decode(sig_of(tok), strlen(sig_of(tok)), raw), 2 * coord_len);
	s = BN_bin2bn(raw + coord_len, (int)coord_len, NULL);
	ASSERT(s && twin && BN_sub(twin, EC_GROUP_get0_order(group), s) == 1);
	ASSERT_EQ(BN_bn2binpad(twin, raw + coord_len, (int)coord_len), coord_len);
	sig = b64u(raw, 2 * coord_len);
	out = malloc(hc_len + strlen(sig) + 1);
	ASSERT_NOT_NULL(out);
	memcpy(out, tok, hc_len);
	strcpy(out + hc_len, sig);
	free(sig);
	BN_free(s);
	BN_free(twin);
	EC_GROUP_free(group);
	return out;
}

/*
 * The published A.3 signature happens to be high-S: accepted by default, refused with
 * ecdsa_low_s; its low-S twin is accepted either way.
 */
static void test_rfc7515_a3_es256(void)
{
	static const char tok[] =
	        "eyJhbGciOiJFUzI1NiJ9." RFC_PAYLOAD ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-"
	        "F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
	struct cable_keyset *ks = keyset_with(NULL, "ES256", KEY(RFC_EC_PUB));
	struct cable_jwt_policy strict = policy_rfc();
	char *low = ecdsa_twin(tok, NID_X9_62_prime256v1, 32);

	check_rfc7515_token(ks, tok);
	check_rfc7515_token(ks, low);
	strict.ecdsa_low_s = true;
	expect_reject(ks, &strict, tok, RFC_NOW, "bad signature: high-S ECDSA (not canonical)");
	expect_ok_release(ks, &strict, low, RFC_NOW, "joe");
	free(low);
	cable_keyset_free(ks);
}

/*
 * RFC 8037 A.4 signs the text "Example of Ed25519 signing", not a claim set. So the
 * vector can only get as far as the claims: failing there (and not at the signature)
 * is what proves the signature verified. A flipped signature must fail earlier.
 */
static void test_rfc8037_a4_eddsa(void)
{
	static const char tok[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	                          "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
	                          "BhVsPt9g7sVvpAr_MuM0KAg";
	struct cable_keyset *ks = keyset_with(NULL, "EdDSA", KEY(RFC_ED_PUB));
	struct cable_jwt_policy pol = policy_default();
	char *t;

	expect_reject(ks, &pol, tok, NOW, "claims are not a JSON object");
	t = tamper_sig(tok);
	expect_reject(ks, &pol, t, NOW, "bad signature");
	free(t);

	/* The RFC's private key signs tokens its public key accepts. */
	t = mint("EdDSA", NULL, KEY(RFC_ED_PRIV), REF_CLAIMS);
	expect_ok_release(ks, &pol, t, NOW, "alice");
	free(t);
	cable_keyset_free(ks);
}

/* Deterministic algorithms must produce exactly what another implementation produces. */
static void test_sign_matches_reference(void)
{
	static const struct {
		const char *alg, *kid;
		const char *key;
		size_t key_len;
		const char *expected;
	} cases[] = {
	        {"HS256", NULL, HS256_SECRET, sizeof(HS256_SECRET) - 1, REF_HS256},
	        {"HS384", NULL, HS384_SECRET, sizeof(HS384_SECRET) - 1, REF_HS384},
	        {"HS512", NULL, HS512_SECRET, sizeof(HS512_SECRET) - 1, REF_HS512},
	        {"RS256", NULL, RSA_PRIV, sizeof(RSA_PRIV) - 1, REF_RS256},
	        {"RS384", NULL, RSA_PRIV, sizeof(RSA_PRIV) - 1, REF_RS384},
	        {"RS512", NULL, RSA_PRIV, sizeof(RSA_PRIV) - 1, REF_RS512},
	        {"EdDSA", "ed-1", ED_PRIV, sizeof(ED_PRIV) - 1, REF_EDDSA},
	};
	size_t i;
	char *tok;

	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		tok = mint(cases[i].alg, cases[i].kid, cases[i].key, cases[i].key_len, REF_CLAIMS);
		ASSERT_STR_EQ(tok, cases[i].expected);
		free(tok);
	}
}

static void test_verify_reference(void)
{
	static const struct {
		const char *alg, *kid;
		const char *key;
		size_t key_len;
		const char *tok;
	} cases[] = {
	        {"HS256", NULL, HS256_SECRET, sizeof(HS256_SECRET) - 1, REF_HS256},
	        {"HS384", NULL, HS384_SECRET, sizeof(HS384_SECRET) - 1, REF_HS384},
	        {"HS512", NULL, HS512_SECRET, sizeof(HS512_SECRET) - 1, REF_HS512},
	        {"RS256", NULL, RSA_PUB, sizeof(RSA_PUB) - 1, REF_RS256},
	        {"RS384", NULL, RSA_PUB, sizeof(RSA_PUB) - 1, REF_RS384},
	        {"RS512", NULL, RSA_PUB, sizeof(RSA_PUB) - 1, REF_RS512},
	        {"RS256", NULL, RSA_CERT, sizeof(RSA_CERT) - 1, REF_RS256}, /* key from a cert */
	        {"ES256", NULL, P256_PUB, sizeof(P256_PUB) - 1, REF_ES256},
	        {"ES384", NULL, P384_PUB, sizeof(P384_PUB) - 1, REF_ES384},
	        {"EdDSA", "ed-1", ED_PUB, sizeof(ED_PUB) - 1, REF_EDDSA},
	};
	struct cable_jwt_policy pol = policy_default();
	struct cable_principal p;
	struct cable_keyset *ks;
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		ks = keyset_with(cases[i].kid, cases[i].alg, cases[i].key, cases[i].key_len);
		p = expect_ok(ks, &pol, cases[i].tok, NOW, "alice");
		ASSERT_EQ(p.exp, 2000000000);
		ASSERT_EQ(p.nroles, 2);
		ASSERT_STR_EQ(p.roles[0], "viewer");
		ASSERT_STR_EQ(p.roles[1], "operator");
		cable_principal_release(&p);
		expect_reject(ks, &pol, cases[i].tok, 2000000000 + 30, "expired");
		cable_keyset_free(ks);
	}
}

/* ---- Round trips ------------------------------------------------------------------------ */

struct alg_keys {
	const char *alg;
	const char *priv; /* what cable_jwt_sign takes */
	size_t priv_len;
	const char *pub; /* what cable_keyset_add takes */
	size_t pub_len;
	size_t sig_len; /* bytes of signature in the token */
};

#define PAIR(priv, pub) priv, sizeof(priv) - 1, pub, sizeof(pub) - 1

static const struct alg_keys every_alg[] = {
        {"HS256", PAIR(HS256_SECRET, HS256_SECRET), 32},
        {"HS384", PAIR(HS384_SECRET, HS384_SECRET), 48},
        {"HS512", PAIR(HS512_SECRET, HS512_SECRET), 64},
        {"RS256", PAIR(RSA_PRIV, RSA_PUB), 256},
        {"RS384", PAIR(RSA_PRIV, RSA_PUB), 256},
        {"RS512", PAIR(RSA_PRIV, RSA_PUB), 256},
        {"ES256", PAIR(P256_PRIV, P256_PUB), 64},
        {"ES384", PAIR(P384_PRIV, P384_PUB), 96},
        {"EdDSA", PAIR(ED_PRIV, ED_PUB), 64},
};

static void test_roundtrip_every_alg(void)
{
	static const char claims[] =
	        "{\"sub\":\"alice\",\"iss\":\"https://app.example\",\"aud\":[\"other\",\"cable\"],"
	        "\"iat\":1699999990,\"nbf\":1699999990,\"exp\":1700003600,"
	        "\"roles\":[\"operator\"],\"org\":{\"id\":7}}";
	struct cable_jwt_policy pol = policy_default();
	struct cable_principal p;
	struct cable_keyset *ks;
	size_t i, round;
	char *tok;

	pol.issuer = "https://app.example";
	pol.audience = "cable";
	for (i = 0; i < CABLE_ARRAY_LEN(every_alg); i++) {
		ks = keyset_with(NULL, every_alg[i].alg, every_alg[i].pub, every_alg[i].pub_len);
		/* ECDSA signatures vary; several rounds catch R or S with leading zero bytes. */
		for (round = 0; round < 8; round++) {
			tok = mint(every_alg[i].alg, NULL, every_alg[i].priv, every_alg[i].priv_len,
			           claims);
			ASSERT_EQ(sig_bytes(tok), every_alg[i].sig_len);
			p = expect_ok(ks, &pol, tok, NOW, "alice");
			ASSERT_EQ(p.exp, 1700003600);
			ASSERT_EQ(p.nroles, 1);
			ASSERT_STR_EQ(p.roles[0], "operator");
			ASSERT_EQ(json_integer_value(
			                  json_object_get(json_object_get(p.claims, "org"), "id")),
			          7);
			cable_principal_release(&p);
			free(tok);
		}
		cable_keyset_free(ks);
	}
}

static void test_sign_with_kid(void)
{
	static const char hdr[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"2024-05\"}";
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with("2024-05", "ES256", KEY(P256_PUB));
	char *tok, *want;

	tok = mint("ES256", "2024-05", KEY(P256_PRIV), REF_CLAIMS);
	want = b64u(hdr, strlen(hdr));
	ASSERT_EQ(strchr(tok, '.') - tok, strlen(want));
	ASSERT_MEM_EQ(tok, want, strlen(want));
	expect_ok_release(ks, &pol, tok, NOW, "alice");
	free(want);
	free(tok);
	cable_keyset_free(ks);
}

/* ---- Forgeries -------------------------------------------------------------------------- */

static void test_wrong_key(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks;
	char *tok;

	ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	tok = mint("HS256", NULL, KEY(OTHER_SECRET), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	cable_keyset_free(ks);

	ks = keyset_with(NULL, "RS256", KEY(RFC_RSA_PUB));
	expect_reject(ks, &pol, REF_RS256, NOW, "bad signature");
	cable_keyset_free(ks);

	ks = keyset_with(NULL, "ES256", KEY(RFC_EC_PUB));
	expect_reject(ks, &pol, REF_ES256, NOW, "bad signature");
	cable_keyset_free(ks);

	ks = keyset_with("ed-1", "EdDSA", KEY(ED2_PUB));
	expect_reject(ks, &pol, REF_EDDSA, NOW, "bad signature");
	cable_keyset_free(ks);
}

static void test_alg_none(void)
{
	static const char *const headers[] = {
	        "{\"alg\":\"none\"}",
	        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
	        "{\"alg\":\"none\",\"kid\":\"k1\"}",
	};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	size_t i;
	char *tok;

	/* A keyset holding every algorithm, with and without kid: none of them helps. */
	add_key(ks, NULL, "HS256", KEY(HS256_SECRET));
	add_key(ks, "k1", "HS256", KEY(OTHER_SECRET));
	add_key(ks, NULL, "RS256", KEY(RSA_PUB));
	add_key(ks, NULL, "EdDSA", KEY(ED_PUB));
	for (i = 0; i < CABLE_ARRAY_LEN(headers); i++) {
		tok = forge(headers[i], REF_CLAIMS, "");
		expect_reject(ks, &pol, tok, NOW, "alg none not accepted");
		free(tok);
		/* ... nor with a signature that is valid for another header */
		tok = forge(headers[i], REF_CLAIMS, sig_of(REF_HS256));
		expect_reject(ks, &pol, tok, NOW, "alg none not accepted");
		free(tok);
	}
	tok = forge("{\"alg\":\"None\"}", REF_CLAIMS, "");
	expect_reject(ks, &pol, tok, NOW, "unsupported alg");
	free(tok);
	tok = forge("{\"alg\":\"\"}", REF_CLAIMS, "");
	expect_reject(ks, &pol, tok, NOW, "unsupported alg");
	free(tok);
	cable_keyset_free(ks);
}

/*
 * The classic confusion: the verifier holds an RSA public key, the attacker signs an
 * HS256 token using that (public) PEM as the HMAC secret. The key is pinned to RS256,
 * so the header's alg cannot make us use it as an HMAC key.
 */
static void test_alg_confusion(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks;
	char *tok;

	ks = keyset_with(NULL, "RS256", KEY(RSA_PUB));
	tok = mint("HS256", NULL, KEY(RSA_PUB), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "alg mismatch");
	free(tok);
	/* The same HMAC signature under an RS256 header: the wrong kind of signature. */
	tok = forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", REF_CLAIMS, sig_of(REF_HS256));
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	cable_keyset_free(ks);

	/* With a kid the key is chosen by the kid, and its pinned alg still decides. */
	ks = keyset_with("rsa-1", "RS256", KEY(RSA_PUB));
	tok = mint("HS256", "rsa-1", KEY(RSA_PUB), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "alg mismatch");
	free(tok);
	cable_keyset_free(ks);

	/* Other pairs: an ES384 token for an ES256 key, EdDSA for RSA. */
	ks = keyset_with(NULL, "ES256", KEY(P256_PUB));
	expect_reject(ks, &pol, REF_ES384, NOW, "alg mismatch");
	cable_keyset_free(ks);
	ks = keyset_with("ed-1", "RS256", KEY(RSA_PUB));
	expect_reject(ks, &pol, REF_EDDSA, NOW, "alg mismatch");
	cable_keyset_free(ks);

	/* And the configuration mistake that would enable it is refused up front. */
	expect_add_fails(NULL, "HS256", KEY(RSA_PUB), "looks like a PEM key");
	expect_add_fails(NULL, "HS512", KEY(RSA_PUB), "looks like a PEM key");
}

static void test_truncated(void)
{
	static const char *const toks[] = {REF_HS256, REF_RS256, REF_ES256, REF_EDDSA};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	size_t i, n, len;

	add_key(ks, NULL, "HS256", KEY(HS256_SECRET));
	add_key(ks, NULL, "RS256", KEY(RSA_PUB));
	add_key(ks, NULL, "ES256", KEY(P256_PUB));
	add_key(ks, "ed-1", "EdDSA", KEY(ED_PUB));
	for (i = 0; i < CABLE_ARRAY_LEN(toks); i++) {
		len = strlen(toks[i]);
		expect_ok_release(ks, &pol, toks[i], NOW, "alice");
		/* every proper prefix and every proper suffix */
		for (n = 0; n < len; n++) {
			expect_eauth_n(ks, &pol, toks[i], n, NOW);
			expect_eauth_n(ks, &pol, toks[i] + len - n, n, NOW);
		}
	}
	expect_reject_n(ks, &pol, REF_HS256, 0, NOW, "empty token");
	expect_reject_n(ks, &pol, NULL, 0, NOW, "empty token");
	/* a signature one character short, and one with a character too many */
	expect_reject_n(ks, &pol, REF_HS256, strlen(REF_HS256) - 1, NOW, "bad base64 in signature");
	cable_keyset_free(ks);
}

static void test_segments(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	char buf[512];

	snprintf(buf, sizeof(buf), "%s.", REF_HS256);
	expect_reject(ks, &pol, buf, NOW, "malformed token");
	snprintf(buf, sizeof(buf), "%s.AAAA", REF_HS256);
	expect_reject(ks, &pol, buf, NOW, "malformed token");
	snprintf(buf, sizeof(buf), "%s..", REF_HS256);
	expect_reject(ks, &pol, buf, NOW, "malformed token");
	expect_reject(ks, &pol, "abc", NOW, "malformed token");
	expect_reject(ks, &pol, "abc.def", NOW, "malformed token");
	expect_reject(ks, &pol, "..", NOW, "header is not a JSON object");
	expect_reject(ks, &pol, "a.b.c.d.e", NOW, "malformed token");
	/* JWE compact serialization: five segments */
	expect_reject(ks, &pol,
	              "eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.QR1O.AxY8.KDlT.fiK5",
	              NOW, "malformed token");
	cable_keyset_free(ks);
}

static void test_bad_base64(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	const char *dot1 = strchr(REF_HS256, '.');
	size_t hlen = (size_t)(dot1 - REF_HS256), len = strlen(REF_HS256);
	char buf[512], *t, *h;
	const char *p;

	/* padding on the header, and on the signature */
	snprintf(buf, sizeof(buf), "%.*s==%s", (int)hlen, REF_HS256, dot1);
	expect_reject(ks, &pol, buf, NOW, "bad base64 in header");
	snprintf(buf, sizeof(buf), "%s=", REF_HS256);
	expect_reject(ks, &pol, buf, NOW, "bad base64 in signature");

	/* the standard alphabet's '+' and '/' instead of '-' and '_' */
	p = strchr(sig_of(REF_HS256), '_');
	ASSERT_NOT_NULL(p);
	t = strdup(REF_HS256);
	t[p - REF_HS256] = '/';
	expect_reject(ks, &pol, t, NOW, "bad base64 in signature");
	free(t);
	t = strdup(REF_HS256);
	t[3] = '+';
	expect_reject(ks, &pol, t, NOW, "bad base64 in header");
	free(t);

	/* whitespace and a NUL inside the token */
	snprintf(buf, sizeof(buf), " %s", REF_HS256);
	expect_reject(ks, &pol, buf, NOW, "bad base64 in header");
	snprintf(buf, sizeof(buf), "%s\n", REF_HS256);
	expect_reject(ks, &pol, buf, NOW, "bad base64 in signature");
	memcpy(buf, REF_HS256, len + 1);
	buf[10] = '\0';
	expect_reject_n(ks, &pol, buf, len, NOW, "bad base64 in header");

	/*
	 * Non-canonical last character: 32 bytes encode to 43 characters whose last one
	 * carries 4 bits and 2 zero bits. 'w' (48) and 'x' (49) differ only in those.
	 */
	ASSERT_EQ(REF_HS256[len - 1], 'w');
	t = strdup(REF_HS256);
	t[len - 1] = 'x';
	expect_reject(ks, &pol, t, NOW, "bad base64 in signature");
	free(t);

	/* a header of 4n+1 characters can encode nothing */
	h = b64u("{\"alg\":\"HS256\"}", 15);
	snprintf(buf, sizeof(buf), "%sA%s", h, dot1);
	expect_reject(ks, &pol, buf, NOW, "bad base64 in header");
	free(h);

	/* a payload that is not base64url, with a genuine signature over it */
	h = b64u("{\"alg\":\"HS256\"}", 15);
	t = forge_hs_segments(h, "eyJzdWIiOiJhbGljZSJ9*");
	expect_reject(ks, &pol, t, NOW, "bad base64 in payload");
	free(t);
	free(h);
	cable_keyset_free(ks);
}

/* Every header and payload below carries a genuine signature: only their content is wrong. */
static void test_header_and_claims_syntax(void)
{
	static const struct {
		const char *hdr, *claims, *text;
	} cases[] = {
	        {"[\"HS256\"]", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "header is not a JSON object"},
	        {"alg=HS256", "{\"sub\":\"a\",\"exp\":1700000100}", "header is not a JSON object"},
	        {"{\"alg\":\"HS256\"} x", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "header is not a JSON object"},
	        {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "header is not a JSON object"},
	        {"{\"alg\":\"HS256\\u0000\"}", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "header is not a JSON object"},
	        {"{\"typ\":\"JWT\"}", "{\"sub\":\"a\",\"exp\":1700000100}", "missing alg"},
	        {"{\"alg\":256}", "{\"sub\":\"a\",\"exp\":1700000100}", "missing alg"},
	        {"{\"alg\":[\"HS256\"]}", "{\"sub\":\"a\",\"exp\":1700000100}", "missing alg"},
	        {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "crit header not supported"},
	        {"{\"alg\":\"HS256\",\"crit\":[]}", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "crit header not supported"},
	        {"{\"alg\":\"HS256\",\"kid\":5}", "{\"sub\":\"a\",\"exp\":1700000100}", "bad kid"},
	        {"{\"alg\":\"HS256\",\"kid\":null}", "{\"sub\":\"a\",\"exp\":1700000100}",
	         "bad kid"},
	        {"{\"alg\":\"ES512\"}", "{\"sub\":\"a\",\"exp\":1700000100}", "unsupported alg"},
	        {"{\"alg\":\"PS256\"}", "{\"sub\":\"a\",\"exp\":1700000100}", "unsupported alg"},
	        {"{\"alg\":\"hs256\"}", "{\"sub\":\"a\",\"exp\":1700000100}", "unsupported alg"},
	        {"{\"alg\":\"HS256\"}", "[{\"sub\":\"a\"}]", "claims are not a JSON object"},
	        {"{\"alg\":\"HS256\"}", "\"alice\"", "claims are not a JSON object"},
	        {"{\"alg\":\"HS256\"}", "", "claims are not a JSON object"},
	        {"{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1700000100}",
	         "claims are not a JSON object"},
	        {"{\"alg\":\"HS256\"}", "{\"sub\":\"\xff\",\"exp\":1700000100}",
	         "claims are not a JSON object"},
	        {"{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000100",
	         "claims are not a JSON object"},
	};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	size_t i;
	char *tok;

	/* The baseline: a header we accept with the same claims. */
	tok = forge_hs("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000100}");
	expect_ok_release(ks, &pol, tok, NOW, "a");
	free(tok);
	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		tok = forge_hs(cases[i].hdr, cases[i].claims);
		expect_reject(ks, &pol, tok, NOW, cases[i].text);
		free(tok);
	}
	cable_keyset_free(ks);
}

/* Signatures of the wrong shape for their algorithm. */
static void test_signature_shapes(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	unsigned char raw[200];
	unsigned char *der = NULL, *p;
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	char *sig, *tok, *hdr_claims;
	size_t hc_len;
	int der_len;

	add_key(ks, NULL, "ES256", KEY(P256_PUB));
	add_key(ks, NULL, "EdDSA", KEY(ED_PUB));
	add_key(ks, NULL, "RS256", KEY(RSA_PUB));
	add_key(ks, NULL, "HS256", KEY(HS256_SECRET));
	hc_len = (size_t)(sig_of(REF_ES256) - REF_ES256);
	hdr_claims = strndup(REF_ES256, hc_len); /* "header.claims." */

	/* The ES256 signature as DER (what some libraries wrongly emit): refused. */
	ASSERT_EQ(b64u_decode(sig_of(REF_ES256), strlen(sig_of(REF_ES256)), raw), 64);
	es = ECDSA_SIG_new();
	r = BN_bin2bn(raw, 32, NULL);
	s = BN_bin2bn(raw + 32, 32, NULL);
	ASSERT(es && r && s && ECDSA_SIG_set0(es, r, s) == 1);
	der_len = i2d_ECDSA_SIG(es, NULL);
	ASSERT_GT(der_len, 0);
	der = malloc((size_t)der_len);
	p = der;
	ASSERT_EQ(i2d_ECDSA_SIG(es, &p), der_len);
	ECDSA_SIG_free(es);
	sig = b64u(der, (size_t)der_len);
	tok = malloc(hc_len + strlen(sig) + 1);
	sprintf(tok, "%s%s", hdr_claims, sig);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	free(sig);
	free(der);

	/* The genuine R||S one byte short, one byte long, and all zero. */
	sig = b64u(raw, 63);
	tok = malloc(hc_len + strlen(sig) + 1);
	sprintf(tok, "%s%s", hdr_claims, sig);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	free(sig);
	sig = b64u(raw, 65);
	tok = malloc(hc_len + strlen(sig) + 1);
	sprintf(tok, "%s%s", hdr_claims, sig);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	free(sig);
	memset(raw, 0, 64);
	sig = b64u(raw, 64);
	tok = malloc(hc_len + strlen(sig) + 1);
	sprintf(tok, "%s%s", hdr_claims, sig);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	free(sig);
	free(hdr_claims);

	/* Empty signatures for every family. */
	tok = forge("{\"alg\":\"EdDSA\"}", REF_CLAIMS, "");
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	tok = forge("{\"alg\":\"RS256\"}", REF_CLAIMS, "");
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	tok = forge("{\"alg\":\"HS256\"}", REF_CLAIMS, "");
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	/* A truncated HMAC (the first 16 bytes of the right one). */
	ASSERT_EQ(b64u_decode(sig_of(REF_HS256), strlen(sig_of(REF_HS256)), raw), 32);
	sig = b64u(raw, 16);
	tok = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", REF_CLAIMS, sig);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	free(sig);
	cable_keyset_free(ks);
}

/*
 * ECDSA malleability: the high-S twin (r, n - s) of a valid low-S signature verifies
 * mathematically. By default it is accepted (OpenSSL-based signers produce either
 * half); with ecdsa_low_s a token must have one spelling, so it is refused.
 */
static void test_ecdsa_high_s(void)
{
	static const struct {
		const char *tok, *alg;
		int nid;
		size_t coord_len;
		const unsigned char *pub;
		size_t pub_len;
	} cases[] = {
	        {REF_ES256, "ES256", NID_X9_62_prime256v1, 32, KEY(P256_PUB)},
	        {REF_ES384, "ES384", NID_secp384r1, 48, KEY(P384_PUB)},
	};
	struct cable_jwt_policy pol = policy_default(), strict = policy_default();
	struct cable_keyset *ks;
	char *high, *back;
	size_t i;

	strict.ecdsa_low_s = true;
	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		ks = keyset_with(NULL, cases[i].alg, cases[i].pub, cases[i].pub_len);
		expect_ok_release(ks, &pol, cases[i].tok, NOW, "alice");
		expect_ok_release(ks, &strict, cases[i].tok, NOW, "alice");
		high = ecdsa_twin(cases[i].tok, cases[i].nid, cases[i].coord_len);
		ASSERT(strcmp(high, cases[i].tok) != 0);
		expect_ok_release(ks, &pol, high, NOW, "alice");
		expect_reject(ks, &strict, high, NOW,
		              "bad signature: high-S ECDSA (not canonical)");
		/* The twin of the twin is the original again: the test built the right S. */
		back = ecdsa_twin(high, cases[i].nid, cases[i].coord_len);
		ASSERT_STR_EQ(back, cases[i].tok);
		free(back);
		free(high);
		cable_keyset_free(ks);
	}
}

/* Every byte of a signature counts: flip the first, a middle and the last one. */
static void test_every_signature_byte_counts(void)
{
	static const char *const toks[] = {REF_HS256, REF_HS384, REF_HS512, REF_RS256, REF_RS384,
	                                   REF_RS512, REF_ES256, REF_ES384, REF_EDDSA};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	unsigned char raw[512];
	size_t i, n, k, hc_len, pos[3];
	char *sig, *tok;

	add_key(ks, NULL, "HS256", KEY(HS256_SECRET));
	add_key(ks, NULL, "HS384", KEY(HS384_SECRET));
	add_key(ks, NULL, "HS512", KEY(HS512_SECRET));
	add_key(ks, NULL, "RS256", KEY(RSA_PUB));
	add_key(ks, NULL, "RS384", KEY(RSA_PUB));
	add_key(ks, NULL, "RS512", KEY(RSA_PUB));
	add_key(ks, NULL, "ES256", KEY(P256_PUB));
	add_key(ks, NULL, "ES384", KEY(P384_PUB));
	add_key(ks, "ed-1", "EdDSA", KEY(ED_PUB));
	for (i = 0; i < CABLE_ARRAY_LEN(toks); i++) {
		expect_ok_release(ks, &pol, toks[i], NOW, "alice");
		hc_len = (size_t)(sig_of(toks[i]) - toks[i]);
		n = b64u_decode(sig_of(toks[i]), strlen(sig_of(toks[i])), raw);
		pos[0] = 0;
		pos[1] = n / 2;
		pos[2] = n - 1;
		for (k = 0; k < 3; k++) {
			raw[pos[k]] ^= 0x01;
			sig = b64u(raw, n);
			tok = malloc(hc_len + strlen(sig) + 1);
			ASSERT_NOT_NULL(tok);
			memcpy(tok, toks[i], hc_len);
			strcpy(tok + hc_len, sig);
			expect_reject(ks, &pol, tok, NOW, "bad signature");
			free(tok);
			free(sig);
			raw[pos[k]] ^= 0x01;
		}
	}
	cable_keyset_free(ks);
}

/* ---- Claims ----------------------------------------------------------------------------- */

struct claim_case {
	const char *claims;
	const char *text; /* NULL: accepted */
};

static void run_claim_cases(const struct cable_jwt_policy *pol, long long now,
                            const struct claim_case *cases, size_t n)
{
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	size_t i;
	char *tok;

	for (i = 0; i < n; i++) {
		tok = mint_hs(cases[i].claims);
		if (cases[i].text == NULL)
			expect_ok_release(ks, pol, tok, now, "alice");
		else
			expect_reject(ks, pol, tok, now, cases[i].text);
		free(tok);
	}
	cable_keyset_free(ks);
}

static void test_exp_nbf_leeway(void)
{
	/* NOW = 1700000000, leeway 30 */
	static const struct claim_case with_leeway[] = {
	        {"{\"sub\":\"alice\",\"exp\":1700003600}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1699999900}", "expired"},
	        {"{\"sub\":\"alice\",\"exp\":1699999970}", "expired"}, /* now == exp + leeway */
	        {"{\"sub\":\"alice\",\"exp\":1699999971}", NULL},      /* within leeway */
	        {"{\"sub\":\"alice\",\"exp\":1700000000}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000031}", "not yet valid"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000030}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000010}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1600000000}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1699999969.5}", "expired"},
	        {"{\"sub\":\"alice\",\"exp\":1699999970.5}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000030.5}", "not yet valid"},
	        {"{\"sub\":\"alice\",\"exp\":\"1700003600\"}", "bad exp"},
	        {"{\"sub\":\"alice\",\"exp\":true}", "bad exp"},
	        {"{\"sub\":\"alice\",\"exp\":null}", "bad exp"},
	        {"{\"sub\":\"alice\",\"exp\":[1700003600]}", "bad exp"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":\"0\"}", "bad nbf"},
	        {"{\"sub\":\"alice\"}", "missing exp"},
	        {"{\"sub\":\"alice\",\"exp\":9223372036854775807}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1e300}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":-1e300}", "expired"},
	        {"{\"sub\":\"alice\",\"exp\":-9223372036854775808}", "expired"},
	        {"{\"sub\":\"alice\",\"exp\":1e300,\"nbf\":9223372036854775807}", "not yet valid"},
	};
	/* leeway 0: the edges move by 30 s */
	static const struct claim_case no_leeway[] = {
	        {"{\"sub\":\"alice\",\"exp\":1700000000}", "expired"},
	        {"{\"sub\":\"alice\",\"exp\":1700000001}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700000000.5}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000001}", "not yet valid"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000000}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"nbf\":1700000000.5}", "not yet valid"},
	        {"{\"sub\":\"alice\"}", NULL}, /* require_exp false */
	};
	struct cable_jwt_policy pol = policy_default();

	run_claim_cases(&pol, NOW, with_leeway, CABLE_ARRAY_LEN(with_leeway));
	pol.leeway = 0;
	pol.require_exp = false;
	run_claim_cases(&pol, NOW, no_leeway, CABLE_ARRAY_LEN(no_leeway));
	/* A negative leeway is no leeway, not a stricter clock. */
	pol.leeway = -100;
	run_claim_cases(&pol, NOW, no_leeway, CABLE_ARRAY_LEN(no_leeway));
	/* An absurd clock must not overflow. */
	pol.leeway = 30;
	run_claim_cases(&pol, LLONG_MAX,
	                (const struct claim_case[]){
	                        {"{\"sub\":\"alice\",\"exp\":9223372036854775777}", "expired"}},
	                1);
	run_claim_cases(
	        &pol, LLONG_MIN,
	        (const struct claim_case[]){
	                {"{\"sub\":\"alice\",\"exp\":1,\"nbf\":-9223372036854775808}", NULL}},
	        1);
}

static void test_principal_exp(void)
{
	static const struct {
		const char *claims;
		long long exp;
	} cases[] = {
	        {"{\"sub\":\"alice\",\"exp\":1700003600}", 1700003600},
	        {"{\"sub\":\"alice\",\"exp\":1700003600.9}", 1700003600}, /* rounded down */
	        {"{\"sub\":\"alice\",\"exp\":1e300}", LLONG_MAX},
	        {"{\"sub\":\"alice\"}", 0},
	};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	struct cable_principal p;
	size_t i;
	char *tok;

	pol.require_exp = false;
	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		tok = mint_hs(cases[i].claims);
		p = expect_ok(ks, &pol, tok, NOW, "alice");
		ASSERT_EQ(p.exp, cases[i].exp);
		cable_principal_release(&p);
		free(tok);
	}
	cable_keyset_free(ks);
}

static void test_iss_aud(void)
{
	static const struct claim_case cases[] = {
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":\"cable\"}",
	         NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":[\"api\",\"cable\"]}",
	         NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"aud\":\"cable\"}", "missing iss"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://evil.example\","
	         "\"aud\":\"cable\"}",
	         "wrong iss"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example/\","
	         "\"aud\":\"cable\"}",
	         "wrong iss"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://APP.example\","
	         "\"aud\":\"cable\"}",
	         "wrong iss"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":[\"https://app.example\"],"
	         "\"aud\":\"cable\"}",
	         "wrong iss"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\"}",
	         "missing aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":\"api\"}",
	         "wrong aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":\"cable2\"}",
	         "wrong aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":[]}",
	         "wrong aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":[\"api\",\"web\"]}",
	         "wrong aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":[\"cable\",7]}",
	         "bad aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://app.example\","
	         "\"aud\":{\"cable\":true}}",
	         "bad aud"},
	};
	/* No audience configured: a token addressed to someone is not for us (RFC 7519 4.1.3). */
	static const struct claim_case no_audience[] = {
	        {"{\"sub\":\"alice\",\"exp\":1700003600}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"anyone\"}", NULL},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"aud\":\"cable\"}", "unexpected aud"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"aud\":[]}", "unexpected aud"},
	};
	struct cable_jwt_policy pol = policy_default();

	pol.issuer = "https://app.example";
	pol.audience = "cable";
	run_claim_cases(&pol, NOW, cases, CABLE_ARRAY_LEN(cases));
	pol = policy_default();
	run_claim_cases(&pol, NOW, no_audience, CABLE_ARRAY_LEN(no_audience));
}

static void test_user_claim(void)
{
	static const struct {
		const char *user_claim, *claims, *user, *text;
	} cases[] = {
	        {NULL, "{\"sub\":\"alice\",\"exp\":1700003600}", "alice", NULL},
	        {NULL, "{\"sub\":42,\"exp\":1700003600}", "42", NULL},
	        {NULL, "{\"sub\":-7,\"exp\":1700003600}", "-7", NULL},
	        {NULL, "{\"sub\":9223372036854775807,\"exp\":1700003600}", "9223372036854775807",
	         NULL},
	        {NULL, "{\"sub\":\"al/ice#+\",\"exp\":1700003600}", "al/ice#+", NULL},
	        {NULL, "{\"sub\":\"\xc3\xa9mile\",\"exp\":1700003600}", "\xc3\xa9mile", NULL},
	        {NULL, "{\"exp\":1700003600}", NULL, "missing sub"},
	        {NULL, "{\"user_id\":\"alice\",\"exp\":1700003600}", NULL, "missing sub"},
	        {NULL, "{\"sub\":\"\",\"exp\":1700003600}", NULL, "bad sub"},
	        {NULL, "{\"sub\":null,\"exp\":1700003600}", NULL, "bad sub"},
	        {NULL, "{\"sub\":4.2,\"exp\":1700003600}", NULL, "bad sub"},
	        {NULL, "{\"sub\":true,\"exp\":1700003600}", NULL, "bad sub"},
	        {NULL, "{\"sub\":[\"alice\"],\"exp\":1700003600}", NULL, "bad sub"},
	        {NULL, "{\"sub\":{\"id\":1},\"exp\":1700003600}", NULL, "bad sub"},
	        {"user_id", "{\"sub\":\"x\",\"user_id\":\"bob\",\"exp\":1700003600}", "bob", NULL},
	        {"user_id", "{\"sub\":\"x\",\"exp\":1700003600}", NULL, "missing user_id"},
	};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	size_t i;
	char *tok;

	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		pol.user_claim = cases[i].user_claim;
		tok = mint_hs(cases[i].claims);
		if (cases[i].text == NULL)
			expect_ok_release(ks, &pol, tok, NOW, cases[i].user);
		else
			expect_reject(ks, &pol, tok, NOW, cases[i].text);
		free(tok);
	}
	cable_keyset_free(ks);
}

static void test_roles_claim(void)
{
	static const struct claim_case bad[] = {
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":\"admin\"}", "bad roles"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":[\"ok\",1]}", "bad roles"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":[\"ok\",null]}", "bad roles"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":[[\"admin\"]]}", "bad roles"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":{\"admin\":true}}", "bad roles"},
	        {"{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":null}", "bad roles"},
	};
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	struct cable_principal p;
	char *tok;

	run_claim_cases(&pol, NOW, bad, CABLE_ARRAY_LEN(bad));

	tok = mint_hs("{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":[\"a\",\"b\",\"c\"]}");
	p = expect_ok(ks, &pol, tok, NOW, "alice");
	ASSERT_EQ(p.nroles, 3);
	ASSERT_STR_EQ(p.roles[2], "c");
	cable_principal_release(&p);
	free(tok);

	tok = mint_hs("{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":[]}");
	p = expect_ok(ks, &pol, tok, NOW, "alice");
	ASSERT_EQ(p.nroles, 0);
	cable_principal_release(&p);
	free(tok);

	tok = mint_hs("{\"sub\":\"alice\",\"exp\":1700003600}");
	p = expect_ok(ks, &pol, tok, NOW, "alice");
	ASSERT_EQ(p.nroles, 0);
	cable_principal_release(&p);
	free(tok);

	/* Another claim name; and with no roles claim configured the claim is ignored. */
	pol.roles_claim = "groups";
	tok = mint_hs("{\"sub\":\"alice\",\"exp\":1700003600,\"roles\":7,\"groups\":[\"ops\"]}");
	p = expect_ok(ks, &pol, tok, NOW, "alice");
	ASSERT_EQ(p.nroles, 1);
	ASSERT_STR_EQ(p.roles[0], "ops");
	cable_principal_release(&p);
	pol.roles_claim = NULL;
	p = expect_ok(ks, &pol, tok, NOW, "alice");
	ASSERT_EQ(p.nroles, 0);
	ASSERT_NULL(p.roles);
	cable_principal_release(&p);
	free(tok);
	cable_keyset_free(ks);
}

/* ---- Key selection ---------------------------------------------------------------------- */

static void test_kid_rotation(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	char *old_tok, *new_tok, *tok;

	/* Rotation: the old key stays until its last token has expired. */
	add_key(ks, "2024-01", "HS256", KEY(HS256_SECRET));
	add_key(ks, "2024-02", "HS256", KEY(OTHER_SECRET));
	add_key(ks, "ed-1", "EdDSA", KEY(ED_PUB));
	ASSERT_EQ(cable_keyset_count(ks), 3);

	old_tok = mint("HS256", "2024-01", KEY(HS256_SECRET), REF_CLAIMS);
	new_tok = mint("HS256", "2024-02", KEY(OTHER_SECRET), REF_CLAIMS);
	expect_ok_release(ks, &pol, old_tok, NOW, "alice");
	expect_ok_release(ks, &pol, new_tok, NOW, "alice");
	expect_ok_release(ks, &pol, REF_EDDSA, NOW, "alice");

	/* A kid names the key: the other key's signature does not count. */
	tok = mint("HS256", "2024-02", KEY(HS256_SECRET), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	tok = mint("HS256", "2023-12", KEY(HS256_SECRET), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "unknown kid");
	free(tok);
	tok = mint("HS256", "", KEY(HS256_SECRET), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "unknown kid");
	free(tok);
	/* Without a kid only kid-less keys are candidates, and there are none. */
	expect_reject(ks, &pol, REF_HS256, NOW, "alg mismatch");
	/* kid of an EdDSA key on an HS256 token */
	tok = mint("HS256", "ed-1", KEY(HS256_SECRET), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "alg mismatch");
	free(tok);

	/* After the rotation completes the old kid is gone. */
	cable_keyset_free(ks);
	ks = keyset_with("2024-02", "HS256", KEY(OTHER_SECRET));
	expect_reject(ks, &pol, old_tok, NOW, "unknown kid");
	expect_ok_release(ks, &pol, new_tok, NOW, "alice");
	free(old_tok);
	free(new_tok);
	cable_keyset_free(ks);
}

static void test_kidless_rotation(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	char *tok;

	/* Kid-less keys of the same alg are tried in order. */
	add_key(ks, NULL, "HS256", KEY(OTHER_SECRET));
	add_key(ks, NULL, "HS256", KEY(HS256_SECRET));
	add_key(ks, NULL, "ES256", KEY(RFC_EC_PUB));
	add_key(ks, NULL, "ES256", KEY(P256_PUB));
	expect_ok_release(ks, &pol, REF_HS256, NOW, "alice");
	expect_ok_release(ks, &pol, REF_ES256, NOW, "alice");
	tok = mint("HS256", NULL, KEY(OTHER_SECRET), REF_CLAIMS);
	expect_ok_release(ks, &pol, tok, NOW, "alice");
	free(tok);
	tok = mint("HS256", NULL, "a-third-secret-nobody-configured!", 33, REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "bad signature");
	free(tok);
	/* a kid in the token never falls back to the kid-less keys */
	tok = mint("HS256", "k", KEY(HS256_SECRET), REF_CLAIMS);
	expect_reject(ks, &pol, tok, NOW, "unknown kid");
	free(tok);
	expect_reject(ks, &pol, REF_RS256, NOW, "alg mismatch");
	cable_keyset_free(ks);

	/* An empty keyset accepts nothing. */
	ks = cable_keyset_new();
	ASSERT_EQ(cable_keyset_count(ks), 0);
	expect_reject(ks, &pol, REF_HS256, NOW, "alg mismatch");
	expect_reject(ks, &pol, REF_EDDSA, NOW, "unknown kid");
	cable_keyset_free(ks);
}

/* ---- Key loading ------------------------------------------------------------------------ */

static void test_keyset_add_rejects(void)
{
	struct cable_keyset *ks;
	struct cable_error err = {0};

	/* HMAC secrets shorter than the hash (RFC 7518 3.2) */
	expect_add_fails(NULL, "HS256", HS256_SECRET, 31, "too short");
	expect_add_fails(NULL, "HS384", HS384_SECRET, 47, "too short");
	expect_add_fails(NULL, "HS512", HS512_SECRET, 63, "too short");
	expect_add_fails(NULL, "HS384", KEY(HS256_SECRET), "too short");
	expect_add_fails(NULL, "HS256", "", 0, "too short");
	/* algorithms we do not offer */
	expect_add_fails(NULL, "none", KEY(HS256_SECRET), "unknown alg");
	expect_add_fails(NULL, "hs256", KEY(HS256_SECRET), "unknown alg");
	expect_add_fails(NULL, "PS256", KEY(RSA_PUB), "unknown alg");
	expect_add_fails(NULL, "ES512", KEY(P521_PUB), "unknown alg");
	/* key type, size and curve must fit the pinned alg */
	expect_add_fails(NULL, "RS256", KEY(P256_PUB), "needs an RSA key");
	expect_add_fails(NULL, "RS256", KEY(RSA1024_PUB), "shorter than 2048");
	expect_add_fails(NULL, "ES256", KEY(RSA_PUB), "needs an EC key");
	expect_add_fails(NULL, "ES256", KEY(P384_PUB), "prime256v1");
	expect_add_fails(NULL, "ES384", KEY(P256_PUB), "secp384r1");
	expect_add_fails(NULL, "ES256", KEY(P521_PUB), "prime256v1");
	expect_add_fails(NULL, "EdDSA", KEY(ED448_PUB), "Ed25519");
	expect_add_fails(NULL, "EdDSA", KEY(P256_PUB), "Ed25519");
	/* not a public key: garbage, a secret, a private key (never needed to verify) */
	expect_add_fails(NULL, "RS256", KEY(HS256_SECRET), "unparsable");
	expect_add_fails(NULL, "RS256", "", 0, "unparsable");
	expect_add_fails(NULL, "RS256", KEY(RSA_PRIV), "unparsable");
	expect_add_fails(NULL, "EdDSA", KEY(ED_PRIV), "unparsable");
	/* kids */
	expect_add_fails("", "HS256", KEY(HS256_SECRET), "empty kid");
	ks = keyset_with("k1", "HS256", KEY(HS256_SECRET));
	ASSERT_EQ(cable_keyset_add(ks, "k1", "EdDSA", KEY(ED_PUB), &err), CABLE_EINVAL);
	ASSERT(strstr(err.text, "duplicate kid") != NULL);
	ASSERT_EQ(cable_keyset_count(ks), 1);
	/* a failed add leaves the set usable */
	add_key(ks, "k2", "EdDSA", KEY(ED_PUB));
	add_key(ks, NULL, "HS256", KEY(HS256_SECRET));
	add_key(ks, NULL, "HS256", KEY(HS256_SECRET)); /* same secret twice without kid: harmless */
	ASSERT_EQ(cable_keyset_count(ks), 4);
	ASSERT_EQ(cable_keyset_add(NULL, NULL, "HS256", KEY(HS256_SECRET), &err), CABLE_EINVAL);
	ASSERT_EQ(cable_keyset_add(ks, NULL, NULL, KEY(HS256_SECRET), NULL), CABLE_EINVAL);
	ASSERT_EQ(cable_keyset_add(ks, NULL, "HS256", NULL, 32, NULL), CABLE_EINVAL);
	cable_keyset_free(ks);
	cable_keyset_free(NULL);
	ASSERT_EQ(cable_keyset_count(NULL), 0);
	ASSERT_EQ(ERR_peek_error(), 0);

	/* a longer-than-minimum secret is fine, and so is binary data */
	ks = keyset_with(NULL, "HS256", RAW(RFC_HS_KEY));
	cable_keyset_free(ks);
}

/* Many keys: growth of the set, and a kid found among them. */
static void test_many_keys(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = cable_keyset_new();
	char kid[16];
	int i;

	for (i = 0; i < 40; i++) {
		snprintf(kid, sizeof(kid), "k%d", i);
		add_key(ks, kid, "HS256", KEY(OTHER_SECRET));
	}
	add_key(ks, "ed-1", "EdDSA", KEY(ED_PUB));
	ASSERT_EQ(cable_keyset_count(ks), 41);
	expect_ok_release(ks, &pol, REF_EDDSA, NOW, "alice");
	cable_keyset_free(ks);
}

/* ---- Limits and arguments --------------------------------------------------------------- */

static void test_length_limit(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	char *claims, *tok;
	size_t pad, len;

	/* Grow a padding claim until the token is exactly CABLE_JWT_MAX_LEN, then one more. */
	claims = malloc(CABLE_JWT_MAX_LEN);
	ASSERT_NOT_NULL(claims);
	for (pad = 6000;; pad++) {
		snprintf(claims, CABLE_JWT_MAX_LEN,
		         "{\"sub\":\"alice\",\"exp\":1700003600,\"p\":\"%0*d\"}", (int)pad, 0);
		tok = mint_hs(claims);
		len = strlen(tok);
		if (len >= CABLE_JWT_MAX_LEN)
			break;
		free(tok);
	}
	if (len == CABLE_JWT_MAX_LEN) {
		expect_ok_release(ks, &pol, tok, NOW, "alice");
		free(tok);
		snprintf(claims, CABLE_JWT_MAX_LEN,
		         "{\"sub\":\"alice\",\"exp\":1700003600,\"p\":\"%0*d\"}", (int)pad + 3, 0);
		tok = mint_hs(claims);
		len = strlen(tok);
	}
	ASSERT_GT(len, CABLE_JWT_MAX_LEN);
	/* Correctly signed, and still refused before anything is parsed. */
	expect_reject(ks, &pol, tok, NOW, "token too long");
	free(tok);
	free(claims);
	cable_keyset_free(ks);
}

static void test_invalid_arguments(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "HS256", KEY(HS256_SECRET));
	struct cable_principal p = {0};
	struct cable_error err = {0};

	ASSERT_EQ(cable_jwt_verify(NULL, &pol, REF_HS256, strlen(REF_HS256), NOW, &p, &err),
	          CABLE_EINVAL);
	ASSERT_EQ(cable_jwt_verify(ks, NULL, REF_HS256, strlen(REF_HS256), NOW, &p, &err),
	          CABLE_EINVAL);
	ASSERT_EQ(cable_jwt_verify(ks, &pol, REF_HS256, strlen(REF_HS256), NOW, NULL, &err),
	          CABLE_EINVAL);
	ASSERT_EQ(cable_jwt_verify(ks, &pol, NULL, 10, NOW, &p, &err), CABLE_EINVAL);
	/* err may be NULL */
	ASSERT_EQ(cable_jwt_verify(ks, &pol, "x.y.z", 5, NOW, &p, NULL), CABLE_EAUTH);
	ASSERT_EQ(cable_jwt_verify(ks, &pol, REF_HS256, strlen(REF_HS256), NOW, &p, NULL),
	          CABLE_OK);
	cable_principal_release(&p);
	cable_keyset_free(ks);
}

/* ---- Minting ---------------------------------------------------------------------------- */

static void expect_sign_fails(const char *alg, const void *key, size_t key_len, const char *claims,
                              const char *text_part)
{
	struct cable_error err = {0};
	char *tok = (char *)"untouched";
	int rc;

	rc = cable_jwt_sign(alg, NULL, key, key_len, claims, strlen(claims), &tok, &err);
	if (rc != CABLE_EINVAL)
		TEST_FAIL_("sign %s: expected EINVAL, got %s", alg, cable_status_name(rc));
	if (strstr(err.text, text_part) == NULL)
		TEST_FAIL_("sign %s: \"%s\" does not mention \"%s\"", alg, err.text, text_part);
	ASSERT_STR_EQ(tok, "untouched");
	ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_sign_rejects(void)
{
	struct cable_error err = {0};
	char *tok = NULL;

	expect_sign_fails("none", KEY(HS256_SECRET), REF_CLAIMS, "unknown alg");
	expect_sign_fails("ES512", KEY(P521_PUB), REF_CLAIMS, "unknown alg");
	expect_sign_fails("HS256", HS256_SECRET, 31, REF_CLAIMS, "too short");
	expect_sign_fails("HS512", KEY(HS384_SECRET), REF_CLAIMS, "too short");
	expect_sign_fails("HS256", KEY(HS256_SECRET), "[1,2]", "not a JSON object");
	expect_sign_fails("HS256", KEY(HS256_SECRET), "{\"sub\":", "not a JSON object");
	expect_sign_fails("HS256", KEY(HS256_SECRET), "", "not a JSON object");
	expect_sign_fails("HS256", KEY(HS256_SECRET), "{\"a\":1,\"a\":2}", "not a JSON object");
	expect_sign_fails("RS256", KEY(RSA_PUB), REF_CLAIMS, "unparsable PEM private key");
	expect_sign_fails("RS256", KEY(HS256_SECRET), REF_CLAIMS, "unparsable PEM private key");
	expect_sign_fails("RS256", KEY(P256_PRIV), REF_CLAIMS, "needs an RSA key");
	expect_sign_fails("ES256", KEY(P384_PRIV), REF_CLAIMS, "prime256v1");
	expect_sign_fails("ES384", KEY(P256_PRIV), REF_CLAIMS, "secp384r1");
	expect_sign_fails("EdDSA", KEY(RSA_PRIV), REF_CLAIMS, "Ed25519");
	ASSERT_EQ(cable_jwt_sign("HS256", "\xff", KEY(HS256_SECRET), REF_CLAIMS, strlen(REF_CLAIMS),
	                         &tok, &err),
	          CABLE_EINVAL);
	ASSERT_NULL(tok);
	ASSERT_EQ(cable_jwt_sign(NULL, NULL, KEY(HS256_SECRET), REF_CLAIMS, strlen(REF_CLAIMS),
	                         &tok, &err),
	          CABLE_EINVAL);
	ASSERT_EQ(cable_jwt_sign("HS256", NULL, KEY(HS256_SECRET), REF_CLAIMS, strlen(REF_CLAIMS),
	                         NULL, &err),
	          CABLE_EINVAL);
	ASSERT_EQ(ERR_peek_error(), 0);
}

/* Claims arrive as (pointer, length) and are re-serialized compactly. */
static void test_sign_claims_buffer(void)
{
	static const char buf[] = "{ \"sub\" : \"alice\",\n  \"exp\": 2000000000,\n"
	                          "  \"roles\": [\"viewer\", \"operator\"] }TRAILING";
	struct cable_error err = {0};
	char *tok = NULL;

	ASSERT_OK(
	        cable_jwt_sign("HS256", NULL, KEY(HS256_SECRET), buf, strlen(buf) - 8, &tok, &err));
	ASSERT_STR_EQ(tok, REF_HS256);
	free(tok);
}

/* A caller's own OpenSSL errors survive our calls; ours never leak out. */
static void test_error_queue_preserved(void)
{
	struct cable_jwt_policy pol = policy_default();
	struct cable_keyset *ks = keyset_with(NULL, "RS256", KEY(RSA_PUB));
	char *tok;

	ERR_raise(ERR_LIB_USER, 42);
	tok = forge("{\"alg\":\"RS256\"}", REF_CLAIMS, "AAAA");
	ASSERT_EQ(cable_jwt_verify(ks, &pol, tok, strlen(tok), NOW, &(struct cable_principal){0},
	                           NULL),
	          CABLE_EAUTH);
	ASSERT_EQ(ERR_GET_REASON(ERR_peek_error()), 42);
	ASSERT_EQ(ERR_GET_REASON(ERR_peek_last_error()), 42);
	ERR_clear_error();
	free(tok);
	cable_keyset_free(ks);
}

TEST_MAIN(TEST(test_rfc7515_a1_hs256), TEST(test_rfc7515_a2_rs256), TEST(test_rfc7515_a3_es256),
          TEST(test_rfc8037_a4_eddsa), TEST(test_sign_matches_reference),
          TEST(test_verify_reference), TEST(test_roundtrip_every_alg), TEST(test_sign_with_kid),
          TEST(test_wrong_key), TEST(test_alg_none), TEST(test_alg_confusion), TEST(test_truncated),
          TEST(test_segments), TEST(test_bad_base64), TEST(test_header_and_claims_syntax),
          TEST(test_signature_shapes), TEST(test_ecdsa_high_s),
          TEST(test_every_signature_byte_counts), TEST(test_exp_nbf_leeway),
          TEST(test_principal_exp), TEST(test_iss_aud), TEST(test_user_claim),
          TEST(test_roles_claim), TEST(test_kid_rotation), TEST(test_kidless_rotation),
          TEST(test_keyset_add_rejects), TEST(test_many_keys), TEST(test_length_limit),
          TEST(test_invalid_arguments), TEST(test_sign_rejects), TEST(test_sign_claims_buffer),
          TEST(test_error_queue_preserved))
