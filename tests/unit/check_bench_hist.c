/*
 * tests/unit/check_bench_hist.c: sluice-bench's log-linear histogram (tools/bench_hist.h):
 * every value lands in a bucket that contains it and is at most 1/128 of its lower
 * bound wide; known inputs give known percentiles within that error and never below
 * the true value; max, min and p100 are exact; merging equals recording into one.
 */
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>

#include "tools/bench_hist.h"

/* The documented bound: reported r for true v has v <= r <= v * (1 + 1/128). */
static void assert_close(uint64_t reported, uint64_t truth)
{
	ck_assert_uint_ge(reported, truth);
	ck_assert_uint_le(reported, truth + truth / 128);
}

static struct bench_hist *new_hist(void)
{
	struct bench_hist *h = malloc(sizeof(*h));
	ck_assert_ptr_nonnull(h);
	bench_hist_init(h);
	return h;
}

START_TEST(test_empty)
{
	struct bench_hist *h = new_hist();
	ck_assert_uint_eq(bench_hist_percentile(h, 50), 0);
	ck_assert_uint_eq(bench_hist_percentile(h, 100), 0);
	ck_assert_uint_eq(h->total, 0);
	free(h);
}
END_TEST

START_TEST(test_buckets_bound_values)
{
	/* Every bucket boundary region and a pseudo-random spread up to 2^63. */
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = i < 70000 ? (uint64_t)i : x >> (i % 64);
		uint32_t idx = bench_hist_index(v);
		ck_assert_uint_lt(idx, BENCH_HIST_BUCKETS);
		uint64_t lo = bench_hist_bucket_low(idx), hi = bench_hist_bucket_high(idx);
		ck_assert_uint_le(lo, v);
		ck_assert_uint_ge(hi, v);
		if (v < BENCH_HIST_SUB_COUNT)
			ck_assert_uint_eq(lo, hi);
		else
			ck_assert_uint_le(hi - lo + 1, lo / 128);
	}
	ck_assert_uint_lt(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS);
	/* Adjacent buckets tile the line without gaps. */
	for (uint32_t i = 0; i + 1 < bench_hist_index(UINT64_MAX); i++)
		ck_assert_uint_eq(bench_hist_bucket_high(i) + 1, bench_hist_bucket_low(i + 1));
}
END_TEST

START_TEST(test_uniform_percentiles)
{
	struct bench_hist *h = new_hist();
	for (uint64_t v = 1; v <= 1000000; v++)
		bench_hist_record(h, v);
	ck_assert_uint_eq(h->total, 1000000);
	assert_close(bench_hist_percentile(h, 50), 500000);
	assert_close(bench_hist_percentile(h, 90), 900000);
	assert_close(bench_hist_percentile(h, 99), 990000);
	assert_close(bench_hist_percentile(h, 99.9), 999000);
	ck_assert_uint_eq(bench_hist_percentile(h, 100), 1000000);
	ck_assert_uint_eq(h->max, 1000000);
	ck_assert_uint_eq(h->min, 1);
	ck_assert(bench_hist_mean(h) > 500000.4 && bench_hist_mean(h) < 500000.6);
	free(h);
}
END_TEST

START_TEST(test_small_values_exact)
{
	struct bench_hist *h = new_hist();
	for (uint64_t v = 0; v < 200; v++)
		bench_hist_record(h, v);
	ck_assert_uint_eq(bench_hist_percentile(h, 50), 99);
	ck_assert_uint_eq(bench_hist_percentile(h, 99), 197);
	ck_assert_uint_eq(bench_hist_percentile(h, 0.1), 0);
	free(h);
}
END_TEST

START_TEST(test_tail_outliers)
{
	/* 990 fast requests of 100 us and 10 slow ones of 50 ms, in ns: the p99 is the
	 * fast value, p99.9 and max the slow one. */
	struct bench_hist *h = new_hist();
	for (int i = 0; i < 990; i++)
		bench_hist_record(h, 100000);
	for (int i = 0; i < 10; i++)
		bench_hist_record(h, 50000000);
	assert_close(bench_hist_percentile(h, 50), 100000);
	assert_close(bench_hist_percentile(h, 99), 100000);
	assert_close(bench_hist_percentile(h, 99.9), 50000000);
	ck_assert_uint_eq(bench_hist_percentile(h, 100), 50000000);
	/* A percentile never reports more than the maximum. */
	ck_assert_uint_le(bench_hist_percentile(h, 99.9), h->max);
	free(h);
}
END_TEST

START_TEST(test_merge)
{
	struct bench_hist *a = new_hist(), *b = new_hist(), *all = new_hist();
	for (uint64_t v = 1; v <= 5000; v++) {
		bench_hist_record(v % 2 ? a : b, v * 977);
		bench_hist_record(all, v * 977);
	}
	bench_hist_merge(a, b);
	ck_assert_uint_eq(a->total, all->total);
	ck_assert_uint_eq(a->max, all->max);
	ck_assert_uint_eq(a->min, all->min);
	for (double p = 1; p <= 100; p += 7.5)
		ck_assert_uint_eq(bench_hist_percentile(a, p), bench_hist_percentile(all, p));
	free(a);
	free(b);
	free(all);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench_hist");
	unit_add_case(s, "empty", test_empty, 0, NULL);
	unit_add_case(s, "buckets_bound_values", test_buckets_bound_values, 0, NULL);
	unit_add_case(s, "uniform_percentiles", test_uniform_percentiles, 0, NULL);
	unit_add_case(s, "small_values_exact", test_small_values_exact, 0, NULL);
	unit_add_case(s, "tail_outliers", test_tail_outliers, 0, NULL);
	unit_add_case(s, "merge", test_merge, 0, NULL);
	return unit_run(s);
}
