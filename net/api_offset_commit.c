/*
 * net/api_offset_commit.c: the OffsetCommit handler (API key 8), versions 2-7. A
 * consumer stores the next offset to read of each of its partitions (with a metadata
 * string) at its group's coordinator; core/coordinator writes them to the shard log
 * and the answer goes once they are durable (deferred: coord_commit's callback). A
 * shard that does not coordinate the group forwards the request to the one that does
 * (api_find_coordinator_route).
 *
 * The checks follow Kafka 2.3 (KafkaApis.handleOffsetCommitRequest, then
 * GroupCoordinator.handleCommitOffsets and GroupMetadataManager.storeOffsets), each
 * answered per partition: a topic or partition the topic table does not have gets
 * UNKNOWN_TOPIC_OR_PARTITION (3); the others get the group's verdict from
 * groups_commit_check (generation -1 with an empty member id, from consumers that use
 * assign() and admin tools, is accepted while the group has no members; else 22, 25,
 * 27, or 24 for an invalid group id); of the partitions that pass, one whose metadata is
 * longer than GROUPS_OFFSET_METADATA_MAX gets OFFSET_METADATA_TOO_LARGE (12) and the rest
 * are committed in one coord_commit. Its failure is answered on each of them:
 * COORDINATOR_NOT_AVAILABLE (15) for what may pass (the log refusing for now, memory,
 * stopping), NOT_COORDINATOR (16) when this shard no longer coordinates the group,
 * INVALID_COMMIT_OFFSET_SIZE (28) for a commit too large for the log, else
 * UNKNOWN_SERVER_ERROR (-1). A null metadata is stored as "" (Kafka's NoMetadata).
 *
 * Versions: v2-4 carry retention_time_ms, ignored (Kafka 2.1+ also keeps offsets for
 * offsets.retention.minutes whatever the client asks); v3 adds throttle_time_ms to the
 * response; v5 drops retention_time_ms; v6 adds committed_leader_epoch (stored and
 * answered by OffsetFetch v5; -1 before v6); v7 adds group_instance_id (static
 * membership), read and ignored: sluice treats every member as dynamic.
 *
 * Errors for the whole request (every partition gets it): 14 while the coordinator
 * loads, 15 when it is not available, 16 when a forwarded request finds the coordinator
 * moved.
 *
 * Request (OffsetCommitRequest.json, v2-7; v8+ are flexible and not accepted):
 *
 *   field                      type      versions  meaning
 *  +--------------------------+---------+---------+------------------------------------+
 *  | group_id                 | string  | 0+      |                                    |
 *  | generation_id            | int32   | 1+      | -1 outside group management        |
 *  | member_id                | string  | 1+      | "" outside group management        |
 *  | group_instance_id        | nstring | 7+      | ignored                            |
 *  | retention_time_ms        | int64   | 2-4     | ignored                            |
 *  | topics                   | array   | 0+      | of:                                |
 *  |   name                   | string  |         |                                    |
 *  |   partitions             | array   |         | of:                                |
 *  |     partition_index      | int32   |         |                                    |
 *  |     committed_offset     | int64   |         |   the next offset to consume       |
 *  |     committed_leader_epoch| int32  | 6+      |   stored; -1 before v6             |
 *  |     committed_metadata   | nstring |         |   kept; null stored as ""          |
 *  +--------------------------+---------+---------+------------------------------------+
 *
 * Response (OffsetCommitResponse.json):
 *
 *   field                      type      versions  value
 *  +--------------------------+---------+---------+------------------------------------+
 *  | throttle_time_ms         | int32   | 3+      | 0                                  |
 *  | topics                   | array   | 0+      | per topic, in request order:       |
 *  |   name                   | string  |         |                                    |
 *  |   partitions             | array   |         | per partition, in request order:   |
 *  |     partition_index      | int32   |         |                                    |
 *  |     error_code           | int16   |         |   see above                        |
 *  +--------------------------+---------+---------+------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/groups.h"
#include "core/logger.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"


/* Bytes of a topic entry of the response besides its name, of a partition entry. */
#define OC_TOPIC_BYTES	   (2 + 4)
#define OC_PARTITION_BYTES (4 + 2)

struct oc_topic {
	const char *name; /* in oc_ctx.names */
	uint16_t len;	  /* bytes of name */
	uint32_t first;	  /* first partition in oc_ctx.parts */
	uint32_t count;	  /* its partitions */
};

struct oc_part {
	int32_t partition;	  /* index, as asked */
	int16_t error;		  /* the answer */
	bool committing;	  /* in the coord_commit; error set when it is done */
	int64_t offset;		  /* committed_offset */
	int32_t leader_epoch;	  /* committed_leader_epoch, -1 before v6 */
	struct wire_str metadata; /* a view into the request: valid during the handler */
};

/* One OffsetCommit request, kept while its commit is written. */
struct oc_ctx {
	struct api_request *req; /* to answer; NULL once abandoned */
	int16_t version;	 /* of the request */
	uint32_t topic_count;	 /* entries of topics */
	struct oc_topic *topics; /* in request order */
	uint32_t part_count;	 /* entries of parts */
	struct oc_part *parts;	 /* in request order */
	char *names;		 /* the topic names' bytes */
};

static struct groups_bytes oc_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void oc_free(struct oc_ctx *ctx)
{
	free(ctx->topics);
	free(ctx->parts);
	free(ctx->names);
	free(ctx);
}

/* The per-partition answer to a commit that core/coordinator refused or failed. */
static int16_t oc_commit_error(int status)
{
	switch (status) {
	case 0:
		return KERR_NONE;
	case -EAGAIN:
	case -ENOMEM:
	case -ESHUTDOWN:
		return KERR_COORDINATOR_NOT_AVAILABLE;
	case -ENOENT:
		return KERR_NOT_COORDINATOR;
	case -EMSGSIZE:
		return KERR_INVALID_COMMIT_OFFSET_SIZE;
	default:
		return KERR_UNKNOWN_SERVER_ERROR;
	}
}

/* Answers REQ with CTX's errors and frees CTX. */
static void oc_answer(struct api_request *req, struct oc_ctx *ctx)
{
	size_t bytes = 4 + 4 + (size_t)ctx->part_count * OC_PARTITION_BYTES;
	for (uint32_t t = 0; t < ctx->topic_count; t++)
		bytes += OC_TOPIC_BYTES + ctx->topics[t].len;
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		oc_free(ctx);
		api_fail(req, "out of memory for the OffsetCommit response");
		return;
	}
	if (ctx->version >= 3)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, (int32_t)ctx->topic_count);
	for (uint32_t t = 0; t < ctx->topic_count; t++) {
		const struct oc_topic *topic = &ctx->topics[t];
		wire_write_string(&w, topic->name, topic->len);
		wire_write_array_len(&w, (int32_t)topic->count);
		for (uint32_t i = topic->first; i < topic->first + topic->count; i++) {
			wire_write_i32(&w, ctx->parts[i].partition);
			wire_write_i16(&w, ctx->parts[i].error);
		}
	}
	oc_free(ctx);
	api_respond(req, &w);
}

static void oc_set_committing_errors(struct oc_ctx *ctx, int status)
{
	int16_t error = oc_commit_error(status);
	for (uint32_t i = 0; i < ctx->part_count; i++)
		if (ctx->parts[i].committing)
			ctx->parts[i].error = error;
}

static void oc_committed(void *arg, int status)
{
	struct oc_ctx *ctx = arg;
	if (!ctx->req) {
		oc_free(ctx);
		return;
	}
	if (status < 0)
		LOG_WARN("net: OffsetCommit from %s failed: %s", api_request_peer(ctx->req),
			 strerror(-status));
	oc_set_committing_errors(ctx, status);
	oc_answer(ctx->req, ctx);
}

static void oc_abandon(struct api_request *req)
{
	struct oc_ctx *ctx = req->ctx;
	ctx->req = NULL; /* freed when the commit's answer arrives */
}

/* Commits CTX's partitions that pass the checks (see the top of the file) in GS of
 * coordinator C. Returns true when the answer is deferred to oc_committed. */
static bool oc_commit(struct oc_ctx *ctx, struct coord *c, struct groups *gs,
		      struct wire_str group_id, int32_t generation_id, struct wire_str member_id)
{
	const struct topics *table = ctx->req->server->topics;
	uint32_t known = 0;
	for (uint32_t t = 0; t < ctx->topic_count; t++) {
		const struct oc_topic *topic = &ctx->topics[t];
		const struct topic_view *view =
		    table ? topics_find_len(table, topic->name, topic->len) : NULL;
		for (uint32_t i = topic->first; i < topic->first + topic->count; i++) {
			struct oc_part *p = &ctx->parts[i];
			if (!view || p->partition < 0 ||
			    (uint32_t)p->partition >= view->partition_count) {
				p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			p->committing = true;
			known++;
		}
	}
	if (known == 0)
		return false;

	int64_t now_ms = coord_now_ms();
	int16_t group_error =
	    groups_commit_check(gs, oc_bytes(group_id), generation_id, oc_bytes(member_id), now_ms);
	uint32_t count = 0;
	for (uint32_t i = 0; i < ctx->part_count; i++) {
		struct oc_part *p = &ctx->parts[i];
		if (!p->committing)
			continue;
		if (group_error != KERR_NONE || p->metadata.len > GROUPS_OFFSET_METADATA_MAX) {
			p->error =
			    group_error != KERR_NONE ? group_error : KERR_OFFSET_METADATA_TOO_LARGE;
			p->committing = false;
			continue;
		}
		count++;
	}
	if (count == 0)
		return false;

	struct coord_commit_entry *entries = calloc(count, sizeof(*entries));
	if (!entries) {
		oc_set_committing_errors(ctx, -ENOMEM);
		return false;
	}
	uint32_t k = 0;
	for (uint32_t t = 0; t < ctx->topic_count; t++) {
		const struct oc_topic *topic = &ctx->topics[t];
		for (uint32_t i = topic->first; i < topic->first + topic->count; i++) {
			const struct oc_part *p = &ctx->parts[i];
			if (!p->committing)
				continue;
			entries[k++] = (struct coord_commit_entry){
			    .topic = {(const uint8_t *)topic->name, topic->len},
			    .partition = p->partition,
			    .offset =
				{
				    .offset = p->offset,
				    .leader_epoch = p->leader_epoch,
				    .metadata = oc_bytes(p->metadata),
				    .commit_ms = now_ms,
				},
			};
		}
	}
	int ret = coord_commit(c, oc_bytes(group_id), entries, count, oc_committed, ctx);
	free(entries); /* core/coordinator copied them */
	if (ret < 0) {
		LOG_DEBUG("net: OffsetCommit from %s refused: %s", api_request_peer(ctx->req),
			  strerror(-ret));
		oc_set_committing_errors(ctx, ret);
		return false;
	}
	return true;
}

int api_offset_commit_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	struct wire_str group_id = wire_read_string(r);
	int32_t generation_id = wire_read_i32(r);
	struct wire_str member_id = wire_read_string(r);
	if (v >= 7)
		wire_read_nullable_string(r); /* group_instance_id */
	if (v <= 4)
		wire_read_i64(r); /* retention_time_ms */
	size_t part_min = 4 + 8 + (v >= 6 ? 4 : 0) + 2;
	struct wire_reader topics_at = *r;
	int32_t topics = wire_read_array_len(r, 2 + 4);
	uint64_t parts = 0, name_bytes = 0;
	for (int32_t t = 0; t < topics; t++) {
		name_bytes += wire_read_string(r).len;
		int32_t n = wire_read_array_len(r, part_min);
		for (int32_t i = 0; i < n; i++) {
			wire_skip(r, 4 + 8 + (v >= 6 ? 4 : 0));
			wire_read_nullable_string(r);
		}
		parts += (uint32_t)n;
	}
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct groups *gs;
	int16_t error;
	if (!api_find_coordinator_route(req, group_id, &gs, &error))
		return 0; /* forwarded */

	struct oc_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx) {
		ctx->topics = calloc(topics ? (size_t)topics : 1, sizeof(*ctx->topics));
		ctx->parts = calloc(parts ? parts : 1, sizeof(*ctx->parts));
		ctx->names = malloc(name_bytes ? name_bytes : 1);
	}
	if (!ctx || !ctx->topics || !ctx->parts || !ctx->names) {
		if (ctx)
			oc_free(ctx);
		api_fail(req, "out of memory for the OffsetCommit request");
		return 0;
	}
	ctx->req = req;
	ctx->version = v;
	ctx->topic_count = (uint32_t)topics;
	ctx->part_count = (uint32_t)parts;
	size_t at = 0;
	uint32_t k = 0;
	wire_read_array_len(&topics_at, 2 + 4); /* counted above */
	for (int32_t t = 0; t < topics; t++) {
		struct oc_topic *topic = &ctx->topics[t];
		struct wire_str name = wire_read_string(&topics_at);
		memcpy(ctx->names + at, name.ptr, name.len);
		topic->name = ctx->names + at;
		topic->len = (uint16_t)name.len;
		at += name.len;
		int32_t n = wire_read_array_len(&topics_at, part_min);
		topic->first = k;
		topic->count = (uint32_t)n;
		for (int32_t i = 0; i < n; i++, k++) {
			struct oc_part *p = &ctx->parts[k];
			p->partition = wire_read_i32(&topics_at);
			p->offset = wire_read_i64(&topics_at);
			p->leader_epoch = v >= 6 ? wire_read_i32(&topics_at) : -1;
			p->metadata = wire_read_nullable_string(&topics_at);
			p->error = error;
		}
	}

	if (gs &&
	    oc_commit(ctx, coord_of(req->server->shard), gs, group_id, generation_id, member_id)) {
		req->ctx = ctx;
		req->abandon = oc_abandon;
		return 0;
	}
	oc_answer(req, ctx);
	return 0;
}
