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
#define SHARD_LAYERS_MAX  8

struct shard;
struct shard_set;

/*
 * A layer the shards host (the shard log, the topic table, the Kafka server): started
 * on every shard's own thread, in order, once its loop, pool and mesh place exist and
 * before any shard serves; stopped in reverse order on the same thread after the loop
 * has stopped. STATE is where the layer keeps its per-shard object: start sets
 * shard->layer_state[index] (index = position in the array given to shard_set_start).
 */
struct shard_layer {
	const char *name; /* for log lines: "storage", "net" */
	/* Returns 0, or -errno with one line in ERR naming the cause and the fix. */
	int (*start)(struct shard *shard, void *ctx, char *err, size_t err_len);
	void (*stop)(struct shard *shard, void *ctx); /* may be NULL */
	void *ctx;				      /* shared by all shards */
};

/*
 * Operations one shard asks of another over the mesh: one number space, one dispatch
 * (shard_on_op). A request's ring_msg.cookie points to a struct shard_call owned by
 * the sender; the reply comes back with the same cookie and is handed to call->done
 * on the sender's thread. Layers add their operations here.
 */
enum shard_op {
	SHARD_OP_PING = 1, /* answers with arg + 1; for tests and tools */
	SHARD_OP_TOPICS_CHANGE = 2, /* to shard 0: a topic change (core/topics); payload is the
				     * requester's change record, handed back with the reply */
	SHARD_OP_TOPICS_UPDATE = 3, /* from shard 0: copy a topic view into the table; payload
				     * the view (shard 0's, read only), arg the kind */
	SHARD_OP_FETCH,	       /* to a partition's owner: a forwarded Fetch read (net/api_fetch) */
	SHARD_OP_LIST_OFFSETS, /* to a partition's owner: a forwarded ListOffsets lookup */
	SHARD_OP_PRODUCE,      /* to a partition's owner: a forwarded batch (core/producers) */
	SHARD_OP_PRODUCER_ID,  /* to shard 0: an id for InitProducerId (core/producers) */
	SHARD_OP_API_FORWARD,  /* to a group's coordinator: a whole request (net/api.c) */
	SHARD_OP_COUNT
};

typedef void (*shard_op_fn)(void *ctx, struct shard *shard, uint32_t from,
			    const struct ring_msg *request);

/* The sender's record of a request in flight; must stay put until DONE ran. */
struct shard_call;
typedef void (*shard_call_fn)(struct shard_call *call, const struct ring_msg *reply);
struct shard_call {
	shard_call_fn done; /* runs on the sender's thread with the reply */
	void *ctx;	    /* the caller's */
};

enum shard_start_state {
	SHARD_START_WAIT = 0, /* shards are still starting: wait for the verdict */
	SHARD_START_GO,	      /* every shard came up: run the loops */
	SHARD_START_ABORT,    /* some shard failed: tear down and leave */
};

/* Written by the shard's own thread, except the fields marked (control). */
struct shard {
	uint32_t id;			     /* 0..count-1; also the Kafka broker id (control) */
	int cpu;			     /* the CPU the thread is pinned to (control) */
	int numa_node;			     /* numa_node_of_cpu(cpu), -1 without NUMA support */
	unsigned arena;			     /* jemalloc arena of this thread, UINT32_MAX if none */
	pthread_t thread;		     /* (control) */
	struct shard_set *set;		     /* the set this shard belongs to (control) */
	struct loop loop;		     /* the shard's io_uring event loop */
	struct pool pool;		     /* the shard's registered buffer pool */
	int start_status;		     /* 0, or -errno when start-up failed */
	uint32_t layers_started;	     /* layers whose start succeeded, to stop in reverse */
	void *layer_state[SHARD_LAYERS_MAX]; /* each layer's per-shard object */
	shard_op_fn ops[SHARD_OP_COUNT];     /* request handlers by operation */
	void *op_ctx[SHARD_OP_COUNT];	     /* their first argument */
	char start_error[SHARD_ERROR_BYTES]; /* one line naming the cause and the fix */
};

/*
 * All shards of the process. Invariant after shard_set_start returned 0: every shard's
 * loop exists and is attached to the mesh, and every thread is inside loop_run until
 * shard_set_stop.
 */
struct shard_set {
	const struct config *cfg;	    /* settings every shard reads; outlives the set */
	uint32_t count;			    /* number of shards */
	struct shard *shards;		    /* count entries */
	struct mesh *mesh;		    /* count x count SPSC rings */
	struct loop control;		    /* the control thread's ring, used to post STOP */
	const struct shard_layer *layers;   /* started on every shard, in order */
	uint32_t layer_count;		    /* <= SHARD_LAYERS_MAX */
	pthread_mutex_t start_lock;	    /* guards the three start-up fields below */
	pthread_cond_t start_cond;	    /* signalled on each change of them */
	uint32_t ready_count;		    /* shards that finished start-up, well or not */
	enum shard_start_state start_state; /* control's verdict once all are ready */
	uint32_t threads;		    /* threads created, to be joined */
};

/* Starts one shard per CPU from config_shard_cpus, each starting LAYERS (LAYER_COUNT
 * <= SHARD_LAYERS_MAX; the array must outlive the set) in order. Returns 0 when every
 * shard is running; otherwise -errno with ERR holding one line that names the failing
 * shard, the cause and the fix, and no thread left running. */
int shard_set_start(struct shard_set *set, const struct config *cfg,
		    const struct shard_layer *layers, uint32_t layer_count, char *err,
		    size_t err_len);

/* Routes requests of OP arriving at SHARD to FN(CTX, ...). From SHARD's thread (a
 * layer's start). A request with no handler is answered with status -EOPNOTSUPP. */
void shard_on_op(struct shard *shard, enum shard_op op, shard_op_fn fn, void *ctx);

/* Sends request OP with PAYLOAD and ARG from SHARD to shard TO; CALL->done runs on
 * SHARD's thread with the reply. Returns 0, or -EAGAIN when the ring to TO is full or
 * the request window is used up (retry on a later turn), -EINVAL for a bad TO. */
int shard_call(struct shard *shard, uint32_t to, enum shard_op op, void *payload, uint64_t arg,
	       struct shard_call *call);

/* Answers REQUEST (received from FROM) with STATUS, PAYLOAD and ARG. Returns 0 or
 * -EAGAIN (cannot happen within the request window; see core/mesh.h). */
int shard_reply(struct shard *shard, uint32_t from, const struct ring_msg *request, int32_t status,
		void *payload, uint64_t arg);

/* Posts STOP to every shard, waits for their threads and frees everything. Returns 0
 * or -errno of the first shard whose loop failed. */
int shard_set_stop(struct shard_set *set);

#endif
