/*
 * test_outage.c - RabbitMQ stopped in the middle of a burst of 500 orders,
 * then started again, under the running services: the API keeps taking
 * orders (each order and its order.created commit to the outbox), /health
 * turns degraded and counts the backlog, and after the restart every
 * order.created reaches the broker, every order is confirmed and each
 * effect happened exactly once. Effects are counted in the databases (a
 * duplicate applied would show as a second inventory.confirmed or
 * order.confirmed row, or as stock taken twice), not as wire messages,
 * which at-least-once delivery may repeat. The broker is stopped and
 * started by scripts/infra.sh through RABBITMQ_STOP_CMD/RABBITMQ_START_CMD;
 * the stop runs on a thread so it lands while orders are being placed.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"
#include "mq_fixture.h"
#include "orders_fixture.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/util.h"

#define ORDERS	     500
#define PRODUCTS     5
#define STOCK	     200   /* per product: 500 orders of 1 take 100 each */
#define STOP_AT	     100   /* orders placed before the broker is stopped */
#define DOWN_ORDERS  100   /* placed after the stop completed, at least */
#define SETTLE_MS    90000 /* all confirmed after the restart, at most */
#define ID_ARRAY_MAX (ORDERS * (SVC_UUID_LEN + 1) + 3)

static char queue[64];
static char ids[ORDERS][SVC_UUID_LEN + 1];
static char id_array[ID_ARRAY_MAX]; /* "{id,id,...}" for = ANY($1) */
static atomic_int placed;
static atomic_int stop_rc = -1;

static void
setup(void)
{
	static const char *const keys[] = { "order.created", NULL };

	mqf_tap(queue, "outagetest", keys);
}

static void
teardown(void)
{
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);

	/* A failed test may leave the broker stopped: later suites need it. */
	if (mq == NULL)
		run_cmd(getenv("RABBITMQ_START_CMD"), NULL);
	svc_mq_close(mq);
	mqf_untap(queue);
}

static void *
stop_broker(void *arg)
{
	(void)arg;
	while (atomic_load(&placed) < STOP_AT)
		pause_ms(5);
	atomic_store(&stop_rc, run_cmd(env_or_fail("RABBITMQ_STOP_CMD"), NULL));
	return NULL;
}

/* Places order i (one unit of product i % PRODUCTS), retrying a 503 with
 * the same Idempotency-Key, and records its id. */
static void
place(int i, char products[PRODUCTS][64])
{
	char key[SVC_UUID_LEN + 1], customer[SVC_UUID_LEN + 1], body[256];
	struct http_resp *r;

	svc_uuid_v4(key);
	svc_uuid_v4(customer);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":1}]}",
		 customer, products[i % PRODUCTS]);
	r = fixture_order(NULL, key, body);
	for (int a = 0; a < 5 && r->status == 503; a++) {
		http_free(r);
		pause_ms(100);
		r = fixture_order(NULL, key, body);
	}
	ck_assert_msg(r->status == 201, "order %d: %ld %s", i, r->status,
		      r->body);
	snprintf(ids[i], sizeof(ids[i]), "%s", fixture_str(r->json, "id"));
	http_free(r);
}

static PGconn *
db(const char *env)
{
	PGconn *c = PQconnectdb(env_or_fail(env));

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	return c;
}

/* One bigint from sql, run with $1 = the order ids. */
static long long
count(PGconn *c, const char *sql)
{
	const char *params[] = { id_array };
	PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	long long n;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
		      PQerrorMessage(c));
	n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* Polls the orders' /health until the broker shows down and the backlog
 * holds the orders placed meanwhile; the report, or NULL. */
static json_t *
wait_degraded(void)
{
	long long end = svc_now_ms() + 20000;

	while (svc_now_ms() < end) {
		struct http_resp *r = http_do(
			"GET", url(fixture_orders(), "/health"), NULL, NULL);
		json_t *rabbit = json_object_get(
			json_object_get(r->json, "checks"), "rabbitmq");
		const char *s =
			json_string_value(json_object_get(rabbit, "status"));
		json_t *outbox = json_object_get(
			json_object_get(r->json, "checks"), "outbox");
		/* The backlog is the relay's latest count: let it catch up
		 * with the orders placed while the broker was down. */
		json_int_t pending =
			json_integer_value(json_object_get(outbox, "pending"));

		if (r->status == 200 && s != NULL && strcmp(s, "down") == 0 &&
		    pending >= DOWN_ORDERS) {
			json_t *report = json_incref(r->json);

			http_free(r);
			return report;
		}
		http_free(r);
		pause_ms(100);
	}
	return NULL;
}

/* A sample without labels from the orders' /metrics (-1 when absent). */
static double
gauge(const char *name)
{
	struct http_resp *r =
		http_do("GET", url(fixture_orders(), "/metrics"), NULL, NULL);
	char line[128];
	const char *at;
	double v = -1;

	snprintf(line, sizeof(line), "\n%s ", name);
	at = r->status == 200 ? strstr(r->body, line) : NULL;
	if (at != NULL)
		v = atof(at + strlen(line));
	http_free(r);
	return v;
}

/* Drains the test queue until it has seen an order.created per order. */
static int
created_seen(void)
{
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);
	bool seen[ORDERS] = { false };
	int n = 0;
	long long end = svc_now_ms() + 30000;

	ck_assert_ptr_nonnull(mq);
	ck_assert_int_eq(svc_mq_consume(mq, queue, 200), SVC_OK);
	while (n < ORDERS && svc_now_ms() < end) {
		struct svc_mq_delivery d;
		json_t *body, *data;
		const char *oid;

		if (svc_mq_next(mq, end - svc_now_ms(), &d) != SVC_OK)
			break;
		body = json_loadb(d.body, d.len, 0, NULL);
		data = json_object_get(body, "data");
		oid = json_string_value(json_object_get(data, "order_id"));
		for (int i = 0; oid != NULL && i < ORDERS; i++) {
			if (!seen[i] && strcmp(ids[i], oid) == 0) {
				seen[i] = true;
				n++;
				break;
			}
		}
		json_decref(body);
		svc_mq_ack(mq, d.tag);
		svc_mq_delivery_cleanup(&d);
	}
	svc_mq_close(mq);
	return n;
}

START_TEST(test_broker_restart_mid_burst)
{
	char products[PRODUCTS][64];
	pthread_t stopper;
	json_t *health, *outbox;
	PGconn *orders, *inventory;
	long long end, confirmed = 0;
	size_t at = 0;

	for (int i = 0; i < PRODUCTS; i++)
		fixture_product(products[i], 100, "EUR", STOCK);

	atomic_store(&placed, 0);
	ck_assert_int_eq(pthread_create(&stopper, NULL, stop_broker, NULL), 0);
	for (int i = 0; i < ORDERS; i++) {
		/* The last DOWN_ORDERS wait for the broker to be fully down. */
		if (i == ORDERS - DOWN_ORDERS)
			pthread_join(stopper, NULL);
		place(i, products);
		atomic_fetch_add(&placed, 1);
	}
	ck_assert_int_eq(atomic_load(&stop_rc), 0);

	/* Down: degraded, not unhealthy, with the events waiting. */
	health = wait_degraded();
	ck_assert_msg(health != NULL, "orders /health never showed rabbitmq "
				      "down with the backlog");
	ck_assert_str_eq(json_string_value(json_object_get(health, "status")),
			 "degraded");
	outbox = json_object_get(json_object_get(health, "checks"), "outbox");
	ck_assert_int_ge(json_integer_value(json_object_get(outbox, "pending")),
			 DOWN_ORDERS);
	json_decref(health);
	/* The gauges the backlog alert reads say the same meanwhile. */
	ck_assert(gauge("outbox_pending") >= DOWN_ORDERS);
	ck_assert(gauge("outbox_oldest_age_seconds") > 0);

	ck_assert_int_eq(run_cmd(env_or_fail("RABBITMQ_START_CMD"), NULL), 0);

	id_array[at++] = '{';
	for (int i = 0; i < ORDERS; i++)
		at += (size_t)snprintf(id_array + at, sizeof(id_array) - at,
				       "%s%s", i ? "," : "", ids[i]);
	snprintf(id_array + at, sizeof(id_array) - at, "}");

	orders = db("ORDERS_DATABASE_URL");
	inventory = db("INVENTORY_DATABASE_URL");
	end = svc_now_ms() + SETTLE_MS;
	while (svc_now_ms() < end) {
		confirmed = count(orders, "SELECT count(*) FROM orders WHERE"
					  " id = ANY($1::uuid[]) AND"
					  " status = 'confirmed'");
		if (confirmed == ORDERS)
			break;
		pause_ms(200);
	}
	ck_assert_msg(confirmed == ORDERS, "%lld of %d orders confirmed",
		      confirmed, ORDERS);

	/* Each effect once: one confirmed reservation and one
	 * inventory.confirmed per order, one order.confirmed per order. */
	ck_assert_int_eq(count(inventory, "SELECT count(*) FROM reservations"
					  " WHERE order_id = ANY($1::uuid[])"
					  " AND status = 'confirmed'"),
			 ORDERS);
	ck_assert_int_eq(count(inventory,
			       "SELECT count(*) FROM outbox WHERE"
			       " event_type = 'inventory.confirmed' AND"
			       " (data->>'order_id')::uuid = ANY($1::uuid[])"),
			 ORDERS);
	ck_assert_int_eq(count(orders, "SELECT count(*) FROM outbox WHERE"
				       " event_type = 'order.confirmed' AND"
				       " aggregate_id = ANY($1::uuid[])"),
			 ORDERS);
	ck_assert_int_eq(count(orders, "SELECT count(*) FROM outbox WHERE"
				       " event_type = 'order.created' AND"
				       " aggregate_id = ANY($1::uuid[]) AND"
				       " sent_at IS NULL"),
			 0);
	PQfinish(orders);
	PQfinish(inventory);

	/* Stock taken once per order: STOCK - ORDERS / PRODUCTS each. */
	for (int i = 0; i < PRODUCTS; i++) {
		long long on_hand, reserved;

		fixture_stock(products[i], &on_hand, &reserved);
		ck_assert_int_eq(on_hand, STOCK - ORDERS / PRODUCTS);
		ck_assert_int_eq(reserved, 0);
	}
	/* And every order.created reached the broker. */
	ck_assert_int_eq(created_seen(), ORDERS);
}
END_TEST

Suite *
outage_suite(void)
{
	Suite *s = suite_create("outage");
	TCase *tc = tcase_create("broker restart under load");

	tcase_set_timeout(tc, 240);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_broker_restart_mid_burst);
	suite_add_tcase(s, tc);
	return s;
}
