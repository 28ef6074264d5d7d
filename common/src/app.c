/*
 * app.c - everything between main() and a serving service.
 *
 * Reads configuration (first bad key: one line, exit 2), dispatches the
 * subcommands, applies migrations, starts the HTTP server with the
 * operational routes added to the service's own, and on SIGTERM/SIGINT
 * drains (see drain() and docs/lifecycle.md): readiness fails, the
 * listener closes, open connections are served until they close or
 * DRAIN_TIMEOUT ends, consumers return what they have not acked, the
 * relay publishes what it can, and the exit code is 0. Signals are taken
 * synchronously with sigwait() on the main thread, so no code runs in
 * signal context. With FAULTS=on the /admin/faults routes join the
 * operational ones and /health lists the active faults (svc/faults.h).
 */
#include "svc/app.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svc/config.h"
#include "svc/consumer.h"
#include "svc/err.h"
#include "svc/faults.h"
#include "svc/health.h"
#include "svc/jwt.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/migrate.h"
#include "svc/mq.h"
#include "svc/outbox.h"
#include "svc/ratelimit.h"
#include "svc/trace.h"
#include "svc/util.h"

/* From the VERSION file and `git describe`: the Makefile passes them. */
#ifndef SVC_VERSION
#define SVC_VERSION "unknown"
#endif
#ifndef SVC_GIT_DESCRIBE
#define SVC_GIT_DESCRIBE ""
#endif

struct settings {
	const char *name;
	const char *database_url;
	const char *jwt_secret;
	const char *migrations_dir;
	enum svc_log_level log_level;
	bool log_text;
	struct svc_server_config server;
	struct svc_http_config http;
	struct svc_db_config db;
	long long drain_ms;
	long long db_wait_ms;
	bool events; /* RABBITMQ_URL is set: relay and consumers run */
	struct svc_mq_config mq;
	bool outbox;
	int outbox_batch;
	long long outbox_poll_ms;
	int consumer_max_redeliveries;
	int consumer_prefetch;
	struct svc_trace_export_config trace;
	char trace_url[512];
	struct svc_faults_config faults;
};

/* How often expired faults are healed when nobody looks. */
#define FAULTS_TICK_MS 200

static int latest_migration;

static void
usage(const struct svc_app *app, FILE *f)
{
	fprintf(f,
		"usage: %s [migrate | routes | token [--role R] [--sub S] [--ttl SECONDS]]\n"
		"       %s --help | --version\n"
		"\n"
		"With no command, applies pending migrations and serves HTTP until\n"
		"SIGTERM or SIGINT, then drains for at most DRAIN_TIMEOUT and exits 0.\n"
		"  migrate   apply pending migrations and exit\n"
		"  routes    print the route table (METHOD PATH) and exit; with\n"
		"            FAULTS=on, /admin/faults too\n"
		"  token     print a JWT signed with JWT_SECRET (default role admin,\n"
		"            sub cli, ttl 3600)\n",
		app->name, app->name);
}

/*
 * libpq's own parser, so a typo is reported at start-up, not at connect.
 * Its messages quote pieces of the string, the password among them ("invalid
 * percent-encoded token"), so the message reported is the one for the
 * string with its password hidden; when that one parses, the password was
 * the problem.
 */
static void
check_database_url(const char *url)
{
	char *err = NULL, redacted[1024], msg[256];
	PQconninfoOption *opts = PQconninfoParse(url, &err);

	if (opts == NULL) {
		PQfreemem(err);
		err = NULL;
		svc_redact_url(url, redacted, sizeof(redacted));
		opts = PQconninfoParse(redacted, &err);
		snprintf(msg, sizeof(msg), "%s",
			 opts != NULL  ? "its password is not valid "
					 "(percent-encode it)"
			 : err != NULL ? err
				       : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		svc_config_fail("DATABASE_URL", "is not a valid libpq URL: %s",
				msg);
		PQconninfoFree(opts);
		PQfreemem(err);
		return;
	}
	/* libpq only checks the port when connecting; check it now. */
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "port") == 0 && o->val != NULL &&
		    strspn(o->val, "0123456789,") != strlen(o->val))
			svc_config_fail("DATABASE_URL",
					"has an invalid port \"%s\"", o->val);
	}
	PQconninfoFree(opts);
	PQfreemem(err);
}

/* What --help says of the keys whose readers only know them as text. */
static void
describe_keys(void)
{
	static const char *const keys[][2] = {
		{ "LOG_LEVEL", "debug|info|warn|error" },
		{ "LOG_FORMAT", "json|text" },
		{ "SERVICE_HOST", "IPv4 address" },
		{ "DATABASE_URL", "libpq URL or key=value string" },
		{ "JWT_SECRET_ACCEPT", "at least 32 bytes; unset: none" },
		{ "RABBITMQ_URL",
		  "amqp://user:password@host:port/vhost; unset: no events" },
		{ "MIGRATIONS_DIR", "directory" },
		{ "RATE_LIMIT", "N/second|minute|hour[,burst=M] or off" },
		{ "RATE_LIMIT_SERVICE",
		  "like RATE_LIMIT; unset: ten times RATE_LIMIT" },
		{ "RATE_LIMIT_AUTH_FAILURES", "like RATE_LIMIT" },
		{ "OTEL_EXPORTER_OTLP_ENDPOINT",
		  "http:// or https:// URL; unset: no export" },
		{ "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		  "http:// or https:// URL; unset: <endpoint>/v1/traces" },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		svc_config_describe(keys[i][0], keys[i][1]);
}

/*
 * MIGRATIONS_DIR's default. An installed binary, <prefix>/bin/<svc>, reads
 * the migrations installed with it, <prefix>/share/microshop/migrations/<svc>
 * (the layout of `make install`, wherever the prefix was copied or moved to);
 * anywhere else, such as build/<svc> in a source tree, migrations/<svc>
 * under the working directory.
 */
static void
default_migrations_dir(const char *name, char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	struct stat st;

	if (n > 0) {
		exe[n] = '\0';
		/* <prefix>/bin/<svc> -> <prefix> */
		for (int i = 0; i < 2 && (slash = strrchr(exe, '/')) != NULL;
		     i++)
			*slash = '\0';
		if (snprintf(buf, size, "%s/share/microshop/migrations/%s", exe,
			     name) < (int)size &&
		    stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
			return;
	}
	snprintf(buf, size, "migrations/%s", name);
}

/* Reads every key; problems are recorded for svc_config_error(). */
static void
read_settings(const struct svc_app *app, struct settings *s, bool need_secret)
{
	static char default_url[256], default_dir[PATH_MAX];
	const char *accept;
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	struct in_addr addr;
	const char *level;

	memset(s, 0, sizeof(*s));
	svc_config_load(NULL);
	describe_keys();
	s->name = svc_config_str("SERVICE_NAME", app->name);
	level = svc_config_str("LOG_LEVEL", "info");
	if (svc_log_parse_level(level, &s->log_level) != SVC_OK)
		svc_config_fail(
			"LOG_LEVEL",
			"must be debug, info, warn or error, got \"%s\"",
			level);
	level = svc_config_str("LOG_FORMAT", "json");
	if (svc_log_parse_format(level, &s->log_text) != SVC_OK)
		svc_config_fail("LOG_FORMAT",
				"must be json or text, got \"%s\"", level);
	s->server.host = svc_config_str("SERVICE_HOST", "0.0.0.0");
	if (inet_pton(AF_INET, s->server.host, &addr) != 1)
		svc_config_fail("SERVICE_HOST",
				"must be an IPv4 address, got \"%s\"",
				s->server.host);
	s->server.port = (int)svc_config_int("SERVICE_PORT", app->default_port,
					     1, 65535);
	/*
	 * Workers block while their read waits in the pipeline, so there are
	 * several per core: enough requests in flight to fill each batch.
	 */
	s->server.threads = (int)svc_config_int(
		"HTTP_THREADS", nproc > 0 && nproc < 8 ? nproc * 8 : 64, 1,
		256);
	s->server.connection_timeout_s =
		(int)(svc_config_duration_ms("HTTP_CONNECTION_TIMEOUT", "30s",
					     1000, 3600000) /
		      1000);
	s->server.read_timeout_ms = svc_config_duration_ms(
		"HTTP_READ_TIMEOUT", "30s", 1000, 3600000);
	s->server.max_connections =
		(int)svc_config_int("HTTP_MAX_CONNECTIONS", 4096, 1, 100000);
	s->server.max_per_ip = (int)svc_config_int(
		"HTTP_MAX_CONNECTIONS_PER_IP", 128, 0, 100000);
	s->server.memory_per_connection = (size_t)svc_config_int(
		"HTTP_MAX_HEADER_BYTES", 32768, 4096, 1048576);
	s->http.max_body = (size_t)svc_config_int("HTTP_MAX_BODY", 1048576, 1,
						  64 * 1048576);
	s->http.max_json_depth =
		(int)svc_config_int("HTTP_MAX_JSON_DEPTH", 32, 2, 1000);
	s->http.jwt_leeway =
		svc_config_duration_ms("JWT_LEEWAY", "30s", 0, 300000) / 1000;
	svc_ratelimit_config_read(&s->http.ratelimit);
	snprintf(default_url, sizeof(default_url),
		 "postgres://%s:%s@127.0.0.1:5432/%s_db", app->name, app->name,
		 app->name);
	s->database_url = svc_config_str("DATABASE_URL", default_url);
	check_database_url(s->database_url);
	s->db.url = s->database_url;
	s->db.application_name = s->name;
	s->db.connect_timeout_s =
		(int)(svc_config_duration_ms("DB_CONNECT_TIMEOUT", "5s", 1000,
					     300000) /
		      1000);
	s->db.statement_timeout_ms = (int)svc_config_duration_ms(
		"DB_STATEMENT_TIMEOUT", "5s", 1, 3600000);
	s->db.pipelines = (int)svc_config_int("DB_PIPELINES", 1, 0, 16);
	s->db_wait_ms =
		svc_config_duration_ms("DB_STARTUP_WAIT", "30s", 0, 3600000);
	s->drain_ms =
		svc_config_duration_ms("DRAIN_TIMEOUT", "10s", 0, 3600000);
	s->events = svc_config_get("RABBITMQ_URL") != NULL;
	svc_mq_config_read(&s->mq);
	s->mq.app_id = s->name;
	s->outbox = svc_config_bool("OUTBOX_RELAY", true);
	s->outbox_batch = (int)svc_config_int("OUTBOX_BATCH", 200, 1, 10000);
	s->outbox_poll_ms = svc_config_duration_ms("OUTBOX_POLL_INTERVAL", "1s",
						   10, 3600000);
	s->consumer_max_redeliveries =
		(int)svc_config_int("CONSUMER_MAX_REDELIVERIES", 5, 0, 1000);
	s->consumer_prefetch =
		(int)svc_config_int("CONSUMER_PREFETCH", 16, 1, 65535);
	svc_trace_export_config_read(&s->trace, s->name, s->trace_url);
	s->trace.version = SVC_VERSION;
	default_migrations_dir(app->name, default_dir, sizeof(default_dir));
	s->migrations_dir = svc_config_str("MIGRATIONS_DIR", default_dir);
	svc_faults_config_read(&s->faults);
	if (app->configure != NULL)
		app->configure();
	if (need_secret)
		s->jwt_secret =
			svc_config_required("JWT_SECRET", SVC_JWT_MIN_KEY);
	accept = svc_config_get("JWT_SECRET_ACCEPT");
	if (accept != NULL && accept[0] != '\0') {
		if (strlen(accept) < SVC_JWT_MIN_KEY)
			svc_config_fail("JWT_SECRET_ACCEPT",
					"must be at least %d bytes",
					(int)SVC_JWT_MIN_KEY);
		s->http.jwt_key_accept = (const unsigned char *)accept;
		s->http.jwt_key_accept_len = strlen(accept);
	}
	if (s->jwt_secret != NULL) {
		s->http.jwt_key = (const unsigned char *)s->jwt_secret;
		s->http.jwt_key_len = strlen(s->jwt_secret);
	}
}

static void
print_key(const char *key, const char *def, const char *accepts, void *arg)
{
	fprintf(arg, "  %-34s %-10s %s\n", key, def != NULL ? def : "-",
		accepts);
}

/*
 * --help: the usage, then every key the service reads with the default
 * its reader passes, from the readers themselves (svc_config_foreach), so
 * the list cannot drift from the code. Values set in the environment are
 * never printed.
 */
static void
help(const struct svc_app *app)
{
	struct settings s;

	usage(app, stdout);
	read_settings(app, &s, true);
	printf("\nConfiguration comes from the environment, then from a .env file\n"
	       "(ENV_FILE). Every key %s reads, its default (\"-\": none) and what\n"
	       "it takes; docs/configuration.md says what each one does:\n",
	       app->name);
	print_key("KEY", "DEFAULT", "TAKES", stdout);
	svc_config_foreach(print_key, stdout);
	svc_config_reset();
}

/* --- operational routes --- */

/* The report, and with FAULTS=on the active faults, which by themselves
 * change no status: what they break shows in the checks. */
static int
ops_health(struct svc_req *req, struct svc_res *res)
{
	int status;
	json_t *report = svc_health_report(&status);

	(void)req;
	if (svc_faults_enabled())
		json_object_set_new(report, "faults", svc_faults_health());
	return svc_res_json(res, status, report);
}

static int
ops_live(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_json(res, 200, json_pack("{s:s}", "status", "alive"));
}

static int
ops_ready(struct svc_req *req, struct svc_res *res)
{
	int status;
	json_t *report = svc_health_ready(&status);

	(void)req;
	return svc_res_json(res, status, report);
}

/* Every family of the global registry, rendered at the moment. */
static int
ops_metrics(struct svc_req *req, struct svc_res *res)
{
	size_t len = 0;
	char *text = svc_metrics_render(NULL, &len);

	(void)req;
	if (text == NULL)
		return SVC_ENOMEM;
	return svc_res_take(res, 200, SVC_METRICS_CONTENT_TYPE, text, len);
}

static const struct svc_route ops_routes[] = {
	{ "GET", "/health", ops_health, SVC_ROUTE_OPS },
	{ "GET", "/health/live", ops_live, SVC_ROUTE_OPS },
	{ "GET", "/health/ready", ops_ready, SVC_ROUTE_OPS },
	{ "GET", "/metrics", ops_metrics, SVC_ROUTE_OPS },
	{ 0 },
};

/* The metrics every service has whatever it uses: who it is, its process. */
static double
spans_exported(void *arg)
{
	(void)arg;
	return (double)svc_trace_exported_total();
}

static double
spans_dropped(void *arg)
{
	(void)arg;
	return (double)svc_trace_dropped_total();
}

static int
register_metrics(const struct settings *s)
{
	struct svc_metric *info = svc_metrics_gauge(
		NULL, "service_info",
		"Always 1; the labels name the service and its version.",
		(const char *[]){ "service", "version", NULL }, 1);

	svc_metrics_set(svc_metrics_series(
				info, (const char *[]){ s->name, SVC_VERSION }),
			1);
	if (s->trace.url != NULL) {
		svc_metrics_counter_fn(NULL, "otel_spans_exported_total",
				       "Spans the collector accepted.",
				       spans_exported, NULL);
		svc_metrics_counter_fn(
			NULL, "otel_spans_dropped_total",
			"Spans dropped: the export queue was full, or the "
			"collector did not take their batch.",
			spans_dropped, NULL);
	}
	return svc_metrics_process(NULL);
}

static size_t
count_routes(const struct svc_route *routes)
{
	size_t n = 0;

	while (routes[n].method != NULL)
		n++;
	return n;
}

/*
 * The service's routes followed by the operational ones and, with faults
 * on, /admin/faults (malloc'd).
 */
static struct svc_route *
all_routes(const struct svc_app *app, bool faults)
{
	size_t n = count_routes(app->routes), m = count_routes(ops_routes);
	size_t f = faults ? count_routes(svc_faults_routes) : 0;
	struct svc_route *all = calloc(n + m + f + 1, sizeof(*all));

	if (all == NULL)
		return NULL;
	memcpy(all, app->routes, n * sizeof(*all));
	memcpy(all + n, ops_routes, m * sizeof(*all));
	memcpy(all + n + m, svc_faults_routes, f * sizeof(*all));
	return all;
}

static enum svc_health_status
check_migrations(json_t *detail, void *arg)
{
	struct svc_db *db = svc_db_thread();
	int current = db != NULL ? svc_migrate_current(svc_db_conn(db)) : -1;

	(void)arg;
	json_object_set_new(detail, "version", json_integer(current));
	json_object_set_new(detail, "expected", json_integer(latest_migration));
	return current >= latest_migration ? SVC_HEALTH_UP : SVC_HEALTH_DOWN;
}

/* --- subcommands --- */

/* The routes served, /admin/faults included when FAULTS=on says so. */
static int
cmd_routes(const struct svc_app *app)
{
	struct svc_faults_config fc = { 0 };
	struct svc_route *all;

	svc_config_load(NULL);
	svc_faults_config_read(&fc);
	if (!svc_config_ok()) {
		fprintf(stderr, "%s: invalid configuration: %s\n", app->name,
			svc_config_error());
		svc_config_reset();
		return 2;
	}
	svc_config_reset();
	all = all_routes(app, fc.enabled);
	if (all == NULL)
		return 1;
	for (struct svc_route *r = all; r->method != NULL; r++)
		printf("%s %s\n", r->method, r->path);
	free(all);
	return 0;
}

static int
cmd_token(const struct settings *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "sub", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = "admin", *sub = "cli";
	long long ttl = 3600;
	char token[1024];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r') {
			role = optarg;
		} else if (c == 's') {
			sub = optarg;
		} else if (c == 't') {
			ttl = atoll(optarg);
		} else {
			return 2;
		}
	}
	if (ttl <= 0 || strlen(sub) >= 128 || strlen(role) >= 32 ||
	    svc_jwt_mint(sub, role, svc_time_s(), ttl, s->http.jwt_key,
			 s->http.jwt_key_len, token, sizeof(token)) != SVC_OK) {
		fprintf(stderr, "%s: cannot mint a token with these options\n",
			s->name);
		return 2;
	}
	printf("%s\n", token);
	return 0;
}

/* Connects (waiting up to db_wait_ms for the server) and migrates. */
static int
migrate(const struct settings *s)
{
	long long deadline = svc_now_ms() + s->db_wait_ms;
	long long delay = 100;
	struct svc_db *db;
	int rc, applied = 0;

	while ((db = svc_db_open_plain()) == NULL) {
		struct timespec ts;

		if (svc_now_ms() + delay > deadline)
			return SVC_EUNAVAIL;
		ts.tv_sec = delay / 1000;
		ts.tv_nsec = (delay % 1000) * 1000000;
		nanosleep(&ts, NULL);
		delay = delay * 2 > 2000 ? 2000 : delay * 2;
	}
	rc = svc_migrate_run(svc_db_conn(db), s->migrations_dir, &applied);
	svc_db_close(db);
	if (rc == SVC_OK)
		svc_log(SVC_LOG_INFO, "migrations up to date",
			SVC_LOG_STR("dir", s->migrations_dir),
			SVC_LOG_INT("applied", applied), SVC_LOG_END);
	return rc;
}

/*
 * The HTTP side of the drain. Readiness fails first, so load balancers
 * stop sending; the listener then closes (connections the kernel had
 * already accepted are served, later attempts are refused at once, never
 * left hanging), and every response from now on carries "Connection:
 * close". The server runs until its last connection closed - a keep-alive
 * connection left idle is still answered if its client sends one more
 * request, so no client has a request cut off - or the deadline passed.
 */
static void
drain(struct svc_server *srv, long long deadline)
{
	struct timespec tick = { 0, 10 * 1000000 };

	svc_health_set_draining(true);
	svc_server_quiesce(srv);
	while (svc_server_connections(srv) > 0 && svc_now_ms() < deadline)
		nanosleep(&tick, NULL);
	if (svc_server_connections(srv) > 0)
		svc_log(SVC_LOG_WARN, "drain timeout: closing connections",
			SVC_LOG_INT("connections", svc_server_connections(srv)),
			SVC_LOG_INT("in_flight", svc_server_in_flight(srv)),
			SVC_LOG_END);
	else
		svc_log(SVC_LOG_INFO, "connections drained", SVC_LOG_END);
}

/*
 * One consumer per subscription, when RABBITMQ_URL is set; *out (new)
 * holds the *n started, also on failure, for the caller to stop.
 */
static int
start_consumers(const struct svc_app *app, const struct settings *s,
		struct svc_consumer ***out, size_t *n)
{
	struct svc_consumer_config cc = {
		.mq = &s->mq,
		.max_redeliveries = s->consumer_max_redeliveries,
		.prefetch = s->consumer_prefetch,
	};
	size_t count = 0;

	if (app->subscriptions == NULL || !s->events)
		return SVC_OK;
	while (app->subscriptions[count].queue != NULL)
		count++;
	*out = calloc(count + 1, sizeof(**out));
	if (*out == NULL)
		return SVC_ENOMEM;
	for (size_t i = 0; i < count; i++) {
		(*out)[i] = svc_consumer_start(&app->subscriptions[i], &cc);
		if ((*out)[i] == NULL)
			return SVC_ENOMEM;
		(*n)++;
	}
	return SVC_OK;
}

/* The fault registry: what faults may target here (svc/faults.h). */
static int
start_faults(const struct svc_app *app, const struct settings *s, bool relay,
	     bool consumers)
{
	struct svc_faults_config fc = s->faults;

	fc.routes = app->routes;
	fc.subscriptions = consumers ? app->subscriptions : NULL;
	fc.relay = relay;
	fc.tick_ms = FAULTS_TICK_MS;
	return svc_faults_start(&fc);
}

static int
serve(const struct svc_app *app, const struct settings *s)
{
	struct svc_server *srv = NULL;
	struct svc_route *routes = NULL;
	struct svc_http *http = NULL;
	struct svc_outbox *outbox = NULL;
	struct svc_consumer **consumers = NULL;
	size_t nconsumers = 0;
	sigset_t sigs;
	int sig = 0, rc = 1;
	long long drain_deadline = 0;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	/* Block before any thread starts, so every thread inherits it. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	latest_migration = svc_migrate_latest(s->migrations_dir);
	if (latest_migration < 0 || migrate(s) != SVC_OK) {
		svc_log(SVC_LOG_ERROR, "cannot apply migrations", SVC_LOG_END);
		goto out;
	}
	if (s->trace.url != NULL && svc_trace_export_start(&s->trace) != SVC_OK)
		goto out;
	if (register_metrics(s) != SVC_OK)
		goto out;
	svc_health_register("database", svc_health_check_db, NULL, true);
	svc_health_register("migrations", check_migrations, NULL, true);
	if (s->outbox && s->events) {
		struct svc_outbox_config oc = {
			.mq = &s->mq,
			.service = s->name,
			.batch = s->outbox_batch,
			.poll_ms = s->outbox_poll_ms,
		};

		outbox = svc_outbox_start(&oc);
		if (outbox == NULL || svc_outbox_health(outbox) != SVC_OK)
			goto out;
	}
	if (start_consumers(app, s, &consumers, &nconsumers) != SVC_OK)
		goto out;
	if (start_faults(app, s, outbox != NULL, nconsumers > 0) != SVC_OK)
		goto out;
	if (app->init != NULL && app->init() != SVC_OK)
		goto out;
	routes = all_routes(app, s->faults.enabled);
	http = routes != NULL ? svc_http_new(routes, &s->http) : NULL;
	if (http == NULL)
		goto out;
	srv = svc_server_start(http, &s->server);
	if (srv == NULL)
		goto out;
	svc_log(SVC_LOG_INFO, "listening", SVC_LOG_STR("host", s->server.host),
		SVC_LOG_INT("port", s->server.port),
		SVC_LOG_INT("threads", s->server.threads),
		SVC_LOG_STR("version", SVC_VERSION), SVC_LOG_END);
	if (sigwait(&sigs, &sig) != 0)
		goto out;
	svc_log(SVC_LOG_INFO, "shutting down",
		SVC_LOG_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
		SVC_LOG_INT("drain_timeout_ms", s->drain_ms), SVC_LOG_END);
	drain_deadline = svc_now_ms() + s->drain_ms;
	/* They finish the delivery in hand and take no other. */
	for (size_t i = 0; i < nconsumers; i++)
		svc_consumer_quit(consumers[i]);
	drain(srv, drain_deadline);
	rc = 0;
out:
	svc_server_stop(srv);
	/*
	 * Consumers before the relay, so events they wrote still leave; a
	 * handler still busy at the deadline is cancelled, and whatever was
	 * not acked goes back to its queue.
	 */
	for (size_t i = 0; i < nconsumers; i++)
		svc_consumer_stop(consumers[i], drain_deadline);
	free(consumers);
	/* Faults end before the relay stops, so it drains what a pause
	 * held (what a paused consumer held went back to its queue). */
	svc_faults_stop();
	/* After the server: requests still in flight may have written rows. */
	svc_outbox_stop(outbox, drain_deadline);
	if (app->cleanup != NULL)
		app->cleanup();
	/* Last: the spans of the drain go out too (a second at most past
	 * the drain deadline). */
	svc_trace_export_stop(
		(drain_deadline > 0 ? drain_deadline : svc_now_ms()) + 1000);
	svc_http_free(http);
	free(routes);
	svc_db_shutdown();
	if (rc == 0)
		svc_log(SVC_LOG_INFO, "stopped", SVC_LOG_END);
	return rc;
}

int
svc_app_main(const struct svc_app *app, int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "serve";
	struct settings s;
	int rc;

	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		help(app);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("%s %s%s%s%s\n", app->name, SVC_VERSION,
		       SVC_GIT_DESCRIBE[0] != '\0' ? " (" : "",
		       SVC_GIT_DESCRIBE,
		       SVC_GIT_DESCRIBE[0] != '\0' ? ")" : "");
		return 0;
	}
	if (strcmp(cmd, "routes") == 0)
		return cmd_routes(app);
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 &&
	    strcmp(cmd, "token") != 0) {
		fprintf(stderr, "%s: unknown command \"%s\"\n", app->name, cmd);
		usage(app, stderr);
		return 2;
	}

	read_settings(app, &s, strcmp(cmd, "migrate") != 0);
	if (!svc_config_ok()) {
		fprintf(stderr, "%s: invalid configuration: %s\n", app->name,
			svc_config_error());
		svc_config_reset();
		return 2;
	}
	svc_log_init(s.name, s.log_level, 1);
	svc_log_set_text(s.log_text);
	if (strcmp(cmd, "token") == 0) {
		rc = cmd_token(&s, argc - 1, argv + 1);
	} else if (svc_db_setup(&s.db, app->statements) != SVC_OK) {
		rc = 1;
	} else if (strcmp(cmd, "migrate") == 0) {
		rc = migrate(&s) == SVC_OK ? 0 : 1;
		svc_db_shutdown();
	} else {
		rc = serve(app, &s);
	}
	svc_config_reset();
	return rc;
}
