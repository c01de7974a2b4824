/*
 * tests/unit/check_shard.c: the shard runtime as sluiced runs it: a real shard set
 * (threads pinned to this machine's CPUs, their own rings, pools and mesh places)
 * hosting a test layer. Checks that layers start on every shard in order and stop in
 * reverse, that every shard can call every other with SHARD_OP_PING and gets each
 * reply on its own loop, and that a layer failing to start fails the whole start with
 * its message and leaves no thread behind.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/shard.h"
#include "unit.h"

#define PINGS_PER_PEER 1000

/* Per-shard state of the test layer. */
struct ping_state {
	struct shard *shard;
	struct shard_call calls[LIMITS_SHARDS_MAX]; /* one call record per peer */
	uint32_t sent[LIMITS_SHARDS_MAX];	    /* pings sent to each peer */
	uint32_t replies[LIMITS_SHARDS_MAX];	    /* replies received from each peer */
	uint32_t in_flight[LIMITS_SHARDS_MAX];
	bool bad_reply; /* a reply's arg was not ping + 1 */
};

static struct ping_state states[LIMITS_SHARDS_MAX];
static _Atomic uint32_t shards_done; /* shards that got every reply */
static _Atomic uint32_t start_order; /* sequence of layer starts and stops */
static _Atomic uint32_t stops_seen;

static void ping_reply(struct shard_call *call, const struct ring_msg *reply)
{
	struct ping_state *st = call->ctx;
	uint32_t peer = (uint32_t)(call - st->calls);
	if (reply->status != 0 || reply->arg != (uint64_t)st->replies[peer] + 1)
		st->bad_reply = true;
	st->replies[peer]++;
	st->in_flight[peer]--;
	uint32_t total = 0;
	uint32_t count = st->shard->set->count;
	for (uint32_t p = 0; p < count; p++)
		total += st->replies[p];
	if (total == PINGS_PER_PEER * (count - 1))
		atomic_fetch_add(&shards_done, 1);
}

/* Before each wait: keep one ping in flight per peer until all are sent, so replies
 * come back in order and each must carry the previous count + 1. */
static void ping_hook(void *ctx, struct loop *loop)
{
	struct ping_state *st = ctx;
	for (uint32_t peer = 0; peer < st->shard->set->count; peer++) {
		if (peer == st->shard->id || st->in_flight[peer] ||
		    st->sent[peer] == PINGS_PER_PEER)
			continue;
		st->calls[peer].done = ping_reply;
		st->calls[peer].ctx = st;
		if (shard_call(st->shard, peer, SHARD_OP_PING, NULL, st->sent[peer],
			       &st->calls[peer]) == 0) {
			st->sent[peer]++;
			st->in_flight[peer]++;
		}
	}
}

static int ping_start(struct shard *shard, void *ctx, char *err, size_t err_len)
{
	struct ping_state *st = &states[shard->id];
	memset(st, 0, sizeof(*st));
	st->shard = shard;
	shard->layer_state[0] = st;
	atomic_fetch_add(&start_order, 1);
	return loop_add_hook(&shard->loop, ping_hook, st);
}

static void ping_stop(struct shard *shard, void *ctx)
{
	ck_assert_ptr_eq(shard->layer_state[0], &states[shard->id]);
	atomic_fetch_add(&stops_seen, 1);
}

static int failing_start(struct shard *shard, void *ctx, char *err, size_t err_len)
{
	if (shard->id == shard->set->count - 1) {
		snprintf(err, err_len, "refusing on purpose");
		return -EPERM;
	}
	return 0;
}

static void test_config(struct config *cfg)
{
	config_defaults(cfg);
	cfg->pool_bytes = 2u * 1024 * 1024;
	cfg->port = 39092;
}

START_TEST(test_every_pair_pings)
{
	static struct config cfg;
	test_config(&cfg);
	static const struct shard_layer layers[] = {
	    {.name = "ping", .start = ping_start, .stop = ping_stop}};
	struct shard_set set;
	char err[512];
	atomic_store(&shards_done, 0);
	atomic_store(&stops_seen, 0);
	atomic_store(&start_order, 0);
	int ret = shard_set_start(&set, &cfg, layers, 1, err, sizeof(err));
	ck_assert_msg(ret == 0, "start failed: %s", err);
	ck_assert_uint_eq(atomic_load(&start_order), set.count);
	/* Bounded wait: at most 30 s for every shard to collect its replies. */
	for (int i = 0; i < 3000 && atomic_load(&shards_done) < set.count; i++)
		usleep(10000);
	uint32_t count = set.count;
	ck_assert_int_eq(shard_set_stop(&set), 0);
	if (count == 1)
		return; /* nothing to ping; still checked start and stop */
	ck_assert_uint_eq(atomic_load(&shards_done), count);
	ck_assert_uint_eq(atomic_load(&stops_seen), count);
	for (uint32_t s = 0; s < count; s++) {
		ck_assert(!states[s].bad_reply);
		for (uint32_t p = 0; p < count; p++)
			ck_assert_uint_eq(states[s].replies[p], p == s ? 0 : PINGS_PER_PEER);
	}
}
END_TEST

START_TEST(test_failing_layer_fails_start)
{
	static struct config cfg;
	test_config(&cfg);
	static const struct shard_layer layers[] = {
	    {.name = "ping", .start = ping_start, .stop = ping_stop},
	    {.name = "broken", .start = failing_start}};
	struct shard_set set;
	char err[512] = "";
	atomic_store(&stops_seen, 0);
	int ret = shard_set_start(&set, &cfg, layers, 2, err, sizeof(err));
	ck_assert_int_eq(ret, -EPERM);
	ck_assert_msg(strstr(err, "broken: refusing on purpose") != NULL, "error: %s", err);
	/* Every shard that started the ping layer stopped it again. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	ck_assert_uint_eq(atomic_load(&stops_seen), (uint32_t)(cpus > 0 ? cpus : 1));
}
END_TEST

int main(void)
{
	/* The failing case counts stops per shard: one shard per online CPU by default. */
	cpu_set_t mask;
	bool whole_machine = sched_getaffinity(0, sizeof(mask), &mask) == 0 &&
			     CPU_COUNT(&mask) == sysconf(_SC_NPROCESSORS_ONLN);
	Suite *s = suite_create("shard");
	unit_add_case(s, "every_pair_pings", test_every_pair_pings, 0, NULL);
	unit_add_case(s, "failing_layer_fails_start", test_failing_layer_fails_start, 0,
		      whole_machine ? NULL : "the affinity mask is not the whole machine");
	return unit_run(s);
}
