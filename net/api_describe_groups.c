/*
 * net/api_describe_groups.c: the DescribeGroups handler (API key 15), versions 0-3: the
 * state, protocol and members of each asked-for group that this shard coordinates, from
 * core/groups (answered at once). A group another shard coordinates is answered
 * NOT_COORDINATOR (16) and not forwarded: a request may name groups of several
 * coordinators, and clients (AdminClient, kafka-consumer-groups) send each group to
 * the coordinator FindCoordinator names. A group that does not exist is answered as
 * Kafka does: no error, state "Dead", empty protocol type and protocol, no members.
 *
 * As Kafka 2.3's GroupMetadata.summary, the protocol and each member's metadata and
 * assignment are filled only in the Stable state (empty otherwise); member id, client
 * id and client host always. Groups are answered in request order, a repeated one each
 * time it appears (Kafka answers a list too).
 *
 * Versions: v1 adds throttle_time_ms; v2 changes only throttling; v3 adds
 * include_authorized_operations and each group's authorized_operations. sluice has no
 * authorizer, so everything is allowed: when asked, the bitmask Kafka answers without
 * an authorizer (KafkaApis.authorizedOperations: every operation the resource type
 * supports), for a group READ (3), DELETE (6) and DESCRIBE (8), a bit 1 << code each;
 * when not asked, INT32_MIN ("not requested", the schema's default).
 *
 * Per-group errors: 14 while this shard's coordinator loads, 15 when it is not available
 * (or the offsets topic does not exist yet), 16 for a group of another shard; with an
 * error every string but the group id is empty and there are no members (Kafka's
 * GroupCoordinator.EmptyGroup).
 *
 * Request (DescribeGroupsRequest.json, v0-3; v4's group_instance_id is not accepted):
 *
 *   field                        type      versions  meaning
 *  +----------------------------+---------+---------+----------------------------------+
 *  | groups                     | [string]| 0+      | the group ids                    |
 *  | include_authorized_operations | bool | 3+      | see above                        |
 *  +----------------------------+---------+---------+----------------------------------+
 *
 * Response (DescribeGroupsResponse.json):
 *
 *   field                        type      versions  value
 *  +----------------------------+---------+---------+----------------------------------+
 *  | throttle_time_ms           | int32   | 1+      | 0                                |
 *  | groups                     | array   | 0+      | per group, in request order:     |
 *  |   error_code               | int16   |         |   0, 14, 15, 16                  |
 *  |   group_id                 | string  |         |                                  |
 *  |   group_state              | string  |         |   "Empty", "Stable", ..., "Dead" |
 *  |   protocol_type            | string  |         |   e.g. "consumer", or ""         |
 *  |   protocol_data            | string  |         |   chosen protocol (Stable), or ""|
 *  |   members                  | array   |         |   per member:                    |
 *  |     member_id              | string  |         |                                  |
 *  |     client_id              | string  |         |                                  |
 *  |     client_host            | string  |         |     "/address"                   |
 *  |     member_metadata        | bytes   |         |     Stable only, else empty      |
 *  |     member_assignment      | bytes   |         |     Stable only, else empty      |
 *  |   authorized_operations    | int32   | 3+      |   see above                      |
 *  +----------------------------+---------+---------+----------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/groups.h"
#include "core/logger.h"
#include "core/shard.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* Kafka's AclOperation codes (org.apache.kafka.common.acl.AclOperation). */
#define DG_ACL_READ	8   /* 1 << 3 */
#define DG_ACL_DELETE	64  /* 1 << 6 */
#define DG_ACL_DESCRIBE 256 /* 1 << 8 */
/* What a group allows without an authorizer, and "not requested". */
#define DG_AUTHORIZED_ALL	(DG_ACL_READ | DG_ACL_DELETE | DG_ACL_DESCRIBE)
#define DG_AUTHORIZED_NOT_ASKED INT32_MIN

/* Bytes of a group entry besides its strings and members; of a member besides its
 * strings and bytes. */
#define DG_GROUP_BYTES	(2 + 2 + 2 + 2 + 2 + 4 + 4)
#define DG_MEMBER_BYTES (2 + 2 + 2 + 4 + 4)

static struct groups_bytes dg_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void dg_write_string(struct wire_writer *w, struct groups_bytes b)
{
	wire_write_string(w, (const char *)b.ptr, b.len);
}

/* True when every string of VIEW fits Kafka's int16 length (core/groups bounds them). */
static bool dg_view_fits(const struct groups_view *view)
{
	if (view->protocol_type.len > INT16_MAX || view->protocol.len > INT16_MAX)
		return false;
	for (uint32_t i = 0; i < view->member_count; i++) {
		const struct groups_member_view *m = &view->members[i];
		if (m->member_id.len > INT16_MAX || m->client_id.len > INT16_MAX ||
		    m->client_host.len > INT16_MAX || m->metadata.len > INT32_MAX ||
		    m->assignment.len > INT32_MAX)
			return false;
	}
	return true;
}

/* The error to answer for GROUP_ID, or 0 with *VIEW filled from this shard's groups. */
static int16_t dg_describe(struct api_request *req, struct coord *c, struct wire_str group_id,
			   struct groups_view *view)
{
	if (!c)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	int owner = coord_owner(c, dg_bytes(group_id));
	if (owner < 0)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if ((uint32_t)owner != req->server->shard->id)
		return KERR_NOT_COORDINATOR;
	struct groups *gs = coord_groups(c);
	if (!gs)
		return coord_load_failed(c) ? KERR_COORDINATOR_NOT_AVAILABLE
					    : KERR_COORDINATOR_LOAD_IN_PROGRESS;
	*view = (struct groups_view){0};
	groups_describe(gs, dg_bytes(group_id), view); /* false: Dead, no members */
	if (!dg_view_fits(view)) {
		LOG_ERROR("net: DescribeGroups of '%.*s': an id longer than Kafka allows",
			  (int)group_id.len, group_id.ptr);
		return KERR_UNKNOWN_SERVER_ERROR;
	}
	return KERR_NONE;
}

/* Bytes of one group's entry: ERROR alone, or VIEW. */
static size_t dg_group_bytes(struct wire_str group_id, int16_t error,
			     const struct groups_view *view)
{
	size_t bytes = DG_GROUP_BYTES + group_id.len;
	if (error != KERR_NONE)
		return bytes;
	bool stable = view->state == GROUPS_STATE_STABLE;
	bytes += strlen(groups_state_name(view->state)) + view->protocol_type.len +
		 (stable ? view->protocol.len : 0);
	for (uint32_t i = 0; i < view->member_count; i++) {
		const struct groups_member_view *m = &view->members[i];
		bytes += DG_MEMBER_BYTES + m->member_id.len + m->client_id.len +
			 m->client_host.len + (stable ? m->metadata.len + m->assignment.len : 0);
	}
	return bytes;
}

static void dg_write_group(struct wire_writer *w, int16_t version, bool include_operations,
			   struct wire_str group_id, int16_t error, const struct groups_view *view)
{
	static const struct groups_bytes none = {NULL, 0};
	wire_write_i16(w, error);
	wire_write_string(w, group_id.ptr, group_id.len);
	if (error != KERR_NONE) {
		/* Kafka's error answer (GroupCoordinator.EmptyGroup): every string empty. */
		wire_write_string(w, "", 0); /* group_state */
		wire_write_string(w, "", 0); /* protocol_type */
		wire_write_string(w, "", 0); /* protocol_data */
		wire_write_array_len(w, 0);
	} else {
		bool stable = view->state == GROUPS_STATE_STABLE;
		const char *state = groups_state_name(view->state);
		wire_write_string(w, state, strlen(state));
		dg_write_string(w, view->protocol_type);
		dg_write_string(w, stable ? view->protocol : none);
		wire_write_array_len(w, (int32_t)view->member_count);
		for (uint32_t i = 0; i < view->member_count; i++) {
			const struct groups_member_view *m = &view->members[i];
			struct groups_bytes metadata = stable ? m->metadata : none;
			struct groups_bytes assignment = stable ? m->assignment : none;
			dg_write_string(w, m->member_id);
			dg_write_string(w, m->client_id);
			dg_write_string(w, m->client_host);
			wire_write_bytes(w, metadata.ptr, metadata.len);
			wire_write_bytes(w, assignment.ptr, assignment.len);
		}
	}
	if (version >= 3)
		wire_write_i32(w, include_operations ? DG_AUTHORIZED_ALL : DG_AUTHORIZED_NOT_ASKED);
}

int api_describe_groups_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	struct wire_reader groups_at = *r;
	int32_t count = wire_read_array_len(r, 2);
	for (int32_t i = 0; i < count; i++)
		wire_read_string(r);
	bool include_operations = v >= 3 ? wire_read_bool(r) : false;
	if (!wire_reader_ok(r))
		return -EBADMSG;

	/* Two passes, as each view lives only until the next call into core/groups: the
	 * first sizes the answer, the second writes it. Nothing changes in between (one
	 * thread, no call that changes the groups). */
	struct coord *c = coord_of(req->server->shard);
	size_t bytes = 4 + 4;
	struct wire_reader g = groups_at;
	wire_read_array_len(&g, 2);
	for (int32_t i = 0; i < count; i++) {
		struct wire_str group_id = wire_read_string(&g);
		struct groups_view view;
		int16_t error = dg_describe(req, c, group_id, &view);
		bytes += dg_group_bytes(group_id, error, &view);
	}
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the DescribeGroups response");
		return 0;
	}
	if (v >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, count);
	g = groups_at;
	wire_read_array_len(&g, 2);
	for (int32_t i = 0; i < count; i++) {
		struct wire_str group_id = wire_read_string(&g);
		struct groups_view view;
		int16_t error = dg_describe(req, c, group_id, &view);
		dg_write_group(&w, v, include_operations, group_id, error, &view);
	}
	api_respond(req, &w);
	return 0;
}
