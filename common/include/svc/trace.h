/*
 * svc/trace.h - W3C Trace Context (traceparent) for requests and events:
 * parsing and validating an incoming header, and making the context of
 * this hop - the caller's trace id (or a new one when there is none, or
 * it is malformed: a bad header starts a new trace, it never fails a
 * request) with a span id of our own. The resulting header travels on
 * outbound HTTP calls and in the outbox, so one order's events share the
 * trace of the request that caused them. Spans (a request served, a call
 * made, an event consumed) are queued without blocking and sent as
 * OTLP/HTTP JSON by one background thread when an endpoint is configured.
 */
#ifndef SVC_TRACE_H
#define SVC_TRACE_H

#include <stdbool.h>

#include "svc/err.h"

#define SVC_TRACE_ID_LEN    32 /* hex digits */
#define SVC_SPAN_ID_LEN	    16
#define SVC_TRACEPARENT_LEN 55 /* "00-<32>-<16>-<2>" */

struct svc_trace {
	char trace_id[SVC_TRACE_ID_LEN + 1];
	char span_id[SVC_SPAN_ID_LEN + 1];
	char parent_id[SVC_SPAN_ID_LEN + 1]; /* "" when a new trace */
	unsigned char flags;		     /* bit 0: sampled */
};

/*
 * Whether s is a valid traceparent: lower-case hex fields of widths
 * 2-32-16-2, version not ff, ids not all zero; version 00 ends there, a
 * later version may carry more printable "-" fields (ignored).
 */
bool svc_trace_valid(const char *s);

/*
 * The context of a new span whose parent is the traceparent header
 * parent (may be NULL or malformed: then a new trace, sampled). Always
 * fills *out.
 */
void svc_trace_start(const char *parent, struct svc_trace *out);

/* "00-<trace id>-<span id>-<flags>" into out (SVC_TRACEPARENT_LEN + 1). */
void svc_trace_format(const struct svc_trace *t,
		      char out[SVC_TRACEPARENT_LEN + 1]);

/* --- spans and their export --- */

enum svc_span_kind {
	SVC_SPAN_INTERNAL = 1, /* OTLP's SpanKind numbers */
	SVC_SPAN_SERVER = 2,
	SVC_SPAN_CLIENT = 3,
	SVC_SPAN_PRODUCER = 4,
	SVC_SPAN_CONSUMER = 5,
};

#define SVC_SPAN_NAME_MAX 96
#define SVC_SPAN_ATTRS	  6
#define SVC_SPAN_ATTR_KEY 32
#define SVC_SPAN_ATTR_VAL 120

/*
 * One operation: a request served, a call made, an event consumed. Lives
 * in the caller's storage (a request, a stack frame); svc_span_end copies
 * it into the export queue.
 */
struct svc_span {
	struct svc_trace ctx; /* ctx.span_id is this span's */
	enum svc_span_kind kind;
	char name[SVC_SPAN_NAME_MAX];
	long long start_ns, end_ns; /* since the epoch */
	bool error;
	int nattrs;
	struct {
		char key[SVC_SPAN_ATTR_KEY];
		char value[SVC_SPAN_ATTR_VAL];
		bool is_int;
		long long ival;
	} attrs[SVC_SPAN_ATTRS];
};

/*
 * Starts a span under the traceparent parent (NULL or malformed: a new
 * trace) with its own span id, now. name may be NULL (set it later with
 * svc_span_name). Works whether or not export is on.
 */
void svc_span_begin(struct svc_span *s, const char *parent,
		    enum svc_span_kind kind, const char *name);
void svc_span_name(struct svc_span *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Attributes beyond SVC_SPAN_ATTRS, and over-long values, are cut. */
void svc_span_attr_str(struct svc_span *s, const char *key, const char *v);
void svc_span_attr_int(struct svc_span *s, const char *key, long long v);
/*
 * Ends the span now and queues a copy for export, when export is on and
 * the trace is sampled; never blocks: a full queue drops the span (and
 * counts it).
 */
void svc_span_end(struct svc_span *s, bool error);

struct svc_trace_export_config {
	const char *url;      /* the OTLP/HTTP traces URL (".../v1/traces") */
	const char *service;  /* resource service.name */
	const char *version;  /* resource service.version */
	int queue_size;	      /* spans held at most */
	int batch_size;	      /* spans per request at most */
	long long delay_ms;   /* longest wait before sending what is queued */
	long long timeout_ms; /* per export request */
};

/*
 * Reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL) or
 * OTEL_EXPORTER_OTLP_ENDPOINT (a base, "/v1/traces" appended),
 * OTEL_SERVICE_NAME, OTEL_BSP_MAX_QUEUE_SIZE (2048),
 * OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512), OTEL_BSP_SCHEDULE_DELAY (5s) and
 * OTEL_EXPORTER_OTLP_TIMEOUT (10s) into cfg; url NULL when export is off.
 * Strings point into the configuration (or the url buffer, 512 bytes).
 */
void svc_trace_export_config_read(struct svc_trace_export_config *cfg,
				  const char *default_service, char url[512]);

/*
 * Starts the exporter thread: it sends queued spans as OTLP/HTTP JSON,
 * in batches, off the request path; a failed send drops its batch (and
 * counts it). Returns 0, SVC_EINVAL (no url) or SVC_ENOMEM.
 */
int svc_trace_export_start(const struct svc_trace_export_config *cfg);
/* Sends what is queued until deadline_ms (svc_now_ms clock), stops the
 * thread, frees the queue. A no-op when export is off. */
void svc_trace_export_stop(long long deadline_ms);

/* Spans exported, and dropped (queue full or a failed send), so far. */
unsigned long long svc_trace_exported_total(void);
unsigned long long svc_trace_dropped_total(void);

#endif
