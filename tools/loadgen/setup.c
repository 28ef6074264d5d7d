/*
 * setup.c - what loadgen does before the clock starts: checks that the
 * three services are ready, lists the catalogue, and with --seed creates
 * products and gives them stock. Blocking calls on one libcurl easy
 * handle: setup is a few requests, not load, and none of it is counted in
 * the run's figures. Not the load itself (run.c).
 *
 * A new product gets its stock row at inventory from product.created,
 * through the outbox and the broker, moments after the 201. The stock is
 * set only once that row is there (polled, bounded by SEED_WAIT_MS), so the
 * PUT never races the event's own insert.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "loadgen.h"

#define CALL_TIMEOUT_MS 5000
#define SEED_WAIT_MS	30000 /* for every seeded product's stock row */
#define POLL_MS		50
#define PAGE		100

/* One blocking exchange. */
struct call {
	long status; /* 0: no answer, error says why */
	char *body;
	size_t len;
	json_t *json;	/* the body parsed (new), or NULL */
	long ratelimit; /* RateLimit-Limit, or -1 */
	char error[CURL_ERROR_SIZE];
};

static void
call_cleanup(struct call *c)
{
	free(c->body);
	json_decref(c->json);
	memset(c, 0, sizeof(*c));
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	char *grown = realloc(c->body, c->len + size * n + 1);

	if (grown == NULL)
		return 0;
	c->body = grown;
	memcpy(c->body + c->len, data, size * n);
	c->len += size * n;
	c->body[c->len] = '\0';
	return size * n;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	static const char name[] = "ratelimit-limit:";
	struct call *c = arg;

	if (size * n > sizeof(name) &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0)
		c->ratelimit = strtol(data + sizeof(name) - 1, NULL, 10);
	return size * n;
}

/*
 * METHOD url with an optional JSON body and bearer token. Fills out (the
 * caller cleans it up); returns 0 when an HTTP answer came, -1 if none.
 */
static int
call(CURL *h, const char *method, const char *url, const char *token,
     const char *body, struct call *out)
{
	struct curl_slist *hdrs = NULL;
	char auth[4200];
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	out->ratelimit = -1;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CALL_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "microshop-loadgen");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->error);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body != NULL) {
		hdrs = curl_slist_append(hdrs,
					 "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		if (out->error[0] == '\0')
			snprintf(out->error, sizeof(out->error), "%s",
				 curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	if (out->body != NULL)
		out->json = json_loadb(out->body, out->len, 0, NULL);
	return 0;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static void
pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Each service answers 200 on /health/ready. */
static int
check_ready(CURL *h, const struct lg_options *opt, char *err, size_t errlen)
{
	for (int t = 0; t < LG_NTARGETS; t++) {
		char url[320];
		struct call c;
		int rc;

		snprintf(url, sizeof(url), "%s/health/ready", opt->url[t]);
		rc = call(h, "GET", url, NULL, NULL, &c);
		if (rc != 0)
			rc = fail(err, errlen, LG_EFAIL,
				  "no answer from %s at"
				  " %s (%s): is the suite running?",
				  lg_target_name(t), url, c.error);
		else if (c.status != 200)
			rc = fail(err, errlen, LG_EFAIL,
				  "%s at %s is not"
				  " ready (HTTP %ld)",
				  lg_target_name(t), url, c.status);
		call_cleanup(&c);
		if (rc != 0)
			return rc;
	}
	return LG_OK;
}

static struct lg_product *
add_product(struct lg_catalogue *cat)
{
	if (cat->n == cat->cap) {
		size_t cap = cat->cap ? cat->cap * 2 : 64;
		struct lg_product *v = realloc(cat->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		cat->v = v;
		cat->cap = cap;
	}
	memset(&cat->v[cat->n], 0, sizeof(cat->v[0]));
	return &cat->v[cat->n++];
}

/* The items of one page into cat; the cursor of the next one, or NULL. */
static const char *
take_page(struct lg_catalogue *cat, json_t *page)
{
	json_t *items = json_object_get(page, "items"), *item;
	size_t i;

	json_array_foreach(items, i, item)
	{
		const char *id = json_string_value(json_object_get(item, "id"));
		const char *cur =
			json_string_value(json_object_get(item, "currency"));
		struct lg_product *p;

		if (!svc_uuid_valid(id) || cur == NULL || strlen(cur) != 3 ||
		    cat->n >= LG_MAX_PRODUCTS)
			continue;
		p = add_product(cat);
		if (p == NULL)
			return NULL;
		memcpy(p->id, id, sizeof(p->id));
		memcpy(p->currency, cur, 4);
		p->available = json_is_true(json_object_get(item, "available"));
	}
	return json_string_value(json_object_get(page, "next"));
}

/* Lists the catalogue, page by page, up to LG_MAX_PRODUCTS. */
static int
discover(CURL *h, const struct lg_options *opt, struct lg_catalogue *cat,
	 char *err, size_t errlen)
{
	char url[640], after[256] = "";

	while (cat->n < LG_MAX_PRODUCTS) {
		struct call c;
		const char *next;
		char *escaped;

		snprintf(url, sizeof(url), "%s/api/v1/products?limit=%d%s%s",
			 opt->url[LG_PRODUCTS], PAGE, after[0] ? "&after=" : "",
			 after);
		if (call(h, "GET", url, NULL, NULL, &c) != 0 ||
		    c.status != 200 || c.json == NULL) {
			char why[CURL_ERROR_SIZE];

			if (c.status == 0)
				snprintf(why, sizeof(why), "%s", c.error);
			else if (c.status != 200)
				snprintf(why, sizeof(why), "HTTP %ld",
					 c.status);
			else
				snprintf(why, sizeof(why), "not JSON");
			call_cleanup(&c);
			return fail(err, errlen, LG_EFAIL,
				    "cannot list the products at %s: %s", url,
				    why);
		}
		if (cat->ratelimit < 0)
			cat->ratelimit = c.ratelimit;
		next = take_page(cat, c.json);
		escaped = next != NULL ? curl_easy_escape(h, next, 0) : NULL;
		/* a cursor that would not fit ends the listing */
		if (escaped == NULL || strlen(escaped) >= sizeof(after))
			after[0] = '\0';
		else
			snprintf(after, sizeof(after), "%s", escaped);
		curl_free(escaped);
		call_cleanup(&c);
		if (after[0] == '\0')
			break;
	}
	cat->found = cat->n;
	return LG_OK;
}

/* One new product; its id into p. */
static int
create_product(CURL *h, const struct lg_options *opt, const char *run,
	       unsigned i, struct lg_product *p, char *err, size_t errlen)
{
	char url[320], body[256];
	struct call c;
	const char *id;
	int rc = LG_OK;

	snprintf(url, sizeof(url), "%s/api/v1/products", opt->url[LG_PRODUCTS]);
	snprintf(body, sizeof(body),
		 "{\"sku\":\"LOADGEN-%s-%u\",\"name\":\"Load test item %u\","
		 "\"description\":\"made by loadgen\",\"price_cents\":%u,"
		 "\"currency\":\"EUR\"}",
		 run, i + 1, i + 1, 100 + (i * 739) % 9900);
	if (call(h, "POST", url, opt->token, body, &c) != 0)
		rc = fail(err, errlen, LG_EFAIL,
			  "cannot create a product at"
			  " %s: %s",
			  url, c.error);
	else if (c.status == 401 || c.status == 403)
		rc = fail(err, errlen, LG_EUSAGE,
			  "products refused the admin"
			  " token (HTTP %ld): mint one with `products token"
			  " --role admin` and the services' JWT_SECRET",
			  c.status);
	else if (c.status != 201)
		rc = fail(err, errlen, LG_EFAIL,
			  "creating a product at %s"
			  " answered HTTP %ld",
			  url, c.status);
	id = json_string_value(json_object_get(c.json, "id"));
	if (rc == LG_OK && !svc_uuid_valid(id))
		rc = fail(err, errlen, LG_EFAIL,
			  "products answered 201"
			  " without a product id");
	if (rc == LG_OK) {
		memcpy(p->id, id, sizeof(p->id));
		memcpy(p->currency, "EUR", 4);
		p->available = true;
		p->seeded = true;
	}
	call_cleanup(&c);
	return rc;
}

/* Waits for the product's stock row (product.created), then sets it. */
static int
stock_product(CURL *h, const struct lg_options *opt, const char *id,
	      long long deadline_ms, char *err, size_t errlen)
{
	char url[320], body[64];
	struct call c;
	int rc;

	snprintf(url, sizeof(url), "%s/api/v1/inventory/%s",
		 opt->url[LG_INVENTORY], id);
	for (;;) {
		bool there = call(h, "GET", url, NULL, NULL, &c) == 0 &&
			     c.status == 200;

		call_cleanup(&c);
		if (there)
			break;
		if (svc_now_ms() >= deadline_ms)
			return fail(err, errlen, LG_EFAIL,
				    "inventory made no"
				    " stock row for product %s within %d s:"
				    " are the events flowing?",
				    id, SEED_WAIT_MS / 1000);
		pause_ms(POLL_MS);
	}
	snprintf(body, sizeof(body), "{\"on_hand\":%lld}", opt->stock);
	rc = call(h, "PUT", url, opt->token, body, &c);
	if (rc != 0)
		rc = fail(err, errlen, LG_EFAIL,
			  "cannot set the stock of %s:"
			  " %s",
			  id, c.error);
	else if (c.status != 200 && c.status != 201)
		rc = fail(err, errlen, LG_EFAIL,
			  "setting the stock of %s"
			  " answered HTTP %ld",
			  id, c.status);
	call_cleanup(&c);
	return rc;
}

/* opt->seed new products, each with opt->stock units. */
static int
seed(CURL *h, const struct lg_options *opt, struct lg_catalogue *cat, char *err,
     size_t errlen)
{
	char run[SVC_UUID_LEN + 1];
	size_t first = cat->n;
	long long deadline;
	int rc = LG_OK;

	svc_uuid_v4(run);
	run[8] = '\0';
	for (unsigned i = 0; i < opt->seed && rc == LG_OK; i++) {
		struct lg_product *p = add_product(cat);

		if (p == NULL)
			return fail(err, errlen, LG_EFAIL, "out of memory");
		rc = create_product(h, opt, run, i, p, err, errlen);
		if (rc != LG_OK)
			cat->n--;
	}
	deadline = svc_now_ms() + SEED_WAIT_MS;
	for (size_t i = first; i < cat->n && rc == LG_OK; i++)
		rc = stock_product(h, opt, cat->v[i].id, deadline, err, errlen);
	cat->seeded = cat->n - first;
	return rc;
}

/*
 * What orders are made of: the seeded products, or else the available
 * ones of the currency most of them have (an order is in one currency).
 */
static int
pick_orderable(struct lg_catalogue *cat)
{
	size_t best = 0;

	cat->orderable = calloc(cat->n ? cat->n : 1, sizeof(size_t));
	if (cat->orderable == NULL)
		return -1;
	for (size_t i = 0; i < cat->n; i++) {
		size_t same = 0;

		if (cat->seeded > 0 ? !cat->v[i].seeded : !cat->v[i].available)
			continue;
		for (size_t j = 0; j < cat->n; j++)
			same += (cat->seeded > 0 ? cat->v[j].seeded
						 : cat->v[j].available) &&
				strcmp(cat->v[j].currency,
				       cat->v[i].currency) == 0;
		if (same > best) {
			best = same;
			memcpy(cat->currency, cat->v[i].currency, 4);
		}
	}
	for (size_t i = 0; i < cat->n && best > 0; i++)
		if ((cat->seeded > 0 ? cat->v[i].seeded
				     : cat->v[i].available) &&
		    strcmp(cat->v[i].currency, cat->currency) == 0)
			cat->orderable[cat->n_orderable++] = i;
	return 0;
}

/* Enough to run with: products to read, and some to order. */
static int
check_enough(const struct lg_options *opt, const struct lg_catalogue *cat,
	     char *err, size_t errlen)
{
	const char *hint =
		opt->token != NULL
			? "give --seed N"
			: "give an admin token (--token, "
			  "--token-file or LOADGEN_TOKEN) and --seed N";

	if (cat->n == 0)
		return fail(err, errlen, LG_EUSAGE,
			    "no products at %s to"
			    " load: %s",
			    opt->url[LG_PRODUCTS], hint);
	if (cat->n_orderable == 0 && opt->mix[LG_ORDER] > 0)
		return fail(err, errlen, LG_EUSAGE,
			    "none of the %zu products"
			    " at %s is in stock: %s, or leave orders out"
			    " (--mix order=0)",
			    cat->n, opt->url[LG_PRODUCTS], hint);
	return LG_OK;
}

int
lg_setup(const struct lg_options *opt, struct lg_catalogue *cat, char *err,
	 size_t errlen)
{
	CURL *h = curl_easy_init();
	int rc;

	memset(cat, 0, sizeof(*cat));
	cat->ratelimit = -1;
	if (h == NULL)
		return fail(err, errlen, LG_EFAIL, "cannot set up libcurl");
	rc = check_ready(h, opt, err, errlen);
	if (rc == LG_OK)
		rc = discover(h, opt, cat, err, errlen);
	if (rc == LG_OK && opt->seed > 0)
		rc = seed(h, opt, cat, err, errlen);
	if (rc == LG_OK && pick_orderable(cat) != 0)
		rc = fail(err, errlen, LG_EFAIL, "out of memory");
	if (rc == LG_OK)
		rc = check_enough(opt, cat, err, errlen);
	curl_easy_cleanup(h);
	return rc;
}

void
lg_catalogue_cleanup(struct lg_catalogue *cat)
{
	free(cat->v);
	free(cat->orderable);
	memset(cat, 0, sizeof(*cat));
}
