/*
 * The cross-thread queue: ordering, bounds, the wake rule, and a two-thread stress
 * run (the TSan build in `make check-deep` runs this file with -fsanitize=thread).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable.h"
#include "cable_queue.h"
#include "test.h"

static atomic_int wakes;

static void count_wake(void *arg)
{
	(void)arg;
	atomic_fetch_add(&wakes, 1);
}

static struct cable_msg *msg(unsigned n)
{
	char topic[32];
	struct cable_msg *m;

	snprintf(topic, sizeof(topic), "t/%u", n);
	m = cable_msg_new(CABLE_MSG_PUBLISH, topic, strlen(topic), &n, sizeof(n));
	ASSERT_NOT_NULL(m);
	return m;
}

static unsigned seq_of(const struct cable_msg *m)
{
	unsigned n;

	memcpy(&n, m->payload, sizeof(n));
	return n;
}

static void test_fifo_and_wake_once_per_burst(void)
{
	struct cable_queue q;
	struct cable_msg *head, *m;
	unsigned i, expect = 0;
	bool waiting = true;

	atomic_store(&wakes, 0);
	ASSERT_OK(cable_queue_init(&q, 100, 1 << 20, count_wake, NULL));
	for (i = 0; i < 10; i++)
		ASSERT_OK(cable_queue_push(&q, msg(i), false));
	ASSERT_EQ(atomic_load(&wakes), 1); /* only the push onto the empty queue wakes */
	head = cable_queue_take_all(&q, &waiting);
	ASSERT_FALSE(waiting);
	for (m = head; m; m = m->next)
		ASSERT_EQ(seq_of(m), expect++);
	ASSERT_EQ(expect, 10);
	cable_msg_free_chain(head);
	ASSERT_NULL(cable_queue_take_all(&q, NULL));
	ASSERT_OK(cable_queue_push(&q, msg(99), false));
	ASSERT_EQ(atomic_load(&wakes), 2); /* empty again: the next push wakes again */
	cable_queue_release(&q);
}

static void test_bounds_count_drops_and_report_waiting(void)
{
	struct cable_queue q;
	struct cable_msg *m;
	uint64_t dropped;
	size_t count;
	bool waiting;

	ASSERT_OK(cable_queue_init(&q, 3, 1 << 20, NULL, NULL));
	ASSERT_OK(cable_queue_push(&q, msg(0), false));
	ASSERT_OK(cable_queue_push(&q, msg(1), false));
	ASSERT_OK(cable_queue_push(&q, msg(2), false));
	m = msg(3);
	ASSERT_EQ(cable_queue_push(&q, m, false), CABLE_EFULL); /* m stays ours */
	cable_queue_stats(&q, &count, &dropped);
	ASSERT_EQ(count, 3);
	ASSERT_EQ(dropped, 1);
	ASSERT_OK(cable_queue_push(&q, m, true)); /* force ignores the bound */
	cable_msg_free_chain(cable_queue_take_all(&q, &waiting));
	ASSERT_TRUE(waiting); /* the consumer learns a producer was refused */
	cable_msg_free_chain(cable_queue_take_all(&q, &waiting));
	ASSERT_FALSE(waiting);

	cable_queue_release(&q);

	/* The byte bound: topic + payload bytes. */
	ASSERT_OK(cable_queue_init(&q, 100, 20, NULL, NULL));
	ASSERT_OK(cable_queue_push(&q, msg(1), false)); /* "t/1" + 4 bytes = 7 */
	ASSERT_OK(cable_queue_push(&q, msg(2), false)); /* 14 */
	m = msg(3);
	ASSERT_EQ(cable_queue_push(&q, m, false), CABLE_EFULL); /* 21 > 20 */
	cable_msg_free(m);
	cable_queue_release(&q); /* frees what is still queued */
}

#define STRESS_N 200000

static void *producer(void *arg)
{
	struct cable_queue *q = arg;
	struct cable_msg *m;
	unsigned i;

	for (i = 0; i < STRESS_N; i++) {
		m = msg(i);
		while (cable_queue_push(q, m, false) != CABLE_OK)
			sched_yield(); /* full: wait for the consumer, as the gateway pauses a
			                  browser */
	}
	return NULL;
}

static void test_two_threads_nothing_lost_or_reordered(void)
{
	struct cable_queue q;
	struct cable_msg *head, *m;
	pthread_t t;
	unsigned expect = 0;

	ASSERT_OK(cable_queue_init(&q, 64, 1 << 20, count_wake, NULL));
	ASSERT_OK(pthread_create(&t, NULL, producer, &q));
	while (expect < STRESS_N) {
		head = cable_queue_take_all(&q, NULL);
		for (m = head; m; m = m->next)
			ASSERT_EQ(seq_of(m), expect++);
		cable_msg_free_chain(head);
		if (head == NULL)
			sched_yield();
	}
	ASSERT_OK(pthread_join(t, NULL));
	ASSERT_NULL(cable_queue_take_all(&q, NULL));
	cable_queue_release(&q);
}

/* The answer block a browser's publish carries: copies, NUL-terminated, freed with it. */
static void test_answer_to(void)
{
	struct cable_answer_to *a;
	struct cable_msg *m;

	a = cable_answer_to_new("0123456789abcdefghijkl", "speak", 5, "\"r\0x\"", 5);
	ASSERT_NOT_NULL(a);
	ASSERT_STR_EQ(a->token, "0123456789abcdefghijkl");
	ASSERT_STR_EQ(a->action, "speak");
	ASSERT_EQ(a->action_len, 5);
	ASSERT_EQ(a->request_id_len, 5);
	ASSERT_MEM_EQ(a->request_id, "\"r\0x\"", 5);
	ASSERT_EQ(a->request_id[5], '\0');
	ASSERT_EQ(a->answer, 0);
	ASSERT(!a->request);
	m = cable_msg_new(CABLE_MSG_PUBLISH, "t", 1, "p", 1);
	ASSERT_NOT_NULL(m);
	m->answer = a; /* freed with the message (ASan/valgrind would see a leak) */
	cable_msg_free_chain(m);

	/* Nothing but a token; a token too long is cut, never overflows. */
	a = cable_answer_to_new(NULL, NULL, 0, NULL, 0);
	ASSERT_NOT_NULL(a);
	ASSERT_STR_EQ(a->token, "");
	ASSERT_NULL(a->action);
	ASSERT_NULL(a->request_id);
	free(a);
	a = cable_answer_to_new("0123456789abcdefghijklmnopqrstuvwxyz", NULL, 0, NULL, 0);
	ASSERT_NOT_NULL(a);
	ASSERT_EQ(strlen(a->token), CABLE_ANSWER_TOKEN_LEN);
	m = cable_msg_new(CABLE_MSG_REPLY, "t", 1, NULL, 0);
	ASSERT_NOT_NULL(m);
	m->answer = a;
	cable_msg_free(m);
	cable_msg_free(NULL);
}

TEST_MAIN(TEST(test_fifo_and_wake_once_per_burst), TEST(test_bounds_count_drops_and_report_waiting),
          TEST(test_two_threads_nothing_lost_or_reordered), TEST(test_answer_to))
