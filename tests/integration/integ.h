/*
 * integ.h - helpers for the integration suites: real HTTP against the
 * real service binaries, which scripts/test.sh starts against a private
 * PostgreSQL. Where each service listens comes from the environment
 * (PRODUCTS_URL, ...), as does JWT_SECRET for minting tokens.
 */
#ifndef INTEG_H
#define INTEG_H

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct http_resp {
	long status;
	char *body; /* NUL-terminated */
	size_t len;
	char *headers; /* raw header block, "Name: value\r\n" lines */
	json_t *json;  /* parsed body, or NULL */
};

/*
 * Sends one request. headers is a NULL-terminated list of "Name: value"
 * strings (may be NULL); body may be NULL. Fails the test on a transport
 * error. Free the response with http_free().
 */
struct http_resp *http_do(const char *method, const char *url,
			  const char *const *headers, const char *body);
void http_free(struct http_resp *r);

/* A response header's value (malloc'd copy), or NULL. Case-insensitive. */
char *http_header(const struct http_resp *r, const char *name);

/* Environment value, failing the test when it is unset. */
const char *env_or_fail(const char *name);

/* "<base><fmt...>" in a rotating per-thread buffer (8 slots). */
const char *url(const char *base, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * "Authorization: Bearer <token>" for role, minted with JWT_SECRET, in a
 * rotating per-thread buffer (4 slots).
 */
const char *auth_header(const char *role);

/* Runs a command, returning its exit status; output into *out if non-NULL. */
int run_cmd(const char *cmd, char **out);

/*
 * Starts the real binary $BIN_DIR/<name> on 127.0.0.1:port with its
 * database from <NAME>_DATABASE_URL and extra "KEY=value" settings (env,
 * NULL-terminated, may be NULL), logging to a temporary file whose path
 * goes to log (64 bytes). Waits (bounded) for /health/ready; fails the
 * test if it never comes. Returns the pid.
 */
int spawn_service(const char *name, int port, const char *const *env,
		  char log[64]);
/* SIGTERM, then waits for it (bounded); returns its exit status. */
int stop_service(int pid);
/*
 * Slots for the pids of the instances a suite's tests spawn, in memory
 * shared with the forked tests, so that an unchecked teardown kills what
 * a failed test left running: spawned_new(n) gives n zeroed slots (NULL
 * when it cannot), spawned_kill() SIGKILLs every live one and frees them.
 */
int *spawned_new(int n);
void spawned_kill(int *pids, int n);

/*
 * The count sql (one bigint, $1 = param) returns in the database of the
 * connection string in environment variable env; fails the test on any
 * error.
 */
long long db_count(const char *env, const char *sql, const char *param);
/* Whether the file at path contains text (polled up to ms milliseconds). */
bool file_contains(const char *path, const char *text, int ms);
/* Sleeps ms milliseconds: the step of a bounded poll, never a wait for
 * something that can be polled. */
void pause_ms(int ms);
/*
 * A free port for spawned services and servers: SPARE_PORTS + i
 * (0 <= i < 20; scripts/test.sh says which suite has which).
 */
int spare_port(int i);

#define SERVICE_NAME_MAX 32 /* scripts/new-service allows 30 characters */
#define SERVICES_MAX	 16
/*
 * The services of this tree: the <name> of every services/<name>/main.c,
 * sorted, into names (room for max). Returns how many; 0 when there are
 * none (not run from the repository root).
 */
int service_names(char names[][SERVICE_NAME_MAX], int max);

Suite *products_api_suite(void);
Suite *orders_api_suite(void);
Suite *resilience_suite(void);
Suite *inventory_api_suite(void);
Suite *contract_suite(void);
Suite *service_suite(void);
Suite *mq_suite(void);
Suite *events_suite(void);
Suite *choreography_suite(void);
Suite *outage_suite(void);
/* FAULTS=on instances of their own: test_faults.c */
Suite *faults_suite(void);
Suite *abandoned_suite(void);
Suite *tracing_suite(void);
Suite *relay_suite(void);
Suite *metrics_suite(void);
/* tests/security/: the rate limiter on a products process of its own,
 * hostile input against all three services, slow and greedy connections. */
Suite *ratelimit_suite(void);
Suite *hostile_suite(void);
Suite *connections_suite(void);
/* SIGTERM and the drain; secrets never logged: processes of their own. */
Suite *lifecycle_suite(void);
Suite *secrets_suite(void);
/* build/loadgen against the running services, and its refusals. */
Suite *loadgen_suite(void);
/* Last: it reads the outboxes the other suites filled. */
Suite *catalogue_suite(void);

#endif
