/*
 * test_orders_api.c - placing, reading, listing and cancelling orders
 * across the three real services: totals from products' prices, stock
 * reserved at inventory, Idempotency-Key under concurrency, and the
 * documented 4xx for bad input.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"
#include "orders_fixture.h"
#include "svc/util.h"

/*
 * Units an order took from stock that started at `start`: reserved while
 * its reservation is pending, gone from on_hand once inventory confirmed
 * it on order.created - which may or may not have happened yet.
 */
#define TAKEN(start) (((start)-on_hand) + reserved)

START_TEST(order_flow_totals_and_stock)
{
	char p1[64], p2[64], c[SVC_UUID_LEN + 1], body[512], id[64];
	struct http_resp *r;
	long long on_hand, reserved;

	fixture_product(p1, 1299, "EUR", 10);
	fixture_product(p2, 250, "EUR", 5);
	svc_uuid_v4(c);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":3},{\"product_id\":\"%s\",\"quantity\":2}]}",
		 c, p1, p2);
	r = fixture_order(NULL, NULL, body);
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	ck_assert_str_eq(fixture_str(r->json, "status"), "pending");
	ck_assert_str_eq(fixture_str(r->json, "currency"), "EUR");
	ck_assert_str_eq(fixture_str(r->json, "customer_id"), c);
	ck_assert_int_eq(
		json_integer_value(json_object_get(r->json, "total_cents")),
		3 * 1299 + 2 * 250);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 2);
	{
		json_t *it;
		size_t k;

		json_array_foreach(json_object_get(r->json, "items"), k, it)
		{
			long long q = json_integer_value(
				json_object_get(it, "quantity"));
			long long u = json_integer_value(
				json_object_get(it, "unit_price_cents"));

			ck_assert_int_eq(json_integer_value(json_object_get(
						 it, "line_total_cents")),
					 q * u);
		}
	}
	ck_assert_ptr_nonnull(fixture_str(r->json, "created_at"));
	snprintf(id, sizeof(id), "%s", fixture_str(r->json, "id"));
	http_free(r);

	fixture_stock(p1, &on_hand, &reserved);
	ck_assert_int_eq(TAKEN(10), 3);
	fixture_stock(p2, &on_hand, &reserved);
	ck_assert_int_eq(TAKEN(5), 2);

	r = http_do("GET", url(fixture_orders(), "/api/v1/orders/%s", id), NULL,
		    NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(fixture_str(r->json, "id"), id);
	http_free(r);
	r = http_do("GET",
		    url(fixture_orders(), "/api/v1/orders?customer_id=%s", c),
		    NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 1);
	ck_assert(json_is_null(json_object_get(r->json, "next")));
	http_free(r);
}
END_TEST

START_TEST(bad_orders)
{
	char p[64], c[SVC_UUID_LEN + 1], body[512], other[SVC_UUID_LEN + 1];
	struct http_resp *r;

	fixture_product(p, 100, "EUR", 2);
	svc_uuid_v4(c);
	svc_uuid_v4(other);
	/* invalid fields: 422 */
	r = fixture_order(NULL, NULL, "{\"items\":[]}");
	ck_assert_int_eq(r->status, 422);
	http_free(r);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":0}]}",
		 c, p);
	r = fixture_order(NULL, NULL, body);
	ck_assert_int_eq(r->status, 422);
	http_free(r);
	/* unknown product: 422 */
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":1}]}",
		 c, other);
	r = fixture_order(NULL, NULL, body);
	ck_assert_msg(r->status == 422, "%ld %s", r->status, r->body);
	http_free(r);
	/* not enough stock: 409 listing the short item */
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":3}]}",
		 c, p);
	r = fixture_order(NULL, NULL, body);
	ck_assert_int_eq(r->status, 409);
	ck_assert_str_eq(fixture_str(r->json, "error"), "insufficient_stock");
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 1);
	http_free(r);
	/* not JSON: 415; malformed: 400 */
	{
		const char *h[] = { "Content-Type: text/plain", NULL };

		r = http_do("POST", url(fixture_orders(), "/api/v1/orders"), h,
			    "x");
		ck_assert_int_eq(r->status, 415);
		http_free(r);
	}
	r = fixture_order(NULL, NULL, "{\"customer_id\":");
	ck_assert_int_eq(r->status, 400);
	http_free(r);
	/* listing needs a customer */
	r = http_do("GET", url(fixture_orders(), "/api/v1/orders"), NULL, NULL);
	ck_assert_int_eq(r->status, 400);
	http_free(r);
	r = http_do("GET", url(fixture_orders(), "/api/v1/orders/nope"), NULL,
		    NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
	/* nothing was ordered by any of that */
	r = http_do("GET",
		    url(fixture_orders(), "/api/v1/orders?customer_id=%s", c),
		    NULL, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 0);
	http_free(r);
}
END_TEST

struct same_key {
	pthread_t thread;
	const char *body;
	const char *key;
	long status;
	char id[64];
};

static void *
place(void *arg)
{
	struct same_key *w = arg;
	struct http_resp *r = fixture_order(NULL, w->key, w->body);

	w->status = r->status;
	if (fixture_str(r->json, "id") != NULL)
		snprintf(w->id, sizeof(w->id), "%s",
			 fixture_str(r->json, "id"));
	http_free(r);
	return NULL;
}

START_TEST(idempotency_key_twenty_at_once_is_one_order)
{
	struct same_key w[20];
	char p[64], c[SVC_UUID_LEN + 1], body[512], key[64], other[512];
	long long on_hand, reserved;
	struct http_resp *r;
	int created = 0;

	fixture_product(p, 500, "EUR", 50);
	svc_uuid_v4(c);
	svc_uuid_v4(key);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":2}]}",
		 c, p);
	for (int i = 0; i < 20; i++) {
		w[i].body = body;
		w[i].key = key;
		w[i].id[0] = '\0';
		pthread_create(&w[i].thread, NULL, place, &w[i]);
	}
	for (int i = 0; i < 20; i++) {
		pthread_join(w[i].thread, NULL);
		ck_assert_msg(w[i].status == 201 || w[i].status == 200,
			      "status %ld", w[i].status);
		created += w[i].status == 201;
		ck_assert_str_eq(w[i].id, w[0].id);
	}
	ck_assert_int_ge(created, 1);
	r = http_do("GET",
		    url(fixture_orders(), "/api/v1/orders?customer_id=%s", c),
		    NULL, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 1);
	http_free(r);
	fixture_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(TAKEN(50), 2);

	/* the same key with another body */
	snprintf(other, sizeof(other),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":3}]}",
		 c, p);
	r = fixture_order(NULL, key, other);
	ck_assert_int_eq(r->status, 422);
	ck_assert_str_eq(fixture_str(r->json, "error"),
			 "idempotency_key_reused");
	http_free(r);
	/* and the same body again: a replay */
	r = fixture_order(NULL, key, body);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(fixture_str(r->json, "id"), w[0].id);
	http_free(r);
}
END_TEST

START_TEST(fifty_orders_for_ten_in_stock)
{
	struct same_key w[50];
	char p[64], bodies[50][256];
	long long on_hand, reserved;
	int created = 0, short_stock = 0;

	fixture_product(p, 300, "EUR", 10);
	for (int i = 0; i < 50; i++) {
		char c[SVC_UUID_LEN + 1];

		svc_uuid_v4(c);
		snprintf(bodies[i], sizeof(bodies[i]),
			 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1}]}",
			 c, p);
		w[i].body = bodies[i];
		w[i].key = NULL;
		w[i].id[0] = '\0';
		pthread_create(&w[i].thread, NULL, place, &w[i]);
	}
	for (int i = 0; i < 50; i++) {
		pthread_join(w[i].thread, NULL);
		ck_assert_msg(w[i].status == 201 || w[i].status == 409,
			      "status %ld", w[i].status);
		created += w[i].status == 201;
		short_stock += w[i].status == 409;
	}
	ck_assert_int_eq(created, 10);
	ck_assert_int_eq(short_stock, 40);
	fixture_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(TAKEN(10), 10);
	ck_assert_int_le(on_hand, 10);
}
END_TEST

START_TEST(cancel_releases_the_stock)
{
	char p[64], c[SVC_UUID_LEN + 1], body[512], id[64];
	long long on_hand, reserved;
	struct http_resp *r;

	fixture_product(p, 100, "USD", 4);
	svc_uuid_v4(c);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":4}]}",
		 c, p);
	r = fixture_order(NULL, NULL, body);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, sizeof(id), "%s", fixture_str(r->json, "id"));
	http_free(r);
	fixture_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(TAKEN(4), 4);
	for (int i = 0; i < 2; i++) {
		r = http_do(
			"POST",
			url(fixture_orders(), "/api/v1/orders/%s/cancel", id),
			NULL, NULL);
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(fixture_str(r->json, "status"), "cancelled");
		http_free(r);
	}
	fixture_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 0);
	ck_assert_int_eq(on_hand, 4);
	r = http_do("POST",
		    url(fixture_orders(), "/api/v1/orders/%s/cancel",
			"00000000-0000-4000-8000-000000000000"),
		    NULL, NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
}
END_TEST

Suite *
orders_api_suite(void)
{
	Suite *s = suite_create("orders_api");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, order_flow_totals_and_stock);
	tcase_add_test(tc, bad_orders);
	tcase_add_test(tc, idempotency_key_twenty_at_once_is_one_order);
	tcase_add_test(tc, fifty_orders_for_ten_in_stock);
	tcase_add_test(tc, cancel_releases_the_stock);
	suite_add_tcase(s, tc);
	return s;
}
