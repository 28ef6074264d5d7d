/*
 * trace.c - W3C Trace Context: validating traceparent headers and starting
 * a span under one (see svc/trace.h). Ids come from svc_random_bytes; an
 * id that came out all zero (invalid in the spec) is drawn again. This is
 * not span recording or export.
 */
#include "svc/trace.h"

#include <stdio.h>
#include <string.h>

#include "svc/err.h"
#include "svc/util.h"

static bool
lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool
svc_trace_valid(const char *s)
{
	static const int width[] = { 2, 32, 16, 2 };
	bool nonzero[4] = { false, false, false, false };
	const char *p = s;

	if (s == NULL)
		return false;
	for (int f = 0; f < 4; f++) {
		for (int i = 0; i < width[f]; i++, p++) {
			if (!lower_hex(*p))
				return false;
			if (*p != '0')
				nonzero[f] = true;
		}
		if (f < 3 && *p++ != '-')
			return false;
	}
	if (strncmp(s, "ff", 2) == 0 || !nonzero[1] || !nonzero[2])
		return false;
	if (*p == '\0')
		return true;
	if (strncmp(s, "00", 2) == 0 || *p != '-' || strlen(p) > 256)
		return false;
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* n random bytes as 2n lower-case hex digits, never all zero. */
static void
random_hex(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char b[16];
	bool zero = true;

	while (zero) {
		if (svc_random_bytes(b, n) != SVC_OK)
			memset(b, 0x5a, n); /* unreachable in practice */
		for (size_t i = 0; i < n; i++)
			zero = zero && b[i] == 0;
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void
svc_trace_start(const char *parent, struct svc_trace *out)
{
	if (svc_trace_valid(parent)) {
		unsigned flags = 0;

		memcpy(out->trace_id, parent + 3, SVC_TRACE_ID_LEN);
		out->trace_id[SVC_TRACE_ID_LEN] = '\0';
		sscanf(parent + 3 + SVC_TRACE_ID_LEN + 1 + SVC_SPAN_ID_LEN + 1,
		       "%2x", &flags);
		out->flags = (unsigned char)flags;
	} else {
		random_hex(out->trace_id, SVC_TRACE_ID_LEN / 2);
		out->flags = 0x01;
	}
	random_hex(out->span_id, SVC_SPAN_ID_LEN / 2);
}

void
svc_trace_format(const struct svc_trace *t, char out[SVC_TRACEPARENT_LEN + 1])
{
	snprintf(out, SVC_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", t->trace_id,
		 t->span_id, t->flags);
}
