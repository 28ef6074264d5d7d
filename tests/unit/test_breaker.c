/*
 * test_breaker.c - unit tests for common/src/breaker.c (to be written).
 */
#include "unit.h"

Suite *
breaker_suite(void)
{
	return suite_create("breaker");
}
