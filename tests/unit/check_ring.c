/*
 * tests/unit/check_ring.c: Check tests of the SPSC ring (core/ring.h), one test case
 * per behaviour: sizing, popping an empty ring, filling to capacity, wrap-around of the
 * free-running indexes past UINT32_MAX, partial batches, and a two-thread stress run
 * that checks strict order with nothing lost or duplicated. It does not test the mesh
 * or any wake-up (check_mesh.c does) and it asserts no timing.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/ring.h"
#include "tests/unit/unit.h"

/* Messages of the two-thread stress run: the brief asks for at least 10 million. */
#define STRESS_MESSAGES (10u * 1000 * 1000)
/* Small on purpose, so the stress run hits both the full and the empty ring often. */
#define STRESS_CAPACITY 1024u
/* Largest batch either side uses in the stress run. */
#define STRESS_BATCH_MAX 64u
/* Failed attempts a side spins before yielding the CPU (this machine has 2 cores and
 * other builds may be running). */
#define STRESS_SPINS_BEFORE_YIELD 64

static struct ring *ring_new(uint32_t capacity, uint32_t start_index)
{
	struct ring *r = aligned_alloc(LIMITS_CACHE_LINE_BYTES, ring_bytes(capacity));
	ck_assert_ptr_nonnull(r);
	ring_init_at(r, capacity, start_index);
	return r;
}

static struct ring_msg msg_for(uint64_t seq)
{
	struct ring_msg m = {
	    .op = (uint32_t)(seq * 7),
	    .status = (int32_t)(seq % 13) - 6,
	    .cookie = seq,
	    .payload = (void *)(uintptr_t)(seq * 0x9e3779b97f4a7c15ull),
	    .arg = ~seq,
	};
	return m;
}

static void assert_msg_is(const struct ring_msg *m, uint64_t seq)
{
	struct ring_msg want = msg_for(seq);
	ck_assert_uint_eq(m->cookie, want.cookie);
	ck_assert_uint_eq(m->op, want.op);
	ck_assert_int_eq(m->status, want.status);
	ck_assert_ptr_eq(m->payload, want.payload);
	ck_assert_uint_eq(m->arg, want.arg);
}

START_TEST(test_bytes)
{
	ck_assert_uint_eq(sizeof(struct ring_msg), 32);
	for (uint32_t cap = 1; cap <= 65536; cap <<= 1) {
		size_t bytes = ring_bytes(cap);
		ck_assert_uint_eq(bytes % LIMITS_CACHE_LINE_BYTES, 0);
		ck_assert_uint_ge(bytes, (size_t)cap * sizeof(struct ring_msg));
		/* The header is a few cache lines, not a second ring. */
		ck_assert_uint_le(bytes, (size_t)cap * sizeof(struct ring_msg) +
					     4 * LIMITS_CACHE_LINE_BYTES);
	}
	struct ring *r = ring_new(LIMITS_RING_SLOTS, 0);
	ck_assert_uint_eq(ring_capacity(r), LIMITS_RING_SLOTS);
	ck_assert(ring_sanity(r));
	free(r);
}
END_TEST

START_TEST(test_empty_pop_fails)
{
	struct ring *r = ring_new(8, 0);
	struct ring_msg out = msg_for(42);
	struct ring_msg batch[4];

	ck_assert(ring_empty(r));
	ck_assert_uint_eq(ring_count(r), 0);
	ck_assert(!ring_pop(r, &out));
	assert_msg_is(&out, 42); /* untouched */
	ck_assert_uint_eq(ring_pop_batch(r, batch, 4), 0);

	/* Emptied again after one message: same answer. */
	struct ring_msg m = msg_for(1);
	ck_assert(ring_push(r, &m));
	ck_assert(!ring_empty(r));
	ck_assert(ring_pop(r, &out));
	assert_msg_is(&out, 1);
	ck_assert(ring_empty(r));
	ck_assert(!ring_pop(r, &out));
	ck_assert(ring_sanity(r));
	free(r);
}
END_TEST

START_TEST(test_full_push_fails)
{
	const uint32_t cap = 16;
	struct ring *r = ring_new(cap, 0);
	struct ring_msg m, out;

	for (uint32_t i = 0; i < cap; i++) {
		m = msg_for(i);
		ck_assert(ring_push(r, &m));
		ck_assert_uint_eq(ring_count(r), i + 1);
	}
	m = msg_for(cap);
	ck_assert(!ring_push(r, &m));
	ck_assert_uint_eq(ring_push_batch(r, &m, 1), 0);
	ck_assert_uint_eq(ring_count(r), cap);
	ck_assert(ring_sanity(r));

	/* One slot freed: exactly one more push fits, and order is kept. */
	ck_assert(ring_pop(r, &out));
	assert_msg_is(&out, 0);
	ck_assert(ring_push(r, &m));
	struct ring_msg extra = msg_for(cap + 1);
	ck_assert(!ring_push(r, &extra));
	for (uint32_t i = 1; i <= cap; i++) {
		ck_assert(ring_pop(r, &out));
		assert_msg_is(&out, i);
	}
	ck_assert(ring_empty(r));
	free(r);
}
END_TEST

START_TEST(test_wrap_around)
{
	/* Indexes start 37 short of UINT32_MAX, so they wrap within the first round, and
	 * the ring's own slot position wraps thousands of times. */
	const uint32_t cap = 8;
	struct ring *r = ring_new(cap, UINT32_MAX - 37);
	struct ring_msg batch[cap];
	uint64_t next_push = 0, next_pop = 0;

	for (uint32_t round = 0; round < 20000; round++) {
		uint32_t want = 1 + round % cap; /* 1..cap, so batches straddle the wrap */
		if (round % 3 == 0) {
			for (uint32_t i = 0; i < want; i++) {
				struct ring_msg m = msg_for(next_push);
				if (!ring_push(r, &m))
					break;
				next_push++;
			}
		} else {
			for (uint32_t i = 0; i < want; i++)
				batch[i] = msg_for(next_push + i);
			next_push += ring_push_batch(r, batch, want);
		}
		ck_assert_uint_eq(ring_count(r), next_push - next_pop);
		ck_assert(ring_sanity(r));

		uint32_t take = 1 + (round * 5) % cap;
		if (round % 2 == 0) {
			uint32_t got = ring_pop_batch(r, batch, take);
			for (uint32_t i = 0; i < got; i++)
				assert_msg_is(&batch[i], next_pop + i);
			next_pop += got;
		} else {
			struct ring_msg out;
			for (uint32_t i = 0; i < take && ring_pop(r, &out); i++)
				assert_msg_is(&out, next_pop++);
		}
		ck_assert_uint_eq(ring_count(r), next_push - next_pop);
	}
	/* The indexes really went past UINT32_MAX many times over. */
	ck_assert_uint_gt(next_pop, (uint64_t)cap * 1000);

	/* Fill exactly across the wrap point, then drain: capacity still holds. */
	struct ring *w = ring_new(cap, UINT32_MAX - 2);
	for (uint32_t i = 0; i < cap; i++)
		batch[i] = msg_for(i);
	ck_assert_uint_eq(ring_push_batch(w, batch, cap), cap);
	struct ring_msg m = msg_for(99);
	ck_assert(!ring_push(w, &m));
	ck_assert_uint_eq(ring_count(w), cap);
	memset(batch, 0, sizeof(batch));
	ck_assert_uint_eq(ring_pop_batch(w, batch, cap + 5), cap);
	for (uint32_t i = 0; i < cap; i++)
		assert_msg_is(&batch[i], i);
	ck_assert(ring_empty(w));
	free(w);
	free(r);
}
END_TEST

START_TEST(test_partial_batches)
{
	const uint32_t cap = 16;
	struct ring *r = ring_new(cap, 0);
	struct ring_msg in[32], out[32];

	for (uint32_t i = 0; i < 32; i++)
		in[i] = msg_for(i);
	ck_assert_uint_eq(ring_push_batch(r, in, 10), 10);
	ck_assert_uint_eq(ring_push_batch(r, in + 10, 10), 6); /* only 6 fit */
	ck_assert_uint_eq(ring_push_batch(r, in + 16, 10), 0); /* full */
	ck_assert_uint_eq(ring_push_batch(r, in, 0), 0);       /* empty batch is a no-op */
	ck_assert_uint_eq(ring_count(r), cap);

	ck_assert_uint_eq(ring_pop_batch(r, out, 4), 4);
	ck_assert_uint_eq(ring_pop_batch(r, out + 4, 0), 0);
	ck_assert_uint_eq(ring_push_batch(r, in + 16, 10), 4);	/* the 4 freed slots */
	ck_assert_uint_eq(ring_pop_batch(r, out + 4, 100), 16); /* more asked than held */
	ck_assert_uint_eq(ring_pop_batch(r, out + 20, 100), 0);
	for (uint32_t i = 0; i < 20; i++)
		assert_msg_is(&out[i], i);
	ck_assert(ring_empty(r));
	ck_assert(ring_sanity(r));
	free(r);
}
END_TEST

/* --- two-thread stress ------------------------------------------------------------ */

struct stress {
	struct ring *ring;
	uint64_t messages;     /* to send and to receive */
	uint64_t producer_sum; /* sum of payload values pushed */
	uint64_t consumer_sum; /* sum of payload values popped */
	uint64_t received;     /* messages popped */
	uint64_t out_of_order; /* popped messages whose cookie was not the next one */
	uint64_t bad_fields;   /* popped messages whose fields did not match the cookie */
	uint64_t single_ops;   /* successful ring_push/ring_pop calls, both sides */
	uint64_t batch_ops;    /* successful batch calls, both sides */
};

static uint64_t xorshift(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static void backoff(unsigned *fails)
{
	if (++*fails >= STRESS_SPINS_BEFORE_YIELD) {
		*fails = 0;
		sched_yield();
	}
}

static void *stress_producer(void *arg)
{
	struct stress *s = arg;
	struct ring_msg batch[STRESS_BATCH_MAX];
	uint64_t seed = 0x1234567, next = 0, sum = 0, singles = 0, batches = 0;
	unsigned fails = 0;

	while (next < s->messages) {
		uint64_t rnd = xorshift(&seed);
		if (rnd & 1) {
			struct ring_msg m = msg_for(next);
			if (ring_push(s->ring, &m)) {
				sum += (uintptr_t)m.payload;
				next++;
				singles++;
				continue;
			}
		} else {
			uint32_t n = 1 + (uint32_t)((rnd >> 1) % STRESS_BATCH_MAX);
			if (n > s->messages - next)
				n = (uint32_t)(s->messages - next);
			for (uint32_t i = 0; i < n; i++)
				batch[i] = msg_for(next + i);
			uint32_t pushed = ring_push_batch(s->ring, batch, n);
			for (uint32_t i = 0; i < pushed; i++)
				sum += (uintptr_t)batch[i].payload;
			next += pushed;
			if (pushed) {
				batches++;
				continue;
			}
		}
		backoff(&fails);
	}
	s->producer_sum = sum;
	s->single_ops += singles;
	s->batch_ops += batches;
	return NULL;
}

static void stress_check(struct stress *s, const struct ring_msg *m, uint64_t *expect)
{
	struct ring_msg want = msg_for(*expect);

	if (m->cookie != *expect)
		s->out_of_order++;
	else if (m->op != want.op || m->status != want.status || m->payload != want.payload ||
		 m->arg != want.arg)
		s->bad_fields++;
	s->consumer_sum += (uintptr_t)m->payload;
	s->received++;
	/* Resynchronise on the cookie so one loss is reported once, not forever. */
	*expect = m->cookie + 1;
}

static void *stress_consumer(void *arg)
{
	struct stress *s = arg;
	struct ring_msg batch[STRESS_BATCH_MAX];
	uint64_t seed = 0x7654321, expect = 0, singles = 0, batches = 0;
	unsigned fails = 0;

	while (s->received < s->messages) {
		uint64_t rnd = xorshift(&seed);
		if (rnd & 1) {
			struct ring_msg m;
			if (ring_pop(s->ring, &m)) {
				stress_check(s, &m, &expect);
				singles++;
				continue;
			}
		} else {
			uint32_t max = 1 + (uint32_t)((rnd >> 1) % STRESS_BATCH_MAX);
			uint32_t got = ring_pop_batch(s->ring, batch, max);
			for (uint32_t i = 0; i < got; i++)
				stress_check(s, &batch[i], &expect);
			if (got) {
				batches++;
				continue;
			}
		}
		backoff(&fails);
	}
	s->single_ops += singles;
	s->batch_ops += batches;
	return NULL;
}

START_TEST(test_two_thread_stress)
{
	struct stress s = {
	    .ring = ring_new(STRESS_CAPACITY, UINT32_MAX - 1000),
	    .messages = STRESS_MESSAGES,
	};
	struct stress prod = s, cons = s; /* separate structs: no shared plain fields */
	pthread_t pt, ct;

	ck_assert_int_eq(pthread_create(&ct, NULL, stress_consumer, &cons), 0);
	ck_assert_int_eq(pthread_create(&pt, NULL, stress_producer, &prod), 0);
	ck_assert_int_eq(pthread_join(pt, NULL), 0);
	ck_assert_int_eq(pthread_join(ct, NULL), 0);

	ck_assert_uint_eq(cons.received, STRESS_MESSAGES);
	ck_assert_uint_eq(cons.out_of_order, 0);
	ck_assert_uint_eq(cons.bad_fields, 0);
	ck_assert_uint_eq(cons.consumer_sum, prod.producer_sum);
	ck_assert(ring_empty(s.ring));
	ck_assert(ring_sanity(s.ring));
	/* Both the single and the batch paths were really exercised on both sides. */
	ck_assert_uint_gt(prod.single_ops, 1000);
	ck_assert_uint_gt(prod.batch_ops, 1000);
	ck_assert_uint_gt(cons.single_ops, 1000);
	ck_assert_uint_gt(cons.batch_ops, 1000);
	free(s.ring);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
	    {"bytes", test_bytes},
	    {"empty_pop_fails", test_empty_pop_fails},
	    {"full_push_fails", test_full_push_fails},
	    {"wrap_around", test_wrap_around},
	    {"partial_batches", test_partial_batches},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	TCase *stress = tcase_create("two_thread_stress");
	tcase_set_timeout(stress, 120);
	tcase_add_test(stress, test_two_thread_stress);
	suite_add_tcase(s, stress);
	return s;
}

int main(void)
{
	return unit_run(ring_suite());
}
