/*
 * connguard.c - read deadlines and per-address shares for the server's
 * connections; see connguard.h for what and why.
 *
 * One mutex guards the list of open connections and the table of
 * addresses; it is taken when a connection opens or closes and once per
 * sweep, never per request. A request's own progress is two atomics the
 * connection's worker writes and the sweeper reads. Closing takes the
 * mutex before libmicrohttpd closes the fd, and the sweeper shuts sockets
 * down only while holding it, so it never touches an fd that was closed
 * and handed to someone else.
 */
#include "connguard.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/metrics.h"
#include "svc/ticker.h"
#include "svc/util.h"

/* An address as 16 bytes (IPv4 in its IPv6-mapped form). */
struct addr {
	unsigned char b[16];
};

struct holder {
	struct addr addr;
	int open; /* its connections */
	struct holder *next;
};

struct svc_conn {
	int fd;
	struct holder *holder; /* NULL: no address (not counted) */
	atomic_llong since_ms; /* when the current wait for a request began */
	atomic_bool reading;   /* waiting for a request to arrive whole */
	bool shut;	       /* the sweeper has shut it down */
	struct svc_conn *prev, *next;
};

struct svc_connguard {
	struct svc_connguard_config cfg;
	pthread_mutex_t lock;
	struct svc_conn *conns; /* every open connection */
	int open;
	struct holder **buckets;
	size_t nbuckets; /* a power of two */
	struct svc_ticker *sweeper;
};

static bool
addr_of(const struct sockaddr *sa, struct addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12,
		       &((const struct sockaddr_in *)(const void *)sa)
				->sin_addr,
		       4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out->b,
		       &((const struct sockaddr_in6 *)(const void *)sa)
				->sin6_addr,
		       16);
		return true;
	}
	return false;
}

/* FNV-1a: addresses are not chosen by an attacker beyond their own. */
static struct holder **
slot(struct svc_connguard *g, const struct addr *a)
{
	uint32_t h = 2166136261u;
	struct holder **p;

	for (size_t i = 0; i < sizeof(a->b); i++)
		h = (h ^ a->b[i]) * 16777619u;
	p = &g->buckets[h & (g->nbuckets - 1)];
	while (*p != NULL && memcmp((*p)->addr.b, a->b, sizeof(a->b)) != 0)
		p = &(*p)->next;
	return p;
}

static void
sweep_now(void *arg)
{
	struct svc_connguard *g = arg;

	svc_connguard_sweep(g, svc_now_ms());
}

struct svc_connguard *
svc_connguard_new(const struct svc_connguard_config *cfg)
{
	struct svc_connguard *g = calloc(1, sizeof(*g));
	long long tick;

	if (g == NULL)
		return NULL;
	g->cfg = *cfg;
	g->nbuckets = 64;
	while (g->nbuckets < (size_t)cfg->max_connections)
		g->nbuckets *= 2;
	g->buckets = calloc(g->nbuckets, sizeof(*g->buckets));
	if (g->buckets == NULL) {
		free(g);
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	if (cfg->read_timeout_ms > 0) {
		/* A late request is cut within a quarter of its deadline. */
		tick = cfg->read_timeout_ms / 4;
		tick = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;
		g->sweeper = svc_ticker_start("connguard", tick, sweep_now, g);
		if (g->sweeper == NULL) {
			svc_connguard_free(g);
			return NULL;
		}
	}
	return g;
}

void
svc_connguard_free(struct svc_connguard *g)
{
	if (g == NULL)
		return;
	svc_ticker_stop(g->sweeper);
	/* libmicrohttpd closed every connection before this. */
	for (size_t i = 0; i < g->nbuckets; i++)
		while (g->buckets[i] != NULL) {
			struct holder *h = g->buckets[i];

			g->buckets[i] = h->next;
			free(h);
		}
	while (g->conns != NULL) {
		struct svc_conn *c = g->conns;

		g->conns = c->next;
		free(c);
	}
	pthread_mutex_destroy(&g->lock);
	free(g->buckets);
	free(g);
}

bool
svc_connguard_admit(struct svc_connguard *g, const struct sockaddr *sa)
{
	struct holder *h;
	struct addr a;
	bool ok = true;

	if (g->cfg.max_per_ip <= 0 || !addr_of(sa, &a))
		return true;
	pthread_mutex_lock(&g->lock);
	if (g->open * 2 >= g->cfg.max_connections) {
		h = *slot(g, &a);
		ok = h == NULL || h->open < g->cfg.max_per_ip;
	}
	pthread_mutex_unlock(&g->lock);
	if (!ok)
		svc_metrics_inc(g->cfg.refused);
	return ok;
}

struct svc_conn *
svc_connguard_open(struct svc_connguard *g, int fd, const struct sockaddr *sa)
{
	struct svc_conn *c = calloc(1, sizeof(*c));
	struct holder **p, *h = NULL;
	struct addr a;

	if (c == NULL)
		return NULL;
	c->fd = fd;
	atomic_init(&c->since_ms, svc_now_ms());
	atomic_init(&c->reading, true);
	pthread_mutex_lock(&g->lock);
	if (addr_of(sa, &a)) {
		p = slot(g, &a);
		h = *p;
		if (h == NULL && (h = calloc(1, sizeof(*h))) != NULL) {
			h->addr = a;
			*p = h;
		}
		if (h != NULL)
			h->open++;
	}
	c->holder = h;
	c->next = g->conns;
	if (g->conns != NULL)
		g->conns->prev = c;
	g->conns = c;
	g->open++;
	pthread_mutex_unlock(&g->lock);
	return c;
}

void
svc_connguard_close(struct svc_connguard *g, struct svc_conn *c)
{
	struct holder **p;

	if (c == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->holder != NULL && --c->holder->open == 0) {
		p = slot(g, &c->holder->addr);
		*p = c->holder->next;
		free(c->holder);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	g->open--;
	pthread_mutex_unlock(&g->lock);
	free(c);
}

int
svc_connguard_open_count(struct svc_connguard *g)
{
	int n;

	pthread_mutex_lock(&g->lock);
	n = g->open;
	pthread_mutex_unlock(&g->lock);
	return n;
}

void
svc_connguard_request_read(struct svc_conn *c)
{
	if (c != NULL)
		atomic_store(&c->reading, false);
}

void
svc_connguard_response_sent(struct svc_conn *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->since_ms, svc_now_ms());
	atomic_store(&c->reading, true);
}

int
svc_connguard_sweep(struct svc_connguard *g, long long now_ms)
{
	int n = 0;

	if (g->cfg.read_timeout_ms <= 0)
		return 0;
	pthread_mutex_lock(&g->lock);
	for (struct svc_conn *c = g->conns; c != NULL; c = c->next) {
		if (c->shut || !atomic_load(&c->reading) ||
		    now_ms - atomic_load(&c->since_ms) < g->cfg.read_timeout_ms)
			continue;
		/* Its worker sees the end of the stream and closes it. */
		shutdown(c->fd, SHUT_RDWR);
		c->shut = true;
		n++;
	}
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < n; i++)
		svc_metrics_inc(g->cfg.timed_out);
	return n;
}
