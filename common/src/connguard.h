/*
 * connguard.h - what libmicrohttpd 0.9.75 does not bound on its own: how
 * long a request may take to arrive, and how many connections one address
 * holds while the server is busy. Internal to libsvc; http_server.c wires
 * it to the daemon's callbacks, and it knows nothing of HTTP itself.
 *
 * Read deadline. libmicrohttpd closes a connection that is silent for
 * HTTP_CONNECTION_TIMEOUT, but a client trickling one byte a second is
 * never silent (slowloris). The guard gives every request read_timeout to
 * arrive whole - line, headers and body - counted from the moment the
 * connection opened or its previous response went out, and shuts down the
 * socket of one that is late; libmicrohttpd then sees the end of the
 * stream and closes the connection through its usual path. A connection
 * idle between keep-alive requests is waiting for a request too, so this
 * bounds its idle time as well.
 *
 * Per-address share. Past half of max_connections open, an address that
 * already holds max_per_ip connections gets no more: one client cannot
 * take the other half, while an address behind which many clients sit (a
 * proxy, a NAT) is not held to max_per_ip on a server with room to spare.
 */
#ifndef SVC_CONNGUARD_H
#define SVC_CONNGUARD_H

#include <stdbool.h>
#include <sys/socket.h>

struct svc_metric_series;

struct svc_connguard_config {
	int max_connections;	   /* the server's total cap */
	int max_per_ip;		   /* 0: no per-address share */
	long long read_timeout_ms; /* 0: no read deadline */
	/* Counters to increment, or NULL. */
	struct svc_metric_series *refused;   /* an address over its share */
	struct svc_metric_series *timed_out; /* a request late to arrive */
};

struct svc_connguard;
struct svc_conn;

/*
 * A guard, and with a read deadline the thread that enforces it
 * (svc_connguard_free stops it). NULL when memory or threads run out.
 */
struct svc_connguard *svc_connguard_new(const struct svc_connguard_config *cfg);
void svc_connguard_free(struct svc_connguard *g);

/* Whether a connection from sa may open now (the accept policy). */
bool svc_connguard_admit(struct svc_connguard *g, const struct sockaddr *sa);

/*
 * Tracks a connection that opened on fd; its first request's deadline
 * starts now. NULL (the connection goes untracked) when memory runs out.
 */
struct svc_conn *svc_connguard_open(struct svc_connguard *g, int fd,
				    const struct sockaddr *sa);
/* The connection closed: forget it before its fd is closed. NULL: no-op. */
void svc_connguard_close(struct svc_connguard *g, struct svc_conn *c);

/* Connections open now (opened and not yet closed). */
int svc_connguard_open_count(struct svc_connguard *g);

/* Its request arrived whole: no deadline while it is being answered. */
void svc_connguard_request_read(struct svc_conn *c);
/* Its response went out: the next request's deadline starts now. */
void svc_connguard_response_sent(struct svc_conn *c);

/*
 * Shuts down every connection whose request is overdue at now_ms
 * (svc_now_ms() clock); returns how many. The guard's thread calls it;
 * exposed for tests.
 */
int svc_connguard_sweep(struct svc_connguard *g, long long now_ms);

#endif
