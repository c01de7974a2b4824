/*
 * core/shardlog.h: a shard's log (DESIGN §3): the one append-only log shared by every
 * partition the shard owns, on O_DIRECT segment files written with io_uring group
 * commit, with a per-partition index and high watermark, reads served from the staging
 * ring (the tail cache) or from disk with READ_FIXED into pool chunks, crash recovery
 * from a checkpoint plus a forward scan, and retention by time and bytes. It owns the
 * files under DATA_DIR/shard-NNN/ and runs on its shard's loop and pool; it does not
 * parse requests, validate batch CRCs (the Produce path does, with batch_validate),
 * keep topic metadata (core/meta) or producer-id state. Single-threaded: every call
 * comes from the thread that owns the loop.
 *
 * Files, in DATA_DIR/shard-NNN/ (NNN = shard id, %03u):
 *   SSSSSSSSSSSSSSSSSSSS.log  a segment: its start position in the shard log as 20
 *                             decimal digits; preallocated (fallocate), O_DIRECT.
 *                             Positions run on across segments without gaps.
 *   SSSSSSSSSSSSSSSSSSSS.index the index of a closed segment (format below), the
 *                             same start in its name; written once, atomically
 *                             (disk_write_atomic), when the segment fills (at the
 *                             roll, after the segment's data was fdatasynced);
 *                             derived: a missing or damaged one is rebuilt from the
 *                             segment's frames at open. Deleted with its segment.
 *   checkpoint                small per-partition state and the hooks' state
 *                             (format below), replaced atomically (disk_write_atomic).
 *
 * Layout rules (what the writer guarantees, what recovery and tools may rely on):
 *  - Frames (core/frame.h) are packed back to back. Position p lives at staging-ring
 *    offset p % staging_bytes. No frame straddles a staging-ring boundary (a multiple
 *    of staging_bytes) or a segment end: when the next frame does not fit before the
 *    next boundary, or would leave 1..39 bytes there (too few for a frame header), a
 *    padding frame fills the space up to the boundary. Space cost: under one frame
 *    (plus 40 bytes) per boundary, that is at most the largest frame / staging_bytes
 *    of the log (25 % in the worst case of back-to-back 16 MiB frames in the default
 *    64 MiB ring, under 0.03 % for 16 KiB batches). Recovery with a different staging_bytes may
 *    find the tail 1..39 bytes before a new ring boundary; it then writes one padding
 *    frame that crosses that boundary (in memory in two pieces; on disk it is
 *    contiguous, as ring boundaries that are not segment ends mean nothing on disk).
 *  - Writes are whole 4 KiB blocks (SHARDLOG_BLOCK_BYTES) at block-aligned positions;
 *    the bytes after the last frame in the last block are zeros; the partial tail
 *    block stays in memory and is rewritten by the next flush.
 *  - Each index entry's position is its frame's start, its length the frame_len; the
 *    batch bytes are [position + FRAME_HEADER_BYTES, position + length).
 *
 * Checkpoint file (little-endian, all of it covered by its CRC):
 *
 *   offset size field
 *  +------+----+---------------------------------------------------------------+
 *  |    0 |  4 | magic SHARDLOG_CHECKPOINT_MAGIC ("SLCP")                      |
 *  |    4 |  4 | version SHARDLOG_CHECKPOINT_VERSION (2; 1 is still read)      |
 *  |    8 |  4 | crc32c of bytes [12, file end)                                |
 *  |   12 |  4 | shard id                                                      |
 *  |   16 |  8 | covered position C: a segment start; recovery rebuilds the    |
 *  |      |    | indexes below C from the segment index files and scans the    |
 *  |      |    | log from C                                                    |
 *  |   24 |  4 | partition count                                               |
 *  |   28 |  4 | E: bytes of the hooks' state at the end (0 when none; files  |
 *  |      |    | of builds before the hooks have 0 here)                       |
 *  |   32 |  8 | file length in bytes                                          |
 *  |   40 |  . | partition records, each 24 bytes:                             |
 *  |      |    |   u32 partition_id | u32 entry_count (0 in version 2) |       |
 *  |      |    |   i64 log_start_offset | i64 next_offset at C |             |
 *  |      |    |   version 1 only: then entry_count 32-byte entries:          |
 *  |      |    |   i64 base_offset | u64 position | u32 length |               |
 *  |      |    |   i32 last_offset_delta | i64 max_timestamp                   |
 *  |  end |  E | the state shardlog_hooks.save wrote (opaque to the log)       |
 *  |   -E |    |                                                               |
 *  +------+----+---------------------------------------------------------------+
 *
 * A version 2 checkpoint is O(partitions) bytes (plus the hooks' state), whatever the
 * length of the log. A version 1 checkpoint (the entries of every index below C, written
 * by older builds, which had no index files) is still loaded as it was, the index files
 * not read; the next roll or close writes a version 2 one, and the open after that
 * rebuilds (once, logged) the index files of the segments below the old C by scanning
 * them.
 *
 * Segment index file SSSSSSSSSSSSSSSSSSSS.index (little-endian, CRC over all of it):
 *
 *   offset size field
 *  +------+----+---------------------------------------------------------------+
 *  |    0 |  4 | magic SHARDLOG_INDEX_MAGIC ("SLIX")                           |
 *  |    4 |  4 | version SHARDLOG_INDEX_VERSION (1)                            |
 *  |    8 |  4 | crc32c of bytes [12, file end)                                |
 *  |   12 |  4 | shard id                                                      |
 *  |   16 |  8 | segment start (= the number in both file names)              |
 *  |   24 |  8 | segment size in bytes                                         |
 *  |   32 |  4 | N: entry count                                                |
 *  |   36 |  4 | 0 (reserved)                                                  |
 *  |   40 | 40N| N entries, one per non-padding frame of the segment, in       |
 *  |      |    | position order, each 40 bytes:                                |
 *  |      |    |   +0 u32 partition_id | +4 u32 length (frame_len) |           |
 *  |      |    |   +8 i64 base_offset | +16 u64 position (shard-log) |         |
 *  |      |    |   +24 i32 last_offset_delta | +28 u32 0 (reserved) |         |
 *  |      |    |   +32 i64 max_timestamp                                      |
 *  +------+----+---------------------------------------------------------------+
 *
 * It lists every frame of the segment (those of deleted partitions and those already
 * trimmed by retention included), so it is the segment's frame list, checkable
 * against the frames (sluice-logdump --verify).
 *
 * C is always the start of the segment holding the write position when the
 * checkpoint is written (everything below C was fdatasynced first), so the active
 * segment is always scanned and CRC-checked on open: a damaged frame in it is found,
 * at the cost of reading at most one segment. Damage inside older, checkpointed
 * segments is not looked for at open (as Kafka recovers only after its recovery
 * point) unless their index file must be rebuilt; sluice-logdump --verify finds it.
 * The roll-over never blocks the shard thread: the next segment is created and
 * preallocated ahead (once the tail is half-way through the last one: FALLOCATE, FSYNC,
 * FSYNC of the directory through io_uring), and when a segment fills the log takes it
 * at once; then, through io_uring and in this order: fdatasync of the full segment
 * (no write starts meanwhile), its index file (from the entries the log keeps in memory
 * for the segment being written, 40 bytes per batch of that segment: O(one segment)),
 * then the checkpoint (O(partitions)); each file is temp file + WRITE + FSYNC +
 * RENAMEAT + FSYNC of the directory. When the spare could not be prepared the roll-over
 * creates the segment in line (and logs why). A prepared spare not taken is removed
 * at close. The checkpoint is also written before retention deletes segments, by
 * shardlog_checkpoint() and by shardlog_close().
 *
 * Durability and visibility of an append:
 *  - shardlog_append copies the frame into the staging ring and assigns offsets; the
 *    batch is then in the log's memory (acks=1 may be answered).
 *  - The high watermark (what reads return) passes the batch when the write covering
 *    it completed: from then on it survives a process kill (O_DIRECT).
 *  - The append's callback fires, in append order, when the write completed; for a
 *    durable append with SHARDLOG_FSYNC_ALWAYS only after an fdatasync that started
 *    after that write completed has completed (acks=-1): the one linked to its write,
 *    or an earlier-finishing one covering it. Writes go one at a time and none starts
 *    while an fdatasync runs (group commit: the appends staged meanwhile go in the
 *    next, larger write and its one sync). With SHARDLOG_FSYNC_NEVER durable appends
 *    are released at write completion too.
 *  - A failed write or fdatasync (logged) puts the log in a failed state: every
 *    waiting callback gets the error, later appends return it (-EIO usually), reads of
 *    data below the high watermark go on working. Reopening the log recovers.
 *
 * Recovery, on open: load the checkpoint (a missing, unreadable or inconsistent one is
 * logged and the scan starts at the first segment instead); with a version 2 one,
 * rebuild every partition's index below C from the index files of the segments below
 * C, in order (each checked: magic, version, CRC, shard, segment start and size,
 * entries inside the segment and in position order); a missing or damaged index file
 * is logged and rebuilt by scanning its segment's frames (then rewritten); a damaged
 * frame in such a segment, or index files that do not continue a partition's offsets
 * or do not end at the checkpoint's next offset, make the checkpoint unused (full
 * scan from the first segment, as without one). Then scan frames from C,
 * checking magic, length, CRC, and that each frame's base_offset continues its
 * partition; skip padding frames and frames of partitions not registered (deleted
 * topics). The first frame that fails ends the log: the number of bytes dropped is
 * logged and counted, the rest of that segment is zeroed (and the tail block
 * rewritten), later segments are deleted, so no stale frame can reappear. Without a
 * checkpoint, a partition none of whose frames remain on disk restarts at offset 0
 * (its next offset was only in the checkpoint); each such case is not detectable.
 */
#ifndef SLUICE_CORE_SHARDLOG_H
#define SLUICE_CORE_SHARDLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

struct loop;
struct pool;
struct shardlog;

/* Unit of every segment write and of the staging ring's layout: a 4 KiB block. A
 * file system whose O_DIRECT alignment (disk_direct_align) is larger is refused. */
#define SHARDLOG_BLOCK_BYTES 4096u

#define SHARDLOG_CHECKPOINT_NAME    "checkpoint"
#define SHARDLOG_CHECKPOINT_MAGIC   UINT32_C(0x50434c53) /* "SLCP" as little-endian bytes */
#define SHARDLOG_CHECKPOINT_VERSION 2u
/* The version of checkpoints with every index entry inside, still read. */
#define SHARDLOG_CHECKPOINT_VERSION_V1 1u
#define SHARDLOG_SEGMENT_SUFFIX	       ".log"
/* "shard-NNN", "SSSSSSSSSSSSSSSSSSSS.log" and ".index" with their NUL fit these. */
#define SHARDLOG_DIR_NAME_BYTES	    16u
#define SHARDLOG_SEGMENT_NAME_BYTES 32u

/* Segment index files (format above). */
#define SHARDLOG_INDEX_SUFFIX	    ".index"
#define SHARDLOG_INDEX_MAGIC	    UINT32_C(0x58494c53) /* "SLIX" as little-endian bytes */
#define SHARDLOG_INDEX_VERSION	    1u
#define SHARDLOG_INDEX_HEADER_BYTES 40u
#define SHARDLOG_INDEX_ENTRY_BYTES  40u

/* Buckets of stats.write_size_log2: bucket i counts writes of [2^(12+i), 2^(13+i))
 * bytes, the last one everything from 2^(12+15) = 128 MiB up. */
#define SHARDLOG_WRITE_SIZE_BUCKETS 16

enum shardlog_fsync {
	SHARDLOG_FSYNC_ALWAYS = 0, /* durable appends wait for a linked fdatasync (default) */
	SHARDLOG_FSYNC_NEVER = 1,  /* no fdatasync on the hot path (benchmarks) */
};

struct batch_header;

/*
 * State kept beside the log and rebuilt with it (core/producers' idempotence state): a
 * module that derives state from the batches it appends hands these to shardlog_open.
 * Every member may be NULL. They run on the log's thread, during shardlog_open
 * (load, recovered_batch) or inside a checkpoint (save_bytes, save).
 */
struct shardlog_hooks {
	/* Recovery: called for every batch the scan keeps (a registered partition's,
	 * padding and skipped frames excluded), in log order, after LOAD ran (when the
	 * checkpoint carried state). H is the batch header as stored; BASE_OFFSET its first
	 * offset. Frames below the checkpoint's covered position are not scanned: their
	 * state must come from LOAD. */
	void (*recovered_batch)(void *ctx, uint32_t partition_id, const struct batch_header *h,
				int64_t base_offset);
	/* Checkpoint: the bytes SAVE will write, at most LIMITS_SHARDLOG_CHECKPOINT_BYTES_MAX
	 * with the rest of the checkpoint (else the checkpoint fails with -EFBIG). */
	size_t (*save_bytes)(void *ctx);
	/* Checkpoint: writes exactly LEN (= save_bytes()) bytes at BUF: the state as of now,
	 * which covers every batch appended so far (written or not). */
	void (*save)(void *ctx, uint8_t *buf, size_t len);
	/* Open: the LEN bytes SAVE wrote into the checkpoint being loaded (not called when it
	 * holds none). Returns 0, or -EBADMSG (the checkpoint is then not used: the scan
	 * starts at the first segment) leaving nothing loaded. */
	int (*load)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx; /* their first argument */
};

struct shardlog_options {
	const char *data_dir;	     /* DATA_DIR; the log lives in DATA_DIR/shard-NNN */
	uint32_t shard_id;	     /* < LIMITS_SHARDS_MAX */
	uint64_t segment_bytes;	     /* size of new segments; 0 = LIMITS_SHARDLOG_SEGMENT_BYTES;
				      * a multiple of staging_bytes */
	uint64_t staging_bytes;	     /* staging ring = tail cache; 0 =
				      * LIMITS_SHARDLOG_STAGING_BYTES; a power of two of at
				      * least LIMITS_SHARDLOG_STAGING_BYTES_MIN, carved from POOL */
	uint32_t partitions_max;     /* partition registry capacity; 0 =
				      * LIMITS_SHARDLOG_PARTITIONS_MAX */
	enum shardlog_fsync fsync;   /* when durable appends are released */
	struct loop *loop;	     /* the shard's loop: one shardlog per loop */
	struct pool *pool;	     /* the shard's pool, registered with LOOP's ring, with no
				      * chunk allocated yet (pool_carve's rule) */
	struct shardlog_hooks hooks; /* state kept beside the log; all NULL for none */
};

/* Counters since open. */
struct shardlog_stats {
	uint64_t appends;	      /* successful shardlog_append calls */
	uint64_t append_bytes;	      /* batch bytes appended */
	uint64_t append_records;      /* records appended */
	uint64_t pad_frames;	      /* padding frames written at ring/segment boundaries */
	uint64_t pad_bytes;	      /* bytes they took */
	uint64_t append_backpressure; /* appends refused with -EAGAIN (ring full, pinned,
				       * or too many appends waiting for their write) */
	uint64_t write_ops;	      /* WRITE_FIXED submitted (one per flush) */
	uint64_t write_bytes;	      /* bytes those writes covered (tail blocks count again) */
	uint64_t write_bytes_max;     /* largest single write */
	uint64_t write_size_log2[SHARDLOG_WRITE_SIZE_BUCKETS]; /* writes by size, see above */
	uint64_t fsyncs;		 /* fdatasyncs submitted (linked or alone) */
	uint64_t io_errors;		 /* failed writes, fdatasyncs and reads */
	uint64_t cache_hits;		 /* reads served from the staging ring */
	uint64_t cache_misses;		 /* reads that went to disk */
	uint64_t read_ops;		 /* READ_FIXED submitted */
	uint64_t read_bytes;		 /* bytes they read */
	uint64_t read_backpressure;	 /* reads refused with -EAGAIN (no pool chunk, no pin) */
	uint64_t segments_created;	 /* segment files created */
	uint64_t segments_prepared;	 /* of them, prepared ahead and taken at the roll
					  * (the rest were created in line: the first, or
					  * after a failed preparation) */
	uint64_t segments_deleted;	 /* segment files deleted by retention */
	uint64_t checkpoints;		 /* checkpoints written */
	uint64_t index_files_written;	 /* segment index files written (rolls, rebuilds) */
	uint64_t index_files_loaded;	 /* segment index files read and used at open */
	uint64_t index_files_rebuilt;	 /* missing or damaged ones rebuilt from frames */
	uint64_t recovery_frames;	 /* frames scanned at open (padding included) */
	uint64_t recovery_skipped;	 /* frames skipped at open: unregistered partitions,
					  * or below a checkpointed log start (retention) */
	uint64_t recovery_bytes_dropped; /* bytes after the end of the log found at open */
	uint64_t tail_position;		 /* shard-log position of the next frame */
	uint64_t written_position;	 /* bytes [0, this) are written (write completed) */
	uint64_t synced_position;	 /* bytes [0, this) are fdatasynced */
	uint64_t log_start_position;	 /* start of the oldest segment */
	uint64_t cache_start_position;	 /* the staging ring holds [this, tail_position) */
	uint64_t index_memory_bytes;	 /* heap bytes of every partition's index */
	uint32_t partitions;		 /* registered partitions */
	uint32_t segments;		 /* segment files */
};

/* One partition's state, as shardlog_partition_info reports it. */
struct shardlog_partition_info {
	int64_t log_start_offset; /* first offset a read may ask for */
	int64_t high_watermark;	  /* reads return offsets below this */
	int64_t next_offset;	  /* the offset the next append gets (log end offset) */
	uint32_t batches;	  /* live batches in the index */
	uint64_t bytes;		  /* their frame bytes */
	int64_t retention_ms;	  /* -1 = unlimited */
	int64_t retention_bytes;  /* -1 = unlimited */
};

/* Called after a write completion (or shardlog_drain) moved the high watermark of one or
 * more partitions, once for all of them; see shardlog_on_advance. */
typedef void (*shardlog_advance_fn)(void *ctx, struct shardlog *log);

/* Called when an append is written (or synced, see above), in append order. STATUS is 0
 * or the negative errno that failed the log; BASE_OFFSET is what shardlog_append
 * returned. It may call shardlog_append, shardlog_read and shardlog_read_release (not
 * shardlog_drain or shardlog_close). */
typedef void (*shardlog_append_fn)(void *ctx, int status, int64_t base_offset);

struct shardlog_read;
/* Called once when an asynchronous (disk) read is complete; RD->status says how. */
typedef void (*shardlog_read_fn)(void *ctx, struct shardlog_read *rd);

/* One READ_FIXED of a disk read: a block-aligned piece of the log into one pool chunk.
 * Its address is the completion's user_data. Private to the log. */
struct shardlog_read_op {
	uint64_t pos;		  /* shard-log position read into chunk[0] */
	uint32_t len;		  /* bytes to read, <= the pool's chunk_bytes */
	uint32_t done;		  /* bytes read so far (short reads are resubmitted) */
	uint8_t *chunk;		  /* the pool chunk */
	struct shardlog_read *rd; /* the read it belongs to */
};

/* A piece of batch bytes. Concatenating a read's slices in order gives whole batches
 * in offset order; a batch is one slice from the cache, one or more from disk. */
struct shardlog_slice {
	const uint8_t *data; /* inside the pool's registered region (staging or a chunk) */
	uint32_t len;	     /* bytes, > 0 */
};

/*
 * The caller-provided result of shardlog_read. The public fields are set by the read;
 * the private ones belong to the log between shardlog_read and shardlog_read_release.
 * Slices stay valid until shardlog_read_release: cache slices are protected by a pin
 * (appends that would overwrite them get -EAGAIN), disk slices live in pool chunks the
 * read owns. The struct must not move while a read is in flight (its address is the
 * completion's user_data) or pinned.
 */
struct shardlog_read {
	struct shardlog_slice slices[LIMITS_SHARDLOG_READ_SLICES_MAX]; /* the batch bytes */
	uint32_t slice_count;					       /* slices filled */
	uint32_t batch_count;					       /* whole batches they hold */
	uint64_t bytes;						       /* sum of slice lengths */
	int64_t first_offset;	  /* base offset of the first batch returned */
	int64_t next_offset;	  /* offset after the last batch returned */
	int64_t high_watermark;	  /* the partition's, when the read started */
	int64_t log_start_offset; /* the partition's, when the read started */
	int status;		  /* 0, or the negative errno the disk read failed with */
	bool from_cache;	  /* served from the staging ring (no I/O) */
	/* private */
	struct shardlog *log;  /* owner while in flight or holding resources */
	shardlog_read_fn done; /* completion of a disk read */
	void *done_ctx;	       /* its first argument */
	uint32_t pin;	       /* pin slot, UINT32_MAX when none */
	uint32_t ops_pending;  /* READ_FIXED not completed yet */
	uint32_t op_count;     /* ops (and pool chunks) held */
	uint32_t partition_id; /* what was asked for */
	struct shardlog_read_op ops[LIMITS_SHARDLOG_READ_CHUNKS_MAX]; /* disk reads */
	uint64_t plan_pos[LIMITS_SHARDLOG_READ_SLICES_MAX]; /* frame start of each batch */
	uint32_t plan_len[LIMITS_SHARDLOG_READ_SLICES_MAX]; /* frame_len of each batch */
};

/* Writes "shard-NNN" into BUF (SHARDLOG_DIR_NAME_BYTES) and returns BUF. */
const char *shardlog_dir_name(char *buf, uint32_t shard_id);

/* Writes the segment file name of a segment starting at START into BUF
 * (SHARDLOG_SEGMENT_NAME_BYTES) and returns BUF. */
const char *shardlog_segment_name(char *buf, uint64_t start);

/* True when NAME is exactly 20 decimal digits + ".log"; *START gets its value. */
bool shardlog_segment_parse(const char *name, uint64_t *start);

/* Writes the index file name of the segment starting at START into BUF
 * (SHARDLOG_SEGMENT_NAME_BYTES) and returns BUF. */
const char *shardlog_index_name(char *buf, uint64_t start);

/* True when NAME is exactly 20 decimal digits + ".index"; *START gets its value. */
bool shardlog_index_parse(const char *name, uint64_t *start);

/* One entry of a segment index file, decoded. */
struct shardlog_index_entry {
	uint64_t position;	   /* frame start (shard-log position) */
	int64_t base_offset;	   /* batch base offset */
	int64_t max_timestamp;	   /* batch max timestamp */
	uint32_t partition_id;	   /* owner */
	uint32_t length;	   /* frame_len */
	int32_t last_offset_delta; /* last offset - base offset */
};

/* Largest index file a segment of SEGMENT_SIZE bytes can have (one entry per smallest
 * frame). */
uint64_t shardlog_index_bytes_max(uint64_t segment_size);

/*
 * Checks the LEN bytes at BUF as the index file of shard SHARD_ID's segment
 * [SEG_START, SEG_START + SEG_SIZE): magic, version, length, CRC, shard id, segment
 * start and size, and every entry (length at least a frame and batch header, inside
 * the segment, in position order without overlap). Returns 0 with *COUNT the entries,
 * or -EBADMSG with *WHY (static text) saying what is wrong.
 */
int shardlog_index_check(const uint8_t *buf, size_t len, uint32_t shard_id, uint64_t seg_start,
			 uint64_t seg_size, uint32_t *count, const char **why);

/* Decodes entry I of the index file at BUF (checked with shardlog_index_check). */
void shardlog_index_entry_get(const uint8_t *buf, uint32_t i, struct shardlog_index_entry *out);

/*
 * Opens (creating it when missing) the log of shard OPTS->shard_id under
 * OPTS->data_dir, owning the PARTITION_COUNT partitions in PARTITION_IDS (frames of
 * others are skipped), and recovers it as described above (synchronous I/O: call it at
 * start-up). Carves the staging ring from OPTS->pool, adds a before-wait hook to
 * OPTS->loop (the group-commit flush) and routes LOOP_KIND_DISK_WRITE, _SYNC and _READ
 * to the log. On success *OUT is the log. Returns 0, or:
 *  -EINVAL  an option out of range (sizes, shard id, unregistered pool, pool chunks
 *           too small for one largest frame in LIMITS_SHARDLOG_READ_CHUNKS_MAX
 *           chunks), a duplicate or padding partition id, a file system needing
 *           O_DIRECT alignment above SHARDLOG_BLOCK_BYTES or refusing O_DIRECT;
 *  -ENOMEM  pool_carve failed (pool too small or already used) or no memory;
 *  -ENOSPC  more partitions than partitions_max, or the loop has no free hook;
 *  -EUCLEAN the segments are not contiguous (a file is missing in the middle) or
 *           overlap: nothing is changed on disk;
 *  other negative errnos from the disk.
 * On failure ERR (ERR_LEN bytes, may be NULL) holds one line naming the cause and
 * nothing stays allocated (the carved staging stays carved: pools never give it back).
 */
int shardlog_open(struct shardlog **out, const struct shardlog_options *opts,
		  const uint32_t *partition_ids, uint32_t partition_count, char *err,
		  size_t err_len);

/*
 * Flushes everything staged, runs the loop until every write, fdatasync and disk read
 * of the log has completed (their callbacks fire), fdatasyncs the active segment,
 * writes the checkpoint, closes the files, takes the hook and handlers off the loop
 * and frees LOG. Every read must have been released (ASSERTed for pinned ones).
 * Returns 0, or the first error (a failed write, sync or checkpoint); LOG is freed in
 * either case.
 */
int shardlog_close(struct shardlog *log);

/*
 * Registers PARTITION_ID (a new partition: its first offset is 0). O(1).
 * Returns 0, -EEXIST when registered, -EINVAL for FRAME_PAD_PARTITION_ID, -ENOSPC when
 * partitions_max are registered, -ENOMEM.
 */
int shardlog_partition_add(struct shardlog *log, uint32_t partition_id);

/* True when PARTITION_ID is registered. O(1). */
bool shardlog_partition_has(const struct shardlog *log, uint32_t partition_id);

/* Fills *OUT for PARTITION_ID. Returns 0 or -ENOENT. */
int shardlog_partition_info(const struct shardlog *log, uint32_t partition_id,
			    struct shardlog_partition_info *out);

/*
 * ListOffsets by time: the first batch of PARTITION_ID below the high watermark whose
 * max_timestamp >= TIMESTAMP_MS (core/index's index_offset_for_timestamp, exact at batch
 * granularity). On 0, *OFFSET is its base offset (raised to the log start offset when the
 * start lies inside it) and *MAX_TIMESTAMP its max_timestamp; a Fetch from *OFFSET returns
 * that batch first. Returns 0, -ENOENT (not registered) or -ENODATA (no such batch; Kafka
 * answers offset -1). O(log batches).
 */
int shardlog_offset_for_timestamp(const struct shardlog *log, uint32_t partition_id,
				  int64_t timestamp_ms, int64_t *offset, int64_t *max_timestamp);

/*
 * Sets FN(CTX, LOG) to be called whenever high watermarks moved: once per write
 * completion (and per shardlog_drain round) that made at least one partition's new
 * batches readable, after that completion's append callbacks ran. It says nothing about
 * which partitions moved (a Fetch long-poll rechecks the ones it waits on with
 * shardlog_partition_info). FN may call shardlog_append, shardlog_read and
 * shardlog_read_release, as append callbacks may. One callback per log: a second call
 * replaces it; FN NULL removes it.
 */
void shardlog_on_advance(struct shardlog *log, shardlog_advance_fn fn, void *ctx);

/* Sets PARTITION_ID's retention (each -1 = unlimited, else >= 0); applied by
 * shardlog_enforce_retention. Returns 0, -ENOENT, or -EINVAL for values below -1. */
int shardlog_set_retention(struct shardlog *log, uint32_t partition_id, int64_t retention_ms,
			   int64_t retention_bytes);

/*
 * Appends the LEN-byte RecordBatch v2 at BATCH to PARTITION_ID: copies it behind a
 * frame header into the staging ring, with baseOffset rewritten to the partition's
 * next offset (the batch CRC stays valid: baseOffset is outside it), and appends its
 * index entry. The batch must have been validated (batch_validate); only its header is
 * parsed here, and its crc field is trusted: the frame CRC is derived from it
 * (frame_seal_tail) instead of a second pass over the bytes, so a batch whose crc does
 * not match its bytes would make a frame that recovery rejects (debug builds ASSERT it). DONE (may
 * be NULL) is called with CTX when the batch is on disk (durable: and synced), see the top of this
 * file. Returns the batch's base offset
 * (>= 0), or, with nothing appended and DONE never called:
 *  -ENOENT   PARTITION_ID is not registered;
 *  -EINVAL   LEN < BATCH_HEADER_BYTES, batch_parse fails, batchLength + 12 != LEN,
 *            recordCount <= 0, lastOffsetDelta < recordCount - 1;
 *  -EMSGSIZE the frame (LEN + FRAME_HEADER_BYTES) is larger than LIMITS_FRAME_BYTES_MAX
 *            or than this log's largest frame, staging_bytes / 2 - SHARDLOG_BLOCK_BYTES
 *            (so that a frame, the padding before it and an unflushed block always fit);
 *  -EAGAIN   backpressure (counted): the ring has no room because unflushed bytes or
 *            pinned reads occupy it, or LIMITS_SHARDLOG_APPENDS_WAITING_MAX appends
 *            wait for their write; retry after the loop turned;
 *  the log's failure errno (e.g. -EIO) after a write or sync failed.
 */
int64_t shardlog_append(struct shardlog *log, uint32_t partition_id, const void *batch,
			uint32_t len, bool durable, shardlog_append_fn done, void *ctx);

/*
 * A durability barrier: DONE(CTX, status, -1) is called once everything appended so far
 * is on disk as a durable append would be (written, and synced with fsync always), in
 * order with the append callbacks (after those of earlier appends). For an answer that
 * depends on earlier appends without appending (an idempotent producer's duplicate
 * under acks=-1). Returns 0 when DONE will be called (from the loop; a sync is asked
 * for when needed), 1 when everything is durable already (DONE is not called), or,
 * with DONE never called, -EAGAIN (LIMITS_SHARDLOG_APPENDS_WAITING_MAX appends wait;
 * counted as backpressure) or the log's failure errno.
 */
int shardlog_barrier(struct shardlog *log, shardlog_append_fn done, void *ctx);

/*
 * Reads PARTITION_ID from OFFSET: whole batches in offset order, starting with the one
 * containing OFFSET (so the first may start below it, as in Kafka), while their total
 * stays within MAX_BYTES, but always at least one whole batch (even a larger one), all
 * below the high watermark, at most LIMITS_SHARDLOG_READ_SLICES_MAX slices; a disk read
 * also stops at LIMITS_SHARDLOG_READ_CHUNKS_MAX or the pool's free chunks. Batch bytes
 * only (no frame headers), with the baseOffset the log assigned. RD must not hold an
 * unreleased read; it is overwritten. Returns:
 *  0            served from the staging ring: RD's slices are ready and pinned;
 *  -EINPROGRESS disk reads (READ_FIXED into pool chunks) were queued; DONE(CTX, RD)
 *               is called once from the loop when they complete (pass a DONE: it is
 *               the only signal), with RD->status 0 (slices ready; each frame read
 *               back was checked against the index and its CRC) or the error (-EIO
 *               for a frame that does not match);
 *  -ERANGE      OFFSET is below the log start offset or above the next offset
 *               (Kafka's OFFSET_OUT_OF_RANGE);
 *  -ENODATA     nothing to return yet: high watermark <= OFFSET <= next offset (a
 *               Fetch long-polls);
 *  -ENOENT      PARTITION_ID is not registered;
 *  -EAGAIN      backpressure (counted): no free pool chunk for the first batch, or
 *               LIMITS_SHARDLOG_PINS_MAX reads hold cache pins.
 * After 0 or -EINPROGRESS (once DONE ran) the caller must call shardlog_read_release;
 * after the other results RD holds nothing and releasing it is a harmless no-op.
 */
int shardlog_read(struct shardlog *log, uint32_t partition_id, int64_t offset, uint32_t max_bytes,
		  struct shardlog_read *rd, shardlog_read_fn done, void *ctx);

/* Drops RD's pin and gives its pool chunks back; its slices become invalid. RD must
 * not be in flight (ASSERTed). Safe to call twice. */
void shardlog_read_release(struct shardlog *log, struct shardlog_read *rd);

/*
 * Retention at NOW_MS (ms since the epoch). Per partition, among batches below the
 * high watermark: drops from the front every batch whose max_timestamp is older than
 * NOW_MS - retention_ms, then drops the oldest batches while the partition holds more
 * than retention_bytes frame bytes; the log start offset moves to the next batch.
 * Then, per shard, deletes every whole oldest segment that no partition's live batch
 * lies in (never the segment holding the write position, and not while disk reads are
 * in flight), with its index file (unlinked first), writing a checkpoint first so the
 * partitions' next offsets survive.
 * Returns the number of segments deleted (>= 0) or a negative errno (checkpoint or
 * unlink failure; what was trimmed in memory stays trimmed).
 */
int shardlog_enforce_retention(struct shardlog *log, int64_t now_ms);

/*
 * Writes the checkpoint now (synchronously), covering up to the start of the segment
 * that holds the write position, after fdatasyncing what lies below it. Returns 0,
 * -EBUSY while a roll-over's checkpoint is being written (nothing done; retention then
 * waits for its next check), or a negative errno (logged; the previous checkpoint
 * stays in place).
 */
int shardlog_checkpoint(struct shardlog *log);

/*
 * Runs LOG's loop until everything appended so far is written (and, for durable
 * appends with fsync always, synced) and no disk read is in flight, so every
 * callback due has run. For tests, tools and shutdown. Returns 0, the log's failure
 * errno, or the loop's error.
 */
int shardlog_drain(struct shardlog *log);

/* Copies the counters into *OUT. */
void shardlog_stats(const struct shardlog *log, struct shardlog_stats *out);

#endif
