/*
 * net/api_delete_topics.c: the DeleteTopics handler (API key 20), versions 0-3. Each
 * distinct name of the request that this shard's copy of the topic table holds is asked
 * of core/topics for deletion (shard 0 journals it and retires the topic's partition ids
 * for good; every shard's table has dropped the topic before the answer comes back),
 * and the request is answered once every deletion it asked for was answered. A name the
 * table does not hold, valid or not, is answered UNKNOWN_TOPIC_OR_PARTITION (3), as
 * Kafka does. It frees no partition data itself (the shard logs skip the retired ids
 * and retention reclaims their space) and does not use timeout_ms: the answer comes when
 * every shard has dropped the topic.
 *
 * Request (DeleteTopicsRequest.json, apache/kafka clients/src/main/resources/common/
 * message; versions 0-3 are the same and non-flexible):
 *
 *   field          type      versions  meaning
 *  +--------------+---------+---------+---------------------------------------------+
 *  | topic_names  | [string]| 0-5     | the topics to delete; a repeat counts once  |
 *  | timeout_ms   | int32   | 0+      | not used (see above)                        |
 *  +--------------+---------+---------+---------------------------------------------+
 *
 * Response (DeleteTopicsResponse.json), after the response header v0; one result per
 * distinct name, in request order:
 *
 *   field          type      versions  value
 *  +--------------+---------+---------+---------------------------------------------+
 *  | throttle_time_ms | int32 | 1+     | 0                                           |
 *  | responses    | array   | 0+      | per topic:                                  |
 *  |   name       | string  |         |   as sent                                   |
 *  |   error_code | int16   |         |   0; 3 not in the table (or deleted         |
 *  |              |         |         |   meanwhile); 7 this shard has              |
 *  |              |         |         |   LIMITS_TOPICS_PENDING_MAX changes pending |
 *  |              |         |         |   from other requests; 41 the broker is     |
 *  |              |         |         |   stopping; 56 the journal could not be     |
 *  |              |         |         |   written; -1 otherwise                     |
 *  +--------------+---------+---------+---------------------------------------------+
 *
 * A request body that cannot be decoded closes the connection (net/api).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/logger.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

struct dt_pending;

/* One name of the request. */
struct dt_topic {
	const char *name;	    /* the name's bytes, NUL-terminated, in names */
	uint16_t len;		    /* bytes of name as sent */
	int16_t error;		    /* the answer */
	bool answer;		    /* false for a repeat of an earlier name */
	bool remove;		    /* in the table: to be asked of core/topics */
	struct dt_pending *pending; /* the request it belongs to */
};

/* A request, from its decoding to its answer. */
struct dt_pending {
	struct api_request *req; /* the request to answer */
	int16_t version;	 /* its version */
	uint32_t count;		 /* entries of topics */
	struct dt_topic *topics; /* in request order */
	char *names;		 /* every name with a NUL */
	uint32_t next;		 /* first topic not yet asked of core/topics */
	uint32_t waiting;	 /* deletions asked and not answered yet */
};

static void dt_pending_free(struct dt_pending *p)
{
	free(p->topics);
	free(p->names);
	free(p);
}

static void dt_abandon(struct api_request *req)
{
	dt_pending_free(req->ctx);
}

/* Keeps only the first of each repeated name (Kafka takes the names as a set). Returns
 * 0 or -ENOMEM. */
static int dt_drop_repeats(struct dt_topic *topics, uint32_t count)
{
	uint32_t *first = malloc((size_t)(count ? count : 1) * sizeof(*first));
	if (!first ||
	    api_repeated_names(topics, count, sizeof(*topics), offsetof(struct dt_topic, name),
			       offsetof(struct dt_topic, len), first) < 0) {
		free(first);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (first[i] != API_NAME_UNIQUE && first[i] != i) {
			topics[i].answer = false;
			topics[i].remove = false;
		}
	}
	free(first);
	return 0;
}

static int16_t dt_error(int status)
{
	switch (status) {
	case 0:
		return KERR_NONE;
	case -ENOENT:
	case -EINVAL:
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	case -EAGAIN:
		return KERR_REQUEST_TIMED_OUT;
	case -ESHUTDOWN:
		return KERR_NOT_CONTROLLER;
	case -ENOMEM:
		return KERR_UNKNOWN_SERVER_ERROR;
	default:
		return KERR_KAFKA_STORAGE_ERROR;
	}
}

static void dt_answer(struct dt_pending *p)
{
	struct api_request *req = p->req;
	size_t bytes = 4 + 4;
	uint32_t answered = 0, failed = 0;
	const struct dt_topic *first_failed = NULL;
	for (uint32_t i = 0; i < p->count; i++) {
		const struct dt_topic *t = &p->topics[i];
		if (!t->answer)
			continue;
		answered++;
		bytes += 2 + t->len + 2;
		if (t->error != KERR_NONE && t->error != KERR_UNKNOWN_TOPIC_OR_PARTITION) {
			if (!first_failed)
				first_failed = t;
			failed++;
		}
	}
	if (first_failed)
		LOG_WARN("net: DeleteTopics from %s: %u topic(s) not deleted (first '%.*s': %s)",
			 req->conn->peer, failed, (int)first_failed->len, first_failed->name,
			 kafka_error_name(first_failed->error));
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the DeleteTopics response");
		return;
	}
	if (p->version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, (int32_t)answered);
	for (uint32_t i = 0; i < p->count; i++) {
		const struct dt_topic *t = &p->topics[i];
		if (!t->answer)
			continue;
		wire_write_string(&w, t->name, t->len);
		wire_write_i16(&w, t->error);
	}
	api_respond(req, &w);
}

static void dt_deleted(void *ctx, int status, const struct topic_view *view);

/* Asks core/topics for the deletions from P->next on, as CreateTopics asks for
 * creations (net/api_create_topics.c, ct_ask): one refused with -EAGAIN is asked again
 * when one of P's own is answered, or answered REQUEST_TIMED_OUT when P has none under
 * way. Answers and frees P once nothing is left to ask or wait for. Returns true then. */
static bool dt_ask(struct dt_pending *p)
{
	struct topics *table = p->req->server->topics;
	while (p->next < p->count) {
		struct dt_topic *t = &p->topics[p->next];
		if (!t->remove) {
			p->next++;
			continue;
		}
		int ret = topics_delete(table, t->name, dt_deleted, t);
		if (ret == -EAGAIN && p->waiting > 0)
			return false;
		p->next++;
		if (ret == 0)
			p->waiting++;
		else
			t->error = dt_error(ret);
	}
	if (p->waiting > 0)
		return false;
	dt_answer(p);
	dt_pending_free(p);
	return true;
}

/* A deletion's answer (core/topics, on this shard's thread). */
static void dt_deleted(void *ctx, int status, const struct topic_view *view)
{
	struct dt_topic *t = ctx;
	struct dt_pending *p = t->pending;
	t->error = dt_error(status);
	p->waiting--;
	dt_ask(p);
}

int api_delete_topics_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	int32_t n = wire_read_array_len(r, 2);
	struct wire_reader names = *r;
	size_t name_bytes = 1;
	for (int32_t i = 0; i < n; i++)
		name_bytes += wire_read_string(r).len + 1;
	wire_read_i32(r); /* timeout_ms */
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct dt_pending *p = calloc(1, sizeof(*p));
	if (p) {
		p->topics = calloc(n ? (size_t)n : 1, sizeof(*p->topics));
		p->names = malloc(name_bytes);
	}
	if (!p || !p->topics || !p->names) {
		if (p)
			dt_pending_free(p);
		api_fail(req, "out of memory for the DeleteTopics request");
		return 0;
	}
	p->req = req;
	p->version = req->api_version;
	p->count = (uint32_t)n;
	const struct topics *table = req->server->topics;
	char *at = p->names;
	for (uint32_t i = 0; i < p->count; i++) {
		struct wire_str name = wire_read_string(&names);
		struct dt_topic *t = &p->topics[i];
		t->pending = p;
		t->name = at;
		t->len = (uint16_t)name.len;
		if (name.len)
			memcpy(at, name.ptr, name.len);
		at[name.len] = '\0';
		at += name.len + 1;
		t->answer = true;
		/* Only a name the table holds can be deleted; the table holds valid names only,
		 * and one with an embedded NUL is not found. */
		t->remove = table && topics_find_len(table, t->name, t->len);
		t->error = t->remove ? KERR_NONE : KERR_UNKNOWN_TOPIC_OR_PARTITION;
		if (t->remove && strcmp(t->name, COORD_TOPIC) == 0) {
			/* The committed offsets of every group live there. */
			t->remove = false;
			t->error = KERR_INVALID_TOPIC_EXCEPTION;
		}
	}
	if (dt_drop_repeats(p->topics, p->count) < 0) {
		dt_pending_free(p);
		api_fail(req, "out of memory for the DeleteTopics request");
		return 0;
	}
	if (!dt_ask(p)) {
		req->ctx = p;
		req->abandon = dt_abandon;
	}
	return 0;
}
