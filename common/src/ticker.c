/*
 * ticker.c - a periodic background thread with a prompt, clean stop.
 *
 * The thread sleeps on a condition variable with a deadline on the
 * monotonic clock, so a stop request ends the wait immediately and a wall
 * clock change does not stretch or shorten it.
 */
#include "svc/ticker.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "svc/log.h"
#include "svc/util.h"

struct svc_ticker {
	const char *name;
	long long interval_ms;
	void (*fn)(void *arg);
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
};

static void *
run(void *arg)
{
	struct svc_ticker *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec until;

		pthread_mutex_unlock(&t->lock);
		t->fn(t->arg);
		pthread_mutex_lock(&t->lock);
		until = svc_deadline_after(CLOCK_MONOTONIC, t->interval_ms);
		while (!t->stop &&
		       pthread_cond_timedwait(&t->wake, &t->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct svc_ticker *
svc_ticker_start(const char *name, long long interval_ms, void (*fn)(void *arg),
		 void *arg)
{
	struct svc_ticker *t = calloc(1, sizeof(*t));
	pthread_condattr_t attr;

	if (t == NULL)
		return NULL;
	t->name = name;
	t->interval_ms = interval_ms > 0 ? interval_ms : 1;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&t->thread, NULL, run, t) != 0) {
		svc_log(SVC_LOG_ERROR, "cannot start a background thread",
			SVC_LOG_STR("ticker", name), SVC_LOG_END);
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	return t;
}

void
svc_ticker_stop(struct svc_ticker *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
