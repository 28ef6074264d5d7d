/*
 * test_relay.c - the outbox relay's crash window: a products instance is
 * SIGKILLed after the broker confirmed an event and before the relay's
 * mark-sent UPDATE committed; the event stays unsent, the next instance
 * sends it again (the same message id, seen twice on the wire), and
 * inventory applies it once (its inbox turns the second copy into a
 * no-op). The instance runs on a database of its own (RELAY_DATABASE_URL),
 * so the suite's products service and its relay never see the rows. The
 * window is held open without sleeps: a trigger makes the relay's UPDATE
 * wait for an advisory lock the test holds. This is not the relay's happy
 * path (test_events.c) nor the inbox on its own (test_choreography.c).
 * Caveat: the instance also consumes "products.stock" beside the suite's
 * products service, so a stock_changed event still in flight may land in
 * the private database instead; this suite therefore runs last.
 */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"
#include "mq_fixture.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/util.h"

#define WAIT_MS 20000
#define STEP_MS 50
/* Any key: advisory locks are per database, and this one is ours. */
#define HOLD_KEY "72656"

static char queue[64];
/*
 * Pids of the instances the test started and has not reaped, shared with
 * the forked test so the unchecked teardown can kill what a failed test
 * left running.
 */
static int *spawned;

static void
setup(void)
{
	static const char *const all[] = { "#", NULL };
	void *p = mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	spawned = p != MAP_FAILED ? p : NULL;
	mqf_tap(queue, "relaytest", all);
}

static void
teardown(void)
{
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);

	if (mq != NULL)
		svc_mq_delete_queue(mq, queue);
	svc_mq_close(mq);
	for (int i = 0; spawned != NULL && i < 2; i++)
		if (spawned[i] > 0)
			kill(spawned[i], SIGKILL);
	if (spawned != NULL)
		munmap(spawned, 2 * sizeof(int));
	spawned = NULL;
}

static PGconn *
db(const char *env)
{
	PGconn *c = PQconnectdb(env_or_fail(env));

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	return c;
}

static void
exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
			      PQresultStatus(r) == PGRES_TUPLES_OK,
		      "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

/*
 * The first column of the first row of sql, run with params (n of them),
 * polled until there is a row or WAIT_MS passed. Returns it (malloc'd), or
 * NULL on timeout. An error fails the test.
 */
static char *
wait_row(PGconn *c, const char *sql, int n, const char *const *params)
{
	long long end = svc_now_ms() + WAIT_MS;

	for (;;) {
		PGresult *r =
			PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
		char *v = NULL;

		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s",
			      sql, PQerrorMessage(c));
		if (PQntuples(r) > 0)
			v = strdup(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (v != NULL || svc_now_ms() >= end)
			return v;
		pause_ms(STEP_MS);
	}
}

/* Creates a product through the instance at base; its id into id. */
static void
create_product(const char *base, char id[SVC_UUID_LEN + 1])
{
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	char sku[SVC_UUID_LEN + 1], body[256];
	struct http_resp *r;

	svc_uuid_v4(sku);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"RELAY-%.13s\",\"name\":\"Relayed\","
		 "\"price_cents\":100,\"currency\":\"EUR\"}",
		 sku);
	r = http_do("POST", url(base, "/api/v1/products"), h, body);
	ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
	snprintf(id, SVC_UUID_LEN + 1, "%s",
		 json_string_value(json_object_get(r->json, "id")));
	http_free(r);
}

static bool
is_created(const struct svc_mq_delivery *d, const char *product)
{
	json_t *body = json_loads(d->body, 0, NULL);
	const char *id = json_string_value(
		json_object_get(json_object_get(body, "data"), "id"));
	bool match = d->type != NULL &&
		     strcmp(d->type, "product.created") == 0 && id != NULL &&
		     strcmp(id, product) == 0;

	json_decref(body);
	return match;
}

/*
 * Reads the test queue, acking everything, until the product.created of
 * product arrives or, with product NULL, the message whose id is event.
 * Adds to *copies the messages seen whose id is event (the one it stops
 * at included). Returns the id of the message it stopped at (malloc'd),
 * or NULL when none came in WAIT_MS.
 */
static char *
await_message(struct svc_mq *mq, const char *product, const char *event,
	      int *copies)
{
	long long end = svc_now_ms() + WAIT_MS;
	struct svc_mq_delivery d;

	while (svc_now_ms() < end &&
	       svc_mq_next(mq, end - svc_now_ms(), &d) == SVC_OK) {
		bool ours = event != NULL && d.message_id != NULL &&
			    strcmp(d.message_id, event) == 0;
		bool stop = product != NULL ? is_created(&d, product) : ours;
		char *id = stop && d.message_id != NULL ? strdup(d.message_id)
							: NULL;

		svc_mq_ack(mq, d.tag);
		svc_mq_delivery_cleanup(&d);
		*copies += ours;
		if (stop)
			return id;
	}
	return NULL;
}

/*
 * What inventory did about event, the creation of product: inbox rows and
 * when the first was written, the stock row's version and last change,
 * inventory's own events about the product. A second application of the
 * event would change some of it.
 */
static char *
effects(PGconn *inv, const char *event, const char *product)
{
	static const char sql[] =
		"SELECT (SELECT count(*) FROM inbox WHERE event_id = $1)"
		" || ' ' || coalesce((SELECT processed_at::text FROM inbox"
		"  WHERE event_id = $1), '-')"
		" || ' ' || coalesce((SELECT version || '@' || updated_at"
		"  FROM stock WHERE product_id = $2), '-')"
		" || ' ' || (SELECT count(*) FROM outbox"
		"  WHERE aggregate_id = $2)";
	const char *params[] = { event, product };
	char *v = wait_row(inv, sql, 2, params);

	ck_assert_ptr_nonnull(v);
	return v;
}

static int
spawn_relay(int slot, int port, const char *statement_timeout, char log[64])
{
	char dbenv[512], stenv[64];
	const char *env[] = { dbenv, stenv, NULL };
	int pid;

	snprintf(dbenv, sizeof(dbenv), "DATABASE_URL=%s",
		 env_or_fail("RELAY_DATABASE_URL"));
	snprintf(stenv, sizeof(stenv), "DB_STATEMENT_TIMEOUT=%s",
		 statement_timeout);
	pid = spawn_service("products", port, env, log);
	spawned[slot] = pid;
	return pid;
}

START_TEST(test_killed_between_publish_and_mark)
{
	static const char waiting_sql[] =
		"SELECT pid::text FROM pg_stat_activity"
		" WHERE datname = current_database() AND pid <> pg_backend_pid()"
		" AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
		" AND query LIKE 'UPDATE outbox%'";
	static const char gone_sql[] =
		"SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity"
		" WHERE pid = $1::int)";
	/* NOWAIT: a row still locked by the dead relay's backend errors. */
	static const char unsent_sql[] =
		"SELECT sent_at IS NULL FROM outbox WHERE id = $1"
		" FOR UPDATE NOWAIT";
	static const char sent_sql[] =
		"SELECT 1 FROM outbox WHERE id = $1 AND sent_at IS NOT NULL";
	static const char inbox_sql[] =
		"SELECT 1 FROM inbox WHERE event_id = $1";
	int port = spare_port(9), copies = 0, pid, status = 0;
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);
	PGconn *relay = db("RELAY_DATABASE_URL");
	PGconn *inv = db("INVENTORY_DATABASE_URL");
	char base[64], log1[64], log2[64];
	char product[SVC_UUID_LEN + 1], marker[SVC_UUID_LEN + 1];
	char *event, *backend, *v, *before, *after;
	struct http_resp *r;

	ck_assert_ptr_nonnull(spawned);
	ck_assert_msg(mq != NULL, "cannot reach RABBITMQ_URL");
	ck_assert_int_eq(svc_mq_consume(mq, queue, 100), SVC_OK);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);

	/*
	 * First instance. Its statement timeout is long so that its UPDATE
	 * waits for the lock rather than fail and retry the batch (which
	 * would publish the event again before the kill). It migrates the
	 * database at start, so the trigger comes after.
	 */
	pid = spawn_relay(0, port, "600s", log1);
	exec_ok(relay, "SELECT pg_advisory_lock(" HOLD_KEY ")");
	exec_ok(relay, "CREATE OR REPLACE FUNCTION relaytest_hold()"
		       " RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
		       " PERFORM pg_advisory_xact_lock(" HOLD_KEY ");"
		       " RETURN NEW; END $$");
	exec_ok(relay, "CREATE OR REPLACE TRIGGER relaytest_hold"
		       " BEFORE UPDATE ON outbox"
		       " FOR EACH ROW EXECUTE FUNCTION relaytest_hold()");

	create_product(base, product);
	event = await_message(mq, product, NULL, &copies);
	ck_assert_msg(event != NULL, "no product.created for %s (see %s)",
		      product, log1);
	copies = 1; /* that one */
	/*
	 * On the wire; and the relay reaches its UPDATE only with the
	 * broker's ack in hand, so once it waits there we are in the window.
	 */
	backend = wait_row(relay, waiting_sql, 0, NULL);
	ck_assert_msg(backend != NULL, "relay not waiting to mark (see %s)",
		      log1);

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	spawned[0] = 0;
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/*
	 * The orphaned backend gets the lock, finishes its UPDATE, finds its
	 * client gone before any COMMIT and rolls back as it exits.
	 */
	exec_ok(relay, "SELECT pg_advisory_unlock(" HOLD_KEY ")");
	v = wait_row(relay, gone_sql, 1, (const char *const[]){ backend });
	ck_assert_msg(v != NULL, "backend %s of the killed relay lives on",
		      backend);
	free(v);
	v = wait_row(relay, unsent_sql, 1, (const char *const[]){ event });
	ck_assert_msg(v != NULL && strcmp(v, "t") == 0,
		      "event %s marked sent by a killed relay", event);
	free(v);
	exec_ok(relay, "DROP TRIGGER relaytest_hold ON outbox");
	exec_ok(relay, "DROP FUNCTION relaytest_hold()");

	/* Inventory applied the first copy; what it did, for comparison. */
	v = wait_row(inv, inbox_sql, 1, (const char *const[]){ event });
	ck_assert_msg(v != NULL, "inventory never handled %s", event);
	free(v);
	before = effects(inv, event, product);

	/* The next instance finds the row unsent and sends it again. */
	pid = spawn_relay(1, port, "5s", log2);
	v = await_message(mq, NULL, event, &copies);
	ck_assert_msg(v != NULL, "event %s not re-sent (see %s)", event, log2);
	free(v);
	v = wait_row(relay, sent_sql, 1, (const char *const[]){ event });
	ck_assert_msg(v != NULL, "event %s not marked sent (see %s)", event,
		      log2);
	free(v);

	/*
	 * A marker, whose row the relay claims after the event's and
	 * publishes after it on the same channel. Inventory consumes its
	 * quorum queue in order, one delivery at a time, so once the marker
	 * has a stock row the second copy has been through the inbox too.
	 * Copies of the event seen up to the marker: exactly two.
	 */
	create_product(base, marker);
	v = await_message(mq, marker, event, &copies);
	ck_assert_msg(v != NULL, "no product.created for marker %s", marker);
	free(v);
	ck_assert_int_eq(copies, 2);
	v = wait_row(inv, "SELECT 1 FROM stock WHERE product_id = $1", 1,
		     (const char *const[]){ marker });
	ck_assert_msg(v != NULL, "inventory never handled marker %s", marker);
	free(v);

	after = effects(inv, event, product);
	ck_assert_msg(strncmp(after, "1 ", 2) == 0, "inbox: %s", after);
	ck_assert_msg(strcmp(before, after) == 0,
		      "applied again: before %s, after %s", before, after);
	r = http_do("GET",
		    url(env_or_fail("INVENTORY_URL"), "/api/v1/inventory/%s",
			product),
		    NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	http_free(r);

	spawned[1] = 0;
	ck_assert_msg(stop_service(pid) == 0, "unclean exit (see %s)", log2);
	unlink(log1);
	unlink(log2);
	free(event);
	free(backend);
	free(before);
	free(after);
	PQfinish(relay);
	PQfinish(inv);
	svc_mq_close(mq);
}
END_TEST

Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("crash between publish and mark");

	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_killed_between_publish_and_mark);
	suite_add_tcase(s, tc);
	return s;
}
