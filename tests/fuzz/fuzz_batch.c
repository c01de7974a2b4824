/*
 * tests/fuzz/fuzz_batch.c: a libFuzzer target over the two validators that read bytes
 * sluice did not write itself: core/batch's batch_parse and batch_validate (a
 * RecordBatch v2 from a producer) and core/frame's frame_check (a shard-log frame read
 * back from disk at recovery). The first input byte picks how the rest is used, so the
 * fuzzer also gets past the CRCs it cannot compute:
 *
 *   byte 0 & 3   the rest is
 *  +------------+--------------------------------------------------------------------+
 *  | 0          | given as is to batch_parse, batch_validate and frame_check         |
 *  | 1          | a batch whose CRC field is set to the CRC of its bytes first      |
 *  | 2          | a frame sealed first (its CRC computed) when its frame_len fits    |
 *  | 3          | both: a batch with its CRC fixed, wrapped in a sealed frame        |
 *  +------------+--------------------------------------------------------------------+
 *
 * Each runs on a private heap copy of exactly the input's length (ASan reports a read
 * past it) and checks what callers rely on: a batch that validates parses, its length
 * is the input's, its count and last offset delta agree and its CRC matches; rewriting
 * its baseOffset and leader epoch (outside the CRC) keeps it valid; a frame that checks
 * OK fits in the bytes given and its CRC matches; every result has a name. A broken
 * rule aborts. It does not look inside records (sluice never does).
 *
 * Build and run: `make fuzz` (clang with libFuzzer; tests/fuzz/local.mk), then
 *   tests/fuzz/fuzz_batch -max_total_time=600 CORPUS_DIR $(srcdir)/tests/fuzz/corpus/batch
 * tests/fuzz/run-fuzz.sh runs it in `make check` for a bounded time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MODE_FIX_BATCH_CRC 1u
#define FUZZ_MODE_SEAL_FRAME	2u

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_batch: %s\n", what);
	abort();
}

static void fuzz_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void fuzz_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void fuzz_batch(uint8_t *buf, size_t len)
{
	struct batch_header parsed, validated;
	enum batch_error pe = batch_parse(buf, len, &parsed);
	enum batch_error ve = batch_validate(buf, len, &validated);
	if (!batch_error_name(pe) || !batch_error_name(ve))
		fuzz_fail("a batch result without a name");
	if (ve != BATCH_OK)
		return;
	if (pe != BATCH_OK)
		fuzz_fail("a batch validates but does not parse");
	if ((size_t)validated.batch_length + BATCH_LENGTH_OVERHEAD != len)
		fuzz_fail("a valid batch's length differs from the bytes given");
	if (validated.record_count < 1 || validated.last_offset_delta != validated.record_count - 1)
		fuzz_fail("a valid batch's count and last offset delta disagree");
	if (batch_crc(buf, len) != validated.crc)
		fuzz_fail("a valid batch's CRC does not match");
	(void)batch_last_offset(&validated);
	(void)batch_compression_known(&validated);
	batch_set_base_offset(buf, INT64_MAX - 7);
	batch_set_leader_epoch(buf, 12345);
	if (batch_validate(buf, len, &validated) != BATCH_OK ||
	    validated.base_offset != INT64_MAX - 7)
		fuzz_fail("rewriting baseOffset or the leader epoch broke a valid batch");
}

static void fuzz_frame(uint8_t *buf, size_t len)
{
	struct frame_header h;
	enum frame_check fc = frame_check(buf, len, &h);
	if (!frame_check_name(fc))
		fuzz_fail("a frame result without a name");
	if (fc != FRAME_OK)
		return;
	if (h.frame_len < FRAME_HEADER_BYTES || h.frame_len > len)
		fuzz_fail("a valid frame does not fit in the bytes given");
	if (frame_crc(buf, h.frame_len) != h.crc)
		fuzz_fail("a valid frame's CRC does not match");
	(void)frame_is_pad(&h);
	if (len >= FRAME_HEADER_BYTES + BATCH_HEADER_BYTES)
		fuzz_batch(buf + FRAME_HEADER_BYTES, h.frame_len - FRAME_HEADER_BYTES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0] & 3u;
	size_t len = size - 1;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);

	if (mode == 0) {
		fuzz_batch(buf, len);
		memcpy(buf, data + 1, len); /* fuzz_batch may have rewritten the offset */
		fuzz_frame(buf, len);
		free(buf);
		return 0;
	}
	/* The batch starts after the frame header when both are built. */
	size_t at = (mode & FUZZ_MODE_SEAL_FRAME) && (mode & FUZZ_MODE_FIX_BATCH_CRC)
			? FRAME_HEADER_BYTES
			: 0;
	if ((mode & FUZZ_MODE_FIX_BATCH_CRC) && len >= at + BATCH_HEADER_BYTES) {
		if (mode & FUZZ_MODE_SEAL_FRAME) /* the batch fills the frame */
			fuzz_put_be32(buf + at + 8, (uint32_t)(len - at - BATCH_LENGTH_OVERHEAD));
		fuzz_put_be32(buf + at + BATCH_OFFSET_CRC, batch_crc(buf + at, len - at));
	}
	if (mode & FUZZ_MODE_SEAL_FRAME) {
		if ((mode & FUZZ_MODE_FIX_BATCH_CRC) && len >= FRAME_HEADER_BYTES) {
			fuzz_put_le32(buf, FRAME_MAGIC);
			fuzz_put_le32(buf + 4, (uint32_t)len);
		}
		struct frame_header h;
		if (len >= FRAME_HEADER_BYTES) {
			frame_header_decode(buf, &h);
			if (h.frame_len >= FRAME_HEADER_BYTES && h.frame_len <= len &&
			    h.frame_len <= LIMITS_FRAME_BYTES_MAX)
				frame_seal(buf, h.frame_len);
		}
		fuzz_frame(buf, len);
	} else {
		fuzz_batch(buf, len);
	}
	free(buf);
	return 0;
}
