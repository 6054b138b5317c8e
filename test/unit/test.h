/*
 * A tiny assertion and test-runner header in the spirit of libuv's test/task.h.
 *
 * Every ASSERT prints file, line, the expression and both values, then abort()s, so
 * a failure stops in gdb and sanitizers print a stack. Checks are never compiled out.
 *
 * A test file defines functions `static void test_name(void)` and ends with
 *   TEST_MAIN(TEST(test_a), TEST(test_b), ...)
 * The runner prints one line per test and a closing "N passed, 0 failed" line.
 */
#ifndef CABLE_TEST_H
#define CABLE_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_FAIL_(...)                                                                            \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                    \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

#define ASSERT(x)                                                                                  \
	do {                                                                                       \
		if (!(x))                                                                          \
			TEST_FAIL_("assertion failed: %s", #x);                                    \
	} while (0)

#define ASSERT_INT_OP_(a, op, b)                                                                   \
	do {                                                                                       \
		intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                                   \
		if (!(a_ op b_))                                                                   \
			TEST_FAIL_("%s %s %s: %jd vs %jd", #a, #op, #b, a_, b_);                   \
	} while (0)

#define ASSERT_EQ(a, b)    ASSERT_INT_OP_(a, ==, b)
#define ASSERT_NE(a, b)    ASSERT_INT_OP_(a, !=, b)
#define ASSERT_LT(a, b)    ASSERT_INT_OP_(a, <, b)
#define ASSERT_LE(a, b)    ASSERT_INT_OP_(a, <=, b)
#define ASSERT_GT(a, b)    ASSERT_INT_OP_(a, >, b)
#define ASSERT_GE(a, b)    ASSERT_INT_OP_(a, >=, b)
#define ASSERT_OK(a)       ASSERT_EQ(a, 0)
#define ASSERT_TRUE(a)     ASSERT(a)
#define ASSERT_FALSE(a)    ASSERT(!(a))
#define ASSERT_NULL(p)     ASSERT((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)

#define ASSERT_STR_EQ(a, b)                                                                        \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                               \
			TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",       \
			           b_ ? b_ : "(null)");                                            \
	} while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
	do {                                                                                       \
		if (memcmp((a), (b), (n)) != 0)                                                    \
			TEST_FAIL_("%s == %s (%zu bytes): \"%.*s\" vs \"%.*s\"", #a, #b,           \
			           (size_t)(n), (int)(n), (const char *)(a), (int)(n),             \
			           (const char *)(b));                                             \
	} while (0)

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST(fn)                                                                                   \
	{                                                                                          \
#fn, fn                                                                            \
	}

#define TEST_MAIN(...)                                                                             \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		static const struct test_case cases[] = {__VA_ARGS__};                             \
		size_t i, n = sizeof(cases) / sizeof(cases[0]), ran = 0;                           \
		for (i = 0; i < n; i++) {                                                          \
			if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)                       \
				continue;                                                          \
			cases[i].fn();                                                             \
			printf("ok - %s\n", cases[i].name);                                        \
			fflush(stdout);                                                            \
			ran++;                                                                     \
		}                                                                                  \
		printf("%zu passed, 0 failed\n", ran);                                             \
		return ran ? 0 : 1;                                                                \
	}

#endif
