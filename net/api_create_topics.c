/*
 * net/api_create_topics.c: the CreateTopics handler (API key 19), versions 0-3. Each
 * topic of the request is checked here against Kafka's rules and this shard's copy of
 * the topic table, then every valid one is asked of core/topics (shard 0 decides and
 * journals it; every shard's table has it before the answer comes back), and the request
 * is answered once every creation it asked for was answered. With validate_only (v1+)
 * the same checks run and nothing is created. It does not place partitions (core/meta
 * does: partition p of topic t on shard (hash(t) + p) % shards), which is why a manual
 * replica assignment is refused, and it keeps one copy of each partition, which is why
 * a replication factor other than 1 is refused. timeout_ms is read and not used: the
 * answer comes when every shard has the topic (a journal write and one round over the
 * mesh), not after a timeout.
 *
 * Request (CreateTopicsRequest.json, apache/kafka clients/src/main/resources/common/
 * message; versions 0-3 are non-flexible):
 *
 *   field                  type     versions  meaning
 *  +----------------------+--------+---------+------------------------------------------+
 *  | topics               | array  | 0+      | per topic:                               |
 *  |   name               | string |         |   the topic                              |
 *  |   num_partitions     | int32  |         |   >= 1, or -1: the broker's num.partitions|
 *  |   replication_factor | int16  |         |   1, or -1: the default (1)              |
 *  |   assignments        | array  |         |   must be empty: sluice places partitions|
 *  |     partition_index  | int32  |         |                                          |
 *  |     broker_ids       | [int32]|         |                                          |
 *  |   configs            | array  |         |   per config:                            |
 *  |     name             | string |         |     a Kafka topic config name            |
 *  |     value            | nstring|         |     not null                             |
 *  | timeout_ms           | int32  | 0+      | not used (see above)                     |
 *  | validate_only        | bool   | 1+      | check, create nothing                    |
 *  +----------------------+--------+---------+------------------------------------------+
 *
 * Response (CreateTopicsResponse.json), after the response header v0; one result per
 * distinct name of the request, in request order:
 *
 *   field                  type     versions  value
 *  +----------------------+--------+---------+------------------------------------------+
 *  | throttle_time_ms     | int32  | 2+      | 0                                        |
 *  | topics               | array  | 0+      | per topic:                               |
 *  |   name               | string |         |   as sent                                |
 *  |   error_code         | int16  |         |   below                                  |
 *  |   error_message      | nstring| 1+      |   null on success, else why              |
 *  +----------------------+--------+---------+------------------------------------------+
 *
 * Errors, per topic, checked in this order (the first that applies):
 *   INVALID_REQUEST (42)            the name appears more than once in the request
 *   INVALID_TOPIC_EXCEPTION (17)    not 1 to 249 bytes of [a-zA-Z0-9._-], or "." / ".."
 *   TOPIC_ALREADY_EXISTS (36)       in this shard's table now, or created meanwhile
 *   INVALID_REQUEST (42)            assignments together with a partition count or
 *                                   replication factor other than -1 (Kafka's rule)
 *   INVALID_REPLICA_ASSIGNMENT (39) assignments at all: sluice places partitions itself
 *   INVALID_PARTITIONS (37)         num_partitions 0, below -1, or above
 *                                   LIMITS_META_PARTITIONS_PER_TOPIC_MAX
 *   INVALID_REPLICATION_FACTOR (38) replication_factor not 1 or -1
 *   INVALID_REQUEST (42)            a config with a null value (Kafka's rule)
 *   INVALID_CONFIG (40)             a config name Kafka does not know, or a value
 *                                   topics_config_check refuses or meta could not store
 *                                   (longer than LIMITS_META_CONFIG_VALUE_BYTES, or not
 *                                   printable ASCII); a repeated name: the last one wins
 *   and from core/topics: REQUEST_TIMED_OUT (7) when this shard has
 *   LIMITS_TOPICS_PENDING_MAX changes pending from other requests, NOT_CONTROLLER (41)
 *   while the broker stops, POLICY_VIOLATION (44) when a topic, partition-id or config
 *   limit of the metadata is reached, KAFKA_STORAGE_ERROR (56) when the journal could
 *   not be written or a shard could not take the partitions, UNKNOWN_SERVER_ERROR (-1)
 *   otherwise.
 * num_partitions -1 and replication_factor -1 mean "the broker's default" at every
 * version, as Kafka 2.4+ brokers take them (KIP-464; its clients send -1 only from v4,
 * Kafka 2.3 brokers refused them with 37 and 38). A request body that cannot be decoded
 * closes the connection (net/api).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/logger.h"
#include "core/meta.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* Smallest encodings, for the array-count checks: a topic (empty name, partitions,
 * replication factor, empty assignments, empty configs), an assignment (partition,
 * empty broker list), a config (empty name, null value). */
#define CT_TOPIC_MIN_BYTES	(2 + 4 + 2 + 4 + 4)
#define CT_ASSIGNMENT_MIN_BYTES (4 + 4)
#define CT_CONFIG_MIN_BYTES	(2 + 2)
_Static_assert(LIMITS_META_PARTITIONS_PER_TOPIC_MAX == 65536, "a message below names the limit");

struct ct_pending;

/* One topic of the request. */
struct ct_topic {
	const char *name;		/* the name's bytes, NUL-terminated, in strings */
	uint16_t len;			/* bytes of name as sent */
	int16_t error;			/* KERR_NONE while valid */
	const char *message;		/* why, when error is set (static text) */
	const char *detail;		/* appended to message (a config name), or NULL */
	uint32_t partitions;		/* TOPICS_PARTITIONS_DEFAULT or the count asked */
	uint32_t config_count;		/* entries of configs */
	struct meta_config_kv *configs; /* in the request's kvs; keys unique */
	bool answer;			/* false for a repeat of an earlier name */
	bool create;			/* valid: to be asked of core/topics */
	struct ct_pending *pending;	/* the request it belongs to */
};

/* A request, from its decoding to its answer. */
struct ct_pending {
	struct api_request *req;    /* the request to answer */
	int16_t version;	    /* its version */
	uint32_t count;		    /* entries of topics */
	struct ct_topic *topics;    /* in request order */
	struct meta_config_kv *kvs; /* every topic's configs */
	char *strings;		    /* names, config names and values, each with a NUL */
	uint32_t next;		    /* first topic not yet asked of core/topics */
	uint32_t waiting;	    /* creations asked and not answered yet */
};

static void ct_pending_free(struct ct_pending *p)
{
	free(p->topics);
	free(p->kvs);
	free(p->strings);
	free(p);
}

static void ct_abandon(struct api_request *req)
{
	ct_pending_free(req->ctx);
}

static void ct_refuse(struct ct_topic *t, int16_t error, const char *message, const char *detail)
{
	if (t->error != KERR_NONE)
		return; /* the first reason stands */
	t->error = error;
	t->message = message;
	t->detail = detail;
	t->create = false;
}

/* Copies the LEN bytes at S to *AT with a NUL and returns the copy. */
static char *ct_copy(char **at, const char *s, size_t len)
{
	char *copy = *at;
	if (len)
		memcpy(copy, s, len);
	copy[len] = '\0';
	*at += len + 1;
	return copy;
}

/* True when the LEN bytes at NAME are a topic name Kafka accepts (NAME is a
 * NUL-terminated copy, so an embedded NUL shows as a shorter string). */
static bool ct_name_valid(const char *name, size_t len)
{
	return len >= 1 && len <= LIMITS_TOPIC_NAME_BYTES && strlen(name) == len &&
	       meta_topic_name_valid(name);
}

/* True when VALUE (LEN bytes, a NUL-terminated copy) is what meta stores: at most
 * LIMITS_META_CONFIG_VALUE_BYTES of printable ASCII. */
static bool ct_value_storable(const char *value, size_t len)
{
	if (len > LIMITS_META_CONFIG_VALUE_BYTES)
		return false;
	for (size_t i = 0; i < len; i++)
		if (value[i] < 0x20 || value[i] > 0x7e)
			return false;
	return true;
}

/* Reads the configs of T (COUNT entries at R), keeping the valid ones in KVS (room for
 * COUNT) with their strings copied to *STRINGS; refuses T for the first bad one. */
static void ct_read_configs(struct wire_reader *r, int32_t count, struct ct_topic *t,
			    struct meta_config_kv *kvs, char **strings)
{
	t->configs = kvs;
	for (int32_t i = 0; i < count; i++) {
		struct wire_str key = wire_read_string(r);
		struct wire_str value = wire_read_nullable_string(r);
		char *k = ct_copy(strings, key.ptr, key.len);
		char *v = value.ptr ? ct_copy(strings, value.ptr, value.len) : NULL;
		if (t->error != KERR_NONE)
			continue;
		if (!v) {
			ct_refuse(t, KERR_INVALID_REQUEST,
				  "Null value not supported for topic config: ", k);
			continue;
		}
		if (!api_describe_configs_topic_key_known(key.ptr, key.len)) {
			ct_refuse(t, KERR_INVALID_CONFIG, "Unknown topic config name: ", k);
			continue;
		}
		if (strlen(v) != value.len || !ct_value_storable(v, value.len) ||
		    topics_config_check(k, v) < 0) {
			ct_refuse(t, KERR_INVALID_CONFIG, "Invalid value for topic config ", k);
			continue;
		}
		uint32_t j = 0;
		while (j < t->config_count && strcmp(t->configs[j].key, k) != 0)
			j++;
		if (j == LIMITS_META_CONFIGS_PER_TOPIC_MAX) {
			ct_refuse(t, KERR_INVALID_CONFIG,
				  "More topic configs than sluice keeps for one topic", NULL);
			continue;
		}
		if (j == t->config_count)
			t->config_count++;
		t->configs[j] = (struct meta_config_kv){.key = k, .value = v};
	}
}

/* Reads one topic at R into T and checks what needs no table. */
static void ct_read_topic(struct wire_reader *r, struct ct_topic *t, struct meta_config_kv *kvs,
			  char **strings)
{
	struct wire_str name = wire_read_string(r);
	int32_t partitions = wire_read_i32(r);
	int16_t replication = wire_read_i16(r);
	int32_t assignments = wire_read_array_len(r, CT_ASSIGNMENT_MIN_BYTES);
	for (int32_t i = 0; i < assignments; i++) {
		wire_read_i32(r); /* partition_index */
		int32_t brokers = wire_read_array_len(r, 4);
		wire_skip(r, (size_t)brokers * 4);
	}
	int32_t configs = wire_read_array_len(r, CT_CONFIG_MIN_BYTES);

	t->name = ct_copy(strings, name.ptr, name.len);
	t->len = (uint16_t)name.len;
	t->answer = true;
	t->create = true;
	if (!ct_name_valid(t->name, t->len))
		ct_refuse(t, KERR_INVALID_TOPIC_EXCEPTION,
			  "Topic names are 1 to 249 characters of [a-zA-Z0-9._-], not '.' or '..'",
			  NULL);
	if (assignments > 0 && (partitions != -1 || replication != -1))
		ct_refuse(t, KERR_INVALID_REQUEST,
			  "Both numPartitions or replicationFactor and replicasAssignments were "
			  "set. Both cannot be used at the same time.",
			  NULL);
	if (assignments > 0)
		ct_refuse(t, KERR_INVALID_REPLICA_ASSIGNMENT,
			  "sluice places partitions itself (partition p on shard (hash(topic) + p) "
			  "% shards): send no replica assignment",
			  NULL);
	if (partitions == 0 || partitions < -1)
		ct_refuse(t, KERR_INVALID_PARTITIONS, "Number of partitions must be larger than 0.",
			  NULL);
	else if (partitions > (int32_t)LIMITS_META_PARTITIONS_PER_TOPIC_MAX)
		ct_refuse(t, KERR_INVALID_PARTITIONS,
			  "Number of partitions is above sluice's limit of 65536 per topic.", NULL);
	t->partitions = partitions == -1 ? TOPICS_PARTITIONS_DEFAULT : (uint32_t)partitions;
	if (replication != 1 && replication != -1)
		ct_refuse(t, KERR_INVALID_REPLICATION_FACTOR,
			  "sluice keeps one copy of each partition: the replication factor must be "
			  "1 (or -1 for the default)",
			  NULL);
	ct_read_configs(r, configs, t, kvs, strings);
}

/* Refuses every topic whose name appears more than once, answering each name once
 * (at its first place). Returns 0 or -ENOMEM. */
static int ct_refuse_repeats(struct ct_topic *topics, uint32_t count)
{
	uint32_t *first = malloc((size_t)(count ? count : 1) * sizeof(*first));
	if (!first ||
	    api_repeated_names(topics, count, sizeof(*topics), offsetof(struct ct_topic, name),
			       offsetof(struct ct_topic, len), first) < 0) {
		free(first);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (first[i] == API_NAME_UNIQUE)
			continue;
		topics[i].error = KERR_NONE; /* this reason comes first */
		ct_refuse(&topics[i], KERR_INVALID_REQUEST,
			  "The topic appears more than once in the request.", NULL);
		topics[i].answer = first[i] == i;
	}
	free(first);
	return 0;
}

/* The error and message for core/topics' STATUS of a creation. */
static void ct_status(struct ct_topic *t, int status)
{
	switch (status) {
	case 0:
		return;
	case -EEXIST:
		ct_refuse(t, KERR_TOPIC_ALREADY_EXISTS, "Topic already exists.", NULL);
		return;
	case -EAGAIN:
		ct_refuse(t, KERR_REQUEST_TIMED_OUT,
			  "Too many topic changes are pending on this broker; retry.", NULL);
		return;
	case -ESHUTDOWN:
		ct_refuse(t, KERR_NOT_CONTROLLER, "The broker is stopping.", NULL);
		return;
	case -ENOSPC:
		ct_refuse(t, KERR_POLICY_VIOLATION,
			  "sluice's limit on topics, partitions or configs is reached (see the "
			  "broker's log).",
			  NULL);
		return;
	case -EINVAL:
		ct_refuse(t, KERR_INVALID_CONFIG, "The topic metadata refused the topic's configs.",
			  NULL);
		return;
	case -ENOMEM:
		ct_refuse(t, KERR_UNKNOWN_SERVER_ERROR, "The broker is out of memory.", NULL);
		return;
	default:
		ct_refuse(t, KERR_KAFKA_STORAGE_ERROR,
			  "The topic metadata could not be written, or a shard could not take the "
			  "partitions (see the broker's log).",
			  NULL);
	}
}

/* The bytes of T's error message: *HEAD of its text, then *TAIL of its detail, cut so
 * that the whole fits a STRING (a detail is a request string, up to INT16_MAX bytes). */
static void ct_message_parts(const struct ct_topic *t, size_t *head, size_t *tail)
{
	*head = strlen(t->message);
	*tail = t->detail ? strlen(t->detail) : 0;
	if (*head + *tail > INT16_MAX)
		*tail = INT16_MAX - *head;
}

/* Writes and sends the answer. */
static void ct_answer(struct api_request *req, int16_t version, const struct ct_topic *topics,
		      uint32_t count)
{
	size_t bytes = 4 + 4;
	uint32_t answered = 0;
	for (uint32_t i = 0; i < count; i++) {
		const struct ct_topic *t = &topics[i];
		if (!t->answer)
			continue;
		answered++;
		bytes += 2 + t->len + 2 + 2;
		if (t->error != KERR_NONE) {
			size_t head, tail;
			ct_message_parts(t, &head, &tail);
			bytes += head + tail;
		}
	}
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		api_fail(req, "out of memory for the CreateTopics response");
		return;
	}
	if (version >= 2)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, (int32_t)answered);
	for (uint32_t i = 0; i < count; i++) {
		const struct ct_topic *t = &topics[i];
		if (!t->answer)
			continue;
		wire_write_string(&w, t->name, t->len);
		wire_write_i16(&w, t->error);
		if (version < 1)
			continue;
		if (t->error == KERR_NONE) {
			wire_write_nullable_string(&w, NULL, 0);
			continue;
		}
		size_t head, tail;
		ct_message_parts(t, &head, &tail);
		wire_write_i16(&w, (int16_t)(head + tail));
		wire_write_raw(&w, t->message, head);
		wire_write_raw(&w, t->detail, tail);
	}
	api_respond(req, &w);
}

/* One line per request with refusals, naming the first. */
static void ct_log_refusals(const struct ct_pending *p)
{
	uint32_t failed = 0;
	const struct ct_topic *first = NULL;
	for (uint32_t i = 0; i < p->count; i++) {
		if (p->topics[i].answer && p->topics[i].error != KERR_NONE) {
			if (!first)
				first = &p->topics[i];
			failed++;
		}
	}
	if (!first)
		return;
	LOG_INFO("net: CreateTopics from %s: %u topic(s) not created (first '%.*s': %s: %s%s)",
		 p->req->conn->peer, failed, (int)first->len, first->name,
		 kafka_error_name(first->error), first->message,
		 first->detail ? first->detail : "");
}

/* Answers P's request and frees P. */
static void ct_finish(struct ct_pending *p)
{
	ct_log_refusals(p);
	ct_answer(p->req, p->version, p->topics, p->count);
	ct_pending_free(p);
}

static void ct_created(void *ctx, int status, const struct topic_view *view);

/*
 * Asks core/topics for the creations from P->next on. A creation refused with -EAGAIN
 * (this shard's pending changes are at their limit) is asked again when one of P's own
 * creations is answered; when P has none under way, the limit is held by other
 * requests and the rest is refused with REQUEST_TIMED_OUT. Answers and frees P once
 * nothing is left to ask or wait for; returns true then.
 */
static bool ct_ask(struct ct_pending *p)
{
	struct topics *table = p->req->server->topics;
	while (p->next < p->count) {
		struct ct_topic *t = &p->topics[p->next];
		if (!t->create) {
			p->next++;
			continue;
		}
		int ret = topics_create(table, t->name, t->partitions, t->configs, t->config_count,
					ct_created, t);
		if (ret == -EAGAIN && p->waiting > 0)
			return false; /* asked again when one of ours is answered */
		p->next++;
		if (ret == 0)
			p->waiting++;
		else
			ct_status(t, ret);
	}
	if (p->waiting > 0)
		return false;
	ct_finish(p);
	return true;
}

/* A creation's answer (core/topics, on this shard's thread). */
static void ct_created(void *ctx, int status, const struct topic_view *view)
{
	struct ct_topic *t = ctx;
	struct ct_pending *p = t->pending;
	ct_status(t, status);
	p->waiting--;
	ct_ask(p);
}

int api_create_topics_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t version = req->api_version;

	/* First pass: the whole body decodes, and the sizes of what to copy. */
	int32_t n = wire_read_array_len(r, CT_TOPIC_MIN_BYTES);
	struct wire_reader topics_at = *r;
	size_t string_bytes = 1, kv_count = 0;
	for (int32_t i = 0; i < n; i++) {
		string_bytes += wire_read_string(r).len + 1;
		wire_skip(r, 4 + 2); /* num_partitions, replication_factor */
		int32_t assignments = wire_read_array_len(r, CT_ASSIGNMENT_MIN_BYTES);
		for (int32_t a = 0; a < assignments; a++) {
			wire_skip(r, 4);
			wire_skip(r, (size_t)wire_read_array_len(r, 4) * 4);
		}
		int32_t configs = wire_read_array_len(r, CT_CONFIG_MIN_BYTES);
		kv_count += (size_t)configs;
		for (int32_t c = 0; c < configs; c++) {
			string_bytes += wire_read_string(r).len + 1;
			string_bytes += wire_read_nullable_string(r).len + 1;
		}
	}
	wire_read_i32(r); /* timeout_ms */
	bool validate_only = version >= 1 ? wire_read_bool(r) : false;
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct ct_pending *p = calloc(1, sizeof(*p));
	if (p) {
		p->topics = calloc(n ? (size_t)n : 1, sizeof(*p->topics));
		p->kvs = calloc(kv_count ? kv_count : 1, sizeof(*p->kvs));
		p->strings = malloc(string_bytes);
	}
	if (!p || !p->topics || !p->kvs || !p->strings) {
		if (p)
			ct_pending_free(p);
		api_fail(req, "out of memory for the CreateTopics request");
		return 0;
	}
	p->req = req;
	p->version = version;
	p->count = (uint32_t)n;

	/* Second pass: each topic, checked. */
	const struct topics *table = req->server->topics;
	char *strings = p->strings;
	struct meta_config_kv *kvs = p->kvs;
	for (uint32_t i = 0; i < p->count; i++) {
		struct ct_topic *t = &p->topics[i];
		t->pending = p;
		ct_read_topic(&topics_at, t, kvs, &strings);
		kvs += t->config_count;
		/* A name in the table is valid, and existing comes before the checks of the
		 * partitions, replication and configs. */
		if (table && topics_find_len(table, t->name, t->len)) {
			t->error = KERR_NONE;
			ct_refuse(t, KERR_TOPIC_ALREADY_EXISTS, "Topic already exists.", NULL);
		}
		if (t->error == KERR_NONE && !table && !validate_only)
			ct_refuse(t, KERR_UNKNOWN_SERVER_ERROR, "This broker hosts no topic table.",
				  NULL);
	}
	if (ct_refuse_repeats(p->topics, p->count) < 0) {
		ct_pending_free(p);
		api_fail(req, "out of memory for the CreateTopics request");
		return 0;
	}
	if (validate_only) {
		for (uint32_t i = 0; i < p->count; i++)
			p->topics[i].create = false;
	}
	if (!ct_ask(p)) {
		req->ctx = p;
		req->abandon = ct_abandon;
	}
	return 0;
}
