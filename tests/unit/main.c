/*
 * main.c - runs every unit suite; exits non-zero when any test fails.
 */
#include <stdlib.h>

#include "unit.h"

int
main(void)
{
	Suite *(*const suites[])(void) = {
		err_suite,     util_suite,	    config_suite,
		log_suite,     jwt_suite,	    http_suite,
		migrate_suite, products_suite,	    breaker_suite,
		retry_suite,   client_suite,	    trace_suite,
		metrics_suite, ratelimit_suite,	    connguard_suite,
		faults_suite,  loadgen_stats_suite, loadgen_options_suite,
	};
	SRunner *sr = srunner_create(NULL);
	int failed;

	for (unsigned i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
