/*
 * util.c - UUIDs, clocks and timestamps shared by every module.
 */
#include "svc/util.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "svc/err.h"

int
svc_random_bytes(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? SVC_OK : SVC_EINTERNAL;
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
