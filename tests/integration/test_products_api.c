/*
 * test_products_api.c - the products API over real HTTP against the real
 * binary and a real PostgreSQL, following DESIGN.md: the happy paths, and
 * every kind of bad input answered with the documented 4xx and changing
 * nothing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "integ.h"
#include "svc/jwt.h"
#include "svc/util.h"

static const char *const json_ct = "Content-Type: application/json";

static const char *
base(void)
{
	return env_or_fail("PRODUCTS_URL");
}

/* A SKU no other test (or earlier run) used. */
static const char *
fresh_sku(void)
{
	static char sku[64];
	char id[SVC_UUID_LEN + 1];

	svc_uuid_v4(id);
	snprintf(sku, sizeof(sku), "T-%.12s", id);
	return sku;
}

static struct http_resp *
create(const char *body)
{
	const char *h[] = { json_ct, auth_header("admin"), NULL };

	return http_do("POST", url(base(), "/api/v1/products"), h, body);
}

/* Creates a valid product and returns its id (static buffer). */
static const char *
create_ok(const char *sku, long long price)
{
	static char id[64];
	char body[256];
	struct http_resp *r;

	snprintf(body, sizeof(body),
		 "{\"sku\":\"%s\",\"name\":\"Widget\",\"price_cents\":%lld,"
		 "\"currency\":\"EUR\"}",
		 sku, price);
	r = create(body);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, sizeof(id), "%s",
		 json_string_value(json_object_get(r->json, "id")));
	http_free(r);
	return id;
}

static void
assert_problem(struct http_resp *r, long status, const char *error)
{
	char *ct = http_header(r, "Content-Type");

	ck_assert_int_eq(r->status, status);
	ck_assert_ptr_nonnull(ct);
	ck_assert_str_eq(ct, "application/problem+json");
	free(ct);
	ck_assert_ptr_nonnull(r->json);
	ck_assert_int_eq(json_integer_value(json_object_get(r->json, "status")),
			 status);
	ck_assert_str_eq(json_string_value(json_object_get(r->json, "type")),
			 "about:blank");
	ck_assert_ptr_nonnull(json_object_get(r->json, "title"));
	ck_assert_ptr_nonnull(json_object_get(r->json, "detail"));
	ck_assert_ptr_nonnull(json_object_get(r->json, "request_id"));
	if (error != NULL)
		ck_assert_str_eq(
			json_string_value(json_object_get(r->json, "error")),
			error);
}

static long long
count_products(void)
{
	struct http_resp *r = http_do(
		"GET", url(base(), "/api/v1/products?limit=100"), NULL, NULL);
	long long n = 0;
	const char *next;

	/* Walks every page: the number of products, for "nothing changed". */
	for (;;) {
		ck_assert_int_eq(r->status, 200);
		n += (long long)json_array_size(
			json_object_get(r->json, "items"));
		next = json_string_value(json_object_get(r->json, "next"));
		if (next == NULL)
			break;
		{
			char *cursor = strdup(next);

			http_free(r);
			r = http_do("GET",
				    url(base(),
					"/api/v1/products?limit=100&after=%s",
					cursor),
				    NULL, NULL);
			free(cursor);
		}
	}
	http_free(r);
	return n;
}

START_TEST(create_get_roundtrip)
{
	const char *sku = fresh_sku();
	char body[512], *loc, *etag;
	struct http_resp *r, *g;
	json_t *p;

	snprintf(
		body, sizeof(body),
		"{\"sku\":\"%s\",\"name\":\"Blue mug\",\"description\":\"350 ml\","
		"\"price_cents\":1299,\"currency\":\"EUR\"}",
		sku);
	r = create(body);
	ck_assert_int_eq(r->status, 201);
	p = r->json;
	ck_assert_str_eq(json_string_value(json_object_get(p, "sku")), sku);
	ck_assert_str_eq(json_string_value(json_object_get(p, "name")),
			 "Blue mug");
	ck_assert_str_eq(json_string_value(json_object_get(p, "description")),
			 "350 ml");
	ck_assert_int_eq(json_integer_value(json_object_get(p, "price_cents")),
			 1299);
	ck_assert_str_eq(json_string_value(json_object_get(p, "currency")),
			 "EUR");
	ck_assert(json_is_false(json_object_get(p, "available")));
	ck_assert_int_eq(json_integer_value(json_object_get(p, "version")), 1);
	ck_assert(svc_uuid_valid(json_string_value(json_object_get(p, "id"))));
	ck_assert_ptr_nonnull(
		json_string_value(json_object_get(p, "created_at")));
	ck_assert_str_eq(json_string_value(json_object_get(p, "created_at")),
			 json_string_value(json_object_get(p, "updated_at")));
	loc = http_header(r, "Location");
	ck_assert_ptr_nonnull(loc);
	ck_assert_str_eq(loc, url("", "/api/v1/products/%s",
				  json_string_value(json_object_get(p, "id"))));
	etag = http_header(r, "ETag");
	ck_assert_str_eq(etag, "\"1\"");

	g = http_do("GET", url(base(), "%s", loc), NULL, NULL);
	ck_assert_int_eq(g->status, 200);
	ck_assert(json_equal(g->json, p));
	http_free(g);
	free(loc);
	free(etag);
	http_free(r);
}
END_TEST

START_TEST(every_response_has_standard_headers)
{
	static const char *const want[][2] = {
		{ "X-Content-Type-Options", "nosniff" },
		{ "Cache-Control", "no-store" },
		{ "Content-Security-Policy", "default-src 'none'" },
		{ "X-Frame-Options", "DENY" },
		{ "Referrer-Policy", "no-referrer" },
	};
	const char *paths[] = { "/api/v1/products", "/api/v1/products/x",
				"/nope", "/health" };

	for (unsigned p = 0; p < 4; p++) {
		const char *h[] = { "X-Request-ID: test-req-42", NULL };
		struct http_resp *r =
			http_do("GET", url(base(), "%s", paths[p]), h, NULL);
		char *rid = http_header(r, "X-Request-ID");

		ck_assert_str_eq(rid, "test-req-42");
		free(rid);
		for (unsigned i = 0; i < 5; i++) {
			char *v = http_header(r, want[i][0]);

			ck_assert_msg(v != NULL, "%s missing on %s", want[i][0],
				      paths[p]);
			ck_assert_str_eq(v, want[i][1]);
			free(v);
		}
		http_free(r);
	}
}
END_TEST

START_TEST(request_id_generated_when_absent)
{
	struct http_resp *r =
		http_do("GET",
			url(base(), "/api/v1/products/%s",
			    "00000000-0000-4000-8000-000000000000"),
			NULL, NULL);
	char *rid = http_header(r, "X-Request-ID");

	assert_problem(r, 404, "not_found");
	ck_assert_ptr_nonnull(rid);
	ck_assert(svc_uuid_valid(rid));
	ck_assert_str_eq(
		json_string_value(json_object_get(r->json, "request_id")), rid);
	free(rid);
	http_free(r);
}
END_TEST

START_TEST(duplicate_sku_is_409)
{
	const char *sku = fresh_sku();
	char body[256];
	struct http_resp *r;

	create_ok(sku, 100);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"%s\",\"name\":\"Other\",\"price_cents\":5,"
		 "\"currency\":\"USD\"}",
		 sku);
	r = create(body);
	assert_problem(r, 409, "duplicate_sku");
	http_free(r);
}
END_TEST

START_TEST(bad_bodies_change_nothing)
{
	static const struct {
		const char *body;
		long status;
		const char *field; /* expected in errors[] for 422 */
	} cases[] = {
		{ "{\"sku\":", 400, NULL },
		{ "not json", 400, NULL },
		{ "[1,2]", 400, NULL },
		{ "{\"sku\":\"a\",\"sku\":\"b\",\"name\":\"n\",\"price_cents\":1,"
		  "\"currency\":\"EUR\"}",
		  400, NULL },
		{ "{}", 422, "sku" },
		{ "{\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		  422, "sku" },
		{ "{\"sku\":12,\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		  422, "sku" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":\"100\","
		  "\"currency\":\"EUR\"}",
		  422, "price_cents" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":-1,\"currency\":\"EUR\"}",
		  422, "price_cents" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1.5,\"currency\":\"EUR\"}",
		  422, "price_cents" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1e300,"
		  "\"currency\":\"EUR\"}",
		  422, "price_cents" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"eur\"}",
		  422, "currency" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EURO\"}",
		  422, "currency" },
		{ "{\"sku\":\"\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\"}",
		  422, "sku" },
		{ "{\"sku\":\"s\",\"name\":null,\"price_cents\":1,\"currency\":\"EUR\"}",
		  422, "name" },
		{ "{\"sku\":\"s\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\","
		  "\"description\":7}",
		  422, "description" },
		{ "{\"sku\":\"s\\u0000x\",\"name\":\"n\",\"price_cents\":1,"
		  "\"currency\":\"EUR\"}",
		  400, NULL },
	};
	long long before = count_products();

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_resp *r = create(cases[i].body);
		bool found = false;
		json_t *errs, *e;
		size_t k;

		ck_assert_msg(r->status == cases[i].status,
			      "case %u (%s): got %ld, want %ld: %s", i,
			      cases[i].body, r->status, cases[i].status,
			      r->body);
		assert_problem(r, cases[i].status, NULL);
		if (cases[i].field != NULL) {
			errs = json_object_get(r->json, "errors");
			ck_assert(json_is_array(errs));
			json_array_foreach(errs, k, e)
			{
				const char *f = json_string_value(
					json_object_get(e, "field"));

				ck_assert_ptr_nonnull(json_string_value(
					json_object_get(e, "message")));
				if (f != NULL && strcmp(f, cases[i].field) == 0)
					found = true;
			}
			ck_assert_msg(found, "case %u: no error for %s: %s", i,
				      cases[i].field, r->body);
		}
		http_free(r);
	}
	ck_assert_int_eq(count_products(), before);
}
END_TEST

START_TEST(long_name_is_422)
{
	char body[1024], name[300];

	memset(name, 'x', 201);
	name[201] = '\0';
	snprintf(body, sizeof(body),
		 "{\"sku\":\"%s\",\"name\":\"%s\",\"price_cents\":1,"
		 "\"currency\":\"EUR\"}",
		 fresh_sku(), name);
	struct http_resp *r = create(body);

	assert_problem(r, 422, "validation_failed");
	http_free(r);
}
END_TEST

START_TEST(not_json_is_415)
{
	const char *h[] = { "Content-Type: text/plain", auth_header("admin"),
			    NULL };
	struct http_resp *r = http_do("POST", url(base(), "/api/v1/products"),
				      h, "{\"sku\":\"x\"}");

	assert_problem(r, 415, "unsupported_media_type");
	http_free(r);
}
END_TEST

START_TEST(huge_body_is_413)
{
	size_t n = 2 * 1024 * 1024;
	char *body = malloc(n + 1);
	struct http_resp *r;

	memset(body, ' ', n);
	body[0] = '{';
	body[n - 1] = '}';
	body[n] = '\0';
	r = create(body);
	assert_problem(r, 413, "payload_too_large");
	http_free(r);
	free(body);
}
END_TEST

START_TEST(deep_json_is_400)
{
	char body[512];
	int n = 0;

	for (int i = 0; i < 100; i++)
		body[n++] = '[';
	for (int i = 0; i < 100; i++)
		body[n++] = ']';
	body[n] = '\0';
	struct http_resp *r = create(body);

	assert_problem(r, 400, "malformed_json");
	http_free(r);
}
END_TEST

START_TEST(auth_is_enforced)
{
	const char *body = "{\"sku\":\"x\",\"name\":\"n\",\"price_cents\":1,"
			   "\"currency\":\"EUR\"}";
	const char *secret = env_or_fail("JWT_SECRET");
	char forged[1200], expired[1200], token[1024];
	const char *none =
		"Authorization: Bearer "
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
		"eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo0MTAyNDQ0ODAwfQ.";
	const char *other_key = "another-secret-another-secret-another";
	struct http_resp *r;

	/* missing */
	{
		const char *h[] = { json_ct, NULL };

		r = http_do("POST", url(base(), "/api/v1/products"), h, body);
		assert_problem(r, 401, NULL);
		ck_assert_ptr_nonnull(strstr(r->headers, "WWW-Authenticate"));
		http_free(r);
	}
	/* signed with another key */
	svc_jwt_mint("x", "admin", (long long)time(NULL), 600,
		     (const unsigned char *)other_key, strlen(other_key), token,
		     sizeof(token));
	snprintf(forged, sizeof(forged), "Authorization: Bearer %s", token);
	/* expired an hour ago */
	svc_jwt_mint("x", "admin", (long long)time(NULL) - 7200, 3600,
		     (const unsigned char *)secret, strlen(secret), token,
		     sizeof(token));
	snprintf(expired, sizeof(expired), "Authorization: Bearer %s", token);
	{
		const char *bad[] = { forged, expired, none,
				      "Authorization: Bearer garbage",
				      "Authorization: Basic dXNlcjpwYXNz" };

		for (unsigned i = 0; i < 5; i++) {
			const char *h[] = { json_ct, bad[i], NULL };

			r = http_do("POST", url(base(), "/api/v1/products"), h,
				    body);
			ck_assert_msg(r->status == 401, "case %u: %ld", i,
				      r->status);
			assert_problem(r, 401, NULL);
			http_free(r);
		}
	}
	/* a valid token with a role that may not write */
	{
		const char *h[] = { json_ct, auth_header("customer"), NULL };

		r = http_do("POST", url(base(), "/api/v1/products"), h, body);
		assert_problem(r, 403, "forbidden");
		http_free(r);
	}
	/* service tokens are for service routes, not catalogue admin */
	{
		const char *h[] = { json_ct, auth_header("service"), NULL };

		r = http_do("POST", url(base(), "/api/v1/products"), h, body);
		assert_problem(r, 403, "forbidden");
		http_free(r);
	}
}
END_TEST

START_TEST(unknown_and_malformed_ids_are_404)
{
	const char *ids[] = { "00000000-0000-4000-8000-000000000000", "42",
			      "not-a-uuid",
			      "00000000-0000-4000-8000-00000000000g",
			      "%27%3B%20DROP%20TABLE%20products%3B--" };

	for (unsigned i = 0; i < 5; i++) {
		const char *h[] = { json_ct, auth_header("admin"), NULL };
		struct http_resp *r;

		r = http_do("GET", url(base(), "/api/v1/products/%s", ids[i]),
			    NULL, NULL);
		assert_problem(r, 404, "not_found");
		http_free(r);
		r = http_do("PATCH", url(base(), "/api/v1/products/%s", ids[i]),
			    h, "{\"name\":\"x\"}");
		assert_problem(r, 404, "not_found");
		http_free(r);
		r = http_do("DELETE",
			    url(base(), "/api/v1/products/%s", ids[i]), h,
			    NULL);
		assert_problem(r, 404, "not_found");
		http_free(r);
	}
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
	struct http_resp *r =
		http_do("PUT", url(base(), "/api/v1/products"), NULL, NULL);
	char *allow = http_header(r, "Allow");

	assert_problem(r, 405, "method_not_allowed");
	ck_assert_ptr_nonnull(allow);
	ck_assert_ptr_nonnull(strstr(allow, "GET"));
	ck_assert_ptr_nonnull(strstr(allow, "POST"));
	free(allow);
	http_free(r);
}
END_TEST

START_TEST(patch_with_if_match)
{
	const char *id = create_ok(fresh_sku(), 500);
	char idc[64];
	struct http_resp *r;

	snprintf(idc, sizeof(idc), "%s", id);
	{
		const char *h[] = { json_ct, auth_header("admin"),
				    "If-Match: \"1\"", NULL };

		r = http_do("PATCH", url(base(), "/api/v1/products/%s", idc), h,
			    "{\"price_cents\":750,\"name\":\"Renamed\"}");
		ck_assert_int_eq(r->status, 200);
		ck_assert_int_eq(json_integer_value(json_object_get(
					 r->json, "price_cents")),
				 750);
		ck_assert_str_eq(
			json_string_value(json_object_get(r->json, "name")),
			"Renamed");
		ck_assert_int_eq(
			json_integer_value(json_object_get(r->json, "version")),
			2);
		http_free(r);
	}
	{
		/* stale version: 412 and nothing changes */
		const char *h[] = { json_ct, auth_header("admin"),
				    "If-Match: \"1\"", NULL };

		r = http_do("PATCH", url(base(), "/api/v1/products/%s", idc), h,
			    "{\"price_cents\":1}");
		assert_problem(r, 412, "version_mismatch");
		http_free(r);
		r = http_do("GET", url(base(), "/api/v1/products/%s", idc),
			    NULL, NULL);
		ck_assert_int_eq(json_integer_value(json_object_get(
					 r->json, "price_cents")),
				 750);
		http_free(r);
	}
	{
		const char *h[] = { json_ct, auth_header("admin"), NULL };

		r = http_do("PATCH", url(base(), "/api/v1/products/%s", idc), h,
			    "{\"currency\":\"usd\"}");
		assert_problem(r, 422, "validation_failed");
		http_free(r);
		r = http_do("PATCH", url(base(), "/api/v1/products/%s", idc), h,
			    "{}");
		assert_problem(r, 422, "validation_failed");
		http_free(r);
	}
}
END_TEST

START_TEST(delete_then_gone)
{
	const char *h[] = { auth_header("admin"), NULL };
	char idc[64];
	struct http_resp *r;

	snprintf(idc, sizeof(idc), "%s", create_ok(fresh_sku(), 1));
	r = http_do("DELETE", url(base(), "/api/v1/products/%s", idc), h, NULL);
	ck_assert_int_eq(r->status, 204);
	ck_assert_int_eq((long)r->len, 0);
	http_free(r);
	r = http_do("GET", url(base(), "/api/v1/products/%s", idc), NULL, NULL);
	assert_problem(r, 404, "not_found");
	http_free(r);
	r = http_do("DELETE", url(base(), "/api/v1/products/%s", idc), h, NULL);
	assert_problem(r, 404, "not_found");
	http_free(r);
}
END_TEST

START_TEST(keyset_pagination_visits_each_once)
{
	char ids[7][64];
	int seen[7] = { 0 };
	char *cursor = NULL;
	int pages = 0;

	for (int i = 0; i < 7; i++)
		snprintf(ids[i], sizeof(ids[i]), "%s",
			 create_ok(fresh_sku(), i));
	for (;;) {
		struct http_resp *r =
			cursor ? http_do("GET",
					 url(base(),
					     "/api/v1/products?limit=3&after=%s",
					     cursor),
					 NULL, NULL)
			       : http_do("GET",
					 url(base(),
					     "/api/v1/products?limit=3"),
					 NULL, NULL);
		json_t *items = json_object_get(r->json, "items"), *it;
		json_t *next = json_object_get(r->json, "next");
		size_t k;

		ck_assert_int_eq(r->status, 200);
		ck_assert(json_array_size(items) <= 3);
		ck_assert(json_is_string(next) || json_is_null(next));
		json_array_foreach(items, k, it)
		{
			const char *id =
				json_string_value(json_object_get(it, "id"));

			for (int i = 0; i < 7; i++)
				if (strcmp(id, ids[i]) == 0)
					seen[i]++;
		}
		free(cursor);
		cursor = json_is_string(next) ? strdup(json_string_value(next))
					      : NULL;
		http_free(r);
		pages++;
		if (cursor == NULL)
			break;
		ck_assert_int_lt(pages, 10000);
	}
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(seen[i], 1);
}
END_TEST

START_TEST(list_by_ids)
{
	char a[64], b[64];
	struct http_resp *r;

	snprintf(a, sizeof(a), "%s", create_ok(fresh_sku(), 10));
	snprintf(b, sizeof(b), "%s", create_ok(fresh_sku(), 20));
	r = http_do("GET",
		    url(base(), "/api/v1/products?ids=%s,%s,%s", a, b,
			"00000000-0000-4000-8000-000000000000"),
		    NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "items")), 2);
	ck_assert(json_is_null(json_object_get(r->json, "next")));
	http_free(r);
}
END_TEST

START_TEST(bad_query_parameters_are_400)
{
	const char *qs[] = { "limit=abc",     "limit=0",
			     "limit=-5",      "limit=99999999999999999999",
			     "after=garbage", "after=MjAyNnwx",
			     "ids=1,2,3" };

	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct http_resp *r = http_do(
			"GET", url(base(), "/api/v1/products?%s", qs[i]), NULL,
			NULL);

		ck_assert_msg(r->status == 400, "%s: %ld", qs[i], r->status);
		assert_problem(r, 400, "invalid_parameter");
		http_free(r);
	}
	{
		/* over the cap: capped, not refused */
		struct http_resp *r = http_do(
			"GET", url(base(), "/api/v1/products?limit=5000"), NULL,
			NULL);

		ck_assert_int_eq(r->status, 200);
		ck_assert(json_array_size(json_object_get(r->json, "items")) <=
			  100);
		http_free(r);
	}
}
END_TEST

START_TEST(sql_metacharacters_stored_verbatim)
{
	const char *name = "Robert'); DROP TABLE products;-- \\\" %_ $1";
	json_t *body =
		json_pack("{s:s, s:s, s:s, s:i, s:s}", "sku", fresh_sku(),
			  "name", name, "description", "' OR 1=1 --",
			  "price_cents", 1, "currency", "GBP");
	char *text = json_dumps(body, 0);
	struct http_resp *r = create(text), *g;

	ck_assert_int_eq(r->status, 201);
	g = http_do("GET",
		    url(base(), "/api/v1/products/%s",
			json_string_value(json_object_get(r->json, "id"))),
		    NULL, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(g->json, "name")),
			 name);
	ck_assert_str_eq(
		json_string_value(json_object_get(g->json, "description")),
		"' OR 1=1 --");
	http_free(g);
	http_free(r);
	free(text);
	json_decref(body);
}
END_TEST

START_TEST(health_endpoints)
{
	struct http_resp *r =
		http_do("GET", url(base(), "/health"), NULL, NULL);
	json_t *db;

	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r->json, "status")),
			 "healthy");
	db = json_object_get(json_object_get(r->json, "checks"), "database");
	ck_assert_str_eq(json_string_value(json_object_get(db, "status")),
			 "up");
	ck_assert_ptr_nonnull(json_object_get(r->json, "timestamp"));
	http_free(r);
	r = http_do("GET", url(base(), "/health/live"), NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	http_free(r);
	r = http_do("GET", url(base(), "/health/ready"), NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	http_free(r);
}
END_TEST

Suite *
products_api_suite(void)
{
	Suite *s = suite_create("products_api");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, create_get_roundtrip);
	tcase_add_test(tc, every_response_has_standard_headers);
	tcase_add_test(tc, request_id_generated_when_absent);
	tcase_add_test(tc, duplicate_sku_is_409);
	tcase_add_test(tc, bad_bodies_change_nothing);
	tcase_add_test(tc, long_name_is_422);
	tcase_add_test(tc, not_json_is_415);
	tcase_add_test(tc, huge_body_is_413);
	tcase_add_test(tc, deep_json_is_400);
	tcase_add_test(tc, auth_is_enforced);
	tcase_add_test(tc, unknown_and_malformed_ids_are_404);
	tcase_add_test(tc, wrong_method_is_405_with_allow);
	tcase_add_test(tc, patch_with_if_match);
	tcase_add_test(tc, delete_then_gone);
	tcase_add_test(tc, keyset_pagination_visits_each_once);
	tcase_add_test(tc, list_by_ids);
	tcase_add_test(tc, bad_query_parameters_are_400);
	tcase_add_test(tc, sql_metacharacters_stored_verbatim);
	tcase_add_test(tc, health_endpoints);
	suite_add_tcase(s, tc);
	return s;
}
