/*
 * test_config.c - unit tests for config.c: values from the environment and
 * from .env files written to mkstemp() temporaries, the typed getters and
 * the first-error record that start-up prints. Every test starts and ends
 * with svc_config_reset() and unsets the UT_* keys it may have set, so the
 * tests also hold when Check does not fork. It does not test svc_app's use
 * of these keys; the integration tests run the real binary for that.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/config.h"
#include "svc/err.h"
#include "unit.h"

static const char *const keys[] = {
	"UT_A",	   "UT_B",     "UT_C",	    "UT_X",	   "UT_Q",     "UT_S",
	"UT_SP",   "UT_EMPTY", "UT_EQ",	    "UT_MISMATCH", "UT_HASH",  "UT_INT",
	"UT_BOOL", "UT_DUR",   "UT_SECRET", "UT_ENUM",	   "ENV_FILE", NULL,
};

static char env_path[64];
static char *saved_env_file;

static void
clear_keys(void)
{
	for (int i = 0; keys[i] != NULL; i++)
		unsetenv(keys[i]);
}

static void
setup(void)
{
	const char *f = getenv("ENV_FILE");

	saved_env_file = f != NULL ? strdup(f) : NULL;
	clear_keys();
	svc_config_reset();
	env_path[0] = '\0';
}

static void
teardown(void)
{
	svc_config_reset();
	clear_keys();
	if (saved_env_file != NULL)
		setenv("ENV_FILE", saved_env_file, 1);
	free(saved_env_file);
	saved_env_file = NULL;
	if (env_path[0] != '\0')
		unlink(env_path);
}

/* Writes text to a new temporary file; its path is in env_path. */
static const char *
write_env(const char *text)
{
	int fd;
	size_t len = strlen(text);

	snprintf(env_path, sizeof(env_path), "/tmp/unit-env-XXXXXX");
	fd = mkstemp(env_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return env_path;
}

static void
assert_error_names(const char *key)
{
	size_t n = strlen(key);

	ck_assert(!svc_config_ok());
	ck_assert_msg(strncmp(svc_config_error(), key, n) == 0 &&
			      svc_config_error()[n] == ':',
		      "error \"%s\" does not name %s", svc_config_error(), key);
}

/* --- sources --- */

START_TEST(environment_wins_over_the_file)
{
	write_env("UT_A=from-file\nUT_B=file-only\n");
	setenv("UT_A", "from-env", 1);
	ck_assert_int_eq(svc_config_load(env_path), SVC_OK);
	ck_assert_str_eq(svc_config_get("UT_A"), "from-env");
	ck_assert_str_eq(svc_config_get("UT_B"), "file-only");
	ck_assert_ptr_null(svc_config_get("UT_C"));
	ck_assert_str_eq(svc_config_str("UT_C", "def"), "def");
	ck_assert(svc_config_ok());
}
END_TEST

START_TEST(file_syntax)
{
	write_env("# a comment line\n"
		  "\n"
		  "   # an indented comment\n"
		  "export UT_X=exported\n"
		  "UT_Q=\"a quoted value\"\n"
		  "UT_S='single quoted'\n"
		  "  UT_SP  =  spaced out  \n"
		  "UT_EMPTY=\n"
		  "UT_EQ=a=b=c\n"
		  "UT_MISMATCH=\"open'\n"
		  "UT_HASH=p#ss\r\n"
		  "UT_A=no newline at the end");
	ck_assert_int_eq(svc_config_load(env_path), SVC_OK);
	ck_assert_str_eq(svc_config_get("UT_X"), "exported");
	ck_assert_str_eq(svc_config_get("UT_Q"), "a quoted value");
	ck_assert_str_eq(svc_config_get("UT_S"), "single quoted");
	ck_assert_str_eq(svc_config_get("UT_SP"), "spaced out");
	ck_assert_str_eq(svc_config_get("UT_EMPTY"), "");
	ck_assert_str_eq(svc_config_get("UT_EQ"), "a=b=c");
	ck_assert_str_eq(svc_config_get("UT_MISMATCH"), "\"open'");
	ck_assert_str_eq(svc_config_get("UT_HASH"), "p#ss");
	ck_assert_str_eq(svc_config_get("UT_A"), "no newline at the end");
	ck_assert_ptr_null(svc_config_get("export UT_X"));
	ck_assert_ptr_null(svc_config_get("# a comment line"));
	ck_assert(svc_config_ok());
}
END_TEST

START_TEST(empty_value_counts_as_set)
{
	setenv("UT_A", "", 1);
	ck_assert_str_eq(svc_config_str("UT_A", "def"), "");
	ck_assert(svc_config_ok());
}
END_TEST

START_TEST(a_line_without_equals_is_an_error)
{
	write_env("UT_A=1\nthis line is wrong\nUT_B=2\n");
	ck_assert_int_eq(svc_config_load(env_path), SVC_EINVAL);
	assert_error_names("ENV_FILE");
	ck_assert_ptr_nonnull(strstr(svc_config_error(), env_path));
	ck_assert_ptr_nonnull(strstr(svc_config_error(), ":2:"));
}
END_TEST

START_TEST(an_empty_key_is_an_error)
{
	write_env("=value\n");
	ck_assert_int_eq(svc_config_load(env_path), SVC_EINVAL);
	assert_error_names("ENV_FILE");
}
END_TEST

START_TEST(env_file_variable_names_the_file)
{
	write_env("UT_B=via ENV_FILE\n");
	setenv("ENV_FILE", env_path, 1);
	ck_assert_int_eq(svc_config_load(NULL), SVC_OK);
	ck_assert_str_eq(svc_config_get("UT_B"), "via ENV_FILE");
}
END_TEST

START_TEST(missing_default_file_is_fine)
{
	char old[PATH_MAX], dir[] = "/tmp/unit-cfg-XXXXXX";

	ck_assert_ptr_nonnull(getcwd(old, sizeof(old)));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chdir(dir), 0);
	unsetenv("ENV_FILE");
	ck_assert_int_eq(svc_config_load(NULL), SVC_OK);
	ck_assert(svc_config_ok());
	/* An empty ENV_FILE means the default, too. */
	setenv("ENV_FILE", "", 1);
	ck_assert_int_eq(svc_config_load(NULL), SVC_OK);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(chdir(old), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(default_file_is_read_from_the_working_directory)
{
	char old[PATH_MAX], dir[] = "/tmp/unit-cfg-XXXXXX";
	FILE *f;

	ck_assert_ptr_nonnull(getcwd(old, sizeof(old)));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chdir(dir), 0);
	f = fopen(".env", "w");
	ck_assert_ptr_nonnull(f);
	fputs("UT_C=from ./.env\n", f);
	fclose(f);
	unsetenv("ENV_FILE");
	ck_assert_int_eq(svc_config_load(NULL), SVC_OK);
	ck_assert_str_eq(svc_config_get("UT_C"), "from ./.env");
	ck_assert_int_eq(unlink(".env"), 0);
	ck_assert_int_eq(chdir(old), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(explicit_missing_file_is_an_error)
{
	setenv("ENV_FILE", "/nonexistent/unit/.env", 1);
	ck_assert_int_eq(svc_config_load(NULL), SVC_EINVAL);
	assert_error_names("ENV_FILE");
	ck_assert_ptr_nonnull(
		strstr(svc_config_error(), "/nonexistent/unit/.env"));

	svc_config_reset();
	unsetenv("ENV_FILE");
	ck_assert_int_eq(svc_config_load("/nonexistent/unit/other.env"),
			 SVC_EINVAL);
	assert_error_names("ENV_FILE");
}
END_TEST

START_TEST(reset_forgets_file_values_and_errors)
{
	write_env("UT_A=1\n");
	ck_assert_int_eq(svc_config_load(env_path), SVC_OK);
	svc_config_fail("UT_B", "broken %d", 7);
	ck_assert(!svc_config_ok());
	svc_config_reset();
	ck_assert_ptr_null(svc_config_get("UT_A"));
	ck_assert(svc_config_ok());
	ck_assert_str_eq(svc_config_error(), "");
}
END_TEST

/* --- integers --- */

START_TEST(int_in_range)
{
	ck_assert_int_eq(svc_config_int("UT_INT", 8081, 1, 65535), 8081);
	setenv("UT_INT", "42", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 8081, 1, 65535), 42);
	setenv("UT_INT", "1", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 8081, 1, 65535), 1);
	setenv("UT_INT", "65535", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 8081, 1, 65535), 65535);
	setenv("UT_INT", "-7", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 0, -10, 10), -7);
	setenv("UT_INT", "9223372036854775807", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 0, 0, LLONG_MAX), LLONG_MAX);
	ck_assert(svc_config_ok());
}
END_TEST

START_TEST(int_out_of_range)
{
	setenv("UT_INT", "70000", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 8081, 1, 65535), 8081);
	assert_error_names("UT_INT");
	ck_assert_str_eq(
		svc_config_error(),
		"UT_INT: must be an integer in 1..65535, got \"70000\"");

	svc_config_reset();
	setenv("UT_INT", "0", 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 8081, 1, 65535), 8081);
	assert_error_names("UT_INT");
}
END_TEST

static const char *const bad_ints[] = {
	"abc",
	"12x",
	"",
	"x12",
	"1.5",
	"0x10",
	"1e3",
	"- 1",
	"12 ",
	"+-1",
	"99999999999999999999",
};

START_TEST(int_garbage_gives_default_and_error)
{
	setenv("UT_INT", bad_ints[_i], 1);
	ck_assert_int_eq(svc_config_int("UT_INT", 77, 0, 1000000), 77);
	assert_error_names("UT_INT");
	ck_assert_msg(strstr(svc_config_error(), "integer") != NULL, "%s",
		      svc_config_error());
}
END_TEST

/* --- booleans --- */

START_TEST(bool_forms)
{
	static const struct {
		const char *text;
		bool value;
	} forms[] = {
		{ "true", true },   { "TRUE", true },	{ "1", true },
		{ "yes", true },    { "Yes", true },	{ "on", true },
		{ "false", false }, { "False", false }, { "0", false },
		{ "no", false },    { "NO", false },	{ "off", false },
	};

	ck_assert(svc_config_bool("UT_BOOL", true));
	ck_assert(!svc_config_bool("UT_BOOL", false));
	for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		setenv("UT_BOOL", forms[i].text, 1);
		ck_assert_msg(svc_config_bool("UT_BOOL", !forms[i].value) ==
				      forms[i].value,
			      "%s", forms[i].text);
	}
	ck_assert(svc_config_ok());
}
END_TEST

START_TEST(bool_garbage_gives_default_and_error)
{
	static const char *const bad[] = { "maybe", "2", "y", "truee", "" };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		svc_config_reset();
		setenv("UT_BOOL", bad[i], 1);
		ck_assert(svc_config_bool("UT_BOOL", true));
		assert_error_names("UT_BOOL");
		ck_assert(!svc_config_bool("UT_BOOL", false));
	}
}
END_TEST

/* --- durations --- */

START_TEST(duration_forms)
{
	static const struct {
		const char *text;
		long long ms;
	} forms[] = {
		{ "250ms", 250 },    { "30s", 30000 },
		{ "5m", 300000 },    { "1h", 3600000 },
		{ "10", 10000 },     { "0", 0 },
		{ "0ms", 0 },	     { "1000000ms", 1000000 },
		{ "24h", 86400000 },
	};

	ck_assert_int_eq(svc_config_duration_ms("UT_DUR", "30s", 0, 86400000),
			 30000);
	for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		setenv("UT_DUR", forms[i].text, 1);
		ck_assert_msg(svc_config_duration_ms("UT_DUR", "7s", 0,
						     86400000) == forms[i].ms,
			      "%s", forms[i].text);
	}
	ck_assert(svc_config_ok());
}
END_TEST

static const char *const bad_durations[] = {
	"-5s", "-1", "5d",   "5 s", "5sec", "1.5s",
	"ms",  "s",  "abc",  "5S",  "5MS",  "s5",
	"",    " ",  "5m5s", "1e3", "0x10", "99999999999999999999s",
};

START_TEST(duration_garbage_gives_default_and_error)
{
	setenv("UT_DUR", bad_durations[_i], 1);
	ck_assert_int_eq(svc_config_duration_ms("UT_DUR", "7s", 0, 86400000),
			 7000);
	assert_error_names("UT_DUR");
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "duration"));
}
END_TEST

START_TEST(duration_out_of_range)
{
	setenv("UT_DUR", "2h", 1);
	ck_assert_int_eq(svc_config_duration_ms("UT_DUR", "1m", 1000, 3600000),
			 60000);
	assert_error_names("UT_DUR");

	svc_config_reset();
	setenv("UT_DUR", "999ms", 1);
	ck_assert_int_eq(svc_config_duration_ms("UT_DUR", "1m", 1000, 3600000),
			 60000);
	assert_error_names("UT_DUR");

	/* The bounds themselves are allowed. */
	svc_config_reset();
	setenv("UT_DUR", "1s", 1);
	ck_assert_int_eq(svc_config_duration_ms("UT_DUR", "1m", 1000, 3600000),
			 1000);
	setenv("UT_DUR", "1h", 1);
	ck_assert_int_eq(svc_config_duration_ms("UT_DUR", "1m", 1000, 3600000),
			 3600000);
	ck_assert(svc_config_ok());
}
END_TEST

/* --- required values, enums, the first error --- */

START_TEST(required_values)
{
	ck_assert_ptr_null(svc_config_required("UT_SECRET", 32));
	assert_error_names("UT_SECRET");
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "required"));

	svc_config_reset();
	setenv("UT_SECRET", "", 1);
	ck_assert_ptr_null(svc_config_required("UT_SECRET", 32));
	assert_error_names("UT_SECRET");

	svc_config_reset();
	setenv("UT_SECRET", "0123456789abcdef0123456789abcde", 1); /* 31 */
	ck_assert_ptr_null(svc_config_required("UT_SECRET", 32));
	assert_error_names("UT_SECRET");
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "32"));
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "31"));
	/* The secret itself never shows in the error. */
	ck_assert_ptr_null(strstr(svc_config_error(), "0123456789abcdef"));

	svc_config_reset();
	setenv("UT_SECRET", "0123456789abcdef0123456789abcdef", 1);
	ck_assert_str_eq(svc_config_required("UT_SECRET", 32),
			 "0123456789abcdef0123456789abcdef");
	ck_assert_str_eq(svc_config_required("UT_SECRET", 0),
			 "0123456789abcdef0123456789abcdef");
	ck_assert(svc_config_ok());
}
END_TEST

START_TEST(enum_choices)
{
	static const char *const choices[] = { "debug", "info", "warn", NULL };

	ck_assert_int_eq(svc_config_enum("UT_ENUM", "info", choices), 1);
	setenv("UT_ENUM", "WARN", 1);
	ck_assert_int_eq(svc_config_enum("UT_ENUM", "info", choices), 2);
	ck_assert(svc_config_ok());
	setenv("UT_ENUM", "loud", 1);
	ck_assert_int_eq(svc_config_enum("UT_ENUM", "info", choices), 1);
	assert_error_names("UT_ENUM");
	ck_assert_ptr_nonnull(strstr(svc_config_error(), "debug|info|warn"));
}
END_TEST

START_TEST(first_error_wins)
{
	setenv("UT_A", "abc", 1);
	setenv("UT_B", "maybe", 1);
	ck_assert_int_eq(svc_config_int("UT_A", 1, 0, 10), 1);
	ck_assert(!svc_config_bool("UT_B", false));
	ck_assert_ptr_null(svc_config_required("UT_C", 1));
	svc_config_fail("UT_X", "also wrong");
	assert_error_names("UT_A");
	ck_assert_ptr_null(strstr(svc_config_error(), "UT_B"));

	svc_config_reset();
	ck_assert(svc_config_ok());
	svc_config_fail("UT_X", "bad %s number %d", "lucky", 13);
	ck_assert_str_eq(svc_config_error(), "UT_X: bad lucky number 13");
}
END_TEST

/* Collects "KEY=DEF|ACCEPTS;" for every noted key. */
static void
collect(const char *key, const char *def, const char *accepts, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s=%s|%s;", key, def ? def : "-", accepts);
}

START_TEST(keys_read_are_listed_with_their_defaults)
{
	static const char *const choices[] = { "debug", "info", NULL };
	char seen[1024] = "";

	setenv("UT_INT", "7", 1);
	svc_config_describe("UT_S", "a name");
	svc_config_int("UT_INT", 3, 1, 9);
	svc_config_duration_ms("UT_DUR", "250ms", 0, 3600000);
	svc_config_bool("UT_BOOL", true);
	svc_config_str("UT_S", "dflt");
	svc_config_get("UT_X");
	svc_config_required("UT_SECRET", 32);
	svc_config_enum("UT_ENUM", "info", choices);
	/* The first reader describes a key; later reads change nothing. */
	svc_config_int("UT_INT", 5, 0, 1);
	svc_config_str("UT_X", "late");
	svc_config_foreach(collect, seen);
	ck_assert_str_eq(seen, "UT_INT=3|integer 1..9;"
			       "UT_DUR=250ms|duration 0..1h;"
			       "UT_BOOL=true|true|false;"
			       "UT_S=dflt|a name;"
			       "UT_X=-|text;"
			       "UT_SECRET=-|required, at least 32 bytes;"
			       "UT_ENUM=info|debug|info;");
	/* The value set (7) is nowhere: only defaults are listed. */
	ck_assert_ptr_null(strstr(seen, "7"));
	svc_config_reset();
	seen[0] = '\0';
	svc_config_foreach(collect, seen);
	ck_assert_str_eq(seen, "");
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *src = tcase_create("sources");
	TCase *typed = tcase_create("typed");

	tcase_add_checked_fixture(src, setup, teardown);
	tcase_add_test(src, environment_wins_over_the_file);
	tcase_add_test(src, file_syntax);
	tcase_add_test(src, empty_value_counts_as_set);
	tcase_add_test(src, a_line_without_equals_is_an_error);
	tcase_add_test(src, an_empty_key_is_an_error);
	tcase_add_test(src, env_file_variable_names_the_file);
	tcase_add_test(src, missing_default_file_is_fine);
	tcase_add_test(src, default_file_is_read_from_the_working_directory);
	tcase_add_test(src, explicit_missing_file_is_an_error);
	tcase_add_test(src, reset_forgets_file_values_and_errors);
	suite_add_tcase(s, src);

	tcase_add_checked_fixture(typed, setup, teardown);
	tcase_add_test(typed, int_in_range);
	tcase_add_test(typed, int_out_of_range);
	tcase_add_loop_test(typed, int_garbage_gives_default_and_error, 0,
			    (int)(sizeof(bad_ints) / sizeof(bad_ints[0])));
	tcase_add_test(typed, bool_forms);
	tcase_add_test(typed, bool_garbage_gives_default_and_error);
	tcase_add_test(typed, duration_forms);
	tcase_add_loop_test(
		typed, duration_garbage_gives_default_and_error, 0,
		(int)(sizeof(bad_durations) / sizeof(bad_durations[0])));
	tcase_add_test(typed, duration_out_of_range);
	tcase_add_test(typed, required_values);
	tcase_add_test(typed, enum_choices);
	tcase_add_test(typed, first_error_wins);
	tcase_add_test(typed, keys_read_are_listed_with_their_defaults);
	suite_add_tcase(s, typed);
	return s;
}
