/*
 * metrics.c - the metric registry and the Prometheus text exposition.
 *
 * Each family keeps its series in an open-addressing hash table of atomic
 * pointers, sized twice its cap so a probe always ends at an empty slot.
 * A lookup hashes the label values and probes without a lock; a miss takes
 * the family's mutex, probes again, and publishes a new series with a
 * release store, after which every reader sees it complete. Series are
 * never removed, so a pointer once returned stays valid and a caller may
 * keep it. Values are plain atomics: counters and histogram buckets are
 * integers, gauges and histogram sums are doubles kept as their bits and
 * updated by compare-and-swap. A scrape walks the series in creation order
 * (a dense array beside the table) and takes no lock an update needs; it
 * holds the registry's lock only against registrations. This file knows
 * nothing of HTTP; app.c serves the text.
 */
#include "svc/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "svc/err.h"

enum kind {
	KIND_COUNTER,
	KIND_GAUGE,
	KIND_HISTOGRAM,
	KIND_COUNTER_FN,
	KIND_GAUGE_FN,
};

struct svc_metric_series {
	struct svc_metric *family;
	uint64_t hash;
	const char *values[SVC_METRICS_MAX_LABELS]; /* into text */
	size_t lens[SVC_METRICS_MAX_LABELS];
	char *text;
	_Atomic uint64_t value; /* counter count, or a gauge's double bits */
	_Atomic uint64_t sum;	/* histogram: the sum's double bits */
	_Atomic uint64_t buckets[]; /* histogram: per bucket, +Inf last */
};

struct svc_metric {
	struct svc_metric *next;
	struct svc_metrics *reg;
	enum kind kind;
	char *name, *help;
	int nlabels;
	char *labels[SVC_METRICS_MAX_LABELS];
	double bounds[SVC_METRICS_MAX_BUCKETS];
	int nbounds;
	double (*fn)(void *arg);
	void *arg;

	int cap;
	size_t mask; /* table size - 1 */
	_Atomic(struct svc_metric_series *) *table;
	struct svc_metric_series **order; /* creation order, cap entries */
	atomic_int nseries;
	_Atomic(struct svc_metric_series *) other;
	pthread_mutex_t lock;
};

struct svc_metrics {
	pthread_mutex_t lock;
	struct svc_metric *head, *tail;
};

const double svc_metrics_latency_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const int svc_metrics_latency_nbuckets =
	(int)(sizeof(svc_metrics_latency_buckets) /
	      sizeof(svc_metrics_latency_buckets[0]));

static struct svc_metrics global = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *const other_values[SVC_METRICS_MAX_LABELS] = {
	"other", "other", "other", "other"
};

struct svc_metrics *
svc_metrics_global(void)
{
	return &global;
}

struct svc_metrics *
svc_metrics_new(void)
{
	struct svc_metrics *reg = calloc(1, sizeof(*reg));

	if (reg == NULL)
		return NULL;
	if (pthread_mutex_init(&reg->lock, NULL) != 0) {
		free(reg);
		return NULL;
	}
	return reg;
}

static void
series_free(struct svc_metric_series *s)
{
	if (s == NULL)
		return;
	free(s->text);
	free(s);
}

static void
family_free(struct svc_metric *m)
{
	int n;

	if (m == NULL)
		return;
	n = atomic_load(&m->nseries);
	for (int i = 0; m->order != NULL && i < n; i++)
		series_free(m->order[i]);
	series_free(atomic_load(&m->other));
	free(m->order);
	free((void *)m->table);
	for (int i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	free(m->name);
	free(m->help);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void
svc_metrics_free(struct svc_metrics *reg)
{
	if (reg == NULL || reg == &global)
		return;
	while (reg->head != NULL) {
		struct svc_metric *m = reg->head;

		reg->head = m->next;
		family_free(m);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* --- registration --- */

static bool
name_ok(const char *s, bool colon)
{
	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s != '\0'; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' ||
		      (colon && c == ':')))
			return false;
	}
	return true;
}

/* Family fields from the arguments; false when one is invalid. */
static bool
family_fill(struct svc_metric *m, const char *name, const char *help,
	    const char *const *labels, int cap)
{
	size_t size = 1;

	m->name = strdup(name);
	m->help = strdup(help != NULL ? help : "");
	if (m->name == NULL || m->help == NULL)
		return false;
	for (int i = 0; labels != NULL && labels[i] != NULL; i++) {
		if (i == SVC_METRICS_MAX_LABELS || !name_ok(labels[i], false) ||
		    strncmp(labels[i], "__", 2) == 0 ||
		    (m->kind == KIND_HISTOGRAM && strcmp(labels[i], "le") == 0))
			return false;
		m->labels[i] = strdup(labels[i]);
		if (m->labels[i] == NULL)
			return false;
		m->nlabels = i + 1;
	}
	if (m->kind == KIND_COUNTER_FN || m->kind == KIND_GAUGE_FN)
		return true;
	m->cap = cap > 0 ? cap : SVC_METRICS_DEFAULT_CAP;
	while (size < (size_t)m->cap * 2)
		size *= 2;
	m->mask = size - 1;
	m->table = calloc(size, sizeof(*m->table));
	m->order = calloc((size_t)m->cap, sizeof(*m->order));
	return m->table != NULL && m->order != NULL;
}

/*
 * The family called name in reg, registering proto's when there is none.
 * Takes proto (freed when not used).
 */
static struct svc_metric *
family_add(struct svc_metrics *reg, struct svc_metric *proto)
{
	struct svc_metric *found = NULL;

	pthread_mutex_lock(&reg->lock);
	for (struct svc_metric *m = reg->head; m != NULL; m = m->next) {
		if (strcmp(m->name, proto->name) == 0) {
			found = m->kind == proto->kind ? m : NULL;
			family_free(proto);
			pthread_mutex_unlock(&reg->lock);
			return found;
		}
	}
	proto->reg = reg;
	if (reg->tail != NULL)
		reg->tail->next = proto;
	else
		reg->head = proto;
	reg->tail = proto;
	pthread_mutex_unlock(&reg->lock);
	return proto;
}

static struct svc_metric *
family_new(struct svc_metrics *reg, enum kind kind, const char *name,
	   const char *help, const char *const *labels, int cap,
	   const double *bounds, int nbounds)
{
	struct svc_metric *m;

	if (!name_ok(name, true))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->kind = kind;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return NULL;
	}
	if (kind == KIND_HISTOGRAM) {
		if (bounds == NULL || nbounds < 1 ||
		    nbounds > SVC_METRICS_MAX_BUCKETS)
			goto fail;
		for (int i = 0; i < nbounds; i++) {
			if (!isfinite(bounds[i]) ||
			    (i > 0 && bounds[i] <= bounds[i - 1]))
				goto fail;
			m->bounds[i] = bounds[i];
		}
		m->nbounds = nbounds;
	}
	if (!family_fill(m, name, help, labels, cap))
		goto fail;
	return family_add(reg != NULL ? reg : &global, m);
fail:
	family_free(m);
	return NULL;
}

struct svc_metric *
svc_metrics_counter(struct svc_metrics *reg, const char *name, const char *help,
		    const char *const *labels, int cap)
{
	return family_new(reg, KIND_COUNTER, name, help, labels, cap, NULL, 0);
}

struct svc_metric *
svc_metrics_gauge(struct svc_metrics *reg, const char *name, const char *help,
		  const char *const *labels, int cap)
{
	return family_new(reg, KIND_GAUGE, name, help, labels, cap, NULL, 0);
}

struct svc_metric *
svc_metrics_histogram(struct svc_metrics *reg, const char *name,
		      const char *help, const char *const *labels,
		      const double *bounds, int nbounds, int cap)
{
	return family_new(reg, KIND_HISTOGRAM, name, help, labels, cap, bounds,
			  nbounds);
}

static struct svc_metric *
fn_new(struct svc_metrics *reg, enum kind kind, const char *name,
       const char *help, double (*fn)(void *arg), void *arg)
{
	struct svc_metric *m;

	if (fn == NULL || !name_ok(name, true))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->kind = kind;
	m->fn = fn;
	m->arg = arg;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return NULL;
	}
	if (!family_fill(m, name, help, NULL, 0)) {
		family_free(m);
		return NULL;
	}
	return family_add(reg != NULL ? reg : &global, m);
}

struct svc_metric *
svc_metrics_gauge_fn(struct svc_metrics *reg, const char *name,
		     const char *help, double (*fn)(void *arg), void *arg)
{
	return fn_new(reg, KIND_GAUGE_FN, name, help, fn, arg);
}

struct svc_metric *
svc_metrics_counter_fn(struct svc_metrics *reg, const char *name,
		       const char *help, double (*fn)(void *arg), void *arg)
{
	return fn_new(reg, KIND_COUNTER_FN, name, help, fn, arg);
}

/* --- series --- */

/*
 * FNV-1a over the values, each followed by a byte no UTF-8 text has, and
 * their lengths on the way; a value over SVC_METRICS_MAX_VALUE becomes
 * "other". One pass over each value: this runs on every update.
 */
static uint64_t
hash_values(const char **v, size_t *len, int n)
{
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)v[i];
		uint64_t start = h;
		size_t l = 0;

		for (; p[l] != '\0'; l++) {
			if (l == SVC_METRICS_MAX_VALUE) {
				v[i] = "other";
				p = (const unsigned char *)v[i];
				h = start;
				l = 0;
				for (; p[l] != '\0'; l++)
					h = (h ^ p[l]) * 1099511628211ULL;
				break;
			}
			h = (h ^ p[l]) * 1099511628211ULL;
		}
		len[i] = l;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static bool
same_values(const struct svc_metric_series *s, const char *const *v,
	    const size_t *len, int n)
{
	for (int i = 0; i < n; i++)
		if (s->lens[i] != len[i] || memcmp(s->values[i], v[i], len[i]))
			return false;
	return true;
}

/* A new series for values (n of them); not yet visible to anyone. */
static struct svc_metric_series *
series_new(struct svc_metric *m, const char *const *v, uint64_t hash)
{
	size_t nb = m->kind == KIND_HISTOGRAM ? (size_t)m->nbounds + 1 : 0;
	struct svc_metric_series *s =
		calloc(1, sizeof(*s) + nb * sizeof(s->buckets[0]));
	size_t len = 1;
	char *p;

	if (s == NULL)
		return NULL;
	for (int i = 0; i < m->nlabels; i++)
		len += strlen(v[i]) + 1;
	s->text = malloc(len);
	if (s->text == NULL) {
		free(s);
		return NULL;
	}
	p = s->text;
	for (int i = 0; i < m->nlabels; i++) {
		size_t l = strlen(v[i]);

		memcpy(p, v[i], l + 1);
		s->values[i] = p;
		s->lens[i] = l;
		p += l + 1;
	}
	s->family = m;
	s->hash = hash;
	return s;
}

/* Lock-free probe; *slot gets the empty slot where it would go. */
static struct svc_metric_series *
probe(struct svc_metric *m, const char *const *v, const size_t *len,
      uint64_t hash, size_t *slot)
{
	for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
		struct svc_metric_series *s = atomic_load_explicit(
			&m->table[i], memory_order_acquire);

		if (s == NULL) {
			*slot = i;
			return NULL;
		}
		if (s->hash == hash && same_values(s, v, len, m->nlabels))
			return s;
	}
}

/* Under m->lock: the series every overflowing label set shares. */
static struct svc_metric_series *
other_series(struct svc_metric *m)
{
	struct svc_metric_series *s = atomic_load(&m->other);

	if (s == NULL) {
		s = series_new(m, other_values, 0);
		if (s != NULL)
			atomic_store_explicit(&m->other, s,
					      memory_order_release);
	}
	return s;
}

/* The slow path: creates the series under the family's lock. */
static struct svc_metric_series *
series_create(struct svc_metric *m, const char *const *v, const size_t *len,
	      uint64_t hash)
{
	struct svc_metric_series *s;
	size_t slot;
	int n;

	pthread_mutex_lock(&m->lock);
	s = probe(m, v, len, hash, &slot);
	if (s != NULL)
		goto out;
	n = atomic_load_explicit(&m->nseries, memory_order_relaxed);
	if (n >= m->cap) {
		s = other_series(m);
		goto out;
	}
	s = series_new(m, v, hash);
	if (s == NULL)
		goto out;
	m->order[n] = s;
	atomic_store_explicit(&m->table[slot], s, memory_order_release);
	atomic_store_explicit(&m->nseries, n + 1, memory_order_release);
out:
	pthread_mutex_unlock(&m->lock);
	return s;
}

struct svc_metric_series *
svc_metrics_series(struct svc_metric *m, const char *const *values)
{
	const char *v[SVC_METRICS_MAX_LABELS];
	size_t len[SVC_METRICS_MAX_LABELS];
	struct svc_metric_series *s;
	uint64_t hash;
	size_t slot;

	if (m == NULL || m->table == NULL)
		return NULL;
	for (int i = 0; i < m->nlabels; i++)
		v[i] = values != NULL && values[i] != NULL ? values[i] : "";
	hash = hash_values(v, len, m->nlabels);
	s = probe(m, v, len, hash, &slot);
	if (s != NULL)
		return s;
	if (atomic_load_explicit(&m->nseries, memory_order_acquire) >= m->cap) {
		s = atomic_load_explicit(&m->other, memory_order_acquire);
		if (s != NULL)
			return s;
	}
	return series_create(m, v, len, hash);
}

/* --- updates --- */

static uint64_t
bits_of(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double
double_of(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static void
add_double(_Atomic uint64_t *a, double delta)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		a, &old, bits_of(double_of(old) + delta), memory_order_relaxed,
		memory_order_relaxed))
		;
}

void
svc_metrics_inc(struct svc_metric_series *s)
{
	if (s != NULL && s->family->kind == KIND_COUNTER)
		atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

void
svc_metrics_add(struct svc_metric_series *s, uint64_t n)
{
	if (s != NULL && s->family->kind == KIND_COUNTER)
		atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void
svc_metrics_set(struct svc_metric_series *s, double v)
{
	if (s != NULL && s->family->kind == KIND_GAUGE)
		atomic_store_explicit(&s->value, bits_of(v),
				      memory_order_relaxed);
}

void
svc_metrics_gauge_add(struct svc_metric_series *s, double delta)
{
	if (s != NULL && s->family->kind == KIND_GAUGE)
		add_double(&s->value, delta);
}

void
svc_metrics_observe(struct svc_metric_series *s, double v)
{
	const struct svc_metric *m;
	int i = 0;

	if (s == NULL || isnan(v) || s->family->kind != KIND_HISTOGRAM)
		return;
	m = s->family;
	while (i < m->nbounds && v > m->bounds[i])
		i++;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	add_double(&s->sum, v);
}

static uint64_t
histogram_count(const struct svc_metric_series *s)
{
	uint64_t n = 0;

	for (int i = 0; i <= s->family->nbounds; i++)
		n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
	return n;
}

double
svc_metrics_value(const struct svc_metric_series *s)
{
	if (s == NULL)
		return 0;
	switch (s->family->kind) {
	case KIND_COUNTER:
		return (double)atomic_load(&s->value);
	case KIND_HISTOGRAM:
		return (double)histogram_count(s);
	default:
		return double_of(atomic_load(&s->value));
	}
}

/* --- exposition --- */

struct buf {
	char *data;
	size_t len, cap;
	bool oom;
};

static void
buf_grow(struct buf *b, size_t need)
{
	size_t cap = b->cap > 0 ? b->cap : 4096;
	char *p;

	while (cap < b->len + need + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->oom = true;
		return;
	}
	b->data = p;
	b->cap = cap;
}

static void
buf_put(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap)
		buf_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* Escapes backslash and newline, and the double quote when quote is set. */
static void
buf_escaped(struct buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *rep = *s == '\\'	       ? "\\\\"
				  : *s == '\n'	       ? "\\n"
				  : quote && *s == '"' ? "\\\""
						       : NULL;

		if (rep == NULL)
			continue;
		buf_put(b, run, (size_t)(s - run));
		buf_str(b, rep);
		run = s + 1;
	}
	buf_put(b, run, (size_t)(s - run));
}

/*
 * The shortest text that reads back as d, without an exponent below 1e15;
 * +Inf, -Inf and NaN as Prometheus spells them.
 */
static void
format_double(char *out, size_t size, double d)
{
	if (isnan(d)) {
		snprintf(out, size, "NaN");
	} else if (isinf(d)) {
		snprintf(out, size, d > 0 ? "+Inf" : "-Inf");
	} else {
		const char *e;
		int exp;

		for (int prec = 1; prec <= 17; prec++) {
			snprintf(out, size, "%.*g", prec, d);
			if (strtod(out, NULL) == d)
				break;
		}
		/* 200000 rather than 2e+05, while the digits are exact. */
		e = strchr(out, 'e');
		exp = e != NULL ? atoi(e + 1) : -1;
		if (exp >= 0 && exp < 15)
			snprintf(out, size, "%.*g", exp + 1, d);
	}
}

static void
buf_double(struct buf *b, double d)
{
	char num[40];

	format_double(num, sizeof(num), d);
	buf_str(b, num);
}

static void
buf_u64(struct buf *b, uint64_t u)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)u);
	buf_str(b, num);
}

/*
 * name{labels[,le="..."]} - the labels of s and, for a bucket, le. The
 * braces are left out when there is nothing in them.
 */
static void
write_labels(struct buf *b, const struct svc_metric *m,
	     const struct svc_metric_series *s, const char *le)
{
	if (m->nlabels == 0 && le == NULL)
		return;
	buf_str(b, "{");
	for (int i = 0; i < m->nlabels; i++) {
		if (i > 0)
			buf_str(b, ",");
		buf_str(b, m->labels[i]);
		buf_str(b, "=\"");
		buf_escaped(b, s->values[i], true);
		buf_str(b, "\"");
	}
	if (le != NULL) {
		if (m->nlabels > 0)
			buf_str(b, ",");
		buf_str(b, "le=\"");
		buf_str(b, le);
		buf_str(b, "\"");
	}
	buf_str(b, "}");
}

static void
write_sample(struct buf *b, const struct svc_metric *m, const char *suffix,
	     const struct svc_metric_series *s, const char *le)
{
	buf_str(b, m->name);
	buf_str(b, suffix);
	write_labels(b, m, s, le);
	buf_str(b, " ");
}

static void
write_histogram(struct buf *b, const struct svc_metric *m,
		const struct svc_metric_series *s)
{
	uint64_t cum = 0;
	char le[40];

	for (int i = 0; i <= m->nbounds; i++) {
		cum += atomic_load_explicit(&s->buckets[i],
					    memory_order_relaxed);
		if (i < m->nbounds)
			format_double(le, sizeof(le), m->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		write_sample(b, m, "_bucket", s, le);
		buf_u64(b, cum);
		buf_str(b, "\n");
	}
	write_sample(b, m, "_sum", s, NULL);
	buf_double(b, double_of(atomic_load_explicit(&s->sum,
						     memory_order_relaxed)));
	buf_str(b, "\n");
	write_sample(b, m, "_count", s, NULL);
	buf_u64(b, cum);
	buf_str(b, "\n");
}

static void
write_series(struct buf *b, const struct svc_metric *m,
	     const struct svc_metric_series *s)
{
	switch (m->kind) {
	case KIND_COUNTER:
		write_sample(b, m, "", s, NULL);
		buf_u64(b,
			atomic_load_explicit(&s->value, memory_order_relaxed));
		buf_str(b, "\n");
		break;
	case KIND_GAUGE:
		write_sample(b, m, "", s, NULL);
		buf_double(b, double_of(atomic_load_explicit(
				      &s->value, memory_order_relaxed)));
		buf_str(b, "\n");
		break;
	default:
		write_histogram(b, m, s);
		break;
	}
}

static const char *
type_name(enum kind k)
{
	switch (k) {
	case KIND_COUNTER:
	case KIND_COUNTER_FN:
		return "counter";
	case KIND_HISTOGRAM:
		return "histogram";
	default:
		return "gauge";
	}
}

static void
write_family(struct buf *b, struct svc_metric *m)
{
	struct svc_metric_series *other;
	int n;

	buf_str(b, "# HELP ");
	buf_str(b, m->name);
	buf_str(b, " ");
	buf_escaped(b, m->help, false);
	buf_str(b, "\n# TYPE ");
	buf_str(b, m->name);
	buf_str(b, " ");
	buf_str(b, type_name(m->kind));
	buf_str(b, "\n");
	if (m->fn != NULL) {
		double v = m->fn(m->arg);

		if (!isnan(v)) {
			buf_str(b, m->name);
			buf_str(b, " ");
			buf_double(b, v);
			buf_str(b, "\n");
		}
		return;
	}
	n = atomic_load_explicit(&m->nseries, memory_order_acquire);
	for (int i = 0; i < n; i++)
		write_series(b, m, m->order[i]);
	other = atomic_load_explicit(&m->other, memory_order_acquire);
	if (other != NULL)
		write_series(b, m, other);
}

char *
svc_metrics_render(struct svc_metrics *reg, size_t *len)
{
	struct buf b = { 0 };

	if (reg == NULL)
		reg = &global;
	buf_grow(&b, 0);
	pthread_mutex_lock(&reg->lock);
	for (struct svc_metric *m = reg->head; m != NULL; m = m->next)
		write_family(&b, m);
	pthread_mutex_unlock(&reg->lock);
	if (b.oom) {
		free(b.data);
		return NULL;
	}
	if (len != NULL)
		*len = b.len;
	return b.data;
}

/* --- process metrics (Linux /proc) --- */

/* A "Key:   N kB" line of /proc/self/status, in bytes; NaN when absent. */
static double
status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	size_t klen = strlen(key);
	double v = NAN;
	char line[256];

	if (f == NULL)
		return NAN;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtod(line + klen + 1, NULL) * 1024.0;
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * Fields of /proc/self/stat after the command (which may hold spaces and
 * parentheses, so parsing starts at the last ')'): field numbers as in
 * proc(5), 14 utime, 15 stime, 22 starttime.
 */
static bool
stat_fields(unsigned long long *utime, unsigned long long *stime,
	    unsigned long long *start)
{
	FILE *f = fopen("/proc/self/stat", "re");
	char line[1024], *p, *save = NULL;
	int field = 3;
	bool ok = false;

	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) != NULL &&
	    (p = strrchr(line, ')')) != NULL) {
		p += 2; /* ") " */
		for (char *tok = strtok_r(p, " ", &save); tok != NULL;
		     tok = strtok_r(NULL, " ", &save), field++) {
			if (field == 14)
				*utime = strtoull(tok, NULL, 10);
			else if (field == 15)
				*stime = strtoull(tok, NULL, 10);
			else if (field == 22) {
				*start = strtoull(tok, NULL, 10);
				ok = true;
				break;
			}
		}
	}
	fclose(f);
	return ok;
}

static double
process_rss(void *arg)
{
	(void)arg;
	return status_kb("VmRSS");
}

static double
process_vsize(void *arg)
{
	(void)arg;
	return status_kb("VmSize");
}

static double
process_cpu(void *arg)
{
	unsigned long long u = 0, s = 0, start = 0;
	long hz = sysconf(_SC_CLK_TCK);

	(void)arg;
	if (hz <= 0 || !stat_fields(&u, &s, &start))
		return NAN;
	return (double)(u + s) / (double)hz;
}

static double
process_fds(void *arg)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	(void)arg;
	if (d == NULL)
		return NAN;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static double
process_max_fds(void *arg)
{
	struct rlimit rl;

	(void)arg;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return NAN;
	return rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
}

/* Boot time (btime of /proc/stat) plus the start in clock ticks. */
static double start_time = NAN;

static double
process_start(void *arg)
{
	(void)arg;
	return start_time;
}

static void
find_start_time(void)
{
	unsigned long long u, s, start;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	double btime = NAN;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "btime ", 6) == 0)
			btime = strtod(line + 6, NULL);
	if (f != NULL)
		fclose(f);
	if (hz > 0 && !isnan(btime) && stat_fields(&u, &s, &start))
		start_time = btime + (double)start / (double)hz;
}

int
svc_metrics_process(struct svc_metrics *reg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	bool ok = true;

	pthread_once(&once, find_start_time);
	ok &= svc_metrics_gauge_fn(reg, "process_resident_memory_bytes",
				   "Resident memory size in bytes.",
				   process_rss, NULL) != NULL;
	ok &= svc_metrics_gauge_fn(reg, "process_virtual_memory_bytes",
				   "Virtual memory size in bytes.",
				   process_vsize, NULL) != NULL;
	ok &= svc_metrics_gauge_fn(reg, "process_open_fds",
				   "Number of open file descriptors.",
				   process_fds, NULL) != NULL;
	ok &= svc_metrics_gauge_fn(reg, "process_max_fds",
				   "Maximum number of open file descriptors.",
				   process_max_fds, NULL) != NULL;
	ok &= svc_metrics_gauge_fn(
		      reg, "process_start_time_seconds",
		      "Start time of the process since unix epoch in seconds.",
		      process_start, NULL) != NULL;
	ok &= svc_metrics_counter_fn(
		      reg, "process_cpu_seconds_total",
		      "Total user and system CPU time spent in seconds.",
		      process_cpu, NULL) != NULL;
	return ok ? SVC_OK : SVC_ENOMEM;
}
