/*
 * test_ratelimit.c - unit tests for ratelimit.c: the RATE_LIMIT syntax and
 * its configuration keys, the refill arithmetic against a fake clock
 * (burst, steady rate, Retry-After, RateLimit-Reset), that rules and keys
 * are independent, that idle buckets are dropped and the key cap holds
 * against a flood of distinct keys, and that many threads hammering one
 * key never get more tokens than the bucket had. The HTTP wiring is tested
 * in test_http.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/ratelimit.h"
#include "unit.h"

#define THREADS 8
#define ROUNDS	500

static double fake;

static double
fake_now(void *arg)
{
	(void)arg;
	return fake;
}

static struct svc_ratelimit_rule
rule(const char *text)
{
	struct svc_ratelimit_rule r;

	ck_assert_int_eq(svc_ratelimit_parse(text, &r), 0);
	return r;
}

START_TEST(parse_valid)
{
	struct svc_ratelimit_rule r = rule("600/minute");

	ck_assert(r.enabled);
	ck_assert_double_eq_tol(r.rate, 10.0, 1e-9);
	ck_assert_double_eq(r.burst, 600);
	r = rule("100/minute,burst=50");
	ck_assert_double_eq(r.burst, 50);
	ck_assert_int_eq(r.n, 100);
	ck_assert_int_eq(r.per, 60);
	r = rule("5/second");
	ck_assert_double_eq(r.rate, 5);
	r = rule("3600/h");
	ck_assert_double_eq(r.rate, 1);
	r = rule("off");
	ck_assert(!r.enabled);
	r = rule("OFF");
	ck_assert(!r.enabled);
}
END_TEST

START_TEST(parse_invalid)
{
	static const char *const bad[] = {
		"",
		"100",
		"100/",
		"0/minute",
		"-1/minute",
		"1.5/minute",
		"100/fortnight",
		"100/minute,",
		"x/second",
		"100/minute,burst=0",
		"100/minute,burst=",
		"100/minute,bust=5",
		"100/minute burst=5",
		"2000000000/s",
		"100/minute,burst=5x",
		"on",
	};
	struct svc_ratelimit_rule r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(svc_ratelimit_parse(bad[i], &r) == SVC_EINVAL,
			      "accepted \"%s\"", bad[i]);
		ck_assert(!r.enabled);
	}
}
END_TEST

START_TEST(config_keys)
{
	struct svc_ratelimit_config cfg;

	unsetenv("RATE_LIMIT");
	unsetenv("RATE_LIMIT_SERVICE");
	unsetenv("RATE_LIMIT_MAX_KEYS");
	svc_config_reset();
	svc_ratelimit_config_read(&cfg);
	ck_assert(svc_config_ok());
	ck_assert_double_eq_tol(cfg.client.rate, 10.0, 1e-9);
	ck_assert_double_eq(cfg.client.burst, 600);
	ck_assert_double_eq(cfg.service.burst, 6000);
	ck_assert_double_eq_tol(cfg.service.rate, 100.0, 1e-9);
	ck_assert_uint_eq(cfg.max_keys, 100000);

	setenv("RATE_LIMIT", "off", 1);
	svc_config_reset();
	svc_ratelimit_config_read(&cfg);
	ck_assert(svc_config_ok());
	ck_assert(!cfg.client.enabled && !cfg.service.enabled);

	setenv("RATE_LIMIT", "10/second", 1);
	setenv("RATE_LIMIT_SERVICE", "off", 1);
	svc_config_reset();
	svc_ratelimit_config_read(&cfg);
	ck_assert(svc_config_ok());
	ck_assert(cfg.client.enabled && !cfg.service.enabled);

	setenv("RATE_LIMIT", "ten/second", 1);
	svc_config_reset();
	svc_ratelimit_config_read(&cfg);
	ck_assert(!svc_config_ok());
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "RATE_LIMIT:"));

	setenv("RATE_LIMIT", "10/second", 1);
	setenv("RATE_LIMIT_SERVICE", "lots", 1);
	svc_config_reset();
	svc_ratelimit_config_read(&cfg);
	ck_assert(!svc_config_ok());
	ck_assert_ptr_nonnull(
		strstr(svc_config_error(), "RATE_LIMIT_SERVICE:"));

	unsetenv("RATE_LIMIT_SERVICE");
	setenv("RATE_LIMIT_MAX_KEYS", "3", 1);
	svc_config_reset();
	svc_ratelimit_config_read(&cfg);
	ck_assert(!svc_config_ok());
	ck_assert_ptr_nonnull(
		strstr(svc_config_error(), "RATE_LIMIT_MAX_KEYS"));

	unsetenv("RATE_LIMIT");
	unsetenv("RATE_LIMIT_MAX_KEYS");
	svc_config_reset();
}
END_TEST

START_TEST(burst_then_rate)
{
	struct svc_ratelimit *rl = svc_ratelimit_new(1000, fake_now, NULL);
	struct svc_ratelimit_rule r = rule("60/minute,burst=3");
	struct svc_ratelimit_result res;

	fake = 1000.0;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(svc_ratelimit_take(rl, "1.2.3.4", &r, &res),
				 0);
		ck_assert(res.allowed);
		ck_assert_int_eq(res.limit, 3);
		ck_assert_int_eq(res.remaining, 2 - i);
	}
	ck_assert_int_eq(res.reset, 3); /* 3 tokens at 1/s */
	svc_ratelimit_take(rl, "1.2.3.4", &r, &res);
	ck_assert(!res.allowed);
	ck_assert_int_eq(res.retry_after, 1);
	ck_assert_int_eq(res.remaining, 0);
	/* Half a second: still half a token short. */
	fake += 0.5;
	svc_ratelimit_take(rl, "1.2.3.4", &r, &res);
	ck_assert(!res.allowed);
	ck_assert_int_eq(res.retry_after, 1);
	fake += 0.5;
	svc_ratelimit_take(rl, "1.2.3.4", &r, &res);
	ck_assert(res.allowed);
	/* Ten seconds of rest refill the burst, never more. */
	fake += 10;
	for (int i = 0; i < 3; i++) {
		svc_ratelimit_take(rl, "1.2.3.4", &r, &res);
		ck_assert(res.allowed);
	}
	svc_ratelimit_take(rl, "1.2.3.4", &r, &res);
	ck_assert(!res.allowed);
	svc_ratelimit_free(rl);
}
END_TEST

START_TEST(retry_after_slow_rate)
{
	struct svc_ratelimit *rl = svc_ratelimit_new(1000, fake_now, NULL);
	struct svc_ratelimit_rule r = rule("2/hour");
	struct svc_ratelimit_result res;

	fake = 0;
	svc_ratelimit_take(rl, "k", &r, &res);
	svc_ratelimit_take(rl, "k", &r, &res);
	ck_assert(res.allowed);
	ck_assert_int_eq(res.reset, 3600);
	svc_ratelimit_take(rl, "k", &r, &res);
	ck_assert(!res.allowed);
	ck_assert_int_eq(res.retry_after, 1800);
	fake = 1799;
	svc_ratelimit_take(rl, "k", &r, &res);
	ck_assert(!res.allowed);
	ck_assert_int_eq(res.retry_after, 1);
	svc_ratelimit_free(rl);
}
END_TEST

START_TEST(keys_and_rules_independent)
{
	struct svc_ratelimit *rl = svc_ratelimit_new(1000, fake_now, NULL);
	struct svc_ratelimit_rule one = rule("1/hour");
	struct svc_ratelimit_rule off = rule("off");
	struct svc_ratelimit_result res;

	fake = 0;
	svc_ratelimit_take(rl, "a", &one, &res);
	ck_assert(res.allowed);
	svc_ratelimit_take(rl, "a", &one, &res);
	ck_assert(!res.allowed);
	svc_ratelimit_take(rl, "b", &one, &res);
	ck_assert(res.allowed);
	for (int i = 0; i < 100; i++) {
		svc_ratelimit_take(rl, "a", &off, &res);
		ck_assert(res.allowed);
	}
	svc_ratelimit_free(rl);
}
END_TEST

START_TEST(idle_buckets_dropped)
{
	struct svc_ratelimit *rl = svc_ratelimit_new(100000, fake_now, NULL);
	struct svc_ratelimit_rule r = rule("10/second");
	struct svc_ratelimit_result res;
	char key[32];

	fake = 0;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		svc_ratelimit_take(rl, key, &r, &res);
	}
	ck_assert_uint_eq(svc_ratelimit_keys(rl), 1000);
	/* A second later every bucket is full again: idle. */
	fake = 2;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "192.168.%d.%d", i / 256, i % 256);
		svc_ratelimit_take(rl, key, &r, &res);
	}
	ck_assert_uint_le(svc_ratelimit_keys(rl), 1000);
	fake = 4;
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "u%d", i % 200);
		svc_ratelimit_take(rl, key, &r, &res);
	}
	/* The sweep ran twice per take: far fewer than 2000 remain. */
	ck_assert_uint_lt(svc_ratelimit_keys(rl), 300);
	svc_ratelimit_free(rl);
}
END_TEST

START_TEST(key_cap_holds)
{
	struct svc_ratelimit *rl = svc_ratelimit_new(64, fake_now, NULL);
	struct svc_ratelimit_rule r = rule("1/hour");
	struct svc_ratelimit_result res;
	char key[32];

	fake = 0;
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "flood-%d", i);
		ck_assert_int_eq(svc_ratelimit_take(rl, key, &r, &res), 0);
		ck_assert(res.allowed);
	}
	ck_assert_uint_le(svc_ratelimit_keys(rl), 64);
	svc_ratelimit_free(rl);
}
END_TEST

static struct svc_ratelimit *shared;
static _Atomic int granted;

static void *
hammer(void *arg)
{
	struct svc_ratelimit_rule r = rule("1/hour,burst=1000");
	struct svc_ratelimit_result res;
	char key[32];

	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		svc_ratelimit_take(shared, "hot", &r, &res);
		if (res.allowed)
			atomic_fetch_add(&granted, 1);
		/* Other keys on other shards at the same time. */
		snprintf(key, sizeof(key), "cold-%d", i);
		svc_ratelimit_take(shared, key, &r, &res);
	}
	return NULL;
}

START_TEST(concurrent_takes)
{
	pthread_t t[THREADS];

	shared = svc_ratelimit_new(100000, NULL, NULL);
	atomic_store(&granted, 0);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* 4000 attempts, a bucket of 1000, a refill of ~0 in this time. */
	ck_assert_int_eq(atomic_load(&granted), 1000);
	ck_assert_uint_eq(svc_ratelimit_keys(shared), ROUNDS + 1);
	svc_ratelimit_free(shared);
}
END_TEST

Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, parse_valid);
	tcase_add_test(tc, parse_invalid);
	tcase_add_test(tc, config_keys);
	tcase_add_test(tc, burst_then_rate);
	tcase_add_test(tc, retry_after_slow_rate);
	tcase_add_test(tc, keys_and_rules_independent);
	tcase_add_test(tc, idle_buckets_dropped);
	tcase_add_test(tc, key_cap_holds);
	tcase_add_test(tc, concurrent_takes);
	suite_add_tcase(s, tc);
	return s;
}
