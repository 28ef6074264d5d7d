/*
 * test_client.c - unit tests for common/src/client.c (to be written).
 */
#include "unit.h"

Suite *
client_suite(void)
{
	return suite_create("client");
}
