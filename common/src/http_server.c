/*
 * http_server.c - the libmicrohttpd adapter: connections in, svc_res out.
 *
 * One internal poll thread per pool worker (MHD_USE_INTERNAL_POLLING_THREAD
 * | MHD_USE_POLL with a thread pool); a handler runs on the worker that
 * owns the connection, which is also the thread whose database connection
 * it uses. Two libmicrohttpd 0.9.75 habits shape this file: a response
 * queued on the first call of the access handler makes it close the
 * connection (no keep-alive), so we answer on a later call - except for an
 * early 413, where closing is what we want; and bodies arrive in pieces
 * that must each be consumed.
 *
 * Draining. libmicrohttpd's workers accept on a listening socket we open
 * (MHD_OPTION_LISTEN_SOCKET), so a worker busy in a handler takes no new
 * connection and an idle one does. To stop accepting, svc_server_quiesce()
 * takes the socket back (MHD_quiesce_daemon), hands what the kernel had
 * already accepted to the pool (MHD_add_connection: those clients have
 * sent their request or are about to), and closes it: from then on a
 * connection attempt is refused at once instead of waiting in a backlog
 * nobody reads, to be reset when the process exits. The workers poll
 * (MHD_USE_POLL) rather than epoll: in 0.9.75, MHD_quiesce_daemon() under
 * epoll races the workers over the listening socket's registration and
 * can abort the process (an unguarded MHD_PANIC on ENOENT); under poll it
 * only sets a flag and wakes them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connguard.h"
#include "http_internal.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/metrics.h"

struct svc_server {
	struct MHD_Daemon *daemon;
	struct svc_http *http;
	size_t max_body;
	atomic_int in_flight;
	atomic_bool quiescing; /* svc_server_quiesce() was called */
	atomic_bool quiesced;  /* the listener is closed: answers say close */
	struct svc_metric_series *connections; /* http_active_connections */
	struct svc_connguard *guard;
};

static enum MHD_Result
collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct svc_req *req = cls;

	if (kind == MHD_HEADER_KIND)
		svc_req_add_header(req, key, value != NULL ? value : "");
	else
		svc_req_add_query(req, key, value != NULL ? value : "");
	return MHD_YES;
}

static void
set_peer(struct MHD_Connection *conn, struct svc_req *req)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char buf[INET6_ADDRSTRLEN] = "";
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  buf, sizeof(buf));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  sizeof(buf));
	svc_req_set_peer(req, buf);
}

static void
add_header(const char *name, const char *value, void *arg)
{
	MHD_add_response_header(arg, name, value);
}

static enum MHD_Result
respond(struct svc_server *srv, struct MHD_Connection *conn,
	struct svc_req *req)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct svc_res *res = svc_res_new();
	struct MHD_Response *response;
	enum MHD_Result ret;
	size_t len;
	char *body;

	if (ci != NULL)
		svc_connguard_request_read(ci->socket_context);
	MHD_get_connection_values(conn, MHD_HEADER_KIND, collect, req);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, req);
	set_peer(conn, req);
	svc_http_handle(srv->http, req, res);
	if (atomic_load(&srv->quiesced))
		svc_res_header(res, "Connection", "close");

	body = svc__res_take_body(res, &len);
	response = MHD_create_response_from_buffer_with_free_callback(
		len, body != NULL ? body : "", body != NULL ? free : NULL);
	if (response == NULL) {
		free(body);
		svc_res_free(res);
		return MHD_NO;
	}
	svc_res_foreach_header(res, add_header, response);
	ret = MHD_queue_response(conn, (unsigned)svc_res_status(res), response);
	MHD_destroy_response(response);
	svc_res_free(res);
	return ret;
}

/* Content-Length larger than the limit, or not a number at all. */
static bool
declared_too_big(struct MHD_Connection *conn, size_t limit)
{
	const char *cl = MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long n;

	if (cl == NULL)
		return false;
	n = strtoull(cl, &end, 10);
	return end == cl || *end != '\0' || n > limit;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *upload_data,
	   size_t *upload_data_size, void **con_cls)
{
	struct svc_server *srv = cls;
	struct svc_req *req = *con_cls;

	(void)version;
	if (req == NULL) {
		req = svc_req_new(method, url);
		*con_cls = req;
		atomic_fetch_add(&srv->in_flight, 1);
		if (declared_too_big(conn, srv->max_body)) {
			/* Answer before reading: the connection will close. */
			svc__req_set_too_big(req);
			return respond(srv, conn, req);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* Past the limit the rest is dropped; 413 comes at the end. */
		svc_req_append_body(req, upload_data, *upload_data_size,
				    srv->max_body);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return respond(srv, conn, req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct svc_server *srv = cls;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	(void)toe;
	if (ci != NULL)
		svc_connguard_response_sent(ci->socket_context);
	if (*con_cls == NULL)
		return;
	svc_req_free(*con_cls);
	*con_cls = NULL;
	atomic_fetch_sub(&srv->in_flight, 1);
}

/* The accept policy: an address past its share while the server is busy. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct svc_server *srv = cls;

	(void)addrlen;
	return svc_connguard_admit(srv->guard, addr) ? MHD_YES : MHD_NO;
}

/*
 * Open client connections, keep-alive ones idle between requests too. The
 * guard forgets a connection here, before libmicrohttpd closes its fd.
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
	      enum MHD_ConnectionNotificationCode code)
{
	struct svc_server *srv = cls;
	const union MHD_ConnectionInfo *fd, *addr;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		fd = MHD_get_connection_info(conn,
					     MHD_CONNECTION_INFO_CONNECTION_FD);
		addr = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (fd != NULL)
			*socket_context = svc_connguard_open(
				srv->guard, fd->connect_fd,
				addr != NULL ? addr->client_addr : NULL);
		svc_metrics_gauge_add(srv->connections, 1);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		svc_connguard_close(srv->guard, *socket_context);
		*socket_context = NULL;
		svc_metrics_gauge_add(srv->connections, -1);
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	svc_log(SVC_LOG_WARN, msg, SVC_LOG_STR("component", "libmicrohttpd"),
		SVC_LOG_END);
}

/*
 * libmicrohttpd's own unescaping, but "%00" stays encoded (see
 * svc__url_unescape). Called for the path and for each query key and
 * value; '+' is already a space in those, and stays '+' in a path.
 */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return svc__url_unescape(s, false);
}

/* A listening TCP socket on host:port, or -1 (logged). */
static int
open_listener(const struct svc_server_config *cfg)
{
	struct sockaddr_in addr = { 0 };
	const char *what = "socket";
	int one = 1, fd;

	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)cfg->port);
	if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
		svc_log(SVC_LOG_ERROR, "invalid listen address",
			SVC_LOG_STR("host", cfg->host), SVC_LOG_END);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/*
	 * SO_REUSEADDR: a restart binds while old connections linger in
	 * TIME_WAIT. SO_REUSEPORT: a new process can take the port while
	 * the old one drains (libmicrohttpd's LISTENING_ADDRESS_REUSE did
	 * the same).
	 */
	what = "setsockopt";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail;
	what = "bind";
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		goto fail;
	what = "listen";
	if (listen(fd, 1024) != 0)
		goto fail;
	return fd;
fail:
	svc_log(SVC_LOG_ERROR, "cannot listen", SVC_LOG_STR("host", cfg->host),
		SVC_LOG_INT("port", cfg->port), SVC_LOG_STR("call", what),
		SVC_LOG_STR("error", strerror(errno)), SVC_LOG_END);
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * File descriptors for max connections plus the process's own (database,
 * broker, logs): raises the soft limit as far as the hard one
 * allows - a systemd service starts with 1024 - and returns how many
 * connections fit.
 */
enum { OWN_FDS = 256 };

static int
connections_that_fit(int max)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max + OWN_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return max;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= want)
		return max;
	max = rl.rlim_cur > OWN_FDS + 16 ? (int)(rl.rlim_cur - OWN_FDS) : 16;
	svc_log(SVC_LOG_WARN,
		"the open file limit holds fewer connections than "
		"HTTP_MAX_CONNECTIONS: raise LimitNOFILE / ulimit -n",
		SVC_LOG_INT("max_connections", max), SVC_LOG_END);
	return max;
}

struct svc_server *
svc_server_start(struct svc_http *http, const struct svc_server_config *cfg)
{
	struct svc_server *srv = calloc(1, sizeof(*srv));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	int max_connections, listen_fd = -1;

	if (srv == NULL)
		return NULL;
	srv->http = http;
	srv->max_body = svc__http_config(http)->max_body;
	max_connections = connections_that_fit(cfg->max_connections);
	listen_fd = open_listener(cfg);
	if (listen_fd < 0)
		goto fail;
	srv->connections = svc_metrics_series(
		svc_metrics_gauge(NULL, "http_active_connections",
				  "Open client connections.", NULL, 0),
		NULL);
	srv->guard = svc_connguard_new(&(struct svc_connguard_config){
		.max_connections = max_connections,
		.max_per_ip = cfg->max_per_ip,
		.read_timeout_ms = cfg->read_timeout_ms,
		.refused = svc_metrics_series(
			svc_metrics_counter(
				NULL, "http_connections_refused_total",
				"Connections refused because their address "
				"held its share of a busy server.",
				NULL, 0),
			NULL),
		.timed_out = svc_metrics_series(
			svc_metrics_counter(
				NULL, "http_read_timeouts_total",
				"Connections closed because a request did not "
				"arrive whole within HTTP_READ_TIMEOUT.",
				NULL, 0),
			NULL),
	});
	if (srv->guard == NULL)
		goto fail;
	srv->daemon = MHD_start_daemon(
		flags, 0, on_accept, srv, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)cfg->connection_timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_connections,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->memory_per_connection,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
	if (srv->daemon == NULL) {
		svc_log(SVC_LOG_ERROR, "cannot start the HTTP server",
			SVC_LOG_END);
		goto fail;
	}
	return srv;
fail:
	svc_connguard_free(srv->guard);
	if (listen_fd >= 0)
		close(listen_fd);
	free(srv);
	return NULL;
}

/*
 * Hands what the kernel already accepted on fd to the pool; libmicrohttpd
 * closes a connection it refuses (the accept policy, the limit) itself.
 */
static void
take_backlog(struct svc_server *srv, int fd)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int c = accept4(fd, (struct sockaddr *)&ss, &len,
				SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (c < 0)
			return;
		MHD_add_connection(srv->daemon, c, (struct sockaddr *)&ss, len);
	}
}

/*
 * The listener closes before responses start asking clients to close:
 * a client told to reconnect is refused, never caught by the close in a
 * backlog nobody reads.
 */
void
svc_server_quiesce(struct svc_server *srv)
{
	MHD_socket fd;

	if (atomic_exchange(&srv->quiescing, true))
		return;
	fd = MHD_quiesce_daemon(srv->daemon);
	if (fd != MHD_INVALID_SOCKET) {
		take_backlog(srv, fd);
		close(fd);
	}
	atomic_store(&srv->quiesced, true);
}

int
svc_server_in_flight(const struct svc_server *srv)
{
	return atomic_load(&srv->in_flight);
}

int
svc_server_connections(const struct svc_server *srv)
{
	return svc_connguard_open_count(srv->guard);
}

int
svc__server_add_connection(struct svc_server *srv, int fd)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (MHD_add_connection(srv->daemon, fd, (struct sockaddr *)&addr,
			       sizeof(addr)) != MHD_YES)
		return SVC_EINVAL;
	return SVC_OK;
}

void
svc_server_stop(struct svc_server *srv)
{
	if (srv == NULL)
		return;
	/* Closes the listening socket too, unless quiesce took it. */
	MHD_stop_daemon(srv->daemon);
	svc_connguard_free(srv->guard);
	free(srv);
}
