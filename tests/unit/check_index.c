/*
 * tests/unit/check_index.c: Check tests of core/index, the per-partition batch index:
 * lookups before the log start, at and past the end, inside batches and on the first
 * and last offset of every batch (single-record batches too), one million entries
 * searched against a linear scan, appends that break the offset or position order
 * rejected with the index unchanged, trimming by offset (inside a batch, on a batch
 * boundary, everything) and by shard-log position, lookups by time over timestamps that
 * go backwards (also after trims), and storage reuse under steady append-and-trim. It
 * tests behaviour through the public API and index_sanity; nothing here needs a disk.
 */
#include "core/index.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"

/* A deterministic generator, so a failure replays. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng_next() % n);
}

/* Appends a batch of RECORDS records at the end, its frame right after the previous
 * one (FRAME_GAP bytes later), with max timestamp TS. Returns the entry. */
static struct index_entry append_ok(struct index *ix, int32_t records, int64_t ts)
{
	struct index_entry e = {
	    .base_offset = ix->next_offset,
	    .position = 0,
	    .length = 100 + (uint32_t)records,
	    .last_offset_delta = records - 1,
	    .max_timestamp = ts,
	};
	if (ix->count > 0) {
		const struct index_entry *last = index_entry_at(ix, ix->count - 1);
		e.position = last->position + last->length + 7; /* other partitions between */
	}
	int ret = index_append(ix, &e);
	ck_assert_msg(ret == 0, "index_append(base %lld) = %d", (long long)e.base_offset, ret);
	return e;
}

static void assert_found(const struct index *ix, int64_t offset, uint32_t want_slot)
{
	uint32_t slot = UINT32_MAX;
	enum index_find r = index_find(ix, offset, &slot);
	ck_assert_msg(r == INDEX_FOUND, "offset %lld: result %d, want FOUND", (long long)offset, r);
	ck_assert_msg(slot == want_slot, "offset %lld: slot %u, want %u", (long long)offset, slot,
		      want_slot);
	const struct index_entry *e = index_entry_at(ix, slot);
	ck_assert(e->base_offset <= offset && offset <= e->base_offset + e->last_offset_delta);
}

static void assert_result(const struct index *ix, int64_t offset, enum index_find want)
{
	uint32_t slot = 12345;
	enum index_find r = index_find(ix, offset, &slot);
	ck_assert_msg(r == want, "offset %lld: result %d, want %d", (long long)offset, r, want);
	ck_assert_uint_eq(slot, 12345); /* untouched unless FOUND */
}

START_TEST(test_empty)
{
	struct index ix;
	index_init(&ix, 0);
	ck_assert(index_sanity(&ix));
	assert_result(&ix, 0, INDEX_AT_END);
	assert_result(&ix, 1, INDEX_ABOVE_END);
	assert_result(&ix, -1, INDEX_BELOW_START);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 0, NULL), -1);
	ck_assert_uint_eq(index_memory_bytes(&ix), 0);
	index_destroy(&ix);

	/* A partition whose log starts later (restored from a checkpoint, say). */
	index_init(&ix, 500);
	assert_result(&ix, 499, INDEX_BELOW_START);
	assert_result(&ix, 0, INDEX_BELOW_START);
	assert_result(&ix, 500, INDEX_AT_END);
	assert_result(&ix, 501, INDEX_ABOVE_END);
	append_ok(&ix, 10, 1);
	ck_assert_int_eq(ix.next_offset, 510);
	assert_found(&ix, 500, 0);
	assert_found(&ix, 509, 0);
	assert_result(&ix, 510, INDEX_AT_END);
	assert_result(&ix, 499, INDEX_BELOW_START);
	index_destroy(&ix);
	index_destroy(&ix); /* a second destroy is harmless */
}
END_TEST

START_TEST(test_boundaries)
{
	static const int32_t sizes[] = {1, 5, 1, 1, 100, 2, 1, 37, 1};
	const uint32_t n = sizeof(sizes) / sizeof(sizes[0]);
	struct index ix;
	index_init(&ix, 0);
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < n; i++)
		bytes += append_ok(&ix, sizes[i], i).length;
	ck_assert(index_sanity(&ix));
	ck_assert_uint_eq(ix.count, n);
	ck_assert_uint_eq(ix.bytes, bytes);

	int64_t base = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct index_entry *e = index_entry_at(&ix, i);
		ck_assert_int_eq(e->base_offset, base);
		assert_found(&ix, base, i);		   /* first offset of the batch */
		assert_found(&ix, base + sizes[i] - 1, i); /* last offset of the batch */
		if (sizes[i] > 2)
			assert_found(&ix, base + sizes[i] / 2, i); /* inside */
		base += sizes[i];
	}
	ck_assert_int_eq(ix.next_offset, base);
	assert_result(&ix, base, INDEX_AT_END);
	assert_result(&ix, base + 1, INDEX_ABOVE_END);
	assert_result(&ix, INT64_MAX, INDEX_ABOVE_END);
	assert_result(&ix, -1, INDEX_BELOW_START);
	assert_result(&ix, INT64_MIN, INDEX_BELOW_START);
	index_destroy(&ix);
}
END_TEST

START_TEST(test_single_record_batches)
{
	struct index ix;
	index_init(&ix, 0);
	for (int i = 0; i < 1000; i++)
		append_ok(&ix, 1, i);
	ck_assert_uint_eq(ix.count, 1000);
	ck_assert_int_eq(ix.next_offset, 1000);
	for (int64_t o = 0; o < 1000; o++)
		assert_found(&ix, o, (uint32_t)o);
	assert_result(&ix, 1000, INDEX_AT_END);
	ck_assert(index_sanity(&ix));
	index_destroy(&ix);
}
END_TEST

/* The reference: the slot containing OFFSET by looking at every entry, or -1. */
static int64_t linear_find(const struct index *ix, int64_t offset)
{
	for (uint32_t i = 0; i < ix->count; i++) {
		const struct index_entry *e = index_entry_at(ix, i);
		if (e->base_offset <= offset && offset <= e->base_offset + e->last_offset_delta)
			return i;
	}
	return -1;
}

START_TEST(test_million_entries)
{
	const uint32_t n = 1000000;
	struct index ix;
	index_init(&ix, 0);
	rng_state = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < n; i++)
		append_ok(&ix, 1 + (int32_t)rng_below(i % 3 == 0 ? 1 : 50), i);
	ck_assert_uint_eq(ix.count, n);
	ck_assert(index_sanity(&ix));
	ck_assert_uint_ge(index_memory_bytes(&ix), (uint64_t)n * INDEX_SLOT_BYTES);
	ck_assert_uint_le(index_memory_bytes(&ix), 2ull * n * INDEX_SLOT_BYTES);

	/* Every batch by its first and last offset. */
	for (uint32_t i = 0; i < n; i++) {
		const struct index_entry *e = index_entry_at(&ix, i);
		uint32_t slot;
		ck_assert(index_find(&ix, e->base_offset, &slot) == INDEX_FOUND && slot == i);
		ck_assert(index_find(&ix, e->base_offset + e->last_offset_delta, &slot) ==
			      INDEX_FOUND &&
			  slot == i);
	}
	/* Random offsets against a linear scan (a few, the scan is slow). */
	for (int q = 0; q < 60; q++) {
		int64_t offset = (int64_t)(rng_next() % (uint64_t)(ix.next_offset + 10));
		int64_t want = linear_find(&ix, offset);
		uint32_t slot;
		enum index_find r = index_find(&ix, offset, &slot);
		if (want < 0) {
			ck_assert_msg(
			    r == (offset == ix.next_offset ? INDEX_AT_END : INDEX_ABOVE_END),
			    "offset %lld", (long long)offset);
		} else {
			ck_assert_msg(r == INDEX_FOUND && slot == want,
				      "offset %lld: %d slot %u, linear scan says %lld",
				      (long long)offset, r, slot, (long long)want);
		}
	}
	/* Trim half by offset, then check searches still agree. */
	int64_t cut = index_entry_at(&ix, n / 2)->base_offset + 1;
	index_trim_to_offset(&ix, cut);
	ck_assert_uint_eq(ix.count, n - n / 2);
	ck_assert(index_sanity(&ix));
	for (int q = 0; q < 20; q++) {
		int64_t offset = (int64_t)(rng_next() % (uint64_t)ix.next_offset);
		int64_t want = linear_find(&ix, offset);
		uint32_t slot;
		enum index_find r = index_find(&ix, offset, &slot);
		if (offset < cut)
			ck_assert(r == INDEX_BELOW_START);
		else
			ck_assert(r == INDEX_FOUND && slot == want);
	}
	index_destroy(&ix);
}
END_TEST

START_TEST(test_append_rejected)
{
	struct index ix;
	index_init(&ix, 0);
	struct index_entry first = append_ok(&ix, 10, 5);
	struct index before = ix;

	struct index_entry e = {
	    .base_offset = 11, /* a gap: next is 10 */
	    .position = first.position + first.length,
	    .length = 50,
	    .last_offset_delta = 0,
	    .max_timestamp = 6,
	};
	ck_assert_int_eq(index_append(&ix, &e), -EINVAL);
	e.base_offset = 9; /* overlaps the previous batch */
	ck_assert_int_eq(index_append(&ix, &e), -EINVAL);
	e.base_offset = 10;
	e.position = first.position + first.length - 1; /* frame overlaps the previous */
	ck_assert_int_eq(index_append(&ix, &e), -EINVAL);
	e.position = first.position + first.length;
	e.length = 0;
	ck_assert_int_eq(index_append(&ix, &e), -EINVAL);
	e.length = 50;
	e.last_offset_delta = -1;
	ck_assert_int_eq(index_append(&ix, &e), -EINVAL);
	ck_assert(memcmp(&ix, &before, sizeof(ix)) == 0);
	ck_assert(index_sanity(&ix));

	e.last_offset_delta = 0; /* now right */
	ck_assert_int_eq(index_append(&ix, &e), 0);
	ck_assert_int_eq(ix.next_offset, 11);

	/* A batch that would end past INT64_MAX. */
	struct index high;
	index_init(&high, INT64_MAX - 5);
	e = (struct index_entry){
	    .base_offset = INT64_MAX - 5, .length = 1, .last_offset_delta = 10};
	ck_assert_int_eq(index_append(&high, &e), -EINVAL);
	e.last_offset_delta = 4;
	ck_assert_int_eq(index_append(&high, &e), 0);
	ck_assert_int_eq(high.next_offset, INT64_MAX);
	index_destroy(&high);
	index_destroy(&ix);
}
END_TEST

/* Three batches: [0,9] [10,19] [20,29]. */
static void three_batches(struct index *ix)
{
	index_init(ix, 0);
	append_ok(ix, 10, 1);
	append_ok(ix, 10, 2);
	append_ok(ix, 10, 3);
}

START_TEST(test_trim_inside_batch)
{
	struct index ix;
	three_batches(&ix);
	uint64_t bytes = ix.bytes;
	index_trim_to_offset(&ix, 15);
	ck_assert(index_sanity(&ix));
	ck_assert_int_eq(ix.log_start_offset, 15);
	ck_assert_uint_eq(ix.count, 2); /* [0,9] dropped, [10,19] holds the new start */
	ck_assert_uint_eq(ix.bytes, bytes - 110);
	assert_result(&ix, 14, INDEX_BELOW_START);
	assert_result(&ix, 10, INDEX_BELOW_START);
	assert_found(&ix, 15, 0);
	assert_found(&ix, 19, 0);
	assert_found(&ix, 20, 1);
	ck_assert_int_eq(index_entry_at(&ix, 0)->base_offset, 10); /* fetch starts here */
	/* By time, the first batch is answered with the log start, not its base. */
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 0, NULL), 15);

	index_trim_to_offset(&ix, 12); /* backwards: nothing happens */
	ck_assert_int_eq(ix.log_start_offset, 15);
	ck_assert_uint_eq(ix.count, 2);
	index_trim_to_offset(&ix, 19); /* further inside the same batch */
	ck_assert_int_eq(ix.log_start_offset, 19);
	ck_assert_uint_eq(ix.count, 2);
	ck_assert(index_sanity(&ix));
	index_destroy(&ix);
}
END_TEST

START_TEST(test_trim_on_boundary)
{
	struct index ix;
	three_batches(&ix);
	index_trim_to_offset(&ix, 20); /* exactly the third batch's base */
	ck_assert(index_sanity(&ix));
	ck_assert_int_eq(ix.log_start_offset, 20);
	ck_assert_uint_eq(ix.count, 1);
	ck_assert_uint_eq(ix.bytes, 110);
	assert_result(&ix, 19, INDEX_BELOW_START);
	assert_found(&ix, 20, 0);
	assert_found(&ix, 29, 0);
	index_trim_to_offset(&ix, 10); /* backwards */
	ck_assert_int_eq(ix.log_start_offset, 20);
	index_destroy(&ix);
}
END_TEST

START_TEST(test_trim_everything)
{
	struct index ix;
	three_batches(&ix);
	index_trim_to_offset(&ix, 30);
	ck_assert(index_sanity(&ix));
	ck_assert_uint_eq(ix.count, 0);
	ck_assert_uint_eq(ix.bytes, 0);
	ck_assert_int_eq(ix.log_start_offset, 30);
	ck_assert_int_eq(ix.next_offset, 30);
	assert_result(&ix, 29, INDEX_BELOW_START);
	assert_result(&ix, 30, INDEX_AT_END);
	assert_result(&ix, 31, INDEX_ABOVE_END);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 0, NULL), -1);
	/* Appending continues from the high watermark. */
	append_ok(&ix, 3, 9);
	assert_found(&ix, 30, 0);
	assert_found(&ix, 32, 0);
	ck_assert_int_eq(ix.next_offset, 33);
	ck_assert(index_sanity(&ix));
	index_destroy(&ix);
}
END_TEST

START_TEST(test_trim_past_end_asserts)
{
	struct index ix;
	three_batches(&ix);
	index_trim_to_offset(&ix, 31); /* a caller must answer OFFSET_OUT_OF_RANGE instead */
}
END_TEST

START_TEST(test_trim_before_position)
{
	struct index ix;
	three_batches(&ix); /* frames at 0, 117, 234, each 110 bytes */
	ck_assert_uint_eq(index_entry_at(&ix, 1)->position, 117);
	ck_assert_uint_eq(index_trim_before_position(&ix, 0), 0);
	ck_assert_uint_eq(index_trim_before_position(&ix, 117), 1); /* a segment [0, 117) */
	ck_assert_int_eq(ix.log_start_offset, 10);
	ck_assert_uint_eq(ix.count, 2);
	ck_assert(index_sanity(&ix));

	/* The start was moved inside the batch whose segment is deleted next. */
	index_trim_to_offset(&ix, 13);
	ck_assert_uint_eq(index_trim_before_position(&ix, 200), 1);
	ck_assert_int_eq(ix.log_start_offset, 20);
	assert_result(&ix, 19, INDEX_BELOW_START);
	assert_found(&ix, 20, 0);
	ck_assert_uint_eq(ix.bytes, 110);

	ck_assert_uint_eq(index_trim_before_position(&ix, UINT64_MAX), 1);
	ck_assert_uint_eq(ix.count, 0);
	ck_assert_int_eq(ix.log_start_offset, 30);
	assert_result(&ix, 30, INDEX_AT_END);
	ck_assert_uint_eq(index_trim_before_position(&ix, UINT64_MAX), 0);
	ck_assert(index_sanity(&ix));
	index_destroy(&ix);
}
END_TEST

START_TEST(test_time_non_monotonic)
{
	/* Batch max timestamps go back and forth, as producers with skewed clocks do. */
	static const int64_t ts[] = {100, 300, 200, 250, 400, 50, 400, 1000};
	const uint32_t n = sizeof(ts) / sizeof(ts[0]);
	struct index ix;
	index_init(&ix, 0);
	for (uint32_t i = 0; i < n; i++)
		append_ok(&ix, 10, ts[i]); /* batch i is [10 i, 10 i + 9] */
	ck_assert(index_sanity(&ix));
	uint32_t slot = 99;
	ck_assert_int_eq(index_offset_for_timestamp(&ix, INT64_MIN, &slot), 0);
	ck_assert_uint_eq(slot, 0);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 100, &slot), 0);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 101, &slot), 10); /* 300 */
	ck_assert_uint_eq(slot, 1);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 250, NULL), 10); /* 300, not 250's */
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 301, NULL), 40); /* 400 */
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 400, NULL), 40);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 401, NULL), 70); /* 1000 */
	slot = 99;
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 1001, &slot), -1);
	ck_assert_uint_eq(slot, 99);

	/* Once the 100 and 300 batches are gone, 210 is answered by the 250 batch:
	 * the dropped 300 no longer counts. */
	index_trim_to_offset(&ix, 20);
	ck_assert(index_sanity(&ix));
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 210, NULL), 30);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 200, NULL), 20);
	ck_assert_int_eq(index_offset_for_timestamp(&ix, 0, NULL), 20);
	index_destroy(&ix);
}
END_TEST

/* The reference for time lookups: the first live batch with max_timestamp >= TS. */
static int64_t linear_time(const struct index *ix, int64_t ts)
{
	for (uint32_t i = 0; i < ix->count; i++) {
		const struct index_entry *e = index_entry_at(ix, i);
		if (e->max_timestamp >= ts)
			return e->base_offset < ix->log_start_offset ? ix->log_start_offset
								     : e->base_offset;
	}
	return -1;
}

START_TEST(test_time_random_with_trims)
{
	struct index ix;
	index_init(&ix, 0);
	rng_state = 12345;
	for (int round = 0; round < 200; round++) {
		int adds = 1 + (int)rng_below(60);
		for (int i = 0; i < adds; i++) {
			/* Mostly rising clock with jitter, sometimes far ahead or behind. */
			int64_t ts = round * 100 + (int64_t)rng_below(300);
			if (rng_below(20) == 0)
				ts += 100000;
			if (rng_below(20) == 0)
				ts -= 100000;
			append_ok(&ix, 1 + (int32_t)rng_below(4), ts);
		}
		if (rng_below(3) == 0 && ix.count > 0) {
			int64_t to = ix.log_start_offset +
				     (int64_t)rng_below(
					 (uint32_t)(ix.next_offset - ix.log_start_offset + 1));
			index_trim_to_offset(&ix, to);
		}
		ck_assert(index_sanity(&ix));
		for (int q = 0; q < 20; q++) {
			int64_t ts = round * 100 - 1000 + (int64_t)rng_below(2000);
			if (q == 0)
				ts = 150000; /* only the far-ahead ones */
			ck_assert_int_eq(index_offset_for_timestamp(&ix, ts, NULL),
					 linear_time(&ix, ts));
		}
	}
	index_destroy(&ix);
}
END_TEST

START_TEST(test_steady_trim_reuses_storage)
{
	/* A partition under retention: append, trim to the last 100 batches, forever.
	 * The array must stop growing (dead slots are reclaimed). */
	struct index ix;
	index_init(&ix, 0);
	for (int i = 0; i < 200000; i++) {
		append_ok(&ix, 2, i);
		if (ix.count > 100)
			index_trim_to_offset(&ix, index_entry_at(&ix, ix.count - 100)->base_offset);
	}
	ck_assert_uint_eq(ix.count, 100);
	ck_assert_uint_le(ix.capacity, 512);
	ck_assert_uint_le(index_memory_bytes(&ix), 512 * INDEX_SLOT_BYTES);
	ck_assert(index_sanity(&ix));
	for (uint32_t i = 0; i < ix.count; i++)
		assert_found(&ix, index_entry_at(&ix, i)->base_offset + 1, i);
	index_destroy(&ix);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("index");
	tcase_set_timeout(tc, 120); /* the million-entry case under the sanitizers */
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_boundaries);
	tcase_add_test(tc, test_single_record_batches);
	tcase_add_test(tc, test_million_entries);
	tcase_add_test(tc, test_append_rejected);
	tcase_add_test(tc, test_trim_inside_batch);
	tcase_add_test(tc, test_trim_on_boundary);
	tcase_add_test(tc, test_trim_everything);
	tcase_add_test_raise_signal(tc, test_trim_past_end_asserts, SIGABRT);
	tcase_add_test(tc, test_trim_before_position);
	tcase_add_test(tc, test_time_non_monotonic);
	tcase_add_test(tc, test_time_random_with_trims);
	tcase_add_test(tc, test_steady_trim_reuses_storage);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
