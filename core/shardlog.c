/*
 * core/shardlog.c: the shard log (contract and file formats in core/shardlog.h):
 * placement of frames in the staging ring, group commit from a before-wait hook and
 * from each write and sync completion (one WRITE_FIXED at a time, a linked fdatasync
 * when a durable append waits, the next write waiting for that sync), frame CRCs
 * derived from the batch's own CRC, release of waiters in append order, high
 * watermarks, reads from the ring (pinned) or from disk (READ_FIXED into pool chunks,
 * frame CRC checked), the partition registry, segment roll-over off the loop's path (a
 * spare segment prepared ahead; index file and checkpoint through io_uring), segment
 * index files (read back and rebuilt when needed at open), checkpoints,
 * recovery and retention. It does not validate batch CRCs on append (the Produce path
 * does) and does no compaction.
 *
 * Positions (all shard-log byte positions, nondecreasing over the log's life):
 *
 *   log_start .. synced <= written <= tail            cache_start <= tail
 *   [segments ....... | fsynced | written | staged ] (in the ring: [tail - S, tail))
 *
 * tail: where the next frame goes. written: every byte below it is on disk (a write
 * completed). synced: every byte below it is fdatasynced. cache_start: the ring holds
 * valid bytes for [cache_start, tail); appends never overwrite ring bytes of positions
 * >= min(pinned read, block holding written), which is what the room check enforces.
 */
#include "core/shardlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/crc32c.h"
#include "core/frame.h"
#include "core/index.h"
#include "core/logger.h"
#include "io/disk.h"
#include "io/loop.h"
#include "io/pool.h"

#define SHARDLOG_NONE UINT32_MAX
/* Size of the fixed part of a checkpoint, of a partition record, of an entry. */
#define CKPT_HEADER_BYTES    40u
#define CKPT_PARTITION_BYTES 24u
#define CKPT_ENTRY_BYTES     32u
/* Recovery stops measuring dropped bytes after this many consecutive zero bytes. */
#define SHARDLOG_DROP_ZERO_RUN (1024u * 1024)

_Static_assert(SHARDLOG_BLOCK_BYTES <= LIMITS_SHARDLOG_STAGING_BYTES_MIN,
	       "the ring holds whole blocks");
_Static_assert(LIMITS_SHARDLOG_SCAN_BYTES >= 2 * SHARDLOG_BLOCK_BYTES, "scan window");

/* One partition: its index, high watermark and retention. */
struct shardlog_partition {
	struct index index;	 /* batches, log start offset, next offset */
	int64_t high_watermark;	 /* offsets below it are written (reads return them) */
	int64_t retention_ms;	 /* -1 = unlimited */
	int64_t retention_bytes; /* -1 = unlimited */
	int64_t pending_start;	 /* recovery: a checkpointed log start above next, or -1 */
	int64_t ckpt_start;	 /* recovery: the checkpointed log start; frames after the
				  * covered position that end below it were trimmed: skipped */
	int64_t ckpt_next;	 /* recovery: the version 2 checkpoint's next offset at its
				  * covered position, or -1 (no record for it) */
	uint32_t id;		 /* broker-wide partition id */
	bool known;		 /* next offset known (checkpoint or a frame seen) */
};

/* A growable array of segment index entries, in position order. */
struct segents {
	struct shardlog_index_entry *v; /* entries */
	uint32_t count;			/* used */
	uint32_t cap;			/* allocated */
};

/* One segment file. Segments are sorted by start and contiguous. */
struct shardlog_segment {
	uint64_t start; /* shard-log position of its first byte */
	uint64_t size;	/* bytes (its preallocated length) */
	int fd;		/* O_DIRECT, read-write */
};

/* Batches from this size on get their frame CRC from the batch's own (frame_seal_tail):
 * below it one pass of the crc32 instruction costs less than combining. */
#define SHARDLOG_CRC_FOLD_MIN 1024u

/* Syncs in flight at once. The device's cost is per fdatasync call, not per byte, so
 * no write starts while a sync runs: staged bytes gather meanwhile and the next write
 * and its linked sync cover all of them (fewer, larger write + sync cycles; measured
 * faster than overlapping writes with up to 4 syncs, and than writing on with one). */
#define SHARDLOG_SYNCS_INFLIGHT_MAX 1u

/* One fdatasync in flight, linked to a write or alone. */
struct shardlog_sync {
	uint64_t seq; /* its user_data value */
	uint64_t end; /* synced may become this (min written) when it succeeds */
	bool used;    /* slot in flight */
	bool doomed;  /* its linked write came back short or failed: it will be canceled */
};

/* Where the next segment is prepared (spare_kick): once the tail passes 1/this of the
 * last segment, so the roll-over finds it ready (a 1 GiB segment's preallocation and
 * syncs take 1-3 ms here, its second half ~350 ms to write at full speed). */
#define SHARDLOG_SPARE_AT_DIVISOR 2u
/* Room for a file name the roll-over writes, and for its temp name. */
#define SHARDLOG_META_NAME_BYTES 64u
/* Values of LOOP_KIND_DISK_META completions: which operation it was. */
#define SHARDLOG_META_OP_SPARE 1u	/* a step of the spare segment's preparation */
#define SHARDLOG_META_OP_FILE_WRITE 2u	/* the write of a replaced file */
#define SHARDLOG_META_OP_FILE 3u	/* its fsync, rename or directory fsync */

/*
 * The next segment file, created and preallocated ahead of the roll-over so that the
 * loop never waits for it: the file is created in line (cheap), then FALLOCATE ->
 * FSYNC -> FSYNC of the directory go linked through io_uring. Measured before: a
 * roll-over done in line stalled its shard for 4-6 ms (fdatasync, index file,
 * create + fallocate + two fsyncs, checkpoint), which showed in the end-to-end p99.9.
 */
struct shardlog_spare {
	uint64_t start; /* its position: the end of the last segment */
	uint64_t size;	/* its size */
	int fd;		/* -1 when there is none */
	int err;	/* first error of its preparation */
	uint32_t ops;	/* its operations in flight */
	bool ready;	/* preallocated and synced: the roll-over takes it */
	bool failed;	/* its preparation failed: the roll-over creates the segment in
			 * line (and reports why); the next one is prepared again */
};

/* Steps of the roll-over's bookkeeping (meta_kick). */
enum shardlog_meta_phase {
	META_IDLE,  /* nothing to do, or a checkpoint wanted and waiting for its sync */
	META_INDEX, /* the index files of the closed segments below cover, one at a time */
	META_CKPT,  /* the checkpoint covering cover */
};

/* The files a roll-over replaces (the closed segment's index file, the checkpoint),
 * written off the loop's path, one at a time: NAME.tmp is created in line (cheap), then
 * WRITE -> FSYNC -> RENAMEAT -> FSYNC of the directory go linked through io_uring (the
 * steps of disk_write_atomic). */
struct shardlog_meta {
	enum shardlog_meta_phase phase;
	bool want;     /* a checkpoint is due (a segment was closed) */
	bool is_ckpt;  /* the file in flight is the checkpoint (else an index file) */
	uint64_t cover; /* the position this round's checkpoint covers */
	int fd;	       /* the file in flight's temp file, -1 when none */
	uint8_t *buf;  /* its bytes (malloc'd) */
	uint32_t len;  /* their length */
	uint32_t ops;  /* its operations in flight */
	int err;       /* the first error among them */
	char name[SHARDLOG_META_NAME_BYTES]; /* its final name */
	char tmp[SHARDLOG_META_NAME_BYTES];  /* its temp name */
};

/* One append waiting for its write (and maybe sync). */
struct shardlog_waiter {
	uint64_t end;		 /* position after its frame */
	int64_t base_offset;	 /* what shardlog_append returned */
	int64_t next_offset;	 /* the partition's high watermark once written */
	shardlog_append_fn done; /* may be NULL */
	void *ctx;		 /* its first argument */
	uint32_t partition;	 /* slot in parts[] */
	bool durable;		 /* waits for fdatasync (fsync always) */
};

/*
 * Invariants between calls:
 *  - synced <= written <= tail; cache_start <= tail; durable_wanted <= tail.
 *  - segments[0 .. segment_count) sorted, contiguous; the last one holds written (or
 *    ends exactly at it) unless segment_count == 0.
 *  - tail lies in [tail_seg_start, tail_seg_end); that range is the last segment or
 *    the one the next roll-over creates.
 *  - waiters are w_head <= w_written <= w_tail (free-running counters, masked): those
 *    below w_written have their high watermark applied.
 *  - pin_count pins; pin_min is the smallest pinned position (UINT64_MAX when none).
 */
struct shardlog {
	char dir_path[LIMITS_CONFIG_VALUE_BYTES]; /* DATA_DIR/shard-NNN */
	uint32_t shard_id;			  /* whose log */
	uint64_t segment_bytes;			  /* size of new segments */
	uint64_t staging_bytes;			  /* ring size S, a power of two */
	uint64_t staging_mask;			  /* S - 1 */
	uint32_t frame_bytes_max;		  /* largest frame this ring takes */
	enum shardlog_fsync fsync;		  /* when durable appends are released */
	struct loop *loop;			  /* the shard's loop */
	struct pool *pool;			  /* the shard's pool */
	int dir_fd;				  /* the shard directory */
	uint8_t *staging;			  /* the ring, carved from the pool */

	uint64_t tail;		 /* next frame's position */
	uint64_t written;	 /* bytes below are written */
	uint64_t synced;	 /* bytes below are fdatasynced */
	uint64_t cache_start;	 /* ring holds [cache_start, tail) */
	uint64_t durable_wanted; /* end of the last durable append (fsync always) */
	uint64_t tail_seg_start; /* segment holding tail (maybe not created yet) */
	uint64_t tail_seg_end;	 /* its end */
	int failed;		 /* 0, or the errno a write/sync failed with */

	bool write_inflight;  /* a WRITE_FIXED is in flight (at most one) */
	uint64_t flush_seq;   /* writes and syncs submitted (user_data values) */
	uint64_t write_seq;   /* the in-flight write's user_data value */
	uint64_t flush_start; /* block-aligned position the write starts at */
	uint64_t flush_end;   /* position written up to (tail when submitted) */
	uint32_t flush_len;   /* bytes of the write */
	struct shardlog_sync syncs[SHARDLOG_SYNCS_INFLIGHT_MAX]; /* fdatasyncs in flight */
	uint32_t syncs_inflight;				 /* used slots of syncs */
	uint64_t sync_issued_end; /* max(synced, end of every sync in flight that will run):
				   * a durable append ending below it needs no new sync */

	struct shardlog_segment *segments; /* LIMITS_SHARDLOG_SEGMENTS_MAX slots */
	uint32_t segment_count;		   /* segment files */
	struct segents seg_entries;	   /* every frame from seg_entries_from on (the
					    * segment being written, maybe the next one's
					    * first frames): its index file at the roll */
	uint64_t seg_entries_from;	   /* seg_entries is complete from here on */
	struct shardlog_spare spare;	   /* the next segment, prepared ahead */
	struct shardlog_meta meta;	   /* index files and checkpoint after a roll-over */

	struct shardlog_partition *parts; /* parts_max slots, parts_count used */
	uint32_t parts_count;		  /* registered partitions */
	uint32_t parts_max;		  /* capacity */
	uint32_t *table;		  /* open addressing: 0 empty, else slot + 1 */
	uint32_t table_mask;		  /* table size - 1 (at least 2 * parts_max) */

	struct shardlog_waiter *waiters; /* LIMITS_SHARDLOG_APPENDS_WAITING_MAX slots */
	uint32_t w_head;		 /* oldest waiter not released */
	uint32_t w_written;		 /* first waiter whose write did not complete */
	uint32_t w_tail;		 /* next free */

	uint64_t *pin_pos;	 /* per pin slot: pinned position */
	uint32_t *pin_dense;	 /* pin_count used slot numbers */
	uint32_t *pin_where;	 /* per slot: index in pin_dense */
	uint32_t *pin_free;	 /* free slot numbers */
	uint32_t pin_free_count; /* entries of pin_free */
	uint32_t pin_count;	 /* pins held */
	uint64_t pin_min;	 /* smallest pinned position, UINT64_MAX when none */

	uint32_t reads_inflight;     /* disk reads not completed */
	struct shardlog_hooks hooks; /* state kept beside the log (opts->hooks) */
	struct shardlog_stats stats; /* counters */

	shardlog_advance_fn on_advance; /* after a write moved a high watermark, or NULL */
	void *on_advance_ctx;		/* its first argument */
	bool advanced;			/* a high watermark moved since on_advance last ran */
};

/* ----------------------------------------------------------------------------------- */
/* helpers */

static uint64_t round_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint8_t *ring_at(const struct shardlog *log, uint64_t pos)
{
	return log->staging + (pos & log->staging_mask);
}

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
	if (!err || err_len == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

const char *shardlog_dir_name(char *buf, uint32_t shard_id)
{
	snprintf(buf, SHARDLOG_DIR_NAME_BYTES, "shard-%03u", shard_id);
	return buf;
}

const char *shardlog_segment_name(char *buf, uint64_t start)
{
	snprintf(buf, SHARDLOG_SEGMENT_NAME_BYTES, "%020" PRIu64 "%s", start,
		 SHARDLOG_SEGMENT_SUFFIX);
	return buf;
}

bool shardlog_segment_parse(const char *name, uint64_t *start)
{
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		uint64_t d = (uint64_t)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (strcmp(name + 20, SHARDLOG_SEGMENT_SUFFIX) != 0)
		return false;
	*start = v;
	return true;
}

const char *shardlog_index_name(char *buf, uint64_t start)
{
	snprintf(buf, SHARDLOG_SEGMENT_NAME_BYTES, "%020" PRIu64 "%s", start,
		 SHARDLOG_INDEX_SUFFIX);
	return buf;
}

bool shardlog_index_parse(const char *name, uint64_t *start)
{
	for (int i = 0; i < 20; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	if (strcmp(name + 20, SHARDLOG_INDEX_SUFFIX) != 0)
		return false;
	char seg[SHARDLOG_SEGMENT_NAME_BYTES];
	memcpy(seg, name, 20);
	strcpy(seg + 20, SHARDLOG_SEGMENT_SUFFIX);
	return shardlog_segment_parse(seg, start);
}

/* ----------------------------------------------------------------------------------- */
/* segment index files */

uint64_t shardlog_index_bytes_max(uint64_t segment_size)
{
	return SHARDLOG_INDEX_HEADER_BYTES + segment_size /
						 (FRAME_HEADER_BYTES + BATCH_HEADER_BYTES) *
						 (uint64_t)SHARDLOG_INDEX_ENTRY_BYTES;
}

void shardlog_index_entry_get(const uint8_t *buf, uint32_t i, struct shardlog_index_entry *out)
{
	const uint8_t *p =
	    buf + SHARDLOG_INDEX_HEADER_BYTES + (size_t)i * SHARDLOG_INDEX_ENTRY_BYTES;
	out->partition_id = get_u32(p);
	out->length = get_u32(p + 4);
	out->base_offset = (int64_t)get_u64(p + 8);
	out->position = get_u64(p + 16);
	out->last_offset_delta = (int32_t)get_u32(p + 24);
	out->max_timestamp = (int64_t)get_u64(p + 32);
}

int shardlog_index_check(const uint8_t *buf, size_t len, uint32_t shard_id, uint64_t seg_start,
			 uint64_t seg_size, uint32_t *count, const char **why)
{
	if (len < SHARDLOG_INDEX_HEADER_BYTES) {
		*why = "shorter than its header";
		return -EBADMSG;
	}
	if (get_u32(buf) != SHARDLOG_INDEX_MAGIC || get_u32(buf + 4) != SHARDLOG_INDEX_VERSION) {
		*why = "bad magic or version";
		return -EBADMSG;
	}
	uint32_t n = get_u32(buf + 32);
	if ((uint64_t)len !=
	    SHARDLOG_INDEX_HEADER_BYTES + (uint64_t)n * SHARDLOG_INDEX_ENTRY_BYTES) {
		*why = "length differs from its entry count";
		return -EBADMSG;
	}
	if (get_u32(buf + 8) != crc32c(0, buf + 12, len - 12)) {
		*why = "bad crc";
		return -EBADMSG;
	}
	if (get_u32(buf + 12) != shard_id) {
		*why = "written by another shard";
		return -EBADMSG;
	}
	if (get_u64(buf + 16) != seg_start || get_u64(buf + 24) != seg_size) {
		*why = "written for another segment start or size";
		return -EBADMSG;
	}
	uint64_t next = seg_start;
	for (uint32_t i = 0; i < n; i++) {
		struct shardlog_index_entry e;
		shardlog_index_entry_get(buf, i, &e);
		if (e.length < FRAME_HEADER_BYTES + BATCH_HEADER_BYTES || e.position < next ||
		    e.position > seg_start + seg_size ||
		    e.length > seg_start + seg_size - e.position || e.base_offset < 0 ||
		    e.last_offset_delta < 0) {
			*why = "an entry lies outside the segment, overlaps the one before or "
			       "is malformed";
			return -EBADMSG;
		}
		next = e.position + e.length;
	}
	*count = n;
	return 0;
}

/* Makes room for MORE entries in SE. Returns 0 or -ENOMEM. */
static int segents_reserve(struct segents *se, uint32_t more)
{
	if (se->cap - se->count >= more)
		return 0;
	uint64_t cap = se->cap ? se->cap : 1024;
	while (cap - se->count < more)
		cap *= 2;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	void *nv = realloc(se->v, cap * sizeof(*se->v));
	if (!nv)
		return -ENOMEM;
	se->v = nv;
	se->cap = (uint32_t)cap;
	return 0;
}

/* Appends E to SE. Returns 0 or -ENOMEM. */
static int segents_push(struct segents *se, const struct shardlog_index_entry *e)
{
	int ret = segents_reserve(se, 1);
	if (ret < 0)
		return ret;
	se->v[se->count++] = *e;
	return 0;
}

/* The bytes of the index file of LOG's segment [START, START + SIZE) holding the COUNT
 * entries at V (position order), malloc'd, *BYTES long; NULL when out of memory. */
static uint8_t *segidx_build(const struct shardlog *log, uint64_t start, uint64_t size,
			     const struct shardlog_index_entry *v, uint32_t count, size_t *bytes)
{
	*bytes = SHARDLOG_INDEX_HEADER_BYTES + (size_t)count * SHARDLOG_INDEX_ENTRY_BYTES;
	uint8_t *buf = malloc(*bytes);
	if (!buf)
		return NULL;
	uint8_t *p = buf + SHARDLOG_INDEX_HEADER_BYTES;
	for (uint32_t i = 0; i < count; i++, p += SHARDLOG_INDEX_ENTRY_BYTES) {
		put_u32(p, v[i].partition_id);
		put_u32(p + 4, v[i].length);
		put_u64(p + 8, (uint64_t)v[i].base_offset);
		put_u64(p + 16, v[i].position);
		put_u32(p + 24, (uint32_t)v[i].last_offset_delta);
		put_u32(p + 28, 0);
		put_u64(p + 32, (uint64_t)v[i].max_timestamp);
	}
	put_u32(buf, SHARDLOG_INDEX_MAGIC);
	put_u32(buf + 4, SHARDLOG_INDEX_VERSION);
	put_u32(buf + 12, log->shard_id);
	put_u64(buf + 16, start);
	put_u64(buf + 24, size);
	put_u32(buf + 32, count);
	put_u32(buf + 36, 0);
	put_u32(buf + 8, crc32c(0, buf + 12, *bytes - 12));
	return buf;
}

/* Writes the index file of LOG's segment [START, START + SIZE) holding the COUNT
 * entries at V (position order), atomically. Returns 0 or a negative errno (logged). */
static int segidx_write(struct shardlog *log, uint64_t start, uint64_t size,
			const struct shardlog_index_entry *v, uint32_t count)
{
	size_t bytes;
	uint8_t *buf = segidx_build(log, start, size, v, count, &bytes);
	if (!buf)
		return -ENOMEM;
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	shardlog_index_name(name, start);
	int ret = disk_write_atomic(log->dir_fd, name, buf, bytes);
	free(buf);
	if (ret < 0) {
		LOG_ERROR("shardlog: shard %u: cannot write segment index %s/%s: %s", log->shard_id,
			  log->dir_path, name, strerror(-ret));
		return ret;
	}
	log->stats.index_files_written++;
	return 0;
}

/* Forgets the entries of seg_entries below POS, which is then complete from POS on. */
static void segents_forget_below(struct shardlog *log, uint64_t pos)
{
	struct segents *se = &log->seg_entries;
	uint32_t n = 0;
	while (n < se->count && se->v[n].position < pos)
		n++;
	memmove(se->v, se->v + n, (se->count - n) * sizeof(*se->v));
	se->count -= n;
	if (pos > log->seg_entries_from)
		log->seg_entries_from = pos;
}

/* Removes the index file of the segment starting at START (a missing one is fine).
 * Returns 0 or a negative errno. */
static int segidx_unlink(struct shardlog *log, uint64_t start)
{
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	shardlog_index_name(name, start);
	int ret = disk_unlink(log->dir_fd, name);
	return ret == -ENOENT ? 0 : ret;
}

/* Writes the index files of the segments that end at or below UPTO and start at or
 * above seg_entries_from, from seg_entries, and forgets their entries. A failure is
 * logged and otherwise ignored (the file is derived: recovery rebuilds it). */
static void segidx_write_closed(struct shardlog *log, uint64_t upto)
{
	struct segents *se = &log->seg_entries;
	uint32_t used = 0;
	for (uint32_t i = 0; i < log->segment_count; i++) {
		const struct shardlog_segment *s = &log->segments[i];
		if (s->start + s->size > upto)
			break;
		uint32_t n = used;
		while (n < se->count && se->v[n].position < s->start + s->size)
			n++;
		if (s->start >= log->seg_entries_from)
			(void)segidx_write(log, s->start, s->size, se->v + used, n - used);
		used = n;
	}
	if (upto > log->seg_entries_from) {
		while (used < se->count && se->v[used].position < upto)
			used++;
		memmove(se->v, se->v + used, (se->count - used) * sizeof(*se->v));
		se->count -= used;
		log->seg_entries_from = upto;
	}
}

/* ----------------------------------------------------------------------------------- */
/* partition registry: open addressing, linear probing, no deletion */

static uint32_t part_hash(const struct shardlog *log, uint32_t id)
{
	return (uint32_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & log->table_mask;
}

static struct shardlog_partition *part_lookup(const struct shardlog *log, uint32_t id)
{
	for (uint32_t h = part_hash(log, id);; h = (h + 1) & log->table_mask) {
		uint32_t v = log->table[h];
		if (v == 0)
			return NULL;
		if (log->parts[v - 1].id == id)
			return &log->parts[v - 1];
	}
}

static int part_add(struct shardlog *log, uint32_t id)
{
	if (id == FRAME_PAD_PARTITION_ID)
		return -EINVAL;
	uint32_t h = part_hash(log, id);
	for (;; h = (h + 1) & log->table_mask) {
		uint32_t v = log->table[h];
		if (v == 0)
			break;
		if (log->parts[v - 1].id == id)
			return -EEXIST;
	}
	if (log->parts_count == log->parts_max)
		return -ENOSPC;
	struct shardlog_partition *p = &log->parts[log->parts_count];
	memset(p, 0, sizeof(*p));
	p->id = id;
	index_init(&p->index, 0);
	p->retention_ms = -1;
	p->retention_bytes = -1;
	p->pending_start = -1;
	p->ckpt_start = -1;
	p->ckpt_next = -1;
	log->table[h] = ++log->parts_count;
	return 0;
}

int shardlog_partition_add(struct shardlog *log, uint32_t partition_id)
{
	int ret = part_add(log, partition_id);
	if (ret == 0)
		log->parts[log->parts_count - 1].known = true; /* new: starts at offset 0 */
	return ret;
}

bool shardlog_partition_has(const struct shardlog *log, uint32_t partition_id)
{
	return part_lookup(log, partition_id) != NULL;
}

int shardlog_partition_info(const struct shardlog *log, uint32_t partition_id,
			    struct shardlog_partition_info *out)
{
	const struct shardlog_partition *p = part_lookup(log, partition_id);
	if (!p)
		return -ENOENT;
	out->log_start_offset = p->index.log_start_offset;
	out->high_watermark = p->high_watermark;
	out->next_offset = p->index.next_offset;
	out->batches = p->index.count;
	out->bytes = p->index.bytes;
	out->retention_ms = p->retention_ms;
	out->retention_bytes = p->retention_bytes;
	return 0;
}

int shardlog_offset_for_timestamp(const struct shardlog *log, uint32_t partition_id,
				  int64_t timestamp_ms, int64_t *offset, int64_t *max_timestamp)
{
	const struct shardlog_partition *p = part_lookup(log, partition_id);
	if (!p)
		return -ENOENT;
	uint32_t slot;
	int64_t found = index_offset_for_timestamp(&p->index, timestamp_ms, &slot);
	if (found < 0 || found >= p->high_watermark)
		return -ENODATA;
	*offset = found;
	*max_timestamp = index_entry_at(&p->index, slot)->max_timestamp;
	return 0;
}

void shardlog_on_advance(struct shardlog *log, shardlog_advance_fn fn, void *ctx)
{
	log->on_advance = fn;
	log->on_advance_ctx = ctx;
}

int shardlog_set_retention(struct shardlog *log, uint32_t partition_id, int64_t retention_ms,
			   int64_t retention_bytes)
{
	struct shardlog_partition *p = part_lookup(log, partition_id);
	if (!p)
		return -ENOENT;
	if (retention_ms < -1 || retention_bytes < -1)
		return -EINVAL;
	p->retention_ms = retention_ms;
	p->retention_bytes = retention_bytes;
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* segments */

/* The segment holding POS, or NULL. */
static struct shardlog_segment *seg_find(const struct shardlog *log, uint64_t pos)
{
	uint32_t lo = 0, hi = log->segment_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct shardlog_segment *s = &log->segments[mid];
		if (pos < s->start)
			hi = mid;
		else if (pos >= s->start + s->size)
			lo = mid + 1;
		else
			return &log->segments[mid];
	}
	return NULL;
}

static uint64_t segs_end(const struct shardlog *log)
{
	if (log->segment_count == 0)
		return 0;
	const struct shardlog_segment *s = &log->segments[log->segment_count - 1];
	return s->start + s->size;
}

/* Checks that FD's O_DIRECT alignment fits the block size. */
static int seg_check_align(struct shardlog *log, int fd, const char *name)
{
	uint32_t align = disk_direct_align(fd);
	if (align > SHARDLOG_BLOCK_BYTES) {
		LOG_ERROR("shardlog: %s/%s needs O_DIRECT alignment %u, above the %u-byte "
			  "block the shard log writes",
			  log->dir_path, name, align, SHARDLOG_BLOCK_BYTES);
		return -EINVAL;
	}
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* waiters and failure */

static void waiters_apply_written(struct shardlog *log)
{
	while (log->w_written != log->w_tail) {
		struct shardlog_waiter *w =
		    &log->waiters[log->w_written & (LIMITS_SHARDLOG_APPENDS_WAITING_MAX - 1)];
		if (w->end > log->written)
			break;
		struct shardlog_partition *p =
		    w->partition == SHARDLOG_NONE ? NULL : &log->parts[w->partition];
		if (p && w->next_offset > p->high_watermark) {
			p->high_watermark = w->next_offset;
			log->advanced = true;
		}
		log->w_written++;
	}
}

/* Tells the on_advance callback, once, that high watermarks moved. */
static void advance_notify(struct shardlog *log)
{
	if (!log->advanced)
		return;
	log->advanced = false;
	if (log->on_advance)
		log->on_advance(log->on_advance_ctx, log);
}

/* Releases, in append order, the waiters whose condition holds. A callback may append:
 * each waiter is taken off the queue before its callback runs. */
static void waiters_release(struct shardlog *log)
{
	while (log->w_head != log->w_written) {
		struct shardlog_waiter *w =
		    &log->waiters[log->w_head & (LIMITS_SHARDLOG_APPENDS_WAITING_MAX - 1)];
		if (w->durable && log->fsync == SHARDLOG_FSYNC_ALWAYS && w->end > log->synced)
			break;
		struct shardlog_waiter copy = *w;
		log->w_head++;
		if (copy.done)
			copy.done(copy.ctx, 0, copy.base_offset);
	}
}

/* Puts the log in the failed state and fails every waiter with ERR. */
static void shardlog_fail(struct shardlog *log, int err, const char *what)
{
	if (!log->failed) {
		LOG_ERROR("shardlog: shard %u: %s failed: %s; the log refuses appends until it "
			  "is reopened",
			  log->shard_id, what, strerror(-err));
		log->failed = err;
	}
	while (log->w_head != log->w_tail) {
		struct shardlog_waiter copy =
		    log->waiters[log->w_head & (LIMITS_SHARDLOG_APPENDS_WAITING_MAX - 1)];
		log->w_head++;
		if (log->w_written < log->w_head)
			log->w_written = log->w_head;
		if (copy.done)
			copy.done(copy.ctx, err, copy.base_offset);
	}
}

/* ----------------------------------------------------------------------------------- */
/* checkpoint */

/* The position a checkpoint written now covers: the start of the segment holding the
 * write position (or the end of the last segment when that is full). */
static uint64_t ckpt_cover(const struct shardlog *log)
{
	if (log->segment_count == 0)
		return log->written;
	if (log->written >= segs_end(log))
		return segs_end(log);
	const struct shardlog_segment *s = seg_find(log, log->written);
	return s ? s->start : log->segments[0].start;
}

/* fdatasyncs every segment with bytes in [synced, upto), then synced >= upto. */
static int sync_below(struct shardlog *log, uint64_t upto)
{
	if (log->synced >= upto)
		return 0;
	for (uint32_t i = 0; i < log->segment_count; i++) {
		struct shardlog_segment *s = &log->segments[i];
		if (s->start + s->size <= log->synced || s->start >= upto)
			continue;
		if (fdatasync(s->fd) != 0) {
			int err = -errno;
			log->stats.io_errors++;
			return err;
		}
		log->stats.fsyncs++;
	}
	log->synced = max_u64(log->synced, min_u64(upto, log->written));
	return 0;
}

/* Number of live entries of IX whose frame starts below C. */
static uint32_t entries_below(const struct index *ix, uint64_t c)
{
	uint32_t lo = 0, hi = ix->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (index_entry_at(ix, mid)->position < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The bytes of a checkpoint covering C (every byte below C synced, every segment below
 * it with its index file), malloc'd, *LEN long; NULL with *ERR set when it cannot be. */
static uint8_t *ckpt_build(struct shardlog *log, uint64_t c, size_t *len, int *err)
{
	uint64_t bytes = CKPT_HEADER_BYTES + (uint64_t)CKPT_PARTITION_BYTES * log->parts_count;
	uint64_t extra = log->hooks.save_bytes ? log->hooks.save_bytes(log->hooks.ctx) : 0;
	bytes += extra;
	if (bytes > LIMITS_SHARDLOG_CHECKPOINT_BYTES_MAX || extra > UINT32_MAX) {
		LOG_ERROR("shardlog: shard %u: checkpoint of %" PRIu64 " bytes exceeds "
			  "LIMITS_SHARDLOG_CHECKPOINT_BYTES_MAX; not written",
			  log->shard_id, bytes);
		*err = -EFBIG;
		return NULL;
	}
	uint8_t *buf = malloc(bytes);
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	uint8_t *p = buf + CKPT_HEADER_BYTES;
	for (uint32_t i = 0; i < log->parts_count; i++) {
		const struct shardlog_partition *part = &log->parts[i];
		const struct index *ix = &part->index;
		uint32_t n = entries_below(ix, c);
		int64_t next_at_c =
		    n < ix->count ? index_entry_at(ix, n)->base_offset : ix->next_offset;
		put_u32(p, part->id);
		put_u32(p + 4, 0); /* version 2: the entries are in the segment index files */
		put_u64(p + 8, (uint64_t)ix->log_start_offset);
		put_u64(p + 16, (uint64_t)next_at_c);
		p += CKPT_PARTITION_BYTES;
	}
	if (extra > 0) {
		log->hooks.save(log->hooks.ctx, p, extra);
		p += extra;
	}
	ASSERT((uint64_t)(p - buf) == bytes);
	put_u32(buf, SHARDLOG_CHECKPOINT_MAGIC);
	put_u32(buf + 4, SHARDLOG_CHECKPOINT_VERSION);
	put_u32(buf + 12, log->shard_id);
	put_u64(buf + 16, c);
	put_u32(buf + 24, log->parts_count);
	put_u32(buf + 28, (uint32_t)extra);
	put_u64(buf + 32, bytes);
	put_u32(buf + 8, crc32c(0, buf + 12, bytes - 12));
	*len = bytes;
	return buf;
}

static bool meta_active(const struct shardlog *log)
{
	return log->meta.ops > 0 || log->meta.phase != META_IDLE;
}

int shardlog_checkpoint(struct shardlog *log)
{
	if (meta_active(log))
		return -EBUSY; /* a roll-over's checkpoint is being written */
	uint64_t c = ckpt_cover(log);
	int ret = sync_below(log, c);
	if (ret < 0) {
		LOG_ERROR("shardlog: shard %u: fdatasync before the checkpoint failed: %s",
			  log->shard_id, strerror(-ret));
		return ret;
	}
	/* Every segment below C needs its index file: one that filled but was not rolled
	 * yet (the write position at its very end) gets it now, from memory. */
	if (c > log->seg_entries_from)
		segidx_write_closed(log, c);
	size_t bytes = 0;
	uint8_t *buf = ckpt_build(log, c, &bytes, &ret);
	if (!buf)
		return ret;
	ret = disk_write_atomic(log->dir_fd, SHARDLOG_CHECKPOINT_NAME, buf, bytes);
	free(buf);
	if (ret < 0) {
		LOG_ERROR("shardlog: shard %u: cannot write %s/%s: %s", log->shard_id,
			  log->dir_path, SHARDLOG_CHECKPOINT_NAME, strerror(-ret));
		return ret;
	}
	log->stats.checkpoints++;
	return 0;
}

/* Forgets what a checkpoint load put in the partitions. */
static void ckpt_reset_partitions(struct shardlog *log)
{
	for (uint32_t i = 0; i < log->parts_count; i++) {
		struct shardlog_partition *p = &log->parts[i];
		index_destroy(&p->index);
		index_init(&p->index, 0);
		p->known = false;
		p->pending_start = -1;
		p->ckpt_start = -1;
		p->ckpt_next = -1;
		p->high_watermark = 0;
	}
}

struct scan;
static int segidx_load_below(struct shardlog *log, struct scan *sc, uint64_t c, const char **why);

/* Loads the checkpoint into the partitions (with a version 2 one, the indexes below its
 * covered position from the segment index files, rebuilding those that are missing or
 * damaged with the window SC). Returns 0 with *COVER set, or a negative errno with the
 * partitions untouched (reset) and the reason in WHY. */
static int ckpt_load(struct shardlog *log, struct scan *sc, uint64_t *cover, const char **why)
{
	void *raw = NULL;
	size_t len = 0;
	int ret = disk_read_file(log->dir_fd, SHARDLOG_CHECKPOINT_NAME,
				 LIMITS_SHARDLOG_CHECKPOINT_BYTES_MAX, &raw, &len);
	if (ret < 0) {
		*why = ret == -ENOENT ? "missing" : "unreadable";
		return ret;
	}
	const uint8_t *buf = raw;
	ret = -EBADMSG;
	if (len < CKPT_HEADER_BYTES) {
		*why = "too short";
		goto out_free;
	}
	uint32_t version = get_u32(buf + 4);
	if (get_u32(buf) != SHARDLOG_CHECKPOINT_MAGIC ||
	    (version != SHARDLOG_CHECKPOINT_VERSION && version != SHARDLOG_CHECKPOINT_VERSION_V1)) {
		*why = "bad magic or version";
		goto out_free;
	}
	bool v2 = version == SHARDLOG_CHECKPOINT_VERSION;
	if (get_u64(buf + 32) != len) {
		*why = "length differs from the file's";
		goto out_free;
	}
	if (get_u32(buf + 8) != crc32c(0, buf + 12, len - 12)) {
		*why = "bad crc";
		goto out_free;
	}
	if (get_u32(buf + 12) != log->shard_id) {
		*why = "written by another shard";
		goto out_free;
	}
	uint64_t c = get_u64(buf + 16);
	uint64_t first = log->segment_count ? log->segments[0].start : 0;
	bool boundary = c == segs_end(log);
	for (uint32_t i = 0; i < log->segment_count && !boundary; i++)
		boundary = log->segments[i].start == c;
	if (!boundary || c < first) {
		*why = "covers a position that is no segment boundary";
		goto out_free;
	}
	uint32_t nparts = get_u32(buf + 24);
	uint32_t extra = get_u32(buf + 28);
	if (extra > len - CKPT_HEADER_BYTES) {
		*why = "hook state runs past the end";
		goto out_free;
	}
	const uint8_t *p = buf + CKPT_HEADER_BYTES, *end = buf + len - extra;
	for (uint32_t i = 0; i < nparts; i++) {
		if ((size_t)(end - p) < CKPT_PARTITION_BYTES) {
			*why = "truncated partition record";
			goto out_reset;
		}
		uint32_t id = get_u32(p);
		uint32_t n = get_u32(p + 4);
		int64_t start = (int64_t)get_u64(p + 8);
		int64_t next = (int64_t)get_u64(p + 16);
		p += CKPT_PARTITION_BYTES;
		if ((uint64_t)(end - p) < (uint64_t)n * CKPT_ENTRY_BYTES || start < 0 || next < 0) {
			*why = "bad partition record";
			goto out_reset;
		}
		struct shardlog_partition *part = part_lookup(log, id);
		if (v2 && n != 0) {
			*why = "version 2 partition record with entries";
			goto out_reset;
		}
		if (!part) { /* a deleted topic's partition */
			p += (size_t)n * CKPT_ENTRY_BYTES;
			continue;
		}
		if (v2) {
			if (part->ckpt_next >= 0) {
				*why = "a partition appears twice";
				goto out_reset;
			}
			part->ckpt_start = start;
			part->ckpt_next = next;
			continue;
		}
		if (part->known) {
			*why = "a partition appears twice";
			goto out_reset;
		}
		if (n && (int64_t)get_u64(p) < 0) {
			*why = "bad entry";
			goto out_reset;
		}
		index_destroy(&part->index);
		index_init(&part->index, n ? (int64_t)get_u64(p) : next);
		for (uint32_t k = 0; k < n; k++, p += CKPT_ENTRY_BYTES) {
			struct index_entry e = {
			    .base_offset = (int64_t)get_u64(p),
			    .position = get_u64(p + 8),
			    .length = get_u32(p + 16),
			    .last_offset_delta = (int32_t)get_u32(p + 20),
			    .max_timestamp = (int64_t)get_u64(p + 24),
			};
			if (e.length < FRAME_HEADER_BYTES + BATCH_HEADER_BYTES ||
			    e.position + e.length > c || index_append(&part->index, &e) < 0) {
				*why = "bad entry";
				goto out_reset;
			}
		}
		if (part->index.next_offset != next) {
			*why = "entries do not end at the partition's next offset";
			goto out_reset;
		}
		if (start > next)
			part->pending_start = start;
		else
			index_trim_to_offset(&part->index, start);
		index_trim_before_position(&part->index, first);
		part->ckpt_start = start;
		part->known = true;
	}
	if (p != end) {
		*why = "trailing bytes";
		goto out_reset;
	}
	if (v2) {
		ret = segidx_load_below(log, sc, c, why);
		if (ret < 0)
			goto out_reset;
		ret = -EBADMSG;
		for (uint32_t i = 0; i < log->parts_count; i++) {
			struct shardlog_partition *part = &log->parts[i];
			if (part->ckpt_next < 0)
				continue;
			if (!part->known) {
				index_destroy(&part->index);
				index_init(&part->index, part->ckpt_next);
				part->known = true;
			} else if (part->index.next_offset != part->ckpt_next) {
				*why = "the segment index files do not end at a partition's next "
				       "offset";
				goto out_reset;
			}
			if (part->ckpt_start > part->ckpt_next)
				part->pending_start = part->ckpt_start;
			else
				index_trim_to_offset(&part->index, part->ckpt_start);
			index_trim_before_position(&part->index, first);
		}
	}
	if (extra > 0 && log->hooks.load && log->hooks.load(log->hooks.ctx, end, extra) < 0) {
		*why = "hook state refused";
		goto out_reset;
	}
	*cover = c;
	free(raw);
	return 0;

out_reset:
	ckpt_reset_partitions(log);
out_free:
	free(raw);
	return ret;
}

/* ----------------------------------------------------------------------------------- */
/* flush: group commit */

/* Creates the segment starting at START (the end of the last one) in line, after
 * fdatasyncing the one that is now full, and asks for the closed segment's index file
 * and a checkpoint covering START (meta_kick). The first segment, and the fallback when
 * the spare could not be prepared (spare_kick). */
static int seg_roll(struct shardlog *log, uint64_t start)
{
	if (log->segment_count == LIMITS_SHARDLOG_SEGMENTS_MAX) {
		LOG_ERROR("shardlog: shard %u: %u segments, LIMITS_SHARDLOG_SEGMENTS_MAX; "
			  "retention must delete some",
			  log->shard_id, log->segment_count);
		return -ENOSPC;
	}
	int ret = sync_below(log, start);
	if (ret < 0)
		return ret;
	waiters_release(log);
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	shardlog_segment_name(name, start);
	int fd = -1;
	ret = disk_segment_open(log->dir_fd, name, log->segment_bytes, true, &fd);
	if (ret < 0) {
		LOG_ERROR("shardlog: cannot create segment %s/%s: %s", log->dir_path, name,
			  strerror(-ret));
		return ret;
	}
	ret = seg_check_align(log, fd, name);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	log->segments[log->segment_count++] =
	    (struct shardlog_segment){.start = start, .size = log->segment_bytes, .fd = fd};
	log->stats.segments_created++;
	if (log->segment_count > 1)
		log->meta.want = true;
	return 0;
}

/* ---- the roll-over off the loop's path: spare segment, index files, checkpoint ---- */

static bool sync_queue(struct shardlog *log, struct io_uring *ring,
		       const struct shardlog_segment *seg, uint64_t end);
static void shardlog_flush(void *ctx, struct loop *loop);

/* Tags a prepared SQE of a roll-over chain with OP (SHARDLOG_META_OP_*) and links it to
 * the next one unless it is the chain's last (room for the chain was made first). */
static void meta_sqe_tag(struct io_uring_sqe *sqe, uint64_t op, bool link)
{
	ASSERT(sqe);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_DISK_META, op));
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
}

/* Starts preparing the next segment once the tail is past 1/SHARDLOG_SPARE_AT_DIVISOR of
 * the last one and none is prepared (see struct shardlog_spare). */
static void spare_kick(struct shardlog *log, struct io_uring *ring)
{
	struct shardlog_spare *sp = &log->spare;
	if (sp->fd >= 0 || sp->failed || log->segment_count == 0 ||
	    log->segment_count == LIMITS_SHARDLOG_SEGMENTS_MAX)
		return;
	const struct shardlog_segment *last = &log->segments[log->segment_count - 1];
	if (log->tail < last->start + last->size / SHARDLOG_SPARE_AT_DIVISOR)
		return;
	uint64_t start = last->start + last->size;
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	shardlog_segment_name(name, start);
	int fd = disk_segment_create(log->dir_fd, name);
	if (fd < 0) {
		LOG_WARN("shardlog: shard %u: cannot create the next segment %s/%s ahead: %s; "
			 "the roll-over creates it",
			 log->shard_id, log->dir_path, name, strerror(-fd));
		sp->failed = true;
		return;
	}
	if (io_uring_sq_space_left(ring) < 3)
		io_uring_submit(ring); /* the three linked steps in one submit */
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_fallocate(sqe, fd, 0, 0, log->segment_bytes);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_SPARE, true);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_fsync(sqe, fd, 0);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_SPARE, true);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_fsync(sqe, log->dir_fd, 0);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_SPARE, false);
	*sp = (struct shardlog_spare){
	    .start = start, .size = log->segment_bytes, .fd = fd, .err = 0, .ops = 3};
}

/* The spare's last step came back. */
static void spare_done(struct shardlog *log)
{
	struct shardlog_spare *sp = &log->spare;
	if (sp->err == 0) {
		sp->ready = true;
		return;
	}
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	shardlog_segment_name(name, sp->start);
	LOG_WARN("shardlog: shard %u: cannot preallocate the next segment %s/%s ahead: %s; "
		 "the roll-over creates it",
		 log->shard_id, log->dir_path, name, strerror(-sp->err));
	close(sp->fd);
	unlinkat(log->dir_fd, name, 0);
	sp->fd = -1;
	sp->failed = true;
}

/* At the roll-over: makes the prepared spare the last segment and asks for the closed
 * one's bookkeeping. False when no spare is ready. */
static bool spare_adopt(struct shardlog *log)
{
	struct shardlog_spare *sp = &log->spare;
	if (!sp->ready || log->segment_count == LIMITS_SHARDLOG_SEGMENTS_MAX)
		return false;
	ASSERT(sp->start == segs_end(log));
	log->segments[log->segment_count++] =
	    (struct shardlog_segment){.start = sp->start, .size = sp->size, .fd = sp->fd};
	log->stats.segments_created++;
	log->stats.segments_prepared++;
	sp->fd = -1;
	sp->ready = false;
	log->meta.want = true;
	return true;
}

/* Starts replacing NAME with the LEN bytes at BUF (taken over: freed when done) through
 * io_uring. False when the temp file cannot be created (logged, BUF freed). */
static bool meta_file_start(struct shardlog *log, struct io_uring *ring, const char *name,
			    uint8_t *buf, size_t len, bool is_ckpt)
{
	struct shardlog_meta *m = &log->meta;
	snprintf(m->name, sizeof(m->name), "%s", name);
	int fd = disk_atomic_open_tmp(log->dir_fd, name, m->tmp, sizeof(m->tmp));
	if (fd < 0) {
		LOG_ERROR("shardlog: shard %u: cannot write %s/%s: %s", log->shard_id,
			  log->dir_path, name, strerror(-fd));
		free(buf);
		return false;
	}
	m->fd = fd;
	m->buf = buf;
	m->len = (uint32_t)len;
	m->err = 0;
	m->is_ckpt = is_ckpt;
	m->ops = 4;
	if (io_uring_sq_space_left(ring) < 4)
		io_uring_submit(ring); /* the four linked steps in one submit */
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_write(sqe, fd, buf, (unsigned)len, 0);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_FILE_WRITE, true);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_fsync(sqe, fd, 0);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_FILE, true);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_renameat(sqe, log->dir_fd, m->tmp, log->dir_fd, m->name, 0);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_FILE, true);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_fsync(sqe, log->dir_fd, 0);
	meta_sqe_tag(sqe, SHARDLOG_META_OP_FILE, false);
	return true;
}

/* Starts the index file of the next closed segment below meta.cover whose entries are
 * all in memory, forgetting them; false when none is left. */
static bool meta_index_next(struct shardlog *log, struct io_uring *ring)
{
	uint64_t upto = log->meta.cover;
	struct segents *se = &log->seg_entries;
	for (uint32_t i = 0; i < log->segment_count; i++) {
		const struct shardlog_segment *s = &log->segments[i];
		uint64_t end = s->start + s->size;
		if (end > upto)
			break;
		if (s->start < log->seg_entries_from) {
			/* Done already, or only partly in memory (recovery rebuilds its file). */
			segents_forget_below(log, end);
			continue;
		}
		uint32_t n = 0;
		while (n < se->count && se->v[n].position < end)
			n++;
		size_t bytes;
		uint8_t *buf = segidx_build(log, s->start, s->size, se->v, n, &bytes);
		segents_forget_below(log, end);
		char name[SHARDLOG_SEGMENT_NAME_BYTES];
		shardlog_index_name(name, s->start);
		if (!buf) {
			LOG_ERROR("shardlog: shard %u: cannot write segment index %s/%s: %s",
				  log->shard_id, log->dir_path, name, strerror(ENOMEM));
			continue; /* derived: the next open rebuilds it */
		}
		if (meta_file_start(log, ring, name, buf, bytes, false))
			return true;
	}
	segents_forget_below(log, upto);
	return false;
}

/*
 * The roll-over's bookkeeping, one step per call until something is in flight: once a
 * segment is closed (meta.want), every byte below the new checkpoint's position is
 * fdatasynced (the closed segment's tail, through the sync slot: no write starts
 * meanwhile, so the next segment's syncs cover the log contiguously), then the closed
 * segments' index files are written, then the checkpoint. Runs from the flush and
 * from each completion of its own.
 */
static void meta_kick(struct shardlog *log, struct io_uring *ring)
{
	struct shardlog_meta *m = &log->meta;
	if (log->failed || m->ops > 0)
		return;
	for (;;) {
		switch (m->phase) {
		case META_IDLE: {
			if (!m->want)
				return;
			uint64_t c = ckpt_cover(log);
			if (log->synced < c) {
				if (log->syncs_inflight > 0)
					return; /* its completion flushes, which kicks again */
				/* A segment at a time from the first with unsynced bytes: the one
				 * that just filled, or more after a restart that found a spare. */
				struct shardlog_segment *seg = seg_find(log, log->synced);
				ASSERT(seg);
				if (io_uring_sq_space_left(ring) < 1)
					io_uring_submit(ring);
				(void)sync_queue(log, ring, seg, min_u64(seg->start + seg->size, c));
				return;
			}
			m->want = false;
			m->cover = c;
			m->phase = META_INDEX;
			break;
		}
		case META_INDEX:
			if (meta_index_next(log, ring))
				return;
			m->phase = META_CKPT;
			break;
		case META_CKPT: {
			m->phase = META_IDLE;
			size_t len = 0;
			int err = 0;
			uint8_t *buf = ckpt_build(log, m->cover, &len, &err);
			if (buf && meta_file_start(log, ring, SHARDLOG_CHECKPOINT_NAME, buf, len, true))
				return;
			break; /* logged; the previous checkpoint stays valid */
		}
		}
	}
}

static void shardlog_on_meta(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct shardlog *log = ctx;
	uint64_t op = loop_udata_value(cqe->user_data);
	int res = cqe->res;
	if (op == SHARDLOG_META_OP_SPARE) {
		struct shardlog_spare *sp = &log->spare;
		ASSERT(sp->ops > 0);
		if (res < 0 && (sp->err == 0 || sp->err == -ECANCELED))
			sp->err = res;
		if (--sp->ops == 0) {
			spare_done(log);
			shardlog_flush(log, loop); /* a roll-over may wait for it */
		}
		return;
	}
	struct shardlog_meta *m = &log->meta;
	ASSERT(m->ops > 0);
	if (op == SHARDLOG_META_OP_FILE_WRITE && res >= 0 && (uint32_t)res != m->len)
		res = -EIO; /* short: the rest of the chain comes back canceled */
	if (res < 0 && (m->err == 0 || m->err == -ECANCELED))
		m->err = res;
	if (--m->ops > 0)
		return;
	close(m->fd);
	m->fd = -1;
	free(m->buf);
	m->buf = NULL;
	if (m->err < 0) {
		/* The old file stays (an index file is rebuilt at open when missing; the
		 * previous checkpoint stays valid). */
		LOG_ERROR("shardlog: shard %u: cannot write %s/%s: %s", log->shard_id,
			  log->dir_path, m->name, strerror(-m->err));
		unlinkat(log->dir_fd, m->tmp, 0);
	} else if (m->is_ckpt) {
		log->stats.checkpoints++;
	} else {
		log->stats.index_files_written++;
	}
	shardlog_flush(log, loop); /* kicks the next step */
}

/* The largest end among the syncs in flight that will run, or synced. */
static uint64_t sync_issued_recompute(const struct shardlog *log)
{
	uint64_t e = log->synced;
	for (uint32_t i = 0; i < SHARDLOG_SYNCS_INFLIGHT_MAX; i++)
		if (log->syncs[i].used && !log->syncs[i].doomed && log->syncs[i].end > e)
			e = log->syncs[i].end;
	return e;
}

/* Queues an fdatasync of SEG covering [0, END) (its bytes are written, or written by
 * the write it is linked after); false when every sync slot is taken. */
static bool sync_queue(struct shardlog *log, struct io_uring *ring,
		       const struct shardlog_segment *seg, uint64_t end)
{
	if (log->syncs_inflight == SHARDLOG_SYNCS_INFLIGHT_MAX)
		return false;
	uint32_t slot = 0;
	while (log->syncs[slot].used)
		slot++;
	struct io_uring_sqe *sync = io_uring_get_sqe(ring);
	ASSERT(sync);
	uint64_t seq = ++log->flush_seq & LOOP_UDATA_VALUE_MASK;
	io_uring_prep_fsync(sync, seg->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sync, loop_udata(LOOP_KIND_DISK_SYNC, seq));
	log->syncs[slot] = (struct shardlog_sync){.seq = seq, .end = end, .used = true};
	log->syncs_inflight++;
	if (end > log->sync_issued_end)
		log->sync_issued_end = end;
	log->stats.fsyncs++;
	return true;
}

/*
 * Group commit: queues the next write when none is in flight: one WRITE_FIXED of the
 * staged range, from the block holding the first unwritten byte up to the tail (or the
 * next ring or segment boundary) rounded up to a block, with a linked fdatasync when a
 * durable append waits beyond what the syncs in flight cover; or a lone fdatasync of
 * what is written when only that is missing. Writes are one at a time (the next one
 * rewrites the partial tail block of the previous one) and none starts while a sync is
 * in flight (SHARDLOG_SYNCS_INFLIGHT_MAX): a sync covers every write completed before
 * it started, so each waiter is released by the first sync covering it. Runs as the
 * before-wait hook and from the write and sync completions (the disk gets the next
 * write at once).
 */
static void shardlog_flush(void *ctx, struct loop *loop)
{
	struct shardlog *log = ctx;
	if (log->failed)
		return;
	struct io_uring *ring = &loop->ring;
	spare_kick(log, ring);
	meta_kick(log, ring);
	bool sync_mode = log->fsync == SHARDLOG_FSYNC_ALWAYS;
	bool want_sync = sync_mode && log->durable_wanted > log->sync_issued_end;
	bool want_write = !log->write_inflight && log->tail > log->written;
	if (log->syncs_inflight > 0)
		want_write = false; /* staged bytes gather for the next, larger write + sync */
	if (!want_write && !want_sync)
		return;

	if (!want_write) {
		/* Everything staged is written or being written; a durable append waits
		 * beyond the syncs in flight. Sync what is written now, unless the write in
		 * flight (which then gets its own sync) is what it waits for. */
		if (log->written <= log->sync_issued_end || log->segment_count == 0)
			return;
		if (io_uring_sq_space_left(ring) < 1)
			io_uring_submit(ring);
		struct shardlog_segment *seg = seg_find(log, log->written - 1);
		ASSERT(seg);
		(void)sync_queue(log, ring, seg, log->written);
		return;
	}

	uint64_t start = round_down(log->written, SHARDLOG_BLOCK_BYTES);
	if (log->segment_count == 0 || log->written >= segs_end(log)) {
		if (spare_adopt(log)) {
			meta_kick(log, ring);
			if (log->syncs_inflight > 0)
				return; /* the closed segment's sync first; its completion flushes */
		} else if (log->spare.ops > 0) {
			return; /* the spare's completion flushes */
		} else {
			int ret = seg_roll(log, log->segment_count ? segs_end(log) : start);
			if (ret < 0) {
				shardlog_fail(log, ret, "segment roll-over");
				return;
			}
			log->spare.failed = false; /* the next one is prepared ahead again */
		}
		if (log->sync_issued_end < log->synced)
			log->sync_issued_end = log->synced;
		want_sync = sync_mode && log->durable_wanted > log->sync_issued_end;
	}
	if (io_uring_sq_space_left(ring) < 2)
		io_uring_submit(ring); /* keep the write and its linked sync in one submit */

	struct shardlog_segment *seg = seg_find(log, start);
	ASSERT(seg);
	uint64_t bound = min_u64((start | log->staging_mask) + 1, seg->start + seg->size);
	uint64_t fend = min_u64(log->tail, bound);
	uint64_t zend = round_up(fend, SHARDLOG_BLOCK_BYTES);
	ASSERT(zend <= bound && fend > log->written);
	if (zend > fend) /* the disk shows zeros after the last frame */
		memset(ring_at(log, fend), 0, zend - fend);
	uint32_t len = (uint32_t)(zend - start);
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	ASSERT(sqe);
	log->write_seq = ++log->flush_seq & LOOP_UDATA_VALUE_MASK;
	io_uring_prep_write_fixed(sqe, seg->fd, ring_at(log, start), len, start - seg->start,
				  log->pool->buf_index);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_DISK_WRITE, log->write_seq));
	log->flush_start = start;
	log->flush_end = fend;
	log->flush_len = len;
	log->write_inflight = true;
	log->stats.write_ops++;
	log->stats.write_bytes += len;
	if (len > log->stats.write_bytes_max)
		log->stats.write_bytes_max = len;
	unsigned bucket = 0;
	while (bucket + 1 < SHARDLOG_WRITE_SIZE_BUCKETS && (len >> (13 + bucket)) != 0)
		bucket++;
	log->stats.write_size_log2[bucket]++;
	if (want_sync && log->syncs_inflight < SHARDLOG_SYNCS_INFLIGHT_MAX) {
		sqe->flags |= IOSQE_IO_LINK;
		(void)sync_queue(log, ring, seg, fend);
	}
}

static void shardlog_on_write(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct shardlog *log = ctx;
	ASSERT(log->write_inflight && loop_udata_value(cqe->user_data) == log->write_seq);
	log->write_inflight = false;
	int res = cqe->res;
	bool whole = res > 0 && (uint32_t)res >= log->flush_len;
	if (!whole) {
		/* Its linked sync (if any: the one ending at flush_end) will come back
		 * canceled: it no longer covers anything. */
		for (uint32_t i = 0; i < SHARDLOG_SYNCS_INFLIGHT_MAX; i++)
			if (log->syncs[i].used && log->syncs[i].end == log->flush_end &&
			    log->syncs[i].end > log->written)
				log->syncs[i].doomed = true;
		log->sync_issued_end = sync_issued_recompute(log);
	}
	if (res <= 0) {
		log->stats.io_errors++;
		shardlog_fail(log, res < 0 ? res : -EIO, "segment write");
		return;
	}
	uint64_t upto = log->flush_end;
	if (!whole) {
		/* Short: what arrived counts; the next flush rewrites from its block. */
		upto = min_u64(log->flush_start + (uint32_t)res, log->flush_end);
		LOG_WARN("shardlog: shard %u: short write of %d of %u bytes at %" PRIu64
			 "; rewriting the rest",
			 log->shard_id, res, log->flush_len, log->flush_start);
	}
	if (upto > log->written)
		log->written = upto;
	waiters_apply_written(log);
	waiters_release(log);
	advance_notify(log);
	shardlog_flush(log, loop);
}

static void shardlog_on_sync(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct shardlog *log = ctx;
	uint64_t seq = loop_udata_value(cqe->user_data);
	uint32_t slot = 0;
	while (slot < SHARDLOG_SYNCS_INFLIGHT_MAX &&
	       !(log->syncs[slot].used && log->syncs[slot].seq == seq))
		slot++;
	ASSERT(slot < SHARDLOG_SYNCS_INFLIGHT_MAX);
	struct shardlog_sync done = log->syncs[slot];
	log->syncs[slot].used = false;
	log->syncs_inflight--;
	int res = cqe->res;
	if (res == -ECANCELED && (done.doomed || log->failed))
		return; /* its write came back short or failed: the next flush retries */
	if (res < 0) {
		log->stats.io_errors++;
		shardlog_fail(log, res, "fdatasync");
		return;
	}
	/* Everything written before it started is synced: its own write at least. */
	uint64_t end = min_u64(done.end, log->written);
	if (end > log->synced)
		log->synced = end;
	if (log->sync_issued_end < log->synced)
		log->sync_issued_end = log->synced;
	waiters_release(log);
	shardlog_flush(log, loop);
}

/* ----------------------------------------------------------------------------------- */
/* append */

/* Writes padding frames over [POS, POS + LEN) of the ring (contiguous there). */
static void pad_write(struct shardlog *log, uint64_t pos, uint64_t len)
{
	while (len > 0) {
		uint64_t piece = min_u64(len, LIMITS_FRAME_BYTES_MAX);
		if (len - piece > 0 && len - piece < FRAME_HEADER_BYTES)
			piece = len - FRAME_HEADER_BYTES;
		frame_pad(ring_at(log, pos), (uint32_t)piece);
		log->stats.pad_frames++;
		log->stats.pad_bytes += piece;
		pos += piece;
		len -= piece;
	}
}

/* Moves the tail to POS, entering the next segment when POS is the current one's end. */
static void tail_advance(struct shardlog *log, uint64_t pos)
{
	ASSERT(pos <= log->tail_seg_end);
	log->tail = pos;
	if (pos == log->tail_seg_end) {
		log->tail_seg_start = pos;
		log->tail_seg_end = pos + log->segment_bytes;
	}
}

int64_t shardlog_append(struct shardlog *log, uint32_t partition_id, const void *batch,
			uint32_t len, bool durable, shardlog_append_fn done, void *ctx)
{
	if (log->failed)
		return log->failed;
	struct shardlog_partition *part = part_lookup(log, partition_id);
	if (!part)
		return -ENOENT;
	struct batch_header bh;
	if (len < BATCH_HEADER_BYTES || batch_parse(batch, len, &bh) != BATCH_OK)
		return -EINVAL;
	if ((uint64_t)bh.batch_length + BATCH_LENGTH_OVERHEAD != len || bh.record_count <= 0 ||
	    bh.last_offset_delta < bh.record_count - 1)
		return -EINVAL;
	uint64_t flen = (uint64_t)len + FRAME_HEADER_BYTES;
	if (flen > LIMITS_FRAME_BYTES_MAX || flen > log->frame_bytes_max)
		return -EMSGSIZE;
	if (log->w_tail - log->w_head == LIMITS_SHARDLOG_APPENDS_WAITING_MAX) {
		log->stats.append_backpressure++;
		return -EAGAIN;
	}

	/* Placement: here, or after padding up to the next ring/segment boundary when the
	 * frame would straddle it or leave fewer bytes than a frame header. Boundaries
	 * are whole blocks apart, so a second one is passed only when segments of an
	 * earlier run do not end on this ring's boundaries. */
	uint64_t pos = log->tail, seg_end = log->tail_seg_end;
	for (;;) {
		uint64_t bound = min_u64((pos | log->staging_mask) + 1, seg_end);
		uint64_t gap = bound - pos;
		ASSERT(gap >= FRAME_HEADER_BYTES);
		if (flen == gap || flen + FRAME_HEADER_BYTES <= gap)
			break;
		pos = bound;
		if (pos == seg_end)
			seg_end = pos + log->segment_bytes;
	}
	uint64_t end = pos + flen;

	/* Room: the ring bytes this overwrites (up to the block the flush zeroes) must
	 * not be unwritten data nor pinned by a read. */
	uint64_t keep = round_down(log->written, SHARDLOG_BLOCK_BYTES);
	if (log->pin_count && log->pin_min < keep)
		keep = log->pin_min;
	if (round_up(end, SHARDLOG_BLOCK_BYTES) > keep + log->staging_bytes) {
		log->stats.append_backpressure++;
		return -EAGAIN;
	}

	int64_t base = part->index.next_offset;
	struct index_entry e = {
	    .base_offset = base,
	    .position = pos,
	    .length = (uint32_t)flen,
	    .last_offset_delta = bh.last_offset_delta,
	    .max_timestamp = bh.max_timestamp,
	};
	int ret = segents_reserve(&log->seg_entries, 1);
	if (ret < 0)
		return ret;
	ret = index_append(&part->index, &e);
	if (ret < 0)
		return ret;
	log->seg_entries.v[log->seg_entries.count++] = (struct shardlog_index_entry){
	    .position = pos,
	    .base_offset = base,
	    .max_timestamp = bh.max_timestamp,
	    .partition_id = partition_id,
	    .length = (uint32_t)flen,
	    .last_offset_delta = bh.last_offset_delta,
	};

	uint64_t overwritten = round_up(end, SHARDLOG_BLOCK_BYTES);
	if (overwritten > log->staging_bytes && overwritten - log->staging_bytes > log->cache_start)
		log->cache_start = overwritten - log->staging_bytes;
	while (log->tail < pos) {
		uint64_t bound = min_u64((log->tail | log->staging_mask) + 1, log->tail_seg_end);
		pad_write(log, log->tail, bound - log->tail);
		tail_advance(log, bound);
	}
	uint8_t *f = ring_at(log, pos);
	struct frame_header h = {
	    .magic = FRAME_MAGIC,
	    .frame_len = (uint32_t)flen,
	    .partition_id = partition_id,
	    .base_offset = base,
	    .last_offset_delta = bh.last_offset_delta,
	    .max_timestamp = bh.max_timestamp,
	    .record_count = bh.record_count,
	};
	frame_header_encode(&h, f);
	memcpy(f + FRAME_HEADER_BYTES, batch, len);
	batch_set_base_offset(f + FRAME_HEADER_BYTES, base);
	/* The batch was validated (the contract above): its crc field is the CRC of its
	 * bytes [21, end), so the frame CRC needs only the 61 bytes before them (no second
	 * pass over the payload). Debug builds check the contract. */
	DASSERT(batch_crc(f + FRAME_HEADER_BYTES, len) == bh.crc);
	if (len >= SHARDLOG_CRC_FOLD_MIN)
		frame_seal_tail(f, (uint32_t)flen, len - BATCH_CRC_START, bh.crc);
	else
		frame_seal(f, (uint32_t)flen);
	tail_advance(log, end);

	struct shardlog_waiter *w =
	    &log->waiters[log->w_tail & (LIMITS_SHARDLOG_APPENDS_WAITING_MAX - 1)];
	*w = (struct shardlog_waiter){
	    .end = end,
	    .base_offset = base,
	    .next_offset = part->index.next_offset,
	    .done = done,
	    .ctx = ctx,
	    .partition = (uint32_t)(part - log->parts),
	    .durable = durable && log->fsync == SHARDLOG_FSYNC_ALWAYS,
	};
	log->w_tail++;
	if (w->durable)
		log->durable_wanted = end;
	log->stats.appends++;
	log->stats.append_bytes += len;
	log->stats.append_records += (uint64_t)bh.record_count;
	return base;
}

int shardlog_barrier(struct shardlog *log, shardlog_append_fn done, void *ctx)
{
	if (log->failed)
		return log->failed;
	bool sync = log->fsync == SHARDLOG_FSYNC_ALWAYS;
	uint64_t end = log->tail;
	if (end <= log->written && (!sync || end <= log->synced))
		return 1;
	if (log->w_tail - log->w_head == LIMITS_SHARDLOG_APPENDS_WAITING_MAX) {
		log->stats.append_backpressure++;
		return -EAGAIN;
	}
	/* A waiter without a frame: released in order with the appends' waiters once the
	 * bytes up to END are written (and synced). When they are written already, every
	 * waiter is (ends only grow), so it joins the written ones at once. */
	log->waiters[log->w_tail & (LIMITS_SHARDLOG_APPENDS_WAITING_MAX - 1)] =
	    (struct shardlog_waiter){
		.end = end,
		.base_offset = -1,
		.next_offset = -1,
		.done = done,
		.ctx = ctx,
		.partition = SHARDLOG_NONE,
		.durable = sync,
	    };
	if (end <= log->written) {
		ASSERT(log->w_written == log->w_tail);
		log->w_written++;
	}
	log->w_tail++;
	if (sync && end > log->durable_wanted)
		log->durable_wanted = end;
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* reads */

static void pin_take(struct shardlog *log, struct shardlog_read *rd, uint64_t pos)
{
	ASSERT(log->pin_free_count > 0);
	uint32_t slot = log->pin_free[--log->pin_free_count];
	log->pin_pos[slot] = pos;
	log->pin_where[slot] = log->pin_count;
	log->pin_dense[log->pin_count++] = slot;
	if (pos < log->pin_min)
		log->pin_min = pos;
	rd->pin = slot;
}

static void pin_drop(struct shardlog *log, uint32_t slot)
{
	uint64_t pos = log->pin_pos[slot];
	uint32_t at = log->pin_where[slot];
	uint32_t last = log->pin_dense[--log->pin_count];
	log->pin_dense[at] = last;
	log->pin_where[last] = at;
	log->pin_free[log->pin_free_count++] = slot;
	if (pos == log->pin_min) {
		log->pin_min = UINT64_MAX;
		for (uint32_t i = 0; i < log->pin_count; i++)
			log->pin_min = min_u64(log->pin_min, log->pin_pos[log->pin_dense[i]]);
	}
}

static void read_reset(struct shardlog_read *rd)
{
	rd->slice_count = 0;
	rd->batch_count = 0;
	rd->bytes = 0;
	rd->first_offset = -1;
	rd->next_offset = -1;
	rd->high_watermark = -1;
	rd->log_start_offset = -1;
	rd->status = 0;
	rd->from_cache = false;
	rd->log = NULL;
	rd->done = NULL;
	rd->done_ctx = NULL;
	rd->pin = SHARDLOG_NONE;
	rd->ops_pending = 0;
	rd->op_count = 0;
}

void shardlog_read_release(struct shardlog *log, struct shardlog_read *rd)
{
	if (rd->log == NULL)
		return;
	ASSERT(rd->log == log && rd->ops_pending == 0);
	if (rd->pin != SHARDLOG_NONE)
		pin_drop(log, rd->pin);
	for (uint32_t i = 0; i < rd->op_count; i++)
		pool_free(log->pool, rd->ops[i].chunk);
	read_reset(rd);
}

/* Copies N bytes of log position POS out of the read's chunks. */
static void read_copy_out(const struct shardlog_read *rd, uint64_t pos, uint8_t *dst, uint32_t n)
{
	for (uint32_t i = 0; i < rd->op_count && n > 0; i++) {
		const struct shardlog_read_op *op = &rd->ops[i];
		if (pos < op->pos || pos >= op->pos + op->len)
			continue;
		uint32_t take = (uint32_t)min_u64(n, op->pos + op->len - pos);
		memcpy(dst, op->chunk + (pos - op->pos), take);
		dst += take;
		pos += take;
		n -= take;
	}
	ASSERT(n == 0);
}

/* Builds the slices of a completed disk read, checking each frame read back (header
 * against the index, CRC over the whole frame). Returns 0 or -EIO. */
static int read_finish_disk(struct shardlog *log, struct shardlog_read *rd)
{
	int64_t expect = rd->first_offset;
	for (uint32_t b = 0; b < rd->batch_count; b++) {
		uint64_t pos = rd->plan_pos[b];
		uint32_t flen = rd->plan_len[b];
		uint8_t hdr[FRAME_HEADER_BYTES];
		read_copy_out(rd, pos, hdr, FRAME_HEADER_BYTES);
		struct frame_header h;
		frame_header_decode(hdr, &h);
		uint32_t crc = 0;
		uint64_t from = pos + FRAME_CRC_START, to = pos + flen;
		uint64_t bstart = pos + FRAME_HEADER_BYTES;
		for (uint32_t i = 0; i < rd->op_count; i++) {
			const struct shardlog_read_op *op = &rd->ops[i];
			uint64_t a = max_u64(from, op->pos), z = min_u64(to, op->pos + op->len);
			if (a >= z)
				continue;
			crc = crc32c(crc, op->chunk + (a - op->pos), z - a);
			uint64_t sa = max_u64(a, bstart);
			if (sa < z) {
				if (rd->slice_count == LIMITS_SHARDLOG_READ_SLICES_MAX)
					return -EIO; /* planned within the bound: cannot happen */
				rd->slices[rd->slice_count++] = (struct shardlog_slice){
				    .data = op->chunk + (sa - op->pos), .len = (uint32_t)(z - sa)};
				rd->bytes += z - sa;
			}
		}
		if (h.magic != FRAME_MAGIC || h.frame_len != flen ||
		    h.partition_id != rd->partition_id || h.base_offset != expect ||
		    h.last_offset_delta < 0 || h.crc != crc) {
			LOG_ERROR(
			    "shardlog: shard %u: frame at position %" PRIu64
			    " read back from disk does not match: partition %u (want %u), "
			    "base offset %" PRId64 " (want %" PRId64 "), length %u (want %u), "
			    "crc %s",
			    log->shard_id, pos, h.partition_id, rd->partition_id, h.base_offset,
			    expect, h.frame_len, flen, h.crc == crc ? "ok" : "bad");
			log->stats.io_errors++;
			return -EIO;
		}
		expect = h.base_offset + h.last_offset_delta + 1;
	}
	rd->next_offset = expect;
	return 0;
}

static void read_op_submit(struct shardlog *log, struct shardlog_read_op *op)
{
	uint64_t pos = op->pos + op->done;
	struct shardlog_segment *seg = seg_find(log, pos);
	ASSERT(seg);
	struct io_uring_sqe *sqe = loop_get_sqe(log->loop);
	io_uring_prep_read_fixed(sqe, seg->fd, op->chunk + op->done, op->len - op->done,
				 pos - seg->start, log->pool->buf_index);
	ASSERT(((uint64_t)(uintptr_t)op & ~LOOP_UDATA_VALUE_MASK) == 0);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_DISK_READ, (uint64_t)(uintptr_t)op));
	log->stats.read_ops++;
}

static void shardlog_on_read(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct shardlog *log = ctx;
	struct shardlog_read_op *op =
	    (struct shardlog_read_op *)(uintptr_t)loop_udata_value(cqe->user_data);
	struct shardlog_read *rd = op->rd;
	ASSERT(rd->log == log && rd->ops_pending > 0);
	int res = cqe->res;
	if (res <= 0) {
		if (rd->status == 0)
			rd->status = res < 0 ? res : -EIO;
		log->stats.io_errors++;
		LOG_ERROR("shardlog: shard %u: read of %u bytes at position %" PRIu64 " failed: %s",
			  log->shard_id, op->len - op->done, op->pos + op->done,
			  res < 0 ? strerror(-res) : "end of file");
	} else {
		op->done += (uint32_t)res;
		log->stats.read_bytes += (uint32_t)res;
		if (op->done < op->len && rd->status == 0) {
			read_op_submit(log, op);
			return;
		}
	}
	if (--rd->ops_pending > 0)
		return;
	if (rd->status == 0)
		rd->status = read_finish_disk(log, rd);
	if (rd->status < 0) {
		rd->slice_count = 0;
		rd->bytes = 0;
	}
	log->reads_inflight--;
	if (rd->done)
		rd->done(rd->done_ctx, rd);
}

/* Plans and queues the disk read of the batches from SLOT on. */
static int read_from_disk(struct shardlog *log, struct shardlog_partition *part, uint32_t slot,
			  uint32_t max_bytes, struct shardlog_read *rd)
{
	const struct index *ix = &part->index;
	uint32_t chunk = log->pool->chunk_bytes;
	uint32_t chunks_free = log->pool->free_count;
	uint32_t slices = 0, nops = 0;
	const struct shardlog_segment *last_seg = NULL;
	for (uint32_t s = slot; s < ix->count; s++) {
		const struct index_entry *e = index_entry_at(ix, s);
		if (e->base_offset >= part->high_watermark)
			break;
		uint32_t blen = e->length - FRAME_HEADER_BYTES;
		if (rd->batch_count > 0 && rd->bytes + blen > max_bytes)
			break;
		if (rd->batch_count == LIMITS_SHARDLOG_READ_SLICES_MAX)
			break;
		uint32_t need_slices = (blen + chunk - 1) / chunk + 1;
		if (slices + need_slices > LIMITS_SHARDLOG_READ_SLICES_MAX)
			break;
		const struct shardlog_segment *seg = seg_find(log, e->position);
		if (!seg) {
			if (rd->batch_count > 0)
				break;
			LOG_ERROR("shardlog: shard %u: partition %u batch at position %" PRIu64
				  " lies in no segment",
				  log->shard_id, part->id, e->position);
			return -EIO;
		}
		/* Extend the last op (same segment, touching range) or start new ones. */
		uint64_t a = round_down(e->position, SHARDLOG_BLOCK_BYTES);
		uint64_t z = round_up(e->position + e->length, SHARDLOG_BLOCK_BYTES);
		uint32_t n = nops;
		uint32_t saved_len = n ? rd->ops[n - 1].len : 0;
		bool touching =
		    n && seg == last_seg && a <= rd->ops[n - 1].pos + rd->ops[n - 1].len;
		uint64_t cur = touching ? rd->ops[n - 1].pos + rd->ops[n - 1].len : a;
		if (touching && cur < z && rd->ops[n - 1].len < chunk) {
			uint32_t add = (uint32_t)min_u64(chunk - rd->ops[n - 1].len, z - cur);
			rd->ops[n - 1].len += add;
			cur += add;
		}
		bool fits = true;
		while (cur < z) {
			if (n == LIMITS_SHARDLOG_READ_CHUNKS_MAX || n == chunks_free) {
				fits = false;
				break;
			}
			rd->ops[n] = (struct shardlog_read_op){
			    .pos = cur, .len = (uint32_t)min_u64(chunk, z - cur), .rd = rd};
			cur += rd->ops[n].len;
			n++;
		}
		if (!fits) {
			if (nops)
				rd->ops[nops - 1].len = saved_len;
			break;
		}
		last_seg = seg;
		nops = n;
		slices += need_slices;
		rd->plan_pos[rd->batch_count] = e->position;
		rd->plan_len[rd->batch_count] = e->length;
		rd->batch_count++;
		rd->bytes += blen;
	}
	if (rd->batch_count == 0) {
		log->stats.read_backpressure++;
		return -EAGAIN;
	}
	for (uint32_t i = 0; i < nops; i++) {
		rd->ops[i].chunk = pool_alloc(log->pool);
		ASSERT(rd->ops[i].chunk); /* free_count was checked */
		rd->ops[i].done = 0;
	}
	rd->op_count = nops;
	rd->ops_pending = nops;
	rd->bytes = 0; /* recounted from the slices */
	rd->log = log;
	for (uint32_t i = 0; i < nops; i++)
		read_op_submit(log, &rd->ops[i]);
	log->reads_inflight++;
	log->stats.cache_misses++;
	return -EINPROGRESS;
}

int shardlog_read(struct shardlog *log, uint32_t partition_id, int64_t offset, uint32_t max_bytes,
		  struct shardlog_read *rd, shardlog_read_fn done, void *ctx)
{
	read_reset(rd);
	struct shardlog_partition *part = part_lookup(log, partition_id);
	if (!part)
		return -ENOENT;
	const struct index *ix = &part->index;
	rd->partition_id = partition_id;
	rd->high_watermark = part->high_watermark;
	rd->log_start_offset = ix->log_start_offset;
	if (offset < ix->log_start_offset || offset > ix->next_offset)
		return -ERANGE;
	if (offset >= part->high_watermark)
		return -ENODATA;
	uint32_t slot;
	enum index_find found = index_find(ix, offset, &slot);
	ASSERT(found == INDEX_FOUND);
	const struct index_entry *first = index_entry_at(ix, slot);
	rd->first_offset = first->base_offset;
	if (first->position < log->cache_start) {
		rd->done = done;
		rd->done_ctx = ctx;
		int ret = read_from_disk(log, part, slot, max_bytes, rd);
		if (ret != -EINPROGRESS) {
			read_reset(rd);
			return ret;
		}
		return ret;
	}
	if (log->pin_count == LIMITS_SHARDLOG_PINS_MAX) {
		log->stats.read_backpressure++;
		return -EAGAIN;
	}
	int64_t next = first->base_offset;
	for (uint32_t s = slot; s < ix->count; s++) {
		const struct index_entry *e = index_entry_at(ix, s);
		uint32_t blen = e->length - FRAME_HEADER_BYTES;
		if (e->base_offset >= part->high_watermark)
			break;
		if (rd->slice_count > 0 && rd->bytes + blen > max_bytes)
			break;
		if (rd->slice_count == LIMITS_SHARDLOG_READ_SLICES_MAX)
			break;
		rd->slices[rd->slice_count++] = (struct shardlog_slice){
		    .data = ring_at(log, e->position + FRAME_HEADER_BYTES), .len = blen};
		rd->bytes += blen;
		next = e->base_offset + e->last_offset_delta + 1;
	}
	rd->batch_count = rd->slice_count;
	rd->next_offset = next;
	rd->from_cache = true;
	rd->log = log;
	pin_take(log, rd, first->position);
	log->stats.cache_hits++;
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* retention */

int shardlog_enforce_retention(struct shardlog *log, int64_t now_ms)
{
	uint64_t min_live = UINT64_MAX;
	for (uint32_t i = 0; i < log->parts_count; i++) {
		struct shardlog_partition *p = &log->parts[i];
		struct index *ix = &p->index;
		uint32_t drop = 0;
		if (p->retention_ms >= 0) {
			int64_t limit = now_ms - p->retention_ms;
			while (drop < ix->count) {
				const struct index_entry *e = index_entry_at(ix, drop);
				if (e->base_offset + e->last_offset_delta + 1 > p->high_watermark ||
				    e->max_timestamp >= limit)
					break;
				drop++;
			}
		}
		if (p->retention_bytes >= 0) {
			uint64_t kept = ix->bytes;
			for (uint32_t k = 0; k < drop; k++)
				kept -= index_entry_at(ix, k)->length;
			while (drop < ix->count && kept > (uint64_t)p->retention_bytes) {
				const struct index_entry *e = index_entry_at(ix, drop);
				if (e->base_offset + e->last_offset_delta + 1 > p->high_watermark)
					break;
				kept -= e->length;
				drop++;
			}
		}
		if (drop > 0) {
			const struct index_entry *e = index_entry_at(ix, drop - 1);
			index_trim_to_offset(ix, e->base_offset + e->last_offset_delta + 1);
		}
		if (ix->count > 0)
			min_live = min_u64(min_live, index_entry_at(ix, 0)->position);
	}

	/* Whole oldest segments no live batch lies in, never the one being written. */
	uint64_t active = ckpt_cover(log);
	uint32_t deletable = 0;
	while (deletable + 1 < log->segment_count) {
		const struct shardlog_segment *s = &log->segments[deletable];
		if (s->start + s->size > min_live || s->start + s->size > active)
			break;
		deletable++;
	}
	if (deletable == 0 || log->reads_inflight > 0 || meta_active(log))
		return 0; /* (a roll-over's checkpoint in flight: the next check deletes) */
	int ret = shardlog_checkpoint(log);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < deletable; i++) {
		struct shardlog_segment *s = &log->segments[0];
		char name[SHARDLOG_SEGMENT_NAME_BYTES];
		shardlog_segment_name(name, s->start);
		close(s->fd);
		s->fd = -1;
		ret = segidx_unlink(log, s->start); /* first: no index without its segment */
		if (ret == 0)
			ret = disk_unlink(log->dir_fd, name);
		memmove(&log->segments[0], &log->segments[1],
			(log->segment_count - 1) * sizeof(log->segments[0]));
		log->segment_count--;
		if (ret < 0 && ret != -ENOENT) {
			LOG_ERROR("shardlog: cannot delete %s/%s: %s", log->dir_path, name,
				  strerror(-ret));
			return ret;
		}
		log->stats.segments_deleted++;
		LOG_INFO("shardlog: shard %u: retention deleted segment %s", log->shard_id, name);
	}
	return (int)deletable;
}

/* ----------------------------------------------------------------------------------- */
/* recovery */

/* Bytes of non-zero data from FROM in [FROM, END) of FD, up to the end of the last
 * non-zero block before SHARDLOG_DROP_ZERO_RUN bytes of zeros (an estimate for the
 * log line; exact for torn writes and damaged tails without long zero runs). */
static uint64_t measure_garbage(int fd, uint64_t from, uint64_t end, uint8_t *buf,
				uint32_t buf_bytes)
{
	uint64_t last_nonzero = from, zero_run = 0;
	uint64_t pos = round_down(from, SHARDLOG_BLOCK_BYTES);
	while (pos < end && zero_run < SHARDLOG_DROP_ZERO_RUN) {
		uint32_t n = (uint32_t)min_u64(buf_bytes, end - pos);
		if (disk_pread_all(fd, buf, n, pos) < 0)
			break;
		for (uint32_t off = 0; off < n; off += SHARDLOG_BLOCK_BYTES) {
			uint64_t b = pos + off;
			uint32_t skip = b < from ? (uint32_t)(from - b) : 0;
			bool zero = true;
			for (uint32_t i = skip; i < SHARDLOG_BLOCK_BYTES && zero; i++)
				zero = buf[off + i] == 0;
			if (zero) {
				zero_run += SHARDLOG_BLOCK_BYTES - skip;
			} else {
				zero_run = 0;
				last_nonzero = b + SHARDLOG_BLOCK_BYTES;
			}
		}
		pos += n;
	}
	return last_nonzero - from;
}

/* Zeroes [FROM, END) of FD (block-aligned) with FALLOC_FL_ZERO_RANGE (metadata only on
 * ext4 and XFS); where the file system lacks it, writes zeros if MUST, else leaves it. */
static int zero_range(int fd, uint64_t from, uint64_t end, bool must, uint8_t *buf,
		      uint32_t buf_bytes)
{
	if (from >= end)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)from,
		      (off_t)(end - from)) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	if (!must)
		return 0;
	memset(buf, 0, buf_bytes);
	for (uint64_t pos = from; pos < end;) {
		uint32_t n = (uint32_t)min_u64(buf_bytes, end - pos);
		int ret = disk_pwrite_all(fd, buf, n, pos);
		if (ret < 0)
			return ret;
		pos += n;
	}
	return 0;
}

/* Scan state of the recovery. */
struct scan {
	uint8_t *buf;	    /* aligned window buffer */
	uint32_t buf_bytes; /* its size */
	uint64_t win_pos;   /* log position of buf[0] */
	uint32_t win_len;   /* valid bytes */
};

static int scan_grow(struct scan *sc, uint32_t bytes)
{
	bytes = (uint32_t)round_up(bytes, SHARDLOG_BLOCK_BYTES);
	if (bytes <= sc->buf_bytes)
		return 0;
	void *nb = NULL;
	if (posix_memalign(&nb, SHARDLOG_BLOCK_BYTES, bytes) != 0)
		return -ENOMEM;
	free(sc->buf);
	sc->buf = nb;
	sc->buf_bytes = bytes;
	sc->win_len = 0;
	return 0;
}

/* Makes the window hold [POS, POS + WANT) of SEG (or up to its end). */
static int scan_load(struct scan *sc, const struct shardlog_segment *seg, uint64_t pos,
		     uint32_t want)
{
	uint64_t seg_end = seg->start + seg->size;
	uint64_t need_end = min_u64(pos + want, seg_end);
	if (pos >= sc->win_pos && need_end <= sc->win_pos + sc->win_len)
		return 0;
	uint64_t start = round_down(pos, SHARDLOG_BLOCK_BYTES);
	int ret = scan_grow(sc, (uint32_t)(need_end - start) + SHARDLOG_BLOCK_BYTES);
	if (ret < 0)
		return ret;
	uint32_t n = (uint32_t)min_u64(sc->buf_bytes, seg_end - start);
	ret = disk_pread_all(seg->fd, sc->buf, n, start - seg->start);
	if (ret < 0)
		return ret;
	sc->win_pos = start;
	sc->win_len = n;
	return 0;
}

/* Why the log ended where it did, for the log line. */
struct scan_end {
	uint64_t pos;	 /* the end of the log */
	const char *why; /* "end" for zeros, else the reason */
};

/* Scans the frames from FROM to the end of the log, rebuilding the indexes. */
static int scan_log(struct shardlog *log, struct scan *sc, uint64_t from, struct scan_end *out)
{
	uint64_t pos = from;
	out->why = "end";
	for (uint32_t si = 0; si < log->segment_count; si++) {
		const struct shardlog_segment *seg = &log->segments[si];
		uint64_t seg_end = seg->start + seg->size;
		if (seg_end <= pos)
			continue;
		ASSERT(pos >= seg->start);
		sc->win_len = 0;
		while (pos < seg_end) {
			uint64_t left = seg_end - pos;
			int ret = scan_load(sc, seg, pos, FRAME_HEADER_BYTES);
			if (ret < 0)
				return ret;
			const uint8_t *at = sc->buf + (pos - sc->win_pos);
			uint64_t avail = sc->win_pos + sc->win_len - pos;
			if (left < FRAME_HEADER_BYTES) {
				/* A sliver too small for a frame: the writer never leaves one,
				 * but zeros there mean the segment is simply full. */
				bool zero = true;
				for (uint64_t i = 0; i < left && zero; i++)
					zero = at[i] == 0;
				if (!zero) {
					out->pos = pos;
					out->why = "bytes after the last frame of a segment";
					return 0;
				}
				pos = seg_end;
				break;
			}
			struct frame_header h;
			enum frame_check fc = frame_check(at, avail, &h);
			if (fc == FRAME_TRUNCATED && h.frame_len <= left &&
			    h.frame_len <= LIMITS_FRAME_BYTES_MAX && avail < h.frame_len) {
				ret = scan_load(sc, seg, pos, h.frame_len);
				if (ret < 0)
					return ret;
				at = sc->buf + (pos - sc->win_pos);
				avail = sc->win_pos + sc->win_len - pos;
				fc = frame_check(at, avail, &h);
			}
			if (fc != FRAME_OK) {
				out->pos = pos;
				out->why = fc == FRAME_END ? "end" : frame_check_name(fc);
				return 0;
			}
			log->stats.recovery_frames++;
			if (frame_is_pad(&h)) {
				pos += h.frame_len;
				continue;
			}
			struct shardlog_index_entry ie = {
			    .position = pos,
			    .base_offset = h.base_offset,
			    .max_timestamp = h.max_timestamp,
			    .partition_id = h.partition_id,
			    .length = h.frame_len,
			    .last_offset_delta = h.last_offset_delta,
			};
			/* pushed before it is judged: a frame that ends the log is taken off
			 * again below (its position is the end) */
			ret = segents_push(&log->seg_entries, &ie);
			if (ret < 0)
				return ret;
			struct shardlog_partition *part = part_lookup(log, h.partition_id);
			if (part &&
			    h.base_offset + (int64_t)h.last_offset_delta < part->ckpt_start &&
			    h.base_offset < part->index.next_offset)
				part = NULL; /* trimmed by retention before the checkpoint */
			if (!part) {
				log->stats.recovery_skipped++;
				pos += h.frame_len;
				continue;
			}
			struct batch_header bh;
			uint32_t blen = h.frame_len - FRAME_HEADER_BYTES;
			if (batch_parse(at + FRAME_HEADER_BYTES, blen, &bh) != BATCH_OK ||
			    (uint64_t)bh.batch_length + BATCH_LENGTH_OVERHEAD != blen ||
			    bh.base_offset != h.base_offset || h.record_count <= 0 ||
			    h.last_offset_delta != bh.last_offset_delta) {
				out->pos = pos;
				out->why = "frame header disagrees with its batch";
				return 0;
			}
			if (!part->known) {
				index_destroy(&part->index);
				index_init(&part->index, h.base_offset < 0 ? 0 : h.base_offset);
				part->known = true;
			}
			struct index_entry e = {
			    .base_offset = h.base_offset,
			    .position = pos,
			    .length = h.frame_len,
			    .last_offset_delta = h.last_offset_delta,
			    .max_timestamp = h.max_timestamp,
			};
			if (h.base_offset != part->index.next_offset ||
			    index_append(&part->index, &e) < 0) {
				LOG_WARN("shardlog: shard %u: frame at %" PRIu64
					 " has partition %u "
					 "offset %" PRId64 ", expected %" PRId64,
					 log->shard_id, pos, h.partition_id, h.base_offset,
					 part->index.next_offset);
				out->pos = pos;
				out->why = "offset does not continue its partition";
				return 0;
			}
			if (log->hooks.recovered_batch)
				log->hooks.recovered_batch(log->hooks.ctx, h.partition_id, &bh,
							   h.base_offset);
			pos += h.frame_len;
		}
	}
	out->pos = pos;
	return 0;
}

/* Lists the frames of the closed segment SEG into SE (emptied first), up to its end or
 * to zeros. Returns 0, -EBADMSG with *WHY for a damaged frame, or a disk errno. */
static int seg_scan_entries(struct scan *sc, const struct shardlog_segment *seg, struct segents *se,
			    const char **why)
{
	uint64_t pos = seg->start, seg_end = seg->start + seg->size;
	se->count = 0;
	sc->win_len = 0;
	while (seg_end - pos >= FRAME_HEADER_BYTES) {
		int ret = scan_load(sc, seg, pos, FRAME_HEADER_BYTES);
		if (ret < 0)
			return ret;
		const uint8_t *at = sc->buf + (pos - sc->win_pos);
		uint64_t avail = sc->win_pos + sc->win_len - pos;
		struct frame_header h;
		enum frame_check fc = frame_check(at, avail, &h);
		if (fc == FRAME_TRUNCATED && h.frame_len <= seg_end - pos &&
		    h.frame_len <= LIMITS_FRAME_BYTES_MAX && avail < h.frame_len) {
			ret = scan_load(sc, seg, pos, h.frame_len);
			if (ret < 0)
				return ret;
			at = sc->buf + (pos - sc->win_pos);
			avail = sc->win_pos + sc->win_len - pos;
			fc = frame_check(at, avail, &h);
		}
		if (fc == FRAME_END)
			break;
		if (fc != FRAME_OK) {
			*why = frame_check_name(fc);
			return -EBADMSG;
		}
		if (!frame_is_pad(&h)) {
			struct shardlog_index_entry e = {
			    .position = pos,
			    .base_offset = h.base_offset,
			    .max_timestamp = h.max_timestamp,
			    .partition_id = h.partition_id,
			    .length = h.frame_len,
			    .last_offset_delta = h.last_offset_delta,
			};
			ret = segents_push(se, &e);
			if (ret < 0)
				return ret;
		}
		pos += h.frame_len;
	}
	return 0;
}

/* Reads the index file of SEG into SE, or, when it is missing or damaged (logged),
 * rebuilds SE from the segment's frames and rewrites the file. Returns 0, or a
 * negative errno with *WHY (a damaged frame, no memory, a read error). */
static int segidx_read(struct shardlog *log, struct scan *sc, const struct shardlog_segment *seg,
		       struct segents *se, const char **why)
{
	char name[SHARDLOG_SEGMENT_NAME_BYTES];
	shardlog_index_name(name, seg->start);
	void *raw = NULL;
	size_t len = 0;
	const char *bad = NULL;
	uint32_t n = 0;
	int ret =
	    disk_read_file(log->dir_fd, name, shardlog_index_bytes_max(seg->size), &raw, &len);
	if (ret == 0)
		ret =
		    shardlog_index_check(raw, len, log->shard_id, seg->start, seg->size, &n, &bad);
	else
		bad = ret == -ENOENT ? "missing" : "unreadable";
	if (ret == 0) {
		se->count = 0;
		ret = segents_reserve(se, n);
		if (ret == 0) {
			for (uint32_t i = 0; i < n; i++)
				shardlog_index_entry_get(raw, i, &se->v[i]);
			se->count = n;
			log->stats.index_files_loaded++;
		}
		free(raw);
		if (ret < 0)
			*why = "no memory for a segment index";
		return ret;
	}
	free(raw);
	if (ret == -ENOMEM) {
		*why = "no memory for a segment index";
		return ret;
	}
	LOG_WARN("shardlog: shard %u: segment index %s/%s %s; rebuilding it from the segment's "
		 "frames",
		 log->shard_id, log->dir_path, name, bad);
	ret = seg_scan_entries(sc, seg, se, why);
	if (ret < 0) {
		if (ret != -EBADMSG)
			*why = "cannot read a segment to rebuild its index";
		LOG_WARN("shardlog: shard %u: cannot rebuild segment index %s/%s: %s",
			 log->shard_id, log->dir_path, name, *why);
		return ret;
	}
	log->stats.index_files_rebuilt++;
	(void)segidx_write(log, seg->start, seg->size, se->v, se->count); /* logged */
	return 0;
}

/* Rebuilds every partition's index below C (a segment boundary) from the index files
 * of the segments below it, after a version 2 checkpoint's records were loaded (each
 * recorded partition has ckpt_next >= 0). Returns 0, or a negative errno with *WHY. */
static int segidx_load_below(struct shardlog *log, struct scan *sc, uint64_t c, const char **why)
{
	struct segents se = {0};
	int ret = 0;
	for (uint32_t si = 0; si < log->segment_count && log->segments[si].start < c; si++) {
		ret = segidx_read(log, sc, &log->segments[si], &se, why);
		if (ret < 0)
			goto out_free;
		ret = -EBADMSG;
		for (uint32_t k = 0; k < se.count; k++) {
			const struct shardlog_index_entry *ie = &se.v[k];
			struct shardlog_partition *part = part_lookup(log, ie->partition_id);
			if (!part)
				continue; /* a deleted topic's partition */
			if (part->ckpt_next < 0) {
				*why =
				    "a segment index file has a partition the checkpoint has not";
				goto out_free;
			}
			if (ie->base_offset + (int64_t)ie->last_offset_delta < part->ckpt_start)
				continue; /* trimmed by retention before the checkpoint */
			if (!part->known) {
				index_destroy(&part->index);
				index_init(&part->index, ie->base_offset);
				part->known = true;
			}
			struct index_entry e = {
			    .base_offset = ie->base_offset,
			    .position = ie->position,
			    .length = ie->length,
			    .last_offset_delta = ie->last_offset_delta,
			    .max_timestamp = ie->max_timestamp,
			};
			if (ie->base_offset != part->index.next_offset ||
			    index_append(&part->index, &e) < 0) {
				*why = "the segment index files do not continue a partition's "
				       "offsets";
				goto out_free;
			}
		}
	}
	ret = 0;
out_free:
	free(se.v);
	return ret;
}

/* Opens the existing segments, sorted and checked contiguous. */
static int segs_load(struct shardlog *log, char *err, size_t err_len)
{
	char **names = NULL;
	uint32_t count = 0;
	int ret = disk_list(log->dir_fd, SHARDLOG_SEGMENT_SUFFIX, &names, &count);
	if (ret < 0) {
		set_err(err, err_len, "shardlog: cannot list %s: %s", log->dir_path,
			strerror(-ret));
		return ret;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint64_t start;
		if (!shardlog_segment_parse(names[i], &start)) {
			LOG_WARN("shardlog: ignoring %s/%s: not a segment name", log->dir_path,
				 names[i]);
			continue;
		}
		if (log->segment_count == LIMITS_SHARDLOG_SEGMENTS_MAX) {
			set_err(err, err_len, "shardlog: %s holds more than %u segments",
				log->dir_path, LIMITS_SHARDLOG_SEGMENTS_MAX);
			ret = -EUCLEAN;
			goto out;
		}
		int fd;
		uint64_t size = 0;
		ret = disk_segment_open(log->dir_fd, names[i], 0, false, &fd);
		if (ret < 0) {
			set_err(err, err_len, "shardlog: cannot open %s/%s: %s", log->dir_path,
				names[i], strerror(-ret));
			goto out;
		}
		log->segments[log->segment_count++] =
		    (struct shardlog_segment){.start = start, .size = 0, .fd = fd};
		ret = disk_file_size(fd, &size);
		if (ret == 0)
			ret = seg_check_align(log, fd, names[i]);
		if (ret < 0) {
			set_err(err, err_len, "shardlog: cannot use %s/%s: %s", log->dir_path,
				names[i], strerror(-ret));
			goto out;
		}
		size = round_down(size, SHARDLOG_BLOCK_BYTES);
		log->segments[log->segment_count - 1].size = size;
		if (size < SHARDLOG_BLOCK_BYTES && i + 1 == count &&
		    start % SHARDLOG_BLOCK_BYTES == 0) {
			/* The newest segment's creation was cut short (a crash between create
			 * and fallocate): nothing was ever written to it, since writes start
			 * only after it was preallocated and synced. Drop it; it is made again. */
			LOG_WARN("shardlog: shard %u: removing %s/%s: its creation did not finish "
				 "(%" PRIu64 " bytes)",
				 log->shard_id, log->dir_path, names[i], size);
			close(fd);
			log->segment_count--;
			ret = disk_unlink(log->dir_fd, names[i]);
			if (ret < 0) {
				set_err(err, err_len, "shardlog: cannot remove %s/%s: %s",
					log->dir_path, names[i], strerror(-ret));
				goto out;
			}
			continue;
		}
		if (start % SHARDLOG_BLOCK_BYTES != 0 || size < SHARDLOG_BLOCK_BYTES) {
			set_err(err, err_len,
				"shardlog: segment %s/%s is misaligned or empty (%" PRIu64
				" bytes)",
				log->dir_path, names[i], size);
			ret = -EUCLEAN;
			goto out;
		}
		if (log->segment_count > 1) {
			const struct shardlog_segment *prev =
			    &log->segments[log->segment_count - 2];
			if (prev->start + prev->size != start) {
				set_err(err, err_len,
					"shardlog: segments of %s are not contiguous: %" PRIu64
					" + %" PRIu64 " != %" PRIu64
					" (a segment file is missing or has the wrong size)",
					log->dir_path, prev->start, prev->size, start);
				ret = -EUCLEAN;
				goto out;
			}
		}
	}
	ret = 0;
out:
	disk_list_free(names, count);
	return ret;
}

/* Recovery (see the header): checkpoint, scan, truncate, load the tail block. */
static int shardlog_recover(struct shardlog *log, char *err, size_t err_len)
{
	int ret = segs_load(log, err, err_len);
	if (ret < 0)
		return ret;
	uint64_t first = log->segment_count ? log->segments[0].start : 0;
	uint64_t from = first;
	const char *why = NULL;
	struct scan sc = {0};
	ret = scan_grow(&sc, LIMITS_SHARDLOG_SCAN_BYTES);
	if (ret < 0)
		return ret;
	bool have_ckpt = ckpt_load(log, &sc, &from, &why) == 0;
	if (!have_ckpt) {
		if (log->segment_count > 0)
			LOG_WARN("shardlog: shard %u: checkpoint %s/%s %s; scanning from the "
				 "first segment at %" PRIu64,
				 log->shard_id, log->dir_path, SHARDLOG_CHECKPOINT_NAME, why,
				 first);
		from = first;
	}
	/* The scan lists every frame from FROM on: the index files of the closed segments
	 * it passes and of the active one at its roll come from there. */
	log->seg_entries.count = 0;
	log->seg_entries_from = from;

	struct scan_end end = {.pos = from, .why = "end"};
	ret = scan_log(log, &sc, from, &end);
	if (ret < 0) {
		set_err(err, err_len, "shardlog: reading %s during recovery: %s", log->dir_path,
			strerror(-ret));
		goto out_free;
	}
	uint64_t e = end.pos;
	while (log->seg_entries.count > 0 &&
	       log->seg_entries.v[log->seg_entries.count - 1].position >= e)
		log->seg_entries.count--; /* a frame that ended the log */

	/* Everything after the end goes: the rest of its segment is zeroed, later
	 * segments deleted, so no stale frame can be read back after later appends. */
	uint64_t dropped = 0;
	struct shardlog_segment *eseg = seg_find(log, e);
	if (eseg) {
		uint64_t seg_end = eseg->start + eseg->size;
		dropped +=
		    measure_garbage(eseg->fd, e - eseg->start, eseg->size, sc.buf, sc.buf_bytes);
		uint64_t blk = round_down(e, SHARDLOG_BLOCK_BYTES);
		if (dropped > 0 && blk < e) {
			/* rewrite the tail block with zeros after the end */
			ret = disk_pread_all(eseg->fd, sc.buf, SHARDLOG_BLOCK_BYTES,
					     blk - eseg->start);
			if (ret == 0) {
				memset(sc.buf + (e - blk), 0, SHARDLOG_BLOCK_BYTES - (e - blk));
				ret = disk_pwrite_all(eseg->fd, sc.buf, SHARDLOG_BLOCK_BYTES,
						      blk - eseg->start);
			}
		}
		/* Always, cheaply: stale frames may lie beyond a long run of zeros that
		 * measure_garbage does not read past. */
		if (ret == 0)
			ret = zero_range(eseg->fd, round_up(e, SHARDLOG_BLOCK_BYTES) - eseg->start,
					 seg_end - eseg->start, dropped > 0, sc.buf, sc.buf_bytes);
		if (ret == 0 && fdatasync(eseg->fd) != 0)
			ret = -errno;
		if (ret < 0) {
			set_err(err, err_len, "shardlog: cannot truncate %s at %" PRIu64 ": %s",
				log->dir_path, e, strerror(-ret));
			goto out_free;
		}
	}
	uint32_t keep = log->segment_count;
	while (keep > 0 && log->segments[keep - 1].start > e)
		keep--;
	for (uint32_t i = keep; i < log->segment_count; i++) {
		struct shardlog_segment *s = &log->segments[i];
		char name[SHARDLOG_SEGMENT_NAME_BYTES];
		shardlog_segment_name(name, s->start);
		uint64_t garbage = measure_garbage(s->fd, 0, s->size, sc.buf, sc.buf_bytes);
		dropped += garbage;
		close(s->fd);
		ret = segidx_unlink(log, s->start);
		if (ret == 0)
			ret = disk_unlink(log->dir_fd, name);
		if (ret < 0) {
			log->segment_count = i;
			set_err(err, err_len, "shardlog: cannot delete %s/%s: %s", log->dir_path,
				name, strerror(-ret));
			goto out_free;
		}
		if (garbage == 0) /* a segment prepared ahead of a roll that never came */
			LOG_INFO("shardlog: shard %u: deleted empty segment %s after the end of "
				 "the log",
				 log->shard_id, name);
		else
			LOG_WARN("shardlog: shard %u: deleted segment %s after the end of the log",
				 log->shard_id, name);
	}
	log->segment_count = keep;
	log->stats.recovery_bytes_dropped = dropped;
	/* The segment holding the end is written again: an index file of it (from before a
	 * crash that cut its frames short) would be stale. The closed segments the scan
	 * passed get theirs (again) from the frames just scanned. */
	eseg = seg_find(log, e);
	if (eseg) {
		ret = segidx_unlink(log, eseg->start);
		if (ret < 0) {
			set_err(err, err_len,
				"shardlog: cannot delete the index of %s at %" PRIu64 ": %s",
				log->dir_path, eseg->start, strerror(-ret));
			goto out_free;
		}
	}
	segidx_write_closed(log, eseg ? eseg->start : e);
	if (dropped > 0 || strcmp(end.why, "end") != 0)
		LOG_WARN("shardlog: shard %u: log ends at position %" PRIu64
			 " (%s); dropped %" PRIu64 " bytes after it",
			 log->shard_id, e, end.why, dropped);

	/* The tail, and the segment it lies in (maybe one still to be created). */
	log->tail = log->written = log->synced = log->cache_start = e;
	eseg = seg_find(log, e);
	if (eseg) {
		log->tail_seg_start = eseg->start;
		log->tail_seg_end = eseg->start + eseg->size;
	} else {
		log->tail_seg_start = e;
		log->tail_seg_end = e + log->segment_bytes;
	}
	if (log->tail_seg_end - e < FRAME_HEADER_BYTES) {
		/* a sliver the writer never leaves: skip it (it reads as zeros) */
		tail_advance(log, log->tail_seg_end);
		log->written = log->synced = log->cache_start = log->tail;
	}
	uint64_t blk = round_down(log->tail, SHARDLOG_BLOCK_BYTES);
	if (blk < log->tail) {
		eseg = seg_find(log, blk);
		ASSERT(eseg);
		ret = disk_pread_all(eseg->fd, ring_at(log, blk), SHARDLOG_BLOCK_BYTES,
				     blk - eseg->start);
		if (ret < 0) {
			set_err(err, err_len, "shardlog: cannot read the tail block of %s: %s",
				log->dir_path, strerror(-ret));
			goto out_free;
		}
		memset(ring_at(log, log->tail), 0,
		       round_up(log->tail, SHARDLOG_BLOCK_BYTES) - log->tail);
	}
	/* A ring of another size than the last run's may put a boundary 1..39 bytes
	 * ahead: one padding frame crosses it (within a segment, harmless on disk). */
	uint64_t ring_bound = (log->tail | log->staging_mask) + 1;
	uint64_t gap = ring_bound - log->tail;
	if (gap < FRAME_HEADER_BYTES && ring_bound < log->tail_seg_end) {
		uint8_t tmp[FRAME_HEADER_BYTES + 64];
		uint32_t plen = (uint32_t)gap + 64;
		frame_pad(tmp, plen);
		memcpy(ring_at(log, log->tail), tmp, gap);
		memcpy(ring_at(log, ring_bound), tmp + gap, plen - gap);
		log->stats.pad_frames++;
		log->stats.pad_bytes += plen;
		tail_advance(log, log->tail + plen);
	}

	for (uint32_t i = 0; i < log->parts_count; i++) {
		struct shardlog_partition *p = &log->parts[i];
		if (p->pending_start >= 0) {
			if (p->pending_start > p->index.next_offset) {
				index_destroy(&p->index);
				index_init(&p->index, p->pending_start);
			} else {
				index_trim_to_offset(&p->index, p->pending_start);
			}
			p->pending_start = -1;
		}
		p->known = true;
		p->high_watermark = p->index.next_offset;
	}
	LOG_INFO("shardlog: shard %u: opened %s: %u segments, log %" PRIu64 "..%" PRIu64
		 ", %u partitions, checkpoint %s, %" PRIu64 " frames scanned from %" PRIu64
		 ", %" PRIu64 " of unknown partitions skipped, segment index files: %" PRIu64
		 " loaded, %" PRIu64 " rebuilt",
		 log->shard_id, log->dir_path, log->segment_count, first, log->tail,
		 log->parts_count, have_ckpt ? "loaded" : why, log->stats.recovery_frames, from,
		 log->stats.recovery_skipped, log->stats.index_files_loaded,
		 log->stats.index_files_rebuilt);
	ret = 0;
out_free:
	free(sc.buf);
	return ret;
}

/* ----------------------------------------------------------------------------------- */
/* open, drain, close */

static void shardlog_on_orphan(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	LOG_WARN("shardlog: disk completion (kind %u, res %d) after the log was closed",
		 (unsigned)loop_udata_kind(cqe->user_data), cqe->res);
}

/* Takes the flush hook off the loop. */
static void unhook(struct shardlog *log)
{
	int ret = loop_remove_hook(log->loop, shardlog_flush, log);
	ASSERT(ret == 0);
}

static void shardlog_free(struct shardlog *log)
{
	for (uint32_t i = 0; i < log->segment_count; i++)
		if (log->segments[i].fd >= 0)
			close(log->segments[i].fd);
	if (log->parts)
		for (uint32_t i = 0; i < log->parts_count; i++)
			index_destroy(&log->parts[i].index);
	if (log->spare.fd >= 0)
		close(log->spare.fd);
	if (log->meta.fd >= 0)
		close(log->meta.fd);
	free(log->meta.buf);
	if (log->dir_fd >= 0)
		close(log->dir_fd);
	free(log->segments);
	free(log->seg_entries.v);
	free(log->parts);
	free(log->table);
	free(log->waiters);
	free(log->pin_pos);
	free(log->pin_dense);
	free(log->pin_where);
	free(log->pin_free);
	free(log);
}

int shardlog_open(struct shardlog **out, const struct shardlog_options *opts,
		  const uint32_t *partition_ids, uint32_t partition_count, char *err,
		  size_t err_len)
{
	uint64_t staging =
	    opts->staging_bytes ? opts->staging_bytes : LIMITS_SHARDLOG_STAGING_BYTES;
	uint64_t segment =
	    opts->segment_bytes ? opts->segment_bytes : LIMITS_SHARDLOG_SEGMENT_BYTES;
	uint32_t parts_max =
	    opts->partitions_max ? opts->partitions_max : LIMITS_SHARDLOG_PARTITIONS_MAX;
	if (!opts->data_dir || !opts->loop || !opts->pool || opts->shard_id >= LIMITS_SHARDS_MAX ||
	    staging < LIMITS_SHARDLOG_STAGING_BYTES_MIN || (staging & (staging - 1)) != 0 ||
	    segment % staging != 0 || staging > LIMITS_POOL_REGION_BYTES_MAX ||
	    (opts->fsync != SHARDLOG_FSYNC_ALWAYS && opts->fsync != SHARDLOG_FSYNC_NEVER) ||
	    parts_max > (1u << 30)) {
		set_err(err, err_len,
			"shardlog: bad options: staging_bytes must be a power of two >= %u, "
			"segment_bytes a multiple of it, shard id < %u",
			LIMITS_SHARDLOG_STAGING_BYTES_MIN, LIMITS_SHARDS_MAX);
		return -EINVAL;
	}
	uint32_t frame_max =
	    (uint32_t)min_u64(LIMITS_FRAME_BYTES_MAX, staging / 2 - SHARDLOG_BLOCK_BYTES);
	struct pool *pool = opts->pool;
	if (pool->buf_index == POOL_BUF_INDEX_NONE || pool->chunk_bytes < SHARDLOG_BLOCK_BYTES ||
	    ((uint64_t)frame_max + 2 * SHARDLOG_BLOCK_BYTES) / pool->chunk_bytes + 1 >
		LIMITS_SHARDLOG_READ_CHUNKS_MAX) {
		set_err(err, err_len,
			"shardlog: the pool must be registered with the loop's ring and have "
			"chunks of at least %" PRIu64 " bytes",
			((uint64_t)frame_max + 2 * SHARDLOG_BLOCK_BYTES) /
			    (LIMITS_SHARDLOG_READ_CHUNKS_MAX - 1));
		return -EINVAL;
	}

	struct shardlog *log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->dir_fd = -1;
	log->spare.fd = -1;
	log->meta.fd = -1;
	log->shard_id = opts->shard_id;
	log->segment_bytes = segment;
	log->staging_bytes = staging;
	log->staging_mask = staging - 1;
	log->frame_bytes_max = frame_max;
	log->fsync = opts->fsync;
	log->loop = opts->loop;
	log->hooks = opts->hooks;
	log->pool = pool;
	log->pin_min = UINT64_MAX;
	log->parts_max = parts_max;
	uint32_t table_size = 1;
	while (table_size < 2 * parts_max)
		table_size <<= 1;
	log->table_mask = table_size - 1;
	char dname[SHARDLOG_DIR_NAME_BYTES];
	int ret;
	int n = snprintf(log->dir_path, sizeof(log->dir_path), "%s/%s", opts->data_dir,
			 shardlog_dir_name(dname, opts->shard_id));
	if (n < 0 || (size_t)n >= sizeof(log->dir_path)) {
		set_err(err, err_len, "shardlog: data directory path too long");
		ret = -ENAMETOOLONG;
		goto out_free;
	}

	log->segments = calloc(LIMITS_SHARDLOG_SEGMENTS_MAX, sizeof(*log->segments));
	log->parts = calloc(parts_max, sizeof(*log->parts));
	log->table = calloc(table_size, sizeof(*log->table));
	log->waiters = calloc(LIMITS_SHARDLOG_APPENDS_WAITING_MAX, sizeof(*log->waiters));
	log->pin_pos = calloc(LIMITS_SHARDLOG_PINS_MAX, sizeof(*log->pin_pos));
	log->pin_dense = calloc(LIMITS_SHARDLOG_PINS_MAX, sizeof(*log->pin_dense));
	log->pin_where = calloc(LIMITS_SHARDLOG_PINS_MAX, sizeof(*log->pin_where));
	log->pin_free = calloc(LIMITS_SHARDLOG_PINS_MAX, sizeof(*log->pin_free));
	if (!log->segments || !log->parts || !log->table || !log->waiters || !log->pin_pos ||
	    !log->pin_dense || !log->pin_where || !log->pin_free) {
		set_err(err, err_len, "shardlog: out of memory");
		ret = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = 0; i < LIMITS_SHARDLOG_PINS_MAX; i++)
		log->pin_free[i] = LIMITS_SHARDLOG_PINS_MAX - 1 - i;
	log->pin_free_count = LIMITS_SHARDLOG_PINS_MAX;

	for (uint32_t i = 0; i < partition_count; i++) {
		ret = part_add(log, partition_ids[i]);
		if (ret < 0) {
			set_err(err, err_len, "shardlog: cannot register partition %u: %s",
				partition_ids[i],
				ret == -ENOSPC ? "more than partitions_max" : strerror(-ret));
			goto out_free;
		}
	}

	ret = disk_open_dir(log->dir_path, true, &log->dir_fd);
	if (ret < 0) {
		set_err(err, err_len, "shardlog: cannot open %s: %s", log->dir_path,
			strerror(-ret));
		goto out_free;
	}
	log->staging = pool_carve(pool, staging);
	if (!log->staging) {
		set_err(err, err_len,
			"shardlog: cannot carve a %" PRIu64 "-byte staging ring from the pool "
			"(too small, or chunks already handed out)",
			staging);
		ret = -ENOMEM;
		goto out_free;
	}
	ret = shardlog_recover(log, err, err_len);
	if (ret < 0)
		goto out_free;
	ret = loop_add_hook(log->loop, shardlog_flush, log);
	if (ret < 0) {
		set_err(err, err_len, "shardlog: the loop has no free before-wait hook");
		goto out_free;
	}
	loop_on(log->loop, LOOP_KIND_DISK_WRITE, shardlog_on_write, log);
	loop_on(log->loop, LOOP_KIND_DISK_SYNC, shardlog_on_sync, log);
	loop_on(log->loop, LOOP_KIND_DISK_READ, shardlog_on_read, log);
	loop_on(log->loop, LOOP_KIND_DISK_META, shardlog_on_meta, log);
	*out = log;
	return 0;

out_free:
	shardlog_free(log);
	return ret;
}

static bool drained(const struct shardlog *log)
{
	return !log->write_inflight && log->syncs_inflight == 0 && log->reads_inflight == 0 &&
	       log->spare.ops == 0 && log->meta.ops == 0 &&
	       (log->failed || (log->written >= log->tail && log->w_head == log->w_tail &&
				!log->meta.want && log->meta.phase == META_IDLE));
}

int shardlog_drain(struct shardlog *log)
{
	for (;;) {
		waiters_apply_written(log);
		waiters_release(log);
		advance_notify(log);
		if (drained(log))
			return log->failed;
		shardlog_flush(log, log->loop);
		if (!log->write_inflight && log->syncs_inflight == 0 && log->reads_inflight == 0 &&
		    log->spare.ops == 0 && log->meta.ops == 0) {
			/* Nothing in flight and nothing to submit: only a failure gets here. */
			ASSERT(log->failed || drained(log));
			continue;
		}
		int ret = loop_run_once(log->loop, true);
		if (ret < 0)
			return ret;
	}
}

int shardlog_close(struct shardlog *log)
{
	int ret = shardlog_drain(log);
	ASSERT(log->pin_count == 0);
	if (log->spare.fd >= 0 && log->spare.ops == 0) {
		/* Prepared and not taken: the next open would find an empty last segment
		 * (harmless, see recovery), but it is 1 GiB nobody asked for yet. */
		char name[SHARDLOG_SEGMENT_NAME_BYTES];
		shardlog_segment_name(name, log->spare.start);
		close(log->spare.fd);
		log->spare.fd = -1;
		(void)disk_unlink(log->dir_fd, name);
	}
	if (ret == 0 && !log->failed)
		ret = sync_below(log, log->written);
	if (ret == 0 && !log->failed)
		ret = shardlog_checkpoint(log);
	unhook(log);
	loop_on(log->loop, LOOP_KIND_DISK_WRITE, shardlog_on_orphan, NULL);
	loop_on(log->loop, LOOP_KIND_DISK_SYNC, shardlog_on_orphan, NULL);
	loop_on(log->loop, LOOP_KIND_DISK_READ, shardlog_on_orphan, NULL);
	loop_on(log->loop, LOOP_KIND_DISK_META, shardlog_on_orphan, NULL);
	if (ret == 0)
		LOG_INFO("shardlog: shard %u: closed %s at position %" PRIu64, log->shard_id,
			 log->dir_path, log->tail);
	const struct shardlog_stats *st = &log->stats;
	LOG_INFO("shardlog: shard %u stats: appends=%" PRIu64 " append_bytes=%" PRIu64
		 " backpressure=%" PRIu64 " writes=%" PRIu64 " write_bytes=%" PRIu64
		 " write_avg=%" PRIu64 " write_max=%" PRIu64 " fsyncs=%" PRIu64
		 " segments_created=%" PRIu64 " (prepared ahead %" PRIu64 ") io_errors=%" PRIu64,
		 log->shard_id, st->appends, st->append_bytes, st->append_backpressure,
		 st->write_ops, st->write_bytes,
		 st->write_ops ? st->write_bytes / st->write_ops : 0, st->write_bytes_max,
		 st->fsyncs, st->segments_created, st->segments_prepared, st->io_errors);
	if (ret == 0 && log->failed)
		ret = log->failed;
	shardlog_free(log);
	return ret;
}

void shardlog_stats(const struct shardlog *log, struct shardlog_stats *out)
{
	*out = log->stats;
	out->tail_position = log->tail;
	out->written_position = log->written;
	out->synced_position = log->synced;
	out->log_start_position = log->segment_count ? log->segments[0].start : log->tail;
	out->cache_start_position = log->cache_start;
	out->partitions = log->parts_count;
	out->segments = log->segment_count;
	uint64_t mem = 0;
	for (uint32_t i = 0; i < log->parts_count; i++)
		mem += index_memory_bytes(&log->parts[i].index);
	mem += (uint64_t)log->seg_entries.cap * sizeof(*log->seg_entries.v);
	out->index_memory_bytes = mem;
}
