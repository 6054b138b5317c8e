/*
 * The generic min-heap (cable_heap.h). Pure.
 */
#include <stdlib.h>

#include "cable.h"
#include "cable_heap.h"

void cable_heap_init(struct cable_heap *h, bool (*less)(const void *a, const void *b),
                     void (*moved)(void *item, size_t index))
{
	h->items = NULL;
	h->n = h->cap = 0;
	h->less = less;
	h->moved = moved;
}

void cable_heap_free(struct cable_heap *h)
{
	free(h->items);
	h->items = NULL;
	h->n = h->cap = 0;
}

static void place(struct cable_heap *h, size_t i, void *item)
{
	h->items[i] = item;
	if (h->moved)
		h->moved(item, i);
}

/* Move the item at i up or down until the order holds again. */
static void sift(struct cable_heap *h, size_t i)
{
	void *item = h->items[i];
	size_t k;

	while (i > 0 && h->less(item, h->items[(i - 1) / 2])) {
		place(h, i, h->items[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		k = 2 * i + 1;
		if (k >= h->n)
			break;
		if (k + 1 < h->n && h->less(h->items[k + 1], h->items[k]))
			k++;
		if (!h->less(h->items[k], item))
			break;
		place(h, i, h->items[k]);
		i = k;
	}
	place(h, i, item);
}

int cable_heap_push(struct cable_heap *h, void *item)
{
	void **grown = cable_grow(h->items, h->n, &h->cap, sizeof(*grown), 16);

	if (grown == NULL)
		return CABLE_ENOMEM;
	h->items = grown;
	h->items[h->n++] = item;
	sift(h, h->n - 1);
	return CABLE_OK;
}

void *cable_heap_peek(const struct cable_heap *h)
{
	return h->n ? h->items[0] : NULL;
}

void *cable_heap_remove(struct cable_heap *h, size_t index)
{
	void *item = h->items[index];

	if (--h->n > index) {
		h->items[index] = h->items[h->n];
		sift(h, index);
	}
	if (h->moved)
		h->moved(item, CABLE_HEAP_NONE);
	return item;
}

void *cable_heap_pop(struct cable_heap *h)
{
	return h->n ? cable_heap_remove(h, 0) : NULL;
}

void cable_heap_update(struct cable_heap *h, size_t index)
{
	sift(h, index);
}
