/*
 * migrate.c - applies migrations/<service>/NNNN_name.sql in order.
 *
 * Each file runs in its own transaction together with the row that records
 * it, so a failed migration leaves no trace and a crash cannot leave a file
 * half-recorded. A session-level advisory lock serialises replicas that
 * start at the same moment: the second waits, then finds nothing to do.
 * Checksums make history immutable: editing an applied file is refused
 * rather than silently diverging from databases that ran the old text.
 */
#include "svc/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"

/* Arbitrary, but fixed forever: every replica must take the same lock. */
#define LOCK_KEY  "7357001"
#define MAX_FILES 1000

struct migration {
	int version;
	char name[256];
	char checksum[65];
	char *sql;
};

/* "0007_add_index.sql" -> 7; -1 when the name does not follow the rule. */
static int
parse_version(const char *name)
{
	size_t n = strlen(name);
	int v = 0, digits = 0;

	if (n < 10 || strcmp(name + n - 4, ".sql") != 0)
		return -1;
	for (; name[digits] >= '0' && name[digits] <= '9'; digits++)
		v = v * 10 + (name[digits] - '0');
	if (digits != 4 || name[4] != '_' || v == 0)
		return -1;
	return v;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf != NULL) {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}

static void
sha256_hex(const char *data, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	EVP_Digest(data, strlen(data), md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + i * 2, 3, "%02x", md[i]);
}

static int
by_version(const void *a, const void *b)
{
	return ((const struct migration *)a)->version -
	       ((const struct migration *)b)->version;
}

static void
free_all(struct migration *m, int n)
{
	for (int i = 0; i < n; i++)
		free(m[i].sql);
	free(m);
}

/* Loads and sorts dir's migrations; *out gets a malloc'd array. */
static int
load_dir(const char *dir, struct migration **out, int *count)
{
	struct migration *m = calloc(MAX_FILES, sizeof(*m));
	struct dirent *de;
	DIR *d;
	int n = 0, rc = SVC_OK;

	*out = NULL;
	*count = 0;
	if (m == NULL)
		return SVC_ENOMEM;
	d = opendir(dir);
	if (d == NULL) {
		svc_log(SVC_LOG_ERROR, "cannot open migrations folder",
			SVC_LOG_STR("dir", dir),
			SVC_LOG_STR("error", strerror(errno)), SVC_LOG_END);
		free(m);
		return SVC_EINVAL;
	}
	while (rc == SVC_OK && (de = readdir(d)) != NULL) {
		char path[4096];
		int v;

		if (de->d_name[0] == '.' || strlen(de->d_name) < 4 ||
		    strcmp(de->d_name + strlen(de->d_name) - 4, ".sql") != 0)
			continue;
		v = parse_version(de->d_name);
		if (v < 0 || n == MAX_FILES || strlen(de->d_name) >= 256) {
			svc_log(SVC_LOG_ERROR,
				"migration file name must be NNNN_name.sql",
				SVC_LOG_STR("file", de->d_name), SVC_LOG_END);
			rc = SVC_EINVAL;
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		m[n].sql = read_file(path);
		if (m[n].sql == NULL) {
			svc_log(SVC_LOG_ERROR, "cannot read migration",
				SVC_LOG_STR("file", path), SVC_LOG_END);
			rc = SVC_EINVAL;
			break;
		}
		m[n].version = v;
		strcpy(m[n].name, de->d_name);
		sha256_hex(m[n].sql, m[n].checksum);
		n++;
	}
	closedir(d);
	qsort(m, (size_t)n, sizeof(*m), by_version);
	for (int i = 1; rc == SVC_OK && i < n; i++) {
		if (m[i].version == m[i - 1].version) {
			svc_log(SVC_LOG_ERROR, "two migrations share a version",
				SVC_LOG_STR("file", m[i].name),
				SVC_LOG_STR("other", m[i - 1].name),
				SVC_LOG_END);
			rc = SVC_EINVAL;
		}
	}
	if (rc != SVC_OK) {
		free_all(m, n);
		return rc;
	}
	*out = m;
	*count = n;
	return SVC_OK;
}

int
svc_migrate_latest(const char *dir)
{
	struct migration *m;
	int n, v;

	if (load_dir(dir, &m, &n) != SVC_OK)
		return -1;
	v = n > 0 ? m[n - 1].version : 0;
	free_all(m, n);
	return v;
}

static bool
exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		  PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		svc_log(SVC_LOG_ERROR, "migration statement failed",
			SVC_LOG_STR("error", PQresultErrorMessage(r)),
			SVC_LOG_END);
	PQclear(r);
	return ok;
}

int
svc_migrate_current(PGconn *conn)
{
	PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) "
				   "FROM schema_migrations");
	int v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* Applies m (not yet recorded) in one transaction with its record. */
static int
apply(PGconn *conn, const struct migration *m)
{
	char version[16];
	const char *params[3] = { version, m->name, m->checksum };
	PGresult *r;
	bool ok;

	snprintf(version, sizeof(version), "%d", m->version);
	if (!exec_ok(conn, "BEGIN"))
		return SVC_EUNAVAIL;
	if (!exec_ok(conn, m->sql)) {
		exec_ok(conn, "ROLLBACK");
		svc_log(SVC_LOG_ERROR, "migration failed",
			SVC_LOG_STR("file", m->name), SVC_LOG_END);
		return SVC_EINVAL;
	}
	r = PQexecParams(
		conn,
		"INSERT INTO schema_migrations (version, name, checksum)"
		" VALUES ($1, $2, $3)",
		3, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok || !exec_ok(conn, "COMMIT")) {
		exec_ok(conn, "ROLLBACK");
		return SVC_EUNAVAIL;
	}
	svc_log(SVC_LOG_INFO, "migration applied", SVC_LOG_STR("file", m->name),
		SVC_LOG_END);
	return SVC_OK;
}

/* Refuses history that disagrees with the files on disk. */
static int
check_history(PGresult *hist, const struct migration *m, int n)
{
	for (int i = 0; i < PQntuples(hist); i++) {
		int v = atoi(PQgetvalue(hist, i, 0));
		const char *sum = PQgetvalue(hist, i, 1);
		const struct migration *found = NULL;

		for (int j = 0; j < n && found == NULL; j++)
			if (m[j].version == v)
				found = &m[j];
		if (found == NULL) {
			svc_log(SVC_LOG_ERROR,
				"applied migration is missing from the folder",
				SVC_LOG_INT("version", v),
				SVC_LOG_STR("name", PQgetvalue(hist, i, 2)),
				SVC_LOG_END);
			return SVC_EINVAL;
		}
		if (strcmp(found->checksum, sum) != 0) {
			svc_log(SVC_LOG_ERROR,
				"applied migration was edited; add a new "
				"migration instead",
				SVC_LOG_STR("file", found->name), SVC_LOG_END);
			return SVC_EINVAL;
		}
	}
	return SVC_OK;
}

static bool
is_applied(PGresult *hist, int version)
{
	for (int i = 0; i < PQntuples(hist); i++)
		if (atoi(PQgetvalue(hist, i, 0)) == version)
			return true;
	return false;
}

int
svc_migrate_run(PGconn *conn, const char *dir, int *applied)
{
	struct migration *m = NULL;
	PGresult *hist = NULL;
	int n = 0, rc, done = 0;

	if (applied != NULL)
		*applied = 0;
	rc = load_dir(dir, &m, &n);
	if (rc != SVC_OK)
		return rc;
	if (!exec_ok(conn, "SELECT pg_advisory_lock(" LOCK_KEY ")")) {
		free_all(m, n);
		return SVC_EUNAVAIL;
	}
	if (!exec_ok(conn, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			   " version integer PRIMARY KEY,"
			   " name text NOT NULL,"
			   " checksum text NOT NULL,"
			   " applied_at timestamptz NOT NULL DEFAULT now())")) {
		rc = SVC_EUNAVAIL;
		goto out;
	}
	hist = PQexec(conn, "SELECT version, checksum, name "
			    "FROM schema_migrations ORDER BY version");
	if (PQresultStatus(hist) != PGRES_TUPLES_OK) {
		rc = SVC_EUNAVAIL;
		goto out;
	}
	rc = check_history(hist, m, n);
	for (int i = 0; rc == SVC_OK && i < n; i++) {
		if (is_applied(hist, m[i].version))
			continue;
		rc = apply(conn, &m[i]);
		if (rc == SVC_OK)
			done++;
	}
out:
	PQclear(hist);
	exec_ok(conn, "SELECT pg_advisory_unlock(" LOCK_KEY ")");
	free_all(m, n);
	if (applied != NULL)
		*applied = done;
	return rc;
}
