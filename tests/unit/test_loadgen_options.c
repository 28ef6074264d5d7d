/*
 * test_loadgen_options.c - unit tests for tools/loadgen/options.c: the
 * defaults, durations, the mix, targets that must be loopback unless
 * --allow-remote, the token from the environment, and that every refusal
 * is one line naming its flag with LG_EUSAGE (exit status 2).
 */
#include <stdlib.h>
#include <string.h>

#include "../../tools/loadgen/loadgen.h"
#include "unit.h"

#define MAX_ARGS 16

/* Parses "loadgen" followed by the NULL-terminated flags. */
static int
parse(struct lg_options *opt, char *err, const char *const *flags)
{
	char *argv[MAX_ARGS + 2] = { "loadgen" };
	int argc = 1, rc;

	for (; flags[argc - 1] != NULL; argc++)
		argv[argc] = strdup(flags[argc - 1]);
	err[0] = '\0';
	rc = lg_options_parse(opt, argc, argv, err, 256);
	for (int i = 1; i < argc; i++)
		free(argv[i]);
	return rc;
}

#define PARSE(opt, err, ...)                                                   \
	parse((opt), (err), (const char *const[]){ __VA_ARGS__, NULL })

START_TEST(options_defaults)
{
	struct lg_options opt;
	char err[256];

	unsetenv("LOADGEN_TOKEN");
	ck_assert_int_eq(parse(&opt, err, (const char *const[]){ NULL }), 0);
	ck_assert(opt.rate == 10);
	ck_assert_int_eq(opt.duration_ms, 60000);
	ck_assert_uint_eq(opt.mix[LG_BROWSE], 25);
	ck_assert_uint_eq(opt.mix[LG_READ], 50);
	ck_assert_uint_eq(opt.mix[LG_ORDER], 25);
	ck_assert_uint_eq(opt.cancel_pct, 10);
	ck_assert_int_eq(opt.check_after_ms, 1000);
	ck_assert_uint_eq(opt.max_inflight, 256);
	ck_assert_str_eq(opt.url[LG_ORDERS], "http://127.0.0.1:8083");
	ck_assert_ptr_null(opt.token);
	ck_assert(!opt.json && !opt.quiet && !opt.allow_remote);
	lg_options_cleanup(&opt);
}
END_TEST

START_TEST(options_durations)
{
	static const struct {
		const char *text;
		long long ms;
	} good[] = { { "500ms", 500 },	{ "30s", 30000 }, { "2m", 120000 },
		     { "1h", 3600000 }, { "1.5s", 1500 }, { "60", 60000 },
		     { "0", 0 } };
	static const char *const bad[] = { "",	  "s",	"-1s",	"5x",
					   "1 s", "8d", "200h", "nan" };
	long long ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(lg_parse_duration(good[i].text, &ms) == 0,
			      "%s refused", good[i].text);
		ck_assert_int_eq(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(lg_parse_duration(bad[i], &ms) != 0,
			      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(options_values)
{
	struct lg_options opt;
	char err[256];

	ck_assert_int_eq(PARSE(&opt, err, "--rate", "2.5", "--duration=2m",
			       "--mix", "order=3,browse=1", "--cancel", "0",
			       "--json", "--quiet", "--orders",
			       "http://localhost:9/"),
			 0);
	ck_assert(opt.rate == 2.5);
	ck_assert_int_eq(opt.duration_ms, 120000);
	ck_assert_uint_eq(opt.mix[LG_ORDER], 3);
	ck_assert_uint_eq(opt.mix[LG_BROWSE], 1);
	ck_assert_uint_eq(opt.mix[LG_READ], 0);
	ck_assert_uint_eq(opt.cancel_pct, 0);
	ck_assert(opt.json && opt.quiet);
	ck_assert_str_eq(opt.url[LG_ORDERS], "http://localhost:9");
	lg_options_cleanup(&opt);
}
END_TEST

/* Each refused with LG_EUSAGE, one line, naming the flag. */
START_TEST(options_refusals_name_the_flag)
{
	static const struct {
		const char *flags[3];
		const char *named;
	} cases[] = {
		{ { "--rate", "abc" }, "--rate" },
		{ { "--rate", "0" }, "--rate" },
		{ { "--rate", "-1" }, "--rate" },
		{ { "--rate", "100001" }, "--rate" },
		{ { "--rate" }, "--rate" },
		{ { "--duration", "5x" }, "--duration" },
		{ { "--timeout", "0" }, "--timeout" },
		{ { "--mix", "read=1,write=2" }, "--mix" },
		{ { "--mix", "order=0" }, "--mix" },
		{ { "--cancel", "101" }, "--cancel" },
		{ { "--items", "0" }, "--items" },
		{ { "--list-limit", "500" }, "--list-limit" },
		{ { "--products", "ftp://127.0.0.1" }, "--products" },
		{ { "--orders", "http://10.0.0.1:8083" }, "--orders" },
		{ { "--seed", "3" }, "--seed" },
		{ { "--bogus" }, "--bogus" },
		{ { "stray" }, "stray" },
	};

	unsetenv("LOADGEN_TOKEN");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lg_options opt;
		char err[256];

		ck_assert_int_eq(parse(&opt, err, cases[i].flags), LG_EUSAGE);
		ck_assert_msg(strstr(err, cases[i].named) != NULL,
			      "%s: '%s' does not name it", cases[i].named, err);
		ck_assert_msg(strchr(err, '\n') == NULL && err[0] != '\0',
			      "%s: not one line: '%s'", cases[i].named, err);
		lg_options_cleanup(&opt);
	}
}
END_TEST

START_TEST(options_remote_needs_allow_remote)
{
	struct lg_options opt;
	char err[256];

	ck_assert_int_eq(PARSE(&opt, err, "--allow-remote", "--orders",
			       "https://shop.example:8443"),
			 0);
	lg_options_cleanup(&opt);
	/* the order of flags does not matter */
	ck_assert_int_eq(PARSE(&opt, err, "--products", "http://10.1.2.3",
			       "--allow-remote"),
			 0);
	lg_options_cleanup(&opt);
}
END_TEST

START_TEST(options_loopback)
{
	static const char *const yes[] = {
		"http://127.0.0.1:8081", "http://localhost",
		"http://LOCALHOST:1",	 "http://127.9.8.7/x",
		"http://[::1]:8083",
	};
	static const char *const no[] = {
		"http://10.0.0.1",	    "http://example.com",
		"http://127.0.0.1.nip.io",  "http://127.0.0.1@192.0.2.1",
		"http://[::ffff:10.0.0.1]", "http://128.0.0.1",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(lg_url_is_loopback(yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!lg_url_is_loopback(no[i]), "%s", no[i]);
}
END_TEST

START_TEST(options_token_from_env_and_help)
{
	struct lg_options opt;
	char err[256];

	setenv("LOADGEN_TOKEN", "tok.en.x", 1);
	ck_assert_int_eq(PARSE(&opt, err, "--seed", "2"), 0);
	ck_assert_str_eq(opt.token, "tok.en.x");
	lg_options_cleanup(&opt);
	/* a flag wins over the environment */
	ck_assert_int_eq(PARSE(&opt, err, "--token", "other"), 0);
	ck_assert_str_eq(opt.token, "other");
	lg_options_cleanup(&opt);
	unsetenv("LOADGEN_TOKEN");
	ck_assert_int_eq(PARSE(&opt, err, "--help"), -1);
	lg_options_cleanup(&opt);
}
END_TEST

Suite *
loadgen_options_suite(void)
{
	Suite *s = suite_create("loadgen_options");
	TCase *tc = tcase_create("loadgen_options");

	tcase_add_test(tc, options_defaults);
	tcase_add_test(tc, options_durations);
	tcase_add_test(tc, options_values);
	tcase_add_test(tc, options_refusals_name_the_flag);
	tcase_add_test(tc, options_remote_needs_allow_remote);
	tcase_add_test(tc, options_loopback);
	tcase_add_test(tc, options_token_from_env_and_help);
	suite_add_tcase(s, tc);
	return s;
}
