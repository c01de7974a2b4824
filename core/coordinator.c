/*
 * core/coordinator.c: the group coordinator of one shard (contract in core/coordinator.h):
 * the owner of a group from __consumer_offsets' placement, the topic's creation on the
 * first FindCoordinator, the replay of this shard's offsets partitions at start, commits
 * and group deletions written as RecordBatches of core/groups records (in request order:
 * an append the shard log refuses for now waits in a queue that later ones join), the
 * timer that runs groups_tick at the groups' next deadline, and the periodic snapshot of
 * every live offset that lets time retention keep the partitions small.
 */
#include "core/coordinator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/broker.h"
#include "core/logger.h"
#include "core/meta.h"

/* A snapshot of every live offset is written this often by default; the offsets
 * partitions keep three intervals (retention.ms), so the newest complete snapshot is
 * always kept. */
#define COORD_SNAPSHOT_INTERVAL_MS (10 * 60 * 1000)
#define COORD_RETENTION_INTERVALS  3
/* Records go into batches of at most this many bytes (a big commit takes several). */
#define COORD_BATCH_BYTES (1u << 20)
/* Bytes asked of each replay read. */
#define COORD_READ_BYTES (1u << 20)
/* FindCoordinator requests waiting for __consumer_offsets to be created. */
#define COORD_FIND_WAITERS_MAX 4096
/* Delay before retrying an append the shard log refused (-EAGAIN) or a replay read. */
#define COORD_RETRY_MS 1

/* A commit, a deletion or a snapshot piece: its batches, appended in order. */
struct coord_op {
	struct coord *c;
	coord_done_fn done; /* NULL for a snapshot */
	void *ctx;
	uint32_t partition_id; /* the shard-log partition the batches go to */
	uint8_t **batches;     /* batch_count finished batches */
	uint32_t *lens;
	uint32_t batch_count;
	uint32_t appended; /* batches handed to the shard log */
	uint32_t pending;  /* of them, not written yet */
	int status;	   /* first failure */
	struct coord_op *next; /* in the queue of ops waiting to append */
};

struct coord_find_waiter {
	coord_find_fn done;
	void *ctx;
	uint32_t len;
	struct coord_find_waiter *next;
	char group[]; /* len bytes */
};

struct coord {
	struct broker *b;
	struct shard *shard;
	struct groups *groups;
	uint32_t topic_partitions; /* partitions of __consumer_offsets to create */
	uint32_t snapshot_ms;	   /* interval between snapshots */
	bool loading;		   /* replaying the offsets partitions */
	bool load_failed;
	bool stopping;
	bool creating; /* topics_create of __consumer_offsets under way */
	struct coord_find_waiter *waiters;
	uint32_t waiter_count;
	struct coord_op *queue_head; /* ops waiting for the shard log to take them */
	struct coord_op *queue_tail;
	struct loop_timer retry;    /* retries the queue, or the replay */
	struct loop_timer tick;	    /* groups_tick at groups_next_deadline */
	struct loop_timer snapshot; /* every snapshot_ms */
	/* the replay */
	uint32_t *load_ids; /* this shard's partitions of __consumer_offsets */
	uint32_t load_count;
	uint32_t load_index;
	int64_t load_offset;
	bool load_reading; /* a disk read is in flight */
	struct shardlog_read load_rd;
	uint64_t load_records;
	uint64_t load_bad_records;
	/* counters */
	uint64_t commits;
	uint64_t append_retries;
	uint64_t snapshots;
};

int64_t coord_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct coord *coord_of(const struct shard *shard)
{
	struct broker *b = broker_of(shard);
	return b ? b->coord : NULL;
}

struct groups *coord_groups(struct coord *c)
{
	return c->loading || c->load_failed ? NULL : c->groups;
}

bool coord_load_failed(const struct coord *c)
{
	return c->load_failed;
}

/* The offsets partition (index into the topic) of GROUP_ID in VIEW. */
static uint32_t coord_partition_index(const struct topic_view *view, struct groups_bytes group_id)
{
	return meta_placement_hash_len((const char *)group_id.ptr, group_id.len) %
	       view->partition_count;
}

int coord_owner(const struct coord *c, struct groups_bytes group_id)
{
	const struct topic_view *view = topics_find(c->b->topics, COORD_TOPIC);
	if (!view)
		return -EAGAIN;
	return (int)view->partitions[coord_partition_index(view, group_id)].shard;
}

/* ---- FindCoordinator and the topic's creation ---- */

static void coord_created(void *ctx, int status, const struct topic_view *view)
{
	struct coord *c = ctx;
	(void)view;
	c->creating = false;
	struct coord_find_waiter *w = c->waiters;
	c->waiters = NULL;
	c->waiter_count = 0;
	if (status < 0 && status != -EEXIST)
		LOG_ERROR("groups: cannot create %s: %s", COORD_TOPIC, strerror(-status));
	else
		LOG_INFO("groups: %s is ready", COORD_TOPIC);
	while (w) {
		struct coord_find_waiter *next = w->next;
		int owner = coord_owner(c, (struct groups_bytes){(const uint8_t *)w->group, w->len});
		w->done(w->ctx, owner >= 0 ? owner : (status < 0 ? status : -EIO));
		free(w);
		w = next;
	}
}

int coord_find(struct coord *c, struct groups_bytes group_id, coord_find_fn done, void *ctx)
{
	int owner = coord_owner(c, group_id);
	if (owner >= 0)
		return owner;
	if (c->stopping)
		return -ESHUTDOWN;
	if (c->waiter_count >= COORD_FIND_WAITERS_MAX)
		return -EAGAIN;
	struct coord_find_waiter *w = malloc(sizeof(*w) + group_id.len);
	if (!w)
		return -ENOMEM;
	if (!c->creating) {
		char partitions[16], retention[24];
		snprintf(partitions, sizeof(partitions), "%u", c->topic_partitions);
		snprintf(retention, sizeof(retention), "%llu",
			 (unsigned long long)c->snapshot_ms * COORD_RETENTION_INTERVALS);
		struct meta_config_kv configs[] = {{"retention.bytes", "-1"},
						   {"retention.ms", retention}};
		int ret = topics_create(c->b->topics, COORD_TOPIC, c->topic_partitions, configs,
					2, coord_created, c);
		if (ret < 0) {
			free(w);
			return ret;
		}
		c->creating = true;
		LOG_INFO("groups: creating %s with %s partitions for the first group", COORD_TOPIC,
			 partitions);
	}
	w->done = done;
	w->ctx = ctx;
	w->len = group_id.len;
	if (group_id.len)
		memcpy(w->group, group_id.ptr, group_id.len);
	w->next = c->waiters;
	c->waiters = w;
	c->waiter_count++;
	return -EINPROGRESS;
}

/* ---- appends ---- */

static void coord_op_free(struct coord_op *op)
{
	for (uint32_t i = 0; i < op->batch_count; i++)
		free(op->batches[i]);
	free(op->batches);
	free(op->lens);
	free(op);
}

static int coord_apply_record(void *ctx, int32_t offset_delta, const uint8_t *key, int32_t key_len,
			      const uint8_t *value, int32_t value_len)
{
	struct coord *c = ctx;
	(void)offset_delta;
	int ret = groups_record_apply(c->groups, key, key_len, value, value_len);
	if (ret == -EBADMSG) {
		c->load_bad_records++;
		return 0;
	}
	return ret;
}

/* Every batch of OP is written (or failed): apply its records, answer, free. */
static void coord_op_finish(struct coord_op *op)
{
	struct coord *c = op->c;
	if (op->status == 0 && !c->stopping) {
		for (uint32_t i = 0; i < op->batch_count; i++) {
			long ret = batch_records_each(op->batches[i], op->lens[i],
						      coord_apply_record, c);
			if (ret < 0) {
				LOG_ERROR("groups: applying a written offsets batch failed: %s",
					  strerror((int)-ret));
				op->status = (int)ret;
				break;
			}
		}
	}
	if (op->done)
		op->done(op->ctx, op->status);
	coord_op_free(op);
}

static void coord_appended(void *ctx, int status, int64_t base_offset)
{
	struct coord_op *op = ctx;
	(void)base_offset;
	ASSERT(op->pending > 0);
	op->pending--;
	if (status < 0 && op->status == 0)
		op->status = status;
	if (op->pending == 0 && op->appended == op->batch_count)
		coord_op_finish(op);
}

/* Appends what OP still has to append. Returns 0 when all was handed over, -EAGAIN when
 * the log refused for now (retry later), another -errno when it failed (OP->status). */
static int coord_op_push(struct coord_op *op)
{
	struct shardlog *log = op->c->b->log;
	while (op->appended < op->batch_count) {
		uint32_t i = op->appended;
		int64_t ret = shardlog_append(log, op->partition_id, op->batches[i], op->lens[i],
					      true, coord_appended, op);
		if (ret == -EAGAIN)
			return -EAGAIN;
		if (ret < 0) {
			op->status = (int)ret;
			return (int)ret;
		}
		op->appended++;
		op->pending++;
	}
	return 0;
}

/* Ends OP after a push failure: its earlier batches may still be in flight. */
static void coord_op_fail(struct coord_op *op)
{
	op->batch_count = op->appended; /* what was not appended never will be */
	if (op->pending == 0)
		coord_op_finish(op);
}

static void coord_queue_run(struct coord *c)
{
	while (c->queue_head) {
		struct coord_op *op = c->queue_head;
		int ret = coord_op_push(op);
		if (ret == -EAGAIN) {
			c->append_retries++;
			if (loop_timer_arm(&c->shard->loop, &c->retry, COORD_RETRY_MS) == 0)
				return;
			op->status = -EAGAIN; /* no timer: fail rather than hang */
			ret = -EAGAIN;
		}
		c->queue_head = op->next;
		if (!c->queue_head)
			c->queue_tail = NULL;
		if (ret < 0)
			coord_op_fail(op);
		/* else: every batch is with the log; coord_appended finishes OP */
	}
}

/* Submits OP: behind the queue when it is not empty, so commits land in request order. */
static void coord_op_submit(struct coord *c, struct coord_op *op)
{
	op->next = NULL;
	if (c->queue_tail)
		c->queue_tail->next = op;
	else
		c->queue_head = op;
	c->queue_tail = op;
	if (c->queue_head == op)
		coord_queue_run(c);
}

/* Builds OP's batches record by record. */
struct coord_writer {
	struct coord_op *op;
	struct batch_builder builder;
	uint8_t *buf; /* the batch being built, COORD_BATCH_BYTES */
	int status;
};

static struct coord_op *coord_op_new(struct coord *c, uint32_t partition_id, coord_done_fn done,
				     void *ctx)
{
	struct coord_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->c = c;
	op->done = done;
	op->ctx = ctx;
	op->partition_id = partition_id;
	return op;
}

static int coord_writer_close_batch(struct coord_writer *w)
{
	if (!w->buf || w->builder.count == 0)
		return 0;
	long len = batch_builder_finish(&w->builder);
	ASSERT(len > 0);
	struct coord_op *op = w->op;
	uint8_t **batches = realloc(op->batches, (op->batch_count + 1) * sizeof(*batches));
	if (!batches)
		return -ENOMEM;
	op->batches = batches;
	uint32_t *lens = realloc(op->lens, (op->batch_count + 1) * sizeof(*lens));
	if (!lens)
		return -ENOMEM;
	op->lens = lens;
	uint8_t *shrunk = realloc(w->buf, (size_t)len);
	op->batches[op->batch_count] = shrunk ? shrunk : w->buf;
	op->lens[op->batch_count] = (uint32_t)len;
	op->batch_count++;
	w->buf = NULL;
	return 0;
}

static void coord_writer_add(struct coord_writer *w, const uint8_t *key, size_t key_len,
			     const uint8_t *value, long value_len)
{
	if (w->status < 0)
		return;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!w->buf) {
			w->buf = malloc(COORD_BATCH_BYTES);
			if (!w->buf) {
				w->status = -ENOMEM;
				return;
			}
			batch_builder_init(&w->builder, w->buf, COORD_BATCH_BYTES, coord_now_ms());
		}
		if (batch_builder_add(&w->builder, key, (int32_t)key_len, value,
				      value ? (int32_t)value_len : -1) == 0)
			return;
		if (w->builder.count == 0) {
			w->status = -EMSGSIZE; /* one record larger than a batch: cannot be */
			return;
		}
		w->status = coord_writer_close_batch(w);
		if (w->status < 0)
			return;
	}
	w->status = -EMSGSIZE;
}

/* Closes W: OP gets its last batch; on failure everything is freed. Returns 0 or -errno. */
static int coord_writer_finish(struct coord_writer *w)
{
	if (w->status == 0)
		w->status = coord_writer_close_batch(w);
	free(w->buf);
	w->buf = NULL;
	if (w->status == 0 && w->op->batch_count == 0)
		w->status = -EINVAL;
	if (w->status < 0)
		coord_op_free(w->op);
	return w->status;
}

/* The shard-log partition holding GROUP_ID's records, when this shard owns it. */
static int coord_group_partition(const struct coord *c, struct groups_bytes group_id,
				 uint32_t *partition_id)
{
	const struct topic_view *view = topics_find(c->b->topics, COORD_TOPIC);
	if (!view)
		return -ENOENT;
	const struct meta_partition *p = &view->partitions[coord_partition_index(view, group_id)];
	if (p->shard != c->shard->id)
		return -ENOENT;
	*partition_id = p->partition_id;
	return 0;
}

static void coord_writer_add_offset(struct coord_writer *w, struct groups_bytes group_id,
				    struct groups_bytes topic, int32_t partition,
				    const struct groups_offset *offset, uint8_t *key, uint8_t *value)
{
	size_t key_len = groups_record_commit_key_bytes(group_id, topic);
	size_t value_len = groups_record_commit_value_bytes(offset);
	if (groups_record_commit_encode(group_id, topic, partition, offset, key,
					GROUPS_RECORD_KEY_MAX, value,
					GROUPS_RECORD_VALUE_MAX) < 0) {
		w->status = -EINVAL;
		return;
	}
	coord_writer_add(w, key, key_len, value, (long)value_len);
}

int coord_commit(struct coord *c, struct groups_bytes group_id,
		 const struct coord_commit_entry *entries, uint32_t count, coord_done_fn done,
		 void *ctx)
{
	if (c->stopping)
		return -ESHUTDOWN;
	uint32_t partition_id;
	if (coord_group_partition(c, group_id, &partition_id) < 0)
		return -ENOENT;
	if (count == 0)
		return -EINVAL;
	struct coord_op *op = coord_op_new(c, partition_id, done, ctx);
	uint8_t *key = malloc(GROUPS_RECORD_KEY_MAX), *value = malloc(GROUPS_RECORD_VALUE_MAX);
	if (!op || !key || !value) {
		free(op);
		free(key);
		free(value);
		return -ENOMEM;
	}
	struct coord_writer w = {.op = op};
	for (uint32_t i = 0; i < count && w.status == 0; i++)
		coord_writer_add_offset(&w, group_id, entries[i].topic, entries[i].partition,
					&entries[i].offset, key, value);
	free(key);
	free(value);
	int ret = coord_writer_finish(&w);
	if (ret < 0)
		return ret;
	c->commits++;
	coord_op_submit(c, op);
	return 0;
}

int coord_delete_group(struct coord *c, struct groups_bytes group_id, coord_done_fn done,
		       void *ctx)
{
	if (c->stopping)
		return -ESHUTDOWN;
	uint32_t partition_id;
	if (coord_group_partition(c, group_id, &partition_id) < 0)
		return -ENOENT;
	struct coord_op *op = coord_op_new(c, partition_id, done, ctx);
	uint8_t *key = malloc(GROUPS_RECORD_KEY_MAX);
	if (!op || !key) {
		free(op);
		free(key);
		return -ENOMEM;
	}
	struct coord_writer w = {.op = op};
	long key_len = groups_record_delete_encode(group_id, key, GROUPS_RECORD_KEY_MAX);
	if (key_len < 0)
		w.status = (int)key_len;
	else
		coord_writer_add(&w, key, (size_t)key_len, NULL, -1);
	free(key);
	int ret = coord_writer_finish(&w);
	if (ret < 0)
		return ret;
	coord_op_submit(c, op);
	return 0;
}

/* ---- snapshots ---- */

struct coord_snapshot_ctx {
	struct coord_writer *w;
	struct groups_bytes group_id;
	uint8_t *key, *value;
};

static void coord_snapshot_offset(void *ctx, struct groups_bytes topic, int32_t partition,
				  const struct groups_offset *offset)
{
	struct coord_snapshot_ctx *s = ctx;
	coord_writer_add_offset(s->w, s->group_id, topic, partition, offset, s->key, s->value);
}

/* Restates every live offset of the groups this shard coordinates, one op per group. */
static void coord_write_snapshot(struct coord *c)
{
	uint8_t *key = malloc(GROUPS_RECORD_KEY_MAX), *value = malloc(GROUPS_RECORD_VALUE_MAX);
	uint8_t *group = malloc(UINT16_MAX);
	uint32_t written = 0, failed = 0;
	if (!key || !value || !group) {
		failed = 1;
		goto out;
	}
	uint32_t n = groups_count(c->groups);
	for (uint32_t i = 0; i < n; i++) {
		struct groups_view v;
		groups_at(c->groups, i, &v);
		if (v.offset_count == 0 || v.group_id.len > UINT16_MAX)
			continue;
		memcpy(group, v.group_id.ptr, v.group_id.len);
		struct groups_bytes gid = {group, v.group_id.len};
		uint32_t partition_id;
		if (coord_group_partition(c, gid, &partition_id) < 0)
			continue;
		struct coord_op *op = coord_op_new(c, partition_id, NULL, NULL);
		if (!op) {
			failed++;
			continue;
		}
		struct coord_writer w = {.op = op};
		struct coord_snapshot_ctx s = {&w, gid, key, value};
		groups_offsets_each(c->groups, gid, coord_snapshot_offset, &s);
		if (coord_writer_finish(&w) < 0) {
			failed++;
			continue;
		}
		coord_op_submit(c, op);
		written++;
	}
out:
	free(key);
	free(value);
	free(group);
	c->snapshots++;
	if (failed)
		LOG_ERROR("groups: the offsets snapshot missed %u group(s) (out of memory); the "
			  "next one retries",
			  failed);
	else if (written)
		LOG_DEBUG("groups: offsets snapshot of %u group(s) written", written);
}

static void coord_snapshot_fired(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	struct coord *c = ctx;
	if (!c->loading && !c->load_failed)
		coord_write_snapshot(c);
	if (loop_timer_arm(loop, timer, c->snapshot_ms) < 0)
		LOG_ERROR("groups: no free loop timer for the offsets snapshot; committed offsets "
			  "of idle groups may be lost to retention after a restart");
}

/* ---- groups_tick ---- */

static void coord_rearm_tick(struct coord *c)
{
	if (c->stopping)
		return;
	int64_t deadline = groups_next_deadline(c->groups);
	if (deadline == INT64_MAX) {
		loop_timer_disarm(&c->shard->loop, &c->tick);
		return;
	}
	int64_t delay = deadline - coord_now_ms();
	if (loop_timer_arm(&c->shard->loop, &c->tick, delay > 0 ? (uint64_t)delay : 0) < 0)
		LOG_ERROR("groups: no free loop timer for session timeouts");
}

static void coord_deadline_changed(void *ctx)
{
	coord_rearm_tick(ctx);
}

static void coord_tick_fired(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	struct coord *c = ctx;
	(void)loop;
	(void)timer;
	groups_tick(c->groups, coord_now_ms());
	coord_rearm_tick(c);
}

/* ---- replay at start ---- */

static void coord_load_step(struct coord *c);

/* Applies every record of the batches RD returned. */
static void coord_load_apply(struct coord *c, const struct shardlog_read *rd)
{
	for (uint32_t i = 0; i < rd->slice_count; i++) {
		const uint8_t *p = rd->slices[i].data;
		size_t left = rd->slices[i].len;
		while (left >= BATCH_HEADER_BYTES) {
			struct batch_header h;
			if (batch_parse(p, left, &h) != BATCH_OK)
				break;
			size_t len = (size_t)h.batch_length + BATCH_LENGTH_OVERHEAD;
			if (len > left)
				break;
			long n = batch_records_each(p, len, coord_apply_record, c);
			if (n < 0)
				c->load_bad_records++;
			else
				c->load_records += (uint64_t)n;
			p += len;
			left -= len;
		}
	}
}

static void coord_load_read_done(void *ctx, struct shardlog_read *rd)
{
	struct coord *c = ctx;
	c->load_reading = false;
	if (c->stopping) {
		shardlog_read_release(c->b->log, rd);
		return;
	}
	if (rd->status < 0) {
		LOG_ERROR("groups: reading offsets partition %u failed: %s; this shard answers "
			  "group requests with COORDINATOR_NOT_AVAILABLE until a restart",
			  c->load_ids[c->load_index], strerror(-rd->status));
		shardlog_read_release(c->b->log, rd);
		c->load_failed = true;
		return;
	}
	coord_load_apply(c, rd);
	c->load_offset = rd->next_offset;
	shardlog_read_release(c->b->log, rd);
	coord_load_step(c);
}

static void coord_load_done(struct coord *c)
{
	c->loading = false;
	struct groups_stats st;
	groups_stats(c->groups, &st);
	LOG_INFO("groups: replayed %" PRIu64 " offset records from %u partition(s): %u groups, "
		 "%" PRIu64 " committed offsets",
		 c->load_records, c->load_count, st.groups, st.offsets);
	if (c->load_bad_records)
		LOG_WARN("groups: %" PRIu64 " offset records did not parse and were skipped",
			 c->load_bad_records);
	groups_tick(c->groups, coord_now_ms()); /* expire what expired while down */
	coord_rearm_tick(c);
}

static void coord_load_step(struct coord *c)
{
	struct shardlog *log = c->b->log;
	while (c->load_index < c->load_count) {
		uint32_t id = c->load_ids[c->load_index];
		struct shardlog_partition_info info;
		if (shardlog_partition_info(log, id, &info) < 0 ||
		    c->load_offset >= info.high_watermark) {
			c->load_index++;
			c->load_offset = 0;
			continue;
		}
		if (c->load_offset < info.log_start_offset)
			c->load_offset = info.log_start_offset;
		int ret = shardlog_read(log, id, c->load_offset, COORD_READ_BYTES, &c->load_rd,
					coord_load_read_done, c);
		if (ret == -EINPROGRESS) {
			c->load_reading = true;
			return;
		}
		if (ret == -EAGAIN) {
			if (loop_timer_arm(&c->shard->loop, &c->retry, COORD_RETRY_MS) == 0)
				return;
			ret = -ENOSPC;
		}
		if (ret == -ERANGE) {
			c->load_offset = info.log_start_offset; /* retention moved the start */
			continue;
		}
		if (ret < 0) {
			LOG_ERROR("groups: reading offsets partition %u failed: %s; this shard "
				  "answers group requests with COORDINATOR_NOT_AVAILABLE until a "
				  "restart",
				  id, strerror(-ret));
			c->load_failed = true;
			return;
		}
		coord_load_apply(c, &c->load_rd);
		c->load_offset = c->load_rd.next_offset;
		shardlog_read_release(log, &c->load_rd);
	}
	coord_load_done(c);
}

static void coord_retry_fired(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	struct coord *c = ctx;
	(void)loop;
	(void)timer;
	if (c->loading && !c->load_reading && !c->load_failed)
		coord_load_step(c);
	coord_queue_run(c);
}

/* ---- life cycle (core/broker) ---- */

int coord_create(struct coord **out, struct broker *b, const struct coord_settings *s)
{
	struct coord *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->b = b;
	c->shard = b->shard;
	c->topic_partitions = s->offsets_topic_partitions ? s->offsets_topic_partitions
							    : b->shard->set->count;
	c->snapshot_ms = s->snapshot_interval_ms ? s->snapshot_interval_ms
						 : COORD_SNAPSHOT_INTERVAL_MS;
	struct groups_options gopts = {
	    .min_session_timeout_ms = (int32_t)s->min_session_timeout_ms,
	    .max_session_timeout_ms = (int32_t)s->max_session_timeout_ms,
	    .initial_rebalance_delay_ms = (int32_t)s->initial_rebalance_delay_ms,
	    .offsets_retention_ms = (int64_t)s->offsets_retention_minutes * 60000,
	    .max_group_size = s->max_group_size,
	    .deadline_changed = coord_deadline_changed,
	    .ctx = c,
	};
	int ret = groups_create(&c->groups, &gopts);
	if (ret < 0) {
		free(c);
		return ret;
	}
	loop_timer_init(&c->retry, coord_retry_fired, c);
	loop_timer_init(&c->tick, coord_tick_fired, c);
	loop_timer_init(&c->snapshot, coord_snapshot_fired, c);

	const struct topic_view *view = topics_find(b->topics, COORD_TOPIC);
	if (view) {
		c->load_ids = malloc(view->partition_count * sizeof(*c->load_ids));
		if (!c->load_ids) {
			groups_destroy(c->groups);
			free(c);
			return -ENOMEM;
		}
		for (uint32_t p = 0; p < view->partition_count; p++)
			if (view->partitions[p].shard == c->shard->id)
				c->load_ids[c->load_count++] = view->partitions[p].partition_id;
	}
	if (c->load_count) {
		c->loading = true;
		/* The replay starts from the loop (reads complete there). */
		ret = loop_timer_arm(&c->shard->loop, &c->retry, 0);
	}
	if (ret == 0)
		ret = loop_timer_arm(&c->shard->loop, &c->snapshot, c->snapshot_ms);
	if (ret < 0) {
		loop_timer_disarm(&c->shard->loop, &c->retry);
		free(c->load_ids);
		groups_destroy(c->groups);
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void coord_quiesce(struct coord *c)
{
	if (!c)
		return;
	c->stopping = true;
	loop_timer_disarm(&c->shard->loop, &c->retry);
	loop_timer_disarm(&c->shard->loop, &c->tick);
	loop_timer_disarm(&c->shard->loop, &c->snapshot);
	/* Ops the log never took end now; those it took end when the log drains. */
	while (c->queue_head) {
		struct coord_op *op = c->queue_head;
		c->queue_head = op->next;
		if (op->status == 0)
			op->status = -ESHUTDOWN;
		coord_op_fail(op);
	}
	c->queue_tail = NULL;
	struct coord_find_waiter *w = c->waiters;
	c->waiters = NULL;
	while (w) {
		struct coord_find_waiter *next = w->next;
		w->done(w->ctx, -ESHUTDOWN);
		free(w);
		w = next;
	}
}

void coord_destroy(struct coord *c)
{
	if (!c)
		return;
	ASSERT(c->stopping);
	ASSERT(!c->load_reading);
	groups_destroy(c->groups);
	free(c->load_ids);
	free(c);
}

void coord_stats(const struct coord *c, struct coord_stats *out)
{
	*out = (struct coord_stats){
	    .commits = c->commits,
	    .append_retries = c->append_retries,
	    .snapshots = c->snapshots,
	    .loaded_records = c->load_records,
	    .bad_records = c->load_bad_records,
	};
}
