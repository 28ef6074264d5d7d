/*
 * test_tracing.c - spans across the three services: one order placed with
 * a traceparent yields spans from products, inventory and orders that
 * share its trace id and form one tree under the caller's span - the
 * orders server span, its client calls, the products and inventory
 * server spans they reached, the relays' publish spans and, under them,
 * the consumer spans of order.created (at inventory) and
 * inventory.confirmed (at orders). A malformed traceparent
 * starts a new trace and fails nothing. Every log line of the order carries
 * its request id and trace id. The services export OTLP/HTTP
 * JSON to OTLP_PORT (scripts/test.sh); this file's receiver is a small
 * libmicrohttpd server that stores what it is sent - a stand-in for a
 * collector, which does nothing but receive.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"
#include "orders_fixture.h"
#include "svc/trace.h"
#include "svc/util.h"

#define WAIT_MS	  20000
#define MAX_SPANS 4096
#define TRACE	  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT	  "00f067aa0ba902b7"

struct span {
	char service[16];
	char trace[SVC_TRACE_ID_LEN + 1];
	char id[SVC_SPAN_ID_LEN + 1];
	char parent[SVC_SPAN_ID_LEN + 1];
	char name[96];
	char request_id[64];
	int kind;
};

static struct {
	pthread_mutex_t lock;
	struct span spans[MAX_SPANS];
	int n;
	int requests, bad;
} rx = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct MHD_Daemon *daemon_;

static const char *
attr(json_t *attrs, const char *key)
{
	size_t i;
	json_t *a;

	json_array_foreach(attrs, i, a)
	{
		const char *k = json_string_value(json_object_get(a, "key"));

		if (k != NULL && strcmp(k, key) == 0)
			return json_string_value(json_object_get(
				json_object_get(a, "value"), "stringValue"));
	}
	return NULL;
}

static void
copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* Stores the spans of one ExportTraceServiceRequest; false if malformed. */
static bool
store(const char *body, size_t len)
{
	json_t *req = json_loadb(body, len, 0, NULL), *rs;
	size_t i;
	bool ok = json_is_array(json_object_get(req, "resourceSpans"));

	json_array_foreach(json_object_get(req, "resourceSpans"), i, rs)
	{
		const char *service =
			attr(json_object_get(json_object_get(rs, "resource"),
					     "attributes"),
			     "service.name");
		json_t *ss;
		size_t j;

		json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
		{
			json_t *sp;
			size_t k;

			json_array_foreach(json_object_get(ss, "spans"), k, sp)
			{
				struct span *s;

				if (rx.n == MAX_SPANS)
					break;
				s = &rx.spans[rx.n++];
				copy(s->service, sizeof(s->service), service);
				copy(s->trace, sizeof(s->trace),
				     json_string_value(
					     json_object_get(sp, "traceId")));
				copy(s->id, sizeof(s->id),
				     json_string_value(
					     json_object_get(sp, "spanId")));
				copy(s->parent, sizeof(s->parent),
				     json_string_value(json_object_get(
					     sp, "parentSpanId")));
				copy(s->name, sizeof(s->name),
				     json_string_value(
					     json_object_get(sp, "name")));
				copy(s->request_id, sizeof(s->request_id),
				     attr(json_object_get(sp, "attributes"),
					  "request_id"));
				s->kind = (int)json_integer_value(
					json_object_get(sp, "kind"));
				ok = ok && strlen(s->trace) == 32 &&
				     strlen(s->id) == 16 &&
				     json_is_string(json_object_get(
					     sp, "startTimeUnixNano"));
			}
		}
	}
	json_decref(req);
	return ok;
}

struct upload {
	char *data;
	size_t len;
};

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *u,
	   const char *method, const char *version, const char *data,
	   size_t *size, void **state)
{
	struct upload *up = *state;
	struct MHD_Response *res;
	enum MHD_Result r;
	bool ok;

	(void)cls;
	(void)version;
	if (up == NULL) {
		*state = calloc(1, sizeof(struct upload));
		return *state != NULL ? MHD_YES : MHD_NO;
	}
	if (*size > 0) {
		char *p = realloc(up->data, up->len + *size + 1);

		if (p == NULL)
			return MHD_NO;
		memcpy(p + up->len, data, *size);
		up->data = p;
		up->len += *size;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&rx.lock);
	ok = strcmp(method, "POST") == 0 && strcmp(u, "/v1/traces") == 0 &&
	     up->data != NULL && store(up->data, up->len);
	rx.requests++;
	rx.bad += !ok;
	pthread_mutex_unlock(&rx.lock);
	res = MHD_create_response_from_buffer(2, (void *)"{}",
					      MHD_RESPMEM_PERSISTENT);
	r = MHD_queue_response(conn, ok ? 200 : 400, res);
	MHD_destroy_response(res);
	return r;
}

static void
on_done(void *cls, struct MHD_Connection *c, void **state,
	enum MHD_RequestTerminationCode code)
{
	struct upload *up = *state;

	(void)cls;
	(void)c;
	(void)code;
	if (up != NULL) {
		free(up->data);
		free(up);
	}
	*state = NULL;
}

static void
setup(void)
{
	const char *port = getenv("OTLP_PORT");

	rx.n = rx.requests = rx.bad = 0;
	if (port == NULL)
		return;
	daemon_ = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		(uint16_t)atoi(port), NULL, NULL, on_request, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
}

static void
teardown(void)
{
	if (daemon_ != NULL)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}

/* Index of the span of trace with kind and name (prefix), or -1. */
static int
find(const char *trace, const char *service, int kind, const char *name)
{
	int found = -1;

	pthread_mutex_lock(&rx.lock);
	for (int i = 0; i < rx.n && found < 0; i++)
		if (strcmp(rx.spans[i].trace, trace) == 0 &&
		    strcmp(rx.spans[i].service, service) == 0 &&
		    rx.spans[i].kind == kind &&
		    strncmp(rx.spans[i].name, name, strlen(name)) == 0)
			found = i;
	pthread_mutex_unlock(&rx.lock);
	return found;
}

static int
wait_span(const char *trace, const char *service, int kind, const char *name)
{
	long long end = svc_now_ms() + WAIT_MS;
	int i;

	while ((i = find(trace, service, kind, name)) < 0 && svc_now_ms() < end)
		pause_ms(50);
	return i;
}

/*
 * Every log line of the order - in each service, the consumers' included -
 * carries its request id and its trace id: lines with the one have the
 * other, and all three services wrote some.
 */
static void
check_logs(const char *rid)
{
	static const char *const services[] = { "products", "inventory",
						"orders" };
	const char *dir = env_or_fail("SERVICE_LOG_DIR");
	char want_rid[80];

	snprintf(want_rid, sizeof(want_rid), "\"request_id\":\"%s\"", rid);
	for (int i = 0; i < 3; i++) {
		char path[512], line[8192];
		FILE *f;
		int lines = 0;

		snprintf(path, sizeof(path), "%s/%s.log", dir, services[i]);
		f = fopen(path, "r");
		ck_assert_msg(f != NULL, "cannot read %s", path);
		while (fgets(line, sizeof(line), f) != NULL) {
			bool has_rid = strstr(line, want_rid) != NULL;
			bool has_trace = strstr(line, "\"trace_id\":\"" TRACE
						      "\"") != NULL;

			if (!has_rid && !has_trace)
				continue;
			ck_assert_msg(has_rid && has_trace,
				      "%s: a line of the order without its "
				      "request or trace id: %s",
				      services[i], line);
			lines++;
		}
		fclose(f);
		ck_assert_msg(lines > 0, "%s logged nothing of the order",
			      services[i]);
	}
}

/* The server span of the request with this X-Request-ID (polled), or -1. */
static int
wait_request_span(const char *rid)
{
	long long end = svc_now_ms() + WAIT_MS;
	int found = -1;

	while (found < 0 && svc_now_ms() < end) {
		pthread_mutex_lock(&rx.lock);
		for (int j = 0; j < rx.n && found < 0; j++)
			if (strcmp(rx.spans[j].request_id, rid) == 0)
				found = j;
		pthread_mutex_unlock(&rx.lock);
		if (found < 0)
			pause_ms(50);
	}
	return found;
}

START_TEST(test_order_is_one_trace)
{
	char p[64], c[SVC_UUID_LEN + 1], body[256];
	char rid[SVC_UUID_LEN + 1], rh[80];
	const char *h[] = { "Content-Type: application/json",
			    "traceparent: 00-" TRACE "-" PARENT "-01", rh,
			    NULL };
	struct http_resp *r;
	int order, idx[9];
	int roots = 0;

	ck_assert_msg(daemon_ != NULL, "no OTLP receiver on OTLP_PORT");
	fixture_product(p, 700, "EUR", 5);
	svc_uuid_v4(c);
	svc_uuid_v4(rid);
	snprintf(rh, sizeof(rh), "X-Request-ID: %s", rid);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":1}]}",
		 c, p);
	r = http_do("POST", url(fixture_orders(), "/api/v1/orders"), h, body);
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	http_free(r);

	order = wait_span(TRACE, "orders", SVC_SPAN_SERVER,
			  "POST /api/v1/orders");
	ck_assert_msg(order >= 0, "no orders server span");
	ck_assert_str_eq(rx.spans[order].parent, PARENT);
	idx[0] = order;
	idx[1] = wait_span(TRACE, "orders", SVC_SPAN_CLIENT, "GET");
	idx[2] = wait_span(TRACE, "orders", SVC_SPAN_CLIENT, "POST");
	idx[3] = wait_span(TRACE, "products", SVC_SPAN_SERVER,
			   "GET /api/v1/products");
	idx[4] = wait_span(TRACE, "inventory", SVC_SPAN_SERVER,
			   "POST /api/v1/reservations");
	idx[5] = wait_span(TRACE, "inventory", SVC_SPAN_CONSUMER,
			   "order.created process");
	idx[6] = wait_span(TRACE, "orders", SVC_SPAN_CONSUMER,
			   "inventory.confirmed process");
	idx[7] = wait_span(TRACE, "orders", SVC_SPAN_PRODUCER,
			   "order.created publish");
	idx[8] = wait_span(TRACE, "inventory", SVC_SPAN_PRODUCER,
			   "inventory.confirmed publish");
	for (int i = 1; i < 9; i++)
		ck_assert_msg(idx[i] >= 0, "span %d of the order missing", i);
	/* The tree: the calls under the order, the servers under the calls;
	 * each event's publish under the span that wrote it, its consumer
	 * under the publish - across the broker. */
	ck_assert_str_eq(rx.spans[idx[1]].parent, rx.spans[order].id);
	ck_assert_str_eq(rx.spans[idx[2]].parent, rx.spans[order].id);
	ck_assert_str_eq(rx.spans[idx[3]].parent, rx.spans[idx[1]].id);
	ck_assert_str_eq(rx.spans[idx[4]].parent, rx.spans[idx[2]].id);
	ck_assert_str_eq(rx.spans[idx[7]].parent, rx.spans[order].id);
	ck_assert_str_eq(rx.spans[idx[5]].parent, rx.spans[idx[7]].id);
	ck_assert_str_eq(rx.spans[idx[8]].parent, rx.spans[idx[5]].id);
	ck_assert_str_eq(rx.spans[idx[6]].parent, rx.spans[idx[8]].id);
	/* And every span of the trace hangs off it: one root, the caller. */
	pthread_mutex_lock(&rx.lock);
	for (int i = 0; i < rx.n; i++) {
		bool known = false;

		if (strcmp(rx.spans[i].trace, TRACE) != 0)
			continue;
		for (int j = 0; j < rx.n && !known; j++)
			known = strcmp(rx.spans[j].trace, TRACE) == 0 &&
				strcmp(rx.spans[j].id, rx.spans[i].parent) == 0;
		if (!known) {
			ck_assert_str_eq(rx.spans[i].parent, PARENT);
			roots++;
		}
	}
	ck_assert_int_eq(rx.bad, 0);
	pthread_mutex_unlock(&rx.lock);
	ck_assert_int_eq(roots, 1);
	check_logs(rid);
}
END_TEST

START_TEST(test_malformed_traceparent_starts_a_trace)
{
	static const char *const bad[] = {
		"traceparent: garbage",
		"traceparent: 00-" TRACE "-0000000000000000-01",
		"traceparent: ff-" TRACE "-" PARENT "-01",
		"traceparent: 00-" TRACE "-" PARENT,
	};

	ck_assert_msg(daemon_ != NULL, "no OTLP receiver on OTLP_PORT");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rid[SVC_UUID_LEN + 1], rh[80];
		const char *h[] = { bad[i], rh, NULL };
		struct http_resp *r;
		int found;

		svc_uuid_v4(rid);
		snprintf(rh, sizeof(rh), "X-Request-ID: %s", rid);
		r = http_do("GET",
			    url(env_or_fail("PRODUCTS_URL"),
				"/api/v1/products?limit=1"),
			    h, NULL);
		ck_assert_msg(r->status == 200, "%s: %ld", bad[i], r->status);
		http_free(r);
		found = wait_request_span(rid);
		ck_assert_msg(found >= 0, "no span for %s", bad[i]);
		/* A trace of its own, with no parent. */
		ck_assert_str_ne(rx.spans[found].trace, TRACE);
		ck_assert_str_eq(rx.spans[found].parent, "");
	}
}
END_TEST

/* A span whose attributes need escaping still makes valid OTLP JSON. */
START_TEST(test_awkward_path_exports_valid_json)
{
	char rid[SVC_UUID_LEN + 1], rh[80];
	const char *h[] = { rh, NULL };
	struct http_resp *r;
	int found;

	ck_assert_msg(daemon_ != NULL, "no OTLP receiver on OTLP_PORT");
	svc_uuid_v4(rid);
	snprintf(rh, sizeof(rh), "X-Request-ID: %s", rid);
	r = http_do("GET",
		    url(env_or_fail("PRODUCTS_URL"),
			"/api/v1/products/%%22%%5c%%01%%ff%%e2%%82%%ac"),
		    h, NULL);
	ck_assert_int_eq(r->status, 404);
	http_free(r);
	found = wait_request_span(rid);
	ck_assert_msg(found >= 0, "no span for the awkward path");
	pthread_mutex_lock(&rx.lock);
	ck_assert_int_eq(rx.bad, 0);
	pthread_mutex_unlock(&rx.lock);
}
END_TEST

Suite *
tracing_suite(void)
{
	Suite *s = suite_create("tracing");
	TCase *tc = tcase_create("spans");

	tcase_set_timeout(tc, 60);
	/* checked: the receiver's thread must live in the test's process */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_order_is_one_trace);
	tcase_add_test(tc, test_malformed_traceparent_starts_a_trace);
	tcase_add_test(tc, test_awkward_path_exports_valid_json);
	suite_add_tcase(s, tc);
	return s;
}
