/*
 * core/broker.h: the "broker" shard layer that sluiced hosts first on every shard: the
 * shard's log (core/shardlog) with the idempotent-producer state rebuilt beside it and
 * the produce path (core/producers), and its topic table (core/topics), set up from the topic
 * metadata (core/meta) and kept in step with it. Before the shards start, the control
 * thread opens the metadata (broker_prepare); while the shards start, each reads it
 * (read only: nothing changes it before the start verdict) to open its log owning the
 * partitions placed on it, build its topic table and set each partition's retention
 * from its topic's configs or the broker defaults; from the start verdict on, only
 * shard 0 touches the metadata, through its topic table. While running, each shard
 * registers the partitions new topics place on it, follows retention changes, and
 * enforces retention on a timer (log.retention.check.interval.ms). On stop it closes
 * the log (flush, fdatasync, checkpoint). The protocol handlers reach all of it with
 * broker_of / broker_log / broker_topics. It parses no requests and maps no errors to
 * Kafka codes (net/ does).
 *
 * Lifecycle, on the control thread:
 *   broker_prepare(&ctx, cfg, shard_count, err, len);   opens DATA/meta.journal
 *   layers[0] = broker_layer(&ctx); ...                   then net, on top of it
 *   shard_set_start(&set, cfg, layers, n, err, len);
 *   ...  shard_set_stop(&set);
 *   broker_finish(&ctx);                                  closes the metadata
 */
#ifndef SLUICE_CORE_BROKER_H
#define SLUICE_CORE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/coordinator.h"
#include "core/limits.h"
#include "core/meta.h"
#include "core/producers.h"
#include "core/shard.h"
#include "core/shardlog.h"
#include "core/topics.h"
#include "io/loop.h"

/* What the broker layer runs with; broker_prepare fills it from the config, and a caller
 * (a test, a tool) may adjust it before shard_set_start. */
struct broker_settings {
	uint32_t num_partitions;	      /* num.partitions; resolved: >= 1 */
	bool auto_create_topics;	      /* auto.create.topics.enable */
	int64_t retention_ms;		      /* log.retention.ms, -1 = unlimited */
	int64_t retention_bytes;	      /* log.retention.bytes, -1 = unlimited */
	uint64_t segment_bytes;		      /* log.segment.bytes: the shard logs' segments,
					       * a multiple of staging_bytes */
	uint64_t retention_check_interval_ms; /* log.retention.check.interval.ms, >= 1 */
	enum shardlog_fsync fsync;	      /* from --fsync */
	uint64_t staging_bytes;		      /* shard-log staging ring; 0 = its default */
	uint32_t partitions_max;	      /* shard-log registry; 0 = its default */
	struct coord_settings groups;	      /* the group coordinator's settings */
};

/* Shared by every shard's broker layer; lives on the control thread's side from
 * broker_prepare to broker_finish. */
struct broker_ctx {
	struct broker_settings settings;	  /* see above */
	char data_dir[LIMITS_CONFIG_VALUE_BYTES]; /* the data directory (log.dirs) */
	uint32_t shard_count;			  /* shards the metadata was opened for */
	struct meta *meta; /* opened by broker_prepare; read by every shard during start,
			    * then owned by shard 0's topic table until the shards stopped */
};

/* One shard's broker state. The handlers read these fields; only the layer writes. */
struct broker {
	struct shard *shard;	     /* the shard it runs on */
	struct broker_ctx *ctx;	     /* the shared settings */
	struct shardlog *log;	     /* the shard's log */
	struct topics *topics;	     /* the shard's topic table */
	struct producers *producers; /* idempotent-producer state and the produce path,
				      * rebuilt with the log (core/producers) */
	struct coord *coord;	     /* the group coordinator (core/coordinator) */
	struct loop_timer retention; /* fires every retention_check_interval_ms */
	bool stopping;		     /* the layer is stopping: leave the log alone */
	uint64_t retention_runs;     /* retention passes made */
	uint64_t segments_deleted;   /* segments retention deleted */
};

/*
 * Fills CTX from CFG (data_dir, fsync, num.partitions with 0 resolved to SHARD_COUNT,
 * auto.create.topics.enable, log.retention.ms, log.retention.bytes, log.segment.bytes,
 * log.retention.check.interval.ms) and opens the metadata of CFG->data_dir for
 * SHARD_COUNT shards (the count config_shard_cpus gives). On the control thread, before
 * shard_set_start. Returns 0, or a negative errno with one line in ERR naming the cause
 * and the fix (nothing left open):
 *  -ERANGE   the data dir holds partitions on shards >= SHARD_COUNT (start with at least
 *            the number of shards the message names);
 *  -EBADMSG  the metadata journal is damaged (the message names the file and position);
 *  -EINVAL   SHARD_COUNT out of range, or log.segment.bytes not a positive multiple of
 *            the shard log's staging ring (LIMITS_SHARDLOG_STAGING_BYTES);
 *  others    meta_open's (the data dir cannot be created or read, -ENOMEM, ...).
 */
int broker_prepare(struct broker_ctx *ctx, const struct config *cfg, uint32_t shard_count,
		   char *err, size_t err_len);

/* The layer to host first (it carves the pool's staging ring, which must come before
 * any pool_alloc): {"broker", start, stop, CTX}. */
struct shard_layer broker_layer(struct broker_ctx *ctx);

/* Closes the metadata, after shard_set_stop returned (or after a failed start).
 * Idempotent. */
void broker_finish(struct broker_ctx *ctx);

/* SHARD's broker state, its log and its topic table: from the layer's start to its
 * stop, on SHARD's thread; NULL when SHARD hosts no broker layer or it is not started. */
struct broker *broker_of(const struct shard *shard);
struct shardlog *broker_log(const struct shard *shard);
struct topics *broker_topics(const struct shard *shard);
struct producers *broker_producers(const struct shard *shard);

/* Runs retention on SHARD's log now (as the timer does): returns the number of segments
 * deleted or a negative errno (logged). SHARD's thread. */
int broker_enforce_retention(struct shard *shard);

#endif
