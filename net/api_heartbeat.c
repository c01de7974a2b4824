/*
 * net/api_heartbeat.c: the Heartbeat handler (API key 12), versions 0-3. A member of a
 * group tells the group's coordinator it is alive; the answer tells it whether to
 * rejoin (core/groups decides: 0 in Stable, 27 REBALANCE_IN_PROGRESS while the group
 * rebalances, 22 ILLEGAL_GENERATION, 25 UNKNOWN_MEMBER_ID). A shard that does not
 * coordinate the group forwards the request to the one that does
 * (api_find_coordinator_route). group_instance_id (v3, static membership) is read and
 * ignored: sluice treats every member as dynamic.
 *
 * Errors: 14 while the coordinator loads, 15 when it is not available, 16 when a
 * forwarded request finds the coordinator moved.
 *
 * Request (HeartbeatRequest.json, v0-3; v4+ are flexible and not accepted):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | group_id               | string  | 0+      |                                      |
 *  | generation_id          | int32   | 0+      | the member's generation              |
 *  | member_id              | string  | 0+      |                                      |
 *  | group_instance_id      | nstring | 3+      | ignored                              |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (HeartbeatResponse.json):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 1+      | 0                                     |
 *  | error_code             | int16   | 0+      | 0, 14, 15, 16, 22, 25, 27             |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include <errno.h>

#include "core/coordinator.h"
#include "core/groups.h"
#include "net/api.h"
#include "net/kafka.h"


static struct groups_bytes hb_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void hb_answer(struct api_request *req, int16_t error)
{
	struct wire_writer w;
	if (api_response_begin(req, 4 + 2, &w) < 0) {
		api_fail(req, "out of memory for the Heartbeat response");
		return;
	}
	if (req->api_version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, error);
	api_respond(req, &w);
}

int api_heartbeat_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	struct wire_str group_id = wire_read_string(r);
	int32_t generation_id = wire_read_i32(r);
	struct wire_str member_id = wire_read_string(r);
	if (req->api_version >= 3)
		wire_read_nullable_string(r); /* group_instance_id */
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct groups *gs;
	int16_t error;
	if (!api_find_coordinator_route(req, group_id, &gs, &error))
		return 0; /* forwarded */
	if (gs)
		error = groups_heartbeat(gs, hb_bytes(group_id), generation_id, hb_bytes(member_id),
					 coord_now_ms());
	hb_answer(req, error);
	return 0;
}
