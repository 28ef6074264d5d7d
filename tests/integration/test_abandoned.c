/*
 * test_abandoned.c - a reservation whose order was never stored is given
 * back (orders' releaser.c, RESERVATION_GRACE), against the real binaries.
 *
 * To lose inventory's answer for real, a second inventory (FAULTS=on, the
 * suite's inventory_db and broker: a replica) is slowed on
 * /api/v1/reservations past the attempt timeout of a second orders that
 * calls it (the suite's orders_db and broker: a replica too): orders gives
 * up and answers 503, inventory reserves a moment later. Without a key,
 * the reservation is given back once the grace has passed - by whichever
 * orders replica's releaser comes first, as in production - and ends
 * released for "order_not_stored"; with a key, a repeat inside the grace
 * uses the reservation, the order is confirmed and nothing is given back.
 * Everything is states polled with a bound; the only timings are the
 * settings of the two instances.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "integ.h"
#include "orders_fixture.h"

/* spare_port(): see scripts/test.sh (test_faults.c uses 18 too, by turns) */
#define INVENTORY_PORT_INDEX 19
#define ORDERS_PORT_INDEX    18
#define WAIT_MS		     20000
#define STEP_MS		     50

enum { INVENTORY, ORDERS, INSTANCES };

/* Pids of the instances running, shared with the forked tests. */
static int *spawned;
static char inventory_base[64], orders_base[64];

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

/*
 * The slow inventory, and an orders that gives up on it after one 300 ms
 * attempt, never opens its circuit, and gives back after grace.
 */
static void
start_pair(const char *grace)
{
	static char inv[128], grace_kv[64];
	const char *inv_env[] = { "FAULTS=on", NULL };
	const char *orders_env[] = { inv,
				     grace_kv,
				     "RELEASE_RETRY_INTERVAL=100ms",
				     "INVENTORY_RETRY_ATTEMPTS=1",
				     "INVENTORY_ATTEMPT_TIMEOUT=300ms",
				     "INVENTORY_BREAKER_FAILURES=1000",
				     NULL };
	char log[64];
	int port;

	ck_assert_ptr_nonnull(spawned);
	port = spare_port(INVENTORY_PORT_INDEX);
	spawned[INVENTORY] = spawn_service("inventory", port, inv_env, log);
	snprintf(inventory_base, sizeof(inventory_base), "http://127.0.0.1:%d",
		 port);
	snprintf(inv, sizeof(inv), "INVENTORY_URL=%s", inventory_base);
	snprintf(grace_kv, sizeof(grace_kv), "RESERVATION_GRACE=%s", grace);
	port = spare_port(ORDERS_PORT_INDEX);
	spawned[ORDERS] = spawn_service("orders", port, orders_env, log);
	snprintf(orders_base, sizeof(orders_base), "http://127.0.0.1:%d", port);
}

/* Reservations at the slow inventory answer after 1 s, or normally. */
static void
slow_reservations(bool on)
{
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	struct http_resp *r;

	if (on)
		r = http_do("PUT",
			    url(inventory_base, "/admin/faults/slow-reserve"),
			    h,
			    "{\"kind\":\"http_latency\","
			    "\"target\":\"/api/v1/reservations\","
			    "\"ms\":1000,\"ttl\":60}");
	else
		r = http_do("DELETE", url(inventory_base, "/admin/faults"), h,
			    NULL);
	ck_assert_msg(r->status == (on ? 201 : 204), "%ld %s", r->status,
		      r->body);
	http_free(r);
}

static const char *
order_body(const char *product)
{
	static char body[256];

	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"6f1c2b9e-3d4a-4f5b-8c6d-7e8f9a0b1c2d\","
		 "\"items\":[{\"product_id\":\"%s\",\"quantity\":2}]}",
		 product);
	return body;
}

/* Polls the product's stock until it is on_hand/reserved; asserts it. */
static void
await_stock(const char *product, long long on_hand, long long reserved)
{
	long long h = -1, r = -1;

	for (int waited = 0; waited < WAIT_MS; waited += STEP_MS) {
		fixture_stock(product, &h, &r);
		if (h == on_hand && r == reserved)
			return;
		pause_ms(STEP_MS);
	}
	ck_abort_msg("stock of %s is %lld on hand, %lld reserved; expected "
		     "%lld and %lld",
		     product, h, r, on_hand, reserved);
}

/* Reservations of product released for "order_not_stored", in
 * inventory's own database. */
static long long
given_back(const char *product)
{
	return db_count("INVENTORY_DATABASE_URL",
			"SELECT count(*) FROM reservations r"
			" JOIN reservation_items i ON i.reservation_id = r.id"
			" WHERE i.product_id = $1 AND r.status = 'released'"
			" AND r.reason = 'order_not_stored'",
			product);
}

/* orders' reservation attempts still written down for product. */
static long long
attempts_left(const char *product)
{
	return db_count("ORDERS_DATABASE_URL",
			"SELECT count(*) FROM reservation_attempts"
			" WHERE body LIKE '%' || $1 || '%'",
			product);
}

/*
 * No key: orders answers 503, inventory reserves anyway; once the grace
 * has passed the 2 units are given back: the reservation ends released
 * for "order_not_stored", nothing is reserved.
 */
START_TEST(test_lost_answer_given_back)
{
	char product[64];
	struct http_resp *r;
	int waited = 0;

	fixture_product(product, 250, "EUR", 10);
	start_pair("500ms");
	slow_reservations(true);
	r = fixture_order(orders_base, NULL, order_body(product));
	ck_assert_msg(r->status == 503, "%ld %s", r->status, r->body);
	http_free(r);
	slow_reservations(false);
	while (given_back(product) == 0 && waited < WAIT_MS) {
		pause_ms(STEP_MS);
		waited += STEP_MS;
	}
	ck_assert_int_eq(given_back(product), 1);
	ck_assert_int_eq(attempts_left(product), 0);
	await_stock(product, 10, 0);
}
END_TEST

/*
 * With a key: the first attempt loses its answer, the repeat (inside a
 * long grace) gets the same reservation and stores the order - which
 * deletes what was written down of the attempt in the same transaction,
 * so nothing is left for the releaser to give back - and it is confirmed.
 */
START_TEST(test_repeat_uses_the_reservation)
{
	char product[64], key[80];
	struct http_resp *r;

	fixture_product(product, 250, "EUR", 10);
	snprintf(key, sizeof(key), "abandoned-%s", product);
	start_pair("30s");
	slow_reservations(true);
	r = fixture_order(orders_base, key, order_body(product));
	ck_assert_msg(r->status == 503, "%ld %s", r->status, r->body);
	http_free(r);
	await_stock(product, 10, 2);
	slow_reservations(false);
	r = fixture_order(orders_base, key, order_body(product));
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	http_free(r);
	ck_assert_int_eq(attempts_left(product), 0);
	/* confirmed through events: 2 taken from on_hand, none reserved */
	await_stock(product, 8, 0);
}
END_TEST

Suite *
abandoned_suite(void)
{
	Suite *s = suite_create("abandoned");
	TCase *tc = tcase_create("grace");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lost_answer_given_back);
	tcase_add_test(tc, test_repeat_uses_the_reservation);
	suite_add_tcase(s, tc);
	return s;
}
