/*
 * core/config.c: the settings table and the three things built on it: the value parsers
 * (config_set, shared by the file and the flags), the file and argv readers, and the
 * help and log writers. Adding a setting means adding a field to struct config and one
 * row to config_settings[]; nothing else lists settings. It does not act on any value
 * (no directory is created, no log level applied); config_shard_cpus is the one place
 * that looks at the machine, to turn --shards/--cpus into a CPU per shard.
 */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/assert.h"

/* How a setting's text becomes its field. */
enum config_type {
	CONFIG_TYPE_UINT,   /* unsigned integer field of 2, 4 or 8 bytes in [min, max] */
	CONFIG_TYPE_BYTES,  /* uint64_t byte count with optional k/m/g suffix, in [min, max],
			     * a multiple of `unit` */
	CONFIG_TYPE_PATH,   /* char[LIMITS_CONFIG_VALUE_BYTES] */
	CONFIG_TYPE_CHOICE, /* an enum field (int-sized), via choice_parse / choice_name */
	CONFIG_TYPE_CPUS,   /* the cpus set; also sets cpus_set (only one such setting) */
	CONFIG_TYPE_INT,    /* int64_t field in [int_min, int_max] (Kafka's -1 = unlimited) */
};

/* One row of the table. Invariants (config_settings_sanity): names unique and
 * non-empty, default_num within [min, max] and a multiple of unit, the field size
 * matches the type. */
struct config_setting {
	const char *name;  /* flag name and file key: "data-dir" */
	const char *kafka; /* Kafka's name ("log.dirs"), NULL where Kafka has none */
	enum config_type type;
	size_t offset;		 /* of the field in struct config */
	size_t size;		 /* of that field, in bytes */
	const char *metavar;	 /* placeholder after the flag in --help: "N", "DIR" */
	uint64_t min;		 /* UINT, BYTES: smallest accepted value */
	uint64_t max;		 /* UINT, BYTES: largest accepted value */
	uint64_t unit;		 /* BYTES: values must be a multiple of this */
	uint64_t default_num;	 /* UINT, BYTES, CHOICE: the built-in default */
	const char *default_str; /* PATH: the built-in default */
	bool empty_ok;		 /* PATH: the empty string is a valid value */
	const char *unset_text;	 /* PATH empty / CPUS unset: how help and the log show it */
	int (*choice_parse)(const char *text, int *out); /* CHOICE: 0 or -EINVAL */
	const char *(*choice_name)(int value);		 /* CHOICE: value back to text */
	const char *choices; /* CHOICE: accepted words for messages: "always or never" */
	bool flag_only;	     /* may not be set from a config file (config itself) */
	const char *help;    /* one line for --help */
	int64_t int_min;     /* INT: smallest accepted value */
	int64_t int_max;     /* INT: largest accepted value */
	int64_t int_default; /* INT: the built-in default */
};

/* Highest TCP port; shard i listens on port + i. */
#define CONFIG_PORT_MAX 65535u
/* Smallest pool: one huge page, which holds LIMITS_HUGE_PAGE_BYTES / chunk buffers. */
#define CONFIG_POOL_BYTES_MIN ((uint64_t)LIMITS_HUGE_PAGE_BYTES)
#define CONFIG_CPUS_EXAMPLE   "0-3,8,10-11"

_Static_assert(sizeof(enum config_fsync) == sizeof(int), "CHOICE fields are stored as int");
_Static_assert(sizeof(enum logger_level) == sizeof(int), "CHOICE fields are stored as int");
_Static_assert(LIMITS_POOL_REGION_BYTES >= CONFIG_POOL_BYTES_MIN,
	       "the default pool must be within the pool-bytes range");

static int config_fsync_parse(const char *text, int *out)
{
	if (strcmp(text, "always") == 0)
		*out = CONFIG_FSYNC_ALWAYS;
	else if (strcmp(text, "never") == 0)
		*out = CONFIG_FSYNC_NEVER;
	else
		return -EINVAL;
	return 0;
}

static const char *config_fsync_name(int value)
{
	return value == CONFIG_FSYNC_NEVER ? "never" : "always";
}

static int config_log_level_parse(const char *text, int *out)
{
	enum logger_level level;
	int ret = logger_level_parse(text, &level);
	if (ret == 0)
		*out = (int)level;
	return ret;
}

static const char *config_log_level_name(int value)
{
	return logger_level_name((enum logger_level)value);
}

#define CONFIG_FIELD(field)                                                                        \
	.offset = offsetof(struct config, field), .size = sizeof(((struct config *)0)->field)

static int config_bool_parse(const char *text, int *out)
{
	if (strcmp(text, "true") == 0)
		*out = 1;
	else if (strcmp(text, "false") == 0)
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

static const char *config_bool_name(int value)
{
	return value ? "true" : "false";
}

static const struct config_setting config_settings[] = {
    {
	.name = "config",
	.type = CONFIG_TYPE_PATH,
	CONFIG_FIELD(config_path),
	.metavar = "PATH",
	.default_str = "",
	.empty_ok = true,
	.unset_text = "none",
	.flag_only = true,
	.help = "read settings from this key=value file first; flags override it",
    },
    {
	.name = "port",
	.kafka = "port",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(port),
	.metavar = "N",
	.min = 1,
	.max = CONFIG_PORT_MAX,
	.default_num = 9092,
	.help = "base TCP port; shard i listens on port + i",
    },
    {
	.name = "data-dir",
	.kafka = "log.dirs",
	.type = CONFIG_TYPE_PATH,
	CONFIG_FIELD(data_dir),
	.metavar = "DIR",
	.default_str = "./sluice-data",
	.help = "directory holding the shard logs and topic metadata",
    },
    {
	.name = "shards",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(shards),
	.metavar = "N",
	.min = 0,
	.max = LIMITS_SHARDS_MAX,
	.default_num = 0,
	.help = "number of shard threads; 0 = one per CPU of --cpus or the affinity mask",
    },
    {
	.name = "cpus",
	.type = CONFIG_TYPE_CPUS,
	CONFIG_FIELD(cpus),
	.metavar = "LIST",
	.unset_text = "affinity mask",
	.help = "CPUs to pin shards to, like " CONFIG_CPUS_EXAMPLE
		"; each must be in the affinity mask",
    },
    {
	.name = "fsync",
	.type = CONFIG_TYPE_CHOICE,
	CONFIG_FIELD(fsync),
	.metavar = "always|never",
	.default_num = CONFIG_FSYNC_ALWAYS,
	.choice_parse = config_fsync_parse,
	.choice_name = config_fsync_name,
	.choices = "always or never",
	.help = "always: acks=-1 waits for fdatasync; never: no fsync (benchmarks only)",
    },
    {
	.name = "log-level",
	.type = CONFIG_TYPE_CHOICE,
	CONFIG_FIELD(log_level),
	.metavar = "error|warn|info|debug",
	.default_num = LOGGER_INFO,
	.choice_parse = config_log_level_parse,
	.choice_name = config_log_level_name,
	.choices = "error, warn, info or debug",
	.help = "drop log lines less severe than this",
    },
    {
	.name = "log-file",
	.type = CONFIG_TYPE_PATH,
	CONFIG_FIELD(log_file),
	.metavar = "PATH",
	.default_str = "",
	.empty_ok = true,
	.unset_text = "stderr",
	.help = "append log lines to this file instead of stderr; reopened on SIGHUP",
    },
    {
	.name = "pool-bytes",
	.type = CONFIG_TYPE_BYTES,
	CONFIG_FIELD(pool_bytes),
	.metavar = "BYTES",
	.min = CONFIG_POOL_BYTES_MIN,
	.max = LIMITS_POOL_REGION_BYTES_MAX,
	.unit = LIMITS_HUGE_PAGE_BYTES,
	.default_num = LIMITS_POOL_REGION_BYTES,
	.help = "buffer pool of each shard (huge pages where reserved); suffix k, m or g",
    },
    {
	.name = "listen-host",
	.kafka = "host.name",
	.type = CONFIG_TYPE_PATH,
	CONFIG_FIELD(listen_host),
	.metavar = "ADDR",
	.default_str = "0.0.0.0",
	.help = "address the shards listen on (IPv4 or IPv6 literal)",
    },
    {
	.name = "advertised-host",
	.kafka = "advertised.host.name",
	.type = CONFIG_TYPE_PATH,
	CONFIG_FIELD(advertised_host),
	.metavar = "HOST",
	.default_str = "",
	.empty_ok = true,
	.unset_text = "this machine's host name",
	.help = "host name clients are told to connect to, in Metadata",
    },
    {
	.name = "num-partitions",
	.kafka = "num.partitions",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(num_partitions),
	.metavar = "N",
	.min = 0,
	.max = LIMITS_META_PARTITIONS_PER_TOPIC_MAX,
	.default_num = 0,
	.help = "partitions of an auto-created topic; 0 = one per shard",
    },
    {
	.name = "auto-create-topics",
	.kafka = "auto.create.topics.enable",
	.type = CONFIG_TYPE_CHOICE,
	CONFIG_FIELD(auto_create_topics),
	.metavar = "BOOL",
	.default_num = 1,
	.choice_parse = config_bool_parse,
	.choice_name = config_bool_name,
	.choices = "true or false",
	.help = "create a topic when a client asks for one that does not exist",
    },
    {
	.name = "retention-ms",
	.kafka = "log.retention.ms",
	.type = CONFIG_TYPE_INT,
	CONFIG_FIELD(retention_ms),
	.metavar = "MS",
	.int_min = -1,
	.int_max = INT64_MAX,
	.int_default = 7 * 24 * 3600 * 1000LL,
	.help = "default time a record is kept; -1 = forever",
    },
    {
	.name = "retention-bytes",
	.kafka = "log.retention.bytes",
	.type = CONFIG_TYPE_INT,
	CONFIG_FIELD(retention_bytes),
	.metavar = "BYTES",
	.int_min = -1,
	.int_max = INT64_MAX,
	.int_default = -1,
	.help = "default bytes kept per partition; -1 = no limit",
    },
    {
	.name = "retention-check-ms",
	.kafka = "log.retention.check.interval.ms",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(retention_check_ms),
	.metavar = "MS",
	.min = 1,
	.max = UINT32_MAX,
	.default_num = 300000,
	.help = "how often each shard applies retention",
    },
    {
	.name = "segment-bytes",
	.kafka = "log.segment.bytes",
	.type = CONFIG_TYPE_BYTES,
	CONFIG_FIELD(segment_bytes),
	.metavar = "BYTES",
	.min = 64ull << 20,
	.max = 64ull << 30,
	.unit = 64ull << 20,
	.default_num = 1ull << 30,
	.help = "size of each shard-log segment file",
    },
    {
	.name = "request-max-bytes",
	.kafka = "socket.request.max.bytes",
	.type = CONFIG_TYPE_BYTES,
	CONFIG_FIELD(request_max_bytes),
	.metavar = "BYTES",
	.min = 1ull << 20,
	.max = LIMITS_REQUEST_BYTES_MAX,
	.unit = 1,
	.default_num = LIMITS_REQUEST_BYTES_MAX,
	.help = "largest request accepted; a bigger one closes the connection",
    },
    {
	.name = "max-connections",
	.kafka = "max.connections",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(max_connections),
	.metavar = "N",
	.min = 1,
	.max = LIMITS_CONNECTIONS_PER_SHARD_MAX,
	.default_num = LIMITS_CONNECTIONS_PER_SHARD,
	.help = "connections each shard accepts; more are refused with a log line",
    },
    {
	.name = "group-initial-rebalance-delay-ms",
	.kafka = "group.initial.rebalance.delay.ms",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(group_initial_rebalance_delay_ms),
	.metavar = "MS",
	.min = 0,
	.max = 300000,
	.default_num = 3000,
	.help = "how long a new group waits for more members before its first generation",
    },
    {
	.name = "group-min-session-timeout-ms",
	.kafka = "group.min.session.timeout.ms",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(group_min_session_timeout_ms),
	.metavar = "MS",
	.min = 1,
	.max = INT32_MAX,
	.default_num = 6000,
	.help = "shortest session timeout a group member may ask for",
    },
    {
	.name = "group-max-session-timeout-ms",
	.kafka = "group.max.session.timeout.ms",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(group_max_session_timeout_ms),
	.metavar = "MS",
	.min = 1,
	.max = INT32_MAX,
	.default_num = 1800000,
	.help = "longest session timeout a group member may ask for",
    },
    {
	.name = "offsets-retention-minutes",
	.kafka = "offsets.retention.minutes",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(offsets_retention_minutes),
	.metavar = "MIN",
	.min = 1,
	.max = 1u << 30,
	.default_num = 10080,
	.help = "committed offsets of a group without members are kept this long",
    },
    {
	.name = "offsets-topic-partitions",
	.kafka = "offsets.topic.num.partitions",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(offsets_topic_partitions),
	.metavar = "N",
	.min = 0,
	.max = 1000,
	.default_num = 0,
	.help = "partitions of __consumer_offsets when it is created; 0 = one per shard",
    },
    {
	.name = "offsets-snapshot-ms",
	.type = CONFIG_TYPE_UINT,
	CONFIG_FIELD(offsets_snapshot_ms),
	.metavar = "MS",
	.min = 100,
	.max = 86400000,
	.default_num = 600000,
	.help = "how often each coordinator restates every live committed offset; "
		"__consumer_offsets keeps three intervals (its retention.ms, set at creation)",
    },
};

#define CONFIG_SETTINGS_COUNT (sizeof(config_settings) / sizeof(config_settings[0]))

/* Width of the flag column in --help. */
#define CONFIG_HELP_FLAG_COLUMN 34

static bool config_settings_sanity(void)
{
	for (size_t i = 0; i < CONFIG_SETTINGS_COUNT; i++) {
		const struct config_setting *s = &config_settings[i];
		if (!s->name[0] || !s->help || !s->metavar)
			return false;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s->name, config_settings[j].name) == 0)
				return false;
		}
		switch (s->type) {
		case CONFIG_TYPE_UINT:
			if (s->size != 2 && s->size != 4 && s->size != 8)
				return false;
			if (s->max > (s->size == 8 ? UINT64_MAX : (1ull << (8 * s->size)) - 1))
				return false;
			if (s->default_num < s->min || s->default_num > s->max)
				return false;
			break;
		case CONFIG_TYPE_BYTES:
			if (s->size != sizeof(uint64_t) || s->unit == 0 ||
			    s->default_num % s->unit != 0)
				return false;
			if (s->default_num < s->min || s->default_num > s->max)
				return false;
			break;
		case CONFIG_TYPE_PATH:
			if (s->size != LIMITS_CONFIG_VALUE_BYTES || !s->default_str)
				return false;
			break;
		case CONFIG_TYPE_CHOICE:
			if (s->size != sizeof(int) || !s->choice_parse || !s->choice_name ||
			    !s->choices)
				return false;
			break;
		case CONFIG_TYPE_CPUS:
			if (s->size != sizeof(cpu_set_t))
				return false;
			break;
		case CONFIG_TYPE_INT:
			if (s->size != sizeof(int64_t) || s->int_min > s->int_max ||
			    s->int_default < s->int_min || s->int_default > s->int_max)
				return false;
			break;
		}
	}
	return true;
}

/* The setting whose name or Kafka name is exactly KEY[0..LEN), or NULL. */
static const struct config_setting *config_setting_find(const char *key, size_t len)
{
	for (size_t i = 0; i < CONFIG_SETTINGS_COUNT; i++) {
		const struct config_setting *s = &config_settings[i];
		if (strncmp(s->name, key, len) == 0 && s->name[len] == '\0')
			return s;
		if (s->kafka && strncmp(s->kafka, key, len) == 0 && s->kafka[len] == '\0')
			return s;
	}
	return NULL;
}

static void *config_field(struct config *cfg, const struct config_setting *s)
{
	return (char *)cfg + s->offset;
}

static const void *config_field_const(const struct config *cfg, const struct config_setting *s)
{
	return (const char *)cfg + s->offset;
}

static void config_uint_store(struct config *cfg, const struct config_setting *s, uint64_t v)
{
	void *field = config_field(cfg, s);
	if (s->size == 2) {
		uint16_t v16 = (uint16_t)v;
		memcpy(field, &v16, sizeof(v16));
	} else if (s->size == 4) {
		uint32_t v32 = (uint32_t)v;
		memcpy(field, &v32, sizeof(v32));
	} else {
		memcpy(field, &v, sizeof(v));
	}
}

static uint64_t config_uint_load(const struct config *cfg, const struct config_setting *s)
{
	const void *field = config_field_const(cfg, s);
	if (s->size == 2) {
		uint16_t v16;
		memcpy(&v16, field, sizeof(v16));
		return v16;
	}
	if (s->size == 4) {
		uint32_t v32;
		memcpy(&v32, field, sizeof(v32));
		return v32;
	}
	uint64_t v;
	memcpy(&v, field, sizeof(v));
	return v;
}

/* Reads the decimal digits at TEXT into OUT and points END past them. Returns 0,
 * -EINVAL when TEXT does not start with a digit (so no sign, no space), or -ERANGE when
 * the number does not fit in 64 bits. */
static int config_parse_decimal(const char *text, uint64_t *out, const char **end)
{
	const char *p = text;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	*out = v;
	*end = p;
	return 0;
}

/* "2m", "1g", "3k" when BYTES is a whole number of that unit, else plain bytes. */
static void config_bytes_format(uint64_t bytes, char *buf, size_t len)
{
	static const struct {
		uint64_t unit;
		char suffix;
	} units[] = {{1ull << 30, 'g'}, {1ull << 20, 'm'}, {1ull << 10, 'k'}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (bytes != 0 && bytes % units[i].unit == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes / units[i].unit),
				 units[i].suffix);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* Parses "0-3,8,10-11" into OUT. Returns 0, or -EINVAL with the reason in WHY
 * (without the "expected ..." part, which the caller adds). */
static int config_cpus_parse(const char *text, cpu_set_t *out, char *why, size_t why_len)
{
	const char *p = text;
	CPU_ZERO(out);
	/* Each turn consumes at least one digit, so the loop ends within strlen(text). */
	for (;;) {
		uint64_t first, last;
		const char *end;
		int ret = config_parse_decimal(p, &first, &end);
		if (ret == -EINVAL) {
			why[0] = '\0';
			return -EINVAL;
		}
		if (ret == -ERANGE || first >= CPU_SETSIZE) {
			snprintf(why, why_len, "CPU %.*s is not below CPU_SETSIZE %d; ",
				 (int)(strspn(p, "0123456789")), p, CPU_SETSIZE);
			return -EINVAL;
		}
		last = first;
		p = end;
		if (*p == '-') {
			const char *range = p + 1;
			ret = config_parse_decimal(range, &last, &end);
			if (ret == -EINVAL) {
				why[0] = '\0';
				return -EINVAL;
			}
			if (ret == -ERANGE || last >= CPU_SETSIZE) {
				snprintf(why, why_len, "CPU %.*s is not below CPU_SETSIZE %d; ",
					 (int)(strspn(range, "0123456789")), range, CPU_SETSIZE);
				return -EINVAL;
			}
			if (last < first) {
				snprintf(why, why_len, "range %llu-%llu is reversed; ",
					 (unsigned long long)first, (unsigned long long)last);
				return -EINVAL;
			}
			p = end;
		}
		for (uint64_t cpu = first; cpu <= last; cpu++)
			CPU_SET((int)cpu, out);
		if (*p == '\0')
			return 0;
		if (*p != ',') {
			why[0] = '\0';
			return -EINVAL;
		}
		p++;
	}
}

/* Writes SET as a list like "0-3,8,10-11" ("none" when empty), ending in "..." when
 * LEN is too small for all of it. */
static void config_cpus_format(const cpu_set_t *set, char *buf, size_t len)
{
	ASSERT(len >= 8);
	size_t used = 0;
	buf[0] = '\0';
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, set))
			continue;
		int last = cpu;
		while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
			last++;
		char item[32];
		int n = last == cpu
			    ? snprintf(item, sizeof(item), "%s%d", used ? "," : "", cpu)
			    : snprintf(item, sizeof(item), "%s%d-%d", used ? "," : "", cpu, last);
		if (used + (size_t)n + 4 > len) {
			snprintf(buf + used, len - used, "...");
			return;
		}
		memcpy(buf + used, item, (size_t)n + 1);
		used += (size_t)n;
		cpu = last;
	}
	if (used == 0)
		snprintf(buf, len, "none");
}

/* The "expected ..." part of an invalid-value message for S. */
static void config_expected(const struct config_setting *s, char *buf, size_t len)
{
	char min[32], max[32], unit[32];
	switch (s->type) {
	case CONFIG_TYPE_UINT:
		snprintf(buf, len, "expected an integer from %llu to %llu",
			 (unsigned long long)s->min, (unsigned long long)s->max);
		break;
	case CONFIG_TYPE_BYTES:
		config_bytes_format(s->min, min, sizeof(min));
		config_bytes_format(s->max, max, sizeof(max));
		config_bytes_format(s->unit, unit, sizeof(unit));
		if (s->unit > 1)
			snprintf(buf, len,
				 "expected a multiple of %s from %s to %s (suffix k, m or g)", unit,
				 min, max);
		else
			snprintf(buf, len, "expected a size from %s to %s (suffix k, m or g)", min,
				 max);
		break;
	case CONFIG_TYPE_PATH:
		snprintf(buf, len, "expected a %spath shorter than %d bytes",
			 s->empty_ok ? "" : "non-empty ", LIMITS_CONFIG_VALUE_BYTES);
		break;
	case CONFIG_TYPE_CHOICE:
		snprintf(buf, len, "expected %s", s->choices);
		break;
	case CONFIG_TYPE_CPUS:
		snprintf(buf, len, "expected a CPU list like %s", CONFIG_CPUS_EXAMPLE);
		break;
	case CONFIG_TYPE_INT:
		snprintf(buf, len, "expected an integer from %lld to %lld", (long long)s->int_min,
			 (long long)s->int_max);
		break;
	}
}

/* Parses VALUE for S into CFG. KEY[0..KEY_LEN) is the name the user wrote, for the
 * message. Returns 0, or -EINVAL with ERR set and CFG untouched. */
static int config_setting_apply(struct config *cfg, const struct config_setting *s, const char *key,
				size_t key_len, const char *value, char *err, size_t err_len)
{
	char why[96] = "";
	uint64_t num;
	const char *end;
	int choice;
	cpu_set_t cpus;
	size_t value_len;

	switch (s->type) {
	case CONFIG_TYPE_UINT:
		if (config_parse_decimal(value, &num, &end) < 0 || *end != '\0' || num < s->min ||
		    num > s->max)
			goto out_invalid;
		config_uint_store(cfg, s, num);
		return 0;
	case CONFIG_TYPE_BYTES: {
		uint64_t mult = 1;
		if (config_parse_decimal(value, &num, &end) < 0)
			goto out_invalid;
		switch (*end) {
		case '\0':
			break;
		case 'k':
		case 'K':
			mult = 1ull << 10;
			end++;
			break;
		case 'm':
		case 'M':
			mult = 1ull << 20;
			end++;
			break;
		case 'g':
		case 'G':
			mult = 1ull << 30;
			end++;
			break;
		default:
			goto out_invalid;
		}
		if (*end != '\0' || num > UINT64_MAX / mult)
			goto out_invalid;
		num *= mult;
		if (num < s->min || num > s->max || num % s->unit != 0)
			goto out_invalid;
		config_uint_store(cfg, s, num);
		return 0;
	}
	case CONFIG_TYPE_PATH:
		value_len = strlen(value);
		if (value_len >= s->size || (value_len == 0 && !s->empty_ok))
			goto out_invalid;
		memcpy(config_field(cfg, s), value, value_len + 1);
		return 0;
	case CONFIG_TYPE_CHOICE:
		if (s->choice_parse(value, &choice) < 0)
			goto out_invalid;
		memcpy(config_field(cfg, s), &choice, sizeof(choice));
		return 0;
	case CONFIG_TYPE_CPUS:
		if (config_cpus_parse(value, &cpus, why, sizeof(why)) < 0)
			goto out_invalid;
		memcpy(config_field(cfg, s), &cpus, sizeof(cpus));
		cfg->cpus_set = true;
		return 0;
	case CONFIG_TYPE_INT: {
		bool negative = value[0] == '-';
		if (config_parse_decimal(value + negative, &num, &end) < 0 || *end != '\0' ||
		    num > (uint64_t)INT64_MAX)
			goto out_invalid;
		int64_t signed_num = negative ? -(int64_t)num : (int64_t)num;
		if (signed_num < s->int_min || signed_num > s->int_max)
			goto out_invalid;
		memcpy(config_field(cfg, s), &signed_num, sizeof(signed_num));
		return 0;
	}
	}
	ASSERT(!"unknown config type");

out_invalid:;
	char expected[160];
	config_expected(s, expected, sizeof(expected));
	snprintf(err, err_len, "invalid value '%s' for setting '%.*s': %s%s", value, (int)key_len,
		 key, why, expected);
	return -EINVAL;
}

/* The value of S in CFG as the help and the log show it. */
static void config_value_format(const struct config *cfg, const struct config_setting *s, char *buf,
				size_t len)
{
	int choice;
	const char *path;
	switch (s->type) {
	case CONFIG_TYPE_UINT:
		snprintf(buf, len, "%llu", (unsigned long long)config_uint_load(cfg, s));
		return;
	case CONFIG_TYPE_BYTES:
		config_bytes_format(config_uint_load(cfg, s), buf, len);
		return;
	case CONFIG_TYPE_PATH:
		path = config_field_const(cfg, s);
		if (path[0])
			snprintf(buf, len, "%s", path);
		else
			snprintf(buf, len, "(%s)", s->unset_text ? s->unset_text : "empty");
		return;
	case CONFIG_TYPE_CHOICE:
		memcpy(&choice, config_field_const(cfg, s), sizeof(choice));
		snprintf(buf, len, "%s", s->choice_name(choice));
		return;
	case CONFIG_TYPE_CPUS:
		if (cfg->cpus_set)
			config_cpus_format(&cfg->cpus, buf, len);
		else
			snprintf(buf, len, "(%s)", s->unset_text);
		return;
	case CONFIG_TYPE_INT: {
		int64_t v;
		memcpy(&v, config_field_const(cfg, s), sizeof(v));
		snprintf(buf, len, "%lld", (long long)v);
		return;
	}
	}
	ASSERT(!"unknown config type");
}

void config_defaults(struct config *cfg)
{
	DASSERT(config_settings_sanity());
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CONFIG_SETTINGS_COUNT; i++) {
		const struct config_setting *s = &config_settings[i];
		int choice;
		switch (s->type) {
		case CONFIG_TYPE_UINT:
		case CONFIG_TYPE_BYTES:
			config_uint_store(cfg, s, s->default_num);
			break;
		case CONFIG_TYPE_PATH:
			ASSERT(strlen(s->default_str) < s->size);
			memcpy(config_field(cfg, s), s->default_str, strlen(s->default_str) + 1);
			break;
		case CONFIG_TYPE_CHOICE:
			choice = (int)s->default_num;
			memcpy(config_field(cfg, s), &choice, sizeof(choice));
			break;
		case CONFIG_TYPE_CPUS:
			CPU_ZERO(&cfg->cpus);
			cfg->cpus_set = false;
			break;
		case CONFIG_TYPE_INT:
			memcpy(config_field(cfg, s), &s->int_default, sizeof(int64_t));
			break;
		}
	}
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t err_len)
{
	ASSERT(cfg && key && value);
	const struct config_setting *s = config_setting_find(key, strlen(key));
	if (!s) {
		snprintf(err, err_len, "unknown setting '%s'", key);
		return -EINVAL;
	}
	return config_setting_apply(cfg, s, key, strlen(key), value, err, err_len);
}

/* Trims isspace() characters from both ends of S in place. */
static char *config_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t err_len)
{
	ASSERT(cfg && path);
	char line[LIMITS_CONFIG_LINE_BYTES];
	char why[LIMITS_LOG_LINE_BYTES];
	unsigned long lineno = 0;
	int ret = 0;

	FILE *file = fopen(path, "re");
	if (!file) {
		ret = -errno;
		snprintf(err, err_len, "cannot read config file '%s': %s", path, strerror(-ret));
		return ret;
	}
	/* Bounded by the file's size: each turn consumes one line. */
	while (fgets(line, sizeof(line), file)) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			int next = getc(file);
			if (next != EOF) {
				snprintf(err, err_len, "%s:%lu: line longer than %d bytes", path,
					 lineno, LIMITS_CONFIG_LINE_BYTES - 2);
				ret = -EINVAL;
				goto out_close;
			}
		}
		char *text = config_trim(line);
		if (text[0] == '\0' || text[0] == '#')
			continue;
		char *eq = strchr(text, '=');
		if (!eq) {
			snprintf(err, err_len, "%s:%lu: expected key=value", path, lineno);
			ret = -EINVAL;
			goto out_close;
		}
		*eq = '\0';
		char *key = config_trim(text);
		char *value = config_trim(eq + 1);
		if (key[0] == '\0') {
			snprintf(err, err_len, "%s:%lu: expected key=value", path, lineno);
			ret = -EINVAL;
			goto out_close;
		}
		const struct config_setting *s = config_setting_find(key, strlen(key));
		if (!s) {
			snprintf(err, err_len, "%s:%lu: unknown setting '%s'", path, lineno, key);
			ret = -EINVAL;
			goto out_close;
		}
		if (s->flag_only) {
			snprintf(err, err_len,
				 "%s:%lu: setting '%s' can only be given on the command line", path,
				 lineno, key);
			ret = -EINVAL;
			goto out_close;
		}
		ret = config_setting_apply(cfg, s, key, strlen(key), value, why, sizeof(why));
		if (ret < 0) {
			snprintf(err, err_len, "%s:%lu: %s", path, lineno, why);
			goto out_close;
		}
	}
	if (ferror(file)) {
		ret = errno ? -errno : -EIO;
		snprintf(err, err_len, "cannot read config file '%s': %s", path, strerror(-ret));
	}
out_close:
	fclose(file);
	return ret;
}

/* One command-line setting: ARGV[i] and maybe ARGV[i + 1]. */
struct config_arg {
	bool help;			      /* --help or -h; nothing else is set */
	const struct config_setting *setting; /* what KEY names */
	const char *key;		      /* the name as written, after "--" */
	size_t key_len;			      /* bytes of key (it may end at '=') */
	const char *value;		      /* the value text */
	int used;			      /* argv elements this argument took: 1 or 2 */
};

/* Reads the argument at ARGV[I] into ARG. Returns 0, or -EINVAL with ERR set (ARG->used
 * is then 1). */
static int config_arg_next(int argc, char **argv, int i, struct config_arg *arg, char *err,
			   size_t err_len)
{
	const char *text = argv[i];
	memset(arg, 0, sizeof(*arg));
	arg->used = 1;
	if (strcmp(text, "--help") == 0 || strcmp(text, "-h") == 0) {
		arg->help = true;
		return 0;
	}
	if (strncmp(text, "--", 2) != 0 || text[2] == '\0' || text[2] == '=') {
		snprintf(err, err_len,
			 "unexpected argument '%s': settings are given as --NAME=VALUE or "
			 "--NAME VALUE",
			 text);
		return -EINVAL;
	}
	arg->key = text + 2;
	const char *eq = strchr(arg->key, '=');
	arg->key_len = eq ? (size_t)(eq - arg->key) : strlen(arg->key);
	arg->setting = config_setting_find(arg->key, arg->key_len);
	if (!arg->setting) {
		snprintf(err, err_len, "unknown setting '%.*s'", (int)arg->key_len, arg->key);
		return -EINVAL;
	}
	if (eq) {
		arg->value = eq + 1;
		return 0;
	}
	if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
		snprintf(err, err_len, "missing value for setting '%s'", arg->key);
		return -EINVAL;
	}
	arg->value = argv[i + 1];
	arg->used = 2;
	return 0;
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t err_len)
{
	ASSERT(cfg && argc >= 0 && (argc == 0 || argv));
	struct config_arg arg;
	const char *config_file = NULL;
	char ignored[8];
	int ret;

	config_defaults(cfg);
	/* First pass: --help wins over everything, and the file goes under the flags
	 * wherever --config appears. Bad arguments are reported by the second pass. */
	for (int i = 1; i < argc; i += arg.used) {
		if (config_arg_next(argc, argv, i, &arg, ignored, sizeof(ignored)) < 0)
			continue;
		if (arg.help)
			return CONFIG_HELP;
		if (arg.setting->offset == offsetof(struct config, config_path))
			config_file = arg.value;
	}
	if (config_file && config_file[0]) {
		ret = config_set(cfg, "config", config_file, err, err_len);
		if (ret < 0)
			return -EINVAL;
		ret = config_load_file(cfg, cfg->config_path, err, err_len);
		if (ret < 0)
			return -EINVAL;
	}
	for (int i = 1; i < argc; i += arg.used) {
		ret = config_arg_next(argc, argv, i, &arg, err, err_len);
		if (ret < 0)
			return -EINVAL;
		ret = config_setting_apply(cfg, arg.setting, arg.key, arg.key_len, arg.value, err,
					   err_len);
		if (ret < 0)
			return -EINVAL;
	}
	return 0;
}

void config_print_help(FILE *out)
{
	struct config defaults;
	char flag[64], value[LIMITS_CONFIG_VALUE_BYTES], min[32], max[32], unit[32];

	config_defaults(&defaults);
	fprintf(out,
		"usage: sluiced [--config PATH] [--NAME VALUE | --NAME=VALUE]... [--help]\n"
		"\n"
		"Each setting comes from its default, then the --config file, then the flags,\n"
		"a later source winning. The file holds NAME=VALUE lines; blank lines and lines\n"
		"starting with '#' are skipped. NAME is the flag name or, where one is shown,\n"
		"Kafka's name for the setting.\n"
		"\n");
	for (size_t i = 0; i < CONFIG_SETTINGS_COUNT; i++) {
		const struct config_setting *s = &config_settings[i];
		snprintf(flag, sizeof(flag), "--%s %s", s->name, s->metavar);
		config_value_format(&defaults, s, value, sizeof(value));
		fprintf(out, "  %-*s %s%s%sdefault: %s\n      %s", CONFIG_HELP_FLAG_COLUMN, flag,
			s->kafka ? "Kafka: " : "", s->kafka ? s->kafka : "", s->kafka ? "; " : "",
			value, s->help);
		if (s->type == CONFIG_TYPE_UINT) {
			fprintf(out, " (%llu-%llu)", (unsigned long long)s->min,
				(unsigned long long)s->max);
		} else if (s->type == CONFIG_TYPE_BYTES) {
			config_bytes_format(s->min, min, sizeof(min));
			config_bytes_format(s->max, max, sizeof(max));
			config_bytes_format(s->unit, unit, sizeof(unit));
			if (s->unit > 1)
				fprintf(out, " (%s-%s, a multiple of %s)", min, max, unit);
			else
				fprintf(out, " (%s-%s)", min, max);
		}
		fprintf(out, "\n");
	}
	fprintf(out, "  %s\n      print this help and exit\n", "-h, --help");
}

int config_shard_cpus(const struct config *cfg, int *cpus, uint32_t cpus_max, uint32_t *count,
		      char *err, size_t err_len)
{
	ASSERT(cfg && cpus && count);
	cpu_set_t mask;
	char mask_text[256], cpus_text[256];

	CPU_ZERO(&mask);
	if (sched_getaffinity(0, sizeof(mask), &mask) < 0) {
		int ret = -errno;
		snprintf(err, err_len, "cannot read the process affinity mask: %s", strerror(-ret));
		return ret;
	}
	config_cpus_format(&mask, mask_text, sizeof(mask_text));

	const cpu_set_t *candidates = &mask;
	if (cfg->cpus_set) {
		config_cpus_format(&cfg->cpus, cpus_text, sizeof(cpus_text));
		for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
			if (CPU_ISSET(cpu, &cfg->cpus) && !CPU_ISSET(cpu, &mask)) {
				snprintf(err, err_len,
					 "CPU %d of --cpus %s is not in the process affinity "
					 "mask (%s)",
					 cpu, cpus_text, mask_text);
				return -EINVAL;
			}
		}
		candidates = &cfg->cpus;
	}

	uint32_t available = (uint32_t)CPU_COUNT(candidates);
	ASSERT(available >= 1);
	if (cfg->shards > available) {
		snprintf(err, err_len, "--shards %u exceeds the %u CPUs available (%s %s)",
			 cfg->shards, available, cfg->cpus_set ? "--cpus" : "affinity mask",
			 cfg->cpus_set ? cpus_text : mask_text);
		return -EINVAL;
	}
	uint32_t n = cfg->shards ? cfg->shards : available;
	if (n > LIMITS_SHARDS_MAX) {
		LOG_WARN("config: running %u shards on the first %u of %u CPUs "
			 "(LIMITS_SHARDS_MAX)",
			 LIMITS_SHARDS_MAX, LIMITS_SHARDS_MAX, n);
		n = LIMITS_SHARDS_MAX;
	}
	if (n > cpus_max) {
		snprintf(err, err_len, "%u shards do not fit a list of %u CPUs", n, cpus_max);
		return -ENOSPC;
	}
	if ((uint32_t)cfg->port + n - 1 > CONFIG_PORT_MAX) {
		snprintf(err, err_len, "--port %u with %u shards needs ports up to %u, above %u",
			 cfg->port, n, (uint32_t)cfg->port + n - 1, CONFIG_PORT_MAX);
		return -EINVAL;
	}

	uint32_t filled = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && filled < n; cpu++) {
		if (CPU_ISSET(cpu, candidates))
			cpus[filled++] = cpu;
	}
	ASSERT(filled == n);
	*count = n;
	return 0;
}

void config_log(const struct config *cfg)
{
	char value[LIMITS_CONFIG_VALUE_BYTES];
	for (size_t i = 0; i < CONFIG_SETTINGS_COUNT; i++) {
		const struct config_setting *s = &config_settings[i];
		config_value_format(cfg, s, value, sizeof(value));
		LOG_INFO("config: %s=%s", s->name, value);
	}
}
