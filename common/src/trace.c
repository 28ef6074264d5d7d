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
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/util.h"

static long long now_ns(void);

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

/*
 * Ids need to be unpredictable enough not to collide, not secret: a
 * per-thread xoshiro256** seeded from the CSPRNG once, instead of a
 * RAND_bytes call per id on every request.
 */
static _Thread_local uint64_t rng[4];
static _Thread_local bool rng_seeded;

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
next_random(void)
{
	uint64_t r, t;

	if (!rng_seeded) {
		if (svc_random_bytes(rng, sizeof(rng)) != SVC_OK)
			rng[0] = (uint64_t)now_ns() | 1; /* no entropy at all */
		rng_seeded = true;
	}
	r = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

/* n random bytes as 2n lower-case hex digits, never all zero. */
static void
random_hex(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned b;

		if (i % 8 == 0)
			do
				v = next_random();
			while (v == 0);
		b = (unsigned)(v & 0xff);
		v >>= 8;
		out[2 * i] = digits[b >> 4];
		out[2 * i + 1] = digits[b & 0xf];
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

/*
 * The export request is written straight into one growing buffer: at
 * thousands of spans a second, building a jansson tree for each costs
 * more than the request it describes.
 */
struct jbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
jb_lit(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t
utf8_seq(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4	  ? 4
		   : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		   : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
						  : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* s as a JSON string; invalid UTF-8 bytes become U+FFFD. */
static void
jb_str(struct jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	jb_put(b, "\"", 1);
	while (*p != '\0') {
		size_t run = 0, n;

		while (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		jb_put(b, (const char *)p, run);
		p += run;
		if (*p == '\0')
			break;
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p++ };

			jb_put(b, esc, 2);
		} else if (*p < 0x20) {
			char esc[6] = { '\\', 'u',	    '0',
					'0',  hex[*p >> 4], hex[*p & 0xf] };

			jb_put(b, esc, 6);
			p++;
		} else if ((n = utf8_seq(p)) > 0) {
			jb_put(b, (const char *)p, n);
			p += n;
		} else {
			jb_lit(b, "\xef\xbf\xbd");
			p++;
		}
	}
	jb_put(b, "\"", 1);
}

static void
jb_num(struct jbuf *b, long long v, bool quoted)
{
	char n[24];
	int len = snprintf(n, sizeof(n), quoted ? "\"%lld\"" : "%lld", v);

	jb_put(b, n, (size_t)len);
}

static void
jb_kv_str(struct jbuf *b, const char *key, const char *value)
{
	jb_lit(b, "{\"key\":");
	jb_str(b, key);
	jb_lit(b, ",\"value\":{\"stringValue\":");
	jb_str(b, value);
	jb_lit(b, "}}");
}

static void
jb_span(struct jbuf *b, const struct svc_span *s)
{
	jb_lit(b, "{\"traceId\":\"");
	jb_lit(b, s->ctx.trace_id);
	jb_lit(b, "\",\"spanId\":\"");
	jb_lit(b, s->ctx.span_id);
	if (s->ctx.parent_id[0] != '\0') {
		jb_lit(b, "\",\"parentSpanId\":\"");
		jb_lit(b, s->ctx.parent_id);
	}
	jb_lit(b, "\",\"name\":");
	jb_str(b, s->name[0] != '\0' ? s->name : "span");
	jb_lit(b, ",\"kind\":");
	jb_num(b, s->kind, false);
	jb_lit(b, ",\"startTimeUnixNano\":");
	jb_num(b, s->start_ns, true);
	jb_lit(b, ",\"endTimeUnixNano\":");
	jb_num(b, s->end_ns, true);
	jb_lit(b, ",\"attributes\":[");
	for (int i = 0; i < s->nattrs; i++) {
		if (i > 0)
			jb_lit(b, ",");
		if (!s->attrs[i].is_int) {
			jb_kv_str(b, s->attrs[i].key, s->attrs[i].value);
			continue;
		}
		/* OTLP/JSON carries 64-bit integers as strings */
		jb_lit(b, "{\"key\":");
		jb_str(b, s->attrs[i].key);
		jb_lit(b, ",\"value\":{\"intValue\":");
		jb_num(b, s->attrs[i].ival, true);
		jb_lit(b, "}}");
	}
	jb_lit(b, s->error ? "],\"status\":{\"code\":2}}"
			   : "],\"status\":{\"code\":1}}");
}

/* The ExportTraceServiceRequest for n spans, as JSON text (malloc'd). */
static char *
request_json(const struct svc_span *spans, size_t n)
{
	struct jbuf b = { 0 };

	jb_lit(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
	jb_kv_str(&b, "service.name", ex.service);
	jb_lit(&b, ",");
	jb_kv_str(&b, "service.version", ex.version);
	jb_lit(&b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"libsvc\"},"
		   "\"spans\":[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			jb_lit(&b, ",");
		jb_span(&b, &spans[i]);
	}
	jb_lit(&b, "]}]}]}");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
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
		char shown[512];

		svc_redact_url(ex.url, shown, sizeof(shown));
		svc_log(SVC_LOG_WARN, "trace export failed, spans dropped",
			SVC_LOG_STR("url", shown),
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
	char shown[512];

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
	svc_redact_url(ex.url, shown, sizeof(shown));
	svc_log(SVC_LOG_INFO, "trace export on", SVC_LOG_STR("url", shown),
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
