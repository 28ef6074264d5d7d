/*
 * reservations.c - reserving stock for an order, confirming, releasing,
 * and the sweeper that releases reservations nobody confirmed in time.
 *
 * A reservation is all or nothing and idempotent on order_id. Stock rows
 * are always locked in product-id order (SELECT ... ORDER BY product_id
 * FOR UPDATE) before they change, so two reservations over the same
 * products queue instead of deadlocking; the CHECK constraints on stock
 * are the last word on overselling. Every change writes its events to the
 * outbox in the same transaction.
 */
#include "inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/ticker.h"
#include "svc/util.h"

#define MAX_ITEMS     100
#define MAX_QUANTITY  1000000
#define DEFAULT_TTL_S 900 /* 15 minutes to confirm */
#define MAX_TTL_S     86400
#define SWEEP_BATCH   100 /* keep in step with res_expired's LIMIT */

/* A reservation as the API shows it. */
#define RESERVATION_JSON(r)                                                    \
	"(SELECT row_to_json(j) FROM (SELECT " r ".id, " r ".order_id, " r     \
	".status, (SELECT coalesce(json_agg(row_to_json(x)"                    \
	" ORDER BY x.product_id), '[]') FROM (SELECT i.product_id,"            \
	" i.quantity FROM reservation_items i WHERE i.reservation_id = " r     \
	".id) x) AS items, rfc3339(" r ".expires_at) AS expires_at) j)"

/* Its items as event data: [{"product_id","quantity"}...], by product. */
#define ITEMS_JSONB(id)                                                        \
	"(SELECT coalesce(jsonb_agg(jsonb_build_object('product_id',"          \
	" i.product_id, 'quantity', i.quantity) ORDER BY i.product_id), '[]')" \
	" FROM reservation_items i WHERE i.reservation_id = " id ")"

/*
 * One stock_changed event per row of the CTE `u`; rid and tp are the
 * parameters holding the request id and the traceparent ("$3", "$4").
 */
#define STOCK_EVENTS(rid, tp)                                                  \
	" e1 AS (INSERT INTO outbox"                                           \
	"  (event_type, aggregate_id, data, request_id, traceparent)"          \
	"  SELECT 'inventory.stock_changed', u.product_id, " STOCK_JSON(       \
		"u") "::jsonb, " rid ", " tp " FROM u)"

/* clang-format off */
const struct svc_db_stmt reservation_statements[] = {
	{ "res_get",
	  "SELECT " RESERVATION_JSON("r") "::text FROM reservations r"
	  " WHERE r.id = $1",
	  SVC_DB_IDEMPOTENT },
	{ "res_by_order",
	  "SELECT " RESERVATION_JSON("r") "::text, r.id FROM reservations r"
	  " WHERE r.order_id = $1",
	  0 },
	/* Locks the stock rows of the items, in a fixed order. */
	{ "res_lock_stock",
	  "SELECT product_id, on_hand - reserved FROM stock"
	  " WHERE product_id = ANY ($1::uuid[]) ORDER BY product_id FOR UPDATE",
	  0 },
	{ "res_lock",
	  "SELECT status, expires_at < clock_timestamp() FROM reservations"
	  " WHERE id = $1 FOR UPDATE",
	  0 },
	{ "res_lock_items_stock",
	  "SELECT 1 FROM stock WHERE product_id IN (SELECT product_id"
	  " FROM reservation_items WHERE reservation_id = $1)"
	  " ORDER BY product_id FOR UPDATE",
	  0 },
	/* $1 order, $2 products, $3/$4 request id/traceparent, $5 quantities,
	 * $6 ttl seconds, $7 the low-stock threshold */
	{ "res_create",
	  "WITH v AS (SELECT * FROM unnest($2::uuid[], $5::integer[]) AS v(p, q)),"
	  " u AS (UPDATE stock s SET reserved = s.reserved + v.q,"
	  "  version = s.version + 1, updated_at = clock_timestamp()"
	  "  FROM v WHERE s.product_id = v.p RETURNING s.*),"
	  " r AS (INSERT INTO reservations (order_id, expires_at)"
	  "  VALUES ($1, clock_timestamp() + make_interval(secs => $6))"
	  "  RETURNING *),"
	  " i AS (INSERT INTO reservation_items (reservation_id, product_id,"
	  "  quantity) SELECT r.id, v.p, v.q FROM r, v),"
	  STOCK_EVENTS("$3", "$4") ","
	  LOW_STOCK_EVENT("e3", "u", "u JOIN v ON v.p = u.product_id",
			  "u.on_hand - u.reserved + v.q", "$7", "$3", "$4") ","
	  " e2 AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'inventory.reserved', r.id, jsonb_build_object("
	  "   'reservation_id', r.id, 'order_id', r.order_id,"
	  "   'items', (SELECT jsonb_agg(jsonb_build_object('product_id', v.p,"
	  "    'quantity', v.q)) FROM v),"
	  "   'expires_at', rfc3339(r.expires_at)), $3, $4 FROM r)"
	  " SELECT r.id FROM r",
	  0 },
	/* $1 reservation, $2/$3 request id/traceparent */
	{ "res_confirm",
	  "WITH u AS (UPDATE stock s SET on_hand = s.on_hand - i.quantity,"
	  "  reserved = s.reserved - i.quantity, version = s.version + 1,"
	  "  updated_at = clock_timestamp() FROM reservation_items i"
	  "  WHERE i.reservation_id = $1 AND s.product_id = i.product_id"
	  "  RETURNING s.*),"
	  " r AS (UPDATE reservations SET status = 'confirmed',"
	  "  updated_at = clock_timestamp() WHERE id = $1 RETURNING *),"
	  STOCK_EVENTS("$2", "$3") ","
	  " e2 AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'inventory.confirmed', r.id, jsonb_build_object("
	  "   'reservation_id', r.id, 'order_id', r.order_id,"
	  "   'items', " ITEMS_JSONB("r.id") "), $2, $3 FROM r)"
	  " SELECT count(*) FROM r",
	  0 },
	/* $1 reservation, $2 its current status, $3/$4 request id/traceparent,
	 * $5 reason. A pending one frees `reserved`; a confirmed one returns
	 * its quantity to `on_hand`. */
	{ "res_release",
	  "WITH u AS (UPDATE stock s SET"
	  "  reserved = s.reserved - CASE WHEN $2 = 'pending'"
	  "   THEN i.quantity ELSE 0 END,"
	  "  on_hand = s.on_hand + CASE WHEN $2 = 'confirmed'"
	  "   THEN i.quantity ELSE 0 END,"
	  "  version = s.version + 1, updated_at = clock_timestamp()"
	  "  FROM reservation_items i"
	  "  WHERE i.reservation_id = $1 AND s.product_id = i.product_id"
	  "  RETURNING s.*),"
	  " r AS (UPDATE reservations SET status = 'released', reason = $5,"
	  "  updated_at = clock_timestamp() WHERE id = $1 RETURNING *),"
	  STOCK_EVENTS("$3", "$4") ","
	  " e2 AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'inventory.released', r.id, jsonb_build_object("
	  "   'reservation_id', r.id, 'order_id', r.order_id, 'reason', $5,"
	  "   'previous_status', $2,"
	  "   'items', " ITEMS_JSONB("r.id") "), $3, $4 FROM r)"
	  " SELECT count(*) FROM r",
	  0 },
	{ "res_expired",
	  "SELECT id FROM reservations WHERE status = 'pending'"
	  " AND expires_at < clock_timestamp() ORDER BY expires_at"
	  " LIMIT 100 FOR UPDATE SKIP LOCKED",
	  0 },
	{ NULL, NULL, 0 },
};
/* clang-format on */

/* --- validation --- */

/* Reads and checks the body; items come back sorted by product id. */
static bool
read_request(struct svc_req *req, struct svc_res *res, const char **order_id,
	     struct svc_line *items, int *n, long long *ttl)
{
	json_t *body = svc_req_json(req);

	if (svc_json_string(res, body, "order_id", 36, 36, true, order_id,
			    NULL) &&
	    !svc_uuid_valid(*order_id))
		svc_res_field_error(res, "order_id", "must be a UUID");
	svc_json_integer(res, body, "ttl_seconds", 1, MAX_TTL_S, false, ttl,
			 NULL);
	if (*ttl == 0)
		*ttl = DEFAULT_TTL_S;
	return svc_json_lines(res, body, "items", MAX_ITEMS, MAX_QUANTITY,
			      items, n) &&
	       svc_res_field_errors(res) == 0;
}

/* "{a,b,c}" and "{1,2,3}" array literals of the items. */
static void
arrays(struct svc_req *req, const struct svc_line *items, int n, char **ids,
       char **qty)
{
	char *p = svc_req_alloc(req, (size_t)n * (SVC_UUID_LEN + 1) + 3);
	char *q = svc_req_alloc(req, (size_t)n * 21 + 3);
	size_t pl = 0, ql = 0;

	p[pl++] = '{';
	q[ql++] = '{';
	for (int i = 0; i < n; i++) {
		pl += (size_t)sprintf(p + pl, "%s%s", i ? "," : "",
				      items[i].product_id);
		ql += (size_t)sprintf(q + ql, "%s%lld", i ? "," : "",
				      items[i].quantity);
	}
	strcpy(p + pl, "}");
	strcpy(q + ql, "}");
	*ids = p;
	*qty = q;
}

/* --- handlers --- */

static int
answer_row(struct svc_res *res, int status, PGresult *r)
{
	int rc = svc_res_raw(res, status, PQgetvalue(r, 0, 0),
			     (size_t)PQgetlength(r, 0, 0));

	PQclear(r);
	return rc;
}

/* An existing reservation for order_id: answers 200 with it. */
static int
existing(struct svc_db *db, struct svc_res *res, const char *order_id,
	 bool *found)
{
	PGresult *r;
	int rc = svc_db_exec(db, "res_by_order", 1, &order_id, &r);

	*found = false;
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return SVC_OK;
	}
	*found = true;
	return answer_row(res, 200, r);
}

/* Which items the locked stock rows cannot cover; answers 409 if any. */
static int
check_stock(struct svc_res *res, PGresult *locked, const struct svc_line *items,
	    int n)
{
	json_t *short_items = json_array();

	for (int i = 0; i < n; i++) {
		long long available = 0;

		for (int k = 0; k < PQntuples(locked); k++)
			if (strcmp(PQgetvalue(locked, k, 0),
				   items[i].product_id) == 0)
				available = atoll(PQgetvalue(locked, k, 1));
		if (available < items[i].quantity)
			json_array_append_new(
				short_items,
				json_pack("{s:s, s:I, s:I}", "product_id",
					  items[i].product_id, "requested",
					  (json_int_t)items[i].quantity,
					  "available", (json_int_t)available));
	}
	if (json_array_size(short_items) == 0) {
		json_decref(short_items);
		return SVC_OK;
	}
	svc_res_problem_member(res, "items", short_items);
	return svc_res_problem(res, 409, "insufficient_stock",
			       "not enough stock for %zu of %d items",
			       json_array_size(short_items), n);
}

int
reservations_create(struct svc_req *req, struct svc_res *res)
{
	struct svc_line items[MAX_ITEMS];
	const char *order_id, *id;
	struct svc_db *db;
	char *ids, *qty, ttl_s[24];
	long long ttl = 0;
	PGresult *r = NULL;
	bool found;
	int n, rc;

	if (!read_request(req, res, &order_id, items, &n, &ttl))
		return SVC_EVALIDATION;
	db = svc_db_thread();
	if (db == NULL)
		return SVC_ENOMEM;
	arrays(req, items, n, &ids, &qty);
	snprintf(ttl_s, sizeof(ttl_s), "%lld", ttl);

	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	rc = existing(db, res, order_id, &found);
	if (rc != SVC_OK || found)
		goto out;
	rc = svc_db_exec(db, "res_lock_stock", 1, (const char **)&ids, &r);
	if (rc != SVC_OK)
		goto out;
	rc = check_stock(res, r, items, n);
	PQclear(r);
	r = NULL;
	if (rc != SVC_OK)
		goto out;
	const char *params[] = {
		order_id, ids,	 svc_req_id(req),    svc_req_traceparent(req),
		qty,	  ttl_s, inventory_low_stock
	};
	rc = svc_db_exec(db, "res_create", 7, params, &r);
	if (rc == SVC_ECONFLICT) {
		/* The same order_id committed meanwhile: answer with that. */
		svc_db_rollback(db);
		rc = svc_db_begin(db);
		if (rc == SVC_OK)
			rc = existing(db, res, order_id, &found);
		goto out;
	}
	if (rc != SVC_OK)
		goto out;
	id = svc_req_strdup(req, PQgetvalue(r, 0, 0));
	PQclear(r);
	r = NULL;
	rc = svc_db_exec(db, "res_get", 1, &id, &r);
	if (rc != SVC_OK)
		goto out;
	rc = svc_db_commit(db);
	if (rc != SVC_OK)
		goto out;
	svc_res_header(res, "Location",
		       svc_req_printf(req, "/api/v1/reservations/%s", id));
	svc_log(SVC_LOG_INFO, "stock reserved",
		SVC_LOG_STR("reservation_id", id),
		SVC_LOG_STR("order_id", order_id), SVC_LOG_INT("items", n),
		SVC_LOG_END);
	rc = answer_row(res, 201, r);
	r = NULL;
out:
	PQclear(r);
	if (rc != SVC_OK || found)
		svc_db_rollback(db);
	return rc;
}

int
reservations_get(struct svc_req *req, struct svc_res *res)
{
	const char *id = inventory_path_uuid(req, res, "id", "reservation");
	struct svc_db *db = svc_db_thread();
	PGresult *r;
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_exec(db, "res_get", 1, &id, &r);
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return svc_res_problem(res, 404, "not_found",
				       "reservation %s not found", id);
	}
	return answer_row(res, 200, r);
}

/*
 * Releases reservation id (status `status`, locked by the caller's
 * transaction) for `reason`.
 */
static int
release(struct svc_db *db, const char *id, const char *status,
	const char *reason, const char *request_id, const char *traceparent)
{
	const char *params[] = { id, status, request_id, traceparent, reason };
	int rc = svc_db_exec(db, "res_lock_items_stock", 1, &id, NULL);

	if (rc == SVC_OK)
		rc = svc_db_exec(db, "res_release", 5, params, NULL);
	return rc;
}

/*
 * Locks reservation id: its status ("" when there is none), and whether
 * it is past expiry.
 */
static int
lock_row(struct svc_db *db, const char *id, char status[16], bool *expired)
{
	PGresult *r;
	int rc = svc_db_exec(db, "res_lock", 1, &id, &r);

	status[0] = '\0';
	*expired = false;
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) > 0) {
		snprintf(status, 16, "%s", PQgetvalue(r, 0, 0));
		*expired = PQgetvalue(r, 0, 1)[0] == 't';
	}
	PQclear(r);
	return SVC_OK;
}

int
reservation_confirm_tx(struct svc_db *db, const char *id,
		       const char *request_id, const char *traceparent,
		       char status[16], bool *expired)
{
	const char *params[] = { id, request_id, traceparent };
	bool past;
	int rc = lock_row(db, id, status, &past);

	*expired = false;
	if (rc != SVC_OK || strcmp(status, "pending") != 0)
		return rc;
	if (past) {
		/* The sweeper has not got to it yet; it is expired all the
		 * same. */
		*expired = true;
		return release(db, id, status, "expired", request_id,
			       traceparent);
	}
	rc = svc_db_exec(db, "res_lock_items_stock", 1, &id, NULL);
	if (rc == SVC_OK)
		rc = svc_db_exec(db, "res_confirm", 3, params, NULL);
	if (rc == SVC_OK)
		svc_log(SVC_LOG_INFO, "reservation confirmed",
			SVC_LOG_STR("reservation_id", id), SVC_LOG_END);
	return rc;
}

int
reservation_release_tx(struct svc_db *db, const char *id, const char *reason,
		       const char *request_id, const char *traceparent,
		       char status[16])
{
	bool past;
	int rc = lock_row(db, id, status, &past);

	if (rc != SVC_OK || status[0] == '\0' ||
	    strcmp(status, "released") == 0)
		return rc;
	rc = release(db, id, status, reason, request_id, traceparent);
	if (rc == SVC_OK)
		svc_log(SVC_LOG_INFO, "reservation released",
			SVC_LOG_STR("reservation_id", id),
			SVC_LOG_STR("was", status), SVC_LOG_END);
	return rc;
}

/* Commits and answers with the reservation as it is now. */
static int
commit_and_show(struct svc_db *db, struct svc_res *res, const char *id)
{
	PGresult *r;
	int rc = svc_db_exec(db, "res_get", 1, &id, &r);

	if (rc != SVC_OK)
		return rc;
	rc = svc_db_commit(db);
	if (rc != SVC_OK) {
		PQclear(r);
		return rc;
	}
	return answer_row(res, 200, r);
}

static int
not_found(struct svc_res *res, const char *id)
{
	return svc_res_problem(res, 404, "not_found",
			       "reservation %s not found", id);
}

int
reservations_confirm(struct svc_req *req, struct svc_res *res)
{
	const char *id = inventory_path_uuid(req, res, "id", "reservation");
	struct svc_db *db = svc_db_thread();
	char status[16];
	bool expired;
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	rc = reservation_confirm_tx(db, id, svc_req_id(req),
				    svc_req_traceparent(req), status, &expired);
	if (rc != SVC_OK)
		goto fail;
	if (status[0] == '\0') {
		rc = not_found(res, id);
		goto fail;
	}
	if (strcmp(status, "released") == 0) {
		rc = svc_res_problem(res, 409, "reservation_released",
				     "reservation %s was released", id);
		goto fail;
	}
	if (expired) {
		rc = svc_db_commit(db);
		if (rc != SVC_OK)
			goto fail;
		return svc_res_problem(res, 409, "reservation_expired",
				       "reservation %s expired", id);
	}
	rc = commit_and_show(db, res, id);
	if (rc == SVC_OK)
		return rc;
fail:
	svc_db_rollback(db);
	return rc;
}

int
reservations_release(struct svc_req *req, struct svc_res *res)
{
	const char *id = inventory_path_uuid(req, res, "id", "reservation");
	const char *reason = NULL;
	struct svc_db *db = svc_db_thread();
	char status[16];
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (svc_req_json(req) != NULL &&
	    !svc_json_string(res, svc_req_json(req), "reason", 1, 64, false,
			     &reason, NULL))
		return SVC_EVALIDATION;
	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	rc = reservation_release_tx(db, id, reason ? reason : "released",
				    svc_req_id(req), svc_req_traceparent(req),
				    status);
	if (rc != SVC_OK)
		goto fail;
	if (status[0] == '\0') {
		rc = not_found(res, id);
		goto fail;
	}
	rc = commit_and_show(db, res, id);
	if (rc == SVC_OK)
		return rc;
fail:
	svc_db_rollback(db);
	return rc;
}

/* --- events: order.created, order.cancelled --- */

int
reservations_on_order(struct svc_db *db, const char *event_type, json_t *data,
		      const struct svc_event_meta *meta)
{
	const char *id =
		json_string_value(json_object_get(data, "reservation_id"));
	char status[16];
	bool expired;

	if (!svc_uuid_valid(id)) {
		svc_log(SVC_LOG_WARN, "order event without a reservation id",
			SVC_LOG_STR("event_type", event_type), SVC_LOG_END);
		return SVC_EVALIDATION; /* to the dead-letter queue */
	}
	/*
	 * A released reservation stays released: inventory.released
	 * already told orders, which rejects the order.
	 */
	if (strcmp(event_type, "order.created") == 0)
		return reservation_confirm_tx(db, id, meta->request_id,
					      meta->traceparent, status,
					      &expired);
	if (strcmp(event_type, "order.cancelled") == 0)
		return reservation_release_tx(db, id, "cancelled",
					      meta->request_id,
					      meta->traceparent, status);
	return SVC_OK;
}

/* --- the sweeper --- */

int
sweeper_run_once(struct svc_db *db)
{
	PGresult *r = NULL;
	int rc, n = 0;

	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	rc = svc_db_exec(db, "res_expired", 0, NULL, &r);
	for (int i = 0; rc == SVC_OK && i < PQntuples(r); i++) {
		rc = release(db, PQgetvalue(r, i, 0), "pending", "expired",
			     NULL, NULL);
		n++;
	}
	PQclear(r);
	if (rc == SVC_OK)
		rc = svc_db_commit(db);
	if (rc != SVC_OK) {
		svc_db_rollback(db);
		return rc;
	}
	if (n > 0)
		svc_log(SVC_LOG_INFO, "expired reservations released",
			SVC_LOG_INT("count", n), SVC_LOG_END);
	return n;
}

static struct svc_ticker *sweeper;

/* A full batch means more may be waiting: go again at once. */
static void
sweep(void *arg)
{
	struct svc_db *db = svc_db_thread();

	(void)arg;
	while (db != NULL && sweeper_run_once(db) == SWEEP_BATCH)
		;
}

int
sweeper_start(long long interval_ms)
{
	sweeper = svc_ticker_start("reservation sweeper", interval_ms, sweep,
				   NULL);
	return sweeper != NULL ? SVC_OK : SVC_EINTERNAL;
}

void
sweeper_stop(void)
{
	svc_ticker_stop(sweeper);
	sweeper = NULL;
}
