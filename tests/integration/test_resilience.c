/*
 * test_resilience.c - orders when its dependencies fail, with real
 * binaries: an inventory that is down (fast 503s, the circuit opening,
 * each failed trial doubling how long it stays open up to the cap, then
 * closing again on a half-open trial once inventory is back), an
 * upstream that accepts connections and never answers (the call ends at
 * its deadline while the service keeps answering others), products down
 * (cached prices while fresh enough, 503 after), and cancelling while
 * inventory is down (the release happens later).
 *
 * Each test spawns its own orders instance on a spare port, sharing the
 * orders database with the main one, so the shared services stay up. The
 * silent upstream is a listening socket nobody accepts on: the kernel
 * completes the handshake and nothing ever answers - a fault no real
 * service can be asked to show.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integ.h"
#include "orders_fixture.h"
#include "svc/util.h"

static void
order_body(char *out, size_t size, const char *product, int qty)
{
	char c[SVC_UUID_LEN + 1];

	svc_uuid_v4(c);
	snprintf(out, size,
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":%d}]}",
		 c, product, qty);
}

static const char *
at(int port)
{
	static _Thread_local char buf[4][64];
	static _Thread_local int next;
	char *b = buf[next++ % 4];

	snprintf(b, 64, "http://127.0.0.1:%d", port);
	return b;
}

/*
 * The open intervals (open_ms) orders logged for its circuit to inventory,
 * in order, into ms (room for max); returns how many.
 */
static int
logged_open_intervals(const char *log, long long *ms, int max)
{
	FILE *f = fopen(log, "r");
	char line[8192];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		json_t *j = json_loads(line, 0, NULL);

		if (fixture_str(j, "msg") != NULL &&
		    strcmp(fixture_str(j, "msg"),
			   "circuit breaker state changed") == 0 &&
		    strcmp(fixture_str(j, "target"), "inventory") == 0 &&
		    strcmp(fixture_str(j, "to"), "open") == 0)
			ms[n++] = json_integer_value(
				json_object_get(j, "open_ms"));
		json_decref(j);
	}
	fclose(f);
	return n;
}

/*
 * With 200 ms to 1 s: the backoff 200, 400, 800 ms, then the cap, each
 * spread +-20 % within those bounds.
 */
static const long long open_lo[] = { 200, 320, 640, 800, 800 };
static const long long open_hi[] = { 240, 480, 960, 1000, 1000 };
#define OPENINGS (int)(sizeof(open_lo) / sizeof(open_lo[0]))

START_TEST(inventory_down_then_back)
{
	int orders_port = spare_port(0), inv_port = spare_port(1);
	char inv_url[64], log[64], inv_log[64], p[64], body[512];
	const char *env[] = { inv_url,
			      "INVENTORY_BREAKER_FAILURES=3",
			      "INVENTORY_BREAKER_RECOVERY_MIN=200ms",
			      "INVENTORY_BREAKER_RECOVERY=1s",
			      "INVENTORY_RETRY_ATTEMPTS=2",
			      "INVENTORY_RETRY_BASE=10ms",
			      NULL };
	struct http_resp *r;
	int pid, inv_pid, st = 0, n = 0;
	long long t0, elapsed, open_ms[OPENINGS];
	char *retry_after;

	snprintf(inv_url, sizeof(inv_url), "INVENTORY_URL=%s", at(inv_port));
	fixture_product(p, 700, "EUR", 100);
	pid = spawn_service("orders", orders_port, env, log);

	/* Nothing listens on inv_port: every order is a quick 503. */
	for (int i = 0; i < 3; i++) {
		order_body(body, sizeof(body), p, 1);
		t0 = svc_now_ms();
		r = fixture_order(at(orders_port), NULL, body);
		elapsed = svc_now_ms() - t0;
		ck_assert_msg(r->status == 503, "%ld %s", r->status, r->body);
		ck_assert_ptr_nonnull(strstr(r->headers, "Retry-After"));
		ck_assert_int_lt(elapsed, 2000);
		http_free(r);
	}
	ck_assert(file_contains(log, "\"to\":\"open\"", 1000));
	/* Open: refused without a network call. */
	order_body(body, sizeof(body), p, 1);
	r = fixture_order(at(orders_port), NULL, body);
	ck_assert_int_eq(r->status, 503);
	ck_assert_ptr_nonnull(strstr(r->body, "circuit open"));
	http_free(r);
	r = http_do("GET", url(at(orders_port), "/health"), NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(fixture_str(r->json, "status"), "degraded");
	http_free(r);

	/*
	 * Inventory stays down: each trial fails and opens the circuit for
	 * twice as long, up to the cap; Retry-After never says more than it.
	 */
	for (int i = 0; i < 200 && n < OPENINGS; i++) {
		order_body(body, sizeof(body), p, 1);
		r = fixture_order(at(orders_port), NULL, body);
		ck_assert_int_eq(r->status, 503);
		retry_after = http_header(r, "Retry-After");
		ck_assert_str_eq(retry_after, "1");
		free(retry_after);
		http_free(r);
		pause_ms(50);
		n = logged_open_intervals(log, open_ms, OPENINGS);
	}
	ck_assert_int_eq(n, OPENINGS);
	for (int i = 0; i < OPENINGS; i++) {
		ck_assert_int_ge(open_ms[i], open_lo[i]);
		ck_assert_int_le(open_ms[i], open_hi[i]);
	}

	/* Inventory comes back; the next trial closes the circuit. */
	inv_pid = spawn_service("inventory", inv_port, NULL, inv_log);
	for (int i = 0; i < 60 && st != 201; i++) {
		order_body(body, sizeof(body), p, 1);
		r = fixture_order(at(orders_port), NULL, body);
		st = r->status;
		ck_assert_msg(st == 201 || st == 503, "%ld", r->status);
		http_free(r);
		if (st != 201)
			usleep(100 * 1000);
	}
	ck_assert_int_eq(st, 201);
	ck_assert(file_contains(log, "\"to\":\"half_open\"", 1000));
	ck_assert(file_contains(log, "\"to\":\"closed\"", 1000));
	ck_assert_int_eq(stop_service(pid), 0);
	ck_assert_int_eq(stop_service(inv_pid), 0);
}
END_TEST

/* A listener that never accepts: connects succeed, answers never come. */
static int
silent_listener(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	return fd;
}

struct slow_order {
	pthread_t thread;
	const char *base;
	char body[512];
	long status;
	long long ms;
};

static void *
slow_order(void *arg)
{
	struct slow_order *o = arg;
	long long t0 = svc_now_ms();
	struct http_resp *r = fixture_order(o->base, NULL, o->body);

	o->ms = svc_now_ms() - t0;
	o->status = r->status;
	http_free(r);
	return NULL;
}

START_TEST(hanging_inventory_ends_at_the_deadline)
{
	int orders_port = spare_port(2), silent_port = spare_port(3);
	int fd = silent_listener(silent_port), pid;
	char inv_url[64], log[64], p[64];
	const char *env[] = { inv_url, "INVENTORY_DEADLINE=700ms",
			      "INVENTORY_RETRY_ATTEMPTS=1", NULL };
	struct slow_order o[4];

	snprintf(inv_url, sizeof(inv_url), "INVENTORY_URL=%s", at(silent_port));
	fixture_product(p, 100, "EUR", 10);
	pid = spawn_service("orders", orders_port, env, log);
	for (int i = 0; i < 4; i++) {
		o[i].base = at(orders_port);
		order_body(o[i].body, sizeof(o[i].body), p, 1);
		pthread_create(&o[i].thread, NULL, slow_order, &o[i]);
	}
	/* While those wait on the silent upstream, others are still served. */
	usleep(200 * 1000);
	{
		long long t0 = svc_now_ms();
		struct http_resp *r =
			http_do("GET", url(at(orders_port), "/health/live"),
				NULL, NULL);

		ck_assert_int_eq(r->status, 200);
		ck_assert_int_lt(svc_now_ms() - t0, 300);
		http_free(r);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(o[i].thread, NULL);
		ck_assert_int_eq(o[i].status, 503);
		ck_assert_int_ge(o[i].ms, 600);
		ck_assert_int_lt(o[i].ms, 3000);
	}
	ck_assert_int_eq(stop_service(pid), 0);
	close(fd);
}
END_TEST

START_TEST(products_down_uses_fresh_cached_prices)
{
	int prod_port = spare_port(4), fresh_port = spare_port(5);
	int stale_port = spare_port(6);
	char prod_url[64], log_p[64], log_f[64], log_s[64], p[64], body[512];
	const char *fresh_env[] = { prod_url, "PRICE_MAX_STALENESS=5m",
				    "PRODUCTS_RETRY_ATTEMPTS=1", NULL };
	const char *stale_env[] = { prod_url, "PRICE_MAX_STALENESS=0ms",
				    "PRODUCTS_RETRY_ATTEMPTS=1", NULL };
	int prod_pid, fresh_pid, stale_pid;
	struct http_resp *r;

	snprintf(prod_url, sizeof(prod_url), "PRODUCTS_URL=%s", at(prod_port));
	fixture_product(p, 4200, "EUR", 100);
	prod_pid = spawn_service("products", prod_port, NULL, log_p);
	fresh_pid = spawn_service("orders", fresh_port, fresh_env, log_f);
	stale_pid = spawn_service("orders", stale_port, stale_env, log_s);
	/* Both learn the price while products answers. */
	order_body(body, sizeof(body), p, 1);
	r = fixture_order(at(fresh_port), NULL, body);
	ck_assert_int_eq(r->status, 201);
	http_free(r);
	order_body(body, sizeof(body), p, 1);
	r = fixture_order(at(stale_port), NULL, body);
	ck_assert_int_eq(r->status, 201);
	http_free(r);

	ck_assert_int_eq(stop_service(prod_pid), 0);
	order_body(body, sizeof(body), p, 2);
	r = fixture_order(at(fresh_port), NULL, body);
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	ck_assert_int_eq(
		json_integer_value(json_object_get(r->json, "total_cents")),
		8400);
	http_free(r);
	ck_assert(file_contains(log_f, "using cached prices", 1000));
	order_body(body, sizeof(body), p, 1);
	r = fixture_order(at(stale_port), NULL, body);
	ck_assert_int_eq(r->status, 503);
	http_free(r);
	ck_assert_int_eq(stop_service(fresh_pid), 0);
	ck_assert_int_eq(stop_service(stale_pid), 0);
}
END_TEST

START_TEST(cancel_while_inventory_is_down)
{
	int orders_port = spare_port(7), dead_port = spare_port(8);
	char inv_url[64], log[64], p[64], body[512], id[64];
	const char *env[] = { inv_url, "INVENTORY_RETRY_ATTEMPTS=1", NULL };
	long long on_hand, reserved = -1;
	struct http_resp *r;
	int pid;

	snprintf(inv_url, sizeof(inv_url), "INVENTORY_URL=%s", at(dead_port));
	fixture_product(p, 100, "EUR", 3);
	order_body(body, sizeof(body), p, 3);
	r = fixture_order(NULL, NULL, body);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, sizeof(id), "%s", fixture_str(r->json, "id"));
	http_free(r);

	pid = spawn_service("orders", orders_port, env, log);
	r = http_do("POST",
		    url(at(orders_port), "/api/v1/orders/%s/cancel", id), NULL,
		    NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(fixture_str(r->json, "status"), "cancelled");
	http_free(r);
	ck_assert(file_contains(log, "release deferred", 1000));
	/* The release owed is retried (by any orders replica) until taken. */
	for (int i = 0; i < 100 && reserved != 0; i++) {
		fixture_stock(p, &on_hand, &reserved);
		if (reserved != 0)
			usleep(100 * 1000);
	}
	ck_assert_int_eq(reserved, 0);
	ck_assert_int_eq(stop_service(pid), 0);
}
END_TEST

Suite *
resilience_suite(void)
{
	Suite *s = suite_create("resilience");
	TCase *tc = tcase_create("dependencies");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, inventory_down_then_back);
	tcase_add_test(tc, hanging_inventory_ends_at_the_deadline);
	tcase_add_test(tc, products_down_uses_fresh_cached_prices);
	tcase_add_test(tc, cancel_while_inventory_is_down);
	suite_add_tcase(s, tc);
	return s;
}
