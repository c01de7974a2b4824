/*
 * core/shard.c: a shard thread's life: pin to its CPU, prefer its NUMA node's memory,
 * take its own jemalloc arena, create its io_uring loop, map and register its buffer
 * pool, join the mesh, report to the control thread, run the loop until STOP, then
 * tear down in reverse order. Start-up ends with every shard waiting for the control thread's
 * verdict, so no shard begins serving before all came up, and a failed start leaves no thread
 * behind.
 */
#include "core/shard.h"

#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/logger.h"

/* A private jemalloc arena per shard keeps its allocations on pages it first touched
 * (NUMA-local under the shard's memory policy) and off the other shards' locks.
 * Returns the arena index or -errno. */
static int shard_take_arena(unsigned *arena)
{
	size_t size = sizeof(*arena);
	int ret = mallctl("arenas.create", arena, &size, NULL, 0);
	if (ret != 0)
		return -ret;
	ret = mallctl("thread.arena", NULL, NULL, arena, sizeof(*arena));
	return ret != 0 ? -ret : 0;
}

static int shard_pin(struct shard *shard)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(shard->cpu, &set);
	int ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (ret != 0) {
		snprintf(shard->start_error, sizeof(shard->start_error),
			 "shard %u: cannot pin thread to CPU %d: %s", shard->id, shard->cpu,
			 strerror(ret));
		return -ret;
	}
	return 0;
}

/* MPOL_PREFERRED rather than MPOL_BIND: memory from the shard's own node when it has
 * any, another node's rather than an OOM kill when it does not. */
static void shard_prefer_local_memory(struct shard *shard)
{
	shard->numa_node = -1;
	if (numa_available() < 0)
		return;
	shard->numa_node = numa_node_of_cpu(shard->cpu);
	if (shard->numa_node < 0)
		return;
	unsigned long mask[16] = {0};
	if ((unsigned)shard->numa_node >= sizeof(mask) * 8)
		return;
	mask[shard->numa_node / (8 * sizeof(long))] |= 1UL
						       << (shard->numa_node % (8 * sizeof(long)));
	if (set_mempolicy(MPOL_PREFERRED, mask, sizeof(mask) * 8) != 0)
		LOG_WARN("numa: set_mempolicy(PREFERRED, node %d) failed: %s", shard->numa_node,
			 strerror(errno));
}

/* The mesh handler: requests go to the operation's handler, replies to the call that
 * sent them. */
static void shard_on_message(void *ctx, uint32_t from, const struct ring_msg *msg)
{
	struct shard *shard = ctx;
	if (mesh_op_is_reply(msg->op)) {
		struct shard_call *call = (struct shard_call *)(uintptr_t)msg->cookie;
		ASSERT(call && call->done);
		call->done(call, msg);
		return;
	}
	uint32_t op = msg->op;
	if (op < SHARD_OP_COUNT && shard->ops[op]) {
		shard->ops[op](shard->op_ctx[op], shard, from, msg);
		return;
	}
	LOG_WARN("mesh: request with unknown operation %u from shard %u", op, from);
	shard_reply(shard, from, msg, -EOPNOTSUPP, msg->payload, 0);
}

static void shard_op_ping(void *ctx, struct shard *shard, uint32_t from,
			  const struct ring_msg *request)
{
	shard_reply(shard, from, request, 0, NULL, request->arg + 1);
}

void shard_on_op(struct shard *shard, enum shard_op op, shard_op_fn fn, void *ctx)
{
	ASSERT(op > 0 && op < SHARD_OP_COUNT);
	shard->ops[op] = fn;
	shard->op_ctx[op] = ctx;
}

int shard_call(struct shard *shard, uint32_t to, enum shard_op op, void *payload, uint64_t arg,
	       struct shard_call *call)
{
	if (to >= shard->set->count || to == shard->id)
		return -EINVAL;
	struct ring_msg msg = {.op = op,
			       .status = 0,
			       .cookie = (uint64_t)(uintptr_t)call,
			       .payload = payload,
			       .arg = arg};
	return mesh_send(shard->set->mesh, shard->id, to, &msg);
}

int shard_reply(struct shard *shard, uint32_t from, const struct ring_msg *request, int32_t status,
		void *payload, uint64_t arg)
{
	return mesh_reply(shard->set->mesh, shard->id, from, request, status, payload, arg);
}

/* Starts the set's layers in order; on failure stops those already started. */
static int shard_start_layers(struct shard *shard)
{
	const struct shard_set *set = shard->set;
	for (uint32_t i = 0; i < set->layer_count; i++) {
		const struct shard_layer *layer = &set->layers[i];
		char err[SHARD_ERROR_BYTES - 64] = "";
		int ret = layer->start(shard, layer->ctx, err, sizeof(err));
		if (ret < 0) {
			snprintf(shard->start_error, sizeof(shard->start_error), "shard %u: %s: %s",
				 shard->id, layer->name, err[0] ? err : strerror(-ret));
			return ret;
		}
		shard->layers_started = i + 1;
	}
	return 0;
}

static void shard_stop_layers(struct shard *shard)
{
	while (shard->layers_started > 0) {
		const struct shard_layer *layer = &shard->set->layers[--shard->layers_started];
		if (layer->stop)
			layer->stop(shard, layer->ctx);
	}
}

/* Everything a shard sets up before it reports ready; on failure start_error says
 * why and what is done is undone. */
static int shard_start_up(struct shard *shard)
{
	const struct config *cfg = shard->set->cfg;
	int ret = shard_pin(shard);
	if (ret < 0)
		return ret;
	shard_prefer_local_memory(shard);
	shard->arena = UINT32_MAX;
	ret = shard_take_arena(&shard->arena);
	if (ret < 0)
		LOG_WARN("jemalloc: cannot create a per-shard arena: %s; using the default arenas",
			 strerror(-ret));

	char explain[SHARD_ERROR_BYTES - 32];
	ret = loop_init(&shard->loop, LIMITS_URING_ENTRIES, explain, sizeof(explain));
	if (ret < 0) {
		snprintf(shard->start_error, sizeof(shard->start_error), "shard %u: %s", shard->id,
			 explain);
		return ret;
	}
	ret = pool_init(&shard->pool, cfg->pool_bytes, LIMITS_POOL_CHUNK_BYTES, shard->numa_node,
			POOL_MODE_HUGETLB);
	if (ret < 0) {
		snprintf(
		    shard->start_error, sizeof(shard->start_error),
		    "shard %u: cannot map a %llu-byte buffer pool: %s; fix: lower --pool-bytes",
		    shard->id, (unsigned long long)cfg->pool_bytes, strerror(-ret));
		goto out_loop;
	}
	ret = pool_register(&shard->pool, &shard->loop.ring);
	if (ret < 0) {
		uring_explain(ret, "register buffers", NULL, explain, sizeof(explain));
		snprintf(shard->start_error, sizeof(shard->start_error), "shard %u: %s", shard->id,
			 explain);
		goto out_pool;
	}
	mesh_set_handler(shard->set->mesh, shard->id, shard_on_message, shard);
	shard_on_op(shard, SHARD_OP_PING, shard_op_ping, NULL);
	ret = mesh_attach(shard->set->mesh, shard->id, &shard->loop);
	if (ret < 0) {
		snprintf(shard->start_error, sizeof(shard->start_error),
			 "shard %u: cannot join the mesh: %s", shard->id, strerror(-ret));
		goto out_pool;
	}
	ret = shard_start_layers(shard);
	if (ret < 0)
		goto out_mesh;
	return 0;

out_mesh:
	shard_stop_layers(shard);
	mesh_detach(shard->set->mesh, shard->id);
out_pool:
	pool_destroy(&shard->pool);
out_loop:
	loop_destroy(&shard->loop);
	return ret;
}

static void shard_tear_down(struct shard *shard)
{
	shard_stop_layers(shard);
	/* Peers must stop posting wake-ups to a ring fd that is about to close; then the
	 * ring goes before the pool: destroying it unregisters the pool's buffers. */
	mesh_detach(shard->set->mesh, shard->id);
	loop_destroy(&shard->loop);
	pool_destroy(&shard->pool);
}

static void *shard_main(void *arg)
{
	struct shard *shard = arg;
	struct shard_set *set = shard->set;
	logger_set_shard((int)shard->id);
	char name[16];
	snprintf(name, sizeof(name), "shard-%u", shard->id);
	pthread_setname_np(pthread_self(), name); /* visible in top -H and /proc/PID/task */

	shard->start_status = shard_start_up(shard);
	pthread_mutex_lock(&set->start_lock);
	set->ready_count++;
	pthread_cond_broadcast(&set->start_cond);
	while (set->start_state == SHARD_START_WAIT)
		pthread_cond_wait(&set->start_cond, &set->start_lock);
	enum shard_start_state verdict = set->start_state;
	pthread_mutex_unlock(&set->start_lock);
	if (shard->start_status < 0)
		return NULL;
	if (verdict == SHARD_START_ABORT) {
		shard_tear_down(shard);
		return NULL;
	}

	char pool_line[128];
	pool_describe(&shard->pool, pool_line, sizeof(pool_line));
	LOG_INFO("shard up: cpu %d, numa node %d, io_uring %s%s, arena %d, pool %s", shard->cpu,
		 shard->numa_node, uring_mode_name(&shard->loop.features),
		 shard->loop.features.send_zc ? " (send_zc)" : "",
		 shard->arena == UINT32_MAX ? -1 : (int)shard->arena, pool_line);

	int ret = loop_run(&shard->loop);
	if (ret < 0) {
		LOG_ERROR("shard loop failed: %s", strerror(-ret));
		shard->start_status = ret;
	}
	LOG_INFO("shard stopping after %llu loop turns, %llu completions",
		 (unsigned long long)shard->loop.iterations,
		 (unsigned long long)shard->loop.completions);
	shard_tear_down(shard);
	return NULL;
}

int shard_set_start(struct shard_set *set, const struct config *cfg,
		    const struct shard_layer *layers, uint32_t layer_count, char *err,
		    size_t err_len)
{
	memset(set, 0, sizeof(*set));
	ASSERT(layer_count <= SHARD_LAYERS_MAX);
	set->cfg = cfg;
	set->layers = layers;
	set->layer_count = layer_count;
	int cpus[LIMITS_SHARDS_MAX];
	int ret = config_shard_cpus(cfg, cpus, LIMITS_SHARDS_MAX, &set->count, err, err_len);
	if (ret < 0)
		return ret;
	ASSERT(set->count >= 1 && set->count <= LIMITS_SHARDS_MAX);

	/* The control thread's own ring, only for posting STOP; creating it first also
	 * reports an unusable io_uring before any thread exists. */
	ret = loop_init(&set->control, 8, err, err_len);
	if (ret < 0)
		return ret;
	/* libnuma fills its per-node CPU masks lazily and not thread-safely: do it here,
	 * once, before the shard threads ask numa_node_of_cpu at the same moment. */
	if (numa_available() >= 0)
		for (uint32_t i = 0; i < set->count; i++)
			(void)numa_node_of_cpu(cpus[i]);
	ret = mesh_create(&set->mesh, set->count, LIMITS_RING_SLOTS);
	if (ret < 0) {
		snprintf(err, err_len, "cannot allocate the %u x %u shard mesh: %s", set->count,
			 set->count, strerror(-ret));
		goto out_control;
	}
	set->shards = calloc(set->count, sizeof(*set->shards));
	if (!set->shards) {
		ret = -ENOMEM;
		snprintf(err, err_len, "cannot allocate %u shards", set->count);
		goto out_mesh;
	}
	pthread_mutex_init(&set->start_lock, NULL);
	pthread_cond_init(&set->start_cond, NULL);

	for (; set->threads < set->count; set->threads++) {
		struct shard *shard = &set->shards[set->threads];
		shard->id = set->threads;
		shard->cpu = cpus[set->threads];
		shard->set = set;
		int err_thread = pthread_create(&shard->thread, NULL, shard_main, shard);
		if (err_thread != 0) {
			ret = -err_thread;
			snprintf(err, err_len, "cannot create the thread of shard %u: %s",
				 set->threads, strerror(err_thread));
			break;
		}
	}

	pthread_mutex_lock(&set->start_lock);
	while (set->ready_count < set->threads)
		pthread_cond_wait(&set->start_cond, &set->start_lock);
	for (uint32_t i = 0; i < set->threads && ret == 0; i++) {
		if (set->shards[i].start_status < 0) {
			ret = set->shards[i].start_status;
			snprintf(err, err_len, "%s", set->shards[i].start_error);
		}
	}
	set->start_state = ret == 0 ? SHARD_START_GO : SHARD_START_ABORT;
	pthread_cond_broadcast(&set->start_cond);
	pthread_mutex_unlock(&set->start_lock);
	if (ret < 0)
		shard_set_stop(set);
	return ret;

out_mesh:
	mesh_destroy(set->mesh);
out_control:
	loop_destroy(&set->control);
	return ret;
}

int shard_set_stop(struct shard_set *set)
{
	int ret = 0;
	if (set->start_state == SHARD_START_GO) {
		for (uint32_t i = 0; i < set->count; i++)
			loop_queue_msg_ring(&set->control, loop_ring_fd(&set->shards[i].loop),
					    LOOP_KIND_STOP, 0);
		int submitted = io_uring_submit(&set->control.ring);
		ASSERT(submitted >= 0);
	}
	for (uint32_t i = 0; i < set->threads; i++) {
		pthread_join(set->shards[i].thread, NULL);
		if (ret == 0 && set->start_state == SHARD_START_GO &&
		    set->shards[i].start_status < 0)
			ret = set->shards[i].start_status;
	}
	pthread_mutex_destroy(&set->start_lock);
	pthread_cond_destroy(&set->start_cond);
	free(set->shards);
	mesh_destroy(set->mesh);
	loop_destroy(&set->control);
	memset(set, 0, sizeof(*set));
	return ret;
}
