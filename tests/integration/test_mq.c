/*
 * test_mq.c - libsvc's mq module against a real RabbitMQ (RABBITMQ_URL,
 * the private broker scripts/test.sh starts): a batch published with
 * confirms and consumed back with every property, unroutable messages
 * returned while their neighbours are acked, dead letters, the
 * redelivery limit, redelivery after a consumer went away, timeouts, a
 * broken channel, and opens that must fail fast.
 *
 * Every test names its queues and routing keys with a random prefix
 * ("mqtest.<8 hex>.<test>") and binds patterns under that prefix only, so
 * tests and runs never see each other's messages (nor the services'
 * events), and deletes its queues at the end. Waiting is always polling
 * with a bound, never sleeping.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integ.h"
#include "svc/config.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/util.h"

#define BATCH	    1000
#define WAIT_MS	    10000
#define EMPTY_MS    300
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static struct svc_mq_config
config(void)
{
	struct svc_mq_config c = {
		.url = env_or_fail("RABBITMQ_URL"),
		.heartbeat_s = 30,
		.socket_timeout_ms = 5000,
		.app_id = "mqtest",
	};

	return c;
}

static struct svc_mq *
open_as(enum svc_mq_role role)
{
	struct svc_mq_config c = config();
	struct svc_mq *mq = svc_mq_open(&c, role);

	ck_assert_msg(mq != NULL, "cannot open %s",
		      role == SVC_MQ_PUBLISHER ? "a publisher" : "a consumer");
	return mq;
}

/* "mqtest.<8 random hex>.<what>": unique per test and run. */
static void
unique(char *out, size_t size, const char *what)
{
	char id[SVC_UUID_LEN + 1];

	svc_uuid_v4(id);
	snprintf(out, size, "mqtest.%.8s.%s", id, what);
}

/* Outcomes by tag, as svc_mq_wait_confirms() reports them. */
struct outcomes {
	int calls;
	int count[SVC_MQ_UNCONFIRMED + 1];
	enum svc_mq_outcome of[BATCH + 1];
	uint64_t last;
	bool in_order;
};

static void
collect(void *arg, uint64_t tag, enum svc_mq_outcome o)
{
	struct outcomes *c = arg;

	if (c->calls == 0)
		c->in_order = true;
	if (tag <= c->last)
		c->in_order = false;
	c->last = tag;
	c->calls++;
	c->count[o]++;
	if (tag <= BATCH)
		c->of[tag] = o;
}

/* Publishes one small event; returns its tag. */
static uint64_t
publish(struct svc_mq *pub, const char *type, const char *id, const char *body)
{
	struct svc_mq_message m = {
		.type = type,
		.message_id = id,
		.body = body,
		.len = strlen(body),
		.traceparent = TRACEPARENT,
		.request_id = "req-mqtest",
	};
	uint64_t tag = 0;

	ck_assert_int_eq(svc_mq_publish(pub, &m, &tag), 0);
	return tag;
}

/* Publishes one event and waits for its ack. */
static void
publish_confirmed(const char *type, const char *id, const char *body)
{
	struct svc_mq *pub = open_as(SVC_MQ_PUBLISHER);
	struct outcomes c = { 0 };
	uint64_t tag = publish(pub, type, id, body);

	ck_assert_int_eq(svc_mq_wait_confirms(pub, tag, WAIT_MS, collect, &c),
			 0);
	ck_assert_int_eq(c.of[tag], SVC_MQ_ACKED);
	svc_mq_close(pub);
}

static void
delete_queue(const char *queue)
{
	struct svc_mq *mq = open_as(SVC_MQ_CONSUMER);

	ck_assert_int_eq(svc_mq_delete_queue(mq, queue), 0);
	svc_mq_close(mq);
}

START_TEST(open_and_close)
{
	struct svc_mq *pub = open_as(SVC_MQ_PUBLISHER);
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER);
	struct svc_mq_message m = { .type = "mqtest.x", .message_id = "1" };
	struct svc_mq_delivery d;

	ck_assert(svc_mq_ok(pub));
	ck_assert(svc_mq_ok(cons));
	ck_assert(!svc_mq_ok(NULL));
	/* Each role refuses the other's calls. */
	ck_assert_int_eq(svc_mq_publish(cons, &m, NULL), SVC_EINVAL);
	ck_assert_int_eq(svc_mq_consume(pub, "mqtest.none", 1), SVC_EINVAL);
	ck_assert_int_eq(svc_mq_next(pub, 0, &d), SVC_EINVAL);
	ck_assert_int_eq(svc_mq_tick(cons), SVC_EINVAL);
	ck_assert_int_eq(svc_mq_tick(pub), 0);
	/* Bad arguments never reach the broker. */
	m.message_id = NULL;
	ck_assert_int_eq(svc_mq_publish(pub, &m, NULL), SVC_EINVAL);
	ck_assert_int_eq(svc_mq_declare_queue(cons, "bad name", NULL, 1),
			 SVC_EINVAL);
	ck_assert_int_eq(svc_mq_declare_queue(cons, "mqtest.q#", NULL, 1),
			 SVC_EINVAL);
	ck_assert_int_eq(svc_mq_declare_queue(cons, "mqtest.q", NULL, -1),
			 SVC_EINVAL);
	ck_assert_int_eq(svc_mq_wait_confirms(pub, 1, 100, NULL, NULL),
			 SVC_EINVAL);
	ck_assert(svc_mq_ok(pub));
	ck_assert(svc_mq_ok(cons));
	svc_mq_close(pub);
	svc_mq_close(cons);
	svc_mq_close(NULL);
}
END_TEST

START_TEST(batch_confirmed_then_consumed_with_properties)
{
	static char ids[BATCH][SVC_UUID_LEN + 1];
	char prefix[64], pattern[80], type[80], body[64], rid[32];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER), *pub;
	struct outcomes c = { 0 };
	long long t0, t1, ms;

	unique(prefix, sizeof(prefix), "batch");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	snprintf(type, sizeof(type), "%s.item.created", prefix);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 5), 0);
	/* Declaring again with the same arguments changes nothing. */
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 5), 0);

	pub = open_as(SVC_MQ_PUBLISHER);
	t0 = svc_time_s();
	ms = svc_now_ms();
	for (int i = 0; i < BATCH; i++) {
		struct svc_mq_message m = { .type = type,
					    .message_id = ids[i],
					    .body = body,
					    .traceparent = TRACEPARENT,
					    .request_id = rid };
		uint64_t tag = 0;

		svc_uuid_v4(ids[i]);
		m.len = (size_t)snprintf(body, sizeof(body), "{\"n\":%d}", i);
		snprintf(rid, sizeof(rid), "req-%d", i);
		ck_assert_int_eq(svc_mq_publish(pub, &m, &tag), 0);
		ck_assert_uint_eq(tag, (uint64_t)i + 1);
	}
	ck_assert_int_eq(svc_mq_wait_confirms(pub, BATCH, WAIT_MS, collect, &c),
			 0);
	ms = svc_now_ms() - ms;
	t1 = svc_time_s();
	fprintf(stderr, "mq: %d messages published and confirmed in %lld ms\n",
		BATCH, ms);
	ck_assert_int_eq(c.calls, BATCH);
	ck_assert(c.in_order);
	ck_assert_int_eq(c.count[SVC_MQ_ACKED], BATCH);
	/* Reported tags are forgotten: waiting for them again is a no-op. */
	ck_assert_int_eq(svc_mq_wait_confirms(pub, BATCH, 0, collect, &c), 0);
	ck_assert_int_eq(c.calls, BATCH);
	svc_mq_close(pub);

	ck_assert_int_eq(svc_mq_consume(cons, prefix, 100), 0);
	for (int i = 0; i < BATCH; i++) {
		struct svc_mq_delivery d;
		char want[64];

		ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
		snprintf(want, sizeof(want), "{\"n\":%d}", i);
		snprintf(rid, sizeof(rid), "req-%d", i);
		ck_assert_str_eq(d.body, want);
		ck_assert_uint_eq(d.len, strlen(want));
		ck_assert_str_eq(d.message_id, ids[i]);
		ck_assert_str_eq(d.type, type);
		ck_assert_str_eq(d.routing_key, type);
		ck_assert_str_eq(d.exchange, SVC_MQ_EXCHANGE);
		ck_assert_str_eq(d.content_type, "application/json");
		ck_assert_str_eq(d.app_id, "mqtest");
		ck_assert_int_eq(d.delivery_mode, 2);
		ck_assert(d.timestamp >= t0 && d.timestamp <= t1);
		ck_assert_str_eq(d.traceparent, TRACEPARENT);
		ck_assert_str_eq(d.request_id, rid);
		ck_assert_ptr_null(d.dead_reason);
		ck_assert(!d.redelivered);
		ck_assert_int_eq(d.delivery_count, 0);
		ck_assert_int_eq(svc_mq_ack(cons, d.tag), 0);
		svc_mq_delivery_cleanup(&d);
	}
	{
		struct svc_mq_delivery d;

		ck_assert_int_eq(svc_mq_next(cons, EMPTY_MS, &d), SVC_ETIMEOUT);
		svc_mq_delivery_cleanup(&d);
	}
	ck_assert(svc_mq_ok(cons));
	ck_assert_int_eq(svc_mq_delete_queue(cons, prefix), 0);
	svc_mq_close(cons);
}
END_TEST

START_TEST(unroutable_is_returned_neighbours_acked)
{
	char prefix[64], pattern[80], routed[80], nowhere[80];
	char ids[5][SVC_UUID_LEN + 1];
	const char *bindings[] = { pattern, NULL };
	static const enum svc_mq_outcome want[] = {
		SVC_MQ_ACKED, SVC_MQ_ACKED,    SVC_MQ_RETURNED,
		SVC_MQ_ACKED, SVC_MQ_RETURNED,
	};
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER), *pub;
	struct outcomes c = { 0 };
	struct svc_mq_delivery d;

	unique(prefix, sizeof(prefix), "unroutable");
	snprintf(pattern, sizeof(pattern), "%s.routed.#", prefix);
	snprintf(routed, sizeof(routed), "%s.routed.thing", prefix);
	snprintf(nowhere, sizeof(nowhere), "%s.nowhere", prefix);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 5), 0);

	pub = open_as(SVC_MQ_PUBLISHER);
	for (int i = 0; i < 5; i++) {
		svc_uuid_v4(ids[i]);
		publish(pub, want[i] == SVC_MQ_RETURNED ? nowhere : routed,
			ids[i], "{}");
	}
	ck_assert_int_eq(svc_mq_wait_confirms(pub, 5, WAIT_MS, collect, &c), 0);
	ck_assert_int_eq(c.calls, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(c.of[i + 1] == want[i], "tag %d: %s, want %s",
			      i + 1, svc_mq_outcome_name(c.of[i + 1]),
			      svc_mq_outcome_name(want[i]));
	/* A return is the message's failure, not the connection's. */
	ck_assert(svc_mq_ok(pub));
	publish(pub, routed, ids[0], "{}");
	ck_assert_int_eq(svc_mq_wait_confirms(pub, 6, WAIT_MS, NULL, NULL), 0);
	svc_mq_close(pub);

	/* Exactly the routed ones arrived. */
	ck_assert_int_eq(svc_mq_consume(cons, prefix, 10), 0);
	for (int i = 0; i < 4; i++) {
		static const int idx[] = { 0, 1, 3, 0 };

		ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
		ck_assert_str_eq(d.message_id, ids[idx[i]]);
		ck_assert_int_eq(svc_mq_ack(cons, d.tag), 0);
		svc_mq_delivery_cleanup(&d);
	}
	ck_assert_int_eq(svc_mq_next(cons, EMPTY_MS, &d), SVC_ETIMEOUT);
	ck_assert_int_eq(svc_mq_delete_queue(cons, prefix), 0);
	svc_mq_close(cons);
}
END_TEST

START_TEST(rejected_goes_to_dead_letters)
{
	char prefix[64], pattern[80], type[80], dead[96];
	char id[SVC_UUID_LEN + 1];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER);
	struct svc_mq_delivery d;

	unique(prefix, sizeof(prefix), "reject");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	snprintf(type, sizeof(type), "%s.order.created", prefix);
	snprintf(dead, sizeof(dead), "%s.dead", prefix);
	svc_uuid_v4(id);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 3), 0);
	publish_confirmed(type, id, "{\"poison\":true}");

	ck_assert_int_eq(svc_mq_consume(cons, prefix, 10), 0);
	ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
	ck_assert_str_eq(d.message_id, id);
	ck_assert_int_eq(svc_mq_reject(cons, d.tag, false), 0);
	svc_mq_delivery_cleanup(&d);

	ck_assert_int_eq(svc_mq_consume(cons, dead, 10), 0);
	ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
	ck_assert_str_eq(d.message_id, id);
	ck_assert_str_eq(d.body, "{\"poison\":true}");
	ck_assert_str_eq(d.exchange, SVC_MQ_DLX);
	ck_assert_str_eq(d.routing_key, prefix);
	ck_assert_str_eq(d.type, type);
	ck_assert_str_eq(d.traceparent, TRACEPARENT);
	ck_assert_ptr_nonnull(d.dead_reason);
	ck_assert_str_eq(d.dead_reason, "rejected");
	ck_assert_int_eq(svc_mq_ack(cons, d.tag), 0);
	svc_mq_delivery_cleanup(&d);
	/* Nothing is left in either queue. */
	ck_assert_int_eq(svc_mq_next(cons, EMPTY_MS, &d), SVC_ETIMEOUT);
	ck_assert_int_eq(svc_mq_delete_queue(cons, prefix), 0);
	svc_mq_close(cons);
}
END_TEST

START_TEST(redelivery_limit_then_dead_letter)
{
	char prefix[64], pattern[80], type[80], dead[96];
	char id[SVC_UUID_LEN + 1];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER);
	struct svc_mq_delivery d;
	int deliveries = 0;
	bool dead_seen = false;

	unique(prefix, sizeof(prefix), "limit");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	snprintf(type, sizeof(type), "%s.order.created", prefix);
	snprintf(dead, sizeof(dead), "%s.dead", prefix);
	svc_uuid_v4(id);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 2), 0);
	publish_confirmed(type, id, "{}");

	ck_assert_int_eq(svc_mq_consume(cons, prefix, 10), 0);
	ck_assert_int_eq(svc_mq_consume(cons, dead, 10), 0);
	/* Rejected with requeue each time: 1 delivery + 2 redeliveries. */
	for (int i = 0; i < 10 && !dead_seen; i++) {
		ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
		ck_assert_str_eq(d.message_id, id);
		if (strcmp(d.exchange, SVC_MQ_DLX) == 0) {
			ck_assert_str_eq(d.dead_reason, "delivery_limit");
			ck_assert_int_eq(svc_mq_ack(cons, d.tag), 0);
			dead_seen = true;
		} else {
			ck_assert_int_eq(d.redelivered, deliveries > 0);
			ck_assert_int_eq(d.delivery_count, deliveries);
			deliveries++;
			ck_assert_int_eq(svc_mq_reject(cons, d.tag, true), 0);
		}
		svc_mq_delivery_cleanup(&d);
	}
	ck_assert(dead_seen);
	ck_assert_int_eq(deliveries, 3);
	ck_assert_int_eq(svc_mq_next(cons, EMPTY_MS, &d), SVC_ETIMEOUT);
	ck_assert_int_eq(svc_mq_delete_queue(cons, prefix), 0);
	svc_mq_close(cons);
}
END_TEST

START_TEST(unacked_is_redelivered_to_the_next_connection)
{
	char prefix[64], pattern[80], type[80];
	char id[SVC_UUID_LEN + 1];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER);
	struct svc_mq_delivery d;

	unique(prefix, sizeof(prefix), "unacked");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	snprintf(type, sizeof(type), "%s.order.created", prefix);
	svc_uuid_v4(id);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 5), 0);
	publish_confirmed(type, id, "{\"k\":1}");

	ck_assert_int_eq(svc_mq_consume(cons, prefix, 1), 0);
	ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
	ck_assert_str_eq(d.message_id, id);
	ck_assert(!d.redelivered);
	svc_mq_delivery_cleanup(&d);
	svc_mq_close(cons); /* a consumer that dies before acking */

	cons = open_as(SVC_MQ_CONSUMER);
	ck_assert_int_eq(svc_mq_consume(cons, prefix, 1), 0);
	ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), 0);
	ck_assert_str_eq(d.message_id, id);
	ck_assert_str_eq(d.body, "{\"k\":1}");
	ck_assert(d.redelivered);
	ck_assert_int_eq(d.delivery_count, 1);
	ck_assert_int_eq(svc_mq_ack(cons, d.tag), 0);
	svc_mq_delivery_cleanup(&d);
	ck_assert_int_eq(svc_mq_next(cons, EMPTY_MS, &d), SVC_ETIMEOUT);
	ck_assert_int_eq(svc_mq_delete_queue(cons, prefix), 0);
	svc_mq_close(cons);
}
END_TEST

START_TEST(next_times_out_on_an_empty_queue)
{
	char prefix[64], pattern[80];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER);
	struct svc_mq_delivery d;
	long long t0, elapsed;

	unique(prefix, sizeof(prefix), "empty");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 5), 0);
	ck_assert_int_eq(svc_mq_consume(cons, prefix, 10), 0);

	t0 = svc_now_ms();
	ck_assert_int_eq(svc_mq_next(cons, 0, &d), SVC_ETIMEOUT);
	ck_assert_int_lt(svc_now_ms() - t0, 100);
	t0 = svc_now_ms();
	ck_assert_int_eq(svc_mq_next(cons, 400, &d), SVC_ETIMEOUT);
	elapsed = svc_now_ms() - t0;
	ck_assert_int_ge(elapsed, 390);
	ck_assert_int_lt(elapsed, 2000);
	ck_assert_ptr_null(d.body);
	ck_assert(svc_mq_ok(cons));
	ck_assert_int_eq(svc_mq_delete_queue(cons, prefix), 0);
	svc_mq_close(cons);
}
END_TEST

START_TEST(channel_error_breaks_and_pending_are_unconfirmed)
{
	char prefix[64], pattern[80], type[80];
	char id[SVC_UUID_LEN + 1];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *pub = open_as(SVC_MQ_PUBLISHER);
	struct svc_mq_message m = { .message_id = "x", .body = "{}", .len = 2 };
	struct outcomes c = { 0 };
	uint64_t tag;

	unique(prefix, sizeof(prefix), "conflict");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	snprintf(type, sizeof(type), "%s.order.created", prefix);
	svc_uuid_v4(id);
	ck_assert_int_eq(svc_mq_declare_queue(pub, prefix, bindings, 3), 0);
	tag = publish(pub, type, id, "{}");

	/* Other arguments for an existing queue: the broker closes the
	 * channel, and the publisher is done for. */
	ck_assert_int_eq(svc_mq_declare_queue(pub, prefix, bindings, 4),
			 SVC_ECONFLICT);
	ck_assert(!svc_mq_ok(pub));
	m.type = type;
	ck_assert_int_eq(svc_mq_publish(pub, &m, NULL), SVC_EUNAVAIL);
	ck_assert_int_eq(svc_mq_tick(pub), SVC_EUNAVAIL);
	ck_assert_int_eq(svc_mq_wait_confirms(pub, tag, WAIT_MS, collect, &c),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.of[tag], SVC_MQ_UNCONFIRMED);
	svc_mq_close(pub);
	delete_queue(prefix);
}
END_TEST

START_TEST(deleted_queue_ends_its_consumer)
{
	char prefix[64], pattern[80];
	const char *bindings[] = { pattern, NULL };
	struct svc_mq *cons = open_as(SVC_MQ_CONSUMER);
	struct svc_mq_delivery d;
	long long t0;

	unique(prefix, sizeof(prefix), "cancel");
	snprintf(pattern, sizeof(pattern), "%s.#", prefix);
	ck_assert_int_eq(svc_mq_declare_queue(cons, prefix, bindings, 5), 0);
	ck_assert_int_eq(svc_mq_consume(cons, prefix, 10), 0);
	delete_queue(prefix);
	/* The broker cancels the consumer; it must reconnect and declare. */
	t0 = svc_now_ms();
	ck_assert_int_eq(svc_mq_next(cons, WAIT_MS, &d), SVC_EUNAVAIL);
	ck_assert_int_lt(svc_now_ms() - t0, WAIT_MS / 2);
	ck_assert(!svc_mq_ok(cons));
	ck_assert_int_eq(svc_mq_ack(cons, 1), SVC_EUNAVAIL);
	svc_mq_close(cons);
}
END_TEST

/* A listening socket nobody accepts on: connects, then silence. */
static int
silent_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Opens with url and a 300 ms timeout; must fail within bound_ms. */
static void
open_fails_within(const char *url, long long bound_ms)
{
	struct svc_mq_config c = config();
	long long t0 = svc_now_ms();
	struct svc_mq *mq;

	c.url = url;
	c.socket_timeout_ms = 300;
	mq = svc_mq_open(&c, SVC_MQ_PUBLISHER);
	ck_assert_msg(mq == NULL, "opened %s", url);
	ck_assert_int_lt(svc_now_ms() - t0, bound_ms);
}

START_TEST(open_fails_fast)
{
	const char *good = env_or_fail("RABBITMQ_URL");
	struct svc_mq_config c = { 0 };
	char url[256];
	int port, fd;

	/* A closed port: refused at once. */
	fd = silent_listener(&port);
	close(fd);
	snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%d/%%2f",
		 port);
	open_fails_within(url, 1000);
	/* Malformed URLs never connect. */
	open_fails_within("http://127.0.0.1/", 100);
	open_fails_within("amqp://guest:guest@127.0.0.1:notaport/", 100);
	open_fails_within("amqps://guest:guest@127.0.0.1/", 100);
	/* A port that accepts and never answers: the login times out. */
	fd = silent_listener(&port);
	snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%d/%%2f",
		 port);
	open_fails_within(url, 2000);
	close(fd);
	/* A wrong password is refused. */
	ck_assert_ptr_nonnull(strchr(good, '@'));
	snprintf(url, sizeof(url), "amqp://guest:wrong%s", strchr(good, '@'));
	open_fails_within(url, 5000);

	/* The configuration refuses a malformed URL, naming the key. */
	setenv("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:notaport/", 1);
	setenv("RABBITMQ_TIMEOUT", "2s", 1);
	unsetenv("RABBITMQ_HEARTBEAT");
	svc_config_reset();
	svc_mq_config_read(&c);
	ck_assert(!svc_config_ok());
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "RABBITMQ_URL"));
	ck_assert_ptr_null(strstr(svc_config_error(), "guest"));
	ck_assert_int_eq(c.heartbeat_s, 30);
	ck_assert_int_eq(c.socket_timeout_ms, 2000);
	setenv("RABBITMQ_URL", good, 1);
	svc_config_reset();
	svc_mq_config_read(&c);
	ck_assert(svc_config_ok());
	ck_assert_str_eq(c.url, good);
	svc_config_reset();
}
END_TEST

Suite *
mq_suite(void)
{
	Suite *s = suite_create("mq");
	TCase *tc = tcase_create("rabbitmq");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_and_close);
	tcase_add_test(tc, batch_confirmed_then_consumed_with_properties);
	tcase_add_test(tc, unroutable_is_returned_neighbours_acked);
	tcase_add_test(tc, rejected_goes_to_dead_letters);
	tcase_add_test(tc, redelivery_limit_then_dead_letter);
	tcase_add_test(tc, unacked_is_redelivered_to_the_next_connection);
	tcase_add_test(tc, next_times_out_on_an_empty_queue);
	tcase_add_test(tc, channel_error_breaks_and_pending_are_unconfirmed);
	tcase_add_test(tc, deleted_queue_ends_its_consumer);
	tcase_add_test(tc, open_fails_fast);
	suite_add_tcase(s, tc);
	return s;
}
