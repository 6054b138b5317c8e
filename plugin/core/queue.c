/* Bounded cross-thread FIFO; see cable_queue.h for the design. Any thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable.h"
#include "cable_queue.h"

struct cable_msg *cable_msg_new(enum cable_msg_kind kind, const char *topic, size_t topic_len,
                                const void *payload, size_t payload_len)
{
	struct cable_msg *m;

	m = malloc(sizeof(*m) + topic_len + 1 + payload_len + 1);
	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->topic = m->data;
	m->topic_len = topic_len;
	if (topic_len)
		memcpy(m->topic, topic, topic_len);
	m->topic[topic_len] = '\0';
	m->payload = m->data + topic_len + 1;
	m->payload_len = payload_len;
	if (payload_len)
		memcpy(m->payload, payload, payload_len);
	m->payload[payload_len] = '\0';
	return m;
}

struct cable_answer_to *cable_answer_to_new(const char *token, const char *action,
                                            size_t action_len, const char *request_id,
                                            size_t request_id_len)
{
	struct cable_answer_to *a;
	char *p;

	a = malloc(sizeof(*a) + action_len + 1 + request_id_len + 1);
	if (a == NULL)
		return NULL;
	memset(a, 0, sizeof(*a));
	if (token)
		snprintf(a->token, sizeof(a->token), "%s", token);
	p = a->data;
	if (action) {
		a->action = p;
		a->action_len = action_len;
		memcpy(p, action, action_len);
		p[action_len] = '\0';
		p += action_len + 1;
	}
	if (request_id) {
		a->request_id = p;
		a->request_id_len = request_id_len;
		memcpy(p, request_id, request_id_len);
		p[request_id_len] = '\0';
	}
	return a;
}

void cable_msg_free(struct cable_msg *m)
{
	if (m)
		free(m->answer);
	free(m);
}

void cable_msg_free_chain(struct cable_msg *m)
{
	struct cable_msg *next;

	for (; m; m = next) {
		next = m->next;
		cable_msg_free(m);
	}
}

int cable_queue_init(struct cable_queue *q, size_t max_count, size_t max_bytes,
                     void (*wake)(void *arg), void *wake_arg)
{
	memset(q, 0, sizeof(*q));
	if (pthread_mutex_init(&q->lock, NULL) != 0)
		return CABLE_ENOMEM;
	q->max_count = max_count;
	q->max_bytes = max_bytes;
	q->wake = wake;
	q->wake_arg = wake_arg;
	return CABLE_OK;
}

void cable_queue_release(struct cable_queue *q)
{
	cable_msg_free_chain(q->head);
	q->head = q->tail = NULL;
	pthread_mutex_destroy(&q->lock);
}

int cable_queue_push(struct cable_queue *q, struct cable_msg *m, bool force)
{
	size_t size = m->topic_len + m->payload_len;
	bool was_empty;

	m->next = NULL;
	pthread_mutex_lock(&q->lock); /* { lock */
	if (!force && (q->count >= q->max_count || q->bytes + size > q->max_bytes)) {
		q->waiting = true;
		q->dropped++;
		pthread_mutex_unlock(&q->lock); /* } lock */
		return CABLE_EFULL;
	}
	was_empty = q->head == NULL;
	if (was_empty)
		q->head = m;
	else
		q->tail->next = m;
	q->tail = m;
	q->count++;
	q->bytes += size;
	pthread_mutex_unlock(&q->lock); /* } lock */

	if (was_empty && q->wake)
		q->wake(q->wake_arg);
	return CABLE_OK;
}

struct cable_msg *cable_queue_take_all(struct cable_queue *q, bool *was_waiting)
{
	struct cable_msg *head;

	pthread_mutex_lock(&q->lock); /* { lock */
	head = q->head;
	q->head = q->tail = NULL;
	q->count = 0;
	q->bytes = 0;
	if (was_waiting)
		*was_waiting = q->waiting;
	q->waiting = false;
	pthread_mutex_unlock(&q->lock); /* } lock */
	return head;
}

void cable_queue_stats(struct cable_queue *q, size_t *count, uint64_t *dropped)
{
	pthread_mutex_lock(&q->lock); /* { lock */
	if (count)
		*count = q->count;
	if (dropped)
		*dropped = q->dropped;
	pthread_mutex_unlock(&q->lock); /* } lock */
}
