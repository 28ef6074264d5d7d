/*
 * svc/client.h - outbound HTTP calls from one service to another (libcurl).
 *
 * One call is one HTTP exchange: JSON out, JSON back, the caller's
 * X-Request-ID and traceparent forwarded, and a short-lived service token
 * (role "service", 5 minutes) added; the token is minted here, shared by
 * every thread and re-minted a minute before it expires. Each thread keeps
 * one libcurl handle, and with it a keep-alive connection per peer, so a
 * steady stream of calls pays no connect. Every call has a connect timeout,
 * a total timeout and a cap on the response size. A transport failure
 * (refused, reset, timed out, oversized answer) is an error code; an HTTP
 * answer, 4xx and 5xx included, is a success carrying its status: the
 * caller decides what a 409 or a 503 means. This is the bare client, not
 * the resilient one: no retries, no circuit breaker, no fallbacks - the
 * layer that combines it with breaker.h and retry.h adds those.
 */
#ifndef SVC_CLIENT_H
#define SVC_CLIENT_H

#include <stddef.h>
#include <jansson.h>

/* The service token's lifetime and when it is replaced. */
#define SVC_CLIENT_TOKEN_TTL	 300 /* seconds */
#define SVC_CLIENT_TOKEN_REFRESH 60  /* re-minted with less than this left */

struct svc_client_config {
	const char *service_name;     /* token `sub`, User-Agent (copied) */
	const unsigned char *jwt_key; /* HS256 key (copied) */
	size_t jwt_key_len;	      /* at least SVC_JWT_MIN_KEY */
	long long connect_timeout_ms; /* 0: 1000 */
	long long timeout_ms;	      /* the whole call; 0: 3000 */
	size_t max_response;	      /* body bytes; 0: 1048576 */
};

/*
 * Fills the timeouts and the size cap of cfg from the configuration:
 * HTTP_CLIENT_CONNECT_TIMEOUT ("1s"), HTTP_CLIENT_TIMEOUT ("3s") and
 * HTTP_CLIENT_MAX_RESPONSE (bytes, 1048576). service_name and the key are
 * left alone: the caller has them from SERVICE_NAME and JWT_SECRET. An
 * invalid value is recorded for svc_config_ok()/svc_config_error().
 */
void svc_client_config_read(struct svc_client_config *cfg);

/*
 * Sets the client up; call once at start-up, before any thread calls
 * svc_client_do(). Copies what it keeps from cfg. Returns 0, or SVC_EINVAL
 * when the name is missing or longer than a token `sub` allows, the key is
 * shorter than SVC_JWT_MIN_KEY, or the client is already set up;
 * SVC_EINTERNAL when libcurl cannot be initialised.
 */
int svc_client_init(const struct svc_client_config *cfg);

/*
 * Closes every thread's handle and connections and forgets the
 * configuration and the token, at shutdown, once no call is in flight.
 * Threads may call again only after another svc_client_init(). A handle
 * whose thread exited earlier was already freed then. Harmless when the
 * client was never set up.
 */
void svc_client_cleanup_all(void);

struct svc_client_request {
	const char *method; /* "GET", "POST", ...; NULL means GET */
	const char *url;    /* http:// or https:// only; no redirects */
	/*
	 * The body: JSON text (borrowed), or a JSON value (borrowed, sent
	 * compact), or neither. Either one sets Content-Type.
	 */
	const char *body;
	json_t *json;
	/*
	 * The caller's context, forwarded as X-Request-ID and traceparent
	 * (borrowed, may be NULL). In a handler: svc_req_id(req) and
	 * svc_req_header(req, "traceparent"). A value that is not a valid
	 * request id or W3C traceparent is left out, not sent.
	 */
	const char *request_id;
	const char *traceparent;
	/* More "Name: value" lines (borrowed), NULL-terminated, or NULL. */
	const char *const *headers;
	long long connect_timeout_ms; /* 0: the configured default */
	long long timeout_ms;	      /* 0: the configured default */
	size_t max_response;	      /* 0: the configured default */
};

/*
 * The answer. Everything in it is owned by the response and freed by
 * svc_client_response_cleanup(); to keep the JSON, take a reference
 * (json_incref) or steal it (copy the pointer, set json to NULL).
 */
struct svc_client_response {
	long status;  /* HTTP status; 0 when the call failed */
	char *body;   /* NUL-terminated ("" when empty); NULL on failure */
	size_t len;   /* body bytes, excluding the NUL */
	json_t *json; /* the parsed body (new), NULL when empty or not JSON */
	char retry_after[32];	 /* Retry-After as sent, or "" */
	long long retry_after_s; /* Retry-After in seconds, -1 when absent */
	char *location;		 /* Location, or NULL */
	char error[160];	 /* why the call failed, "" on success */
};

/*
 * Makes one call on the calling thread's handle, adding Accept and
 * Authorization: Bearer <service token>. Always initialises *out first,
 * so svc_client_response_cleanup(out) is right after any return.
 *
 * Returns 0 when an HTTP answer arrived, whatever its status, or:
 *   SVC_ETIMEOUT  no connection or no whole answer within the timeouts;
 *   SVC_EUNAVAIL  refused, unresolvable, reset or closed without an
 *                 answer, a malformed answer, or a body over the cap (the
 *                 peer misbehaved; logged with the reason);
 *   SVC_EINVAL    a bad request: no URL, another scheme, a malformed
 *                 method or header, both body and json, or no
 *                 svc_client_init();
 *   SVC_ENOMEM    out of memory.
 * out->error says why in words. Like every HTTP client with keep-alive,
 * libcurl sends a request again, once, when a reused connection turns out
 * to have been closed by the peer before any byte of the answer came back;
 * a write should therefore be idempotent (ours are, by their keys).
 */
int svc_client_do(const struct svc_client_request *req,
		  struct svc_client_response *out);

/* Frees what the response owns and empties it; NULL is a no-op. */
void svc_client_response_cleanup(struct svc_client_response *res);

#endif
