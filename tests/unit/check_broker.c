/*
 * tests/unit/check_broker.c: the broker layer (core/broker) and the topic tables it
 * keeps on every shard (core/topics), on a real shard set as sluiced runs it (pinned
 * threads, their rings, pools and mesh) hosting the broker layer and a small probe
 * layer, over a data directory on a file system that takes O_DIRECT (the build
 * directory or /var/tmp; small pools, staging rings and segments). The test thread
 * drives the shards by posting commands to their rings (MSG_RING, LOOP_KIND_TEST); each
 * command runs on its shard's thread and the test thread checks what came back. Covers:
 * a topic created from the last shard is in every shard's table with the same ids and
 * meta's placement, and registered in its owners' shard logs; auto-create takes
 * num.partitions; creates of one name racing from every shard: exactly one wins; a
 * burst of creates from one shard asked while the mesh window to shard 0 is full (so
 * they wait in the asker's queue and are retried); thousands of creates asked at once
 * from every shard, with names raced between them, group-committed by shard 0 in far
 * fewer journal writes than changes, each answered only once in every table, and all
 * back after a restart; add partitions, configs (their retention
 * reaching the shard log, removed configs falling back to the broker default), delete (ids
 * unreachable, never reused); expired data removed by the retention timer; a stop and
 * a start on the same data directory: topics, ids, placement, configs and appended
 * bytes are all back; and a start with fewer shards than the data needs refused with a
 * line naming the fix. Cases that cannot run here (no io_uring, no O_DIRECT) say SKIP.
 */
#include "core/broker.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/config.h"
#include "core/meta.h"
#include "core/shard.h"
#include "core/shardlog.h"
#include "core/topics.h"
#include "io/loop.h"
#include "io/pool.h"
#include "tests/unit/testdir.h"
#include "tests/unit/testbatch.h"
#include "tests/unit/unit.h"

#define KIB (1024u)
#define MIB (1024u * 1024)

/* Small enough for many shards on a small machine, large enough for the shard log: the
 * staging ring is carved from the pool and disk reads need chunks beside it. */
#define TEST_POOL_BYTES	   (4u * MIB)
#define TEST_STAGING_BYTES (1u * MIB)
#define TEST_SEGMENT_BYTES (4u * MIB)
/* A command not answered within this is a hang, not slowness. */
#define TEST_WAIT_MS 20000
/* Partitions a test topic has at most (inspect copies this many). */
#define TEST_PARTITIONS_MAX 16u
/* Creates in the burst case. */
#define TEST_BURST 200u
/* Creates each shard asks for at once in the group-commit case, and names every shard
 * asks for (one wins each). */
#define TEST_MANY     1500u
#define TEST_MANY_DUP 100u
_Static_assert((TEST_MANY + TEST_MANY_DUP) / 16 >= TEST_MANY_DUP, "every dup name is asked");
/* The same in the failed-write case. */
#define TEST_DOOMED	80u
#define TEST_DOOMED_DUP 5u
/* Pings that fill the mesh window to shard 0 before the burst: one more than it takes. */
#define TEST_PINGS_MAX (LIMITS_RING_SLOTS / 2 + 1)

/* Decided once in main(), before the cases fork. */
static struct {
	char base[4096]; /* mkdtemp dir on an O_DIRECT-capable file system, or "" */
	char skip[1200]; /* why no case can run here, or "" */
} machine;

/* --- commands run on a shard ---------------------------------------------------------- */

enum cmd_kind {
	CMD_CREATE = 1,
	CMD_DELETE,
	CMD_ADD_PARTITIONS,
	CMD_SET_CONFIG,
	CMD_INSPECT,
	CMD_APPEND,
	CMD_READ,
	CMD_BURST,
	CMD_RETENTION_RUNS,
	CMD_STATS,
	CMD_MANY,
};

/* What one shard sees of a topic. */
struct inspect {
	bool found;			      /* topics_find */
	uint64_t topic_id;		      /* its id */
	uint32_t partition_count;	      /* its partitions */
	uint32_t ids[TEST_PARTITIONS_MAX];    /* partition ids */
	uint32_t shards[TEST_PARTITIONS_MAX]; /* owners */
	bool by_id[TEST_PARTITIONS_MAX];      /* topics_by_partition_id maps back */
	bool registered[TEST_PARTITIONS_MAX]; /* in this shard's log */
	struct shardlog_partition_info info[TEST_PARTITIONS_MAX]; /* where registered */
	int64_t retention_ms, retention_bytes;			  /* the view's typed values */
	char retention_ms_config[32];		    /* topics_view_config, "" if unset */
	uint32_t probe_count;			    /* ids asked about by the test */
	uint32_t probe_ids[TEST_PARTITIONS_MAX];    /* ... */
	bool probe_reachable[TEST_PARTITIONS_MAX];  /* topics_by_partition_id found them */
	bool probe_registered[TEST_PARTITIONS_MAX]; /* in this shard's log */
	struct shardlog_partition_info probe_info[TEST_PARTITIONS_MAX];
	uint32_t topic_count; /* topics_count */
	bool sane;	      /* topics_sanity */
};

struct cmd {
	enum cmd_kind kind;
	uint32_t shard;				/* where it runs */
	char name[LIMITS_TOPIC_NAME_BYTES + 1]; /* topic */
	uint32_t partitions;			/* create / add partitions */
	struct meta_config_kv configs[4];	/* create */
	uint32_t config_count;			/* create */
	const char *key, *value;		/* set config */
	uint32_t partition_id;			/* append / read */
	const uint8_t *batch;			/* append */
	uint32_t batch_len;			/* append */
	/* results */
	int immediate;		   /* what the topics_* / shardlog call returned */
	int status;		   /* what its callback said */
	bool had_view;		   /* done got a view */
	uint32_t view_partitions;  /* its partition count */
	int64_t base_offset;	   /* append */
	uint8_t *out;		   /* read: the bytes (malloc'ed, cmd owner frees) */
	uint32_t out_len;	   /* read */
	struct shardlog_read *rd;  /* read in flight */
	struct shardlog *log;	   /* read: the log it runs on */
	uint32_t burst_answered;   /* burst: callbacks run */
	uint32_t burst_ok;	   /* burst: of them, status 0 */
	uint32_t many_own;	   /* many: creates of this shard's own names */
	uint32_t many_dup;	   /* many: creates of names every shard asks for */
	uint32_t many_unseen;	   /* many: answered 0 before the table had the topic */
	int many_error;		   /* many: an error expected for some answers */
	uint32_t many_errors;	   /* many: answers with many_error */
	struct shard_call *pings;  /* burst: the pings filling the mesh window */
	uint32_t pings_sent;	   /* burst: pings sent */
	uint32_t pings_replied;	   /* burst: their replies */
	uint64_t retention_runs;   /* broker's counter */
	struct topics_stats stats; /* stats */
	struct inspect in;	   /* inspect */
	_Atomic int done;	   /* set last, by the shard */
};

static void cmd_finish(struct cmd *c)
{
	atomic_store_explicit(&c->done, 1, memory_order_release);
}

static void cmd_topics_done(void *ctx, int status, const struct topic_view *view)
{
	struct cmd *c = ctx;
	c->status = status;
	c->had_view = view != NULL;
	c->view_partitions = view ? view->partition_count : 0;
	cmd_finish(c);
}

static void cmd_burst_check(struct cmd *c)
{
	if (c->burst_answered == TEST_BURST && c->pings_replied == c->pings_sent)
		cmd_finish(c);
}

static void cmd_burst_done(void *ctx, int status, const struct topic_view *view)
{
	struct cmd *c = ctx;
	c->burst_answered++;
	c->burst_ok += status == 0 && view != NULL;
	cmd_burst_check(c);
}

/* CMD_MANY: the answer to one create; its table must have the topic already. */
static void cmd_many_done(void *ctx, int status, const struct topic_view *view)
{
	struct cmd *c = ctx;
	c->burst_answered++;
	c->burst_ok += status == 0 && view != NULL;
	c->many_unseen += status == 0 && (!view || view->partition_count != 1);
	c->many_errors += status != 0 && status == c->many_error && view == NULL;
	if (c->burst_answered == c->many_own + c->many_dup)
		cmd_finish(c);
}

static void cmd_ping_replied(struct shard_call *call, const struct ring_msg *reply)
{
	struct cmd *c = call->ctx;
	c->pings_replied++;
	cmd_burst_check(c);
}

static void cmd_append_done(void *ctx, int status, int64_t base_offset)
{
	struct cmd *c = ctx;
	c->status = status;
	if (status == 0 && base_offset != c->base_offset)
		c->status = -EPROTO;
	cmd_finish(c);
}

static void cmd_read_copy(struct cmd *c, int status)
{
	struct shardlog_read *rd = c->rd;
	c->status = status;
	if (status == 0) {
		c->out = malloc(rd->bytes ? rd->bytes : 1);
		c->out_len = 0;
		for (uint32_t i = 0; c->out && i < rd->slice_count; i++) {
			memcpy(c->out + c->out_len, rd->slices[i].data, rd->slices[i].len);
			c->out_len += rd->slices[i].len;
		}
	}
	shardlog_read_release(c->log, rd);
	free(rd);
	c->rd = NULL;
	cmd_finish(c);
}

static void cmd_read_done(void *ctx, struct shardlog_read *rd)
{
	struct cmd *c = ctx;
	cmd_read_copy(c, rd->status);
}

static void cmd_inspect(struct shard *shard, struct cmd *c)
{
	struct topics *t = broker_topics(shard);
	struct shardlog *log = broker_log(shard);
	struct inspect *in = &c->in;
	in->topic_count = topics_count(t);
	in->sane = topics_sanity(t);
	const struct topic_view *v = topics_find(t, c->name);
	in->found = v != NULL;
	if (v) {
		in->topic_id = v->topic_id;
		in->partition_count = v->partition_count;
		in->retention_ms = v->retention_ms;
		in->retention_bytes = v->retention_bytes;
		const char *rms = topics_view_config(v, TOPICS_CONFIG_RETENTION_MS);
		snprintf(in->retention_ms_config, sizeof(in->retention_ms_config), "%s",
			 rms ? rms : "");
		/* The same lookup by a wire-style (not NUL-terminated) name. */
		char wire[LIMITS_TOPIC_NAME_BYTES + 8];
		size_t len = strlen(c->name);
		memcpy(wire, c->name, len);
		memcpy(wire + len, "XXXX", 4);
		if (topics_find_len(t, wire, len) != v)
			in->sane = false;
		for (uint32_t p = 0; p < v->partition_count && p < TEST_PARTITIONS_MAX; p++) {
			uint32_t id = v->partitions[p].partition_id, index = UINT32_MAX;
			in->ids[p] = id;
			in->shards[p] = v->partitions[p].shard;
			in->by_id[p] = topics_by_partition_id(t, id, &index) == v && index == p;
			in->registered[p] = shardlog_partition_has(log, id);
			if (in->registered[p])
				shardlog_partition_info(log, id, &in->info[p]);
		}
	}
	for (uint32_t i = 0; i < in->probe_count; i++) {
		uint32_t id = in->probe_ids[i];
		in->probe_reachable[i] = topics_by_partition_id(t, id, NULL) != NULL;
		in->probe_registered[i] = shardlog_partition_has(log, id);
		if (in->probe_registered[i])
			shardlog_partition_info(log, id, &in->probe_info[i]);
	}
	cmd_finish(c);
}

/* LOOP_KIND_TEST completions: a command from the test thread. */
static void probe_on_cmd(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct shard *shard = ctx;
	struct cmd *c = (struct cmd *)(uintptr_t)loop_udata_value(cqe->user_data);
	atomic_thread_fence(memory_order_acquire);
	struct topics *t = broker_topics(shard);
	struct shardlog *log = broker_log(shard);
	switch (c->kind) {
	case CMD_CREATE:
		c->immediate = topics_create(t, c->name, c->partitions, c->configs, c->config_count,
					     cmd_topics_done, c);
		break;
	case CMD_DELETE:
		c->immediate = topics_delete(t, c->name, cmd_topics_done, c);
		break;
	case CMD_ADD_PARTITIONS:
		c->immediate = topics_add_partitions(t, c->name, c->partitions, cmd_topics_done, c);
		break;
	case CMD_SET_CONFIG:
		c->immediate = topics_set_config(t, c->name, c->key, c->value, cmd_topics_done, c);
		break;
	case CMD_INSPECT:
		cmd_inspect(shard, c);
		return;
	case CMD_BURST:
		/* Shard 0 cannot answer before this handler returns, so after these pings the
		 * window to it is full and every create below must wait for a retry. */
		for (uint32_t i = 0; shard->id != 0 && i < TEST_PINGS_MAX; i++) {
			c->pings[i] = (struct shard_call){.done = cmd_ping_replied, .ctx = c};
			if (shard_call(shard, 0, SHARD_OP_PING, NULL, i, &c->pings[i]) < 0)
				break;
			c->pings_sent++;
		}
		for (uint32_t i = 0; i < TEST_BURST; i++) {
			char name[64];
			snprintf(name, sizeof(name), "burst-%u", i);
			int ret = topics_create(t, name, 1, NULL, 0, cmd_burst_done, c);
			if (ret < 0) {
				c->immediate = ret;
				cmd_finish(c);
				return; /* answers already due still count, harmlessly */
			}
		}
		return;
	case CMD_STATS:
		topics_stats(t, &c->stats);
		cmd_finish(c);
		return;
	case CMD_MANY:
		/* Own names and names every shard asks for, interleaved, all at once. */
		for (uint32_t i = 0; i < c->many_own + c->many_dup; i++) {
			char name[LIMITS_TOPIC_NAME_BYTES + 1];
			if (i % 16 == 0 && i / 16 < c->many_dup)
				snprintf(name, sizeof(name), "%.32s-dup-%u", c->name, i / 16);
			else
				snprintf(name, sizeof(name), "%.32s-%u-%u", c->name, shard->id, i);
			int ret = topics_create(t, name, 1, NULL, 0, cmd_many_done, c);
			if (ret < 0) {
				c->immediate = ret;
				cmd_finish(c);
				return;
			}
		}
		return;
	case CMD_RETENTION_RUNS:
		c->retention_runs = broker_of(shard)->retention_runs;
		cmd_finish(c);
		return;
	case CMD_APPEND:
		c->base_offset = shardlog_append(log, c->partition_id, c->batch, c->batch_len, true,
						 cmd_append_done, c);
		if (c->base_offset < 0) {
			c->immediate = (int)c->base_offset;
			cmd_finish(c);
		}
		return;
	case CMD_READ:
		c->rd = calloc(1, sizeof(*c->rd));
		if (!c->rd) {
			c->immediate = -ENOMEM;
			cmd_finish(c);
			return;
		}
		c->log = log;
		c->immediate = shardlog_read(log, c->partition_id, 0, MIB, c->rd, cmd_read_done, c);
		if (c->immediate == 0) {
			cmd_read_copy(c, 0);
		} else if (c->immediate != -EINPROGRESS) {
			free(c->rd);
			c->rd = NULL;
			cmd_finish(c);
		}
		return;
	}
	if (c->immediate < 0)
		cmd_finish(c);
}

static int probe_start(struct shard *shard, void *ctx, char *err, size_t err_len)
{
	if (!broker_of(shard)) {
		snprintf(err, err_len, "the broker layer is not up below the probe");
		return -EINVAL;
	}
	loop_on(&shard->loop, LOOP_KIND_TEST, probe_on_cmd, shard);
	return 0;
}

/* --- the harness ---------------------------------------------------------------------- */

struct harness {
	struct config cfg;
	struct broker_ctx bctx;
	struct shard_layer layers[2];
	struct shard_set set;
	struct loop ctl; /* the test thread's own ring, to post commands */
	uint32_t count;	 /* shards */
	bool running;
	uint64_t retention_interval_ms; /* settings.retention_check_interval_ms */
};

static void harness_dir(struct harness *h, const char *name)
{
	config_defaults(&h->cfg);
	h->cfg.pool_bytes = TEST_POOL_BYTES;
	h->cfg.port = 39300;
	int n = snprintf(h->cfg.data_dir, sizeof(h->cfg.data_dir), "%s/%s", machine.base, name);
	ck_assert_int_lt(n, (int)sizeof(h->cfg.data_dir));
	char explain[512];
	ck_assert_msg(loop_init(&h->ctl, 64, explain, sizeof(explain)) == 0, "ring: %s", explain);
	h->retention_interval_ms = 60000;
}

/* Prepares the broker for the shards this machine gives, and starts the set. */
static void harness_start(struct harness *h)
{
	char err[1024] = "";
	int cpus[LIMITS_SHARDS_MAX];
	ck_assert_msg(
	    config_shard_cpus(&h->cfg, cpus, LIMITS_SHARDS_MAX, &h->count, err, sizeof(err)) == 0,
	    "cpus: %s", err);
	int ret = broker_prepare(&h->bctx, &h->cfg, h->count, err, sizeof(err));
	ck_assert_msg(ret == 0, "broker_prepare: %s (%d)", err, ret);
	h->bctx.settings.staging_bytes = TEST_STAGING_BYTES;
	h->bctx.settings.segment_bytes = TEST_SEGMENT_BYTES;
	h->bctx.settings.retention_check_interval_ms = h->retention_interval_ms;
	h->layers[0] = broker_layer(&h->bctx);
	h->layers[1] = (struct shard_layer){.name = "probe", .start = probe_start};
	ret = shard_set_start(&h->set, &h->cfg, h->layers, 2, err, sizeof(err));
	ck_assert_msg(ret == 0, "shard_set_start: %s (%d)", err, ret);
	ck_assert_uint_eq(h->set.count, h->count);
	h->running = true;
}

static void harness_stop(struct harness *h)
{
	ck_assert(h->running);
	ck_assert_int_eq(shard_set_stop(&h->set), 0);
	broker_finish(&h->bctx);
	h->running = false;
}

static void harness_end(struct harness *h)
{
	if (h->running)
		harness_stop(h);
	loop_destroy(&h->ctl);
}

static void post(struct harness *h, struct cmd *c)
{
	ck_assert_uint_lt(c->shard, h->count);
	atomic_store(&c->done, 0);
	atomic_thread_fence(memory_order_release);
	loop_queue_msg_ring(&h->ctl, loop_ring_fd(&h->set.shards[c->shard].loop), LOOP_KIND_TEST,
			    (uint64_t)(uintptr_t)c);
	ck_assert_int_ge(io_uring_submit(&h->ctl.ring), 1);
}

static void await(struct cmd *c)
{
	for (int i = 0; i < TEST_WAIT_MS && !atomic_load_explicit(&c->done, memory_order_acquire);
	     i++)
		usleep(1000);
	ck_assert_msg(atomic_load_explicit(&c->done, memory_order_acquire),
		      "shard %u did not answer command %d within %d ms", c->shard, c->kind,
		      TEST_WAIT_MS);
}

static void run(struct harness *h, struct cmd *c)
{
	post(h, c);
	await(c);
}

/* A topic change run on SHARD; returns the callback's status (or the immediate error). */
static int change(struct harness *h, struct cmd *c)
{
	run(h, c);
	return c->immediate < 0 ? c->immediate : c->status;
}

static int create(struct harness *h, uint32_t shard, const char *name, uint32_t partitions)
{
	struct cmd c = {.kind = CMD_CREATE, .shard = shard, .partitions = partitions};
	snprintf(c.name, sizeof(c.name), "%s", name);
	return change(h, &c);
}

static void inspect(struct harness *h, uint32_t shard, const char *name, struct inspect *out,
		    const uint32_t *probe_ids, uint32_t probe_count)
{
	struct cmd *c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->kind = CMD_INSPECT;
	c->shard = shard;
	snprintf(c->name, sizeof(c->name), "%s", name);
	ck_assert_uint_le(probe_count, TEST_PARTITIONS_MAX);
	c->in.probe_count = probe_count;
	if (probe_count)
		memcpy(c->in.probe_ids, probe_ids, probe_count * sizeof(*probe_ids));
	run(h, c);
	*out = c->in;
	free(c);
	ck_assert_msg(out->sane, "shard %u: topic table fails its sanity check", shard);
}

/*
 * Checks that every shard's table has NAME with PARTITIONS partitions, the same ids and
 * topic id as shard 0, placed where meta places them, each reachable by id, registered
 * in its owner's shard log and nowhere else. Returns shard 0's view in *FIRST.
 */
static void check_everywhere(struct harness *h, const char *name, uint32_t partitions,
			     struct inspect *first)
{
	ck_assert_uint_le(partitions, TEST_PARTITIONS_MAX);
	for (uint32_t s = 0; s < h->count; s++) {
		struct inspect in;
		inspect(h, s, name, &in, NULL, 0);
		ck_assert_msg(in.found, "shard %u has no topic '%s'", s, name);
		ck_assert_uint_eq(in.partition_count, partitions);
		if (s == 0)
			*first = in;
		ck_assert_uint_eq(in.topic_id, first->topic_id);
		for (uint32_t p = 0; p < partitions; p++) {
			ck_assert_uint_eq(in.ids[p], first->ids[p]);
			ck_assert_uint_ne(in.ids[p], META_PARTITION_ID_NONE);
			ck_assert_uint_eq(in.shards[p], meta_placement_shard(name, p, h->count));
			ck_assert_msg(in.by_id[p], "shard %u: partition id %u does not map back", s,
				      in.ids[p]);
			ck_assert_msg(in.registered[p] == (in.shards[p] == s),
				      "shard %u: partition %u (id %u, owner %u) registered: %d", s,
				      p, in.ids[p], in.shards[p], in.registered[p]);
		}
	}
}

/* --- a RecordBatch v2 of one record ------------------------------------------------- */

/* Writes a batch with one record holding VALUE, timestamped TS_MS, into OUT (room for
 * 128 + strlen(VALUE) bytes); returns its length. */
static uint32_t make_batch(uint8_t *out, const char *value, int64_t ts_ms)
{
	size_t vlen = strlen(value);
	ck_assert_uint_lt(vlen, 400);
	const struct test_record rec = {.value = value, .value_len = vlen};
	const struct test_batch b = {.leader_epoch = -1,
				     .base_timestamp = ts_ms,
				     .max_timestamp = ts_ms,
				     .producer_id = -1,
				     .producer_epoch = -1,
				     .base_sequence = -1};
	uint32_t len = (uint32_t)test_batch_build(out, 128 + vlen, &b, &rec, 1);
	ck_assert_int_eq(batch_validate(out, len, NULL), BATCH_OK);
	return len;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends (durably) BATCH to partition ID on its owner OWNER; returns the base offset. */
static int64_t append(struct harness *h, uint32_t owner, uint32_t id, const uint8_t *batch,
		      uint32_t len)
{
	struct cmd c = {.kind = CMD_APPEND,
			.shard = owner,
			.partition_id = id,
			.batch = batch,
			.batch_len = len};
	run(h, &c);
	ck_assert_msg(c.immediate == 0, "append: %s", strerror(-c.immediate));
	ck_assert_msg(c.status == 0, "append callback: %s", strerror(-c.status));
	return c.base_offset;
}

/* --- the cases ------------------------------------------------------------------------ */

START_TEST(test_create_visible_everywhere)
{
	struct harness h = {0};
	harness_dir(&h, "create");
	harness_start(&h);
	uint32_t last = h.count - 1;

	struct cmd c = {.kind = CMD_CREATE, .shard = last, .partitions = 6};
	snprintf(c.name, sizeof(c.name), "orders");
	ck_assert_int_eq(change(&h, &c), 0);
	ck_assert(c.had_view);
	ck_assert_uint_eq(c.view_partitions, 6);
	struct inspect first;
	check_everywhere(&h, "orders", 6, &first);
	ck_assert_uint_eq(first.topic_count, 1);
	/* Broker defaults where the topic sets nothing. */
	ck_assert_int_eq(first.retention_ms, h.cfg.retention_ms);
	ck_assert_int_eq(first.retention_bytes, h.cfg.retention_bytes);
	ck_assert_str_eq(first.retention_ms_config, "");

	/* Auto-create: num.partitions, by default one per shard. */
	ck_assert_int_eq(create(&h, 0, "auto", TOPICS_PARTITIONS_DEFAULT), 0);
	check_everywhere(&h, "auto", h.count, &first);

	/* Existing name, from any shard: -EEXIST, and nothing changes. */
	for (uint32_t s = 0; s < h.count; s++)
		ck_assert_int_eq(create(&h, s, "orders", 3), -EEXIST);
	check_everywhere(&h, "orders", 6, &first);
	/* Refused before anything is sent. */
	ck_assert_int_eq(create(&h, last, "bad/name", 1), -EINVAL);
	ck_assert_int_eq(create(&h, last, "..", 1), -EINVAL);
	ck_assert_int_eq(create(&h, last, "huge", LIMITS_META_PARTITIONS_PER_TOPIC_MAX + 1),
			 -EINVAL);
	struct cmd bad = {.kind = CMD_CREATE, .shard = last, .partitions = 1, .config_count = 1};
	snprintf(bad.name, sizeof(bad.name), "badconfig");
	bad.configs[0] = (struct meta_config_kv){TOPICS_CONFIG_RETENTION_MS, "soon"};
	ck_assert_int_eq(change(&h, &bad), -EINVAL);
	struct inspect in;
	inspect(&h, last, "badconfig", &in, NULL, 0);
	ck_assert(!in.found);
	ck_assert_uint_eq(in.topic_count, 2);
	harness_end(&h);
}
END_TEST

START_TEST(test_concurrent_creates_one_wins)
{
	struct harness h = {0};
	harness_dir(&h, "race");
	harness_start(&h);
	uint32_t askers = h.count < 2 ? 2 : h.count;
	struct cmd *c = calloc(askers, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	for (uint32_t round = 0; round < 10; round++) {
		char name[32];
		snprintf(name, sizeof(name), "race-%u", round);
		for (uint32_t i = 0; i < askers; i++) {
			c[i] = (struct cmd){.kind = CMD_CREATE,
					    .shard = (i + round) % h.count,
					    .partitions = 2 + i};
			snprintf(c[i].name, sizeof(c[i].name), "%s", name);
		}
		for (uint32_t i = 0; i < askers; i++)
			post(&h, &c[i]); /* all asked before any answer is awaited */
		uint32_t won = 0, winner = 0;
		for (uint32_t i = 0; i < askers; i++) {
			await(&c[i]);
			ck_assert_int_eq(c[i].immediate, 0);
			if (c[i].status == 0) {
				won++;
				winner = i;
				ck_assert(c[i].had_view);
			} else {
				ck_assert_msg(c[i].status == -EEXIST, "round %u asker %u: %s",
					      round, i, strerror(-c[i].status));
				ck_assert(!c[i].had_view);
			}
		}
		ck_assert_uint_eq(won, 1);
		struct inspect first;
		check_everywhere(&h, name, 2 + winner, &first);
	}
	free(c);

	/* A burst of creates from one shard: queued at shard 0, all answered, all in
	 * every table. */
	struct cmd *burst = calloc(1, sizeof(*burst));
	ck_assert_ptr_nonnull(burst);
	burst->kind = CMD_BURST;
	burst->shard = h.count - 1;
	burst->pings = calloc(TEST_PINGS_MAX, sizeof(*burst->pings));
	ck_assert_ptr_nonnull(burst->pings);
	post(&h, burst);
	await(burst);
	ck_assert_int_eq(burst->immediate, 0);
	ck_assert_uint_eq(burst->burst_ok, TEST_BURST);
	if (h.count > 1)
		ck_assert_uint_lt(burst->pings_sent, TEST_PINGS_MAX); /* the window filled */
	struct cmd stats = {.kind = CMD_STATS, .shard = burst->shard};
	run(&h, &stats);
	ck_assert_uint_eq(stats.stats.pending, 0);
	if (h.count > 1)
		ck_assert_uint_gt(stats.stats.send_retries, 0);
	for (uint32_t s = 0; s < h.count; s++) {
		struct inspect in;
		inspect(&h, s, "burst-199", &in, NULL, 0);
		ck_assert(in.found);
		ck_assert_uint_eq(in.topic_count, 10 + TEST_BURST);
	}
	free(burst->pings);
	free(burst);
	harness_end(&h);
}
END_TEST

/* Group commit: every shard asks for TEST_MANY creates of its own and TEST_MANY_DUP
 * names every shard asks for, all at once. Each is answered once the topic is in the
 * asker's table; exactly one create of each raced name wins; shard 0 journals them in
 * far fewer writes than changes; every table has them all, and so has every table after
 * a restart (they were durable when answered). */
START_TEST(test_group_commit_many_creates)
{
	struct harness h = {0};
	harness_dir(&h, "many");
	harness_start(&h);
	struct cmd *c = calloc(h.count, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	struct cmd before = {.kind = CMD_STATS, .shard = 0};
	run(&h, &before);
	for (uint32_t s = 0; s < h.count; s++) {
		c[s] = (struct cmd){
		    .kind = CMD_MANY, .shard = s, .many_own = TEST_MANY, .many_dup = TEST_MANY_DUP};
		snprintf(c[s].name, sizeof(c[s].name), "many");
		post(&h, &c[s]);
	}
	uint32_t ok = 0;
	for (uint32_t s = 0; s < h.count; s++) {
		await(&c[s]);
		ck_assert_int_eq(c[s].immediate, 0);
		ck_assert_uint_eq(c[s].burst_answered, TEST_MANY + TEST_MANY_DUP);
		ck_assert_uint_eq(c[s].many_unseen, 0);
		ck_assert_uint_ge(c[s].burst_ok, TEST_MANY);
		ok += c[s].burst_ok;
	}
	ck_assert_uint_eq(ok, TEST_MANY * h.count + TEST_MANY_DUP);
	uint32_t total = (TEST_MANY + TEST_MANY_DUP) * h.count;
	struct cmd stats = {.kind = CMD_STATS, .shard = 0};
	run(&h, &stats);
	uint64_t committed = stats.stats.committed - before.stats.committed;
	uint64_t batches = stats.stats.batches - before.stats.batches;
	ck_assert_uint_eq(committed, TEST_MANY * h.count + TEST_MANY_DUP);
	ck_assert_uint_eq(stats.stats.refused - before.stats.refused, total - committed);
	ck_assert_msg(batches * 10 <= total, "%llu journal writes for %u changes",
		      (unsigned long long)batches, total);
	ck_assert_uint_eq(stats.stats.queued, 0);
	ck_assert_uint_eq(stats.stats.pending, 0);

	for (int round = 0; round < 2; round++) {
		for (uint32_t s = 0; s < h.count; s++) {
			struct inspect in;
			inspect(&h, s, "many-dup-99", &in, NULL, 0);
			ck_assert(in.found);
			ck_assert_uint_eq(in.topic_count, TEST_MANY * h.count + TEST_MANY_DUP);
			char name[64];
			snprintf(name, sizeof(name), "many-%u-%u", h.count - 1, TEST_MANY + 1);
			struct inspect first;
			check_everywhere(&h, name, 1, &first);
		}
		if (round == 0) {
			harness_stop(&h);
			harness_start(&h);
		}
	}
	free(c);
	harness_end(&h);
}
END_TEST

/* Group commit, when the journal write fails (the file-size limit, like a full disk):
 * every change of the batch is answered with the write error, none is in any table, and
 * the same names can be created once the disk takes writes again. */
START_TEST(test_group_commit_failed_write)
{
	struct harness h = {0};
	harness_dir(&h, "failed");
	harness_start(&h);
	ck_assert_int_eq(create(&h, 0, "kept", 2), 0);
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", h.cfg.data_dir, META_JOURNAL_NAME);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);

	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 64; /* the journal only: the segments are
						 * preallocated */
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct cmd *c = calloc(h.count, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	for (uint32_t s = 0; s < h.count; s++) {
		c[s] = (struct cmd){.kind = CMD_MANY,
				    .shard = s,
				    .many_own = TEST_DOOMED,
				    .many_dup = TEST_DOOMED_DUP,
				    .many_error = -EFBIG};
		snprintf(c[s].name, sizeof(c[s].name), "doomed");
		post(&h, &c[s]);
	}
	for (uint32_t s = 0; s < h.count; s++)
		await(&c[s]);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	for (uint32_t s = 0; s < h.count; s++) {
		ck_assert_int_eq(c[s].immediate, 0);
		ck_assert_uint_eq(c[s].burst_ok, 0);
		/* All of them: a refused duplicate rests on a create that was undone. */
		ck_assert_uint_eq(c[s].many_errors, TEST_DOOMED + TEST_DOOMED_DUP);
	}
	for (uint32_t s = 0; s < h.count; s++) {
		struct inspect in;
		inspect(&h, s, "doomed-dup-0", &in, NULL, 0);
		ck_assert(!in.found);
		ck_assert_uint_eq(in.topic_count, 1);
	}
	/* The disk takes writes again: the same names now go through. */
	for (uint32_t s = 0; s < h.count; s++) {
		c[s].many_error = 0;
		c[s].burst_answered = c[s].burst_ok = c[s].many_errors = 0;
		post(&h, &c[s]);
	}
	uint32_t ok = 0;
	for (uint32_t s = 0; s < h.count; s++) {
		await(&c[s]);
		ck_assert_uint_eq(c[s].many_unseen, 0);
		ok += c[s].burst_ok;
	}
	ck_assert_uint_eq(ok, TEST_DOOMED * h.count + TEST_DOOMED_DUP);
	struct inspect first;
	check_everywhere(&h, "doomed-dup-0", 1, &first);
	ck_assert_uint_eq(first.topic_count, 1 + TEST_DOOMED * h.count + TEST_DOOMED_DUP);
	free(c);
	harness_end(&h);
}
END_TEST

START_TEST(test_add_partitions_and_delete)
{
	struct harness h = {0};
	harness_dir(&h, "grow");
	h.cfg.num_partitions = 3; /* num.partitions, for auto-created topics */
	harness_start(&h);
	uint32_t last = h.count - 1;
	ck_assert_int_eq(create(&h, last, "auto3", TOPICS_PARTITIONS_DEFAULT), 0);
	struct inspect auto3;
	check_everywhere(&h, "auto3", 3, &auto3);
	ck_assert_int_eq(create(&h, last, "grow", 6), 0);
	struct inspect before, after;
	check_everywhere(&h, "grow", 6, &before);

	struct cmd add = {.kind = CMD_ADD_PARTITIONS, .shard = last, .partitions = 8};
	snprintf(add.name, sizeof(add.name), "grow");
	ck_assert_int_eq(change(&h, &add), 0);
	ck_assert_uint_eq(add.view_partitions, 8);
	check_everywhere(&h, "grow", 8, &after);
	ck_assert_uint_eq(after.topic_id, before.topic_id);
	for (uint32_t p = 0; p < 6; p++)
		ck_assert_uint_eq(after.ids[p], before.ids[p]); /* existing ones never move */
	/* Not larger: refused by shard 0; unknown topic: -ENOENT. */
	ck_assert_int_eq(change(&h, &add), -EINVAL);
	snprintf(add.name, sizeof(add.name), "nope");
	ck_assert_int_eq(change(&h, &add), -ENOENT);

	struct cmd del = {.kind = CMD_DELETE, .shard = 0};
	snprintf(del.name, sizeof(del.name), "grow");
	ck_assert_int_eq(change(&h, &del), 0);
	ck_assert(!del.had_view);
	for (uint32_t s = 0; s < h.count; s++) {
		struct inspect in;
		inspect(&h, s, "grow", &in, after.ids, 8);
		ck_assert(!in.found);
		ck_assert_uint_eq(in.topic_count, 1);
		for (uint32_t p = 0; p < 8; p++) {
			ck_assert(!in.probe_reachable[p]);
			/* The shard log keeps the id until a restart, with zero retention. */
			if (in.probe_registered[p]) {
				ck_assert_uint_eq(after.shards[p], s);
				ck_assert_int_eq(in.probe_info[p].retention_ms, 0);
				ck_assert_int_eq(in.probe_info[p].retention_bytes, 0);
			}
		}
	}
	ck_assert_int_eq(change(&h, &del), -ENOENT);
	del.shard = last;
	ck_assert_int_eq(change(&h, &del), -ENOENT);
	struct cmd set = {
	    .kind = CMD_SET_CONFIG, .shard = last, .key = "retention.ms", .value = "1"};
	snprintf(set.name, sizeof(set.name), "grow");
	ck_assert_int_eq(change(&h, &set), -ENOENT);

	/* The name is free again; the ids are new. */
	ck_assert_int_eq(create(&h, last, "grow", 6), 0);
	struct inspect again;
	check_everywhere(&h, "grow", 6, &again);
	ck_assert_uint_ne(again.topic_id, before.topic_id);
	for (uint32_t p = 0; p < 6; p++)
		for (uint32_t q = 0; q < 8; q++)
			ck_assert_uint_ne(again.ids[p], after.ids[q]);
	harness_end(&h);
}
END_TEST

/* Retention settings of partition P of NAME as its owner's shard log has them. */
static void owner_retention(struct harness *h, const char *name, uint32_t p, int64_t *ms,
			    int64_t *bytes)
{
	struct inspect in;
	inspect(h, 0, name, &in, NULL, 0);
	ck_assert(in.found);
	uint32_t owner = in.shards[p];
	inspect(h, owner, name, &in, NULL, 0);
	ck_assert(in.registered[p]);
	*ms = in.info[p].retention_ms;
	*bytes = in.info[p].retention_bytes;
}

START_TEST(test_configs_reach_the_log)
{
	struct harness h = {0};
	harness_dir(&h, "configs");
	h.retention_interval_ms = 20; /* the timer must get to run within the case */
	harness_start(&h);
	uint32_t last = h.count - 1;

	struct cmd c = {.kind = CMD_CREATE, .shard = last, .partitions = 6, .config_count = 3};
	snprintf(c.name, sizeof(c.name), "ret");
	c.configs[0] = (struct meta_config_kv){TOPICS_CONFIG_RETENTION_MS, "3600000"};
	c.configs[1] = (struct meta_config_kv){TOPICS_CONFIG_RETENTION_BYTES, "1048576"};
	c.configs[2] = (struct meta_config_kv){TOPICS_CONFIG_CLEANUP_POLICY, "delete"};
	ck_assert_int_eq(change(&h, &c), 0);
	struct inspect first;
	check_everywhere(&h, "ret", 6, &first);
	for (uint32_t s = 0; s < h.count; s++) {
		struct inspect in;
		inspect(&h, s, "ret", &in, NULL, 0);
		ck_assert_int_eq(in.retention_ms, 3600000);
		ck_assert_int_eq(in.retention_bytes, 1048576);
		ck_assert_str_eq(in.retention_ms_config, "3600000");
		for (uint32_t p = 0; p < 6; p++) {
			if (!in.registered[p])
				continue;
			ck_assert_int_eq(in.info[p].retention_ms, 3600000);
			ck_assert_int_eq(in.info[p].retention_bytes, 1048576);
		}
	}

	/* Changed from another shard: every owner follows; removed: back to the default. */
	struct cmd set = {.kind = CMD_SET_CONFIG,
			  .shard = 0,
			  .key = TOPICS_CONFIG_RETENTION_MS,
			  .value = "120000"};
	snprintf(set.name, sizeof(set.name), "ret");
	ck_assert_int_eq(change(&h, &set), 0);
	ck_assert(set.had_view);
	set.shard = last;
	set.key = TOPICS_CONFIG_RETENTION_BYTES;
	set.value = NULL;
	ck_assert_int_eq(change(&h, &set), 0);
	for (uint32_t p = 0; p < 6; p++) {
		int64_t ms, bytes;
		owner_retention(&h, "ret", p, &ms, &bytes);
		ck_assert_int_eq(ms, 120000);
		ck_assert_int_eq(bytes, h.cfg.retention_bytes);
	}
	set.key = TOPICS_CONFIG_RETENTION_MS;
	set.value = "-2";
	ck_assert_int_eq(change(&h, &set), -EINVAL);
	set.value = "12x";
	ck_assert_int_eq(change(&h, &set), -EINVAL);
	set.key = TOPICS_CONFIG_CLEANUP_POLICY;
	set.value = "compact, delete";
	ck_assert_int_eq(change(&h, &set), 0);
	set.value = "shred";
	ck_assert_int_eq(change(&h, &set), -EINVAL);

	/* Expired data goes: a batch an hour old under retention.ms of one minute is
	 * removed by the retention timer (the log start offset passes it). */
	set.key = TOPICS_CONFIG_RETENTION_MS;
	set.value = "60000";
	ck_assert_int_eq(change(&h, &set), 0);
	uint8_t batch[256];
	uint32_t len = make_batch(batch, "old news", wall_ms() - 3600 * 1000);
	int64_t base = append(&h, first.shards[0], first.ids[0], batch, len);
	ck_assert_int_eq(base, 0);
	bool trimmed = false;
	for (int i = 0; i < TEST_WAIT_MS / 10 && !trimmed; i++) {
		struct inspect in;
		inspect(&h, first.shards[0], "ret", &in, NULL, 0);
		trimmed = in.info[0].log_start_offset == 1 && in.info[0].next_offset == 1;
		if (!trimmed)
			usleep(10000);
	}
	ck_assert_msg(trimmed, "the expired batch was not removed by the retention timer");
	struct cmd runs = {.kind = CMD_RETENTION_RUNS, .shard = first.shards[0]};
	run(&h, &runs);
	ck_assert_uint_ge(runs.retention_runs, 1);
	harness_end(&h);
}
END_TEST

START_TEST(test_restart_keeps_topics_and_data)
{
	struct harness h = {0};
	harness_dir(&h, "restart");
	harness_start(&h);
	uint32_t last = h.count - 1;
	struct cmd c = {.kind = CMD_CREATE, .shard = last, .partitions = 6, .config_count = 1};
	snprintf(c.name, sizeof(c.name), "keep");
	c.configs[0] = (struct meta_config_kv){TOPICS_CONFIG_RETENTION_MS, "86400000"};
	ck_assert_int_eq(change(&h, &c), 0);
	ck_assert_int_eq(create(&h, 0, "gone", 3), 0);
	ck_assert_int_eq(create(&h, 0, "other", 2), 0);
	struct inspect before, gone;
	check_everywhere(&h, "keep", 6, &before);
	check_everywhere(&h, "gone", 3, &gone);
	struct cmd del = {.kind = CMD_DELETE, .shard = last};
	snprintf(del.name, sizeof(del.name), "gone");
	ck_assert_int_eq(change(&h, &del), 0);

	/* Data in partitions 0 and 5, appended on their owners. */
	uint8_t b0[256], b5[256];
	uint32_t len0 = make_batch(b0, "first record of partition 0", wall_ms());
	uint32_t len5 = make_batch(b5, "partition five", wall_ms());
	ck_assert_int_eq(append(&h, before.shards[0], before.ids[0], b0, len0), 0);
	ck_assert_int_eq(append(&h, before.shards[5], before.ids[5], b5, len5), 0);
	ck_assert_int_eq(append(&h, before.shards[5], before.ids[5], b5, len5), 1);
	harness_stop(&h);

	harness_start(&h);
	struct inspect after;
	check_everywhere(&h, "keep", 6, &after);
	ck_assert_uint_eq(after.topic_id, before.topic_id);
	ck_assert_uint_eq(after.topic_count, 2);
	for (uint32_t p = 0; p < 6; p++)
		ck_assert_uint_eq(after.ids[p], before.ids[p]);
	int64_t ms, bytes;
	owner_retention(&h, "keep", 3, &ms, &bytes);
	ck_assert_int_eq(ms, 86400000);
	ck_assert_int_eq(bytes, h.cfg.retention_bytes);
	/* The deleted topic stays deleted; its ids are not registered any more. */
	for (uint32_t s = 0; s < h.count; s++) {
		struct inspect in;
		inspect(&h, s, "gone", &in, gone.ids, 3);
		ck_assert(!in.found);
		for (uint32_t p = 0; p < 3; p++) {
			ck_assert(!in.probe_reachable[p]);
			ck_assert(!in.probe_registered[p]);
		}
	}

	/* The bytes come back from disk, with the offsets the log gave them. */
	struct cmd rd = {.kind = CMD_READ, .shard = after.shards[0], .partition_id = after.ids[0]};
	run(&h, &rd);
	ck_assert_msg(rd.immediate == 0 || rd.immediate == -EINPROGRESS, "read: %s",
		      strerror(-rd.immediate));
	ck_assert_int_eq(rd.status, 0);
	ck_assert_uint_eq(rd.out_len, len0);
	ck_assert_mem_eq(rd.out, b0, len0); /* baseOffset 0 as built */
	free(rd.out);
	struct cmd rd5 = {.kind = CMD_READ, .shard = after.shards[5], .partition_id = after.ids[5]};
	run(&h, &rd5);
	ck_assert_int_eq(rd5.status, 0);
	ck_assert_uint_eq(rd5.out_len, 2 * len5);
	ck_assert_mem_eq(rd5.out + 8, b5 + 8, len5 - 8);
	batch_set_base_offset(b5, 1);
	ck_assert_mem_eq(rd5.out + len5, b5, len5);
	free(rd5.out);
	/* Appends continue after the recovered offsets. */
	ck_assert_int_eq(append(&h, after.shards[0], after.ids[0], b0, len0), 1);
	harness_stop(&h);

	/* Fewer shards than the data needs: refused, with the fix named. */
	uint32_t highest = 0;
	for (uint32_t p = 0; p < 6; p++)
		highest = after.shards[p] > highest ? after.shards[p] : highest;
	if (highest > 0) {
		char err[1024] = "";
		struct broker_ctx small;
		int ret = broker_prepare(&small, &h.cfg, highest, err, sizeof(err));
		ck_assert_int_eq(ret, -ERANGE);
		ck_assert_msg(strstr(err, "--shards") != NULL, "message: %s", err);
		broker_finish(&small);
	}
	harness_end(&h);
}
END_TEST

/* --- set-up --------------------------------------------------------------------------- */

/* Skips everything when io_uring or a registered pool is not available here. */
static void probe_uring(void)
{
	struct loop loop;
	struct pool pool;
	char explain[512] = "";
	int ret = loop_init(&loop, 64, explain, sizeof(explain));
	if (ret < 0) {
		snprintf(machine.skip, sizeof(machine.skip), "io_uring unusable: %s", explain);
		return;
	}
	ret = pool_init(&pool, TEST_POOL_BYTES, LIMITS_POOL_CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	if (ret == 0) {
		ret = pool_register(&pool, &loop.ring);
		if (ret < 0)
			uring_explain(ret, "register buffers", NULL, explain, sizeof(explain));
		else
			pool_unregister(&pool, &loop.ring);
		pool_destroy(&pool);
	} else {
		snprintf(explain, sizeof(explain), "pool of %u bytes: %s", TEST_POOL_BYTES,
			 strerror(-ret));
	}
	loop_destroy(&loop);
	if (ret < 0)
		snprintf(machine.skip, sizeof(machine.skip), "no registered buffer pool: %s",
			 explain);
}

int main(void)
{
	logger_set_level(LOGGER_WARN);
	/* libnuma fills its per-node CPU-mask cache lazily and without a lock; shard threads
	 * calling numa_node_of_cpu for the first time at once can each allocate one and lose
	 * all but one (a leak LSan reports, with no usable stack). Warm it here, on one
	 * thread, as shard_set_start should. */
	if (numa_available() >= 0)
		numa_node_of_cpu(0);
	test_pick_direct_dir("sluice-check-broker", machine.base, sizeof(machine.base), NULL,
			     machine.skip, sizeof(machine.skip));
	if (!machine.skip[0])
		probe_uring();
	const char *skip = machine.skip[0] ? machine.skip : NULL;
	Suite *s = suite_create("broker");
	unit_add_case(s, "create_visible_everywhere", test_create_visible_everywhere, 0, skip);
	unit_add_case(s, "concurrent_creates_one_wins", test_concurrent_creates_one_wins, 0, skip);
	unit_add_case(s, "group_commit_many_creates", test_group_commit_many_creates, 0, skip);
	unit_add_case(s, "group_commit_failed_write", test_group_commit_failed_write, 0, skip);
	unit_add_case(s, "add_partitions_and_delete", test_add_partitions_and_delete, 0, skip);
	unit_add_case(s, "configs_reach_the_log", test_configs_reach_the_log, 0, skip);
	unit_add_case(s, "restart_keeps_topics_and_data", test_restart_keeps_topics_and_data, 0,
		      skip);
	int ret = unit_run(s);
	if (machine.base[0] && ret == EXIT_SUCCESS)
		test_remove_tree(machine.base);
	else if (machine.base[0])
		printf("# broker: data kept in %s\n", machine.base);
	return ret;
}
