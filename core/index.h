/*
 * core/index.h: the in-memory index of one partition, one entry per record batch
 * (DESIGN §3): where each batch's frame lies in the shard log, which offsets it covers
 * and its largest timestamp, plus the partition's log start offset and high watermark.
 * Entries are appended in offset order (which is also shard-log order), found by binary
 * search, and dropped from the front by retention (by offset for retention.ms/bytes and
 * DeleteRecords, by byte position when the shard deletes a whole segment). It implements
 * no I/O, no locking (the owning shard's thread is its only user) and no persistence:
 * the shard log's checkpoint and recovery build it through index_append. Memory is one
 * array of fixed 32-byte entries plus one 8-byte running timestamp maximum per entry,
 * grown geometrically and counted by index_memory_bytes.
 */
#ifndef SLUICE_CORE_INDEX_H
#define SLUICE_CORE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

/* One record batch of the partition. */
struct index_entry {
	int64_t base_offset;	   /* offset of the batch's first record */
	uint64_t position;	   /* byte position of the frame in the shard log */
	uint32_t length;	   /* frame bytes (header and batch), > 0 */
	int32_t last_offset_delta; /* last record's offset - base_offset, >= 0 */
	int64_t max_timestamp;	   /* the batch's own maxTimestamp, as appended */
};
_Static_assert(sizeof(struct index_entry) == 32, "an index entry is 32 bytes");

/*
 * Invariants, between calls (index_sanity checks them):
 *  - the live entries are entries[first .. first + count), first + count <= capacity;
 *    max_timestamp_run has the same capacity and indexing.
 *  - live entries are contiguous in offset: entry k+1's base_offset == entry k's
 *    base_offset + last_offset_delta + 1, and the last one ends at next_offset - 1.
 *  - their frames are in shard-log order: entry k+1's position >= entry k's
 *    position + length.
 *  - log_start_offset <= next_offset; when count > 0 the first live entry contains
 *    log_start_offset (base <= log_start_offset <= base + last_offset_delta); when
 *    count == 0, log_start_offset == next_offset.
 *  - bytes == sum of the live entries' length.
 *  - max_timestamp_run[first + k] == max(max_timestamp of live entries 0..k): the
 *    running maximum over the live entries only, so it is nondecreasing.
 * The struct is plain data: read the fields freely, change them only through these
 * functions. A zeroed struct is not valid; use index_init.
 */
struct index {
	struct index_entry *entries; /* capacity slots, NULL while capacity == 0 */
	uint32_t first;		     /* index of the oldest live entry */
	uint32_t count;		     /* live entries */
	uint32_t capacity;	     /* allocated slots of entries and max_timestamp_run */
	int64_t log_start_offset;    /* first offset a consumer may read */
	int64_t next_offset;	     /* high watermark = the offset the next batch gets */
	uint64_t bytes;		     /* sum of live entries' length */
	int64_t *max_timestamp_run;  /* running max of max_timestamp, for lookups by time */
};

/* Result of index_find, in the order a Fetch handler tests them. */
enum index_find {
	INDEX_FOUND,	   /* a live batch contains the offset */
	INDEX_BELOW_START, /* offset < log_start_offset: OFFSET_OUT_OF_RANGE */
	INDEX_AT_END,	   /* offset == next_offset: nothing yet, a long-poll waits */
	INDEX_ABOVE_END,   /* offset > next_offset: OFFSET_OUT_OF_RANGE */
};

/* Makes IX an empty index whose log_start_offset and next_offset are START_OFFSET
 * (>= 0). Allocates nothing; cannot fail. */
void index_init(struct index *ix, int64_t start_offset);

/* Frees the entries. IX may then be index_init'ed again; a second destroy is harmless. */
void index_destroy(struct index *ix);

/*
 * Appends batch E at the end. Returns 0, or:
 *  -EINVAL when E->base_offset != ix->next_offset, E->last_offset_delta < 0,
 *          E->length == 0, E's frame starts before the end of the previous entry's
 *          frame, or the batch would end past INT64_MAX;
 *  -ENOMEM when the array cannot grow (at most UINT32_MAX entries);
 * and on error the index is unchanged. On success next_offset = base + delta + 1 and
 * bytes grows by length. Storage grows geometrically (realloc), and the slots of
 * trimmed entries are reclaimed (live entries moved to the front) once more of them
 * are dead than live, so appends are amortized O(1) and entry pointers obtained
 * before an append are invalid after it.
 */
int index_append(struct index *ix, const struct index_entry *e);

/*
 * Locates OFFSET. INDEX_FOUND: *SLOT (may be NULL) is the live slot, relative to
 * first, of the batch whose range [base, base + last_offset_delta] contains it; the
 * batch may start before log_start_offset when the start was moved inside it. The
 * other results leave *SLOT alone. O(log count).
 */
enum index_find index_find(const struct index *ix, int64_t offset, uint32_t *slot);

/* The live entry at SLOT in [0, count) (0 is the oldest). Valid until the next call
 * that changes IX. */
const struct index_entry *index_entry_at(const struct index *ix, uint32_t slot);

/*
 * ListOffsets by time: the first live batch whose max_timestamp >= TIMESTAMP_MS.
 * Returns its base offset (raised to log_start_offset for the first batch when the
 * start lies inside it) and sets *SLOT (may be NULL), or returns -1 when no live
 * batch qualifies (Kafka then answers offset -1).
 * Timestamps need not increase from batch to batch (producers set them). The index
 * keeps, per live entry, the running maximum of max_timestamp from the oldest live
 * entry up to it, as Kafka's time index keeps "the largest timestamp so far"; the
 * first batch whose running maximum reaches TIMESTAMP_MS is exactly the first batch
 * whose own max_timestamp does, so one binary search over the nondecreasing running
 * maximum answers it in O(log count) with no approximation. Like Kafka with v2
 * batches this is batch-granular: records of that batch before the first one at or
 * after TIMESTAMP_MS are also returned by a Fetch from the answer.
 */
int64_t index_offset_for_timestamp(const struct index *ix, int64_t timestamp_ms, uint32_t *slot);

/*
 * Retention and DeleteRecords: makes NEW_LOG_START_OFFSET the log start offset.
 * Precondition: NEW_LOG_START_OFFSET <= next_offset (the caller answers
 * OFFSET_OUT_OF_RANGE to a client asking for more; asserted). A value <= the current
 * log_start_offset changes nothing (the start never moves back). Drops every whole
 * batch that ends before the new start; a batch containing it stays, with the start
 * inside it. bytes and the running timestamp maxima are updated.
 */
void index_trim_to_offset(struct index *ix, int64_t new_log_start_offset);

/*
 * Segment deletion: drops the live batches whose frame starts before POSITION in the
 * shard log, returns how many. log_start_offset becomes the base offset of the first
 * remaining batch if that is later than it was, or next_offset when none remains.
 * O(log count) to find the cut plus the running-maximum repair of index_trim_to_offset.
 */
uint32_t index_trim_before_position(struct index *ix, uint64_t position);

/* Heap bytes this index holds (its allocated capacity), for the per-shard metric. */
uint64_t index_memory_bytes(const struct index *ix);

/* Bytes of memory one index slot costs: the entry plus its running timestamp maximum. */
#define INDEX_SLOT_BYTES (sizeof(struct index_entry) + sizeof(int64_t))

/* Walks the whole index and checks every invariant above; O(count). For DASSERT and
 * tests. */
bool index_sanity(const struct index *ix);

#endif
