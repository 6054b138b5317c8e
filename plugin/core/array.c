/*
 * cable_grow: the one way the core and the gateway grow an array. Pure; see cable.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cable.h"

void *cable_grow(void *array, size_t n, size_t *cap, size_t elem, size_t first)
{
	size_t want;
	void *grown;

	if (n < *cap)
		return array;
	want = *cap ? *cap * 2 : first;
	if (want <= *cap || elem == 0 || want > SIZE_MAX / elem)
		return NULL;
	grown = realloc(array, want * elem);
	if (grown == NULL)
		return NULL;
	*cap = want;
	return grown;
}
