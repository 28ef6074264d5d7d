/*
 * ratelimit.c - token buckets per key, sharded, bounded in memory.
 *
 * The table is split into SHARDS shards by the key's hash; each has its
 * own mutex, chained hash buckets and a least-recently-used list, so
 * clients on different shards never wait for each other and the critical
 * section is a lookup and a few floating-point operations. A bucket keeps
 * its tokens and the time it was last refilled; refilling is computed
 * lazily on each take, so there is no timer thread. Every take also looks
 * at the oldest bucket of its shard and drops it when it is full again
 * (idle: a new bucket would answer the same), and a shard at its share of
 * max_keys drops its least recently used bucket before adding one. This is
 * not a distributed limiter: each replica counts on its own.
 */
#include "svc/ratelimit.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/util.h"

#define SHARDS	   16
#define MAX_KEY	   255
#define MAX_N	   1000000000LL
#define IDLE_SWEEP 2 /* idle buckets looked at per take */

struct bucket {
	struct bucket *chain;	    /* next in the hash chain */
	struct bucket *prev, *next; /* LRU list: head is the newest */
	uint64_t hash;
	double tokens, last; /* tokens at time last */
	double rate, burst;  /* of the rule it was last taken under */
	char key[];
};

struct shard {
	pthread_mutex_t lock;
	struct bucket **table;
	size_t mask; /* table size - 1 */
	size_t count, cap;
	struct bucket *newest, *oldest;
};

struct svc_ratelimit {
	svc_ratelimit_clock_fn clock;
	void *clock_arg;
	struct shard shards[SHARDS];
};

/* --- parsing --- */

static bool
parse_count(const char **p, long long *out)
{
	long long n = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		n = n * 10 + (*s - '0');
		if (n > MAX_N)
			return false;
	}
	if (n < 1)
		return false;
	*p = s;
	*out = n;
	return true;
}

static bool
parse_unit(const char *s, size_t len, long long *per)
{
	static const struct {
		const char *name;
		long long per;
	} units[] = {
		{ "s", 1 },    { "sec", 1 },	 { "second", 1 },
		{ "m", 60 },   { "min", 60 },	 { "minute", 60 },
		{ "h", 3600 }, { "hour", 3600 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strlen(units[i].name) == len &&
		    strncasecmp(s, units[i].name, len) == 0) {
			*per = units[i].per;
			return true;
		}
	}
	return false;
}

int
svc_ratelimit_parse(const char *text, struct svc_ratelimit_rule *out)
{
	const char *p = text, *unit;
	long long n, burst, per;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return SVC_EINVAL;
	if (strcasecmp(text, "off") == 0)
		return SVC_OK;
	if (!parse_count(&p, &n) || *p++ != '/')
		return SVC_EINVAL;
	unit = p;
	p += strcspn(p, ",");
	if (!parse_unit(unit, (size_t)(p - unit), &per))
		return SVC_EINVAL;
	burst = n;
	if (*p == ',') {
		p++;
		if (strncmp(p, "burst=", 6) != 0)
			return SVC_EINVAL;
		p += 6;
		if (!parse_count(&p, &burst))
			return SVC_EINVAL;
	}
	if (*p != '\0')
		return SVC_EINVAL;
	out->enabled = true;
	out->n = n;
	out->per = per;
	out->rate = (double)n / (double)per;
	out->burst = (double)burst;
	return SVC_OK;
}

static void
read_rule(const char *key, const char *def, struct svc_ratelimit_rule *out)
{
	const char *v = svc_config_str(key, def);

	if (svc_ratelimit_parse(v, out) != SVC_OK)
		svc_config_fail(key,
				"must be N/second|minute|hour with an optional "
				",burst=M, or off, got \"%s\"",
				v);
}

void
svc_ratelimit_config_read(struct svc_ratelimit_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	read_rule("RATE_LIMIT", "600/minute", &cfg->client);
	if (svc_config_get("RATE_LIMIT_SERVICE") != NULL) {
		read_rule("RATE_LIMIT_SERVICE", NULL, &cfg->service);
	} else if (cfg->client.enabled) {
		/* Ten clients' worth: a busy client never starves them. */
		cfg->service = cfg->client;
		cfg->service.n *= 10;
		cfg->service.rate *= 10;
		cfg->service.burst *= 10;
	}
	read_rule("RATE_LIMIT_AUTH_FAILURES", "100/minute",
		  &cfg->auth_failures);
	cfg->max_keys = (size_t)svc_config_int("RATE_LIMIT_MAX_KEYS", 100000,
					       16, 10000000);
}

/* --- the table --- */

static double
monotonic(void *arg)
{
	(void)arg;
	return svc_now_s();
}

struct svc_ratelimit *
svc_ratelimit_new(size_t max_keys, svc_ratelimit_clock_fn clock, void *arg)
{
	struct svc_ratelimit *rl = calloc(1, sizeof(*rl));
	size_t cap, size = 16;

	if (rl == NULL)
		return NULL;
	rl->clock = clock != NULL ? clock : monotonic;
	rl->clock_arg = arg;
	cap = (max_keys + SHARDS - 1) / SHARDS;
	if (cap < 1)
		cap = 1;
	while (size < cap)
		size *= 2;
	for (int i = 0; i < SHARDS; i++) {
		struct shard *s = &rl->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->cap = cap;
		s->mask = size - 1;
		s->table = calloc(size, sizeof(*s->table));
		if (s->table == NULL) {
			svc_ratelimit_free(rl);
			return NULL;
		}
	}
	return rl;
}

void
svc_ratelimit_free(struct svc_ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (int i = 0; i < SHARDS; i++) {
		struct shard *s = &rl->shards[i];
		struct bucket *b = s->newest;

		while (b != NULL) {
			struct bucket *next = b->next;

			free(b);
			b = next;
		}
		free(s->table);
		pthread_mutex_destroy(&s->lock);
	}
	free(rl);
}

/* FNV-1a: keys are short, and the shard takes the high bits. */
static uint64_t
hash_key(const char *key, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	/* The murmur3 finaliser: every input bit reaches the high bits. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

static void
lru_unlink(struct shard *s, struct bucket *b)
{
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		s->newest = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	else
		s->oldest = b->prev;
	b->prev = b->next = NULL;
}

static void
lru_push(struct shard *s, struct bucket *b)
{
	b->prev = NULL;
	b->next = s->newest;
	if (s->newest != NULL)
		s->newest->prev = b;
	s->newest = b;
	if (s->oldest == NULL)
		s->oldest = b;
}

static void
drop(struct shard *s, struct bucket *b)
{
	struct bucket **pp = &s->table[b->hash & s->mask];

	while (*pp != b)
		pp = &(*pp)->chain;
	*pp = b->chain;
	lru_unlink(s, b);
	s->count--;
	free(b);
}

/* Ceiling of a non-negative x, without libm. */
static long long
ceil_pos(double x)
{
	long long n = (long long)x;

	return (double)n < x ? n + 1 : n;
}

static bool
idle(const struct bucket *b, double now)
{
	return b->tokens + (now - b->last) * b->rate >= b->burst;
}

int
svc_ratelimit_take(struct svc_ratelimit *rl, const char *key,
		   const struct svc_ratelimit_rule *rule,
		   struct svc_ratelimit_result *out)
{
	size_t len = strnlen(key, MAX_KEY);
	uint64_t h = hash_key(key, len);
	struct shard *s = &rl->shards[h >> 60];
	struct bucket *b;
	double now, tokens;
	int rc = SVC_OK;

	memset(out, 0, sizeof(*out));
	out->allowed = true;
	if (!rule->enabled)
		return SVC_OK;
	out->limit = (long long)rule->burst;
	now = rl->clock(rl->clock_arg);

	pthread_mutex_lock(&s->lock);
	for (b = s->table[h & s->mask]; b != NULL; b = b->chain)
		if (b->hash == h && strncmp(b->key, key, len) == 0 &&
		    b->key[len] == '\0')
			break;
	if (b != NULL) {
		lru_unlink(s, b);
		tokens = b->tokens + (now - b->last) * rule->rate;
		if (tokens > rule->burst)
			tokens = rule->burst;
	} else {
		if (s->count >= s->cap)
			drop(s, s->oldest);
		b = malloc(sizeof(*b) + len + 1);
		if (b == NULL) {
			rc = SVC_ENOMEM;
			goto out;
		}
		memcpy(b->key, key, len);
		b->key[len] = '\0';
		b->hash = h;
		b->chain = s->table[h & s->mask];
		s->table[h & s->mask] = b;
		s->count++;
		tokens = rule->burst;
	}
	lru_push(s, b);
	if (tokens >= 1.0) {
		tokens -= 1.0;
	} else {
		out->allowed = false;
		out->retry_after = ceil_pos((1.0 - tokens) / rule->rate);
		if (out->retry_after < 1)
			out->retry_after = 1;
	}
	b->tokens = tokens;
	b->last = now;
	b->rate = rule->rate;
	b->burst = rule->burst;
	out->remaining = (long long)tokens;
	out->reset = ceil_pos((rule->burst - tokens) / rule->rate);
	/* Amortised clean-up: the oldest buckets, if they are full again. */
	for (int i = 0; i < IDLE_SWEEP; i++) {
		struct bucket *old = s->oldest;

		if (old == NULL || old == b || !idle(old, now))
			break;
		drop(s, old);
	}
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

size_t
svc_ratelimit_keys(struct svc_ratelimit *rl)
{
	size_t n = 0;

	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&rl->shards[i].lock);
		n += rl->shards[i].count;
		pthread_mutex_unlock(&rl->shards[i].lock);
	}
	return n;
}
