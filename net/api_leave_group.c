/*
 * net/api_leave_group.c: the LeaveGroup handler (API key 13), versions 0-2: one member
 * leaves its group (a consumer closing), which core/groups removes at once and
 * rebalances the others without waiting for its session to expire. A shard that does
 * not coordinate the group forwards the request to the one that does
 * (api_find_coordinator_route). v3's batch of members (static membership) is not
 * accepted (DESIGN §4: Kafka 2.3's range).
 *
 * Errors: 25 UNKNOWN_MEMBER_ID for an unknown group or member (core/groups); 14 while
 * the coordinator loads, 15 when it is not available, 16 when a forwarded request finds
 * the coordinator moved.
 *
 * Request (LeaveGroupRequest.json, v0-2; the versions differ only in the response):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | group_id               | string  | 0+      |                                      |
 *  | member_id              | string  | 0-2     | the member leaving                   |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (LeaveGroupResponse.json):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 1+      | 0                                     |
 *  | error_code             | int16   | 0+      | 0, 14, 15, 16, 25                     |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include <errno.h>

#include "core/coordinator.h"
#include "core/groups.h"
#include "net/api.h"
#include "net/kafka.h"


static struct groups_bytes lg_bytes(struct wire_str s)
{
	return (struct groups_bytes){(const uint8_t *)s.ptr, (uint32_t)s.len};
}

static void lg_answer(struct api_request *req, int16_t error)
{
	struct wire_writer w;
	if (api_response_begin(req, 4 + 2, &w) < 0) {
		api_fail(req, "out of memory for the LeaveGroup response");
		return;
	}
	if (req->api_version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, error);
	api_respond(req, &w);
}

int api_leave_group_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	struct wire_str group_id = wire_read_string(r);
	struct wire_str member_id = wire_read_string(r);
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct groups *gs;
	int16_t error;
	if (!api_find_coordinator_route(req, group_id, &gs, &error))
		return 0; /* forwarded */
	if (gs)
		error = groups_leave(gs, lg_bytes(group_id), lg_bytes(member_id), coord_now_ms());
	lg_answer(req, error);
	return 0;
}
