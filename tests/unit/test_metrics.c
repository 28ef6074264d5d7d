/*
 * test_metrics.c - unit tests for metrics.c: the exact text of the
 * Prometheus exposition (HELP, TYPE, labels, escaping), cumulative
 * histogram buckets with +Inf, _sum and _count, the per-family cap that
 * folds new label sets into "other", registration rules, callback
 * families, and exact totals when many threads update and create series
 * at once. Each test uses a registry of its own; no I/O but /proc.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("exposition");
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
	tcase_set_timeout(conc, 60);
	tcase_add_test(conc, threads_count_exactly);
	suite_add_tcase(s, conc);
	return s;
}
