/*
 * test_lifecycle.c - SIGTERM and the drain, against real service
 * processes the tests start (spare ports 12 and 13, see integ.h):
 *
 * - a keep-alive connection left idle before SIGTERM is still answered
 *   (readiness 503, "Connection: close", then a clean close) while new
 *   connections are refused at once, and the process exits 0 once it is
 *   gone;
 * - SIGTERM in the middle of a stream of orders from several clients:
 *   every 201 has its order in the database and its order.created on the
 *   broker, no client sees a reset or an empty reply, a client is refused
 *   only after the signal, and the process exits 0;
 * - a consumer stopped while its handler waits on a row lock: the handler
 *   is cancelled at the drain deadline, nothing of it is committed, the
 *   process exits 0, and the next process applies the event.
 *
 * The order stream and the consumer run on databases of their own
 * (LIFECYCLE_ORDERS_DATABASE_URL, LIFECYCLE_PRODUCTS_DATABASE_URL) and a
 * RabbitMQ vhost of their own (LIFECYCLE_RABBITMQ_URL), which
 * scripts/test.sh prepares: the suite's services never see their events,
 * so what reaches the broker there came from the process under test.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"
#include "mq_fixture.h"
#include "orders_fixture.h"
#include "svc/err.h"
#include "svc/mq.h"
#include "svc/util.h"

#define STREAM_PORT   12 /* spare_port(): the orders under SIGTERM */
#define PRODUCTS_PORT 13 /* spare_port(): the products instances */
#define WAIT_MS	      30000
#define CLIENTS	      6
#define MIN_ORDERS    40 /* placed before the signal */
#define MAX_RESULTS   20000

/* --- helpers --- */

/* Waits (bounded) for pid to exit; its exit status, or -1. */
static int
wait_exit(int pid, int ms)
{
	int status = 0;

	for (int waited = 0; waited <= ms; waited += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		pause_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* A TCP connection to 127.0.0.1:port; the fd, or -errno. */
static int
tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { 10, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), err;

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	err = errno;
	close(fd);
	return -err;
}

/*
 * Sends one GET on fd and reads its response (headers and a body of
 * Content-Length bytes) into buf; the number of bytes read, or -errno.
 */
static int
raw_get(int fd, const char *path, char *buf, size_t size)
{
	char req[256];
	size_t len = 0;
	const char *body;
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);

	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return -errno;
	for (;;) {
		ssize_t r = recv(fd, buf + len, size - 1 - len, 0);
		const char *cl;

		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET; /* closed before a full answer */
		len += (size_t)r;
		buf[len] = '\0';
		body = strstr(buf, "\r\n\r\n");
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (body != NULL && cl != NULL &&
		    len >= (size_t)(body + 4 - buf) +
				    strtoul(cl + 17, NULL, 10))
			return (int)len;
		if (len + 1 >= size)
			return -ENOBUFS;
	}
}

static PGconn *
db(const char *env)
{
	PGconn *c = PQconnectdb(env_or_fail(env));

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	return c;
}

/* The first column of the first row of sql (malloc'd), or NULL. */
static char *
query(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	char *v = NULL;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK ||
			      PQresultStatus(r) == PGRES_COMMAND_OK,
		      "%s: %s", sql, PQerrorMessage(c));
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* query(), polled until its value is want or WAIT_MS passed. */
static bool
poll_query(PGconn *c, const char *sql, int n, const char *const *params,
	   const char *want)
{
	for (int waited = 0;; waited += 50) {
		char *v = query(c, sql, n, params);
		bool ok = v != NULL && strcmp(v, want) == 0;

		free(v);
		if (ok)
			return true;
		if (waited >= WAIT_MS)
			return false;
		pause_ms(50);
	}
}

static struct svc_mq *
lifecycle_mq(enum svc_mq_role role)
{
	struct svc_mq *mq =
		mqf_open_url(env_or_fail("LIFECYCLE_RABBITMQ_URL"), role);

	ck_assert_msg(mq != NULL, "cannot reach LIFECYCLE_RABBITMQ_URL");
	return mq;
}

/* --- an idle keep-alive connection during the drain --- */

START_TEST(idle_connection_is_answered_during_the_drain)
{
	static const char *const env[] = { "DRAIN_TIMEOUT=1h", NULL };
	int port = spare_port(PRODUCTS_PORT), fd, c = 0, pid;
	char log[64], buf[8192];

	pid = spawn_service("products", port, env, log);
	fd = tcp_connect(port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(raw_get(fd, "/health/live", buf, sizeof(buf)), 0);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
	ck_assert_ptr_null(strcasestr(buf, "Connection: close"));

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	/* The listener closes: new connections are refused, not queued. */
	for (int waited = 0; waited < WAIT_MS; waited += 20) {
		c = tcp_connect(port);
		if (c < 0)
			break;
		close(c);
		pause_ms(20);
	}
	ck_assert_msg(c == -ECONNREFUSED, "connect: %s", strerror(-c));
	/* Our idle connection holds the drain open (its deadline is 1 h). */
	ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), 0);

	ck_assert_int_gt(raw_get(fd, "/health/ready", buf, sizeof(buf)), 0);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "\"status\":\"draining\""));
	ck_assert_ptr_nonnull(strcasestr(buf, "\r\nConnection: close\r\n"));
	/* Then a clean close (FIN, not RST). */
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);

	ck_assert_msg(wait_exit(pid, WAIT_MS) == 0, "unclean exit (see %s)",
		      log);
	ck_assert(file_contains(log, "\"connections drained\"", 0));
	ck_assert(file_contains(log, "\"stopped\"", 0));
	unlink(log);
}
END_TEST

/* --- SIGTERM in the middle of a stream of orders --- */

struct result {
	CURLcode rc;
	long status;
	bool after_signal; /* sent once SIGTERM was on its way */
	bool closing;	   /* the response said "Connection: close" */
	char id[SVC_UUID_LEN + 1];
};

static struct {
	const char *base;
	char products[2][64];
	atomic_bool signalled, stop;
	atomic_int placed, next;
	struct result *results;
} stream;

struct reply {
	char body[4096];
	size_t len;
	bool closing;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t add = size * n;

	if (r->len + add < sizeof(r->body)) {
		memcpy(r->body + r->len, p, add);
		r->len += add;
		r->body[r->len] = '\0';
	}
	return add;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;

	if (size * n >= 17 && strncasecmp(p, "Connection: close", 17) == 0)
		r->closing = true;
	return size * n;
}

/* Places orders on one keep-alive connection until refused or told. */
static void *
client_main(void *arg)
{
	struct curl_slist *h =
		curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	int n = (int)(long)arg;

	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url(stream.base, "/api/v1/orders"));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	while (!atomic_load(&stream.stop)) {
		int i = atomic_fetch_add(&stream.next, 1);
		struct result *res = &stream.results[i % MAX_RESULTS];
		struct reply reply = { .len = 0 };
		char body[256], customer[SVC_UUID_LEN + 1];
		json_t *json;

		if (i >= MAX_RESULTS)
			break;
		svc_uuid_v4(customer);
		snprintf(body, sizeof(body),
			 "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":"
			 "\"%s\",\"quantity\":1}]}",
			 customer, stream.products[(n + i) % 2]);
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
		res->after_signal = atomic_load(&stream.signalled);
		res->rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
		res->closing = reply.closing;
		json = json_loadb(reply.body, reply.len, 0, NULL);
		if (res->rc == CURLE_OK && res->status == 201 &&
		    fixture_str(json, "id") != NULL) {
			snprintf(res->id, sizeof(res->id), "%s",
				 fixture_str(json, "id"));
			atomic_fetch_add(&stream.placed, 1);
		}
		json_decref(json);
		if (res->rc != CURLE_OK)
			break; /* refused (or worse: the test says which) */
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

/* order.created ids read from the tap; true once all of ids were seen. */
static bool
await_events(struct svc_mq *mq, char **ids, int n)
{
	long long end = svc_now_ms() + WAIT_MS;
	struct svc_mq_delivery d;
	int seen = 0;

	while (seen < n && svc_now_ms() < end &&
	       svc_mq_next(mq, end - svc_now_ms(), &d) == SVC_OK) {
		json_t *body = json_loadb(d.body, d.len, 0, NULL);
		const char *id =
			fixture_str(json_object_get(body, "data"), "order_id");

		for (int i = 0; id != NULL && i < n; i++) {
			if (ids[i] != NULL && strcmp(ids[i], id) == 0) {
				ids[i] = NULL; /* seen; duplicates are fine */
				seen++;
			}
		}
		json_decref(body);
		svc_mq_ack(mq, d.tag);
		svc_mq_delivery_cleanup(&d);
	}
	return seen == n;
}

START_TEST(sigterm_mid_stream_loses_no_order)
{
	static const char *const bindings[] = { "order.created", NULL };
	char dbenv[512], mqenv[512], base[64], log[64], tap[64];
	char uuid[SVC_UUID_LEN + 1], *v, *array;
	const char *env[] = { dbenv,
			      mqenv,
			      "DRAIN_TIMEOUT=20s",
			      "HTTP_THREADS=4",
			      "SERVICE_NAME=orders-drain",
			      NULL };
	int port = spare_port(STREAM_PORT), pid, n = 0, ok = 0, refused = 0;
	int closing = 0;
	struct svc_mq *mq = lifecycle_mq(SVC_MQ_CONSUMER);
	pthread_t clients[CLIENTS];
	PGconn *orders = db("LIFECYCLE_ORDERS_DATABASE_URL");
	char **ids;
	size_t pos;

	svc_uuid_v4(uuid);
	snprintf(tap, sizeof(tap), "lifecycletest.%.8s", uuid);
	ck_assert_int_eq(svc_mq_declare_queue(mq, tap, bindings, 5), SVC_OK);
	ck_assert_int_eq(svc_mq_consume(mq, tap, 500), SVC_OK);
	snprintf(dbenv, sizeof(dbenv), "DATABASE_URL=%s",
		 env_or_fail("LIFECYCLE_ORDERS_DATABASE_URL"));
	snprintf(mqenv, sizeof(mqenv), "RABBITMQ_URL=%s",
		 env_or_fail("LIFECYCLE_RABBITMQ_URL"));
	fixture_product(stream.products[0], 250, "EUR", 1000000);
	fixture_product(stream.products[1], 125, "EUR", 1000000);
	stream.results = calloc(MAX_RESULTS, sizeof(*stream.results));
	ck_assert_ptr_nonnull(stream.results);
	pid = spawn_service("orders", port, env, log);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	stream.base = base;

	for (long i = 0; i < CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&clients[i], NULL, client_main,
						(void *)i),
				 0);
	for (int waited = 0;
	     atomic_load(&stream.placed) < MIN_ORDERS && waited < 4 * WAIT_MS;
	     waited += 20)
		pause_ms(20);
	atomic_store(&stream.signalled, true);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_msg(wait_exit(pid, 2 * WAIT_MS) == 0, "unclean exit (see %s)",
		      log);
	/* Every client has been refused by now; any still sending stops. */
	atomic_store(&stream.stop, true);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(clients[i], NULL);

	n = atomic_load(&stream.next);
	n = n < MAX_RESULTS ? n : MAX_RESULTS;
	ids = calloc((size_t)n + 1, sizeof(*ids));
	array = calloc((size_t)n + 1, SVC_UUID_LEN + 1);
	ck_assert(ids != NULL && array != NULL);
	pos = 0;
	array[pos++] = '{';
	for (int i = 0; i < n; i++) {
		struct result *r = &stream.results[i];

		/* What no client may see: a reset, an empty reply, a
		 * timeout, a refusal before the signal, an error status. */
		if (r->rc == CURLE_COULDNT_CONNECT && r->after_signal) {
			refused++;
			continue;
		}
		ck_assert_msg(r->rc == CURLE_OK,
			      "request %d (%s SIGTERM): %s (see %s)", i,
			      r->after_signal ? "after" : "before",
			      curl_easy_strerror(r->rc), log);
		ck_assert_msg(r->status == 201, "request %d: status %ld", i,
			      r->status);
		closing += r->closing;
		ids[ok++] = r->id;
		pos += (size_t)sprintf(array + pos, "%s%s", ok > 1 ? "," : "",
				       r->id);
	}
	array[pos] = '}';
	ck_assert_int_ge(ok, MIN_ORDERS);
	/* Each client was answered on its connection after the signal, with
	 * "Connection: close", then refused when it tried a new one. */
	ck_assert_int_ge(closing, 1);
	ck_assert_int_ge(refused, 1);

	/* Every 201 is an order, and its event left before the exit: this
	 * process was the only relay of its outbox. */
	v = query(orders, "SELECT count(*) FROM orders WHERE id = ANY($1)", 1,
		  (const char *const[]){ array });
	ck_assert_int_eq(atoi(v), ok);
	free(v);
	v = query(orders,
		  "SELECT count(*) FROM outbox WHERE aggregate_id = ANY($1)"
		  " AND event_type = 'order.created' AND sent_at IS NOT NULL",
		  1, (const char *const[]){ array });
	ck_assert_msg(atoi(v) == ok, "%s of %d order.created sent (see %s)", v,
		      ok, log);
	free(v);
	ck_assert_msg(await_events(mq, ids, ok),
		      "an order.created never reached the broker (see %s)",
		      log);
	ck_assert(file_contains(log, "\"connections drained\"", 0));

	svc_mq_delete_queue(mq, tap);
	svc_mq_close(mq);
	PQfinish(orders);
	free(ids);
	free(array);
	free(stream.results);
	unlink(log);
}
END_TEST

/* --- a consumer stopped mid-delivery --- */

static int
spawn_products(const char *stmt_timeout, char log[64])
{
	static char dbenv[512], mqenv[512], stenv[64];
	const char *env[] = {
		dbenv, mqenv, stenv, "DRAIN_TIMEOUT=1s", "HTTP_THREADS=2", NULL
	};

	snprintf(dbenv, sizeof(dbenv), "DATABASE_URL=%s",
		 env_or_fail("LIFECYCLE_PRODUCTS_DATABASE_URL"));
	snprintf(mqenv, sizeof(mqenv), "RABBITMQ_URL=%s",
		 env_or_fail("LIFECYCLE_RABBITMQ_URL"));
	snprintf(stenv, sizeof(stenv), "DB_STATEMENT_TIMEOUT=%s", stmt_timeout);
	return spawn_service("products", spare_port(PRODUCTS_PORT), env, log);
}

START_TEST(consumer_stopped_mid_delivery_leaves_the_event_queued)
{
	static const char waiting_sql[] =
		"SELECT count(*) FROM pg_stat_activity"
		" WHERE datname = current_database() AND pid <> pg_backend_pid()"
		" AND wait_event_type = 'Lock' AND query LIKE 'UPDATE products%'";
	static const char inbox_sql[] =
		"SELECT count(*) FROM inbox WHERE event_id = $1";
	static const char available_sql[] =
		"SELECT available::text FROM products WHERE id = $1";
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	char base[64], log1[64], log2[64], sku[SVC_UUID_LEN + 1];
	char event[SVC_UUID_LEN + 1], product[SVC_UUID_LEN + 1], body[512];
	PGconn *products = db("LIFECYCLE_PRODUCTS_DATABASE_URL");
	PGconn *holder = db("LIFECYCLE_PRODUCTS_DATABASE_URL");
	struct svc_mq *pub;
	struct svc_mq_message m = { 0 };
	struct http_resp *r;
	uint64_t tag;
	char *v;
	int pid;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d",
		 spare_port(PRODUCTS_PORT));
	/* A statement timeout far past the drain: only the drain's own
	 * cancel can end the wait. */
	pid = spawn_products("1h", log1);
	ck_assert_msg(file_contains(log1, "\"consumer: consuming\"", WAIT_MS),
		      "no consumer (see %s)", log1);
	svc_uuid_v4(sku);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"LC-%.13s\",\"name\":\"Held\",\"price_cents\":1,"
		 "\"currency\":\"EUR\"}",
		 sku);
	r = http_do("POST", url(base, "/api/v1/products"), h, body);
	ck_assert_int_eq(r->status, 201);
	snprintf(product, sizeof(product), "%s", fixture_str(r->json, "id"));
	http_free(r);
	v = query(products, available_sql, 1, (const char *const[]){ product });
	ck_assert_str_eq(v, "false");
	free(v);

	/* The row the handler will update, locked by us. */
	free(query(holder, "BEGIN", 0, NULL));
	free(query(holder, "SELECT 1 FROM products WHERE id = $1 FOR UPDATE", 1,
		   (const char *const[]){ product }));

	svc_uuid_v4(event);
	snprintf(
		body, sizeof(body),
		"{\"id\":\"%s\",\"event_type\":\"inventory.stock_changed\","
		"\"source\":\"inventory\",\"timestamp\":\"2026-01-01T00:00:00Z\","
		"\"data\":{\"product_id\":\"%s\",\"on_hand\":7,\"reserved\":0,"
		"\"available\":7,\"version\":1}}",
		event, product);
	pub = lifecycle_mq(SVC_MQ_PUBLISHER);
	m.type = "inventory.stock_changed";
	m.message_id = event;
	m.body = body;
	m.len = strlen(body);
	ck_assert_int_eq(svc_mq_publish(pub, &m, &tag), SVC_OK);
	ck_assert_int_eq(svc_mq_wait_confirms(pub, tag, 5000, NULL, NULL),
			 SVC_OK);
	svc_mq_close(pub);

	/* Mid-delivery: the handler waits for our lock. */
	ck_assert_msg(poll_query(products, waiting_sql, 0, NULL, "1"),
		      "the handler never reached the locked row (see %s)",
		      log1);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_msg(wait_exit(pid, WAIT_MS) == 0, "unclean exit (see %s)",
		      log1);
	ck_assert(file_contains(log1,
				"\"consumer: drain timeout, cancelling "
				"the event in hand\"",
				0));
	/* Nothing of it committed. */
	v = query(products, inbox_sql, 1, (const char *const[]){ event });
	ck_assert_str_eq(v, "0");
	free(v);
	free(query(holder, "ROLLBACK", 0, NULL));

	/* The event waited in its queue for the next process. */
	pid = spawn_products("5s", log2);
	ck_assert_msg(poll_query(products, available_sql, 1,
				 (const char *const[]){ product }, "true"),
		      "the event was not applied by the next process (see %s)",
		      log2);
	v = query(products, inbox_sql, 1, (const char *const[]){ event });
	ck_assert_str_eq(v, "1");
	free(v);
	ck_assert_int_eq(stop_service(pid), 0);
	PQfinish(holder);
	PQfinish(products);
	unlink(log1);
	unlink(log2);
}
END_TEST

Suite *
lifecycle_suite(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("drain");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, idle_connection_is_answered_during_the_drain);
	tcase_add_test(tc, sigterm_mid_stream_loses_no_order);
	tcase_add_test(tc,
		       consumer_stopped_mid_delivery_leaves_the_event_queued);
	suite_add_tcase(s, tc);
	return s;
}
