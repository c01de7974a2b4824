/*
 * net/sluiced.c: the entry point of the sluiced daemon. It reads the configuration,
 * locks the data directory, starts one shard per CPU and then turns into the control
 * thread: it waits for signals (SIGTERM and SIGINT stop every shard and exit 0,
 * SIGHUP reopens the log file) and does nothing else. Any failure to start is one log
 * line naming the cause and the fix, and exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/broker.h"
#include "core/config.h"
#include "core/logger.h"
#include "core/shard.h"
#include "net/server.h"

/* Creates DIR (one level; its parent must exist) and takes an exclusive lock on
 * DIR/.lock so two daemons never share a data directory. Returns the lock's fd. */
static int sluiced_lock_data_dir(const char *dir, char *err, size_t err_len)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, err_len, "cannot create data directory '%s': %s", dir,
			 strerror(errno));
		return -1;
	}
	char path[LIMITS_CONFIG_VALUE_BYTES + 16];
	snprintf(path, sizeof(path), "%s/.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, err_len,
			 "data directory '%s' is in use by another sluiced (lock on its .lock "
			 "file held)",
			 dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* Raises the soft open-file limit to the hard one (each shard's connection table, the
 * segment files), and warns when even that cannot hold every connection slot. */
static void sluiced_raise_nofile(const struct config *cfg, uint32_t shard_count)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t before = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = before;
	}
	uint64_t need = (uint64_t)shard_count * cfg->max_connections + 64u * shard_count + 64;
	if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < need)
		LOG_WARN("open-file limit %llu is below the %llu that %u shards x %u connections "
			 "(--max-connections) need; connections beyond it are refused. Raise it "
			 "with ulimit -n or LimitNOFILE= (tuning/README.md)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)need, shard_count,
			 cfg->max_connections);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	char err[2 * LIMITS_CONFIG_VALUE_BYTES];
	int ret = config_parse_args(&cfg, argc, argv, err, sizeof(err));
	if (ret == CONFIG_HELP) {
		config_print_help(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "sluiced: %s (see sluiced --help)\n", err);
		return 1;
	}
	logger_set_level(cfg.log_level);
	if (cfg.log_file[0] && (ret = logger_open(cfg.log_file)) < 0) {
		fprintf(stderr, "sluiced: cannot open log file '%s': %s\n", cfg.log_file,
			strerror(-ret));
		return 1;
	}

	/* Shards inherit this mask, so every signal comes to the control thread. */
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);

	LOG_INFO("sluiced %s starting", PACKAGE_VERSION);
	config_log(&cfg);
	int lock_fd = sluiced_lock_data_dir(cfg.data_dir, err, sizeof(err));
	if (lock_fd < 0) {
		LOG_ERROR("%s", err);
		return 1;
	}

	/* The broker layer (shard log, topic table) starts first on every shard; the Kafka
	 * server on top of it. */
	int cpus[LIMITS_SHARDS_MAX];
	uint32_t shard_count;
	static struct broker_ctx broker;
	static struct shard_set shards;
	static struct shard_layer layers[2];
	ret = config_shard_cpus(&cfg, cpus, LIMITS_SHARDS_MAX, &shard_count, err, sizeof(err));
	if (ret == 0)
		ret = broker_prepare(&broker, &cfg, shard_count, err, sizeof(err));
	if (ret < 0) {
		LOG_ERROR("%s", err);
		return 1;
	}
	sluiced_raise_nofile(&cfg, shard_count);
	layers[0] = broker_layer(&broker);
	layers[1] = server_layer();
	ret = shard_set_start(&shards, &cfg, layers, 2, err, sizeof(err));
	if (ret < 0) {
		LOG_ERROR("%s", err);
		broker_finish(&broker);
		return 1;
	}
	LOG_INFO("sluiced running: %u shards, base port %u, data dir %s", shards.count,
		 (unsigned)cfg.port, cfg.data_dir);

	for (;;) {
		int sig = sigwaitinfo(&signals, NULL);
		if (sig == SIGHUP) {
			ret = logger_reopen();
			if (ret < 0)
				LOG_ERROR("cannot reopen log file '%s': %s", cfg.log_file,
					  strerror(-ret));
			else
				LOG_INFO("log file reopened");
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			LOG_INFO("%s received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
	}
	ret = shard_set_stop(&shards);
	broker_finish(&broker);
	close(lock_fd);
	LOG_INFO("sluiced stopped%s", ret < 0 ? " after a shard failure" : "");
	return ret < 0 ? 1 : 0;
}
