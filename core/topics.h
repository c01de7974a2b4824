/*
 * core/topics.h: the topic table every shard keeps, and the protocol that changes it.
 * Each shard holds its own read-only replica of every topic (name, topic id,
 * partitions with their broker-wide partition_id and owning shard, per-topic configs
 * with the typed values the broker uses), so that Metadata, Produce and Fetch on any
 * shard find a topic by name, or a partition by partition_id, in O(1) without locks or
 * messages. Changes (create, delete, add partitions, set a config) may be asked for on
 * any shard; they go to shard 0, the controller, which owns the struct meta (core/meta)
 * and applies them in batches (group commit): it takes every change waiting (up to
 * TOPICS_BATCH_MAX), validates and journals them with one write and one fdatasync
 * (meta_batch_*), updates its own table, then sends the batch's new topic views to every
 * other shard in one message each and waits until each has copied them into its own
 * table, in the batch's order; only then is each requester answered. So when a change's
 * callback runs, every shard's table has it, and two creates of one name, from any
 * shards, are decided in shard 0's order: one wins, the other gets -EEXIST. The next
 * batch starts once every shard acknowledged the last, so changes queue while a batch
 * is under way and the batches grow with the load (and with the disk's sync time).
 *
 *   shard k                     shard 0 (owns meta)              shards 1..N-1
 *   topics_create ---CHANGE---> queue; when no batch is under way:
 *                               meta_batch_begin, each change,
 *                               meta_batch_end (1 write + fdatasync)
 *                               own table <- views
 *                               ---UPDATE(batch of views)------> copy into table,
 *                                                                on_change (shard log)
 *                               <--------------------------ack-- (each shard)
 *   done(status, view) <-reply- all acked (each change of the batch, in order)
 *
 * This module holds no partition data and does not touch the shard log: whatever a
 * shard must do when a partition it owns appears, changes or goes (register it with
 * its shard log, set its retention) is the on_change callback of its owner (the broker
 * layer, core/broker). It does not map errors to Kafka codes (the handlers do) or check
 * config names against Kafka's list (only the keys it interprets are validated).
 * Single-threaded: every function runs on the thread of the table's shard.
 */
#ifndef SLUICE_CORE_TOPICS_H
#define SLUICE_CORE_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/meta.h"
#include "core/shard.h"

/* Changes shard 0 journals with one write and fdatasync and broadcasts in one message
 * per shard. A batch holds the shard 0's loop for about 1 to 3 us a change (journal
 * encoding, views) and each peer's for about as long (copies, shard-log registration),
 * so 1,024 keeps a turn within a few milliseconds while a CreateTopics of thousands of
 * topics pays one fdatasync a thousand; the journal's record limit may end one sooner
 * (meta_batch_*). */
#define TOPICS_BATCH_MAX 1024u

/* topics_create's PARTITIONS for "the broker's num.partitions" (auto-create, and
 * CreateTopics with num_partitions -1). */
#define TOPICS_PARTITIONS_DEFAULT 0u

/* Topic config keys the broker interprets, and how they are checked. */
#define TOPICS_CONFIG_RETENTION_MS    "retention.ms"	/* integer >= -1; -1 unlimited */
#define TOPICS_CONFIG_RETENTION_BYTES "retention.bytes" /* integer >= -1; -1 unlimited */
#define TOPICS_CONFIG_SEGMENT_BYTES   "segment.bytes"	/* integer >= 1 */
#define TOPICS_CONFIG_CLEANUP_POLICY  "cleanup.policy"	/* delete | compact | both, comma */

/* cleanup.policy as bits. sluice never compacts: COMPACT is stored and reported only. */
#define TOPICS_CLEANUP_DELETE  1u
#define TOPICS_CLEANUP_COMPACT 2u

/* What a topic gets for a config it does not set: the broker's settings. */
struct topics_defaults {
	uint32_t partitions;	 /* num.partitions for TOPICS_PARTITIONS_DEFAULT, >= 1 */
	int64_t retention_ms;	 /* log.retention.ms, -1 = unlimited */
	int64_t retention_bytes; /* log.retention.bytes, -1 = unlimited */
	uint64_t segment_bytes;	 /* log.segment.bytes */
};

/*
 * One topic as a shard's table holds it: one heap object, immutable once in the table
 * (a change replaces the whole view). A pointer obtained from the table stays valid
 * until control returns to the shard's loop: changes are applied only from the loop
 * (mesh dispatch, the table's hook and timer), never inside a topics_* call. Code that
 * waits across loop turns (a Fetch long-poll) keeps the name or partition_id and looks
 * it up again; topics_generation tells whether anything changed meanwhile.
 */
struct topic_view {
	/* Hot: what a lookup and a Produce or Fetch read. The partitions and the name lie
	 * right behind the struct, in the same allocation. */
	uint64_t topic_id;			 /* broker-wide, >= 1, never reused */
	uint32_t name_len;			 /* strlen(name) */
	uint32_t partition_count;		 /* >= 1 */
	const struct meta_partition *partitions; /* index -> partition_id and owning shard */
	const char *name;			 /* NUL-terminated, meta_topic_name_valid */
	uint32_t config_count;			 /* entries of configs */
	uint32_t cleanup_policy;		 /* TOPICS_CLEANUP_* bits */
	const struct meta_config_kv *configs;	 /* the topic's own settings, sorted by key */
	/* Typed effective values: the topic's config, else the broker default;
	 * cleanup_policy above too. */
	int64_t retention_ms;	 /* retention.ms, -1 = unlimited */
	int64_t retention_bytes; /* retention.bytes, -1 = unlimited */
	uint64_t segment_bytes;	 /* segment.bytes (reported; the shard log's segments are
				  * per shard, sized by log.segment.bytes) */
	/* private */
	uint32_t slot;	      /* position in the table's view array */
	uint32_t bcast_entry; /* shard 0: 1 + its entry in the batch being broadcast, or 0 */
};

struct topics; /* one shard's table and its side of the change protocol; opaque */

/*
 * Called on every shard, on its thread, after a change was applied to its table: OLD is
 * the view before (NULL for a new topic), NOW the view after (NULL for a deleted one).
 * Both are valid during the call only. Returns 0 or a negative errno, which is reported
 * to the requester (the change itself stays applied: it is in the journal).
 */
typedef int (*topics_change_fn)(void *ctx, const struct topic_view *old,
				const struct topic_view *now);

/*
 * A change's answer, on the requesting shard's thread, from its loop (never from inside
 * the topics_* call that asked). STATUS is 0, or -EEXIST (create: the name is taken),
 * -ENOENT (no such topic), -EINVAL (partition count not larger, a bad config for meta),
 * -ENOSPC (topics, configs or partition ids exhausted; or a shard log's registry full),
 * -ENOMEM, -EIO or another write error of the journal, -ESHUTDOWN (shard 0 is
 * stopping), or the first error a shard's on_change returned (the change is then in
 * the journal and the tables but some shard could not fully act on it: logged). VIEW
 * is this shard's view of the topic after a change that left it in place (create, add
 * partitions, set config; also when STATUS came from on_change), else NULL; valid
 * during the call only.
 */
typedef void (*topics_done_fn)(void *ctx, int status, const struct topic_view *view);

struct topics_options {
	struct shard *shard;		 /* the shard whose table this is; its thread calls */
	struct meta *meta;		 /* shard 0: the metadata it owns and changes from now
					  * on; NULL on every other shard */
	const struct meta *snapshot;	 /* the table is filled from it at open (read only;
					  * nobody may change it during topics_open) */
	struct topics_defaults defaults; /* same on every shard */
	topics_change_fn on_change;	 /* may be NULL */
	void *change_ctx;		 /* its first argument */
};

/* Counters since open, of one shard. */
struct topics_stats {
	uint64_t changes_applied;  /* changes applied to this table (own and broadcast) */
	uint64_t changes_asked;	   /* topics_* calls accepted on this shard */
	uint64_t changes_answered; /* their done callbacks run */
	uint64_t send_retries;	   /* -EAGAIN from the mesh: queued and sent later */
	uint64_t committed;	   /* shard 0: changes journaled by meta */
	uint64_t refused;	   /* shard 0: changes meta refused (no broadcast) */
	uint64_t batches;	   /* shard 0: group commits (one journal write and fdatasync,
				    * one broadcast round each) */
	uint32_t pending;	   /* changes asked here and not answered yet */
	uint32_t queued;	   /* shard 0: changes waiting for their turn */
};

/*
 * Builds shard OPTS->shard's table from OPTS->snapshot (every topic, with the typed
 * values resolved against OPTS->defaults; on_change is not called for them), registers
 * the mesh operations SHARD_OP_TOPICS_CHANGE (shard 0) and SHARD_OP_TOPICS_UPDATE, and
 * adds a before-wait hook to the shard's loop. Call it from the shard's thread during
 * its start. Returns 0 and *OUT, -EINVAL (no shard or snapshot, META given on a shard
 * other than 0 or missing on shard 0, defaults.partitions 0), -ENOSPC (no free loop
 * hook) or -ENOMEM.
 */
int topics_open(struct topics **out, const struct topics_options *opts);

/*
 * From now on no done callback runs (answers that still arrive free their requests
 * silently), new changes are refused with -ESHUTDOWN, and shard 0 starts no new
 * change; changes broadcast by shard 0 are still applied to the table (and on_change
 * still called), so the table stays what meta says. Call it at the start of the stop,
 * before anything frees the contexts handed to topics_* (a layer stopping above the
 * broker that frees its contexts should call it first). Idempotent.
 */
void topics_quiesce(struct topics *t);

/*
 * Unregisters the mesh operations (peers' requests are then answered -EOPNOTSUPP),
 * removes the hook and timers and frees the table. Call it on the shard's thread after
 * its loop ran for the last time (the broker layer's stop). Changes still waiting are
 * dropped without their callbacks; a view shard 0 is still broadcasting is left
 * allocated (a peer may still be reading it) and logged. NULL is a no-op.
 */
void topics_close(struct topics *t);

/* --- lookups: O(1) expected, no allocation, no messages ----------------------------- */

/* The topic named NAME (NUL-terminated), or NULL. */
const struct topic_view *topics_find(const struct topics *t, const char *name);

/* The topic whose name is the LEN bytes at NAME (not NUL-terminated, as read from the
 * wire; any bytes), or NULL. */
const struct topic_view *topics_find_len(const struct topics *t, const char *name, size_t len);

/* The topic owning PARTITION_ID and, in *INDEX (may be NULL), the partition's index in
 * it; NULL when no live topic has that id (never handed out, or its topic deleted). */
const struct topic_view *topics_by_partition_id(const struct topics *t, uint32_t partition_id,
						uint32_t *index);

/* Iteration (Metadata without topics): views 0 .. topics_count() - 1 in unspecified
 * order, which changes with every change applied. */
uint32_t topics_count(const struct topics *t);
const struct topic_view *topics_at(const struct topics *t, uint32_t i);

/* Increases with every change applied to this table (starts at 1 after open). */
uint64_t topics_generation(const struct topics *t);

/* The value of config KEY of VIEW as the topic sets it, or NULL when the topic leaves
 * it to the broker default. O(log config_count). */
const char *topics_view_config(const struct topic_view *view, const char *key);

/* The defaults the table resolves typed values against. */
const struct topics_defaults *topics_defaults(const struct topics *t);

/* Checks VALUE (NULL = removing the key) for config KEY: 0 when acceptable, -EINVAL for
 * an interpreted key (TOPICS_CONFIG_*) with a malformed or out-of-range value, or a key
 * or value longer than meta accepts. Keys it does not interpret pass when their size
 * is within meta's limits (their characters are meta's to check). For CreateTopics'
 * validate_only and the handlers' error mapping. */
int topics_config_check(const char *key, const char *value);

/* --- changes: any shard; answered through DONE(CTX, ...) -------------------------------- */

/*
 * Asks for topic NAME with PARTITIONS partitions (TOPICS_PARTITIONS_DEFAULT: the
 * default's) and the CONFIG_COUNT configs (copied; keys unique), placed by meta as
 * partition p on shard (meta_placement_hash(NAME) + p) % shards. Returns 0 when the
 * change is under way (DONE runs exactly once, later), or, with DONE never called:
 *  -EINVAL     NAME not a valid topic name, PARTITIONS above
 *              LIMITS_META_PARTITIONS_PER_TOPIC_MAX, more than
 *              LIMITS_META_CONFIGS_PER_TOPIC_MAX configs, or topics_config_check fails;
 *  -EAGAIN     LIMITS_TOPICS_PENDING_MAX changes of this shard are pending: retry later;
 *  -ESHUTDOWN  the table is quiescing;
 *  -ENOMEM.
 */
int topics_create(struct topics *t, const char *name, uint32_t partitions,
		  const struct meta_config_kv *configs, uint32_t config_count, topics_done_fn done,
		  void *ctx);

/* Asks for topic NAME's deletion. Its partition ids are retired for good. Returns as
 * topics_create (-EINVAL only for an invalid name); DONE gets -ENOENT when it does not
 * exist, and a NULL view. */
int topics_delete(struct topics *t, const char *name, topics_done_fn done, void *ctx);

/* CreatePartitions: asks for topic NAME to grow to NEW_TOTAL partitions (new ids, placed
 * as at creation). Returns as topics_create (-EINVAL for an invalid name, or NEW_TOTAL
 * 0 or above the per-topic maximum); DONE gets -EINVAL when NEW_TOTAL is not larger
 * than the current count. */
int topics_add_partitions(struct topics *t, const char *name, uint32_t new_total,
			  topics_done_fn done, void *ctx);

/* Asks for config KEY of topic NAME to be VALUE, or removed when VALUE is NULL.
 * Returns as topics_create (-EINVAL for an invalid name or topics_config_check). */
int topics_set_config(struct topics *t, const char *name, const char *key, const char *value,
		      topics_done_fn done, void *ctx);

/* Copies the counters into *OUT. */
void topics_stats(const struct topics *t, struct topics_stats *out);

/* Walks the table and checks the name and partition-id indexes against the views;
 * O(topics + partitions). For DASSERT and tests. */
bool topics_sanity(const struct topics *t);

#endif
