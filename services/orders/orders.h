/*
 * orders.h - the orders service's parts: the order resource, the price
 * cache that keeps orders flowing while products is away, and the
 * releaser that returns to inventory the reservations of cancelled orders
 * and of orders that were never stored.
 */
#ifndef ORDERS_H
#define ORDERS_H

#include <stdbool.h>

#include "svc/consumer.h"
#include "svc/db.h"
#include "svc/http.h"
#include "svc/upstream.h"

/* The two dependencies, set up by main.c before serving. */
extern struct svc_upstream *orders_products;
extern struct svc_upstream *orders_inventory;

extern const struct svc_db_stmt order_statements[];

int orders_create(struct svc_req *req, struct svc_res *res);
int orders_get(struct svc_req *req, struct svc_res *res);
int orders_list(struct svc_req *req, struct svc_res *res);
int orders_cancel(struct svc_req *req, struct svc_res *res);

/*
 * inventory.confirmed: a pending order becomes confirmed (order.confirmed);
 * inventory.released for "expired": a pending order becomes rejected
 * (order.rejected). Inside the consumer's transaction.
 */
int orders_on_reservation(struct svc_db *db, const char *event_type,
			  json_t *data, const struct svc_event_meta *meta);

/* --- prices.c --- */

struct price {
	long long cents;
	char currency[4];
};

/* How old a cached price may be and still be used (ms); set at start-up. */
void prices_set_max_staleness(long long ms);

/* Remembers a price just read from products. Thread-safe. */
void prices_put(const char *product_id, const struct price *p);

/*
 * A remembered price no older than the maximum staleness: true and *p
 * filled, with *age_ms its age; false when there is none.
 */
bool prices_get(const char *product_id, struct price *p, long long *age_ms);

/* --- releaser.c --- */

/*
 * Asks inventory to release a reservation now, for reason ("cancelled",
 * "order_failed"). When inventory took it, the pending release (if any)
 * is forgotten; when it did not, the releaser thread tries again later.
 */
int releaser_release(const char *reservation_id, const char *reason,
		     const char *request_id, const char *traceparent);

/*
 * Reservation attempts (migrations/orders/0004): releaser_attempt_begin()
 * writes down, before inventory is asked, the reservation body for
 * order_id; the transaction that stores the order deletes it, and
 * releaser_attempt_clear() does when inventory's answer says nothing is
 * held (409). One left for longer than the grace is given back by the
 * releaser thread: the same body posted again (inventory is idempotent on
 * order_id) names the reservation, which is then released. begin returns
 * SVC_EUNAVAIL when the row cannot be written; clear's result is only
 * logged (a row left behind is given back later, harmlessly).
 */
void releaser_set_grace(long long grace_ms);
int releaser_attempt_begin(struct svc_db *db, const char *order_id,
			   const char *body);
void releaser_attempt_clear(struct svc_db *db, const char *order_id);

/*
 * The thread that retries releases inventory did not take yet and gives
 * back the reservations of orders that were not stored.
 */
int releaser_start(long long interval_ms);
void releaser_stop(void);

#endif
