/*
 * svc/health.h - the health checks behind /health and /health/ready.
 *
 * A check is a named function that fills a JSON object with at least
 * "status": "up", "degraded" or "down". /health runs every check and rolls
 * them up: any critical check down makes the service unhealthy (503); a
 * non-critical one down, or any degraded, makes it degraded (200).
 * /health/ready is 200 only when every critical check is up and the
 * service is not draining; /health/live only says the process answers.
 */
#ifndef SVC_HEALTH_H
#define SVC_HEALTH_H

#include <stdbool.h>
#include <jansson.h>

enum svc_health_status {
	SVC_HEALTH_UP,
	SVC_HEALTH_DEGRADED,
	SVC_HEALTH_DOWN,
};

/* Fills detail (borrowed) with extra members; returns the status. */
typedef enum svc_health_status (*svc_health_fn)(json_t *detail, void *arg);

/* Registers a check (name borrowed, must be static). Up to 16 checks. */
int svc_health_register(const char *name, svc_health_fn fn, void *arg,
			bool critical);

/* Forgets every check (tests). */
void svc_health_reset(void);

/* Marks the service as draining: readiness fails from now on. */
void svc_health_set_draining(bool draining);
bool svc_health_draining(void);

/*
 * Runs every check into a new object {"status","checks","timestamp"} and
 * returns it (new reference); *http_status gets 200 or 503.
 */
json_t *svc_health_report(int *http_status);

/* Readiness: 200 or 503, with a report of the critical checks. */
json_t *svc_health_ready(int *http_status);

/* The database check: SELECT 1 on the thread's connection. */
enum svc_health_status svc_health_check_db(json_t *detail, void *arg);

#endif
