/*
 * test_http.c - unit tests for http.c: the whole request pipeline, driven
 * through svc_http_handle() with requests made by svc_req_new() over a
 * small route table of test handlers - routing (404, 405 with Allow, HEAD),
 * path and query parameters, request ids, bearer tokens and roles, body
 * checks, how handler results become responses and problem documents, and
 * the headers every response carries. It also covers the JSON and query
 * validation helpers handlers use. No sockets: http_server.c, the
 * libmicrohttpd adapter, is left to the integration tests.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/err.h"
#include "svc/http.h"
#include "svc/jwt.h"
#include "svc/log.h"
#include "svc/util.h"
#include "unit.h"

#define MAX_BODY  1024
#define MAX_DEPTH 4

static const unsigned char key[] = "http-unit-test-key-0123456789abcdefgh";
static const unsigned char other_key[] =
	"some-other-key-0123456789abcdefghijkl";

static struct svc_http *http;
static int devnull = -1;

/* --- handlers --- */

/* Echoes what the pipeline handed over. */
static int
h_info(struct svc_req *req, struct svc_res *res)
{
	const struct svc_jwt_claims *c = svc_req_claims(req);

	return svc_res_json(
		res, 200,
		json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:b, s:s?, s:s?}",
			  "method", svc_req_method(req), "path",
			  svc_req_path(req), "route", svc_req_route(req), "id",
			  svc_req_param(req, "id"), "x",
			  svc_req_param(req, "x"), "y", svc_req_param(req, "y"),
			  "has_json", svc_req_json(req) != NULL, "sub",
			  c ? c->sub : NULL, "role", c ? c->role : NULL));
}

static int
h_create(struct svc_req *req, struct svc_res *res)
{
	return svc_res_json(res, 201, json_incref(svc_req_json(req)));
}

static int
h_validation(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	svc_res_field_error(res, "name", "is required");
	svc_res_field_error(res, "price", "must be at least %d", 0);
	return SVC_EVALIDATION;
}

static int
h_field_error_ok(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	svc_res_field_error(res, "limit", "is odd");
	return svc_res_json(res, 200, json_object());
}

static int
h_unavailable(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	(void)res;
	return SVC_EUNAVAIL;
}

static int
h_retry_after(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	svc_res_header(res, "Retry-After", "30");
	return SVC_EUNAVAIL;
}

static int
h_nothing(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	(void)res;
	return SVC_OK;
}

static int
h_conflict(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_problem(res, 409, "duplicate_sku", "sku %s exists",
			       "x-1");
}

/* Returns the error code -{n}. */
static int
h_code(struct svc_req *req, struct svc_res *res)
{
	(void)res;
	return -atoi(svc_req_param(req, "n"));
}

/* Every string rule at once: 1 to 3 characters, required. */
static int
h_strings(struct svc_req *req, struct svc_res *res)
{
	static const char *const fields[] = { "long", "empty", "num", "null",
					      "absent" };
	const char *out;

	for (unsigned i = 0; i < 5; i++)
		svc_json_string(res, svc_req_json(req), fields[i], 1, 3, true,
				&out, NULL);
	return SVC_OK;
}

static int
h_empty(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_empty(res, 204);
}

static const struct svc_route routes[] = {
	{ "GET", "/items", h_info, 0 },
	{ "POST", "/items", h_create, SVC_ROUTE_BODY },
	{ "GET", "/items/{id}", h_info, 0 },
	{ "DELETE", "/items/{id}", h_info, SVC_ROUTE_ADMIN },
	{ "GET", "/a/{x}/b/{y}", h_info, 0 },
	{ "POST", "/loose", h_info, 0 },
	{ "GET", "/admin", h_info, SVC_ROUTE_ADMIN },
	{ "GET", "/service", h_info, SVC_ROUTE_SERVICE },
	{ "POST", "/admin/items", h_create, SVC_ROUTE_ADMIN | SVC_ROUTE_BODY },
	{ "POST", "/validate", h_validation, SVC_ROUTE_BODY },
	{ "GET", "/field-error", h_field_error_ok, 0 },
	{ "GET", "/unavailable", h_unavailable, 0 },
	{ "GET", "/retry-after", h_retry_after, 0 },
	{ "GET", "/nothing", h_nothing, 0 },
	{ "GET", "/conflict", h_conflict, 0 },
	{ "GET", "/code/{n}", h_code, 0 },
	{ "GET", "/empty", h_empty, 0 },
	{ "POST", "/strings", h_strings, SVC_ROUTE_BODY },
	{ 0 },
};

static void
setup(void)
{
	const struct svc_http_config cfg = {
		.max_body = MAX_BODY,
		.max_json_depth = MAX_DEPTH,
		.jwt_key = key,
		.jwt_key_len = sizeof(key) - 1,
		.jwt_leeway = 30,
	};

	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	svc_log_init("unit-http", SVC_LOG_ERROR, devnull);
	http = svc_http_new(routes, &cfg);
	ck_assert_ptr_nonnull(http);
}

static void
teardown(void)
{
	svc_http_free(http);
	http = NULL;
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(devnull);
}

/* --- helpers --- */

/* "Bearer <token>" for role, valid now (static buffer). */
static const char *
bearer_with(const char *role, long long iat, const unsigned char *k,
	    size_t klen)
{
	static char buf[600];

	memcpy(buf, "Bearer ", 7);
	ck_assert_int_eq(svc_jwt_mint("user-1", role, iat, 600, k, klen,
				      buf + 7, sizeof(buf) - 7),
			 SVC_OK);
	return buf;
}

static const char *
bearer(const char *role)
{
	return bearer_with(role, svc_time_s(), key, sizeof(key) - 1);
}

static struct svc_res *
handle(struct svc_req *req)
{
	struct svc_res *res = svc_res_new();

	svc_http_handle(http, req, res);
	return res;
}

/* One request: any of ctype, body and auth may be NULL. */
static struct svc_res *
request(const char *method, const char *path, const char *ctype,
	const char *body, const char *auth)
{
	struct svc_req *req = svc_req_new(method, path);
	struct svc_res *res;

	if (ctype != NULL)
		svc_req_add_header(req, "Content-Type", ctype);
	if (auth != NULL)
		svc_req_add_header(req, "Authorization", auth);
	if (body != NULL)
		ck_assert_int_eq(
			svc_req_append_body(req, body, strlen(body), MAX_BODY),
			SVC_OK);
	res = handle(req);
	svc_req_free(req);
	return res;
}

static struct svc_res *
send_json(const char *method, const char *path, const char *body)
{
	return request(method, path, "application/json", body, NULL);
}

/* The response body as JSON (new reference); fails unless it parses. */
static json_t *
body_json(const struct svc_res *res)
{
	size_t len;
	const char *body = svc_res_body(res, &len);
	json_error_t err;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);

	ck_assert_msg(j != NULL, "body is not JSON (%s): %.*s", err.text,
		      (int)len, body);
	return j;
}

static const char *
member(json_t *obj, const char *key_)
{
	return json_string_value(json_object_get(obj, key_));
}

static void
assert_security_headers(const struct svc_res *res)
{
	static const char *const want[][2] = {
		{ "X-Content-Type-Options", "nosniff" },
		{ "Cache-Control", "no-store" },
		{ "Content-Security-Policy", "default-src 'none'" },
		{ "X-Frame-Options", "DENY" },
		{ "Referrer-Policy", "no-referrer" },
	};

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *v = svc_res_get_header(res, want[i][0]);

		ck_assert_msg(v != NULL, "no %s on a %d", want[i][0],
			      svc_res_status(res));
		ck_assert_str_eq(v, want[i][1]);
	}
	ck_assert_ptr_nonnull(svc_res_get_header(res, "X-Request-ID"));
}

/* A problem document with this status and error; returns it (new). */
static json_t *
assert_problem(const struct svc_res *res, int status, const char *error)
{
	json_t *doc;
	const char *rid = svc_res_get_header(res, "X-Request-ID");

	ck_assert_int_eq(svc_res_status(res), status);
	ck_assert_ptr_nonnull(svc_res_get_header(res, "Content-Type"));
	ck_assert_str_eq(svc_res_get_header(res, "Content-Type"),
			 "application/problem+json");
	doc = body_json(res);
	ck_assert(json_is_object(doc));
	ck_assert_str_eq(member(doc, "type"), "about:blank");
	ck_assert_ptr_nonnull(member(doc, "title"));
	ck_assert(json_is_integer(json_object_get(doc, "status")));
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "status")),
			 status);
	ck_assert_ptr_nonnull(member(doc, "detail"));
	ck_assert_ptr_nonnull(member(doc, "error"));
	ck_assert_str_eq(member(doc, "error"), error);
	ck_assert_ptr_nonnull(rid);
	ck_assert_ptr_nonnull(member(doc, "request_id"));
	ck_assert_str_eq(member(doc, "request_id"), rid);
	assert_security_headers(res);
	return doc;
}

static void
expect_problem(struct svc_res *res, int status, const char *error)
{
	json_decref(assert_problem(res, status, error));
	svc_res_free(res);
}

/* --- routing --- */

START_TEST(unknown_paths_are_404)
{
	static const char *const paths[] = {
		"/nope",      "/items/",  "/items/1/extra", "/",
		"/ITEMS",     "/items//", "//items",	    "/a/1/b",
		"/a/1/b/2/c", "/a//b/2",  "items",
	};

	for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct svc_res *res =
			request("GET", paths[i], NULL, NULL, NULL);
		json_t *doc = assert_problem(res, 404, "not_found");

		ck_assert_str_eq(member(doc, "title"), "Not Found");
		ck_assert_msg(strstr(member(doc, "detail"), paths[i]) != NULL,
			      "%s", member(doc, "detail"));
		json_decref(doc);
		svc_res_free(res);
	}
}
END_TEST

START_TEST(wrong_methods_are_405_with_allow)
{
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{ "PUT", "/items", "GET, HEAD, POST" },
		{ "DELETE", "/items", "GET, HEAD, POST" },
		{ "POST", "/items/7", "GET, HEAD, DELETE" },
		{ "PATCH", "/admin", "GET, HEAD" },
		{ "GET", "/validate", "POST" },
		{ "HEAD", "/validate", "POST" },
		{ "OPTIONS", "/loose", "POST" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_res *res = request(cases[i].method, cases[i].path,
					      NULL, NULL, NULL);
		json_t *doc = assert_problem(res, 405, "method_not_allowed");

		ck_assert_ptr_nonnull(svc_res_get_header(res, "Allow"));
		ck_assert_str_eq(svc_res_get_header(res, "Allow"),
				 cases[i].allow);
		ck_assert_str_eq(member(doc, "title"), "Method Not Allowed");
		json_decref(doc);
		svc_res_free(res);
	}
}
END_TEST

START_TEST(head_is_routed_to_get)
{
	struct svc_res *res = request("HEAD", "/items/42", NULL, NULL, NULL);
	json_t *j;

	ck_assert_int_eq(svc_res_status(res), 200);
	j = body_json(res);
	ck_assert_str_eq(member(j, "method"), "HEAD");
	ck_assert_str_eq(member(j, "route"), "/items/{id}");
	ck_assert_str_eq(member(j, "id"), "42");
	json_decref(j);
	svc_res_free(res);
}
END_TEST

START_TEST(path_parameters_are_captured)
{
	struct svc_req *req = svc_req_new("GET", "/a/first/b/sec%20ond");
	struct svc_res *res = handle(req);
	json_t *j;

	ck_assert_int_eq(svc_res_status(res), 200);
	ck_assert_str_eq(svc_req_param(req, "x"), "first");
	ck_assert_str_eq(svc_req_param(req, "y"), "sec%20ond");
	ck_assert_ptr_null(svc_req_param(req, "id"));
	ck_assert_str_eq(svc_req_route(req), "/a/{x}/b/{y}");
	j = body_json(res);
	ck_assert_str_eq(member(j, "x"), "first");
	ck_assert_ptr_null(member(j, "id"));
	json_decref(j);
	svc_res_free(res);
	svc_req_free(req);

	/* A route that did not match leaves no parameters behind. */
	req = svc_req_new("GET", "/nope/1");
	res = handle(req);
	ck_assert_int_eq(svc_res_status(res), 404);
	ck_assert_ptr_null(svc_req_route(req));
	ck_assert_ptr_null(svc_req_param(req, "id"));
	svc_res_free(res);
	svc_req_free(req);
}
END_TEST

START_TEST(query_arguments_are_parsed)
{
	struct svc_req *req = svc_req_new(
		"GET", "/items?a=1&b=x%20y&c=p+q&d=%2B%26%3D&e=%zz&a=2&f=&"
		       "g%5B%5D=h&&u=%C3%A9&z=5%00x");
	struct svc_res *res = handle(req);

	ck_assert_int_eq(svc_res_status(res), 200);
	ck_assert_str_eq(svc_req_path(req), "/items");
	ck_assert_str_eq(svc_req_query(req, "a"), "1");
	ck_assert_str_eq(svc_req_query(req, "b"), "x y");
	ck_assert_str_eq(svc_req_query(req, "c"), "p q");
	ck_assert_str_eq(svc_req_query(req, "d"), "+&=");
	ck_assert_str_eq(svc_req_query(req, "e"), "%zz");
	ck_assert_str_eq(svc_req_query(req, "f"), "");
	ck_assert_str_eq(svc_req_query(req, "g[]"), "h");
	ck_assert_str_eq(svc_req_query(req, "u"), "\xc3\xa9");
	/* A NUL would cut the value short: "%00" stays as it came. */
	ck_assert_str_eq(svc_req_query(req, "z"), "5%00x");
	ck_assert_ptr_null(svc_req_query(req, "A"));
	ck_assert_ptr_null(svc_req_query(req, "missing"));
	svc_res_free(res);
	svc_req_free(req);

	/* Arguments added by the server adapter work the same way. */
	req = svc_req_new("GET", "/items");
	svc_req_add_query(req, "limit", "5");
	ck_assert_str_eq(svc_req_query(req, "limit"), "5");
	svc_req_free(req);
}
END_TEST

START_TEST(query_arguments_without_a_value)
{
	struct svc_req *req = svc_req_new("GET", "/items?flag&a=1&other");

	ck_assert_str_eq(svc_req_query(req, "flag"), "");
	ck_assert_str_eq(svc_req_query(req, "a"), "1");
	ck_assert_str_eq(svc_req_query(req, "other"), "");
	svc_req_free(req);
}
END_TEST

/* --- request ids --- */

static const char *
rid_of(const char *sent, struct svc_res **out)
{
	struct svc_req *req = svc_req_new("GET", "/nope");
	struct svc_res *res;
	static char rid[200];
	json_t *doc;

	if (sent != NULL)
		svc_req_add_header(req, "X-Request-ID", sent);
	res = handle(req);
	doc = assert_problem(res, 404, "not_found");
	ck_assert_str_eq(svc_req_id(req),
			 svc_res_get_header(res, "X-Request-ID"));
	ck_assert_str_eq(member(doc, "request_id"), svc_req_id(req));
	snprintf(rid, sizeof(rid), "%s", svc_req_id(req));
	json_decref(doc);
	svc_req_free(req);
	*out = res;
	return rid;
}

START_TEST(sane_request_ids_are_echoed)
{
	static const char *const good[] = {
		"abc-123",
		"a_b.c:d/e+f=g",
		"0123456789ABCDEF",
		"123e4567-e89b-12d3-a456-426614174000",
	};
	char max[129];
	struct svc_res *res;

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_str_eq(rid_of(good[i], &res), good[i]);
		svc_res_free(res);
	}
	memset(max, 'r', 128);
	max[128] = '\0';
	ck_assert_str_eq(rid_of(max, &res), max);
	svc_res_free(res);
}
END_TEST

START_TEST(bad_request_ids_are_replaced)
{
	static const char *const bad[] = {
		"",	      "has space", "quote\"d",	  "new\nline", "tab\t",
		"semi;colon", "<script>",  "caf\xc3\xa9", "a,b",       "%41",
	};
	char long_id[130];
	char first[SVC_UUID_LEN + 1];
	struct svc_res *res;
	const char *rid;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rid = rid_of(bad[i], &res);
		ck_assert_msg(svc_uuid_valid(rid), "\"%s\" became \"%s\"",
			      bad[i], rid);
		svc_res_free(res);
	}
	memset(long_id, 'r', 129);
	long_id[129] = '\0';
	rid = rid_of(long_id, &res);
	ck_assert(svc_uuid_valid(rid));
	svc_res_free(res);

	/* None sent: a fresh one each time. */
	rid = rid_of(NULL, &res);
	ck_assert(svc_uuid_valid(rid));
	strcpy(first, rid);
	svc_res_free(res);
	rid = rid_of(NULL, &res);
	ck_assert(svc_uuid_valid(rid));
	ck_assert_str_ne(rid, first);
	svc_res_free(res);
}
END_TEST

/* --- headers and problem documents --- */

START_TEST(every_response_has_the_security_headers)
{
	struct svc_req *big = svc_req_new("POST", "/items");
	char filler[MAX_BODY + 1];
	struct svc_res *res;
	static const struct {
		const char *method, *path, *ctype, *body;
		int status;
	} cases[] = {
		{ "GET", "/items", NULL, NULL, 200 },
		{ "POST", "/items", "application/json", "{}", 201 },
		{ "GET", "/empty", NULL, NULL, 204 },
		{ "POST", "/items", "application/json", "[", 400 },
		{ "GET", "/admin", NULL, NULL, 401 },
		{ "GET", "/nope", NULL, NULL, 404 },
		{ "PUT", "/items", NULL, NULL, 405 },
		{ "GET", "/conflict", NULL, NULL, 409 },
		{ "POST", "/items", "text/plain", "{}", 415 },
		{ "GET", "/field-error", NULL, NULL, 422 },
		{ "GET", "/nothing", NULL, NULL, 500 },
		{ "GET", "/unavailable", NULL, NULL, 503 },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		res = request(cases[i].method, cases[i].path, cases[i].ctype,
			      cases[i].body, NULL);
		ck_assert_int_eq(svc_res_status(res), cases[i].status);
		assert_security_headers(res);
		svc_res_free(res);
	}
	res = request("GET", "/service", NULL, NULL, bearer("user"));
	ck_assert_int_eq(svc_res_status(res), 403);
	assert_security_headers(res);
	svc_res_free(res);

	memset(filler, ' ', sizeof(filler));
	ck_assert_int_eq(
		svc_req_append_body(big, filler, sizeof(filler), MAX_BODY),
		SVC_ETOOBIG);
	res = handle(big);
	ck_assert_int_eq(svc_res_status(res), 413);
	assert_security_headers(res);
	svc_res_free(res);
	svc_req_free(big);
}
END_TEST

START_TEST(success_responses_are_json)
{
	struct svc_res *res = request("GET", "/items", NULL, NULL, NULL);

	ck_assert_str_eq(svc_res_get_header(res, "Content-Type"),
			 "application/json");
	svc_res_free(res);
	/* 204 has no body and so no Content-Type. */
	res = request("GET", "/empty", NULL, NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 204);
	ck_assert_ptr_null(svc_res_get_header(res, "Content-Type"));
	ck_assert_str_eq(svc_res_body(res, NULL), "");
	svc_res_free(res);
}
END_TEST

START_TEST(problem_documents_have_every_member)
{
	struct svc_res *res = request("GET", "/nope", NULL, NULL, NULL);
	json_t *doc = assert_problem(res, 404, "not_found");

	/* Exactly the RFC 9457 members plus error and request_id. */
	ck_assert_uint_eq(json_object_size(doc), 6);
	ck_assert_str_eq(member(doc, "title"), "Not Found");
	ck_assert_uint_gt(strlen(member(doc, "detail")), 0);
	json_decref(doc);
	svc_res_free(res);
}
END_TEST

START_TEST(problem_documents_survive_odd_paths)
{
	char path[260];
	struct svc_res *res;

	/* The detail quotes the path cut at 200 bytes: inside the "é". */
	path[0] = '/';
	memset(path + 1, 'a', 198);
	strcpy(path + 199, "\xc3\xa9");
	res = request("GET", path, NULL, NULL, NULL);
	expect_problem(res, 404, "not_found");

	/* Bytes that are not UTF-8 at all. */
	res = request("GET", "/\xff\xfe", NULL, NULL, NULL);
	expect_problem(res, 404, "not_found");
	res = request("\xff", "/items", NULL, NULL, NULL);
	expect_problem(res, 405, "method_not_allowed");
}
END_TEST

/* --- bodies --- */

START_TEST(bodies_must_be_json)
{
	static const char *const refused[] = {
		"text/plain",
		"application/xml",
		"application/jsonp",
		"application/json-seq",
		"text/json",
		"multipart/form-data; boundary=x",
		"",
	};
	static const char *const accepted[] = {
		"application/json",
		"application/json; charset=utf-8",
		"Application/JSON",
		" application/json ;charset=utf-8",
		"application/merge-patch+json",
		"application/problem+json",
	};

	for (unsigned i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		expect_problem(
			request("POST", "/items", refused[i], "{}", NULL), 415,
			"unsupported_media_type");
	expect_problem(request("POST", "/items", NULL, "{}", NULL), 415,
		       "unsupported_media_type");
	for (unsigned i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		struct svc_res *res = request("POST", "/items", accepted[i],
					      "{\"k\":1}", NULL);

		ck_assert_msg(svc_res_status(res) == 201, "%s: %d", accepted[i],
			      svc_res_status(res));
		svc_res_free(res);
	}
}
END_TEST

START_TEST(malformed_json_is_400)
{
	static const char *const bad[] = {
		"{",
		"{\"a\":}",
		"{\"a\":1}x",
		"{'a':1}",
		"{\"a\":1,}",
		"\xff",
		"{\"a\":\"\xc3\"}",
		"{\"a\":\"\\u0000\"}",
		"{\"a\":1,\"a\":2}",
		"{\"a\":{\"b\":1,\"b\":1}}",
		"[]",
		"[{\"a\":1}]",
		"1",
		"\"s\"",
		"null",
		"true",
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct svc_res *res = send_json("POST", "/items", bad[i]);
		json_t *doc = assert_problem(res, 400, "malformed_json");

		ck_assert_str_eq(member(doc, "title"), "Bad Request");
		json_decref(doc);
		svc_res_free(res);
	}
}
END_TEST

START_TEST(nesting_is_limited)
{
	static const char *const ok[] = {
		"{\"a\":{\"b\":{\"c\":{\"d\":1}}}}",
		"{\"a\":[[[1]]]}",
		"{\"a\":\"[[[[[[[[{{{{{{\"}",
		"{\"a\":\"\\\"[[[[[[[[\"}",
		"{\"a\":[],\"b\":[[]],\"c\":[[[]]],\"d\":{}}",
	};
	static const char *const deep[] = {
		"{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}",
		"{\"a\":[[[[1]]]]}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
	};

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct svc_res *res = send_json("POST", "/items", ok[i]);

		ck_assert_msg(svc_res_status(res) == 201, "%s: %d", ok[i],
			      svc_res_status(res));
		svc_res_free(res);
	}
	for (unsigned i = 0; i < sizeof(deep) / sizeof(deep[0]); i++) {
		struct svc_res *res = send_json("POST", "/items", deep[i]);
		json_t *doc = assert_problem(res, 400, "malformed_json");

		ck_assert_ptr_nonnull(strstr(member(doc, "detail"), "4"));
		json_decref(doc);
		svc_res_free(res);
	}
}
END_TEST

START_TEST(body_routes_need_a_body)
{
	struct svc_res *res;
	json_t *j;

	expect_problem(request("POST", "/items", NULL, NULL, NULL), 400,
		       "bad_request");
	expect_problem(send_json("POST", "/items", NULL), 400, "bad_request");
	expect_problem(request("POST", "/items", "text/plain", NULL, NULL), 415,
		       "unsupported_media_type");

	/* A route without SVC_ROUTE_BODY runs with no body at all... */
	res = request("POST", "/loose", NULL, NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	j = body_json(res);
	ck_assert(json_is_false(json_object_get(j, "has_json")));
	json_decref(j);
	svc_res_free(res);
	/* ...but a body it gets is still checked. */
	expect_problem(send_json("POST", "/loose", "[1]"), 400,
		       "malformed_json");
	res = send_json("POST", "/loose", "{\"x\":1}");
	j = body_json(res);
	ck_assert(json_is_true(json_object_get(j, "has_json")));
	json_decref(j);
	svc_res_free(res);

	/* GET bodies are not read. */
	res = request("GET", "/items", "text/plain", "{", NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
}
END_TEST

START_TEST(bodies_over_the_limit_are_413)
{
	struct svc_req *req = svc_req_new("POST", "/items");
	char chunk[400];
	size_t len;
	json_t *doc;
	struct svc_res *res;

	memset(chunk, ' ', sizeof(chunk));
	svc_req_add_header(req, "Content-Type", "application/json");
	ck_assert_int_eq(svc_req_append_body(req, "{", 1, MAX_BODY), SVC_OK);
	ck_assert_int_eq(svc_req_append_body(req, chunk, 400, MAX_BODY),
			 SVC_OK);
	ck_assert_int_eq(svc_req_append_body(req, chunk, 400, MAX_BODY),
			 SVC_OK);
	ck_assert_int_eq(svc_req_append_body(req, chunk, 222, MAX_BODY),
			 SVC_OK);
	svc_req_body(req, &len);
	ck_assert_uint_eq(len, MAX_BODY - 1);
	/* Exactly the limit is fine; one byte more is not. */
	ck_assert_int_eq(svc_req_append_body(req, "}", 1, MAX_BODY), SVC_OK);
	ck_assert_int_eq(svc_req_append_body(req, " ", 1, MAX_BODY),
			 SVC_ETOOBIG);
	/* Once too big, always too big. */
	ck_assert_int_eq(svc_req_append_body(req, "", 0, MAX_BODY),
			 SVC_ETOOBIG);
	svc_req_body(req, &len);
	ck_assert_uint_eq(len, MAX_BODY);
	res = handle(req);
	doc = assert_problem(res, 413, "payload_too_large");
	ck_assert_ptr_nonnull(strstr(member(doc, "detail"), "1024"));
	json_decref(doc);
	svc_res_free(res);
	svc_req_free(req);

	/* Within the limit, the same body is accepted. */
	req = svc_req_new("POST", "/items");
	svc_req_add_header(req, "Content-Type", "application/json");
	ck_assert_int_eq(svc_req_append_body(req, "{}", 2, MAX_BODY), SVC_OK);
	res = handle(req);
	ck_assert_int_eq(svc_res_status(res), 201);
	svc_res_free(res);
	svc_req_free(req);
}
END_TEST

/* --- tokens and roles --- */

START_TEST(missing_or_bad_tokens_are_401)
{
	static const char *const missing[] = {
		NULL, "", "Basic dXNlcjpwYXNz", "Bearer", "Token abc",
	};
	static const char *const invalid[] = {
		"Bearer ",
		"Bearer garbage",
		"Bearer a.b.c",
		"Bearer eyJhbGciOiJub25lIn0.e30.",
	};
	struct svc_res *res;
	json_t *doc;

	for (unsigned i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		res = request("GET", "/admin", NULL, NULL, missing[i]);
		doc = assert_problem(res, 401, "unauthorized");
		ck_assert_str_eq(member(doc, "title"), "Unauthorized");
		ck_assert_ptr_nonnull(
			svc_res_get_header(res, "WWW-Authenticate"));
		ck_assert_str_eq(svc_res_get_header(res, "WWW-Authenticate"),
				 "Bearer");
		json_decref(doc);
		svc_res_free(res);
	}
	for (unsigned i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		res = request("GET", "/admin", NULL, NULL, invalid[i]);
		expect_problem(res, 401, "invalid_token");
	}
	res = request("GET", "/service", NULL, NULL, "Bearer garbage");
	ck_assert_int_eq(svc_res_status(res), 401);
	ck_assert_ptr_nonnull(svc_res_get_header(res, "WWW-Authenticate"));
	ck_assert_ptr_nonnull(strstr(
		svc_res_get_header(res, "WWW-Authenticate"), "invalid_token"));
	svc_res_free(res);

	/* Expired, and signed with another key. */
	res = request("GET", "/admin", NULL, NULL,
		      bearer_with("admin", svc_time_s() - 3600, key,
				  sizeof(key) - 1));
	doc = assert_problem(res, 401, "invalid_token");
	ck_assert_str_eq(member(doc, "detail"), "token expired");
	json_decref(doc);
	svc_res_free(res);
	res = request("GET", "/admin", NULL, NULL,
		      bearer_with("admin", svc_time_s(), other_key,
				  sizeof(other_key) - 1));
	expect_problem(res, 401, "invalid_token");
}
END_TEST

/*
 * Rotation: with JWT_SECRET_ACCEPT set, a token signed with that second
 * key passes too; one signed with neither still does not.
 */
START_TEST(second_key_is_accepted_for_rotation)
{
	static const unsigned char third_key[] =
		"a-third-key-nobody-accepts-0123456789";
	const struct svc_http_config cfg = {
		.max_body = MAX_BODY,
		.max_json_depth = MAX_DEPTH,
		.jwt_key = key,
		.jwt_key_len = sizeof(key) - 1,
		.jwt_key_accept = other_key,
		.jwt_key_accept_len = sizeof(other_key) - 1,
		.jwt_leeway = 30,
	};
	struct svc_http *one = http;
	struct svc_res *res;

	http = svc_http_new(routes, &cfg);
	ck_assert_ptr_nonnull(http);
	res = request("GET", "/admin", NULL, NULL,
		      bearer_with("admin", svc_time_s(), other_key,
				  sizeof(other_key) - 1));
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
	res = request("GET", "/admin", NULL, NULL,
		      bearer_with("admin", svc_time_s(), key, sizeof(key) - 1));
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
	res = request("GET", "/admin", NULL, NULL,
		      bearer_with("admin", svc_time_s(), third_key,
				  sizeof(third_key) - 1));
	expect_problem(res, 401, "invalid_token");
	svc_http_free(http);
	http = one;
}
END_TEST

START_TEST(roles_decide_access)
{
	static const struct {
		const char *method, *path, *role;
		int status;
	} cases[] = {
		{ "GET", "/admin", "admin", 200 },
		{ "GET", "/admin", "service", 403 },
		{ "GET", "/admin", "user", 403 },
		{ "GET", "/admin", "", 403 },
		{ "GET", "/admin", "Admin", 403 },
		{ "GET", "/service", "admin", 200 },
		{ "GET", "/service", "service", 200 },
		{ "GET", "/service", "user", 403 },
		{ "DELETE", "/items/9", "admin", 200 },
		{ "DELETE", "/items/9", "user", 403 },
		{ "DELETE", "/items/9", "service", 403 },
		{ "GET", "/items/9", "user", 200 },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_res *res =
			request(cases[i].method, cases[i].path, NULL, NULL,
				bearer(cases[i].role));

		ck_assert_msg(svc_res_status(res) == cases[i].status,
			      "%s %s as \"%s\": %d", cases[i].method,
			      cases[i].path, cases[i].role,
			      svc_res_status(res));
		if (cases[i].status == 403) {
			json_t *doc = assert_problem(res, 403, "forbidden");

			ck_assert_ptr_null(
				svc_res_get_header(res, "WWW-Authenticate"));
			json_decref(doc);
		}
		svc_res_free(res);
	}
}
END_TEST

START_TEST(handlers_see_the_claims)
{
	struct svc_res *res =
		request("GET", "/service", NULL, NULL, bearer("service"));
	json_t *j = body_json(res);

	ck_assert_str_eq(member(j, "sub"), "user-1");
	ck_assert_str_eq(member(j, "role"), "service");
	json_decref(j);
	svc_res_free(res);

	/* Public routes do not read the token at all. */
	res = request("GET", "/items", NULL, NULL, bearer("admin"));
	j = body_json(res);
	ck_assert_ptr_null(member(j, "sub"));
	json_decref(j);
	svc_res_free(res);

	/* The scheme is case-insensitive; extra spaces are fine. */
	{
		char auth[600];

		snprintf(auth, sizeof(auth), "bearer   %s",
			 bearer("admin") + 7);
		res = request("GET", "/admin", NULL, NULL, auth);
		ck_assert_int_eq(svc_res_status(res), 200);
		svc_res_free(res);
	}
}
END_TEST

START_TEST(tokens_are_checked_before_bodies)
{
	expect_problem(
		request("POST", "/admin/items", "application/json", "{", NULL),
		401, "unauthorized");
	expect_problem(request("POST", "/admin/items", "text/plain", "{",
			       bearer("user")),
		       403, "forbidden");
	expect_problem(request("POST", "/admin/items", "application/json", "{",
			       bearer("admin")),
		       400, "malformed_json");
}
END_TEST

/* --- handler results --- */

START_TEST(validation_errors_are_422_with_fields)
{
	struct svc_res *res = send_json("POST", "/validate", "{}");
	json_t *doc = assert_problem(res, 422, "validation_failed");
	json_t *errors = json_object_get(doc, "errors");

	ck_assert_str_eq(member(doc, "title"), "Unprocessable Content");
	ck_assert_str_eq(member(doc, "detail"), "2 invalid fields");
	ck_assert(json_is_array(errors));
	ck_assert_uint_eq(json_array_size(errors), 2);
	ck_assert_str_eq(member(json_array_get(errors, 0), "field"), "name");
	ck_assert_str_eq(member(json_array_get(errors, 0), "message"),
			 "is required");
	ck_assert_str_eq(member(json_array_get(errors, 1), "field"), "price");
	ck_assert_str_eq(member(json_array_get(errors, 1), "message"),
			 "must be at least 0");
	ck_assert_uint_eq(json_object_size(json_array_get(errors, 1)), 2);
	json_decref(doc);
	svc_res_free(res);

	/* Field errors win even when the handler said it succeeded. */
	res = request("GET", "/field-error", NULL, NULL, NULL);
	doc = assert_problem(res, 422, "validation_failed");
	ck_assert_str_eq(member(doc, "detail"), "1 invalid field");
	ck_assert_uint_eq(json_array_size(json_object_get(doc, "errors")), 1);
	json_decref(doc);
	svc_res_free(res);

	/* Other problems carry no errors member. */
	res = request("GET", "/nope", NULL, NULL, NULL);
	doc = assert_problem(res, 404, "not_found");
	ck_assert_ptr_null(json_object_get(doc, "errors"));
	json_decref(doc);
	svc_res_free(res);
}
END_TEST

START_TEST(unavailable_is_503_with_retry_after)
{
	struct svc_res *res = request("GET", "/unavailable", NULL, NULL, NULL);
	json_t *doc = assert_problem(res, 503, "service_unavailable");

	ck_assert_str_eq(member(doc, "title"), "Service Unavailable");
	ck_assert_ptr_nonnull(svc_res_get_header(res, "Retry-After"));
	ck_assert_str_eq(svc_res_get_header(res, "Retry-After"), "1");
	json_decref(doc);
	svc_res_free(res);

	res = request("GET", "/retry-after", NULL, NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 503);
	ck_assert_str_eq(svc_res_get_header(res, "Retry-After"), "30");
	svc_res_free(res);

	/* Not on other errors. */
	res = request("GET", "/nothing", NULL, NULL, NULL);
	ck_assert_ptr_null(svc_res_get_header(res, "Retry-After"));
	svc_res_free(res);
}
END_TEST

START_TEST(handler_that_sets_nothing_is_500)
{
	struct svc_res *res = request("GET", "/nothing", NULL, NULL, NULL);
	json_t *doc = assert_problem(res, 500, "internal_error");

	ck_assert_str_eq(member(doc, "title"), "Internal Server Error");
	json_decref(doc);
	svc_res_free(res);
}
END_TEST

START_TEST(handler_problems_and_codes)
{
	static const struct {
		const char *path;
		int status;
		const char *error;
	} cases[] = {
		{ "/code/1", 400, "bad_request" },
		{ "/code/3", 401, "unauthorized" },
		{ "/code/4", 403, "forbidden" },
		{ "/code/5", 404, "not_found" },
		{ "/code/6", 409, "conflict" },
		{ "/code/7", 412, "precondition_failed" },
		{ "/code/8", 413, "payload_too_large" },
		{ "/code/9", 415, "unsupported_media_type" },
		{ "/code/10", 429, "rate_limited" },
		{ "/code/12", 503, "service_unavailable" },
		{ "/code/13", 500, "internal_error" },
		{ "/code/14", 500, "internal_error" },
		{ "/code/99", 500, "internal_error" },
	};
	struct svc_res *res = request("GET", "/conflict", NULL, NULL, NULL);
	json_t *doc = assert_problem(res, 409, "duplicate_sku");

	ck_assert_str_eq(member(doc, "detail"), "sku x-1 exists");
	ck_assert_str_eq(member(doc, "title"), "Conflict");
	json_decref(doc);
	svc_res_free(res);

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_problem(request("GET", cases[i].path, NULL, NULL, NULL),
			       cases[i].status, cases[i].error);
}
END_TEST

START_TEST(problem_returns_the_matching_code)
{
	static const struct {
		int status, err;
	} cases[] = {
		{ 400, SVC_EINVAL },	  { 401, SVC_EAUTH },
		{ 403, SVC_EFORBIDDEN },  { 404, SVC_ENOTFOUND },
		{ 409, SVC_ECONFLICT },	  { 412, SVC_EPRECONDITION },
		{ 413, SVC_ETOOBIG },	  { 415, SVC_EMEDIATYPE },
		{ 422, SVC_EVALIDATION }, { 429, SVC_ERATELIMIT },
		{ 503, SVC_EUNAVAIL },	  { 500, SVC_EINTERNAL },
		{ 418, SVC_EINTERNAL },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_res *res = svc_res_new();

		ck_assert_int_eq(
			svc_res_problem(res, cases[i].status, "x", "%s", "d"),
			cases[i].err);
		ck_assert_int_eq(svc_res_status(res), cases[i].status);
		svc_res_free(res);
	}
}
END_TEST

/* --- responses and requests as plain objects --- */

static void
collect(const char *name, const char *value, void *arg)
{
	char *out = arg;

	strcat(out, name);
	strcat(out, "=");
	strcat(out, value);
	strcat(out, ";");
}

START_TEST(response_headers)
{
	struct svc_res *res = svc_res_new();
	char all[256] = "";

	svc_res_header(res, "ETag", "\"1\"");
	svc_res_header(res, "Location", "/x");
	svc_res_header(res, "etag", "\"2\"");
	ck_assert_str_eq(svc_res_get_header(res, "ETAG"), "\"2\"");
	ck_assert_ptr_null(svc_res_get_header(res, "Allow"));
	svc_res_foreach_header(res, collect, all);
	ck_assert_str_eq(all, "ETag=\"2\";Location=/x;");
	ck_assert_int_eq(svc_res_raw(res, 200, "[1]", 3), SVC_OK);
	ck_assert_str_eq(svc_res_body(res, NULL), "[1]");
	ck_assert_int_eq(svc_res_json(res, 201, json_pack("{s:i}", "a", 1)),
			 SVC_OK);
	ck_assert_int_eq(svc_res_status(res), 201);
	ck_assert_str_eq(svc_res_body(res, NULL), "{\"a\":1}");
	svc_res_free(res);
	svc_res_free(NULL);
}
END_TEST

START_TEST(request_headers_and_memory)
{
	struct svc_req *req = svc_req_new("GET", "/x");
	char *small, *big, *s;

	svc_req_add_header(req, "X-Thing", "one");
	svc_req_add_header(req, "x-thing", "two");
	for (int i = 0; i < 40; i++)
		svc_req_add_header(req, "X-Filler", "f");
	ck_assert_str_eq(svc_req_header(req, "X-THING"), "one");
	ck_assert_ptr_null(svc_req_header(req, "X-Other"));
	small = svc_req_alloc(req, 10);
	big = svc_req_alloc(req, 10000);
	memset(small, 1, 10);
	memset(big, 2, 10000);
	s = svc_req_strdup(req, "copy");
	ck_assert_str_eq(s, "copy");
	ck_assert_str_eq(svc_req_printf(req, "%s-%d", "n", 42), "n-42");
	ck_assert_int_eq(small[9], 1);
	ck_assert_int_eq(big[9999], 2);
	ck_assert_str_eq(svc_req_peer(req), "");
	svc_req_set_peer(req, "192.0.2.1");
	ck_assert_str_eq(svc_req_peer(req), "192.0.2.1");
	ck_assert_ptr_null(svc_req_claims(req));
	svc_req_free(req);
	svc_req_free(NULL);
}
END_TEST

START_TEST(malformed_route_templates_are_refused)
{
	static const struct svc_route no_slash[] = {
		{ "GET", "items", h_info, 0 },
		{ 0 },
	};
	static const struct svc_route too_deep[] = {
		{ "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", h_info,
		  0 },
		{ 0 },
	};
	const struct svc_http_config cfg = { .max_body = 10,
					     .max_json_depth = 2 };

	ck_assert_ptr_null(svc_http_new(no_slash, &cfg));
	ck_assert_ptr_null(svc_http_new(too_deep, &cfg));
	ck_assert_ptr_eq(svc_http_routes(http), routes);
	svc_http_free(NULL);
}
END_TEST

/* --- validation helpers --- */

START_TEST(json_string_helper)
{
	json_t *obj = json_pack(
		"{s:s, s:s, s:s, s:s, s:i, s:n, s:s, s:b}", "ok", "abc", "utf8",
		"h\xc3\xa9\xc3\xa9", /* 3 characters, 5 bytes */
		"long", "abcd", "empty", "", "num", 7, "null", "four",
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "bool", 1);
	struct svc_res *res = svc_res_new();
	const char *out = "unset";
	bool present = false;

	ck_assert(svc_json_string(res, obj, "ok", 1, 3, true, &out, &present));
	ck_assert_str_eq(out, "abc");
	ck_assert(present);
	ck_assert(svc_json_string(res, obj, "utf8", 1, 3, true, &out, NULL));
	ck_assert_int_eq(svc_res_field_errors(res), 0);

	ck_assert(!svc_json_string(res, obj, "long", 1, 3, true, &out, NULL));
	ck_assert_ptr_null(out);
	ck_assert(!svc_json_string(res, obj, "four", 1, 3, true, &out, NULL));
	ck_assert(!svc_json_string(res, obj, "empty", 1, 3, false, &out,
				   &present));
	ck_assert(present);
	ck_assert(!svc_json_string(res, obj, "num", 0, 3, false, &out, NULL));
	ck_assert(!svc_json_string(res, obj, "bool", 0, 3, false, &out, NULL));
	ck_assert_int_eq(svc_res_field_errors(res), 5);

	/* Absent and null: fine unless required. */
	out = "unset";
	ck_assert(svc_json_string(res, obj, "absent", 1, 3, false, &out,
				  &present));
	ck_assert_ptr_null(out);
	ck_assert(!present);
	ck_assert(
		svc_json_string(res, obj, "null", 1, 3, false, &out, &present));
	ck_assert(!present);
	ck_assert_int_eq(svc_res_field_errors(res), 5);
	ck_assert(!svc_json_string(res, obj, "absent", 1, 3, true, &out,
				   &present));
	ck_assert(!svc_json_string(res, obj, "null", 1, 3, true, &out, NULL));
	ck_assert_int_eq(svc_res_field_errors(res), 7);
	svc_res_free(res);
	json_decref(obj);
}
END_TEST

START_TEST(json_string_messages)
{
	struct svc_res *res = send_json("POST", "/strings",
					"{\"long\":\"abcd\",\"empty\":\"\","
					"\"num\":7,\"null\":null}");
	json_t *doc = assert_problem(res, 422, "validation_failed");
	json_t *errors = json_object_get(doc, "errors");
	static const char *const want[][2] = {
		{ "long", "must be at most 3 characters long" },
		{ "empty", "must be 1 to 3 characters long" },
		{ "num", "must be a string" },
		{ "null", "is required" },
		{ "absent", "is required" },
	};

	ck_assert_uint_eq(json_array_size(errors), 5);
	for (unsigned i = 0; i < 5; i++) {
		json_t *e = json_array_get(errors, i);

		ck_assert_str_eq(member(e, "field"), want[i][0]);
		ck_assert_str_eq(member(e, "message"), want[i][1]);
	}
	json_decref(doc);
	svc_res_free(res);
}
END_TEST

START_TEST(json_integer_helper)
{
	json_t *obj =
		json_pack("{s:i, s:f, s:s, s:b, s:n, s:I, s:i, s:i}", "ok", 5,
			  "real", 1.5, "str", "5", "bool", 1, "null", "big",
			  (json_int_t)9007199254740993LL, "min", 0, "max", 10);
	struct svc_res *res = svc_res_new();
	long long out = -1;
	bool present = false;

	ck_assert(
		svc_json_integer(res, obj, "ok", 0, 10, true, &out, &present));
	ck_assert_int_eq(out, 5);
	ck_assert(present);
	ck_assert(svc_json_integer(res, obj, "min", 0, 10, true, &out, NULL));
	ck_assert_int_eq(out, 0);
	ck_assert(svc_json_integer(res, obj, "max", 0, 10, true, &out, NULL));
	ck_assert_int_eq(out, 10);
	ck_assert_int_eq(svc_res_field_errors(res), 0);

	ck_assert(!svc_json_integer(res, obj, "ok", 6, 10, true, &out, NULL));
	ck_assert(!svc_json_integer(res, obj, "ok", 0, 4, true, &out, NULL));
	ck_assert(!svc_json_integer(res, obj, "real", 0, 10, true, &out, NULL));
	ck_assert(!svc_json_integer(res, obj, "str", 0, 10, true, &out, NULL));
	ck_assert(!svc_json_integer(res, obj, "bool", 0, 10, true, &out, NULL));
	ck_assert(!svc_json_integer(res, obj, "big", 0, 9007199254740991LL,
				    true, &out, NULL));
	ck_assert_int_eq(svc_res_field_errors(res), 6);

	ck_assert(svc_json_integer(res, obj, "null", 0, 10, false, &out,
				   &present));
	ck_assert(!present);
	ck_assert(svc_json_integer(res, obj, "absent", 0, 10, false, &out,
				   &present));
	ck_assert(!present);
	ck_assert(!svc_json_integer(res, obj, "null", 0, 10, true, &out, NULL));
	ck_assert(
		!svc_json_integer(res, obj, "absent", 0, 10, true, &out, NULL));
	ck_assert_int_eq(svc_res_field_errors(res), 8);
	svc_res_free(res);
	json_decref(obj);
}
END_TEST

START_TEST(query_int_helper)
{
	static const char *const bad[] = {
		"abc",
		"",
		"-1",
		"1.5",
		"+3",
		" 3",
		"3 ",
		"0x10",
		"1e3",
		"11",
		"12345678901234567",
		"99999999999999999999",
	};
	struct svc_req *req;
	struct svc_res *res;
	long long out;

	req = svc_req_new("GET", "/x?n=7&zero=0&ten=10&pad=007");
	res = svc_res_new();
	ck_assert_int_eq(svc_query_int(req, res, "n", 1, 0, 10, &out), SVC_OK);
	ck_assert_int_eq(out, 7);
	ck_assert_int_eq(svc_query_int(req, res, "zero", 1, 0, 10, &out),
			 SVC_OK);
	ck_assert_int_eq(out, 0);
	ck_assert_int_eq(svc_query_int(req, res, "ten", 1, 0, 10, &out),
			 SVC_OK);
	ck_assert_int_eq(out, 10);
	ck_assert_int_eq(svc_query_int(req, res, "pad", 1, 0, 10, &out),
			 SVC_OK);
	ck_assert_int_eq(out, 7);
	ck_assert_int_eq(svc_query_int(req, res, "absent", 3, 0, 10, &out),
			 SVC_OK);
	ck_assert_int_eq(out, 3);
	ck_assert_int_eq(svc_res_status(res), 0);
	ck_assert_int_eq(svc_query_int(req, res, "zero", 1, 1, 10, &out),
			 SVC_EINVAL);
	ck_assert_int_eq(svc_res_status(res), 400);
	svc_res_free(res);
	svc_req_free(req);

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req = svc_req_new("GET", "/x");
		res = svc_res_new();
		svc_req_add_query(req, "n", bad[i]);
		ck_assert_msg(svc_query_int(req, res, "n", 5, 0, 10, &out) ==
				      SVC_EINVAL,
			      "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(svc_res_status(res), 400);
		ck_assert_int_eq(out, 5);
		svc_res_free(res);
		svc_req_free(req);
	}
}
END_TEST

/* --- rate limiting --- */

static struct svc_res *
limited_request(struct svc_http *h, const char *path, const char *peer,
		const char *auth)
{
	struct svc_req *req = svc_req_new("GET", path);
	struct svc_res *res = svc_res_new();

	svc_req_set_peer(req, peer);
	if (auth != NULL)
		svc_req_add_header(req, "Authorization", auth);
	svc_http_handle(h, req, res);
	svc_req_free(req);
	return res;
}

static void
expect_limited(struct svc_http *h, const char *path, const char *peer,
	       const char *auth, int status, const char *remaining)
{
	struct svc_res *res = limited_request(h, path, peer, auth);

	ck_assert_msg(svc_res_status(res) == status, "%s from %s: %d, not %d",
		      path, peer, svc_res_status(res), status);
	if (remaining == NULL) {
		ck_assert_ptr_null(svc_res_get_header(res, "RateLimit-Limit"));
	} else {
		ck_assert_ptr_nonnull(
			svc_res_get_header(res, "RateLimit-Limit"));
		ck_assert_str_eq(svc_res_get_header(res, "RateLimit-Remaining"),
				 remaining);
		ck_assert_ptr_nonnull(
			svc_res_get_header(res, "RateLimit-Reset"));
	}
	if (status == 429) {
		json_t *doc = assert_problem(res, 429, "rate_limited");

		json_decref(doc);
		ck_assert_str_eq(svc_res_get_header(res, "Retry-After"),
				 "1200");
	}
	svc_res_free(res);
}

START_TEST(rate_limits_in_the_pipeline)
{
	static const struct svc_route limited_routes[] = {
		{ "GET", "/items", h_info, 0 },
		{ "GET", "/admin", h_info, SVC_ROUTE_ADMIN },
		{ "GET", "/service", h_info, SVC_ROUTE_SERVICE },
		{ "GET", "/health", h_info, SVC_ROUTE_OPS },
		{ 0 },
	};
	struct svc_http_config cfg = {
		.max_body = MAX_BODY,
		.max_json_depth = MAX_DEPTH,
		.jwt_key = key,
		.jwt_key_len = sizeof(key) - 1,
		.jwt_leeway = 30,
	};
	char admin[600], service[600];
	struct svc_http *h;
	struct svc_res *res;

	ck_assert_int_eq(svc_ratelimit_parse("3/hour", &cfg.ratelimit.client),
			 0);
	ck_assert_int_eq(svc_ratelimit_parse("5/hour", &cfg.ratelimit.service),
			 0);
	cfg.ratelimit.max_keys = 1000;
	h = svc_http_new(limited_routes, &cfg);
	ck_assert_ptr_nonnull(h);
	snprintf(admin, sizeof(admin), "%s", bearer("admin"));
	snprintf(service, sizeof(service), "%s", bearer("service"));

	/* A client's burst, then 429 with Retry-After and the headers. */
	expect_limited(h, "/items", "192.0.2.1", NULL, 200, "2");
	expect_limited(h, "/items", "192.0.2.1", NULL, 200, "1");
	res = limited_request(h, "/items", "192.0.2.1", NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	ck_assert_str_eq(svc_res_get_header(res, "RateLimit-Limit"), "3");
	ck_assert_str_eq(svc_res_get_header(res, "RateLimit-Remaining"), "0");
	ck_assert_str_eq(svc_res_get_header(res, "RateLimit-Reset"), "3600");
	svc_res_free(res);
	expect_limited(h, "/items", "192.0.2.1", NULL, 429, "0");
	/* An invalid token is keyed by the address: still limited. */
	expect_limited(h, "/admin", "192.0.2.1", "Bearer garbage", 429, "0");
	/* Operational routes: never limited, no headers. */
	for (int i = 0; i < 10; i++)
		expect_limited(h, "/health", "192.0.2.1", NULL, 200, NULL);
	/* Another address has its own bucket; unmatched paths count. */
	expect_limited(h, "/nope", "192.0.2.2", NULL, 404, "2");
	expect_limited(h, "/nope", "192.0.2.2", NULL, 404, "1");
	expect_limited(h, "/nope", "192.0.2.2", NULL, 404, "0");
	expect_limited(h, "/nope", "192.0.2.2", NULL, 429, "0");
	/* A valid token: its subject's bucket, not the address's. */
	expect_limited(h, "/items", "192.0.2.1", admin, 200, "2");
	expect_limited(h, "/admin", "192.0.2.1", admin, 200, "1");
	/* Same subject from elsewhere: the same bucket. */
	expect_limited(h, "/items", "198.51.100.7", admin, 200, "0");
	expect_limited(h, "/items", "198.51.100.7", admin, 429, "0");
	/* Service tokens: a budget and a rule of their own. */
	for (int i = 0; i < 5; i++) {
		char left[4];

		snprintf(left, sizeof(left), "%d", 4 - i);
		expect_limited(h, "/service", "192.0.2.1", service, 200, left);
	}
	res = limited_request(h, "/service", "192.0.2.1", service);
	ck_assert_int_eq(svc_res_status(res), 429);
	ck_assert_str_eq(svc_res_get_header(res, "RateLimit-Limit"), "5");
	ck_assert_str_eq(svc_res_get_header(res, "Retry-After"), "720");
	svc_res_free(res);
	svc_http_free(h);
}
END_TEST

START_TEST(rate_limit_off_sends_no_headers)
{
	struct svc_res *res = request("GET", "/items", NULL, NULL, NULL);

	ck_assert_int_eq(svc_res_status(res), 200);
	ck_assert_ptr_null(svc_res_get_header(res, "RateLimit-Limit"));
	svc_res_free(res);
}
END_TEST

Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *route = tcase_create("routing");
	TCase *pipeline = tcase_create("pipeline");
	TCase *auth = tcase_create("auth");
	TCase *result = tcase_create("results");
	TCase *helpers = tcase_create("helpers");

	tcase_add_checked_fixture(route, setup, teardown);
	tcase_add_test(route, unknown_paths_are_404);
	tcase_add_test(route, wrong_methods_are_405_with_allow);
	tcase_add_test(route, head_is_routed_to_get);
	tcase_add_test(route, path_parameters_are_captured);
	tcase_add_test(route, query_arguments_are_parsed);
	tcase_add_test(route, query_arguments_without_a_value);
	tcase_add_test(route, malformed_route_templates_are_refused);
	suite_add_tcase(s, route);

	tcase_add_checked_fixture(pipeline, setup, teardown);
	tcase_add_test(pipeline, sane_request_ids_are_echoed);
	tcase_add_test(pipeline, bad_request_ids_are_replaced);
	tcase_add_test(pipeline, every_response_has_the_security_headers);
	tcase_add_test(pipeline, success_responses_are_json);
	tcase_add_test(pipeline, problem_documents_have_every_member);
	tcase_add_test(pipeline, problem_documents_survive_odd_paths);
	tcase_add_test(pipeline, bodies_must_be_json);
	tcase_add_test(pipeline, malformed_json_is_400);
	tcase_add_test(pipeline, nesting_is_limited);
	tcase_add_test(pipeline, body_routes_need_a_body);
	tcase_add_test(pipeline, bodies_over_the_limit_are_413);
	suite_add_tcase(s, pipeline);

	tcase_add_checked_fixture(auth, setup, teardown);
	tcase_add_test(auth, missing_or_bad_tokens_are_401);
	tcase_add_test(auth, roles_decide_access);
	tcase_add_test(auth, second_key_is_accepted_for_rotation);
	tcase_add_test(auth, handlers_see_the_claims);
	tcase_add_test(auth, tokens_are_checked_before_bodies);
	suite_add_tcase(s, auth);

	tcase_add_checked_fixture(result, setup, teardown);
	tcase_add_test(result, validation_errors_are_422_with_fields);
	tcase_add_test(result, unavailable_is_503_with_retry_after);
	tcase_add_test(result, handler_that_sets_nothing_is_500);
	tcase_add_test(result, handler_problems_and_codes);
	tcase_add_test(result, problem_returns_the_matching_code);
	suite_add_tcase(s, result);

	tcase_add_checked_fixture(helpers, setup, teardown);
	tcase_add_test(helpers, response_headers);
	tcase_add_test(helpers, request_headers_and_memory);
	tcase_add_test(helpers, json_string_helper);
	tcase_add_test(helpers, json_string_messages);
	tcase_add_test(helpers, json_integer_helper);
	tcase_add_test(helpers, query_int_helper);
	tcase_add_test(helpers, rate_limits_in_the_pipeline);
	tcase_add_test(helpers, rate_limit_off_sends_no_headers);
	suite_add_tcase(s, helpers);
	return s;
}
