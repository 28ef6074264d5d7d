/*
 * test_jwt.c - unit tests for jwt.c: base64url against the RFC 4648
 * vectors, mint/verify round trips, and every way svc_jwt_verify() must
 * refuse a token. Hostile tokens are built by hand here and carry a correct
 * HS256 signature over their own header and payload, so each refusal is
 * caused by the check under test and not by a bad signature; the `why`
 * text tells which check it was. Times are fixed numbers, not the clock.
 */
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "svc/err.h"
#include "svc/jwt.h"
#include "unit.h"

#define NOW    1700000000LL
#define LEEWAY 30

static const unsigned char key[] = "unit-test-key-0123456789abcdef-0123456789";
#define KEYLEN (sizeof(key) - 1)
static const unsigned char other_key[] =
	"another-key-of-enough-length-0123456789-xyz";
#define OTHER_KEYLEN (sizeof(other_key) - 1)

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* base64url(s) appended at out; returns the new end. */
static char *
put_b64(char *out, const char *s, size_t len)
{
	long n = svc_base64url_encode((const unsigned char *)s, len, out, 4096);

	ck_assert_int_ge(n, 0);
	return out + n;
}

/*
 * header.payload.signature with a correct HMAC-SHA256 under k; the
 * segments are raw text that is base64url-encoded unless raw_payload,
 * which puts the payload text in as it is.
 */
static const char *
build(const char *header, const char *payload, bool raw_payload,
      const unsigned char *k, size_t klen)
{
	static char token[8192];
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	char *p = token;

	p = put_b64(p, header, strlen(header));
	*p++ = '.';
	if (raw_payload) {
		strcpy(p, payload);
		p += strlen(payload);
	} else {
		p = put_b64(p, payload, strlen(payload));
	}
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), k, (int)klen,
				   (const unsigned char *)token,
				   (size_t)(p - token), mac, &maclen));
	*p++ = '.';
	p = put_b64(p, (const char *)mac, maclen);
	*p = '\0';
	return token;
}

static const char *
signed_token(const char *header, const char *payload)
{
	return build(header, payload, false, key, KEYLEN);
}

/* A payload made with printf, for claims that depend on NOW (static). */
static const char *claims(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *
claims(const char *fmt, ...)
{
	static char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

static int
verify(const char *token, const char **why)
{
	struct svc_jwt_claims c;

	return svc_jwt_verify(token, key, KEYLEN, NOW, LEEWAY, &c, why);
}

/* Refused, and the reason mentions want. */
static void
assert_refused(const char *token, const char *want)
{
	const char *why = NULL;

	ck_assert_int_eq(verify(token, &why), SVC_EAUTH);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, want) != NULL, "refused for \"%s\", not %s",
		      why, want);
}

static void
assert_accepted(const char *token)
{
	const char *why = NULL;

	ck_assert_msg(verify(token, &why) == SVC_OK, "refused: %s",
		      why ? why : "?");
}

#define GOOD_PAYLOAD                                                           \
	"{\"sub\":\"u1\",\"role\":\"admin\",\"iat\":1700000000,\"exp\":"       \
	"1700003600}"

/* --- base64url --- */

START_TEST(base64url_rfc4648_vectors)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "" },
		{ "f", "Zg" },
		{ "fo", "Zm8" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg" },
		{ "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};
	char out[64];
	unsigned char back[64];

	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t len = strlen(v[i].in);

		ck_assert_int_eq(
			svc_base64url_encode((const unsigned char *)v[i].in,
					     len, out, sizeof(out)),
			(long)strlen(v[i].out));
		ck_assert_str_eq(out, v[i].out);
		ck_assert_int_eq(svc_base64url_decode(v[i].out,
						      strlen(v[i].out), back,
						      sizeof(back)),
				 (long)len);
		ck_assert_mem_eq(back, v[i].in, len);
	}
}
END_TEST

START_TEST(base64url_uses_the_url_alphabet)
{
	static const unsigned char in[] = { 0xfb, 0xff, 0xbf };
	char out[16];
	unsigned char back[16];

	/* Standard base64 would say "+/+/". */
	ck_assert_int_eq(svc_base64url_encode(in, 3, out, sizeof(out)), 4);
	ck_assert_str_eq(out, "-_-_");
	ck_assert_int_eq(svc_base64url_encode(in, 2, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "-_8");
	ck_assert_int_eq(svc_base64url_decode("-_-_", 4, back, sizeof(back)),
			 3);
	ck_assert_mem_eq(back, in, 3);
}
END_TEST

START_TEST(base64url_round_trips_every_byte)
{
	unsigned char in[256], back[256];
	char out[400];

	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	for (size_t len = 0; len <= sizeof(in); len++) {
		long n = svc_base64url_encode(in, len, out, sizeof(out));

		ck_assert_int_eq(n, (long)((len * 4 + 2) / 3));
		ck_assert_ptr_null(strpbrk(out, "+/="));
		ck_assert_int_eq(svc_base64url_decode(out, (size_t)n, back,
						      sizeof(back)),
				 (long)len);
		ck_assert_mem_eq(back, in, len);
	}
}
END_TEST

START_TEST(base64url_refuses_what_no_encoder_writes)
{
	static const char *const bad[] = {
		"Zm9v+g",		     /* standard alphabet */
		"Zm9v/g",	 "Zm9vYg==", /* padding */
		"Zm 9v",	 "Zm9v.Yg",   "Zm9v\nYg",
		"Zm9vY\xc3\xa9", "Z", /* 1 mod 4: impossible length */
		"Zm9vY",	 "Zm9vYmFyZ", "Zh", /* leftover bits not zero */
		"Zm9", /* "Zm8" is the only encoding of "fo" */
	};
	unsigned char out[64];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(svc_base64url_decode(bad[i], strlen(bad[i]), out,
						   sizeof(out)) == -1,
			      "accepted \"%s\"", bad[i]);
	/* A NUL inside the given length is not a base64url character. */
	ck_assert_int_eq(svc_base64url_decode("Zm\0v", 4, out, sizeof(out)),
			 -1);
}
END_TEST

START_TEST(base64url_respects_buffer_sizes)
{
	char out[8];
	unsigned char back[2];

	ck_assert_int_eq(svc_base64url_encode((const unsigned char *)"foobar",
					      6, out, 8),
			 -1);
	ck_assert_int_eq(
		svc_base64url_encode((const unsigned char *)"fooba", 5, out, 7),
		-1);
	ck_assert_int_eq(
		svc_base64url_encode((const unsigned char *)"foob", 4, out, 9),
		6);
	ck_assert_int_eq(svc_base64url_decode("Zm9v", 4, back, sizeof(back)),
			 -1);
	ck_assert_int_eq(svc_base64url_decode("Zm8", 3, back, sizeof(back)), 2);
}
END_TEST

/* --- mint and verify --- */

START_TEST(mint_then_verify)
{
	char token[512];
	struct svc_jwt_claims c;
	const char *why = "unset";
	const char *dot1, *dot2;
	unsigned char header[128];
	long n;

	ck_assert_int_eq(svc_jwt_mint("user-42", "admin", NOW, 3600, key,
				      KEYLEN, token, sizeof(token)),
			 SVC_OK);
	dot1 = strchr(token, '.');
	ck_assert_ptr_nonnull(dot1);
	dot2 = strchr(dot1 + 1, '.');
	ck_assert_ptr_nonnull(dot2);
	ck_assert_ptr_null(strchr(dot2 + 1, '.'));
	n = svc_base64url_decode(token, (size_t)(dot1 - token), header,
				 sizeof(header) - 1);
	ck_assert_int_gt(n, 0);
	header[n] = '\0';
	ck_assert_str_eq((char *)header, HS256);

	memset(&c, 0xff, sizeof(c));
	ck_assert_int_eq(
		svc_jwt_verify(token, key, KEYLEN, NOW + 10, LEEWAY, &c, &why),
		SVC_OK);
	ck_assert_ptr_null(why);
	ck_assert_str_eq(c.sub, "user-42");
	ck_assert_str_eq(c.role, "admin");
	ck_assert_int_eq(c.iat, NOW);
	ck_assert_int_eq(c.exp, NOW + 3600);
}
END_TEST

START_TEST(mint_fits_the_largest_claims_in_512_bytes)
{
	char sub[sizeof(((struct svc_jwt_claims *)0)->sub)];
	char role[sizeof(((struct svc_jwt_claims *)0)->role)];
	char token[512];
	struct svc_jwt_claims c;

	memset(sub, 's', sizeof(sub) - 1);
	sub[sizeof(sub) - 1] = '\0';
	memset(role, 'r', sizeof(role) - 1);
	role[sizeof(role) - 1] = '\0';
	ck_assert_int_eq(svc_jwt_mint(sub, role, NOW, 60, key, KEYLEN, token,
				      sizeof(token)),
			 SVC_OK);
	ck_assert_int_eq(svc_jwt_verify(token, key, KEYLEN, NOW, 0, &c, NULL),
			 SVC_OK);
	ck_assert_str_eq(c.sub, sub);
	ck_assert_str_eq(c.role, role);
}
END_TEST

START_TEST(mint_refuses_small_buffers)
{
	char token[512];
	size_t full;

	ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW, 60, key, KEYLEN, token,
				      sizeof(token)),
			 SVC_OK);
	full = strlen(token);
	for (size_t size = 0; size <= full; size += 7)
		ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW, 60, key,
					      KEYLEN, token, size),
				 SVC_EINVAL);
	ck_assert_int_eq(
		svc_jwt_mint("u", "admin", NOW, 60, key, KEYLEN, token, full),
		SVC_EINVAL);
	ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW, 60, key, KEYLEN, token,
				      full + 2),
			 SVC_OK);
	ck_assert_uint_eq(strlen(token), full);
}
END_TEST

START_TEST(short_keys_are_refused)
{
	char token[512];
	const char *why = NULL;
	struct svc_jwt_claims c;

	ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW, 60, key,
				      SVC_JWT_MIN_KEY - 1, token,
				      sizeof(token)),
			 SVC_EINVAL);
	ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW, 60, key, 0, token,
				      sizeof(token)),
			 SVC_EINVAL);
	/* A token signed with a short key does not verify with it either. */
	strcpy(token,
	       build(HS256, GOOD_PAYLOAD, false, key, SVC_JWT_MIN_KEY - 1));
	ck_assert_int_eq(svc_jwt_verify(token, key, SVC_JWT_MIN_KEY - 1, NOW,
					LEEWAY, &c, &why),
			 SVC_EAUTH);
	ck_assert_ptr_nonnull(why);
	/* Exactly the minimum is enough. */
	ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW, 60, key,
				      SVC_JWT_MIN_KEY, token, sizeof(token)),
			 SVC_OK);
	ck_assert_int_eq(svc_jwt_verify(token, key, SVC_JWT_MIN_KEY, NOW,
					LEEWAY, &c, &why),
			 SVC_OK);
}
END_TEST

START_TEST(hand_built_tokens_verify)
{
	/* The builder itself makes tokens that pass: refusals below are real.
	 */
	assert_accepted(signed_token(HS256, GOOD_PAYLOAD));
	assert_accepted(signed_token("{\"alg\":\"HS256\"}", GOOD_PAYLOAD));
	assert_accepted(signed_token("{\"typ\":\"jwt\",\"alg\":\"HS256\"}",
				     GOOD_PAYLOAD));
	assert_accepted(signed_token(HS256,
				     "{\"sub\":\"u\",\"role\":\"user\","
				     "\"aud\":\"x\",\"exp\":1700000100}"));
}
END_TEST

/* --- refusals --- */

START_TEST(foreign_algorithms_are_refused)
{
	static const char *const headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"None\",\"typ\":\"JWT\"}",
		"{\"alg\":\"NONE\"}",
		"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS384\"}",
		"{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"ES256\"}",
		"{\"alg\":\"hs256\"}",
		"{\"alg\":\"HS256 \"}",
		"{\"alg\":\"\"}",
		"{\"alg\":null}",
		"{\"alg\":256}",
		"{\"alg\":[\"HS256\"]}",
		"{\"typ\":\"JWT\"}",
	};

	for (unsigned i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		assert_refused(signed_token(headers[i], GOOD_PAYLOAD),
			       "algorithm");
}
END_TEST

START_TEST(unsigned_none_tokens_are_refused)
{
	char token[1024], *p = token;

	p = put_b64(p, "{\"alg\":\"none\"}", 14);
	*p++ = '.';
	p = put_b64(p, GOOD_PAYLOAD, strlen(GOOD_PAYLOAD));
	strcpy(p, ".");
	assert_refused(token, "algorithm");
}
END_TEST

START_TEST(header_checks)
{
	assert_refused(signed_token("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}",
				    GOOD_PAYLOAD),
		       "type");
	assert_refused(
		signed_token("{\"alg\":\"HS256\",\"typ\":1}", GOOD_PAYLOAD),
		"type");
	assert_refused(signed_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
				    GOOD_PAYLOAD),
		       "critical");
	/* Two alg members: which one would win is not a question to ask. */
	assert_refused(signed_token("{\"alg\":\"HS256\",\"alg\":\"none\"}",
				    GOOD_PAYLOAD),
		       "header");
	assert_refused(signed_token("[\"HS256\"]", GOOD_PAYLOAD), "header");
	assert_refused(signed_token("not json", GOOD_PAYLOAD), "header");
	assert_refused(signed_token("", GOOD_PAYLOAD), "header");
}
END_TEST

START_TEST(segment_counts)
{
	char token[1024], two[1024], four[2100];

	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	strcpy(two, token);
	*strrchr(two, '.') = '\0';
	assert_refused(two, "three segments");
	snprintf(four, sizeof(four), "%s.%s", token, strrchr(token, '.') + 1);
	assert_refused(four, "three segments");
	snprintf(four, sizeof(four), "%s.", token);
	assert_refused(four, "three segments");
	assert_refused("", "three segments");
	assert_refused("abc", "three segments");
	assert_refused("..", "header");
	assert_refused("...", "three segments");
}
END_TEST

START_TEST(bad_base64url_is_refused)
{
	char token[1024];

	/* In the header. */
	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	token[3] = '+';
	assert_refused(token, "header");
	/* In the payload, under a signature that matches the bad text. */
	assert_refused(build(HS256, "eyJzdWIi*", true, key, KEYLEN), "payload");
	assert_refused(build(HS256, "eyJzdWIiOiJ1In0=", true, key, KEYLEN),
		       "payload");
	assert_refused(build(HS256, "e", true, key, KEYLEN), "payload");
	assert_refused(build(HS256, "", true, key, KEYLEN), "payload");
	/* In the signature. */
	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	token[strlen(token) - 1] = '=';
	assert_refused(token, "signature");
	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	token[strlen(token) - 5] = '/';
	assert_refused(token, "signature");
}
END_TEST

START_TEST(truncated_or_padded_signatures_are_refused)
{
	char token[1024];
	size_t len;

	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	len = strlen(token);
	for (size_t cut = 1; cut <= 43; cut++) {
		token[len - cut] = '\0';
		assert_refused(token, "signature");
	}
	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	strcat(token, "AA");
	assert_refused(token, "signature");
}
END_TEST

START_TEST(wrong_key_or_tampering_is_refused)
{
	char token[1024], forged[1024], sig[64], *dot, *p = forged;
	const char *admin =
		"{\"sub\":\"u2\",\"role\":\"admin\",\"exp\":1700003600}";

	assert_refused(
		build(HS256, GOOD_PAYLOAD, false, other_key, OTHER_KEYLEN),
		"bad token signature");
	/* Swap in another payload, keep the signature. */
	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	dot = strchr(token, '.') + 1;
	strcpy(sig, strchr(dot, '.'));
	memcpy(p, token, (size_t)(dot - token));
	p += dot - token;
	p = put_b64(p, admin, strlen(admin));
	strcpy(p, sig);
	assert_refused(forged, "bad token signature");
	/* Flip one signature character to another valid one. */
	strcpy(token, signed_token(HS256, GOOD_PAYLOAD));
	token[strlen(token) - 10] =
		token[strlen(token) - 10] == 'A' ? 'B' : 'A';
	assert_refused(token, "bad token signature");
}
END_TEST

START_TEST(expiry_and_leeway)
{
	/* Expired beyond the leeway. */
	assert_refused(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						  "\"admin\",\"exp\":%lld}",
						  NOW - LEEWAY - 1)),
		       "expired");
	assert_refused(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						  "\"admin\",\"exp\":%lld}",
						  NOW - 3600)),
		       "expired");
	/* Expired, but within the leeway. */
	assert_accepted(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						   "\"admin\",\"exp\":%lld}",
						   NOW - LEEWAY)));
	assert_accepted(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						   "\"admin\",\"exp\":%lld}",
						   NOW - 5)));
	/* A NumericDate may be a real number. */
	assert_accepted(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						   "\"admin\",\"exp\":%lld.5}",
						   NOW + 60)));
	/* The far future does not overflow into the past. */
	assert_accepted(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						   "\"admin\",\"exp\":%lld}",
						   LLONG_MAX)));
	assert_refused(signed_token(HS256, claims("{\"sub\":\"u\",\"role\":"
						  "\"admin\",\"exp\":%lld}",
						  LLONG_MIN)),
		       "expired");
}
END_TEST

#define WITH_CLAIM "{\"sub\":\"u\",\"role\":\"admin\",\"exp\":%lld,\"%s\":%lld}"

START_TEST(not_before_and_issued_at)
{

	assert_refused(signed_token(HS256, claims(WITH_CLAIM, NOW + 3600, "nbf",
						  NOW + LEEWAY + 1)),
		       "not valid yet");
	assert_accepted(signed_token(
		HS256, claims(WITH_CLAIM, NOW + 3600, "nbf", NOW + LEEWAY)));
	assert_accepted(signed_token(
		HS256, claims(WITH_CLAIM, NOW + 3600, "nbf", NOW - 100)));
	assert_refused(signed_token(HS256, claims(WITH_CLAIM, NOW + 3600, "iat",
						  NOW + LEEWAY + 1)),
		       "issued in the future");
	assert_refused(signed_token(HS256, claims(WITH_CLAIM, NOW + 7200, "iat",
						  NOW + 3600)),
		       "issued in the future");
	assert_accepted(signed_token(
		HS256, claims(WITH_CLAIM, NOW + 3600, "iat", NOW + LEEWAY)));

	/* Minted for later: the same check through svc_jwt_mint(). */
	{
		char token[512];

		ck_assert_int_eq(svc_jwt_mint("u", "admin", NOW + 600, 3600,
					      key, KEYLEN, token,
					      sizeof(token)),
				 SVC_OK);
		assert_refused(token, "issued in the future");
	}
}
END_TEST

START_TEST(time_claims_must_be_numbers)
{
	assert_refused(
		signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\"}"),
		"exp");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\","
					   "\"exp\":\"1700003600\"}"),
		       "exp");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\","
					   "\"exp\":null}"),
		       "exp");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\","
					   "\"exp\":1e300}"),
		       "exp");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\","
					   "\"exp\":1700003600,\"iat\":\"x\"}"),
		       "iat");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\","
					   "\"exp\":1700003600,\"nbf\":true}"),
		       "nbf");
}
END_TEST

START_TEST(sub_and_role_are_required_strings)
{
	static const char *const bad_sub[] = {
		"{\"role\":\"admin\",\"exp\":1700003600}",
		"{\"sub\":\"\",\"role\":\"admin\",\"exp\":1700003600}",
		"{\"sub\":7,\"role\":\"admin\",\"exp\":1700003600}",
		"{\"sub\":null,\"role\":\"admin\",\"exp\":1700003600}",
	};
	static const char *const bad_role[] = {
		"{\"sub\":\"u\",\"exp\":1700003600}",
		"{\"sub\":\"u\",\"role\":1,\"exp\":1700003600}",
		"{\"sub\":\"u\",\"role\":true,\"exp\":1700003600}",
		"{\"sub\":\"u\",\"role\":null,\"exp\":1700003600}",
		"{\"sub\":\"u\",\"role\":[\"admin\"],\"exp\":1700003600}",
		"{\"sub\":\"u\",\"role\":{\"n\":\"admin\"},\"exp\":1700003600}",
	};
	char sub[200];

	for (unsigned i = 0; i < sizeof(bad_sub) / sizeof(bad_sub[0]); i++)
		assert_refused(signed_token(HS256, bad_sub[i]), "sub");
	for (unsigned i = 0; i < sizeof(bad_role) / sizeof(bad_role[0]); i++)
		assert_refused(signed_token(HS256, bad_role[i]), "role");

	/* Longer than the claims struct holds: refused, not truncated. */
	memset(sub, 'x', 128);
	sub[128] = '\0';
	assert_refused(
		signed_token(HS256, claims("{\"sub\":\"%s\",\"role\":\"admin\","
					   "\"exp\":1700003600}",
					   sub)),
		"sub");
	assert_refused(
		signed_token(HS256, claims("{\"sub\":\"u\",\"role\":\"%.32s\","
					   "\"exp\":1700003600}",
					   sub)),
		"role");
}
END_TEST

START_TEST(duplicate_claims_are_refused)
{
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"user\","
					   "\"role\":\"admin\",\"exp\":"
					   "1700003600}"),
		       "payload");
	assert_refused(signed_token(HS256, "{\"sub\":\"a\",\"sub\":\"b\","
					   "\"role\":\"admin\",\"exp\":"
					   "1700003600}"),
		       "payload");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\",\"role\":\"admin\","
					   "\"exp\":1,\"exp\":1700003600}"),
		       "payload");
	assert_refused(signed_token(HS256, "[\"not\",\"an\",\"object\"]"),
		       "payload");
	assert_refused(signed_token(HS256, "{\"sub\":\"u\""), "payload");
}
END_TEST

START_TEST(odd_inputs)
{
	char big[5000];
	struct svc_jwt_claims c;

	assert_refused(NULL, "token");
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[100] = '.';
	big[200] = '.';
	assert_refused(big, "too long");
	/* why may be NULL. */
	ck_assert_int_eq(
		svc_jwt_verify("a.b.c", key, KEYLEN, NOW, LEEWAY, &c, NULL),
		SVC_EAUTH);
	ck_assert_int_eq(svc_jwt_verify(signed_token(HS256, GOOD_PAYLOAD), key,
					KEYLEN, NOW, LEEWAY, &c, NULL),
			 SVC_OK);
}
END_TEST

Suite *
jwt_suite(void)
{
	Suite *s = suite_create("jwt");
	TCase *b64 = tcase_create("base64url");
	TCase *ok = tcase_create("mint");
	TCase *refuse = tcase_create("refuse");

	tcase_add_test(b64, base64url_rfc4648_vectors);
	tcase_add_test(b64, base64url_uses_the_url_alphabet);
	tcase_add_test(b64, base64url_round_trips_every_byte);
	tcase_add_test(b64, base64url_refuses_what_no_encoder_writes);
	tcase_add_test(b64, base64url_respects_buffer_sizes);
	suite_add_tcase(s, b64);

	tcase_add_test(ok, mint_then_verify);
	tcase_add_test(ok, mint_fits_the_largest_claims_in_512_bytes);
	tcase_add_test(ok, mint_refuses_small_buffers);
	tcase_add_test(ok, short_keys_are_refused);
	tcase_add_test(ok, hand_built_tokens_verify);
	suite_add_tcase(s, ok);

	tcase_add_test(refuse, foreign_algorithms_are_refused);
	tcase_add_test(refuse, unsigned_none_tokens_are_refused);
	tcase_add_test(refuse, header_checks);
	tcase_add_test(refuse, segment_counts);
	tcase_add_test(refuse, bad_base64url_is_refused);
	tcase_add_test(refuse, truncated_or_padded_signatures_are_refused);
	tcase_add_test(refuse, wrong_key_or_tampering_is_refused);
	tcase_add_test(refuse, expiry_and_leeway);
	tcase_add_test(refuse, not_before_and_issued_at);
	tcase_add_test(refuse, time_claims_must_be_numbers);
	tcase_add_test(refuse, sub_and_role_are_required_strings);
	tcase_add_test(refuse, duplicate_claims_are_refused);
	tcase_add_test(refuse, odd_inputs);
	suite_add_tcase(s, refuse);
	return s;
}
