/*
 * net/api_offset_fetch.c: the OffsetFetch handler (API key 9), versions 1-5: a group's
 * committed offsets, from core/groups at the group's coordinator (answered at once:
 * the state is in memory). A shard that does not coordinate the group forwards the
 * request to the one that does (api_find_coordinator_route). A partition with nothing
 * committed answers offset -1, metadata "" and no error, as Kafka does (consumers then
 * apply auto.offset.reset); the topic is not checked against the topic table (Kafka 2.3
 * does not either). topics null (v2+) asks for every committed offset of the group, one
 * entry per topic with its partitions ascending (groups_offsets_each's order).
 *
 * Versions: v1 has no null topics and no top-level error: a group-level error goes on
 * every requested partition; v2 adds the top-level error_code (a group-level error is
 * answered there with no topics, as Kafka's OffsetFetchRequest.getErrorResponse) and
 * null topics; v3 adds throttle_time_ms; v4 changes only throttling; v5 adds each
 * offset's committed_leader_epoch (-1 when none was committed).
 *
 * Group-level errors: 14 while the coordinator loads, 15 when it is not available, 16
 * when a forwarded request finds the coordinator moved.
 *
 * Request (OffsetFetchRequest.json, v1-5; v6+ are flexible and not accepted):
 *
 *   field                      type      versions  meaning
 *  +--------------------------+---------+---------+------------------------------------+
 *  | group_id                 | string  | 0+      |                                    |
 *  | topics                   | array   | 0+      | null (v2+): all committed offsets  |
 *  |   name                   | string  |         |                                    |
 *  |   partition_indexes      | [int32] |         |                                    |
 *  +--------------------------+---------+---------+------------------------------------+
 *
 * Response (OffsetFetchResponse.json):
 *
 *   field                      type      versions  value
 *  +--------------------------+---------+---------+------------------------------------+
 *  | throttle_time_ms         | int32   | 3+      | 0                                  |
 *  | topics                   | array   | 0+      | per topic, in request order:       |
 *  |   name                   | string  |         |                                    |
 *  |   partitions             | array   |         | per partition, in request order:   |
 *  |     partition_index      | int32   |         |                                    |
 *  |     committed_offset     | int64   |         |   -1 when none                     |
 *  |     committed_leader_epoch| int32  | 5+      |   -1 when none                     |
 *  |     metadata             | nstring |         |   "" when none                     |
 *  |     error_code           | int16   |         |   0; v1: the group-level error     |
 *  | error_code               | int16   | 2+      | 0, 14, 15, 16                      |
 *  +--------------------------+---------+---------+------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/groups.h"
#include "net/api.h"
#include "net/kafka.h"


/* Bytes of a topic entry besides its name, of a partition entry besides its metadata
 * (at the highest version). */
#define OF_TOPIC_BYTES	   (2 + 4)
#define OF_PARTITION_BYTES (4 + 8 + 4 + 2 + 2)

static struct groups_bytes of_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void of_write_partition(struct wire_writer *w, int16_t version, int32_t partition,
			       const struct groups_offset *offset, int16_t error)
{
	wire_write_i32(w, partition);
	wire_write_i64(w, offset ? offset->offset : -1);
	if (version >= 5)
		wire_write_i32(w, offset ? offset->leader_epoch : -1);
	if (offset)
		wire_write_string(w, (const char *)offset->metadata.ptr, offset->metadata.len);
	else
		wire_write_string(w, "", 0);
	wire_write_i16(w, error);
}

/* ---- every committed offset (topics null) ---- */

/* A walk over the group's offsets: first to size the answer, then to write it. */
struct of_walk {
	struct wire_writer *w; /* NULL while sizing */
	int16_t version;       /* of the request */
	size_t bytes;	       /* sizing: bytes of the topics array's entries */
	uint32_t topics;       /* topics seen */
	char *topic;	       /* the current topic's name (copied: views die with the
				* next call into core/groups) */
	uint32_t topic_len;    /* its bytes; UINT32_MAX before the first */
	size_t partitions_at;  /* writing: the current topic's partition count */
	uint32_t partitions;   /* its partitions so far */
};

static void of_walk_end_topic(struct of_walk *walk)
{
	if (walk->w && walk->topic_len != UINT32_MAX)
		wire_writer_patch_i32(walk->w, walk->partitions_at, (int32_t)walk->partitions);
}

static void of_walk_one(void *arg, struct groups_bytes topic, int32_t partition,
			const struct groups_offset *offset)
{
	struct of_walk *walk = arg;
	if (topic.len > INT16_MAX || offset->metadata.len > INT16_MAX)
		return; /* cannot be on the wire; core/groups keeps neither (Kafka strings) */
	if (walk->topic_len != topic.len || memcmp(walk->topic, topic.ptr, topic.len) != 0) {
		of_walk_end_topic(walk);
		memcpy(walk->topic, topic.ptr, topic.len);
		walk->topic_len = topic.len;
		walk->topics++;
		walk->partitions = 0;
		if (walk->w) {
			wire_write_string(walk->w, walk->topic, topic.len);
			walk->partitions_at = wire_writer_reserve_i32(walk->w);
		} else {
			walk->bytes += OF_TOPIC_BYTES + topic.len;
		}
	}
	walk->partitions++;
	if (walk->w)
		of_write_partition(walk->w, walk->version, partition, offset, KERR_NONE);
	else
		walk->bytes += OF_PARTITION_BYTES + offset->metadata.len;
}

static void of_answer_all(struct api_request *req, struct groups *gs, struct wire_str group_id)
{
	struct of_walk walk = {.version = req->api_version, .topic_len = UINT32_MAX};
	walk.topic = malloc(INT16_MAX);
	if (!walk.topic) {
		api_fail(req, "out of memory for the OffsetFetch response");
		return;
	}
	groups_offsets_each(gs, of_bytes(group_id), of_walk_one, &walk);
	struct wire_writer w;
	if (api_response_begin(req, 4 + 4 + walk.bytes + 2, &w) < 0) {
		free(walk.topic);
		api_fail(req, "out of memory for the OffsetFetch response");
		return;
	}
	if (req->api_version >= 3)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	size_t topics_at = wire_writer_reserve_i32(&w);
	walk.w = &w;
	walk.topics = 0;
	walk.topic_len = UINT32_MAX;
	groups_offsets_each(gs, of_bytes(group_id), of_walk_one, &walk);
	of_walk_end_topic(&walk);
	wire_writer_patch_i32(&w, topics_at, (int32_t)walk.topics);
	wire_write_i16(&w, KERR_NONE); /* error_code (v2+: topics null is v2+ only) */
	free(walk.topic);
	api_respond(req, &w);
}

/* ---- the requested partitions ---- */

/* Answers the topics at TOPICS_AT (the request's array, decoded once already): each
 * partition's committed offset from GS, or, without GS, the group-level ERROR (v1: on
 * every partition; v2+: at the top, with no topics). */
static void of_answer(struct api_request *req, struct groups *gs, struct wire_str group_id,
		      struct wire_reader topics_at, int16_t error)
{
	const int16_t v = req->api_version;
	bool per_partition = gs || v < 2;
	struct groups_bytes gid = of_bytes(group_id);
	size_t bytes = 4 + 4 + 2;
	if (per_partition) {
		struct wire_reader r = topics_at;
		int32_t topics = wire_read_array_len(&r, 2 + 4);
		for (int32_t t = 0; t < topics; t++) {
			struct wire_str name = wire_read_string(&r);
			int32_t n = wire_read_array_len(&r, 4);
			bytes += OF_TOPIC_BYTES + name.len + (size_t)n * OF_PARTITION_BYTES;
			for (int32_t i = 0; i < n; i++) {
				int32_t partition = wire_read_i32(&r);
				struct groups_offset offset;
				if (gs &&
				    groups_offset_get(gs, gid, of_bytes(name), partition, &offset))
					bytes += offset.metadata.len;
			}
		}
	}
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the OffsetFetch response");
		return;
	}
	if (v >= 3)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	if (!per_partition) {
		wire_write_array_len(&w, 0);
		wire_write_i16(&w, error);
		api_respond(req, &w);
		return;
	}
	struct wire_reader r = topics_at;
	int32_t topics = wire_read_array_len(&r, 2 + 4);
	wire_write_array_len(&w, topics);
	for (int32_t t = 0; t < topics; t++) {
		struct wire_str name = wire_read_string(&r);
		int32_t n = wire_read_array_len(&r, 4);
		wire_write_string(&w, name.ptr, name.len);
		wire_write_array_len(&w, n);
		for (int32_t i = 0; i < n; i++) {
			int32_t partition = wire_read_i32(&r);
			struct groups_offset offset;
			bool found =
			    gs && groups_offset_get(gs, gid, of_bytes(name), partition, &offset);
			of_write_partition(&w, v, partition, found ? &offset : NULL,
					   gs ? KERR_NONE : error);
		}
	}
	if (v >= 2)
		wire_write_i16(&w, KERR_NONE); /* error_code */
	api_respond(req, &w);
}

int api_offset_fetch_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	struct wire_str group_id = wire_read_string(r);
	struct wire_reader topics_at = *r;
	int32_t topics =
	    v >= 2 ? wire_read_nullable_array_len(r, 2 + 4) : wire_read_array_len(r, 2 + 4);
	for (int32_t t = 0; t < topics; t++) {
		wire_read_string(r);
		int32_t n = wire_read_array_len(r, 4);
		wire_skip(r, (size_t)n * 4);
	}
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct groups *gs;
	int16_t error;
	if (!api_find_coordinator_route(req, group_id, &gs, &error))
		return 0;     /* forwarded */
	if (topics < 0 && gs) /* null: every committed offset */
		of_answer_all(req, gs, group_id);
	else
		of_answer(req, gs, group_id, topics_at, error);
	return 0;
}
