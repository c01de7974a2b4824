/*
 * tools/bench_batch.c: RecordBatch v2 building and walking for sluice-bench, with
 * net/wire.h's writers and readers and core/batch.h's CRC. Allocation-free.
 */
#include "tools/bench_batch.h"

#include <errno.h>
#include <string.h>

#include "core/batch.h"
#include "net/wire.h"

static size_t varint_bytes(int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 1;
	while (z >= 0x80) {
		z >>= 7;
		n++;
	}
	return n;
}

static size_t record_body_bytes(uint32_t offset_delta, uint32_t value_bytes)
{
	/* attributes, timestampDelta 0, offsetDelta, keyLength -1, valueLength, value,
	 * headerCount 0 */
	return 1 + 1 + varint_bytes(offset_delta) + 1 + varint_bytes(value_bytes) + value_bytes + 1;
}

size_t bench_batch_record_bytes(uint32_t offset_delta, uint32_t value_bytes)
{
	size_t body = record_body_bytes(offset_delta, value_bytes);
	return varint_bytes((int64_t)body) + body;
}

size_t bench_batch_bytes(uint32_t count, uint32_t value_bytes)
{
	size_t n = BATCH_HEADER_BYTES;
	for (uint32_t i = 0; i < count; i++)
		n += bench_batch_record_bytes(i, value_bytes);
	return n;
}

uint32_t bench_batch_records_for(size_t batch_bytes, uint32_t value_bytes)
{
	size_t n = BATCH_HEADER_BYTES;
	uint32_t count = 0;
	for (;;) {
		size_t r = bench_batch_record_bytes(count, value_bytes);
		if (n + r > batch_bytes || count == INT32_MAX)
			break;
		n += r;
		count++;
	}
	return count ? count : 1;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

long bench_batch_build(void *buf, size_t cap, uint32_t count, uint32_t value_bytes,
		       int64_t timestamp_ms, uint64_t run_id, uint64_t stamp_ns)
{
	if (count == 0)
		return -EINVAL;
	size_t total = bench_batch_bytes(count, value_bytes);
	if (total > cap || total > INT32_MAX)
		return -ENOBUFS;
	struct wire_writer w;
	wire_writer_init(&w, buf, cap);
	wire_write_i64(&w, 0);					      /* baseOffset */
	wire_write_i32(&w, (int32_t)(total - BATCH_LENGTH_OVERHEAD)); /* batchLength */
	wire_write_i32(&w, -1);					      /* partitionLeaderEpoch */
	wire_write_i8(&w, BATCH_MAGIC_V2);
	wire_write_u32(&w, 0); /* crc, patched below */
	wire_write_i16(&w, 0); /* attributes: no codec, CreateTime */
	wire_write_i32(&w, (int32_t)(count - 1));
	wire_write_i64(&w, timestamp_ms);
	wire_write_i64(&w, timestamp_ms);
	wire_write_i64(&w, -1); /* producerId */
	wire_write_i16(&w, -1); /* producerEpoch */
	wire_write_i32(&w, -1); /* baseSequence */
	wire_write_i32(&w, (int32_t)count);
	for (uint32_t i = 0; i < count; i++) {
		wire_write_varint(&w, (int32_t)record_body_bytes(i, value_bytes));
		wire_write_i8(&w, 0);
		wire_write_varlong(&w, 0);
		wire_write_varint(&w, (int32_t)i);
		wire_write_varint(&w, -1);
		wire_write_varint(&w, (int32_t)value_bytes);
		if (!wire_writer_ok(&w) || w.cap - w.len < value_bytes)
			return -ENOBUFS;
		uint8_t *value = (uint8_t *)buf + w.len;
		memset(value, 'x', value_bytes);
		if (value_bytes >= BENCH_BATCH_STAMP_BYTES) {
			put_be64(value, run_id);
			put_be64(value + 8, stamp_ns);
		}
		w.len += value_bytes;
		wire_write_varint(&w, 0);
	}
	if (!wire_writer_ok(&w) || w.len != total)
		return -ENOBUFS;
	uint32_t crc = batch_crc(buf, total);
	uint8_t *p = (uint8_t *)buf + BATCH_OFFSET_CRC;
	p[0] = (uint8_t)(crc >> 24);
	p[1] = (uint8_t)(crc >> 16);
	p[2] = (uint8_t)(crc >> 8);
	p[3] = (uint8_t)crc;
	return (long)total;
}

long bench_batch_walk(const void *buf, size_t len, bench_batch_value_fn fn, void *ctx)
{
	struct batch_header h;
	if (batch_parse(buf, len, &h) != BATCH_OK)
		return -EBADMSG;
	size_t total = (size_t)h.batch_length + BATCH_LENGTH_OVERHEAD;
	if (total > len)
		return -EBADMSG;
	if (batch_compression(&h) != BATCH_CODEC_NONE)
		return -ENOTSUP;
	if (h.record_count < 0)
		return -EBADMSG;
	struct wire_reader r;
	wire_reader_init(&r, (const uint8_t *)buf + BATCH_HEADER_BYTES, total - BATCH_HEADER_BYTES);
	for (int32_t i = 0; i < h.record_count; i++) {
		int32_t rec_len = wire_read_varint(&r);
		if (!wire_reader_ok(&r) || rec_len < 0 || (size_t)rec_len > wire_remaining(&r))
			return -EBADMSG;
		struct wire_reader rec;
		wire_reader_init(&rec, r.pos, (size_t)rec_len);
		wire_skip(&r, (size_t)rec_len);
		(void)wire_read_i8(&rec);      /* attributes */
		(void)wire_read_varlong(&rec); /* timestampDelta */
		(void)wire_read_varint(&rec);  /* offsetDelta */
		int32_t key_len = wire_read_varint(&rec);
		if (key_len > 0)
			wire_skip(&rec, (size_t)key_len);
		int32_t value_len = wire_read_varint(&rec);
		const uint8_t *value = NULL;
		if (value_len >= 0) {
			value = rec.pos;
			wire_skip(&rec, (size_t)value_len);
		}
		if (!wire_reader_ok(&rec))
			return -EBADMSG;
		if (fn)
			fn(ctx, value, value_len);
	}
	return h.record_count;
}

int bench_batch_read_stamp(const uint8_t *value, int32_t value_len, uint64_t *run_id,
			   uint64_t *stamp_ns)
{
	if (!value || value_len < (int32_t)BENCH_BATCH_STAMP_BYTES)
		return -ENODATA;
	*run_id = get_be64(value);
	*stamp_ns = get_be64(value + 8);
	return 0;
}
