/*
 * prices.c - the last price seen for each product, for when products is
 * unavailable.
 *
 * A fixed table of slots indexed by a hash of the product id: bounded
 * memory whatever the catalogue size, and a newer price simply takes an
 * older one's slot. A price is only offered while it is younger than the
 * configured staleness (PRICE_MAX_STALENESS, 5 minutes by default): an
 * order at a slightly old price beats no order, a very old price does not.
 */
#include "orders.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "svc/util.h"

#define SLOTS 16384 /* a power of two */

struct slot {
	char product_id[SVC_UUID_LEN + 1];
	struct price price;
	long long at_ms;
};

static struct slot slots[SLOTS];
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static long long max_staleness_ms = 300000;

void
prices_set_max_staleness(long long ms)
{
	max_staleness_ms = ms;
}

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (SLOTS - 1);
}

void
prices_put(const char *product_id, const struct price *p)
{
	struct slot *s = &slots[hash(product_id)];

	pthread_rwlock_wrlock(&lock);
	snprintf(s->product_id, sizeof(s->product_id), "%s", product_id);
	s->price = *p;
	s->at_ms = svc_now_ms();
	pthread_rwlock_unlock(&lock);
}

bool
prices_get(const char *product_id, struct price *p, long long *age_ms)
{
	const struct slot *s = &slots[hash(product_id)];
	bool found = false;

	pthread_rwlock_rdlock(&lock);
	if (strcmp(s->product_id, product_id) == 0) {
		*age_ms = svc_now_ms() - s->at_ms;
		if (*age_ms <= max_staleness_ms) {
			*p = s->price;
			found = true;
		}
	}
	pthread_rwlock_unlock(&lock);
	return found;
}
