/*
 * inventory.h - the inventory service's resources: stock and reservations,
 * their handlers, their SQL, and the sweeper that expires reservations.
 */
#ifndef INVENTORY_H
#define INVENTORY_H

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

extern const struct svc_db_stmt stock_statements[];
extern const struct svc_db_stmt reservation_statements[];

int stock_get(struct svc_req *req, struct svc_res *res);
int stock_put(struct svc_req *req, struct svc_res *res);

int reservations_create(struct svc_req *req, struct svc_res *res);
int reservations_get(struct svc_req *req, struct svc_res *res);
int reservations_confirm(struct svc_req *req, struct svc_res *res);
int reservations_release(struct svc_req *req, struct svc_res *res);

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
