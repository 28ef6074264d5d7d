/*
 * err.c - the one table that maps libsvc error codes to HTTP answers.
 */
#include "svc/err.h"

static const struct {
	int err;
	int status;
	const char *code;
	const char *text;
} errors[] = {
	{ SVC_OK, 200, "ok", "ok" },
	{ SVC_EINVAL, 400, "bad_request", "malformed request" },
	{ SVC_EVALIDATION, 422, "validation_failed", "invalid fields" },
	{ SVC_EAUTH, 401, "unauthorized", "missing or invalid token" },
	{ SVC_EFORBIDDEN, 403, "forbidden", "role not allowed" },
	{ SVC_ENOTFOUND, 404, "not_found", "not found" },
	{ SVC_ECONFLICT, 409, "conflict", "conflict" },
	{ SVC_EPRECONDITION, 412, "precondition_failed", "version mismatch" },
	{ SVC_ETOOBIG, 413, "payload_too_large", "body too large" },
	{ SVC_EMEDIATYPE, 415, "unsupported_media_type", "body is not JSON" },
	{ SVC_ERATELIMIT, 429, "rate_limited", "too many requests" },
	{ SVC_EUNAVAIL, 503, "service_unavailable", "dependency unavailable" },
	{ SVC_ETIMEOUT, 503, "service_unavailable", "dependency timed out" },
	{ SVC_ECIRCUIT, 503, "service_unavailable", "dependency circuit open" },
	{ SVC_ENOMEM, 500, "internal_error", "out of memory" },
	{ SVC_EINTERNAL, 500, "internal_error", "internal error" },
};

#define NERRORS (sizeof(errors) / sizeof(errors[0]))

static int
find(int err)
{
	for (unsigned i = 0; i < NERRORS; i++)
		if (errors[i].err == err)
			return (int)i;
	return (int)NERRORS - 1; /* internal error */
}

int
svc_err_status(int err)
{
	return errors[find(err)].status;
}

const char *
svc_err_code(int err)
{
	return errors[find(err)].code;
}

const char *
svc_strerror(int err)
{
	return errors[find(err)].text;
}
