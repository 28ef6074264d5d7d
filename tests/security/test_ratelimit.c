/*
 * test_ratelimit.c - the rate limiter in a real products process, started
 * here on a spare port with RATE_LIMIT=5/second (the suite's services run
 * with a limit no test reaches): a client sending twice that gets 429s with
 * Retry-After and the RateLimit-* headers, and gets through again once it
 * waited; /health and the other operational routes are never limited; a
 * bearer token's subject and a service token each have a budget of their
 * own; forged tokens spend their address's RATE_LIMIT_AUTH_FAILURES budget
 * without locking out valid ones; refusals are counted in
 * http_rate_limited_total. The arithmetic is
 * tested in tests/unit/test_ratelimit.c, the pipeline in test_http.c.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../integration/integ.h"

#define PORT_INDEX 11 /* spare_port(): see integ.h */

static int pid = -1;
static char base[64];
static char log_path[64];

static void
setup(void)
{
	static const char *const env[] = { "RATE_LIMIT=5/second",
					   "RATE_LIMIT_AUTH_FAILURES=3/minute",
					   NULL };
	int port = spare_port(PORT_INDEX);

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	pid = spawn_service("products", port, env, log_path);
}

static void
teardown(void)
{
	if (pid > 0)
		ck_assert_int_eq(stop_service(pid), 0);
	pid = -1;
}

static long long
header_int(const struct http_resp *r, const char *name)
{
	char *v = http_header(r, name);
	long long n;

	ck_assert_msg(v != NULL, "no %s header (status %ld)", name, r->status);
	n = atoll(v);
	ck_assert_msg(strspn(v, "0123456789") == strlen(v) && v[0] != '\0',
		      "%s is not an integer: \"%s\"", name, v);
	free(v);
	return n;
}

static struct http_resp *
list(const char *auth)
{
	const char *headers[] = { auth, NULL };

	return http_do("GET", url(base, "/api/v1/products?limit=1"),
		       auth != NULL ? headers : NULL, NULL);
}

/* Sends until a 429 comes (at most n); returns it, or NULL. */
static struct http_resp *
exhaust(const char *auth, int n)
{
	for (int i = 0; i < n; i++) {
		struct http_resp *r = list(auth);

		if (r->status == 429)
			return r;
		ck_assert_int_eq(r->status, 200);
		http_free(r);
	}
	return NULL;
}

/*
 * Whether one of n quick GETs of path with headers is refused: the
 * address is spent, so a request that counts against it is refused at
 * once (n > 1 only covers a token refilled between two requests).
 */
static bool
refused_within(const char *path, const char *const *headers, int n, long other)
{
	for (int i = 0; i < n; i++) {
		struct http_resp *r =
			http_do("GET", url(base, "%s", path), headers, NULL);
		long status = r->status;

		http_free(r);
		if (status == 429)
			return true;
		ck_assert_int_eq(status, other);
	}
	return false;
}

START_TEST(twice_the_rate_is_limited)
{
	int ok = 0, limited = 0;
	struct http_resp *r;

	/* 10 a second for two seconds: the burst of 5, then half. */
	for (int i = 0; i < 20; i++) {
		r = list(NULL);
		ck_assert_msg(r->status == 200 || r->status == 429,
			      "status %ld", r->status);
		ck_assert_int_eq(header_int(r, "RateLimit-Limit"), 5);
		ck_assert_int_le(header_int(r, "RateLimit-Remaining"), 4);
		ck_assert_int_ge(header_int(r, "RateLimit-Reset"), 0);
		if (r->status == 429) {
			char *ct = http_header(r, "Content-Type");

			limited++;
			ck_assert_int_ge(header_int(r, "Retry-After"), 1);
			ck_assert_int_eq(header_int(r, "RateLimit-Remaining"),
					 0);
			ck_assert_str_eq(ct, "application/problem+json");
			free(ct);
			ck_assert_ptr_nonnull(r->json);
			ck_assert_str_eq(json_string_value(json_object_get(
						 r->json, "error")),
					 "rate_limited");
			ck_assert_int_eq(json_integer_value(json_object_get(
						 r->json, "status")),
					 429);
		} else {
			ok++;
		}
		http_free(r);
		pause_ms(100);
	}
	ck_assert_int_ge(ok, 5);
	ck_assert_int_ge(limited, 1);

	/* Retry-After is honest: after it, the client gets through. */
	r = exhaust(NULL, 50);
	ck_assert_ptr_nonnull(r);
	pause_ms((int)header_int(r, "Retry-After") * 1000);
	http_free(r);
	r = list(NULL);
	ck_assert_int_eq(r->status, 200);
	http_free(r);
}
END_TEST

START_TEST(operational_routes_are_never_limited)
{
	static const char *const paths[] = { "/health", "/health/live",
					     "/health/ready", "/metrics" };
	struct http_resp *r = exhaust(NULL, 50);

	ck_assert_ptr_nonnull(r);
	http_free(r);
	/* Unknown paths are not operational: they count. */
	ck_assert(refused_within("/nope", NULL, 3, 404));
	for (int i = 0; i < 40; i++) {
		r = http_do("GET", url(base, "%s", paths[i % 4]), NULL, NULL);
		ck_assert_int_eq(r->status, 200);
		ck_assert_ptr_null(http_header(r, "RateLimit-Limit"));
		http_free(r);
	}
}
END_TEST

START_TEST(tokens_have_their_own_budget)
{
	const char *service = auth_header("service");
	const char *admin = auth_header("admin");
	const char *bad[] = { "Authorization: Bearer not.a.token", NULL };
	struct http_resp *r = exhaust(NULL, 50);
	double refused;

	/* The address is spent ... */
	ck_assert_ptr_nonnull(r);
	http_free(r);
	/* ... an invalid token does not buy a new budget ... */
	ck_assert(refused_within("/api/v1/products?limit=1", bad, 3, 200));
	/* ... a valid one is its subject's: from the same address, fine. */
	r = list(admin);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(header_int(r, "RateLimit-Limit"), 5);
	http_free(r);
	/* Service tokens: ten times the client limit by default. */
	for (int i = 0; i < 20; i++) {
		r = list(service);
		ck_assert_int_eq(r->status, 200);
		ck_assert_int_eq(header_int(r, "RateLimit-Limit"), 50);
		http_free(r);
	}
	/* Spending the admin budget leaves the service's alone. */
	r = exhaust(admin, 50);
	ck_assert_ptr_nonnull(r);
	http_free(r);
	r = list(service);
	ck_assert_int_eq(r->status, 200);
	http_free(r);

	/* Every refusal so far was counted, by route template. */
	r = http_do("GET", url(base, "/metrics"), NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "# TYPE http_rate_limited_total "
					      "counter"));
	{
		const char *s = strstr(
			r->body,
			"http_rate_limited_total{route=\"/api/v1/products\"} ");

		ck_assert_ptr_nonnull(s);
		refused = strtod(strchr(s, ' ') + 1, NULL);
	}
	ck_assert(refused >= 3);
	http_free(r);
}
END_TEST

/*
 * RATE_LIMIT_AUTH_FAILURES=3/minute: three forged tokens from an address
 * get 401, the fourth 429 with Retry-After; a valid token from the same
 * address is still served.
 */
START_TEST(invalid_tokens_are_limited_per_address)
{
	static const char *const forged[] = {
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
		NULL
	};
	const char *admin[] = { auth_header("admin"), NULL };
	const char *path =
		"/api/v1/products/00000000-0000-4000-8000-000000000000";
	struct http_resp *r;

	for (int i = 0; i < 3; i++) {
		r = http_do("DELETE", url(base, "%s", path), forged, NULL);
		ck_assert_int_eq(r->status, 401);
		http_free(r);
	}
	r = http_do("DELETE", url(base, "%s", path), forged, NULL);
	ck_assert_int_eq(r->status, 429);
	ck_assert_int_ge(header_int(r, "Retry-After"), 1);
	ck_assert_ptr_nonnull(r->json);
	ck_assert_str_eq(json_string_value(json_object_get(r->json, "error")),
			 "rate_limited");
	http_free(r);
	/* The address is not locked out: a real token gets through. */
	r = http_do("DELETE", url(base, "%s", path), admin, NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
}
END_TEST

Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("products");

	/* A fresh process per test: each starts with full buckets. */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, twice_the_rate_is_limited);
	tcase_add_test(tc, operational_routes_are_never_limited);
	tcase_add_test(tc, tokens_have_their_own_budget);
	tcase_add_test(tc, invalid_tokens_are_limited_per_address);
	suite_add_tcase(s, tc);
	return s;
}
