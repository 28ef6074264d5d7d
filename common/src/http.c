/*
 * http.c - the request pipeline, the router, requests and responses.
 *
 * Everything here works without sockets: http_server.c turns a
 * libmicrohttpd connection into a svc_req, calls svc_http_handle(), and
 * sends the svc_res back; unit tests do the same with hand-made requests.
 * Per-request memory comes from a pool that dies with the request, so
 * handlers allocate freely and never free.
 */
#include "svc/http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "faults_internal.h"
#include "http_internal.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/trace.h"
#include "svc/util.h"

#define MAX_PARAMS	8
#define MAX_SEGMENTS	16
#define MAX_RES_HEADERS 24
#define MAX_REQUEST_ID	128
#define POOL_CHUNK	4096

/* --- per-request memory --- */

struct chunk {
	struct chunk *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

static void *
pool_alloc(struct chunk **head, size_t size)
{
	struct chunk *c = *head;
	void *p;

	size = (size + 15) & ~(size_t)15;
	if (c == NULL || c->size - c->used < size) {
		size_t cap = size > POOL_CHUNK ? size : POOL_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			abort(); /* no sane recovery mid-request */
		c->size = cap;
		c->used = 0;
		/* Keep a partly used chunk in front for small allocations. */
		if (*head != NULL && size > POOL_CHUNK) {
			c->next = (*head)->next;
			(*head)->next = c;
		} else {
			c->next = *head;
			*head = c;
		}
	}
	p = c->data + c->used;
	c->used += size;
	return p;
}

static void
pool_free(struct chunk *c)
{
	while (c != NULL) {
		struct chunk *next = c->next;

		free(c);
		c = next;
	}
}

/* --- requests --- */

struct kv {
	const char *name;
	const char *value;
};

struct kvlist {
	struct kv *items;
	int n, cap;
};

struct svc_req {
	struct chunk *pool;
	const char *method;
	const char *path;
	const char *route;
	const char *peer;
	struct kvlist headers, query;
	struct kv params[MAX_PARAMS];
	int nparams;
	char *body; /* malloc'd: it can be large */
	size_t body_len, body_cap;
	bool too_big;
	json_t *json;
	char request_id[MAX_REQUEST_ID + 1];
	struct svc_span span; /* this request's server span */
	char traceparent[SVC_TRACEPARENT_LEN + 1];
	bool authenticated;
	struct svc_jwt_claims claims;
	double started;
};

void *
svc_req_alloc(struct svc_req *req, size_t size)
{
	return pool_alloc(&req->pool, size);
}

char *
svc_req_strdup(struct svc_req *req, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(svc_req_alloc(req, n), s, n);
}

char *
svc_req_printf(struct svc_req *req, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = svc_req_alloc(req, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static void
kv_add(struct svc_req *req, struct kvlist *l, const char *name,
       const char *value)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 8;
		struct kv *items = svc_req_alloc(req, sizeof(*items) * cap);

		if (l->n > 0)
			memcpy(items, l->items, sizeof(*items) * l->n);
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n].name = svc_req_strdup(req, name);
	l->items[l->n].value = svc_req_strdup(req, value);
	l->n++;
}

static const char *
kv_get(const struct kvlist *l, const char *name, bool nocase)
{
	for (int i = 0; i < l->n; i++) {
		if (nocase ? strcasecmp(l->items[i].name, name) == 0
			   : strcmp(l->items[i].name, name) == 0)
			return l->items[i].value;
	}
	return NULL;
}

static int
hexval(int c)
{
	/* No tolower(): c is a plain char, negative for bytes >= 0x80, and
	 * <ctype.h> is undefined for those. */
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Decodes %XX - and '+' to a space when plus is set (query strings) - in
 * place, except "%00": a decoded NUL would cut the C string short, so
 * "/products/<id>%00junk" or "limit=5%00junk" would be read as "<id>" or
 * "5". Left encoded, such a path or parameter is simply invalid (404,
 * 400). Returns the decoded length.
 */
size_t
svc__url_unescape(char *s, bool plus)
{
	char *start = s, *o = s;

	for (; *s != '\0'; s++) {
		int hi = *s == '%' ? hexval(s[1]) : -1;
		int lo = hi >= 0 ? hexval(s[2]) : -1;

		if (plus && *s == '+') {
			*o++ = ' ';
		} else if (lo >= 0 && (hi | lo) != 0) {
			*o++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return (size_t)(o - start);
}

static void
parse_query(struct svc_req *req, char *qs)
{
	char *save = NULL;

	for (char *tok = strtok_r(qs, "&", &save); tok != NULL;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		const char *value = "";

		/* "?flag" has no value to decode: "" is read-only. */
		if (eq != NULL) {
			*eq = '\0';
			value = eq + 1;
			svc__url_unescape(eq + 1, true);
		}
		svc__url_unescape(tok, true);
		kv_add(req, &req->query, tok, value);
	}
}

struct svc_req *
svc_req_new(const char *method, const char *path)
{
	struct svc_req *req = calloc(1, sizeof(*req));
	char *p, *q;

	if (req == NULL)
		abort();
	req->started = svc_now_s();
	req->method = svc_req_strdup(req, method);
	p = svc_req_strdup(req, path);
	q = strchr(p, '?');
	if (q != NULL) {
		*q = '\0';
		parse_query(req, q + 1);
	}
	req->path = p;
	req->peer = "";
	return req;
}

void
svc_req_free(struct svc_req *req)
{
	if (req == NULL)
		return;
	json_decref(req->json);
	free(req->body);
	pool_free(req->pool);
	free(req);
}

void
svc_req_add_header(struct svc_req *req, const char *name, const char *value)
{
	kv_add(req, &req->headers, name, value);
}

void
svc_req_add_query(struct svc_req *req, const char *name, const char *value)
{
	kv_add(req, &req->query, name, value);
}

void
svc_req_set_peer(struct svc_req *req, const char *addr)
{
	req->peer = svc_req_strdup(req, addr);
}

int
svc_req_append_body(struct svc_req *req, const char *data, size_t len,
		    size_t limit)
{
	if (req->too_big || req->body_len + len > limit) {
		req->too_big = true;
		return SVC_ETOOBIG;
	}
	if (req->body_len + len + 1 > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : 1024;
		char *body;

		while (cap < req->body_len + len + 1)
			cap *= 2;
		body = realloc(req->body, cap);
		if (body == NULL)
			return SVC_ENOMEM;
		req->body = body;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
	return SVC_OK;
}

void
svc__req_set_too_big(struct svc_req *req)
{
	req->too_big = true;
}

const char *
svc_req_method(const struct svc_req *req)
{
	return req->method;
}

const char *
svc_req_path(const struct svc_req *req)
{
	return req->path;
}

const char *
svc_req_param(const struct svc_req *req, const char *name)
{
	for (int i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

const char *
svc_req_query(const struct svc_req *req, const char *name)
{
	return kv_get(&req->query, name, false);
}

const char *
svc_req_header(const struct svc_req *req, const char *name)
{
	return kv_get(&req->headers, name, true);
}

json_t *
svc_req_json(const struct svc_req *req)
{
	return req->json;
}

const char *
svc_req_body(const struct svc_req *req, size_t *len)
{
	if (len != NULL)
		*len = req->body_len;
	return req->body != NULL ? req->body : "";
}

const char *
svc_req_id(const struct svc_req *req)
{
	return req->request_id;
}

const char *
svc_req_traceparent(const struct svc_req *req)
{
	return req->traceparent;
}

const struct svc_jwt_claims *
svc_req_claims(const struct svc_req *req)
{
	return req->authenticated ? &req->claims : NULL;
}

const char *
svc_req_route(const struct svc_req *req)
{
	return req->route;
}

const char *
svc_req_peer(const struct svc_req *req)
{
	return req->peer;
}

/* --- responses --- */

struct svc_res {
	int status;
	char *body;
	size_t len;
	const char *content_type;
	struct {
		char *name;
		char *value;
	} headers[MAX_RES_HEADERS];
	int nheaders;
	char *problem_code;
	char *problem_detail;
	json_t *problem_extra; /* more members for the problem document */
	json_t *field_errors;
};

struct svc_res *
svc_res_new(void)
{
	struct svc_res *res = calloc(1, sizeof(*res));

	if (res == NULL)
		abort();
	return res;
}

static void
res_clear_body(struct svc_res *res)
{
	free(res->body);
	free(res->problem_code);
	free(res->problem_detail);
	res->body = NULL;
	res->len = 0;
	res->problem_code = NULL;
	res->problem_detail = NULL;
}

void
svc_res_free(struct svc_res *res)
{
	if (res == NULL)
		return;
	res_clear_body(res);
	json_decref(res->problem_extra);
	json_decref(res->field_errors);
	for (int i = 0; i < res->nheaders; i++) {
		free(res->headers[i].name);
		free(res->headers[i].value);
	}
	free(res);
}

int
svc_res_raw(struct svc_res *res, int status, const char *json, size_t len)
{
	res_clear_body(res);
	res->body = malloc(len + 1);
	if (res->body == NULL)
		return SVC_ENOMEM;
	memcpy(res->body, json, len);
	res->body[len] = '\0';
	res->len = len;
	res->status = status;
	res->content_type = "application/json";
	return SVC_OK;
}

int
svc_res_json(struct svc_res *res, int status, json_t *body)
{
	char *text;

	if (body == NULL)
		return svc_res_empty(res, status);
	text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY |
					JSON_REAL_PRECISION(6));
	json_decref(body);
	if (text == NULL)
		return SVC_ENOMEM;
	res_clear_body(res);
	res->body = text;
	res->len = strlen(text);
	res->status = status;
	res->content_type = "application/json";
	return SVC_OK;
}

int
svc_res_take(struct svc_res *res, int status, const char *content_type,
	     char *body, size_t len)
{
	if (body == NULL)
		return SVC_EINVAL;
	res_clear_body(res);
	res->body = body;
	res->len = len;
	res->status = status;
	res->content_type = content_type;
	return SVC_OK;
}

int
svc_res_empty(struct svc_res *res, int status)
{
	res_clear_body(res);
	res->status = status;
	res->content_type = NULL;
	return SVC_OK;
}

static int
status_to_err(int status)
{
	static const int codes[] = { SVC_EINVAL,	SVC_EVALIDATION,
				     SVC_EAUTH,		SVC_EFORBIDDEN,
				     SVC_ENOTFOUND,	SVC_ECONFLICT,
				     SVC_EPRECONDITION, SVC_ETOOBIG,
				     SVC_EMEDIATYPE,	SVC_ERATELIMIT,
				     SVC_EUNAVAIL };

	for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (svc_err_status(codes[i]) == status)
			return codes[i];
	return SVC_EINTERNAL;
}

int
svc_res_problem(struct svc_res *res, int status, const char *code,
		const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	res_clear_body(res);
	res->status = status;
	res->problem_code = strdup(code);
	res->problem_detail = strdup(detail);
	return status_to_err(status);
}

void
svc_res_field_error(struct svc_res *res, const char *field, const char *fmt,
		    ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (res->field_errors == NULL)
		res->field_errors = json_array();
	json_array_append_new(
		res->field_errors,
		json_pack("{s:s, s:s}", "field", field, "message", msg));
}

void
svc_res_problem_member(struct svc_res *res, const char *name, json_t *value)
{
	if (res->problem_extra == NULL)
		res->problem_extra = json_object();
	json_object_set_new(res->problem_extra, name, value);
}

int
svc_res_field_errors(const struct svc_res *res)
{
	return res->field_errors != NULL
		       ? (int)json_array_size(res->field_errors)
		       : 0;
}

void
svc_res_header(struct svc_res *res, const char *name, const char *value)
{
	int i;

	for (i = 0; i < res->nheaders; i++)
		if (strcasecmp(res->headers[i].name, name) == 0)
			break;
	if (i == MAX_RES_HEADERS)
		return; /* a bug in the caller, not worth failing a request */
	if (i == res->nheaders) {
		res->headers[i].name = strdup(name);
		res->nheaders++;
	} else {
		free(res->headers[i].value);
	}
	res->headers[i].value = strdup(value);
}

int
svc_res_status(const struct svc_res *res)
{
	return res->status;
}

const char *
svc_res_body(const struct svc_res *res, size_t *len)
{
	if (len != NULL)
		*len = res->len;
	return res->body != NULL ? res->body : "";
}

const char *
svc_res_get_header(const struct svc_res *res, const char *name)
{
	for (int i = 0; i < res->nheaders; i++)
		if (strcasecmp(res->headers[i].name, name) == 0)
			return res->headers[i].value;
	return NULL;
}

void
svc_res_foreach_header(const struct svc_res *res,
		       void (*fn)(const char *, const char *, void *),
		       void *arg)
{
	for (int i = 0; i < res->nheaders; i++)
		fn(res->headers[i].name, res->headers[i].value, arg);
}

char *
svc__res_take_body(struct svc_res *res, size_t *len)
{
	char *body = res->body;

	*len = res->len;
	res->body = NULL;
	res->len = 0;
	return body;
}

/* --- the router --- */

struct segment {
	const char *text; /* literal text, or the parameter name */
	size_t len;
	bool param;
};

struct compiled {
	struct segment seg[MAX_SEGMENTS];
	int nseg;
};

struct svc_http {
	const struct svc_route *routes;
	struct compiled *compiled;
	int nroutes;
	struct svc_http_config cfg;
	struct svc_metric *requests, *duration; /* in the global registry */
	struct svc_metric *limited;
	struct svc_ratelimit *limiter; /* NULL: no limit at all */
};

/*
 * Label sets are bounded by the route table (templates, "unmatched"), the
 * methods below and the statuses we answer; the caps only guard against
 * a bug.
 */
#define REQUESTS_CAP 1000
#define DURATION_CAP 300

static void
register_metrics(struct svc_http *http)
{
	http->requests = svc_metrics_counter(
		NULL, "http_requests_total",
		"HTTP requests answered, by method, route template and status.",
		(const char *[]){ "method", "route", "status", NULL },
		REQUESTS_CAP);
	http->duration = svc_metrics_histogram(
		NULL, "http_request_duration_seconds",
		"Time from the request's arrival to its answer, in seconds.",
		(const char *[]){ "method", "route", NULL },
		svc_metrics_latency_buckets, svc_metrics_latency_nbuckets,
		DURATION_CAP);
	http->limited = svc_metrics_counter(
		NULL, "http_rate_limited_total",
		"Requests refused with 429 by the rate limiter, by route "
		"template.",
		(const char *[]){ "route", NULL }, DURATION_CAP);
}

/* Splits a template into segments; false when it is malformed. */
static bool
compile(const char *path, struct compiled *c)
{
	const char *p = path;

	c->nseg = 0;
	if (*p != '/')
		return false;
	while (*p == '/') {
		const char *start = ++p;
		struct segment *s;

		while (*p != '\0' && *p != '/')
			p++;
		if (c->nseg == MAX_SEGMENTS)
			return false;
		s = &c->seg[c->nseg++];
		s->text = start;
		s->len = (size_t)(p - start);
		s->param = s->len > 2 && start[0] == '{' &&
			   start[s->len - 1] == '}';
		if (s->param) {
			s->text++;
			s->len -= 2;
		}
	}
	return *p == '\0';
}

struct svc_http *
svc_http_new(const struct svc_route *routes, const struct svc_http_config *cfg)
{
	struct svc_http *http = calloc(1, sizeof(*http));
	int n = 0;

	if (http == NULL)
		return NULL;
	while (routes[n].method != NULL)
		n++;
	http->compiled = calloc((size_t)n + 1, sizeof(*http->compiled));
	if (http->compiled == NULL)
		goto fail;
	for (int i = 0; i < n; i++) {
		if (!compile(routes[i].path, &http->compiled[i])) {
			svc_log(SVC_LOG_ERROR, "malformed route template",
				SVC_LOG_STR("path", routes[i].path),
				SVC_LOG_END);
			goto fail;
		}
	}
	http->routes = routes;
	http->nroutes = n;
	http->cfg = *cfg;
	if (cfg->ratelimit.client.enabled || cfg->ratelimit.service.enabled ||
	    cfg->ratelimit.auth_failures.enabled) {
		http->limiter = svc_ratelimit_new(
			cfg->ratelimit.max_keys > 0 ? cfg->ratelimit.max_keys
						    : 100000,
			NULL, NULL);
		if (http->limiter == NULL)
			goto fail;
	}
	register_metrics(http);
	return http;
fail:
	svc_http_free(http);
	return NULL;
}

void
svc_http_free(struct svc_http *http)
{
	if (http == NULL)
		return;
	svc_ratelimit_free(http->limiter);
	free(http->compiled);
	free(http);
}

const struct svc_route *
svc_http_routes(const struct svc_http *http)
{
	return http->routes;
}

const struct svc_http_config *
svc__http_config(const struct svc_http *http)
{
	return &http->cfg;
}

/* Matches path against a template, filling req's parameters. */
static bool
match(const struct compiled *c, const char *path, struct svc_req *req,
      bool capture)
{
	const char *p = path;
	int nparams = 0;

	for (int i = 0; i < c->nseg; i++) {
		const struct segment *s = &c->seg[i];
		const char *start;
		size_t len;

		if (*p != '/')
			return false;
		start = ++p;
		while (*p != '\0' && *p != '/')
			p++;
		len = (size_t)(p - start);
		if (s->param) {
			if (len == 0 || nparams == MAX_PARAMS)
				return false;
			if (capture) {
				char *name = svc_req_alloc(req, s->len + 1);
				char *value = svc_req_alloc(req, len + 1);

				memcpy(name, s->text, s->len);
				name[s->len] = '\0';
				memcpy(value, start, len);
				value[len] = '\0';
				req->params[nparams].name = name;
				req->params[nparams].value = value;
			}
			nparams++;
		} else if (len != s->len || memcmp(start, s->text, len) != 0) {
			return false;
		}
	}
	if (*p != '\0')
		return false;
	if (capture)
		req->nparams = nparams;
	return true;
}

/* --- the pipeline --- */

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

/* Accepts an incoming X-Request-ID only if it is short and printable. */
static bool
request_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n == MAX_REQUEST_ID ||
		    !(isalnum(c) || c == '-' || c == '_' || c == '.' ||
		      c == ':' || c == '/' || c == '+' || c == '='))
			return false;
	}
	return n > 0;
}

static bool
is_json_type(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, ";");
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	/* application/merge-patch+json, application/problem+json, ... */
	return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	       strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Deepest nesting of arrays and objects in a JSON text (strings skipped). */
static int
json_depth(const char *s, size_t len)
{
	bool in_string = false;
	int depth = 0, max = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return max;
}

static int
parse_body(struct svc_http *http, struct svc_req *req, struct svc_res *res,
	   unsigned flags)
{
	const char *ct = svc_req_header(req, "Content-Type");
	json_error_t err;

	if (req->body_len == 0) {
		if (!(flags & SVC_ROUTE_BODY))
			return SVC_OK;
		if (ct != NULL && !is_json_type(ct))
			return svc_res_problem(
				res, 415, "unsupported_media_type",
				"Content-Type must be application/json");
		return svc_res_problem(res, 400, "bad_request",
				       "a JSON request body is required");
	}
	if (!is_json_type(ct))
		return svc_res_problem(res, 415, "unsupported_media_type",
				       "Content-Type must be application/json");
	if (json_depth(req->body, req->body_len) > http->cfg.max_json_depth)
		return svc_res_problem(res, 400, "malformed_json",
				       "JSON nested deeper than %d levels",
				       http->cfg.max_json_depth);
	req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
			       &err);
	if (req->json == NULL)
		return svc_res_problem(
			res, 400, "malformed_json",
			"malformed JSON at line %d, column %d: %s", err.line,
			err.column, err.text);
	if (!json_is_object(req->json))
		return svc_res_problem(
			res, 400, "malformed_json",
			"the request body must be a JSON object");
	return SVC_OK;
}

/*
 * Checks the bearer token, if there is one: SVC_OK with req->authenticated
 * set for a valid one, SVC_EAUTH with *why for a missing (why NULL) or
 * invalid one.
 */
static int
identify(struct svc_http *http, struct svc_req *req, const char **why)
{
	const char *auth = svc_req_header(req, "Authorization");

	*why = NULL;
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return SVC_EAUTH;
	auth += 7;
	while (*auth == ' ')
		auth++;
	if (svc_jwt_verify(auth, http->cfg.jwt_key, http->cfg.jwt_key_len,
			   svc_time_s(), http->cfg.jwt_leeway, &req->claims,
			   why) != SVC_OK &&
	    (http->cfg.jwt_key_accept == NULL ||
	     svc_jwt_verify(auth, http->cfg.jwt_key_accept,
			    http->cfg.jwt_key_accept_len, svc_time_s(),
			    http->cfg.jwt_leeway, &req->claims,
			    why) != SVC_OK)) {
		if (*why == NULL)
			*why = "invalid token";
		return SVC_EAUTH;
	}
	req->authenticated = true;
	return SVC_OK;
}

/* The answer to identify(): 401 without a valid token, 403 wrong role. */
static int
authorize(struct svc_req *req, struct svc_res *res, unsigned flags,
	  const char *why)
{
	bool role_ok;

	if (!req->authenticated && why == NULL) {
		svc_res_header(res, "WWW-Authenticate", "Bearer");
		return svc_res_problem(res, 401, "unauthorized",
				       "a bearer token is required");
	}
	if (!req->authenticated) {
		svc_res_header(res, "WWW-Authenticate",
			       "Bearer error=\"invalid_token\"");
		return svc_res_problem(res, 401, "invalid_token", "%s", why);
	}
	role_ok = strcmp(req->claims.role, "admin") == 0 ||
		  ((flags & SVC_ROUTE_SERVICE) &&
		   strcmp(req->claims.role, "service") == 0);
	if (!role_ok)
		return svc_res_problem(res, 403, "forbidden",
				       "role \"%s\" may not do this",
				       req->claims.role);
	return SVC_OK;
}

static void
header_int(struct svc_res *res, const char *name, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	svc_res_header(res, name, buf);
}

/* 429 with Retry-After, counted in http_rate_limited_total{route}. */
static int
refuse(struct svc_http *http, struct svc_req *req, struct svc_res *res,
       const struct svc_ratelimit_result *rr, const char *what,
       const struct svc_ratelimit_rule *rule)
{
	header_int(res, "Retry-After", rr->retry_after);
	svc_metrics_inc(svc_metrics_series(
		http->limited,
		(const char *[]){ req->route != NULL ? req->route
						     : "unmatched" }));
	return svc_res_problem(res, 429, "rate_limited",
			       "%s: %lld per %lld s allowed, retry in %lld s",
			       what, rule->n, rule->per, rr->retry_after);
}

/*
 * Takes a token for this request: from the bucket of its token's subject
 * (service tokens under their own rule), else of its address. Sets the
 * RateLimit-* headers; over the limit answers 429 and returns
 * SVC_ERATELIMIT.
 */
static int
rate_limit(struct svc_http *http, struct svc_req *req, struct svc_res *res)
{
	const struct svc_ratelimit_rule *rule = &http->cfg.ratelimit.client;
	struct svc_ratelimit_result rr;
	char key[sizeof(req->claims.sub) + 4];

	if (http->limiter == NULL)
		return SVC_OK;
	/* Prefixes keep an address from ever naming a subject's bucket. */
	if (req->authenticated && strcmp(req->claims.role, "service") == 0) {
		rule = &http->cfg.ratelimit.service;
		snprintf(key, sizeof(key), "v:%s", req->claims.sub);
	} else if (req->authenticated) {
		snprintf(key, sizeof(key), "s:%s", req->claims.sub);
	} else {
		snprintf(key, sizeof(key), "a:%s", req->peer);
	}
	if (!rule->enabled ||
	    svc_ratelimit_take(http->limiter, key, rule, &rr) != SVC_OK)
		return SVC_OK;
	header_int(res, "RateLimit-Limit", rr.limit);
	header_int(res, "RateLimit-Remaining", rr.remaining);
	header_int(res, "RateLimit-Reset", rr.reset);
	if (rr.allowed)
		return SVC_OK;
	return refuse(http, req, res, &rr, "too many requests", rule);
}

/*
 * An invalid token on a protected route spends one of its address's
 * failures (RATE_LIMIT_AUTH_FAILURES) on top of the request itself; with
 * none left the answer is 429, not 401, until the budget refills. Valid
 * tokens from the same address are not affected: a forger sharing an
 * address (a NAT, a proxy) with real clients locks out only itself.
 */
static int
limit_auth_failure(struct svc_http *http, struct svc_req *req,
		   struct svc_res *res)
{
	const struct svc_ratelimit_rule *rule =
		&http->cfg.ratelimit.auth_failures;
	struct svc_ratelimit_result rr;
	char key[64]; /* "f:" and an IPv6 address */

	if (http->limiter == NULL || !rule->enabled)
		return SVC_OK;
	snprintf(key, sizeof(key), "f:%s", req->peer);
	if (svc_ratelimit_take(http->limiter, key, rule, &rr) != SVC_OK ||
	    rr.allowed)
		return SVC_OK;
	return refuse(http, req, res, &rr, "too many invalid tokens", rule);
}

/* Picks the route; answers 404 or 405 itself when there is none. */
static const struct svc_route *
route(struct svc_http *http, struct svc_req *req, struct svc_res *res)
{
	const char *method = req->method;
	char allow[128] = "";
	bool path_known = false;

	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	for (int i = 0; i < http->nroutes; i++) {
		const struct svc_route *r = &http->routes[i];

		if (!match(&http->compiled[i], req->path, req, false))
			continue;
		if (strcmp(r->method, method) == 0) {
			match(&http->compiled[i], req->path, req, true);
			req->route = r->path;
			return r;
		}
		path_known = true;
		if (strstr(allow, r->method) == NULL) {
			if (allow[0] != '\0')
				strcat(allow, ", ");
			strncat(allow, r->method, 16);
			if (strcmp(r->method, "GET") == 0)
				strcat(allow, ", HEAD");
		}
	}
	if (!path_known) {
		svc_res_problem(res, 404, "not_found", "no route for %s %.200s",
				req->method, req->path);
		return NULL;
	}
	svc_res_header(res, "Allow", allow);
	svc_res_problem(res, 405, "method_not_allowed",
			"%s is not allowed here; allowed: %s", req->method,
			allow);
	return NULL;
}

/* Turns a recorded problem into its RFC 9457 document. */
static void
render_problem(struct svc_req *req, struct svc_res *res)
{
	json_t *detail =
		json_string(res->problem_detail ? res->problem_detail : "");
	json_t *doc;
	int status = res->status;

	/* A detail quoting a path or method need not be UTF-8; JSON must. */
	if (detail == NULL)
		detail = json_string(reason_phrase(status));
	doc = json_pack("{s:s, s:s, s:i, s:o, s:s, s:s}", "type", "about:blank",
			"title", reason_phrase(status), "status", status,
			"detail", detail, "error",
			res->problem_code ? res->problem_code : "error",
			"request_id", req->request_id);
	if (res->field_errors != NULL)
		json_object_set(doc, "errors", res->field_errors);
	if (res->problem_extra != NULL)
		json_object_update_missing(doc, res->problem_extra);
	svc_res_json(res, status, doc);
	res->content_type = "application/problem+json";
}

static void
set_security_headers(struct svc_res *res)
{
	svc_res_header(res, "X-Content-Type-Options", "nosniff");
	svc_res_header(res, "Cache-Control", "no-store");
	svc_res_header(res, "Content-Security-Policy", "default-src 'none'");
	svc_res_header(res, "X-Frame-Options", "DENY");
	svc_res_header(res, "Referrer-Policy", "no-referrer");
}

/* A method we route, or "other": clients must not grow the label set. */
static const char *
method_label(const char *method)
{
	static const char *const known[] = { "GET",   "HEAD",	"POST",	  "PUT",
					     "PATCH", "DELETE", "OPTIONS" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

static void
count_request(struct svc_http *http, struct svc_req *req, struct svc_res *res,
	      double seconds)
{
	const char *route = req->route != NULL ? req->route : "unmatched";
	const char *method = method_label(req->method);
	char status[4] = "0";

	/* By hand: snprintf would cost more than the rest of this. */
	if (res->status >= 100 && res->status <= 999) {
		status[0] = (char)('0' + res->status / 100);
		status[1] = (char)('0' + res->status / 10 % 10);
		status[2] = (char)('0' + res->status % 10);
		status[3] = '\0';
	}
	svc_metrics_inc(svc_metrics_series(
		http->requests, (const char *[]){ method, route, status }));
	svc_metrics_observe(
		svc_metrics_series(http->duration,
				   (const char *[]){ method, route }),
		seconds);
}

static void
access_log(struct svc_req *req, struct svc_res *res, double seconds)
{
	double ms = seconds * 1000.0;
	enum svc_log_level level =
		res->status >= 500 ? SVC_LOG_ERROR : SVC_LOG_INFO;

	if (!svc_log_enabled(level))
		return;
	svc_log(level, "request", SVC_LOG_STR("method", req->method),
		SVC_LOG_STR("route", req->route ? req->route : "unmatched"),
		SVC_LOG_STR("path", req->path),
		SVC_LOG_INT("status", res->status),
		SVC_LOG_DBL("duration_ms", ms),
		SVC_LOG_INT("bytes", (long long)res->len),
		SVC_LOG_STR("peer", req->peer), SVC_LOG_END);
}

/* The server span: named and labelled after the route template. */
static void
end_span(struct svc_req *req, struct svc_res *res)
{
	struct svc_span *s = &req->span;

	if (req->route != NULL)
		svc_span_name(s, "%s %s", req->method, req->route);
	svc_span_attr_str(s, "http.request.method", req->method);
	svc_span_attr_str(s, "http.route", req->route);
	svc_span_attr_str(s, "url.path", req->path);
	svc_span_attr_int(s, "http.response.status_code", res->status);
	svc_span_attr_str(s, "request_id", req->request_id);
	svc_span_end(s, res->status >= 500);
}

void
svc_http_handle(struct svc_http *http, struct svc_req *req, struct svc_res *res)
{
	const char *rid = svc_req_header(req, "X-Request-ID");
	const struct svc_route *r = NULL;
	const char *why = NULL;
	double elapsed;
	int rc;

	if (rid != NULL && request_id_ok(rid))
		strcpy(req->request_id, rid);
	else
		svc_uuid_v4(req->request_id);
	svc_span_begin(&req->span, svc_req_header(req, "traceparent"),
		       SVC_SPAN_SERVER, req->method);
	svc_trace_format(&req->span.ctx, req->traceparent);
	svc_log_set_context(req->request_id, req->span.ctx.trace_id);

	if (req->too_big) {
		rc = svc_res_problem(res, 413, "payload_too_large",
				     "request body larger than %zu bytes",
				     http->cfg.max_body);
		goto out;
	}
	r = route(http, req, res);
	if (r != NULL && (r->flags & SVC_ROUTE_OPS))
		goto handle;
	/*
	 * The token decides the rate limit's key, so it is checked first,
	 * also on public routes when limits are on; unmatched paths count
	 * against the address.
	 */
	if (r != NULL && ((r->flags & (SVC_ROUTE_ADMIN | SVC_ROUTE_SERVICE)) ||
			  (http->limiter != NULL && http->cfg.jwt_key != NULL)))
		identify(http, req, &why);
	rc = rate_limit(http, req, res);
	if (rc != SVC_OK || r == NULL)
		goto out;
	if (r->flags & (SVC_ROUTE_ADMIN | SVC_ROUTE_SERVICE)) {
		rc = !req->authenticated && why != NULL
			     ? limit_auth_failure(http, req, res)
			     : SVC_OK;
		if (rc == SVC_OK)
			rc = authorize(req, res, r->flags, why);
		if (rc != SVC_OK)
			goto out;
	}
	/* One relaxed load unless a fault is active (FAULTS=on). */
	if (!(r->flags & SVC_ROUTE_NOFAULT)) {
		rc = svc__faults_http(req, res);
		if (rc != SVC_OK)
			goto out;
	}
handle:
	if (strcmp(req->method, "POST") == 0 ||
	    strcmp(req->method, "PUT") == 0 ||
	    strcmp(req->method, "PATCH") == 0) {
		rc = parse_body(http, req, res, r->flags);
		if (rc != SVC_OK)
			goto out;
	}
	rc = r->handler(req, res);
	if ((rc == SVC_EVALIDATION && res->problem_code == NULL) ||
	    (rc == SVC_OK && res->field_errors)) {
		svc_res_problem(res, 422, "validation_failed",
				"%d invalid field%s", svc_res_field_errors(res),
				svc_res_field_errors(res) == 1 ? "" : "s");
	} else if (rc != SVC_OK && res->problem_code == NULL &&
		   (res->status < 400 || res->status == 0)) {
		svc_res_problem(res, svc_err_status(rc), svc_err_code(rc), "%s",
				svc_strerror(rc));
	} else if (res->status == 0) {
		svc_log(SVC_LOG_ERROR, "handler set no response",
			SVC_LOG_STR("route", r->path), SVC_LOG_END);
		svc_res_problem(res, 500, "internal_error", "internal error");
	}
out:
	if (res->problem_code != NULL)
		render_problem(req, res);
	if (res->status == 503 &&
	    svc_res_get_header(res, "Retry-After") == NULL)
		svc_res_header(res, "Retry-After", "1");
	if (res->content_type != NULL)
		svc_res_header(res, "Content-Type", res->content_type);
	svc_res_header(res, "X-Request-ID", req->request_id);
	set_security_headers(res);
	elapsed = svc_now_s() - req->started;
	count_request(http, req, res, elapsed);
	access_log(req, res, elapsed);
	/* Probes and scrapes are not worth a span each. */
	if (r == NULL || !(r->flags & SVC_ROUTE_OPS))
		end_span(req, res);
	svc_log_set_context(NULL, NULL);
}

/* --- validation helpers --- */

static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

bool
svc_json_string(struct svc_res *res, json_t *obj, const char *field,
		size_t min_chars, size_t max_chars, bool required,
		const char **out, bool *present)
{
	json_t *v = json_object_get(obj, field);
	size_t n;

	if (present != NULL)
		*present = v != NULL && !json_is_null(v);
	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			svc_res_field_error(res, field, "is required");
		return !required;
	}
	if (!json_is_string(v)) {
		svc_res_field_error(res, field, "must be a string");
		return false;
	}
	n = utf8_chars(json_string_value(v));
	if (n < min_chars || n > max_chars) {
		if (min_chars > 0 && n < min_chars)
			svc_res_field_error(
				res, field,
				"must be %zu to %zu characters long", min_chars,
				max_chars);
		else
			svc_res_field_error(
				res, field,
				"must be at most %zu characters long",
				max_chars);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool
svc_json_integer(struct svc_res *res, json_t *obj, const char *field,
		 long long min, long long max, bool required, long long *out,
		 bool *present)
{
	json_t *v = json_object_get(obj, field);

	if (present != NULL)
		*present = v != NULL && !json_is_null(v);
	*out = 0;
	if (v == NULL || json_is_null(v)) {
		if (required)
			svc_res_field_error(res, field, "is required");
		return !required;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		svc_res_field_error(res, field,
				    "must be an integer from %lld to %lld", min,
				    max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

int
svc_query_int(struct svc_req *req, struct svc_res *res, const char *name,
	      long long def, long long min, long long max, long long *out)
{
	const char *v = svc_req_query(req, name);
	long long n = 0;
	int digits = 0;

	*out = def;
	if (v == NULL)
		return SVC_OK;
	for (const char *p = v; *p != '\0'; p++, digits++) {
		if (!isdigit((unsigned char)*p) || digits > 15)
			goto bad;
		n = n * 10 + (*p - '0');
	}
	if (digits == 0 || n < min || n > max)
		goto bad;
	*out = n;
	return SVC_OK;
bad:
	return svc_res_problem(
		res, 400, "invalid_parameter",
		"query parameter %s must be an integer from %lld to %lld", name,
		min, max);
}

static int
by_product(const void *a, const void *b)
{
	return strcmp(((const struct svc_line *)a)->product_id,
		      ((const struct svc_line *)b)->product_id);
}

bool
svc_json_lines(struct svc_res *res, json_t *obj, const char *field, int max,
	       long long max_quantity, struct svc_line *out, int *n)
{
	json_t *list = json_object_get(obj, field), *it, *q;
	int errors = svc_res_field_errors(res);
	size_t i;

	*n = 0;
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > (size_t)max) {
		svc_res_field_error(res, field,
				    "must be an array of 1 to %d items", max);
		return false;
	}
	json_array_foreach(list, i, it)
	{
		struct svc_line *line = &out[(*n)++];
		const char *pid =
			json_string_value(json_object_get(it, "product_id"));
		char name[64];

		memset(line, 0, sizeof(*line));
		snprintf(name, sizeof(name), "%s[%zu].product_id", field, i);
		if (svc_uuid_valid(pid)) {
			for (int k = 0; k < SVC_UUID_LEN; k++)
				line->product_id[k] =
					(char)tolower((unsigned char)pid[k]);
		} else {
			svc_res_field_error(res, name, "must be a UUID");
		}
		snprintf(name, sizeof(name), "%s[%zu].quantity", field, i);
		q = json_object_get(it, "quantity");
		if (json_is_integer(q) && json_integer_value(q) >= 1 &&
		    json_integer_value(q) <= max_quantity)
			line->quantity = json_integer_value(q);
		else
			svc_res_field_error(res, name,
					    "must be an integer from 1 to %lld",
					    max_quantity);
	}
	if (svc_res_field_errors(res) > errors)
		return false;
	qsort(out, (size_t)*n, sizeof(*out), by_product);
	for (int k = 1; k < *n; k++) {
		if (strcmp(out[k].product_id, out[k - 1].product_id) == 0) {
			svc_res_field_error(res, field,
					    "product %s appears twice",
					    out[k].product_id);
			return false;
		}
	}
	return true;
}
