/*
 * fuzz_trace.c - libFuzzer target for W3C traceparent parsing:
 * svc_trace_valid() and svc_trace_start() on the input, and, when the
 * input was valid, a check that the new span keeps its trace id and that
 * svc_trace_format() writes a header that parses again. It does not touch
 * span recording or export.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svc_trace t;
	char out[SVC_TRACEPARENT_LEN + 1];
	char *s = malloc(size + 1);
	bool valid;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	valid = svc_trace_valid(s);
	svc_trace_start(s, &t);
	svc_trace_format(&t, out);
	if (!svc_trace_valid(out))
		abort(); /* we must always produce a header we accept */
	if (valid && strncmp(out + 3, s + 3, 32) != 0)
		abort(); /* a valid parent's trace id is kept */
	free(s);
	return 0;
}
