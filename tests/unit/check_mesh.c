/*
 * tests/unit/check_mesh.c: Check tests of the shard mesh (core/mesh.h) on real io_uring
 * loops: N = 2, 3 and 4 unpinned threads exchanging requests and replies between every
 * ordered pair with backpressure, wake-up coalescing (a count of MSG_RING wake-ups, not
 * a timing), the request window and its -EAGAIN, the self re-arm when a ring holds more
 * than one drain batch, and the default answer of a shard without a handler. It does not
 * test the SPSC ring's own edge cases (check_ring.c does). Without a usable io_uring
 * the whole program reports a TAP skip with the reason.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/mesh.h"
#include "io/loop.h"
#include "tests/unit/unit.h"

#define XCHG_SHARDS_MAX 4
/* Requests each ordered pair of shards exchanges. */
#define XCHG_REQUESTS 10000u
/* Small rings so the window (256) and full rings are hit often; larger than one drain
 * batch so the re-arm path runs too. */
#define XCHG_RING_CAPACITY 512u
/* Requests a shard sends to one peer per loop turn at most. */
#define XCHG_BURST 64u
/* Submission entries of each test loop. */
#define TEST_LOOP_ENTRIES 256u
/* The operation of test requests. */
#define TEST_OP_ECHO 7u

_Static_assert(XCHG_RING_CAPACITY > LIMITS_MESH_DRAIN_BATCH,
	       "the exchange test wants rings that can outgrow one drain batch");

static uint64_t request_arg(uint32_t from, uint32_t to, uint64_t seq)
{
	return (((uint64_t)from << 40) | ((uint64_t)to << 32)) + seq * 3;
}

/* --- N threads, every ordered pair exchanges XCHG_REQUESTS ---------------------- */

struct xchg_shared {
	struct mesh *mesh;
	uint32_t n;			       /* shards taking part */
	pthread_barrier_t attached;	       /* all loops attached before any send */
	_Atomic uint32_t init_failed;	       /* threads whose loop could not start */
	_Atomic uint32_t done;		       /* threads that got all their replies */
	_Atomic int ring_fds[XCHG_SHARDS_MAX]; /* for the final LOOP_KIND_TEST wake */
};

struct xchg_thread {
	struct xchg_shared *shared;
	uint32_t id;
	pthread_t thread;
	struct loop loop;
	uint32_t next_send[XCHG_SHARDS_MAX]; /* next request sequence to each peer */
	uint32_t replies[XCHG_SHARDS_MAX];   /* good replies from each peer */
	uint8_t *seen[XCHG_SHARDS_MAX];	     /* XCHG_REQUESTS flags per peer */
	uint64_t requests_handled;	     /* requests answered */
	uint64_t bad_replies;		     /* wrong value, status, payload or cookie */
	uint64_t duplicate_replies;	     /* cookie seen twice */
	uint64_t failed_replies;	     /* mesh_reply did not return 0 */
	uint64_t send_errors;		     /* mesh_send returned neither 0 nor -EAGAIN */
	int error;			     /* loop_init/attach/run failure, or 0 */
	char explain[256];		     /* loop_init's explanation */
};

static void xchg_on_message(void *ctx, uint32_t from, const struct ring_msg *msg)
{
	struct xchg_thread *t = ctx;
	struct mesh *mesh = t->shared->mesh;

	if (!mesh_op_is_reply(msg->op)) {
		t->requests_handled++;
		if (mesh_reply(mesh, t->id, from, msg, 0, msg->payload, msg->arg + 1) != 0)
			t->failed_replies++;
		return;
	}
	uint64_t seq = msg->cookie;
	if (seq >= XCHG_REQUESTS || msg->op != (TEST_OP_ECHO | MESH_OP_REPLY) || msg->status != 0 ||
	    msg->arg != request_arg(t->id, from, seq) + 1 ||
	    msg->payload != (void *)(uintptr_t)(seq + 1)) {
		t->bad_replies++;
		return;
	}
	if (t->seen[from][seq]) {
		t->duplicate_replies++;
		return;
	}
	t->seen[from][seq] = 1;
	t->replies[from]++;
}

static void xchg_on_test_wake(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	/* Only wakes the loop up so the thread re-reads the done counter. */
}

/* Sends up to one burst to each peer. Returns true when some peer still has requests
 * to send that were not refused with -EAGAIN, i.e. the thread should not sleep. */
static bool xchg_send_burst(struct xchg_thread *t)
{
	struct xchg_shared *sh = t->shared;
	bool more = false;

	for (uint32_t to = 0; to < sh->n; to++) {
		if (to == t->id)
			continue;
		uint32_t burst = 0;
		while (t->next_send[to] < XCHG_REQUESTS && burst < XCHG_BURST) {
			uint64_t seq = t->next_send[to];
			struct ring_msg m = {
			    .op = TEST_OP_ECHO,
			    .cookie = seq,
			    .payload = (void *)(uintptr_t)(seq + 1),
			    .arg = request_arg(t->id, to, seq),
			};
			int ret = mesh_send(sh->mesh, t->id, to, &m);
			if (ret == -EAGAIN)
				break; /* backpressure: replies will wake us */
			if (ret != 0) {
				t->send_errors++;
				break;
			}
			t->next_send[to]++;
			burst++;
		}
		if (burst == XCHG_BURST && t->next_send[to] < XCHG_REQUESTS)
			more = true;
	}
	return more;
}

static bool xchg_all_replied(const struct xchg_thread *t)
{
	for (uint32_t p = 0; p < t->shared->n; p++)
		if (p != t->id && t->replies[p] != XCHG_REQUESTS)
			return false;
	return true;
}

static void *xchg_main(void *arg)
{
	struct xchg_thread *t = arg;
	struct xchg_shared *sh = t->shared;
	bool finished = false, loop_live = false;

	/* SINGLE_ISSUER: the loop is created by the thread that will submit on it. */
	t->error = loop_init(&t->loop, TEST_LOOP_ENTRIES, t->explain, sizeof(t->explain));
	if (t->error == 0) {
		mesh_set_handler(sh->mesh, t->id, xchg_on_message, t);
		t->error = mesh_attach(sh->mesh, t->id, &t->loop);
		if (t->error != 0)
			loop_destroy(&t->loop);
	}
	if (t->error == 0) {
		loop_live = true;
		loop_on(&t->loop, LOOP_KIND_TEST, xchg_on_test_wake, t);
		atomic_store(&sh->ring_fds[t->id], loop_ring_fd(&t->loop));
	} else {
		atomic_fetch_add(&sh->init_failed, 1);
	}
	pthread_barrier_wait(&sh->attached);
	if (atomic_load(&sh->init_failed) != 0)
		goto out_destroy;

	for (;;) {
		bool more = xchg_send_burst(t);
		if (!finished && xchg_all_replied(t)) {
			finished = true;
			atomic_fetch_add(&sh->done, 1);
			/* Peers may be asleep with nothing left to do but wait for us: wake
			 * each once so it re-reads the counter. */
			for (uint32_t p = 0; p < sh->n; p++)
				if (p != t->id)
					loop_queue_msg_ring(&t->loop, atomic_load(&sh->ring_fds[p]),
							    LOOP_KIND_TEST, t->id);
		}
		if (finished && atomic_load(&sh->done) == sh->n)
			break;
		int ret = loop_run_once(&t->loop, !more);
		if (ret < 0) {
			t->error = ret;
			break;
		}
	}
	/* Submit what the last turn queued (the final wakes to the peers), then wait
	 * until every thread has, so no MSG_RING targets a ring already closed. */
	loop_run_once(&t->loop, false);
	pthread_barrier_wait(&sh->attached);

out_destroy:
	if (loop_live) {
		mesh_detach(sh->mesh, t->id);
		loop_destroy(&t->loop);
	}
	return NULL;
}

START_TEST(test_exchange)
{
	const uint32_t n = (uint32_t)_i; /* 2, 3, 4: loop test */
	struct xchg_shared sh = {.n = n};
	struct xchg_thread threads[XCHG_SHARDS_MAX];

	ck_assert_int_eq(mesh_create(&sh.mesh, n, XCHG_RING_CAPACITY), 0);
	ck_assert_int_eq(pthread_barrier_init(&sh.attached, NULL, n), 0);
	memset(threads, 0, sizeof(threads));
	for (uint32_t i = 0; i < n; i++) {
		threads[i].shared = &sh;
		threads[i].id = i;
		atomic_init(&sh.ring_fds[i], -1);
		for (uint32_t p = 0; p < n; p++) {
			threads[i].seen[p] = calloc(XCHG_REQUESTS, 1);
			ck_assert_ptr_nonnull(threads[i].seen[p]);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&threads[i].thread, NULL, xchg_main, &threads[i]),
				 0);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(threads[i].thread, NULL), 0);

	for (uint32_t i = 0; i < n; i++) {
		struct xchg_thread *t = &threads[i];
		ck_assert_msg(t->error == 0, "shard %u: %s (%s)", i, strerror(-t->error),
			      t->explain);
		for (uint32_t p = 0; p < n; p++)
			if (p != i)
				ck_assert_msg(t->replies[p] == XCHG_REQUESTS,
					      "shard %u got %u of %u replies from shard %u", i,
					      t->replies[p], XCHG_REQUESTS, p);
		ck_assert_uint_eq(t->bad_replies, 0);
		ck_assert_uint_eq(t->duplicate_replies, 0);
		ck_assert_uint_eq(t->failed_replies, 0);
		ck_assert_uint_eq(t->send_errors, 0);
		ck_assert_uint_eq(t->requests_handled, (uint64_t)XCHG_REQUESTS * (n - 1));

		struct mesh_stats st;
		mesh_stats(sh.mesh, i, &st);
		/* Every request and every reply counted once on each side. */
		ck_assert_uint_eq(st.sent, 2ull * XCHG_REQUESTS * (n - 1));
		ck_assert_uint_eq(st.received, 2ull * XCHG_REQUESTS * (n - 1));
		ck_assert_uint_gt(st.wakeups_sent, 0);
		for (uint32_t p = 0; p < n; p++)
			free(t->seen[p]);
	}
	pthread_barrier_destroy(&sh.attached);
	mesh_destroy(sh.mesh);
}
END_TEST

/* --- single-thread tests: two loops owned by the test thread ---------------------- */

struct pair {
	struct mesh *mesh;
	struct loop loops[2];
	uint64_t requests[2]; /* requests each shard received */
	uint64_t replies[2];  /* replies each shard received */
	int32_t last_status[2];
};

static void pair_on_message(void *ctx, uint32_t from, const struct ring_msg *msg)
{
	struct pair *p = ctx;
	uint32_t self = 1 - from;

	if (mesh_op_is_reply(msg->op)) {
		p->replies[self]++;
		p->last_status[self] = msg->status;
		return;
	}
	p->requests[self]++;
	ck_assert_int_eq(mesh_reply(p->mesh, self, from, msg, 0, msg->payload, msg->arg + 1), 0);
}

/* Both loops in this thread: SINGLE_ISSUER holds since this thread submits on both. */
static void pair_open(struct pair *p, uint32_t capacity, bool handler_on_1)
{
	char explain[256];

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(mesh_create(&p->mesh, 2, capacity), 0);
	for (uint32_t i = 0; i < 2; i++) {
		int ret = loop_init(&p->loops[i], TEST_LOOP_ENTRIES, explain, sizeof(explain));
		ck_assert_msg(ret == 0, "loop_init: %s", explain);
		if (i == 0 || handler_on_1)
			mesh_set_handler(p->mesh, i, pair_on_message, p);
		ck_assert_int_eq(mesh_attach(p->mesh, i, &p->loops[i]), 0);
	}
}

static void pair_close(struct pair *p)
{
	for (uint32_t i = 0; i < 2; i++) {
		mesh_detach(p->mesh, i);
		loop_destroy(&p->loops[i]);
	}
	mesh_destroy(p->mesh);
}

static struct ring_msg echo_request(uint64_t seq)
{
	struct ring_msg m = {.op = TEST_OP_ECHO, .cookie = seq, .arg = seq};
	return m;
}

START_TEST(test_wakeups_coalesced)
{
	enum { TURNS = 10, PER_TURN = 100 };
	struct pair p;
	pair_open(&p, LIMITS_RING_SLOTS, true);

	for (int turn = 0; turn < TURNS; turn++) {
		for (int i = 0; i < PER_TURN; i++) {
			struct ring_msg m = echo_request((uint64_t)turn * PER_TURN + i);
			ck_assert_int_eq(mesh_send(p.mesh, 0, 1, &m), 0);
		}
		/* One turn of shard 0: its flush hook posts the wake-up. */
		ck_assert_int_ge(loop_run_once(&p.loops[0], false), 0);
		/* Shard 1 sleeps until woken, then drains the whole turn's messages. */
		uint64_t before = p.requests[1];
		ck_assert_int_ge(loop_run_once(&p.loops[1], true), 1);
		ck_assert_uint_eq(p.requests[1] - before, PER_TURN);
	}
	/* Shard 1's replies also went out with one wake-up per turn at most; fetch them. */
	for (int guard = 0; guard < 100 && p.replies[0] < TURNS * PER_TURN; guard++) {
		ck_assert_int_ge(loop_run_once(&p.loops[1], false), 0);
		ck_assert_int_ge(loop_run_once(&p.loops[0], true), 0);
	}
	ck_assert_uint_eq(p.replies[0], TURNS * PER_TURN);

	struct mesh_stats s0, s1;
	mesh_stats(p.mesh, 0, &s0);
	mesh_stats(p.mesh, 1, &s1);
	ck_assert_uint_eq(s0.sent, TURNS * PER_TURN);
	ck_assert_uint_lt(s0.wakeups_sent, (TURNS * PER_TURN) / 10);
	ck_assert_uint_le(s0.wakeups_sent, TURNS); /* one per turn that sent */
	ck_assert_uint_lt(s1.wakeups_sent, (TURNS * PER_TURN) / 10);
	pair_close(&p);
}
END_TEST

START_TEST(test_window_backpressure)
{
	/* Capacity 64: each shard may have 32 requests outstanding to the other. No loops
	 * needed: send and drain are called by hand. */
	struct mesh *mesh;
	struct pair p;
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(mesh_create(&mesh, 2, 64), 0);
	p.mesh = mesh;
	mesh_set_handler(mesh, 0, pair_on_message, &p);
	mesh_set_handler(mesh, 1, pair_on_message, &p);
	const uint32_t window = mesh_request_window(mesh);
	ck_assert_uint_eq(window, 32);

	struct ring_msg m;
	for (uint32_t i = 0; i < window; i++) {
		m = echo_request(i);
		ck_assert_int_eq(mesh_send(mesh, 0, 1, &m), 0);
		m = echo_request(1000 + i);
		ck_assert_int_eq(mesh_send(mesh, 1, 0, &m), 0);
	}
	m = echo_request(window);
	ck_assert_int_eq(mesh_send(mesh, 0, 1, &m), -EAGAIN);
	ck_assert_int_eq(mesh_send(mesh, 1, 0, &m), -EAGAIN);

	/* Shard 1 answers all 32 requests into a ring already holding its own 32
	 * requests: the ring is now full, and no reply was refused (the handler
	 * asserts mesh_reply returned 0). */
	ck_assert_uint_eq(mesh_drain(mesh, 1, pair_on_message, &p), window);
	ck_assert_int_eq(mesh_send(mesh, 1, 0, &m), -EAGAIN); /* window still full */
	/* Shard 0 gets 32 requests and 32 replies and answers the requests. */
	ck_assert_uint_eq(mesh_drain(mesh, 0, pair_on_message, &p), 2 * window);
	ck_assert_uint_eq(p.replies[0], window);
	/* Its window is open again. */
	ck_assert_int_eq(mesh_send(mesh, 0, 1, &m), 0);
	ck_assert_uint_eq(mesh_drain(mesh, 1, pair_on_message, &p), window + 1);
	ck_assert_uint_eq(p.replies[1], window);

	struct mesh_stats s0, s1;
	mesh_stats(mesh, 0, &s0);
	mesh_stats(mesh, 1, &s1);
	ck_assert_uint_eq(s0.full, 1);
	ck_assert_uint_eq(s1.full, 2);
	ck_assert_uint_eq(s0.sent, 2 * window + 1);
	ck_assert_uint_eq(s1.received, 2 * window + 1);
	mesh_destroy(mesh);
}
END_TEST

START_TEST(test_drain_rearms)
{
	/* More than three drain batches in one ring, one wake-up: the receiver keeps
	 * itself awake until everything is handled, without another send. */
	enum { MESSAGES = 3 * LIMITS_MESH_DRAIN_BATCH + 100 };
	struct pair p;
	pair_open(&p, LIMITS_RING_SLOTS, true);
	ck_assert_uint_ge(mesh_request_window(p.mesh), MESSAGES);

	for (uint32_t i = 0; i < MESSAGES; i++) {
		struct ring_msg m = echo_request(i);
		ck_assert_int_eq(mesh_send(p.mesh, 0, 1, &m), 0);
	}
	ck_assert_int_ge(loop_run_once(&p.loops[0], false), 0);
	int turns = 0;
	while (p.requests[1] < MESSAGES && turns < 10) {
		/* Waiting is safe: each turn that leaves messages behind posted a re-arm. */
		ck_assert_int_ge(loop_run_once(&p.loops[1], true), 1);
		turns++;
	}
	ck_assert_uint_eq(p.requests[1], MESSAGES);
	ck_assert_int_eq(turns, 4);

	struct mesh_stats s0, s1;
	mesh_stats(p.mesh, 0, &s0);
	mesh_stats(p.mesh, 1, &s1);
	ck_assert_uint_eq(s0.wakeups_sent, 1);
	ck_assert_uint_eq(s1.rearms, 3);
	ck_assert_uint_eq(s1.received, MESSAGES);
	pair_close(&p);
}
END_TEST

START_TEST(test_unhandled_request_answered)
{
	/* Shard 1 has no handler: the request comes back with -EOPNOTSUPP. */
	struct pair p;
	pair_open(&p, 64, false);
	struct ring_msg m = echo_request(5);
	ck_assert_int_eq(mesh_send(p.mesh, 0, 1, &m), 0);
	ck_assert_int_ge(loop_run_once(&p.loops[0], false), 0);
	ck_assert_int_ge(loop_run_once(&p.loops[1], true), 1);
	for (int guard = 0; guard < 10 && p.replies[0] == 0; guard++) {
		ck_assert_int_ge(loop_run_once(&p.loops[1], false), 0);
		ck_assert_int_ge(loop_run_once(&p.loops[0], true), 0);
	}
	ck_assert_uint_eq(p.replies[0], 1);
	ck_assert_int_eq(p.last_status[0], -EOPNOTSUPP);
	pair_close(&p);
}
END_TEST

START_TEST(test_create_rejects_bad_sizes)
{
	struct mesh *mesh = NULL;
	ck_assert_int_eq(mesh_create(&mesh, 0, 64), -EINVAL);
	ck_assert_int_eq(mesh_create(&mesh, LIMITS_SHARDS_MAX + 1, 64), -EINVAL);
	ck_assert_int_eq(mesh_create(&mesh, 2, 100), -EINVAL); /* not a power of two */
	ck_assert_int_eq(mesh_create(&mesh, 2, 1), -EINVAL);   /* no room for a window */
	ck_assert_ptr_null(mesh);
	ck_assert_int_eq(mesh_create(&mesh, 1, 2), 0); /* one shard: no rings, valid */
	ck_assert_uint_eq(mesh_shard_count(mesh), 1);
	mesh_destroy(mesh);
	mesh_destroy(NULL);
}
END_TEST

static Suite *mesh_suite(void)
{
	Suite *s = suite_create("mesh");
	TCase *tc;

	tc = tcase_create("exchange_n_threads");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_exchange, 2, XCHG_SHARDS_MAX + 1);
	suite_add_tcase(s, tc);

	tc = tcase_create("wakeups_coalesced");
	tcase_add_test(tc, test_wakeups_coalesced);
	suite_add_tcase(s, tc);

	tc = tcase_create("window_backpressure");
	tcase_add_test(tc, test_window_backpressure);
	suite_add_tcase(s, tc);

	tc = tcase_create("drain_rearms");
	tcase_add_test(tc, test_drain_rearms);
	suite_add_tcase(s, tc);

	tc = tcase_create("unhandled_request_answered");
	tcase_add_test(tc, test_unhandled_request_answered);
	suite_add_tcase(s, tc);

	tc = tcase_create("create_rejects_bad_sizes");
	tcase_add_test(tc, test_create_rejects_bad_sizes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* The mesh needs io_uring with MSG_RING; say so instead of failing every case. */
	struct loop probe;
	char explain[256] = "";
	int ret = loop_init(&probe, 8, explain, sizeof(explain));
	if (ret < 0) {
		printf("1..0 # SKIP io_uring unusable here: %s\n", explain);
		return EXIT_SUCCESS;
	}
	bool msg_ring = probe.features.msg_ring;
	loop_destroy(&probe);
	if (!msg_ring) {
		printf("1..0 # SKIP the kernel lacks IORING_OP_MSG_RING (needs Linux 5.18+)\n");
		return EXIT_SUCCESS;
	}
	return unit_run(mesh_suite());
}
