/*
 * main.c - loadgen: open-loop load against microshop's three services
 * (docs/load.md). Wiring only: the flags, the setup, the run, the summary,
 * and the exit status - 0 after a run, 1 when the services cannot be
 * used, 2 for a bad flag or nothing to order (loadgen.h: LG_*).
 *
 * It links libsvc for its UUIDs (the services' own, from OpenSSL's
 * random) and nothing else of it: libsvc's HTTP client is a blocking,
 * per-thread one that adds service tokens, the opposite of what an
 * open-loop generator needs, so the requests go through libcurl's multi
 * interface directly (run.c).
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "loadgen.h"

int
main(int argc, char **argv)
{
	struct lg_options opt;
	struct lg_catalogue cat = { 0 };
	struct lg_stats *st = NULL;
	char err[512] = "";
	int rc;

	rc = lg_options_parse(&opt, argc, argv, err, sizeof(err));
	if (rc < 0) {
		lg_options_usage(stdout);
		lg_options_cleanup(&opt);
		return LG_OK;
	}
	if (rc != LG_OK)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = lg_setup(&opt, &cat, err, sizeof(err));
	if (rc != LG_OK)
		goto out;
	/* fewer requests than one client's burst can never be limited */
	if (cat.ratelimit > 0 &&
	    (opt.duration_ms == 0 ||
	     opt.rate * (double)opt.duration_ms / 1000 > (double)cat.ratelimit))
		fprintf(stderr,
			"loadgen: note: products limits each client to"
			" a burst of %ld requests (RateLimit-Limit);"
			" past it answers are 429 - RATE_LIMIT=off on"
			" the services lifts it\n",
			cat.ratelimit);
	st = calloc(1, sizeof(*st));
	rc = st != NULL ? lg_run(&opt, &cat, st, err, sizeof(err)) : LG_EFAIL;
	if (rc != LG_OK)
		goto out;
	lg_report_live_end(&opt);
	lg_report_summary(&opt, &cat, st);
out:
	if (rc != LG_OK)
		fprintf(stderr, "loadgen: %s\n",
			err[0] ? err : "out of memory");
	free(st);
	lg_catalogue_cleanup(&cat);
	lg_options_cleanup(&opt);
	curl_global_cleanup();
	return rc;
}
