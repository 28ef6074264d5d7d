/*
 * test_breaker.c - unit tests for breaker.c: every transition and the exact
 * failure threshold, the recovery timer and its restart, the one trial of
 * the half-open state (also against many threads at once), what the fast
 * paths cost in clock reads, Retry-After, the log line of each transition,
 * and the per-target configuration keys. Time comes from a fake clock that
 * counts its reads, so nothing sleeps. It does not test a breaker wrapped
 * around real HTTP calls; the client's tests do that.
 */
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/breaker.h"
#include "svc/config.h"
#include "svc/log.h"
#include "svc/util.h"
#include "unit.h"

#define THREADS 16
#define ROUNDS	64

struct fake_clock {
	_Atomic long long now;
	_Atomic int reads;
};

static struct fake_clock clk;
static int devnull = -1;

static long long
fake_now(void *arg)
{
	struct fake_clock *c = arg;

	atomic_fetch_add(&c->reads, 1);
	return atomic_load(&c->now);
}

static void
set_now(long long ms)
{
	atomic_store(&clk.now, ms);
}

static void
advance(long long ms)
{
	atomic_fetch_add(&clk.now, ms);
}

static int
reads(void)
{
	return atomic_load(&clk.reads);
}

static struct svc_breaker *
new_breaker(int threshold, long long recovery_ms)
{
	struct svc_breaker_config cfg = {
		.target = "ut-products",
		.failure_threshold = threshold,
		.recovery_ms = recovery_ms,
		.now_ms = fake_now,
		.clock_arg = &clk,
	};
	struct svc_breaker *b = svc_breaker_new(&cfg);

	ck_assert_ptr_nonnull(b);
	return b;
}

/* n calls that fail; each must have been allowed. */
static void
fail_calls(struct svc_breaker *b, int n)
{
	for (int i = 0; i < n; i++) {
		ck_assert(svc_breaker_allow(b));
		svc_breaker_record(b, false);
	}
}

static void
setup(void)
{
	set_now(1000000);
	atomic_store(&clk.reads, 0);
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	svc_log_init("unit-breaker", SVC_LOG_DEBUG, devnull);
}

static void
teardown(void)
{
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(devnull);
	devnull = -1;
}

/* --- capturing the log --- */

static int log_pipe[2] = { -1, -1 };

static void
capture_log(void)
{
	ck_assert_int_eq(pipe(log_pipe), 0);
	svc_log_init("unit-breaker", SVC_LOG_DEBUG, log_pipe[1]);
}

/*
 * Stops capturing and parses what was logged into lines[] (new
 * references); returns how many lines there were.
 */
static int
captured_lines(json_t **lines, int max)
{
	static char buf[65536];
	size_t len = 0;
	ssize_t n;
	int count = 0;
	char *line, *save = NULL;

	svc_log_init("unit-breaker", SVC_LOG_DEBUG, devnull);
	close(log_pipe[1]);
	while ((n = read(log_pipe[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(log_pipe[0]);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;

		ck_assert_int_lt(count, max);
		lines[count] = json_loads(line, 0, &err);
		ck_assert_msg(lines[count] != NULL, "not JSON: %s", line);
		count++;
	}
	return count;
}

static const char *
str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static void
assert_transition(json_t *j, const char *level, const char *from,
		  const char *to, long long failures)
{
	ck_assert_str_eq(str(j, "msg"), "circuit breaker state changed");
	ck_assert_str_eq(str(j, "level"), level);
	ck_assert_str_eq(str(j, "target"), "ut-products");
	ck_assert_str_eq(str(j, "from"), from);
	ck_assert_str_eq(str(j, "to"), to);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "failures")),
			 failures);
}

/* --- states --- */

START_TEST(a_zero_config_means_the_defaults)
{
	struct svc_breaker *b = new_breaker(0, 0);

	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	fail_calls(b, SVC_BREAKER_DEFAULT_FAILURES - 1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	fail_calls(b, 1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 30000);
	svc_breaker_free(b);

	/* Negative values are taken for "not set" too. */
	b = new_breaker(-3, -1);
	fail_calls(b, 5);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 30000);
	svc_breaker_free(b);
}
END_TEST

static const int thresholds[] = { 1, 2, 3, 5, 10, 1000 };

START_TEST(the_threshold_is_exact)
{
	int n = thresholds[_i];
	struct svc_breaker *b = new_breaker(n, 500);

	fail_calls(b, n - 1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, false);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert(!svc_breaker_allow(b));
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_success_resets_the_count)
{
	struct svc_breaker *b = new_breaker(3, 500);

	fail_calls(b, 2);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, true);
	fail_calls(b, 2);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	fail_calls(b, 1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	svc_breaker_free(b);
}
END_TEST

START_TEST(open_refuses_until_the_recovery_time)
{
	struct svc_breaker *b = new_breaker(2, 500);

	fail_calls(b, 2);
	for (int i = 0; i < 499; i++) {
		ck_assert(!svc_breaker_allow(b));
		advance(1);
	}
	/* 499 ms after opening. */
	ck_assert(!svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	advance(1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert(svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_HALF_OPEN);
	svc_breaker_free(b);
}
END_TEST

START_TEST(half_open_lets_one_trial_through)
{
	struct svc_breaker *b = new_breaker(1, 500);

	fail_calls(b, 1);
	advance(500);
	ck_assert(svc_breaker_allow(b));
	for (int i = 0; i < 100; i++) {
		ck_assert(!svc_breaker_allow(b));
		advance(1);
	}
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_HALF_OPEN);
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_successful_trial_closes)
{
	struct svc_breaker *b = new_breaker(3, 500);

	fail_calls(b, 3);
	advance(500);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, true);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 0);
	/* The count starts again from zero. */
	fail_calls(b, 2);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	fail_calls(b, 1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_failed_trial_reopens_and_restarts_the_timer)
{
	struct svc_breaker *b = new_breaker(2, 1000);

	fail_calls(b, 2); /* open at t, until t + 1000 */
	advance(1500);
	ck_assert(svc_breaker_allow(b));
	advance(300); /* the trial takes 300 ms and fails */
	svc_breaker_record(b, false);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 1000);
	advance(999);
	ck_assert(!svc_breaker_allow(b));
	advance(1);
	ck_assert(svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_HALF_OPEN);
	svc_breaker_record(b, true);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	svc_breaker_free(b);
}
END_TEST

START_TEST(retry_after_counts_down)
{
	struct svc_breaker *b = new_breaker(1, 30000);

	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 0);
	fail_calls(b, 1);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 30000);
	advance(1000);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 29000);
	advance(28999);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 1);
	advance(1);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 0);
	advance(5000);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 0);
	/* Half-open: until the trial would count as lost. */
	ck_assert(svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 30000);
	advance(10000);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 20000);
	svc_breaker_record(b, true);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 0);
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_lost_trial_is_given_again)
{
	struct svc_breaker *b = new_breaker(1, 500);

	fail_calls(b, 1);
	advance(500);
	ck_assert(svc_breaker_allow(b)); /* never recorded */
	advance(499);
	ck_assert(!svc_breaker_allow(b));
	advance(1);
	ck_assert(svc_breaker_allow(b));
	ck_assert(!svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_HALF_OPEN);
	svc_breaker_record(b, true);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	svc_breaker_free(b);
}
END_TEST

START_TEST(outcomes_while_open_are_ignored)
{
	struct svc_breaker *b = new_breaker(2, 1000);

	/* Three calls in flight; two fail and open it, the third is late. */
	for (int i = 0; i < 3; i++)
		ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, false);
	svc_breaker_record(b, false);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	advance(400);
	svc_breaker_record(b, true);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	svc_breaker_record(b, false);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	/* Neither closed it nor pushed the timer back. */
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 600);
	advance(600);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_free(b);
}
END_TEST

START_TEST(closed_calls_never_read_the_clock)
{
	struct svc_breaker *b = new_breaker(5, 500);

	for (int i = 0; i < 1000; i++) {
		ck_assert(svc_breaker_allow(b));
		svc_breaker_record(b, true);
	}
	/* Failures below the threshold do not need the time either. */
	fail_calls(b, 4);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	ck_assert_int_eq(reads(), 0);
	/* Opening reads it once, to start the timer. */
	fail_calls(b, 1);
	ck_assert_int_eq(reads(), 1);
	svc_breaker_free(b);
}
END_TEST

START_TEST(an_open_refusal_reads_the_clock_once)
{
	struct svc_breaker *b = new_breaker(1, 500);
	int before;

	fail_calls(b, 1);
	before = reads();
	capture_log();
	for (int i = 0; i < 1000; i++)
		ck_assert(!svc_breaker_allow(b));
	ck_assert_int_eq(reads() - before, 1000);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	/* Refusing logs nothing; only transitions do. */
	ck_assert_int_eq(captured_lines(NULL, 0), 0);
	svc_breaker_free(b);
}
END_TEST

START_TEST(open_refusals_are_cheap)
{
	struct svc_breaker *b = new_breaker(1, 500);
	const int n = 200000;
	long long start;

	fail_calls(b, 1);
	start = svc_now_ms();
	for (int i = 0; i < n; i++)
		if (svc_breaker_allow(b))
			ck_abort_msg("an open breaker let a call through");
	/* Some 10 ns each; a second allows for sanitizers and valgrind. */
	ck_assert_int_lt(svc_now_ms() - start, 1000);
	svc_breaker_free(b);
}
END_TEST

START_TEST(construction_and_free)
{
	struct svc_breaker_config cfg = { .target = NULL };
	struct svc_breaker *b;
	char name[] = "inventory";
	json_t *lines[2];

	svc_breaker_free(NULL);
	ck_assert_ptr_null(svc_breaker_new(NULL));
	ck_assert_ptr_null(svc_breaker_new(&cfg));
	/* The target is copied, and the real clock is the default. */
	cfg.target = name;
	b = svc_breaker_new(&cfg);
	ck_assert_ptr_nonnull(b);
	name[0] = 'X';
	capture_log();
	fail_calls(b, SVC_BREAKER_DEFAULT_FAILURES);
	ck_assert_int_eq(captured_lines(lines, 2), 1);
	ck_assert_str_eq(str(lines[0], "target"), "inventory");
	json_decref(lines[0]);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert(!svc_breaker_allow(b));
	ck_assert_int_gt(svc_breaker_retry_after_ms(b), 29000);
	ck_assert_int_le(svc_breaker_retry_after_ms(b), 30000);
	ck_assert_int_eq(reads(), 0);
	svc_breaker_free(b);
}
END_TEST

START_TEST(state_names)
{
	ck_assert_str_eq(svc_breaker_state_name(SVC_BREAKER_CLOSED), "closed");
	ck_assert_str_eq(svc_breaker_state_name(SVC_BREAKER_OPEN), "open");
	ck_assert_str_eq(svc_breaker_state_name(SVC_BREAKER_HALF_OPEN),
			 "half_open");
	ck_assert_str_eq(svc_breaker_state_name((enum svc_breaker_state)3),
			 "unknown");
	ck_assert_str_eq(svc_breaker_state_name((enum svc_breaker_state) - 1),
			 "unknown");
	/* The values a metrics gauge exports. */
	ck_assert_int_eq(SVC_BREAKER_CLOSED, 0);
	ck_assert_int_eq(SVC_BREAKER_OPEN, 1);
	ck_assert_int_eq(SVC_BREAKER_HALF_OPEN, 2);
}
END_TEST

/* --- the log --- */

START_TEST(every_transition_is_logged_once)
{
	struct svc_breaker *b = new_breaker(3, 500);
	json_t *lines[8];
	int n;

	capture_log();
	fail_calls(b, 3);
	ck_assert(!svc_breaker_allow(b));
	advance(500);
	ck_assert(svc_breaker_allow(b));
	ck_assert(!svc_breaker_allow(b));
	svc_breaker_record(b, false);
	ck_assert(!svc_breaker_allow(b));
	advance(500);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, true);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, true);
	n = captured_lines(lines, 8);

	ck_assert_int_eq(n, 5);
	assert_transition(lines[0], "warn", "closed", "open", 3);
	assert_transition(lines[1], "info", "open", "half_open", 3);
	assert_transition(lines[2], "warn", "half_open", "open", 4);
	assert_transition(lines[3], "info", "open", "half_open", 4);
	assert_transition(lines[4], "info", "half_open", "closed", 4);
	for (int i = 0; i < n; i++)
		json_decref(lines[i]);
	svc_breaker_free(b);
}
END_TEST

/* --- threads --- */

struct race {
	struct svc_breaker *b;
	pthread_barrier_t start;
	_Atomic int allowed;
	int failures_each;
};

static void *
race_allow(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(&r->start);
	if (svc_breaker_allow(r->b))
		atomic_fetch_add(&r->allowed, 1);
	return NULL;
}

/* The threads meet at the barrier, then each asks once. */
static int
allowed_among_threads(struct race *r)
{
	pthread_t t[THREADS];

	atomic_store(&r->allowed, 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_allow, r), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	return atomic_load(&r->allowed);
}

START_TEST(many_threads_get_exactly_one_trial)
{
	struct race r = { .b = new_breaker(1, 500) };

	ck_assert_int_eq(pthread_barrier_init(&r.start, NULL, THREADS), 0);
	fail_calls(r.b, 1);
	for (int round = 0; round < ROUNDS; round++) {
		/* The recovery time is over: one of them turns it half-open. */
		advance(500);
		ck_assert_int_eq(allowed_among_threads(&r), 1);
		ck_assert_int_eq(svc_breaker_state(r.b), SVC_BREAKER_HALF_OPEN);
		/* The trial is lost: one of them gets it again. */
		advance(500);
		ck_assert_int_eq(allowed_among_threads(&r), 1);
		ck_assert_int_eq(allowed_among_threads(&r), 0);
		svc_breaker_record(r.b, false);
		ck_assert_int_eq(svc_breaker_state(r.b), SVC_BREAKER_OPEN);
		ck_assert_int_eq(allowed_among_threads(&r), 0);
	}
	pthread_barrier_destroy(&r.start);
	svc_breaker_free(r.b);
}
END_TEST

static void *
race_fail(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(&r->start);
	/* A few successes first, racing with the other threads' failures. */
	for (int i = 0; i < r->failures_each; i++)
		if (svc_breaker_allow(r->b))
			svc_breaker_record(r->b, i < 3);
	return NULL;
}

START_TEST(concurrent_failures_open_it_once)
{
	struct race r = { .b = new_breaker(10, 500), .failures_each = 200 };
	pthread_t t[THREADS];
	json_t *lines[4];
	int n;

	ck_assert_int_eq(pthread_barrier_init(&r.start, NULL, THREADS), 0);
	capture_log();
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_fail, &r), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	n = captured_lines(lines, 4);
	ck_assert_int_eq(svc_breaker_state(r.b), SVC_BREAKER_OPEN);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(str(lines[0], "to"), "open");
	ck_assert_int_ge(
		json_integer_value(json_object_get(lines[0], "failures")), 10);
	json_decref(lines[0]);
	pthread_barrier_destroy(&r.start);
	svc_breaker_free(r.b);
}
END_TEST

/* --- configuration --- */

static const char *const config_keys[] = {
	"UT_BRK_BREAKER_FAILURES",
	"UT_BRK_BREAKER_RECOVERY",
	NULL,
};

static void
config_setup(void)
{
	setup();
	for (int i = 0; config_keys[i] != NULL; i++)
		unsetenv(config_keys[i]);
	svc_config_reset();
}

static void
config_teardown(void)
{
	for (int i = 0; config_keys[i] != NULL; i++)
		unsetenv(config_keys[i]);
	svc_config_reset();
	teardown();
}

static void
assert_error_names(const char *key)
{
	size_t n = strlen(key);

	ck_assert(!svc_config_ok());
	ck_assert_msg(strncmp(svc_config_error(), key, n) == 0 &&
			      svc_config_error()[n] == ':',
		      "error \"%s\" does not name %s", svc_config_error(), key);
}

START_TEST(config_defaults)
{
	struct svc_breaker_config cfg = { .target = "t", .clock_arg = &clk };

	svc_breaker_config_read("UT_BRK", &cfg);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(cfg.failure_threshold, 5);
	ck_assert_int_eq(cfg.recovery_ms, 30000);
	/* The rest is the caller's. */
	ck_assert_str_eq(cfg.target, "t");
	ck_assert_ptr_eq(cfg.clock_arg, &clk);
}
END_TEST

START_TEST(config_values)
{
	struct svc_breaker_config cfg = { 0 };

	setenv("UT_BRK_BREAKER_FAILURES", "7", 1);
	setenv("UT_BRK_BREAKER_RECOVERY", "250ms", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(cfg.failure_threshold, 7);
	ck_assert_int_eq(cfg.recovery_ms, 250);
	setenv("UT_BRK_BREAKER_FAILURES", "1000", 1);
	setenv("UT_BRK_BREAKER_RECOVERY", "1h", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(cfg.failure_threshold, 1000);
	ck_assert_int_eq(cfg.recovery_ms, 3600000);
}
END_TEST

static const struct {
	const char *key, *value;
} bad_config[] = {
	{ "UT_BRK_BREAKER_FAILURES", "0" },
	{ "UT_BRK_BREAKER_FAILURES", "1001" },
	{ "UT_BRK_BREAKER_FAILURES", "five" },
	{ "UT_BRK_BREAKER_FAILURES", "" },
	{ "UT_BRK_BREAKER_RECOVERY", "0ms" },
	{ "UT_BRK_BREAKER_RECOVERY", "2h" },
	{ "UT_BRK_BREAKER_RECOVERY", "soon" },
	{ "UT_BRK_BREAKER_RECOVERY", "" },
};

START_TEST(config_bad_values_are_recorded)
{
	struct svc_breaker_config cfg = { 0 };

	setenv(bad_config[_i].key, bad_config[_i].value, 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	assert_error_names(bad_config[_i].key);
	ck_assert_int_eq(cfg.failure_threshold, 5);
	ck_assert_int_eq(cfg.recovery_ms, 30000);
}
END_TEST

START_TEST(config_prefix_too_long)
{
	char prefix[200];
	struct svc_breaker_config cfg = { 0 };

	memset(prefix, 'P', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	svc_breaker_config_read(prefix, &cfg);
	assert_error_names(prefix);
	ck_assert_int_eq(cfg.failure_threshold, 5);
	ck_assert_int_eq(cfg.recovery_ms, 30000);
}
END_TEST

Suite *
breaker_suite(void)
{
	Suite *s = suite_create("breaker");
	TCase *states = tcase_create("states");
	TCase *logs = tcase_create("log");
	TCase *threads = tcase_create("threads");
	TCase *config = tcase_create("config");

	tcase_add_checked_fixture(states, setup, teardown);
	tcase_add_test(states, a_zero_config_means_the_defaults);
	tcase_add_loop_test(states, the_threshold_is_exact, 0,
			    (int)(sizeof(thresholds) / sizeof(thresholds[0])));
	tcase_add_test(states, a_success_resets_the_count);
	tcase_add_test(states, open_refuses_until_the_recovery_time);
	tcase_add_test(states, half_open_lets_one_trial_through);
	tcase_add_test(states, a_successful_trial_closes);
	tcase_add_test(states, a_failed_trial_reopens_and_restarts_the_timer);
	tcase_add_test(states, retry_after_counts_down);
	tcase_add_test(states, a_lost_trial_is_given_again);
	tcase_add_test(states, outcomes_while_open_are_ignored);
	tcase_add_test(states, closed_calls_never_read_the_clock);
	tcase_add_test(states, an_open_refusal_reads_the_clock_once);
	tcase_add_test(states, open_refusals_are_cheap);
	tcase_add_test(states, construction_and_free);
	tcase_add_test(states, state_names);
	suite_add_tcase(s, states);

	tcase_add_checked_fixture(logs, setup, teardown);
	tcase_add_test(logs, every_transition_is_logged_once);
	suite_add_tcase(s, logs);

	tcase_add_checked_fixture(threads, setup, teardown);
	tcase_set_timeout(threads, 30);
	tcase_add_test(threads, many_threads_get_exactly_one_trial);
	tcase_add_test(threads, concurrent_failures_open_it_once);
	suite_add_tcase(s, threads);

	tcase_add_checked_fixture(config, config_setup, config_teardown);
	tcase_add_test(config, config_defaults);
	tcase_add_test(config, config_values);
	tcase_add_loop_test(config, config_bad_values_are_recorded, 0,
			    (int)(sizeof(bad_config) / sizeof(bad_config[0])));
	tcase_add_test(config, config_prefix_too_long);
	suite_add_tcase(s, config);
	return s;
}
