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

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"

#define MAX_TABLES 8

struct svc_db {
	PGconn *conn;
	bool prepared;
	bool in_registry;
	bool plain; /* no prepared statements */
	char sqlstate[6];
	struct svc_db *next;
};

static struct {
	char *conninfo;
	const struct svc_db_stmt *tables[MAX_TABLES + 1];
	pthread_mutex_t lock;
	struct svc_db *all;
	int count;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static _Thread_local struct svc_db *thread_db;

int
svc_db_setup(const struct svc_db_config *cfg,
	     const struct svc_db_stmt *const *tables)
{
	char extra[256];
	int n = 0;

	snprintf(extra, sizeof(extra),
		 "connect_timeout=%d application_name=%s "
		 "options='-c statement_timeout=%d'",
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
		char url_extra[256];

		snprintf(url_extra, sizeof(url_extra),
			 "%cconnect_timeout=%d&application_name=%s"
			 "&options=-c%%20statement_timeout%%3D%d",
			 strchr(cfg->url, '?') ? '&' : '?',
			 cfg->connect_timeout_s,
			 cfg->application_name ? cfg->application_name : "svc",
			 cfg->statement_timeout_ms);
		if (asprintf(&g.conninfo, "%s%s", cfg->url, url_extra) < 0)
			return SVC_ENOMEM;
	} else if (asprintf(&g.conninfo, "%s %s", cfg->url, extra) < 0) {
		return SVC_ENOMEM;
	}
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

/* (Re)connects db->conn and prepares statements unless plain. */
static int
connect_db(struct svc_db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->prepared = false;
	db->conn = PQconnectdb(g.conninfo);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		msg[strcspn(msg, "\n")] = '\0';
		svc_log(SVC_LOG_ERROR, "cannot connect to the database",
			SVC_LOG_STR("error", msg), SVC_LOG_END);
		PQfinish(db->conn);
		db->conn = NULL;
		return SVC_EUNAVAIL;
	}
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
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db);
}

struct svc_db *
svc_db_thread(void)
{
	struct svc_db *db = thread_db;

	if (db != NULL && db->conn != NULL && (db->prepared || db->plain))
		return db;
	if (db == NULL) {
		db = svc_db_open();
		thread_db = db;
		return db;
	}
	return connect_db(db) == SVC_OK ? db : NULL;
}

void
svc_db_shutdown(void)
{
	pthread_mutex_lock(&g.lock);
	while (g.all != NULL) {
		struct svc_db *db = g.all;

		g.all = db->next;
		if (db->conn != NULL)
			PQfinish(db->conn);
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
	return db->conn;
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

int
svc_db_exec(struct svc_db *db, const char *stmt, int n,
	    const char *const *params, PGresult **out)
{
	bool idle = PQtransactionStatus(db->conn) == PQTRANS_IDLE;
	bool retry = idle && (stmt_flags(stmt) & SVC_DB_IDEMPOTENT);
	PGresult *r;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (idle && !retry) {
		/*
		 * A write must not run on a connection the server already
		 * closed: the retry below would be unsafe for it. Reading
		 * what is pending on the socket tells us without a round trip.
		 */
		if (!PQconsumeInput(db->conn) ||
		    PQstatus(db->conn) != CONNECTION_OK) {
			if (connect_db(db) != SVC_OK)
				return SVC_EUNAVAIL;
		}
	}
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
	PGresult *r = PQexec(db->conn, sql);
	int rc = SVC_OK;

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
