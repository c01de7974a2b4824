/*
 * core/config.h: sluiced's settings. A setting comes from its built-in default, then a
 * key=value file named with --config PATH, then command-line flags, each later source
 * overriding the earlier one. One table in config.c (name, Kafka alias, type, default,
 * range, help) drives the flag parser, the file parser, --help and every error message,
 * so a setting is added in exactly one place. Every key is accepted both by its flag
 * name (`data-dir`) and, where Kafka has the same setting, by Kafka's name (`log.dirs`),
 * in the file and as a flag: `--data-dir=X`, `--data-dir X`, `--log.dirs=X`.
 *
 * This module only parses and validates; it does not open the data dir, start shards or
 * apply the log level (the daemon does that with the values found here). Errors are
 * returned as a negative errno plus one grep-able line in a caller-supplied buffer,
 * never printed, so the caller decides where they go:
 *
 *   unknown setting 'foo'
 *   invalid value 'abc' for setting 'port': expected an integer from 1 to 65535
 *   sluice.conf:7: expected key=value
 */
#ifndef SLUICE_CORE_CONFIG_H
#define SLUICE_CORE_CONFIG_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/limits.h"
#include "core/logger.h"

/* What config_parse_args returns when --help or -h was given: the caller prints
 * config_print_help and exits 0. Positive, so it can never be mistaken for -errno. */
#define CONFIG_HELP 1

enum config_fsync {
	CONFIG_FSYNC_ALWAYS = 0, /* acks=-1 waits for fdatasync of the shard log (default) */
	CONFIG_FSYNC_NEVER = 1,	 /* never fsync: benchmarks against Kafka's unsynced numbers */
};

/*
 * Every effective setting. Invariants after config_defaults or a successful
 * config_set/config_load_file/config_parse_args: each numeric field lies in the range the
 * table in config.c gives it, every string is NUL-terminated, data_dir is non-empty, and
 * cpus is non-empty whenever cpus_set is true.
 */
struct config {
	uint16_t port;				  /* --port: base port, shard i on port + i */
	char data_dir[LIMITS_CONFIG_VALUE_BYTES]; /* --data-dir, Kafka log.dirs */
	uint32_t shards;			  /* --shards: 0 = one per available CPU */
	cpu_set_t cpus;				  /* --cpus: CPUs to run shards on */
	bool cpus_set;				  /* false: use the process affinity mask */
	enum config_fsync fsync;		  /* --fsync always|never */
	enum logger_level log_level;		  /* --log-level error|warn|info|debug */
	char log_file[LIMITS_CONFIG_VALUE_BYTES]; /* --log-file: empty = stderr; SIGHUP reopens */
	uint64_t pool_bytes;			  /* --pool-bytes: buffer pool per shard */
	char config_path[LIMITS_CONFIG_VALUE_BYTES]; /* --config: the file read, empty if none */
	char listen_host[LIMITS_CONFIG_VALUE_BYTES]; /* --listen-host: address to bind */
	char advertised_host[LIMITS_CONFIG_VALUE_BYTES]; /* --advertised-host: in Metadata;
							   * empty = gethostname() */
	uint32_t num_partitions;     /* num.partitions of auto-created topics; 0 = shards */
	int auto_create_topics;      /* auto.create.topics.enable: 1 or 0 */
	int64_t retention_ms;        /* log.retention.ms default; -1 = forever */
	int64_t retention_bytes;     /* log.retention.bytes default; -1 = no limit */
	uint32_t retention_check_ms; /* log.retention.check.interval.ms */
	uint64_t segment_bytes;      /* log.segment.bytes: shard-log segment size */
	uint64_t request_max_bytes;  /* socket.request.max.bytes: larger requests close */
	uint32_t max_connections;    /* connections per shard */
	uint32_t group_initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
	uint32_t group_min_session_timeout_ms;	   /* group.min.session.timeout.ms */
	uint32_t group_max_session_timeout_ms;	   /* group.max.session.timeout.ms */
	uint32_t offsets_retention_minutes;	   /* offsets.retention.minutes */
	uint32_t offsets_topic_partitions; /* offsets.topic.num.partitions; 0 = shards */
	uint32_t offsets_snapshot_ms;	   /* how often live offsets are restated */
};

/* Sets every field to its built-in default (port 9092, data dir ./sluice-data, one shard
 * per CPU of the affinity mask, fsync always, log level info, log to stderr, pool of
 * LIMITS_POOL_REGION_BYTES, no config file). */
void config_defaults(struct config *cfg);

/*
 * Sets the setting named KEY (flag name without the dashes, or its Kafka name) from the
 * text VALUE. Numbers are decimal with no sign, no spaces and no trailing characters;
 * pool-bytes also takes a k, m or g suffix (KiB, MiB, GiB). Returns 0, or -EINVAL with
 * one line in ERR naming the key and the value, in which case CFG is left unchanged.
 */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t err_len);

/*
 * Applies the key=value lines of the file PATH on top of CFG, in file order (a later
 * line for the same setting wins). Blank lines and lines whose first non-blank
 * character is '#' are skipped; whitespace around key and value is trimmed; there are
 * no trailing comments. `config` cannot be set from a file. Returns 0; -EINVAL with
 * "PATH:LINE: ..." in ERR for a bad line (settings from earlier lines stay applied);
 * or the -errno of open/read with "cannot read config file 'PATH': ..." in ERR.
 */
int config_load_file(struct config *cfg, const char *path, char *err, size_t err_len);

/*
 * Fills CFG from the command line ARGV[1..ARGC-1]: the defaults, then the file of the
 * last --config in ARGV (found by a first pass), then every flag in order. A flag is
 * `--KEY=VALUE` or `--KEY VALUE` (a separate VALUE may not start with "--"); any other
 * argument is an error. Returns 0; CONFIG_HELP when --help or -h appears anywhere (CFG
 * then holds the defaults); or -EINVAL with one line in ERR.
 */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t err_len);

/* Writes the usage line and, for every setting, its flag, Kafka name if any, default,
 * allowed values and one line of help. */
void config_print_help(FILE *out);

/*
 * Lists the CPU each shard is pinned to, shard 0 first, into CPUS (room for CPUS_MAX;
 * LIMITS_SHARDS_MAX is always enough) and their number into COUNT. The candidates are
 * the --cpus set, each of which must also be in the process affinity mask
 * (sched_getaffinity), else the affinity mask itself, in ascending order; --shards N
 * takes the first N of them. More candidates than LIMITS_SHARDS_MAX are capped with a
 * warning. Also checks that port + COUNT - 1 is still a port. Returns 0, or -EINVAL
 * with one line in ERR naming the numbers involved ("--shards 4 exceeds the 2 CPUs
 * available (affinity mask 0-1)"), or the -errno of sched_getaffinity.
 */
int config_shard_cpus(const struct config *cfg, int *cpus, uint32_t cpus_max, uint32_t *count,
		      char *err, size_t err_len);

/* Logs each effective setting as its own LOG_INFO line: "config: port=9092". */
void config_log(const struct config *cfg);

#endif
