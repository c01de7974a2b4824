/*
 * tools/sluice-ringbench.c: microbenchmark of the SPSC ring (core/ring.h) and the shard
 * mesh (core/mesh.h). It measures, with two threads pinned to two CPUs: the machine's own
 * floor for a cross-core hand-off (one cache line bounced back and forth), messages per
 * second through one ring with single and batched push/pop, the round-trip time of one
 * request/reply between two shards that sleep in io_uring and are woken with MSG_RING
 * (beside the OS's own floor: two threads waking each other with a futex), and the
 * throughput of that mesh with a window of requests in flight. It prints one
 * progress line per second in long phases and a summary at the end. It is a benchmark,
 * not a test: it checks only that every message arrived, and it does not speak Kafka or
 * touch disks (sluice-bench does).
 */
#include <errno.h>
#include <getopt.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/mesh.h"
#include "core/ring.h"
#include "io/loop.h"

#define BENCH_DEFAULT_MESSAGES	 (50ull * 1000 * 1000)
#define BENCH_DEFAULT_ROUNDTRIPS 200000ull
#define BENCH_DEFAULT_PIPELINED	 (10ull * 1000 * 1000)
#define BENCH_DEFAULT_WINDOW	 256u
/* Cache-line round trips of the baseline phase. */
#define BENCH_LINE_ROUNDTRIPS 2000000ull
/* Futex round trips of the OS wake-up baseline (each costs two sleeps and wake-ups). */
#define BENCH_WAKE_ROUNDTRIPS 50000ull
/* Round trips done before the timed ones, to fault in pages and warm caches. */
#define BENCH_WARMUP_ROUNDTRIPS 1000ull
#define BENCH_BATCH		32u
/* How often the consumer publishes its progress (a power of two). */
#define BENCH_PROGRESS_EVERY 65536ull
/* Spins on a full/empty ring before yielding the CPU (matters only when unpinned). */
#define BENCH_SPINS_BEFORE_YIELD 1024u
/* Submission entries of each benchmark loop. */
#define BENCH_LOOP_ENTRIES 256u
#define BENCH_OP_PING	   1u

struct options {
	const char *phase;   /* "all", "line", "ring", "rtt" or "pipe" */
	uint64_t messages;   /* ring phases */
	uint64_t roundtrips; /* mesh ping-pong */
	uint64_t pipelined;  /* mesh pipelined requests */
	uint32_t window;     /* requests in flight in the pipelined phase */
	int cpus[2];	     /* -1: unpinned */
};

/* What the monitor (main thread) watches while a phase runs. */
struct progress {
	_Atomic uint64_t done; /* units finished so far, published now and then */
	_Atomic bool finished; /* the phase's threads are done */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin_self(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (ret != 0)
		fprintf(stderr, "ringbench: cannot pin to CPU %d: %s (running unpinned)\n", cpu,
			strerror(ret));
}

static void spin_wait(unsigned *spins)
{
	if (++*spins >= BENCH_SPINS_BEFORE_YIELD) {
		*spins = 0;
		sched_yield();
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Waits for the phase to finish, printing a progress line each second. */
static void monitor(const char *name, struct progress *pr, uint64_t total, const char *unit)
{
	double start = now_s(), last = start;
	uint64_t last_done = 0;
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};

	while (!atomic_load_explicit(&pr->finished, memory_order_acquire)) {
		nanosleep(&tick, NULL);
		double t = now_s();
		if (t - last < 1.0)
			continue;
		uint64_t done = atomic_load_explicit(&pr->done, memory_order_relaxed);
		printf("ringbench: %-12s %7.1f / %.1f M %s, %.2f M/s\n", name, done / 1e6,
		       total / 1e6, unit, (done - last_done) / (t - last) / 1e6);
		fflush(stdout);
		last = t;
		last_done = done;
	}
}

/* --- baseline: one cache line bounced between the two CPUs ------------------------ */

struct line_bench {
	alignas(LIMITS_CACHE_LINE_BYTES) _Atomic uint64_t value; /* odd: responder's turn */
	uint64_t roundtrips;					 /* to do */
	int cpus[2];						 /* initiator, responder */
	double elapsed_s; /* initiator's time for all round trips */
};

/* Acquire/release are what a real hand-off needs; the cost measured is the line moving
 * between the two cores and back. */
static void *line_initiator(void *arg)
{
	struct line_bench *lb = arg;
	pin_self(lb->cpus[0]);
	double start = now_s();
	for (uint64_t i = 0; i < lb->roundtrips; i++) {
		unsigned spins = 0;
		atomic_store_explicit(&lb->value, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(&lb->value, memory_order_acquire) != 2 * i + 2)
			spin_wait(&spins);
	}
	lb->elapsed_s = now_s() - start;
	return NULL;
}

static void *line_responder(void *arg)
{
	struct line_bench *lb = arg;
	pin_self(lb->cpus[1]);
	for (uint64_t i = 0; i < lb->roundtrips; i++) {
		unsigned spins = 0;
		while (atomic_load_explicit(&lb->value, memory_order_acquire) != 2 * i + 1)
			spin_wait(&spins);
		atomic_store_explicit(&lb->value, 2 * i + 2, memory_order_release);
	}
	return NULL;
}

static double bench_line(const struct options *opt)
{
	static struct line_bench lb; /* static: aligned and off the stack */
	pthread_t ti, tr;

	atomic_store(&lb.value, 0);
	lb.roundtrips = BENCH_LINE_ROUNDTRIPS;
	lb.cpus[0] = opt->cpus[0];
	lb.cpus[1] = opt->cpus[1];
	if (pthread_create(&tr, NULL, line_responder, &lb) != 0 ||
	    pthread_create(&ti, NULL, line_initiator, &lb) != 0) {
		fprintf(stderr, "ringbench: cannot start threads\n");
		exit(1);
	}
	pthread_join(ti, NULL);
	pthread_join(tr, NULL);
	return lb.elapsed_s / (double)lb.roundtrips * 1e9;
}

/* --- baseline: two threads that sleep and wake each other with a futex -------------- */

struct wake_bench {
	alignas(LIMITS_CACHE_LINE_BYTES) _Atomic uint32_t turn; /* round trip number * 2 (+1) */
	uint64_t roundtrips;					/* to do */
	int cpus[2];						/* initiator, responder */
	uint64_t *rtt_ns; /* per round trip, filled by the initiator */
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Seq_cst throughout: a baseline, so the simplest correct protocol; the cost is in the
 * two sleeps and wake-ups per round trip, not in the fences. */
static void *wake_initiator(void *arg)
{
	struct wake_bench *wb = arg;
	pin_self(wb->cpus[0]);
	for (uint32_t i = 0; i < wb->roundtrips; i++) {
		uint64_t t0 = now_ns();
		atomic_store(&wb->turn, 2 * i + 1);
		futex_wake(&wb->turn);
		uint32_t v;
		while ((v = atomic_load(&wb->turn)) != 2 * i + 2)
			futex_wait(&wb->turn, v);
		wb->rtt_ns[i] = now_ns() - t0;
	}
	return NULL;
}

static void *wake_responder(void *arg)
{
	struct wake_bench *wb = arg;
	pin_self(wb->cpus[1]);
	for (uint32_t i = 0; i < wb->roundtrips; i++) {
		uint32_t v;
		while ((v = atomic_load(&wb->turn)) != 2 * i + 1)
			futex_wait(&wb->turn, v);
		atomic_store(&wb->turn, 2 * i + 2);
		futex_wake(&wb->turn);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b);

/* Returns the median futex round trip in microseconds, and the slowest in *MAX_US. */
static double bench_wake(const struct options *opt, double *max_us)
{
	static struct wake_bench wb; /* static: aligned and off the stack */
	pthread_t ti, tr;

	atomic_store(&wb.turn, 0);
	wb.roundtrips = BENCH_WAKE_ROUNDTRIPS;
	wb.cpus[0] = opt->cpus[0];
	wb.cpus[1] = opt->cpus[1];
	wb.rtt_ns = calloc(wb.roundtrips, sizeof(*wb.rtt_ns));
	if (!wb.rtt_ns || pthread_create(&tr, NULL, wake_responder, &wb) != 0 ||
	    pthread_create(&ti, NULL, wake_initiator, &wb) != 0) {
		fprintf(stderr, "ringbench: cannot start threads\n");
		exit(1);
	}
	pthread_join(ti, NULL);
	pthread_join(tr, NULL);
	qsort(wb.rtt_ns, wb.roundtrips, sizeof(*wb.rtt_ns), cmp_u64);
	double p50_us = wb.rtt_ns[(wb.roundtrips - 1) / 2] / 1e3;
	*max_us = wb.rtt_ns[wb.roundtrips - 1] / 1e3;
	free(wb.rtt_ns);
	return p50_us;
}

/* --- SPSC ring throughput --------------------------------------------------------- */

struct ring_bench {
	struct ring *ring;
	uint64_t messages;
	uint32_t batch; /* 1: ring_push/ring_pop, else the batch calls */
	int cpus[2];
	pthread_barrier_t start; /* both threads ready before the clock starts */
	struct progress *pr;
	uint64_t sum_sent;     /* producer's checksum of cookies */
	uint64_t sum_received; /* consumer's checksum of cookies */
	uint64_t out_of_order; /* consumer: cookies not in sequence */
	double start_s, end_s; /* producer's start, consumer's end */
};

static void *ring_producer(void *arg)
{
	struct ring_bench *rb = arg;
	struct ring_msg msgs[BENCH_BATCH];
	uint64_t next = 0, sum = 0;
	unsigned spins = 0;

	pin_self(rb->cpus[0]);
	memset(msgs, 0, sizeof(msgs));
	pthread_barrier_wait(&rb->start);
	rb->start_s = now_s();
	if (rb->batch == 1) {
		struct ring_msg m = {.op = BENCH_OP_PING};
		while (next < rb->messages) {
			m.cookie = next;
			m.arg = next;
			if (ring_push(rb->ring, &m)) {
				sum += next++;
				spins = 0;
			} else {
				spin_wait(&spins);
			}
		}
	} else {
		while (next < rb->messages) {
			uint64_t left = rb->messages - next;
			uint32_t n = left < rb->batch ? (uint32_t)left : rb->batch;
			for (uint32_t i = 0; i < n; i++)
				msgs[i].cookie = next + i;
			uint32_t pushed = ring_push_batch(rb->ring, msgs, n);
			if (pushed == 0) {
				spin_wait(&spins);
				continue;
			}
			spins = 0;
			for (uint32_t i = 0; i < pushed; i++)
				sum += next + i;
			next += pushed;
		}
	}
	rb->sum_sent = sum;
	return NULL;
}

static void *ring_consumer(void *arg)
{
	struct ring_bench *rb = arg;
	struct ring_msg msgs[BENCH_BATCH];
	uint64_t got = 0, sum = 0, bad = 0;
	unsigned spins = 0;

	pin_self(rb->cpus[1]);
	pthread_barrier_wait(&rb->start);
	while (got < rb->messages) {
		uint32_t n;
		if (rb->batch == 1)
			n = ring_pop(rb->ring, &msgs[0]) ? 1 : 0;
		else
			n = ring_pop_batch(rb->ring, msgs, rb->batch);
		if (n == 0) {
			spin_wait(&spins);
			continue;
		}
		spins = 0;
		for (uint32_t i = 0; i < n; i++) {
			bad += msgs[i].cookie != got + i;
			sum += msgs[i].cookie;
		}
		/* Publish progress when crossing a multiple of BENCH_PROGRESS_EVERY. */
		if (((got + n) ^ got) >= BENCH_PROGRESS_EVERY)
			atomic_store_explicit(&rb->pr->done, got + n, memory_order_relaxed);
		got += n;
	}
	rb->end_s = now_s();
	rb->sum_received = sum;
	rb->out_of_order = bad;
	atomic_store_explicit(&rb->pr->finished, true, memory_order_release);
	return NULL;
}

static double bench_ring(const struct options *opt, uint32_t batch, const char *name)
{
	struct progress pr = {0};
	struct ring_bench rb = {
	    .messages = opt->messages,
	    .batch = batch,
	    .cpus = {opt->cpus[0], opt->cpus[1]},
	    .pr = &pr,
	};
	pthread_t prod, cons;

	rb.ring = aligned_alloc(LIMITS_CACHE_LINE_BYTES, ring_bytes(LIMITS_RING_SLOTS));
	if (!rb.ring)
		return -1;
	ring_init(rb.ring, LIMITS_RING_SLOTS);
	pthread_barrier_init(&rb.start, NULL, 2);
	if (pthread_create(&cons, NULL, ring_consumer, &rb) != 0 ||
	    pthread_create(&prod, NULL, ring_producer, &rb) != 0) {
		fprintf(stderr, "ringbench: cannot start threads\n");
		exit(1);
	}
	monitor(name, &pr, rb.messages, "messages");
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	pthread_barrier_destroy(&rb.start);
	free(rb.ring);
	if (rb.out_of_order != 0 || rb.sum_sent != rb.sum_received) {
		fprintf(stderr, "ringbench: %s: %llu messages out of order or lost\n", name,
			(unsigned long long)rb.out_of_order);
		exit(1);
	}
	return (double)rb.messages / (rb.end_s - rb.start_s);
}

/* --- mesh: two shards with loops --------------------------------------------------- */

struct mesh_bench {
	struct mesh *mesh;
	uint64_t requests; /* timed round trips / pipelined requests */
	uint64_t warmup;   /* untimed round trips before them */
	uint32_t window;   /* requests in flight (1 = ping-pong) */
	int cpus[2];
	pthread_barrier_t ready; /* both shards attached */
	pthread_barrier_t done;	 /* both shards done submitting */
	_Atomic int ring_fd[2];	 /* for the final STOP */
	struct progress *pr;
	/* shard 0 only: */
	struct loop *loop0;
	uint64_t sent, replies; /* including warm-up */
	uint64_t *rtt_ns;	/* per timed round trip, window 1 only */
	uint64_t *sent_ns;	/* send time by cookie % window */
	uint64_t bad_replies;
	double start_s, end_s; /* first timed send, last reply */
	int error;
	char explain[256];
};

static void mesh_bench_send(struct mesh_bench *mb)
{
	struct ring_msg m = {.op = BENCH_OP_PING, .cookie = mb->sent, .arg = mb->sent};
	if (mb->sent == mb->warmup)
		mb->start_s = now_s();
	if (mb->rtt_ns)
		mb->sent_ns[mb->sent % mb->window] = now_ns();
	/* Never -EAGAIN: the window is checked against mesh_request_window at start. */
	int ret = mesh_send(mb->mesh, 0, 1, &m);
	ASSERT(ret == 0);
	mb->sent++;
}

static void mesh_bench_shard0(void *ctx, uint32_t from, const struct ring_msg *msg)
{
	struct mesh_bench *mb = ctx;
	uint64_t total = mb->warmup + mb->requests;

	if (!mesh_op_is_reply(msg->op) || msg->arg != msg->cookie + 1)
		mb->bad_replies++;
	if (mb->rtt_ns && msg->cookie >= mb->warmup)
		mb->rtt_ns[msg->cookie - mb->warmup] =
		    now_ns() - mb->sent_ns[msg->cookie % mb->window];
	mb->replies++;
	if ((mb->replies & (BENCH_PROGRESS_EVERY / 64 - 1)) == 0)
		atomic_store_explicit(&mb->pr->done, mb->replies, memory_order_relaxed);
	if (mb->sent < total)
		mesh_bench_send(mb);
}

static void mesh_bench_shard1(void *ctx, uint32_t from, const struct ring_msg *msg)
{
	struct mesh_bench *mb = ctx;
	int ret = mesh_reply(mb->mesh, 1, from, msg, 0, msg->payload, msg->arg + 1);
	ASSERT(ret == 0); /* a reply always fits (request window) */
}

static void *mesh_bench_thread(void *arg, uint32_t id)
{
	struct mesh_bench *mb = arg;
	struct loop loop;

	pin_self(mb->cpus[id]);
	int ret = loop_init(&loop, BENCH_LOOP_ENTRIES, mb->explain, sizeof(mb->explain));
	if (ret < 0) {
		fprintf(stderr, "ringbench: shard %u: %s\n", id, mb->explain);
		exit(1);
	}
	mesh_set_handler(mb->mesh, id, id == 0 ? mesh_bench_shard0 : mesh_bench_shard1, mb);
	ret = mesh_attach(mb->mesh, id, &loop);
	ASSERT(ret == 0);
	atomic_store(&mb->ring_fd[id], loop_ring_fd(&loop));
	pthread_barrier_wait(&mb->ready);

	if (id == 0) {
		uint64_t total = mb->warmup + mb->requests;
		while (mb->sent < total && mb->sent < mb->window)
			mesh_bench_send(mb);
		while (mb->replies < total) {
			ret = loop_run_once(&loop, true);
			if (ret < 0) {
				mb->error = ret;
				break;
			}
		}
		mb->end_s = now_s();
		atomic_store_explicit(&mb->pr->finished, true, memory_order_release);
		loop_queue_msg_ring(&loop, atomic_load(&mb->ring_fd[1]), LOOP_KIND_STOP, 0);
		loop_run_once(&loop, false);
	} else {
		ret = loop_run(&loop);
		if (ret < 0)
			mb->error = ret;
	}
	/* Nobody sends after this; keep both rings open until both are past sending. */
	pthread_barrier_wait(&mb->done);
	mesh_detach(mb->mesh, id);
	loop_destroy(&loop);
	return NULL;
}

static void *mesh_bench_thread0(void *arg)
{
	return mesh_bench_thread(arg, 0);
}

static void *mesh_bench_thread1(void *arg)
{
	return mesh_bench_thread(arg, 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct mesh_result {
	double per_s;				/* round trips per second */
	double mean_us, p50_us, p99_us, max_us; /* window 1 only */
	uint64_t wakeups0, wakeups1;		/* MSG_RINGs each shard posted */
};

static struct mesh_result bench_mesh(const struct options *opt, uint64_t requests, uint32_t window,
				     const char *name)
{
	struct progress pr = {0};
	struct mesh_bench mb = {
	    .requests = requests,
	    .warmup = BENCH_WARMUP_ROUNDTRIPS,
	    .window = window,
	    .cpus = {opt->cpus[0], opt->cpus[1]},
	    .pr = &pr,
	};
	struct mesh_result res = {0};
	pthread_t t0, t1;

	int ret = mesh_create(&mb.mesh, 2, LIMITS_RING_SLOTS);
	if (ret < 0) {
		fprintf(stderr, "ringbench: mesh_create: %s\n", strerror(-ret));
		exit(1);
	}
	if (window > mesh_request_window(mb.mesh)) {
		fprintf(stderr, "ringbench: --window %u exceeds the mesh's request window %u\n",
			window, mesh_request_window(mb.mesh));
		exit(2);
	}
	if (window == 1) {
		mb.rtt_ns = calloc(requests, sizeof(*mb.rtt_ns));
		mb.sent_ns = calloc(1, sizeof(*mb.sent_ns));
		if (!mb.rtt_ns || !mb.sent_ns) {
			fprintf(stderr, "ringbench: out of memory\n");
			exit(1);
		}
	}
	atomic_init(&mb.ring_fd[0], -1);
	atomic_init(&mb.ring_fd[1], -1);
	pthread_barrier_init(&mb.ready, NULL, 2);
	pthread_barrier_init(&mb.done, NULL, 2);
	if (pthread_create(&t1, NULL, mesh_bench_thread1, &mb) != 0 ||
	    pthread_create(&t0, NULL, mesh_bench_thread0, &mb) != 0) {
		fprintf(stderr, "ringbench: cannot start threads\n");
		exit(1);
	}
	monitor(name, &pr, requests + mb.warmup, "round trips");
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
	if (mb.error < 0 || mb.bad_replies) {
		fprintf(stderr, "ringbench: %s: loop error %s, %llu bad replies\n", name,
			strerror(-mb.error), (unsigned long long)mb.bad_replies);
		exit(1);
	}
	struct mesh_stats s0, s1;
	mesh_stats(mb.mesh, 0, &s0);
	mesh_stats(mb.mesh, 1, &s1);
	res.wakeups0 = s0.wakeups_sent;
	res.wakeups1 = s1.wakeups_sent;
	res.per_s = (double)requests / (mb.end_s - mb.start_s);
	if (mb.rtt_ns) {
		double sum = 0;
		for (uint64_t i = 0; i < requests; i++)
			sum += (double)mb.rtt_ns[i];
		qsort(mb.rtt_ns, requests, sizeof(*mb.rtt_ns), cmp_u64);
		res.mean_us = sum / (double)requests / 1e3;
		res.p50_us = mb.rtt_ns[(requests - 1) * 50 / 100] / 1e3;
		res.p99_us = mb.rtt_ns[(requests - 1) * 99 / 100] / 1e3;
		res.max_us = mb.rtt_ns[requests - 1] / 1e3;
	}
	free(mb.rtt_ns);
	free(mb.sent_ns);
	pthread_barrier_destroy(&mb.ready);
	pthread_barrier_destroy(&mb.done);
	mesh_destroy(mb.mesh);
	return res;
}

/* --- driver ----------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-ringbench [options]\n"
		"Measures the SPSC ring and the shard mesh with two threads on two CPUs.\n"
		"\n"
		"  --phase P        all (default), line, ring, rtt or pipe\n"
		"  --messages N     messages through one ring per ring phase (default %llu)\n"
		"  --roundtrips N   mesh ping-pong round trips (default %llu)\n"
		"  --pipelined N    mesh requests in the pipelined phase (default %llu)\n"
		"  --window W       requests in flight in the pipelined phase (default %u)\n"
		"  --cpus A,B       the two CPUs to pin to (default: the first two allowed;\n"
		"                   unpinned when only one is allowed)\n"
		"  --help           this text\n"
		"\n"
		"Phases: line = one cache line bounced between the CPUs (the machine's floor\n"
		"for a cross-core hand-off); ring = messages/s through one ring, single and\n"
		"batch(%u) push/pop; rtt = request/reply round trip between two shards asleep\n"
		"in io_uring, woken by MSG_RING, beside two threads waking each other with a\n"
		"futex (the OS's floor); pipe = mesh throughput with W in flight.\n"
		"Build without --enable-debug for meaningful figures.\n",
		(unsigned long long)BENCH_DEFAULT_MESSAGES,
		(unsigned long long)BENCH_DEFAULT_ROUNDTRIPS,
		(unsigned long long)BENCH_DEFAULT_PIPELINED, BENCH_DEFAULT_WINDOW, BENCH_BATCH);
}

static uint64_t parse_count(const char *s, const char *flag)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0) {
		fprintf(stderr, "ringbench: %s wants a positive integer, got '%s'\n", flag, s);
		exit(2);
	}
	return v;
}

/* The first two CPUs this process may run on, or -1s when there are fewer. */
static void default_cpus(int cpus[2])
{
	cpu_set_t set;
	cpus[0] = cpus[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	int found = 0, first = -1;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (found == 0)
			first = c;
		else
			cpus[0] = first, cpus[1] = c;
		found++;
	}
}

static bool phase_on(const struct options *opt, const char *name)
{
	return strcmp(opt->phase, "all") == 0 || strcmp(opt->phase, name) == 0;
}

int main(int argc, char **argv)
{
	struct options opt = {
	    .phase = "all",
	    .messages = BENCH_DEFAULT_MESSAGES,
	    .roundtrips = BENCH_DEFAULT_ROUNDTRIPS,
	    .pipelined = BENCH_DEFAULT_PIPELINED,
	    .window = BENCH_DEFAULT_WINDOW,
	};
	static const struct option longopts[] = {
	    {"phase", required_argument, NULL, 'P'},
	    {"messages", required_argument, NULL, 'm'},
	    {"roundtrips", required_argument, NULL, 'r'},
	    {"pipelined", required_argument, NULL, 'p'},
	    {"window", required_argument, NULL, 'w'},
	    {"cpus", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool cpus_given = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'P':
			opt.phase = optarg;
			break;
		case 'm':
			opt.messages = parse_count(optarg, "--messages");
			break;
		case 'r':
			opt.roundtrips = parse_count(optarg, "--roundtrips");
			break;
		case 'p':
			opt.pipelined = parse_count(optarg, "--pipelined");
			break;
		case 'w':
			opt.window = (uint32_t)parse_count(optarg, "--window");
			break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &opt.cpus[0], &opt.cpus[1]) != 2 ||
			    opt.cpus[0] < 0 || opt.cpus[1] < 0) {
				fprintf(stderr, "ringbench: --cpus wants A,B, got '%s'\n", optarg);
				return 2;
			}
			cpus_given = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	const char *phases[] = {"all", "line", "ring", "rtt", "pipe"};
	bool known = false;
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		known |= strcmp(opt.phase, phases[i]) == 0;
	if (!known) {
		fprintf(stderr, "ringbench: unknown --phase '%s'\n", opt.phase);
		return 2;
	}
	if (!cpus_given)
		default_cpus(opt.cpus);

	printf("ringbench: cpus %d,%d%s; %s build; ring of %u slots of %zu bytes\n", opt.cpus[0],
	       opt.cpus[1], opt.cpus[0] < 0 ? " (unpinned: fewer than 2 CPUs allowed)" : "",
	       ASSERT_DEBUG_BUILD ? "DEBUG (figures not representative)" : "release",
	       LIMITS_RING_SLOTS, sizeof(struct ring_msg));
	fflush(stdout);

	double line_ns = -1, wake_us = -1, wake_max_us = 0, single = -1, batch = -1;
	struct mesh_result rtt = {0}, pipe = {0};
	if (phase_on(&opt, "line"))
		line_ns = bench_line(&opt);
	if (phase_on(&opt, "ring")) {
		single = bench_ring(&opt, 1, "ring-single");
		batch = bench_ring(&opt, BENCH_BATCH, "ring-batch32");
	}
	if (phase_on(&opt, "rtt")) {
		wake_us = bench_wake(&opt, &wake_max_us);
		rtt = bench_mesh(&opt, opt.roundtrips, 1, "mesh-rtt");
	}
	if (phase_on(&opt, "pipe"))
		pipe = bench_mesh(&opt, opt.pipelined, opt.window, "mesh-pipe");

	printf("ringbench summary:\n");
	if (line_ns >= 0)
		printf("  cache-line ping-pong (machine floor)  %8.1f ns per round trip\n",
		       line_ns);
	if (single >= 0) {
		printf("  ring single push/pop                  %8.2f M msg/s  (%llu messages)\n",
		       single / 1e6, (unsigned long long)opt.messages);
		printf("  ring batch(%u) push/pop               %8.2f M msg/s  (%llu messages)\n",
		       BENCH_BATCH, batch / 1e6, (unsigned long long)opt.messages);
	}
	if (wake_us >= 0)
		printf("  futex ping-pong (OS wake-up floor)    p50 %.2f us  max %.1f us  (%llu "
		       "round trips)\n",
		       wake_us, wake_max_us, BENCH_WAKE_ROUNDTRIPS);
	if (rtt.per_s > 0)
		printf(
		    "  mesh round trip (MSG_RING wake-ups)   mean %.2f us  p50 %.2f us  p99 %.2f "
		    "us  max %.1f us  (%llu round trips, %.0f/s)\n",
		    rtt.mean_us, rtt.p50_us, rtt.p99_us, rtt.max_us,
		    (unsigned long long)opt.roundtrips, rtt.per_s);
	if (pipe.per_s > 0)
		printf("  mesh pipelined (window %u)           %8.2f M round trips/s  (%llu "
		       "requests; wake-ups %llu + %llu)\n",
		       opt.window, pipe.per_s / 1e6, (unsigned long long)opt.pipelined,
		       (unsigned long long)pipe.wakeups0, (unsigned long long)pipe.wakeups1);
	return 0;
}
