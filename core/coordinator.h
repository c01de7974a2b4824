/*
 * core/coordinator.h: the group coordinator of one shard: which shard coordinates a
 * group, the core/groups state of the groups this shard coordinates, and the
 * durability of their committed offsets. Offsets live in the internal topic
 * __consumer_offsets (created on first use with one partition per shard, like any
 * topic through core/topics, so its placement is in the metadata journal): group G
 * belongs to partition meta_placement_hash(G) % partitions, and its coordinator is the
 * shard that owns that partition (Kafka's rule; with one partition per shard it is
 * DESIGN §4's hash(group) % shards up to a fixed rotation). A commit is one RecordBatch
 * of core/groups records appended to that partition; it is applied to the in-memory
 * state and answered when the shard log reports it written (and fsynced when fsync is
 * always). At start each shard replays its offsets partitions before it answers any
 * group request (until then: COORDINATOR_LOAD_IN_PROGRESS). So that the log does not
 * grow without bound, the coordinator rewrites every live offset as a snapshot every
 * interval (--offsets-snapshot-ms, 10 minutes) and the topic's retention.ms is three
 * intervals, set when the topic is created: the newest complete snapshot and
 * everything after it are always kept.
 *
 * Every function runs on the calling shard's thread, for that shard's coordinator.
 */
#ifndef SLUICE_CORE_COORDINATOR_H
#define SLUICE_CORE_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/groups.h"

struct coord;
struct shard;

#define COORD_TOPIC "__consumer_offsets"

/* The calling shard's coordinator, or NULL when the shard has none (no storage: the
 * fuzz harness). */
struct coord *coord_of(const struct shard *shard);

/* CLOCK_REALTIME in milliseconds: the NOW_MS of core/groups calls. */
int64_t coord_now_ms(void);

/* The shard that coordinates GROUP_ID, once __consumer_offsets exists: >= 0. Before,
 * -EAGAIN (a handler answers COORDINATOR_NOT_AVAILABLE, 15, which clients retry; see
 * coord_find to create the topic). */
int coord_owner(const struct coord *c, struct groups_bytes group_id);

/* FindCoordinator: DONE(CTX, shard or -errno) with the shard that coordinates GROUP_ID,
 * creating __consumer_offsets first when it does not exist yet. Returns the shard (>= 0)
 * when known at once (DONE not called), -EINPROGRESS when DONE will run later, another
 * -errno on failure (DONE not called). */
typedef void (*coord_find_fn)(void *ctx, int shard_or_error);
int coord_find(struct coord *c, struct groups_bytes group_id, coord_find_fn done, void *ctx);

/* The groups this shard coordinates, or NULL while its offsets are being replayed
 * (answer COORDINATOR_LOAD_IN_PROGRESS, 14) or after a load failure
 * (COORDINATOR_NOT_AVAILABLE, 15; coord_load_failed tells which). */
struct groups *coord_groups(struct coord *c);
bool coord_load_failed(const struct coord *c);

/* One offset to commit. */
struct coord_commit_entry {
	struct groups_bytes topic;
	int32_t partition;
	struct groups_offset offset; /* commit_ms set by the caller (coord_now_ms) */
};

/* Runs once when the commit is durable and applied (STATUS 0) or failed (-errno: the
 * log refused or failed the write; nothing was applied). */
typedef void (*coord_done_fn)(void *ctx, int status);

/* Persists the COUNT entries (>= 1) of GROUP_ID, then applies them to the groups state
 * and runs DONE. Everything is copied before it returns (the caller's buffers may go).
 * The caller checked groups_commit_check and each entry (metadata size, topic).
 * Returns 0 (DONE will run, never before this returns) or -errno (DONE not called:
 * -EAGAIN when the shard log refuses for now, -ENOMEM, -ESHUTDOWN when stopping,
 * -ENOENT when this shard does not coordinate GROUP_ID). */
int coord_commit(struct coord *c, struct groups_bytes group_id,
		 const struct coord_commit_entry *entries, uint32_t count, coord_done_fn done,
		 void *ctx);

/* Persists the deletion of GROUP_ID (checked with groups_delete_check), then removes
 * it with groups_remove and runs DONE; as coord_commit. */
int coord_delete_group(struct coord *c, struct groups_bytes group_id, coord_done_fn done,
		       void *ctx);

/* ---- life cycle, from core/broker on the shard's thread ---- */

struct broker;

/* The group settings (core/config's group.* and offsets.* settings). */
struct coord_settings {
	uint32_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
	uint32_t min_session_timeout_ms;     /* group.min.session.timeout.ms */
	uint32_t max_session_timeout_ms;     /* group.max.session.timeout.ms */
	uint32_t offsets_retention_minutes;  /* offsets.retention.minutes */
	uint32_t offsets_topic_partitions;   /* offsets.topic.num.partitions; 0 = shards */
	uint32_t max_group_size;	     /* group.max.size */
	uint32_t snapshot_interval_ms;	     /* 0 = COORD_SNAPSHOT_INTERVAL_MS */
};

/* Creates B's coordinator once B's log and topic table are open; the replay of this
 * shard's offsets partitions starts from the loop. Returns 0 or -errno. */
int coord_create(struct coord **out, struct broker *b, const struct coord_settings *s);

/* Stops taking work: queued appends and waiting FindCoordinators end with -ESHUTDOWN;
 * appends the log took end when it drains. Before closing the shard log. */
void coord_quiesce(struct coord *c);

/* Frees C (after the shard log closed, so no append callback is left). NULL is fine. */
void coord_destroy(struct coord *c);

struct coord_stats {
	uint64_t commits;	 /* coord_commit calls that were written */
	uint64_t append_retries; /* appends the shard log refused for a moment */
	uint64_t snapshots;	 /* snapshot passes */
	uint64_t loaded_records; /* records replayed at start */
	uint64_t bad_records;	 /* records that did not parse (skipped) */
};
void coord_stats(const struct coord *c, struct coord_stats *out);

#endif
