/*
 * retry.c - the retry loop, its backoff and its classification of failures.
 *
 * The loop itself holds no state between calls: time, sleep and randomness
 * come from the caller's env or from the real ones here, so one policy can
 * be shared by every thread. The default randomness is svc_random_unit(),
 * because jitter needs to be cheap and uncorrelated between threads, not
 * secret. This is not a
 * circuit breaker (breaker.c) and does not make HTTP calls.
 */
#include "svc/retry.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/util.h"

static long long
real_now_ms(void *arg)
{
	(void)arg;
	return svc_now_ms();
}

static void
real_sleep_ms(void *arg, long long ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	(void)arg;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static double
real_random(void *arg)
{
	(void)arg;
	return svc_random_unit();
}

/* prefix + suffix into key; a prefix too long for it is a config error. */
static bool
make_key(char *key, size_t size, const char *prefix, const char *suffix)
{
	int n = snprintf(key, size, "%s%s", prefix, suffix);

	if (n < 0 || (size_t)n >= size) {
		svc_config_fail(prefix, "is too long for a configuration key");
		return false;
	}
	return true;
}

void
svc_retry_config_read(const char *prefix, struct svc_retry_policy *policy)
{
	char key[128], base_key[128];

	policy->max_attempts = SVC_RETRY_DEFAULT_ATTEMPTS;
	policy->base_ms = SVC_RETRY_DEFAULT_BASE_MS;
	policy->cap_ms = SVC_RETRY_DEFAULT_CAP_MS;
	if (make_key(key, sizeof(key), prefix, "_RETRY_ATTEMPTS"))
		policy->max_attempts = (int)svc_config_int(
			key, SVC_RETRY_DEFAULT_ATTEMPTS, 1, 10);
	if (make_key(base_key, sizeof(base_key), prefix, "_RETRY_BASE"))
		policy->base_ms =
			svc_config_duration_ms(base_key, "50ms", 1, 60000);
	if (!make_key(key, sizeof(key), prefix, "_RETRY_CAP"))
		return;
	policy->cap_ms = svc_config_duration_ms(key, "1s", 1, 300000);
	if (policy->cap_ms < policy->base_ms) {
		svc_config_fail(key,
				"must not be less than %s (%lldms), got %lldms",
				base_key, policy->base_ms, policy->cap_ms);
		policy->cap_ms = policy->base_ms;
	}
}

bool
svc_retry_retryable(int err, long http_status)
{
	if (http_status == 502 || http_status == 503 || http_status == 504)
		return true;
	if (http_status >= 400 && http_status <= 599)
		return false;
	return err == SVC_EUNAVAIL || err == SVC_ETIMEOUT;
}

long long
svc_retry_delay_ms(const struct svc_retry_policy *policy, int n, double r)
{
	long long cap = policy->cap_ms > 0 ? policy->cap_ms : 0;
	long long bound = policy->base_ms > 0 ? policy->base_ms : 0;
	long long d;

	for (int i = 0; i < n && bound < cap; i++)
		bound = bound > cap / 2 ? cap : bound * 2;
	if (bound > cap)
		bound = cap;
	if (!(r > 0))
		return 0; /* also NaN */
	d = (long long)(r * (double)bound);
	/* r just under 1 can round the product up to bound itself. */
	return d < bound ? d : (bound > 0 ? bound - 1 : 0);
}

int
svc_retry_run(const struct svc_retry_policy *policy, bool idempotent,
	      long long deadline_ms, svc_retry_attempt_fn attempt, void *arg,
	      const struct svc_retry_env *env)
{
	const struct svc_retry_env none = { 0 };
	long long (*now_ms)(void *);
	void (*sleep_ms)(void *, long long);
	double (*uniform)(void *);
	int attempts = idempotent && policy->max_attempts > 1
			       ? policy->max_attempts
			       : 1;
	int rc = SVC_ETIMEOUT;

	if (env == NULL)
		env = &none;
	now_ms = env->now_ms != NULL ? env->now_ms : real_now_ms;
	sleep_ms = env->sleep_ms != NULL ? env->sleep_ms : real_sleep_ms;
	uniform = env->random != NULL ? env->random : real_random;

	for (int i = 0; i < attempts; i++) {
		long status = 0;
		long long now, delay;

		if (now_ms(env->arg) >= deadline_ms)
			break;
		rc = attempt(arg, deadline_ms, &status);
		if (i + 1 == attempts || !svc_retry_retryable(rc, status))
			break;
		delay = svc_retry_delay_ms(policy, i, uniform(env->arg));
		now = now_ms(env->arg);
		/* Waking at the deadline would leave no time for the retry. */
		if (now >= deadline_ms - delay)
			break;
		if (delay > 0)
			sleep_ms(env->arg, delay);
	}
	return rc;
}

long long
svc_retry_backoff_ms(const struct svc_retry_policy *policy, int n)
{
	return svc_retry_delay_ms(policy, n > 30 ? 30 : n, real_random(NULL));
}
