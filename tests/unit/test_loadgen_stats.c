/*
 * test_loadgen_stats.c - unit tests for tools/loadgen/stats.c: the latency
 * histogram (exact small values, percentiles within a bucket's 3 % of the
 * exact answer, merging, values past its range), the counts by status and
 * class, and the orders left unchecked.
 */
#include <stdlib.h>
#include <string.h>

#include "../../tools/loadgen/loadgen.h"
#include "unit.h"

static struct lg_hist *
hist_new(void)
{
	struct lg_hist *h = calloc(1, sizeof(*h));

	ck_assert_ptr_nonnull(h);
	return h;
}

START_TEST(hist_exact_below_32)
{
	struct lg_hist *h = hist_new();

	for (int v = 0; v < 32; v++)
		lg_hist_add(h, v);
	ck_assert_int_eq(lg_hist_pct(h, 50), 15);
	ck_assert_int_eq(lg_hist_pct(h, 100), 31);
	ck_assert_int_eq(h->max_us, 31);
	ck_assert_uint_eq(h->count, 32);
	free(h);
}
END_TEST

START_TEST(hist_percentiles_within_a_bucket)
{
	static const double pcts[] = { 1, 10, 50, 90, 99, 99.9 };
	struct lg_hist *h = hist_new();

	/* 1 us .. 1 s, one each: the exact p is p% of 1,000,000 */
	for (long long v = 1; v <= 1000000; v++)
		lg_hist_add(h, v);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		double exact = pcts[i] / 100 * 1000000;
		long long got = lg_hist_pct(h, pcts[i]);

		ck_assert_msg(got >= exact && got <= exact * 1.032,
			      "p%g: %lld, exact %.0f", pcts[i], got, exact);
	}
	ck_assert_int_eq(lg_hist_pct(h, 100), 1000000);
	free(h);
}
END_TEST

START_TEST(hist_never_above_max)
{
	struct lg_hist *h = hist_new();

	lg_hist_add(h, 1000001);
	ck_assert_int_eq(lg_hist_pct(h, 50), 1000001);
	ck_assert_int_eq(lg_hist_pct(h, 99.9), 1000001);
	free(h);
}
END_TEST

START_TEST(hist_merge_is_the_sum)
{
	struct lg_hist *a = hist_new(), *b = hist_new(), *both = hist_new();

	for (long long v = 1; v < 5000; v += 7) {
		lg_hist_add(v % 2 ? a : b, v * 13);
		lg_hist_add(both, v * 13);
	}
	lg_hist_merge(a, b);
	ck_assert_mem_eq(a, both, sizeof(*a));
	free(a);
	free(b);
	free(both);
}
END_TEST

START_TEST(hist_empty_and_out_of_range)
{
	struct lg_hist *h = hist_new();

	ck_assert_int_eq(lg_hist_pct(h, 99), 0);
	lg_hist_add(h, -5);	   /* a clock step back: counted as 0 */
	lg_hist_add(h, 1LL << 50); /* past 2^36 us: the last bucket */
	ck_assert_uint_eq(h->count, 2);
	ck_assert_int_eq(lg_hist_pct(h, 50), 0);
	ck_assert_int_eq(h->n[LG_HIST_BUCKETS - 1], 1);
	ck_assert_int_eq(lg_hist_pct(h, 100), (1LL << 36) - 1);
	free(h);
}
END_TEST

START_TEST(stats_answers_and_failures)
{
	struct lg_stats *st = calloc(1, sizeof(*st));

	ck_assert_ptr_nonnull(st);
	lg_stats_answer(st, LG_ORDER, 201, false, 5000);
	lg_stats_answer(st, LG_ORDER, 409, false, 3000);
	lg_stats_answer(st, LG_READ, 0, true, 5000000);
	lg_stats_answer(st, LG_READ, 0, false, 10);
	ck_assert_uint_eq(st->op[LG_ORDER].answered, 2);
	ck_assert_uint_eq(lg_counts_class(&st->op[LG_ORDER], 2), 1);
	ck_assert_uint_eq(lg_counts_class(&st->op[LG_ORDER], 4), 1);
	ck_assert_uint_eq(st->op[LG_READ].errors, 2);
	ck_assert_uint_eq(st->op[LG_READ].timeouts, 1);
	/* failures have no latency: the histogram holds answers only */
	ck_assert_uint_eq(st->op[LG_READ].latency.count, 0);
	ck_assert_uint_eq(st->second.answered, 2);
	lg_stats_next_second(st);
	ck_assert_uint_eq(st->second.answered, 0);
	ck_assert_uint_eq(st->second_index, 1);
	free(st);
}
END_TEST

START_TEST(stats_total_sums_operations)
{
	struct lg_stats *st = calloc(1, sizeof(*st));
	struct lg_counts *all = calloc(1, sizeof(*all));

	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_nonnull(all);
	for (int op = 0; op < LG_NOPS; op++) {
		st->op[op].started = 2;
		lg_stats_answer(st, op, 200, false, 1000 * (op + 1));
		lg_stats_answer(st, op, 503, false, 100);
	}
	lg_stats_total(st, all);
	ck_assert_uint_eq(all->started, 2 * LG_NOPS);
	ck_assert_uint_eq(all->status[200], LG_NOPS);
	ck_assert_uint_eq(lg_counts_class(all, 5), LG_NOPS);
	ck_assert_uint_eq(all->latency.count, 2 * LG_NOPS);
	ck_assert_int_eq(all->latency.max_us, 1000 * LG_NOPS);
	free(all);
	free(st);
}
END_TEST

START_TEST(orders_unchecked_is_what_no_read_settled)
{
	struct lg_orders o = {
		.placed = 10, .confirmed = 6, .rejected = 1, .pending = 1
	};

	ck_assert_uint_eq(lg_orders_unchecked(&o), 2);
	o.placed = 5;
	ck_assert_uint_eq(lg_orders_unchecked(&o), 0);
	ck_assert_str_eq(lg_op_name(LG_CHECK), "check");
	ck_assert_str_eq(lg_target_name(LG_ORDERS), "orders");
}
END_TEST

Suite *
loadgen_stats_suite(void)
{
	Suite *s = suite_create("loadgen_stats");
	TCase *tc = tcase_create("loadgen_stats");

	tcase_add_test(tc, hist_exact_below_32);
	tcase_add_test(tc, hist_percentiles_within_a_bucket);
	tcase_add_test(tc, hist_never_above_max);
	tcase_add_test(tc, hist_merge_is_the_sum);
	tcase_add_test(tc, hist_empty_and_out_of_range);
	tcase_add_test(tc, stats_answers_and_failures);
	tcase_add_test(tc, stats_total_sums_operations);
	tcase_add_test(tc, orders_unchecked_is_what_no_read_settled);
	suite_add_tcase(s, tc);
	return s;
}
