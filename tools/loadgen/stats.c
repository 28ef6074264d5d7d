/*
 * stats.c - loadgen's numbers: the latency histogram, the counts of each
 * operation and of the current second, and what became of the orders.
 * Only the engine's thread writes them; nothing here allocates, so a run
 * of any length keeps the same few tens of kilobytes. Not the output:
 * report.c turns these into lines and JSON.
 */
#include <string.h>

#include "loadgen.h"

const char *
lg_op_name(enum lg_op op)
{
	static const char *const names[LG_NOPS] = {
		"browse", "read", "order", "check", "cancel",
	};

	return op < LG_NOPS ? names[op] : "?";
}

const char *
lg_target_name(enum lg_target t)
{
	static const char *const names[LG_NTARGETS] = {
		"products",
		"inventory",
		"orders",
	};

	return t < LG_NTARGETS ? names[t] : "?";
}

/*
 * Values below 2^SUB_BITS have a bucket each. Above, a value whose top bit
 * is bit e lands in row e - SUB_BITS + 1, at the column its next SUB_BITS
 * bits name: 32 buckets per power of two.
 */
static int
bucket_of(long long us)
{
	unsigned long long v = us > 0 ? (unsigned long long)us : 0;
	int e, shift;

	if (v < (1ull << LG_HIST_SUB_BITS))
		return (int)v;
	e = 63 - __builtin_clzll(v);
	if (e > LG_HIST_MAX_EXP)
		return LG_HIST_BUCKETS - 1;
	shift = e - LG_HIST_SUB_BITS;
	return ((shift + 1) << LG_HIST_SUB_BITS) +
	       (int)((v >> shift) - (1ull << LG_HIST_SUB_BITS));
}

/* The highest value bucket b holds. */
static long long
bucket_top(int b)
{
	int row = b >> LG_HIST_SUB_BITS;
	int col = b & ((1 << LG_HIST_SUB_BITS) - 1);

	if (row == 0)
		return col;
	return ((long long)((1 << LG_HIST_SUB_BITS) + col + 1) << (row - 1)) -
	       1;
}

void
lg_hist_add(struct lg_hist *h, long long us)
{
	if (us < 0)
		us = 0;
	h->n[bucket_of(us)]++;
	h->count++;
	h->sum_us += (unsigned long long)us;
	if (us > h->max_us)
		h->max_us = us;
}

void
lg_hist_merge(struct lg_hist *into, const struct lg_hist *from)
{
	for (int b = 0; b < LG_HIST_BUCKETS; b++)
		into->n[b] += from->n[b];
	into->count += from->count;
	into->sum_us += from->sum_us;
	if (from->max_us > into->max_us)
		into->max_us = from->max_us;
}

long long
lg_hist_pct(const struct lg_hist *h, double pct)
{
	unsigned long long want, seen = 0;

	if (h->count == 0)
		return 0;
	/* the rank of the value asked for, 1-based, rounded up */
	want = (unsigned long long)(pct / 100.0 * (double)h->count + 0.999999);
	if (want < 1)
		want = 1;
	if (want > h->count)
		want = h->count;
	for (int b = 0; b < LG_HIST_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= want) {
			long long top = bucket_top(b);

			return top < h->max_us ? top : h->max_us;
		}
	}
	return h->max_us;
}

unsigned long long
lg_counts_class(const struct lg_counts *cnt, int c)
{
	unsigned long long sum = 0;

	for (int s = c * 100; s < (c + 1) * 100 && s < LG_STATUS_MAX; s++)
		sum += cnt->status[s];
	return sum;
}

static void
count(struct lg_counts *cnt, long status, bool timed_out, long long us)
{
	if (status <= 0) {
		cnt->errors++;
		if (timed_out)
			cnt->timeouts++;
		return;
	}
	cnt->answered++;
	cnt->status[status < LG_STATUS_MAX ? status : 0]++;
	lg_hist_add(&cnt->latency, us);
}

void
lg_stats_answer(struct lg_stats *st, enum lg_op op, long status, bool timed_out,
		long long us)
{
	count(&st->op[op], status, timed_out, us);
	count(&st->second, status, timed_out, us);
}

void
lg_stats_next_second(struct lg_stats *st)
{
	memset(&st->second, 0, sizeof(st->second));
	st->second_missed = 0;
	st->second_index++;
}

void
lg_stats_total(const struct lg_stats *st, struct lg_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < LG_NOPS; i++) {
		const struct lg_counts *c = &st->op[i];

		out->started += c->started;
		out->answered += c->answered;
		out->errors += c->errors;
		out->timeouts += c->timeouts;
		out->unfinished += c->unfinished;
		for (int s = 0; s < LG_STATUS_MAX; s++)
			out->status[s] += c->status[s];
		lg_hist_merge(&out->latency, &c->latency);
	}
}

unsigned long long
lg_orders_unchecked(const struct lg_orders *o)
{
	unsigned long long settled = o->confirmed + o->rejected + o->pending;

	return o->placed > settled ? o->placed - settled : 0;
}
