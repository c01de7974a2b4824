/*
 * core/mesh.c: the shard mesh of core/mesh.h: allocation of the N x (N - 1) rings, the
 * per-shard wake-pending flags and dirty sets, the MSG_RING wake-up protocol, the
 * bounded drain with its self re-arm, the request window and the counters. It does not
 * run loops or look inside messages beyond the MESH_OP_REPLY bit.
 *
 * The wake-up protocol, and why no message is ever left unseen:
 *
 *   sender S (per loop turn)                 receiver R (on a MESH_WAKE completion)
 *   ------------------------                 -------------------------------------
 *   push into ring[S][R] (release tail)      xchg(R.wake_pending, 0)        (1)
 *   mark R dirty                             pop from every ring[*][R] (acquire tail)
 *   hook: if xchg(R.wake_pending, 1) == 0    if a ring still has messages:
 *            queue MSG_RING to R        (2)      if xchg(R.wake_pending, 1) == 0
 *                                                    queue MSG_RING to R itself
 *
 * Every write to wake_pending is an atomic exchange (a read-modify-write), so all of
 * them form one release sequence in the flag's modification order. Take a message that
 * S pushed before its exchange (2). If (2) read 0, S posts a fresh wake-up and R runs
 * (1) and a drain after it. If (2) read 1, the flag had been set and not yet cleared, so
 * R's next clear (1) comes after (2) in the flag's order; (1) is an acquire RMW that
 * reads (2)'s value or a later RMW's, hence synchronises with (2), and the pop after (1)
 * sees S's push. Either way a drain that sees the message follows it. Clearing with a
 * plain store instead of an exchange would break that chain, and clearing after the
 * pops instead of before could wipe out the flag of a push made during the drain.
 */
#include "core/mesh.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/logger.h"

#define MESH_DIRTY_WORDS ((LIMITS_SHARDS_MAX + 63) / 64)

/*
 * One shard's side of the mesh. The flag is the only field other shards write, so it
 * has a line of its own; ring_fd is written once per attach and read by peers on every
 * wake-up, so it lives apart from the owner's busy fields; everything after it is
 * written only by the owning shard's thread.
 */
struct mesh_shard {
	/* Line written by peers. */
	alignas(LIMITS_CACHE_LINE_BYTES) _Atomic uint32_t wake_pending; /* a wake-up is owed */

	/* Line read by peers: the loop's ring fd, -1 while not attached. */
	alignas(LIMITS_CACHE_LINE_BYTES) _Atomic int ring_fd;

	/* Owner-only from here on. */
	alignas(LIMITS_CACHE_LINE_BYTES) struct mesh *mesh; /* back pointer for callbacks */
	uint32_t id;					    /* this shard's index */
	struct loop *loop;				    /* set by mesh_attach, NULL before */
	mesh_handler_fn handler;			    /* NULL: mesh_default_handler */
	void *handler_ctx;				    /* first argument of handler */
	uint64_t dirty[MESH_DIRTY_WORDS]; /* targets sent to since the last flush */
	/* Counters of struct mesh_stats. Single writer, so relaxed load + store (no RMW);
	 * atomic only so that mesh_stats may read them from another thread. */
	_Atomic uint64_t sent;			 /* messages pushed */
	_Atomic uint64_t received;		 /* messages popped and handled */
	_Atomic uint64_t full;			 /* sends refused with -EAGAIN */
	_Atomic uint64_t wakeups_sent;		 /* MSG_RINGs posted to peers */
	_Atomic uint64_t rearms;		 /* MSG_RINGs posted to itself */
	uint32_t outstanding[LIMITS_SHARDS_MAX]; /* requests to each peer awaiting a reply */
};

struct mesh {
	uint32_t shard_count;	   /* N */
	uint32_t ring_capacity;	   /* slots of each ring */
	uint32_t request_window;   /* ring_capacity / 2, see the convention in mesh.h */
	struct ring **rings;	   /* N * N, [from * N + to], NULL on the diagonal */
	struct mesh_shard *shards; /* N, cache-line aligned */
};

/* Single-writer counter: only the owning thread adds, so no RMW is needed; relaxed
 * atomics just keep mesh_stats readers on other threads free of data races. */
static inline void mesh_count(_Atomic uint64_t *counter, uint64_t add)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + add,
			      memory_order_relaxed);
}

static inline struct ring *mesh_ring(const struct mesh *mesh, uint32_t from, uint32_t to)
{
	return mesh->rings[(size_t)from * mesh->shard_count + to];
}

int mesh_create(struct mesh **out, uint32_t shard_count, uint32_t ring_capacity)
{
	if (shard_count == 0 || shard_count > LIMITS_SHARDS_MAX)
		return -EINVAL;
	if (ring_capacity < 2 || ring_capacity > LIMITS_RING_SLOTS_MAX ||
	    (ring_capacity & (ring_capacity - 1)) != 0)
		return -EINVAL;

	struct mesh *mesh = calloc(1, sizeof(*mesh));
	if (!mesh)
		return -ENOMEM;
	mesh->shard_count = shard_count;
	mesh->ring_capacity = ring_capacity;
	mesh->request_window = ring_capacity / 2;

	size_t shard_bytes = (size_t)shard_count * sizeof(struct mesh_shard);
	mesh->shards = aligned_alloc(LIMITS_CACHE_LINE_BYTES, shard_bytes);
	if (!mesh->shards)
		goto out_free_mesh;
	memset(mesh->shards, 0, shard_bytes);
	for (uint32_t i = 0; i < shard_count; i++) {
		struct mesh_shard *sh = &mesh->shards[i];
		sh->mesh = mesh;
		sh->id = i;
		atomic_init(&sh->wake_pending, 0);
		atomic_init(&sh->ring_fd, -1);
	}

	mesh->rings = calloc((size_t)shard_count * shard_count, sizeof(*mesh->rings));
	if (!mesh->rings)
		goto out_free_shards;
	size_t bytes = ring_bytes(ring_capacity);
	for (uint32_t from = 0; from < shard_count; from++) {
		for (uint32_t to = 0; to < shard_count; to++) {
			if (from == to)
				continue;
			struct ring *r = aligned_alloc(LIMITS_CACHE_LINE_BYTES, bytes);
			if (!r)
				goto out_free_rings;
			ring_init(r, ring_capacity);
			mesh->rings[(size_t)from * shard_count + to] = r;
		}
	}
	/* The shard threads are started after this returns, which publishes all of the
	 * above to them. */
	*out = mesh;
	return 0;

out_free_rings:
	for (size_t i = 0; i < (size_t)shard_count * shard_count; i++)
		free(mesh->rings[i]);
	free(mesh->rings);
out_free_shards:
	free(mesh->shards);
out_free_mesh:
	free(mesh);
	LOG_ERROR("mesh: cannot allocate %u x %u rings of %u slots", shard_count, shard_count,
		  ring_capacity);
	return -ENOMEM;
}

void mesh_destroy(struct mesh *mesh)
{
	if (!mesh)
		return;
	for (size_t i = 0; i < (size_t)mesh->shard_count * mesh->shard_count; i++)
		free(mesh->rings[i]);
	free(mesh->rings);
	free(mesh->shards);
	free(mesh);
}

uint32_t mesh_shard_count(const struct mesh *mesh)
{
	return mesh->shard_count;
}

uint32_t mesh_request_window(const struct mesh *mesh)
{
	return mesh->request_window;
}

void mesh_set_handler(struct mesh *mesh, uint32_t shard, mesh_handler_fn fn, void *ctx)
{
	ASSERT(shard < mesh->shard_count);
	mesh->shards[shard].handler = fn;
	mesh->shards[shard].handler_ctx = ctx;
}

/* Used when a shard set no handler: nothing is lost silently. Requests go back with
 * -EOPNOTSUPP (and their payload); a reply nobody waits for is logged. */
static void mesh_default_handler(void *ctx, uint32_t from, const struct ring_msg *msg)
{
	struct mesh_shard *sh = ctx;

	if (mesh_op_is_reply(msg->op)) {
		LOG_WARN("mesh: shard %u dropped a reply from shard %u (op %u): no handler", sh->id,
			 from, msg->op & ~MESH_OP_REPLY);
		return;
	}
	int ret = mesh_reply(sh->mesh, sh->id, from, msg, -EOPNOTSUPP, msg->payload, 0);
	ASSERT(ret == 0); /* the request window guarantees room for replies */
}

static void mesh_on_wake(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct mesh_shard *sh = ctx;

	if (sh->handler)
		mesh_drain(sh->mesh, sh->id, sh->handler, sh->handler_ctx);
	else
		mesh_drain(sh->mesh, sh->id, mesh_default_handler, sh);
}

static void mesh_flush_hook(void *ctx, struct loop *loop)
{
	struct mesh_shard *sh = ctx;
	mesh_flush_wakeups(sh->mesh, sh->id, loop);
}

int mesh_attach(struct mesh *mesh, uint32_t shard, struct loop *loop)
{
	if (shard >= mesh->shard_count)
		return -EINVAL;
	struct mesh_shard *sh = &mesh->shards[shard];
	if (sh->loop)
		return -EINVAL;

	int ret = loop_add_hook_last(loop, mesh_flush_hook, sh);
	if (ret < 0)
		return ret;
	loop_on(loop, LOOP_KIND_MESH_WAKE, mesh_on_wake, sh);
	sh->loop = loop;
	/* Release: a peer that reads this fd (acquire) also sees the ring was created;
	 * the fd is only a number for MSG_RING, so nothing else rides on this edge. */
	atomic_store_explicit(&sh->ring_fd, loop_ring_fd(loop), memory_order_release);
	return 0;
}

void mesh_detach(struct mesh *mesh, uint32_t shard)
{
	ASSERT(shard < mesh->shard_count);
	/* Release pairs with the acquire in mesh_flush_wakeups; after it peers skip us. */
	atomic_store_explicit(&mesh->shards[shard].ring_fd, -1, memory_order_release);
}

int mesh_send(struct mesh *mesh, uint32_t from, uint32_t to, const struct ring_msg *msg)
{
	ASSERT(from < mesh->shard_count && to < mesh->shard_count && from != to);
	struct mesh_shard *sh = &mesh->shards[from];
	bool request = !mesh_op_is_reply(msg->op);

	if (request && sh->outstanding[to] >= mesh->request_window) {
		mesh_count(&sh->full, 1);
		return -EAGAIN;
	}
	/* ring_push publishes the message with a release-store of the ring's tail; the
	 * flush's exchange on the target's flag comes after it in this thread. */
	if (!ring_push(mesh_ring(mesh, from, to), msg)) {
		mesh_count(&sh->full, 1);
		return -EAGAIN;
	}
	if (request)
		sh->outstanding[to]++;
	sh->dirty[to / 64] |= UINT64_C(1) << (to % 64);
	mesh_count(&sh->sent, 1);
	return 0;
}

int mesh_reply(struct mesh *mesh, uint32_t self, uint32_t to, const struct ring_msg *request,
	       int32_t status, void *payload, uint64_t arg)
{
	struct ring_msg reply = {
	    .op = request->op | MESH_OP_REPLY,
	    .status = status,
	    .cookie = request->cookie,
	    .payload = payload,
	    .arg = arg,
	};
	return mesh_send(mesh, self, to, &reply);
}

void mesh_flush_wakeups(struct mesh *mesh, uint32_t from, struct loop *loop)
{
	ASSERT(from < mesh->shard_count);
	struct mesh_shard *sh = &mesh->shards[from];
	uint32_t words = (mesh->shard_count + 63) / 64;
	uint64_t posted = 0;

	for (uint32_t w = 0; w < words; w++) {
		uint64_t bits = sh->dirty[w];
		while (bits) {
			uint32_t to = w * 64 + (uint32_t)__builtin_ctzll(bits);
			uint64_t bit = bits & -bits;
			bits &= bits - 1;
			struct mesh_shard *target = &mesh->shards[to];
			/* Acquire pairs with mesh_attach's release: not needed for the
			 * messages (the flag below orders those), only for a sane fd. */
			int fd = atomic_load_explicit(&target->ring_fd, memory_order_acquire);
			if (fd < 0)
				continue; /* not attached yet: stays dirty, retried next turn */
			sh->dirty[w] &= ~bit;
			/* Seq_cst RMW (acq_rel would do): its release half orders every push
			 * above before it, and as an RMW it continues the flag's release
			 * sequence, so the receiver's clearing exchange synchronises with it
			 * (see the protocol at the top of this file). Reading 1 means a
			 * wake-up is already owed and its drain will see our messages. */
			if (atomic_exchange_explicit(&target->wake_pending, 1,
						     memory_order_seq_cst) == 0) {
				loop_queue_msg_ring(loop, fd, LOOP_KIND_MESH_WAKE, from);
				posted++;
			}
		}
	}
	if (posted)
		mesh_count(&sh->wakeups_sent, posted);
}

uint32_t mesh_drain(struct mesh *mesh, uint32_t self, mesh_handler_fn fn, void *ctx)
{
	ASSERT(self < mesh->shard_count);
	struct mesh_shard *sh = &mesh->shards[self];
	struct ring_msg batch[LIMITS_MESH_DRAIN_BATCH];
	uint32_t handled = 0;
	bool more = false;

	/* Clear FIRST, with an RMW (seq_cst; acq_rel would do): its acquire half
	 * synchronises with the exchange of every sender whose wake-up we are answering
	 * or who found the flag still set, so every pop below sees those senders' pushes.
	 * A push that lands after this clear finds the flag clear and posts a new
	 * wake-up, so nothing pushed during the drain is stranded. */
	atomic_exchange_explicit(&sh->wake_pending, 0, memory_order_seq_cst);

	/* Start after ourselves so low-numbered peers are not always served first. */
	for (uint32_t k = 1; k < mesh->shard_count; k++) {
		uint32_t from = (self + k) % mesh->shard_count;
		struct ring *r = mesh_ring(mesh, from, self);
		/* Pop first, then handle: the slots are free for the sender again before
		 * the handler runs (and perhaps sends). */
		uint32_t got = ring_pop_batch(r, batch, LIMITS_MESH_DRAIN_BATCH);
		for (uint32_t i = 0; i < got; i++) {
			if (mesh_op_is_reply(batch[i].op)) {
				/* A reply for a request we never sent breaks the window's
				 * guarantee; it is a bug in a handler, not bad input. */
				ASSERT(sh->outstanding[from] > 0);
				sh->outstanding[from]--;
			}
			fn(ctx, from, &batch[i]);
		}
		handled += got;
		if (got == LIMITS_MESH_DRAIN_BATCH && !ring_empty(r))
			more = true;
	}
	if (handled)
		mesh_count(&sh->received, handled);

	/* Re-arm rather than loop: the shard's sockets and disk completions get their
	 * turn before the next batch. The exchange follows the same protocol as a
	 * sender's; if a peer set the flag meanwhile, its wake-up serves us. */
	if (more && sh->loop) {
		int fd = atomic_load_explicit(&sh->ring_fd, memory_order_relaxed);
		if (fd >= 0 &&
		    atomic_exchange_explicit(&sh->wake_pending, 1, memory_order_seq_cst) == 0) {
			loop_queue_msg_ring(sh->loop, fd, LOOP_KIND_MESH_WAKE, self);
			mesh_count(&sh->rearms, 1);
		}
	}
	return handled;
}

void mesh_stats(const struct mesh *mesh, uint32_t shard, struct mesh_stats *out)
{
	ASSERT(shard < mesh->shard_count);
	const struct mesh_shard *sh = &mesh->shards[shard];
	/* Relaxed: counters are statistics; no other data is read through them. */
	out->sent = atomic_load_explicit(&sh->sent, memory_order_relaxed);
	out->received = atomic_load_explicit(&sh->received, memory_order_relaxed);
	out->full = atomic_load_explicit(&sh->full, memory_order_relaxed);
	out->wakeups_sent = atomic_load_explicit(&sh->wakeups_sent, memory_order_relaxed);
	out->rearms = atomic_load_explicit(&sh->rearms, memory_order_relaxed);
}
