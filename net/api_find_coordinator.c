/*
 * net/api_find_coordinator.c: the FindCoordinator handler (API key 10), versions 0-2,
 * and the routing every group-scoped handler shares (api_find_coordinator_route). The
 * coordinator of a group is the shard core/coordinator names (creating the internal
 * __consumer_offsets topic on the first request, which may defer the answer); it is
 * answered as the broker Metadata advertises for that shard: node id = shard id, the
 * advertised host, port = base port + shard id (net/api_metadata.c computes them the
 * same way). sluice has no transactions: key type 1 (a transactional id) gets
 * COORDINATOR_NOT_AVAILABLE (15), as a Kafka broker whose transaction coordinator is not
 * up answers, with an error message saying why; any other key type gets INVALID_REQUEST
 * (42), as Kafka refuses a type it does not know. The key is not validated: Kafka 2.3
 * answers a coordinator for an empty group id too (OffsetCommit and OffsetFetch accept
 * one).
 *
 * Errors: no coordinator on this shard (no storage) or coord_find failing: 15. On every
 * error the node is Kafka's "no node" (id -1, host "", port -1).
 *
 * Request (FindCoordinatorRequest.json, v0-2; v3+ are flexible and not accepted):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | key                    | string  | 0+      | the group id (or transactional id)   |
 *  | key_type               | int8    | 1+      | 0 group, 1 transaction; v0: group    |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (FindCoordinatorResponse.json; v2 only changes throttling):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 1+      | 0                                     |
 *  | error_code             | int16   | 0+      | 0, 15 or 42                           |
 *  | error_message          | nstring | 1+      | null, or what went wrong              |
 *  | node_id                | int32   | 0+      | the coordinating shard, -1 on error   |
 *  | host                   | string  | 0+      | the advertised host, "" on error      |
 *  | port                   | int32   | 0+      | base port + shard id, -1 on error     |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/logger.h"
#include "core/shard.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* FindCoordinatorRequest's key types (Kafka's CoordinatorType). */
#define FC_KEY_TYPE_GROUP	0
#define FC_KEY_TYPE_TRANSACTION 1

/* Bytes of the response besides the host and the error message. */
#define FC_RESPONSE_BYTES (4 + 2 + 2 + 4 + 2 + 4)


/* A FindCoordinator waiting for core/coordinator to create its topic. */
struct fc_ctx {
	struct api_request *req; /* NULL once abandoned */
	int16_t version;	 /* of the request */
};

/* Answers REQ: the coordinator SHARD when ERROR is 0, else no node; MESSAGE (may be
 * NULL) goes in error_message (v1+). */
static void fc_answer(struct api_request *req, int16_t version, int16_t error, uint32_t shard,
		      const char *message)
{
	const struct server *s = req->server;
	size_t host_len = error == KERR_NONE ? strlen(s->host) : 0;
	size_t message_len = message ? strlen(message) : 0;
	struct wire_writer w;
	if (api_response_begin(req, FC_RESPONSE_BYTES + host_len + message_len, &w) < 0) {
		api_fail(req, "out of memory for the FindCoordinator response");
		return;
	}
	if (version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, error);
	if (version >= 1)
		wire_write_nullable_string(&w, message, message_len);
	if (error == KERR_NONE) {
		wire_write_i32(&w, (int32_t)shard);
		wire_write_string(&w, s->host, host_len);
		wire_write_i32(&w, (int32_t)(s->cfg->port + shard));
	} else {
		wire_write_i32(&w, -1);
		wire_write_string(&w, "", 0);
		wire_write_i32(&w, -1);
	}
	api_respond(req, &w);
}

/* Answers with coord_find's result SHARD_OR_ERROR. */
static void fc_answer_found(struct api_request *req, int16_t version, int shard_or_error)
{
	if (shard_or_error >= 0) {
		fc_answer(req, version, KERR_NONE, (uint32_t)shard_or_error, NULL);
		return;
	}
	LOG_DEBUG("net: FindCoordinator from %s: no coordinator (%s)", api_request_peer(req),
		  strerror(-shard_or_error));
	fc_answer(req, version, KERR_COORDINATOR_NOT_AVAILABLE, 0,
		  "the group coordinator is not available");
}

static void fc_found(void *arg, int shard_or_error)
{
	struct fc_ctx *ctx = arg;
	if (ctx->req)
		fc_answer_found(ctx->req, ctx->version, shard_or_error);
	free(ctx);
}

static void fc_abandon(struct api_request *req)
{
	struct fc_ctx *ctx = req->ctx;
	ctx->req = NULL; /* freed when core/coordinator's answer (or its failure) arrives */
}

int api_find_coordinator_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	struct wire_str key = wire_read_string(r);
	int8_t key_type = v >= 1 ? wire_read_i8(r) : FC_KEY_TYPE_GROUP;
	if (!wire_reader_ok(r))
		return -EBADMSG;
	if (key_type == FC_KEY_TYPE_TRANSACTION) {
		fc_answer(req, v, KERR_COORDINATOR_NOT_AVAILABLE, 0,
			  "sluice has no transaction coordinator");
		return 0;
	}
	if (key_type != FC_KEY_TYPE_GROUP) {
		fc_answer(req, v, KERR_INVALID_REQUEST, 0, "unknown coordinator key type");
		return 0;
	}
	struct coord *c = coord_of(req->server->shard);
	if (!c) {
		fc_answer(req, v, KERR_COORDINATOR_NOT_AVAILABLE, 0,
			  "this broker coordinates no groups");
		return 0;
	}
	struct fc_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		api_fail(req, "out of memory for the FindCoordinator request");
		return 0;
	}
	ctx->req = req;
	ctx->version = v;
	struct groups_bytes gid = {(const uint8_t *)key.ptr, (uint32_t)key.len};
	int ret = coord_find(c, gid, fc_found, ctx);
	if (ret != -EINPROGRESS) { /* known at once, or failed: fc_found will not run */
		free(ctx);
		fc_answer_found(req, v, ret);
		return 0;
	}
	req->ctx = ctx;
	req->abandon = fc_abandon;
	return 0;
}

/*
 * Routes a group-scoped request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
 * OffsetCommit, OffsetFetch) whose body was decoded whole, for GROUP_ID:
 *  - returns false when REQ was forwarded to the group's coordinator shard: the handler
 *    returns 0 and answers nothing (the coordinator's answer comes back on its own);
 *  - returns true with *ERROR 0 and *OUT the groups state when this shard coordinates
 *    the group;
 *  - returns true with *ERROR a Kafka error code to answer (and *OUT NULL):
 *    COORDINATOR_NOT_AVAILABLE (15) when this shard has no coordinator, the offsets
 *    topic does not exist yet, forwarding failed or loading failed;
 *    COORDINATOR_LOAD_IN_PROGRESS (14) while the coordinator replays its offsets;
 *    NOT_COORDINATOR (16) for a forwarded request reaching a shard that does not own
 *    the group (the placement moved).
 */
bool api_find_coordinator_route(struct api_request *req, struct wire_str group_id,
				struct groups **out, int16_t *error)
{
	*out = NULL;
	*error = KERR_COORDINATOR_NOT_AVAILABLE;
	struct coord *c = coord_of(req->server->shard);
	if (!c)
		return true;
	struct groups_bytes gid = {(const uint8_t *)group_id.ptr, (uint32_t)group_id.len};
	int owner = coord_owner(c, gid);
	if (owner < 0)
		return true; /* -EAGAIN: no offsets topic yet (FindCoordinator creates it) */
	if ((uint32_t)owner != req->server->shard->id) {
		int ret = api_forward(req, (uint32_t)owner);
		if (ret == 0)
			return false;
		if (ret == -ELOOP)
			*error = KERR_NOT_COORDINATOR;
		return true;
	}
	struct groups *gs = coord_groups(c);
	if (!gs) {
		if (!coord_load_failed(c))
			*error = KERR_COORDINATOR_LOAD_IN_PROGRESS;
		return true;
	}
	*out = gs;
	*error = KERR_NONE;
	return true;
}
