/*
 * net/api.c: request dispatch by API key (the table below: key -> handler, whether it
 * answers versions it does not accept) and the response helpers every handler uses
 * (contract in net/api.h). Handlers live in net/api_<name>.c.
 */
#include "net/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/shard.h"
#include "core/logger.h"
#include "net/kafka.h"
#include "net/server.h"

struct api_handler {
	api_handler_fn handle;	  /* NULL: advertised, not answered yet */
	bool answers_unsupported; /* called for versions outside the accepted range too */
};

/* By API key. An advertised key with no entry closes the connection (counted as
 * unimplemented) until its handler exists. */
static const struct api_handler api_handlers[SERVER_API_KEYS] = {
    [KAFKA_API_METADATA] = {api_metadata_handle, false},
    [KAFKA_API_API_VERSIONS] = {api_versions_handle, true},
    [KAFKA_API_PRODUCE] = {api_produce_handle, false},
    [KAFKA_API_INIT_PRODUCER_ID] = {api_init_producer_id_handle, false},
    [KAFKA_API_FETCH] = {api_fetch_handle, false},
    [KAFKA_API_LIST_OFFSETS] = {api_list_offsets_handle, false},
    [KAFKA_API_CREATE_TOPICS] = {api_create_topics_handle, false},
    [KAFKA_API_DELETE_TOPICS] = {api_delete_topics_handle, false},
    [KAFKA_API_DESCRIBE_CONFIGS] = {api_describe_configs_handle, false},
    [KAFKA_API_CREATE_PARTITIONS] = {api_create_partitions_handle, false},
    [KAFKA_API_FIND_COORDINATOR] = {api_find_coordinator_handle, false},
    [KAFKA_API_JOIN_GROUP] = {api_join_group_handle, false},
    [KAFKA_API_SYNC_GROUP] = {api_sync_group_handle, false},
    [KAFKA_API_HEARTBEAT] = {api_heartbeat_handle, false},
    [KAFKA_API_LEAVE_GROUP] = {api_leave_group_handle, false},
    [KAFKA_API_OFFSET_COMMIT] = {api_offset_commit_handle, false},
    [KAFKA_API_OFFSET_FETCH] = {api_offset_fetch_handle, false},
    [KAFKA_API_DESCRIBE_GROUPS] = {api_describe_groups_handle, false},
    [KAFKA_API_LIST_GROUPS] = {api_list_groups_handle, false},
    [KAFKA_API_DELETE_GROUPS] = {api_delete_groups_handle, false},
};

/* How api_repeated_names reads the items while sorting their indexes. */
struct api_names {
	const uint8_t *items; /* the caller's array */
	size_t stride;	      /* bytes per item */
	size_t name_off;      /* offset of the const char * name */
	size_t len_off;	      /* offset of the uint16_t length */
};

static void api_name_at(const struct api_names *n, uint32_t i, const char **name, uint16_t *len)
{
	const uint8_t *item = n->items + (size_t)i * n->stride;
	memcpy(name, item + n->name_off, sizeof(*name));
	memcpy(len, item + n->len_off, sizeof(*len));
}

/* Orders indexes by name (length first, then bytes), then by position in the request. */
static int api_name_cmp(const void *a, const void *b, void *ctx)
{
	const struct api_names *n = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	const char *xn, *yn;
	uint16_t xl, yl;
	api_name_at(n, x, &xn, &xl);
	api_name_at(n, y, &yn, &yl);
	if (xl != yl)
		return xl < yl ? -1 : 1;
	int c = memcmp(xn, yn, xl);
	if (c != 0)
		return c;
	return x < y ? -1 : x > y;
}

int api_repeated_names(const void *items, uint32_t count, size_t stride, size_t name_off,
		       size_t len_off, uint32_t *first)
{
	for (uint32_t i = 0; i < count; i++)
		first[i] = API_NAME_UNIQUE;
	if (count < 2)
		return 0;
	uint32_t *order = malloc((size_t)count * sizeof(*order));
	if (!order)
		return -ENOMEM;
	struct api_names n = {items, stride, name_off, len_off};
	for (uint32_t i = 0; i < count; i++)
		order[i] = i;
	qsort_r(order, count, sizeof(*order), api_name_cmp, &n);
	for (uint32_t i = 0; i < count;) {
		uint32_t j = i + 1;
		while (j < count) {
			const char *a, *b;
			uint16_t al, bl;
			api_name_at(&n, order[i], &a, &al);
			api_name_at(&n, order[j], &b, &bl);
			if (al != bl || memcmp(a, b, al) != 0)
				break;
			j++;
		}
		for (uint32_t k = i; j - i > 1 && k < j; k++)
			first[order[k]] = order[i]; /* sorted by position within a name */
		i = j;
	}
	free(order);
	return 0;
}

bool api_implemented(int16_t api_key)
{
	return api_key >= 0 && api_key < SERVER_API_KEYS && api_handlers[api_key].handle != NULL;
}

/* ---- forwarding (api_forward) ---- */

/*
 * One forwarded request. Allocated by the client's shard (the origin), handed to the
 * coordinator's shard with the SHARD_OP_API_FORWARD message (ownership travels with
 * it), run there as REQ, and handed back with the reply, which carries the whole
 * response frame in ANSWER (its correlation id is the client's: the origin sends it
 * as it is). Freed by the origin.
 */
struct api_forward {
	struct shard_call call;	    /* the origin's call record */
	struct api_request *origin; /* the client's request; NULL once abandoned */
	struct server *origin_server;
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	bool client_id_null;
	uint16_t client_id_len;
	char peer[sizeof(((struct conn *)0)->peer)];
	uint32_t body_len;
	uint8_t *body; /* the request body (client_id follows it in the same block) */
	/* the coordinator's side */
	struct api_request req; /* the request as the handler sees it */
	uint32_t from;		/* the origin shard */
	struct ring_msg msg;	/* the request message, for shard_reply */
	uint8_t *answer;	/* the response frame, malloc'd; the origin's connection frees it */
	uint32_t answer_len;
	int status; /* 0, or -errno: the origin closes the connection */
	struct api_forward *prev, *next; /* the coordinator server's unanswered list */
	bool listed;			 /* on that list */
};

const char *api_request_peer(const struct api_request *req)
{
	return req->forwarded ? req->fwd->peer : req->conn->peer;
}

/* The coordinator's side answers: back to the origin. */
static void api_forward_answer(struct api_request *req, uint8_t *frame, uint32_t len, int status)
{
	struct api_forward *fwd = req->fwd;
	struct server *s = req->server;
	if (fwd->listed) {
		if (fwd->prev)
			fwd->prev->next = fwd->next;
		else
			s->forwarded_head = fwd->next;
		if (fwd->next)
			fwd->next->prev = fwd->prev;
		fwd->listed = false;
	}
	fwd->answer = frame;
	fwd->answer_len = len;
	fwd->status = status;
	req->ctx = NULL;
	req->abandon = NULL;
	if (shard_reply(req->server->shard, fwd->from, &fwd->msg, status, fwd, 0) < 0)
		LOG_ERROR("net: the answer of a forwarded %s could not be sent back to shard %u "
			  "(mesh full); the client's request times out",
			  kafka_api_name(fwd->api_key), fwd->from);
}

static void api_forward_free(struct api_forward *fwd)
{
	free(fwd->answer);
	free(fwd->body);
	free(fwd);
}

/* The origin's side: the reply arrived. */
static void api_forward_replied(struct shard_call *call, const struct ring_msg *reply)
{
	struct api_forward *fwd = call->ctx;
	struct api_request *req = fwd->origin;
	if (!req) {
		api_forward_free(fwd); /* the server stopped meanwhile */
		return;
	}
	req->ctx = NULL;
	req->abandon = NULL;
	if (reply->status < 0 || !fwd->answer) {
		api_forward_free(fwd);
		api_fail(req, "the forwarded request failed on its coordinator");
		return;
	}
	struct conn_response resp = {.buf = fwd->answer, .len = fwd->answer_len};
	fwd->answer = NULL; /* the connection frees it */
	api_forward_free(fwd);
	conn_respond(req->conn, req->slot, &resp);
}

static void api_forward_abandon(struct api_request *req)
{
	struct api_forward *fwd = req->ctx;
	fwd->origin = NULL; /* freed when the reply comes */
}

int api_forward(struct api_request *req, uint32_t to)
{
	if (req->forwarded)
		return -ELOOP;
	struct shard *shard = req->server->shard;
	if (to >= shard->set->count || to == shard->id)
		return -EINVAL;
	struct api_forward *fwd = calloc(1, sizeof(*fwd));
	if (!fwd)
		return -ENOMEM;
	size_t body_len = (size_t)(req->body_all.end - req->body_all.pos);
	fwd->body = malloc(body_len + req->client_id.len + 1);
	if (!fwd->body) {
		free(fwd);
		return -ENOMEM;
	}
	if (body_len)
		memcpy(fwd->body, req->body_all.pos, body_len);
	if (req->client_id.len)
		memcpy(fwd->body + body_len, req->client_id.ptr, req->client_id.len);
	fwd->body_len = (uint32_t)body_len;
	fwd->client_id_null = req->client_id.ptr == NULL;
	fwd->client_id_len = (uint16_t)req->client_id.len;
	fwd->origin = req;
	fwd->origin_server = req->server;
	fwd->api_key = req->api_key;
	fwd->api_version = req->api_version;
	fwd->correlation_id = req->correlation_id;
	snprintf(fwd->peer, sizeof(fwd->peer), "%s", req->conn->peer);
	fwd->call.done = api_forward_replied;
	fwd->call.ctx = fwd;
	int ret = shard_call(shard, to, SHARD_OP_API_FORWARD, fwd, 0, &fwd->call);
	if (ret < 0) {
		api_forward_free(fwd);
		return ret;
	}
	req->server->stats.forwarded_requests++;
	req->ctx = fwd;
	req->abandon = api_forward_abandon;
	return 0;
}

/* The coordinator's side: run the request with the handler of its key. */
static void api_forward_on_op(void *ctx, struct shard *shard, uint32_t from,
			      const struct ring_msg *request)
{
	struct server *s = ctx;
	struct api_forward *fwd = request->payload;
	(void)shard;
	fwd->from = from;
	fwd->msg = *request;
	struct api_request *req = &fwd->req;
	memset(req, 0, sizeof(*req));
	req->server = s;
	req->api_key = fwd->api_key;
	req->api_version = fwd->api_version;
	req->correlation_id = fwd->correlation_id;
	req->client_id = (struct wire_str){
	    fwd->client_id_null ? NULL : (const char *)fwd->body + fwd->body_len,
	    fwd->client_id_len};
	wire_reader_init(&req->body, fwd->body, fwd->body_len);
	req->body_all = req->body;
	req->forwarded = true;
	req->fwd = fwd;
	s->stats.served_forwarded++;
	fwd->prev = NULL;
	fwd->next = s->forwarded_head;
	if (fwd->next)
		fwd->next->prev = fwd;
	s->forwarded_head = fwd;
	fwd->listed = true;
	const struct api_handler *handler =
	    fwd->api_key >= 0 && fwd->api_key < SERVER_API_KEYS ? &api_handlers[fwd->api_key]
								  : NULL;
	int ret = handler && handler->handle ? handler->handle(req) : -ENOSYS;
	if (ret < 0) {
		s->stats.bad_requests++;
		LOG_DEBUG("net: a %s v%d request forwarded from shard %u cannot be decoded (%s)",
			  kafka_api_name(fwd->api_key), fwd->api_version, from, strerror(-ret));
		api_forward_answer(req, NULL, 0, ret);
	}
}

void api_forward_abandon_all(struct server *server)
{
	while (server->forwarded_head) {
		struct api_request *req = &server->forwarded_head->req;
		if (req->abandon)
			req->abandon(req);
		api_forward_answer(req, NULL, 0, -ESHUTDOWN); /* unlists it */
	}
}

void api_forward_shard_init(struct server *server)
{
	shard_on_op(server->shard, SHARD_OP_API_FORWARD, api_forward_on_op, server);
}

int api_dispatch(struct conn *c, uint32_t slot, const uint8_t *msg, uint32_t len)
{
	struct server *s = c->server;
	struct api_request *req = &c->reqs[slot];
	memset(req, 0, sizeof(*req));
	req->conn = c;
	req->server = s;
	req->slot = slot;

	struct wire_reader r;
	wire_reader_init(&r, msg, len);
	struct wire_request_header h;
	if (wire_read_request_header(&r, &h) < 0) {
		s->stats.bad_frames++;
		server_log_bad_frame(s, c, "request header cut short");
		return -EBADMSG;
	}
	req->api_key = h.api_key;
	req->api_version = h.api_version;
	req->correlation_id = h.correlation_id;
	req->client_id = h.client_id;
	req->body = r;
	req->body_all = r;

	const struct kafka_api_range *range = kafka_api_range_find(h.api_key);
	if (!range) {
		s->stats.unknown_api_keys++;
		LOG_DEBUG("net: %s sent API key %d (%s), which sluice does not answer: closing",
			  c->peer, h.api_key, kafka_api_name(h.api_key));
		return -ENOPROTOOPT;
	}
	ASSERT(h.api_key >= 0 && h.api_key < SERVER_API_KEYS);
	s->stats.requests++;
	s->stats.requests_by_api[h.api_key]++;
	const struct api_handler *handler = &api_handlers[h.api_key];
	if (!kafka_api_version_supported(h.api_key, h.api_version)) {
		s->stats.unsupported_versions++;
		if (!handler->handle || !handler->answers_unsupported) {
			LOG_DEBUG("net: %s sent %s v%d; accepted versions are %d to %d: closing",
				  c->peer, kafka_api_name(h.api_key), h.api_version,
				  range->min_version, range->max_version);
			return -EPROTONOSUPPORT;
		}
	}
	if (!handler->handle) {
		s->stats.unimplemented++;
		LOG_DEBUG("net: %s sent %s v%d, which has no handler yet: closing", c->peer,
			  kafka_api_name(h.api_key), h.api_version);
		return -ENOSYS;
	}
	int ret = handler->handle(req);
	if (ret < 0) {
		ASSERT(conn_slot_waiting(c, slot)); /* a failing handler must not answer */
		s->stats.bad_requests++;
		LOG_DEBUG("net: %s sent a %s v%d request that cannot be decoded (%s): closing",
			  c->peer, kafka_api_name(h.api_key), h.api_version, strerror(-ret));
		return ret;
	}
	if (conn_slot_waiting(c, slot)) {
		/* Deferred: the frame's bytes are gone once we return. */
		req->deferred = true;
		req->client_id = (struct wire_str){NULL, 0};
		wire_reader_init(&req->body, NULL, 0);
		wire_reader_init(&req->body_all, NULL, 0);
	}
	return 0;
}

int api_response_begin(struct api_request *req, size_t body_bytes, struct wire_writer *w)
{
	size_t cap = WIRE_SIZE_PREFIX_BYTES + WIRE_RESPONSE_HEADER_BYTES + body_bytes;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	wire_writer_init(w, buf, cap);
	size_t frame_at = wire_write_response_begin(w, req->correlation_id);
	ASSERT(frame_at == 0 && wire_writer_ok(w));
	return 0;
}

void api_respond_ext(struct api_request *req, struct wire_writer *w, const struct iovec *ext,
		     uint32_t ext_count, conn_release_fn release, void *release_ctx)
{
	struct conn *c = req->conn;
	size_t ext_bytes = 0;
	for (uint32_t i = 0; i < ext_count; i++)
		ext_bytes += ext[i].iov_len;
	if (wire_write_response_end(w, 0, ext_bytes) < 0) {
		/* The handler's size bound was wrong: a bug, but not one worth the shard. */
		LOG_ERROR("net: %s v%d response overflowed its %zu-byte buffer; closing the "
			  "connection from %s",
			  kafka_api_name(req->api_key), req->api_version, w->cap, c->peer);
		free(w->buf);
		if (release)
			release(release_ctx);
		api_fail(req, "response overflow");
		return;
	}
	if (req->forwarded) {
		ASSERT(ext_count == 0 && !release); /* forwarded answers carry no slices */
		api_forward_answer(req, w->buf, (uint32_t)w->len, 0);
		return;
	}
	struct conn_response resp = {
	    .buf = w->buf,
	    .len = (uint32_t)w->len,
	    .ext = ext,
	    .ext_count = ext_count,
	    .release = release,
	    .release_ctx = release_ctx,
	};
	req->ctx = NULL;
	req->abandon = NULL;
	conn_respond(c, req->slot, &resp);
}

void api_respond(struct api_request *req, struct wire_writer *w)
{
	api_respond_ext(req, w, NULL, 0, NULL, NULL);
}

void api_respond_none(struct api_request *req)
{
	ASSERT(!req->forwarded);
	req->ctx = NULL;
	req->abandon = NULL;
	conn_respond_none(req->conn, req->slot);
}

void api_fail(struct api_request *req, const char *why)
{
	struct conn *c = req->conn;
	req->server->stats.bad_requests++;
	if (req->forwarded) {
		LOG_DEBUG("net: forwarded %s v%d from %s failed (%s)",
			  kafka_api_name(req->api_key), req->api_version, api_request_peer(req),
			  why);
		api_forward_answer(req, NULL, 0, -EPROTO);
		return;
	}
	LOG_DEBUG("net: %s v%d from %s failed (%s): closing", kafka_api_name(req->api_key),
		  req->api_version, c->peer, why);
	req->ctx = NULL;
	req->abandon = NULL;
	/* The slot is retired without bytes; the connection will not send anything more. */
	conn_close(c, why);
	conn_respond_none(c, req->slot);
}
