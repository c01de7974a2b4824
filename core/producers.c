/*
 * core/producers.c: idempotent-producer state and the ordered, deduplicating produce
 * path (contract, rules and the saved format in core/producers.h). The state is an array
 * of producer entries (one per partition and producer id) that grows by doubling up to
 * the shard limit, found through an open-addressing table keyed by (partition,
 * producer id), with each partition's entries on a list in least-recently-used order
 * (its record in a second open-addressing table keyed by partition) and all entries on
 * one shard-wide LRU list; both tables use linear probing with backward-shift deletion,
 * so no tombstones pile up under eviction churn. The produce path keeps two kinds of
 * FIFO: batches for this shard's log waiting for its backpressure, and per peer shard,
 * requests waiting for the mesh window; a before-wait hook retries both in order.
 */
#include "core/producers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/logger.h"
#include "core/mesh.h"
#include "core/meta.h"
#include "io/loop.h"

#define PRODUCERS_NONE UINT32_MAX
/* First capacity of the entry array; it doubles from there up to shard_max. */
#define PRODUCERS_INITIAL 64u
/* Bytes of the saved header, of a saved producer before its batches, of a batch. */
#define SAVE_HEADER_BYTES   16u
#define SAVE_PRODUCER_BYTES 16u
#define SAVE_BATCH_BYTES    16u

/* One remembered batch. */
struct producers_batch {
	int32_t first_seq;   /* baseSequence */
	int32_t last_seq;    /* baseSequence + lastOffsetDelta, wrapped */
	int64_t base_offset; /* the offset the log gave it */
};

/* One producer id's state on one partition. Free entries have producer_id -1 and are
 * chained through lru_next. */
struct producers_entry {
	int64_t producer_id;	       /* >= 0; -1 when free */
	uint32_t partition_id;	       /* broker-wide partition id */
	int16_t epoch;		       /* the producer's epoch on this partition */
	uint8_t count;		       /* batches held, 1..PRODUCERS_BATCHES while in use */
	uint8_t oldest;		       /* slot of the oldest batch in batches[] */
	uint32_t lru_prev, lru_next;   /* shard-wide list, least recently used first */
	uint32_t part_prev, part_next; /* the partition's list, least recently used first */
	struct producers_batch batches[PRODUCERS_BATCHES]; /* a ring of count batches */
};
_Static_assert(sizeof(struct producers_entry) == 112, "the size LIMITS_PRODUCERS_* assume");

/* A partition with producers; a slot with count 0 is empty. */
struct producers_part {
	uint32_t partition_id; /* the partition */
	uint32_t count;	       /* its producers; 0: empty slot */
	uint32_t oldest;       /* its least recently used entry */
	uint32_t newest;       /* its most recently used entry */
};

/* A batch forwarded to its owner: allocated by the sender, used by the owner until it
 * replies, freed by the sender once the reply came back. */
struct producers_fwd {
	struct producers_op op;		/* the owner's op (owner side) */
	struct producers_op *origin;	/* the sender's op */
	struct shard_call call;		/* the sender's call record */
	struct producers_outbox outbox; /* the sender's queue entry */
	struct ring_msg request;	/* owner: the request, kept to reply to */
	uint32_t from;			/* owner: the sending shard */
	uint32_t len;			/* bytes of the batch */
	uint8_t bytes[];		/* the batch */
};

/*
 * Invariants between calls:
 *  - used entries have producer_id >= 0, count in 1..PRODUCERS_BATCHES, are in the
 *    table, on the LRU list and on their partition's list; free ones are on the free
 *    chain; used <= capacity <= shard_max.
 *  - a partition record exists exactly for the partitions with producers, its count
 *    the length of its list, at most partition_max.
 *  - q_head is NULL whenever the log took every batch handed to it (FIFO order).
 */
#define PRODUCERS_COPY_CACHE	  16u
#define PRODUCERS_COPY_BYTES_MAX (2u << 20)

struct producers {
	struct loop *loop;		   /* the shard's loop (the hook), or NULL */
	struct shard *shard;		   /* the shard, or NULL */
	uint32_t self;			   /* this shard's id (0 without a shard) */
	uint32_t shard_count;		   /* shards of the broker (1 without a shard) */
	struct shardlog *log;		   /* the shard's log, from attach */
	struct meta *meta;		   /* shard 0: the metadata handing out producer ids */
	uint32_t partition_max, shard_max; /* limits */

	struct producers_entry *entries; /* capacity entries */
	uint32_t capacity;		 /* entries allocated */
	uint32_t used;			 /* entries in use */
	uint32_t free_head;		 /* first free entry, PRODUCERS_NONE when none */
	uint32_t *table;		 /* entry index + 1 by (partition, id); 0 empty */
	uint32_t table_mask;		 /* table size - 1 */
	struct producers_part *parts;	 /* partition records, same size as the table */
	uint32_t parts_used;		 /* partitions with producers */
	uint32_t lru_head, lru_tail;	 /* shard-wide list ends */

	struct producers_op *q_head, *q_tail; /* batches waiting for the log, FIFO */
	/* Copies of queued batches are recycled: a malloc and free of a fresh 1 MiB block
	 * per queued batch cost page faults and madvise (~16 % of the shard's samples at
	 * 1 MiB requests). Buffers of at most PRODUCERS_COPY_BYTES_MAX, at most
	 * PRODUCERS_COPY_CACHE of them. */
	uint8_t *copy_cache[PRODUCERS_COPY_CACHE];
	uint32_t copy_cap[PRODUCERS_COPY_CACHE];
	uint32_t copy_cached;
	struct producers_outbox **out_head;   /* per target shard: requests waiting for
					       * the mesh window, FIFO */
	struct producers_outbox **out_tail;   /* their last items */
	uint32_t outbox_pending;	      /* items in every outbox */
	bool hooked;			      /* the hook is on the loop */
	bool stopping;			      /* quiesced */
	bool serving;			      /* the mesh operations are registered */
	struct producers_stats stats;	      /* counters */
};

/* ----------------------------------------------------------------------------------- */
/* helpers */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static uint32_t key_slot(const struct producers *p, uint32_t partition_id, int64_t producer_id)
{
	return (uint32_t)mix64((uint64_t)producer_id * UINT64_C(0x9e3779b97f4a7c15) ^
			       partition_id) &
	       p->table_mask;
}

static uint32_t part_slot(const struct producers *p, uint32_t partition_id)
{
	return (uint32_t)mix64(partition_id) & p->table_mask;
}

/* True when K lies in the cyclic range (I, J] of a probe sequence. */
static bool cyclic_between(uint32_t k, uint32_t i, uint32_t j)
{
	return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

/* Kafka's DefaultRecordBatch.incrementSequence: SEQ + DELTA, wrapping past INT32_MAX
 * to 0. DELTA >= 0. */
static int32_t seq_add(int32_t seq, int32_t delta)
{
	if (seq > INT32_MAX - delta)
		return delta - (INT32_MAX - seq) - 1;
	return seq + delta;
}

/* Kafka's ProducerStateManager.inSequence: NEXT follows LAST. */
static bool seq_follows(int32_t last, int32_t next)
{
	return (int64_t)next == (int64_t)last + 1 || (next == 0 && last == INT32_MAX);
}

static void put_le32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_le64(const uint8_t *b)
{
	return (uint64_t)get_le32(b) | (uint64_t)get_le32(b + 4) << 32;
}

static const struct producers_batch *entry_newest(const struct producers_entry *e)
{
	return &e->batches[(e->oldest + e->count - 1) % PRODUCERS_BATCHES];
}

/* ----------------------------------------------------------------------------------- */
/* tables and lists */

static uint32_t entry_find(const struct producers *p, uint32_t partition_id, int64_t producer_id)
{
	if (!p->table)
		return PRODUCERS_NONE;
	for (uint32_t i = key_slot(p, partition_id, producer_id);; i = (i + 1) & p->table_mask) {
		uint32_t v = p->table[i];
		if (v == 0)
			return PRODUCERS_NONE;
		const struct producers_entry *e = &p->entries[v - 1];
		if (e->producer_id == producer_id && e->partition_id == partition_id)
			return v - 1;
	}
}

static void table_insert(struct producers *p, uint32_t idx)
{
	const struct producers_entry *e = &p->entries[idx];
	uint32_t i = key_slot(p, e->partition_id, e->producer_id);
	while (p->table[i] != 0)
		i = (i + 1) & p->table_mask;
	p->table[i] = idx + 1;
}

static void table_remove(struct producers *p, uint32_t idx)
{
	const struct producers_entry *e = &p->entries[idx];
	uint32_t i = key_slot(p, e->partition_id, e->producer_id);
	while (p->table[i] != idx + 1) {
		ASSERT(p->table[i] != 0);
		i = (i + 1) & p->table_mask;
	}
	/* Backward shift: pull later entries of the probe run into the hole unless their
	 * home lies between the hole and them. */
	for (uint32_t j = (i + 1) & p->table_mask; p->table[j] != 0; j = (j + 1) & p->table_mask) {
		const struct producers_entry *m = &p->entries[p->table[j] - 1];
		uint32_t home = key_slot(p, m->partition_id, m->producer_id);
		if (!cyclic_between(home, i, j)) {
			p->table[i] = p->table[j];
			i = j;
		}
	}
	p->table[i] = 0;
}

static struct producers_part *part_find(const struct producers *p, uint32_t partition_id)
{
	if (!p->parts)
		return NULL;
	for (uint32_t i = part_slot(p, partition_id);; i = (i + 1) & p->table_mask) {
		struct producers_part *r = &p->parts[i];
		if (r->count == 0)
			return NULL;
		if (r->partition_id == partition_id)
			return r;
	}
}

/* The record of PARTITION_ID, created (count 0 -> caller fills) when missing. */
static struct producers_part *part_get(struct producers *p, uint32_t partition_id)
{
	uint32_t i = part_slot(p, partition_id);
	for (;; i = (i + 1) & p->table_mask) {
		struct producers_part *r = &p->parts[i];
		if (r->count == 0)
			break;
		if (r->partition_id == partition_id)
			return r;
	}
	struct producers_part *r = &p->parts[i];
	*r = (struct producers_part){.partition_id = partition_id,
				     .count = 0,
				     .oldest = PRODUCERS_NONE,
				     .newest = PRODUCERS_NONE};
	p->parts_used++;
	return r;
}

static void part_remove(struct producers *p, struct producers_part *r)
{
	uint32_t i = (uint32_t)(r - p->parts);
	for (uint32_t j = (i + 1) & p->table_mask; p->parts[j].count != 0;
	     j = (j + 1) & p->table_mask) {
		uint32_t home = part_slot(p, p->parts[j].partition_id);
		if (!cyclic_between(home, i, j)) {
			p->parts[i] = p->parts[j];
			i = j;
		}
	}
	p->parts[i].count = 0;
	p->parts_used--;
}

static void lru_unlink(struct producers *p, uint32_t idx)
{
	struct producers_entry *e = &p->entries[idx];
	if (e->lru_prev != PRODUCERS_NONE)
		p->entries[e->lru_prev].lru_next = e->lru_next;
	else
		p->lru_head = e->lru_next;
	if (e->lru_next != PRODUCERS_NONE)
		p->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		p->lru_tail = e->lru_prev;
}

static void lru_append(struct producers *p, uint32_t idx)
{
	struct producers_entry *e = &p->entries[idx];
	e->lru_prev = p->lru_tail;
	e->lru_next = PRODUCERS_NONE;
	if (p->lru_tail != PRODUCERS_NONE)
		p->entries[p->lru_tail].lru_next = idx;
	else
		p->lru_head = idx;
	p->lru_tail = idx;
}

static void plist_unlink(struct producers *p, struct producers_part *r, uint32_t idx)
{
	struct producers_entry *e = &p->entries[idx];
	if (e->part_prev != PRODUCERS_NONE)
		p->entries[e->part_prev].part_next = e->part_next;
	else
		r->oldest = e->part_next;
	if (e->part_next != PRODUCERS_NONE)
		p->entries[e->part_next].part_prev = e->part_prev;
	else
		r->newest = e->part_prev;
}

static void plist_append(struct producers *p, struct producers_part *r, uint32_t idx)
{
	struct producers_entry *e = &p->entries[idx];
	e->part_prev = r->newest;
	e->part_next = PRODUCERS_NONE;
	if (r->newest != PRODUCERS_NONE)
		p->entries[r->newest].part_next = idx;
	else
		r->oldest = idx;
	r->newest = idx;
}

/* Makes entry IDX the most recently used of its partition and of the shard. */
static void entry_touch(struct producers *p, uint32_t idx)
{
	struct producers_part *r = part_find(p, p->entries[idx].partition_id);
	ASSERT(r);
	if (r->newest != idx) {
		plist_unlink(p, r, idx);
		plist_append(p, r, idx);
	}
	if (p->lru_tail != idx) {
		lru_unlink(p, idx);
		lru_append(p, idx);
	}
}

/* Forgets entry IDX. */
static void entry_remove(struct producers *p, uint32_t idx)
{
	struct producers_entry *e = &p->entries[idx];
	ASSERT(e->producer_id >= 0);
	table_remove(p, idx);
	struct producers_part *r = part_find(p, e->partition_id);
	ASSERT(r && r->count > 0);
	plist_unlink(p, r, idx);
	if (--r->count == 0)
		part_remove(p, r);
	lru_unlink(p, idx);
	e->producer_id = -1;
	e->lru_next = p->free_head;
	p->free_head = idx;
	p->used--;
	p->stats.tracked = p->used;
}

/* Doubles the entry array (up to shard_max) and rebuilds both tables. Returns 0,
 * -ENOSPC at the limit or -ENOMEM (nothing changed). */
static int entries_grow(struct producers *p)
{
	if (p->capacity >= p->shard_max)
		return -ENOSPC;
	uint32_t cap = p->capacity ? p->capacity * 2 : PRODUCERS_INITIAL;
	if (cap > p->shard_max)
		cap = p->shard_max;
	uint32_t slots = 1;
	while (slots < 2 * cap)
		slots *= 2;
	struct producers_entry *entries = realloc(p->entries, (size_t)cap * sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	p->entries = entries;
	uint32_t *table = calloc(slots, sizeof(*table));
	struct producers_part *parts = calloc(slots, sizeof(*parts));
	if (!table || !parts) {
		free(table);
		free(parts);
		return -ENOMEM; /* the larger array stays; capacity does not change */
	}
	for (uint32_t i = cap; i-- > p->capacity;) {
		entries[i].producer_id = -1;
		entries[i].lru_next = p->free_head;
		p->free_head = i;
	}
	struct producers_part *old_parts = p->parts;
	uint32_t old_slots = p->table ? p->table_mask + 1 : 0;
	free(p->table);
	p->table = table;
	p->parts = parts;
	p->table_mask = slots - 1;
	p->capacity = cap;
	for (uint32_t i = 0; i < cap; i++)
		if (entries[i].producer_id >= 0)
			table_insert(p, i);
	p->parts_used = 0;
	for (uint32_t i = 0; i < old_slots; i++) {
		if (old_parts[i].count == 0)
			continue;
		struct producers_part *r = part_get(p, old_parts[i].partition_id);
		*r = old_parts[i];
	}
	free(old_parts);
	return 0;
}

/* A new entry for (PARTITION_ID, PRODUCER_ID), the most recently used, with no batch
 * yet (the caller pushes one at once), evicting the least recently used producer of
 * the partition or of the shard at a limit. PRODUCERS_NONE without memory for one. */
static uint32_t entry_insert(struct producers *p, uint32_t partition_id, int64_t producer_id,
			     int16_t epoch)
{
	struct producers_part *r = part_find(p, partition_id);
	if (r && r->count >= p->partition_max) {
		entry_remove(p, r->oldest);
		p->stats.evicted++;
	}
	if (p->used >= p->shard_max || (p->used == p->capacity && entries_grow(p) < 0)) {
		if (p->used == 0)
			return PRODUCERS_NONE;
		entry_remove(p, p->lru_head);
		p->stats.evicted++;
	}
	ASSERT(p->free_head != PRODUCERS_NONE);
	uint32_t idx = p->free_head;
	struct producers_entry *e = &p->entries[idx];
	p->free_head = e->lru_next;
	*e = (struct producers_entry){
	    .producer_id = producer_id,
	    .partition_id = partition_id,
	    .epoch = epoch,
	    .count = 0,
	    .oldest = 0,
	};
	table_insert(p, idx);
	r = part_get(p, partition_id);
	r->count++;
	plist_append(p, r, idx);
	lru_append(p, idx);
	p->used++;
	p->stats.tracked = p->used;
	return idx;
}

/* Remembers batch B of (PARTITION_ID, PRODUCER_ID) with EPOCH: a new entry when there
 * is none, a reset when EPOCH differs from the entry's. */
static void state_push(struct producers *p, uint32_t partition_id, int64_t producer_id,
		       int16_t epoch, const struct producers_batch *b)
{
	uint32_t idx = entry_find(p, partition_id, producer_id);
	if (idx == PRODUCERS_NONE) {
		idx = entry_insert(p, partition_id, producer_id, epoch);
		if (idx == PRODUCERS_NONE)
			return; /* no memory: the producer is unknown, which stays safe */
	}
	struct producers_entry *e = &p->entries[idx];
	if (e->epoch != epoch) {
		e->epoch = epoch;
		e->count = 0;
		e->oldest = 0;
	}
	if (e->count == PRODUCERS_BATCHES) {
		e->batches[e->oldest] = *b;
		e->oldest = (uint8_t)((e->oldest + 1) % PRODUCERS_BATCHES);
	} else {
		e->batches[(e->oldest + e->count) % PRODUCERS_BATCHES] = *b;
		e->count++;
	}
	entry_touch(p, idx);
}

static void state_clear(struct producers *p)
{
	while (p->lru_head != PRODUCERS_NONE)
		entry_remove(p, p->lru_head);
}

/* ----------------------------------------------------------------------------------- */
/* the state machine */

static struct producers_batch batch_of(const struct batch_header *h, int64_t base_offset)
{
	int32_t delta = h->last_offset_delta < 0 ? 0 : h->last_offset_delta;
	return (struct producers_batch){.first_seq = h->base_sequence,
					.last_seq = seq_add(h->base_sequence, delta),
					.base_offset = base_offset};
}

enum producers_verdict producers_check(const struct producers *p, uint32_t partition_id,
				       const struct batch_header *h, int64_t *offset)
{
	if (h->producer_id < 0)
		return PRODUCERS_APPEND;
	struct producers_batch b = batch_of(h, -1);
	uint32_t idx = entry_find(p, partition_id, h->producer_id);
	if (idx == PRODUCERS_NONE)
		return b.first_seq == 0 ? PRODUCERS_APPEND : PRODUCERS_UNKNOWN_PRODUCER;
	const struct producers_entry *e = &p->entries[idx];
	if (h->producer_epoch == e->epoch) {
		for (uint32_t i = 0; i < e->count; i++) {
			const struct producers_batch *m =
			    &e->batches[(e->oldest + i) % PRODUCERS_BATCHES];
			if (m->first_seq == b.first_seq && m->last_seq == b.last_seq) {
				if (offset)
					*offset = m->base_offset;
				return PRODUCERS_DUPLICATE;
			}
		}
		return seq_follows(entry_newest(e)->last_seq, b.first_seq) ? PRODUCERS_APPEND
									   : PRODUCERS_OUT_OF_ORDER;
	}
	if (h->producer_epoch < e->epoch)
		return PRODUCERS_STALE_EPOCH;
	return b.first_seq == 0 ? PRODUCERS_APPEND : PRODUCERS_OUT_OF_ORDER;
}

void producers_record(struct producers *p, uint32_t partition_id, const struct batch_header *h,
		      int64_t base_offset)
{
	if (h->producer_id < 0)
		return;
	struct producers_batch b = batch_of(h, base_offset);
	state_push(p, partition_id, h->producer_id, h->producer_epoch, &b);
}

void producers_truncate(struct producers *p, uint32_t partition_id, int64_t next_offset)
{
	struct producers_part *r = part_find(p, partition_id);
	if (!r)
		return;
	uint32_t idx = r->oldest;
	while (idx != PRODUCERS_NONE) {
		struct producers_entry *e = &p->entries[idx];
		uint32_t next = e->part_next;
		while (e->count > 0 && entry_newest(e)->base_offset >= next_offset)
			e->count--;
		if (e->count == 0)
			entry_remove(p, idx); /* may move records, not entries */
		idx = next;
	}
}

uint32_t producers_count(const struct producers *p)
{
	return p->used;
}

bool producers_sanity(const struct producers *p)
{
	uint32_t used = 0, lru = 0, free_count = 0;
	for (uint32_t i = 0; i < p->capacity; i++) {
		const struct producers_entry *e = &p->entries[i];
		if (e->producer_id < 0)
			continue;
		used++;
		if (e->count == 0 || e->count > PRODUCERS_BATCHES ||
		    entry_find(p, e->partition_id, e->producer_id) != i)
			return false;
	}
	for (uint32_t i = p->free_head; i != PRODUCERS_NONE; i = p->entries[i].lru_next)
		if (++free_count > p->capacity || p->entries[i].producer_id >= 0)
			return false;
	uint32_t prev = PRODUCERS_NONE;
	for (uint32_t i = p->lru_head; i != PRODUCERS_NONE; i = p->entries[i].lru_next) {
		if (++lru > p->used || p->entries[i].lru_prev != prev)
			return false;
		prev = i;
	}
	if (used != p->used || lru != p->used || prev != p->lru_tail ||
	    used + free_count != p->capacity || p->used > p->shard_max)
		return false;
	uint32_t parts = 0, in_parts = 0;
	for (uint32_t s = 0; p->parts && s <= p->table_mask; s++) {
		const struct producers_part *r = &p->parts[s];
		if (r->count == 0)
			continue;
		parts++;
		if (part_find(p, r->partition_id) != r || r->count > p->partition_max)
			return false;
		uint32_t n = 0, before = PRODUCERS_NONE;
		for (uint32_t i = r->oldest; i != PRODUCERS_NONE; i = p->entries[i].part_next) {
			if (++n > r->count || p->entries[i].partition_id != r->partition_id ||
			    p->entries[i].part_prev != before)
				return false;
			before = i;
		}
		if (n != r->count || before != r->newest)
			return false;
		in_parts += n;
	}
	return parts == p->parts_used && in_parts == p->used;
}

/* ----------------------------------------------------------------------------------- */
/* shard-log hooks */

static void hook_recovered_batch(void *ctx, uint32_t partition_id, const struct batch_header *h,
				 int64_t base_offset)
{
	struct producers *p = ctx;
	if (h->producer_id < 0)
		return;
	uint32_t idx = entry_find(p, partition_id, h->producer_id);
	if (idx != PRODUCERS_NONE) {
		const struct producers_entry *e = &p->entries[idx];
		/* Known from the checkpoint's state already, or an epoch superseded there. */
		if (entry_newest(e)->base_offset >= base_offset || h->producer_epoch < e->epoch)
			return;
	}
	p->stats.recovered++;
	producers_record(p, partition_id, h, base_offset);
}

static size_t hook_save_bytes(void *ctx)
{
	const struct producers *p = ctx;
	if (p->used == 0)
		return 0; /* no section: the checkpoint stays what builds without it wrote */
	size_t bytes = SAVE_HEADER_BYTES;
	for (uint32_t i = p->lru_head; i != PRODUCERS_NONE; i = p->entries[i].lru_next)
		bytes += SAVE_PRODUCER_BYTES + (size_t)p->entries[i].count * SAVE_BATCH_BYTES;
	return bytes;
}

static void hook_save(void *ctx, uint8_t *buf, size_t len)
{
	const struct producers *p = ctx;
	uint8_t *w = buf;
	put_le32(w, PRODUCERS_SAVE_MAGIC);
	put_le32(w + 4, PRODUCERS_SAVE_VERSION);
	put_le32(w + 8, p->used);
	put_le32(w + 12, 0);
	w += SAVE_HEADER_BYTES;
	for (uint32_t i = p->lru_head; i != PRODUCERS_NONE; i = p->entries[i].lru_next) {
		const struct producers_entry *e = &p->entries[i];
		put_le64(w, (uint64_t)e->producer_id);
		put_le32(w + 8, e->partition_id);
		w[12] = (uint8_t)((uint16_t)e->epoch & 0xff);
		w[13] = (uint8_t)((uint16_t)e->epoch >> 8);
		w[14] = e->count;
		w[15] = 0;
		w += SAVE_PRODUCER_BYTES;
		for (uint32_t k = 0; k < e->count; k++) {
			const struct producers_batch *b =
			    &e->batches[(e->oldest + k) % PRODUCERS_BATCHES];
			put_le32(w, (uint32_t)b->first_seq);
			put_le32(w + 4, (uint32_t)b->last_seq);
			put_le64(w + 8, (uint64_t)b->base_offset);
			w += SAVE_BATCH_BYTES;
		}
	}
	ASSERT((size_t)(w - buf) == len);
}

static int hook_load(void *ctx, const uint8_t *buf, size_t len)
{
	struct producers *p = ctx;
	const uint8_t *r = buf, *end = buf + len;
	if (len < SAVE_HEADER_BYTES || get_le32(r) != PRODUCERS_SAVE_MAGIC ||
	    get_le32(r + 4) != PRODUCERS_SAVE_VERSION)
		goto out_bad;
	uint32_t n = get_le32(r + 8);
	r += SAVE_HEADER_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		if ((size_t)(end - r) < SAVE_PRODUCER_BYTES)
			goto out_bad;
		int64_t producer_id = (int64_t)get_le64(r);
		uint32_t partition_id = get_le32(r + 8);
		int16_t epoch = (int16_t)(uint16_t)(r[12] | r[13] << 8);
		uint8_t count = r[14];
		r += SAVE_PRODUCER_BYTES;
		if (producer_id < 0 || count == 0 || count > PRODUCERS_BATCHES ||
		    (size_t)(end - r) < (size_t)count * SAVE_BATCH_BYTES ||
		    entry_find(p, partition_id, producer_id) != PRODUCERS_NONE)
			goto out_bad;
		for (uint32_t k = 0; k < count; k++, r += SAVE_BATCH_BYTES) {
			struct producers_batch b = {.first_seq = (int32_t)get_le32(r),
						    .last_seq = (int32_t)get_le32(r + 4),
						    .base_offset = (int64_t)get_le64(r + 8)};
			state_push(p, partition_id, producer_id, epoch, &b);
			p->stats.recovered++;
		}
	}
	if (r != end)
		goto out_bad;
	return 0;

out_bad:
	LOG_WARN("producers: the producer state in the checkpoint is malformed; ignoring the "
		 "checkpoint");
	state_clear(p);
	p->stats.recovered = 0;
	return -EBADMSG;
}

struct shardlog_hooks producers_hooks(struct producers *p)
{
	return (struct shardlog_hooks){.recovered_batch = hook_recovered_batch,
				       .save_bytes = hook_save_bytes,
				       .save = hook_save,
				       .load = hook_load,
				       .ctx = p};
}

/* ----------------------------------------------------------------------------------- */
/* the produce path: this shard's log */

static void op_log_start(struct producers *p, struct producers_op *op)
{
	struct shardlog_partition_info info;
	if (p->log && shardlog_partition_info(p->log, op->partition_id, &info) == 0)
		op->log_start_offset = info.log_start_offset;
}

/* Delivers OP's answer to its caller when it waited for it. */
static void op_answer(struct producers_op *op)
{
	if (op->async && op->done)
		op->done(op->done_ctx, op);
}

/* The log's callback: a durable append written and synced, or a barrier passed. */
static void op_durable(void *ctx, int status, int64_t base_offset)
{
	struct producers_op *op = ctx;
	(void)base_offset; /* set at append time (a barrier passes -1) */
	if (status < 0) {
		op->status = status;
		op->p->stats.append_errors++;
	}
	op_log_start(op->p, op);
	op_answer(op);
}

/* Check, append and record OP in one step. Returns 0 when OP is answered, 1 when the
 * log will call op_durable, -EAGAIN when the log is full (nothing happened). */
static int local_try(struct producers *p, struct producers_op *op)
{
	struct batch_header h;
	if (batch_parse(op->batch, op->len, &h) != BATCH_OK) {
		op->status = -EINVAL;
		return 0;
	}
	int64_t dup = -1;
	op->verdict = producers_check(p, op->partition_id, &h, &dup);
	switch (op->verdict) {
	case PRODUCERS_APPEND: {
		int64_t base = shardlog_append(p->log, op->partition_id, op->batch, op->len,
					       op->durable, op->durable ? op_durable : NULL, op);
		if (base == -EAGAIN)
			return -EAGAIN;
		if (base < 0) {
			op->status = (int)base;
			p->stats.append_errors++;
			break;
		}
		producers_record(p, op->partition_id, &h, base);
		op->base_offset = base;
		p->stats.appended++;
		if (op->durable)
			return 1;
		break;
	}
	case PRODUCERS_DUPLICATE:
		if (op->durable) {
			int ret = shardlog_barrier(p->log, op_durable, op);
			if (ret == -EAGAIN)
				return -EAGAIN;
			if (ret < 0) {
				op->status = ret;
				break;
			}
			op->base_offset = dup;
			p->stats.duplicates++;
			if (ret == 0)
				return 1;
			break;
		}
		op->base_offset = dup;
		p->stats.duplicates++;
		break;
	case PRODUCERS_OUT_OF_ORDER:
		p->stats.out_of_order++;
		break;
	case PRODUCERS_STALE_EPOCH:
		p->stats.stale_epoch++;
		break;
	case PRODUCERS_UNKNOWN_PRODUCER:
		p->stats.unknown_producer++;
		break;
	}
	op_log_start(p, op);
	return 0;
}

/* A buffer of at least LEN bytes for a queued batch's copy, from the cache when one
 * fits; *CAP gets its size. NULL without memory. */
static uint8_t *copy_get(struct producers *p, uint32_t len, uint32_t *cap)
{
	for (uint32_t i = p->copy_cached; i-- > 0;) {
		if (p->copy_cap[i] < len)
			continue;
		uint8_t *buf = p->copy_cache[i];
		*cap = p->copy_cap[i];
		p->copy_cached--;
		p->copy_cache[i] = p->copy_cache[p->copy_cached];
		p->copy_cap[i] = p->copy_cap[p->copy_cached];
		return buf;
	}
	/* Power-of-two sizes above 64 KiB, so that buffers fit the next batches too. */
	uint32_t size = len > (64u << 10) && len <= PRODUCERS_COPY_BYTES_MAX ? 64u << 10 : len;
	while (size < len)
		size *= 2;
	*cap = size ? size : 1;
	return malloc(*cap);
}

/* Gives a queued batch's copy back: kept for the next one when the cache has room. */
static void copy_put(struct producers *p, uint8_t *buf, uint32_t cap)
{
	if (!buf)
		return;
	if (cap <= PRODUCERS_COPY_BYTES_MAX && p->copy_cached < PRODUCERS_COPY_CACHE &&
	    !p->stopping) {
		p->copy_cache[p->copy_cached] = buf;
		p->copy_cap[p->copy_cached] = cap;
		p->copy_cached++;
		return;
	}
	free(buf);
}

/* OP for this shard's log: appended now, or queued behind what waits (copying the
 * bytes unless they are stable). Returns as producers_produce. */
static int local_produce(struct producers *p, struct producers_op *op)
{
	if (p->stopping || !p->log) {
		op->status = -ESHUTDOWN;
		return 0;
	}
	if (!p->q_head) {
		int ret = local_try(p, op);
		if (ret == 0)
			return 0;
		if (ret == 1) {
			op->async = true;
			return -EINPROGRESS;
		}
	}
	if (!op->stable) {
		uint8_t *copy = copy_get(p, op->len, &op->copy_cap);
		if (!copy) {
			op->status = -ENOMEM;
			return 0;
		}
		memcpy(copy, op->batch, op->len);
		op->copy = copy;
		op->batch = copy;
	}
	op->async = true;
	op->next = NULL;
	if (p->q_tail)
		p->q_tail->next = op;
	else
		p->q_head = op;
	p->q_tail = op;
	p->stats.log_waits++;
	p->stats.queued++;
	return -EINPROGRESS;
}

static struct producers_op *queue_pop(struct producers *p)
{
	struct producers_op *op = p->q_head;
	p->q_head = op->next;
	if (!p->q_head)
		p->q_tail = NULL;
	op->next = NULL;
	p->stats.queued--;
	copy_put(p, op->copy, op->copy_cap);
	op->copy = NULL;
	return op;
}

/* Retries the batches waiting for the log, in order, until one is refused again. */
static void queue_run(struct producers *p)
{
	while (p->q_head) {
		int ret = local_try(p, p->q_head);
		if (ret == -EAGAIN)
			return;
		struct producers_op *op = queue_pop(p);
		if (ret == 0)
			op_answer(op);
	}
}

static void op_start(struct producers *p, struct producers_op *op, const void *batch, uint32_t len,
		     producers_done_fn done, void *ctx)
{
	op->status = 0;
	op->verdict = PRODUCERS_APPEND;
	op->base_offset = -1;
	op->log_start_offset = -1;
	op->p = p;
	op->done = done;
	op->done_ctx = ctx;
	op->batch = batch;
	op->len = len;
	op->copy = NULL;
	op->next = NULL;
	op->fwd = NULL;
	op->stable = false;
	op->async = false;
}

/* ----------------------------------------------------------------------------------- */
/* the produce path: other shards */

/* Sends ITEM to shard TO now, or queues it behind what waits for TO's mesh window. */
static void outbox_send(struct producers *p, uint32_t to, struct producers_outbox *item)
{
	item->next = NULL;
	if (!p->out_head[to]) {
		int ret = shard_call(p->shard, to, item->op, item->payload, 0, item->call);
		if (ret == 0)
			return;
		ASSERT(ret == -EAGAIN); /* TO was checked to be a peer */
	}
	p->stats.mesh_waits++;
	if (p->out_tail[to])
		p->out_tail[to]->next = item;
	else
		p->out_head[to] = item;
	p->out_tail[to] = item;
	p->outbox_pending++;
}

static struct producers_outbox *outbox_pop(struct producers *p, uint32_t to)
{
	struct producers_outbox *item = p->out_head[to];
	p->out_head[to] = item->next;
	if (!p->out_head[to])
		p->out_tail[to] = NULL;
	item->next = NULL;
	p->outbox_pending--;
	return item;
}

static void outbox_run(struct producers *p)
{
	for (uint32_t to = 0; to < p->shard_count && p->outbox_pending > 0; to++) {
		while (p->out_head[to]) {
			/* Once sent, the item (inside the payload) is the target's until the
			 * reply: take it off the queue without writing to it. */
			struct producers_outbox *item = p->out_head[to];
			struct producers_outbox *next = item->next;
			int ret = shard_call(p->shard, to, item->op, item->payload, 0, item->call);
			if (ret == -EAGAIN)
				break;
			ASSERT(ret == 0);
			p->out_head[to] = next;
			if (!next)
				p->out_tail[to] = NULL;
			p->outbox_pending--;
		}
	}
}

/* Answers a queued request as if its target had replied STATUS. */
static void outbox_fail(struct producers_outbox *item, int status)
{
	struct ring_msg reply = {.op = (uint32_t)item->op | MESH_OP_REPLY,
				 .status = status,
				 .cookie = (uint64_t)(uintptr_t)item->call,
				 .payload = item->payload};
	item->call->done(item->call, &reply);
}

/* The sender: the owner answered a forwarded batch. */
static void fwd_replied(struct shard_call *call, const struct ring_msg *reply)
{
	struct producers_fwd *fwd = call->ctx;
	struct producers_op *op = fwd->origin;
	if (reply->status < 0) {
		op->status = reply->status == -EOPNOTSUPP ? -ESHUTDOWN : reply->status;
	} else {
		op->status = fwd->op.status;
		op->verdict = fwd->op.verdict;
		op->base_offset = fwd->op.base_offset;
		op->log_start_offset = fwd->op.log_start_offset;
	}
	op->fwd = NULL;
	free(fwd);
	op_answer(op);
}

static int forward(struct producers *p, struct producers_op *op)
{
	if (p->stopping) {
		op->status = -ESHUTDOWN;
		return 0;
	}
	if (!p->shard || op->owner >= p->shard_count) {
		op->status = -EINVAL;
		return 0;
	}
	struct producers_fwd *fwd = malloc(sizeof(*fwd) + op->len);
	if (!fwd) {
		op->status = -ENOMEM;
		return 0;
	}
	memset(fwd, 0, sizeof(*fwd));
	fwd->origin = op;
	fwd->len = op->len;
	memcpy(fwd->bytes, op->batch, op->len);
	fwd->op.partition_id = op->partition_id;
	fwd->op.owner = op->owner;
	fwd->op.durable = op->durable;
	fwd->call = (struct shard_call){.done = fwd_replied, .ctx = fwd};
	fwd->outbox =
	    (struct producers_outbox){.op = SHARD_OP_PRODUCE, .payload = fwd, .call = &fwd->call};
	op->fwd = fwd;
	op->batch = NULL;
	op->async = true;
	p->stats.forwarded++;
	outbox_send(p, op->owner, &fwd->outbox);
	return -EINPROGRESS;
}

/* The owner: a forwarded batch is answered; hand it back. */
static void fwd_served(void *ctx, struct producers_op *op)
{
	struct producers_fwd *fwd = ctx;
	struct producers *p = op->p;
	p->stats.served++;
	int ret = shard_reply(p->shard, fwd->from, &fwd->request, 0, fwd, 0);
	if (ret < 0) /* cannot happen within the request window (core/mesh.h) */
		LOG_ERROR("producers: shard %u cannot answer a batch forwarded by shard %u: %s",
			  p->self, fwd->from, strerror(-ret));
}

/* SHARD_OP_PRODUCE: a peer forwarded a batch for a partition of this shard. */
static void on_produce_request(void *ctx, struct shard *shard, uint32_t from,
			       const struct ring_msg *request)
{
	struct producers *p = ctx;
	struct producers_fwd *fwd = request->payload;
	fwd->request = *request;
	fwd->from = from;
	struct producers_op *op = &fwd->op;
	op_start(p, op, fwd->bytes, fwd->len, fwd_served, fwd);
	op->stable = true;
	if (local_produce(p, op) == 0)
		fwd_served(fwd, op);
	(void)shard;
}

int producers_produce(struct producers *p, struct producers_op *op, const void *batch, uint32_t len,
		      producers_done_fn done, void *ctx)
{
	op_start(p, op, batch, len, done, ctx);
	p->stats.batches++;
	if (op->owner != p->self)
		return forward(p, op);
	return local_produce(p, op);
}

/* ----------------------------------------------------------------------------------- */
/* producer ids */

static void id_from_meta(struct producers *p, int *status, int64_t *id)
{
	int err = 0;
	uint64_t v = meta_next_producer_id(p->meta, &err);
	*status = err;
	*id = err ? -1 : (int64_t)v;
	if (err)
		LOG_ERROR("producers: no producer id for InitProducerId: %s", strerror(-err));
	else
		p->stats.ids++;
}

/* SHARD_OP_PRODUCER_ID, on shard 0. */
static void on_id_request(void *ctx, struct shard *shard, uint32_t from,
			  const struct ring_msg *request)
{
	struct producers *p = ctx;
	int status = -ESHUTDOWN;
	int64_t id = -1;
	if (!p->stopping && p->meta)
		id_from_meta(p, &status, &id);
	int ret = shard_reply(shard, from, request, status, NULL, (uint64_t)id);
	if (ret < 0)
		LOG_ERROR("producers: shard 0 cannot answer shard %u's producer-id request: %s",
			  from, strerror(-ret));
}

static void id_replied(struct shard_call *call, const struct ring_msg *reply)
{
	struct producers_id_op *op = call->ctx;
	op->status = reply->status == -EOPNOTSUPP ? -ESHUTDOWN : reply->status;
	op->producer_id = op->status == 0 ? (int64_t)reply->arg : -1;
	if (op->status == 0)
		op->p->stats.ids++;
	op->done(op->done_ctx, op);
}

int producers_new_id(struct producers *p, struct producers_id_op *op, producers_id_fn done,
		     void *ctx)
{
	op->p = p;
	op->done = done;
	op->done_ctx = ctx;
	op->status = 0;
	op->producer_id = -1;
	if (p->stopping) {
		op->status = -ESHUTDOWN;
		return 0;
	}
	if (p->meta) {
		id_from_meta(p, &op->status, &op->producer_id);
		return 0;
	}
	if (!p->shard || p->self == 0) {
		op->status = -EOPNOTSUPP;
		return 0;
	}
	op->call = (struct shard_call){.done = id_replied, .ctx = op};
	op->outbox = (struct producers_outbox){
	    .op = SHARD_OP_PRODUCER_ID, .payload = NULL, .call = &op->call};
	outbox_send(p, 0, &op->outbox);
	return -EINPROGRESS;
}

/* ----------------------------------------------------------------------------------- */
/* lifecycle */

static void producers_hook(void *ctx, struct loop *loop)
{
	struct producers *p = ctx;
	(void)loop;
	if (p->q_head)
		queue_run(p);
	if (p->outbox_pending)
		outbox_run(p);
}

int producers_create(struct producers **out, const struct producers_options *opts)
{
	uint32_t partition_max =
	    opts->partition_max ? opts->partition_max : LIMITS_PRODUCERS_PER_PARTITION_MAX;
	uint32_t shard_max = opts->shard_max ? opts->shard_max : LIMITS_PRODUCERS_PER_SHARD_MAX;
	if (partition_max > shard_max || shard_max > (UINT32_MAX >> 2))
		return -EINVAL;
	struct producers *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = opts->loop;
	p->shard = opts->shard;
	p->self = opts->shard ? opts->shard->id : 0;
	p->shard_count = opts->shard ? opts->shard->set->count : 1;
	p->partition_max = partition_max;
	p->shard_max = shard_max;
	p->free_head = p->lru_head = p->lru_tail = PRODUCERS_NONE;
	p->out_head = calloc(p->shard_count, sizeof(*p->out_head));
	p->out_tail = calloc(p->shard_count, sizeof(*p->out_tail));
	int ret = -ENOMEM;
	if (!p->out_head || !p->out_tail)
		goto out_free;
	if (p->loop) {
		ret = loop_add_hook(p->loop, producers_hook, p);
		if (ret < 0)
			goto out_free;
		p->hooked = true;
	}
	*out = p;
	return 0;

out_free:
	free(p->out_head);
	free(p->out_tail);
	free(p);
	return ret;
}

int producers_attach(struct producers *p, struct shardlog *log, struct meta *meta)
{
	uint32_t n = p->parts_used, k = 0;
	uint32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (uint32_t s = 0; p->parts && s <= p->table_mask; s++)
		if (p->parts[s].count > 0)
			ids[k++] = p->parts[s].partition_id;
	ASSERT(k == n);
	uint32_t before = p->used;
	for (uint32_t i = 0; i < n; i++) {
		struct shardlog_partition_info info;
		int64_t end = INT64_MIN; /* not in the log: forget every batch */
		if (shardlog_partition_info(log, ids[i], &info) == 0)
			end = info.next_offset;
		producers_truncate(p, ids[i], end);
	}
	free(ids);
	p->log = log;
	p->meta = meta;
	if (p->shard) {
		shard_on_op(p->shard, SHARD_OP_PRODUCE, on_produce_request, p);
		if (meta)
			shard_on_op(p->shard, SHARD_OP_PRODUCER_ID, on_id_request, p);
		p->serving = true;
	}
	if (before > 0)
		LOG_INFO("producers: shard %u: %u producer states recovered (%u dropped: past the "
			 "log's end or of partitions no longer here)",
			 p->self, p->used, before - p->used);
	DASSERT(producers_sanity(p));
	return 0;
}

void producers_quiesce(struct producers *p)
{
	if (p->stopping)
		return;
	p->stopping = true;
	while (p->q_head) {
		struct producers_op *op = queue_pop(p);
		op->status = -ESHUTDOWN;
		op_answer(op);
	}
	for (uint32_t to = 0; to < p->shard_count; to++)
		while (p->out_head[to])
			outbox_fail(outbox_pop(p, to), -ESHUTDOWN);
	if (p->hooked) {
		loop_remove_hook(p->loop, producers_hook, p);
		p->hooked = false;
	}
}

void producers_destroy(struct producers *p)
{
	if (!p)
		return;
	producers_quiesce(p);
	const struct producers_stats *st = &p->stats;
	if (st->batches || st->served || st->ids || st->recovered)
		LOG_INFO("producers: shard %u stats: batches=%" PRIu64 " appended=%" PRIu64
			 " duplicates=%" PRIu64 " out_of_order=%" PRIu64 " stale_epoch=%" PRIu64
			 " unknown_producer=%" PRIu64 " append_errors=%" PRIu64
			 " log_waits=%" PRIu64 " mesh_waits=%" PRIu64 " forwarded=%" PRIu64
			 " served=%" PRIu64 " ids=%" PRIu64 " evicted=%" PRIu64
			 " recovered=%" PRIu64 " tracked=%u",
			 p->self, st->batches, st->appended, st->duplicates, st->out_of_order,
			 st->stale_epoch, st->unknown_producer, st->append_errors, st->log_waits,
			 st->mesh_waits, st->forwarded, st->served, st->ids, st->evicted,
			 st->recovered, st->tracked);
	if (p->serving) {
		shard_on_op(p->shard, SHARD_OP_PRODUCE, NULL, NULL);
		if (p->meta)
			shard_on_op(p->shard, SHARD_OP_PRODUCER_ID, NULL, NULL);
	}
	while (p->copy_cached)
		free(p->copy_cache[--p->copy_cached]);
	free(p->entries);
	free(p->table);
	free(p->parts);
	free(p->out_head);
	free(p->out_tail);
	free(p);
}

void producers_stats(const struct producers *p, struct producers_stats *out)
{
	*out = p->stats;
}
