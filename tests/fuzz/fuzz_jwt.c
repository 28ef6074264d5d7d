/*
 * fuzz_jwt.c - libFuzzer target for svc_jwt_verify(): the input is the
 * token, checked against a fixed key at a fixed time, so the header,
 * payload and signature parsing and the claim checks all see arbitrary
 * bytes. A valid token is only reachable through the seeds (the signature
 * is an HMAC); it does not test svc_jwt_mint().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/jwt.h"

static const unsigned char key[] = "fuzz-jwt-key-0123456789abcdefghijklmnop";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svc_jwt_claims claims;
	const char *why = NULL;
	char *token = malloc(size + 1);

	if (token == NULL)
		return 0;
	memcpy(token, data, size);
	token[size] = '\0';
	svc_jwt_verify(token, key, sizeof(key) - 1, 1700000000LL, 30, &claims,
		       &why);
	free(token);
	return 0;
}
