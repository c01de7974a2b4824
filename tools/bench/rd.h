/*
 * tools/bench/rd.h: a small stand-in, written for sluice (our own work, not a copy of
 * librdkafka's src/rd.h), for the internal header that librdkafka's example
 * rdkafka_performance.c includes as "../src/rd.h" and "rd.h" (its "rdtime.h" is an empty
 * file that run-bench writes beside this one). It gives that example only what it uses:
 * the C library headers it expects to come in through rd.h, the microsecond timestamp
 * type rd_ts_t, a monotonic clock rd_clock() in microseconds, rd_snprintf and
 * RD_MIN/RD_MAX. tools/bench/run-bench copies it into its build directory and compiles
 * the Debian librdkafka-dev example with it (-lrdkafka), so that make bench can run
 * rdkafka_performance against sluiced.
 */
#ifndef SLUICE_BENCH_RD_H
#define SLUICE_BENCH_RD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, and the example defines it too after this header */
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* A point in time or a duration, in microseconds. */
typedef int64_t rd_ts_t;

/* rd_clock: microseconds on the monotonic clock (for rates and intervals only). */
static inline rd_ts_t rd_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (rd_ts_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#define rd_snprintf snprintf

#define RD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RD_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* SLUICE_BENCH_RD_H */
