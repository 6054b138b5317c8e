/*
 * An encoded server->client WebSocket text frame, shared by reference.
 *
 * One frame is built once (for example once per identifier for a broadcast) and
 * queued on every connection that receives it; the last unref frees it. The payload
 * is preceded by CABLE_FRAME_HEADROOM writable bytes so the WebSocket layer can
 * write its header in place (libwebsockets needs LWS_PRE = 16 bytes; gateway.c
 * checks this at compile time). The payload is followed by one NUL byte (not part
 * of len) so it can be logged or compared as a string.
 *
 * Thread: a frame is owned by one thread at a time. The reference count is not
 * atomic: frames are only shared inside the gateway thread.
 */
#ifndef CABLE_FRAME_H
#define CABLE_FRAME_H

#include <stddef.h>

#define CABLE_FRAME_HEADROOM 16

struct cable_frame {
	size_t refs;
	size_t len;          /* payload bytes, excluding headroom and the NUL */
	unsigned char buf[]; /* CABLE_FRAME_HEADROOM + len + 1 */
};

/* A new frame with refs = 1 and room for len payload bytes (NUL-terminated). NULL on ENOMEM. */
struct cable_frame *cable_frame_new(size_t len);

/* The first payload byte. */
static inline char *cable_frame_data(struct cable_frame *f)
{
	return (char *)f->buf + CABLE_FRAME_HEADROOM;
}

static inline struct cable_frame *cable_frame_ref(struct cable_frame *f)
{
	f->refs++;
	return f;
}

/* Drop one reference; frees at zero. Accepts NULL. */
void cable_frame_unref(struct cable_frame *f);

#endif
