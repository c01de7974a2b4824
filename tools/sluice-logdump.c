/*
 * tools/sluice-logdump.c: inspects and verifies the shard logs of a sluice data
 * directory (DESIGN §3, core/shardlog.h) without the broker: per shard it lists the
 * segment files (name, start position, size, how far frames reach in each, the entries
 * of each closed segment's index file), the checkpoint (covered position, partitions,
 * entries of a version 1 one), and the partitions found by a
 * scan of every frame (offset range, batches, records, bytes); with --frames it prints
 * every frame. With --verify it also checks every frame of every segment (magic, length,
 * frame CRC32C, and the Kafka RecordBatch inside with batch_validate, whose header must
 * agree with the frame's), each partition's offset continuity, that the segments follow
 * each other, that the bytes after the end of the log are zeros (the preallocated tail,
 * which is how a log ends, as opposed to damage: a hole or stale data), and that the
 * checkpoint is sound and agrees with the frames, and that each segment index file is
 * sound (shardlog_index_check) and lists exactly its segment's frames (an index file
 * without its segment is an error too; a missing one is not: the broker rebuilds it).
 * Every error is one line naming the
 * file and the position, e.g. "shard-000/00000000000000000000.log: position 123456
 * (file offset 123456): bad crc". It reads with plain buffered pread, opens everything
 * read-only, takes no lock and never modifies anything, so it may run beside a live
 * broker (it then sees a snapshot that may end in a write in progress). It does not
 * repair (opening the log in the broker does), decompress or print record contents.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/crc32c.h"
#include "core/frame.h"
#include "core/limits.h"
#include "core/shardlog.h"
#include "io/disk.h"

/* Exit statuses. */
#define DUMP_EXIT_OK	 0 /* everything read, no error found */
#define DUMP_EXIT_ERRORS 1 /* errors found in the data (each printed) */
#define DUMP_EXIT_USAGE	 2 /* bad arguments, or the data directory cannot be read */

/* Bytes read per pread while scanning; the window grows to hold a larger frame. */
#define DUMP_WINDOW_BYTES     LIMITS_SHARDLOG_SCAN_BYTES
#define DUMP_WINDOW_BYTES_MAX (LIMITS_FRAME_BYTES_MAX + DUMP_WINDOW_BYTES)
/* Errors printed per shard before the rest are only counted. */
#define DUMP_ERRORS_PRINTED_MAX 1000u
/* Checkpoint fixed part, partition record and entry sizes (core/shardlog.h). */
#define DUMP_CKPT_HEADER_BYTES	  40u
#define DUMP_CKPT_PARTITION_BYTES 24u
#define DUMP_CKPT_ENTRY_BYTES	  32u
/* Digits of a shard directory name: "shard-" and at least three digits. */
#define DUMP_SHARD_PREFIX "shard-"

struct options {
	const char *data_dir; /* DATA_DIR */
	int64_t shard;	      /* only this shard, or -1 for all */
	bool verify;	      /* --verify */
	bool frames;	      /* --frames */
	bool has_partition;   /* --partition given */
	uint32_t partition;   /* its id */
};

/* What the scan learned about one partition. */
struct part {
	uint32_t id;		 /* partition id */
	bool used;		 /* slot taken */
	bool seen;		 /* a frame of it was found */
	bool in_ckpt;		 /* the checkpoint has a record for it */
	bool ckpt_next_checked;	 /* its first frame at or above the covered position met */
	int64_t first_offset;	 /* base offset of its first frame */
	int64_t next_offset;	 /* last offset of its last frame + 1 */
	uint64_t batches;	 /* frames */
	uint64_t records;	 /* records in them */
	uint64_t bytes;		 /* frame bytes */
	uint64_t first_position; /* position of its first frame */
	uint64_t last_position;	 /* position of its last frame */
	int64_t max_timestamp;	 /* largest max_timestamp */
	uint32_t ckpt_entries;	 /* checkpoint: entries below the covered position */
	int64_t ckpt_log_start;	 /* checkpoint: log start offset */
	int64_t ckpt_next;	 /* checkpoint: next offset at the covered position */
};

/* A checkpoint entry, for the cross-check against frames. */
struct ckpt_entry {
	uint64_t position;	   /* frame start */
	int64_t base_offset;	   /* batch base offset */
	uint32_t length;	   /* frame length */
	uint32_t partition_id;	   /* owner */
	int32_t last_offset_delta; /* last offset - base */
	int64_t max_timestamp;	   /* batch max timestamp */
};

struct segment {
	char name[SHARDLOG_SEGMENT_NAME_BYTES];	      /* file name */
	char index_name[SHARDLOG_SEGMENT_NAME_BYTES]; /* its index file's name */
	bool has_index;				      /* the index file exists */
	bool index_bad;				      /* and it failed its check */
	uint32_t index_entries;			      /* its entries, when sound */
	uint64_t start;				      /* position of its first byte */
	uint64_t size;				      /* file size */
	uint64_t extent; /* bytes from its start to the end of its last frame */
	uint64_t frames; /* frames in it (padding included) */
};

/* One shard being dumped. */
struct shard {
	const struct options *opt;	    /* what to print and check */
	char name[SHARDLOG_DIR_NAME_BYTES]; /* "shard-NNN" */
	uint32_t id;			    /* NNN */
	int dir_fd;			    /* its directory */
	struct segment *segments;	    /* sorted by start */
	uint32_t segment_count;		    /* entries of segments */
	struct part *parts;  /* open-addressing table, part_cap slots, at most half full */
	uint32_t part_cap;   /* slots of parts (a power of two) */
	uint32_t part_count; /* partitions in it */
	/* checkpoint */
	bool ckpt_present;	  /* a checkpoint file exists */
	bool ckpt_valid;	  /* and it parsed */
	uint64_t ckpt_cover;	  /* covered position */
	uint64_t ckpt_bytes;	  /* file size */
	uint32_t ckpt_partitions; /* partition records */
	struct ckpt_entry *ckpt;  /* its entries, sorted by position */
	uint64_t ckpt_count;	  /* entries */
	uint64_t ckpt_next_check; /* next entry to meet in the scan */
	/* index file of the segment being scanned (--verify) */
	struct shardlog_index_entry *ix; /* its entries, position order */
	uint32_t ix_count;		 /* entries */
	uint32_t ix_next;		 /* next entry to meet in the scan */
	const struct segment *ix_seg;	 /* whose (NULL: none loaded) */
	/* scan */
	uint8_t *window;       /* bytes of the segment being scanned */
	uint64_t window_cap;   /* allocated */
	uint64_t window_start; /* file offset of window[0] */
	uint64_t window_len;   /* valid bytes */
	bool ended;	       /* the end of the log was found */
	uint64_t end_position; /* where */
	uint64_t frames;       /* frames scanned */
	uint64_t pad_frames;   /* of which padding */
	uint64_t pad_bytes;    /* their bytes */
	uint64_t errors;       /* errors found */
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: sluice-logdump DATA_DIR [--shard N] [--verify] [--frames] [--partition ID]\n"
	    "Lists, per shard of a sluice data directory, the shard log's segments (with\n"
	    "their index files), its\n"
	    "checkpoint and its partitions (offset ranges, batches, records, bytes, from a\n"
	    "scan of every frame). Reads only; never modifies the data directory.\n"
	    "\n"
	    "  --shard N        only shard N (DATA_DIR/shard-NNN)\n"
	    "  --frames         also print every frame: position, partition, base and last\n"
	    "                   offset, records, max timestamp, length, padding\n"
	    "  --partition ID   show only partition ID in the partition and frame lists\n"
	    "  --verify         check everything: every frame's magic, length and CRC32C,\n"
	    "                   the RecordBatch inside (length, magic, CRC32C, count) and its\n"
	    "                   agreement with the frame header, each partition's offset\n"
	    "                   continuity, contiguous segments, zeros after the end of the\n"
	    "                   log, the checkpoint and its agreement with the frames,\n"
	    "                   each segment index file (SSSS.index) against its segment's\n"
	    "                   frames (a mismatch names the index file)\n"
	    "  --help           this text\n"
	    "\n"
	    "Each error is one line \"shard-NNN/FILE: position P (file offset F): what\".\n"
	    "A log ends where the zeroed (preallocated, never written) space begins; that is\n"
	    "not an error. Exit status: 0 no error found, 1 errors found (frame errors are\n"
	    "reported with or without --verify), 2 bad arguments or unreadable directory.\n");
}

/* Prints one error line for SH, FILE (a name in the shard directory, or NULL for the
 * shard itself) at shard-log position POS (UINT64_MAX: none) with FILE_OFFSET. */
static void __attribute__((format(printf, 5, 6)))
report(struct shard *sh, const char *file, uint64_t pos, uint64_t file_offset, const char *fmt, ...)
{
	sh->errors++;
	if (sh->errors > DUMP_ERRORS_PRINTED_MAX)
		return;
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (pos == UINT64_MAX)
		printf("%s/%s: %s\n", sh->name, file ? file : "", what);
	else
		printf("%s/%s: position %" PRIu64 " (file offset %" PRIu64 "): %s\n", sh->name,
		       file, pos, file_offset, what);
	if (sh->errors == DUMP_ERRORS_PRINTED_MAX)
		printf("%s: more than %u errors; counting the rest without printing them\n",
		       sh->name, DUMP_ERRORS_PRINTED_MAX);
}

/* --- partitions ------------------------------------------------------------------------ */

static uint32_t hash_u32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* The slot of partition ID, added when missing. Returns NULL only without memory. */
static struct part *part_get(struct shard *sh, uint32_t id)
{
	if (2 * (sh->part_count + 1) > sh->part_cap) {
		uint32_t cap = sh->part_cap ? 2 * sh->part_cap : 64;
		struct part *parts = calloc(cap, sizeof(*parts));
		if (!parts)
			return NULL;
		for (uint32_t i = 0; i < sh->part_cap; i++) {
			if (!sh->parts[i].used)
				continue;
			uint32_t j = hash_u32(sh->parts[i].id) & (cap - 1);
			while (parts[j].used)
				j = (j + 1) & (cap - 1);
			parts[j] = sh->parts[i];
		}
		free(sh->parts);
		sh->parts = parts;
		sh->part_cap = cap;
	}
	uint32_t j = hash_u32(id) & (sh->part_cap - 1);
	while (sh->parts[j].used && sh->parts[j].id != id)
		j = (j + 1) & (sh->part_cap - 1);
	if (!sh->parts[j].used) {
		sh->parts[j] = (struct part){.id = id, .used = true};
		sh->part_count++;
	}
	return &sh->parts[j];
}

static int cmp_part(const void *a, const void *b)
{
	const struct part *x = a, *y = b;
	if (x->used != y->used)
		return x->used ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_ckpt_entry(const void *a, const void *b)
{
	const struct ckpt_entry *x = a, *y = b;
	return x->position < y->position ? -1 : x->position > y->position;
}

static int cmp_segment(const void *a, const void *b)
{
	const struct segment *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static bool shown(const struct options *opt, uint32_t partition_id)
{
	return !opt->has_partition || opt->partition == partition_id;
}

/* --- checkpoint ------------------------------------------------------------------------ */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/*
 * Reads and checks the checkpoint file (layout in core/shardlog.h). A missing one is
 * not an error (a log that never filled a segment and was not closed cleanly has
 * none); a damaged one is. Returns 0, or -ENOMEM.
 */
static int ckpt_read(struct shard *sh)
{
	void *raw = NULL;
	size_t len = 0;
	const char *file = SHARDLOG_CHECKPOINT_NAME;
	int ret =
	    disk_read_file(sh->dir_fd, file, LIMITS_SHARDLOG_CHECKPOINT_BYTES_MAX, &raw, &len);
	if (ret == -ENOENT)
		return 0;
	sh->ckpt_present = true;
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		report(sh, file, UINT64_MAX, 0, "cannot read: %s", strerror(-ret));
		return 0;
	}
	const uint8_t *buf = raw;
	sh->ckpt_bytes = len;
	ret = 0;
	if (len < DUMP_CKPT_HEADER_BYTES) {
		report(sh, file, UINT64_MAX, 0, "%zu bytes, shorter than its %u-byte header", len,
		       DUMP_CKPT_HEADER_BYTES);
		goto out_free;
	}
	if (get_le32(buf) != SHARDLOG_CHECKPOINT_MAGIC) {
		report(sh, file, UINT64_MAX, 0, "bad magic 0x%08x", get_le32(buf));
		goto out_free;
	}
	if (get_le32(buf + 4) != SHARDLOG_CHECKPOINT_VERSION &&
	    get_le32(buf + 4) != SHARDLOG_CHECKPOINT_VERSION_V1) {
		report(sh, file, UINT64_MAX, 0, "unknown version %u", get_le32(buf + 4));
		goto out_free;
	}
	if (get_le64(buf + 32) != len) {
		report(sh, file, UINT64_MAX, 0, "says %" PRIu64 " bytes, the file has %zu",
		       get_le64(buf + 32), len);
		goto out_free;
	}
	uint32_t crc = crc32c(0, buf + 12, len - 12);
	if (get_le32(buf + 8) != crc) {
		report(sh, file, UINT64_MAX, 0, "bad crc (stored 0x%08x, computed 0x%08x)",
		       get_le32(buf + 8), crc);
		goto out_free;
	}
	if (get_le32(buf + 12) != sh->id)
		report(sh, file, UINT64_MAX, 0, "written by shard %u", get_le32(buf + 12));
	sh->ckpt_cover = get_le64(buf + 16);
	sh->ckpt_partitions = get_le32(buf + 24);
	/* The last E bytes hold state kept beside the log (idempotent producers). */
	uint32_t state_bytes = get_le32(buf + 28);
	if (state_bytes > len - DUMP_CKPT_HEADER_BYTES) {
		report(sh, file, UINT64_MAX, 0, "says %u bytes of producer state, the file has %zu",
		       state_bytes, len);
		goto out_free;
	}

	/* Two passes: count the entries, then keep them. */
	uint64_t entries = 0;
	const uint8_t *p = buf + DUMP_CKPT_HEADER_BYTES, *end = buf + len - state_bytes;
	for (uint32_t i = 0; i < sh->ckpt_partitions; i++) {
		if ((size_t)(end - p) < DUMP_CKPT_PARTITION_BYTES) {
			report(sh, file, UINT64_MAX, 0, "partition record %u of %u is truncated", i,
			       sh->ckpt_partitions);
			goto out_free;
		}
		uint32_t n = get_le32(p + 4);
		p += DUMP_CKPT_PARTITION_BYTES;
		if ((uint64_t)(end - p) < (uint64_t)n * DUMP_CKPT_ENTRY_BYTES) {
			report(sh, file, UINT64_MAX, 0,
			       "partition record %u of %u: %u entries run past the end", i,
			       sh->ckpt_partitions, n);
			goto out_free;
		}
		p += (size_t)n * DUMP_CKPT_ENTRY_BYTES;
		entries += n;
	}
	if (p != end) {
		report(sh, file, UINT64_MAX, 0, "%zu trailing bytes after the partition records",
		       (size_t)(end - p));
		goto out_free;
	}
	sh->ckpt = entries ? malloc(entries * sizeof(*sh->ckpt)) : NULL;
	if (entries && !sh->ckpt) {
		ret = -ENOMEM;
		goto out_free;
	}
	p = buf + DUMP_CKPT_HEADER_BYTES;
	for (uint32_t i = 0; i < sh->ckpt_partitions; i++) {
		uint32_t id = get_le32(p);
		uint32_t n = get_le32(p + 4);
		int64_t log_start = (int64_t)get_le64(p + 8);
		int64_t next = (int64_t)get_le64(p + 16);
		p += DUMP_CKPT_PARTITION_BYTES;
		struct part *pt = part_get(sh, id);
		if (!pt) {
			ret = -ENOMEM;
			goto out_free;
		}
		if (pt->in_ckpt)
			report(sh, file, UINT64_MAX, 0, "partition %u appears twice", id);
		pt->in_ckpt = true;
		pt->ckpt_entries = n;
		pt->ckpt_log_start = log_start;
		pt->ckpt_next = next;
		if (log_start < 0 || next < 0)
			report(sh, file, UINT64_MAX, 0,
			       "partition %u: log start %" PRId64 ", next offset %" PRId64, id,
			       log_start, next);
		int64_t expect = -1;
		for (uint32_t k = 0; k < n; k++, p += DUMP_CKPT_ENTRY_BYTES) {
			struct ckpt_entry e = {
			    .base_offset = (int64_t)get_le64(p),
			    .position = get_le64(p + 8),
			    .length = get_le32(p + 16),
			    .partition_id = id,
			    .last_offset_delta = (int32_t)get_le32(p + 20),
			    .max_timestamp = (int64_t)get_le64(p + 24),
			};
			sh->ckpt[sh->ckpt_count++] = e;
			if (sh->opt->verify &&
			    ((expect >= 0 && e.base_offset != expect) || e.last_offset_delta < 0 ||
			     e.length < FRAME_HEADER_BYTES ||
			     e.position + e.length > sh->ckpt_cover))
				report(sh, file, UINT64_MAX, 0,
				       "partition %u entry %u (offset %" PRId64
				       ", position %" PRIu64
				       ", %u bytes) does not follow the one before or lies above "
				       "the covered position",
				       id, k, e.base_offset, e.position, e.length);
			expect = e.base_offset + e.last_offset_delta + 1;
		}
		if (sh->opt->verify && n > 0 && expect != next)
			report(sh, file, UINT64_MAX, 0,
			       "partition %u: its entries end at offset %" PRId64
			       ", its next offset is %" PRId64,
			       id, expect, next);
	}
	if (sh->ckpt_count > 0) /* version 2 checkpoints have none */
		qsort(sh->ckpt, sh->ckpt_count, sizeof(*sh->ckpt), cmp_ckpt_entry);
	sh->ckpt_valid = true;
out_free:
	free(raw);
	return ret;
}

/* --- segments ----------------------------------------------------------------------------- */

/* Lists the segment files of SH. Returns 0 or a negative errno (printed). */
static int segments_list(struct shard *sh)
{
	char **names = NULL;
	uint32_t count = 0;
	int ret = disk_list(sh->dir_fd, NULL, &names, &count);
	if (ret < 0) {
		fprintf(stderr, "sluice-logdump: %s: cannot list: %s\n", sh->name, strerror(-ret));
		return ret;
	}
	sh->segments = calloc(count ? count : 1, sizeof(*sh->segments));
	if (!sh->segments) {
		disk_list_free(names, count);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint64_t start;
		if (!shardlog_segment_parse(names[i], &start)) {
			size_t n = strlen(names[i]);
			bool known =
			    strcmp(names[i], SHARDLOG_CHECKPOINT_NAME) == 0 ||
			    shardlog_index_parse(names[i], &start) ||
			    (n > strlen(DISK_TMP_SUFFIX) &&
			     strcmp(names[i] + n - strlen(DISK_TMP_SUFFIX), DISK_TMP_SUFFIX) == 0);
			if (!known && sh->opt->verify)
				report(sh, names[i], UINT64_MAX, 0,
				       "not a segment name (20 digits + \".log\"): stray file");
			continue;
		}
		struct segment *s = &sh->segments[sh->segment_count];
		snprintf(s->name, sizeof(s->name), "%s", names[i]);
		shardlog_index_name(s->index_name, start);
		s->has_index = faccessat(sh->dir_fd, s->index_name, F_OK, 0) == 0;
		s->start = start;
		int fd = openat(sh->dir_fd, names[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || disk_file_size(fd, &s->size) < 0) {
			report(sh, names[i], UINT64_MAX, 0, "cannot open: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		close(fd);
		sh->segment_count++;
	}
	/* Index files whose segment is gone (retention unlinks the index first). */
	for (uint32_t i = 0; i < count && sh->opt->verify; i++) {
		uint64_t start;
		if (!shardlog_index_parse(names[i], &start))
			continue;
		bool found = false;
		for (uint32_t k = 0; k < sh->segment_count && !found; k++)
			found = sh->segments[k].start == start;
		if (!found)
			report(sh, names[i], UINT64_MAX, 0, "an index file without its segment");
	}
	disk_list_free(names, count);
	qsort(sh->segments, sh->segment_count, sizeof(*sh->segments), cmp_segment);
	for (uint32_t i = 1; i < sh->segment_count; i++) {
		struct segment *prev = &sh->segments[i - 1], *s = &sh->segments[i];
		if (s->start != prev->start + prev->size)
			report(sh, s->name, UINT64_MAX, 0,
			       "starts at %" PRIu64 " but %s ends at %" PRIu64 " (%s)", s->start,
			       prev->name, prev->start + prev->size,
			       s->start > prev->start + prev->size ? "a segment is missing"
								   : "they overlap");
	}
	return 0;
}

/* Makes [off, off + need) of FD (a segment of SIZE bytes) readable in sh->window,
 * reading ahead up to DUMP_WINDOW_BYTES. Returns the bytes available from OFF (less than
 * NEED only at the end of the file), or a negative errno. */
static int64_t window_at(struct shard *sh, int fd, uint64_t size, uint64_t off, uint64_t need)
{
	if (off + need > size)
		need = size - off;
	if (off >= sh->window_start && off + need <= sh->window_start + sh->window_len)
		return (int64_t)(sh->window_start + sh->window_len - off);
	uint64_t want = need > DUMP_WINDOW_BYTES ? need : DUMP_WINDOW_BYTES;
	if (off + want > size)
		want = size - off;
	if (want > sh->window_cap) {
		uint8_t *w = realloc(sh->window, want);
		if (!w)
			return -ENOMEM;
		sh->window = w;
		sh->window_cap = want;
	}
	int ret = disk_pread_all(fd, sh->window, want, off);
	if (ret < 0)
		return ret;
	sh->window_start = off;
	sh->window_len = want;
	return (int64_t)want;
}

/* Offset of the first non-zero byte of FD in [from, size), or SIZE. Negative errno on a
 * read error. */
static int64_t first_nonzero(struct shard *sh, int fd, uint64_t size, uint64_t from)
{
	uint64_t off = from;
	while (off < size) {
		int64_t avail = window_at(sh, fd, size, off, 1);
		if (avail < 0)
			return avail;
		const uint8_t *p = sh->window + (off - sh->window_start);
		uint64_t i = 0;
		/* Bytes up to 8-byte alignment, then words. */
		while (i < (uint64_t)avail && ((uintptr_t)(p + i) & 7))
			if (p[i++])
				return (int64_t)(off + i - 1);
		for (; i + 8 <= (uint64_t)avail; i += 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w)
				break;
		}
		for (; i < (uint64_t)avail; i++)
			if (p[i])
				return (int64_t)(off + i);
		off += (uint64_t)avail;
	}
	return (int64_t)size;
}

/* The next offset in [from, size) of FD where a whole valid frame starts, or SIZE. */
static int64_t next_valid_frame(struct shard *sh, int fd, uint64_t size, uint64_t from)
{
	uint8_t magic[4] = {FRAME_MAGIC & 0xff, (FRAME_MAGIC >> 8) & 0xff,
			    (FRAME_MAGIC >> 16) & 0xff, FRAME_MAGIC >> 24};
	uint64_t off = from;
	while (off + FRAME_HEADER_BYTES <= size) {
		int64_t avail = window_at(sh, fd, size, off, FRAME_HEADER_BYTES);
		if (avail < 0)
			return avail;
		const uint8_t *p = sh->window + (off - sh->window_start);
		const uint8_t *hit = memmem(p, (size_t)avail, magic, sizeof(magic));
		if (!hit) {
			off += (uint64_t)avail > 3 ? (uint64_t)avail - 3 : 1;
			continue;
		}
		off += (uint64_t)(hit - p);
		struct frame_header h;
		avail = window_at(sh, fd, size, off, FRAME_HEADER_BYTES);
		if (avail < 0)
			return avail;
		enum frame_check fc =
		    frame_check(sh->window + (off - sh->window_start), (size_t)avail, &h);
		if (fc == FRAME_TRUNCATED && h.frame_len <= LIMITS_FRAME_BYTES_MAX &&
		    off + h.frame_len <= size) {
			avail = window_at(sh, fd, size, off, h.frame_len);
			if (avail < 0)
				return avail;
			fc = frame_check(sh->window + (off - sh->window_start), (size_t)avail, &h);
		}
		if (fc == FRAME_OK)
			return (int64_t)off;
		off++;
	}
	return (int64_t)size;
}

/* Checks the checkpoint entries below POS that no frame matched, and the one at POS
 * against frame H. */
static void ckpt_meet(struct shard *sh, const struct segment *s, uint64_t pos,
		      const struct frame_header *h)
{
	while (sh->ckpt_next_check < sh->ckpt_count &&
	       sh->ckpt[sh->ckpt_next_check].position <= pos) {
		const struct ckpt_entry *e = &sh->ckpt[sh->ckpt_next_check++];
		if (e->position < s->start)
			continue; /* in a segment before this one: already judged, or deleted */
		if (e->position < pos || !h) {
			report(sh, s->name, e->position, e->position - s->start,
			       "the checkpoint has partition %u offset %" PRId64
			       " here, but no frame starts here",
			       e->partition_id, e->base_offset);
			continue;
		}
		if (h->partition_id != e->partition_id || h->base_offset != e->base_offset ||
		    h->frame_len != e->length || h->last_offset_delta != e->last_offset_delta ||
		    h->max_timestamp != e->max_timestamp)
			report(sh, s->name, pos, pos - s->start,
			       "the checkpoint says partition %u offsets %" PRId64 "..%" PRId64
			       " (%u bytes), the frame is partition %u offsets %" PRId64
			       "..%" PRId64 " (%u bytes)",
			       e->partition_id, e->base_offset,
			       e->base_offset + e->last_offset_delta, e->length, h->partition_id,
			       h->base_offset, h->base_offset + h->last_offset_delta, h->frame_len);
	}
}

/* Judges the checkpoint entries below POS and passes over the one at POS, which
 * belongs to a damaged frame already reported. */
static void ckpt_skip(struct shard *sh, const struct segment *s, uint64_t pos)
{
	if (pos > s->start)
		ckpt_meet(sh, s, pos - 1, NULL);
	while (sh->ckpt_next_check < sh->ckpt_count &&
	       sh->ckpt[sh->ckpt_next_check].position == pos)
		sh->ckpt_next_check++;
}

/* File offset of index entry I. */
static uint64_t ix_file_offset(uint32_t i)
{
	return SHARDLOG_INDEX_HEADER_BYTES + (uint64_t)i * SHARDLOG_INDEX_ENTRY_BYTES;
}

/* Checks the index entries of segment S below POS that no frame matched, and the one at
 * POS against frame H (NULL: no frame there); a data frame at POS without an entry is
 * an error too. Errors name the index file. */
static void idx_meet(struct shard *sh, const struct segment *s, uint64_t pos,
		     const struct frame_header *h)
{
	if (sh->ix_seg != s)
		return;
	while (sh->ix_next < sh->ix_count && sh->ix[sh->ix_next].position < pos) {
		const struct shardlog_index_entry *e = &sh->ix[sh->ix_next];
		report(sh, s->index_name, e->position, ix_file_offset(sh->ix_next),
		       "the index file has partition %u offset %" PRId64
		       " here, but no frame starts here",
		       e->partition_id, e->base_offset);
		sh->ix_next++;
	}
	if (!h)
		return;
	bool pad = frame_is_pad(h);
	if (sh->ix_next < sh->ix_count && sh->ix[sh->ix_next].position == pos) {
		const struct shardlog_index_entry *e = &sh->ix[sh->ix_next];
		if (pad || h->partition_id != e->partition_id || h->base_offset != e->base_offset ||
		    h->frame_len != e->length || h->last_offset_delta != e->last_offset_delta ||
		    h->max_timestamp != e->max_timestamp)
			report(sh, s->index_name, pos, ix_file_offset(sh->ix_next),
			       "the index file says partition %u offsets %" PRId64 "..%" PRId64
			       " (%u bytes), the frame in %s is %s %u offsets %" PRId64 "..%" PRId64
			       " (%u bytes)",
			       e->partition_id, e->base_offset,
			       e->base_offset + e->last_offset_delta, e->length, s->name,
			       pad ? "padding, partition" : "partition", h->partition_id,
			       h->base_offset, h->base_offset + h->last_offset_delta, h->frame_len);
		sh->ix_next++;
	} else if (!pad) {
		report(sh, s->index_name, pos, pos - s->start,
		       "the frame of partition %u offset %" PRId64
		       " at this position of %s has no entry in the index file",
		       h->partition_id, h->base_offset, s->name);
	}
}

/* Loads (and checks) the index file of segment S, for idx_meet. Returns 0 or -ENOMEM. */
static int idx_load(struct shard *sh, struct segment *s)
{
	free(sh->ix);
	sh->ix = NULL;
	sh->ix_count = sh->ix_next = 0;
	sh->ix_seg = NULL;
	if (!s->has_index)
		return 0;
	void *raw = NULL;
	size_t len = 0;
	int ret = disk_read_file(sh->dir_fd, s->index_name, shardlog_index_bytes_max(s->size), &raw,
				 &len);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		s->index_bad = true;
		if (sh->opt->verify)
			report(sh, s->index_name, UINT64_MAX, 0, "cannot read: %s", strerror(-ret));
		return 0;
	}
	const char *why = NULL;
	uint32_t n = 0;
	if (shardlog_index_check(raw, len, sh->id, s->start, s->size, &n, &why) < 0) {
		s->index_bad = true;
		if (sh->opt->verify)
			report(sh, s->index_name, UINT64_MAX, 0,
			       "%s (the broker rebuilds it from %s at open)", why, s->name);
		free(raw);
		return 0;
	}
	s->index_entries = n;
	if (sh->opt->verify) {
		sh->ix = malloc((n ? n : 1) * sizeof(*sh->ix));
		if (!sh->ix) {
			free(raw);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < n; i++)
			shardlog_index_entry_get(raw, i, &sh->ix[i]);
		sh->ix_count = n;
		sh->ix_seg = s;
	}
	free(raw);
	return 0;
}

/* Accounts and checks the valid frame H at position POS of segment S, whose payload is
 * PAYLOAD. Returns 0 or -ENOMEM. */
static int frame_seen(struct shard *sh, const struct segment *s, uint64_t pos,
		      const struct frame_header *h, const uint8_t *payload)
{
	const struct options *opt = sh->opt;
	uint64_t file_off = pos - s->start;
	bool pad = frame_is_pad(h);

	sh->frames++;
	if (opt->verify && sh->ckpt_valid)
		ckpt_meet(sh, s, pos, h);
	if (opt->verify)
		idx_meet(sh, s, pos, h);
	if (opt->frames && (pad ? !opt->has_partition : shown(opt, h->partition_id))) {
		if (pad)
			printf("  frame %14" PRIu64 "  %-10s %20s %20s %8s %15s %9u  yes\n", pos,
			       "padding", "-", "-", "-", "-", h->frame_len);
		else
			printf("  frame %14" PRIu64 "  %-10u %20" PRId64 " %20" PRId64
			       " %8d %15" PRId64 " %9u  no\n",
			       pos, h->partition_id, h->base_offset,
			       h->base_offset + h->last_offset_delta, h->record_count,
			       h->max_timestamp, h->frame_len);
	}
	if (pad) {
		sh->pad_frames++;
		sh->pad_bytes += h->frame_len;
		return 0;
	}
	if (opt->verify) {
		struct batch_header bh;
		uint32_t blen = h->frame_len - FRAME_HEADER_BYTES;
		enum batch_error be = batch_validate(payload, blen, &bh);
		if (be != BATCH_OK)
			report(sh, s->name, pos, file_off,
			       "partition %u offset %" PRId64 ": batch: %s", h->partition_id,
			       h->base_offset, batch_error_name(be));
		else if (bh.base_offset != h->base_offset ||
			 bh.last_offset_delta != h->last_offset_delta ||
			 bh.max_timestamp != h->max_timestamp || bh.record_count != h->record_count)
			report(sh, s->name, pos, file_off,
			       "the frame header (offset %" PRId64 ", delta %d, %d records, max "
			       "timestamp %" PRId64 ") disagrees with its batch (offset %" PRId64
			       ", delta %d, %d records, max timestamp %" PRId64 ")",
			       h->base_offset, h->last_offset_delta, h->record_count,
			       h->max_timestamp, bh.base_offset, bh.last_offset_delta,
			       bh.record_count, bh.max_timestamp);
		if (h->last_offset_delta < 0 || h->base_offset < 0)
			report(sh, s->name, pos, file_off,
			       "partition %u: offsets %" PRId64 "..%" PRId64, h->partition_id,
			       h->base_offset, h->base_offset + h->last_offset_delta);
	}
	struct part *pt = part_get(sh, h->partition_id);
	if (!pt)
		return -ENOMEM;
	if (opt->verify && pt->in_ckpt && !pt->ckpt_next_checked && sh->ckpt_valid &&
	    pos >= sh->ckpt_cover) {
		pt->ckpt_next_checked = true;
		if (h->base_offset != pt->ckpt_next)
			report(sh, s->name, pos, file_off,
			       "partition %u: first frame above the checkpoint's covered position "
			       "has offset %" PRId64 ", the checkpoint says %" PRId64,
			       h->partition_id, h->base_offset, pt->ckpt_next);
	}
	if (!pt->seen) {
		pt->seen = true;
		pt->first_offset = h->base_offset;
		pt->first_position = pos;
		pt->max_timestamp = h->max_timestamp;
	} else if (opt->verify && h->base_offset != pt->next_offset) {
		report(sh, s->name, pos, file_off,
		       "partition %u: offset %s: the frame starts at %" PRId64
		       ", the one before (at position %" PRIu64 ") ended at %" PRId64,
		       h->partition_id, h->base_offset > pt->next_offset ? "gap" : "overlap",
		       h->base_offset, pt->last_position, pt->next_offset - 1);
	}
	pt->next_offset = h->base_offset + h->last_offset_delta + 1;
	pt->last_position = pos;
	pt->batches++;
	pt->records += h->record_count > 0 ? (uint64_t)h->record_count : 0;
	pt->bytes += h->frame_len;
	if (h->max_timestamp > pt->max_timestamp)
		pt->max_timestamp = h->max_timestamp;
	return 0;
}

/*
 * Scans segment S frame by frame. A zeroed header is the end of the log: with --verify
 * the rest of the segment must be zeros. A damaged frame is reported and skipped: by
 * its length when a valid frame (or the zeroed end) follows, else to the next valid
 * frame found byte by byte. Returns 0 or a negative errno (printed) when the file
 * cannot be read.
 */
static int segment_scan(struct shard *sh, struct segment *s)
{
	const struct options *opt = sh->opt;
	int fd = openat(sh->dir_fd, s->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		report(sh, s->name, UINT64_MAX, 0, "cannot open: %s", strerror(-err));
		return 0;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	sh->window_start = sh->window_len = 0;
	uint64_t off = 0;
	int ret = idx_load(sh, s);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (sh->ended) {
		/* Past the end of the log: only zeros may follow. Without --verify only the
		 * first frame header is looked at. */
		if (!opt->verify) {
			struct frame_header h;
			int64_t avail = window_at(sh, fd, s->size, 0, FRAME_HEADER_BYTES);
			if (avail < 0) {
				ret = (int)avail;
				goto out_read_error;
			}
			if (frame_check(sh->window, (size_t)avail, &h) != FRAME_END)
				report(sh, s->name, s->start, 0,
				       "data after the end of the log at %" PRIu64
				       " (run --verify for details)",
				       sh->end_position);
		} else {
			int64_t nz = first_nonzero(sh, fd, s->size, 0);
			if (nz < 0) {
				ret = (int)nz;
				goto out_read_error;
			}
			int64_t valid = (uint64_t)nz < s->size
					    ? next_valid_frame(sh, fd, s->size, (uint64_t)nz)
					    : (int64_t)s->size;
			if (valid < 0) {
				ret = (int)valid;
				goto out_read_error;
			}
			if ((uint64_t)valid < s->size) {
				/* A hole: go on with the frames after it. */
				report(sh, s->name, s->start + (uint64_t)valid, (uint64_t)valid,
				       "valid frames after the end of the log at %" PRIu64
				       " (the log has a hole of %" PRIu64 " bytes)",
				       sh->end_position,
				       s->start + (uint64_t)valid - sh->end_position);
				sh->ended = false;
				off = (uint64_t)valid;
			} else if ((uint64_t)nz < s->size) {
				report(sh, s->name, s->start + (uint64_t)nz, (uint64_t)nz,
				       "non-zero bytes after the end of the log at %" PRIu64
				       " (stale or torn data)",
				       sh->end_position);
			}
		}
		if (sh->ended)
			goto out_close;
	}
	while (off < s->size) {
		uint64_t pos = s->start + off;
		struct frame_header h;
		int64_t avail = window_at(sh, fd, s->size, off, FRAME_HEADER_BYTES);
		if (avail < 0) {
			ret = (int)avail;
			goto out_read_error;
		}
		enum frame_check fc =
		    frame_check(sh->window + (off - sh->window_start), (size_t)avail, &h);
		if (fc == FRAME_TRUNCATED && (uint64_t)avail >= 8 &&
		    h.frame_len >= FRAME_HEADER_BYTES && h.frame_len <= LIMITS_FRAME_BYTES_MAX &&
		    off + h.frame_len <= s->size) {
			avail = window_at(sh, fd, s->size, off, h.frame_len);
			if (avail < 0) {
				ret = (int)avail;
				goto out_read_error;
			}
			fc = frame_check(sh->window + (off - sh->window_start), (size_t)avail, &h);
		}
		if (fc == FRAME_OK) {
			ret =
			    frame_seen(sh, s, pos, &h,
				       sh->window + (off - sh->window_start) + FRAME_HEADER_BYTES);
			if (ret < 0)
				goto out_close;
			s->frames++;
			off += h.frame_len;
			s->extent = off;
			continue;
		}
		if (fc == FRAME_END) {
			sh->ended = true;
			sh->end_position = pos;
			if (!opt->verify)
				break;
			int64_t nz = first_nonzero(sh, fd, s->size, off);
			if (nz < 0) {
				ret = (int)nz;
				goto out_read_error;
			}
			if ((uint64_t)nz == s->size)
				break;
			/* Damage, not the end: a zeroed hole, or stale data after the end. */
			int64_t valid = next_valid_frame(sh, fd, s->size, (uint64_t)nz);
			if (valid < 0) {
				ret = (int)valid;
				goto out_read_error;
			}
			if ((uint64_t)valid < s->size) {
				report(sh, s->name, pos, off,
				       "zeroed bytes where a frame should start, and valid frames "
				       "again from position %" PRIu64 " (a hole of %" PRIu64
				       " bytes)",
				       s->start + (uint64_t)valid, (uint64_t)valid - off);
				sh->ended = false;
				off = (uint64_t)valid;
				continue;
			}
			report(sh, s->name, s->start + (uint64_t)nz, (uint64_t)nz,
			       "non-zero bytes after the end of the log at %" PRIu64
			       " (stale or torn data; opening the log drops them)",
			       pos);
			break;
		}
		/* A damaged frame. */
		const char *what = frame_check_name(fc);
		if (fc == FRAME_TRUNCATED)
			what = "frame runs past the end of the segment";
		bool by_length = false, last = false;
		if ((fc == FRAME_BAD_CRC) && off + h.frame_len <= s->size) {
			/* Trust its length if what follows looks right. */
			uint64_t next = off + h.frame_len;
			if (next == s->size) {
				by_length = true;
			} else {
				struct frame_header nh;
				int64_t a2 = window_at(sh, fd, s->size, next, FRAME_HEADER_BYTES);
				if (a2 < 0) {
					ret = (int)a2;
					goto out_read_error;
				}
				enum frame_check nfc = frame_check(
				    sh->window + (next - sh->window_start), (size_t)a2, &nh);
				by_length = nfc == FRAME_END || nfc == FRAME_OK ||
					    (nfc == FRAME_TRUNCATED && nh.magic == FRAME_MAGIC);
				last = nfc == FRAME_END;
			}
		}
		if (by_length) {
			if (opt->verify && sh->ckpt_valid)
				ckpt_skip(sh, s, pos);
			if (opt->verify) {
				/* its entry (if any) belongs to the damaged frame reported */
				idx_meet(sh, s, pos, NULL);
				if (sh->ix_seg == s && sh->ix_next < sh->ix_count &&
				    sh->ix[sh->ix_next].position == pos)
					sh->ix_next++;
			}
			/* The last frame before the zeroed tail is where a crash tears a write
			 * (part of its blocks reached the disk); a flipped bit there looks the
			 * same, so it stays an error, with the likely cause. */
			report(sh, s->name, pos, off,
			       "%s (frame of %u bytes, partition %u, offset %" PRId64
			       " as its header says; skipped)%s",
			       what, h.frame_len, h.partition_id, h.base_offset,
			       last ? "; it is the last frame before the zeroed tail: most likely "
				      "a write torn by a crash, which opening the log drops"
				    : "");
			off += h.frame_len;
			continue;
		}
		int64_t valid = next_valid_frame(sh, fd, s->size, off + 1);
		if (valid < 0) {
			ret = (int)valid;
			goto out_read_error;
		}
		if ((uint64_t)valid < s->size) {
			report(sh, s->name, pos, off,
			       "%s (skipped %" PRIu64
			       " bytes to the next valid frame at position %" PRIu64 ")",
			       what, (uint64_t)valid - off, s->start + (uint64_t)valid);
			off = (uint64_t)valid;
			continue;
		}
		report(sh, s->name, pos, off,
		       "%s (no valid frame after it in this segment: %s ends here)", what,
		       sh->segments[sh->segment_count - 1].start == s->start ? "the log"
									     : "the segment");
		sh->ended = true;
		sh->end_position = pos;
		break;
	}
	if (!sh->ended && off >= s->size && s == &sh->segments[sh->segment_count - 1]) {
		sh->ended = true; /* the last segment is full */
		sh->end_position = s->start + s->size;
	}
	goto out_close;

out_read_error:
	report(sh, s->name, UINT64_MAX, 0, "read error: %s", strerror(-ret));
	ret = 0;
out_close:
	/* Checkpoint entries in this segment that no frame matched. */
	if (opt->verify && sh->ckpt_valid && ret == 0)
		ckpt_meet(sh, s, s->start + s->size - 1, NULL);
	/* Index entries that no frame matched. */
	if (opt->verify && ret == 0)
		idx_meet(sh, s, UINT64_MAX, NULL);
	close(fd);
	return ret;
}

/* --- output ---------------------------------------------------------------------------- */

static void print_checkpoint(struct shard *sh)
{
	const struct options *opt = sh->opt;
	if (!sh->ckpt_present) {
		printf("  checkpoint: none (recovery scans from the first segment)\n");
		return;
	}
	if (!sh->ckpt_valid) {
		printf("  checkpoint: present, %" PRIu64 " bytes, unusable (see the error)\n",
		       sh->ckpt_bytes);
		return;
	}
	printf("  checkpoint: covered position %" PRIu64 ", %u partitions, %" PRIu64
	       " entries, %" PRIu64 " bytes\n",
	       sh->ckpt_cover, sh->ckpt_partitions, sh->ckpt_count, sh->ckpt_bytes);
	bool boundary = sh->segment_count == 0 && sh->ckpt_cover == 0;
	for (uint32_t i = 0; i < sh->segment_count && !boundary; i++)
		boundary = sh->segments[i].start == sh->ckpt_cover ||
			   sh->segments[i].start + sh->segments[i].size == sh->ckpt_cover;
	if (opt->verify && !boundary)
		report(sh, SHARDLOG_CHECKPOINT_NAME, UINT64_MAX, 0,
		       "covered position %" PRIu64 " is no segment boundary", sh->ckpt_cover);
}

static void print_partitions(struct shard *sh)
{
	const struct options *opt = sh->opt;
	qsort(sh->parts, sh->part_cap, sizeof(*sh->parts), cmp_part);
	sh->part_cap = 0; /* sorted: no longer a hash table */
	printf("  partitions: %u\n", sh->part_count);
	if (sh->part_count == 0)
		return;
	printf("    %-10s %20s %20s %10s %12s %14s %20s %10s %20s\n", "partition", "first_offset",
	       "next_offset", "batches", "records", "bytes", "max_timestamp", "ckpt_ents",
	       "ckpt_next_offset");
	for (uint32_t i = 0; i < sh->part_count; i++) {
		const struct part *p = &sh->parts[i];
		if (!shown(opt, p->id))
			continue;
		char ck_entries[24] = "-", ck_next[24] = "-";
		if (p->in_ckpt) {
			snprintf(ck_entries, sizeof(ck_entries), "%u", p->ckpt_entries);
			snprintf(ck_next, sizeof(ck_next), "%" PRId64, p->ckpt_next);
		}
		if (p->seen)
			printf("    %-10u %20" PRId64 " %20" PRId64 " %10" PRIu64 " %12" PRIu64
			       " %14" PRIu64 " %20" PRId64 " %10s %20s\n",
			       p->id, p->first_offset, p->next_offset, p->batches, p->records,
			       p->bytes, p->max_timestamp, ck_entries, ck_next);
		else
			printf("    %-10u %20s %20s %10d %12d %14d %20s %10s %20s\n", p->id, "-",
			       "-", 0, 0, 0, "-", ck_entries, ck_next);
	}
}

static void shard_free(struct shard *sh)
{
	free(sh->segments);
	free(sh->parts);
	free(sh->ckpt);
	free(sh->ix);
	free(sh->window);
	if (sh->dir_fd >= 0)
		close(sh->dir_fd);
}

/* Dumps shard directory NAME (shard ID) of DATA_FD. Adds its error count to *ERRORS.
 * Returns 0, or a negative errno when it could not be read at all. */
static int shard_dump(const struct options *opt, int data_fd, const char *name, uint32_t id,
		      uint64_t *errors)
{
	struct shard sh = {.opt = opt, .id = id, .dir_fd = -1};
	snprintf(sh.name, sizeof(sh.name), "%s", name);
	int fd = openat(data_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		fprintf(stderr, "sluice-logdump: %s/%s: %s\n", opt->data_dir, name, strerror(-err));
		return err;
	}
	sh.dir_fd = fd;
	int ret = segments_list(&sh);
	if (ret < 0)
		goto out_free;
	ret = ckpt_read(&sh);
	if (ret < 0)
		goto out_free;

	uint64_t disk = 0;
	for (uint32_t i = 0; i < sh.segment_count; i++)
		disk += sh.segments[i].size;
	printf("%s: %u segments, %" PRIu64 " bytes\n", sh.name, sh.segment_count, disk);
	if (opt->frames)
		printf("  frame %14s  %-10s %20s %20s %8s %15s %9s  %s\n", "position", "partition",
		       "base_offset", "last_offset", "records", "max_timestamp", "length",
		       "padding");
	for (uint32_t i = 0; i < sh.segment_count; i++) {
		ret = segment_scan(&sh, &sh.segments[i]);
		if (ret < 0)
			goto out_free;
	}
	if (opt->verify && sh.ckpt_valid) {
		/* Entries above the last frame scanned: nothing matched them. */
		if (sh.segment_count > 0)
			ckpt_meet(&sh, &sh.segments[sh.segment_count - 1], UINT64_MAX, NULL);
		for (uint32_t i = 0; i < sh.part_cap; i++) {
			struct part *p = &sh.parts[i];
			if (p->used && p->in_ckpt && !p->ckpt_next_checked && p->seen &&
			    p->next_offset != p->ckpt_next && p->last_position < sh.ckpt_cover)
				report(&sh, SHARDLOG_CHECKPOINT_NAME, UINT64_MAX, 0,
				       "partition %u: the checkpoint's next offset %" PRId64
				       " differs from its frames' end %" PRId64,
				       p->id, p->ckpt_next, p->next_offset);
		}
	}

	printf("  segments:\n");
	printf("    %-26s %20s %14s %14s %10s %12s\n", "name", "start", "size", "written", "frames",
	       "index");
	for (uint32_t i = 0; i < sh.segment_count; i++) {
		const struct segment *s = &sh.segments[i];
		char ix[24];
		if (!s->has_index)
			snprintf(ix, sizeof(ix), "-");
		else if (s->index_bad)
			snprintf(ix, sizeof(ix), "bad");
		else
			snprintf(ix, sizeof(ix), "%u", s->index_entries);
		printf("    %-26s %20" PRIu64 " %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %12s\n",
		       s->name, s->start, s->size, s->extent, s->frames, ix);
	}
	printf("  index files (entries; - none: the active segment, or rebuilt at open):\n");
	for (uint32_t i = 0; i < sh.segment_count; i++) {
		const struct segment *s = &sh.segments[i];
		if (s->has_index)
			printf("    %-28s %s\n", s->index_name, s->index_bad ? "bad" : "ok");
	}
	if (sh.segment_count > 0)
		printf("  log: positions %" PRIu64 "..%" PRIu64 ", end of log at %" PRIu64
		       ", %" PRIu64 " frames (%" PRIu64 " padding, %" PRIu64 " bytes)\n",
		       sh.segments[0].start,
		       sh.segments[sh.segment_count - 1].start +
			   sh.segments[sh.segment_count - 1].size,
		       sh.ended ? sh.end_position : sh.segments[0].start, sh.frames, sh.pad_frames,
		       sh.pad_bytes);
	print_checkpoint(&sh);
	print_partitions(&sh);
	if (opt->verify)
		printf("  verify: %" PRIu64 " error%s\n", sh.errors, sh.errors == 1 ? "" : "s");
	*errors += sh.errors;
	ret = 0;
out_free:
	if (ret == -ENOMEM)
		fprintf(stderr, "sluice-logdump: %s: out of memory\n", sh.name);
	shard_free(&sh);
	return ret;
}

/* True when NAME is "shard-" and 3 to 10 decimal digits; *ID gets the number. */
static bool shard_name_parse(const char *name, uint32_t *id)
{
	size_t plen = strlen(DUMP_SHARD_PREFIX), n = strlen(name);
	if (n < plen + 3 || n > plen + 10 || strncmp(name, DUMP_SHARD_PREFIX, plen) != 0)
		return false;
	uint64_t v = 0;
	for (size_t i = plen; i < n; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-')
		return false;
	*out = (uint32_t)v;
	return true;
}

int main(int argc, char **argv)
{
	struct options opt = {.shard = -1};
	static const struct option longopts[] = {
	    {"shard", required_argument, NULL, 's'}, {"verify", no_argument, NULL, 'v'},
	    {"frames", no_argument, NULL, 'f'},	     {"partition", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},	     {NULL, 0, NULL, 0},
	};
	int c;
	uint32_t v;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!parse_u32(optarg, &v) || v >= LIMITS_SHARDS_MAX) {
				fprintf(stderr, "sluice-logdump: --shard wants 0..%d, got '%s'\n",
					LIMITS_SHARDS_MAX - 1, optarg);
				return DUMP_EXIT_USAGE;
			}
			opt.shard = v;
			break;
		case 'v':
			opt.verify = true;
			break;
		case 'f':
			opt.frames = true;
			break;
		case 'p':
			if (!parse_u32(optarg, &opt.partition)) {
				fprintf(stderr,
					"sluice-logdump: --partition wants a partition id, "
					"got '%s'\n",
					optarg);
				return DUMP_EXIT_USAGE;
			}
			opt.has_partition = true;
			break;
		case 'h':
			usage(stdout);
			return DUMP_EXIT_OK;
		default:
			usage(stderr);
			return DUMP_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return DUMP_EXIT_USAGE;
	}
	opt.data_dir = argv[optind];

	int data_fd = open(opt.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (data_fd < 0) {
		fprintf(stderr, "sluice-logdump: %s: %s\n", opt.data_dir, strerror(errno));
		return DUMP_EXIT_USAGE;
	}
	uint64_t errors = 0;
	int status = DUMP_EXIT_OK;
	if (opt.shard >= 0) {
		char name[SHARDLOG_DIR_NAME_BYTES];
		shardlog_dir_name(name, (uint32_t)opt.shard);
		if (shard_dump(&opt, data_fd, name, (uint32_t)opt.shard, &errors) < 0)
			status = DUMP_EXIT_USAGE;
	} else {
		DIR *d = fdopendir(dup(data_fd));
		if (!d) {
			fprintf(stderr, "sluice-logdump: %s: %s\n", opt.data_dir, strerror(errno));
			close(data_fd);
			return DUMP_EXIT_USAGE;
		}
		char **names = NULL;
		size_t count = 0, cap = 0;
		struct dirent *de;
		uint32_t id;
		while ((de = readdir(d)) != NULL) {
			if (!shard_name_parse(de->d_name, &id))
				continue;
			if (count == cap) {
				cap = cap ? 2 * cap : 16;
				char **n = realloc(names, cap * sizeof(*names));
				if (!n) {
					fprintf(stderr, "sluice-logdump: out of memory\n");
					return DUMP_EXIT_USAGE;
				}
				names = n;
			}
			names[count] = strdup(de->d_name);
			if (!names[count]) {
				fprintf(stderr, "sluice-logdump: out of memory\n");
				return DUMP_EXIT_USAGE;
			}
			count++;
		}
		closedir(d);
		qsort(names, count, sizeof(*names), cmp_str);
		if (count == 0) {
			fprintf(stderr, "sluice-logdump: %s: no shard-NNN directory\n",
				opt.data_dir);
			status = DUMP_EXIT_USAGE;
		}
		for (size_t i = 0; i < count; i++) {
			shard_name_parse(names[i], &id);
			if (shard_dump(&opt, data_fd, names[i], id, &errors) < 0)
				status = DUMP_EXIT_USAGE;
			free(names[i]);
		}
		free(names);
	}
	close(data_fd);
	if (errors > 0) {
		printf("sluice-logdump: %" PRIu64 " error%s found\n", errors,
		       errors == 1 ? "" : "s");
		if (status == DUMP_EXIT_OK)
			status = DUMP_EXIT_ERRORS;
	}
	return status;
}
