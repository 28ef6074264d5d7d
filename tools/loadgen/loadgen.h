/*
 * loadgen.h - the parts of build/loadgen and what they share: the options
 * (options.c), the catalogue found or made before the clock starts
 * (setup.c), the open-loop engine (run.c), the numbers it keeps (stats.c)
 * and how they are shown (report.c). Private to tools/loadgen/; not part of
 * libsvc. docs/load.md says what the tool does and why it is built so.
 *
 * Invariants the engine keeps and the summary relies on:
 *  1. Slot i (from 0) is due at t0 + (i + 1) / rate, and is considered
 *     only once its time has come and only up to the end of the run, so by
 *     any moment t there have been at most rate * (t - t0) slots: never
 *     more requests than asked, at any point of the run or over all of it.
 *  2. Every slot is either started (one request) or missed (busy: the
 *     in-flight cap was reached; late: the generator itself got to it more
 *     than LG_LATE_MS after its time). A missed slot is never sent later.
 *  3. Latency is measured from the slot's due time, not from when the
 *     request went out, so a late start shows as latency instead of being
 *     hidden (coordinated omission).
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "svc/util.h"

/* Exit codes: a run that happened, a failure, a usage error. */
#define LG_OK	  0
#define LG_EFAIL  1
#define LG_EUSAGE 2

/* A slot the generator reaches later than this is missed, not sent. */
#define LG_LATE_MS 100
/* Status reads of one placed order, at most; one check-after apart. */
#define LG_CHECK_READS 3
/* Products read from the catalogue at most. */
#define LG_MAX_PRODUCTS 1000
/* Items an order may hold at most (--items). */
#define LG_MAX_ITEMS 10

/*
 * The operations. The first three are drawn from the mix; the last two
 * follow from orders placed: each placed order is read back (check) and a
 * share of those is cancelled.
 */
enum lg_op {
	LG_BROWSE, /* GET /api/v1/products?limit= */
	LG_READ,   /* GET /api/v1/products/{id} */
	LG_ORDER,  /* POST /api/v1/orders with an Idempotency-Key */
	LG_CHECK,  /* GET /api/v1/orders/{id}: is it confirmed? */
	LG_CANCEL, /* POST /api/v1/orders/{id}/cancel */
	LG_NOPS
};
#define LG_MIXED 3 /* browse, read, order: the ones the mix weighs */

/* "browse", "read", ...: the names in flags, output and JSON. */
const char *lg_op_name(enum lg_op op);

enum lg_target { LG_PRODUCTS, LG_INVENTORY, LG_ORDERS, LG_NTARGETS };

/* "products", "inventory", "orders". */
const char *lg_target_name(enum lg_target t);

struct lg_options {
	double rate;		    /* requests per second, > 0 */
	long long duration_ms;	    /* 0: until SIGINT or SIGTERM */
	unsigned mix[LG_MIXED];	    /* weights of browse, read, order */
	unsigned cancel_pct;	    /* share of read-back orders cancelled */
	unsigned list_limit;	    /* ?limit= of browse */
	unsigned max_items;	    /* distinct products per order, 1.. */
	unsigned max_quantity;	    /* units per item, 1.. */
	long long check_after_ms;   /* placed -> first status read */
	unsigned max_inflight;	    /* requests in flight at most */
	long long timeout_ms;	    /* per request; also the final drain */
	unsigned seed;		    /* products to create before the run */
	long long stock;	    /* on_hand of each one created */
	char url[LG_NTARGETS][256]; /* base URLs, no trailing '/' */
	char *token;		    /* admin token (new), or NULL */
	char *record;		    /* --record's file (new), or NULL */
	bool json;		    /* summary as JSON on stdout */
	bool quiet;		    /* no live lines */
	bool allow_remote;	    /* targets other than loopback */
};

/*
 * Fills opt from argv (and LOADGEN_TOKEN), defaults first. Returns LG_OK;
 * LG_EUSAGE with a one-line message naming the flag in err; or -1 for
 * --help (the caller prints lg_options_usage()). opt owns what it holds
 * afterwards, whatever the result: lg_options_cleanup() frees it.
 */
int lg_options_parse(struct lg_options *opt, int argc, char **argv, char *err,
		     size_t errlen);
void lg_options_cleanup(struct lg_options *opt);
void lg_options_usage(FILE *out);

/*
 * Parses "500ms", "30s", "2m", "1h" or a plain number of seconds (a
 * fraction allowed) into milliseconds. Returns 0, or -1 when text is none
 * of those or the value is negative or beyond a week.
 */
int lg_parse_duration(const char *text, long long *ms);

/*
 * Whether the URL's host is a loopback address: localhost, 127.0.0.0/8 or
 * ::1. Names are not resolved: one that merely resolves to 127.0.0.1 is
 * not loopback here.
 */
bool lg_url_is_loopback(const char *url);

/* ---- the catalogue (setup.c) ------------------------------------------ */

struct lg_product {
	char id[SVC_UUID_LEN + 1];
	char currency[4];
	bool available; /* as products said when listed */
	bool seeded;	/* made by this run */
};

struct lg_catalogue {
	struct lg_product *v; /* every product found or made: reads */
	size_t n, cap;
	size_t *orderable; /* indices into v: what orders are made of */
	size_t n_orderable;
	size_t found, seeded;
	char currency[4]; /* the orderable products' currency */
	/* products' RateLimit-Limit: the per-client burst; -1: no limit */
	long ratelimit;
};

/*
 * Before the run: checks that the three services are ready, lists the
 * products (up to LG_MAX_PRODUCTS), creates opt->seed more with stock when
 * asked, and picks the ones orders use - the seeded ones, or else every
 * available product of the most common currency. Returns LG_OK, or
 * LG_EFAIL / LG_EUSAGE with a one-line message in err. cat is the
 * caller's; lg_catalogue_cleanup() frees what it holds in every case.
 */
int lg_setup(const struct lg_options *opt, struct lg_catalogue *cat, char *err,
	     size_t errlen);
void lg_catalogue_cleanup(struct lg_catalogue *cat);

/* ---- the numbers (stats.c) -------------------------------------------- */

/*
 * A latency histogram of log-linear buckets, as HdrHistogram lays them
 * out: values in microseconds, exact below 32, then 32 buckets per power
 * of two (at most 3 % wide), up to 2^36 us (19 hours; longer is counted
 * there). Fixed size, no allocation: percentiles without sorting.
 */
#define LG_HIST_SUB_BITS 5
#define LG_HIST_MAX_EXP	 35
#define LG_HIST_BUCKETS                                                        \
	((LG_HIST_MAX_EXP - LG_HIST_SUB_BITS + 2) << LG_HIST_SUB_BITS)

struct lg_hist {
	unsigned long long count;
	unsigned long long sum_us;
	long long max_us;
	unsigned long long n[LG_HIST_BUCKETS];
};

void lg_hist_add(struct lg_hist *h, long long us);
void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from);
/*
 * The value at or below which pct percent of the values lie (0 < pct <=
 * 100), as the highest value of its bucket, never above the largest value
 * recorded; 0 when empty.
 */
long long lg_hist_pct(const struct lg_hist *h, double pct);

#define LG_STATUS_MAX 600 /* HTTP status codes counted: 0..599 */

/* The requests of one operation (or of one second, all operations). */
struct lg_counts {
	unsigned long long started;
	unsigned long long answered; /* an HTTP answer, whatever its status */
	unsigned long long errors;   /* no answer: refused, reset, timed out */
	unsigned long long timeouts; /* of errors, the ones that timed out */
	unsigned long long unfinished; /* still in flight when the run ended */
	unsigned long long status[LG_STATUS_MAX];
	struct lg_hist latency; /* of answered requests, from the slot's time */
};

/* Answers of status class c (2 for 2xx, ...) in cnt. */
unsigned long long lg_counts_class(const struct lg_counts *cnt, int c);

/* What became of the orders placed. */
struct lg_orders {
	unsigned long long placed;	   /* 200/201 with an order id */
	unsigned long long failed;	   /* any other answer, or none */
	unsigned long long confirmed;	   /* read back confirmed */
	unsigned long long rejected;	   /* read back rejected */
	unsigned long long pending;	   /* still pending at the last read */
	unsigned long long cancelled;	   /* cancel answered 200 cancelled */
	unsigned long long cancel_refused; /* cancel answered otherwise */
};

struct lg_stats {
	struct lg_counts op[LG_NOPS];
	struct lg_counts second; /* this second so far, all operations */
	struct lg_orders orders;
	unsigned long long scheduled;	/* slots whose time came */
	unsigned long long missed_busy; /* at the in-flight cap */
	unsigned long long missed_late; /* reached > LG_LATE_MS late */
	unsigned long long second_missed;
	double elapsed_s; /* from the first slot until starting stopped */
	double drain_s;	  /* then waiting for what was in flight */
	bool interrupted; /* by SIGINT or SIGTERM */
	/* for the live line: its second, and in flight at its end */
	unsigned second_index;
	unsigned inflight;
};

/* An answer (status > 0) or a failure (status 0) of op, us after its slot. */
void lg_stats_answer(struct lg_stats *st, enum lg_op op, long status,
		     bool timed_out, long long us);
/* Starts the next second of the live line. */
void lg_stats_next_second(struct lg_stats *st);
/* Everything: the sum of the operations. */
void lg_stats_total(const struct lg_stats *st, struct lg_counts *out);
/* Placed orders not settled by a status read when the run ended. */
unsigned long long lg_orders_unchecked(const struct lg_orders *o);

/* ---- the run (run.c) -------------------------------------------------- */

/*
 * Runs the load: opt->rate slots a second for opt->duration_ms (or until
 * SIGINT/SIGTERM), then waits up to opt->timeout_ms for what is in flight
 * (a second signal stops the wait), calling lg_report_live() once a
 * second unless opt->quiet. st is zeroed first. Returns LG_OK, or LG_EFAIL
 * with a message in err when libcurl cannot be set up.
 */
int lg_run(const struct lg_options *opt, const struct lg_catalogue *cat,
	   struct lg_stats *st, char *err, size_t errlen);

/* ---- output (report.c) ------------------------------------------------ */

/*
 * The live line of the second that just ended, to stdout (stderr with
 * --json): rewritten in place on a terminal, one line each otherwise.
 */
void lg_report_live(const struct lg_options *opt, const struct lg_stats *st,
		    double second_s);
/* Ends the live output (a newline after an in-place line). */
void lg_report_live_end(const struct lg_options *opt);
/* The summary: text on stdout, or JSON on stdout with --json. */
void lg_report_summary(const struct lg_options *opt,
		       const struct lg_catalogue *cat,
		       const struct lg_stats *st);

#endif
