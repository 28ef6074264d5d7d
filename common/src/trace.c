/*
 * trace.c - W3C Trace Context and span export (see svc/trace.h): validating
 * traceparent headers, starting spans under them, and one exporter thread
 * that drains a bounded ring of finished spans into OTLP/HTTP JSON
 * requests (libcurl, its own handle). Ending a span takes a mutex for a
 * copy and never waits on I/O; a full ring drops the span. Ids come from
 * svc_random_bytes; an id that came out all zero (invalid in the spec) is
 * drawn again. This is not the HTTP client (client.c), which only carries
 * the header.
 */
#include "svc/trace.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/util.h"

static bool
lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool
svc_trace_valid(const char *s)
{
	static const int width[] = { 2, 32, 16, 2 };
	bool nonzero[4] = { false, false, false, false };
	const char *p = s;

	if (s == NULL)
		return false;
	for (int f = 0; f < 4; f++) {
		for (int i = 0; i < width[f]; i++, p++) {
			if (!lower_hex(*p))
				return false;
			if (*p != '0')
				nonzero[f] = true;
		}
		if (f < 3 && *p++ != '-')
			return false;
	}
	if (strncmp(s, "ff", 2) == 0 || !nonzero[1] || !nonzero[2])
		return false;
	if (*p == '\0')
		return true;
	if (strncmp(s, "00", 2) == 0 || *p != '-' || strlen(p) > 256)
		return false;
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* n random bytes as 2n lower-case hex digits, never all zero. */
static void
random_hex(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char b[16];
	bool zero = true;

	while (zero) {
		if (svc_random_bytes(b, n) != SVC_OK)
			memset(b, 0x5a, n); /* unreachable in practice */
		for (size_t i = 0; i < n; i++)
			zero = zero && b[i] == 0;
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void
svc_trace_start(const char *parent, struct svc_trace *out)
{
	if (svc_trace_valid(parent)) {
		unsigned flags = 0;

		memcpy(out->trace_id, parent + 3, SVC_TRACE_ID_LEN);
		out->trace_id[SVC_TRACE_ID_LEN] = '\0';
		memcpy(out->parent_id, parent + 3 + SVC_TRACE_ID_LEN + 1,
		       SVC_SPAN_ID_LEN);
		out->parent_id[SVC_SPAN_ID_LEN] = '\0';
		sscanf(parent + 3 + SVC_TRACE_ID_LEN + 1 + SVC_SPAN_ID_LEN + 1,
		       "%2x", &flags);
		out->flags = (unsigned char)flags;
	} else {
		random_hex(out->trace_id, SVC_TRACE_ID_LEN / 2);
		out->parent_id[0] = '\0';
		out->flags = 0x01;
	}
	random_hex(out->span_id, SVC_SPAN_ID_LEN / 2);
}

void
svc_trace_format(const struct svc_trace *t, char out[SVC_TRACEPARENT_LEN + 1])
{
	snprintf(out, SVC_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", t->trace_id,
		 t->span_id, t->flags);
}

/* --- spans --- */

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
svc_span_begin(struct svc_span *s, const char *parent, enum svc_span_kind kind,
	       const char *name)
{
	svc_trace_start(parent, &s->ctx);
	s->kind = kind;
	snprintf(s->name, sizeof(s->name), "%s", name != NULL ? name : "");
	s->start_ns = now_ns();
	s->end_ns = 0;
	s->error = false;
	s->nattrs = 0;
}

void
svc_span_name(struct svc_span *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->name, sizeof(s->name), fmt, ap);
	va_end(ap);
}

void
svc_span_attr_str(struct svc_span *s, const char *key, const char *v)
{
	if (s->nattrs == SVC_SPAN_ATTRS || v == NULL)
		return;
	snprintf(s->attrs[s->nattrs].key, SVC_SPAN_ATTR_KEY, "%s", key);
	snprintf(s->attrs[s->nattrs].value, SVC_SPAN_ATTR_VAL, "%s", v);
	s->attrs[s->nattrs++].is_int = false;
}

void
svc_span_attr_int(struct svc_span *s, const char *key, long long v)
{
	if (s->nattrs == SVC_SPAN_ATTRS)
		return;
	snprintf(s->attrs[s->nattrs].key, SVC_SPAN_ATTR_KEY, "%s", key);
	s->attrs[s->nattrs].ival = v;
	s->attrs[s->nattrs++].is_int = true;
}

/* --- export --- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool on, stopping;
	struct svc_span *ring;
	size_t cap, head, count; /* spans ring[head .. head+count) */
	size_t batch;
	long long delay_ms, timeout_ms, deadline;
	char *url, *service, *version;
	pthread_t thread;
	atomic_ullong exported, dropped;
} ex = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

void
svc_span_end(struct svc_span *s, bool error)
{
	s->end_ns = now_ns();
	s->error = error;
	if (!(s->ctx.flags & 0x01))
		return;
	pthread_mutex_lock(&ex.lock);
	if (!ex.on || ex.stopping) {
		pthread_mutex_unlock(&ex.lock);
		return;
	}
	if (ex.count == ex.cap) {
		atomic_fetch_add(&ex.dropped, 1);
	} else {
		ex.ring[(ex.head + ex.count) % ex.cap] = *s;
		if (++ex.count == ex.batch)
			pthread_cond_signal(&ex.wake);
	}
	pthread_mutex_unlock(&ex.lock);
}

static json_t *
kv_str(const char *key, const char *value)
{
	return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue",
			 value);
}

static json_t *
span_json(const struct svc_span *s)
{
	char start[24], end[24];
	json_t *attrs = json_array(), *o;

	snprintf(start, sizeof(start), "%lld", s->start_ns);
	snprintf(end, sizeof(end), "%lld", s->end_ns);
	for (int i = 0; i < s->nattrs; i++) {
		char n[24];

		if (!s->attrs[i].is_int) {
			json_array_append_new(attrs, kv_str(s->attrs[i].key,
							    s->attrs[i].value));
			continue;
		}
		/* OTLP/JSON carries 64-bit integers as strings */
		snprintf(n, sizeof(n), "%lld", s->attrs[i].ival);
		json_array_append_new(attrs, json_pack("{s:s, s:{s:s}}", "key",
						       s->attrs[i].key, "value",
						       "intValue", n));
	}
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:{s:i}}", "traceId",
		      s->ctx.trace_id, "spanId", s->ctx.span_id, "name",
		      s->name[0] != '\0' ? s->name : "span", "kind",
		      (int)s->kind, "startTimeUnixNano", start,
		      "endTimeUnixNano", end, "attributes", attrs, "status",
		      "code", s->error ? 2 : 1);
	if (o != NULL && s->ctx.parent_id[0] != '\0')
		json_object_set_new(o, "parentSpanId",
				    json_string(s->ctx.parent_id));
	return o;
}

/* The ExportTraceServiceRequest for n spans, as JSON text (malloc'd). */
static char *
request_json(const struct svc_span *spans, size_t n)
{
	json_t *list = json_array(), *resource, *req;
	char *text;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, span_json(&spans[i]));
	resource = json_pack("{s:[o,o]}", "attributes",
			     kv_str("service.name", ex.service),
			     kv_str("service.version", ex.version));
	req = json_pack("{s:[{s:o, s:[{s:{s:s}, s:o}]}]}", "resourceSpans",
			"resource", resource, "scopeSpans", "scope", "name",
			"libsvc", "spans", list);
	text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	return text;
}

static size_t
discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

/* Sends one batch; false when it did not arrive (logged at most every
 * minute: a missing collector must not flood the log). */
static bool
send_batch(CURL *easy, const struct svc_span *spans, size_t n)
{
	static long long last_warned;
	struct curl_slist *h =
		curl_slist_append(NULL, "Content-Type: application/json");
	char *body = request_json(spans, n);
	long status = 0;
	CURLcode c = CURLE_OUT_OF_MEMORY;

	if (body != NULL && h != NULL) {
		curl_easy_reset(easy);
		curl_easy_setopt(easy, CURLOPT_URL, ex.url);
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)ex.timeout_ms);
		curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
		c = curl_easy_perform(easy);
		if (c == CURLE_OK)
			curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE,
					  &status);
	}
	curl_slist_free_all(h);
	free(body);
	if (c == CURLE_OK && status >= 200 && status < 300)
		return true;
	if (svc_now_ms() - last_warned >= 60000) {
		last_warned = svc_now_ms();
		svc_log(SVC_LOG_WARN, "trace export failed, spans dropped",
			SVC_LOG_STR("url", ex.url),
			SVC_LOG_STR("error", c == CURLE_OK
						     ? "unexpected status"
						     : curl_easy_strerror(c)),
			SVC_LOG_INT("status", status), SVC_LOG_END);
	}
	return false;
}

static void *
exporter_main(void *arg)
{
	CURL *easy = curl_easy_init();
	struct svc_span *batch = calloc(ex.batch, sizeof(*batch));

	(void)arg;
	pthread_mutex_lock(&ex.lock);
	while (easy != NULL && batch != NULL) {
		struct timespec until;
		long long wait_end = now_ns() / 1000000 + ex.delay_ms;
		size_t n;

		until.tv_sec = (time_t)(wait_end / 1000);
		until.tv_nsec = (long)(wait_end % 1000) * 1000000L;
		while (!ex.stopping && ex.count < ex.batch &&
		       pthread_cond_timedwait(&ex.wake, &ex.lock, &until) == 0)
			;
		if (ex.stopping &&
		    (ex.count == 0 || svc_now_ms() >= ex.deadline))
			break;
		n = ex.count < ex.batch ? ex.count : ex.batch;
		for (size_t i = 0; i < n; i++)
			batch[i] = ex.ring[(ex.head + i) % ex.cap];
		ex.head = (ex.head + n) % ex.cap;
		ex.count -= n;
		if (n == 0)
			continue;
		pthread_mutex_unlock(&ex.lock);
		if (send_batch(easy, batch, n))
			atomic_fetch_add(&ex.exported, n);
		else
			atomic_fetch_add(&ex.dropped, n);
		pthread_mutex_lock(&ex.lock);
	}
	atomic_fetch_add(&ex.dropped, ex.count);
	ex.count = 0;
	pthread_mutex_unlock(&ex.lock);
	free(batch);
	curl_easy_cleanup(easy);
	return NULL;
}

void
svc_trace_export_config_read(struct svc_trace_export_config *cfg,
			     const char *default_service, char url[512])
{
	const char *full = svc_config_get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	const char *base = svc_config_get("OTEL_EXPORTER_OTLP_ENDPOINT");

	memset(cfg, 0, sizeof(*cfg));
	if (full != NULL && full[0] != '\0') {
		snprintf(url, 512, "%s", full);
		cfg->url = url;
	} else if (base != NULL && base[0] != '\0') {
		size_t n = strlen(base);

		snprintf(url, 512, "%.*s/v1/traces",
			 (int)(n > 0 && base[n - 1] == '/' ? n - 1 : n), base);
		cfg->url = url;
	}
	if (cfg->url != NULL && strncmp(cfg->url, "http://", 7) != 0 &&
	    strncmp(cfg->url, "https://", 8) != 0)
		svc_config_fail("OTEL_EXPORTER_OTLP_ENDPOINT",
				"must be an http:// or https:// URL");
	cfg->service = svc_config_str("OTEL_SERVICE_NAME", default_service);
	cfg->queue_size = (int)svc_config_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048,
					      1, 1000000);
	cfg->batch_size = (int)svc_config_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
					      512, 1, 100000);
	cfg->delay_ms = svc_config_duration_ms("OTEL_BSP_SCHEDULE_DELAY", "5s",
					       1, 3600000);
	cfg->timeout_ms = svc_config_duration_ms("OTEL_EXPORTER_OTLP_TIMEOUT",
						 "10s", 1, 3600000);
}

static void
export_free(void)
{
	free(ex.ring);
	free(ex.url);
	free(ex.service);
	free(ex.version);
	ex.ring = NULL;
	ex.url = ex.service = ex.version = NULL;
}

int
svc_trace_export_start(const struct svc_trace_export_config *cfg)
{
	size_t cap = (size_t)(cfg->queue_size > 0 ? cfg->queue_size : 2048);

	if (cfg->url == NULL)
		return SVC_EINVAL;
	/* Reference-counted by libcurl; the stop undoes it. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return SVC_ENOMEM;
	/* calloc: the ring's pages are only touched as spans fill it */
	ex.ring = calloc(cap, sizeof(*ex.ring));
	ex.url = strdup(cfg->url);
	ex.service = strdup(cfg->service != NULL ? cfg->service : "svc");
	ex.version = strdup(cfg->version != NULL ? cfg->version : "");
	if (ex.ring == NULL || ex.url == NULL || ex.service == NULL ||
	    ex.version == NULL)
		goto fail;
	ex.cap = cap;
	ex.head = ex.count = 0;
	ex.batch = (size_t)(cfg->batch_size > 0 ? cfg->batch_size : 512);
	if (ex.batch > cap)
		ex.batch = cap;
	ex.delay_ms = cfg->delay_ms > 0 ? cfg->delay_ms : 5000;
	ex.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
	ex.stopping = false;
	if (pthread_create(&ex.thread, NULL, exporter_main, NULL) != 0)
		goto fail;
	pthread_mutex_lock(&ex.lock);
	ex.on = true;
	pthread_mutex_unlock(&ex.lock);
	svc_log(SVC_LOG_INFO, "trace export on", SVC_LOG_STR("url", ex.url),
		SVC_LOG_END);
	return SVC_OK;
fail:
	export_free();
	curl_global_cleanup();
	return SVC_ENOMEM;
}

void
svc_trace_export_stop(long long deadline_ms)
{
	pthread_mutex_lock(&ex.lock);
	if (!ex.on) {
		pthread_mutex_unlock(&ex.lock);
		return;
	}
	ex.stopping = true;
	ex.deadline = deadline_ms;
	pthread_cond_signal(&ex.wake);
	pthread_mutex_unlock(&ex.lock);
	pthread_join(ex.thread, NULL);
	pthread_mutex_lock(&ex.lock);
	ex.on = false;
	export_free();
	pthread_mutex_unlock(&ex.lock);
	curl_global_cleanup();
}

unsigned long long
svc_trace_exported_total(void)
{
	return atomic_load(&ex.exported);
}

unsigned long long
svc_trace_dropped_total(void)
{
	return atomic_load(&ex.dropped);
}
