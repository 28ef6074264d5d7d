/*
 * mq_fixture.c - AMQP connections and tap queues for the event suites
 * (see the header).
 */
#include "mq_fixture.h"

#include <stdio.h>
#include <stdlib.h>

#include "svc/util.h"

struct svc_mq *
mqf_open(enum svc_mq_role role)
{
	return mqf_open_url(getenv("RABBITMQ_URL"), role);
}

struct svc_mq *
mqf_open_url(const char *url, enum svc_mq_role role)
{
	struct svc_mq_config c = {
		.url = url,
		.heartbeat_s = 30,
		.socket_timeout_ms = 5000,
		.app_id = "microshop-tests",
	};

	return c.url != NULL ? svc_mq_open(&c, role) : NULL;
}

void
mqf_tap(char queue[64], const char *prefix, const char *const *bindings)
{
	char id[SVC_UUID_LEN + 1];
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);

	svc_uuid_v4(id);
	snprintf(queue, 64, "%s.%.8s", prefix, id);
	if (mq != NULL)
		svc_mq_declare_queue(mq, queue, bindings, 5);
	svc_mq_close(mq);
}

void
mqf_untap(const char *queue)
{
	struct svc_mq *mq = mqf_open(SVC_MQ_CONSUMER);

	if (mq != NULL)
		svc_mq_delete_queue(mq, queue);
	svc_mq_close(mq);
}
