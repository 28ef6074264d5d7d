/*
 * releaser.c - gives reservations back to inventory: those of cancelled
 * orders, and those of orders that were never stored.
 *
 * Cancelling an order must work while inventory is down: the cancel
 * commits with a row in pending_releases, and this file's thread retries
 * that row with growing pauses (1 s, 2 s, ... 1 min) until inventory takes
 * the release. Release is idempotent at inventory, so a retry after a
 * lost answer does no harm.
 *
 * Placing an order can leave a reservation nobody uses: inventory made it
 * but its answer was lost (a timeout while inventory was paused or slow),
 * or orders could not store the order. Before asking inventory, orders
 * writes the request down in reservation_attempts; the transaction that
 * stores the order deletes the row. A row older than RESERVATION_GRACE
 * is such an abandoned reservation, or none at all: the thread posts the
 * same request again - inventory is idempotent on order_id, so it names
 * the reservation it made, or makes one - and releases what it names
 * ("order_not_stored"). The grace is a client's chance to repeat an order
 * with its Idempotency-Key and use the reservation; a repeat after the
 * stock was given back is told 409 reservation_expired, as after the
 * reservation's own expiry.
 */
#include "orders.h"

#include <stdio.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/ticker.h"
#include "svc/util.h"

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

/* --- reservations of orders not stored --- */

static long long grace_ms = 60000;

void
releaser_set_grace(long long ms)
{
	grace_ms = ms;
}

int
releaser_attempt_begin(struct svc_db *db, const char *order_id,
		       const char *body)
{
	char grace[24];
	const char *params[] = { order_id, body, grace };

	snprintf(grace, sizeof(grace), "%lld", grace_ms);
	return svc_db_exec(db, "attempt_begin", 3, params, NULL);
}

void
releaser_attempt_clear(struct svc_db *db, const char *order_id)
{
	if (svc_db_exec(db, "attempt_clear", 1, &order_id, NULL) != SVC_OK)
		svc_log(SVC_LOG_INFO,
			"reservation attempt left for the releaser",
			SVC_LOG_STR("order_id", order_id), SVC_LOG_END);
}

/*
 * Whether what inventory holds for order_id is given back: the request
 * posted again names the reservation (200, or 201 when there was none),
 * which is released unless it is released already; a 4xx means nothing
 * is held (short of stock, say). False: try again later.
 */
static bool
give_back(const char *order_id, const char *body)
{
	struct svc_upstream_request call = {
		.method = "POST",
		.path = "/api/v1/reservations",
		.body = body,
		.idempotent = true,
	};
	struct svc_client_response answer;
	int rc = svc_upstream_call(orders_inventory, &call, &answer);
	const char *id = json_string_value(json_object_get(answer.json, "id"));
	const char *status =
		json_string_value(json_object_get(answer.json, "status"));
	bool done;

	if (rc != SVC_OK)
		done = false;
	else if (svc_uuid_valid(id) && status != NULL &&
		 strcmp(status, "pending") == 0)
		done = releaser_release(id, "order_not_stored", NULL, NULL) ==
		       SVC_OK;
	else /* released or confirmed already, or a 4xx: nothing held */
		done = answer.status >= 200 && answer.status < 500;
	if (done)
		svc_log(SVC_LOG_INFO, "abandoned reservation given back",
			SVC_LOG_STR("order_id", order_id),
			SVC_LOG_STR("reservation_id",
				    svc_uuid_valid(id) ? id : "-"),
			SVC_LOG_INT("inventory_status", answer.status),
			SVC_LOG_END);
	svc_client_response_cleanup(&answer);
	return done;
}

/* --- the thread --- */

/* One pass over the releases and abandoned reservations that are due. */
static void
run_due(void *arg)
{
	struct svc_db *db = svc_db_thread();
	PGresult *r;

	(void)arg;
	if (db == NULL)
		return;
	if (svc_db_exec(db, "release_due", 0, NULL, &r) == SVC_OK) {
		for (int i = 0; i < PQntuples(r); i++)
			releaser_release(PQgetvalue(r, i, 0), "cancelled", NULL,
					 NULL);
		PQclear(r);
	}
	if (svc_db_exec(db, "attempts_due", 0, NULL, &r) != SVC_OK)
		return;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *order_id = PQgetvalue(r, i, 0);

		svc_db_exec(db,
			    give_back(order_id, PQgetvalue(r, i, 1))
				    ? "attempt_clear"
				    : "attempt_later",
			    1, &order_id, NULL);
	}
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
