/*
 * net/wire.h: the Kafka wire codec: bounds-checked readers and writers of the protocol's
 * primitive types, the request header (v1) and response header (v0), and the size
 * framing of the receive path. It knows no API's message layout (the handlers build
 * those from these primitives) and does no I/O; it reads from and writes into buffers
 * the caller owns (pool chunks), and never allocates.
 *
 * Every byte a reader sees comes from a client, so nothing here asserts on content.
 * A reader is sticky: the first read that does not fit (short input, a negative or
 * lying length, an over-long varint) marks it failed, and from then on every read
 * returns a zero value (a NULL view for strings and bytes) and moves nothing. A decoder
 * reads a whole structure and checks wire_reader_ok() once at the end, the way
 * liburing and Redis validate untrusted input: an error return, never an assert. A
 * writer is sticky the same way: a write that does not fit sets overflow, writes
 * nothing, and so do all later writes; the caller checks once (wire_write_response_end).
 *
 * Sources: Kafka's protocol guide ("Protocol Primitive Types", "Common Request and
 * Response Structure"; kafka.apache.org/24/generated/protocol_types.html) and its message
 * schemas RequestHeader.json (versions 0-2) and ResponseHeader.json (versions 0-2).
 *
 * Framing (every request and every response; all integers big-endian):
 *
 *   offset size field     meaning
 *  +------+----+---------+------------------------------------------------------+
 *  |    0 |  4 | size    | int32, bytes that follow; negative or above          |
 *  |      |    |         | socket.request.max.bytes closes the connection       |
 *  |    4 |  . | message | request header + body, or response header + body     |
 *  +------+----+---------+------------------------------------------------------+
 *
 * Request header v1 (RequestHeader.json version 1, every non-flexible request):
 *
 *   offset size field           meaning
 *  +------+----+----------------+-----------------------------------------------+
 *  |    0 |  2 | api_key        | int16, which API (net/kafka.h)                |
 *  |    2 |  2 | api_version    | int16, which version of its layout            |
 *  |    4 |  4 | correlation_id | int32, echoed in the response header          |
 *  |    8 |  2 | client_id len  | int16, -1 = null client id                    |
 *  |   10 |  n | client_id      | n bytes (UTF-8), absent when null             |
 *  +------+----+----------------+-----------------------------------------------+
 *   header v2 (flexible versions: ApiVersions 3+, which librdkafka sends first) is v1
 *   followed by a tagged-field section; client_id keeps its int16 length there, so v1
 *   parsing reads the fields every version shares and leaves the tags to the caller.
 *
 * Response header v0 (ResponseHeader.json version 0). ApiVersions answers with v0
 * whatever the request's version: ApiVersionsResponse.json keeps tagged fields out of
 * its header so a client can read the answer before it knows what the broker speaks.
 *
 *   offset size field           meaning
 *  +------+----+----------------+-----------------------------------------------+
 *  |    0 |  4 | correlation_id | int32, the request's                          |
 *  +------+----+----------------+-----------------------------------------------+
 *
 * Primitive types:
 *
 *  type             encoding
 *  +----------------+------------------------------------------------------------+
 *  | BOOLEAN        | 1 byte; 0 false, any other value true                      |
 *  | INT8..INT64    | 1, 2, 4, 8 bytes, two's complement, big-endian             |
 *  | UINT32         | 4 bytes, big-endian                                        |
 *  | UNSIGNED_VARINT| 7 bits per byte, least significant group first, high bit   |
 *  |                | set on every byte but the last (protobuf base 128); at most|
 *  |                | 5 bytes, the 5th holding the top 4 bits (<= 0x0f)          |
 *  | VARINT         | zigzag (n << 1) ^ (n >> 31), then as UNSIGNED_VARINT       |
 *  | VARLONG        | zigzag (n << 1) ^ (n >> 63), base 128, at most 10 bytes,   |
 *  |                | the 10th holding the top bit (<= 0x01)                     |
 *  | STRING         | INT16 length N >= 0, then N bytes                          |
 *  | NULLABLE_STRING| as STRING; N = -1 is null and no bytes follow              |
 *  | BYTES          | INT32 length N >= 0, then N bytes                          |
 *  | NULLABLE_BYTES | as BYTES; N = -1 is null (also RECORDS, Produce and Fetch) |
 *  | ARRAY          | INT32 count N, then N elements; N = -1 is a null array     |
 *  |                | where the schema allows one (nullableVersions)             |
 *  | COMPACT_STRING | UNSIGNED_VARINT N + 1, then N bytes; 0 is null (nullable)  |
 *  | TAG_BUFFER     | UNSIGNED_VARINT count, then per field UNSIGNED_VARINT tag, |
 *  |                | UNSIGNED_VARINT size, size bytes                           |
 *  +----------------+------------------------------------------------------------+
 *
 *  zigzag varints, for example (Kafka uses protobuf's encoding):
 *     value  zigzag  bytes            value        zigzag      bytes
 *         0       0  00                  -64          127      7f
 *        -1       1  01                   64          128      80 01
 *         1       2  02                  300          600      d8 04
 *        63     126  7e            INT32_MIN   0xffffffff      ff ff ff ff 0f
 *   and UNSIGNED_VARINT 300 is ac 02 (protobuf's own example).
 *
 * Kafka's Java reader ignores extra bits in the last byte of a 5- or 10-byte varint;
 * this one rejects them (no Kafka encoder writes them), as it rejects a continuation
 * bit on the 5th (10th) byte. Non-minimal encodings that fit (80 00 for 0) are
 * accepted, as Kafka accepts them.
 */
#ifndef SLUICE_NET_WIRE_H
#define SLUICE_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_SIZE_PREFIX_BYTES	      4u  /* the int32 size in front of every message */
#define WIRE_REQUEST_HEADER_MIN_BYTES 10u /* header v1 with a null or empty client id */
#define WIRE_RESPONSE_HEADER_BYTES    4u  /* header v0: the correlation id */
#define WIRE_VARINT_BYTES_MAX	      5u  /* longest VARINT / UNSIGNED_VARINT */
#define WIRE_VARLONG_BYTES_MAX	      10u /* longest VARLONG */

/* A reader over bytes the caller keeps alive while views taken from it are in use. */
struct wire_reader {
	const uint8_t *pos; /* next byte to read; where the failing read stood once failed */
	const uint8_t *end; /* one past the last byte */
	bool failed;	    /* sticky: a read did not fit; every later read returns zero */
};

/* A view of a STRING inside the reader's buffer (no copy, not NUL-terminated). A null
 * string has ptr NULL and len 0; a non-null one, even empty, has ptr non-NULL. */
struct wire_str {
	const char *ptr; /* first byte, or NULL for a null string */
	size_t len;	 /* bytes, 0 for a null string */
};

/* A view of BYTES inside the reader's buffer, same conventions as struct wire_str. */
struct wire_bytes {
	const uint8_t *ptr; /* first byte, or NULL for null bytes */
	size_t len;	    /* bytes, 0 when null */
};

/* Request header v1 as read: the fields every request version starts with. */
struct wire_request_header {
	int16_t api_key;	   /* enum kafka_api_key, or any value a client sent */
	int16_t api_version;	   /* not checked here: kafka_api_version_supported() */
	int32_t correlation_id;	   /* to echo in the response header */
	struct wire_str client_id; /* nullable; a view into the request bytes */
};

/* A writer into a caller-provided buffer of cap bytes. */
struct wire_writer {
	uint8_t *buf;  /* the caller's buffer */
	size_t cap;    /* its size in bytes */
	size_t len;    /* bytes written so far, <= cap */
	bool overflow; /* sticky: a write did not fit; it and every later one wrote nothing */
};

/* ---- reading ---- */

/* Starts R over the LEN bytes at BUF (BUF may be NULL only when LEN is 0). */
void wire_reader_init(struct wire_reader *r, const void *buf, size_t len);

/* True while no read has failed. */
bool wire_reader_ok(const struct wire_reader *r);

/* Bytes left to read; 0 once the reader has failed. */
size_t wire_remaining(const struct wire_reader *r);

/* Moves past N bytes; fails the reader when fewer remain. */
void wire_skip(struct wire_reader *r, size_t n);

/* Fixed-size integers, big-endian. Each returns 0 and fails the reader when the bytes
 * are not all there (and on an already failed reader). */
int8_t wire_read_i8(struct wire_reader *r);
int16_t wire_read_i16(struct wire_reader *r);
int32_t wire_read_i32(struct wire_reader *r);
int64_t wire_read_i64(struct wire_reader *r);
uint32_t wire_read_u32(struct wire_reader *r);

/* BOOLEAN: one byte, any non-zero value is true. False on a short or failed reader. */
bool wire_read_bool(struct wire_reader *r);

/* UNSIGNED_VARINT, VARINT and VARLONG. Each returns 0 and fails the reader when the
 * input ends inside the varint or the encoding is longer than WIRE_VARINT_BYTES_MAX
 * (WIRE_VARLONG_BYTES_MAX) or sets bits above 32 (64). */
uint32_t wire_read_uvarint(struct wire_reader *r);
int32_t wire_read_varint(struct wire_reader *r);
int64_t wire_read_varlong(struct wire_reader *r);

/* STRING: a view of the N bytes after an int16 length N. A negative length (null is not
 * allowed here) or N beyond the remaining bytes fails the reader; a failed read returns
 * the null view {NULL, 0}. */
struct wire_str wire_read_string(struct wire_reader *r);

/* NULLABLE_STRING: as wire_read_string, but length -1 is a null string (not a failure);
 * lengths below -1 fail. */
struct wire_str wire_read_nullable_string(struct wire_reader *r);

/* BYTES and NULLABLE_BYTES (also RECORDS): as the string readers with an int32 length. */
struct wire_bytes wire_read_bytes(struct wire_reader *r);
struct wire_bytes wire_read_nullable_bytes(struct wire_reader *r);

/* ARRAY count, for an array that may not be null. Returns N >= 0, or 0 with the reader
 * failed when N is negative or when N elements of at least MIN_ELEMENT_BYTES each
 * (> 0, ASSERTed: the smallest encoding of one element of this array, e.g. 4 for an
 * int32, 2 + 4 for a string and an int32) cannot fit in the remaining bytes. A decoder
 * that loops N times after this check reads at most remaining / MIN_ELEMENT_BYTES
 * elements, so a lying count cannot make it spin 2^31 times. */
int32_t wire_read_array_len(struct wire_reader *r, size_t min_element_bytes);

/* ARRAY count where the schema allows a null array: as wire_read_array_len, but -1 is
 * returned as -1 (a null array: Metadata v1+ "all topics"), not a failure. Counts
 * below -1 fail. A loop `for (i = 0; i < n; i++)` runs zero times on null. */
int32_t wire_read_nullable_array_len(struct wire_reader *r, size_t min_element_bytes);

/* COMPACT_STRING and COMPACT_NULLABLE_STRING (flexible versions; UNSIGNED_VARINT N + 1).
 * As the STRING readers: 0 (null) fails the non-nullable one; N above INT16_MAX fails
 * both, as Kafka's generated readers refuse it. */
struct wire_str wire_read_compact_string(struct wire_reader *r);
struct wire_str wire_read_compact_nullable_string(struct wire_reader *r);

/* TAG_BUFFER: skips a tagged-field section. A count above what the remaining bytes can
 * hold (2 bytes per field at least) or a field running past the end fails the reader. */
void wire_skip_tagged_fields(struct wire_reader *r);

/* Request header v1 (the layout above) at the reader's position. Returns 0 with H filled
 * and the reader at the first byte after the client id, or -EBADMSG when the bytes end
 * early or the client id length is below -1; then H holds what was read before the
 * failure and zeros after it (fit for a log line, not for an answer). */
int wire_read_request_header(struct wire_reader *r, struct wire_request_header *h);

/* True when S is not null and holds exactly the bytes of the C string CSTR. */
bool wire_str_eq(struct wire_str s, const char *cstr);

/* ---- writing ---- */

/* Starts W writing into the CAP bytes at BUF (BUF may be NULL only when CAP is 0). */
void wire_writer_init(struct wire_writer *w, void *buf, size_t cap);

/* True while every write so far fitted. */
bool wire_writer_ok(const struct wire_writer *w);

/* Each write below appends its encoding whole, or, when it does not fit in cap - len
 * (or the writer has already overflowed), writes nothing and sets overflow. */
void wire_write_i8(struct wire_writer *w, int8_t v);
void wire_write_i16(struct wire_writer *w, int16_t v);
void wire_write_i32(struct wire_writer *w, int32_t v);
void wire_write_i64(struct wire_writer *w, int64_t v);
void wire_write_u32(struct wire_writer *w, uint32_t v);
void wire_write_bool(struct wire_writer *w, bool v);
void wire_write_uvarint(struct wire_writer *w, uint32_t v);
void wire_write_varint(struct wire_writer *w, int32_t v);
void wire_write_varlong(struct wire_writer *w, int64_t v);

/* N raw bytes from P, no length (P may be NULL when N is 0). */
void wire_write_raw(struct wire_writer *w, const void *p, size_t n);

/* STRING of LEN bytes at S. LEN <= INT16_MAX and S non-NULL unless LEN is 0 are the
 * caller's promise (ASSERTed): sluice's own strings are bounded far below. */
void wire_write_string(struct wire_writer *w, const char *s, size_t len);

/* NULLABLE_STRING: S NULL writes the null string (length -1), else as wire_write_string. */
void wire_write_nullable_string(struct wire_writer *w, const char *s, size_t len);

/* A view read by wire_read_*string written back as a NULLABLE_STRING (null stays null),
 * for echoing names a client sent. */
void wire_write_str(struct wire_writer *w, struct wire_str s);

/* BYTES and NULLABLE_BYTES of LEN bytes at P (LEN <= INT32_MAX, ASSERTed; P NULL writes
 * null in the nullable form). */
void wire_write_bytes(struct wire_writer *w, const void *p, size_t len);
void wire_write_nullable_bytes(struct wire_writer *w, const void *p, size_t len);

/* ARRAY count N; -1 writes a null array. N < -1 is a caller bug (ASSERTed). */
void wire_write_array_len(struct wire_writer *w, int32_t n);

/* Writes a placeholder int32 (zero) and returns its offset, to patch once the value is
 * known (an array count, a size). On overflow it returns the offset it would have had;
 * patching that offset is then a no-op. */
size_t wire_writer_reserve_i32(struct wire_writer *w);

/* Overwrites the int32 at offset AT (from wire_writer_reserve_i32) with V, big-endian.
 * When the reserve did not fit (the writer overflowed) nothing is written; an AT that
 * no reserve returned is a caller bug (ASSERTed). */
void wire_writer_patch_i32(struct wire_writer *w, size_t at, int32_t v);

/* Starts a response frame: a reserved size prefix, then response header v0 carrying
 * CORRELATION_ID (8 bytes, all or nothing like every write). Returns the offset of the
 * size prefix, for wire_write_response_end. */
size_t wire_write_response_begin(struct wire_writer *w, int32_t correlation_id);

/* Ends the frame begun at FRAME_AT: patches its size prefix to the bytes written since
 * it plus EXTERNAL_BYTES, the bytes of this response that go out after this buffer in
 * the same send (record batches sent by scatter/gather straight from pool buffers).
 * Returns 0, or -ENOBUFS when the writer overflowed somewhere (the frame is unusable;
 * the caller retries with a bigger buffer or fails the request). The total must fit an
 * int32 (ASSERTed). */
int wire_write_response_end(struct wire_writer *w, size_t frame_at, size_t external_bytes);

/* ---- framing ---- */

/* Looks at the AVAIL bytes received so far at BUF, the start of a frame. Returns:
 *   0          a whole frame is there: *FRAME_LEN is its size prefix, the message is
 *              the *FRAME_LEN bytes after the WIRE_SIZE_PREFIX_BYTES of the prefix;
 *   -EAGAIN    more bytes are needed: *FRAME_LEN is the size prefix when the 4 bytes of
 *              it have arrived (so the caller knows how much to wait for), else 0;
 *   -EBADMSG   the size prefix is negative (the connection must close);
 *   -EMSGSIZE  the size prefix exceeds MAX_BYTES (socket.request.max.bytes, default
 *              LIMITS_REQUEST_BYTES_MAX; the connection must close).
 * *FRAME_LEN is 0 on -EBADMSG, and the offending size on -EMSGSIZE, for the log line. */
int wire_frame_length(const uint8_t *buf, size_t avail, uint32_t max_bytes, uint32_t *frame_len);

#endif
