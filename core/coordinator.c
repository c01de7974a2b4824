/*
 * core/coordinator.c: placeholder while core/groups.c is being written (issue 6): no
 * coordinator on any shard, so the group handlers answer COORDINATOR_NOT_AVAILABLE.
 */
#include "core/coordinator.h"

#include <stdlib.h>
#include <time.h>

#include "core/broker.h"

int64_t coord_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct coord *coord_of(const struct shard *shard)
{
	(void)shard;
	return NULL;
}

int coord_create(struct coord **out, struct broker *b, const struct coord_settings *s)
{
	(void)b;
	(void)s;
	*out = NULL;
	return 0;
}

void coord_quiesce(struct coord *c)
{
	(void)c;
}

void coord_destroy(struct coord *c)
{
	(void)c;
}
