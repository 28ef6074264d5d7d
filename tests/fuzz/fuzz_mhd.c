/*
 * fuzz_mhd.c - libFuzzer target for raw HTTP through the real stack: the
 * input is written as-is to one end of a socketpair whose other end is
 * handed to the service's libmicrohttpd server (svc_server_start() with
 * its adapter, http_server.c, over a small route table of echo handlers),
 * and the answer is read until the server closes the connection. It
 * covers libmicrohttpd's request parsing, our adapter (Content-Length
 * checks, bodies in pieces, headers and query arguments copied into the
 * request) and the pipeline behind it. Not a load test: one connection at
 * a time, and the handlers touch no database.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "http_internal.h"
#include "svc/log.h"

#define READ_DEADLINE_MS 3000 /* a server still sending by then is stuck */
#define IDLE_MS		 50   /* see drain() */

static const unsigned char key[] = "fuzz-mhd-key-0123456789abcdefghijklmnop";

static int
h_echo(struct svc_req *req, struct svc_res *res)
{
	size_t len;
	const char *body = svc_req_body(req, &len);

	return svc_res_json(
		res, 200,
		json_pack("{s:s, s:s?, s:s?, s:s?, s:O?, s:s%}", "path",
			  svc_req_path(req), "id", svc_req_param(req, "id"),
			  "q", svc_req_query(req, "q"), "ua",
			  svc_req_header(req, "User-Agent"), "json",
			  svc_req_json(req), "body", body ? body : "", len));
}

static const struct svc_route routes[] = {
	{ "GET", "/items", h_echo, 0 },
	{ "GET", "/items/{id}", h_echo, 0 },
	{ "POST", "/items", h_echo, SVC_ROUTE_BODY },
	{ "PUT", "/items/{id}", h_echo, SVC_ROUTE_BODY | SVC_ROUTE_ADMIN },
	{ "DELETE", "/items/{id}", h_echo, 0 },
	{ 0 },
};

static struct svc_server *srv;

static void
start(void)
{
	static const struct svc_http_config cfg = {
		.max_body = 4096,
		.max_json_depth = 8,
		.jwt_key = key,
		.jwt_key_len = sizeof(key) - 1,
		.jwt_leeway = 30,
	};
	static const struct svc_server_config scfg = {
		.host = "127.0.0.1",
		.port = 0, /* never connected to: inputs come by socketpair */
		.threads = 1,
		.connection_timeout_s = 1,
		.max_connections = 1024, /* some linger: see drain() */
		.max_per_ip = 0,
		.memory_per_connection = 8192,
	};
	struct svc_http *http;

	svc_log_init("fuzz", SVC_LOG_ERROR, open("/dev/null", O_WRONLY));
	http = svc_http_new(routes, &cfg);
	srv = http != NULL ? svc_server_start(http, &scfg) : NULL;
	if (srv == NULL)
		abort();
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Writes all of data (the server reads as it goes); false on error. */
static bool
write_all(int fd, const uint8_t *data, size_t size)
{
	while (size > 0) {
		ssize_t n = send(fd, data, size, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		size -= (size_t)n;
	}
	return true;
}

/*
 * Reads until the server closes, or until it has been quiet for IDLE_MS:
 * libmicrohttpd 0.9.75 (epoll) may miss the half-close of a client whose
 * request is incomplete and wait for its idle timeout, so we give up on
 * such a connection (closing our end; the server drops it at its timeout).
 * False when the server kept sending for READ_DEADLINE_MS.
 */
static bool
drain(int fd)
{
	long long deadline = now_ms() + READ_DEADLINE_MS;
	char buf[4096];
	bool verbose = getenv("FUZZ_VERBOSE") != NULL;

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int ready;

		if (left <= 0)
			return false;
		ready = poll(&pfd, 1, left < IDLE_MS ? (int)left : IDLE_MS);
		if (ready == 0)
			return true; /* quiet: see above */
		if (ready < 0 && errno != EINTR)
			return false;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return true;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return true; /* reset: closed as well */
		if (n > 0 && verbose)
			fprintf(stderr, "%.*s", (int)n, buf);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (srv == NULL)
		start();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (svc__server_add_connection(srv, sv[1]) != 0) {
		close(sv[0]);
		return 0;
	}
	/* The server may close early (a 413, a malformed request line), so a
	 * failed write is fine; the half-close tells it the request ended. */
	if (write_all(sv[0], data, size))
		shutdown(sv[0], SHUT_WR);
	if (!drain(sv[0])) {
		fprintf(stderr, "the server kept sending\n");
		abort();
	}
	close(sv[0]);
	return 0;
}
