/* Kafka RecordBatch v2 bytes for the unit tests (header only; static inline, nothing to
 * link): Kafka's zigzag varint, big-endian stores, one record (attributes 0,
 * timestampDelta, offsetDelta, key or null key, value, one header or none) and a whole
 * batch whose 61-byte header takes its fields from struct test_batch, with batchLength and
 * the CRC32C (over attributes to the end) filled in. It builds uncompressed batches only
 * and checks nothing: a caller that wants the batch validated calls batch_validate(), and
 * a builder returns 0 when CAP is too small (no Check asserts here, so a forked child may
 * use it). The encoder under test is not used: core/crc32c.h is the only dependency. */
#ifndef SLUICE_TESTS_UNIT_TESTBATCH_H
#define SLUICE_TESTS_UNIT_TESTBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/crc32c.h"

#define TEST_BATCH_HEADER_BYTES 61u /* baseOffset .. recordCount */
#define TEST_BATCH_CRC_START	21u /* the CRC covers [21, end) */
#define TEST_VARINT_MAX		10u /* bytes of the longest zigzag varint */

/* The batch header fields a test chooses (batchLength, magic, CRC, lastOffsetDelta and
 * recordCount follow from the records). */
struct test_batch {
	int64_t base_offset;	/* baseOffset (0 as producers send) */
	int32_t leader_epoch;	/* partitionLeaderEpoch (-1 as producers send) */
	int16_t attributes;	/* codec bits, timestamp type, ... */
	int64_t base_timestamp; /* baseTimestamp (ms) */
	int64_t max_timestamp;	/* maxTimestamp (ms) */
	int64_t producer_id;	/* -1 when not idempotent */
	int16_t producer_epoch; /* -1 when not idempotent */
	int32_t base_sequence;	/* -1 when not idempotent */
};

/* One record's contents; its offsetDelta is its index in the batch. */
struct test_record {
	int64_t timestamp_delta;
	const void *key; /* NULL: null key (length -1) */
	size_t key_len;
	const void *value;
	size_t value_len;
	const void *header_key; /* NULL: no header */
	size_t header_key_len;
	const void *header_value;
	size_t header_value_len;
};

/* Stores V as Kafka's zigzag varint at P; returns the byte after it (at most
 * TEST_VARINT_MAX bytes written). */
static inline uint8_t *test_put_varint(uint8_t *p, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	while (z >= 0x80) {
		*p++ = (uint8_t)(z | 0x80);
		z >>= 7;
	}
	*p++ = (uint8_t)z;
	return p;
}

/* Bytes test_put_varint() writes for V. */
static inline size_t test_varint_len(int64_t v)
{
	uint8_t scratch[TEST_VARINT_MAX];
	return (size_t)(test_put_varint(scratch, v) - scratch);
}

/* Stores the low BYTES bytes of V big-endian at P. */
static inline void test_put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Writes record R with OFFSET_DELTA (length-prefixed) at P, which has CAP bytes; returns
 * the bytes written, 0 when they do not fit. */
static inline size_t test_record_put(uint8_t *p, size_t cap, const struct test_record *r,
				     int64_t offset_delta)
{
	size_t body = 1 + test_varint_len(r->timestamp_delta) + test_varint_len(offset_delta);
	body += r->key ? test_varint_len((int64_t)r->key_len) + r->key_len : test_varint_len(-1);
	body += test_varint_len((int64_t)r->value_len) + r->value_len;
	if (r->header_key)
		body += test_varint_len(1) + test_varint_len((int64_t)r->header_key_len) +
			r->header_key_len + test_varint_len((int64_t)r->header_value_len) +
			r->header_value_len;
	else
		body += test_varint_len(0);
	size_t total = test_varint_len((int64_t)body) + body;
	if (total > cap)
		return 0;
	uint8_t *q = test_put_varint(p, (int64_t)body);
	*q++ = 0; /* attributes, unused */
	q = test_put_varint(q, r->timestamp_delta);
	q = test_put_varint(q, offset_delta);
	if (r->key) {
		q = test_put_varint(q, (int64_t)r->key_len);
		memcpy(q, r->key, r->key_len);
		q += r->key_len;
	} else {
		q = test_put_varint(q, -1);
	}
	q = test_put_varint(q, (int64_t)r->value_len);
	if (r->value_len)
		memcpy(q, r->value, r->value_len);
	q += r->value_len;
	if (r->header_key) {
		q = test_put_varint(q, 1);
		q = test_put_varint(q, (int64_t)r->header_key_len);
		memcpy(q, r->header_key, r->header_key_len);
		q += r->header_key_len;
		q = test_put_varint(q, (int64_t)r->header_value_len);
		memcpy(q, r->header_value, r->header_value_len);
		q += r->header_value_len;
	} else {
		q = test_put_varint(q, 0);
	}
	return total;
}

/* Recomputes and stores the CRC of the LEN-byte batch at BUF (after a test edited a
 * covered field). */
static inline void test_batch_reseal(uint8_t *buf, size_t len)
{
	test_put_be(buf + 17, crc32c(0, buf + TEST_BATCH_CRC_START, len - TEST_BATCH_CRC_START), 4);
}

/* Writes the header of a LEN-byte batch at BUF, whose COUNT records already follow it:
 * the fields of B, magic 2, batchLength, lastOffsetDelta COUNT - 1, recordCount and the
 * CRC. */
static inline void test_batch_seal(uint8_t *buf, size_t len, const struct test_batch *b,
				   uint32_t count)
{
	test_put_be(buf + 0, (uint64_t)b->base_offset, 8);
	test_put_be(buf + 8, len - 12, 4); /* batchLength: after baseOffset and itself */
	test_put_be(buf + 12, (uint32_t)b->leader_epoch, 4);
	buf[16] = 2; /* magic */
	test_put_be(buf + 21, (uint16_t)b->attributes, 2);
	test_put_be(buf + 23, count - 1, 4); /* lastOffsetDelta */
	test_put_be(buf + 27, (uint64_t)b->base_timestamp, 8);
	test_put_be(buf + 35, (uint64_t)b->max_timestamp, 8);
	test_put_be(buf + 43, (uint64_t)b->producer_id, 8);
	test_put_be(buf + 51, (uint16_t)b->producer_epoch, 2);
	test_put_be(buf + 53, (uint32_t)b->base_sequence, 4);
	test_put_be(buf + 57, count, 4);
	test_batch_reseal(buf, len);
}

/* Builds a batch of COUNT records (record i is RECORDS[i], offsetDelta i) with header B
 * at BUF (CAP bytes); returns its length, 0 when it does not fit. */
static inline size_t test_batch_build(uint8_t *buf, size_t cap, const struct test_batch *b,
				      const struct test_record *records, uint32_t count)
{
	if (cap < TEST_BATCH_HEADER_BYTES)
		return 0;
	size_t len = TEST_BATCH_HEADER_BYTES;
	for (uint32_t i = 0; i < count; i++) {
		size_t n = test_record_put(buf + len, cap - len, &records[i], i);
		if (!n)
			return 0;
		len += n;
	}
	test_batch_seal(buf, len, b, count);
	return len;
}

#endif
