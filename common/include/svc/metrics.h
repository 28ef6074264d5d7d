/*
 * svc/metrics.h - counters, gauges and histograms with labels, exposed in
 * the Prometheus text format 0.0.4 (GET /metrics).
 *
 * A metric family (a name, its help text, its label names) is registered
 * once, usually at start-up; registering the same name and type again
 * returns the same family, so a module may register lazily. One label set
 * of a family is a series: look it up with svc_metrics_series() - a
 * lock-free hash probe, so the result may also be cached by the caller -
 * and update it with atomics. A scrape reads the atomics and never blocks
 * an update; only the first use of a new label set takes the family's
 * lock. Each family holds at most `cap` series: label sets beyond that
 * fold into one series whose every label is "other", and a label value
 * longer than SVC_METRICS_MAX_VALUE is itself "other", so a metric never
 * grows without bound. Series live as long as the registry. Callback
 * families (svc_metrics_gauge_fn, svc_metrics_counter_fn) have no series:
 * their one value is computed at scrape time. This is not a push client
 * and knows nothing of HTTP; app.c serves svc_metrics_render() as
 * /metrics.
 *
 *	static struct svc_metric *jobs;
 *	jobs = svc_metrics_counter(NULL, "jobs_total", "Jobs run.",
 *				   (const char *[]){ "kind", NULL }, 0);
 *	svc_metrics_inc(svc_metrics_series(jobs, (const char *[]){ "nightly"
 *}));
 */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define SVC_METRICS_MAX_LABELS	4   /* label names per family */
#define SVC_METRICS_MAX_VALUE	128 /* bytes of a label value */
#define SVC_METRICS_DEFAULT_CAP 64  /* series per family when cap is 0 */
#define SVC_METRICS_MAX_BUCKETS 32  /* histogram bounds, +Inf excluded */

/* The content type of svc_metrics_render()'s output. */
#define SVC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A registry: families in registration order. */
struct svc_metrics;
/* A family: name, help, type, label names, and its series. */
struct svc_metric;
/* One label set of a family and its value. */
struct svc_metric_series;

/* The process-wide registry that /metrics serves (never NULL). */
struct svc_metrics *svc_metrics_global(void);

/*
 * A registry of one's own (new; svc_metrics_free), for tests. Freeing it
 * frees its families and series: nobody may hold them afterwards.
 */
struct svc_metrics *svc_metrics_new(void);
void svc_metrics_free(struct svc_metrics *reg);

/*
 * Registers a family in reg (NULL: the global registry) and returns it
 * (borrowed: owned by the registry). name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, help is any text (both copied). labels is a
 * NULL-terminated list of at most SVC_METRICS_MAX_LABELS names (copied;
 * NULL for none); "le" is reserved for histograms. cap bounds the series
 * (0: SVC_METRICS_DEFAULT_CAP). A second registration of the same name
 * returns the first family if the type matches, else NULL. NULL also when
 * an argument is invalid or memory runs out; every function below takes
 * a NULL family or series as a no-op, so a failed registration costs
 * data, never a crash.
 */
struct svc_metric *svc_metrics_counter(struct svc_metrics *reg,
				       const char *name, const char *help,
				       const char *const *labels, int cap);
struct svc_metric *svc_metrics_gauge(struct svc_metrics *reg, const char *name,
				     const char *help,
				     const char *const *labels, int cap);
/*
 * bounds: nbounds strictly increasing finite upper bounds (copied; at most
 * SVC_METRICS_MAX_BUCKETS); the +Inf bucket is implied.
 */
struct svc_metric *svc_metrics_histogram(struct svc_metrics *reg,
					 const char *name, const char *help,
					 const char *const *labels,
					 const double *bounds, int nbounds,
					 int cap);

/*
 * Families without labels whose value fn(arg) computes at each scrape,
 * e.g. from /proc or from a cache another thread keeps. fn runs on the
 * scraping thread and must be cheap and thread-safe; a NaN return leaves
 * the sample out of that scrape. arg is borrowed for the registry's life.
 */
struct svc_metric *svc_metrics_gauge_fn(struct svc_metrics *reg,
					const char *name, const char *help,
					double (*fn)(void *arg), void *arg);
struct svc_metric *svc_metrics_counter_fn(struct svc_metrics *reg,
					  const char *name, const char *help,
					  double (*fn)(void *arg), void *arg);

/*
 * The series of m for values (one per label name, in order; borrowed for
 * the call; NULL entries count as ""; values may be NULL for a family
 * without labels). Lock-free once the label set exists; the first use of a
 * label set allocates it under the family's lock. A family at its cap
 * answers with the "other" series. The result is owned by the registry
 * and stays valid as long as it; NULL only when m is NULL, a callback
 * family, or memory ran out.
 */
struct svc_metric_series *svc_metrics_series(struct svc_metric *m,
					     const char *const *values);

/*
 * Updates. Each does nothing for NULL or for a series of another type (a
 * gauge is never incremented by mistake into garbage).
 */

/* Counters: adds 1, or n. */
void svc_metrics_inc(struct svc_metric_series *s);
void svc_metrics_add(struct svc_metric_series *s, uint64_t n);

/* Gauges: sets the value, or adds delta (negative to subtract). */
void svc_metrics_set(struct svc_metric_series *s, double v);
void svc_metrics_gauge_add(struct svc_metric_series *s, double delta);

/* Histograms: counts v in its bucket and adds it to the sum. */
void svc_metrics_observe(struct svc_metric_series *s, double v);

/*
 * Current values, for tests and health checks: a counter's count, a
 * gauge's value, a histogram's count of observations; 0 for NULL.
 */
double svc_metrics_value(const struct svc_metric_series *s);

/*
 * Writes every family of reg (NULL: global) in the Prometheus text format
 * 0.0.4 - HELP and TYPE lines, escaped label values, histograms as
 * cumulative _bucket{le} (ending with +Inf), _sum and _count - into a new
 * malloc'd, NUL-terminated buffer; *len (may be NULL) gets its length.
 * Families without a sample still get their HELP and TYPE. Returns NULL
 * when out of memory.
 */
char *svc_metrics_render(struct svc_metrics *reg, size_t *len);

/*
 * Registers the process metrics in reg (NULL: global), read from
 * /proc/self at scrape time: process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds and process_cpu_seconds_total. Returns 0 or
 * SVC_ENOMEM.
 */
int svc_metrics_process(struct svc_metrics *reg);

/* The buckets of every *_duration_seconds histogram, in seconds. */
extern const double svc_metrics_latency_buckets[];
extern const int svc_metrics_latency_nbuckets;

#endif
