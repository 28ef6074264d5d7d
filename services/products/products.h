/*
 * products.h - the product resource: its handlers and its SQL.
 */
#ifndef PRODUCTS_H
#define PRODUCTS_H

#include "svc/consumer.h"
#include "svc/db.h"
#include "svc/http.h"

extern const struct svc_db_stmt products_statements[];

int products_create(struct svc_req *req, struct svc_res *res);
int products_get(struct svc_req *req, struct svc_res *res);
int products_list(struct svc_req *req, struct svc_res *res);
int products_update(struct svc_req *req, struct svc_res *res);
int products_delete(struct svc_req *req, struct svc_res *res);

/* inventory.stock_changed: available = (available count > 0); no new
 * version, no event. Inside the consumer's transaction. */
int products_on_stock(struct svc_db *db, const char *event_type, json_t *data,
		      const struct svc_event_meta *meta);

#endif
