/*
 * health.c - the check registry behind /health and /health/ready.
 *
 * Checks run on the worker thread that serves the health request, using
 * that thread's database connection - the same path a business request
 * takes, which is exactly what a probe should exercise.
 */
#include "svc/health.h"

#include <stdatomic.h>
#include <string.h>

#include "svc/db.h"
#include "svc/err.h"
#include "svc/util.h"

#define MAX_CHECKS 16

static struct {
	const char *name;
	svc_health_fn fn;
	void *arg;
	bool critical;
} checks[MAX_CHECKS];
static int nchecks;
static atomic_bool draining;

static const char *const status_names[] = { "up", "degraded", "down" };

int
svc_health_register(const char *name, svc_health_fn fn, void *arg,
		    bool critical)
{
	if (nchecks == MAX_CHECKS)
		return SVC_EINVAL;
	checks[nchecks].name = name;
	checks[nchecks].fn = fn;
	checks[nchecks].arg = arg;
	checks[nchecks].critical = critical;
	nchecks++;
	return SVC_OK;
}

void
svc_health_reset(void)
{
	nchecks = 0;
	atomic_store(&draining, false);
}

void
svc_health_set_draining(bool on)
{
	atomic_store(&draining, on);
}

bool
svc_health_draining(void)
{
	return atomic_load(&draining);
}

/* Runs the checks (critical ones only if asked) into a report. */
static json_t *
run(bool critical_only, bool *down, bool *degraded)
{
	json_t *all = json_object();
	char ts[32];

	*down = *degraded = false;
	for (int i = 0; i < nchecks; i++) {
		json_t *detail;
		enum svc_health_status st;
		double t0;

		if (critical_only && !checks[i].critical)
			continue;
		detail = json_object();
		t0 = svc_now_s();
		st = checks[i].fn(detail, checks[i].arg);
		json_object_set_new(detail, "status",
				    json_string(status_names[st]));
		json_object_set_new(
			detail, "latency_ms",
			json_real(
				(double)(long long)((svc_now_s() - t0) * 1e5) /
				100.0));
		json_object_set_new(all, checks[i].name, detail);
		if (st == SVC_HEALTH_DOWN && checks[i].critical)
			*down = true;
		else if (st != SVC_HEALTH_UP)
			*degraded = true;
	}
	svc_rfc3339_now(ts);
	return json_pack("{s:s, s:o, s:s}", "status",
			 *down	     ? "unhealthy"
			 : *degraded ? "degraded"
				     : "healthy",
			 "checks", all, "timestamp", ts);
}

json_t *
svc_health_report(int *http_status)
{
	bool down, degraded;
	json_t *report = run(false, &down, &degraded);

	*http_status = down ? 503 : 200;
	return report;
}

json_t *
svc_health_ready(int *http_status)
{
	bool down, degraded;
	json_t *report = run(true, &down, &degraded);

	if (svc_health_draining()) {
		json_object_set_new(report, "status", json_string("draining"));
		down = true;
	}
	*http_status = down ? 503 : 200;
	return report;
}

enum svc_health_status
svc_health_check_db(json_t *detail, void *arg)
{
	struct svc_db *db = svc_db_thread();
	int rc;

	(void)arg;
	if (db == NULL) {
		json_object_set_new(detail, "error",
				    json_string("cannot connect"));
		return SVC_HEALTH_DOWN;
	}
	rc = svc_db_sql(db, "SELECT 1");
	if (rc != SVC_OK) {
		json_object_set_new(detail, "error",
				    json_string(svc_strerror(rc)));
		return SVC_HEALTH_DOWN;
	}
	return SVC_HEALTH_UP;
}
