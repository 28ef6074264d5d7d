/*
 * test_catalogue.c - docs/events.md against the events the services
 * really publish.
 *
 * The catalogue gives each event type a section headed `## <type>` whose
 * first ```json block is a complete message body; a type the design names
 * but nothing publishes says `**Status: not published.**` and has no
 * example. This suite checks every example is a well-formed event of its
 * section's type, then that no event type escapes the catalogue: those
 * found in each service's outbox table (so it must run after the suites
 * that make events: last in main.c), those written as '<aggregate>.<verb>'
 * SQL literals in the C files of services/<service>/ (which also covers
 * types no test happens to produce), and those DESIGN.md's catalogue
 * names. The data of
 * real outbox rows must have the members, and member types, of the
 * example. It needs the repository root as working directory and
 * <SERVICE>_DATABASE_URL; it is not a test of the relay (test_events.c).
 */
#include <glob.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integ.h"
#include "svc/util.h"

#define CATALOGUE     "docs/events.md"
#define NOT_PUBLISHED "**Status: not published.**"
#define TYPE_MAX      64
#define MAX_TYPES     64
#define ROWS_PER_TYPE 50 /* real rows compared with each example */
#define REPORT_MAX    3000

/*
 * Every service of the tree (services/<name>/main.c): the original three
 * and any made by `make new-service`. Filled when the suite is made.
 */
static char services[SERVICES_MAX][SERVICE_NAME_MAX];
static int nservices;

/* DESIGN.md, section Events, "Catalogue:". */
static const char *const design_types[] = {
	"product.created",	   "product.updated",	  "product.deleted",
	"inventory.stock_changed", "inventory.reserved",  "inventory.confirmed",
	"inventory.released",	   "inventory.low_stock", "order.created",
	"order.confirmed",	   "order.rejected",	  "order.cancelled",
};

/* The data members DESIGN.md names for a type. */
static const struct {
	const char *type, *member;
} design_members[] = {
	{ "inventory.stock_changed", "product_id" },
	{ "inventory.stock_changed", "on_hand" },
	{ "inventory.stock_changed", "reserved" },
	{ "inventory.stock_changed", "available" },
	{ "inventory.released", "reason" },
};

/*
 * Types other suites write straight into an outbox to test the relay
 * (test_events.c); no service publishes them.
 */
static const char *const test_only_prefixes[] = { "eventstest." };

struct entry {
	char type[TYPE_MAX];
	int line;      /* of its heading */
	bool planned;  /* "not published" */
	char *example; /* the first json block, or NULL */
	int example_line;
};

struct catalogue {
	struct entry items[MAX_TYPES];
	int n;
};

/* Problems, collected so that one run lists them all. */
struct report {
	char text[REPORT_MAX];
	size_t len;
	int n;
};

static void note(struct report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
note(struct report *r, const char *fmt, ...)
{
	va_list ap;
	int len;

	r->n++;
	if (r->len + 2 >= sizeof(r->text))
		return;
	r->text[r->len++] = '\n';
	va_start(ap, fmt);
	len = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
	va_end(ap);
	if (len > 0)
		r->len += (size_t)len < sizeof(r->text) - r->len
				  ? (size_t)len
				  : sizeof(r->text) - r->len - 1;
}

static void
report_check(const struct report *r, const char *what)
{
	ck_assert_msg(r->n == 0, "%s: %d problem(s):%s", what, r->n, r->text);
}

/*
 * <aggregate>.<verb>: lower-case letters, then also digits and '_', one
 * dot, both sides.
 */
static bool
is_event_type(const char *s, size_t len)
{
	const char *dot = memchr(s, '.', len);

	if (dot == NULL || dot == s || dot == s + len - 1 || len >= TYPE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s + i != dot && !(s[i] >= 'a' && s[i] <= 'z') &&
		    !((s[i] == '_' || (s[i] >= '0' && s[i] <= '9')) && i > 0 &&
		      s + i - 1 != dot))
			return false;
	return true;
}

/* The whole of a file (malloc'd, NUL-terminated); fails the test if not. */
static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data = NULL;
	size_t len = 0, n;

	ck_assert_msg(f != NULL,
		      "cannot open %s (run from the repository root)", path);
	do {
		char *p = realloc(data, len + 4096 + 1);

		ck_assert_ptr_nonnull(p);
		data = p;
		n = fread(data + len, 1, 4096, f);
		len += n;
		data[len] = '\0';
	} while (n == 4096);
	ck_assert_msg(!ferror(f), "cannot read %s", path);
	fclose(f);
	return data;
}

static struct entry *
find(struct catalogue *c, const char *type)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->items[i].type, type) == 0)
			return &c->items[i];
	return NULL;
}

/* Does the line [s, s+len) start with prefix? */
static bool
starts(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

/*
 * Reads the catalogue: its event sections and their first json blocks.
 * Headings inside fenced blocks do not count. Fails the test on a type
 * documented twice.
 */
static void
parse_catalogue(struct catalogue *c)
{
	char *text = read_text(CATALOGUE);
	const char *p = text, *block = NULL;
	struct entry *cur = NULL;
	bool fenced = false, capture = false;
	int line = 0;

	memset(c, 0, sizeof(*c));
	while (*p != '\0') {
		size_t len = strcspn(p, "\n"), t = len;

		line++;
		while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\r'))
			t--;
		if (starts(p, t, "```")) {
			if (fenced && capture) {
				cur->example =
					strndup(block, (size_t)(p - block));
				ck_assert_ptr_nonnull(cur->example);
				capture = false;
			} else if (!fenced && cur != NULL &&
				   cur->example == NULL && t == 7 &&
				   starts(p, t, "```json")) {
				capture = true;
				block = p + len + (p[len] == '\n');
				cur->example_line = line + 1;
			}
			fenced = !fenced;
		} else if (!fenced &&
			   (starts(p, t, "# ") || starts(p, t, "## "))) {
			cur = NULL;
			if (starts(p, t, "## ") &&
			    is_event_type(p + 3, t - 3)) {
				char type[TYPE_MAX];

				memcpy(type, p + 3, t - 3);
				type[t - 3] = '\0';
				ck_assert_msg(find(c, type) == NULL,
					      "%s:%d: %s documented twice",
					      CATALOGUE, line, type);
				ck_assert_int_lt(c->n, MAX_TYPES);
				cur = &c->items[c->n++];
				strcpy(cur->type, type);
				cur->line = line;
			}
		} else if (!fenced && cur != NULL &&
			   starts(p, t, NOT_PUBLISHED)) {
			cur->planned = true;
		}
		p += len + (p[len] == '\n');
	}
	free(text);
}

static void
catalogue_cleanup(struct catalogue *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->items[i].example);
	c->n = 0;
}

/* 2026-11-25T22:14:25.455937Z, as the relay writes it. */
static bool
relay_timestamp(const char *s)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (s == NULL || strlen(s) != sizeof(form) - 1)
		return false;
	for (size_t i = 0; form[i] != '\0'; i++)
		if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9')
				   : s[i] != form[i])
			return false;
	return true;
}

static bool
is_service(const char *s)
{
	for (int i = 0; i < nservices; i++)
		if (s != NULL && strcmp(s, services[i]) == 0)
			return true;
	return false;
}

/* The example of e as JSON (new), or NULL with a note. */
static json_t *
example_of(struct report *r, const struct entry *e)
{
	json_error_t err;
	json_t *j;

	if (e->example == NULL) {
		note(r, "%s:%d: %s has no ```json example", CATALOGUE, e->line,
		     e->type);
		return NULL;
	}
	j = json_loads(e->example, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		note(r, "%s:%d: the example of %s is not JSON: %s (line %d)",
		     CATALOGUE, e->example_line, e->type, err.text,
		     e->example_line + err.line - 1);
	return j;
}

/* The documented event a found (service, type) must match; notes if not. */
static void
expect_documented(struct report *r, struct catalogue *c, const char *svc,
		  const char *type, const char *where)
{
	struct entry *e = find(c, type);
	json_t *ex;
	const char *source;

	if (e == NULL) {
		note(r, "%s publishes %s (%s), which %s does not document", svc,
		     type, where, CATALOGUE);
		return;
	}
	if (e->planned) {
		note(r, "%s publishes %s (%s), which %s says is not published",
		     svc, type, where, CATALOGUE);
		return;
	}
	ex = example_of(r, e);
	source = json_string_value(json_object_get(ex, "source"));
	if (ex != NULL && (source == NULL || strcmp(source, svc) != 0))
		note(r, "%s is published by %s, but its example's source is %s",
		     type, svc, source ? source : "missing");
	json_decref(ex);
}

START_TEST(test_examples_are_events)
{
	struct catalogue c;
	struct report r = { 0 };

	parse_catalogue(&c);
	ck_assert_msg(c.n > 0, "%s documents no event type", CATALOGUE);
	for (int i = 0; i < c.n; i++) {
		const struct entry *e = &c.items[i];
		const char *id, *type, *ts;
		json_t *ev;

		if (e->planned) {
			if (e->example != NULL)
				note(&r,
				     "%s:%d: %s is not published but has "
				     "an example",
				     CATALOGUE, e->example_line, e->type);
			continue;
		}
		ev = example_of(&r, e);
		if (ev == NULL)
			continue;
		id = json_string_value(json_object_get(ev, "id"));
		type = json_string_value(json_object_get(ev, "event_type"));
		ts = json_string_value(json_object_get(ev, "timestamp"));
		if (!json_is_object(ev) || json_object_size(ev) != 5)
			note(&r,
			     "%s: the example is not an object of exactly "
			     "id, event_type, source, timestamp, data",
			     e->type);
		if (id == NULL || !svc_uuid_valid(id))
			note(&r, "%s: the example's id is not a uuid", e->type);
		if (type == NULL || strcmp(type, e->type) != 0)
			note(&r, "%s: the example's event_type is %s", e->type,
			     type ? type : "missing");
		if (!is_service(
			    json_string_value(json_object_get(ev, "source"))))
			note(&r, "%s: the example's source is not a service",
			     e->type);
		if (!relay_timestamp(ts))
			note(&r,
			     "%s: the example's timestamp %s is not "
			     "YYYY-MM-DDTHH:MM:SS.ffffffZ",
			     e->type, ts ? ts : "(missing)");
		if (!json_is_object(json_object_get(ev, "data")))
			note(&r, "%s: the example's data is not an object",
			     e->type);
		json_decref(ev);
	}
	catalogue_cleanup(&c);
	report_check(&r, CATALOGUE);
}
END_TEST

START_TEST(test_design_types_documented)
{
	struct catalogue c;
	struct report r = { 0 };
	size_t n = sizeof(design_members) / sizeof(design_members[0]);

	parse_catalogue(&c);
	for (size_t i = 0; i < sizeof(design_types) / sizeof(design_types[0]);
	     i++)
		if (find(&c, design_types[i]) == NULL)
			note(&r, "DESIGN.md names %s; %s has no section for it",
			     design_types[i], CATALOGUE);
	for (size_t i = 0; i < n; i++) {
		struct entry *e = find(&c, design_members[i].type);
		json_t *ex =
			e != NULL && !e->planned ? example_of(&r, e) : NULL;
		json_t *data = json_object_get(ex, "data");

		if (ex != NULL &&
		    json_object_get(data, design_members[i].member) == NULL)
			note(&r,
			     "DESIGN.md gives %s a member %s; the example "
			     "has none",
			     design_members[i].type, design_members[i].member);
		json_decref(ex);
	}
	catalogue_cleanup(&c);
	report_check(&r, "DESIGN.md's catalogue");
}
END_TEST

/*
 * Every single-quoted '<aggregate>.<verb>' literal in the file: the event
 * types its SQL writes to the outbox (SELECT '<type>', ...).
 */
static int
scan_source(struct report *r, struct catalogue *c, const char *svc,
	    const char *path)
{
	char *text = read_text(path);
	int found = 0;

	for (const char *p = strchr(text, '\''); p != NULL;
	     p = strchr(p + 1, '\'')) {
		const char *end = strchr(p + 1, '\'');
		char type[TYPE_MAX];

		if (end == NULL)
			break;
		if (!is_event_type(p + 1, (size_t)(end - p - 1)))
			continue;
		memcpy(type, p + 1, (size_t)(end - p - 1));
		type[end - p - 1] = '\0';
		expect_documented(r, c, svc, type, path);
		found++;
		p = end;
	}
	free(text);
	return found;
}

START_TEST(test_code_types_documented)
{
	struct catalogue c;
	struct report r = { 0 };

	parse_catalogue(&c);
	ck_assert_msg(nservices > 0,
		      "no services/*/main.c (run from the repository root)");
	for (int i = 0; i < nservices; i++) {
		char pattern[64];
		glob_t g;
		int found = 0;

		snprintf(pattern, sizeof(pattern), "services/%.31s/*.c",
			 services[i]);
		ck_assert_msg(glob(pattern, 0, NULL, &g) == 0,
			      "no %s (run from the repository root)", pattern);
		for (size_t k = 0; k < g.gl_pathc; k++)
			found +=
				scan_source(&r, &c, services[i], g.gl_pathv[k]);
		globfree(&g);
		/* A scan that finds nothing has stopped working. */
		if (found == 0)
			note(&r, "no '<aggregate>.<verb>' literal in %s",
			     pattern);
	}
	catalogue_cleanup(&c);
	report_check(&r, "event types in services/*/*.c");
}
END_TEST

static bool
test_only(const char *type)
{
	for (size_t i = 0;
	     i < sizeof(test_only_prefixes) / sizeof(test_only_prefixes[0]);
	     i++)
		if (strncmp(type, test_only_prefixes[i],
			    strlen(test_only_prefixes[i])) == 0)
			return true;
	return false;
}

/* "object", "array", ... for messages. */
static const char *
kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

/*
 * Does the real value have the shape of the documented one: the same
 * members, of the same types, all the way down? A null on either side
 * matches anything (a nullable member); an array's elements are compared
 * with the example's first. Notes the first difference.
 */
static bool
same_shape(struct report *r, const char *type, const char *path,
	   const json_t *doc, const json_t *real)
{
	const char *key;
	json_t *v;
	char sub[256];

	if (json_is_null(doc) || json_is_null(real))
		return true;
	if (strcmp(kind(doc), kind(real)) != 0) {
		note(r, "%s: %s is %s in the example but %s in the outbox",
		     type, path, kind(doc), kind(real));
		return false;
	}
	if (json_is_object(real)) {
		json_object_foreach((json_t *)real, key, v)
		{
			snprintf(sub, sizeof(sub), "%s.%s", path, key);
			if (json_object_get(doc, key) == NULL) {
				note(r,
				     "%s: the outbox has %s, the example "
				     "does not",
				     type, sub);
				return false;
			}
			if (!same_shape(r, type, sub, json_object_get(doc, key),
					v))
				return false;
		}
		json_object_foreach((json_t *)doc, key, v)
		{
			if (json_object_get(real, key) == NULL) {
				note(r,
				     "%s: the example has %s.%s, the "
				     "outbox does not",
				     type, path, key);
				return false;
			}
		}
	}
	if (json_is_array(real) && json_array_size(doc) > 0) {
		size_t i;

		snprintf(sub, sizeof(sub), "%s[]", path);
		json_array_foreach((json_t *)real, i, v)
		{
			if (!same_shape(r, type, sub, json_array_get(doc, 0),
					v))
				return false;
		}
	}
	return true;
}

/* The last ROWS_PER_TYPE rows of each type in the outbox of svc. */
static const char outbox_sql[] =
	"SELECT event_type, data::text FROM (SELECT event_type, data,"
	" row_number() OVER (PARTITION BY event_type ORDER BY seq DESC) AS n"
	" FROM outbox) o WHERE n <= $1 ORDER BY event_type";

static void
check_outbox(struct report *r, struct catalogue *c, const char *svc)
{
	char var[64], limit[16], last[TYPE_MAX] = "";
	const char *param = limit;
	PGconn *db;
	PGresult *res;
	int types = 0;
	bool bad = false;

	snprintf(var, sizeof(var), "%.31s_DATABASE_URL", svc);
	for (char *p = var; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	snprintf(limit, sizeof(limit), "%d", ROWS_PER_TYPE);
	db = PQconnectdb(env_or_fail(var));
	ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s: %s", var,
		      PQerrorMessage(db));
	res = PQexecParams(db, outbox_sql, 1, NULL, &param, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", svc,
		      PQerrorMessage(db));
	for (int i = 0; i < PQntuples(res); i++) {
		const char *type = PQgetvalue(res, i, 0);
		struct entry *e;
		json_t *ex, *data;

		if (test_only(type))
			continue;
		if (strcmp(type, last) != 0) {
			snprintf(last, sizeof(last), "%s", type);
			types++;
			bad = false;
			expect_documented(r, c, svc, type, "its outbox");
		}
		e = find(c, type);
		if (bad || e == NULL || e->planned || e->example == NULL)
			continue;
		ex = json_loads(e->example, 0, NULL);
		data = json_loads(PQgetvalue(res, i, 1), 0, NULL);
		ck_assert_ptr_nonnull(data);
		bad = !same_shape(r, type, "data", json_object_get(ex, "data"),
				  data);
		json_decref(ex);
		json_decref(data);
	}
	/* Empty means no suite ran before this one: nothing was checked. */
	if (types == 0)
		note(r,
		     "the %s outbox holds no events: run this suite after "
		     "the others",
		     svc);
	PQclear(res);
	PQfinish(db);
}

START_TEST(test_published_types_documented)
{
	struct catalogue c;
	struct report r = { 0 };

	parse_catalogue(&c);
	ck_assert_msg(nservices > 0,
		      "no services/*/main.c (run from the repository root)");
	for (int i = 0; i < nservices; i++)
		check_outbox(&r, &c, services[i]);
	catalogue_cleanup(&c);
	report_check(&r, "events in the outboxes");
}
END_TEST

Suite *
catalogue_suite(void)
{
	Suite *s = suite_create("catalogue");
	TCase *doc = tcase_create("document");
	TCase *code = tcase_create("published");

	nservices = service_names(services, SERVICES_MAX);
	tcase_add_test(doc, test_examples_are_events);
	tcase_add_test(doc, test_design_types_documented);
	tcase_add_test(code, test_code_types_documented);
	tcase_add_test(code, test_published_types_documented);
	suite_add_tcase(s, doc);
	suite_add_tcase(s, code);
	return s;
}
