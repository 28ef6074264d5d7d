/*
 * breaker.c - the circuit breaker: closed, open, half-open.
 *
 * The state lives in an atomic so the two paths that run on every call are
 * cheap: a closed breaker admits with one atomic load, and an open one
 * refuses with one load, one clock read and one compare, never taking the
 * lock. Everything that can change the state takes the mutex, which is also
 * held while a transition is logged, so the lines come out in the order the
 * transitions happened. It is not a retry loop and keeps no history beyond
 * the current run of failures.
 */
#include "svc/breaker.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/config.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/util.h"

struct svc_breaker {
	/* Written under lock; read without it on the fast paths. */
	_Atomic int state;	      /* enum svc_breaker_state */
	_Atomic int failures;	      /* consecutive, since the last success */
	_Atomic long long open_until; /* open: when a trial is allowed */

	pthread_mutex_t lock;
	long long trial_at; /* half-open: when the trial was let through */

	int threshold;
	long long recovery_ms;
	long long (*now_ms)(void *arg);
	void *clock_arg;
	char *target;
	struct svc_metric_series *gauge; /* circuit_breaker_state{target} */
};

static const char *const state_names[] = { "closed", "open", "half_open" };

/*
 * circuit_breaker_state counts up with severity - 0 closed, 1 half-open,
 * 2 open - so an alert can say `> 0` or `== 2`; the enum's order differs.
 */
static const double gauge_values[] = { 0, 2, 1 };

static struct svc_metric_series *
state_gauge(const char *target)
{
	struct svc_metric *m = svc_metrics_gauge(
		NULL, "circuit_breaker_state",
		"Circuit breaker of an outbound dependency: 0 closed, "
		"1 half-open, 2 open.",
		(const char *[]){ "target", NULL }, 32);

	return svc_metrics_series(m, (const char *[]){ target });
}

static long long
monotonic_ms(void *arg)
{
	(void)arg;
	return svc_now_ms();
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
svc_breaker_config_read(const char *prefix, struct svc_breaker_config *cfg)
{
	char key[128];

	cfg->failure_threshold = SVC_BREAKER_DEFAULT_FAILURES;
	cfg->recovery_ms = SVC_BREAKER_DEFAULT_RECOVERY_MS;
	if (make_key(key, sizeof(key), prefix, "_BREAKER_FAILURES"))
		cfg->failure_threshold = (int)svc_config_int(
			key, SVC_BREAKER_DEFAULT_FAILURES, 1, 1000);
	if (make_key(key, sizeof(key), prefix, "_BREAKER_RECOVERY"))
		cfg->recovery_ms =
			svc_config_duration_ms(key, "30s", 1, 3600000);
}

struct svc_breaker *
svc_breaker_new(const struct svc_breaker_config *cfg)
{
	struct svc_breaker *b;

	if (cfg == NULL || cfg->target == NULL)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->target = strdup(cfg->target);
	if (b->target == NULL || pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b->target);
		free(b);
		return NULL;
	}
	atomic_init(&b->state, SVC_BREAKER_CLOSED);
	atomic_init(&b->failures, 0);
	atomic_init(&b->open_until, 0);
	b->threshold = cfg->failure_threshold > 0
			       ? cfg->failure_threshold
			       : SVC_BREAKER_DEFAULT_FAILURES;
	b->recovery_ms = cfg->recovery_ms > 0 ? cfg->recovery_ms
					      : SVC_BREAKER_DEFAULT_RECOVERY_MS;
	b->now_ms = cfg->now_ms != NULL ? cfg->now_ms : monotonic_ms;
	b->clock_arg = cfg->clock_arg;
	b->gauge = state_gauge(b->target);
	svc_metrics_set(b->gauge, gauge_values[SVC_BREAKER_CLOSED]);
	return b;
}

void
svc_breaker_free(struct svc_breaker *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->target);
	free(b);
}

const char *
svc_breaker_state_name(enum svc_breaker_state state)
{
	if (state < SVC_BREAKER_CLOSED || state > SVC_BREAKER_HALF_OPEN)
		return "unknown";
	return state_names[state];
}

/* Under lock: moves to `to` and logs it. now matters only for OPEN. */
static void
transition(struct svc_breaker *b, enum svc_breaker_state to, long long now)
{
	enum svc_breaker_state from =
		(enum svc_breaker_state)atomic_load_explicit(
			&b->state, memory_order_relaxed);
	int failures = atomic_load_explicit(&b->failures, memory_order_relaxed);

	/* open_until first: a reader that sees OPEN must see its deadline. */
	if (to == SVC_BREAKER_OPEN)
		atomic_store_explicit(&b->open_until,
				      now > LLONG_MAX - b->recovery_ms
					      ? LLONG_MAX
					      : now + b->recovery_ms,
				      memory_order_relaxed);
	atomic_store_explicit(&b->state, to, memory_order_release);
	svc_metrics_set(b->gauge, gauge_values[to]);
	svc_log(to == SVC_BREAKER_OPEN ? SVC_LOG_WARN : SVC_LOG_INFO,
		"circuit breaker state changed",
		SVC_LOG_STR("target", b->target),
		SVC_LOG_STR("from", svc_breaker_state_name(from)),
		SVC_LOG_STR("to", svc_breaker_state_name(to)),
		SVC_LOG_INT("failures", failures), SVC_LOG_END);
}

/* Under lock: the slow path of svc_breaker_allow(). */
static bool
admit(struct svc_breaker *b, long long now)
{
	switch (atomic_load_explicit(&b->state, memory_order_relaxed)) {
	case SVC_BREAKER_CLOSED:
		return true;
	case SVC_BREAKER_OPEN:
		if (now <
		    atomic_load_explicit(&b->open_until, memory_order_relaxed))
			return false;
		transition(b, SVC_BREAKER_HALF_OPEN, now);
		break;
	default:
		/* A trial that never reported back must not wedge it. */
		if (now - b->trial_at < b->recovery_ms)
			return false;
		break;
	}
	b->trial_at = now;
	return true;
}

bool
svc_breaker_allow(struct svc_breaker *b)
{
	int state = atomic_load_explicit(&b->state, memory_order_acquire);
	long long now;
	bool ok;

	if (state == SVC_BREAKER_CLOSED)
		return true;
	now = b->now_ms(b->clock_arg);
	if (state == SVC_BREAKER_OPEN &&
	    now < atomic_load_explicit(&b->open_until, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&b->lock);
	ok = admit(b, now);
	pthread_mutex_unlock(&b->lock);
	return ok;
}

/* Under lock: one more failure in the current run. */
static void
count_failure(struct svc_breaker *b)
{
	int n = atomic_load_explicit(&b->failures, memory_order_relaxed);

	if (n < INT_MAX)
		atomic_store_explicit(&b->failures, n + 1,
				      memory_order_relaxed);
}

void
svc_breaker_record(struct svc_breaker *b, bool success)
{
	/* The common case, a success while all is well, needs no lock. */
	if (success &&
	    atomic_load_explicit(&b->state, memory_order_acquire) ==
		    SVC_BREAKER_CLOSED &&
	    atomic_load_explicit(&b->failures, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&b->lock);
	switch (atomic_load_explicit(&b->state, memory_order_relaxed)) {
	case SVC_BREAKER_CLOSED:
		if (success) {
			atomic_store_explicit(&b->failures, 0,
					      memory_order_relaxed);
			break;
		}
		count_failure(b);
		if (atomic_load_explicit(&b->failures, memory_order_relaxed) >=
		    b->threshold)
			transition(b, SVC_BREAKER_OPEN,
				   b->now_ms(b->clock_arg));
		break;
	case SVC_BREAKER_OPEN:
		break; /* a call let through before it opened */
	default:
		/* Half-open: this is the trial's outcome. */
		if (success) {
			transition(b, SVC_BREAKER_CLOSED, 0);
			atomic_store_explicit(&b->failures, 0,
					      memory_order_relaxed);
		} else {
			count_failure(b);
			transition(b, SVC_BREAKER_OPEN,
				   b->now_ms(b->clock_arg));
		}
		break;
	}
	pthread_mutex_unlock(&b->lock);
}

enum svc_breaker_state
svc_breaker_state(const struct svc_breaker *b)
{
	return (enum svc_breaker_state)atomic_load_explicit(
		&b->state, memory_order_acquire);
}

long long
svc_breaker_retry_after_ms(const struct svc_breaker *b)
{
	/* The lock is not part of the breaker's observable value. */
	struct svc_breaker *mut = (struct svc_breaker *)b;
	long long left = 0, now;

	if (svc_breaker_state(b) == SVC_BREAKER_CLOSED)
		return 0;
	now = b->now_ms(b->clock_arg);
	pthread_mutex_lock(&mut->lock);
	switch (atomic_load_explicit(&b->state, memory_order_relaxed)) {
	case SVC_BREAKER_OPEN:
		left = atomic_load_explicit(&b->open_until,
					    memory_order_relaxed) -
		       now;
		break;
	case SVC_BREAKER_HALF_OPEN:
		left = b->trial_at + b->recovery_ms - now;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&mut->lock);
	return left > 0 ? left : 0;
}
