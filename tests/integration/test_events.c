/*
 * test_events.c - the outbox relay end to end: a product created through
 * the real products API comes out of RabbitMQ as product.created with the
 * documented body and properties, /health reports the broker and the
 * outbox, and two transactions that commit out of seq order both get
 * their events delivered (the relay claims unsent rows, it does not read
 * past the last seq it saw). Each test listens on its own queue
 * ("eventstest.<8 hex>", bound with `#` on "events"), declared and deleted
 * by an unchecked fixture, so it is deleted even when the test fails.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"
#include "mq_fixture.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/trace.h"
#include "svc/util.h"

#define WAIT_MS 20000

static char queue[64];

static void
setup(void)
{
	static const char *const all[] = { "#", NULL };

	mqf_tap(queue, "eventstest", all);
}

static void
teardown(void)
{
	mqf_untap(queue);
}

static struct svc_mq *
consumer(void)
{
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);

	ck_assert_msg(mq != NULL, "cannot reach RABBITMQ_URL");
	ck_assert_int_eq(svc_mq_consume(mq, queue, 100), SVC_OK);
	return mq;
}

/*
 * Waits for the message whose message_id is id (acking everything else);
 * returns 0 with it in *d, or SVC_ETIMEOUT.
 */
static int
wait_for(struct svc_mq *mq, const char *id, struct svc_mq_delivery *d)
{
	long long end = svc_now_ms() + WAIT_MS;

	while (svc_now_ms() < end) {
		int rc = svc_mq_next(mq, end - svc_now_ms(), d);

		if (rc != SVC_OK)
			return rc;
		svc_mq_ack(mq, d->tag);
		if (d->message_id != NULL && strcmp(d->message_id, id) == 0)
			return SVC_OK;
		svc_mq_delivery_cleanup(d);
	}
	return SVC_ETIMEOUT;
}

/* Waits for a product.created whose data.id is product_id. */
static int
wait_created(struct svc_mq *mq, const char *product_id,
	     struct svc_mq_delivery *d)
{
	long long end = svc_now_ms() + WAIT_MS;

	while (svc_now_ms() < end) {
		int rc = svc_mq_next(mq, end - svc_now_ms(), d);
		json_t *body, *data;
		bool match;

		if (rc != SVC_OK)
			return rc;
		svc_mq_ack(mq, d->tag);
		body = json_loads(d->body, 0, NULL);
		data = json_object_get(body, "data");
		match = d->type != NULL &&
			strcmp(d->type, "product.created") == 0 &&
			json_string_value(json_object_get(data, "id")) !=
				NULL &&
			strcmp(json_string_value(json_object_get(data, "id")),
			       product_id) == 0;
		json_decref(body);
		if (match)
			return SVC_OK;
		svc_mq_delivery_cleanup(d);
	}
	return SVC_ETIMEOUT;
}

START_TEST(test_product_created_event)
{
	struct svc_mq *mq = consumer();
	char sku[64], body[256], rid[SVC_UUID_LEN + 1], rid_h[96];
	char uuid[SVC_UUID_LEN + 1];
	const char *h[4];
	struct http_resp *r;
	struct svc_mq_delivery d;
	json_t *ev, *data;
	const char *product_id;

	svc_uuid_v4(uuid);
	svc_uuid_v4(rid);
	snprintf(sku, sizeof(sku), "EV-%.12s", uuid);
	snprintf(rid_h, sizeof(rid_h), "X-Request-ID: %s", rid);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"%s\",\"name\":\"Evented\",\"price_cents\":100,"
		 "\"currency\":\"EUR\"}",
		 sku);
	h[0] = "Content-Type: application/json";
	h[1] = auth_header("admin");
	h[2] = rid_h;
	h[3] = NULL;
	r = http_do("POST",
		    url(env_or_fail("PRODUCTS_URL"), "/api/v1/products"), h,
		    body);
	ck_assert_int_eq(r->status, 201);
	product_id = json_string_value(json_object_get(r->json, "id"));
	ck_assert_ptr_nonnull(product_id);

	ck_assert_int_eq(wait_created(mq, product_id, &d), SVC_OK);
	ev = json_loads(d.body, 0, NULL);
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "event_type")),
			 "product.created");
	ck_assert_str_eq(json_string_value(json_object_get(ev, "source")),
			 "products");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(ev, "id")));
	ck_assert_str_eq(json_string_value(json_object_get(ev, "id")),
			 d.message_id);
	ck_assert_ptr_nonnull(
		json_string_value(json_object_get(ev, "timestamp")));
	data = json_object_get(ev, "data");
	ck_assert_str_eq(json_string_value(json_object_get(data, "sku")), sku);
	ck_assert_uint_eq(json_object_size(ev), 5);

	ck_assert_str_eq(d.type, "product.created");
	ck_assert_str_eq(d.routing_key, "product.created");
	ck_assert_str_eq(d.app_id, "products");
	ck_assert_str_eq(d.content_type, "application/json");
	ck_assert_int_eq(d.delivery_mode, 2);
	ck_assert(d.timestamp > 0);
	ck_assert_ptr_nonnull(d.request_id);
	ck_assert_str_eq(d.request_id, rid);
	json_decref(ev);
	svc_mq_delivery_cleanup(&d);
	http_free(r);
	svc_mq_close(mq);
}
END_TEST

START_TEST(test_health_reports_broker)
{
	struct http_resp *r = http_do(
		"GET", url(env_or_fail("PRODUCTS_URL"), "/health"), NULL, NULL);
	json_t *checks = json_object_get(r->json, "checks");
	json_t *rabbit = json_object_get(checks, "rabbitmq");
	json_t *outbox = json_object_get(checks, "outbox");

	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(rabbit);
	ck_assert_str_eq(json_string_value(json_object_get(rabbit, "status")),
			 "up");
	ck_assert_ptr_nonnull(outbox);
	ck_assert_ptr_nonnull(json_object_get(outbox, "pending"));
	ck_assert_ptr_nonnull(json_object_get(outbox, "oldest_s"));
	http_free(r);
}
END_TEST

static PGconn *
db(void)
{
	PGconn *c = PQconnectdb(env_or_fail("PRODUCTS_DATABASE_URL"));

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	return c;
}

static void
exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
		      PQerrorMessage(c));
	PQclear(r);
}

/* Inserts an outbox row in c's open transaction; its id into out. */
static void
insert_event(PGconn *c, char out[SVC_UUID_LEN + 1])
{
	PGresult *r = PQexec(
		c, "INSERT INTO outbox (event_type, aggregate_id, data)"
		   " VALUES ('eventstest.order', gen_random_uuid(), '{}')"
		   " RETURNING id");

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
		      PQerrorMessage(c));
	snprintf(out, SVC_UUID_LEN + 1, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

START_TEST(test_out_of_order_commits)
{
	struct svc_mq *mq = consumer();
	PGconn *a = db(), *b = db();
	char id_a[SVC_UUID_LEN + 1], id_b[SVC_UUID_LEN + 1];
	struct svc_mq_delivery d;

	exec_ok(a, "BEGIN");
	insert_event(a, id_a); /* the lower seq, committed last */
	exec_ok(b, "BEGIN");
	insert_event(b, id_b);
	exec_ok(b, "COMMIT");
	ck_assert_int_eq(wait_for(mq, id_b, &d), SVC_OK);
	svc_mq_delivery_cleanup(&d);
	exec_ok(a, "COMMIT");
	ck_assert_int_eq(wait_for(mq, id_a, &d), SVC_OK);
	ck_assert_str_eq(d.app_id, "products");
	/* Written outside a request: the event id stands in for the request
	 * id, and the trace is derived from it, so a re-send keeps it. */
	ck_assert_str_eq(d.request_id, id_a);
	ck_assert_ptr_nonnull(d.traceparent);
	ck_assert(svc_trace_valid(d.traceparent));
	ck_assert_int_eq(strncmp(d.traceparent + 3, id_a, 8), 0);
	svc_mq_delivery_cleanup(&d);
	PQfinish(a);
	PQfinish(b);
	svc_mq_close(mq);
}
END_TEST

Suite *
events_suite(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("outbox relay");

	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_product_created_event);
	tcase_add_test(tc, test_health_reports_broker);
	tcase_add_test(tc, test_out_of_order_commits);
	suite_add_tcase(s, tc);
	return s;
}
