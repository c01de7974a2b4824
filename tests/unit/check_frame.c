/*
 * tests/unit/check_frame.c: Check tests of core/frame (shard-log frames) and core/batch
 * (Kafka RecordBatch v2 headers). Batches are built here by hand with a small encoder
 * of v2 records (varint lengths, attributes, timestamp and offset deltas, key, value,
 * headers); the encoder is first proved against a batch another Kafka client (Sarama)
 * encoded. Frames: header byte layout and round trip, seal and check, sealing from a
 * batch's own crc (frame_seal_tail), every kind of damage a scan of the log can meet
 * (a flipped bit, never-written zeros, a short read, a bad length, a bad magic), padding
 * frames, and a scan over a buffer of frames the
 * way recovery walks a segment. Batches: parse and validate of good batches, every
 * error (truncation, a lying batchLength, a flipped byte anywhere under the CRC, magic
 * 0 and 1, inconsistent counts), baseOffset and leader-epoch rewrites that keep the CRC
 * valid, and the attribute bits.
 */
#include "core/batch.h"
#include "core/frame.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "tests/unit/testbatch.h"
#include "tests/unit/unit.h"

/* ---- batches for the tests (tests/unit/testbatch.h) ---- */

static const struct test_batch plain_batch = {
    .attributes = 0,
    .base_timestamp = 1700000000000,
    .max_timestamp = 1700000000042,
    .producer_id = -1,
    .producer_epoch = -1,
    .base_sequence = -1,
};

/* A batch of COUNT small records with distinct values; returns its length. */
static size_t build_plain(uint8_t *buf, size_t cap, const struct test_batch *b, int count)
{
	static char values[64][16];
	struct test_record recs[64];
	ck_assert_int_le(count, 64);
	for (int i = 0; i < count; i++) {
		snprintf(values[i], sizeof(values[i]), "value-%d", i);
		recs[i] = (struct test_record){
		    .timestamp_delta = i * 7,
		    .key = i % 2 ? "k" : NULL,
		    .key_len = 1,
		    .value = values[i],
		    .value_len = strlen(values[i]),
		};
	}
	size_t len = test_batch_build(buf, cap, b, recs, (uint32_t)count);
	ck_assert_msg(len > 0, "test buffer too small");
	return len;
}

/*
 * One record (key 01 02 03 04, value 05 06 07, header 08 09 0a = 0b 0c, timestampDelta
 * 5 ms) in a batch with firstTimestamp 1479847795000 and everything else zero, exactly
 * as Sarama's record_test.go "uncompressed record" case has it, CRC 0x547961FD.
 */
static const uint8_t sarama_batch[] = {
    0,	  0,	0,    0,    0,	 0,   0,  0,  /* baseOffset */
    0,	  0,	0,    70,		      /* batchLength */
    0,	  0,	0,    0,		      /* partitionLeaderEpoch */
    2,					      /* magic */
    0x54, 0x79, 0x61, 0xFD,		      /* crc */
    0,	  0,				      /* attributes */
    0,	  0,	0,    0,		      /* lastOffsetDelta */
    0,	  0,	1,    88,   141, 205, 89, 56, /* baseTimestamp */
    0,	  0,	0,    0,    0,	 0,   0,  0,  /* maxTimestamp */
    0,	  0,	0,    0,    0,	 0,   0,  0,  /* producerId */
    0,	  0,				      /* producerEpoch */
    0,	  0,	0,    0,		      /* baseSequence */
    0,	  0,	0,    1,		      /* records */
    40,	  0,	10,   0,    8,	 1,   2,  3,  4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12,
};

START_TEST(test_batch_encoder_matches_sarama)
{
	static const uint8_t key[] = {1, 2, 3, 4}, value[] = {5, 6, 7}, hkey[] = {8, 9, 10},
			     hvalue[] = {11, 12};
	struct test_record rec = {
	    .timestamp_delta = 5,
	    .key = key,
	    .key_len = sizeof(key),
	    .value = value,
	    .value_len = sizeof(value),
	    .header_key = hkey,
	    .header_key_len = sizeof(hkey),
	    .header_value = hvalue,
	    .header_value_len = sizeof(hvalue),
	};
	struct test_batch b = {.base_timestamp = 1479847795000};
	uint8_t buf[256];
	size_t len = test_batch_build(buf, sizeof(buf), &b, &rec, 1);
	ck_assert_uint_eq(len, sizeof(sarama_batch));
	ck_assert_mem_eq(buf, sarama_batch, len);
}
END_TEST

START_TEST(test_batch_validate_sarama)
{
	struct batch_header h;
	ck_assert_int_eq(batch_validate(sarama_batch, sizeof(sarama_batch), &h), BATCH_OK);
	ck_assert_int_eq(h.base_offset, 0);
	ck_assert_int_eq(h.batch_length, 70);
	ck_assert_int_eq(h.magic, 2);
	ck_assert_uint_eq(h.crc, 0x547961FD);
	ck_assert_int_eq(h.attributes, 0);
	ck_assert_int_eq(h.last_offset_delta, 0);
	ck_assert_int_eq(h.base_timestamp, 1479847795000);
	ck_assert_int_eq(h.max_timestamp, 0);
	ck_assert_int_eq(h.record_count, 1);
	ck_assert_uint_eq(batch_crc(sarama_batch, sizeof(sarama_batch)), 0x547961FD);
}
END_TEST

START_TEST(test_batch_validate_fields)
{
	uint8_t buf[4096];
	struct test_batch b = plain_batch;
	b.producer_id = 4242;
	b.producer_epoch = 3;
	b.base_sequence = 17;
	size_t len = build_plain(buf, sizeof(buf), &b, 5);
	struct batch_header h;
	ck_assert_int_eq(batch_validate(buf, len, &h), BATCH_OK);
	ck_assert_int_eq(h.batch_length, (int32_t)len - 12);
	ck_assert_int_eq(h.record_count, 5);
	ck_assert_int_eq(h.last_offset_delta, 4);
	ck_assert_int_eq(h.base_timestamp, 1700000000000);
	ck_assert_int_eq(h.max_timestamp, 1700000000042);
	ck_assert_int_eq(h.producer_id, 4242);
	ck_assert_int_eq(h.producer_epoch, 3);
	ck_assert_int_eq(h.base_sequence, 17);
	ck_assert_int_eq(h.partition_leader_epoch, 0);
	ck_assert(!batch_is_transactional(&h));
	ck_assert(!batch_is_control(&h));
	ck_assert_int_eq(batch_compression(&h), BATCH_CODEC_NONE);
	ck_assert_int_eq(batch_last_offset(&h), 4);
	/* parse agrees, and NULL out is allowed. */
	struct batch_header p;
	ck_assert_int_eq(batch_parse(buf, len, &p), BATCH_OK);
	ck_assert(p.base_offset == h.base_offset && p.batch_length == h.batch_length &&
		  p.partition_leader_epoch == h.partition_leader_epoch && p.magic == h.magic &&
		  p.crc == h.crc && p.attributes == h.attributes &&
		  p.last_offset_delta == h.last_offset_delta &&
		  p.base_timestamp == h.base_timestamp && p.max_timestamp == h.max_timestamp &&
		  p.producer_id == h.producer_id && p.producer_epoch == h.producer_epoch &&
		  p.base_sequence == h.base_sequence && p.record_count == h.record_count);
	ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_OK);
	ck_assert_int_eq(batch_parse(buf, len, NULL), BATCH_OK);
}
END_TEST

START_TEST(test_batch_truncated)
{
	uint8_t buf[4096];
	size_t len = build_plain(buf, sizeof(buf), &plain_batch, 3);
	ck_assert_int_eq(batch_validate(buf, 0, NULL), BATCH_TRUNCATED);
	ck_assert_int_eq(batch_validate(NULL, 0, NULL), BATCH_TRUNCATED);
	ck_assert_int_eq(batch_validate(buf, 12, NULL), BATCH_TRUNCATED);
	ck_assert_int_eq(batch_validate(buf, BATCH_HEADER_BYTES - 1, NULL), BATCH_TRUNCATED);
	ck_assert_int_eq(batch_parse(buf, BATCH_HEADER_BYTES - 1, NULL), BATCH_TRUNCATED);
	/* A whole header but not the whole batch: the header parses, the batch does not
	 * validate, at every cut. */
	for (size_t cut = BATCH_HEADER_BYTES; cut < len; cut++) {
		ck_assert_int_eq(batch_parse(buf, cut, NULL), BATCH_OK);
		ck_assert_int_eq(batch_validate(buf, cut, NULL), BATCH_BAD_LENGTH);
	}
}
END_TEST

START_TEST(test_batch_lying_length)
{
	uint8_t buf[4096];
	size_t len = build_plain(buf, sizeof(buf), &plain_batch, 3);
	struct batch_header h;
	/* One byte too many given: trailing garbage. */
	buf[len] = 0;
	ck_assert_int_eq(batch_validate(buf, len + 1, NULL), BATCH_BAD_LENGTH);
	/* batchLength claims one byte more, or one less, than there is. */
	test_put_be(buf + 8, (uint32_t)(len - 12 + 1), 4);
	ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_LENGTH);
	test_put_be(buf + 8, (uint32_t)(len - 12 - 1), 4);
	ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_LENGTH);
	/* Shorter than a header, negative, or beyond the broker's limit: even the header
	 * alone is refused. */
	static const int32_t bad[] = {
	    0, 48, -1, INT32_MIN, (int32_t)LIMITS_BATCH_BYTES_MAX - 11, INT32_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_put_be(buf + 8, (uint32_t)bad[i], 4);
		ck_assert_msg(batch_parse(buf, len, &h) == BATCH_BAD_LENGTH, "batchLength %d",
			      bad[i]);
		ck_assert_int_eq(h.batch_length, bad[i]);
		ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_LENGTH);
	}
	/* Exactly a header (no records) and exactly the limit are lengths the header
	 * allows. */
	test_put_be(buf + 8, 49, 4);
	ck_assert_int_eq(batch_parse(buf, len, NULL), BATCH_OK);
	test_put_be(buf + 8, LIMITS_BATCH_BYTES_MAX - 12, 4);
	ck_assert_int_eq(batch_parse(buf, len, NULL), BATCH_OK);
}
END_TEST

START_TEST(test_batch_every_covered_byte_flip)
{
	uint8_t buf[4096];
	size_t len = build_plain(buf, sizeof(buf), &plain_batch, 4);
	for (size_t i = BATCH_CRC_START; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			buf[i] ^= (uint8_t)(1u << bit);
			ck_assert_msg(batch_validate(buf, len, NULL) == BATCH_BAD_CRC,
				      "byte %zu bit %d", i, bit);
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* The stored CRC itself. */
	for (size_t i = BATCH_OFFSET_CRC; i < BATCH_CRC_START; i++) {
		buf[i] ^= 0x01;
		ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_CRC);
		buf[i] ^= 0x01;
	}
	ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_OK);
}
END_TEST

START_TEST(test_batch_bad_magic)
{
	uint8_t buf[4096];
	size_t len = build_plain(buf, sizeof(buf), &plain_batch, 2);
	struct batch_header h;
	for (int magic = 0; magic < 2; magic++) {
		buf[BATCH_OFFSET_MAGIC] = (uint8_t)magic;
		ck_assert_int_eq(batch_parse(buf, len, &h), BATCH_BAD_MAGIC);
		ck_assert_int_eq(h.magic, magic);
		ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_MAGIC);
	}
	buf[BATCH_OFFSET_MAGIC] = 3;
	ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_MAGIC);
	buf[BATCH_OFFSET_MAGIC] = 0xff;
	ck_assert_int_eq(batch_validate(buf, len, NULL), BATCH_BAD_MAGIC);
}
END_TEST

START_TEST(test_batch_bad_count)
{
	uint8_t buf[4096];
	size_t len = build_plain(buf, sizeof(buf), &plain_batch, 3);
	struct batch_header h;
	/* (recordCount, lastOffsetDelta) pairs Kafka refuses, each with a valid CRC. */
	static const int32_t bad[][2] = {{0, -1}, {0, 0},	  {-1, -2},	  {3, 3},
					 {3, 1},  {3, INT32_MAX}, {INT32_MIN, 2}, {INT32_MAX, 2}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_put_be(buf + 57, (uint32_t)bad[i][0], 4);
		test_put_be(buf + 23, (uint32_t)bad[i][1], 4);
		test_batch_reseal(buf, len);
		ck_assert_msg(batch_validate(buf, len, &h) == BATCH_BAD_COUNT, "count %d delta %d",
			      bad[i][0], bad[i][1]);
		/* The header alone says nothing against it. */
		ck_assert_int_eq(batch_parse(buf, len, NULL), BATCH_OK);
	}
	test_put_be(buf + 57, 3, 4);
	test_put_be(buf + 23, 2, 4);
	test_batch_reseal(buf, len);
	ck_assert_int_eq(batch_validate(buf, len, &h), BATCH_OK);
}
END_TEST

START_TEST(test_batch_set_base_offset)
{
	uint8_t buf[4096];
	size_t len = build_plain(buf, sizeof(buf), &plain_batch, 10);
	uint32_t crc_before = batch_crc(buf, len);
	static const int64_t offsets[] = {1, 123456789012LL, INT64_MAX - 9, 0};
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		batch_set_base_offset(buf, offsets[i]);
		struct batch_header h;
		ck_assert_int_eq(batch_validate(buf, len, &h), BATCH_OK);
		ck_assert_int_eq(h.base_offset, offsets[i]);
		ck_assert_int_eq(batch_last_offset(&h), offsets[i] + 9);
		ck_assert_uint_eq(batch_crc(buf, len), crc_before);
	}
	/* Big-endian on the wire. */
	batch_set_base_offset(buf, 0x0102030405060708LL);
	static const uint8_t be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	ck_assert_mem_eq(buf, be, 8);
	batch_set_leader_epoch(buf, 77);
	struct batch_header h;
	ck_assert_int_eq(batch_validate(buf, len, &h), BATCH_OK);
	ck_assert_int_eq(h.partition_leader_epoch, 77);
	/* At an odd address too. */
	uint8_t *odd = malloc(len + 1);
	ck_assert_ptr_nonnull(odd);
	memcpy(odd + 1, buf, len);
	batch_set_base_offset(odd + 1, 99);
	ck_assert_int_eq(batch_validate(odd + 1, len, &h), BATCH_OK);
	ck_assert_int_eq(h.base_offset, 99);
	free(odd);
}
END_TEST

START_TEST(test_batch_attributes)
{
	uint8_t buf[4096];
	struct test_batch b = plain_batch;
	struct batch_header h;
	static const struct {
		int16_t attributes;
		bool transactional, control, known;
		enum batch_codec codec;
	} cases[] = {
	    {0x0001, false, false, true, BATCH_CODEC_GZIP},
	    {0x0002, false, false, true, BATCH_CODEC_SNAPPY},
	    {0x0003, false, false, true, BATCH_CODEC_LZ4},
	    {0x0004, false, false, true, BATCH_CODEC_ZSTD},
	    {0x0005, false, false, false, (enum batch_codec)5},
	    {0x0007, false, false, false, (enum batch_codec)7},
	    {0x0010, true, false, true, BATCH_CODEC_NONE},
	    {0x0030, true, true, true, BATCH_CODEC_NONE},
	    {0x0014, true, false, true, BATCH_CODEC_ZSTD},
	    {0x0008, false, false, true, BATCH_CODEC_NONE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b.attributes = cases[i].attributes;
		size_t len = build_plain(buf, sizeof(buf), &b, 2);
		ck_assert_int_eq(batch_validate(buf, len, &h), BATCH_OK);
		ck_assert_int_eq(h.attributes, cases[i].attributes);
		ck_assert_int_eq(batch_is_transactional(&h), cases[i].transactional);
		ck_assert_int_eq(batch_is_control(&h), cases[i].control);
		ck_assert_int_eq(batch_compression(&h), cases[i].codec);
		ck_assert_int_eq(batch_compression_known(&h), cases[i].known);
	}
}
END_TEST

START_TEST(test_batch_error_names)
{
	ck_assert_str_eq(batch_error_name(BATCH_OK), "ok");
	ck_assert_str_eq(batch_error_name(BATCH_TRUNCATED), "truncated");
	ck_assert_str_eq(batch_error_name(BATCH_BAD_LENGTH), "bad length");
	ck_assert_str_eq(batch_error_name(BATCH_BAD_MAGIC), "bad magic");
	ck_assert_str_eq(batch_error_name(BATCH_BAD_CRC), "bad crc");
	ck_assert_str_eq(batch_error_name(BATCH_BAD_COUNT), "bad count");
	ck_assert_str_eq(batch_error_name((enum batch_error)99), "?");
}
END_TEST

/* ---- frames ---- */

static const struct frame_header sample_header = {
    .magic = FRAME_MAGIC,
    .frame_len = 0x01020304,
    .crc = 0xA1B2C3D4,
    .partition_id = 0x11223344,
    .base_offset = INT64_C(0x0102030405060708),
    .last_offset_delta = -2,
    .max_timestamp = INT64_MIN + 5,
    .record_count = 0x7ffffffe,
};

START_TEST(test_frame_header_layout)
{
	uint8_t buf[FRAME_HEADER_BYTES + 2];
	memset(buf, 0xEE, sizeof(buf));
	frame_header_encode(&sample_header, buf);
	ck_assert_mem_eq(buf, "SLC1", 4);
	static const uint8_t expect[FRAME_HEADER_BYTES] = {
	    'S',  'L',	'C',  '1',		   /* magic */
	    0x04, 0x03, 0x02, 0x01,		   /* frame_len */
	    0xD4, 0xC3, 0xB2, 0xA1,		   /* crc */
	    0x44, 0x33, 0x22, 0x11,		   /* partition_id */
	    8,	  7,	6,    5,    4, 3, 2, 1,	   /* base_offset */
	    0xFE, 0xFF, 0xFF, 0xFF,		   /* last_offset_delta -2 */
	    5,	  0,	0,    0,    0, 0, 0, 0x80, /* max_timestamp */
	    0xFE, 0xFF, 0xFF, 0x7F,		   /* record_count */
	};
	ck_assert_mem_eq(buf, expect, FRAME_HEADER_BYTES);
	ck_assert_uint_eq(buf[FRAME_HEADER_BYTES], 0xEE); /* nothing written past 40 */
}
END_TEST

START_TEST(test_frame_header_round_trip)
{
	uint8_t raw[FRAME_HEADER_BYTES + 3];
	for (int shift = 0; shift < 4; shift++) {
		/* Any alignment. */
		frame_header_encode(&sample_header, raw + shift);
		struct frame_header h;
		frame_header_decode(raw + shift, &h);
		ck_assert_uint_eq(h.magic, sample_header.magic);
		ck_assert_uint_eq(h.frame_len, sample_header.frame_len);
		ck_assert_uint_eq(h.crc, sample_header.crc);
		ck_assert_uint_eq(h.partition_id, sample_header.partition_id);
		ck_assert_int_eq(h.base_offset, sample_header.base_offset);
		ck_assert_int_eq(h.last_offset_delta, sample_header.last_offset_delta);
		ck_assert_int_eq(h.max_timestamp, sample_header.max_timestamp);
		ck_assert_int_eq(h.record_count, sample_header.record_count);
	}
}
END_TEST

/* Builds a sealed frame around a real batch at DST; returns frame_len. */
static uint32_t build_frame(uint8_t *dst, size_t cap, uint32_t partition_id, int64_t base_offset,
			    int count)
{
	size_t blen =
	    build_plain(dst + FRAME_HEADER_BYTES, cap - FRAME_HEADER_BYTES, &plain_batch, count);
	struct batch_header bh;
	batch_set_base_offset(dst + FRAME_HEADER_BYTES, base_offset);
	ck_assert_int_eq(batch_validate(dst + FRAME_HEADER_BYTES, blen, &bh), BATCH_OK);
	struct frame_header h = {
	    .magic = FRAME_MAGIC,
	    .frame_len = (uint32_t)(FRAME_HEADER_BYTES + blen),
	    .partition_id = partition_id,
	    .base_offset = bh.base_offset,
	    .last_offset_delta = bh.last_offset_delta,
	    .max_timestamp = bh.max_timestamp,
	    .record_count = bh.record_count,
	};
	frame_header_encode(&h, dst);
	frame_seal(dst, h.frame_len);
	return h.frame_len;
}

START_TEST(test_frame_seal_and_check)
{
	uint8_t buf[4096];
	uint32_t len = build_frame(buf, sizeof(buf), 7, 1000, 5);
	struct frame_header h;
	ck_assert_int_eq(frame_check(buf, len, &h), FRAME_OK);
	ck_assert_uint_eq(h.frame_len, len);
	ck_assert_uint_eq(h.partition_id, 7);
	ck_assert_int_eq(h.base_offset, 1000);
	ck_assert_int_eq(h.last_offset_delta, 4);
	ck_assert_int_eq(h.record_count, 5);
	ck_assert_int_eq(h.max_timestamp, plain_batch.max_timestamp);
	ck_assert_uint_eq(h.crc, frame_crc(buf, len));
	ck_assert_uint_eq(h.crc, crc32c(0, buf + 12, len - 12));
	ck_assert(!frame_is_pad(&h));
	/* More bytes available than the frame: still the one frame. */
	memset(buf + len, 0xAB, 64);
	ck_assert_int_eq(frame_check(buf, len + 64, NULL), FRAME_OK);
	/* The payload is the batch, untouched. */
	ck_assert_int_eq(batch_validate(buf + FRAME_HEADER_BYTES, len - FRAME_HEADER_BYTES, NULL),
			 BATCH_OK);
}
END_TEST

/* frame_seal_tail with the batch's own crc gives the frame_seal CRC, for batches of
 * every size built here; with a wrong tail CRC the frame fails its check. */
START_TEST(test_frame_seal_tail)
{
	static uint8_t a[65536], b[65536];
	for (int count = 1; count <= 64; count += 9) {
		uint32_t len = build_frame(a, sizeof(a), 9, 77, count);
		memcpy(b, a, len);
		memset(b + 8, 0, 4); /* crc field */
		struct batch_header bh;
		ck_assert_int_eq(
		    batch_validate(b + FRAME_HEADER_BYTES, len - FRAME_HEADER_BYTES, &bh),
		    BATCH_OK);
		uint32_t tail = len - FRAME_HEADER_BYTES - BATCH_CRC_START;
		frame_seal_tail(b, len, tail, bh.crc);
		ck_assert_int_eq(memcmp(a, b, len), 0);
		ck_assert_int_eq(frame_check(b, len, NULL), FRAME_OK);
		/* The whole payload as the tail, and no tail at all. */
		frame_seal_tail(b, len, len - FRAME_HEADER_BYTES,
				crc32c(0, b + FRAME_HEADER_BYTES, len - FRAME_HEADER_BYTES));
		ck_assert_int_eq(memcmp(a, b, len), 0);
		frame_seal_tail(b, len, 0, 0);
		ck_assert_int_eq(memcmp(a, b, len), 0);
		frame_seal_tail(b, len, tail, bh.crc ^ 1);
		ck_assert_int_eq(frame_check(b, len, NULL), FRAME_BAD_CRC);
	}
}
END_TEST

START_TEST(test_frame_bad_crc)
{
	uint8_t buf[4096];
	uint32_t len = build_frame(buf, sizeof(buf), 3, 0, 3);
	/* Every covered byte, header fields from partition_id on and the payload. */
	for (uint32_t i = FRAME_CRC_START; i < len; i++) {
		buf[i] ^= 0x10;
		ck_assert_msg(frame_check(buf, len, NULL) == FRAME_BAD_CRC, "byte %u", i);
		buf[i] ^= 0x10;
	}
	for (uint32_t i = 8; i < 12; i++) {
		buf[i] ^= 0x80;
		ck_assert_int_eq(frame_check(buf, len, NULL), FRAME_BAD_CRC);
		buf[i] ^= 0x80;
	}
	ck_assert_int_eq(frame_check(buf, len, NULL), FRAME_OK);
}
END_TEST

START_TEST(test_frame_end_of_log)
{
	uint8_t zeros[4096] = {0};
	struct frame_header h;
	ck_assert_int_eq(frame_check(zeros, sizeof(zeros), &h), FRAME_END);
	ck_assert_uint_eq(h.magic, 0);
	ck_assert_int_eq(frame_check(zeros, 8, NULL), FRAME_END);
	ck_assert_int_eq(frame_check(zeros, FRAME_HEADER_BYTES, NULL), FRAME_END);
	/* A zero magic with a length is not the end: something was written there. */
	zeros[4] = 64;
	ck_assert_int_eq(frame_check(zeros, sizeof(zeros), NULL), FRAME_BAD_MAGIC);
}
END_TEST

START_TEST(test_frame_truncated)
{
	uint8_t buf[4096];
	uint32_t len = build_frame(buf, sizeof(buf), 3, 0, 3);
	struct frame_header h;
	for (size_t avail = 0; avail < 8; avail++) {
		memset(&h, 0x55, sizeof(h));
		ck_assert_int_eq(frame_check(buf, avail, &h), FRAME_TRUNCATED);
		ck_assert_uint_eq(h.frame_len, 0);
	}
	ck_assert_int_eq(frame_check(NULL, 0, NULL), FRAME_TRUNCATED);
	/* Enough for magic and length: the caller learns how much to read. */
	for (size_t avail = 8; avail < len; avail++) {
		ck_assert_int_eq(frame_check(buf, avail, &h), FRAME_TRUNCATED);
		ck_assert_uint_eq(h.magic, FRAME_MAGIC);
		ck_assert_uint_eq(h.frame_len, len);
		if (avail >= FRAME_HEADER_BYTES)
			ck_assert_uint_eq(h.partition_id, 3);
		else
			ck_assert_uint_eq(h.partition_id, 0);
	}
	ck_assert_int_eq(frame_check(buf, len, NULL), FRAME_OK);
}
END_TEST

static void put_le32_at(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

START_TEST(test_frame_bad_length)
{
	uint8_t buf[4096];
	build_frame(buf, sizeof(buf), 3, 0, 3);
	static const uint32_t bad[] = {0, 1, FRAME_HEADER_BYTES - 1, LIMITS_FRAME_BYTES_MAX + 1,
				       UINT32_MAX};
	struct frame_header h;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_le32_at(buf + 4, bad[i]);
		ck_assert_msg(frame_check(buf, sizeof(buf), &h) == FRAME_BAD_LENGTH, "len %u",
			      bad[i]);
		ck_assert_uint_eq(h.frame_len, bad[i]);
	}
	/* The largest legal length is only truncated when the bytes are not there. */
	put_le32_at(buf + 4, LIMITS_FRAME_BYTES_MAX);
	ck_assert_int_eq(frame_check(buf, sizeof(buf), NULL), FRAME_TRUNCATED);
	/* A length that is legal but wrong is caught by the CRC. */
	uint8_t buf2[4096];
	uint32_t len = build_frame(buf2, sizeof(buf2), 3, 0, 3);
	put_le32_at(buf2 + 4, len - 1);
	ck_assert_int_eq(frame_check(buf2, sizeof(buf2), NULL), FRAME_BAD_CRC);
	put_le32_at(buf2 + 4, len + 1);
	ck_assert_int_eq(frame_check(buf2, sizeof(buf2), NULL), FRAME_BAD_CRC);
}
END_TEST

START_TEST(test_frame_bad_magic)
{
	uint8_t buf[4096];
	uint32_t len = build_frame(buf, sizeof(buf), 3, 0, 3);
	for (int i = 0; i < 4; i++) {
		buf[i] ^= 0x01;
		ck_assert_int_eq(frame_check(buf, len, NULL), FRAME_BAD_MAGIC);
		buf[i] ^= 0x01;
	}
	/* The magic in big-endian order is not the magic. */
	put_le32_at(buf, 0x534c4331);
	ck_assert_int_eq(frame_check(buf, len, NULL), FRAME_BAD_MAGIC);
	/* Random bytes. */
	memset(buf, 0xFF, 64);
	ck_assert_int_eq(frame_check(buf, len, NULL), FRAME_BAD_MAGIC);
}
END_TEST

START_TEST(test_frame_pad)
{
	static uint8_t buf[64 * 1024];
	static const uint32_t lens[] = {FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 1, 512, 4096 - 17,
					sizeof(buf)};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(buf, 0xCD, sizeof(buf));
		frame_pad(buf, lens[i]);
		struct frame_header h;
		ck_assert_int_eq(frame_check(buf, lens[i], &h), FRAME_OK);
		ck_assert(frame_is_pad(&h));
		ck_assert_uint_eq(h.partition_id, FRAME_PAD_PARTITION_ID);
		ck_assert_uint_eq(h.frame_len, lens[i]);
		ck_assert_int_eq(h.record_count, 0);
		ck_assert_int_eq(h.base_offset, -1);
		for (uint32_t j = FRAME_HEADER_BYTES; j < lens[i]; j++)
			ck_assert_uint_eq(buf[j], 0);
		if (lens[i] < sizeof(buf))
			ck_assert_uint_eq(buf[lens[i]], 0xCD); /* stays inside LEN */
	}
}
END_TEST

/* A buffer laid out like a segment: frames, a pad to the 4 KiB boundary, another
 * frame, then never-written zeros. A scan sees each and stops at the end. */
START_TEST(test_frame_scan_segment)
{
	enum { SEG = 16384 };
	uint8_t *seg = calloc(1, SEG);
	ck_assert_ptr_nonnull(seg);
	size_t pos = 0;
	pos += build_frame(seg + pos, SEG - pos, 1, 0, 3);
	pos += build_frame(seg + pos, SEG - pos, 2, 0, 1);
	pos += build_frame(seg + pos, SEG - pos, 1, 3, 4);
	uint32_t pad = (uint32_t)(4096 - pos);
	ck_assert_uint_ge(pad, FRAME_HEADER_BYTES);
	frame_pad(seg + pos, pad);
	pos += pad;
	pos += build_frame(seg + pos, SEG - pos, 2, 1, 2);
	size_t written = pos;

	static const struct {
		uint32_t partition;
		int64_t base;
		int32_t count;
	} expect[] = {{1, 0, 3}, {2, 0, 1}, {1, 3, 4}, {FRAME_PAD_PARTITION_ID, -1, 0}, {2, 1, 2}};
	size_t n = 0;
	enum frame_check c;
	struct frame_header h;
	pos = 0;
	while ((c = frame_check(seg + pos, SEG - pos, &h)) == FRAME_OK) {
		ck_assert_uint_lt(n, 5);
		ck_assert_uint_eq(h.partition_id, expect[n].partition);
		ck_assert_int_eq(h.base_offset, expect[n].base);
		ck_assert_int_eq(h.record_count, expect[n].count);
		pos += h.frame_len;
		n++;
	}
	ck_assert_int_eq(c, FRAME_END);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(pos, written);

	/* A torn last frame (a crash mid-write): the scan stops before it. */
	seg[written - 5] ^= 0x40;
	pos = 0;
	n = 0;
	while ((c = frame_check(seg + pos, SEG - pos, &h)) == FRAME_OK) {
		pos += h.frame_len;
		n++;
	}
	ck_assert_int_eq(c, FRAME_BAD_CRC);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(pos, 4096);
	free(seg);
}
END_TEST

START_TEST(test_frame_check_names)
{
	ck_assert_str_eq(frame_check_name(FRAME_OK), "ok");
	ck_assert_str_eq(frame_check_name(FRAME_END), "end");
	ck_assert_str_eq(frame_check_name(FRAME_BAD_MAGIC), "bad magic");
	ck_assert_str_eq(frame_check_name(FRAME_BAD_LENGTH), "bad length");
	ck_assert_str_eq(frame_check_name(FRAME_TRUNCATED), "truncated");
	ck_assert_str_eq(frame_check_name(FRAME_BAD_CRC), "bad crc");
	ck_assert_str_eq(frame_check_name((enum frame_check)99), "?");
}
END_TEST

START_TEST(test_frame_pad_too_short_aborts)
{
	uint8_t buf[64];
	frame_pad(buf, FRAME_HEADER_BYTES - 1);
}
END_TEST

START_TEST(test_frame_seal_wrong_length_aborts)
{
	uint8_t buf[4096];
	uint32_t len = build_frame(buf, sizeof(buf), 3, 0, 3);
	frame_seal(buf, len - 1); /* header says LEN: a caller bug */
}
END_TEST

int main(void)
{
	const struct {
		const char *name;
		const TTest *test;
		int signal;
	} cases[] = {
	    {"batch_encoder_matches_sarama", test_batch_encoder_matches_sarama, 0},
	    {"batch_validate_sarama", test_batch_validate_sarama, 0},
	    {"batch_validate_fields", test_batch_validate_fields, 0},
	    {"batch_truncated", test_batch_truncated, 0},
	    {"batch_lying_length", test_batch_lying_length, 0},
	    {"batch_every_covered_byte_flip", test_batch_every_covered_byte_flip, 0},
	    {"batch_bad_magic", test_batch_bad_magic, 0},
	    {"batch_bad_count", test_batch_bad_count, 0},
	    {"batch_set_base_offset", test_batch_set_base_offset, 0},
	    {"batch_attributes", test_batch_attributes, 0},
	    {"batch_error_names", test_batch_error_names, 0},
	    {"frame_header_layout", test_frame_header_layout, 0},
	    {"frame_header_round_trip", test_frame_header_round_trip, 0},
	    {"frame_seal_and_check", test_frame_seal_and_check, 0},
	    {"frame_seal_tail", test_frame_seal_tail, 0},
	    {"frame_bad_crc", test_frame_bad_crc, 0},
	    {"frame_end_of_log", test_frame_end_of_log, 0},
	    {"frame_truncated", test_frame_truncated, 0},
	    {"frame_bad_length", test_frame_bad_length, 0},
	    {"frame_bad_magic", test_frame_bad_magic, 0},
	    {"frame_pad", test_frame_pad, 0},
	    {"frame_scan_segment", test_frame_scan_segment, 0},
	    {"frame_check_names", test_frame_check_names, 0},
	    {"frame_pad_too_short_aborts", test_frame_pad_too_short_aborts, SIGABRT},
	    {"frame_seal_wrong_length_aborts", test_frame_seal_wrong_length_aborts, SIGABRT},
	};
	Suite *s = suite_create("frame");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_test_raise_signal(tc, cases[i].test, cases[i].signal);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	}
	return unit_run(s);
}
