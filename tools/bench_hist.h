/*
 * tools/bench_hist.h: a log-linear latency histogram for sluice-bench (HDR-style). A
 * value v (nanoseconds, any uint64) is counted in a bucket whose width is at most
 * 1/BENCH_HIST_SUB_COUNT_HALF of its lower bound: values below BENCH_HIST_SUB_COUNT are
 * exact, and above that each power of two is split into BENCH_HIST_SUB_COUNT_HALF equal
 * buckets. A percentile is reported as the highest value of the bucket it falls in, so a
 * reported value r for a true value v satisfies v <= r < v * (1 + 1/128): under 0.8 %
 * relative error, never an under-estimate. max and min are kept exactly. Fixed size
 * (no allocation after init), one writer; two histograms of the same layout can be
 * merged. It does not keep the values themselves, a time series or a mean of squares.
 *
 * Bucket index of v (SUB_BITS = 8):
 *   v < 256                        -> v (exact)
 *   else shift = msb(v) - 7        -> 256 + (shift - 1) * 128 + ((v >> shift) - 128)
 */
#ifndef SLUICE_TOOLS_BENCH_HIST_H
#define SLUICE_TOOLS_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS	  8u
#define BENCH_HIST_SUB_COUNT	  (1u << BENCH_HIST_SUB_BITS)	  /* 256 exact values */
#define BENCH_HIST_SUB_COUNT_HALF (BENCH_HIST_SUB_COUNT / 2)	  /* buckets per octave */
#define BENCH_HIST_SHIFT_MAX	  (64u - BENCH_HIST_SUB_BITS + 1) /* for msb 63 */
#define BENCH_HIST_BUCKETS	  (BENCH_HIST_SUB_COUNT + BENCH_HIST_SHIFT_MAX * BENCH_HIST_SUB_COUNT_HALF)

struct bench_hist {
	uint64_t counts[BENCH_HIST_BUCKETS]; /* values per bucket */
	uint64_t total;			     /* values recorded */
	uint64_t min;			     /* smallest value, UINT64_MAX when empty */
	uint64_t max;			     /* largest value, 0 when empty */
	long double sum;		     /* of all values, for the mean */
};

/* Empties H. */
void bench_hist_init(struct bench_hist *h);

/* Counts V once. */
void bench_hist_record(struct bench_hist *h, uint64_t v);

/* Adds every count of SRC into DST. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* The value at percentile P (0 < P <= 100): the highest value of the bucket holding the
 * ceil(P/100 * total)-th smallest value, capped at max; P = 100 returns max exactly.
 * 0 when H is empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/* The bucket index of V, and the lowest and highest values of bucket I (for tests and
 * for walking the histogram). I < BENCH_HIST_BUCKETS is the caller's promise. */
uint32_t bench_hist_index(uint64_t v);
uint64_t bench_hist_bucket_low(uint32_t i);
uint64_t bench_hist_bucket_high(uint32_t i);

/* Mean of the recorded values, 0 when empty. */
double bench_hist_mean(const struct bench_hist *h);

#endif
