/*
 * config.c - typed configuration from the environment and a .env file.
 *
 * The .env file is parsed once into a small list; lookups check the
 * environment first, so `KEY=x make run` always wins over the file. Errors
 * are recorded rather than fatal so svc_app can print the first one in a
 * single line and exit 2. Every key read is also noted - its default and
 * what it accepts, as the reader passed them - so `<svc> --help` lists the
 * keys the code reads, not a copy that could drift from it. Not
 * thread-safe: start-up only.
 */
#include "svc/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/err.h"

struct entry {
	char *key;
	char *value;
	struct entry *next;
};

static struct entry *entries;
static char first_error[512];

/* A key as its first reader saw it: default (NULL: none), what it takes. */
struct known {
	char *key;
	char *def;
	char *accepts;
	struct known *next;
};

/* Keys read, in the order first read; keys described, in any order. */
static struct known *known_head, **known_tail = &known_head;
static struct known *described;

static struct known *
find(struct known *list, const char *key)
{
	while (list != NULL && strcmp(list->key, key) != 0)
		list = list->next;
	return list;
}

static void
free_known(struct known *k)
{
	while (k != NULL) {
		struct known *next = k->next;

		free(k->key);
		free(k->def);
		free(k->accepts);
		free(k);
		k = next;
	}
}

static void
note(const char *key, const char *def, const char *accepts)
{
	struct known *d = find(described, key), *k;

	if (find(known_head, key) != NULL)
		return;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return;
	k->key = strdup(key);
	k->def = def != NULL ? strdup(def) : NULL;
	k->accepts = strdup(d != NULL ? d->accepts : accepts);
	if (k->key == NULL || k->accepts == NULL ||
	    (def != NULL && k->def == NULL)) {
		free_known(k);
		return;
	}
	*known_tail = k;
	known_tail = &k->next;
}

void
svc_config_describe(const char *key, const char *accepts)
{
	struct known *d = find(described, key);

	if (d == NULL) {
		d = calloc(1, sizeof(*d));
		if (d == NULL)
			return;
		d->key = strdup(key);
		d->next = described;
		described = d;
	}
	free(d->accepts);
	d->accepts = strdup(accepts);
	if (d->key == NULL || d->accepts == NULL) {
		/* Unusable: forget every description rather than crash. */
		free_known(described);
		described = NULL;
	}
}

void
svc_config_foreach(svc_config_key_fn fn, void *arg)
{
	for (struct known *k = known_head; k != NULL; k = k->next)
		fn(k->key, k->def, k->accepts, arg);
}

/* 250 -> "250ms", 30000 -> "30s", 300000 -> "5m", 3600000 -> "1h". */
static void
format_ms(long long ms, char *out, size_t size)
{
	if (ms > 0 && ms % 3600000 == 0)
		snprintf(out, size, "%lldh", ms / 3600000);
	else if (ms > 0 && ms % 60000 == 0)
		snprintf(out, size, "%lldm", ms / 60000);
	else if (ms > 0 && ms % 1000 == 0)
		snprintf(out, size, "%llds", ms / 1000);
	else if (ms > 0)
		snprintf(out, size, "%lldms", ms);
	else
		snprintf(out, size, "0");
}

void
svc_config_fail(const char *key, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(first_error, sizeof(first_error), "%s: %s", key, msg);
}

bool
svc_config_ok(void)
{
	return first_error[0] == '\0';
}

const char *
svc_config_error(void)
{
	return first_error;
}

void
svc_config_reset(void)
{
	while (entries != NULL) {
		struct entry *next = entries->next;

		free(entries->key);
		free(entries->value);
		free(entries);
		entries = next;
	}
	free_known(known_head);
	known_head = NULL;
	free_known(described);
	described = NULL;
	known_tail = &known_head;
	first_error[0] = '\0';
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int
add_entry(const char *key, const char *value)
{
	struct entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return SVC_ENOMEM;
	e->key = strdup(key);
	e->value = strdup(value);
	if (e->key == NULL || e->value == NULL) {
		free(e->key);
		free(e->value);
		free(e);
		return SVC_ENOMEM;
	}
	e->next = entries;
	entries = e;
	return SVC_OK;
}

/* One KEY=VALUE line; "export " prefixes and matching quotes are allowed. */
static int
parse_line(char *line, const char *path, int lineno)
{
	char *eq, *key, *value;
	size_t n;

	line = trim(line);
	if (*line == '\0' || *line == '#')
		return SVC_OK;
	if (strncmp(line, "export ", 7) == 0)
		line = trim(line + 7);
	eq = strchr(line, '=');
	if (eq == NULL) {
		svc_config_fail("ENV_FILE", "%s:%d: expected KEY=VALUE", path,
				lineno);
		return SVC_EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	n = strlen(value);
	if (n >= 2 && (value[0] == '"' || value[0] == '\'') &&
	    value[n - 1] == value[0]) {
		value[n - 1] = '\0';
		value++;
	}
	if (*key == '\0') {
		svc_config_fail("ENV_FILE", "%s:%d: empty key", path, lineno);
		return SVC_EINVAL;
	}
	return add_entry(key, value);
}

int
svc_config_load(const char *path)
{
	char line[4096];
	bool explicit_path = path != NULL;
	int lineno = 0, rc = SVC_OK;
	FILE *f;

	if (path == NULL) {
		note("ENV_FILE", ".env",
		     "path (a missing .env is fine, a missing "
		     "ENV_FILE is not)");
		path = getenv("ENV_FILE");
		explicit_path = path != NULL && *path != '\0';
		if (!explicit_path)
			path = ".env";
	}
	f = fopen(path, "r");
	if (f == NULL) {
		if (!explicit_path && errno == ENOENT)
			return SVC_OK;
		svc_config_fail("ENV_FILE", "cannot read %s: %s", path,
				strerror(errno));
		return SVC_EINVAL;
	}
	while (rc == SVC_OK && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		rc = parse_line(line, path, lineno);
	}
	fclose(f);
	return rc;
}

static const char *
lookup(const char *key)
{
	const char *v = getenv(key);

	if (v != NULL)
		return v;
	for (struct entry *e = entries; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->value;
	return NULL;
}

const char *
svc_config_get(const char *key)
{
	note(key, NULL, "text");
	return lookup(key);
}

const char *
svc_config_str(const char *key, const char *def)
{
	const char *v;

	note(key, def, "text");
	v = lookup(key);
	return v != NULL ? v : def;
}

const char *
svc_config_required(const char *key, size_t min_len)
{
	char accepts[64];
	const char *v;

	snprintf(accepts, sizeof(accepts), "required, at least %zu bytes",
		 min_len);
	note(key, NULL, accepts);
	v = lookup(key);

	if (v == NULL || *v == '\0') {
		svc_config_fail(key, "is required");
		return NULL;
	}
	if (strlen(v) < min_len) {
		svc_config_fail(key, "must be at least %zu bytes long, got %zu",
				min_len, strlen(v));
		return NULL;
	}
	return v;
}

static bool
parse_ll(const char *s, long long *out, char **end)
{
	errno = 0;
	*out = strtoll(s, end, 10);
	return errno == 0 && *end != s;
}

long long
svc_config_int(const char *key, long long def, long long min, long long max)
{
	char text[32], accepts[64];
	const char *v;
	long long n;
	char *end;

	snprintf(text, sizeof(text), "%lld", def);
	snprintf(accepts, sizeof(accepts), "integer %lld..%lld", min, max);
	note(key, text, accepts);
	v = lookup(key);

	if (v == NULL)
		return def;
	if (!parse_ll(v, &n, &end) || *end != '\0' || n < min || n > max) {
		svc_config_fail(key,
				"must be an integer in %lld..%lld, got \"%s\"",
				min, max, v);
		return def;
	}
	return n;
}

bool
svc_config_bool(const char *key, bool def)
{
	static const char *const yes[] = { "1", "true", "yes", "on", NULL };
	static const char *const no[] = { "0", "false", "no", "off", NULL };
	const char *v;

	note(key, def ? "true" : "false", "true|false");
	v = lookup(key);

	if (v == NULL)
		return def;
	for (int i = 0; yes[i] != NULL; i++)
		if (strcasecmp(v, yes[i]) == 0)
			return true;
	for (int i = 0; no[i] != NULL; i++)
		if (strcasecmp(v, no[i]) == 0)
			return false;
	svc_config_fail(key, "must be true or false, got \"%s\"", v);
	return def;
}

/* "250ms", "30s", "5m", "1h", "10" (seconds) -> milliseconds, or -1. */
static long long
parse_duration(const char *s)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = { { "ms", 1 },
		      { "s", 1000 },
		      { "", 1000 },
		      { "m", 60000 },
		      { "h", 3600000 } };
	long long n;
	char *end;

	if (!parse_ll(s, &n, &end) || n < 0)
		return -1;
	for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0)
			return n > (1LL << 40) ? -1 : n * units[i].ms;
	return -1;
}

long long
svc_config_duration_ms(const char *key, const char *def, long long min_ms,
		       long long max_ms)
{
	char lo[24], hi[24], accepts[64];
	const char *v;
	long long ms;

	format_ms(min_ms, lo, sizeof(lo));
	format_ms(max_ms, hi, sizeof(hi));
	snprintf(accepts, sizeof(accepts), "duration %s..%s", lo, hi);
	note(key, def, accepts);
	v = lookup(key);

	if (v == NULL)
		v = def;
	ms = parse_duration(v);
	if (ms < min_ms || ms > max_ms) {
		svc_config_fail(key,
				"must be a duration from %lldms to %llds "
				"(like 250ms, 30s, 5m), got \"%s\"",
				min_ms, max_ms / 1000, v);
		return parse_duration(def);
	}
	return ms;
}

int
svc_config_enum(const char *key, const char *def, const char *const *choices)
{
	char list[256] = "";
	const char *v;

	for (int i = 0; choices[i] != NULL; i++) {
		strncat(list, i ? "|" : "", sizeof(list) - strlen(list) - 1);
		strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
	}
	note(key, def, list);
	v = lookup(key);
	if (v == NULL)
		v = def;
	for (int i = 0; choices[i] != NULL; i++)
		if (strcasecmp(v, choices[i]) == 0)
			return i;
	svc_config_fail(key, "must be one of %s, got \"%s\"", list, v);
	for (int i = 0; choices[i] != NULL; i++)
		if (strcmp(def, choices[i]) == 0)
			return i;
	return 0;
}
