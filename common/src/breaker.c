/*
 * breaker.c - the circuit breaker: closed, open, half-open.
 *
 * The state lives in an atomic so the two paths that run on every call are
 * cheap: a closed breaker admits with one atomic load, and an open one
 * refuses with one load, one clock read and one compare, never taking the
 * lock: the open interval, jitter and all, is worked out once when the
 * breaker opens and kept as a deadline. Everything that can change the
 * state takes the mutex, which is also held while a transition is logged,
 * so the lines come out in the order the transitions happened. It is not a
 * retry loop and keeps no history beyond the current run of failures and
 * the current open interval.
 */
#include "svc/breaker.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/util.h"

struct svc_breaker {
	/* Written under lock; read without it on the fast paths. */
	_Atomic int state;	      /* enum svc_breaker_state */
	_Atomic int failures;	      /* consecutive, since the last success */
	_Atomic long long open_until; /* open: when a trial is allowed */

	pthread_mutex_t lock;
	/* The rest of this block is written and read under lock only. */
	long long trial_at;    /* half-open: when the trial was let through */
	long long backoff_ms;  /* the open interval before jitter */
	long long interval_ms; /* the open interval, jittered: Retry-After */

	/* Read-only after svc_breaker_new(). */
	int threshold;
	long long min_ms, max_ms; /* open intervals, jitter included */
	long long (*now_ms)(void *arg);
	void *clock_arg;
	double (*random)(void *arg);
	void *random_arg;
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

/*
 * Uniform in [0, 1). OpenSSL rather than a cheap generator like retry.c's:
 * it runs once per opening, not once per call, and needs no seeding.
 */
static double
strong_random(void *arg)
{
	uint64_t x;

	(void)arg;
	if (svc_random_bytes(&x, sizeof(x)) != SVC_OK)
		return 0.5; /* no entropy at all: no jitter either */
	return (double)(x >> 11) * 0x1.0p-53;
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
	char key[128], max_key[128];

	cfg->failure_threshold = SVC_BREAKER_DEFAULT_FAILURES;
	cfg->recovery_ms = SVC_BREAKER_DEFAULT_RECOVERY_MS;
	cfg->recovery_min_ms = SVC_BREAKER_DEFAULT_RECOVERY_MIN_MS;
	if (make_key(key, sizeof(key), prefix, "_BREAKER_FAILURES"))
		cfg->failure_threshold = (int)svc_config_int(
			key, SVC_BREAKER_DEFAULT_FAILURES, 1, 1000);
	if (make_key(max_key, sizeof(max_key), prefix, "_BREAKER_RECOVERY"))
		cfg->recovery_ms =
			svc_config_duration_ms(max_key, "30s", 1, 3600000);
	if (!make_key(key, sizeof(key), prefix, "_BREAKER_RECOVERY_MIN"))
		return;
	cfg->recovery_min_ms = svc_config_duration_ms(key, "1s", 1, 3600000);
	if (cfg->recovery_min_ms <= cfg->recovery_ms)
		return;
	/* Only a minimum someone set is wrong; the default just follows. */
	if (svc_config_get(key) != NULL)
		svc_config_fail(
			key, "must not be more than %s (%lldms), got %lldms",
			max_key, cfg->recovery_ms, cfg->recovery_min_ms);
	cfg->recovery_min_ms = cfg->recovery_ms;
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
	b->max_ms = cfg->recovery_ms > 0 ? cfg->recovery_ms
					 : SVC_BREAKER_DEFAULT_RECOVERY_MS;
	b->min_ms = cfg->recovery_min_ms > 0
			    ? cfg->recovery_min_ms
			    : SVC_BREAKER_DEFAULT_RECOVERY_MIN_MS;
	if (b->min_ms > b->max_ms)
		b->min_ms = b->max_ms;
	b->now_ms = cfg->now_ms != NULL ? cfg->now_ms : monotonic_ms;
	b->clock_arg = cfg->clock_arg;
	b->random = cfg->random != NULL ? cfg->random : strong_random;
	b->random_arg = cfg->random_arg;
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

/*
 * The open interval around backoff: a uniform draw from backoff +- 20 %,
 * that window first cut to [min_ms, max_ms]. Why this jitter: full jitter
 * (retry.c's [0, backoff)) could open the circuit for next to no time, and
 * an open circuit that probes at once shields nothing; equal jitter
 * ([backoff / 2, backoff]) cut at the minimum would leave the first
 * interval, the one a short blip costs, without any. With +-20 % the
 * windows of successive doublings do not overlap below the maximum, so the
 * backoff still shows, while replicas that opened together drift apart by
 * up to 40 % of an interval at every failed trial. Cutting the window
 * rather than the draw piles no draws up on the bounds.
 */
static long long
jittered(const struct svc_breaker *b, long long backoff)
{
	long long spread = backoff / 5, lo, hi;
	double r = b->random(b->random_arg);

	lo = backoff - spread < b->min_ms ? b->min_ms : backoff - spread;
	hi = backoff > b->max_ms - spread ? b->max_ms : backoff + spread;
	if (!(r > 0))
		return lo; /* also NaN */
	if (r >= 1)
		return hi;
	return lo + (long long)(r * (double)(hi - lo));
}

/*
 * Under lock, on the way to OPEN: the next interval. From closed it starts
 * again at the minimum; from half-open (a failed trial) it doubles.
 */
static void
next_interval(struct svc_breaker *b, enum svc_breaker_state from)
{
	if (from != SVC_BREAKER_HALF_OPEN)
		b->backoff_ms = b->min_ms;
	else
		b->backoff_ms = b->backoff_ms > b->max_ms / 2
					? b->max_ms
					: b->backoff_ms * 2;
	b->interval_ms = jittered(b, b->backoff_ms);
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
	if (to == SVC_BREAKER_OPEN) {
		next_interval(b, from);
		atomic_store_explicit(&b->open_until,
				      now > LLONG_MAX - b->interval_ms
					      ? LLONG_MAX
					      : now + b->interval_ms,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&b->state, to, memory_order_release);
	svc_metrics_set(b->gauge, gauge_values[to]);
	if (to == SVC_BREAKER_OPEN)
		svc_log(SVC_LOG_WARN, "circuit breaker state changed",
			SVC_LOG_STR("target", b->target),
			SVC_LOG_STR("from", svc_breaker_state_name(from)),
			SVC_LOG_STR("to", svc_breaker_state_name(to)),
			SVC_LOG_INT("failures", failures),
			SVC_LOG_INT("open_ms", b->interval_ms), SVC_LOG_END);
	else
		svc_log(SVC_LOG_INFO, "circuit breaker state changed",
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
		if (now - b->trial_at < b->interval_ms)
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
		left = b->trial_at + b->interval_ms - now;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&mut->lock);
	return left > 0 ? left : 0;
}
