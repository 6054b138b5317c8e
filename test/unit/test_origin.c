/* The Origin allow-list. */
#include <string.h>

#include "cable_origin.h"
#include "test.h"

static struct cable_origins *make(const char *spec)
{
	struct cable_error err = {0};
	struct cable_origins *o = cable_origins_new(spec, strlen(spec), &err);

	if (o == NULL)
		fprintf(stderr, "error: %s\n", err.text);
	return o;
}

static bool allow(const struct cable_origins *o, const char *origin)
{
	return cable_origins_allow(o, origin, origin ? strlen(origin) : 0);
}

static void test_exact(void)
{
	struct cable_origins *o = make("https://app.example.com, http://localhost:3000");

	ASSERT_NOT_NULL(o);
	ASSERT_TRUE(allow(o, "https://app.example.com"));
	ASSERT_TRUE(allow(o, "HTTPS://APP.Example.COM"));
	ASSERT_TRUE(allow(o, "http://localhost:3000"));
	ASSERT_FALSE(allow(o, "http://app.example.com"));      /* scheme differs */
	ASSERT_FALSE(allow(o, "https://app.example.com:443")); /* port must match as written */
	ASSERT_FALSE(allow(o, "http://localhost:3001"));
	ASSERT_FALSE(allow(o, "http://localhost"));
	ASSERT_FALSE(allow(o, "https://app.example.com.evil.net"));
	ASSERT_FALSE(allow(o, "https://evilapp.example.com"));
	ASSERT_FALSE(allow(o, NULL)); /* no Origin header */
	ASSERT_FALSE(allow(o, "null"));
	ASSERT_FALSE(allow(o, ""));
	ASSERT_FALSE(allow(o, "https://app.example.com/"));
	ASSERT_FALSE(allow(o, "https://user@app.example.com"));
	cable_origins_free(o);
}

static void test_wildcard(void)
{
	struct cable_origins *o = make("https://*.example.com");

	ASSERT_NOT_NULL(o);
	ASSERT_TRUE(allow(o, "https://a.example.com"));
	ASSERT_TRUE(allow(o, "https://a.b.example.com"));
	ASSERT_FALSE(allow(o, "https://example.com"));
	ASSERT_FALSE(allow(o, "https://.example.com"));
	ASSERT_FALSE(allow(o, "https://evilexample.com"));
	ASSERT_FALSE(allow(o, "https://a.example.com.evil.net"));
	ASSERT_FALSE(allow(o, "http://a.example.com"));
	ASSERT_FALSE(allow(o, "https://a.example.com:8443"));
	cable_origins_free(o);
}

static void test_any(void)
{
	struct cable_origins *o = make("*");

	ASSERT_NOT_NULL(o);
	ASSERT_TRUE(allow(o, "https://anything.test"));
	ASSERT_TRUE(allow(o, NULL));
	cable_origins_free(o);
}

static void test_bad_specs(void)
{
	struct cable_error err = {0};
	const char *bad[] = {"example.com", "https://",          "https://a.*.com",
	                     "https://*",   "https://host:port", "https://h/path",
	                     "://h"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_NULL(cable_origins_new(bad[i], strlen(bad[i]), &err));
		ASSERT_EQ(err.code, CABLE_EINVAL);
	}
}

TEST_MAIN(TEST(test_exact), TEST(test_wildcard), TEST(test_any), TEST(test_bad_specs))
