/*
 * tests/unit/check_config.c: Check tests of core/config: what a user of sluiced sees
 * from its settings. The defaults; each way of giving a flag (--k v, --k=v, Kafka's
 * name); a real config file with comments and blank lines, and flags overriding it;
 * the exact error line for an unknown key or a bad value, from a flag and from a file;
 * --help; the help text listing every flag with its default; the CPUs shards are pinned
 * to under --shards and --cpus, against this process's real affinity mask; and the
 * settings logged at start. It does not start shards or open the data dir.
 */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"

#define ERR_BYTES 1024

/* config_parse_args over a NULL-terminated list of arguments after "sluiced". */
#define PARSE(cfg, err, ...)                                                                       \
	parse_args((cfg), (err), (const char *[]){"sluiced", __VA_ARGS__, NULL})

static int parse_args(struct config *cfg, char *err, const char **args)
{
	int argc = 0;
	while (args[argc])
		argc++;
	err[0] = '\0';
	return config_parse_args(cfg, argc, (char **)args, err, ERR_BYTES);
}

/* Writes TEXT to a new temporary file and returns its path (static storage). */
static const char *write_temp_file(const char *text)
{
	static char path[PATH_MAX];
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/check_config.XXXXXX", dir && dir[0] ? dir : "/tmp");
	int fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
	size_t len = strlen(text);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* The test's own rendering of a CPU set ("0-1,4"), to compare with error lines. */
static void cpus_text(const cpu_set_t *set, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, set))
			continue;
		int last = cpu;
		while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
			last++;
		if (last == cpu)
			used += snprintf(buf + used, len - used, "%s%d", used ? "," : "", cpu);
		else
			used +=
			    snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", cpu, last);
		ck_assert_uint_lt(used, len);
		cpu = last;
	}
}

static void affinity(cpu_set_t *mask)
{
	CPU_ZERO(mask);
	ck_assert_int_eq(sched_getaffinity(0, sizeof(*mask), mask), 0);
}

static int first_cpu_outside(const cpu_set_t *mask)
{
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, mask))
			return cpu;
	}
	return -1;
}

START_TEST(test_defaults)
{
	struct config cfg, parsed;
	char err[ERR_BYTES];
	config_defaults(&cfg);
	ck_assert_uint_eq(cfg.port, 9092);
	ck_assert_str_eq(cfg.data_dir, "./sluice-data");
	ck_assert_uint_eq(cfg.shards, 0);
	ck_assert(!cfg.cpus_set);
	ck_assert_int_eq(cfg.fsync, CONFIG_FSYNC_ALWAYS);
	ck_assert_int_eq(cfg.log_level, LOGGER_INFO);
	ck_assert_str_eq(cfg.log_file, "");
	ck_assert_uint_eq(cfg.pool_bytes, LIMITS_POOL_REGION_BYTES);
	ck_assert_str_eq(cfg.config_path, "");

	char *argv[] = {"sluiced", NULL};
	memset(&parsed, 0xa5, sizeof(parsed));
	ck_assert_int_eq(config_parse_args(&parsed, 1, argv, err, sizeof(err)), 0);
	ck_assert_uint_eq(parsed.port, 9092);
	ck_assert_str_eq(parsed.data_dir, "./sluice-data");
	ck_assert_uint_eq(parsed.pool_bytes, LIMITS_POOL_REGION_BYTES);
	ck_assert(!parsed.cpus_set);
}
END_TEST

START_TEST(test_flag_separate_value)
{
	struct config cfg;
	char err[ERR_BYTES];
	ck_assert_int_eq(PARSE(&cfg, err, "--port", "9100", "--data-dir", "/srv/sluice", "--fsync",
			       "never", "--log-level", "debug"),
			 0);
	ck_assert_uint_eq(cfg.port, 9100);
	ck_assert_str_eq(cfg.data_dir, "/srv/sluice");
	ck_assert_int_eq(cfg.fsync, CONFIG_FSYNC_NEVER);
	ck_assert_int_eq(cfg.log_level, LOGGER_DEBUG);
}
END_TEST

START_TEST(test_flag_equals_value)
{
	struct config cfg;
	char err[ERR_BYTES];
	ck_assert_int_eq(PARSE(&cfg, err, "--port=9200", "--shards=2", "--cpus=0-3,8,10-11",
			       "--log-file=/var/log/sluice.log", "--pool-bytes=4m"),
			 0);
	ck_assert_uint_eq(cfg.port, 9200);
	ck_assert_uint_eq(cfg.shards, 2);
	ck_assert(cfg.cpus_set);
	ck_assert_int_eq(CPU_COUNT(&cfg.cpus), 7);
	const int expect[] = {0, 1, 2, 3, 8, 10, 11};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		ck_assert_msg(CPU_ISSET(expect[i], &cfg.cpus), "CPU %d missing", expect[i]);
	ck_assert_str_eq(cfg.log_file, "/var/log/sluice.log");
	ck_assert_uint_eq(cfg.pool_bytes, 4u << 20);

	/* A value may itself contain '=' and may be empty where the setting allows it. */
	ck_assert_int_eq(PARSE(&cfg, err, "--data-dir=/a=b", "--log-file="), 0);
	ck_assert_str_eq(cfg.data_dir, "/a=b");
	ck_assert_str_eq(cfg.log_file, "");
}
END_TEST

START_TEST(test_flag_kafka_alias)
{
	struct config cfg;
	char err[ERR_BYTES];
	ck_assert_int_eq(PARSE(&cfg, err, "--log.dirs=/data/a"), 0);
	ck_assert_str_eq(cfg.data_dir, "/data/a");
	ck_assert_int_eq(PARSE(&cfg, err, "--log.dirs", "/data/b"), 0);
	ck_assert_str_eq(cfg.data_dir, "/data/b");

	ck_assert_int_eq(config_set(&cfg, "log.dirs", "/data/c", err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.data_dir, "/data/c");
	ck_assert_int_eq(config_set(&cfg, "port", "19092", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.port, 19092);
}
END_TEST

START_TEST(test_pool_bytes_suffixes)
{
	struct config cfg;
	char err[ERR_BYTES];
	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "pool-bytes", "2048k", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.pool_bytes, 2u << 20);
	ck_assert_int_eq(config_set(&cfg, "pool-bytes", "1g", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.pool_bytes, 1u << 30);
	ck_assert_int_eq(config_set(&cfg, "pool-bytes", "4194304", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.pool_bytes, 4u << 20);
}
END_TEST

START_TEST(test_file_loading)
{
	struct config cfg;
	char err[ERR_BYTES];
	const char *path = write_temp_file("# sluice test config\n"
					   "\n"
					   "   # an indented comment\n"
					   "port=9300\n"
					   "  log.dirs  =  /var/lib/sluice  \n"
					   "\t\n"
					   "fsync = never\r\n"
					   "log-level=warn\n"
					   "pool-bytes=64m");
	config_defaults(&cfg);
	ck_assert_msg(config_load_file(&cfg, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.port, 9300);
	ck_assert_str_eq(cfg.data_dir, "/var/lib/sluice");
	ck_assert_int_eq(cfg.fsync, CONFIG_FSYNC_NEVER);
	ck_assert_int_eq(cfg.log_level, LOGGER_WARN);
	ck_assert_uint_eq(cfg.pool_bytes, 64u << 20);

	ck_assert_msg(PARSE(&cfg, err, "--config", path) == 0, "%s", err);
	ck_assert_str_eq(cfg.config_path, path);
	ck_assert_uint_eq(cfg.port, 9300);
	ck_assert_str_eq(cfg.data_dir, "/var/lib/sluice");
	unlink(path);
}
END_TEST

START_TEST(test_flags_override_file)
{
	struct config cfg;
	char err[ERR_BYTES];
	const char *path = write_temp_file("port=9300\ndata-dir=/from/file\nfsync=never\n");
	/* The file goes under the flags even when --config comes after them. */
	ck_assert_msg(
	    PARSE(&cfg, err, "--port=9400", "--config", path, "--log.dirs", "/from/flag") == 0,
	    "%s", err);
	ck_assert_uint_eq(cfg.port, 9400);
	ck_assert_str_eq(cfg.data_dir, "/from/flag");
	ck_assert_int_eq(cfg.fsync, CONFIG_FSYNC_NEVER); /* only the file set it */
	unlink(path);
}
END_TEST

START_TEST(test_unknown_key_flag)
{
	struct config cfg;
	char err[ERR_BYTES];
	ck_assert_int_eq(PARSE(&cfg, err, "--foo=1"), -EINVAL);
	ck_assert_str_eq(err, "unknown setting 'foo'");
	ck_assert_int_eq(PARSE(&cfg, err, "--port", "9092", "--foo", "1"), -EINVAL);
	ck_assert_str_eq(err, "unknown setting 'foo'");
	ck_assert_int_eq(config_set(&cfg, "foo", "1", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "unknown setting 'foo'");

	ck_assert_int_eq(PARSE(&cfg, err, "stray"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "unexpected argument 'stray'"));
	ck_assert_int_eq(PARSE(&cfg, err, "--port"), -EINVAL);
	ck_assert_str_eq(err, "missing value for setting 'port'");
}
END_TEST

START_TEST(test_unknown_key_file)
{
	struct config cfg;
	char err[ERR_BYTES], expect[ERR_BYTES];
	const char *path = write_temp_file("# comment\nport=9300\nfoo=1\n");
	config_defaults(&cfg);
	ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(expect, sizeof(expect), "%s:3: unknown setting 'foo'", path);
	ck_assert_str_eq(err, expect);
	ck_assert_int_eq(PARSE(&cfg, err, "--config", path), -EINVAL);
	ck_assert_str_eq(err, expect);
	unlink(path);

	path = write_temp_file("port=9300\n\njust some words\n");
	ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(expect, sizeof(expect), "%s:3: expected key=value", path);
	ck_assert_str_eq(err, expect);
	unlink(path);

	path = write_temp_file("config=/etc/other.conf\n");
	ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(expect, sizeof(expect),
		 "%s:1: setting 'config' can only be given on the command line", path);
	ck_assert_str_eq(err, expect);
	unlink(path);
}
END_TEST

/* A bad value for KEY, given as a flag and through config_set: the exact line. */
static void check_bad_value(const char *key, const char *value, const char *expect)
{
	struct config cfg, before;
	char err[ERR_BYTES], flag[256];
	config_defaults(&cfg);
	before = cfg;
	ck_assert_int_eq(config_set(&cfg, key, value, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, expect);
	ck_assert_msg(memcmp(&cfg, &before, sizeof(cfg)) == 0, "a rejected %s changed the config",
		      key);
	snprintf(flag, sizeof(flag), "--%s=%s", key, value);
	ck_assert_int_eq(PARSE(&cfg, err, flag), -EINVAL);
	ck_assert_str_eq(err, expect);
}

START_TEST(test_bad_values)
{
	const char *port = "expected an integer from 1 to 65535";
	char expect[ERR_BYTES];
	static const char *const bad_ports[] = {
	    "0", "70000", "abc", "-1", "+5", "9092x", " 9092", "", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++) {
		snprintf(expect, sizeof(expect), "invalid value '%s' for setting 'port': %s",
			 bad_ports[i], port);
		check_bad_value("port", bad_ports[i], expect);
	}
	check_bad_value("fsync", "sometimes",
			"invalid value 'sometimes' for setting 'fsync': expected always or never");
	check_bad_value("log-level", "loud",
			"invalid value 'loud' for setting 'log-level': "
			"expected error, warn, info or debug");
	const char *pool = "expected a multiple of 2m from 2m to 1g (suffix k, m or g)";
	static const char *const bad_pools[] = {
	    "1k", "3m", "2g", "2x", "-2m", "m", "99999999999999999999g"};
	for (size_t i = 0; i < sizeof(bad_pools) / sizeof(bad_pools[0]); i++) {
		snprintf(expect, sizeof(expect), "invalid value '%s' for setting 'pool-bytes': %s",
			 bad_pools[i], pool);
		check_bad_value("pool-bytes", bad_pools[i], expect);
	}
	check_bad_value("shards", "257",
			"invalid value '257' for setting 'shards': "
			"expected an integer from 0 to 256");
	check_bad_value("data-dir", "",
			"invalid value '' for setting 'data-dir': "
			"expected a non-empty path shorter than 4096 bytes");
	check_bad_value("log.dirs", "",
			"invalid value '' for setting 'log.dirs': "
			"expected a non-empty path shorter than 4096 bytes");
}
END_TEST

START_TEST(test_bad_cpus)
{
	check_bad_value("cpus", "3-1",
			"invalid value '3-1' for setting 'cpus': range 3-1 is reversed; "
			"expected a CPU list like 0-3,8,10-11");
	check_bad_value("cpus", "0-1024",
			"invalid value '0-1024' for setting 'cpus': CPU 1024 is not below "
			"CPU_SETSIZE 1024; expected a CPU list like 0-3,8,10-11");
	check_bad_value("cpus", "4096",
			"invalid value '4096' for setting 'cpus': CPU 4096 is not below "
			"CPU_SETSIZE 1024; expected a CPU list like 0-3,8,10-11");
	static const char *const malformed[] = {"",   "0,", ",0",  "0,,1", "a",
						"1-", "-1", "0 1", "0-3:2"};
	char expect[ERR_BYTES];
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		snprintf(expect, sizeof(expect),
			 "invalid value '%s' for setting 'cpus': "
			 "expected a CPU list like 0-3,8,10-11",
			 malformed[i]);
		check_bad_value("cpus", malformed[i], expect);
	}
}
END_TEST

START_TEST(test_bad_value_in_file)
{
	struct config cfg;
	char err[ERR_BYTES], expect[ERR_BYTES];
	const char *path = write_temp_file("port=9300\n# next line is wrong\nport = 70000\n");
	config_defaults(&cfg);
	ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(expect, sizeof(expect),
		 "%s:3: invalid value '70000' for setting 'port': "
		 "expected an integer from 1 to 65535",
		 path);
	ck_assert_str_eq(err, expect);
	unlink(path);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config cfg;
	char err[ERR_BYTES];
	const char *path = "/nonexistent-sluice-dir/sluice.conf";
	config_defaults(&cfg);
	ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "cannot read config file '/nonexistent-sluice-dir/sluice.conf': "
			      "No such file or directory");
	ck_assert_int_eq(PARSE(&cfg, err, "--config", path), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(test_help)
{
	struct config cfg;
	char err[ERR_BYTES];
	ck_assert_int_eq(PARSE(&cfg, err, "--help"), CONFIG_HELP);
	ck_assert_int_eq(PARSE(&cfg, err, "-h"), CONFIG_HELP);
	/* --help wins even after an argument that would be an error. */
	ck_assert_int_eq(PARSE(&cfg, err, "--port=abc", "--foo", "--help"), CONFIG_HELP);
	ck_assert_uint_eq(cfg.port, 9092);
}
END_TEST

/* The line of HELP that starts with "  --NAME ". */
static const char *help_line(const char *help, const char *name, char *line, size_t len)
{
	char start[64];
	snprintf(start, sizeof(start), "\n  --%s ", name);
	const char *p = strstr(help, start);
	ck_assert_msg(p != NULL, "--help does not list --%s:\n%s", name, help);
	p++;
	size_t n = strcspn(p, "\n");
	ck_assert_uint_lt(n, len);
	memcpy(line, p, n);
	line[n] = '\0';
	return line;
}

START_TEST(test_print_help)
{
	char *help = NULL;
	size_t help_len = 0;
	FILE *out = open_memstream(&help, &help_len);
	ck_assert_ptr_nonnull(out);
	config_print_help(out);
	ck_assert_int_eq(fclose(out), 0);

	ck_assert_msg(strncmp(help, "usage: sluiced ", 15) == 0, "%s", help);
	static const struct {
		const char *name, *default_text, *kafka;
	} expect[] = {
	    {"config", "default: (none)", NULL},
	    {"port", "default: 9092", "Kafka: port"},
	    {"data-dir", "default: ./sluice-data", "Kafka: log.dirs"},
	    {"shards", "default: 0", NULL},
	    {"cpus", "default: (affinity mask)", NULL},
	    {"fsync", "default: always", NULL},
	    {"log-level", "default: info", NULL},
	    {"log-file", "default: (stderr)", NULL},
	    {"pool-bytes", "default: 256m", NULL},
	};
	char line[512];
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		help_line(help, expect[i].name, line, sizeof(line));
		ck_assert_msg(strstr(line, expect[i].default_text), "'%s' lacks '%s'", line,
			      expect[i].default_text);
		if (expect[i].kafka)
			ck_assert_msg(strstr(line, expect[i].kafka), "'%s' lacks '%s'", line,
				      expect[i].kafka);
	}
	ck_assert_ptr_nonnull(strstr(help, "--help"));
	ck_assert_ptr_nonnull(strstr(help, "--fsync always|never "));
	ck_assert_ptr_nonnull(strstr(help, "--log-level error|warn|info|debug "));
	ck_assert_ptr_nonnull(strstr(help, "(1-65535)"));
	free(help);
}
END_TEST

START_TEST(test_shard_cpus_default)
{
	struct config cfg;
	cpu_set_t mask;
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t count = 0;
	char err[ERR_BYTES];
	affinity(&mask);
	config_defaults(&cfg);
	ck_assert_msg(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)) ==
			  0,
		      "%s", err);
	uint32_t expect = (uint32_t)CPU_COUNT(&mask);
	ck_assert_uint_eq(count, expect < LIMITS_SHARDS_MAX ? expect : LIMITS_SHARDS_MAX);
	for (uint32_t i = 0; i < count; i++) {
		ck_assert(CPU_ISSET(cpus[i], &mask));
		if (i > 0)
			ck_assert_int_lt(cpus[i - 1], cpus[i]);
	}
}
END_TEST

START_TEST(test_shard_cpus_one)
{
	struct config cfg;
	cpu_set_t mask;
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t count = 0;
	char err[ERR_BYTES];
	affinity(&mask);
	ck_assert_int_eq(PARSE(&cfg, err, "--shards", "1"), 0);
	ck_assert_msg(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)) ==
			  0,
		      "%s", err);
	ck_assert_uint_eq(count, 1);
	int first = 0;
	while (!CPU_ISSET(first, &mask))
		first++;
	ck_assert_int_eq(cpus[0], first);
}
END_TEST

START_TEST(test_shard_cpus_too_many)
{
	struct config cfg;
	cpu_set_t mask;
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t count = 0;
	char err[ERR_BYTES], mask_text[512], flag[32], expect[ERR_BYTES];
	affinity(&mask);
	int available = CPU_COUNT(&mask);
	if (available >= LIMITS_SHARDS_MAX)
		return; /* reported as SKIP through the TCase name, see main() */
	cpus_text(&mask, mask_text, sizeof(mask_text));
	snprintf(flag, sizeof(flag), "--shards=%d", available + 1);
	ck_assert_int_eq(PARSE(&cfg, err, flag), 0);
	ck_assert_int_eq(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)),
			 -EINVAL);
	snprintf(expect, sizeof(expect),
		 "--shards %d exceeds the %d CPUs available (affinity mask %s)", available + 1,
		 available, mask_text);
	ck_assert_str_eq(err, expect);
}
END_TEST

START_TEST(test_shard_cpus_list)
{
	struct config cfg;
	cpu_set_t mask;
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t count = 0;
	char err[ERR_BYTES], list[32];
	affinity(&mask);
	int last = CPU_SETSIZE - 1;
	while (!CPU_ISSET(last, &mask))
		last--;
	snprintf(list, sizeof(list), "--cpus=%d", last);
	ck_assert_int_eq(PARSE(&cfg, err, list), 0);
	ck_assert_msg(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)) ==
			  0,
		      "%s", err);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(cpus[0], last);

	/* --shards 2 over a one-CPU --cpus names the list, not the mask. */
	ck_assert_int_eq(PARSE(&cfg, err, list, "--shards", "2"), 0);
	ck_assert_int_eq(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)),
			 -EINVAL);
	char expect[ERR_BYTES];
	snprintf(expect, sizeof(expect), "--shards 2 exceeds the 1 CPUs available (--cpus %d)",
		 last);
	ck_assert_str_eq(err, expect);
}
END_TEST

START_TEST(test_shard_cpus_outside_mask)
{
	struct config cfg;
	cpu_set_t mask;
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t count = 0;
	char err[ERR_BYTES], flag[32], needle[64];
	affinity(&mask);
	int outside = first_cpu_outside(&mask);
	if (outside < 0)
		return; /* reported as SKIP through the TCase name, see main() */
	snprintf(flag, sizeof(flag), "--cpus=%d", outside);
	ck_assert_int_eq(PARSE(&cfg, err, flag), 0);
	ck_assert_int_eq(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)),
			 -EINVAL);
	snprintf(needle, sizeof(needle), "CPU %d of --cpus %d is not in the process affinity mask",
		 outside, outside);
	ck_assert_msg(strstr(err, needle), "'%s' lacks '%s'", err, needle);
}
END_TEST

START_TEST(test_shard_cpus_port_range)
{
	struct config cfg;
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t count = 0;
	char err[ERR_BYTES];
	ck_assert_int_eq(PARSE(&cfg, err, "--port=65535", "--shards=1"), 0);
	ck_assert_int_eq(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)),
			 0);
	cpu_set_t mask;
	affinity(&mask);
	if (CPU_COUNT(&mask) < 2)
		return; /* reported as SKIP through the TCase name, see main() */
	ck_assert_int_eq(PARSE(&cfg, err, "--port=65535", "--shards=2"), 0);
	ck_assert_int_eq(config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &count, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "--port 65535 with 2 shards needs ports up to 65536, above 65535");
}
END_TEST

START_TEST(test_config_log)
{
	struct config cfg;
	char err[ERR_BYTES];
	const char *path = write_temp_file("");
	ck_assert_int_eq(logger_open(path), 0);
	ck_assert_int_eq(PARSE(&cfg, err, "--port=9500", "--cpus=0-3,8", "--fsync=never"), 0);
	config_log(&cfg);
	ck_assert_int_eq(logger_open(NULL), 0);

	char text[8192];
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	static const char *const lines[] = {
	    "config: port=9500\n",	 "config: data-dir=./sluice-data\n",
	    "config: cpus=0-3,8\n",	 "config: fsync=never\n",
	    "config: log-level=info\n",	 "config: log-file=(stderr)\n",
	    "config: pool-bytes=256m\n", "config: shards=0\n",
	    "config: config=(none)\n",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(strstr(text, lines[i]), "log lacks '%s':\n%s", lines[i], text);
	unlink(path);
}
END_TEST

START_TEST(test_signed_and_boolean_settings)
{
	struct config cfg;
	char err[512];
	config_defaults(&cfg);
	ck_assert_int_eq(cfg.retention_bytes, -1);
	ck_assert_int_eq(cfg.auto_create_topics, 1);
	ck_assert_int_eq(config_set(&cfg, "log.retention.ms", "-1", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.retention_ms, -1);
	ck_assert_int_eq(config_set(&cfg, "retention-bytes", "1073741824", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.retention_bytes, 1073741824);
	ck_assert_int_eq(config_set(&cfg, "retention-ms", "-2", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "invalid value '-2' for setting 'retention-ms': expected an integer "
			      "from -1 to 9223372036854775807");
	ck_assert_int_eq(config_set(&cfg, "retention-ms", "9223372036854775808", err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(config_set(&cfg, "retention-ms", "--1", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(cfg.retention_ms, -1); /* untouched by the failures */
	ck_assert_int_eq(config_set(&cfg, "auto.create.topics.enable", "false", err, sizeof(err)),
			 0);
	ck_assert_int_eq(cfg.auto_create_topics, 0);
	ck_assert_int_eq(config_set(&cfg, "auto-create-topics", "yes", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "invalid value 'yes' for setting 'auto-create-topics': expected true "
			      "or false");
	ck_assert_int_eq(config_set(&cfg, "socket.request.max.bytes", "2m", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.request_max_bytes, 2u << 20);
}
END_TEST

static TCase *tcase(Suite *suite, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);
	tcase_add_test(tc, test);
	suite_add_tcase(suite, tc);
	return tc;
}

int main(void)
{
	Suite *suite = suite_create("config");
	tcase(suite, "defaults", test_defaults);
	tcase(suite, "flag_separate_value", test_flag_separate_value);
	tcase(suite, "flag_equals_value", test_flag_equals_value);
	tcase(suite, "flag_kafka_alias", test_flag_kafka_alias);
	tcase(suite, "pool_bytes_suffixes", test_pool_bytes_suffixes);
	tcase(suite, "file_loading", test_file_loading);
	tcase(suite, "flags_override_file", test_flags_override_file);
	tcase(suite, "unknown_key_flag", test_unknown_key_flag);
	tcase(suite, "unknown_key_file", test_unknown_key_file);
	tcase(suite, "bad_values", test_bad_values);
	tcase(suite, "signed_and_boolean_settings", test_signed_and_boolean_settings);
	tcase(suite, "bad_cpus", test_bad_cpus);
	tcase(suite, "bad_value_in_file", test_bad_value_in_file);
	tcase(suite, "missing_file", test_missing_file);
	tcase(suite, "help", test_help);
	tcase(suite, "print_help", test_print_help);
	tcase(suite, "shard_cpus_default", test_shard_cpus_default);
	tcase(suite, "shard_cpus_one", test_shard_cpus_one);
	/* Check has no skip result: a TCase whose name carries a TAP "# SKIP reason"
	 * directive is counted as skipped by tap-driver, so a case whose precondition
	 * fails on this machine is named that way here (the forked test inherits the
	 * same affinity mask) and returns early without asserting anything. */
	cpu_set_t mask;
	CPU_ZERO(&mask);
	if (sched_getaffinity(0, sizeof(mask), &mask) < 0)
		CPU_ZERO(&mask);
	int available = CPU_COUNT(&mask);
	tcase(suite,
	      available < LIMITS_SHARDS_MAX
		  ? "shard_cpus_too_many"
		  : "shard_cpus_too_many # SKIP the affinity mask has LIMITS_SHARDS_MAX CPUs "
		    "or more, so --shards cannot exceed it",
	      test_shard_cpus_too_many);
	tcase(suite, "shard_cpus_list", test_shard_cpus_list);
	tcase(suite,
	      first_cpu_outside(&mask) >= 0
		  ? "shard_cpus_outside_mask"
		  : "shard_cpus_outside_mask # SKIP every CPU below CPU_SETSIZE is in the "
		    "affinity mask, so none is outside it",
	      test_shard_cpus_outside_mask);
	tcase(suite,
	      available >= 2 ? "shard_cpus_port_range"
			     : "shard_cpus_port_range # SKIP one CPU in the affinity mask, so no "
			       "second shard needs port + 1",
	      test_shard_cpus_port_range);
	tcase(suite, "config_log", test_config_log);
	return unit_run(suite);
}
