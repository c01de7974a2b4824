/*
 * net/api_list_groups.c: the ListGroups handler (API key 16), versions 0-2: the groups
 * this shard coordinates (each shard is a broker of its own, and AdminClient and
 * kafka-consumer-groups --list ask every broker Metadata names), from core/groups,
 * groups that only hold committed offsets included (protocol type "" then), as Kafka
 * lists them.
 *
 * Errors: 14 while this shard's coordinator loads its offsets, 15 when it failed to or
 * when the shard has no coordinator; the list is empty then.
 *
 * Request (ListGroupsRequest.json, v0-2): no fields.
 *
 * Response (ListGroupsResponse.json):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 1+      | 0                                     |
 *  | error_code             | int16   | 0+      | 0, 14, 15                             |
 *  | groups                 | array   | 0+      | per group:                            |
 *  |   group_id             | string  |         |                                       |
 *  |   protocol_type        | string  |         |   e.g. "consumer", or ""              |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include "core/coordinator.h"
#include "core/groups.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

static void lsg_write_string(struct wire_writer *w, struct groups_bytes b)
{
	wire_write_string(w, (const char *)b.ptr, b.len);
}

/* True when VIEW can be listed (core/groups keeps Kafka-sized strings). */
static bool lsg_fits(const struct groups_view *view)
{
	return view->group_id.len <= INT16_MAX && view->protocol_type.len <= INT16_MAX;
}

int api_list_groups_handle(struct api_request *req)
{
	int16_t error = KERR_NONE;
	struct coord *c = coord_of(req->server->shard);
	struct groups *gs = c ? coord_groups(c) : NULL;
	if (!c || (!gs && coord_load_failed(c)))
		error = KERR_COORDINATOR_NOT_AVAILABLE;
	else if (!gs)
		error = KERR_COORDINATOR_LOAD_IN_PROGRESS;

	/* Two passes (a view lives until the next call into core/groups): size, write. */
	uint32_t count = gs ? groups_count(gs) : 0, listed = 0;
	size_t bytes = 4 + 2 + 4;
	for (uint32_t i = 0; i < count; i++) {
		struct groups_view view;
		groups_at(gs, i, &view);
		if (lsg_fits(&view)) {
			bytes += 2 + view.group_id.len + 2 + view.protocol_type.len;
			listed++;
		}
	}
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the ListGroups response");
		return 0;
	}
	if (req->api_version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, error);
	wire_write_array_len(&w, (int32_t)listed);
	for (uint32_t i = 0; i < count; i++) {
		struct groups_view view;
		groups_at(gs, i, &view);
		if (lsg_fits(&view)) {
			lsg_write_string(&w, view.group_id);
			lsg_write_string(&w, view.protocol_type);
		}
	}
	api_respond(req, &w);
	return 0;
}
