/*
 * svc/util.h - small helpers every module needs: UUIDs, clocks, RFC 3339
 * timestamps, URLs fit for a log line. Nothing here allocates.
 */
#ifndef SVC_UTIL_H
#define SVC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SVC_UUID_LEN 36 /* text form, without the NUL */

/* Writes a random (v4) UUID in lower-case text form; out holds 37 bytes. */
void svc_uuid_v4(char out[SVC_UUID_LEN + 1]);

/* Whether s is a UUID in canonical 8-4-4-4-12 hex form (any case). */
bool svc_uuid_valid(const char *s);

/* Monotonic clock, for durations. */
long long svc_now_ms(void);
double svc_now_s(void);

/*
 * The time ms milliseconds from now on clock (CLOCK_MONOTONIC for a
 * condition variable set to it, CLOCK_REALTIME for pthread_timedjoin_np),
 * as the absolute deadline the timed waits take; ms <= 0 is now.
 */
struct timespec svc_deadline_after(clockid_t clock, long long ms);

/* Wall clock, seconds since the epoch. */
long long svc_time_s(void);

/* "2026-11-25T19:43:35.123Z" for the current time; out holds 32 bytes. */
void svc_rfc3339_now(char out[32]);

/* Fills buf with n cryptographically random bytes (OpenSSL). */
int svc_random_bytes(void *buf, size_t n);

/*
 * Uniform in [0, 1), from a per-thread xorshift64* generator seeded once
 * from OpenSSL: cheap and uncorrelated between threads, not secret - for
 * jitter and dice, never for tokens or ids.
 */
double svc_random_unit(void);

/*
 * Copies a URL or a libpq connection string into out (size bytes, always
 * NUL-terminated, cut short if need be) with every password replaced by
 * "***": the one in "scheme://user:password@host", a "password=" query
 * parameter, a libpq "password=..." keyword. For log lines and error
 * messages, which must never carry a secret.
 */
void svc_redact_url(const char *url, char *out, size_t size);

#endif
