/*
 * core/batch.c: parsing and validation of Kafka RecordBatch v2 headers, and the two
 * in-place rewrites the broker makes (baseOffset, partitionLeaderEpoch). See
 * core/batch.h for the layout and the contract. Every read is bounds-checked against
 * the length given: the bytes come from clients and from disk.
 */
#include "core/batch.h"

#include "core/crc32c.h"

/* Big-endian loads and stores at any alignment. */
static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

enum {
	OFF_BATCH_LENGTH = 8,
	OFF_ATTRIBUTES = 21,
	OFF_LAST_OFFSET_DELTA = 23,
	OFF_BASE_TIMESTAMP = 27,
	OFF_MAX_TIMESTAMP = 35,
	OFF_PRODUCER_ID = 43,
	OFF_PRODUCER_EPOCH = 51,
	OFF_BASE_SEQUENCE = 53,
	OFF_RECORD_COUNT = 57,
};
_Static_assert(OFF_RECORD_COUNT + 4 == BATCH_HEADER_BYTES, "header fields fill 61 bytes");
_Static_assert(OFF_ATTRIBUTES == BATCH_CRC_START, "the CRC starts at the attributes");
_Static_assert(LIMITS_BATCH_BYTES_MAX <= INT32_MAX, "batchLength is an i32");

enum batch_error batch_parse(const void *buf, size_t len, struct batch_header *out)
{
	const uint8_t *p = buf;
	if (len < BATCH_HEADER_BYTES)
		return BATCH_TRUNCATED;
	struct batch_header h = {
	    .base_offset = (int64_t)get_be64(p + BATCH_OFFSET_BASE_OFFSET),
	    .batch_length = (int32_t)get_be32(p + OFF_BATCH_LENGTH),
	    .partition_leader_epoch = (int32_t)get_be32(p + BATCH_OFFSET_LEADER_EPOCH),
	    .magic = (int8_t)p[BATCH_OFFSET_MAGIC],
	    .crc = get_be32(p + BATCH_OFFSET_CRC),
	    .attributes = (int16_t)get_be16(p + OFF_ATTRIBUTES),
	    .last_offset_delta = (int32_t)get_be32(p + OFF_LAST_OFFSET_DELTA),
	    .base_timestamp = (int64_t)get_be64(p + OFF_BASE_TIMESTAMP),
	    .max_timestamp = (int64_t)get_be64(p + OFF_MAX_TIMESTAMP),
	    .producer_id = (int64_t)get_be64(p + OFF_PRODUCER_ID),
	    .producer_epoch = (int16_t)get_be16(p + OFF_PRODUCER_EPOCH),
	    .base_sequence = (int32_t)get_be32(p + OFF_BASE_SEQUENCE),
	    .record_count = (int32_t)get_be32(p + OFF_RECORD_COUNT),
	};
	if (out)
		*out = h;
	if (h.magic != BATCH_MAGIC_V2)
		return BATCH_BAD_MAGIC;
	/* In 64 bits: batchLength is a client's i32 and may be anything. */
	int64_t total = (int64_t)h.batch_length + BATCH_LENGTH_OVERHEAD;
	if (total < BATCH_HEADER_BYTES || total > LIMITS_BATCH_BYTES_MAX)
		return BATCH_BAD_LENGTH;
	return BATCH_OK;
}

enum batch_error batch_validate(const void *buf, size_t len, struct batch_header *out)
{
	struct batch_header h;
	enum batch_error err = batch_parse(buf, len, &h);
	if (out && len >= BATCH_HEADER_BYTES)
		*out = h;
	if (err != BATCH_OK)
		return err;
	if ((uint64_t)h.batch_length + BATCH_LENGTH_OVERHEAD != len)
		return BATCH_BAD_LENGTH;
	if (batch_crc(buf, len) != h.crc)
		return BATCH_BAD_CRC;
	/* Kafka's LogValidator for magic 2: count > 0 and lastOffset - baseOffset + 1 ==
	 * count. In 64 bits so a hostile lastOffsetDelta cannot overflow. */
	if (h.record_count < 1 || (int64_t)h.last_offset_delta + 1 != h.record_count)
		return BATCH_BAD_COUNT;
	return BATCH_OK;
}

void batch_set_base_offset(void *buf, int64_t base_offset)
{
	put_be64((uint8_t *)buf + BATCH_OFFSET_BASE_OFFSET, (uint64_t)base_offset);
}

void batch_set_leader_epoch(void *buf, int32_t epoch)
{
	put_be32((uint8_t *)buf + BATCH_OFFSET_LEADER_EPOCH, (uint32_t)epoch);
}

uint32_t batch_crc(const void *buf, size_t len)
{
	if (len < BATCH_HEADER_BYTES)
		return 0;
	return crc32c(0, (const uint8_t *)buf + BATCH_CRC_START, len - BATCH_CRC_START);
}

bool batch_is_transactional(const struct batch_header *h)
{
	return (h->attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
}

bool batch_is_control(const struct batch_header *h)
{
	return (h->attributes & BATCH_ATTR_CONTROL) != 0;
}

enum batch_codec batch_compression(const struct batch_header *h)
{
	return (enum batch_codec)(h->attributes & BATCH_ATTR_COMPRESSION_MASK);
}

bool batch_compression_known(const struct batch_header *h)
{
	return batch_compression(h) < BATCH_CODEC_COUNT;
}

int64_t batch_last_offset(const struct batch_header *h)
{
	/* Wrapping sum: the fields may be a client's, and signed overflow is undefined. */
	return (int64_t)((uint64_t)h->base_offset + (uint64_t)(int64_t)h->last_offset_delta);
}

const char *batch_error_name(enum batch_error e)
{
	switch (e) {
	case BATCH_OK:
		return "ok";
	case BATCH_TRUNCATED:
		return "truncated";
	case BATCH_BAD_LENGTH:
		return "bad length";
	case BATCH_BAD_MAGIC:
		return "bad magic";
	case BATCH_BAD_CRC:
		return "bad crc";
	case BATCH_BAD_COUNT:
		return "bad count";
	case BATCH_ERROR_COUNT:
		break;
	}
	return "?";
}
