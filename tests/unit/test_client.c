/*
 * test_client.c - unit tests for client.c. A client can only be tested
 * against a server, so these tests start a tiny HTTP/1.1 server of their
 * own on 127.0.0.1 (an ephemeral port, plain sockets, one poll(2) thread).
 * It is a test fixture standing in for a peer service, not a model of one:
 * its paths produce on demand the faults a real service cannot easily be
 * made to show - an answer that never comes, a body over the cap, a
 * connection closed or reset mid-call - and it counts the connections it
 * accepted, so keep-alive reuse can be checked. Refused and unanswered
 * connects need no server: a bound socket that does not listen refuses,
 * and a listener with a full accept queue never completes a handshake.
 * Nothing waits by sleeping; each wait is a call with its own timeout.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "svc/client.h"
#include "svc/config.h"
#include "svc/err.h"
#include "svc/jwt.h"
#include "svc/log.h"
#include "svc/trace.h"
#include "svc/util.h"
#include "unit.h"

static const unsigned char key[] = "unit-client-key-0123456789abcdef-0123456";
#define KEYLEN	     (sizeof(key) - 1)
#define SERVICE	     "unit-client"
#define MAX_RESPONSE 65536

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* --- the fixture: a peer service on loopback --- */

#define MAX_CONNS 16
#define CONN_BUF  16384

struct conn {
	int fd; /* -1: free slot */
	char buf[CONN_BUF];
	size_t len;
	bool hung; /* saw /hang: read and ignore from now on */
};

static struct {
	int lfd, port;
	int wake[2];
	pthread_t thread;
	atomic_int accepted;
	struct conn conns[MAX_CONNS];
} fx;

static int devnull = -1;

static void
send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return; /* the client gave up; that is what some test */
		p += n;
		len -= (size_t)n;
	}
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->hung = false;
}

static void
respond(struct conn *c, const char *status, const char *headers,
	const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n", status,
			 headers, len);

	send_all(c->fd, head, (size_t)n);
	send_all(c->fd, body, len);
}

/* The value of query argument n= in path, or 0. */
static size_t
query_n(const char *path)
{
	const char *q = strstr(path, "?n=");

	return q != NULL ? (size_t)strtoul(q + 3, NULL, 10) : 0;
}

/* A JSON string of exactly n bytes ("xxx...") in a new buffer. */
static char *
json_of_size(size_t n)
{
	char *b = malloc(n + 1);

	ck_assert_ptr_nonnull(b);
	memset(b, 'x', n);
	b[0] = '"';
	b[n - 1] = '"';
	b[n] = '\0';
	return b;
}

/* 200 with what the request looked like: method, path, headers, body. */
static void
echo(struct conn *c, const char *method, const char *path, char *lines,
     const char *body, size_t blen)
{
	json_t *headers = json_object(), *doc;
	char *text, *save = NULL;

	for (char *l = strtok_r(lines, "\r\n", &save); l != NULL;
	     l = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(l, ':'), *v;

		if (colon == NULL)
			continue;
		*colon = '\0';
		for (char *p = l; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		for (v = colon + 1; *v == ' '; v++)
			;
		json_object_set_new(headers, l, json_string(v));
	}
	doc = json_pack("{s:s, s:s, s:o, s:s%}", "method", method, "path", path,
			"headers", headers, "body", body, blen);
	text = json_dumps(doc, JSON_COMPACT);
	respond(c, "200 OK", "Content-Type: application/json\r\n", text,
		strlen(text));
	free(text);
	json_decref(doc);
}

/* Answers one whole request; returns false when the connection is gone. */
static bool
handle(struct conn *c, char *head, const char *body, size_t blen)
{
	char method[16], path[256], *lines = strstr(head, "\r\n");
	size_t n = query_n(head);

	if (sscanf(head, "%15s %255s", method, path) != 2 || lines == NULL) {
		conn_close(c);
		return false;
	}
	if (strcmp(path, "/echo") == 0) {
		echo(c, method, path, lines, body, blen);
	} else if (strcmp(path, "/created") == 0) {
		respond(c, "201 Created",
			"Content-Type: application/json\r\n"
			"Location: /api/v1/things/42\r\n",
			"{\"id\":\"42\"}", 11);
	} else if (strcmp(path, "/unavailable") == 0) {
		static const char problem[] =
			"{\"status\":503,\"error\":\"unavailable\"}";

		respond(c, "503 Service Unavailable",
			"Content-Type: application/problem+json\r\n"
			"retry-after:  7 \r\n",
			problem, sizeof(problem) - 1);
	} else if (strcmp(path, "/retry-date") == 0) {
		char h[96];
		time_t t = time(NULL) + 30;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(h, sizeof(h),
			 "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		respond(c, "503 Service Unavailable", h, "", 0);
	} else if (strcmp(path, "/early") == 0) {
		static const char two[] =
			"HTTP/1.1 103 Early Hints\r\nRetry-After: 99\r\n"
			"Location: /wrong\r\n\r\n"
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

		send_all(c->fd, two, sizeof(two) - 1);
	} else if (strcmp(path, "/text") == 0) {
		respond(c, "200 OK", "Content-Type: text/plain\r\n",
			"hello, not json", 15);
	} else if (strcmp(path, "/hang") == 0) {
		c->hung = true;
	} else if (strncmp(path, "/big?", 5) == 0) {
		char *b = json_of_size(n);

		respond(c, "200 OK", "Content-Type: application/json\r\n", b,
			n);
		free(b);
	} else if (strncmp(path, "/stream?", 8) == 0) {
		/* No length: the body ends when the connection does. */
		static const char h[] =
			"HTTP/1.1 200 OK\r\nConnection: close\r\n"
			"Content-Type: application/json\r\n\r\n";
		char *b = json_of_size(n);

		send_all(c->fd, h, sizeof(h) - 1);
		send_all(c->fd, b, n);
		free(b);
		conn_close(c);
		return false;
	} else if (strcmp(path, "/close") == 0) {
		conn_close(c);
		return false;
	} else if (strcmp(path, "/reset") == 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		conn_close(c); /* RST instead of FIN */
		return false;
	} else {
		respond(c, "404 Not Found", "", "", 0);
	}
	return true;
}

/* Answers every whole request in c's buffer. */
static void
serve_buffer(struct conn *c)
{
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		char *cl;
		size_t head, blen = 0;

		if (end == NULL)
			return;
		*end = '\0';
		head = (size_t)(end - c->buf) + 4;
		cl = strcasestr(c->buf, "\r\nContent-Length:");
		if (cl != NULL)
			blen = (size_t)strtoul(cl + 17, NULL, 10);
		if (c->len < head + blen) {
			*end = '\r';
			return;
		}
		if (!handle(c, c->buf, c->buf + head, blen) || c->hung)
			return;
		memmove(c->buf, c->buf + head + blen, c->len - head - blen);
		c->len -= head + blen;
	}
}

static void
on_readable(struct conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, CONN_BUF - 1 - c->len, 0);

	if (n <= 0) {
		conn_close(c);
		return;
	}
	if (c->hung)
		return; /* never answers; keeps the connection open */
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	serve_buffer(c);
}

static void *
fixture_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd[MAX_CONNS + 2];
		struct conn *slot[MAX_CONNS + 2];
		int n = 2;

		pfd[0] = (struct pollfd){ .fd = fx.wake[0], .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = fx.lfd, .events = POLLIN };
		for (int i = 0; i < MAX_CONNS; i++) {
			if (fx.conns[i].fd < 0)
				continue;
			pfd[n] = (struct pollfd){ .fd = fx.conns[i].fd,
						  .events = POLLIN };
			slot[n++] = &fx.conns[i];
		}
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue;
		if (pfd[0].revents != 0)
			break;
		for (int i = 2; i < n; i++)
			if (pfd[i].revents != 0 && slot[i]->fd == pfd[i].fd)
				on_readable(slot[i]);
		if (pfd[1].revents & POLLIN) {
			int fd = accept(fx.lfd, NULL, NULL);
			int i = 0;

			if (fd < 0)
				continue;
			atomic_fetch_add(&fx.accepted, 1);
			while (i < MAX_CONNS && fx.conns[i].fd >= 0)
				i++;
			if (i == MAX_CONNS)
				close(fd);
			else
				fx.conns[i].fd = fd;
		}
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (fx.conns[i].fd >= 0)
			conn_close(&fx.conns[i]);
	return NULL;
}

/* A TCP socket bound to 127.0.0.1 on an ephemeral port; *port gets it. */
static int
bound_socket(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void
fixture_start(void)
{
	memset(&fx, 0, sizeof(fx));
	for (int i = 0; i < MAX_CONNS; i++)
		fx.conns[i].fd = -1;
	fx.lfd = bound_socket(&fx.port);
	ck_assert_int_eq(listen(fx.lfd, 16), 0);
	ck_assert_int_eq(pipe(fx.wake), 0);
	ck_assert_int_eq(pthread_create(&fx.thread, NULL, fixture_main, NULL),
			 0);
}

static void
fixture_stop(void)
{
	ck_assert_int_eq(write(fx.wake[1], "x", 1), 1);
	pthread_join(fx.thread, NULL);
	close(fx.wake[0]);
	close(fx.wake[1]);
	close(fx.lfd);
}

/* --- client set-up --- */

static const struct svc_client_config config = {
	.service_name = SERVICE,
	.jwt_key = key,
	.jwt_key_len = KEYLEN,
	.connect_timeout_ms = 1000,
	.timeout_ms = 2000,
	.max_response = MAX_RESPONSE,
};

static void
quiet_logs(void)
{
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	svc_log_init("unit-client", SVC_LOG_ERROR, devnull);
}

static void
loud_logs(void)
{
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(devnull);
	devnull = -1;
}

static void
setup(void)
{
	quiet_logs();
	fixture_start();
	ck_assert_int_eq(svc_client_init(&config), SVC_OK);
}

static void
teardown(void)
{
	svc_client_cleanup_all();
	svc__client_set_clock(NULL);
	fixture_stop();
	loud_logs();
}

/*
 * The fixture's URL for path, in a buffer of the calling thread's own:
 * the threaded tests call at once (one shared buffer, rewritten under
 * another thread's read, once made a call see an empty URL).
 */
static const char *
url(const char *path)
{
	static _Thread_local char buf[300];

	snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", fx.port, path);
	return buf;
}

static int
call(const char *method, const char *path, struct svc_client_response *res)
{
	struct svc_client_request req = { .method = method, .url = url(path) };

	return svc_client_do(&req, res);
}

/* A header the fixture's /echo saw (borrowed from res), or NULL. */
static const char *
seen(const struct svc_client_response *res, const char *name)
{
	return json_string_value(
		json_object_get(json_object_get(res->json, "headers"), name));
}

/* Checks an "Authorization: Bearer" value as a peer would, at now. */
static void
check_token(const char *auth, long long now, struct svc_jwt_claims *claims)
{
	const char *why = NULL;

	ck_assert_ptr_nonnull(auth);
	ck_assert_msg(strncmp(auth, "Bearer ", 7) == 0, "got %s", auth);
	ck_assert_msg(svc_jwt_verify(auth + 7, key, KEYLEN, now, 0, claims,
				     &why) == SVC_OK,
		      "token refused: %s", why);
	ck_assert_str_eq(claims->role, "service");
	ck_assert_str_eq(claims->sub, SERVICE);
	ck_assert_int_eq(claims->exp - claims->iat, SVC_CLIENT_TOKEN_TTL);
}

/* --- what a call sends --- */

START_TEST(test_get_forwards_context)
{
	struct svc_client_response res;
	struct svc_client_request req = {
		.url = url("/echo"),
		.request_id = "req-1234",
		.traceparent = TRACEPARENT,
	};
	struct svc_jwt_claims claims;

	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_int_eq(res.status, 200);
	ck_assert_str_eq(res.error, "");
	ck_assert_ptr_nonnull(res.json);
	ck_assert_uint_eq(res.len, strlen(res.body));
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "method")),
			 "GET");
	ck_assert_str_eq(seen(&res, "x-request-id"), "req-1234");
	/* The caller's trace, under a span of the call's own. */
	ck_assert_int_eq(strncmp(seen(&res, "traceparent"), TRACEPARENT, 36),
			 0);
	ck_assert_str_ne(seen(&res, "traceparent"), TRACEPARENT);
	ck_assert(svc_trace_valid(seen(&res, "traceparent")));
	ck_assert_str_eq(seen(&res, "accept"), "application/json");
	ck_assert_ptr_null(seen(&res, "content-type"));
	ck_assert_ptr_null(seen(&res, "content-length"));
	ck_assert_ptr_nonnull(strstr(seen(&res, "user-agent"), SERVICE));
	check_token(seen(&res, "authorization"), svc_time_s(), &claims);
	ck_assert_int_le(claims.iat, svc_time_s());
	svc_client_response_cleanup(&res);
	ck_assert_ptr_null(res.body);
	ck_assert_ptr_null(res.json);
}
END_TEST

START_TEST(test_bodies)
{
	struct svc_client_response res;
	struct svc_client_request req = {
		.method = "POST",
		.url = url("/echo"),
		.body = "{\"a\":1}",
	};
	json_t *value = json_pack("{s:i}", "b", 2);
	json_t *sent;

	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "method")),
			 "POST");
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "body")),
			 "{\"a\":1}");
	ck_assert_str_eq(seen(&res, "content-type"), "application/json");
	ck_assert_ptr_null(seen(&res, "expect"));
	svc_client_response_cleanup(&res);

	/* A JSON value is sent compact, with another method. */
	req.method = "PUT";
	req.body = NULL;
	req.json = value;
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "method")),
			 "PUT");
	sent = json_loads(json_string_value(json_object_get(res.json, "body")),
			  0, NULL);
	ck_assert(json_equal(sent, value));
	json_decref(sent);
	ck_assert_int_eq(value->refcount, 1); /* borrowed, not stolen */
	svc_client_response_cleanup(&res);
	json_decref(value);

	/* No body: no Content-Type, not even libcurl's form default. */
	req.method = "DELETE";
	req.json = NULL;
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "method")),
			 "DELETE");
	ck_assert_ptr_null(seen(&res, "content-type"));
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "body")),
			 "");
	svc_client_response_cleanup(&res);

	req.method = "POST";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_ptr_null(seen(&res, "content-type"));
	ck_assert_str_eq(seen(&res, "content-length"), "0");
	svc_client_response_cleanup(&res);
}
END_TEST

START_TEST(test_extra_headers)
{
	static const char *const headers[] = { "If-Match: \"3\"",
					       "Idempotency-Key: k-1", NULL };
	struct svc_client_response res;
	struct svc_client_request req = { .url = url("/echo"),
					  .headers = headers };

	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_str_eq(seen(&res, "if-match"), "\"3\"");
	ck_assert_str_eq(seen(&res, "idempotency-key"), "k-1");
	svc_client_response_cleanup(&res);
}
END_TEST

/* Context that is not well-formed is left out rather than passed on. */
START_TEST(test_bad_context_dropped)
{
	static const char *const bad_trace[] = {
		TRACEPARENT "\r\nX-Evil: 1",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"",
	};
	struct svc_client_response res;
	struct svc_client_request req = { .url = url("/echo") };

	for (unsigned i = 0; i < sizeof(bad_trace) / sizeof(*bad_trace); i++) {
		req.traceparent = bad_trace[i];
		req.request_id = i % 2 ? "has space" : "bad\r\nX-Evil: 1";
		ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
		ck_assert_msg(seen(&res, "traceparent") == NULL, "forwarded %s",
			      bad_trace[i]);
		ck_assert_ptr_null(seen(&res, "x-request-id"));
		ck_assert_ptr_null(seen(&res, "x-evil"));
		svc_client_response_cleanup(&res);
	}

	/* A later version may carry more fields. The call is a span of its
	 * own in the caller's trace: same trace id and flags, a new span id
	 * (version 00, what we speak). */
	req.traceparent =
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ext";
	req.request_id = "a-b_c.d:e/f+g=h";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert(svc_trace_valid(seen(&res, "traceparent")));
	ck_assert_int_eq(strncmp(seen(&res, "traceparent"),
				 "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36),
			 0);
	ck_assert_str_ne(seen(&res, "traceparent") + 36, "00f067aa0ba902b7-01");
	ck_assert_str_eq(seen(&res, "traceparent") + 52, "-01");
	ck_assert_str_eq(seen(&res, "x-request-id"), req.request_id);
	svc_client_response_cleanup(&res);
}
END_TEST

START_TEST(test_invalid_requests)
{
	static const char *const crlf[] = { "X-A: 1\r\nX-Evil: 1", NULL };
	static const char *const noname[] = { ": value", NULL };
	static const char *const nocolon[] = { "X-A 1", NULL };
	struct svc_client_response res;
	struct svc_client_request req = { .url = url("/echo") };
	int before = atomic_load(&fx.accepted);

	ck_assert_int_eq(svc_client_do(&(struct svc_client_request){ 0 }, &res),
			 SVC_EINVAL);
	ck_assert_str_eq(res.error, "no URL");
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(svc_client_do(NULL, &res), SVC_EINVAL);
	req.method = "G ET";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.method = "get";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.method = "POST";
	req.body = "{}";
	req.json = json_object();
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	json_decref(req.json);
	req.json = NULL;
	req.method = "HEAD";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.method = NULL;
	req.body = NULL;
	req.headers = crlf;
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.headers = noname;
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.headers = nocolon;
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.headers = NULL;
	req.timeout_ms = -1;
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	req.timeout_ms = 0;
	/* Only http and https: no file://, no gopher://. */
	req.url = "file:///etc/passwd";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	ck_assert_ptr_null(res.body);
	ck_assert_int_eq(res.status, 0);
	ck_assert_str_ne(res.error, "");
	req.url = "http://[::1";
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EINVAL);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(atomic_load(&fx.accepted), before);
}
END_TEST

/* --- what comes back --- */

START_TEST(test_status_is_not_an_error)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/unavailable", &res), SVC_OK);
	ck_assert_int_eq(res.status, 503);
	ck_assert_str_eq(res.retry_after, "7");
	ck_assert_int_eq(res.retry_after_s, 7);
	ck_assert_int_eq(
		json_integer_value(json_object_get(res.json, "status")), 503);
	ck_assert_ptr_null(res.location);
	svc_client_response_cleanup(&res);

	ck_assert_int_eq(call("GET", "/nowhere", &res), SVC_OK);
	ck_assert_int_eq(res.status, 404);
	ck_assert_str_eq(res.body, "");
	ck_assert_uint_eq(res.len, 0);
	ck_assert_ptr_null(res.json);
	ck_assert_str_eq(res.retry_after, "");
	ck_assert_int_eq(res.retry_after_s, -1);
	svc_client_response_cleanup(&res);

	ck_assert_int_eq(call("POST", "/created", &res), SVC_OK);
	ck_assert_int_eq(res.status, 201);
	ck_assert_str_eq(res.location, "/api/v1/things/42");
	ck_assert_str_eq(json_string_value(json_object_get(res.json, "id")),
			 "42");
	svc_client_response_cleanup(&res);
	ck_assert_ptr_null(res.location);
}
END_TEST

START_TEST(test_retry_after_date)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/retry-date", &res), SVC_OK);
	ck_assert_int_eq(res.status, 503);
	ck_assert_ptr_nonnull(strstr(res.retry_after, "GMT"));
	ck_assert_int_ge(res.retry_after_s, 25);
	ck_assert_int_le(res.retry_after_s, 31);
	svc_client_response_cleanup(&res);
}
END_TEST

/* Headers of an interim 1xx answer do not leak into the final one. */
START_TEST(test_interim_headers_forgotten)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/early", &res), SVC_OK);
	ck_assert_int_eq(res.status, 200);
	ck_assert_str_eq(res.retry_after, "");
	ck_assert_int_eq(res.retry_after_s, -1);
	ck_assert_ptr_null(res.location);
	ck_assert_ptr_nonnull(res.json);
	svc_client_response_cleanup(&res);
}
END_TEST

START_TEST(test_not_json)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/text", &res), SVC_OK);
	ck_assert_int_eq(res.status, 200);
	ck_assert_str_eq(res.body, "hello, not json");
	ck_assert_ptr_null(res.json);
	svc_client_response_cleanup(&res);
}
END_TEST

/* --- transport failures --- */

START_TEST(test_timeout)
{
	struct svc_client_response res;
	struct svc_client_request req = { .url = url("/hang"),
					  .timeout_ms = 300 };
	long long t0 = svc_now_ms(), took;

	ck_assert_int_eq(svc_client_do(&req, &res), SVC_ETIMEOUT);
	took = svc_now_ms() - t0;
	ck_assert_msg(took >= 250 && took < 1300, "took %lld ms", took);
	ck_assert_int_eq(res.status, 0);
	ck_assert_ptr_null(res.body);
	ck_assert_str_ne(res.error, "");
	svc_client_response_cleanup(&res);

	/* The thread's handle is still good. */
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	ck_assert_int_eq(res.status, 200);
	svc_client_response_cleanup(&res);
}
END_TEST

/*
 * A listener with backlog 0 whose queue one connection fills: the kernel
 * drops further SYNs, so a connect neither completes nor fails - a peer
 * behind a black hole. The connect timeout ends the call, well before the
 * total timeout would.
 */
START_TEST(test_connect_timeout)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct svc_client_response res;
	char u[64];
	struct svc_client_request req = { .url = u,
					  .connect_timeout_ms = 200,
					  .timeout_ms = 3000 };
	int port, lfd = bound_socket(&port), filler;
	long long t0, took;

	ck_assert_int_eq(listen(lfd, 0), 0);
	filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", port);

	t0 = svc_now_ms();
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_ETIMEOUT);
	took = svc_now_ms() - t0;
	ck_assert_msg(took >= 150 && took < 1200, "took %lld ms", took);
	svc_client_response_cleanup(&res);
	close(filler);
	close(lfd);
}
END_TEST

/* A bound socket that does not listen answers a SYN with a RST. */
START_TEST(test_refused)
{
	struct svc_client_response res;
	char u[64];
	struct svc_client_request req = { .url = u };
	int port, fd = bound_socket(&port);
	long long t0 = svc_now_ms();

	snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", port);
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EUNAVAIL);
	ck_assert_int_lt(svc_now_ms() - t0, 500);
	ck_assert_int_eq(res.status, 0);
	ck_assert_str_ne(res.error, "");
	svc_client_response_cleanup(&res);
	close(fd);
}
END_TEST

START_TEST(test_closed_and_reset)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/close", &res), SVC_EUNAVAIL);
	ck_assert_str_ne(res.error, "");
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(call("GET", "/reset", &res), SVC_EUNAVAIL);
	ck_assert_str_ne(res.error, "");
	svc_client_response_cleanup(&res);
	/* After a good call too: the reused connection dies under it. */
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(call("GET", "/close", &res), SVC_EUNAVAIL);
	svc_client_response_cleanup(&res);
}
END_TEST

START_TEST(test_size_cap)
{
	struct svc_client_response res;
	struct svc_client_request req = { .max_response = 1024 };
	char path[64];

	/* Exactly the cap is fine, one byte more is not. */
	req.url = url("/big?n=1024");
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_uint_eq(res.len, 1024);
	ck_assert_ptr_nonnull(res.json);
	svc_client_response_cleanup(&res);
	req.url = url("/big?n=1025");
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EUNAVAIL);
	ck_assert_str_eq(res.error, "response larger than 1024 bytes");
	ck_assert_ptr_null(res.body);
	svc_client_response_cleanup(&res);

	/* Without a Content-Length the cap cuts the stream itself. */
	req.url = url("/stream?n=4096");
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EUNAVAIL);
	ck_assert_str_eq(res.error, "response larger than 1024 bytes");
	svc_client_response_cleanup(&res);
	req.max_response = 0; /* the configured cap */
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_uint_eq(res.len, 4096);
	svc_client_response_cleanup(&res);
	snprintf(path, sizeof(path), "/stream?n=%d", MAX_RESPONSE + 1);
	req.url = url(path);
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_EUNAVAIL);
	svc_client_response_cleanup(&res);
	snprintf(path, sizeof(path), "/big?n=%d", MAX_RESPONSE);
	req.url = url(path);
	ck_assert_int_eq(svc_client_do(&req, &res), SVC_OK);
	ck_assert_uint_eq(res.len, MAX_RESPONSE);
	svc_client_response_cleanup(&res);
}
END_TEST

START_TEST(test_curl_errors)
{
	ck_assert_int_eq(svc__client_curl_error(CURLE_OK), SVC_OK);
	ck_assert_int_eq(svc__client_curl_error(CURLE_OPERATION_TIMEDOUT),
			 SVC_ETIMEOUT);
	ck_assert_int_eq(svc__client_curl_error(CURLE_COULDNT_CONNECT),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_COULDNT_RESOLVE_HOST),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_RECV_ERROR),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_SEND_ERROR),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_GOT_NOTHING),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_PARTIAL_FILE),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_WEIRD_SERVER_REPLY),
			 SVC_EUNAVAIL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_URL_MALFORMAT),
			 SVC_EINVAL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_UNSUPPORTED_PROTOCOL),
			 SVC_EINVAL);
	ck_assert_int_eq(svc__client_curl_error(CURLE_OUT_OF_MEMORY),
			 SVC_ENOMEM);
}
END_TEST

/* --- connections and tokens --- */

START_TEST(test_keepalive)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(call("POST", "/created", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(call("GET", "/unavailable", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(atomic_load(&fx.accepted), 1);
	ck_assert_int_eq(svc__client_handles(), 1);

	/* The peer closing the connection costs one new one. */
	ck_assert_int_eq(call("GET", "/stream?n=10", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(atomic_load(&fx.accepted), 2);
}
END_TEST

static long long fake_now;

static long long
fake_clock(void)
{
	return fake_now;
}

/* The Authorization header of one /echo call, copied into out. */
static void
auth_of_call(char *out, size_t size)
{
	struct svc_client_response res;

	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	ck_assert_ptr_nonnull(seen(&res, "authorization"));
	snprintf(out, size, "%s", seen(&res, "authorization"));
	svc_client_response_cleanup(&res);
}

START_TEST(test_token_reused_then_reminted)
{
	char a[600], b[600];
	struct svc_jwt_claims claims;
	const long long t0 = 1700000000LL;

	svc__client_set_clock(fake_clock);
	fake_now = t0;
	auth_of_call(a, sizeof(a));
	check_token(a, fake_now, &claims);
	ck_assert_int_eq(claims.iat, t0);

	/* 61 s of validity left: still the same token. */
	fake_now = t0 + SVC_CLIENT_TOKEN_TTL - SVC_CLIENT_TOKEN_REFRESH - 1;
	auth_of_call(b, sizeof(b));
	ck_assert_str_eq(a, b);

	/* 59 s left: a new one. */
	fake_now = t0 + SVC_CLIENT_TOKEN_TTL - SVC_CLIENT_TOKEN_REFRESH + 1;
	auth_of_call(b, sizeof(b));
	ck_assert_str_ne(a, b);
	check_token(b, fake_now, &claims);
	ck_assert_int_eq(claims.iat, fake_now);

	/* The clock went back past iat: peers would refuse it, so re-mint. */
	memcpy(a, b, sizeof(a));
	fake_now = t0 - 100;
	auth_of_call(b, sizeof(b));
	ck_assert_str_ne(a, b);
	check_token(b, fake_now, &claims);
	ck_assert_int_eq(claims.iat, t0 - 100);
}
END_TEST

START_TEST(test_token_reused_real_clock)
{
	char a[600], b[600];
	struct svc_jwt_claims claims;

	auth_of_call(a, sizeof(a));
	auth_of_call(b, sizeof(b));
	ck_assert_str_eq(a, b);
	check_token(a, svc_time_s(), &claims);
}
END_TEST

#define WORKERS 4
#define ROUNDS	5

struct worker {
	pthread_t thread;
	pthread_barrier_t *barrier;
	bool again; /* (cleanup test) call once more after the barrier */
	int failures;
	char auth[600];
};

static void
worker_call(struct worker *w)
{
	struct svc_client_response res;

	if (call("GET", "/echo", &res) != SVC_OK || res.status != 200 ||
	    seen(&res, "authorization") == NULL)
		w->failures++;
	else
		snprintf(w->auth, sizeof(w->auth), "%s",
			 seen(&res, "authorization"));
	svc_client_response_cleanup(&res);
}

/* ROUNDS calls, then waits until main has counted the handles. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < ROUNDS; i++)
		worker_call(w);
	pthread_barrier_wait(w->barrier);
	pthread_barrier_wait(w->barrier);
	return NULL;
}

/*
 * Threads share one token and each has its own handle, which is freed
 * when the thread exits, not only at svc_client_cleanup_all().
 */
START_TEST(test_threads)
{
	struct worker w[WORKERS];
	pthread_barrier_t barrier;
	char mine[600];

	auth_of_call(mine, sizeof(mine));
	ck_assert_int_eq(svc__client_handles(), 1);
	pthread_barrier_init(&barrier, NULL, WORKERS + 1);
	for (int i = 0; i < WORKERS; i++) {
		w[i] = (struct worker){ .barrier = &barrier };
		ck_assert_int_eq(
			pthread_create(&w[i].thread, NULL, worker_main, &w[i]),
			0);
	}
	pthread_barrier_wait(&barrier);
	ck_assert_int_eq(svc__client_handles(), WORKERS + 1);
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(w[i].thread, NULL);
		ck_assert_int_eq(w[i].failures, 0);
		ck_assert_str_eq(w[i].auth, mine);
	}
	ck_assert_int_eq(svc__client_handles(), 1);
	pthread_barrier_destroy(&barrier);
}
END_TEST

/* One call, wait for main's cleanup and re-init, maybe call again. */
static void *
survivor_main(void *arg)
{
	struct worker *w = arg;

	worker_call(w);
	pthread_barrier_wait(w->barrier);
	pthread_barrier_wait(w->barrier);
	if (w->again)
		worker_call(w);
	return NULL;
}

/*
 * Threads that outlive svc_client_cleanup_all(): their old handles are
 * gone, so one that calls again gets a new handle (never the freed one),
 * and one that exits does not free its old handle a second time. Under
 * the sanitizer build either mistake is a hard failure.
 */
START_TEST(test_cleanup_with_live_threads)
{
	struct worker w[2];
	pthread_barrier_t barrier;
	struct svc_client_response res;

	pthread_barrier_init(&barrier, NULL, 3);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ .barrier = &barrier, .again = i == 0 };
		ck_assert_int_eq(pthread_create(&w[i].thread, NULL,
						survivor_main, &w[i]),
				 0);
	}
	pthread_barrier_wait(&barrier);
	ck_assert_int_eq(svc__client_handles(), 2);
	svc_client_cleanup_all();
	ck_assert_int_eq(svc__client_handles(), 0);
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_EINVAL);
	ck_assert_str_eq(res.error, "client not initialised");
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(svc_client_init(&config), SVC_OK);
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < 2; i++) {
		pthread_join(w[i].thread, NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	ck_assert_int_eq(svc__client_handles(), 0);
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	svc_client_response_cleanup(&res);
	ck_assert_int_eq(svc__client_handles(), 1);
	pthread_barrier_destroy(&barrier);
}
END_TEST

/* --- set-up --- */

START_TEST(test_init_checks)
{
	struct svc_client_config c = config;
	struct svc_client_response res;
	char long_name[200];

	/* Never set up: calls fail cleanly, cleanup is harmless. */
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_EINVAL);
	svc_client_response_cleanup(&res);
	svc_client_cleanup_all();
	svc_client_response_cleanup(NULL);

	c.jwt_key_len = SVC_JWT_MIN_KEY - 1;
	ck_assert_int_eq(svc_client_init(&c), SVC_EINVAL);
	c = config;
	c.service_name = NULL;
	ck_assert_int_eq(svc_client_init(&c), SVC_EINVAL);
	c.service_name = "";
	ck_assert_int_eq(svc_client_init(&c), SVC_EINVAL);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	c.service_name = long_name;
	ck_assert_int_eq(svc_client_init(&c), SVC_EINVAL);
	ck_assert_int_eq(svc_client_init(NULL), SVC_EINVAL);

	/* Zeroes take the defaults; a second init is refused. */
	c = config;
	c.connect_timeout_ms = c.timeout_ms = 0;
	c.max_response = 0;
	ck_assert_int_eq(svc_client_init(&c), SVC_OK);
	ck_assert_int_eq(svc_client_init(&c), SVC_EINVAL);
	ck_assert_int_eq(call("GET", "/echo", &res), SVC_OK);
	svc_client_response_cleanup(&res);
}
END_TEST

static void
setup_uninit(void)
{
	quiet_logs();
	fixture_start();
}

static void
clear_config_keys(void)
{
	unsetenv("HTTP_CLIENT_CONNECT_TIMEOUT");
	unsetenv("HTTP_CLIENT_TIMEOUT");
	unsetenv("HTTP_CLIENT_MAX_RESPONSE");
	svc_config_reset();
}

START_TEST(test_config_read)
{
	struct svc_client_config c = { .service_name = "kept" };

	clear_config_keys();
	svc_client_config_read(&c);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(c.connect_timeout_ms, 1000);
	ck_assert_int_eq(c.timeout_ms, 3000);
	ck_assert_uint_eq(c.max_response, 1048576);
	ck_assert_str_eq(c.service_name, "kept");

	setenv("HTTP_CLIENT_CONNECT_TIMEOUT", "250ms", 1);
	setenv("HTTP_CLIENT_TIMEOUT", "2s", 1);
	setenv("HTTP_CLIENT_MAX_RESPONSE", "2048", 1);
	svc_client_config_read(&c);
	ck_assert(svc_config_ok());
	ck_assert_int_eq(c.connect_timeout_ms, 250);
	ck_assert_int_eq(c.timeout_ms, 2000);
	ck_assert_uint_eq(c.max_response, 2048);

	setenv("HTTP_CLIENT_TIMEOUT", "soon", 1);
	svc_client_config_read(&c);
	ck_assert(!svc_config_ok());
	ck_assert_ptr_nonnull(
		strstr(svc_config_error(), "HTTP_CLIENT_TIMEOUT"));
	clear_config_keys();
}
END_TEST

Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *send = tcase_create("send");
	TCase *answer = tcase_create("answer");
	TCase *fault = tcase_create("fault");
	TCase *reuse = tcase_create("reuse");
	TCase *init = tcase_create("init");

	tcase_add_checked_fixture(send, setup, teardown);
	tcase_add_test(send, test_get_forwards_context);
	tcase_add_test(send, test_bodies);
	tcase_add_test(send, test_extra_headers);
	tcase_add_test(send, test_bad_context_dropped);
	tcase_add_test(send, test_invalid_requests);
	suite_add_tcase(s, send);

	tcase_add_checked_fixture(answer, setup, teardown);
	tcase_add_test(answer, test_status_is_not_an_error);
	tcase_add_test(answer, test_retry_after_date);
	tcase_add_test(answer, test_interim_headers_forgotten);
	tcase_add_test(answer, test_not_json);
	suite_add_tcase(s, answer);

	tcase_add_checked_fixture(fault, setup, teardown);
	tcase_add_test(fault, test_timeout);
	tcase_add_test(fault, test_connect_timeout);
	tcase_add_test(fault, test_refused);
	tcase_add_test(fault, test_closed_and_reset);
	tcase_add_test(fault, test_size_cap);
	tcase_add_test(fault, test_curl_errors);
	suite_add_tcase(s, fault);

	tcase_add_checked_fixture(reuse, setup, teardown);
	tcase_add_test(reuse, test_keepalive);
	tcase_add_test(reuse, test_token_reused_then_reminted);
	tcase_add_test(reuse, test_token_reused_real_clock);
	tcase_add_test(reuse, test_threads);
	tcase_add_test(reuse, test_cleanup_with_live_threads);
	suite_add_tcase(s, reuse);

	tcase_add_checked_fixture(init, setup_uninit, teardown);
	tcase_add_test(init, test_init_checks);
	tcase_add_test(init, test_config_read);
	suite_add_tcase(s, init);
	return s;
}
