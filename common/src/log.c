/*
 * log.c - JSON lines on stdout, one write(2) per line (or plain text lines
 * for a terminal, LOG_FORMAT=text).
 *
 * The line is built in a fixed stack buffer; values that would overflow it
 * are cut (and marked with "..."), so a hostile header can never make a log
 * line allocate or split. The request context is thread-local: the HTTP
 * layer sets it around a handler, and every line that handler logs carries
 * the request and trace ids without passing them around.
 */
#include "svc/log.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc/err.h"

#define LINE_MAX_BYTES 8192

static const char *service_name = "svc";
static enum svc_log_level min_level = SVC_LOG_INFO;
static int out_fd = 1;
static bool text_format;

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
svc_log_parse_format(const char *s, bool *text)
{
	if (strcasecmp(s, "json") == 0 || strcasecmp(s, "text") == 0) {
		*text = strcasecmp(s, "text") == 0;
		return SVC_OK;
	}
	return SVC_EINVAL;
}

void
svc_log_set_text(bool on)
{
	text_format = on;
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

/*
 * A cursor over the line buffer; `room` keeps space for the closing "}\n".
 * `cut` is set once a string was shortened to fit, `overflow` once anything
 * else did not fit: the field being written is then dropped, since half a
 * number or half a key is not JSON.
 */
struct line {
	char *buf;
	size_t len;
	size_t room;
	bool cut, overflow;
};

static void
put(struct line *l, const char *s, size_t n)
{
	if (l->len + n > l->room) {
		n = l->room > l->len ? l->room - l->len : 0;
		l->overflow = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	unsigned long cp = s[0] & (0x7f >> n);

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

static void
puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/*
 * A JSON string, escaped; cut with "..." when the line runs out. Bytes that
 * are not UTF-8 become U+FFFD, and a character is never split by the cut.
 */
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
		size_t n = 0, u;

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
		} else if (c < 0x80) {
			esc[n++] = (char)c;
		} else {
			u = utf8_len((const unsigned char *)s);
			if (u == 0) {
				memcpy(esc, "\\ufffd", 6);
				n = 6;
			} else {
				memcpy(esc, s, u);
				n = u;
				s += u - 1;
			}
		}
		if (l->len + n > limit) {
			puts_(l, "...");
			l->cut = true;
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

/*
 * Ends the field that started at mark; false when nothing more fits. A
 * field that overflowed is taken back whole, so the line stays JSON.
 */
static bool
field_done(struct line *l, size_t mark)
{
	if (l->overflow)
		l->len = mark;
	return !l->overflow && !l->cut;
}

static size_t format_json(char *buf, size_t size, enum svc_log_level level,
			  const char *msg, va_list ap);

/* Appends s to a text line; quoted when it has spaces, control bytes made
 * visible so a value can never start a line of its own. */
static void
text_value(char *buf, size_t size, size_t *len, const char *s)
{
	bool quote = s[0] == '\0' || strpbrk(s, " \"=") != NULL;

	if (quote && *len < size)
		buf[(*len)++] = '"';
	for (; *s != '\0' && *len < size; s++) {
		unsigned char c = (unsigned char)*s;

		buf[(*len)++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (quote && *len < size)
		buf[(*len)++] = '"';
}

/*
 * "20:34:22.469 INFO  msg key=value ..." for people watching a terminal
 * (LOG_FORMAT=text); the service name is left to whoever prefixes lines.
 */
static size_t
format_text(char *buf, size_t size, enum svc_log_level level, const char *msg,
	    va_list ap)
{
	static const char *const names[] = { "DEBUG", "INFO ", "WARN ",
					     "ERROR" };
	size_t len, room = size - 2;
	struct timespec now;
	struct tm tm;
	char num[64];
	int tag;

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	len = strftime(buf, room, "%H:%M:%S", &tm);
	len += (size_t)snprintf(buf + len, room - len, ".%03d %s ",
				(int)(now.tv_nsec / 1000000), names[level]);
	for (const char *m = msg; *m != '\0' && len < room; m++)
		buf[len++] = (unsigned char)*m < 0x20 ? '?' : *m;
	if (ctx_request_id != NULL) {
		len += (size_t)snprintf(buf + len, room - len, " request_id=");
		text_value(buf, room, &len, ctx_request_id);
	}
	while (len < room && (tag = va_arg(ap, int)) != SVC__LOG_END) {
		const char *key = va_arg(ap, const char *), *v = num;

		switch (tag) {
		case SVC__LOG_STR:
		case SVC__LOG_RAW:
			v = va_arg(ap, const char *);
			break;
		case SVC__LOG_INT:
			snprintf(num, sizeof(num), "%lld",
				 va_arg(ap, long long));
			break;
		case SVC__LOG_DBL:
			snprintf(num, sizeof(num), "%.3f", va_arg(ap, double));
			break;
		case SVC__LOG_BOOL:
			v = va_arg(ap, int) ? "true" : "false";
			break;
		default:
			v = NULL;
			break;
		}
		if (v == NULL)
			break;
		len += (size_t)snprintf(buf + len, room - len, " %s=", key);
		if (len < room)
			text_value(buf, room, &len, v);
	}
	if (len > room)
		len = room;
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

size_t
svc_log_vformat(char *buf, size_t size, enum svc_log_level level,
		const char *msg, va_list ap)
{
	if (text_format)
		return format_text(buf, size, level, msg, ap);
	return format_json(buf, size, level, msg, ap);
}

static size_t
format_json(char *buf, size_t size, enum svc_log_level level, const char *msg,
	    va_list ap)
{
	struct line l = { buf, 0, size - 3, false, false };
	char ts[48], num[64];
	struct timespec now;
	struct tm tm;
	size_t n, mark;
	int tag;
	double d;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%06dZ", (int)(now.tv_nsec / 1000));
	puts_(&l, "{\"ts\":\"");
	puts_(&l, ts);
	puts_(&l, "\"");
	put_field(&l, "level", level_names[level]);
	mark = l.len;
	put_field(&l, "service", service_name);
	if (!field_done(&l, mark))
		goto out;
	mark = l.len;
	put_field(&l, "msg", msg);
	if (!field_done(&l, mark))
		goto out;
	mark = l.len;
	if (ctx_request_id != NULL)
		put_field(&l, "request_id", ctx_request_id);
	if (!field_done(&l, mark))
		goto out;
	mark = l.len;
	if (ctx_trace_id != NULL)
		put_field(&l, "trace_id", ctx_trace_id);
	if (!field_done(&l, mark))
		goto out;
	while ((tag = va_arg(ap, int)) != SVC__LOG_END) {
		const char *key = va_arg(ap, const char *);

		mark = l.len;
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
			/* JSON has no NaN or infinity. */
			d = va_arg(ap, double);
			snprintf(num, sizeof(num), "%.6g", d);
			puts_(&l, isfinite(d) ? num : "null");
			break;
		case SVC__LOG_BOOL:
			puts_(&l, va_arg(ap, int) ? "true" : "false");
			break;
		case SVC__LOG_RAW:
			puts_(&l, va_arg(ap, const char *));
			break;
		default:
			puts_(&l, "null"); /* unknown tag: stop reading */
			field_done(&l, mark);
			goto out;
		}
		if (!field_done(&l, mark))
			break;
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
