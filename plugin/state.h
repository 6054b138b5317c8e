/*
 * Last values: the internal MQTT client and the last-value cache (state.c, which alone
 * writes struct state_client). Gateway thread, except state_parse_listener.
 */
#ifndef CABLE_STATE_H
#define CABLE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cable_queue.h"
#include "cable_retained.h"

struct gw;
struct session;
struct sub;
struct sockaddr_storage;

enum state_phase { STATE_DOWN, STATE_SYNCING, STATE_LIVE };

struct state_client {
	enum state_phase phase;
	struct lws *wsi; /* NULL while not connected */
	int fd;
	uint8_t *in; /* a partial packet */
	size_t in_len, in_cap;
	uint8_t out[512]; /* CONNECT, SUBSCRIBE, PINGREQ not yet written */
	size_t out_len;
	struct cable_retained *cache; /* what subscribes replay from */
	struct cable_retained *next;  /* being filled by the broker's replay (SYNCING) */
	struct cable_msg *backlog, *backlog_tail; /* read, not yet fanned out */
	size_t backlog_count, backlog_bytes;      /* bounded as to_gateway is */
	bool dispatch_pending;                    /* dispatch_sul will continue */
	uint64_t dropped, reported_drops;         /* live messages dropped: the queue was full */
	lws_usec_t next_drop_log;
	lws_sorted_usec_list_t retry_sul, ping_sul, dispatch_sul;
	lws_usec_t failing_since, next_warn, sync_started;
	lws_usec_t lost_at; /* a live connection was lost then (reported at the next sync) */
	bool warned_full;
	unsigned refusals; /* CONNACK/SUBACK refusals since the last synchronisation */
	bool pending;      /* some sub->replay_pending is set */
	uint64_t connects, replayed;
	uint64_t skipped;        /* replayed values a "message" channel could not carry */
	uint64_t refused_before; /* refusals of caches already replaced */
};

/* Broker thread, in start(): is spec a usable listener address? */
int state_parse_listener(const char *spec, struct sockaddr_storage *ss, unsigned *len);
void state_start(struct gw *gw);
void state_release(struct gw *gw);
struct ext_plan;
/* plan: an ext subscribe's history request (ext.c), whose topics' values are left out */
void state_replay(struct session *s, struct sub *sub, const struct ext_plan *plan);
void state_catch_up(struct gw *gw);
extern const struct lws_protocols state_protocol;

#endif
