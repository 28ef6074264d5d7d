/*
 * util.c - UUIDs, clocks and timestamps shared by every module.
 */
#include "svc/util.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "svc/err.h"

int
svc_random_bytes(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? SVC_OK : SVC_EINTERNAL;
}

static _Thread_local uint64_t rng_state;

double
svc_random_unit(void)
{
	uint64_t x = rng_state;

	if (x == 0) {
		if (svc_random_bytes(&x, sizeof(x)) != SVC_OK || x == 0)
			x = (uint64_t)svc_now_ms() * 0x9e3779b97f4a7c15ULL ^
			    (uint64_t)(uintptr_t)&rng_state;
		if (x == 0)
			x = 0x9e3779b97f4a7c15ULL;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	/* The top 53 bits of the xorshift64* output, as a double in [0, 1). */
	return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) * 0x1.0p-53;
}

void
svc_uuid_v4(char out[SVC_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	char *p = out;

	if (svc_random_bytes(b, sizeof(b)) != SVC_OK) {
		/* RAND_bytes only fails when the system has no entropy at all.
		 */
		for (unsigned i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(svc_now_ms() * 31 + i * 7);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
}

bool
svc_uuid_valid(const char *s)
{
	if (s == NULL)
		return false;
	for (int i = 0; i < SVC_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[SVC_UUID_LEN] == '\0';
}

long long
svc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec
svc_deadline_after(clockid_t clock, long long ms)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	if (ms > 0) {
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	return ts;
}

double
svc_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long
svc_time_s(void)
{
	return (long long)time(NULL);
}

void
svc_rfc3339_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* --- redaction --- */

struct sink {
	char *out;
	size_t size, len;
};

static void
put(struct sink *k, const char *s, size_t n)
{
	while (n-- > 0 && k->len + 1 < k->size)
		k->out[k->len++] = *s++;
	k->out[k->len] = '\0';
}

/* "password=<value>" in a query string of n bytes: up to '&' or '#'. */
static void
put_query(struct sink *k, const char *q, size_t n)
{
	const char *end = q + n;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		size_t len =
			amp != NULL ? (size_t)(amp - q) : (size_t)(end - q);

		if (len >= 9 && strncmp(q, "password=", 9) == 0) {
			put(k, q, 9);
			put(k, "***", 3);
		} else {
			put(k, q, len);
		}
		q += len;
		if (q < end)
			put(k, q++, 1);
	}
}

/*
 * libpq's "key = value" form: values are bare words or single-quoted with
 * backslash escapes; spaces may surround '='.
 */
static void
put_keywords(struct sink *k, const char *s)
{
	while (*s != '\0') {
		const char *key = s, *value;
		bool secret;

		while (*s != '\0' && *s != '=' && !isspace((unsigned char)*s))
			s++;
		secret = s - key == 8 && strncmp(key, "password", 8) == 0;
		put(k, key, (size_t)(s - key));
		while (isspace((unsigned char)*s))
			put(k, s++, 1);
		if (*s != '=')
			continue;
		put(k, s++, 1);
		while (isspace((unsigned char)*s))
			put(k, s++, 1);
		value = s;
		if (*s == '\'') {
			for (s++; *s != '\0' && *s != '\''; s++)
				if (*s == '\\' && s[1] != '\0')
					s++;
			if (*s == '\'')
				s++;
		} else {
			while (*s != '\0' && !isspace((unsigned char)*s))
				s++;
		}
		if (secret)
			put(k, "***", 3);
		else
			put(k, value, (size_t)(s - value));
		while (isspace((unsigned char)*s))
			put(k, s++, 1);
	}
}

void
svc_redact_url(const char *url, char *out, size_t size)
{
	struct sink k = { out, size, 0 };
	const char *scheme_end, *auth, *end, *at = NULL, *colon;

	if (size == 0)
		return;
	out[0] = '\0';
	if (url == NULL)
		return;
	scheme_end = strstr(url, "://");
	if (scheme_end == NULL && strchr(url, '=') != NULL) {
		put_keywords(&k, url);
		return;
	}
	/*
	 * The user information ends at the last '@' before the query: a
	 * password with a raw '/' or '@' is hidden too (hiding a little
	 * more than needed is harmless here).
	 */
	auth = scheme_end != NULL ? scheme_end + 3 : url; /* "u:p@host" */
	end = auth + strcspn(auth, "?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	put(&k, url, (size_t)(auth - url));
	if (at != NULL) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon != NULL) {
			put(&k, auth, (size_t)(colon + 1 - auth));
			put(&k, "***", 3);
		} else {
			put(&k, auth, (size_t)(at - auth));
		}
		auth = at;
	}
	put(&k, auth, (size_t)(end - auth));
	if (*end == '?') {
		size_t n = strcspn(end + 1, "#");

		put(&k, "?", 1);
		put_query(&k, end + 1, n);
		end += 1 + n;
	}
	put(&k, end, strlen(end));
}
