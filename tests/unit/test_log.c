/*
 * test_log.c - unit tests for log.c: every line svc_log_vformat() builds is
 * one line of JSON that jansson accepts, whatever the values hold (quotes,
 * control bytes, bytes that are not UTF-8, values far larger than the line),
 * the request context shows only on its own thread, level names parse, and
 * svc_log() writes nothing below the minimum level. Output goes to a pipe
 * the test reads back, never to the terminal.
 */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/err.h"
#include "svc/log.h"
#include "unit.h"

#define LINE 8192 /* what svc_log() itself uses */
#define HUGE 20000

static char huge_ascii[HUGE + 1];
static char huge_quotes[HUGE + 1];
static char huge_ctrl[HUGE + 1];
static char huge_utf8[HUGE + 4]; /* "é" repeated, after a short prefix */
static char huge_raw[HUGE + 1];	 /* a long JSON array */
static char medium[1200];
static int devnull = -1;

static size_t
fmt(char *buf, size_t size, enum svc_log_level level, const char *msg, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, msg);
	n = svc_log_vformat(buf, size, level, msg, ap);
	va_end(ap);
	return n;
}

/* Checks the line is one JSON object ending in "}\n"; a new reference. */
static json_t *
parse(const char *buf, size_t n, size_t size)
{
	json_error_t err;
	json_t *j;

	ck_assert_uint_eq(strlen(buf), n);
	ck_assert_uint_lt(n, size);
	ck_assert_uint_ge(n, 3);
	ck_assert_msg(buf[n - 2] == '}' && buf[n - 1] == '\n',
		      "line does not end in }\\n: ...%s",
		      buf + (n > 40 ? n - 40 : 0));
	ck_assert_ptr_null(memchr(buf, '\n', n - 1));
	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &err);
	ck_assert_msg(j != NULL, "not JSON (%s at %d) in a line of %zu bytes",
		      err.text, err.position, n);
	ck_assert(json_is_object(j));
	return j;
}

static const char *
str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static void
setup(void)
{
	static const char e_acute[] = "\xc3\xa9";

	memset(huge_ascii, 'a', HUGE);
	memset(huge_quotes, '"', HUGE);
	memset(huge_ctrl, '\x01', HUGE);
	for (size_t i = 0; i + 2 <= HUGE; i += 2)
		memcpy(huge_utf8 + 3 + i, e_acute, 2);
	huge_raw[0] = '[';
	for (size_t i = 1; i + 2 < HUGE; i += 2)
		memcpy(huge_raw + i, "1,", 2);
	memcpy(huge_raw + HUGE - 2, "1]", 3);
	memset(medium, 'm', sizeof(medium) - 1);
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	svc_log_init("unit-svc", SVC_LOG_DEBUG, devnull);
	svc_log_set_context(NULL, NULL);
}

static void
teardown(void)
{
	svc_log_set_context(NULL, NULL);
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(devnull);
	devnull = -1;
}

/* --- the shape of a line --- */

START_TEST(line_has_the_fixed_members)
{
	char buf[LINE];
	size_t n = fmt(buf, sizeof(buf), SVC_LOG_INFO, "hello", SVC_LOG_END);
	json_t *j = parse(buf, n, sizeof(buf));
	const char *ts = str(j, "ts");

	ck_assert_ptr_nonnull(ts);
	/* 2026-11-25T19:43:35.123456Z */
	ck_assert_uint_eq(strlen(ts), 27);
	ck_assert_int_eq(ts[10], 'T');
	ck_assert_int_eq(ts[26], 'Z');
	ck_assert_str_eq(str(j, "level"), "info");
	ck_assert_str_eq(str(j, "service"), "unit-svc");
	ck_assert_str_eq(str(j, "msg"), "hello");
	ck_assert_ptr_null(json_object_get(j, "request_id"));
	ck_assert_ptr_null(json_object_get(j, "trace_id"));
	ck_assert_uint_eq(json_object_size(j), 4);
	/* ts comes first, so lines sort by time. */
	ck_assert(strncmp(buf, "{\"ts\":\"", 7) == 0);
	json_decref(j);
}
END_TEST

START_TEST(level_names)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char buf[LINE];

	for (int l = SVC_LOG_DEBUG; l <= SVC_LOG_ERROR; l++) {
		size_t n = fmt(buf, sizeof(buf), (enum svc_log_level)l, "m",
			       SVC_LOG_END);
		json_t *j = parse(buf, n, sizeof(buf));

		ck_assert_str_eq(str(j, "level"), names[l]);
		json_decref(j);
	}
}
END_TEST

START_TEST(context_is_added_when_set)
{
	char buf[LINE];
	size_t n;
	json_t *j;

	svc_log_set_context("req-1", "00-abc-def-01");
	n = fmt(buf, sizeof(buf), SVC_LOG_WARN, "m", SVC_LOG_END);
	j = parse(buf, n, sizeof(buf));
	ck_assert_str_eq(str(j, "request_id"), "req-1");
	ck_assert_str_eq(str(j, "trace_id"), "00-abc-def-01");
	json_decref(j);

	svc_log_set_context("req-2", NULL);
	n = fmt(buf, sizeof(buf), SVC_LOG_WARN, "m", SVC_LOG_END);
	j = parse(buf, n, sizeof(buf));
	ck_assert_str_eq(str(j, "request_id"), "req-2");
	ck_assert_ptr_null(json_object_get(j, "trace_id"));
	json_decref(j);

	svc_log_set_context(NULL, NULL);
	n = fmt(buf, sizeof(buf), SVC_LOG_WARN, "m", SVC_LOG_END);
	j = parse(buf, n, sizeof(buf));
	ck_assert_ptr_null(json_object_get(j, "request_id"));
	json_decref(j);
}
END_TEST

static void *
format_on_thread(void *arg)
{
	char *buf = arg;

	fmt(buf, LINE, SVC_LOG_INFO, "from a thread", SVC_LOG_END);
	return NULL;
}

START_TEST(context_belongs_to_its_thread)
{
	static char buf[LINE];
	pthread_t t;
	json_t *j;

	svc_log_set_context("main-request", "main-trace");
	ck_assert_int_eq(pthread_create(&t, NULL, format_on_thread, buf), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	j = parse(buf, strlen(buf), sizeof(buf));
	ck_assert_ptr_null(json_object_get(j, "request_id"));
	ck_assert_ptr_null(json_object_get(j, "trace_id"));
	json_decref(j);
}
END_TEST

START_TEST(typed_fields)
{
	char buf[LINE];
	size_t n = fmt(buf, sizeof(buf), SVC_LOG_INFO, "typed",
		       SVC_LOG_STR("s", "text"), SVC_LOG_STR("null", NULL),
		       SVC_LOG_INT("i", 42), SVC_LOG_INT("min", LLONG_MIN),
		       SVC_LOG_INT("max", LLONG_MAX), SVC_LOG_DBL("d", 1.5),
		       SVC_LOG_DBL("neg", -0.25), SVC_LOG_BOOL("t", 1),
		       SVC_LOG_BOOL("f", 0), SVC_LOG_BOOL("seven", 7),
		       SVC_LOG_RAW("arr", "[1,\"two\",{\"x\":null}]"),
		       SVC_LOG_RAW("obj", "{\"a\":1}"), SVC_LOG_END);
	json_t *j = parse(buf, n, sizeof(buf));

	ck_assert_str_eq(str(j, "s"), "text");
	ck_assert(json_is_null(json_object_get(j, "null")));
	ck_assert(json_is_integer(json_object_get(j, "i")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "i")), 42);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "min")),
			 LLONG_MIN);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max")),
			 LLONG_MAX);
	ck_assert(json_is_real(json_object_get(j, "d")));
	ck_assert_double_eq(json_real_value(json_object_get(j, "d")), 1.5);
	ck_assert_double_eq(json_real_value(json_object_get(j, "neg")), -0.25);
	ck_assert(json_is_true(json_object_get(j, "t")));
	ck_assert(json_is_false(json_object_get(j, "f")));
	ck_assert(json_is_true(json_object_get(j, "seven")));
	ck_assert(json_is_array(json_object_get(j, "arr")));
	ck_assert_uint_eq(json_array_size(json_object_get(j, "arr")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(j, "obj"), "a")),
			 1);
	json_decref(j);
}
END_TEST

START_TEST(doubles_that_json_cannot_hold)
{
	char buf[LINE];
	size_t n = fmt(buf, sizeof(buf), SVC_LOG_INFO, "m",
		       SVC_LOG_DBL("nan", NAN), SVC_LOG_DBL("inf", INFINITY),
		       SVC_LOG_DBL("ninf", -INFINITY), SVC_LOG_DBL("ok", 2),
		       SVC_LOG_END);
	json_t *j = parse(buf, n, sizeof(buf));

	ck_assert(json_is_null(json_object_get(j, "nan")));
	ck_assert(json_is_null(json_object_get(j, "inf")));
	ck_assert(json_is_null(json_object_get(j, "ninf")));
	ck_assert_double_eq(json_number_value(json_object_get(j, "ok")), 2);
	json_decref(j);
}
END_TEST

/* --- escaping --- */

START_TEST(strings_are_escaped)
{
	static const char nasty[] = "q\"b\\s/n\nr\rt\tz\x01"
				    "e\x1b"
				    "u\x1f"
				    "d\x7f"
				    "end";
	char buf[LINE];
	size_t n = fmt(buf, sizeof(buf), SVC_LOG_ERROR, nasty,
		       SVC_LOG_STR(nasty, nasty), SVC_LOG_STR("plain", "ok"),
		       SVC_LOG_END);
	json_t *j = parse(buf, n, sizeof(buf));

	ck_assert_str_eq(str(j, "msg"), nasty);
	ck_assert_str_eq(str(j, nasty), nasty);
	ck_assert_str_eq(str(j, "plain"), "ok");
	/* No raw control byte reaches the line. */
	for (size_t i = 0; i + 1 < n; i++)
		ck_assert_msg((unsigned char)buf[i] >= 0x20 &&
				      (unsigned char)buf[i] != 0x7f,
			      "raw byte 0x%02x at %zu", (unsigned char)buf[i],
			      i);
	json_decref(j);
}
END_TEST

START_TEST(utf8_is_kept_and_bad_bytes_are_replaced)
{
	static const char good[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	static const char bad[] = "a\xff"
				  "b\xc3"
				  "c\xe2\x82"
				  "d\xc0\xaf"
				  "e\xed\xa0\x80"
				  "f\xf4\x90\x80\x80"
				  "g\x80";
	char buf[LINE];
	size_t n = fmt(buf, sizeof(buf), SVC_LOG_INFO, good,
		       SVC_LOG_STR("bad", bad), SVC_LOG_STR("tail", "\xc3"),
		       SVC_LOG_END);
	json_t *j = parse(buf, n, sizeof(buf));
	const char *s = str(j, "bad");

	ck_assert_str_eq(str(j, "msg"), good);
	ck_assert_ptr_nonnull(s);
	/* Every byte that was not UTF-8 became U+FFFD; the ASCII stayed. */
	for (const char *p = "abcdefg"; *p != '\0'; p++)
		ck_assert_ptr_nonnull(strchr(s, *p));
	ck_assert_ptr_nonnull(strstr(s, "a\xef\xbf\xbd"
					"b"));
	ck_assert_str_eq(str(j, "tail"), "\xef\xbf\xbd");
	json_decref(j);
}
END_TEST

/* --- lines too long for the buffer --- */

enum {
	CUT_LAST,      /* a huge value is the last field */
	CUT_THEN_MORE, /* ... and more fields of every type follow */
	CUT_QUOTES,    /* a huge value of characters that need escapes */
	CUT_CONTROL,   /* ... \u00XX escapes */
	CUT_UTF8_0,    /* multi-byte characters, cut at every alignment */
	CUT_UTF8_1,
	CUT_UTF8_2,
	CUT_MSG,  /* a huge message, then the request context */
	CUT_KEY,  /* a huge key */
	CUT_RAW,  /* a huge raw JSON value */
	CUT_MANY, /* many medium values that overflow together */
	NCUT,
};

static const size_t sizes[] = { LINE, 1024, 256, 128 };
#define NSIZES ((int)(sizeof(sizes) / sizeof(sizes[0])))

START_TEST(huge_values_still_make_one_valid_line)
{
	int which = _i / NSIZES;
	size_t size = sizes[_i % NSIZES];
	char *buf = malloc(size);
	const char *utf8;
	size_t n = 0;
	json_t *j;

	ck_assert_ptr_nonnull(buf);
	memset(huge_utf8, 'p', 3);
	switch (which) {
	case CUT_LAST:
		n = fmt(buf, size, SVC_LOG_INFO, "m",
			SVC_LOG_STR("big", huge_ascii), SVC_LOG_END);
		break;
	case CUT_THEN_MORE:
		n = fmt(buf, size, SVC_LOG_INFO, "m",
			SVC_LOG_STR("big", huge_ascii),
			SVC_LOG_INT("i", 123456), SVC_LOG_STR("s", "after"),
			SVC_LOG_RAW("r", "[1,2,3]"), SVC_LOG_BOOL("b", 1),
			SVC_LOG_DBL("d", 0.5), SVC_LOG_END);
		break;
	case CUT_QUOTES:
		n = fmt(buf, size, SVC_LOG_INFO, "m",
			SVC_LOG_STR("big", huge_quotes), SVC_LOG_INT("i", 1),
			SVC_LOG_END);
		break;
	case CUT_CONTROL:
		n = fmt(buf, size, SVC_LOG_INFO, "m",
			SVC_LOG_STR("big", huge_ctrl), SVC_LOG_INT("i", 1),
			SVC_LOG_END);
		break;
	case CUT_UTF8_0:
	case CUT_UTF8_1:
	case CUT_UTF8_2:
		utf8 = huge_utf8 + 3 - (which - CUT_UTF8_0);
		n = fmt(buf, size, SVC_LOG_INFO, "m", SVC_LOG_STR("big", utf8),
			SVC_LOG_END);
		break;
	case CUT_MSG:
		svc_log_set_context("rid", "trace");
		n = fmt(buf, size, SVC_LOG_INFO, huge_ascii,
			SVC_LOG_INT("i", 1), SVC_LOG_END);
		break;
	case CUT_KEY:
		n = fmt(buf, size, SVC_LOG_INFO, "m",
			SVC_LOG_INT(huge_ascii, 1), SVC_LOG_STR("s", "x"),
			SVC_LOG_END);
		break;
	case CUT_RAW:
		n = fmt(buf, size, SVC_LOG_INFO, "m",
			SVC_LOG_RAW("big", huge_raw), SVC_LOG_INT("i", 1),
			SVC_LOG_END);
		break;
	case CUT_MANY:
		n = fmt(buf, size, SVC_LOG_INFO, "m", SVC_LOG_STR("a", medium),
			SVC_LOG_STR("b", medium), SVC_LOG_STR("c", medium),
			SVC_LOG_STR("d", medium), SVC_LOG_STR("e", medium),
			SVC_LOG_STR("f", medium), SVC_LOG_STR("g", medium),
			SVC_LOG_STR("h", medium), SVC_LOG_INT("i", 1),
			SVC_LOG_END);
		break;
	default:
		ck_abort();
	}
	j = parse(buf, n, size);
	ck_assert_ptr_nonnull(json_object_get(j, "ts"));
	ck_assert_ptr_nonnull(json_object_get(j, "level"));
	if (size >= 1024) {
		/* A big buffer keeps the fixed members and cuts the value. */
		const char *big = str(j, which == CUT_MSG ? "msg" : "big");

		ck_assert_str_eq(str(j, "service"), "unit-svc");
		if (which != CUT_KEY && which != CUT_RAW && which != CUT_MANY) {
			ck_assert_ptr_nonnull(big);
			/* Even \u0001 escapes (6 bytes each) fill it. */
			ck_assert_uint_gt(strlen(big), size / 8);
			ck_assert_str_eq(big + strlen(big) - 3, "...");
		}
	}
	json_decref(j);
	free(buf);
}
END_TEST

START_TEST(short_lines_are_not_cut)
{
	char buf[LINE];
	size_t n = fmt(buf, sizeof(buf), SVC_LOG_INFO, "m",
		       SVC_LOG_STR("a", medium), SVC_LOG_STR("b", medium),
		       SVC_LOG_END);
	json_t *j = parse(buf, n, sizeof(buf));

	ck_assert_str_eq(str(j, "a"), medium);
	ck_assert_str_eq(str(j, "b"), medium);
	json_decref(j);
}
END_TEST

/* --- levels --- */

START_TEST(parse_level)
{
	static const struct {
		const char *text;
		enum svc_log_level level;
	} good[] = {
		{ "debug", SVC_LOG_DEBUG }, { "info", SVC_LOG_INFO },
		{ "warn", SVC_LOG_WARN },   { "warning", SVC_LOG_WARN },
		{ "error", SVC_LOG_ERROR }, { "INFO", SVC_LOG_INFO },
		{ "Error", SVC_LOG_ERROR },
	};
	static const char *const bad[] = {
		"",	 "loud",  "infos", "err",
		"fatal", " info", "info ", "warnings"
	};
	enum svc_log_level level;

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		level = (enum svc_log_level) - 1;
		ck_assert_int_eq(svc_log_parse_level(good[i].text, &level),
				 SVC_OK);
		ck_assert_int_eq(level, good[i].level);
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(svc_log_parse_level(bad[i], &level) == SVC_EINVAL,
			      "accepted \"%s\"", bad[i]);
}
END_TEST

/* Reads everything written to fd until EOF (new, NUL-terminated). */
static char *
read_all(int fd)
{
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap + 1);
	ssize_t n;

	ck_assert_ptr_nonnull(out);
	while ((n = read(fd, out + len, cap - len)) > 0)
		len += (size_t)n;
	ck_assert_int_eq(n, 0);
	out[len] = '\0';
	return out;
}

START_TEST(lines_below_the_minimum_are_not_written)
{
	int p[2];
	char *out, *line, *save = NULL;
	const char *want[] = { "warn line", "error line", "second warn" };
	int count = 0;

	ck_assert_int_eq(pipe(p), 0);
	svc_log_init("unit-pipe", SVC_LOG_WARN, p[1]);
	ck_assert(!svc_log_enabled(SVC_LOG_DEBUG));
	ck_assert(!svc_log_enabled(SVC_LOG_INFO));
	ck_assert(svc_log_enabled(SVC_LOG_WARN));
	ck_assert(svc_log_enabled(SVC_LOG_ERROR));
	svc_log(SVC_LOG_DEBUG, "debug line", SVC_LOG_END);
	svc_log(SVC_LOG_INFO, "info line", SVC_LOG_INT("n", 1), SVC_LOG_END);
	svc_log(SVC_LOG_WARN, "warn line", SVC_LOG_END);
	svc_log(SVC_LOG_ERROR, "error line", SVC_LOG_STR("k", "v"),
		SVC_LOG_END);
	svc_log(SVC_LOG_INFO, "another info", SVC_LOG_END);
	svc_log(SVC_LOG_WARN, "second warn", SVC_LOG_END);
	svc_log_init("unit-svc", SVC_LOG_DEBUG, devnull);
	close(p[1]);
	out = read_all(p[0]);
	close(p[0]);

	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);

		ck_assert_msg(j != NULL, "not JSON: %s", line);
		ck_assert_int_lt(count, 3);
		ck_assert_str_eq(str(j, "msg"), want[count]);
		ck_assert_str_eq(str(j, "service"), "unit-pipe");
		count++;
		json_decref(j);
	}
	ck_assert_int_eq(count, 3);
	free(out);
}
END_TEST

START_TEST(svc_log_writes_one_bounded_line)
{
	int p[2];
	char *out;
	size_t n;
	json_t *j;

	ck_assert_int_eq(pipe(p), 0);
	svc_log_init("unit-pipe", SVC_LOG_DEBUG, p[1]);
	svc_log_set_context("rid-9", NULL);
	svc_log(SVC_LOG_DEBUG, "big", SVC_LOG_STR("v", huge_ascii),
		SVC_LOG_INT("after", 5), SVC_LOG_END);
	svc_log_set_context(NULL, NULL);
	svc_log_init("unit-svc", SVC_LOG_DEBUG, devnull);
	close(p[1]);
	out = read_all(p[0]);
	close(p[0]);
	n = strlen(out);
	ck_assert_uint_le(n, LINE);
	j = parse(out, n, LINE + 1);
	ck_assert_str_eq(str(j, "request_id"), "rid-9");
	ck_assert_str_eq(str(j, "level"), "debug");
	json_decref(j);
	free(out);
}
END_TEST

START_TEST(text_format_is_one_plain_line)
{
	char buf[512];
	bool text = false;

	ck_assert_int_eq(svc_log_parse_format("text", &text), 0);
	ck_assert(text);
	ck_assert_int_eq(svc_log_parse_format("json", &text), 0);
	ck_assert(!text);
	ck_assert_int_ne(svc_log_parse_format("xml", &text), 0);

	svc_log_set_text(true);
	fmt(buf, sizeof(buf), SVC_LOG_WARN, "disk\nfull",
	    SVC_LOG_INT("free", 3), SVC_LOG_STR("path", "/var/a b"),
	    SVC_LOG_BOOL("ro", 1), SVC_LOG_END);
	svc_log_set_text(false);
	ck_assert_ptr_nonnull(strstr(buf, " WARN  disk?full free=3"));
	ck_assert_ptr_nonnull(strstr(buf, " path=\"/var/a b\" ro=true\n"));
	/* exactly one line: the newline in the message was neutralised */
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + strlen(buf) - 1);
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *line = tcase_create("line");
	TCase *cut = tcase_create("cut");
	TCase *level = tcase_create("level");

	tcase_add_checked_fixture(line, setup, teardown);
	tcase_add_test(line, line_has_the_fixed_members);
	tcase_add_test(line, level_names);
	tcase_add_test(line, context_is_added_when_set);
	tcase_add_test(line, context_belongs_to_its_thread);
	tcase_add_test(line, typed_fields);
	tcase_add_test(line, doubles_that_json_cannot_hold);
	tcase_add_test(line, strings_are_escaped);
	tcase_add_test(line, utf8_is_kept_and_bad_bytes_are_replaced);
	tcase_add_test(line, text_format_is_one_plain_line);
	suite_add_tcase(s, line);

	tcase_add_checked_fixture(cut, setup, teardown);
	tcase_add_loop_test(cut, huge_values_still_make_one_valid_line, 0,
			    NCUT * NSIZES);
	tcase_add_test(cut, short_lines_are_not_cut);
	suite_add_tcase(s, cut);

	tcase_add_checked_fixture(level, setup, teardown);
	tcase_add_test(level, parse_level);
	tcase_add_test(level, lines_below_the_minimum_are_not_written);
	tcase_add_test(level, svc_log_writes_one_bounded_line);
	suite_add_tcase(s, level);
	return s;
}
