/*
 * test_retry.c - unit tests for common/src/retry.c (to be written).
 */
#include "unit.h"

Suite *
retry_suite(void)
{
	return suite_create("retry");
}
