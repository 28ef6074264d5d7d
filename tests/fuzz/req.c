/*
 * req.c - fuzz_req(): fuzz input to svc_req, the same way the server
 * adapter fills one (headers copied, query split off by svc_req_new(),
 * body appended under the limit). It parses no HTTP wire format; the
 * libmicrohttpd target does that.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "svc/log.h"

/* The next line of [*p, end) as a string in buf, or NULL at the end. */
static char *
next_line(const char **p, const char *end, char *buf, size_t size)
{
	const char *nl;
	size_t len;

	if (*p >= end)
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	len = (size_t)((nl ? nl : end) - *p);
	if (len >= size)
		len = size - 1;
	memcpy(buf, *p, len);
	buf[len] = '\0';
	/* Embedded NULs end the string early, as a C header would. */
	*p = nl ? nl + 1 : end;
	return buf;
}

struct svc_req *
fuzz_req(const uint8_t *data, size_t size, const char *bearer)
{
	const char *p = (const char *)data, *end = p + size;
	char method[64], path[4096], line[4096];
	struct svc_req *req;
	bool has_auth = false;

	if (next_line(&p, end, method, sizeof(method)) == NULL ||
	    next_line(&p, end, path, sizeof(path)) == NULL)
		return NULL;
	req = svc_req_new(method, path);
	while (next_line(&p, end, line, sizeof(line)) != NULL &&
	       line[0] != '\0') {
		char *colon = strchr(line, ':');

		if (colon == NULL)
			continue;
		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		if (strcasecmp(line, "Authorization") == 0)
			has_auth = true;
		svc_req_add_header(req, line, colon);
	}
	if (bearer != NULL && !has_auth)
		svc_req_add_header(req, "Authorization", bearer);
	if (p < end) /* past the limit the pipeline answers 413 */
		svc_req_append_body(req, p, (size_t)(end - p), FUZZ_MAX_BODY);
	svc_req_set_peer(req, "127.0.0.1");
	return req;
}

void
fuzz_show(const struct svc_res *res)
{
	static int verbose = -1;
	const char *body;
	size_t len;

	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (!verbose)
		return;
	body = svc_res_body(res, &len);
	fprintf(stderr, "%d %.*s\n", svc_res_status(res), (int)len,
		body ? body : "");
}

struct svc_http *
fuzz_http(const struct svc_route *routes, const unsigned char *key,
	  size_t key_len)
{
	const struct svc_http_config cfg = {
		.max_body = FUZZ_MAX_BODY,
		.max_json_depth = 8,
		.jwt_key = key,
		.jwt_key_len = key_len,
		.jwt_leeway = 30,
	};
	struct svc_http *http;

	svc_log_init("fuzz", SVC_LOG_ERROR, open("/dev/null", O_WRONLY));
	http = svc_http_new(routes, &cfg);
	if (http == NULL)
		abort();
	return http;
}

int
fuzz_run(struct svc_http *http, struct svc_req *req)
{
	struct svc_res *res;

	if (req == NULL)
		return 0;
	res = svc_res_new();
	svc_http_handle(http, req, res);
	fuzz_show(res);
	svc_res_free(res);
	svc_req_free(req);
	return 0;
}
