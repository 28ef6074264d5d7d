/*
 * mq_fixture.h - what the event suites share: an AMQP connection to the
 * test broker, and a "tap" - a queue of the test's own, bound to the
 * events exchange, declared in a fixture and deleted afterwards even when
 * the test failed.
 */
#ifndef MQ_FIXTURE_H
#define MQ_FIXTURE_H

#include "svc/mq.h"

/* A connection to $RABBITMQ_URL as role, or NULL (unset, or away). */
struct svc_mq *mqf_open(enum svc_mq_role role);
/* The same on the broker at url (NULL: none, returns NULL). */
struct svc_mq *mqf_open_url(const char *url, enum svc_mq_role role);

/*
 * Declares "<prefix>.<8 random hex>" (its name into queue, 64 bytes),
 * bound to "events" with bindings (NULL-terminated), delivery limit 5.
 * Quietly does nothing when the broker is away: the test then fails where
 * it uses the queue.
 */
void mqf_tap(char queue[64], const char *prefix, const char *const *bindings);

/* Deletes a tap (and its dead-letter queue); failures are ignored. */
void mqf_untap(const char *queue);

#endif
