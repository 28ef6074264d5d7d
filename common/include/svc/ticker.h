/*
 * svc/ticker.h - a background thread that runs a function every interval
 * until it is stopped: the reservation sweeper, the release retrier, and
 * any other periodic chore a service has.
 *
 * The function runs on the ticker's own thread, so it may use
 * svc_db_thread() for a connection of its own. Stopping wakes the thread
 * at once rather than waiting out the interval, and waits for a run in
 * progress to finish.
 */
#ifndef SVC_TICKER_H
#define SVC_TICKER_H

struct svc_ticker;

/*
 * Starts a thread calling fn(arg) now and then every interval_ms. name is
 * for logs (borrowed, static). Returns NULL when no thread could start.
 */
struct svc_ticker *svc_ticker_start(const char *name, long long interval_ms,
				    void (*fn)(void *arg), void *arg);

/* Stops the thread and frees the ticker; NULL is a no-op. */
void svc_ticker_stop(struct svc_ticker *t);

#endif
