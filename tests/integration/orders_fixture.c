/*
 * orders_fixture.c - shared set-up for the order tests (see the header).
 */
#include "orders_fixture.h"

#include <stdio.h>
#include <string.h>

#include "svc/util.h"

const char *
fixture_orders(void)
{
	return env_or_fail("ORDERS_URL");
}

void
fixture_product(char id[64], long long price, const char *currency,
		long long stock)
{
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	char sku[SVC_UUID_LEN + 1], body[256];
	struct http_resp *r;

	svc_uuid_v4(sku);
	snprintf(
		body, sizeof(body),
		"{\"sku\":\"ORD-%.13s\",\"name\":\"Thing\",\"price_cents\":%lld,"
		"\"currency\":\"%s\"}",
		sku, price, currency);
	r = http_do("POST",
		    url(env_or_fail("PRODUCTS_URL"), "/api/v1/products"), h,
		    body);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, 64, "%s", fixture_str(r->json, "id"));
	http_free(r);
	snprintf(body, sizeof(body), "{\"on_hand\":%lld}", stock);
	r = http_do(
		"PUT",
		url(env_or_fail("INVENTORY_URL"), "/api/v1/inventory/%s", id),
		h, body);
	ck_assert_int_le(r->status, 201);
	http_free(r);
}

struct http_resp *
fixture_order(const char *base, const char *key, const char *body)
{
	char kh[300];
	const char *h[] = { "Content-Type: application/json", kh, NULL };

	if (key != NULL)
		snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
	else
		h[1] = NULL;
	return http_do("POST",
		       url(base ? base : fixture_orders(), "/api/v1/orders"), h,
		       body);
}

void
fixture_stock(const char *product, long long *on_hand, long long *reserved)
{
	struct http_resp *r = http_do("GET",
				      url(env_or_fail("INVENTORY_URL"),
					  "/api/v1/inventory/%s", product),
				      NULL, NULL);

	ck_assert_int_eq(r->status, 200);
	*on_hand = json_integer_value(json_object_get(r->json, "on_hand"));
	*reserved = json_integer_value(json_object_get(r->json, "reserved"));
	http_free(r);
}

const char *
fixture_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}
