/*
 * net/api_delete_groups.c: the DeleteGroups handler (API key 42), versions 0-1: forgets
 * groups with no members and their committed offsets (kafka-consumer-groups --delete).
 * Each group this shard coordinates is checked with groups_delete_check (69
 * GROUP_ID_NOT_FOUND when absent, 68 NON_EMPTY_GROUP while it has members), then its
 * deletion is written to the shard log by core/coordinator, which removes it from
 * core/groups once durable; the answer goes when every deletion is done (deferred). A
 * group another shard coordinates is answered NOT_COORDINATOR (16) and not forwarded
 * (AdminClient sends each group to the coordinator FindCoordinator names). Each group
 * is answered once, in the order of its first appearance: Kafka's results are a map
 * keyed by group id, so a repeated name collapses into one result.
 *
 * Errors per group: 14 while this shard's coordinator loads, 15 when it is not
 * available (or the offsets topic does not exist yet, or the deletion could not be
 * written for now), 16 for a group of another shard, -1 when writing it failed.
 *
 * Request (DeleteGroupsRequest.json, v0-1; v2+ are flexible and not accepted):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | groups_names           | [string]| 0+      | the group ids                         |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (DeleteGroupsResponse.json; v1 only changes throttling):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 0+      | 0                                     |
 *  | results                | array   | 0+      | per distinct group:                   |
 *  |   group_id             | string  |         |                                       |
 *  |   error_code           | int16   |         |   0, 14, 15, 16, 68, 69, -1           |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/coordinator.h"
#include "core/groups.h"
#include "core/logger.h"
#include "core/shard.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

struct dlg_request;

/* One group of the request. */
struct dlg_group {
	const char *name;	/* in dlg_request.names */
	uint16_t len;		/* bytes of name */
	bool repeated;		/* a later appearance of a name: not answered */
	int16_t error;		/* the answer */
	struct dlg_request *dr; /* the request it belongs to */
};

/* One DeleteGroups request while its deletions are written. */
struct dlg_request {
	struct api_request *req;  /* to answer */
	uint32_t count;		  /* entries of groups */
	struct dlg_group *groups; /* in request order */
	char *names;		  /* the names' bytes */
	uint32_t pending;	  /* deletions not done yet (+1 while issuing) */
	bool abandoned;		  /* the server stopped: free when the last one returns */
};

static struct groups_bytes dlg_bytes(const struct dlg_group *g)
{
	return (struct groups_bytes){(const uint8_t *)g->name, g->len};
}

static void dlg_free(struct dlg_request *dr)
{
	free(dr->groups);
	free(dr->names);
	free(dr);
}

/* The answer for a deletion core/coordinator refused or failed with STATUS. */
static int16_t dlg_delete_error(int status)
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
	default:
		return KERR_UNKNOWN_SERVER_ERROR;
	}
}

static void dlg_answer(struct dlg_request *dr)
{
	struct api_request *req = dr->req;
	size_t bytes = 4 + 4;
	for (uint32_t i = 0; i < dr->count; i++)
		bytes += 2 + dr->groups[i].len + 2;
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		dlg_free(dr);
		api_fail(req, "out of memory for the DeleteGroups response");
		return;
	}
	wire_write_i32(&w, 0); /* throttle_time_ms */
	size_t results_at = wire_writer_reserve_i32(&w);
	int32_t results = 0;
	for (uint32_t i = 0; i < dr->count; i++) {
		const struct dlg_group *g = &dr->groups[i];
		if (g->repeated)
			continue;
		wire_write_string(&w, g->name, g->len);
		wire_write_i16(&w, g->error);
		results++;
	}
	wire_writer_patch_i32(&w, results_at, results);
	dlg_free(dr);
	api_respond(req, &w);
}

/* One deletion fewer to wait for; the last one answers (or frees an abandoned request). */
static void dlg_one_done(struct dlg_request *dr)
{
	ASSERT(dr->pending > 0);
	if (--dr->pending > 0)
		return;
	if (dr->abandoned) {
		dlg_free(dr);
		return;
	}
	dlg_answer(dr);
}

static void dlg_deleted(void *arg, int status)
{
	struct dlg_group *g = arg;
	g->error = dlg_delete_error(status);
	if (status < 0 && !g->dr->abandoned)
		LOG_WARN("net: DeleteGroups of '%.*s' from %s failed: %s", (int)g->len, g->name,
			 api_request_peer(g->dr->req), strerror(-status));
	dlg_one_done(g->dr);
}

static void dlg_abandon(struct api_request *req)
{
	struct dlg_request *dr = req->ctx;
	dr->abandoned = true; /* the last deletion to return frees it */
}

/* Checks G and starts its deletion (dr->pending counts it) or sets its error. */
static void dlg_start(struct dlg_request *dr, struct coord *c, struct dlg_group *g)
{
	g->error = KERR_COORDINATOR_NOT_AVAILABLE;
	if (!c)
		return;
	int owner = coord_owner(c, dlg_bytes(g));
	if (owner < 0)
		return;
	if ((uint32_t)owner != dr->req->server->shard->id) {
		g->error = KERR_NOT_COORDINATOR;
		return;
	}
	struct groups *gs = coord_groups(c);
	if (!gs) {
		if (!coord_load_failed(c))
			g->error = KERR_COORDINATOR_LOAD_IN_PROGRESS;
		return;
	}
	g->error = groups_delete_check(gs, dlg_bytes(g));
	if (g->error != KERR_NONE)
		return;
	int ret = coord_delete_group(c, dlg_bytes(g), dlg_deleted, g);
	if (ret < 0) {
		g->error = dlg_delete_error(ret);
		return;
	}
	dr->pending++;
}

int api_delete_groups_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	struct wire_reader scan = *r;
	int32_t count = wire_read_array_len(&scan, 2);
	uint64_t name_bytes = 0;
	for (int32_t i = 0; i < count; i++)
		name_bytes += wire_read_string(&scan).len;
	if (!wire_reader_ok(&scan))
		return -EBADMSG;

	struct dlg_request *dr = calloc(1, sizeof(*dr));
	uint32_t *first = NULL;
	if (dr) {
		dr->groups = calloc(count ? (size_t)count : 1, sizeof(*dr->groups));
		dr->names = malloc(name_bytes ? name_bytes : 1);
		first = malloc((count ? (size_t)count : 1) * sizeof(*first));
	}
	if (!dr || !dr->groups || !dr->names || !first) {
		if (dr)
			dlg_free(dr);
		free(first);
		api_fail(req, "out of memory for the DeleteGroups request");
		return 0;
	}
	dr->req = req;
	dr->count = (uint32_t)count;
	size_t at = 0;
	wire_read_array_len(r, 2); /* counted above */
	for (int32_t i = 0; i < count; i++) {
		struct dlg_group *g = &dr->groups[i];
		struct wire_str name = wire_read_string(r);
		memcpy(dr->names + at, name.ptr, name.len);
		g->name = dr->names + at;
		g->len = (uint16_t)name.len;
		g->dr = dr;
		at += name.len;
	}
	ASSERT(wire_reader_ok(r)); /* the scan checked every length */
	if (api_repeated_names(dr->groups, dr->count, sizeof(*dr->groups),
			       offsetof(struct dlg_group, name), offsetof(struct dlg_group, len),
			       first) < 0) {
		dlg_free(dr);
		free(first);
		api_fail(req, "out of memory for the DeleteGroups request");
		return 0;
	}
	for (uint32_t i = 0; i < dr->count; i++)
		dr->groups[i].repeated = first[i] != API_NAME_UNIQUE && first[i] != i;
	free(first);

	struct coord *c = coord_of(req->server->shard);
	dr->pending = 1; /* held while issuing, so no deletion answers before all started */
	for (uint32_t i = 0; i < dr->count; i++)
		if (!dr->groups[i].repeated)
			dlg_start(dr, c, &dr->groups[i]);
	if (dr->pending > 1) {
		req->ctx = dr;
		req->abandon = dlg_abandon;
	}
	dlg_one_done(dr);
	return 0;
}
