/*
 * run.c - the open-loop engine: one thread, one libcurl multi handle, and
 * a schedule of slots, rate a second, each of which becomes one request
 * or is counted as missed (loadgen.h, invariants 1-3). Not the setup
 * (setup.c) nor the output (report.c).
 *
 * What a slot becomes: a cancel that is owed, else the status read of an
 * order whose time has come, else browse, read or order drawn from the
 * mix. So the reads that find out whether orders were confirmed, and the
 * cancels, are inside the rate, never on top of it. Each placed order is
 * read back check-after after its placement, again each check-after while
 * it is pending, LG_CHECK_READS times at most; a share (--cancel) of those
 * read back confirmed or still pending is then cancelled.
 *
 * The queue of orders to read back is first in, first out with one delay
 * for all, so its head is always the first due; it is bounded
 * (CHECK_QUEUE): an order placed while it is full is never read back and
 * ends as unchecked in the summary.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen.h"

#define CHECK_QUEUE  (1u << 16)
#define CANCEL_QUEUE (1u << 12)
#define ANSWER_MAX   (64u << 10) /* of an answer that is read */
#define CUSTOMERS    64
#define NS_PER_MS    1000000LL
#define NS_PER_S     1000000000LL

/* SIGINT/SIGTERM seen: the first stops the slots, the next the drain. */
static volatile sig_atomic_t signals;

static void
on_signal(int sig)
{
	(void)sig;
	signals++;
}

/* An order placed: to be read back, or cancelled. */
struct pending {
	char id[SVC_UUID_LEN + 1];
	long long due_ns;
	int reads; /* status reads so far */
};

struct ring {
	struct pending *v;
	size_t cap, head, len;
};

/* One request; max_inflight of them, reused. */
struct xfer {
	CURL *easy; /* made on first use, kept: its settings are reset */
	struct curl_slist *headers;
	enum lg_op op;
	bool busy; /* in the multi handle */
	long long due_ns;
	struct pending order; /* check and cancel: which order */
	char *answer;	      /* kept for order, check and cancel */
	size_t answer_len, answer_cap;
	char url[320];
	char body[1024];
	struct xfer *next_free;
};

struct engine {
	const struct lg_options *opt;
	const struct lg_catalogue *cat;
	struct lg_stats *st;
	CURLM *multi;
	struct xfer *xfers; /* max_inflight */
	struct xfer *free;
	struct ring checks, cancels;
	long long t0, end;		/* ns; end 0: until a signal */
	long long last_tick, next_tick; /* the live line's second */
	unsigned long long slot;	/* the next slot's number */
	unsigned long long orders_sent;
	unsigned mix_sum;
	char run_id[9]; /* in Idempotency-Keys */
	char customers[CUSTOMERS][SVC_UUID_LEN + 1];
	FILE *record; /* --record, or NULL */
};

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Uniform in [0, n): the mix needs speed and spread, not secrecy. */
static unsigned
below(unsigned n)
{
	unsigned r = (unsigned)(svc_random_unit() * n);

	return r < n ? r : n - 1;
}

static bool
ring_push(struct ring *r, const struct pending *p)
{
	if (r->len == r->cap)
		return false;
	r->v[(r->head + r->len) % r->cap] = *p;
	r->len++;
	return true;
}

static void
ring_pop(struct ring *r, struct pending *out)
{
	*out = r->v[r->head];
	r->head = (r->head + 1) % r->cap;
	r->len--;
}

/* ---- what a slot sends ------------------------------------------------- */

static enum lg_op
pick_mixed(struct engine *e)
{
	unsigned r = below(e->mix_sum);

	for (int op = 0; op < LG_MIXED; op++) {
		if (r < e->opt->mix[op])
			return (enum lg_op)op;
		r -= e->opt->mix[op];
	}
	return LG_READ;
}

/* Owed cancels first, then due status reads, then the mix. */
static enum lg_op
choose(struct engine *e, long long now, struct pending *order)
{
	if (e->cancels.len > 0) {
		ring_pop(&e->cancels, order);
		return LG_CANCEL;
	}
	if (e->checks.len > 0 && e->checks.v[e->checks.head].due_ns <= now) {
		ring_pop(&e->checks, order);
		return LG_CHECK;
	}
	return pick_mixed(e);
}

/* n distinct indices into the orderable products. */
static void
pick_distinct(struct engine *e, unsigned n, unsigned *out)
{
	for (unsigned i = 0; i < n; i++) {
		bool again;

		do {
			out[i] = below((unsigned)e->cat->n_orderable);
			again = false;
			for (unsigned j = 0; j < i; j++)
				again |= out[j] == out[i];
		} while (again);
	}
}

/* POST /api/v1/orders: 1 to --items products, 1 to --quantity each. */
static void
order_request(struct engine *e, struct xfer *x)
{
	const struct lg_catalogue *cat = e->cat;
	unsigned n = 1 + below(e->opt->max_items), picked[LG_MAX_ITEMS];
	size_t len, size = sizeof(x->body);
	char key[96];

	if (n > cat->n_orderable)
		n = (unsigned)cat->n_orderable;
	pick_distinct(e, n, picked);
	len = (size_t)snprintf(x->body, size,
			       "{\"customer_id\":\"%s\","
			       "\"items\":[",
			       e->customers[below(CUSTOMERS)]);
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(
			x->body + len, size - len,
			"%s{\"product_id\":\"%s\",\"quantity\":%u}",
			i > 0 ? "," : "", cat->v[cat->orderable[picked[i]]].id,
			1 + below(e->opt->max_quantity));
	snprintf(x->body + len, size - len, "]}");
	snprintf(key, sizeof(key), "Idempotency-Key: loadgen-%s-%llu",
		 e->run_id, ++e->orders_sent);
	x->headers = curl_slist_append(x->headers, key);
	snprintf(x->url, sizeof(x->url), "%s/api/v1/orders",
		 e->opt->url[LG_ORDERS]);
}

static size_t
on_answer(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	/* past the cap the answer no longer parses: counted as failed */
	if (!x->busy || x->op < LG_ORDER || x->answer_len + len > ANSWER_MAX)
		return len;
	if (x->answer_len + len > x->answer_cap) {
		size_t cap = x->answer_len + len + 1024;
		char *grown = realloc(x->answer, cap);

		if (grown == NULL)
			return 0;
		x->answer = grown;
		x->answer_cap = cap;
	}
	memcpy(x->answer + x->answer_len, data, len);
	x->answer_len += len;
	return len;
}

/* The URL, body and headers of x->op, on a reset handle. */
static void
prepare(struct engine *e, struct xfer *x)
{
	const struct lg_options *o = e->opt;
	CURL *h = x->easy;

	curl_easy_reset(h);
	x->answer_len = 0;
	x->body[0] = '\0';
	x->headers = NULL;
	switch (x->op) {
	case LG_BROWSE:
		snprintf(x->url, sizeof(x->url), "%s/api/v1/products?limit=%u",
			 o->url[LG_PRODUCTS], o->list_limit);
		break;
	case LG_READ:
		snprintf(x->url, sizeof(x->url), "%s/api/v1/products/%s",
			 o->url[LG_PRODUCTS],
			 e->cat->v[below((unsigned)e->cat->n)].id);
		break;
	case LG_ORDER:
		order_request(e, x);
		break;
	case LG_CHECK:
		snprintf(x->url, sizeof(x->url), "%s/api/v1/orders/%s",
			 o->url[LG_ORDERS], x->order.id);
		break;
	default:
		snprintf(x->url, sizeof(x->url), "%s/api/v1/orders/%s/cancel",
			 o->url[LG_ORDERS], x->order.id);
		snprintf(x->body, sizeof(x->body), "{}");
		break;
	}
	if (x->body[0] != '\0') {
		x->headers = curl_slist_append(
			x->headers, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
	}
	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "microshop-loadgen");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
}

/* ---- slots ------------------------------------------------------------- */

static void
release(struct engine *e, struct xfer *x)
{
	curl_multi_remove_handle(e->multi, x->easy);
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	x->busy = false;
	x->next_free = e->free;
	e->free = x;
	e->st->inflight--;
}

/* Slot `due` becomes a request on a free transfer. */
static void
start(struct engine *e, long long due, long long now)
{
	struct xfer *x = e->free;

	e->free = x->next_free;
	if (x->easy == NULL)
		x->easy = curl_easy_init();
	x->op = choose(e, now, &x->order);
	x->due_ns = due;
	x->busy = true;
	e->st->op[x->op].started++;
	e->st->second.started++;
	e->st->inflight++;
	if (x->easy == NULL) {
		lg_stats_answer(e->st, x->op, 0, false, 0);
		x->busy = false;
		x->next_free = e->free;
		e->free = x;
		e->st->inflight--;
		return;
	}
	prepare(e, x);
	if (curl_multi_add_handle(e->multi, x->easy) != CURLM_OK) {
		lg_stats_answer(e->st, x->op, 0, false, 0);
		release(e, x);
	}
}

static long long
slot_due(const struct engine *e, unsigned long long i)
{
	return e->t0 +
	       (long long)((double)(i + 1) * (double)NS_PER_S / e->opt->rate);
}

/*
 * Starts, or counts as missed, every slot whose time has come (invariants
 * 1 and 2). Returns false once the next slot lies past the end of the run.
 */
static bool
start_due(struct engine *e)
{
	long long now = now_ns(), due;

	while ((due = slot_due(e, e->slot)) <= now &&
	       (e->end == 0 || due <= e->end)) {
		e->slot++;
		e->st->scheduled++;
		if (now - due > LG_LATE_MS * NS_PER_MS) {
			e->st->missed_late++;
			e->st->second_missed++;
		} else if (e->free == NULL) {
			e->st->missed_busy++;
			e->st->second_missed++;
		} else {
			start(e, due, now);
		}
	}
	return e->end == 0 || due <= e->end;
}

/* ---- answers ----------------------------------------------------------- */

static void
maybe_cancel(struct engine *e, const struct pending *order)
{
	if (below(100) < e->opt->cancel_pct)
		ring_push(&e->cancels, order);
}

static void
placed(struct engine *e, json_t *answer, long long now)
{
	const char *id = json_string_value(json_object_get(answer, "id"));
	struct pending p = { .due_ns =
				     now + e->opt->check_after_ms * NS_PER_MS };

	if (!svc_uuid_valid(id)) {
		e->st->orders.failed++;
		return;
	}
	e->st->orders.placed++;
	memcpy(p.id, id, sizeof(p.id));
	ring_push(&e->checks, &p);
}

/* A status read: settled, or read again check-after later. */
static void
checked(struct engine *e, struct pending *order, json_t *answer, long long now)
{
	const char *s = json_string_value(json_object_get(answer, "status"));
	bool pending = s == NULL || strcmp(s, "pending") == 0;

	if (s != NULL && strcmp(s, "confirmed") == 0) {
		e->st->orders.confirmed++;
		maybe_cancel(e, order);
	} else if (s != NULL && strcmp(s, "rejected") == 0) {
		e->st->orders.rejected++;
	} else if (pending && ++order->reads < LG_CHECK_READS) {
		order->due_ns = now + e->opt->check_after_ms * NS_PER_MS;
		ring_push(&e->checks, order);
	} else if (s != NULL && pending) {
		e->st->orders.pending++;
		maybe_cancel(e, order);
	}
	/* a read that failed every time leaves the order unchecked */
}

/*
 * --record: "order|cancel <unix ms> <status, 0: none> <order id | ->" for
 * an order's or a cancel's answer, as it comes.
 */
static void
record(struct engine *e, enum lg_op op, long status, const char *id)
{
	struct timespec ts;

	if (e->record == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(e->record, "%s %lld %ld %s\n", lg_op_name(op),
		(long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, status,
		svc_uuid_valid(id) ? id : "-");
}

/* What an answer to an order, a status read or a cancel leads to. */
static void
follow_up(struct engine *e, struct xfer *x, long status)
{
	json_t *answer = NULL;
	long long now = now_ns();

	if (x->op < LG_ORDER)
		return;
	if (status >= 200 && status < 300)
		answer = json_loadb(x->answer, x->answer_len, 0, NULL);
	if (x->op != LG_CHECK)
		record(e, x->op, status,
		       x->op == LG_ORDER ? json_string_value(json_object_get(
						   answer, "id"))
					 : x->order.id);
	if (x->op == LG_ORDER) {
		placed(e, answer, now);
	} else if (x->op == LG_CHECK) {
		checked(e, &x->order, answer, now);
	} else {
		const char *s =
			json_string_value(json_object_get(answer, "status"));

		if (s != NULL && strcmp(s, "cancelled") == 0)
			e->st->orders.cancelled++;
		else
			e->st->orders.cancel_refused++;
	}
	json_decref(answer);
}

static void
finish(struct engine *e, struct xfer *x, CURLcode result)
{
	long status = 0;
	long long us = (now_ns() - x->due_ns) / 1000;

	if (result == CURLE_OK)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	lg_stats_answer(e->st, x->op, status,
			result == CURLE_OPERATION_TIMEDOUT, us);
	follow_up(e, x, status);
	release(e, x);
}

static void
collect(struct engine *e)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
		CURLcode result = m->data.result;
		char *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &x);
		finish(e, (struct xfer *)x, result);
	}
}

/* ---- the loop ---------------------------------------------------------- */

static void
tick(struct engine *e, long long now)
{
	if (now < e->next_tick)
		return;
	if (!e->opt->quiet)
		lg_report_live(e->opt, e->st,
			       (double)(now - e->last_tick) / NS_PER_S);
	lg_stats_next_second(e->st);
	e->last_tick = now;
	e->next_tick += NS_PER_S;
	if (e->next_tick <= now)
		e->next_tick = now + NS_PER_S;
}

/*
 * Waits for I/O until `until` or the end of the live line's second,
 * whichever is first, then moves the transfers on and collects the
 * finished ones. A transfer just added sets libcurl's timer to now, so it
 * never waits for the next slot to go out.
 */
static void
step(struct engine *e, long long until)
{
	long long now = now_ns(), wait_ns;
	long curl_ms = -1;
	int running, wait_ms;

	if (e->next_tick < until)
		until = e->next_tick;
	wait_ns = until - now;
	/* rounded up: a slot is started at its time or just after */
	wait_ms =
		wait_ns <= 0 ? 0 : (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
	curl_multi_timeout(e->multi, &curl_ms);
	if (curl_ms >= 0 && curl_ms < wait_ms)
		wait_ms = (int)curl_ms;
	curl_multi_poll(e->multi, NULL, 0, wait_ms, NULL);
	curl_multi_perform(e->multi, &running);
	collect(e);
}

/* What was in flight when the drain ended is counted, not waited for. */
static void
abandon(struct engine *e)
{
	for (unsigned i = 0; i < e->opt->max_inflight; i++) {
		struct xfer *x = &e->xfers[i];

		if (!x->busy)
			continue;
		e->st->op[x->op].unfinished++;
		release(e, x);
	}
}

static void
drain(struct engine *e)
{
	long long deadline = now_ns() + e->opt->timeout_ms * NS_PER_MS;
	long long from = now_ns();
	sig_atomic_t seen = signals;

	tick(e, now_ns()); /* the run's last second, when it ended one */
	while (e->st->inflight > 0 && signals == seen && now_ns() < deadline) {
		step(e, deadline);
		tick(e, now_ns());
	}
	collect(e);
	abandon(e);
	e->st->drain_s = (double)(now_ns() - from) / NS_PER_S;
}

/*
 * --record's file, opened with what the run will use: "customer <id>" and
 * "product <id>" (the ones orders are made of) lines first.
 */
static int
open_record(struct engine *e)
{
	e->record = fopen(e->opt->record, "w");
	if (e->record == NULL)
		return -1;
	setvbuf(e->record, NULL, _IOLBF, 0);
	fprintf(e->record, "run %s\n", e->run_id);
	for (int i = 0; i < CUSTOMERS; i++)
		fprintf(e->record, "customer %s\n", e->customers[i]);
	for (size_t i = 0; i < e->cat->n_orderable; i++)
		fprintf(e->record, "product %s\n",
			e->cat->v[e->cat->orderable[i]].id);
	return 0;
}

static int
engine_init(struct engine *e, const struct lg_options *opt,
	    const struct lg_catalogue *cat, struct lg_stats *st)
{
	char uuid[SVC_UUID_LEN + 1];

	memset(e, 0, sizeof(*e));
	e->opt = opt;
	e->cat = cat;
	e->st = st;
	e->multi = curl_multi_init();
	e->xfers = calloc(opt->max_inflight, sizeof(*e->xfers));
	e->checks.v = calloc(CHECK_QUEUE, sizeof(struct pending));
	e->checks.cap = CHECK_QUEUE;
	e->cancels.v = calloc(CANCEL_QUEUE, sizeof(struct pending));
	e->cancels.cap = CANCEL_QUEUE;
	if (e->multi == NULL || e->xfers == NULL || e->checks.v == NULL ||
	    e->cancels.v == NULL)
		return -1;
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
			  (long)opt->max_inflight);
	for (unsigned i = opt->max_inflight; i-- > 0;) {
		e->xfers[i].next_free = e->free;
		e->free = &e->xfers[i];
	}
	for (int i = 0; i < LG_MIXED; i++)
		e->mix_sum += opt->mix[i];
	for (int i = 0; i < CUSTOMERS; i++)
		svc_uuid_v4(e->customers[i]);
	svc_uuid_v4(uuid);
	memcpy(e->run_id, uuid, 8);
	return 0;
}

static void
engine_cleanup(struct engine *e)
{
	for (unsigned i = 0; e->xfers != NULL && i < e->opt->max_inflight;
	     i++) {
		curl_easy_cleanup(e->xfers[i].easy);
		free(e->xfers[i].answer);
	}
	if (e->multi != NULL)
		curl_multi_cleanup(e->multi);
	free(e->xfers);
	free(e->checks.v);
	free(e->cancels.v);
	if (e->record != NULL)
		fclose(e->record);
}

static void
catch_signals(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a signal cuts the wait in curl_multi_poll short */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int
lg_run(const struct lg_options *opt, const struct lg_catalogue *cat,
       struct lg_stats *st, char *err, size_t errlen)
{
	struct engine e;
	long long stop;

	memset(st, 0, sizeof(*st));
	if (engine_init(&e, opt, cat, st) != 0) {
		engine_cleanup(&e);
		snprintf(err, errlen, "cannot set up libcurl's multi handle");
		return LG_EFAIL;
	}
	if (opt->record != NULL && open_record(&e) != 0) {
		snprintf(err, errlen, "--record: cannot write %s: %s",
			 opt->record, strerror(errno));
		engine_cleanup(&e);
		return LG_EUSAGE;
	}
	signals = 0;
	catch_signals(on_signal);
	e.t0 = now_ns();
	e.last_tick = e.t0;
	e.next_tick = e.t0 + NS_PER_S;
	e.end = opt->duration_ms > 0 ? e.t0 + opt->duration_ms * NS_PER_MS : 0;
	/* a slot due at a second's boundary belongs to the second it ends */
	while (signals == 0 && start_due(&e)) {
		tick(&e, now_ns());
		step(&e, slot_due(&e, e.slot));
	}
	stop = now_ns();
	st->interrupted = signals > 0;
	st->elapsed_s = st->interrupted || e.end == 0
				? (double)(stop - e.t0) / NS_PER_S
				: (double)opt->duration_ms / 1000;
	drain(&e);
	catch_signals(SIG_DFL);
	engine_cleanup(&e);
	return LG_OK;
}
