/*
 * fuzz_validate.c - libFuzzer target for the JSON request validation of
 * every resource: the real handlers of products (create, patch), inventory
 * (stock put, reservations) and orders (create, cancel) behind their real
 * route flags, fed a request built from the input (see fuzz.h) through
 * svc_http_handle(), with an admin bearer token unless the input sends
 * its own. There is no database: db_stub.c fails every query, so a
 * handler runs its body checks and read_* validation and stops at its
 * first query (503). An order without an Idempotency-Key needs no query
 * before it asks products for prices: orders' upstreams are set up as the
 * service's main.c does, but with a breaker that one refused call at
 * start-up opens for good (its clock stands still), so those orders stop
 * there, without network traffic. What follows is not fuzzed here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fuzz.h"
#include "inventory/inventory.h"
#include "orders/orders.h"
#include "products/products.h"
#include "svc/err.h"
#include "svc/jwt.h"

static const unsigned char key[] = "fuzz-validate-key-0123456789abcdefghij";

static const struct svc_route routes[] = {
	{ "POST", "/api/v1/products", products_create,
	  SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "PATCH", "/api/v1/products/{id}", products_update,
	  SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "PUT", "/api/v1/inventory/{product_id}", stock_put,
	  SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "POST", "/api/v1/reservations", reservations_create,
	  SVC_ROUTE_SERVICE | SVC_ROUTE_BODY },
	{ "POST", "/api/v1/orders", orders_create, SVC_ROUTE_BODY },
	{ "POST", "/api/v1/orders/{id}/cancel", orders_cancel, 0 },
	{ 0 },
};

static struct svc_http *http;

static long long
frozen_ms(void *arg)
{
	(void)arg;
	return 1;
}

/* An upstream to a closed port whose breaker is open from now on. */
static struct svc_upstream *
dead_upstream(const char *name)
{
	const struct svc_upstream_config cfg = {
		.name = name,
		.base_url = "http://127.0.0.1:1",
		.breaker = { .target = name,
			     .failure_threshold = 1,
			     .recovery_ms = 1000000,
			     .now_ms = frozen_ms },
		.retry = { .max_attempts = 1 },
		.deadline_ms = 1000,
		.attempt_timeout_ms = 1000,
	};
	const struct svc_upstream_request req = { .path = "/" };
	struct svc_client_response out;
	struct svc_upstream *u = svc_upstream_new(&cfg);

	if (u == NULL || svc_upstream_call(u, &req, &out) == SVC_OK ||
	    svc_upstream_state(u) != SVC_BREAKER_OPEN)
		abort();
	svc_client_response_cleanup(&out);
	return u;
}
static char bearer[600];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (http == NULL) {
		char token[512];

		http = fuzz_http(routes, key, sizeof(key) - 1);
		if (svc_jwt_mint("fuzz-admin", "admin", time(NULL), 86400 * 365,
				 key, sizeof(key) - 1, token,
				 sizeof(token)) != 0)
			abort();
		snprintf(bearer, sizeof(bearer), "Bearer %s", token);
		orders_products = dead_upstream("products");
		orders_inventory = dead_upstream("inventory");
	}
	return fuzz_run(http, fuzz_req(data, size, bearer));
}
