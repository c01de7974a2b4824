/*
 * tools/bench_hist.c: the log-linear histogram of tools/bench_hist.h: index arithmetic
 * on the position of the highest set bit, a cumulative walk for percentiles. No
 * allocation, no locking (one writer per histogram; merge them after the run).
 */
#include "tools/bench_hist.h"

#include <string.h>

#include "core/assert.h"

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint32_t bench_hist_index(uint64_t v)
{
	if (v < BENCH_HIST_SUB_COUNT)
		return (uint32_t)v;
	uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
	uint32_t shift = msb - (BENCH_HIST_SUB_BITS - 1);
	return BENCH_HIST_SUB_COUNT + (shift - 1) * BENCH_HIST_SUB_COUNT_HALF +
	       (uint32_t)((v >> shift) - BENCH_HIST_SUB_COUNT_HALF);
}

uint64_t bench_hist_bucket_low(uint32_t i)
{
	ASSERT(i < BENCH_HIST_BUCKETS);
	if (i < BENCH_HIST_SUB_COUNT)
		return i;
	uint32_t shift = (i - BENCH_HIST_SUB_COUNT) / BENCH_HIST_SUB_COUNT_HALF + 1;
	uint64_t sub = (i - BENCH_HIST_SUB_COUNT) % BENCH_HIST_SUB_COUNT_HALF;
	return (sub + BENCH_HIST_SUB_COUNT_HALF) << shift;
}

uint64_t bench_hist_bucket_high(uint32_t i)
{
	ASSERT(i < BENCH_HIST_BUCKETS);
	if (i < BENCH_HIST_SUB_COUNT)
		return i;
	uint32_t shift = (i - BENCH_HIST_SUB_COUNT) / BENCH_HIST_SUB_COUNT_HALF + 1;
	return bench_hist_bucket_low(i) + ((UINT64_C(1) << shift) - 1);
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	h->counts[bench_hist_index(v)]++;
	h->total++;
	h->sum += (long double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
	if (h->total == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	/* ceil without libm: the tools link only SLUICE_LIBS. */
	double want = p / 100.0 * (double)h->total;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t high = bench_hist_bucket_high(i);
			return high < h->max ? high : h->max;
		}
	}
	return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
	return h->total ? (double)(h->sum / (long double)h->total) : 0.0;
}
