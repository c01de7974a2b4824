/*
 * net/api_create_partitions.c: the CreatePartitions handler (API key 37), versions 0-1.
 * Each topic of the request is checked against this shard's copy of the topic table,
 * then each valid growth is asked of core/topics (shard 0 journals the new partitions,
 * placed as at creation: partition p on shard (hash(topic) + p) % shards; every shard's
 * table has them before the answer comes back), and the request is answered once every
 * growth it asked for was answered. With validate_only the same checks run and nothing
 * changes. It does not place partitions, so a manual assignment is refused; a topic
 * never shrinks. timeout_ms is read and not used (the answer comes when every shard has
 * the partitions).
 *
 * Request (CreatePartitionsRequest.json, apache/kafka clients/src/main/resources/common/
 * message; version 1 is version 0, both non-flexible):
 *
 *   field            type      versions  meaning
 *  +----------------+---------+---------+-------------------------------------------+
 *  | topics         | array   | 0+      | per topic:                                |
 *  |   name         | string  |         |   the topic                               |
 *  |   count        | int32   |         |   the new total partition count           |
 *  |   assignments  | array   |         |   nullable; must be null: per new         |
 *  |     broker_ids | [int32] |         |   partition, its brokers                  |
 *  | timeout_ms     | int32   | 0+      | not used (see above)                      |
 *  | validate_only  | bool    | 0+      | check, change nothing                     |
 *  +----------------+---------+---------+-------------------------------------------+
 *
 * Response (CreatePartitionsResponse.json), after the response header v0; one result
 * per distinct name, in request order:
 *
 *   field            type      versions  value
 *  +----------------+---------+---------+-------------------------------------------+
 *  | throttle_time_ms | int32 | 0+      | 0                                         |
 *  | results        | array   | 0+      | per topic:                                |
 *  |   name         | string  |         |   as sent                                 |
 *  |   error_code   | int16   |         |   below                                   |
 *  |   error_message| nstring |         |   null on success, else why               |
 *  +----------------+---------+---------+-------------------------------------------+
 *
 * Errors, per topic, in this order (the first that applies):
 *   INVALID_REQUEST (42)             the name appears more than once in the request
 *   UNKNOWN_TOPIC_OR_PARTITION (3)   not in this shard's table (or deleted meanwhile)
 *   INVALID_PARTITIONS (37)          count not above the current count (Kafka's two
 *                                    messages: "currently has N ... higher than the
 *                                    requested M", "already has N"), or above
 *                                    LIMITS_META_PARTITIONS_PER_TOPIC_MAX
 *   INVALID_REPLICA_ASSIGNMENT (39)  assignments not null: sluice places partitions
 *   and from core/topics as CreateTopics maps them (7, 41, 44, 56, -1).
 * A request body that cannot be decoded closes the connection (net/api).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/logger.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* Smallest encodings: a topic (empty name, count, null assignments), an assignment
 * (empty broker list). */
#define CP_TOPIC_MIN_BYTES	(2 + 4 + 4)
#define CP_ASSIGNMENT_MIN_BYTES 4

/* Why a topic was refused: each is one error code and one message, formatted with the
 * topic's counts when it is written (no per-topic text is kept). */
enum cp_why {
	CP_OK = 0,
	CP_REPEATED,  /* 42 */
	CP_UNKNOWN,   /* 3 */
	CP_SHRINK,    /* 37: count below the current one */
	CP_SAME,      /* 37: count equal to the current one */
	CP_TOO_MANY,  /* 37: above the per-topic maximum */
	CP_ASSIGNED,  /* 39 */
	CP_PENDING,   /* 7 */
	CP_STOPPING,  /* 41 */
	CP_LIMIT,     /* 44 */
	CP_NO_MEMORY, /* -1 */
	CP_STORAGE,   /* 56 */
	CP_NO_TABLE,  /* -1 */
	CP_INTERNAL,  /* 44: __consumer_offsets (groups are placed by its partition count) */
};

struct cp_pending;

/* One topic of the request. */
struct cp_topic {
	const char *name;	    /* the name's bytes, NUL-terminated, in names */
	uint16_t len;		    /* bytes of name as sent */
	uint8_t why;		    /* enum cp_why; CP_OK while valid */
	bool answer;		    /* false for a repeat of an earlier name */
	int32_t count;		    /* the total asked for */
	uint32_t current;	    /* the topic's partition count when checked */
	struct cp_pending *pending; /* the request it belongs to */
};

/* A request, from its decoding to its answer. */
struct cp_pending {
	struct api_request *req; /* the request to answer */
	uint32_t count;		 /* entries of topics */
	struct cp_topic *topics; /* in request order */
	char *names;		 /* every name with a NUL */
	bool validate_only;	 /* change nothing */
	uint32_t next;		 /* first topic not yet asked of core/topics */
	uint32_t waiting;	 /* growths asked and not answered yet */
};

static void cp_pending_free(struct cp_pending *p)
{
	free(p->topics);
	free(p->names);
	free(p);
}

static void cp_abandon(struct api_request *req)
{
	cp_pending_free(req->ctx);
}

static int16_t cp_error(const struct cp_topic *t)
{
	switch ((enum cp_why)t->why) {
	case CP_OK:
		return KERR_NONE;
	case CP_REPEATED:
		return KERR_INVALID_REQUEST;
	case CP_UNKNOWN:
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	case CP_SHRINK:
	case CP_SAME:
	case CP_TOO_MANY:
		return KERR_INVALID_PARTITIONS;
	case CP_ASSIGNED:
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	case CP_PENDING:
		return KERR_REQUEST_TIMED_OUT;
	case CP_STOPPING:
		return KERR_NOT_CONTROLLER;
	case CP_LIMIT:
	case CP_INTERNAL:
		return KERR_POLICY_VIOLATION;
	case CP_STORAGE:
		return KERR_KAFKA_STORAGE_ERROR;
	case CP_NO_MEMORY:
	case CP_NO_TABLE:
		break;
	}
	return KERR_UNKNOWN_SERVER_ERROR;
}

/* Formats T's error message into BUF (SIZE bytes) and returns its length (snprintf's:
 * the bytes it needs; call with SIZE 0 to measure). */
static int cp_message(const struct cp_topic *t, char *buf, size_t size)
{
	switch ((enum cp_why)t->why) {
	case CP_OK:
		break;
	case CP_REPEATED:
		return snprintf(buf, size, "Duplicate topic in request.");
	case CP_UNKNOWN:
		return snprintf(buf, size, "The topic does not exist.");
	case CP_SHRINK:
		return snprintf(buf, size,
				"Topic currently has %u partitions, which is higher than the "
				"requested %d.",
				t->current, t->count);
	case CP_SAME:
		return snprintf(buf, size, "Topic already has %u partitions.", t->current);
	case CP_TOO_MANY:
		return snprintf(buf, size, "%d partitions is above sluice's limit of %u per topic.",
				t->count, LIMITS_META_PARTITIONS_PER_TOPIC_MAX);
	case CP_ASSIGNED:
		return snprintf(buf, size,
				"sluice places partitions itself (partition p on shard "
				"(hash(topic) + p) %% shards): send null assignments");
	case CP_PENDING:
		return snprintf(buf, size,
				"Too many topic changes are pending on this broker; retry.");
	case CP_STOPPING:
		return snprintf(buf, size, "The broker is stopping.");
	case CP_LIMIT:
		return snprintf(buf, size,
				"sluice's limit on partitions is reached (see the "
				"broker's log).");
	case CP_INTERNAL:
		return snprintf(buf, size,
				"%s cannot grow: each group's coordinator follows from its "
				"partition count.",
				COORD_TOPIC);
	case CP_NO_MEMORY:
		return snprintf(buf, size, "The broker is out of memory.");
	case CP_STORAGE:
		return snprintf(buf, size,
				"The topic metadata could not be written, or a shard could not "
				"take the partitions (see the broker's log).");
	case CP_NO_TABLE:
		return snprintf(buf, size, "This broker hosts no topic table.");
	}
	return 0;
}

/* Checks T's COUNT against VIEW's current partition count. */
static void cp_check_count(struct cp_topic *t, uint32_t current)
{
	t->current = current;
	if (t->count < 0 || (uint32_t)t->count < current)
		t->why = CP_SHRINK;
	else if ((uint32_t)t->count == current)
		t->why = CP_SAME;
	else if ((uint32_t)t->count > LIMITS_META_PARTITIONS_PER_TOPIC_MAX)
		t->why = CP_TOO_MANY;
}

/* The reason for core/topics' STATUS of a growth of T. */
static void cp_status(struct cp_topic *t, int status, const struct topics *table)
{
	const struct topic_view *view;
	switch (status) {
	case 0:
		return;
	case -ENOENT:
		t->why = CP_UNKNOWN;
		return;
	case -EINVAL: /* grown meanwhile to at least the count asked */
		view = table ? topics_find(table, t->name) : NULL;
		if (!view) {
			t->why = CP_UNKNOWN;
			return;
		}
		cp_check_count(t, view->partition_count);
		if (t->why == CP_OK) /* shard 0 saw more partitions than this table shows */
			t->why = CP_SAME;
		return;
	case -EAGAIN:
		t->why = CP_PENDING;
		return;
	case -ESHUTDOWN:
		t->why = CP_STOPPING;
		return;
	case -ENOSPC:
		t->why = CP_LIMIT;
		return;
	case -ENOMEM:
		t->why = CP_NO_MEMORY;
		return;
	default:
		t->why = CP_STORAGE;
	}
}

/* Refuses every topic whose name appears more than once, answering each name once
 * (at its first place). Returns 0 or -ENOMEM. */
static int cp_refuse_repeats(struct cp_topic *topics, uint32_t count)
{
	uint32_t *first = malloc((size_t)(count ? count : 1) * sizeof(*first));
	if (!first ||
	    api_repeated_names(topics, count, sizeof(*topics), offsetof(struct cp_topic, name),
			       offsetof(struct cp_topic, len), first) < 0) {
		free(first);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (first[i] == API_NAME_UNIQUE)
			continue;
		topics[i].why = CP_REPEATED;
		topics[i].answer = first[i] == i;
	}
	free(first);
	return 0;
}

static void cp_answer(struct cp_pending *p)
{
	struct api_request *req = p->req;
	size_t bytes = 4 + 4;
	uint32_t answered = 0, failed = 0;
	const struct cp_topic *first_failed = NULL;
	for (uint32_t i = 0; i < p->count; i++) {
		const struct cp_topic *t = &p->topics[i];
		if (!t->answer)
			continue;
		answered++;
		bytes += 2 + t->len + 2 + 2 + (size_t)cp_message(t, NULL, 0);
		if (t->why != CP_OK && !first_failed)
			first_failed = t;
		failed += t->why != CP_OK;
	}
	if (first_failed) {
		char why[160];
		cp_message(first_failed, why, sizeof(why));
		LOG_INFO("net: CreatePartitions from %s: %u topic(s) not grown (first '%.*s': %s: "
			 "%s)",
			 req->conn->peer, failed, (int)first_failed->len, first_failed->name,
			 kafka_error_name(cp_error(first_failed)), why);
	}
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the CreatePartitions response");
		return;
	}
	wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, (int32_t)answered);
	for (uint32_t i = 0; i < p->count; i++) {
		const struct cp_topic *t = &p->topics[i];
		if (!t->answer)
			continue;
		wire_write_string(&w, t->name, t->len);
		wire_write_i16(&w, cp_error(t));
		if (t->why == CP_OK) {
			wire_write_nullable_string(&w, NULL, 0);
			continue;
		}
		char why[160];
		int len = cp_message(t, why, sizeof(why));
		wire_write_string(&w, why,
				  (size_t)len < sizeof(why) ? (size_t)len : sizeof(why) - 1);
	}
	api_respond(req, &w);
}

static void cp_grown(void *ctx, int status, const struct topic_view *view);

/* Asks core/topics for the growths from P->next on, as CreateTopics asks for creations
 * (net/api_create_topics.c, ct_ask). Answers and frees P once nothing is left to ask
 * or wait for; returns true then. */
static bool cp_ask(struct cp_pending *p)
{
	struct topics *table = p->req->server->topics;
	while (!p->validate_only && p->next < p->count) {
		struct cp_topic *t = &p->topics[p->next];
		if (t->why != CP_OK) {
			p->next++;
			continue;
		}
		int ret = topics_add_partitions(table, t->name, (uint32_t)t->count, cp_grown, t);
		if (ret == -EAGAIN && p->waiting > 0)
			return false;
		p->next++;
		if (ret == 0)
			p->waiting++;
		else
			cp_status(t, ret, table);
	}
	if (p->waiting > 0)
		return false;
	cp_answer(p);
	cp_pending_free(p);
	return true;
}

/* A growth's answer (core/topics, on this shard's thread). */
static void cp_grown(void *ctx, int status, const struct topic_view *view)
{
	struct cp_topic *t = ctx;
	struct cp_pending *p = t->pending;
	cp_status(t, status, p->req->server->topics);
	p->waiting--;
	cp_ask(p);
}

int api_create_partitions_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	int32_t n = wire_read_array_len(r, CP_TOPIC_MIN_BYTES);
	struct wire_reader topics_at = *r;
	size_t name_bytes = 1;
	for (int32_t i = 0; i < n; i++) {
		name_bytes += wire_read_string(r).len + 1;
		wire_skip(r, 4); /* count */
		int32_t assignments = wire_read_nullable_array_len(r, CP_ASSIGNMENT_MIN_BYTES);
		for (int32_t a = 0; a < assignments; a++)
			wire_skip(r, (size_t)wire_read_array_len(r, 4) * 4);
	}
	wire_read_i32(r); /* timeout_ms */
	bool validate_only = wire_read_bool(r);
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct cp_pending *p = calloc(1, sizeof(*p));
	if (p) {
		p->topics = calloc(n ? (size_t)n : 1, sizeof(*p->topics));
		p->names = malloc(name_bytes);
	}
	if (!p || !p->topics || !p->names) {
		if (p)
			cp_pending_free(p);
		api_fail(req, "out of memory for the CreatePartitions request");
		return 0;
	}
	p->req = req;
	p->count = (uint32_t)n;
	p->validate_only = validate_only;
	const struct topics *table = req->server->topics;
	char *at = p->names;
	for (uint32_t i = 0; i < p->count; i++) {
		struct cp_topic *t = &p->topics[i];
		struct wire_str name = wire_read_string(&topics_at);
		t->count = wire_read_i32(&topics_at);
		int32_t assignments =
		    wire_read_nullable_array_len(&topics_at, CP_ASSIGNMENT_MIN_BYTES);
		for (int32_t a = 0; a < assignments; a++)
			wire_skip(&topics_at, (size_t)wire_read_array_len(&topics_at, 4) * 4);
		t->pending = p;
		t->name = at;
		t->len = (uint16_t)name.len;
		if (name.len)
			memcpy(at, name.ptr, name.len);
		at[name.len] = '\0';
		at += name.len + 1;
		t->answer = true;
		const struct topic_view *view =
		    table ? topics_find_len(table, t->name, t->len) : NULL;
		if (!table)
			t->why = CP_NO_TABLE;
		else if (!view)
			t->why = CP_UNKNOWN;
		else if (strcmp(view->name, COORD_TOPIC) == 0)
			t->why = CP_INTERNAL;
		else
			cp_check_count(t, view->partition_count);
		if (t->why == CP_OK && assignments >= 0)
			t->why = CP_ASSIGNED;
	}
	if (cp_refuse_repeats(p->topics, p->count) < 0) {
		cp_pending_free(p);
		api_fail(req, "out of memory for the CreatePartitions request");
		return 0;
	}
	if (!cp_ask(p)) {
		req->ctx = p;
		req->abandon = cp_abandon;
	}
	return 0;
}
