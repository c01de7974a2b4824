/*
 * core/ring.h: the bounded lock-free single-producer/single-consumer ring that carries
 * fixed-size messages between two shard threads (DESIGN §2). One thread pushes, one
 * thread pops, nothing else touches the ring; there are no locks and no system calls,
 * only C11 atomics: the producer publishes with one release-store of the tail, the
 * consumer frees slots with one release-store of the head, and each side keeps a cached
 * copy of the other side's index on its own cache line so it reads the shared line only
 * when the cache says the ring looks full (producer) or empty (consumer). Memory is
 * allocated by the caller (ring_bytes() says how much, cache-line aligned), so a ring can
 * live in any NUMA-local or huge-page region. This module does not wake anybody up: the
 * mesh (core/mesh.h) adds IORING_OP_MSG_RING wake-ups, and it does not know what a
 * message means: op, cookie, payload and arg belong to the user.
 */
#ifndef SLUICE_CORE_RING_H
#define SLUICE_CORE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message: 32 bytes, two per cache line. */
struct ring_msg {
	uint32_t op;	 /* operation; its meaning is owned by the user (see MESH_OP_REPLY) */
	int32_t status;	 /* 0 or a negative errno / error code in replies */
	uint64_t cookie; /* sender's correlation token, returned unchanged in the reply */
	void *payload;	 /* a shard-owned buffer; its ownership travels with the message */
	uint64_t arg;	 /* small inline argument */
};
_Static_assert(sizeof(struct ring_msg) == 32, "struct ring_msg must stay 32 bytes");

/* Opaque: the layout (three cache lines of indexes, then the slots) is in ring.c. */
struct ring;

/* Bytes to allocate for a ring of CAPACITY slots, header included. CAPACITY must be a
 * power of two between 1 and LIMITS_RING_SLOTS_MAX (asserted). The result is a multiple
 * of LIMITS_CACHE_LINE_BYTES, so it can be passed to aligned_alloc() as is. */
size_t ring_bytes(uint32_t capacity);

/* Makes the memory at R (ring_bytes(CAPACITY) bytes, aligned to LIMITS_CACHE_LINE_BYTES,
 * both asserted where checkable) an empty ring. Must complete before the producer and
 * consumer threads start using it (publish R to them with a thread start, a barrier or a
 * release-store). */
void ring_init(struct ring *r, uint32_t capacity);

/* For tests only: like ring_init(), but both free-running indexes start at START_INDEX
 * instead of 0, so a test can make them wrap past UINT32_MAX after a few pushes. A ring
 * behaves the same whatever its start index. */
void ring_init_at(struct ring *r, uint32_t capacity, uint32_t start_index);

/* Producer side. Copies *M into the ring and returns true, or returns false when the
 * ring is full and nothing is pushed at all. */
bool ring_push(struct ring *r, const struct ring_msg *m);

/* Producer side. Pushes MSGS[0..k) where k = min(N, free slots), in order, and publishes
 * them together with one release-store of the tail. Returns k (0 when full). */
uint32_t ring_push_batch(struct ring *r, const struct ring_msg *msgs, uint32_t n);

/* Consumer side. Copies the oldest message into *OUT and frees its slot, returning true;
 * returns false (and leaves *OUT untouched) when the ring is empty. */
bool ring_pop(struct ring *r, struct ring_msg *out);

/* Consumer side. Pops up to MAX oldest messages into OUT[0..k), in order, freeing their
 * slots with one release-store of the head. Returns k (0 when empty). */
uint32_t ring_pop_batch(struct ring *r, struct ring_msg *out, uint32_t max);

/* Messages in the ring, between 0 and the capacity. Exact when called by the producer
 * or the consumer while the other side is idle; otherwise a snapshot that may already be
 * stale (from the producer it may over-count, from the consumer it may under-count). Any
 * thread may call it. */
uint32_t ring_count(const struct ring *r);

/* Consumer side: true when there is nothing to pop right now. From the producer (or any
 * other thread) it is a snapshot, like ring_count() == 0. */
bool ring_empty(const struct ring *r);

/* The capacity given to ring_init(). */
uint32_t ring_capacity(const struct ring *r);

/* Checks the ring's invariants (capacity a power of two within the limit, mask and
 * capacity consistent, 0 <= tail - head <= capacity); for DASSERT(ring_sanity(r)). Call
 * it from the producer or the consumer thread, or while both are idle: a third thread
 * may see a head newer than the tail it read and report a false failure. */
bool ring_sanity(const struct ring *r);

#endif
