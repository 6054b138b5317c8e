/*
 * Unit tests for plugin/core/heap.c: order, index tracking through `moved`, removal
 * from the middle and re-keying, checked after every step against the items' own keys.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cable.h"
#include "cable_heap.h"
#include "test.h"

struct item {
	long long key;
	size_t slot; /* the index `moved` last reported */
};

static bool earlier(const void *a, const void *b)
{
	return ((const struct item *)a)->key < ((const struct item *)b)->key;
}

static void set_slot(void *item, size_t index)
{
	((struct item *)item)->slot = index;
}

/* The heap property, and every item's slot is its index. */
static void check(const struct cable_heap *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		const struct item *it = h->items[i];

		ASSERT_EQ(it->slot, i);
		if (i > 0)
			ASSERT(!earlier(it, h->items[(i - 1) / 2]));
	}
}

static void test_order(void)
{
	static const long long keys[] = {5, 3, 9, 1, 7, 3, 8, 0, 2};
	struct item items[9];
	struct cable_heap h;
	long long last = -1;
	struct item *it;
	size_t i;

	cable_heap_init(&h, earlier, set_slot);
	ASSERT(cable_heap_peek(&h) == NULL);
	ASSERT(cable_heap_pop(&h) == NULL);
	for (i = 0; i < 9; i++) {
		items[i].key = keys[i];
		ASSERT_EQ(cable_heap_push(&h, &items[i]), CABLE_OK);
		check(&h);
	}
	ASSERT_EQ(((struct item *)cable_heap_peek(&h))->key, 0);
	while ((it = cable_heap_pop(&h)) != NULL) {
		ASSERT(it->key >= last);
		ASSERT_EQ(it->slot, CABLE_HEAP_NONE);
		last = it->key;
		check(&h);
	}
	ASSERT_EQ(last, 9);
	cable_heap_free(&h);
}

/* Without a `moved` callback the heap still orders. */
static void test_no_moved(void)
{
	struct item a = {2, 0}, b = {1, 0};
	struct cable_heap h;

	cable_heap_init(&h, earlier, NULL);
	ASSERT_EQ(cable_heap_push(&h, &a), CABLE_OK);
	ASSERT_EQ(cable_heap_push(&h, &b), CABLE_OK);
	ASSERT(cable_heap_pop(&h) == &b);
	ASSERT(cable_heap_pop(&h) == &a);
	cable_heap_free(&h);
}

static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Random pushes, pops, removals by slot and key changes; the heap must stay exact. */
static void test_random(void)
{
	enum { N = 300 };
	static struct item items[N];
	bool in[N] = {false};
	struct cable_heap h;
	uint64_t rng = 7;
	size_t round, i, count = 0;
	struct item *it, *min;

	cable_heap_init(&h, earlier, set_slot);
	for (round = 0; round < 100000; round++) {
		i = rng_next(&rng) % N;
		switch (rng_next(&rng) % 4) {
		case 0: /* push or remove */
			if (!in[i]) {
				items[i].key = (long long)(rng_next(&rng) % 1000);
				ASSERT_EQ(cable_heap_push(&h, &items[i]), CABLE_OK);
				in[i] = true;
				count++;
			} else {
				ASSERT(cable_heap_remove(&h, items[i].slot) == &items[i]);
				ASSERT_EQ(items[i].slot, CABLE_HEAP_NONE);
				in[i] = false;
				count--;
			}
			break;
		case 1: /* re-key */
			if (in[i]) {
				items[i].key = (long long)(rng_next(&rng) % 1000);
				cable_heap_update(&h, items[i].slot);
			}
			break;
		case 2: /* pop: the least of the items in the heap */
			min = NULL;
			for (i = 0; i < N; i++) {
				if (in[i] && (min == NULL || items[i].key < min->key))
					min = &items[i];
			}
			it = cable_heap_pop(&h);
			if (min == NULL) {
				ASSERT(it == NULL);
				break;
			}
			ASSERT(it != NULL);
			ASSERT_EQ(it->key, min->key);
			in[it - items] = false;
			count--;
			break;
		default:
			break;
		}
		ASSERT_EQ(h.n, count);
		check(&h);
	}
	cable_heap_free(&h);
	ASSERT_EQ(h.n, 0);
}

TEST_MAIN(TEST(test_order), TEST(test_no_moved), TEST(test_random))
