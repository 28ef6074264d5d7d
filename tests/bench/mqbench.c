/*
 * mqbench.c - the broker side of `make bench`'s event benchmarks: declares,
 * counts and deletes the benchmark's own queue, and publishes N messages
 * with publisher confirms in batches through libsvc's svc_mq publisher,
 * with no database, as the baseline the outbox relay is compared with
 * (the same publisher, batch size, message size and queue type, so the
 * ratio is what the outbox costs over the bare broker). Not a test and
 * not part of any service; RABBITMQ_URL says where the broker is.
 *
 *	mqbench declare QUEUE KEY	quorum queue bound to "events" with KEY
 *	mqbench count QUEUE		prints its message count
 *	mqbench delete QUEUE		deletes it (and QUEUE.dead)
 *	mqbench publish KEY N BATCH BYTES
 *		prints "N SECONDS" once all N are confirmed, each batch
 *		awaited before the next, bodies of about BYTES bytes
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/err.h"
#include "svc/log.h"
#include "svc/mq.h"
#include "svc/util.h"

#define CONFIRM_MS 60000

static struct svc_mq_config cfg;

static int
usage(void)
{
	fprintf(stderr, "usage: mqbench declare QUEUE KEY | count QUEUE |"
			" delete QUEUE | publish KEY N BATCH BYTES\n");
	return 2;
}

static struct svc_mq *
open_or_say(enum svc_mq_role role)
{
	struct svc_mq *mq = svc_mq_open(&cfg, role);

	if (mq == NULL)
		fprintf(stderr, "mqbench: cannot connect to %s\n", cfg.url);
	return mq;
}

static int
cmd_declare(const char *queue, const char *key)
{
	const char *const bindings[] = { key, NULL };
	struct svc_mq *mq = open_or_say(SVC_MQ_PUBLISHER);
	int rc = mq != NULL ? svc_mq_declare_queue(mq, queue, bindings, 0)
			    : SVC_EUNAVAIL;

	svc_mq_close(mq);
	return rc == SVC_OK ? 0 : 1;
}

static int
cmd_delete(const char *queue)
{
	struct svc_mq *mq = open_or_say(SVC_MQ_PUBLISHER);
	int rc = mq != NULL ? svc_mq_delete_queue(mq, queue) : SVC_EUNAVAIL;

	svc_mq_close(mq);
	return rc == SVC_OK ? 0 : 1;
}

/*
 * svc_mq has no passive declare (services never count messages), so this
 * one asks the broker directly: the declare-ok of a passive declare
 * carries the queue's message count.
 */
static int
cmd_count(const char *queue)
{
	struct amqp_connection_info info;
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	amqp_queue_declare_ok_t *ok = NULL;
	char *url = strdup(cfg.url);
	int rc = 1;

	if (url == NULL || sock == NULL || amqp_parse_url(url, &info) != 0 ||
	    amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK)
		goto out;
	if (amqp_login(conn, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
		       AMQP_SASL_METHOD_PLAIN, info.user, info.password)
		    .reply_type != AMQP_RESPONSE_NORMAL)
		goto out;
	if (amqp_channel_open(conn, 1) == NULL)
		goto out;
	ok = amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0,
				amqp_empty_table);
	if (ok != NULL) {
		printf("%u\n", ok->message_count);
		rc = 0;
	}
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
out:
	if (rc != 0)
		fprintf(stderr, "mqbench: cannot count queue %s\n", queue);
	amqp_destroy_connection(conn);
	free(url);
	return rc;
}

static int
cmd_publish(const char *key, long n, long batch, long bytes)
{
	struct svc_mq *mq = open_or_say(SVC_MQ_PUBLISHER);
	char id[SVC_UUID_LEN + 1], *body = malloc((size_t)bytes + 1);
	struct svc_mq_message m = { 0 };
	long long start;
	long done = 0;
	int rc = SVC_OK;

	if (mq == NULL || body == NULL) {
		rc = SVC_ENOMEM;
		goto out;
	}
	/* A JSON string of the size asked for, like an event's body. */
	memset(body, 'x', (size_t)bytes);
	body[0] = '"';
	body[bytes - 1] = '"';
	body[bytes] = '\0';
	m.type = key;
	m.message_id = id;
	m.body = body;
	m.len = (size_t)bytes;
	m.request_id = "bench";
	m.traceparent =
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	start = svc_now_ms();
	while (rc == SVC_OK && done < n) {
		uint64_t tag = 0;
		long i;

		for (i = 0; rc == SVC_OK && i < batch && done + i < n; i++) {
			svc_uuid_v4(id);
			rc = svc_mq_publish(mq, &m, &tag);
		}
		if (rc == SVC_OK)
			rc = svc_mq_wait_confirms(mq, tag, CONFIRM_MS, NULL,
						  NULL);
		done += i;
	}
	if (rc == SVC_OK)
		printf("%ld %.3f\n", n, (double)(svc_now_ms() - start) / 1000);
out:
	if (rc != SVC_OK)
		fprintf(stderr, "mqbench: publishing failed: %s\n",
			svc_strerror(rc));
	svc_mq_close(mq);
	free(body);
	return rc == SVC_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *url = getenv("RABBITMQ_URL");

	svc_log_init("mqbench", SVC_LOG_WARN, 2);
	cfg.url = url != NULL && *url != '\0' ? url : SVC_MQ_DEFAULT_URL;
	cfg.socket_timeout_ms = 30000;
	cfg.app_id = "bench";
	if (argc == 4 && strcmp(argv[1], "declare") == 0)
		return cmd_declare(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "count") == 0)
		return cmd_count(argv[2]);
	if (argc == 3 && strcmp(argv[1], "delete") == 0)
		return cmd_delete(argv[2]);
	if (argc == 6 && strcmp(argv[1], "publish") == 0) {
		long n = atol(argv[3]), batch = atol(argv[4]);
		long bytes = atol(argv[5]);

		if (n < 1 || batch < 1 || bytes < 2 || bytes > 1000000)
			return usage();
		return cmd_publish(argv[2], n, batch, bytes);
	}
	return usage();
}
