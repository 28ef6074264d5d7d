/*
 * test_inventory_api.c - the inventory API over real HTTP against the real
 * binary and PostgreSQL: stock, reservations and their invariants under
 * concurrency (never oversell, one reservation per order), confirm,
 * release, expiry by the sweeper, and low-stock events once per crossing.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ.h"
#include "svc/util.h"

static const char *const json_ct = "Content-Type: application/json";

static const char *
base(void)
{
	return env_or_fail("INVENTORY_URL");
}

static void
new_id(char out[SVC_UUID_LEN + 1])
{
	svc_uuid_v4(out);
}

static long
put_stock(const char *product, long long on_hand)
{
	const char *h[] = { json_ct, auth_header("admin"), NULL };
	char body[64];
	struct http_resp *r;
	long st;

	snprintf(body, sizeof(body), "{\"on_hand\":%lld}", on_hand);
	r = http_do("PUT", url(base(), "/api/v1/inventory/%s", product), h,
		    body);
	st = r->status;
	http_free(r);
	return st;
}

/* GET stock: on_hand and reserved (asserts 200). */
static void
get_stock(const char *product, long long *on_hand, long long *reserved)
{
	struct http_resp *r =
		http_do("GET", url(base(), "/api/v1/inventory/%s", product),
			NULL, NULL);

	ck_assert_int_eq(r->status, 200);
	*on_hand = json_integer_value(json_object_get(r->json, "on_hand"));
	*reserved = json_integer_value(json_object_get(r->json, "reserved"));
	ck_assert_int_eq(
		json_integer_value(json_object_get(r->json, "available")),
		*on_hand - *reserved);
	http_free(r);
}

static struct http_resp *
reserve(const char *order, const char *product, int qty, int ttl)
{
	const char *h[] = { json_ct, auth_header("service"), NULL };
	char body[256];

	if (ttl > 0)
		snprintf(body, sizeof(body),
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":%d}],\"ttl_seconds\":%d}",
			 order, product, qty, ttl);
	else
		snprintf(body, sizeof(body),
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":%d}]}",
			 order, product, qty);
	return http_do("POST", url(base(), "/api/v1/reservations"), h, body);
}

static struct http_resp *
act(const char *reservation, const char *action)
{
	const char *h[] = { auth_header("service"), NULL };

	return http_do(
		"POST",
		url(base(), "/api/v1/reservations/%s/%s", reservation, action),
		h, NULL);
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

START_TEST(stock_put_and_get)
{
	char p[SVC_UUID_LEN + 1];
	long long on_hand, reserved;
	struct http_resp *r;

	new_id(p);
	r = http_do("GET", url(base(), "/api/v1/inventory/%s", p), NULL, NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
	ck_assert_int_eq(put_stock(p, 10), 201);
	ck_assert_int_eq(put_stock(p, 12), 200);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(on_hand, 12);
	ck_assert_int_eq(reserved, 0);
}
END_TEST

START_TEST(stock_bad_input)
{
	static const char *const bodies[] = { "{\"on_hand\":-1}",
					      "{\"on_hand\":\"5\"}",
					      "{\"on_hand\":1.5}", "{}" };
	char p[SVC_UUID_LEN + 1];
	struct http_resp *r;

	new_id(p);
	for (unsigned i = 0; i < 4; i++) {
		const char *h[] = { json_ct, auth_header("admin"), NULL };

		r = http_do("PUT", url(base(), "/api/v1/inventory/%s", p), h,
			    bodies[i]);
		ck_assert_msg(r->status == 422, "%s: %ld", bodies[i],
			      r->status);
		http_free(r);
	}
	{
		const char *h[] = { json_ct, auth_header("service"), NULL };

		r = http_do("PUT", url(base(), "/api/v1/inventory/%s", p), h,
			    "{\"on_hand\":1}");
		ck_assert_int_eq(r->status, 403);
		http_free(r);
	}
	{
		const char *h[] = { json_ct, NULL };

		r = http_do("PUT", url(base(), "/api/v1/inventory/%s", p), h,
			    "{\"on_hand\":1}");
		ck_assert_int_eq(r->status, 401);
		http_free(r);
	}
	r = http_do("GET", url(base(), "/api/v1/inventory/not-a-uuid"), NULL,
		    NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
	/* nothing was created by any of that */
	r = http_do("GET", url(base(), "/api/v1/inventory/%s", p), NULL, NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
}
END_TEST

START_TEST(reserve_confirm_release)
{
	char p[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1], id[64];
	long long on_hand, reserved;
	struct http_resp *r;

	new_id(p);
	new_id(o);
	ck_assert_int_eq(put_stock(p, 10), 201);
	r = reserve(o, p, 3, 0);
	ck_assert_int_eq(r->status, 201);
	ck_assert_str_eq(str(r->json, "status"), "pending");
	ck_assert_str_eq(str(r->json, "order_id"), o);
	ck_assert_ptr_nonnull(str(r->json, "expires_at"));
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 1);
	snprintf(id, sizeof(id), "%s", str(r->json, "id"));
	http_free(r);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(on_hand, 10);
	ck_assert_int_eq(reserved, 3);

	/* on_hand may not go below what is reserved */
	ck_assert_int_eq(put_stock(p, 2), 409);

	/* idempotent on order_id */
	r = reserve(o, p, 3, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(str(r->json, "id"), id);
	http_free(r);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 3);

	r = act(id, "confirm");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(str(r->json, "status"), "confirmed");
	http_free(r);
	r = act(id, "confirm");
	ck_assert_int_eq(r->status, 200);
	http_free(r);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(on_hand, 7);
	ck_assert_int_eq(reserved, 0);

	/* releasing a confirmed reservation returns its quantity to on_hand */
	r = act(id, "release");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(str(r->json, "status"), "released");
	http_free(r);
	r = act(id, "release");
	ck_assert_int_eq(r->status, 200);
	http_free(r);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(on_hand, 10);
	ck_assert_int_eq(reserved, 0);

	r = act(id, "confirm");
	ck_assert_int_eq(r->status, 409);
	http_free(r);
}
END_TEST

START_TEST(release_pending_frees_reserved)
{
	char p[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1], id[64];
	long long on_hand, reserved;
	struct http_resp *r;

	new_id(p);
	new_id(o);
	ck_assert_int_eq(put_stock(p, 5), 201);
	r = reserve(o, p, 5, 0);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, sizeof(id), "%s", str(r->json, "id"));
	http_free(r);
	r = act(id, "release");
	ck_assert_int_eq(r->status, 200);
	http_free(r);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(on_hand, 5);
	ck_assert_int_eq(reserved, 0);
}
END_TEST

START_TEST(insufficient_stock_lists_each_short_item)
{
	char p1[SVC_UUID_LEN + 1], p2[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1];
	const char *h[] = { json_ct, auth_header("service"), NULL };
	long long on_hand, reserved;
	char body[512];
	struct http_resp *r;
	json_t *items;

	new_id(p1);
	new_id(p2);
	new_id(o);
	ck_assert_int_eq(put_stock(p1, 2), 201);
	snprintf(body, sizeof(body),
		 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":1},{\"product_id\":\"%s\",\"quantity\":3}]}",
		 o, p1, p2);
	r = http_do("POST", url(base(), "/api/v1/reservations"), h, body);
	ck_assert_int_eq(r->status, 409);
	ck_assert_str_eq(str(r->json, "error"), "insufficient_stock");
	items = json_object_get(r->json, "items");
	ck_assert_int_eq(json_array_size(items), 1);
	ck_assert_str_eq(str(json_array_get(items, 0), "product_id"), p2);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(items, 0), "requested")),
			 3);
	http_free(r);
	/* all or nothing: p1 was not touched */
	get_stock(p1, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 0);
}
END_TEST

/* The i-th malformed reservation body for order o and product p. */
static bool
bad_body(unsigned i, const char *o, const char *p, char *out, size_t size)
{
	switch (i) {
	case 0: /* no items */
		snprintf(out, size, "{\"order_id\":\"%s\",\"items\":[]}", o);
		return true;
	case 1: /* quantity 0 */
		snprintf(out, size,
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":0}]}",
			 o, p);
		return true;
	case 2: /* the same product twice */
		snprintf(out, size,
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1},{\"product_id\":\"%s\","
			 "\"quantity\":1}]}",
			 o, p, p);
		return true;
	case 3: /* order_id not a UUID */
		snprintf(out, size,
			 "{\"order_id\":\"nope\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1}]}",
			 p);
		return true;
	case 4: /* product_id not a UUID */
		snprintf(out, size,
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"x\",\"quantity\":1}]}",
			 o);
		return true;
	case 5: /* ttl out of range */
		snprintf(out, size,
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1}],\"ttl_seconds\":0}",
			 o, p);
		return true;
	default:
		return false;
	}
}

START_TEST(bad_reservations_are_422)
{
	char p[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1], body[512];
	const char *h[] = { json_ct, auth_header("service"), NULL };
	long long on_hand, reserved;

	new_id(p);
	new_id(o);
	ck_assert_int_eq(put_stock(p, 5), 201);
	for (unsigned i = 0; bad_body(i, o, p, body, sizeof(body)); i++) {
		struct http_resp *r = http_do(
			"POST", url(base(), "/api/v1/reservations"), h, body);

		ck_assert_msg(r->status == 422, "case %u: %ld %s", i, r->status,
			      r->body);
		http_free(r);
	}
	{
		const char *hc[] = { json_ct, auth_header("customer"), NULL };
		struct http_resp *r;

		snprintf(body, sizeof(body),
			 "{\"order_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1}]}",
			 o, p);
		r = http_do("POST", url(base(), "/api/v1/reservations"), hc,
			    body);
		ck_assert_int_eq(r->status, 403);
		http_free(r);
	}
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 0);
}
END_TEST

/* --- concurrency --- */

struct worker {
	pthread_t thread;
	char order[SVC_UUID_LEN + 1];
	const char *product;
	long status;
	char id[64];
};

static void *
reserve_one(void *arg)
{
	struct worker *w = arg;
	struct http_resp *r = reserve(w->order, w->product, 1, 0);

	w->status = r->status;
	if (r->json != NULL && str(r->json, "id") != NULL)
		snprintf(w->id, sizeof(w->id), "%s", str(r->json, "id"));
	http_free(r);
	return NULL;
}

START_TEST(fifty_orders_for_ten_never_oversell)
{
	struct worker w[50];
	char p[SVC_UUID_LEN + 1];
	long long on_hand, reserved;
	int ok = 0, conflict = 0;

	new_id(p);
	ck_assert_int_eq(put_stock(p, 10), 201);
	for (int i = 0; i < 50; i++) {
		new_id(w[i].order);
		w[i].product = p;
		w[i].status = 0;
		pthread_create(&w[i].thread, NULL, reserve_one, &w[i]);
	}
	for (int i = 0; i < 50; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].status == 201)
			ok++;
		else if (w[i].status == 409)
			conflict++;
		else
			ck_abort_msg("unexpected status %ld", w[i].status);
	}
	ck_assert_int_eq(ok, 10);
	ck_assert_int_eq(conflict, 40);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 10);
	ck_assert_int_eq(on_hand, 10);
}
END_TEST

START_TEST(same_order_twenty_times_is_one_reservation)
{
	struct worker w[20];
	char p[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1];
	long long on_hand, reserved;
	int created = 0;

	new_id(p);
	new_id(o);
	ck_assert_int_eq(put_stock(p, 100), 201);
	for (int i = 0; i < 20; i++) {
		memcpy(w[i].order, o, sizeof(o));
		w[i].product = p;
		w[i].id[0] = '\0';
		pthread_create(&w[i].thread, NULL, reserve_one, &w[i]);
	}
	for (int i = 0; i < 20; i++) {
		pthread_join(w[i].thread, NULL);
		ck_assert_msg(w[i].status == 201 || w[i].status == 200,
			      "status %ld", w[i].status);
		created += w[i].status == 201;
		ck_assert_str_eq(w[i].id, w[0].id);
	}
	ck_assert_int_eq(created, 1);
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 1);
}
END_TEST

START_TEST(expired_reservations_are_released_by_the_sweeper)
{
	char p[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1], id[64];
	long long on_hand, reserved;
	const char *status = NULL;
	struct http_resp *r;

	new_id(p);
	new_id(o);
	ck_assert_int_eq(put_stock(p, 4), 201);
	r = reserve(o, p, 4, 1);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, sizeof(id), "%s", str(r->json, "id"));
	http_free(r);
	/* Poll (bounded) until the sweeper released it. */
	for (int i = 0; i < 100; i++) {
		const char *h[] = { auth_header("service"), NULL };

		r = http_do("GET", url(base(), "/api/v1/reservations/%s", id),
			    h, NULL);
		ck_assert_int_eq(r->status, 200);
		status = strcmp(str(r->json, "status"), "released") == 0
				 ? "released"
				 : "pending";
		http_free(r);
		if (strcmp(status, "released") == 0)
			break;
		usleep(100 * 1000);
	}
	ck_assert_str_eq(status, "released");
	get_stock(p, &on_hand, &reserved);
	ck_assert_int_eq(reserved, 0);
	r = act(id, "confirm");
	ck_assert_int_eq(r->status, 409);
	http_free(r);
}
END_TEST

/* The low_stock events the outbox holds for product: their available
 * values, in order, as "a,b,..." (asserting each carries threshold 5). */
static void
low_stock_events(const char *product, char *out, size_t size)
{
	PGconn *c = PQconnectdb(env_or_fail("INVENTORY_DATABASE_URL"));
	const char *params[] = { product };
	PGresult *r;
	size_t at = 0;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	r = PQexecParams(c,
			 "SELECT data->>'available', data->>'threshold',"
			 " data->>'on_hand', data->>'reserved' FROM outbox"
			 " WHERE event_type = 'inventory.low_stock' AND"
			 " aggregate_id = $1 ORDER BY seq",
			 1, NULL, params, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	out[0] = '\0';
	for (int i = 0; i < PQntuples(r); i++) {
		ck_assert_str_eq(PQgetvalue(r, i, 1), "5");
		ck_assert_int_eq(atoll(PQgetvalue(r, i, 0)),
				 atoll(PQgetvalue(r, i, 2)) -
					 atoll(PQgetvalue(r, i, 3)));
		at += (size_t)snprintf(out + at, size - at, "%s%s",
				       i ? "," : "", PQgetvalue(r, i, 0));
	}
	PQclear(r);
	PQfinish(c);
}

/*
 * inventory.low_stock is published once per crossing of the threshold
 * (LOW_STOCK_THRESHOLD, 5 here) from above: by a reservation and by a
 * put, not again while it stays low, and again after a restock.
 */
START_TEST(low_stock_once_per_crossing)
{
	char p[SVC_UUID_LEN + 1], o[SVC_UUID_LEN + 1], seen[128];
	struct http_resp *r;

	new_id(p);
	ck_assert_int_eq(put_stock(p, 8), 201); /* a new row: not a crossing */
	low_stock_events(p, seen, sizeof(seen));
	ck_assert_str_eq(seen, "");
	for (int i = 0; i < 4; i++) { /* available 7, 6, 5, 4 */
		new_id(o);
		r = reserve(o, p, 1, 0);
		ck_assert_int_eq(r->status, 201);
		http_free(r);
	}
	low_stock_events(p, seen, sizeof(seen));
	ck_assert_str_eq(seen, "5");
	ck_assert_int_eq(put_stock(p, 6), 200);	 /* available 2: still low */
	ck_assert_int_eq(put_stock(p, 20), 200); /* 16 */
	ck_assert_int_eq(put_stock(p, 7), 200);	 /* 3: low again */
	low_stock_events(p, seen, sizeof(seen));
	ck_assert_str_eq(seen, "5,3");
}
END_TEST

Suite *
inventory_api_suite(void)
{
	Suite *s = suite_create("inventory_api");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, stock_put_and_get);
	tcase_add_test(tc, stock_bad_input);
	tcase_add_test(tc, reserve_confirm_release);
	tcase_add_test(tc, release_pending_frees_reserved);
	tcase_add_test(tc, insufficient_stock_lists_each_short_item);
	tcase_add_test(tc, bad_reservations_are_422);
	tcase_add_test(tc, fifty_orders_for_ten_never_oversell);
	tcase_add_test(tc, same_order_twenty_times_is_one_reservation);
	tcase_add_test(tc, expired_reservations_are_released_by_the_sweeper);
	tcase_add_test(tc, low_stock_once_per_crossing);
	suite_add_tcase(s, tc);
	return s;
}
