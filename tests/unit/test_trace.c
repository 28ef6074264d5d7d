/*
 * test_trace.c - unit tests for trace.c: which traceparent headers are
 * valid (the W3C rules: widths, lower-case hex, version ff, all-zero ids,
 * future versions), that a span started under a valid parent keeps its
 * trace id and flags with a fresh span id, and that a missing or
 * malformed parent starts a new, valid trace, and that spans keep their
 * attributes within bounds. No I/O: export is off here (the integration
 * suite test_tracing.c receives real exports).
 */
#include <string.h>

#include "svc/trace.h"
#include "unit.h"

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

START_TEST(valid_and_invalid_headers)
{
	static const char *const bad[] = {
		"",
		"00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
	};

	ck_assert(svc_trace_valid(GOOD));
	ck_assert(svc_trace_valid(
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ab"));
	ck_assert(!svc_trace_valid(NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!svc_trace_valid(bad[i]), "accepted %s", bad[i]);
}
END_TEST

START_TEST(child_keeps_trace_and_flags)
{
	struct svc_trace a, b;
	char out[SVC_TRACEPARENT_LEN + 1];

	svc_trace_start(GOOD, &a);
	ck_assert_str_eq(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(a.parent_id, "00f067aa0ba902b7");
	ck_assert_str_ne(a.span_id, "00f067aa0ba902b7");
	ck_assert_uint_eq(strlen(a.span_id), SVC_SPAN_ID_LEN);
	ck_assert_uint_eq(a.flags, 1);
	svc_trace_format(&a, out);
	ck_assert(svc_trace_valid(out));
	ck_assert_int_eq(strncmp(out, GOOD, 36), 0);
	ck_assert_str_eq(out + 52, "-01");

	svc_trace_start(
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &b);
	ck_assert_uint_eq(b.flags, 0);
	ck_assert_str_ne(a.span_id, b.span_id);
}
END_TEST

START_TEST(missing_or_bad_parent_starts_a_trace)
{
	struct svc_trace a, b;
	char out[SVC_TRACEPARENT_LEN + 1];

	svc_trace_start(NULL, &a);
	svc_trace_start("garbage", &b);
	ck_assert_str_ne(a.trace_id, b.trace_id);
	ck_assert_str_eq(a.parent_id, "");
	ck_assert_str_eq(b.parent_id, "");
	ck_assert_uint_eq(strlen(a.trace_id), SVC_TRACE_ID_LEN);
	ck_assert_uint_eq(a.flags, 1);
	svc_trace_format(&b, out);
	ck_assert_uint_eq(strlen(out), SVC_TRACEPARENT_LEN);
	ck_assert(svc_trace_valid(out));
}
END_TEST

START_TEST(span_attributes_are_bounded)
{
	struct svc_span s;
	char long_value[300];

	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	svc_span_begin(&s, GOOD, SVC_SPAN_SERVER, "GET");
	ck_assert_str_eq(s.ctx.parent_id, "00f067aa0ba902b7");
	ck_assert_int_gt(s.start_ns, 1700000000LL * 1000000000LL);
	for (int i = 0; i < SVC_SPAN_ATTRS + 3; i++)
		svc_span_attr_str(&s, "k", long_value);
	svc_span_attr_int(&s, "n", 42);
	ck_assert_int_eq(s.nattrs, SVC_SPAN_ATTRS);
	ck_assert_uint_eq(strlen(s.attrs[0].value), SVC_SPAN_ATTR_VAL - 1);
	svc_span_name(&s, "%s %s", "GET", "/api/v1/products/{id}");
	ck_assert_str_eq(s.name, "GET /api/v1/products/{id}");
	/* Export is off: ending only stamps the span. */
	svc_span_end(&s, true);
	ck_assert(s.error);
	ck_assert_int_ge(s.end_ns, s.start_ns);
	ck_assert_uint_eq(svc_trace_exported_total(), 0);
}
END_TEST

Suite *
trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("traceparent");

	tcase_add_test(tc, valid_and_invalid_headers);
	tcase_add_test(tc, child_keeps_trace_and_flags);
	tcase_add_test(tc, missing_or_bad_parent_starts_a_trace);
	tcase_add_test(tc, span_attributes_are_bounded);
	suite_add_tcase(s, tc);
	return s;
}
