/*
 * net/api_metadata.c: the Metadata handler (API key 3), versions 0-8. Every shard is a
 * broker (node id = shard id, the advertised host, port = base port + shard id, rack
 * null); the controller is shard 0; each partition's leader, only replica and only
 * in-sync replica is its owning shard (DESIGN §4). Topics come from this shard's copy of
 * the topic table (core/topics, through the broker layer). A requested topic that does
 * not exist is created when auto.create.topics.enable is on and (v4+) the request
 * allows it: the handler then defers, asks core/topics (shard 0 decides, every shard's
 * table has the topic before the answer comes back) and answers with the new topic
 * once every creation it asked for was answered. A name Kafka would refuse gets
 * INVALID_TOPIC_EXCEPTION (17); one that is neither there nor created gets
 * UNKNOWN_TOPIC_OR_PARTITION (3), or LEADER_NOT_AVAILABLE (5, which clients retry) when
 * its creation failed for a reason that may pass. It does not create or read partitions
 * (core/broker does) and has no notion of authorization: the authorized-operations
 * fields (v8+) always say INT32_MIN, "not requested / unknown".
 *
 * cluster_id (v2+) is "sluice-" and 16 hex digits of a hash of the data directory's
 * real path (net/server): stable across restarts of one broker, different between
 * brokers on one machine, with nothing to store.
 *
 * Request (MetadataRequest.json, apache/kafka clients/src/main/resources/common/message):
 *
 *   field                     type      versions  meaning
 *  +-------------------------+---------+---------+-------------------------------------+
 *  | topics                  | array   | 0+      | of name (string); v0: empty = all;  |
 *  |                         |         |         | v1+: null (-1) = all, empty = none  |
 *  | allow_auto_topic_creation| bool   | 4+      | absent: true                        |
 *  | include_cluster_authorized_operations | bool | 8-10 | ignored                     |
 *  | include_topic_authorized_operations   | bool | 8+   | ignored                     |
 *  +-------------------------+---------+---------+-------------------------------------+
 *
 * Response (MetadataResponse.json), after the response header v0:
 *
 *   field                     type      versions  value
 *  +-------------------------+---------+---------+-------------------------------------+
 *  | throttle_time_ms        | int32   | 3+      | 0                                   |
 *  | brokers                 | array   | 0+      | one per shard:                      |
 *  |   node_id               | int32   |         |   shard id                          |
 *  |   host                  | string  |         |   advertised host                   |
 *  |   port                  | int32   |         |   base port + shard id              |
 *  |   rack                  | nstring | 1+      |   null                              |
 *  | cluster_id              | nstring | 2+      | "sluice-<hash>"                     |
 *  | controller_id           | int32   | 1+      | 0                                   |
 *  | topics                  | array   | 0+      | per topic:                          |
 *  |   error_code            | int16   |         |   0, 3, 5 or 17                     |
 *  |   name                  | string  |         |                                     |
 *  |   is_internal           | bool    | 1+      |   true for __consumer_offsets only  |
 *  |   partitions            | array   |         |   per partition (none on an error): |
 *  |     error_code          | int16   |         |     0                               |
 *  |     partition_index     | int32   |         |     p                               |
 *  |     leader_id           | int32   |         |     owning shard                    |
 *  |     leader_epoch        | int32   | 7+      |     0                               |
 *  |     replica_nodes       | [int32] |         |     [owning shard]                  |
 *  |     isr_nodes           | [int32] |         |     [owning shard]                  |
 *  |     offline_replicas    | [int32] | 5+      |     []                              |
 *  |   topic_authorized_operations | int32 | 8+  |   INT32_MIN                         |
 *  | cluster_authorized_operations | int32 | 8+  | INT32_MIN                           |
 *  +-------------------------+---------+---------+-------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coordinator.h"
#include "core/logger.h"
#include "core/meta.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* Bytes of one partition entry at the highest version (error, index, leader, epoch,
 * replicas [1], isr [1], offline []). */
#define MD_PARTITION_BYTES (2 + 4 + 4 + 4 + (4 + 4) + (4 + 4) + 4)
/* Bytes of a topic entry besides its name and partitions (error, name length,
 * is_internal, partition count, authorized operations). */
#define MD_TOPIC_BYTES (2 + 2 + 1 + 4 + 4)

struct md_pending;

/* One requested topic. */
struct md_topic {
	const char *name;	       /* the request's bytes, or the pending copy */
	uint16_t len;		       /* bytes of name */
	int16_t error;		       /* the answer when the topic is not in the table */
	bool create;		       /* to be auto-created */
	struct md_pending *pending;    /* when deferred: the request it belongs to */
	const struct topic_view *view; /* while writing: the topic found, or NULL */
};

/* A request waiting for its topics to be created. */
struct md_pending {
	struct api_request *req;	     /* the request to answer */
	int16_t version;		     /* its version */
	uint32_t count;			     /* entries of topics */
	uint32_t waiting;		     /* creations not answered yet */
	struct md_topic *topics;	     /* in request order */
	char *names;			     /* the names' bytes (topics[i].name points here) */
	uint32_t failed;		     /* creations refused or failed */
	int first_error;		     /* the first of their errors (-errno) */
	const struct md_topic *first_failed; /* and its topic */
};

/* True when the LEN bytes at NAME are a topic name Kafka accepts; writes it with a NUL
 * into BUF (LIMITS_TOPIC_NAME_BYTES + 1 bytes) when it is. */
static bool md_name_valid(const char *name, size_t len, char *buf)
{
	if (len == 0 || len > LIMITS_TOPIC_NAME_BYTES || memchr(name, 0, len))
		return false;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return meta_topic_name_valid(buf);
}

static void md_write_topic(struct wire_writer *w, int16_t version, int16_t error, const char *name,
			   size_t len, const struct topic_view *view)
{
	wire_write_i16(w, view ? KERR_NONE : error);
	wire_write_string(w, name, len);
	if (version >= 1)
		wire_write_bool(w, len == sizeof(COORD_TOPIC) - 1 &&
					   memcmp(name, COORD_TOPIC, len) == 0); /* is_internal */
	uint32_t partitions = view ? view->partition_count : 0;
	wire_write_array_len(w, (int32_t)partitions);
	for (uint32_t p = 0; p < partitions; p++) {
		int32_t leader = (int32_t)view->partitions[p].shard;
		wire_write_i16(w, KERR_NONE);
		wire_write_i32(w, (int32_t)p);
		wire_write_i32(w, leader);
		if (version >= 7)
			wire_write_i32(w, 0); /* leader_epoch */
		wire_write_array_len(w, 1);
		wire_write_i32(w, leader); /* replica_nodes */
		wire_write_array_len(w, 1);
		wire_write_i32(w, leader); /* isr_nodes */
		if (version >= 5)
			wire_write_array_len(w, 0); /* offline_replicas */
	}
	if (version >= 8)
		wire_write_i32(w, INT32_MIN); /* topic_authorized_operations */
}

/* Writes and sends the answer: every topic of the table when ALL, else TOPICS[0..COUNT)
 * as the table has them now. */
static void md_answer(struct api_request *req, int16_t version, bool all, struct md_topic *topics,
		      uint32_t count)
{
	const struct server *s = req->server;
	const struct topics *table = s->topics;
	uint32_t shards = s->shard->set->count;
	size_t host_len = strlen(s->host), cluster_len = strlen(s->cluster_id);

	size_t bytes =
	    4 + 4 + (size_t)shards * (4 + 2 + host_len + 4 + 2) + 2 + cluster_len + 4 + 4 + 4;
	uint32_t topic_count = all ? (table ? topics_count(table) : 0) : count;
	for (uint32_t i = 0; i < topic_count; i++) {
		const struct topic_view *view;
		if (all) {
			view = topics_at(table, i);
			bytes += MD_TOPIC_BYTES + strlen(view->name);
		} else {
			view = table ? topics_find_len(table, topics[i].name, topics[i].len) : NULL;
			topics[i].view = view;
			bytes += MD_TOPIC_BYTES + topics[i].len;
		}
		if (view)
			bytes += (size_t)view->partition_count * MD_PARTITION_BYTES;
	}

	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the Metadata response");
		return;
	}
	if (version >= 3)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, (int32_t)shards);
	for (uint32_t b = 0; b < shards; b++) {
		wire_write_i32(&w, (int32_t)b);
		wire_write_string(&w, s->host, host_len);
		wire_write_i32(&w, (int32_t)(s->cfg->port + b));
		if (version >= 1)
			wire_write_nullable_string(&w, NULL, 0); /* rack */
	}
	if (version >= 2)
		wire_write_nullable_string(&w, s->cluster_id, cluster_len);
	if (version >= 1)
		wire_write_i32(&w, 0); /* controller_id: shard 0 */
	wire_write_array_len(&w, (int32_t)topic_count);
	for (uint32_t i = 0; i < topic_count; i++) {
		if (all) {
			const struct topic_view *view = topics_at(table, i);
			md_write_topic(&w, version, KERR_NONE, view->name, strlen(view->name),
				       view);
		} else {
			md_write_topic(&w, version, topics[i].error, topics[i].name, topics[i].len,
				       topics[i].view);
		}
	}
	if (version >= 8)
		wire_write_i32(&w, INT32_MIN); /* cluster_authorized_operations */
	api_respond(req, &w);
}

static void md_pending_free(struct md_pending *p)
{
	free(p->topics);
	free(p->names);
	free(p);
}

static void md_abandon(struct api_request *req)
{
	md_pending_free(req->ctx);
}

/* Records that T's creation failed with STATUS: T is answered 17 for a name core/topics
 * finds invalid, else LEADER_NOT_AVAILABLE, which clients retry. */
static void md_create_failed(struct md_pending *p, struct md_topic *t, int status)
{
	t->error = status == -EINVAL ? KERR_INVALID_TOPIC_EXCEPTION : KERR_LEADER_NOT_AVAILABLE;
	if (p->failed++ == 0) {
		p->first_error = status;
		p->first_failed = t;
	}
}

/* One line per request, however many of its creations failed. */
static void md_log_failures(const struct md_pending *p)
{
	if (p->failed == 0)
		return;
	const struct md_topic *t = p->first_failed;
	LOG_WARN("net: could not auto-create %u topic(s) asked for by %s (first '%.*s': %s); "
		 "answered them with %s",
		 p->failed, p->req->conn->peer, (int)t->len, t->name, strerror(-p->first_error),
		 kafka_error_name(t->error));
}

/* A creation's answer (core/topics, on this shard's thread). */
static void md_created(void *ctx, int status, const struct topic_view *view)
{
	struct md_topic *t = ctx;
	struct md_pending *p = t->pending;
	if (status < 0 && status != -EEXIST) /* -EEXIST: created meanwhile, found below */
		md_create_failed(p, t, status);
	if (--p->waiting > 0)
		return;
	md_log_failures(p);
	md_answer(p->req, p->version, false, p->topics, p->count);
	md_pending_free(p);
}

/* Copies the request's topics into a pending record that takes TOPICS over, and asks
 * for the creations; the request is answered when the last one is (or at once when
 * every one was refused). Returns 0, or -ENOMEM with nothing asked, TOPICS still the
 * caller's and the topics to create marked LEADER_NOT_AVAILABLE (the caller answers). */
static int md_defer(struct api_request *req, struct md_topic *topics, uint32_t count)
{
	struct md_pending *p = calloc(1, sizeof(*p));
	size_t name_bytes = 0;
	for (uint32_t i = 0; i < count; i++)
		name_bytes += topics[i].len;
	char *names = malloc(name_bytes ? name_bytes : 1);
	if (!p || !names) {
		free(p);
		free(names);
		for (uint32_t i = 0; i < count; i++)
			if (topics[i].create)
				topics[i].error = KERR_LEADER_NOT_AVAILABLE;
		return -ENOMEM;
	}
	p->req = req;
	p->version = req->api_version;
	p->count = count;
	p->topics = topics;
	p->names = names;
	size_t at = 0;
	for (uint32_t i = 0; i < count; i++) {
		memcpy(names + at, topics[i].name, topics[i].len);
		topics[i].name = names + at;
		topics[i].pending = p;
		at += topics[i].len;
	}
	const struct config *cfg = req->server->cfg;
	uint32_t partitions = cfg->num_partitions ? cfg->num_partitions : TOPICS_PARTITIONS_DEFAULT;
	for (uint32_t i = 0; i < count; i++) {
		struct md_topic *t = &topics[i];
		if (!t->create)
			continue;
		char name[LIMITS_TOPIC_NAME_BYTES + 1];
		memcpy(name, t->name, t->len);
		name[t->len] = '\0';
		int ret =
		    topics_create(req->server->topics, name, partitions, NULL, 0, md_created, t);
		if (ret == 0) {
			p->waiting++;
			LOG_DEBUG("net: auto-creating topic '%s' for %s", name, req->conn->peer);
			continue;
		}
		md_create_failed(p, t, ret); /* -EAGAIN: too many changes pending */
	}
	if (p->waiting == 0) { /* every creation was refused at once */
		md_log_failures(p);
		md_answer(req, p->version, false, p->topics, p->count);
		md_pending_free(p);
		return 0;
	}
	req->ctx = p;
	req->abandon = md_abandon;
	return 0;
}

int api_metadata_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t version = req->api_version;
	int32_t n = version == 0 ? wire_read_array_len(r, 2) : wire_read_nullable_array_len(r, 2);
	struct wire_reader names = *r;
	for (int32_t i = 0; i < n; i++)
		wire_read_string(r);
	bool allow_auto_create = true;
	if (version >= 4)
		allow_auto_create = wire_read_bool(r);
	if (version >= 8) {
		wire_read_bool(r); /* include_cluster_authorized_operations */
		wire_read_bool(r); /* include_topic_authorized_operations */
	}
	if (!wire_reader_ok(r))
		return -EBADMSG;

	const struct server *s = req->server;
	if (n < 0 || (version == 0 && n == 0)) {
		md_answer(req, version, true, NULL, 0);
		return 0;
	}
	struct md_topic *topics = calloc(n ? (size_t)n : 1, sizeof(*topics));
	if (!topics) {
		api_fail(req, "out of memory for the Metadata request");
		return 0;
	}
	bool auto_create = s->topics && s->cfg->auto_create_topics && allow_auto_create;
	uint32_t creates = 0;
	for (int32_t i = 0; i < n; i++) {
		struct wire_str name = wire_read_string(&names);
		struct md_topic *t = &topics[i];
		t->name = name.ptr;
		t->len = (uint16_t)name.len;
		t->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		if (s->topics && topics_find_len(s->topics, name.ptr, name.len))
			continue;
		char valid[LIMITS_TOPIC_NAME_BYTES + 1];
		if (!md_name_valid(name.ptr, name.len, valid)) {
			t->error = KERR_INVALID_TOPIC_EXCEPTION;
		} else if (auto_create) {
			t->create = true;
			creates++;
		}
	}
	if (creates > 0 && md_defer(req, topics, (uint32_t)n) == 0)
		return 0; /* the pending record owns TOPICS and answers */
	md_answer(req, version, false, topics, (uint32_t)n);
	free(topics);
	return 0;
}
