/*
 * faults.c - the fault registry: the faults active in this process, their
 * expiry, their log lines and metrics, and the hooks that the modules a
 * fault can break (http.c, upstream.c, outbox.c, consumer.c) call.
 *
 * What a reader may rely on:
 *  1. `kinds` has bit k set while the table holds a fault of kind k; it is
 *     updated under `lock` after every change. A hook that reads its bits
 *     as 0 (one relaxed load) does nothing else - no lock, no clock - so a
 *     process with no fault active pays nothing more. A hook that races a
 *     change sees the fault a moment late or early, never half of one.
 *  2. The table changes only under `lock`; every change is logged (set at
 *     warn, cleared and expired at info, with the token's sub where there
 *     is one) and broadcast on `changed`, so a latency sleep ends as soon
 *     as the faults that caused it are gone.
 *  3. All or nothing: svc__faults_set() checks the count before touching
 *     the table, and callers validate every document first
 *     (faults_spec.c), so a refused request changes nothing.
 *  4. A fault past its expiry is never applied: every use of the table
 *     heals what is due first, and a background tick heals it when nobody
 *     looks (so its log line comes on time).
 *
 * Parsing documents is faults_spec.c's job, the /admin/faults routes are
 * faults_admin.c's.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "faults_internal.h"
#include "svc/config.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/ticker.h"
#include "svc/util.h"

#define BIT(kind)  (1u << (kind))
#define HTTP_KINDS (BIT(SVC_FAULT_HTTP_LATENCY) | BIT(SVC_FAULT_HTTP_ERROR))
#define UPSTREAM_KINDS                                                         \
	(BIT(SVC_FAULT_UPSTREAM_LATENCY) | BIT(SVC_FAULT_UPSTREAM_ERROR))
#define UPSTREAM_NAME_MAX 32
/* Label sets of the two metrics: kinds times their targets, bounded by
 * what the process has (routes, upstreams, queues). */
#define SERIES_CAP 256

static struct {
	/* Bit per kind with a fault in the table (1.): the hooks' one load. */
	atomic_uint kinds;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* on the monotonic clock; under lock */
	atomic_bool enabled;	/* FAULTS=on, between start and stop */
	/* read-only between svc_faults_start() and svc_faults_stop() */
	struct svc_faults_config cfg;
	struct svc_ticker *ticker;
	struct svc_metric *active, *injected;
	/* under lock */
	struct svc_fault table[SVC_FAULTS_MAX];
	int n;
	uint64_t serial;
	char upstreams[SVC_FAULTS_MAX_UPSTREAMS][UPSTREAM_NAME_MAX];
	int n_upstreams;
	/* set by tests before use; NULL: the real clock, sleep and dice */
	const struct svc_faults_env *env;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;

static void
init_cond(void)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&reg.changed, &attr);
	pthread_condattr_destroy(&attr);
}

static long long
now_ms(void)
{
	const struct svc_faults_env *env = reg.env;

	return env != NULL && env->now_ms != NULL ? env->now_ms(env->arg)
						  : svc_now_ms();
}

/* Uniform in [0, 1): a test's dice, or svc_random_unit(). */
static double
draw(void)
{
	const struct svc_faults_env *env = reg.env;

	if (env != NULL && env->random != NULL)
		return env->random(env->arg);
	return svc_random_unit();
}

static const char *
target_label(const struct svc_fault *f)
{
	return f->target[0] != '\0' ? f->target : "all";
}

/* Bits of the kinds in the table (1.); under lock. */
static void
update_kinds(void)
{
	unsigned bits = 0;

	for (int i = 0; i < reg.n; i++)
		bits |= BIT(reg.table[i].kind);
	atomic_store_explicit(&reg.kinds, bits, memory_order_relaxed);
	pthread_cond_broadcast(&reg.changed);
}

/* The fault as a compact JSON text for a log line (malloc'd or NULL). */
static char *
fault_text(const struct svc_fault *f)
{
	json_t *j = svc__faults_json(f, now_ms());
	char *text;

	json_object_del(j, "expires_in");
	json_object_del(j, "injected");
	json_object_del(j, "set_by");
	json_object_del(j, "set_at");
	text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(j);
	return text;
}

/* Adds f (copied) to the table; under lock, with room checked. */
static void
add_locked(const struct svc_fault *f, const char *by)
{
	struct svc_fault *t = &reg.table[reg.n++];
	const char *labels[2];
	struct timespec ts;
	char *text;

	*t = *f;
	t->serial = ++reg.serial;
	t->expires_ms = now_ms() + t->ttl_ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	t->set_at_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	snprintf(t->set_by, sizeof(t->set_by), "%s", by);
	t->injected = 0;
	labels[0] = svc__faults_kind_name(t->kind);
	labels[1] = target_label(t);
	t->active_series = svc_metrics_series(reg.active, labels);
	t->injected_series = svc_metrics_series(reg.injected, labels);
	svc_metrics_gauge_add(t->active_series, 1);
	text = fault_text(t);
	svc_log(SVC_LOG_WARN, "fault set", SVC_LOG_STR("fault", t->name),
		SVC_LOG_STR("kind", labels[0]),
		SVC_LOG_STR("target", labels[1]),
		SVC_LOG_RAW("spec", text != NULL ? text : "null"),
		SVC_LOG_STR("by", by), SVC_LOG_END);
	free(text);
}

enum why {
	QUIETLY, /* replaced by a fault of the same name, or a test's reset */
	CLEARED, /* by a DELETE, a PUT of the whole set, or the shutdown */
	EXPIRED, /* its ttl ended */
};

/* Removes table[i], logging why (2.); under lock. */
static void
remove_locked(int i, enum why why, const char *by)
{
	struct svc_fault *f = &reg.table[i];

	svc_metrics_gauge_add(f->active_series, -1);
	if (why != QUIETLY)
		svc_log(SVC_LOG_INFO,
			why == CLEARED ? "fault cleared" : "fault expired",
			SVC_LOG_STR("fault", f->name),
			SVC_LOG_STR("kind", svc__faults_kind_name(f->kind)),
			SVC_LOG_STR("target", target_label(f)),
			SVC_LOG_INT("injected", (long long)f->injected),
			SVC_LOG_STR("by", why == CLEARED ? by : "ttl"),
			SVC_LOG_END);
	memmove(f, f + 1, (size_t)(reg.n - i - 1) * sizeof(*f));
	reg.n--;
}

/* Heals what is due (4.); under lock. Returns how many. */
static int
expire_locked(void)
{
	long long now = now_ms();
	int healed = 0;

	for (int i = 0; i < reg.n;) {
		if (reg.table[i].expires_ms > now) {
			i++;
			continue;
		}
		remove_locked(i, EXPIRED, NULL);
		healed++;
	}
	if (healed > 0)
		update_kinds();
	return healed;
}

static int
find_locked(const char *name)
{
	for (int i = 0; i < reg.n; i++)
		if (strcmp(reg.table[i].name, name) == 0)
			return i;
	return -1;
}

/* Counts one request, call or event a fault touched; under lock. */
static void
hit(struct svc_fault *f)
{
	f->injected++;
	svc_metrics_inc(f->injected_series);
}

/* --- configuration and life cycle --- */

void
svc_faults_config_read(struct svc_faults_config *cfg)
{
	static const char *const values[] = { "off", "on", NULL };

	cfg->enabled = svc_config_enum("FAULTS", "off", values) == 1;
}

static void
tick(void *arg)
{
	(void)arg;
	svc_faults_expire();
}

static void
register_metrics(void)
{
	const char *labels[] = { "kind", "target", NULL };

	reg.active = svc_metrics_gauge(
		NULL, "faults_active",
		"Faults injected on purpose that are active now, by kind and "
		"target (\"all\": every route, queue or the relay); FAULTS=on "
		"only.",
		labels, SERIES_CAP);
	reg.injected = svc_metrics_counter(
		NULL, "faults_injected_total",
		"Requests, outbound calls, events and relay rounds a fault "
		"touched, by kind and target.",
		labels, SERIES_CAP);
}

int
svc_faults_start(const struct svc_faults_config *cfg)
{
	pthread_once(&cond_once, init_cond);
	pthread_mutex_lock(&reg.lock);
	reg.cfg = *cfg;
	reg.enabled = cfg->enabled;
	pthread_mutex_unlock(&reg.lock);
	if (!cfg->enabled)
		return SVC_OK;
	register_metrics();
	svc_log(SVC_LOG_WARN,
		"faults enabled (FAULTS=on): /admin/faults can break this "
		"service on purpose; never in production",
		SVC_LOG_END);
	if (cfg->tick_ms > 0) {
		reg.ticker =
			svc_ticker_start("faults", cfg->tick_ms, tick, NULL);
		if (reg.ticker == NULL)
			return SVC_ENOMEM;
	}
	return SVC_OK;
}

void
svc_faults_stop(void)
{
	svc_ticker_stop(reg.ticker);
	reg.ticker = NULL;
	svc__faults_clear(NULL, "shutdown");
	pthread_mutex_lock(&reg.lock);
	reg.enabled = false;
	pthread_mutex_unlock(&reg.lock);
}

bool
svc_faults_enabled(void)
{
	return reg.enabled;
}

int
svc_faults_expire(void)
{
	int healed;

	pthread_mutex_lock(&reg.lock);
	healed = expire_locked();
	pthread_mutex_unlock(&reg.lock);
	return healed;
}

void
svc_faults_set_env(const struct svc_faults_env *env)
{
	reg.env = env;
}

void
svc_faults_reset(void)
{
	svc_ticker_stop(reg.ticker);
	reg.ticker = NULL;
	pthread_once(&cond_once, init_cond);
	pthread_mutex_lock(&reg.lock);
	while (reg.n > 0)
		remove_locked(reg.n - 1, QUIETLY, NULL);
	update_kinds();
	reg.n_upstreams = 0;
	reg.enabled = false;
	memset(&reg.cfg, 0, sizeof(reg.cfg));
	reg.env = NULL;
	pthread_mutex_unlock(&reg.lock);
}

/* --- the registry, for faults_admin.c --- */

void
svc__faults_add_upstream(const char *name)
{
	pthread_mutex_lock(&reg.lock);
	for (int i = 0; i < reg.n_upstreams; i++)
		if (strcmp(reg.upstreams[i], name) == 0)
			goto out;
	if (reg.n_upstreams < SVC_FAULTS_MAX_UPSTREAMS)
		snprintf(reg.upstreams[reg.n_upstreams++], UPSTREAM_NAME_MAX,
			 "%s", name);
out:
	pthread_mutex_unlock(&reg.lock);
}

void
svc__faults_targets(struct svc_fault_targets *t,
		    const char *names[SVC_FAULTS_MAX_UPSTREAMS])
{
	pthread_mutex_lock(&reg.lock);
	t->routes = reg.cfg.routes;
	t->subscriptions = reg.cfg.subscriptions;
	t->relay = reg.cfg.relay;
	for (int i = 0; i < reg.n_upstreams; i++)
		names[i] = reg.upstreams[i];
	t->upstreams = names;
	t->n_upstreams = reg.n_upstreams;
	pthread_mutex_unlock(&reg.lock);
}

/* All or nothing (3.): the count is checked before anything changes. */
int
svc__faults_set(const struct svc_fault *faults, int n, bool replace_all,
		const char *by, bool *created)
{
	int rc = SVC_OK, total;

	pthread_mutex_lock(&reg.lock);
	if (!reg.enabled) {
		rc = SVC_ENOTFOUND;
		goto out;
	}
	expire_locked();
	total = replace_all ? n : reg.n;
	for (int i = 0; !replace_all && i < n; i++)
		total += find_locked(faults[i].name) < 0;
	if (total > SVC_FAULTS_MAX) {
		rc = SVC_ECONFLICT;
		goto out;
	}
	while (replace_all && reg.n > 0)
		remove_locked(reg.n - 1, CLEARED, by);
	for (int i = 0; i < n; i++) {
		int old = find_locked(faults[i].name);

		if (created != NULL)
			*created = old < 0;
		if (old >= 0)
			remove_locked(old, QUIETLY, NULL);
		add_locked(&faults[i], by);
	}
	update_kinds();
out:
	pthread_mutex_unlock(&reg.lock);
	return rc;
}

int
svc__faults_clear(const char *name, const char *by)
{
	int cleared = 0;

	pthread_mutex_lock(&reg.lock);
	expire_locked();
	for (int i = reg.n - 1; i >= 0; i--) {
		if (name != NULL && strcmp(reg.table[i].name, name) != 0)
			continue;
		remove_locked(i, CLEARED, by);
		cleared++;
	}
	if (cleared > 0)
		update_kinds();
	pthread_mutex_unlock(&reg.lock);
	return cleared;
}

/* What faults may target here, for GET; under lock. */
static json_t *
targets_json(void)
{
	json_t *routes = json_array(), *upstreams = json_array();
	json_t *queues = json_array();
	const struct svc_route *r = reg.cfg.routes;
	const struct svc_subscription *s = reg.cfg.subscriptions;

	for (int i = 0; r != NULL && r[i].method != NULL; i++) {
		bool seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(r[j].path, r[i].path) == 0;
		if (!seen)
			json_array_append_new(routes, json_string(r[i].path));
	}
	for (int i = 0; i < reg.n_upstreams; i++)
		json_array_append_new(upstreams, json_string(reg.upstreams[i]));
	for (int i = 0; s != NULL && s[i].queue != NULL; i++)
		json_array_append_new(queues, json_string(s[i].queue));
	return json_pack("{s:o, s:o, s:o, s:b}", "routes", routes, "upstreams",
			 upstreams, "consumers", queues, "relay",
			 reg.cfg.relay);
}

json_t *
svc__faults_list(void)
{
	json_t *list = json_array(), *doc;
	long long now;

	pthread_mutex_lock(&reg.lock);
	expire_locked();
	now = now_ms();
	for (int i = 0; i < reg.n; i++)
		json_array_append_new(list,
				      svc__faults_json(&reg.table[i], now));
	doc = json_pack("{s:o, s:o}", "faults", list, "targets",
			targets_json());
	pthread_mutex_unlock(&reg.lock);
	return doc;
}

json_t *
svc__faults_get(const char *name)
{
	json_t *doc = NULL;
	int i;

	pthread_mutex_lock(&reg.lock);
	expire_locked();
	i = find_locked(name);
	if (i >= 0)
		doc = svc__faults_json(&reg.table[i], now_ms());
	pthread_mutex_unlock(&reg.lock);
	return doc;
}

json_t *
svc_faults_health(void)
{
	json_t *list = json_array();

	pthread_mutex_lock(&reg.lock);
	expire_locked();
	for (int i = 0; i < reg.n; i++) {
		json_t *full = svc__faults_json(&reg.table[i], now_ms());

		json_array_append_new(
			list,
			json_pack("{s:O, s:O, s:O*, s:O}", "name",
				  json_object_get(full, "name"), "kind",
				  json_object_get(full, "kind"), "target",
				  json_object_get(full, "target"), "expires_at",
				  json_object_get(full, "expires_at")));
		json_decref(full);
	}
	pthread_mutex_unlock(&reg.lock);
	return list;
}

/* --- the hooks --- */

static bool
matches(const struct svc_fault *f, enum svc_fault_kind kind, const char *target)
{
	return f->kind == kind &&
	       (f->target[0] == '\0' ||
		(target != NULL && strcmp(f->target, target) == 0));
}

/* A delay of f, uniform in [min_ms, max_ms]; under lock. */
static long long
delay_of(const struct svc_fault *f)
{
	long long span = f->max_ms - f->min_ms;

	return f->min_ms +
	       (span > 0 ? (long long)(draw() * (double)(span + 1)) : 0);
}

struct delay {
	long long ms;
	int n;
	uint64_t serials[SVC_FAULTS_MAX]; /* the faults behind it */
};

/* Adds the delays of kind's faults for target to *d; counts them. */
static void
collect_delay(enum svc_fault_kind kind, const char *target, struct delay *d)
{
	for (int i = 0; i < reg.n; i++) {
		if (!matches(&reg.table[i], kind, target))
			continue;
		d->ms += delay_of(&reg.table[i]);
		d->serials[d->n++] = reg.table[i].serial;
		hit(&reg.table[i]);
	}
}

static bool
any_left_locked(const struct delay *d)
{
	for (int i = 0; i < reg.n; i++)
		for (int j = 0; j < d->n; j++)
			if (reg.table[i].serial == d->serials[j])
				return true;
	return false;
}

/*
 * Sleeps ms, or less when every fault behind the delay is cleared or
 * expires meanwhile (2.). Returns the ms slept.
 */
static long long
sleep_for(const struct delay *d, long long ms)
{
	const struct svc_faults_env *env = reg.env;
	long long start = svc_now_ms(), end = start + ms;
	struct timespec until = svc_deadline_after(CLOCK_MONOTONIC, ms);

	if (env != NULL && env->sleep_ms != NULL) {
		env->sleep_ms(env->arg, ms);
		return ms;
	}
	pthread_mutex_lock(&reg.lock);
	while (svc_now_ms() < end && any_left_locked(d) &&
	       pthread_cond_timedwait(&reg.changed, &reg.lock, &until) == 0)
		expire_locked();
	pthread_mutex_unlock(&reg.lock);
	return svc_now_ms() - start;
}

/* The first fault of kind for target whose dice say yes, counted; its
 * index, or -1. Under lock. */
static int
fire(enum svc_fault_kind kind, const char *target)
{
	for (int i = 0; i < reg.n; i++) {
		if (!matches(&reg.table[i], kind, target) ||
		    !(draw() < reg.table[i].rate))
			continue;
		hit(&reg.table[i]);
		return i;
	}
	return -1;
}

int
svc__faults_http(struct svc_req *req, struct svc_res *res)
{
	const char *route = svc_req_route(req);
	struct delay d = { 0 };
	char name[SVC_FAULT_NAME_MAX + 1];
	int status = 0, i;

	if ((atomic_load_explicit(&reg.kinds, memory_order_relaxed) &
	     HTTP_KINDS) == 0)
		return SVC_OK;
	pthread_mutex_lock(&reg.lock);
	expire_locked();
	collect_delay(SVC_FAULT_HTTP_LATENCY, route, &d);
	pthread_mutex_unlock(&reg.lock);
	if (d.ms > 0)
		sleep_for(&d, d.ms);
	pthread_mutex_lock(&reg.lock);
	expire_locked();
	i = fire(SVC_FAULT_HTTP_ERROR, route);
	if (i >= 0) {
		status = reg.table[i].status;
		memcpy(name, reg.table[i].name, sizeof(name));
	}
	pthread_mutex_unlock(&reg.lock);
	if (status == 0)
		return SVC_OK;
	return svc_res_problem(res, status, "fault_injected",
			       "failed on purpose by the fault \"%s\" "
			       "(FAULTS=on)",
			       name);
}

bool
svc__faults_upstream(const char *name, long long *timeout_ms, int *rc,
		     struct svc_client_response *out)
{
	struct delay d = { 0 };
	char fault[SVC_FAULT_NAME_MAX + 1];
	int status = -1, i;

	if ((atomic_load_explicit(&reg.kinds, memory_order_relaxed) &
	     UPSTREAM_KINDS) == 0)
		return false;
	pthread_mutex_lock(&reg.lock);
	expire_locked();
	collect_delay(SVC_FAULT_UPSTREAM_LATENCY, name, &d);
	pthread_mutex_unlock(&reg.lock);
	if (d.ms > 0) {
		long long wait = d.ms < *timeout_ms ? d.ms : *timeout_ms;
		long long slept = sleep_for(&d, wait);

		if (d.ms >= *timeout_ms && slept >= *timeout_ms) {
			/* Slower than the attempt may wait: a timeout. */
			*rc = SVC_ETIMEOUT;
			snprintf(out->error, sizeof(out->error),
				 "no answer in %lld ms (injected latency)",
				 *timeout_ms);
			return true;
		}
		*timeout_ms = *timeout_ms - slept > 0 ? *timeout_ms - slept : 1;
	}
	pthread_mutex_lock(&reg.lock);
	expire_locked();
	i = fire(SVC_FAULT_UPSTREAM_ERROR, name);
	if (i >= 0) {
		status = reg.table[i].status;
		memcpy(fault, reg.table[i].name, sizeof(fault));
	}
	pthread_mutex_unlock(&reg.lock);
	if (status < 0)
		return false;
	out->retry_after_s = -1;
	out->status = status;
	*rc = status == 0 ? SVC_EUNAVAIL : SVC_OK;
	if (status == 0)
		snprintf(out->error, sizeof(out->error),
			 "connection refused (injected by the fault \"%s\")",
			 fault);
	return true;
}

bool
svc__faults_paused(enum svc_fault_kind kind, const char *target, bool count)
{
	bool held = false;

	if ((atomic_load_explicit(&reg.kinds, memory_order_relaxed) &
	     BIT(kind)) == 0)
		return false;
	pthread_mutex_lock(&reg.lock);
	expire_locked();
	for (int i = 0; i < reg.n && !held; i++) {
		held = matches(&reg.table[i], kind, target);
		if (held && count)
			hit(&reg.table[i]);
	}
	pthread_mutex_unlock(&reg.lock);
	return held;
}

bool
svc__faults_duplicate(const char *queue)
{
	bool picked;

	if ((atomic_load_explicit(&reg.kinds, memory_order_relaxed) &
	     BIT(SVC_FAULT_DUPLICATE_DELIVERY)) == 0)
		return false;
	pthread_mutex_lock(&reg.lock);
	expire_locked();
	picked = fire(SVC_FAULT_DUPLICATE_DELIVERY, queue) >= 0;
	pthread_mutex_unlock(&reg.lock);
	return picked;
}
