/*
 * jwt.c - HS256 tokens with a pinned algorithm (RFC 7519, RFC 8725).
 *
 * Verification order matters: structure and header first (so "alg":"none"
 * or a foreign algorithm is refused without computing anything), then the
 * signature in constant time, and only then the claims. The header and
 * payload are parsed with jansson, rejecting duplicate keys so a token
 * cannot carry two different "alg" or "role" members.
 */
#include "svc/jwt.h"

#include <jansson.h>
#include <stdbool.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"

#define MAX_TOKEN 4096

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

long
svc_base64url_encode(const unsigned char *in, size_t len, char *out,
		     size_t size)
{
	size_t o = 0;

	if ((len + 2) / 3 * 4 + 1 > size)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	return (long)o;
}

static int
b64val(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64url, c);
	return p != NULL ? (int)(p - b64url) : -1;
}

long
svc_base64url_decode(const char *in, size_t len, unsigned char *out,
		     size_t size)
{
	unsigned v = 0;
	size_t o = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1; /* no encoder produces that length */
	for (size_t i = 0; i < len; i++) {
		int d = b64val(in[i]);

		if (d < 0)
			return -1;
		v = (v << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= size)
				return -1;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	/* Leftover bits must be zero, or two tokens would decode alike. */
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

static int
hmac_sha256(const unsigned char *key, size_t keylen, const char *data,
	    size_t len, unsigned char mac[32])
{
	unsigned int maclen = 32;

	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data,
		 len, mac, &maclen) == NULL ||
	    maclen != 32)
		return SVC_EINTERNAL;
	return SVC_OK;
}

/* Decodes one base64url segment holding a JSON object (new reference). */
static json_t *
decode_json(const char *seg, size_t len)
{
	unsigned char buf[MAX_TOKEN];
	json_t *obj;
	long n;

	n = svc_base64url_decode(seg, len, buf, sizeof(buf));
	if (n <= 0)
		return NULL;
	obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES,
			 NULL);
	if (obj != NULL && !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* A NumericDate claim; absent is fine unless required. */
static bool
get_time(json_t *payload, const char *name, bool required, long long *out)
{
	json_t *v = json_object_get(payload, name);

	*out = 0;
	if (v == NULL)
		return !required;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) > 0 &&
	    json_real_value(v) < 1e15) {
		*out = (long long)json_real_value(v);
		return true;
	}
	return false;
}

#define FAIL(reason)                                                           \
	do {                                                                   \
		*why = (reason);                                               \
		rc = SVC_EAUTH;                                                \
		goto out;                                                      \
	} while (0)

int
svc_jwt_verify(const char *token, const unsigned char *key, size_t keylen,
	       long long now, long long leeway, struct svc_jwt_claims *out,
	       const char **why)
{
	const char *dot1, *dot2, *ignored, *alg, *sub, *role;
	json_t *header = NULL, *payload = NULL, *typ;
	unsigned char mac[32], sig[64];
	long long nbf;
	size_t len;
	long siglen;
	int rc = SVC_OK;

	if (why == NULL)
		why = &ignored;
	*why = NULL;
	if (token == NULL || keylen < SVC_JWT_MIN_KEY)
		FAIL("no token");
	len = strlen(token);
	if (len > MAX_TOKEN)
		FAIL("token too long");
	dot1 = strchr(token, '.');
	dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		FAIL("token must have three segments");

	header = decode_json(token, (size_t)(dot1 - token));
	if (header == NULL)
		FAIL("malformed token header");
	alg = json_string_value(json_object_get(header, "alg"));
	if (alg == NULL || strcmp(alg, "HS256") != 0)
		FAIL("token algorithm must be HS256");
	typ = json_object_get(header, "typ");
	if (typ != NULL && (!json_is_string(typ) ||
			    strcasecmp(json_string_value(typ), "JWT") != 0))
		FAIL("token type must be JWT");
	if (json_object_get(header, "crit") != NULL)
		FAIL("token has unsupported critical headers");

	siglen = svc_base64url_decode(
		dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig));
	if (siglen != 32)
		FAIL("malformed token signature");
	if (hmac_sha256(key, keylen, token, (size_t)(dot2 - token), mac) != 0)
		FAIL("cannot compute signature");
	if (CRYPTO_memcmp(mac, sig, sizeof(mac)) != 0)
		FAIL("bad token signature");

	payload = decode_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (payload == NULL)
		FAIL("malformed token payload");
	if (!get_time(payload, "exp", true, &out->exp))
		FAIL("token has no valid exp");
	if (!get_time(payload, "iat", false, &out->iat))
		FAIL("token has an invalid iat");
	if (!get_time(payload, "nbf", false, &nbf))
		FAIL("token has an invalid nbf");
	/* now - leeway, not exp + leeway: a signed exp may be INT64_MAX. */
	if (now - leeway > out->exp)
		FAIL("token expired");
	if (nbf > now + leeway)
		FAIL("token not valid yet");
	if (out->iat > now + leeway)
		FAIL("token issued in the future");
	sub = json_string_value(json_object_get(payload, "sub"));
	role = json_string_value(json_object_get(payload, "role"));
	if (sub == NULL || strlen(sub) == 0 || strlen(sub) >= sizeof(out->sub))
		FAIL("token has no valid sub");
	if (role == NULL || strlen(role) >= sizeof(out->role))
		FAIL("token has no valid role");
	strcpy(out->sub, sub);
	strcpy(out->role, role);
out:
	json_decref(header);
	json_decref(payload);
	return rc;
}

int
svc_jwt_mint(const char *sub, const char *role, long long iat, long long ttl,
	     const unsigned char *key, size_t keylen, char *out, size_t size)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[32];
	char *payload = NULL;
	json_t *claims;
	size_t n;
	long m;
	int rc = SVC_EINVAL;

	if (keylen < SVC_JWT_MIN_KEY)
		return SVC_EINVAL;
	claims = json_pack("{s:s, s:s, s:I, s:I}", "sub", sub, "role", role,
			   "iat", (json_int_t)iat, "exp",
			   (json_int_t)(iat + ttl));
	if (claims == NULL)
		return SVC_EINVAL;
	payload = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	if (payload == NULL)
		return SVC_ENOMEM;

	m = svc_base64url_encode((const unsigned char *)header,
				 sizeof(header) - 1, out, size);
	if (m < 0 || (size_t)m + 2 > size)
		goto out;
	n = (size_t)m;
	out[n++] = '.';
	m = svc_base64url_encode((const unsigned char *)payload,
				 strlen(payload), out + n, size - n);
	if (m < 0 || n + (size_t)m + 2 > size)
		goto out;
	n += (size_t)m;
	if (hmac_sha256(key, keylen, out, n, mac) != SVC_OK)
		goto out;
	out[n++] = '.';
	m = svc_base64url_encode(mac, sizeof(mac), out + n, size - n);
	if (m < 0)
		goto out;
	rc = SVC_OK;
out:
	free(payload);
	return rc;
}
