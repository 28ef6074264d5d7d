/*
 * test_retry.c - unit tests for retry.c: which outcomes are retried, the
 * full-jitter backoff and its bounds, the attempt limit, idempotency, the
 * deadline budget and what svc_retry_run() returns, and the per-target
 * configuration keys. Attempts are scripted, and time, sleep and randomness
 * are fakes, so nothing sleeps: a fake sleep moves the fake clock on. The
 * real environment is only checked for sane randomness, with a fake sleep.
 * It does not make HTTP calls; the client's tests do that.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/retry.h"
#include "svc/util.h"
#include "unit.h"

#define MAX_STEPS 32

/* What one scripted attempt returns, and how long it takes. */
struct step {
	int rc;
	long status;
	long long takes_ms;
};

struct fake {
	long long now;
	double r; /* what the fake random returns */

	int sleeps;
	long long slept[MAX_STEPS];
	long long slept_at[MAX_STEPS];

	/* The script: its last step repeats. */
	int nsteps;
	struct step steps[MAX_STEPS];
	int attempts;
	long long started_at[MAX_STEPS];
	long long deadline_seen[MAX_STEPS];
};

static struct fake f;

static long long
fake_now(void *arg)
{
	return ((struct fake *)arg)->now;
}

static void
fake_sleep(void *arg, long long ms)
{
	struct fake *fk = arg;

	ck_assert_int_ge(ms, 0);
	ck_assert_int_lt(fk->sleeps, MAX_STEPS);
	fk->slept_at[fk->sleeps] = fk->now;
	fk->slept[fk->sleeps++] = ms;
	fk->now += ms;
}

static double
fake_random(void *arg)
{
	return ((struct fake *)arg)->r;
}

static const struct svc_retry_env fake_env = {
	.now_ms = fake_now,
	.sleep_ms = fake_sleep,
	.random = fake_random,
	.arg = &f,
};

static int
scripted(void *arg, long long deadline_ms, long *http_status)
{
	struct fake *fk = arg;
	const struct step *s;

	ck_assert_int_lt(fk->attempts, MAX_STEPS);
	ck_assert_int_gt(fk->nsteps, 0);
	ck_assert_int_eq(*http_status, 0);
	s = &fk->steps[fk->attempts < fk->nsteps ? fk->attempts
						 : fk->nsteps - 1];
	fk->started_at[fk->attempts] = fk->now;
	fk->deadline_seen[fk->attempts++] = deadline_ms;
	fk->now += s->takes_ms;
	*http_status = s->status;
	return s->rc;
}

static void
script(int n, const struct step *steps)
{
	ck_assert_int_le(n, MAX_STEPS);
	memcpy(f.steps, steps, (size_t)n * sizeof(*steps));
	f.nsteps = n;
}

/* Every attempt gives the same outcome. */
static void
always(int rc, long status)
{
	const struct step s = { rc, status, 0 };

	script(1, &s);
}

static int
run(int attempts, long long base, long long cap, bool idempotent,
    long long deadline)
{
	const struct svc_retry_policy p = { attempts, base, cap };

	return svc_retry_run(&p, idempotent, deadline, scripted, &f, &fake_env);
}

static void
setup(void)
{
	memset(&f, 0, sizeof(f));
	f.now = 1000;
	f.r = 0.5;
}

/* min(cap, base * 2^n), the bound of the sleep before retry n. */
static long long
bound(long long base, long long cap, int n)
{
	long long b = base;

	for (int i = 0; i < n && b < cap; i++)
		b *= 2;
	return b < cap ? b : cap;
}

/* --- what is retried --- */

static const struct {
	int err;
	long status;
	bool retryable;
} outcomes[] = {
	{ SVC_OK, 200, false },
	{ SVC_OK, 204, false },
	{ SVC_OK, 0, false },
	{ SVC_OK, 304, false },
	{ SVC_EUNAVAIL, 0, true },
	{ SVC_ETIMEOUT, 0, true },
	/* The response was cut off: the transport failed, not the server. */
	{ SVC_ETIMEOUT, 200, true },
	{ SVC_EINTERNAL, 0, false },
	{ SVC_ENOMEM, 0, false },
	{ SVC_EINVAL, 0, false },
	{ SVC_OK, 502, true },
	{ SVC_OK, 503, true },
	{ SVC_OK, 504, true },
	{ SVC_EUNAVAIL, 502, true },
	{ SVC_EUNAVAIL, 503, true },
	{ SVC_ETIMEOUT, 504, true },
	{ SVC_EINTERNAL, 503, true },
	{ SVC_EINVAL, 400, false },
	{ SVC_EUNAVAIL, 400, false },
	{ SVC_EAUTH, 401, false },
	{ SVC_EFORBIDDEN, 403, false },
	{ SVC_ENOTFOUND, 404, false },
	{ SVC_ETIMEOUT, 404, false },
	{ SVC_OK, 408, false },
	{ SVC_ECONFLICT, 409, false },
	{ SVC_EVALIDATION, 422, false },
	{ SVC_ERATELIMIT, 429, false },
	{ SVC_EUNAVAIL, 429, false },
	{ SVC_EINTERNAL, 500, false },
	{ SVC_EUNAVAIL, 500, false },
	{ SVC_ETIMEOUT, 500, false },
	{ SVC_EINTERNAL, 501, false },
	{ SVC_EINTERNAL, 505, false },
};

START_TEST(retryable_outcomes)
{
	ck_assert_msg(
		svc_retry_retryable(outcomes[_i].err, outcomes[_i].status) ==
			outcomes[_i].retryable,
		"err %d, status %ld: expected %s", outcomes[_i].err,
		outcomes[_i].status,
		outcomes[_i].retryable ? "a retry" : "no retry");
}
END_TEST

static const struct {
	int rc;
	long status;
} final_failures[] = {
	{ SVC_EINVAL, 400 },	{ SVC_ENOTFOUND, 404 },
	{ SVC_ECONFLICT, 409 }, { SVC_EVALIDATION, 422 },
	{ SVC_EINTERNAL, 500 }, { SVC_OK, 400 },
	{ SVC_OK, 404 },	{ SVC_OK, 409 },
	{ SVC_OK, 422 },	{ SVC_OK, 500 },
	{ SVC_EUNAVAIL, 404 },	{ SVC_ETIMEOUT, 500 },
	{ SVC_EINTERNAL, 0 },	{ SVC_ENOMEM, 0 },
};

START_TEST(no_retry_on_final_failures)
{
	always(final_failures[_i].rc, final_failures[_i].status);
	ck_assert_int_eq(run(5, 10, 100, true, SVC_RETRY_NO_DEADLINE),
			 final_failures[_i].rc);
	ck_assert_int_eq(f.attempts, 1);
	ck_assert_int_eq(f.sleeps, 0);
}
END_TEST

static const struct step transient[] = {
	{ SVC_OK, 502, 0 },	{ SVC_OK, 503, 0 },
	{ SVC_OK, 504, 0 },	{ SVC_EUNAVAIL, 503, 0 },
	{ SVC_EUNAVAIL, 0, 0 }, { SVC_ETIMEOUT, 0, 0 },
};

START_TEST(retries_on_transient_failures)
{
	const struct step steps[] = { transient[_i], { SVC_OK, 200, 0 } };

	script(2, steps);
	ck_assert_int_eq(run(3, 10, 100, true, SVC_RETRY_NO_DEADLINE), SVC_OK);
	ck_assert_int_eq(f.attempts, 2);
	ck_assert_int_eq(f.sleeps, 1);
	ck_assert_int_eq(f.slept[0], 5); /* r = 0.5 of base 10 */
}
END_TEST

START_TEST(no_retry_when_not_idempotent)
{
	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(run(5, 10, 100, false, SVC_RETRY_NO_DEADLINE),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 1);
	always(SVC_OK, 503);
	f.attempts = 0;
	ck_assert_int_eq(run(5, 10, 100, false, SVC_RETRY_NO_DEADLINE), SVC_OK);
	ck_assert_int_eq(f.attempts, 1);
	ck_assert_int_eq(f.sleeps, 0);
}
END_TEST

/* --- attempts and results --- */

START_TEST(attempts_never_exceed_the_maximum)
{
	int max = _i; /* 0 and below count as 1 */
	int want = max < 1 ? 1 : max;

	always(SVC_ETIMEOUT, 0);
	ck_assert_int_eq(run(max, 10, 100, true, SVC_RETRY_NO_DEADLINE),
			 SVC_ETIMEOUT);
	ck_assert_int_eq(f.attempts, want);
	ck_assert_int_eq(f.sleeps, want - 1);
}
END_TEST

START_TEST(negative_maximum_counts_as_one)
{
	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(run(-3, 10, 100, true, SVC_RETRY_NO_DEADLINE),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 1);
}
END_TEST

START_TEST(success_on_the_kth_attempt)
{
	int k = _i;
	struct step steps[MAX_STEPS];

	for (int i = 0; i < k - 1; i++)
		steps[i] = (struct step){ SVC_EUNAVAIL, i % 2 ? 503 : 0, 5 };
	steps[k - 1] = (struct step){ SVC_OK, 200, 5 };
	script(k, steps);
	ck_assert_int_eq(run(5, 10, 100, true, SVC_RETRY_NO_DEADLINE), SVC_OK);
	ck_assert_int_eq(f.attempts, k);
	ck_assert_int_eq(f.sleeps, k - 1);
}
END_TEST

START_TEST(the_last_result_is_returned)
{
	const struct step a[] = { { SVC_EUNAVAIL, 0, 0 },
				  { SVC_OK, 503, 0 },
				  { SVC_ETIMEOUT, 0, 0 } };
	const struct step b[] = { { SVC_ETIMEOUT, 0, 0 },
				  { SVC_EUNAVAIL, 0, 0 },
				  { SVC_OK, 504, 0 } };
	const struct step c[] = { { SVC_ETIMEOUT, 0, 0 },
				  { SVC_ENOTFOUND, 404, 0 } };

	script(3, a);
	ck_assert_int_eq(run(3, 10, 100, true, SVC_RETRY_NO_DEADLINE),
			 SVC_ETIMEOUT);
	ck_assert_int_eq(f.attempts, 3);
	/* As the attempt returned it: the 504 is in the attempt's arg. */
	setup();
	script(3, b);
	ck_assert_int_eq(run(3, 10, 100, true, SVC_RETRY_NO_DEADLINE), SVC_OK);
	ck_assert_int_eq(f.attempts, 3);
	setup();
	script(2, c);
	ck_assert_int_eq(run(3, 10, 100, true, SVC_RETRY_NO_DEADLINE),
			 SVC_ENOTFOUND);
	ck_assert_int_eq(f.attempts, 2);
}
END_TEST

/* --- backoff --- */

START_TEST(delay_bounds)
{
	const struct svc_retry_policy p = { 10, 100, 1000 };
	const long long bounds[] = { 100, 200, 400, 800, 1000, 1000, 1000 };
	const struct svc_retry_policy huge = { 10, LLONG_MAX / 4, LLONG_MAX };
	const struct svc_retry_policy zero = { 10, 0, 1000 };
	const struct svc_retry_policy low_cap = { 10, 500, 300 };

	for (int n = 0; n < 7; n++) {
		long long b = bounds[n];

		ck_assert_int_eq(svc_retry_delay_ms(&p, n, 0.0), 0);
		ck_assert_int_eq(svc_retry_delay_ms(&p, n, 0.5), b / 2);
		ck_assert_int_eq(svc_retry_delay_ms(&p, n, 0.999),
				 b * 999 / 1000);
		ck_assert_int_eq(svc_retry_delay_ms(&p, n, nextafter(1.0, 0.0)),
				 b - 1);
	}
	for (int n = 7; n < 100000; n = n * 3 + 1)
		ck_assert_int_eq(svc_retry_delay_ms(&p, n, 0.5), 500);
	ck_assert_int_eq(svc_retry_delay_ms(&p, -1, 0.5), 50);
	ck_assert_int_eq(svc_retry_delay_ms(&p, 0, -0.5), 0);
	ck_assert_int_eq(svc_retry_delay_ms(&p, 0, NAN), 0);
	/* No overflow on the way to a huge cap. */
	for (int n = 0; n < 200; n++) {
		long long d = svc_retry_delay_ms(&huge, n, 0.999);

		ck_assert_int_ge(d, 0);
		ck_assert_int_lt(d, LLONG_MAX);
	}
	ck_assert_int_eq(svc_retry_delay_ms(&zero, 5, 0.999), 0);
	/* A base above the cap is held to the cap from the first retry. */
	ck_assert_int_eq(svc_retry_delay_ms(&low_cap, 0, 0.5), 150);
}
END_TEST

START_TEST(full_jitter_near_one_sleeps_just_under_the_bound)
{
	f.r = 0.999;
	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(run(8, 100, 1000, true, SVC_RETRY_NO_DEADLINE),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(f.sleeps, 7);
	for (int n = 0; n < f.sleeps; n++) {
		long long b = bound(100, 1000, n);

		ck_assert_int_lt(f.slept[n], b);
		ck_assert_int_ge(f.slept[n], b - b / 100);
	}
}
END_TEST

START_TEST(full_jitter_at_zero_does_not_sleep)
{
	f.r = 0.0;
	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(run(8, 100, 1000, true, SVC_RETRY_NO_DEADLINE),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 8);
	for (int n = 0; n < f.sleeps; n++)
		ck_assert_int_eq(f.slept[n], 0);
	ck_assert_int_eq(f.now, 1000);
}
END_TEST

START_TEST(sleeps_stay_within_the_bounds)
{
	for (int k = 0; k < 100; k++) {
		setup();
		f.r = (double)k / 100.0;
		always(SVC_OK, 503);
		ck_assert_int_eq(run(10, 30, 5000, true, SVC_RETRY_NO_DEADLINE),
				 SVC_OK);
		ck_assert_int_eq(f.attempts, 10);
		for (int n = 0; n < f.sleeps; n++) {
			ck_assert_int_ge(f.slept[n], 0);
			ck_assert_int_le(f.slept[n], bound(30, 5000, n));
		}
	}
}
END_TEST

/* --- the deadline --- */

START_TEST(the_deadline_cuts_the_chain)
{
	/* Sleeps of 99, 199, 399, 799: the fourth would end past 2000. */
	f.r = 0.999;
	always(SVC_ETIMEOUT, 0);
	ck_assert_int_eq(run(10, 100, 10000, true, 2000), SVC_ETIMEOUT);
	ck_assert_int_eq(f.attempts, 4);
	ck_assert_int_eq(f.sleeps, 3);
	for (int i = 0; i < f.attempts; i++) {
		ck_assert_int_lt(f.started_at[i], 2000);
		ck_assert_int_eq(f.deadline_seen[i], 2000);
	}
	for (int i = 0; i < f.sleeps; i++)
		ck_assert_int_lt(f.slept_at[i] + f.slept[i], 2000);
	/* It gave up at once rather than sleep into the deadline. */
	ck_assert_int_eq(f.now, 1000 + 99 + 199 + 399);
}
END_TEST

START_TEST(a_sleep_may_not_end_on_the_deadline)
{
	f.r = 0.999;
	always(SVC_EUNAVAIL, 0);
	/* 1000 + 99 + 199 = 1298: the third attempt would start on it. */
	ck_assert_int_eq(run(10, 100, 10000, true, 1298), SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 2);
	/* Nor was that sleep begun. */
	ck_assert_int_eq(f.sleeps, 1);
	ck_assert_int_eq(f.now, 1099);
	setup();
	f.r = 0.999;
	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(run(10, 100, 10000, true, 1299), SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 3);
	ck_assert_int_eq(f.started_at[2], 1298);
}
END_TEST

START_TEST(no_attempt_after_a_slow_one_used_the_budget)
{
	const struct step slow = { SVC_ETIMEOUT, 0, 600 };

	script(1, &slow);
	/* 1000..1600, sleep 5, 1605..2205: past 2000, so that is all. */
	f.r = 0.5;
	ck_assert_int_eq(run(5, 10, 100, true, 2000), SVC_ETIMEOUT);
	ck_assert_int_eq(f.attempts, 2);
	ck_assert_int_eq(f.sleeps, 1);
	ck_assert_int_eq(f.started_at[1], 1605);
}
END_TEST

START_TEST(a_passed_deadline_makes_no_attempt)
{
	always(SVC_OK, 200);
	ck_assert_int_eq(run(3, 10, 100, true, 1000), SVC_ETIMEOUT);
	ck_assert_int_eq(run(3, 10, 100, true, 999), SVC_ETIMEOUT);
	ck_assert_int_eq(run(3, 10, 100, false, 0), SVC_ETIMEOUT);
	ck_assert_int_eq(f.attempts, 0);
	ck_assert_int_eq(run(3, 10, 100, true, 1001), SVC_OK);
	ck_assert_int_eq(f.attempts, 1);
}
END_TEST

START_TEST(no_deadline_means_none)
{
	f.now = LLONG_MAX / 2;
	f.r = 0.999;
	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(
		run(10, 1000000, 1000000000, true, SVC_RETRY_NO_DEADLINE),
		SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 10);
}
END_TEST

/* --- the real environment --- */

static int
instant_503(void *arg, long long deadline_ms, long *http_status)
{
	(void)arg;
	(void)deadline_ms;
	*http_status = 503;
	return SVC_EUNAVAIL;
}

START_TEST(real_environment_without_sleeping)
{
	/* A zero base never sleeps; the real clock and random still run. */
	const struct svc_retry_policy p = { 4, 0, 0 };

	always(SVC_EUNAVAIL, 0);
	ck_assert_int_eq(svc_retry_run(&p, true, svc_now_ms() + 60000, scripted,
				       &f, NULL),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(f.attempts, 4);
	ck_assert_int_eq(
		svc_retry_run(&p, true, svc_now_ms() - 1, scripted, &f, NULL),
		SVC_ETIMEOUT);
	ck_assert_int_eq(f.attempts, 4);
	ck_assert_int_eq(svc_retry_run(&p, true, SVC_RETRY_NO_DEADLINE,
				       instant_503, NULL, NULL),
			 SVC_EUNAVAIL);
}
END_TEST

/* A fake clock and sleep, but the real random, one per thread. */
struct jitter {
	struct fake fk;
	long long sum;
	long long min, max;
};

static void *
real_jitter(void *arg)
{
	struct jitter *j = arg;
	const struct svc_retry_policy p = { 2, 1000, 1000 };
	const struct svc_retry_env env = { .now_ms = fake_now,
					   .sleep_ms = fake_sleep,
					   .arg = &j->fk };

	j->min = LLONG_MAX;
	j->max = -1;
	j->fk.nsteps = 1;
	j->fk.steps[0] = (struct step){ SVC_EUNAVAIL, 0, 0 };
	for (int i = 0; i < 1000; i++) {
		long long d;

		j->fk.sleeps = 0;
		j->fk.attempts = 0;
		svc_retry_run(&p, true, SVC_RETRY_NO_DEADLINE, scripted, &j->fk,
			      &env);
		if (j->fk.attempts != 2 || j->fk.sleeps > 1)
			return NULL;
		/* A delay of 0 is not slept at all. */
		d = j->fk.sleeps == 1 ? j->fk.slept[0] : 0;
		j->sum += d;
		if (d < j->min)
			j->min = d;
		if (d > j->max)
			j->max = d;
	}
	return j;
}

START_TEST(real_jitter_is_uniform_on_every_thread)
{
	enum { N = 4 };
	struct jitter j[N];
	pthread_t t[N];

	memset(j, 0, sizeof(j));
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, real_jitter, &j[i]), 0);
	for (int i = 0; i < N; i++) {
		void *ok;

		pthread_join(t[i], &ok);
		ck_assert_ptr_eq(ok, &j[i]);
		/* 1000 draws from [0, 1000): mean 500, sd of mean ~9. */
		ck_assert_int_ge(j[i].min, 0);
		ck_assert_int_lt(j[i].max, 1000);
		ck_assert_int_gt(j[i].sum / 1000, 400);
		ck_assert_int_lt(j[i].sum / 1000, 600);
		ck_assert_int_lt(j[i].min, 50);
		ck_assert_int_gt(j[i].max, 950);
	}
	/* Threads do not share a sequence. */
	for (int i = 1; i < N; i++)
		ck_assert_int_ne(j[i].sum, j[0].sum);
}
END_TEST

/* --- configuration --- */

static const char *const config_keys[] = {
	"UT_RTY_RETRY_ATTEMPTS",
	"UT_RTY_RETRY_BASE",
	"UT_RTY_RETRY_CAP",
	NULL,
};

static void
config_setup(void)
{
	for (int i = 0; config_keys[i] != NULL; i++)
		unsetenv(config_keys[i]);
	svc_config_reset();
}

static void
config_teardown(void)
{
	config_setup();
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
	struct svc_retry_policy p = { 99, 99, 99 };

	svc_retry_config_read("UT_RTY", &p);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(p.max_attempts, 3);
	ck_assert_int_eq(p.base_ms, 50);
	ck_assert_int_eq(p.cap_ms, 1000);
	ck_assert_int_eq(p.max_attempts, SVC_RETRY_DEFAULT_ATTEMPTS);
	ck_assert_int_eq(p.base_ms, SVC_RETRY_DEFAULT_BASE_MS);
	ck_assert_int_eq(p.cap_ms, SVC_RETRY_DEFAULT_CAP_MS);
}
END_TEST

START_TEST(config_values)
{
	struct svc_retry_policy p;

	setenv("UT_RTY_RETRY_ATTEMPTS", "10", 1);
	setenv("UT_RTY_RETRY_BASE", "20ms", 1);
	setenv("UT_RTY_RETRY_CAP", "2s", 1);
	svc_retry_config_read("UT_RTY", &p);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(p.max_attempts, 10);
	ck_assert_int_eq(p.base_ms, 20);
	ck_assert_int_eq(p.cap_ms, 2000);
	/* A cap equal to the base is fine. */
	setenv("UT_RTY_RETRY_ATTEMPTS", "1", 1);
	setenv("UT_RTY_RETRY_CAP", "20ms", 1);
	svc_retry_config_read("UT_RTY", &p);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(p.max_attempts, 1);
	ck_assert_int_eq(p.cap_ms, 20);
}
END_TEST

static const struct {
	const char *key, *value;
} bad_config[] = {
	{ "UT_RTY_RETRY_ATTEMPTS", "0" }, { "UT_RTY_RETRY_ATTEMPTS", "11" },
	{ "UT_RTY_RETRY_ATTEMPTS", "x" }, { "UT_RTY_RETRY_ATTEMPTS", "" },
	{ "UT_RTY_RETRY_BASE", "0ms" },	  { "UT_RTY_RETRY_BASE", "61s" },
	{ "UT_RTY_RETRY_BASE", "fast" },  { "UT_RTY_RETRY_CAP", "0ms" },
	{ "UT_RTY_RETRY_CAP", "301s" },	  { "UT_RTY_RETRY_CAP", "-1s" },
};

START_TEST(config_bad_values_are_recorded)
{
	struct svc_retry_policy p;

	setenv(bad_config[_i].key, bad_config[_i].value, 1);
	svc_retry_config_read("UT_RTY", &p);
	assert_error_names(bad_config[_i].key);
	ck_assert_int_eq(p.max_attempts, 3);
	ck_assert_int_eq(p.base_ms, 50);
	ck_assert_int_eq(p.cap_ms, 1000);
}
END_TEST

START_TEST(config_cap_below_base)
{
	struct svc_retry_policy p;

	setenv("UT_RTY_RETRY_BASE", "2s", 1);
	setenv("UT_RTY_RETRY_CAP", "500ms", 1);
	svc_retry_config_read("UT_RTY", &p);
	assert_error_names("UT_RTY_RETRY_CAP");
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "UT_RTY_RETRY_BASE"));
	ck_assert_int_eq(p.base_ms, 2000);
	ck_assert_int_eq(p.cap_ms, 2000);
	/* Below the default base, too. */
	config_setup();
	setenv("UT_RTY_RETRY_CAP", "49ms", 1);
	svc_retry_config_read("UT_RTY", &p);
	assert_error_names("UT_RTY_RETRY_CAP");
	ck_assert_int_eq(p.base_ms, 50);
	ck_assert_int_eq(p.cap_ms, 50);
}
END_TEST

Suite *
retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *when = tcase_create("when");
	TCase *attempts = tcase_create("attempts");
	TCase *backoff = tcase_create("backoff");
	TCase *deadline = tcase_create("deadline");
	TCase *real = tcase_create("real");
	TCase *config = tcase_create("config");

	tcase_add_checked_fixture(when, setup, NULL);
	tcase_add_loop_test(when, retryable_outcomes, 0,
			    (int)(sizeof(outcomes) / sizeof(outcomes[0])));
	tcase_add_loop_test(
		when, no_retry_on_final_failures, 0,
		(int)(sizeof(final_failures) / sizeof(final_failures[0])));
	tcase_add_loop_test(when, retries_on_transient_failures, 0,
			    (int)(sizeof(transient) / sizeof(transient[0])));
	tcase_add_test(when, no_retry_when_not_idempotent);
	suite_add_tcase(s, when);

	tcase_add_checked_fixture(attempts, setup, NULL);
	tcase_add_loop_test(attempts, attempts_never_exceed_the_maximum, 0, 11);
	tcase_add_test(attempts, negative_maximum_counts_as_one);
	tcase_add_loop_test(attempts, success_on_the_kth_attempt, 1, 6);
	tcase_add_test(attempts, the_last_result_is_returned);
	suite_add_tcase(s, attempts);

	tcase_add_checked_fixture(backoff, setup, NULL);
	tcase_add_test(backoff, delay_bounds);
	tcase_add_test(backoff,
		       full_jitter_near_one_sleeps_just_under_the_bound);
	tcase_add_test(backoff, full_jitter_at_zero_does_not_sleep);
	tcase_add_test(backoff, sleeps_stay_within_the_bounds);
	suite_add_tcase(s, backoff);

	tcase_add_checked_fixture(deadline, setup, NULL);
	tcase_add_test(deadline, the_deadline_cuts_the_chain);
	tcase_add_test(deadline, a_sleep_may_not_end_on_the_deadline);
	tcase_add_test(deadline, no_attempt_after_a_slow_one_used_the_budget);
	tcase_add_test(deadline, a_passed_deadline_makes_no_attempt);
	tcase_add_test(deadline, no_deadline_means_none);
	suite_add_tcase(s, deadline);

	tcase_add_checked_fixture(real, setup, NULL);
	tcase_add_test(real, real_environment_without_sleeping);
	tcase_add_test(real, real_jitter_is_uniform_on_every_thread);
	suite_add_tcase(s, real);

	tcase_add_checked_fixture(config, config_setup, config_teardown);
	tcase_add_test(config, config_defaults);
	tcase_add_test(config, config_values);
	tcase_add_loop_test(config, config_bad_values_are_recorded, 0,
			    (int)(sizeof(bad_config) / sizeof(bad_config[0])));
	tcase_add_test(config, config_cap_below_base);
	suite_add_tcase(s, config);
	return s;
}
