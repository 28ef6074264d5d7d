/*
 * test_loadgen.c - $BIN_DIR/loadgen (tools/loadgen, docs/load.md) against
 * the running services: a few seconds at a modest rate with --json, judged
 * from its summary - every kind of request made, no 5xx and no request
 * without an answer, orders placed and confirmed, and never more requests
 * started than the rate allows over the duration (rate x duration + 1) -
 * then its refusals: a target that is not loopback, a bad --rate, each a
 * single line and exit status 2. Timings are never asserted: the machine
 * is shared, and only counts are certain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"

#define RATE	 20
#define DURATION 6 /* seconds */

static const char *
loadgen_bin(char buf[512])
{
	const char *dir = getenv("BIN_DIR");

	snprintf(buf, 512, "%s/loadgen", dir != NULL ? dir : "build");
	return buf;
}

/* The number at a dotted path of the summary; fails the test if absent. */
static long long
member(json_t *summary, const char *path)
{
	char copy[128], *save = NULL;
	json_t *v = summary;

	snprintf(copy, sizeof(copy), "%s", path);
	for (char *k = strtok_r(copy, ".", &save); k != NULL;
	     k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	ck_assert_msg(json_is_integer(v), "summary has no number at %s", path);
	return (long long)json_integer_value(v);
}

START_TEST(loadgen_run_mixed)
{
	static const char *const ops[] = { "browse", "read", "order", "check",
					   "cancel" };
	const char *auth = auth_header("admin");
	char bin[512], cmd[2048];
	char *out = NULL;
	json_t *summary;
	int rc;

	/* --cancel 50: enough cancels in a short run to see every kind */
	snprintf(cmd, sizeof(cmd),
		 "LOADGEN_TOKEN='%s' '%s' --rate %d --duration %ds --seed 3"
		 " --cancel 50 --json --quiet --products %s --inventory %s"
		 " --orders %s",
		 strchr(auth, ' ') + strlen(" Bearer "), loadgen_bin(bin), RATE,
		 DURATION, env_or_fail("PRODUCTS_URL"),
		 env_or_fail("INVENTORY_URL"), env_or_fail("ORDERS_URL"));
	rc = run_cmd(cmd, &out);
	ck_assert_msg(rc == 0, "loadgen exited %d: %s", rc, out);
	summary = json_loads(out, 0, NULL);
	ck_assert_msg(summary != NULL, "not JSON: %s", out);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		char path[64];

		snprintf(path, sizeof(path), "operations.%s.started", ops[i]);
		ck_assert_msg(member(summary, path) > 0, "no %s request: %s",
			      ops[i], out);
	}
	ck_assert_int_eq(member(summary, "requests.classes.5xx"), 0);
	ck_assert_int_eq(member(summary, "requests.errors"), 0);
	ck_assert_int_eq(member(summary, "catalogue.seeded"), 3);
	ck_assert_int_gt(member(summary, "orders.placed"), 0);
	ck_assert_int_gt(member(summary, "orders.confirmed"), 0);
	ck_assert_int_gt(member(summary, "orders.cancelled"), 0);
	/* never more than asked: the whole run, setup excluded */
	ck_assert_int_le(member(summary, "run.scheduled"), RATE * DURATION + 1);
	ck_assert_int_le(member(summary, "requests.started"),
			 RATE * DURATION + 1);
	ck_assert_int_eq(member(summary, "requests.started"),
			 member(summary, "run.started"));
	json_decref(summary);
	free(out);
}
END_TEST

/* Runs loadgen with flags; its stderr into *err, stdout must be empty. */
static int
refused(const char *flags, char **err)
{
	char bin[512], cmd[1024];
	char *out = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1 >/dev/null", loadgen_bin(bin),
		 flags);
	rc = run_cmd(cmd, &out);
	*err = out;
	return rc;
}

static int
lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

START_TEST(loadgen_refuses_remote_target)
{
	char *err = NULL;

	ck_assert_int_eq(
		refused("--orders http://192.0.2.1:8083 --rate 5", &err), 2);
	ck_assert_msg(lines(err) == 1, "not one line: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "--orders"));
	ck_assert_ptr_nonnull(strstr(err, "--allow-remote"));
	free(err);
	/* a loopback address in the user part is still another host */
	ck_assert_int_eq(
		refused("--products http://127.0.0.1@192.0.2.1:8081", &err), 2);
	ck_assert_msg(lines(err) == 1, "not one line: %s", err);
	free(err);
}
END_TEST

START_TEST(loadgen_refuses_bad_rate)
{
	static const char *const bad[] = { "--rate abc", "--rate 0",
					   "--rate -5", "--rate 1e9",
					   "--rate" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;

		ck_assert_int_eq(refused(bad[i], &err), 2);
		ck_assert_msg(lines(err) == 1, "%s: not one line: %s", bad[i],
			      err);
		ck_assert_msg(strstr(err, "--rate") != NULL,
			      "%s: the flag is not named: %s", bad[i], err);
		free(err);
	}
}
END_TEST

Suite *
loadgen_suite(void)
{
	Suite *s = suite_create("loadgen");
	TCase *tc = tcase_create("loadgen");

	/* the run lasts DURATION s; setup and the drain add a few more */
	tcase_set_timeout(tc, DURATION + 60);
	tcase_add_test(tc, loadgen_run_mixed);
	tcase_add_test(tc, loadgen_refuses_remote_target);
	tcase_add_test(tc, loadgen_refuses_bad_rate);
	suite_add_tcase(s, tc);
	return s;
}
