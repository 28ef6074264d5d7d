/*
 * upstream.c - client + breaker + retry, the way every outbound call goes.
 *
 * svc_retry_run() drives the attempts; each attempt first asks the breaker
 * (an open circuit ends the chain with SVC_ECIRCUIT, which the retry layer
 * does not retry), clips the call's timeout to the per-attempt timeout and
 * to what is left of the deadline, makes the call, and tells the
 * breaker how it went. Only the
 * last attempt's answer is kept. With FAULTS=on an upstream_latency or
 * upstream_error fault (svc/faults.h) may delay an attempt or take its
 * place; the breaker and the retries see it as they would a real outage.
 */
#include "svc/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults_internal.h"
#include "svc/config.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/util.h"

struct svc_upstream {
	char name[32];
	char *base_url;
	struct svc_breaker *breaker;
	struct svc_retry_policy retry;
	long long deadline_ms;
	long long attempt_timeout_ms;
	/* http_client_requests_total{target,status} and the duration */
	struct svc_metric *calls;
	struct svc_metric_series *duration, *refused, *timeout, *error;
};

void
svc_upstream_config_read(const char *name, const char *url_key,
			 const char *default_url,
			 struct svc_upstream_config *cfg)
{
	char prefix[32], key[64];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; name[i] != '\0' && i < sizeof(prefix) - 1; i++)
		prefix[i] =
			(char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32
								: name[i]);
	prefix[i] = '\0';
	cfg->name = name;
	svc_config_describe(url_key, "http:// or https:// URL");
	cfg->base_url = svc_config_str(url_key, default_url);
	if (strncmp(cfg->base_url, "http://", 7) != 0 &&
	    strncmp(cfg->base_url, "https://", 8) != 0) {
		char shown[512];

		svc_redact_url(cfg->base_url, shown, sizeof(shown));
		svc_config_fail(url_key,
				"must be an http:// or https:// URL, "
				"got \"%s\"",
				shown);
	}
	cfg->breaker.target = name;
	svc_breaker_config_read(prefix, &cfg->breaker);
	svc_retry_config_read(prefix, &cfg->retry);
	snprintf(key, sizeof(key), "%s_DEADLINE", prefix);
	cfg->deadline_ms = svc_config_duration_ms(key, "2s", 10, 600000);
	snprintf(key, sizeof(key), "%s_ATTEMPT_TIMEOUT", prefix);
	cfg->attempt_timeout_ms = svc_config_duration_ms(key, "1s", 10, 600000);
}

/* The series that need no lookup per call are found here, once. */
static void
register_metrics(struct svc_upstream *u)
{
	struct svc_metric *hist = svc_metrics_histogram(
		NULL, "http_client_request_duration_seconds",
		"Outbound HTTP calls (each attempt), time to the answer or "
		"the failure, in seconds.",
		(const char *[]){ "target", NULL }, svc_metrics_latency_buckets,
		svc_metrics_latency_nbuckets, 32);

	u->calls = svc_metrics_counter(
		NULL, "http_client_requests_total",
		"Outbound HTTP calls (each attempt), by target and status: the "
		"HTTP status, or error, timeout, circuit_open.",
		(const char *[]){ "target", "status", NULL }, 200);
	u->duration = svc_metrics_series(hist, (const char *[]){ u->name });
	u->refused = svc_metrics_series(
		u->calls, (const char *[]){ u->name, "circuit_open" });
	u->timeout = svc_metrics_series(u->calls,
					(const char *[]){ u->name, "timeout" });
	u->error = svc_metrics_series(u->calls,
				      (const char *[]){ u->name, "error" });
}

static void
count_call(struct svc_upstream *u, int rc, long status, double seconds)
{
	char code[16];

	svc_metrics_observe(u->duration, seconds);
	if (rc == SVC_ETIMEOUT) {
		svc_metrics_inc(u->timeout);
	} else if (rc != SVC_OK) {
		svc_metrics_inc(u->error);
	} else {
		snprintf(code, sizeof(code), "%ld", status);
		svc_metrics_inc(svc_metrics_series(
			u->calls, (const char *[]){ u->name, code }));
	}
}

struct svc_upstream *
svc_upstream_new(const struct svc_upstream_config *cfg)
{
	struct svc_upstream *u = calloc(1, sizeof(*u));
	size_t n;

	if (u == NULL)
		return NULL;
	snprintf(u->name, sizeof(u->name), "%s", cfg->name);
	u->base_url = strdup(cfg->base_url);
	u->breaker = svc_breaker_new(&cfg->breaker);
	if (u->base_url == NULL || u->breaker == NULL) {
		svc_upstream_free(u);
		return NULL;
	}
	/* "http://host:port/" and "http://host:port" mean the same. */
	n = strlen(u->base_url);
	if (n > 0 && u->base_url[n - 1] == '/')
		u->base_url[n - 1] = '\0';
	u->retry = cfg->retry;
	u->deadline_ms = cfg->deadline_ms > 0 ? cfg->deadline_ms : 2000;
	u->attempt_timeout_ms =
		cfg->attempt_timeout_ms > 0 ? cfg->attempt_timeout_ms : 1000;
	register_metrics(u);
	svc__faults_add_upstream(u->name);
	return u;
}

void
svc_upstream_free(struct svc_upstream *u)
{
	if (u == NULL)
		return;
	svc_breaker_free(u->breaker);
	free(u->base_url);
	free(u);
}

/* One call in a chain: what it needs, and where the answer goes. */
struct attempt {
	struct svc_upstream *u;
	const struct svc_upstream_request *req;
	struct svc_client_request creq;
	struct svc_client_response *out;
};

static int
attempt(void *arg, long long deadline_ms, long *http_status)
{
	struct attempt *a = arg;
	long long left = deadline_ms - svc_now_ms();
	double started;
	int rc;

	if (!svc_breaker_allow(a->u->breaker)) {
		svc_metrics_inc(a->u->refused);
		return SVC_ECIRCUIT;
	}
	svc_client_response_cleanup(a->out);
	/* Each attempt has its own timeout, never past the chain's deadline. */
	if (left > a->u->attempt_timeout_ms)
		left = a->u->attempt_timeout_ms;
	a->creq.timeout_ms = left > 0 ? left : 1;
	started = svc_now_s();
	if (!svc__faults_upstream(a->u->name, &a->creq.timeout_ms, &rc, a->out))
		rc = svc_client_do(&a->creq, a->out);
	count_call(a->u, rc, a->out->status, svc_now_s() - started);
	*http_status = a->out->status;
	svc_breaker_record(a->u->breaker, rc == SVC_OK && a->out->status < 500);
	if (rc != SVC_OK)
		svc_log(SVC_LOG_WARN, "upstream call failed",
			SVC_LOG_STR("upstream", a->u->name),
			SVC_LOG_STR("path", a->req->path),
			SVC_LOG_STR("error", a->out->error), SVC_LOG_END);
	return rc;
}

int
svc_upstream_call(struct svc_upstream *u,
		  const struct svc_upstream_request *req,
		  struct svc_client_response *out)
{
	struct attempt a = { .u = u, .req = req, .out = out };
	char url[2048];

	memset(out, 0, sizeof(*out));
	if (snprintf(url, sizeof(url), "%s%s", u->base_url, req->path) >=
	    (int)sizeof(url))
		return SVC_EINVAL;
	a.creq.method = req->method;
	a.creq.url = url;
	a.creq.body = req->body;
	a.creq.request_id = req->request_id;
	a.creq.traceparent = req->traceparent;
	return svc_retry_run(&u->retry, req->idempotent,
			     svc_now_ms() + u->deadline_ms, attempt, &a, NULL);
}

enum svc_breaker_state
svc_upstream_state(const struct svc_upstream *u)
{
	return svc_breaker_state(u->breaker);
}

long long
svc_upstream_retry_after_s(const struct svc_upstream *u)
{
	long long ms = svc_breaker_retry_after_ms(u->breaker);

	return ms > 0 ? (ms + 999) / 1000 : 1;
}

const char *
svc_upstream_name(const struct svc_upstream *u)
{
	return u->name;
}
