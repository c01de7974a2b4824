/*
 * core/logger.c: formats each log line into a thread-local buffer and emits it with
 * one write(2) to a shared descriptor. The level and descriptor are atomics read on
 * every call; reopening swaps the file underneath with dup2() so writers need no lock.
 */
#include "core/logger.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/limits.h"

static _Atomic int logger_level_current = LOGGER_INFO;
static _Atomic int logger_fd = STDERR_FILENO; /* stderr, or our dup of the log file */
static char logger_path[LIMITS_CONFIG_VALUE_BYTES]; /* set by logger_open, main thread */
static pthread_mutex_t logger_open_lock = PTHREAD_MUTEX_INITIALIZER; /* open/reopen only */
static _Thread_local int logger_shard = -1;

static const char *const logger_level_names[] = {"error", "warn", "info", "debug"};
static const char *const logger_level_tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

int logger_level_parse(const char *name, enum logger_level *out)
{
	for (int i = 0; i <= LOGGER_DEBUG; i++) {
		if (strcmp(name, logger_level_names[i]) == 0) {
			*out = (enum logger_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *logger_level_name(enum logger_level level)
{
	return (unsigned)level <= LOGGER_DEBUG ? logger_level_names[level] : "?";
}

void logger_set_level(enum logger_level level)
{
	atomic_store_explicit(&logger_level_current, (int)level, memory_order_relaxed);
}

bool logger_enabled(enum logger_level level)
{
	return (int)level <= atomic_load_explicit(&logger_level_current, memory_order_relaxed);
}

void logger_set_shard(int shard_id)
{
	logger_shard = shard_id;
}

static int logger_open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

int logger_open(const char *path)
{
	int ret = 0;
	pthread_mutex_lock(&logger_open_lock);
	if (!path) {
		logger_path[0] = '\0';
		int old = atomic_exchange(&logger_fd, STDERR_FILENO);
		if (old != STDERR_FILENO)
			close(old);
		goto out_unlock;
	}
	if (strlen(path) >= sizeof(logger_path)) {
		ret = -ENAMETOOLONG;
		goto out_unlock;
	}
	int fd = logger_open_path(path);
	if (fd < 0) {
		ret = fd;
		goto out_unlock;
	}
	strcpy(logger_path, path);
	int old = atomic_exchange(&logger_fd, fd);
	if (old != STDERR_FILENO)
		close(old);
out_unlock:
	pthread_mutex_unlock(&logger_open_lock);
	return ret;
}

int logger_reopen(void)
{
	int ret = 0;
	pthread_mutex_lock(&logger_open_lock);
	int cur = atomic_load(&logger_fd);
	if (logger_path[0] && cur != STDERR_FILENO) {
		int fd = logger_open_path(logger_path);
		if (fd < 0) {
			ret = fd;
		} else {
			/* dup2 replaces the file behind cur atomically: writers keep using cur. */
			if (dup2(fd, cur) < 0)
				ret = -errno;
			close(fd);
		}
	}
	pthread_mutex_unlock(&logger_open_lock);
	return ret;
}

void logger_vwrite(enum logger_level level, const char *fmt, va_list ap)
{
	if (!logger_enabled(level))
		return;
	char line[LIMITS_LOG_LINE_BYTES];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	char who[24];
	if (logger_shard >= 0)
		snprintf(who, sizeof(who), "shard=%d", logger_shard);
	else
		snprintf(who, sizeof(who), "main");
	int n = snprintf(line + len, sizeof(line) - len, ".%06ldZ %s %s ", now.tv_nsec / 1000,
			 logger_level_tags[(unsigned)level <= LOGGER_DEBUG ? level : 0], who);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2; /* truncated: keep room for the newline */
	line[len++] = '\n';
	/* One write per line; a short write to a full pipe is not worth retrying here. */
	ssize_t ignored = write(atomic_load_explicit(&logger_fd, memory_order_relaxed), line, len);
	(void)ignored;
}

void logger_write(enum logger_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logger_vwrite(level, fmt, ap);
	va_end(ap);
}
