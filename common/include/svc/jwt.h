/*
 * svc/jwt.h - HS256 JSON Web Tokens: verify bearer tokens, mint service ones.
 *
 * Only HS256 exists here: the algorithm is pinned, so a token that says
 * "none", "HS512" or "RS256" is refused before any signature is computed.
 * Signatures are compared in constant time. `exp` is required; `nbf` and
 * `iat` are checked when present; all three allow a small leeway for clock
 * skew. Keys shorter than 32 bytes are refused (RFC 8725, section 3.5).
 */
#ifndef SVC_JWT_H
#define SVC_JWT_H

#include <stddef.h>

#define SVC_JWT_MIN_KEY 32

/* The claims libsvc looks at. */
struct svc_jwt_claims {
	char sub[128];
	char role[32];
	long long iat;
	long long exp;
};

/*
 * Verifies token against key at time now (seconds since the epoch), with
 * leeway seconds of tolerance. On success fills *out and returns 0; on
 * failure returns SVC_EAUTH and points *why (may be NULL) at a static
 * reason fit for a log line or a problem detail ("token expired").
 */
int svc_jwt_verify(const char *token, const unsigned char *key, size_t keylen,
		   long long now, long long leeway, struct svc_jwt_claims *out,
		   const char **why);

/*
 * Mints a token for sub with role, valid from iat for ttl seconds, into
 * out (size bytes; 512 is always enough for sub/role within the claim
 * sizes above). Returns 0, or SVC_EINVAL when out is too small or the key
 * too short.
 */
int svc_jwt_mint(const char *sub, const char *role, long long iat,
		 long long ttl, const unsigned char *key, size_t keylen,
		 char *out, size_t size);

/* base64url without padding. Return the output length, or -1. */
long svc_base64url_encode(const unsigned char *in, size_t len, char *out,
			  size_t size);
long svc_base64url_decode(const char *in, size_t len, unsigned char *out,
			  size_t size);

#endif
