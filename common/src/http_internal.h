/*
 * http_internal.h - what the libmicrohttpd adapter needs from the
 * socket-free request pipeline, and nothing a handler should touch.
 */
#ifndef SVC_HTTP_INTERNAL_H
#define SVC_HTTP_INTERNAL_H

#include "svc/http.h"

/* Marks the body as over the limit: the pipeline answers 413. */
void svc__req_set_too_big(struct svc_req *req);

/* Moves the body out of res (caller frees it with free()). */
char *svc__res_take_body(struct svc_res *res, size_t *len);

/* The pipeline configuration (borrowed). */
const struct svc_http_config *svc__http_config(const struct svc_http *http);

/*
 * Decodes %XX in place, '+' too when plus is set (query strings), but
 * leaves "%00" encoded; returns the new length. The server's unescape
 * callback and svc_req_new()'s query parser both use it.
 */
size_t svc__url_unescape(char *s, bool plus);

struct svc_server;

/*
 * Hands the connected socket fd to srv as if it had been accepted from
 * 127.0.0.1 (the fuzz target feeds raw requests through a socketpair this
 * way). srv owns fd afterwards, even on failure. Returns 0 or SVC_EINVAL.
 */
int svc__server_add_connection(struct svc_server *srv, int fd);

#endif
