/*
 * tests/unit/check_batch.c: Check tests of core/batch's record builder and walker (the
 * batches the broker writes itself, e.g. the group coordinator's offset records): what
 * the builder makes passes batch_validate with the right count, timestamps and CRC, the
 * walker gives back every key and value byte for byte (null, empty and large ones
 * included), a full builder refuses without damage, and the walker never reads outside
 * the batch whatever bytes it is fed (every truncation and random corruption with the
 * CRC recomputed, so the record parser itself is exercised).
 */
#include "core/batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"

struct walked {
	int count;
	int32_t deltas[64];
	int32_t key_lens[64];
	int32_t value_lens[64];
	uint8_t first_value[4096];
};

static int walk_record(void *ctx, int32_t offset_delta, const uint8_t *key, int32_t key_len,
		       const uint8_t *value, int32_t value_len)
{
	struct walked *w = ctx;
	ck_assert_int_lt(w->count, 64);
	ck_assert((key == NULL) == (key_len == -1));
	ck_assert((value == NULL) == (value_len == -1));
	w->deltas[w->count] = offset_delta;
	w->key_lens[w->count] = key_len;
	w->value_lens[w->count] = value_len;
	if (w->count == 0 && value_len > 0 && value_len <= (int32_t)sizeof(w->first_value))
		memcpy(w->first_value, value, (size_t)value_len);
	w->count++;
	return 0;
}

START_TEST(build_and_walk)
{
	static uint8_t buf[1 << 16];
	uint8_t big[3000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	struct batch_builder b;
	batch_builder_init(&b, buf, sizeof(buf), 1700000000123);
	ck_assert_int_eq(batch_builder_finish(&b), -EINVAL); /* no records */
	ck_assert_int_eq(batch_builder_add(&b, "k1", 2, big, (int32_t)sizeof(big)), 0);
	ck_assert_int_eq(batch_builder_add(&b, NULL, 0, "v", 1), 0);
	ck_assert_int_eq(batch_builder_add(&b, "k3", 2, NULL, 0), 0);
	ck_assert_int_eq(batch_builder_add(&b, "", 0, "", 0), 0);
	long len = batch_builder_finish(&b);
	ck_assert_int_gt(len, BATCH_HEADER_BYTES);
	struct batch_header h;
	ck_assert_int_eq(batch_validate(buf, (size_t)len, &h), BATCH_OK);
	ck_assert_int_eq(h.record_count, 4);
	ck_assert_int_eq(h.last_offset_delta, 3);
	ck_assert_int_eq(h.base_timestamp, 1700000000123);
	ck_assert_int_eq(h.max_timestamp, 1700000000123);
	ck_assert_int_eq(h.producer_id, -1);
	ck_assert_int_eq(batch_compression(&h), BATCH_CODEC_NONE);

	struct walked w = {0};
	ck_assert_int_eq(batch_records_each(buf, (size_t)len, walk_record, &w), 4);
	ck_assert_int_eq(w.count, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(w.deltas[i], i);
	ck_assert_int_eq(w.key_lens[0], 2);
	ck_assert_int_eq(w.value_lens[0], (int)sizeof(big));
	ck_assert_mem_eq(w.first_value, big, sizeof(big));
	ck_assert_int_eq(w.key_lens[1], -1);
	ck_assert_int_eq(w.value_lens[2], -1);
	ck_assert_int_eq(w.key_lens[3], 0);
	ck_assert_int_eq(w.value_lens[3], 0);
	/* Without a callback it only counts. */
	ck_assert_int_eq(batch_records_each(buf, (size_t)len, NULL, NULL), 4);
}
END_TEST

START_TEST(builder_full)
{
	uint8_t buf[200];
	uint8_t value[100] = {0};
	struct batch_builder b;
	batch_builder_init(&b, buf, sizeof(buf), 1);
	ck_assert_int_eq(batch_builder_add(&b, NULL, 0, value, 100), 0);
	size_t used = b.len;
	ck_assert_int_eq(batch_builder_add(&b, NULL, 0, value, 100), -ENOBUFS);
	ck_assert_uint_eq(b.len, used);
	ck_assert_int_eq(b.count, 1);
	long len = batch_builder_finish(&b);
	ck_assert_int_eq(batch_validate(buf, (size_t)len, NULL), BATCH_OK);
	ck_assert_uint_le(used, batch_record_bytes_max(-1, 100) + BATCH_HEADER_BYTES);
	/* A buffer smaller than a header takes nothing. */
	batch_builder_init(&b, buf, 10, 1);
	ck_assert_int_eq(batch_builder_add(&b, NULL, 0, NULL, 0), -ENOBUFS);
}
END_TEST

START_TEST(walker_hostile_bytes)
{
	static uint8_t good[4096], bad[4096];
	struct batch_builder b;
	batch_builder_init(&b, good, sizeof(good), 5);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(batch_builder_add(&b, "key", 3, "value-value", 11), 0);
	long len = batch_builder_finish(&b);
	ck_assert_int_gt(len, 0);
	/* Every truncation: an error or a count, never a read past LEN (ASan watches). */
	for (long cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc((size_t)cut + 1);
		memcpy(copy, good, (size_t)cut);
		long n = batch_records_each(copy, (size_t)cut, NULL, NULL);
		ck_assert(n == -EBADMSG || (n >= 0 && n <= 20));
		free(copy);
	}
	/* Random corruption of the record area, CRC fixed so only the parser stands guard. */
	srand(12345);
	int rejected = 0;
	for (int round = 0; round < 20000; round++) {
		memcpy(bad, good, (size_t)len);
		int flips = 1 + rand() % 4;
		for (int f = 0; f < flips; f++)
			bad[BATCH_HEADER_BYTES + rand() % (len - BATCH_HEADER_BYTES)] =
			    (uint8_t)rand();
		uint32_t crc = batch_crc(bad, (size_t)len);
		bad[BATCH_OFFSET_CRC] = (uint8_t)(crc >> 24);
		bad[BATCH_OFFSET_CRC + 1] = (uint8_t)(crc >> 16);
		bad[BATCH_OFFSET_CRC + 2] = (uint8_t)(crc >> 8);
		bad[BATCH_OFFSET_CRC + 3] = (uint8_t)crc;
		long n = batch_records_each(bad, (size_t)len, NULL, NULL);
		ck_assert(n == -EBADMSG || n == 20);
		rejected += n < 0;
	}
	ck_assert_int_gt(rejected, 0);
	/* A compressed batch is not walked. */
	memcpy(bad, good, (size_t)len);
	bad[22] |= BATCH_CODEC_GZIP;
	ck_assert_int_eq(batch_records_each(bad, (size_t)len, NULL, NULL), -ENOTSUP);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("batch");
	unit_add_case(s, "build_and_walk", build_and_walk, 0, NULL);
	unit_add_case(s, "builder_full", builder_full, 0, NULL);
	unit_add_case(s, "walker_hostile_bytes", walker_hostile_bytes, 0, NULL);
	return unit_run(s);
}
