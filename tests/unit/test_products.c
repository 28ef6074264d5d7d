/*
 * test_products.c - unit tests for the products handlers, run through a
 * router with the same routes as services/products/main.c. Only requests
 * the handlers refuse before they ask for a database connection are sent:
 * missing and invalid fields (422 naming each field), malformed ids (404),
 * bad If-Match headers and list parameters (400). A valid request would
 * reach svc_db_thread(); those belong to the integration tests, which run
 * the real service against PostgreSQL.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../services/products/products.h"
#include "svc/err.h"
#include "svc/jwt.h"
#include "svc/log.h"
#include "svc/util.h"
#include "unit.h"

#define ID   "123e4567-e89b-42d3-a456-426614174000"
#define ITEM "/api/v1/products/" ID

static const unsigned char key[] = "products-unit-key-0123456789abcdefghij";

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

static struct svc_http *http;
static int devnull = -1;
static char admin[600];

static void
setup(void)
{
	const struct svc_http_config cfg = {
		.max_body = 1048576,
		.max_json_depth = 32,
		.jwt_key = key,
		.jwt_key_len = sizeof(key) - 1,
		.jwt_leeway = 30,
	};

	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	svc_log_init("unit-products", SVC_LOG_ERROR, devnull);
	http = svc_http_new(routes, &cfg);
	ck_assert_ptr_nonnull(http);
	strcpy(admin, "Bearer ");
	ck_assert_int_eq(svc_jwt_mint("admin-1", "admin", svc_time_s(), 600,
				      key, sizeof(key) - 1, admin + 7,
				      sizeof(admin) - 7),
			 SVC_OK);
}

static void
teardown(void)
{
	svc_http_free(http);
	http = NULL;
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(devnull);
}

/* One request as admin; body and if_match may be NULL. */
static struct svc_res *
call(const char *method, const char *path, const char *body,
     const char *if_match)
{
	struct svc_req *req = svc_req_new(method, path);
	struct svc_res *res = svc_res_new();

	svc_req_add_header(req, "Authorization", admin);
	if (if_match != NULL)
		svc_req_add_header(req, "If-Match", if_match);
	if (body != NULL) {
		svc_req_add_header(req, "Content-Type", "application/json");
		ck_assert_int_eq(
			svc_req_append_body(req, body, strlen(body), 1048576),
			SVC_OK);
	}
	svc_http_handle(http, req, res);
	svc_req_free(req);
	return res;
}

/* The problem document of res, checked for status and error (new). */
static json_t *
problem(struct svc_res *res, int status, const char *error)
{
	size_t len;
	const char *body = svc_res_body(res, &len);
	json_t *doc = json_loadb(body, len, 0, NULL);

	ck_assert_msg(svc_res_status(res) == status, "status %d, not %d: %.*s",
		      svc_res_status(res), status, (int)len, body);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(svc_res_get_header(res, "Content-Type"),
			 "application/problem+json");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "error")),
			 error);
	return doc;
}

static void
expect(struct svc_res *res, int status, const char *error)
{
	json_decref(problem(res, status, error));
	svc_res_free(res);
}

/* The fields named in a 422's errors, as "a,b,c" (static buffer). */
static const char *
invalid_fields(struct svc_res *res)
{
	static char out[256];
	json_t *doc = problem(res, 422, "validation_failed");
	json_t *errors = json_object_get(doc, "errors");

	out[0] = '\0';
	ck_assert(json_is_array(errors));
	for (size_t i = 0; i < json_array_size(errors); i++) {
		json_t *e = json_array_get(errors, i);
		const char *field =
			json_string_value(json_object_get(e, "field"));

		ck_assert_ptr_nonnull(field);
		ck_assert_ptr_nonnull(
			json_string_value(json_object_get(e, "message")));
		if (i > 0)
			strcat(out, ",");
		strcat(out, field);
	}
	json_decref(doc);
	return out;
}

/* A valid product body with one member replaced by value (JSON text). */
static char *
with(const char *member, const char *value)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:i, s:s}", "sku", "SKU-1",
				 "name", "Widget", "description", "A widget",
				 "price_cents", 1999, "currency", "EUR");
	json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
	char *text;

	ck_assert_ptr_nonnull(body);
	ck_assert_msg(v != NULL, "bad test value %s", value);
	json_object_set_new(body, member, v);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return text;
}

/* A JSON string of n copies of s (malloc'd). */
static char *
repeat(const char *s, int n)
{
	size_t len = strlen(s);
	char *out = malloc(len * (size_t)n + 3);
	char *p = out;

	ck_assert_ptr_nonnull(out);
	*p++ = '"';
	for (int i = 0; i < n; i++, p += len)
		memcpy(p, s, len);
	strcpy(p, "\"");
	return out;
}

/* --- create --- */

START_TEST(create_lists_every_missing_field)
{
	struct svc_res *res = call("POST", "/api/v1/products", "{}", NULL);

	ck_assert_str_eq(invalid_fields(res), "sku,name,price_cents,currency");
	svc_res_free(res);

	res = call("POST", "/api/v1/products",
		   "{\"sku\":null,\"name\":null,\"price_cents\":null,"
		   "\"currency\":null,\"description\":null}",
		   NULL);
	ck_assert_str_eq(invalid_fields(res), "sku,name,price_cents,currency");
	svc_res_free(res);

	res = call("POST", "/api/v1/products", "{\"name\":\"Widget\"}", NULL);
	ck_assert_str_eq(invalid_fields(res), "sku,price_cents,currency");
	svc_res_free(res);
}
END_TEST

static const struct {
	const char *member, *value;
} bad_values[] = {
	{ "sku", "123" },
	{ "sku", "\"\"" },
	{ "sku", "\"line\\nbreak\"" },
	{ "sku", "\"tab\\there\"" },
	{ "sku", "\"nul\\u0001\"" },
	{ "sku", "\"del\\u007f\"" },
	{ "sku", "[\"SKU-1\"]" },
	{ "sku", "\"0123456789012345678901234567890123456789"
		 "0123456789012345678901234\"" }, /* 65 characters */
	{ "name", "\"\"" },
	{ "name", "\"two\\nlines\"" },
	{ "name", "false" },
	{ "price_cents", "\"1999\"" },
	{ "price_cents", "1.5" },
	{ "price_cents", "19.0" },
	{ "price_cents", "-1" },
	{ "price_cents", "9007199254740992" },
	{ "price_cents", "true" },
	{ "price_cents", "null" },
	{ "currency", "\"eur\"" },
	{ "currency", "\"EURO\"" },
	{ "currency", "\"E1R\"" },
	{ "currency", "\"EU\"" },
	{ "currency", "\"\"" },
	{ "currency", "\"E R\"" },
	{ "currency", "\"\\u00c9UR\"" },
	{ "currency", "978" },
	{ "description", "5" },
	{ "description", "{}" },
};

START_TEST(create_refuses_each_bad_value)
{
	char *body = with(bad_values[_i].member, bad_values[_i].value);
	struct svc_res *res = call("POST", "/api/v1/products", body, NULL);

	ck_assert_msg(strcmp(invalid_fields(res), bad_values[_i].member) == 0,
		      "%s: errors for %s", body, invalid_fields(res));
	svc_res_free(res);
	free(body);
}
END_TEST

START_TEST(create_counts_characters_not_bytes)
{
	char *name = repeat("\xc3\xa9", 200); /* 200 characters, 400 bytes */
	char *long_name = repeat("n", 201);
	char *desc = repeat("d", 2001);
	char *body, *both;
	struct svc_res *res;

	/* The bad currency keeps the request away from the database. */
	body = with("name", name);
	both = strdup(body);
	ck_assert_ptr_nonnull(strstr(both, "\"EUR\""));
	memcpy(strstr(both, "\"EUR\""), "\"eur\"", 5);
	res = call("POST", "/api/v1/products", both, NULL);
	ck_assert_str_eq(invalid_fields(res), "currency");
	svc_res_free(res);
	free(body);
	free(both);

	body = with("name", long_name);
	res = call("POST", "/api/v1/products", body, NULL);
	ck_assert_str_eq(invalid_fields(res), "name");
	svc_res_free(res);
	free(body);

	body = with("description", desc);
	res = call("POST", "/api/v1/products", body, NULL);
	ck_assert_str_eq(invalid_fields(res), "description");
	svc_res_free(res);
	free(body);

	free(name);
	free(long_name);
	free(desc);
}
END_TEST

START_TEST(create_reports_every_bad_field_at_once)
{
	struct svc_res *res = call(
		"POST", "/api/v1/products",
		"{\"sku\":1,\"name\":2,\"description\":3,\"price_cents\":\"4\","
		"\"currency\":\"eur\"}",
		NULL);

	ck_assert_str_eq(invalid_fields(res),
			 "sku,name,description,price_cents,currency");
	svc_res_free(res);
}
END_TEST

START_TEST(create_needs_an_admin_and_a_json_object)
{
	struct svc_req *req = svc_req_new("POST", "/api/v1/products");
	struct svc_res *res = svc_res_new();
	char user[600] = "Bearer ";

	svc_req_add_header(req, "Content-Type", "application/json");
	svc_req_append_body(req, "{}", 2, 1048576);
	svc_http_handle(http, req, res);
	expect(res, 401, "unauthorized");
	svc_req_free(req);

	ck_assert_int_eq(svc_jwt_mint("u", "user", svc_time_s(), 600, key,
				      sizeof(key) - 1, user + 7,
				      sizeof(user) - 7),
			 SVC_OK);
	req = svc_req_new("POST", "/api/v1/products");
	res = svc_res_new();
	svc_req_add_header(req, "Authorization", user);
	svc_req_add_header(req, "Content-Type", "application/json");
	svc_req_append_body(req, "{}", 2, 1048576);
	svc_http_handle(http, req, res);
	expect(res, 403, "forbidden");
	svc_req_free(req);

	expect(call("POST", "/api/v1/products", "[]", NULL), 400,
	       "malformed_json");
	expect(call("POST", "/api/v1/products", NULL, NULL), 400,
	       "bad_request");
}
END_TEST

/* --- ids and versions --- */

static const char *const bad_ids[] = {
	"abc",
	"123",
	ID "0",
	"123e4567e89b42d3a456426614174000",
	"123e4567-e89b-42d3-a456-42661417400g",
	"123e4567-e89b-42d3-a456_426614174000",
	("%20" ID),
	"' OR 1=1 --",
};

START_TEST(malformed_ids_are_404)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/products/%s", bad_ids[_i]);
	expect(call("GET", path, NULL, NULL), 404, "not_found");
	expect(call("PATCH", path, "{\"name\":\"x\"}", NULL), 404, "not_found");
	expect(call("PATCH", path, "{}", "\"1\""), 404, "not_found");
	expect(call("DELETE", path, NULL, NULL), 404, "not_found");
	expect(call("DELETE", path, NULL, "abc"), 404, "not_found");
}
END_TEST

START_TEST(patch_needs_a_field)
{
	struct svc_res *res = call("PATCH", ITEM, "{}", NULL);
	json_t *doc = problem(res, 422, "validation_failed");
	json_t *e = json_array_get(json_object_get(doc, "errors"), 0);

	ck_assert_uint_eq(json_array_size(json_object_get(doc, "errors")), 1);
	ck_assert_ptr_nonnull(
		strstr(json_string_value(json_object_get(e, "message")),
		       "at least one"));
	json_decref(doc);
	svc_res_free(res);

	/* Nulls for required fields are "not given", not a change. */
	expect(call("PATCH", ITEM,
		    "{\"sku\":null,\"name\":null,\"price_cents\":null,"
		    "\"currency\":null}",
		    NULL),
	       422, "validation_failed");
	/* Unknown members change nothing either. */
	expect(call("PATCH", ITEM, "{\"colour\":\"red\"}", NULL), 422,
	       "validation_failed");
}
END_TEST

START_TEST(patch_validates_what_it_is_given)
{
	static const struct {
		const char *body, *fields;
	} cases[] = {
		{ "{\"price_cents\":-5}", "price_cents" },
		{ "{\"price_cents\":1.5}", "price_cents" },
		{ "{\"currency\":\"eur\"}", "currency" },
		{ "{\"currency\":\"EURO\"}", "currency" },
		{ "{\"sku\":\"\"}", "sku" },
		{ "{\"sku\":\"a\\nb\"}", "sku" },
		{ "{\"name\":5,\"sku\":null}", "name" },
		{ "{\"description\":7}", "description" },
		{ "{\"sku\":7,\"currency\":\"x\"}", "sku,currency" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_res *res = call("PATCH", ITEM, cases[i].body, NULL);

		ck_assert_msg(strcmp(invalid_fields(res), cases[i].fields) == 0,
			      "%s: errors for %s", cases[i].body,
			      invalid_fields(res));
		svc_res_free(res);
	}
}
END_TEST

static const char *const bad_if_match[] = {
	"abc",	  "\"abc\"",	  "\"3",	 "3\"",
	"\"\"",	  "\"0\"",	  "0",		 "\"-1\"",
	"-1",	  "W/\"x\"",	  "W/",		 "\"1.5\"",
	"\"1 \"", "\"3\", \"4\"", "99999999999", "\"2147483648\"",
	"",
};

START_TEST(bad_if_match_is_400)
{
	struct svc_res *res =
		call("PATCH", ITEM, "{\"name\":\"x\"}", bad_if_match[_i]);
	json_t *doc = problem(res, 400, "invalid_header");

	ck_assert_ptr_nonnull(strstr(
		json_string_value(json_object_get(doc, "detail")), "If-Match"));
	json_decref(doc);
	svc_res_free(res);
	expect(call("DELETE", ITEM, NULL, bad_if_match[_i]), 400,
	       "invalid_header");
	/* The header is checked before the body. */
	expect(call("PATCH", ITEM, "{}", bad_if_match[_i]), 400,
	       "invalid_header");
}
END_TEST

/* --- listing --- */

static const char *const bad_queries[] = {
	"?limit=abc",	      "?limit=0",
	"?limit=-1",	      "?limit=",
	"?limit=1.5",	      "?limit=10x",
	"?limit=1000000001",  "?limit=99999999999999999999",
	"?ids=not-a-uuid",    "?ids=" ID ",not-a-uuid",
	"?ids=" ID "%20",     "?ids=" ID ";" ID,
	"?after=!!!",	      "?after=abc",
	"?after=Zm9v",	      "?after=" ID,
	"?limit=abc&ids=" ID, "?limit=5&after=%2B%2F%3D",
};

START_TEST(bad_list_parameters_are_400)
{
	char path[256];

	snprintf(path, sizeof(path), "/api/v1/products%s", bad_queries[_i]);
	expect(call("GET", path, NULL, NULL), 400, "invalid_parameter");
}
END_TEST

START_TEST(too_many_ids_are_400)
{
	char *path = malloc(64 + 101 * (SVC_UUID_LEN + 1));
	json_t *doc;
	struct svc_res *res;

	ck_assert_ptr_nonnull(path);
	strcpy(path, "/api/v1/products?ids=");
	for (int i = 0; i < 101; i++) {
		if (i > 0)
			strcat(path, ",");
		strcat(path, ID);
	}
	res = call("GET", path, NULL, NULL);
	doc = problem(res, 400, "invalid_parameter");
	ck_assert_ptr_nonnull(strstr(
		json_string_value(json_object_get(doc, "detail")), "100"));
	json_decref(doc);
	svc_res_free(res);
	free(path);
}
END_TEST

/* A cursor as the service writes it: base64url("<created_at>|<id>"). */
static void
cursor_path(char *path, size_t size, const char *raw)
{
	char enc[256];

	ck_assert_int_ge(svc_base64url_encode((const unsigned char *)raw,
					      strlen(raw), enc, sizeof(enc)),
			 0);
	snprintf(path, size, "/api/v1/products?after=%s", enc);
}

START_TEST(tampered_cursors_are_400)
{
	static const char *const raw[] = {
		"2026-11-25T19:43:35.123456Z|not-a-uuid",
		"2026-11-25T19:43:35.123456Z",
		"2026-11-25T19:43:35.123456Z|" ID "x",
		"2026-11-25T19:43:35.123456Z|" ID "|" ID,
		"2026-11-25T19:43:35Z|" ID,
		"2026-11-25 19:43:35.123456Z|" ID,
		"2026-11-25T19:43:35.123456+00|" ID,
		"2026-11-25T19:43:35.1234567Z|" ID,
		"yesterday|" ID,
		"|" ID,
		"|",
		"' OR 1=1 --|" ID,
		"2026-11-25T19:43:35.123456Z|" ID
		"-and-much-more-text-so-the-cursor-is-over-128-bytes-long-"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	};
	char path[512];

	for (unsigned i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		cursor_path(path, sizeof(path), raw[i]);
		expect(call("GET", path, NULL, NULL), 400, "invalid_parameter");
	}
	/* A good cursor with one character changed or cut. */
	cursor_path(path, sizeof(path), "2026-11-25T19:43:35.123456Z|" ID);
	path[strlen(path) - 1] = '!';
	expect(call("GET", path, NULL, NULL), 400, "invalid_parameter");
	cursor_path(path, sizeof(path), "2026-11-25T19:43:35.123456Z|" ID);
	path[strlen(path) - 3] = '\0';
	expect(call("GET", path, NULL, NULL), 400, "invalid_parameter");
}
END_TEST

Suite *
products_suite(void)
{
	Suite *s = suite_create("products");
	TCase *create = tcase_create("create");
	TCase *change = tcase_create("change");
	TCase *list = tcase_create("list");

	tcase_add_checked_fixture(create, setup, teardown);
	tcase_add_test(create, create_lists_every_missing_field);
	tcase_add_loop_test(create, create_refuses_each_bad_value, 0,
			    (int)(sizeof(bad_values) / sizeof(bad_values[0])));
	tcase_add_test(create, create_counts_characters_not_bytes);
	tcase_add_test(create, create_reports_every_bad_field_at_once);
	tcase_add_test(create, create_needs_an_admin_and_a_json_object);
	suite_add_tcase(s, create);

	tcase_add_checked_fixture(change, setup, teardown);
	tcase_add_loop_test(change, malformed_ids_are_404, 0,
			    (int)(sizeof(bad_ids) / sizeof(bad_ids[0])));
	tcase_add_test(change, patch_needs_a_field);
	tcase_add_test(change, patch_validates_what_it_is_given);
	tcase_add_loop_test(
		change, bad_if_match_is_400, 0,
		(int)(sizeof(bad_if_match) / sizeof(bad_if_match[0])));
	suite_add_tcase(s, change);

	tcase_add_checked_fixture(list, setup, teardown);
	tcase_add_loop_test(
		list, bad_list_parameters_are_400, 0,
		(int)(sizeof(bad_queries) / sizeof(bad_queries[0])));
	tcase_add_test(list, too_many_ids_are_400);
	tcase_add_test(list, tampered_cursors_are_400);
	suite_add_tcase(s, list);
	return s;
}
