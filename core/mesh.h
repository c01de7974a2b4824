/*
 * core/mesh.h: the N x N mesh of SPSC rings (core/ring.h) between shards, and how a
 * shard is woken when messages wait for it (DESIGN §2). Ring [from][to] carries messages
 * from shard `from` to shard `to`; the diagonal is unused. Sending only pushes and marks
 * the target dirty; a before-wait hook of the sender's loop then posts at most one
 * IORING_OP_MSG_RING per dirty target, and only when that target's "wake pending" flag
 * was clear, so a loop turn that sends a thousand messages to a peer costs that peer one
 * wake-up. The woken shard drains a bounded batch from each incoming ring and hands each
 * message to its handler. This module does not interpret messages (op belongs to the
 * user, except the MESH_OP_REPLY bit), does not own payload buffers, and does not run
 * loops: shards do (core/shard.c).
 *
 * Request/reply convention. A message whose op has MESH_OP_REPLY clear is a request; the
 * receiver answers it with exactly one reply (mesh_reply) on the ring going back, with
 * MESH_OP_REPLY set and the request's cookie, handing back the payload's ownership. Each
 * shard may have at most mesh_request_window() = capacity / 2 requests outstanding to
 * each peer (more get -EAGAIN, the backpressure signal). Ring [a][b] then never holds
 * more than capacity / 2 requests of a plus capacity / 2 replies to b's requests, so a
 * reply always fits: a handler can answer from inside a drain without ever having to
 * park a reply, and two shards flooding each other cannot deadlock.
 *
 * Threads. Each shard's functions (send, drain, flush, attach) are called only from
 * that shard's thread; mesh_create/mesh_destroy from the control thread while no shard
 * runs; mesh_stats from any thread.
 */
#ifndef SLUICE_CORE_MESH_H
#define SLUICE_CORE_MESH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ring.h"
#include "io/loop.h"

/* Bit of ring_msg.op that marks a reply; the rest of op is the request's operation. */
#define MESH_OP_REPLY (UINT32_C(1) << 31)

struct mesh;

/* Called once per drained message, on the receiving shard's thread. FROM is the
 * sending shard. MSG is valid only during the call (copy what must outlive it); the
 * payload it points to now belongs to the receiver. */
typedef void (*mesh_handler_fn)(void *ctx, uint32_t from, const struct ring_msg *msg);

/* Counters of one shard; each is written only by that shard's thread. */
struct mesh_stats {
	uint64_t sent;	       /* messages pushed by this shard, requests and replies */
	uint64_t received;     /* messages popped and handled by this shard */
	uint64_t full;	       /* mesh_send calls refused with -EAGAIN (backpressure) */
	uint64_t wakeups_sent; /* MSG_RING wake-ups posted to peers */
	uint64_t rearms;       /* MSG_RING wake-ups to itself after a drain left messages */
};

static inline bool mesh_op_is_reply(uint32_t op)
{
	return (op & MESH_OP_REPLY) != 0;
}

/* Allocates a mesh for SHARD_COUNT shards (1..LIMITS_SHARDS_MAX) whose rings have
 * RING_CAPACITY slots (a power of two, 2..LIMITS_RING_SLOTS_MAX; LIMITS_RING_SLOTS is
 * the broker's choice). Returns 0 and *OUT, -EINVAL for bad sizes or -ENOMEM. */
int mesh_create(struct mesh **out, uint32_t shard_count, uint32_t ring_capacity);

/* Frees the mesh; NULL is a no-op. No shard may use it any more. Messages still in the
 * rings are dropped (their payloads are the shards' business). */
void mesh_destroy(struct mesh *mesh);

uint32_t mesh_shard_count(const struct mesh *mesh);

/* Requests one shard may have outstanding to one peer: ring capacity / 2. */
uint32_t mesh_request_window(const struct mesh *mesh);

/* Routes the messages shard SHARD receives to FN(CTX, ...). Call it from the shard's
 * thread, before attaching or between loop turns. Without a handler, requests are
 * answered with status -EOPNOTSUPP and replies are dropped with a warning. */
void mesh_set_handler(struct mesh *mesh, uint32_t shard, mesh_handler_fn fn, void *ctx);

/* Joins shard SHARD to the mesh from its own thread: records LOOP's ring fd so peers
 * can wake it, routes LOOP_KIND_MESH_WAKE completions to a drain with the shard's
 * handler, and adds mesh_flush_wakeups as a last before-wait hook of LOOP (after every
 * plain hook, so what they queue is woken for in the same turn). Every shard must be
 * attached before any peer sends to it (shard start-up waits for all shards): until
 * then wake-ups to it are held back. Returns 0, -EINVAL (bad or already attached
 * shard) or -ENOSPC (LOOP has no free hook slot). */
int mesh_attach(struct mesh *mesh, uint32_t shard, struct loop *loop);

/* Withdraws SHARD's ring fd before its loop is destroyed, so peers stop posting
 * wake-ups to a closed (or reused) descriptor; messages sent to it afterwards stay in
 * the rings. A peer that read the fd just before may still post one wake-up, which then
 * fails harmlessly on its own loop (logged). */
void mesh_detach(struct mesh *mesh, uint32_t shard);

/* Sends *MSG from shard FROM to shard TO (FROM != TO, both asserted in range). Returns
 * 0 when pushed, with TO marked for a wake-up at FROM's next flush; or -EAGAIN, nothing
 * sent, counted in `full`: for a request when FROM already has mesh_request_window()
 * requests outstanding to TO, for any message when the ring is full (never for a reply
 * under the convention above). */
int mesh_send(struct mesh *mesh, uint32_t from, uint32_t to, const struct ring_msg *msg);

/* Answers REQUEST (received by shard SELF from shard TO) with a reply carrying
 * op | MESH_OP_REPLY, the request's cookie, STATUS, PAYLOAD and ARG. Returns mesh_send's
 * result, which is 0 as long as each request gets one reply. */
int mesh_reply(struct mesh *mesh, uint32_t self, uint32_t to, const struct ring_msg *request,
	       int32_t status, void *payload, uint64_t arg);

/* For each target FROM marked since the last flush: if the target is attached and its
 * wake-pending flag was clear, sets it and queues one MSG_RING (LOOP_KIND_MESH_WAKE,
 * value FROM) on LOOP. mesh_attach registers it as a hook; call it by hand only on a
 * loop that is not attached. */
void mesh_flush_wakeups(struct mesh *mesh, uint32_t from, struct loop *loop);

/* Shard SELF drains its incoming rings: clears its wake-pending flag first, then pops
 * up to LIMITS_MESH_DRAIN_BATCH messages from each peer's ring and calls FN(CTX, from,
 * msg) for each, in ring order. If a ring still holds messages afterwards and SELF is
 * attached, it re-arms itself with a MSG_RING to its own loop, so the rest is drained
 * on a following turn after the loop has served its other completions. Returns the
 * number of messages handled. */
uint32_t mesh_drain(struct mesh *mesh, uint32_t self, mesh_handler_fn fn, void *ctx);

/* Copies SHARD's counters into *OUT. Any thread; each counter is read atomically but
 * the set is not one snapshot. */
void mesh_stats(const struct mesh *mesh, uint32_t shard, struct mesh_stats *out);

#endif
