/*
 * core/index.c: the per-partition batch index (see core/index.h for the contract). The
 * live entries are a window [first, first + count) of one array; appends fill the end,
 * trims advance first, and the dead prefix is reclaimed by sliding the live window back
 * to slot 0 once it is larger than the live part (so each entry is moved O(1) times on
 * average). A second array, in step with the first, holds the running maximum of
 * max_timestamp over the live entries, which is what makes lookups by time a binary
 * search; trimming repairs it only as far as the dropped entries dominated it. No I/O,
 * no locks; allocation only when an append outgrows the array.
 */
#include "core/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/* First allocation: 16 batches (768 bytes), enough for most small partitions. */
#define INDEX_INITIAL_CAPACITY 16u

static inline const struct index_entry *live(const struct index *ix, uint32_t slot)
{
	return &ix->entries[ix->first + slot];
}

static inline int64_t run_at(const struct index *ix, uint32_t slot)
{
	return ix->max_timestamp_run[ix->first + slot];
}

/* One past the last offset of E. The caller has checked it cannot overflow. */
static inline int64_t entry_end(const struct index_entry *e)
{
	return e->base_offset + (int64_t)e->last_offset_delta + 1;
}

void index_init(struct index *ix, int64_t start_offset)
{
	ASSERT(start_offset >= 0);
	*ix = (struct index){
	    .log_start_offset = start_offset,
	    .next_offset = start_offset,
	};
}

void index_destroy(struct index *ix)
{
	free(ix->entries);
	free(ix->max_timestamp_run);
	ix->entries = NULL;
	ix->max_timestamp_run = NULL;
	ix->first = 0;
	ix->count = 0;
	ix->capacity = 0;
	ix->bytes = 0;
}

/* Slides the live window to slot 0. */
static void compact(struct index *ix)
{
	if (ix->first == 0)
		return;
	memmove(ix->entries, ix->entries + ix->first, (size_t)ix->count * sizeof(ix->entries[0]));
	memmove(ix->max_timestamp_run, ix->max_timestamp_run + ix->first,
		(size_t)ix->count * sizeof(ix->max_timestamp_run[0]));
	ix->first = 0;
}

/* Makes room for one more entry at first + count. Returns 0 or -ENOMEM (unchanged). */
static int reserve_one(struct index *ix)
{
	if (ix->first > ix->count)
		compact(ix);
	if (ix->first + ix->count < ix->capacity)
		return 0;
	if (ix->first > 0) {
		/* Fewer dead than live slots, but the array is full: reclaim them before
		 * growing, so a steadily trimmed partition never grows its array. */
		compact(ix);
		if (ix->count < ix->capacity - ix->capacity / 4)
			return 0;
	}
	if (ix->capacity == UINT32_MAX)
		return -ENOMEM;
	uint64_t want = ix->capacity ? (uint64_t)ix->capacity * 2 : INDEX_INITIAL_CAPACITY;
	if (want > UINT32_MAX)
		want = UINT32_MAX;
	struct index_entry *entries = realloc(ix->entries, want * sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	ix->entries = entries;
	int64_t *run = realloc(ix->max_timestamp_run, want * sizeof(*run));
	if (!run)
		return -ENOMEM; /* entries grew, capacity did not: still consistent */
	ix->max_timestamp_run = run;
	ix->capacity = (uint32_t)want;
	return 0;
}

int index_append(struct index *ix, const struct index_entry *e)
{
	if (e->base_offset != ix->next_offset || e->last_offset_delta < 0 || e->length == 0)
		return -EINVAL;
	if (e->base_offset > INT64_MAX - 1 - e->last_offset_delta)
		return -EINVAL;
	if (ix->count > 0) {
		const struct index_entry *last = live(ix, ix->count - 1);
		if (e->position < last->position + last->length)
			return -EINVAL;
	}
	int ret = reserve_one(ix);
	if (ret)
		return ret;

	uint32_t at = ix->first + ix->count;
	int64_t run = e->max_timestamp;
	if (ix->count > 0 && ix->max_timestamp_run[at - 1] > run)
		run = ix->max_timestamp_run[at - 1];
	ix->entries[at] = *e;
	ix->max_timestamp_run[at] = run;
	ix->count++;
	ix->next_offset = entry_end(e);
	ix->bytes += e->length;
	DASSERT(ix->count > 1000 || index_sanity(ix));
	return 0;
}

/* The number of live entries whose base_offset <= OFFSET (so the containing one, if
 * any, is that number minus one). */
static uint32_t count_base_at_most(const struct index *ix, int64_t offset)
{
	uint32_t lo = 0, hi = ix->count; /* answer in [lo, hi] */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (live(ix, mid)->base_offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

enum index_find index_find(const struct index *ix, int64_t offset, uint32_t *slot)
{
	if (offset < ix->log_start_offset)
		return INDEX_BELOW_START;
	if (offset == ix->next_offset)
		return INDEX_AT_END;
	if (offset > ix->next_offset)
		return INDEX_ABOVE_END;
	/* log_start_offset <= offset < next_offset: the live entries cover it exactly. */
	ASSERT(ix->count > 0);
	uint32_t n = count_base_at_most(ix, offset);
	ASSERT(n > 0);
	DASSERT(offset < entry_end(live(ix, n - 1)));
	if (slot)
		*slot = n - 1;
	return INDEX_FOUND;
}

const struct index_entry *index_entry_at(const struct index *ix, uint32_t slot)
{
	ASSERT(slot < ix->count);
	return live(ix, slot);
}

int64_t index_offset_for_timestamp(const struct index *ix, int64_t timestamp_ms, uint32_t *slot)
{
	/* First slot whose running maximum reaches the timestamp: it is the first batch
	 * whose own maximum does, since every earlier one is below it. */
	uint32_t lo = 0, hi = ix->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (run_at(ix, mid) >= timestamp_ms)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == ix->count)
		return -1;
	DASSERT(live(ix, lo)->max_timestamp >= timestamp_ms);
	if (slot)
		*slot = lo;
	int64_t base = live(ix, lo)->base_offset;
	return base < ix->log_start_offset ? ix->log_start_offset : base;
}

/* Drops the DROP oldest live entries and repairs the running maxima of the rest. */
static void drop_front(struct index *ix, uint32_t drop)
{
	ASSERT(drop <= ix->count);
	if (drop == 0)
		return;
	for (uint32_t i = 0; i < drop; i++)
		ix->bytes -= live(ix, i)->length;
	ix->first += drop;
	ix->count -= drop;
	if (ix->count == 0) {
		ix->first = 0;
		return;
	}
	/* The stored running maximum of a remaining entry is max(M, its new value) where
	 * M is the dropped entries' maximum. Recompute forward until the two agree: from
	 * there on the new prefix maximum is >= M and nothing changes. With increasing
	 * timestamps this stops at the first entry. */
	int64_t run = INT64_MIN;
	for (uint32_t i = 0; i < ix->count; i++) {
		int64_t ts = live(ix, i)->max_timestamp;
		if (ts > run)
			run = ts;
		if (ix->max_timestamp_run[ix->first + i] == run)
			break;
		ix->max_timestamp_run[ix->first + i] = run;
	}
	if (ix->first > ix->count)
		compact(ix);
}

void index_trim_to_offset(struct index *ix, int64_t new_log_start_offset)
{
	ASSERT(new_log_start_offset <= ix->next_offset);
	if (new_log_start_offset <= ix->log_start_offset)
		return;
	/* Entries whose end <= new start are whole batches before it. A batch's end is
	 * the next batch's base, so they are the entries with base <= new start, minus
	 * the one containing it (if the new start is not next_offset). */
	uint32_t n = count_base_at_most(ix, new_log_start_offset);
	uint32_t drop = n;
	if (n > 0 && new_log_start_offset < entry_end(live(ix, n - 1)))
		drop = n - 1;
	drop_front(ix, drop);
	ix->log_start_offset = new_log_start_offset;
	DASSERT(ix->count > 1000 || index_sanity(ix));
}

uint32_t index_trim_before_position(struct index *ix, uint64_t position)
{
	uint32_t lo = 0, hi = ix->count; /* number of entries with position < POSITION */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (live(ix, mid)->position < position)
			lo = mid + 1;
		else
			hi = mid;
	}
	drop_front(ix, lo);
	if (lo > 0) {
		int64_t start = ix->count ? live(ix, 0)->base_offset : ix->next_offset;
		if (start > ix->log_start_offset)
			ix->log_start_offset = start;
	}
	DASSERT(ix->count > 1000 || index_sanity(ix));
	return lo;
}

uint64_t index_memory_bytes(const struct index *ix)
{
	return (uint64_t)ix->capacity * INDEX_SLOT_BYTES;
}

bool index_sanity(const struct index *ix)
{
	if ((uint64_t)ix->first + ix->count > ix->capacity)
		return false;
	if (ix->capacity > 0 && (!ix->entries || !ix->max_timestamp_run))
		return false;
	if (ix->log_start_offset < 0 || ix->log_start_offset > ix->next_offset)
		return false;
	if (ix->count == 0)
		return ix->log_start_offset == ix->next_offset && ix->bytes == 0;
	const struct index_entry *head = live(ix, 0);
	if (ix->log_start_offset < head->base_offset || ix->log_start_offset >= entry_end(head))
		return false;
	uint64_t bytes = 0;
	int64_t run = INT64_MIN;
	for (uint32_t i = 0; i < ix->count; i++) {
		const struct index_entry *e = live(ix, i);
		if (e->length == 0 || e->last_offset_delta < 0)
			return false;
		if (i > 0) {
			const struct index_entry *prev = live(ix, i - 1);
			if (e->base_offset != entry_end(prev))
				return false;
			if (e->position < prev->position + prev->length)
				return false;
		}
		if (e->max_timestamp > run)
			run = e->max_timestamp;
		if (run_at(ix, i) != run)
			return false;
		bytes += e->length;
	}
	return bytes == ix->bytes && entry_end(live(ix, ix->count - 1)) == ix->next_offset;
}
