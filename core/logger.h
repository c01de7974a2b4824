/*
 * core/logger.h: sluice's log lines. One line per event, formatted in full and written
 * with a single write(2), so lines from different shard threads never interleave:
 *
 *   2026-11-25T22:43:11.123456Z INFO  shard=1 pool: 256 MiB of transparent huge pages
 *
 * The destination is stderr or a file; logger_reopen() reopens the file in place (the
 * daemon calls it on SIGHUP for log rotation) by dup2()ing the new descriptor over the
 * old one, so a thread in the middle of a write never sees a closed descriptor. Each
 * thread tags its lines with its shard id (logger_set_shard); threads outside any
 * shard log as "main". This is not the shard log that stores records (see DESIGN §3).
 */
#ifndef SLUICE_CORE_LOGGER_H
#define SLUICE_CORE_LOGGER_H

#include <stdarg.h>
#include <stdbool.h>

enum logger_level {
	LOGGER_ERROR = 0, /* the operation failed and someone should look */
	LOGGER_WARN = 1,  /* degraded but working: a fallback was taken, a limit was hit */
	LOGGER_INFO = 2,  /* start-up facts, shutdown, configuration */
	LOGGER_DEBUG = 3, /* per-connection and per-request detail */
};

/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int logger_level_parse(const char *name, enum logger_level *out);
const char *logger_level_name(enum logger_level level);

/* Lines above this level are dropped. Safe to call from any thread. */
void logger_set_level(enum logger_level level);
bool logger_enabled(enum logger_level level);

/* Sends lines to PATH (opened O_APPEND|O_CREAT) instead of stderr; NULL means stderr.
 * Returns 0 or -errno, and on error keeps the previous destination. */
int logger_open(const char *path);

/* Reopens the file given to logger_open (after rotation); no-op for stderr. */
int logger_reopen(void);

/* Tags this thread's lines with "shard=ID"; -1 means "main". */
void logger_set_shard(int shard_id);

void logger_write(enum logger_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void logger_vwrite(enum logger_level level, const char *fmt, va_list ap);

#define LOG_ERROR(...) logger_write(LOGGER_ERROR, __VA_ARGS__)
#define LOG_WARN(...) logger_write(LOGGER_WARN, __VA_ARGS__)
#define LOG_INFO(...) logger_write(LOGGER_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) \
	(logger_enabled(LOGGER_DEBUG) ? logger_write(LOGGER_DEBUG, __VA_ARGS__) : (void)0)

#endif
