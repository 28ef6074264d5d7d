/*
 * test_err.c - unit tests for err.c: every SVC_E* code maps to the HTTP
 * status, problem `error` member and description the rest of libsvc relies
 * on, and unknown codes fall back to a 500. It does not test how handlers
 * turn codes into responses; test_http.c does that.
 */
#include <string.h>

#include "svc/err.h"
#include "unit.h"

static const struct {
	int err;
	int status;
	const char *code;
} table[] = {
	{ SVC_OK, 200, "ok" },
	{ SVC_EINVAL, 400, "bad_request" },
	{ SVC_EVALIDATION, 422, "validation_failed" },
	{ SVC_EAUTH, 401, "unauthorized" },
	{ SVC_EFORBIDDEN, 403, "forbidden" },
	{ SVC_ENOTFOUND, 404, "not_found" },
	{ SVC_ECONFLICT, 409, "conflict" },
	{ SVC_EPRECONDITION, 412, "precondition_failed" },
	{ SVC_ETOOBIG, 413, "payload_too_large" },
	{ SVC_EMEDIATYPE, 415, "unsupported_media_type" },
	{ SVC_ERATELIMIT, 429, "rate_limited" },
	{ SVC_EUNAVAIL, 503, "service_unavailable" },
	{ SVC_ETIMEOUT, 503, "service_unavailable" },
	{ SVC_ENOMEM, 500, "internal_error" },
	{ SVC_EINTERNAL, 500, "internal_error" },
	{ SVC_ECIRCUIT, 503, "service_unavailable" },
};

#define NTABLE ((int)(sizeof(table) / sizeof(table[0])))

START_TEST(each_code_maps_to_its_status)
{
	ck_assert_int_eq(svc_err_status(table[_i].err), table[_i].status);
}
END_TEST

START_TEST(each_code_has_its_code_string)
{
	ck_assert_str_eq(svc_err_code(table[_i].err), table[_i].code);
}
END_TEST

START_TEST(each_code_has_a_description)
{
	const char *s = svc_strerror(table[_i].err);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_gt(strlen(s), 0);
	/* Descriptions go into problem details: lower-case, no full stop. */
	ck_assert_msg(s[0] >= 'a' && s[0] <= 'z', "\"%s\"", s);
	ck_assert_int_ne(s[strlen(s) - 1], '.');
}
END_TEST

START_TEST(codes_are_distinct_and_negative)
{
	for (int i = 1; i < NTABLE; i++) {
		ck_assert_int_lt(table[i].err, 0);
		for (int j = i + 1; j < NTABLE; j++)
			ck_assert_int_ne(table[i].err, table[j].err);
	}
	ck_assert_int_eq(SVC_OK, 0);
}
END_TEST

START_TEST(unknown_codes_are_internal_errors)
{
	static const int unknown[] = { 1, 42, -16, -100, -2147483647 - 1 };

	for (unsigned i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ck_assert_int_eq(svc_err_status(unknown[i]), 500);
		ck_assert_str_eq(svc_err_code(unknown[i]), "internal_error");
		ck_assert_str_eq(svc_strerror(unknown[i]),
				 svc_strerror(SVC_EINTERNAL));
	}
}
END_TEST

Suite *
err_suite(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("table");

	tcase_add_loop_test(tc, each_code_maps_to_its_status, 0, NTABLE);
	tcase_add_loop_test(tc, each_code_has_its_code_string, 0, NTABLE);
	tcase_add_loop_test(tc, each_code_has_a_description, 0, NTABLE);
	tcase_add_test(tc, codes_are_distinct_and_negative);
	tcase_add_test(tc, unknown_codes_are_internal_errors);
	suite_add_tcase(s, tc);
	return s;
}
