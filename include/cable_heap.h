/*
 * A binary min-heap of the caller's items, ordered by the caller's comparator (in the
 * spirit of libuv's heap-inl.h: the heap knows nothing about what it orders).
 *
 * Items are pointers the heap never frees or dereferences except through the callbacks.
 * `moved` (optional) is told every item's new index whenever it changes, and
 * CABLE_HEAP_NONE when the item leaves the heap, so an item can be removed or re-keyed
 * in O(log n) by its index: the gateway's token expiry keeps one heap of sessions by
 * `exp` and one timer for the root.
 *
 *   struct cable_heap h;
 *   cable_heap_init(&h, earlier, set_slot);
 *   cable_heap_push(&h, s);             // CABLE_OK or CABLE_ENOMEM
 *   while ((s = cable_heap_peek(&h)) && s->exp <= now) cable_heap_pop(&h);
 *   cable_heap_remove(&h, s->slot);     // any item, by the index `moved` reported
 *   cable_heap_free(&h);
 *
 * Pure: no I/O, no globals. A heap is used by one thread at a time.
 */
#ifndef CABLE_HEAP_H
#define CABLE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CABLE_HEAP_NONE SIZE_MAX

struct cable_heap {
	void **items;
	size_t n, cap;
	bool (*less)(const void *a, const void *b); /* a must come out before b */
	void (*moved)(void *item, size_t index);    /* may be NULL */
};

void cable_heap_init(struct cable_heap *h, bool (*less)(const void *a, const void *b),
                     void (*moved)(void *item, size_t index));

/* Frees the heap's array (not the items; `moved` is not called). The heap is then empty. */
void cable_heap_free(struct cable_heap *h);

/* Adds an item; CABLE_ENOMEM when out of memory (the heap is then unchanged). */
int cable_heap_push(struct cable_heap *h, void *item);

/* The first item (the least), or NULL when empty. */
void *cable_heap_peek(const struct cable_heap *h);

/* Removes and returns the first item, or NULL when empty. */
void *cable_heap_pop(struct cable_heap *h);

/* Removes the item at `index` (< h->n) and returns it. */
void *cable_heap_remove(struct cable_heap *h, size_t index);

/* Restores the order after the key of the item at `index` (< h->n) changed. */
void cable_heap_update(struct cable_heap *h, size_t index);

#endif
