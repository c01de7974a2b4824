/*
 * core/ring.c: the SPSC ring of core/ring.h. It implements the index arithmetic, the
 * cache-line layout and the memory ordering of one producer and one consumer; it does not
 * allocate, wake threads or interpret messages. Layout of the caller's memory:
 *
 *   offset 0    +--------------------------------------------+
 *               | capacity, mask            (read-only line) |
 *   64          +--------------------------------------------+
 *               | tail, head_cache          (producer line)  |
 *   128         +--------------------------------------------+
 *               | head, tail_cache          (consumer line)  |
 *   192         +--------------------------------------------+
 *               | slots[0 .. capacity)  32 bytes each        |
 *               +--------------------------------------------+
 *
 * Invariants (ring_sanity checks the shared ones):
 *  - capacity is a power of two <= LIMITS_RING_SLOTS_MAX and mask == capacity - 1;
 *  - head and tail are free-running uint32_t: they only ever grow (mod 2^32) and are
 *    masked on access, so tail - head (mod 2^32) is the number of messages, always in
 *    [0, capacity]; capacity <= 2^30 keeps that difference unambiguous;
 *  - slots [head, tail) hold messages owned by the consumer, the others belong to the
 *    producer;
 *  - head_cache is a value head once had, so tail - head_cache >= tail - head: the
 *    producer may think the ring is fuller than it is, never emptier;
 *  - tail_cache is a value tail once had, so the consumer may think the ring is emptier
 *    than it is, never fuller.
 */
#include "core/ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#include "core/assert.h"
#include "core/limits.h"

struct ring {
	/* Read-only after ring_init: both sides keep this line in their caches. */
	alignas(LIMITS_CACHE_LINE_BYTES) uint32_t capacity; /* slots, a power of two */
	uint32_t mask;					    /* capacity - 1 */

	/* Written only by the producer; the consumer reads tail when its cache runs dry. */
	alignas(LIMITS_CACHE_LINE_BYTES) _Atomic uint32_t tail; /* next slot to fill */
	uint32_t head_cache; /* producer's last view of head (private) */

	/* Written only by the consumer; the producer reads head when its cache looks full. */
	alignas(LIMITS_CACHE_LINE_BYTES) _Atomic uint32_t head; /* next slot to read */
	uint32_t tail_cache; /* consumer's last view of tail (private) */

	alignas(LIMITS_CACHE_LINE_BYTES) struct ring_msg slots[]; /* capacity messages */
};

_Static_assert(offsetof(struct ring, tail) - offsetof(struct ring, capacity) >=
		   LIMITS_CACHE_LINE_BYTES,
	       "the producer's index must not share the read-only line");
_Static_assert(offsetof(struct ring, head) - offsetof(struct ring, tail) >= LIMITS_CACHE_LINE_BYTES,
	       "head and tail must live on separate cache lines");
_Static_assert(offsetof(struct ring, slots) - offsetof(struct ring, head) >=
		   LIMITS_CACHE_LINE_BYTES,
	       "the consumer's index must not share a line with the slots");
_Static_assert(sizeof(struct ring) % LIMITS_CACHE_LINE_BYTES == 0,
	       "ring_bytes must stay a whole number of cache lines");
_Static_assert(LIMITS_CACHE_LINE_BYTES % sizeof(struct ring_msg) == 0,
	       "messages must tile cache lines");
_Static_assert(LIMITS_RING_SLOTS_MAX <= (UINT32_C(1) << 31),
	       "tail - head must stay unambiguous in uint32_t arithmetic");

static bool ring_capacity_valid(uint32_t capacity)
{
	return capacity != 0 && (capacity & (capacity - 1)) == 0 &&
	       capacity <= LIMITS_RING_SLOTS_MAX;
}

size_t ring_bytes(uint32_t capacity)
{
	ASSERT(ring_capacity_valid(capacity));
	size_t bytes = sizeof(struct ring) + (size_t)capacity * sizeof(struct ring_msg);
	/* Rounded up (capacity 1 is half a line) because aligned_alloc wants a multiple
	 * of the alignment. */
	return (bytes + LIMITS_CACHE_LINE_BYTES - 1) & ~(size_t)(LIMITS_CACHE_LINE_BYTES - 1);
}

void ring_init_at(struct ring *r, uint32_t capacity, uint32_t start_index)
{
	ASSERT(ring_capacity_valid(capacity));
	ASSERT(((uintptr_t)r & (LIMITS_CACHE_LINE_BYTES - 1)) == 0);

	r->capacity = capacity;
	r->mask = capacity - 1;
	/* No ordering here: the contract makes the caller publish the ring to the two
	 * threads afterwards (thread creation, a barrier or a release-store all give the
	 * happens-before edge these plain initialisations need). */
	atomic_init(&r->tail, start_index);
	r->head_cache = start_index;
	atomic_init(&r->head, start_index);
	r->tail_cache = start_index;
	DASSERT(ring_sanity(r));
}

void ring_init(struct ring *r, uint32_t capacity)
{
	ring_init_at(r, capacity, 0);
}

/* Producer: free slots, refreshing head_cache only when the cached view has fewer than
 * WANT free. */
static uint32_t ring_free_for_producer(struct ring *r, uint32_t tail, uint32_t want)
{
	uint32_t free_slots = r->capacity - (tail - r->head_cache);

	if (free_slots >= want)
		return free_slots;
	/* Acquire pairs with the consumer's release-store of head: the consumer's copies
	 * out of the slots it freed happen before our writes into them, so we never
	 * overwrite a message the consumer is still reading. */
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	DASSERT(tail - r->head_cache <= r->capacity);
	return r->capacity - (tail - r->head_cache);
}

/* Consumer: messages available, refreshing tail_cache only when the cached view has
 * fewer than WANT. */
static uint32_t ring_avail_for_consumer(struct ring *r, uint32_t head, uint32_t want)
{
	uint32_t avail = r->tail_cache - head;

	if (avail >= want)
		return avail;
	/* Acquire pairs with the producer's release-store of tail: the producer's writes
	 * into the slots it published happen before our reads of them. */
	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	DASSERT(r->tail_cache - head <= r->capacity);
	return r->tail_cache - head;
}

bool ring_push(struct ring *r, const struct ring_msg *m)
{
	/* Relaxed: the producer is the only writer of tail, so it reads its own last
	 * store; no other thread's data depends on this load. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (ring_free_for_producer(r, tail, 1) == 0)
		return false;
	r->slots[tail & r->mask] = *m;
	/* Release: the slot's contents become visible no later than the new tail, to a
	 * consumer that reads tail with acquire. */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

uint32_t ring_push_batch(struct ring *r, const struct ring_msg *msgs, uint32_t n)
{
	/* Relaxed: as in ring_push, only this thread writes tail. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t free_slots = ring_free_for_producer(r, tail, n);
	uint32_t count = n < free_slots ? n : free_slots;

	if (count == 0)
		return 0;
	uint32_t start = tail & r->mask;
	uint32_t first = r->capacity - start; /* slots before the wrap */
	if (first > count)
		first = count;
	memcpy(&r->slots[start], msgs, (size_t)first * sizeof(*msgs));
	memcpy(&r->slots[0], msgs + first, (size_t)(count - first) * sizeof(*msgs));
	/* Release, once for the whole batch: every slot written above is visible to a
	 * consumer that acquires this tail (or any later one). */
	atomic_store_explicit(&r->tail, tail + count, memory_order_release);
	return count;
}

bool ring_pop(struct ring *r, struct ring_msg *out)
{
	/* Relaxed: the consumer is the only writer of head. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (ring_avail_for_consumer(r, head, 1) == 0)
		return false;
	*out = r->slots[head & r->mask];
	/* Release: our read of the slot completes before the producer, which acquires
	 * head, can see the slot as free and reuse it. */
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

uint32_t ring_pop_batch(struct ring *r, struct ring_msg *out, uint32_t max)
{
	/* Relaxed: as in ring_pop, only this thread writes head. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t avail = ring_avail_for_consumer(r, head, max);
	uint32_t count = max < avail ? max : avail;

	if (count == 0)
		return 0;
	uint32_t start = head & r->mask;
	uint32_t first = r->capacity - start; /* slots before the wrap */
	if (first > count)
		first = count;
	memcpy(out, &r->slots[start], (size_t)first * sizeof(*out));
	memcpy(out + first, &r->slots[0], (size_t)(count - first) * sizeof(*out));
	/* Release, once for the batch: all the copies above finish before the producer
	 * can see these slots as free. */
	atomic_store_explicit(&r->head, head + count, memory_order_release);
	return count;
}

/* tail - head without clamping; see ring_count for why the loads are ordered. */
static uint32_t ring_used_raw(const struct ring *r)
{
	/* Head first, with acquire: if the consumer had already seen tail >= H when it
	 * stored head = H, that tail load happens before our tail load below, so we read
	 * a tail >= H and the difference never goes "negative" (which would wrap to a
	 * huge count). */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	/* Relaxed: the acquire above already keeps this load after the head load, and
	 * no slot is read here, so nothing else needs to be published to us. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	return tail - head;
}

uint32_t ring_count(const struct ring *r)
{
	uint32_t used = ring_used_raw(r);

	/* A thread that is neither side can read a head older than the tail it reads
	 * next (both may move between the loads) and see more than capacity. */
	return used > r->capacity ? r->capacity : used;
}

bool ring_empty(const struct ring *r)
{
	return ring_used_raw(r) == 0;
}

uint32_t ring_capacity(const struct ring *r)
{
	return r->capacity;
}

bool ring_sanity(const struct ring *r)
{
	if (!ring_capacity_valid(r->capacity))
		return false;
	if (r->mask != r->capacity - 1)
		return false;
	return ring_used_raw(r) <= r->capacity;
}
