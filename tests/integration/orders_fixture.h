/*
 * orders_fixture.h - what the order tests share: a product with stock,
 * placing an order, reading stock, all through the real services' APIs.
 */
#ifndef ORDERS_FIXTURE_H
#define ORDERS_FIXTURE_H

#include "integ.h"

/* $ORDERS_URL. */
const char *fixture_orders(void);

/* Creates a product (fresh sku) priced price/currency with `stock` on hand;
 * its id goes to id (64 bytes). */
void fixture_product(char id[64], long long price, const char *currency,
		     long long stock);

/* POST /api/v1/orders at base (NULL: $ORDERS_URL), with an optional
 * Idempotency-Key. */
struct http_resp *fixture_order(const char *base, const char *key,
				const char *body);

/* A product's stock at inventory (asserts it exists). */
void fixture_stock(const char *product, long long *on_hand,
		   long long *reserved);

/* obj[key] as a string, or NULL. */
const char *fixture_str(json_t *obj, const char *key);

#endif
