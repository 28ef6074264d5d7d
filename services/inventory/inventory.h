/*
 * inventory.h - the inventory service's resources: stock and reservations,
 * their handlers, their SQL, and the sweeper that expires reservations.
 */
#ifndef INVENTORY_H
#define INVENTORY_H

#include "svc/consumer.h"
#include "svc/db.h"
#include "svc/http.h"

/*
 * A stock row as the API shows it, compact JSON, rendered by the statement
 * that reads it (planned once, with the statement).
 */
#define STOCK_JSON(s)                                                          \
	"(SELECT row_to_json(j) FROM (SELECT " s ".product_id, " s             \
	".on_hand, " s ".reserved, " s ".on_hand - " s ".reserved AS"          \
	" available, " s ".version, rfc3339(" s                                \
	".updated_at) AS updated_at) j)"

/*
 * inventory.low_stock, once per crossing: a change that leaves the row `x`
 * (a CTE with the new stock row) with available at or below the threshold
 * t (a parameter), when `was` (an SQL expression: available before the
 * change) was above it. rid/tp: the request id and traceparent parameters.
 */
#define LOW_STOCK_EVENT(name, x, from, was, t, rid, tp)                        \
	" " name " AS (INSERT INTO outbox"                                     \
	"  (event_type, aggregate_id, data, request_id, traceparent)"          \
	"  SELECT 'inventory.low_stock', " x ".product_id, " STOCK_JSON(       \
		x) "::jsonb || jsonb_build_object('threshold', " t             \
		   "::integer), " rid ", " tp " FROM " from " WHERE " x        \
		   ".on_hand - " x ".reserved <= " t "::integer AND " was      \
		   " > " t "::integer)"

/* LOW_STOCK_THRESHOLD, as a statement parameter (set by configure). */
extern char inventory_low_stock[24];

extern const struct svc_db_stmt stock_statements[];
extern const struct svc_db_stmt reservation_statements[];

int stock_get(struct svc_req *req, struct svc_res *res);
int stock_put(struct svc_req *req, struct svc_res *res);

/* product.created: track the product's stock (on hand 0); product.deleted:
 * forget it, unless something is reserved on it. */
int stock_on_product(struct svc_db *db, const char *event_type, json_t *data,
		     const struct svc_event_meta *meta);

int reservations_create(struct svc_req *req, struct svc_res *res);
int reservations_get(struct svc_req *req, struct svc_res *res);
int reservations_confirm(struct svc_req *req, struct svc_res *res);
int reservations_release(struct svc_req *req, struct svc_res *res);

/*
 * order.created: confirm the order's reservation; order.cancelled:
 * release it (reason "cancelled"). Inside the consumer's transaction.
 */
int reservations_on_order(struct svc_db *db, const char *event_type,
			  json_t *data, const struct svc_event_meta *meta);

/*
 * Inside the caller's transaction: locks reservation id and confirms it
 * when pending and not expired (a pending one past its expiry is released
 * as "expired" instead; a released or confirmed one is left alone).
 * status gets what it was before ("" when there is no such reservation),
 * *expired whether it was released for expiry now.
 */
int reservation_confirm_tx(struct svc_db *db, const char *id,
			   const char *request_id, const char *traceparent,
			   char status[16], bool *expired);

/*
 * Inside the caller's transaction: locks reservation id and, unless it is
 * released already, releases it for `reason`. status gets what it was
 * before ("" when there is no such reservation).
 */
int reservation_release_tx(struct svc_db *db, const char *id,
			   const char *reason, const char *request_id,
			   const char *traceparent, char status[16]);

/* The path parameter `name` as a UUID, or NULL after a 404 for `what`. */
const char *inventory_path_uuid(struct svc_req *req, struct svc_res *res,
				const char *name, const char *what);

/*
 * The sweeper: a thread that releases pending reservations past their
 * expiry every interval_ms. Start once after the database is set up.
 */
int sweeper_start(long long interval_ms);
void sweeper_stop(void);

/* Releases every expired pending reservation now; returns how many, or < 0. */
int sweeper_run_once(struct svc_db *db);

#endif
