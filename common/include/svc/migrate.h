/*
 * svc/migrate.h - schema migrations: migrations/<service>/NNNN_name.sql.
 *
 * Files are applied in version order, each in its own transaction, while
 * holding a PostgreSQL advisory lock so replicas starting together take
 * turns. schema_migrations records version, name and the SHA-256 of each
 * file; a file whose checksum changed after it was applied is refused, as
 * is an applied version whose file is gone, and two files with one version.
 */
#ifndef SVC_MIGRATE_H
#define SVC_MIGRATE_H

#include <libpq-fe.h>

/*
 * Applies pending migrations from dir on conn. *applied (may be NULL) gets
 * the number applied now. Returns 0, SVC_EINVAL (a bad or edited file: the
 * reason is logged), or SVC_EUNAVAIL (database error).
 */
int svc_migrate_run(PGconn *conn, const char *dir, int *applied);

/* Version of the newest file in dir, 0 when there is none, or < 0. */
int svc_migrate_latest(const char *dir);

/* Highest version recorded as applied on conn, 0 when none, or < 0. */
int svc_migrate_current(PGconn *conn);

#endif
