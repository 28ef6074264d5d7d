/*
 * svc/http.h - requests, responses and the route table.
 *
 * Handlers see only these types, never libmicrohttpd's, so a test can build
 * a request with svc_req_new(), run it through svc_http_handle() exactly as
 * the server does, and look at the response - no sockets involved. The
 * server adapter (http_server.c) fills a svc_req from a connection and sends
 * the svc_res back.
 *
 * svc_http_handle() is the pipeline every request takes: request id, route
 * match (404, 405 with Allow), bearer-token check (401/403), the faults
 * set for the route with FAULTS=on (svc/faults.h: a delay, a 500 or 503),
 * body checks (413, 415, 400 for malformed JSON, duplicate keys or deep
 * nesting), the handler, then the headers every response carries
 * (X-Request-ID, the security headers).
 *
 * Rate limiting (svc/ratelimit.h) runs after routing and after the bearer
 * token, if any, was checked: every route but the operational ones
 * (SVC_ROUTE_OPS) takes a token from the bucket of the token's `sub`
 * (role service: its own bucket under the service rule), or of the client
 * address when there is no valid token - unmatched paths (404/405) and
 * invalid tokens (401) count against the address too. Over the limit the
 * answer is 429 `rate_limited` with Retry-After; every limited route's
 * response carries RateLimit-Limit, RateLimit-Remaining and
 * RateLimit-Reset. Refusals are counted in
 * http_rate_limited_total{route}. Errors become RFC 9457 problem documents with
 * an `error` member and the request id. Each request is counted in
 * http_requests_total{method,route,status} and timed in
 * http_request_duration_seconds{method,route}, route being the template
 * ("unmatched" when none matched); the server keeps
 * http_active_connections.
 */
#ifndef SVC_HTTP_H
#define SVC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "svc/jwt.h"
#include "svc/ratelimit.h"

struct svc_req;
struct svc_res;

/* A handler: 0 when it set the response, or an SVC_E* code to answer with. */
typedef int (*svc_handler_fn)(struct svc_req *req, struct svc_res *res);

/* Route flags. */
enum {
	SVC_ROUTE_ADMIN = 1 << 0, /* bearer token with role admin */
	SVC_ROUTE_SERVICE = 1
			    << 1, /* bearer token with role service or admin */
	SVC_ROUTE_BODY = 1 << 2,  /* a JSON body is required */
	SVC_ROUTE_OPS = 1 << 3,	  /* operational: never rate limited */
	/* never slowed or failed by a fault (svc/faults.h): the routes
	 * that undo faults; operational routes never are either */
	SVC_ROUTE_NOFAULT = 1 << 4,
};

struct svc_route {
	const char
		*method;  /* "GET", "POST", ...; GET routes also answer HEAD */
	const char *path; /* template: "/api/v1/products/{id}" */
	svc_handler_fn handler;
	unsigned flags;
};

/* Limits and secrets the pipeline enforces; see svc_http_config_load(). */
struct svc_http_config {
	size_t max_body;    /* bytes; larger bodies get 413 */
	int max_json_depth; /* nesting of arrays/objects */
	const unsigned char *jwt_key;
	size_t jwt_key_len;
	/* A second key accepted (never used to sign): for rotating the
	 * secret without refusing tokens in flight; NULL when none. */
	const unsigned char *jwt_key_accept;
	size_t jwt_key_accept_len;
	long long jwt_leeway; /* seconds */
	/* Per-client limits; all zero (disabled) unless configured. */
	struct svc_ratelimit_config ratelimit;
};

/* The router: a route table plus the pipeline's configuration. */
struct svc_http;

/*
 * Builds a router over routes (terminated by a zeroed entry; borrowed, must
 * outlive the router). Templates are checked here: returns NULL when one is
 * malformed.
 */
struct svc_http *svc_http_new(const struct svc_route *routes,
			      const struct svc_http_config *cfg);
void svc_http_free(struct svc_http *http);

/* Runs req through the whole pipeline, filling res. */
void svc_http_handle(struct svc_http *http, struct svc_req *req,
		     struct svc_res *res);

/* The route table (borrowed), e.g. to print it. */
const struct svc_route *svc_http_routes(const struct svc_http *http);

/* --- requests --- */

/*
 * A request with its own memory pool. method and path are copied; path may
 * carry a query string, which is split off and parsed.
 */
struct svc_req *svc_req_new(const char *method, const char *path);
void svc_req_free(struct svc_req *req);

/* Adds a header (copied). Names compare case-insensitively. */
void svc_req_add_header(struct svc_req *req, const char *name,
			const char *value);
/* Adds a query argument (copied; already percent-decoded). */
void svc_req_add_query(struct svc_req *req, const char *name,
		       const char *value);
/*
 * Appends body bytes (copied). Returns SVC_ETOOBIG once the body passes
 * limit bytes; the excess is dropped.
 */
int svc_req_append_body(struct svc_req *req, const char *data, size_t len,
			size_t limit);
/* Peer address for logs and limits (copied). */
void svc_req_set_peer(struct svc_req *req, const char *addr);

const char *svc_req_method(const struct svc_req *req);
const char *svc_req_path(const struct svc_req *req);
/* A path parameter of the matched template, e.g. "id" (borrowed). */
const char *svc_req_param(const struct svc_req *req, const char *name);
/* First query argument called name (borrowed), or NULL. */
const char *svc_req_query(const struct svc_req *req, const char *name);
/* First header called name (borrowed), or NULL. */
const char *svc_req_header(const struct svc_req *req, const char *name);
/* The parsed JSON body (borrowed), or NULL when there was none. */
json_t *svc_req_json(const struct svc_req *req);
/* The raw body; *len gets its length. */
const char *svc_req_body(const struct svc_req *req, size_t *len);
/* The request id (borrowed): echoed from X-Request-ID or generated. */
const char *svc_req_id(const struct svc_req *req);
/*
 * This request's traceparent (borrowed): the caller's trace with a span
 * id of our own, or a new trace when the caller sent none or a malformed
 * one. Forward it on outbound calls and store it with outbox events.
 */
const char *svc_req_traceparent(const struct svc_req *req);
/* The verified bearer claims, or NULL for an anonymous request. */
const struct svc_jwt_claims *svc_req_claims(const struct svc_req *req);
/* The matched route's template ("/api/v1/products/{id}"), or NULL. */
const char *svc_req_route(const struct svc_req *req);
const char *svc_req_peer(const struct svc_req *req);

/* Allocates from the request's pool; freed with the request. Never NULL. */
void *svc_req_alloc(struct svc_req *req, size_t size);
char *svc_req_strdup(struct svc_req *req, const char *s);
char *svc_req_printf(struct svc_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* --- responses --- */

struct svc_res *svc_res_new(void);
void svc_res_free(struct svc_res *res);

/* Answers status with body (steals the reference; NULL for no body). */
int svc_res_json(struct svc_res *res, int status, json_t *body);
/*
 * Answers status with text that is already JSON (copied): the fast path for
 * rows the database rendered as JSON.
 */
int svc_res_raw(struct svc_res *res, int status, const char *json, size_t len);
/*
 * Answers status with body, which is not JSON: takes body (malloc'd, freed
 * with the response) and borrows content_type, which must be static. On
 * SVC_EINVAL (NULL body) nothing was taken.
 */
int svc_res_take(struct svc_res *res, int status, const char *content_type,
		 char *body, size_t len);
/* Answers with no body (204). */
int svc_res_empty(struct svc_res *res, int status);
/*
 * Answers with a problem document. code is the `error` member
 * ("not_found"); detail is printf-formatted. Returns the SVC_E* code that
 * matches status, so handlers can `return svc_res_problem(...)`.
 */
int svc_res_problem(struct svc_res *res, int status, const char *code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * Records an invalid field for a 422 answer. The handler then returns
 * SVC_EVALIDATION and the pipeline writes all recorded fields as "errors".
 */
void svc_res_field_error(struct svc_res *res, const char *field,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Adds a member to the problem document of this response (steals value),
 * e.g. the short items of a 409 insufficient_stock. The standard members
 * always win over one of the same name.
 */
void svc_res_problem_member(struct svc_res *res, const char *name,
			    json_t *value);
/* Number of field errors recorded so far. */
int svc_res_field_errors(const struct svc_res *res);
/* Sets a header (both copied); replaces one of the same name. */
void svc_res_header(struct svc_res *res, const char *name, const char *value);

int svc_res_status(const struct svc_res *res);
const char *svc_res_body(const struct svc_res *res, size_t *len);
const char *svc_res_get_header(const struct svc_res *res, const char *name);
/* Calls fn for each header, in the order they were set. */
void svc_res_foreach_header(const struct svc_res *res,
			    void (*fn)(const char *name, const char *value,
				       void *arg),
			    void *arg);

/* --- JSON body validation helpers --- */

/*
 * Each reads obj[field]; when it is present but invalid, or absent but
 * required, it records a field error on res and returns false. *present
 * (may be NULL) tells whether the field was there (null counts as absent
 * unless allow_null is set for strings).
 */
bool svc_json_string(struct svc_res *res, json_t *obj, const char *field,
		     size_t min_chars, size_t max_chars, bool required,
		     const char **out, bool *present);
bool svc_json_integer(struct svc_res *res, json_t *obj, const char *field,
		      long long min, long long max, bool required,
		      long long *out, bool *present);

/* One line of an order or a reservation: a product and a quantity. */
struct svc_line {
	char product_id[37]; /* a UUID in lower case */
	long long quantity;
};

/*
 * Reads obj[field] as 1..max lines {"product_id": UUID, "quantity":
 * 1..max_quantity}, each product at most once, into out (room for max)
 * and *n. The lines come back sorted by product id, so a caller that locks
 * rows per product always locks in the same order. Invalid input records
 * field errors ("items[2].quantity") and returns false.
 */
bool svc_json_lines(struct svc_res *res, json_t *obj, const char *field,
		    int max, long long max_quantity, struct svc_line *out,
		    int *n);

/* Parses a query integer in [min, max]; def when absent. SVC_EINVAL else. */
int svc_query_int(struct svc_req *req, struct svc_res *res, const char *name,
		  long long def, long long min, long long max, long long *out);

/* --- the server (libmicrohttpd) --- */

struct svc_server_config {
	const char *host; /* listen address, "0.0.0.0" or "127.0.0.1" */
	int port;
	int threads; /* worker threads, each with its own DB connection */
	int connection_timeout_s;  /* idle or slow connections are closed */
	long long read_timeout_ms; /* for a request to arrive whole */
	int max_connections;	   /* in total */
	int max_per_ip; /* per client address, past half of the total */
	size_t memory_per_connection; /* bounds the header size (431 past it) */
};

struct svc_server;

/* Starts serving http on a thread pool; NULL (logged) on failure. */
struct svc_server *svc_server_start(struct svc_http *http,
				    const struct svc_server_config *cfg);
/*
 * Stops accepting: the connections the kernel already accepted are taken
 * and served, then the listening socket closes, so a new connection
 * attempt is refused at once (never left waiting). Open connections are
 * still served, and every response from now on carries "Connection:
 * close", so each connection ends cleanly after its next response.
 */
void svc_server_quiesce(struct svc_server *srv);
/* Requests being served now. */
int svc_server_in_flight(const struct svc_server *srv);
/* Client connections open now, idle keep-alive ones included. */
int svc_server_connections(const struct svc_server *srv);
/* Stops the server, closing every connection; NULL is a no-op. */
void svc_server_stop(struct svc_server *srv);

#endif
