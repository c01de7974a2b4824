/*
 * tests/unit/check_shardlog_crash.c: the crash test of the shard log (core/shardlog,
 * issue 3). A child process opens a shard log on a real O_DIRECT-capable file system
 * (4 MiB segments and a 1 MiB staging ring, so segment rolls, padding frames and
 * checkpoints happen during the test; eight partitions) and appends real RecordBatch v2
 * batches with durability requested and fsync always, in a loop; each append whose
 * callback fired with status 0 is reported to the parent through a pipe. The parent
 * SIGKILLs the child at random moments (mostly 5-150 ms after it finished opening the
 * log, sometimes within the time its set-up and recovery take), 80 times in 60 rounds,
 * all on the same data directory, so every recovery runs on top of the previous ones.
 * After each round the parent opens the log itself and checks what a user would
 * notice: every acknowledged append is present at the offset it was acknowledged with,
 * byte-identical (each batch is regenerated from its (partition, sequence), which its
 * records carry in their values); no partition has a gap (offsets run contiguously from
 * the log start to the next offset, which is the high watermark); unacknowledged
 * appends may be missing but what is present is byte-identical and in order; a batch
 * the parent once saw after recovery never disappears later; a plain pread scan of the
 * segment files finds exactly those frames and nothing but zeros after the recovered
 * end (no stale frame can reappear); and the next child continues each partition at
 * the offset the parent saw. Every third round runs a second child right after the
 * first is killed: it recovers the crashed log itself (reporting what it found, which
 * must keep everything acknowledged), and every other time it is killed during that
 * recovery. It does not test power loss (a killed process leaves the page cache
 * intact), retention or reads under load, and its writes are small (the writer is
 * paced), so a kill seldom tears one (a 32 MiB write killed in flight does get torn at
 * a block boundary); check_shardlog does the rest of the log's contract, torn and
 * damaged files included.
 *
 * Reproduce a failing run with SLUICE_CRASH_SEED=<the seed in the failure message>.
 */
#include "core/shardlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/crc32c.h"
#include "core/frame.h"
#include "io/disk.h"
#include "io/loop.h"
#include "io/pool.h"
#include "tests/unit/testdir.h"
#include "tests/unit/testbatch.h"
#include "tests/unit/unit.h"

/* Check's ck_assert_* record a mark point per call, a write(2) to the runner in fork
 * mode; the checks below run millions of times, so they fail through ck_abort_msg only. */
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg(__VA_ARGS__);                                                 \
	} while (0)
#define REQUIRE_OK(expr)                                                                           \
	do {                                                                                       \
		long long req_ret_ = (long long)(expr);                                            \
		if (req_ret_ < 0)                                                                  \
			ck_abort_msg("%s: %s", #expr, strerror((int)-req_ret_));                   \
	} while (0)

#define REQUIRE_CMP(a, op, b)                                                                      \
	do {                                                                                       \
		long long req_a_ = (long long)(a), req_b_ = (long long)(b);                        \
		if (!(req_a_ op req_b_))                                                           \
			ck_abort_msg("%s %s %s failed: %lld vs %lld", #a, #op, #b, req_a_,         \
				     req_b_);                                                      \
	} while (0)

/* Rounds; each ends with the parent's recovery and full check. A round kills one writer,
 * every CRASH_DOUBLE_EVERY-th round two: the second recovers the first one's crash
 * itself (and, every other time, is killed during that recovery). 80 kills in all. */
#define CRASH_ROUNDS	   60u
#define CRASH_DOUBLE_EVERY 3u
/* The first writer of every CRASH_EARLY_EVERY-th round, and the second writer of every
 * other double round, is killed early: timed from fork, uniformly within the time the last
 * child took from fork to an open log (CRASH_EARLY_MAX_MS before one was seen), so it
 * lands inside set-up or the log's recovery (its scan, truncation, checkpoint load);
 * the others are timed from the moment the child reports the log open,
 * CRASH_DELAY_MIN_MS..CRASH_DELAY_MAX_MS. */
#define CRASH_EARLY_EVERY  6u
#define CRASH_EARLY_MAX_MS 30u
#define CRASH_DELAY_MIN_MS 5u
#define CRASH_DELAY_MAX_MS 150u
/* A child must have the log open within this (it takes milliseconds). */
#define CRASH_OPEN_MAX_S 20.0
/* The whole case must finish within this (it takes about 10 s under ASan here). */
#define CRASH_CASE_BUDGET_S 240.0
/* Check's timeout for the case, above the budget. */
#define CRASH_CASE_TIMEOUT_S 300

#define CRASH_SHARD_ID	    2u
#define CRASH_PARTITIONS    8u
#define CRASH_SEGMENT_BYTES (4ull * 1024 * 1024)
#define CRASH_STAGING_BYTES (1024u * 1024)
/* Pool per open: the staging ring plus chunks for the parent's disk reads. */
#define CRASH_POOL_BYTES       (8u * 1024 * 1024)
#define CRASH_POOL_CHUNK_BYTES (64u * 1024)
#define CRASH_LOOP_ENTRIES     256u
/* The writer's pace: appends in flight at most, and a byte rate with a burst, so that the
 * log grows by a few MiB per second of writing (about 30 MiB over the whole test, seven
 * or eight segment rolls) and every check can afford to read everything back. */
#define CRASH_WINDOW	   32u
#define CRASH_RATE_BYTES_S (4u * 1024 * 1024)
#define CRASH_BURST_BYTES  (128u * 1024)
/* Largest batch gen_batch makes (5 records of at most 40 KiB + 63 bytes of value); far
 * below the ring's largest frame, staging / 2 - 4 KiB. */
#define CRASH_BATCH_BYTES_MAX (256u * 1024)
_Static_assert(CRASH_BATCH_BYTES_MAX + FRAME_HEADER_BYTES <= CRASH_STAGING_BYTES / 2 - 4096,
	       "every batch of the test must fit the log's largest frame");
_Static_assert(CRASH_SEGMENT_BYTES % CRASH_STAGING_BYTES == 0,
	       "segments are a whole number of staging rings");
/* Bytes the parent asks for per shardlog_read, and its gather buffer (one read returns
 * at most max_bytes, or one larger batch). */
#define CRASH_READ_BYTES   (1024u * 1024)
#define CRASH_GATHER_BYTES (CRASH_READ_BYTES + CRASH_BATCH_BYTES_MAX)

/* What the child tells the parent, one fixed-size record per write(2) (< PIPE_BUF, so
 * atomic). */
enum report_kind {
	REPORT_START = 1, /* after open: partition PART has SEQ batches, next offset BASE */
	REPORT_READY = 2, /* the log is open, appends begin */
	REPORT_ACK = 3,	  /* append (PART, SEQ) at BASE completed with status 0 */
	REPORT_ERROR = 4, /* ERR failed at step SEQ (enum child_step); the child exits */
};

enum child_step {
	STEP_LOOP = 1,
	STEP_POOL = 2,
	STEP_OPEN = 3,
	STEP_INFO = 4,
	STEP_APPEND = 5,
	STEP_CALLBACK = 6,
	STEP_RUN = 7,
};

struct report {
	uint32_t kind; /* enum report_kind */
	uint32_t part; /* partition index, 0 .. CRASH_PARTITIONS-1 */
	uint64_t seq;  /* batch sequence number within the partition, or the step */
	int64_t base;  /* base offset */
	uint32_t len;  /* batch bytes (ACK) */
	int32_t err;   /* negative errno (ERROR) */
};
_Static_assert(sizeof(struct report) <= PIPE_BUF, "a report is written atomically");

/* Broker-wide ids of the test's partitions: small, large, sparse. */
static const uint32_t partition_ids[CRASH_PARTITIONS] = {0,	7,     1000,	  4242,
							 65536, 99999, 123456789, 0x7ffffffe};

/* Decided once in main(), before the cases fork. */
static struct {
	char base[4096]; /* mkdtemp dir on an O_DIRECT-capable file system, or "" */
	bool base_tmpfs; /* it is tmpfs (only when nothing else accepted O_DIRECT) */
	char skip[288];	 /* why the case cannot run here, or "" (fits a TAP label) */
	uint64_t seed;	 /* random seed of this run */
} machine;

/* --- deterministic batches ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* The shape of batch SEQ of partition PART: one in 32 is large (2-5 records of 24-40 KiB,
 * so frames cross staging-ring and segment boundaries with padding), the others small
 * (1-24 records of 16-715 bytes). */
struct shape {
	uint32_t records;    /* record count */
	uint32_t value_base; /* value bytes of record i: value_base + (i * 37) % 64 */
};

static struct shape gen_shape(uint32_t part, uint64_t seq)
{
	uint64_t h = mix64(((uint64_t)part << 48) ^ seq ^ UINT64_C(0x5eed));
	struct shape s;
	if (h % 32 == 0) {
		s.records = 2 + (uint32_t)((h >> 8) % 4);
		s.value_base = 24 * 1024 + (uint32_t)((h >> 16) % (16 * 1024));
	} else {
		s.records = 1 + (uint32_t)((h >> 8) % 24);
		s.value_base = 16 + (uint32_t)((h >> 16) % 640);
	}
	return s;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/*
 * Writes batch SEQ of partition PART (index) into OUT with baseOffset BASE_OFFSET and
 * returns its length. Everything but baseOffset depends only on (PART, SEQ): each record
 * i has a null key, timestampDelta i, offsetDelta i, no headers, and a value that starts
 * "CRSH" | partition id | seq | i (little-endian) followed by pseudo-random filler.
 */
static uint32_t gen_batch(uint32_t part, uint64_t seq, int64_t base_offset, uint8_t *out)
{
	struct shape s = gen_shape(part, seq);
	int64_t base_ts = INT64_C(1700000000000) + (int64_t)seq * 1000 + part;
	size_t len = BATCH_HEADER_BYTES;

	for (uint32_t i = 0; i < s.records; i++) {
		uint8_t value[CRASH_BATCH_BYTES_MAX];
		uint32_t vlen = s.value_base + (i * 37) % 64;
		REQUIRE_CMP(vlen, <=, sizeof(value));
		memcpy(value, "CRSH", 4);
		put_le32(value + 4, partition_ids[part]);
		put_le64(value + 8, seq);
		put_le32(value + 16, i);
		uint64_t x = mix64(((uint64_t)part << 56) ^ (seq << 8) ^ i) | 1;
		for (uint32_t k = 20; k < vlen; k += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			uint8_t word[8];
			put_le64(word, x);
			memcpy(value + k, word, vlen - k < 8 ? vlen - k : 8);
		}
		const struct test_record rec = {
		    .timestamp_delta = i, .value = value, .value_len = vlen};
		size_t n = test_record_put(out + len, CRASH_BATCH_BYTES_MAX - len, &rec, i);
		REQUIRE(n > 0, "batch %u/%llu over %u bytes", part, (unsigned long long)seq,
			CRASH_BATCH_BYTES_MAX);
		len += n;
	}
	/* partitionLeaderEpoch -1, as producers send; no codec, create time */
	const struct test_batch b = {.base_offset = base_offset,
				     .leader_epoch = -1,
				     .base_timestamp = base_ts,
				     .max_timestamp = base_ts + s.records - 1,
				     .producer_id = -1,
				     .producer_epoch = -1,
				     .base_sequence = -1};
	test_batch_seal(out, len, &b, s.records);
	return (uint32_t)len;
}

/* --- the child: append until killed --------------------------------------------------- */

/* One append waiting for its callback; callbacks fire in append order, so a FIFO of
 * CRASH_WINDOW slots indexed by the append count holds them. */
struct pending {
	uint32_t part; /* partition index */
	uint64_t seq;  /* its batch sequence number */
	int64_t base;  /* base offset shardlog_append returned */
	uint32_t len;  /* batch bytes */
};

struct child {
	int report_fd;			   /* pipe to the parent */
	struct pending fifo[CRASH_WINDOW]; /* appends in flight */
	uint64_t appended;		   /* appends made */
	uint64_t completed;		   /* callbacks fired */
};

static void child_report(int fd, const struct report *r)
{
	/* Blocking write: the parent reads continuously; EINTR cannot happen (no handlers). */
	ssize_t n = write(fd, r, sizeof(*r));
	if (n != (ssize_t)sizeof(*r))
		_exit(3);
}

static _Noreturn void child_fail(int fd, enum child_step step, int err)
{
	struct report r = {.kind = REPORT_ERROR, .seq = step, .err = err};
	child_report(fd, &r);
	_exit(1);
}

static void child_append_done(void *ctx, int status, int64_t base_offset)
{
	struct child *c = ctx;
	struct pending *pd = &c->fifo[c->completed % CRASH_WINDOW];
	if (status != 0)
		child_fail(c->report_fd, STEP_CALLBACK, status);
	if (base_offset != pd->base)
		child_fail(c->report_fd, STEP_CALLBACK, -EPROTO);
	struct report r = {
	    .kind = REPORT_ACK, .part = pd->part, .seq = pd->seq, .base = pd->base, .len = pd->len};
	child_report(c->report_fd, &r);
	c->completed++;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static _Noreturn void child_main(int fd, const char *dir, uint64_t rng)
{
	static struct child c;
	static struct loop loop;
	static struct pool pool;
	static uint8_t batch[CRASH_BATCH_BYTES_MAX];
	struct shardlog *log = NULL;
	uint64_t seq[CRASH_PARTITIONS];
	char err[256];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	c.report_fd = fd;
	int ret = loop_init(&loop, CRASH_LOOP_ENTRIES, err, sizeof(err));
	if (ret < 0)
		child_fail(fd, STEP_LOOP, ret);
	ret = pool_init(&pool, CRASH_POOL_BYTES, CRASH_POOL_CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	if (ret == 0)
		ret = pool_register(&pool, &loop.ring);
	if (ret < 0)
		child_fail(fd, STEP_POOL, ret);
	struct shardlog_options opts = {
	    .data_dir = dir,
	    .shard_id = CRASH_SHARD_ID,
	    .segment_bytes = CRASH_SEGMENT_BYTES,
	    .staging_bytes = CRASH_STAGING_BYTES,
	    .partitions_max = 64,
	    .fsync = SHARDLOG_FSYNC_ALWAYS,
	    .loop = &loop,
	    .pool = &pool,
	};
	ret = shardlog_open(&log, &opts, partition_ids, CRASH_PARTITIONS, err, sizeof(err));
	if (ret < 0)
		child_fail(fd, STEP_OPEN, ret);
	for (uint32_t p = 0; p < CRASH_PARTITIONS; p++) {
		struct shardlog_partition_info info;
		ret = shardlog_partition_info(log, partition_ids[p], &info);
		if (ret < 0)
			child_fail(fd, STEP_INFO, ret);
		/* Without retention the batch count is the next sequence number. */
		seq[p] = info.batches;
		struct report r = {
		    .kind = REPORT_START, .part = p, .seq = info.batches, .base = info.next_offset};
		child_report(fd, &r);
	}
	struct report ready = {.kind = REPORT_READY};
	child_report(fd, &ready);

	double start = now_s();
	uint64_t bytes = 0;
	for (;;) {
		double budget = CRASH_BURST_BYTES + CRASH_RATE_BYTES_S * (now_s() - start);
		while (c.appended - c.completed < CRASH_WINDOW && (double)bytes < budget) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			uint32_t p = (uint32_t)(rng % CRASH_PARTITIONS);
			uint32_t len = gen_batch(p, seq[p], 0, batch);
			int64_t base = shardlog_append(log, partition_ids[p], batch, len, true,
						       child_append_done, &c);
			if (base == -EAGAIN)
				break;
			if (base < 0)
				child_fail(fd, STEP_APPEND, (int)base);
			c.fifo[c.appended % CRASH_WINDOW] =
			    (struct pending){.part = p, .seq = seq[p], .base = base, .len = len};
			c.appended++;
			seq[p]++;
			bytes += len;
		}
		if (c.appended == c.completed) {
			/* Nothing in flight: the rate budget holds us back. */
			struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		ret = loop_run_once(&loop, true);
		if (ret < 0)
			child_fail(fd, STEP_RUN, ret);
	}
}

/* --- the parent: kill, recover, check ---------------------------------------------------- */

/* Per partition: what the parent knows, across all runs. */
struct part_state {
	int64_t *bases;	      /* bases[k]: base offset of batch k (deterministic) */
	uint64_t bases_count; /* entries computed */
	uint64_t bases_cap;   /* entries allocated */
	uint64_t present;     /* batches the last recovery found (never shrinks) */
	int64_t next_offset;  /* the next offset the last recovery found */
	uint64_t acked;	      /* batches acknowledged: every seq below is acknowledged */
	uint64_t run_start;   /* first sequence number of the current child run */
};

struct crash {
	char dir[4200];				   /* the data directory */
	struct part_state parts[CRASH_PARTITIONS]; /* state per partition */
	uint8_t *expect;			   /* scratch for a regenerated batch */
	uint8_t *gather;			   /* a read's slices, concatenated */
	uint8_t *segment;			   /* one segment file, for the scan */
	uint64_t acks;				   /* acknowledgements received */
	uint64_t unacked_present;		   /* batches found beyond the acknowledged */
	uint64_t early_kills;			   /* kills before the child was ready */
	double open_ms;				   /* the last child's fork to open log */
	bool after_check;			   /* the writer opens what the parent closed */
	uint64_t kills;				   /* writers killed */
	uint64_t frames_checked;		   /* frames the scans walked */
	uint64_t max_segments;			   /* most segment files seen */
	uint64_t log_bytes;			   /* tail position at the last recovery */
	uint64_t dropped;			   /* bytes dropped by the parent's recoveries */
	uint64_t seed;				   /* for the failure messages */
};

/* Base offset of batch K of partition PART: the record counts of the batches before it. */
static int64_t expected_base(struct part_state *ps, uint32_t part, uint64_t k)
{
	while (ps->bases_count <= k) {
		if (ps->bases_count == ps->bases_cap) {
			ps->bases_cap = ps->bases_cap ? 2 * ps->bases_cap : 1024;
			ps->bases = realloc(ps->bases, ps->bases_cap * sizeof(*ps->bases));
			REQUIRE(ps->bases, "out of memory");
		}
		uint64_t i = ps->bases_count;
		ps->bases[i] = i == 0 ? 0 : ps->bases[i - 1] + gen_shape(part, i - 1).records;
		ps->bases_count++;
	}
	return ps->bases[k];
}

static void handle_report(struct crash *cr, const struct report *r, bool *ready)
{
	REQUIRE(r->part < CRASH_PARTITIONS, "seed %" PRIu64 ": report for partition %u", cr->seed,
		r->part);
	struct part_state *ps = &cr->parts[r->part];
	switch (r->kind) {
	case REPORT_START:
		if (cr->after_check) {
			/* It continues where the parent's recovery and clean close left it. */
			REQUIRE(r->seq == ps->present && r->base == ps->next_offset,
				"seed %" PRIu64 ": partition %u reopened with %" PRIu64
				" batches, next offset %" PRId64
				"; the parent closed it with %" PRIu64 ", %" PRId64,
				cr->seed, partition_ids[r->part], r->seq, r->base, ps->present,
				ps->next_offset);
		} else {
			/* It recovered a crashed writer's log: nothing acknowledged or seen is
			 * lost, and the batches it found end where their records say. */
			REQUIRE(r->seq >= ps->acked && r->seq >= ps->present &&
				    r->base == expected_base(ps, r->part, r->seq),
				"seed %" PRIu64
				": partition %u recovered by the writer with %" PRIu64
				" batches, next offset %" PRId64 "; %" PRIu64
				" were acknowledged, %" PRIu64 " seen, %" PRId64 " expected",
				cr->seed, partition_ids[r->part], r->seq, r->base, ps->acked,
				ps->present, expected_base(ps, r->part, r->seq));
		}
		ps->run_start = r->seq;
		break;
	case REPORT_READY:
		*ready = true;
		break;
	case REPORT_ACK: {
		/* Acknowledged in append order, one sequence after the other, at the offset
		 * the batches before it make. */
		uint64_t want = ps->acked > ps->run_start ? ps->acked : ps->run_start;
		REQUIRE(r->seq == want,
			"seed %" PRIu64 ": partition %u: ack for batch %" PRIu64
			", expected %" PRIu64,
			cr->seed, partition_ids[r->part], r->seq, want);
		int64_t base = expected_base(ps, r->part, r->seq);
		REQUIRE(r->base == base,
			"seed %" PRIu64 ": partition %u batch %" PRIu64
			" acknowledged at offset %" PRId64 ", expected %" PRId64,
			cr->seed, partition_ids[r->part], r->seq, r->base, base);
		REQUIRE_CMP(r->len, ==, gen_batch(r->part, r->seq, base, cr->expect));
		ps->acked = r->seq + 1;
		cr->acks++;
		break;
	}
	case REPORT_ERROR:
		ck_abort_msg("seed %" PRIu64 ": the writer failed at step %" PRIu64 ": %s",
			     cr->seed, r->seq, strerror(-r->err));
		break;
	default:
		ck_abort_msg("seed %" PRIu64 ": unknown report kind %u", cr->seed, r->kind);
	}
}

/* Reads what is in the pipe now (BUF holds a partial report between calls). Returns false
 * at end of file. */
static bool read_reports(struct crash *cr, int fd, uint8_t *buf, size_t *have, bool *ready)
{
	for (;;) {
		ssize_t n = read(fd, buf + *have, 64 * sizeof(struct report) - *have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		REQUIRE(n >= 0, "read from the writer: %s", strerror(errno));
		if (n == 0)
			return false;
		*have += (size_t)n;
		size_t done = 0;
		while (*have - done >= sizeof(struct report)) {
			struct report r;
			memcpy(&r, buf + done, sizeof(r));
			handle_report(cr, &r, ready);
			done += sizeof(r);
		}
		memmove(buf, buf + done, *have - done);
		*have -= done;
	}
}

struct read_wait {
	bool done; /* the disk read completed */
};

static void read_done(void *ctx, struct shardlog_read *rd)
{
	((struct read_wait *)ctx)->done = true;
}

/* Reads partition PART back from LOG and checks every batch against its regeneration. */
static void check_partition(struct crash *cr, struct shardlog *log, struct loop *loop,
			    uint32_t part)
{
	struct part_state *ps = &cr->parts[part];
	uint32_t id = partition_ids[part];
	struct shardlog_partition_info info;
	static struct shardlog_read rd;

	REQUIRE_CMP(shardlog_partition_info(log, id, &info), ==, 0);
	REQUIRE(info.log_start_offset == 0 && info.high_watermark == info.next_offset,
		"seed %" PRIu64 ": partition %u after recovery: log start %" PRId64
		", high watermark %" PRId64 ", next offset %" PRId64,
		cr->seed, id, info.log_start_offset, info.high_watermark, info.next_offset);
	/* Nothing acknowledged is lost, nothing seen before is lost. */
	REQUIRE(info.batches >= ps->acked && info.batches >= ps->present,
		"seed %" PRIu64 ": partition %u recovered %u batches, but %" PRIu64
		" were acknowledged and %" PRIu64 " found by the last recovery",
		cr->seed, id, info.batches, ps->acked, ps->present);
	REQUIRE(info.next_offset == expected_base(ps, part, info.batches),
		"seed %" PRIu64 ": partition %u: %u batches end at %" PRId64 ", they hold %" PRId64
		" records",
		cr->seed, id, info.batches, info.next_offset,
		expected_base(ps, part, info.batches));

	int64_t offset = 0;
	uint64_t k = 0;
	while (offset < info.next_offset) {
		struct read_wait wait = {false};
		int ret = shardlog_read(log, id, offset, CRASH_READ_BYTES, &rd, read_done, &wait);
		while (ret == -EAGAIN) {
			REQUIRE_OK(loop_run_once(loop, false));
			ret =
			    shardlog_read(log, id, offset, CRASH_READ_BYTES, &rd, read_done, &wait);
		}
		if (ret == -EINPROGRESS) {
			while (!wait.done)
				REQUIRE_OK(loop_run_once(loop, true));
			ret = rd.status;
		}
		REQUIRE(ret == 0, "seed %" PRIu64 ": partition %u: read at offset %" PRId64 ": %s",
			cr->seed, id, offset, strerror(-ret));
		REQUIRE_CMP(rd.first_offset, ==, offset);
		REQUIRE_CMP(rd.bytes, <=, CRASH_GATHER_BYTES);
		size_t have = 0;
		for (uint32_t i = 0; i < rd.slice_count; i++) {
			memcpy(cr->gather + have, rd.slices[i].data, rd.slices[i].len);
			have += rd.slices[i].len;
		}
		REQUIRE_CMP(have, ==, rd.bytes);
		uint32_t read_batches = rd.batch_count;
		int64_t read_next = rd.next_offset;
		shardlog_read_release(log, &rd);

		size_t at = 0;
		uint32_t batches = 0;
		while (at < have) {
			int64_t base = expected_base(ps, part, k);
			uint32_t len = gen_batch(part, k, base, cr->expect);
			REQUIRE(have - at >= len && memcmp(cr->gather + at, cr->expect, len) == 0,
				"seed %" PRIu64 ": partition %u batch %" PRIu64
				" at offset %" PRId64 " (%s) is not the bytes appended",
				cr->seed, id, k, base,
				k < ps->acked ? "acknowledged" : "not acknowledged");
			at += len;
			k++;
			batches++;
		}
		REQUIRE_CMP(batches, ==, read_batches);
		REQUIRE_CMP(read_next, ==, expected_base(ps, part, k));
		offset = read_next;
	}
	REQUIRE_CMP(k, ==, info.batches);
	if (k > ps->acked)
		cr->unacked_present += k - (ps->acked > ps->present ? ps->acked : ps->present);
	ps->present = info.batches;
	ps->next_offset = info.next_offset;
}

/* Reads segment NAME whole into cr->segment; returns its size. */
static uint64_t read_segment(struct crash *cr, int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0, "open %s: %s", name, strerror(errno));
	uint64_t size = 0;
	REQUIRE_CMP(disk_file_size(fd, &size), ==, 0);
	REQUIRE(size == CRASH_SEGMENT_BYTES, "seed %" PRIu64 ": segment %s is %" PRIu64 " bytes",
		cr->seed, name, size);
	REQUIRE_CMP(disk_pread_all(fd, cr->segment, size, 0), ==, 0);
	close(fd);
	return size;
}

/*
 * Walks every frame of every segment with plain reads (not through the log): they must
 * be exactly the batches the recovery indexed, in each partition's order, ending at
 * END (the recovered tail position), and every byte after END, in every segment, must be
 * zero, so that no frame beyond the recovered end can come back at a later recovery.
 */
static void scan_frames(struct crash *cr, uint64_t end)
{
	char path[4400], shard[SHARDLOG_DIR_NAME_BYTES];
	int dir_fd;
	char **names = NULL;
	uint32_t count = 0;
	uint64_t seen[CRASH_PARTITIONS] = {0};

	snprintf(path, sizeof(path), "%s/%s", cr->dir, shardlog_dir_name(shard, CRASH_SHARD_ID));
	REQUIRE_CMP(disk_open_dir(path, false, &dir_fd), ==, 0);
	REQUIRE_CMP(disk_list(dir_fd, SHARDLOG_SEGMENT_SUFFIX, &names, &count), ==, 0);
	REQUIRE_CMP(count, >=, 1);
	if (count > cr->max_segments)
		cr->max_segments = count;

	uint64_t expect_start = 0;
	bool first = true, ended = false;
	for (uint32_t s = 0; s < count; s++) {
		uint64_t start;
		REQUIRE(shardlog_segment_parse(names[s], &start), "stray file %s", names[s]);
		/* No retention here: segments start at 0 and follow each other. */
		REQUIRE(first ? start == 0 : start == expect_start,
			"seed %" PRIu64 ": segment %s does not follow the one before", cr->seed,
			names[s]);
		first = false;
		uint64_t size = read_segment(cr, dir_fd, names[s]);
		expect_start = start + size;
		uint64_t at = 0;
		while (!ended && at < size) {
			struct frame_header h;
			enum frame_check fc = frame_check(cr->segment + at, size - at, &h);
			if (fc == FRAME_END) {
				REQUIRE(start + at == end,
					"seed %" PRIu64 ": the log on disk ends at %" PRIu64
					", the recovery said %" PRIu64,
					cr->seed, start + at, end);
				ended = true;
				break;
			}
			REQUIRE(fc == FRAME_OK,
				"seed %" PRIu64 ": %s: frame at position %" PRIu64
				" after recovery: %s",
				cr->seed, names[s], start + at, frame_check_name(fc));
			cr->frames_checked++;
			if (!frame_is_pad(&h)) {
				uint32_t part = CRASH_PARTITIONS;
				for (uint32_t p = 0; p < CRASH_PARTITIONS; p++)
					if (partition_ids[p] == h.partition_id)
						part = p;
				REQUIRE(part < CRASH_PARTITIONS,
					"seed %" PRIu64 ": frame at %" PRIu64
					" of unknown partition %u",
					cr->seed, start + at, h.partition_id);
				struct part_state *ps = &cr->parts[part];
				uint64_t k = seen[part]++;
				REQUIRE(k < ps->present,
					"seed %" PRIu64 ": frame at %" PRIu64
					": partition %u has more frames than batches",
					cr->seed, start + at, h.partition_id);
				int64_t base = expected_base(ps, part, k);
				uint32_t len = gen_batch(part, k, base, cr->expect);
				REQUIRE(h.base_offset == base &&
					    h.frame_len == len + FRAME_HEADER_BYTES &&
					    h.record_count == (int32_t)gen_shape(part, k).records &&
					    memcmp(cr->segment + at + FRAME_HEADER_BYTES,
						   cr->expect, len) == 0,
					"seed %" PRIu64 ": frame at %" PRIu64
					" is not partition %u's batch %" PRIu64,
					cr->seed, start + at, h.partition_id, k);
			}
			at += h.frame_len;
			if (start + at == end && at == size)
				ended = true; /* the log ends exactly at a segment end */
		}
		if (!ended)
			continue;
		/* Everything after the end of the log is zeros. */
		for (uint64_t i = at; i < size; i++)
			REQUIRE(cr->segment[i] == 0,
				"seed %" PRIu64 ": %s: non-zero byte at position %" PRIu64
				", after the recovered end %" PRIu64,
				cr->seed, names[s], start + i, end);
		at = size;
	}
	REQUIRE(ended, "seed %" PRIu64 ": the segments end before the log (%" PRIu64 ")", cr->seed,
		end);
	for (uint32_t p = 0; p < CRASH_PARTITIONS; p++)
		REQUIRE(seen[p] == cr->parts[p].present,
			"seed %" PRIu64 ": partition %u: %" PRIu64 " frames on disk, %" PRIu64
			" batches recovered",
			cr->seed, partition_ids[p], seen[p], cr->parts[p].present);
	disk_list_free(names, count);
	close(dir_fd);
}

/* Opens the log in this process (running recovery), checks everything, closes it, then
 * scans the files. */
static void recover_and_check(struct crash *cr)
{
	static struct loop loop;
	static struct pool pool;
	struct shardlog *log = NULL;
	char err[256] = "";

	REQUIRE_CMP(loop_init(&loop, CRASH_LOOP_ENTRIES, err, sizeof(err)), ==, 0);
	REQUIRE_CMP(
	    pool_init(&pool, CRASH_POOL_BYTES, CRASH_POOL_CHUNK_BYTES, -1, POOL_MODE_NORMAL), ==,
	    0);
	REQUIRE_CMP(pool_register(&pool, &loop.ring), ==, 0);
	struct shardlog_options opts = {
	    .data_dir = cr->dir,
	    .shard_id = CRASH_SHARD_ID,
	    .segment_bytes = CRASH_SEGMENT_BYTES,
	    .staging_bytes = CRASH_STAGING_BYTES,
	    .partitions_max = 64,
	    .fsync = SHARDLOG_FSYNC_ALWAYS,
	    .loop = &loop,
	    .pool = &pool,
	};
	int ret = shardlog_open(&log, &opts, partition_ids, CRASH_PARTITIONS, err, sizeof(err));
	REQUIRE(ret == 0, "seed %" PRIu64 ": recovery failed: %s (%s)", cr->seed, strerror(-ret),
		err);
	struct shardlog_stats st;
	shardlog_stats(log, &st);
	cr->dropped += st.recovery_bytes_dropped;
	for (uint32_t p = 0; p < CRASH_PARTITIONS; p++)
		check_partition(cr, log, &loop, p);
	REQUIRE_CMP(shardlog_close(log), ==, 0);
	pool_unregister(&pool, &loop.ring);
	loop_destroy(&loop);
	pool_destroy(&pool);
	cr->log_bytes = st.tail_position;
	scan_frames(cr, st.tail_position);
}

/* One run of the writer: fork, wait, kill, collect its acknowledgements. */
static void run_writer(struct crash *cr, bool early, uint64_t *rng)
{
	int fds[2];
	REQUIRE_CMP(pipe2(fds, O_CLOEXEC), ==, 0);
	*rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
	uint64_t child_rng = mix64(*rng) | 1;

	double early_max_ms = cr->open_ms > 0 ? cr->open_ms : CRASH_EARLY_MAX_MS;
	double delay_ms =
	    early ? early_max_ms * (double)(*rng % 1000) / 1000.0
		  : CRASH_DELAY_MIN_MS +
			(double)(*rng % ((CRASH_DELAY_MAX_MS - CRASH_DELAY_MIN_MS) * 10)) / 10.0;
	double forked = now_s();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	REQUIRE_CMP(pid, >=, 0);
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], cr->dir, child_rng);
	}
	close(fds[1]);
	REQUIRE_CMP(fcntl(fds[0], F_SETFL, O_NONBLOCK), ==, 0);

	uint8_t buf[64 * sizeof(struct report)];
	size_t have = 0;
	bool ready = false, open = true;
	/* An early kill is timed from now; the others from the child's READY, which must
	 * come within CRASH_OPEN_MAX_S. */
	double deadline = now_s() + (early ? delay_ms / 1e3 : CRASH_OPEN_MAX_S);
	while (open) {
		double left = deadline - now_s();
		if (left <= 0)
			break;
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int timeout_ms = (int)(left * 1e3) + 1;
		bool was_ready = ready;
		if (poll(&pfd, 1, timeout_ms) > 0)
			open = read_reports(cr, fds[0], buf, &have, &ready);
		if (ready && !was_ready && !early) {
			deadline = now_s() + delay_ms / 1e3;
			cr->open_ms = (now_s() - forked) * 1e3;
		}
	}
	REQUIRE(ready || early, "seed %" PRIu64 ": the writer did not open the log within %.0f s",
		cr->seed, CRASH_OPEN_MAX_S);
	if (!ready)
		cr->early_kills++;
	cr->kills++;
	kill(pid, SIGKILL);
	int status;
	REQUIRE_CMP(waitpid(pid, &status, 0), ==, pid);
	/* What it reported before it died still counts. */
	REQUIRE_CMP(fcntl(fds[0], F_SETFL, 0), ==, 0);
	while (open)
		open = read_reports(cr, fds[0], buf, &have, &ready);
	close(fds[0]);
	REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		"seed %" PRIu64 ": the writer ended by itself (status 0x%x)", cr->seed, status);
	REQUIRE_CMP(have, ==, 0);
}

START_TEST(test_kill_recover)
{
	static struct crash cr;
	uint64_t rng = machine.seed | 1;

	cr.seed = machine.seed;
	snprintf(cr.dir, sizeof(cr.dir), "%s/data", machine.base);
	cr.expect = malloc(CRASH_BATCH_BYTES_MAX);
	cr.gather = malloc(CRASH_GATHER_BYTES);
	cr.segment = malloc(CRASH_SEGMENT_BYTES);
	REQUIRE(cr.expect && cr.gather && cr.segment, "out of memory");
	printf("# crash: seed %" PRIu64 ", data in %s%s\n", cr.seed, cr.dir,
	       machine.base_tmpfs ? " (tmpfs: no other file system accepted O_DIRECT)" : "");

	double start = now_s();
	for (uint32_t round = 0; round < CRASH_ROUNDS; round++) {
		cr.after_check = true;
		run_writer(&cr, round % CRASH_EARLY_EVERY == CRASH_EARLY_EVERY - 1, &rng);
		if (round % CRASH_DOUBLE_EVERY == CRASH_DOUBLE_EVERY - 1) {
			cr.after_check = false;
			run_writer(&cr, round % (2 * CRASH_DOUBLE_EVERY) == CRASH_DOUBLE_EVERY - 1,
				   &rng);
		}
		recover_and_check(&cr);
		REQUIRE(now_s() - start < CRASH_CASE_BUDGET_S,
			"seed %" PRIu64 ": %u rounds took over %.0f s", cr.seed, round + 1,
			CRASH_CASE_BUDGET_S);
	}
	/* The test proved something only if the writer got far enough. */
	uint64_t batches = 0;
	for (uint32_t p = 0; p < CRASH_PARTITIONS; p++)
		batches += cr.parts[p].present;
	REQUIRE(cr.kills >= 50 && cr.acks >= 10 * cr.kills && cr.max_segments >= 3,
		"seed %" PRIu64 ": only %" PRIu64 " acknowledgements and %" PRIu64
		" segments: the writer barely ran",
		cr.seed, cr.acks, cr.max_segments);
	printf("# crash: %" PRIu64 " kills (%" PRIu64
	       " before the log was open) in %.1f s; %" PRIu64 " acknowledged appends, %" PRIu64
	       " batches in the log (%" PRIu64 " found beyond the acknowledged), %" PRIu64
	       " bytes, %" PRIu64 " segments, %" PRIu64
	       " bytes dropped by the parent's recoveries, %" PRIu64 " frames scanned\n",
	       cr.kills, cr.early_kills, now_s() - start, cr.acks, batches, cr.unacked_present,
	       cr.log_bytes, cr.max_segments, cr.dropped, cr.frames_checked);
	fflush(stdout);
	for (uint32_t p = 0; p < CRASH_PARTITIONS; p++)
		free(cr.parts[p].bases);
	free(cr.expect);
	free(cr.gather);
	free(cr.segment);
}
END_TEST

/* --- set-up --------------------------------------------------------------------------- */

/* Sets machine.skip when this machine cannot give a shard log its io_uring and
 * registered buffers (io_uring disabled, RLIMIT_MEMLOCK too low). */
static void probe_uring(void)
{
	struct loop loop;
	struct pool pool;
	char explain[512] = "";
	int ret = loop_init(&loop, CRASH_LOOP_ENTRIES, explain, sizeof(explain));
	if (ret < 0) {
		snprintf(machine.skip, sizeof(machine.skip), "io_uring unusable: %s", explain);
		return;
	}
	ret = pool_init(&pool, CRASH_POOL_BYTES, CRASH_POOL_CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	if (ret == 0) {
		ret = pool_register(&pool, &loop.ring);
		if (ret < 0)
			uring_explain(ret, "register buffers", NULL, explain, sizeof(explain));
		else
			pool_unregister(&pool, &loop.ring);
		pool_destroy(&pool);
	} else {
		snprintf(explain, sizeof(explain), "pool of %u bytes: %s", CRASH_POOL_BYTES,
			 strerror(-ret));
	}
	loop_destroy(&loop);
	if (ret < 0)
		snprintf(machine.skip, sizeof(machine.skip), "no registered buffer pool: %s",
			 explain);
}

int main(void)
{
	const char *seed = getenv("SLUICE_CRASH_SEED");
	if (seed && seed[0]) {
		machine.seed = strtoull(seed, NULL, 10);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		machine.seed = mix64(((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
				     (uint64_t)getpid());
	}
	test_pick_direct_dir("sluice-check-crash", machine.base, sizeof(machine.base),
			     &machine.base_tmpfs, machine.skip, sizeof(machine.skip));
	if (!machine.skip[0])
		probe_uring();

	/* unit_add_case gives every case 120 s; this one may use up to CRASH_CASE_TIMEOUT_S.
	 * Check scales every timeout by CK_TIMEOUT_MULTIPLIER, so unless the caller set one,
	 * scale this program's (one case) to the crash test's limit. */
	if (!getenv("CK_TIMEOUT_MULTIPLIER")) {
		char mult[32];
		snprintf(mult, sizeof(mult), "%.3f", CRASH_CASE_TIMEOUT_S / 120.0);
		setenv("CK_TIMEOUT_MULTIPLIER", mult, 1);
	}
	Suite *s = suite_create("shardlog_crash");
	unit_add_case(s, "kill_recover", test_kill_recover, 0,
		      machine.skip[0] ? machine.skip : NULL);
	int ret = unit_run(s);

	/* The data stays for a post-mortem when the case failed. */
	if (machine.base[0] && ret == EXIT_SUCCESS)
		test_remove_tree(machine.base);
	else if (machine.base[0])
		printf("# crash: data kept in %s\n", machine.base);
	return ret;
}
