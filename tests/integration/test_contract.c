/*
 * test_contract.c - each service's route table against its OpenAPI file.
 *
 * `<BIN_DIR>/<service> routes` prints the routes the binary really serves;
 * docs/api/<service>.yaml says what the API promises. The two must name
 * the same operations, so a route cannot be added or removed without the
 * document following. The YAML is read line by line, not parsed: the
 * documents keep a fixed layout under `paths:` (path keys indented by
 * exactly 2 spaces, lower-case method keys by exactly 4) and this suite is
 * what holds them to it. It compares names only - not parameters, schemas
 * or status codes - and needs no running service, only the binaries
 * (BIN_DIR, default build) and the repository root as working directory.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"

/*
 * Every service of the tree (services/<name>/main.c): each needs its
 * binary and docs/api/<name>.yaml. Filled when the suite is made.
 */
static char services[SERVICES_MAX][SERVICE_NAME_MAX];
static int nservices;

/* The operation keys OpenAPI knows; "trace" is left out on purpose. */
static const char *const methods[] = { "get",	 "put",	 "post",   "patch",
				       "delete", "head", "options" };

/* Differences past this much text are counted, not listed. */
#define REPORT_MAX 3000

struct op {
	char method[16]; /* upper case, as the route table prints it */
	char path[256];
};

struct ops {
	struct op *items;
	int n, cap;
};

static void
ops_add(struct ops *l, const char *method, const char *path)
{
	struct op *o;

	ck_assert_msg(strlen(method) < sizeof(o->method) &&
			      strlen(path) < sizeof(o->path),
		      "operation too long: %.32s %.300s", method, path);
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 16;
		struct op *items =
			realloc(l->items, sizeof(*items) * (size_t)cap);

		ck_assert_ptr_nonnull(items);
		l->items = items;
		l->cap = cap;
	}
	o = &l->items[l->n++];
	for (size_t i = 0; i < sizeof(o->method); i++) {
		o->method[i] = (char)toupper((unsigned char)method[i]);
		if (method[i] == '\0')
			break;
	}
	strcpy(o->path, path);
}

static bool
ops_has(const struct ops *l, const char *method, const char *path)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->items[i].method, method) == 0 &&
		    strcmp(l->items[i].path, path) == 0)
			return true;
	return false;
}

static void
ops_cleanup(struct ops *l)
{
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

/*
 * Copies the next line of *text (without its end of line and trailing
 * blanks, truncated to size) into buf and advances *text; false at the end.
 */
static bool
next_line(const char **text, char *buf, size_t size)
{
	size_t len = strcspn(*text, "\n");
	size_t n = len < size - 1 ? len : size - 1;

	if (**text == '\0')
		return false;
	memcpy(buf, *text, n);
	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	*text += len;
	if (**text == '\n')
		(*text)++;
	return true;
}

/*
 * "METHOD PATH" lines, as `<service> routes` prints them. A line of any
 * other shape fails the test: the format is part of the contract too.
 */
static void
parse_routes(const char *text, struct ops *out)
{
	char line[512];

	while (next_line(&text, line, sizeof(line))) {
		char *sp = strchr(line, ' ');

		if (line[0] == '\0')
			continue;
		ck_assert_msg(sp != NULL && sp[1] == '/' &&
				      strchr(sp + 1, ' ') == NULL,
			      "unexpected route line \"%.300s\"", line);
		*sp = '\0';
		ops_add(out, line, sp + 1);
	}
}

/*
 * A mapping key that opens a nested block - `key:` or `'key':`, then
 * nothing but an optional comment - into key; false for anything else
 * (list items, scalars, comments, keys with inline values).
 */
static bool
block_key(const char *s, char *key, size_t size)
{
	const char *end;

	if (*s == '"' || *s == '\'') {
		end = strchr(s + 1, *s);
		if (end == NULL || end[1] != ':')
			return false;
		s++;
	} else {
		if (*s == '\0' || *s == '#' || *s == '-' || *s == ' ')
			return false;
		end = s;
		while (*end != '\0' &&
		       !(end[0] == ':' && (end[1] == '\0' || end[1] == ' ')))
			end++;
		if (*end == '\0')
			return false;
	}
	if ((size_t)(end - s) >= size || end == s)
		return false;
	memcpy(key, s, (size_t)(end - s));
	key[end - s] = '\0';
	s = end + (*end == ':' ? 1 : 2);
	while (*s == ' ')
		s++;
	return *s == '\0' || *s == '#';
}

static bool
is_method(const char *key)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(key, methods[i]) == 0)
			return true;
	return false;
}

/*
 * The operations under `paths:`: a 2-space key starting with '/' is a
 * path, a 4-space lower-case method key below it an operation. The block
 * ends at the next top-level key; anything more deeply indented (block
 * scalars included) can never be taken for a key at these two depths.
 */
static void
parse_spec(const char *text, struct ops *out)
{
	char line[1024], key[256], path[256] = "";
	bool in_paths = false;

	while (next_line(&text, line, sizeof(line))) {
		size_t indent = strspn(line, " ");

		if (line[0] == '\0' || line[indent] == '#')
			continue;
		if (indent == 0) {
			in_paths = block_key(line, key, sizeof(key)) &&
				   strcmp(key, "paths") == 0;
			path[0] = '\0';
		} else if (!in_paths) {
			continue;
		} else if (indent == 2) {
			if (!block_key(line + 2, key, sizeof(key)) ||
			    key[0] != '/')
				key[0] = '\0';
			strcpy(path, key);
		} else if (indent == 4 && path[0] != '\0' &&
			   block_key(line + 4, key, sizeof(key)) &&
			   is_method(key)) {
			ops_add(out, key, path);
		}
	}
}

/* The whole of a file (malloc'd, NUL-terminated), or NULL with errno set. */
static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data = NULL;
	size_t len = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		char *p = realloc(data, len + 4096 + 1);

		if (p == NULL) {
			free(data);
			data = NULL;
			break;
		}
		data = p;
		n = fread(data + len, 1, 4096, f);
		len += n;
		data[len] = '\0';
		if (n < 4096)
			break;
	}
	if (data != NULL && ferror(f)) {
		free(data);
		data = NULL;
		errno = EIO;
	}
	fclose(f);
	return data;
}

static void
load_routes(const char *svc, struct ops *out)
{
	const char *bin = getenv("BIN_DIR");
	char cmd[512], *text = NULL;
	int rc;

	if (bin == NULL || bin[0] == '\0')
		bin = "build";
	ck_assert_msg(strchr(bin, '\'') == NULL, "BIN_DIR has a quote: %s",
		      bin);
	snprintf(cmd, sizeof(cmd), "'%s/%s' routes", bin, svc);
	rc = run_cmd(cmd, &text);
	ck_assert_msg(rc == 0, "`%s` exited with status %d", cmd, rc);
	parse_routes(text, out);
	free(text);
	ck_assert_msg(out->n > 0, "`%s` printed no routes", cmd);
}

static void
load_spec(const char *svc, struct ops *out, char *path, size_t size)
{
	char *text;

	snprintf(path, size, "docs/api/%s.yaml", svc);
	text = read_text(path);
	ck_assert_msg(text != NULL, "cannot read %s: %s", path,
		      strerror(errno));
	parse_spec(text, out);
	free(text);
}

/*
 * Appends "\n  <what>: METHOD PATH" to report (REPORT_MAX bytes) while it
 * fits whole; past that, one "\n  ..." and the rest are only counted.
 */
static void
note(char *report, size_t *used, int *count, const char *what,
     const struct op *o)
{
	static const char more[] = "\n  ...";
	size_t room = REPORT_MAX - sizeof(more) - *used;
	int n;

	(*count)++;
	if (*used == REPORT_MAX)
		return;
	n = snprintf(report + *used, room, "\n  %s: %s %s", what, o->method,
		     o->path);
	if (n >= 0 && (size_t)n < room) {
		*used += (size_t)n;
		return;
	}
	strcpy(report + *used, more);
	*used = REPORT_MAX;
}

START_TEST(test_routes_match_spec)
{
	const char *svc = services[_i];
	struct ops routes = { 0 }, spec = { 0 };
	char report[REPORT_MAX] = "", doc[256];
	size_t used = 0;
	int diffs = 0;

	load_routes(svc, &routes);
	load_spec(svc, &spec, doc, sizeof(doc));
	for (int i = 0; i < routes.n; i++)
		if (!ops_has(&spec, routes.items[i].method,
			     routes.items[i].path))
			note(report, &used, &diffs, "served but not documented",
			     &routes.items[i]);
	for (int i = 0; i < spec.n; i++)
		if (!ops_has(&routes, spec.items[i].method, spec.items[i].path))
			note(report, &used, &diffs, "documented but not served",
			     &spec.items[i]);
	ck_assert_msg(diffs == 0,
		      "%s: %d difference%s between `%s routes` and %s:%s", svc,
		      diffs, diffs == 1 ? "" : "s", svc, doc, report);
	ops_cleanup(&routes);
	ops_cleanup(&spec);
}
END_TEST

/* Guards against a parser that finds nothing and so never complains. */
START_TEST(test_spec_parser_finds_operations)
{
	const char *svc = services[_i];
	struct ops routes = { 0 }, spec = { 0 };
	char doc[256];

	load_routes(svc, &routes);
	load_spec(svc, &spec, doc, sizeof(doc));
	ck_assert_msg(spec.n >= routes.n,
		      "%s: found %d operations in %s but %d routes", svc,
		      spec.n, doc, routes.n);
	ck_assert_msg(ops_has(&spec, "GET", "/health"),
		      "%s: GET /health not found in %s", svc, doc);
	ck_assert_msg(ops_has(&routes, "GET", "/health"),
		      "%s: GET /health not in the route table", svc);
	ops_cleanup(&routes);
	ops_cleanup(&spec);
}
END_TEST

/* Guards the discovery: a tree without its own services checks nothing. */
START_TEST(test_services_found)
{
	static const char *const original[] = { "products", "inventory",
						"orders" };

	for (size_t i = 0; i < sizeof(original) / sizeof(original[0]); i++) {
		bool found = false;

		for (int k = 0; k < nservices; k++)
			found = found || strcmp(services[k], original[i]) == 0;
		ck_assert_msg(found,
			      "services/%s/main.c not found (run from "
			      "the repository root)",
			      original[i]);
	}
}
END_TEST

/* The parser on a document made to trip it: exactly three operations. */
START_TEST(test_spec_parser_layout)
{
	static const char text[] = "openapi: 3.1.0\n"
				   "info:\n"
				   "  description: |\n"
				   "    get:\n"
				   "paths:\n"
				   "  # /commented:\n"
				   "  /a:\n"
				   "    get:\n"
				   "      description: |\n"
				   "        post:\n"
				   "    parameters:\n"
				   "      - name: x\n"
				   "    patch: # a comment\r\n"
				   "  '/b/{id}':\n"
				   "    delete:\n"
				   "    GET:\n"
				   "    summary: get:\n"
				   "  notapath:\n"
				   "    put:\n"
				   "components:\n"
				   "  /c:\n"
				   "    put:\n";
	struct ops spec = { 0 };

	parse_spec(text, &spec);
	ck_assert_int_eq(spec.n, 3);
	ck_assert(ops_has(&spec, "GET", "/a"));
	ck_assert(ops_has(&spec, "PATCH", "/a"));
	ck_assert(ops_has(&spec, "DELETE", "/b/{id}"));
	ops_cleanup(&spec);
}
END_TEST

Suite *
contract_suite(void)
{
	Suite *s = suite_create("contract");
	TCase *tc = tcase_create("openapi");

	nservices = service_names(services, SERVICES_MAX);
	tcase_add_test(tc, test_services_found);
	tcase_add_test(tc, test_spec_parser_layout);
	tcase_add_loop_test(tc, test_spec_parser_finds_operations, 0,
			    nservices);
	tcase_add_loop_test(tc, test_routes_match_spec, 0, nservices);
	suite_add_tcase(s, tc);
	return s;
}
