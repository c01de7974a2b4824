/*
 * core/batch.c: parsing and validation of Kafka RecordBatch v2 headers, and the two
 * in-place rewrites the broker makes (baseOffset, partitionLeaderEpoch). See
 * core/batch.h for the layout and the contract. Every read is bounds-checked against
 * the length given: the bytes come from clients and from disk.
 */
#include "core/batch.h"

#include <errno.h>
#include <string.h>

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

/* ---- building and walking records ---- */

/* Zigzag varint of at most 5 bytes; returns the bytes written (BUF has room for 5). */
static size_t batch_put_varint(uint8_t *buf, int32_t v)
{
	uint32_t u = ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
	size_t n = 0;
	while (u >= 0x80) {
		buf[n++] = (uint8_t)(u | 0x80);
		u >>= 7;
	}
	buf[n++] = (uint8_t)u;
	return n;
}

static size_t batch_varint_bytes(int32_t v)
{
	uint8_t scratch[5];
	return batch_put_varint(scratch, v);
}

/* Reads a zigzag varint (at most 5 bytes) from [*P, END); false when cut short or too
 * long. Kafka's varlongs of the timestamp delta take up to 10 bytes: MAX_BYTES says. */
static bool batch_get_varlong(const uint8_t **p, const uint8_t *end, size_t max_bytes,
			      int64_t *out)
{
	uint64_t u = 0;
	for (size_t i = 0; i < max_bytes; i++) {
		if (*p >= end)
			return false;
		uint8_t byte = *(*p)++;
		u |= (uint64_t)(byte & 0x7f) << (7 * i);
		if (!(byte & 0x80)) {
			*out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
			return true;
		}
	}
	return false;
}

static bool batch_get_varint(const uint8_t **p, const uint8_t *end, int32_t *out)
{
	int64_t v;
	if (!batch_get_varlong(p, end, 5, &v) || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

/* Body bytes of a record: everything after its length varint. */
static size_t batch_record_body_bytes(int32_t offset_delta, int32_t key_len, int32_t value_len)
{
	return 1 + 1 + batch_varint_bytes(offset_delta) + batch_varint_bytes(key_len) +
	       (key_len > 0 ? (size_t)key_len : 0) + batch_varint_bytes(value_len) +
	       (value_len > 0 ? (size_t)value_len : 0) + 1;
}

size_t batch_record_bytes_max(int32_t key_len, int32_t value_len)
{
	size_t body = batch_record_body_bytes(1 << 20, key_len, value_len);
	return batch_varint_bytes((int32_t)body) + body;
}

void batch_builder_init(struct batch_builder *b, void *buf, size_t cap, int64_t timestamp_ms)
{
	*b = (struct batch_builder){buf, cap, BATCH_HEADER_BYTES, 0, timestamp_ms};
}

int batch_builder_add(struct batch_builder *b, const void *key, int32_t key_len, const void *value,
		      int32_t value_len)
{
	if (!key)
		key_len = -1;
	if (!value)
		value_len = -1;
	size_t body = batch_record_body_bytes(b->count, key_len, value_len);
	size_t need = batch_varint_bytes((int32_t)body) + body;
	if (b->cap < BATCH_HEADER_BYTES || need > b->cap - b->len ||
	    b->len + need - BATCH_LENGTH_OVERHEAD > LIMITS_BATCH_BYTES_MAX)
		return -ENOBUFS;
	uint8_t *p = b->buf + b->len;
	p += batch_put_varint(p, (int32_t)body);
	*p++ = 0; /* attributes */
	*p++ = 0; /* timestampDelta */
	p += batch_put_varint(p, b->count);
	p += batch_put_varint(p, key_len);
	if (key_len > 0) {
		memcpy(p, key, (size_t)key_len);
		p += key_len;
	}
	p += batch_put_varint(p, value_len);
	if (value_len > 0) {
		memcpy(p, value, (size_t)value_len);
		p += value_len;
	}
	*p++ = 0; /* headerCount */
	b->len = (size_t)(p - b->buf);
	b->count++;
	return 0;
}

long batch_builder_finish(struct batch_builder *b)
{
	if (b->count == 0)
		return -EINVAL;
	uint8_t *h = b->buf;
	put_be64(h + 0, 0);					/* baseOffset */
	put_be32(h + 8, (uint32_t)(b->len - BATCH_LENGTH_OVERHEAD)); /* batchLength */
	put_be32(h + 12, UINT32_MAX);				/* partitionLeaderEpoch -1 */
	h[16] = BATCH_MAGIC_V2;
	h[21] = 0; /* attributes: no codec, create time */
	h[22] = 0;
	put_be32(h + 23, (uint32_t)(b->count - 1));	  /* lastOffsetDelta */
	put_be64(h + 27, (uint64_t)b->timestamp_ms);	  /* baseTimestamp */
	put_be64(h + 35, (uint64_t)b->timestamp_ms);	  /* maxTimestamp */
	put_be64(h + 43, UINT64_MAX);			  /* producerId -1 */
	h[51] = 0xff;					  /* producerEpoch -1 */
	h[52] = 0xff;
	put_be32(h + 53, UINT32_MAX);			  /* baseSequence -1 */
	put_be32(h + 57, (uint32_t)b->count);		  /* recordCount */
	put_be32(h + BATCH_OFFSET_CRC, batch_crc(h, b->len));
	return (long)b->len;
}

long batch_records_each(const void *buf, size_t len, batch_record_fn fn, void *ctx)
{
	struct batch_header h;
	if (batch_parse(buf, len, &h) != BATCH_OK ||
	    (size_t)h.batch_length + BATCH_LENGTH_OVERHEAD > len)
		return -EBADMSG;
	if (batch_compression(&h) != BATCH_CODEC_NONE || batch_is_control(&h))
		return -ENOTSUP;
	const uint8_t *p = (const uint8_t *)buf + BATCH_HEADER_BYTES;
	const uint8_t *end = (const uint8_t *)buf + h.batch_length + BATCH_LENGTH_OVERHEAD;
	long count = 0;
	while (count < h.record_count) {
		int32_t length, offset_delta, key_len, value_len, headers;
		int64_t ts_delta;
		if (!batch_get_varint(&p, end, &length) || length < 0 || length > end - p)
			return -EBADMSG;
		const uint8_t *rec_end = p + length;
		if (rec_end - p < 1)
			return -EBADMSG;
		p++; /* attributes */
		if (!batch_get_varlong(&p, rec_end, 10, &ts_delta) ||
		    !batch_get_varint(&p, rec_end, &offset_delta) ||
		    !batch_get_varint(&p, rec_end, &key_len) || key_len < -1 ||
		    key_len > rec_end - p)
			return -EBADMSG;
		const uint8_t *key = key_len >= 0 ? p : NULL;
		p += key_len > 0 ? key_len : 0;
		if (!batch_get_varint(&p, rec_end, &value_len) || value_len < -1 ||
		    value_len > rec_end - p)
			return -EBADMSG;
		const uint8_t *value = value_len >= 0 ? p : NULL;
		p += value_len > 0 ? value_len : 0;
		if (!batch_get_varint(&p, rec_end, &headers) || headers < 0)
			return -EBADMSG;
		p = rec_end; /* headers are skipped: sluice's own records have none */
		if (fn) {
			int ret = fn(ctx, offset_delta, key, key_len, value, value_len);
			if (ret != 0)
				return ret;
		}
		count++;
	}
	return count;
}
