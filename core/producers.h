/*
 * core/producers.h: idempotent producers (DESIGN §4) and the produce path's core. Per
 * partition it remembers, for each producer id, the epoch and the last
 * PRODUCERS_BATCHES batches (sequence range and the offset the log gave them), and
 * judges each new batch as Kafka's broker does (ProducerStateManager, Kafka 2.3): the
 * next batch in sequence is appended, a resend of one of the remembered batches is a
 * duplicate answered with its original offset and not appended, anything else is
 * refused. It appends a batch to any partition of the broker in order: on this shard
 * through the shard log (check, append and record in one step, so pipelined batches
 * dedup correctly before their writes complete), on another shard by forwarding the
 * bytes over the mesh (SHARD_OP_PRODUCE) to the owner, which does the same there. A
 * batch that meets backpressure (the log's ring full, the mesh window used up) waits
 * in a FIFO and every later batch queues behind it, so a producer's batches are never
 * reordered. It hands out producer ids for InitProducerId from the metadata, which
 * lives on shard 0 (SHARD_OP_PRODUCER_ID from the other shards). Its state is rebuilt
 * on open through the shard log's hooks: it is stored in each checkpoint and the
 * recovery scan feeds every batch after it.
 *
 * It parses no request and maps nothing to Kafka error codes (net/api_produce does);
 * it does not validate batches (the caller runs batch_validate first) and knows no
 * transactions (a transactional producer's markers and fencing are not implemented).
 * Single-threaded: every call comes from the thread of the shard it belongs to.
 *
 * Bounded memory: at most LIMITS_PRODUCERS_PER_PARTITION_MAX producers per partition
 * and LIMITS_PRODUCERS_PER_SHARD_MAX per shard; past either, the least recently used
 * producer of the partition (or of the shard) is forgotten. Kafka instead forgets a
 * producer idle for transactional.id.expiration.ms (7 days); in both cases a forgotten
 * producer that sends again gets UNKNOWN_PRODUCER_ID unless its sequence restarts at 0.
 *
 * The rules (Kafka 2.3's ProducerAppendInfo and Log.analyzeAndValidateProducerState),
 * for a batch with producerId P >= 0, epoch E, sequences [first, last]
 * (last = first + lastOffsetDelta, wrapping from INT32_MAX to 0):
 *   P known with epoch E, and [first, last] is one of its remembered batches
 *                                                         -> DUPLICATE (its offset)
 *   P known, E below its epoch                            -> STALE_EPOCH
 *   P known, E above its epoch, first != 0                -> OUT_OF_ORDER
 *   P known, E above its epoch, first == 0                -> APPEND (new epoch: the old
 *                                                            epoch's batches forgotten)
 *   P known, E its epoch, first != its last + 1           -> OUT_OF_ORDER
 *   P unknown, first != 0                                 -> UNKNOWN_PRODUCER
 *   otherwise                                             -> APPEND
 * A batch with producerId -1 (not idempotent) is always appended.
 *
 * State in the checkpoint (hooks.save, little-endian, opaque to the shard log; none at
 * all while no producer is tracked):
 *
 *  +------+-----+----------------------------------------------------------------+
 *  |    0 |   4 | magic PRODUCERS_SAVE_MAGIC ("SLPS")                            |
 *  |    4 |   4 | version PRODUCERS_SAVE_VERSION                                 |
 *  |    8 |   4 | producer count N                                               |
 *  |   12 |   4 | zero                                                           |
 *  |   16 |   . | N producers, least recently used first, each:                  |
 *  |      |     |   i64 producer_id | u32 partition_id | i16 epoch | u8 count C | |
 *  |      |     |   u8 zero | then C batches, oldest first:                       |
 *  |      |     |   i32 first_seq | i32 last_seq | i64 base_offset               |
 *  +------+-----+----------------------------------------------------------------+
 *
 * The state saved is the state when the checkpoint is written: it covers every batch
 * below the checkpoint's covered position (and some after it). On open the scan from
 * that position feeds the batches after it; one a producer already has (its newest
 * batch's offset is not below it) is skipped, and producers_attach then forgets
 * batches at or past each partition's recovered end (appended before the checkpoint
 * but lost in a crash) and the producers of partitions no longer in the log.
 */
#ifndef SLUICE_CORE_PRODUCERS_H
#define SLUICE_CORE_PRODUCERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/limits.h"
#include "core/shard.h"
#include "core/shardlog.h"

struct loop;
struct meta;

/* Batches remembered per producer and partition: Kafka's NumBatchesToRetain, which is
 * why an idempotent producer may have at most 5 requests in flight. */
#define PRODUCERS_BATCHES 5

#define PRODUCERS_SAVE_MAGIC   UINT32_C(0x53504c53) /* "SLPS" as little-endian bytes */
#define PRODUCERS_SAVE_VERSION 1u

/* How a batch fares against its producer's state. */
enum producers_verdict {
	PRODUCERS_APPEND = 0,	    /* not idempotent, or next in sequence: append it */
	PRODUCERS_DUPLICATE,	    /* a remembered batch: answer its offset, do not append */
	PRODUCERS_OUT_OF_ORDER,	    /* a gap, or a new epoch not starting at 0 (Kafka 45) */
	PRODUCERS_STALE_EPOCH,	    /* an epoch below the producer's (Kafka 47) */
	PRODUCERS_UNKNOWN_PRODUCER, /* no state for the producer, sequence not 0 (Kafka 59) */
};

struct producers;

struct producers_options {
	struct loop *loop;   /* the shard's loop, for the retry hook; NULL: the state
			      * machine only (no producers_produce) */
	struct shard *shard; /* the shard, for forwarding and ids; NULL: this is shard 0
			      * of a broker of one shard without a mesh (tests) */
	uint32_t
	    partition_max;  /* producers per partition; 0 = LIMITS_PRODUCERS_PER_PARTITION_MAX */
	uint32_t shard_max; /* producers in all; 0 = LIMITS_PRODUCERS_PER_SHARD_MAX */
};

/* Counters since create, of one shard. */
struct producers_stats {
	uint64_t batches;	   /* producers_produce calls on this shard */
	uint64_t appended;	   /* batches appended to this shard's log (own and peers') */
	uint64_t duplicates;	   /* answered with a remembered offset, not appended */
	uint64_t out_of_order;	   /* refused PRODUCERS_OUT_OF_ORDER */
	uint64_t stale_epoch;	   /* refused PRODUCERS_STALE_EPOCH */
	uint64_t unknown_producer; /* refused PRODUCERS_UNKNOWN_PRODUCER */
	uint64_t append_errors;	   /* the log refused the append (too large, failed log) */
	uint64_t log_waits;	   /* batches that waited for the log's backpressure */
	uint64_t mesh_waits;	   /* forwards that waited for the mesh window */
	uint64_t forwarded;	   /* batches sent to their owning shard */
	uint64_t served;	   /* batches peers forwarded here, answered */
	uint64_t ids;		   /* producer ids handed out (shard 0) or received */
	uint64_t evicted;	   /* producer states forgotten for room */
	uint64_t recovered;	   /* batches fed by recovery (checkpoint state and scan) */
	uint32_t tracked;	   /* producer states held now */
	uint32_t queued;	   /* batches waiting for backpressure now */
};

/* ---- lifecycle ---- */

/*
 * Creates an empty state. With OPTS->loop, adds a before-wait hook to it that retries
 * what waits for backpressure: call it before shardlog_open on that loop, so the hook
 * runs before the log's group-commit flush and a retried batch leaves in the same loop
 * turn. Returns 0 and *OUT, -EINVAL (a limit of 0 after defaults, partition_max above
 * shard_max), -ENOSPC (no free loop hook) or -ENOMEM.
 */
int producers_create(struct producers **out, const struct producers_options *opts);

/* The shard-log hooks that rebuild P on open and store it in checkpoints: put them in
 * shardlog_options.hooks. */
struct shardlog_hooks producers_hooks(struct producers *p);

/*
 * After shardlog_open (with producers_hooks) returned LOG: forgets what recovery fed
 * that the log does not hold (batches at or past each partition's next offset,
 * partitions not registered), starts appending to LOG and, with a shard, serves
 * SHARD_OP_PRODUCE for peers; on shard 0, META (NULL on the others) hands out producer
 * ids and SHARD_OP_PRODUCER_ID is served. Returns 0, or -ENOMEM (nothing changed).
 */
int producers_attach(struct producers *p, struct shardlog *log, struct meta *meta);

/*
 * Stop, before the log is closed: what waits for backpressure is answered with
 * -ESHUTDOWN, and so is every later producers_produce / producers_new_id and every
 * peer's request; the hook is removed. Appends already in the log are answered when
 * their writes complete (during shardlog_close). Idempotent.
 */
void producers_quiesce(struct producers *p);

/* Unregisters the mesh operations and frees P (after shardlog_close, or when the log
 * never opened). A forward still waiting for its owner's reply (the owner stopped
 * first) is left to the process exit. NULL is a no-op. */
void producers_destroy(struct producers *p);

/* ---- the state machine (no I/O) ---- */

/* The verdict on the batch with header H for PARTITION_ID; for PRODUCERS_DUPLICATE,
 * *OFFSET (may be NULL) gets the remembered batch's base offset. Changes nothing. */
enum producers_verdict producers_check(const struct producers *p, uint32_t partition_id,
				       const struct batch_header *h, int64_t *offset);

/* Records that the batch with header H was appended to PARTITION_ID at BASE_OFFSET
 * (after a PRODUCERS_APPEND verdict; a batch without producer id is ignored): a new
 * epoch forgets the old one's batches, the oldest of more than PRODUCERS_BATCHES is
 * dropped, and the producer becomes the most recently used (evicting another when a
 * limit is reached). */
void producers_record(struct producers *p, uint32_t partition_id, const struct batch_header *h,
		      int64_t base_offset);

/* Forgets PARTITION_ID's batches at or past NEXT_OFFSET, and producers left with none. */
void producers_truncate(struct producers *p, uint32_t partition_id, int64_t next_offset);

/* Producer states held. */
uint32_t producers_count(const struct producers *p);

/* Checks the tables and lists against each other; O(states). For DASSERT and tests. */
bool producers_sanity(const struct producers *p);

/* ---- the produce path ---- */

struct producers_op;
typedef void (*producers_done_fn)(void *ctx, struct producers_op *op);

struct producers_fwd; /* a forwarded batch in flight (private) */

/* A queued cross-shard request (private). */
struct producers_outbox {
	struct producers_outbox *next; /* in the queue of its target */
	enum shard_op op;	       /* the operation to send */
	void *payload;		       /* its payload */
	struct shard_call *call;       /* the sender's call record */
};

/*
 * One batch for one partition, anywhere in the broker: the caller's record from
 * producers_produce to its answer; it must not move or be freed before that. The caller
 * sets the first three fields.
 */
struct producers_op {
	uint32_t partition_id; /* broker-wide partition id */
	uint32_t owner;	       /* the shard owning it (topic table) */
	bool durable;	       /* answer once synced (acks=-1); else once in the log's memory */
	/* the answer */
	int status; /* 0: VERDICT decided it; else a negative errno, see producers_produce */
	enum producers_verdict verdict; /* APPEND: appended at base_offset; DUPLICATE: not
					 * appended, base_offset is the original's; others:
					 * refused, base_offset -1 */
	int64_t base_offset;		/* first offset of the batch, -1 when not appended */
	int64_t log_start_offset;	/* the partition's when answered, -1 when unknown */
	/* private */
	struct producers *p;	   /* whose op it is */
	producers_done_fn done;	   /* called when the answer came later */
	void *done_ctx;		   /* its first argument */
	const uint8_t *batch;	   /* the bytes to append */
	uint32_t len;		   /* their length */
	uint8_t *copy;		   /* heap copy of the bytes while queued, or NULL */
	uint32_t copy_cap;	   /* its size (it may come from the shard's cache) */
	struct producers_op *next; /* in the log-backpressure FIFO */
	struct producers_fwd *fwd; /* in flight to the owner */
	bool stable;		   /* BATCH outlives the op (a peer's forwarded bytes) */
	bool async;		   /* the answer goes through DONE */
};

/*
 * Appends the LEN-byte batch at BATCH (validated with batch_validate, read only during
 * the call) to OP->partition_id on shard OP->owner, after the idempotence check, with
 * OP->durable. Returns 0 when OP is answered already (DONE is not called), or
 * -EINPROGRESS when DONE(CTX, OP) will be called from the loop with the answer. The
 * answer's status is 0 (the verdict decides) or:
 *  -ENOENT     the owner does not have the partition (deleted meanwhile);
 *  -EMSGSIZE   the batch is larger than the owner's log takes;
 *  -EINVAL     the batch header does not parse, or OP->owner is not a shard;
 *  -ESHUTDOWN  this shard or the owner is stopping (or serves no produce);
 *  -ENOMEM;
 *  another negative errno: the owner's log failed (-EIO usually).
 * acks=1 semantics: a non-durable batch is answered once it is in the owner's log
 * memory; a durable one once synced; a durable duplicate once the log is synced up to
 * its end (shardlog_barrier).
 */
int producers_produce(struct producers *p, struct producers_op *op, const void *batch, uint32_t len,
		      producers_done_fn done, void *ctx);

/* ---- producer ids ---- */

struct producers_id_op;
typedef void (*producers_id_fn)(void *ctx, struct producers_id_op *op);

/* A request for a producer id: must not move or be freed before its answer. */
struct producers_id_op {
	int status;	     /* 0, or -ENOSPC (ids exhausted), a journal write error,
			      * -ESHUTDOWN, -EOPNOTSUPP (shard 0 hands out none) */
	int64_t producer_id; /* the new id when status is 0 */
	/* private */
	struct producers *p;		/* whose op it is */
	producers_id_fn done;		/* called when the answer came later */
	void *done_ctx;			/* its first argument */
	struct shard_call call;		/* the request to shard 0 */
	struct producers_outbox outbox; /* queued for the mesh window */
};

/*
 * A new producer id, never handed out before, across restarts (meta_next_producer_id on
 * shard 0). Returns 0 when OP is answered already (on shard 0), or -EINPROGRESS when
 * DONE(CTX, OP) will be called from the loop.
 */
int producers_new_id(struct producers *p, struct producers_id_op *op, producers_id_fn done,
		     void *ctx);

/* Copies the counters into *OUT. */
void producers_stats(const struct producers *p, struct producers_stats *out);

#endif
