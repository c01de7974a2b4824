/*
 * net/api_describe_configs.c: the DescribeConfigs handler (API key 32), versions 0-2,
 * answered at once from this shard's settings and its copy of the topic table, and the
 * one table of the topic config names Kafka 2.3 knows (its LogConfig), which CreateTopics
 * also checks names against. A BROKER resource is this shard (its Kafka broker id): its
 * settings that Kafka also has, under Kafka's names, read only (sluice has no
 * AlterConfigs); a TOPIC resource is every config the topic sets plus the effective value
 * of each one sluice acts on or has a fixed answer for. It changes nothing and does not
 * know the broker-wide settings of other shards (each shard is asked for its own, as
 * Kafka clients send a BROKER resource to that broker).
 *
 * Request (DescribeConfigsRequest.json, apache/kafka clients/src/main/resources/common/
 * message; versions 0-2 non-flexible, 2 = 1):
 *
 *   field                 type      versions  meaning
 *  +---------------------+---------+---------+------------------------------------------+
 *  | resources           | array   | 0+      | per resource:                            |
 *  |   resource_type     | int8    |         |   2 TOPIC, 4 BROKER (others: error 42)   |
 *  |   resource_name     | string  |         |   topic name; broker id, or "" for the   |
 *  |                     |         |         |   cluster-wide dynamic defaults (none)   |
 *  |   configuration_keys| [string]|         |   nullable: null = every config; names   |
 *  |                     |         |         |   that do not exist are left out          |
 *  | include_synonyms    | bool    | 1+      | list each value's sources                 |
 *  +---------------------+---------+---------+------------------------------------------+
 *
 * Response (DescribeConfigsResponse.json), after the response header v0:
 *
 *   field                 type      versions  value
 *  +---------------------+---------+---------+------------------------------------------+
 *  | throttle_time_ms    | int32   | 0+      | 0                                        |
 *  | results             | array   | 0+      | per resource, in request order:          |
 *  |   error_code        | int16   |         |   0, 3 unknown topic, 17 invalid topic    |
 *  |                     |         |         |   name, 42 other broker id or type        |
 *  |   error_message     | nstring |         |   null, or why                           |
 *  |   resource_type     | int8    |         |   as sent                                |
 *  |   resource_name     | string  |         |   as sent                                |
 *  |   configs           | array   |         |   per config (none on an error):         |
 *  |     name            | string  |         |     Kafka's name                         |
 *  |     value           | nstring |         |     the effective value                  |
 *  |     read_only       | bool    |         |     broker: true; topic: false           |
 *  |     is_default      | bool    | 0       |     source is DEFAULT_CONFIG             |
 *  |     config_source   | int8    | 1+      |     1 TOPIC_CONFIG, 4 STATIC_BROKER_CONFIG|
 *  |                     |         |         |     (set in the file or on the command   |
 *  |                     |         |         |     line), 5 DEFAULT_CONFIG              |
 *  |     is_sensitive    | bool    |         |     false                                |
 *  |     synonyms        | array   | 1+      |     empty unless include_synonyms:       |
 *  |       name          | string  |         |       where the value may come from,     |
 *  |       value         | nstring |         |       the most specific first            |
 *  |       source        | int8    |         |                                          |
 *  +---------------------+---------+---------+------------------------------------------+
 *
 * A setting counts as set (STATIC_BROKER_CONFIG) when its value differs from the built-in
 * default (config_defaults): struct config does not record where a value came from, so a
 * value set to the default reads as the default. A request body that cannot be decoded
 * closes the connection (net/api).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/meta.h"
#include "core/topics.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* ConfigResource.Type ids. */
#define DC_RESOURCE_TOPIC  2
#define DC_RESOURCE_BROKER 4

/* DescribeConfigsResponse.ConfigSource ids. */
#define DC_SOURCE_TOPIC		1 /* TOPIC_CONFIG (DYNAMIC_TOPIC_CONFIG) */
#define DC_SOURCE_STATIC_BROKER 4 /* STATIC_BROKER_CONFIG */
#define DC_SOURCE_DEFAULT	5 /* DEFAULT_CONFIG */

/* Smallest encodings: a resource (type, empty name, null keys), a key (empty string). */
#define DC_RESOURCE_MIN_BYTES (1 + 2 + 4)
#define DC_KEY_MIN_BYTES      2

/* Longest text of a number or of a generated message head. */
#define DC_NUMBER_BYTES	 24
#define DC_MESSAGE_BYTES 96

/* Where a topic config's value comes from when the topic does not set it. */
enum dc_topic_default {
	DC_DEFAULT_NONE = 0,	    /* nothing: left out unless the topic sets it */
	DC_DEFAULT_FIXED,	    /* the table's text: what sluice always does */
	DC_DEFAULT_RETENTION_MS,    /* log.retention.ms */
	DC_DEFAULT_RETENTION_BYTES, /* log.retention.bytes */
	DC_DEFAULT_SEGMENT_BYTES,   /* log.segment.bytes */
};

/* One topic config Kafka 2.3 knows. */
struct dc_topic_key {
	const char *name;		    /* the topic config */
	const char *broker_name;	    /* the broker setting it defaults to (Kafka's) */
	enum dc_topic_default default_kind; /* sluice's value when the topic does not set it */
	const char *fixed;		    /* DC_DEFAULT_FIXED: the value */
};

/* Kafka 2.3's LogConfig names with their broker synonyms (KafkaConfig), sorted by name.
 * Only the ones with a default kind are reported for a topic that does not set them:
 * the ones sluice acts on (retention, segment size as stored) and the ones whose value
 * is fixed by what sluice is (one replica, batches stored as produced, never
 * compacted, timestamps as the producer set them). */
static const struct dc_topic_key dc_topic_keys[] = {
    {"cleanup.policy", "log.cleanup.policy", DC_DEFAULT_FIXED, "delete"},
    {"compression.type", "compression.type", DC_DEFAULT_FIXED, "producer"},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms", DC_DEFAULT_NONE, NULL},
    {"file.delete.delay.ms", "log.segment.delete.delay.ms", DC_DEFAULT_NONE, NULL},
    {"flush.messages", "log.flush.interval.messages", DC_DEFAULT_NONE, NULL},
    {"flush.ms", "log.flush.interval.ms", DC_DEFAULT_NONE, NULL},
    {"follower.replication.throttled.replicas", "follower.replication.throttled.replicas",
     DC_DEFAULT_NONE, NULL},
    {"index.interval.bytes", "log.index.interval.bytes", DC_DEFAULT_NONE, NULL},
    {"leader.replication.throttled.replicas", "leader.replication.throttled.replicas",
     DC_DEFAULT_NONE, NULL},
    {"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", DC_DEFAULT_NONE, NULL},
    {"max.message.bytes", "message.max.bytes", DC_DEFAULT_NONE, NULL},
    {"message.downconversion.enable", "log.message.downconversion.enable", DC_DEFAULT_NONE, NULL},
    {"message.format.version", "log.message.format.version", DC_DEFAULT_NONE, NULL},
    {"message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms",
     DC_DEFAULT_NONE, NULL},
    {"message.timestamp.type", "log.message.timestamp.type", DC_DEFAULT_FIXED, "CreateTime"},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", DC_DEFAULT_NONE, NULL},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", DC_DEFAULT_NONE, NULL},
    {"min.insync.replicas", "min.insync.replicas", DC_DEFAULT_FIXED, "1"},
    {"preallocate", "log.preallocate", DC_DEFAULT_NONE, NULL},
    {"retention.bytes", "log.retention.bytes", DC_DEFAULT_RETENTION_BYTES, NULL},
    {"retention.ms", "log.retention.ms", DC_DEFAULT_RETENTION_MS, NULL},
    {"segment.bytes", "log.segment.bytes", DC_DEFAULT_SEGMENT_BYTES, NULL},
    {"segment.index.bytes", "log.index.size.max.bytes", DC_DEFAULT_NONE, NULL},
    {"segment.jitter.ms", "log.roll.jitter.ms", DC_DEFAULT_NONE, NULL},
    {"segment.ms", "log.roll.ms", DC_DEFAULT_NONE, NULL},
    {"unclean.leader.election.enable", "unclean.leader.election.enable", DC_DEFAULT_NONE, NULL},
};
#define DC_TOPIC_KEYS (sizeof(dc_topic_keys) / sizeof(dc_topic_keys[0]))
_Static_assert(DC_TOPIC_KEYS <= LIMITS_META_CONFIGS_PER_TOPIC_MAX,
	       "a topic can set every config Kafka knows");

/* The broker settings reported (struct config fields under Kafka's names). */
enum dc_broker_key {
	DC_BROKER_ADVERTISED_HOST,
	DC_BROKER_AUTO_CREATE,
	DC_BROKER_HOST,
	DC_BROKER_LOG_DIRS,
	DC_BROKER_RETENTION_BYTES,
	DC_BROKER_RETENTION_CHECK,
	DC_BROKER_RETENTION_MS,
	DC_BROKER_SEGMENT_BYTES,
	DC_BROKER_MAX_CONNECTIONS,
	DC_BROKER_NUM_PARTITIONS,
	DC_BROKER_PORT,
	DC_BROKER_REQUEST_MAX,
	DC_BROKER_KEYS
};

static const char *const dc_broker_names[DC_BROKER_KEYS] = {
    [DC_BROKER_ADVERTISED_HOST] = "advertised.host.name",
    [DC_BROKER_AUTO_CREATE] = "auto.create.topics.enable",
    [DC_BROKER_HOST] = "host.name",
    [DC_BROKER_LOG_DIRS] = "log.dirs",
    [DC_BROKER_RETENTION_BYTES] = "log.retention.bytes",
    [DC_BROKER_RETENTION_CHECK] = "log.retention.check.interval.ms",
    [DC_BROKER_RETENTION_MS] = "log.retention.ms",
    [DC_BROKER_SEGMENT_BYTES] = "log.segment.bytes",
    [DC_BROKER_MAX_CONNECTIONS] = "max.connections",
    [DC_BROKER_NUM_PARTITIONS] = "num.partitions",
    [DC_BROKER_PORT] = "port",
    [DC_BROKER_REQUEST_MAX] = "socket.request.max.bytes",
};

#define DC_SYNONYMS_MAX 3
#define DC_ENTRIES_MAX	(DC_TOPIC_KEYS > DC_BROKER_KEYS ? DC_TOPIC_KEYS : DC_BROKER_KEYS)

/* One place a value may come from. */
struct dc_synonym {
	const char *name;  /* a config or broker setting */
	const char *value; /* NULL: null */
	int8_t source;	   /* DC_SOURCE_* */
};

/* One config of a resource, as it is written. Values point at the topic view, the
 * config, the table, or the entry's own buffers. */
struct dc_entry {
	const char *name;			     /* Kafka's name */
	const char *value;			     /* NULL: null */
	int8_t source;				     /* DC_SOURCE_* */
	bool read_only;				     /* broker settings */
	uint32_t synonym_count;			     /* entries of synonyms */
	struct dc_synonym synonyms[DC_SYNONYMS_MAX]; /* most specific first */
	char value_buf[DC_NUMBER_BYTES];	     /* a number value */
	char default_buf[DC_NUMBER_BYTES];	     /* a number default */
};

/* A resource's answer: its error, or its configs. */
struct dc_answer {
	int16_t error;			/* KERR_NONE, or why there are no configs */
	char message[DC_MESSAGE_BYTES]; /* with error: the head of the message */
	struct wire_str tail;		/* appended to message (the name as sent), may be null */
	uint32_t count;			/* entries */
	struct dc_entry entries[DC_ENTRIES_MAX];
};

bool api_describe_configs_topic_key_known(const char *key, size_t len)
{
	size_t lo = 0, hi = DC_TOPIC_KEYS;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *name = dc_topic_keys[mid].name;
		size_t name_len = strlen(name);
		int c = memcmp(name, key, name_len < len ? name_len : len);
		if (c == 0)
			c = name_len < len ? -1 : name_len > len;
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Adds a synonym to E. */
static void dc_synonym_add(struct dc_entry *e, const char *name, const char *value, int8_t source)
{
	if (e->synonym_count < DC_SYNONYMS_MAX)
		e->synonyms[e->synonym_count++] = (struct dc_synonym){name, value, source};
}

/* Fills E with a broker-level value: NAME with VALUE, set by the user unless it equals
 * DEFAULT_VALUE (NULL: no built-in value); synonyms: the value's source, then the
 * built-in default when the value was set. */
static void dc_broker_entry(struct dc_entry *e, const char *name, const char *value,
			    const char *default_value)
{
	bool set = !default_value || strcmp(value, default_value) != 0;
	e->name = name;
	e->value = value;
	e->source = set ? DC_SOURCE_STATIC_BROKER : DC_SOURCE_DEFAULT;
	e->read_only = true;
	dc_synonym_add(e, name, value, e->source);
	if (set && default_value)
		dc_synonym_add(e, name, default_value, DC_SOURCE_DEFAULT);
}

/* Formats the numbers of E (value, default) into its buffers and fills it. */
static void dc_broker_number(struct dc_entry *e, const char *name, int64_t value, int64_t dflt)
{
	snprintf(e->value_buf, sizeof(e->value_buf), "%" PRId64, value);
	snprintf(e->default_buf, sizeof(e->default_buf), "%" PRId64, dflt);
	dc_broker_entry(e, name, e->value_buf, e->default_buf);
}

/* Fills E with broker setting KEY of S. */
static void dc_broker_setting(struct dc_entry *e, const struct server *s, const struct config *d,
			      enum dc_broker_key key)
{
	const struct config *cfg = s->cfg;
	const char *name = dc_broker_names[key];
	uint32_t shards = s->shard->set->count;
	switch (key) {
	case DC_BROKER_ADVERTISED_HOST:
		/* Unset: this machine's host name, which is no fixed default. */
		dc_broker_entry(e, name, s->host, cfg->advertised_host[0] ? NULL : s->host);
		return;
	case DC_BROKER_AUTO_CREATE:
		dc_broker_entry(e, name, cfg->auto_create_topics ? "true" : "false",
				d->auto_create_topics ? "true" : "false");
		return;
	case DC_BROKER_HOST:
		dc_broker_entry(e, name, cfg->listen_host, d->listen_host);
		return;
	case DC_BROKER_LOG_DIRS:
		dc_broker_entry(e, name, cfg->data_dir, d->data_dir);
		return;
	case DC_BROKER_RETENTION_BYTES:
		dc_broker_number(e, name, cfg->retention_bytes, d->retention_bytes);
		return;
	case DC_BROKER_RETENTION_CHECK:
		dc_broker_number(e, name, cfg->retention_check_ms, d->retention_check_ms);
		return;
	case DC_BROKER_RETENTION_MS:
		dc_broker_number(e, name, cfg->retention_ms, d->retention_ms);
		return;
	case DC_BROKER_SEGMENT_BYTES:
		dc_broker_number(e, name, (int64_t)cfg->segment_bytes, (int64_t)d->segment_bytes);
		return;
	case DC_BROKER_MAX_CONNECTIONS:
		dc_broker_number(e, name, cfg->max_connections, d->max_connections);
		return;
	case DC_BROKER_NUM_PARTITIONS:
		/* 0 is "one per shard": reported resolved. */
		dc_broker_number(e, name, cfg->num_partitions ? cfg->num_partitions : shards,
				 d->num_partitions ? d->num_partitions : shards);
		if (cfg->num_partitions == d->num_partitions)
			e->source = e->synonyms[0].source = DC_SOURCE_DEFAULT;
		return;
	case DC_BROKER_PORT:
		dc_broker_number(e, name, (int64_t)cfg->port + s->shard->id,
				 (int64_t)d->port + s->shard->id);
		return;
	case DC_BROKER_REQUEST_MAX:
		dc_broker_number(e, name, (int64_t)cfg->request_max_bytes,
				 (int64_t)d->request_max_bytes);
		return;
	case DC_BROKER_KEYS:
		break;
	}
}

/* The broker setting a topic default comes from, and whether the user set it. */
static bool dc_broker_set(const struct config *cfg, const struct config *d,
			  enum dc_topic_default kind)
{
	switch (kind) {
	case DC_DEFAULT_RETENTION_MS:
		return cfg->retention_ms != d->retention_ms;
	case DC_DEFAULT_RETENTION_BYTES:
		return cfg->retention_bytes != d->retention_bytes;
	case DC_DEFAULT_SEGMENT_BYTES:
		return cfg->segment_bytes != d->segment_bytes;
	case DC_DEFAULT_NONE:
	case DC_DEFAULT_FIXED:
		break;
	}
	return false;
}

/* Fills E with topic config K of VIEW; returns false when it is not reported (neither
 * set by the topic nor given a value by sluice). */
static bool dc_topic_config(struct dc_entry *e, const struct server *s, const struct config *d,
			    const struct topic_view *view, const struct dc_topic_key *k)
{
	const struct config *cfg = s->cfg;
	const char *own = topics_view_config(view, k->name);
	const char *effective = NULL, *builtin = NULL;
	bool broker_set = dc_broker_set(cfg, d, k->default_kind);
	switch (k->default_kind) {
	case DC_DEFAULT_NONE:
		break;
	case DC_DEFAULT_FIXED:
		effective = builtin = k->fixed;
		break;
	case DC_DEFAULT_RETENTION_MS:
		snprintf(e->value_buf, sizeof(e->value_buf), "%" PRId64, view->retention_ms);
		snprintf(e->default_buf, sizeof(e->default_buf), "%" PRId64, d->retention_ms);
		break;
	case DC_DEFAULT_RETENTION_BYTES:
		snprintf(e->value_buf, sizeof(e->value_buf), "%" PRId64, view->retention_bytes);
		snprintf(e->default_buf, sizeof(e->default_buf), "%" PRId64, d->retention_bytes);
		break;
	case DC_DEFAULT_SEGMENT_BYTES:
		snprintf(e->value_buf, sizeof(e->value_buf), "%" PRIu64, view->segment_bytes);
		snprintf(e->default_buf, sizeof(e->default_buf), "%" PRIu64, d->segment_bytes);
		break;
	}
	if (k->default_kind >= DC_DEFAULT_RETENTION_MS) {
		effective = e->value_buf;
		builtin = e->default_buf;
	}
	if (!own && !effective)
		return false;
	e->name = k->name;
	e->read_only = false;
	if (own) {
		e->value = own;
		e->source = DC_SOURCE_TOPIC;
		dc_synonym_add(e, k->name, own, DC_SOURCE_TOPIC);
		if (!builtin)
			return true;
		/* What it would be without the topic's setting: the broker's value (the
		 * topic table's defaults come from the same settings). */
		if (broker_set) {
			int64_t v;
			if (k->default_kind == DC_DEFAULT_RETENTION_MS)
				v = cfg->retention_ms;
			else if (k->default_kind == DC_DEFAULT_RETENTION_BYTES)
				v = cfg->retention_bytes;
			else
				v = (int64_t)cfg->segment_bytes;
			snprintf(e->value_buf, sizeof(e->value_buf), "%" PRId64, v);
			dc_synonym_add(e, k->broker_name, e->value_buf, DC_SOURCE_STATIC_BROKER);
		}
		dc_synonym_add(e, k->broker_name, builtin, DC_SOURCE_DEFAULT);
		return true;
	}
	e->value = effective;
	e->source = broker_set ? DC_SOURCE_STATIC_BROKER : DC_SOURCE_DEFAULT;
	dc_synonym_add(e, k->broker_name, effective, e->source);
	if (broker_set)
		dc_synonym_add(e, k->broker_name, builtin, DC_SOURCE_DEFAULT);
	return true;
}

/* Parses a broker id the way Java's Integer.parseInt does (optional sign, digits). */
static bool dc_parse_broker_id(struct wire_str name, int64_t *id)
{
	size_t i = 0;
	bool negative = false;
	if (name.len > 0 && (name.ptr[0] == '-' || name.ptr[0] == '+')) {
		negative = name.ptr[0] == '-';
		i = 1;
	}
	if (i == name.len)
		return false;
	int64_t v = 0;
	for (; i < name.len; i++) {
		if (name.ptr[i] < '0' || name.ptr[i] > '9')
			return false;
		v = v * 10 + (name.ptr[i] - '0');
		if (v > (int64_t)INT32_MAX + 1)
			return false;
	}
	v = negative ? -v : v;
	if (v > INT32_MAX)
		return false;
	*id = v;
	return true;
}

/* Sets A's error with the message HEAD (cut to DC_MESSAGE_BYTES - 1) and TAIL. */
static void dc_refuse(struct dc_answer *a, int16_t error, const char *head, struct wire_str tail)
{
	a->error = error;
	snprintf(a->message, sizeof(a->message), "%s", head);
	a->tail = tail;
	a->count = 0;
}

/* Builds the answer for one resource into A. */
static void dc_describe(struct dc_answer *a, const struct server *s, const struct config *d,
			int8_t type, struct wire_str name)
{
	memset(a, 0, offsetof(struct dc_answer, entries));
	const struct wire_str none = {NULL, 0};
	if (type == DC_RESOURCE_BROKER) {
		int64_t id;
		if (name.len == 0)
			return; /* cluster-wide dynamic defaults: sluice has none */
		if (!dc_parse_broker_id(name, &id)) {
			dc_refuse(a, KERR_INVALID_REQUEST,
				  "Broker id must be an integer, but it is: ", name);
			return;
		}
		if (id != (int64_t)s->shard->id) {
			char head[DC_MESSAGE_BYTES];
			snprintf(head, sizeof(head),
				 "Unexpected broker id, expected %u or empty string, but received ",
				 s->shard->id);
			dc_refuse(a, KERR_INVALID_REQUEST, head, name);
			return;
		}
		for (uint32_t k = 0; k < DC_BROKER_KEYS; k++) {
			struct dc_entry *e = &a->entries[a->count++];
			memset(e, 0, sizeof(*e));
			dc_broker_setting(e, s, d, (enum dc_broker_key)k);
		}
		return;
	}
	if (type != DC_RESOURCE_TOPIC) {
		char head[DC_MESSAGE_BYTES];
		snprintf(head, sizeof(head), "Unsupported resource type: %d", type);
		dc_refuse(a, KERR_INVALID_REQUEST, head, none);
		return;
	}
	char valid[LIMITS_TOPIC_NAME_BYTES + 1];
	bool name_ok =
	    name.len > 0 && name.len <= LIMITS_TOPIC_NAME_BYTES && !memchr(name.ptr, 0, name.len);
	if (name_ok) {
		memcpy(valid, name.ptr, name.len);
		valid[name.len] = '\0';
		name_ok = meta_topic_name_valid(valid);
	}
	if (!name_ok) {
		dc_refuse(a, KERR_INVALID_TOPIC_EXCEPTION,
			  "Topic names are 1 to 249 characters of [a-zA-Z0-9._-], not '.' or '..'",
			  none);
		return;
	}
	const struct topic_view *view = s->topics ? topics_find(s->topics, valid) : NULL;
	if (!view) {
		dc_refuse(a, KERR_UNKNOWN_TOPIC_OR_PARTITION, "The topic does not exist.", none);
		return;
	}
	for (size_t k = 0; k < DC_TOPIC_KEYS; k++) {
		struct dc_entry *e = &a->entries[a->count];
		memset(e, 0, sizeof(*e));
		if (dc_topic_config(e, s, d, view, &dc_topic_keys[k]))
			a->count++;
	}
}

/* True when E is asked for: KEYS (a reader at COUNT key strings) is null (COUNT -1) or
 * holds E's name. */
static bool dc_wanted(const struct dc_entry *e, struct wire_reader keys, int32_t count)
{
	if (count < 0)
		return true;
	for (int32_t i = 0; i < count; i++)
		if (wire_str_eq(wire_read_string(&keys), e->name))
			return true;
	return false;
}

static size_t dc_nstring_bytes(const char *s)
{
	return 2 + (s ? strlen(s) : 0);
}

/* Bytes of A's result (besides type and name) as written for VERSION. */
static size_t dc_answer_bytes(const struct dc_answer *a, int16_t version, bool synonyms,
			      struct wire_reader keys, int32_t key_count)
{
	size_t bytes = 2 + 2 + 4;
	if (a->error != KERR_NONE)
		bytes += strlen(a->message) + a->tail.len;
	for (uint32_t i = 0; i < a->count; i++) {
		const struct dc_entry *e = &a->entries[i];
		if (!dc_wanted(e, keys, key_count))
			continue;
		bytes += 2 + strlen(e->name) + dc_nstring_bytes(e->value) + 1 + 1 + 1;
		if (version < 1)
			continue;
		bytes += 4;
		for (uint32_t j = 0; synonyms && j < e->synonym_count; j++)
			bytes += 2 + strlen(e->synonyms[j].name) +
				 dc_nstring_bytes(e->synonyms[j].value) + 1;
	}
	return bytes;
}

static void dc_write_nstring(struct wire_writer *w, const char *s)
{
	wire_write_nullable_string(w, s, s ? strlen(s) : 0);
}

static void dc_write_answer(struct wire_writer *w, const struct dc_answer *a, int8_t type,
			    struct wire_str name, int16_t version, bool synonyms,
			    struct wire_reader keys, int32_t key_count)
{
	wire_write_i16(w, a->error);
	if (a->error == KERR_NONE) {
		wire_write_nullable_string(w, NULL, 0);
	} else {
		/* The head is short and the tail a request string: cut to fit a STRING. */
		size_t head = strlen(a->message), tail = a->tail.len;
		if (head + tail > INT16_MAX)
			tail = INT16_MAX - head;
		wire_write_i16(w, (int16_t)(head + tail));
		wire_write_raw(w, a->message, head);
		wire_write_raw(w, a->tail.ptr, tail);
	}
	wire_write_i8(w, type);
	wire_write_string(w, name.ptr, name.len);
	size_t count_at = wire_writer_reserve_i32(w);
	int32_t written = 0;
	for (uint32_t i = 0; i < a->count; i++) {
		const struct dc_entry *e = &a->entries[i];
		if (!dc_wanted(e, keys, key_count))
			continue;
		written++;
		wire_write_string(w, e->name, strlen(e->name));
		dc_write_nstring(w, e->value);
		wire_write_bool(w, e->read_only);
		if (version == 0)
			wire_write_bool(w, e->source == DC_SOURCE_DEFAULT); /* is_default */
		else
			wire_write_i8(w, e->source);
		wire_write_bool(w, false); /* is_sensitive */
		if (version < 1)
			continue;
		uint32_t n = synonyms ? e->synonym_count : 0;
		wire_write_array_len(w, (int32_t)n);
		for (uint32_t j = 0; j < n; j++) {
			wire_write_string(w, e->synonyms[j].name, strlen(e->synonyms[j].name));
			dc_write_nstring(w, e->synonyms[j].value);
			wire_write_i8(w, e->synonyms[j].source);
		}
	}
	wire_writer_patch_i32(w, count_at, written);
}

/* Reads one resource at R: its type, name and keys (a reader at them and their count,
 * -1 for null). */
static void dc_read_resource(struct wire_reader *r, int8_t *type, struct wire_str *name,
			     struct wire_reader *keys, int32_t *key_count)
{
	*type = wire_read_i8(r);
	*name = wire_read_string(r);
	*key_count = wire_read_nullable_array_len(r, DC_KEY_MIN_BYTES);
	*keys = *r;
	for (int32_t i = 0; i < *key_count; i++)
		wire_read_string(r);
}

int api_describe_configs_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	const int16_t version = req->api_version;
	int32_t n = wire_read_array_len(r, DC_RESOURCE_MIN_BYTES);
	struct wire_reader resources = *r;
	for (int32_t i = 0; i < n; i++) {
		int8_t type;
		struct wire_str name;
		struct wire_reader keys;
		int32_t key_count;
		dc_read_resource(r, &type, &name, &keys, &key_count);
	}
	bool synonyms = version >= 1 ? wire_read_bool(r) : false;
	if (!wire_reader_ok(r))
		return -EBADMSG;

	struct dc_answer *a = malloc(sizeof(*a));
	struct config *d = malloc(sizeof(*d));
	if (!a || !d) {
		free(a);
		free(d);
		api_fail(req, "out of memory for the DescribeConfigs request");
		return 0;
	}
	config_defaults(d);
	const struct server *s = req->server;

	/* Measure, then write: each resource is described twice (cheap: a table walk). */
	size_t bytes = 4 + 4;
	struct wire_reader at = resources;
	for (int32_t i = 0; i < n; i++) {
		int8_t type;
		struct wire_str name;
		struct wire_reader keys;
		int32_t key_count;
		dc_read_resource(&at, &type, &name, &keys, &key_count);
		dc_describe(a, s, d, type, name);
		bytes += 1 + 2 + name.len + dc_answer_bytes(a, version, synonyms, keys, key_count);
	}
	struct wire_writer w;
	if (api_response_begin(req, bytes, &w) < 0) {
		free(a);
		free(d);
		api_fail(req, "out of memory for the DescribeConfigs response");
		return 0;
	}
	wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_array_len(&w, n);
	at = resources;
	for (int32_t i = 0; i < n; i++) {
		int8_t type;
		struct wire_str name;
		struct wire_reader keys;
		int32_t key_count;
		dc_read_resource(&at, &type, &name, &keys, &key_count);
		dc_describe(a, s, d, type, name);
		dc_write_answer(&w, a, type, name, version, synonyms, keys, key_count);
	}
	free(a);
	free(d);
	api_respond(req, &w);
	return 0;
}
