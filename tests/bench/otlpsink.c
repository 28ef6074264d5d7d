/*
 * otlpsink.c - an OTLP/HTTP JSON receiver that keeps nothing but counts.
 * Two users, neither of them a service:
 *
 *  - `make bench`'s tracing benchmark: a collector stand-in that answers
 *    200 to every POST and counts requests and spans ("spanId" keys, no
 *    parsing), so what the benchmark measures is the services' cost of
 *    tracing, not a collector's. On SIGTERM or SIGINT it prints
 *    "REQUESTS SPANS" and exits.
 *  - `make compose-test`: with --by-service it parses each export and
 *    counts spans per resource `service.name`, and GET (any path) answers
 *    {"requests":N,"spans":N,"services":{"<name>":N,...}}. The compose
 *    override docker-compose.otlpsink.yml runs it in Jaeger's place.
 *
 *	otlpsink [--by-service] [--any-address] PORT [PORT...]
 *
 * One listener per PORT, on 127.0.0.1 unless --any-address (in a
 * container, where the services reach it by name).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_PORTS = 4, MAX_SERVICES = 64, MAX_BODY = 16 << 20 };

static atomic_ullong requests, spans;
static bool by_service;

/* Spans per service.name (--by-service); names past MAX_SERVICES are
 * counted under "(other)". */
static struct {
	char name[64];
	unsigned long long spans;
} services[MAX_SERVICES];
static int n_services;
static pthread_mutex_t services_lock = PTHREAD_MUTEX_INITIALIZER;

/* A request body, kept whole for --by-service. */
struct body {
	char *data;
	size_t len;
	bool too_large;
};

/* Counts "spanId" keys: one per span (parentSpanId is another key). */
static void
count_span_keys(const char *data, size_t len)
{
	static const char key[] = "\"spanId\"";
	const char *p = data, *end = data + len;

	while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) !=
	       NULL) {
		atomic_fetch_add(&spans, 1);
		p += sizeof(key) - 1;
	}
}

static void
add_service_spans(const char *name, size_t n)
{
	int i;

	pthread_mutex_lock(&services_lock);
	for (i = 0; i < n_services; i++)
		if (strcmp(services[i].name, name) == 0)
			break;
	if (i == n_services) {
		if (n_services == MAX_SERVICES - 1)
			name = "(other)";
		snprintf(services[i].name, sizeof(services[i].name), "%s",
			 name);
		n_services++;
	}
	services[i].spans += n;
	pthread_mutex_unlock(&services_lock);
}

/* The resource's service.name attribute, or "(unknown)". */
static const char *
service_name(json_t *resource_spans)
{
	json_t *attrs, *a;
	size_t i;

	attrs = json_object_get(json_object_get(resource_spans, "resource"),
				"attributes");
	json_array_foreach(attrs, i, a)
	{
		const char *key = json_string_value(json_object_get(a, "key"));
		json_t *v = json_object_get(json_object_get(a, "value"),
					    "stringValue");

		if (key != NULL && strcmp(key, "service.name") == 0 &&
		    json_is_string(v))
			return json_string_value(v);
	}
	return "(unknown)";
}

/* Counts the spans of one export per service; false if it is not OTLP
 * JSON. */
static bool
count_by_service(const char *data, size_t len)
{
	json_t *root, *rs, *ss, *list;
	size_t i, j;

	root = json_loadb(data, len, 0, NULL);
	list = json_object_get(root, "resourceSpans");
	if (!json_is_array(list)) {
		json_decref(root);
		return false;
	}
	json_array_foreach(list, i, rs)
	{
		size_t n = 0;

		json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
			n += json_array_size(json_object_get(ss, "spans"));
		atomic_fetch_add(&spans, n);
		add_service_spans(service_name(rs), n);
	}
	json_decref(root);
	return true;
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *res;
	enum MHD_Result r;

	res = MHD_create_response_from_buffer(strlen(text), (void *)text,
					      MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(res, "Content-Type", "application/json");
	r = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return r;
}

/* GET: the counts as JSON. */
static enum MHD_Result
answer_counts(struct MHD_Connection *conn)
{
	json_t *doc, *per;
	enum MHD_Result r;
	char *text;
	int i;

	per = json_object();
	pthread_mutex_lock(&services_lock);
	for (i = 0; i < n_services; i++)
		json_object_set_new(
			per, services[i].name,
			json_integer((json_int_t)services[i].spans));
	pthread_mutex_unlock(&services_lock);
	doc = json_pack("{s:I,s:I,s:o}", "requests",
			(json_int_t)atomic_load(&requests), "spans",
			(json_int_t)atomic_load(&spans), "services", per);
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	r = answer(conn, MHD_HTTP_OK, text != NULL ? text : "{}");
	free(text);
	json_decref(doc);
	return r;
}

static bool
append(struct body *b, const char *data, size_t len)
{
	char *p;

	if (b->too_large || b->len + len > MAX_BODY) {
		b->too_large = true;
		return false;
	}
	p = realloc(b->data, b->len + len);
	if (p == NULL) {
		b->too_large = true;
		return false;
	}
	memcpy(p + b->len, data, len);
	b->data = p;
	b->len += len;
	return true;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *data,
	   size_t *size, void **state)
{
	struct body *b = *state;

	(void)cls;
	(void)url;
	(void)version;
	if (b == NULL) {
		/* headers seen; the body follows */
		if ((b = calloc(1, sizeof(*b))) == NULL)
			return MHD_NO;
		*state = b;
		return MHD_YES;
	}
	if (strcmp(method, "GET") == 0)
		return answer_counts(conn);
	if (*size > 0) {
		/* Bodies arrive in pieces; for the bench, a key split across
		 * two is rare enough not to matter for a count of
		 * thousands. */
		if (by_service)
			append(b, data, *size);
		else
			count_span_keys(data, *size);
		*size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&requests, 1);
	if (by_service && (b->too_large || !count_by_service(b->data, b->len)))
		return answer(conn, MHD_HTTP_BAD_REQUEST,
			      "{\"error\":\"not OTLP/HTTP JSON\"}");
	return answer(conn, MHD_HTTP_OK, "{}");
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **state,
	     enum MHD_RequestTerminationCode why)
{
	struct body *b = *state;

	(void)cls;
	(void)conn;
	(void)why;
	if (b != NULL) {
		free(b->data);
		free(b);
		*state = NULL;
	}
}

static struct MHD_Daemon *
listen_on(int port, bool any_address)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };

	sa.sin_addr.s_addr = htonl(any_address ? INADDR_ANY : INADDR_LOOPBACK);
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_ERROR_LOG,
				(uint16_t)port, NULL, NULL, on_request, NULL,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_END);
}

static int
usage(void)
{
	fprintf(stderr, "usage: otlpsink [--by-service] [--any-address] "
			"PORT [PORT...]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d[MAX_PORTS];
	bool any_address = false;
	int i, n = 0, sig;
	sigset_t sigs;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--by-service") == 0)
			by_service = true;
		else if (strcmp(argv[i], "--any-address") == 0)
			any_address = true;
		else
			return usage();
	}
	if (i == argc || argc - i > MAX_PORTS)
		return usage();
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	for (; i < argc; i++) {
		int port = atoi(argv[i]);

		if (port <= 0 || port > 65535)
			return usage();
		if ((d[n] = listen_on(port, any_address)) == NULL) {
			fprintf(stderr, "otlpsink: cannot listen on port %d\n",
				port);
			return 1;
		}
		n++;
	}
	sigwait(&sigs, &sig);
	while (n > 0)
		MHD_stop_daemon(d[--n]);
	printf("%llu %llu\n", (unsigned long long)atomic_load(&requests),
	       (unsigned long long)atomic_load(&spans));
	return 0;
}
