/*
 * core/crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * Kafka's RecordBatch v2 (over its bytes from the attributes field to the end) and of
 * sluice's shard-log frames. Two implementations give the same results: a table-driven
 * one (slicing-by-8) that runs anywhere, and one on the SSE4.2 crc32 instruction,
 * interleaving three streams on large buffers. crc32c() picks the instruction once,
 * when the CPU has it, and the tables otherwise; which one is in use is reported by
 * crc32c_impl_name() for the start-up log. This module checksums bytes; it knows
 * nothing about where they come from. crc32c_combine() joins the CRCs of two adjacent
 * pieces without reading them (the shard log seals a frame from the CRC the batch
 * inside already carries).
 *
 * All functions take and return the finished CRC value (pre- and post-inverted, as
 * Kafka stores it), so calls chain:
 *
 *   crc32c(crc32c(0, a, n), b, m) == crc32c(0, a || b, n + m)
 */
#ifndef SLUICE_CORE_CRC32C_H
#define SLUICE_CORE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The hardware path exists only on x86-64; elsewhere crc32c_hw_available() is false and
 * crc32c_hw() is never selected. */
#if defined(__x86_64__)
#define CRC32C_HW_X86 1
#else
#define CRC32C_HW_X86 0
#endif

/* CRC-32C of the LEN bytes at BUF, continuing from CRC (0 to start). BUF may be NULL
 * when LEN is 0. Any alignment. Dispatches to crc32c_hw or crc32c_sw, chosen once per
 * process (thread-safe). The known answer: crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The same, with tables (slicing-by-8); works on every CPU. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* The same, with the SSE4.2 crc32 instruction, three independent streams at a time on
 * buffers of a few KiB and more. ASSERTs crc32c_hw_available(): calling it on a CPU
 * without SSE4.2 is a bug in the caller. */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

/* The CRC of A || B from CRC_A = crc32c(0, A), CRC_B = crc32c(0, B) and LEN_B = |B|,
 * without the bytes: crc32c_combine(crc32c(0, a, n), crc32c(0, b, m), m) ==
 * crc32c(0, a || b, n + m). O(log LEN_B) (one carry-less multiplication modulo the
 * polynomial per set bit of LEN_B, about 20-40 ns each), table-driven, any CPU. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* True when this CPU has the crc32 instruction (x86-64 with SSE4.2). */
bool crc32c_hw_available(void);

/* "sse4.2" or "table" (slicing-by-8): the implementation crc32c() uses. */
const char *crc32c_impl_name(void);

#endif
