/*
 * outbox.c - the outbox relay thread: claims unsent outbox rows in seq
 * order (FOR UPDATE SKIP LOCKED, never "id > last seen", since sequence
 * values commit out of order), publishes them through a svc_mq publisher,
 * waits for the confirms and marks only the acked rows sent, in the same
 * transaction. Between batches it sleeps on the LISTEN socket of its own
 * connection (NOTIFY is a wake-up only) or a self-pipe that stop writes,
 * up to the poll interval. Broken connections are closed and reopened
 * with a jittered backoff. A relay_pause fault (svc/faults.h, FAULTS=on)
 * holds it between batches: it publishes nothing, keeps counting the
 * backlog, and carries on where it was when the fault ends. This is not
 * the writing side (services insert rows with their changes) nor a
 * consumer.
 */
#include "svc/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults_internal.h"
#include "svc/db.h"
#include "svc/err.h"
#include "svc/health.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/retry.h"
#include "svc/trace.h"
#include "svc/util.h"

#define CONFIRM_MS    10000
#define STALE_S	      60.0
#define BACKOFF_BASE  100
#define BACKOFF_CAP   5000
#define UUID_ARRAY_SZ (SVC_UUID_LEN + 1)
#define EVENT_TYPES   64   /* event_type label values before "other" */
#define COUNT_IDLE_MS 250  /* pending counted at most this often when idle */
#define COUNT_BUSY_MS 1000 /* ... and while rows keep coming */
/* no count for this long: the outbox cannot be read */
#define COUNT_STALE_MS 15000
/* how often a paused relay looks whether its fault ended */
#define PAUSE_POLL_MS 100

/*
 * What the relay last counted of the unsent rows, for the outbox_pending
 * and outbox_oldest_age_seconds gauges: a scrape reads these and never
 * queries the database. Process-wide, so a relay that stopped leaves no
 * dangling pointer behind; -1 until a relay counted.
 */
static struct {
	atomic_llong pending;
	atomic_llong oldest_ms;	 /* age of the oldest, when counted */
	atomic_llong counted_at; /* svc_now_ms() of that count */
} seen = { -1, 0, 0 };

static struct svc_metric *published; /* events_published_total */

struct svc_outbox {
	struct svc_mq_config mq_cfg;
	char *url, *app_id, *service;
	int batch;
	long long poll_ms;
	pthread_t thread;
	int pipe[2];
	atomic_bool stopping;
	atomic_llong deadline;
	atomic_bool mq_up;
	struct svc_db *db;
	struct svc_mq *mq;
	bool db_logged_down, mq_logged_down;
	bool paused; /* held by a relay_pause fault; the thread's own */
	long long counted_at; /* the last count_pending() */
};

static const char claim_sql[] =
	"SELECT id, event_type, request_id, traceparent,"
	" floor(extract(epoch FROM created_at))::bigint,"
	" to_char(created_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), data::text"
	" FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1"
	" FOR UPDATE SKIP LOCKED";
static const char mark_sql[] =
	"UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY($1::uuid[])";
static const char pending_sql[] =
	"SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() -"
	" min(created_at)), 0) FROM outbox WHERE sent_at IS NULL";

static double
pending_now(void *arg)
{
	long long n = atomic_load(&seen.pending);

	(void)arg;
	return n < 0 ? NAN : (double)n;
}

/* The counted age, plus the time since: unsent rows only get older. */
static double
oldest_now(void *arg)
{
	long long n = atomic_load(&seen.pending);

	(void)arg;
	if (n <= 0)
		return n < 0 ? NAN : 0;
	return (double)(atomic_load(&seen.oldest_ms) + svc_now_ms() -
			atomic_load(&seen.counted_at)) /
	       1000.0;
}

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void
register_metrics(void)
{
	svc_metrics_gauge_fn(NULL, "outbox_pending",
			     "Outbox rows not yet confirmed by the broker, as "
			     "last counted by the relay.",
			     pending_now, NULL);
	svc_metrics_gauge_fn(NULL, "outbox_oldest_age_seconds",
			     "Age of the oldest unsent outbox row in seconds "
			     "(0 when none).",
			     oldest_now, NULL);
	published = svc_metrics_counter(
		NULL, "events_published_total",
		"Events the broker confirmed, by event type.",
		(const char *[]){ "event_type", NULL }, EVENT_TYPES);
}

/*
 * Counts the unsent rows on the relay's own connection, outside any
 * transaction, when the last count is older than COUNT_IDLE_MS (the relay
 * is idle) or COUNT_BUSY_MS.
 */
static void
count_pending(struct svc_outbox *ob, bool idle)
{
	long long now = svc_now_ms();
	PGconn *c = ob->db != NULL ? svc_db_conn(ob->db) : NULL;
	PGresult *r;

	if (c == NULL ||
	    now - ob->counted_at < (idle ? COUNT_IDLE_MS : COUNT_BUSY_MS))
		return;
	ob->counted_at = now;
	r = PQexec(c, pending_sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		atomic_store(&seen.oldest_ms,
			     (long long)(atof(PQgetvalue(r, 0, 1)) * 1000.0));
		atomic_store(&seen.counted_at, now);
		atomic_store(&seen.pending, atoll(PQgetvalue(r, 0, 0)));
	}
	PQclear(r);
}

static long long
backoff_ms(int attempt)
{
	static const struct svc_retry_policy p = { 0, BACKOFF_BASE,
						   BACKOFF_CAP };

	return svc_retry_backoff_ms(&p, attempt);
}

static void
drop_db(struct svc_outbox *ob)
{
	if (ob->db == NULL)
		return;
	svc_db_close(ob->db);
	ob->db = NULL;
	if (!ob->db_logged_down)
		svc_log(SVC_LOG_WARN, "outbox relay: database connection lost",
			SVC_LOG_END);
	ob->db_logged_down = true;
}

static void
drop_mq(struct svc_outbox *ob)
{
	if (ob->mq == NULL)
		return;
	svc_mq_close(ob->mq);
	ob->mq = NULL;
	atomic_store(&ob->mq_up, false);
	if (!ob->mq_logged_down)
		svc_log(SVC_LOG_WARN, "outbox relay: broker connection lost",
			SVC_LOG_END);
	ob->mq_logged_down = true;
}

/* Opens what is missing; 0 when both work. */
static int
connect_both(struct svc_outbox *ob)
{
	if (ob->db == NULL) {
		PGconn *c;
		PGresult *r;

		ob->db = svc_db_open_plain();
		c = ob->db != NULL ? svc_db_conn(ob->db) : NULL;
		r = c != NULL ? PQexec(c, "LISTEN outbox") : NULL;
		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			PQclear(r);
			if (ob->db != NULL)
				svc_db_close(ob->db);
			ob->db = NULL;
			if (!ob->db_logged_down)
				svc_log(SVC_LOG_WARN,
					"outbox relay: database unreachable",
					SVC_LOG_END);
			ob->db_logged_down = true;
			return SVC_EUNAVAIL;
		}
		PQclear(r);
		svc_log(SVC_LOG_INFO, "outbox relay: database connected",
			SVC_LOG_END);
		ob->db_logged_down = false;
	}
	if (ob->mq == NULL) {
		ob->mq = svc_mq_open(&ob->mq_cfg, SVC_MQ_PUBLISHER);
		if (ob->mq == NULL) {
			if (!ob->mq_logged_down)
				svc_log(SVC_LOG_WARN,
					"outbox relay: broker unreachable",
					SVC_LOG_END);
			ob->mq_logged_down = true;
			return SVC_EUNAVAIL;
		}
		atomic_store(&ob->mq_up, true);
		svc_log(SVC_LOG_INFO, "outbox relay: broker connected",
			SVC_LOG_END);
		ob->mq_logged_down = false;
	}
	return SVC_OK;
}

/* JSON string literal of s (new, malloc'd), or NULL. */
static char *
json_str(const char *s)
{
	json_t *j = json_string(s);
	char *out = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	return out;
}

struct confirm_state {
	uint64_t first;
	int n;
	bool *acked;
};

static void
on_confirm(void *arg, uint64_t tag, enum svc_mq_outcome o)
{
	struct confirm_state *cs = arg;

	/*
	 * A returned message was acked as well, after the broker found no
	 * queue bound for it: nobody subscribes to that event, and retrying
	 * would only block the rows behind it, so it counts as sent.
	 */
	if (tag >= cs->first && tag < cs->first + (uint64_t)cs->n &&
	    (o == SVC_MQ_ACKED || o == SVC_MQ_RETURNED))
		cs->acked[tag - cs->first] = true;
}

/*
 * The trace of an event written outside any request (a sweeper, a
 * retrier): one of its own, derived from the event id - its 32 hex digits
 * as the trace id, the last 16 as the span id - so that a re-send carries
 * the same one.
 */
static void
event_trace(const char *id, struct svc_trace *t)
{
	size_t n = 0;

	for (const char *p = id; *p != '\0' && n < SVC_TRACE_ID_LEN; p++)
		if (*p != '-')
			t->trace_id[n++] = *p;
	t->trace_id[n] = '\0';
	snprintf(t->span_id, sizeof(t->span_id), "%s",
		 t->trace_id + SVC_TRACE_ID_LEN - SVC_SPAN_ID_LEN);
	t->parent_id[0] = '\0';
	t->flags = 0x01;
}

/*
 * The producer span of one message: under the span that wrote the row (or
 * the root of the event's own trace), so the consumer's span hangs under
 * the broker hop. It covers the publish; the confirm is per batch.
 */
static void
producer_span(struct svc_span *span, const char *id, const char *type,
	      const char *row_traceparent)
{
	bool own = !svc_trace_valid(row_traceparent);

	svc_span_begin(span, own ? NULL : row_traceparent, SVC_SPAN_PRODUCER,
		       NULL);
	if (own)
		event_trace(id, &span->ctx);
	svc_span_name(span, "%s publish", type);
	svc_span_attr_str(span, "messaging.system", "rabbitmq");
	svc_span_attr_str(span, "messaging.destination.name", SVC_MQ_EXCHANGE);
	svc_span_attr_str(span, "messaging.message.id", id);
}

static int
publish_row(struct svc_outbox *ob, PGresult *r, int i, const char *source,
	    uint64_t *tag)
{
	const char *id = PQgetvalue(r, i, 0), *type = PQgetvalue(r, i, 1);
	char *etype = json_str(type);
	char *body = NULL;
	struct svc_mq_message m = { 0 };
	char tp[SVC_TRACEPARENT_LEN + 1];
	struct svc_span span;
	int rc = SVC_ENOMEM, len;

	if (etype == NULL)
		goto out;
	len = asprintf(&body,
		       "{\"id\":\"%s\",\"event_type\":%s,\"source\":%s,"
		       "\"timestamp\":\"%s\",\"data\":%s}",
		       id, etype, source, PQgetvalue(r, i, 5),
		       PQgetvalue(r, i, 6));
	if (len < 0) {
		body = NULL;
		goto out;
	}
	m.type = type;
	m.message_id = id;
	m.body = body;
	m.len = (size_t)len;
	m.request_id = PQgetisnull(r, i, 2) ? id : PQgetvalue(r, i, 2);
	producer_span(&span, id, type,
		      PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3));
	svc_trace_format(&span.ctx, tp);
	m.traceparent = tp;
	m.timestamp = atoll(PQgetvalue(r, i, 4));
	rc = svc_mq_publish(ob->mq, &m, tag);
	svc_span_end(&span, rc != SVC_OK);
out:
	free(etype);
	free(body);
	return rc;
}

static bool
sql_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	return ok;
}

/*
 * One transaction: claim, publish, confirm, mark. Returns the number of
 * rows claimed (>= 0), SVC_EUNAVAIL with the broken side dropped, or
 * SVC_ETIMEOUT when some rows were not acked (nacked or unconfirmed): they
 * stay unsent and wait a backoff.
 */
static int
relay_batch(struct svc_outbox *ob, const char *source)
{
	PGconn *c = svc_db_conn(ob->db);
	PGresult *r = NULL, *u = NULL;
	char nbuf[16], *ids = NULL;
	const char *param[1];
	struct confirm_state cs = { 0 };
	uint64_t tag = 0;
	int n = 0, sent = 0, acked = 0, rc = SVC_EUNAVAIL;
	size_t pos = 0;

	if (c == NULL || !sql_ok(c, "BEGIN")) {
		drop_db(ob);
		return SVC_EUNAVAIL;
	}
	snprintf(nbuf, sizeof(nbuf), "%d", ob->batch);
	param[0] = nbuf;
	r = PQexecParams(c, claim_sql, 1, NULL, param, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		goto db_fail;
	n = PQntuples(r);
	if (n == 0) {
		rc = 0;
		goto commit;
	}
	cs.n = n;
	cs.acked = calloc((size_t)n, sizeof(bool));
	ids = malloc((size_t)n * (UUID_ARRAY_SZ + 1) + 3);
	if (cs.acked == NULL || ids == NULL) {
		rc = SVC_ENOMEM;
		goto rollback;
	}
	for (int i = 0; i < n; i++) {
		if (publish_row(ob, r, i, source, &tag) != SVC_OK)
			break;
		if (sent++ == 0)
			cs.first = tag;
	}
	if (sent > 0)
		svc_mq_wait_confirms(ob->mq, tag, CONFIRM_MS, on_confirm, &cs);
	ids[pos++] = '{';
	for (int i = 0; i < sent; i++) {
		if (!cs.acked[i])
			continue;
		if (acked++ > 0)
			ids[pos++] = ',';
		memcpy(ids + pos, PQgetvalue(r, i, 0), SVC_UUID_LEN);
		pos += SVC_UUID_LEN;
	}
	ids[pos++] = '}';
	ids[pos] = '\0';
	if (acked > 0) {
		param[0] = ids;
		u = PQexecParams(c, mark_sql, 1, NULL, param, NULL, NULL, 0);
		if (PQresultStatus(u) != PGRES_COMMAND_OK)
			goto db_fail;
	}
	rc = acked == n ? n : SVC_ETIMEOUT;
	if (!svc_mq_ok(ob->mq))
		rc = SVC_EUNAVAIL;
commit:
	if (!sql_ok(c, "COMMIT"))
		goto db_fail;
	for (int i = 0; i < sent; i++)
		if (cs.acked[i])
			svc_metrics_inc(svc_metrics_series(
				published,
				(const char *[]){ PQgetvalue(r, i, 1) }));
	if (rc == SVC_EUNAVAIL)
		drop_mq(ob);
	goto out;
db_fail:
	if (PQstatus(c) == CONNECTION_OK)
		svc_log(SVC_LOG_ERROR, "outbox relay: statement failed",
			SVC_LOG_STR("error", PQerrorMessage(c)), SVC_LOG_END);
	rc = SVC_EUNAVAIL;
	drop_db(ob);
	if (!svc_mq_ok(ob->mq))
		drop_mq(ob);
	goto out;
rollback:
	sql_ok(c, "ROLLBACK");
out:
	PQclear(r);
	PQclear(u);
	free(cs.acked);
	free(ids);
	return rc;
}

/*
 * Waits up to ms for a NOTIFY (when connected), a stop, or the time,
 * ticking the publisher for heartbeats. Returns false once stopping.
 */
static bool
wait_wakeup(struct svc_outbox *ob, long long ms)
{
	long long end = svc_now_ms() + ms;

	while (!atomic_load(&ob->stopping)) {
		PGconn *c = ob->db != NULL ? svc_db_conn(ob->db) : NULL;
		struct pollfd fds[2] = { { ob->pipe[0], POLLIN, 0 },
					 { -1, POLLIN, 0 } };
		long long left = end - svc_now_ms();
		PGnotify *note;
		bool woke = false;

		if (left <= 0)
			return true;
		if (ob->mq != NULL && svc_mq_tick(ob->mq) != SVC_OK)
			drop_mq(ob);
		/*
		 * A NOTIFY that libpq read in passing (the pending count, the
		 * liveness check in svc_db_conn) is queued already and would
		 * not wake poll.
		 */
		while (c != NULL && (note = PQnotifies(c)) != NULL) {
			woke = true;
			PQfreemem(note);
		}
		if (woke)
			return true;
		if (c != NULL)
			fds[1].fd = PQsocket(c);
		if (poll(fds, 2, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			return true;
		if (c == NULL ||
		    !(fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (!PQconsumeInput(c)) {
			drop_db(ob);
			return true;
		}
		while ((note = PQnotifies(c)) != NULL) {
			woke = true;
			PQfreemem(note);
		}
		if (woke)
			return true;
	}
	return false;
}

/*
 * Whether a relay_pause fault holds the relay now, logging when that
 * starts and ends. A round held while rows wait counts as injected.
 */
static bool
held_by_fault(struct svc_outbox *ob)
{
	bool held = svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL,
				       atomic_load(&seen.pending) > 0);

	if (held != ob->paused)
		svc_log(held ? SVC_LOG_WARN : SVC_LOG_INFO,
			held ? "outbox relay: paused by a fault"
			     : "outbox relay: resumed",
			SVC_LOG_INT("pending", atomic_load(&seen.pending)),
			SVC_LOG_END);
	ob->paused = held;
	return held;
}

static void *
relay_main(void *arg)
{
	struct svc_outbox *ob = arg;
	char *source = json_str(ob->service);
	int attempt = 0;

	while (source != NULL) {
		bool stopping = atomic_load(&ob->stopping);
		int rc;

		if (stopping && svc_now_ms() >= atomic_load(&ob->deadline))
			break;
		rc = connect_both(ob);
		if (rc == SVC_OK && held_by_fault(ob)) {
			/* Events wait in the outbox; a drain leaves them
			 * there for the next start. */
			if (stopping)
				break;
			count_pending(ob, true);
			wait_wakeup(ob, PAUSE_POLL_MS);
			continue;
		}
		if (rc == SVC_OK)
			rc = relay_batch(ob, source);
		/* Counted while the broker is away too: that is when the
		 * backlog grows and the age matters. */
		count_pending(ob, rc <= 0);
		if (rc > 0) {
			attempt = 0;
			continue;
		}
		if (stopping)
			break; /* drained, or cannot be */
		if (rc >= 0) {
			attempt = 0;
			wait_wakeup(ob, ob->poll_ms);
		} else {
			wait_wakeup(ob, backoff_ms(attempt++));
		}
	}
	free(source);
	/* Closing on purpose: not worth a "lost" line. */
	ob->db_logged_down = ob->mq_logged_down = true;
	drop_db(ob);
	drop_mq(ob);
	svc_log(SVC_LOG_INFO, "outbox relay stopped", SVC_LOG_END);
	return NULL;
}

struct svc_outbox *
svc_outbox_start(const struct svc_outbox_config *cfg)
{
	struct svc_outbox *ob = calloc(1, sizeof(*ob));

	if (ob == NULL)
		return NULL;
	pthread_once(&metrics_once, register_metrics);
	ob->pipe[0] = ob->pipe[1] = -1;
	ob->mq_cfg = *cfg->mq;
	ob->url = strdup(cfg->mq->url != NULL ? cfg->mq->url
					      : SVC_MQ_DEFAULT_URL);
	ob->app_id = strdup(cfg->mq->app_id != NULL ? cfg->mq->app_id
						    : cfg->service);
	ob->service = strdup(cfg->service);
	ob->batch = cfg->batch > 0 ? cfg->batch : 200;
	ob->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 1000;
	ob->mq_cfg.url = ob->url;
	ob->mq_cfg.app_id = ob->app_id;
	if (ob->url == NULL || ob->app_id == NULL || ob->service == NULL ||
	    pipe2(ob->pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pthread_create(&ob->thread, NULL, relay_main, ob) != 0)
		goto fail;
	return ob;
fail:
	if (ob->pipe[0] >= 0) {
		close(ob->pipe[0]);
		close(ob->pipe[1]);
	}
	free(ob->url);
	free(ob->app_id);
	free(ob->service);
	free(ob);
	return NULL;
}

void
svc_outbox_stop(struct svc_outbox *ob, long long deadline_ms)
{
	ssize_t w;

	if (ob == NULL)
		return;
	atomic_store(&ob->deadline, deadline_ms);
	atomic_store(&ob->stopping, true);
	w = write(ob->pipe[1], "x", 1);
	(void)w;
	pthread_join(ob->thread, NULL);
	close(ob->pipe[0]);
	close(ob->pipe[1]);
	free(ob->url);
	free(ob->app_id);
	free(ob->service);
	free(ob);
}

static enum svc_health_status
check_rabbitmq(json_t *detail, void *arg)
{
	struct svc_outbox *ob = arg;
	bool up = atomic_load(&ob->mq_up);

	json_object_set_new(detail, "connected", json_boolean(up));
	return up ? SVC_HEALTH_UP : SVC_HEALTH_DOWN;
}

/*
 * From the relay's own count (no query per probe): down when it has not
 * counted for a while - the outbox cannot be read - degraded when the
 * oldest unsent row is stale.
 */
static enum svc_health_status
check_outbox(json_t *detail, void *arg)
{
	long long n = atomic_load(&seen.pending);
	double oldest;

	(void)arg;
	if (n < 0 ||
	    svc_now_ms() - atomic_load(&seen.counted_at) > COUNT_STALE_MS)
		return SVC_HEALTH_DOWN;
	oldest = oldest_now(NULL);
	json_object_set_new(detail, "pending", json_integer(n));
	json_object_set_new(detail, "oldest_s", json_real(oldest));
	return oldest > STALE_S ? SVC_HEALTH_DEGRADED : SVC_HEALTH_UP;
}

int
svc_outbox_health(struct svc_outbox *ob)
{
	if (ob == NULL)
		return SVC_EINVAL;
	if (svc_health_register("rabbitmq", check_rabbitmq, ob, false) !=
	    SVC_OK)
		return SVC_EINVAL;
	return svc_health_register("outbox", check_outbox, NULL, false);
}
