/*
 * products - the catalogue service: routes and wiring, nothing else.
 *
 * Owns products_db. Admins create, change and delete products; anyone
 * reads them. `available` is a projection of inventory's stock, kept up
 * to date from events, so reads never call another service.
 */
#include "products.h"
#include "svc/app.h"

static const struct svc_route routes[] = {
	{ "POST", "/api/v1/products", products_create,
	  SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "GET", "/api/v1/products", products_list, 0 },
	{ "GET", "/api/v1/products/{id}", products_get, 0 },
	{ "PATCH", "/api/v1/products/{id}", products_update,
	  SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "DELETE", "/api/v1/products/{id}", products_delete, SVC_ROUTE_ADMIN },
	{ 0 },
};

static const char *const stock_events[] = { "inventory.stock_changed", NULL };

static const struct svc_subscription subscriptions[] = {
	{ "products.stock", stock_events, products_on_stock },
	{ 0 },
};

static const struct svc_db_stmt *const statements[] = {
	products_statements,
	NULL,
};

static const struct svc_app app = {
	.name = "products",
	.default_port = 8081,
	.routes = routes,
	.statements = statements,
	.subscriptions = subscriptions,
};

int
main(int argc, char **argv)
{
	return svc_app_main(&app, argc, argv);
}
