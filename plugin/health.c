/*
 * The gateway's periodic duties (health.h), on the ping timer: ActionCable pings to
 * every session, the broker TICK watchdog (whose verdict /health and performs report),
 * giving freed memory back to the system, and flushing the listener's rate-limited log
 * lines. health.c alone writes struct gw_health. Gateway thread.
 */
#include <malloc.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "gw.h"

/*
 * The broker runs MOSQ_EVT_TICK about ten times a second. If it never has after a few
 * seconds (Mosquitto 2.0.11 with per_listener_settings true sends plugins none), no
 * browser publish and no log line of ours can leave: say so on stderr, the one channel
 * that needs no broker thread. Every shard looks; the first one to look decides for all
 * (hub->tick_verdict), so every shard answers /health and performs alike and the error
 * is printed once.
 */
static const char no_tick[] = "the broker sends no MOSQ_EVT_TICK, so browser publishes cannot be "
                              "delivered: set per_listener_settings false (Mosquitto "
                              "2.0.11-2.0.14 send plugins no TICK otherwise)";

static void check_ticks(struct gw *gw)
{
	int verdict = HEALTH_UNDECIDED;

	if (gw->health.warned_tick || ++gw->health.pings * gw->cfg.ping_interval < 5)
		return;
	gw->health.warned_tick = true;
	if (atomic_compare_exchange_strong(
	            &gw->hub->tick_verdict, &verdict,
	            atomic_load_explicit(&gw->link->ticks, memory_order_relaxed) != 0
	                    ? HEALTH_TICKING
	                    : HEALTH_NO_TICK)) {
		if (atomic_load(&gw->hub->tick_verdict) == HEALTH_NO_TICK) {
			fprintf(stderr, "mosquitto-cable: error: %s\n", no_tick);
			gw_log(gw, MOSQ_LOG_ERR, "%s", no_tick);
		}
	}
	/* From now on /health answers 503 with this, and performs are refused with it. */
	if (atomic_load(&gw->hub->tick_verdict) == HEALTH_NO_TICK)
		gw->health.unhealthy = no_tick;
}

const char *health_problem(struct gw *gw)
{
	return atomic_load(&gw->hub->tick_verdict) == HEALTH_NO_TICK ? no_tick : NULL;
}

/*
 * glibc returns a thread arena's memory only from its top, so after a crowd of
 * browsers leaves, the gateway's freed memory stays mapped, pinned by a few
 * long-lived blocks (the soak test saw RSS stay 25 MB up with 94 KiB in use). When
 * the connection count has halved since the last look, give the free pages back.
 * The same after any other burst (large identifiers and messages, replies waiting for
 * a slow reader): when the memory resident but not handed out by malloc is TRIM_GROWTH
 * above its lowest level and malloc holds that much free. A trim that could not give
 * enough back (fragmentation) is retried only once TRIM_RETRY more is resident.
 *
 * The numbers are the process's (RSS, mallinfo2 over every arena) and malloc_trim
 * trims every arena, so shard 0 alone decides, from the sessions of every shard.
 *
 * malloc_trim gives back free pages inside an arena and the top of the main arena
 * only; the top of a thread's arena (each shard's) shrinks only in free(), and only
 * beyond M_TRIM_THRESHOLD, which glibc raises after freeing a large mmapped block (to
 * twice its size, up to 64 MiB). With two shards, two arena tops kept about 10 MiB
 * resident after a burst that one shard returned. So the threshold is fixed at
 * TRIM_TOP (which also keeps blocks over 128 KiB in mmap, as glibc does at first).
 */
#define TRIM_TOP    ((size_t)1024 * 1024)
#define TRIM_GROWTH ((size_t)4 * 1024 * 1024)
#define TRIM_RETRY  ((size_t)1024 * 1024)

/* Resident bytes that malloc has not handed out (code, libraries, free heap pages). */
static size_t resident_unused(struct mallinfo2 *mi)
{
	unsigned long size, pages = 0;
	size_t rss, used;
	FILE *f;

	*mi = mallinfo2();
	used = mi->uordblks + mi->hblkhd;
	f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &pages) != 2)
		pages = 0;
	fclose(f);
	rss = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
	return rss > used ? rss - used : 0;
}

static void trim_now(struct gw *gw)
{
	struct mallinfo2 mi;

	malloc_trim(0);
	gw->health.unused_after_trim = resident_unused(&mi);
}

static void trim_memory(struct gw *gw)
{
	struct mallinfo2 mi;
	size_t unused;

	size_t n = atomic_load(&gw->hub->sessions);

	if (gw->shard != 0)
		return;
	if (n > gw->health.peak_sessions)
		gw->health.peak_sessions = n;
	if (gw->health.peak_sessions >= 256 && n < gw->health.peak_sessions / 2) {
		trim_now(gw);
		gw->health.peak_sessions = n;
		return;
	}
	unused = resident_unused(&mi);
	if (unused < gw->health.unused_base)
		gw->health.unused_base = unused;
	if (unused < gw->health.unused_after_trim)
		gw->health.unused_after_trim = unused;
	if (unused >= gw->health.unused_base + TRIM_GROWTH && mi.fordblks >= TRIM_GROWTH &&
	    unused >= gw->health.unused_after_trim + TRIM_RETRY)
		trim_now(gw);
}

static void ping_all(lws_sorted_usec_list_t *sul)
{
	struct gw *gw = lws_container_of(sul, struct gw, health.ping_sul);
	struct cable_frame *f;
	struct session *s;

	f = cable_proto_ping((long long)time(NULL));
	if (f) {
		outbound_hold(gw); /* one write per connection, without the writable callback */
		for (s = gw->sess.list; s; s = s->next)
			session_send(s, f);
		outbound_flush(gw);
		cable_frame_unref(f);
	}
	gw_schedule(gw, &gw->health.ping_sul, ping_all,
	            (lws_usec_t)gw->cfg.ping_interval * LWS_US_PER_SEC);
	ext_tick(gw);
	check_ticks(gw);
	trim_memory(gw);
	listen_flush_logs(gw);
}

void health_start(struct gw *gw)
{
	struct mallinfo2 mi;

	if (gw->shard == 0) { /* trim_memory: once for the process */
		mallopt(M_TRIM_THRESHOLD, (int)TRIM_TOP);
		gw->health.unused_base = gw->health.unused_after_trim = resident_unused(&mi);
	}
	gw_schedule(gw, &gw->health.ping_sul, ping_all,
	            (lws_usec_t)gw->cfg.ping_interval * LWS_US_PER_SEC);
}
