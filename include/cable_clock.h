/* A monotonic clock in nanoseconds, the same on every thread. */
#ifndef CABLE_CLOCK_H
#define CABLE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t cable_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
