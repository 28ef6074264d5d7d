/*
 * products.c - the product resource: validation, handlers and their SQL.
 *
 * The database renders products as JSON (PRODUCT_JSON below) and
 * handlers pass that text through untouched: one round trip and no
 * re-encoding on the read path. Every change writes its event to the
 * outbox in the same statement as the change itself (a data-modifying
 * CTE), so the two commit or fail together without an explicit
 * transaction.
 */
#include "products.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/page.h"
#include "svc/util.h"

#define LIST_DEFAULT 20
#define LIST_MAX     100
#define IDS_MAX	     100
/* 2^53 - 1: the largest integer every JSON reader holds exactly. */
#define MAX_PRICE 9007199254740991LL

/*
 * A product row as the API shows it, compact JSON. Written out in each
 * statement (not a SQL function, which PostgreSQL would plan again on
 * every call) so it is planned once, when the statement is prepared.
 */
#define PRODUCT_JSON(p)                                                        \
	"(SELECT row_to_json(j) FROM (SELECT " p ".id, " p ".sku, " p          \
	".name, " p ".description, " p ".price_cents, " p ".currency, " p      \
	".available, " p ".version, rfc3339(" p ".created_at) AS created_at,"  \
	" rfc3339(" p ".updated_at) AS updated_at) j)"

/* SQL reads best as written; keep clang-format's hands off it. */
/* clang-format off */
const struct svc_db_stmt products_statements[] = {
	{ "product_get",
	  "SELECT " PRODUCT_JSON("p") "::text, p.version FROM products p"
	  " WHERE p.id = $1",
	  SVC_DB_IDEMPOTENT },
	{ "product_list_first",
	  "SELECT " PRODUCT_JSON("p") "::text, p.id, rfc3339(p.created_at)"
	  " FROM products p ORDER BY p.created_at, p.id LIMIT $1",
	  SVC_DB_IDEMPOTENT },
	{ "product_list_after",
	  "SELECT " PRODUCT_JSON("p") "::text, p.id, rfc3339(p.created_at)"
	  " FROM products p WHERE (p.created_at, p.id) > ($1, $2)"
	  " ORDER BY p.created_at, p.id LIMIT $3",
	  SVC_DB_IDEMPOTENT },
	{ "product_list_ids",
	  "SELECT " PRODUCT_JSON("p") "::text FROM products p"
	  " WHERE p.id = ANY ($1::uuid[]) ORDER BY p.created_at, p.id",
	  SVC_DB_IDEMPOTENT },
	{ "product_create",
	  "WITH p AS (INSERT INTO products"
	  "  (sku, name, description, price_cents, currency, created_at,"
	  "   updated_at)"
	  "  SELECT $1, $2, $3, $4, $5, t, t FROM clock_timestamp() t"
	  "  RETURNING *),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'product.created', p.id, " PRODUCT_JSON("p") "::jsonb,"
	  "  $6, $7"
	  "  FROM p)"
	  " SELECT " PRODUCT_JSON("p") "::text, p.id, p.version FROM p",
	  0 },
	{ "product_update",
	  "WITH p AS (UPDATE products SET"
	  "  sku = coalesce($2, sku), name = coalesce($3, name),"
	  "  description = CASE WHEN $4::boolean THEN $5 ELSE description END,"
	  "  price_cents = coalesce($6::bigint, price_cents),"
	  "  currency = coalesce($7, currency),"
	  "  version = version + 1, updated_at = clock_timestamp()"
	  "  WHERE id = $1 AND ($8::integer IS NULL OR version = $8)"
	  "  RETURNING *),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'product.updated', p.id, " PRODUCT_JSON("p") "::jsonb,"
	  "  $9, $10"
	  "  FROM p)"
	  " SELECT " PRODUCT_JSON("p") "::text, p.version FROM p",
	  0 },
	{ "product_delete",
	  "WITH p AS (DELETE FROM products"
	  "  WHERE id = $1 AND ($2::integer IS NULL OR version = $2)"
	  "  RETURNING *),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'product.deleted', p.id,"
	  "   jsonb_build_object('id', p.id, 'sku', p.sku), $3, $4 FROM p)"
	  " SELECT p.id FROM p",
	  0 },
	{ "product_version",
	  "SELECT version FROM products WHERE id = $1", SVC_DB_IDEMPOTENT },
	/* inventory.stock_changed: a projection of inventory, so neither a
	 * new version nor an event of its own */
	/* $3: the stock row's version; NULL (an event without one) applies
	 * unconditionally */
	{ "product_set_available",
	  "UPDATE products SET available = $2::boolean,"
	  " stock_version = coalesce($3::integer, stock_version)"
	  " WHERE id = $1 AND ($3::integer IS NULL OR stock_version < $3::integer)",
	  0 },
	{ NULL, NULL, 0 },
};
/* clang-format on */

/* The {id} path parameter; a malformed id names no product: 404. */
static const char *
path_id(struct svc_req *req, struct svc_res *res)
{
	const char *id = svc_req_param(req, "id");

	if (!svc_uuid_valid(id)) {
		svc_res_problem(res, 404, "not_found",
				"product %.64s not found", id);
		return NULL;
	}
	return id;
}

/* If-Match: "3" (or 3, or W/"3") -> "3"; NULL when absent; "" when bad. */
static const char *
if_match(struct svc_req *req)
{
	const char *h = svc_req_header(req, "If-Match");
	char *v, *end;
	long n;

	if (h == NULL || strcmp(h, "*") == 0)
		return NULL;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	v = svc_req_strdup(req, h[0] == '"' ? h + 1 : h);
	if (h[0] == '"') {
		size_t len = strlen(v);

		if (len == 0 || v[len - 1] != '"')
			return "";
		v[len - 1] = '\0';
	}
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n < 1 || n > 2147483647)
		return "";
	return v;
}

static void
set_etag(struct svc_req *req, struct svc_res *res, const char *version)
{
	svc_res_header(res, "ETag", svc_req_printf(req, "\"%s\"", version));
}

/* A string without control characters (names and SKUs are one line). */
static bool
single_line(struct svc_res *res, const char *field, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			svc_res_field_error(
				res, field,
				"must not contain control characters");
			return false;
		}
	}
	return true;
}

static bool
currency_ok(struct svc_res *res, const char *c)
{
	if (c == NULL)
		return true;
	if (strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' &&
	    c[1] <= 'Z' && c[2] >= 'A' && c[2] <= 'Z')
		return true;
	svc_res_field_error(res, "currency",
			    "must be a 3-letter upper-case ISO 4217 code");
	return false;
}

/* The fields a client may set; `required` for create, optional for PATCH. */
struct fields {
	const char *sku, *name, *description, *currency;
	bool has_description, has_price;
	long long price_cents;
	char price[24];
};

static bool
read_fields(struct svc_res *res, json_t *body, bool required, struct fields *f)
{
	json_t *desc = json_object_get(body, "description");

	memset(f, 0, sizeof(*f));
	if (svc_json_string(res, body, "sku", 1, 64, required, &f->sku, NULL))
		single_line(res, "sku", f->sku);
	if (svc_json_string(res, body, "name", 1, 200, required, &f->name,
			    NULL))
		single_line(res, "name", f->name);
	/* description may be null: it clears the description. */
	f->has_description = desc != NULL;
	if (desc != NULL && !json_is_null(desc))
		svc_json_string(res, body, "description", 0, 2000, false,
				&f->description, NULL);
	svc_json_integer(res, body, "price_cents", 0, MAX_PRICE, required,
			 &f->price_cents, &f->has_price);
	snprintf(f->price, sizeof(f->price), "%lld", f->price_cents);
	if (svc_json_string(res, body, "currency", 3, 3, required, &f->currency,
			    NULL))
		currency_ok(res, f->currency);
	return svc_res_field_errors(res) == 0;
}

static int
duplicate_sku(struct svc_res *res, const char *sku)
{
	return svc_res_problem(res, 409, "duplicate_sku",
			       "a product with sku \"%.64s\" already exists",
			       sku ? sku : "");
}

int
products_create(struct svc_req *req, struct svc_res *res)
{
	struct fields f;
	struct svc_db *db;
	PGresult *r;
	int rc;

	if (!read_fields(res, svc_req_json(req), true, &f))
		return SVC_EVALIDATION;
	db = svc_db_thread();
	if (db == NULL)
		return SVC_ENOMEM;
	const char *params[] = {
		f.sku,	    f.name,	     f.description,	      f.price,
		f.currency, svc_req_id(req), svc_req_traceparent(req)
	};
	rc = svc_db_exec(db, "product_create", 7, params, &r);
	if (rc == SVC_ECONFLICT)
		return duplicate_sku(res, f.sku);
	if (rc != SVC_OK)
		return rc;
	svc_res_header(res, "Location",
		       svc_req_printf(req, "/api/v1/products/%s",
				      PQgetvalue(r, 0, 1)));
	set_etag(req, res, PQgetvalue(r, 0, 2));
	rc = svc_res_raw(res, 201, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	svc_log(SVC_LOG_INFO, "product created",
		SVC_LOG_STR("product_id", PQgetvalue(r, 0, 1)),
		SVC_LOG_STR("sku", f.sku), SVC_LOG_END);
	PQclear(r);
	return rc;
}

int
products_get(struct svc_req *req, struct svc_res *res)
{
	const char *id = path_id(req, res);
	struct svc_db *db;
	PGresult *r;
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	db = svc_db_thread();
	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_exec(db, "product_get", 1, &id, &r);
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return svc_res_problem(res, 404, "not_found",
				       "product %s not found", id);
	}
	set_etag(req, res, PQgetvalue(r, 0, 1));
	rc = svc_res_raw(res, 200, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return rc;
}

/* --- listing --- */

/* ?ids=a,b,c -> "{a,b,c}" (a uuid[] literal); NULL after a 400. */
static const char *
ids_array(struct svc_req *req, struct svc_res *res, const char *ids)
{
	char *copy = svc_req_strdup(req, ids), *save = NULL;
	char *out = svc_req_alloc(req, strlen(ids) + 3);
	int n = 0;

	strcpy(out, "{");
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!svc_uuid_valid(tok)) {
			svc_res_problem(res, 400, "invalid_parameter",
					"ids must be comma-separated UUIDs; "
					"\"%.64s\" is not one",
					tok);
			return NULL;
		}
		if (++n > IDS_MAX) {
			svc_res_problem(res, 400, "invalid_parameter",
					"at most %d ids per request", IDS_MAX);
			return NULL;
		}
		if (n > 1)
			strcat(out, ",");
		strcat(out, tok);
	}
	strcat(out, "}");
	return out;
}

int
products_list(struct svc_req *req, struct svc_res *res)
{
	const char *ids = svc_req_query(req, "ids");
	const char *created_at, *id;
	struct svc_db *db;
	long long limit;
	char lim[24];
	PGresult *r;
	int rc;

	rc = svc_page_params(req, res, LIST_DEFAULT, LIST_MAX, &limit,
			     &created_at, &id);
	if (rc != SVC_OK)
		return rc;
	snprintf(lim, sizeof(lim), "%lld", limit + 1);
	if (ids != NULL) {
		ids = ids_array(req, res, ids);
		if (ids == NULL)
			return SVC_EINVAL;
	}
	db = svc_db_thread();
	if (db == NULL)
		return SVC_ENOMEM;
	if (ids != NULL) {
		rc = svc_db_exec(db, "product_list_ids", 1, &ids, &r);
	} else if (created_at != NULL) {
		const char *params[] = { created_at, id, lim };

		rc = svc_db_exec(db, "product_list_after", 3, params, &r);
	} else {
		const char *params[] = { lim };

		rc = svc_db_exec(db, "product_list_first", 1, params, &r);
	}
	if (rc == SVC_EINVAL)
		return svc_res_problem(
			res, 400, "invalid_parameter",
			"after is not a cursor this service issued");
	if (rc != SVC_OK)
		return rc;
	rc = svc_page_answer(res, r, limit, ids == NULL);
	PQclear(r);
	return rc;
}

/* --- changes --- */

/* After a change matched no row: 404, or 412 when only the version differs. */
static int
missing_or_stale(struct svc_db *db, struct svc_res *res, const char *id,
		 const char *expected)
{
	PGresult *r;
	int rc = svc_db_exec(db, "product_version", 1, &id, &r);

	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return svc_res_problem(res, 404, "not_found",
				       "product %s not found", id);
	}
	rc = svc_res_problem(res, 412, "version_mismatch",
			     "If-Match expected version %s, the product is "
			     "at version %s",
			     expected ? expected : "any", PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

/* The {id} and If-Match version (NULL: any) of a change, or an answer. */
static int
change_target(struct svc_req *req, struct svc_res *res, const char **id,
	      const char **version)
{
	*id = path_id(req, res);
	if (*id == NULL)
		return SVC_ENOTFOUND;
	*version = if_match(req);
	if (*version != NULL && (*version)[0] == '\0')
		return svc_res_problem(
			res, 400, "invalid_header",
			"If-Match must be a version in quotes, like \"3\"");
	return SVC_OK;
}

int
products_update(struct svc_req *req, struct svc_res *res)
{
	const char *id, *version;
	struct fields f;
	struct svc_db *db;
	PGresult *r;
	int rc = change_target(req, res, &id, &version);

	if (rc != SVC_OK)
		return rc;
	if (!read_fields(res, svc_req_json(req), false, &f))
		return SVC_EVALIDATION;
	if (!f.sku && !f.name && !f.has_description && !f.has_price &&
	    !f.currency) {
		svc_res_field_error(res, "",
				    "give at least one of sku, name, "
				    "description, price_cents, currency");
		return SVC_EVALIDATION;
	}
	db = svc_db_thread();
	if (db == NULL)
		return SVC_ENOMEM;
	const char *params[] = { id,
				 f.sku,
				 f.name,
				 f.has_description ? "true" : "false",
				 f.description,
				 f.has_price ? f.price : NULL,
				 f.currency,
				 version,
				 svc_req_id(req),
				 svc_req_traceparent(req) };
	rc = svc_db_exec(db, "product_update", 10, params, &r);
	if (rc == SVC_ECONFLICT)
		return duplicate_sku(res, f.sku);
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return missing_or_stale(db, res, id, version);
	}
	set_etag(req, res, PQgetvalue(r, 0, 1));
	rc = svc_res_raw(res, 200, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	svc_log(SVC_LOG_INFO, "product updated", SVC_LOG_STR("product_id", id),
		SVC_LOG_END);
	return rc;
}

int
products_delete(struct svc_req *req, struct svc_res *res)
{
	const char *id, *version;
	struct svc_db *db;
	PGresult *r;
	int rc = change_target(req, res, &id, &version);

	if (rc != SVC_OK)
		return rc;
	db = svc_db_thread();
	if (db == NULL)
		return SVC_ENOMEM;
	const char *params[] = { id, version, svc_req_id(req),
				 svc_req_traceparent(req) };
	rc = svc_db_exec(db, "product_delete", 4, params, &r);
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return missing_or_stale(db, res, id, version);
	}
	PQclear(r);
	svc_log(SVC_LOG_INFO, "product deleted", SVC_LOG_STR("product_id", id),
		SVC_LOG_END);
	return svc_res_empty(res, 204);
}

/* --- events: inventory.stock_changed --- */

int
products_on_stock(struct svc_db *db, const char *event_type, json_t *data,
		  const struct svc_event_meta *meta)
{
	const char *id = json_string_value(json_object_get(data, "product_id"));
	json_t *available = json_object_get(data, "available");
	json_t *version = json_object_get(data, "version");
	const char *params[3];
	char v[24];

	(void)meta;
	if (strcmp(event_type, "inventory.stock_changed") != 0)
		return SVC_OK;
	if (!svc_uuid_valid(id) || !json_is_integer(available)) {
		svc_log(SVC_LOG_WARN, "stock event without product or count",
			SVC_LOG_STR("event_type", event_type), SVC_LOG_END);
		return SVC_EVALIDATION; /* to the dead-letter queue */
	}
	params[0] = id;
	params[1] = json_integer_value(available) > 0 ? "true" : "false";
	params[2] = NULL;
	if (json_is_integer(version)) {
		snprintf(v, sizeof(v), "%lld",
			 (long long)json_integer_value(version));
		params[2] = v;
	}
	return svc_db_exec(db, "product_set_available", 3, params, NULL);
}
