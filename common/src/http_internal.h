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

#endif
