/*
 * core/crc32c.c: CRC-32C in software (slicing-by-8 tables) and on the SSE4.2 crc32
 * instruction, and the one-time choice between them. See core/crc32c.h for the
 * contract. The tables and the stream-combining operators are computed at first use
 * (a few KiB, no I/O); nothing here allocates.
 *
 * Notation: the CRC "register" is the running value inside the loops; the public value
 * is its bitwise complement (Kafka's CRC-32C is pre- and post-inverted), so each entry
 * point complements once on the way in and once on the way out.
 */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "core/assert.h"

#define CRC32C_POLY UINT32_C(0x82F63B78) /* reflected Castagnoli polynomial */

/* Slicing-by-8: table[k][b] is the register after feeding byte b followed by k zero
 * bytes into a zero register. */
static uint32_t sw_table[8][256];

/*
 * The hardware path runs three independent crc32 streams over three adjacent blocks
 * and merges them, because the instruction has a 3-cycle latency but a 1-cycle
 * throughput. Merging needs "what would the register be after N more zero bytes"
 * (shifting it through N bytes), which is a multiplication by x^(8N) modulo the
 * polynomial; for the two block sizes used it is precomputed as four byte tables.
 */
#define HW_LONG_BYTES  8192u /* per-stream block on large buffers */
#define HW_SHORT_BYTES 256u  /* per-stream block on medium buffers */
static uint32_t hw_long_shift[4][256];
static uint32_t hw_short_shift[4][256];

/* x2n_table[k] = x^(2^k) modulo the polynomial, reflected: the operator that shifts a
 * register through 2^k zero bits (crc32c_combine multiplies those of LEN_B's bits). */
static uint32_t x2n_table[64];

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Product of A and B modulo the polynomial, both in reflected bit order (x^0 is the
 * top bit), as in zlib's crc32_combine. */
static uint32_t gf2_multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = UINT32_C(1) << 31;
	uint32_t p = 0;
	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = b & 1 ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return p;
}

/* x^(8 * BYTES) modulo the polynomial, reflected: the operator that shifts a register
 * through BYTES zero bytes. */
static uint32_t gf2_x_pow_bytes(uint64_t bytes)
{
	uint32_t result = UINT32_C(1) << 31; /* x^0 */
	uint32_t square = UINT32_C(1) << 30; /* x^1, squared below into x^(2^k) */
	uint64_t bits = bytes * 8;
	while (bits) {
		if (bits & 1)
			result = gf2_multmodp(square, result);
		square = gf2_multmodp(square, square);
		bits >>= 1;
	}
	return result;
}

static void shift_table_init(uint32_t table[4][256], uint32_t bytes)
{
	uint32_t op = gf2_x_pow_bytes(bytes);
	for (unsigned k = 0; k < 4; k++)
		for (unsigned b = 0; b < 256; b++)
			table[k][b] = gf2_multmodp(op, (uint32_t)b << (8 * k));
}

static void tables_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint32_t crc = b;
		for (int i = 0; i < 8; i++)
			crc = crc & 1 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		sw_table[0][b] = crc;
	}
	for (unsigned b = 0; b < 256; b++)
		for (unsigned k = 1; k < 8; k++)
			sw_table[k][b] =
			    (sw_table[k - 1][b] >> 8) ^ sw_table[0][sw_table[k - 1][b] & 0xff];
	shift_table_init(hw_long_shift, HW_LONG_BYTES);
	shift_table_init(hw_short_shift, HW_SHORT_BYTES);
	x2n_table[0] = UINT32_C(1) << 30; /* x^1 */
	for (unsigned k = 1; k < 64; k++)
		x2n_table[k] = gf2_multmodp(x2n_table[k - 1], x2n_table[k - 1]);
}

static inline void tables_ready(void)
{
	/* pthread_once is one acquire load after the first call. */
	pthread_once(&tables_once, tables_init);
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v)); /* x86-64 and arm64 Linux are little-endian */
	return v;
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t r = ~crc;
	tables_ready();
	while (len && ((uintptr_t)p & 7)) {
		r = (r >> 8) ^ sw_table[0][(r ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t v = load_le64(p) ^ r;
		r = sw_table[7][v & 0xff] ^ sw_table[6][(v >> 8) & 0xff] ^
		    sw_table[5][(v >> 16) & 0xff] ^ sw_table[4][(v >> 24) & 0xff] ^
		    sw_table[3][(v >> 32) & 0xff] ^ sw_table[2][(v >> 40) & 0xff] ^
		    sw_table[1][(v >> 48) & 0xff] ^ sw_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		r = (r >> 8) ^ sw_table[0][(r ^ *p++) & 0xff];
	return ~r;
}

/* The register R shifted through the zero bytes TABLE was built for. */
static inline uint32_t shift_apply(const uint32_t table[4][256], uint32_t r)
{
	return table[0][r & 0xff] ^ table[1][(r >> 8) & 0xff] ^ table[2][(r >> 16) & 0xff] ^
	       table[3][r >> 24];
}

/*
 * The x86-64 instruction path. This is the one #if in a .c file: the intrinsics do not
 * exist for other targets, and a separate per-architecture file would need a build
 * change for a single function. Other targets get a stub that is never selected.
 */
#if CRC32C_HW_X86
#include <nmmintrin.h>

static bool cpu_has_sse42(void)
{
	__builtin_cpu_init(); /* needed when called before the libgcc constructors run */
	return __builtin_cpu_supports("sse4.2");
}

/* Runs the register R over *LENP bytes at *PP (8-byte aligned) in rounds of three
 * adjacent BLOCK-byte blocks, one stream each, merged with TABLE (built for BLOCK);
 * advances *PP and *LENP past the rounds done, leaving fewer than 3 * BLOCK bytes. */
__attribute__((target("sse4.2"))) static uint32_t hw_three_way(uint32_t r, const uint8_t **pp,
							       size_t *lenp, size_t block,
							       const uint32_t table[4][256])
{
	const uint8_t *p = *pp;
	size_t len = *lenp;
	while (len >= 3 * block) {
		uint64_t r0 = r, r1 = 0, r2 = 0;
		const uint8_t *end = p + block;
		do {
			r0 = _mm_crc32_u64(r0, load_le64(p));
			r1 = _mm_crc32_u64(r1, load_le64(p + block));
			r2 = _mm_crc32_u64(r2, load_le64(p + 2 * block));
			p += 8;
		} while (p < end);
		/* Register linearity: running A||B from r equals running A from r, shifted
		 * through |B| zero bytes, xor running B from zero. */
		r = shift_apply(table, (uint32_t)r0) ^ (uint32_t)r1;
		r = shift_apply(table, r) ^ (uint32_t)r2;
		p += 2 * block;
		len -= 3 * block;
	}
	*pp = p;
	*lenp = len;
	return r;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	ASSERT(crc32c_hw_available());
	const uint8_t *p = buf;
	uint32_t r = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		r = _mm_crc32_u8(r, *p++);
		len--;
	}
	if (len >= 3 * HW_SHORT_BYTES) {
		tables_ready();
		r = hw_three_way(r, &p, &len, HW_LONG_BYTES, hw_long_shift);
		r = hw_three_way(r, &p, &len, HW_SHORT_BYTES, hw_short_shift);
	}
	uint64_t r64 = r;
	while (len >= 8) {
		r64 = _mm_crc32_u64(r64, load_le64(p));
		p += 8;
		len -= 8;
	}
	r = (uint32_t)r64;
	while (len--)
		r = _mm_crc32_u8(r, *p++);
	return ~r;
}
#else
static bool cpu_has_sse42(void)
{
	return false;
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	ASSERT(crc32c_hw_available());
	return crc32c_sw(crc, buf, len);
}
#endif

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	tables_ready();
	/* Finished values: crc(A || B) = crc_a shifted through |B| zero bytes, xor crc_b
	 * (the pre- and post-inversions cancel, as in zlib's crc32_combine). */
	uint32_t op = UINT32_C(1) << 31; /* x^0 */
	uint64_t bits = len_b;
	for (unsigned k = 3; bits; k++, bits >>= 1) /* a byte is 2^3 bits */
		if (bits & 1)
			op = gf2_multmodp(x2n_table[k & 63], op);
	return gf2_multmodp(op, crc_a) ^ crc_b;
}

typedef uint32_t (*crc32c_fn)(uint32_t crc, const void *buf, size_t len);

/* Resolved once; relaxed atomics suffice because every thread that races to resolve it
 * computes the same value, and the tables behind it are published by pthread_once. */
static crc32c_fn crc32c_impl;
static int hw_available = -1; /* -1 unknown, else 0 or 1 */

bool crc32c_hw_available(void)
{
	int v = __atomic_load_n(&hw_available, __ATOMIC_RELAXED);
	if (v < 0) {
		v = cpu_has_sse42() ? 1 : 0;
		__atomic_store_n(&hw_available, v, __ATOMIC_RELAXED);
	}
	return v == 1;
}

static crc32c_fn crc32c_resolve(void)
{
	crc32c_fn fn = __atomic_load_n(&crc32c_impl, __ATOMIC_RELAXED);
	if (!fn) {
		fn = crc32c_hw_available() ? crc32c_hw : crc32c_sw;
		__atomic_store_n(&crc32c_impl, fn, __ATOMIC_RELAXED);
	}
	return fn;
}

/* Resolve before main() so the hot path never takes the slow branch. */
__attribute__((constructor)) static void crc32c_init(void)
{
	crc32c_resolve();
	tables_ready();
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_resolve()(crc, buf, len);
}

const char *crc32c_impl_name(void)
{
	return crc32c_resolve() == crc32c_hw ? "sse4.2" : "table";
}
