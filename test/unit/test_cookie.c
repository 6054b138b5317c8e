/* The Cookie header parser. */
#include <string.h>

#include "cable_cookie.h"
#include "test.h"

/* The value of `name` in header, or NULL when absent; "<dup>" when refused as duplicate. */
static const char *get(const char *header, const char *name)
{
	static char buf[256];
	struct cable_error err = {0};
	const char *v = (const char *)&err; /* a sentinel: untouched unless found */
	size_t n = 12345;
	int rc = cable_cookie_get(header, strlen(header), name, strlen(name), &v, &n, &err);

	if (rc == CABLE_ENOTFOUND) {
		ASSERT(v == (const char *)&err && n == 12345);
		return NULL;
	}
	if (rc == CABLE_EINVAL) {
		ASSERT_EQ(err.code, CABLE_EINVAL);
		ASSERT_NOT_NULL(strstr(err.text, "more than one cookie named"));
		ASSERT(v == (const char *)&err && n == 12345);
		return "<dup>";
	}
	ASSERT_EQ(rc, CABLE_OK);
	ASSERT(v >= header && v + n <= header + strlen(header));
	ASSERT_LT(n, sizeof(buf));
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

static void test_exact_pairs(void)
{
	ASSERT_STR_EQ(get("cable_jwt=alice", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("a=1; cable_jwt=alice; b=2", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("a=1;cable_jwt=alice;b=2", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("  cable_jwt = alice\t;b=2", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("cable_jwt=\"alice\"", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("cable_jwt=", "cable_jwt"), "");
	ASSERT_STR_EQ(get("cable_jwt=a.b.c-_", "cable_jwt"), "a.b.c-_");
	/* The value runs to the ';': an '=' inside it belongs to it. */
	ASSERT_STR_EQ(get("cable_jwt=a=b=; x=1", "cable_jwt"), "a=b=");
	ASSERT_STR_EQ(get("a=1;", "a"), "1");
	ASSERT_STR_EQ(get(";;a=1;;", "a"), "1");
}

/* The two attacks of issue 10: a longer name, and the name inside another value. */
static void test_no_substring_match(void)
{
	ASSERT_STR_EQ(get("xcable_jwt=mallory; cable_jwt=alice", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("a=cable_jwt=mallory; cable_jwt=alice", "cable_jwt"), "alice");
	ASSERT_STR_EQ(get("cable_jwt=alice; xcable_jwt=mallory", "cable_jwt"), "alice");
	ASSERT_NULL(get("xcable_jwt=mallory", "cable_jwt"));
	ASSERT_NULL(get("a=cable_jwt=mallory", "cable_jwt"));
	ASSERT_NULL(get("cable_jwtx=mallory", "cable_jwt"));
	ASSERT_NULL(get("cable_jwt", "cable_jwt")); /* no '=': a value without a name */
	ASSERT_NULL(get("Cable_Jwt=mallory", "cable_jwt"));
	ASSERT_NULL(get("cable jwt=mallory", "cable_jwt"));
	ASSERT_NULL(get("", "cable_jwt"));
	ASSERT_NULL(get("=cable_jwt", "cable_jwt"));
	ASSERT_NULL(get("x=1", ""));
}

static void test_duplicates_refused(void)
{
	ASSERT_STR_EQ(get("cable_jwt=mallory; cable_jwt=alice", "cable_jwt"), "<dup>");
	ASSERT_STR_EQ(get("cable_jwt=alice; a=1; cable_jwt=alice", "cable_jwt"), "<dup>");
	ASSERT_STR_EQ(get("cable_jwt=; cable_jwt=alice", "cable_jwt"), "<dup>");
	ASSERT_STR_EQ(get("cable_jwt=a;cable_jwt =b", "cable_jwt"), "<dup>");
	/* Other names may repeat. */
	ASSERT_STR_EQ(get("a=1; a=2; cable_jwt=alice", "cable_jwt"), "alice");
}

/* Not NUL-terminated: nothing past len is read (ASan would see it). */
static void test_bounded(void)
{
	static const char text[] = "cable_jwt=alice; b=2";
	char *exact = malloc(10);
	const char *v;
	size_t n;

	memcpy(exact, "cable_jwt=", 10);
	ASSERT_EQ(cable_cookie_get(exact, 10, "cable_jwt", 9, &v, &n, NULL), CABLE_OK);
	ASSERT_EQ(n, 0);
	ASSERT_EQ(cable_cookie_get(exact, 9, "cable_jwt", 9, &v, &n, NULL), CABLE_ENOTFOUND);
	free(exact);
	ASSERT_EQ(cable_cookie_get(text, 15, "cable_jwt", 9, &v, &n, NULL), CABLE_OK);
	ASSERT_EQ(n, 5);
	ASSERT_EQ(cable_cookie_get(NULL, 0, "cable_jwt", 9, &v, &n, NULL), CABLE_ENOTFOUND);
	ASSERT_EQ(cable_cookie_get(text, 0, "cable_jwt", 9, &v, &n, NULL), CABLE_ENOTFOUND);
}

TEST_MAIN(TEST(test_exact_pairs), TEST(test_no_substring_match), TEST(test_duplicates_refused),
          TEST(test_bounded))
