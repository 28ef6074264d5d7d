/*
 * unit.h - the unit test suites, one per source file, registered in one
 * list in main.c. Unit tests need no server: handlers are driven through
 * svc_http_handle() with hand-made requests.
 */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>

Suite *err_suite(void);
Suite *util_suite(void);
Suite *config_suite(void);
Suite *log_suite(void);
Suite *jwt_suite(void);
Suite *http_suite(void);
Suite *migrate_suite(void);
Suite *products_suite(void);
Suite *breaker_suite(void);
Suite *retry_suite(void);
Suite *client_suite(void);
Suite *trace_suite(void);
Suite *metrics_suite(void);
Suite *ratelimit_suite(void);
Suite *connguard_suite(void);
Suite *faults_suite(void);
/* tools/loadgen */
Suite *loadgen_stats_suite(void);
Suite *loadgen_options_suite(void);

#endif
