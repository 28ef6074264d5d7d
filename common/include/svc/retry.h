/*
 * svc/retry.h - retries with exponential backoff and full jitter.
 *
 * svc_retry_run() calls an attempt function until it succeeds, fails in a
 * way that retrying cannot fix, the policy's attempts are used up, or the
 * caller's deadline would be crossed. Only idempotent calls are retried,
 * and only on failures that say "try again" (svc_retry_retryable): no
 * connection, a timeout, 502, 503, 504 - never a 4xx, never a 500. Before
 * retry n (0 for the first retry) it sleeps a uniformly random time in
 * [0, min(cap_ms, base_ms * 2^n)) ("full jitter"), so that clients that
 * failed together do not come back together. This module makes no HTTP
 * calls and knows nothing of circuit breakers: the attempt function does
 * the call, and asks the breaker (svc/breaker.h) first if there is one; it
 * should report a refusal with a code other than SVC_EUNAVAIL and
 * SVC_ETIMEOUT, so the chain ends at once instead of sleeping to be refused
 * again.
 *
 *	static int
 *	get_stock(void *arg, long long deadline_ms, long *http_status)
 *	{
 *		struct stock_call *c = arg;
 *		... one HTTP request, its timeout clipped to deadline_ms ...
 *		*http_status = c->status;
 *		return rc;
 *	}
 *	rc = svc_retry_run(&policy, true, svc_now_ms() + 2000, get_stock,
 *			   &call, NULL);
 */
#ifndef SVC_RETRY_H
#define SVC_RETRY_H

#include <limits.h>
#include <stdbool.h>

/* A deadline_ms for svc_retry_run() that never comes. */
#define SVC_RETRY_NO_DEADLINE LLONG_MAX

struct svc_retry_policy {
	int max_attempts;  /* the first call included; < 1 counts as 1 */
	long long base_ms; /* backoff bound before the first retry; >= 0 */
	long long cap_ms;  /* the bound never grows past this */
};

/* What svc_retry_config_read() uses for keys that are not set. */
#define SVC_RETRY_DEFAULT_ATTEMPTS 3
#define SVC_RETRY_DEFAULT_BASE_MS  50
#define SVC_RETRY_DEFAULT_CAP_MS   1000

/*
 * Where svc_retry_run() gets time and randomness; a test passes fakes. Any
 * NULL member means the real one: svc_now_ms(), nanosleep(2), and a
 * per-thread xorshift generator seeded from OpenSSL. All three get arg.
 */
struct svc_retry_env {
	long long (*now_ms)(void *arg);		   /* monotonic milliseconds */
	void (*sleep_ms)(void *arg, long long ms); /* ms >= 0 */
	double (*random)(void *arg);		   /* uniform in [0, 1) */
	void *arg;
};

/*
 * One try. Makes the call, finishing by deadline_ms (the caller's deadline,
 * on the env's clock: clip the call's own timeouts to it), and stores the
 * HTTP status it got in *http_status, or leaves it 0 when no response came.
 * Returns 0 or a negative SVC_E* code. arg is svc_retry_run()'s arg.
 */
typedef int (*svc_retry_attempt_fn)(void *arg, long long deadline_ms,
				    long *http_status);

/*
 * Reads <prefix>_RETRY_ATTEMPTS (1..10, default 3), <prefix>_RETRY_BASE
 * (a duration, 1ms..60s, default "50ms") and <prefix>_RETRY_CAP (1ms..300s,
 * default "1s", not below the base) into policy. prefix is the target in
 * upper case, e.g. "PRODUCTS". A bad value is recorded by svc_config (see
 * svc_config_ok) and leaves the default; a cap below the base is recorded
 * against the cap's key, which is then raised to the base. Start-up only.
 */
void svc_retry_config_read(const char *prefix, struct svc_retry_policy *policy);

/*
 * Whether an outcome is worth another attempt. A 4xx or a 500 (or any 5xx
 * but 502, 503, 504) is the answer and is never retried, whatever err
 * says; 502, 503 and 504 always are. Otherwise, with no status or another
 * one, err decides: SVC_EUNAVAIL (could not connect, connection lost) and
 * SVC_ETIMEOUT are retried, success and every other error are not.
 */
bool svc_retry_retryable(int err, long http_status);

/*
 * The sleep before retry n (0 for the first retry) given r, uniform in
 * [0, 1): r * min(cap_ms, base_ms * 2^n), rounded down. Never overflows.
 */
long long svc_retry_delay_ms(const struct svc_retry_policy *policy, int n,
			     double r);

/*
 * The pause before reconnect attempt n (0 for the first) of a background
 * thread: svc_retry_delay_ms() with the thread-safe real randomness, n
 * clamped so the bound stays at the cap. For loops that retry for ever
 * (a relay, a consumer), where svc_retry_run() does not fit.
 */
long long svc_retry_backoff_ms(const struct svc_retry_policy *policy, int n);

/*
 * Calls attempt(arg, deadline_ms, &status) until one of:
 *  - it returns a result svc_retry_retryable() refuses (success included);
 *  - idempotent is false (exactly one attempt is made);
 *  - policy->max_attempts attempts have been made;
 *  - the deadline: no attempt starts at or after deadline_ms, and no sleep
 *    is begun that would end there, since after it nothing could start.
 *    A retry whose backoff would cross the deadline is not made, and the
 *    last result comes back at once instead of after a useless wait.
 * Returns the last attempt's return value, as it returned it (so 0 with a
 * 503 status comes back as 0; the attempt keeps the status and the body in
 * arg for the caller), or SVC_ETIMEOUT without calling attempt at all when
 * deadline_ms has already passed. deadline_ms is absolute, on env's clock
 * (svc_now_ms() by default); SVC_RETRY_NO_DEADLINE for none. policy and env
 * are borrowed for the call; env may be NULL. Thread-safe as long as attempt
 * and env are.
 */
int svc_retry_run(const struct svc_retry_policy *policy, bool idempotent,
		  long long deadline_ms, svc_retry_attempt_fn attempt,
		  void *arg, const struct svc_retry_env *env);

#endif
