/*
 * core/broker.c: the broker shard layer (see core/broker.h for the contract): opening
 * the metadata before the shards start, and on each shard opening its log with the
 * partitions placed on it, building its topic table, applying retention settings,
 * acting on topic changes (register new partitions, follow retention configs, let
 * deleted partitions' data expire) and enforcing retention on a timer. The shard log
 * cannot forget a partition yet, so a deleted topic's partitions stay registered in
 * the shard logs of their owners until the next restart (no table reaches them, their
 * ids are never handed out again, and their retention is set to zero so the next
 * retention pass drops their data and lets their segments go).
 */
#include "core/broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/logger.h"

static int broker_start(struct shard *shard, void *ctx, char *err, size_t err_len);
static void broker_stop(struct shard *shard, void *ctx);

/* The position of the broker layer among SHARD's layers, or -1. */
static int broker_layer_index(const struct shard *shard)
{
	const struct shard_set *set = shard->set;
	for (uint32_t i = 0; i < set->layer_count; i++)
		if (set->layers[i].start == broker_start)
			return (int)i;
	return -1;
}

struct broker *broker_of(const struct shard *shard)
{
	int index = broker_layer_index(shard);
	return index < 0 ? NULL : shard->layer_state[index];
}

struct shardlog *broker_log(const struct shard *shard)
{
	struct broker *b = broker_of(shard);
	return b ? b->log : NULL;
}

struct topics *broker_topics(const struct shard *shard)
{
	struct broker *b = broker_of(shard);
	return b ? b->topics : NULL;
}

struct producers *broker_producers(const struct shard *shard)
{
	struct broker *b = broker_of(shard);
	return b ? b->producers : NULL;
}

struct shard_layer broker_layer(struct broker_ctx *ctx)
{
	return (struct shard_layer){
	    .name = "broker", .start = broker_start, .stop = broker_stop, .ctx = ctx};
}

int broker_prepare(struct broker_ctx *ctx, const struct config *cfg, uint32_t shard_count,
		   char *err, size_t err_len)
{
	memset(ctx, 0, sizeof(*ctx));
	if (shard_count == 0 || shard_count > LIMITS_SHARDS_MAX) {
		snprintf(err, err_len, "broker: %u shards is outside 1..%u", shard_count,
			 LIMITS_SHARDS_MAX);
		return -EINVAL;
	}
	struct broker_settings *s = &ctx->settings;
	s->num_partitions = cfg->num_partitions ? cfg->num_partitions : shard_count;
	s->auto_create_topics = cfg->auto_create_topics != 0;
	s->retention_ms = cfg->retention_ms;
	s->retention_bytes = cfg->retention_bytes;
	s->segment_bytes = cfg->segment_bytes;
	s->retention_check_interval_ms = cfg->retention_check_ms;
	s->groups = (struct coord_settings){
	    .initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms,
	    .min_session_timeout_ms = cfg->group_min_session_timeout_ms,
	    .max_session_timeout_ms = cfg->group_max_session_timeout_ms,
	    .offsets_retention_minutes = cfg->offsets_retention_minutes,
	    .offsets_topic_partitions = cfg->offsets_topic_partitions,
	    .max_group_size = LIMITS_GROUP_MEMBERS_MAX,
	    .snapshot_interval_ms = cfg->offsets_snapshot_ms,
	};
	s->fsync = cfg->fsync == CONFIG_FSYNC_NEVER ? SHARDLOG_FSYNC_NEVER : SHARDLOG_FSYNC_ALWAYS;
	/* The staging ring (= tail cache) takes at most a quarter of the pool, so the
	 * network keeps the rest for receive buffers: the largest power of two within
	 * pool_bytes / 4, between the shard log's minimum and its default. Its largest
	 * frame is half of it (core/shardlog.h), so small pools take smaller batches. */
	uint64_t staging = LIMITS_SHARDLOG_STAGING_BYTES;
	while (staging > LIMITS_SHARDLOG_STAGING_BYTES_MIN && staging > cfg->pool_bytes / 4)
		staging /= 2;
	s->staging_bytes = staging;
	s->partitions_max = 0;
	if (s->segment_bytes == 0 || s->segment_bytes % staging != 0) {
		snprintf(err, err_len,
			 "broker: log.segment.bytes %llu is not a positive multiple of the "
			 "shard log's %llu-byte staging ring; pick a multiple of it",
			 (unsigned long long)s->segment_bytes, (unsigned long long)staging);
		return -EINVAL;
	}
	ctx->shard_count = shard_count;
	snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s", cfg->data_dir);
	/* meta_open's line names the file and the fix, and is logged already. */
	return meta_open(&ctx->meta, ctx->data_dir, shard_count, err, err_len);
}

void broker_finish(struct broker_ctx *ctx)
{
	meta_close(ctx->meta);
	ctx->meta = NULL;
}

/* ---- topic changes ----------------------------------------------------------------- */

/* on_change of the shard's topic table: the shard log follows the partitions this
 * shard owns. */
static int broker_on_topic_change(void *ctx, const struct topic_view *old,
				  const struct topic_view *now)
{
	struct broker *b = ctx;
	if (b->stopping)
		return 0; /* the log is closing; the restart reads the metadata anyway */
	uint32_t me = b->shard->id;
	int first = 0;
	if (!now) {
		/* Deleted: unreachable from now on; zero retention drops its data. */
		for (uint32_t p = 0; p < old->partition_count; p++) {
			if (old->partitions[p].shard != me)
				continue;
			int ret =
			    shardlog_set_retention(b->log, old->partitions[p].partition_id, 0, 0);
			if (ret < 0 && ret != -ENOENT && !first)
				first = ret;
		}
		return first;
	}
	for (uint32_t p = 0; p < now->partition_count; p++) {
		uint32_t id = now->partitions[p].partition_id;
		if (now->partitions[p].shard != me)
			continue;
		int ret = 0;
		if (!shardlog_partition_has(b->log, id))
			ret = shardlog_partition_add(b->log, id);
		if (ret == 0)
			ret = shardlog_set_retention(b->log, id, now->retention_ms,
						     now->retention_bytes);
		if (ret < 0) {
			LOG_ERROR("broker: cannot set up partition %u (topic '%s' partition %u) in "
				  "the shard log: %s",
				  id, now->name, p, strerror(-ret));
			if (!first)
				first = ret;
		}
	}
	return first;
}

/* ---- retention --------------------------------------------------------------------- */

static int broker_run_retention(struct broker *b)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int ret = shardlog_enforce_retention(b->log, now_ms);
	b->retention_runs++;
	if (ret > 0) {
		b->segments_deleted += (uint64_t)ret;
		LOG_INFO("broker: retention deleted %d segment(s)", ret);
	} else if (ret < 0) {
		LOG_ERROR("broker: retention failed: %s", strerror(-ret));
	}
	return ret;
}

int broker_enforce_retention(struct shard *shard)
{
	struct broker *b = broker_of(shard);
	ASSERT(b);
	return broker_run_retention(b);
}

static void broker_retention_fired(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	struct broker *b = ctx;
	broker_run_retention(b);
	if (loop_timer_arm(loop, timer, b->ctx->settings.retention_check_interval_ms) < 0)
		LOG_ERROR("broker: no free loop timer to schedule the next retention check; "
			  "retention stops until a restart");
}

/* ---- start and stop ---------------------------------------------------------------- */

/* The ids of every partition META places on shard ME, in *IDS (malloc'ed, may be NULL
 * when *COUNT is 0). Returns 0 or -ENOMEM. */
static int broker_owned_partitions(const struct meta *meta, uint32_t me, uint32_t **ids,
				   uint32_t *count)
{
	uint32_t n = 0, topics = meta_topic_count(meta);
	for (uint32_t i = 0; i < topics; i++) {
		const struct meta_topic *mt = meta_topic_at(meta, i);
		for (uint32_t p = 0; p < mt->partition_count; p++)
			n += mt->partitions[p].shard == me;
	}
	*ids = NULL;
	*count = 0;
	if (n == 0)
		return 0;
	uint32_t *out = malloc((size_t)n * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (uint32_t i = 0; i < topics; i++) {
		const struct meta_topic *mt = meta_topic_at(meta, i);
		for (uint32_t p = 0; p < mt->partition_count; p++)
			if (mt->partitions[p].shard == me)
				out[(*count)++] = mt->partitions[p].partition_id;
	}
	*ids = out;
	return 0;
}

static int broker_start(struct shard *shard, void *vctx, char *err, size_t err_len)
{
	struct broker_ctx *ctx = vctx;
	const struct broker_settings *s = &ctx->settings;
	int index = broker_layer_index(shard);
	ASSERT(index >= 0);
	if (!ctx->meta || shard->set->count != ctx->shard_count) {
		snprintf(err, err_len,
			 "the topic metadata was %s for %u shards but %u shards run; call "
			 "broker_prepare with the shard count",
			 ctx->meta ? "opened" : "not opened", ctx->shard_count, shard->set->count);
		return -EINVAL;
	}
	struct broker *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	b->shard = shard;
	b->ctx = ctx;

	/* The metadata is read only here: until the start verdict nobody changes it, and
	 * from then on only shard 0 touches it. */
	uint32_t *ids, count;
	int ret = broker_owned_partitions(ctx->meta, shard->id, &ids, &count);
	if (ret < 0) {
		snprintf(err, err_len, "out of memory listing this shard's partitions");
		goto out_free;
	}
	/* Before the log: the producers' retry hook must run before the log's flush hook,
	 * and recovery feeds the producer state through the log's hooks. */
	struct producers_options popts = {.loop = &shard->loop, .shard = shard};
	ret = producers_create(&b->producers, &popts);
	if (ret < 0) {
		free(ids);
		snprintf(err, err_len, "cannot set up the producer state: %s", strerror(-ret));
		goto out_free;
	}
	struct shardlog_options opts = {
	    .data_dir = ctx->data_dir,
	    .shard_id = shard->id,
	    .segment_bytes = s->segment_bytes,
	    .staging_bytes = s->staging_bytes,
	    .partitions_max = s->partitions_max,
	    .fsync = s->fsync,
	    .loop = &shard->loop,
	    .pool = &shard->pool,
	    .hooks = producers_hooks(b->producers),
	};
	ret = shardlog_open(&b->log, &opts, ids, count, err, err_len);
	free(ids);
	if (ret < 0)
		goto out_producers;
	ret = producers_attach(b->producers, b->log, shard->id == 0 ? ctx->meta : NULL);
	if (ret < 0) {
		snprintf(err, err_len, "cannot set up the producer state: %s", strerror(-ret));
		goto out_log;
	}

	struct topics_options topts = {
	    .shard = shard,
	    .meta = shard->id == 0 ? ctx->meta : NULL,
	    .snapshot = ctx->meta,
	    .defaults = {.partitions = s->num_partitions,
			 .retention_ms = s->retention_ms,
			 .retention_bytes = s->retention_bytes,
			 .segment_bytes = s->segment_bytes},
	    .on_change = broker_on_topic_change,
	    .change_ctx = b,
	};
	ret = topics_open(&b->topics, &topts);
	if (ret < 0) {
		snprintf(err, err_len, "cannot build the topic table: %s", strerror(-ret));
		goto out_log;
	}
	uint32_t topic_count = topics_count(b->topics);
	for (uint32_t i = 0; i < topic_count; i++) {
		const struct topic_view *v = topics_at(b->topics, i);
		for (uint32_t p = 0; p < v->partition_count; p++) {
			if (v->partitions[p].shard != shard->id)
				continue;
			ret = shardlog_set_retention(b->log, v->partitions[p].partition_id,
						     v->retention_ms, v->retention_bytes);
			if (ret < 0) {
				snprintf(err, err_len,
					 "cannot set the retention of topic '%s' partition %u: %s",
					 v->name, p, strerror(-ret));
				goto out_topics;
			}
		}
	}
	ret = coord_create(&b->coord, b, &s->groups);
	if (ret < 0) {
		snprintf(err, err_len, "cannot set up the group coordinator: %s", strerror(-ret));
		goto out_topics;
	}
	loop_timer_init(&b->retention, broker_retention_fired, b);
	ret = loop_timer_arm(&shard->loop, &b->retention, s->retention_check_interval_ms);
	if (ret < 0) {
		snprintf(err, err_len, "no free loop timer for the retention check");
		goto out_coord;
	}
	shard->layer_state[index] = b;
	LOG_INFO("broker: shard log open, %u partitions here, %u topics in the table", count,
		 topic_count);
	return 0;

out_coord:
	coord_quiesce(b->coord);
out_topics:
	topics_close(b->topics);
out_log:
	producers_quiesce(b->producers);
	shardlog_close(b->log);
	coord_destroy(b->coord);
out_producers:
	producers_destroy(b->producers);
out_free:
	free(b);
	return ret;
}

static void broker_stop(struct shard *shard, void *ctx)
{
	int index = broker_layer_index(shard);
	ASSERT(index >= 0);
	struct broker *b = shard->layer_state[index];
	if (!b)
		return;
	/* No answer may reach a caller's context from here on; the table keeps following
	 * shard 0 while the log's close turns the loop, but the log is left alone. */
	topics_quiesce(b->topics);
	b->stopping = true;
	loop_timer_disarm(&shard->loop, &b->retention);
	coord_quiesce(b->coord);	 /* before the log: nothing new reaches it */
	producers_quiesce(b->producers); /* likewise */
	int ret = shardlog_close(b->log);
	if (ret < 0)
		LOG_ERROR("broker: closing the shard log failed: %s", strerror(-ret));
	coord_destroy(b->coord); /* after the log: its last append callbacks ran */
	producers_destroy(b->producers);
	topics_close(b->topics);
	shard->layer_state[index] = NULL;
	free(b);
}
