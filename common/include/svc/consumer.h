/*
 * svc/consumer.h - consuming events: one thread per subscription, each
 * with its own svc_mq consumer, an inbox table that makes redeliveries
 * no-ops, and manual acks after the effect committed.
 *
 * A service lists its subscriptions in its svc_app; svc_app_main() starts
 * one consumer per entry when RABBITMQ_URL is set and stops them while
 * draining (a delivery not acked by then returns to its queue). Per
 * delivery the consumer parses the body, then in ONE transaction on the
 * thread's svc_db_thread() inserts the event id into
 * `inbox` (ON CONFLICT DO NOTHING) and, only when that inserted a row,
 * calls the handler. Success commits, then acks. Anything else - a body
 * that is not an event, a handler failure (rolled back) - rejects with
 * requeue, so the quorum queue's delivery limit dead-letters a poison
 * message to "<queue>.dead" after CONSUMER_MAX_REDELIVERIES returns; no
 * event is ever acked away unapplied. The connection is reopened with a
 * jittered backoff, and the queue declared and consumed again. Every
 * delivery is counted in events_consumed_total{event_type,outcome}: applied,
 * duplicate, failed (requeued), or dead_lettered (failed on the last
 * delivery the broker allows). This is not publishing (the outbox relay)
 * nor the AMQP wrapper (svc/mq.h).
 */
#ifndef SVC_CONSUMER_H
#define SVC_CONSUMER_H

#include <jansson.h>
#include <stdbool.h>

#include "svc/db.h"
#include "svc/mq.h"

/* What a handler may want to know about an event besides its data. */
struct svc_event_meta {
	const char *id;		 /* the event id (uuid) */
	const char *source;	 /* publishing service; may be NULL */
	const char *timestamp;	 /* RFC 3339; may be NULL */
	const char *request_id;	 /* header x-request-id; may be NULL */
	const char *traceparent; /* header traceparent; may be NULL */
	bool redelivered;
};

/*
 * Runs inside the consumer's open transaction on db: it must not begin,
 * commit or roll back. data is borrowed (the event's "data" member, may
 * be any JSON value). Returns 0 when the effect is done (or nothing was
 * to be done), or a negative SVC_E* to roll back and requeue the event;
 * data the handler cannot use (a missing id) is SVC_EVALIDATION, so the
 * event ends in the dead-letter queue for someone to look at.
 */
typedef int (*svc_event_fn)(struct svc_db *db, const char *event_type,
			    json_t *data, const struct svc_event_meta *meta);

struct svc_subscription {
	const char *queue;	     /* "<service>.<purpose>" */
	const char *const *patterns; /* routing keys, NULL-terminated */
	svc_event_fn handle;
};

struct svc_consumer_config {
	const struct svc_mq_config *mq; /* borrowed; copied by start */
	int max_redeliveries;		/* CONSUMER_MAX_REDELIVERIES */
	int prefetch;			/* CONSUMER_PREFETCH */
};

struct svc_consumer;

/*
 * Starts a thread consuming sub->queue (sub is borrowed and must outlive
 * the consumer; cfg is copied). The database must be set up
 * (svc_db_setup). Returns a new consumer (svc_consumer_stop frees it), or
 * NULL when out of memory or no thread could be started.
 */
struct svc_consumer *svc_consumer_start(const struct svc_subscription *sub,
					const struct svc_consumer_config *cfg);

/*
 * Asks the thread to stop: it finishes the delivery in hand (if any),
 * takes no other, and closes its connection, so the deliveries the broker
 * had sent ahead (prefetched, unacked) go back to the queue. Returns at
 * once; NULL is a no-op.
 */
void svc_consumer_quit(struct svc_consumer *c);

/*
 * Quits (if not asked yet) and waits for the thread until deadline_ms
 * (svc_now_ms() clock). Past it, the statement its handler is running is
 * cancelled: the transaction rolls back and the delivery goes back to the
 * queue, for the next consumer. Then frees c. NULL is a no-op.
 */
void svc_consumer_stop(struct svc_consumer *c, long long deadline_ms);

#endif
