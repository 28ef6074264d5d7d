/*
 * svc/db.h - PostgreSQL connections owned by threads, prepared statements.
 *
 * Each worker thread gets its own connection on first use (a PGconn must
 * never be shared between threads) with every registered statement
 * prepared once, so a request costs one round trip. All connections are
 * tracked so svc_db_shutdown() can close them. Every connection has a
 * connect timeout and a statement_timeout. When the server went away (a
 * restart), the connection is re-established: a statement marked
 * SVC_DB_IDEMPOTENT is retried once on the new connection; any other
 * answers SVC_EUNAVAIL, because it may or may not have run.
 *
 * Reads (SVC_DB_IDEMPOTENT statements outside a transaction) can instead go
 * through a few shared connections in pipeline mode, which batch the reads
 * of all threads into one round trip (svc_db_config.pipelines).
 *
 * Metrics: db_pool_connections (live connections of the process),
 * db_pool_connects_total, db_pool_connect_failures_total,
 * db_pool_pipeline_batches_total and db_pool_pipelined_queries_total.
 */
#ifndef SVC_DB_H
#define SVC_DB_H

#include <stdbool.h>
#include <libpq-fe.h>

enum {
	SVC_DB_IDEMPOTENT = 1 << 0, /* safe to retry after a reconnect */
};

/* A statement prepared on every connection. */
struct svc_db_stmt {
	const char *name;
	const char *sql;
	unsigned flags;
};

struct svc_db_config {
	const char *url;	      /* libpq URL or conninfo (copied) */
	int connect_timeout_s;	      /* libpq connect_timeout */
	int statement_timeout_ms;     /* per statement, server side */
	const char *application_name; /* shows in pg_stat_activity */
	int pipelines; /* connections batching reads; 0: every thread its own */
};

struct svc_db;

/*
 * Sets the configuration and the statement tables (NULL-name terminated,
 * borrowed; up to 8 tables, e.g. one per resource) for connections made
 * from now on. Returns 0 or SVC_EINVAL.
 */
int svc_db_setup(const struct svc_db_config *cfg,
		 const struct svc_db_stmt *const *tables);

/* Closes every connection; threads must not use theirs afterwards. */
void svc_db_shutdown(void);

/*
 * The calling thread's connection handle; it connects (and prepares) on
 * first use, so a thread that only reads through the pipelines never opens
 * one. NULL only when out of memory; an unreachable database shows as
 * SVC_EUNAVAIL from the call that needed it.
 */
struct svc_db *svc_db_thread(void);

/* A new connection of its own, for background threads. */
struct svc_db *svc_db_open(void);
/* The same without preparing statements (migrations: tables may not exist). */
struct svc_db *svc_db_open_plain(void);
void svc_db_close(struct svc_db *db);

/*
 * The libpq connection (borrowed), connecting first if needed, for things
 * libsvc does not wrap; NULL when the database cannot be reached.
 */
PGconn *svc_db_conn(struct svc_db *db);

/*
 * Runs a prepared statement with n text parameters (NULL = SQL NULL).
 * On success *out (may be NULL) takes the result; free it with PQclear.
 * Errors: SVC_ECONFLICT (unique violation), SVC_EINVAL (data the database
 * refused: bad input syntax, check violation), SVC_EUNAVAIL (connection
 * lost, server shutting down), SVC_ETIMEOUT (statement_timeout), and
 * SVC_EINTERNAL for anything else (logged with its SQLSTATE).
 */
int svc_db_exec(struct svc_db *db, const char *stmt, int n,
		const char *const *params, PGresult **out);

/* Runs plain SQL without parameters (migrations, BEGIN/COMMIT). */
int svc_db_sql(struct svc_db *db, const char *sql);

/* Transactions on the thread's connection. */
int svc_db_begin(struct svc_db *db);
int svc_db_commit(struct svc_db *db);
void svc_db_rollback(struct svc_db *db);

/* SQLSTATE of the last failure on db ("23505"), or "". */
const char *svc_db_sqlstate(const struct svc_db *db);

/* Number of connections open now (for health and metrics). */
int svc_db_open_count(void);

#endif
