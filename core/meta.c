/*
 * core/meta.c: topic and partition metadata and its journal (see core/meta.h for the
 * contract). In memory: every topic is one heap object listed in a dense array (for
 * iteration), a name table and a partition-id table (open addressing, linear probing,
 * deletion by backward shift, at most half full). On disk: DATA/meta.journal, a
 * sequence of records, each checksummed and self-delimiting, that replays to the
 * current state. A change is made in three steps so that it happens entirely or not
 * at all: prepare (validate, allocate everything it will need, grow the tables),
 * append its record and fdatasync, then commit to memory, which cannot fail. In a batch
 * (group commit) the append only collects the record, the commit follows at once, and
 * meta_batch_end writes the collected records as one BATCH record with one fdatasync;
 * if that fails, the tables are rebuilt by replaying the journal, which the failed
 * append cut back to where the batch began. When the
 * journal outgrows twice its snapshot it is replaced, atomically, by the snapshot: the
 * file header, the counters, and one topic record per live topic. It does not check
 * config names against Kafka's list, and it never reads the shard logs.
 *
 * Journal record, little-endian:
 *
 *   0        4        8      9
 *   +--------+--------+------+--------------------------+
 *   | len    | crc    | type | payload (len bytes)      |
 *   | u32    | u32    | u8   |                          |
 *   +--------+--------+------+--------------------------+
 *   crc = crc32c over the 4 bytes of len, then type and payload, so a damaged length
 *   is caught like damaged content.
 *
 *   type 1 HEADER        magic "SLUICEMJ" (8) | version u32         first record only
 *   type 2 STATE         next_topic_id u64 | next_partition_id u32 | producer_id_hwm u64
 *   type 3 TOPIC         topic_id u64 | name_len u16 | name | partition_count u32 |
 *                        (partition_id u32 | shard u32) * partition_count |
 *                        config_count u16 | (key_len u16 | key | value_len u16 | value) *
 *   type 4 DELETE        topic_id u64 | name_len u16 | name
 *   type 5 PARTITIONS    topic_id u64 | name_len u16 | name | added u32 |
 *                        (partition_id u32 | shard u32) * added
 *   type 6 CONFIG        topic_id u64 | name_len u16 | name | key_len u16 | key |
 *                        present u8 | value_len u16 | value   (present 0: key removed)
 *   type 7 PRODUCER_IDS  producer_id_hwm u64   (ids below it may have been handed out)
 *   type 8 BATCH         (len u32 | type u8 | payload) * n, n >= 1: the records of one
 *                        group commit, types 2 to 7, applied in order; they carry no
 *                        checksum of their own: the batch's covers them, and a torn
 *                        batch at the tail must not leave checksummed records inside it
 *                        for the open's scan for valid records after a bad one to find
 *
 * A snapshot is HEADER, STATE, then one TOPIC per live topic; later changes append.
 * Records name topics by name and id; replay checks the two agree.
 */
#include "core/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/crc32c.h"
#include "core/logger.h"
#include "io/disk.h"

#define REC_HEADER_BYTES 9u
#define REC_HEADER	 1
#define REC_STATE	 2
#define REC_TOPIC	 3
#define REC_DELETE	 4
#define REC_PARTITIONS	 5
#define REC_CONFIG	 6
#define REC_PRODUCER_IDS 7
#define REC_BATCH	 8
#define REC_TYPE_MAX	 REC_BATCH
/* A record inside a BATCH: len u32 | type u8. */
#define BATCH_ITEM_HEADER_BYTES 5u

#define JOURNAL_MAGIC	 "SLUICEMJ"
#define JOURNAL_VERSION	 1u
#define HEADER_REC_BYTES (REC_HEADER_BYTES + 8 + 4)
#define STATE_REC_BYTES	 (REC_HEADER_BYTES + 8 + 4 + 8)

/* Smallest hash tables: 64 slots. */
#define TABLE_MIN_SLOTS 64u

/* After a failed compaction, the next try waits until the journal grew this much. */
#define COMPACT_RETRY_BYTES (LIMITS_META_COMPACT_MIN_BYTES / 4)

/* Largest producer id: Kafka's producerId is an int64. */
#define PRODUCER_ID_MAX ((uint64_t)INT64_MAX)

_Static_assert(LIMITS_TOPIC_NAME_BYTES <= UINT16_MAX, "names are stored with u16 lengths");
_Static_assert(LIMITS_META_CONFIGS_PER_TOPIC_MAX <= UINT16_MAX, "config_count is a u16");
_Static_assert(LIMITS_META_PARTITIONS_PER_TOPIC_MAX <= LIMITS_META_RECORD_BYTES_MAX / 8,
	       "a topic record holds 8 bytes per partition");
_Static_assert(LIMITS_META_TOPICS_MAX <= (1u << 30), "the name table size must fit a u32");

/* A growable output buffer; err sticks at the first allocation failure. */
struct wbuf {
	uint8_t *p;	  /* bytes */
	size_t len;	  /* used */
	size_t cap;	  /* allocated */
	size_t rec_start; /* offset of the record being written */
	int err;	  /* 0 or -ENOMEM */
};

/* One slot of the partition-id table; partition_id 0 marks an empty slot. */
struct pid_slot {
	uint32_t partition_id;	  /* key, META_PARTITION_ID_NONE when empty */
	uint32_t partition_index; /* index in topic->partitions */
	struct meta_topic *topic; /* owner */
};

/*
 * Invariants, between calls (meta_sanity checks them):
 *  - topics[0 .. topic_count) are the live topics, topics[i]->slot == i.
 *  - names[] holds every live topic exactly once, at or after (cyclically, with no
 *    empty slot between) the slot its name_hash maps to; names_used == topic_count and
 *    names_used * 2 <= names_mask + 1.
 *  - pids[] holds every partition of every live topic exactly once, likewise;
 *    pids_used == the total partition count, pids_used * 2 <= pids_mask + 1.
 *  - every live partition_id is in [1, next_partition_id); every topic_id in
 *    [1, next_topic_id); every shard < shard_count.
 *  - next_producer_id <= producer_id_hwm: ids in [next, hwm) are reserved in the journal.
 *  - snapshot_bytes == the size meta_compact would write; journal_bytes == the
 *    file's size, all of it valid records.
 *  - broken: the journal's tail is in an unknown state; no change is made any more.
 *  - batching: between meta_batch_begin and meta_batch_end; batch holds the BATCH
 *    record's header room and then batch_records items (or is empty), at most
 *    LIMITS_META_RECORD_BYTES_MAX bytes once it holds two or more.
 */
struct meta {
	int dir_fd;		      /* the data directory */
	int journal_fd;		      /* meta.journal, O_WRONLY; appends at journal_bytes */
	char path[4096];	      /* "DATA/meta.journal", for messages */
	uint32_t shard_count;	      /* shards of this run, placement of new partitions */
	bool broken;		      /* a failed append could not be undone: read-only */
	uint64_t journal_bytes;	      /* size of meta.journal */
	uint64_t snapshot_bytes;      /* size of a snapshot of the current state */
	uint64_t compact_retry_bytes; /* no compaction until journal_bytes reaches it */
	uint64_t next_topic_id;	      /* id of the next topic, >= 1 */
	uint32_t next_partition_id;   /* id of the next partition, >= 1 */
	uint64_t next_producer_id;    /* what meta_next_producer_id returns next */
	uint64_t producer_id_hwm;     /* ids below it are reserved in the journal */
	struct meta_topic **topics;   /* dense array of live topics */
	uint32_t topic_count;	      /* live topics */
	uint32_t topic_capacity;      /* slots of topics */
	struct meta_topic **names;    /* name table, NULL = empty slot */
	uint32_t names_mask;	      /* slots - 1, slots a power of two */
	struct pid_slot *pids;	      /* partition-id table */
	uint32_t pids_mask;	      /* slots - 1, slots a power of two */
	uint32_t pids_used;	      /* occupied slots = live partitions */
	bool batching;		      /* between meta_batch_begin and meta_batch_end */
	struct wbuf batch;	      /* the batch: BATCH record header room, then items */
	uint32_t batch_records;	      /* items in batch */
};

/* ---- validation ------------------------------------------------------------------ */

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool meta_topic_name_valid(const char *name)
{
	if (!name)
		return false;
	size_t len = strnlen(name, LIMITS_TOPIC_NAME_BYTES + 1);
	if (len == 0 || len > LIMITS_TOPIC_NAME_BYTES)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok(name[i]))
			return false;
	return true;
}

static bool config_key_valid(const char *key)
{
	if (!key)
		return false;
	size_t len = strnlen(key, LIMITS_META_CONFIG_KEY_BYTES + 1);
	if (len == 0 || len > LIMITS_META_CONFIG_KEY_BYTES)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok(key[i]))
			return false;
	return true;
}

static bool config_value_valid(const char *value)
{
	if (!value)
		return false;
	size_t len = strnlen(value, LIMITS_META_CONFIG_VALUE_BYTES + 1);
	if (len > LIMITS_META_CONFIG_VALUE_BYTES)
		return false;
	for (size_t i = 0; i < len; i++)
		if (value[i] < 0x20 || value[i] > 0x7e)
			return false;
	return true;
}

/* ---- hashing and placement ------------------------------------------------------- */

uint32_t meta_placement_hash_len(const char *name, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	return h;
}

uint32_t meta_placement_hash(const char *name)
{
	return meta_placement_hash_len(name, strlen(name));
}

uint32_t meta_placement_shard(const char *name, uint32_t partition, uint32_t shard_count)
{
	ASSERT(shard_count >= 1);
	return (uint32_t)(((uint64_t)meta_placement_hash(name) + partition) % shard_count);
}

/* Table hash of a name: 64-bit FNV-1a (not the placement hash, which must never
 * change; this one only lives in memory). */
static uint64_t name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static uint32_t pid_hash(uint32_t id)
{
	uint32_t h = id;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* ---- topic objects --------------------------------------------------------------- */

/* Frees one config entry: key and value share the block starting at key. */
static void config_entry_free(struct meta_config_kv *kv)
{
	free((void *)kv->key);
}

/* Copies KEY and VALUE into one block. Returns 0 or -ENOMEM. */
static int config_entry_new(const char *key, const char *value, struct meta_config_kv *out)
{
	size_t klen = strlen(key), vlen = strlen(value);
	char *block = malloc(klen + vlen + 2);
	if (!block)
		return -ENOMEM;
	memcpy(block, key, klen + 1);
	memcpy(block + klen + 1, value, vlen + 1);
	out->key = block;
	out->value = block + klen + 1;
	return 0;
}

static void topic_free(struct meta_topic *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->config_count; i++)
		config_entry_free(&t->configs[i]);
	free(t->configs);
	free(t->partitions);
	free(t);
}

static int config_cmp(const void *a, const void *b)
{
	return strcmp(((const struct meta_config_kv *)a)->key,
		      ((const struct meta_config_kv *)b)->key);
}

/* A new topic with PARTITION_COUNT zeroed partitions and copies of the CONFIG_COUNT
 * configs, sorted. Returns 0, -EINVAL (a config invalid or repeated) or -ENOMEM. */
static int topic_new(const char *name, uint64_t topic_id, uint32_t partition_count,
		     const struct meta_config_kv *configs, uint32_t config_count,
		     struct meta_topic **out)
{
	if (config_count > LIMITS_META_CONFIGS_PER_TOPIC_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < config_count; i++)
		if (!config_key_valid(configs[i].key) || !config_value_valid(configs[i].value))
			return -EINVAL;
	struct meta_topic *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	ASSERT(strlen(name) <= LIMITS_TOPIC_NAME_BYTES);
	strcpy(t->name, name);
	t->name_hash = name_hash(name);
	t->topic_id = topic_id;
	t->partitions = calloc(partition_count, sizeof(*t->partitions));
	if (!t->partitions)
		goto out_free_topic;
	t->partition_count = partition_count;
	if (config_count > 0) {
		t->configs = calloc(config_count, sizeof(*t->configs));
		if (!t->configs)
			goto out_free_topic;
	}
	for (uint32_t i = 0; i < config_count; i++) {
		if (config_entry_new(configs[i].key, configs[i].value, &t->configs[i]))
			goto out_free_topic;
		t->config_count++;
	}
	if (t->config_count > 1)
		qsort(t->configs, t->config_count, sizeof(*t->configs), config_cmp);
	for (uint32_t i = 1; i < t->config_count; i++) {
		if (strcmp(t->configs[i - 1].key, t->configs[i].key) == 0) {
			topic_free(t);
			return -EINVAL;
		}
	}
	*out = t;
	return 0;

out_free_topic:
	topic_free(t);
	return -ENOMEM;
}

/* Index of KEY in T's sorted configs, or -(insertion point) - 1. */
static int64_t config_search(const struct meta_topic *t, const char *key)
{
	uint32_t lo = 0, hi = t->config_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->configs[mid].key, key);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(int64_t)lo - 1;
}

const char *meta_topic_config(const struct meta_topic *t, const char *key)
{
	int64_t i = config_search(t, key);
	return i >= 0 ? t->configs[i].value : NULL;
}

/* The bytes of T's TOPIC record in a snapshot. */
static uint64_t topic_record_bytes(const struct meta_topic *t)
{
	uint64_t n = REC_HEADER_BYTES + 8 + 2 + strlen(t->name) + 4 + 8ull * t->partition_count + 2;
	for (uint32_t i = 0; i < t->config_count; i++)
		n += 4 + strlen(t->configs[i].key) + strlen(t->configs[i].value);
	return n;
}

/* ---- tables ---------------------------------------------------------------------- */

static uint32_t table_slots_for(uint64_t used)
{
	uint64_t slots = TABLE_MIN_SLOTS;
	while (slots < used * 2)
		slots *= 2;
	return (uint32_t)slots;
}

static struct meta_topic **names_slot(const struct meta *m, const char *name, uint64_t hash)
{
	uint32_t i = (uint32_t)hash & m->names_mask;
	for (;;) {
		struct meta_topic *t = m->names[i];
		if (!t || (t->name_hash == hash && strcmp(t->name, name) == 0))
			return &m->names[i];
		i = (i + 1) & m->names_mask;
	}
}

static void names_put(struct meta *m, struct meta_topic *t)
{
	struct meta_topic **slot = names_slot(m, t->name, t->name_hash);
	ASSERT(*slot == NULL);
	*slot = t;
}

/* Makes the name table hold NEED topics at most half full. -ENOMEM leaves it as is. */
static int names_reserve(struct meta *m, uint64_t need)
{
	if (m->names && need * 2 <= (uint64_t)m->names_mask + 1)
		return 0;
	uint32_t slots = table_slots_for(need);
	struct meta_topic **old = m->names;
	uint32_t old_slots = old ? m->names_mask + 1 : 0;
	m->names = calloc(slots, sizeof(*m->names));
	if (!m->names) {
		m->names = old;
		return -ENOMEM;
	}
	m->names_mask = slots - 1;
	for (uint32_t i = 0; i < old_slots; i++)
		if (old[i])
			names_put(m, old[i]);
	free(old);
	return 0;
}

/* Removes the entry at slot I by backward shift (no tombstones). */
static void names_delete_at(struct meta *m, uint32_t i)
{
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & m->names_mask;
		struct meta_topic *t = m->names[j];
		if (!t)
			break;
		uint32_t home = (uint32_t)t->name_hash & m->names_mask;
		/* T may move back to I unless its home lies cyclically in (I, J]. */
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (!stays) {
			m->names[i] = t;
			i = j;
		}
	}
	m->names[i] = NULL;
}

static struct pid_slot *pids_slot(const struct meta *m, uint32_t id)
{
	uint32_t i = pid_hash(id) & m->pids_mask;
	for (;;) {
		struct pid_slot *s = &m->pids[i];
		if (s->partition_id == META_PARTITION_ID_NONE || s->partition_id == id)
			return s;
		i = (i + 1) & m->pids_mask;
	}
}

static int pids_reserve(struct meta *m, uint64_t need)
{
	if (m->pids && need * 2 <= (uint64_t)m->pids_mask + 1)
		return 0;
	if (need > UINT32_MAX / 2)
		return -ENOSPC;
	uint32_t slots = table_slots_for(need);
	struct pid_slot *old = m->pids;
	uint32_t old_slots = old ? m->pids_mask + 1 : 0;
	m->pids = calloc(slots, sizeof(*m->pids));
	if (!m->pids) {
		m->pids = old;
		return -ENOMEM;
	}
	m->pids_mask = slots - 1;
	for (uint32_t i = 0; i < old_slots; i++)
		if (old[i].partition_id != META_PARTITION_ID_NONE)
			*pids_slot(m, old[i].partition_id) = old[i];
	free(old);
	return 0;
}

/* Adds partition INDEX of T. Returns false when its id is already live. */
static bool pids_put(struct meta *m, struct meta_topic *t, uint32_t index)
{
	uint32_t id = t->partitions[index].partition_id;
	struct pid_slot *s = pids_slot(m, id);
	if (s->partition_id == id)
		return false;
	*s = (struct pid_slot){.partition_id = id, .partition_index = index, .topic = t};
	m->pids_used++;
	return true;
}

static void pids_delete(struct meta *m, uint32_t id)
{
	struct pid_slot *s = pids_slot(m, id);
	ASSERT(s->partition_id == id);
	uint32_t i = (uint32_t)(s - m->pids), j = i;
	for (;;) {
		j = (j + 1) & m->pids_mask;
		if (m->pids[j].partition_id == META_PARTITION_ID_NONE)
			break;
		uint32_t home = pid_hash(m->pids[j].partition_id) & m->pids_mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (!stays) {
			m->pids[i] = m->pids[j];
			i = j;
		}
	}
	m->pids[i] = (struct pid_slot){0};
	m->pids_used--;
}

/* Room for TOPICS_ADDED more topics and PARTITIONS_ADDED more partitions in every
 * table. Returns 0, -ENOSPC (over LIMITS_META_TOPICS_MAX, or the partition table would
 * pass 2^31 slots) or -ENOMEM; what was grown stays grown. */
static int tables_reserve(struct meta *m, uint32_t topics_added, uint32_t partitions_added)
{
	uint64_t need = (uint64_t)m->topic_count + topics_added;
	if (need > LIMITS_META_TOPICS_MAX)
		return -ENOSPC;
	if (need > m->topic_capacity) {
		uint64_t cap = m->topic_capacity ? (uint64_t)m->topic_capacity * 2 : 64;
		if (cap > LIMITS_META_TOPICS_MAX)
			cap = LIMITS_META_TOPICS_MAX;
		struct meta_topic **topics = realloc(m->topics, cap * sizeof(*topics));
		if (!topics)
			return -ENOMEM;
		m->topics = topics;
		m->topic_capacity = (uint32_t)cap;
	}
	int ret = names_reserve(m, need);
	if (ret)
		return ret;
	return pids_reserve(m, (uint64_t)m->pids_used + partitions_added);
}

/* ---- commit steps: cannot fail; used by live changes and by replay --------------- */

/* Inserts T (tables reserved). Returns false if one of its partition ids is already
 * live, which only a corrupt journal can cause (the caller then fails the open). */
static bool topic_insert(struct meta *m, struct meta_topic *t)
{
	ASSERT(m->topic_count < m->topic_capacity);
	t->slot = m->topic_count;
	m->topics[m->topic_count++] = t;
	names_put(m, t);
	for (uint32_t i = 0; i < t->partition_count; i++) {
		if (!pids_put(m, t, i))
			return false;
		uint32_t id = t->partitions[i].partition_id;
		if (id >= m->next_partition_id)
			m->next_partition_id = id + 1;
	}
	if (t->topic_id >= m->next_topic_id)
		m->next_topic_id = t->topic_id + 1;
	m->snapshot_bytes += topic_record_bytes(t);
	return true;
}

static void topic_remove(struct meta *m, struct meta_topic *t)
{
	m->snapshot_bytes -= topic_record_bytes(t);
	for (uint32_t i = 0; i < t->partition_count; i++)
		pids_delete(m, t->partitions[i].partition_id);
	struct meta_topic **slot = names_slot(m, t->name, t->name_hash);
	ASSERT(*slot == t);
	names_delete_at(m, (uint32_t)(slot - m->names));
	struct meta_topic *last = m->topics[--m->topic_count];
	m->topics[t->slot] = last;
	last->slot = t->slot;
	topic_free(t);
}

/* A config change prepared: the topic's new array, and the entry it drops. */
struct config_change {
	struct meta_config_kv *configs; /* the new array (NULL when it becomes empty) */
	uint32_t count;			/* entries in it */
	struct meta_config_kv dropped;	/* entry replaced or removed, key NULL if none */
	struct meta_config_kv added;	/* entry added, key NULL if none */
};

/* Prepares setting KEY to VALUE (NULL: removing it) on T. Returns 1 when there is a
 * change to make, 0 when there is nothing to do, or -ENOSPC, -ENOMEM. */
static int config_prepare(const struct meta_topic *t, const char *key, const char *value,
			  struct config_change *c)
{
	*c = (struct config_change){0};
	int64_t at = config_search(t, key);
	if (!value && at < 0)
		return 0;
	if (value && at >= 0 && strcmp(t->configs[at].value, value) == 0)
		return 0;
	if (value && at < 0 && t->config_count >= LIMITS_META_CONFIGS_PER_TOPIC_MAX)
		return -ENOSPC;
	c->count = t->config_count + (at < 0 ? 1 : 0) - (value ? 0 : 1);
	if (c->count > 0) {
		c->configs = malloc(c->count * sizeof(*c->configs));
		if (!c->configs)
			return -ENOMEM;
	}
	if (value && config_entry_new(key, value, &c->added)) {
		free(c->configs);
		return -ENOMEM;
	}
	uint32_t out = 0, insert = (uint32_t)(at >= 0 ? at : -at - 1);
	for (uint32_t i = 0; i <= t->config_count; i++) {
		if (i == insert && value)
			c->configs[out++] = c->added;
		if (i == t->config_count)
			break;
		if (at >= 0 && i == (uint32_t)at)
			c->dropped = t->configs[i];
		else
			c->configs[out++] = t->configs[i];
	}
	ASSERT(out == c->count);
	return 1;
}

static void config_abort(struct config_change *c)
{
	if (c->added.key)
		config_entry_free(&c->added);
	free(c->configs);
}

static void config_commit(struct meta *m, struct meta_topic *t, struct config_change *c)
{
	m->snapshot_bytes -= topic_record_bytes(t);
	free(t->configs);
	if (c->dropped.key)
		config_entry_free(&c->dropped);
	t->configs = c->configs;
	t->config_count = c->count;
	m->snapshot_bytes += topic_record_bytes(t);
}

/* Grows T's partition array to NEW_TOTAL (prepare step; contents beyond
 * partition_count are not visible). */
static int partitions_prepare(struct meta_topic *t, uint32_t new_total)
{
	struct meta_partition *p = realloc(t->partitions, new_total * sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->partitions = p;
	return 0;
}

/* Makes partitions [partition_count, NEW_TOTAL) of T, already filled in, live. Returns
 * false on a partition id already live (corrupt journal only). */
static bool partitions_commit(struct meta *m, struct meta_topic *t, uint32_t new_total)
{
	m->snapshot_bytes -= topic_record_bytes(t);
	uint32_t old = t->partition_count;
	t->partition_count = new_total;
	m->snapshot_bytes += topic_record_bytes(t);
	for (uint32_t i = old; i < new_total; i++) {
		if (!pids_put(m, t, i))
			return false;
		uint32_t id = t->partitions[i].partition_id;
		if (id >= m->next_partition_id)
			m->next_partition_id = id + 1;
	}
	return true;
}

/* ---- record encoding ------------------------------------------------------------- */

static void wb_need(struct wbuf *w, size_t n)
{
	if (w->err || w->len + n <= w->cap)
		return;
	size_t cap = w->cap ? w->cap : 256;
	while (cap < w->len + n)
		cap *= 2;
	uint8_t *p = realloc(w->p, cap);
	if (!p) {
		w->err = -ENOMEM;
		return;
	}
	w->p = p;
	w->cap = cap;
}

static void wb_bytes(struct wbuf *w, const void *src, size_t n)
{
	wb_need(w, n);
	if (w->err)
		return;
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void wb_u8(struct wbuf *w, uint8_t v)
{
	wb_bytes(w, &v, 1);
}

static void wb_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	wb_bytes(w, b, 2);
}

static void wb_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	wb_bytes(w, b, 4);
}

static void wb_u64(struct wbuf *w, uint64_t v)
{
	wb_u32(w, (uint32_t)v);
	wb_u32(w, (uint32_t)(v >> 32));
}

static void wb_str16(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);
	ASSERT(n <= UINT16_MAX);
	wb_u16(w, (uint16_t)n);
	wb_bytes(w, s, n);
}

static void put_u32_at(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t record_crc(const uint8_t *rec, uint32_t payload_len)
{
	uint32_t crc = crc32c(0, rec, 4); /* len */
	return crc32c(crc, rec + 8, 1 + (size_t)payload_len);
}

static void rec_begin(struct wbuf *w, uint8_t type)
{
	w->rec_start = w->len;
	wb_u32(w, 0); /* len, set by rec_end */
	wb_u32(w, 0); /* crc */
	wb_u8(w, type);
}

static void rec_end(struct wbuf *w)
{
	if (w->err)
		return;
	uint8_t *rec = w->p + w->rec_start;
	size_t payload = w->len - w->rec_start - REC_HEADER_BYTES;
	ASSERT(payload + REC_HEADER_BYTES <= LIMITS_META_RECORD_BYTES_MAX);
	put_u32_at(rec, (uint32_t)payload);
	put_u32_at(rec + 4, record_crc(rec, (uint32_t)payload));
}

static void enc_header(struct wbuf *w)
{
	rec_begin(w, REC_HEADER);
	wb_bytes(w, JOURNAL_MAGIC, 8);
	wb_u32(w, JOURNAL_VERSION);
	rec_end(w);
}

static void enc_state(struct wbuf *w, const struct meta *m)
{
	rec_begin(w, REC_STATE);
	wb_u64(w, m->next_topic_id);
	wb_u32(w, m->next_partition_id);
	wb_u64(w, m->producer_id_hwm);
	rec_end(w);
}

static void enc_topic(struct wbuf *w, const struct meta_topic *t)
{
	rec_begin(w, REC_TOPIC);
	wb_u64(w, t->topic_id);
	wb_str16(w, t->name);
	wb_u32(w, t->partition_count);
	for (uint32_t i = 0; i < t->partition_count; i++) {
		wb_u32(w, t->partitions[i].partition_id);
		wb_u32(w, t->partitions[i].shard);
	}
	wb_u16(w, (uint16_t)t->config_count);
	for (uint32_t i = 0; i < t->config_count; i++) {
		wb_str16(w, t->configs[i].key);
		wb_str16(w, t->configs[i].value);
	}
	rec_end(w);
}

static void enc_topic_ref(struct wbuf *w, uint8_t type, const struct meta_topic *t)
{
	rec_begin(w, type);
	wb_u64(w, t->topic_id);
	wb_str16(w, t->name);
}

/* ---- record decoding ------------------------------------------------------------- */

/* A bounds-checked reader over one record's payload; bad sticks at the first overrun. */
struct rbuf {
	const uint8_t *p; /* payload */
	size_t len;	  /* payload bytes */
	size_t pos;	  /* next byte */
	bool bad;	  /* read past the end */
};

static const uint8_t *rb_take(struct rbuf *r, size_t n)
{
	if (r->bad || r->len - r->pos < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static uint8_t rb_u8(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 1);
	return p ? p[0] : 0;
}

static uint16_t rb_u16(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 2);
	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static uint32_t rb_u32(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 4);
	return p ? get_u32_at(p) : 0;
}

static uint64_t rb_u64(struct rbuf *r)
{
	uint64_t lo = rb_u32(r);
	return lo | (uint64_t)rb_u32(r) << 32;
}

/* Reads a u16-length string of at most MAX bytes into OUT (MAX + 1 bytes), NUL
 * terminated. Returns false (and marks R bad) when too long or truncated. */
static bool rb_str16(struct rbuf *r, char *out, size_t max)
{
	uint16_t n = rb_u16(r);
	if (n > max) {
		r->bad = true;
		return false;
	}
	const uint8_t *p = rb_take(r, n);
	if (!p)
		return false;
	if (memchr(p, '\0', n)) { /* our strings never hold NUL */
		r->bad = true;
		return false;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* ---- the journal file ------------------------------------------------------------ */

/* Appends the LEN bytes of one or more records and makes them durable. On failure the
 * file is cut back to its previous end; if even that fails the meta turns broken. */
static int journal_append(struct meta *m, const void *buf, size_t len)
{
	if (m->broken)
		return -EIO;
	int ret = disk_pwrite_all(m->journal_fd, buf, len, m->journal_bytes);
	if (ret == 0 && fdatasync(m->journal_fd) != 0)
		ret = -errno;
	if (ret == 0) {
		m->journal_bytes += len;
		return 0;
	}
	LOG_ERROR("meta: append to %s failed: %s; the change is not made", m->path, strerror(-ret));
	if (ftruncate(m->journal_fd, (off_t)m->journal_bytes) != 0 ||
	    fdatasync(m->journal_fd) != 0) {
		m->broken = true;
		LOG_ERROR("meta: cannot cut %s back to %" PRIu64 " bytes (%s): metadata is "
			  "read-only until a restart",
			  m->path, m->journal_bytes, strerror(errno));
	}
	return ret;
}

/* Writes the snapshot of M's state into W. */
static void snapshot_encode(const struct meta *m, struct wbuf *w)
{
	enc_header(w);
	enc_state(w, m);
	for (uint32_t i = 0; i < m->topic_count; i++)
		enc_topic(w, m->topics[i]);
}

int meta_compact(struct meta *m)
{
	if (m->batching)
		return -EBUSY;
	if (m->broken)
		return -EIO;
	struct wbuf w = {0};
	snapshot_encode(m, &w);
	if (w.err) {
		free(w.p);
		return w.err;
	}
	ASSERT(w.len == m->snapshot_bytes);
	int ret = disk_write_atomic(m->dir_fd, META_JOURNAL_NAME, w.p, w.len);
	free(w.p);
	if (ret) {
		LOG_WARN("meta: compacting %s failed: %s; the journal stays as it is", m->path,
			 strerror(-ret));
		return ret;
	}
	/* The descriptor still points at the old, now unlinked, file. */
	int fd = openat(m->dir_fd, META_JOURNAL_NAME, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		m->broken = true;
		LOG_ERROR("meta: cannot reopen %s after compacting it: %s; metadata is "
			  "read-only until a restart",
			  m->path, strerror(-ret));
		return ret;
	}
	close(m->journal_fd);
	m->journal_fd = fd;
	LOG_INFO("meta: compacted %s from %" PRIu64 " to %zu bytes (%u topics)", m->path,
		 m->journal_bytes, w.len, m->topic_count);
	m->journal_bytes = w.len;
	m->compact_retry_bytes = 0;
	return 0;
}

static bool compaction_due(const struct meta *m)
{
	return m->journal_bytes > 2 * m->snapshot_bytes &&
	       m->journal_bytes > LIMITS_META_COMPACT_MIN_BYTES &&
	       m->journal_bytes >= m->compact_retry_bytes;
}

/* After a change: compacts when due. A failure is logged and retried later; the
 * change itself is already durable. */
static void maybe_compact(struct meta *m)
{
	if (!compaction_due(m) || m->broken || m->batching)
		return;
	if (meta_compact(m) != 0)
		m->compact_retry_bytes = m->journal_bytes + COMPACT_RETRY_BYTES;
}

/* In a batch: adds the record REC (LEN bytes, checksummed) to it as an item. Returns 0,
 * -EIO (broken), -ENOBUFS (the batch would pass the record limit) or -ENOMEM, with the
 * batch as it was. */
static int batch_add(struct meta *m, const uint8_t *rec, size_t len)
{
	struct wbuf *b = &m->batch;
	size_t item = len - (REC_HEADER_BYTES - BATCH_ITEM_HEADER_BYTES);
	size_t header = b->len == 0 ? REC_HEADER_BYTES : 0;
	if (m->broken)
		return -EIO;
	if (m->batch_records > 0 && b->len + item > LIMITS_META_RECORD_BYTES_MAX)
		return -ENOBUFS;
	wb_need(b, header + item);
	if (b->err) {
		b->err = 0;
		return -ENOMEM;
	}
	if (header) {
		memset(b->p, 0, REC_HEADER_BYTES); /* the BATCH header, set by meta_batch_end */
		b->len = REC_HEADER_BYTES;
	}
	wb_bytes(b, rec, 4);				  /* len */
	wb_bytes(b, rec + 8, len - REC_HEADER_BYTES + 1); /* type, payload */
	m->batch_records++;
	return 0;
}

/* Appends W's record, or adds it to the batch; frees W. */
static int journal_write(struct meta *m, struct wbuf *w)
{
	int ret = w->err;
	if (!ret)
		ret = m->batching ? batch_add(m, w->p, w->len) : journal_append(m, w->p, w->len);
	free(w->p);
	*w = (struct wbuf){0};
	return ret;
}

/* ---- changes --------------------------------------------------------------------- */

int meta_create_topic(struct meta *m, const char *name, uint32_t partitions,
		      const struct meta_config_kv *configs, uint32_t config_count,
		      const struct meta_topic **out)
{
	if (!meta_topic_name_valid(name) || partitions == 0 ||
	    partitions > LIMITS_META_PARTITIONS_PER_TOPIC_MAX || (config_count > 0 && !configs))
		return -EINVAL;
	if (meta_find_topic(m, name))
		return -EEXIST;
	if (m->broken)
		return -EIO;
	if (m->topic_count >= LIMITS_META_TOPICS_MAX ||
	    (uint64_t)m->next_partition_id + partitions > UINT32_MAX)
		return -ENOSPC;

	struct meta_topic *t;
	int ret = topic_new(name, m->next_topic_id, partitions, configs, config_count, &t);
	if (ret)
		return ret;
	for (uint32_t p = 0; p < partitions; p++) {
		t->partitions[p].partition_id = m->next_partition_id + p;
		t->partitions[p].shard = meta_placement_shard(name, p, m->shard_count);
	}
	ret = tables_reserve(m, 1, partitions);
	if (ret)
		goto out_free_topic;
	struct wbuf w = {0};
	enc_topic(&w, t);
	ret = journal_write(m, &w);
	if (ret)
		goto out_free_topic;
	bool ok = topic_insert(m, t);
	ASSERT(ok); /* its ids are fresh */
	if (out)
		*out = t;
	maybe_compact(m);
	return 0;

out_free_topic:
	topic_free(t);
	return ret;
}

int meta_delete_topic(struct meta *m, const char *name)
{
	struct meta_topic *t = (struct meta_topic *)meta_find_topic(m, name);
	if (!t)
		return -ENOENT;
	struct wbuf w = {0};
	enc_topic_ref(&w, REC_DELETE, t);
	rec_end(&w);
	int ret = journal_write(m, &w);
	if (ret)
		return ret;
	topic_remove(m, t);
	maybe_compact(m);
	return 0;
}

int meta_add_partitions(struct meta *m, const char *name, uint32_t new_total)
{
	struct meta_topic *t = (struct meta_topic *)meta_find_topic(m, name);
	if (!t)
		return -ENOENT;
	if (new_total <= t->partition_count || new_total > LIMITS_META_PARTITIONS_PER_TOPIC_MAX)
		return -EINVAL;
	if (m->broken)
		return -EIO;
	uint32_t added = new_total - t->partition_count;
	if ((uint64_t)m->next_partition_id + added > UINT32_MAX)
		return -ENOSPC;
	int ret = tables_reserve(m, 0, added);
	if (ret)
		return ret;
	ret = partitions_prepare(t, new_total);
	if (ret)
		return ret;
	struct wbuf w = {0};
	enc_topic_ref(&w, REC_PARTITIONS, t);
	wb_u32(&w, added);
	for (uint32_t p = t->partition_count; p < new_total; p++) {
		t->partitions[p].partition_id = m->next_partition_id + (p - t->partition_count);
		t->partitions[p].shard = meta_placement_shard(name, p, m->shard_count);
		wb_u32(&w, t->partitions[p].partition_id);
		wb_u32(&w, t->partitions[p].shard);
	}
	rec_end(&w);
	ret = journal_write(m, &w);
	if (ret)
		return ret;
	bool ok = partitions_commit(m, t, new_total);
	ASSERT(ok);
	maybe_compact(m);
	return 0;
}

int meta_set_topic_config(struct meta *m, const char *name, const char *key, const char *value)
{
	struct meta_topic *t = (struct meta_topic *)meta_find_topic(m, name);
	if (!t)
		return -ENOENT;
	if (!config_key_valid(key) || (value && !config_value_valid(value)))
		return -EINVAL;
	if (m->broken)
		return -EIO;
	struct config_change c;
	int ret = config_prepare(t, key, value, &c);
	if (ret <= 0)
		return ret;
	struct wbuf w = {0};
	enc_topic_ref(&w, REC_CONFIG, t);
	wb_str16(&w, key);
	wb_u8(&w, value ? 1 : 0);
	wb_str16(&w, value ? value : "");
	rec_end(&w);
	ret = journal_write(m, &w);
	if (ret) {
		config_abort(&c);
		return ret;
	}
	config_commit(m, t, &c);
	maybe_compact(m);
	return 0;
}

uint64_t meta_next_producer_id(struct meta *m, int *err)
{
	ASSERT(!m->batching); /* its id would be handed out before it is durable */
	*err = 0;
	if (m->next_producer_id > PRODUCER_ID_MAX) {
		*err = -ENOSPC;
		return 0;
	}
	if (m->next_producer_id >= m->producer_id_hwm) {
		uint64_t hwm = m->next_producer_id + LIMITS_META_PRODUCER_ID_BLOCK;
		if (hwm > PRODUCER_ID_MAX + 1)
			hwm = PRODUCER_ID_MAX + 1;
		struct wbuf w = {0};
		rec_begin(&w, REC_PRODUCER_IDS);
		wb_u64(&w, hwm);
		rec_end(&w);
		int ret = journal_write(m, &w);
		if (ret) {
			*err = ret;
			return 0;
		}
		m->producer_id_hwm = hwm;
		maybe_compact(m);
	}
	return m->next_producer_id++;
}

/* ---- lookups --------------------------------------------------------------------- */

const struct meta_topic *meta_find_topic(const struct meta *m, const char *name)
{
	if (!name || strnlen(name, LIMITS_TOPIC_NAME_BYTES + 1) > LIMITS_TOPIC_NAME_BYTES)
		return NULL;
	return *names_slot(m, name, name_hash(name));
}

const struct meta_topic *meta_topic_by_partition_id(const struct meta *m, uint32_t partition_id,
						    uint32_t *partition_index)
{
	if (partition_id == META_PARTITION_ID_NONE)
		return NULL;
	const struct pid_slot *s = pids_slot(m, partition_id);
	if (s->partition_id != partition_id)
		return NULL;
	if (partition_index)
		*partition_index = s->partition_index;
	return s->topic;
}

bool meta_partition_id_live(const struct meta *m, uint32_t partition_id)
{
	return meta_topic_by_partition_id(m, partition_id, NULL) != NULL;
}

uint32_t meta_topic_count(const struct meta *m)
{
	return m->topic_count;
}

const struct meta_topic *meta_topic_at(const struct meta *m, uint32_t i)
{
	ASSERT(i < m->topic_count);
	return m->topics[i];
}

uint64_t meta_journal_bytes(const struct meta *m)
{
	return m->journal_bytes;
}

uint64_t meta_snapshot_bytes(const struct meta *m)
{
	return m->snapshot_bytes;
}

uint32_t meta_shard_count(const struct meta *m)
{
	return m->shard_count;
}

uint32_t meta_next_partition_id(const struct meta *m)
{
	return m->next_partition_id;
}

/* ---- replay ---------------------------------------------------------------------- */

/* Scratch for decoding one record's strings (NUL-terminated copies). */
struct replay {
	struct meta *m;						     /* state being rebuilt */
	char name[LIMITS_TOPIC_NAME_BYTES + 1];			     /* topic name of the record */
	char key[LIMITS_META_CONFIG_KEY_BYTES + 1];		     /* config key */
	char value[LIMITS_META_CONFIG_VALUE_BYTES + 1];		     /* config value */
	struct meta_config_kv kv[LIMITS_META_CONFIGS_PER_TOPIC_MAX]; /* a TOPIC's configs */
	char *strings;	 /* a TOPIC's config strings, back to back */
	const char *why; /* reason a record was refused */
};

/* Reads "topic_id u64 | name" and finds the live topic; sets why and returns NULL when
 * it is missing or has another id. */
static struct meta_topic *replay_topic_ref(struct replay *rp, struct rbuf *r)
{
	uint64_t id = rb_u64(r);
	if (!rb_str16(r, rp->name, LIMITS_TOPIC_NAME_BYTES)) {
		rp->why = "bad topic name";
		return NULL;
	}
	struct meta_topic *t = (struct meta_topic *)meta_find_topic(rp->m, rp->name);
	if (!t || t->topic_id != id) {
		rp->why = "refers to a topic that does not exist";
		return NULL;
	}
	return t;
}

static int replay_topic(struct replay *rp, struct rbuf *r)
{
	struct meta *m = rp->m;
	uint64_t topic_id = rb_u64(r);
	if (!rb_str16(r, rp->name, LIMITS_TOPIC_NAME_BYTES) || !meta_topic_name_valid(rp->name)) {
		rp->why = "bad topic name";
		return -EBADMSG;
	}
	if (topic_id == 0 || meta_find_topic(m, rp->name)) {
		rp->why = "creates a topic that exists";
		return -EBADMSG;
	}
	uint32_t count = rb_u32(r);
	if (count == 0 || count > LIMITS_META_PARTITIONS_PER_TOPIC_MAX ||
	    r->len - r->pos < 8ull * count) {
		rp->why = "bad partition count";
		return -EBADMSG;
	}
	size_t parts_pos = r->pos;
	rb_take(r, 8ull * count);
	uint16_t config_count = rb_u16(r);
	if (config_count > LIMITS_META_CONFIGS_PER_TOPIC_MAX) {
		rp->why = "bad config count";
		return -EBADMSG;
	}
	char *s = rp->strings;
	for (uint16_t i = 0; i < config_count; i++) {
		rp->kv[i].key = s;
		if (!rb_str16(r, s, LIMITS_META_CONFIG_KEY_BYTES))
			break;
		s += strlen(s) + 1;
		rp->kv[i].value = s;
		if (!rb_str16(r, s, LIMITS_META_CONFIG_VALUE_BYTES))
			break;
		s += strlen(s) + 1;
	}
	if (r->bad || r->pos != r->len) {
		rp->why = "malformed topic record";
		return -EBADMSG;
	}
	struct meta_topic *t;
	int ret = topic_new(rp->name, topic_id, count, rp->kv, config_count, &t);
	if (ret) {
		rp->why = ret == -EINVAL ? "invalid configs" : "out of memory";
		return ret == -EINVAL ? -EBADMSG : ret;
	}
	for (uint32_t i = 0; i < count; i++) {
		t->partitions[i].partition_id = get_u32_at(r->p + parts_pos + 8ull * i);
		t->partitions[i].shard = get_u32_at(r->p + parts_pos + 8ull * i + 4);
		if (t->partitions[i].partition_id == META_PARTITION_ID_NONE ||
		    t->partitions[i].partition_id == UINT32_MAX) {
			topic_free(t);
			rp->why = "bad partition id";
			return -EBADMSG;
		}
	}
	ret = tables_reserve(m, 1, count);
	if (ret) {
		topic_free(t);
		rp->why = ret == -ENOSPC ? "more topics or partitions than the limits allow"
					 : "out of memory";
		return ret == -ENOSPC ? -EBADMSG : ret;
	}
	if (!topic_insert(m, t)) { /* inserted, freed with the meta */
		rp->why = "reuses a live partition id";
		return -EBADMSG;
	}
	return 0;
}

static int replay_partitions(struct replay *rp, struct rbuf *r)
{
	struct meta_topic *t = replay_topic_ref(rp, r);
	if (!t)
		return -EBADMSG;
	uint32_t added = rb_u32(r);
	if (added == 0 || added > LIMITS_META_PARTITIONS_PER_TOPIC_MAX - t->partition_count ||
	    r->len - r->pos != 8ull * added) {
		rp->why = "bad partition count";
		return -EBADMSG;
	}
	int ret = tables_reserve(rp->m, 0, added);
	if (!ret)
		ret = partitions_prepare(t, t->partition_count + added);
	if (ret) {
		rp->why =
		    ret == -ENOSPC ? "more partitions than the limits allow" : "out of memory";
		return ret == -ENOSPC ? -EBADMSG : ret;
	}
	for (uint32_t i = 0; i < added; i++) {
		struct meta_partition *p = &t->partitions[t->partition_count + i];
		p->partition_id = rb_u32(r);
		p->shard = rb_u32(r);
		if (p->partition_id == META_PARTITION_ID_NONE || p->partition_id == UINT32_MAX) {
			rp->why = "bad partition id";
			return -EBADMSG;
		}
	}
	if (!partitions_commit(rp->m, t, t->partition_count + added)) {
		rp->why = "reuses a live partition id";
		return -EBADMSG;
	}
	return 0;
}

static int replay_config(struct replay *rp, struct rbuf *r)
{
	struct meta_topic *t = replay_topic_ref(rp, r);
	if (!t)
		return -EBADMSG;
	bool key_ok = rb_str16(r, rp->key, LIMITS_META_CONFIG_KEY_BYTES);
	uint8_t present = rb_u8(r);
	bool value_ok = rb_str16(r, rp->value, LIMITS_META_CONFIG_VALUE_BYTES);
	if (!key_ok || !value_ok || r->bad || r->pos != r->len || present > 1 ||
	    !config_key_valid(rp->key) || !config_value_valid(rp->value)) {
		rp->why = "malformed config record";
		return -EBADMSG;
	}
	struct config_change c;
	int ret = config_prepare(t, rp->key, present ? rp->value : NULL, &c);
	if (ret < 0) {
		rp->why = ret == -ENOSPC ? "too many configs" : "out of memory";
		return ret == -ENOSPC ? -EBADMSG : ret;
	}
	if (ret > 0)
		config_commit(rp->m, t, &c);
	return 0;
}

static int replay_record(struct replay *rp, uint8_t type, struct rbuf *r, bool at_start);

/* A BATCH: its items, in order, each a record of type 2 to 7. */
static int replay_batch(struct replay *rp, struct rbuf *r)
{
	uint32_t items = 0;
	while (r->pos < r->len) {
		uint32_t plen = rb_u32(r);
		uint8_t type = rb_u8(r);
		const uint8_t *payload = r->bad ? NULL : rb_take(r, plen);
		if (!payload || type <= REC_HEADER || type >= REC_BATCH) {
			rp->why = "malformed batch record";
			return -EBADMSG;
		}
		struct rbuf item = {.p = payload, .len = plen};
		int ret = replay_record(rp, type, &item, false);
		if (ret)
			return ret;
		items++;
	}
	if (items == 0) {
		rp->why = "empty batch record";
		return -EBADMSG;
	}
	return 0;
}

/* Applies the record of TYPE with payload R; the first record (AT_START) must be the
 * header. Returns 0, -EBADMSG with rp->why set, or -ENOMEM. */
static int replay_record(struct replay *rp, uint8_t type, struct rbuf *r, bool at_start)
{
	struct meta *m = rp->m;
	if (at_start != (type == REC_HEADER)) {
		rp->why = at_start ? "the file does not start with a sluice journal header"
				   : "a second header";
		return -EBADMSG;
	}
	switch (type) {
	case REC_HEADER: {
		const uint8_t *magic = rb_take(r, 8);
		uint32_t version = rb_u32(r);
		if (!magic || memcmp(magic, JOURNAL_MAGIC, 8) != 0 || r->pos != r->len) {
			rp->why = "the file does not start with a sluice journal header";
			return -EBADMSG;
		}
		if (version != JOURNAL_VERSION) {
			rp->why = "journal version not supported (written by another sluice)";
			return -EBADMSG;
		}
		return 0;
	}
	case REC_STATE: {
		uint64_t topic_id = rb_u64(r);
		uint32_t partition_id = rb_u32(r);
		uint64_t hwm = rb_u64(r);
		if (r->bad || r->pos != r->len || topic_id == 0 || partition_id == 0 ||
		    hwm > PRODUCER_ID_MAX + 1) {
			rp->why = "malformed state record";
			return -EBADMSG;
		}
		if (topic_id > m->next_topic_id)
			m->next_topic_id = topic_id;
		if (partition_id > m->next_partition_id)
			m->next_partition_id = partition_id;
		if (hwm > m->producer_id_hwm)
			m->producer_id_hwm = hwm;
		return 0;
	}
	case REC_TOPIC:
		return replay_topic(rp, r);
	case REC_DELETE: {
		struct meta_topic *t = replay_topic_ref(rp, r);
		if (!t)
			return -EBADMSG;
		if (r->bad || r->pos != r->len) {
			rp->why = "malformed delete record";
			return -EBADMSG;
		}
		topic_remove(m, t);
		return 0;
	}
	case REC_PARTITIONS:
		return replay_partitions(rp, r);
	case REC_CONFIG:
		return replay_config(rp, r);
	case REC_BATCH:
		return replay_batch(rp, r);
	case REC_PRODUCER_IDS: {
		uint64_t hwm = rb_u64(r);
		if (r->bad || r->pos != r->len || hwm > PRODUCER_ID_MAX + 1) {
			rp->why = "malformed producer-id record";
			return -EBADMSG;
		}
		if (hwm > m->producer_id_hwm)
			m->producer_id_hwm = hwm;
		return 0;
	}
	default:
		rp->why = "unknown record type (written by a newer sluice?)";
		return -EBADMSG;
	}
}

/* Whether a whole, checksum-valid record starts at POS of BUF (LEN bytes); if so its
 * payload length goes to *PAYLOAD_LEN. */
static bool record_valid_at(const uint8_t *buf, size_t len, size_t pos, uint32_t *payload_len)
{
	if (len - pos < REC_HEADER_BYTES)
		return false;
	const uint8_t *rec = buf + pos;
	uint8_t type = rec[8];
	uint32_t plen = get_u32_at(rec);
	if (type == 0 || type > REC_TYPE_MAX ||
	    plen > LIMITS_META_RECORD_BYTES_MAX - REC_HEADER_BYTES ||
	    plen > len - pos - REC_HEADER_BYTES)
		return false;
	if (get_u32_at(rec + 4) != record_crc(rec, plen))
		return false;
	*payload_len = plen;
	return true;
}

/* The first position after FROM where a valid record starts, or LEN if none. The
 * expected next record (right after the bad one's declared length) is the likely hit,
 * but a damaged length hides it, so every byte position is tried; type and length
 * reject almost every wrong position before a checksum is computed. */
static size_t next_valid_record(const uint8_t *buf, size_t len, size_t from)
{
	uint32_t plen;
	for (size_t q = from; q + REC_HEADER_BYTES <= len; q++)
		if (record_valid_at(buf, len, q, &plen))
			return q;
	return len;
}

/* Formats the reason into ERR and the log, returns RET. */
__attribute__((format(printf, 4, 5))) static int open_fail(char *err, size_t err_len, int ret,
							   const char *fmt, ...)
{
	char line[LIMITS_LOG_LINE_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	LOG_ERROR("%s", line);
	if (err && err_len > 0)
		snprintf(err, err_len, "%s", line);
	return ret;
}

/* Replays BUF (LEN bytes). Sets *VALID_END to the end of the last good record: LEN, or
 * the start of a torn tail. Returns 0 or an error (message in ERR). */
static int replay_journal(struct meta *m, const uint8_t *buf, size_t len, size_t *valid_end,
			  char *err, size_t err_len)
{
	struct replay *rp = calloc(1, sizeof(*rp));
	if (!rp)
		return open_fail(err, err_len, -ENOMEM, "meta: out of memory replaying %s",
				 m->path);
	rp->m = m;
	rp->strings = malloc(LIMITS_META_CONFIGS_PER_TOPIC_MAX *
			     (LIMITS_META_CONFIG_KEY_BYTES + LIMITS_META_CONFIG_VALUE_BYTES + 2));
	int ret = 0;
	if (!rp->strings) {
		ret = open_fail(err, err_len, -ENOMEM, "meta: out of memory replaying %s", m->path);
		goto out_free;
	}
	size_t pos = 0;
	if (len == 0)
		ret = open_fail(err, err_len, -EBADMSG,
				"meta: %s is empty (no journal header); refusing to start "
				"(restore the file from a backup)",
				m->path);
	while (ret == 0 && pos < len) {
		uint32_t plen;
		if (!record_valid_at(buf, len, pos, &plen)) {
			size_t next = pos == 0 ? 0 : next_valid_record(buf, len, pos + 1);
			if (pos == 0) {
				ret =
				    open_fail(err, err_len, -EBADMSG,
					      "meta: %s: no valid journal header at byte 0; "
					      "refusing to start (restore the file from a backup)",
					      m->path);
			} else if (next < len) {
				ret = open_fail(
				    err, err_len, -EBADMSG,
				    "meta: %s: corrupt record at byte %zu, followed by a "
				    "valid record at byte %zu; refusing to start (restore "
				    "the file, or cut it at byte %zu to lose the changes "
				    "after it)",
				    m->path, pos, next, pos);
			}
			break; /* else: a torn tail, cut by the caller */
		}
		struct rbuf r = {.p = buf + pos + REC_HEADER_BYTES, .len = plen};
		ret = replay_record(rp, buf[pos + 8], &r, pos == 0);
		if (ret) {
			ret = open_fail(err, err_len, ret,
					"meta: %s: record at byte %zu (type %u): %s; refusing to "
					"start",
					m->path, pos, buf[pos + 8], rp->why ? rp->why : "invalid");
			break;
		}
		pos += REC_HEADER_BYTES + plen;
	}
	*valid_end = pos;
out_free:
	free(rp->strings);
	free(rp);
	return ret;
}

/* ---- group commit ---------------------------------------------------------------- */

void meta_batch_begin(struct meta *m)
{
	ASSERT(!m->batching);
	m->batching = true;
	m->batch.len = 0;
	m->batch_records = 0;
}

bool meta_batching(const struct meta *m)
{
	return m->batching;
}

/* After a failed batch: rebuilds the tables by replaying the journal, which the failed
 * append cut back to its end before the batch. Ids stay past those the batch handed
 * out. When the rebuild fails, the meta turns broken. */
static void batch_undo(struct meta *m)
{
	struct meta *fresh = calloc(1, sizeof(*fresh));
	void *buf = NULL;
	size_t len = 0, valid_end = 0;
	int ret = fresh ? 0 : -ENOMEM;
	if (fresh) {
		fresh->dir_fd = -1;
		fresh->journal_fd = -1;
		memcpy(fresh->path, m->path, sizeof(fresh->path));
		fresh->shard_count = m->shard_count;
		fresh->next_topic_id = 1;
		fresh->next_partition_id = 1;
		fresh->snapshot_bytes = HEADER_REC_BYTES + STATE_REC_BYTES;
		ret = tables_reserve(fresh, 0, 0);
	}
	if (!ret)
		ret = disk_read_file(m->dir_fd, META_JOURNAL_NAME, LIMITS_META_JOURNAL_BYTES_MAX,
				     &buf, &len);
	if (!ret)
		ret = replay_journal(fresh, buf, len, &valid_end, NULL, 0);
	if (!ret && (len != m->journal_bytes || valid_end != len))
		ret = -EBADMSG;
	free(buf);
	if (ret) {
		m->broken = true;
		LOG_ERROR("meta: cannot rebuild the metadata from %s after a failed write (%s); "
			  "metadata is read-only until a restart",
			  m->path, strerror(-ret));
		meta_close(fresh);
		return;
	}
	/* Swap the rebuilt tables in; the old ones go with FRESH. */
	struct meta_topic **topics = m->topics;
	uint32_t topic_count = m->topic_count, topic_capacity = m->topic_capacity;
	struct meta_topic **names = m->names;
	uint32_t names_mask = m->names_mask;
	struct pid_slot *pids = m->pids;
	uint32_t pids_mask = m->pids_mask, pids_used = m->pids_used;
	m->topics = fresh->topics;
	m->topic_count = fresh->topic_count;
	m->topic_capacity = fresh->topic_capacity;
	m->names = fresh->names;
	m->names_mask = fresh->names_mask;
	m->pids = fresh->pids;
	m->pids_mask = fresh->pids_mask;
	m->pids_used = fresh->pids_used;
	m->snapshot_bytes = fresh->snapshot_bytes;
	m->producer_id_hwm = fresh->producer_id_hwm;
	if (fresh->next_topic_id > m->next_topic_id)
		m->next_topic_id = fresh->next_topic_id;
	if (fresh->next_partition_id > m->next_partition_id)
		m->next_partition_id = fresh->next_partition_id;
	fresh->topics = topics;
	fresh->topic_count = topic_count;
	fresh->topic_capacity = topic_capacity;
	fresh->names = names;
	fresh->names_mask = names_mask;
	fresh->pids = pids;
	fresh->pids_mask = pids_mask;
	fresh->pids_used = pids_used;
	meta_close(fresh);
	LOG_WARN("meta: undid the %u change(s) of a failed batch; %u topics", m->batch_records,
		 m->topic_count);
	DASSERT(meta_sanity(m));
}

int meta_batch_end(struct meta *m)
{
	ASSERT(m->batching);
	m->batching = false;
	struct wbuf *b = &m->batch;
	int ret = 0;
	if (m->batch_records == 1) {
		/* One change: its own record, as outside a batch. The item (len | type |
		 * payload) sits 4 bytes into where the record goes (len | crc | type | ...). */
		uint8_t *rec = b->p + REC_HEADER_BYTES - 4;
		uint32_t plen = get_u32_at(b->p + REC_HEADER_BYTES);
		put_u32_at(rec, plen);
		put_u32_at(rec + 4, record_crc(rec, plen));
		ret = journal_append(m, rec, b->len - (REC_HEADER_BYTES - 4));
	} else if (m->batch_records > 1) {
		uint32_t plen = (uint32_t)(b->len - REC_HEADER_BYTES);
		put_u32_at(b->p, plen);
		b->p[8] = REC_BATCH;
		put_u32_at(b->p + 4, record_crc(b->p, plen));
		ret = journal_append(m, b->p, b->len);
	}
	if (ret && !m->broken)
		batch_undo(m);
	free(b->p);
	*b = (struct wbuf){0};
	m->batch_records = 0;
	if (!ret)
		maybe_compact(m);
	return ret;
}

/* ---- open and close -------------------------------------------------------------- */

/* Every stored partition must live on a shard this run has. */
static int check_placement(const struct meta *m, char *err, size_t err_len)
{
	const struct meta_topic *bad = NULL;
	uint32_t bad_partition = 0, shard_max = 0;
	for (uint32_t i = 0; i < m->topic_count; i++) {
		const struct meta_topic *t = m->topics[i];
		for (uint32_t p = 0; p < t->partition_count; p++) {
			uint32_t shard = t->partitions[p].shard;
			if (shard >= m->shard_count && !bad) {
				bad = t;
				bad_partition = p;
			}
			if (shard > shard_max)
				shard_max = shard;
		}
	}
	if (!bad)
		return 0;
	return open_fail(err, err_len, -ERANGE,
			 "meta: topic '%s' partition %u lives on shard %u, but this run has "
			 "only %u shards (partitions never move); start with --shards %u or "
			 "more",
			 bad->name, bad_partition, bad->partitions[bad_partition].shard,
			 m->shard_count, shard_max + 1);
}

/* Creates meta.journal with the snapshot of the empty state. */
static int journal_create(struct meta *m, char *err, size_t err_len)
{
	struct wbuf w = {0};
	snapshot_encode(m, &w);
	int ret = w.err;
	if (!ret)
		ret = disk_write_atomic(m->dir_fd, META_JOURNAL_NAME, w.p, w.len);
	if (!ret)
		m->journal_bytes = w.len;
	free(w.p);
	if (ret)
		return open_fail(err, err_len, ret, "meta: cannot create %s: %s", m->path,
				 strerror(-ret));
	LOG_INFO("meta: created %s", m->path);
	return 0;
}

/* Cuts a torn tail at VALID_END off the file of LEN bytes. */
static int journal_cut_tail(struct meta *m, size_t valid_end, size_t len, char *err, size_t err_len)
{
	if (ftruncate(m->journal_fd, (off_t)valid_end) != 0 || fdatasync(m->journal_fd) != 0)
		return open_fail(err, err_len, -errno, "meta: cannot cut the torn tail of %s: %s",
				 m->path, strerror(errno));
	LOG_WARN("meta: %s: dropped %zu bytes of a torn record at byte %zu (a crash during "
		 "an append; that change was never acknowledged)",
		 m->path, len - valid_end, valid_end);
	return 0;
}

int meta_open(struct meta **out, const char *data_dir, uint32_t shard_count, char *err,
	      size_t err_len)
{
	if (err && err_len > 0)
		err[0] = '\0';
	if (!data_dir || shard_count == 0 || shard_count > LIMITS_SHARDS_MAX)
		return open_fail(err, err_len, -EINVAL,
				 "meta: bad arguments (shard count %u, must be 1 to %u)",
				 shard_count, LIMITS_SHARDS_MAX);
	struct meta *m = calloc(1, sizeof(*m));
	if (!m)
		return open_fail(err, err_len, -ENOMEM, "meta: out of memory");
	m->dir_fd = -1;
	m->journal_fd = -1;
	m->shard_count = shard_count;
	m->next_topic_id = 1;
	m->next_partition_id = 1;
	m->snapshot_bytes = HEADER_REC_BYTES + STATE_REC_BYTES;
	int n = snprintf(m->path, sizeof(m->path), "%s/%s", data_dir, META_JOURNAL_NAME);
	int ret;
	if (n < 0 || (size_t)n >= sizeof(m->path)) {
		ret = open_fail(err, err_len, -ENAMETOOLONG, "meta: data directory path too long");
		goto out_close;
	}
	ret = tables_reserve(m, 0, 0);
	if (ret) {
		ret = open_fail(err, err_len, ret, "meta: out of memory");
		goto out_close;
	}
	ret = disk_open_dir(data_dir, true, &m->dir_fd);
	if (ret) {
		ret = open_fail(err, err_len, ret, "meta: cannot open data directory %s: %s",
				data_dir, strerror(-ret));
		goto out_close;
	}

	void *buf = NULL;
	size_t len = 0;
	ret =
	    disk_read_file(m->dir_fd, META_JOURNAL_NAME, LIMITS_META_JOURNAL_BYTES_MAX, &buf, &len);
	if (ret == -ENOENT) {
		ret = journal_create(m, err, err_len);
		if (ret)
			goto out_close;
	} else if (ret) {
		ret = open_fail(
		    err, err_len, ret, "meta: cannot read %s: %s%s", m->path, strerror(-ret),
		    ret == -EFBIG ? " (larger than LIMITS_META_JOURNAL_BYTES_MAX)" : "");
		goto out_close;
	} else {
		size_t valid_end = 0;
		ret = replay_journal(m, buf, len, &valid_end, err, err_len);
		free(buf);
		if (ret)
			goto out_close;
		m->journal_bytes = valid_end;
		if (valid_end < len) {
			m->journal_fd = openat(m->dir_fd, META_JOURNAL_NAME, O_WRONLY | O_CLOEXEC);
			if (m->journal_fd < 0) {
				ret = open_fail(err, err_len, -errno, "meta: cannot open %s: %s",
						m->path, strerror(errno));
				goto out_close;
			}
			ret = journal_cut_tail(m, valid_end, len, err, err_len);
			if (ret)
				goto out_close;
		}
	}
	if (m->journal_fd < 0) {
		m->journal_fd = openat(m->dir_fd, META_JOURNAL_NAME, O_WRONLY | O_CLOEXEC);
		if (m->journal_fd < 0) {
			ret = open_fail(err, err_len, -errno, "meta: cannot open %s: %s", m->path,
					strerror(errno));
			goto out_close;
		}
	}
	ret = check_placement(m, err, err_len);
	if (ret)
		goto out_close;
	/* Ids reserved before the restart may have been handed out: skip them all. */
	m->next_producer_id = m->producer_id_hwm;
	if (compaction_due(m))
		maybe_compact(m);
	DASSERT(meta_sanity(m));
	LOG_INFO("meta: %s: %u topics, %u partitions, %" PRIu64 " journal bytes", m->path,
		 m->topic_count, m->pids_used, m->journal_bytes);
	*out = m;
	return 0;

out_close:
	meta_close(m);
	return ret;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->topic_count; i++)
		topic_free(m->topics[i]);
	free(m->topics);
	free(m->names);
	free(m->pids);
	free(m->batch.p);
	if (m->journal_fd >= 0)
		close(m->journal_fd);
	if (m->dir_fd >= 0)
		close(m->dir_fd);
	free(m);
}

/* ---- sanity ---------------------------------------------------------------------- */

bool meta_sanity(const struct meta *m)
{
	uint64_t partitions = 0, snapshot = HEADER_REC_BYTES + STATE_REC_BYTES;
	if (m->topic_count > m->topic_capacity || m->next_producer_id > m->producer_id_hwm)
		return false;
	uint32_t names_used = 0;
	for (uint32_t i = 0; i <= m->names_mask; i++)
		names_used += m->names[i] != NULL;
	if (names_used != m->topic_count || (uint64_t)names_used * 2 > m->names_mask + 1ull)
		return false;
	if ((uint64_t)m->pids_used * 2 > m->pids_mask + 1ull)
		return false;
	for (uint32_t i = 0; i < m->topic_count; i++) {
		const struct meta_topic *t = m->topics[i];
		if (t->slot != i || !meta_topic_name_valid(t->name) ||
		    t->name_hash != name_hash(t->name) || meta_find_topic(m, t->name) != t)
			return false;
		if (t->topic_id == 0 || t->topic_id >= m->next_topic_id || t->partition_count == 0)
			return false;
		for (uint32_t p = 0; p < t->partition_count; p++) {
			uint32_t index = UINT32_MAX, id = t->partitions[p].partition_id;
			if (id == 0 || id >= m->next_partition_id ||
			    t->partitions[p].shard >= m->shard_count ||
			    meta_topic_by_partition_id(m, id, &index) != t || index != p)
				return false;
		}
		for (uint32_t c = 0; c < t->config_count; c++) {
			if (!config_key_valid(t->configs[c].key) ||
			    !config_value_valid(t->configs[c].value))
				return false;
			if (c > 0 && strcmp(t->configs[c - 1].key, t->configs[c].key) >= 0)
				return false;
		}
		partitions += t->partition_count;
		snapshot += topic_record_bytes(t);
	}
	return partitions == m->pids_used && snapshot == m->snapshot_bytes;
}
