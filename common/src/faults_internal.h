/*
 * faults_internal.h - what the fault registry (faults.c), its document
 * parser (faults_spec.c), its routes (faults_admin.c) and the modules it
 * can break (http.c, upstream.c, outbox.c, consumer.c) share, and nothing
 * a service should touch. svc/faults.h is the public side.
 */
#ifndef SVC_FAULTS_INTERNAL_H
#define SVC_FAULTS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "svc/client.h"
#include "svc/faults.h"
#include "svc/http.h"
#include "svc/metrics.h"

enum svc_fault_kind {
	SVC_FAULT_HTTP_LATENCY,
	SVC_FAULT_HTTP_ERROR,
	SVC_FAULT_UPSTREAM_LATENCY,
	SVC_FAULT_UPSTREAM_ERROR,
	SVC_FAULT_RELAY_PAUSE,
	SVC_FAULT_CONSUMER_PAUSE,
	SVC_FAULT_DUPLICATE_DELIVERY,
	SVC_FAULT_KINDS
};

#define SVC_FAULT_NAME_MAX	 64	 /* bytes of a name */
#define SVC_FAULT_TARGET_MAX	 200	 /* bytes of a target */
#define SVC_FAULT_LATENCY_MAX	 30000	 /* ms */
#define SVC_FAULT_TTL_DEFAULT	 300000	 /* ms: 5 minutes */
#define SVC_FAULT_TTL_MIN	 100	 /* ms */
#define SVC_FAULT_TTL_MAX	 3600000 /* ms: 1 hour */
#define SVC_FAULTS_MAX_UPSTREAMS 16

/* One fault: what the document said, then what the registry adds. */
struct svc_fault {
	char name[SVC_FAULT_NAME_MAX + 1];
	enum svc_fault_kind kind;
	/* A route template, an upstream or a queue; "" for all of them. */
	char target[SVC_FAULT_TARGET_MAX + 1];
	/* Latency kinds: a delay uniform in [min_ms, max_ms]; fixed_ms says
	 * the document gave "ms" (min_ms == max_ms) rather than a range. */
	long long min_ms, max_ms;
	bool fixed_ms;
	double rate; /* error and duplicate kinds: a fraction in [0, 1] */
	/* http_error: 500 or 503; upstream_error: 0 (the connection fails),
	 * 500, 502, 503 or 504. */
	int status;
	long long ttl_ms;

	/* The registry's, under its lock from here on. */
	uint64_t serial;      /* unique per set, so a sleep knows its own */
	long long expires_ms; /* on the registry's clock */
	long long set_at_ms;  /* wall clock */
	char set_by[128];     /* the sub of the token that set it */
	unsigned long long injected;
	struct svc_metric_series *active_series, *injected_series;
};

/* What the process has that a fault may name (borrowed by the parser). */
struct svc_fault_targets {
	const struct svc_route *routes;		      /* may be NULL */
	const struct svc_subscription *subscriptions; /* may be NULL */
	bool relay;
	const char *const *upstreams; /* n_upstreams names */
	int n_upstreams;
};

/* "http_latency", ... (static), or NULL for a value out of range. */
const char *svc__faults_kind_name(enum svc_fault_kind kind);

/*
 * Reads one fault document (borrowed) into *out. name (borrowed) is its
 * name; with name NULL the document must carry a valid "name" member.
 * Field errors are recorded on res with their names prefixed by prefix
 * ("faults[2]" gives "faults[2].ms"; "" for none). Returns true when the fault
 * is valid for a process with targets.
 */
bool svc__faults_parse(json_t *doc, const char *name, const char *prefix,
		       const struct svc_fault_targets *targets,
		       struct svc_fault *out, struct svc_res *res);

/* Whether name is 1..64 of A-Z, a-z, 0-9, '.', '_' and '-'. */
bool svc__faults_name_valid(const char *name);

/*
 * The fault as GET shows it (new reference): its document plus
 * expires_at, expires_in, set_by, set_at, injected. now_ms is the
 * registry's clock.
 */
json_t *svc__faults_json(const struct svc_fault *f, long long now_ms);

/* --- the registry, for faults_admin.c --- */

/* The targets of this process, for the parser; call under no lock. */
void svc__faults_targets(struct svc_fault_targets *t,
			 const char *names[SVC_FAULTS_MAX_UPSTREAMS]);

/*
 * Sets faults[0..n) (copied), replacing the fault of the same name, or -
 * with replace_all - every fault. by is the token's sub. Returns 0,
 * SVC_ECONFLICT when more than SVC_FAULTS_MAX would be active (nothing
 * changed), or SVC_ENOTFOUND when FAULTS is off. *created (may be NULL)
 * tells whether a single fault was new.
 */
int svc__faults_set(const struct svc_fault *faults, int n, bool replace_all,
		    const char *by, bool *created);

/* Clears the fault called name, or every fault for NULL; returns how
 * many were cleared. */
int svc__faults_clear(const char *name, const char *by);

/* {"faults":[...],"targets":{...}} (new), or one fault (NULL when none). */
json_t *svc__faults_list(void);
json_t *svc__faults_get(const char *name);

/* Makes name known as an upstream that faults may target (copied). */
void svc__faults_add_upstream(const char *name);

/* --- the hooks: each is one relaxed load while no fault is active --- */

/*
 * Before a request's handler: sleeps the latency of every http_latency
 * fault for its route, then lets each http_error fault draw. Returns 0 to
 * go on, or the SVC_E* code of the problem it wrote on res.
 */
int svc__faults_http(struct svc_req *req, struct svc_res *res);

/*
 * Before an attempt to the upstream name, whose timeout is *timeout_ms:
 * sleeps the latency of upstream_latency faults (at most *timeout_ms,
 * which is reduced by the sleep), then lets upstream_error faults draw.
 * Returns false to make the real call; true when a fault took its place,
 * with *rc and out (status, error) saying how it went: SVC_ETIMEOUT when
 * the delay used the whole timeout, SVC_EUNAVAIL for a failed connection,
 * 0 with out->status for an answer.
 */
bool svc__faults_upstream(const char *name, long long *timeout_ms, int *rc,
			  struct svc_client_response *out);

/*
 * Whether a fault of kind (relay_pause or consumer_pause) holds target
 * (a queue; NULL for the relay) now; with count, it is counted in the
 * fault's injected total.
 */
bool svc__faults_paused(enum svc_fault_kind kind, const char *target,
			bool count);

/* Whether a duplicate_delivery fault picks this event of queue (counted). */
bool svc__faults_duplicate(const char *queue);

#endif
