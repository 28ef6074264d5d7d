/*
 * otlpsink.c - the collector stand-in of `make bench`'s tracing benchmark:
 * answers 200 to every POST of OTLP/HTTP JSON on 127.0.0.1:PORT, counts
 * the requests and the spans in them, and on SIGTERM or SIGINT prints
 * "REQUESTS SPANS" and exits. It keeps nothing, so what the benchmark
 * measures is the services' cost of tracing, not a collector's. Not a
 * test and not part of any service.
 *
 *	otlpsink PORT
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ullong requests, spans;

/* Counts "spanId" keys: one per span (parentSpanId is another key). */
static void
count_spans(const char *data, size_t len)
{
	static const char key[] = "\"spanId\"";
	const char *p = data, *end = data + len;

	while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) !=
	       NULL) {
		atomic_fetch_add(&spans, 1);
		p += sizeof(key) - 1;
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *data,
	   size_t *size, void **state)
{
	struct MHD_Response *res;
	enum MHD_Result r;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	if (*state == NULL) {
		*state = conn; /* headers seen; the body follows */
		return MHD_YES;
	}
	if (*size > 0) {
		/* Bodies arrive in pieces; a key split across two is rare
		 * enough not to matter for a count of thousands. */
		count_spans(data, *size);
		*size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&requests, 1);
	res = MHD_create_response_from_buffer(2, (void *)"{}",
					      MHD_RESPMEM_PERSISTENT);
	r = MHD_queue_response(conn, MHD_HTTP_OK, res);
	MHD_destroy_response(res);
	return r;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t sigs;
	int sig;

	if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: otlpsink PORT\n");
		return 2;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
				     MHD_USE_ERROR_LOG,
			     (uint16_t)atoi(argv[1]), NULL, NULL, on_request,
			     NULL, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "otlpsink: cannot listen on port %s\n",
			argv[1]);
		return 1;
	}
	sigwait(&sigs, &sig);
	MHD_stop_daemon(d);
	printf("%llu %llu\n", (unsigned long long)atomic_load(&requests),
	       (unsigned long long)atomic_load(&spans));
	return 0;
}
