/*
 * orders.c - placing, reading, listing and cancelling orders.
 *
 * Placing an order is a small saga: prices from products (GET ?ids=, with
 * the price cache as a fallback), a reservation at inventory (idempotent on
 * the order id), then the order, its items and its order.created event in
 * ONE statement. Nothing is written before both dependencies said yes; if
 * the write itself fails after the reservation, the reservation is
 * released at once (and would expire anyway). With an Idempotency-Key the
 * order id is derived from the key, so concurrent repeats reserve once and
 * insert once.
 */
#include "orders.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/page.h"
#include "svc/util.h"

#define MAX_ITEMS    100
#define MAX_QUANTITY 1000000
#define MAX_KEY	     255
#define LIST_DEFAULT 20
#define LIST_MAX     100

struct svc_upstream *orders_products;
struct svc_upstream *orders_inventory;

/* An order as the API shows it, compact JSON. */
#define ORDER_JSON(o)                                                          \
	"(SELECT row_to_json(j) FROM (SELECT " o ".id, " o ".customer_id, " o  \
	".status, (SELECT coalesce(json_agg(row_to_json(x)"                    \
	" ORDER BY x.product_id), '[]') FROM (SELECT i.product_id,"            \
	" i.quantity, i.unit_price_cents, i.line_total_cents"                  \
	" FROM order_items i WHERE i.order_id = " o ".id) x) AS items, " o     \
	".total_cents, " o ".currency, rfc3339(" o ".created_at) AS"           \
	" created_at, rfc3339(" o ".updated_at) AS updated_at) j)"

/* clang-format off */
const struct svc_db_stmt order_statements[] = {
	{ "order_get",
	  "SELECT " ORDER_JSON("o") "::text FROM orders o WHERE o.id = $1",
	  SVC_DB_IDEMPOTENT },
	{ "order_by_key",
	  "SELECT " ORDER_JSON("o") "::text, o.request_hash FROM orders o"
	  " WHERE o.idempotency_key = $1",
	  0 },
	{ "order_list_first",
	  "SELECT " ORDER_JSON("o") "::text, o.id, rfc3339(o.created_at)"
	  " FROM orders o WHERE o.customer_id = $1"
	  " ORDER BY o.created_at, o.id LIMIT $2",
	  SVC_DB_IDEMPOTENT },
	{ "order_list_after",
	  "SELECT " ORDER_JSON("o") "::text, o.id, rfc3339(o.created_at)"
	  " FROM orders o WHERE o.customer_id = $1"
	  " AND (o.created_at, o.id) > ($2, $3)"
	  " ORDER BY o.created_at, o.id LIMIT $4",
	  SVC_DB_IDEMPOTENT },
	/* $1 id, $2 customer, $3 currency, $4 reservation, $5 key, $6 hash,
	 * $7 products, $8 quantities, $9 unit prices, $10/$11 request id and
	 * traceparent */
	{ "order_create",
	  "WITH v AS (SELECT * FROM unnest($7::uuid[], $8::integer[],"
	  "  $9::bigint[]) AS v(p, q, price)),"
	  /* stored: its reservation is in use, not abandoned */
	  " a AS (DELETE FROM reservation_attempts WHERE order_id = $1),"
	  " o AS (INSERT INTO orders (id, customer_id, total_cents, currency,"
	  "  reservation_id, idempotency_key, request_hash)"
	  "  SELECT $1, $2, sum(v.q * v.price), $3, $4, $5, $6 FROM v"
	  "  RETURNING *),"
	  " i AS (INSERT INTO order_items (order_id, product_id, quantity,"
	  "  unit_price_cents, line_total_cents)"
	  "  SELECT o.id, v.p, v.q, v.price, v.q * v.price FROM o, v),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'order.created', o.id, jsonb_build_object("
	  "   'order_id', o.id, 'customer_id', o.customer_id,"
	  "   'reservation_id', o.reservation_id,"
	  "   'items', (SELECT jsonb_agg(jsonb_build_object('product_id', v.p,"
	  "    'quantity', v.q, 'unit_price_cents', v.price)) FROM v),"
	  "   'total_cents', o.total_cents, 'currency', o.currency),"
	  "   $10, $11 FROM o)"
	  /* the order as written: its items are not visible to this
	   * statement's own snapshot yet, so they come from v */
	  " SELECT (SELECT row_to_json(j) FROM (SELECT o.id, o.customer_id,"
	  "  o.status, (SELECT json_agg(row_to_json(x) ORDER BY x.product_id)"
	  "   FROM (SELECT v.p AS product_id, v.q AS quantity,"
	  "    v.price AS unit_price_cents, v.q * v.price AS line_total_cents"
	  "    FROM v) x) AS items,"
	  "  o.total_cents, o.currency, rfc3339(o.created_at) AS created_at,"
	  "  rfc3339(o.updated_at) AS updated_at) j)::text FROM o",
	  0 },
	{ "order_lock",
	  "SELECT status, reservation_id FROM orders WHERE id = $1 FOR UPDATE",
	  0 },
	/* $1 id, $2/$3 request id and traceparent */
	{ "order_cancel",
	  "WITH o AS (UPDATE orders SET status = 'cancelled',"
	  "  updated_at = clock_timestamp() WHERE id = $1 RETURNING *),"
	  " r AS (INSERT INTO pending_releases (reservation_id, order_id)"
	  "  SELECT o.reservation_id, o.id FROM o ON CONFLICT DO NOTHING),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'order.cancelled', o.id, jsonb_build_object("
	  "   'order_id', o.id, 'customer_id', o.customer_id,"
	  "   'reservation_id', o.reservation_id), $2, $3 FROM o)"
	  " SELECT count(*) FROM o",
	  0 },
	/* inventory.confirmed: $1 order, $2/$3 request id and traceparent */
	{ "order_confirm",
	  "WITH o AS (UPDATE orders SET status = 'confirmed',"
	  "  updated_at = clock_timestamp()"
	  "  WHERE id = $1 AND status = 'pending' RETURNING *),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'order.confirmed', o.id, jsonb_build_object("
	  "   'order_id', o.id, 'customer_id', o.customer_id,"
	  "   'reservation_id', o.reservation_id), $2, $3 FROM o)"
	  " SELECT count(*) FROM o",
	  0 },
	/* inventory.released (expired): $1 order, $2/$3 request id and
	 * traceparent, $4 reason */
	{ "order_reject",
	  "WITH o AS (UPDATE orders SET status = 'rejected',"
	  "  updated_at = clock_timestamp()"
	  "  WHERE id = $1 AND status = 'pending' RETURNING *),"
	  " e AS (INSERT INTO outbox"
	  "  (event_type, aggregate_id, data, request_id, traceparent)"
	  "  SELECT 'order.rejected', o.id, jsonb_build_object("
	  "   'order_id', o.id, 'customer_id', o.customer_id,"
	  "   'reservation_id', o.reservation_id, 'reason', $4::text),"
	  "   $2, $3 FROM o)"
	  " SELECT count(*) FROM o",
	  0 },
	{ "release_done",
	  "DELETE FROM pending_releases WHERE reservation_id = $1", 0 },
	{ "release_due",
	  "SELECT reservation_id FROM pending_releases"
	  " WHERE next_attempt_at <= clock_timestamp()"
	  " ORDER BY next_attempt_at LIMIT 20",
	  0 },
	{ "release_later",
	  "UPDATE pending_releases SET attempts = attempts + 1,"
	  " next_attempt_at = clock_timestamp() + least(interval '1 minute',"
	  "  interval '1 second' * power(2, attempts))"
	  " WHERE reservation_id = $1",
	  0 },
	/*
	 * Reservation attempts (releaser.c). Written and cleared without
	 * waiting for the disk (synchronous_commit off, this transaction
	 * only): a row lost in a crash leaves its reservation to expire, as
	 * it would without this table. $1 order, $2 body, $3 grace in ms.
	 */
	{ "attempt_begin",
	  "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
	  " INSERT INTO reservation_attempts (order_id, body, next_attempt_at)"
	  " SELECT $1, $2, clock_timestamp() + $3::bigint * interval '1 ms'"
	  " FROM s ON CONFLICT (order_id) DO UPDATE"
	  " SET next_attempt_at = excluded.next_attempt_at",
	  SVC_DB_IDEMPOTENT },
	{ "attempt_clear",
	  "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
	  " DELETE FROM reservation_attempts"
	  " WHERE order_id = $1 AND EXISTS (SELECT 1 FROM s)",
	  SVC_DB_IDEMPOTENT },
	{ "attempts_due",
	  "SELECT order_id, body FROM reservation_attempts"
	  " WHERE next_attempt_at <= clock_timestamp()"
	  " ORDER BY next_attempt_at LIMIT 20",
	  SVC_DB_IDEMPOTENT },
	{ "attempt_later",
	  "UPDATE reservation_attempts SET attempts = attempts + 1,"
	  " next_attempt_at = clock_timestamp() + least(interval '1 minute',"
	  "  interval '1 second' * power(2, attempts))"
	  " WHERE order_id = $1",
	  0 },
	{ NULL, NULL, 0 },
};
/* clang-format on */

/* --- the request --- */

struct item {
	struct svc_line line;
	struct price price;
};

struct order {
	const char *customer_id;
	struct item items[MAX_ITEMS];
	int n;
	char id[SVC_UUID_LEN + 1];
	char currency[4];
	const char *key; /* Idempotency-Key, or NULL */
	char hash[65];	 /* of the request body, with the key */
	char reservation_id[SVC_UUID_LEN + 1];
};

static bool
read_order(struct svc_req *req, struct svc_res *res, struct order *o)
{
	json_t *body = svc_req_json(req);
	struct svc_line lines[MAX_ITEMS];

	if (svc_json_string(res, body, "customer_id", 36, 36, true,
			    &o->customer_id, NULL) &&
	    !svc_uuid_valid(o->customer_id))
		svc_res_field_error(res, "customer_id", "must be a UUID");
	if (!svc_json_lines(res, body, "items", MAX_ITEMS, MAX_QUANTITY, lines,
			    &o->n) ||
	    svc_res_field_errors(res) > 0)
		return false;
	for (int i = 0; i < o->n; i++) {
		memset(&o->items[i], 0, sizeof(o->items[i]));
		o->items[i].line = lines[i];
	}
	return true;
}

static void
sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + i * 2, 3, "%02x", md[i]);
}

/*
 * With an Idempotency-Key, the order id is derived from it (a v4-shaped
 * UUID from its hash): every repeat reserves and inserts under one id.
 * The request hash covers the body in canonical form, so the same
 * request with its keys in another order is still the same request.
 */
static int
identify(struct svc_req *req, struct svc_res *res, struct order *o)
{
	const char *key = svc_req_header(req, "Idempotency-Key");
	unsigned char md[32];
	char *canon, keyed[MAX_KEY + 32];
	unsigned int n = 0;

	o->key = NULL;
	if (key == NULL) {
		svc_uuid_v4(o->id);
		o->hash[0] = '\0';
		return SVC_OK;
	}
	if (strlen(key) == 0 || strlen(key) > MAX_KEY)
		return svc_res_problem(
			res, 400, "invalid_header",
			"Idempotency-Key must be 1 to %d characters", MAX_KEY);
	for (const char *c = key; *c != '\0'; c++)
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
			return svc_res_problem(
				res, 400, "invalid_header",
				"Idempotency-Key must be printable ASCII");
	o->key = key;
	canon = json_dumps(svc_req_json(req), JSON_COMPACT | JSON_SORT_KEYS);
	if (canon == NULL)
		return SVC_ENOMEM;
	sha256_hex(canon, strlen(canon), o->hash);
	free(canon);
	snprintf(keyed, sizeof(keyed), "microshop-order:%s", key);
	EVP_Digest(keyed, strlen(keyed), md, &n, EVP_sha256(), NULL);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x40);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	snprintf(o->id, sizeof(o->id),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8],
		 md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
	return SVC_OK;
}

/* An order placed before under this key: 200 replay, or 422 if it differs. */
static int
replay(struct svc_db *db, struct svc_res *res, const struct order *o,
       bool *found)
{
	PGresult *r;
	int rc;

	*found = false;
	if (o->key == NULL)
		return SVC_OK;
	rc = svc_db_exec(db, "order_by_key", 1, &o->key, &r);
	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return SVC_OK;
	}
	*found = true;
	if (strcmp(PQgetvalue(r, 0, 1), o->hash) != 0) {
		PQclear(r);
		return svc_res_problem(res, 422, "idempotency_key_reused",
				       "this Idempotency-Key was used for "
				       "another request");
	}
	svc_res_header(res, "Idempotent-Replayed", "true");
	rc = svc_res_raw(res, 200, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return rc;
}

/* 503 for a dependency that is down, with its Retry-After. */
static int
unavailable(struct svc_req *req, struct svc_res *res, struct svc_upstream *u,
	    int rc)
{
	svc_res_header(
		res, "Retry-After",
		svc_req_printf(req, "%lld", svc_upstream_retry_after_s(u)));
	return svc_res_problem(res, 503, "dependency_unavailable",
			       "%s is unavailable (%s)", svc_upstream_name(u),
			       svc_strerror(rc));
}

/* --- prices --- */

/* The ?ids= path for the order's products. */
static char *
ids_path(struct svc_req *req, const struct order *o)
{
	char *path = svc_req_alloc(req, 32 + (size_t)o->n * (SVC_UUID_LEN + 1));
	size_t len = (size_t)sprintf(path, "/api/v1/products?ids=");

	for (int i = 0; i < o->n; i++)
		len += (size_t)sprintf(path + len, "%s%s", i ? "," : "",
				       o->items[i].line.product_id);
	return path;
}

/* Fills prices from a products answer; unknown products become 422s. */
static int
prices_from_answer(struct svc_res *res, struct order *o, json_t *answer)
{
	json_t *items = json_object_get(answer, "items"), *p;
	size_t k;

	if (!json_is_array(items))
		return SVC_EUNAVAIL;
	json_array_foreach(items, k, p)
	{
		const char *id = json_string_value(json_object_get(p, "id"));
		json_t *cents = json_object_get(p, "price_cents");
		const char *cur =
			json_string_value(json_object_get(p, "currency"));
		struct price price = { 0 };

		if (id == NULL || !json_is_integer(cents) || cur == NULL ||
		    strlen(cur) != 3)
			continue;
		price.cents = json_integer_value(cents);
		memcpy(price.currency, cur, 4);
		prices_put(id, &price);
		for (int i = 0; i < o->n; i++)
			if (strcmp(o->items[i].line.product_id, id) == 0)
				o->items[i].price = price;
	}
	for (int i = 0; i < o->n; i++) {
		if (o->items[i].price.currency[0] == '\0')
			svc_res_field_error(res, "items", "unknown product %s",
					    o->items[i].line.product_id);
	}
	return svc_res_field_errors(res) ? SVC_EVALIDATION : SVC_OK;
}

/* Every price from the cache, or false if one is missing or too old. */
static bool
prices_from_cache(struct order *o, long long *oldest_ms)
{
	*oldest_ms = 0;
	for (int i = 0; i < o->n; i++) {
		long long age;

		if (!prices_get(o->items[i].line.product_id, &o->items[i].price,
				&age))
			return false;
		if (age > *oldest_ms)
			*oldest_ms = age;
	}
	return true;
}

static int
fetch_prices(struct svc_req *req, struct svc_res *res, struct order *o)
{
	struct svc_upstream_request call = {
		.method = "GET",
		.path = ids_path(req, o),
		.idempotent = true,
		.request_id = svc_req_id(req),
		.traceparent = svc_req_traceparent(req),
	};
	struct svc_client_response answer;
	long long oldest;
	int rc;

	rc = svc_upstream_call(orders_products, &call, &answer);
	if (rc == SVC_OK && answer.status == 200)
		rc = prices_from_answer(res, o, answer.json);
	else if (rc == SVC_OK)
		rc = SVC_EUNAVAIL; /* products answered, but not with prices */
	svc_client_response_cleanup(&answer);
	if (rc == SVC_OK || rc == SVC_EVALIDATION)
		return rc;
	/* The fallback: recent enough prices beat no order at all. */
	if (prices_from_cache(o, &oldest)) {
		svc_log(SVC_LOG_WARN,
			"products unavailable: using cached prices",
			SVC_LOG_INT("oldest_price_age_ms", oldest),
			SVC_LOG_STR("error", svc_strerror(rc)), SVC_LOG_END);
		return SVC_OK;
	}
	return unavailable(req, res, orders_products, rc);
}

/* One currency for the whole order, and a total that fits in 64 bits. */
static int
one_currency(struct svc_res *res, struct order *o)
{
	long long total = 0, line;

	for (int i = 0; i < o->n; i++) {
		if (__builtin_mul_overflow(o->items[i].line.quantity,
					   o->items[i].price.cents, &line) ||
		    __builtin_add_overflow(total, line, &total))
			return svc_res_problem(
				res, 422, "total_too_large",
				"the order's total is too large");
	}
	memcpy(o->currency, o->items[0].price.currency, 4);
	for (int i = 1; i < o->n; i++)
		if (strcmp(o->items[i].price.currency, o->currency) != 0)
			return svc_res_problem(
				res, 422, "mixed_currency",
				"an order's products must share one currency; "
				"%s is %s, %s is %s",
				o->items[0].line.product_id, o->currency,
				o->items[i].line.product_id,
				o->items[i].price.currency);
	return SVC_OK;
}

/* --- the reservation --- */

static char *
reservation_body(const struct order *o)
{
	json_t *items = json_array();
	json_t *body;
	char *text;

	for (int i = 0; i < o->n; i++)
		json_array_append_new(
			items,
			json_pack("{s:s, s:I}", "product_id",
				  o->items[i].line.product_id, "quantity",
				  (json_int_t)o->items[i].line.quantity));
	body = json_pack("{s:s, s:o}", "order_id", o->id, "items", items);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return text;
}

static int
reserve(struct svc_req *req, struct svc_res *res, struct svc_db *db,
	struct order *o)
{
	char *body = reservation_body(o);
	struct svc_upstream_request call = {
		.method = "POST",
		.path = "/api/v1/reservations",
		.body = body,
		/* Safe to repeat: inventory is idempotent on order_id. */
		.idempotent = true,
		.request_id = svc_req_id(req),
		.traceparent = svc_req_traceparent(req),
	};
	struct svc_client_response answer;
	const char *id, *status;
	int rc;

	if (body == NULL)
		return SVC_ENOMEM;
	/*
	 * Written down first: should inventory's answer be lost, what it
	 * may hold for this order is given back (releaser.c). No reservation
	 * is asked for when this cannot be written.
	 */
	rc = releaser_attempt_begin(db, o->id, body);
	if (rc != SVC_OK) {
		free(body);
		return rc;
	}
	rc = svc_upstream_call(orders_inventory, &call, &answer);
	free(body);
	if (rc != SVC_OK) {
		svc_client_response_cleanup(&answer);
		return unavailable(req, res, orders_inventory, rc);
	}
	id = json_string_value(json_object_get(answer.json, "id"));
	status = json_string_value(json_object_get(answer.json, "status"));
	if ((answer.status == 201 || answer.status == 200) &&
	    svc_uuid_valid(id) && status != NULL &&
	    strcmp(status, "released") == 0) {
		/*
		 * A repeat of a key whose reservation was released meanwhile.
		 * (Confirmed means a concurrent repeat stored the order and
		 * inventory already confirmed it: the insert below finds it.)
		 */
		rc = svc_res_problem(res, 409, "reservation_expired",
				     "the stock held for this order was "
				     "released; place it again with a new "
				     "Idempotency-Key");
		releaser_attempt_clear(db, o->id); /* nothing is held */
	} else if ((answer.status == 201 || answer.status == 200) &&
		   svc_uuid_valid(id)) {
		snprintf(o->reservation_id, sizeof(o->reservation_id), "%s",
			 id);
		rc = SVC_OK;
	} else if (answer.status == 409) {
		json_t *short_items = json_object_get(answer.json, "items");

		if (short_items != NULL)
			svc_res_problem_member(res, "items",
					       json_incref(short_items));
		rc = svc_res_problem(res, 409, "insufficient_stock",
				     "not enough stock for this order");
		releaser_attempt_clear(db, o->id); /* nothing is held */
	} else {
		svc_log(SVC_LOG_ERROR, "unexpected answer from inventory",
			SVC_LOG_INT("status", answer.status), SVC_LOG_END);
		rc = unavailable(req, res, orders_inventory, SVC_EUNAVAIL);
	}
	svc_client_response_cleanup(&answer);
	return rc;
}

/* --- handlers --- */

/* "{a,b}" style array literals of the items' ids, quantities and prices. */
static void
arrays(struct svc_req *req, const struct order *o, char **ids, char **qty,
       char **prices)
{
	char *p = svc_req_alloc(req, (size_t)o->n * (SVC_UUID_LEN + 1) + 3);
	char *q = svc_req_alloc(req, (size_t)o->n * 21 + 3);
	char *c = svc_req_alloc(req, (size_t)o->n * 21 + 3);
	size_t pl = 1, ql = 1, cl = 1;

	p[0] = q[0] = c[0] = '{';
	for (int i = 0; i < o->n; i++) {
		pl += (size_t)sprintf(p + pl, "%s%s", i ? "," : "",
				      o->items[i].line.product_id);
		ql += (size_t)sprintf(q + ql, "%s%lld", i ? "," : "",
				      o->items[i].line.quantity);
		cl += (size_t)sprintf(c + cl, "%s%lld", i ? "," : "",
				      o->items[i].price.cents);
	}
	strcpy(p + pl, "}");
	strcpy(q + ql, "}");
	strcpy(c + cl, "}");
	*ids = p;
	*qty = q;
	*prices = c;
}

/* Writes the order; on success *out holds its JSON (row 0, column 0). */
static int
insert(struct svc_req *req, struct svc_db *db, struct order *o, PGresult **out)
{
	char *ids, *qty, *prices;

	arrays(req, o, &ids, &qty, &prices);
	const char *params[] = { o->id,
				 o->customer_id,
				 o->currency,
				 o->reservation_id,
				 o->key,
				 o->key ? o->hash : NULL,
				 ids,
				 qty,
				 prices,
				 svc_req_id(req),
				 svc_req_traceparent(req) };
	return svc_db_exec(db, "order_create", 11, params, out);
}

static int
show(struct svc_db *db, struct svc_res *res, const char *id, int status)
{
	PGresult *r;
	int rc = svc_db_exec(db, "order_get", 1, &id, &r);

	if (rc != SVC_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return svc_res_problem(res, 404, "not_found",
				       "order %s not found", id);
	}
	rc = svc_res_raw(res, status, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return rc;
}

int
orders_create(struct svc_req *req, struct svc_res *res)
{
	struct order *o = svc_req_alloc(req, sizeof(*o));
	struct svc_db *db = svc_db_thread();
	PGresult *r = NULL;
	bool found;
	int rc;

	if (db == NULL)
		return SVC_ENOMEM;
	if (!read_order(req, res, o))
		return SVC_EVALIDATION;
	rc = identify(req, res, o);
	if (rc != SVC_OK)
		return rc;
	rc = replay(db, res, o, &found);
	if (rc != SVC_OK || found)
		return rc;
	rc = fetch_prices(req, res, o);
	if (rc == SVC_OK)
		rc = one_currency(res, o);
	if (rc == SVC_OK)
		rc = reserve(req, res, db, o);
	if (rc != SVC_OK)
		return rc;

	rc = insert(req, db, o, &r);
	if (rc == SVC_ECONFLICT) {
		/* A concurrent repeat of this key got there first. */
		rc = replay(db, res, o, &found);
		if (rc == SVC_OK && !found)
			rc = show(db, res, o->id, 200);
		return rc;
	}
	if (rc != SVC_OK && o->key != NULL) {
		/*
		 * Keep the reservation: a retry with the same key uses it (and
		 * if none comes within RESERVATION_GRACE, the releaser gives
		 * it back). Releasing it now would leave the key pointing at a
		 * reservation that no longer holds stock.
		 */
		return rc;
	}
	if (rc != SVC_OK) {
		/* Nothing was written: give the stock back now. */
		svc_log(SVC_LOG_WARN,
			"order not stored; releasing its reservation",
			SVC_LOG_STR("order_id", o->id),
			SVC_LOG_STR("reservation_id", o->reservation_id),
			SVC_LOG_END);
		releaser_release(o->reservation_id, "order_failed",
				 svc_req_id(req), svc_req_traceparent(req));
		return rc;
	}
	svc_log(SVC_LOG_INFO, "order placed", SVC_LOG_STR("order_id", o->id),
		SVC_LOG_STR("reservation_id", o->reservation_id),
		SVC_LOG_INT("items", o->n), SVC_LOG_END);
	svc_res_header(res, "Location",
		       svc_req_printf(req, "/api/v1/orders/%s", o->id));
	/* As written, not read back: by then events may have moved it on. */
	rc = svc_res_raw(res, 201, PQgetvalue(r, 0, 0),
			 (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return rc;
}

static const char *
path_id(struct svc_req *req, struct svc_res *res)
{
	const char *id = svc_req_param(req, "id");

	if (!svc_uuid_valid(id)) {
		svc_res_problem(res, 404, "not_found", "order %.64s not found",
				id);
		return NULL;
	}
	return id;
}

int
orders_get(struct svc_req *req, struct svc_res *res)
{
	const char *id = path_id(req, res);
	struct svc_db *db = svc_db_thread();

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (db == NULL)
		return SVC_ENOMEM;
	return show(db, res, id, 200);
}

/* --- listing --- */

int
orders_list(struct svc_req *req, struct svc_res *res)
{
	const char *customer = svc_req_query(req, "customer_id");
	const char *at, *aid;
	struct svc_db *db = svc_db_thread();
	long long limit;
	char lim[24];
	PGresult *r;
	int rc;

	if (!svc_uuid_valid(customer))
		return svc_res_problem(res, 400, "invalid_parameter",
				       "customer_id must be given, as a UUID");
	rc = svc_page_params(req, res, LIST_DEFAULT, LIST_MAX, &limit, &at,
			     &aid);
	if (rc != SVC_OK)
		return rc;
	if (db == NULL)
		return SVC_ENOMEM;
	snprintf(lim, sizeof(lim), "%lld", limit + 1);
	if (at != NULL) {
		const char *params[] = { customer, at, aid, lim };

		rc = svc_db_exec(db, "order_list_after", 4, params, &r);
	} else {
		const char *params[] = { customer, lim };

		rc = svc_db_exec(db, "order_list_first", 2, params, &r);
	}
	if (rc == SVC_EINVAL)
		return svc_res_problem(
			res, 400, "invalid_parameter",
			"after is not a cursor this service issued");
	if (rc != SVC_OK)
		return rc;
	rc = svc_page_answer(res, r, limit, true);
	PQclear(r);
	return rc;
}

/* --- cancelling --- */

int
orders_cancel(struct svc_req *req, struct svc_res *res)
{
	const char *id = path_id(req, res);
	const char *rid = svc_req_id(req), *tp = svc_req_traceparent(req);
	struct svc_db *db = svc_db_thread();
	char status[16], reservation[SVC_UUID_LEN + 1];
	PGresult *r;
	int rc;

	if (id == NULL)
		return SVC_ENOTFOUND;
	if (db == NULL)
		return SVC_ENOMEM;
	rc = svc_db_begin(db);
	if (rc != SVC_OK)
		return rc;
	rc = svc_db_exec(db, "order_lock", 1, &id, &r);
	if (rc != SVC_OK)
		goto fail;
	if (PQntuples(r) == 0) {
		PQclear(r);
		rc = svc_res_problem(res, 404, "not_found",
				     "order %s not found", id);
		goto fail;
	}
	snprintf(status, sizeof(status), "%s", PQgetvalue(r, 0, 0));
	snprintf(reservation, sizeof(reservation), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (strcmp(status, "rejected") == 0) {
		rc = svc_res_problem(res, 409, "order_rejected",
				     "order %s was rejected; there is nothing "
				     "to cancel",
				     id);
		goto fail;
	}
	if (strcmp(status, "cancelled") != 0) {
		const char *params[] = { id, rid, tp };

		rc = svc_db_exec(db, "order_cancel", 3, params, NULL);
		if (rc != SVC_OK)
			goto fail;
	}
	rc = svc_db_commit(db);
	if (rc != SVC_OK)
		goto fail;
	if (strcmp(status, "cancelled") != 0) {
		svc_log(SVC_LOG_INFO, "order cancelled",
			SVC_LOG_STR("order_id", id), SVC_LOG_END);
		/* Now if inventory answers; else the releaser keeps trying. */
		releaser_release(reservation, "cancelled", rid, tp);
	}
	return show(db, res, id, 200);
fail:
	svc_db_rollback(db);
	return rc;
}

/* --- events: inventory.confirmed, inventory.released --- */

int
orders_on_reservation(struct svc_db *db, const char *event_type, json_t *data,
		      const struct svc_event_meta *meta)
{
	const char *id = json_string_value(json_object_get(data, "order_id"));
	const char *reason = json_string_value(json_object_get(data, "reason"));
	const char *params[] = { id, meta->request_id, meta->traceparent,
				 reason };

	if (!svc_uuid_valid(id)) {
		svc_log(SVC_LOG_WARN, "reservation event without an order id",
			SVC_LOG_STR("event_type", event_type), SVC_LOG_END);
		return SVC_EVALIDATION; /* to the dead-letter queue */
	}
	/* An order no longer pending (cancelled, say) stays as it is. */
	if (strcmp(event_type, "inventory.confirmed") == 0)
		return svc_db_exec(db, "order_confirm", 3, params, NULL);
	/*
	 * Only an expired reservation rejects its order: "cancelled" is
	 * the release our own cancel asked for, and any other reason is a
	 * release someone chose, not a verdict on the order.
	 */
	if (strcmp(event_type, "inventory.released") == 0 && reason != NULL &&
	    strcmp(reason, "expired") == 0)
		return svc_db_exec(db, "order_reject", 4, params, NULL);
	return SVC_OK;
}
