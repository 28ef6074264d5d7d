/*
 * test_hostile.c - hostile input against the three running services:
 * malformed and tricky JSON, oversized bodies, malformed paths and query
 * parameters, forged and borderline JWTs, SQL meta-characters and fields a
 * client must not set. Every answer must be the documented 4xx (never a
 * 5xx), a problem document that leaks nothing internal, and a rejected
 * request must change nothing.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../integration/integ.h"
#include "svc/jwt.h"
#include "svc/util.h"

/* The tables of hostile inputs are printf templates. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static const char *const json_ct = "Content-Type: application/json";

static const char *
products(void)
{
	return env_or_fail("PRODUCTS_URL");
}

static const char *
inventory(void)
{
	return env_or_fail("INVENTORY_URL");
}

static const char *
orders(void)
{
	return env_or_fail("ORDERS_URL");
}

/* Text that must never reach a client: it tells how the inside works. */
static void
assert_no_leak(const struct http_resp *r, const char *what)
{
	static const char *const bad[] = { "ERROR:",
					   "SQLSTATE",
					   "PQ",
					   "libpq",
					   "postgres",
					   ".c:",
					   "/work/",
					   "Segmentation",
					   "Abort",
					   "backtrace",
					   "syntax error at",
					   "relation \"",
					   "duplicate key value",
					   "jansson",
					   NULL };

	for (int i = 0; bad[i] != NULL; i++)
		ck_assert_msg(r->body == NULL ||
				      strstr(r->body, bad[i]) == NULL,
			      "%s: response leaks \"%s\": %.300s", what, bad[i],
			      r->body);
}

/* The documented status, as a problem document, leaking nothing. */
static void
assert_problem(const struct http_resp *r, long status, const char *error,
	       const char *what)
{
	char *ct = http_header(r, "Content-Type");

	ck_assert_msg(r->status == status, "%s: status %ld, wanted %ld: %.300s",
		      what, r->status, status, r->body);
	ck_assert_msg(ct != NULL && strcmp(ct, "application/problem+json") == 0,
		      "%s: content type %s", what, ct ? ct : "(none)");
	free(ct);
	ck_assert_msg(r->json != NULL && json_is_object(r->json),
		      "%s: body is not a JSON object: %.300s", what, r->body);
	ck_assert_int_eq(json_integer_value(json_object_get(r->json, "status")),
			 status);
	ck_assert_msg(json_is_string(json_object_get(r->json, "error")),
		      "%s: no error member", what);
	if (error != NULL)
		ck_assert_msg(
			strcmp(json_string_value(
				       json_object_get(r->json, "error")),
			       error) == 0,
			"%s: error %s, wanted %s", what,
			json_string_value(json_object_get(r->json, "error")),
			error);
	assert_no_leak(r, what);
}

static char *
fresh_uuid(void)
{
	static _Thread_local char slots[4][SVC_UUID_LEN + 1];
	static _Thread_local int next;
	char *id = slots[next++ % 4];

	svc_uuid_v4(id);
	return id;
}

/* Number of products, walking every page. */
static long long
count_products(void)
{
	char after[512] = "";
	long long n = 0;

	for (;;) {
		struct http_resp *r = http_do(
			"GET",
			url(products(), "/api/v1/products?limit=100%s%s",
			    after[0] ? "&after=" : "", after),
			NULL, NULL);
		const char *next;

		ck_assert_int_eq(r->status, 200);
		n += (long long)json_array_size(
			json_object_get(r->json, "items"));
		next = json_string_value(json_object_get(r->json, "next"));
		if (next == NULL) {
			http_free(r);
			return n;
		}
		snprintf(after, sizeof(after), "%s", next);
		http_free(r);
	}
}

/* Creates a product with these (already JSON-escaped) fields; its id. */
static char *
create_product(const char *sku_json, const char *name_json,
	       const char *desc_json)
{
	const char *h[] = { json_ct, auth_header("admin"), NULL };
	char body[4096];
	struct http_resp *r;
	char *id;

	snprintf(body, sizeof(body),
		 "{\"sku\":%s,\"name\":%s,\"description\":%s,"
		 "\"price_cents\":100,\"currency\":\"EUR\"}",
		 sku_json, name_json, desc_json);
	r = http_do("POST", url(products(), "/api/v1/products"), h, body);
	ck_assert_msg(r->status == 201, "create: %ld %.300s", r->status,
		      r->body);
	id = strdup(json_string_value(json_object_get(r->json, "id")));
	http_free(r);
	return id;
}

static json_t *
get_product(const char *id)
{
	struct http_resp *r = http_do(
		"GET", url(products(), "/api/v1/products/%s", id), NULL, NULL);
	json_t *j;

	ck_assert_int_eq(r->status, 200);
	j = json_incref(r->json);
	http_free(r);
	return j;
}

/* ---- JSON bodies ---------------------------------------------------- */

struct bad_body {
	const char *body;
	long status;
	const char *error;
};

/* Bodies wrong for any resource, whatever its fields. */
static const struct bad_body generic_bad[] = {
	{ "{", 400, "malformed_json" },
	{ "{\"a\":1,}", 400, "malformed_json" },
	{ "{'a':1}", 400, "malformed_json" },
	{ "{\"a\":1} trailing", 400, "malformed_json" },
	{ "{\"a\":1}{\"b\":2}", 400, "malformed_json" },
	{ "nul", 400, "malformed_json" },
	{ "[]", 400, "malformed_json" },
	{ "[{\"sku\":\"x\"}]", 400, "malformed_json" },
	{ "\"x\"", 400, "malformed_json" },
	{ "42", 400, "malformed_json" },
	{ "null", 400, "malformed_json" },
	{ "true", 400, "malformed_json" },
	{ "{\"a\":\"x\\u0000y\"}", 400, "malformed_json" },
	{ "{\"a\\u0000\":1}", 400, "malformed_json" },
	{ "{\"a\":\"\\ud800\"}", 400, "malformed_json" },
	{ "{\"a\":\"\xff\xfe\"}", 400, "malformed_json" },
	{ "{\"a\":\"\xc0\xaf\"}", 400, "malformed_json" },
	{ "{\"a\":\"\xed\xa0\x80\"}", 400, "malformed_json" },
	{ "{\"a\":1e400}", 400, "malformed_json" },
	{ "{\"a\":-1e400}", 400, "malformed_json" },
	{ "{\"a\":9223372036854775808}", 400, "malformed_json" },
	{ "{\"a\":-9223372036854775809}", 400, "malformed_json" },
	{ "{\"a\":99999999999999999999999999}", 400, "malformed_json" },
	{ "{\"a\":NaN}", 400, "malformed_json" },
	{ "{\"a\":Infinity}", 400, "malformed_json" },
	{ "{\"a\":0x10}", 400, "malformed_json" },
	{ "{\"a\":1,\"a\":2}", 400, "malformed_json" },
	{ "{\"a\":{\"b\":1,\"b\":1}}", 400, "malformed_json" },
	{ "{\"a\":\"\\x41\"}", 400, "malformed_json" },
	{ "{\"a\":\"line\nbreak\"}", 400, "malformed_json" },
	{ "\xef\xbb\xbf{}", 400, "malformed_json" },
};

/* Nesting beyond HTTP_MAX_JSON_DEPTH (32); caller frees. */
static char *
deep_json(int depth, int objects)
{
	size_t n = (size_t)depth * 8 + 16;
	char *s = malloc(n), *p = s;

	p += sprintf(p, "{\"a\":");
	for (int i = 1; i < depth; i++)
		p += sprintf(p, objects ? "{\"a\":" : "[");
	p += sprintf(p, "1");
	for (int i = 1; i < depth; i++)
		p += sprintf(p, objects ? "}" : "]");
	sprintf(p, "}");
	return s;
}

/* Sends every generic bad body, deep JSON, an empty body, a wrong content
 * type and a body over 1 MiB to one route. */
static void
hostile_bodies(const char *method, const char *u, const char *auth)
{
	const char *h[] = { json_ct, auth, NULL };
	char what[256];

	for (size_t i = 0; i < sizeof(generic_bad) / sizeof(generic_bad[0]);
	     i++) {
		struct http_resp *r =
			http_do(method, u, h, generic_bad[i].body);

		snprintf(what, sizeof(what), "%s %s body #%zu %.40s", method, u,
			 i, generic_bad[i].body);
		assert_problem(r, generic_bad[i].status, generic_bad[i].error,
			       what);
		http_free(r);
	}
	for (int objects = 0; objects <= 1; objects++) {
		char *deep = deep_json(40, objects);
		char *huge = deep_json(5000, objects);
		struct http_resp *r = http_do(method, u, h, deep);

		snprintf(what, sizeof(what), "%s %s depth 40", method, u);
		assert_problem(r, 400, "malformed_json", what);
		http_free(r);
		r = http_do(method, u, h, huge);
		snprintf(what, sizeof(what), "%s %s depth 5000", method, u);
		assert_problem(r, 400, "malformed_json", what);
		http_free(r);
		free(deep);
		free(huge);
	}
	{
		struct http_resp *r = http_do(method, u, h, "");

		snprintf(what, sizeof(what), "%s %s empty body", method, u);
		assert_problem(r, 400, NULL, what);
		http_free(r);
	}
	{
		static const char *const types[] = {
			"Content-Type: text/plain",
			"Content-Type: application/x-www-form-urlencoded",
			"Content-Type: multipart/form-data; boundary=x",
			"Content-Type: application/xml",
			"Content-Type: application/jsonx",
			"Content-Type: json",
		};

		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			const char *h2[] = { types[i], auth, NULL };
			struct http_resp *r = http_do(method, u, h2, "{}");

			snprintf(what, sizeof(what), "%s %s %s", method, u,
				 types[i]);
			assert_problem(r, 415, "unsupported_media_type", what);
			http_free(r);
		}
	}
	{
		size_t n = (1u << 20) + 4096;
		char *big = malloc(n + 1);
		struct http_resp *r;

		memset(big, ' ', n);
		big[0] = '{';
		memcpy(big + 1, "\"a\":\"", 5);
		memset(big + 6, 'x', n - 8);
		big[n - 2] = '"';
		big[n - 1] = '}';
		big[n] = '\0';
		r = http_do(method, u, h, big);
		snprintf(what, sizeof(what), "%s %s 1 MiB+ body", method, u);
		assert_problem(r, 413, "payload_too_large", what);
		http_free(r);
		free(big);
	}
}

START_TEST(products_hostile_json_changes_nothing)
{
	long long before = count_products();
	const char *u = url(products(), "/api/v1/products");
	const char *h[] = { json_ct, auth_header("admin"), NULL };
	/* Right shape, wrong field values: 422. */
	static const char *const invalid[] = {
		"{\"sku\":1,\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":[],\"price_cents\":1,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":\"1\",\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1.5,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1e3,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":-0.0,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":-1,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":9223372036854775807,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":-9223372036854775808,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":true,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":null,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"eur\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EURO\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"\xc3\x89UR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":{}}",
		"{\"sku\":\"\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\\n2\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"a\\tb\",\"price_cents\":1,\"currency\":\"EUR\"}",
		"{\"sku\":\"s\",\"name\":\"n\",\"description\":5,\"price_cents\":1,\"currency\":\"EUR\"}",
		"{\"SKU\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		"{}",
	};
	char what[128];

	hostile_bodies("POST", u, auth_header("admin"));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct http_resp *r = http_do("POST", u, h, invalid[i]);

		snprintf(what, sizeof(what), "products invalid #%zu", i);
		assert_problem(r, 422, "validation_failed", what);
		ck_assert_msg(json_is_array(json_object_get(r->json, "errors")),
			      "%s: no errors list", what);
		http_free(r);
	}
	/* Over each field's limit: sku 64, name 200, description 2000. */
	{
		static const struct {
			const char *field;
			size_t len;
		} over[] = { { "sku", 65 },
			     { "name", 201 },
			     { "description", 2001 },
			     { "name", 100000 } };

		for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
			char *v = malloc(over[i].len + 1);
			char *body = malloc(over[i].len + 256);
			struct http_resp *r;

			memset(v, 'x', over[i].len);
			v[over[i].len] = '\0';
			snprintf(body, over[i].len + 256,
				 "{\"sku\":\"%s\",\"name\":\"%s\","
				 "\"description\":\"%s\",\"price_cents\":1,"
				 "\"currency\":\"EUR\"}",
				 strcmp(over[i].field, "sku") == 0 ? v
								   : "S-long",
				 strcmp(over[i].field, "name") == 0 ? v : "n",
				 strcmp(over[i].field, "description") == 0
					 ? v
					 : "d");
			r = http_do("POST", u, h, body);
			snprintf(what, sizeof(what), "%s of %zu", over[i].field,
				 over[i].len);
			assert_problem(r, 422, "validation_failed", what);
			http_free(r);
			free(v);
			free(body);
		}
	}
	ck_assert_int_eq(count_products(), before);
}
END_TEST

START_TEST(products_patch_hostile_json_changes_nothing)
{
	char *id = create_product("\"H-patch-\"", "\"n\"", "null");
	const char *u = url(products(), "/api/v1/products/%s", id);
	json_t *before;

	/* the SKU above may exist from an earlier run: replace it */
	(void)u;
	free(id);
	{
		char sku[64];

		snprintf(sku, sizeof(sku), "\"H-%.12s\"", fresh_uuid());
		id = create_product(sku, "\"n\"", "null");
	}
	u = url(products(), "/api/v1/products/%s", id);
	before = get_product(id);
	hostile_bodies("PATCH", u, auth_header("admin"));
	{
		static const char *const invalid[] = {
			"{}",
			"{\"name\":\"\"}",
			"{\"price_cents\":1.5}",
			"{\"price_cents\":-1}",
			"{\"sku\":null}",
			"{\"currency\":\"usd\"}",
			"{\"id\":\"00000000-0000-4000-8000-000000000000\"}",
			"{\"version\":99}",
		};
		const char *h[] = { json_ct, auth_header("admin"), NULL };

		for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]);
		     i++) {
			struct http_resp *r =
				http_do("PATCH", u, h, invalid[i]);
			char what[64];

			snprintf(what, sizeof(what), "patch invalid #%zu", i);
			assert_problem(r, 422, NULL, what);
			http_free(r);
		}
	}
	{
		json_t *after = get_product(id);

		ck_assert_msg(json_equal(before, after),
			      "a rejected PATCH changed the product");
		json_decref(after);
	}
	json_decref(before);
	free(id);
}
END_TEST

START_TEST(inventory_hostile_json_changes_nothing)
{
	const char *pid = fresh_uuid();
	const char *u = url(inventory(), "/api/v1/inventory/%s", pid);
	const char *h[] = { json_ct, auth_header("admin"), NULL };
	static const char *const invalid[] = {
		"{\"on_hand\":-1}",    "{\"on_hand\":1.5}",
		"{\"on_hand\":\"5\"}", "{\"on_hand\":null}",
		"{\"on_hand\":[5]}",   "{\"on_hand\":-9223372036854775808}",
		"{\"onhand\":5}",      "{}",
	};
	struct http_resp *r;

	hostile_bodies("PUT", u, auth_header("admin"));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		char what[64];

		r = http_do("PUT", u, h, invalid[i]);
		snprintf(what, sizeof(what), "inventory invalid #%zu", i);
		assert_problem(r, 422, NULL, what);
		http_free(r);
	}
	/* nothing created the stock row */
	r = http_do("GET", u, NULL, NULL);
	assert_problem(r, 404, NULL, "stock after rejected PUTs");
	http_free(r);
}
END_TEST

START_TEST(reservations_hostile_json)
{
	const char *u = url(inventory(), "/api/v1/reservations");
	const char *h[] = { json_ct, auth_header("service"), NULL };
	char body[512];
	static const char *const items[] = {
		"[{\"product_id\":\"%s\",\"quantity\":0}]",
		"[{\"product_id\":\"%s\",\"quantity\":-0}]",
		"[{\"product_id\":\"%s\",\"quantity\":1.5}]",
		"[{\"product_id\":\"%s\",\"quantity\":-1}]",
		"[{\"product_id\":\"%s\",\"quantity\":\"1\"}]",
		"[{\"product_id\":\"%s\",\"quantity\":1000001}]",
		"[{\"product_id\":\"not-a-uuid%s\",\"quantity\":1}]",
		"[{\"product_id\":\"%s' OR '1'='1\",\"quantity\":1}]",
		"[\"%s\"]",
		"{\"product_id\":\"%s\",\"quantity\":1}",
		"[]%.0s",
	};

	hostile_bodies("POST", u, auth_header("service"));
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		char it[256], what[64];
		struct http_resp *r;

		snprintf(it, sizeof(it), items[i], fresh_uuid());
		snprintf(body, sizeof(body),
			 "{\"order_id\":\"%s\",\"items\":%s}", fresh_uuid(),
			 it);
		r = http_do("POST", u, h, body);
		snprintf(what, sizeof(what), "reservation invalid #%zu", i);
		assert_problem(r, 422, NULL, what);
		http_free(r);
	}
	/* order_id and ttl */
	{
		static const char *const others[] = {
			("{\"order_id\":\"x'; DROP TABLE reservations; --\","
			 "\"items\":[{\"product_id\":\"%s\",\"quantity\":1}]}"),
			"{\"order_id\":\"%s\",\"items\":[],\"ttl_seconds\":-5}",
			"{\"order_id\":\"%s\",\"items\":[],\"ttl_seconds\":86401}",
		};

		for (size_t i = 0; i < sizeof(others) / sizeof(others[0]);
		     i++) {
			struct http_resp *r;

			snprintf(body, sizeof(body), others[i], fresh_uuid());
			r = http_do("POST", u, h, body);
			assert_problem(r, 422, NULL, "reservation other");
			http_free(r);
		}
	}
}
END_TEST

START_TEST(orders_hostile_json_changes_nothing)
{
	const char *customer = fresh_uuid();
	const char *u = url(orders(), "/api/v1/orders");
	const char *h[] = { json_ct, NULL };
	static const char *const invalid[] = {
		"{\"customer_id\":\"%s\",\"items\":[]}",
		"{\"customer_id\":\"%s\",\"items\":{}}",
		"{\"customer_id\":\"%s\",\"items\":null}",
		"{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
		"\"00000000-0000-4000-8000-000000000001\",\"quantity\":1.5}]}",
		"{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
		"\"00000000-0000-4000-8000-000000000001\",\"quantity\":-0}]}",
		"{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
		"\"00000000-0000-4000-8000-000000000001\",\"quantity\":-1}]}",
		"{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
		"\"'; DROP TABLE orders; --\",\"quantity\":1}]}",
		"{\"customer_id\":\"%s\",\"items\":[{\"product_id\":5,"
		"\"quantity\":1}]}",
		"{\"customer_id\":\"%s\",\"items\":[[1,2]]}",
		"{\"customer_id\":5,\"items\":[{\"product_id\":"
		"\"00000000-0000-4000-8000-000000000001\",\"quantity\":1}]%s}",
		"{\"customer_id\":\"\",\"items\":[{\"product_id\":"
		"\"00000000-0000-4000-8000-000000000001\",\"quantity\":1}]%s}",
	};
	struct http_resp *r;

	hostile_bodies("POST", u, "X-Nothing: 1");
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		char body[512], what[64];

		snprintf(body, sizeof(body), invalid[i], i < 9 ? customer : "");
		r = http_do("POST", u, h, body);
		snprintf(what, sizeof(what), "order invalid #%zu", i);
		assert_problem(r, 422, NULL, what);
		http_free(r);
	}
	r = http_do("GET",
		    url(orders(), "/api/v1/orders?customer_id=%s", customer),
		    NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 0);
	http_free(r);
}
END_TEST

/* ---- paths and query parameters ------------------------------------- */

START_TEST(malformed_ids_in_paths_are_404)
{
	static const char *const ids[] = {
		"42",
		"not-a-uuid",
		"00000000-0000-4000-8000-00000000000",
		"00000000-0000-4000-8000-0000000000000",
		"00000000-0000-4000-8000-00000000000g",
		"00000000000040008000000000000000",
		"%27%3B%20DROP%20TABLE%20products%3B%20--",
		"00000000-0000-4000-8000-000000000000%00",
		"%00",
		"..%2F..%2Fetc%2Fpasswd",
		"%ff%fe",
		"1%20OR%201%3D1",
	};
	const char *admin[] = { json_ct, auth_header("admin"), NULL };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct {
			const char *method, *u, *const *h, *body;
		} calls[] = {
			{ "GET", url(products(), "/api/v1/products/%s", ids[i]),
			  NULL, NULL },
			{ "PATCH",
			  url(products(), "/api/v1/products/%s", ids[i]), admin,
			  "{\"name\":\"x\"}" },
			{ "DELETE",
			  url(products(), "/api/v1/products/%s", ids[i]), admin,
			  NULL },
			{ "GET",
			  url(inventory(), "/api/v1/inventory/%s", ids[i]),
			  NULL, NULL },
			{ "PUT",
			  url(inventory(), "/api/v1/inventory/%s", ids[i]),
			  admin, "{\"on_hand\":1}" },
			{ "GET", url(orders(), "/api/v1/orders/%s", ids[i]),
			  NULL, NULL },
			{ "POST",
			  url(orders(), "/api/v1/orders/%s/cancel", ids[i]),
			  NULL, NULL },
		};

		for (size_t c = 0; c < sizeof(calls) / sizeof(calls[0]); c++) {
			struct http_resp *r =
				http_do(calls[c].method, calls[c].u, calls[c].h,
					calls[c].body);
			char what[256];

			snprintf(what, sizeof(what), "%s %s", calls[c].method,
				 calls[c].u);
			assert_problem(r, 404, NULL, what);
			http_free(r);
		}
	}
	/* confirm/release take the reservation id in the path */
	{
		const char *svc[] = { json_ct, auth_header("service"), NULL };
		struct http_resp *r = http_do(
			"POST",
			url(inventory(), "/api/v1/reservations/%s/confirm",
			    "1%27%20OR%20%271%27%3D%271"),
			svc, NULL);

		assert_problem(r, 404, NULL, "confirm malformed id");
		http_free(r);
	}
}
END_TEST

START_TEST(bad_query_parameters_are_400)
{
	static const char *const queries[] = {
		"limit=abc",
		"limit=0",
		"limit=-1",
		"limit=-0",
		"limit=1.5",
		"limit=1e2",
		"limit=99999999999999999999999",
		"limit=9223372036854775808",
		"limit=%00",
		"limit=5%00",
		"limit=",
		"limit=%20",
		"limit=0x10",
		"after=garbage",
		"after=%00",
		"after=AAAA",
		"after=Zm9vYmFy",	    /* base64 "foobar" */
		"after=eyJhIjoxfQ",	    /* base64 {"a":1} */
		"after=LTF8bm90LWEtdXVpZA", /* "-1|not-a-uuid" */
		"after=%27%3B%20DROP%20TABLE%20products%3B%20--",
		"after=====", /* many '=' */
		"ids=not-a-uuid",
		"ids=%27%20OR%20%271%27%3D%271",
		"ids=00000000-0000-4000-8000-000000000000,%00",
		"ids=00000000-0000-4000-8000-000000000000,,x",
	};

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct http_resp *r = http_do(
			"GET",
			url(products(), "/api/v1/products?%s", queries[i]),
			NULL, NULL);

		assert_problem(r, 400, "invalid_parameter", queries[i]);
		http_free(r);
	}
	/* orders' list: the same rules, plus customer_id */
	{
		static const char *const oq[] = {
			"customer_id=%s&limit=abc",
			"customer_id=%s&limit=-5",
			"customer_id=%s&after=garbage",
			"customer_id=%s&after=Zm9vYmFy",
			"customer_id=%s%%27%%3B%%20DROP%%20TABLE%%20orders%%3B",
			"customer_id=%s%%00",
		};

		for (size_t i = 0; i < sizeof(oq) / sizeof(oq[0]); i++) {
			char q[256];
			struct http_resp *r;

			snprintf(q, sizeof(q), oq[i], fresh_uuid());
			r = http_do("GET",
				    url(orders(), "/api/v1/orders?%s", q), NULL,
				    NULL);
			ck_assert_msg(r->status == 400 || r->status == 422 ||
					      r->status == 200,
				      "orders ?%s: %ld %.200s", q, r->status,
				      r->body);
			if (r->status != 200)
				assert_problem(r, r->status, NULL, q);
			else
				ck_assert_int_eq(
					json_array_size(json_object_get(
						r->json, "items")),
					0);
			assert_no_leak(r, q);
			http_free(r);
		}
	}
}
END_TEST

START_TEST(odd_but_valid_query_parameters)
{
	/* a huge limit is capped at 100, not refused */
	struct http_resp *r = http_do(
		"GET", url(products(), "/api/v1/products?limit=1000000"), NULL,
		NULL);

	ck_assert_int_eq(r->status, 200);
	ck_assert_uint_le(json_array_size(json_object_get(r->json, "items")),
			  100);
	http_free(r);
	/* repeated parameters, unknown ones: never a 5xx */
	{
		static const char *const qs[] = {
			"limit=5&limit=7",
			"limit=5&limit=abc",
			"after=x&after=y",
			"unknown=%00",
			"limit",
			"&&&",
			"=5",
			"%00=%00",
			"ids=",
		};

		for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
			r = http_do(
				"GET",
				url(products(), "/api/v1/products?%s", qs[i]),
				NULL, NULL);
			ck_assert_msg(r->status == 200 || r->status == 400,
				      "?%s: %ld %.200s", qs[i], r->status,
				      r->body);
			if (r->status == 400)
				assert_problem(r, 400, "invalid_parameter",
					       qs[i]);
			assert_no_leak(r, qs[i]);
			http_free(r);
		}
	}
}
END_TEST

/* ---- JWT ------------------------------------------------------------ */

static void
b64url(const char *in, size_t len, char *out, size_t size)
{
	ck_assert_int_ge(
		svc_base64url_encode((const unsigned char *)in, len, out, size),
		0);
}

/*
 * "<b64(header)>.<b64(payload)>.<sig>" where sig is HMAC-SHA256 with
 * JWT_SECRET when sign, else empty.
 */
static char *
craft(const char *header, const char *payload, bool sign)
{
	const char *secret = env_or_fail("JWT_SECRET");
	char h[1024], p[2048], *out = malloc(4096);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char sig[128] = "";

	b64url(header, strlen(header), h, sizeof(h));
	b64url(payload, strlen(payload), p, sizeof(p));
	snprintf(out, 4096, "%s.%s", h, p);
	if (sign) {
		ck_assert_ptr_nonnull(HMAC(
			EVP_sha256(), secret, (int)strlen(secret),
			(const unsigned char *)out, strlen(out), mac, &maclen));
		b64url((const char *)mac, maclen, sig, sizeof(sig));
	}
	strcat(out, ".");
	strcat(out, sig);
	return out;
}

static char *
claims(const char *role, long long iat, long long exp, const char *extra)
{
	char *s = malloc(512);

	snprintf(s, 512,
		 "{\"sub\":\"hostile\",\"role\":\"%s\",\"iat\":%lld,"
		 "\"exp\":%lld%s}",
		 role, iat, exp, extra ? extra : "");
	return s;
}

/* POST /api/v1/products with "{}" and this Authorization header value:
 * 401/403 before the body is looked at, else 422 (never creates). */
static void
expect_auth(const char *authz, long status, const char *what)
{
	char hdr[8192];
	const char *h[] = { json_ct, hdr, NULL };
	struct http_resp *r;

	snprintf(hdr, sizeof(hdr), "Authorization: %s", authz);
	r = http_do("POST", url(products(), "/api/v1/products"), h, "{}");
	assert_problem(r, status, NULL, what);
	if (status == 401) {
		char *www = http_header(r, "WWW-Authenticate");

		ck_assert_msg(www != NULL && strncmp(www, "Bearer", 6) == 0,
			      "%s: no WWW-Authenticate", what);
		free(www);
	}
	http_free(r);
}

static void
expect_token(const char *token, long status, const char *what)
{
	char authz[8192];

	snprintf(authz, sizeof(authz), "Bearer %s", token);
	expect_auth(authz, status, what);
}

START_TEST(jwt_edge_cases)
{
	const char *hs256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	long long now = (long long)time(NULL);
	char *c = claims("admin", now, now + 300, NULL);
	char *t;

	/* the control: a well-formed admin token gets past auth (422) */
	t = craft(hs256, c, true);
	expect_token(t, 422, "crafted valid token");
	free(t);

	/* alg none and friends, unsigned and signed */
	{
		static const char *const algs[] = {
			"{\"alg\":\"none\",\"typ\":\"JWT\"}",
			"{\"alg\":\"None\",\"typ\":\"JWT\"}",
			"{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
			"{\"alg\":\"nOnE\"}",
			"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
			"{\"alg\":\"HS384\",\"typ\":\"JWT\"}",
			"{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
			"{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
			"{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
			"{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
			"{\"alg\":null,\"typ\":\"JWT\"}",
			"{\"alg\":[\"HS256\"]}",
			"{\"typ\":\"JWT\"}",
			"{\"alg\":\"HS256\",\"alg\":\"none\"}",
			"{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
			"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
			"[\"HS256\"]",
			"not json",
		};

		for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
			char what[128];

			t = craft(algs[i], c, false);
			snprintf(what, sizeof(what), "unsigned %s", algs[i]);
			expect_token(t, 401, what);
			free(t);
			t = craft(algs[i], c, true);
			snprintf(what, sizeof(what), "signed %s", algs[i]);
			expect_token(t, 401, what);
			free(t);
		}
	}

	/* structure */
	t = craft(hs256, c, true);
	{
		char buf[4096];
		char *dot2 = strrchr(t, '.');
		size_t siglen = strlen(dot2 + 1);

		/* two segments */
		snprintf(buf, sizeof(buf), "%.*s", (int)(dot2 - t), t);
		expect_token(buf, 401, "two segments");
		/* four segments */
		snprintf(buf, sizeof(buf), "%s.%s", t, dot2 + 1);
		expect_token(buf, 401, "four segments");
		snprintf(buf, sizeof(buf), "%s.", t);
		expect_token(buf, 401, "trailing dot");
		/* truncated signature */
		snprintf(buf, sizeof(buf), "%.*s", (int)(strlen(t) - 2), t);
		expect_token(buf, 401, "truncated signature");
		snprintf(buf, sizeof(buf), "%.*s", (int)(strlen(t) - siglen),
			 t);
		expect_token(buf, 401, "empty signature");
		/* padded and non-url base64 */
		snprintf(buf, sizeof(buf), "%s=", t);
		expect_token(buf, 401, "padded signature");
		snprintf(buf, sizeof(buf), "%s", t);
		for (char *p = dot2 - t + buf + 1; *p; p++)
			if (*p == '-')
				*p = '+';
			else if (*p == '_')
				*p = '/';
		if (strcmp(buf, t) != 0)
			expect_token(buf, 401, "standard base64 signature");
		/* a flipped bit in the signature */
		snprintf(buf, sizeof(buf), "%s", t);
		buf[strlen(buf) - 3] = buf[strlen(buf) - 3] == 'A' ? 'B' : 'A';
		expect_token(buf, 401, "flipped signature");
		/* junk characters */
		snprintf(buf, sizeof(buf), "!!!.%s", strchr(t, '.') + 1);
		expect_token(buf, 401, "bad base64 header");
		snprintf(buf, sizeof(buf), "%s", t);
		buf[strlen(buf) - 1] = '*';
		expect_token(buf, 401, "bad base64 signature");
		/* payload swapped after signing (role escalation) */
		{
			char *svc = claims("service", now, now + 300, NULL);
			char *ts = craft(hs256, svc, true);
			char p[1024];

			b64url(c, strlen(c), p, sizeof(p));
			snprintf(buf, sizeof(buf), "%.*s%s%s",
				 (int)(strchr(ts, '.') - ts + 1), ts, p,
				 strrchr(ts, '.'));
			expect_token(buf, 401, "payload swapped");
			free(ts);
			free(svc);
		}
	}
	free(t);
	expect_token("", 401, "empty token");
	expect_token(".", 401, "one dot");
	expect_token("..", 401, "two dots");
	expect_auth("Bearer", 401, "Bearer without token");
	expect_auth("Basic YWRtaW46YWRtaW4=", 401, "Basic");
	expect_auth("Token abc", 401, "other scheme");
	{
		char *huge = malloc(7000);

		memset(huge, 'A', 6999);
		huge[6999] = '\0';
		huge[100] = '.';
		huge[200] = '.';
		expect_token(huge, 401, "huge token");
		free(huge);
	}
	/* signed with another secret */
	{
		char tok[1024];
		const char *other = "another-secret-another-secret-another!!";

		ck_assert_int_eq(svc_jwt_mint("x", "admin", now, 300,
					      (const unsigned char *)other,
					      strlen(other), tok, sizeof(tok)),
				 0);
		expect_token(tok, 401, "other secret");
	}
	free(c);

	/* times: leeway is 30 s */
	{
		static const struct {
			long long iat, exp;
			const char *extra;
			long status;
			const char *what;
		} times[] = {
			{ -400, -60, NULL, 401, "expired 60 s ago" },
			{ -400, -3600, NULL, 401, "expired an hour ago" },
			{ -400, -10, NULL, 422, "expired within leeway" },
			{ 120, 600, NULL, 401, "iat in the future" },
			{ 10, 600, NULL, 422, "iat within leeway" },
			{ 0, 300, ",\"nbf\":%lld", 401, "nbf in the future" },
			{ 0, -1000000000000LL, NULL, 401, "exp far past" },
		};

		for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
			char extra[64] = "";
			char *cl;

			if (times[i].extra != NULL)
				snprintf(extra, sizeof(extra), times[i].extra,
					 now + 120);
			cl = claims("admin", now + times[i].iat,
				    now + times[i].exp, extra);
			t = craft(hs256, cl, true);
			expect_token(t, times[i].status, times[i].what);
			free(t);
			free(cl);
		}
	}
	/* claims of the wrong shape */
	{
		char buf[512];
		static const char *const shapes[] = {
			"{\"sub\":\"x\",\"role\":\"admin\",\"iat\":%lld}",
			"{\"sub\":\"x\",\"role\":\"admin\",\"exp\":\"%lld\"}",
			"{\"sub\":\"x\",\"role\":\"admin\",\"exp\":null%.0lld}",
			"{\"sub\":\"x\",\"exp\":%lld}",
			"{\"sub\":\"x\",\"role\":null,\"exp\":%lld}",
			"{\"sub\":\"x\",\"role\":[\"admin\"],\"exp\":%lld}",
			"{\"role\":\"admin\",\"exp\":%lld}",
			"{\"sub\":\"\",\"role\":\"admin\",\"exp\":%lld}",
			"{\"sub\":\"x\",\"role\":\"admin\",\"exp\":1e400%.0lld}",
			"[\"admin\", %lld]",
		};

		for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]);
		     i++) {
			snprintf(buf, sizeof(buf), shapes[i], now + 300);
			t = craft(hs256, buf, true);
			expect_token(t, 401, buf);
			free(t);
		}
	}
	/* a NumericDate may have a fraction (RFC 7519 section 2) */
	{
		char buf[256];

		snprintf(buf, sizeof(buf),
			 "{\"sub\":\"x\",\"role\":\"admin\",\"exp\":%lld.5}",
			 now + 300);
		t = craft(hs256, buf, true);
		expect_token(t, 422, "fractional exp");
		free(t);
	}
	/* valid tokens, wrong role: 403 */
	{
		static const char *const roles[] = { "service", "Admin",
						     "ADMIN",	"admin ",
						     "",	"user",
						     "root" };

		for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
			char *cl = claims(roles[i], now, now + 300, NULL);

			t = craft(hs256, cl, true);
			expect_token(t, 403, roles[i]);
			free(t);
			free(cl);
		}
	}
	/* the same on an inventory admin route, and a reservation route */
	{
		const char *h[] = { json_ct, auth_header("service"), NULL };
		struct http_resp *r = http_do(
			"PUT",
			url(inventory(), "/api/v1/inventory/%s", fresh_uuid()),
			h, "{\"on_hand\":1}");

		assert_problem(r, 403, "forbidden", "service on stock PUT");
		http_free(r);
		{
			const char *h2[] = { json_ct,
					     "Authorization: Bearer x.y.z",
					     NULL };

			r = http_do("POST",
				    url(inventory(), "/api/v1/reservations"),
				    h2, "{}");
			assert_problem(r, 401, NULL, "forged on reservations");
			http_free(r);
		}
	}
}
END_TEST

/* ---- SQL meta-characters and fields a client must not set ----------- */

START_TEST(sql_metacharacters_round_trip)
{
	static const char *const values[] = {
		"'; DROP TABLE products; --",
		"\\\\",
		"100% _off_ \\\\%",
		"\\\"quoted\\\" 'single' `back`",
		"\xe2\x80\x94 caf\xc3\xa9 \xf0\x9f\x98\x80 \xe4\xb8\xad",
		"$1 $$ $tag$ :name ?",
		"Robert'); DELETE FROM outbox;--",
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char sku[160], name[256], desc[256];
		json_t *p;
		char *id;
		json_t *want_sku, *want_name, *want_desc;

		snprintf(sku, sizeof(sku), "\"%.6s%s\"", fresh_uuid(),
			 values[i]);
		snprintf(name, sizeof(name), "\"%s\"", values[i]);
		snprintf(desc, sizeof(desc), "\"%s\\n%s\"", values[i],
			 values[i]);
		id = create_product(sku, name, desc);
		want_sku = json_loads(sku, JSON_DECODE_ANY, NULL);
		want_name = json_loads(name, JSON_DECODE_ANY, NULL);
		want_desc = json_loads(desc, JSON_DECODE_ANY, NULL);
		p = get_product(id);
		ck_assert(json_equal(json_object_get(p, "sku"), want_sku));
		ck_assert(json_equal(json_object_get(p, "name"), want_name));
		ck_assert(json_equal(json_object_get(p, "description"),
				     want_desc));
		json_decref(p);
		/* and through the ids= read */
		{
			struct http_resp *r = http_do(
				"GET",
				url(products(), "/api/v1/products?ids=%s", id),
				NULL, NULL);

			ck_assert_int_eq(r->status, 200);
			ck_assert(json_equal(
				json_object_get(
					json_array_get(json_object_get(r->json,
								       "items"),
						       0),
					"name"),
				want_name));
			http_free(r);
		}
		json_decref(want_sku);
		json_decref(want_name);
		json_decref(want_desc);
		free(id);
	}
	/* the table is still there */
	ck_assert_int_gt(count_products(), 0);
}
END_TEST

START_TEST(server_owned_fields_are_never_taken)
{
	const char *h[] = { json_ct, auth_header("admin"), NULL };
	const char *forced_id = "00000000-0000-4000-8000-00000000abcd";
	char body[1024], sku[64];
	struct http_resp *r;
	json_t *p;
	char *id;

	snprintf(sku, sizeof(sku), "OWN-%.12s", fresh_uuid());
	snprintf(body, sizeof(body),
		 "{\"sku\":\"%s\",\"name\":\"n\",\"price_cents\":5,"
		 "\"currency\":\"EUR\",\"id\":\"%s\",\"version\":99,"
		 "\"available\":true,\"status\":\"x\","
		 "\"created_at\":\"2000-01-01T00:00:00Z\","
		 "\"updated_at\":\"2000-01-01T00:00:00Z\"}",
		 sku, forced_id);
	r = http_do("POST", url(products(), "/api/v1/products"), h, body);
	ck_assert_int_eq(r->status, 201);
	id = strdup(json_string_value(json_object_get(r->json, "id")));
	http_free(r);
	ck_assert_str_ne(id, forced_id);
	p = get_product(id);
	ck_assert_int_eq(json_integer_value(json_object_get(p, "version")), 1);
	ck_assert(json_is_false(json_object_get(p, "available")));
	ck_assert_str_ne(json_string_value(json_object_get(p, "created_at")),
			 "2000-01-01T00:00:00Z");
	ck_assert_ptr_null(json_object_get(p, "status"));
	json_decref(p);
	r = http_do("GET", url(products(), "/api/v1/products/%s", forced_id),
		    NULL, NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);

	/* PATCH with a real change plus server-owned fields */
	snprintf(body, sizeof(body),
		 "{\"name\":\"renamed\",\"id\":\"%s\",\"version\":99,"
		 "\"available\":true,\"created_at\":\"2000-01-01T00:00:00Z\","
		 "\"updated_at\":\"2000-01-01T00:00:00Z\"}",
		 forced_id);
	r = http_do("PATCH", url(products(), "/api/v1/products/%s", id), h,
		    body);
	ck_assert_int_eq(r->status, 200);
	http_free(r);
	p = get_product(id);
	ck_assert_str_eq(json_string_value(json_object_get(p, "id")), id);
	ck_assert_str_eq(json_string_value(json_object_get(p, "name")),
			 "renamed");
	ck_assert_int_eq(json_integer_value(json_object_get(p, "version")), 2);
	ck_assert(json_is_false(json_object_get(p, "available")));
	ck_assert_str_ne(json_string_value(json_object_get(p, "updated_at")),
			 "2000-01-01T00:00:00Z");
	json_decref(p);

	/* stock: reserved/available/version from a PUT are ignored */
	snprintf(body, sizeof(body),
		 "{\"on_hand\":7,\"reserved\":5,\"available\":100,"
		 "\"version\":42,\"product_id\":\"%s\","
		 "\"updated_at\":\"2000-01-01T00:00:00Z\"}",
		 forced_id);
	{
		const char *pid = fresh_uuid();

		r = http_do("PUT",
			    url(inventory(), "/api/v1/inventory/%s", pid), h,
			    body);
		ck_assert_msg(r->status == 201 || r->status == 200,
			      "stock PUT: %ld %.200s", r->status, r->body);
		http_free(r);
		r = http_do("GET",
			    url(inventory(), "/api/v1/inventory/%s", pid), NULL,
			    NULL);
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(json_string_value(json_object_get(
					 r->json, "product_id")),
				 pid);
		ck_assert_int_eq(
			json_integer_value(json_object_get(r->json, "on_hand")),
			7);
		ck_assert_int_eq(json_integer_value(
					 json_object_get(r->json, "reserved")),
				 0);
		ck_assert_int_eq(json_integer_value(
					 json_object_get(r->json, "available")),
				 7);
		ck_assert_int_ne(
			json_integer_value(json_object_get(r->json, "version")),
			42);
		http_free(r);
		r = http_do("GET",
			    url(inventory(), "/api/v1/inventory/%s", forced_id),
			    NULL, NULL);
		ck_assert_int_eq(r->status, 404);
		http_free(r);
	}
	free(id);
}
END_TEST

/* ---- headers ------------------------------------------------------- */

START_TEST(hostile_headers)
{
	char sku[64], *id;
	json_t *before, *after;
	static const char *const bad_if_match[] = {
		"If-Match: \"abc\"",	 "If-Match: \"",
		"If-Match: \"\"",	 "If-Match: W/",
		"If-Match: \"0\"",	 "If-Match: \"-1\"",
		"If-Match: 99999999999", "If-Match: \"1' OR '1'='1\"",
		"If-Match: 1,2",	 "If-Match: 0x1",
	};

	snprintf(sku, sizeof(sku), "\"HDR-%.12s\"", fresh_uuid());
	id = create_product(sku, "\"n\"", "null");
	before = get_product(id);
	for (size_t i = 0; i < sizeof(bad_if_match) / sizeof(bad_if_match[0]);
	     i++) {
		const char *h[] = { json_ct, auth_header("admin"),
				    bad_if_match[i], NULL };
		struct http_resp *r = http_do(
			"PATCH", url(products(), "/api/v1/products/%s", id), h,
			"{\"name\":\"changed\"}");

		assert_problem(r, 400, NULL, bad_if_match[i]);
		http_free(r);
		r = http_do("DELETE",
			    url(products(), "/api/v1/products/%s", id), h,
			    NULL);
		assert_problem(r, 400, NULL, bad_if_match[i]);
		http_free(r);
	}
	{
		const char *h[] = { json_ct, auth_header("admin"),
				    "If-Match: \"999\"", NULL };
		struct http_resp *r = http_do(
			"PATCH", url(products(), "/api/v1/products/%s", id), h,
			"{\"name\":\"changed\"}");

		assert_problem(r, 412, NULL, "stale If-Match");
		http_free(r);
	}
	after = get_product(id);
	ck_assert_msg(json_equal(before, after),
		      "a refused PATCH or DELETE changed the product");
	json_decref(before);
	json_decref(after);
	free(id);

	/* Idempotency-Key: 1-255 printable ASCII characters */
	{
		char long_key[300] = "Idempotency-Key: ";
		const char *keys[] = { long_key, "Idempotency-Key: a b",
				       "Idempotency-Key: caf\xc3\xa9",
				       "Idempotency-Key: a\x7f" };
		char body[256];

		memset(long_key + strlen(long_key), 'k', 256);
		snprintf(body, sizeof(body),
			 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1}]}",
			 fresh_uuid(), fresh_uuid());
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			const char *h[] = { json_ct, keys[i], NULL };
			struct http_resp *r =
				http_do("POST", url(orders(), "/api/v1/orders"),
					h, body);

			assert_problem(r, 400, "invalid_header", "key");
			http_free(r);
		}
	}
	/* a hostile X-Request-ID is replaced, never echoed */
	{
		const char *ids[] = { "X-Request-ID: <script>alert(1)</script>",
				      "X-Request-ID: a\"b",
				      "X-Request-ID: \xff\xfe" };

		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			const char *h[] = { ids[i], NULL };
			struct http_resp *r = http_do(
				"GET", url(products(), "/api/v1/products/x"), h,
				NULL);
			char *rid = http_header(r, "X-Request-ID");

			assert_problem(r, 404, NULL, ids[i]);
			ck_assert_ptr_nonnull(rid);
			ck_assert_int_eq(strlen(rid), SVC_UUID_LEN);
			ck_assert_ptr_null(strstr(r->body, "script"));
			free(rid);
			http_free(r);
		}
	}
}
END_TEST

Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("hostile");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, products_hostile_json_changes_nothing);
	tcase_add_test(tc, products_patch_hostile_json_changes_nothing);
	tcase_add_test(tc, inventory_hostile_json_changes_nothing);
	tcase_add_test(tc, reservations_hostile_json);
	tcase_add_test(tc, orders_hostile_json_changes_nothing);
	tcase_add_test(tc, malformed_ids_in_paths_are_404);
	tcase_add_test(tc, bad_query_parameters_are_400);
	tcase_add_test(tc, odd_but_valid_query_parameters);
	tcase_add_test(tc, jwt_edge_cases);
	tcase_add_test(tc, sql_metacharacters_round_trip);
	tcase_add_test(tc, server_owned_fields_are_never_taken);
	tcase_add_test(tc, hostile_headers);
	suite_add_tcase(s, tc);
	return s;
}
