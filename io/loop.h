/*
 * io/loop.h: the event loop each shard thread runs on its own io_uring. Every
 * submission carries a 64-bit user_data in one layout, and every completion goes
 * through one dispatch on its kind:
 *
 *    63        56 55                                               0
 *   +------------+--------------------------------------------------+
 *   |    kind    |  value: a pointer (user space is < 2^56) or an   |
 *   | (loop_kind)|  index / shard id, meaning owned by the kind     |
 *   +------------+--------------------------------------------------+
 *
 * One iteration: run the before-wait hooks (the place where batched work is flushed:
 * mesh wake-ups now, group commit later), submit and wait for at least one completion,
 * then reap every ready completion in one batch, dispatch each to its kind's handler
 * and advance the completion queue once. Handlers may queue new submissions with
 * loop_get_sqe(); they go out with the next iteration's submit.
 */
#ifndef SLUICE_IO_LOOP_H
#define SLUICE_IO_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "io/uring.h"

enum loop_kind {
	LOOP_KIND_NONE = 0,	   /* completions that need no action; errors are logged */
	LOOP_KIND_STOP = 1,	   /* MSG_RING from the control thread: leave the loop */
	LOOP_KIND_MESH_WAKE = 2,   /* MSG_RING from a peer shard: drain the mesh; value = sender */
	LOOP_KIND_TEST = 3,	   /* free for unit tests and tools */
	LOOP_KIND_DISK_WRITE = 4,  /* a shard-log write completed; value owned by the log */
	LOOP_KIND_DISK_SYNC = 5,   /* a shard-log fdatasync completed */
	LOOP_KIND_DISK_READ = 6,   /* a shard-log read into a pool buffer completed */
	LOOP_KIND_NET_ACCEPT = 7,  /* the shard's multishot accept: res is a new socket */
	LOOP_KIND_NET_RECV = 8,	   /* a connection's multishot recv; value = net/conn id */
	LOOP_KIND_NET_SEND = 9,	   /* a connection's sendmsg completed; value = net/conn id */
	LOOP_KIND_NET_CANCEL = 10, /* a cancel the net layer asked for; nothing to do */
	LOOP_KIND_DISK_META = 11,  /* a shard-log segment preparation or file replacement */
	LOOP_KIND_COUNT
};

#define LOOP_UDATA_VALUE_BITS 56
#define LOOP_UDATA_VALUE_MASK ((UINT64_C(1) << LOOP_UDATA_VALUE_BITS) - 1)
#define LOOP_HOOKS_MAX	      8

struct loop;
struct loop_timer;
typedef void (*loop_timer_fn)(void *ctx, struct loop *loop, struct loop_timer *timer);

/* A one-shot timer on a loop (Fetch long-polls, retention checks). Timers live in a
 * binary min-heap inside the loop, not in the kernel: each turn waits for completions
 * at most until the earliest deadline, then runs the timers that are due. The struct
 * belongs to the caller and must not move or be freed while armed. */
struct loop_timer {
	uint64_t deadline_ns; /* CLOCK_MONOTONIC time it fires at, when armed */
	loop_timer_fn fn;     /* runs on the loop's thread, once per arming */
	void *ctx;	      /* its first argument */
	uint32_t heap_index;  /* position in the loop's heap, LOOP_TIMER_IDLE when not armed */
};
#define LOOP_TIMER_IDLE UINT32_MAX

typedef void (*loop_handler_fn)(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe);
typedef void (*loop_hook_fn)(void *ctx, struct loop *loop);

struct loop {
	struct io_uring ring;			   /* created in the owning thread */
	struct uring_features features;		   /* what uring_queue_init/probe found */
	loop_handler_fn handlers[LOOP_KIND_COUNT]; /* dispatch table, NULL = default */
	void *handler_ctx[LOOP_KIND_COUNT];	   /* first argument of each handler */
	loop_hook_fn hooks[LOOP_HOOKS_MAX];	   /* run before each wait, in order */
	void *hook_ctx[LOOP_HOOKS_MAX];
	unsigned hook_count;	    /* hooks in use */
	unsigned hook_last_count;   /* of them, the ones at the end added with _last */
	bool stopping;		    /* set by loop_stop or a STOP completion */
	uint64_t iterations;	    /* loop turns so far */
	uint64_t completions;	    /* completions dispatched so far */
	uint64_t sqe_overflows;	    /* times the SQ was full and had to be submitted early */
	struct loop_timer **timers; /* min-heap by deadline, LIMITS_LOOP_TIMERS_MAX slots */
	uint32_t timer_count;	    /* armed timers */
	uint64_t timers_fired;	    /* timer callbacks run so far */
};

static inline uint64_t loop_udata(enum loop_kind kind, uint64_t value)
{
	return ((uint64_t)kind << LOOP_UDATA_VALUE_BITS) | (value & LOOP_UDATA_VALUE_MASK);
}
static inline enum loop_kind loop_udata_kind(uint64_t udata)
{
	return (enum loop_kind)(udata >> LOOP_UDATA_VALUE_BITS);
}
static inline uint64_t loop_udata_value(uint64_t udata)
{
	return udata & LOOP_UDATA_VALUE_MASK;
}

/* Creates the loop's ring in the calling thread, which becomes the only thread that may
 * use it, and probes the opcodes sluice needs. Returns 0 or -errno; on failure, if
 * EXPLAIN is not NULL it receives one line naming the cause and the fix. */
int loop_init(struct loop *loop, unsigned entries, char *explain, size_t explain_len);
void loop_destroy(struct loop *loop);

/* Routes completions of KIND to FN(CTX, ...). */
void loop_on(struct loop *loop, enum loop_kind kind, loop_handler_fn fn, void *ctx);

/* Adds FN to the hooks run before each wait, after the other plain hooks and before
 * every hook added with loop_add_hook_last. Returns 0 or -ENOSPC. */
int loop_add_hook(struct loop *loop, loop_hook_fn fn, void *ctx);

/* Adds FN to run after every plain hook: for hooks that publish what the others
 * produced, such as the mesh's wake-ups (a message queued by a later hook would
 * otherwise wait a whole turn, or forever if nothing else completes). */
int loop_add_hook_last(struct loop *loop, loop_hook_fn fn, void *ctx);

/* Removes the hook FN with context CTX, keeping the order of the others. Returns 0 or
 * -ENOENT. */
int loop_remove_hook(struct loop *loop, loop_hook_fn fn, void *ctx);

/* A submission slot; when the SQ is full it submits what is queued first, so the
 * result is never NULL. */
struct io_uring_sqe *loop_get_sqe(struct loop *loop);

/* Queues a MSG_RING that posts a completion with user_data loop_udata(KIND, VALUE) and
 * res 0 on the ring whose fd is TARGET_RING_FD. The sender gets no completion unless
 * it fails. Thread-safe with respect to the target: only this loop's ring is touched. */
void loop_queue_msg_ring(struct loop *loop, int target_ring_fd, enum loop_kind kind,
			 uint64_t value);

/* One turn: hooks, submit, wait for at least one completion if WAIT (but no longer
 * than the earliest armed timer), dispatch all ready ones, then run the timers that
 * are due. Returns the number of completions and timers handled, or -errno (-EINTR is
 * retried inside). */
int loop_run_once(struct loop *loop, bool wait);

/* Turns until loop_stop() is called or a STOP completion arrives. Returns 0 or -errno. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t loop_now_ns(void);

/* Prepares T (idle) to call FN(CTX, loop, T) when it fires. */
void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx);

/* Arms T to fire DELAY_MS from now; an armed T is moved. Returns 0, or -ENOSPC when
 * LIMITS_LOOP_TIMERS_MAX timers are armed (T stays as it was). */
int loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);

/* The same with the delay in nanoseconds (the wait's resolution is the kernel's). */
int loop_timer_arm_ns(struct loop *loop, struct loop_timer *t, uint64_t delay_ns);

/* Disarms T if armed; it will not fire. */
void loop_timer_disarm(struct loop *loop, struct loop_timer *t);

static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_index != LOOP_TIMER_IDLE;
}

static inline int loop_ring_fd(const struct loop *loop)
{
	return loop->ring.ring_fd;
}

#endif
