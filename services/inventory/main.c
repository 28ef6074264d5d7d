/*
 * inventory - stock per product and reservations against it: routes and
 * wiring, nothing else.
 *
 * Owns inventory_db. Admins set stock; other services (orders) reserve,
 * confirm and release it with service tokens; anyone reads it. A sweeper
 * thread releases reservations that were not confirmed before expiry.
 * Events keep it in step: a stock row per product from the catalogue, and
 * an order's reservation confirmed or released when the order is placed
 * or cancelled.
 */
#include <stdio.h>

#include "inventory.h"
#include "svc/app.h"
#include "svc/config.h"
#include "svc/err.h"

static const struct svc_route routes[] = {
	{ "GET", "/api/v1/inventory/{product_id}", stock_get, 0 },
	{ "PUT", "/api/v1/inventory/{product_id}", stock_put,
	  SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "POST", "/api/v1/reservations", reservations_create,
	  SVC_ROUTE_SERVICE | SVC_ROUTE_BODY },
	{ "GET", "/api/v1/reservations/{id}", reservations_get,
	  SVC_ROUTE_SERVICE },
	{ "POST", "/api/v1/reservations/{id}/confirm", reservations_confirm,
	  SVC_ROUTE_SERVICE },
	{ "POST", "/api/v1/reservations/{id}/release", reservations_release,
	  SVC_ROUTE_SERVICE },
	{ 0 },
};

static const char *const product_events[] = { "product.created",
					      "product.deleted", NULL };
static const char *const order_events[] = { "order.created", "order.cancelled",
					    NULL };

static const struct svc_subscription subscriptions[] = {
	{ "inventory.products", product_events, stock_on_product },
	{ "inventory.orders", order_events, reservations_on_order },
	{ 0 },
};

static const struct svc_db_stmt *const statements[] = {
	stock_statements,
	reservation_statements,
	NULL,
};

static long long sweep_interval_ms;

static void
configure(void)
{
	sweep_interval_ms = svc_config_duration_ms("RESERVATION_SWEEP_INTERVAL",
						   "1s", 10, 3600000);
	snprintf(inventory_low_stock, sizeof(inventory_low_stock), "%lld",
		 svc_config_int("LOW_STOCK_THRESHOLD", 5, 0, 1000000000));
}

static int
init(void)
{
	return sweeper_start(sweep_interval_ms);
}

static const struct svc_app app = {
	.name = "inventory",
	.default_port = 8082,
	.routes = routes,
	.statements = statements,
	.subscriptions = subscriptions,
	.configure = configure,
	.init = init,
	.cleanup = sweeper_stop,
};

int
main(int argc, char **argv)
{
	return svc_app_main(&app, argc, argv);
}
