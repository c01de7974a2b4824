/*
 * core/shard.h: the shards of one sluiced process and their start and stop. A shard is
 * a thread pinned to one CPU, with NUMA-local memory policy, its own jemalloc arena,
 * its own io_uring event loop, its own registered buffer pool and its place in the
 * N x N mesh. The control thread (main) starts them all, learns from each whether it
 * came up (with one line explaining a failure), and later stops them by posting a STOP
 * completion to each ring with MSG_RING. What runs on a shard's loop besides the mesh
 * (listeners, the shard log) is added by the layers above.
 */
#ifndef SLUICE_CORE_SHARD_H
#define SLUICE_CORE_SHARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/mesh.h"
#include "io/loop.h"
#include "io/pool.h"

#define SHARD_ERROR_BYTES 512

struct shard_set;

enum shard_start_state {
	SHARD_START_WAIT = 0, /* shards are still starting: wait for the verdict */
	SHARD_START_GO,       /* every shard came up: run the loops */
	SHARD_START_ABORT,    /* some shard failed: tear down and leave */
};

/* Written by the shard's own thread, except the fields marked (control). */
struct shard {
	uint32_t id;            /* 0..count-1; also the Kafka broker id (control) */
	int cpu;                /* the CPU the thread is pinned to (control) */
	int numa_node;          /* numa_node_of_cpu(cpu), -1 without NUMA support */
	unsigned arena;         /* jemalloc arena of this thread, UINT32_MAX if none */
	pthread_t thread;       /* (control) */
	struct shard_set *set;  /* the set this shard belongs to (control) */
	struct loop loop;       /* the shard's io_uring event loop */
	struct pool pool;       /* the shard's registered buffer pool */
	int start_status;       /* 0, or -errno when start-up failed */
	char start_error[SHARD_ERROR_BYTES]; /* one line naming the cause and the fix */
};

/*
 * All shards of the process. Invariant after shard_set_start returned 0: every shard's
 * loop exists and is attached to the mesh, and every thread is inside loop_run until
 * shard_set_stop.
 */
struct shard_set {
	const struct config *cfg;  /* settings every shard reads; outlives the set */
	uint32_t count;            /* number of shards */
	struct shard *shards;      /* count entries */
	struct mesh *mesh;         /* count x count SPSC rings */
	struct loop control;       /* the control thread's ring, used to post STOP */
	pthread_mutex_t start_lock; /* guards the three start-up fields below */
	pthread_cond_t start_cond;  /* signalled on each change of them */
	uint32_t ready_count;       /* shards that finished start-up, well or not */
	enum shard_start_state start_state; /* control's verdict once all are ready */
	uint32_t threads;           /* threads created, to be joined */
};

/* Starts one shard per CPU from config_shard_cpus. Returns 0 when every shard is
 * running; otherwise -errno with ERR holding one line that names the failing shard,
 * the cause and the fix, and no thread left running. */
int shard_set_start(struct shard_set *set, const struct config *cfg, char *err, size_t err_len);

/* Posts STOP to every shard, waits for their threads and frees everything. Returns 0
 * or -errno of the first shard whose loop failed. */
int shard_set_stop(struct shard_set *set);

#endif
