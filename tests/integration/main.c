/*
 * main.c - runs every integration suite against the running services.
 */
#include <curl/curl.h>
#include <stdlib.h>

#include "integ.h"

int
main(void)
{
	Suite *(*const suites[])(void) = {
		products_api_suite,
		inventory_api_suite,
		orders_api_suite,
		resilience_suite,
		contract_suite,
		service_suite,
		mq_suite,
		events_suite,
		choreography_suite,
		tracing_suite,
		outage_suite,
		faults_suite,
		abandoned_suite,
		/* after the others: see test_relay.c */
		relay_suite,
		/* the counters of all that came before */
		metrics_suite,
		/* tests/security/ */
		ratelimit_suite,
		hostile_suite,
		connections_suite,
		/* processes of their own: test_lifecycle.c, test_secrets.c */
		lifecycle_suite,
		secrets_suite,
		/* tools/loadgen against the services the others used */
		loadgen_suite,
		/* last: it reads what the others published */
		catalogue_suite,
	};
	SRunner *sr = srunner_create(NULL);
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (unsigned i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
