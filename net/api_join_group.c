/*
 * net/api_join_group.c: the JoinGroup handler (API key 11), versions 1-5. A consumer
 * joins (or rejoins) its group at the group's coordinator; core/groups holds the join
 * until the join phase completes (every known member rejoined, or the rebalance timeout
 * passed), so the answer is deferred: groups_join's callback writes it, on this shard's
 * thread, maybe before groups_join returns. The leader's answer lists every member with
 * its metadata for the chosen protocol; the others get an empty list. A shard that does
 * not coordinate the group forwards the request to the one that does
 * (api_find_coordinator_route).
 *
 * Versions: v1 adds rebalance_timeout_ms (v0 is not accepted, so it is always there);
 * v2 adds throttle_time_ms to the response; v3 changes only throttling; v4 lets the
 * coordinator answer MEMBER_ID_REQUIRED (79) to a new member (core/groups decides; this
 * handler passes whatever it answers); v5 adds group_instance_id (static membership,
 * KIP-345) to the request and to each member of the response: sluice treats a static
 * member like a dynamic one (its instance id is ignored, so a restarted static member
 * rejoins with a new member id and a rebalance, as before KIP-345) and answers every
 * member's group_instance_id null. client_host, kept for DescribeGroups, is "/" and the
 * peer's address, as Kafka's InetAddress.toString() makes it.
 *
 * Errors (core/groups): 23 INCONSISTENT_GROUP_PROTOCOL, 24 INVALID_GROUP_ID, 25
 * UNKNOWN_MEMBER_ID, 26 INVALID_SESSION_TIMEOUT, 79 MEMBER_ID_REQUIRED, 81
 * GROUP_MAX_SIZE_REACHED; here: 14 while the coordinator loads, 15 when it is not
 * available (or out of memory), 16 when a forwarded request finds the coordinator moved.
 * On an error the generation is -1, protocol and leader empty, no members.
 *
 * Request (JoinGroupRequest.json, v1-5; v6+ are flexible and not accepted):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | group_id               | string  | 0+      |                                      |
 *  | session_timeout_ms     | int32   | 0+      | no heartbeat for this long: removed  |
 *  | rebalance_timeout_ms   | int32   | 1+      | longest wait for members to rejoin   |
 *  | member_id              | string  | 0+      | "" for a new member                  |
 *  | group_instance_id      | nstring | 5+      | ignored (see above)                  |
 *  | protocol_type          | string  | 0+      | "consumer" for consumers             |
 *  | protocols              | array   | 0+      | in the member's order of preference: |
 *  |   name                 | string  |         |   assignor, e.g. "range"             |
 *  |   metadata             | bytes   |         |   the member's subscription (opaque) |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (JoinGroupResponse.json):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 2+      | 0                                     |
 *  | error_code             | int16   | 0+      | see above                             |
 *  | generation_id          | int32   | 0+      | the new generation, -1 on error       |
 *  | protocol_name          | string  | 0+      | the chosen protocol, "" on error      |
 *  | leader                 | string  | 0+      | the leader's member id, "" on error   |
 *  | member_id              | string  | 0+      | the member's (assigned) id            |
 *  | members                | array   | 0+      | to the leader only, per member:       |
 *  |   member_id            | string  | 0+      |                                       |
 *  |   group_instance_id    | nstring | 5+      |   null                                |
 *  |   metadata             | bytes   | 0+      |   for the chosen protocol             |
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


/* "/" and the address part of a peer name (net/server: at most 63 characters). */
#define JG_CLIENT_HOST_BYTES 72

/* A join waiting for its group's join phase to complete. */
struct jg_ctx {
	struct api_request *req; /* NULL once abandoned */
	int16_t version;	 /* of the request */
	bool in_call;		 /* groups_join has not returned yet */
	bool answered;		 /* the callback ran during groups_join */
};

static struct groups_bytes jg_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void jg_write_string(struct wire_writer *w, struct groups_bytes b)
{
	wire_write_string(w, (const char *)b.ptr, b.len);
}

/* True when every string of RES fits Kafka's int16 length (core/groups bounds them). */
static bool jg_result_fits(const struct groups_join_result *res)
{
	if (res->protocol.len > INT16_MAX || res->leader_id.len > INT16_MAX ||
	    res->member_id.len > INT16_MAX)
		return false;
	for (uint32_t i = 0; i < res->member_count; i++)
		if (res->members[i].member_id.len > INT16_MAX ||
		    res->members[i].metadata.len > INT32_MAX)
			return false;
	return true;
}

static void jg_answer(struct api_request *req, int16_t version,
		      const struct groups_join_result *res)
{
	if (!jg_result_fits(res)) {
		LOG_ERROR("net: JoinGroup answer for %s has an id longer than Kafka allows",
			  api_request_peer(req));
		api_fail(req, "JoinGroup answer does not fit the wire format");
		return;
	}
	bool ok = res->error == KERR_NONE;
	size_t bytes = 4 + 2 + 4 + 2 + 2 + 2 + res->member_id.len + 4;
	if (ok)
		bytes += res->protocol.len + res->leader_id.len;
	uint32_t members = ok ? res->member_count : 0;
	for (uint32_t i = 0; i < members; i++)
		bytes += 2 + res->members[i].member_id.len + 2 + 4 + res->members[i].metadata.len;
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the JoinGroup response");
		return;
	}
	if (version >= 2)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, res->error);
	wire_write_i32(&w, ok ? res->generation_id : -1);
	jg_write_string(&w, ok ? res->protocol : (struct groups_bytes){NULL, 0});
	jg_write_string(&w, ok ? res->leader_id : (struct groups_bytes){NULL, 0});
	jg_write_string(&w, res->member_id);
	wire_write_array_len(&w, (int32_t)members);
	for (uint32_t i = 0; i < members; i++) {
		jg_write_string(&w, res->members[i].member_id);
		if (version >= 5)
			wire_write_nullable_string(&w, NULL, 0); /* group_instance_id */
		wire_write_bytes(&w, res->members[i].metadata.ptr, res->members[i].metadata.len);
	}
	api_respond(req, &w);
}

/* Answers ERROR without a join result (the join never reached core/groups). */
static void jg_answer_error(struct api_request *req, int16_t error, struct wire_str member_id)
{
	struct groups_join_result res = {
	    .error = error,
	    .generation_id = -1,
	    .member_id = jg_bytes(member_id),
	};
	jg_answer(req, req->api_version, &res);
}

static void jg_done(void *arg, const struct groups_join_result *res)
{
	struct jg_ctx *ctx = arg;
	if (ctx->req)
		jg_answer(ctx->req, ctx->version, res);
	if (ctx->in_call) {
		ctx->answered = true; /* the handler frees it once groups_join returns */
		return;
	}
	free(ctx);
}

static void jg_abandon(struct api_request *req)
{
	struct jg_ctx *ctx = req->ctx;
	ctx->req = NULL; /* freed when core/groups answers the join (at the latest when it
			  * is destroyed) */
}

/* "/" and the address part of PEER ("address:port"; an IPv6 address has colons of its
 * own, so the port is what follows the last one) into HOST (JG_CLIENT_HOST_BYTES). */
static struct groups_bytes jg_client_host(const char *peer, char *host)
{
	const char *colon = strrchr(peer, ':');
	size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
	if (len > JG_CLIENT_HOST_BYTES - 1)
		len = JG_CLIENT_HOST_BYTES - 1;
	host[0] = '/';
	memcpy(host + 1, peer, len);
	return (struct groups_bytes){(const uint8_t *)host, (uint32_t)(len + 1)};
}

int api_join_group_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	struct wire_str group_id = wire_read_string(r);
	int32_t session_timeout_ms = wire_read_i32(r);
	int32_t rebalance_timeout_ms = wire_read_i32(r); /* v1+, the lowest accepted */
	struct wire_str member_id = wire_read_string(r);
	struct wire_str instance_id = {NULL, 0};
	if (v >= 5)
		instance_id = wire_read_nullable_string(r);
	struct wire_str protocol_type = wire_read_string(r);
	int32_t protocol_count = wire_read_array_len(r, 2 + 4);
	struct wire_reader protocols_at = *r;
	for (int32_t i = 0; i < protocol_count; i++) {
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
		jg_answer_error(req, error, member_id);
		return 0;
	}
	if (instance_id.ptr)
		LOG_DEBUG("net: JoinGroup from %s with group.instance.id '%.*s': joined as a "
			  "dynamic member (sluice has no static membership)",
			  api_request_peer(req), (int)instance_id.len, instance_id.ptr);

	struct groups_protocol *protocols =
	    calloc(protocol_count ? (size_t)protocol_count : 1, sizeof(*protocols));
	struct jg_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!protocols || !ctx) {
		free(protocols);
		free(ctx);
		api_fail(req, "out of memory for the JoinGroup request");
		return 0;
	}
	for (int32_t i = 0; i < protocol_count; i++) {
		struct wire_str name = wire_read_string(&protocols_at);
		struct wire_bytes metadata = wire_read_bytes(&protocols_at);
		protocols[i].name = jg_bytes(name);
		protocols[i].metadata = (struct groups_bytes){metadata.ptr, (uint32_t)metadata.len};
	}
	char host[JG_CLIENT_HOST_BYTES];
	struct groups_join_request join = {
	    .group_id = jg_bytes(group_id),
	    .member_id = jg_bytes(member_id),
	    .client_id = jg_bytes(req->client_id),
	    .client_host = jg_client_host(api_request_peer(req), host),
	    .protocol_type = jg_bytes(protocol_type),
	    .session_timeout_ms = session_timeout_ms,
	    .rebalance_timeout_ms = rebalance_timeout_ms,
	    .protocols = protocols,
	    .protocol_count = (uint32_t)protocol_count,
	};
	ctx->req = req;
	ctx->version = v;
	ctx->in_call = true;
	int ret = groups_join(gs, &join, coord_now_ms(), jg_done, ctx);
	ctx->in_call = false;
	free(protocols); /* core/groups copied what it keeps */
	if (ret < 0) {	 /* -ENOMEM: jg_done will not run */
		free(ctx);
		LOG_WARN("net: JoinGroup from %s: %s; answered COORDINATOR_NOT_AVAILABLE",
			 api_request_peer(req), strerror(-ret));
		jg_answer_error(req, KERR_COORDINATOR_NOT_AVAILABLE, member_id);
		return 0;
	}
	if (ctx->answered) {
		free(ctx);
		return 0;
	}
	req->ctx = ctx;
	req->abandon = jg_abandon;
	return 0;
}
