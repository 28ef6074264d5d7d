/*
 * test_faults.c - unit tests for the fault registry (faults.c), its
 * documents (faults_spec.c) and its routes (faults_admin.c): every kind
 * read and refused, the /admin/faults routes driven through
 * svc_http_handle() beside a few routes of a pretend service (auth, 422s
 * that change nothing, replace and clear), expiry on a fake clock, and
 * each hook - routes slowed and failed, upstream calls failed or timed
 * out, pauses and duplicates - with fake sleep and dice, so no test waits.
 * The modules the hooks sit in are left to the integration tests
 * (tests/integration/test_faults.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults_internal.h"
#include "svc/err.h"
#include "svc/jwt.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/util.h"
#include "unit.h"

#define MAX_BODY 65536

static const unsigned char key[] = "faults-unit-test-key-0123456789abcdefgh";

/* The fake environment: a clock, the sleeps asked for, the dice. */
static struct {
	long long now;
	long long slept; /* ms asked for in total */
	int sleeps;
	double dice;
	int clock_reads;
} fake;

static long long
fake_now(void *arg)
{
	(void)arg;
	fake.clock_reads++;
	return fake.now;
}

static void
fake_sleep(void *arg, long long ms)
{
	(void)arg;
	fake.slept += ms;
	fake.sleeps++;
}

static double
fake_dice(void *arg)
{
	(void)arg;
	return fake.dice;
}

static const struct svc_faults_env env = { fake_now, fake_sleep, fake_dice,
					   NULL };

static int
h_ok(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_json(res, 200, json_object());
}

/* The pretend service's own routes: what faults may target. */
static const struct svc_route service_routes[] = {
	{ "GET", "/items", h_ok, 0 },
	{ "GET", "/items/{id}", h_ok, 0 },
	{ "DELETE", "/items/{id}", h_ok, 0 },
	{ 0 },
};

static const char *const stock_events[] = { "stock.changed", NULL };

static const struct svc_subscription subscriptions[] = {
	{ "svc.stock", stock_events, NULL },
	{ "svc.orders", stock_events, NULL },
	{ 0 },
};

static struct svc_route routes[16];
static struct svc_http *http;
static char log_path[] = "/tmp/microshop-unit-faults-XXXXXX";
static int log_fd = -1;

/* Service routes, an operational one, then /admin/faults. */
static void
build_routes(void)
{
	int n = 0;

	for (int i = 0; service_routes[i].method != NULL; i++)
		routes[n++] = service_routes[i];
	routes[n++] =
		(struct svc_route){ "GET", "/health", h_ok, SVC_ROUTE_OPS };
	for (int i = 0; svc_faults_routes[i].method != NULL; i++)
		routes[n++] = svc_faults_routes[i];
	routes[n] = (struct svc_route){ 0 };
}

static void
start(bool relay, bool consumers)
{
	const struct svc_faults_config cfg = {
		.enabled = true,
		.routes = service_routes,
		.subscriptions = consumers ? subscriptions : NULL,
		.relay = relay,
	};

	svc_faults_reset();
	svc_faults_set_env(&env);
	ck_assert_int_eq(svc_faults_start(&cfg), SVC_OK);
	svc__faults_add_upstream("products");
	svc__faults_add_upstream("inventory");
}

static void
setup(void)
{
	const struct svc_http_config cfg = {
		.max_body = MAX_BODY,
		.max_json_depth = 8,
		.jwt_key = key,
		.jwt_key_len = sizeof(key) - 1,
		.jwt_leeway = 30,
	};

	memset(&fake, 0, sizeof(fake));
	fake.now = 1000000;
	fake.dice = 0.5;
	log_fd = mkstemp(log_path);
	ck_assert_int_ge(log_fd, 0);
	svc_log_init("unit-faults", SVC_LOG_INFO, log_fd);
	build_routes();
	http = svc_http_new(routes, &cfg);
	ck_assert_ptr_nonnull(http);
	start(true, true);
}

static void
teardown(void)
{
	svc_faults_reset();
	svc_http_free(http);
	http = NULL;
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(log_fd);
	unlink(log_path);
	strcpy(log_path, "/tmp/microshop-unit-faults-XXXXXX");
}

/* --- helpers --- */

static const char *
bearer(const char *role)
{
	static char buf[600];

	memcpy(buf, "Bearer ", 7);
	ck_assert_int_eq(svc_jwt_mint("ops-1", role, svc_time_s(), 600, key,
				      sizeof(key) - 1, buf + 7,
				      sizeof(buf) - 7),
			 SVC_OK);
	return buf;
}

/* One request; body may be NULL, auth NULL for none. */
static struct svc_res *
request(const char *method, const char *path, const char *body,
	const char *auth)
{
	struct svc_req *req = svc_req_new(method, path);
	struct svc_res *res = svc_res_new();

	if (body != NULL) {
		svc_req_add_header(req, "Content-Type", "application/json");
		ck_assert_int_eq(
			svc_req_append_body(req, body, strlen(body), MAX_BODY),
			SVC_OK);
	}
	if (auth != NULL)
		svc_req_add_header(req, "Authorization", auth);
	svc_http_handle(http, req, res);
	svc_req_free(req);
	return res;
}

static struct svc_res *
admin(const char *method, const char *path, const char *body)
{
	return request(method, path, body, bearer("admin"));
}

/* The status of one admin request, freeing the response. */
static int
admin_status(const char *method, const char *path, const char *body)
{
	struct svc_res *res = admin(method, path, body);
	int status = svc_res_status(res);

	svc_res_free(res);
	return status;
}

static json_t *
body_json(const struct svc_res *res)
{
	size_t len;
	const char *body = svc_res_body(res, &len);
	json_t *j = json_loadb(body, len, 0, NULL);

	ck_assert_msg(j != NULL, "not JSON: %.*s", (int)len, body);
	return j;
}

/* The active faults' count, as GET /admin/faults says. */
static size_t
active(void)
{
	struct svc_res *res = admin("GET", "/admin/faults", NULL);
	json_t *doc;
	size_t n;

	ck_assert_int_eq(svc_res_status(res), 200);
	doc = body_json(res);
	n = json_array_size(json_object_get(doc, "faults"));
	json_decref(doc);
	svc_res_free(res);
	return n;
}

/* Whether a 422's errors name field; fails unless res is a 422. */
static bool
names_field(const struct svc_res *res, const char *field)
{
	json_t *doc = body_json(res), *e;
	bool found = false;
	size_t i;

	ck_assert_int_eq(svc_res_status(res), 422);
	json_array_foreach(json_object_get(doc, "errors"), i, e)
	{
		const char *f = json_string_value(json_object_get(e, "field"));

		found = found || (f != NULL && strcmp(f, field) == 0);
	}
	json_decref(doc);
	return found;
}

/* PUT /admin/faults/{name} of body must be a 422 naming field. */
static void
refused(const char *name, const char *body, const char *field)
{
	char path[128];
	struct svc_res *res;

	snprintf(path, sizeof(path), "/admin/faults/%s", name);
	res = admin("PUT", path, body);
	ck_assert_msg(names_field(res, field), "%s: %s not named in %s", body,
		      field, svc_res_body(res, NULL));
	svc_res_free(res);
}

/* Reads doc into f, expecting it to be valid. */
static void
parse_ok(const char *doc, struct svc_fault *f)
{
	const char *upstreams[SVC_FAULTS_MAX_UPSTREAMS];
	struct svc_fault_targets t;
	struct svc_res *res = svc_res_new();
	json_t *j = json_loads(doc, 0, NULL);

	svc__faults_targets(&t, upstreams);
	ck_assert_ptr_nonnull(j);
	ck_assert_msg(svc__faults_parse(j, "f", "", &t, f, res),
		      "%s: %d errors", doc, svc_res_field_errors(res));
	json_decref(j);
	svc_res_free(res);
}

static double
metric(const char *series)
{
	char *text = svc_metrics_render(NULL, NULL);
	char *at = strstr(text, series);
	double v = at != NULL ? strtod(at + strlen(series), NULL) : -1;

	free(text);
	return v;
}

static bool
logged(const char *text)
{
	char buf[65536];
	ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, text) != NULL;
}

/* --- documents --- */

START_TEST(every_kind_reads_with_its_defaults)
{
	struct svc_fault f;

	parse_ok("{\"kind\":\"http_latency\",\"ms\":250}", &f);
	ck_assert_int_eq(f.kind, SVC_FAULT_HTTP_LATENCY);
	ck_assert(f.fixed_ms);
	ck_assert_int_eq(f.min_ms, 250);
	ck_assert_int_eq(f.max_ms, 250);
	ck_assert_str_eq(f.target, "");
	ck_assert_int_eq(f.ttl_ms, 300000);

	parse_ok("{\"kind\":\"http_latency\",\"target\":\"/items/{id}\","
		 "\"min_ms\":10,\"max_ms\":20,\"ttl\":1.5}",
		 &f);
	ck_assert(!f.fixed_ms);
	ck_assert_int_eq(f.min_ms, 10);
	ck_assert_int_eq(f.max_ms, 20);
	ck_assert_str_eq(f.target, "/items/{id}");
	ck_assert_int_eq(f.ttl_ms, 1500);

	parse_ok("{\"kind\":\"http_error\"}", &f);
	ck_assert_int_eq(f.status, 503);
	ck_assert(f.rate == 1.0);
	parse_ok("{\"kind\":\"http_error\",\"rate\":0.25,\"status\":500}", &f);
	ck_assert_int_eq(f.status, 500);
	ck_assert(f.rate == 0.25);

	parse_ok("{\"kind\":\"upstream_error\",\"target\":\"inventory\"}", &f);
	ck_assert_int_eq(f.status, 0);
	parse_ok("{\"kind\":\"upstream_error\",\"target\":\"products\","
		 "\"status\":503,\"rate\":0}",
		 &f);
	ck_assert_int_eq(f.status, 503);
	ck_assert(f.rate == 0.0);
	parse_ok("{\"kind\":\"upstream_latency\",\"target\":\"products\","
		 "\"ms\":30000,\"ttl\":3600}",
		 &f);
	ck_assert_int_eq(f.ttl_ms, 3600000);

	parse_ok("{\"kind\":\"relay_pause\",\"target\":null}", &f);
	parse_ok("{\"kind\":\"consumer_pause\"}", &f);
	parse_ok("{\"kind\":\"consumer_pause\",\"target\":\"svc.stock\"}", &f);
	parse_ok("{\"kind\":\"duplicate_delivery\",\"rate\":1,\"name\":\"f\"}",
		 &f);
	ck_assert_str_eq(f.name, "f");
}
END_TEST

START_TEST(bad_values_are_named)
{
	static const char *const cases[][2] = {
		{ "{\"kind\":\"meteor\"}", "kind" },
		{ "{\"ms\":5}", "kind" },
		{ "{\"kind\":\"http_latency\",\"ms\":5,\"rate\":1}", "rate" },
		{ "{\"kind\":\"http_latency\",\"ms\":-1}", "ms" },
		{ "{\"kind\":\"http_latency\",\"ms\":30001}", "ms" },
		{ "{\"kind\":\"http_latency\",\"ms\":1.5}", "ms" },
		{ "{\"kind\":\"http_latency\"}", "ms" },
		{ "{\"kind\":\"http_latency\",\"ms\":5,\"min_ms\":1,"
		  "\"max_ms\":9}",
		  "ms" },
		{ "{\"kind\":\"http_latency\",\"min_ms\":5}", "max_ms" },
		{ "{\"kind\":\"http_latency\",\"min_ms\":9,\"max_ms\":5}",
		  "max_ms" },
		{ "{\"kind\":\"http_latency\",\"ms\":5,\"target\":\"/health\"}",
		  "target" },
		{ "{\"kind\":\"http_latency\",\"ms\":5,"
		  "\"target\":\"/admin/faults\"}",
		  "target" },
		{ "{\"kind\":\"http_error\",\"target\":\"/items/1\"}",
		  "target" },
		{ "{\"kind\":\"http_error\",\"rate\":1.01}", "rate" },
		{ "{\"kind\":\"http_error\",\"rate\":-0.1}", "rate" },
		{ "{\"kind\":\"http_error\",\"rate\":\"half\"}", "rate" },
		{ "{\"kind\":\"http_error\",\"status\":502}", "status" },
		{ "{\"kind\":\"http_error\",\"ttl\":0}", "ttl" },
		{ "{\"kind\":\"http_error\",\"ttl\":3601}", "ttl" },
		{ "{\"kind\":\"http_error\",\"ttl\":\"5m\"}", "ttl" },
		{ "{\"kind\":\"upstream_error\"}", "target" },
		{ "{\"kind\":\"upstream_error\",\"target\":\"payments\"}",
		  "target" },
		{ "{\"kind\":\"upstream_error\",\"target\":\"products\","
		  "\"status\":404}",
		  "status" },
		{ "{\"kind\":\"upstream_latency\",\"target\":7,\"ms\":1}",
		  "target" },
		{ "{\"kind\":\"relay_pause\",\"target\":\"outbox\"}",
		  "target" },
		{ "{\"kind\":\"consumer_pause\",\"target\":\"svc.nope\"}",
		  "target" },
		{ "{\"kind\":\"duplicate_delivery\",\"ms\":1}", "ms" },
		{ "{\"kind\":\"relay_pause\",\"name\":\"other\"}", "name" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refused("f", cases[i][0], cases[i][1]);
	refused("bad%20name", "{\"kind\":\"relay_pause\"}", "name");
	ck_assert_int_eq(active(), 0);
}
END_TEST

START_TEST(kinds_this_process_cannot_have_are_refused)
{
	start(false, false);
	refused("f", "{\"kind\":\"relay_pause\"}", "kind");
	refused("f", "{\"kind\":\"consumer_pause\"}", "kind");
	refused("f", "{\"kind\":\"duplicate_delivery\"}", "kind");
	svc_faults_reset();
	svc_faults_set_env(&env);
	ck_assert_int_eq(svc_faults_start(&(struct svc_faults_config){
				 .enabled = true,
				 .routes = service_routes,
			 }),
			 SVC_OK);
	refused("f", "{\"kind\":\"upstream_error\",\"target\":\"products\"}",
		"kind");
	ck_assert_int_eq(active(), 0);
}
END_TEST

START_TEST(names_are_checked)
{
	ck_assert(svc__faults_name_valid("slow-products.v2_1"));
	ck_assert(!svc__faults_name_valid(""));
	ck_assert(!svc__faults_name_valid(NULL));
	ck_assert(!svc__faults_name_valid("a b"));
	ck_assert(!svc__faults_name_valid("a/b"));
	ck_assert(svc__faults_name_valid(
		"0123456789012345678901234567890123456789012345678901234567890123"));
	ck_assert(!svc__faults_name_valid(
		"01234567890123456789012345678901234567890123456789012345678901234"));
}
END_TEST

/* --- the routes --- */

START_TEST(tokens_and_roles_are_required)
{
	struct svc_res *res = request("GET", "/admin/faults", NULL, NULL);

	ck_assert_int_eq(svc_res_status(res), 401);
	svc_res_free(res);
	res = request("PUT", "/admin/faults/x", "{\"kind\":\"relay_pause\"}",
		      bearer("service"));
	ck_assert_int_eq(svc_res_status(res), 403);
	svc_res_free(res);
	res = request("DELETE", "/admin/faults", NULL, "Bearer nope");
	ck_assert_int_eq(svc_res_status(res), 401);
	svc_res_free(res);
	ck_assert_int_eq(active(), 0);
}
END_TEST

START_TEST(set_show_replace_and_clear_one)
{
	struct svc_res *res;
	json_t *doc;

	ck_assert_int_eq(admin_status("PUT", "/admin/faults/slow",
				      "{\"kind\":\"http_latency\",\"ms\":100,"
				      "\"target\":\"/items/{id}\",\"ttl\":60}"),
			 201);
	res = admin("GET", "/admin/faults/slow", NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	doc = body_json(res);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "kind")),
			 "http_latency");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "target")),
			 "/items/{id}");
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "ms")), 100);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "ttl")), 60);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "set_by")),
			 "ops-1");
	ck_assert(json_number_value(json_object_get(doc, "expires_in")) ==
		  60.0);
	ck_assert_ptr_nonnull(json_object_get(doc, "expires_at"));
	json_decref(doc);
	svc_res_free(res);
	/* The same name again replaces it: 200, still one fault. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/slow",
				      "{\"kind\":\"http_error\"}"),
			 200);
	ck_assert_int_eq(active(), 1);
	ck_assert_int_eq(admin_status("DELETE", "/admin/faults/slow", NULL),
			 204);
	ck_assert_int_eq(admin_status("DELETE", "/admin/faults/slow", NULL),
			 404);
	ck_assert_int_eq(admin_status("GET", "/admin/faults/slow", NULL), 404);
	ck_assert_int_eq(active(), 0);
	ck_assert(logged("\"msg\":\"fault set\""));
	ck_assert(logged("\"by\":\"ops-1\""));
	ck_assert(logged("\"msg\":\"fault cleared\""));
}
END_TEST

START_TEST(errors_change_nothing)
{
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/keep",
				      "{\"kind\":\"relay_pause\"}"),
			 201);
	/* 400, 415, 422: the fault stays as it was, nothing is added. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/keep", "{\"kind\""),
			 400);
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/keep", "[]"), 400);
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/keep",
				      "{\"kind\":\"http_error\",\"rate\":2}"),
			 422);
	ck_assert_int_eq(admin_status("PUT", "/admin/faults",
				      "{\"faults\":[{\"name\":\"a\","
				      "\"kind\":\"relay_pause\"},{\"name\":"
				      "\"b\",\"kind\":\"nope\"}]}"),
			 422);
	{
		struct svc_req *req = svc_req_new("PUT", "/admin/faults/keep");
		struct svc_res *res = svc_res_new();
		const char *body = "kind=relay_pause";

		svc_req_add_header(req, "Content-Type", "text/plain");
		svc_req_add_header(req, "Authorization", bearer("admin"));
		svc_req_append_body(req, body, strlen(body), MAX_BODY);
		svc_http_handle(http, req, res);
		ck_assert_int_eq(svc_res_status(res), 415);
		svc_res_free(res);
		svc_req_free(req);
	}
	ck_assert_int_eq(active(), 1);
	ck_assert_int_eq(admin_status("GET", "/admin/faults/a", NULL), 404);
}
END_TEST

START_TEST(the_whole_set_is_replaced)
{
	struct svc_res *res;
	json_t *doc;

	ck_assert_int_eq(admin_status("PUT", "/admin/faults/old",
				      "{\"kind\":\"relay_pause\"}"),
			 201);
	res = admin("PUT", "/admin/faults",
		    "{\"faults\":[{\"name\":\"a\",\"kind\":\"consumer_pause\","
		    "\"target\":\"svc.stock\"},{\"name\":\"b\",\"kind\":"
		    "\"upstream_error\",\"target\":\"inventory\"}]}");
	ck_assert_int_eq(svc_res_status(res), 200);
	doc = body_json(res);
	ck_assert_int_eq(json_array_size(json_object_get(doc, "faults")), 2);
	/* What faults may target here comes with the list. */
	ck_assert_int_eq(json_array_size(json_object_get(
				 json_object_get(doc, "targets"), "routes")),
			 2);
	ck_assert_int_eq(json_array_size(json_object_get(
				 json_object_get(doc, "targets"), "upstreams")),
			 2);
	ck_assert(json_is_true(
		json_object_get(json_object_get(doc, "targets"), "relay")));
	json_decref(doc);
	svc_res_free(res);
	ck_assert_int_eq(admin_status("GET", "/admin/faults/old", NULL), 404);
	/* Names are unique within a set; unknown members are refused. */
	res = admin("PUT", "/admin/faults",
		    "{\"faults\":[{\"name\":\"a\",\"kind\":\"relay_pause\"},"
		    "{\"name\":\"a\",\"kind\":\"relay_pause\"}]}");
	ck_assert(names_field(res, "faults[1]"));
	svc_res_free(res);
	res = admin("PUT", "/admin/faults", "{\"fault\":[]}");
	ck_assert(names_field(res, "fault"));
	svc_res_free(res);
	ck_assert_int_eq(active(), 2);
	/* An empty set clears everything, as DELETE does. */
	ck_assert_int_eq(
		admin_status("PUT", "/admin/faults", "{\"faults\":[]}"), 200);
	ck_assert_int_eq(active(), 0);
}
END_TEST

START_TEST(at_most_so_many_faults)
{
	char path[64];

	for (int i = 0; i < SVC_FAULTS_MAX; i++) {
		snprintf(path, sizeof(path), "/admin/faults/f%d", i);
		ck_assert_int_eq(
			admin_status("PUT", path, "{\"kind\":\"relay_pause\"}"),
			201);
	}
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/one-more",
				      "{\"kind\":\"relay_pause\"}"),
			 409);
	/* Replacing one of them is fine. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/f0",
				      "{\"kind\":\"http_error\"}"),
			 200);
	ck_assert_int_eq(active(), SVC_FAULTS_MAX);
	ck_assert_int_eq(admin_status("DELETE", "/admin/faults", NULL), 204);
	ck_assert_int_eq(active(), 0);
}
END_TEST

/* --- expiry --- */

START_TEST(faults_expire_on_their_own)
{
	json_t *health;

	ck_assert_int_eq(admin_status("PUT", "/admin/faults/short",
				      "{\"kind\":\"relay_pause\",\"ttl\":1}"),
			 201);
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/long",
				      "{\"kind\":\"http_error\",\"ttl\":2}"),
			 201);
	ck_assert(svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, false));
	fake.now += 999;
	ck_assert_int_eq(svc_faults_expire(), 0);
	ck_assert(svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, false));
	fake.now += 1;
	/* The hook heals it before it looks. */
	ck_assert(!svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, false));
	ck_assert_int_eq(svc_faults_expire(), 0);
	ck_assert(logged("\"msg\":\"fault expired\""));
	health = svc_faults_health();
	ck_assert_int_eq(json_array_size(health), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(health, 0), "name")),
			 "long");
	json_decref(health);
	fake.now += 1000;
	ck_assert_int_eq(svc_faults_expire(), 1);
	ck_assert_int_eq(active(), 0);
}
END_TEST

START_TEST(metrics_follow_the_faults)
{
	const char *act = "faults_active{kind=\"http_error\","
			  "target=\"/items\"} ";
	const char *inj = "faults_injected_total{kind=\"http_error\","
			  "target=\"/items\"} ";
	struct svc_res *res;

	ck_assert_int_eq(admin_status("PUT", "/admin/faults/e",
				      "{\"kind\":\"http_error\","
				      "\"target\":\"/items\",\"ttl\":1}"),
			 201);
	ck_assert(metric(act) == 1);
	res = request("GET", "/items", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 503);
	svc_res_free(res);
	ck_assert(metric(inj) == 1);
	fake.now += 1000;
	svc_faults_expire();
	ck_assert(metric(act) == 0);
	ck_assert(metric(inj) == 1);
}
END_TEST

/* --- the hooks --- */

START_TEST(latency_slows_only_its_route)
{
	struct svc_res *res;

	ck_assert_int_eq(admin_status("PUT", "/admin/faults/slow",
				      "{\"kind\":\"http_latency\","
				      "\"target\":\"/items/{id}\","
				      "\"min_ms\":100,\"max_ms\":200}"),
			 201);
	res = request("GET", "/items", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
	ck_assert_int_eq(fake.sleeps, 0);
	fake.dice = 0.5;
	res = request("DELETE", "/items/7", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
	ck_assert_int_eq(fake.sleeps, 1);
	ck_assert_int_eq(fake.slept, 150);
	fake.dice = 0.999999;
	res = request("GET", "/items/7", NULL, NULL);
	svc_res_free(res);
	ck_assert_int_eq(fake.slept, 150 + 200);
	/* Operational routes and /admin/faults itself: never. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/slow",
				      "{\"kind\":\"http_latency\",\"ms\":50}"),
			 200);
	fake.sleeps = 0;
	res = request("GET", "/health", NULL, NULL);
	svc_res_free(res);
	ck_assert_int_eq(admin_status("GET", "/admin/faults", NULL), 200);
	ck_assert_int_eq(fake.sleeps, 0);
	res = request("GET", "/items", NULL, NULL);
	svc_res_free(res);
	ck_assert_int_eq(fake.sleeps, 1);
}
END_TEST

START_TEST(errors_answer_with_a_problem)
{
	struct svc_res *res;
	json_t *doc;

	ck_assert_int_eq(admin_status("PUT", "/admin/faults/down",
				      "{\"kind\":\"http_error\"}"),
			 201);
	res = request("GET", "/items/1", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 503);
	ck_assert_str_eq(svc_res_get_header(res, "Content-Type"),
			 "application/problem+json");
	ck_assert_ptr_nonnull(svc_res_get_header(res, "Retry-After"));
	doc = body_json(res);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "error")),
			 "fault_injected");
	json_decref(doc);
	svc_res_free(res);
	/* Never on the routes that look and undo. */
	res = request("GET", "/health", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
	ck_assert_int_eq(admin_status("GET", "/admin/faults", NULL), 200);
	/* A 500 when asked; the dice decide with a rate below 1. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/down",
				      "{\"kind\":\"http_error\",\"status\":500,"
				      "\"rate\":0.5}"),
			 200);
	fake.dice = 0.49;
	res = request("GET", "/items", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 500);
	ck_assert_ptr_null(svc_res_get_header(res, "Retry-After"));
	svc_res_free(res);
	fake.dice = 0.5;
	res = request("GET", "/items", NULL, NULL);
	ck_assert_int_eq(svc_res_status(res), 200);
	svc_res_free(res);
}
END_TEST

START_TEST(real_dice_follow_the_rate)
{
	int fired = 0;

	svc_faults_set_env(
		&(struct svc_faults_env){ fake_now, fake_sleep, NULL, NULL });
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/half",
				      "{\"kind\":\"duplicate_delivery\","
				      "\"rate\":0.5}"),
			 201);
	for (int i = 0; i < 2000; i++)
		fired += svc__faults_duplicate("svc.stock");
	/* Binomial(2000, 0.5): far outside these only by a broken die. */
	ck_assert_int_gt(fired, 800);
	ck_assert_int_lt(fired, 1200);
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/half",
				      "{\"kind\":\"duplicate_delivery\","
				      "\"rate\":0}"),
			 200);
	for (int i = 0; i < 1000; i++)
		ck_assert(!svc__faults_duplicate("svc.stock"));
	svc_faults_set_env(&env);
}
END_TEST

START_TEST(upstream_calls_fail_or_time_out)
{
	struct svc_client_response out = { 0 };
	long long timeout = 1000;
	int rc = 0;

	ck_assert(!svc__faults_upstream("inventory", &timeout, &rc, &out));
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/refused",
				      "{\"kind\":\"upstream_error\","
				      "\"target\":\"inventory\"}"),
			 201);
	ck_assert(!svc__faults_upstream("products", &timeout, &rc, &out));
	ck_assert(svc__faults_upstream("inventory", &timeout, &rc, &out));
	ck_assert_int_eq(rc, SVC_EUNAVAIL);
	ck_assert_int_eq(out.status, 0);
	ck_assert_ptr_nonnull(strstr(out.error, "refused"));
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/refused",
				      "{\"kind\":\"upstream_error\","
				      "\"target\":\"inventory\","
				      "\"status\":503}"),
			 200);
	memset(&out, 0, sizeof(out));
	ck_assert(svc__faults_upstream("inventory", &timeout, &rc, &out));
	ck_assert_int_eq(rc, SVC_OK);
	ck_assert_int_eq(out.status, 503);
	ck_assert_int_eq(admin_status("DELETE", "/admin/faults", NULL), 204);

	/* Slower than the attempt's timeout: the whole timeout, then one. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/slow",
				      "{\"kind\":\"upstream_latency\","
				      "\"target\":\"products\",\"ms\":1500}"),
			 201);
	memset(&out, 0, sizeof(out));
	ck_assert(svc__faults_upstream("products", &timeout, &rc, &out));
	ck_assert_int_eq(rc, SVC_ETIMEOUT);
	ck_assert_int_eq(fake.slept, 1000);
	/* Faster: the delay, then the real call with what is left. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/slow",
				      "{\"kind\":\"upstream_latency\","
				      "\"target\":\"products\",\"ms\":300}"),
			 200);
	ck_assert(!svc__faults_upstream("products", &timeout, &rc, &out));
	ck_assert_int_eq(fake.slept, 1300);
	ck_assert_int_eq(timeout, 700);
}
END_TEST

START_TEST(pauses_hold_their_targets)
{
	struct svc_res *res;
	json_t *doc;

	ck_assert(!svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, true));
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/q",
				      "{\"kind\":\"consumer_pause\","
				      "\"target\":\"svc.stock\"}"),
			 201);
	ck_assert(svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, "svc.stock",
				     true));
	ck_assert(!svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, "svc.orders",
				      true));
	ck_assert(!svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, true));
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/all",
				      "{\"kind\":\"consumer_pause\"}"),
			 201);
	ck_assert(svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, "svc.orders",
				     false));
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/relay",
				      "{\"kind\":\"relay_pause\"}"),
			 201);
	ck_assert(svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, true));
	/* Only the counted looks are counted. */
	res = admin("GET", "/admin/faults/q", NULL);
	doc = body_json(res);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "injected")),
			 1);
	json_decref(doc);
	svc_res_free(res);
	ck_assert_int_eq(admin_status("DELETE", "/admin/faults", NULL), 204);
	ck_assert(!svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, "svc.stock",
				      false));
}
END_TEST

START_TEST(no_fault_costs_no_clock)
{
	struct svc_client_response out = { 0 };
	long long timeout = 1000;
	struct svc_res *res;
	int rc, reads;

	/* A fault of another kind is active: the hooks still skip. */
	ck_assert_int_eq(admin_status("PUT", "/admin/faults/relay",
				      "{\"kind\":\"relay_pause\"}"),
			 201);
	reads = fake.clock_reads;
	ck_assert(!svc__faults_upstream("products", &timeout, &rc, &out));
	ck_assert(!svc__faults_duplicate("svc.stock"));
	ck_assert(!svc__faults_paused(SVC_FAULT_CONSUMER_PAUSE, "svc.stock",
				      true));
	res = request("GET", "/items", NULL, NULL);
	svc_res_free(res);
	ck_assert_int_eq(fake.clock_reads, reads);
}
END_TEST

START_TEST(off_means_nothing_can_be_set)
{
	struct svc_fault f;

	parse_ok("{\"kind\":\"relay_pause\"}", &f);
	svc_faults_reset();
	ck_assert(!svc_faults_enabled());
	ck_assert_int_eq(svc__faults_set(&f, 1, false, "x", NULL),
			 SVC_ENOTFOUND);
	ck_assert(!svc__faults_paused(SVC_FAULT_RELAY_PAUSE, NULL, false));
}
END_TEST

Suite *
faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *docs = tcase_create("documents");
	TCase *routes_tc = tcase_create("routes");
	TCase *expiry = tcase_create("expiry");
	TCase *hooks = tcase_create("hooks");

	tcase_add_checked_fixture(docs, setup, teardown);
	tcase_add_test(docs, every_kind_reads_with_its_defaults);
	tcase_add_test(docs, bad_values_are_named);
	tcase_add_test(docs, kinds_this_process_cannot_have_are_refused);
	tcase_add_test(docs, names_are_checked);
	suite_add_tcase(s, docs);

	tcase_add_checked_fixture(routes_tc, setup, teardown);
	tcase_add_test(routes_tc, tokens_and_roles_are_required);
	tcase_add_test(routes_tc, set_show_replace_and_clear_one);
	tcase_add_test(routes_tc, errors_change_nothing);
	tcase_add_test(routes_tc, the_whole_set_is_replaced);
	tcase_add_test(routes_tc, at_most_so_many_faults);
	suite_add_tcase(s, routes_tc);

	tcase_add_checked_fixture(expiry, setup, teardown);
	tcase_add_test(expiry, faults_expire_on_their_own);
	tcase_add_test(expiry, metrics_follow_the_faults);
	suite_add_tcase(s, expiry);

	tcase_add_checked_fixture(hooks, setup, teardown);
	tcase_add_test(hooks, latency_slows_only_its_route);
	tcase_add_test(hooks, errors_answer_with_a_problem);
	tcase_add_test(hooks, real_dice_follow_the_rate);
	tcase_add_test(hooks, upstream_calls_fail_or_time_out);
	tcase_add_test(hooks, pauses_hold_their_targets);
	tcase_add_test(hooks, no_fault_costs_no_clock);
	tcase_add_test(hooks, off_means_nothing_can_be_set);
	suite_add_tcase(s, hooks);
	return s;
}
