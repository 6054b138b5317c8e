/*
 * Answers to a browser's perform: acknowledgements and refusals ({"$cable":"ack"} and
 * {"$cable":"refused"}) and devices' replies to requests ({"$cable":"reply"}), each
 * delivered to the one subscription that performed, on its identifier, in the shape
 * docs/protocol.md describes. Gateway thread only.
 *
 * DESIGN. A subscription that performs an action with an answer or a request gets an
 * answer slot: 16 random bytes in base64url (the token), kept in gw->answers.slots. The token
 * travels with the publish to the broker thread and back (struct cable_answer_to), and
 * is the last level of the request's response topic (CABLE_REPLY_PREFIX<token>). So a
 * message that names a token reaches the subscription that holds it, or nobody once
 * that subscription is gone: no pointer crosses threads, and nothing is kept per
 * request. The token is unguessable, and the response topic starts with '$', so it
 * matches no browser stream (the channel map never streams '$' topics) and no MQTT
 * wildcard subscription ('#' and '+' do not match a leading '$' level).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <openssl/rand.h>

#include "cable_proto.h"
#include "gw.h"

struct answer_slot {
	UT_hash_handle hh; /* in gw->answers.slots, keyed by token */
	struct sub *sub;
	char token[CABLE_ANSWER_TOKEN_LEN + 1];
};

/* The token's first character names the shard that holds the slot (shard.h). */
static bool make_token(const struct gw *gw, char *out)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[16];
	unsigned bits = 0, acc = 0;
	size_t i, n = 0;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	for (i = 0; i < sizeof(raw); i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[n++] = alphabet[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[n++] = alphabet[(acc << (6 - bits)) & 63];
	out[n] = '\0';
	out[0] = shard_token_char(gw->shard);
	return n == CABLE_ANSWER_TOKEN_LEN;
}

/* The subscription's slot, made on first use. NULL when out of memory or randomness. */
static struct answer_slot *slot_for(struct gw *gw, struct sub *sub)
{
	struct answer_slot *a = sub->answer;
	bool added;

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (a == NULL || !make_token(gw, a->token)) {
		free(a);
		return NULL;
	}
	a->sub = sub;
	GW_HASH_ADD(gw->answers.slots, a->token, CABLE_ANSWER_TOKEN_LEN, a, added);
	if (!added) {
		free(a);
		return NULL;
	}
	sub->answer = a;
	return a;
}

void answer_forget(struct gw *gw, struct sub *sub)
{
	if (sub->answer == NULL)
		return;
	HASH_DELETE(hh, gw->answers.slots, sub->answer);
	free(sub->answer);
	sub->answer = NULL;
}

void answer_release(struct gw *gw)
{
	struct answer_slot *a, *tmp;

	HASH_ITER(hh, gw->answers.slots, a, tmp)
	{
		HASH_DELETE(hh, gw->answers.slots, a);
		free(a); /* at shutdown: the subscriptions are gone or going with the gateway */
	}
}

/* Queue one answer value on the subscription's identifier. */
static void send_value(struct sub *sub, char *value, size_t len)
{
	struct cable_frame *f;

	f = cable_proto_message(sub->entry.ident->json, sub->entry.ident->json_len, value, len);
	free(value);
	if (f == NULL)
		return;
	session_send(sub->session, f);
	cable_frame_unref(f);
}

static void send_answer(struct gw *gw, struct sub *sub, const char *kind, const char *action,
                        size_t action_len, const char *request_id, size_t request_id_len,
                        enum cable_refusal refusal)
{
	char *value;
	size_t len;

	if (cable_proto_answer_value(kind, action, action_len, request_id, request_id_len,
	                             refusal == CABLE_REFUSED_NONE ? NULL
	                                                           : cable_refusal_name(refusal),
	                             &value, &len) != CABLE_OK)
		return;
	if (refusal == CABLE_REFUSED_NONE)
		gw->answers.acks++;
	else
		gw->answers.refusals++;
	send_value(sub, value, len);
}

/* The request id of a perform: the browser's "$request", else the connection's count. */
static const char *request_id_of(const struct cable_perform_info *info, uint32_t seq, char buf[16],
                                 size_t *len)
{
	int n;

	if (info->request_id) {
		*len = info->request_id_len;
		return info->request_id;
	}
	n = snprintf(buf, 16, "%u", (unsigned)seq);
	*len = n > 0 ? (size_t)n : 0;
	return buf;
}

void answer_refuse(struct session *s, struct sub *sub, const struct cable_perform_info *info,
                   enum cable_refusal refusal, uint32_t seq)
{
	const char *rid;
	char buf[16];
	size_t rlen;

	if (info->answer == CABLE_ANSWER_NONE)
		return;
	rid = request_id_of(info, seq, buf, &rlen);
	send_answer(s->gw, sub, "refused", info->action, info->action_len, rid, rlen, refusal);
}

struct cable_answer_to *answer_prepare(struct session *s, struct sub *sub,
                                       const struct cable_perform_info *info, uint32_t seq)
{
	struct cable_answer_to *to;
	struct answer_slot *slot;
	const char *rid;
	char buf[16];
	size_t rlen;

	slot = slot_for(s->gw, sub);
	if (slot == NULL)
		return NULL;
	rid = request_id_of(info, seq, buf, &rlen);
	to = cable_answer_to_new(slot->token, info->action, info->action_len, rid, rlen);
	if (to == NULL)
		return NULL;
	to->answer = (int)info->answer;
	to->request = info->request;
	return to;
}

/* The subscription a token names, if it is still there. */
static struct sub *sub_for(struct gw *gw, const char *token, size_t len)
{
	struct answer_slot *a;

	if (len != CABLE_ANSWER_TOKEN_LEN)
		return NULL;
	HASH_FIND(hh, gw->answers.slots, token, len, a);
	return a ? a->sub : NULL;
}

/* A device's reply: the topic is CABLE_REPLY_PREFIX<token>. */
static void deliver_reply(struct gw *gw, const struct cable_msg *m)
{
	const size_t plen = strlen(CABLE_REPLY_PREFIX);
	const struct cable_answer_to *a = m->answer;
	struct sub *sub = NULL;
	char *value;
	size_t len;

	if (m->topic_len > plen && strncmp(m->topic, CABLE_REPLY_PREFIX, plen) == 0)
		sub = sub_for(gw, m->topic + plen, m->topic_len - plen);
	if (sub == NULL) {
		gw->answers.replies_unclaimed++;
		return;
	}
	if (cable_proto_reply_value(a ? a->request_id : NULL, a ? a->request_id_len : 0, m->payload,
	                            m->payload_len, &value, &len) != CABLE_OK)
		return;
	gw->answers.replies++;
	send_value(sub, value, len);
}

void answer_from_broker(struct gw *gw, const struct cable_msg *m)
{
	const struct cable_answer_to *a = m->answer;
	struct sub *sub;

	if (m->kind == CABLE_MSG_REPLY) {
		deliver_reply(gw, m);
		return;
	}
	if (a == NULL || (sub = sub_for(gw, a->token, strlen(a->token))) == NULL)
		return; /* nobody to tell any more */
	if (m->kind == CABLE_MSG_REFUSED && a->answer != CABLE_ANSWER_NONE)
		send_answer(gw, sub, "refused", a->action, a->action_len, a->request_id,
		            a->request_id_len, (enum cable_refusal)a->refusal);
	else if ((m->kind == CABLE_MSG_PUBLISH || m->kind == CABLE_MSG_ACK) &&
	         a->answer == CABLE_ANSWER_ALL)
		send_answer(gw, sub, "ack", a->action, a->action_len, a->request_id,
		            a->request_id_len, CABLE_REFUSED_NONE);
}
