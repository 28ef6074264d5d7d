/*
 * releaser.c - gives the reservations of cancelled orders back to
 * inventory, now if it answers, later if it does not.
 *
 * Cancelling an order must work while inventory is down: the cancel
 * commits with a row in pending_releases, and this file's thread retries
 * that row with growing pauses (1 s, 2 s, ... 1 min) until inventory takes
 * the release. Release is idempotent at inventory, so a retry after a
 * lost answer does no harm.
 */
#include "orders.h"

#include <stdio.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/ticker.h"

int
releaser_release(const char *reservation_id, const char *reason,
		 const char *request_id, const char *traceparent)
{
	char path[128], body[96];
	struct svc_upstream_request call = {
		.method = "POST",
		.path = path,
		.body = body,
		.idempotent = true,
		.request_id = request_id,
		.traceparent = traceparent,
	};
	struct svc_client_response answer;
	struct svc_db *db = svc_db_thread();
	bool done;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/reservations/%s/release",
		 reservation_id);
	snprintf(body, sizeof(body), "{\"reason\":\"%s\"}", reason);
	rc = svc_upstream_call(orders_inventory, &call, &answer);
	/* 404: inventory has no such reservation, nothing left to give back. */
	done = rc == SVC_OK && (answer.status == 200 || answer.status == 404);
	svc_client_response_cleanup(&answer);
	if (db == NULL)
		return SVC_ENOMEM;
	if (done) {
		svc_db_exec(db, "release_done", 1, &reservation_id, NULL);
		svc_log(SVC_LOG_INFO, "reservation released",
			SVC_LOG_STR("reservation_id", reservation_id),
			SVC_LOG_STR("reason", reason), SVC_LOG_END);
		return SVC_OK;
	}
	svc_db_exec(db, "release_later", 1, &reservation_id, NULL);
	svc_log(SVC_LOG_WARN, "release deferred: inventory did not take it",
		SVC_LOG_STR("reservation_id", reservation_id),
		SVC_LOG_STR("error", svc_strerror(rc)), SVC_LOG_END);
	return rc != SVC_OK ? rc : SVC_EUNAVAIL;
}

/* One pass over the releases that are due. */
static void
run_due(void *arg)
{
	struct svc_db *db = svc_db_thread();
	PGresult *r;

	(void)arg;
	if (db == NULL || svc_db_exec(db, "release_due", 0, NULL, &r) != SVC_OK)
		return;
	for (int i = 0; i < PQntuples(r); i++)
		releaser_release(PQgetvalue(r, i, 0), "cancelled", NULL, NULL);
	PQclear(r);
}

static struct svc_ticker *releaser;

int
releaser_start(long long interval_ms)
{
	releaser =
		svc_ticker_start("release retrier", interval_ms, run_due, NULL);
	return releaser != NULL ? SVC_OK : SVC_EINTERNAL;
}

void
releaser_stop(void)
{
	svc_ticker_stop(releaser);
	releaser = NULL;
}
