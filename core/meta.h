/*
 * core/meta.h: the broker's topic and partition metadata and its persistence (DESIGN §3,
 * last paragraphs). It holds every topic (name, id, partitions with their broker-wide
 * partition_id and owning shard, per-topic configs), the next partition id and the
 * producer-id high-water mark, finds a topic by name or by partition_id in O(1), and
 * keeps all of it in DATA/meta.journal: a file of checksummed records, appended and
 * fdatasync'ed per change or per batch of changes (meta_batch_begin/end: one record
 * holding them all, one write, one fdatasync), replayed on open and rewritten as a compact snapshot
 * (atomically: temp file, fsync, rename, fsync dir) when it grows to twice the size a
 * snapshot would have. Placement: partition p of topic t goes to shard
 * (meta_placement_hash(t) + p) % shards, decided at creation and stored, so a restart
 * with another shard count keeps every partition where its data is.
 * Thread-safety: none. A struct meta is owned by one thread (shard 0, the controller);
 * other shards get what they need from it in messages. The I/O is synchronous (a change,
 * or a batch of them, costs one write and one fdatasync), which is fine on the control
 * path only.
 * It does not validate config names or values against Kafka's list (the CreateTopics
 * and AlterConfigs handlers do), nor create the shard logs' directories.
 */
#ifndef SLUICE_CORE_META_H
#define SLUICE_CORE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

/* File name of the journal inside the data directory. */
#define META_JOURNAL_NAME "meta.journal"

/* partition_id 0 is never handed out, so it can mean "no partition" in frames. */
#define META_PARTITION_ID_NONE 0u

struct meta; /* opaque: the tables, the journal's descriptor and its sizes */

/* One partition of a topic. */
struct meta_partition {
	uint32_t partition_id; /* broker-wide, >= 1, never reused after a delete */
	uint32_t shard;	       /* owning shard, fixed at creation */
};

/* A topic config entry: a key of [a-zA-Z0-9._-] (1 to LIMITS_META_CONFIG_KEY_BYTES
 * bytes) and a value of printable ASCII (0 to LIMITS_META_CONFIG_VALUE_BYTES bytes). */
struct meta_config_kv {
	const char *key;   /* e.g. "retention.ms" */
	const char *value; /* e.g. "604800000" */
};

/* A topic, as meta holds it. Pointers to it stay valid until the topic is deleted or
 * the meta closed; its partitions and configs arrays may move on any change to the
 * topic. Read only: change it through the meta_* functions. */
struct meta_topic {
	char name[LIMITS_TOPIC_NAME_BYTES + 1]; /* NUL-terminated, meta_topic_name_valid */
	uint64_t topic_id;			/* broker-wide, >= 1, never reused */
	uint32_t partition_count;		/* entries of partitions, >= 1 */
	struct meta_partition *partitions;	/* partition index -> id and shard */
	uint32_t config_count;			/* entries of configs */
	struct meta_config_kv *configs;		/* sorted by key, keys unique; strings owned */
	uint32_t slot;				/* private: position in the topic array */
	uint64_t name_hash;			/* private: hash of name for the name table */
};

/* Kafka's topic-name rule: 1 to 249 bytes of [a-zA-Z0-9._-], and not "." or "..". */
bool meta_topic_name_valid(const char *name);

/* The placement hash of a topic name: 32-bit FNV-1a of its bytes. Stable forever (it
 * decides where new partitions go; existing ones keep their stored shard). */
uint32_t meta_placement_hash(const char *name);
/* The same hash of the LEN bytes at NAME (a group id: not NUL-terminated). */
uint32_t meta_placement_hash_len(const char *name, size_t len);

/* The shard of partition P of topic NAME among SHARD_COUNT (>= 1) shards:
 * ((uint64_t)meta_placement_hash(NAME) + P) % SHARD_COUNT. */
uint32_t meta_placement_shard(const char *name, uint32_t partition, uint32_t shard_count);

/*
 * Opens (creating if needed) the metadata of DATA_DIR (created too if missing) for a
 * broker running SHARD_COUNT shards (1 to LIMITS_SHARDS_MAX), replaying meta.journal.
 * A torn or corrupt record at the tail (no valid record after it) is the trace of a
 * crash during an append: it is cut off, and the bytes dropped are logged. Returns 0
 * and *OUT, or a negative errno with a one-line reason in ERR (ERR_LEN bytes, may be
 * 0) that is also logged:
 *  -EBADMSG  a corrupt record followed by valid ones, a missing file header, or a
 *            record that contradicts the ones before it: the message names the file
 *            and byte position; the file is left as it is for inspection
 *  -ERANGE   a stored partition lives on a shard >= SHARD_COUNT: the message names the
 *            topic and the shard count needed (start with more shards)
 *  -EFBIG    the journal is larger than LIMITS_META_JOURNAL_BYTES_MAX
 *  -EINVAL   bad arguments; -ENOMEM; or the errno of a failed file operation.
 * The journal is compacted at open when it is over the compaction threshold.
 */
int meta_open(struct meta **out, const char *data_dir, uint32_t shard_count, char *err,
	      size_t err_len);

/* Closes the journal and frees everything; topic pointers die. NULL is a no-op. */
void meta_close(struct meta *m);

/*
 * Every change below is durable (written and fdatasync'ed) when it returns 0, and has
 * not happened at all when it returns an error. If a journal write or sync fails, the
 * file is cut back to its last good record; when even that fails the meta turns
 * read-only and every later change returns -EIO (the file's state is unknown until a
 * restart replays it).
 */

/*
 * Creates topic NAME with PARTITIONS partitions (1 to LIMITS_META_PARTITIONS_PER_TOPIC_MAX),
 * placed by meta_placement_shard over the current shard count, with fresh partition ids,
 * and CONFIG_COUNT configs (at most LIMITS_META_CONFIGS_PER_TOPIC_MAX, keys unique).
 * Returns 0 and *OUT (may be NULL), or -EEXIST (name taken), -EINVAL (name, partition
 * count or configs invalid), -ENOSPC (LIMITS_META_TOPICS_MAX topics, or partition ids
 * exhausted), -ENOMEM, -EIO or a write errno.
 */
int meta_create_topic(struct meta *m, const char *name, uint32_t partitions,
		      const struct meta_config_kv *configs, uint32_t config_count,
		      const struct meta_topic **out);

/* Deletes topic NAME; its partition ids are retired (meta_partition_id_live turns
 * false and they are never handed out again). Returns 0, -ENOENT, or a write error. */
int meta_delete_topic(struct meta *m, const char *name);

/* CreatePartitions: grows topic NAME to NEW_TOTAL partitions; the new ones get fresh
 * ids and shards by meta_placement_shard over the current shard count. Returns 0,
 * -ENOENT, -EINVAL (NEW_TOTAL not larger, or over the per-topic maximum), -ENOSPC
 * (ids exhausted), -ENOMEM, or a write error. */
int meta_add_partitions(struct meta *m, const char *name, uint32_t new_total);

/* Sets config KEY of topic NAME to VALUE, or removes it when VALUE is NULL. Setting
 * the value it has, or removing an absent key, writes nothing and returns 0. Returns
 * 0, -ENOENT (no topic), -EINVAL (key or value invalid), -ENOSPC (the topic already has
 * LIMITS_META_CONFIGS_PER_TOPIC_MAX keys), -ENOMEM, or a write error. */
int meta_set_topic_config(struct meta *m, const char *name, const char *key, const char *value);

/*
 * Group commit. Between meta_batch_begin and meta_batch_end, the four changes above are
 * checked and made in memory exactly as outside a batch (each sees the ones before it;
 * their errors are theirs alone), but their records are collected instead of written:
 * a change returning 0 is made, not yet durable. meta_batch_end writes the collected
 * records with one write and one fdatasync, as one journal record (a single change is
 * written as its own record), so after a crash either all of them replay or none: a
 * torn batch at the tail is dropped at open like any torn record. A change whose record
 * would make the batch's pass LIMITS_META_RECORD_BYTES_MAX returns -ENOBUFS and is not
 * made (never the first of a batch): end the batch and ask again in the next.
 * meta_batch_end returns 0 when every change of the batch is durable, or the write
 * error, and then none of them happened: memory is rebuilt from the journal as it was
 * at meta_batch_begin (topic pointers obtained since die; ids handed out in the batch
 * are not handed out again); if that rebuild fails too the meta turns read-only (-EIO
 * on every later change, the memory as the batch left it). Compaction waits for the end
 * of the batch. meta_next_producer_id and meta_compact are not to be called in a batch
 * (meta_compact returns -EBUSY). A batch with no change writes nothing and returns 0.
 */
void meta_batch_begin(struct meta *m);
int meta_batch_end(struct meta *m);

/* Whether M is between meta_batch_begin and meta_batch_end. */
bool meta_batching(const struct meta *m);

/* The value of config KEY of topic T, or NULL when unset. O(log config_count). */
const char *meta_topic_config(const struct meta_topic *t, const char *key);

/* The topic named NAME, or NULL. O(1) expected (hash table). */
const struct meta_topic *meta_find_topic(const struct meta *m, const char *name);

/* The topic owning PARTITION_ID and, in *PARTITION_INDEX (may be NULL), its index in
 * the topic, or NULL when the id is retired or was never handed out. O(1) expected. */
const struct meta_topic *meta_topic_by_partition_id(const struct meta *m, uint32_t partition_id,
						    uint32_t *partition_index);

/* Whether PARTITION_ID belongs to a live topic. Recovery skips frames of others. */
bool meta_partition_id_live(const struct meta *m, uint32_t partition_id);

/* Iteration: topics 0 .. meta_topic_count() - 1 through meta_topic_at(). The order is
 * unspecified and changes when a topic is deleted (the last one takes its place). */
uint32_t meta_topic_count(const struct meta *m);
const struct meta_topic *meta_topic_at(const struct meta *m, uint32_t i);

/*
 * InitProducerId: a new producer id, strictly greater than every id returned before,
 * across restarts too. Ids are reserved LIMITS_META_PRODUCER_ID_BLOCK at a time with
 * one journal record, so most calls write nothing; a restart skips the rest of the
 * reserved block. Returns the id with *ERR = 0, or 0 with *ERR = -ENOSPC (ids reached
 * INT64_MAX, Kafka's field is an int64) or a write error.
 */
uint64_t meta_next_producer_id(struct meta *m, int *err);

/* Rewrites the journal as a snapshot now (normally automatic once the journal passes
 * both 2 x the snapshot size and LIMITS_META_COMPACT_MIN_BYTES). Returns 0 or -errno;
 * on error the old journal stays in use, unchanged. */
int meta_compact(struct meta *m);

/* Bytes in meta.journal now, and what a snapshot of the current state would take. */
uint64_t meta_journal_bytes(const struct meta *m);
uint64_t meta_snapshot_bytes(const struct meta *m);

/* The shard count given to meta_open, and the id the next new partition will get. */
uint32_t meta_shard_count(const struct meta *m);
uint32_t meta_next_partition_id(const struct meta *m);

/* Walks every table and checks their consistency; O(topics + partitions). For
 * DASSERT and tests. */
bool meta_sanity(const struct meta *m);

#endif
