/*
 * svc/ratelimit.h - per-client token buckets for the HTTP pipeline.
 *
 * A limiter holds one token bucket per key (the pipeline uses the client
 * address, or the `sub` of a valid bearer token). Each request takes one
 * token; a bucket refills at `rate` tokens a second up to `burst`. Keys
 * are spread over shards by hash, each shard with its own mutex, so two
 * clients rarely contend. Memory is bounded: a bucket that is full again
 * is idle and may be dropped (it would answer exactly like a new one), and
 * at `max_keys` the least recently used bucket of the shard makes room, so
 * a flood of distinct addresses cannot grow the table. Time comes from the
 * monotonic clock, or from a clock the caller injects (tests). This module
 * knows nothing of HTTP: http.c picks the key and writes the headers.
 */
#ifndef SVC_RATELIMIT_H
#define SVC_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

/* One limit: rate tokens per second, at most burst in the bucket. */
struct svc_ratelimit_rule {
	bool enabled;  /* false: "off", every request passes */
	double rate;   /* tokens per second */
	double burst;  /* bucket size, >= 1 */
	long long n;   /* as written: n requests ... */
	long long per; /* ... per this many seconds (1, 60 or 3600) */
};

/* What the pipeline reads from the environment; see config_read. */
struct svc_ratelimit_config {
	struct svc_ratelimit_rule client;  /* RATE_LIMIT */
	struct svc_ratelimit_rule service; /* RATE_LIMIT_SERVICE */
	/* RATE_LIMIT_AUTH_FAILURES: invalid tokens per address */
	struct svc_ratelimit_rule auth_failures;
	size_t max_keys; /* RATE_LIMIT_MAX_KEYS */
};

/* The outcome of one svc_ratelimit_take(). */
struct svc_ratelimit_result {
	bool allowed;
	long long limit;       /* the burst: RateLimit-Limit */
	long long remaining;   /* whole tokens left: RateLimit-Remaining */
	long long reset;       /* seconds until the bucket is full again */
	long long retry_after; /* refused: seconds until a token, >= 1 */
};

/*
 * Parses "N/second|minute|hour" with an optional ",burst=M" ("100/minute",
 * "100/minute,burst=50"; also s/sec, m/min, h), or "off". Without a burst
 * the bucket holds N. N and M are integers from 1 to 1000000000. Returns 0,
 * or SVC_EINVAL leaving *out disabled.
 */
int svc_ratelimit_parse(const char *text, struct svc_ratelimit_rule *out);

/*
 * Reads RATE_LIMIT (default "600/minute"), RATE_LIMIT_SERVICE (default ten
 * times RATE_LIMIT, rate and burst; "off" exempts service tokens),
 * RATE_LIMIT_AUTH_FAILURES (default "100/minute"; "off" disables) and
 * RATE_LIMIT_MAX_KEYS (default 100000, 16..10000000). An invalid value is
 * recorded with svc_config_fail() naming the key.
 */
void svc_ratelimit_config_read(struct svc_ratelimit_config *cfg);

struct svc_ratelimit;

/* A clock in seconds; only differences matter. */
typedef double (*svc_ratelimit_clock_fn)(void *arg);

/*
 * A limiter for at most max_keys buckets (new; svc_ratelimit_free).
 * clock NULL means the monotonic clock (svc_now_s); arg is passed to it.
 * NULL when memory runs out.
 */
struct svc_ratelimit *
svc_ratelimit_new(size_t max_keys, svc_ratelimit_clock_fn clock, void *arg);
/* Frees every bucket; NULL is a no-op. */
void svc_ratelimit_free(struct svc_ratelimit *rl);

/*
 * Takes one token from key's bucket under rule (key borrowed for the
 * call; keys longer than 255 bytes are cut). A disabled rule allows
 * everything and touches nothing. Thread-safe. Returns 0 (allowed or
 * not: see out->allowed), or SVC_ENOMEM, in which case the request is
 * allowed: a limiter out of memory must not turn into an outage.
 */
int svc_ratelimit_take(struct svc_ratelimit *rl, const char *key,
		       const struct svc_ratelimit_rule *rule,
		       struct svc_ratelimit_result *out);

/* Buckets held now (tests, metrics). */
size_t svc_ratelimit_keys(struct svc_ratelimit *rl);

#endif
