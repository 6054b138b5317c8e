/*
 * Unit tests for plugin/core/acl.c: the issue's two-user scenario (also against the
 * shipped config/acl.example), deny-wins, default deny, roles, patterns and injection
 * through the user name, '$' topics, the three subscribe answers, load errors with
 * line numbers, and brute-force checks of subscribe against check over a small
 * universe of topics (which also pins down the private "do two filters intersect").
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable.h"
#include "cable_acl.h"
#include "cable_principal.h"
#include "cable_topic.h"
#include "test.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- helpers ------------------------------------------------------------------------ */

static struct cable_acl *load(const char *text)
{
	struct cable_error err = {0};
	struct cable_acl *acl = cable_acl_new(text, strlen(text), &err);

	if (acl == NULL)
		TEST_FAIL_("cable_acl_new: %s\n%s", err.text, text);
	return acl;
}

/* A principal on the stack: user and roles point at caller storage (never released). */
static struct cable_principal who(const char *user, char **roles, size_t nroles)
{
	struct cable_principal p;

	memset(&p, 0, sizeof(p));
	p.user = (char *)(uintptr_t)user; /* the ACL only reads it */
	p.roles = roles;
	p.nroles = nroles;
	return p;
}

static enum cable_acl_result rd(const struct cable_acl *acl, const struct cable_principal *p,
                                const char *topic)
{
	return cable_acl_check(acl, p, CABLE_ACL_READ, topic, strlen(topic));
}

static enum cable_acl_result wr(const struct cable_acl *acl, const struct cable_principal *p,
                                const char *topic)
{
	return cable_acl_check(acl, p, CABLE_ACL_WRITE, topic, strlen(topic));
}

static enum cable_acl_result sub(const struct cable_acl *acl, const struct cable_principal *p,
                                 const char *filter)
{
	return cable_acl_subscribe(acl, p, filter, strlen(filter));
}

/* Expect a load error on `line` whose text contains `what`. */
static void load_fails(const char *text, size_t len, unsigned line, const char *what)
{
	struct cable_error err = {0};
	struct cable_acl *acl = cable_acl_new(text, len, &err);
	char prefix[32];

	if (acl != NULL) {
		cable_acl_free(acl);
		TEST_FAIL_("loaded, expected an error at line %u:\n%.*s", line, (int)len, text);
	}
	ASSERT_EQ(err.code, CABLE_EINVAL);
	snprintf(prefix, sizeof(prefix), "line %u: ", line);
	if (strncmp(err.text, prefix, strlen(prefix)) != 0 || strstr(err.text, what) == NULL)
		TEST_FAIL_("error \"%s\", expected \"%s...%s\"", err.text, prefix, what);
}

#define ALLOW   CABLE_ACL_ALLOW
#define DENY    CABLE_ACL_DENY
#define PARTIAL CABLE_ACL_PARTIAL

/* ---- the issue's scenario ------------------------------------------------------------ */

/* Alice may command and watch actuator 42, not 43; bob may only watch 42. */
static const char scenario[] = "user alice\n"
                               "topic readwrite actuators/42/#\n"
                               "topic deny actuators/42/secret\n"
                               "user bob\n"
                               "topic read actuators/42/#\n";

static void check_scenario(const struct cable_acl *acl)
{
	struct cable_principal alice = who("alice", NULL, 0), bob = who("bob", NULL, 0),
	                       carol = who("carol", NULL, 0);

	/* ActuatorChannel {id: 42} streams actuators/42/state and .../cmd; speak writes cmd. */
	ASSERT_EQ(wr(acl, &alice, "actuators/42/cmd"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "actuators/42/state"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "actuators/42/cmd"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/state"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/cmd"), ALLOW);
	ASSERT_EQ(wr(acl, &alice, "actuators/43/cmd"), DENY);
	ASSERT_EQ(rd(acl, &alice, "actuators/43/state"), DENY);
	ASSERT_EQ(sub(acl, &alice, "actuators/43/state"), DENY);
	ASSERT_EQ(sub(acl, &alice, "actuators/43/#"), DENY);

	ASSERT_EQ(rd(acl, &bob, "actuators/42/state"), ALLOW);
	ASSERT_EQ(rd(acl, &bob, "actuators/42/cmd"), ALLOW);
	ASSERT_EQ(sub(acl, &bob, "actuators/42/state"), ALLOW);
	ASSERT_EQ(sub(acl, &bob, "actuators/42/cmd"), ALLOW);
	ASSERT_EQ(wr(acl, &bob, "actuators/42/cmd"), DENY);
	ASSERT_EQ(wr(acl, &bob, "actuators/43/cmd"), DENY);
	ASSERT_EQ(rd(acl, &bob, "actuators/43/state"), DENY);
	ASSERT_EQ(sub(acl, &bob, "actuators/43/#"), DENY);
	ASSERT_EQ(sub(acl, &bob, "actuators/+/state"), DENY); /* wider than 42 */

	ASSERT_EQ(rd(acl, &carol, "actuators/42/state"), DENY);
	ASSERT_EQ(wr(acl, &carol, "actuators/42/cmd"), DENY);
	ASSERT_EQ(sub(acl, &carol, "actuators/42/state"), DENY);
}

static void test_scenario(void)
{
	struct cable_acl *acl = load(scenario);
	struct cable_principal alice = who("alice", NULL, 0), bob = who("bob", NULL, 0);

	check_scenario(acl);
	/* The deny inside alice's own block. */
	ASSERT_EQ(rd(acl, &alice, "actuators/42/secret"), DENY);
	ASSERT_EQ(wr(acl, &alice, "actuators/42/secret"), DENY);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/+"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/secret"), DENY);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/secret/#"), PARTIAL); /* has ".../secret" */
	ASSERT_EQ(sub(acl, &alice, "actuators/42/+/x"), ALLOW);        /* one level deeper */
	ASSERT_EQ(sub(acl, &bob, "actuators/42/#"), ALLOW);
	ASSERT_EQ(cable_acl_rule_count(acl), 3);
	cable_acl_free(acl);
}

/* The shipped example must load and say what docs/acl.md says it says. */
static void test_example_file(void)
{
	/* CMake hands the compiler absolute source paths. */
	static const char rel[] = "/../../config/acl.example";
	char path[4096], *slash, *text;
	struct cable_error err = {0};
	struct cable_acl *acl;
	struct cable_principal alice = who("alice", NULL, 0), bob = who("bob", NULL, 0);
	char *ops_roles[] = {"operators"};
	struct cable_principal dave = who("dave", ops_roles, 1);
	FILE *f;
	long n;

	ASSERT(strlen(__FILE__) + sizeof(rel) < sizeof(path));
	strcpy(path, __FILE__);
	slash = strrchr(path, '/');
	ASSERT_NOT_NULL(slash);
	strcpy(slash, rel);
	f = fopen(path, "rb");
	if (f == NULL)
		TEST_FAIL_("cannot open %s", path);
	ASSERT_OK(fseek(f, 0, SEEK_END));
	n = ftell(f);
	ASSERT_GT(n, 0);
	rewind(f);
	text = malloc((size_t)n);
	ASSERT_NOT_NULL(text);
	ASSERT_EQ(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);

	acl = cable_acl_new(text, (size_t)n, &err);
	if (acl == NULL)
		TEST_FAIL_("%s: %s", path, err.text);
	free(text);
	check_scenario(acl);

	/* Common rules: announcements for everyone, read only. */
	ASSERT_EQ(rd(acl, &bob, "announcements/today"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "announcements/#"), ALLOW);
	ASSERT_EQ(wr(acl, &alice, "announcements/today"), DENY);
	/* operators command every actuator, and can subscribe to its channel. */
	ASSERT_EQ(wr(acl, &dave, "actuators/43/cmd"), ALLOW);
	ASSERT_EQ(wr(acl, &dave, "actuators/7/cmd"), ALLOW);
	ASSERT_EQ(sub(acl, &dave, "actuators/7/cmd"), ALLOW);
	ASSERT_EQ(sub(acl, &dave, "actuators/7/state"), ALLOW);
	ASSERT_EQ(wr(acl, &dave, "actuators/7/state"), DENY);
	ASSERT_EQ(sub(acl, &dave, "actuators/+/cmd"), ALLOW);
	ASSERT_EQ(sub(acl, &dave, "actuators/#"), DENY); /* not within one rule */
	/* Firmware topics are denied to everyone, alice's readwrite 42/# included. */
	ASSERT_EQ(wr(acl, &alice, "actuators/42/firmware/update"), DENY);
	ASSERT_EQ(rd(acl, &bob, "actuators/42/firmware"), DENY);
	ASSERT_EQ(sub(acl, &bob, "actuators/42/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &bob, "actuators/42/firmware/#"), DENY);
	/* Personal inboxes from the pattern. */
	ASSERT_EQ(rd(acl, &alice, "users/alice/inbox"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "users/bob/inbox"), DENY);
	ASSERT_EQ(sub(acl, &bob, "users/bob/#"), ALLOW);
	ASSERT_EQ(sub(acl, &bob, "users/+/inbox"), DENY);
	/* Nothing under '$'. */
	ASSERT_EQ(rd(acl, &dave, "$SYS/broker/uptime"), DENY);
	ASSERT_EQ(cable_acl_rule_count(acl), 7);
	cable_acl_free(acl);
}

/* ---- evaluation order ---------------------------------------------------------------- */

static void test_default_deny(void)
{
	struct cable_acl *acl = load("");
	struct cable_acl *some = load("topic read a/#\nuser alice\ntopic readwrite b\n");
	struct cable_principal alice = who("alice", NULL, 0), nouser = who(NULL, NULL, 0);

	ASSERT_EQ(cable_acl_rule_count(acl), 0);
	ASSERT_EQ(rd(acl, &alice, "a"), DENY);
	ASSERT_EQ(wr(acl, &alice, "a"), DENY);
	ASSERT_EQ(sub(acl, &alice, "#"), DENY);
	ASSERT_EQ(sub(acl, &alice, "a"), DENY);

	ASSERT_EQ(rd(some, &alice, "a/x"), ALLOW);
	ASSERT_EQ(wr(some, &alice, "a/x"), DENY); /* read only */
	ASSERT_EQ(wr(some, &alice, "b"), ALLOW);
	ASSERT_EQ(wr(some, &alice, "b/c"), DENY);
	ASSERT_EQ(rd(some, &alice, "c"), DENY);
	/* No ACL, no principal, no user, a bad access value: nothing. */
	ASSERT_EQ(rd(NULL, &alice, "a/x"), DENY);
	ASSERT_EQ(sub(NULL, &alice, "a/x"), DENY);
	ASSERT_EQ(cable_acl_check(some, NULL, CABLE_ACL_READ, S("a/x")), DENY);
	ASSERT_EQ(cable_acl_subscribe(some, NULL, S("a/x")), DENY);
	ASSERT_EQ(rd(some, &nouser, "a/x"), DENY);
	ASSERT_EQ(sub(some, &nouser, "a/x"), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, 0, S("a/x")), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, CABLE_ACL_READ | CABLE_ACL_WRITE, S("b")), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, 7, S("a/x")), DENY);
	/* Not a topic name: wildcards, empty, bad UTF-8, NUL inside. */
	ASSERT_EQ(rd(some, &alice, "a/+"), DENY);
	ASSERT_EQ(rd(some, &alice, "a/#"), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, CABLE_ACL_READ, "a/x", 0), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, CABLE_ACL_READ, NULL, 0), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, CABLE_ACL_READ, S("a/\xff")), DENY);
	ASSERT_EQ(cable_acl_check(some, &alice, CABLE_ACL_READ, S("a/x\0y")), DENY);
	ASSERT_EQ(cable_acl_subscribe(some, &alice, S("a/x\0y")), DENY);
	ASSERT_EQ(sub(some, &alice, "a/#/b"), DENY);
	ASSERT_EQ(sub(some, &alice, "a/x+"), DENY);
	/* (pointer, length): the bytes after len are not part of the topic. */
	ASSERT_EQ(cable_acl_check(some, &alice, CABLE_ACL_WRITE, "bc", 1), ALLOW);
	ASSERT_EQ(cable_acl_subscribe(some, &alice, "a/xyz#", 5), ALLOW);
	cable_acl_free(acl);
	cable_acl_free(some);
}

static void test_deny_wins(void)
{
	/* Deny in the common block against an allow in the user's block, a deny after
	 * the allow in the same block, a role's deny against the user's allow. */
	struct cable_acl *acl = load("topic deny x/secret\n"
	                             "role auditors\n"
	                             "topic deny y/audit/#\n"
	                             "user alice\n"
	                             "topic readwrite x/#\n"
	                             "topic readwrite y/#\n"
	                             "topic deny x/private/+\n"
	                             "topic read z/#\n"
	                             "topic write z/#\n");
	char *aud[] = {"auditors"};
	struct cable_principal alice = who("alice", NULL, 0), alice_aud = who("alice", aud, 1);

	ASSERT_EQ(rd(acl, &alice, "x/public"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "x/secret"), DENY);
	ASSERT_EQ(wr(acl, &alice, "x/secret"), DENY);
	ASSERT_EQ(rd(acl, &alice, "x/private/1"), DENY);
	ASSERT_EQ(wr(acl, &alice, "x/private/1"), DENY);
	ASSERT_EQ(rd(acl, &alice, "x/private"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "x/private/1/2"), ALLOW); /* '+' is one level */
	ASSERT_EQ(rd(acl, &alice, "y/audit/log"), ALLOW);
	ASSERT_EQ(rd(acl, &alice_aud, "y/audit/log"), DENY);
	ASSERT_EQ(rd(acl, &alice_aud, "y/audit"), DENY); /* '#' includes the parent */
	ASSERT_EQ(rd(acl, &alice_aud, "y/other"), ALLOW);
	/* read + write on two lines is readwrite. */
	ASSERT_EQ(rd(acl, &alice, "z/1"), ALLOW);
	ASSERT_EQ(wr(acl, &alice, "z/1"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "x/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "x/private/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "x/private/+"), DENY);
	ASSERT_EQ(sub(acl, &alice, "x/private/+/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice_aud, "y/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice_aud, "y/audit/#"), DENY);
	ASSERT_EQ(sub(acl, &alice, "y/audit/#"), ALLOW);
	cable_acl_free(acl);

	/* Order never matters: the same rules in another order give the same answers. */
	acl = load("user alice\ntopic deny a/b\ntopic read a/#\n");
	ASSERT_EQ(rd(acl, &alice, "a/b"), DENY);
	ASSERT_EQ(rd(acl, &alice, "a/c"), ALLOW);
	cable_acl_free(acl);
	acl = load("user alice\ntopic read a/#\ntopic deny a/b\n");
	ASSERT_EQ(rd(acl, &alice, "a/b"), DENY);
	ASSERT_EQ(rd(acl, &alice, "a/c"), ALLOW);
	cable_acl_free(acl);

	/* A deny "#" shuts everything that is not a '$' topic, even readwrite "#". */
	acl = load("topic readwrite #\ntopic readwrite $SYS/#\ntopic deny #\n");
	ASSERT_EQ(rd(acl, &alice, "a"), DENY);
	ASSERT_EQ(sub(acl, &alice, "#"), DENY);
	ASSERT_EQ(rd(acl, &alice, "$SYS/x"), ALLOW); /* '#' does not reach '$' topics */
	cable_acl_free(acl);
}

static void test_roles(void)
{
	struct cable_acl *acl = load("topic read actuators/+/state\n"
	                             "role operators\n"
	                             "topic write actuators/+/cmd\n"
	                             "role viewers\n"
	                             "topic read cameras/#\n"
	                             "user operators\n"
	                             "topic read only-the-user-named-operators\n");
	char *ops[] = {"operators"}, *both[] = {"viewers", "operators"};
	char *other[] = {"Operators", "operators ", "", "nobody"}, *nulls[] = {NULL, "viewers"};
	struct cable_principal dave = who("dave", ops, 1), erin = who("erin", both, 2),
	                       frank = who("frank", NULL, 0), gina = who("gina", other, 4),
	                       hank = who("hank", nulls, 2), user_ops = who("operators", NULL, 0);

	ASSERT_EQ(wr(acl, &dave, "actuators/7/cmd"), ALLOW);
	ASSERT_EQ(rd(acl, &dave, "actuators/7/cmd"), DENY); /* write only */
	ASSERT_EQ(rd(acl, &dave, "actuators/7/state"), ALLOW);
	ASSERT_EQ(rd(acl, &dave, "cameras/1"), DENY);
	ASSERT_EQ(wr(acl, &erin, "actuators/7/cmd"), ALLOW);
	ASSERT_EQ(rd(acl, &erin, "cameras/1"), ALLOW);
	ASSERT_EQ(wr(acl, &frank, "actuators/7/cmd"), DENY);
	ASSERT_EQ(rd(acl, &frank, "actuators/7/state"), ALLOW);
	/* Role names are exact and case-sensitive; unknown roles add nothing. */
	ASSERT_EQ(wr(acl, &gina, "actuators/7/cmd"), DENY);
	ASSERT_EQ(rd(acl, &hank, "cameras/1"), ALLOW);
	/* A user named like a role gets the user block, not the role. */
	ASSERT_EQ(wr(acl, &user_ops, "actuators/7/cmd"), DENY);
	ASSERT_EQ(rd(acl, &user_ops, "only-the-user-named-operators"), ALLOW);
	ASSERT_EQ(rd(acl, &dave, "only-the-user-named-operators"), DENY);
	ASSERT_EQ(sub(acl, &dave, "actuators/+/cmd"), DENY); /* subscribe needs read */
	ASSERT_EQ(sub(acl, &erin, "cameras/#"), ALLOW);
	cable_acl_free(acl);
}

/* Many users and roles: lookup is by binary search over sorted names. */
static void test_many_blocks(void)
{
	size_t cap = 64 * 1024, n = 0, i;
	char *text = malloc(cap), name[32], topic[64], *roles[1];
	struct cable_acl *acl;
	struct cable_principal p;

	ASSERT_NOT_NULL(text);
	/* Written in descending order so that sorting has work to do. */
	for (i = 500; i-- > 0;) {
		n += (size_t)snprintf(text + n, cap - n, "user u%zu\ntopic read t/%zu\n", i, i);
		n += (size_t)snprintf(text + n, cap - n, "role r%zu\ntopic write w/%zu\n", i, i);
		ASSERT_LT(n, cap);
	}
	acl = cable_acl_new(text, n, NULL);
	ASSERT_NOT_NULL(acl);
	ASSERT_EQ(cable_acl_rule_count(acl), 1000);
	for (i = 0; i < 500; i += 7) {
		snprintf(name, sizeof(name), "r%zu", i);
		roles[0] = name;
		p = who(name + 1, roles, 1); /* user "<i>" (no block) with role r<i> */
		snprintf(topic, sizeof(topic), "w/%zu", i);
		ASSERT_EQ(wr(acl, &p, topic), ALLOW);
		snprintf(topic, sizeof(topic), "w/%zu", i + 1);
		ASSERT_EQ(wr(acl, &p, topic), DENY);
		name[0] = 'u';
		p = who(name, NULL, 0);
		snprintf(topic, sizeof(topic), "t/%zu", i);
		ASSERT_EQ(rd(acl, &p, topic), ALLOW);
		snprintf(topic, sizeof(topic), "t/%zu", i + 1);
		ASSERT_EQ(rd(acl, &p, topic), DENY);
	}
	cable_acl_free(acl);
	free(text);
}

/* ---- patterns ------------------------------------------------------------------------ */

static void test_patterns(void)
{
	struct cable_acl *acl = load("user alice\n"
	                             "pattern read users/%u/#\n" /* a pattern: applies to all */
	                             "pattern write users/%u/outbox\n"
	                             "pattern readwrite rooms/%u/%u\n"
	                             "pattern read %u\n"
	                             "pattern read static/topic\n");
	struct cable_principal alice = who("alice", NULL, 0), bob = who("bob", NULL, 0);

	ASSERT_EQ(rd(acl, &alice, "users/alice/inbox"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "users/alice"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "users/bob/inbox"), DENY);
	ASSERT_EQ(rd(acl, &bob, "users/bob/inbox"), ALLOW);
	ASSERT_EQ(wr(acl, &bob, "users/bob/outbox"), ALLOW);
	ASSERT_EQ(wr(acl, &bob, "users/bob/inbox"), DENY);
	ASSERT_EQ(wr(acl, &bob, "users/alice/outbox"), DENY);
	ASSERT_EQ(rd(acl, &bob, "rooms/bob/bob"), ALLOW);
	ASSERT_EQ(rd(acl, &bob, "rooms/bob/alice"), DENY);
	ASSERT_EQ(rd(acl, &bob, "bob"), ALLOW);
	ASSERT_EQ(rd(acl, &bob, "alice"), DENY);
	ASSERT_EQ(rd(acl, &bob, "static/topic"), ALLOW);
	/* Substitution is exact text: no prefix, no case folding. */
	ASSERT_EQ(rd(acl, &bob, "users/bobby/inbox"), DENY);
	ASSERT_EQ(rd(acl, &bob, "users/Bob/inbox"), DENY);
	ASSERT_EQ(sub(acl, &bob, "users/bob/#"), ALLOW);
	ASSERT_EQ(sub(acl, &bob, "users/+/inbox"), DENY);
	ASSERT_EQ(sub(acl, &bob, "users/#"), DENY);
	ASSERT_EQ(cable_acl_rule_count(acl), 5);
	cable_acl_free(acl);
}

/*
 * User names that would widen a pattern or reach '$' topics if substituted as text:
 * none of them matches an allowing pattern, whatever topic it tries.
 */
static void test_pattern_injection(void)
{
	static const char *const users[] = {
	        "a/b", "+", "#", "$x", "", "x$y", "a/+", "alice/#", "/", "a\tb", "\xff", "x\x7f",
	};
	static const char *const topics[] = {
	        "users/a/b/inbox",   "users/a/b",       "users/+/inbox",    "users/x/inbox",
	        "users/$x/inbox",    "users/x$y/inbox", "users//inbox",     "users/a",
	        "users/alice/inbox", "$x/inbox",        "users/a\tb/inbox",
	};
	struct cable_acl *acl = load("pattern readwrite users/%u/#\npattern read %u/inbox\n");
	struct cable_principal p;
	size_t i, j;

	for (i = 0; i < CABLE_ARRAY_LEN(users); i++) {
		p = who(users[i], NULL, 0);
		for (j = 0; j < CABLE_ARRAY_LEN(topics); j++) {
			if (rd(acl, &p, topics[j]) != DENY || wr(acl, &p, topics[j]) != DENY ||
			    sub(acl, &p, topics[j]) != DENY)
				TEST_FAIL_("user \"%s\" reached \"%s\"", users[i], topics[j]);
		}
		ASSERT_EQ(sub(acl, &p, "users/#"), DENY);
		ASSERT_EQ(sub(acl, &p, "#"), DENY);
	}
	/* A harmless odd name still works: '%', spaces, UTF-8, "%u" itself. */
	p = who("%u", NULL, 0);
	ASSERT_EQ(rd(acl, &p, "users/%u/x"), ALLOW);
	p = who("J\xc3\xbcrgen M", NULL, 0);
	ASSERT_EQ(rd(acl, &p, "users/J\xc3\xbcrgen M/x"), ALLOW);
	cable_acl_free(acl);

	/* A denying pattern still applies to an odd name, with %u read as '+'. */
	acl = load("topic read #\npattern deny private/%u/#\n");
	p = who("alice", NULL, 0);
	ASSERT_EQ(rd(acl, &p, "private/alice/x"), DENY);
	ASSERT_EQ(rd(acl, &p, "private/bob/x"), ALLOW);
	ASSERT_EQ(sub(acl, &p, "private/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &p, "private/bob/#"), ALLOW);
	for (i = 0; i < CABLE_ARRAY_LEN(users); i++) {
		p = who(users[i], NULL, 0);
		ASSERT_EQ(rd(acl, &p, "private/a/b"), DENY);
		ASSERT_EQ(rd(acl, &p, "private/bob/x"), DENY);
		ASSERT_EQ(rd(acl, &p, "public/x"), ALLOW);
		ASSERT_EQ(sub(acl, &p, "private/+/#"), DENY);
	}
	cable_acl_free(acl);
}

/* Long user names: the expansion leaves the stack buffer, or the length cap. */
static void test_pattern_long_user(void)
{
	size_t big = 70000, n;
	char *user = malloc(big + 1), *topic = malloc(big + 32);
	struct cable_acl *acl = load("topic read #\npattern write u/%u/x\npattern deny d/%u\n");
	struct cable_principal p;

	ASSERT_NOT_NULL(user);
	ASSERT_NOT_NULL(topic);
	memset(user, 'n', big);
	/* 1000 bytes: heap scratch. */
	user[1000] = '\0';
	p = who(user, NULL, 0);
	n = (size_t)snprintf(topic, big + 32, "u/%s/x", user);
	ASSERT_EQ(cable_acl_check(acl, &p, CABLE_ACL_WRITE, topic, n), ALLOW);
	n = (size_t)snprintf(topic, big + 32, "d/%s", user);
	ASSERT_EQ(cable_acl_check(acl, &p, CABLE_ACL_READ, topic, n), DENY);
	n = (size_t)snprintf(topic, big + 32, "d/%sz", user);
	ASSERT_EQ(cable_acl_check(acl, &p, CABLE_ACL_READ, topic, n), ALLOW);
	/* 65533 bytes: "d/<user>" is exactly at the cap, still a valid filter. */
	user[1000] = 'n';
	user[65533] = '\0';
	p = who(user, NULL, 0);
	ASSERT_EQ(rd(acl, &p, "d/anyone"), ALLOW);
	n = (size_t)snprintf(topic, big + 32, "d/%s", user);
	ASSERT_EQ(cable_acl_check(acl, &p, CABLE_ACL_READ, topic, n), DENY);
	/* 65534 bytes: "d/<user>" is over the cap, so the deny applies as "d/+", to every
	 * name; "u/<user>/x" is over it too, so never allowed. */
	user[65533] = 'n';
	user[65534] = '\0';
	p = who(user, NULL, 0);
	ASSERT_EQ(rd(acl, &p, "d/anyone"), DENY);
	ASSERT_EQ(rd(acl, &p, "e/anyone"), ALLOW);
	/* Over the cap on its own. */
	user[65534] = 'n';
	user[big] = '\0';
	p = who(user, NULL, 0);
	ASSERT_EQ(rd(acl, &p, "d/anyone"), DENY);
	ASSERT_EQ(wr(acl, &p, "u/n/x"), DENY);
	cable_acl_free(acl);
	free(user);
	free(topic);
}

/* ---- '$' topics ---------------------------------------------------------------------- */

static void test_dollar_topics(void)
{
	struct cable_acl *acl = load("topic readwrite #\n"
	                             "topic readwrite +/#\n"
	                             "topic readwrite +/broker/uptime\n"
	                             "pattern readwrite %u/#\n");
	struct cable_acl *sys = load("topic read $SYS/broker/#\ntopic write $app/+/cmd\n");
	struct cable_principal alice = who("alice", NULL, 0), dollar = who("$SYS", NULL, 0);

	ASSERT_EQ(rd(acl, &alice, "$SYS/broker/uptime"), DENY);
	ASSERT_EQ(wr(acl, &alice, "$SYS/broker/uptime"), DENY);
	ASSERT_EQ(wr(acl, &alice, "$CONTROL/dynamic-security/v1"), DENY);
	ASSERT_EQ(rd(acl, &alice, "$"), DENY);
	ASSERT_EQ(sub(acl, &alice, "$SYS/#"), DENY);
	ASSERT_EQ(sub(acl, &alice, "$SYS/broker/uptime"), DENY);
	ASSERT_EQ(rd(acl, &dollar, "$SYS/x"), DENY); /* %u never becomes "$..." */
	ASSERT_EQ(sub(acl, &alice, "#"), ALLOW);     /* covers every non-'$' topic */
	ASSERT_EQ(rd(acl, &alice, "a$/b"), ALLOW);   /* '$' not first is ordinary */

	ASSERT_EQ(rd(sys, &alice, "$SYS/broker/uptime"), ALLOW);
	ASSERT_EQ(rd(sys, &alice, "$SYS/broker"), ALLOW);
	ASSERT_EQ(rd(sys, &alice, "$SYS/other"), DENY);
	ASSERT_EQ(wr(sys, &alice, "$SYS/broker/uptime"), DENY);
	ASSERT_EQ(wr(sys, &alice, "$app/7/cmd"), ALLOW);
	ASSERT_EQ(sub(sys, &alice, "$SYS/broker/#"), ALLOW);
	ASSERT_EQ(sub(sys, &alice, "$SYS/#"), DENY);
	ASSERT_EQ(sub(sys, &alice, "#"), DENY);
	ASSERT_EQ(sub(sys, &alice, "+/broker/#"), DENY);
	cable_acl_free(acl);
	cable_acl_free(sys);
}

/* ---- subscribe ----------------------------------------------------------------------- */

static void test_subscribe_results(void)
{
	struct cable_acl *acl = load("user alice\n"
	                             "topic read actuators/#\n"
	                             "topic deny actuators/42/secret\n"
	                             "user bob\n"
	                             "topic read actuators/42/#\n");
	struct cable_principal alice = who("alice", NULL, 0), bob = who("bob", NULL, 0);

	ASSERT_EQ(sub(acl, &alice, "actuators/#"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "actuators/+/secret"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "actuators/+/+"), PARTIAL);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/state"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "actuators/43/#"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "actuators/+/state"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "actuators/+"), ALLOW);
	ASSERT_EQ(sub(acl, &alice, "actuators/42/secret"), DENY);
	ASSERT_EQ(sub(acl, &alice, "actuators"), ALLOW); /* "actuators/#" matches it */
	ASSERT_EQ(sub(acl, &alice, "sensors/#"), DENY);
	ASSERT_EQ(sub(acl, &bob, "actuators/43/#"), DENY);
	ASSERT_EQ(sub(acl, &bob, "actuators/#"), DENY);
	ASSERT_EQ(sub(acl, &bob, "actuators/42/#"), ALLOW);
	/* PARTIAL means: check each delivery. */
	ASSERT_EQ(rd(acl, &alice, "actuators/42/secret"), DENY);
	ASSERT_EQ(rd(acl, &alice, "actuators/42/state"), ALLOW);
	cable_acl_free(acl);
}

/* A subscription to "#" needs a rule that allows reading every non-'$' topic. */
static void test_subscribe_hash(void)
{
	static const struct {
		const char *rules;
		int hash;
	} cases[] = {
	        {"topic read #\n", ALLOW},
	        {"topic readwrite #\n", ALLOW},
	        {"topic read +/#\n", ALLOW}, /* the same set of topics */
	        {"topic write #\n", DENY},
	        {"topic read a/#\ntopic read +\n", DENY},
	        {"topic read +\n", DENY},
	        {"topic read +/+/#\n", DENY},
	        {"topic read $SYS/#\n", DENY},
	        {"topic read #\ntopic deny a\n", PARTIAL},
	        {"topic read #\ntopic deny $SYS/#\n", ALLOW}, /* disjoint */
	        {"pattern read #\n", ALLOW},
	        {"", DENY},
	};
	struct cable_principal alice = who("alice", NULL, 0);
	struct cable_acl *acl;
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++) {
		acl = load(cases[i].rules);
		if ((int)sub(acl, &alice, "#") != cases[i].hash)
			TEST_FAIL_("\"#\" under \"%s\": %d, expected %d", cases[i].rules,
			           sub(acl, &alice, "#"), cases[i].hash);
		cable_acl_free(acl);
	}
}

/*
 * A small universe of topics over the levels {a, b, x, "", $s} with up to four levels
 * and of filters over {a, $s, "", +, #} with up to three. Every pair of filters that
 * share a topic shares one in this universe (a witness needs only the filters' own
 * literals plus one free value, and at most as many levels as the longer filter).
 */
#define NT_MAX 1024
#define NF_MAX 256

struct universe {
	char topics[NT_MAX][16];
	size_t nt;
	char filters[NF_MAX][16];
	size_t nf;
};

static void gen(char out[][16], size_t *n, size_t max, const char *const *alpha, size_t na,
                size_t depth, size_t levels, char *prefix, bool filter)
{
	size_t i, plen = strlen(prefix);

	for (i = 0; i < na; i++) {
		if (depth > 0)
			strcat(prefix, "/"); /* even after an empty first level */
		strcat(prefix, alpha[i]);
		if (filter ? cable_topic_filter_valid(prefix, strlen(prefix))
		           : cable_topic_name_valid(prefix, strlen(prefix))) {
			ASSERT_LT(*n, max);
			strcpy(out[(*n)++], prefix);
		}
		if (depth + 1 < levels && strcmp(alpha[i], "#") != 0)
			gen(out, n, max, alpha, na, depth + 1, levels, prefix, filter);
		prefix[plen] = '\0';
	}
}

static void universe_init(struct universe *u)
{
	static const char *const tl[] = {"a", "b", "x", "", "$s"};
	static const char *const fl[] = {"a", "$s", "", "+", "#"};
	char prefix[64] = "";

	memset(u, 0, sizeof(*u));
	gen(u->topics, &u->nt, NT_MAX, tl, CABLE_ARRAY_LEN(tl), 0, 4, prefix, false);
	gen(u->filters, &u->nf, NF_MAX, fl, CABLE_ARRAY_LEN(fl), 0, 3, prefix, true);
	ASSERT_GT(u->nt, 500);
	ASSERT_GT(u->nf, 80);
}

static bool brute_intersect(const struct universe *u, const char *f1, const char *f2)
{
	size_t i;

	for (i = 0; i < u->nt; i++) {
		if (cable_topic_matches(f1, strlen(f1), u->topics[i], strlen(u->topics[i])) &&
		    cable_topic_matches(f2, strlen(f2), u->topics[i], strlen(u->topics[i])))
			return true;
	}
	return false;
}

/*
 * With rules that allow reading everything, a deny rule D turns subscribe(F) into
 * PARTIAL exactly when some topic matches both F and D (or DENY when F lies within D):
 * filters_intersect against brute force.
 */
static void test_intersect_bruteforce(void)
{
	static struct universe u;
	char text[128];
	struct cable_principal alice = who("alice", NULL, 0);
	struct cable_acl *acl;
	size_t d, f;
	int got, want;

	universe_init(&u);
	for (d = 0; d < u.nf; d++) {
		snprintf(text, sizeof(text), "topic read #\ntopic read $s/#\ntopic deny %s\n",
		         u.filters[d]);
		acl = load(text);
		for (f = 0; f < u.nf; f++) {
			if (cable_topic_filter_within(u.filters[f], strlen(u.filters[f]),
			                              u.filters[d], strlen(u.filters[d])))
				want = DENY;
			else if (brute_intersect(&u, u.filters[f], u.filters[d]))
				want = PARTIAL;
			else
				want = ALLOW;
			got = (int)sub(acl, &alice, u.filters[f]);
			if (got != want)
				TEST_FAIL_("subscribe \"%s\" with deny \"%s\": %d, expected %d",
				           u.filters[f], u.filters[d], got, want);
		}
		cable_acl_free(acl);
	}
}

/*
 * For several rule sets and every filter and topic of the universe: a topic name's
 * subscribe answer is its read check; ALLOW means every topic under the filter is
 * readable; PARTIAL means some is not.
 */
static void test_subscribe_vs_check(void)
{
	static const char *const rule_sets[] = {
	        "topic read #\ntopic deny a/+/a\ntopic read $s/a/#\n",
	        "topic read a/#\ntopic read +/a\ntopic deny a//#\ntopic deny $s/#\n",
	        "topic read +/+\ntopic deny a/a\npattern read %u/#\npattern deny +/%u\n",
	        "user b\ntopic read $s/#\ntopic deny $s/+/a\nrole r\ntopic read a/#\n",
	        "topic readwrite +/+/#\ntopic deny #\n",
	        "topic write #\ntopic read x\n",
	};
	static struct universe u;
	char *roles[] = {"r"};
	struct cable_principal ps[3];
	struct cable_acl *acl;
	size_t r, pi, f, t;
	int s, c;
	bool any_denied, any_allowed, matched;

	/* Users named from the universe's levels, so that patterns stay inside it. */
	ps[0] = who("b", NULL, 0);
	ps[1] = who("a", roles, 1);
	ps[2] = who("a/b", roles, 1);
	universe_init(&u);
	for (r = 0; r < CABLE_ARRAY_LEN(rule_sets); r++) {
		acl = load(rule_sets[r]);
		for (pi = 0; pi < CABLE_ARRAY_LEN(ps); pi++) {
			for (t = 0; t < u.nt; t++) {
				s = (int)sub(acl, &ps[pi], u.topics[t]);
				c = (int)rd(acl, &ps[pi], u.topics[t]);
				if (s != c)
					TEST_FAIL_("[%zu] %s: subscribe %d, check %d", r,
					           u.topics[t], s, c);
			}
			for (f = 0; f < u.nf; f++) {
				s = (int)sub(acl, &ps[pi], u.filters[f]);
				any_denied = any_allowed = matched = false;
				for (t = 0; t < u.nt; t++) {
					if (!cable_topic_matches(u.filters[f], strlen(u.filters[f]),
					                         u.topics[t], strlen(u.topics[t])))
						continue;
					matched = true;
					if (rd(acl, &ps[pi], u.topics[t]) == ALLOW)
						any_allowed = true;
					else
						any_denied = true;
				}
				ASSERT(matched);
				if ((s == ALLOW && any_denied) || (s == PARTIAL && !any_denied))
					TEST_FAIL_("[%zu] user %s, filter %s: %d (denied %d "
					           "allowed %d)",
					           r, ps[pi].user, u.filters[f], s, any_denied,
					           any_allowed);
			}
		}
		cable_acl_free(acl);
	}
}

/* ---- the file format ----------------------------------------------------------------- */

static void test_parse_tolerance(void)
{
	/* CRLF, tabs, indentation, trailing blanks, blank lines, comments anywhere, a
	 * filter with spaces, no final newline. */
	static const char text[] = "\xEF\xBB\xBF# ACL\r\n"
	                           "\r\n"
	                           "   # indented comment\n"
	                           "topic\tread\tsensors/#  \t\r\n"
	                           "\t\n"
	                           "  user   alice  \r\n"
	                           "\ttopic   write    room/with space/x\t \r\n"
	                           "\ttopic deny sensors/secret\r\n"
	                           "role ops team\n"
	                           "topic read ops/#\n"
	                           "topic plain/default";
	struct cable_acl *acl = load(text);
	char *roles[] = {"ops team"};
	struct cable_principal alice = who("alice", NULL, 0), ops = who("x", roles, 1);

	ASSERT_EQ(cable_acl_rule_count(acl), 5);
	ASSERT_EQ(rd(acl, &alice, "sensors/1"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "sensors/secret"), DENY);
	ASSERT_EQ(rd(acl, &ops, "sensors/secret"), ALLOW);
	ASSERT_EQ(wr(acl, &alice, "room/with space/x"), ALLOW);
	ASSERT_EQ(wr(acl, &alice, "room/with space/x\t"), DENY);
	ASSERT_EQ(rd(acl, &ops, "ops/1"), ALLOW);
	ASSERT_EQ(rd(acl, &ops, "plain/default"), ALLOW); /* readwrite by default */
	ASSERT_EQ(wr(acl, &ops, "plain/default"), ALLOW);
	ASSERT_EQ(rd(acl, &alice, "plain/default"), DENY);
	cable_acl_free(acl);

	/* The buffer is (pointer, length): the text after len is not read. */
	acl = cable_acl_new("topic read a\ntopic read b", 12, NULL);
	ASSERT_NOT_NULL(acl);
	ASSERT_EQ(cable_acl_rule_count(acl), 1);
	cable_acl_free(acl);
	acl = cable_acl_new(NULL, 0, NULL);
	ASSERT_NOT_NULL(acl);
	cable_acl_free(acl);
	cable_acl_free(NULL);
	ASSERT_EQ(cable_acl_rule_count(NULL), 0);
	/* Only blank lines and comments. */
	acl = load("\n\n# nothing\n   \r\n");
	ASSERT_EQ(cable_acl_rule_count(acl), 0);
	cable_acl_free(acl);
}

static void test_parse_access_words(void)
{
	struct cable_acl *acl = load("topic read r\n"
	                             "topic write w\n"
	                             "topic readwrite rw\n"
	                             "topic d\n"
	                             "topic readwrite read\n" /* a topic named "read" */
	                             "topic deny denied\n"
	                             "topic read denied\n");
	struct cable_principal p = who("p", NULL, 0);

	ASSERT_EQ(rd(acl, &p, "r"), ALLOW);
	ASSERT_EQ(wr(acl, &p, "r"), DENY);
	ASSERT_EQ(rd(acl, &p, "w"), DENY);
	ASSERT_EQ(wr(acl, &p, "w"), ALLOW);
	ASSERT_EQ(rd(acl, &p, "rw"), ALLOW);
	ASSERT_EQ(wr(acl, &p, "rw"), ALLOW);
	ASSERT_EQ(rd(acl, &p, "d"), ALLOW);
	ASSERT_EQ(wr(acl, &p, "d"), ALLOW);
	ASSERT_EQ(rd(acl, &p, "read"), ALLOW);
	ASSERT_EQ(rd(acl, &p, "denied"), DENY);
	cable_acl_free(acl);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *what;
	} cases[] = {
	        {"topic read a\nfoo bar\n", 2, "unknown keyword 'foo'"},
	        {"Topic read a\n", 1, "unknown keyword 'Topic'"},
	        {"users alice\n", 1, "unknown keyword 'users'"},
	        {"\n\n\ntopic reed a/b\n", 4, "unknown access 'reed'"},
	        {"topic READ a\n", 1, "unknown access 'READ'"},
	        {"topic a b\n", 1, "unknown access 'a'"},
	        {"topic\n", 1, "'topic' needs a filter"},
	        {"pattern   \r\n", 1, "'pattern' needs a filter"},
	        {"topic read\n", 1, "'topic read' has no filter"},
	        {"topic deny\n", 1, "'topic deny' has no filter"},
	        {"pattern write\n", 1, "'pattern write' has no filter"},
	        {"topic read a/#/b\n", 1, "invalid filter 'a/#/b'"},
	        {"topic read a/b#\n", 1, "invalid filter"},
	        {"topic read a+/b\n", 1, "invalid filter"},
	        {"topic read a # comment\n", 1, "invalid filter"},
	        {"topic read a/\xff\n", 1, "invalid filter 'a/?'"},
	        {"topic read a/\x01/b\n", 1, "invalid filter"},
	        {"user alice\ntopic read users/%u/#\n", 2, "only in 'pattern' lines"},
	        {"pattern read users/x%u/#\n", 1, "whole topic level"},
	        {"pattern read users/%u%u\n", 1, "whole topic level"},
	        {"pattern read %user/#\n", 1, "whole topic level"},
	        {"pattern read users/%c\n", 1, "'%c' (client id) is not supported"},
	        {"topic read users/%c\n", 1, "'%c' (client id) is not supported"},
	        {"pattern read users/x%cy\n", 1, "'%c' (client id) is not supported"},
	        {"user\n", 1, "'user' needs a name"},
	        {"role \t\n", 1, "'role' needs a name"},
	        {"user \xc3\x28\n", 1, "not valid UTF-8"},
	        {"user alice\ntopic read a\nuser bob\nuser alice\n", 4,
	         "second block for user 'alice' (the first is at line 1)"},
	        {"role r\nrole s\nrole r\nrole r\nuser u\nuser u\n", 3,
	         "second block for role 'r' (the first is at line 1)"},
	        {"user u\nrole r\nrole r\nuser u\n", 3, "role 'r'"},
	        {"user u\nrole r\nuser u\nrole r\n", 3, "user 'u'"},
	        {"topic read aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/#/\n", 1,
	         "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"},
	};
	static const char nul[] = "topic read a\ntopic read b\0c\n";
	struct cable_principal p = who("p", NULL, 0);
	struct cable_acl *acl;
	size_t i;
	struct cable_error err = {0};

	for (i = 0; i < CABLE_ARRAY_LEN(cases); i++)
		load_fails(cases[i].text, strlen(cases[i].text), cases[i].line, cases[i].what);
	load_fails(nul, sizeof(nul) - 1, 2, "NUL byte");
	/* '%' is text in topic lines unless a level is exactly a placeholder. */
	acl = load("topic read shop/10%cash\ntopic read 100%used/%ux\n");
	ASSERT_EQ(rd(acl, &p, "shop/10%cash"), ALLOW);
	ASSERT_EQ(rd(acl, &p, "100%used/%ux"), ALLOW);
	cable_acl_free(acl);
	/* Not a duplicate: a user and a role may share a name. */
	cable_acl_free(load("user ops\nrole ops\n"));
	/* The offset is that of the offending line. */
	ASSERT_NULL(cable_acl_new(S("topic read a\n  bogus\n"), &err));
	ASSERT_EQ(err.offset, 13);
	/* No error struct: still just NULL. */
	ASSERT_NULL(cable_acl_new(S("bogus\n"), NULL));
	ASSERT_NULL(cable_acl_new(NULL, 3, &err));
	ASSERT_EQ(err.code, CABLE_EINVAL);
}

TEST_MAIN(TEST(test_scenario), TEST(test_example_file), TEST(test_default_deny),
          TEST(test_deny_wins), TEST(test_roles), TEST(test_many_blocks), TEST(test_patterns),
          TEST(test_pattern_injection), TEST(test_pattern_long_user), TEST(test_dollar_topics),
          TEST(test_subscribe_results), TEST(test_subscribe_hash), TEST(test_intersect_bruteforce),
          TEST(test_subscribe_vs_check), TEST(test_parse_tolerance), TEST(test_parse_access_words),
          TEST(test_parse_errors))
