/*
 * stock.c - the stock resource: on hand, reserved and available per product.
 *
 * Stock rows are keyed by product id. Admins set `on_hand` with PUT; the
 * reservation flow (reservations.c) moves `reserved`. The database keeps
 * 0 <= reserved <= on_hand, so a PUT below what is reserved is a 409 here
 * and can never succeed by accident. The catalogue's events create a row
 * (on hand 0) for every new product and delete it with the product -
 * unless something is reserved on it: pending reservations still point
 * at it, so it stays until an admin sets it to 0 and it is cleaned up by
 * hand (a row without a product harms nothing).
 */
#include "inventory.h"

#include <stdio.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/util.h"

#define MAX_ON_HAND 1000000000LL

char inventory_low_stock[24] = "5";

/* clang-format off */
const struct svc_db_stmt stock_statements[] = {
	{ "stock_get",
	  "SELECT " STOCK_JSON("s") "::text, s.version, s.reserved"
	  " FROM stock s WHERE s.product_id = $1",
	  SVC_DB_IDEMPOTENT },
	/* Available now, locking the row for the put that follows. */
	{ "stock_lock",
	  "SELECT on_hand - reserved FROM stock WHERE product_id = $1"
	  " FOR UPDATE",
	  0 },
	/* $1 product, $2 on hand, $3/$4 request id/traceparent, $5 available
	 * before (NULL: no row), $6 the low-stock threshold */
	{ "stock_put",
	  "WITH s AS (INSERT INTO stock AS t (product_id, on_hand)"
	  "  VALUES ($1, $2)"
	  "  ON CONFLICT (product_id) DO UPDATE SET on_hand = EXCLUDED.on_hand,"
	  "   version = t.version + 1, updated_at = clock_timestamp()"
	  "  WHERE t.reserved <= EXCLUDED.on_hand"
	  "  RETURNING t.*, (xmax = 0) AS created),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'inventory.stock_changed', s.product_id,"
	  "   " STOCK_JSON("s") "::jsonb, $3, $4 FROM s),"
	  LOW_STOCK_EVENT("e2", "s", "s", "$5::integer", "$6", "$3", "$4")
	  " SELECT " STOCK_JSON("s") "::text, s.created, s.version FROM s",
	  0 },
	/* product.created: a row with nothing on hand, unless one exists */
	{ "stock_track",
	  "INSERT INTO stock (product_id) VALUES ($1) ON CONFLICT DO NOTHING",
	  0 },
	/* product.deleted: only a row nothing is reserved on */
	{ "stock_untrack",
	  "DELETE FROM stock WHERE product_id = $1 AND reserved = 0", 0 },
	{ NULL, NULL, 0 },
};
/* clang-format on */

/* The {product_id} path parameter; a malformed one names nothing: 404. */
const char *
inventory_path_uuid(struct svc_req *req, struct svc_res *res, const char *name,
		    const char *what)
{
	const char *id = svc_req_param(req, name);

	if (!svc_uuid_valid(id)) {
		svc_res_problem(res, 404, "not_found", "%s %.64s not found",
				what, id);
		return NULL;
	}
	return id;
}

int
stock_get(struct svc_req *req, struct svc_res *res)
{
	const char *id =
		inventory_path_uuid(req, res, "product_id", "stock for");
	struct svc_db *db = svc_db_thread();
	PGresult *r;
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_exec(db, "stock_get", 1, &id, &r);
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return svc_res_problem(res, 404, "not_found",
				       "no stock for product %s", id);
	}
	svc_res_header(res, "ETag",
		       svc_req_printf(req, "\"%s\"", PQgetvalue(r, 0, 1)));
	rc = svc_res_raw(res, 200, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return rc;
}

int
stock_put(struct svc_req *req, struct svc_res *res)
{
	const char *id =
		inventory_path_uuid(req, res, "product_id", "stock for");
	struct svc_db *db = svc_db_thread();
	const char *params[6];
	long long on_hand;
	char n[24], before[24];
	PGresult *r = NULL;
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (!svc_json_integer(res, svc_req_json(req), "on_hand", 0, MAX_ON_HAND,
			      true, &on_hand, NULL))
		return SVC_EVALIDATION;
	if (db == NULL)
		return SVC_ENOMEM;
	snprintf(n, sizeof(n), "%lld", on_hand);
	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	/* What was available decides whether this put crosses the
	 * low-stock threshold; the lock keeps it true until the put. */
	rc = svc_db_exec(db, "stock_lock", 1, &id, &r);
	if (rc != SVC_OK)
		goto out;
	snprintf(before, sizeof(before), "%s",
		 PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	params[0] = id;
	params[1] = n;
	params[2] = svc_req_id(req);
	params[3] = svc_req_traceparent(req);
	params[4] = before[0] != '\0' ? before : NULL;
	params[5] = inventory_low_stock;
	rc = svc_db_exec(db, "stock_put", 6, params, &r);
	if (rc != SVC_OK) {
		r = NULL;
		goto out;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		r = NULL;
		rc = svc_db_exec(db, "stock_get", 1, &id, &r);
		if (rc != SVC_OK) {
			r = NULL;
			goto out;
		}
		rc = svc_res_problem(
			res, 409, "below_reserved",
			"on_hand %lld is below the %s units "
			"reserved for product %s",
			on_hand, PQntuples(r) ? PQgetvalue(r, 0, 2) : "?", id);
		goto out;
	}
	rc = svc_db_commit(db);
	if (rc != SVC_OK)
		goto out;
	svc_res_header(res, "ETag",
		       svc_req_printf(req, "\"%s\"", PQgetvalue(r, 0, 2)));
	rc = svc_res_raw(res, PQgetvalue(r, 0, 1)[0] == 't' ? 201 : 200,
			 PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	svc_log(SVC_LOG_INFO, "stock set", SVC_LOG_STR("product_id", id),
		SVC_LOG_INT("on_hand", on_hand), SVC_LOG_END);
	PQclear(r);
	return rc;
out:
	PQclear(r);
	svc_db_rollback(db);
	return rc;
}

/* --- events: product.created, product.deleted --- */

int
stock_on_product(struct svc_db *db, const char *event_type, json_t *data,
		 const struct svc_event_meta *meta)
{
	const char *id = json_string_value(json_object_get(data, "id"));
	const char *stmt = strcmp(event_type, "product.created") == 0
				   ? "stock_track"
				   : "stock_untrack";

	(void)meta;
	if (strcmp(event_type, "product.created") != 0 &&
	    strcmp(event_type, "product.deleted") != 0)
		return SVC_OK;
	if (!svc_uuid_valid(id)) {
		svc_log(SVC_LOG_WARN, "product event without a product id",
			SVC_LOG_STR("event_type", event_type), SVC_LOG_END);
		return SVC_EVALIDATION; /* to the dead-letter queue */
	}
	return svc_db_exec(db, stmt, 1, &id, NULL);
}
