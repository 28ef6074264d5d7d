/*
 * test_metrics.c - GET /metrics of the three running services: promtool
 * accepts each exposition without a single lint remark, the counters move
 * with the requests they count (by route template, "unmatched" for paths
 * no route knows), the events, outbound calls and connections of the
 * suites before show up, and a real Prometheus server, started here on a spare
 * port, scrapes all three and answers a query with every job. The
 * Prometheus process is stopped by pid in the teardown, and dies with the
 * test process if that fails first.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ.h"

#define PROM_PORT_INDEX 10    /* spare_port(): see integ.h */
#define PROM_WAIT_MS	60000 /* for the first scrape of every job */

static const char *const jobs[] = { "products", "inventory", "orders" };

static const char *
service_url(const char *job)
{
	return env_or_fail(strcmp(job, "products") == 0	   ? "PRODUCTS_URL"
			   : strcmp(job, "inventory") == 0 ? "INVENTORY_URL"
							   : "ORDERS_URL");
}

static struct http_resp *
scrape(const char *base)
{
	struct http_resp *r = http_do("GET", url(base, "/metrics"), NULL, NULL);
	char *ct = http_header(r, "Content-Type");

	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(ct);
	ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
	free(ct);
	return r;
}

/* Whether series has a sample (name and labels exactly); *v its value. */
static bool
has_sample(const char *base, const char *series, double *v)
{
	struct http_resp *r = scrape(base);
	size_t n = strlen(series);
	bool found = false;

	for (const char *line = r->body; line != NULL && *line != '\0';) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ') {
			*v = strtod(line + n + 1, NULL);
			found = true;
			break;
		}
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	http_free(r);
	return found;
}

/* The value of series, 0 when it has no sample yet. */
static double
sample(const char *base, const char *series)
{
	double v = 0;

	return has_sample(base, series, &v) ? v : 0;
}

START_TEST(promtool_accepts_every_service)
{
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		struct http_resp *r = scrape(service_url(jobs[i]));
		char path[] = "/tmp/microshop-metrics-XXXXXX", cmd[128];
		char *out = NULL;
		int fd = mkstemp(path), rc;

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, r->body, r->len), (ssize_t)r->len);
		close(fd);
		/* Families every service has, whatever it does. */
		ck_assert_ptr_nonnull(
			strstr(r->body, "\nservice_info{service="));
		ck_assert_ptr_nonnull(strstr(
			r->body, "\n# TYPE http_requests_total counter"));
		ck_assert_ptr_nonnull(strstr(
			r->body,
			"\n# TYPE http_request_duration_seconds histogram"));
		ck_assert_ptr_nonnull(
			strstr(r->body, "\nhttp_active_connections "));
		ck_assert_ptr_nonnull(
			strstr(r->body, "\ndb_pool_connections "));
		ck_assert_ptr_nonnull(
			strstr(r->body, "\nprocess_resident_memory_bytes "));
		ck_assert_ptr_nonnull(strstr(r->body, "\noutbox_pending "));
		snprintf(cmd, sizeof(cmd), "promtool check metrics <%s 2>&1",
			 path);
		rc = run_cmd(cmd, &out);
		ck_assert_msg(rc == 0 && out[0] == '\0',
			      "promtool on %s's /metrics: exit %d: %s", jobs[i],
			      rc, out);
		free(out);
		unlink(path);
		http_free(r);
	}
}
END_TEST

START_TEST(requests_are_counted_by_route_template)
{
	const char *base = env_or_fail("PRODUCTS_URL");
	const char *live = "http_requests_total{method=\"GET\","
			   "route=\"/health/live\",status=\"200\"}";
	const char *by_id = "http_requests_total{method=\"GET\","
			    "route=\"/api/v1/products/{id}\",status=\"404\"}";
	const char *none = "http_requests_total{method=\"GET\","
			   "route=\"unmatched\",status=\"404\"}";
	const char *count =
		"http_request_duration_seconds_count{method=\"GET\","
		"route=\"/api/v1/products/{id}\"}";
	double live0 = sample(base, live), id0 = sample(base, by_id);
	double none0 = sample(base, none), count0 = sample(base, count);

	for (int i = 0; i < 3; i++) {
		http_free(
			http_do("GET", url(base, "/health/live"), NULL, NULL));
		http_free(http_do("GET",
				  url(base,
				      "/api/v1/products/"
				      "00000000-0000-4000-8000-00000000000%d",
				      i),
				  NULL, NULL));
		http_free(http_do("GET", url(base, "/no/such/route/%d", i),
				  NULL, NULL));
	}
	/* Other suites may run requests too: at least ours are counted. */
	ck_assert_double_ge(sample(base, live), live0 + 3);
	ck_assert_double_ge(sample(base, by_id), id0 + 3);
	ck_assert_double_ge(sample(base, none), none0 + 3);
	ck_assert_double_ge(sample(base, count), count0 + 3);
}
END_TEST

/*
 * What the suites before this one did shows: events published and
 * consumed along the choreography, the poison events of test_choreography
 * dead-lettered on their last delivery, orders' calls to its upstreams
 * with closed breakers, and database connections.
 */
START_TEST(events_calls_and_pool_are_counted)
{
	const char *products = env_or_fail("PRODUCTS_URL");
	const char *inventory = env_or_fail("INVENTORY_URL");
	const char *orders = env_or_fail("ORDERS_URL");
	double v = 0;

	ck_assert(has_sample(products,
			     "events_published_total{event_type="
			     "\"product.created\"}",
			     &v));
	ck_assert_double_gt(v, 0);
	ck_assert(has_sample(inventory,
			     "events_consumed_total{event_type="
			     "\"product.created\",outcome=\"applied\"}",
			     &v));
	ck_assert_double_gt(v, 0);
	ck_assert(has_sample(inventory,
			     "events_consumed_total{event_type="
			     "\"product.created\",outcome=\"dead_lettered\"}",
			     &v));
	ck_assert_double_ge(v, 2);
	ck_assert(has_sample(inventory,
			     "events_consumed_total{event_type="
			     "\"product.created\",outcome=\"failed\"}",
			     &v));
	ck_assert_double_gt(v, 0);
	ck_assert(has_sample(orders,
			     "http_client_requests_total{target=\"products\","
			     "status=\"200\"}",
			     &v));
	ck_assert_double_gt(v, 0);
	ck_assert(has_sample(
		orders, "circuit_breaker_state{target=\"inventory\"}", &v));
	ck_assert_double_eq(v, 0);
	ck_assert(has_sample(orders, "db_pool_connections", &v));
	ck_assert_double_gt(v, 0);
	ck_assert(has_sample(orders, "outbox_oldest_age_seconds", &v));
	ck_assert_double_ge(v, 0);
}
END_TEST

/* --- a real Prometheus --- */

static int prom_pid = -1;
static char prom_dir[] = "/tmp/microshop-prom-XXXXXX";
static bool prom_dir_made;

static void
prom_teardown(void)
{
	char cmd[128];

	if (prom_pid > 0) {
		int status;

		kill(prom_pid, SIGTERM);
		for (int i = 0; i < 200; i++) {
			if (waitpid(prom_pid, &status, WNOHANG) == prom_pid)
				break;
			if (i == 199) {
				kill(prom_pid, SIGKILL);
				waitpid(prom_pid, &status, 0);
			}
			usleep(50 * 1000);
		}
		prom_pid = -1;
	}
	if (prom_dir_made) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", prom_dir);
		run_cmd(cmd, NULL);
		prom_dir_made = false;
	}
}

/* Writes prometheus.yml into prom_dir: one job per service, 1 s apart. */
static void
write_config(const char *path)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
		   "scrape_configs:\n");
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		const char *u = service_url(jobs[i]);
		const char *host = strstr(u, "://");

		host = host != NULL ? host + 3 : u;
		fprintf(f,
			"  - job_name: %s\n    static_configs:\n"
			"      - targets: ['%.*s']\n",
			jobs[i], (int)strcspn(host, "/"), host);
	}
	ck_assert_int_eq(fclose(f), 0);
}

static int
start_prometheus(int port)
{
	char config[96], data[96], listen[64], log[96];
	int pid, fd;

	ck_assert_ptr_nonnull(mkdtemp(prom_dir));
	prom_dir_made = true;
	snprintf(config, sizeof(config), "%s/prometheus.yml", prom_dir);
	snprintf(data, sizeof(data), "--storage.tsdb.path=%s/data", prom_dir);
	snprintf(log, sizeof(log), "%s/prometheus.log", prom_dir);
	snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d",
		 port);
	write_config(config);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char cfg_arg[128];

		/* Dies with the test, should the test die before teardown. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fd, 1);
		dup2(fd, 2);
		snprintf(cfg_arg, sizeof(cfg_arg), "--config.file=%s", config);
		execlp("prometheus", "prometheus", cfg_arg, data, listen,
		       (char *)NULL);
		_exit(127);
	}
	close(fd);
	return pid;
}

/* The jobs that have an http_requests_total series in Prometheus now. */
static int
jobs_seen(int port, bool seen[3])
{
	struct http_resp *r;
	json_t *result;
	size_t i;
	json_t *item;
	int n = 0;

	r = http_do("GET",
		    url("http://127.0.0.1",
			":%d/api/v1/query?query="
			"http_requests_total",
			port),
		    NULL, NULL);
	result = json_object_get(json_object_get(r->json, "data"), "result");
	json_array_foreach(result, i, item)
	{
		const char *job = json_string_value(json_object_get(
			json_object_get(item, "metric"), "job"));

		for (size_t j = 0; job != NULL && j < 3; j++)
			if (strcmp(job, jobs[j]) == 0)
				seen[j] = true;
	}
	http_free(r);
	for (int j = 0; j < 3; j++)
		n += seen[j];
	return n;
}

/* Whether something answers HTTP on port (Prometheus' readiness). */
static bool
prom_ready(int port)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd),
		 "curl -fsS -o /dev/null --max-time 1 "
		 "http://127.0.0.1:%d/-/ready 2>/dev/null",
		 port);
	return run_cmd(cmd, NULL) == 0;
}

/* The value of a query's first sample (a static copy), or "". */
static const char *
query_value(int port, const char *query)
{
	static char value[64];
	struct http_resp *r =
		http_do("GET",
			url("http://127.0.0.1", ":%d/api/v1/query?query=%s",
			    port, query),
			NULL, NULL);
	json_t *result =
		json_object_get(json_object_get(r->json, "data"), "result");
	json_t *sample = json_object_get(json_array_get(result, 0), "value");
	const char *v = json_string_value(json_array_get(sample, 1));

	snprintf(value, sizeof(value), "%s", v != NULL ? v : "");
	http_free(r);
	return value;
}

START_TEST(prometheus_scrapes_all_three)
{
	int port = spare_port(PROM_PORT_INDEX), waited = 0;
	bool seen[3] = { false, false, false };
	int status;

	prom_pid = start_prometheus(port);
	while (!prom_ready(port)) {
		ck_assert_msg(waitpid(prom_pid, &status, WNOHANG) == 0,
			      "prometheus exited; see %s/prometheus.log",
			      prom_dir);
		ck_assert_msg(waited < PROM_WAIT_MS,
			      "prometheus not ready on %d", port);
		usleep(200 * 1000);
		waited += 200;
	}
	while (jobs_seen(port, seen) < 3) {
		ck_assert_msg(waited < PROM_WAIT_MS,
			      "after %d ms Prometheus has http_requests_total "
			      "for products %d, inventory %d, orders %d",
			      waited, seen[0], seen[1], seen[2]);
		usleep(250 * 1000);
		waited += 250;
	}
	/* Every target up, as Prometheus itself says. */
	ck_assert_str_eq(query_value(port, "sum(up)"), "3");
}
END_TEST

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("exposition");
	TCase *prom = tcase_create("prometheus");

	tcase_add_test(tc, promtool_accepts_every_service);
	tcase_add_test(tc, requests_are_counted_by_route_template);
	tcase_add_test(tc, events_calls_and_pool_are_counted);
	suite_add_tcase(s, tc);
	tcase_set_timeout(prom, 120);
	tcase_add_checked_fixture(prom, NULL, prom_teardown);
	tcase_add_test(prom, prometheus_scrapes_all_three);
	suite_add_tcase(s, prom);
	return s;
}
