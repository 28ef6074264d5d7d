/*
 * svc/breaker.h - a circuit breaker for one outbound dependency.
 *
 * A breaker counts consecutive failed calls to a target. After
 * failure_threshold of them it opens: calls are refused at once, without
 * touching the network, for an open interval. Then it is half-open and
 * lets exactly one trial call through; the trial's success closes it, its
 * failure opens it again. The open interval adapts, so that a blip
 * shorter than recovery_min_ms costs about that much and a dependency
 * that stays down is probed about once per recovery_ms:
 *
 *	opening from closed	recovery_min_ms
 *	after a failed trial	twice the one before, at most recovery_ms
 *	after a good trial	closed; the next opening starts from
 *				recovery_min_ms again
 *
 * Each interval is spread at random by up to 20 % either way, within
 * [recovery_min_ms, recovery_ms] (breaker.c says why that jitter), so
 * that replicas which opened together do not probe together; at the cap
 * the intervals are 0.8 to 1 times recovery_ms (24 to 30 s by default).
 *
 * Every transition is logged once with target, from, to and failures: the
 * run of consecutive failures that opened it, or that a successful trial
 * ends; an opening also logs its interval as open_ms. It is thread-safe:
 * closed-state calls take no lock, and an open breaker refuses with one
 * clock read and no lock.
 * This is not a retry policy (svc/retry.h) and makes no calls itself: the
 * caller asks svc_breaker_allow() before each call and reports the outcome
 * with svc_breaker_record().
 *
 *	if (!svc_breaker_allow(b))
 *		return SVC_EUNAVAIL;
 *	rc = call_products(...);
 *	svc_breaker_record(b, rc == 0 || (status >= 400 && status < 500));
 */
#ifndef SVC_BREAKER_H
#define SVC_BREAKER_H

#include <stdbool.h>

#define SVC_BREAKER_DEFAULT_FAILURES	    5
#define SVC_BREAKER_DEFAULT_RECOVERY_MIN_MS 1000
#define SVC_BREAKER_DEFAULT_RECOVERY_MS	    30000

/*
 * The gauge circuit_breaker_state{target} exports 0 closed, 1 half-open,
 * 2 open (by severity), not these values.
 */
enum svc_breaker_state {
	SVC_BREAKER_CLOSED = 0,
	SVC_BREAKER_OPEN = 1,
	SVC_BREAKER_HALF_OPEN = 2,
};

struct svc_breaker_config {
	/* The dependency's name in logs, e.g. "products"; copied. */
	const char *target;
	/* Consecutive failures that open the breaker; <= 0 means 5. */
	int failure_threshold;
	/*
	 * The first open interval, before jitter; <= 0 means 1 s, or
	 * recovery_ms when that is shorter. Above recovery_ms it is taken as
	 * recovery_ms (svc_breaker_config_read refuses that instead).
	 */
	long long recovery_min_ms;
	/* The longest open interval, jitter included; <= 0 means 30 s. */
	long long recovery_ms;
	/* A monotonic clock in ms, given clock_arg; NULL means svc_now_ms(). */
	long long (*now_ms)(void *arg);
	void *clock_arg;
	/*
	 * Uniform in [0, 1), given random_arg, for the jitter; NULL means
	 * OpenSSL's generator. Called only when the breaker opens.
	 */
	double (*random)(void *arg);
	void *random_arg;
};

struct svc_breaker;

/*
 * Reads <prefix>_BREAKER_FAILURES (1..1000, default 5),
 * <prefix>_BREAKER_RECOVERY (a duration, 1ms..1h, default "30s") and
 * <prefix>_BREAKER_RECOVERY_MIN (a duration, 1ms..1h, default "1s") into
 * cfg->failure_threshold, cfg->recovery_ms and cfg->recovery_min_ms; the
 * other members are left alone. prefix is the target in upper case, e.g.
 * "PRODUCTS". A bad value is recorded by svc_config (see svc_config_ok)
 * and leaves the default. A minimum above the maximum is recorded against
 * <prefix>_BREAKER_RECOVERY_MIN when that key is set, and lowered to the
 * maximum; when it is not set, its default follows a shorter maximum down
 * without complaint. Start-up only, like the rest of svc_config.
 */
void svc_breaker_config_read(const char *prefix,
			     struct svc_breaker_config *cfg);

/*
 * A new closed breaker (new; free with svc_breaker_free). cfg is borrowed
 * for the call only. Returns NULL when cfg or cfg->target is NULL, or when
 * out of memory.
 */
struct svc_breaker *svc_breaker_new(const struct svc_breaker_config *cfg);

/* Frees b; NULL is a no-op. No other thread may be using b. */
void svc_breaker_free(struct svc_breaker *b);

/*
 * Whether a call may be made now. Closed: always true. Open: false until
 * the open interval has passed since it opened; then it turns half-open
 * and the caller gets the trial. Half-open: true for exactly one caller at
 * a time, who holds the trial slot until it calls svc_breaker_record(); a
 * trial not recorded within the open interval it followed is taken as
 * lost and the slot is given again. Every true must be followed by exactly
 * one svc_breaker_record().
 */
bool svc_breaker_allow(struct svc_breaker *b);

/*
 * Reports the outcome of a call that svc_breaker_allow() let through.
 * Count as failures what says the target is unwell (no connection, a
 * timeout, a 5xx); a 4xx is the caller's problem and a success here.
 * Closed: a success resets the failure count, a failure that reaches the
 * threshold opens the breaker. Half-open: the trial's success closes it, its
 * failure opens it again. Outcomes arriving while open belong to calls let
 * through before it opened and are ignored. One of those that finishes
 * while the trial is out would be taken for the trial's; that cannot happen
 * while calls time out no later than recovery_min_ms, as they should.
 */
void svc_breaker_record(struct svc_breaker *b, bool success);

/*
 * The current state, for metrics and health checks. Reading it changes
 * nothing: an open breaker whose open interval has passed stays open until
 * the next svc_breaker_allow().
 */
enum svc_breaker_state svc_breaker_state(const struct svc_breaker *b);

/* "closed", "open", "half_open" (static), or "unknown". */
const char *svc_breaker_state_name(enum svc_breaker_state state);

/*
 * Milliseconds until svc_breaker_allow() could say true again, for a
 * Retry-After header: 0 when closed; while open, the rest of the current
 * open interval (0 once it is over and a trial is free); while half-open,
 * the time until the trial out counts as lost (an upper bound: its success
 * closes the breaker sooner).
 */
long long svc_breaker_retry_after_ms(const struct svc_breaker *b);

#endif
