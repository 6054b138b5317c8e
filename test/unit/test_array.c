/*
 * cable_grow: the array growth every module uses (cable.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "cable.h"
#include "test.h"

static void test_grows_by_doubling_from_first_and_keeps_contents(void)
{
	size_t cap = 0, n;
	int *v = NULL, *p;

	for (n = 0; n < 100; n++) {
		p = cable_grow(v, n, &cap, sizeof(*v), 4);
		ASSERT_NOT_NULL(p);
		v = p;
		v[n] = (int)n;
		ASSERT_LT(n, cap);
	}
	ASSERT_EQ(cap, 128); /* 4, 8, ... 128 */
	for (n = 0; n < 100; n++)
		ASSERT_EQ(v[n], (int)n);
	free(v);
}

static void test_room_left_returns_the_same_array(void)
{
	size_t cap = 8;
	int *v = malloc(cap * sizeof(*v));

	ASSERT_NOT_NULL(v);
	ASSERT(cable_grow(v, 7, &cap, sizeof(*v), 4) == v);
	ASSERT_EQ(cap, 8);
	free(v);
}

static void test_overflow_fails_and_leaves_the_array(void)
{
	size_t cap = SIZE_MAX / 16 + 1;
	char c = 'x';

	/* Doubling would overflow the byte count: refused, nothing freed or changed. */
	ASSERT_NULL(cable_grow(&c, cap, &cap, 16, 4));
	ASSERT_EQ(cap, SIZE_MAX / 16 + 1);
	ASSERT_EQ(c, 'x');
	cap = SIZE_MAX / 2 + 1; /* doubling the count itself overflows */
	ASSERT_NULL(cable_grow(&c, cap, &cap, 1, 4));
}

TEST_MAIN(TEST(test_grows_by_doubling_from_first_and_keeps_contents),
          TEST(test_room_left_returns_the_same_array),
          TEST(test_overflow_fails_and_leaves_the_array))
