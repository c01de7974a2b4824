/*
 * core/frame.c: encoding, decoding, sealing and checking of shard-log frames, and
 * padding frames. See core/frame.h for the layout and the contract. Pure functions on
 * memory: no I/O, no allocation, no logging.
 */
#include "core/frame.h"

#include <string.h>

#include "core/assert.h"
#include "core/crc32c.h"

/* Little-endian loads and stores at any alignment. Written byte by byte so the format
 * does not depend on the host's byte order; compilers turn them into one mov on x86. */
static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

enum {
	OFF_MAGIC = 0,
	OFF_FRAME_LEN = 4,
	OFF_CRC = 8,
	OFF_PARTITION_ID = 12,
	OFF_BASE_OFFSET = 16,
	OFF_LAST_OFFSET_DELTA = 24,
	OFF_MAX_TIMESTAMP = 28,
	OFF_RECORD_COUNT = 36,
};
_Static_assert(OFF_RECORD_COUNT + 4 == FRAME_HEADER_BYTES, "header fields fill 40 bytes");
_Static_assert(OFF_PARTITION_ID == FRAME_CRC_START, "the CRC starts after the crc field");

void frame_header_encode(const struct frame_header *h, void *dst)
{
	uint8_t *p = dst;
	put_le32(p + OFF_MAGIC, h->magic);
	put_le32(p + OFF_FRAME_LEN, h->frame_len);
	put_le32(p + OFF_CRC, h->crc);
	put_le32(p + OFF_PARTITION_ID, h->partition_id);
	put_le64(p + OFF_BASE_OFFSET, (uint64_t)h->base_offset);
	put_le32(p + OFF_LAST_OFFSET_DELTA, (uint32_t)h->last_offset_delta);
	put_le64(p + OFF_MAX_TIMESTAMP, (uint64_t)h->max_timestamp);
	put_le32(p + OFF_RECORD_COUNT, (uint32_t)h->record_count);
}

void frame_header_decode(const void *src, struct frame_header *h)
{
	const uint8_t *p = src;
	h->magic = get_le32(p + OFF_MAGIC);
	h->frame_len = get_le32(p + OFF_FRAME_LEN);
	h->crc = get_le32(p + OFF_CRC);
	h->partition_id = get_le32(p + OFF_PARTITION_ID);
	h->base_offset = (int64_t)get_le64(p + OFF_BASE_OFFSET);
	h->last_offset_delta = (int32_t)get_le32(p + OFF_LAST_OFFSET_DELTA);
	h->max_timestamp = (int64_t)get_le64(p + OFF_MAX_TIMESTAMP);
	h->record_count = (int32_t)get_le32(p + OFF_RECORD_COUNT);
}

uint32_t frame_crc(const void *frame, uint32_t frame_len)
{
	ASSERT(frame_len >= FRAME_HEADER_BYTES);
	return crc32c(0, (const uint8_t *)frame + FRAME_CRC_START, frame_len - FRAME_CRC_START);
}

void frame_seal(void *frame, uint32_t frame_len)
{
	ASSERT(frame_len >= FRAME_HEADER_BYTES && frame_len <= LIMITS_FRAME_BYTES_MAX);
	ASSERT(get_le32((const uint8_t *)frame + OFF_FRAME_LEN) == frame_len);
	put_le32((uint8_t *)frame + OFF_CRC, frame_crc(frame, frame_len));
}

void frame_seal_tail(void *frame, uint32_t frame_len, uint32_t tail_len, uint32_t tail_crc)
{
	ASSERT(frame_len >= FRAME_HEADER_BYTES && frame_len <= LIMITS_FRAME_BYTES_MAX);
	ASSERT(tail_len <= frame_len - FRAME_HEADER_BYTES);
	ASSERT(get_le32((const uint8_t *)frame + OFF_FRAME_LEN) == frame_len);
	uint32_t head = crc32c(0, (const uint8_t *)frame + FRAME_CRC_START,
			       frame_len - tail_len - FRAME_CRC_START);
	put_le32((uint8_t *)frame + OFF_CRC, crc32c_combine(head, tail_crc, tail_len));
}

enum frame_check frame_check(const void *buf, size_t avail, struct frame_header *out)
{
	const uint8_t *p = buf;
	struct frame_header h;
	memset(&h, 0, sizeof(h));
	if (avail >= FRAME_HEADER_BYTES) {
		frame_header_decode(p, &h);
	} else if (avail >= 8) {
		h.magic = get_le32(p + OFF_MAGIC);
		h.frame_len = get_le32(p + OFF_FRAME_LEN);
	}
	if (out)
		*out = h;

	if (avail < 8)
		return FRAME_TRUNCATED;
	if (h.magic == 0 && h.frame_len == 0)
		return FRAME_END;
	if (h.magic != FRAME_MAGIC)
		return FRAME_BAD_MAGIC;
	if (h.frame_len < FRAME_HEADER_BYTES || h.frame_len > LIMITS_FRAME_BYTES_MAX)
		return FRAME_BAD_LENGTH;
	if (h.frame_len > avail)
		return FRAME_TRUNCATED;
	if (frame_crc(p, h.frame_len) != h.crc)
		return FRAME_BAD_CRC;
	return FRAME_OK;
}

const char *frame_check_name(enum frame_check c)
{
	switch (c) {
	case FRAME_OK:
		return "ok";
	case FRAME_END:
		return "end";
	case FRAME_BAD_MAGIC:
		return "bad magic";
	case FRAME_BAD_LENGTH:
		return "bad length";
	case FRAME_TRUNCATED:
		return "truncated";
	case FRAME_BAD_CRC:
		return "bad crc";
	case FRAME_CHECK_COUNT:
		break;
	}
	return "?";
}

void frame_pad(void *dst, uint32_t len)
{
	ASSERT(len >= FRAME_HEADER_BYTES && len <= LIMITS_FRAME_BYTES_MAX);
	struct frame_header h = {
	    .magic = FRAME_MAGIC,
	    .frame_len = len,
	    .crc = 0,
	    .partition_id = FRAME_PAD_PARTITION_ID,
	    .base_offset = -1,
	    .last_offset_delta = 0,
	    .max_timestamp = -1,
	    .record_count = 0,
	};
	frame_header_encode(&h, dst);
	memset((uint8_t *)dst + FRAME_HEADER_BYTES, 0, len - FRAME_HEADER_BYTES);
	frame_seal(dst, len);
}

bool frame_is_pad(const struct frame_header *h)
{
	return h->partition_id == FRAME_PAD_PARTITION_ID;
}
