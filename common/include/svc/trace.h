/*
 * svc/trace.h - W3C Trace Context (traceparent) for requests and events:
 * parsing and validating an incoming header, and making the context of
 * this hop - the caller's trace id (or a new one when there is none, or
 * it is malformed: a bad header starts a new trace, it never fails a
 * request) with a span id of our own. The resulting header travels on
 * outbound HTTP calls and in the outbox, so one order's events share the
 * trace of the request that caused them. This is not span export.
 */
#ifndef SVC_TRACE_H
#define SVC_TRACE_H

#include <stdbool.h>

#define SVC_TRACE_ID_LEN    32 /* hex digits */
#define SVC_SPAN_ID_LEN	    16
#define SVC_TRACEPARENT_LEN 55 /* "00-<32>-<16>-<2>" */

struct svc_trace {
	char trace_id[SVC_TRACE_ID_LEN + 1];
	char span_id[SVC_SPAN_ID_LEN + 1];
	unsigned char flags; /* bit 0: sampled */
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

#endif
