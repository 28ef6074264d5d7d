/*
 * test_metrics.c - unit tests for metrics.c: the exact text of the
 * Prometheus exposition (HELP, TYPE, labels, escaping), cumulative
 * histogram buckets with +Inf, _sum and _count, the per-family cap that
 * folds new label sets into "other", registration rules, callback
 * families, and exact totals when many threads update and create series
 * at once, each with a registry of its own; then what libsvc records in
 * the global one: requests by route template ("unmatched", methods
 * folded to "other") and the circuit breaker's state. No I/O but /proc.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc/breaker.h"
#include "svc/http.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "unit.h"

#define THREADS 4
#define ROUNDS	100000

static const char *const method_status[] = { "method", "status", NULL };

static char *
render(struct svc_metrics *reg)
{
	size_t len = 0;
	char *text = svc_metrics_render(reg, &len);

	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

START_TEST(counter_and_gauge_text)
{
	struct svc_metrics *reg = svc_metrics_new();
	struct svc_metric *c = svc_metrics_counter(
		reg, "jobs_total", "Jobs run.", method_status, 0);
	struct svc_metric *g =
		svc_metrics_gauge(reg, "queue_depth", "Jobs waiting.", NULL, 0);
	char *text;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(g);
	svc_metrics_inc(
		svc_metrics_series(c, (const char *[]){ "GET", "200" }));
	svc_metrics_add(svc_metrics_series(c, (const char *[]){ "GET", "200" }),
			41);
	svc_metrics_inc(
		svc_metrics_series(c, (const char *[]){ "POST", "201" }));
	svc_metrics_set(svc_metrics_series(g, NULL), 2.5);
	svc_metrics_gauge_add(svc_metrics_series(g, NULL), -1);
	text = render(reg);
	ck_assert_str_eq(text, "# HELP jobs_total Jobs run.\n"
			       "# TYPE jobs_total counter\n"
			       "jobs_total{method=\"GET\",status=\"200\"} 42\n"
			       "jobs_total{method=\"POST\",status=\"201\"} 1\n"
			       "# HELP queue_depth Jobs waiting.\n"
			       "# TYPE queue_depth gauge\n"
			       "queue_depth 1.5\n");
	free(text);
	svc_metrics_free(reg);
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
	struct svc_metrics *reg = svc_metrics_new();
	struct svc_metric *c = svc_metrics_counter(
		reg, "odd_total", "Back\\slash and\nnewline \"kept\".",
		(const char *[]){ "v", NULL }, 0);
	char long_value[SVC_METRICS_MAX_VALUE + 2];
	char *text;

	svc_metrics_inc(
		svc_metrics_series(c, (const char *[]){ "a\"b\\c\nd" }));
	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	svc_metrics_inc(svc_metrics_series(c, (const char *[]){ long_value }));
	svc_metrics_inc(svc_metrics_series(c, (const char *[]){ NULL }));
	text = render(reg);
	ck_assert_str_eq(text, "# HELP odd_total Back\\\\slash and\\nnewline "
			       "\"kept\".\n"
			       "# TYPE odd_total counter\n"
			       "odd_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"
			       "odd_total{v=\"other\"} 1\n"
			       "odd_total{v=\"\"} 1\n");
	free(text);
	svc_metrics_free(reg);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
	static const double bounds[] = { 0.25, 0.5, 1 };
	struct svc_metrics *reg = svc_metrics_new();
	struct svc_metric *h = svc_metrics_histogram(
		reg, "op_duration_seconds", "How long.",
		(const char *[]){ "op", NULL }, bounds, 3, 0);
	struct svc_metric_series *s =
		svc_metrics_series(h, (const char *[]){ "read" });
	char *text;

	svc_metrics_observe(s, 0.125);
	svc_metrics_observe(s, 0.25); /* on the bound: le is inclusive */
	svc_metrics_observe(s, 0.75);
	svc_metrics_observe(s, 3);
	svc_metrics_observe(s, NAN); /* ignored */
	ck_assert_double_eq(svc_metrics_value(s), 4);
	text = render(reg);
	ck_assert_str_eq(
		text, "# HELP op_duration_seconds How long.\n"
		      "# TYPE op_duration_seconds histogram\n"
		      "op_duration_seconds_bucket{op=\"read\",le=\"0.25\"} 2\n"
		      "op_duration_seconds_bucket{op=\"read\",le=\"0.5\"} 2\n"
		      "op_duration_seconds_bucket{op=\"read\",le=\"1\"} 3\n"
		      "op_duration_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n"
		      "op_duration_seconds_sum{op=\"read\"} 4.125\n"
		      "op_duration_seconds_count{op=\"read\"} 4\n");
	free(text);
	svc_metrics_free(reg);
}
END_TEST

START_TEST(latency_buckets_spelled_like_prometheus)
{
	struct svc_metrics *reg = svc_metrics_new();
	struct svc_metric *h = svc_metrics_histogram(
		reg, "x_seconds", "x", NULL, svc_metrics_latency_buckets,
		svc_metrics_latency_nbuckets, 0);
	char *text;

	ck_assert_int_eq(svc_metrics_latency_nbuckets, 13);
	svc_metrics_observe(svc_metrics_series(h, NULL), 0.0025);
	text = render(reg);
	ck_assert_ptr_nonnull(strstr(text,
				     "x_seconds_bucket{le=\"0.001\"} 0\n"
				     "x_seconds_bucket{le=\"0.0025\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "{le=\"2.5\"} 1\n"
					   "x_seconds_bucket{le=\"5\"} 1\n"
					   "x_seconds_bucket{le=\"10\"} 1\n"
					   "x_seconds_bucket{le=\"+Inf\"} 1\n"
					   "x_seconds_sum 0.0025\n"
					   "x_seconds_count 1\n"));
	free(text);
	svc_metrics_free(reg);
}
END_TEST

START_TEST(cap_folds_into_other)
{
	struct svc_metrics *reg = svc_metrics_new();
	struct svc_metric *c = svc_metrics_counter(reg, "keys_total", "Keys.",
						   method_status, 3);
	struct svc_metric_series *first =
		svc_metrics_series(c, (const char *[]){ "a", "1" });
	char v[16], *text;

	for (int i = 0; i < 10; i++) {
		snprintf(v, sizeof(v), "%d", i);
		svc_metrics_inc(
			svc_metrics_series(c, (const char *[]){ "k", v }));
	}
	/* Existing series keep working after the cap. */
	ck_assert_ptr_eq(svc_metrics_series(c, (const char *[]){ "a", "1" }),
			 first);
	svc_metrics_inc(first);
	text = render(reg);
	ck_assert_str_eq(text,
			 "# HELP keys_total Keys.\n"
			 "# TYPE keys_total counter\n"
			 "keys_total{method=\"a\",status=\"1\"} 1\n"
			 "keys_total{method=\"k\",status=\"0\"} 1\n"
			 "keys_total{method=\"k\",status=\"1\"} 1\n"
			 "keys_total{method=\"other\",status=\"other\"} 8\n");
	free(text);
	svc_metrics_free(reg);
}
END_TEST

START_TEST(registration_rules)
{
	struct svc_metrics *reg = svc_metrics_new();
	struct svc_metric *c =
		svc_metrics_counter(reg, "a_total", "A.", NULL, 0);

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_eq(svc_metrics_counter(reg, "a_total", "A.", NULL, 0), c);
	ck_assert_ptr_null(svc_metrics_gauge(reg, "a_total", "A.", NULL, 0));
	ck_assert_ptr_null(svc_metrics_counter(reg, "1abc", "x", NULL, 0));
	ck_assert_ptr_null(svc_metrics_counter(reg, "a-b", "x", NULL, 0));
	ck_assert_ptr_null(svc_metrics_counter(
		reg, "b_total", "x", (const char *[]){ "bad-label", NULL }, 0));
	ck_assert_ptr_null(svc_metrics_counter(
		reg, "c_total", "x", (const char *[]){ "__x", NULL }, 0));
	ck_assert_ptr_null(svc_metrics_histogram(
		reg, "d_seconds", "x", (const char *[]){ "le", NULL },
		svc_metrics_latency_buckets, svc_metrics_latency_nbuckets, 0));
	ck_assert_ptr_null(svc_metrics_histogram(
		reg, "e_seconds", "x", NULL, (const double[]){ 1, 1 }, 2, 0));
	ck_assert_ptr_null(svc_metrics_counter(
		reg, "f_total", "x",
		(const char *[]){ "a", "b", "c", "d", "e", NULL }, 0));
	/* NULL families and series are no-ops. */
	ck_assert_ptr_null(svc_metrics_series(NULL, NULL));
	svc_metrics_inc(NULL);
	svc_metrics_set(NULL, 1);
	svc_metrics_observe(NULL, 1);
	ck_assert_double_eq(svc_metrics_value(NULL), 0);
	/* An update of the wrong type changes nothing. */
	svc_metrics_observe(svc_metrics_series(c, NULL), 1);
	svc_metrics_set(svc_metrics_series(c, NULL), 5);
	ck_assert_double_eq(svc_metrics_value(svc_metrics_series(c, NULL)), 0);
	svc_metrics_free(reg);
	svc_metrics_free(NULL);
}
END_TEST

static double
constant(void *arg)
{
	return *(double *)arg;
}

START_TEST(callback_families)
{
	static double value = 7, missing = NAN;
	struct svc_metrics *reg = svc_metrics_new();
	char *text;

	ck_assert_ptr_nonnull(
		svc_metrics_gauge_fn(reg, "seven", "Seven.", constant, &value));
	ck_assert_ptr_nonnull(svc_metrics_counter_fn(
		reg, "gone_total", "Missing.", constant, &missing));
	ck_assert_ptr_null(svc_metrics_series(
		svc_metrics_gauge_fn(reg, "seven", "Seven.", constant, &value),
		NULL));
	text = render(reg);
	ck_assert_str_eq(text, "# HELP seven Seven.\n"
			       "# TYPE seven gauge\n"
			       "seven 7\n"
			       "# HELP gone_total Missing.\n"
			       "# TYPE gone_total counter\n");
	value = 1e-7;
	free(text);
	text = render(reg);
	ck_assert_ptr_nonnull(strstr(text, "seven 1e-07\n"));
	free(text);
	svc_metrics_free(reg);
}
END_TEST

START_TEST(process_metrics)
{
	struct svc_metrics *reg = svc_metrics_new();
	static const char *const names[] = {
		"\nprocess_resident_memory_bytes ",
		"\nprocess_virtual_memory_bytes ",
		"\nprocess_open_fds ",
		"\nprocess_max_fds ",
		"\nprocess_start_time_seconds ",
		"\nprocess_cpu_seconds_total ",
	};
	char *text;

	ck_assert_int_eq(svc_metrics_process(reg), 0);
	text = render(reg);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = strstr(text, names[i]);

		ck_assert_msg(p != NULL, "no%s", names[i]);
		/* A short test may not have used a clock tick of CPU. */
		ck_assert_msg(strtod(p + strlen(names[i]), NULL) > 0 ||
				      strstr(names[i], "cpu") != NULL,
			      "%s is not positive", names[i] + 1);
	}
	free(text);
	svc_metrics_free(reg);
}
END_TEST

struct worker {
	struct svc_metric *counter, *hist, *gauge;
	int id;
};

static void *
hammer(void *arg)
{
	struct worker *w = arg;
	char own[16];

	snprintf(own, sizeof(own), "t%d", w->id);
	for (int i = 0; i < ROUNDS; i++) {
		char key[16];

		/* Shared series, looked up every time as the HTTP path does. */
		svc_metrics_inc(svc_metrics_series(
			w->counter, (const char *[]){ "GET", "200" }));
		svc_metrics_inc(svc_metrics_series(
			w->counter, (const char *[]){ own, "200" }));
		/* Series created concurrently by every thread. */
		snprintf(key, sizeof(key), "%d", i % 20);
		svc_metrics_inc(svc_metrics_series(
			w->counter, (const char *[]){ "new", key }));
		svc_metrics_observe(svc_metrics_series(w->hist, NULL), 0.5);
		svc_metrics_gauge_add(svc_metrics_series(w->gauge, NULL), 1);
	}
	return NULL;
}

START_TEST(threads_count_exactly)
{
	struct svc_metrics *reg = svc_metrics_new();
	struct worker w[THREADS];
	pthread_t t[THREADS];
	double created = 0;
	char *text;

	for (int i = 0; i < THREADS; i++) {
		w[i].counter = svc_metrics_counter(reg, "hits_total", "Hits.",
						   method_status, 100);
		w[i].hist =
			svc_metrics_histogram(reg, "hit_seconds", "Hit time.",
					      NULL, svc_metrics_latency_buckets,
					      svc_metrics_latency_nbuckets, 0);
		w[i].gauge = svc_metrics_gauge(reg, "hits", "Hits.", NULL, 0);
		w[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
	}
	/* A scrape in the middle must neither block nor break anything. */
	text = render(reg);
	free(text);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_double_eq(
		svc_metrics_value(svc_metrics_series(
			w[0].counter, (const char *[]){ "GET", "200" })),
		THREADS * ROUNDS);
	for (int i = 0; i < THREADS; i++) {
		char own[16];

		snprintf(own, sizeof(own), "t%d", i);
		ck_assert_double_eq(
			svc_metrics_value(svc_metrics_series(
				w[0].counter, (const char *[]){ own, "200" })),
			ROUNDS);
	}
	for (int k = 0; k < 20; k++) {
		char key[16];

		snprintf(key, sizeof(key), "%d", k);
		created += svc_metrics_value(svc_metrics_series(
			w[0].counter, (const char *[]){ "new", key }));
	}
	ck_assert_double_eq(created, THREADS * ROUNDS);
	ck_assert_double_eq(
		svc_metrics_value(svc_metrics_series(w[0].hist, NULL)),
		THREADS * ROUNDS);
	ck_assert_double_eq(
		svc_metrics_value(svc_metrics_series(w[0].gauge, NULL)),
		THREADS * ROUNDS);
	text = render(reg);
	/* Each label set exactly once: no duplicate from racing creators. */
	ck_assert_ptr_nonnull(strstr(text, "hits_total{method=\"new\","
					   "status=\"7\"}"));
	ck_assert_ptr_null(
		strstr(strstr(text, "status=\"7\"}") + 1, "status=\"7\"}"));
	ck_assert_ptr_nonnull(strstr(text, "hit_seconds_sum 200000\n"));
	free(text);
	svc_metrics_free(reg);
}
END_TEST

/* --- what libsvc records in the global registry --- */

static int devnull = -1;

/* The pipeline and the breaker log; not to the test's output. */
static void
quiet(void)
{
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	svc_log_init("unit-metrics", SVC_LOG_ERROR, devnull);
}

static void
loud(void)
{
	svc_log_init("svc", SVC_LOG_INFO, 1);
	if (devnull >= 0)
		close(devnull);
	devnull = -1;
}

static int
h_ok(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_json(res, 200, json_object());
}

/* The global series of family name (already registered) for values. */
static double
global_value(struct svc_metric *m, const char *const *values)
{
	return svc_metrics_value(svc_metrics_series(m, values));
}

static void
handle(struct svc_http *http, const char *method, const char *path)
{
	struct svc_req *req = svc_req_new(method, path);
	struct svc_res *res = svc_res_new();

	svc_http_handle(http, req, res);
	svc_req_free(req);
	svc_res_free(res);
}

START_TEST(http_pipeline_counts_route_templates)
{
	static const struct svc_route routes[] = {
		{ "GET", "/metrics-test/{id}", h_ok, 0 },
		{ 0 },
	};
	const struct svc_http_config cfg = { .max_body = 1024,
					     .max_json_depth = 8 };
	struct svc_http *http = svc_http_new(routes, &cfg);
	struct svc_metric *requests = svc_metrics_counter(
		NULL, "http_requests_total", NULL,
		(const char *[]){ "method", "route", "status", NULL }, 0);
	struct svc_metric *duration = svc_metrics_histogram(
		NULL, "http_request_duration_seconds", NULL,
		(const char *[]){ "method", "route", NULL },
		svc_metrics_latency_buckets, svc_metrics_latency_nbuckets, 0);
	const char *const ok[] = { "GET", "/metrics-test/{id}", "200" };
	const char *const head[] = { "HEAD", "/metrics-test/{id}", "200" };
	const char *const none[] = { "GET", "unmatched", "404" };
	const char *const odd[] = { "other", "unmatched", "404" };
	const char *const notallowed[] = { "POST", "unmatched", "405" };
	double ok0 = global_value(requests, ok);
	double head0 = global_value(requests, head);
	double none0 = global_value(requests, none);
	double odd0 = global_value(requests, odd);
	double na0 = global_value(requests, notallowed);
	double dur0 = global_value(duration, ok);

	ck_assert_ptr_nonnull(http);
	ck_assert_ptr_nonnull(requests);
	ck_assert_ptr_nonnull(duration);
	handle(http, "GET", "/metrics-test/1");
	handle(http, "GET", "/metrics-test/2?x=1");
	handle(http, "HEAD", "/metrics-test/3");
	handle(http, "GET", "/metrics-test-nothing/1");
	handle(http, "BREW", "/coffee");
	handle(http, "POST", "/metrics-test/1");
	ck_assert_double_eq(global_value(requests, ok), ok0 + 2);
	ck_assert_double_eq(global_value(requests, head), head0 + 1);
	ck_assert_double_eq(global_value(requests, none), none0 + 1);
	ck_assert_double_eq(global_value(requests, odd), odd0 + 1);
	ck_assert_double_eq(global_value(requests, notallowed), na0 + 1);
	ck_assert_double_eq(global_value(duration, ok), dur0 + 2);
	svc_http_free(http);
}
END_TEST

START_TEST(breaker_state_gauge_follows_transitions)
{
	struct svc_breaker_config cfg = { .target = "metrics-test",
					  .failure_threshold = 1,
					  .recovery_ms = 1 };
	struct svc_breaker *b = svc_breaker_new(&cfg);
	struct svc_metric *m =
		svc_metrics_gauge(NULL, "circuit_breaker_state", NULL,
				  (const char *[]){ "target", NULL }, 0);
	const char *const target[] = { "metrics-test" };
	struct timespec ms = { 0, 5 * 1000000 };

	ck_assert_ptr_nonnull(b);
	ck_assert_double_eq(global_value(m, target), 0);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, false);
	ck_assert_double_eq(global_value(m, target), 2); /* open */
	nanosleep(&ms, NULL);
	ck_assert(svc_breaker_allow(b));
	ck_assert_double_eq(global_value(m, target), 1); /* half-open */
	svc_breaker_record(b, true);
	ck_assert_double_eq(global_value(m, target), 0);
	svc_breaker_free(b);
}
END_TEST

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("exposition");
	TCase *global = tcase_create("libsvc");
	TCase *conc = tcase_create("concurrency");

	tcase_add_test(tc, counter_and_gauge_text);
	tcase_add_test(tc, label_values_and_help_are_escaped);
	tcase_add_test(tc, histogram_buckets_are_cumulative);
	tcase_add_test(tc, latency_buckets_spelled_like_prometheus);
	tcase_add_test(tc, cap_folds_into_other);
	tcase_add_test(tc, registration_rules);
	tcase_add_test(tc, callback_families);
	tcase_add_test(tc, process_metrics);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(global, quiet, loud);
	tcase_add_test(global, http_pipeline_counts_route_templates);
	tcase_add_test(global, breaker_state_gauge_follows_transitions);
	suite_add_tcase(s, global);
	tcase_set_timeout(conc, 60);
	tcase_add_test(conc, threads_count_exactly);
	suite_add_tcase(s, conc);
	return s;
}
