/*
 * svc/page.h - keyset pagination for list routes: the `limit` parameter,
 * opaque cursors, and the {"items":[...],"next":...} page itself.
 *
 * Lists are ordered by (created_at, id). A cursor is the base64url of the
 * last item's "created_at|id", checked strictly when it comes back, so a
 * tampered cursor is a 400 and never reaches SQL as anything but two
 * well-formed values. Rows come from statements that render each item as
 * JSON, so a page is assembled without parsing anything.
 */
#ifndef SVC_PAGE_H
#define SVC_PAGE_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "svc/http.h"

/*
 * Reads the limit parameter (default def, at least 1, larger values served
 * as max) and the after cursor. On success *limit is set and *created_at
 * and *id are the cursor's parts (borrowed from req), or NULL when there is
 * none; on a bad value answers 400 invalid_parameter and returns
 * SVC_EINVAL.
 */
int svc_page_params(struct svc_req *req, struct svc_res *res, long long def,
		    long long max, long long *limit, const char **created_at,
		    const char **id);

/*
 * Answers 200 with a page from r: column 0 of each row is an item's JSON.
 * When paged, r was fetched with LIMIT limit + 1 and columns 1 and 2 are
 * each row's id and created_at (as rfc3339() in the migrations writes it);
 * a row past limit means there is a next page. Unpaged: every row, next null.
 */
int svc_page_answer(struct svc_res *res, const PGresult *r, long long limit,
		    bool paged);

#endif
