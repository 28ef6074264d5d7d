/*
 * log.c - JSON lines on stdout, one write(2) per line.
 *
 * The line is built in a fixed stack buffer; values that would overflow it
 * are cut (and marked with "..."), so a hostile header can never make a log
 * line allocate or split. The request context is thread-local: the HTTP
 * layer sets it around a handler, and every line that handler logs carries
 * the request and trace ids without passing them around.
 */
#include "svc/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc/err.h"

#define LINE_MAX_BYTES 8192

static const char *service_name = "svc";
static enum svc_log_level min_level = SVC_LOG_INFO;
static int out_fd = 1;

static _Thread_local const char *ctx_request_id;
static _Thread_local const char *ctx_trace_id;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
svc_log_init(const char *service, enum svc_log_level level, int fd)
{
	service_name = service;
	min_level = level;
	out_fd = fd;
}

int
svc_log_parse_level(const char *s, enum svc_log_level *out)
{
	for (int i = SVC_LOG_DEBUG; i <= SVC_LOG_ERROR; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum svc_log_level)i;
			return SVC_OK;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = SVC_LOG_WARN;
		return SVC_OK;
	}
	return SVC_EINVAL;
}

int
svc_log_enabled(enum svc_log_level level)
{
	return level >= min_level;
}

void
svc_log_set_context(const char *request_id, const char *trace_id)
{
	ctx_request_id = request_id;
	ctx_trace_id = trace_id;
}

/* A cursor over the line buffer; `room` keeps space for the closing "}\n". */
struct line {
	char *buf;
	size_t len;
	size_t room;
};

static void
put(struct line *l, const char *s, size_t n)
{
	if (l->len + n > l->room)
		n = l->room > l->len ? l->room - l->len : 0;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* A JSON string, escaped; cut with "..." when the line runs out. */
static void
put_string(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t limit = l->room - 8; /* leave space for '...", ' */

	if (s == NULL) {
		puts_(l, "null");
		return;
	}
	put(l, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6];
		size_t n = 0;

		if (c == '"' || c == '\\') {
			esc[n++] = '\\';
			esc[n++] = (char)c;
		} else if (c == '\n') {
			esc[n++] = '\\';
			esc[n++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		} else {
			esc[n++] = (char)c;
		}
		if (l->len + n > limit) {
			puts_(l, "...");
			break;
		}
		put(l, esc, n);
	}
	put(l, "\"", 1);
}

static void
put_key(struct line *l, const char *key)
{
	put(l, ",", 1);
	put_string(l, key);
	put(l, ":", 1);
}

static void
put_field(struct line *l, const char *key, const char *value)
{
	put_key(l, key);
	put_string(l, value);
}

size_t
svc_log_vformat(char *buf, size_t size, enum svc_log_level level,
		const char *msg, va_list ap)
{
	struct line l = { buf, 0, size - 3 };
	char ts[48], num[64];
	struct timespec now;
	struct tm tm;
	size_t n;
	int tag;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%06dZ", (int)(now.tv_nsec / 1000));
	puts_(&l, "{\"ts\":\"");
	puts_(&l, ts);
	puts_(&l, "\"");
	put_field(&l, "level", level_names[level]);
	put_field(&l, "service", service_name);
	put_field(&l, "msg", msg);
	if (ctx_request_id != NULL)
		put_field(&l, "request_id", ctx_request_id);
	if (ctx_trace_id != NULL)
		put_field(&l, "trace_id", ctx_trace_id);
	while ((tag = va_arg(ap, int)) != SVC__LOG_END) {
		const char *key = va_arg(ap, const char *);

		put_key(&l, key);
		switch (tag) {
		case SVC__LOG_STR:
			put_string(&l, va_arg(ap, const char *));
			break;
		case SVC__LOG_INT:
			snprintf(num, sizeof(num), "%lld",
				 va_arg(ap, long long));
			puts_(&l, num);
			break;
		case SVC__LOG_DBL:
			snprintf(num, sizeof(num), "%.6g", va_arg(ap, double));
			puts_(&l, num);
			break;
		case SVC__LOG_BOOL:
			puts_(&l, va_arg(ap, int) ? "true" : "false");
			break;
		case SVC__LOG_RAW:
			puts_(&l, va_arg(ap, const char *));
			break;
		default:
			puts_(&l, "null"); /* unknown tag: stop reading */
			goto out;
		}
	}
out:
	l.room = size - 1;
	put(&l, "}\n", 2);
	buf[l.len] = '\0';
	return l.len;
}

void
svc_log(enum svc_log_level level, const char *msg, ...)
{
	char buf[LINE_MAX_BYTES];
	size_t n;
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, msg);
	n = svc_log_vformat(buf, sizeof(buf), level, msg, ap);
	va_end(ap);
	/* One write: lines from different threads never interleave. */
	if (write(out_fd, buf, n) < 0)
		return;
}
