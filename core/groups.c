/*
 * core/groups.c: one shard's consumer-group state machines and committed offsets (the
 * contract is core/groups.h). Groups live in a dense array (the order of groups_at)
 * found through an open-addressing table keyed by group id; each group keeps its
 * members in a dense array with its own id table plus a list in join order (the leader
 * fallback is the oldest member), and its offsets as topics (dense array and name
 * table), each with its partitions' entries (dense array and partition table, sorted
 * lazily for groups_offsets_each). Every table uses linear probing with backward-shift
 * deletion and stays at most half full. Time: two indexed min-heaps, one of member
 * session deadlines (members with no join or sync waiting) and one of group deadlines
 * (the end of a join phase, or when an empty group's offsets expire or the group is
 * forgotten), so groups_next_deadline is O(1) and each change O(log n). Waiting joins
 * and syncs hold a record allocated when they arrive (so answering never allocates
 * anything that must succeed); an answer copies what it reports into its own buffer
 * and goes onto an outbox that every entry point drains at its end, after the state is
 * consistent, so a callback may call back into this module. It does no I/O and reads
 * no clock; persisting offsets is core/coordinator's job.
 */
#include "core/groups.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/*
 * LIMITS_GROUPS_*: the capacities of this module (to move into core/limits.h).
 */
/* Longest group id: Kafka's STRING is i16-length, and the offsets records carry it as one
 * (GROUPS_RECORD_KEY_MAX assumes it). */
#define LIMITS_GROUPS_ID_BYTES_MAX 32767u
/* Longest topic name in a commit record, for the same reason. */
#define LIMITS_GROUPS_TOPIC_BYTES_MAX 32767u
/* Bytes of the client id kept at the front of a member id ("<client_id>-<16 hex>"):
 * the id goes back to the client in every answer and is looked up on every request;
 * client ids longer than this (any i16 string can be sent) are cut. */
#define LIMITS_GROUPS_MEMBER_CLIENT_ID_BYTES_MAX 128u
/* Longest member id this module hands out: the client-id part, '-' and 16 hex digits.
 * A longer id sent back cannot be one of ours. */
#define LIMITS_GROUPS_MEMBER_ID_BYTES_MAX (LIMITS_GROUPS_MEMBER_CLIENT_ID_BYTES_MAX + 17u)
/* Protocols one member may offer: clients send one to three (range, roundrobin,
 * cooperative-sticky); matching a join against the group costs protocols^2 x members
 * name comparisons, so the list is bounded. More: INCONSISTENT_GROUP_PROTOCOL. */
#define LIMITS_GROUPS_PROTOCOLS_MAX 16u
/* Bytes one member's join holds (client id, host, protocol names and metadata): a
 * consumer subscription is its topic list plus user data, a few KiB; 1 MiB covers
 * tens of thousands of subscribed topics. More: INVALID_REQUEST. */
#define LIMITS_GROUPS_MEMBER_BYTES_MAX (1u << 20)
/* Bytes of one member's assignment from the leader: 100,000 partitions of one topic
 * take 400 KB in the consumer protocol's format. More: the leader's sync gets
 * INVALID_REQUEST and nothing is stored. */
#define LIMITS_GROUPS_ASSIGNMENT_BYTES_MAX (1u << 20)
/* Bytes one group's members hold together (joins and assignments): the leader's join
 * answer carries every member's metadata in one response, which must stay far below
 * socket.request.max.bytes (100 MiB). A join that would pass it: GROUP_MAX_SIZE_REACHED;
 * a leader's sync: INVALID_REQUEST. */
#define LIMITS_GROUPS_GROUP_BYTES_MAX (64u << 20)
/* Members of one group whatever max_group_size says: the leader's join answer and every
 * rebalance walk all of them; real groups have at most a few hundred. */
#define LIMITS_GROUPS_MEMBERS_MAX 4096u
/* Groups one shard keeps: empty groups with offsets stay until they expire, so this
 * bounds their records (a few hundred bytes each without offsets). Beyond it a new
 * group's join or commit is answered COORDINATOR_NOT_AVAILABLE. */
#define LIMITS_GROUPS_PER_SHARD_MAX (1u << 18)
/* Offsets one group keeps: a group consuming 10^6 partitions is beyond any Kafka
 * cluster's partition count (Kafka advises < 200,000 per cluster). */
#define LIMITS_GROUPS_OFFSETS_PER_GROUP_MAX (1u << 20)
/* Offsets one shard keeps: about 64 bytes each with their tables, so 1 GiB. */
#define LIMITS_GROUPS_OFFSETS_PER_SHARD_MAX (1u << 24)

_Static_assert(LIMITS_GROUPS_MEMBER_ID_BYTES_MAX <= 32767u, "member ids are Kafka strings");
_Static_assert(LIMITS_GROUPS_ID_BYTES_MAX <= 32767u, "GROUPS_RECORD_KEY_MAX's group");
_Static_assert(GROUPS_OFFSET_METADATA_MAX <= 32767u, "metadata is a Kafka string");
_Static_assert(LIMITS_GROUPS_GROUP_BYTES_MAX / LIMITS_GROUPS_MEMBER_BYTES_MAX <=
		   LIMITS_GROUPS_MEMBERS_MAX,
	       "the group byte limit is reachable only by many members");

#define GROUPS_NONE UINT32_MAX
/* Smallest table; tables double when they would pass half full. */
#define GROUPS_TABLE_SLOTS_MIN 8u

/* ----------------------------------------------------------------------------------- */
/* structures */

/* One slot of an open-addressing table: the key's hash and the dense index + 1 of the
 * item (0: empty slot). */
struct gslot {
	uint32_t hash; /* full hash of the key */
	uint32_t ref;  /* dense index + 1; 0 when empty */
};

struct gindex {
	struct gslot *slots; /* mask + 1 slots, or NULL */
	uint32_t mask;	     /* slots - 1; 0 with slots NULL */
};

/* A node of an indexed min-heap, embedded in a member or a group. */
struct heap_node {
	int64_t due;   /* the key (ms) */
	uint32_t slot; /* position in the heap, GROUPS_NONE when not in it */
};

struct heap {
	struct heap_node **nodes; /* count used of cap */
	uint32_t count, cap;	  /* nodes in the heap, room */
};

/* A waiting JoinGroup or SyncGroup, allocated when it arrives; once answered it carries
 * the answer (with its bytes in buf) on the outbox until its callback runs. */
struct pending {
	struct pending *next;		/* outbox link */
	bool is_join;			/* join or sync */
	groups_join_fn join_fn;		/* callback of a join */
	groups_sync_fn sync_fn;		/* callback of a sync */
	void *ctx;			/* their first argument */
	struct groups_join_result join; /* the answer of a join */
	struct groups_sync_result sync; /* the answer of a sync */
	uint8_t *buf;			/* bytes the answer points to, or NULL */
};

struct proto {
	struct groups_bytes name;     /* into member->protocol_buf */
	struct groups_bytes metadata; /* into member->protocol_buf */
};

/*
 * A member. It is on the session heap exactly when it has neither a join nor a sync
 * waiting (a waiting join is bounded by the group's join deadline, a waiting sync by
 * the leader's session: Kafka's shouldKeepMemberAlive).
 */
struct member {
	struct group *group;		 /* its group */
	struct member *older, *newer;	 /* join order list */
	uint32_t pos;			 /* index in group->members */
	uint32_t hash;			 /* hash of id */
	struct groups_bytes id;		 /* into ident */
	struct groups_bytes client_id;	 /* into ident */
	struct groups_bytes client_host; /* into ident */
	uint8_t *ident;			 /* one allocation for the three */
	int32_t session_timeout_ms;	 /* from its last join */
	int32_t rebalance_timeout_ms;	 /* from its last join */
	struct proto *protocols;	 /* protocol_count, then their bytes */
	uint32_t protocol_count;	 /* >= 1 */
	uint32_t protocol_bytes;	 /* names + metadata */
	uint8_t *assignment;		 /* from the leader's sync, or NULL */
	uint32_t assignment_len;	 /* its bytes */
	struct pending *join;		 /* waiting join, or NULL */
	struct pending *sync;		 /* waiting sync, or NULL */
	int64_t session_deadline_ms;	 /* last renewal + session timeout */
	struct heap_node session;	 /* on gs->sessions (see above) */
};

/* A committed offset. */
struct offset_entry {
	int32_t partition;     /* >= 0 */
	int32_t leader_epoch;  /* -1: none */
	int64_t offset;	       /* next offset to consume */
	int64_t commit_ms;     /* when committed */
	uint8_t *metadata;     /* NULL when empty */
	uint32_t metadata_len; /* <= GROUPS_OFFSET_METADATA_MAX */
};

/* The offsets of one topic in one group; entries are sorted by partition when sorted. */
struct topic {
	uint32_t hash;		      /* hash of name */
	uint32_t pos;		      /* index in group->topics */
	uint8_t *name;		      /* the name (its own allocation) */
	uint32_t name_len;	      /* >= 1 */
	struct offset_entry *entries; /* count used of cap */
	uint32_t count, cap;	      /* entries, room */
	struct gindex index;	      /* partition -> entry */
	bool sorted;		      /* entries ascend by partition */
};

/*
 * A group. Invariants between calls:
 *  - state EMPTY exactly when member_count is 0 (a group whose last member goes is
 *    completed at once); then leader is NULL and no join or sync waits.
 *  - joins_pending counts the members with a join waiting; those exist only in
 *    PREPARING_REBALANCE, and waiting syncs only in COMPLETING_REBALANCE.
 *  - every pair of members shares a protocol and the protocols common to all members
 *    are a non-empty set (each join is checked against every other member).
 *  - due is on gs->deadlines in PREPARING_REBALANCE (the end of the join phase) and in
 *    EMPTY (offset expiry, or forgetting the group when it has no offsets).
 *  - commit_ms_floor <= the commit_ms of every offset.
 */
struct group {
	uint32_t hash;			 /* hash of id */
	uint32_t pos;			 /* index in gs->groups */
	uint8_t *id;			 /* the group id (its own allocation) */
	uint32_t id_len;		 /* >= 1 */
	enum groups_state state;	 /* never DEAD */
	int32_t generation;		 /* 0 when created */
	uint8_t *protocol_type;		 /* of the members, or NULL */
	uint32_t protocol_type_len;	 /* its bytes */
	uint8_t *protocol;		 /* chosen protocol (buffer of protocol_cap) */
	uint32_t protocol_len;		 /* its bytes; 0 before a choice */
	uint32_t protocol_cap;		 /* >= every member's longest protocol name */
	struct member *leader;		 /* NULL when empty */
	struct member *oldest, *newest;	 /* join order list ends */
	struct member **members;	 /* member_count used of member_cap */
	uint32_t member_count;		 /* members */
	uint32_t member_cap;		 /* room */
	struct gindex member_index;	 /* id -> member */
	uint32_t joins_pending;		 /* members with a join waiting */
	size_t member_bytes;		 /* member_size() of every member */
	bool initial_phase;		 /* waiting the initial rebalance delay */
	bool new_member_added;		 /* a member joined during this delay */
	int64_t initial_remaining_ms;	 /* how much more the delay may be extended */
	int64_t empty_since_ms;		 /* when it became empty; INT64_MIN: never had members */
	struct topic **topics;		 /* topic_count used of topic_cap */
	uint32_t topic_count, topic_cap; /* topics, room */
	struct gindex topic_index;	 /* name -> topic */
	bool topics_sorted;		 /* topics ascend by name */
	uint32_t offset_count;		 /* offsets in all topics */
	int64_t commit_ms_floor;	 /* a lower bound of the offsets' commit_ms */
	struct heap_node due;		 /* on gs->deadlines (see above) */
};

struct groups {
	struct groups_options opts;	     /* as created, max_group_size clamped */
	uint64_t seed;			     /* hash seed */
	uint64_t member_serial;		     /* member ids handed out */
	struct group **groups;		     /* group_count used of group_cap */
	uint32_t group_count, group_cap;     /* groups, room */
	struct gindex group_index;	     /* id -> group */
	struct heap sessions;		     /* members' session deadlines */
	struct heap deadlines;		     /* groups' deadlines */
	struct pending *out_head, *out_tail; /* answers whose callbacks are to run, FIFO */
	bool deadline_dirty;		     /* deadline_changed is owed */
	bool closing;			     /* groups_destroy runs */
	struct groups_member_view *view;     /* describe's members, view_cap */
	uint32_t view_cap;		     /* >= every group's member_count */
	uint64_t rebalances;		     /* join phases completed */
	uint64_t expired_members;	     /* members removed by session timeout */
	uint64_t expired_offsets;	     /* offsets removed by retention */
	uint32_t member_total;		     /* members of every group */
	uint64_t offset_total;		     /* offsets of every group */
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

static uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Seeded hash of N bytes: a multiply-xorshift per 8-byte word, finished by mix64. The
 * seed differs per process (address layout), so colliding ids cannot be precomputed. */
static uint32_t hash_bytes(uint64_t seed, const uint8_t *p, uint32_t n)
{
	uint64_t h = seed ^ ((uint64_t)n * UINT64_C(0x9e3779b97f4a7c15));
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ mix64(w)) * UINT64_C(0x100000001b3);
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	uint64_t tail = 0;
	for (uint32_t i = 0; i < n; i++)
		tail |= (uint64_t)p[i] << (8 * i);
	h = (h ^ mix64(tail + n)) * UINT64_C(0x100000001b3);
	return (uint32_t)mix64(h);
}

static uint32_t hash_partition(int32_t partition)
{
	return (uint32_t)mix64((uint64_t)(uint32_t)partition ^ UINT64_C(0x5bd1e9955bd1e995));
}

static bool bytes_eq(struct groups_bytes a, const uint8_t *b, uint32_t b_len)
{
	return a.len == b_len && (a.len == 0 || memcmp(a.ptr, b, a.len) == 0);
}

static bool bytes_same(struct groups_bytes a, struct groups_bytes b)
{
	return bytes_eq(a, b.ptr, b.len);
}

static struct groups_bytes bytes_of(const uint8_t *ptr, uint32_t len)
{
	return (struct groups_bytes){.ptr = len ? ptr : NULL, .len = len};
}

/* A + B for B >= 0, saturating at INT64_MAX. */
static int64_t add_ms(int64_t a, int64_t b)
{
	if (b < 0)
		b = 0;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Copies N bytes into a new allocation (NULL for N 0, or on failure: check *FAILED). */
static uint8_t *dup_bytes(const uint8_t *p, uint32_t n, bool *failed)
{
	if (n == 0)
		return NULL;
	uint8_t *copy = malloc(n);
	if (!copy) {
		*failed = true;
		return NULL;
	}
	memcpy(copy, p, n);
	return copy;
}

static void put_u16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void put_u32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b + 4, (uint32_t)v);
}

static uint16_t get_u16(const uint8_t *b)
{
	return (uint16_t)((uint16_t)b[0] << 8 | b[1]);
}

static uint32_t get_u32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t get_u64(const uint8_t *b)
{
	return (uint64_t)get_u32(b) << 32 | get_u32(b + 4);
}

/* ----------------------------------------------------------------------------------- */
/* open-addressing tables */

/* Compares the key with the item at dense index IDX of OWNER. */
typedef bool (*gindex_eq_fn)(const void *owner, uint32_t idx, const void *key);

/* True when K lies in the cyclic range (I, J] of a probe sequence. */
static bool cyclic_between(uint32_t k, uint32_t i, uint32_t j)
{
	return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

static uint32_t gindex_find(const struct gindex *ix, uint32_t hash, gindex_eq_fn eq,
			    const void *owner, const void *key)
{
	if (!ix->slots)
		return GROUPS_NONE;
	for (uint32_t i = hash & ix->mask;; i = (i + 1) & ix->mask) {
		const struct gslot *s = &ix->slots[i];
		if (s->ref == 0)
			return GROUPS_NONE;
		if (s->hash == hash && eq(owner, s->ref - 1, key))
			return s->ref - 1;
	}
}

static void gindex_place(struct gindex *ix, uint32_t hash, uint32_t idx)
{
	uint32_t i = hash & ix->mask;
	while (ix->slots[i].ref != 0)
		i = (i + 1) & ix->mask;
	ix->slots[i] = (struct gslot){.hash = hash, .ref = idx + 1};
}

/* Makes room for COUNT items at most half full. Returns 0 or -ENOMEM (nothing changed). */
static int gindex_reserve(struct gindex *ix, uint32_t count)
{
	uint32_t size = ix->slots ? ix->mask + 1 : 0;
	if ((uint64_t)count * 2 <= size)
		return 0;
	uint64_t want = size ? size : GROUPS_TABLE_SLOTS_MIN;
	while (want < (uint64_t)count * 2)
		want *= 2;
	if (want > (UINT64_C(1) << 31))
		return -ENOMEM;
	struct gslot *slots = calloc(want, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	struct gindex grown = {.slots = slots, .mask = (uint32_t)want - 1};
	for (uint32_t i = 0; i < size; i++)
		if (ix->slots[i].ref)
			gindex_place(&grown, ix->slots[i].hash, ix->slots[i].ref - 1);
	free(ix->slots);
	*ix = grown;
	return 0;
}

/* Inserts (HASH, IDX); the caller reserved room. */
static void gindex_insert(struct gindex *ix, uint32_t hash, uint32_t idx)
{
	ASSERT(ix->slots);
	gindex_place(ix, hash, idx);
}

static uint32_t gindex_slot_of(const struct gindex *ix, uint32_t hash, uint32_t idx)
{
	ASSERT(ix->slots);
	for (uint32_t i = hash & ix->mask;; i = (i + 1) & ix->mask) {
		ASSERT(ix->slots[i].ref != 0);
		if (ix->slots[i].ref == idx + 1)
			return i;
	}
}

/* Removes the item IDX (whose key hashes to HASH), shifting the probe run back. */
static void gindex_remove(struct gindex *ix, uint32_t hash, uint32_t idx)
{
	uint32_t i = gindex_slot_of(ix, hash, idx);
	for (uint32_t j = (i + 1) & ix->mask;; j = (j + 1) & ix->mask) {
		if (ix->slots[j].ref == 0)
			break;
		uint32_t home = ix->slots[j].hash & ix->mask;
		if (cyclic_between(home, i, j))
			continue;
		ix->slots[i] = ix->slots[j];
		i = j;
	}
	ix->slots[i].ref = 0;
}

/* The item IDX_OLD (key hash HASH) moved to dense index IDX_NEW. */
static void gindex_renumber(struct gindex *ix, uint32_t hash, uint32_t idx_old, uint32_t idx_new)
{
	ix->slots[gindex_slot_of(ix, hash, idx_old)].ref = idx_new + 1;
}

static void gindex_clear(struct gindex *ix)
{
	if (ix->slots)
		memset(ix->slots, 0, ((size_t)ix->mask + 1) * sizeof(*ix->slots));
}

static void gindex_free(struct gindex *ix)
{
	free(ix->slots);
	ix->slots = NULL;
	ix->mask = 0;
}

/* Grows *ARRAY (of ELEM bytes, *CAP of them) to hold COUNT. Returns 0 or -ENOMEM. */
static int array_reserve(void **array, uint32_t *cap, uint32_t count, size_t elem)
{
	if (count <= *cap)
		return 0;
	uint64_t want = *cap ? *cap : 4;
	while (want < count)
		want *= 2;
	if (want > UINT32_MAX)
		want = UINT32_MAX;
	void *grown = realloc(*array, (size_t)want * elem);
	if (!grown)
		return -ENOMEM;
	*array = grown;
	*cap = (uint32_t)want;
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* heaps */

static void heap_place(struct heap *h, uint32_t i, struct heap_node *n)
{
	h->nodes[i] = n;
	n->slot = i;
}

static void heap_up(struct heap *h, uint32_t i)
{
	struct heap_node *n = h->nodes[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (h->nodes[parent]->due <= n->due)
			break;
		heap_place(h, i, h->nodes[parent]);
		i = parent;
	}
	heap_place(h, i, n);
}

static void heap_down(struct heap *h, uint32_t i)
{
	struct heap_node *n = h->nodes[i];
	for (;;) {
		uint32_t child = 2 * i + 1;
		if (child >= h->count)
			break;
		if (child + 1 < h->count && h->nodes[child + 1]->due < h->nodes[child]->due)
			child++;
		if (n->due <= h->nodes[child]->due)
			break;
		heap_place(h, i, h->nodes[child]);
		i = child;
	}
	heap_place(h, i, n);
}

static int heap_reserve(struct heap *h, uint32_t count)
{
	return array_reserve((void **)&h->nodes, &h->cap, count, sizeof(*h->nodes));
}

static const struct heap_node *heap_top(const struct heap *h)
{
	return h->count ? h->nodes[0] : NULL;
}

/* Puts N on the heap at DUE, or moves it there; the caller reserved room. */
static void heap_set(struct groups *gs, struct heap *h, struct heap_node *n, int64_t due)
{
	if (n->slot == GROUPS_NONE) {
		ASSERT(h->count < h->cap);
		n->due = due;
		heap_place(h, h->count++, n);
		heap_up(h, n->slot);
	} else {
		int64_t was = n->due;
		n->due = due;
		if (due < was)
			heap_up(h, n->slot);
		else
			heap_down(h, n->slot);
	}
	if (n->slot == 0)
		gs->deadline_dirty = true; /* the earliest deadline may have moved earlier */
}

static void heap_del(struct heap *h, struct heap_node *n)
{
	if (n->slot == GROUPS_NONE)
		return;
	uint32_t i = n->slot;
	struct heap_node *last = h->nodes[--h->count];
	n->slot = GROUPS_NONE;
	if (last == n)
		return;
	heap_place(h, i, last);
	heap_up(h, i);
	heap_down(h, last->slot);
}

static struct member *member_of_session(const struct heap_node *node)
{
	return (struct member *)((const char *)node - offsetof(struct member, session));
}

static struct group *group_of_due(const struct heap_node *node)
{
	return (struct group *)((const char *)node - offsetof(struct group, due));
}

/* ----------------------------------------------------------------------------------- */
/* answers */

static struct pending *pending_new(bool is_join, groups_join_fn join_fn, groups_sync_fn sync_fn,
				   void *ctx)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->is_join = is_join;
	p->join_fn = join_fn;
	p->sync_fn = sync_fn;
	p->ctx = ctx;
	return p;
}

static void outbox_push(struct groups *gs, struct pending *p)
{
	p->next = NULL;
	if (gs->out_tail)
		gs->out_tail->next = p;
	else
		gs->out_head = p;
	gs->out_tail = p;
}

/* Runs what is owed: deadline_changed, then every answer's callback, in order. Every
 * entry point calls it last, when the state is consistent; a callback that calls back
 * in drains the rest itself, so nothing here is touched after a callback but the
 * outbox's head. */
static void outbox_flush(struct groups *gs)
{
	for (;;) {
		if (gs->deadline_dirty) {
			gs->deadline_dirty = false;
			if (gs->opts.deadline_changed)
				gs->opts.deadline_changed(gs->opts.ctx);
			continue;
		}
		struct pending *p = gs->out_head;
		if (!p)
			return;
		gs->out_head = p->next;
		if (!gs->out_head)
			gs->out_tail = NULL;
		if (p->is_join)
			p->join_fn(p->ctx, &p->join);
		else
			p->sync_fn(p->ctx, &p->sync);
		free(p->buf);
		free(p);
	}
}

/* Answers join P with ERROR, echoing MEMBER_ID. */
static void answer_join_error(struct groups *gs, struct pending *p, int16_t error,
			      struct groups_bytes member_id)
{
	ASSERT(p->is_join && error != GROUPS_OK);
	bool failed = false;
	p->buf = dup_bytes(member_id.ptr, member_id.len, &failed);
	p->join = (struct groups_join_result){.error = error, .generation_id = -1};
	if (!failed)
		p->join.member_id = bytes_of(p->buf, member_id.len);
	outbox_push(gs, p);
}

static void answer_sync(struct groups *gs, struct pending *p, int16_t error,
			struct groups_bytes assignment)
{
	ASSERT(!p->is_join);
	p->sync = (struct groups_sync_result){.error = error};
	if (error == GROUPS_OK && assignment.len) {
		bool failed = false;
		p->buf = dup_bytes(assignment.ptr, assignment.len, &failed);
		if (failed)
			p->sync.error = GROUPS_COORDINATOR_NOT_AVAILABLE;
		else
			p->sync.assignment = bytes_of(p->buf, assignment.len);
	}
	outbox_push(gs, p);
}

/* ----------------------------------------------------------------------------------- */
/* members */

static bool member_eq(const void *owner, uint32_t idx, const void *key)
{
	const struct group *g = owner;
	const struct groups_bytes *id = key;
	return bytes_same(g->members[idx]->id, *id);
}

static struct member *member_find(const struct groups *gs, const struct group *g,
				  struct groups_bytes id)
{
	if (id.len == 0 || id.len > LIMITS_GROUPS_MEMBER_ID_BYTES_MAX)
		return NULL;
	uint32_t idx =
	    gindex_find(&g->member_index, hash_bytes(gs->seed, id.ptr, id.len), member_eq, g, &id);
	return idx == GROUPS_NONE ? NULL : g->members[idx];
}

static size_t member_size(const struct member *m)
{
	return (size_t)m->id.len + m->client_id.len + m->client_host.len + m->protocol_bytes +
	       m->assignment_len;
}

/* The metadata M sent for protocol NAME (empty when it does not support it). */
static struct groups_bytes member_metadata(const struct member *m, const uint8_t *name,
					   uint32_t name_len)
{
	for (uint32_t i = 0; i < m->protocol_count; i++)
		if (bytes_eq(m->protocols[i].name, name, name_len))
			return m->protocols[i].metadata;
	return (struct groups_bytes){0};
}

static bool member_supports(const struct member *m, struct groups_bytes name)
{
	for (uint32_t i = 0; i < m->protocol_count; i++)
		if (bytes_same(m->protocols[i].name, name))
			return true;
	return false;
}

/* Puts M on the session heap when nothing of it waits, else takes it off. */
static void member_settle(struct groups *gs, struct member *m)
{
	if (!m->join && !m->sync)
		heap_set(gs, &gs->sessions, &m->session, m->session_deadline_ms);
	else
		heap_del(&gs->sessions, &m->session);
}

static void member_renew(struct groups *gs, struct member *m, int64_t now_ms)
{
	m->session_deadline_ms = add_ms(now_ms, m->session_timeout_ms);
	member_settle(gs, m);
}

/* Bytes a join's protocols take (names and metadata). */
static uint64_t request_protocol_bytes(const struct groups_join_request *req)
{
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < req->protocol_count; i++)
		bytes += (uint64_t)req->protocols[i].name.len + req->protocols[i].metadata.len;
	return bytes;
}

static uint32_t request_longest_name(const struct groups_join_request *req)
{
	uint32_t longest = 0;
	for (uint32_t i = 0; i < req->protocol_count; i++)
		if (req->protocols[i].name.len > longest)
			longest = req->protocols[i].name.len;
	return longest;
}

/* A copy of REQ's protocols: the array followed by their bytes. NULL on failure. */
static struct proto *protocols_copy(const struct groups_join_request *req, uint32_t *bytes_out)
{
	uint64_t bytes = request_protocol_bytes(req);
	size_t head = (size_t)req->protocol_count * sizeof(struct proto);
	struct proto *protos = malloc(head + (size_t)bytes);
	if (!protos)
		return NULL;
	uint8_t *at = (uint8_t *)protos + head;
	for (uint32_t i = 0; i < req->protocol_count; i++) {
		const struct groups_protocol *src = &req->protocols[i];
		if (src->name.len)
			memcpy(at, src->name.ptr, src->name.len);
		protos[i].name = bytes_of(at, src->name.len);
		at += src->name.len;
		if (src->metadata.len)
			memcpy(at, src->metadata.ptr, src->metadata.len);
		protos[i].metadata = bytes_of(at, src->metadata.len);
		at += src->metadata.len;
	}
	*bytes_out = (uint32_t)bytes;
	return protos;
}

/* Whether M sent exactly REQ's protocols (names, metadata, order). */
static bool protocols_match(const struct member *m, const struct groups_join_request *req)
{
	if (m->protocol_count != req->protocol_count)
		return false;
	for (uint32_t i = 0; i < req->protocol_count; i++)
		if (!bytes_same(m->protocols[i].name, req->protocols[i].name) ||
		    !bytes_same(m->protocols[i].metadata, req->protocols[i].metadata))
			return false;
	return true;
}

/* Whether one of REQ's protocols is supported by every member of G but SELF. */
static bool protocols_common(const struct group *g, const struct member *self,
			     const struct groups_join_request *req)
{
	for (uint32_t p = 0; p < req->protocol_count; p++) {
		bool everyone = true;
		for (uint32_t i = 0; i < g->member_count && everyone; i++)
			if (g->members[i] != self &&
			    !member_supports(g->members[i], req->protocols[p].name))
				everyone = false;
		if (everyone)
			return true;
	}
	return false;
}

static void member_free(struct member *m)
{
	free(m->ident);
	free(m->protocols);
	free(m->assignment);
	free(m);
}

static void member_clear_assignment(struct group *g, struct member *m)
{
	g->member_bytes -= m->assignment_len;
	free(m->assignment);
	m->assignment = NULL;
	m->assignment_len = 0;
}

/* Removes M from G, answering what of it waits with ERROR. The group's state is the
 * caller's (see after_removal). */
static void member_remove(struct groups *gs, struct group *g, struct member *m, int16_t error)
{
	if (m->join) {
		answer_join_error(gs, m->join, error, (struct groups_bytes){0});
		m->join = NULL;
		g->joins_pending--;
	}
	if (m->sync) {
		answer_sync(gs, m->sync, error, (struct groups_bytes){0});
		m->sync = NULL;
	}
	heap_del(&gs->sessions, &m->session);
	if (m->older)
		m->older->newer = m->newer;
	else
		g->oldest = m->newer;
	if (m->newer)
		m->newer->older = m->older;
	else
		g->newest = m->older;
	if (g->leader == m)
		g->leader = g->oldest;
	gindex_remove(&g->member_index, m->hash, m->pos);
	uint32_t last = g->member_count - 1;
	if (m->pos != last) {
		struct member *moved = g->members[last];
		gindex_renumber(&g->member_index, moved->hash, last, m->pos);
		g->members[m->pos] = moved;
		moved->pos = m->pos;
	}
	g->member_count--;
	g->member_bytes -= member_size(m);
	gs->member_total--;
	member_free(m);
}

/* ----------------------------------------------------------------------------------- */
/* offsets */

static bool topic_eq(const void *owner, uint32_t idx, const void *key)
{
	const struct group *g = owner;
	const struct groups_bytes *name = key;
	return bytes_eq(*name, g->topics[idx]->name, g->topics[idx]->name_len);
}

static bool entry_eq(const void *owner, uint32_t idx, const void *key)
{
	const struct topic *t = owner;
	return t->entries[idx].partition == *(const int32_t *)key;
}

static struct topic *topic_find(const struct groups *gs, const struct group *g,
				struct groups_bytes name)
{
	uint32_t idx = gindex_find(&g->topic_index, hash_bytes(gs->seed, name.ptr, name.len),
				   topic_eq, g, &name);
	return idx == GROUPS_NONE ? NULL : g->topics[idx];
}

static uint32_t entry_find(const struct topic *t, int32_t partition)
{
	return gindex_find(&t->index, hash_partition(partition), entry_eq, t, &partition);
}

static void topic_free(struct topic *t)
{
	for (uint32_t i = 0; i < t->count; i++)
		free(t->entries[i].metadata);
	free(t->entries);
	gindex_free(&t->index);
	free(t->name);
	free(t);
}

/* Drops topic T (with no entries left) from G. */
static void topic_remove(struct group *g, struct topic *t)
{
	ASSERT(t->count == 0);
	gindex_remove(&g->topic_index, t->hash, t->pos);
	uint32_t last = g->topic_count - 1;
	if (t->pos != last) {
		struct topic *moved = g->topics[last];
		gindex_renumber(&g->topic_index, moved->hash, last, t->pos);
		g->topics[t->pos] = moved;
		moved->pos = t->pos;
		g->topics_sorted = false;
	}
	g->topic_count--;
	topic_free(t);
}

/* Removes entry IDX of T in G (the caller drops T if it is left empty). */
static void entry_remove(struct groups *gs, struct group *g, struct topic *t, uint32_t idx)
{
	struct offset_entry *e = &t->entries[idx];
	free(e->metadata);
	gindex_remove(&t->index, hash_partition(e->partition), idx);
	uint32_t last = t->count - 1;
	if (idx != last) {
		t->entries[idx] = t->entries[last];
		gindex_renumber(&t->index, hash_partition(t->entries[idx].partition), last, idx);
		t->sorted = false;
	}
	t->count--;
	g->offset_count--;
	gs->offset_total--;
}

static int entry_cmp(const void *a, const void *b)
{
	int32_t pa = ((const struct offset_entry *)a)->partition;
	int32_t pb = ((const struct offset_entry *)b)->partition;
	return (pa > pb) - (pa < pb);
}

static int topic_cmp(const void *a, const void *b)
{
	const struct topic *ta = *(struct topic *const *)a, *tb = *(struct topic *const *)b;
	uint32_t n = ta->name_len < tb->name_len ? ta->name_len : tb->name_len;
	int c = memcmp(ta->name, tb->name, n);
	if (c)
		return c;
	return (ta->name_len > tb->name_len) - (ta->name_len < tb->name_len);
}

/* Sorts T's entries by partition and rebuilds its table (no allocation). */
static void topic_sort(struct topic *t)
{
	if (t->sorted)
		return;
	qsort(t->entries, t->count, sizeof(*t->entries), entry_cmp);
	gindex_clear(&t->index);
	for (uint32_t i = 0; i < t->count; i++)
		gindex_insert(&t->index, hash_partition(t->entries[i].partition), i);
	t->sorted = true;
}

static void group_sort_topics(struct group *g)
{
	if (g->topics_sorted)
		return;
	qsort(g->topics, g->topic_count, sizeof(*g->topics), topic_cmp);
	gindex_clear(&g->topic_index);
	for (uint32_t i = 0; i < g->topic_count; i++) {
		g->topics[i]->pos = i;
		gindex_insert(&g->topic_index, g->topics[i]->hash, i);
	}
	g->topics_sorted = true;
}

/* ----------------------------------------------------------------------------------- */
/* groups */

static bool group_eq(const void *owner, uint32_t idx, const void *key)
{
	const struct groups *gs = owner;
	const struct groups_bytes *id = key;
	return bytes_eq(*id, gs->groups[idx]->id, gs->groups[idx]->id_len);
}

static struct group *group_find(const struct groups *gs, struct groups_bytes id)
{
	if (id.len == 0 || id.len > LIMITS_GROUPS_ID_BYTES_MAX)
		return NULL;
	uint32_t idx =
	    gindex_find(&gs->group_index, hash_bytes(gs->seed, id.ptr, id.len), group_eq, gs, &id);
	return idx == GROUPS_NONE ? NULL : gs->groups[idx];
}

/* A new Empty group ID (1 <= length <= the limit), or NULL on -ENOMEM. */
static struct group *group_create(struct groups *gs, struct groups_bytes id)
{
	ASSERT(id.len >= 1 && id.len <= LIMITS_GROUPS_ID_BYTES_MAX);
	if (array_reserve((void **)&gs->groups, &gs->group_cap, gs->group_count + 1,
			  sizeof(*gs->groups)) ||
	    gindex_reserve(&gs->group_index, gs->group_count + 1) ||
	    heap_reserve(&gs->deadlines, gs->group_count + 1))
		return NULL;
	struct group *g = calloc(1, sizeof(*g));
	bool failed = false;
	if (g)
		g->id = dup_bytes(id.ptr, id.len, &failed);
	if (!g || failed) {
		free(g);
		return NULL;
	}
	g->id_len = id.len;
	g->hash = hash_bytes(gs->seed, id.ptr, id.len);
	g->state = GROUPS_STATE_EMPTY;
	g->empty_since_ms = INT64_MIN;
	g->commit_ms_floor = INT64_MAX;
	g->topics_sorted = true;
	g->due.slot = GROUPS_NONE;
	g->pos = gs->group_count++;
	gs->groups[g->pos] = g;
	gindex_insert(&gs->group_index, g->hash, g->pos);
	return g;
}

/* Frees G, which has no members, and its offsets. */
static void group_forget(struct groups *gs, struct group *g)
{
	ASSERT(g->member_count == 0);
	heap_del(&gs->deadlines, &g->due);
	gindex_remove(&gs->group_index, g->hash, g->pos);
	uint32_t last = gs->group_count - 1;
	if (g->pos != last) {
		struct group *moved = gs->groups[last];
		gindex_renumber(&gs->group_index, moved->hash, last, g->pos);
		gs->groups[g->pos] = moved;
		moved->pos = g->pos;
	}
	gs->group_count--;
	for (uint32_t i = 0; i < g->topic_count; i++)
		topic_free(g->topics[i]);
	gs->offset_total -= g->offset_count;
	free(g->topics);
	gindex_free(&g->topic_index);
	free(g->members);
	gindex_free(&g->member_index);
	free(g->protocol_type);
	free(g->protocol);
	free(g->id);
	free(g);
}

/* Schedules what an Empty group waits for: forgetting it when it has no offsets, else
 * the expiry of its oldest offset (a lower bound: an early tick rescans and moves it). */
static void group_schedule_empty(struct groups *gs, struct group *g)
{
	ASSERT(g->state == GROUPS_STATE_EMPTY);
	int64_t due;
	if (g->offset_count == 0)
		due = max64(g->empty_since_ms, 0);
	else
		due = add_ms(max64(g->commit_ms_floor, g->empty_since_ms),
			     gs->opts.offsets_retention_ms);
	heap_set(gs, &gs->deadlines, &g->due, due);
}

/* The longest rebalance timeout of G's members (Kafka's GroupMetadata.rebalanceTimeoutMs). */
static int32_t group_rebalance_timeout(const struct group *g)
{
	int32_t longest = 0;
	for (uint32_t i = 0; i < g->member_count; i++)
		if (g->members[i]->rebalance_timeout_ms > longest)
			longest = g->members[i]->rebalance_timeout_ms;
	return longest;
}

/* Kafka's prepareRebalance: answers waiting syncs 27, drops the assignments and opens a
 * join phase (with the initial delay when the group was Empty). */
static void group_prepare_rebalance(struct groups *gs, struct group *g, int64_t now_ms)
{
	ASSERT(g->state != GROUPS_STATE_PREPARING_REBALANCE);
	bool from_empty = g->state == GROUPS_STATE_EMPTY;
	for (struct member *m = g->oldest; m; m = m->newer) {
		if (m->sync) {
			answer_sync(gs, m->sync, GROUPS_REBALANCE_IN_PROGRESS,
				    (struct groups_bytes){0});
			m->sync = NULL;
			member_renew(gs, m, now_ms);
		}
		member_clear_assignment(g, m);
	}
	g->state = GROUPS_STATE_PREPARING_REBALANCE;
	int32_t rebalance_ms = group_rebalance_timeout(g);
	int64_t due;
	if (from_empty && gs->opts.initial_rebalance_delay_ms > 0) {
		int32_t delay = gs->opts.initial_rebalance_delay_ms;
		g->initial_phase = true;
		g->new_member_added = false;
		g->initial_remaining_ms = max64((int64_t)rebalance_ms - delay, 0);
		due = add_ms(now_ms, delay);
	} else {
		g->initial_phase = false;
		due = add_ms(now_ms, rebalance_ms);
	}
	heap_set(gs, &gs->deadlines, &g->due, due);
}

/* The index in the leader's list of the protocol G settles on: of those every member
 * supports, the one most members name first among them; ties to the leader's order. */
static uint32_t group_select_protocol(const struct group *g)
{
	const struct member *leader = g->leader;
	bool candidate[LIMITS_GROUPS_PROTOCOLS_MAX];
	uint32_t votes[LIMITS_GROUPS_PROTOCOLS_MAX] = {0};
	uint32_t n = leader->protocol_count, candidates = 0;
	for (uint32_t i = 0; i < n; i++) {
		candidate[i] = true;
		for (uint32_t j = 0; j < g->member_count && candidate[i]; j++)
			candidate[i] = member_supports(g->members[j], leader->protocols[i].name);
		candidates += candidate[i];
	}
	ASSERT(candidates > 0); /* joins are checked against every other member */
	for (uint32_t j = 0; j < g->member_count; j++) {
		const struct member *m = g->members[j];
		bool voted = false;
		for (uint32_t k = 0; k < m->protocol_count && !voted; k++)
			for (uint32_t i = 0; i < n && !voted; i++)
				if (candidate[i] &&
				    bytes_same(m->protocols[k].name, leader->protocols[i].name)) {
					votes[i]++;
					voted = true;
				}
	}
	uint32_t best = GROUPS_NONE;
	for (uint32_t i = 0; i < n; i++)
		if (candidate[i] && (best == GROUPS_NONE || votes[i] > votes[best]))
			best = i;
	return best;
}

/* Answers M's join (P) with the current generation: the leader gets every member with
 * its metadata for the chosen protocol. */
static void answer_join(struct groups *gs, const struct group *g, const struct member *m,
			struct pending *p)
{
	bool leader = g->leader == m;
	size_t bytes = (size_t)g->protocol_len + g->leader->id.len + m->id.len;
	if (leader) {
		bytes += (size_t)g->member_count * sizeof(struct groups_join_member);
		for (const struct member *o = g->oldest; o; o = o->newer)
			bytes += o->id.len + member_metadata(o, g->protocol, g->protocol_len).len;
	}
	p->join = (struct groups_join_result){.generation_id = -1};
	p->buf = malloc(bytes ? bytes : 1);
	if (!p->buf) {
		p->join.error = GROUPS_COORDINATOR_NOT_AVAILABLE;
		outbox_push(gs, p);
		return;
	}
	uint8_t *at = p->buf;
	struct groups_join_member *list = NULL;
	if (leader) {
		list = (struct groups_join_member *)at;
		at += (size_t)g->member_count * sizeof(*list);
	}
#define COPY_OUT(dst, src_ptr, src_len)                                                            \
	do {                                                                                       \
		if (src_len)                                                                       \
			memcpy(at, src_ptr, src_len);                                              \
		(dst) = bytes_of(at, src_len);                                                     \
		at += (src_len);                                                                   \
	} while (0)
	COPY_OUT(p->join.protocol, g->protocol, g->protocol_len);
	COPY_OUT(p->join.leader_id, g->leader->id.ptr, g->leader->id.len);
	COPY_OUT(p->join.member_id, m->id.ptr, m->id.len);
	if (leader) {
		uint32_t i = 0;
		for (const struct member *o = g->oldest; o; o = o->newer, i++) {
			struct groups_bytes meta = member_metadata(o, g->protocol, g->protocol_len);
			COPY_OUT(list[i].member_id, o->id.ptr, o->id.len);
			COPY_OUT(list[i].metadata, meta.ptr, meta.len);
		}
		p->join.members = list;
		p->join.member_count = g->member_count;
	}
#undef COPY_OUT
	p->join.error = GROUPS_OK;
	p->join.generation_id = g->generation;
	outbox_push(gs, p);
}

static void group_go_empty(struct groups *gs, struct group *g, int64_t now_ms)
{
	ASSERT(g->member_count == 0 && g->joins_pending == 0);
	g->state = GROUPS_STATE_EMPTY;
	g->protocol_len = 0;
	g->leader = NULL;
	g->initial_phase = false;
	g->empty_since_ms = now_ms;
	group_schedule_empty(gs, g);
}

/* Kafka's onCompleteJoin: drops the members that did not rejoin, starts the next
 * generation and answers every waiting join (or goes Empty). */
static void group_complete_join(struct groups *gs, struct group *g, int64_t now_ms)
{
	for (struct member *m = g->oldest, *next; m; m = next) {
		next = m->newer;
		if (!m->join)
			member_remove(gs, g, m, GROUPS_UNKNOWN_MEMBER_ID);
	}
	g->generation++;
	gs->rebalances++;
	g->initial_phase = false;
	heap_del(&gs->deadlines, &g->due);
	if (g->member_count == 0) {
		group_go_empty(gs, g, now_ms);
		return;
	}
	ASSERT(g->leader);
	const struct groups_bytes name = g->leader->protocols[group_select_protocol(g)].name;
	ASSERT(name.len <= g->protocol_cap);
	if (name.len)
		memcpy(g->protocol, name.ptr, name.len);
	g->protocol_len = name.len;
	g->state = GROUPS_STATE_COMPLETING_REBALANCE;
	for (struct member *m = g->oldest; m; m = m->newer) {
		struct pending *p = m->join;
		m->join = NULL;
		g->joins_pending--;
		answer_join(gs, g, m, p);
		member_renew(gs, m, now_ms);
	}
	ASSERT(g->joins_pending == 0);
}

/* Completes G's join phase when every member has rejoined (outside the initial delay),
 * or at once when no member is left. */
static void group_check_join(struct groups *gs, struct group *g, int64_t now_ms)
{
	if (g->state != GROUPS_STATE_PREPARING_REBALANCE)
		return;
	if (g->member_count == 0 || (!g->initial_phase && g->joins_pending == g->member_count))
		group_complete_join(gs, g, now_ms);
}

/* What a removal of a member does to G (Kafka's removeMemberAndUpdateGroup). */
static void group_after_removal(struct groups *gs, struct group *g, int64_t now_ms)
{
	if (g->member_count == 0) {
		/* Kafka goes through a join phase that completes at once: generation + 1. */
		g->generation++;
		gs->rebalances++;
		group_go_empty(gs, g, now_ms);
		return;
	}
	switch (g->state) {
	case GROUPS_STATE_STABLE:
	case GROUPS_STATE_COMPLETING_REBALANCE:
		group_prepare_rebalance(gs, g, now_ms);
		break;
	case GROUPS_STATE_PREPARING_REBALANCE:
		group_check_join(gs, g, now_ms);
		break;
	default:
		ASSERT(!"a member in an Empty group");
	}
}

/* Makes P M's waiting join (answering a join it already had waiting with 27). */
static void member_set_join(struct groups *gs, struct group *g, struct member *m, struct pending *p)
{
	if (m->join)
		answer_join_error(gs, m->join, GROUPS_REBALANCE_IN_PROGRESS, m->id);
	else
		g->joins_pending++;
	m->join = p;
	member_settle(gs, m);
}

/* The invariants written above struct member and struct group, for GROUP_ID (true when
 * it does not exist). Walks its members and topics: for DASSERT only. */
static bool group_sanity(const struct groups *gs, struct groups_bytes group_id)
{
	const struct group *g = group_find(gs, group_id);
	if (!g)
		return true;
	bool empty = g->state == GROUPS_STATE_EMPTY;
	bool preparing = g->state == GROUPS_STATE_PREPARING_REBALANCE;
	if (empty != (g->member_count == 0) || (g->leader == NULL) != empty)
		return false;
	if ((g->due.slot != GROUPS_NONE) != (empty || preparing))
		return false;
	uint32_t count = 0, joins = 0;
	size_t bytes = 0;
	bool leader_seen = false;
	for (const struct member *m = g->oldest; m; m = m->newer, count++) {
		if (m->group != g || m->pos >= g->member_count || g->members[m->pos] != m)
			return false;
		if ((m->join && !preparing) ||
		    (m->sync && g->state != GROUPS_STATE_COMPLETING_REBALANCE))
			return false;
		if ((m->session.slot == GROUPS_NONE) != (m->join || m->sync))
			return false;
		joins += m->join != NULL;
		bytes += member_size(m);
		leader_seen |= m == g->leader;
	}
	if (count != g->member_count || joins != g->joins_pending || bytes != g->member_bytes ||
	    leader_seen != !empty)
		return false;
	uint64_t offsets = 0;
	for (uint32_t i = 0; i < g->topic_count; i++) {
		if (g->topics[i]->count == 0 || g->topics[i]->pos != i)
			return false;
		offsets += g->topics[i]->count;
	}
	return offsets == g->offset_count;
}

/* ----------------------------------------------------------------------------------- */
/* lifecycle */

const char *groups_state_name(enum groups_state state)
{
	switch (state) {
	case GROUPS_STATE_EMPTY:
		return "Empty";
	case GROUPS_STATE_PREPARING_REBALANCE:
		return "PreparingRebalance";
	case GROUPS_STATE_COMPLETING_REBALANCE:
		return "CompletingRebalance";
	case GROUPS_STATE_STABLE:
		return "Stable";
	case GROUPS_STATE_DEAD:
		return "Dead";
	}
	return "Dead";
}

int groups_create(struct groups **out, const struct groups_options *opts)
{
	struct groups *gs = calloc(1, sizeof(*gs));
	if (!gs)
		return -ENOMEM;
	gs->opts = *opts;
	if (gs->opts.max_group_size == 0 || gs->opts.max_group_size > LIMITS_GROUPS_MEMBERS_MAX)
		gs->opts.max_group_size = LIMITS_GROUPS_MEMBERS_MAX;
	if (gs->opts.initial_rebalance_delay_ms < 0)
		gs->opts.initial_rebalance_delay_ms = 0;
	static int seed_anchor;
	gs->seed = splitmix64((uint64_t)(uintptr_t)gs ^ mix64((uint64_t)(uintptr_t)&seed_anchor));
	*out = gs;
	return 0;
}

void groups_destroy(struct groups *gs)
{
	if (!gs)
		return;
	/* Answer everything waiting first, with the state whole: a callback may call in
	 * (closing makes new joins and syncs fail at once). */
	gs->closing = true;
	for (uint32_t i = 0; i < gs->group_count; i++) {
		struct group *g = gs->groups[i];
		for (struct member *m = g->oldest; m; m = m->newer) {
			if (m->join) {
				answer_join_error(gs, m->join, GROUPS_COORDINATOR_NOT_AVAILABLE,
						  m->id);
				m->join = NULL;
				g->joins_pending--;
			}
			if (m->sync) {
				answer_sync(gs, m->sync, GROUPS_COORDINATOR_NOT_AVAILABLE,
					    (struct groups_bytes){0});
				m->sync = NULL;
			}
			member_settle(gs, m); /* back on the session heap (found by fuzz_groups) */
		}
	}
	gs->deadline_dirty = false;
	gs->opts.deadline_changed = NULL;
	outbox_flush(gs);
	for (uint32_t i = 0; i < gs->group_count; i++) {
		struct group *g = gs->groups[i];
		for (struct member *m = g->oldest, *next; m; m = next) {
			next = m->newer;
			ASSERT(!m->join && !m->sync);
			member_free(m);
		}
		for (uint32_t t = 0; t < g->topic_count; t++)
			topic_free(g->topics[t]);
		free(g->topics);
		gindex_free(&g->topic_index);
		free(g->members);
		gindex_free(&g->member_index);
		free(g->protocol_type);
		free(g->protocol);
		free(g->id);
		free(g);
	}
	free(gs->groups);
	gindex_free(&gs->group_index);
	free(gs->sessions.nodes);
	free(gs->deadlines.nodes);
	free(gs->view);
	free(gs);
}

int64_t groups_next_deadline(const struct groups *gs)
{
	const struct heap_node *s = heap_top(&gs->sessions), *d = heap_top(&gs->deadlines);
	int64_t next = INT64_MAX;
	if (s)
		next = s->due;
	if (d)
		next = min64(next, d->due);
	return next;
}

/* Removes the offsets of Empty group G that expired at NOW_MS and recomputes its floor. */
static void group_expire_offsets(struct groups *gs, struct group *g, int64_t now_ms)
{
	int64_t floor = INT64_MAX;
	for (uint32_t ti = g->topic_count; ti-- > 0;) {
		struct topic *t = g->topics[ti];
		for (uint32_t i = t->count; i-- > 0;) {
			const struct offset_entry *e = &t->entries[i];
			int64_t expiry = add_ms(max64(e->commit_ms, g->empty_since_ms),
						gs->opts.offsets_retention_ms);
			if (expiry <= now_ms) {
				entry_remove(gs, g, t, i);
				gs->expired_offsets++;
			} else {
				floor = min64(floor, e->commit_ms);
			}
		}
		if (t->count == 0)
			topic_remove(g, t);
	}
	g->commit_ms_floor = floor;
}

/* The deadline of G passed at NOW_MS. Returns whether G was forgotten (freed). */
static bool group_deadline(struct groups *gs, struct group *g, int64_t now_ms)
{
	if (g->state == GROUPS_STATE_PREPARING_REBALANCE) {
		if (g->initial_phase && g->new_member_added && g->initial_remaining_ms > 0) {
			/* Kafka's InitialDelayedJoin: members keep arriving, wait some more. */
			int64_t delay =
			    min64(gs->opts.initial_rebalance_delay_ms, g->initial_remaining_ms);
			g->initial_remaining_ms -= delay;
			g->new_member_added = false;
			heap_set(gs, &gs->deadlines, &g->due, add_ms(now_ms, delay));
			return false;
		}
		group_complete_join(gs, g, now_ms);
		return false;
	}
	ASSERT(g->state == GROUPS_STATE_EMPTY);
	if (g->offset_count)
		group_expire_offsets(gs, g, now_ms);
	if (g->offset_count == 0) {
		group_forget(gs, g);
		return true;
	}
	group_schedule_empty(gs, g);
	return false;
}

void groups_tick(struct groups *gs, int64_t now_ms)
{
	for (;;) {
		const struct heap_node *s = heap_top(&gs->sessions);
		const struct heap_node *d = heap_top(&gs->deadlines);
		if (s && s->due <= now_ms && (!d || s->due <= d->due)) {
			struct member *m = member_of_session(s);
			struct group *g = m->group;
			member_remove(gs, g, m, GROUPS_UNKNOWN_MEMBER_ID);
			gs->expired_members++;
			group_after_removal(gs, g, now_ms);
			DASSERT(group_sanity(gs, bytes_of(g->id, g->id_len)));
		} else if (d && d->due <= now_ms) {
			struct group *g = group_of_due(d);
			bool forgotten = group_deadline(gs, g, now_ms);
			DASSERT(forgotten || group_sanity(gs, bytes_of(g->id, g->id_len)));
		} else {
			break;
		}
		outbox_flush(gs);
	}
	outbox_flush(gs);
}

/* ----------------------------------------------------------------------------------- */
/* JoinGroup */

/* Errors a join has whatever the group (Kafka's order). */
static int16_t join_request_error(const struct groups *gs, const struct groups_join_request *req)
{
	if (req->group_id.len == 0 || req->group_id.len > LIMITS_GROUPS_ID_BYTES_MAX)
		return GROUPS_INVALID_GROUP_ID;
	if (req->session_timeout_ms < gs->opts.min_session_timeout_ms ||
	    req->session_timeout_ms > gs->opts.max_session_timeout_ms)
		return GROUPS_INVALID_SESSION_TIMEOUT;
	if (req->protocol_type.len == 0 || req->protocol_count == 0 ||
	    req->protocol_count > LIMITS_GROUPS_PROTOCOLS_MAX)
		return GROUPS_INCONSISTENT_GROUP_PROTOCOL;
	uint64_t bytes = request_protocol_bytes(req) + LIMITS_GROUPS_MEMBER_ID_BYTES_MAX +
			 req->client_id.len + req->client_host.len;
	if (bytes > LIMITS_GROUPS_MEMBER_BYTES_MAX)
		return GROUPS_INVALID_REQUEST;
	return GROUPS_OK;
}

/* Makes room in G (and GS) for a join of REQ by a member (new when NEW_MEMBER). */
static int join_reserve(struct groups *gs, struct group *g, const struct groups_join_request *req,
			bool new_member)
{
	uint32_t members = g->member_count + (new_member ? 1 : 0);
	if (array_reserve((void **)&g->members, &g->member_cap, members, sizeof(*g->members)) ||
	    gindex_reserve(&g->member_index, members) ||
	    heap_reserve(&gs->sessions, gs->member_total + 1) ||
	    array_reserve((void **)&gs->view, &gs->view_cap, members, sizeof(*gs->view)))
		return -ENOMEM;
	uint32_t longest = request_longest_name(req);
	if (longest > g->protocol_cap) {
		uint8_t *grown = realloc(g->protocol, longest);
		if (!grown)
			return -ENOMEM;
		g->protocol = grown;
		g->protocol_cap = longest;
	}
	return 0;
}

/* A new member of G for REQ, in no list yet; NULL on -ENOMEM. */
static struct member *member_new(struct groups *gs, const struct group *g,
				 const struct groups_join_request *req, int64_t now_ms)
{
	struct member *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	uint32_t client_part = req->client_id.len < LIMITS_GROUPS_MEMBER_CLIENT_ID_BYTES_MAX
				   ? req->client_id.len
				   : LIMITS_GROUPS_MEMBER_CLIENT_ID_BYTES_MAX;
	uint32_t id_len = client_part + 17;
	m->ident = malloc((size_t)id_len + req->client_id.len + req->client_host.len);
	m->protocols = protocols_copy(req, &m->protocol_bytes);
	if (!m->ident || !m->protocols) {
		member_free(m);
		return NULL;
	}
	uint8_t *at = m->ident;
	for (;;) {
		/* Kafka's "<client_id>-<UUID>": 64 bits from the shard's serial, the time and
		 * the seed; a clash within the group (never seen) draws again. */
		uint64_t unique = splitmix64(gs->seed ^ splitmix64(++gs->member_serial) ^
					     mix64((uint64_t)now_ms));
		if (client_part)
			memcpy(at, req->client_id.ptr, client_part);
		at[client_part] = '-';
		static const char hex[] = "0123456789abcdef";
		for (int i = 0; i < 16; i++)
			at[client_part + 1 + i] = (uint8_t)hex[(unique >> (60 - 4 * i)) & 15];
		m->id = bytes_of(at, id_len);
		if (!member_find(gs, g, m->id))
			break;
	}
	at += id_len;
	if (req->client_id.len)
		memcpy(at, req->client_id.ptr, req->client_id.len);
	m->client_id = bytes_of(at, req->client_id.len);
	at += req->client_id.len;
	if (req->client_host.len)
		memcpy(at, req->client_host.ptr, req->client_host.len);
	m->client_host = bytes_of(at, req->client_host.len);
	m->hash = hash_bytes(gs->seed, m->id.ptr, m->id.len);
	m->protocol_count = req->protocol_count;
	m->session.slot = GROUPS_NONE;
	return m;
}

static void member_set_timeouts(struct member *m, const struct groups_join_request *req)
{
	m->session_timeout_ms = req->session_timeout_ms;
	m->rebalance_timeout_ms =
	    req->rebalance_timeout_ms > 0 ? req->rebalance_timeout_ms : req->session_timeout_ms;
}

/* Kafka's addMemberAndRebalance. Returns 0 or -ENOMEM (nothing changed but an empty
 * group created for it, forgotten again). */
static int join_new_member(struct groups *gs, struct group *g,
			   const struct groups_join_request *req, int64_t now_ms, struct pending *p)
{
	bool created = false;
	if (!g) {
		g = group_create(gs, req->group_id);
		if (!g)
			return -ENOMEM;
		created = true;
	}
	uint8_t *type = NULL;
	bool failed = false;
	struct member *m = NULL;
	if (join_reserve(gs, g, req, true) == 0) {
		if (g->member_count == 0)
			type = dup_bytes(req->protocol_type.ptr, req->protocol_type.len, &failed);
		if (!failed)
			m = member_new(gs, g, req, now_ms);
	}
	if (!m) {
		free(type);
		if (created)
			group_forget(gs, g);
		return -ENOMEM;
	}
	if (g->member_count == 0) {
		free(g->protocol_type);
		g->protocol_type = type;
		g->protocol_type_len = req->protocol_type.len;
	}
	m->group = g;
	member_set_timeouts(m, req);
	m->pos = g->member_count++;
	g->members[m->pos] = m;
	gindex_insert(&g->member_index, m->hash, m->pos);
	m->older = g->newest;
	if (g->newest)
		g->newest->newer = m;
	else
		g->oldest = m;
	g->newest = m;
	if (!g->leader)
		g->leader = m;
	g->member_bytes += member_size(m);
	gs->member_total++;
	m->session_deadline_ms = add_ms(now_ms, m->session_timeout_ms);
	member_set_join(gs, g, m, p);
	if (g->state == GROUPS_STATE_PREPARING_REBALANCE && g->initial_phase)
		g->new_member_added = true;
	if (g->state != GROUPS_STATE_PREPARING_REBALANCE)
		group_prepare_rebalance(gs, g, now_ms);
	group_check_join(gs, g, now_ms);
	return 0;
}

/* A known member M joins again (Kafka's doJoinGroup for a known member id). */
static int join_known_member(struct groups *gs, struct group *g, struct member *m,
			     const struct groups_join_request *req, int64_t now_ms,
			     struct pending *p)
{
	bool same = protocols_match(m, req);
	if (!same) {
		if (join_reserve(gs, g, req, false))
			return -ENOMEM;
		uint32_t bytes;
		struct proto *protos = protocols_copy(req, &bytes);
		if (!protos)
			return -ENOMEM;
		g->member_bytes -= m->protocol_bytes;
		free(m->protocols);
		m->protocols = protos;
		m->protocol_count = req->protocol_count;
		m->protocol_bytes = bytes;
		g->member_bytes += bytes;
	}
	member_set_timeouts(m, req);
	switch (g->state) {
	case GROUPS_STATE_PREPARING_REBALANCE:
		m->session_deadline_ms = add_ms(now_ms, m->session_timeout_ms);
		member_set_join(gs, g, m, p);
		group_check_join(gs, g, now_ms);
		return 0;
	case GROUPS_STATE_COMPLETING_REBALANCE:
	case GROUPS_STATE_STABLE:
		if (same && (g->state == GROUPS_STATE_COMPLETING_REBALANCE || g->leader != m)) {
			/* Nothing changed: the member gets the current generation again. */
			answer_join(gs, g, m, p);
			member_renew(gs, m, now_ms);
			return 0;
		}
		m->session_deadline_ms = add_ms(now_ms, m->session_timeout_ms);
		group_prepare_rebalance(gs, g, now_ms);
		member_set_join(gs, g, m, p);
		group_check_join(gs, g, now_ms);
		return 0;
	default:
		ASSERT(!"a member in an Empty group");
		return 0;
	}
}

int groups_join(struct groups *gs, const struct groups_join_request *req, int64_t now_ms,
		groups_join_fn done, void *ctx)
{
	struct pending *p = pending_new(true, done, NULL, ctx);
	if (!p)
		return -ENOMEM;
	int16_t error =
	    gs->closing ? GROUPS_COORDINATOR_NOT_AVAILABLE : join_request_error(gs, req);
	struct group *g = NULL;
	struct member *m = NULL;
	if (error == GROUPS_OK) {
		g = group_find(gs, req->group_id);
		if (req->member_id.len) {
			m = g ? member_find(gs, g, req->member_id) : NULL;
			if (!m)
				error = GROUPS_UNKNOWN_MEMBER_ID;
		} else if (!g && gs->group_count >= LIMITS_GROUPS_PER_SHARD_MAX) {
			error = GROUPS_COORDINATOR_NOT_AVAILABLE;
		} else if (g && g->member_count >= gs->opts.max_group_size) {
			error = GROUPS_GROUP_MAX_SIZE_REACHED;
		}
	}
	if (error == GROUPS_OK && g && g->member_count > 0) {
		size_t others = g->member_bytes - (m ? member_size(m) : 0);
		if (!bytes_eq(req->protocol_type, g->protocol_type, g->protocol_type_len) ||
		    !protocols_common(g, m, req))
			error = GROUPS_INCONSISTENT_GROUP_PROTOCOL;
		else if (others + request_protocol_bytes(req) + LIMITS_GROUPS_MEMBER_ID_BYTES_MAX +
			     req->client_id.len + req->client_host.len >
			 LIMITS_GROUPS_GROUP_BYTES_MAX)
			error = GROUPS_GROUP_MAX_SIZE_REACHED;
	}
	if (error != GROUPS_OK) {
		answer_join_error(gs, p, error, req->member_id);
		outbox_flush(gs);
		return 0;
	}
	int rc = m ? join_known_member(gs, g, m, req, now_ms, p)
		   : join_new_member(gs, g, req, now_ms, p);
	if (rc) {
		free(p);
		return rc;
	}
	DASSERT(group_sanity(gs, req->group_id));
	outbox_flush(gs);
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* SyncGroup */

/* The leader's sync in CompletingRebalance: stores every member's assignment (the last
 * one given for a member wins; unknown ids are ignored) and makes G Stable. Returns 0,
 * a Kafka error for the leader, or -ENOMEM (nothing changed). */
static int sync_store_assignments(struct groups *gs, struct group *g,
				  const struct groups_sync_request *req)
{
	uint64_t total = g->member_bytes;
	for (uint32_t i = 0; i < g->member_count; i++)
		total -= g->members[i]->assignment_len;
	uint8_t **copies = calloc(g->member_count ? g->member_count : 1, sizeof(*copies));
	uint32_t *lens = calloc(g->member_count ? g->member_count : 1, sizeof(*lens));
	int rc = 0;
	if (!copies || !lens) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < req->assignment_count; i++) {
		const struct groups_assignment *a = &req->assignments[i];
		if (a->assignment.len > LIMITS_GROUPS_ASSIGNMENT_BYTES_MAX) {
			rc = GROUPS_INVALID_REQUEST;
			goto out;
		}
		struct member *m = member_find(gs, g, a->member_id);
		if (!m)
			continue;
		total -= lens[m->pos];
		free(copies[m->pos]);
		bool failed = false;
		copies[m->pos] = dup_bytes(a->assignment.ptr, a->assignment.len, &failed);
		lens[m->pos] = failed ? 0 : a->assignment.len;
		if (failed) {
			rc = -ENOMEM;
			goto out;
		}
		total += a->assignment.len;
	}
	if (total > LIMITS_GROUPS_GROUP_BYTES_MAX) {
		rc = GROUPS_INVALID_REQUEST;
		goto out;
	}
	for (uint32_t i = 0; i < g->member_count; i++) {
		struct member *m = g->members[i];
		member_clear_assignment(g, m);
		m->assignment = copies[i];
		m->assignment_len = lens[i];
		g->member_bytes += lens[i];
		copies[i] = NULL;
	}
out:
	if (copies)
		for (uint32_t i = 0; i < g->member_count; i++)
			free(copies[i]);
	free(copies);
	free(lens);
	return rc;
}

int groups_sync(struct groups *gs, const struct groups_sync_request *req, int64_t now_ms,
		groups_sync_fn done, void *ctx)
{
	struct pending *p = pending_new(false, NULL, done, ctx);
	if (!p)
		return -ENOMEM;
	struct group *g = gs->closing ? NULL : group_find(gs, req->group_id);
	struct member *m = g ? member_find(gs, g, req->member_id) : NULL;
	int16_t error = GROUPS_OK;
	if (gs->closing)
		error = GROUPS_COORDINATOR_NOT_AVAILABLE;
	else if (!m)
		error = GROUPS_UNKNOWN_MEMBER_ID;
	else if (req->generation_id != g->generation)
		error = GROUPS_ILLEGAL_GENERATION;
	else if (g->state == GROUPS_STATE_PREPARING_REBALANCE)
		error = GROUPS_REBALANCE_IN_PROGRESS;
	if (error != GROUPS_OK || g->state == GROUPS_STATE_STABLE) {
		if (m && error != GROUPS_UNKNOWN_MEMBER_ID)
			member_renew(gs, m, now_ms);
		answer_sync(gs, p, error,
			    error == GROUPS_OK ? bytes_of(m->assignment, m->assignment_len)
					       : (struct groups_bytes){0});
		outbox_flush(gs);
		return 0;
	}
	ASSERT(g->state == GROUPS_STATE_COMPLETING_REBALANCE);
	if (m == g->leader) {
		int rc = sync_store_assignments(gs, g, req);
		if (rc < 0) {
			free(p);
			return rc;
		}
		if (rc > 0) {
			member_renew(gs, m, now_ms);
			answer_sync(gs, p, (int16_t)rc, (struct groups_bytes){0});
			outbox_flush(gs);
			return 0;
		}
	}
	if (m->sync)
		answer_sync(gs, m->sync, GROUPS_REBALANCE_IN_PROGRESS, (struct groups_bytes){0});
	m->sync = p;
	m->session_deadline_ms = add_ms(now_ms, m->session_timeout_ms);
	member_settle(gs, m);
	if (m == g->leader) {
		g->state = GROUPS_STATE_STABLE;
		for (struct member *o = g->oldest; o; o = o->newer) {
			if (!o->sync)
				continue;
			answer_sync(gs, o->sync, GROUPS_OK,
				    bytes_of(o->assignment, o->assignment_len));
			o->sync = NULL;
			member_renew(gs, o, now_ms);
		}
	}
	DASSERT(group_sanity(gs, req->group_id));
	outbox_flush(gs);
	return 0;
}

/* ----------------------------------------------------------------------------------- */
/* Heartbeat, LeaveGroup, commit check */

int16_t groups_heartbeat(struct groups *gs, struct groups_bytes group_id, int32_t generation_id,
			 struct groups_bytes member_id, int64_t now_ms)
{
	struct group *g = group_find(gs, group_id);
	struct member *m = g ? member_find(gs, g, member_id) : NULL;
	if (!m)
		return GROUPS_UNKNOWN_MEMBER_ID;
	/* Kafka 2.3 checks no generation in CompletingRebalance: members still on the old
	 * one (their join answer on its way) must hear 27, not 22, or they drop their id. */
	if (generation_id != g->generation && g->state != GROUPS_STATE_COMPLETING_REBALANCE)
		return GROUPS_ILLEGAL_GENERATION;
	member_renew(gs, m, now_ms);
	outbox_flush(gs);
	return g->state == GROUPS_STATE_STABLE ? GROUPS_OK : GROUPS_REBALANCE_IN_PROGRESS;
}

int16_t groups_leave(struct groups *gs, struct groups_bytes group_id, struct groups_bytes member_id,
		     int64_t now_ms)
{
	struct group *g = group_find(gs, group_id);
	struct member *m = g ? member_find(gs, g, member_id) : NULL;
	if (!m)
		return GROUPS_UNKNOWN_MEMBER_ID;
	member_remove(gs, g, m, GROUPS_UNKNOWN_MEMBER_ID);
	group_after_removal(gs, g, now_ms);
	DASSERT(group_sanity(gs, group_id));
	outbox_flush(gs);
	return GROUPS_OK;
}

int16_t groups_commit_check(struct groups *gs, struct groups_bytes group_id, int32_t generation_id,
			    struct groups_bytes member_id, int64_t now_ms)
{
	if (group_id.len == 0 || group_id.len > LIMITS_GROUPS_ID_BYTES_MAX)
		return GROUPS_INVALID_GROUP_ID;
	struct group *g = group_find(gs, group_id);
	if (!g) {
		if (generation_id >= 0)
			return GROUPS_ILLEGAL_GENERATION; /* Kafka 2.3: an older generation */
		if (gs->group_count >= LIMITS_GROUPS_PER_SHARD_MAX)
			return GROUPS_COORDINATOR_NOT_AVAILABLE;
		return GROUPS_OK;
	}
	if (generation_id < 0 && g->member_count == 0)
		return GROUPS_OK;
	if (g->state == GROUPS_STATE_COMPLETING_REBALANCE)
		return GROUPS_REBALANCE_IN_PROGRESS;
	struct member *m = member_find(gs, g, member_id);
	if (!m)
		return GROUPS_UNKNOWN_MEMBER_ID;
	if (generation_id != g->generation)
		return GROUPS_ILLEGAL_GENERATION;
	member_renew(gs, m, now_ms);
	outbox_flush(gs);
	return GROUPS_OK;
}

/* ----------------------------------------------------------------------------------- */
/* offsets */

int groups_offset_put(struct groups *gs, struct groups_bytes group_id, struct groups_bytes topic,
		      int32_t partition, const struct groups_offset *offset)
{
	if (group_id.len == 0 || group_id.len > LIMITS_GROUPS_ID_BYTES_MAX || topic.len == 0 ||
	    topic.len > LIMITS_GROUPS_TOPIC_BYTES_MAX || partition < 0 ||
	    offset->metadata.len > GROUPS_OFFSET_METADATA_MAX)
		return -EINVAL;
	struct group *g = group_find(gs, group_id);
	bool group_created = false, topic_created = false;
	if (!g) {
		if (gs->group_count >= LIMITS_GROUPS_PER_SHARD_MAX)
			return -ENOSPC;
		g = group_create(gs, group_id);
		if (!g)
			return -ENOMEM;
		group_created = true;
	}
	struct topic *t = topic_find(gs, g, topic);
	uint32_t idx = t ? entry_find(t, partition) : GROUPS_NONE;
	int rc = -ENOMEM;
	if (idx == GROUPS_NONE) {
		if (g->offset_count >= LIMITS_GROUPS_OFFSETS_PER_GROUP_MAX ||
		    gs->offset_total >= LIMITS_GROUPS_OFFSETS_PER_SHARD_MAX) {
			rc = -ENOSPC;
			goto fail;
		}
		if (!t) {
			if (array_reserve((void **)&g->topics, &g->topic_cap, g->topic_count + 1,
					  sizeof(*g->topics)) ||
			    gindex_reserve(&g->topic_index, g->topic_count + 1))
				goto fail;
			t = calloc(1, sizeof(*t));
			bool failed = false;
			if (t)
				t->name = dup_bytes(topic.ptr, topic.len, &failed);
			if (!t || failed) {
				free(t);
				goto fail;
			}
			t->name_len = topic.len;
			t->hash = hash_bytes(gs->seed, topic.ptr, topic.len);
			t->sorted = true;
			t->pos = g->topic_count++;
			g->topics[t->pos] = t;
			gindex_insert(&g->topic_index, t->hash, t->pos);
			if (t->pos > 0 && topic_cmp(&g->topics[t->pos - 1], &t) > 0)
				g->topics_sorted = false;
			topic_created = true;
		}
		if (array_reserve((void **)&t->entries, &t->cap, t->count + 1,
				  sizeof(*t->entries)) ||
		    gindex_reserve(&t->index, t->count + 1))
			goto fail;
	}
	bool failed = false;
	uint8_t *metadata = dup_bytes(offset->metadata.ptr, offset->metadata.len, &failed);
	if (failed)
		goto fail;
	struct offset_entry *e;
	if (idx == GROUPS_NONE) {
		idx = t->count++;
		e = &t->entries[idx];
		e->partition = partition;
		e->metadata = NULL;
		gindex_insert(&t->index, hash_partition(partition), idx);
		if (idx > 0 && t->entries[idx - 1].partition > partition)
			t->sorted = false;
		g->offset_count++;
		gs->offset_total++;
	} else {
		e = &t->entries[idx];
	}
	free(e->metadata);
	e->metadata = metadata;
	e->metadata_len = offset->metadata.len;
	e->offset = offset->offset;
	e->leader_epoch = offset->leader_epoch;
	e->commit_ms = offset->commit_ms;
	g->commit_ms_floor = min64(g->commit_ms_floor, offset->commit_ms);
	if (g->member_count == 0)
		group_schedule_empty(gs, g);
	DASSERT(group_sanity(gs, group_id));
	outbox_flush(gs);
	return 0;
fail:
	if (topic_created && t->count == 0)
		topic_remove(g, t);
	if (group_created)
		group_forget(gs, g);
	return rc;
}

void groups_offset_remove(struct groups *gs, struct groups_bytes group_id,
			  struct groups_bytes topic, int32_t partition)
{
	struct group *g = group_find(gs, group_id);
	struct topic *t = g ? topic_find(gs, g, topic) : NULL;
	uint32_t idx = t ? entry_find(t, partition) : GROUPS_NONE;
	if (idx == GROUPS_NONE)
		return;
	entry_remove(gs, g, t, idx);
	if (t->count == 0)
		topic_remove(g, t);
	if (g->member_count == 0 && g->offset_count == 0)
		group_schedule_empty(gs, g);
	DASSERT(group_sanity(gs, group_id));
	outbox_flush(gs);
}

bool groups_offset_get(const struct groups *gs, struct groups_bytes group_id,
		       struct groups_bytes topic, int32_t partition, struct groups_offset *out)
{
	const struct group *g = group_find(gs, group_id);
	const struct topic *t = g ? topic_find(gs, g, topic) : NULL;
	uint32_t idx = t ? entry_find(t, partition) : GROUPS_NONE;
	if (idx == GROUPS_NONE)
		return false;
	const struct offset_entry *e = &t->entries[idx];
	*out = (struct groups_offset){.offset = e->offset,
				      .leader_epoch = e->leader_epoch,
				      .metadata = bytes_of(e->metadata, e->metadata_len),
				      .commit_ms = e->commit_ms};
	return true;
}

uint32_t groups_offsets_each(const struct groups *gs, struct groups_bytes group_id,
			     groups_offset_fn fn, void *ctx)
{
	/* Sorting reorders the group's arrays in place: logically const, nothing a caller
	 * can see changes. */
	struct group *g = group_find(gs, group_id);
	if (!g)
		return 0;
	group_sort_topics(g);
	uint32_t count = 0;
	for (uint32_t ti = 0; ti < g->topic_count; ti++) {
		struct topic *t = g->topics[ti];
		topic_sort(t);
		struct groups_bytes name = bytes_of(t->name, t->name_len);
		for (uint32_t i = 0; i < t->count; i++, count++) {
			const struct offset_entry *e = &t->entries[i];
			struct groups_offset o = {.offset = e->offset,
						  .leader_epoch = e->leader_epoch,
						  .metadata =
						      bytes_of(e->metadata, e->metadata_len),
						  .commit_ms = e->commit_ms};
			fn(ctx, name, e->partition, &o);
		}
	}
	return count;
}

/* ----------------------------------------------------------------------------------- */
/* DescribeGroups, ListGroups, DeleteGroups */

static void group_view(struct groups *gs, const struct group *g, struct groups_view *out)
{
	bool chosen =
	    g->state == GROUPS_STATE_COMPLETING_REBALANCE || g->state == GROUPS_STATE_STABLE;
	ASSERT(gs->view_cap >= g->member_count || g->member_count == 0);
	uint32_t i = 0;
	for (const struct member *m = g->oldest; m; m = m->newer, i++) {
		gs->view[i] = (struct groups_member_view){
		    .member_id = m->id,
		    .client_id = m->client_id,
		    .client_host = m->client_host,
		    .metadata = chosen ? member_metadata(m, g->protocol, g->protocol_len)
				       : (struct groups_bytes){0},
		    .assignment = bytes_of(m->assignment, m->assignment_len),
		};
	}
	*out = (struct groups_view){
	    .group_id = bytes_of(g->id, g->id_len),
	    .state = g->state,
	    .generation_id = g->generation,
	    .protocol_type = bytes_of(g->protocol_type, g->protocol_type_len),
	    .protocol = chosen ? bytes_of(g->protocol, g->protocol_len) : (struct groups_bytes){0},
	    .leader_id = g->leader ? g->leader->id : (struct groups_bytes){0},
	    .members = g->member_count ? gs->view : NULL,
	    .member_count = g->member_count,
	    .offset_count = g->offset_count,
	};
}

bool groups_describe(struct groups *gs, struct groups_bytes group_id, struct groups_view *out)
{
	const struct group *g = group_find(gs, group_id);
	if (!g) {
		*out = (struct groups_view){
		    .group_id = group_id, .state = GROUPS_STATE_DEAD, .generation_id = -1};
		return false;
	}
	group_view(gs, g, out);
	return true;
}

uint32_t groups_count(const struct groups *gs)
{
	return gs->group_count;
}

void groups_at(struct groups *gs, uint32_t i, struct groups_view *out)
{
	ASSERT(i < gs->group_count);
	group_view(gs, gs->groups[i], out);
}

int16_t groups_delete_check(const struct groups *gs, struct groups_bytes group_id)
{
	const struct group *g = group_find(gs, group_id);
	if (!g)
		return GROUPS_GROUP_ID_NOT_FOUND;
	return g->member_count ? GROUPS_NON_EMPTY_GROUP : GROUPS_OK;
}

bool groups_remove(struct groups *gs, struct groups_bytes group_id)
{
	struct group *g = group_find(gs, group_id);
	if (!g || g->member_count)
		return false;
	group_forget(gs, g);
	return true;
}

/* ----------------------------------------------------------------------------------- */
/* records */

#define RECORD_COMMIT_VERSION 1
#define RECORD_DELETE_VERSION 2

size_t groups_record_commit_key_bytes(struct groups_bytes group_id, struct groups_bytes topic)
{
	return 2u + 2u + group_id.len + 2u + topic.len + 4u;
}

size_t groups_record_commit_value_bytes(const struct groups_offset *offset)
{
	return 2u + 8u + 4u + 2u + offset->metadata.len + 8u;
}

static uint8_t *put_string(uint8_t *at, struct groups_bytes s)
{
	put_u16(at, (uint16_t)s.len);
	if (s.len)
		memcpy(at + 2, s.ptr, s.len);
	return at + 2 + s.len;
}

int groups_record_commit_encode(struct groups_bytes group_id, struct groups_bytes topic,
				int32_t partition, const struct groups_offset *offset, uint8_t *key,
				size_t key_cap, uint8_t *value, size_t value_cap)
{
	if (group_id.len > 32767u || topic.len > 32767u || offset->metadata.len > 32767u)
		return -EINVAL;
	if (key_cap < groups_record_commit_key_bytes(group_id, topic) ||
	    value_cap < groups_record_commit_value_bytes(offset))
		return -ENOBUFS;
	put_u16(key, RECORD_COMMIT_VERSION);
	uint8_t *at = put_string(key + 2, group_id);
	at = put_string(at, topic);
	put_u32(at, (uint32_t)partition);
	put_u16(value, RECORD_COMMIT_VERSION);
	put_u64(value + 2, (uint64_t)offset->offset);
	put_u32(value + 10, (uint32_t)offset->leader_epoch);
	at = put_string(value + 14, offset->metadata);
	put_u64(at, (uint64_t)offset->commit_ms);
	return 0;
}

long groups_record_delete_encode(struct groups_bytes group_id, uint8_t *key, size_t key_cap)
{
	if (group_id.len > 32767u)
		return -EINVAL;
	size_t need = 4u + group_id.len;
	if (key_cap < need)
		return -ENOBUFS;
	put_u16(key, RECORD_DELETE_VERSION);
	put_string(key + 2, group_id);
	return (long)need;
}

/* A bounds-checked reader over a record's bytes. */
struct reader {
	const uint8_t *at; /* next byte */
	size_t left;	   /* bytes after it */
	bool bad;	   /* a read ran past the end or found a bad length */
};

static const uint8_t *reader_take(struct reader *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->at;
	r->at += n;
	r->left -= n;
	return p;
}

static uint16_t read_u16(struct reader *r)
{
	const uint8_t *p = reader_take(r, 2);
	return p ? get_u16(p) : 0;
}

static uint32_t read_u32(struct reader *r)
{
	const uint8_t *p = reader_take(r, 4);
	return p ? get_u32(p) : 0;
}

static uint64_t read_u64(struct reader *r)
{
	const uint8_t *p = reader_take(r, 8);
	return p ? get_u64(p) : 0;
}

/* A Kafka STRING (non-null) of MIN_LEN..MAX_LEN bytes. */
static struct groups_bytes read_string(struct reader *r, uint32_t min_len, uint32_t max_len)
{
	int16_t len = (int16_t)read_u16(r);
	if (r->bad || len < 0 || (uint32_t)len < min_len || (uint32_t)len > max_len) {
		r->bad = true;
		return (struct groups_bytes){0};
	}
	const uint8_t *p = reader_take(r, (size_t)len);
	return p ? bytes_of(p, (uint32_t)len) : (struct groups_bytes){0};
}

int groups_record_apply(struct groups *gs, const uint8_t *key, int32_t key_len,
			const uint8_t *value, int32_t value_len)
{
	if (!key || key_len < 2)
		return -EBADMSG;
	struct reader r = {.at = key, .left = (size_t)key_len};
	uint16_t version = read_u16(&r);
	struct groups_bytes group = read_string(&r, 1, LIMITS_GROUPS_ID_BYTES_MAX);
	bool null_value = !value || value_len < 0;
	if (version == RECORD_DELETE_VERSION) {
		if (r.bad || r.left != 0 || !null_value)
			return -EBADMSG;
		groups_remove(gs, group);
		return 0;
	}
	if (version != RECORD_COMMIT_VERSION)
		return -EBADMSG;
	struct groups_bytes topic = read_string(&r, 1, LIMITS_GROUPS_TOPIC_BYTES_MAX);
	int32_t partition = (int32_t)read_u32(&r);
	if (r.bad || r.left != 0 || partition < 0)
		return -EBADMSG;
	if (null_value) {
		groups_offset_remove(gs, group, topic, partition);
		return 0;
	}
	struct reader v = {.at = value, .left = (size_t)value_len};
	struct groups_offset offset = {0};
	if (read_u16(&v) != RECORD_COMMIT_VERSION)
		return -EBADMSG;
	offset.offset = (int64_t)read_u64(&v);
	offset.leader_epoch = (int32_t)read_u32(&v);
	offset.metadata = read_string(&v, 0, GROUPS_OFFSET_METADATA_MAX);
	offset.commit_ms = (int64_t)read_u64(&v);
	if (v.bad || v.left != 0)
		return -EBADMSG;
	return groups_offset_put(gs, group, topic, partition, &offset);
}

void groups_stats(const struct groups *gs, struct groups_stats *out)
{
	*out = (struct groups_stats){
	    .groups = gs->group_count,
	    .members = gs->member_total,
	    .offsets = gs->offset_total,
	    .rebalances = gs->rebalances,
	    .expired_members = gs->expired_members,
	    .expired_offsets = gs->expired_offsets,
	};
}
