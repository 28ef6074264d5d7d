/*
 * svc/outbox.h - the transactional outbox relay: a thread per service
 * process that publishes the rows of the service's `outbox` table to
 * RabbitMQ with publisher confirms and marks them sent only once the
 * broker acked them (an event no queue is bound for is acked too, after
 * being returned: nobody subscribes to it, so it counts as sent), so a
 * broker outage delays events but never loses them (at-least-once: a
 * crash between the ack and the commit publishes a row again). It wakes on a
 * payload-less NOTIFY outbox (migrations 0002_outbox_notify.sql) and polls as a
 * fallback; rows are claimed with FOR UPDATE SKIP LOCKED, so replicas can relay
 * side by side. The headers come from the row's request_id and traceparent;
 * a row written outside a request has neither, and gets the event id as
 * x-request-id and a trace derived from the event id (stable across
 * re-sends). Writing the rows is the services' business (same statement as
 * the change); this is not a consumer. Metrics: events_published_total
 * {event_type} per confirmed row, and outbox_pending and
 * outbox_oldest_age_seconds from the relay's own periodic count, so a
 * scrape never queries the database.
 */
#ifndef SVC_OUTBOX_H
#define SVC_OUTBOX_H

#include "svc/mq.h"

struct svc_outbox_config {
	const struct svc_mq_config *mq; /* copied, url and app_id included */
	const char *service;		/* "source" of events; copied */
	int batch;			/* rows per transaction, 1..10000 */
	long long poll_ms;		/* fallback poll without a NOTIFY */
};

struct svc_outbox;

/*
 * Starts the relay thread. It connects to PostgreSQL (svc_db_open_plain,
 * so svc_db_setup() must have run) and to the broker itself, retrying
 * with a jittered backoff (up to ~5 s) for as long as it runs. Returns a
 * new relay (stop it with svc_outbox_stop), or NULL when out of memory or
 * no thread could start.
 */
struct svc_outbox *svc_outbox_start(const struct svc_outbox_config *cfg);

/*
 * Asks the thread to stop, lets it publish what is pending until
 * deadline_ms (svc_now_ms() clock) while both connections work, joins it
 * and frees everything; NULL is a no-op. Rows not confirmed by then stay
 * unsent for the next start.
 */
void svc_outbox_stop(struct svc_outbox *ob, long long deadline_ms);

/*
 * Registers two non-critical health checks reading ob (borrowed; it must
 * outlive the checks): "rabbitmq", up while the publisher is connected,
 * else down; "outbox", with "pending" and "oldest_s" of unsent rows,
 * degraded when the oldest is older than 60 s. Returns 0 or SVC_EINVAL.
 */
int svc_outbox_health(struct svc_outbox *ob);

#endif
