/*
 * faults_spec.c - the fault document: reading one from JSON, with every
 * invalid member named for a 422, and writing one back for GET.
 *
 *	{"kind":"http_latency","target":"/api/v1/products/{id}","ms":300,
 *	 "ttl":60}
 *
 * A document has a kind, the kind's own members (table `kinds` below), an
 * optional target and an optional ttl in seconds; any other member is an
 * error, so a typo is refused rather than silently ignored. Targets are
 * checked against what this process has (its route templates, upstreams,
 * queues, relay): a fault that could never fire is refused too. This file
 * knows nothing of the registry (faults.c) or of HTTP routes
 * (faults_admin.c); it never changes anything.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "faults_internal.h"
#include "svc/util.h"

/* Which members a kind takes beyond name, kind, target and ttl. */
enum {
	TAKES_LATENCY = 1 << 0, /* ms, or min_ms and max_ms */
	TAKES_RATE = 1 << 1,	/* rate */
	TAKES_STATUS = 1 << 2,	/* status */
};

/* Whom a kind's target names. */
enum target_type {
	TARGET_ROUTE,	 /* optional: a route template, "" for all */
	TARGET_UPSTREAM, /* required: an upstream's name */
	TARGET_QUEUE,	 /* optional: a consumer's queue, "" for all */
	TARGET_NONE,	 /* none may be given */
};

static const struct {
	const char *name;
	unsigned takes;
	enum target_type target;
	const int *statuses; /* allowed values of status, 0-terminated */
	int default_status;
} kinds[SVC_FAULT_KINDS] = {
	[SVC_FAULT_HTTP_LATENCY] = { "http_latency", TAKES_LATENCY,
				     TARGET_ROUTE, NULL, 0 },
	[SVC_FAULT_HTTP_ERROR] = { "http_error", TAKES_RATE | TAKES_STATUS,
				   TARGET_ROUTE, (const int[]){ 500, 503, 0 },
				   503 },
	[SVC_FAULT_UPSTREAM_LATENCY] = { "upstream_latency", TAKES_LATENCY,
					 TARGET_UPSTREAM, NULL, 0 },
	[SVC_FAULT_UPSTREAM_ERROR] = { "upstream_error",
				       TAKES_RATE | TAKES_STATUS,
				       TARGET_UPSTREAM,
				       (const int[]){ 500, 502, 503, 504, 0 },
				       0 },
	[SVC_FAULT_RELAY_PAUSE] = { "relay_pause", 0, TARGET_NONE, NULL, 0 },
	[SVC_FAULT_CONSUMER_PAUSE] = { "consumer_pause", 0, TARGET_QUEUE, NULL,
				       0 },
	[SVC_FAULT_DUPLICATE_DELIVERY] = { "duplicate_delivery", TAKES_RATE,
					   TARGET_QUEUE, NULL, 0 },
};

const char *
svc__faults_kind_name(enum svc_fault_kind kind)
{
	return (unsigned)kind < SVC_FAULT_KINDS ? kinds[kind].name : NULL;
}

bool
svc__faults_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL)
		return false;
	for (; name[n] != '\0'; n++) {
		char c = name[n];

		if (n == SVC_FAULT_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return n > 0;
}

/* Records an error on "<prefix>.<member>" ("<member>" with no prefix,
 * "<prefix>" with no member). */
static void field_error(struct svc_res *res, const char *prefix,
			const char *member, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
field_error(struct svc_res *res, const char *prefix, const char *member,
	    const char *fmt, ...)
{
	char field[96], msg[256];
	va_list ap;

	snprintf(field, sizeof(field), "%s%s%s", prefix,
		 prefix[0] != '\0' && member[0] != '\0' ? "." : "", member);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	svc_res_field_error(res, field, "%s", msg);
}

/* doc[member] as an integer in [min, max]; *present says it was there. */
static bool
read_int(struct svc_res *res, json_t *doc, const char *prefix,
	 const char *member, long long min, long long max, long long *out,
	 bool *present)
{
	json_t *v = json_object_get(doc, member);

	*present = v != NULL && !json_is_null(v);
	if (!*present)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		field_error(res, prefix, member,
			    "must be an integer from %lld to %lld", min, max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

static bool
known_member(const char *key, unsigned takes)
{
	static const struct {
		const char *key;
		unsigned takes; /* 0: every kind */
	} members[] = {
		{ "name", 0 },
		{ "kind", 0 },
		{ "target", 0 },
		{ "ttl", 0 },
		{ "ms", TAKES_LATENCY },
		{ "min_ms", TAKES_LATENCY },
		{ "max_ms", TAKES_LATENCY },
		{ "rate", TAKES_RATE },
		{ "status", TAKES_STATUS },
	};

	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (strcmp(key, members[i].key) == 0)
			return members[i].takes == 0 ||
			       (takes & members[i].takes) != 0;
	return false;
}

/* The document's name: the one given, or its own "name" member. */
static bool
read_name(struct svc_res *res, json_t *doc, const char *name,
	  const char *prefix, struct svc_fault *out)
{
	json_t *v = json_object_get(doc, "name");
	const char *own = json_string_value(v);

	if (name == NULL && !svc__faults_name_valid(own)) {
		field_error(res, prefix, "name",
			    v == NULL ? "is required"
				      : "must be 1 to 64 of A-Z a-z 0-9 . _ -");
		return false;
	}
	if (name != NULL && v != NULL && !json_is_null(v) &&
	    (own == NULL || strcmp(own, name) != 0)) {
		field_error(res, prefix, "name",
			    "must be the name in the path, \"%s\"", name);
		return false;
	}
	snprintf(out->name, sizeof(out->name), "%s", name ? name : own);
	return true;
}

static bool
read_kind(struct svc_res *res, json_t *doc, const char *prefix,
	  struct svc_fault *out)
{
	const char *kind = json_string_value(json_object_get(doc, "kind"));

	for (int k = 0; kind != NULL && k < SVC_FAULT_KINDS; k++) {
		if (strcmp(kind, kinds[k].name) == 0) {
			out->kind = (enum svc_fault_kind)k;
			return true;
		}
	}
	field_error(res, prefix, "kind",
		    "must be one of http_latency, http_error, "
		    "upstream_latency, upstream_error, relay_pause, "
		    "consumer_pause, duplicate_delivery");
	return false;
}

static bool
is_route(const struct svc_fault_targets *t, const char *target)
{
	for (int i = 0; t->routes != NULL && t->routes[i].method != NULL; i++)
		if (strcmp(t->routes[i].path, target) == 0)
			return true;
	return false;
}

static bool
is_queue(const struct svc_fault_targets *t, const char *target)
{
	for (int i = 0;
	     t->subscriptions != NULL && t->subscriptions[i].queue != NULL; i++)
		if (strcmp(t->subscriptions[i].queue, target) == 0)
			return true;
	return false;
}

static bool
is_upstream(const struct svc_fault_targets *t, const char *target)
{
	for (int i = 0; i < t->n_upstreams; i++)
		if (strcmp(t->upstreams[i], target) == 0)
			return true;
	return false;
}

/* What the kind needs the process to have; false when it lacks it. */
static bool
check_kind_fits(struct svc_res *res, const char *prefix,
		const struct svc_fault_targets *t, enum svc_fault_kind kind)
{
	const char *lacks = NULL;

	if (kinds[kind].target == TARGET_UPSTREAM && t->n_upstreams == 0)
		lacks = "this service calls no upstream";
	else if (kinds[kind].target == TARGET_QUEUE &&
		 (t->subscriptions == NULL ||
		  t->subscriptions[0].queue == NULL))
		lacks = "this service runs no consumer";
	else if (kind == SVC_FAULT_RELAY_PAUSE && !t->relay)
		lacks = "this service runs no outbox relay";
	if (lacks != NULL)
		field_error(res, prefix, "kind", "%s", lacks);
	return lacks == NULL;
}

static bool
read_target(struct svc_res *res, json_t *doc, const char *prefix,
	    const struct svc_fault_targets *t, struct svc_fault *out)
{
	json_t *v = json_object_get(doc, "target");
	enum target_type type = kinds[out->kind].target;
	const char *s = json_string_value(v);
	bool ok;

	if (v == NULL || json_is_null(v)) {
		if (type == TARGET_UPSTREAM)
			field_error(res, prefix, "target",
				    "is required: the upstream's name");
		return type != TARGET_UPSTREAM;
	}
	if (type == TARGET_NONE) {
		field_error(res, prefix, "target", "a %s takes no target",
			    kinds[out->kind].name);
		return false;
	}
	if (s == NULL || strlen(s) > SVC_FAULT_TARGET_MAX) {
		field_error(res, prefix, "target",
			    "must be a string of at most %d bytes",
			    SVC_FAULT_TARGET_MAX);
		return false;
	}
	ok = type == TARGET_ROUTE      ? is_route(t, s)
	     : type == TARGET_UPSTREAM ? is_upstream(t, s)
				       : is_queue(t, s);
	if (!ok) {
		field_error(res, prefix, "target",
			    "is not %s of this service (GET /admin/faults "
			    "lists them under targets)",
			    type == TARGET_ROUTE      ? "a route template"
			    : type == TARGET_UPSTREAM ? "an upstream"
						      : "a consumer's queue");
		return false;
	}
	snprintf(out->target, sizeof(out->target), "%s", s);
	return true;
}

static bool
read_latency(struct svc_res *res, json_t *doc, const char *prefix,
	     struct svc_fault *out)
{
	bool has_ms, has_min, has_max;
	long long ms = 0;

	if (!read_int(res, doc, prefix, "ms", 0, SVC_FAULT_LATENCY_MAX, &ms,
		      &has_ms) ||
	    !read_int(res, doc, prefix, "min_ms", 0, SVC_FAULT_LATENCY_MAX,
		      &out->min_ms, &has_min) ||
	    !read_int(res, doc, prefix, "max_ms", 0, SVC_FAULT_LATENCY_MAX,
		      &out->max_ms, &has_max))
		return false;
	if (has_ms && (has_min || has_max)) {
		field_error(res, prefix, "ms",
			    "give either ms or min_ms and max_ms, not both");
		return false;
	}
	if (has_ms) {
		out->min_ms = out->max_ms = ms;
		out->fixed_ms = true;
		return true;
	}
	if (!has_min || !has_max) {
		field_error(res, prefix, has_min ? "max_ms" : "ms",
			    has_min || has_max ? "is required with %s"
					       : "is required (or min_ms and "
						 "max_ms)%s",
			    has_min   ? "min_ms"
			    : has_max ? "max_ms"
				      : "");
		return false;
	}
	if (out->max_ms < out->min_ms) {
		field_error(res, prefix, "max_ms",
			    "must not be less than min_ms");
		return false;
	}
	return true;
}

static bool
read_rate(struct svc_res *res, json_t *doc, const char *prefix,
	  struct svc_fault *out)
{
	json_t *v = json_object_get(doc, "rate");

	out->rate = 1.0;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_number(v) || !(json_number_value(v) >= 0.0) ||
	    json_number_value(v) > 1.0) {
		field_error(res, prefix, "rate",
			    "must be a number from 0 to 1 (the fraction "
			    "affected)");
		return false;
	}
	out->rate = json_number_value(v);
	return true;
}

static bool
read_status(struct svc_res *res, json_t *doc, const char *prefix,
	    struct svc_fault *out)
{
	const int *allowed = kinds[out->kind].statuses;
	json_t *v = json_object_get(doc, "status");
	char list[64] = "";

	out->status = kinds[out->kind].default_status;
	if (v == NULL || json_is_null(v))
		return true;
	for (int i = 0; allowed[i] != 0; i++) {
		if (json_is_integer(v) && json_integer_value(v) == allowed[i]) {
			out->status = allowed[i];
			return true;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%d",
			 i == 0		  ? ""
			 : allowed[i + 1] ? ", "
					  : " or ",
			 allowed[i]);
	}
	field_error(res, prefix, "status", "must be %s", list);
	return false;
}

static bool
read_ttl(struct svc_res *res, json_t *doc, const char *prefix,
	 struct svc_fault *out)
{
	json_t *v = json_object_get(doc, "ttl");
	double s;

	out->ttl_ms = SVC_FAULT_TTL_DEFAULT;
	if (v == NULL || json_is_null(v))
		return true;
	s = json_number_value(v);
	if (!json_is_number(v) || !(s * 1000.0 >= SVC_FAULT_TTL_MIN) ||
	    s * 1000.0 > SVC_FAULT_TTL_MAX) {
		field_error(res, prefix, "ttl",
			    "must be a number of seconds from 0.1 to 3600");
		return false;
	}
	out->ttl_ms = (long long)(s * 1000.0 + 0.5);
	return true;
}

bool
svc__faults_parse(json_t *doc, const char *name, const char *prefix,
		  const struct svc_fault_targets *targets,
		  struct svc_fault *out, struct svc_res *res)
{
	int errors = svc_res_field_errors(res);
	const char *key;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(doc)) {
		field_error(res, prefix, prefix[0] != '\0' ? "" : "body",
			    "must be a JSON object");
		return false;
	}
	read_name(res, doc, name, prefix, out);
	if (!read_kind(res, doc, prefix, out) ||
	    svc_res_field_errors(res) > errors)
		return false;
	json_object_foreach(doc, key, v)
	{
		if (!known_member(key, kinds[out->kind].takes))
			field_error(res, prefix, key,
				    "is not a member of %s faults",
				    kinds[out->kind].name);
	}
	if (!check_kind_fits(res, prefix, targets, out->kind))
		return false;
	read_target(res, doc, prefix, targets, out);
	read_ttl(res, doc, prefix, out);
	if (kinds[out->kind].takes & TAKES_LATENCY)
		read_latency(res, doc, prefix, out);
	if (kinds[out->kind].takes & TAKES_RATE)
		read_rate(res, doc, prefix, out);
	if (kinds[out->kind].takes & TAKES_STATUS)
		read_status(res, doc, prefix, out);
	return svc_res_field_errors(res) == errors;
}

/* RFC 3339 UTC of a wall-clock time in ms; out holds 32 bytes. */
static void
rfc3339_ms(long long ms, char out[32])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* The wall-clock ms when the fault expires, from its registry clock. */
static long long
expires_wall_ms(const struct svc_fault *f, long long now_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	       (f->expires_ms - now_ms);
}

json_t *
svc__faults_json(const struct svc_fault *f, long long now_ms)
{
	json_t *o = json_pack("{s:s, s:s}", "name", f->name, "kind",
			      kinds[f->kind].name);
	long long left = f->expires_ms - now_ms;
	char when[32];

	if (f->target[0] != '\0')
		json_object_set_new(o, "target", json_string(f->target));
	if ((kinds[f->kind].takes & TAKES_LATENCY) && f->fixed_ms) {
		json_object_set_new(o, "ms", json_integer(f->min_ms));
	} else if (kinds[f->kind].takes & TAKES_LATENCY) {
		json_object_set_new(o, "min_ms", json_integer(f->min_ms));
		json_object_set_new(o, "max_ms", json_integer(f->max_ms));
	}
	if (kinds[f->kind].takes & TAKES_RATE)
		json_object_set_new(o, "rate", json_real(f->rate));
	if ((kinds[f->kind].takes & TAKES_STATUS) && f->status != 0)
		json_object_set_new(o, "status", json_integer(f->status));
	json_object_set_new(o, "ttl",
			    f->ttl_ms % 1000 == 0
				    ? json_integer(f->ttl_ms / 1000)
				    : json_real((double)f->ttl_ms / 1000.0));
	rfc3339_ms(expires_wall_ms(f, now_ms), when);
	json_object_set_new(o, "expires_at", json_string(when));
	json_object_set_new(o, "expires_in",
			    json_real((double)(left > 0 ? left : 0) / 1000.0));
	json_object_set_new(o, "set_by", json_string(f->set_by));
	rfc3339_ms(f->set_at_ms, when);
	json_object_set_new(o, "set_at", json_string(when));
	json_object_set_new(o, "injected",
			    json_integer((json_int_t)f->injected));
	return o;
}
