/*
 * test_secrets.c - secrets never reach a log line or an error message.
 * Services are run with secret values nothing else contains - JWT_SECRET,
 * JWT_SECRET_ACCEPT, the password in DATABASE_URL (the LIFECYCLE role's,
 * which scripts/test.sh makes afresh each run) and the one in
 * RABBITMQ_URL - and everything they print is searched for them: while
 * serving (spare port 14, see integ.h) at debug level, with the broker
 * refusing the login and requests bearing good, old, forged and absurd
 * tokens; when a setting is invalid (exit 2); when the database refuses
 * or cannot be reached (exit 1); in --help.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ.h"
#include "svc/jwt.h"
#include "svc/util.h"

#define SECRETS_PORT 14 /* spare_port(): see integ.h */
#define WAIT_MS	     20000

static struct {
	char jwt[80], accept[80], amqp[40];
	const char *pg; /* the LIFECYCLE role's password */
} secret;

/* "<prefix><32 random hex>": appears nowhere but where we put it. */
static void
make_secret(char *out, size_t size, const char *prefix)
{
	unsigned char b[16];

	ck_assert_int_eq(svc_random_bytes(b, sizeof(b)), 0);
	snprintf(out, size, "%s", prefix);
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + strlen(out), size - strlen(out), "%02x", b[i]);
}

static void
setup(void)
{
	make_secret(secret.jwt, sizeof(secret.jwt), "jwt-current-");
	make_secret(secret.accept, sizeof(secret.accept), "jwt-previous-");
	make_secret(secret.amqp, sizeof(secret.amqp), "mq-");
	secret.pg = getenv("LIFECYCLE_PG_PASSWORD");
}

/* Fails the test naming the secret text shows. */
static void
assert_clean(const char *text, const char *where)
{
	const char *all[] = { secret.jwt, secret.accept, secret.amqp,
			      secret.pg };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		ck_assert_msg(all[i] == NULL || strstr(text, all[i]) == NULL,
			      "%s shows the secret %s:\n%s", where, all[i],
			      text);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(fread(text, 1, (size_t)n, f), n);
	fclose(f);
	return text;
}

/* Runs $BIN_DIR/<svc> with env (shell words) and args; stdout+stderr. */
static int
run(const char *svc, const char *env, const char *args, char **out)
{
	const char *dir = getenv("BIN_DIR");
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "env %s %s/%s %s 2>&1", env,
		 dir ? dir : "build", svc, args);
	return run_cmd(cmd, out);
}

static const char *
auth_with(const char *key)
{
	static char out[1100];
	char token[1024];

	ck_assert_int_eq(svc_jwt_mint("tests", "admin", svc_time_s(), 600,
				      (const unsigned char *)key, strlen(key),
				      token, sizeof(token)),
			 0);
	snprintf(out, sizeof(out), "Authorization: Bearer %s", token);
	return out;
}

static long
post_product(const char *base, const char *auth)
{
	const char *h[] = { "Content-Type: application/json", auth, NULL };
	char sku[SVC_UUID_LEN + 1], body[200];
	struct http_resp *r;
	long status;

	svc_uuid_v4(sku);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"SEC-%.13s\",\"name\":\"s\",\"price_cents\":1,"
		 "\"currency\":\"EUR\"}",
		 sku);
	r = http_do("POST", url(base, "/api/v1/products"), h, body);
	status = r->status;
	http_free(r);
	return status;
}

START_TEST(serving_logs_no_secret)
{
	char dbenv[512], mqenv[512], jwtenv[128], acceptenv[128], base[64];
	char log[64], bearer[200], *text;
	const char *env[] = { dbenv,
			      mqenv,
			      jwtenv,
			      acceptenv,
			      "LOG_LEVEL=debug",
			      "HTTP_THREADS=2",
			      "DRAIN_TIMEOUT=5s",
			      NULL };
	int port = spare_port(SECRETS_PORT), pid;
	struct http_resp *r;

	ck_assert_ptr_nonnull(secret.pg);
	snprintf(dbenv, sizeof(dbenv), "DATABASE_URL=%s",
		 env_or_fail("LIFECYCLE_PRODUCTS_DATABASE_URL"));
	ck_assert_ptr_nonnull(strstr(dbenv, secret.pg));
	/* The broker refuses this password: every attempt is logged. */
	snprintf(mqenv, sizeof(mqenv),
		 "RABBITMQ_URL=amqp://guest:%s@127.0.0.1:%s/lifecycle",
		 secret.amqp, env_or_fail("AMQP_PORT"));
	snprintf(jwtenv, sizeof(jwtenv), "JWT_SECRET=%s", secret.jwt);
	snprintf(acceptenv, sizeof(acceptenv), "JWT_SECRET_ACCEPT=%s",
		 secret.accept);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	pid = spawn_service("products", port, env, log);

	ck_assert_int_eq(post_product(base, auth_with(secret.jwt)), 201);
	ck_assert_int_eq(post_product(base, auth_with(secret.accept)), 201);
	ck_assert_int_eq(post_product(base, auth_with("a forged key that is "
						      "long enough to sign")),
			 401);
	/* A client that sends a secret itself as its token. */
	snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s",
		 secret.jwt);
	ck_assert_int_eq(post_product(base, bearer), 401);
	r = http_do("GET", url(base, "/health"), NULL, NULL);
	ck_assert_ptr_nonnull(strstr(r->body, "\"rabbitmq\""));
	http_free(r);
	ck_assert_msg(file_contains(log, "ACCESS_REFUSED", WAIT_MS),
		      "the refused login was never logged (see %s)", log);

	ck_assert_msg(stop_service(pid) == 0, "unclean exit (see %s)", log);
	text = slurp(log);
	ck_assert_ptr_nonnull(strstr(text, "\"stopped\""));
	assert_clean(text, log);
	free(text);
	unlink(log);
}
END_TEST

/* tmpl with each "{S}" replaced by the secret, each "{s}" by its first
 * 20 bytes (too short to be accepted as a key). */
static void
fill(const char *tmpl, const char *secret_, char *out, size_t size)
{
	size_t len = 0;

	while (*tmpl != '\0' && len + 1 < size) {
		if (strncmp(tmpl, "{S}", 3) == 0 ||
		    strncmp(tmpl, "{s}", 3) == 0) {
			len += (size_t)snprintf(out + len, size - len, "%.*s",
						tmpl[1] == 's' ? 20 : 1000,
						secret_);
			tmpl += 3;
		} else {
			out[len++] = *tmpl++;
		}
	}
	out[len < size ? len : size - 1] = '\0';
}

START_TEST(invalid_settings_show_no_secret)
{
	/* One run each: exit 2, naming the key, never showing the secret. */
	static const struct {
		const char *svc, *key, *env;
	} cases[] = {
		{ "products", "DATABASE_URL",
		  "DATABASE_URL=postgres://u:{S}%zz@h/db" },
		{ "products", "DATABASE_URL",
		  "DATABASE_URL=postgres://u:{S}@[::1/db" },
		{ "products", "DATABASE_URL",
		  "DATABASE_URL=postgres://u:{S}@h:port/db" },
		{ "products", "DATABASE_URL",
		  "DATABASE_URL=postgres://u@h/db?password={S}%zz" },
		{ "products", "DATABASE_URL",
		  "DATABASE_URL='host=h password={S} bogus=1'" },
		{ "products", "DATABASE_URL",
		  "DATABASE_URL='host=h password = {S} dbname'" },
		{ "products", "RABBITMQ_URL",
		  "RABBITMQ_URL=amqps://u:{S}@h/v" },
		{ "products", "RABBITMQ_URL",
		  "RABBITMQ_URL=amqp://u:{S}@h:port/v" },
		{ "products", "JWT_SECRET", "JWT_SECRET={s}" },
		{ "products", "JWT_SECRET_ACCEPT", "JWT_SECRET_ACCEPT={s}" },
		{ "orders", "PRODUCTS_URL", "PRODUCTS_URL=ftp://u:{S}@h/" },
		{ "orders", "INVENTORY_URL", "INVENTORY_URL=u:{S}@h" },
		{ "products", "OTEL_EXPORTER_OTLP_ENDPOINT",
		  "OTEL_EXPORTER_OTLP_ENDPOINT=ftp://u:{S}@h" },
	};
	char env[1024], prefix[21], *out = NULL;

	snprintf(prefix, sizeof(prefix), "%.20s", secret.jwt);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		fill(cases[i].env, secret.jwt, env, sizeof(env));
		rc = run(cases[i].svc, env, "", &out);
		ck_assert_msg(rc == 2, "%s: exit %d: %s", env, rc, out);
		ck_assert_msg(strstr(out, cases[i].key) != NULL, "%s: %s", env,
			      out);
		ck_assert_msg(strstr(out, prefix) == NULL,
			      "%s shows its secret: %s", env, out);
		free(out);
	}
}
END_TEST

START_TEST(database_failures_show_no_secret)
{
	char env[1024], *out = NULL, *wrong = NULL;
	const char *good = env_or_fail("LIFECYCLE_PRODUCTS_DATABASE_URL");
	int rc;

	ck_assert_ptr_nonnull(secret.pg);
	/* Nobody listens there. */
	snprintf(env, sizeof(env),
		 "DB_STARTUP_WAIT=0 DATABASE_URL=postgres://lifecycle:%s@"
		 "127.0.0.1:1/lifecycle_products_db",
		 secret.amqp);
	rc = run("products", env, "migrate", &out);
	ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
	ck_assert_ptr_nonnull(strstr(out, "cannot"));
	assert_clean(out, "migrate against a closed port");
	free(out);

	/* The server refuses the password (secret.amqp, in place of the
	 * right one). */
	wrong = calloc(1, strlen(good) + sizeof(secret.amqp));
	ck_assert_ptr_nonnull(wrong);
	ck_assert_ptr_nonnull(strstr(good, secret.pg));
	memcpy(wrong, good, (size_t)(strstr(good, secret.pg) - good));
	strcat(wrong, secret.amqp);
	strcat(wrong, strstr(good, secret.pg) + strlen(secret.pg));
	snprintf(env, sizeof(env), "DB_STARTUP_WAIT=0 DATABASE_URL=%s", wrong);
	rc = run("products", env, "migrate", &out);
	ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
	ck_assert_ptr_nonnull(strstr(out, "password authentication failed"));
	assert_clean(out, "migrate with a wrong password");
	free(out);
	free(wrong);
}
END_TEST

START_TEST(help_shows_no_secret)
{
	char env[1024], *out = NULL;

	snprintf(env, sizeof(env),
		 "JWT_SECRET=%s JWT_SECRET_ACCEPT=%s DATABASE_URL=%s "
		 "RABBITMQ_URL=amqp://guest:%s@127.0.0.1/v",
		 secret.jwt, secret.accept,
		 env_or_fail("LIFECYCLE_PRODUCTS_DATABASE_URL"), secret.amqp);
	ck_assert_int_eq(run("orders", env, "--help", &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "JWT_SECRET"));
	assert_clean(out, "--help");
	free(out);
}
END_TEST

Suite *
secrets_suite(void)
{
	Suite *s = suite_create("secrets");
	TCase *tc = tcase_create("never logged");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, serving_logs_no_secret);
	tcase_add_test(tc, invalid_settings_show_no_secret);
	tcase_add_test(tc, database_failures_show_no_secret);
	tcase_add_test(tc, help_shows_no_secret);
	suite_add_tcase(s, tc);
	return s;
}
