/*
 * page.c - keyset pagination: limits, cursors, pages (see svc/page.h).
 */
#include "svc/page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/jwt.h"
#include "svc/util.h"

/* "2026-11-25T19:43:35.123456Z" exactly, as rfc3339() writes it. */
static bool
timestamp_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return false;
	}
	return true;
}

static bool
parse_cursor(struct svc_req *req, const char *cursor, const char **created_at,
	     const char **id)
{
	unsigned char raw[128];
	long n = svc_base64url_decode(cursor, strlen(cursor), raw,
				      sizeof(raw) - 1);
	char *s, *bar;

	if (n <= 0)
		return false;
	raw[n] = '\0';
	s = svc_req_strdup(req, (char *)raw);
	bar = strchr(s, '|');
	if (bar == NULL)
		return false;
	*bar = '\0';
	*created_at = s;
	*id = bar + 1;
	return timestamp_ok(s) && svc_uuid_valid(bar + 1);
}

int
svc_page_params(struct svc_req *req, struct svc_res *res, long long def,
		long long max, long long *limit, const char **created_at,
		const char **id)
{
	const char *after = svc_req_query(req, "after");
	int rc;

	*created_at = *id = NULL;
	rc = svc_query_int(req, res, "limit", def, 1, 1000000000, limit);
	if (rc != SVC_OK)
		return rc;
	if (*limit > max)
		*limit = max;
	if (after != NULL && after[0] != '\0' &&
	    !parse_cursor(req, after, created_at, id))
		return svc_res_problem(
			res, 400, "invalid_parameter",
			"after is not a cursor this service issued");
	return SVC_OK;
}

int
svc_page_answer(struct svc_res *res, const PGresult *r, long long limit,
		bool paged)
{
	int rows = PQntuples(r);
	int shown = paged && rows > limit ? (int)limit : rows;
	char next[200] = "";
	size_t size = 64, len;
	char *buf;
	int rc;

	if (paged && rows > limit) {
		char raw[128];
		int n = snprintf(raw, sizeof(raw), "%s|%s",
				 PQgetvalue(r, shown - 1, 2),
				 PQgetvalue(r, shown - 1, 1));

		svc_base64url_encode((const unsigned char *)raw, (size_t)n,
				     next, sizeof(next));
	}
	for (int i = 0; i < shown; i++)
		size += (size_t)PQgetlength(r, i, 0) + 1;
	buf = malloc(size + sizeof(next));
	if (buf == NULL)
		return SVC_ENOMEM;
	len = (size_t)sprintf(buf, "{\"items\":[");
	for (int i = 0; i < shown; i++) {
		if (i > 0)
			buf[len++] = ',';
		memcpy(buf + len, PQgetvalue(r, i, 0),
		       (size_t)PQgetlength(r, i, 0));
		len += (size_t)PQgetlength(r, i, 0);
	}
	if (next[0] != '\0')
		len += (size_t)sprintf(buf + len, "],\"next\":\"%s\"}", next);
	else
		len += (size_t)sprintf(buf + len, "],\"next\":null}");
	rc = svc_res_raw(res, 200, buf, len);
	free(buf);
	return rc;
}
