/*
 * net/api_sync_group.c: the SyncGroup handler (API key 14), versions 0-3. After a join
 * phase the leader sends every member's assignment and each member asks for its own;
 * core/groups holds a member's sync until the leader's arrives (CompletingRebalance),
 * so the answer may be deferred: groups_sync's callback writes it, on this shard's
 * thread, maybe before groups_sync returns. A shard that does not coordinate the group
 * forwards the request to the one that does (api_find_coordinator_route).
 *
 * Versions: v1 adds throttle_time_ms to the response; v2 changes only throttling; v3
 * adds group_instance_id (static membership), read and ignored: sluice treats every
 * member as dynamic (net/api_join_group.c).
 *
 * Errors (core/groups): 22 ILLEGAL_GENERATION, 25 UNKNOWN_MEMBER_ID, 27
 * REBALANCE_IN_PROGRESS (the member must rejoin); here: 14 while the coordinator loads,
 * 15 when it is not available (or out of memory), 16 when a forwarded request finds the
 * coordinator moved. The assignment is empty on an error.
 *
 * Request (SyncGroupRequest.json, v0-3; v4+ are flexible and not accepted):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | group_id               | string  | 0+      |                                      |
 *  | generation_id          | int32   | 0+      | from the member's JoinGroup answer   |
 *  | member_id              | string  | 0+      |                                      |
 *  | group_instance_id      | nstring | 3+      | ignored                              |
 *  | assignments            | array   | 0+      | from the leader (empty from others): |
 *  |   member_id            | string  |         |                                      |
 *  |   assignment           | bytes   |         |   opaque to the broker               |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (SyncGroupResponse.json):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 1+      | 0                                     |
 *  | error_code             | int16   | 0+      | 0, 14, 15, 16, 22, 25, 27             |
 *  | assignment             | bytes   | 0+      | the member's, empty on an error       |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/groups.h"
#include "core/logger.h"
#include "net/api.h"
#include "net/kafka.h"


/* A sync waiting for the leader's. */
struct sg_ctx {
	struct api_request *req; /* NULL once abandoned */
	int16_t version;	 /* of the request */
	bool in_call;		 /* groups_sync has not returned yet */
	bool answered;		 /* the callback ran during groups_sync */
};

static struct groups_bytes sg_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void sg_answer(struct api_request *req, int16_t version, int16_t error,
		      struct groups_bytes assignment)
{
	if (error != KERR_NONE || assignment.len > INT32_MAX)
		assignment = (struct groups_bytes){NULL, 0};
	struct wire_writer w;
	if (api_response_begin(req, 4 + 2 + 4 + (size_t)assignment.len, &w) < 0) {
		api_fail(req, "out of memory for the SyncGroup response");
		return;
	}
	if (version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, error);
	wire_write_bytes(&w, assignment.ptr, assignment.len);
	api_respond(req, &w);
}

static void sg_done(void *arg, const struct groups_sync_result *res)
{
	struct sg_ctx *ctx = arg;
	if (ctx->req)
		sg_answer(ctx->req, ctx->version, res->error, res->assignment);
	if (ctx->in_call) {
		ctx->answered = true; /* the handler frees it once groups_sync returns */
		return;
	}
	free(ctx);
}

static void sg_abandon(struct api_request *req)
{
	struct sg_ctx *ctx = req->ctx;
	ctx->req = NULL; /* freed when core/groups answers the sync (at the latest when it
			  * is destroyed) */
}

int api_sync_group_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	struct wire_str group_id = wire_read_string(r);
	int32_t generation_id = wire_read_i32(r);
	struct wire_str member_id = wire_read_string(r);
	if (v >= 3)
		wire_read_nullable_string(r); /* group_instance_id */
	int32_t assignment_count = wire_read_array_len(r, 2 + 4);
	struct wire_reader assignments_at = *r;
	for (int32_t i = 0; i < assignment_count; i++) {
		wire_read_string(r);
		wire_read_bytes(r);
	}
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct groups *gs;
	int16_t error;
	if (!api_find_coordinator_route(req, group_id, &gs, &error))
		return 0; /* forwarded */
	if (!gs) {
		sg_answer(req, v, error, (struct groups_bytes){NULL, 0});
		return 0;
	}

	struct groups_assignment *assignments =
	    calloc(assignment_count ? (size_t)assignment_count : 1, sizeof(*assignments));
	struct sg_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!assignments || !ctx) {
		free(assignments);
		free(ctx);
		api_fail(req, "out of memory for the SyncGroup request");
		return 0;
	}
	for (int32_t i = 0; i < assignment_count; i++) {
		struct wire_str member = wire_read_string(&assignments_at);
		struct wire_bytes assignment = wire_read_bytes(&assignments_at);
		assignments[i].member_id = sg_bytes(member);
		assignments[i].assignment =
		    (struct groups_bytes){assignment.ptr, (uint32_t)assignment.len};
	}
	struct groups_sync_request sync = {
	    .group_id = sg_bytes(group_id),
	    .generation_id = generation_id,
	    .member_id = sg_bytes(member_id),
	    .assignments = assignments,
	    .assignment_count = (uint32_t)assignment_count,
	};
	ctx->req = req;
	ctx->version = v;
	ctx->in_call = true;
	int ret = groups_sync(gs, &sync, coord_now_ms(), sg_done, ctx);
	ctx->in_call = false;
	free(assignments); /* core/groups copied what it keeps */
	if (ret < 0) {	   /* -ENOMEM: sg_done will not run */
		free(ctx);
		LOG_WARN("net: SyncGroup from %s: %s; answered COORDINATOR_NOT_AVAILABLE",
			 api_request_peer(req), strerror(-ret));
		sg_answer(req, v, KERR_COORDINATOR_NOT_AVAILABLE, (struct groups_bytes){NULL, 0});
		return 0;
	}
	if (ctx->answered) {
		free(ctx);
		return 0;
	}
	req->ctx = ctx;
	req->abandon = sg_abandon;
	return 0;
}
