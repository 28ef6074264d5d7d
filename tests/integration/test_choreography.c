/*
 * test_choreography.c - the services talking through events alone: a new
 * product gets a stock row at inventory, stock makes the product
 * available, a placed order is confirmed through inventory.confirmed, a
 * cancelled order returns its stock, the consumers' inbox turns a
 * redelivered event (same id) into a no-op, and a poison message ends in
 * its queue's dead-letter queue without stopping the consumer. Everything is
 * polled with a bound, since events arrive when they arrive. This is not the
 * outbox relay's own test (test_events.c).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"
#include "mq_fixture.h"
#include "orders_fixture.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/trace.h"
#include "svc/util.h"

#define WAIT_MS	  10000
#define STEP_MS	  50
#define TRACE_ID  "0af7651916cd43dd8448eb211c80319c"
#define TRACE_HDR "traceparent: 00-" TRACE_ID "-b7ad6b7169203331-01"

/* GET inventory for product; status code, on_hand and reserved. */
static long
stock_of(const char *product, long long *on_hand, long long *reserved)
{
	struct http_resp *r = http_do("GET",
				      url(env_or_fail("INVENTORY_URL"),
					  "/api/v1/inventory/%s", product),
				      NULL, NULL);
	long status = r->status;

	if (status == 200) {
		*on_hand =
			json_integer_value(json_object_get(r->json, "on_hand"));
		*reserved = json_integer_value(
			json_object_get(r->json, "reserved"));
	}
	http_free(r);
	return status;
}

/* Polls until the stock row of product has on_hand and reserved. */
static bool
wait_stock(const char *product, long long on_hand, long long reserved)
{
	long long end = svc_now_ms() + WAIT_MS, oh = -1, rs = -1;

	while (svc_now_ms() < end) {
		if (stock_of(product, &oh, &rs) == 200 && oh == on_hand &&
		    rs == reserved)
			return true;
		pause_ms(STEP_MS);
	}
	return false;
}

/* The product's available flag (asserting it exists). */
static bool
is_available(const char *product)
{
	struct http_resp *r = http_do("GET",
				      url(env_or_fail("PRODUCTS_URL"),
					  "/api/v1/products/%s", product),
				      NULL, NULL);
	bool yes;

	ck_assert_int_eq(r->status, 200);
	yes = json_is_true(json_object_get(r->json, "available"));
	http_free(r);
	return yes;
}

/* Polls until the product is available. */
static bool
wait_available(const char *product)
{
	long long end = svc_now_ms() + WAIT_MS;

	while (svc_now_ms() < end) {
		if (is_available(product))
			return true;
		pause_ms(STEP_MS);
	}
	return false;
}

static bool
wait_order(const char *id, const char *status)
{
	const char *h[] = { auth_header("admin"), NULL };
	long long end = svc_now_ms() + WAIT_MS;

	while (svc_now_ms() < end) {
		struct http_resp *r = http_do(
			"GET", url(fixture_orders(), "/api/v1/orders/%s", id),
			h, NULL);
		bool ok = r->status == 200 &&
			  strcmp(fixture_str(r->json, "status"), status) == 0;

		http_free(r);
		if (ok)
			return true;
		pause_ms(STEP_MS);
	}
	return false;
}

static void
create_product(char id[64])
{
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	char sku[SVC_UUID_LEN + 1], body[256];
	struct http_resp *r;

	svc_uuid_v4(sku);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"CHO-%.13s\",\"name\":\"Thing\","
		 "\"price_cents\":500,\"currency\":\"EUR\"}",
		 sku);
	r = http_do("POST",
		    url(env_or_fail("PRODUCTS_URL"), "/api/v1/products"), h,
		    body);
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	snprintf(id, 64, "%s", fixture_str(r->json, "id"));
	http_free(r);
}

/* A connection, or the test fails. */
static struct svc_mq *
open_mq_ok(enum svc_mq_role role)
{
	struct svc_mq *mq = mqf_open(role);

	ck_assert_msg(mq != NULL, "cannot reach RABBITMQ_URL");
	return mq;
}

/* The test's own queue, bound to "events" with "#" by the fixture. */
static char tap[64];

static void
setup(void)
{
	static const char *const all[] = { "#", NULL };

	mqf_tap(tap, "choreotest", all);
}

static void
teardown(void)
{
	mqf_untap(tap);
}

#define FLOW_MAX 64

/* The flow's events as the outboxes hold them: id and type. */
struct flow {
	int n;
	char id[FLOW_MAX][SVC_UUID_LEN + 1];
	char type[FLOW_MAX][64];
	int seen[FLOW_MAX];
};

/* Whether every row of r has sent_at (column 2) set. */
static bool
all_sent(PGresult *r)
{
	for (int i = 0; i < PQntuples(r); i++)
		if (PQgetisnull(r, i, 2))
			return false;
	return true;
}

/* Adds the rows sql selects (id, event_type, sent_at; $1 = key), once all
 * of them are sent (polled with a bound). */
static void
flow_add(struct flow *f, const char *env, const char *sql, const char *key)
{
	PGconn *c = PQconnectdb(env_or_fail(env));
	const char *params[] = { key };
	long long end = svc_now_ms() + WAIT_MS;
	PGresult *r = NULL;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	for (;;) {
		PQclear(r);
		r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
			      PQerrorMessage(c));
		if (all_sent(r) || svc_now_ms() >= end)
			break;
		pause_ms(STEP_MS);
	}
	ck_assert_msg(all_sent(r), "events of %s not all sent", key);
	for (int i = 0; i < PQntuples(r) && f->n < FLOW_MAX; i++, f->n++) {
		snprintf(f->id[f->n], sizeof(f->id[0]), "%s",
			 PQgetvalue(r, i, 0));
		snprintf(f->type[f->n], sizeof(f->type[0]), "%s",
			 PQgetvalue(r, i, 1));
	}
	PQclear(r);
	PQfinish(c);
}

static int
flow_count(const struct flow *f, const char *type)
{
	int n = 0;

	for (int i = 0; i < f->n; i++)
		n += strcmp(f->type[i], type) == 0;
	return n;
}

/* Checks one delivery against DESIGN's message format. */
static void
check_message(const struct svc_mq_delivery *d, json_t *body,
	      const char *trace_id)
{
	const char *type = fixture_str(body, "event_type");
	const char *source = fixture_str(body, "source");
	size_t agg = strcspn(type ? type : "", ".");

	ck_assert_str_eq(d->content_type, "application/json");
	ck_assert_int_eq(d->delivery_mode, 2);
	ck_assert_str_eq(d->exchange, "events");
	ck_assert_str_eq(d->message_id, fixture_str(body, "id"));
	ck_assert_str_eq(d->type, type);
	ck_assert_str_eq(d->routing_key, type);
	ck_assert_str_eq(d->app_id, source);
	ck_assert_int_gt(d->timestamp, 1700000000LL);
	ck_assert_ptr_nonnull(fixture_str(body, "timestamp"));
	ck_assert(json_is_object(json_object_get(body, "data")));
	/* products publish product.*, inventory inventory.*, orders order.* */
	ck_assert_int_eq(strncmp(source, type, agg), 0);
	ck_assert_msg(d->request_id != NULL && d->request_id[0] != '\0',
		      "%s without x-request-id", type);
	ck_assert_msg(svc_trace_valid(d->traceparent), "%s traceparent %s",
		      type, d->traceparent ? d->traceparent : "(none)");
	/* The order's events all belong to the trace of its POST. */
	if (strncmp(type, "product.", 8) != 0 &&
	    strcmp(type, "inventory.stock_changed") != 0 &&
	    strcmp(type, "order.cancelled") != 0 &&
	    strcmp(type, "inventory.released") != 0)
		ck_assert_msg(strncmp(d->traceparent + 3, trace_id, 32) == 0,
			      "%s traceparent %s not in trace %s", type,
			      d->traceparent, trace_id);
}

/*
 * Reads the tap until every event of the flow came, then a little more:
 * each must come exactly once with the documented properties.
 */
static void
check_tap(struct flow *f, const char *trace_id)
{
	struct svc_mq *mq = open_mq_ok(SVC_MQ_CONSUMER);
	long long end = svc_now_ms() + WAIT_MS;
	int missing = f->n;

	ck_assert_int_eq(svc_mq_consume(mq, tap, 100), SVC_OK);
	for (;;) {
		struct svc_mq_delivery d;
		long long left = missing > 0 ? end - svc_now_ms() : 300;
		json_t *body;

		if (left <= 0 || svc_mq_next(mq, left, &d) != SVC_OK)
			break;
		body = json_loadb(d.body, d.len, 0, NULL);
		for (int i = 0; i < f->n; i++) {
			if (strcmp(f->id[i], d.message_id) != 0)
				continue;
			check_message(&d, body, trace_id);
			ck_assert_msg(f->seen[i] == 0, "%s %s seen twice",
				      f->type[i], f->id[i]);
			f->seen[i]++;
			missing--;
		}
		json_decref(body);
		svc_mq_ack(mq, d.tag);
		svc_mq_delivery_cleanup(&d);
	}
	svc_mq_close(mq);
	for (int i = 0; i < f->n; i++)
		ck_assert_msg(f->seen[i] == 1, "%s %s never seen", f->type[i],
			      f->id[i]);
}

START_TEST(test_product_to_order)
{
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	char p[64], c[SVC_UUID_LEN + 1], key[SVC_UUID_LEN + 1], body[256];
	char order[64], kh[128];
	const char *oh[] = { "Content-Type: application/json", kh, TRACE_HDR,
			     NULL };
	struct flow f = { 0 };
	struct http_resp *r;

	create_product(p);
	ck_assert_msg(wait_stock(p, 0, 0), "no stock row for %s", p);

	r = http_do(
		"PUT",
		url(env_or_fail("INVENTORY_URL"), "/api/v1/inventory/%s", p), h,
		"{\"on_hand\":5}");
	ck_assert_msg(r->status == 200 || r->status == 201, "%ld %s", r->status,
		      r->body);
	http_free(r);
	ck_assert_msg(wait_available(p), "product %s never available", p);

	svc_uuid_v4(c);
	snprintf(body, sizeof(body),
		 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
		 "\"quantity\":2}]}",
		 c, p);
	svc_uuid_v4(key);
	snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
	/* The key makes a retry safe: an earlier suite restarts PostgreSQL,
	 * and a connection that has not noticed yet fails once. */
	r = http_do("POST", url(fixture_orders(), "/api/v1/orders"), oh, body);
	for (int i = 0; i < 3 && r->status == 503; i++) {
		http_free(r);
		r = http_do("POST", url(fixture_orders(), "/api/v1/orders"), oh,
			    body);
	}
	ck_assert_msg(r->status == 201 || r->status == 200, "%ld %s", r->status,
		      r->body);
	snprintf(order, sizeof(order), "%s", fixture_str(r->json, "id"));
	http_free(r);
	ck_assert_msg(wait_order(order, "confirmed"), "order %s not confirmed",
		      order);
	ck_assert_msg(wait_stock(p, 3, 0), "stock not taken for %s", p);

	r = http_do("POST",
		    url(fixture_orders(), "/api/v1/orders/%s/cancel", order), h,
		    NULL);
	ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
	http_free(r);
	ck_assert_msg(wait_stock(p, 5, 0), "stock not returned for %s", p);

	/* Every event of the flow, from the outboxes (once all are sent):
	 * each must reach the tap exactly once, as DESIGN describes it. */
	flow_add(&f, "PRODUCTS_DATABASE_URL",
		 "SELECT id, event_type, sent_at FROM outbox"
		 " WHERE aggregate_id = $1",
		 p);
	flow_add(&f, "INVENTORY_DATABASE_URL",
		 "SELECT id, event_type, sent_at FROM outbox"
		 " WHERE data->>'product_id' = $1 OR data->'items' @> "
		 " jsonb_build_array(jsonb_build_object('product_id', $1))",
		 p);
	flow_add(&f, "ORDERS_DATABASE_URL",
		 "SELECT id, event_type, sent_at FROM outbox"
		 " WHERE aggregate_id = $1",
		 order);
	ck_assert_int_eq(flow_count(&f, "product.created"), 1);
	ck_assert_int_ge(flow_count(&f, "inventory.stock_changed"), 3);
	ck_assert_int_eq(flow_count(&f, "inventory.reserved"), 1);
	ck_assert_int_eq(flow_count(&f, "order.created"), 1);
	ck_assert_int_eq(flow_count(&f, "inventory.confirmed"), 1);
	ck_assert_int_eq(flow_count(&f, "order.confirmed"), 1);
	ck_assert_int_eq(flow_count(&f, "order.cancelled"), 1);
	ck_assert_int_eq(flow_count(&f, "inventory.released"), 1);
	check_tap(&f, TRACE_ID);
}
END_TEST

static void
publish_typed(struct svc_mq *pub, const char *type, const char *event_id,
	      const char *body)
{
	struct svc_mq_message m = { 0 };
	uint64_t tag = 0;

	m.type = type;
	m.message_id = event_id;
	m.body = body;
	m.len = strlen(body);
	ck_assert_int_eq(svc_mq_publish(pub, &m, &tag), 0);
	ck_assert_int_eq(svc_mq_wait_confirms(pub, tag, 5000, NULL, NULL), 0);
}

static void
publish_raw(struct svc_mq *pub, const char *event_id, const char *body)
{
	publish_typed(pub, "product.created", event_id, body);
}

/* inventory.stock_changed for product; version < 0: without one. */
static void
publish_stock(struct svc_mq *pub, const char *product, int version,
	      int available)
{
	char id[SVC_UUID_LEN + 1], body[512], v[32] = "";

	svc_uuid_v4(id);
	if (version >= 0)
		snprintf(v, sizeof(v), ",\"version\":%d", version);
	snprintf(body, sizeof(body),
		 "{\"id\":\"%s\",\"event_type\":\"inventory.stock_changed\","
		 "\"source\":\"choreotest\",\"timestamp\":"
		 "\"2026-01-01T00:00:00.000000Z\",\"data\":{\"product_id\":"
		 "\"%s\",\"on_hand\":%d,\"reserved\":0,\"available\":%d%s}}",
		 id, product, available, available, v);
	publish_typed(pub, "inventory.stock_changed", id, body);
}

static void
publish_created(struct svc_mq *pub, const char *event_id, const char *product)
{
	char body[512];

	snprintf(body, sizeof(body),
		 "{\"id\":\"%s\",\"event_type\":\"product.created\","
		 "\"source\":\"choreotest\",\"timestamp\":"
		 "\"2026-01-01T00:00:00.000000Z\",\"data\":"
		 "{\"id\":\"%s\"}}",
		 event_id, product);
	publish_raw(pub, event_id, body);
}

/*
 * The same event id twice, the second time naming another product: the
 * inbox skips it, so that product never gets a stock row. A third event
 * published after it marks when the second must have been handled.
 */
START_TEST(test_duplicate_is_noop)
{
	char ev[SVC_UUID_LEN + 1], ev3[SVC_UUID_LEN + 1];
	char p1[SVC_UUID_LEN + 1], p2[SVC_UUID_LEN + 1], p3[SVC_UUID_LEN + 1];
	struct svc_mq *pub = open_mq_ok(SVC_MQ_PUBLISHER);
	long long oh = 0, rs = 0;

	svc_uuid_v4(ev);
	svc_uuid_v4(ev3);
	svc_uuid_v4(p1);
	svc_uuid_v4(p2);
	svc_uuid_v4(p3);
	publish_created(pub, ev, p1);
	publish_created(pub, ev, p1);
	publish_created(pub, ev, p2);
	publish_created(pub, ev3, p3);
	svc_mq_close(pub);
	ck_assert_msg(wait_stock(p1, 0, 0), "no stock row for %s", p1);
	ck_assert_msg(wait_stock(p3, 0, 0), "no stock row for %s", p3);
	ck_assert_int_eq(stock_of(p2, &oh, &rs), 404);
}
END_TEST

/*
 * Poison through a real service's queue: a body that is not JSON and an
 * event without the product id inventory needs are each returned to
 * inventory.products until its delivery limit, then dead-lettered to
 * inventory.products.dead (reason delivery_limit, after
 * CONSUMER_MAX_REDELIVERIES returns) - and a good event published after
 * them is still applied: the consumer kept going.
 */
START_TEST(test_poison_is_dead_lettered)
{
	static const char dead_queue[] = "inventory.products.dead";
	char garbage[SVC_UUID_LEN + 1], empty[SVC_UUID_LEN + 1];
	char good[SVC_UUID_LEN + 1], product[SVC_UUID_LEN + 1], body[512];
	const char *want[] = { garbage, empty };
	bool seen[2] = { false, false };
	struct svc_mq *pub = open_mq_ok(SVC_MQ_PUBLISHER);
	struct svc_mq *dead = open_mq_ok(SVC_MQ_CONSUMER);
	long long end = svc_now_ms() + WAIT_MS;

	svc_uuid_v4(garbage);
	svc_uuid_v4(empty);
	svc_uuid_v4(good);
	svc_uuid_v4(product);
	publish_raw(pub, garbage, "this is not an event {");
	snprintf(body, sizeof(body),
		 "{\"id\":\"%s\",\"event_type\":\"product.created\","
		 "\"source\":\"choreotest\",\"timestamp\":"
		 "\"2026-01-01T00:00:00.000000Z\",\"data\":{}}",
		 empty);
	publish_raw(pub, empty, body);
	publish_created(pub, good, product);
	svc_mq_close(pub);

	ck_assert_msg(wait_stock(product, 0, 0),
		      "the event after the poison was not applied");
	ck_assert_int_eq(svc_mq_consume(dead, dead_queue, 10), SVC_OK);
	while ((!seen[0] || !seen[1]) && svc_now_ms() < end) {
		struct svc_mq_delivery d;

		ck_assert_int_eq(svc_mq_next(dead, end - svc_now_ms(), &d),
				 SVC_OK);
		for (int i = 0; i < 2; i++) {
			if (d.message_id == NULL ||
			    strcmp(d.message_id, want[i]) != 0)
				continue;
			ck_assert_str_eq(d.dead_reason, "delivery_limit");
			ck_assert_str_eq(d.routing_key, "inventory.products");
			seen[i] = true;
		}
		svc_mq_ack(dead, d.tag);
		svc_mq_delivery_cleanup(&d);
	}
	svc_mq_close(dead);
	ck_assert_msg(seen[0], "the non-JSON body was not dead-lettered");
	ck_assert_msg(seen[1], "the event without an id was not "
			       "dead-lettered");
}
END_TEST

/*
 * products keeps `available` from the newest stock version it saw: an
 * older inventory.stock_changed arriving late changes nothing; one
 * without a version (DESIGN's four members only) still applies. Events
 * for a second product mark when the queue got past the stale one.
 */
START_TEST(test_stale_stock_event_ignored)
{
	struct svc_mq *pub = open_mq_ok(SVC_MQ_PUBLISHER);
	char p[64], marker[64];

	create_product(p);
	create_product(marker);
	publish_stock(pub, p, 5, 3);
	ck_assert_msg(wait_available(p), "version 5 not applied");
	publish_stock(pub, p, 4, 0); /* stale */
	publish_stock(pub, marker, 1, 1);
	ck_assert_msg(wait_available(marker), "marker not applied");
	ck_assert_msg(is_available(p), "stale version 4 was applied");
	publish_stock(pub, p, -1, 0); /* no version: applies */
	for (long long end = svc_now_ms() + WAIT_MS;
	     is_available(p) && svc_now_ms() < end;)
		pause_ms(STEP_MS);
	ck_assert_msg(!is_available(p), "event without a version ignored");
	publish_stock(pub, p, 6, 2);
	ck_assert_msg(wait_available(p), "version 6 not applied");
	svc_mq_close(pub);
}
END_TEST

Suite *
choreography_suite(void)
{
	Suite *s = suite_create("choreography");
	TCase *tc = tcase_create("events between services");

	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_product_to_order);
	tcase_add_test(tc, test_duplicate_is_noop);
	tcase_add_test(tc, test_poison_is_dead_lettered);
	tcase_add_test(tc, test_stale_stock_event_ignored);
	suite_add_tcase(s, tc);
	return s;
}
