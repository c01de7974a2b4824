/*
 * net/wire.c: the Kafka wire codec of net/wire.h: sticky bounds-checked readers over
 * client bytes, sticky all-or-nothing writers into caller buffers, the request and
 * response headers and the receive-path framing check. The layouts and the contract are
 * in net/wire.h. Reads never trust a length: every one is compared with the bytes that
 * remain before any pointer moves.
 */
#include "net/wire.h"

#include <errno.h>
#include <string.h>

#include "core/assert.h"

/* Stands in for a NULL buffer of length 0, so that pos and end are never NULL and a
 * non-null empty view always has a non-NULL pointer. */
static const uint8_t wire_empty[1];

/* ---- reading ---- */

void wire_reader_init(struct wire_reader *r, const void *buf, size_t len)
{
	ASSERT(buf != NULL || len == 0);
	const uint8_t *p = buf ? buf : wire_empty;
	r->pos = p;
	r->end = p + len;
	r->failed = false;
}

bool wire_reader_ok(const struct wire_reader *r)
{
	return !r->failed;
}

size_t wire_remaining(const struct wire_reader *r)
{
	return r->failed ? 0 : (size_t)(r->end - r->pos);
}

/* Claims the next N bytes: returns where they start and moves past them, or returns
 * NULL and fails the reader when fewer than N remain (or it had already failed). */
static const uint8_t *take(struct wire_reader *r, size_t n)
{
	if (r->failed || (size_t)(r->end - r->pos) < n) {
		r->failed = true;
		return NULL;
	}
	const uint8_t *p = r->pos;
	r->pos += n;
	return p;
}

void wire_skip(struct wire_reader *r, size_t n)
{
	(void)take(r, n);
}

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

/* The signed readers convert through the unsigned type: the conversion of an
 * out-of-range value to a signed type is implementation-defined in C, and GCC and Clang
 * define it as two's complement wrap-around, which is Kafka's encoding. */

int8_t wire_read_i8(struct wire_reader *r)
{
	const uint8_t *p = take(r, 1);
	return p ? (int8_t)p[0] : 0;
}

int16_t wire_read_i16(struct wire_reader *r)
{
	const uint8_t *p = take(r, 2);
	return p ? (int16_t)get_be16(p) : 0;
}

int32_t wire_read_i32(struct wire_reader *r)
{
	const uint8_t *p = take(r, 4);
	return p ? (int32_t)get_be32(p) : 0;
}

int64_t wire_read_i64(struct wire_reader *r)
{
	const uint8_t *p = take(r, 8);
	return p ? (int64_t)get_be64(p) : 0;
}

uint32_t wire_read_u32(struct wire_reader *r)
{
	const uint8_t *p = take(r, 4);
	return p ? get_be32(p) : 0;
}

bool wire_read_bool(struct wire_reader *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] != 0 : false;
}

/* Base-128 decoding of at most MAX_BYTES bytes into a value of VALUE_BITS bits: the
 * last byte a full-length encoding may have is limited to the bits that are left
 * (VALUE_BITS - 7 * (MAX_BYTES - 1)), and it may not carry a continuation bit. Fails
 * the reader (returning 0) on a short input or an encoding outside those bounds. */
static uint64_t read_base128(struct wire_reader *r, unsigned max_bytes, unsigned value_bits)
{
	if (r->failed)
		return 0;
	const uint8_t *start = r->pos;
	uint64_t value = 0;
	const unsigned last_shift = 7 * (max_bytes - 1);
	const uint8_t last_max = (uint8_t)((1u << (value_bits - last_shift)) - 1);
	for (unsigned i = 0; i < max_bytes; i++) {
		if (r->pos == r->end)
			break; /* the input ends inside the varint */
		uint8_t b = *r->pos++;
		if (i == max_bytes - 1 && b > last_max)
			break; /* continuation on the last byte, or bits above VALUE_BITS */
		value |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return value;
	}
	r->pos = start; /* a failed reader stands where the failing read began */
	r->failed = true;
	return 0;
}

uint32_t wire_read_uvarint(struct wire_reader *r)
{
	return (uint32_t)read_base128(r, WIRE_VARINT_BYTES_MAX, 32);
}

int32_t wire_read_varint(struct wire_reader *r)
{
	uint32_t z = wire_read_uvarint(r);
	return (int32_t)((z >> 1) ^ (0u - (z & 1))); /* un-zigzag */
}

int64_t wire_read_varlong(struct wire_reader *r)
{
	uint64_t z = read_base128(r, WIRE_VARLONG_BYTES_MAX, 64);
	return (int64_t)((z >> 1) ^ (0ull - (z & 1)));
}

/* The view of the LEN bytes at the reader's position, LEN having just been read as a
 * length prefix: -1 is null where NULLABLE allows it; any other negative LEN, or one
 * beyond the remaining bytes, fails the reader. */
static struct wire_str str_view(struct wire_reader *r, int64_t len, bool nullable)
{
	struct wire_str s = {NULL, 0};
	if (r->failed)
		return s;
	if (len < 0) {
		if (!(nullable && len == -1))
			r->failed = true;
		return s;
	}
	const uint8_t *p = take(r, (size_t)len);
	if (p) {
		s.ptr = (const char *)p;
		s.len = (size_t)len;
	}
	return s;
}

static struct wire_bytes bytes_view(struct wire_reader *r, int64_t len, bool nullable)
{
	struct wire_str s = str_view(r, len, nullable);
	return (struct wire_bytes){(const uint8_t *)s.ptr, s.len};
}

struct wire_str wire_read_string(struct wire_reader *r)
{
	int16_t len = wire_read_i16(r);
	return str_view(r, len, false);
}

struct wire_str wire_read_nullable_string(struct wire_reader *r)
{
	int16_t len = wire_read_i16(r);
	return str_view(r, len, true);
}

struct wire_bytes wire_read_bytes(struct wire_reader *r)
{
	int32_t len = wire_read_i32(r);
	return bytes_view(r, len, false);
}

struct wire_bytes wire_read_nullable_bytes(struct wire_reader *r)
{
	int32_t len = wire_read_i32(r);
	return bytes_view(r, len, true);
}

static int32_t array_len(struct wire_reader *r, size_t min_element_bytes, bool nullable)
{
	ASSERT(min_element_bytes > 0);
	int32_t n = wire_read_i32(r);
	if (r->failed)
		return 0;
	if (n == -1 && nullable)
		return -1;
	if (n < 0 || (size_t)n > wire_remaining(r) / min_element_bytes) {
		r->failed = true;
		return 0;
	}
	return n;
}

int32_t wire_read_array_len(struct wire_reader *r, size_t min_element_bytes)
{
	return array_len(r, min_element_bytes, false);
}

int32_t wire_read_nullable_array_len(struct wire_reader *r, size_t min_element_bytes)
{
	return array_len(r, min_element_bytes, true);
}

static struct wire_str compact_string(struct wire_reader *r, bool nullable)
{
	uint32_t n_plus_1 = wire_read_uvarint(r);
	if (r->failed)
		return (struct wire_str){NULL, 0};
	/* Kafka's generated readers refuse a string longer than an int16 can say, in the
	 * compact form too; -1 (n_plus_1 == 0) is null. */
	if (n_plus_1 != 0 && n_plus_1 - 1 > INT16_MAX) {
		r->failed = true;
		return (struct wire_str){NULL, 0};
	}
	return str_view(r, (int64_t)n_plus_1 - 1, nullable);
}

struct wire_str wire_read_compact_string(struct wire_reader *r)
{
	return compact_string(r, false);
}

struct wire_str wire_read_compact_nullable_string(struct wire_reader *r)
{
	return compact_string(r, true);
}

void wire_skip_tagged_fields(struct wire_reader *r)
{
	uint32_t count = wire_read_uvarint(r);
	/* Each field is at least a 1-byte tag and a 1-byte size: this bounds the loop by
	 * the bytes that are really there, whatever the count claims. */
	if (r->failed || count > wire_remaining(r) / 2) {
		r->failed = true;
		return;
	}
	for (uint32_t i = 0; i < count && !r->failed; i++) {
		(void)wire_read_uvarint(r); /* tag */
		uint32_t size = wire_read_uvarint(r);
		wire_skip(r, size);
	}
}

int wire_read_request_header(struct wire_reader *r, struct wire_request_header *h)
{
	h->api_key = wire_read_i16(r);
	h->api_version = wire_read_i16(r);
	h->correlation_id = wire_read_i32(r);
	h->client_id = wire_read_nullable_string(r);
	return wire_reader_ok(r) ? 0 : -EBADMSG;
}

bool wire_str_eq(struct wire_str s, const char *cstr)
{
	if (!s.ptr)
		return false;
	size_t n = strlen(cstr);
	return n == s.len && memcmp(s.ptr, cstr, n) == 0;
}

/* ---- writing ---- */

void wire_writer_init(struct wire_writer *w, void *buf, size_t cap)
{
	ASSERT(buf != NULL || cap == 0);
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

bool wire_writer_ok(const struct wire_writer *w)
{
	return !w->overflow;
}

/* Claims the next N bytes of the buffer: returns where they start, or NULL (and sets
 * overflow) when they do not fit or the writer has already overflowed. */
static uint8_t *claim(struct wire_writer *w, size_t n)
{
	if (w->overflow || w->cap - w->len < n) {
		w->overflow = true;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
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

void wire_write_i8(struct wire_writer *w, int8_t v)
{
	uint8_t *p = claim(w, 1);
	if (p)
		p[0] = (uint8_t)v;
}

void wire_write_i16(struct wire_writer *w, int16_t v)
{
	uint8_t *p = claim(w, 2);
	if (p)
		put_be16(p, (uint16_t)v);
}

void wire_write_i32(struct wire_writer *w, int32_t v)
{
	uint8_t *p = claim(w, 4);
	if (p)
		put_be32(p, (uint32_t)v);
}

void wire_write_i64(struct wire_writer *w, int64_t v)
{
	uint8_t *p = claim(w, 8);
	if (p)
		put_be64(p, (uint64_t)v);
}

void wire_write_u32(struct wire_writer *w, uint32_t v)
{
	uint8_t *p = claim(w, 4);
	if (p)
		put_be32(p, v);
}

void wire_write_bool(struct wire_writer *w, bool v)
{
	wire_write_i8(w, v ? 1 : 0);
}

/* Base-128 encoding of V, written whole or not at all. */
static void write_base128(struct wire_writer *w, uint64_t v)
{
	uint8_t tmp[WIRE_VARLONG_BYTES_MAX];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	wire_write_raw(w, tmp, n);
}

void wire_write_uvarint(struct wire_writer *w, uint32_t v)
{
	write_base128(w, v);
}

void wire_write_varint(struct wire_writer *w, int32_t v)
{
	/* zigzag: the sign goes to bit 0; computed unsigned so the shift is defined. */
	uint32_t u = (uint32_t)v;
	write_base128(w, (u << 1) ^ (0u - (u >> 31)));
}

void wire_write_varlong(struct wire_writer *w, int64_t v)
{
	uint64_t u = (uint64_t)v;
	write_base128(w, (u << 1) ^ (0ull - (u >> 63)));
}

void wire_write_raw(struct wire_writer *w, const void *p, size_t n)
{
	ASSERT(p != NULL || n == 0);
	uint8_t *dst = claim(w, n);
	if (dst && n)
		memcpy(dst, p, n);
}

/* A length-prefixed run (string or bytes): the prefix of PREFIX_BYTES holding LEN (or
 * -1 for null when P is NULL), then the bytes, all or nothing. */
static void write_prefixed(struct wire_writer *w, unsigned prefix_bytes, const void *p, size_t len,
			   bool null)
{
	size_t body = null ? 0 : len;
	uint8_t *dst = claim(w, prefix_bytes + body);
	if (!dst)
		return;
	int32_t n = null ? -1 : (int32_t)len;
	if (prefix_bytes == 2)
		put_be16(dst, (uint16_t)(int16_t)n);
	else
		put_be32(dst, (uint32_t)n);
	if (body)
		memcpy(dst + prefix_bytes, p, body);
}

void wire_write_string(struct wire_writer *w, const char *s, size_t len)
{
	ASSERT(len <= INT16_MAX);
	ASSERT(s != NULL || len == 0);
	write_prefixed(w, 2, s, len, false);
}

void wire_write_nullable_string(struct wire_writer *w, const char *s, size_t len)
{
	if (!s) {
		write_prefixed(w, 2, NULL, 0, true);
		return;
	}
	wire_write_string(w, s, len);
}

void wire_write_str(struct wire_writer *w, struct wire_str s)
{
	wire_write_nullable_string(w, s.ptr, s.len);
}

void wire_write_bytes(struct wire_writer *w, const void *p, size_t len)
{
	ASSERT(len <= INT32_MAX);
	ASSERT(p != NULL || len == 0);
	write_prefixed(w, 4, p, len, false);
}

void wire_write_nullable_bytes(struct wire_writer *w, const void *p, size_t len)
{
	if (!p) {
		write_prefixed(w, 4, NULL, 0, true);
		return;
	}
	wire_write_bytes(w, p, len);
}

void wire_write_array_len(struct wire_writer *w, int32_t n)
{
	ASSERT(n >= -1);
	wire_write_i32(w, n);
}

size_t wire_writer_reserve_i32(struct wire_writer *w)
{
	size_t at = w->len;
	wire_write_i32(w, 0);
	return at;
}

void wire_writer_patch_i32(struct wire_writer *w, size_t at, int32_t v)
{
	if (at > w->len || w->len - at < 4) {
		/* Only a reserve that did not fit leaves an offset without 4 bytes behind it,
		 * and that reserve set overflow. */
		ASSERT(w->overflow);
		return;
	}
	put_be32(w->buf + at, (uint32_t)v);
}

size_t wire_write_response_begin(struct wire_writer *w, int32_t correlation_id)
{
	size_t at = w->len;
	uint8_t *p = claim(w, WIRE_SIZE_PREFIX_BYTES + WIRE_RESPONSE_HEADER_BYTES);
	if (p) {
		put_be32(p, 0); /* the size, patched by wire_write_response_end */
		put_be32(p + WIRE_SIZE_PREFIX_BYTES, (uint32_t)correlation_id);
	}
	return at;
}

int wire_write_response_end(struct wire_writer *w, size_t frame_at, size_t external_bytes)
{
	if (w->overflow)
		return -ENOBUFS;
	ASSERT(frame_at <= w->len && w->len - frame_at >= WIRE_SIZE_PREFIX_BYTES);
	size_t size = w->len - frame_at - WIRE_SIZE_PREFIX_BYTES;
	ASSERT(external_bytes <= (size_t)INT32_MAX - size);
	wire_writer_patch_i32(w, frame_at, (int32_t)(size + external_bytes));
	return 0;
}

/* ---- framing ---- */

int wire_frame_length(const uint8_t *buf, size_t avail, uint32_t max_bytes, uint32_t *frame_len)
{
	*frame_len = 0;
	if (avail < WIRE_SIZE_PREFIX_BYTES)
		return -EAGAIN;
	int32_t size = (int32_t)get_be32(buf);
	if (size < 0)
		return -EBADMSG;
	*frame_len = (uint32_t)size;
	if ((uint32_t)size > max_bytes)
		return -EMSGSIZE;
	if (avail - WIRE_SIZE_PREFIX_BYTES < (uint32_t)size)
		return -EAGAIN;
	return 0;
}
