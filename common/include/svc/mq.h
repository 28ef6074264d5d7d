/*
 * svc/mq.h - RabbitMQ for events: publishing with publisher confirms and
 * consuming with manual acks, over librabbitmq (rabbitmq-c) 0.11.
 *
 * A svc_mq is one AMQP connection with one channel, opened either as a
 * publisher (confirm mode, every message mandatory) or as a consumer. It
 * belongs to the thread that opened it and is never shared: rabbitmq-c
 * has no locking and no thread of its own, so heartbeats, confirms and
 * notifications are handled only inside these calls. Nothing blocks
 * without a bound: connecting, logging in and each RPC end after
 * socket_timeout_ms, and so does a send the broker stopped reading
 * (TCP_USER_TIMEOUT); waits take a timeout. A connection or channel error,
 * a publisher blocked by the broker (memory or disk alarm), or confirms
 * that do not come in time break the svc_mq for good (svc_mq_ok() false):
 * the caller closes it, opens a new one after a jittered backoff
 * (svc_retry_delay_ms), and declares and consumes again - there is no
 * automatic reconnection or topology recovery, so what a connection sets
 * up stays visible in the caller's code. This is not the transactional
 * outbox (what to publish, marking rows sent once confirmed) nor a
 * consumer loop with an inbox (when to ack).
 *
 *	pub = svc_mq_open(&cfg, SVC_MQ_PUBLISHER);
 *	for (each row)
 *		svc_mq_publish(pub, &msg, &row->tag);
 *	svc_mq_wait_confirms(pub, last_tag, 5000, mark_sent, rows);
 */
#ifndef SVC_MQ_H
#define SVC_MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SVC_MQ_EXCHANGE	    "events"
#define SVC_MQ_DLX	    "events.dlx"
#define SVC_MQ_DEAD_SUFFIX  ".dead"
#define SVC_MQ_DEFAULT_URL  "amqp://guest:guest@127.0.0.1:5672/%2f"
#define SVC_MQ_MAX_QUEUE    200 /* queue name bytes, leaving room for .dead */
#define SVC_MQ_CONTENT_TYPE "application/json"

struct svc_mq_config {
	/* amqp://user:pass@host:port/vhost ("%2f" is the vhost "/"); copied */
	const char *url;
	int heartbeat_s;	     /* AMQP heartbeat; 0 disables it */
	long long socket_timeout_ms; /* connect, login, RPCs, a stuck send */
	const char *app_id; /* app_id of messages, connection name; copied */
};

/*
 * Fills url, heartbeat_s and socket_timeout_ms of cfg from RABBITMQ_URL
 * (default SVC_MQ_DEFAULT_URL; must parse as an amqp:// URL - amqps:// is
 * not supported), RABBITMQ_HEARTBEAT (a duration, "30s", 0 to 1h, rounded
 * up to whole seconds; "0" disables heartbeats) and RABBITMQ_TIMEOUT
 * ("5s", 1ms to 10m). app_id is left alone: the caller has it from
 * SERVICE_NAME. A bad value is recorded for svc_config_ok() (the URL is
 * not repeated in the message: it may hold a password). cfg->url is
 * borrowed from svc_config. Start-up only.
 */
void svc_mq_config_read(struct svc_mq_config *cfg);

enum svc_mq_role {
	SVC_MQ_PUBLISHER, /* svc_mq_publish, svc_mq_wait_confirms, _tick */
	SVC_MQ_CONSUMER,  /* svc_mq_consume, _next, _ack, _reject */
};

struct svc_mq;

/*
 * Connects (TCP, login, channel 1), declares the exchanges "events" and
 * "events.dlx" (durable topic exchanges) and, for a publisher, puts the
 * channel in confirm mode. Each step is bounded by cfg->socket_timeout_ms
 * (<= 0 means 5 s); a host name is resolved with getaddrinfo(), which has
 * no timeout of its own. cfg is borrowed for the call. Returns a new svc_mq
 * (free with svc_mq_close), or NULL when the URL is malformed, the broker
 * cannot be reached or refuses the login, or out of memory; the reason is
 * logged, without the password.
 */
struct svc_mq *svc_mq_open(const struct svc_mq_config *cfg,
			   enum svc_mq_role role);

/*
 * Closes the channel and the connection (politely when it still works,
 * each step bounded by the socket timeout) and frees mq; NULL is a no-op.
 * A consumer's unacked deliveries go back to their queue, marked
 * redelivered. A publisher's unconfirmed messages stay unknown: publish
 * them again on the next connection.
 */
void svc_mq_close(struct svc_mq *mq);

/* Whether mq still works; false for NULL. Once false, it stays false. */
bool svc_mq_ok(const struct svc_mq *mq);

/* --- publishing --- */

struct svc_mq_message {
	const char *type;	/* event type = routing key; required */
	const char *message_id; /* the event id; required */
	const void *body;	/* JSON text (borrowed) */
	size_t len;
	/* Forwarded as headers; left out when NULL, "" or over 255 bytes. */
	const char *traceparent;
	const char *request_id; /* header x-request-id */
	long long timestamp;	/* seconds since the epoch; 0: now */
};

/*
 * Sends one message to "events" with routing key m->type, mandatory, as
 * persistent (delivery_mode 2) with content_type application/json,
 * message_id, type, app_id and timestamp. What the broker sent meanwhile
 * is handled first, without waiting (confirms, a blocked notification, a
 * closed channel), so a broken connection is noticed before sending.
 * On success *tag (may be NULL) gets the message's delivery tag: 1 for the
 * first message of a connection, then consecutive. Returns 0 (sent, not
 * yet confirmed), SVC_EINVAL (mq NULL or not a publisher, type or
 * message_id missing or over 255 bytes), SVC_ENOMEM, or SVC_EUNAVAIL when
 * mq is or became broken.
 */
int svc_mq_publish(struct svc_mq *mq, const struct svc_mq_message *m,
		   uint64_t *tag);

/* What became of a published message. */
enum svc_mq_outcome {
	SVC_MQ_ACKED,	    /* routed to every bound queue and stored there */
	SVC_MQ_NACKED,	    /* refused by the broker (e.g. a queue is full) */
	SVC_MQ_RETURNED,    /* no queue is bound for its routing key: lost */
	SVC_MQ_UNCONFIRMED, /* no answer came: the connection broke first */
};

/* "acked", "nacked", "returned", "unconfirmed" (static), or "unknown". */
const char *svc_mq_outcome_name(enum svc_mq_outcome outcome);

typedef void (*svc_mq_confirm_fn)(void *arg, uint64_t tag,
				  enum svc_mq_outcome outcome);

/*
 * Reads the broker's answers until every message up to up_to_tag has one,
 * or timeout_ms passed, or mq broke. Acks and nacks may each cover many
 * tags (`multiple`); a basic.return (no route) comes before the ack of the
 * same message and makes it SVC_MQ_RETURNED. Then fn(arg, tag, outcome)
 * is called once for each tag up to up_to_tag not reported before, in
 * ascending order - with SVC_MQ_UNCONFIRMED for those that got no answer
 * - and those tags are forgotten. Only SVC_MQ_ACKED means the broker has
 * the message. fn may be NULL.
 *
 * Returns 0 when every message up to up_to_tag was answered (whatever the
 * answers), SVC_ETIMEOUT when timeout_ms passed first, SVC_EUNAVAIL when
 * mq is or became broken first, SVC_EINVAL when mq is not a publisher or
 * up_to_tag was never published. A timeout breaks mq, since a late answer
 * could no longer be told apart.
 */
int svc_mq_wait_confirms(struct svc_mq *mq, uint64_t up_to_tag,
			 long long timeout_ms, svc_mq_confirm_fn fn, void *arg);

/*
 * Handles what the broker sent, without waiting: sends a heartbeat when
 * one is due, reads confirms, notices a closed or blocked connection. A
 * publisher that can stay idle longer than heartbeat_s calls it at least
 * that often (a consumer is served by svc_mq_next). Returns 0, SVC_EINVAL
 * when mq is not a publisher, or SVC_EUNAVAIL when mq is broken.
 */
int svc_mq_tick(struct svc_mq *mq);

/*
 * --- consuming ---
 *
 * A consumer's queue is a durable quorum queue. Its dead letters go to the
 * topic exchange "events.dlx" with the queue's own name as routing key,
 * into "<queue>.dead", so each queue keeps its own (bound with `#`, every
 * dead-letter queue would collect everyone's: dead letters keep their
 * routing key otherwise). Bounded redelivery is the quorum queue's
 * x-delivery-limit, not our own counting: the broker counts every return
 * of a message to its queue - a reject with requeue, and equally a
 * consumer that crashed or lost its connection before acking, which the
 * consumer could only count by writing somewhere before handling - and
 * dead-letters it once the limit is passed. Dead-lettering is
 * at-least-once (x-dead-letter-strategy, which needs x-overflow
 * reject-publish; no length limit is set), so a dead letter is not lost
 * on the way. Both need RabbitMQ 3.10 or later.
 */

/*
 * Declares the durable quorum queue `queue` (letters, digits, '.', '_',
 * '-'; at most SVC_MQ_MAX_QUEUE bytes), bound to "events" with each
 * routing pattern in bindings (NULL-terminated, borrowed; topic syntax,
 * "order.*", "#"), and its dead-letter queue "<queue>.dead", bound to
 * "events.dlx" with routing key `queue`. A message rejected without
 * requeue, or returned to the queue (rejected with requeue, or left
 * unacked by a consumer that went away) more than max_redeliveries times
 * (0..1000), goes to the dead-letter queue with its headers and an x-death
 * record (reason "rejected" or "delivery_limit"). Idempotent when
 * repeated with the same arguments. Either role may declare.
 *
 * Returns 0, SVC_EINVAL (a bad name, pattern or limit), SVC_ECONFLICT
 * when the queue exists with other arguments (the broker then closes the
 * channel, so mq is broken), SVC_ETIMEOUT or SVC_EUNAVAIL.
 */
int svc_mq_declare_queue(struct svc_mq *mq, const char *queue,
			 const char *const *bindings, int max_redeliveries);

/*
 * Deletes `queue` and "<queue>.dead" with the messages in them (tests,
 * tear-down); a queue that does not exist is no error. Returns 0,
 * SVC_EINVAL, SVC_ETIMEOUT or SVC_EUNAVAIL.
 */
int svc_mq_delete_queue(struct svc_mq *mq, const char *queue);

/*
 * Starts consuming `queue` with manual acks and at most prefetch
 * (1..65535) unacked deliveries in flight on this connection. A consumer
 * may consume several queues; deliveries of all of them come through
 * svc_mq_next(). Returns 0, SVC_EINVAL (not a consumer, bad arguments),
 * SVC_ENOTFOUND (no such queue; mq is then broken), SVC_ETIMEOUT or
 * SVC_EUNAVAIL.
 */
int svc_mq_consume(struct svc_mq *mq, const char *queue, int prefetch);

/*
 * A delivery. Every string is owned by the delivery, NUL-terminated, and
 * freed by svc_mq_delivery_cleanup(); properties the message did not have
 * are NULL (0 for the numbers).
 */
struct svc_mq_delivery {
	uint64_t tag;	      /* for svc_mq_ack/svc_mq_reject on this mq */
	bool redelivered;     /* delivered before, maybe to someone else */
	int delivery_count;   /* earlier returns to the queue (x-delivery-count)
			       */
	const char *body;     /* the message body, "" when empty */
	size_t len;	      /* body bytes, excluding the NUL */
	const char *exchange; /* "events", or "events.dlx" for dead letters */
	const char
		*routing_key; /* the event type; the queue for dead letters */
	const char *message_id;
	const char *type;
	const char *app_id;
	const char *content_type;
	long long timestamp; /* seconds since the epoch */
	int delivery_mode;   /* 2 persistent, 1 transient */
	const char *traceparent;
	const char *request_id;	 /* header x-request-id */
	const char *dead_reason; /* x-first-death-reason, for dead letters */
	char *mem;		 /* internal: where the strings live */
};

/*
 * Waits up to timeout_ms (0: only what already arrived) for the next
 * delivery, servicing heartbeats meanwhile. Always initialises *out first.
 * Returns 0 with a delivery in *out (ack or reject it, then clean it up),
 * SVC_ETIMEOUT when none came in time, SVC_EINVAL when mq is not a
 * consumer, SVC_ENOMEM, or SVC_EUNAVAIL when the connection is or became
 * broken (lost, closed by the broker, or the consumer cancelled because
 * its queue was deleted); unacked deliveries then go back to the queue.
 */
int svc_mq_next(struct svc_mq *mq, long long timeout_ms,
		struct svc_mq_delivery *out);

/* Frees what the delivery owns and empties it; NULL is a no-op. */
void svc_mq_delivery_cleanup(struct svc_mq_delivery *d);

/*
 * Acknowledges one delivery: the broker forgets the message. Returns 0,
 * SVC_EINVAL (not a consumer), or SVC_EUNAVAIL when mq is or became
 * broken - the message will then be delivered again, so the effect of
 * handling it must be idempotent (an inbox table). An unknown tag makes
 * the broker close the channel, which shows at the next call.
 */
int svc_mq_ack(struct svc_mq *mq, uint64_t tag);

/*
 * Rejects one delivery. requeue true: back to the queue, to be delivered
 * again (counted against max_redeliveries); false: to the dead-letter
 * queue at once. Returns like svc_mq_ack().
 */
int svc_mq_reject(struct svc_mq *mq, uint64_t tag, bool requeue);

#endif
