/*
 * svc/faults.h - faults injected at run time, on purpose: slow or failing
 * routes, failing or slow upstreams, a paused outbox relay, paused
 * consumers, events handled twice - to watch the breakers, retries, the
 * outbox and the inbox do their work (docs/faults.md).
 *
 * Off unless FAULTS=on. Then every service answers GET, PUT and DELETE on
 * /admin/faults and /admin/faults/{name} (svc_faults_routes, admin token
 * only; app.c adds them only when on, so with FAULTS=off they are a plain
 * 404). A fault is named, has a kind, the kind's parameters, an optional
 * target (a route template, an upstream, a queue) and a ttl: it heals by
 * itself when the ttl ends. Faults are process-local: each instance has
 * its own. Every change - set, cleared, expired - is logged with what and
 * by whom (the token's sub), /metrics has faults_active{kind,target} and
 * faults_injected_total{kind,target}, and /health lists the active faults
 * under "faults" without changing its status.
 *
 * The libsvc modules that can be broken ask the registry before their
 * work (faults_internal.h); with no fault active, that costs one relaxed
 * atomic load and takes no lock. This is not a test double: the service
 * runs its real code, only the answers around it change.
 */
#ifndef SVC_FAULTS_H
#define SVC_FAULTS_H

#include <stdbool.h>
#include <jansson.h>

#include "svc/consumer.h"
#include "svc/http.h"

/* Faults active at once, at most. */
#define SVC_FAULTS_MAX 32

struct svc_faults_config {
	bool enabled; /* FAULTS=on */
	/* The service's own routes, the ones faults may target (borrowed,
	 * must outlive the registry); NULL: none. */
	const struct svc_route *routes;
	/* The consumers that run here (borrowed, terminated by a NULL
	 * queue); NULL: none. */
	const struct svc_subscription *subscriptions;
	bool relay; /* an outbox relay runs here */
	/* How often expired faults are healed in the background; 0: only
	 * when the registry is used or svc_faults_expire() is called. */
	long long tick_ms;
};

/* Reads FAULTS (on|off, default off) into cfg->enabled; start-up only. */
void svc_faults_config_read(struct svc_faults_config *cfg);

/*
 * Sets the registry up from cfg (copied; what it points to is borrowed)
 * and, when cfg->tick_ms > 0, starts the thread that heals expired faults.
 * With cfg->enabled false, no fault can ever be set. Returns 0, or
 * SVC_ENOMEM when the thread could not start.
 */
int svc_faults_start(const struct svc_faults_config *cfg);

/* Clears every fault (logged), stops the thread; safe when not started. */
void svc_faults_stop(void);

/* Whether FAULTS=on was given to svc_faults_start(). */
bool svc_faults_enabled(void);

/*
 * GET, PUT and DELETE /admin/faults and /admin/faults/{name}, admin only,
 * terminated by a zeroed entry; app.c appends them when FAULTS=on.
 */
extern const struct svc_route svc_faults_routes[];

/*
 * The active faults, short form for /health (new reference): an array of
 * {"name","kind","target"?,"expires_at"}.
 */
json_t *svc_faults_health(void);

/*
 * Heals the faults whose ttl has ended (each logged); returns how many.
 * The background thread and every use of the registry call it.
 */
int svc_faults_expire(void);

/*
 * Where the registry gets time and randomness; a test passes fakes. A NULL
 * member means the real one: svc_now_ms(), a sleep that ends early when
 * the faults behind it are cleared, and a xorshift generator seeded from
 * OpenSSL. All three get arg.
 */
struct svc_faults_env {
	long long (*now_ms)(void *arg);		   /* monotonic milliseconds */
	void (*sleep_ms)(void *arg, long long ms); /* ms > 0 */
	double (*random)(void *arg);		   /* uniform in [0, 1) */
	void *arg;
};

/* Uses env (borrowed; NULL: the real ones) from now on. Tests only. */
void svc_faults_set_env(const struct svc_faults_env *env);

/*
 * Forgets every fault (not logged), the upstream names and the
 * configuration, and restores the real environment. Tests only.
 */
void svc_faults_reset(void);

#endif
