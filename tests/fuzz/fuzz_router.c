/*
 * fuzz_router.c - libFuzzer target for the router and query parsing: a
 * request built from the input (see fuzz.h) runs through svc_http_handle()
 * over a route table shaped like the services' (literal segments,
 * {params}, a param mid-path, GET and HEAD, 405 with Allow), with handlers
 * that only read what the router produced - path parameters, query
 * arguments, svc_query_int() and the page cursor of svc_page_params().
 * Bearer tokens are not minted here; fuzz_jwt covers them.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "svc/page.h"

static const unsigned char key[] = "fuzz-router-key-0123456789abcdefghijkl";

static int
h_item(struct svc_req *req, struct svc_res *res)
{
	const char *id = svc_req_param(req, "id");
	const char *action = svc_req_param(req, "action");

	return svc_res_json(res, 200,
			    json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", id,
				      "action", action, "q",
				      svc_req_query(req, "q"), "route",
				      svc_req_route(req)));
}

static int
h_list(struct svc_req *req, struct svc_res *res)
{
	long long limit, n;
	const char *created_at, *id;
	int rc = svc_page_params(req, res, 20, 100, &limit, &created_at, &id);

	if (rc != 0)
		return rc;
	rc = svc_query_int(req, res, "n", 0, -5, 5, &n);
	if (rc != 0)
		return rc;
	return svc_res_json(res, 200,
			    json_pack("{s:I, s:s?, s:s?, s:I}", "limit", limit,
				      "created_at", created_at, "id", id, "n",
				      n));
}

static int
h_empty(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_empty(res, 204);
}

static const struct svc_route routes[] = {
	{ "GET", "/api/v1/products", h_list, 0 },
	{ "POST", "/api/v1/products", h_item, 0 },
	{ "GET", "/api/v1/products/{id}", h_item, 0 },
	{ "PATCH", "/api/v1/products/{id}", h_item, 0 },
	{ "DELETE", "/api/v1/products/{id}", h_empty, 0 },
	{ "POST", "/api/v1/reservations/{id}/{action}", h_item, 0 },
	{ "GET", "/api/v1/inventory/{id}/history", h_list, 0 },
	{ "GET", "/health", h_empty, SVC_ROUTE_OPS },
	{ 0 },
};

static struct svc_http *http;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (http == NULL)
		http = fuzz_http(routes, key, sizeof(key) - 1);
	return fuzz_run(http, fuzz_req(data, size, NULL));
}
