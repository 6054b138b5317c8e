/*
 * Bounded FIFO of messages between the broker thread and the gateway thread.
 *
 * DESIGN. Exactly two things cross threads: a push onto one of these queues and a
 * wake call. Each direction has its own queue with one producer and one consumer:
 *
 *   broker thread --(to_gateway: MQTT messages, rule reloads)--> gateway thread
 *   gateway thread --(to_broker: publishes from browsers, log lines)--> broker thread
 *
 * A queue is an intrusive singly linked list under a mutex, bounded in both message
 * count and payload bytes. The consumer takes the whole list in one locked step
 * (cable_queue_take_all) and works through it without the lock, so the lock is held
 * for a few instructions per batch, not per message. The producer's wake hook runs
 * after a push that found the queue empty (the consumer cannot have seen the new
 * message yet); pushes onto a non-empty queue do not wake again, so a burst costs
 * one wake. A full queue refuses the push (CABLE_EFULL): the broker side counts a
 * drop (it must never block), the gateway side pauses the browser that sent it and
 * is woken when the consumer has made room (see `waiting`).
 *
 * Thread: every function may be called from any thread; `lock` guards the members
 * marked {lock}.
 */
#ifndef CABLE_QUEUE_H
#define CABLE_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cable_msg_kind {
	CABLE_MSG_PUBLISH, /* an MQTT message: topic, payload, qos, retain */
	CABLE_MSG_LOG,     /* a log line for the broker's log: level, text in `topic` */
	CABLE_MSG_RULES,   /* new rules after a reload: `ptr` is a struct cable_rules * */
	CABLE_MSG_REFUSED, /* broker -> gateway: the broker did not accept a browser's publish
	                      (`answer` says whom to tell) */
	CABLE_MSG_REPLY,   /* broker -> gateway: a device published to a response topic
	                      (topic, payload; `answer->request_id` = its correlation data) */
	CABLE_MSG_ACK,     /* broker -> gateway: a browser's publish was accepted; the publish
	                      itself comes back through the internal client (state.c) */
	CABLE_MSG_CALL,    /* between gateway shards: a function to run on the receiving
	                      shard's thread, in the payload (plugin/shard.h) */
};

/* Length of an answer token: 16 random bytes in base64url, no padding. */
#define CABLE_ANSWER_TOKEN_LEN 22

/*
 * Whom to answer about a browser's publish, and how; travels with it to the broker
 * thread and back. One allocation, strings in `data`.
 */
struct cable_answer_to {
	char token[CABLE_ANSWER_TOKEN_LEN + 1]; /* the performing subscription's (gateway) */
	int answer;                             /* enum cable_answer */
	bool request;                           /* publish with MQTT 5 response topic */
	int refusal;                            /* enum cable_refusal, for REFUSED */
	char *action;                           /* NULL or NUL-terminated, into data */
	size_t action_len;
	char *request_id; /* JSON text, into data; also the MQTT correlation data */
	size_t request_id_len;
	char data[];
};

/* New answer block with copies of the strings (either may be NULL). NULL on ENOMEM. */
struct cable_answer_to *cable_answer_to_new(const char *token, const char *action,
                                            size_t action_len, const char *request_id,
                                            size_t request_id_len);

/*
 * One message, one allocation: the topic (NUL-terminated) and the payload live in
 * `data`. Plain malloc/free on both sides (never mosquitto_malloc: the broker's
 * memory counters are not thread-safe).
 */
struct cable_msg {
	struct cable_msg *next;
	enum cable_msg_kind kind;
	int qos;       /* PUBLISH */
	bool retain;   /* PUBLISH */
	int level;     /* LOG: a MOSQ_LOG_* value */
	bool local;    /* PUBLISH that came from a browser (already published by the broker) */
	void *ptr;     /* RULES */
	uint64_t t_ns; /* PUBLISH: CLOCK_MONOTONIC when the broker handed it over (metrics) */
	uint64_t seq;  /* PUBLISH: the gateway's sequence number, from 1; 0 = not yet given one */
	/* PUBLISH: its offset in the topic's ext history (given by shard 0); 0 = none */
	uint64_t offset;
	struct cable_answer_to *answer; /* PUBLISH from a browser, REFUSED, REPLY; owned */
	char *topic;                    /* points into data */
	size_t topic_len;
	char *payload; /* points into data; NUL-terminated for convenience */
	size_t payload_len;
	char data[];
};

/* New message with copies of topic and payload. NULL on ENOMEM. */
struct cable_msg *cable_msg_new(enum cable_msg_kind kind, const char *topic, size_t topic_len,
                                const void *payload, size_t payload_len);
void cable_msg_free(struct cable_msg *m); /* frees one message (not the chain); accepts NULL */
void cable_msg_free_chain(struct cable_msg *m); /* frees m and every message after it */

struct cable_queue {
	pthread_mutex_t lock;
	struct cable_msg *head; /* {lock} */
	struct cable_msg *tail; /* {lock} */
	size_t count;           /* {lock} */
	size_t bytes;           /* {lock} topic + payload bytes queued */
	bool waiting;           /* {lock} a push was refused since the last take_all */
	size_t max_count;
	size_t max_bytes;
	uint64_t dropped;        /* {lock} pushes refused, for the metrics and the log */
	void (*wake)(void *arg); /* called without the lock after a push onto an empty queue */
	void *wake_arg;
};

/* 0 or CABLE_ENOMEM (mutex). wake may be NULL. */
int cable_queue_init(struct cable_queue *q, size_t max_count, size_t max_bytes,
                     void (*wake)(void *arg), void *wake_arg);
/* Frees every queued message and the mutex. */
void cable_queue_release(struct cable_queue *q);

/*
 * Append m (ownership passes to the queue on success). CABLE_EFULL when over either
 * bound: m stays with the caller, `waiting` is set and `dropped` counted. `force`
 * ignores the bounds (used only for the few control messages that must not be lost,
 * such as RULES).
 */
int cable_queue_push(struct cable_queue *q, struct cable_msg *m, bool force);

/*
 * Take every queued message, oldest first (NULL if none). *was_waiting (may be NULL)
 * reports whether a producer was refused since the last call, so the consumer can
 * tell it that there is room again.
 */
struct cable_msg *cable_queue_take_all(struct cable_queue *q, bool *was_waiting);

/* Snapshot of count and drop counter (for logs and metrics). */
void cable_queue_stats(struct cable_queue *q, size_t *count, uint64_t *dropped);

#endif
