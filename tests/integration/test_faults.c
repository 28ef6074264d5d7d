/*
 * test_faults.c - faults injected at run time (FAULTS=on, /admin/faults)
 * against the real binaries: the suite's services run with FAULTS off and
 * answer 404; a products instance with FAULTS=on, on a database and a
 * RabbitMQ vhost of its own (FAULTS_DATABASE_URL, FAULTS_RABBITMQ_URL),
 * is slowed and failed route by route, has its relay and its consumer
 * paused and its events handled twice; an orders instance with FAULTS=on
 * (the suite's database, products and inventory) has its calls to
 * inventory fail until its circuit opens, and recovers when the fault is
 * cleared. Refused requests change nothing, faults heal when their ttl
 * ends, and /metrics and /health show them. Timings are asserted only as
 * lower bounds (a slowed route takes at least its delay); everything
 * else is counts and states, polled with a bound. The instances' pids
 * live in shared memory, so the unchecked teardown kills whatever a
 * failed test left running.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ.h"
#include "mq_fixture.h"
#include "orders_fixture.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/util.h"

#define PRODUCTS_PORT_INDEX 15 /* spare_port(): see scripts/test.sh */
#define ORDERS_PORT_INDEX   18
#define WAIT_MS		    20000
#define STEP_MS		    50

enum { PRODUCTS, ORDERS, INSTANCES };

/* Pids of the instances running, shared with the forked tests. */
static int *spawned;
static char products_base[64], orders_base[64];

static void
setup(void)
{
	spawned = spawned_new(INSTANCES);
}

static void
teardown(void)
{
	spawned_kill(spawned, INSTANCES);
	spawned = NULL;
}

/* products with FAULTS=on on its own database and vhost; log: 64 bytes. */
static const char *
start_products(char log[64])
{
	static char db[512], mq[512];
	const char *env[] = { db, mq, "FAULTS=on", NULL };
	int port = spare_port(PRODUCTS_PORT_INDEX);

	snprintf(db, sizeof(db), "DATABASE_URL=%s",
		 env_or_fail("FAULTS_DATABASE_URL"));
	snprintf(mq, sizeof(mq), "RABBITMQ_URL=%s",
		 env_or_fail("FAULTS_RABBITMQ_URL"));
	ck_assert_ptr_nonnull(spawned);
	spawned[PRODUCTS] = spawn_service("products", port, env, log);
	snprintf(products_base, sizeof(products_base), "http://127.0.0.1:%d",
		 port);
	return products_base;
}

/* orders with FAULTS=on and a breaker quick to open and to try again. */
static const char *
start_orders(char log[64])
{
	const char *env[] = { "FAULTS=on",
			      "INVENTORY_BREAKER_FAILURES=3",
			      "INVENTORY_BREAKER_RECOVERY=1s",
			      "INVENTORY_RETRY_ATTEMPTS=2",
			      "INVENTORY_RETRY_BASE=10ms",
			      NULL };
	int port = spare_port(ORDERS_PORT_INDEX);

	ck_assert_ptr_nonnull(spawned);
	spawned[ORDERS] = spawn_service("orders", port, env, log);
	snprintf(orders_base, sizeof(orders_base), "http://127.0.0.1:%d", port);
	return orders_base;
}

static void
stop(int which)
{
	ck_assert_int_eq(stop_service(spawned[which]), 0);
	spawned[which] = 0;
}

/* --- requests --- */

static struct http_resp *
as_admin(const char *method, const char *u, const char *body)
{
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };

	return http_do(method, u, h, body);
}

/* PUT /admin/faults/{name} at base; the status. */
static long
put_fault(const char *base, const char *name, const char *body)
{
	struct http_resp *r =
		as_admin("PUT", url(base, "/admin/faults/%s", name), body);
	long status = r->status;

	ck_assert_msg(status == 200 || status == 201, "%ld %s", status,
		      r->body);
	http_free(r);
	return status;
}

static void
clear_faults(const char *base)
{
	struct http_resp *r =
		as_admin("DELETE", url(base, "/admin/faults"), NULL);

	ck_assert_int_eq(r->status, 204);
	http_free(r);
}

/* The active faults, as GET /admin/faults lists them. */
static size_t
active_faults(const char *base)
{
	struct http_resp *r = as_admin("GET", url(base, "/admin/faults"), NULL);
	size_t n;

	ck_assert_int_eq(r->status, 200);
	n = json_array_size(json_object_get(r->json, "faults"));
	http_free(r);
	return n;
}

/* What the fault called name touched so far; -1 when it is not active. */
static long long
injected(const char *base, const char *name)
{
	struct http_resp *r =
		as_admin("GET", url(base, "/admin/faults/%s", name), NULL);
	long long n = r->status == 200 ? json_integer_value(json_object_get(
						 r->json, "injected"))
				       : -1;

	http_free(r);
	return n;
}

/* Polls until the fault name touched at least n; false after WAIT_MS. */
static bool
await_injected(const char *base, const char *name, long long n)
{
	for (int waited = 0; waited < WAIT_MS; waited += STEP_MS) {
		if (injected(base, name) >= n)
			return true;
		pause_ms(STEP_MS);
	}
	return false;
}

/* The value of a series in base's /metrics, 0 when it has no sample. */
static double
sample(const char *base, const char *series)
{
	struct http_resp *r = http_do("GET", url(base, "/metrics"), NULL, NULL);
	size_t n = strlen(series);
	double v = 0;

	ck_assert_int_eq(r->status, 200);
	for (const char *line = r->body; line != NULL && *line != '\0';) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ') {
			v = strtod(line + n + 1, NULL);
			break;
		}
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	http_free(r);
	return v;
}

/* Polls until series reaches at least v; false after WAIT_MS. */
static bool
await_sample(const char *base, const char *series, double v)
{
	for (int waited = 0; waited < WAIT_MS; waited += STEP_MS) {
		if (sample(base, series) >= v)
			return true;
		pause_ms(STEP_MS);
	}
	return false;
}

static long
get_status(const char *u)
{
	struct http_resp *r = http_do("GET", u, NULL, NULL);
	long status = r->status;

	http_free(r);
	return status;
}

/* A product made through base; its id into id. */
static void
create_product(const char *base, char id[SVC_UUID_LEN + 1])
{
	char sku[SVC_UUID_LEN + 1], body[256];
	struct http_resp *r;

	svc_uuid_v4(sku);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"FAULT-%.13s\",\"name\":\"Faulty\","
		 "\"price_cents\":100,\"currency\":\"EUR\"}",
		 sku);
	r = as_admin("POST", url(base, "/api/v1/products"), body);
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	snprintf(id, SVC_UUID_LEN + 1, "%s", fixture_str(r->json, "id"));
	http_free(r);
}

static bool
available(const char *base, const char *product)
{
	struct http_resp *r = http_do(
		"GET", url(base, "/api/v1/products/%s", product), NULL, NULL);
	bool yes;

	ck_assert_int_eq(r->status, 200);
	yes = json_is_true(json_object_get(r->json, "available"));
	http_free(r);
	return yes;
}

/* --- events on the instance's own vhost --- */

static struct svc_mq *
faults_mq(enum svc_mq_role role)
{
	struct svc_mq *mq =
		mqf_open_url(env_or_fail("FAULTS_RABBITMQ_URL"), role);

	ck_assert_msg(mq != NULL, "cannot reach FAULTS_RABBITMQ_URL");
	return mq;
}

/*
 * The instance's queue declared here too (same arguments, so the same
 * queue), so an event published before its consumer got there waits.
 */
static void
declare_stock_queue(void)
{
	static const char *const events[] = { "inventory.stock_changed", NULL };
	struct svc_mq *mq = faults_mq(SVC_MQ_CONSUMER);

	ck_assert_int_eq(svc_mq_declare_queue(mq, "products.stock", events, 5),
			 0);
	svc_mq_close(mq);
}

/* inventory.stock_changed for product; its event id into id. */
static void
publish_stock(const char *product, int version, int on_hand,
	      char id[SVC_UUID_LEN + 1])
{
	struct svc_mq *pub = faults_mq(SVC_MQ_PUBLISHER);
	struct svc_mq_message m = { 0 };
	uint64_t tag = 0;
	char body[512];

	svc_uuid_v4(id);
	snprintf(body, sizeof(body),
		 "{\"id\":\"%s\",\"event_type\":\"inventory.stock_changed\","
		 "\"source\":\"faultstest\",\"timestamp\":"
		 "\"2026-01-01T00:00:00.000000Z\",\"data\":{\"product_id\":"
		 "\"%s\",\"on_hand\":%d,\"reserved\":0,\"available\":%d,"
		 "\"version\":%d}}",
		 id, product, on_hand, on_hand, version);
	m.type = "inventory.stock_changed";
	m.message_id = id;
	m.body = body;
	m.len = strlen(body);
	ck_assert_int_eq(svc_mq_publish(pub, &m, &tag), 0);
	ck_assert_int_eq(svc_mq_wait_confirms(pub, tag, 5000, NULL, NULL), 0);
	svc_mq_close(pub);
}

/* Rows of the instance's inbox for event. */
static int
inbox_rows(const char *event)
{
	return (int)db_count("FAULTS_DATABASE_URL",
			     "SELECT count(*) FROM inbox WHERE event_id = $1",
			     event);
}

#define APPLIED                                                                \
	"events_consumed_total{event_type=\"inventory.stock_changed\","        \
	"outcome=\"applied\"}"
#define DUPLICATE                                                              \
	"events_consumed_total{event_type=\"inventory.stock_changed\","        \
	"outcome=\"duplicate\"}"

/* --- the tests --- */

START_TEST(off_means_404_and_nothing_shown)
{
	const char *base = env_or_fail("PRODUCTS_URL");
	static const char *const methods[] = { "GET", "PUT", "DELETE" };
	struct http_resp *r;
	char cmd[512], *out = NULL;
	int rc;

	for (size_t i = 0; i < 3; i++) {
		r = as_admin(methods[i], url(base, "/admin/faults"),
			     strcmp(methods[i], "PUT") == 0 ? "{\"faults\":[]}"
							    : NULL);
		ck_assert_int_eq(r->status, 404);
		ck_assert_str_eq(fixture_str(r->json, "error"), "not_found");
		http_free(r);
		r = as_admin(methods[i], url(base, "/admin/faults/x"),
			     strcmp(methods[i], "PUT") == 0
				     ? "{\"kind\":\"relay_pause\"}"
				     : NULL);
		ck_assert_int_eq(r->status, 404);
		http_free(r);
	}
	r = http_do("GET", url(base, "/health"), NULL, NULL);
	ck_assert_ptr_null(json_object_get(r->json, "faults"));
	http_free(r);
	r = http_do("GET", url(base, "/metrics"), NULL, NULL);
	ck_assert_ptr_null(strstr(r->body, "faults_active"));
	http_free(r);
	/* `routes` prints what would be served. */
	snprintf(cmd, sizeof(cmd), "FAULTS=on %s/products routes",
		 getenv("BIN_DIR") ? getenv("BIN_DIR") : "build");
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "\nPUT /admin/faults/{name}\n"));
	free(out);
	snprintf(cmd, sizeof(cmd), "FAULTS=off %s/products routes",
		 getenv("BIN_DIR") ? getenv("BIN_DIR") : "build");
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	ck_assert_ptr_null(strstr(out, "/admin/faults"));
	free(out);
	/* A value that is neither on nor off stops start-up, naming it. */
	snprintf(cmd, sizeof(cmd), "FAULTS=maybe %s/products 2>&1",
		 getenv("BIN_DIR") ? getenv("BIN_DIR") : "build");
	rc = run_cmd(cmd, &out);
	ck_assert_int_eq(rc, 2);
	ck_assert_ptr_nonnull(strstr(out, "FAULTS"));
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	free(out);
}
END_TEST

START_TEST(refused_requests_change_nothing)
{
	char log[64];
	const char *base = start_products(log);
	const char *service[] = { "Content-Type: application/json",
				  auth_header("service"), NULL };
	const char *forged[] = { "Content-Type: application/json",
				 "Authorization: Bearer not.a.token", NULL };
	const char *text[] = { "Content-Type: text/plain", auth_header("admin"),
			       NULL };
	const char *body = "{\"kind\":\"relay_pause\"}";
	struct http_resp *r;

	put_fault(base, "keep", "{\"kind\":\"http_latency\",\"ms\":1}");
	r = http_do("PUT", url(base, "/admin/faults/x"), NULL, body);
	ck_assert_int_eq(r->status, 401);
	http_free(r);
	r = http_do("PUT", url(base, "/admin/faults/x"), forged, body);
	ck_assert_int_eq(r->status, 401);
	http_free(r);
	r = http_do("PUT", url(base, "/admin/faults/x"), service, body);
	ck_assert_int_eq(r->status, 403);
	http_free(r);
	r = http_do("DELETE", url(base, "/admin/faults"), service, NULL);
	ck_assert_int_eq(r->status, 403);
	http_free(r);
	r = http_do("PUT", url(base, "/admin/faults/x"), text, body);
	ck_assert_int_eq(r->status, 415);
	http_free(r);
	r = as_admin("PUT", url(base, "/admin/faults/x"), "{\"kind\":");
	ck_assert_int_eq(r->status, 400);
	http_free(r);
	r = as_admin("PUT", url(base, "/admin/faults/x"),
		     "{\"kind\":\"http_error\",\"rate\":1.5,"
		     "\"target\":\"/api/v1/nope\",\"ttl\":7200}");
	ck_assert_int_eq(r->status, 422);
	ck_assert_str_eq(fixture_str(r->json, "error"), "validation_failed");
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "errors")),
			 3);
	http_free(r);
	r = as_admin("PUT", url(base, "/admin/faults"),
		     "{\"faults\":[{\"name\":\"a\",\"kind\":\"relay_pause\"},"
		     "{\"name\":\"b\",\"kind\":\"upstream_error\","
		     "\"target\":\"inventory\"}]}");
	ck_assert_int_eq(r->status, 422);
	http_free(r);
	/* Only the first fault, untouched. */
	ck_assert_int_eq(active_faults(base), 1);
	ck_assert_int_ge(injected(base, "keep"), 0);
	stop(PRODUCTS);
}
END_TEST

START_TEST(latency_slows_only_its_route)
{
	char log[64], p[SVC_UUID_LEN + 1];
	const char *base = start_products(log);
	long long t0, elapsed;

	create_product(base, p);
	put_fault(base, "slow",
		  "{\"kind\":\"http_latency\",\"ms\":400,"
		  "\"target\":\"/api/v1/products/{id}\",\"ttl\":60}");
	t0 = svc_now_ms();
	ck_assert_int_eq(get_status(url(base, "/api/v1/products/%s", p)), 200);
	elapsed = svc_now_ms() - t0;
	ck_assert_int_ge(elapsed, 400);
	/* Other routes are not touched: only the one request counts. */
	ck_assert_int_eq(get_status(url(base, "/api/v1/products")), 200);
	ck_assert_int_eq(get_status(url(base, "/health")), 200);
	ck_assert_int_eq(injected(base, "slow"), 1);
	ck_assert_int_eq(get_status(url(base, "/api/v1/products/%s", p)), 200);
	ck_assert_int_eq(injected(base, "slow"), 2);
	ck_assert(file_contains(log, "\"msg\":\"fault set\"", 1000));
	clear_faults(base);
	ck_assert(file_contains(log, "\"msg\":\"fault cleared\"", 1000));
	stop(PRODUCTS);
}
END_TEST

START_TEST(errors_answer_with_a_problem_document)
{
	char log[64], p[SVC_UUID_LEN + 1];
	const char *base = start_products(log);
	struct http_resp *r;
	char *retry, *ctype;

	create_product(base, p);
	put_fault(base, "down",
		  "{\"kind\":\"http_error\",\"rate\":1,"
		  "\"target\":\"/api/v1/products\"}");
	r = http_do("GET", url(base, "/api/v1/products"), NULL, NULL);
	ck_assert_int_eq(r->status, 503);
	retry = http_header(r, "Retry-After");
	ctype = http_header(r, "Content-Type");
	ck_assert_ptr_nonnull(retry);
	ck_assert_str_eq(ctype, "application/problem+json");
	ck_assert_str_eq(fixture_str(r->json, "error"), "fault_injected");
	ck_assert_int_eq(json_integer_value(json_object_get(r->json, "status")),
			 503);
	free(retry);
	free(ctype);
	http_free(r);
	/* Its route only; the routes to look and undo never fail. */
	ck_assert_int_eq(get_status(url(base, "/api/v1/products/%s", p)), 200);
	ck_assert_int_eq(get_status(url(base, "/health")), 200);
	ck_assert_int_eq(get_status(url(base, "/metrics")), 200);
	ck_assert_int_eq(active_faults(base), 1);
	ck_assert_int_eq(put_fault(base, "down",
				   "{\"kind\":\"http_error\",\"status\":500,"
				   "\"target\":\"/api/v1/products\"}"),
			 200);
	r = http_do("GET", url(base, "/api/v1/products"), NULL, NULL);
	ck_assert_int_eq(r->status, 500);
	ck_assert_str_eq(fixture_str(r->json, "error"), "fault_injected");
	http_free(r);
	clear_faults(base);
	ck_assert_int_eq(get_status(url(base, "/api/v1/products")), 200);
	stop(PRODUCTS);
}
END_TEST

/* A fresh order for one of product, at base. */
static long
order(const char *base, const char *product)
{
	char body[256], customer[SVC_UUID_LEN + 1];
	struct http_resp *r;
	long status;

	svc_uuid_v4(customer);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":1}]}",
		 customer, product);
	r = fixture_order(base, NULL, body);
	status = r->status;
	if (status == 503) {
		char *retry = http_header(r, "Retry-After");

		ck_assert_ptr_nonnull(retry);
		free(retry);
	}
	http_free(r);
	return status;
}

static const char *
inventory_circuit(const char *base)
{
	static char circuit[32];
	struct http_resp *r = http_do("GET", url(base, "/health"), NULL, NULL);

	snprintf(circuit, sizeof(circuit), "%s",
		 fixture_str(json_object_get(json_object_get(r->json, "checks"),
					     "inventory"),
			     "circuit"));
	http_free(r);
	return circuit;
}

START_TEST(an_upstream_fault_opens_the_circuit)
{
	char log[64], p[64];
	const char *base = start_orders(log);
	struct http_resp *r;
	long status = 0;

	fixture_product(p, 700, "EUR", 100);
	put_fault(base, "inventory-down",
		  "{\"kind\":\"upstream_error\",\"target\":\"inventory\","
		  "\"ttl\":120}");
	/* Two attempts each: the second order opens the circuit (3). */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(order(base, p), 503);
	ck_assert_str_eq(inventory_circuit(base), "open");
	r = http_do("GET", url(base, "/health"), NULL, NULL);
	ck_assert_str_eq(fixture_str(r->json, "status"), "degraded");
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "faults")),
			 1);
	http_free(r);
	ck_assert(sample(base, "faults_injected_total{kind=\"upstream_error\","
			       "target=\"inventory\"}") >= 3);
	ck_assert(file_contains(log, "\"to\":\"open\"", 1000));
	/* Cleared: after the recovery time a trial closes the circuit. */
	clear_faults(base);
	for (int i = 0; i < 100 && status != 201; i++) {
		status = order(base, p);
		ck_assert_msg(status == 201 || status == 503, "%ld", status);
		if (status != 201)
			pause_ms(100);
	}
	ck_assert_int_eq(status, 201);
	ck_assert_str_eq(inventory_circuit(base), "closed");
	stop(ORDERS);
}
END_TEST

START_TEST(a_paused_relay_holds_events)
{
	static const char *const created[] = { "product.created", NULL };
	char log[64], p[SVC_UUID_LEN + 1], queue[64], hex[SVC_UUID_LEN + 1];
	const char *base = start_products(log);
	struct svc_mq *tap = faults_mq(SVC_MQ_CONSUMER);
	struct svc_mq_delivery d;
	bool arrived = false;
	long long end;

	svc_uuid_v4(hex);
	snprintf(queue, sizeof(queue), "faultstest.%.8s", hex);
	ck_assert_int_eq(svc_mq_declare_queue(tap, queue, created, 5), 0);
	ck_assert_int_eq(svc_mq_consume(tap, queue, 16), 0);
	put_fault(base, "hold", "{\"kind\":\"relay_pause\",\"ttl\":120}");
	create_product(base, p);
	ck_assert(await_sample(base, "outbox_pending", 1));
	ck_assert(await_injected(base, "hold", 1));
	ck_assert(file_contains(log, "outbox relay: paused by a fault", 1000));
	/* Held: the broker has nothing (the pause, not a wait, decides). */
	ck_assert_int_eq(svc_mq_next(tap, 300, &d), SVC_ETIMEOUT);
	svc_mq_delivery_cleanup(&d);
	clear_faults(base);
	end = svc_now_ms() + WAIT_MS;
	while (!arrived && svc_mq_next(tap, end - svc_now_ms(), &d) == 0) {
		arrived = strstr(d.body, p) != NULL;
		svc_mq_ack(tap, d.tag);
		svc_mq_delivery_cleanup(&d);
	}
	ck_assert_msg(arrived, "product.created of %s never came", p);
	ck_assert(file_contains(log, "outbox relay: resumed", 1000));
	svc_mq_delete_queue(tap, queue);
	svc_mq_close(tap);
	stop(PRODUCTS);
}
END_TEST

START_TEST(a_paused_consumer_takes_nothing)
{
	char log[64], p[SVC_UUID_LEN + 1], event[SVC_UUID_LEN + 1];
	const char *base;

	declare_stock_queue();
	base = start_products(log);
	create_product(base, p);
	ck_assert(!available(base, p));
	put_fault(base, "deaf",
		  "{\"kind\":\"consumer_pause\",\"target\":\"products.stock\","
		  "\"ttl\":120}");
	publish_stock(p, 1, 5, event);
	/* The delivery reached the consumer, which holds it. */
	ck_assert(await_injected(base, "deaf", 1));
	ck_assert(file_contains(log, "consumer: paused by a fault", 1000));
	ck_assert(sample(base, APPLIED) == 0);
	ck_assert_int_eq(inbox_rows(event), 0);
	ck_assert(!available(base, p));
	clear_faults(base);
	ck_assert(await_sample(base, APPLIED, 1));
	ck_assert(available(base, p));
	ck_assert_int_eq(inbox_rows(event), 1);
	ck_assert(file_contains(log, "consumer: resumed", 1000));
	stop(PRODUCTS);
}
END_TEST

START_TEST(duplicates_are_applied_once)
{
	char log[64], p[SVC_UUID_LEN + 1], event[SVC_UUID_LEN + 1];
	const char *base;

	declare_stock_queue();
	base = start_products(log);
	create_product(base, p);
	put_fault(base, "twice",
		  "{\"kind\":\"duplicate_delivery\",\"rate\":1,"
		  "\"target\":\"products.stock\"}");
	publish_stock(p, 1, 3, event);
	ck_assert(await_sample(base, DUPLICATE, 1));
	ck_assert(sample(base, APPLIED) == 1);
	ck_assert_int_eq(inbox_rows(event), 1);
	ck_assert(available(base, p));
	ck_assert_int_eq(injected(base, "twice"), 1);
	ck_assert(file_contains(log, "delivered twice by a fault", 1000));
	stop(PRODUCTS);
}
END_TEST

START_TEST(faults_heal_when_their_ttl_ends)
{
	char log[64];
	const char *base = start_products(log);
	bool healed = false;

	put_fault(base, "brief",
		  "{\"kind\":\"http_error\",\"target\":\"/api/v1/products\","
		  "\"ttl\":1}");
	for (int waited = 0; !healed && waited < WAIT_MS; waited += STEP_MS) {
		healed = active_faults(base) == 0;
		if (!healed)
			pause_ms(STEP_MS);
	}
	ck_assert(healed);
	ck_assert_int_eq(get_status(url(base, "/api/v1/products")), 200);
	ck_assert(file_contains(log, "\"msg\":\"fault expired\"", 1000));
	ck_assert(sample(base, "faults_active{kind=\"http_error\","
			       "target=\"/api/v1/products\"}") == 0);
	stop(PRODUCTS);
}
END_TEST

START_TEST(metrics_and_health_show_the_faults)
{
	char log[64], path[] = "/tmp/microshop-faults-metrics-XXXXXX";
	char cmd[128], *out = NULL, before[32];
	const char *base = start_products(log);
	struct http_resp *r;
	int fd;

	r = http_do("GET", url(base, "/health"), NULL, NULL);
	snprintf(before, sizeof(before), "%s", fixture_str(r->json, "status"));
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "faults")),
			 0);
	http_free(r);
	put_fault(base, "slow",
		  "{\"kind\":\"http_latency\",\"min_ms\":1,\"max_ms\":5,"
		  "\"target\":\"/api/v1/products/{id}\"}");
	put_fault(base, "deaf", "{\"kind\":\"consumer_pause\"}");
	ck_assert(sample(base, "faults_active{kind=\"http_latency\","
			       "target=\"/api/v1/products/{id}\"}") == 1);
	ck_assert(sample(base, "faults_active{kind=\"consumer_pause\","
			       "target=\"all\"}") == 1);
	r = http_do("GET", url(base, "/metrics"), NULL, NULL);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, r->body, r->len), (ssize_t)r->len);
	close(fd);
	http_free(r);
	snprintf(cmd, sizeof(cmd), "promtool check metrics <%s 2>&1", path);
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	ck_assert_msg(out[0] == '\0', "promtool: %s", out);
	free(out);
	unlink(path);
	/* Listed in /health, which keeps its status. */
	r = http_do("GET", url(base, "/health"), NULL, NULL);
	ck_assert_str_eq(fixture_str(r->json, "status"), before);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "faults")),
			 2);
	ck_assert_str_eq(
		fixture_str(
			json_array_get(json_object_get(r->json, "faults"), 0),
			"name"),
		"slow");
	http_free(r);
	clear_faults(base);
	ck_assert(sample(base, "faults_active{kind=\"consumer_pause\","
			       "target=\"all\"}") == 0);
	stop(PRODUCTS);
}
END_TEST

Suite *
faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");

	tcase_set_timeout(tc, 90);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, off_means_404_and_nothing_shown);
	tcase_add_test(tc, refused_requests_change_nothing);
	tcase_add_test(tc, latency_slows_only_its_route);
	tcase_add_test(tc, errors_answer_with_a_problem_document);
	tcase_add_test(tc, an_upstream_fault_opens_the_circuit);
	tcase_add_test(tc, a_paused_relay_holds_events);
	tcase_add_test(tc, a_paused_consumer_takes_nothing);
	tcase_add_test(tc, duplicates_are_applied_once);
	tcase_add_test(tc, faults_heal_when_their_ttl_ends);
	tcase_add_test(tc, metrics_and_health_show_the_faults);
	suite_add_tcase(s, tc);
	return s;
}
