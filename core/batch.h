/*
 * core/batch.h: a read-only view of the header of a Kafka RecordBatch (message format
 * v2, "magic 2", Kafka 0.11+), for validating what a producer sends and for filling a
 * shard-log frame's fields. It parses and checks the 61-byte header and the batch CRC
 * and rewrites baseOffset in place; it never looks at, decompresses or re-encodes the
 * records, and knows no older message formats (magic 0 and 1 are refused).
 *
 * Layout (all integers big-endian, as on the wire and as stored):
 *
 *   offset size field                 meaning
 *  +------+----+---------------------+-------------------------------------------+
 *  |    0 |  8 | baseOffset           | i64, the broker assigns it on append      |
 *  |    8 |  4 | batchLength          | i32, bytes after this field (total - 12)  |
 *  |   12 |  4 | partitionLeaderEpoch | i32, the broker sets it; outside the CRC  |
 *  |   16 |  1 | magic                | i8, 2                                     |
 *  |   17 |  4 | crc                  | u32, CRC-32C of bytes [21, end)           |
 *  |   21 |  2 | attributes           | i16, see BATCH_ATTR_* below               |
 *  |   23 |  4 | lastOffsetDelta      | i32, last record's offsetDelta            |
 *  |   27 |  8 | baseTimestamp        | i64, first record's timestamp (ms)        |
 *  |   35 |  8 | maxTimestamp         | i64, largest timestamp in the batch (ms)  |
 *  |   43 |  8 | producerId           | i64, -1 when not idempotent               |
 *  |   51 |  2 | producerEpoch        | i16, -1 when not idempotent               |
 *  |   53 |  4 | baseSequence         | i32, -1 when not idempotent               |
 *  |   57 |  4 | recordCount          | i32, records that follow                  |
 *  |   61 |  . | records              | (compressed) records, varint-encoded      |
 *  +------+----+---------------------+-------------------------------------------+
 *
 * attributes: bits 0-2 compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
 * bit 3 timestamp type (1 = LogAppendTime), bit 4 transactional, bit 5 control batch,
 * bit 6 delete horizon set (compaction only), other bits 0.
 *
 * Everything here reads untrusted bytes: no function asserts on their content.
 */
#ifndef SLUICE_CORE_BATCH_H
#define SLUICE_CORE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

#define BATCH_HEADER_BYTES 61u
#define BATCH_MAGIC_V2	   2
/* batchLength counts the bytes after baseOffset (8) and batchLength (4). */
#define BATCH_LENGTH_OVERHEAD 12u
/* Field offsets the rest of sluice may need to touch in place. */
#define BATCH_OFFSET_BASE_OFFSET  0u
#define BATCH_OFFSET_LEADER_EPOCH 12u
#define BATCH_OFFSET_MAGIC	  16u
#define BATCH_OFFSET_CRC	  17u
#define BATCH_CRC_START		  21u /* the CRC covers [BATCH_CRC_START, end) */

#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME  0x08
#define BATCH_ATTR_TRANSACTIONAL    0x10
#define BATCH_ATTR_CONTROL	    0x20
#define BATCH_ATTR_DELETE_HORIZON   0x40

/* Compression codecs, attributes bits 0-2. */
enum batch_codec {
	BATCH_CODEC_NONE = 0,
	BATCH_CODEC_GZIP = 1,
	BATCH_CODEC_SNAPPY = 2,
	BATCH_CODEC_LZ4 = 3,
	BATCH_CODEC_ZSTD = 4,
	BATCH_CODEC_COUNT /* 5..7 are unknown to Kafka */
};

/* One batch header, decoded to host order. */
struct batch_header {
	int64_t base_offset;		/* offset of the first record (0 from producers) */
	int32_t batch_length;		/* bytes after the batchLength field */
	int32_t partition_leader_epoch; /* leader epoch; set by the broker */
	int8_t magic;			/* 2 */
	uint32_t crc;			/* stored CRC-32C of bytes [21, end) */
	int16_t attributes;		/* codec, timestamp type, transactional, control */
	int32_t last_offset_delta;	/* offset of the last record - base_offset */
	int64_t base_timestamp;		/* first record's timestamp (ms) */
	int64_t max_timestamp;		/* largest record timestamp (ms) */
	int64_t producer_id;		/* -1 unless idempotent or transactional */
	int16_t producer_epoch;		/* -1 unless idempotent or transactional */
	int32_t base_sequence;		/* first record's sequence, -1 unless idempotent */
	int32_t record_count;		/* records in the batch */
};

enum batch_error {
	BATCH_OK = 0,
	BATCH_TRUNCATED,  /* fewer than BATCH_HEADER_BYTES bytes */
	BATCH_BAD_LENGTH, /* batchLength below the header, above LIMITS_BATCH_BYTES_MAX, or
			   * (batch_validate) batchLength + 12 != the bytes given */
	BATCH_BAD_MAGIC,  /* magic != 2 */
	BATCH_BAD_CRC,	  /* stored CRC differs from the CRC-32C of bytes [21, end) */
	BATCH_BAD_COUNT,  /* recordCount < 1, or lastOffsetDelta != recordCount - 1 */
	BATCH_ERROR_COUNT
};

/*
 * Decodes the header of the batch at BUF (LEN readable bytes, any alignment) into OUT
 * (may be NULL) and checks only what the header alone can prove, in this order:
 *   LEN < BATCH_HEADER_BYTES                                  -> BATCH_TRUNCATED
 *   magic != 2                                                -> BATCH_BAD_MAGIC
 *   batchLength + 12 < 61 or > LIMITS_BATCH_BYTES_MAX         -> BATCH_BAD_LENGTH
 * It does not compare batchLength with LEN (BUF may hold several batches, or only the
 * start of one), check the CRC or the count. OUT is filled whenever LEN >= 61, also on
 * error. On BATCH_OK the whole batch is batch_length + BATCH_LENGTH_OVERHEAD bytes.
 */
enum batch_error batch_parse(const void *buf, size_t len, struct batch_header *out);

/*
 * Validates that the LEN bytes at BUF are exactly one RecordBatch v2, as Kafka's broker
 * does on Produce (LogValidator), in this order: batch_parse()'s checks; then
 *   batchLength + 12 != LEN                                   -> BATCH_BAD_LENGTH
 *   CRC-32C of bytes [21, LEN) != crc                         -> BATCH_BAD_CRC
 *   recordCount < 1, or lastOffsetDelta != recordCount - 1    -> BATCH_BAD_COUNT
 * The count rule is Kafka's own for magic 2 (count > 0 and lastOffset - baseOffset + 1
 * == count): a producer never sends an empty batch or offset gaps. Compacted batches
 * (gaps, empty) only arise from log compaction, which sluice does not do, so the strict
 * rule also holds for everything in sluice's log. The records themselves are not
 * walked (they may be compressed). OUT (may be NULL) is filled whenever LEN >= 61.
 */
enum batch_error batch_validate(const void *buf, size_t len, struct batch_header *out);

/* Stores BASE_OFFSET big-endian in the first 8 bytes of the batch at BUF (any
 * alignment). baseOffset lies outside the CRC, so the batch stays valid. */
void batch_set_base_offset(void *buf, int64_t base_offset);

/* Stores EPOCH in partitionLeaderEpoch (bytes 12..15), also outside the CRC. */
void batch_set_leader_epoch(void *buf, int32_t epoch);

/* CRC-32C of bytes [BATCH_CRC_START, LEN) of the batch at BUF, as the crc field should
 * hold. Returns 0 when LEN < BATCH_HEADER_BYTES. */
uint32_t batch_crc(const void *buf, size_t len);

/* Attribute bits of a decoded header. */
bool batch_is_transactional(const struct batch_header *h);
bool batch_is_control(const struct batch_header *h);
/* The codec, attributes bits 0-2; values >= BATCH_CODEC_COUNT are unknown to Kafka. */
enum batch_codec batch_compression(const struct batch_header *h);
/* True when the codec is one Kafka defines (none, gzip, snappy, lz4, zstd); Produce
 * must refuse others, as Kafka does. */
bool batch_compression_known(const struct batch_header *h);

/* Offset of the batch's last record: base_offset + last_offset_delta (wrapping, never
 * undefined, whatever the fields hold). */
int64_t batch_last_offset(const struct batch_header *h);

/* "ok", "truncated", "bad length", "bad magic", "bad crc", "bad count" ("?" outside
 * the enum). */
const char *batch_error_name(enum batch_error e);

/*
 * Building and walking the records of an uncompressed batch: what the broker writes
 * itself (the group coordinator's offset records, core/coordinator). Records are
 * Kafka's DefaultRecord with zigzag varints:
 *   length varint | attributes i8 = 0 | timestampDelta varlong = 0 | offsetDelta varint |
 *   keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value |
 *   headerCount varint = 0
 * The batch: baseOffset 0 (the log assigns it), no producer id (-1), both timestamps
 * the builder's TIMESTAMP_MS, CRC-32C set by batch_builder_finish.
 */
struct batch_builder {
	uint8_t *buf;	      /* the caller's buffer */
	size_t cap;	      /* its bytes */
	size_t len;	      /* bytes used: header + records so far */
	int32_t count;	      /* records added */
	int64_t timestamp_ms; /* base and max timestamp */
};

/* Bytes one record with keys/values of these lengths (-1 = null) takes in a batch,
 * with an offsetDelta below 2^20 (the bound the builder sizes for). */
size_t batch_record_bytes_max(int32_t key_len, int32_t value_len);

/* Starts a batch in the CAP bytes at BUF. */
void batch_builder_init(struct batch_builder *b, void *buf, size_t cap, int64_t timestamp_ms);

/* Appends one record (KEY / VALUE NULL for null). Returns 0, or -ENOBUFS when it does
 * not fit (the builder is unchanged: finish what is there, start another batch). */
int batch_builder_add(struct batch_builder *b, const void *key, int32_t key_len, const void *value,
		      int32_t value_len);

/* Writes the header and CRC. Returns the batch length, or -EINVAL with no records. */
long batch_builder_finish(struct batch_builder *b);

/* Called by batch_records_each per record (KEY / VALUE NULL for null); a non-zero
 * return stops the walk and is returned. */
typedef int (*batch_record_fn)(void *ctx, int32_t offset_delta, const uint8_t *key,
			       int32_t key_len, const uint8_t *value, int32_t value_len);

/* Walks the records of the valid (batch_validate) uncompressed batch of LEN bytes at
 * BUF. Returns the number of records, FN's non-zero return, -EBADMSG when a record
 * does not parse within the batch, or -ENOTSUP for a compressed or control batch. */
long batch_records_each(const void *buf, size_t len, batch_record_fn fn, void *ctx);

#endif
