/*
 * svc/log.h - structured logs: one JSON object per line on stdout.
 *
 * Each line has ts, level, service, msg, and - when the calling thread is
 * serving a request - request_id and trace_id, then the caller's fields.
 * A line is formatted on the stack and written with one write(2), so lines
 * from different threads never interleave and logging never allocates.
 *
 *	svc_log(SVC_LOG_INFO, "product created",
 *		SVC_LOG_STR("id", id), SVC_LOG_INT("price_cents", 100),
 *		SVC_LOG_END);
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum svc_log_level {
	SVC_LOG_DEBUG,
	SVC_LOG_INFO,
	SVC_LOG_WARN,
	SVC_LOG_ERROR,
};

/* Field tags; use the SVC_LOG_* macros below rather than these. */
enum {
	SVC__LOG_END,
	SVC__LOG_STR,
	SVC__LOG_INT,
	SVC__LOG_DBL,
	SVC__LOG_BOOL,
	SVC__LOG_RAW, /* a value that is already JSON text */
};

#define SVC_LOG_STR(k, v)  SVC__LOG_STR, (const char *)(k), (const char *)(v)
#define SVC_LOG_INT(k, v)  SVC__LOG_INT, (const char *)(k), (long long)(v)
#define SVC_LOG_DBL(k, v)  SVC__LOG_DBL, (const char *)(k), (double)(v)
#define SVC_LOG_BOOL(k, v) SVC__LOG_BOOL, (const char *)(k), (int)(v)
#define SVC_LOG_RAW(k, v)  SVC__LOG_RAW, (const char *)(k), (const char *)(v)
#define SVC_LOG_END	   SVC__LOG_END

/* Sets the service name, the minimum level and the output fd (1 = stdout). */
void svc_log_init(const char *service, enum svc_log_level level, int fd);

/* Parses "debug|info|warn|error"; returns 0 or SVC_EINVAL. */
int svc_log_parse_level(const char *s, enum svc_log_level *out);

/* Parses LOG_FORMAT, "json" or "text"; returns 0 or SVC_EINVAL. */
int svc_log_parse_format(const char *s, bool *text);

/* Plain "time LEVEL msg key=value" lines instead of JSON (for terminals). */
void svc_log_set_text(bool on);

/* Whether a line at this level would be written. */
int svc_log_enabled(enum svc_log_level level);

/*
 * The calling thread's request context, put on every line it logs. Both
 * strings are borrowed and must outlive the request; NULL clears.
 */
void svc_log_set_context(const char *request_id, const char *trace_id);

/* Writes one line; fields end with SVC_LOG_END. */
void svc_log(enum svc_log_level level, const char *msg, ...);

/*
 * Formats a line into buf (tests, and callers that write elsewhere). Long
 * values are cut so the line always fits. Returns the length, excluding the
 * NUL; the line ends with a newline.
 */
size_t svc_log_vformat(char *buf, size_t size, enum svc_log_level level,
		       const char *msg, va_list ap);

#endif
