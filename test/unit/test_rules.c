/*
 * Unit tests for building a rule set (plugin/core/rules.c, include/cable_rules.h):
 * what it accepts, and every refusal with the file it names, including the unsafe
 * combination it exists to refuse (a generic channel without an ACL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_rules.h"
#include "test.h"

#define CHANNELS     "{\"channels\": {\"Room\": {\"streams\": [\"rooms/lobby\"]}}}"
#define GENERIC      "{\"channels\": {\"Topic\": {\"generic\": true}}}"
#define SECRET       "0123456789abcdef0123456789abcdef"
#define ACL          "topic read rooms/#\n"
#define CHANNELS_CFG "/etc/cable/channels.json"

static struct cable_rules_source source(const char *channels)
{
	struct cable_rules_source src = {0};

	src.channels = channels;
	src.channels_len = strlen(channels);
	src.channels_file = CHANNELS_CFG;
	src.secret = (const unsigned char *)SECRET;
	src.secret_len = strlen(SECRET);
	src.secret_file = "/etc/cable/secret";
	src.leeway = 5;
	return src;
}

static void test_builds_rules(void)
{
	struct cable_rules_source src = source(CHANNELS);
	char err[512] = "";
	struct cable_rules *r;

	src.issuer = "https://app.example";
	src.user_claim = "uid";
	r = cable_rules_new(&src, err, sizeof(err));
	ASSERT_NOT_NULL(r);
	ASSERT_NOT_NULL(r->chanmap);
	ASSERT_NOT_NULL(r->keys);
	ASSERT_NULL(r->acl);
	ASSERT_STR_EQ(r->policy.issuer, "https://app.example");
	ASSERT_STR_EQ(r->policy.user_claim, "uid");
	ASSERT_NULL(r->policy.audience);
	ASSERT_EQ(r->policy.leeway, 5);
	ASSERT_TRUE(r->policy.require_exp); /* tokens are short-lived by design */
	/* The rules own copies: the source's strings may go away. */
	ASSERT(r->policy.issuer != src.issuer);
	cable_rules_free(r);
}

static void test_anonymous_has_no_keys(void)
{
	struct cable_rules_source src = source(CHANNELS);
	char err[512] = "";
	struct cable_rules *r;

	src.secret = NULL;
	src.secret_len = 0;
	r = cable_rules_new(&src, err, sizeof(err));
	ASSERT_NOT_NULL(r);
	ASSERT_NULL(r->keys);
	cable_rules_free(r);
}

/* Without an ACL a generic channel would let any token holder read every topic. */
static void test_refuses_generic_channel_without_acl(void)
{
	struct cable_rules_source src = source(GENERIC);
	char err[512] = "";

	ASSERT_NULL(cable_rules_new(&src, err, sizeof(err)));
	ASSERT_NOT_NULL(strstr(err, "plugin_opt_channels_file: '" CHANNELS_CFG "'"));
	ASSERT_NOT_NULL(strstr(err, "generic channel"));
	ASSERT_NOT_NULL(strstr(err, "plugin_opt_acl_file"));
}

static void test_generic_channel_with_acl(void)
{
	struct cable_rules_source src = source(GENERIC);
	char err[512] = "";
	struct cable_rules *r;

	src.acl = ACL;
	src.acl_len = strlen(ACL);
	src.acl_file = "/etc/cable/acl";
	r = cable_rules_new(&src, err, sizeof(err));
	ASSERT_NOT_NULL(r);
	ASSERT_NOT_NULL(r->acl);
	cable_rules_free(r);
}

static void test_refuses_bad_channel_map(void)
{
	struct cable_rules_source src = source("{\"channels\": ");
	char err[512] = "";

	ASSERT_NULL(cable_rules_new(&src, err, sizeof(err)));
	ASSERT_EQ(strncmp(err, "plugin_opt_channels_file: '" CHANNELS_CFG "': ",
	                  strlen("plugin_opt_channels_file: '" CHANNELS_CFG "': ")),
	          0);
}

static void test_refuses_bad_acl(void)
{
	struct cable_rules_source src = source(CHANNELS);
	char err[512] = "";

	src.acl = "topic sideways rooms/#\n";
	src.acl_len = strlen(src.acl);
	src.acl_file = "/etc/cable/acl";
	ASSERT_NULL(cable_rules_new(&src, err, sizeof(err)));
	ASSERT_NOT_NULL(strstr(err, "plugin_opt_acl_file: '/etc/cable/acl': "));
}

static void test_refuses_bad_secret(void)
{
	struct cable_rules_source src = source(CHANNELS);
	char err[512] = "";

	src.secret = (const unsigned char *)"short";
	src.secret_len = 5;
	ASSERT_NULL(cable_rules_new(&src, err, sizeof(err)));
	ASSERT_NOT_NULL(strstr(err, "plugin_opt_jwt_secret_file: '/etc/cable/secret': "));
}

static void test_refuses_bad_key(void)
{
	static const unsigned char pem[] = "-----BEGIN PUBLIC KEY-----\nnot a key\n"
	                                   "-----END PUBLIC KEY-----\n";
	struct cable_key_source key = {"k1", "RS256", pem, sizeof(pem) - 1, "/etc/cable/k1.pem"};
	struct cable_rules_source src = source(CHANNELS);
	char err[512] = "";

	src.keys = &key;
	src.nkeys = 1;
	src.keys_file = "/etc/cable/keys.json";
	ASSERT_NULL(cable_rules_new(&src, err, sizeof(err)));
	ASSERT_NOT_NULL(strstr(err, "plugin_opt_jwt_keys_file: '/etc/cable/keys.json': key kid k1 "
	                            "(RS256, '/etc/cable/k1.pem'): "));
}

TEST_MAIN(TEST(test_builds_rules), TEST(test_anonymous_has_no_keys),
          TEST(test_refuses_generic_channel_without_acl), TEST(test_generic_channel_with_acl),
          TEST(test_refuses_bad_channel_map), TEST(test_refuses_bad_acl),
          TEST(test_refuses_bad_secret), TEST(test_refuses_bad_key))
