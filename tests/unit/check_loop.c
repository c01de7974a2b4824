/*
 * tests/unit/check_loop.c: the event loop's own behaviour on a real io_uring: the
 * user_data layout round-trips, completions are dispatched by kind, hooks run in
 * order with the "last" hooks after the plain ones, a MSG_RING to the loop's own ring
 * arrives as a completion of the kind sent, and timers fire once, in deadline order,
 * can be disarmed and re-armed, wake a loop that has nothing else to do, and refuse to
 * grow past LIMITS_LOOP_TIMERS_MAX.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "core/limits.h"
#include "io/loop.h"
#include "unit.h"

static struct loop loop;

static void setup(void)
{
	char why[256];
	ck_assert_msg(loop_init(&loop, 64, why, sizeof(why)) == 0, "loop_init: %s", why);
}

static void teardown(void)
{
	loop_destroy(&loop);
}

START_TEST(test_udata_layout)
{
	uint64_t ptr = UINT64_C(0x00007fffdeadbeef);
	uint64_t u = loop_udata(LOOP_KIND_TEST, ptr);
	ck_assert_int_eq(loop_udata_kind(u), LOOP_KIND_TEST);
	ck_assert_uint_eq(loop_udata_value(u), ptr);
	ck_assert_uint_eq(loop_udata_value(loop_udata(LOOP_KIND_STOP, UINT64_MAX)),
			  LOOP_UDATA_VALUE_MASK);
}
END_TEST

static int order[8], order_len;
static void hook_a(void *ctx, struct loop *l)
{
	order[order_len++] = 1;
}
static void hook_b(void *ctx, struct loop *l)
{
	order[order_len++] = 2;
}
static void hook_last(void *ctx, struct loop *l)
{
	order[order_len++] = 9;
}

START_TEST(test_hooks_order_and_removal)
{
	ck_assert_int_eq(loop_add_hook_last(&loop, hook_last, NULL), 0);
	ck_assert_int_eq(loop_add_hook(&loop, hook_a, NULL), 0);
	ck_assert_int_eq(loop_add_hook(&loop, hook_b, NULL), 0);
	order_len = 0;
	ck_assert_int_ge(loop_run_once(&loop, false), 0);
	ck_assert_int_eq(order_len, 3);
	ck_assert_int_eq(order[0], 1);
	ck_assert_int_eq(order[1], 2);
	ck_assert_int_eq(order[2], 9);
	ck_assert_int_eq(loop_remove_hook(&loop, hook_a, NULL), 0);
	ck_assert_int_eq(loop_remove_hook(&loop, hook_a, NULL), -ENOENT);
	ck_assert_int_eq(loop_add_hook(&loop, hook_a, NULL), 0); /* goes before "last" */
	order_len = 0;
	ck_assert_int_ge(loop_run_once(&loop, false), 0);
	ck_assert_int_eq(order[0], 2);
	ck_assert_int_eq(order[1], 1);
	ck_assert_int_eq(order[2], 9);
}
END_TEST

static uint64_t test_values_seen[4];
static int test_seen;
static void on_test(void *ctx, struct loop *l, const struct io_uring_cqe *cqe)
{
	test_values_seen[test_seen++ & 3] = loop_udata_value(cqe->user_data);
}

START_TEST(test_msg_ring_to_self_dispatches_by_kind)
{
	loop_on(&loop, LOOP_KIND_TEST, on_test, NULL);
	test_seen = 0;
	loop_queue_msg_ring(&loop, loop_ring_fd(&loop), LOOP_KIND_TEST, 42);
	loop_queue_msg_ring(&loop, loop_ring_fd(&loop), LOOP_KIND_TEST, 43);
	for (int i = 0; i < 10 && test_seen < 2; i++)
		ck_assert_int_ge(loop_run_once(&loop, true), 0);
	ck_assert_int_eq(test_seen, 2);
	ck_assert_uint_eq(test_values_seen[0], 42);
	ck_assert_uint_eq(test_values_seen[1], 43);
	/* A STOP completion ends loop_run. */
	loop_queue_msg_ring(&loop, loop_ring_fd(&loop), LOOP_KIND_STOP, 0);
	ck_assert_int_eq(loop_run(&loop), 0);
	ck_assert(loop.stopping);
}
END_TEST

#define TIMERS 1000
static struct loop_timer timers[TIMERS];
static uint64_t fired_deadline[TIMERS];
static int fired_count;
static void on_timer(void *ctx, struct loop *l, struct loop_timer *t)
{
	ck_assert(!loop_timer_armed(t));
	fired_deadline[fired_count++] = t->deadline_ns;
}

START_TEST(test_timers_fire_in_deadline_order)
{
	srand(7);
	fired_count = 0;
	for (int i = 0; i < TIMERS; i++) {
		loop_timer_init(&timers[i], on_timer, NULL);
		ck_assert_int_eq(loop_timer_arm(&loop, &timers[i], (uint64_t)(rand() % 40)), 0);
	}
	/* Disarm every tenth, re-arm every seventh (moves it). */
	for (int i = 0; i < TIMERS; i += 10)
		loop_timer_disarm(&loop, &timers[i]);
	for (int i = 3; i < TIMERS; i += 70)
		ck_assert_int_eq(loop_timer_arm(&loop, &timers[i], 5), 0);
	int expected = TIMERS - TIMERS / 10;
	ck_assert_uint_eq(loop.timer_count, (uint32_t)expected);
	/* Nothing else will complete: only the timers wake the loop. */
	for (int turns = 0; fired_count < expected && turns < 10000; turns++)
		ck_assert_int_ge(loop_run_once(&loop, true), 0);
	ck_assert_int_eq(fired_count, expected);
	for (int i = 1; i < fired_count; i++)
		ck_assert_uint_le(fired_deadline[i - 1], fired_deadline[i]);
	ck_assert_uint_eq(loop.timer_count, 0);
	for (int i = 0; i < TIMERS; i++)
		ck_assert(!loop_timer_armed(&timers[i]));
}
END_TEST

/* A sub-millisecond timer fires no earlier than asked and before a 1 ms one armed at
 * the same time: the deadline keeps nanoseconds. */
START_TEST(test_timer_ns_resolution)
{
	fired_count = 0;
	loop_timer_init(&timers[0], on_timer, NULL);
	loop_timer_init(&timers[1], on_timer, NULL);
	uint64_t t0 = loop_now_ns();
	ck_assert_int_eq(loop_timer_arm(&loop, &timers[1], 1), 0);
	ck_assert_int_eq(loop_timer_arm_ns(&loop, &timers[0], 200000), 0);
	ck_assert_uint_ge(timers[0].deadline_ns, t0 + 200000);
	ck_assert_uint_lt(timers[0].deadline_ns, timers[1].deadline_ns);
	for (int turns = 0; fired_count < 1 && turns < 1000; turns++)
		ck_assert_int_ge(loop_run_once(&loop, true), 0);
	ck_assert_int_eq(fired_count, 1);
	ck_assert_uint_ge(loop_now_ns(), t0 + 200000);
	ck_assert(!loop_timer_armed(&timers[0]));
	ck_assert(loop_timer_armed(&timers[1]));
	loop_timer_disarm(&loop, &timers[1]);
}
END_TEST

START_TEST(test_timer_capacity)
{
	struct loop_timer *many = calloc(LIMITS_LOOP_TIMERS_MAX + 1, sizeof(*many));
	ck_assert_ptr_nonnull(many);
	for (uint32_t i = 0; i <= LIMITS_LOOP_TIMERS_MAX; i++)
		loop_timer_init(&many[i], on_timer, NULL);
	for (uint32_t i = 0; i < LIMITS_LOOP_TIMERS_MAX; i++)
		ck_assert_int_eq(loop_timer_arm(&loop, &many[i], 60000), 0);
	ck_assert_int_eq(loop_timer_arm(&loop, &many[LIMITS_LOOP_TIMERS_MAX], 1), -ENOSPC);
	ck_assert(!loop_timer_armed(&many[LIMITS_LOOP_TIMERS_MAX]));
	ck_assert_int_eq(loop_timer_arm(&loop, &many[5], 1), 0); /* re-arming an armed one works */
	for (uint32_t i = 0; i < LIMITS_LOOP_TIMERS_MAX; i++)
		loop_timer_disarm(&loop, &many[i]);
	ck_assert_uint_eq(loop.timer_count, 0);
	free(many);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loop");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
	    {"udata_layout", test_udata_layout},
	    {"hooks_order_and_removal", test_hooks_order_and_removal},
	    {"msg_ring_to_self_dispatches_by_kind", test_msg_ring_to_self_dispatches_by_kind},
	    {"timers_fire_in_deadline_order", test_timers_fire_in_deadline_order},
	    {"timer_ns_resolution", test_timer_ns_resolution},
	    {"timer_capacity", test_timer_capacity},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, cases[i].test);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	}
	return unit_run(s);
}
