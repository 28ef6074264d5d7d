/*
 * db_stub.c - the database layer of the fuzz targets: every call fails
 * with SVC_EUNAVAIL (there is no database), so a handler driven by a fuzz
 * target validates its input and stops at its first query. Linked in place
 * of common/src/db.c; it is not a fake database and returns no rows.
 */
#include <stddef.h>

#include "svc/db.h"
#include "svc/err.h"

struct svc_db {
	int unused;
};

static struct svc_db no_db;

int
svc_db_setup(const struct svc_db_config *cfg,
	     const struct svc_db_stmt *const *tables)
{
	(void)cfg;
	(void)tables;
	return SVC_EUNAVAIL;
}

void
svc_db_shutdown(void)
{
}

struct svc_db *
svc_db_thread(void)
{
	return &no_db;
}

struct svc_db *
svc_db_open(void)
{
	return NULL;
}

struct svc_db *
svc_db_open_plain(void)
{
	return NULL;
}

void
svc_db_close(struct svc_db *db)
{
	(void)db;
}

PGconn *
svc_db_conn(struct svc_db *db)
{
	(void)db;
	return NULL;
}

int
svc_db_exec(struct svc_db *db, const char *stmt, int n,
	    const char *const *params, PGresult **out)
{
	(void)db;
	(void)stmt;
	(void)n;
	(void)params;
	if (out != NULL)
		*out = NULL;
	return SVC_EUNAVAIL;
}

int
svc_db_sql(struct svc_db *db, const char *sql)
{
	(void)db;
	(void)sql;
	return SVC_EUNAVAIL;
}

int
svc_db_begin(struct svc_db *db)
{
	(void)db;
	return SVC_EUNAVAIL;
}

int
svc_db_commit(struct svc_db *db)
{
	(void)db;
	return SVC_EUNAVAIL;
}

void
svc_db_rollback(struct svc_db *db)
{
	(void)db;
}

const char *
svc_db_sqlstate(const struct svc_db *db)
{
	(void)db;
	return "";
}

int
svc_db_open_count(void)
{
	return 0;
}
