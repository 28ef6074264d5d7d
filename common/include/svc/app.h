/*
 * svc/app.h - a service's main(): configuration, subcommands, serving,
 * graceful shutdown.
 *
 * A service describes itself in one struct svc_app (name, port, routes,
 * statements) and hands it to svc_app_main(). That reads the configuration
 * (an invalid value: one line naming the key, exit 2), applies migrations,
 * serves HTTP until SIGTERM or SIGINT, then drains (docs/lifecycle.md):
 * readiness turns 503, consumers take no new event, the listener closes
 * (new connections are refused), open connections are served - each
 * response saying "Connection: close" - until they close or DRAIN_TIMEOUT
 * ends, a consumer's handler still running then is cancelled (its event
 * goes back to the queue), the relay publishes what is left, exit 0.
 *
 * Subcommands: `<svc>` serves; `<svc> migrate` applies migrations and
 * exits; `<svc> routes` prints the route table (with FAULTS=on, the
 * /admin/faults routes of svc/faults.h too); `<svc> token` mints a JWT
 * (--role, --sub, --ttl) with JWT_SECRET; --help lists every configuration
 * key with its default, from the code that reads it; --version prints the
 * VERSION file's version and `git describe` of the build.
 */
#ifndef SVC_APP_H
#define SVC_APP_H

#include "svc/consumer.h"
#include "svc/db.h"
#include "svc/http.h"

struct svc_app {
	const char *name;		/* "products" */
	int default_port;		/* 8081 */
	const struct svc_route *routes; /* the service's own routes */
	const struct svc_db_stmt *const *statements; /* NULL-terminated */
	/*
	 * Events the service consumes, terminated by an entry with a NULL
	 * queue; one consumer thread each when RABBITMQ_URL is set. May be
	 * NULL.
	 */
	const struct svc_subscription *subscriptions;
	/*
	 * Reads the service's own keys with svc_config_*; called with the
	 * common ones, so a bad value stops start-up the same way (exit 2).
	 * May be NULL.
	 */
	void (*configure)(void);
	/* Called after configuration, before serving; may be NULL. */
	int (*init)(void);
	/* Called after the server stopped; may be NULL. */
	void (*cleanup)(void);
};

int svc_app_main(const struct svc_app *app, int argc, char **argv);

#endif
