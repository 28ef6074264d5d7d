/*
 * faults_admin.c - the /admin/faults routes: GET lists the active faults
 * (and what they may target here), PUT sets one fault by name or replaces
 * the whole set, DELETE clears one or all. Admin token only; app.c adds
 * the routes only when FAULTS=on, so otherwise they are a plain 404. Every
 * document is validated whole before anything changes (422 with each
 * invalid member named). These routes carry SVC_ROUTE_NOFAULT: no fault
 * ever slows or fails them, so a person can always look and undo. The
 * documents themselves are faults_spec.c's, the table faults.c's.
 */
#include <stdio.h>
#include <string.h>

#include "faults_internal.h"
#include "svc/err.h"

/* The sub of the admin token: who set or cleared a fault, for the log. */
static const char *
who(const struct svc_req *req)
{
	const struct svc_jwt_claims *c = svc_req_claims(req);

	return c != NULL ? c->sub : "unknown";
}

static int
no_such_fault(struct svc_res *res, const char *name)
{
	return svc_res_problem(res, 404, "not_found",
			       "no active fault is called \"%.64s\"", name);
}

/* GET /admin/faults: {"faults":[...],"targets":{...}} */
static int
faults_list(struct svc_req *req, struct svc_res *res)
{
	(void)req;
	return svc_res_json(res, 200, svc__faults_list());
}

/* GET /admin/faults/{name} */
static int
faults_show(struct svc_req *req, struct svc_res *res)
{
	const char *name = svc_req_param(req, "name");
	json_t *doc = svc__faults_get(name);

	if (doc == NULL)
		return no_such_fault(res, name);
	return svc_res_json(res, 200, doc);
}

/* PUT /admin/faults/{name}: sets or replaces one fault; 201 or 200. */
static int
faults_set(struct svc_req *req, struct svc_res *res)
{
	const char *name = svc_req_param(req, "name");
	struct svc_fault_targets t;
	const char *upstreams[SVC_FAULTS_MAX_UPSTREAMS];
	struct svc_fault f;
	bool created = false;
	int rc;

	if (!svc__faults_name_valid(name)) {
		svc_res_field_error(res, "name",
				    "must be 1 to 64 of A-Z a-z 0-9 . _ -");
		return SVC_EVALIDATION;
	}
	svc__faults_targets(&t, upstreams);
	if (!svc__faults_parse(svc_req_json(req), name, "", &t, &f, res))
		return SVC_EVALIDATION;
	rc = svc__faults_set(&f, 1, false, who(req), &created);
	if (rc == SVC_ECONFLICT)
		return svc_res_problem(res, 409, "too_many_faults",
				       "at most %d faults may be active at "
				       "once; clear one first",
				       SVC_FAULTS_MAX);
	if (rc != SVC_OK)
		return rc;
	return svc_res_json(res, created ? 201 : 200, svc__faults_get(name));
}

/* The "faults" list of a PUT /admin/faults, read into out (n of them). */
static bool
read_list(struct svc_res *res, json_t *body, struct svc_fault *out, int *n)
{
	const char *upstreams[SVC_FAULTS_MAX_UPSTREAMS], *key;
	json_t *list = json_object_get(body, "faults"), *item;
	struct svc_fault_targets t;
	char prefix[32];
	size_t i;

	*n = 0;
	json_object_foreach(body, key, item)
	{
		if (strcmp(key, "faults") != 0)
			svc_res_field_error(res, key,
					    "is not a member; the body is "
					    "{\"faults\":[...]}");
	}
	if (!json_is_array(list) || json_array_size(list) > SVC_FAULTS_MAX) {
		svc_res_field_error(res, "faults",
				    "must be an array of at most %d faults",
				    SVC_FAULTS_MAX);
		return false;
	}
	svc__faults_targets(&t, upstreams);
	json_array_foreach(list, i, item)
	{
		snprintf(prefix, sizeof(prefix), "faults[%zu]", i);
		if (!svc__faults_parse(item, NULL, prefix, &t, &out[i], res))
			continue;
		for (size_t j = 0; j < i; j++)
			if (strcmp(out[j].name, out[i].name) == 0)
				svc_res_field_error(
					res, prefix,
					"has the name of faults[%zu], \"%s\"",
					j, out[i].name);
	}
	*n = (int)json_array_size(list);
	return svc_res_field_errors(res) == 0;
}

/* PUT /admin/faults {"faults":[...]}: replaces the whole set; 200. */
static int
faults_replace(struct svc_req *req, struct svc_res *res)
{
	struct svc_fault *faults =
		svc_req_alloc(req, SVC_FAULTS_MAX * sizeof(*faults));
	int n, rc;

	if (!read_list(res, svc_req_json(req), faults, &n))
		return SVC_EVALIDATION;
	rc = svc__faults_set(faults, n, true, who(req), NULL);
	if (rc != SVC_OK)
		return rc;
	return svc_res_json(res, 200, svc__faults_list());
}

/* DELETE /admin/faults: clears every fault; 204. */
static int
faults_clear_all(struct svc_req *req, struct svc_res *res)
{
	svc__faults_clear(NULL, who(req));
	return svc_res_empty(res, 204);
}

/* DELETE /admin/faults/{name}: 204, or 404 when none is called so. */
static int
faults_clear(struct svc_req *req, struct svc_res *res)
{
	const char *name = svc_req_param(req, "name");

	if (svc__faults_clear(name, who(req)) == 0)
		return no_such_fault(res, name);
	return svc_res_empty(res, 204);
}

#define ADMIN (SVC_ROUTE_ADMIN | SVC_ROUTE_NOFAULT)

const struct svc_route svc_faults_routes[] = {
	{ "GET", "/admin/faults", faults_list, ADMIN },
	{ "PUT", "/admin/faults", faults_replace, ADMIN | SVC_ROUTE_BODY },
	{ "DELETE", "/admin/faults", faults_clear_all, ADMIN },
	{ "GET", "/admin/faults/{name}", faults_show, ADMIN },
	{ "PUT", "/admin/faults/{name}", faults_set, ADMIN | SVC_ROUTE_BODY },
	{ "DELETE", "/admin/faults/{name}", faults_clear, ADMIN },
	{ 0 },
};
