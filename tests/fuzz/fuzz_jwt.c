/*
 * fuzz_jwt.c - libFuzzer target for svc_jwt_verify(): the input is the
 * token, checked against a fixed key at a fixed time. An input that starts
 * with "S\n" is instead "S\n<header JSON>\n<payload JSON>": the target
 * encodes and signs it with the key, so the claim checks behind the HMAC
 * see arbitrary JSON too. It does not test svc_jwt_mint().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "svc/jwt.h"

static const unsigned char key[] = "fuzz-jwt-key-0123456789abcdefghijklmnop";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "S\n<header>\n<payload>" as a signed token (malloc'd), or NULL. */
static char *
sign(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen, plen, cap;
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	char *t;
	long a, b, c;

	if (nl == NULL)
		return NULL;
	hlen = (size_t)(nl - data);
	plen = size - hlen - 1;
	cap = (size + 2) / 3 * 4 + 64;
	t = malloc(cap);
	if (t == NULL)
		return NULL;
	/* cap covers both rounded-up segments, two dots and the MAC. */
	a = svc_base64url_encode(data, hlen, t, cap);
	t[a++] = '.';
	b = svc_base64url_encode(nl + 1, plen, t + a, cap - (size_t)a);
	HMAC(EVP_sha256(), key, sizeof(key) - 1, (unsigned char *)t,
	     (size_t)(a + b), mac, &maclen);
	t[a + b] = '.';
	c = svc_base64url_encode(mac, sizeof(mac), t + a + b + 1,
				 cap - (size_t)(a + b + 1));
	if (c < 0)
		abort();
	return t;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svc_jwt_claims claims;
	const char *why = NULL;
	char *token;

	if (size >= 2 && data[0] == 'S' && data[1] == '\n') {
		token = sign(data + 2, size - 2);
	} else {
		token = malloc(size + 1);
		if (token != NULL) {
			memcpy(token, data, size);
			token[size] = '\0';
		}
	}
	if (token == NULL)
		return 0;
	svc_jwt_verify(token, key, sizeof(key) - 1, 1700000000LL, 30, &claims,
		       &why);
	free(token);
	return 0;
}
