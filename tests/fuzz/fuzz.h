/*
 * fuzz.h - what the request-driven fuzz targets share: turning fuzz input
 * into a svc_req the pipeline can run. Not a test framework.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "svc/http.h"

#define FUZZ_MAX_BODY (16 * 1024) /* the pipeline's max_body too */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A request from input laid out as text: the method on the first line,
 * the path (with its query) on the second, then "Name: value" header
 * lines up to an empty line, then the body. bearer (may be NULL) is sent
 * as the Authorization header unless the input has one. Returns a new
 * request, or NULL when the input has no path line.
 */
struct svc_req *fuzz_req(const uint8_t *data, size_t size, const char *bearer);

/* With FUZZ_VERBOSE set, prints res's status and body to stderr. */
void fuzz_show(const struct svc_res *res);

/*
 * The pipeline the request targets drive: routes, tokens verified with
 * key, the log silenced. Aborts when it cannot be built.
 */
struct svc_http *fuzz_http(const struct svc_route *routes,
			   const unsigned char *key, size_t key_len);

/* Runs req (NULL: nothing) through http, then frees it; returns 0. */
int fuzz_run(struct svc_http *http, struct svc_req *req);

#endif
