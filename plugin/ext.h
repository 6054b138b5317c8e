/*
 * AnyCable's extended protocol (actioncable-v1-ext-json): reliable streams (offsets,
 * epoch, history), session restore and pongs (ext.c, which alone writes struct ext_gw,
 * opaque here, and the sessions' struct resume). Gateway thread.
 */
#ifndef CABLE_EXT_H
#define CABLE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cable_frame.h"
#include "cable_queue.h"

struct gw;
struct session;
struct sub;
struct cable_cmd;
struct held;     /* frames of a restored subscription held until its history command */
struct resume;   /* a session's ext state */
struct ext_gw;   /* the gateway's: history, epoch, restorable sessions */
struct ext_plan; /* a subscribe's history request */

int ext_start(struct gw *gw);
void ext_release(struct gw *gw);
bool ext_attach(struct session *s);   /* an ext connection opened; false: out of memory */
void ext_welcome(struct session *s);  /* restore or greet */
void ext_detach(struct session *s);   /* it closed: park it for restore, or forget it */
void ext_received(struct session *s); /* any frame from the client (pongs) */
void ext_tick(struct gw *gw);         /* every ping: expiry, pong timeouts */
void ext_history(struct session *s, const struct cable_cmd *cmd); /* the history command */
/* History on subscribe: plan, (last values, skipping what the plan covers), send. */
struct ext_plan *ext_history_plan(struct session *s, struct sub *sub, const struct cable_cmd *cmd);
bool ext_skip_last_value(const struct ext_plan *rp, const char *topic, size_t len);
void ext_history_send(struct session *s, struct sub *sub, struct ext_plan *rp, bool answer);
void ext_sub_gone(struct gw *gw, struct sub *sub);
bool ext_tracked(struct gw *gw, const struct cable_msg *m, uint64_t *offset);
struct cable_frame *ext_frame(struct gw *gw, struct sub *sub, const char *value, size_t len,
                              const struct cable_msg *m, uint64_t offset);
bool ext_hold(struct sub *sub, struct cable_frame *f, const struct cable_msg *m, uint64_t offset);
size_t ext_metrics(struct gw *gw, char *buf, size_t len);
/* Values a "message" channel could not carry in history replays (binary_skipped_total). */
uint64_t ext_skipped(const struct gw *gw);

#endif
