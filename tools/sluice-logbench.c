/*
 * tools/sluice-logbench.c: the shard-log benchmark of issue 3. One pinned thread opens a
 * shard log (core/shardlog.h) in a fresh data directory and keeps it fed, as a busy
 * shard would: it appends the same valid RecordBatch v2 over and over (round-robin over
 * 1 or 10,000 partitions), durable, until the log pushes back (-EAGAIN), then turns its
 * loop, for a fixed time per run; then it drains. It measures append throughput (MB/s of
 * batch bytes, appends/s, records/s) for each record size x batch size x partition count
 * x fsync mode, with the writes and fdatasyncs the group commit issued, and prints it
 * beside fio's sequential O_DIRECT write bandwidth on the same file system, measured in
 * the same invocation (io_uring, 1 MiB blocks, and with an fdatasync after every 1 MiB
 * for fsync always), as a ratio, with the goals (>= 90 % of fio with fsync
 * never, >= 80 % with fsync always, 10,000 partitions within 5 % of one). Medians of
 * --runs runs; one progress line per second; --json for machines. It measures the log
 * alone: no network, no batch validation (the Produce path's cost), no reads.
 *
 * `sluice-logbench --write-sample DIR` instead writes a small deterministic shard log
 * (shard 0, three partitions, 1 MiB segments, several segments, cleanly closed) and
 * prints what it holds, for sluice-logdump's tests.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/limits.h"
#include "core/logger.h"
#include "core/shardlog.h"
#include "io/loop.h"
#include "io/pool.h"

#define BENCH_LIST_MAX	      8	  /* values one list option takes */
#define BENCH_DEFAULT_SECONDS 3.0 /* per run */
#define BENCH_DEFAULT_RUNS    3	  /* per configuration; the median is reported */
/* Bytes appended between loop turns: about what one loop iteration of a busy broker
 * receives (a few Produce requests). */
#define BENCH_DEFAULT_TURN_BYTES (1024u * 1024)
#define BENCH_LOOP_ENTRIES	 LIMITS_URING_ENTRIES
/* The pool: the staging ring plus room for reads the log never makes here. */
#define BENCH_POOL_SPARE_BYTES (16u * 1024 * 1024)
#define BENCH_FIO_SIZE	       "1G"
#define BENCH_FIO_BS	       "1M"
/* Appends between clock reads in the feeding loop. */
#define BENCH_CLOCK_EVERY 16u
/* Largest batch the benchmark builds (the log takes up to LIMITS_BATCH_BYTES_MAX). */
#define BENCH_BATCH_BYTES_MAX (16u * 1024 * 1024)
#define BENCH_PARTITIONS_MAX  LIMITS_SHARDLOG_PARTITIONS_MAX
/* Goals of issue 3. */
#define BENCH_GOAL_NEVER      0.90
#define BENCH_GOAL_ALWAYS     0.80
#define BENCH_GOAL_PARTITIONS 0.05

/* --write-sample: a small log for logdump's tests. */
#define SAMPLE_SEGMENT_BYTES (1024u * 1024)
#define SAMPLE_STAGING_BYTES LIMITS_SHARDLOG_STAGING_BYTES_MIN
#define SAMPLE_POOL_BYTES    (4u * 1024 * 1024)
#define SAMPLE_PARTITIONS    3u
#define SAMPLE_BATCHES	     240u

struct options {
	char dir[PATH_MAX];		       /* where the log and fio's file go */
	uint32_t record_sizes[BENCH_LIST_MAX]; /* value bytes per record */
	uint32_t record_size_count;	       /* entries of record_sizes */
	uint32_t batch_sizes[BENCH_LIST_MAX];  /* target batch bytes */
	uint32_t batch_size_count;	       /* entries of batch_sizes */
	uint32_t partitions[BENCH_LIST_MAX];   /* partition counts */
	uint32_t partition_count;	       /* entries of partitions */
	enum shardlog_fsync fsyncs[2];	       /* modes to run */
	uint32_t fsync_count;		       /* entries of fsyncs */
	double seconds;			       /* per run */
	uint64_t bytes;			       /* per run, 0 = no limit (whichever comes first) */
	uint64_t turn_bytes;	/* turn the loop (no wait) after appending this much, 0 = only
				 * when the log pushes back */
	uint32_t runs;		/* per configuration */
	uint64_t segment_bytes; /* 0 = default */
	uint64_t staging_bytes; /* 0 = default */
	bool fio;		/* measure fio too */
	const char *fio_size;	/* its --size */
	const char *fio_bs;	/* its --bs */
	const char *json;	/* results file, "-" = stdout, NULL = none */
	int cpu;		/* CPU to pin to, -1 = none */
};

/* One configuration. */
struct config {
	uint32_t record_bytes;	   /* value bytes per record */
	uint32_t batch_target;	   /* asked batch size */
	uint32_t batch_bytes;	   /* the batch built */
	uint32_t records;	   /* records per batch */
	uint32_t partitions;	   /* partitions appended to, round-robin */
	enum shardlog_fsync fsync; /* mode */
};

/* One run's figures. */
struct result {
	double seconds;	       /* from the first append until everything completed */
	uint64_t appends;      /* completed appends */
	uint64_t bytes;	       /* their batch bytes */
	uint64_t records;      /* their records */
	uint64_t write_ops;    /* WRITE_FIXED the log issued */
	uint64_t write_bytes;  /* bytes they covered */
	uint64_t fsyncs;       /* fdatasyncs */
	uint64_t backpressure; /* -EAGAIN answers */
	uint64_t segments;     /* segment files created */
	double cpu;	       /* process CPU time (user + system, io_uring workers
				* included) / seconds: 1.0 = one core busy */
	double mb_s;	       /* bytes / seconds / 1e6 */
};

/* The feeding loop's state, shared with the append callback. */
struct feed {
	uint64_t completed;	  /* callbacks fired */
	uint64_t completed_bytes; /* their batch bytes */
	uint32_t batch_bytes;	  /* bytes per append */
	int status;		  /* first non-zero callback status */
};

/* User + system CPU seconds of the whole process (every thread, io-wq workers too). */
static double cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- batches --------------------------------------------------------------------------- */

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Kafka's zigzag varint; returns the bytes written (at most 10). */
static size_t put_varint(uint8_t *p, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 0;
	while (z >= 0x80) {
		p[n++] = (uint8_t)(z | 0x80);
		z >>= 7;
	}
	p[n++] = (uint8_t)z;
	return n;
}

static size_t varint_len(int64_t v)
{
	uint8_t scratch[10];
	return put_varint(scratch, v);
}

/*
 * Builds into OUT (CAP bytes) a RecordBatch v2 of records with RECORD_BYTES-byte values
 * (null keys, no headers, pseudo-random content from SEED), as many as fit TARGET bytes
 * and at least one. Returns its length (0 when even one record does not fit CAP) and
 * the record count in *RECORDS.
 */
static uint32_t build_batch(uint8_t *out, size_t cap, uint32_t record_bytes, uint32_t target,
			    uint64_t seed, uint32_t *records)
{
	size_t len = BATCH_HEADER_BYTES;
	uint32_t n = 0;
	uint64_t x = seed | 1;
	int64_t ts = INT64_C(1700000000000);

	for (;;) {
		size_t body = 1 + varint_len(n) + varint_len(n) + varint_len(-1) +
			      varint_len(record_bytes) + record_bytes + varint_len(0);
		size_t rec = varint_len((int64_t)body) + body;
		if ((n > 0 && len + rec > target) || len + rec > cap)
			break;
		uint8_t *p = out + len;
		p += put_varint(p, (int64_t)body);
		*p++ = 0;
		p += put_varint(p, n);
		p += put_varint(p, n);
		p += put_varint(p, -1);
		p += put_varint(p, record_bytes);
		for (uint32_t i = 0; i < record_bytes; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			p[i] = (uint8_t)x;
		}
		p += record_bytes;
		p += put_varint(p, 0);
		len = (size_t)(p - out);
		n++;
	}
	if (n == 0)
		return 0;
	put_be64(out + 0, 0);
	put_be32(out + 8, (uint32_t)(len - BATCH_LENGTH_OVERHEAD));
	put_be32(out + 12, UINT32_MAX);
	out[16] = BATCH_MAGIC_V2;
	put_be16(out + 21, 0);
	put_be32(out + 23, n - 1);
	put_be64(out + 27, (uint64_t)ts);
	put_be64(out + 35, (uint64_t)(ts + n - 1));
	put_be64(out + 43, UINT64_MAX);
	put_be16(out + 51, UINT16_MAX);
	put_be32(out + 53, UINT32_MAX);
	put_be32(out + 57, n);
	put_be32(out + 17, batch_crc(out, len));
	*records = n;
	return (uint32_t)len;
}

/* --- one run ----------------------------------------------------------------------------- */

static void append_done(void *ctx, int status, int64_t base_offset)
{
	struct feed *f = ctx;
	if (status != 0 && f->status == 0)
		f->status = status;
	f->completed++;
	f->completed_bytes += f->batch_bytes;
}

/* Removes the shard directory DIR/shard-000 and its files (from a previous run). */
static void remove_log(const char *dir)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/shard-000'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "logbench: cannot remove %s/shard-000\n", dir);
	/* Let the file system finish freeing (and, mounted with discard, discarding) the
	 * previous run's gigabytes now rather than during the next run's first second. */
	sync();
}

static const char *fsync_name(enum shardlog_fsync f)
{
	return f == SHARDLOG_FSYNC_ALWAYS ? "always" : "never";
}

static void config_label(const struct config *c, char *buf, size_t len)
{
	snprintf(buf, len, "rec=%u batch=%uK(x%u) parts=%u fsync=%s", c->record_bytes,
		 (c->batch_bytes + 1023) / 1024, c->records, c->partitions, fsync_name(c->fsync));
}

/* True when the machine has 2 MiB pages reserved (otherwise the pool would warn each
 * run that it falls back to transparent huge pages). */
static bool hugetlb_reserved(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	long n = 0;
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n > 0;
}

/* Sets up a loop, a pool and a shard log in DIR with PARTITION_COUNT partitions (ids
 * 0..n-1). Returns 0 or a negative errno (printed). */
static int bench_open(const char *dir, uint32_t partition_count, enum shardlog_fsync fsync,
		      uint64_t segment_bytes, uint64_t staging_bytes, size_t pool_bytes,
		      struct loop *loop, struct pool *pool, struct shardlog **log)
{
	char err[512] = "";
	int ret = loop_init(loop, BENCH_LOOP_ENTRIES, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "logbench: io_uring: %s\n", err);
		return ret;
	}
	ret = pool_init(pool, pool_bytes, LIMITS_POOL_CHUNK_BYTES, -1,
			hugetlb_reserved() ? POOL_MODE_HUGETLB : POOL_MODE_THP);
	if (ret < 0) {
		fprintf(stderr, "logbench: pool of %zu bytes: %s\n", pool_bytes, strerror(-ret));
		goto out_loop;
	}
	ret = pool_register(pool, &loop->ring);
	if (ret < 0) {
		uring_explain(ret, "register buffers", NULL, err, sizeof(err));
		fprintf(stderr, "logbench: %s\n", err);
		goto out_pool;
	}
	uint32_t *ids = malloc(partition_count * sizeof(*ids));
	if (!ids) {
		ret = -ENOMEM;
		goto out_pool;
	}
	for (uint32_t i = 0; i < partition_count; i++)
		ids[i] = i;
	struct shardlog_options opts = {
	    .data_dir = dir,
	    .shard_id = 0,
	    .segment_bytes = segment_bytes,
	    .staging_bytes = staging_bytes,
	    .partitions_max =
		partition_count > LIMITS_SHARDLOG_PARTITIONS_MAX / 2 ? 2 * partition_count : 0,
	    .fsync = fsync,
	    .loop = loop,
	    .pool = pool,
	};
	ret = shardlog_open(log, &opts, ids, partition_count, err, sizeof(err));
	free(ids);
	if (ret < 0) {
		fprintf(stderr, "logbench: open the log in %s: %s (%s)\n", dir, strerror(-ret),
			err);
		goto out_pool;
	}
	return 0;

out_pool:
	pool_destroy(pool);
out_loop:
	loop_destroy(loop);
	return ret;
}

static void bench_close(struct loop *loop, struct pool *pool, struct shardlog *log)
{
	int ret = shardlog_close(log);
	if (ret < 0)
		fprintf(stderr, "logbench: close: %s\n", strerror(-ret));
	loop_destroy(loop);
	pool_destroy(pool);
}

/* Runs configuration C once. Returns 0 or a negative errno (printed). */
static int bench_run(const struct options *opt, const struct config *c, const uint8_t *batch,
		     const char *label, uint32_t run, struct result *res)
{
	static struct loop loop;
	static struct pool pool;
	struct shardlog *log;
	uint64_t staging = opt->staging_bytes ? opt->staging_bytes : LIMITS_SHARDLOG_STAGING_BYTES;

	remove_log(opt->dir);
	int ret = bench_open(opt->dir, c->partitions, c->fsync, opt->segment_bytes, staging,
			     staging + BENCH_POOL_SPARE_BYTES, &loop, &pool, &log);
	if (ret < 0)
		return ret;

	struct feed feed = {.batch_bytes = c->batch_bytes};
	uint64_t appended = 0;
	uint32_t part = 0;
	double start = now_s(), end = start + opt->seconds, last = start, t = start;
	double cpu_start = cpu_s();
	uint64_t last_bytes = 0, last_appends = 0;
	bool feeding = true;

	uint64_t turn_bytes = 0;
	while (feeding) {
		bool backpressured = false;
		for (;;) {
			int64_t base = shardlog_append(log, part, batch, c->batch_bytes, true,
						       append_done, &feed);
			if (base == -EAGAIN) {
				backpressured = true;
				break;
			}
			if (base < 0) {
				fprintf(stderr, "logbench: append: %s\n", strerror((int)-base));
				ret = (int)base;
				goto out_close;
			}
			appended++;
			if (++part == c->partitions)
				part = 0;
			if (opt->bytes && appended * c->batch_bytes >= opt->bytes) {
				feeding = false;
				break;
			}
			if (appended % BENCH_CLOCK_EVERY == 0 && now_s() >= end) {
				feeding = false;
				break;
			}
			/* A broker turns its loop after each batch of receives. */
			turn_bytes += c->batch_bytes;
			if (opt->turn_bytes && turn_bytes >= opt->turn_bytes) {
				turn_bytes = 0;
				break;
			}
		}
		/* Wait for a completion only when the log pushed back. */
		ret = loop_run_once(&loop, backpressured);
		if (ret < 0) {
			fprintf(stderr, "logbench: loop: %s\n", strerror(-ret));
			goto out_close;
		}
		t = now_s();
		if (t >= end)
			feeding = false;
		if (t - last >= 1.0) {
			printf("logbench: %s run %u: %5.1f s %9.1f MB/s %10.0f appends/s (%" PRIu64
			       " in flight)\n",
			       label, run, t - start,
			       (double)(feed.completed_bytes - last_bytes) / (t - last) / 1e6,
			       (double)(feed.completed - last_appends) / (t - last),
			       appended - feed.completed);
			fflush(stdout);
			last = t;
			last_bytes = feed.completed_bytes;
			last_appends = feed.completed;
		}
	}
	ret = shardlog_drain(log);
	double stop = now_s(), cpu_stop = cpu_s();
	if (ret < 0 || feed.status != 0) {
		fprintf(stderr, "logbench: drain: %s\n", strerror(ret < 0 ? -ret : -feed.status));
		ret = ret < 0 ? ret : feed.status;
		goto out_close;
	}
	struct shardlog_stats st;
	shardlog_stats(log, &st);
	*res = (struct result){
	    .seconds = stop - start,
	    .appends = feed.completed,
	    .bytes = feed.completed_bytes,
	    .records = feed.completed * c->records,
	    .write_ops = st.write_ops,
	    .write_bytes = st.write_bytes,
	    .fsyncs = st.fsyncs,
	    .backpressure = st.append_backpressure,
	    .segments = st.segments_created,
	    .cpu = (cpu_stop - cpu_start) / (stop - start),
	};
	res->mb_s = (double)res->bytes / res->seconds / 1e6;
	ret = 0;
out_close:
	bench_close(&loop, &pool, log);
	return ret;
}

/* --- fio ---------------------------------------------------------------------------------- */

/* Runs fio's sequential O_DIRECT write on DIR/fio.tmp (a fresh file each time, like the
 * log's fresh segments), with an fdatasync after every write (--fio-bs, 1 MiB by
 * default) when SYNC. Returns the bandwidth in MB/s, or a negative value when fio is missing or
 * failed. */
static double fio_run(const struct options *opt, bool sync)
{
	char path[PATH_MAX + 16], cmd[2 * PATH_MAX + 256];
	snprintf(path, sizeof(path), "%s/fio.tmp", opt->dir);
	unlink(path);
	snprintf(cmd, sizeof(cmd),
		 "fio --name=seq --ioengine=io_uring --direct=1 --bs=%s --rw=write --size=%s "
		 "%s--filename='%s' --output-format=json 2>&1",
		 opt->fio_bs, opt->fio_size, sync ? "--fdatasync=1 " : "", path);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	static char out[1 << 20];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int status = pclose(p);
	unlink(path);
	if (status != 0) {
		fprintf(stderr, "logbench: fio failed (%s):\n%.500s\n", cmd, out);
		return -1;
	}
	/* The job's "write" object (a "write" key whose value is an object: the job options
	 * hold "rw" : "write" before it), then its "bw_bytes". */
	const char *w = out, *bw = NULL;
	while ((w = strstr(w, "\"write\"")) != NULL) {
		w += strlen("\"write\"");
		const char *v = w + strspn(w, " \t\n");
		if (*v == ':' && v[1 + strspn(v + 1, " \t\n")] == '{') {
			bw = strstr(v, "\"bw_bytes\"");
			break;
		}
	}
	if (!bw) {
		fprintf(stderr, "logbench: cannot find write bw_bytes in fio's output\n");
		return -1;
	}
	bw = strchr(bw, ':');
	return bw ? strtod(bw + 1, NULL) / 1e6 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* --- driver ---------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-logbench [options]\n"
		"       sluice-logbench --write-sample DIR\n"
		"Measures shard-log append throughput (one pinned thread keeping the log fed with\n"
		"durable appends) beside fio's sequential O_DIRECT write bandwidth on the same\n"
		"file system, for every record size x batch size x partitions x fsync mode.\n"
		"\n"
		"  --dir DIR             data directory (default: logbench-data in the build\n"
		"                        directory); must accept O_DIRECT\n"
		"  --record-sizes LIST   record value bytes (default 100,1024,65536)\n"
		"  --batch-sizes LIST    batch bytes (default 16384,1048576); a record larger\n"
		"                        than the batch makes a batch of one record\n"
		"  --partitions LIST     partition counts (default 1,10000)\n"
		"  --fsync LIST          never and/or always (default never,always)\n"
		"  --seconds S           length of each run (default %.0f)\n"
		"  --bytes N             also stop a run after N batch bytes (suffix K, M, G)\n"
		"  --turn-bytes N        turn the loop (without waiting) after every N bytes\n"
		"                        appended, as a broker does after each batch of\n"
		"                        receives (default 1M); 0: only when the log pushes back\n"
		"  --runs N              runs per configuration, median reported (default %d)\n"
		"  --segment-bytes N     segment size (default 1G)\n"
		"  --staging-bytes N     staging ring (default 64M)\n"
		"  --fio-size N          fio's --size (default %s); --no-fio skips fio\n"
		"  --fio-bs N            fio's --bs (default %s), also the fdatasync interval\n"
		"  --json FILE           also write the results as JSON (- for stdout)\n"
		"  --cpu N               pin to CPU N (default: the first allowed; -1: none)\n"
		"  --write-sample DIR    write a small sample log into DIR and exit\n"
		"  --help                this text\n"
		"Build without --enable-debug for meaningful figures.\n",
		BENCH_DEFAULT_SECONDS, BENCH_DEFAULT_RUNS, BENCH_FIO_SIZE, BENCH_FIO_BS);
}

static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return false;
	uint64_t mult = 1;
	if (*end == 'k' || *end == 'K')
		mult = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mult = 1024 * 1024 * 1024, end++;
	if (*end)
		return false;
	*out = v * mult;
	return true;
}

static bool parse_list(const char *s, uint32_t *vals, uint32_t *count, uint64_t max)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	*count = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (*count == BENCH_LIST_MAX || !parse_size(tok, &v) || v == 0 || v > max)
			return false;
		vals[(*count)++] = (uint32_t)v;
	}
	return *count > 0;
}

/* Default data directory: BUILD/logbench-data, BUILD being the directory above tools/
 * that holds this program, else the current directory. */
static void default_dir(char *dir, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			size_t l = strlen(exe);
			if (l >= 6 && strcmp(exe + l - 6, "/tools") == 0)
				exe[l - 6] = '\0';
			snprintf(dir, len, "%s/logbench-data", exe[0] ? exe : "/");
			return;
		}
	}
	snprintf(dir, len, "logbench-data");
}

static void pin_cpu(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (ret != 0)
		fprintf(stderr, "logbench: cannot pin to CPU %d: %s\n", cpu, strerror(ret));
}

static int first_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	return -1;
}

/* A deterministic small log for sluice-logdump's tests: partitions 1, 2, 3 get
 * SAMPLE_BATCHES batches in turn, batch i holding 1 + i % 40 records of 100 + i % 7
 * bytes, and every 8th a large one (24 records of 4000 bytes) so that frames are padded
 * at ring and segment boundaries. Prints one line per partition and per segment. */
static int write_sample(const char *dir)
{
	static struct loop loop;
	static struct pool pool;
	static uint8_t batch[128 * 1024];
	struct shardlog *log;
	uint32_t ids[SAMPLE_PARTITIONS] = {1, 2, 3};
	char err[512] = "";

	int ret = loop_init(&loop, BENCH_LOOP_ENTRIES, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "logbench: io_uring: %s\n", err);
		return ret;
	}
	ret = pool_init(&pool, SAMPLE_POOL_BYTES, LIMITS_POOL_CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	if (ret == 0)
		ret = pool_register(&pool, &loop.ring);
	if (ret < 0) {
		fprintf(stderr, "logbench: pool: %s\n", strerror(-ret));
		return ret;
	}
	struct shardlog_options opts = {
	    .data_dir = dir,
	    .shard_id = 0,
	    .segment_bytes = SAMPLE_SEGMENT_BYTES,
	    .staging_bytes = SAMPLE_STAGING_BYTES,
	    .fsync = SHARDLOG_FSYNC_ALWAYS,
	    .loop = &loop,
	    .pool = &pool,
	};
	ret = shardlog_open(&log, &opts, ids, SAMPLE_PARTITIONS, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "logbench: open the log in %s: %s (%s)\n", dir, strerror(-ret),
			err);
		return ret;
	}
	for (uint32_t i = 0; i < SAMPLE_BATCHES; i++) {
		uint32_t records;
		bool large = i % 8 == 7;
		uint32_t len = large
				   ? build_batch(batch, sizeof(batch), 4000, 24 * 4020, i, &records)
				   : build_batch(batch, sizeof(batch), 100 + i % 7,
						 (1 + i % 40) * (110 + i % 7), i, &records);
		int64_t base;
		while ((base = shardlog_append(log, ids[i % SAMPLE_PARTITIONS], batch, len, true,
					       NULL, NULL)) == -EAGAIN)
			loop_run_once(&loop, true);
		if (base < 0) {
			fprintf(stderr, "logbench: append: %s\n", strerror((int)-base));
			return (int)base;
		}
	}
	ret = shardlog_drain(log);
	for (uint32_t p = 0; p < SAMPLE_PARTITIONS && ret == 0; p++) {
		struct shardlog_partition_info info;
		ret = shardlog_partition_info(log, ids[p], &info);
		if (ret == 0)
			printf("sample: partition %u offsets %" PRId64 "..%" PRId64 " batches %u "
			       "bytes %" PRIu64 "\n",
			       ids[p], info.log_start_offset, info.next_offset, info.batches,
			       info.bytes);
	}
	struct shardlog_stats st;
	shardlog_stats(log, &st);
	printf("sample: segments %u end %" PRIu64 " padding %" PRIu64 "\n", st.segments,
	       st.tail_position, st.pad_frames);
	int cret = shardlog_close(log);
	loop_destroy(&loop);
	pool_destroy(&pool);
	return ret < 0 ? ret : cret;
}

static void print_machine(const struct options *opt)
{
	char line[512], model[256] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0) {
			char *colon = strchr(line, ':');
			if (colon) {
				snprintf(model, sizeof(model), "%s", colon + 2);
				model[strcspn(model, "\n")] = '\0';
			}
			break;
		}
	if (f)
		fclose(f);
	struct statfs sf;
	const char *fs = "?";
	if (statfs(opt->dir, &sf) == 0)
		fs = sf.f_type == 0xEF53       ? "ext4"
		     : sf.f_type == 0x58465342 ? "xfs"
		     : sf.f_type == 0x01021994 ? "tmpfs"
		     : sf.f_type == 0x9123683E ? "btrfs"
					       : "other";
	printf("logbench: %s build; CPU %s, %ld online; data in %s (%s); pinned to CPU %d\n",
	       ASSERT_DEBUG_BUILD ? "DEBUG (figures not representative)" : "release", model,
	       sysconf(_SC_NPROCESSORS_ONLN), opt->dir, fs, opt->cpu);
}

int main(int argc, char **argv)
{
	static struct options opt = {
	    .record_sizes = {100, 1024, 65536},
	    .record_size_count = 3,
	    .batch_sizes = {16384, 1048576},
	    .batch_size_count = 2,
	    .partitions = {1, 10000},
	    .partition_count = 2,
	    .fsyncs = {SHARDLOG_FSYNC_NEVER, SHARDLOG_FSYNC_ALWAYS},
	    .fsync_count = 2,
	    .seconds = BENCH_DEFAULT_SECONDS,
	    .turn_bytes = BENCH_DEFAULT_TURN_BYTES,
	    .runs = BENCH_DEFAULT_RUNS,
	    .fio = true,
	    .fio_size = BENCH_FIO_SIZE,
	    .fio_bs = BENCH_FIO_BS,
	    .cpu = -2,
	};
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"record-sizes", required_argument, NULL, 'r'},
	    {"batch-sizes", required_argument, NULL, 'b'},
	    {"partitions", required_argument, NULL, 'p'},
	    {"fsync", required_argument, NULL, 'f'},
	    {"seconds", required_argument, NULL, 's'},
	    {"bytes", required_argument, NULL, 'B'},
	    {"turn-bytes", required_argument, NULL, 'u'},
	    {"runs", required_argument, NULL, 'n'},
	    {"segment-bytes", required_argument, NULL, 'S'},
	    {"staging-bytes", required_argument, NULL, 'T'},
	    {"fio-size", required_argument, NULL, 'F'},
	    {"no-fio", no_argument, NULL, 'N'},
	    {"fio-bs", required_argument, NULL, 'X'},
	    {"json", required_argument, NULL, 'j'},
	    {"cpu", required_argument, NULL, 'c'},
	    {"write-sample", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sample = NULL;
	uint64_t v;
	int c, idx = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		switch (c) {
		case 'd':
			snprintf(opt.dir, sizeof(opt.dir), "%s", optarg);
			break;
		case 'r':
			if (!parse_list(optarg, opt.record_sizes, &opt.record_size_count,
					BENCH_BATCH_BYTES_MAX / 2))
				goto bad;
			break;
		case 'b':
			if (!parse_list(optarg, opt.batch_sizes, &opt.batch_size_count,
					BENCH_BATCH_BYTES_MAX))
				goto bad;
			break;
		case 'p':
			if (!parse_list(optarg, opt.partitions, &opt.partition_count,
					BENCH_PARTITIONS_MAX / 2))
				goto bad;
			break;
		case 'f': {
			opt.fsync_count = 0;
			char buf[64];
			snprintf(buf, sizeof(buf), "%s", optarg);
			for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				if (opt.fsync_count == 2)
					goto bad;
				if (strcmp(tok, "never") == 0)
					opt.fsyncs[opt.fsync_count++] = SHARDLOG_FSYNC_NEVER;
				else if (strcmp(tok, "always") == 0)
					opt.fsyncs[opt.fsync_count++] = SHARDLOG_FSYNC_ALWAYS;
				else
					goto bad;
			}
			if (opt.fsync_count == 0)
				goto bad;
			break;
		}
		case 's':
			opt.seconds = strtod(optarg, NULL);
			if (!(opt.seconds > 0 && opt.seconds < 3600))
				goto bad;
			break;
		case 'B':
			if (!parse_size(optarg, &opt.bytes))
				goto bad;
			break;
		case 'u':
			if (!parse_size(optarg, &opt.turn_bytes))
				goto bad;
			break;
		case 'n':
			if (!parse_size(optarg, &v) || v == 0 || v > 100)
				goto bad;
			opt.runs = (uint32_t)v;
			break;
		case 'S':
			if (!parse_size(optarg, &opt.segment_bytes))
				goto bad;
			break;
		case 'T':
			if (!parse_size(optarg, &opt.staging_bytes))
				goto bad;
			break;
		case 'F':
			opt.fio_size = optarg;
			break;
		case 'N':
			opt.fio = false;
			break;
		case 'X':
			opt.fio_bs = optarg;
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'c':
			opt.cpu = atoi(optarg);
			break;
		case 'w':
			sample = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (sample)
		return write_sample(sample) < 0 ? 1 : 0;
	if (!opt.dir[0])
		default_dir(opt.dir, sizeof(opt.dir));
	if (mkdir(opt.dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "logbench: mkdir %s: %s\n", opt.dir, strerror(errno));
		return 1;
	}
	if (opt.cpu == -2)
		opt.cpu = first_cpu();
	pin_cpu(opt.cpu); /* fio runs as a child: it inherits the pinning, so fork it first */
	logger_set_level(LOGGER_WARN);
	print_machine(&opt);

	static uint8_t batch[BENCH_BATCH_BYTES_MAX];
	struct config configs[BENCH_LIST_MAX * BENCH_LIST_MAX * BENCH_LIST_MAX * 2];
	struct result medians[sizeof(configs) / sizeof(configs[0])];
	uint32_t nconf = 0;
	for (uint32_t f = 0; f < opt.fsync_count; f++)
		for (uint32_t r = 0; r < opt.record_size_count; r++)
			for (uint32_t b = 0; b < opt.batch_size_count; b++) {
				uint32_t target = opt.batch_sizes[b];
				uint32_t rec = opt.record_sizes[r], records;
				uint32_t len =
				    build_batch(batch, sizeof(batch), rec, target, 1, &records);
				if (len == 0)
					continue;
				/* A record above the batch size gives one-record batches; list such
				 * a batch once. */
				bool dup = false;
				for (uint32_t k = 0; k < nconf; k++)
					dup |= configs[k].record_bytes == rec &&
					       configs[k].batch_bytes == len &&
					       configs[k].fsync == opt.fsyncs[f];
				if (dup)
					continue;
				for (uint32_t p = 0; p < opt.partition_count; p++)
					configs[nconf++] = (struct config){
					    .record_bytes = rec,
					    .batch_target = target,
					    .batch_bytes = len,
					    .records = records,
					    .partitions = opt.partitions[p],
					    .fsync = opt.fsyncs[f],
					};
			}

	/* Rounds: round r runs fio (both modes) and then run r of every configuration, so
	 * that the drift of a shared or virtual disk over the minutes of a benchmark spreads
	 * over all configurations and fio alike instead of separating them. fio's child
	 * inherits our CPU mask: it runs on the core the log runs on. */
	struct result *runs = calloc((size_t)nconf * opt.runs, sizeof(*runs));
	double fio_runs[2][100];
	uint32_t fio_ok[2] = {0, 0};
	double fio_mb_s[2] = {-1, -1};
	if (!runs) {
		fprintf(stderr, "logbench: out of memory\n");
		return 1;
	}
	for (uint32_t r = 0; r < opt.runs; r++) {
		for (int sync = 0; opt.fio && sync < 2; sync++) {
			double bw = fio_run(&opt, sync);
			printf("logbench: fio seq write bs=%s %s run %u: %.1f MB/s\n", opt.fio_bs,
			       sync ? "fdatasync=1" : "no sync", r + 1, bw);
			fflush(stdout);
			if (bw > 0)
				fio_runs[sync][fio_ok[sync]++] = bw;
		}
		for (uint32_t k = 0; k < nconf; k++) {
			struct config *cf = &configs[k];
			struct result *res = &runs[(size_t)k * opt.runs + r];
			uint32_t records;
			build_batch(batch, sizeof(batch), cf->record_bytes, cf->batch_target, k + 1,
				    &records);
			char label[128];
			config_label(cf, label, sizeof(label));
			if (bench_run(&opt, cf, batch, label, r + 1, res) < 0)
				return 1;
			printf("logbench: %s run %u: %.1f MB/s in %.2f s, %" PRIu64
			       " appends, %" PRIu64 " writes of %.0f KiB avg, %" PRIu64
			       " fsyncs, cpu %.0f%%\n",
			       label, r + 1, res->mb_s, res->seconds, res->appends, res->write_ops,
			       res->write_ops ? (double)res->write_bytes / res->write_ops / 1024
					      : 0.0,
			       res->fsyncs, res->cpu * 100);
			fflush(stdout);
		}
	}
	for (int sync = 0; sync < 2; sync++)
		if (fio_ok[sync]) {
			qsort(fio_runs[sync], fio_ok[sync], sizeof(double), cmp_double);
			fio_mb_s[sync] = fio_runs[sync][(fio_ok[sync] - 1) / 2];
		}
	for (uint32_t k = 0; k < nconf; k++) {
		/* The median run by MB/s (its other figures with it). */
		struct result *rk = &runs[(size_t)k * opt.runs];
		for (uint32_t i = 1; i < opt.runs; i++)
			for (uint32_t j = i; j > 0 && rk[j].mb_s < rk[j - 1].mb_s; j--) {
				struct result tmp = rk[j];
				rk[j] = rk[j - 1];
				rk[j - 1] = tmp;
			}
		medians[k] = rk[(opt.runs - 1) / 2];
	}
	free(runs);
	remove_log(opt.dir);

	printf("\nlogbench summary (median of %u runs of %.1f s; fio: seq write, io_uring, "
	       "direct, bs=%s, size=%s, median of %u)\n",
	       opt.runs, opt.seconds, opt.fio_bs, opt.fio_size, opt.runs);
	printf("  fio: %.1f MB/s without sync, %.1f MB/s with fdatasync after every %s write\n",
	       fio_mb_s[0], fio_mb_s[1], opt.fio_bs);
	printf("  %-6s %6s %8s %5s %6s %8s %10s %11s %6s %9s %6s %5s %8s %6s %5s\n", "fsync",
	       "record", "batch", "recs", "parts", "MB/s", "appends/s", "records/s", "writes",
	       "avg_write", "fsyncs", "cpu", "fio_MB/s", "ratio", "goal");
	for (uint32_t k = 0; k < nconf; k++) {
		const struct config *cf = &configs[k];
		const struct result *r = &medians[k];
		double fio = fio_mb_s[cf->fsync == SHARDLOG_FSYNC_ALWAYS];
		double goal =
		    cf->fsync == SHARDLOG_FSYNC_ALWAYS ? BENCH_GOAL_ALWAYS : BENCH_GOAL_NEVER;
		double ratio = fio > 0 ? r->mb_s / fio : 0;
		printf("  %-6s %6u %8u %5u %6u %8.1f %10.0f %11.0f %6" PRIu64 " %8.0fK %6" PRIu64
		       " %4.0f%% %8.1f %5.0f%% %5s\n",
		       fsync_name(cf->fsync), cf->record_bytes, cf->batch_bytes, cf->records,
		       cf->partitions, r->mb_s, r->appends / r->seconds, r->records / r->seconds,
		       r->write_ops,
		       r->write_ops ? (double)r->write_bytes / r->write_ops / 1024 : 0, r->fsyncs,
		       r->cpu * 100, fio, ratio * 100,
		       fio <= 0	       ? "-"
		       : ratio >= goal ? "met"
				       : "MISS");
	}
	/* Partition scaling: each configuration with the most partitions against the same
	 * one with the fewest. */
	uint32_t pmin = UINT32_MAX, pmax = 0;
	for (uint32_t p = 0; p < opt.partition_count; p++) {
		pmin = opt.partitions[p] < pmin ? opt.partitions[p] : pmin;
		pmax = opt.partitions[p] > pmax ? opt.partitions[p] : pmax;
	}
	if (pmax > pmin) {
		printf("  %u partitions against %u (goal: within %.0f %%):\n", pmax, pmin,
		       BENCH_GOAL_PARTITIONS * 100);
		for (uint32_t k = 0; k < nconf; k++) {
			if (configs[k].partitions != pmax)
				continue;
			for (uint32_t j = 0; j < nconf; j++) {
				const struct config *a = &configs[j], *b = &configs[k];
				if (a->partitions != pmin || a->record_bytes != b->record_bytes ||
				    a->batch_bytes != b->batch_bytes || a->fsync != b->fsync)
					continue;
				double rel = medians[k].mb_s / medians[j].mb_s - 1;
				printf("    fsync %-6s record %6u batch %8u: %+6.1f %% %s\n",
				       fsync_name(a->fsync), a->record_bytes, a->batch_bytes,
				       rel * 100,
				       rel < -BENCH_GOAL_PARTITIONS ? "MISS"
				       : rel > BENCH_GOAL_PARTITIONS
					   ? "met (faster by more than 5 %)"
					   : "met");
			}
		}
	}

	if (opt.json) {
		FILE *j = strcmp(opt.json, "-") == 0 ? stdout : fopen(opt.json, "w");
		if (!j) {
			fprintf(stderr, "logbench: %s: %s\n", opt.json, strerror(errno));
			return 1;
		}
		fprintf(j,
			"{\"fio_bs\": \"%s\", \"fio_mb_s\": {\"never\": %.1f, \"always\": %.1f}, "
			"\"runs\": %u, \"seconds\": %.2f, \"results\": [\n",
			opt.fio_bs, fio_mb_s[0], fio_mb_s[1], opt.runs, opt.seconds);
		for (uint32_t k = 0; k < nconf; k++) {
			const struct config *cf = &configs[k];
			const struct result *r = &medians[k];
			fprintf(j,
				"  {\"fsync\": \"%s\", \"record_bytes\": %u, \"batch_bytes\": %u, "
				"\"records_per_batch\": %u, \"partitions\": %u, \"mb_s\": %.1f, "
				"\"appends_s\": %.0f, \"records_s\": %.0f, \"write_ops\": %" PRIu64
				", \"write_bytes\": %" PRIu64 ", \"fsyncs\": %" PRIu64
				", \"backpressure\": %" PRIu64
				", \"seconds\": %.3f, \"cpu\": %.3f}%s\n",
				fsync_name(cf->fsync), cf->record_bytes, cf->batch_bytes,
				cf->records, cf->partitions, r->mb_s, r->appends / r->seconds,
				r->records / r->seconds, r->write_ops, r->write_bytes, r->fsyncs,
				r->backpressure, r->seconds, r->cpu, k + 1 < nconf ? "," : "");
		}
		fprintf(j, "]}\n");
		if (j != stdout)
			fclose(j);
	}
	return 0;

bad:
	fprintf(stderr, "logbench: bad value '%s' for --%s\n", optarg, longopts[idx].name);
	usage(stderr);
	return 2;
}
