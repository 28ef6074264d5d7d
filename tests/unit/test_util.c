/*
 * test_util.c - unit tests for util.c: random v4 UUIDs (shape, version and
 * variant bits, uniqueness), the canonical-form UUID check, the RFC 3339
 * clock string and the clocks and random bytes behind them, and the
 * password redaction of URLs and connection strings for log lines.
 * Everything is checked against the wall and monotonic clocks of the
 * machine running the tests; nothing sleeps.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc/err.h"
#include "svc/util.h"
#include "unit.h"

#define MANY_UUIDS 4096

/* Whether s is a lower-case RFC 9562 version 4 UUID. */
static bool
is_v4(const char *s)
{
	if (strlen(s) != SVC_UUID_LEN)
		return false;
	for (int i = 0; i < SVC_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (strchr("0123456789abcdef", s[i]) == NULL) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

START_TEST(uuid_v4_has_version_and_variant)
{
	char id[SVC_UUID_LEN + 1];

	for (int i = 0; i < 1000; i++) {
		memset(id, 'x', sizeof(id));
		svc_uuid_v4(id);
		ck_assert_msg(is_v4(id), "not a v4 uuid: %.37s", id);
		ck_assert(svc_uuid_valid(id));
	}
}
END_TEST

static int
cmp_uuid(const void *a, const void *b)
{
	return memcmp(a, b, SVC_UUID_LEN + 1);
}

START_TEST(uuid_v4_is_unique)
{
	char(*ids)[SVC_UUID_LEN + 1] = malloc(MANY_UUIDS * sizeof(*ids));

	ck_assert_ptr_nonnull(ids);
	for (int i = 0; i < MANY_UUIDS; i++)
		svc_uuid_v4(ids[i]);
	qsort(ids, MANY_UUIDS, sizeof(*ids), cmp_uuid);
	for (int i = 1; i < MANY_UUIDS; i++)
		ck_assert_str_ne(ids[i - 1], ids[i]);
	free(ids);
}
END_TEST

START_TEST(uuid_valid_accepts_canonical_forms)
{
	static const char *const good[] = {
		"123e4567-e89b-12d3-a456-426614174000",
		"00000000-0000-0000-0000-000000000000",
		"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
		"aBcDeF01-2345-6789-AbCd-Ef0123456789",
	};

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(svc_uuid_valid(good[i]), "rejected %s", good[i]);
}
END_TEST

START_TEST(uuid_valid_rejects_everything_else)
{
	static const char *const bad[] = {
		"",
		"123e4567",
		"123e4567-e89b-12d3-a456-42661417400",	 /* 35 chars */
		"123e4567-e89b-12d3-a456-4266141740000", /* 37 chars */
		"123e4567-e89b-12d3-a456-426614174000 ", /* trailing space */
		"123e4567-e89b-12d3-a456-426614174000\n",
		" 123e4567-e89b-12d3-a456-426614174000",
		"123e4567e89b12d3a456426614174000", /* no hyphens */
		"123e4567-e89b12d3-a456-426614174000-",
		"123e456-7e89b-12d3-a456-426614174000", /* hyphen moved */
		"123e4567-e89b-12d3-a4564-26614174000",
		"123e4567-e89b-12d3-a456_426614174000",
		"123e4567-e89b-12d3-a456-42661417400g", /* non-hex */
		"g23e4567-e89b-12d3-a456-426614174000",
		"123e4567-e89b-12d3-a456-4266141740-0",
		"{23e4567-e89b-12d3-a456-426614174000}",
		"123e4567-e89b-12d3-a456-4266141740\xc3\xa9",
		"------------------------------------",
	};

	ck_assert(!svc_uuid_valid(NULL));
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!svc_uuid_valid(bad[i]), "accepted \"%s\"",
			      bad[i]);
}
END_TEST

START_TEST(rfc3339_now_has_the_documented_shape)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	char out[32];
	struct tm tm;
	time_t before, after, t;

	memset(out, 'x', sizeof(out));
	before = time(NULL);
	svc_rfc3339_now(out);
	after = time(NULL);
	ck_assert_uint_eq(strlen(out), sizeof(shape) - 1);
	for (size_t i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd')
			ck_assert_msg(out[i] >= '0' && out[i] <= '9', "%s",
				      out);
		else
			ck_assert_msg(out[i] == shape[i], "%s", out);
	}
	/* It is UTC and it is now. */
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
	t = timegm(&tm);
	/* time() reads a coarse clock that may trail CLOCK_REALTIME a tick. */
	ck_assert_int_ge(t, before);
	ck_assert_int_le(t, after + 1);
}
END_TEST

START_TEST(clocks_agree_with_the_system)
{
	long long a = svc_now_ms(), b = svc_now_ms();
	double s = svc_now_s();
	long long wall = svc_time_s();
	time_t now = time(NULL);

	ck_assert_int_ge(b, a);
	ck_assert_int_gt(a, 0);
	/* Both monotonic readings come from one clock. */
	ck_assert_int_le(a / 1000, (long long)s);
	ck_assert_int_ge((long long)s - b / 1000, 0);
	ck_assert_int_le((long long)s - b / 1000, 1);
	ck_assert_int_ge(wall, (long long)now - 1);
	ck_assert_int_le(wall, (long long)now + 1);
}
END_TEST

START_TEST(random_bytes_fill_the_buffer)
{
	unsigned char a[64], b[64];
	unsigned char zero[64] = { 0 };

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(svc_random_bytes(a, sizeof(a)), SVC_OK);
	ck_assert_int_eq(svc_random_bytes(b, sizeof(b)), SVC_OK);
	ck_assert_mem_ne(a, zero, sizeof(a));
	ck_assert_mem_ne(a, b, sizeof(a));
	ck_assert_int_eq(svc_random_bytes(a, 0), SVC_OK);
}
END_TEST

START_TEST(redact_url_hides_every_password)
{
	static const char *const cases[][2] = {
		{ "postgres://u:s3cret@h:5432/db",
		  "postgres://u:***@h:5432/db" },
		{ "amqp://guest:guest@127.0.0.1:5672/%2f",
		  "amqp://guest:***@127.0.0.1:5672/%2f" },
		{ "http://h:8081/api?x=1", "http://h:8081/api?x=1" },
		{ "http://user@h/", "http://user@h/" },
		{ "postgres://u:pa/ss@h/db", "postgres://u:***@h/db" },
		{ "postgres://u:p@ss@h/db", "postgres://u:***@h/db" },
		{ "postgres://h/db?user=u&password=s3cret&sslmode=disable",
		  "postgres://h/db?user=u&password=***&sslmode=disable" },
		{ "postgres://u:s3cret@[::1/db", "postgres://u:***@[::1/db" },
		{ "host=h password=s3cret dbname=d",
		  "host=h password=*** dbname=d" },
		{ "host=h password = 's3 \\' cret' x",
		  "host=h password = *** x" },
		{ "password=", "password=***" },
		{ "u:s3cret@h", "u:***@h" },
		{ "", "" },
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		svc_redact_url(cases[i][0], out, sizeof(out));
		ck_assert_str_eq(out, cases[i][1]);
	}
	/* Cut short, never overrun, always terminated. */
	svc_redact_url("postgres://u:s3cret@host/db", out, 16);
	ck_assert_str_eq(out, "postgres://u:**");
	svc_redact_url(NULL, out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *uuid = tcase_create("uuid");
	TCase *clock = tcase_create("clock");
	TCase *redact = tcase_create("redact");

	tcase_add_test(uuid, uuid_v4_has_version_and_variant);
	tcase_add_test(uuid, uuid_v4_is_unique);
	tcase_add_test(uuid, uuid_valid_accepts_canonical_forms);
	tcase_add_test(uuid, uuid_valid_rejects_everything_else);
	suite_add_tcase(s, uuid);

	tcase_add_test(clock, rfc3339_now_has_the_documented_shape);
	tcase_add_test(clock, clocks_agree_with_the_system);
	tcase_add_test(clock, random_bytes_fill_the_buffer);
	suite_add_tcase(s, clock);

	tcase_add_test(redact, redact_url_hides_every_password);
	suite_add_tcase(s, redact);
	return s;
}
