/*
 * tests/unit/check_producers.c: Check tests of core/producers. The state machine on its
 * own: batches in order, a resend of each of the last 5 batches answered with its
 * offset, a gap and a batch older than the window, stale and new epochs, an unknown
 * producer id, the sequence wrap at INT32_MAX, batches without producer id, eviction of
 * the least recently used producer at the partition and at the shard limit, the saved
 * state read back (and a malformed one refused), batches fed by recovery. Then the
 * produce path on a real shard log (real RecordBatch v2 bytes with CRC-32C, an io_uring
 * loop, a registered pool, O_DIRECT files): offsets, a duplicate not appended, durable
 * answers after the sync (a durable duplicate too), backpressure keeping a producer's
 * batches in order, and the state rebuilt after a restart from the checkpoint, from a
 * full scan, and after a crash that lost batches the checkpoint's state remembered.
 * Cases needing io_uring or an O_DIRECT directory are TAP "# SKIP" lines when absent.
 */
#include "core/producers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/shardlog.h"
#include "io/loop.h"
#include "io/pool.h"
#include "tests/unit/testdir.h"
#include "tests/unit/testbatch.h"
#include "tests/unit/unit.h"

#define KIB  (1024u)
#define MIB  (1024u * 1024)
#define PART 1u /* the partition most cases use */

static struct {
	char base[512]; /* a directory where O_DIRECT works, "" if none */
	char skip[256]; /* why the log cases are skipped, "" if they run */
} machine;

/* ----------------------------------------------------------------------------------- */
/* batches */

static struct batch_header hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t records)
{
	return (struct batch_header){.magic = 2,
				     .last_offset_delta = records - 1,
				     .producer_id = pid,
				     .producer_epoch = epoch,
				     .base_sequence = seq,
				     .record_count = records};
}

/* Builds a RecordBatch v2 of RECORDS records with VALUE_LEN-byte values from producer
 * PID (epoch, base sequence) into BUF; returns its length. */
static uint32_t build(uint8_t *buf, size_t cap, int64_t pid, int16_t epoch, int32_t seq,
		      int records, int value_len)
{
	size_t len = BATCH_HEADER_BYTES;
	for (int i = 0; i < records; i++) {
		uint8_t value[8 * KIB];
		ck_assert_int_le(value_len, (int)sizeof(value));
		for (int k = 0; k < value_len; k++)
			value[k] = (uint8_t)(seq + i + k);
		const struct test_record rec = {
		    .timestamp_delta = i, .value = value, .value_len = (size_t)value_len};
		size_t n = test_record_put(buf + len, cap - len, &rec, i);
		ck_assert(n > 0);
		len += n;
	}
	const struct test_batch b = {.base_timestamp = 1700000000000,
				     .max_timestamp = 1700000000000,
				     .producer_id = pid,
				     .producer_epoch = epoch,
				     .base_sequence = seq};
	test_batch_seal(buf, len, &b, (uint32_t)records);
	ck_assert_int_eq(batch_validate(buf, (uint32_t)len, NULL), BATCH_OK);
	return (uint32_t)len;
}

static struct producers *state_new(uint32_t partition_max, uint32_t shard_max)
{
	struct producers *p;
	struct producers_options o = {.partition_max = partition_max, .shard_max = shard_max};
	ck_assert_int_eq(producers_create(&p, &o), 0);
	return p;
}

/* Checks H against P and, when it is to be appended, records it at *NEXT (advanced). */
static enum producers_verdict feed(struct producers *p, uint32_t part, struct batch_header h,
				   int64_t *next, int64_t *dup)
{
	int64_t off = -1;
	enum producers_verdict v = producers_check(p, part, &h, &off);
	if (v == PRODUCERS_APPEND) {
		producers_record(p, part, &h, *next);
		*next += h.record_count;
	}
	if (dup)
		*dup = off;
	ck_assert(producers_sanity(p));
	return v;
}

/* ----------------------------------------------------------------------------------- */
/* the state machine */

/* In order: appended; each of the last 5 resent: its original offset; older: refused. */
START_TEST(test_in_order_and_duplicates)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0, dup;
	int64_t offsets[8];
	for (int i = 0; i < 8; i++) {
		offsets[i] = next;
		ck_assert_int_eq(feed(p, PART, hdr(7, 0, i * 3, 3), &next, NULL), PRODUCERS_APPEND);
	}
	ck_assert_int_eq(next, 24);
	for (int i = 3; i < 8; i++) {
		ck_assert_int_eq(feed(p, PART, hdr(7, 0, i * 3, 3), &next, &dup),
				 PRODUCERS_DUPLICATE);
		ck_assert_int_eq(dup, offsets[i]);
	}
	/* the 6th newest fell out of the window: it is no longer known */
	ck_assert_int_eq(feed(p, PART, hdr(7, 0, 2 * 3, 3), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	/* same first sequence, other length: not a duplicate */
	ck_assert_int_eq(feed(p, PART, hdr(7, 0, 7 * 3, 2), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(next, 24); /* nothing appended */
	ck_assert_int_eq(feed(p, PART, hdr(7, 0, 24, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_uint_eq(producers_count(p), 1);
	producers_destroy(p);
}
END_TEST

START_TEST(test_gap)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0;
	ck_assert_int_eq(feed(p, PART, hdr(9, 2, 0, 5), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(9, 2, 6, 5), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(feed(p, PART, hdr(9, 2, 4, 5), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(feed(p, PART, hdr(9, 2, 5, 5), &next, NULL), PRODUCERS_APPEND);
	/* the same producer on another partition has its own sequence */
	ck_assert_int_eq(feed(p, PART + 1, hdr(9, 2, 3, 1), &next, NULL),
			 PRODUCERS_UNKNOWN_PRODUCER);
	ck_assert_int_eq(feed(p, PART + 1, hdr(9, 2, 0, 1), &next, NULL), PRODUCERS_APPEND);
	producers_destroy(p);
}
END_TEST

/* A lower epoch is fenced; a higher one must start at 0 and forgets the old batches. */
START_TEST(test_epochs)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0, dup;
	ck_assert_int_eq(feed(p, PART, hdr(4, 3, 0, 2), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(4, 3, 2, 2), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(4, 2, 4, 2), &next, NULL), PRODUCERS_STALE_EPOCH);
	ck_assert_int_eq(feed(p, PART, hdr(4, 2, 0, 2), &next, NULL), PRODUCERS_STALE_EPOCH);
	ck_assert_int_eq(feed(p, PART, hdr(4, 4, 4, 2), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(feed(p, PART, hdr(4, 4, 0, 2), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(next, 6);
	/* the old epoch's batches are gone: a resend of one is fenced, not a duplicate */
	ck_assert_int_eq(feed(p, PART, hdr(4, 3, 2, 2), &next, NULL), PRODUCERS_STALE_EPOCH);
	ck_assert_int_eq(feed(p, PART, hdr(4, 4, 0, 2), &next, &dup), PRODUCERS_DUPLICATE);
	ck_assert_int_eq(dup, 4);
	producers_destroy(p);
}
END_TEST

START_TEST(test_unknown_producer)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0;
	ck_assert_int_eq(feed(p, PART, hdr(11, 0, 5, 1), &next, NULL), PRODUCERS_UNKNOWN_PRODUCER);
	ck_assert_int_eq(feed(p, PART, hdr(11, 7, 1, 1), &next, NULL), PRODUCERS_UNKNOWN_PRODUCER);
	ck_assert_uint_eq(producers_count(p), 0);
	/* a new producer (any epoch) starts at sequence 0 */
	ck_assert_int_eq(feed(p, PART, hdr(11, 7, 0, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(11, 7, 1, 1), &next, NULL), PRODUCERS_APPEND);
	producers_destroy(p);
}
END_TEST

/* Sequences wrap from INT32_MAX to 0, inside a batch and between batches. */
START_TEST(test_sequence_wrap)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0, dup;
	ck_assert_int_eq(feed(p, PART, hdr(5, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	/* pretend a long run: record a batch ending at INT32_MAX - 2 */
	struct batch_header h = hdr(5, 0, 1, 1);
	h.base_sequence = INT32_MAX - 4;
	h.last_offset_delta = 2;
	h.record_count = 3;
	producers_record(p, PART, &h, next);
	next += 3;
	/* INT32_MAX - 1, INT32_MAX, 0, 1 in one batch */
	ck_assert_int_eq(feed(p, PART, hdr(5, 0, INT32_MAX - 1, 4), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(5, 0, INT32_MAX - 1, 4), &next, &dup),
			 PRODUCERS_DUPLICATE);
	ck_assert_int_eq(dup, 4);
	ck_assert_int_eq(feed(p, PART, hdr(5, 0, 3, 1), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(feed(p, PART, hdr(5, 0, 2, 1), &next, NULL), PRODUCERS_APPEND);

	/* a batch ending exactly at INT32_MAX is followed by 0 */
	h = hdr(6, 0, INT32_MAX, 1);
	producers_record(p, PART, &h, next++);
	ck_assert_int_eq(feed(p, PART, hdr(6, 0, 1, 1), &next, NULL), PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(feed(p, PART, hdr(6, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	producers_destroy(p);
}
END_TEST

START_TEST(test_not_idempotent)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(feed(p, PART, hdr(-1, -1, -1, 2), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(next, 6);
	ck_assert_uint_eq(producers_count(p), 0);
	producers_destroy(p);
}
END_TEST

/* At the partition limit the partition's least recently used producer goes; at the
 * shard limit the shard's. A forgotten producer is unknown again. */
START_TEST(test_eviction)
{
	struct producers *p = state_new(3, 5);
	int64_t next = 0;
	for (int64_t pid = 1; pid <= 3; pid++)
		ck_assert_int_eq(feed(p, PART, hdr(pid, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	/* producer 1 is used again: producer 2 is now the oldest */
	ck_assert_int_eq(feed(p, PART, hdr(1, 0, 1, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(4, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_uint_eq(producers_count(p), 3);
	ck_assert_int_eq(feed(p, PART, hdr(2, 0, 1, 1), &next, NULL), PRODUCERS_UNKNOWN_PRODUCER);
	ck_assert_int_eq(feed(p, PART, hdr(1, 0, 2, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART, hdr(3, 0, 1, 1), &next, NULL), PRODUCERS_APPEND);

	/* the shard limit: producers on other partitions push out the shard's oldest (4) */
	ck_assert_int_eq(feed(p, PART + 1, hdr(10, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_int_eq(feed(p, PART + 2, hdr(11, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_uint_eq(producers_count(p), 5);
	ck_assert_int_eq(feed(p, PART + 3, hdr(12, 0, 0, 1), &next, NULL), PRODUCERS_APPEND);
	ck_assert_uint_eq(producers_count(p), 5);
	ck_assert_int_eq(feed(p, PART, hdr(4, 0, 1, 1), &next, NULL), PRODUCERS_UNKNOWN_PRODUCER);
	ck_assert_int_eq(feed(p, PART, hdr(1, 0, 3, 1), &next, NULL), PRODUCERS_APPEND);

	/* churn through many partitions and producers: the tables stay consistent */
	for (int i = 0; i < 5000; i++)
		feed(p, (uint32_t)(i % 97), hdr(100 + i % 13, 0, 0, 1), &next, NULL);
	ck_assert_uint_le(producers_count(p), 5);
	struct producers_stats st;
	producers_stats(p, &st);
	ck_assert_uint_gt(st.evicted, 100);
	producers_destroy(p);
}
END_TEST

/* Growth past the first allocation, then eviction of everything through truncation. */
START_TEST(test_many_producers_and_truncate)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0;
	for (int64_t pid = 0; pid < 3000; pid++)
		ck_assert_int_eq(feed(p, (uint32_t)(pid % 7), hdr(pid, 1, 0, 1), &next, NULL),
				 PRODUCERS_APPEND);
	ck_assert_uint_eq(producers_count(p), 3000);
	for (int64_t pid = 0; pid < 3000; pid += 37) {
		int64_t dup;
		ck_assert_int_eq(feed(p, (uint32_t)(pid % 7), hdr(pid, 1, 0, 1), &next, &dup),
				 PRODUCERS_DUPLICATE);
		ck_assert_int_eq(dup, pid);
	}
	/* partition 3 loses everything from offset 1500 on */
	producers_truncate(p, 3, 1500);
	ck_assert(producers_sanity(p));
	for (int64_t pid = 3; pid < 3000; pid += 7) {
		enum producers_verdict want =
		    pid < 1500 ? PRODUCERS_DUPLICATE : PRODUCERS_APPEND; /* unknown, seq 0 */
		struct batch_header h = hdr(pid, 1, 0, 1);
		ck_assert_int_eq(producers_check(p, 3, &h, NULL), want);
	}
	producers_truncate(p, 5, INT64_MIN);
	ck_assert(producers_sanity(p));
	struct batch_header h = hdr(5, 1, 1, 1);
	ck_assert_int_eq(producers_check(p, 5, &h, NULL), PRODUCERS_UNKNOWN_PRODUCER);
	producers_destroy(p);
}
END_TEST

/* The saved state read back gives the same verdicts; a damaged one is refused whole. */
START_TEST(test_save_load)
{
	struct producers *p = state_new(0, 0);
	int64_t next = 0;
	for (int round = 0; round < 7; round++)
		for (int64_t pid = 0; pid < 40; pid++)
			ck_assert_int_eq(feed(p, (uint32_t)(pid % 3),
					      hdr(pid, (int16_t)(pid % 2), round * 2, 2), &next,
					      NULL),
					 PRODUCERS_APPEND);
	struct shardlog_hooks hk = producers_hooks(p);
	size_t len = hk.save_bytes(hk.ctx);
	ck_assert_uint_eq(len, 16 + 40 * (16 + 5 * 16));
	uint8_t *buf = malloc(len);
	hk.save(hk.ctx, buf, len);

	struct producers *q = state_new(0, 0);
	struct shardlog_hooks qk = producers_hooks(q);
	ck_assert_uint_eq(qk.save_bytes(qk.ctx), 0); /* no state, no section */
	ck_assert_int_eq(qk.load(qk.ctx, buf, len), 0);
	ck_assert(producers_sanity(q));
	ck_assert_uint_eq(producers_count(q), 40);
	for (int64_t pid = 0; pid < 40; pid++) {
		for (int round = 0; round < 8; round++) {
			struct batch_header h = hdr(pid, (int16_t)(pid % 2), round * 2, 2);
			int64_t a = -1, b = -1;
			ck_assert_int_eq(producers_check(p, (uint32_t)(pid % 3), &h, &a),
					 producers_check(q, (uint32_t)(pid % 3), &h, &b));
			ck_assert_int_eq(a, b);
		}
	}
	/* the LRU order survived: saving again gives the same bytes */
	uint8_t *again = malloc(len);
	qk.save(qk.ctx, again, len);
	ck_assert_int_eq(memcmp(buf, again, len), 0);
	free(again);

	struct producers *r = state_new(0, 0);
	struct shardlog_hooks rk = producers_hooks(r);
	buf[16 + 14] = 6; /* a producer with 6 batches */
	ck_assert_int_eq(rk.load(rk.ctx, buf, len), -EBADMSG);
	ck_assert_uint_eq(producers_count(r), 0);
	ck_assert_int_eq(rk.load(rk.ctx, buf, 10), -EBADMSG);
	ck_assert_uint_eq(producers_count(r), 0);
	free(buf);
	producers_destroy(p);
	producers_destroy(q);
	producers_destroy(r);
}
END_TEST

/* Recovery feeds batches after the checkpoint: those the saved state has are skipped. */
START_TEST(test_recovered_batches)
{
	struct producers *p = state_new(0, 0);
	struct shardlog_hooks hk = producers_hooks(p);
	struct batch_header h;
	for (int i = 0; i < 4; i++) {
		h = hdr(8, 1, i, 1);
		hk.recovered_batch(hk.ctx, PART, &h, 10 + i);
	}
	/* fed again (the state in a checkpoint covers some batches after it): no change */
	h = hdr(8, 1, 2, 1);
	hk.recovered_batch(hk.ctx, PART, &h, 12);
	h = hdr(8, 1, 3, 1);
	hk.recovered_batch(hk.ctx, PART, &h, 13);
	int64_t dup;
	for (int i = 0; i < 4; i++) {
		h = hdr(8, 1, i, 1);
		ck_assert_int_eq(producers_check(p, PART, &h, &dup), PRODUCERS_DUPLICATE);
		ck_assert_int_eq(dup, 10 + i);
	}
	h = hdr(8, 1, 4, 1);
	ck_assert_int_eq(producers_check(p, PART, &h, NULL), PRODUCERS_APPEND);
	/* a new epoch in the log replaces the old one's batches */
	h = hdr(8, 2, 0, 1);
	hk.recovered_batch(hk.ctx, PART, &h, 14);
	h = hdr(8, 1, 3, 1);
	ck_assert_int_eq(producers_check(p, PART, &h, NULL), PRODUCERS_STALE_EPOCH);
	h = hdr(8, 2, 1, 1);
	ck_assert_int_eq(producers_check(p, PART, &h, NULL), PRODUCERS_APPEND);
	/* batches without producer id are ignored */
	h = hdr(-1, -1, -1, 1);
	hk.recovered_batch(hk.ctx, PART, &h, 15);
	ck_assert_uint_eq(producers_count(p), 1);
	producers_destroy(p);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* the produce path on a real shard log */

struct env {
	char dir[600];
	struct loop loop;
	struct pool pool;
	struct shardlog *log;
	struct producers *p;
	uint64_t staging;
};

static void env_open(struct env *env)
{
	char explain[256];
	ck_assert_int_eq(loop_init(&env->loop, 256, explain, sizeof(explain)), 0);
	ck_assert_int_eq(
	    pool_init(&env->pool, env->staging + 4 * MIB, 64 * KIB, -1, POOL_MODE_NORMAL), 0);
	ck_assert_int_eq(pool_register(&env->pool, &env->loop.ring), 0);
	struct producers_options po = {.loop = &env->loop};
	ck_assert_int_eq(producers_create(&env->p, &po), 0);
	struct shardlog_options o = {.data_dir = env->dir,
				     .shard_id = 0,
				     .segment_bytes = 4 * env->staging,
				     .staging_bytes = env->staging,
				     .fsync = SHARDLOG_FSYNC_ALWAYS,
				     .loop = &env->loop,
				     .pool = &env->pool,
				     .hooks = producers_hooks(env->p)};
	uint32_t ids[2] = {PART, PART + 1};
	char err[256] = "";
	int ret = shardlog_open(&env->log, &o, ids, 2, err, sizeof(err));
	ck_assert_msg(ret == 0, "shardlog_open: %s", err);
	ck_assert_int_eq(producers_attach(env->p, env->log, NULL), 0);
}

static void env_init(struct env *env, uint64_t staging)
{
	memset(env, 0, sizeof(*env));
	snprintf(env->dir, sizeof(env->dir), "%s/producers-XXXXXX", machine.base);
	ck_assert(mkdtemp(env->dir) != NULL);
	env->staging = staging;
	env_open(env);
}

static void env_close(struct env *env)
{
	producers_quiesce(env->p);
	ck_assert_int_eq(shardlog_close(env->log), 0);
	producers_destroy(env->p);
	loop_destroy(&env->loop);
	pool_destroy(&env->pool);
	env->log = NULL;
}

static void env_done(struct env *env)
{
	if (env->log)
		env_close(env);
	test_remove_tree(env->dir);
}

static int64_t next_offset(struct env *env, uint32_t part)
{
	struct shardlog_partition_info info;
	ck_assert_int_eq(shardlog_partition_info(env->log, part, &info), 0);
	return info.next_offset;
}

/* Answers that came through the callback, in order. */
static struct {
	struct producers_op *ops[4096];
	uint32_t n;
} answers;

static void on_done(void *ctx, struct producers_op *op)
{
	ck_assert_ptr_eq(ctx, &answers);
	ck_assert_uint_lt(answers.n, 4096);
	answers.ops[answers.n++] = op;
}

/* Produces synchronously: the call must answer at once. */
static void produce_now(struct env *env, struct producers_op *op, const uint8_t *buf, uint32_t len)
{
	op->owner = 0;
	ck_assert_int_eq(producers_produce(env->p, op, buf, len, on_done, &answers), 0);
}

static void run_until(struct env *env, uint32_t n)
{
	for (int i = 0; i < 10000 && answers.n < n; i++)
		ck_assert_int_ge(loop_run_once(&env->loop, true), 0);
	ck_assert_uint_eq(answers.n, n);
}

START_TEST(test_produce_offsets_and_duplicates)
{
	struct env env;
	env_init(&env, 256 * KIB);
	answers.n = 0;
	static uint8_t buf[8 * KIB];
	struct producers_op op = {.partition_id = PART};
	/* not idempotent, acks=1: answered at once */
	uint32_t len = build(buf, sizeof(buf), -1, -1, -1, 3, 10);
	produce_now(&env, &op, buf, len);
	ck_assert_int_eq(op.status, 0);
	ck_assert_int_eq(op.verdict, PRODUCERS_APPEND);
	ck_assert_int_eq(op.base_offset, 0);
	ck_assert_int_eq(op.log_start_offset, 0);
	/* an idempotent producer: 0..4, 5..9 */
	for (int i = 0; i < 2; i++) {
		len = build(buf, sizeof(buf), 42, 0, i * 5, 5, 10);
		produce_now(&env, &op, buf, len);
		ck_assert_int_eq(op.status, 0);
		ck_assert_int_eq(op.base_offset, 3 + i * 5);
	}
	/* the first resent: its offset, nothing appended */
	len = build(buf, sizeof(buf), 42, 0, 0, 5, 10);
	produce_now(&env, &op, buf, len);
	ck_assert_int_eq(op.verdict, PRODUCERS_DUPLICATE);
	ck_assert_int_eq(op.base_offset, 3);
	ck_assert_int_eq(next_offset(&env, PART), 13);
	/* a gap, a stale epoch */
	len = build(buf, sizeof(buf), 42, 0, 11, 1, 10);
	produce_now(&env, &op, buf, len);
	ck_assert_int_eq(op.status, 0);
	ck_assert_int_eq(op.verdict, PRODUCERS_OUT_OF_ORDER);
	ck_assert_int_eq(op.base_offset, -1);
	len = build(buf, sizeof(buf), 43, 1, 0, 1, 10);
	produce_now(&env, &op, buf, len);
	len = build(buf, sizeof(buf), 43, 0, 1, 1, 10);
	produce_now(&env, &op, buf, len);
	ck_assert_int_eq(op.verdict, PRODUCERS_STALE_EPOCH);
	ck_assert_int_eq(next_offset(&env, PART), 14);
	/* another partition has its own offsets */
	struct producers_op op2 = {.partition_id = PART + 1};
	len = build(buf, sizeof(buf), 42, 0, 0, 2, 10);
	produce_now(&env, &op2, buf, len);
	ck_assert_int_eq(op2.base_offset, 0);
	/* an unknown partition, a batch too large for a 256 KiB ring */
	struct producers_op op3 = {.partition_id = 99};
	len = build(buf, sizeof(buf), -1, -1, -1, 1, 10);
	produce_now(&env, &op3, buf, len);
	ck_assert_int_eq(op3.status, -ENOENT);
	static uint8_t big[200 * KIB];
	struct producers_op op4 = {.partition_id = PART};
	len = build(big, sizeof(big), -1, -1, -1, 30, 5000);
	produce_now(&env, &op4, big, len);
	ck_assert_int_eq(op4.status, -EMSGSIZE);
	ck_assert_uint_eq(answers.n, 0);
	struct producers_stats st;
	producers_stats(env.p, &st);
	ck_assert_uint_eq(st.appended, 5);
	ck_assert_uint_eq(st.duplicates, 1);
	ck_assert_uint_eq(st.out_of_order, 1);
	ck_assert_uint_eq(st.stale_epoch, 1);
	env_done(&env);
}
END_TEST

/* acks=-1: answered after the sync, a durable duplicate too (through a barrier). */
START_TEST(test_produce_durable)
{
	struct env env;
	env_init(&env, 256 * KIB);
	answers.n = 0;
	static uint8_t buf[8 * KIB];
	static struct producers_op ops[4];
	for (int i = 0; i < 3; i++) {
		ops[i] = (struct producers_op){.partition_id = PART, .owner = 0, .durable = true};
		uint32_t len = build(buf, sizeof(buf), 7, 0, i * 2, 2, 100);
		ck_assert_int_eq(producers_produce(env.p, &ops[i], buf, len, on_done, &answers),
				 -EINPROGRESS);
	}
	/* the resend of batch 1 while it is still unsynced waits as well */
	ops[3] = (struct producers_op){.partition_id = PART, .owner = 0, .durable = true};
	uint32_t len = build(buf, sizeof(buf), 7, 0, 2, 2, 100);
	ck_assert_int_eq(producers_produce(env.p, &ops[3], buf, len, on_done, &answers),
			 -EINPROGRESS);
	ck_assert_uint_eq(answers.n, 0);
	run_until(&env, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_eq(answers.ops[i], &ops[i]);
		ck_assert_int_eq(ops[i].status, 0);
	}
	ck_assert_int_eq(ops[2].base_offset, 4);
	ck_assert_int_eq(ops[3].verdict, PRODUCERS_DUPLICATE);
	ck_assert_int_eq(ops[3].base_offset, 2);
	ck_assert_int_eq(next_offset(&env, PART), 6);
	/* once synced, a durable duplicate is answered at once */
	struct producers_op op = {.partition_id = PART, .owner = 0, .durable = true};
	ck_assert_int_eq(producers_produce(env.p, &op, buf, len, on_done, &answers), 0);
	ck_assert_int_eq(op.verdict, PRODUCERS_DUPLICATE);
	ck_assert_int_eq(op.base_offset, 2);
	env_done(&env);
}
END_TEST

/* A full log queues batches in order; every later batch queues behind them, so an
 * idempotent producer's pipelined batches all land, in order. */
START_TEST(test_produce_backpressure_in_order)
{
	struct env env;
	env_init(&env, 256 * KIB);
	answers.n = 0;
	static uint8_t buf[8 * KIB];
	static struct producers_op ops[200];
	uint32_t queued = 0;
	for (int i = 0; i < 200; i++) {
		ops[i] = (struct producers_op){.partition_id = PART, .owner = 0};
		uint32_t len = build(buf, sizeof(buf), 3, 0, i, 1, 4000);
		int ret = producers_produce(env.p, &ops[i], buf, len, on_done, &answers);
		if (ret == -EINPROGRESS)
			queued++;
		else
			ck_assert_int_eq(ops[i].base_offset, i);
	}
	ck_assert_uint_gt(queued, 100); /* about 60 fit in the ring without a write */
	struct producers_stats st;
	producers_stats(env.p, &st);
	ck_assert_uint_eq(st.queued, queued);
	run_until(&env, queued);
	for (uint32_t k = 0; k < queued; k++) {
		struct producers_op *op = answers.ops[k];
		ck_assert_int_eq(op->status, 0);
		ck_assert_int_eq(op->verdict, PRODUCERS_APPEND);
		ck_assert_int_eq(op->base_offset, op - ops);
	}
	ck_assert_int_eq(next_offset(&env, PART), 200);
	producers_stats(env.p, &st);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.appended, 200);
	env_done(&env);
}
END_TEST

/* Produces batches 0..N-1 of producer 77 (2 records each) to PART, acks=1. */
static void produce_run(struct env *env, int from, int n, uint32_t value_len)
{
	static uint8_t buf[64 * KIB];
	for (int i = from; i < from + n; i++) {
		struct producers_op op = {.partition_id = PART, .owner = 0};
		uint32_t len = build(buf, sizeof(buf), 77, 0, i * 2, 2, (int)value_len);
		int ret = producers_produce(env->p, &op, buf, len, on_done, &answers);
		while (ret == -EINPROGRESS) { /* the op lives here: wait for it */
			ck_assert_int_ge(loop_run_once(&env->loop, true), 0);
			if (answers.n > 0 && answers.ops[answers.n - 1] == &op) {
				answers.n--;
				ret = 0;
			}
		}
		ck_assert_int_eq(op.status, 0);
		ck_assert_int_eq(op.verdict, PRODUCERS_APPEND);
		ck_assert_int_eq(op.base_offset, 2 * i);
	}
}

/* The verdict on a resend of batch I of producer 77 and the offset it answers. */
static enum producers_verdict resend(struct env *env, int i, int64_t *offset)
{
	static uint8_t buf[64 * KIB];
	uint32_t len = build(buf, sizeof(buf), 77, 0, i * 2, 2, 10);
	struct batch_header h;
	ck_assert_int_eq(batch_parse(buf, len, &h), BATCH_OK);
	return producers_check(env->p, PART, &h, offset);
}

/* After a restart the state is back: from the checkpoint plus the scan after it, and
 * from a full scan when the checkpoint is gone. */
START_TEST(test_restart_rebuilds_state)
{
	struct env env;
	env_init(&env, 256 * KIB);
	answers.n = 0;
	produce_run(&env, 0, 300, 3000); /* 1.8 MiB: two 1 MiB segments, a checkpoint */
	env_close(&env);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			char path[900];
			snprintf(path, sizeof(path), "%s/shard-000/%s", env.dir,
				 SHARDLOG_CHECKPOINT_NAME);
			ck_assert_int_eq(unlink(path), 0);
		}
		env_open(&env);
		ck_assert_uint_eq(producers_count(env.p), 1);
		int64_t off;
		for (int i = 295; i < 300; i++) {
			ck_assert_int_eq(resend(&env, i, &off), PRODUCERS_DUPLICATE);
			ck_assert_int_eq(off, 2 * i);
		}
		ck_assert_int_eq(resend(&env, 294, NULL), PRODUCERS_OUT_OF_ORDER);
		ck_assert_int_eq(resend(&env, 300, NULL), PRODUCERS_APPEND);
		env_close(&env);
	}
	env_done(&env);
}
END_TEST

/* A crash after a checkpoint whose state remembers batches the log then lost: they
 * are forgotten at open, so their resend is appended again, not answered with offsets
 * that do not exist. */
START_TEST(test_restart_forgets_lost_batches)
{
	struct env env;
	env_init(&env, 256 * KIB);
	answers.n = 0;
	produce_run(&env, 0, 3, 100);
	env_close(&env);
	fflush(NULL);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		/* two more batches, in the log's memory only, then a checkpoint (it syncs
		 * only below the active segment) and a crash before any write */
		env_open(&env);
		static uint8_t buf[8 * KIB];
		for (int i = 3; i < 5; i++) {
			struct producers_op op = {.partition_id = PART, .owner = 0};
			uint32_t len = build(buf, sizeof(buf), 77, 0, i * 2, 2, 100);
			if (producers_produce(env.p, &op, buf, len, on_done, &answers) != 0 ||
			    op.base_offset != 2 * i)
				_exit(2);
		}
		_exit(shardlog_checkpoint(env.log) == 0 ? 0 : 3);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	env_open(&env);
	ck_assert_int_eq(next_offset(&env, PART), 6);
	int64_t off;
	ck_assert_int_eq(resend(&env, 2, &off), PRODUCERS_DUPLICATE);
	ck_assert_int_eq(off, 4);
	ck_assert_int_eq(resend(&env, 3, NULL), PRODUCERS_APPEND);
	env_done(&env);
}
END_TEST

/* ----------------------------------------------------------------------------------- */

static void add_log_case(Suite *s, const char *name, const TTest *test)
{
	unit_add_case(s, name, test, 0, machine.skip[0] ? machine.skip : NULL);
}

int main(void)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(4, &ring, 0);
	if (ret < 0) {
		snprintf(machine.skip, sizeof(machine.skip), "io_uring_queue_init: %s",
			 strerror(-ret));
	} else {
		io_uring_queue_exit(&ring);
		test_pick_direct_dir("sluice-check-producers", machine.base, sizeof(machine.base),
				     NULL, machine.skip, sizeof(machine.skip));
	}
	Suite *s = suite_create("producers");
	unit_add_case(s, "in_order_and_duplicates", test_in_order_and_duplicates, 0, NULL);
	unit_add_case(s, "gap", test_gap, 0, NULL);
	unit_add_case(s, "epochs", test_epochs, 0, NULL);
	unit_add_case(s, "unknown_producer", test_unknown_producer, 0, NULL);
	unit_add_case(s, "sequence_wrap", test_sequence_wrap, 0, NULL);
	unit_add_case(s, "not_idempotent", test_not_idempotent, 0, NULL);
	unit_add_case(s, "eviction", test_eviction, 0, NULL);
	unit_add_case(s, "many_producers_and_truncate", test_many_producers_and_truncate, 0, NULL);
	unit_add_case(s, "save_load", test_save_load, 0, NULL);
	unit_add_case(s, "recovered_batches", test_recovered_batches, 0, NULL);
	add_log_case(s, "produce_offsets_and_duplicates", test_produce_offsets_and_duplicates);
	add_log_case(s, "produce_durable", test_produce_durable);
	add_log_case(s, "produce_backpressure_in_order", test_produce_backpressure_in_order);
	add_log_case(s, "restart_rebuilds_state", test_restart_rebuilds_state);
	add_log_case(s, "restart_forgets_lost_batches", test_restart_forgets_lost_batches);
	ret = unit_run(s);
	if (machine.base[0])
		test_remove_tree(machine.base);
	return ret;
}
