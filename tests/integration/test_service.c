/*
 * test_service.c - the service as a process: start-up configuration
 * errors, subcommands, migrations against a scratch database, keep-alive,
 * and a clean exit on SIGTERM. Each test runs the real binary.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integ.h"

static const char *
bin(void)
{
	static char path[512];
	const char *dir = getenv("BIN_DIR");

	snprintf(path, sizeof(path), "%s/products", dir ? dir : "build");
	return path;
}

/* Runs the binary with extra environment; returns the exit code. */
static int
run_with(const char *env, const char *args, char **out)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "env %s %s %s 2>&1", env, bin(), args);
	return run_cmd(cmd, out);
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

START_TEST(bad_config_exits_2_naming_the_key)
{
	static const struct {
		const char *env;
		const char *key;
	} cases[] = {
		{ "SERVICE_PORT=abc", "SERVICE_PORT" },
		{ "SERVICE_PORT=70000", "SERVICE_PORT" },
		{ "JWT_SECRET=short", "JWT_SECRET" },
		{ "JWT_SECRET=", "JWT_SECRET" },
		{ "LOG_LEVEL=loud", "LOG_LEVEL" },
		{ "DATABASE_URL=postgres://a:b@h:notaport/x", "DATABASE_URL" },
		{ "HTTP_CONNECTION_TIMEOUT=soon", "HTTP_CONNECTION_TIMEOUT" },
		{ "SERVICE_HOST=localhost:1", "SERVICE_HOST" },
		{ "ENV_FILE=/nonexistent/.env", "ENV_FILE" },
		{ "RATE_LIMIT=lots", "RATE_LIMIT" },
		{ "RATE_LIMIT=100/minute,burst=0", "RATE_LIMIT" },
		{ "RATE_LIMIT_SERVICE=1/fortnight", "RATE_LIMIT_SERVICE" },
		{ "RATE_LIMIT_MAX_KEYS=0", "RATE_LIMIT_MAX_KEYS" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		int rc = run_with(cases[i].env, "", &out);

		ck_assert_msg(rc == 2, "%s: exit %d: %s", cases[i].env, rc,
			      out);
		ck_assert_msg(strstr(out, cases[i].key) != NULL, "%s: %s",
			      cases[i].env, out);
		/* one line */
		ck_assert_int_eq(count(out, "\n"), 1);
		free(out);
	}
}
END_TEST

/* orders: a circuit's shortest open interval above its longest. */
START_TEST(breaker_bounds_reversed_exit_2_naming_the_key)
{
	const char *dir = getenv("BIN_DIR");
	char cmd[1024], *out = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "env INVENTORY_BREAKER_RECOVERY=2s "
		 "INVENTORY_BREAKER_RECOVERY_MIN=5s %s/orders 2>&1",
		 dir ? dir : "build");
	rc = run_cmd(cmd, &out);
	ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
	ck_assert_msg(strstr(out,
			     "INVENTORY_BREAKER_RECOVERY_MIN: must not "
			     "be more than INVENTORY_BREAKER_RECOVERY") != NULL,
		      "%s", out);
	ck_assert_int_eq(count(out, "\n"), 1);
	free(out);
}
END_TEST

START_TEST(subcommands)
{
	char *out = NULL, *version = NULL;

	ck_assert_int_eq(run_with("", "--version", &out), 0);
	ck_assert_int_eq(run_cmd("cat VERSION", &version), 0);
	version[strcspn(version, "\n")] = '\0';
	ck_assert_int_gt(strlen(version), 0);
	/* "products 0.1.0" or "products 0.1.0 (<git describe>)" */
	ck_assert_msg(strncmp(out, "products ", 9) == 0 &&
			      strncmp(out + 9, version, strlen(version)) == 0 &&
			      strchr(" \n", out[9 + strlen(version)]) != NULL,
		      "%s", out);
	ck_assert_int_eq(count(out, "\n"), 1);
	free(out);
	free(version);
	/* Usage, subcommands, then every key with its default. */
	ck_assert_int_eq(run_with("", "--help", &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "usage:"));
	ck_assert_ptr_nonnull(strstr(out, "  migrate "));
	ck_assert_ptr_nonnull(strstr(out, "\n  DRAIN_TIMEOUT "));
	ck_assert_ptr_nonnull(strstr(out, " 10s "));
	ck_assert_ptr_nonnull(strstr(out, "\n  SERVICE_PORT "));
	ck_assert_ptr_nonnull(strstr(out, " 8081 "));
	free(out);
	ck_assert_int_eq(run_with("", "frobnicate", &out), 2);
	free(out);
	ck_assert_int_eq(run_with("", "routes", &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "GET /api/v1/products/{id}\n"));
	ck_assert_ptr_nonnull(strstr(out, "GET /health/ready\n"));
	free(out);
	ck_assert_int_eq(
		run_with("", "token --role service --sub orders", &out), 0);
	ck_assert_int_eq(count(out, "."), 2);
	free(out);
}
END_TEST

/* The scratch database's URL, as an env assignment. */
static const char *
scratch_env(void)
{
	static char env[1024];

	snprintf(env, sizeof(env), "DATABASE_URL=%s",
		 env_or_fail("SCRATCH_DATABASE_URL"));
	return env;
}

/* Copies migrations/products into a fresh temp dir; returns it. */
static const char *
copy_migrations(void)
{
	static char dir[64];
	char cmd[256];

	snprintf(dir, sizeof(dir), "/tmp/microshop-mig-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "cp migrations/products/*.sql %s/", dir);
	ck_assert_int_eq(run_cmd(cmd, NULL), 0);
	return dir;
}

static void
remove_dir(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	run_cmd(cmd, NULL);
}

/*
 * One test walks the migration story in order on the scratch database:
 * two replicas migrating at once, a no-op re-run, an edited file refused,
 * a new file applied, a vanished file refused.
 */
START_TEST(migrations_story)
{
	const char *dir = copy_migrations();
	char env[1400], cmd[4096], path[256], *out = NULL;
	FILE *f;
	int files;

	snprintf(env, sizeof(env), "%s MIGRATIONS_DIR=%s", scratch_env(), dir);
	snprintf(cmd, sizeof(cmd), "ls %s/*.sql | wc -l", dir);
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	files = atoi(out);
	free(out);
	ck_assert_int_gt(files, 0);

	/* Two at once: the advisory lock makes one wait; each file runs once.
	 */
	snprintf(cmd, sizeof(cmd),
		 "(env %s %s migrate & env %s %s migrate & wait) 2>&1", env,
		 bin(), env, bin());
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	ck_assert_msg(count(out, "\"migration applied\"") == files, "%s", out);
	ck_assert_msg(count(out, "\"migrations up to date\"") == 2, "%s", out);
	free(out);

	ck_assert_int_eq(run_with(env, "migrate", &out), 0);
	ck_assert_int_eq(count(out, "\"migration applied\""), 0);
	free(out);

	/* Edited after being applied: refused, nothing applied. */
	snprintf(path, sizeof(path), "%s/0001_products.sql", dir);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs("\n-- an innocent-looking edit\n", f);
	fclose(f);
	ck_assert_int_eq(run_with(env, "migrate", &out), 1);
	ck_assert_msg(strstr(out, "edited") != NULL, "%s", out);
	free(out);
	remove_dir(dir);

	/* A new migration is applied; then its file vanishing is refused. */
	dir = copy_migrations();
	snprintf(env, sizeof(env), "%s MIGRATIONS_DIR=%s", scratch_env(), dir);
	snprintf(path, sizeof(path), "%s/0999_test_extra.sql", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("CREATE TABLE migration_probe (x int);\n", f);
	fclose(f);
	ck_assert_int_eq(run_with(env, "migrate", &out), 0);
	ck_assert_int_eq(count(out, "\"migration applied\""), 1);
	free(out);
	unlink(path);
	ck_assert_int_eq(run_with(env, "migrate", &out), 1);
	ck_assert_msg(strstr(out, "missing") != NULL, "%s", out);
	free(out);

	/* A broken migration fails and leaves no trace. */
	f = fopen(path, "w");
	fputs("CREATE TABLE migration_probe (x int);\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/1000_broken.sql", dir);
	f = fopen(path, "w");
	fputs("CREATE TABLE half_done (x int);\nSELECT * FROM no_such_table;\n",
	      f);
	fclose(f);
	ck_assert_int_eq(run_with(env, "migrate", &out), 1);
	free(out);
	unlink(path);
	ck_assert_int_eq(run_with(env, "migrate", &out), 0);
	ck_assert_int_eq(count(out, "\"migration applied\""), 0);
	free(out);
	remove_dir(dir);
}
END_TEST

START_TEST(keep_alive_reuses_the_connection)
{
	CURL *c = curl_easy_init();
	FILE *devnull = fopen("/dev/null", "w");
	long connects = -1, status = 0;

	curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
	for (int i = 0; i < 3; i++) {
		curl_easy_setopt(
			c, CURLOPT_URL,
			url(env_or_fail("PRODUCTS_URL"), "%s",
			    i == 1 ? "/nope" : "/api/v1/products?limit=1"));
		ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
		ck_assert_int_eq(status, i == 1 ? 404 : 200);
		if (i > 0)
			ck_assert_msg(connects == 0,
				      "request %d opened a new connection", i);
	}
	curl_easy_cleanup(c);
	fclose(devnull);
}
END_TEST

START_TEST(sigterm_exits_cleanly)
{
	char log[64];
	int pid = spawn_service("products", atoi(env_or_fail("SPARE_PORT")),
				NULL, log);

	ck_assert_int_eq(stop_service(pid), 0);
	ck_assert(file_contains(log, "\"shutting down\"", 0));
	ck_assert(file_contains(log, "\"stopped\"", 0));
	unlink(log);
}
END_TEST

/* Status of one request, for the restart test. */
static long
status_of(const char *method, const char *u, const char *const *h,
	  const char *body)
{
	struct http_resp *r = http_do(method, u, h, body);
	long st = r->status;

	http_free(r);
	return st;
}

/*
 * PostgreSQL restarted under a running service: reads and writes come back
 * on their own, with at most a short run of 503s and never a 500.
 */
START_TEST(database_restart_is_survived)
{
	const char *base = env_or_fail("PRODUCTS_URL");
	const char *h[] = { "Content-Type: application/json",
			    auth_header("admin"), NULL };
	char body[160], id[64];
	struct http_resp *r;
	long st = 0;
	int unavailable = 0;

	snprintf(body, sizeof(body),
		 "{\"sku\":\"RESTART-%ld\",\"name\":\"r\",\"price_cents\":1,"
		 "\"currency\":\"EUR\"}",
		 (long)time(NULL));
	r = http_do("POST", url(base, "/api/v1/products"), h, body);
	ck_assert_int_eq(r->status, 201);
	snprintf(id, sizeof(id), "%s",
		 json_string_value(json_object_get(r->json, "id")));
	http_free(r);

	ck_assert_int_eq(run_cmd(env_or_fail("PG_RESTART_CMD"), NULL), 0);

	for (int i = 0; i < 100 && st != 200; i++) {
		st = status_of("GET", url(base, "/api/v1/products/%s", id),
			       NULL, NULL);
		ck_assert_msg(st == 200 || st == 503, "read answered %ld", st);
		if (st == 503) {
			unavailable++;
			usleep(100 * 1000);
		}
	}
	ck_assert_int_eq(st, 200);
	ck_assert_int_eq(unavailable,
			 0); /* reads are re-sent on a new connection */

	/* Each worker's write connection notices the restart before use. */
	for (int i = 0; i < 8; i++) {
		snprintf(body, sizeof(body),
			 "{\"sku\":\"RESTART-%ld-%d\",\"name\":\"r\","
			 "\"price_cents\":1,\"currency\":\"EUR\"}",
			 (long)time(NULL), i);
		st = status_of("POST", url(base, "/api/v1/products"), h, body);
		ck_assert_msg(st == 201, "write %d answered %ld", i, st);
	}
	ck_assert_int_eq(
		status_of("GET", url(base, "/health/ready"), NULL, NULL), 200);
}
END_TEST

/*
 * The layout of `make install`: <prefix>/bin/products reads
 * <prefix>/share/microshop/migrations/products by itself, whatever the
 * working directory - even one with a migrations/products of its own -
 * and MIGRATIONS_DIR still wins. scripts/check-deploy.sh installed into
 * INSTALL_PREFIX; INSTALL_DATABASE_URL is a fresh database.
 */
START_TEST(installed_binary_finds_its_migrations)
{
	const char *prefix = env_or_fail("INSTALL_PREFIX");
	const char *db = env_or_fail("INSTALL_DATABASE_URL");
	char decoy[64], cmd[4096], want[1024], *out = NULL;
	int files;

	snprintf(cmd, sizeof(cmd),
		 "ls %s/share/microshop/migrations/products/*.sql | wc -l",
		 prefix);
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	files = atoi(out);
	free(out);
	ck_assert_int_gt(files, 0);
	snprintf(want, sizeof(want),
		 "\"dir\":\"%s/share/microshop/migrations/products\"", prefix);

	/* From /, where no migrations folder is in sight. */
	snprintf(cmd, sizeof(cmd),
		 "cd / && env -u MIGRATIONS_DIR DATABASE_URL='%s' "
		 "%s/bin/products migrate 2>&1",
		 db, prefix);
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	ck_assert_msg(count(out, "\"migration applied\"") == files, "%s", out);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	free(out);

	/* A decoy migrations/products in the working directory: had the
	 * binary read it, its 0001 would be refused as edited. */
	snprintf(decoy, sizeof(decoy), "/tmp/microshop-decoy-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(decoy));
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/migrations/products && "
		 "echo 'SELECT 1;' >%s/migrations/products/0001_decoy.sql",
		 decoy, decoy);
	ck_assert_int_eq(run_cmd(cmd, NULL), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && env -u MIGRATIONS_DIR DATABASE_URL='%s' "
		 "%s/bin/products migrate 2>&1",
		 decoy, db, prefix);
	ck_assert_int_eq(run_cmd(cmd, &out), 0);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_int_eq(count(out, "\"migration applied\""), 0);
	free(out);

	/* MIGRATIONS_DIR, when set, is what it reads. */
	snprintf(cmd, sizeof(cmd),
		 "cd / && env MIGRATIONS_DIR=%s/migrations/products "
		 "DATABASE_URL='%s' %s/bin/products migrate 2>&1",
		 decoy, db, prefix);
	ck_assert_int_eq(run_cmd(cmd, &out), 1);
	ck_assert_msg(strstr(out, "edited") != NULL, "%s", out);
	free(out);
	remove_dir(decoy);
}
END_TEST

Suite *
service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("process");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bad_config_exits_2_naming_the_key);
	tcase_add_test(tc, breaker_bounds_reversed_exit_2_naming_the_key);
	tcase_add_test(tc, subcommands);
	tcase_add_test(tc, migrations_story);
	tcase_add_test(tc, installed_binary_finds_its_migrations);
	tcase_add_test(tc, keep_alive_reuses_the_connection);
	tcase_add_test(tc, sigterm_exits_cleanly);
	/* Last: it restarts the shared PostgreSQL. */
	tcase_add_test(tc, database_restart_is_survived);
	suite_add_tcase(s, tc);
	return s;
}
