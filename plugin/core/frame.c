/* Shared, reference-counted outbound frames. Pure; see cable_frame.h. */
#include <stdlib.h>

#include "cable_frame.h"

struct cable_frame *cable_frame_new(size_t len)
{
	struct cable_frame *f;

	f = malloc(sizeof(*f) + CABLE_FRAME_HEADROOM + len + 1);
	if (f == NULL)
		return NULL;
	f->refs = 1;
	f->len = len;
	f->buf[CABLE_FRAME_HEADROOM + len] = '\0';
	return f;
}

void cable_frame_unref(struct cable_frame *f)
{
	if (f && --f->refs == 0)
		free(f);
}
