/*
 * tests/unit/check_bench_batch.c: sluice-bench's RecordBatch v2 builder and walker
 * (tools/bench_batch.h): the batches it builds pass sluice's own Produce validation
 * (core/batch.h batch_validate: length, CRC-32C, count), carry the fields a plain
 * producer sends (baseOffset 0, producer id/epoch/sequence -1, no codec, the
 * timestamps given), hold as many records as --batch-bytes allows and no more, and the
 * walker reads back every record's value and stamp. Interoperability with a real
 * client (kcat reading them back from sluiced) is tests/integration/bench-smoke.sh.
 */
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/batch.h"
#include "tools/bench_batch.h"

#define BUF_BYTES (2u << 20)

struct seen {
	uint32_t count;	   /* values walked */
	uint32_t stamped;  /* of them with the expected stamp */
	int32_t value_len; /* length of the last one */
	uint64_t run_id;   /* expected */
	uint64_t stamp_ns; /* expected */
};

static void on_value(void *ctx, const uint8_t *value, int32_t value_len)
{
	struct seen *s = ctx;
	uint64_t run_id, stamp;
	s->count++;
	s->value_len = value_len;
	if (bench_batch_read_stamp(value, value_len, &run_id, &stamp) == 0 && run_id == s->run_id &&
	    stamp == s->stamp_ns)
		s->stamped++;
}

static void check_batch(uint32_t count, uint32_t value_bytes)
{
	uint8_t *buf = malloc(BUF_BYTES);
	ck_assert_ptr_nonnull(buf);
	long len = bench_batch_build(buf, BUF_BYTES, count, value_bytes, 1700000000123, 42, 777);
	ck_assert_int_gt(len, 0);
	ck_assert_uint_eq((size_t)len, bench_batch_bytes(count, value_bytes));
	struct batch_header h;
	ck_assert_int_eq(batch_validate(buf, (size_t)len, &h), BATCH_OK);
	ck_assert_int_eq(h.base_offset, 0);
	ck_assert_int_eq(h.record_count, (int32_t)count);
	ck_assert_int_eq(h.last_offset_delta, (int32_t)count - 1);
	ck_assert_int_eq(h.producer_id, -1);
	ck_assert_int_eq(h.producer_epoch, -1);
	ck_assert_int_eq(h.base_sequence, -1);
	ck_assert_int_eq(h.attributes, 0);
	ck_assert_int_eq(h.base_timestamp, 1700000000123);
	ck_assert_int_eq(h.max_timestamp, 1700000000123);
	struct seen s = {.run_id = 42, .stamp_ns = 777};
	ck_assert_int_eq(bench_batch_walk(buf, (size_t)len, on_value, &s), (long)count);
	ck_assert_uint_eq(s.count, count);
	ck_assert_int_eq(s.value_len, (int32_t)value_bytes);
	ck_assert_uint_eq(s.stamped, value_bytes >= BENCH_BATCH_STAMP_BYTES ? count : 0);
	/* The broker hands batches back with an offset set and bytes after them: still
	 * walkable, still valid (baseOffset is outside the CRC). */
	batch_set_base_offset(buf, 123456);
	ck_assert_int_eq(batch_validate(buf, (size_t)len, NULL), BATCH_OK);
	ck_assert_int_eq(bench_batch_walk(buf, (size_t)len + 100, NULL, NULL), (long)count);
	free(buf);
}

START_TEST(test_valid_batches)
{
	check_batch(1, 100);
	check_batch(148, 100);
	check_batch(15, 1024);
	check_batch(1, 0);
	check_batch(300, 16);
	check_batch(3, 15); /* too short for a stamp */
	check_batch(2, 300000);
	check_batch(10000, 10); /* offset deltas beyond one varint byte */
}
END_TEST

START_TEST(test_records_for_batch_bytes)
{
	static const uint32_t sizes[] = {0, 10, 100, 1024, 16384};
	static const size_t limits[] = {100, 1024, 16384, 1u << 20};
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (unsigned j = 0; j < sizeof(limits) / sizeof(limits[0]); j++) {
			uint32_t n = bench_batch_records_for(limits[j], sizes[i]);
			ck_assert_uint_ge(n, 1);
			if (bench_batch_bytes(1, sizes[i]) <= limits[j]) {
				ck_assert_uint_le(bench_batch_bytes(n, sizes[i]), limits[j]);
				ck_assert_uint_gt(bench_batch_bytes(n + 1, sizes[i]), limits[j]);
			} else {
				ck_assert_uint_eq(n, 1); /* an oversized record goes alone */
			}
		}
	}
	/* 100 B values in 16 KiB: the figure sluice-bench reports. */
	ck_assert_uint_eq(bench_batch_records_for(16384, 100), 148);
}
END_TEST

START_TEST(test_refusals)
{
	uint8_t buf[256];
	ck_assert_int_eq(bench_batch_build(buf, sizeof(buf), 0, 10, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(bench_batch_build(buf, sizeof(buf), 3, 100, 0, 0, 0), -ENOBUFS);
	long len = bench_batch_build(buf, sizeof(buf), 2, 50, 0, 1, 2);
	ck_assert_int_gt(len, 0);
	/* One flipped value byte: sluice refuses it on CRC. */
	buf[len - 5] ^= 0x01;
	ck_assert_int_eq(batch_validate(buf, (size_t)len, NULL), BATCH_BAD_CRC);
	/* Cut short: the walker refuses rather than reading past the bytes. */
	ck_assert_int_eq(bench_batch_walk(buf, (size_t)len - 1, NULL, NULL), -EBADMSG);
	ck_assert_int_eq(bench_batch_walk(buf, 20, NULL, NULL), -EBADMSG);
	/* A compressed batch is not walked. */
	buf[22] |= BATCH_CODEC_LZ4;
	ck_assert_int_eq(bench_batch_walk(buf, (size_t)len, NULL, NULL), -ENOTSUP);
}
END_TEST

START_TEST(test_record_lengths_lie)
{
	uint8_t buf[512];
	long len = bench_batch_build(buf, sizeof(buf), 2, 50, 0, 1, 2);
	ck_assert_int_gt(len, 0);
	/* The first record's length varint (at byte 61) claims 8191 bytes, more than the
	 * batch holds (fe 7f: zigzag 16382). */
	buf[BATCH_HEADER_BYTES] = 0xfe;
	buf[BATCH_HEADER_BYTES + 1] = 0x7f;
	ck_assert_int_eq(bench_batch_walk(buf, (size_t)len, NULL, NULL), -EBADMSG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench_batch");
	unit_add_case(s, "valid_batches", test_valid_batches, 0, NULL);
	unit_add_case(s, "records_for_batch_bytes", test_records_for_batch_bytes, 0, NULL);
	unit_add_case(s, "refusals", test_refusals, 0, NULL);
	unit_add_case(s, "record_lengths_lie", test_record_lengths_lie, 0, NULL);
	return unit_run(s);
}
