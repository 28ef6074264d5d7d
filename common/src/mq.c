/*
 * mq.c - one AMQP connection and channel over rabbitmq-c 0.11, for
 * publishing with confirms and consuming with manual acks.
 *
 * rabbitmq-c 0.11 gives frames, not events: there is no confirm API (that
 * came in 0.15) and no thread, so everything the broker sends - acks,
 * nacks, returns, deliveries, blocked notifications, a channel or
 * connection closing - is read here, one frame at a time, by wait_one(),
 * which every waiting call loops on. Confirms are tracked in an array
 * indexed by delivery tag; a basic.return carries no tag, so it is matched
 * to its message by a hash of the message id. Its socket is non-blocking
 * and its sends wait in poll(2) with no deadline (SO_SNDTIMEO has no
 * effect), so a broker that stops reading - a connection blocked by an
 * alarm - is bounded by TCP_USER_TIMEOUT instead. This file knows nothing
 * of the outbox or of inbox tables.
 */
#include "svc/mq.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "svc/config.h"
#include "svc/err.h"
#include "svc/log.h"
#include "svc/util.h"

#define CHANNEL		   1
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_SHORTSTR	   255
#define MAX_REDELIVERIES   1000
#define UNANSWERED	   (-1)
#define UNROUTABLE_KEYS	   64

/* A published message waiting for its confirm. */
struct pending {
	uint64_t id_hash;    /* of its message id, to match a basic.return */
	signed char outcome; /* an svc_mq_outcome, or UNANSWERED */
	bool returned;	     /* a basic.return came; its ack is still due */
};

struct svc_mq {
	amqp_connection_state_t conn;
	enum svc_mq_role role;
	bool logged_in;
	bool broken;
	long long timeout_ms;
	char app_id[MAX_SHORTSTR + 1];
	/* Publisher: tags base_tag .. next_tag - 1 are in pend, in order. */
	uint64_t next_tag;	/* the tag the next publish gets */
	uint64_t base_tag;	/* the tag of pend[0] */
	uint64_t first_pending; /* lowest tag still UNANSWERED, or next_tag */
	struct pending *pend;
	size_t cap;
	/* Routing keys already reported as unroutable on this connection. */
	uint64_t unroutable[UNROUTABLE_KEYS];
	size_t n_unroutable;
};

/* --- helpers --- */

static struct timeval
tv_ms(long long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	return tv;
}

static void
bytes_str(char *out, size_t size, amqp_bytes_t b)
{
	snprintf(out, size, "%.*s", b.len > INT_MAX ? INT_MAX : (int)b.len,
		 b.bytes != NULL ? (const char *)b.bytes : "");
}

static bool
bytes_eq(amqp_bytes_t b, const char *s)
{
	size_t n = strlen(s);

	return b.len == n && (n == 0 || memcmp(b.bytes, s, n) == 0);
}

/* FNV-1a: message ids only need telling apart within one batch. */
static uint64_t
hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static bool
shortstr_ok(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) <= MAX_SHORTSTR;
}

/* Queue names: no topic wildcards, nothing a log or a URL must escape. */
static bool
queue_name_ok(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max || strncmp(s, "amq.", 4) == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* Marks mq unusable, logging why the first time. */
static void
fail(struct svc_mq *mq, const char *why, const char *detail)
{
	if (!mq->broken)
		svc_log(SVC_LOG_WARN, "rabbitmq connection unusable",
			SVC_LOG_STR("reason", why),
			SVC_LOG_STR("error", detail != NULL ? detail : ""),
			SVC_LOG_END);
	mq->broken = true;
}

/*
 * The broker closed the channel or the connection (m is the close
 * method): answers with close-ok, as the protocol asks, and marks mq
 * broken. Returns the reply code (404, 406, ...).
 */
static int
closed_by_broker(struct svc_mq *mq, const amqp_method_t *m, const char *what)
{
	char text[256] = "";
	int code = 0;

	if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
		const amqp_connection_close_t *c = m->decoded;
		amqp_connection_close_ok_t ok = { 0 };

		code = c->reply_code;
		bytes_str(text, sizeof(text), c->reply_text);
		amqp_send_method(mq->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD,
				 &ok);
	} else if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
		const amqp_channel_close_t *c = m->decoded;
		amqp_channel_close_ok_t ok = { 0 };

		code = c->reply_code;
		bytes_str(text, sizeof(text), c->reply_text);
		amqp_send_method(mq->conn, CHANNEL,
				 AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
	} else {
		snprintf(text, sizeof(text), "unexpected method 0x%08x",
			 (unsigned)m->id);
	}
	if (!mq->broken)
		svc_log(SVC_LOG_WARN,
			m->id == AMQP_CHANNEL_CLOSE_METHOD
				? "rabbitmq closed the channel"
				: "rabbitmq closed the connection",
			SVC_LOG_STR("during", what),
			SVC_LOG_INT("reply_code", code),
			SVC_LOG_STR("reply_text", text), SVC_LOG_END);
	mq->broken = true;
	return code;
}

/* The outcome of the last RPC (declare, bind, consume, ...). */
static int
rpc_result(struct svc_mq *mq, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(mq->conn);

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return SVC_OK;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		fail(mq, what, amqp_error_string2(r.library_error));
		return r.library_error == AMQP_STATUS_TIMEOUT ? SVC_ETIMEOUT
							      : SVC_EUNAVAIL;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		switch (closed_by_broker(mq, &r.reply, what)) {
		case AMQP_NOT_FOUND:
			return SVC_ENOTFOUND;
		case AMQP_PRECONDITION_FAILED:
			return SVC_ECONFLICT;
		case AMQP_ACCESS_REFUSED:
			return SVC_EFORBIDDEN;
		default:
			return SVC_EUNAVAIL;
		}
	default:
		fail(mq, what, "no reply");
		return SVC_EINTERNAL;
	}
}

/* --- configuration --- */

static bool
url_ok(const char *url)
{
	struct amqp_connection_info info;
	char *copy = url != NULL ? strdup(url) : NULL;
	bool ok = copy != NULL && amqp_parse_url(copy, &info) == 0 &&
		  !info.ssl && info.host != NULL && info.host[0] != '\0';

	free(copy);
	return ok;
}

void
svc_mq_config_read(struct svc_mq_config *cfg)
{
	long long hb;

	cfg->url = svc_config_str("RABBITMQ_URL", SVC_MQ_DEFAULT_URL);
	if (!url_ok(cfg->url))
		svc_config_fail("RABBITMQ_URL",
				"must be an amqp://user:password@host:port/"
				"vhost URL (amqps:// is not supported)");
	hb = svc_config_duration_ms("RABBITMQ_HEARTBEAT", "30s", 0, 3600000);
	cfg->heartbeat_s = (int)((hb + 999) / 1000);
	cfg->socket_timeout_ms =
		svc_config_duration_ms("RABBITMQ_TIMEOUT", "5s", 1, 600000);
}

/* --- frames --- */

/* Reads the next frame, waiting until deadline (svc_now_ms() clock). */
static int
next_frame(struct svc_mq *mq, long long deadline, amqp_frame_t *f)
{
	struct timeval tv = tv_ms(deadline - svc_now_ms());
	int rc = amqp_simple_wait_frame_noblock(mq->conn, f, &tv);

	if (rc == AMQP_STATUS_OK)
		return SVC_OK;
	if (rc == AMQP_STATUS_TIMEOUT)
		return SVC_ETIMEOUT;
	fail(mq, "reading from the broker failed", amqp_error_string2(rc));
	return SVC_EUNAVAIL;
}

/* A method on channel 0: the connection closing, blocked or unblocked. */
static void
on_connection_method(struct svc_mq *mq, const amqp_method_t *m)
{
	char reason[256];

	switch (m->id) {
	case AMQP_CONNECTION_CLOSE_METHOD:
		closed_by_broker(mq, m, "waiting");
		break;
	case AMQP_CONNECTION_BLOCKED_METHOD:
		bytes_str(reason, sizeof(reason),
			  ((const amqp_connection_blocked_t *)m->decoded)
				  ->reason);
		/*
		 * A blocked publisher's sends would hang until the alarm
		 * clears; a consumer is not blocked, only told.
		 */
		if (mq->role == SVC_MQ_PUBLISHER)
			fail(mq, "the broker blocked publishing", reason);
		else
			svc_log(SVC_LOG_WARN, "rabbitmq blocks publishers",
				SVC_LOG_STR("reason", reason), SVC_LOG_END);
		break;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		svc_log(SVC_LOG_INFO, "rabbitmq unblocked publishers",
			SVC_LOG_END);
		break;
	default:
		break;
	}
}

/*
 * The next frame of a message's content (a header or a body frame) on our
 * channel; a connection method met on the way is handled. The content
 * follows its method at once, so not getting it by deadline means the
 * stream cannot be trusted any more.
 */
static int
content_frame(struct svc_mq *mq, long long deadline, uint8_t type,
	      amqp_frame_t *f)
{
	for (;;) {
		int rc = next_frame(mq, deadline, f);

		if (rc == SVC_ETIMEOUT) {
			fail(mq, "a message's content did not come", NULL);
			return SVC_EUNAVAIL;
		}
		if (rc != SVC_OK)
			return rc;
		if (f->channel == 0 && f->frame_type == AMQP_FRAME_METHOD) {
			on_connection_method(mq, &f->payload.method);
			if (mq->broken)
				return SVC_EUNAVAIL;
			continue;
		}
		if (f->channel != CHANNEL || f->frame_type != type) {
			fail(mq, "unexpected frame inside a message", NULL);
			return SVC_EUNAVAIL;
		}
		return SVC_OK;
	}
}

/*
 * The content header after a basic.deliver or basic.return. *props stays
 * valid until the channel's buffers are released (next wait_one()).
 */
static int
read_header(struct svc_mq *mq, long long deadline,
	    const amqp_basic_properties_t **props, uint64_t *size)
{
	amqp_frame_t f;
	int rc = content_frame(mq, deadline, AMQP_FRAME_HEADER, &f);

	if (rc != SVC_OK)
		return rc;
	*props = f.payload.properties.decoded;
	*size = f.payload.properties.body_size;
	return SVC_OK;
}

/* The body frames, copied to buf (size bytes; NULL skips them). */
static int
read_body(struct svc_mq *mq, long long deadline, uint64_t size, char *buf)
{
	for (uint64_t got = 0; got < size;) {
		amqp_frame_t f;
		size_t n;
		int rc = content_frame(mq, deadline, AMQP_FRAME_BODY, &f);

		if (rc != SVC_OK)
			return rc;
		n = f.payload.body_fragment.len;
		if (n > size - got) {
			fail(mq, "a message body is longer than announced",
			     NULL);
			return SVC_EUNAVAIL;
		}
		if (buf != NULL && n > 0)
			memcpy(buf + got, f.payload.body_fragment.bytes, n);
		got += n;
	}
	return SVC_OK;
}

static const amqp_field_value_t *
header(const amqp_basic_properties_t *p, const char *key)
{
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++)
		if (bytes_eq(p->headers.entries[i].key, key))
			return &p->headers.entries[i].value;
	return NULL;
}

static bool
header_str(const amqp_basic_properties_t *p, const char *key, amqp_bytes_t *out)
{
	const amqp_field_value_t *v = header(p, key);

	if (v == NULL || (v->kind != AMQP_FIELD_KIND_UTF8 &&
			  v->kind != AMQP_FIELD_KIND_BYTES))
		return false;
	*out = v->value.bytes;
	return true;
}

static long long
header_int(const amqp_basic_properties_t *p, const char *key)
{
	const amqp_field_value_t *v = header(p, key);

	if (v == NULL)
		return 0;
	switch (v->kind) {
	case AMQP_FIELD_KIND_I8:
		return v->value.i8;
	case AMQP_FIELD_KIND_U8:
		return v->value.u8;
	case AMQP_FIELD_KIND_I16:
		return v->value.i16;
	case AMQP_FIELD_KIND_U16:
		return v->value.u16;
	case AMQP_FIELD_KIND_I32:
		return v->value.i32;
	case AMQP_FIELD_KIND_U32:
		return v->value.u32;
	case AMQP_FIELD_KIND_I64:
		return v->value.i64;
	case AMQP_FIELD_KIND_U64:
		return v->value.u64 > LLONG_MAX ? LLONG_MAX
						: (long long)v->value.u64;
	default:
		return 0;
	}
}

/* One string of a delivery, to be copied into its allocation. */
struct field {
	amqp_bytes_t v;
	const char **dst;
};

static void
add_field(struct field *f, size_t *n, size_t *total, bool have, amqp_bytes_t v,
	  const char **dst)
{
	if (!have)
		return;
	f[*n].v = v;
	f[*n].dst = dst;
	*total += v.len + 1;
	(*n)++;
}

/*
 * Reads a delivery's content into out: every string and the body in one
 * allocation. With out NULL the content is read and dropped.
 */
static int
take_delivery(struct svc_mq *mq, const amqp_basic_deliver_t *d,
	      struct svc_mq_delivery *out)
{
	long long deadline = svc_now_ms() + mq->timeout_ms;
	const amqp_basic_properties_t *p;
	struct field f[9];
	size_t n = 0, total = 0;
	amqp_bytes_t h;
	uint64_t size;
	char *mem, *at;
	int rc;

	rc = read_header(mq, deadline, &p, &size);
	if (rc != SVC_OK)
		return rc;
	if (out == NULL) {
		svc_log(SVC_LOG_WARN,
			"rabbitmq delivery to a publisher dropped",
			SVC_LOG_END);
		return read_body(mq, deadline, size, NULL);
	}
	add_field(f, &n, &total, true, d->exchange, &out->exchange);
	add_field(f, &n, &total, true, d->routing_key, &out->routing_key);
	add_field(f, &n, &total, p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG,
		  p->message_id, &out->message_id);
	add_field(f, &n, &total, p->_flags & AMQP_BASIC_TYPE_FLAG, p->type,
		  &out->type);
	add_field(f, &n, &total, p->_flags & AMQP_BASIC_APP_ID_FLAG, p->app_id,
		  &out->app_id);
	add_field(f, &n, &total, p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG,
		  p->content_type, &out->content_type);
	add_field(f, &n, &total, header_str(p, "traceparent", &h), h,
		  &out->traceparent);
	add_field(f, &n, &total, header_str(p, "x-request-id", &h), h,
		  &out->request_id);
	add_field(f, &n, &total, header_str(p, "x-first-death-reason", &h), h,
		  &out->dead_reason);
	if (size > SIZE_MAX - total - 1 ||
	    (mem = malloc(total + (size_t)size + 1)) == NULL) {
		fail(mq, "no memory for a delivery", NULL);
		return SVC_ENOMEM;
	}
	at = mem;
	for (size_t i = 0; i < n; i++) {
		if (f[i].v.len > 0)
			memcpy(at, f[i].v.bytes, f[i].v.len);
		at[f[i].v.len] = '\0';
		*f[i].dst = at;
		at += f[i].v.len + 1;
	}
	out->tag = d->delivery_tag;
	out->redelivered = d->redelivered != 0;
	out->delivery_count = (int)header_int(p, "x-delivery-count");
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		out->timestamp = p->timestamp > LLONG_MAX
					 ? LLONG_MAX
					 : (long long)p->timestamp;
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		out->delivery_mode = p->delivery_mode;
	rc = read_body(mq, deadline, size, at);
	if (rc != SVC_OK) {
		free(mem);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	at[size] = '\0';
	out->body = at;
	out->len = (size_t)size;
	out->mem = mem;
	return SVC_OK;
}

/* --- confirms --- */

static struct pending *
entry(struct svc_mq *mq, uint64_t tag)
{
	return &mq->pend[tag - mq->base_tag];
}

static void
advance_first_pending(struct svc_mq *mq)
{
	while (mq->first_pending < mq->next_tag &&
	       entry(mq, mq->first_pending)->outcome != UNANSWERED)
		mq->first_pending++;
}

/* basic.ack or basic.nack for tag, or for every tag up to it. */
static void
on_confirm(struct svc_mq *mq, uint64_t tag, bool multiple, bool ack)
{
	uint64_t from = multiple ? mq->first_pending : tag;

	if (tag >= mq->next_tag) {
		svc_log(SVC_LOG_WARN, "rabbitmq confirmed an unknown tag",
			SVC_LOG_INT("tag", (long long)tag), SVC_LOG_END);
		return;
	}
	if (from < mq->base_tag)
		from = mq->base_tag; /* already reported */
	for (uint64_t t = from; t <= tag; t++) {
		struct pending *e = entry(mq, t);

		if (e->outcome != UNANSWERED)
			continue;
		e->outcome = !ack	   ? SVC_MQ_NACKED
			     : e->returned ? SVC_MQ_RETURNED
					   : SVC_MQ_ACKED;
	}
	advance_first_pending(mq);
}

/* Whether key is reported unroutable for the first time (remembers it). */
static bool
first_unroutable(struct svc_mq *mq, const char *key)
{
	uint64_t h = hash_bytes(key, strlen(key));

	for (size_t i = 0; i < mq->n_unroutable; i++)
		if (mq->unroutable[i] == h)
			return false;
	if (mq->n_unroutable < UNROUTABLE_KEYS)
		mq->unroutable[mq->n_unroutable++] = h;
	return true;
}

/*
 * basic.return: the message could not be routed. Its ack follows; until
 * then the oldest unanswered message with the same id is the one.
 */
static int
on_return(struct svc_mq *mq, const amqp_basic_return_t *r)
{
	long long deadline = svc_now_ms() + mq->timeout_ms;
	const amqp_basic_properties_t *p;
	char key[MAX_SHORTSTR + 1], text[256], id[MAX_SHORTSTR + 1] = "";
	uint64_t size, h;
	int rc;

	bytes_str(key, sizeof(key), r->routing_key);
	bytes_str(text, sizeof(text), r->reply_text);
	rc = read_header(mq, deadline, &p, &size);
	if (rc != SVC_OK)
		return rc;
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
		bytes_str(id, sizeof(id), p->message_id);
		h = hash_bytes(p->message_id.bytes, p->message_id.len);
		for (uint64_t t = mq->first_pending; t < mq->next_tag; t++) {
			struct pending *e = entry(mq, t);

			if (e->outcome == UNANSWERED && !e->returned &&
			    e->id_hash == h) {
				e->returned = true;
				break;
			}
		}
	}
	/* An event type nobody subscribes to is normal in pub/sub: say so
	 * once per key and connection, not once per event. */
	svc_log(first_unroutable(mq, key) ? SVC_LOG_INFO : SVC_LOG_DEBUG,
		"rabbitmq returned an unroutable message: no queue is bound"
		" for its routing key",
		SVC_LOG_STR("routing_key", key), SVC_LOG_STR("message_id", id),
		SVC_LOG_INT("reply_code", r->reply_code),
		SVC_LOG_STR("reply_text", text), SVC_LOG_END);
	return read_body(mq, deadline, size, NULL);
}

/*
 * Calls fn for every tag up to up_to_tag not reported yet and forgets
 * them; the unanswered ones are reported as SVC_MQ_UNCONFIRMED.
 */
static void
report(struct svc_mq *mq, uint64_t up_to_tag, svc_mq_confirm_fn fn, void *arg)
{
	size_t n, count = (size_t)(mq->next_tag - mq->base_tag);

	if (up_to_tag < mq->base_tag)
		return;
	n = (size_t)(up_to_tag - mq->base_tag + 1);
	for (size_t i = 0; i < n; i++) {
		int o = mq->pend[i].outcome;

		if (fn != NULL)
			fn(arg, mq->base_tag + i,
			   o == UNANSWERED ? SVC_MQ_UNCONFIRMED
					   : (enum svc_mq_outcome)o);
	}
	memmove(mq->pend, mq->pend + n, (count - n) * sizeof(*mq->pend));
	mq->base_tag += n;
	if (mq->first_pending < mq->base_tag)
		mq->first_pending = mq->base_tag;
}

/* --- the frame loop --- */

/*
 * Waits until deadline for one frame and handles it. Returns 0 when a
 * frame was handled (*got true when it was a delivery, now in out),
 * SVC_ETIMEOUT when none came, or the error that broke mq.
 */
static int
wait_one(struct svc_mq *mq, long long deadline, struct svc_mq_delivery *out,
	 bool *got)
{
	amqp_frame_t f;
	const amqp_method_t *m;
	int rc;

	/* What earlier frames decoded is copied out by now. */
	amqp_maybe_release_buffers_on_channel(mq->conn, 0);
	amqp_maybe_release_buffers_on_channel(mq->conn, CHANNEL);
	rc = next_frame(mq, deadline, &f);
	if (rc != SVC_OK)
		return rc;
	if (f.frame_type != AMQP_FRAME_METHOD) {
		fail(mq, "a content frame without its method", NULL);
		return SVC_EUNAVAIL;
	}
	m = &f.payload.method;
	if (f.channel == 0) {
		on_connection_method(mq, m);
		return mq->broken ? SVC_EUNAVAIL : SVC_OK;
	}
	switch (m->id) {
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *a = m->decoded;

		if (mq->role == SVC_MQ_PUBLISHER)
			on_confirm(mq, a->delivery_tag, a->multiple, true);
		break;
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *n = m->decoded;

		if (mq->role == SVC_MQ_PUBLISHER)
			on_confirm(mq, n->delivery_tag, n->multiple, false);
		break;
	}
	case AMQP_BASIC_RETURN_METHOD:
		rc = on_return(mq, m->decoded);
		break;
	case AMQP_BASIC_DELIVER_METHOD:
		rc = take_delivery(mq, m->decoded, out);
		if (rc == SVC_OK && out != NULL)
			*got = true;
		break;
	case AMQP_CHANNEL_CLOSE_METHOD:
		closed_by_broker(mq, m, "waiting");
		break;
	case AMQP_BASIC_CANCEL_METHOD:
		fail(mq, "the broker cancelled the consumer",
		     "its queue was deleted");
		break;
	default:
		break;
	}
	if (rc == SVC_OK && mq->broken)
		rc = SVC_EUNAVAIL;
	return rc;
}

/* Handles whatever already arrived, without waiting. */
static int
drain(struct svc_mq *mq)
{
	for (;;) {
		int rc = wait_one(mq, svc_now_ms(), NULL, NULL);

		if (rc == SVC_ETIMEOUT)
			return SVC_OK;
		if (rc != SVC_OK)
			return rc;
	}
}

/* --- opening and closing --- */

static int
log_in(struct svc_mq *mq, const struct amqp_connection_info *info,
       int heartbeat_s)
{
	amqp_table_entry_t caps[] = {
		{ .key = amqp_cstring_bytes("connection.blocked"),
		  .value = { .kind = AMQP_FIELD_KIND_BOOLEAN,
			     .value.boolean = 1 } },
		{ .key = amqp_cstring_bytes("consumer_cancel_notify"),
		  .value = { .kind = AMQP_FIELD_KIND_BOOLEAN,
			     .value.boolean = 1 } },
	};
	amqp_table_entry_t props[] = {
		{ .key = amqp_cstring_bytes("capabilities"),
		  .value = { .kind = AMQP_FIELD_KIND_TABLE,
			     .value.table = { 2, caps } } },
		{ .key = amqp_cstring_bytes("connection_name"),
		  .value = { .kind = AMQP_FIELD_KIND_UTF8,
			     .value.bytes = amqp_cstring_bytes(mq->app_id) } },
	};
	amqp_table_t table = { 2, props };
	amqp_rpc_reply_t r;
	char port[16];

	if (heartbeat_s < 0)
		heartbeat_s = 0;
	if (heartbeat_s > UINT16_MAX)
		heartbeat_s = UINT16_MAX;
	r = amqp_login_with_properties(
		mq->conn, info->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat_s,
		&table, AMQP_SASL_METHOD_PLAIN, info->user, info->password);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		mq->logged_in = true;
		return SVC_OK;
	}
	snprintf(port, sizeof(port), "%d", info->port);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
		closed_by_broker(mq, &r.reply, "logging in");
	} else {
		svc_log(SVC_LOG_ERROR, "cannot log in to rabbitmq",
			SVC_LOG_STR("host", info->host),
			SVC_LOG_STR("port", port),
			SVC_LOG_STR("user", info->user),
			SVC_LOG_STR("vhost", info->vhost),
			SVC_LOG_STR("error",
				    amqp_error_string2(r.library_error)),
			SVC_LOG_END);
	}
	mq->broken = true;
	return SVC_EUNAVAIL;
}

static int
declare_exchange(struct svc_mq *mq, const char *name)
{
	amqp_exchange_declare(mq->conn, CHANNEL, amqp_cstring_bytes(name),
			      amqp_cstring_bytes("topic"), 0, 1, 0, 0,
			      amqp_empty_table);
	return rpc_result(mq, "declaring an exchange");
}

/* Bounds the time sent data may stay unacknowledged or unsent. */
static void
set_send_timeout(struct svc_mq *mq)
{
	int fd = amqp_get_sockfd(mq->conn);
	unsigned int ms =
		mq->timeout_ms > UINT_MAX ? UINT_MAX : (unsigned)mq->timeout_ms;

	if (fd < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) != 0)
		svc_log(SVC_LOG_WARN, "cannot set TCP_USER_TIMEOUT",
			SVC_LOG_END);
}

struct svc_mq *
svc_mq_open(const struct svc_mq_config *cfg, enum svc_mq_role role)
{
	struct amqp_connection_info info;
	struct svc_mq *mq = NULL;
	amqp_socket_t *sock;
	struct timeval tv;
	char *url = NULL;
	int rc;

	if (cfg == NULL || cfg->url == NULL ||
	    (role != SVC_MQ_PUBLISHER && role != SVC_MQ_CONSUMER))
		return NULL;
	url = strdup(cfg->url);
	mq = calloc(1, sizeof(*mq));
	if (url == NULL || mq == NULL)
		goto fail;
	mq->role = role;
	mq->timeout_ms = cfg->socket_timeout_ms > 0 ? cfg->socket_timeout_ms
						    : DEFAULT_TIMEOUT_MS;
	mq->next_tag = mq->base_tag = mq->first_pending = 1;
	snprintf(mq->app_id, sizeof(mq->app_id), "%s",
		 cfg->app_id != NULL && *cfg->app_id != '\0' ? cfg->app_id
							     : "svc");
	if (amqp_parse_url(url, &info) != AMQP_STATUS_OK || info.ssl) {
		svc_log(SVC_LOG_ERROR,
			"cannot connect to rabbitmq: malformed URL",
			SVC_LOG_END);
		goto fail;
	}
	mq->conn = amqp_new_connection();
	sock = mq->conn != NULL ? amqp_tcp_socket_new(mq->conn) : NULL;
	if (sock == NULL)
		goto fail;
	tv = tv_ms(mq->timeout_ms);
	rc = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
	if (rc != AMQP_STATUS_OK) {
		char port[16];

		snprintf(port, sizeof(port), "%d", info.port);
		svc_log(SVC_LOG_ERROR, "cannot connect to rabbitmq",
			SVC_LOG_STR("host", info.host),
			SVC_LOG_STR("port", port),
			SVC_LOG_STR("error", amqp_error_string2(rc)),
			SVC_LOG_END);
		goto fail;
	}
	set_send_timeout(mq);
	amqp_set_handshake_timeout(mq->conn, &tv);
	amqp_set_rpc_timeout(mq->conn, &tv);
	if (log_in(mq, &info, cfg->heartbeat_s) != SVC_OK)
		goto fail;
	amqp_channel_open(mq->conn, CHANNEL);
	if (rpc_result(mq, "opening the channel") != SVC_OK ||
	    declare_exchange(mq, SVC_MQ_EXCHANGE) != SVC_OK ||
	    declare_exchange(mq, SVC_MQ_DLX) != SVC_OK)
		goto fail;
	if (role == SVC_MQ_PUBLISHER) {
		amqp_confirm_select(mq->conn, CHANNEL);
		if (rpc_result(mq, "selecting confirms") != SVC_OK)
			goto fail;
	}
	free(url);
	return mq;
fail:
	free(url);
	svc_mq_close(mq);
	return NULL;
}

void
svc_mq_close(struct svc_mq *mq)
{
	if (mq == NULL)
		return;
	if (mq->conn != NULL) {
		/* Each RPC is bounded by the rpc timeout set at open. */
		if (mq->logged_in && !mq->broken &&
		    amqp_channel_close(mq->conn, CHANNEL, AMQP_REPLY_SUCCESS)
				    .reply_type == AMQP_RESPONSE_NORMAL)
			amqp_connection_close(mq->conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(mq->conn);
	}
	free(mq->pend);
	free(mq);
}

bool
svc_mq_ok(const struct svc_mq *mq)
{
	return mq != NULL && !mq->broken;
}

/* --- publishing --- */

static amqp_table_entry_t
str_entry(const char *key, const char *value)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(key);
	e.value.kind = AMQP_FIELD_KIND_UTF8;
	e.value.value.bytes = amqp_cstring_bytes(value);
	return e;
}

/* Room in pend for one more message. */
static int
grow(struct svc_mq *mq)
{
	size_t count = (size_t)(mq->next_tag - mq->base_tag);
	struct pending *p;
	size_t cap;

	if (count < mq->cap)
		return SVC_OK;
	cap = mq->cap == 0 ? 256 : mq->cap * 2;
	p = realloc(mq->pend, cap * sizeof(*p));
	if (p == NULL)
		return SVC_ENOMEM;
	mq->pend = p;
	mq->cap = cap;
	return SVC_OK;
}

int
svc_mq_publish(struct svc_mq *mq, const struct svc_mq_message *m, uint64_t *tag)
{
	amqp_basic_properties_t p;
	amqp_table_entry_t headers[2];
	struct pending *e;
	amqp_bytes_t body;
	int nh = 0, rc;

	if (mq == NULL || m == NULL || mq->role != SVC_MQ_PUBLISHER ||
	    !shortstr_ok(m->type) || !shortstr_ok(m->message_id) ||
	    (m->body == NULL && m->len > 0))
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	rc = drain(mq);
	if (rc != SVC_OK)
		return rc;
	if (grow(mq) != SVC_OK)
		return SVC_ENOMEM;
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
		   AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
		   AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG |
		   AMQP_BASIC_TIMESTAMP_FLAG;
	p.content_type = amqp_cstring_bytes(SVC_MQ_CONTENT_TYPE);
	p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	p.message_id = amqp_cstring_bytes(m->message_id);
	p.type = amqp_cstring_bytes(m->type);
	p.app_id = amqp_cstring_bytes(mq->app_id);
	p.timestamp =
		(uint64_t)(m->timestamp > 0 ? m->timestamp : svc_time_s());
	if (shortstr_ok(m->traceparent))
		headers[nh++] = str_entry("traceparent", m->traceparent);
	if (shortstr_ok(m->request_id))
		headers[nh++] = str_entry("x-request-id", m->request_id);
	if (nh > 0) {
		p._flags |= AMQP_BASIC_HEADERS_FLAG;
		p.headers.num_entries = nh;
		p.headers.entries = headers;
	}
	body.len = m->len;
	body.bytes = (void *)m->body;
	rc = amqp_basic_publish(mq->conn, CHANNEL,
				amqp_cstring_bytes(SVC_MQ_EXCHANGE),
				amqp_cstring_bytes(m->type), 1, 0, &p, body);
	if (rc != AMQP_STATUS_OK) {
		fail(mq, "publishing failed", amqp_error_string2(rc));
		return SVC_EUNAVAIL;
	}
	e = entry(mq, mq->next_tag);
	e->id_hash = hash_bytes(m->message_id, strlen(m->message_id));
	e->outcome = UNANSWERED;
	e->returned = false;
	if (tag != NULL)
		*tag = mq->next_tag;
	mq->next_tag++;
	return SVC_OK;
}

const char *
svc_mq_outcome_name(enum svc_mq_outcome outcome)
{
	switch (outcome) {
	case SVC_MQ_ACKED:
		return "acked";
	case SVC_MQ_NACKED:
		return "nacked";
	case SVC_MQ_RETURNED:
		return "returned";
	case SVC_MQ_UNCONFIRMED:
		return "unconfirmed";
	}
	return "unknown";
}

int
svc_mq_wait_confirms(struct svc_mq *mq, uint64_t up_to_tag,
		     long long timeout_ms, svc_mq_confirm_fn fn, void *arg)
{
	long long deadline;
	int rc = SVC_OK;

	if (mq == NULL || mq->role != SVC_MQ_PUBLISHER ||
	    up_to_tag >= mq->next_tag)
		return SVC_EINVAL;
	deadline = svc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	while (!mq->broken && mq->first_pending <= up_to_tag) {
		rc = wait_one(mq, deadline, NULL, NULL);
		if (rc == SVC_ETIMEOUT) {
			fail(mq, "confirms did not come in time", NULL);
			break;
		}
		if (rc != SVC_OK)
			break;
		if (svc_now_ms() > deadline && mq->first_pending <= up_to_tag) {
			rc = SVC_ETIMEOUT;
			fail(mq, "confirms did not come in time", NULL);
			break;
		}
	}
	if (mq->first_pending > up_to_tag)
		rc = SVC_OK; /* every answer came, even if mq broke after */
	else if (rc == SVC_OK)
		rc = SVC_EUNAVAIL;
	report(mq, up_to_tag, fn, arg);
	return rc;
}

int
svc_mq_tick(struct svc_mq *mq)
{
	if (mq == NULL || mq->role != SVC_MQ_PUBLISHER)
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	return drain(mq);
}

/* --- consuming --- */

static int
declare(struct svc_mq *mq, const char *queue, amqp_table_t args)
{
	amqp_queue_declare(mq->conn, CHANNEL, amqp_cstring_bytes(queue), 0, 1,
			   0, 0, args);
	return rpc_result(mq, "declaring a queue");
}

static int
bind_queue(struct svc_mq *mq, const char *queue, const char *exchange,
	   const char *key)
{
	amqp_queue_bind(mq->conn, CHANNEL, amqp_cstring_bytes(queue),
			amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
			amqp_empty_table);
	return rpc_result(mq, "binding a queue");
}

int
svc_mq_declare_queue(struct svc_mq *mq, const char *queue,
		     const char *const *bindings, int max_redeliveries)
{
	char dead[SVC_MQ_MAX_QUEUE + sizeof(SVC_MQ_DEAD_SUFFIX)];
	amqp_table_entry_t qargs[6], dargs[1];
	int rc;

	if (mq == NULL || !queue_name_ok(queue, SVC_MQ_MAX_QUEUE) ||
	    max_redeliveries < 0 || max_redeliveries > MAX_REDELIVERIES)
		return SVC_EINVAL;
	for (int i = 0; bindings != NULL && bindings[i] != NULL; i++)
		if (!shortstr_ok(bindings[i]))
			return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	snprintf(dead, sizeof(dead), "%s%s", queue, SVC_MQ_DEAD_SUFFIX);

	/* The dead-letter queue first, so dead letters always have a home. */
	dargs[0] = str_entry("x-queue-type", "quorum");
	rc = declare(mq, dead, (amqp_table_t){ 1, dargs });
	if (rc == SVC_OK)
		rc = bind_queue(mq, dead, SVC_MQ_DLX, queue);
	if (rc != SVC_OK)
		return rc;

	qargs[0] = str_entry("x-queue-type", "quorum");
	qargs[1] = str_entry("x-dead-letter-exchange", SVC_MQ_DLX);
	qargs[2] = str_entry("x-dead-letter-routing-key", queue);
	qargs[3] = str_entry("x-dead-letter-strategy", "at-least-once");
	qargs[4] = str_entry("x-overflow", "reject-publish");
	qargs[5].key = amqp_cstring_bytes("x-delivery-limit");
	qargs[5].value.kind = AMQP_FIELD_KIND_I64;
	qargs[5].value.value.i64 = max_redeliveries;
	rc = declare(mq, queue, (amqp_table_t){ 6, qargs });
	for (int i = 0; rc == SVC_OK && bindings != NULL && bindings[i]; i++)
		rc = bind_queue(mq, queue, SVC_MQ_EXCHANGE, bindings[i]);
	return rc;
}

int
svc_mq_delete_queue(struct svc_mq *mq, const char *queue)
{
	char dead[SVC_MQ_MAX_QUEUE + sizeof(SVC_MQ_DEAD_SUFFIX)];
	const char *names[] = { queue, dead };

	if (mq == NULL || !queue_name_ok(queue, SVC_MQ_MAX_QUEUE))
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	snprintf(dead, sizeof(dead), "%s%s", queue, SVC_MQ_DEAD_SUFFIX);
	for (int i = 0; i < 2; i++) {
		int rc;

		amqp_queue_delete(mq->conn, CHANNEL,
				  amqp_cstring_bytes(names[i]), 0, 0);
		rc = rpc_result(mq, "deleting a queue");
		if (rc != SVC_OK)
			return rc;
	}
	return SVC_OK;
}

int
svc_mq_consume(struct svc_mq *mq, const char *queue, int prefetch)
{
	int rc;

	if (mq == NULL || mq->role != SVC_MQ_CONSUMER ||
	    !queue_name_ok(queue, MAX_SHORTSTR) || prefetch < 1 ||
	    prefetch > UINT16_MAX)
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	amqp_basic_qos(mq->conn, CHANNEL, 0, (uint16_t)prefetch, 0);
	rc = rpc_result(mq, "setting the prefetch");
	if (rc != SVC_OK)
		return rc;
	amqp_basic_consume(mq->conn, CHANNEL, amqp_cstring_bytes(queue),
			   amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	return rpc_result(mq, "starting a consumer");
}

int
svc_mq_next(struct svc_mq *mq, long long timeout_ms,
	    struct svc_mq_delivery *out)
{
	long long deadline = svc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (mq == NULL || out == NULL || mq->role != SVC_MQ_CONSUMER)
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	for (;;) {
		bool got = false;
		int rc = wait_one(mq, deadline, out, &got);

		if (rc != SVC_OK)
			return rc;
		if (got)
			return SVC_OK;
		if (svc_now_ms() > deadline)
			return SVC_ETIMEOUT;
	}
}

void
svc_mq_delivery_cleanup(struct svc_mq_delivery *d)
{
	if (d == NULL)
		return;
	free(d->mem);
	memset(d, 0, sizeof(*d));
}

int
svc_mq_ack(struct svc_mq *mq, uint64_t tag)
{
	int rc;

	if (mq == NULL || mq->role != SVC_MQ_CONSUMER)
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	rc = amqp_basic_ack(mq->conn, CHANNEL, tag, 0);
	if (rc != AMQP_STATUS_OK) {
		fail(mq, "acking failed", amqp_error_string2(rc));
		return SVC_EUNAVAIL;
	}
	return SVC_OK;
}

int
svc_mq_reject(struct svc_mq *mq, uint64_t tag, bool requeue)
{
	int rc;

	if (mq == NULL || mq->role != SVC_MQ_CONSUMER)
		return SVC_EINVAL;
	if (mq->broken)
		return SVC_EUNAVAIL;
	rc = amqp_basic_reject(mq->conn, CHANNEL, tag, requeue);
	if (rc != AMQP_STATUS_OK) {
		fail(mq, "rejecting failed", amqp_error_string2(rc));
		return SVC_EUNAVAIL;
	}
	return SVC_OK;
}
