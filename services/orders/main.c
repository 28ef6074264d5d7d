/*
 * orders - placing and cancelling orders: routes, dependencies, wiring.
 *
 * Owns orders_db. Reads prices from products and reserves stock at
 * inventory, both through libsvc's resilient client (circuit breaker,
 * retries with jittered backoff, deadlines), with cached prices as the
 * fallback when products is away. An order is placed pending and becomes
 * confirmed or rejected from inventory's events.
 */
#include "orders.h"
#include "svc/app.h"
#include "svc/client.h"
#include "svc/config.h"
#include "svc/err.h"
#include "svc/health.h"

#include <string.h>

static const struct svc_route routes[] = {
	{ "POST", "/api/v1/orders", orders_create, SVC_ROUTE_BODY },
	{ "GET", "/api/v1/orders", orders_list, 0 },
	{ "GET", "/api/v1/orders/{id}", orders_get, 0 },
	{ "POST", "/api/v1/orders/{id}/cancel", orders_cancel, 0 },
	{ 0 },
};

static const char *const reservation_events[] = { "inventory.confirmed",
						  "inventory.released", NULL };

static const struct svc_subscription subscriptions[] = {
	{ "orders.inventory", reservation_events, orders_on_reservation },
	{ 0 },
};

static const struct svc_db_stmt *const statements[] = {
	order_statements,
	NULL,
};

static struct {
	struct svc_upstream_config products, inventory;
	struct svc_client_config client;
	long long release_interval_ms;
} cfg;

static void
configure(void)
{
	svc_upstream_config_read("products", "PRODUCTS_URL",
				 "http://127.0.0.1:8081", &cfg.products);
	svc_upstream_config_read("inventory", "INVENTORY_URL",
				 "http://127.0.0.1:8082", &cfg.inventory);
	svc_client_config_read(&cfg.client);
	prices_set_max_staleness(svc_config_duration_ms("PRICE_MAX_STALENESS",
							"5m", 0, 86400000));
	cfg.release_interval_ms = svc_config_duration_ms(
		"RELEASE_RETRY_INTERVAL", "2s", 10, 3600000);
	releaser_set_grace(
		svc_config_duration_ms("RESERVATION_GRACE", "1m", 10, 3600000));
}

/* A dependency whose circuit is open degrades the service, no more. */
static enum svc_health_status
check_upstream(json_t *detail, void *arg)
{
	enum svc_breaker_state st = svc_upstream_state(arg);

	json_object_set_new(detail, "circuit",
			    json_string(svc_breaker_state_name(st)));
	return st == SVC_BREAKER_OPEN ? SVC_HEALTH_DEGRADED : SVC_HEALTH_UP;
}

static int
init(void)
{
	const char *secret = svc_config_get("JWT_SECRET");

	cfg.client.service_name = svc_config_str("SERVICE_NAME", "orders");
	cfg.client.jwt_key = (const unsigned char *)secret;
	cfg.client.jwt_key_len = strlen(secret);
	if (svc_client_init(&cfg.client) != SVC_OK)
		return SVC_EINTERNAL;
	orders_products = svc_upstream_new(&cfg.products);
	orders_inventory = svc_upstream_new(&cfg.inventory);
	if (orders_products == NULL || orders_inventory == NULL)
		return SVC_ENOMEM;
	svc_health_register("products", check_upstream, orders_products, false);
	svc_health_register("inventory", check_upstream, orders_inventory,
			    false);
	return releaser_start(cfg.release_interval_ms);
}

static void
cleanup(void)
{
	releaser_stop();
	svc_upstream_free(orders_products);
	svc_upstream_free(orders_inventory);
	svc_client_cleanup_all();
}

static const struct svc_app app = {
	.name = "orders",
	.default_port = 8083,
	.routes = routes,
	.statements = statements,
	.subscriptions = subscriptions,
	.configure = configure,
	.init = init,
	.cleanup = cleanup,
};

int
main(int argc, char **argv)
{
	return svc_app_main(&app, argc, argv);
}
