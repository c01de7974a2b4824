/*
 * tests/unit/check_shardlog.c: Check tests of core/shardlog, the shard's log, on a real
 * directory of a file system with O_DIRECT (under /var/tmp or the build directory) and
 * a real io_uring loop and registered pool: appends of real RecordBatch v2 bytes (built
 * here with varints and a CRC-32C) read back byte-identical across 10,000 interleaved
 * partitions; restarts keep offsets and bytes; cache and disk reads agree; index edges
 * through the log API; recovery from damage made by really writing the files (truncated
 * segment, zeroed last block, torn write, a flipped bit in a middle frame, a missing or
 * corrupt checkpoint) with appends continuing at the right offset and the stale frames
 * never coming back; retention by time and bytes with segment deletion; group commit
 * (write count far below the append count); durable waiters released in append order;
 * backpressure from a full ring and from a pinned read. Cases that cannot run here (no
 * io_uring, no O_DIRECT-capable directory) are TAP "# SKIP" lines with the reason.
 */
#include "core/shardlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/crc32c.h"
#include "core/frame.h"
#include "io/loop.h"
#include "io/pool.h"
#include "tests/unit/testdir.h"
#include "tests/unit/testbatch.h"
#include "tests/unit/unit.h"

#define KIB (1024u)
#define MIB (1024u * 1024)

/* What this machine offers, found in main() before the cases fork. */
static struct {
	char base[512]; /* a directory where O_DIRECT works, "" if none */
	char skip[256]; /* why every case is skipped, "" if they run */
} machine;

/* ----------------------------------------------------------------------------------- */
/* RecordBatch v2 builder */

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = (v << 8) | p[i];
	return v;
}

/* One batch's recipe: its bytes are a function of these. */
struct recipe {
	uint32_t seed;	    /* value bytes generator */
	uint16_t records;   /* records in the batch */
	uint16_t value_len; /* bytes per value */
	int64_t timestamp;  /* base timestamp (ms) */
};

/* Writes the batch of R into BUF (CAP bytes) and returns its length. */
static uint32_t batch_build(const struct recipe *r, uint8_t *buf, size_t cap)
{
	size_t len = BATCH_HEADER_BYTES;
	uint32_t x = r->seed * 2654435761u + 1;
	for (int i = 0; i < r->records; i++) {
		uint8_t value[64 * KIB];
		for (int k = 0; k < r->value_len; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			value[k] = (uint8_t)x;
		}
		const struct test_record rec = {
		    .timestamp_delta = i, .value = value, .value_len = r->value_len};
		size_t n = test_record_put(buf + len, cap - len, &rec, i);
		ck_assert(n > 0);
		len += n;
	}
	const struct test_batch b = {.base_timestamp = r->timestamp,
				     .max_timestamp = r->timestamp + r->records - 1,
				     .producer_id = -1,
				     .producer_epoch = -1,
				     .base_sequence = -1};
	test_batch_seal(buf, len, &b, r->records);
	ck_assert_int_eq(batch_validate(buf, (uint32_t)len, NULL), BATCH_OK);
	return (uint32_t)len;
}

/* ----------------------------------------------------------------------------------- */
/* the model: what the log must hold */

struct mbatch {
	struct recipe r; /* how to rebuild its bytes */
	int64_t base;	 /* offset the log gave it */
	uint32_t order;	 /* its place in the global append order */
};

struct mpart {
	uint32_t id;
	struct mbatch *b; /* in offset order */
	uint32_t count, cap;
	int64_t start; /* expected log start offset */
	int64_t next;  /* expected next offset */
};

struct model {
	struct mpart *parts;
	uint32_t count;
	uint32_t appended; /* batches appended so far (global order) */
};

static void model_init(struct model *m, uint32_t nparts, uint32_t first_id)
{
	m->parts = calloc(nparts, sizeof(*m->parts));
	ck_assert(m->parts);
	m->count = nparts;
	m->appended = 0;
	for (uint32_t i = 0; i < nparts; i++)
		m->parts[i].id = first_id + i;
}

static void model_free(struct model *m)
{
	for (uint32_t i = 0; i < m->count; i++)
		free(m->parts[i].b);
	free(m->parts);
}

static void model_add(struct mpart *mp, const struct recipe *r, int64_t base, uint32_t order)
{
	if (mp->count == mp->cap) {
		mp->cap = mp->cap ? mp->cap * 2 : 4;
		mp->b = realloc(mp->b, mp->cap * sizeof(*mp->b));
		ck_assert(mp->b);
	}
	mp->b[mp->count++] = (struct mbatch){.r = *r, .base = base, .order = order};
	mp->next = base + r->records;
}

/* ----------------------------------------------------------------------------------- */
/* environment: a directory, a loop, a pool and the log */

struct env {
	char dir[600];		      /* DATA_DIR of this case */
	struct loop loop;	      /* the shard's loop */
	struct pool pool;	      /* registered with loop */
	struct shardlog *log;	      /* open log, or NULL */
	struct shardlog_options opts; /* how it is opened */
	uint32_t *ids;		      /* partitions it owns */
	uint32_t nids;
};

static void env_init(struct env *env, uint64_t segment, uint64_t staging, uint32_t nids)
{
	memset(env, 0, sizeof(*env));
	snprintf(env->dir, sizeof(env->dir), "%s/shardlog-XXXXXX", machine.base);
	ck_assert_msg(mkdtemp(env->dir) != NULL, "mkdtemp %s: %s", env->dir, strerror(errno));
	env->opts.data_dir = env->dir;
	env->opts.shard_id = 7;
	env->opts.segment_bytes = segment;
	env->opts.staging_bytes = staging;
	env->opts.fsync = SHARDLOG_FSYNC_ALWAYS;
	env->nids = nids;
	env->ids = calloc(nids ? nids : 1, sizeof(*env->ids));
	for (uint32_t i = 0; i < nids; i++)
		env->ids[i] = 1 + i;
}

/* Opens the log on a fresh loop and pool (a pool carves its staging ring only once).
 * Returns shardlog_open's result. */
static int env_try_open(struct env *env)
{
	char explain[256];
	int ret = loop_init(&env->loop, 256, explain, sizeof(explain));
	ck_assert_msg(ret == 0, "loop_init: %s", explain);
	uint64_t staging = env->opts.staging_bytes;
	ret = pool_init(&env->pool, staging + 4 * MIB, 64 * KIB, -1, POOL_MODE_NORMAL);
	ck_assert_msg(ret == 0, "pool_init: %s", strerror(-ret));
	ret = pool_register(&env->pool, &env->loop.ring);
	ck_assert_msg(ret == 0, "pool_register: %s", strerror(-ret));
	env->opts.loop = &env->loop;
	env->opts.pool = &env->pool;
	char err[256] = "";
	ret = shardlog_open(&env->log, &env->opts, env->ids, env->nids, err, sizeof(err));
	if (ret < 0) {
		env->log = NULL;
		loop_destroy(&env->loop);
		pool_destroy(&env->pool);
	}
	return ret;
}

static void env_open(struct env *env)
{
	int ret = env_try_open(env);
	ck_assert_msg(ret == 0, "shardlog_open: %s", strerror(-ret));
}

static void env_close(struct env *env)
{
	ck_assert_int_eq(shardlog_close(env->log), 0);
	env->log = NULL;
	loop_destroy(&env->loop);
	pool_destroy(&env->pool);
}

static void env_done(struct env *env)
{
	if (env->log)
		env_close(env);
	test_remove_tree(env->dir);
	free(env->ids);
}

static struct shardlog_stats env_stats(struct env *env)
{
	struct shardlog_stats st;
	shardlog_stats(env->log, &st);
	return st;
}

static void shard_path(const struct env *env, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/shard-007/%s", env->dir, name);
}

/* Appends R to partition MP->id, turning the loop while the log says -EAGAIN. */
static int64_t append_retry(struct env *env, struct model *m, struct mpart *mp,
			    const struct recipe *r, bool durable, shardlog_append_fn done,
			    void *ctx)
{
	static uint8_t buf[128 * KIB];
	uint32_t len = batch_build(r, buf, sizeof(buf));
	for (int tries = 0;; tries++) {
		int64_t base = shardlog_append(env->log, mp->id, buf, len, durable, done, ctx);
		if (base == -EAGAIN && tries < 10000) {
			ck_assert_int_ge(loop_run_once(&env->loop, true), 0);
			continue;
		}
		ck_assert_msg(base >= 0, "append to %u: %s", mp->id, strerror((int)-base));
		ck_assert_int_eq(base, mp->next);
		model_add(mp, r, base, m->appended++);
		return base;
	}
}

static struct recipe recipe_for(uint32_t pid, uint32_t k, uint16_t records, uint16_t vlen)
{
	return (struct recipe){.seed = pid * 7919u + k * 104729u + 1,
			       .records = records,
			       .value_len = vlen,
			       .timestamp = 1700000000000LL + k};
}

/* ----------------------------------------------------------------------------------- */
/* reading and checking */

static void on_read(void *ctx, struct shardlog_read *rd)
{
	*(int *)ctx += 1;
}

/* Reads synchronously: turns the loop until a disk read completes. */
static int read_sync(struct env *env, uint32_t pid, int64_t offset, uint32_t max_bytes,
		     struct shardlog_read *rd)
{
	int fired = 0;
	int ret = shardlog_read(env->log, pid, offset, max_bytes, rd, on_read, &fired);
	if (ret == -EINPROGRESS) {
		while (!fired)
			ck_assert_int_ge(loop_run_once(&env->loop, true), 0);
		ck_assert_int_eq(fired, 1);
		ret = rd->status;
	}
	return ret;
}

/* Concatenates RD's slices into a new buffer. */
static uint8_t *gather(const struct shardlog_read *rd)
{
	uint8_t *out = malloc(rd->bytes ? rd->bytes : 1);
	ck_assert(out);
	uint64_t at = 0;
	for (uint32_t i = 0; i < rd->slice_count; i++) {
		ck_assert(rd->slices[i].len > 0);
		memcpy(out + at, rd->slices[i].data, rd->slices[i].len);
		at += rd->slices[i].len;
	}
	ck_assert_uint_eq(at, rd->bytes);
	return out;
}

/* Checks that the batch at P (LEFT bytes available) is exactly MB's bytes with its
 * baseOffset; returns its length. */
static uint32_t check_batch(const uint8_t *p, uint64_t left, const struct mbatch *mb)
{
	static uint8_t want[128 * KIB];
	uint32_t len = batch_build(&mb->r, want, sizeof(want));
	test_put_be(want, (uint64_t)mb->base, 8);
	ck_assert_uint_ge(left, len);
	ck_assert_msg(memcmp(p, want, len) == 0, "batch at offset %lld differs",
		      (long long)mb->base);
	ck_assert_int_eq(batch_validate(p, len, NULL), BATCH_OK);
	return len;
}

/* Reads all of MP from its start and compares with the model. Returns the number of
 * reads served from the cache. */
static uint32_t verify_partition(struct env *env, const struct mpart *mp, uint32_t max_bytes)
{
	struct shardlog_partition_info info;
	ck_assert_int_eq(shardlog_partition_info(env->log, mp->id, &info), 0);
	ck_assert_int_eq(info.next_offset, mp->next);
	ck_assert_int_eq(info.high_watermark, mp->next);
	ck_assert_int_eq(info.log_start_offset, mp->start);
	static struct shardlog_read rd;
	int64_t offset = mp->start;
	uint32_t k = 0, from_cache = 0;
	while (k < mp->count && mp->b[k].base + mp->b[k].r.records <= mp->start)
		k++;
	while (offset < mp->next) {
		int ret = read_sync(env, mp->id, offset, max_bytes, &rd);
		ck_assert_msg(ret == 0, "read partition %u at %lld: %s", mp->id, (long long)offset,
			      strerror(-ret));
		ck_assert_uint_ge(rd.batch_count, 1);
		from_cache += rd.from_cache;
		uint8_t *all = gather(&rd);
		uint64_t at = 0;
		for (uint32_t b = 0; b < rd.batch_count; b++, k++) {
			ck_assert_uint_lt(k, mp->count);
			at += check_batch(all + at, rd.bytes - at, &mp->b[k]);
		}
		ck_assert_uint_eq(at, rd.bytes);
		free(all);
		ck_assert_int_eq(rd.next_offset, mp->b[k - 1].base + mp->b[k - 1].r.records);
		offset = rd.next_offset;
		shardlog_read_release(env->log, &rd);
	}
	ck_assert_uint_eq(k, mp->count);
	ck_assert_int_eq(read_sync(env, mp->id, offset, max_bytes, &rd), -ENODATA);
	return from_cache;
}

static void verify_all(struct env *env, const struct model *m)
{
	for (uint32_t i = 0; i < m->count; i++)
		verify_partition(env, &m->parts[i], 1 * MIB);
}

/* After recovery from damage: the batches that survived must be a prefix of the
 * append order (the log is one sequence). Cuts the model to it and returns its length;
 * verifies every partition's bytes. */
static uint32_t model_cut_to_log(struct env *env, struct model *m)
{
	uint32_t total = m->appended;
	uint8_t *alive = calloc(total ? total : 1, 1);
	for (uint32_t i = 0; i < m->count; i++) {
		struct mpart *mp = &m->parts[i];
		struct shardlog_partition_info info;
		ck_assert_int_eq(shardlog_partition_info(env->log, mp->id, &info), 0);
		uint32_t keep = 0;
		while (keep < mp->count && mp->b[keep].base < info.next_offset)
			keep++;
		/* whole batches only: the log ends on a batch boundary of this partition */
		ck_assert_int_eq(keep ? mp->b[keep - 1].base + mp->b[keep - 1].r.records
				      : (mp->count ? mp->b[0].base : mp->next),
				 info.next_offset);
		for (uint32_t k = 0; k < keep; k++)
			alive[mp->b[k].order] = 1;
		mp->count = keep;
		mp->next = info.next_offset;
	}
	uint32_t prefix = 0;
	while (prefix < total && alive[prefix])
		prefix++;
	for (uint32_t o = prefix; o < total; o++)
		ck_assert_msg(!alive[o], "batch %u survived after lost batch %u", o, prefix);
	free(alive);
	verify_all(env, m);
	return prefix;
}

/* ----------------------------------------------------------------------------------- */
/* the frames on disk, found the way sluice-logdump would */

struct disk_frame {
	uint64_t pos;			       /* shard-log position */
	uint32_t len;			       /* frame_len */
	uint32_t partition_id;		       /* or FRAME_PAD_PARTITION_ID */
	char seg[SHARDLOG_SEGMENT_NAME_BYTES]; /* its segment file */
	uint64_t seg_start;		       /* that segment's start */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the valid frames of every segment in order into *OUT (malloc'd). */
static uint32_t disk_frames(const struct env *env, struct disk_frame **out)
{
	char dpath[700];
	shard_path(env, dpath, sizeof(dpath), "");
	char cmd[800];
	snprintf(cmd, sizeof(cmd), "ls %s", dpath);
	FILE *ls = popen(cmd, "r");
	ck_assert(ls);
	char *names[256];
	uint32_t n = 0;
	char line[256];
	while (fgets(line, sizeof(line), ls) && n < 256) {
		line[strcspn(line, "\n")] = 0;
		uint64_t start;
		if (shardlog_segment_parse(line, &start))
			names[n++] = strdup(line);
	}
	pclose(ls);
	qsort(names, n, sizeof(names[0]), cmp_str);
	uint32_t count = 0, cap = 1024;
	struct disk_frame *f = malloc(cap * sizeof(*f));
	for (uint32_t i = 0; i < n; i++) {
		char path[900];
		shard_path(env, path, sizeof(path), names[i]);
		FILE *fp = fopen(path, "rb");
		ck_assert(fp);
		fseek(fp, 0, SEEK_END);
		long size = ftell(fp);
		fseek(fp, 0, SEEK_SET);
		uint8_t *data = malloc((size_t)size);
		ck_assert_uint_eq(fread(data, 1, (size_t)size, fp), (size_t)size);
		fclose(fp);
		uint64_t start;
		ck_assert(shardlog_segment_parse(names[i], &start));
		uint64_t off = 0;
		while (off + FRAME_HEADER_BYTES <= (uint64_t)size) {
			struct frame_header h;
			if (frame_check(data + off, (size_t)size - off, &h) != FRAME_OK)
				break;
			if (count == cap) {
				cap *= 2;
				f = realloc(f, cap * sizeof(*f));
			}
			f[count] = (struct disk_frame){.pos = start + off,
						       .len = h.frame_len,
						       .partition_id = h.partition_id,
						       .seg_start = start};
			snprintf(f[count].seg, sizeof(f[count].seg), "%s", names[i]);
			count++;
			off += h.frame_len;
		}
		free(data);
		free(names[i]);
	}
	*out = f;
	return count;
}

static void file_patch(const struct env *env, const char *name, uint64_t off, const void *buf,
		       size_t len)
{
	char path[900];
	shard_path(env, path, sizeof(path), name);
	int fd = open(path, O_WRONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	fsync(fd);
	close(fd);
}

static bool file_exists(const struct env *env, const char *name)
{
	char path[900];
	shard_path(env, path, sizeof(path), name);
	return access(path, F_OK) == 0;
}

/* True when every byte of segment NAME from OFF to its end is zero. */
static bool file_zero_from(const struct env *env, const char *name, uint64_t off)
{
	char path[900];
	shard_path(env, path, sizeof(path), name);
	FILE *fp = fopen(path, "rb");
	ck_assert(fp);
	fseek(fp, (long)off, SEEK_SET);
	int c;
	bool zero = true;
	while (zero && (c = fgetc(fp)) != EOF)
		zero = c == 0;
	fclose(fp);
	return zero;
}

/* ----------------------------------------------------------------------------------- */
/* cases */

/* 10,000 partitions interleaved in one shard log, two rounds, read back byte-identical. */
START_TEST(test_interleaved_10k_partitions)
{
	struct env env;
	env_init(&env, 2 * MIB, 1 * MIB, 10000);
	env_open(&env);
	struct model m;
	model_init(&m, 10000, 1);
	for (uint32_t round = 0; round < 2; round++)
		for (uint32_t i = 0; i < m.count; i++) {
			struct recipe r = recipe_for(m.parts[i].id, round, 1 + (i + round) % 3, 40);
			append_retry(&env, &m, &m.parts[i], &r, false, NULL, NULL);
		}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.appends, 20000);
	ck_assert_uint_eq(st.partitions, 10000);
	ck_assert_uint_ge(st.segments, 2); /* about 3.7 MB of frames in 2 MiB segments */
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Close and reopen: same offsets, same bytes, appends continue where they were. */
START_TEST(test_restart_same_offsets_and_bytes)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 300);
	env_open(&env);
	struct model m;
	model_init(&m, 300, 1);
	for (uint32_t k = 0; k < 12; k++)
		for (uint32_t i = 0; i < m.count; i++) {
			struct recipe r = recipe_for(m.parts[i].id, k, 2, 100);
			append_retry(&env, &m, &m.parts[i], &r, k % 2, NULL, NULL);
		}
	env_close(&env);
	env_open(&env);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.recovery_bytes_dropped, 0);
	ck_assert_uint_ge(st.segments, 2);
	verify_all(&env, &m);
	for (uint32_t i = 0; i < m.count; i += 7) {
		struct recipe r = recipe_for(m.parts[i].id, 99, 1, 10);
		append_retry(&env, &m, &m.parts[i], &r, true, NULL, NULL);
	}
	env_close(&env);
	env_open(&env);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* The same batches read from the staging ring and, after a reopen, from disk. */
START_TEST(test_cache_and_disk_reads_equal)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 3);
	env_open(&env);
	struct model m;
	model_init(&m, 3, 1);
	for (uint32_t k = 0; k < 20; k++)
		for (uint32_t i = 0; i < 3; i++) {
			/* some batches span two pool chunks on disk (64 KiB) */
			struct recipe r = recipe_for(m.parts[i].id, k, (uint16_t)(1 + k % 4),
						     (uint16_t)(k % 5 == 0 ? 20000 : 300));
			append_retry(&env, &m, &m.parts[i], &r, false, NULL, NULL);
		}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	/* the last batches are still in the ring: served from memory */
	static struct shardlog_read rd;
	struct mpart *mp = &m.parts[1];
	ck_assert_int_eq(read_sync(&env, mp->id, mp->b[mp->count - 2].base, 1 * MIB, &rd), 0);
	ck_assert(rd.from_cache);
	ck_assert_uint_eq(rd.batch_count, 2);
	uint8_t *mem = gather(&rd);
	uint64_t mem_len = rd.bytes;
	shardlog_read_release(env.log, &rd);
	uint32_t cached = 0;
	for (uint32_t i = 0; i < 3; i++)
		cached += verify_partition(&env, &m.parts[i], 64 * KIB);
	ck_assert_uint_gt(cached, 0);
	ck_assert_uint_gt(env_stats(&env).cache_misses, 0); /* the oldest ones came from disk */

	env_close(&env);
	env_open(&env);
	ck_assert_int_eq(read_sync(&env, mp->id, mp->b[mp->count - 2].base, 1 * MIB, &rd), 0);
	ck_assert(!rd.from_cache);
	uint8_t *disk = gather(&rd);
	ck_assert_uint_eq(rd.bytes, mem_len);
	ck_assert(memcmp(mem, disk, mem_len) == 0);
	shardlog_read_release(env.log, &rd);
	free(mem);
	free(disk);
	for (uint32_t i = 0; i < 3; i++)
		ck_assert_uint_eq(verify_partition(&env, &m.parts[i], 64 * KIB), 0);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Index edges through the log: before the start, at and after the end, inside a
 * batch, on batch boundaries, the high watermark, max_bytes, unknown partitions. */
START_TEST(test_read_edges)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 2);
	env_open(&env);
	struct model m;
	model_init(&m, 2, 1);
	struct mpart *mp = &m.parts[0];
	static struct shardlog_read rd;
	ck_assert_int_eq(read_sync(&env, 1, 0, 1000, &rd), -ENODATA); /* empty */
	ck_assert_int_eq(read_sync(&env, 1, 1, 1000, &rd), -ERANGE);
	for (uint32_t k = 0; k < 3; k++) {
		struct recipe r = recipe_for(1, k, 3, 50); /* offsets 0-2, 3-5, 6-8 */
		append_retry(&env, &m, mp, &r, false, NULL, NULL);
	}
	/* appended but not written: nothing to read yet, not out of range */
	struct shardlog_partition_info info;
	ck_assert_int_eq(shardlog_partition_info(env.log, 1, &info), 0);
	ck_assert_int_eq(info.next_offset, 9);
	ck_assert_int_eq(info.high_watermark, 0);
	ck_assert_int_eq(read_sync(&env, 1, 0, 1000, &rd), -ENODATA);
	ck_assert_int_eq(read_sync(&env, 1, 9, 1000, &rd), -ENODATA);
	ck_assert_int_eq(read_sync(&env, 1, 10, 1000, &rd), -ERANGE);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_int_eq(shardlog_partition_info(env.log, 1, &info), 0);
	ck_assert_int_eq(info.high_watermark, 9);

	int64_t expect_first[9] = {0, 0, 0, 3, 3, 3, 6, 6, 6};
	for (int64_t off = 0; off < 9; off++) {
		ck_assert_int_eq(read_sync(&env, 1, off, 1, &rd), 0);
		ck_assert_int_eq(rd.first_offset, expect_first[off]);
		ck_assert_uint_eq(rd.batch_count, 1); /* max_bytes 1: still one whole batch */
		ck_assert_int_eq(rd.next_offset, expect_first[off] + 3);
		ck_assert_int_eq(get_be(rd.slices[0].data, 8), expect_first[off]);
		shardlog_read_release(env.log, &rd);
	}
	ck_assert_int_eq(read_sync(&env, 1, 3, 1 * MIB, &rd), 0);
	ck_assert_uint_eq(rd.batch_count, 2);
	ck_assert_int_eq(rd.next_offset, 9);
	shardlog_read_release(env.log, &rd);
	shardlog_read_release(env.log, &rd); /* twice is harmless */
	ck_assert_int_eq(read_sync(&env, 1, 9, 1000, &rd), -ENODATA);
	ck_assert_int_eq(read_sync(&env, 1, 10, 1000, &rd), -ERANGE);
	ck_assert_int_eq(read_sync(&env, 1, -1, 1000, &rd), -ERANGE);
	ck_assert_int_eq(read_sync(&env, 42, 0, 1000, &rd), -ENOENT);
	ck_assert_int_eq(read_sync(&env, 2, 0, 1000, &rd), -ENODATA);

	/* after retention moved the start: below it is out of range */
	ck_assert_int_eq(shardlog_set_retention(env.log, 1, -1, 0), 0);
	ck_assert_int_ge(shardlog_enforce_retention(env.log, 0), 0);
	ck_assert_int_eq(shardlog_partition_info(env.log, 1, &info), 0);
	ck_assert_int_eq(info.log_start_offset, 9);
	ck_assert_int_eq(read_sync(&env, 1, 0, 1000, &rd), -ERANGE);
	ck_assert_int_eq(read_sync(&env, 1, 8, 1000, &rd), -ERANGE);
	ck_assert_int_eq(read_sync(&env, 1, 9, 1000, &rd), -ENODATA);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* ListOffsets by time through the log: the first batch below the high watermark whose
 * max_timestamp reaches the target, raised to the log start offset. */
START_TEST(test_offset_for_timestamp)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 2);
	env_open(&env);
	struct model m;
	model_init(&m, 2, 1);
	int64_t off, ts;
	ck_assert_int_eq(shardlog_offset_for_timestamp(env.log, 1, 0, &off, &ts), -ENODATA);
	ck_assert_int_eq(shardlog_offset_for_timestamp(env.log, 42, 0, &off, &ts), -ENOENT);
	/* batches of 3 records: offsets 0-2 at 1000-1002, 3-5 at 2000-2002, 6-8 at 3000-3002 */
	for (uint32_t k = 0; k < 3; k++) {
		struct recipe r = recipe_for(1, k, 3, 50);
		r.timestamp = 1000 * (k + 1);
		append_retry(&env, &m, &m.parts[0], &r, false, NULL, NULL);
	}
	/* appended, not written: below the high watermark there is nothing */
	ck_assert_int_eq(shardlog_offset_for_timestamp(env.log, 1, 0, &off, &ts), -ENODATA);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	static const struct {
		int64_t target, offset, max_ts;
	} cases[] = {
	    {-5, 0, 1002},   {1000, 0, 1002}, {1002, 0, 1002}, {1003, 3, 2002},
	    {2001, 3, 2002}, {2002, 3, 2002}, {2500, 6, 3002}, {3002, 6, 3002},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		off = ts = -7;
		ck_assert_int_eq(
		    shardlog_offset_for_timestamp(env.log, 1, cases[i].target, &off, &ts), 0);
		ck_assert_int_eq(off, cases[i].offset);
		ck_assert_int_eq(ts, cases[i].max_ts);
	}
	ck_assert_int_eq(shardlog_offset_for_timestamp(env.log, 1, 3003, &off, &ts), -ENODATA);
	ck_assert_int_eq(shardlog_offset_for_timestamp(env.log, 2, 0, &off, &ts), -ENODATA);
	/* retention moved the start past the first batch: it is not found any more */
	ck_assert_int_eq(shardlog_set_retention(env.log, 1, 500, -1), 0);
	ck_assert_int_ge(shardlog_enforce_retention(env.log, 1503), 0); /* drops max 1002 */
	ck_assert_int_eq(shardlog_offset_for_timestamp(env.log, 1, -5, &off, &ts), 0);
	ck_assert_int_eq(off, 3);
	ck_assert_int_eq(ts, 2002);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* The on-advance callback: once per write completion that moved high watermarks, after
 * the append callbacks, with the new data readable from inside it; never without new
 * data; removed with NULL. */
struct advance_probe {
	struct shardlog *log;
	uint32_t calls;
	uint32_t appended_before; /* append callbacks run before the last advance call */
	uint32_t append_calls;	  /* append callbacks run so far */
	int64_t hwm_seen;	  /* partition 1's high watermark in the last call */
	int read_ret;		  /* shardlog_read of the newest batch from inside the call */
};

static void probe_appended(void *ctx, int status, int64_t base)
{
	struct advance_probe *p = ctx;
	ck_assert_int_eq(status, 0);
	p->append_calls++;
}

static void probe_advance(void *ctx, struct shardlog *log)
{
	struct advance_probe *p = ctx;
	ck_assert_ptr_eq(log, p->log);
	p->calls++;
	p->appended_before = p->append_calls;
	struct shardlog_partition_info info;
	ck_assert_int_eq(shardlog_partition_info(log, 1, &info), 0);
	p->hwm_seen = info.high_watermark;
	static struct shardlog_read rd;
	p->read_ret = shardlog_read(log, 1, info.high_watermark - 1, 1, &rd, NULL, NULL);
	if (p->read_ret == 0)
		shardlog_read_release(log, &rd);
}

START_TEST(test_on_advance)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 2);
	env.opts.fsync = SHARDLOG_FSYNC_NEVER;
	env_open(&env);
	struct model m;
	model_init(&m, 2, 1);
	static struct advance_probe probe;
	memset(&probe, 0, sizeof(probe));
	probe.log = env.log;
	shardlog_on_advance(env.log, probe_advance, &probe);
	for (int i = 0; i < 10; i++)
		ck_assert_int_ge(loop_run_once(&env.loop, false), 0);
	ck_assert_uint_eq(probe.calls, 0); /* nothing written: no call */

	for (uint32_t k = 0; k < 20; k++) {
		struct recipe r = recipe_for(1, k, 2, 100);
		append_retry(&env, &m, &m.parts[0], &r, false, probe_appended, &probe);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_uint_ge(probe.calls, 1);
	ck_assert_uint_le(probe.calls, 20); /* one per write, not per batch */
	ck_assert_uint_eq(probe.appended_before, 20);
	ck_assert_int_eq(probe.hwm_seen, 40);
	ck_assert_int_eq(probe.read_ret, 0); /* the new batch is readable from the call */
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.write_ops, probe.calls);

	uint32_t calls = probe.calls;
	for (int i = 0; i < 10; i++)
		ck_assert_int_ge(loop_run_once(&env.loop, false), 0);
	ck_assert_uint_eq(probe.calls, calls); /* no new data: no call */

	shardlog_on_advance(env.log, NULL, NULL);
	struct recipe r = recipe_for(2, 0, 1, 100);
	append_retry(&env, &m, &m.parts[1], &r, false, NULL, NULL);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_uint_eq(probe.calls, calls); /* removed */
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Bad input and limits on append. */
START_TEST(test_append_rejects)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 1);
	env_open(&env);
	static uint8_t buf[200 * KIB];
	struct recipe r = recipe_for(1, 0, 2, 30);
	uint32_t len = batch_build(&r, buf, sizeof(buf));
	ck_assert_int_eq(shardlog_append(env.log, 9, buf, len, false, NULL, NULL), -ENOENT);
	ck_assert_int_eq(
	    shardlog_append(env.log, 1, buf, BATCH_HEADER_BYTES - 1, false, NULL, NULL), -EINVAL);
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len - 1, false, NULL, NULL), -EINVAL);
	buf[16] = 1; /* magic */
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), -EINVAL);
	buf[16] = 2;
	test_put_be(buf + 57, 0, 4); /* recordCount 0 */
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), -EINVAL);
	len = batch_build(&r, buf, sizeof(buf));
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), 0);
	/* larger than a 256 KiB ring takes (staging / 2 - 4 KiB) */
	struct recipe big = recipe_for(1, 1, 3, 50000);
	len = batch_build(&big, buf, sizeof(buf));
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), -EMSGSIZE);
	ck_assert_int_eq(shardlog_partition_add(env.log, 1), -EEXIST);
	ck_assert_int_eq(shardlog_partition_add(env.log, FRAME_PAD_PARTITION_ID), -EINVAL);
	ck_assert_int_eq(shardlog_set_retention(env.log, 1, -2, -1), -EINVAL);
	ck_assert_int_eq(shardlog_set_retention(env.log, 5, 1, 1), -ENOENT);
	env_done(&env);
}
END_TEST

/* 100,000 partitions registered and found; the capacity is enforced. */
START_TEST(test_partition_registry)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 0);
	env.opts.partitions_max = 100000;
	env_open(&env);
	for (uint32_t i = 0; i < 100000; i++)
		ck_assert_int_eq(shardlog_partition_add(env.log, i * 2654435761u % 4000000000u + 1),
				 0);
	ck_assert_int_eq(shardlog_partition_add(env.log, 4000000001u), -ENOSPC);
	for (uint32_t i = 0; i < 100000; i++)
		ck_assert(shardlog_partition_has(env.log, i * 2654435761u % 4000000000u + 1));
	ck_assert(!shardlog_partition_has(env.log, 4000000001u));
	ck_assert_int_eq(shardlog_partition_add(env.log, 1), -EEXIST);
	ck_assert_uint_eq(env_stats(&env).partitions, 100000);
	static uint8_t buf[4 * KIB];
	struct recipe r = recipe_for(1, 0, 1, 10);
	uint32_t len = batch_build(&r, buf, sizeof(buf));
	ck_assert_int_eq(
	    shardlog_append(env.log, 4000000000u % 4000000000u + 1, buf, len, false, NULL, NULL),
	    0);
	env_done(&env);
}
END_TEST

/* Appends split over several segments with the shard-log naming; pads counted. */
START_TEST(test_segments_roll_over)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 4);
	env_open(&env);
	struct model m;
	model_init(&m, 4, 1);
	for (uint32_t k = 0; k < 200; k++) {
		struct recipe r =
		    recipe_for(m.parts[k % 4].id, k, 3, (uint16_t)(1000 + k * 37 % 9000));
		append_retry(&env, &m, &m.parts[k % 4], &r, false, NULL, NULL);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.segments, 3);
	ck_assert_uint_ge(st.pad_frames, 1);
	ck_assert_uint_ge(st.checkpoints, 1); /* at each roll-over */
	/* every roll after the first segment took a segment prepared ahead */
	ck_assert_uint_eq(st.segments_prepared, st.segments_created - 1);
	ck_assert_uint_eq(st.index_files_written, st.segments - 1);
	ck_assert(file_exists(&env, "00000000000000000000.log"));
	ck_assert(file_exists(&env, "00000000000001048576.log"));
	ck_assert(file_exists(&env, "00000000000002097152.log"));
	ck_assert(file_exists(&env, SHARDLOG_CHECKPOINT_NAME));
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	ck_assert_str_eq(shardlog_segment_name(name, 1073741824), "00000000001073741824.log");
	uint64_t start;
	ck_assert(shardlog_segment_parse("00000000001073741824.log", &start));
	ck_assert_uint_eq(start, 1073741824);
	ck_assert(!shardlog_segment_parse("0000000001073741824.log", &start));
	ck_assert(!shardlog_segment_parse("00000000001073741824.lo", &start));
	/* frames never straddle a segment end: every segment parses to its end or zeros */
	struct disk_frame *f;
	uint32_t n = disk_frames(&env, &f);
	uint32_t data_frames = 0;
	for (uint32_t i = 0; i < n; i++) {
		ck_assert_uint_le(f[i].pos + f[i].len, f[i].seg_start + 1 * MIB);
		ck_assert_uint_eq(f[i].pos / (256 * KIB), (f[i].pos + f[i].len - 1) / (256 * KIB));
		data_frames += f[i].partition_id != FRAME_PAD_PARTITION_ID;
	}
	ck_assert_uint_eq(data_frames, 200);
	free(f);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* segment index files */

/* Reads file NAME of the shard directory into a malloc'd buffer; *LEN its size. */
static uint8_t *file_read(const struct env *env, const char *name, size_t *len)
{
	char path[900];
	shard_path(env, path, sizeof(path), name);
	FILE *fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "open %s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	long size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *data = malloc((size_t)size + 1);
	ck_assert_uint_eq(fread(data, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	*len = (size_t)size;
	return data;
}

static void file_write(const struct env *env, const char *name, const uint8_t *buf, size_t len)
{
	char path[900];
	shard_path(env, path, sizeof(path), name);
	FILE *fp = fopen(path, "wb");
	ck_assert(fp);
	ck_assert_uint_eq(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

/* 4 partitions, 330 batches of about 10 KB in 1 MiB segments: 4 segments, 3 closed. */
static void index_setup(struct env *env, struct model *m)
{
	env_init(env, 1 * MIB, 256 * KIB, 4);
	env_open(env);
	model_init(m, 4, 1);
	for (uint32_t k = 0; k < 330; k++) {
		struct recipe r =
		    recipe_for(m->parts[k % 4].id, k, 2, (uint16_t)(4000 + (k * 97) % 3000));
		append_retry(env, m, &m->parts[k % 4], &r, k % 7 == 0, NULL, NULL);
	}
	ck_assert_int_eq(shardlog_drain(env->log), 0);
}

/* Checks that the index file of every closed segment lists exactly its data frames,
 * and that the last (active) segment has none. Returns the frames (padding included)
 * of the last segment. */
static uint64_t index_files_match_frames(const struct env *env)
{
	struct disk_frame *f;
	uint32_t n = disk_frames(env, &f);
	ck_assert_uint_gt(n, 0);
	uint64_t last_start = f[n - 1].seg_start, last_frames = 0;
	uint32_t i = 0;
	while (i < n) {
		uint64_t seg = f[i].seg_start;
		char name[SHARDLOG_SEGMENT_NAME_BYTES];
		shardlog_index_name(name, seg);
		if (seg == last_start) {
			ck_assert_msg(!file_exists(env, name), "%s exists", name);
			for (; i < n; i++)
				last_frames++;
			break;
		}
		size_t len;
		uint8_t *buf = file_read(env, name, &len);
		uint32_t count = 0;
		const char *why = "";
		ck_assert_msg(shardlog_index_check(buf, len, 7, seg, 1 * MIB, &count, &why) == 0,
			      "%s: %s", name, why);
		uint32_t k = 0;
		for (; i < n && f[i].seg_start == seg; i++) {
			if (f[i].partition_id == FRAME_PAD_PARTITION_ID)
				continue;
			ck_assert_uint_lt(k, count);
			struct shardlog_index_entry e;
			shardlog_index_entry_get(buf, k++, &e);
			ck_assert_uint_eq(e.position, f[i].pos);
			ck_assert_uint_eq(e.length, f[i].len);
			ck_assert_uint_eq(e.partition_id, f[i].partition_id);
		}
		ck_assert_uint_eq(k, count);
		free(buf);
	}
	free(f);
	return last_frames;
}

/* A spare segment a killed process prepared ahead lies after the end of the log: the
 * next open deletes it like any segment there; appending from there on across three
 * more segment ends (no fdatasync but the rolls', fsync never) keeps every batch, and a
 * clean close removes an untaken spare. */
START_TEST(test_leftover_spare_after_kill)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 2);
	env.opts.fsync = SHARDLOG_FSYNC_NEVER;
	struct model m;
	model_init(&m, 2, 1);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Past half of the first segment: the second is prepared; then "killed". */
		env_open(&env);
		for (uint32_t k = 0; k < 70; k++) {
			struct recipe r = recipe_for(m.parts[k % 2].id, k, 2, 5000);
			append_retry(&env, &m, &m.parts[k % 2], &r, false, NULL, NULL);
		}
		if (shardlog_drain(env.log) != 0 || env_stats(&env).segments != 1 ||
		    !file_exists(&env, "00000000000001048576.log"))
			_exit(2);
		_exit(0);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	/* The parent's model gets the same batches (recipes are deterministic). */
	env_open(&env);
	ck_assert_uint_eq(env_stats(&env).segments, 1);
	ck_assert(!file_exists(&env, "00000000000001048576.log"));
	for (uint32_t k = 0; k < 70; k++) {
		struct recipe r = recipe_for(m.parts[k % 2].id, k, 2, 5000);
		model_add(&m.parts[k % 2], &r, (int64_t)(k / 2) * 2, k);
	}
	m.appended = 70;
	for (uint32_t k = 70; k < 400; k++) {
		struct recipe r = recipe_for(m.parts[k % 2].id, k, 2, 5000);
		append_retry(&env, &m, &m.parts[k % 2], &r, false, NULL, NULL);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.segments, 4);
	verify_all(&env, &m);
	uint32_t segments = st.segments;
	env_close(&env);
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	ck_assert(!file_exists(&env, shardlog_segment_name(name, (uint64_t)segments * MIB)));
	env_open(&env);
	ck_assert_uint_eq(env_stats(&env).segments, segments);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* At each roll the full segment's index file is written; the checkpoint holds only
 * per-partition state; reopening reads the index files and scans only the active
 * segment. */
START_TEST(test_index_files_written_and_loaded)
{
	struct env env;
	struct model m;
	index_setup(&env, &m);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.segments, 4);
	ck_assert_uint_eq(st.index_files_written, st.segments - 1);
	uint32_t segments = st.segments;
	uint64_t active_frames = index_files_match_frames(&env);
	size_t len;
	uint8_t *ck = file_read(&env, SHARDLOG_CHECKPOINT_NAME, &len);
	ck_assert_uint_eq(len, 40 + 24 * 4); /* O(partitions), whatever the log's length */
	free(ck);
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	ck_assert_str_eq(shardlog_index_name(name, 1048576), "00000000000001048576.index");
	uint64_t start = 0;
	ck_assert(shardlog_index_parse("00000000000001048576.index", &start));
	ck_assert_uint_eq(start, 1048576);
	ck_assert(!shardlog_index_parse("00000000000001048576.log", &start));
	ck_assert(!shardlog_index_parse("0000000000001048576.index", &start));

	env_close(&env);
	env_open(&env);
	st = env_stats(&env);
	ck_assert_uint_eq(st.segments, segments);
	ck_assert_uint_eq(st.index_files_loaded, segments - 1);
	ck_assert_uint_eq(st.index_files_rebuilt, 0);
	ck_assert_uint_eq(st.recovery_frames, active_frames); /* closed segments not scanned */
	verify_all(&env, &m);
	/* offsets continue after the restart, and reads reach the oldest batches */
	for (uint32_t k = 0; k < 8; k++) {
		struct recipe r = recipe_for(m.parts[k % 4].id, 5000 + k, 1, 100);
		append_retry(&env, &m, &m.parts[k % 4], &r, true, NULL, NULL);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* A deleted index file is rebuilt from its segment's frames (and rewritten). */
START_TEST(test_index_file_deleted_rebuilt)
{
	struct env env;
	struct model m;
	index_setup(&env, &m);
	uint32_t segments = env_stats(&env).segments;
	env_close(&env);
	char path[900];
	shard_path(&env, path, sizeof(path), "00000000000001048576.index");
	ck_assert_int_eq(unlink(path), 0);
	env_open(&env);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.index_files_rebuilt, 1);
	ck_assert_uint_eq(st.index_files_loaded, segments - 2);
	ck_assert(file_exists(&env, "00000000000001048576.index"));
	verify_all(&env, &m);
	index_files_match_frames(&env);
	env_close(&env);
	env_open(&env);
	st = env_stats(&env);
	ck_assert_uint_eq(st.index_files_rebuilt, 0);
	ck_assert_uint_eq(st.index_files_loaded, segments - 1);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* A corrupt (bad CRC) or truncated index file is detected and rebuilt; one with a valid
 * CRC whose entries miss a batch makes recovery fall back to a full scan. No case fails
 * the open or loses data. */
START_TEST(test_index_file_corrupt_rebuilt)
{
	struct env env;
	struct model m;
	index_setup(&env, &m);
	uint32_t segments = env_stats(&env).segments;
	env_close(&env);
	env_open(&env);
	uint64_t scanned_with = env_stats(&env).recovery_frames;
	env_close(&env);

	uint8_t junk[4] = {0xde, 0xad, 0xbe, 0xef};
	file_patch(&env, "00000000000000000000.index", 100, junk, sizeof(junk));
	size_t len;
	uint8_t *buf = file_read(&env, "00000000000001048576.index", &len);
	file_write(&env, "00000000000001048576.index", buf, len - 7);
	free(buf);
	env_open(&env);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.index_files_rebuilt, 2);
	ck_assert_uint_eq(st.index_files_loaded, segments - 3);
	ck_assert_uint_eq(st.recovery_frames, scanned_with);
	verify_all(&env, &m);
	index_files_match_frames(&env);
	env_close(&env);

	/* sound file, wrong content: the last entry dropped, count and CRC fixed */
	buf = file_read(&env, "00000000000001048576.index", &len);
	uint32_t count = 0;
	const char *why = "";
	ck_assert_int_eq(shardlog_index_check(buf, len, 7, 1 * MIB, 1 * MIB, &count, &why), 0);
	ck_assert_uint_gt(count, 1);
	len -= SHARDLOG_INDEX_ENTRY_BYTES;
	count--;
	memcpy(buf + 32, &count, 4); /* little-endian host (x86-64) */
	uint32_t crc = crc32c(0, buf + 12, len - 12);
	memcpy(buf + 8, &crc, 4);
	ck_assert_int_eq(shardlog_index_check(buf, len, 7, 1 * MIB, 1 * MIB, &count, &why), 0);
	file_write(&env, "00000000000001048576.index", buf, len);
	free(buf);
	env_open(&env);
	st = env_stats(&env);
	ck_assert_uint_gt(st.recovery_frames, scanned_with); /* full scan */
	ck_assert_uint_eq(st.recovery_bytes_dropped, 0);
	verify_all(&env, &m);
	index_files_match_frames(&env); /* the full scan rewrote them */
	model_free(&m);
	env_done(&env);
}
END_TEST

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* little-endian host (x86-64) */
}

static void put_le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* A data dir of an older build: a version 1 checkpoint (every entry inside it) and no
 * index files. It opens without scanning the closed segments; the index files are
 * rebuilt once, at the open after the first version 2 checkpoint. */
START_TEST(test_checkpoint_v1_still_read)
{
	struct env env;
	struct model m;
	index_setup(&env, &m);
	uint32_t segments = env_stats(&env).segments;
	env_close(&env);
	env_open(&env);
	uint64_t scanned_with = env_stats(&env).recovery_frames;
	env_close(&env);

	/* the entries of the closed segments, from their index files, which then go */
	struct shardlog_index_entry *all = malloc(4096 * sizeof(*all));
	uint32_t total = 0;
	uint64_t c = 0;
	for (uint32_t i = 0; i + 1 < segments; i++) {
		char name[SHARDLOG_SEGMENT_NAME_BYTES];
		shardlog_index_name(name, (uint64_t)i * MIB);
		size_t len;
		uint8_t *buf = file_read(&env, name, &len);
		uint32_t count = 0;
		const char *why = "";
		ck_assert_int_eq(
		    shardlog_index_check(buf, len, 7, (uint64_t)i * MIB, MIB, &count, &why), 0);
		for (uint32_t k = 0; k < count && total < 4096; k++)
			shardlog_index_entry_get(buf, k, &all[total++]);
		free(buf);
		char path[900];
		shard_path(&env, path, sizeof(path), name);
		ck_assert_int_eq(unlink(path), 0);
		c = (uint64_t)(i + 1) * MIB;
	}
	size_t bytes = 40 + 4 * 24 + (size_t)total * 32;
	uint8_t *ck = calloc(1, bytes), *p = ck + 40;
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t id = m.parts[i].id, n = 0;
		int64_t next = 0;
		for (uint32_t k = 0; k < total; k++)
			if (all[k].partition_id == id) {
				n++;
				next = all[k].base_offset + all[k].last_offset_delta + 1;
			}
		put_le32(p, id);
		put_le32(p + 4, n);
		put_le64(p + 8, 0);
		put_le64(p + 16, (uint64_t)next);
		p += 24;
		for (uint32_t k = 0; k < total; k++) {
			if (all[k].partition_id != id)
				continue;
			put_le64(p, (uint64_t)all[k].base_offset);
			put_le64(p + 8, all[k].position);
			put_le32(p + 16, all[k].length);
			put_le32(p + 20, (uint32_t)all[k].last_offset_delta);
			put_le64(p + 24, (uint64_t)all[k].max_timestamp);
			p += 32;
		}
	}
	ck_assert_uint_eq((size_t)(p - ck), bytes);
	put_le32(ck, SHARDLOG_CHECKPOINT_MAGIC);
	put_le32(ck + 4, SHARDLOG_CHECKPOINT_VERSION_V1);
	put_le32(ck + 12, 7);
	put_le64(ck + 16, c);
	put_le32(ck + 24, 4);
	put_le32(ck + 28, 0);
	put_le64(ck + 32, bytes);
	put_le32(ck + 8, crc32c(0, ck + 12, bytes - 12));
	file_write(&env, SHARDLOG_CHECKPOINT_NAME, ck, bytes);
	free(ck);
	free(all);

	env_open(&env);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.recovery_frames, scanned_with); /* the v1 checkpoint was used */
	ck_assert_uint_eq(st.index_files_loaded, 0);
	ck_assert_uint_eq(st.index_files_rebuilt, 0);
	verify_all(&env, &m);
	env_close(&env); /* writes a version 2 checkpoint */
	env_open(&env);
	st = env_stats(&env);
	ck_assert_uint_eq(st.index_files_rebuilt, segments - 1);
	ck_assert_uint_eq(st.recovery_frames, scanned_with);
	verify_all(&env, &m);
	index_files_match_frames(&env);
	env_close(&env);
	env_open(&env);
	ck_assert_uint_eq(env_stats(&env).index_files_loaded, segments - 1);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Writes the standard data set for the damage cases: 8 partitions, 120 batches, in
 * 1 MiB segments (so a checkpoint covers the first ones), then closes. */
static void damage_setup(struct env *env, struct model *m)
{
	env_init(env, 1 * MIB, 256 * KIB, 8);
	env_open(env);
	model_init(m, 8, 1);
	for (uint32_t k = 0; k < 120; k++) {
		struct recipe r = recipe_for(m->parts[k % 8].id, k, (uint16_t)(1 + k % 3),
					     (uint16_t)(3000 + (k * 131) % 7000));
		append_retry(env, m, &m->parts[k % 8], &r, true, NULL, NULL);
	}
	env_close(env);
}

/* After a damaged reopen: a consistent prefix, appends continue at the right offsets,
 * and after another restart the same holds (the dropped frames never return). */
static void damage_check(struct env *env, struct model *m, uint32_t expect_prefix_max)
{
	uint32_t prefix = model_cut_to_log(env, m);
	ck_assert_uint_le(prefix, expect_prefix_max);
	ck_assert_uint_gt(prefix, 0);
	m->appended = prefix;
	/* 120 KB: enough to run past the end of a truncated (shortened) segment */
	for (uint32_t k = 0; k < 40; k++) {
		struct recipe r = recipe_for(m->parts[k % 8].id, 1000 + k, 2, 1500);
		append_retry(env, m, &m->parts[k % 8], &r, true, NULL, NULL);
	}
	env_close(env);
	env_open(env);
	ck_assert_uint_eq(env_stats(env).recovery_bytes_dropped, 0);
	verify_all(env, m);
	/* nothing but zeros after the end of the log in its segment */
	struct shardlog_stats st = env_stats(env);
	struct disk_frame *f;
	uint32_t n = disk_frames(env, &f);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(f[n - 1].pos + f[n - 1].len, st.tail_position);
	ck_assert(file_zero_from(env, f[n - 1].seg, st.tail_position - f[n - 1].seg_start));
	free(f);
}

START_TEST(test_damage_truncated_segment)
{
	struct env env;
	struct model m;
	damage_setup(&env, &m);
	struct disk_frame *f;
	uint32_t n = disk_frames(&env, &f);
	struct disk_frame last = f[n - 1];
	free(f);
	/* cut the last segment in the middle of its last frame (block-aligned size) */
	char path[900];
	shard_path(&env, path, sizeof(path), last.seg);
	uint64_t cut = (last.pos + last.len / 2 - last.seg_start) / 4096 * 4096;
	ck_assert(cut > last.pos - last.seg_start);
	ck_assert_int_eq(truncate(path, (off_t)cut), 0);
	env_open(&env);
	ck_assert_uint_gt(env_stats(&env).recovery_bytes_dropped, 0);
	uint32_t segs = env_stats(&env).segments;
	damage_check(&env, &m, m.appended - 1);
	/* the short segment was filled up to its end and a new one followed it */
	ck_assert_uint_gt(env_stats(&env).segments, segs);
	model_free(&m);
	env_done(&env);
}
END_TEST

START_TEST(test_damage_zeroed_last_block)
{
	struct env env;
	struct model m;
	damage_setup(&env, &m);
	struct disk_frame *f;
	uint32_t n = disk_frames(&env, &f);
	struct disk_frame last = f[n - 1];
	free(f);
	static uint8_t zeros[4096];
	uint64_t blk = (last.pos - last.seg_start) / 4096 * 4096;
	file_patch(&env, last.seg, blk, zeros, sizeof(zeros));
	env_open(&env);
	damage_check(&env, &m, m.appended - 1);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* A torn write: garbage instead of the end of the last frame and after it. */
START_TEST(test_damage_torn_write)
{
	struct env env;
	struct model m;
	damage_setup(&env, &m);
	struct disk_frame *f;
	uint32_t n = disk_frames(&env, &f);
	struct disk_frame last = f[n - 1];
	free(f);
	static uint8_t junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	file_patch(&env, last.seg, last.pos - last.seg_start + last.len / 2, junk, sizeof(junk));
	env_open(&env);
	ck_assert_uint_gt(env_stats(&env).recovery_bytes_dropped, 0);
	damage_check(&env, &m, m.appended - 1);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* A flipped bit in a frame in the middle of the last segment: it and everything after
 * it are dropped (they could no longer be trusted to follow it), and zeroed on disk. */
START_TEST(test_damage_bit_flip_middle)
{
	struct env env;
	struct model m;
	damage_setup(&env, &m);
	struct disk_frame *f;
	uint32_t n = disk_frames(&env, &f);
	uint32_t first_in_last = n - 1;
	while (first_in_last > 0 && f[first_in_last - 1].seg_start == f[n - 1].seg_start)
		first_in_last--;
	uint32_t victim = first_in_last + (n - first_in_last) / 2;
	while (f[victim].partition_id == FRAME_PAD_PARTITION_ID)
		victim++;
	ck_assert_uint_lt(victim, n - 1);
	struct disk_frame v = f[victim];
	uint32_t data_before = 0;
	for (uint32_t i = 0; i < victim; i++)
		data_before += f[i].partition_id != FRAME_PAD_PARTITION_ID;
	free(f);
	char path[900];
	shard_path(&env, path, sizeof(path), v.seg);
	int fd = open(path, O_RDWR);
	ck_assert(fd >= 0);
	uint8_t byte;
	uint64_t off = v.pos - v.seg_start + v.len - 3;
	ck_assert_int_eq(pread(fd, &byte, 1, (off_t)off), 1);
	byte ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &byte, 1, (off_t)off), 1);
	close(fd);
	env_open(&env);
	ck_assert_uint_gt(env_stats(&env).recovery_bytes_dropped, v.len);
	uint32_t prefix = model_cut_to_log(&env, &m);
	ck_assert_uint_eq(prefix, data_before);
	damage_check(&env, &m, data_before);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Without the checkpoint the whole log is scanned: nothing is lost. */
START_TEST(test_damage_checkpoint_missing)
{
	struct env env;
	struct model m;
	damage_setup(&env, &m);
	char path[900];
	shard_path(&env, path, sizeof(path), SHARDLOG_CHECKPOINT_NAME);
	ck_assert_int_eq(unlink(path), 0);
	env_open(&env);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.segments, 2);
	ck_assert_uint_eq(st.recovery_bytes_dropped, 0);
	ck_assert_uint_eq(model_cut_to_log(&env, &m), m.appended);
	damage_check(&env, &m, m.appended);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* A corrupt checkpoint is ignored (logged) and the log scanned from the start. */
START_TEST(test_damage_checkpoint_corrupt)
{
	struct env env;
	struct model m;
	damage_setup(&env, &m);
	/* the checkpoint covers the full segments: a scan from it reads only the last one */
	env_open(&env);
	uint64_t scanned_with = env_stats(&env).recovery_frames;
	env_close(&env);
	uint8_t junk[4] = {0xde, 0xad, 0xbe, 0xef};
	file_patch(&env, SHARDLOG_CHECKPOINT_NAME, 60, junk, sizeof(junk));
	env_open(&env);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_gt(st.recovery_frames, scanned_with);
	ck_assert_uint_eq(st.recovery_bytes_dropped, 0);
	ck_assert_uint_eq(model_cut_to_log(&env, &m), m.appended);
	damage_check(&env, &m, m.appended);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Reopening with another ring and segment size keeps the data and the offsets; new
 * segments take the new size. */
START_TEST(test_restart_other_sizes)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 5);
	env_open(&env);
	struct model m;
	model_init(&m, 5, 1);
	uint64_t sizes[][2] = {
	    {1 * MIB, 256 * KIB}, {2 * MIB, 512 * KIB}, {1 * MIB, 1 * MIB}, {4 * MIB, 256 * KIB}};
	for (uint32_t run = 0; run < 4; run++) {
		if (run > 0) {
			env.opts.segment_bytes = sizes[run][0];
			env.opts.staging_bytes = sizes[run][1];
			env_open(&env);
			ck_assert_uint_eq(env_stats(&env).recovery_bytes_dropped, 0);
			verify_all(&env, &m);
		}
		for (uint32_t k = 0; k < 150; k++) {
			struct recipe r =
			    recipe_for(m.parts[k % 5].id, run * 1000 + k, (uint16_t)(1 + k % 4),
				       (uint16_t)(200 + k * 97 % 5000));
			append_retry(&env, &m, &m.parts[k % 5], &r, k % 3 == 0, NULL, NULL);
		}
		ck_assert_int_eq(shardlog_drain(env.log), 0);
		verify_all(&env, &m);
		env_close(&env);
	}
	env_open(&env);
	verify_all(&env, &m);
	ck_assert_uint_ge(env_stats(&env).segments, 3);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Frames of a partition the log is no longer told about (a deleted topic) are skipped. */
START_TEST(test_unknown_partition_skipped)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 3);
	env_open(&env);
	struct model m;
	model_init(&m, 3, 1);
	for (uint32_t k = 0; k < 30; k++) {
		struct recipe r = recipe_for(m.parts[k % 3].id, k, 1, 100);
		append_retry(&env, &m, &m.parts[k % 3], &r, false, NULL, NULL);
	}
	env_close(&env);
	env.ids[1] = 3;
	env.nids = 2; /* partitions 1 and 3 */
	env_open(&env);
	ck_assert_uint_eq(env_stats(&env).recovery_skipped, 10);
	ck_assert(!shardlog_partition_has(env.log, 2));
	verify_partition(&env, &m.parts[0], 1 * MIB);
	verify_partition(&env, &m.parts[2], 1 * MIB);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* Retention by time and by bytes; whole old segments deleted; the start survives a
 * restart and offsets are never reused. */
START_TEST(test_retention)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 3);
	env_open(&env);
	struct model m;
	model_init(&m, 3, 1);
	struct mpart *old = &m.parts[0], *sized = &m.parts[1], *fresh = &m.parts[2];
	int64_t now = 1700000000000LL + 3600 * 1000;
	/* 3 MB of old batches of partition 1 fill the first segments */
	for (uint32_t k = 0; k < 300; k++) {
		struct recipe r = recipe_for(old->id, k, 1, 10000);
		r.timestamp = 1000 + k;
		append_retry(&env, &m, old, &r, false, NULL, NULL);
	}
	for (uint32_t k = 0; k < 40; k++) {
		struct recipe r = recipe_for(sized->id, k, 2, 1000);
		r.timestamp = now;
		append_retry(&env, &m, sized, &r, false, NULL, NULL);
		r = recipe_for(fresh->id, k, 1, 100);
		r.timestamp = now - 1000;
		append_retry(&env, &m, fresh, &r, false, NULL, NULL);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	uint32_t segs_before = env_stats(&env).segments;
	ck_assert_uint_ge(segs_before, 3);
	ck_assert_int_eq(shardlog_enforce_retention(env.log, now), 0); /* nothing set yet */
	ck_assert(file_exists(&env, "00000000000000000000.index"));    /* written at the roll */

	ck_assert_int_eq(shardlog_set_retention(env.log, old->id, 60000, -1), 0);
	ck_assert_int_eq(shardlog_set_retention(env.log, sized->id, -1, 20000), 0);
	ck_assert_int_eq(shardlog_set_retention(env.log, fresh->id, 60000, -1), 0);
	int deleted = shardlog_enforce_retention(env.log, now);
	ck_assert_int_ge(deleted, 2);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.segments, segs_before - (uint32_t)deleted);
	ck_assert_uint_eq(st.segments_deleted, (uint64_t)deleted);
	ck_assert(!file_exists(&env, "00000000000000000000.log"));
	ck_assert(!file_exists(&env, "00000000000000000000.index")); /* with its segment */
	ck_assert(!file_exists(&env, "00000000000001048576.index"));

	struct shardlog_partition_info info;
	static struct shardlog_read rd;
	ck_assert_int_eq(shardlog_partition_info(env.log, old->id, &info), 0);
	ck_assert_int_eq(info.log_start_offset, 300);
	ck_assert_int_eq(info.next_offset, 300);
	ck_assert_uint_eq(info.batches, 0);
	ck_assert_int_eq(read_sync(&env, old->id, 0, 1000, &rd), -ERANGE);
	ck_assert_int_eq(read_sync(&env, old->id, 299, 1000, &rd), -ERANGE);
	ck_assert_int_eq(read_sync(&env, old->id, 300, 1000, &rd), -ENODATA);
	old->start = 300;
	old->count = 0;

	ck_assert_int_eq(shardlog_partition_info(env.log, sized->id, &info), 0);
	ck_assert_uint_le(info.bytes, 20000);
	ck_assert_uint_gt(info.bytes, 10000);
	ck_assert_int_gt(info.log_start_offset, 0);
	ck_assert_int_eq(read_sync(&env, sized->id, info.log_start_offset - 1, 1000, &rd), -ERANGE);
	uint32_t drop = 0;
	while (sized->b[drop].base < info.log_start_offset)
		drop++;
	memmove(sized->b, sized->b + drop, (sized->count - drop) * sizeof(sized->b[0]));
	sized->count -= drop;
	sized->start = info.log_start_offset;
	verify_all(&env, &m); /* fresh is untouched */

	/* after a restart: the starts stay, offsets continue (never reused) */
	env_close(&env);
	env_open(&env);
	verify_all(&env, &m);
	struct recipe r = recipe_for(old->id, 1000, 1, 10);
	ck_assert_int_eq(append_retry(&env, &m, old, &r, true, NULL, NULL), 300);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	verify_all(&env, &m);
	model_free(&m);
	env_done(&env);
}
END_TEST

struct order_log {
	int64_t bases[4096]; /* base offsets in callback order */
	int status[4096];
	uint32_t n;
	struct shardlog *log;
	bool synced_ok;	     /* every durable callback saw its data synced */
	uint64_t ends[4096]; /* per base offset: the tail position right after its append */
};

static void on_appended(void *ctx, int status, int64_t base)
{
	struct order_log *o = ctx;
	ck_assert_uint_lt(o->n, 4096);
	o->status[o->n] = status;
	o->bases[o->n++] = base;
}

/* Many appends in one loop turn become a few writes: group commit. */
START_TEST(test_group_commit)
{
	struct env env;
	env_init(&env, 4 * MIB, 1 * MIB, 1);
	env.opts.fsync = SHARDLOG_FSYNC_NEVER;
	env_open(&env);
	static struct order_log o;
	static uint8_t buf[4 * KIB];
	struct recipe r = recipe_for(1, 0, 1, 100);
	uint32_t len = batch_build(&r, buf, sizeof(buf));
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 1000; i++)
			ck_assert_int_ge(
			    shardlog_append(env.log, 1, buf, len, true, on_appended, &o), 0);
		ck_assert_int_ge(loop_run_once(&env.loop, false), 0);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_eq(st.appends, 4000);
	ck_assert_uint_eq(o.n, 4000);
	ck_assert_uint_le(st.write_ops, 40); /* 4 turns: one or a few writes each */
	ck_assert_uint_gt(st.write_bytes_max, 100 * KIB);
	ck_assert_uint_eq(st.fsyncs, 0); /* fsync never: durable released at write */
	for (uint32_t i = 0; i < o.n; i++) {
		ck_assert_int_eq(o.status[i], 0);
		ck_assert_int_eq(o.bases[i], i);
	}
	env_done(&env);
}
END_TEST

/* Durable and plain waiters are released in append order, durable ones once a sync
 * covered their frame (a later write may already be written but not yet synced: the
 * next write does not wait for the previous one's sync). */
static void on_durable(void *ctx, int status, int64_t base)
{
	struct order_log *o = ctx;
	struct shardlog_stats st;
	shardlog_stats(o->log, &st);
	if (base % 2 == 0 && (st.synced_position < o->ends[base] || o->ends[base] == 0))
		o->synced_ok = false;
	on_appended(ctx, status, base);
}

START_TEST(test_durable_waiters_in_order)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 1);
	env_open(&env);
	static struct order_log o;
	o.log = env.log;
	o.synced_ok = true;
	static uint8_t buf[8 * KIB];
	for (int i = 0; i < 600; i++) {
		struct recipe r = recipe_for(1, (uint32_t)i, 1, (uint16_t)(500 + i % 3000));
		uint32_t len = batch_build(&r, buf, sizeof(buf));
		int64_t base;
		while ((base = shardlog_append(env.log, 1, buf, len, i % 2 == 0, on_durable, &o)) ==
		       -EAGAIN)
			ck_assert_int_ge(loop_run_once(&env.loop, true), 0);
		ck_assert_int_eq(base, i);
		o.ends[i] = env_stats(&env).tail_position;
		if (i % 50 == 0)
			ck_assert_int_ge(loop_run_once(&env.loop, false), 0);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_uint_eq(o.n, 600);
	for (uint32_t i = 0; i < o.n; i++) {
		ck_assert_int_eq(o.status[i], 0);
		ck_assert_int_eq(o.bases[i], i);
	}
	ck_assert(o.synced_ok);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.fsyncs, 1);
	ck_assert_uint_lt(st.fsyncs, 300);
	ck_assert_uint_eq(st.synced_position, st.written_position);
	env_done(&env);
}
END_TEST

/* A full ring refuses appends with -EAGAIN until flushes make room; a pinned read
 * holds its bytes until released. */
START_TEST(test_backpressure)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 1);
	env_open(&env);
	static uint8_t buf[8 * KIB];
	struct recipe r = recipe_for(1, 0, 1, 4000);
	uint32_t len = batch_build(&r, buf, sizeof(buf));
	uint32_t ok = 0;
	int64_t base;
	while ((base = shardlog_append(env.log, 1, buf, len, false, NULL, NULL)) >= 0)
		ok++;
	ck_assert_int_eq(base, -EAGAIN);
	ck_assert_uint_ge(ok, 50); /* about 256 KiB of 4 KiB frames */
	ck_assert_uint_le(ok, 64);
	ck_assert_uint_eq(env_stats(&env).append_backpressure, 1);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), ok);
	ck_assert_int_eq(shardlog_drain(env.log), 0);

	/* pin the newest batch; the ring may then hold at most one lap ahead of it */
	static struct shardlog_read rd;
	ck_assert_int_eq(read_sync(&env, 1, ok, 1000, &rd), 0);
	ck_assert(rd.from_cache);
	uint8_t *before = gather(&rd);
	uint32_t more = 0;
	for (;;) {
		base = shardlog_append(env.log, 1, buf, len, false, NULL, NULL);
		if (base == -EAGAIN) {
			ck_assert_int_eq(shardlog_drain(env.log), 0);
			base = shardlog_append(env.log, 1, buf, len, false, NULL, NULL);
			if (base == -EAGAIN)
				break; /* the pin, not unwritten bytes, holds it */
		}
		ck_assert_int_ge(base, 0);
		ck_assert_uint_lt(++more, 200);
	}
	ck_assert_uint_ge(more, 50);
	uint8_t *after = gather(&rd);
	ck_assert(memcmp(before, after, rd.bytes) == 0); /* the pinned bytes are intact */
	free(before);
	free(after);
	shardlog_read_release(env.log, &rd);
	ck_assert_int_ge(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), 0);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	env_done(&env);
}
END_TEST

/* A failing write (here: RLIMIT_FSIZE, which first cuts a write short, then refuses it
 * with EFBIG) fails the waiting appends with the error, puts the log in the failed
 * state (appends return the error), keeps reads of written data working; a reopen
 * recovers a consistent log. */
START_TEST(test_write_error_fails_waiters)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 2);
	env_open(&env);
	struct model m;
	model_init(&m, 2, 1);
	for (uint32_t k = 0; k < 20; k++) {
		struct recipe r = recipe_for(m.parts[k % 2].id, k, 2, 3000);
		append_retry(&env, &m, &m.parts[k % 2], &r, true, NULL, NULL);
	}
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	uint64_t written = env_stats(&env).written_position;
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old,
	    lim = {.rlim_cur = (written + 4095) / 4096 * 4096 + 8192, .rlim_max = RLIM_INFINITY};
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct shardlog_partition_info info;
	static struct order_log o;
	static uint8_t buf[16 * KIB];
	for (uint32_t k = 0; k < 10; k++) {
		struct recipe r = recipe_for(m.parts[0].id, 100 + k, 2, 3000);
		uint32_t len = batch_build(&r, buf, sizeof(buf));
		int64_t base = shardlog_append(env.log, 1, buf, len, true, on_appended, &o);
		ck_assert_int_eq(base, m.parts[0].next);
		/* failed appends are not acknowledged: each may or may not survive */
		model_add(&m.parts[0], &r, base, m.appended++);
	}
	ck_assert_int_eq(shardlog_drain(env.log), -EFBIG);
	ck_assert_uint_eq(o.n, 10);
	for (uint32_t i = 0; i < o.n; i++)
		ck_assert_int_eq(o.status[i], -EFBIG);
	struct recipe r = recipe_for(1, 999, 1, 10);
	uint32_t len = batch_build(&r, buf, sizeof(buf));
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), -EFBIG);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_ge(st.io_errors, 1);
	ck_assert_uint_lt(st.written_position, st.tail_position);
	verify_partition(&env, &m.parts[1], 1 * MIB); /* written data still reads */
	ck_assert_int_eq(shardlog_partition_info(env.log, 1, &info), 0);
	ck_assert_int_ge(info.high_watermark, 20);
	ck_assert_int_lt(info.high_watermark, 40);
	ck_assert_int_eq(shardlog_close(env.log), -EFBIG);
	env.log = NULL;
	loop_destroy(&env.loop);
	pool_destroy(&env.pool);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	env_open(&env);
	/* whatever part of the failed appends reached the disk, the log is consistent */
	ck_assert_uint_ge(model_cut_to_log(&env, &m), 20);
	ck_assert_uint_le(model_cut_to_log(&env, &m), 30);
	model_free(&m);
	env_done(&env);
}
END_TEST

/* ----------------------------------------------------------------------------------- */

/* ----------------------------------------------------------------------------------- */
/* durability barrier and the hooks for state kept beside the log */

/* A barrier is released in order with the append callbacks, after a sync when only a
 * sync is missing, and answers at once (1) when everything is durable. */
START_TEST(test_barrier_in_order)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 1);
	env_open(&env);
	static struct order_log o;
	static uint8_t buf[4 * KIB];
	struct recipe r = recipe_for(1, 0, 1, 100);
	uint32_t len = batch_build(&r, buf, sizeof(buf));
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, on_appended, &o), i);
	ck_assert_int_eq(shardlog_barrier(env.log, on_appended, &o), 0);
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, true, on_appended, &o), 3);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_uint_eq(o.n, 5);
	const int64_t want[5] = {0, 1, 2, -1, 3};
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(o.status[i], 0);
		ck_assert_int_eq(o.bases[i], want[i]);
	}
	ck_assert_int_eq(shardlog_barrier(env.log, on_appended, &o), 1); /* all synced */

	/* written but not synced: the barrier asks for a sync of its own */
	ck_assert_int_eq(shardlog_append(env.log, 1, buf, len, false, NULL, NULL), 4);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	struct shardlog_stats st = env_stats(&env);
	ck_assert_uint_lt(st.synced_position, st.written_position);
	ck_assert_int_eq(shardlog_barrier(env.log, on_appended, &o), 0);
	ck_assert_int_eq(shardlog_drain(env.log), 0);
	ck_assert_uint_eq(o.n, 6);
	ck_assert_int_eq(o.bases[5], -1);
	st = env_stats(&env);
	ck_assert_uint_eq(st.synced_position, st.written_position);
	env_done(&env);
}
END_TEST

/* What the hooks saw. */
static struct hook_log {
	uint32_t batches;     /* recovered_batch calls */
	int64_t first_base;   /* base offset of the first one */
	int64_t last_base;    /* and of the last one */
	int64_t producer_sum; /* sum of their producer ids */
	bool in_order;	      /* base offsets rose by one batch each time */
	uint32_t loads;	      /* load calls */
	size_t load_len;      /* bytes the last load got */
	bool load_matched;    /* they were what save wrote */
	int load_result;      /* what load returns */
	uint32_t state;	      /* changes what save writes */
} hooks_seen;

static void hook_batch(void *ctx, uint32_t partition_id, const struct batch_header *h,
		       int64_t base_offset)
{
	struct hook_log *hl = ctx;
	ck_assert_uint_eq(partition_id, 1);
	ck_assert_int_eq(h->base_offset, base_offset);
	if (hl->batches == 0) {
		hl->first_base = base_offset;
		hl->in_order = true;
	} else if (base_offset != hl->last_base + 1) {
		hl->in_order = false;
	}
	hl->last_base = base_offset;
	hl->producer_sum += h->producer_id;
	hl->batches++;
}

static size_t hook_save_bytes(void *ctx)
{
	return 37;
}

static void hook_save(void *ctx, uint8_t *buf, size_t len)
{
	struct hook_log *hl = ctx;
	ck_assert_uint_eq(len, 37);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(hl->state * 7 + i);
}

static int hook_load(void *ctx, const uint8_t *buf, size_t len)
{
	struct hook_log *hl = ctx;
	hl->loads++;
	hl->load_len = len;
	hl->load_matched = len == 37;
	for (size_t i = 0; i < len && hl->load_matched; i++)
		hl->load_matched = buf[i] == (uint8_t)(hl->state * 7 + i);
	return hl->load_result;
}

/* Makes the batch at BUF (LEN bytes) carry producer id PID, and reseals its CRC. */
static void batch_set_producer(uint8_t *buf, uint32_t len, int64_t pid)
{
	test_put_be(buf + 43, (uint64_t)pid, 8);
	test_put_be(buf + 51, 0, 2);
	test_put_be(buf + 53, 0, 4);
	test_put_be(buf + 17, crc32c(0, buf + BATCH_CRC_START, len - BATCH_CRC_START), 4);
}

static void hooks_reopen(struct env *env, int load_result)
{
	hooks_seen.batches = 0;
	hooks_seen.producer_sum = 0;
	hooks_seen.loads = 0;
	hooks_seen.load_len = 0;
	hooks_seen.load_matched = false;
	hooks_seen.load_result = load_result;
	env_open(env);
}

/* The checkpoint carries the hooks' state; recovery hands it to load and then feeds
 * the batches after the covered position in order; a refused state means a full scan. */
START_TEST(test_hooks_state_and_scan)
{
	struct env env;
	env_init(&env, 1 * MIB, 256 * KIB, 1);
	env.opts.hooks = (struct shardlog_hooks){.recovered_batch = hook_batch,
						 .save_bytes = hook_save_bytes,
						 .save = hook_save,
						 .load = hook_load,
						 .ctx = &hooks_seen};
	hooks_seen.state = 3;
	hooks_reopen(&env, 0);
	ck_assert_uint_eq(hooks_seen.loads, 0); /* a new log has no checkpoint */
	static uint8_t buf[8 * KIB];
	const uint32_t n = 700; /* ~3.5 MiB of 5 KiB frames: three full segments */
	int64_t psum = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct recipe r = recipe_for(1, i, 1, 5000);
		uint32_t len = batch_build(&r, buf, sizeof(buf));
		batch_set_producer(buf, len, 1000 + i);
		psum += 1000 + i;
		int64_t base;
		while ((base = shardlog_append(env.log, 1, buf, len, false, NULL, NULL)) == -EAGAIN)
			ck_assert_int_ge(loop_run_once(&env.loop, true), 0);
		ck_assert_int_eq(base, i);
	}
	hooks_seen.state = 5;
	env_close(&env); /* writes the checkpoint with state 5 */

	hooks_reopen(&env, 0);
	ck_assert_uint_eq(hooks_seen.loads, 1);
	ck_assert(hooks_seen.load_matched);
	/* only the active segment was scanned, its batches in order up to the end */
	ck_assert_uint_gt(hooks_seen.batches, 0);
	ck_assert_uint_lt(hooks_seen.batches, n / 2);
	ck_assert(hooks_seen.in_order);
	ck_assert_int_eq(hooks_seen.last_base, n - 1);
	env_close(&env);

	/* a refused state: the checkpoint is not used, every batch is fed */
	hooks_reopen(&env, -EBADMSG);
	ck_assert_uint_eq(hooks_seen.loads, 1);
	ck_assert_uint_eq(hooks_seen.batches, n);
	ck_assert_int_eq(hooks_seen.first_base, 0);
	ck_assert(hooks_seen.in_order);
	ck_assert_int_eq(hooks_seen.producer_sum, psum);
	struct shardlog_partition_info info;
	ck_assert_int_eq(shardlog_partition_info(env.log, 1, &info), 0);
	ck_assert_int_eq(info.next_offset, n);
	env_close(&env);

	/* a log opened without hooks skips the state and keeps its offsets */
	env.opts.hooks = (struct shardlog_hooks){0};
	env_open(&env);
	ck_assert_int_eq(shardlog_partition_info(env.log, 1, &info), 0);
	ck_assert_int_eq(info.next_offset, n);
	ck_assert_uint_lt(env_stats(&env).recovery_frames, n / 2); /* the checkpoint was used */
	env_done(&env);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test)
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
		test_pick_direct_dir("sluice-check-shardlog", machine.base, sizeof(machine.base),
				     NULL, machine.skip, sizeof(machine.skip));
	}

	Suite *s = suite_create("shardlog");
	add_case(s, "interleaved_10k_partitions", test_interleaved_10k_partitions);
	add_case(s, "restart_same_offsets_and_bytes", test_restart_same_offsets_and_bytes);
	add_case(s, "restart_other_sizes", test_restart_other_sizes);
	add_case(s, "cache_and_disk_reads_equal", test_cache_and_disk_reads_equal);
	add_case(s, "read_edges", test_read_edges);
	add_case(s, "offset_for_timestamp", test_offset_for_timestamp);
	add_case(s, "on_advance", test_on_advance);
	add_case(s, "append_rejects", test_append_rejects);
	add_case(s, "partition_registry", test_partition_registry);
	add_case(s, "segments_roll_over", test_segments_roll_over);
	add_case(s, "damage_truncated_segment", test_damage_truncated_segment);
	add_case(s, "damage_zeroed_last_block", test_damage_zeroed_last_block);
	add_case(s, "damage_torn_write", test_damage_torn_write);
	add_case(s, "damage_bit_flip_middle", test_damage_bit_flip_middle);
	add_case(s, "damage_checkpoint_missing", test_damage_checkpoint_missing);
	add_case(s, "damage_checkpoint_corrupt", test_damage_checkpoint_corrupt);
	add_case(s, "unknown_partition_skipped", test_unknown_partition_skipped);
	add_case(s, "retention", test_retention);
	add_case(s, "index_files_written_and_loaded", test_index_files_written_and_loaded);
	add_case(s, "leftover_spare_after_kill", test_leftover_spare_after_kill);
	add_case(s, "index_file_deleted_rebuilt", test_index_file_deleted_rebuilt);
	add_case(s, "index_file_corrupt_rebuilt", test_index_file_corrupt_rebuilt);
	add_case(s, "checkpoint_v1_still_read", test_checkpoint_v1_still_read);
	add_case(s, "group_commit", test_group_commit);
	add_case(s, "durable_waiters_in_order", test_durable_waiters_in_order);
	add_case(s, "backpressure", test_backpressure);
	add_case(s, "write_error_fails_waiters", test_write_error_fails_waiters);
	add_case(s, "barrier_in_order", test_barrier_in_order);
	add_case(s, "hooks_state_and_scan", test_hooks_state_and_scan);
	ret = unit_run(s);
	if (machine.base[0])
		test_remove_tree(machine.base);
	return ret;
}
