/*
 * db.c - one libpq connection per thread, statements prepared once each.
 *
 * A worker thread's first request connects and prepares every registered
 * statement; later requests pay one round trip per statement. Connections
 * live in a registry so shutdown can close them all (a thread-local alone
 * would leak them when libmicrohttpd's threads exit). Losing the server -
 * a restart, a failover - is noticed on use: the connection is reset, and
 * statements known to be safe to repeat are retried once.
 */
#include "svc/db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/metrics.h"

#include <stdatomic.h>

#define MAX_TABLES 8
#define MAX_PIPES  16
#define MAX_BATCH  256

struct svc_db {
	PGconn *conn;
	bool prepared;
	bool in_registry;
	bool plain; /* no prepared statements */
	char sqlstate[6];
	struct svc_db *next;
};

/* A read waiting for a pipeline; lives on the waiting thread's stack. */
struct job {
	const char *stmt;
	int n;
	const char *const *params;
	PGresult *result;
	int rc;
	sem_t done;
	struct job *next;
};

/* One connection in pipeline mode and the thread that feeds it. */
struct pipe {
	struct svc_db db;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, *tail;
	bool stop;
};

static struct {
	char *conninfo;
	const struct svc_db_stmt *tables[MAX_TABLES + 1];
	pthread_mutex_t lock;
	struct svc_db *all;
	int count;
	int npipes;  /* configured */
	int started; /* running */
	struct pipe pipes[MAX_PIPES];
	atomic_uint next_pipe;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* See svc_db_setup. */
#define KEEPALIVES                                                             \
	"keepalives_idle=30 keepalives_interval=10 keepalives_count=3"
#define KEEPALIVES_URL                                                         \
	"keepalives_idle=30&keepalives_interval=10&keepalives_count=3"
#define SESSION_GUCS                                                           \
	"-c idle_in_transaction_session_timeout=60000"                         \
	" -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10"             \
	" -c tcp_keepalives_count=3"
#define SESSION_GUCS_URL                                                       \
	"%%20-c%%20idle_in_transaction_session_timeout%%3D60000"               \
	"%%20-c%%20tcp_keepalives_idle%%3D30%%20-c%%20tcp_keepalives_interval" \
	"%%3D10%%20-c%%20tcp_keepalives_count%%3D3"

/*
 * db_pool_* metrics. open_conns counts live PGconns of the process: the
 * threads', the pipelines' and the background threads' alike.
 */
static atomic_int open_conns;
static struct svc_metric_series *connects, *connect_failures, *batches,
	*pipelined;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static double
open_now(void *arg)
{
	(void)arg;
	return atomic_load(&open_conns);
}

static struct svc_metric_series *
counter(const char *name, const char *help)
{
	return svc_metrics_series(
		svc_metrics_counter(NULL, name, help, NULL, 0), NULL);
}

static void
register_metrics(void)
{
	svc_metrics_gauge_fn(NULL, "db_pool_connections",
			     "Open PostgreSQL connections of the process.",
			     open_now, NULL);
	connects = counter("db_pool_connects_total",
			   "PostgreSQL connections established.");
	connect_failures =
		counter("db_pool_connect_failures_total",
			"PostgreSQL connection attempts that failed.");
	batches = counter("db_pool_pipeline_batches_total",
			  "Batches of reads sent on a pipelined connection.");
	pipelined = counter("db_pool_pipelined_queries_total",
			    "Reads sent in pipeline batches.");
}

/* PQfinish, and one open connection less. */
static void
finish_conn(struct svc_db *db)
{
	if (db->conn == NULL)
		return;
	PQfinish(db->conn);
	db->conn = NULL;
	atomic_fetch_sub(&open_conns, 1);
}

static _Thread_local int thread_pipe = -1;

static _Thread_local struct svc_db *thread_db;

int
svc_db_setup(const struct svc_db_config *cfg,
	     const struct svc_db_stmt *const *tables)
{
	char extra[512];
	int n = 0;

	/*
	 * Besides the statement timeout: a session left idle in a
	 * transaction (a hung process) is ended after a minute, and TCP
	 * keepalives on both ends notice a peer that vanished (a crashed
	 * host) in about a minute instead of two hours - either would
	 * otherwise keep its locks, say an outbox relay's claimed rows,
	 * which other replicas then skip.
	 */
	snprintf(extra, sizeof(extra),
		 "connect_timeout=%d application_name=%s " KEEPALIVES
		 " options='-c statement_timeout=%d " SESSION_GUCS "'",
		 cfg->connect_timeout_s,
		 cfg->application_name ? cfg->application_name : "svc",
		 cfg->statement_timeout_ms);
	free(g.conninfo);
	/*
	 * libpq takes a URL or key=value pairs but not both in one string;
	 * a URL gets the extras as query parameters, pairs get them appended.
	 */
	if (strncmp(cfg->url, "postgres://", 11) == 0 ||
	    strncmp(cfg->url, "postgresql://", 13) == 0) {
		char url_extra[512];

		snprintf(
			url_extra, sizeof(url_extra),
			"%cconnect_timeout=%d&application_name=%s"
			"&" KEEPALIVES_URL
			"&options=-c%%20statement_timeout%%3D%d" SESSION_GUCS_URL,
			strchr(cfg->url, '?') ? '&' : '?',
			cfg->connect_timeout_s,
			cfg->application_name ? cfg->application_name : "svc",
			cfg->statement_timeout_ms);
		if (asprintf(&g.conninfo, "%s%s", cfg->url, url_extra) < 0)
			return SVC_ENOMEM;
	} else if (asprintf(&g.conninfo, "%s %s", cfg->url, extra) < 0) {
		return SVC_ENOMEM;
	}
	g.npipes = cfg->pipelines < MAX_PIPES ? cfg->pipelines : MAX_PIPES;
	for (; tables != NULL && tables[n] != NULL; n++) {
		if (n == MAX_TABLES)
			return SVC_EINVAL;
		g.tables[n] = tables[n];
	}
	g.tables[n] = NULL;
	return SVC_OK;
}

static void
save_sqlstate(struct svc_db *db, const PGresult *r)
{
	const char *s =
		r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", s ? s : "");
}

static int
prepare_all(struct svc_db *db)
{
	for (int t = 0; g.tables[t] != NULL; t++) {
		for (const struct svc_db_stmt *s = g.tables[t]; s->name; s++) {
			PGresult *r =
				PQprepare(db->conn, s->name, s->sql, 0, NULL);
			bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

			if (!ok)
				svc_log(SVC_LOG_ERROR,
					"cannot prepare statement",
					SVC_LOG_STR("statement", s->name),
					SVC_LOG_STR("error",
						    PQerrorMessage(db->conn)),
					SVC_LOG_END);
			PQclear(r);
			if (!ok)
				return SVC_EUNAVAIL;
		}
	}
	db->prepared = true;
	return SVC_OK;
}

/* Server notices go to the log, not to stderr in libpq's own format. */
static void
log_notice(void *arg, const char *message)
{
	char msg[512];

	(void)arg;
	snprintf(msg, sizeof(msg), "%s", message);
	msg[strcspn(msg, "\n")] = '\0';
	svc_log(SVC_LOG_DEBUG, "database notice", SVC_LOG_STR("notice", msg),
		SVC_LOG_END);
}

/* (Re)connects db->conn and prepares statements unless plain. */
static int
connect_db(struct svc_db *db)
{
	pthread_once(&metrics_once, register_metrics);
	finish_conn(db);
	db->prepared = false;
	db->conn = PQconnectdb(g.conninfo);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		svc_metrics_inc(connect_failures);
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		msg[strcspn(msg, "\n")] = '\0';
		svc_log(SVC_LOG_ERROR, "cannot connect to the database",
			SVC_LOG_STR("error", msg), SVC_LOG_END);
		PQfinish(db->conn);
		db->conn = NULL;
		return SVC_EUNAVAIL;
	}
	atomic_fetch_add(&open_conns, 1);
	svc_metrics_inc(connects);
	PQsetNoticeProcessor(db->conn, log_notice, NULL);
	return db->plain ? SVC_OK : prepare_all(db);
}

static void
registry_add(struct svc_db *db)
{
	pthread_mutex_lock(&g.lock);
	db->next = g.all;
	g.all = db;
	g.count++;
	db->in_registry = true;
	pthread_mutex_unlock(&g.lock);
}

static void
registry_remove(struct svc_db *db)
{
	pthread_mutex_lock(&g.lock);
	for (struct svc_db **p = &g.all; *p != NULL; p = &(*p)->next) {
		if (*p == db) {
			*p = db->next;
			g.count--;
			break;
		}
	}
	db->in_registry = false;
	pthread_mutex_unlock(&g.lock);
}

static struct svc_db *
open_db(bool plain)
{
	struct svc_db *db = calloc(1, sizeof(*db));

	if (db == NULL)
		return NULL;
	db->plain = plain;
	if (connect_db(db) != SVC_OK) {
		free(db);
		return NULL;
	}
	registry_add(db);
	return db;
}

struct svc_db *
svc_db_open(void)
{
	return open_db(false);
}

struct svc_db *
svc_db_open_plain(void)
{
	return open_db(true);
}

void
svc_db_close(struct svc_db *db)
{
	if (db == NULL)
		return;
	if (db->in_registry)
		registry_remove(db);
	finish_conn(db);
	free(db);
}

struct svc_db *
svc_db_thread(void)
{
	struct svc_db *db = thread_db;

	if (db == NULL) {
		/* Connected on first use: reads may never need it. */
		db = calloc(1, sizeof(*db));
		if (db == NULL)
			return NULL;
		registry_add(db);
		thread_db = db;
	}
	return db;
}

/*
 * Whether an idle connection is still open. A server that shut down or
 * restarted has sent its goodbye and closed the socket: anything readable
 * on an idle connection is drained, and an end of file shows as a bad
 * status. Costs one poll(2) when nothing is pending.
 */
static bool
idle_conn_alive(struct svc_db *db)
{
	struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };

	for (int i = 0; i < 4 && PQstatus(db->conn) == CONNECTION_OK; i++) {
		if (poll(&pfd, 1, 0) <= 0)
			return true; /* nothing pending */
		if (!PQconsumeInput(db->conn))
			return false;
	}
	return PQstatus(db->conn) == CONNECTION_OK;
}

/*
 * Makes sure db has a live, prepared connection. An idle one is checked
 * for a server that went away meanwhile (idle_conn_alive), so nothing runs
 * on a connection that is already dead.
 */
static int
ensure(struct svc_db *db)
{
	if (db->conn != NULL && (db->prepared || db->plain) &&
	    PQstatus(db->conn) == CONNECTION_OK &&
	    (PQtransactionStatus(db->conn) != PQTRANS_IDLE ||
	     idle_conn_alive(db)))
		return SVC_OK;
	return connect_db(db);
}

static void pipes_stop(void);

void
svc_db_shutdown(void)
{
	pipes_stop();
	pthread_mutex_lock(&g.lock);
	while (g.all != NULL) {
		struct svc_db *db = g.all;

		g.all = db->next;
		finish_conn(db);
		free(db);
	}
	g.count = 0;
	pthread_mutex_unlock(&g.lock);
	thread_db = NULL;
	free(g.conninfo);
	g.conninfo = NULL;
}

int
svc_db_open_count(void)
{
	int n;

	pthread_mutex_lock(&g.lock);
	n = g.count;
	pthread_mutex_unlock(&g.lock);
	return n;
}

PGconn *
svc_db_conn(struct svc_db *db)
{
	return ensure(db) == SVC_OK ? db->conn : NULL;
}

const char *
svc_db_sqlstate(const struct svc_db *db)
{
	return db->sqlstate;
}

static unsigned
stmt_flags(const char *name)
{
	for (int t = 0; g.tables[t] != NULL; t++)
		for (const struct svc_db_stmt *s = g.tables[t]; s->name; s++)
			if (strcmp(s->name, name) == 0)
				return s->flags;
	return 0;
}

/* Maps a failed result to an error code, logging the unexpected ones. */
static int
classify(struct svc_db *db, PGresult *r, const char *what)
{
	const char *state;

	save_sqlstate(db, r);
	state = db->sqlstate;
	if (PQstatus(db->conn) != CONNECTION_OK || state[0] == '\0' ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		svc_log(SVC_LOG_WARN, "database connection lost",
			SVC_LOG_STR("statement", what),
			SVC_LOG_STR("sqlstate", state), SVC_LOG_END);
		return SVC_EUNAVAIL;
	}
	if (strcmp(state, "57014") == 0)
		return SVC_ETIMEOUT;
	if (strcmp(state, "23505") == 0)
		return SVC_ECONFLICT;
	if (strncmp(state, "22", 2) == 0 || strcmp(state, "23514") == 0 ||
	    strcmp(state, "23502") == 0)
		return SVC_EINVAL;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return SVC_EUNAVAIL; /* serialization, deadlock, lock timeout */
	svc_log(SVC_LOG_ERROR, "database error", SVC_LOG_STR("statement", what),
		SVC_LOG_STR("sqlstate", state),
		SVC_LOG_STR("error", PQresultErrorMessage(r)), SVC_LOG_END);
	return SVC_EINTERNAL;
}

static bool
result_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

static int pipe_exec(const char *stmt, int n, const char *const *params,
		     PGresult **out);

int
svc_db_exec(struct svc_db *db, const char *stmt, int n,
	    const char *const *params, PGresult **out)
{
	bool idle = db->conn == NULL ||
		    PQtransactionStatus(db->conn) == PQTRANS_IDLE;
	bool retry = idle && (stmt_flags(stmt) & SVC_DB_IDEMPOTENT);
	PGresult *r;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (retry && g.npipes > 0)
		return pipe_exec(stmt, n, params, out);
	/* A write must not run on a connection the server already closed:
	 * the retry below would be unsafe for it. ensure() checks. */
	if (ensure(db) != SVC_OK)
		return SVC_EUNAVAIL;
	r = PQexecPrepared(db->conn, stmt, n, params, NULL, NULL, 0);
	if (!result_ok(r) && retry && PQstatus(db->conn) != CONNECTION_OK) {
		PQclear(r);
		if (connect_db(db) != SVC_OK)
			return SVC_EUNAVAIL;
		r = PQexecPrepared(db->conn, stmt, n, params, NULL, NULL, 0);
	}
	if (!result_ok(r)) {
		rc = classify(db, r, stmt);
		PQclear(r);
		if (PQstatus(db->conn) != CONNECTION_OK)
			db->prepared = false; /* reconnect on next use */
		return rc;
	}
	db->sqlstate[0] = '\0';
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return SVC_OK;
}

int
svc_db_sql(struct svc_db *db, const char *sql)
{
	PGresult *r;
	int rc = SVC_OK;

	if (ensure(db) != SVC_OK)
		return SVC_EUNAVAIL;
	r = PQexec(db->conn, sql);
	if (!result_ok(r)) {
		rc = classify(db, r, sql);
		if (PQstatus(db->conn) != CONNECTION_OK)
			db->prepared = false;
	}
	PQclear(r);
	return rc;
}

int
svc_db_begin(struct svc_db *db)
{
	int rc = svc_db_sql(db, "BEGIN");

	/* BEGIN changes nothing: after a reconnect it is safe to repeat. */
	if (rc == SVC_EUNAVAIL && connect_db(db) == SVC_OK)
		rc = svc_db_sql(db, "BEGIN");
	return rc;
}

int
svc_db_commit(struct svc_db *db)
{
	return svc_db_sql(db, "COMMIT");
}

void
svc_db_rollback(struct svc_db *db)
{
	if (PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		svc_db_sql(db, "ROLLBACK");
}

/* --- pipelined reads --- */

/*
 * Reads outside a transaction are batched: a few connections in pipeline
 * mode each take every read queued while the previous batch was in flight,
 * send them back to back with one Sync, and hand each result to its
 * waiting thread. Under load one round trip then carries many reads, and
 * PostgreSQL wakes once per batch instead of once per query. A read that
 * fails on its own (say, a statement timeout) aborts the rest of its batch
 * (PGRES_PIPELINE_ABORTED); those are sent again one by one, so one bad
 * read never fails another.
 */

static void
finish(struct job *j, int rc, PGresult *r)
{
	j->rc = rc;
	j->result = r;
	sem_post(&j->done);
}

/* Connects the pipe's connection, prepares, enters pipeline mode. */
static bool
pipe_connect(struct pipe *p)
{
	if (p->db.conn != NULL && p->db.prepared &&
	    PQstatus(p->db.conn) == CONNECTION_OK)
		return true;
	if (connect_db(&p->db) != SVC_OK)
		return false;
	if (!PQenterPipelineMode(p->db.conn)) {
		p->db.prepared = false;
		return false;
	}
	return true;
}

/*
 * Sends batch with one Sync and reads the results in order. Jobs aborted
 * by an earlier failure in the batch go to *again; jobs hit by a lost
 * connection go to *lost. Everything else is finished.
 */
static void
run_batch(struct pipe *p, struct job *batch, struct job **again,
	  struct job **lost)
{
	PGconn *c = p->db.conn;
	struct job *j, *next;
	PGresult *r;
	bool broken = false;
	int rc;

	svc_metrics_inc(batches);
	for (j = batch; j != NULL && !broken; j = j->next) {
		broken = !PQsendQueryPrepared(c, j->stmt, j->n, j->params, NULL,
					      NULL, 0);
		svc_metrics_inc(pipelined);
	}
	if (!broken)
		broken = !PQpipelineSync(c);
	for (j = batch; j != NULL; j = next) {
		next = j->next;
		r = broken ? NULL : PQgetResult(c);
		if (r == NULL) {
			broken = true;
			j->next = *lost;
			*lost = j;
			continue;
		}
		/* Each query's results end with a NULL. */
		for (PGresult *extra; (extra = PQgetResult(c)) != NULL;)
			PQclear(extra);
		switch (PQresultStatus(r)) {
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			finish(j, SVC_OK, r);
			break;
		case PGRES_PIPELINE_ABORTED:
			PQclear(r);
			j->next = *again;
			*again = j;
			break;
		default:
			rc = classify(&p->db, r, j->stmt);
			PQclear(r);
			if (rc == SVC_EUNAVAIL) {
				/*
				 * A server that restarted answers with an
				 * error ("terminating connection"), not an
				 * end of file: a read is safe to send again
				 * on a new connection.
				 */
				broken = true;
				j->next = *lost;
				*lost = j;
				break;
			}
			finish(j, rc, NULL);
			break;
		}
	}
	if (broken) {
		p->db.prepared = false; /* reconnect before the next batch */
		return;
	}
	r = PQgetResult(c); /* the Sync */
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		p->db.prepared = false;
	PQclear(r);
}

static void
fail_all(struct job *list, int rc)
{
	for (struct job *j = list, *next; j != NULL; j = next) {
		next = j->next;
		finish(j, rc, NULL);
	}
}

/* Runs batch; a lost connection is re-made once, reads being safe to repeat. */
static void
serve_batch(struct pipe *p, struct job *batch)
{
	struct job *again = NULL, *lost = NULL;

	for (int attempt = 0; batch != NULL; attempt++) {
		if (attempt == 2 || !pipe_connect(p)) {
			fail_all(batch, SVC_EUNAVAIL);
			return;
		}
		run_batch(p, batch, &again, &lost);
		/* Aborted ones go one at a time: each fails only for itself. */
		while (again != NULL) {
			struct job *j = again;

			again = j->next;
			j->next = NULL;
			run_batch(p, j, &again, &lost);
		}
		batch = lost;
		lost = NULL;
	}
}

static void *
pipe_main(void *arg)
{
	struct pipe *p = arg;

	for (;;) {
		struct job *batch, *cut;
		int n = 1;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->head == NULL) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		batch = cut = p->head;
		while (cut->next != NULL && n < MAX_BATCH) {
			cut = cut->next;
			n++;
		}
		p->head = cut->next;
		if (p->head == NULL)
			p->tail = NULL;
		cut->next = NULL;
		pthread_mutex_unlock(&p->lock);
		serve_batch(p, batch);
	}
	return NULL;
}

/* Starts the pipes on first use (not in `migrate`, which never reads). */
static bool
pipes_start(void)
{
	pthread_mutex_lock(&g.lock);
	while (g.started < g.npipes) {
		struct pipe *p = &g.pipes[g.started];

		memset(p, 0, sizeof(*p));
		pthread_mutex_init(&p->lock, NULL);
		pthread_cond_init(&p->wake, NULL);
		if (pthread_create(&p->thread, NULL, pipe_main, p) != 0) {
			g.npipes = g.started; /* run with what we have */
			break;
		}
		g.started++;
	}
	pthread_mutex_unlock(&g.lock);
	return g.started > 0;
}

static void
pipes_stop(void)
{
	for (int i = 0; i < g.started; i++) {
		struct pipe *p = &g.pipes[i];

		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		finish_conn(&p->db);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->wake);
	}
	g.started = 0;
}

static int
pipe_exec(const char *stmt, int n, const char *const *params, PGresult **out)
{
	struct job j = { .stmt = stmt, .n = n, .params = params };
	struct pipe *p;
	bool was_empty;

	if (g.started < g.npipes && !pipes_start())
		return SVC_EUNAVAIL;
	if (thread_pipe < 0)
		thread_pipe = (int)(atomic_fetch_add(&g.next_pipe, 1) %
				    (unsigned)g.started);
	p = &g.pipes[thread_pipe];
	sem_init(&j.done, 0, 0);
	pthread_mutex_lock(&p->lock);
	was_empty = p->head == NULL;
	if (p->tail != NULL)
		p->tail->next = &j;
	else
		p->head = &j;
	p->tail = &j;
	if (was_empty)
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	while (sem_wait(&j.done) != 0 && errno == EINTR)
		;
	sem_destroy(&j.done);
	if (out != NULL)
		*out = j.result;
	else
		PQclear(j.result);
	return j.rc;
}
