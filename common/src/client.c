/*
 * client.c - outbound HTTP for service-to-service calls, over libcurl.
 *
 * Each thread makes its calls on one easy handle of its own, created on its
 * first call and kept, because the handle holds the connection cache: the
 * second call to a peer reuses the first one's keep-alive connection.
 * Handles live in a registry so svc_client_cleanup_all() can free them at
 * shutdown (a thread-local alone would leak them), and a thread that exits
 * frees its own through a pthread key destructor, so threads that come and
 * go do not pile handles up. The service token is process-wide, behind a
 * mutex, and re-minted shortly before it expires. This file knows nothing
 * of retries or circuit breakers; it reports what happened on the wire.
 */
#include "svc/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client_internal.h"
#include "svc/config.h"
#include "svc/err.h"
#include "svc/jwt.h"
#include "svc/log.h"
#include "svc/trace.h"
#include "svc/util.h"

#define DEFAULT_CONNECT_MS   1000
#define DEFAULT_TIMEOUT_MS   3000
#define DEFAULT_MAX_RESPONSE 1048576
#define MAX_REQUEST_ID	     128 /* as http.c accepts them */
#define MAX_TOKEN	     512
/*
 * Idle connections older than this are not reused. Below the servers'
 * idle timeout (HTTP_CONNECTION_TIMEOUT, 30 s by default), so a request
 * rarely meets a connection the peer is closing at that very moment.
 */
#define MAX_IDLE_S 20

/* One thread's libcurl handle; registered in g.all. */
struct handle {
	CURL *easy;
	struct handle *next;
	char errbuf[CURL_ERROR_SIZE];
};

/* One transfer's state, shared with the libcurl callbacks. */
struct xfer {
	struct svc_client_response *out;
	char *body;
	size_t len, cap, max;
	bool too_big;
	bool oom;
};

static struct {
	bool ready;
	char service[sizeof(((struct svc_jwt_claims *)0)->sub)];
	char user_agent[160];
	unsigned char *key;
	size_t key_len;
	long long connect_timeout_ms, timeout_ms;
	size_t max_response;

	/* The handle registry; gen changes on cleanup, staling old handles. */
	pthread_mutex_t lock;
	struct handle *all;
	int count;
	atomic_ulong gen;

	/* The shared service token. */
	pthread_mutex_t token_lock;
	char token[MAX_TOKEN];
	long long token_iat, token_exp;
	long long (*clock)(void);
} g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.token_lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local struct handle *thread_handle;
static _Thread_local unsigned long thread_gen;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;

/* --- configuration --- */

void
svc_client_config_read(struct svc_client_config *cfg)
{
	cfg->connect_timeout_ms = svc_config_duration_ms(
		"HTTP_CLIENT_CONNECT_TIMEOUT", "1s", 1, 600000);
	cfg->timeout_ms =
		svc_config_duration_ms("HTTP_CLIENT_TIMEOUT", "3s", 1, 3600000);
	cfg->max_response = (size_t)svc_config_int("HTTP_CLIENT_MAX_RESPONSE",
						   DEFAULT_MAX_RESPONSE, 1,
						   1024LL * 1048576);
}

/* --- per-thread handles --- */

/*
 * Runs when a thread that made calls exits. Its handle is freed only if it
 * is still the live one: after svc_client_cleanup_all() the pointer may
 * already be gone, which the thread's generation tells without touching it.
 */
static void
thread_exit(void *arg)
{
	struct handle *h = arg;

	pthread_mutex_lock(&g.lock);
	if (h != thread_handle || thread_gen != atomic_load(&g.gen)) {
		h = NULL;
	} else {
		for (struct handle **p = &g.all; *p != NULL; p = &(*p)->next) {
			if (*p == h) {
				*p = h->next;
				g.count--;
				break;
			}
		}
	}
	pthread_mutex_unlock(&g.lock);
	thread_handle = NULL;
	if (h != NULL) {
		curl_easy_cleanup(h->easy);
		free(h);
	}
}

static void
make_exit_key(void)
{
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

/* The calling thread's handle, created on its first call. */
static struct handle *
get_handle(void)
{
	struct handle *h = thread_handle;

	if (h != NULL && thread_gen == atomic_load(&g.gen))
		return h;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->easy = curl_easy_init();
	if (h->easy == NULL) {
		free(h);
		return NULL;
	}
	pthread_mutex_lock(&g.lock);
	h->next = g.all;
	g.all = h;
	g.count++;
	thread_gen = atomic_load(&g.gen);
	pthread_mutex_unlock(&g.lock);
	thread_handle = h;
	if (exit_key_ok)
		pthread_setspecific(exit_key, h);
	return h;
}

int
svc__client_handles(void)
{
	int n;

	pthread_mutex_lock(&g.lock);
	n = g.count;
	pthread_mutex_unlock(&g.lock);
	return n;
}

/* --- set-up and shutdown --- */

int
svc_client_init(const struct svc_client_config *cfg)
{
	size_t n;

	if (g.ready || cfg == NULL || cfg->service_name == NULL ||
	    cfg->jwt_key == NULL || cfg->jwt_key_len < SVC_JWT_MIN_KEY)
		return SVC_EINVAL;
	n = strlen(cfg->service_name);
	if (n == 0 || n >= sizeof(g.service))
		return SVC_EINVAL;
	if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0)
		return SVC_EINVAL;
	g.key = malloc(cfg->jwt_key_len);
	if (g.key == NULL)
		return SVC_ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(g.key);
		g.key = NULL;
		return SVC_EINTERNAL;
	}
	pthread_once(&key_once, make_exit_key);
	memcpy(g.key, cfg->jwt_key, cfg->jwt_key_len);
	g.key_len = cfg->jwt_key_len;
	memcpy(g.service, cfg->service_name, n + 1);
	snprintf(g.user_agent, sizeof(g.user_agent), "%s (libsvc)", g.service);
	g.connect_timeout_ms = cfg->connect_timeout_ms > 0
				       ? cfg->connect_timeout_ms
				       : DEFAULT_CONNECT_MS;
	g.timeout_ms =
		cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	g.max_response = cfg->max_response > 0 ? cfg->max_response
					       : DEFAULT_MAX_RESPONSE;
	g.ready = true;
	return SVC_OK;
}

void
svc_client_cleanup_all(void)
{
	struct handle *list;

	pthread_mutex_lock(&g.lock);
	list = g.all;
	g.all = NULL;
	g.count = 0;
	atomic_fetch_add(&g.gen, 1);
	pthread_mutex_unlock(&g.lock);
	while (list != NULL) {
		struct handle *h = list;

		list = h->next;
		curl_easy_cleanup(h->easy);
		free(h);
	}
	thread_handle = NULL;

	pthread_mutex_lock(&g.token_lock);
	OPENSSL_cleanse(g.token, sizeof(g.token));
	g.token_iat = g.token_exp = 0;
	pthread_mutex_unlock(&g.token_lock);
	if (g.key != NULL)
		OPENSSL_cleanse(g.key, g.key_len);
	free(g.key);
	g.key = NULL;
	g.key_len = 0;
	if (g.ready)
		curl_global_cleanup();
	g.ready = false;
}

/* --- the service token --- */

void
svc__client_set_clock(long long (*now_s)(void))
{
	pthread_mutex_lock(&g.token_lock);
	g.clock = now_s;
	pthread_mutex_unlock(&g.token_lock);
}

/*
 * Writes the Authorization header line into out, minting a token when
 * there is none, when it has less than SVC_CLIENT_TOKEN_REFRESH seconds
 * left, or when the clock went back past its iat (peers would refuse a
 * token issued in their future).
 */
static int
authorization(char *out, size_t size)
{
	long long now;
	int rc = SVC_OK;

	pthread_mutex_lock(&g.token_lock);
	now = g.clock != NULL ? g.clock() : svc_time_s();
	if (g.token[0] == '\0' || now < g.token_iat ||
	    g.token_exp - now < SVC_CLIENT_TOKEN_REFRESH) {
		rc = svc_jwt_mint(g.service, "service", now,
				  SVC_CLIENT_TOKEN_TTL, g.key, g.key_len,
				  g.token, sizeof(g.token));
		if (rc == SVC_OK) {
			g.token_iat = now;
			g.token_exp = now + SVC_CLIENT_TOKEN_TTL;
		} else {
			g.token[0] = '\0';
		}
	}
	if (rc == SVC_OK)
		snprintf(out, size, "Authorization: Bearer %s", g.token);
	pthread_mutex_unlock(&g.token_lock);
	return rc;
}

/* --- request checks --- */

static int fail(struct svc_client_response *out, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct svc_client_response *out, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
	return rc;
}

static bool
method_ok(const char *m)
{
	size_t n = 0;

	for (; m[n] != '\0'; n++)
		if (n == 16 || m[n] < 'A' || m[n] > 'Z')
			return false;
	return n > 0;
}

/* The characters http.c accepts in an incoming X-Request-ID. */
static bool
request_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n == MAX_REQUEST_ID ||
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || strchr("-_.:/+=", c) != NULL))
			return false;
	}
	return n > 0;
}

/* "Name: value": a token name, and nothing that could end the line. */
static bool
header_line_ok(const char *h)
{
	const char *colon = strchr(h, ':');

	if (colon == NULL || colon == h)
		return false;
	for (const char *p = h; p < colon; p++) {
		unsigned char c = (unsigned char)*p;

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') ||
		      strchr("!#$%&'*+-.^_`|~", c) != NULL))
			return false;
	}
	return strpbrk(colon, "\r\n") == NULL;
}

static int
check_request(const struct svc_client_request *req,
	      struct svc_client_response *out)
{
	if (!g.ready)
		return fail(out, SVC_EINVAL, "client not initialised");
	if (req == NULL || req->url == NULL || req->url[0] == '\0')
		return fail(out, SVC_EINVAL, "no URL");
	if (req->method != NULL && !method_ok(req->method))
		return fail(out, SVC_EINVAL, "malformed method");
	if (req->body != NULL && req->json != NULL)
		return fail(out, SVC_EINVAL, "both body and json given");
	if ((req->body != NULL || req->json != NULL) && req->method != NULL &&
	    strcmp(req->method, "HEAD") == 0)
		return fail(out, SVC_EINVAL, "HEAD with a body");
	if (req->connect_timeout_ms < 0 || req->timeout_ms < 0)
		return fail(out, SVC_EINVAL, "negative timeout");
	for (int i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
		if (!header_line_ok(req->headers[i]))
			return fail(out, SVC_EINVAL, "malformed header line %d",
				    i);
	return SVC_OK;
}

/* --- the transfer --- */

static int
add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (l == NULL)
		return SVC_ENOMEM;
	*list = l;
	return SVC_OK;
}

/* traceparent: the client span's, or NULL to send none. */
static int
build_headers(const struct svc_client_request *req, const char *traceparent,
	      bool has_body, struct curl_slist **list,
	      struct svc_client_response *out)
{
	char line[MAX_TOKEN + 64];
	int rc;

	if (authorization(line, sizeof(line)) != SVC_OK)
		return fail(out, SVC_EINTERNAL, "cannot mint a service token");
	rc = add_header(list, line);
	if (rc == SVC_OK)
		rc = add_header(list, "Accept: application/json");
	/*
	 * Without a body, "Content-Type:" stops libcurl from labelling an
	 * empty POST as a form; "Expect:" stops it from waiting for a
	 * 100 Continue before sending a large body.
	 */
	if (rc == SVC_OK)
		rc = add_header(list, has_body
					      ? "Content-Type: application/json"
					      : "Content-Type:");
	if (rc == SVC_OK)
		rc = add_header(list, "Expect:");
	if (rc == SVC_OK && req->request_id != NULL &&
	    request_id_ok(req->request_id)) {
		snprintf(line, sizeof(line), "X-Request-ID: %s",
			 req->request_id);
		rc = add_header(list, line);
	}
	if (rc == SVC_OK && traceparent != NULL) {
		snprintf(line, sizeof(line), "traceparent: %s", traceparent);
		rc = add_header(list, line);
	}
	for (int i = 0;
	     rc == SVC_OK && req->headers != NULL && req->headers[i] != NULL;
	     i++)
		rc = add_header(list, req->headers[i]);
	if (rc != SVC_OK)
		return fail(out, rc, "out of memory");
	return SVC_OK;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t add = size * n;

	if (add > x->max - x->len) {
		x->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (x->len + add + 1 > x->cap) {
		size_t cap = x->cap > 0 ? x->cap : 4096;
		char *p;

		while (cap < x->len + add + 1)
			cap *= 2;
		if (cap > x->max + 1)
			cap = x->max + 1;
		p = realloc(x->body, cap);
		if (p == NULL) {
			x->oom = true;
			return 0;
		}
		x->body = p;
		x->cap = cap;
	}
	memcpy(x->body + x->len, data, add);
	x->len += add;
	x->body[x->len] = '\0';
	return add;
}

/* Delta-seconds or an HTTP-date, as seconds from now; -1 if neither. */
static long long
parse_retry_after(const char *v)
{
	long long s;
	time_t t;
	char *end;

	if (v[0] >= '0' && v[0] <= '9') {
		errno = 0;
		s = strtoll(v, &end, 10);
		return *end == '\0' && errno == 0 ? s : -1;
	}
	t = curl_getdate(v, NULL);
	if (t == -1)
		return -1;
	s = (long long)t - svc_time_s();
	return s > 0 ? s : 0;
}

/* The value of header line h if it is called name, trimmed, or NULL. */
static const char *
header_value(const char *h, size_t len, const char *name, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(h, name, n) != 0 || h[n] != ':')
		return NULL;
	h += n + 1;
	len -= n + 1;
	while (len > 0 && (*h == ' ' || *h == '\t')) {
		h++;
		len--;
	}
	while (len > 0 && strchr(" \t\r\n", h[len - 1]) != NULL)
		len--;
	*vlen = len;
	return h;
}

static size_t
on_header(char *line, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct svc_client_response *out = x->out;
	size_t len = size * n, vlen = 0;
	const char *retry = header_value(line, len, "Retry-After", &vlen);
	const char *loc;

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new answer (after a 1xx): forget the previous headers. */
		out->retry_after[0] = '\0';
		out->retry_after_s = -1;
		free(out->location);
		out->location = NULL;
		return len;
	}
	if (retry != NULL) {
		/* Longer than any delta-seconds or HTTP-date: ignored. */
		if (vlen < sizeof(out->retry_after)) {
			memcpy(out->retry_after, retry, vlen);
			out->retry_after[vlen] = '\0';
			out->retry_after_s =
				parse_retry_after(out->retry_after);
		}
		return len;
	}
	loc = header_value(line, len, "Location", &vlen);
	if (loc != NULL) {
		free(out->location);
		out->location = strndup(loc, vlen);
		if (out->location == NULL) {
			x->oom = true;
			return 0;
		}
	}
	return len;
}

/* Sets the call's options on a handle that curl_easy_reset() left clean. */
static int
set_options(struct handle *h, const struct svc_client_request *req,
	    const char *method, const char *body, struct curl_slist *hdrs,
	    struct xfer *x)
{
	CURL *c = h->easy;
	long long connect_ms = req->connect_timeout_ms > 0
				       ? req->connect_timeout_ms
				       : g.connect_timeout_ms;
	long long total_ms =
		req->timeout_ms > 0 ? req->timeout_ms : g.timeout_ms;
	bool ok = true;

	h->errbuf[0] = '\0';
	ok &= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_URL, req->url) == CURLE_OK;
	/* libcurl must never raise SIGALRM for timeouts in a threaded server */
	ok &= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") ==
	      CURLE_OK;
	/* Calls between services stay on the internal network. */
	ok &= curl_easy_setopt(c, CURLOPT_PROXY, "") == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			       (long)connect_ms) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)total_ms) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long)MAX_IDLE_S) ==
	      CURLE_OK;
	/*
	 * Resolve the name for every new connection (kept ones are reused
	 * without a lookup): a restarted container or pod comes back on
	 * another address, and libcurl's default 60 s cache would send the
	 * circuit's trial call to the old one.
	 */
	ok &= curl_easy_setopt(c, CURLOPT_DNS_CACHE_TIMEOUT, 0L) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_USERAGENT, g.user_agent) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_WRITEDATA, x) == CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) ==
	      CURLE_OK;
	ok &= curl_easy_setopt(c, CURLOPT_HEADERDATA, x) == CURLE_OK;
	if (strcmp(method, "HEAD") == 0) {
		ok &= curl_easy_setopt(c, CURLOPT_NOBODY, 1L) == CURLE_OK;
	} else {
		/* Refuses early when Content-Length already says too much. */
		ok &= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
				       (curl_off_t)x->max) == CURLE_OK;
	}
	if (strcmp(method, "GET") == 0 && body == NULL) {
		ok &= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	} else if (strcmp(method, "HEAD") != 0) {
		/* Bodiless writes still send Content-Length: 0. */
		ok &= curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				       body != NULL ? body : "") == CURLE_OK;
		ok &= curl_easy_setopt(
			      c, CURLOPT_POSTFIELDSIZE_LARGE,
			      (curl_off_t)(body != NULL ? strlen(body) : 0)) ==
		      CURLE_OK;
		if (strcmp(method, "POST") != 0)
			ok &= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
					       method) == CURLE_OK;
	}
	return ok ? SVC_OK : SVC_ENOMEM;
}

int
svc__client_curl_error(int code)
{
	switch ((CURLcode)code) {
	case CURLE_OK:
		return SVC_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return SVC_ETIMEOUT;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_UNKNOWN_OPTION:
		return SVC_EINVAL;
	case CURLE_OUT_OF_MEMORY:
		return SVC_ENOMEM;
	default:
		/*
		 * Refused, unresolved, reset, closed without an answer, a
		 * malformed answer, TLS failures: the peer is not there or
		 * not well, which is what a caller decides on.
		 */
		return SVC_EUNAVAIL;
	}
}

/* The outcome of a finished transfer; fills status or error. */
static int
outcome(struct handle *h, CURLcode cc, const struct xfer *x,
	struct svc_client_response *out)
{
	if (x->oom)
		return fail(out, SVC_ENOMEM, "out of memory");
	if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED)
		return fail(out, SVC_EUNAVAIL, "response larger than %zu bytes",
			    x->max);
	if (cc != CURLE_OK)
		return fail(out, svc__client_curl_error((int)cc), "%s",
			    h->errbuf[0] != '\0' ? h->errbuf
						 : curl_easy_strerror(cc));
	if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &out->status) !=
		    CURLE_OK ||
	    out->status < 100)
		return fail(out, SVC_EUNAVAIL, "no HTTP status");
	return SVC_OK;
}

int
svc_client_do(const struct svc_client_request *req,
	      struct svc_client_response *out)
{
	struct xfer x = { .out = out };
	struct curl_slist *hdrs = NULL;
	struct handle *h = NULL;
	long long started = svc_now_ms();
	const char *method = "GET", *body;
	char *dumped = NULL, tp[SVC_TRACEPARENT_LEN + 1];
	char shown[4096]; /* the URL, password hidden: for spans and logs */
	/* A client span only inside a trace: the caller's context. */
	bool traced = req != NULL && req->traceparent != NULL &&
		      svc_trace_valid(req->traceparent);
	struct svc_span span;
	int rc;

	memset(out, 0, sizeof(*out));
	out->retry_after_s = -1;
	if (traced) {
		method = req->method != NULL ? req->method : "GET";
		svc_span_begin(&span, req->traceparent, SVC_SPAN_CLIENT,
			       method);
		svc_span_attr_str(&span, "http.request.method", method);
		svc_redact_url(req->url, shown, sizeof(shown));
		svc_span_attr_str(&span, "url.full", shown);
		svc_trace_format(&span.ctx, tp);
	}
	rc = check_request(req, out);
	if (rc != SVC_OK)
		goto out;
	if (req->method != NULL)
		method = req->method;
	body = req->body;
	if (req->json != NULL) {
		dumped = json_dumps(req->json, JSON_COMPACT | JSON_ENCODE_ANY);
		if (dumped == NULL) {
			rc = fail(out, SVC_EINVAL, "cannot encode the body");
			goto out;
		}
		body = dumped;
	}
	rc = build_headers(req, traced ? tp : NULL, body != NULL, &hdrs, out);
	if (rc != SVC_OK)
		goto out;
	h = get_handle();
	if (h == NULL) {
		rc = fail(out, SVC_ENOMEM, "cannot create a libcurl handle");
		goto out;
	}
	x.max = req->max_response > 0 ? req->max_response : g.max_response;
	if (x.max > SIZE_MAX / 4)
		x.max = SIZE_MAX / 4;
	rc = set_options(h, req, method, body, hdrs, &x);
	if (rc != SVC_OK) {
		fail(out, rc, "cannot set libcurl options");
		goto out;
	}
	rc = outcome(h, curl_easy_perform(h->easy), &x, out);
	if (rc != SVC_OK) {
		svc_redact_url(req->url, shown, sizeof(shown));
		svc_log(SVC_LOG_WARN, "outbound call failed",
			SVC_LOG_STR("method", method),
			SVC_LOG_STR("url", shown),
			SVC_LOG_STR("error", out->error),
			SVC_LOG_INT("duration_ms", svc_now_ms() - started),
			SVC_LOG_END);
		goto out;
	}
	if (x.body == NULL) {
		x.body = calloc(1, 1);
		if (x.body == NULL) {
			rc = fail(out, SVC_ENOMEM, "out of memory");
			goto out;
		}
	}
	out->body = x.body;
	out->len = x.len;
	x.body = NULL;
	if (out->len > 0)
		out->json = json_loadb(out->body, out->len,
				       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
				       NULL);
out:
	if (traced) {
		svc_span_attr_int(&span, "http.response.status_code",
				  out->status);
		svc_span_end(&span, rc != SVC_OK || out->status >= 500);
	}
	/* Drops the pointers into this call; the connections stay. */
	if (h != NULL)
		curl_easy_reset(h->easy);
	curl_slist_free_all(hdrs);
	free(dumped);
	free(x.body);
	if (rc != SVC_OK) {
		free(out->location);
		out->location = NULL;
		out->retry_after[0] = '\0';
		out->retry_after_s = -1;
		out->status = 0;
	}
	return rc;
}

void
svc_client_response_cleanup(struct svc_client_response *res)
{
	if (res == NULL)
		return;
	free(res->body);
	free(res->location);
	json_decref(res->json);
	memset(res, 0, sizeof(*res));
	res->retry_after_s = -1;
}
