/*
 * tests/unit/check_wire.c: Check tests of net/wire (the Kafka wire codec) and net/kafka
 * (protocol constants and the advertised version table). Codec: round trips of every
 * primitive at its boundaries, exact bytes against the encodings Kafka and protobuf
 * document, over-long and truncated varints, lying string, bytes and array lengths,
 * null strings, bytes and arrays, sticky reader failure, a request header cut at every
 * byte (each cut copied into a buffer of exactly that size, so the sanitizer build
 * catches any read past it), the exact bytes of the ApiVersions requests librdkafka
 * sends (v0 and v3), writer overflow that never writes past the buffer (guard bytes),
 * patching, response frames and the framing helper. Protocol: the version table
 * against DESIGN §4 entry by entry, error codes and names against Kafka's Errors.java,
 * API names. Misuse the contract ASSERTs (caller bugs, not client input) is checked to
 * abort.
 */
#include "net/kafka.h"
#include "net/wire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "tests/unit/unit.h"

/* A copy of LEN bytes in a heap block of exactly LEN bytes: any read past the end is a
 * heap-buffer-overflow under AddressSanitizer. */
static uint8_t *exact_copy(const void *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* ---- fixed-size integers ---- */

START_TEST(test_fixed_round_trip)
{
	static const int8_t i8s[] = {INT8_MIN, -1, 0, 1, INT8_MAX};
	static const int16_t i16s[] = {INT16_MIN, INT16_MIN + 1, -1, 0, 1, 255, 256, INT16_MAX};
	static const int32_t i32s[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, 65536, INT32_MAX};
	static const int64_t i64s[] = {INT64_MIN, INT64_MIN + 1,    -1,	      0,
				       1,	  (int64_t)1 << 32, INT64_MAX};
	static const uint32_t u32s[] = {0, 1, INT32_MAX, (uint32_t)INT32_MAX + 1, UINT32_MAX};
	uint8_t buf[512];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(i8s) / sizeof(i8s[0]); i++)
		wire_write_i8(&w, i8s[i]);
	for (size_t i = 0; i < sizeof(i16s) / sizeof(i16s[0]); i++)
		wire_write_i16(&w, i16s[i]);
	for (size_t i = 0; i < sizeof(i32s) / sizeof(i32s[0]); i++)
		wire_write_i32(&w, i32s[i]);
	for (size_t i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++)
		wire_write_i64(&w, i64s[i]);
	for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++)
		wire_write_u32(&w, u32s[i]);
	wire_write_bool(&w, true);
	wire_write_bool(&w, false);
	ck_assert(wire_writer_ok(&w));
	ck_assert_uint_eq(w.len, 5 * 1 + 8 * 2 + 7 * 4 + 7 * 8 + 5 * 4 + 2);

	struct wire_reader r;
	wire_reader_init(&r, buf, w.len);
	for (size_t i = 0; i < sizeof(i8s) / sizeof(i8s[0]); i++)
		ck_assert_int_eq(wire_read_i8(&r), i8s[i]);
	for (size_t i = 0; i < sizeof(i16s) / sizeof(i16s[0]); i++)
		ck_assert_int_eq(wire_read_i16(&r), i16s[i]);
	for (size_t i = 0; i < sizeof(i32s) / sizeof(i32s[0]); i++)
		ck_assert_int_eq(wire_read_i32(&r), i32s[i]);
	for (size_t i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++)
		ck_assert_int_eq(wire_read_i64(&r), i64s[i]);
	for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++)
		ck_assert_uint_eq(wire_read_u32(&r), u32s[i]);
	ck_assert(wire_read_bool(&r));
	ck_assert(!wire_read_bool(&r));
	ck_assert(wire_reader_ok(&r));
	ck_assert_uint_eq(wire_remaining(&r), 0);
}
END_TEST

START_TEST(test_fixed_known_bytes)
{
	uint8_t buf[64];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_i16(&w, 0x0102);
	wire_write_i16(&w, -2);
	wire_write_i32(&w, 0x01020304);
	wire_write_i32(&w, INT32_MIN);
	wire_write_i64(&w, 0x0102030405060708);
	wire_write_i64(&w, -1);
	static const uint8_t want[] = {
	    0x01, 0x02, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02,
	    0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	ck_assert_uint_eq(w.len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));

	/* BOOLEAN: any non-zero byte reads as true (protocol guide). */
	static const uint8_t bools[] = {0x00, 0x01, 0x02, 0xff};
	struct wire_reader r;
	wire_reader_init(&r, bools, sizeof(bools));
	ck_assert(!wire_read_bool(&r));
	ck_assert(wire_read_bool(&r));
	ck_assert(wire_read_bool(&r));
	ck_assert(wire_read_bool(&r));
	ck_assert(wire_reader_ok(&r));
}
END_TEST

START_TEST(test_fixed_short_input)
{
	static const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (size_t have = 0; have < 8; have++) {
		uint8_t *p = exact_copy(bytes, have);
		struct wire_reader r;
		wire_reader_init(&r, p, have);
		ck_assert_int_eq(wire_read_i64(&r), 0);
		ck_assert(!wire_reader_ok(&r));
		ck_assert_uint_eq(wire_remaining(&r), 0);
		free(p);
		if (have < 4) {
			p = exact_copy(bytes, have);
			wire_reader_init(&r, p, have);
			ck_assert_int_eq(wire_read_i32(&r), 0);
			ck_assert(!wire_reader_ok(&r));
			wire_reader_init(&r, p, have);
			ck_assert_uint_eq(wire_read_u32(&r), 0);
			ck_assert(!wire_reader_ok(&r));
			free(p);
		}
		if (have < 2) {
			p = exact_copy(bytes, have);
			wire_reader_init(&r, p, have);
			ck_assert_int_eq(wire_read_i16(&r), 0);
			ck_assert(!wire_reader_ok(&r));
			free(p);
		}
	}
	struct wire_reader r;
	wire_reader_init(&r, NULL, 0);
	ck_assert_int_eq(wire_read_i8(&r), 0);
	ck_assert(!wire_read_bool(&r));
	ck_assert(!wire_reader_ok(&r));
}
END_TEST

/* ---- varints ---- */

/* Bytes of the base-128 encoding of V: what the encoded length must be. */
static size_t base128_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

START_TEST(test_varint_round_trip)
{
	int32_t values[200];
	size_t n = 0;
	static const int32_t fixed[] = {0,
					-1,
					1,
					63,
					-64,
					64,
					-65,
					8191,
					-8192,
					8192,
					-8193,
					1 << 20,
					-(1 << 20),
					300,
					-300,
					INT32_MAX,
					INT32_MIN,
					INT32_MAX - 1,
					INT32_MIN + 1};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		values[n++] = fixed[i];
	for (int b = 0; b < 31; b++) {
		int32_t p = (int32_t)1 << b;
		values[n++] = p;
		values[n++] = -p;
		values[n++] = p - 1;
		values[n++] = -p - 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[WIRE_VARINT_BYTES_MAX];
		struct wire_writer w;
		wire_writer_init(&w, buf, sizeof(buf));
		wire_write_varint(&w, values[i]);
		ck_assert(wire_writer_ok(&w));
		uint32_t zigzag = ((uint32_t)values[i] << 1) ^ (uint32_t)(values[i] >> 31);
		ck_assert_uint_eq(w.len, base128_len(zigzag));
		uint8_t *p = exact_copy(buf, w.len);
		struct wire_reader r;
		wire_reader_init(&r, p, w.len);
		ck_assert_int_eq(wire_read_varint(&r), values[i]);
		ck_assert(wire_reader_ok(&r));
		ck_assert_uint_eq(wire_remaining(&r), 0);
		free(p);
	}
}
END_TEST

START_TEST(test_varlong_round_trip)
{
	int64_t values[300];
	size_t n = 0;
	static const int64_t fixed[] = {0,
					-1,
					1,
					63,
					-64,
					64,
					-65,
					INT64_MAX,
					INT64_MIN,
					INT32_MAX,
					INT32_MIN,
					(int64_t)INT32_MIN - 1,
					(int64_t)INT32_MAX + 1,
					INT64_MAX - 1,
					INT64_MIN + 1};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		values[n++] = fixed[i];
	for (int b = 0; b < 63; b++) {
		int64_t p = (int64_t)1 << b;
		values[n++] = p;
		values[n++] = -p;
		values[n++] = p - 1;
		values[n++] = -p - 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[WIRE_VARLONG_BYTES_MAX];
		struct wire_writer w;
		wire_writer_init(&w, buf, sizeof(buf));
		wire_write_varlong(&w, values[i]);
		ck_assert(wire_writer_ok(&w));
		uint64_t zigzag = ((uint64_t)values[i] << 1) ^ (uint64_t)(values[i] >> 63);
		ck_assert_uint_eq(w.len, base128_len(zigzag));
		uint8_t *p = exact_copy(buf, w.len);
		struct wire_reader r;
		wire_reader_init(&r, p, w.len);
		ck_assert_int_eq(wire_read_varlong(&r), values[i]);
		ck_assert(wire_reader_ok(&r));
		ck_assert_uint_eq(wire_remaining(&r), 0);
		free(p);
	}
}
END_TEST

START_TEST(test_uvarint_round_trip)
{
	static const uint32_t values[] = {0,
					  1,
					  127,
					  128,
					  300,
					  16383,
					  16384,
					  65535,
					  2097151,
					  2097152,
					  268435455,
					  268435456,
					  INT32_MAX,
					  (uint32_t)INT32_MAX + 1,
					  UINT32_MAX - 1,
					  UINT32_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t buf[WIRE_VARINT_BYTES_MAX];
		struct wire_writer w;
		wire_writer_init(&w, buf, sizeof(buf));
		wire_write_uvarint(&w, values[i]);
		ck_assert(wire_writer_ok(&w));
		ck_assert_uint_eq(w.len, base128_len(values[i]));
		struct wire_reader r;
		wire_reader_init(&r, buf, w.len);
		ck_assert_uint_eq(wire_read_uvarint(&r), values[i]);
		ck_assert(wire_reader_ok(&r));
		ck_assert_uint_eq(wire_remaining(&r), 0);
	}
}
END_TEST

struct known_varint {
	int64_t value;
	uint8_t len;
	uint8_t bytes[WIRE_VARLONG_BYTES_MAX];
};

/* Exact encodings. Zigzag mapping per protobuf's encoding guide (0->0, -1->1, 1->2,
 * -2->3, INT32_MAX->0xfffffffe, INT32_MIN->0xffffffff) and its base-128 example (300 is
 * ac 02 unsigned); Kafka's VARINT and VARLONG are exactly these (protocol guide). */
START_TEST(test_varint_known_bytes)
{
	static const struct known_varint varints[] = {
	    {0, 1, {0x00}},
	    {-1, 1, {0x01}},
	    {1, 1, {0x02}},
	    {-2, 1, {0x03}},
	    {63, 1, {0x7e}},
	    {-64, 1, {0x7f}},
	    {64, 2, {0x80, 0x01}},
	    {-65, 2, {0x81, 0x01}},
	    {150, 2, {0xac, 0x02}}, /* zigzag 300 */
	    {300, 2, {0xd8, 0x04}},
	    {INT32_MAX, 5, {0xfe, 0xff, 0xff, 0xff, 0x0f}},
	    {INT32_MIN, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
	};
	for (size_t i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
		uint8_t buf[16];
		struct wire_writer w;
		wire_writer_init(&w, buf, sizeof(buf));
		wire_write_varint(&w, (int32_t)varints[i].value);
		ck_assert_uint_eq(w.len, varints[i].len);
		ck_assert_mem_eq(buf, varints[i].bytes, varints[i].len);
		struct wire_reader r;
		wire_reader_init(&r, varints[i].bytes, varints[i].len);
		ck_assert_int_eq(wire_read_varint(&r), varints[i].value);
		ck_assert(wire_reader_ok(&r));
	}

	static const struct known_varint varlongs[] = {
	    {0, 1, {0x00}},
	    {-1, 1, {0x01}},
	    {300, 2, {0xd8, 0x04}},
	    {INT64_MAX, 10, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	    {INT64_MIN, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	    {(int64_t)INT32_MIN, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
	    {(int64_t)INT32_MIN - 1, 5, {0x81, 0x80, 0x80, 0x80, 0x10}},
	};
	for (size_t i = 0; i < sizeof(varlongs) / sizeof(varlongs[0]); i++) {
		uint8_t buf[16];
		struct wire_writer w;
		wire_writer_init(&w, buf, sizeof(buf));
		wire_write_varlong(&w, varlongs[i].value);
		ck_assert_uint_eq(w.len, varlongs[i].len);
		ck_assert_mem_eq(buf, varlongs[i].bytes, varlongs[i].len);
		struct wire_reader r;
		wire_reader_init(&r, varlongs[i].bytes, varlongs[i].len);
		ck_assert_int_eq(wire_read_varlong(&r), varlongs[i].value);
		ck_assert(wire_reader_ok(&r));
	}

	/* UNSIGNED_VARINT: protobuf's example, 300 = ac 02; 1 = 01. */
	uint8_t buf[8];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_uvarint(&w, 300);
	wire_write_uvarint(&w, 1);
	ck_assert_uint_eq(w.len, 3);
	ck_assert_mem_eq(buf, "\xac\x02\x01", 3);
}
END_TEST

static void expect_varint_fails(const uint8_t *bytes, size_t len)
{
	uint8_t *p = exact_copy(bytes, len);
	struct wire_reader r;
	wire_reader_init(&r, p, len);
	ck_assert_int_eq(wire_read_varint(&r), 0);
	ck_assert(!wire_reader_ok(&r));
	wire_reader_init(&r, p, len);
	ck_assert_uint_eq(wire_read_uvarint(&r), 0);
	ck_assert(!wire_reader_ok(&r));
	free(p);
}

static void expect_varlong_fails(const uint8_t *bytes, size_t len)
{
	uint8_t *p = exact_copy(bytes, len);
	struct wire_reader r;
	wire_reader_init(&r, p, len);
	ck_assert_int_eq(wire_read_varlong(&r), 0);
	ck_assert(!wire_reader_ok(&r));
	free(p);
}

START_TEST(test_varint_overlong_rejected)
{
	/* Six bytes: longer than any 32-bit varint. */
	static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
	expect_varint_fails(six, sizeof(six));
	/* A continuation bit on the fifth byte. */
	static const uint8_t cont5[] = {0xff, 0xff, 0xff, 0xff, 0x8f, 0x00};
	expect_varint_fails(cont5, sizeof(cont5));
	/* Bits above 32 in the fifth byte. */
	static const uint8_t big5[] = {0xff, 0xff, 0xff, 0xff, 0x10};
	expect_varint_fails(big5, sizeof(big5));
	static const uint8_t big5b[] = {0x80, 0x80, 0x80, 0x80, 0x7f};
	expect_varint_fails(big5b, sizeof(big5b));
	/* Eleven bytes of varlong, a continuation on the tenth, bits above 64. */
	static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x80, 0x00};
	expect_varlong_fails(eleven, sizeof(eleven));
	static const uint8_t big10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
	expect_varlong_fails(big10, sizeof(big10));
	static const uint8_t cont10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0x81, 0x00};
	expect_varlong_fails(cont10, sizeof(cont10));
	/* Every cut of a valid 5-byte and 10-byte encoding ends inside it. */
	static const uint8_t max32[] = {0xfe, 0xff, 0xff, 0xff, 0x0f};
	for (size_t len = 0; len < sizeof(max32); len++)
		expect_varint_fails(max32, len);
	static const uint8_t max64[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	for (size_t len = 0; len < sizeof(max64); len++)
		expect_varlong_fails(max64, len);

	/* Non-minimal encodings that fit are accepted, as Kafka accepts them. */
	static const uint8_t padded0[] = {0x80, 0x80, 0x80, 0x80, 0x00};
	struct wire_reader r;
	wire_reader_init(&r, padded0, sizeof(padded0));
	ck_assert_int_eq(wire_read_varint(&r), 0);
	ck_assert(wire_reader_ok(&r));
	static const uint8_t padded2[] = {0x82, 0x00};
	wire_reader_init(&r, padded2, sizeof(padded2));
	ck_assert_int_eq(wire_read_varint(&r), 1);
	ck_assert(wire_reader_ok(&r));
}
END_TEST

/* ---- strings, bytes, arrays ---- */

START_TEST(test_string_round_trip)
{
	static char big[INT16_MAX];
	memset(big, 'x', sizeof(big));
	uint8_t *buf = malloc(2 * 40000);
	ck_assert_ptr_nonnull(buf);
	struct wire_writer w;
	wire_writer_init(&w, buf, 2 * 40000);
	wire_write_string(&w, "", 0);
	wire_write_string(&w, "rdkafka", 7);
	wire_write_string(&w, big, sizeof(big));
	wire_write_nullable_string(&w, NULL, 0);
	wire_write_nullable_string(&w, "t", 1);
	wire_write_str(&w, (struct wire_str){NULL, 0});
	wire_write_str(&w, (struct wire_str){"abc", 3});
	ck_assert(wire_writer_ok(&w));
	ck_assert_uint_eq(w.len, 2 + 9 + 2 + INT16_MAX + 2 + 3 + 2 + 5);
	/* the null string is length -1 and no bytes */
	ck_assert_mem_eq(buf + 2 + 9 + 2 + INT16_MAX, "\xff\xff", 2);

	struct wire_reader r;
	wire_reader_init(&r, buf, w.len);
	struct wire_str s = wire_read_string(&r);
	ck_assert_ptr_nonnull(s.ptr); /* empty, not null */
	ck_assert_uint_eq(s.len, 0);
	s = wire_read_string(&r);
	ck_assert(wire_str_eq(s, "rdkafka"));
	ck_assert_ptr_eq(s.ptr, (const char *)buf + 4); /* a view, not a copy */
	s = wire_read_string(&r);
	ck_assert_uint_eq(s.len, INT16_MAX);
	ck_assert_mem_eq(s.ptr, big, sizeof(big));
	s = wire_read_nullable_string(&r);
	ck_assert_ptr_null(s.ptr);
	ck_assert_uint_eq(s.len, 0);
	ck_assert(!wire_str_eq(s, ""));
	s = wire_read_nullable_string(&r);
	ck_assert(wire_str_eq(s, "t"));
	s = wire_read_nullable_string(&r);
	ck_assert_ptr_null(s.ptr);
	s = wire_read_nullable_string(&r);
	ck_assert(wire_str_eq(s, "abc"));
	ck_assert(!wire_str_eq(s, "ab"));
	ck_assert(!wire_str_eq(s, "abcd"));
	ck_assert(wire_reader_ok(&r));
	ck_assert_uint_eq(wire_remaining(&r), 0);
	free(buf);
}
END_TEST

START_TEST(test_bytes_round_trip)
{
	uint8_t buf[64];
	static const uint8_t payload[] = {0x00, 0xff, 0x10, 0x00};
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_bytes(&w, payload, sizeof(payload));
	wire_write_bytes(&w, NULL, 0);
	wire_write_nullable_bytes(&w, NULL, 0);
	wire_write_nullable_bytes(&w, payload, 2);
	wire_write_raw(&w, payload, sizeof(payload));
	ck_assert(wire_writer_ok(&w));
	static const uint8_t want[] = {0x00, 0x00, 0x00, 0x04, 0x00, 0xff, 0x10, 0x00, 0x00,
				       0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
				       0x00, 0x02, 0x00, 0xff, 0x00, 0xff, 0x10, 0x00};
	ck_assert_uint_eq(w.len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));

	struct wire_reader r;
	wire_reader_init(&r, buf, w.len);
	struct wire_bytes b = wire_read_bytes(&r);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_mem_eq(b.ptr, payload, 4);
	b = wire_read_bytes(&r);
	ck_assert_ptr_nonnull(b.ptr);
	ck_assert_uint_eq(b.len, 0);
	b = wire_read_nullable_bytes(&r);
	ck_assert_ptr_null(b.ptr);
	b = wire_read_nullable_bytes(&r);
	ck_assert_uint_eq(b.len, 2);
	ck_assert_mem_eq(b.ptr, payload, 2);
	wire_skip(&r, 4);
	ck_assert(wire_reader_ok(&r));
	ck_assert_uint_eq(wire_remaining(&r), 0);
	wire_skip(&r, 1);
	ck_assert(!wire_reader_ok(&r));
}
END_TEST

START_TEST(test_null_where_not_allowed)
{
	static const uint8_t null_str[] = {0xff, 0xff, 'a', 'b'};
	struct wire_reader r;
	wire_reader_init(&r, null_str, sizeof(null_str));
	struct wire_str s = wire_read_string(&r);
	ck_assert_ptr_null(s.ptr);
	ck_assert(!wire_reader_ok(&r));

	static const uint8_t null_bytes[] = {0xff, 0xff, 0xff, 0xff, 0x00};
	wire_reader_init(&r, null_bytes, sizeof(null_bytes));
	struct wire_bytes b = wire_read_bytes(&r);
	ck_assert_ptr_null(b.ptr);
	ck_assert(!wire_reader_ok(&r));

	/* A null array where the schema has none. */
	wire_reader_init(&r, null_bytes, sizeof(null_bytes));
	ck_assert_int_eq(wire_read_array_len(&r, 1), 0);
	ck_assert(!wire_reader_ok(&r));
	/* ... and where it has one. */
	wire_reader_init(&r, null_bytes, sizeof(null_bytes));
	ck_assert_int_eq(wire_read_nullable_array_len(&r, 1), -1);
	ck_assert(wire_reader_ok(&r));
	ck_assert_uint_eq(wire_remaining(&r), 1);

	/* Lengths below -1 are never null. */
	static const uint8_t minus2[] = {0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0};
	wire_reader_init(&r, minus2, sizeof(minus2));
	s = wire_read_nullable_string(&r);
	ck_assert_ptr_null(s.ptr);
	ck_assert(!wire_reader_ok(&r));
	wire_reader_init(&r, minus2 + 2, sizeof(minus2) - 2);
	b = wire_read_nullable_bytes(&r);
	ck_assert(!wire_reader_ok(&r));
	wire_reader_init(&r, minus2 + 2, sizeof(minus2) - 2);
	ck_assert_int_eq(wire_read_nullable_array_len(&r, 1), 0);
	ck_assert(!wire_reader_ok(&r));
	static const uint8_t min32[] = {0x80, 0x00, 0x00, 0x00};
	wire_reader_init(&r, min32, sizeof(min32));
	ck_assert_int_eq(wire_read_nullable_array_len(&r, 1), 0);
	ck_assert(!wire_reader_ok(&r));
}
END_TEST

START_TEST(test_lying_lengths_rejected)
{
	struct wire_reader r;
	/* a string claiming 5 bytes with 4 behind it */
	static const uint8_t s5[] = {0x00, 0x05, 'a', 'b', 'c', 'd'};
	uint8_t *p = exact_copy(s5, sizeof(s5));
	wire_reader_init(&r, p, sizeof(s5));
	struct wire_str s = wire_read_string(&r);
	ck_assert_ptr_null(s.ptr);
	ck_assert(!wire_reader_ok(&r));
	free(p);
	/* INT16_MAX claimed */
	static const uint8_t smax[] = {0x7f, 0xff, 'a'};
	wire_reader_init(&r, smax, sizeof(smax));
	(void)wire_read_nullable_string(&r);
	ck_assert(!wire_reader_ok(&r));
	/* bytes claiming INT32_MAX with 10 behind */
	static const uint8_t bmax[14] = {0x7f, 0xff, 0xff, 0xff};
	p = exact_copy(bmax, sizeof(bmax));
	wire_reader_init(&r, p, sizeof(bmax));
	struct wire_bytes b = wire_read_nullable_bytes(&r);
	ck_assert_ptr_null(b.ptr);
	ck_assert(!wire_reader_ok(&r));
	free(p);
	/* bytes claiming one more than there is */
	static const uint8_t b3[] = {0x00, 0x00, 0x00, 0x03, 1, 2};
	wire_reader_init(&r, b3, sizeof(b3));
	(void)wire_read_bytes(&r);
	ck_assert(!wire_reader_ok(&r));
}
END_TEST

START_TEST(test_array_len_bound)
{
	/* 100 bytes after the count: 25 int32 elements fit, 26 do not. */
	uint8_t buf[104] = {0};
	struct wire_reader r;
	buf[3] = 25;
	wire_reader_init(&r, buf, sizeof(buf));
	ck_assert_int_eq(wire_read_array_len(&r, 4), 25);
	ck_assert(wire_reader_ok(&r));
	buf[3] = 26;
	wire_reader_init(&r, buf, sizeof(buf));
	ck_assert_int_eq(wire_read_array_len(&r, 4), 0);
	ck_assert(!wire_reader_ok(&r));
	/* the same count is fine for 1-byte elements */
	wire_reader_init(&r, buf, sizeof(buf));
	ck_assert_int_eq(wire_read_nullable_array_len(&r, 1), 26);
	/* a count of INT32_MAX (and 0x7fffff00) with 100 bytes behind it */
	static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	wire_reader_init(&r, huge, sizeof(huge));
	ck_assert_int_eq(wire_read_array_len(&r, 1), 0);
	ck_assert(!wire_reader_ok(&r));
	/* zero elements always fit, even with nothing after */
	static const uint8_t zero[] = {0, 0, 0, 0};
	wire_reader_init(&r, zero, sizeof(zero));
	ck_assert_int_eq(wire_read_array_len(&r, 1000), 0);
	ck_assert(wire_reader_ok(&r));

	/* A decoder loop over a lying count stops at the check, so it cannot spin: a
	 * topic array (string + partition array, at least 6 bytes an element) claiming a
	 * million topics in a 64-byte request. */
	uint8_t req[64] = {0x00, 0x0f, 0x42, 0x40}; /* 1,000,000 */
	wire_reader_init(&r, req, sizeof(req));
	int32_t n = wire_read_array_len(&r, 2 + 4);
	long iterations = 0;
	for (int32_t i = 0; i < n; i++) {
		iterations++;
		(void)wire_read_string(&r);
		(void)wire_read_array_len(&r, 4);
	}
	ck_assert_int_eq(iterations, 0);
	ck_assert(!wire_reader_ok(&r));
}
END_TEST

START_TEST(test_sticky_failure)
{
	static const uint8_t bytes[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
					0x06, 0x07, 0x00, 0x02, 'h',  'i'};
	struct wire_reader r;
	wire_reader_init(&r, bytes, sizeof(bytes));
	ck_assert_int_eq(wire_read_i16(&r), 1);
	wire_skip(&r, 100); /* fails */
	ck_assert(!wire_reader_ok(&r));
	ck_assert_uint_eq(wire_remaining(&r), 0);
	/* every later read gives zero even though bytes are there */
	ck_assert_int_eq(wire_read_i8(&r), 0);
	ck_assert_int_eq(wire_read_i16(&r), 0);
	ck_assert_int_eq(wire_read_i32(&r), 0);
	ck_assert_int_eq(wire_read_i64(&r), 0);
	ck_assert_uint_eq(wire_read_u32(&r), 0);
	ck_assert_int_eq(wire_read_varint(&r), 0);
	ck_assert_int_eq(wire_read_varlong(&r), 0);
	ck_assert_uint_eq(wire_read_uvarint(&r), 0);
	ck_assert(!wire_read_bool(&r));
	ck_assert_ptr_null(wire_read_string(&r).ptr);
	ck_assert_ptr_null(wire_read_nullable_string(&r).ptr);
	ck_assert_ptr_null(wire_read_bytes(&r).ptr);
	ck_assert_ptr_null(wire_read_nullable_bytes(&r).ptr);
	ck_assert_ptr_null(wire_read_compact_string(&r).ptr);
	ck_assert_int_eq(wire_read_array_len(&r, 1), 0);
	ck_assert_int_eq(wire_read_nullable_array_len(&r, 1), 0);
	wire_skip_tagged_fields(&r);
	ck_assert(!wire_reader_ok(&r));
	ck_assert_ptr_eq(r.pos, bytes + 2); /* stood where the failing read began */
}
END_TEST

START_TEST(test_compact_and_tagged)
{
	/* COMPACT_STRING "abc" is 04 'a' 'b' 'c'; null is 00; empty is 01. */
	static const uint8_t bytes[] = {0x04, 'a', 'b', 'c', 0x00, 0x01};
	struct wire_reader r;
	wire_reader_init(&r, bytes, sizeof(bytes));
	ck_assert(wire_str_eq(wire_read_compact_string(&r), "abc"));
	struct wire_str s = wire_read_compact_nullable_string(&r);
	ck_assert_ptr_null(s.ptr);
	ck_assert(wire_reader_ok(&r));
	s = wire_read_compact_string(&r);
	ck_assert_ptr_nonnull(s.ptr);
	ck_assert_uint_eq(s.len, 0);
	ck_assert_uint_eq(wire_remaining(&r), 0);
	/* null where not allowed */
	wire_reader_init(&r, bytes + 4, 1);
	(void)wire_read_compact_string(&r);
	ck_assert(!wire_reader_ok(&r));
	/* longer than INT16_MAX: 32768 + 1 = 0x8001 = 81 80 02 */
	static uint8_t longer[3 + 32768] = {0x81, 0x80, 0x02};
	wire_reader_init(&r, longer, sizeof(longer));
	(void)wire_read_compact_nullable_string(&r);
	ck_assert(!wire_reader_ok(&r));
	/* lying length */
	static const uint8_t lie[] = {0x05, 'a', 'b'};
	wire_reader_init(&r, lie, sizeof(lie));
	(void)wire_read_compact_string(&r);
	ck_assert(!wire_reader_ok(&r));

	/* TAG_BUFFER: none; two fields (tag 0 of 2 bytes, tag 1 of 0 bytes) then an i8 */
	static const uint8_t tags[] = {0x00, 0x02, 0x00, 0x02, 0xaa, 0xbb, 0x01, 0x00, 0x7f};
	wire_reader_init(&r, tags, sizeof(tags));
	wire_skip_tagged_fields(&r);
	wire_skip_tagged_fields(&r);
	ck_assert_int_eq(wire_read_i8(&r), 0x7f);
	ck_assert(wire_reader_ok(&r));
	/* a count the bytes cannot hold, and a field running past the end */
	static const uint8_t lying_count[] = {0x64, 0x00, 0x00};
	wire_reader_init(&r, lying_count, sizeof(lying_count));
	wire_skip_tagged_fields(&r);
	ck_assert(!wire_reader_ok(&r));
	static const uint8_t long_field[] = {0x01, 0x00, 0x05, 0xaa};
	wire_reader_init(&r, long_field, sizeof(long_field));
	wire_skip_tagged_fields(&r);
	ck_assert(!wire_reader_ok(&r));
}
END_TEST

/* ---- request header ---- */

/* Request header v1: key 3 (Metadata) v8, correlation 0x01020304, client "cli" */
static const uint8_t header_v1[] = {0x00, 0x03, 0x00, 0x08, 0x01, 0x02, 0x03,
				    0x04, 0x00, 0x03, 'c',  'l',  'i'};

START_TEST(test_request_header_parse)
{
	struct wire_reader r;
	struct wire_request_header h;
	wire_reader_init(&r, header_v1, sizeof(header_v1));
	ck_assert_int_eq(wire_read_request_header(&r, &h), 0);
	ck_assert_int_eq(h.api_key, KAFKA_API_METADATA);
	ck_assert_int_eq(h.api_version, 8);
	ck_assert_int_eq(h.correlation_id, 0x01020304);
	ck_assert(wire_str_eq(h.client_id, "cli"));
	ck_assert_uint_eq(wire_remaining(&r), 0);

	/* null and empty client ids: the 10-byte minimum header */
	static const uint8_t null_id[] = {0x00, 0x12, 0x00, 0x00, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0xff};
	_Static_assert(sizeof(null_id) == WIRE_REQUEST_HEADER_MIN_BYTES, "minimum header");
	wire_reader_init(&r, null_id, sizeof(null_id));
	ck_assert_int_eq(wire_read_request_header(&r, &h), 0);
	ck_assert_int_eq(h.correlation_id, -1);
	ck_assert_ptr_null(h.client_id.ptr);
	static const uint8_t empty_id[] = {0x00, 0x12, 0x00, 0x00, 0x00, 0x00,
					   0x00, 0x07, 0x00, 0x00, 0xee};
	wire_reader_init(&r, empty_id, sizeof(empty_id));
	ck_assert_int_eq(wire_read_request_header(&r, &h), 0);
	ck_assert_ptr_nonnull(h.client_id.ptr);
	ck_assert_uint_eq(h.client_id.len, 0);
	ck_assert_uint_eq(wire_remaining(&r), 1); /* the body starts here */

	/* a client id length below -1 */
	static const uint8_t bad_id[] = {0x00, 0x12, 0x00, 0x00, 0x00, 0x00,
					 0x00, 0x07, 0xff, 0xfe, 'x',  'y'};
	wire_reader_init(&r, bad_id, sizeof(bad_id));
	ck_assert_int_eq(wire_read_request_header(&r, &h), -EBADMSG);
	ck_assert_int_eq(h.api_key, 18); /* what was read stays, for the log line */
	ck_assert_int_eq(h.correlation_id, 7);
	ck_assert_ptr_null(h.client_id.ptr);
}
END_TEST

START_TEST(test_request_header_truncated_everywhere)
{
	for (size_t cut = 0; cut < sizeof(header_v1); cut++) {
		uint8_t *p = exact_copy(header_v1, cut);
		struct wire_reader r;
		struct wire_request_header h;
		memset(&h, 0x5a, sizeof(h));
		wire_reader_init(&r, p, cut);
		ck_assert_msg(wire_read_request_header(&r, &h) == -EBADMSG, "cut at %zu", cut);
		ck_assert(!wire_reader_ok(&r));
		ck_assert_ptr_null(h.client_id.ptr);
		/* fields past the cut read as zero, never as stale memory */
		if (cut < 2)
			ck_assert_int_eq(h.api_key, 0);
		if (cut < 4)
			ck_assert_int_eq(h.api_version, 0);
		if (cut < 8)
			ck_assert_int_eq(h.correlation_id, 0);
		free(p);
	}
}
END_TEST

/* An ApiVersions v0 request as librdkafka sends it when it falls back (and as older
 * clients send it first), built from the spec: size 17, api_key 18, api_version 0,
 * correlation_id 1, client_id "rdkafka" (librdkafka's default client.id); the v0 body
 * is empty (ApiVersionsRequest.json: no fields below version 3). */
static const uint8_t apiversions_v0[] = {
    0x00, 0x00, 0x00, 0x11,			     /* size 17 */
    0x00, 0x12,					     /* api_key 18 */
    0x00, 0x00,					     /* api_version 0 */
    0x00, 0x00, 0x00, 0x01,			     /* correlation_id 1 */
    0x00, 0x07, 'r',  'd',  'k', 'a', 'f', 'k', 'a', /* client_id */
};

START_TEST(test_apiversions_v0_known_bytes)
{
	uint32_t frame_len;
	ck_assert_int_eq(wire_frame_length(apiversions_v0, sizeof(apiversions_v0),
					   LIMITS_REQUEST_BYTES_MAX, &frame_len),
			 0);
	ck_assert_uint_eq(frame_len, 17);
	ck_assert_uint_eq(WIRE_SIZE_PREFIX_BYTES + frame_len, sizeof(apiversions_v0));
	struct wire_reader r;
	struct wire_request_header h;
	wire_reader_init(&r, apiversions_v0 + WIRE_SIZE_PREFIX_BYTES, frame_len);
	ck_assert_int_eq(wire_read_request_header(&r, &h), 0);
	ck_assert_int_eq(h.api_key, KAFKA_API_API_VERSIONS);
	ck_assert_int_eq(h.api_version, 0);
	ck_assert_int_eq(h.correlation_id, 1);
	ck_assert(wire_str_eq(h.client_id, "rdkafka"));
	ck_assert_uint_eq(wire_remaining(&r), 0);
	ck_assert(kafka_api_version_supported(h.api_key, h.api_version));
}
END_TEST

/* The ApiVersions v3 request librdkafka (1.4 and later) sends first, built from the
 * spec: v3 is flexible (ApiVersionsRequest.json "flexibleVersions": "3+"), so the
 * header is v2 (RequestHeader.json: client_id keeps its int16 length, then a tag
 * buffer), and the body is two COMPACT_STRINGs (ClientSoftwareName, ClientSoftwareVersion)
 * and a tag buffer. sluice reads the v1 part, sees v3 is not advertised, and answers
 * error 35 (DESIGN §4); the rest must still be skippable. */
static const uint8_t apiversions_v3[] = {
    0x00, 0x00, 0x00, 0x24,				       /* size 36 */
    0x00, 0x12, 0x00, 0x03,				       /* key 18, version 3 */
    0x00, 0x00, 0x00, 0x02,				       /* correlation_id 2 */
    0x00, 0x07, 'r',  'd',  'k', 'a', 'f', 'k', 'a',	       /* client_id */
    0x00,						       /* header tags */
    0x0b, 'l',	'i',  'b',  'r', 'd', 'k', 'a', 'f', 'k', 'a', /* name, N + 1 = 11 */
    0x06, '2',	'.',  '0',  '.', '2',			       /* version, N + 1 = 6 */
    0x00,						       /* body tags */
};

START_TEST(test_apiversions_v3_known_bytes)
{
	uint32_t frame_len;
	ck_assert_int_eq(wire_frame_length(apiversions_v3, sizeof(apiversions_v3),
					   LIMITS_REQUEST_BYTES_MAX, &frame_len),
			 0);
	ck_assert_uint_eq(WIRE_SIZE_PREFIX_BYTES + frame_len, sizeof(apiversions_v3));
	struct wire_reader r;
	struct wire_request_header h;
	wire_reader_init(&r, apiversions_v3 + WIRE_SIZE_PREFIX_BYTES, frame_len);
	ck_assert_int_eq(wire_read_request_header(&r, &h), 0);
	ck_assert_int_eq(h.api_key, KAFKA_API_API_VERSIONS);
	ck_assert_int_eq(h.api_version, 3);
	ck_assert_int_eq(h.correlation_id, 2);
	ck_assert(wire_str_eq(h.client_id, "rdkafka"));
	ck_assert(!kafka_api_version_supported(h.api_key, h.api_version));
	wire_skip_tagged_fields(&r);
	ck_assert(wire_str_eq(wire_read_compact_string(&r), "librdkafka"));
	ck_assert(wire_str_eq(wire_read_compact_string(&r), "2.0.2"));
	wire_skip_tagged_fields(&r);
	ck_assert(wire_reader_ok(&r));
	ck_assert_uint_eq(wire_remaining(&r), 0);
}
END_TEST

/* ---- writer ---- */

#define GUARD		0xa5
#define GUARD_BYTES	32
#define GUARDED_CAP_MAX 512

/* A writer over a window of a buffer with guard bytes on both sides. */
struct guarded {
	uint8_t mem[GUARD_BYTES + GUARDED_CAP_MAX + GUARD_BYTES];
	size_t cap; /* the window the writer may use */
	struct wire_writer w;
};

static void guarded_init(struct guarded *g, size_t cap)
{
	ck_assert_uint_le(cap, GUARDED_CAP_MAX);
	memset(g->mem, GUARD, sizeof(g->mem));
	g->cap = cap;
	wire_writer_init(&g->w, g->mem + GUARD_BYTES, cap);
}

/* True when no byte outside the window, and none of the window past the writer's
 * len, was touched. */
static bool guarded_intact(const struct guarded *g)
{
	for (size_t i = 0; i < sizeof(g->mem); i++) {
		bool written = i >= GUARD_BYTES && i < GUARD_BYTES + g->w.len;
		if (!written && g->mem[i] != GUARD)
			return false;
	}
	return true;
}

static char s300[300];

static void w_i8(struct wire_writer *w)
{
	wire_write_i8(w, -1);
}
static void w_i16(struct wire_writer *w)
{
	wire_write_i16(w, -1);
}
static void w_i32(struct wire_writer *w)
{
	wire_write_i32(w, -1);
}
static void w_i64(struct wire_writer *w)
{
	wire_write_i64(w, -1);
}
static void w_u32(struct wire_writer *w)
{
	wire_write_u32(w, UINT32_MAX);
}
static void w_bool(struct wire_writer *w)
{
	wire_write_bool(w, true);
}
static void w_varint(struct wire_writer *w)
{
	wire_write_varint(w, INT32_MIN);
}
static void w_varlong(struct wire_writer *w)
{
	wire_write_varlong(w, INT64_MIN);
}
static void w_uvarint(struct wire_writer *w)
{
	wire_write_uvarint(w, UINT32_MAX);
}
static void w_string(struct wire_writer *w)
{
	wire_write_string(w, s300, sizeof(s300));
}
static void w_null_string(struct wire_writer *w)
{
	wire_write_nullable_string(w, NULL, 0);
}
static void w_str(struct wire_writer *w)
{
	wire_write_str(w, (struct wire_str){s300, 10});
}
static void w_bytes(struct wire_writer *w)
{
	wire_write_bytes(w, s300, sizeof(s300));
}
static void w_null_bytes(struct wire_writer *w)
{
	wire_write_nullable_bytes(w, NULL, 0);
}
static void w_array_len(struct wire_writer *w)
{
	wire_write_array_len(w, -1);
}
static void w_raw(struct wire_writer *w)
{
	wire_write_raw(w, s300, sizeof(s300));
}
static void w_reserve(struct wire_writer *w)
{
	(void)wire_writer_reserve_i32(w);
}
static void w_response_begin(struct wire_writer *w)
{
	(void)wire_write_response_begin(w, 7);
}

/* Every write, given exactly the bytes it needs and then one byte less: whole, or
 * nothing at all (overflow set, len unmoved, not a byte touched). */
START_TEST(test_writer_all_or_nothing)
{
	memset(s300, 's', sizeof(s300));
	static const struct {
		const char *name;
		size_t need;
		void (*write)(struct wire_writer *w);
	} cases[] = {
	    {"i8", 1, w_i8},
	    {"i16", 2, w_i16},
	    {"i32", 4, w_i32},
	    {"i64", 8, w_i64},
	    {"u32", 4, w_u32},
	    {"bool", 1, w_bool},
	    {"varint", 5, w_varint},
	    {"varlong", 10, w_varlong},
	    {"uvarint", 5, w_uvarint},
	    {"string", 2 + 300, w_string},
	    {"null string", 2, w_null_string},
	    {"str view", 2 + 10, w_str},
	    {"bytes", 4 + 300, w_bytes},
	    {"null bytes", 4, w_null_bytes},
	    {"array len", 4, w_array_len},
	    {"raw", 300, w_raw},
	    {"reserve", 4, w_reserve},
	    {"response begin", 8, w_response_begin},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct guarded g;
		guarded_init(&g, cases[i].need);
		cases[i].write(&g.w);
		ck_assert_msg(wire_writer_ok(&g.w), "%s", cases[i].name);
		ck_assert_uint_eq(g.w.len, cases[i].need);
		ck_assert_msg(guarded_intact(&g), "%s", cases[i].name);

		guarded_init(&g, cases[i].need - 1);
		cases[i].write(&g.w);
		ck_assert_msg(!wire_writer_ok(&g.w), "%s", cases[i].name);
		ck_assert_uint_eq(g.w.len, 0);
		ck_assert_msg(guarded_intact(&g), "%s wrote past its buffer", cases[i].name);
	}
}
END_TEST

START_TEST(test_writer_overflow_sticky)
{
	struct guarded g;
	guarded_init(&g, 10);
	wire_write_i64(&g.w, 1);
	ck_assert(wire_writer_ok(&g.w));
	wire_write_i32(&g.w, 2); /* 4 > 2 left: refused */
	ck_assert(!wire_writer_ok(&g.w));
	ck_assert_uint_eq(g.w.len, 8);
	wire_write_i8(&g.w, 3); /* would fit, but the writer is sticky */
	wire_write_i16(&g.w, 4);
	wire_write_raw(&g.w, "x", 1);
	ck_assert_uint_eq(g.w.len, 8);
	ck_assert(guarded_intact(&g));
	ck_assert_int_eq(wire_write_response_end(&g.w, 0, 0), -ENOBUFS);
	/* A zero-capacity writer refuses everything but nothing. */
	struct wire_writer w;
	wire_writer_init(&w, NULL, 0);
	wire_write_raw(&w, NULL, 0);
	ck_assert(wire_writer_ok(&w));
	wire_write_i8(&w, 0);
	ck_assert(!wire_writer_ok(&w));
}
END_TEST

START_TEST(test_writer_reserve_patch)
{
	/* a reserve that did not fit: patching its offset writes nothing */
	struct guarded g;
	guarded_init(&g, 6);
	wire_write_i32(&g.w, 7);
	size_t at = wire_writer_reserve_i32(&g.w);
	ck_assert(!wire_writer_ok(&g.w));
	wire_writer_patch_i32(&g.w, at, 0x11111111);
	ck_assert_uint_eq(g.w.len, 4);
	ck_assert(guarded_intact(&g));

	uint8_t buf[64];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_i16(&w, 0);
	size_t count_at = wire_writer_reserve_i32(&w);
	ck_assert_uint_eq(count_at, 2);
	int32_t count = 0;
	for (int32_t i = 0; i < 3; i++) {
		wire_write_i32(&w, i * 10);
		count++;
	}
	wire_writer_patch_i32(&w, count_at, count);
	ck_assert(wire_writer_ok(&w));
	struct wire_reader r;
	wire_reader_init(&r, buf, w.len);
	ck_assert_int_eq(wire_read_i16(&r), 0);
	int32_t n = wire_read_array_len(&r, 4);
	ck_assert_int_eq(n, 3);
	for (int32_t i = 0; i < n; i++)
		ck_assert_int_eq(wire_read_i32(&r), i * 10);
	ck_assert_uint_eq(wire_remaining(&r), 0);
	/* negative values patch as two's complement */
	wire_writer_patch_i32(&w, count_at, -2);
	ck_assert_mem_eq(buf + 2, "\xff\xff\xff\xfe", 4);
}
END_TEST

START_TEST(test_response_frame)
{
	uint8_t buf[64];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	size_t at = wire_write_response_begin(&w, 0x12345678);
	wire_write_i16(&w, KERR_NONE);
	wire_write_array_len(&w, 0);
	ck_assert_int_eq(wire_write_response_end(&w, at, 0), 0);
	static const uint8_t want[] = {0x00, 0x00, 0x00, 0x0a, 0x12, 0x34, 0x56,
				       0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	ck_assert_uint_eq(w.len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	uint32_t frame_len;
	ck_assert_int_eq(wire_frame_length(buf, w.len, LIMITS_REQUEST_BYTES_MAX, &frame_len), 0);
	ck_assert_uint_eq(frame_len, 10);

	/* A second frame after the first, with 1000 bytes of records sent from elsewhere. */
	size_t at2 = wire_write_response_begin(&w, -1);
	wire_write_i32(&w, 1000); /* the records' length field */
	ck_assert_int_eq(wire_write_response_end(&w, at2, 1000), 0);
	ck_assert_uint_eq(at2, sizeof(want));
	struct wire_reader r;
	wire_reader_init(&r, buf + at2, w.len - at2);
	ck_assert_int_eq(wire_read_i32(&r), 4 + 4 + 1000);
	ck_assert_int_eq(wire_read_i32(&r), -1);

	/* A frame that did not fit. */
	wire_writer_init(&w, buf, 10);
	at = wire_write_response_begin(&w, 1);
	wire_write_i64(&w, 0);
	ck_assert_int_eq(wire_write_response_end(&w, at, 0), -ENOBUFS);
}
END_TEST

/* ---- framing ---- */

START_TEST(test_frame_length)
{
	uint32_t len;
	uint8_t buf[32] = {0x00, 0x00, 0x00, 0x0a};
	for (size_t avail = 0; avail < 4; avail++) {
		len = 99;
		ck_assert_int_eq(wire_frame_length(buf, avail, 100, &len), -EAGAIN);
		ck_assert_uint_eq(len, 0);
	}
	for (size_t avail = 4; avail < 14; avail++) {
		ck_assert_int_eq(wire_frame_length(buf, avail, 100, &len), -EAGAIN);
		ck_assert_uint_eq(len, 10); /* known once the prefix is in */
	}
	ck_assert_int_eq(wire_frame_length(buf, 14, 100, &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(wire_frame_length(buf, 32, 100, &len), 0); /* next frame behind */
	ck_assert_uint_eq(len, 10);
	/* exactly the limit is allowed, one more is not, even before the bytes arrive */
	ck_assert_int_eq(wire_frame_length(buf, 14, 10, &len), 0);
	ck_assert_int_eq(wire_frame_length(buf, 4, 9, &len), -EMSGSIZE);
	ck_assert_uint_eq(len, 10);
	/* an empty message is a frame (its header then fails to parse) */
	static const uint8_t zero[] = {0, 0, 0, 0};
	ck_assert_int_eq(wire_frame_length(zero, 4, 100, &len), 0);
	ck_assert_uint_eq(len, 0);
	/* negative sizes */
	static const uint8_t minus1[] = {0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(wire_frame_length(minus1, 4, UINT32_MAX, &len), -EBADMSG);
	ck_assert_uint_eq(len, 0);
	static const uint8_t min32[] = {0x80, 0x00, 0x00, 0x00};
	ck_assert_int_eq(wire_frame_length(min32, 4, UINT32_MAX, &len), -EBADMSG);
	/* socket.request.max.bytes: 100 MiB, Kafka's default */
	ck_assert_uint_eq(LIMITS_REQUEST_BYTES_MAX, 104857600u);
	static const uint8_t at_max[] = {0x06, 0x40, 0x00, 0x00};   /* 104857600 */
	static const uint8_t past_max[] = {0x06, 0x40, 0x00, 0x01}; /* 104857601 */
	ck_assert_int_eq(wire_frame_length(at_max, 4, LIMITS_REQUEST_BYTES_MAX, &len), -EAGAIN);
	ck_assert_uint_eq(len, LIMITS_REQUEST_BYTES_MAX);
	ck_assert_int_eq(wire_frame_length(past_max, 4, LIMITS_REQUEST_BYTES_MAX, &len), -EMSGSIZE);
	static const uint8_t int32_max[] = {0x7f, 0xff, 0xff, 0xff};
	ck_assert_int_eq(wire_frame_length(int32_max, 4, LIMITS_REQUEST_BYTES_MAX, &len),
			 -EMSGSIZE);
}
END_TEST

/* ---- random input never reads out of bounds ---- */

START_TEST(test_random_input_is_contained)
{
	/* A decoder shaped like a Produce v3 request over random bytes (with plausible
	 * small lengths mixed in), each buffer exactly its size: under the sanitizer
	 * build any read past the end aborts the test. */
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 20000; round++) {
		size_t len = 0;
		uint8_t tmp[96];
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		len = (size_t)(seed >> 33) % sizeof(tmp);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint8_t b = (uint8_t)(seed >> 40);
			/* bias toward small and -1 lengths so parsing gets deep */
			tmp[i] = (seed >> 20) % 3 == 0 ? 0x00 : (seed >> 21) % 7 == 0 ? 0xff : b;
		}
		uint8_t *p = exact_copy(tmp, len);
		struct wire_reader r;
		struct wire_request_header h;
		wire_reader_init(&r, p, len);
		int rc = wire_read_request_header(&r, &h);
		(void)wire_read_nullable_string(&r); /* transactional_id */
		(void)wire_read_i16(&r);	     /* acks */
		(void)wire_read_i32(&r);	     /* timeout */
		int32_t topics = wire_read_array_len(&r, 2 + 4);
		for (int32_t t = 0; t < topics; t++) {
			struct wire_str name = wire_read_string(&r);
			if (name.ptr)
				ck_assert(name.ptr >= (const char *)p &&
					  name.ptr + name.len <= (const char *)p + len);
			int32_t parts = wire_read_array_len(&r, 4 + 4);
			for (int32_t i = 0; i < parts; i++) {
				(void)wire_read_i32(&r);
				struct wire_bytes rec = wire_read_nullable_bytes(&r);
				if (rec.ptr)
					ck_assert(rec.ptr + rec.len <= p + len);
				(void)wire_read_varint(&r);
				(void)wire_read_varlong(&r);
			}
		}
		ck_assert(rc == 0 || !wire_reader_ok(&r));
		ck_assert(wire_remaining(&r) <= len);
		free(p);
	}
}
END_TEST

/* ---- protocol constants ---- */

START_TEST(test_api_version_table)
{
	/* DESIGN §4, entry by entry. */
	static const struct kafka_api_range design[] = {
	    {0, 3, 7, 0},	/* Produce */
	    {1, 4, 11, 0}, /* Fetch */
	    {2, 1, 5, 0},	/* ListOffsets */
	    {3, 0, 8, 0},	/* Metadata */
	    {8, 2, 7, 0},	/* OffsetCommit */
	    {9, 1, 5, 0},	/* OffsetFetch */
	    {10, 0, 2, 0}, /* FindCoordinator */
	    {11, 1, 5, 0}, /* JoinGroup */
	    {12, 0, 3, 0}, /* Heartbeat */
	    {13, 0, 2, 0}, /* LeaveGroup */
	    {14, 0, 3, 0}, /* SyncGroup */
	    {15, 0, 3, 0}, /* DescribeGroups */
	    {16, 0, 2, 0}, /* ListGroups */
	    {17, 0, 1, 0}, /* SaslHandshake */
	    {18, 0, 2, 0}, /* ApiVersions */
	    {19, 0, 3, 0}, /* CreateTopics */
	    {20, 0, 3, 0}, /* DeleteTopics */
	    {22, 0, 1, 0}, /* InitProducerId */
	    {32, 0, 2, 0}, /* DescribeConfigs */
	    {36, 0, 1, 0}, /* SaslAuthenticate */
	    {37, 0, 1, 0}, /* CreatePartitions */
	    {42, 0, 1, 0}, /* DeleteGroups (issue 6; not in DESIGN §4's list) */
	};
	const size_t n = sizeof(design) / sizeof(design[0]);
	ck_assert_uint_eq(kafka_api_range_count(), n);
	for (size_t i = 0; i < n; i++) {
		const struct kafka_api_range *got = kafka_api_range_at(i);
		ck_assert_int_eq(got->api_key, design[i].api_key);
		ck_assert_int_eq(got->min_version, design[i].min_version);
		ck_assert_int_eq(got->max_version, design[i].max_version);
		ck_assert_ptr_eq(kafka_api_range_find(got->api_key), got);
		ck_assert_str_ne(kafka_api_name(got->api_key), "Unknown");
		if (i > 0)
			ck_assert_int_gt(got->api_key, kafka_api_range_at(i - 1)->api_key);
		for (int16_t v = -1; v <= 13; v++)
			ck_assert_int_eq(kafka_api_version_supported(got->api_key, v),
					 v >= got->min_version && v <= got->max_version);
	}
	/* The brief's spot checks. */
	ck_assert(!kafka_api_version_supported(KAFKA_API_PRODUCE, 2));
	ck_assert(kafka_api_version_supported(KAFKA_API_PRODUCE, 3));
	ck_assert(kafka_api_version_supported(KAFKA_API_PRODUCE, 7));
	ck_assert(!kafka_api_version_supported(KAFKA_API_PRODUCE, 8));
	ck_assert(!kafka_api_version_supported(KAFKA_API_FETCH, 3));
	ck_assert(kafka_api_version_supported(KAFKA_API_FETCH, 11));
	ck_assert(!kafka_api_version_supported(KAFKA_API_FETCH, 12));
	ck_assert(kafka_api_version_supported(KAFKA_API_API_VERSIONS, 0));
	ck_assert(kafka_api_version_supported(KAFKA_API_API_VERSIONS, 2));
	ck_assert(!kafka_api_version_supported(KAFKA_API_API_VERSIONS, 3));
	ck_assert(!kafka_api_version_supported(KAFKA_API_METADATA, 9));
	ck_assert(!kafka_api_version_supported(KAFKA_API_METADATA, -1));
	ck_assert(!kafka_api_version_supported(KAFKA_API_METADATA, INT16_MIN));
	ck_assert(kafka_api_version_supported(KAFKA_API_DELETE_GROUPS, 1));
	ck_assert(!kafka_api_version_supported(KAFKA_API_DELETE_GROUPS, 2)); /* flexible */
	/* Keys sluice does not advertise (yet), and keys that do not exist. */
	ck_assert_ptr_null(kafka_api_range_find(29)); /* DescribeAcls */
	ck_assert_ptr_null(kafka_api_range_find(4)); /* LeaderAndIsr: broker-only */
	ck_assert_ptr_null(kafka_api_range_find(21));
	ck_assert_ptr_null(kafka_api_range_find(-1));
	ck_assert_ptr_null(kafka_api_range_find(INT16_MAX));
	ck_assert(!kafka_api_version_supported(99, 0));
}
END_TEST

START_TEST(test_api_range_at_out_of_bounds_aborts)
{
	(void)kafka_api_range_at(kafka_api_range_count());
}
END_TEST

START_TEST(test_error_names)
{
	/* Codes and names as in Kafka's Errors.java: the number is Kafka's, the enum
	 * constant must equal it and the name must be Kafka's. */
	static const struct {
		int code;
		int16_t kerr;
		const char *name;
	} kafka[] = {
	    {-1, KERR_UNKNOWN_SERVER_ERROR, "UNKNOWN_SERVER_ERROR"},
	    {0, KERR_NONE, "NONE"},
	    {1, KERR_OFFSET_OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE"},
	    {2, KERR_CORRUPT_MESSAGE, "CORRUPT_MESSAGE"},
	    {3, KERR_UNKNOWN_TOPIC_OR_PARTITION, "UNKNOWN_TOPIC_OR_PARTITION"},
	    {4, KERR_INVALID_FETCH_SIZE, "INVALID_FETCH_SIZE"},
	    {5, KERR_LEADER_NOT_AVAILABLE, "LEADER_NOT_AVAILABLE"},
	    {6, KERR_NOT_LEADER_OR_FOLLOWER, "NOT_LEADER_OR_FOLLOWER"},
	    {7, KERR_REQUEST_TIMED_OUT, "REQUEST_TIMED_OUT"},
	    {10, KERR_MESSAGE_TOO_LARGE, "MESSAGE_TOO_LARGE"},
	    {14, KERR_COORDINATOR_LOAD_IN_PROGRESS, "COORDINATOR_LOAD_IN_PROGRESS"},
	    {15, KERR_COORDINATOR_NOT_AVAILABLE, "COORDINATOR_NOT_AVAILABLE"},
	    {16, KERR_NOT_COORDINATOR, "NOT_COORDINATOR"},
	    {17, KERR_INVALID_TOPIC_EXCEPTION, "INVALID_TOPIC_EXCEPTION"},
	    {18, KERR_RECORD_LIST_TOO_LARGE, "RECORD_LIST_TOO_LARGE"},
	    {21, KERR_INVALID_REQUIRED_ACKS, "INVALID_REQUIRED_ACKS"},
	    {22, KERR_ILLEGAL_GENERATION, "ILLEGAL_GENERATION"},
	    {23, KERR_INCONSISTENT_GROUP_PROTOCOL, "INCONSISTENT_GROUP_PROTOCOL"},
	    {24, KERR_INVALID_GROUP_ID, "INVALID_GROUP_ID"},
	    {25, KERR_UNKNOWN_MEMBER_ID, "UNKNOWN_MEMBER_ID"},
	    {26, KERR_INVALID_SESSION_TIMEOUT, "INVALID_SESSION_TIMEOUT"},
	    {27, KERR_REBALANCE_IN_PROGRESS, "REBALANCE_IN_PROGRESS"},
	    {28, KERR_INVALID_COMMIT_OFFSET_SIZE, "INVALID_COMMIT_OFFSET_SIZE"},
	    {29, KERR_TOPIC_AUTHORIZATION_FAILED, "TOPIC_AUTHORIZATION_FAILED"},
	    {33, KERR_UNSUPPORTED_SASL_MECHANISM, "UNSUPPORTED_SASL_MECHANISM"},
	    {34, KERR_ILLEGAL_SASL_STATE, "ILLEGAL_SASL_STATE"},
	    {35, KERR_UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION"},
	    {36, KERR_TOPIC_ALREADY_EXISTS, "TOPIC_ALREADY_EXISTS"},
	    {37, KERR_INVALID_PARTITIONS, "INVALID_PARTITIONS"},
	    {38, KERR_INVALID_REPLICATION_FACTOR, "INVALID_REPLICATION_FACTOR"},
	    {40, KERR_INVALID_CONFIG, "INVALID_CONFIG"},
	    {42, KERR_INVALID_REQUEST, "INVALID_REQUEST"},
	    {43, KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT, "UNSUPPORTED_FOR_MESSAGE_FORMAT"},
	    {44, KERR_POLICY_VIOLATION, "POLICY_VIOLATION"},
	    {45, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "OUT_OF_ORDER_SEQUENCE_NUMBER"},
	    {46, KERR_DUPLICATE_SEQUENCE_NUMBER, "DUPLICATE_SEQUENCE_NUMBER"},
	    {47, KERR_INVALID_PRODUCER_EPOCH, "INVALID_PRODUCER_EPOCH"},
	    {56, KERR_KAFKA_STORAGE_ERROR, "KAFKA_STORAGE_ERROR"},
	    {59, KERR_UNKNOWN_PRODUCER_ID, "UNKNOWN_PRODUCER_ID"},
	    {68, KERR_NON_EMPTY_GROUP, "NON_EMPTY_GROUP"},
	    {69, KERR_GROUP_ID_NOT_FOUND, "GROUP_ID_NOT_FOUND"},
	    {76, KERR_UNSUPPORTED_COMPRESSION_TYPE, "UNSUPPORTED_COMPRESSION_TYPE"},
	    {79, KERR_MEMBER_ID_REQUIRED, "MEMBER_ID_REQUIRED"},
	    {81, KERR_GROUP_MAX_SIZE_REACHED, "GROUP_MAX_SIZE_REACHED"},
	    {82, KERR_FENCED_INSTANCE_ID, "FENCED_INSTANCE_ID"},
	};
	for (size_t i = 0; i < sizeof(kafka) / sizeof(kafka[0]); i++) {
		ck_assert_int_eq(kafka[i].kerr, kafka[i].code);
		ck_assert_str_eq(kafka_error_name((int16_t)kafka[i].code), kafka[i].name);
	}
	/* Every code in range has its own name; outside the range, one fixed answer. */
	for (int c = KAFKA_ERROR_MIN; c <= KAFKA_ERROR_MAX; c++) {
		const char *name = kafka_error_name((int16_t)c);
		ck_assert_ptr_nonnull(name);
		ck_assert_str_ne(name, "UNRECOGNIZED_ERROR_CODE");
		for (int d = KAFKA_ERROR_MIN; d < c; d++)
			ck_assert_str_ne(kafka_error_name((int16_t)d), name);
	}
	ck_assert_str_eq(kafka_error_name(-2), "UNRECOGNIZED_ERROR_CODE");
	ck_assert_str_eq(kafka_error_name(KAFKA_ERROR_MAX + 1), "UNRECOGNIZED_ERROR_CODE");
	ck_assert_str_eq(kafka_error_name(INT16_MIN), "UNRECOGNIZED_ERROR_CODE");
	ck_assert_str_eq(kafka_error_name(INT16_MAX), "UNRECOGNIZED_ERROR_CODE");
}
END_TEST

START_TEST(test_api_names)
{
	ck_assert_str_eq(kafka_api_name(KAFKA_API_PRODUCE), "Produce");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_FETCH), "Fetch");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_API_VERSIONS), "ApiVersions");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_INIT_PRODUCER_ID), "InitProducerId");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_DESCRIBE_CONFIGS), "DescribeConfigs");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_SASL_AUTHENTICATE), "SaslAuthenticate");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_CREATE_PARTITIONS), "CreatePartitions");
	ck_assert_str_eq(kafka_api_name(KAFKA_API_DELETE_GROUPS), "DeleteGroups");
	ck_assert_str_eq(kafka_api_name(4), "LeaderAndIsr");
	ck_assert_str_eq(kafka_api_name(21), "DeleteRecords");
	ck_assert_str_eq(kafka_api_name(47), "OffsetDelete");
	ck_assert_str_eq(kafka_api_name(48), "Unknown");
	ck_assert_str_eq(kafka_api_name(-1), "Unknown");
	ck_assert_str_eq(kafka_api_name(INT16_MIN), "Unknown");
}
END_TEST

/* ---- caller bugs abort ---- */

START_TEST(test_array_min_element_zero_aborts)
{
	static const uint8_t zero[] = {0, 0, 0, 0};
	struct wire_reader r;
	wire_reader_init(&r, zero, sizeof(zero));
	(void)wire_read_array_len(&r, 0);
}
END_TEST

START_TEST(test_string_too_long_aborts)
{
	static char big[INT16_MAX + 1];
	static uint8_t buf[INT16_MAX + 16];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_string(&w, big, sizeof(big));
}
END_TEST

START_TEST(test_patch_bad_offset_aborts)
{
	uint8_t buf[16];
	struct wire_writer w;
	wire_writer_init(&w, buf, sizeof(buf));
	wire_write_i16(&w, 0);
	wire_writer_patch_i32(&w, 0, 1); /* only 2 bytes written: no reserve returned 0 */
}
END_TEST

int main(void)
{
	const struct {
		const char *name;
		const TTest *test;
		int signal;
	} cases[] = {
	    {"fixed_round_trip", test_fixed_round_trip, 0},
	    {"fixed_known_bytes", test_fixed_known_bytes, 0},
	    {"fixed_short_input", test_fixed_short_input, 0},
	    {"varint_round_trip", test_varint_round_trip, 0},
	    {"varlong_round_trip", test_varlong_round_trip, 0},
	    {"uvarint_round_trip", test_uvarint_round_trip, 0},
	    {"varint_known_bytes", test_varint_known_bytes, 0},
	    {"varint_overlong_rejected", test_varint_overlong_rejected, 0},
	    {"string_round_trip", test_string_round_trip, 0},
	    {"bytes_round_trip", test_bytes_round_trip, 0},
	    {"null_where_not_allowed", test_null_where_not_allowed, 0},
	    {"lying_lengths_rejected", test_lying_lengths_rejected, 0},
	    {"array_len_bound", test_array_len_bound, 0},
	    {"sticky_failure", test_sticky_failure, 0},
	    {"compact_and_tagged", test_compact_and_tagged, 0},
	    {"request_header_parse", test_request_header_parse, 0},
	    {"request_header_truncated_everywhere", test_request_header_truncated_everywhere, 0},
	    {"apiversions_v0_known_bytes", test_apiversions_v0_known_bytes, 0},
	    {"apiversions_v3_known_bytes", test_apiversions_v3_known_bytes, 0},
	    {"writer_all_or_nothing", test_writer_all_or_nothing, 0},
	    {"writer_overflow_sticky", test_writer_overflow_sticky, 0},
	    {"writer_reserve_patch", test_writer_reserve_patch, 0},
	    {"response_frame", test_response_frame, 0},
	    {"frame_length", test_frame_length, 0},
	    {"random_input_is_contained", test_random_input_is_contained, 0},
	    {"api_version_table", test_api_version_table, 0},
	    {"api_range_at_out_of_bounds_aborts", test_api_range_at_out_of_bounds_aborts, SIGABRT},
	    {"error_names", test_error_names, 0},
	    {"api_names", test_api_names, 0},
	    {"array_min_element_zero_aborts", test_array_min_element_zero_aborts, SIGABRT},
	    {"string_too_long_aborts", test_string_too_long_aborts, SIGABRT},
	    {"patch_bad_offset_aborts", test_patch_bad_offset_aborts, SIGABRT},
	};
	Suite *s = suite_create("wire");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_test_raise_signal(tc, cases[i].test, cases[i].signal);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	}
	return unit_run(s);
}
