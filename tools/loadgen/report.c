/*
 * report.c - what loadgen shows: the live line once a second, and the
 * summary at the end, as text or (--json) as one JSON document on stdout
 * whose members docs/load.md lists. Reads the numbers of stats.c, changes
 * nothing. On a terminal the live line is rewritten in place, cut to the
 * terminal's width; otherwise each second gets a plain line of its own.
 */
#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "loadgen.h"

#define LINE_MAX_LEN 512

/* Live output goes where the summary does not. */
static FILE *
live_stream(const struct lg_options *opt)
{
	return opt->json ? stderr : stdout;
}

static void add(char *line, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
add(char *line, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= LINE_MAX_LEN - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *len, LINE_MAX_LEN - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n < LINE_MAX_LEN - *len
				? (size_t)n
				: LINE_MAX_LEN - 1 - *len;
}

/* "0.84 ms", "12.3 ms", "250 ms": about three significant digits. */
static const char *
ms(long long us, char buf[16])
{
	double v = (double)us / 1000;

	snprintf(buf, 16,
		 v < 10	   ? "%.2f ms"
		 : v < 100 ? "%.1f ms"
			   : "%.0f ms",
		 v);
	return buf;
}

/* " (409:3 429:1)": the codes of class c that came, if any. */
static void
add_codes(char *line, size_t *len, const struct lg_counts *cnt, int c)
{
	const char *sep = " (";

	for (int s = c * 100; s < (c + 1) * 100; s++) {
		if (cnt->status[s] == 0)
			continue;
		add(line, len, "%s%d:%llu", sep, s, cnt->status[s]);
		sep = " ";
	}
	if (sep[0] == ' ' && sep[1] == '\0')
		add(line, len, ")");
}

static size_t
terminal_width(FILE *out)
{
	struct winsize ws;

	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 0;
}

void
lg_report_live(const struct lg_options *opt, const struct lg_stats *st,
	       double second_s)
{
	const struct lg_counts *s = &st->second;
	FILE *out = live_stream(opt);
	char line[LINE_MAX_LEN], a[16], b[16];
	size_t len = 0, width;

	add(line, &len, "[%4us] %6.1f req/s", st->second_index + 1,
	    second_s > 0 ? (double)s->started / second_s : 0.0);
	if (s->answered > 0)
		add(line, &len, "  p50 %s  p99 %s",
		    ms(lg_hist_pct(&s->latency, 50), a),
		    ms(lg_hist_pct(&s->latency, 99), b));
	else
		add(line, &len, "  p50 -  p99 -");
	for (int c = 2; c <= 5; c++) {
		if (c == 3 && lg_counts_class(s, 3) == 0)
			continue;
		add(line, &len, "  %dxx %llu", c, lg_counts_class(s, c));
		if (c >= 4)
			add_codes(line, &len, s, c);
	}
	if (s->errors > 0)
		add(line, &len, "  no answer %llu", s->errors);
	add(line, &len, "  orders %llu placed, %llu confirmed",
	    st->orders.placed, st->orders.confirmed);
	if (st->second_missed > 0)
		add(line, &len, "  missed %llu", st->second_missed);
	if (!isatty(fileno(out))) {
		fprintf(out, "%s\n", line);
	} else {
		width = terminal_width(out);
		if (width > 0 && len >= width)
			line[width - 1] = '\0';
		fprintf(out, "\r\033[K%s", line);
	}
	fflush(out);
}

void
lg_report_live_end(const struct lg_options *opt)
{
	FILE *out = live_stream(opt);

	if (!opt->quiet && isatty(fileno(out)))
		fputc('\n', out);
}

/* ---- text summary ---------------------------------------------------- */

static void
text_row(const char *name, const struct lg_counts *c)
{
	const struct lg_hist *h = &c->latency;
	char p50[16], p90[16], p99[16], p999[16], max[16];

	if (h->count == 0) {
		printf("%-8s %8llu %7llu %6llu %6llu %6llu %10s %10s %10s %10s"
		       " %10s\n",
		       name, c->started, lg_counts_class(c, 2),
		       lg_counts_class(c, 4), lg_counts_class(c, 5),
		       c->errors + c->unfinished, "-", "-", "-", "-", "-");
		return;
	}
	printf("%-8s %8llu %7llu %6llu %6llu %6llu %10s %10s %10s %10s %10s\n",
	       name, c->started, lg_counts_class(c, 2), lg_counts_class(c, 4),
	       lg_counts_class(c, 5), c->errors + c->unfinished,
	       ms(lg_hist_pct(h, 50), p50), ms(lg_hist_pct(h, 90), p90),
	       ms(lg_hist_pct(h, 99), p99), ms(lg_hist_pct(h, 99.9), p999),
	       ms(h->max_us, max));
}

static void
text_summary(const struct lg_options *opt, const struct lg_catalogue *cat,
	     const struct lg_stats *st, const struct lg_counts *all)
{
	const struct lg_orders *o = &st->orders;
	const char *sep = "";

	printf("\nloadgen: %.1f s at %g/s%s: %llu slots, %llu requests started"
	       " (%.1f/s), %llu missed (%llu at the in-flight cap, %llu"
	       " late), %llu unfinished\n",
	       st->elapsed_s, opt->rate,
	       st->interrupted ? " (interrupted)" : "", st->scheduled,
	       all->started,
	       st->elapsed_s > 0 ? (double)all->started / st->elapsed_s : 0.0,
	       st->missed_busy + st->missed_late, st->missed_busy,
	       st->missed_late, all->unfinished);
	printf("catalogue: %zu products found, %zu created; orders of %zu"
	       " (%s)\n\n",
	       cat->found, cat->seeded, cat->n_orderable,
	       cat->currency[0] ? cat->currency : "-");
	printf("%-8s %8s %7s %6s %6s %6s %10s %10s %10s %10s %10s\n", "",
	       "requests", "2xx", "4xx", "5xx", "none", "p50", "p90", "p99",
	       "p99.9", "max");
	for (int op = 0; op < LG_NOPS; op++)
		text_row(lg_op_name(op), &st->op[op]);
	text_row("all", all);
	printf("\nanswers:");
	for (int s = 0; s < LG_STATUS_MAX; s++)
		if (all->status[s] > 0) {
			printf("%s %d %llu", sep, s, all->status[s]);
			sep = ",";
		}
	printf("%s\n", sep[0] ? "" : " none");
	printf("orders: %llu placed (%llu not), %llu confirmed, %llu rejected,"
	       " %llu pending at their last read, %llu unchecked; %llu"
	       " cancelled (%llu refused)\n",
	       o->placed, o->failed, o->confirmed, o->rejected, o->pending,
	       lg_orders_unchecked(o), o->cancelled, o->cancel_refused);
}

/* ---- JSON summary ---------------------------------------------------- */

static json_t *
json_latency(const struct lg_hist *h)
{
	return json_pack(
		"{sI sf sf sf sf sf sf}", "count", (json_int_t)h->count, "mean",
		h->count ? (double)h->sum_us / (double)h->count / 1000 : 0.0,
		"p50", (double)lg_hist_pct(h, 50) / 1000, "p90",
		(double)lg_hist_pct(h, 90) / 1000, "p99",
		(double)lg_hist_pct(h, 99) / 1000, "p99.9",
		(double)lg_hist_pct(h, 99.9) / 1000, "max",
		(double)h->max_us / 1000);
}

static json_t *
json_status(const struct lg_counts *c)
{
	json_t *o = json_object();
	char code[16];

	for (int s = 0; s < LG_STATUS_MAX; s++) {
		if (c->status[s] == 0)
			continue;
		snprintf(code, sizeof(code), "%d", s);
		json_object_set_new(o, code,
				    json_integer((json_int_t)c->status[s]));
	}
	return o;
}

static json_t *
json_counts(const struct lg_counts *c)
{
	return json_pack(
		"{sI sI sI sI sI s{sI sI sI sI} so so}", "started",
		(json_int_t)c->started, "answered", (json_int_t)c->answered,
		"errors", (json_int_t)c->errors, "timeouts",
		(json_int_t)c->timeouts, "unfinished",
		(json_int_t)c->unfinished, "classes", "2xx",
		(json_int_t)lg_counts_class(c, 2), "3xx",
		(json_int_t)lg_counts_class(c, 3), "4xx",
		(json_int_t)lg_counts_class(c, 4), "5xx",
		(json_int_t)lg_counts_class(c, 5), "status", json_status(c),
		"latency_ms", json_latency(&c->latency));
}

static json_t *
json_run(const struct lg_options *opt, const struct lg_stats *st,
	 const struct lg_counts *all)
{
	return json_pack(
		"{sf sf sf sf sb sI sI sI sI sf}", "rate", opt->rate,
		"duration_s", (double)opt->duration_ms / 1000, "elapsed_s",
		st->elapsed_s, "drain_s", st->drain_s, "interrupted",
		st->interrupted, "scheduled", (json_int_t)st->scheduled,
		"started", (json_int_t)all->started, "missed_busy",
		(json_int_t)st->missed_busy, "missed_late",
		(json_int_t)st->missed_late, "achieved_rate",
		st->elapsed_s > 0 ? (double)all->started / st->elapsed_s : 0.0);
}

static json_t *
json_orders(const struct lg_orders *o)
{
	return json_pack(
		"{sI sI sI sI sI sI sI sI}", "placed", (json_int_t)o->placed,
		"not_placed", (json_int_t)o->failed, "confirmed",
		(json_int_t)o->confirmed, "rejected", (json_int_t)o->rejected,
		"pending", (json_int_t)o->pending, "unchecked",
		(json_int_t)lg_orders_unchecked(o), "cancelled",
		(json_int_t)o->cancelled, "cancel_refused",
		(json_int_t)o->cancel_refused);
}

static void
json_summary(const struct lg_options *opt, const struct lg_catalogue *cat,
	     const struct lg_stats *st, const struct lg_counts *all)
{
	json_t *ops = json_object();
	json_t *root;

	for (int op = 0; op < LG_NOPS; op++)
		json_object_set_new(ops, lg_op_name(op),
				    json_counts(&st->op[op]));
	root = json_pack(
		"{so s{ss ss ss} so so so s{sI sI sI ss}}", "run",
		json_run(opt, st, all), "targets", "products",
		opt->url[LG_PRODUCTS], "inventory", opt->url[LG_INVENTORY],
		"orders", opt->url[LG_ORDERS], "requests", json_counts(all),
		"operations", ops, "orders", json_orders(&st->orders),
		"catalogue", "found", (json_int_t)cat->found, "seeded",
		(json_int_t)cat->seeded, "orderable",
		(json_int_t)cat->n_orderable, "currency", cat->currency);
	if (root != NULL)
		json_dumpf(root, stdout,
			   JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	fputc('\n', stdout);
	json_decref(root);
}

void
lg_report_summary(const struct lg_options *opt, const struct lg_catalogue *cat,
		  const struct lg_stats *st)
{
	struct lg_counts all;

	lg_stats_total(st, &all);
	if (opt->json)
		json_summary(opt, cat, st, &all);
	else
		text_summary(opt, cat, st, &all);
	fflush(stdout);
	if (all.status[429] > 0)
		fprintf(stderr,
			"loadgen: %llu answers were 429: the services"
			" limit each client (RATE_LIMIT, 600/minute unless"
			" set); for load, start them with RATE_LIMIT=off\n",
			all.status[429]);
}
