/*
 * net/api_produce.c: the Produce handler (API key 0), versions 3-7 (record batches of
 * message format v2 only, DESIGN §4). It decodes the request, checks every partition's
 * batch as Kafka's broker does (ProduceRequest.validateRecords, LogValidator, 2.3) and
 * hands each good batch to core/producers, which appends it, idempotence checked, on
 * the shard owning the partition (forwarding it over the mesh when that is another
 * shard). The answer leaves once every partition of the request is answered: acks=1
 * once each batch is in its owner's log memory (Kafka's semantics, DESIGN §3), acks=-1
 * once synced; acks=0 is never answered, even on errors (Kafka closes the connection
 * instead when an acks=0 batch fails; sluice follows DESIGN §4 and stays silent). It
 * does no authorization, quotas (throttle_time_ms is 0) or LogAppendTime (log_append_
 * time_ms is -1, CreateTime as Kafka reports it), and knows no transactions.
 *
 * Per partition, in this order (Kafka's: the request-level transactional check, the
 * metadata lookup, the acks check, then the batch):
 *   transactional_id not null, or a batch with the transactional bit
 *       every partition: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53), what Kafka answers a
 *       transactional batch without an authorized transactional id (KafkaApis); sluice
 *       has no transaction coordinator, so no transactional id is ever valid here
 *   a topic name Kafka would refuse         INVALID_TOPIC_EXCEPTION (17) (Kafka 2.3 says
 *                                           3 for it; DESIGN and issue 4 ask for 17)
 *   an unknown topic or partition index     UNKNOWN_TOPIC_OR_PARTITION (3); Produce never
 *                                           creates topics (Kafka creates them only on
 *                                           Metadata)
 *   acks not 0, 1 or -1                     INVALID_REQUIRED_ACKS (21), answered
 *   null records, a batch shorter than its header, a lying batchLength or more than one
 *   batch (Kafka v3+ allows exactly one), a bad CRC, a bad record count, a control
 *   batch, an unknown codec (5-7: Kafka 2.3 fails those with an internal error), a
 *   producer id with a negative base sequence
 *                                           CORRUPT_MESSAGE (2; INVALID_RECORD 87 exists
 *                                           only from v8)
 *   magic 0 or 1                            UNSUPPORTED_FOR_MESSAGE_FORMAT (43)
 *   zstd before v7                          UNSUPPORTED_COMPRESSION_TYPE (76), as Kafka
 *   a batch above LIMITS_BATCH_BYTES_MAX or above what the owner's log takes
 *                                           MESSAGE_TOO_LARGE (10)
 *   core/producers' verdicts                OUT_OF_ORDER_SEQUENCE_NUMBER (45),
 *                                           INVALID_PRODUCER_EPOCH (47),
 *                                           UNKNOWN_PRODUCER_ID (59); a duplicate is
 *                                           NONE with the original base offset (Kafka
 *                                           since 1.0)
 *   the partition vanished meanwhile        UNKNOWN_TOPIC_OR_PARTITION (3)
 *   the owner's log failed                  KAFKA_STORAGE_ERROR (56); v3: NOT_LEADER (6),
 *                                           as Kafka downgrades it
 *   the broker is stopping                  NOT_LEADER_OR_FOLLOWER (6): clients retry
 * Backpressure of the shard log or the mesh is never an error: core/producers holds
 * the batch (in order) and the request simply waits. A request that cannot be decoded,
 * or holds more than LIMITS_PRODUCE_ENTRIES_MAX topic and partition entries, closes the
 * connection (counted as bad_requests by net/api).
 *
 * Request (ProduceRequest.json, apache/kafka clients/src/main/resources/common/message):
 *
 *   field                  type       versions  meaning
 *  +----------------------+----------+---------+---------------------------------------+
 *  | transactional_id     | nstring  | 3+      | null (non-transactional producers)    |
 *  | acks                 | int16    | 0+      | 0, 1 or -1                            |
 *  | timeout_ms           | int32    | 0+      | ignored: sluice never times out an    |
 *  |                      |          |         | append (there are no replicas to wait |
 *  |                      |          |         | for)                                  |
 *  | topics               | array    | 0+      | per topic:                            |
 *  |   name               | string   |         |                                       |
 *  |   partitions         | array    |         | per partition:                        |
 *  |     partition_index  | int32    |         |                                       |
 *  |     records          | nbytes   |         | one RecordBatch v2                    |
 *  +----------------------+----------+---------+---------------------------------------+
 *
 * Response (ProduceResponse.json), after the response header v0:
 *
 *   field                  type       versions  value
 *  +----------------------+----------+---------+---------------------------------------+
 *  | responses            | array    | 0+      | per topic, in request order:          |
 *  |   name               | string   |         |                                       |
 *  |   partitions         | array    |         | per partition, in request order:      |
 *  |     partition_index  | int32    |         |                                       |
 *  |     error_code       | int16    |         | see above                             |
 *  |     base_offset      | int64    |         | the batch's first offset, -1 on error |
 *  |     log_append_time_ms| int64   | 2+      | -1                                    |
 *  |     log_start_offset | int64    | 5+      | the partition's, -1 when unknown      |
 *  | throttle_time_ms     | int32    | 1+      | 0                                     |
 *  +----------------------+----------+---------+---------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/broker.h"
#include "core/logger.h"
#include "core/meta.h"
#include "core/producers.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* Bytes of one partition entry of the answer at v5+, and of a topic entry besides its
 * name and partitions (name length, partition count). */
#define PRODUCE_PARTITION_BYTES (4 + 2 + 8 + 8 + 8)
#define PRODUCE_TOPIC_BYTES	(2 + 4)
/* Smallest encodings of a topic (name length, partition count) and of a partition
 * (index, records length) in the request: the decoder's bound on lying counts. */
#define PRODUCE_REQ_TOPIC_BYTES	    (2 + 4)
#define PRODUCE_REQ_PARTITION_BYTES (4 + 4)

_Static_assert(API_PRODUCE_ERROR_SLOTS == KAFKA_ERROR_MAX - KAFKA_ERROR_MIN + 1,
	       "one counter per Kafka error code");

struct produce_ctx;

/* One partition of the request. */
struct produce_part {
	struct producers_op op;	 /* its append (core/producers) */
	struct produce_ctx *ctx; /* the request it belongs to */
	int32_t index;		 /* partition_index as asked */
	int16_t error;		 /* the answer's error code */
	int64_t base_offset;	 /* the answer's base offset */
	int64_t log_start;	 /* the answer's log start offset */
};

/* One topic of the request: its name and its partitions parts[first, first + count). */
struct produce_topic {
	const char *name; /* the request's bytes, then the context's copy */
	uint16_t len;	  /* bytes of name */
	uint32_t first;	  /* its first partition */
	uint32_t count;	  /* its partitions */
};

/* A request from decoding to its answer (one allocation: this, the topics, the
 * partitions and the names). */
struct produce_ctx {
	struct api_request *req;      /* NULL when no answer goes out (acks=0, abandoned) */
	int16_t version;	      /* the request's version */
	uint32_t pending;	      /* partitions core/producers has not answered yet */
	uint32_t topic_count;	      /* entries of topics */
	uint32_t part_count;	      /* entries of parts */
	struct produce_topic *topics; /* in request order */
	struct produce_part *parts;   /* in request order */
	char *names;		      /* the topic names' bytes */
};

static _Thread_local struct api_produce_stats produce_stats;

void api_produce_stats(struct api_produce_stats *out)
{
	*out = produce_stats;
}

/* True when the LEN bytes at NAME are a topic name Kafka accepts. */
static bool produce_name_valid(const char *name, size_t len)
{
	char buf[LIMITS_TOPIC_NAME_BYTES + 1];
	if (len == 0 || len > LIMITS_TOPIC_NAME_BYTES || memchr(name, 0, len))
		return false;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return meta_topic_name_valid(buf);
}

/* True when the first batch of RECORDS says transactional (Kafka's
 * ProduceRequest.hasTransactionalRecords looks at the same bit). */
static bool produce_transactional(struct wire_bytes records)
{
	if (!records.ptr || records.len < BATCH_HEADER_BYTES ||
	    records.ptr[BATCH_OFFSET_MAGIC] != BATCH_MAGIC_V2)
		return false;
	return (records.ptr[BATCH_CRC_START + 1] & BATCH_ATTR_TRANSACTIONAL) !=
	       0; /* attributes' low byte */
}

/* Kafka's verdict on the records of one partition (see the table at the top). */
static int16_t produce_check_records(struct wire_bytes records, int16_t version)
{
	if (!records.ptr)
		return KERR_CORRUPT_MESSAGE;
	if (records.len > BATCH_OFFSET_MAGIC) {
		int8_t magic = (int8_t)records.ptr[BATCH_OFFSET_MAGIC];
		if (magic == 0 || magic == 1)
			return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
	}
	struct batch_header h;
	switch (batch_validate(records.ptr, records.len, &h)) {
	case BATCH_OK:
		break;
	case BATCH_BAD_LENGTH:
		/* a whole batch, only too big for sluice */
		if (records.len >= BATCH_HEADER_BYTES && h.magic == BATCH_MAGIC_V2 &&
		    h.batch_length >= 0 &&
		    (uint64_t)h.batch_length + BATCH_LENGTH_OVERHEAD == records.len)
			return KERR_MESSAGE_TOO_LARGE;
		return KERR_CORRUPT_MESSAGE;
	default:
		return KERR_CORRUPT_MESSAGE;
	}
	if (!batch_compression_known(&h) || batch_is_control(&h) ||
	    (h.producer_id >= 0 && h.base_sequence < 0))
		return KERR_CORRUPT_MESSAGE;
	if (version < 7 && batch_compression(&h) == BATCH_CODEC_ZSTD)
		return KERR_UNSUPPORTED_COMPRESSION_TYPE;
	return KERR_NONE;
}

/* The answer of a partition whose append core/producers answered. */
static void produce_settle(struct produce_part *pp)
{
	const struct producers_op *op = &pp->op;
	pp->base_offset = -1;
	pp->log_start = -1;
	if (op->status == 0) {
		switch (op->verdict) {
		case PRODUCERS_APPEND:
		case PRODUCERS_DUPLICATE:
			pp->error = KERR_NONE;
			pp->base_offset = op->base_offset;
			break;
		case PRODUCERS_OUT_OF_ORDER:
			pp->error = KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
			break;
		case PRODUCERS_STALE_EPOCH:
			pp->error = KERR_INVALID_PRODUCER_EPOCH;
			break;
		case PRODUCERS_UNKNOWN_PRODUCER:
			pp->error = KERR_UNKNOWN_PRODUCER_ID;
			break;
		}
		pp->log_start = op->log_start_offset;
		return;
	}
	switch (op->status) {
	case -ENOENT:
		pp->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		break;
	case -EMSGSIZE:
		pp->error = KERR_MESSAGE_TOO_LARGE;
		break;
	case -EINVAL:
		pp->error = KERR_CORRUPT_MESSAGE;
		break;
	case -ESHUTDOWN:
		pp->error = KERR_NOT_LEADER_OR_FOLLOWER;
		break;
	case -ENOMEM:
		pp->error = KERR_UNKNOWN_SERVER_ERROR;
		break;
	default: /* the owner's log failed */
		pp->error =
		    pp->ctx->version >= 4 ? KERR_KAFKA_STORAGE_ERROR : KERR_NOT_LEADER_OR_FOLLOWER;
		break;
	}
}

static void produce_count(const struct produce_ctx *ctx)
{
	for (uint32_t i = 0; i < ctx->part_count; i++) {
		int16_t e = ctx->parts[i].error;
		if (e >= KAFKA_ERROR_MIN && e <= KAFKA_ERROR_MAX)
			produce_stats.partitions_by_error[e - KAFKA_ERROR_MIN]++;
	}
}

/* Writes and sends the answer. */
static void produce_answer(struct produce_ctx *ctx)
{
	struct api_request *req = ctx->req;
	size_t bytes = 4 + 4;
	for (uint32_t t = 0; t < ctx->topic_count; t++)
		bytes += PRODUCE_TOPIC_BYTES + ctx->topics[t].len +
			 (size_t)ctx->topics[t].count * PRODUCE_PARTITION_BYTES;
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the Produce response");
		return;
	}
	wire_write_array_len(&w, (int32_t)ctx->topic_count);
	for (uint32_t t = 0; t < ctx->topic_count; t++) {
		const struct produce_topic *pt = &ctx->topics[t];
		wire_write_string(&w, pt->name, pt->len);
		wire_write_array_len(&w, (int32_t)pt->count);
		for (uint32_t i = pt->first; i < pt->first + pt->count; i++) {
			const struct produce_part *pp = &ctx->parts[i];
			wire_write_i32(&w, pp->index);
			wire_write_i16(&w, pp->error);
			wire_write_i64(&w, pp->error == KERR_NONE ? pp->base_offset : -1);
			wire_write_i64(&w, -1); /* log_append_time_ms (v2+): CreateTime */
			if (ctx->version >= 5)
				wire_write_i64(&w, pp->log_start);
		}
	}
	wire_write_i32(&w, 0); /* throttle_time_ms */
	api_respond(req, &w);
}

/* The request is complete: answer it (unless nobody waits) and free it. */
static void produce_finish(struct produce_ctx *ctx)
{
	produce_count(ctx);
	if (ctx->req)
		produce_answer(ctx);
	free(ctx);
}

/* core/producers answered one partition later. */
static void produce_done(void *arg, struct producers_op *op)
{
	struct produce_part *pp = arg;
	struct produce_ctx *ctx = pp->ctx;
	produce_settle(pp);
	if (--ctx->pending == 0)
		produce_finish(ctx);
	(void)op;
}

/* The server stops: no answer may go out; the appends still in flight free CTX. */
static void produce_abandon(struct api_request *req)
{
	struct produce_ctx *ctx = req->ctx;
	ctx->req = NULL;
}

int api_produce_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t version = req->api_version;
	struct wire_str txn = wire_read_nullable_string(r);
	int16_t acks = wire_read_i16(r);
	(void)wire_read_i32(r); /* timeout_ms */
	int32_t topic_count = wire_read_array_len(r, PRODUCE_REQ_TOPIC_BYTES);
	struct wire_reader topics_at = *r;

	/* First pass: the shape, the sizes, whether anything is transactional. */
	uint32_t parts = 0;
	bool transactional = txn.ptr != NULL;
	for (int32_t t = 0; t < topic_count && wire_reader_ok(r); t++) {
		wire_read_string(r);
		int32_t n = wire_read_array_len(r, PRODUCE_REQ_PARTITION_BYTES);
		for (int32_t i = 0; i < n && wire_reader_ok(r); i++) {
			wire_read_i32(r);
			transactional |= produce_transactional(wire_read_nullable_bytes(r));
		}
		parts += (uint32_t)n;
	}
	if (!wire_reader_ok(r))
		return -EBADMSG;
	if ((uint64_t)topic_count + parts > LIMITS_PRODUCE_ENTRIES_MAX) {
		LOG_WARN("net: %s sent a Produce request with %d topics and %u partitions, above "
			 "LIMITS_PRODUCE_ENTRIES_MAX (%u); closing the connection",
			 req->conn->peer, topic_count, parts, LIMITS_PRODUCE_ENTRIES_MAX);
		return -E2BIG;
	}

	size_t bytes = sizeof(struct produce_ctx) +
		       (size_t)topic_count * sizeof(struct produce_topic) +
		       (size_t)parts * sizeof(struct produce_part);
	size_t name_bytes = 0;
	struct wire_reader names = topics_at;
	for (int32_t t = 0; t < topic_count; t++) {
		name_bytes += wire_read_string(&names).len;
		int32_t n = wire_read_array_len(&names, PRODUCE_REQ_PARTITION_BYTES);
		for (int32_t i = 0; i < n; i++) {
			wire_read_i32(&names);
			wire_read_nullable_bytes(&names);
		}
	}
	struct produce_ctx *ctx = calloc(1, bytes + name_bytes);
	if (!ctx) {
		api_fail(req, "out of memory for the Produce request");
		return 0;
	}
	ctx->req = req;
	ctx->version = version;
	ctx->topic_count = (uint32_t)topic_count;
	ctx->part_count = parts;
	ctx->topics = (struct produce_topic *)(ctx + 1);
	ctx->parts = (struct produce_part *)(ctx->topics + topic_count);
	ctx->names = (char *)(ctx->parts + parts);
	produce_stats.requests++;
	produce_stats.partitions += parts;
	if (acks == 0)
		produce_stats.acks0_requests++;

	/* Second pass: each partition's verdict, and the appends. */
	struct server *s = req->server;
	struct producers *prod = broker_producers(s->shard);
	bool acks_valid = acks == 0 || acks == 1 || acks == -1;
	uint32_t at = 0;
	size_t name_at = 0;
	r = &topics_at;
	for (int32_t t = 0; t < topic_count; t++) {
		struct produce_topic *pt = &ctx->topics[t];
		struct wire_str name = wire_read_string(r);
		memcpy(ctx->names + name_at, name.ptr, name.len);
		pt->name = ctx->names + name_at;
		pt->len = (uint16_t)name.len;
		pt->first = at;
		name_at += name.len;
		const struct topic_view *view =
		    s->topics ? topics_find_len(s->topics, name.ptr, name.len) : NULL;
		bool name_valid = view || produce_name_valid(name.ptr, name.len);
		int32_t n = wire_read_array_len(r, PRODUCE_REQ_PARTITION_BYTES);
		pt->count = (uint32_t)n;
		for (int32_t i = 0; i < n; i++, at++) {
			struct produce_part *pp = &ctx->parts[at];
			pp->ctx = ctx;
			pp->index = wire_read_i32(r);
			struct wire_bytes records = wire_read_nullable_bytes(r);
			pp->base_offset = -1;
			pp->log_start = -1;
			if (transactional) {
				pp->error = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
				continue;
			}
			if (!view) {
				pp->error = name_valid ? KERR_UNKNOWN_TOPIC_OR_PARTITION
						       : KERR_INVALID_TOPIC_EXCEPTION;
				continue;
			}
			if (pp->index < 0 || (uint32_t)pp->index >= view->partition_count) {
				pp->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if (!acks_valid) {
				pp->error = KERR_INVALID_REQUIRED_ACKS;
				continue;
			}
			pp->error = produce_check_records(records, version);
			if (pp->error != KERR_NONE)
				continue;
			if (!prod) {
				pp->error = KERR_NOT_LEADER_OR_FOLLOWER;
				continue;
			}
			const struct meta_partition *mp = &view->partitions[pp->index];
			pp->op.partition_id = mp->partition_id;
			pp->op.owner = mp->shard;
			pp->op.durable = acks == -1;
			produce_stats.batch_bytes += records.len;
			int ret = producers_produce(prod, &pp->op, records.ptr,
						    (uint32_t)records.len, produce_done, pp);
			if (ret == -EINPROGRESS)
				ctx->pending++;
			else
				produce_settle(pp);
		}
	}

	if (acks == 0) {
		api_respond_none(req);
		ctx->req = NULL;
	}
	if (ctx->pending == 0) {
		produce_finish(ctx);
		return 0;
	}
	produce_stats.deferred++;
	if (ctx->req) {
		req->ctx = ctx;
		req->abandon = produce_abandon;
	}
	return 0;
}
