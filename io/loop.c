/*
 * io/loop.c: the per-shard event loop on io_uring: before-wait hooks, one submit-and-
 * wait per turn, completions reaped in a batch and dispatched by the kind in their
 * user_data (layout in io/loop.h), the completion queue advanced once per batch.
 */
#include "io/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/logger.h"

/* Completions nobody claimed: a MSG_RING or other fire-and-forget op that failed
 * (successes are skipped with IOSQE_CQE_SKIP_SUCCESS). */
static void loop_default_none(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	if (cqe->res < 0)
		LOG_WARN("loop: untracked operation failed: %s", strerror(-cqe->res));
}

static void loop_default_stop(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	loop->stopping = true;
}

static void loop_default_unhandled(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	LOG_WARN("loop: completion of kind %u with no handler (res %d)",
		 (unsigned)loop_udata_kind(cqe->user_data), cqe->res);
}

int loop_init(struct loop *loop, unsigned entries, char *explain, size_t explain_len)
{
	memset(loop, 0, sizeof(*loop));
	for (int kind = 0; kind < LOOP_KIND_COUNT; kind++)
		loop->handlers[kind] = loop_default_unhandled;
	loop->handlers[LOOP_KIND_NONE] = loop_default_none;
	loop->handlers[LOOP_KIND_STOP] = loop_default_stop;

	loop->timers = calloc(LIMITS_LOOP_TIMERS_MAX, sizeof(*loop->timers));
	if (!loop->timers) {
		if (explain)
			snprintf(explain, explain_len, "cannot allocate the loop's timer heap");
		return -ENOMEM;
	}
	int ret = uring_queue_init(&loop->ring, entries, &loop->features);
	if (ret < 0) {
		if (explain)
			uring_explain(ret, "setup", NULL, explain, explain_len);
		goto out_timers;
	}
	const char *missing = NULL;
	ret = uring_probe(&loop->ring, &loop->features, &missing);
	if (ret < 0) {
		if (explain)
			uring_explain(ret, "probe", missing, explain, explain_len);
		io_uring_queue_exit(&loop->ring);
		goto out_timers;
	}
	return 0;

out_timers:
	free(loop->timers);
	loop->timers = NULL;
	return ret;
}

void loop_destroy(struct loop *loop)
{
	io_uring_queue_exit(&loop->ring);
	for (uint32_t i = 0; i < loop->timer_count; i++)
		loop->timers[i]->heap_index = LOOP_TIMER_IDLE;
	free(loop->timers);
	loop->timers = NULL;
	loop->timer_count = 0;
}

uint64_t loop_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx)
{
	t->deadline_ns = 0;
	t->fn = fn;
	t->ctx = ctx;
	t->heap_index = LOOP_TIMER_IDLE;
}

static void loop_heap_place(struct loop *loop, struct loop_timer *t, uint32_t i)
{
	loop->timers[i] = t;
	t->heap_index = i;
}

static void loop_heap_up(struct loop *loop, uint32_t i)
{
	struct loop_timer *t = loop->timers[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (loop->timers[parent]->deadline_ns <= t->deadline_ns)
			break;
		loop_heap_place(loop, loop->timers[parent], i);
		i = parent;
	}
	loop_heap_place(loop, t, i);
}

static void loop_heap_down(struct loop *loop, uint32_t i)
{
	struct loop_timer *t = loop->timers[i];
	for (;;) {
		uint32_t child = 2 * i + 1;
		if (child >= loop->timer_count)
			break;
		if (child + 1 < loop->timer_count &&
		    loop->timers[child + 1]->deadline_ns < loop->timers[child]->deadline_ns)
			child++;
		if (t->deadline_ns <= loop->timers[child]->deadline_ns)
			break;
		loop_heap_place(loop, loop->timers[child], i);
		i = child;
	}
	loop_heap_place(loop, t, i);
}

void loop_timer_disarm(struct loop *loop, struct loop_timer *t)
{
	if (t->heap_index == LOOP_TIMER_IDLE)
		return;
	uint32_t i = t->heap_index;
	ASSERT(i < loop->timer_count && loop->timers[i] == t);
	t->heap_index = LOOP_TIMER_IDLE;
	struct loop_timer *last = loop->timers[--loop->timer_count];
	if (last == t)
		return;
	/* The last entry takes the hole and moves whichever way its deadline says. */
	loop_heap_place(loop, last, i);
	loop_heap_up(loop, i);
	loop_heap_down(loop, last->heap_index);
}

int loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms)
{
	return loop_timer_arm_ns(loop, t, delay_ms * 1000000u);
}

int loop_timer_arm_ns(struct loop *loop, struct loop_timer *t, uint64_t delay_ns)
{
	if (t->heap_index == LOOP_TIMER_IDLE && loop->timer_count == LIMITS_LOOP_TIMERS_MAX)
		return -ENOSPC;
	loop_timer_disarm(loop, t);
	t->deadline_ns = loop_now_ns() + delay_ns;
	loop_heap_place(loop, t, loop->timer_count++);
	loop_heap_up(loop, t->heap_index);
	return 0;
}

/* Runs every timer due at NOW. A callback may arm timers again: one re-armed with
 * 0 ms gets a deadline after NOW only if the clock moved, so the count bounds the loop. */
static uint32_t loop_run_timers(struct loop *loop, uint64_t now)
{
	uint32_t fired = 0;
	while (loop->timer_count > 0 && loop->timers[0]->deadline_ns <= now &&
	       fired < LIMITS_LOOP_TIMERS_MAX) {
		struct loop_timer *t = loop->timers[0];
		loop_timer_disarm(loop, t);
		t->fn(t->ctx, loop, t);
		fired++;
	}
	loop->timers_fired += fired;
	return fired;
}

void loop_on(struct loop *loop, enum loop_kind kind, loop_handler_fn fn, void *ctx)
{
	ASSERT((unsigned)kind < LOOP_KIND_COUNT);
	loop->handlers[kind] = fn;
	loop->handler_ctx[kind] = ctx;
}

int loop_add_hook(struct loop *loop, loop_hook_fn fn, void *ctx)
{
	if (loop->hook_count == LOOP_HOOKS_MAX)
		return -ENOSPC;
	/* Insert before the "last" hooks, keeping both groups in the order added. */
	unsigned at = loop->hook_count - loop->hook_last_count;
	for (unsigned i = loop->hook_count; i > at; i--) {
		loop->hooks[i] = loop->hooks[i - 1];
		loop->hook_ctx[i] = loop->hook_ctx[i - 1];
	}
	loop->hooks[at] = fn;
	loop->hook_ctx[at] = ctx;
	loop->hook_count++;
	return 0;
}

int loop_add_hook_last(struct loop *loop, loop_hook_fn fn, void *ctx)
{
	if (loop->hook_count == LOOP_HOOKS_MAX)
		return -ENOSPC;
	loop->hooks[loop->hook_count] = fn;
	loop->hook_ctx[loop->hook_count] = ctx;
	loop->hook_count++;
	loop->hook_last_count++;
	return 0;
}

int loop_remove_hook(struct loop *loop, loop_hook_fn fn, void *ctx)
{
	for (unsigned i = 0; i < loop->hook_count; i++) {
		if (loop->hooks[i] != fn || loop->hook_ctx[i] != ctx)
			continue;
		if (i >= loop->hook_count - loop->hook_last_count)
			loop->hook_last_count--;
		for (unsigned j = i + 1; j < loop->hook_count; j++) {
			loop->hooks[j - 1] = loop->hooks[j];
			loop->hook_ctx[j - 1] = loop->hook_ctx[j];
		}
		loop->hook_count--;
		return 0;
	}
	return -ENOENT;
}

struct io_uring_sqe *loop_get_sqe(struct loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
	while (!sqe) {
		/* The SQ is full: hand it to the kernel now rather than drop work. */
		loop->sqe_overflows++;
		int ret = io_uring_submit(&loop->ring);
		ASSERT(ret >= 0 || ret == -EBUSY || ret == -EINTR);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	return sqe;
}

void loop_queue_msg_ring(struct loop *loop, int target_ring_fd, enum loop_kind kind, uint64_t value)
{
	struct io_uring_sqe *sqe = loop_get_sqe(loop);
	/* The target sees a completion with res = 0 and our user_data; we see nothing
	 * unless it fails. */
	io_uring_prep_msg_ring(sqe, target_ring_fd, 0, loop_udata(kind, value), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NONE, 0));
}

int loop_run_once(struct loop *loop, bool wait)
{
	for (unsigned i = 0; i < loop->hook_count; i++)
		loop->hooks[i](loop->hook_ctx[i], loop);

	int ret;
	do {
		/* With DEFER_TASKRUN, completions are only posted when we enter the kernel
		 * asking for events, hence submit_and_get_events when not waiting. */
		if (!wait) {
			ret = io_uring_submit_and_get_events(&loop->ring);
		} else if (loop->timer_count == 0) {
			ret = io_uring_submit_and_wait(&loop->ring, 1);
		} else {
			uint64_t now = loop_now_ns(), deadline = loop->timers[0]->deadline_ns;
			uint64_t wait_ns = deadline > now ? deadline - now : 0;
			struct __kernel_timespec ts = {.tv_sec = (long long)(wait_ns / 1000000000u),
						       .tv_nsec =
							   (long long)(wait_ns % 1000000000u)};
			struct io_uring_cqe *first;
			ret = wait_ns ? io_uring_submit_and_wait_timeout(&loop->ring, &first, 1,
									 &ts, NULL)
				      : io_uring_submit_and_get_events(&loop->ring);
		}
	} while (ret == -EINTR);
	if (ret < 0 && ret != -ETIME && ret != -EBUSY)
		return ret;

	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&loop->ring, head, cqe)
	{
		enum loop_kind kind = loop_udata_kind(cqe->user_data);
		if ((unsigned)kind < LOOP_KIND_COUNT)
			loop->handlers[kind](loop->handler_ctx[kind], loop, cqe);
		else
			loop_default_unhandled(NULL, loop, cqe);
		seen++;
	}
	io_uring_cq_advance(&loop->ring, seen);
	loop->iterations++;
	loop->completions += seen;
	uint32_t fired = loop->timer_count ? loop_run_timers(loop, loop_now_ns()) : 0;
	return (int)(seen + fired);
}

int loop_run(struct loop *loop)
{
	while (!loop->stopping) {
		int ret = loop_run_once(loop, true);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void loop_stop(struct loop *loop)
{
	loop->stopping = true;
}
