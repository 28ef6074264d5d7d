/*
 * consumer.c - the consumer thread behind a svc_subscription: connects a
 * svc_mq consumer, declares the queue (quorum, delivery limit, dead-letter
 * queue) and consumes it, then handles deliveries one at a time, each in
 * one transaction with its inbox row, acking only after the commit.
 * Broken connections are closed and reopened after a jittered backoff;
 * the database connection is the thread's svc_db_thread(), which
 * reconnects on its own, and a delivery that met an unreachable database
 * is retried in place for a while rather than spent against the delivery
 * limit. With FAULTS=on (svc/faults.h), a consumer_pause fault makes the
 * thread hold what arrives - at most CONSUMER_PREFETCH deliveries, the
 * rest waits in the queue - unhandled and unacked, with heartbeats still
 * served, and handle it in order when the fault ends; a
 * duplicate_delivery fault makes it handle an applied event a second time,
 * in a transaction of its own, as a redelivery would be (the inbox makes
 * that a no-op). This is not the handlers (services own them) nor the
 * AMQP wrapper (mq.c).
 */
#include "svc/consumer.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faults_internal.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/retry.h"
#include "svc/trace.h"
#include "svc/util.h"

#define NEXT_MS	     500 /* how often a waiting thread looks at `stopping` */
#define BACKOFF_BASE 100
#define BACKOFF_CAP  5000
/*
 * How long a delivery is held and retried in place while the database is
 * away, before it goes back to the queue: every return counts against the
 * delivery limit, so an outage must not dead-letter good events. Well
 * under two heartbeats, which the broker waits for while we hold it.
 */
#define DB_RETRY_MS 20000

struct svc_consumer {
	const struct svc_subscription *sub;
	struct svc_mq_config mq_cfg;
	char *url, *app_id;
	int max_redeliveries, prefetch;
	pthread_t thread;
	atomic_bool stopping;
	struct svc_mq *mq;
	bool logged_down;
	/* Cancels the transaction in hand, for a stop past its deadline. */
	pthread_mutex_t cancel_lock;
	PGcancel *cancel;
	/* Deliveries held by a consumer_pause fault, in arrival order, on
	 * the connection c->mq (the thread's own). */
	struct svc_mq_delivery *held;
	size_t nheld, held_cap;
};

/* events_consumed_total{event_type,outcome}; event types before "other" */
#define EVENT_TYPES 64
static struct svc_metric *consumed;

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void
register_metrics(void)
{
	consumed = svc_metrics_counter(
		NULL, "events_consumed_total",
		"Deliveries handled, by event type (the routing key) and "
		"outcome: applied, duplicate, failed (rolled back and "
		"requeued), dead_lettered (failed on its last allowed "
		"delivery).",
		(const char *[]){ "event_type", "outcome", NULL },
		EVENT_TYPES * 4);
}

static void
count_delivery(const struct svc_mq_delivery *d, const char *outcome)
{
	svc_metrics_inc(svc_metrics_series(
		consumed,
		(const char *[]){ d->routing_key != NULL ? d->routing_key : "",
				  outcome }));
}

static const char inbox_sql[] = "INSERT INTO inbox (event_id, event_type)"
				" VALUES ($1, $2) ON CONFLICT DO NOTHING";

static long long
backoff_ms(int attempt)
{
	static const struct svc_retry_policy p = { 0, BACKOFF_BASE,
						   BACKOFF_CAP };

	return svc_retry_backoff_ms(&p, attempt);
}

/* Sleeps up to ms in short slices; false once stopping. */
static bool
nap(struct svc_consumer *c, long long ms)
{
	long long end = svc_now_ms() + ms;

	while (!atomic_load(&c->stopping)) {
		long long left = end - svc_now_ms();
		struct timespec ts;

		if (left <= 0)
			return true;
		if (left > 100)
			left = 100;
		ts.tv_sec = 0;
		ts.tv_nsec = left * 1000000L;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Forgets the held deliveries: their connection is going away, and the
 * broker returns them to the queue. */
static void
drop_held(struct svc_consumer *c)
{
	for (size_t i = 0; i < c->nheld; i++)
		svc_mq_delivery_cleanup(&c->held[i]);
	c->nheld = 0;
}

static void
drop_mq(struct svc_consumer *c)
{
	drop_held(c);
	if (c->mq == NULL)
		return;
	svc_mq_close(c->mq);
	c->mq = NULL;
	if (!c->logged_down)
		svc_log(SVC_LOG_WARN, "consumer: broker connection lost",
			SVC_LOG_STR("queue", c->sub->queue), SVC_LOG_END);
	c->logged_down = true;
}

/* Opens, declares and consumes; 0 when consuming. */
static int
connect_mq(struct svc_consumer *c)
{
	int rc;

	c->mq = svc_mq_open(&c->mq_cfg, SVC_MQ_CONSUMER);
	if (c->mq == NULL) {
		rc = SVC_EUNAVAIL;
		goto fail;
	}
	rc = svc_mq_declare_queue(c->mq, c->sub->queue, c->sub->patterns,
				  c->max_redeliveries);
	if (rc == SVC_OK)
		rc = svc_mq_consume(c->mq, c->sub->queue, c->prefetch);
	if (rc != SVC_OK)
		goto fail;
	svc_log(SVC_LOG_INFO, "consumer: consuming",
		SVC_LOG_STR("queue", c->sub->queue), SVC_LOG_END);
	c->logged_down = false;
	return SVC_OK;
fail:
	if (!c->logged_down)
		svc_log(SVC_LOG_WARN, "consumer: cannot consume",
			SVC_LOG_STR("queue", c->sub->queue),
			SVC_LOG_STR("error", svc_strerror(rc)), SVC_LOG_END);
	c->logged_down = true;
	svc_mq_close(c->mq);
	c->mq = NULL;
	return rc;
}

static const char *
str_member(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* What svc_consumer_stop() uses to cancel the transaction in hand. */
static void
set_cancel(struct svc_consumer *c, PGconn *conn)
{
	PGcancel *cancel = conn != NULL ? PQgetCancel(conn) : NULL;

	pthread_mutex_lock(&c->cancel_lock);
	PQfreeCancel(c->cancel);
	c->cancel = cancel;
	pthread_mutex_unlock(&c->cancel_lock);
}

/*
 * The transaction: inbox row, then the handler when the row is new.
 * Returns 0 (committed; *dup says whether it was a duplicate) or < 0
 * (rolled back).
 */
static int
handle_in_tx(struct svc_consumer *c, const char *type, json_t *data,
	     const struct svc_event_meta *meta, bool *dup)
{
	struct svc_db *db = svc_db_thread();
	const char *params[] = { meta->id, type };
	PGconn *conn;
	PGresult *r = NULL;
	int rc;

	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	conn = svc_db_conn(db);
	set_cancel(c, conn);
	r = conn != NULL ? PQexecParams(conn, inbox_sql, 2, NULL, params, NULL,
					NULL, 0)
			 : NULL;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		svc_log(SVC_LOG_WARN, "consumer: inbox insert failed",
			SVC_LOG_STR("queue", c->sub->queue),
			SVC_LOG_STR("error", conn != NULL ? PQerrorMessage(conn)
							  : "no connection"),
			SVC_LOG_END);
		rc = SVC_EUNAVAIL;
		goto fail;
	}
	*dup = strcmp(PQcmdTuples(r), "0") == 0;
	if (!*dup) {
		rc = c->sub->handle(db, type, data, meta);
		if (rc != SVC_OK)
			goto fail;
	}
	PQclear(r);
	rc = svc_db_commit(db);
	set_cancel(c, NULL);
	return rc;
fail:
	PQclear(r);
	svc_db_rollback(db);
	set_cancel(c, NULL);
	return rc;
}

/*
 * A duplicate_delivery fault: the event just applied is handled again, in
 * a transaction of its own, the way a redelivery would be. The inbox must
 * make it a no-op ("duplicate"); anything else is counted as it is.
 */
static void
handle_again(struct svc_consumer *c, const struct svc_mq_delivery *d,
	     const char *type, json_t *data, const struct svc_event_meta *meta)
{
	bool dup = false;
	int rc = handle_in_tx(c, type, data, meta, &dup);
	const char *outcome = rc != SVC_OK ? "failed"
			      : dup	   ? "duplicate"
					   : "applied";

	svc_log(SVC_LOG_INFO, "consumer: event delivered twice by a fault",
		SVC_LOG_STR("queue", c->sub->queue),
		SVC_LOG_STR("event_id", meta->id),
		SVC_LOG_STR("event_type", type),
		SVC_LOG_STR("outcome", outcome), SVC_LOG_END);
	count_delivery(d, outcome);
}

static void
handle_delivery(struct svc_consumer *c, const struct svc_mq_delivery *d)
{
	json_error_t jerr;
	json_t *body = json_loadb(d->body, d->len, 0, &jerr);
	const char *id = str_member(body, "id");
	const char *type = str_member(body, "event_type");
	json_t *data = json_object_get(body, "data");
	struct svc_event_meta meta = { 0 };
	long long end = svc_now_ms() + DB_RETRY_MS;
	char tp[SVC_TRACEPARENT_LEN + 1];
	struct svc_span span;
	/* What became of it: applied, duplicate, failed (requeued) or
	 * dead_lettered (failed on the last delivery the broker allows: it
	 * has been returned max_redeliveries times before). */
	const char *outcome = d->delivery_count >= c->max_redeliveries
				      ? "dead_lettered"
				      : "failed";
	bool dup = false, again = false;
	int rc;

	/* The consumer span, under the span that wrote the event; events
	 * the handler writes hang under this one. */
	svc_span_begin(&span, d->traceparent, SVC_SPAN_CONSUMER, NULL);
	svc_span_name(&span, "%s process",
		      d->routing_key ? d->routing_key : "");
	svc_span_attr_str(&span, "messaging.system", "rabbitmq");
	svc_span_attr_str(&span, "messaging.destination.name", c->sub->queue);
	svc_span_attr_str(&span, "messaging.message.id", d->message_id);
	svc_trace_format(&span.ctx, tp);
	svc_log_set_context(d->request_id, span.ctx.trace_id);

	/* Malformed for us: back to the queue like any failure (a newer
	 * replica in a rolling deploy may read it), until the delivery
	 * limit dead-letters it. */
	if (!json_is_object(body) || id == NULL || !svc_uuid_valid(id) ||
	    type == NULL || data == NULL) {
		svc_log(SVC_LOG_WARN, "consumer: malformed event requeued",
			SVC_LOG_STR("queue", c->sub->queue),
			SVC_LOG_STR("message_id",
				    d->message_id ? d->message_id : ""),
			SVC_LOG_INT("delivery_count", d->delivery_count),
			SVC_LOG_END);
		if (svc_mq_reject(c->mq, d->tag, true) != SVC_OK)
			drop_mq(c);
		goto out;
	}
	meta.id = id;
	meta.source = str_member(body, "source");
	meta.timestamp = str_member(body, "timestamp");
	meta.request_id = d->request_id;
	meta.traceparent = tp;
	meta.redelivered = d->redelivered;
	rc = handle_in_tx(c, type, data, &meta, &dup);
	for (int i = 0; (rc == SVC_EUNAVAIL || rc == SVC_ETIMEOUT) &&
			svc_now_ms() < end && nap(c, backoff_ms(i));
	     i++)
		rc = handle_in_tx(c, type, data, &meta, &dup);
	if (rc != SVC_OK && atomic_load(&c->stopping)) {
		svc_log(SVC_LOG_INFO,
			"consumer: stopping, event returned to the queue",
			SVC_LOG_STR("queue", c->sub->queue),
			SVC_LOG_STR("event_id", id),
			SVC_LOG_STR("event_type", type),
			SVC_LOG_STR("error", svc_strerror(rc)), SVC_LOG_END);
		if (svc_mq_reject(c->mq, d->tag, true) != SVC_OK)
			drop_mq(c);
		goto out;
	}
	if (rc != SVC_OK) {
		svc_log(SVC_LOG_WARN, "consumer: event failed, requeued",
			SVC_LOG_STR("queue", c->sub->queue),
			SVC_LOG_STR("event_id", id),
			SVC_LOG_STR("event_type", type),
			SVC_LOG_INT("delivery_count", d->delivery_count),
			SVC_LOG_STR("error", svc_strerror(rc)), SVC_LOG_END);
		if (svc_mq_reject(c->mq, d->tag, true) != SVC_OK)
			drop_mq(c);
		goto out;
	}
	svc_log(SVC_LOG_DEBUG,
		dup ? "consumer: duplicate event skipped"
		    : "consumer: event handled",
		SVC_LOG_STR("queue", c->sub->queue),
		SVC_LOG_STR("event_id", id), SVC_LOG_STR("event_type", type),
		SVC_LOG_END);
	outcome = dup ? "duplicate" : "applied";
	/* Committed: a lost ack only brings a duplicate, which the inbox
	 * turns into a no-op. */
	if (svc_mq_ack(c->mq, d->tag) != SVC_OK)
		drop_mq(c);
	again = !dup && svc__faults_duplicate(c->sub->queue);
out:
	count_delivery(d, outcome);
	svc_span_attr_str(&span, "outcome", outcome);
	svc_span_end(&span, strcmp(outcome, "applied") != 0 &&
				    strcmp(outcome, "duplicate") != 0);
	if (again)
		handle_again(c, d, type, data, &meta);
	svc_log_set_context(NULL, NULL);
	json_decref(body);
}

/*
 * Keeps d (taken: *d is emptied) for when the consumer_pause fault ends;
 * false when there is no room for it, to be handled now instead.
 */
static bool
hold(struct svc_consumer *c, struct svc_mq_delivery *d)
{
	if (c->nheld == c->held_cap) {
		size_t cap = c->held_cap ? c->held_cap * 2 : 16;
		struct svc_mq_delivery *more =
			realloc(c->held, cap * sizeof(*more));

		if (more == NULL)
			return false;
		c->held = more;
		c->held_cap = cap;
	}
	if (c->nheld == 0)
		svc_log(SVC_LOG_WARN, "consumer: paused by a fault",
			SVC_LOG_STR("queue", c->sub->queue), SVC_LOG_END);
	c->held[c->nheld++] = *d;
	memset(d, 0, sizeof(*d));
	return true;
}

/* The pause ended: handles what was held, in order. */
static void
release_held(struct svc_consumer *c)
{
	size_t n = c->nheld;

	svc_log(SVC_LOG_INFO, "consumer: resumed",
		SVC_LOG_STR("queue", c->sub->queue),
		SVC_LOG_INT("held", (long long)n), SVC_LOG_END);
	c->nheld = 0;
	for (size_t i = 0; i < n; i++) {
		/* A failed ack dropped the connection, and with it the
		 * tags of the rest: the broker redelivers those. */
		if (c->mq != NULL)
			handle_delivery(c, &c->held[i]);
		svc_mq_delivery_cleanup(&c->held[i]);
	}
}

static void *
consumer_main(void *arg)
{
	struct svc_consumer *c = arg;
	int attempt = 0;

	while (!atomic_load(&c->stopping)) {
		struct svc_mq_delivery d;
		int rc;

		if (c->mq == NULL && connect_mq(c) != SVC_OK) {
			nap(c, backoff_ms(attempt++));
			continue;
		}
		attempt = 0;
		if (c->nheld > 0 &&
		    !svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, c->sub->queue,
					false)) {
			release_held(c);
			continue;
		}
		rc = svc_mq_next(c->mq, NEXT_MS, &d);
		/* Behind held deliveries, a new one waits its turn. */
		if (rc == SVC_OK &&
		    (svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, c->sub->queue,
					true) ||
		     c->nheld > 0) &&
		    hold(c, &d)) {
			continue;
		} else if (rc == SVC_OK) {
			handle_delivery(c, &d);
			svc_mq_delivery_cleanup(&d);
		} else if (rc != SVC_ETIMEOUT) {
			svc_mq_delivery_cleanup(&d);
			drop_mq(c);
		}
	}
	/* Closing on purpose: not worth a "lost" line. */
	c->logged_down = true;
	drop_mq(c);
	svc_log(SVC_LOG_INFO, "consumer stopped",
		SVC_LOG_STR("queue", c->sub->queue), SVC_LOG_END);
	return NULL;
}

struct svc_consumer *
svc_consumer_start(const struct svc_subscription *sub,
		   const struct svc_consumer_config *cfg)
{
	struct svc_consumer *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_once(&metrics_once, register_metrics);
	c->sub = sub;
	c->mq_cfg = *cfg->mq;
	c->url = strdup(cfg->mq->url != NULL ? cfg->mq->url
					     : SVC_MQ_DEFAULT_URL);
	c->app_id = strdup(cfg->mq->app_id != NULL ? cfg->mq->app_id : "svc");
	c->mq_cfg.url = c->url;
	c->mq_cfg.app_id = c->app_id;
	c->max_redeliveries = cfg->max_redeliveries;
	c->prefetch = cfg->prefetch > 0 ? cfg->prefetch : 16;
	pthread_mutex_init(&c->cancel_lock, NULL);
	if (c->url == NULL || c->app_id == NULL ||
	    pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
		pthread_mutex_destroy(&c->cancel_lock);
		free(c->url);
		free(c->app_id);
		free(c);
		return NULL;
	}
	return c;
}

void
svc_consumer_quit(struct svc_consumer *c)
{
	if (c != NULL)
		atomic_store(&c->stopping, true);
}

void
svc_consumer_stop(struct svc_consumer *c, long long deadline_ms)
{
	struct timespec until;

	if (c == NULL)
		return;
	svc_consumer_quit(c);
	/* pthread_timedjoin_np() waits on the wall clock. */
	until = svc_deadline_after(CLOCK_REALTIME, deadline_ms - svc_now_ms());
	if (pthread_timedjoin_np(c->thread, NULL, &until) == 0)
		goto joined;
	pthread_mutex_lock(&c->cancel_lock);
	if (c->cancel != NULL) {
		char err[256];

		svc_log(SVC_LOG_WARN,
			"consumer: drain timeout, cancelling the event in hand",
			SVC_LOG_STR("queue", c->sub->queue), SVC_LOG_END);
		if (!PQcancel(c->cancel, err, sizeof(err)))
			svc_log(SVC_LOG_WARN, "consumer: cannot cancel",
				SVC_LOG_STR("queue", c->sub->queue),
				SVC_LOG_STR("error", err), SVC_LOG_END);
	}
	pthread_mutex_unlock(&c->cancel_lock);
	pthread_join(c->thread, NULL);
joined:
	PQfreeCancel(c->cancel);
	pthread_mutex_destroy(&c->cancel_lock);
	drop_held(c);
	free(c->held);
	free(c->url);
	free(c->app_id);
	free(c);
}
