/*
 * svc/err.h - the error codes every libsvc function returns.
 *
 * Functions return 0 on success and a negative SVC_E* code on failure. One
 * table (svc_err_status) maps each code to the HTTP status a handler answers
 * with, so a handler can simply `return SVC_ENOTFOUND;`. This is not an
 * errno replacement: it names what a caller must decide on, nothing more.
 */
#ifndef SVC_ERR_H
#define SVC_ERR_H

enum svc_err {
	SVC_OK = 0,
	SVC_EINVAL = -1,	/* malformed request: 400 */
	SVC_EVALIDATION = -2,	/* well-formed, but fields are invalid: 422 */
	SVC_EAUTH = -3,		/* missing or invalid credentials: 401 */
	SVC_EFORBIDDEN = -4,	/* valid credentials, wrong role: 403 */
	SVC_ENOTFOUND = -5,	/* no such resource: 404 */
	SVC_ECONFLICT = -6,	/* state conflict, e.g. a duplicate: 409 */
	SVC_EPRECONDITION = -7, /* If-Match did not match: 412 */
	SVC_ETOOBIG = -8,	/* body over the limit: 413 */
	SVC_EMEDIATYPE = -9,	/* body is not JSON: 415 */
	SVC_ERATELIMIT = -10,	/* too many requests: 429 */
	SVC_EUNAVAIL = -11,	/* a dependency is down: 503 */
	SVC_ETIMEOUT = -12,	/* a dependency did not answer in time: 503 */
	SVC_ENOMEM = -13,	/* out of memory: 500 */
	SVC_EINTERNAL = -14,	/* a bug or an unexpected failure: 500 */
	SVC_ECIRCUIT = -15,	/* a dependency's circuit is open: 503 */
};

/* The HTTP status for an error code (500 for unknown codes). */
int svc_err_status(int err);

/* The problem document's `error` member for an error code ("not_found"). */
const char *svc_err_code(int err);

/* A short human description of an error code ("not found"). */
const char *svc_strerror(int err);

#endif
