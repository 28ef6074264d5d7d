/*
 * test_breaker.c - unit tests for breaker.c: every transition and the exact
 * failure threshold, the open interval and its restart, the one trial of
 * the half-open state (also against many threads at once), what the fast
 * paths cost in clock reads, Retry-After, the log line of each transition,
 * the adaptive open interval (the minimum first, doubling on failed
 * trials, the cap, the reset, the jitter's bounds) and the per-target
 * configuration keys. Time comes from a fake clock that counts its reads
 * and the jitter from a fake random number, so nothing sleeps and every
 * interval is known. The state-machine tests use breakers whose minimum
 * and maximum are equal, a fixed interval, so that what they check does
 * not depend on the backoff. It does not test a breaker wrapped around
 * real HTTP calls; the client's tests do that.
 */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
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

/* What the fake random source returns, and how often it was asked. */
static double rnd;
static _Atomic int draws;

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

static double
fake_random(void *arg)
{
	(void)arg;
	atomic_fetch_add(&draws, 1);
	return rnd;
}

/* A breaker open for min_ms at first, up to max_ms, on the fakes. */
static struct svc_breaker *
new_adaptive(int threshold, long long min_ms, long long max_ms)
{
	struct svc_breaker_config cfg = {
		.target = "ut-products",
		.failure_threshold = threshold,
		.recovery_min_ms = min_ms,
		.recovery_ms = max_ms,
		.now_ms = fake_now,
		.clock_arg = &clk,
		.random = fake_random,
	};
	struct svc_breaker *b = svc_breaker_new(&cfg);

	ck_assert_ptr_nonnull(b);
	return b;
}

/* A breaker whose every open interval is recovery_ms: no backoff. */
static struct svc_breaker *
new_breaker(int threshold, long long recovery_ms)
{
	return new_adaptive(threshold, recovery_ms, recovery_ms);
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

/*
 * An open b: waits out its interval, checking it refuses until the last
 * millisecond, and takes the trial; b is half-open afterwards.
 */
static void
take_trial(struct svc_breaker *b)
{
	long long left = svc_breaker_retry_after_ms(b);

	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	ck_assert_int_gt(left, 0);
	advance(left - 1);
	ck_assert(!svc_breaker_allow(b));
	advance(1);
	ck_assert(svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_HALF_OPEN);
}

/* The trial of an open b fails; returns the new open interval. */
static long long
fail_trial(struct svc_breaker *b)
{
	take_trial(b);
	svc_breaker_record(b, false);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	/* The clock has not moved: all of the interval is left. */
	return svc_breaker_retry_after_ms(b);
}

static void
setup(void)
{
	set_now(1000000);
	atomic_store(&clk.reads, 0);
	rnd = 0.5;
	atomic_store(&draws, 0);
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

/* open_ms: the interval an opening logs; -1 for a line without one. */
static void
assert_transition(json_t *j, const char *level, const char *from,
		  const char *to, long long failures, long long open_ms)
{
	json_t *interval = json_object_get(j, "open_ms");

	ck_assert_str_eq(str(j, "msg"), "circuit breaker state changed");
	ck_assert_str_eq(str(j, "level"), level);
	ck_assert_str_eq(str(j, "target"), "ut-products");
	ck_assert_str_eq(str(j, "from"), from);
	ck_assert_str_eq(str(j, "to"), to);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "failures")),
			 failures);
	if (open_ms < 0)
		ck_assert_ptr_null(interval);
	else
		ck_assert_int_eq(json_integer_value(interval), open_ms);
}

/* --- states --- */

/* Opens b from closed with n failures; returns the open interval. */
static long long
open_it(struct svc_breaker *b, int n)
{
	fail_calls(b, n);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_OPEN);
	return svc_breaker_retry_after_ms(b);
}

/* Fails trials until the interval stops growing; returns the last. */
static long long
grow_to_the_cap(struct svc_breaker *b)
{
	long long last = 0, next = svc_breaker_retry_after_ms(b);

	for (int i = 0; i < 64 && next != last; i++) {
		last = next;
		next = fail_trial(b);
	}
	return next;
}

START_TEST(a_zero_config_means_the_defaults)
{
	struct svc_breaker *b = new_adaptive(0, 0, 0);

	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	fail_calls(b, SVC_BREAKER_DEFAULT_FAILURES - 1);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	/* The extreme draws reach the bounds: 1 s at first, 30 s at the cap. */
	rnd = 0;
	ck_assert_int_eq(open_it(b, 1), 1000);
	rnd = 0.999999;
	ck_assert_int_eq(grow_to_the_cap(b), 29999);
	rnd = 1;
	ck_assert_int_eq(fail_trial(b), 30000);
	svc_breaker_free(b);

	/* Negative values are taken for "not set" too. */
	b = new_adaptive(-3, -1, -1);
	rnd = 0;
	ck_assert_int_eq(open_it(b, 5), 1000);
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
	/* 30 s open, so the real clock cannot run past it mid-test. */
	struct svc_breaker_config cfg = { .target = NULL,
					  .recovery_min_ms = 30000 };
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

/* --- the adaptive open interval --- */

/* Draws and the first interval they give with a 1 s minimum: +0..20 %. */
static const struct {
	double r;
	long long open_ms;
} first_intervals[] = {
	{ 0, 1000 },	{ 0.25, 1050 },	    { 0.5, 1100 },
	{ 0.75, 1150 }, { 0.999999, 1199 },
};

START_TEST(the_first_opening_is_the_minimum)
{
	struct svc_breaker *b = new_adaptive(2, 1000, 30000);

	rnd = first_intervals[_i].r;
	ck_assert_int_eq(open_it(b, 2), first_intervals[_i].open_ms);
	/* Refused until the last millisecond of it, then the trial. */
	take_trial(b);
	ck_assert_int_eq(atomic_load(&draws), 1);
	svc_breaker_free(b);
}
END_TEST

/*
 * The intervals of a 1 s to 30 s breaker as its trials keep failing: the
 * backoff 1, 2, 4, 8, 16, 30 (not 32), 30 s, each spread +-20 % within the
 * bounds. rnd 0.5 draws the backoff itself (but the first window is
 * [1000, 1200], cut at the minimum); rnd 0 the window's low end.
 */
static const long long intervals_mid[] = { 1100,  2000,	 4000, 8000,
					   16000, 27000, 27000 };
static const long long intervals_low[] = { 1000,  1600,	 3200, 6400,
					   12800, 24000, 24000 };

START_TEST(failed_trials_double_the_interval_up_to_the_cap)
{
	const long long *want = _i == 0 ? intervals_mid : intervals_low;
	struct svc_breaker *b = new_adaptive(1, 1000, 30000);
	int n = (int)(sizeof(intervals_mid) / sizeof(intervals_mid[0]));

	rnd = _i == 0 ? 0.5 : 0;
	ck_assert_int_eq(open_it(b, 1), want[0]);
	for (int i = 1; i < n; i++)
		ck_assert_int_eq(fail_trial(b), want[i]);
	/* At the cap it stays there. */
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(fail_trial(b), want[n - 1]);
	svc_breaker_free(b);
}
END_TEST

START_TEST(the_cap_holds_for_the_widest_range)
{
	/* 1 ms to 1 h: 21 doublings, then the cap; more must not pass it. */
	struct svc_breaker *b = new_adaptive(1, 1, 3600000);
	long long last = open_it(b, 1), next;

	rnd = 0.999999;
	ck_assert_int_eq(last, 1);
	for (int i = 0; i < 80; i++) {
		next = fail_trial(b);
		ck_assert_int_le(next, 3600000);
		ck_assert_int_ge(next, i < 21 ? last : 2880000);
		last = next;
	}
	ck_assert_int_ge(last, 3599999);
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_successful_trial_starts_again_from_the_minimum)
{
	struct svc_breaker *b = new_adaptive(2, 1000, 30000);

	ck_assert_int_eq(open_it(b, 2), 1100);
	ck_assert_int_eq(fail_trial(b), 2000);
	ck_assert_int_eq(fail_trial(b), 4000);
	ck_assert_int_eq(fail_trial(b), 8000);
	take_trial(b);
	svc_breaker_record(b, true);
	ck_assert_int_eq(svc_breaker_state(b), SVC_BREAKER_CLOSED);
	/* Long after, or at once: the next opening is short again. */
	ck_assert_int_eq(open_it(b, 2), 1100);
	ck_assert_int_eq(fail_trial(b), 2000);
	svc_breaker_free(b);
}
END_TEST

START_TEST(retry_after_and_a_lost_trial_follow_the_interval)
{
	struct svc_breaker *b = new_adaptive(1, 1000, 30000);

	open_it(b, 1);
	ck_assert_int_eq(fail_trial(b), 2000);
	ck_assert_int_eq(fail_trial(b), 4000);
	advance(1500);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 2500);
	advance(2500);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 0);
	/* Half-open: the trial counts as lost after the same 4 s. */
	ck_assert(svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 4000);
	advance(3999);
	ck_assert(!svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 1);
	advance(1);
	ck_assert(svc_breaker_allow(b));
	/* The second trial fails: 8 s, as if the first had. */
	svc_breaker_record(b, false);
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 8000);
	svc_breaker_free(b);
}
END_TEST

START_TEST(the_jitter_stays_within_bounds_over_many_draws)
{
	/* The real random source. */
	struct svc_breaker_config cfg = {
		.target = "ut-products",
		.failure_threshold = 1,
		.recovery_min_ms = 1000,
		.recovery_ms = 30000,
		.now_ms = fake_now,
		.clock_arg = &clk,
	};
	/* Per doubling: the window, and the lowest and highest drawn. */
	static const long long lo[] = { 1000, 1600, 3200, 6400, 12800, 24000 };
	static const long long hi[] = { 1200, 2400, 4800, 9600, 19200, 30000 };
	long long seen_lo[6], seen_hi[6];
	struct svc_breaker *b = svc_breaker_new(&cfg);

	ck_assert_ptr_nonnull(b);
	for (int k = 0; k < 6; k++) {
		seen_lo[k] = LLONG_MAX;
		seen_hi[k] = 0;
	}
	for (int round = 0; round < 400; round++) {
		for (int k = 0; k < 6; k++) {
			long long v = k == 0 ? open_it(b, 1) : fail_trial(b);

			ck_assert_int_ge(v, lo[k]);
			ck_assert_int_le(v, hi[k]);
			seen_lo[k] = v < seen_lo[k] ? v : seen_lo[k];
			seen_hi[k] = v > seen_hi[k] ? v : seen_hi[k];
		}
		take_trial(b);
		svc_breaker_record(b, true);
	}
	/*
	 * The draws spread over each window: 400 of them all missing its
	 * lowest or highest tenth has a chance of 0.9^400, about 1e-18.
	 */
	for (int k = 0; k < 6; k++) {
		long long tenth = (hi[k] - lo[k]) / 10;

		ck_assert_int_lt(seen_lo[k], lo[k] + tenth);
		ck_assert_int_gt(seen_hi[k], hi[k] - tenth);
	}
	svc_breaker_free(b);
}
END_TEST

/* Draws a broken source might give, and what each must come to. */
static const struct {
	double r;
	long long open_ms;
} odd_draws[] = {
	{ -1, 1000 },  { -0.0, 1000 },	{ 1, 1200 },
	{ 1.5, 1200 }, { 1e300, 1200 }, { 0x1.fffffffffffffp-1, 1199 },
};

START_TEST(odd_draws_stay_within_bounds)
{
	struct svc_breaker *b = new_adaptive(1, 1000, 30000);

	rnd = odd_draws[_i].r;
	ck_assert_int_eq(open_it(b, 1), odd_draws[_i].open_ms);
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_nan_draw_is_the_low_end)
{
	struct svc_breaker *b = new_adaptive(1, 1000, 30000);

	rnd = NAN;
	ck_assert_int_eq(open_it(b, 1), 1000);
	ck_assert_int_eq(fail_trial(b), 1600);
	svc_breaker_free(b);
}
END_TEST

START_TEST(equal_bounds_are_a_fixed_interval)
{
	struct svc_breaker *b = new_adaptive(1, 500, 500);

	for (int i = 0; i < 3; i++) {
		rnd = i == 0 ? 0 : 0.999999;
		ck_assert_int_eq(open_it(b, 1), 500);
		for (int j = 0; j < 10; j++)
			ck_assert_int_eq(fail_trial(b), 500);
		take_trial(b);
		svc_breaker_record(b, true);
	}
	svc_breaker_free(b);
}
END_TEST

START_TEST(a_minimum_above_the_maximum_is_the_maximum)
{
	struct svc_breaker *b = new_adaptive(1, 5000, 2000);

	rnd = 0;
	ck_assert_int_eq(open_it(b, 1), 2000);
	rnd = 0.999999;
	ck_assert_int_eq(fail_trial(b), 2000);
	svc_breaker_free(b);
	/* Unset, the minimum's default (1 s) follows a shorter maximum. */
	b = new_adaptive(1, 0, 300);
	ck_assert_int_eq(open_it(b, 1), 300);
	svc_breaker_free(b);
}
END_TEST

START_TEST(only_openings_draw)
{
	struct svc_breaker *b = new_adaptive(2, 1000, 30000);

	for (int i = 0; i < 100; i++) {
		ck_assert(svc_breaker_allow(b));
		svc_breaker_record(b, i % 2 == 1);
	}
	ck_assert_int_eq(atomic_load(&draws), 0);
	open_it(b, 2);
	for (int i = 0; i < 100; i++)
		ck_assert(!svc_breaker_allow(b));
	ck_assert_int_eq(svc_breaker_retry_after_ms(b), 1100);
	ck_assert_int_eq(atomic_load(&draws), 1);
	fail_trial(b);
	ck_assert_int_eq(atomic_load(&draws), 2);
	svc_breaker_free(b);
}
END_TEST

/* --- the log --- */

START_TEST(every_transition_is_logged_once)
{
	/* Open 500 to 600 ms at first; rnd 0.5 draws the middle. */
	struct svc_breaker *b = new_adaptive(3, 500, 30000);
	json_t *lines[8];
	int n;

	capture_log();
	fail_calls(b, 3);
	ck_assert(!svc_breaker_allow(b));
	advance(550);
	ck_assert(svc_breaker_allow(b));
	ck_assert(!svc_breaker_allow(b));
	svc_breaker_record(b, false);
	ck_assert(!svc_breaker_allow(b));
	advance(1000);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, true);
	ck_assert(svc_breaker_allow(b));
	svc_breaker_record(b, true);
	n = captured_lines(lines, 8);

	ck_assert_int_eq(n, 5);
	assert_transition(lines[0], "warn", "closed", "open", 3, 550);
	assert_transition(lines[1], "info", "open", "half_open", 3, -1);
	assert_transition(lines[2], "warn", "half_open", "open", 4, 1000);
	assert_transition(lines[3], "info", "open", "half_open", 4, -1);
	assert_transition(lines[4], "info", "half_open", "closed", 4, -1);
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
	"UT_BRK_BREAKER_RECOVERY_MIN",
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
	ck_assert_int_eq(cfg.recovery_min_ms, 1000);
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
	setenv("UT_BRK_BREAKER_RECOVERY_MIN", "1ms", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(cfg.failure_threshold, 7);
	ck_assert_int_eq(cfg.recovery_ms, 250);
	ck_assert_int_eq(cfg.recovery_min_ms, 1);
	setenv("UT_BRK_BREAKER_FAILURES", "1000", 1);
	setenv("UT_BRK_BREAKER_RECOVERY", "1h", 1);
	setenv("UT_BRK_BREAKER_RECOVERY_MIN", "1h", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(cfg.failure_threshold, 1000);
	ck_assert_int_eq(cfg.recovery_ms, 3600000);
	ck_assert_int_eq(cfg.recovery_min_ms, 3600000);
}
END_TEST

START_TEST(config_unset_minimum_follows_a_shorter_maximum)
{
	struct svc_breaker_config cfg = { 0 };

	/* A RECOVERY below 1 s, set before the minimum existed, still works. */
	setenv("UT_BRK_BREAKER_RECOVERY", "250ms", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(cfg.recovery_ms, 250);
	ck_assert_int_eq(cfg.recovery_min_ms, 250);
}
END_TEST

START_TEST(config_minimum_above_maximum_is_refused)
{
	struct svc_breaker_config cfg = { 0 };

	setenv("UT_BRK_BREAKER_RECOVERY", "2s", 1);
	setenv("UT_BRK_BREAKER_RECOVERY_MIN", "5s", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	assert_error_names("UT_BRK_BREAKER_RECOVERY_MIN");
	ck_assert_str_eq(svc_config_error(),
			 "UT_BRK_BREAKER_RECOVERY_MIN: must not be more than "
			 "UT_BRK_BREAKER_RECOVERY (2000ms), got 5000ms");
	/* Start-up stops on it; what is left is still a usable breaker. */
	ck_assert_int_eq(cfg.recovery_ms, 2000);
	ck_assert_int_eq(cfg.recovery_min_ms, 2000);
	/* Set, even to its default, it is refused just the same. */
	svc_config_reset();
	setenv("UT_BRK_BREAKER_RECOVERY", "500ms", 1);
	setenv("UT_BRK_BREAKER_RECOVERY_MIN", "1s", 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	assert_error_names("UT_BRK_BREAKER_RECOVERY_MIN");
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
	{ "UT_BRK_BREAKER_RECOVERY_MIN", "0ms" },
	{ "UT_BRK_BREAKER_RECOVERY_MIN", "2h" },
	{ "UT_BRK_BREAKER_RECOVERY_MIN", "-1s" },
	{ "UT_BRK_BREAKER_RECOVERY_MIN", "soon" },
	{ "UT_BRK_BREAKER_RECOVERY_MIN", "" },
};

START_TEST(config_bad_values_are_recorded)
{
	struct svc_breaker_config cfg = { 0 };

	setenv(bad_config[_i].key, bad_config[_i].value, 1);
	svc_breaker_config_read("UT_BRK", &cfg);
	assert_error_names(bad_config[_i].key);
	ck_assert_int_eq(cfg.failure_threshold, 5);
	ck_assert_int_eq(cfg.recovery_ms, 30000);
	ck_assert_int_eq(cfg.recovery_min_ms, 1000);
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
	ck_assert_int_eq(cfg.recovery_min_ms, 1000);
}
END_TEST

Suite *
breaker_suite(void)
{
	Suite *s = suite_create("breaker");
	TCase *states = tcase_create("states");
	TCase *adaptive = tcase_create("adaptive");
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

	tcase_add_checked_fixture(adaptive, setup, teardown);
	tcase_add_loop_test(
		adaptive, the_first_opening_is_the_minimum, 0,
		(int)(sizeof(first_intervals) / sizeof(first_intervals[0])));
	tcase_add_loop_test(adaptive,
			    failed_trials_double_the_interval_up_to_the_cap, 0,
			    2);
	tcase_add_test(adaptive, the_cap_holds_for_the_widest_range);
	tcase_add_test(adaptive,
		       a_successful_trial_starts_again_from_the_minimum);
	tcase_add_test(adaptive,
		       retry_after_and_a_lost_trial_follow_the_interval);
	tcase_add_test(adaptive,
		       the_jitter_stays_within_bounds_over_many_draws);
	tcase_add_loop_test(adaptive, odd_draws_stay_within_bounds, 0,
			    (int)(sizeof(odd_draws) / sizeof(odd_draws[0])));
	tcase_add_test(adaptive, a_nan_draw_is_the_low_end);
	tcase_add_test(adaptive, equal_bounds_are_a_fixed_interval);
	tcase_add_test(adaptive, a_minimum_above_the_maximum_is_the_maximum);
	tcase_add_test(adaptive, only_openings_draw);
	suite_add_tcase(s, adaptive);

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
	tcase_add_test(config, config_unset_minimum_follows_a_shorter_maximum);
	tcase_add_test(config, config_minimum_above_maximum_is_refused);
	tcase_add_loop_test(config, config_bad_values_are_recorded, 0,
			    (int)(sizeof(bad_config) / sizeof(bad_config[0])));
	tcase_add_test(config, config_prefix_too_long);
	suite_add_tcase(s, config);
	return s;
}
