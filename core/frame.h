/*
 * core/frame.h: the frame that wraps each record batch in a shard log (DESIGN §3): a
 * fixed 40-byte little-endian header carrying what the log and its recovery need
 * without parsing Kafka bytes (which partition, which offsets, how many records), then
 * the Kafka RecordBatch v2 bytes exactly as Fetch sends them out. This module encodes,
 * decodes, seals (CRC) and checks one frame in memory, and writes padding frames; it
 * does no I/O and does not look inside the payload (core/batch.h does).
 *
 *   offset size field              meaning
 *  +------+----+------------------+-----------------------------------------------+
 *  |    0 |  4 | magic            | FRAME_MAGIC, bytes 'S' 'L' 'C' '1'            |
 *  |    4 |  4 | frame_len        | header + payload bytes, FRAME_HEADER_BYTES to |
 *  |      |    |                  | LIMITS_FRAME_BYTES_MAX                        |
 *  |    8 |  4 | crc32c           | CRC-32C of bytes [12, frame_len)              |
 *  |   12 |  4 | partition_id     | broker-wide partition id, never reused;       |
 *  |      |    |                  | FRAME_PAD_PARTITION_ID for padding            |
 *  |   16 |  8 | base_offset      | i64, offset of the batch's first record       |
 *  |   24 |  4 | last_offset_delta| i32, last record's offset - base_offset       |
 *  |   28 |  8 | max_timestamp    | i64, the batch's maxTimestamp (ms)            |
 *  |   36 |  4 | record_count     | i32, records in the batch                     |
 *  |   40 |  . | payload          | RecordBatch v2 bytes (big-endian inside)      |
 *  +------+----+------------------+-----------------------------------------------+
 *   all header integers little-endian; fields are not naturally aligned (28, 36)
 *
 * The CRC starts at byte 12, so it covers the partition, offsets and payload; it does
 * not cover magic and frame_len, which are checked by value (a wrong frame_len shows up
 * as a CRC mismatch or a bad next frame). Space that was preallocated and never written
 * reads as zeros, which frame_check() reports as FRAME_END, the normal end of a log.
 */
#ifndef SLUICE_CORE_FRAME_H
#define SLUICE_CORE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

#define FRAME_HEADER_BYTES 40u
#define FRAME_MAGIC	   UINT32_C(0x31434c53) /* "SLC1" as little-endian bytes */
#define FRAME_CRC_START	   12u			/* the CRC covers [FRAME_CRC_START, frame_len) */

/* partition_id of a padding frame: no records, skipped by readers. */
#define FRAME_PAD_PARTITION_ID UINT32_MAX

_Static_assert(FRAME_HEADER_BYTES == LIMITS_FRAME_HEADER_BYTES,
	       "limits.h sizes frames with this header");

/* One frame header, decoded to host order. */
struct frame_header {
	uint32_t magic;		   /* FRAME_MAGIC in a valid frame */
	uint32_t frame_len;	   /* header + payload bytes */
	uint32_t crc;		   /* CRC-32C of bytes [12, frame_len) */
	uint32_t partition_id;	   /* broker-wide partition id, or FRAME_PAD_PARTITION_ID */
	int64_t base_offset;	   /* offset of the first record */
	int32_t last_offset_delta; /* last offset - base_offset */
	int64_t max_timestamp;	   /* ms since the epoch, as the batch says */
	int32_t record_count;	   /* records in the payload batch */
};

/* What frame_check() found at a position of the log. */
enum frame_check {
	FRAME_OK = 0,	  /* a whole frame with a matching CRC */
	FRAME_END,	  /* magic and frame_len are zero: preallocated, never-written space */
	FRAME_BAD_MAGIC,  /* the first 4 bytes are not FRAME_MAGIC (and not an END) */
	FRAME_BAD_LENGTH, /* frame_len < FRAME_HEADER_BYTES or > LIMITS_FRAME_BYTES_MAX */
	FRAME_TRUNCATED,  /* fewer than 8 bytes, the header, or frame_len bytes available */
	FRAME_BAD_CRC,	  /* stored CRC differs from the CRC of bytes [12, frame_len) */
	FRAME_CHECK_COUNT
};

/* Writes H as FRAME_HEADER_BYTES little-endian bytes at DST (any alignment). The crc
 * field is written as given: call frame_seal() once the payload is in place. */
void frame_header_encode(const struct frame_header *h, void *dst);

/* Reads FRAME_HEADER_BYTES at SRC (any alignment) into H. No validation: that is
 * frame_check()'s job. */
void frame_header_decode(const void *src, struct frame_header *h);

/* CRC-32C of bytes [FRAME_CRC_START, FRAME_LEN) of FRAME. ASSERTs FRAME_LEN >=
 * FRAME_HEADER_BYTES (the caller has its own frame in hand, not untrusted bytes). */
uint32_t frame_crc(const void *frame, uint32_t frame_len);

/* Computes frame_crc(FRAME, FRAME_LEN) and stores it in the crc field in place. The
 * header (with frame_len == FRAME_LEN) and the payload must already be written. */
void frame_seal(void *frame, uint32_t frame_len);

/* frame_seal() for a frame whose last TAIL_LEN payload bytes have the CRC-32C
 * TAIL_CRC (crc32c(0, tail, TAIL_LEN)), known already: a validated RecordBatch's own
 * crc field covers its bytes [21, end). Reads only the bytes before the tail and
 * combines (crc32c_combine), so sealing costs O(header) instead of a pass over the
 * payload. A wrong TAIL_CRC makes a frame that frame_check() rejects: only pass a CRC
 * checked against the bytes now in the frame. TAIL_LEN <= FRAME_LEN - FRAME_HEADER_BYTES. */
void frame_seal_tail(void *frame, uint32_t frame_len, uint32_t tail_len, uint32_t tail_crc);

/*
 * Checks the frame that starts at BUF, of which AVAIL bytes are readable, in this order:
 *   AVAIL < 8                              -> FRAME_TRUNCATED
 *   magic == 0 and frame_len == 0          -> FRAME_END
 *   magic != FRAME_MAGIC                   -> FRAME_BAD_MAGIC
 *   frame_len outside [40, FRAME_BYTES_MAX]-> FRAME_BAD_LENGTH
 *   frame_len > AVAIL                      -> FRAME_TRUNCATED (read frame_len bytes, retry)
 *   CRC mismatch                           -> FRAME_BAD_CRC
 *   else                                   -> FRAME_OK
 * BUF is untrusted (bytes from disk); any AVAIL is safe, any alignment. OUT may be
 * NULL. When not NULL: if AVAIL >= FRAME_HEADER_BYTES it receives the decoded header
 * whatever the result (so a caller can log what it found); otherwise it is zeroed and,
 * if AVAIL >= 8, magic and frame_len are filled in. A padding frame is FRAME_OK; tell
 * it apart with frame_is_pad().
 */
enum frame_check frame_check(const void *buf, size_t avail, struct frame_header *out);

/* "ok", "end", "bad magic", "bad length", "truncated", "bad crc" ("?" outside the
 * enum), for log lines such as "shardlog: frame at 4096: bad crc". */
const char *frame_check_name(enum frame_check c);

/* Writes a sealed padding frame of LEN bytes at DST: partition_id
 * FRAME_PAD_PARTITION_ID, base_offset -1, last_offset_delta 0, max_timestamp -1,
 * record_count 0, payload zeroed. The log uses it to skip to a block or segment
 * boundary; a gap of more than LIMITS_FRAME_BYTES_MAX needs several, and a gap below
 * FRAME_HEADER_BYTES cannot be padded (the writer must keep that from arising).
 * ASSERTs FRAME_HEADER_BYTES <= LEN <= LIMITS_FRAME_BYTES_MAX. */
void frame_pad(void *dst, uint32_t len);

/* True when H is a padding frame's header. */
bool frame_is_pad(const struct frame_header *h);

#endif
