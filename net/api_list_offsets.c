/*
 * net/api_list_offsets.c: the ListOffsets handler (API key 2), versions 1-5. Per
 * partition, the timestamp asks for:
 *   -2 (EARLIEST)  the log start offset;
 *   -1 (LATEST)    the high watermark (which is also the last stable offset: sluice has
 *                  no transactions, so READ_COMMITTED changes nothing);
 *   any other      the first offset whose record timestamp is >= it, among the records
 *                  below the high watermark, with that record's timestamp; offset -1 and
 *                  timestamp -1 (error NONE) when there is none, as Kafka answers.
 * EARLIEST and LATEST answer timestamp -1, as Kafka does.
 *
 * By timestamp, the shard log's index (core/index through shardlog_offset_for_timestamp)
 * finds the first batch whose max_timestamp reaches the target. Kafka answers with the
 * record, not the batch (LogSegment.findOffsetByTimestamp walks the batch), and a
 * consumer starts where the answer says, so a batch-granular answer would hand it older
 * records first (kcat -Q prints the offset, and kcat -o s@ts starts there). So the batch
 * is read (from the tail cache or disk) and, when it is not compressed, its records are
 * walked: the answer is the first record at or after the batch's start (or the log
 * start offset inside it) with timestamp = baseTimestamp + timestampDelta >= target.
 * For a LogAppendTime batch every record carries the batch's max_timestamp, so its first
 * record answers. A compressed batch is not decompressed (DESIGN §4): its first offset is
 * answered with its max_timestamp, which is the record-exact answer when the target lies
 * between the previous batch's max_timestamp and this batch's first record's, and
 * otherwise starts the consumer up to one batch early, never late. A read the shard log
 * refuses for backpressure falls back to the same batch-level answer; a batch whose
 * records contradict its max_timestamp answers its first offset.
 *
 * current_leader_epoch (v4+) is checked as Fetch checks it (-1 or 0 pass, larger: 75
 * UNKNOWN_LEADER_EPOCH, smaller: 74 FENCED_LEADER_EPOCH); leader_epoch (v4+) answers 0
 * with an offset, -1 without. A partition owned by another shard is looked up there
 * (SHARD_OP_LIST_OFFSETS: the request's own struct travels over the mesh and back);
 * one that cannot be forwarded is answered NOT_LEADER_OR_FOLLOWER (6), so the client
 * asks the owner. Partitions are looked up all at once; the answer goes when the last
 * one is known. replica_id is ignored; an unknown topic or partition is 3.
 *
 * Request (ListOffsetRequest.json, apache/kafka clients/src/main/resources/common/message):
 *
 *   field                     type     versions  use
 *  +-------------------------+--------+---------+--------------------------------------+
 *  | replica_id              | int32  | 0+      | ignored (-1 for consumers)           |
 *  | isolation_level         | int8   | 2+      | 0 uncommitted, 1 committed: the same |
 *  | topics                  | array  | 0+      | of:                                  |
 *  |   name                  | string |         |                                      |
 *  |   partitions            | array  |         | of:                                  |
 *  |     partition_index     | int32  |         |                                      |
 *  |     current_leader_epoch| int32  | 4+      |   -1, or checked against 0           |
 *  |     timestamp           | int64  |         |   -2, -1 or a time in ms             |
 *  +-------------------------+--------+---------+--------------------------------------+
 *   (version 0, with max_num_offsets, is not accepted: DESIGN §4.)
 *
 * Response (ListOffsetResponse.json), after the response header v0:
 *
 *   field                     type     versions  value
 *  +-------------------------+--------+---------+--------------------------------------+
 *  | throttle_time_ms        | int32  | 2+      | 0                                    |
 *  | topics                  | array  | 0+      | per topic, in request order:         |
 *  |   name                  | string |         |                                      |
 *  |   partitions            | array  |         | per partition, in request order:     |
 *  |     partition_index     | int32  |         |                                      |
 *  |     error_code          | int16  |         |   0, 3, 6, 74, 75                    |
 *  |     timestamp           | int64  | 1+      |   see above; -1 on an error          |
 *  |     offset              | int64  | 1+      |   see above; -1 on an error          |
 *  |     leader_epoch        | int32  | 4+      |   0, or -1 without an offset         |
 *  +-------------------------+--------+---------+--------------------------------------+
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/broker.h"
#include "core/shard.h"
#include "core/shardlog.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"
#include "net/wire.h"

/* Kafka's special timestamps (ListOffsetRequest.java). */
#define LO_TIMESTAMP_LATEST   (-1)
#define LO_TIMESTAMP_EARLIEST (-2)
/* The leader epoch sluice advertises (Metadata v7+) and accepts. */
#define LO_LEADER_EPOCH 0
/* Bytes of a topic entry besides its name, of a partition entry (highest version). */
#define LO_TOPIC_BYTES	   (2 + 4)
#define LO_PARTITION_BYTES (4 + 2 + 8 + 8 + 4)

struct lo_query;
typedef void (*lo_done_fn)(struct lo_query *q);

/* One partition's lookup, done by its owner. */
struct lo_query {
	/* in */
	uint32_t partition_id; /* broker-wide id */
	int64_t timestamp;     /* -2, -1 or a time */
	/* out */
	int16_t error;		 /* KERR_* */
	int64_t offset;		 /* the answer, -1 for none */
	int64_t found_timestamp; /* its timestamp, -1 for none */
	/* while the batch is read from disk */
	struct shardlog *log;	  /* the owner's log */
	struct shardlog_read *rd; /* the read (heap), or NULL */
	int64_t batch_offset;	  /* the batch-level answer */
	int64_t batch_timestamp;  /* and its max_timestamp */
	lo_done_fn done;	  /* runs once the disk read's answer is in */
};

/* A forwarded lookup: the requester allocates it, the owner answers in it, the
 * requester frees it. */
struct lo_fwd {
	struct lo_query q;	 /* the lookup */
	struct shard *shard;	 /* the owner, while it works */
	uint32_t from;		 /* the requesting shard */
	struct ring_msg request; /* to reply to */
};

struct lo_topic {
	const char *name; /* in list_offsets.names */
	uint16_t len;	  /* bytes of name */
	uint32_t first;	  /* first partition in parts */
	uint32_t count;	  /* its partitions */
};

struct list_offsets;

struct lo_part {
	int32_t partition;	 /* index, as asked */
	int32_t leader_epoch;	 /* current_leader_epoch, -1 before v4 */
	struct lo_query q;	 /* the lookup (results also for forwarded ones) */
	struct shard_call call;	 /* a forwarded lookup in flight */
	struct list_offsets *lo; /* the request it belongs to */
};

/* One ListOffsets request while partitions are looked up. */
struct list_offsets {
	struct api_request *req; /* to answer */
	int16_t version;	 /* of the request */
	uint32_t topic_count;	 /* entries of topics */
	struct lo_topic *topics; /* in request order */
	uint32_t part_count;	 /* entries of parts */
	struct lo_part *parts;	 /* in request order */
	char *names;		 /* the topic names' bytes */
	uint32_t pending;	 /* lookups not answered yet (+1 while issuing) */
	bool abandoned;		 /* the server stopped: free when the last one returns */
};

/* ---- the lookup, on the partition's owner ---- */

/* Walks the records of the uncompressed batch in the LEN bytes at B for the first one at
 * or after offset START with timestamp >= TARGET. Returns its offset and sets *TS, or -1
 * when no record qualifies or the records cannot be read. */
static int64_t lo_walk(const uint8_t *b, size_t len, int64_t start, int64_t target, int64_t *ts)
{
	struct batch_header h;
	if (batch_parse(b, len, &h) != BATCH_OK ||
	    (size_t)h.batch_length + BATCH_LENGTH_OVERHEAD > len)
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, b + BATCH_HEADER_BYTES,
			 (size_t)h.batch_length + BATCH_LENGTH_OVERHEAD - BATCH_HEADER_BYTES);
	for (int32_t i = 0; i < h.record_count; i++) {
		int32_t rec_len = wire_read_varint(&r);
		if (rec_len < 0 || (size_t)rec_len > wire_remaining(&r))
			return -1;
		struct wire_reader rec;
		wire_reader_init(&rec, r.pos, (size_t)rec_len);
		wire_skip(&r, (size_t)rec_len);
		wire_read_i8(&rec); /* attributes */
		int64_t ts_delta = wire_read_varlong(&rec);
		int32_t offset_delta = wire_read_varint(&rec);
		if (!wire_reader_ok(&rec) || !wire_reader_ok(&r))
			return -1;
		int64_t offset = h.base_offset + offset_delta;
		int64_t t = h.base_timestamp + ts_delta;
		if (offset >= start && t >= target) {
			*ts = t;
			return offset;
		}
	}
	return -1;
}

/* Makes the record-exact answer from the batch RD read (see the top of the file). */
static void lo_from_batch(struct lo_query *q, const struct shardlog_read *rd)
{
	uint8_t *joined = NULL;
	const uint8_t *b = rd->slices[0].data;
	size_t len = rd->slices[0].len;
	if (rd->slice_count > 1) { /* a disk read may split a batch across pool chunks */
		joined = malloc(rd->bytes);
		if (!joined)
			return; /* the batch-level answer stands */
		size_t at = 0;
		for (uint32_t s = 0; s < rd->slice_count; s++) {
			memcpy(joined + at, rd->slices[s].data, rd->slices[s].len);
			at += rd->slices[s].len;
		}
		b = joined;
		len = at;
	}
	struct batch_header h;
	if (batch_parse(b, len, &h) == BATCH_OK &&
	    (h.attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_CODEC_NONE &&
	    !(h.attributes & BATCH_ATTR_LOG_APPEND_TIME)) {
		int64_t ts;
		int64_t offset = lo_walk(b, len, q->batch_offset, q->timestamp, &ts);
		if (offset >= 0) {
			q->offset = offset;
			q->found_timestamp = ts;
		}
	}
	free(joined);
}

static void lo_read_done(void *ctx, struct shardlog_read *rd)
{
	struct lo_query *q = ctx;
	if (rd->status == 0)
		lo_from_batch(q, rd);
	shardlog_read_release(q->log, rd);
	free(rd);
	q->rd = NULL;
	q->done(q);
}

/* Looks Q up in LOG. Returns false when Q's answer is set, true when a disk read went
 * out and Q->done(Q) runs once the answer is set. */
static bool lo_lookup(struct shardlog *log, struct lo_query *q, lo_done_fn done)
{
	q->error = KERR_NONE;
	q->offset = -1;
	q->found_timestamp = -1;
	struct shardlog_partition_info info;
	if (!log || shardlog_partition_info(log, q->partition_id, &info) < 0) {
		q->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return false;
	}
	if (q->timestamp == LO_TIMESTAMP_EARLIEST) {
		q->offset = info.log_start_offset;
		return false;
	}
	if (q->timestamp == LO_TIMESTAMP_LATEST) {
		q->offset = info.high_watermark;
		return false;
	}
	int64_t offset, max_ts;
	if (shardlog_offset_for_timestamp(log, q->partition_id, q->timestamp, &offset, &max_ts) < 0)
		return false; /* no record that late: -1, -1 */
	q->offset = q->batch_offset = offset;
	q->found_timestamp = q->batch_timestamp = max_ts;
	q->rd = malloc(sizeof(*q->rd));
	if (!q->rd)
		return false; /* the batch-level answer */
	q->log = log;
	q->done = done;
	int ret = shardlog_read(log, q->partition_id, offset, 1, q->rd, lo_read_done, q);
	if (ret == -EINPROGRESS)
		return true;
	if (ret == 0) {
		lo_from_batch(q, q->rd);
		shardlog_read_release(log, q->rd);
	}
	free(q->rd);
	q->rd = NULL;
	return false;
}

static void lo_fwd_reply(struct lo_fwd *fw)
{
	int sent = shard_reply(fw->shard, fw->from, &fw->request, 0, fw, 0);
	ASSERT(sent == 0); /* one reply per request always fits (core/mesh) */
}

static void lo_fwd_done(struct lo_query *q)
{
	lo_fwd_reply((struct lo_fwd *)((char *)q - offsetof(struct lo_fwd, q)));
}

static void lo_on_op(void *ctx, struct shard *shard, uint32_t from, const struct ring_msg *msg)
{
	struct lo_fwd *fw = msg->payload;
	fw->shard = shard;
	fw->from = from;
	fw->request = *msg;
	if (!lo_lookup(broker_log(shard), &fw->q, lo_fwd_done))
		lo_fwd_reply(fw);
}

void api_list_offsets_shard_init(struct shard *shard)
{
	if (shard->ops[SHARD_OP_LIST_OFFSETS] != lo_on_op)
		shard_on_op(shard, SHARD_OP_LIST_OFFSETS, lo_on_op, NULL);
}

/* ---- the request ---- */

static void lo_free(struct list_offsets *lo)
{
	free(lo->topics);
	free(lo->parts);
	free(lo->names);
	free(lo);
}

static void lo_abandon(struct api_request *req)
{
	struct list_offsets *lo = req->ctx;
	lo->abandoned = true; /* the last lookup to return frees it */
}

static void lo_answer(struct list_offsets *lo)
{
	struct api_request *req = lo->req;
	size_t bytes = 4 + 4;
	for (uint32_t t = 0; t < lo->topic_count; t++)
		bytes += LO_TOPIC_BYTES + lo->topics[t].len;
	bytes += (size_t)lo->part_count * LO_PARTITION_BYTES;
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		lo_free(lo);
		api_fail(req, "out of memory for the ListOffsets response");
		return;
	}
	if (lo->version >= 2)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, (int32_t)lo->topic_count);
	for (uint32_t t = 0; t < lo->topic_count; t++) {
		const struct lo_topic *topic = &lo->topics[t];
		wire_write_string(&w, topic->name, topic->len);
		wire_write_array_len(&w, (int32_t)topic->count);
		for (uint32_t i = topic->first; i < topic->first + topic->count; i++) {
			const struct lo_part *p = &lo->parts[i];
			bool found = p->q.error == KERR_NONE && p->q.offset >= 0;
			wire_write_i32(&w, p->partition);
			wire_write_i16(&w, p->q.error);
			wire_write_i64(&w, found ? p->q.found_timestamp : -1);
			wire_write_i64(&w, found ? p->q.offset : -1);
			if (lo->version >= 4)
				wire_write_i32(&w, found ? LO_LEADER_EPOCH : -1);
		}
	}
	lo_free(lo);
	api_respond(req, &w);
}

/* One lookup fewer to wait for; the last one answers (or frees an abandoned request). */
static void lo_one_done(struct list_offsets *lo)
{
	ASSERT(lo->pending > 0);
	if (--lo->pending > 0)
		return;
	if (lo->abandoned) {
		lo_free(lo);
		return;
	}
	lo->req->ctx = NULL;
	lo->req->abandon = NULL;
	lo_answer(lo);
}

static void lo_local_done(struct lo_query *q)
{
	lo_one_done(((struct lo_part *)((char *)q - offsetof(struct lo_part, q)))->lo);
}

static void lo_call_done(struct shard_call *call, const struct ring_msg *reply)
{
	struct lo_part *p = call->ctx;
	struct lo_fwd *fw = reply->payload;
	if (reply->status < 0) /* the owner serves no forwarded lookups */
		p->q.error = KERR_NOT_LEADER_OR_FOLLOWER;
	else
		p->q = fw->q;
	free(fw);
	lo_one_done(p->lo);
}

/* Starts P's lookup. */
static void lo_start(struct list_offsets *lo, struct lo_part *p, const struct lo_topic *topic)
{
	const struct server *s = lo->req->server;
	p->q.error = KERR_NONE;
	p->q.offset = p->q.found_timestamp = -1;
	const struct topic_view *view =
	    s->topics ? topics_find_len(s->topics, topic->name, topic->len) : NULL;
	if (!view || p->partition < 0 || (uint32_t)p->partition >= view->partition_count) {
		p->q.error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	if (p->leader_epoch != -1 && p->leader_epoch != LO_LEADER_EPOCH) {
		p->q.error = p->leader_epoch > LO_LEADER_EPOCH ? KERR_UNKNOWN_LEADER_EPOCH
							       : KERR_FENCED_LEADER_EPOCH;
		return;
	}
	p->q.partition_id = view->partitions[p->partition].partition_id;
	uint32_t owner = view->partitions[p->partition].shard;
	if (owner == s->shard->id) {
		if (lo_lookup(broker_log(s->shard), &p->q, lo_local_done))
			lo->pending++;
		return;
	}
	struct lo_fwd *fw = calloc(1, sizeof(*fw));
	if (!fw) {
		p->q.error = KERR_UNKNOWN_SERVER_ERROR;
		return;
	}
	fw->q.partition_id = p->q.partition_id;
	fw->q.timestamp = p->q.timestamp;
	p->call.done = lo_call_done;
	p->call.ctx = p;
	if (shard_call(s->shard, owner, SHARD_OP_LIST_OFFSETS, fw, 0, &p->call) < 0) {
		free(fw); /* the mesh window to the owner is full */
		p->q.error = KERR_NOT_LEADER_OR_FOLLOWER;
		return;
	}
	lo->pending++;
}

int api_list_offsets_handle(struct api_request *req)
{
	api_list_offsets_shard_init(req->server->shard);
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	wire_read_i32(r); /* replica_id */
	if (v >= 2)
		wire_read_i8(r); /* isolation_level: the same answers */
	size_t part_min = 4 + (v >= 4 ? 4 : 0) + 8;
	struct wire_reader scan = *r;
	int32_t topics = wire_read_array_len(&scan, 2 + 4);
	uint64_t parts = 0, name_bytes = 0;
	for (int32_t t = 0; t < topics; t++) {
		name_bytes += wire_read_string(&scan).len;
		int32_t n = wire_read_array_len(&scan, part_min);
		wire_skip(&scan, (size_t)n * part_min);
		parts += (uint32_t)n;
	}
	if (!wire_reader_ok(&scan))
		return -EBADMSG;

	struct list_offsets *lo = calloc(1, sizeof(*lo));
	if (lo) {
		lo->topics = calloc(topics ? (size_t)topics : 1, sizeof(*lo->topics));
		lo->parts = calloc(parts ? parts : 1, sizeof(*lo->parts));
		lo->names = malloc(name_bytes ? name_bytes : 1);
	}
	if (!lo || !lo->topics || !lo->parts || !lo->names) {
		if (lo)
			lo_free(lo);
		api_fail(req, "out of memory for the ListOffsets request");
		return 0;
	}
	lo->req = req;
	lo->version = v;
	lo->topic_count = (uint32_t)topics;
	lo->part_count = (uint32_t)parts;
	size_t at = 0;
	uint32_t k = 0;
	wire_read_array_len(r, 2 + 4); /* topics, counted above */
	for (int32_t t = 0; t < topics; t++) {
		struct lo_topic *topic = &lo->topics[t];
		struct wire_str name = wire_read_string(r);
		memcpy(lo->names + at, name.ptr, name.len);
		topic->name = lo->names + at;
		topic->len = (uint16_t)name.len;
		at += name.len;
		int32_t n = wire_read_array_len(r, part_min);
		topic->first = k;
		topic->count = (uint32_t)n;
		for (int32_t i = 0; i < n; i++, k++) {
			struct lo_part *p = &lo->parts[k];
			p->lo = lo;
			p->partition = wire_read_i32(r);
			p->leader_epoch = v >= 4 ? wire_read_i32(r) : -1;
			p->q.timestamp = wire_read_i64(r);
		}
	}
	ASSERT(wire_reader_ok(r) && k == parts); /* the scan checked every length */

	lo->pending = 1; /* held while issuing, so no lookup answers before all started */
	for (uint32_t t = 0; t < lo->topic_count; t++)
		for (uint32_t i = 0; i < lo->topics[t].count; i++)
			lo_start(lo, &lo->parts[lo->topics[t].first + i], &lo->topics[t]);
	if (lo->pending > 1) {
		req->ctx = lo;
		req->abandon = lo_abandon;
	}
	lo_one_done(lo);
	return 0;
}
