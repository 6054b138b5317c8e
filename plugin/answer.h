/*
 * Answers to a browser's perform (acks, refusals, device replies): answer.c alone
 * writes struct gw_answers. Gateway thread.
 */
#ifndef CABLE_ANSWER_H
#define CABLE_ANSWER_H

#include <stdint.h>

#include "cable_chanmap.h"
#include "cable_proto.h"
#include "cable_queue.h"

struct gw;
struct session;
struct sub;
struct answer_slot;

struct gw_answers {
	struct answer_slot *slots;        /* by token */
	uint64_t acks, refusals, replies; /* answers sent to performing browsers */
	uint64_t replies_unclaimed;       /* device replies for no (longer) subscribed token */
};

struct cable_answer_to *answer_prepare(struct session *s, struct sub *sub,
                                       const struct cable_perform_info *info, uint32_t seq);
void answer_refuse(struct session *s, struct sub *sub, const struct cable_perform_info *info,
                   enum cable_refusal refusal, uint32_t seq);
void answer_from_broker(struct gw *gw, const struct cable_msg *m);
void answer_forget(struct gw *gw, struct sub *sub);
void answer_release(struct gw *gw);

#endif
