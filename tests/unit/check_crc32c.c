/*
 * tests/unit/check_crc32c.c: Check tests of core/crc32c: the published CRC-32C vectors
 * (RFC 3720 appendix B.4 and the "123456789" check value) through crc32c(), the table
 * implementation and, where the CPU has SSE4.2, the instruction; chaining; agreement of
 * the two implementations over every length 0..1024 at every start alignment 0..7 and
 * over buffers large enough for the three-stream path; and the CRC of a real Kafka
 * RecordBatch v2 as another client (Sarama) encoded it; crc32c_combine against the CRC of
 * the whole at every split. The hardware cases are a TAP
 * "# SKIP" line on a CPU without SSE4.2.
 */
#include "core/crc32c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"

typedef uint32_t (*crc_fn)(uint32_t crc, const void *buf, size_t len);

/* Runs the RFC 3720 B.4 vectors and the check value through FN. */
static void check_vectors(crc_fn fn, const char *impl)
{
	uint8_t buf[32];

	memset(buf, 0x00, sizeof(buf));
	ck_assert_msg(fn(0, buf, 32) == 0x8A9136AA, "%s zeros: %08x", impl, fn(0, buf, 32));
	memset(buf, 0xFF, sizeof(buf));
	ck_assert_msg(fn(0, buf, 32) == 0x62A8AB43, "%s ones: %08x", impl, fn(0, buf, 32));
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_msg(fn(0, buf, 32) == 0x46DD794E, "%s ascending: %08x", impl, fn(0, buf, 32));
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_msg(fn(0, buf, 32) == 0x113FDB5C, "%s descending: %08x", impl, fn(0, buf, 32));
	ck_assert_msg(fn(0, "123456789", 9) == 0xE3069283, "%s check value: %08x", impl,
		      fn(0, "123456789", 9));
	/* Nothing checksummed is the identity, also with a NULL buffer. */
	ck_assert_uint_eq(fn(0, NULL, 0), 0);
	ck_assert_uint_eq(fn(0x12345678, NULL, 0), 0x12345678);
}

START_TEST(test_vectors_dispatch)
{
	check_vectors(crc32c, "crc32c");
}
END_TEST

START_TEST(test_vectors_sw)
{
	check_vectors(crc32c_sw, "crc32c_sw");
}
END_TEST

START_TEST(test_vectors_hw)
{
	check_vectors(crc32c_hw, "crc32c_hw");
}
END_TEST

START_TEST(test_impl_name)
{
	const char *name = crc32c_impl_name();
	if (crc32c_hw_available())
		ck_assert_str_eq(name, "sse4.2");
	else
		ck_assert_str_eq(name, "table");
}
END_TEST

/* Deterministic pseudo-random bytes (xorshift), so a failure reproduces. */
static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 24);
	}
}

/* Splitting a buffer anywhere and chaining gives the one-shot CRC, with FN. */
static void check_chaining(crc_fn fn, const char *impl)
{
	enum { LEN = 3000 };
	uint8_t *buf = malloc(LEN);
	ck_assert_ptr_nonnull(buf);
	fill_random(buf, LEN, 42);
	uint32_t whole = fn(0, buf, LEN);
	for (size_t cut = 0; cut <= LEN; cut += 37) {
		uint32_t a = fn(0, buf, cut);
		ck_assert_msg(fn(a, buf + cut, LEN - cut) == whole, "%s cut at %zu", impl, cut);
	}
	/* Byte by byte. */
	uint32_t crc = 0;
	for (size_t i = 0; i < LEN; i++)
		crc = fn(crc, buf + i, 1);
	ck_assert_uint_eq(crc, whole);
	free(buf);
}

START_TEST(test_chaining_sw)
{
	check_chaining(crc32c_sw, "sw");
}
END_TEST

START_TEST(test_chaining_hw)
{
	check_chaining(crc32c_hw, "hw");
}
END_TEST

START_TEST(test_chaining_dispatch)
{
	check_chaining(crc32c, "dispatch");
	ck_assert_uint_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}
END_TEST

/* A bit-at-a-time reference, as plain as the definition, to judge the fast ones. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
	}
	return ~crc;
}

START_TEST(test_sw_matches_bitwise)
{
	enum { LEN = 1024 + 8 };
	uint8_t *buf = malloc(LEN);
	ck_assert_ptr_nonnull(buf);
	fill_random(buf, LEN, 7);
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len + align <= LEN && len <= 1024; len++)
			ck_assert_msg(crc32c_sw(0, buf + align, len) ==
					  crc32c_bitwise(0, buf + align, len),
				      "align %zu len %zu", align, len);
	free(buf);
}
END_TEST

START_TEST(test_hw_matches_sw_all_lengths)
{
	enum { LEN = 1024 + 8 };
	uint8_t *buf = malloc(LEN);
	ck_assert_ptr_nonnull(buf);
	fill_random(buf, LEN, 99);
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len <= 1024; len++) {
			uint32_t seed = (uint32_t)(len * 2654435761u);
			ck_assert_msg(crc32c_hw(seed, buf + align, len) ==
					  crc32c_sw(seed, buf + align, len),
				      "align %zu len %zu", align, len);
		}
	free(buf);
}
END_TEST

/* Lengths around the three-stream block sizes (3 x 256 and 3 x 8192 bytes) and a large
 * buffer, where the merged streams must equal the table result. */
START_TEST(test_hw_matches_sw_large)
{
	enum { LEN = 1 << 20 };
	uint8_t *buf = malloc(LEN + 8);
	ck_assert_ptr_nonnull(buf);
	fill_random(buf, LEN + 8, 1234);
	static const size_t lens[] = {767,   768,   769,	 1535,	       1536,   2311, 24575,
				      24576, 24577, 24576 + 768, 49152 + 1000, 100000, LEN};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t align = 0; align < 8; align += 3)
			ck_assert_msg(crc32c_hw(0xdeadbeef, buf + align, lens[i]) ==
					  crc32c_sw(0xdeadbeef, buf + align, lens[i]),
				      "align %zu len %zu", align, lens[i]);
	free(buf);
}
END_TEST

/*
 * A Kafka RecordBatch v2 holding one uncompressed record (key 01 02 03 04, value
 * 05 06 07, one header 08 09 0a = 0b 0c, timestampDelta 5 ms, firstTimestamp
 * 1479847795000), as Sarama encodes it in its record_test.go; Sarama's CRC field is
 * 0x547961FD. The CRC covers bytes 21 to the end (attributes onward).
 */
static const uint8_t kafka_batch[] = {
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

START_TEST(test_kafka_record_batch_crc)
{
	ck_assert_uint_eq(sizeof(kafka_batch), 70 + 12);
	uint32_t stored = (uint32_t)kafka_batch[17] << 24 | (uint32_t)kafka_batch[18] << 16 |
			  (uint32_t)kafka_batch[19] << 8 | kafka_batch[20];
	const uint8_t *from = kafka_batch + 21;
	size_t len = sizeof(kafka_batch) - 21;
	ck_assert_uint_eq(crc32c(0, from, len), stored);
	ck_assert_uint_eq(crc32c_sw(0, from, len), stored);
	if (crc32c_hw_available())
		ck_assert_uint_eq(crc32c_hw(0, from, len), stored);
}
END_TEST

/* crc32c_combine joins the CRCs of two pieces as if the whole was checksummed: every
 * split point of short buffers, lengths with many bits set, an empty second piece, and
 * the real batch (the shard log seals frames this way from the batch's own crc). */
START_TEST(test_combine)
{
	enum { LEN = 300000 };
	uint8_t *buf = malloc(LEN);
	ck_assert_ptr_nonnull(buf);
	fill_random(buf, LEN, 77);
	for (size_t total = 0; total <= 80; total++)
		for (size_t split = 0; split <= total; split++)
			ck_assert_msg(crc32c_combine(crc32c(0, buf, split),
						     crc32c(0, buf + split, total - split),
						     total - split) == crc32c(0, buf, total),
				      "total %zu split %zu", total, split);
	static const size_t splits[][2] = {{61, LEN - 61}, {0, LEN},	    {LEN, 0},
					   {12345, 65535}, {1, 262143 - 1}, {4096, 1 << 16}};
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		size_t a = splits[i][0], b = splits[i][1];
		ck_assert_msg(crc32c_combine(crc32c(0, buf, a), crc32c(0, buf + a, b), b) ==
				  crc32c(0, buf, a + b),
			      "a %zu b %zu", a, b);
	}
	/* A flipped byte in the second piece changes the combined CRC. */
	uint32_t good = crc32c_combine(crc32c(0, buf, 100), crc32c(0, buf + 100, 1000), 1000);
	buf[600] ^= 1;
	ck_assert_uint_ne(crc32c_combine(crc32c(0, buf, 100), crc32c(0, buf + 100, 1000), 1000),
			  good);
	/* The Sarama batch: header bytes [0, 21) combined with its stored crc. */
	uint32_t stored = (uint32_t)kafka_batch[17] << 24 | (uint32_t)kafka_batch[18] << 16 |
			  (uint32_t)kafka_batch[19] << 8 | kafka_batch[20];
	ck_assert_uint_eq(
	    crc32c_combine(crc32c(0, kafka_batch, 21), stored, sizeof(kafka_batch) - 21),
	    crc32c(0, kafka_batch, sizeof(kafka_batch)));
	free(buf);
}
END_TEST

START_TEST(test_skipped)
{
}
END_TEST

static void add_case(Suite *suite, const char *name, const TTest *test, const char *skip_reason)
{
	static char skip_labels[8][256];
	static unsigned skip_count;
	TCase *tc;
	if (skip_reason) {
		/* Check puts the case name into its TAP line, so the directive rides there. */
		if (skip_count == sizeof(skip_labels) / sizeof(skip_labels[0]))
			abort();
		char *label = skip_labels[skip_count++];
		snprintf(label, sizeof(skip_labels[0]), "%s # SKIP %s", name, skip_reason);
		tc = tcase_create(label);
		tcase_add_test(tc, test_skipped);
	} else {
		tc = tcase_create(name);
		tcase_add_test(tc, test);
	}
	tcase_set_timeout(tc, 120);
	suite_add_tcase(suite, tc);
}

int main(void)
{
	const char *no_hw =
	    crc32c_hw_available() ? NULL : "this CPU has no SSE4.2 crc32 instruction";
	Suite *s = suite_create("crc32c");
	add_case(s, "vectors_dispatch", test_vectors_dispatch, NULL);
	add_case(s, "vectors_sw", test_vectors_sw, NULL);
	add_case(s, "vectors_hw", test_vectors_hw, no_hw);
	add_case(s, "impl_name", test_impl_name, NULL);
	add_case(s, "chaining_sw", test_chaining_sw, NULL);
	add_case(s, "chaining_hw", test_chaining_hw, no_hw);
	add_case(s, "chaining_dispatch", test_chaining_dispatch, NULL);
	add_case(s, "sw_matches_bitwise", test_sw_matches_bitwise, NULL);
	add_case(s, "hw_matches_sw_all_lengths", test_hw_matches_sw_all_lengths, no_hw);
	add_case(s, "hw_matches_sw_large", test_hw_matches_sw_large, no_hw);
	add_case(s, "kafka_record_batch_crc", test_kafka_record_batch_crc, NULL);
	add_case(s, "combine", test_combine, NULL);
	return unit_run(s);
}
