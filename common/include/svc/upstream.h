/*
 * svc/upstream.h - a dependency reached over HTTP, with the resilience
 * every outbound call needs: a circuit breaker, retries with full-jitter
 * backoff for idempotent calls, and a deadline for the whole chain.
 *
 * This is the layer a service talks to; it combines svc/client.h (one
 * HTTP exchange), svc/breaker.h and svc/retry.h. Every attempt is counted
 * by the breaker: an answer below 500 is a success (the dependency works,
 * even when it says 404 or 409), a transport failure or a 5xx is a
 * failure. While the circuit is open a call fails at once with
 * SVC_ECIRCUIT, touching no socket. Each attempt is counted in
 * http_client_requests_total{target,status} (status: the HTTP status,
 * timeout, error or circuit_open) and timed in
 * http_client_request_duration_seconds{target}; target is the name.
 */
#ifndef SVC_UPSTREAM_H
#define SVC_UPSTREAM_H

#include <stdbool.h>

#include "svc/breaker.h"
#include "svc/client.h"
#include "svc/retry.h"

struct svc_upstream_config {
	const char *name;     /* "products": logs, and the keys' prefix */
	const char *base_url; /* "http://127.0.0.1:8081" (copied) */
	struct svc_breaker_config breaker;
	struct svc_retry_policy retry;
	long long deadline_ms;	      /* budget of one call, retries included */
	long long attempt_timeout_ms; /* one attempt, within the deadline */
};

/*
 * Reads url_key (e.g. "PRODUCTS_URL", default default_url; must be
 * http:// or https://), <NAME>_BREAKER_*, <NAME>_RETRY_*,
 * <NAME>_DEADLINE (default "2s") and
 * <NAME>_ATTEMPT_TIMEOUT (default "1s") into cfg. Errors are recorded by
 * svc_config, naming the key. name is borrowed and must be static.
 */
void svc_upstream_config_read(const char *name, const char *url_key,
			      const char *default_url,
			      struct svc_upstream_config *cfg);

struct svc_upstream;

/* A new upstream (copies cfg), or NULL. svc_upstream_free(NULL) is a no-op. */
struct svc_upstream *svc_upstream_new(const struct svc_upstream_config *cfg);
void svc_upstream_free(struct svc_upstream *u);

struct svc_upstream_request {
	const char *method;	 /* NULL: GET */
	const char *path;	 /* appended to the base URL: "/api/v1/..." */
	const char *body;	 /* JSON text, or NULL (borrowed) */
	bool idempotent;	 /* may be retried after a retryable failure */
	const char *request_id;	 /* forwarded (borrowed, may be NULL) */
	const char *traceparent; /* forwarded (borrowed, may be NULL) */
};

/*
 * Calls the dependency. Returns 0 when it answered (*out holds the answer,
 * any status, after retries of 502/503/504 if idempotent), SVC_ECIRCUIT
 * when the circuit is open, SVC_EUNAVAIL or SVC_ETIMEOUT when it could not
 * be reached in the deadline, SVC_EINVAL for a bad request. *out is always
 * initialised; clean it with svc_client_response_cleanup().
 */
int svc_upstream_call(struct svc_upstream *u,
		      const struct svc_upstream_request *req,
		      struct svc_client_response *out);

/* The breaker's state, for health checks and metrics. */
enum svc_breaker_state svc_upstream_state(const struct svc_upstream *u);

/* Seconds a client should wait before trying again (>= 1), for Retry-After. */
long long svc_upstream_retry_after_s(const struct svc_upstream *u);

/* The name it was created with (borrowed). */
const char *svc_upstream_name(const struct svc_upstream *u);

#endif
