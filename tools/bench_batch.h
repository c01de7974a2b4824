/*
 * tools/bench_batch.h: the RecordBatch v2 builder and reader of sluice-bench. It builds
 * uncompressed batches as a plain (non-idempotent) Kafka producer does: baseOffset 0,
 * producerId/epoch/sequence -1, CRC-32C over [attributes, end), records without key or
 * headers, each value of a fixed size whose first BENCH_BATCH_STAMP_BYTES hold a
 * stamp (a run id and a CLOCK_MONOTONIC time in ns, big-endian) so that a consumer in
 * the same run can measure end-to-end latency; the rest of the value is filler. It
 * also walks the records of an uncompressed batch a broker returns, to read those
 * stamps back. It does no compression, transactions or idempotence.
 *
 * Record layout (Kafka's DefaultRecord; varints zigzag as in net/wire.h):
 *   length varint | attributes i8 = 0 | timestampDelta varlong = 0 |
 *   offsetDelta varint | keyLength varint = -1 | valueLength varint | value |
 *   headerCount varint = 0
 */
#ifndef SLUICE_TOOLS_BENCH_BATCH_H
#define SLUICE_TOOLS_BENCH_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_BATCH_STAMP_BYTES 16u /* run id u64 + monotonic ns u64, when the value fits */

/* Encoded size of one record with OFFSET_DELTA and a value of VALUE_BYTES. */
size_t bench_batch_record_bytes(uint32_t offset_delta, uint32_t value_bytes);

/* Bytes of a batch of COUNT records of VALUE_BYTES each. */
size_t bench_batch_bytes(uint32_t count, uint32_t value_bytes);

/* Most records of VALUE_BYTES that fit a batch of at most BATCH_BYTES; at least 1 (a
 * record bigger than BATCH_BYTES goes alone, as Kafka's producer sends it). */
uint32_t bench_batch_records_for(size_t batch_bytes, uint32_t value_bytes);

/* Builds a batch of COUNT (>= 1) records of VALUE_BYTES into the CAP bytes at BUF, with
 * TIMESTAMP_MS as base and max timestamp, and, in each value of at least
 * BENCH_BATCH_STAMP_BYTES, the stamp (RUN_ID, STAMP_NS). Returns the batch length, or
 * -ENOBUFS when it does not fit CAP (nothing usable written), -EINVAL for COUNT 0. */
long bench_batch_build(void *buf, size_t cap, uint32_t count, uint32_t value_bytes,
		       int64_t timestamp_ms, uint64_t run_id, uint64_t stamp_ns);

/* Called by bench_batch_walk for each record's value (VALUE NULL for a null value). */
typedef void (*bench_batch_value_fn)(void *ctx, const uint8_t *value, int32_t value_len);

/* Walks the records of the one uncompressed batch of LEN bytes at BUF (as a broker
 * returns it: LEN may exceed the batch; only batchLength + 12 bytes are read), calling
 * FN(CTX, ...) per record when FN is not NULL. Returns the number of records, or
 * -EBADMSG when the header or a record does not parse within the batch, -ENOTSUP for a
 * compressed batch (its records are not walked). */
long bench_batch_walk(const void *buf, size_t len, bench_batch_value_fn fn, void *ctx);

/* Reads a value's stamp: 0 with *RUN_ID and *STAMP_NS set, or -ENODATA when the value
 * is shorter than BENCH_BATCH_STAMP_BYTES. */
int bench_batch_read_stamp(const uint8_t *value, int32_t value_len, uint64_t *run_id,
			   uint64_t *stamp_ns);

#endif
