/*
 * net/api_fetch.c: the Fetch handler (API key 1), versions 4-11, for consumers. Each
 * requested partition is read from its shard's log (core/shardlog) as whole record
 * batches, in request order, and the batches go out as scatter/gather slices straight
 * from the log's tail cache or the pool chunks of a disk read (api_respond_ext; the
 * read pins are dropped once the response was sent). Sizes follow Kafka (KIP-74): a
 * partition gets at most min(partition_max_bytes, what is left of max_bytes), but the
 * first partition that has data always returns at least one whole batch, however
 * large; a later partition whose first batch does not fit returns none. max_bytes is
 * lowered to LIMITS_FETCH_RESPONSE_BYTES_MAX (Kafka's broker fetch.max.bytes).
 *
 * Long-poll: when the record bytes found are below min_bytes (and max_wait_ms > 0, no
 * partition had an error), the reads are released and the request waits: on a loop
 * timer for max_wait_ms, and on this shard's wake-up list (at most
 * LIMITS_FETCH_WAITERS_MAX entries; past it a request waits on its timer alone), which
 * the shard log's on-advance callback walks after every write completion that moved a
 * high watermark; a waiter one of whose local partitions moved reads again, and answers
 * once min_bytes is reached or the timer fired (then with whatever there is). When no
 * loop timer is free it answers at once. Partitions of other shards do not wake a
 * waiter early: a long-poll over them alone waits its whole max_wait_ms, and they are
 * read again on every pass.
 *
 * Forwarding: a partition owned by another shard is read there (SHARD_OP_FETCH over the
 * mesh): the owner reads it as above and copies the batch bytes into a heap buffer that
 * travels back with the reply and goes out as one slice. A read that cannot be forwarded
 * (the mesh window is full, the owner serves no forwarded reads) is answered
 * NOT_LEADER_OR_FOLLOWER, which makes the client refresh its metadata and fetch from the
 * owner itself, as it should. Partitions are read one after the other (each size limit
 * depends on what came before), so a disk read or a forwarded read holds up the ones
 * after it in the request.
 *
 * Fetch sessions (KIP-227, v7+): sluice keeps none, as a Kafka broker with
 * max.incremental.fetch.session.cache.slots=0 (FetchSession.scala, FetchManager.newContext):
 * a full fetch (session_epoch 0 or -1, whatever session_id) is served and answered
 * with session_id 0, which tells the client that no session was made; an incremental
 * one (any other epoch) gets FETCH_SESSION_ID_NOT_FOUND (70) at the top level with no
 * topics, at once. forgotten_topics_data and rack_id are read and ignored; replica_id is
 * ignored (every fetcher is a consumer: reads stop at the high watermark). There are no
 * transactions: last_stable_offset is the high watermark and aborted_transactions is
 * null for READ_UNCOMMITTED and empty for READ_COMMITTED, as Kafka answers a log without
 * aborted transactions. current_leader_epoch (v9+) is checked against the leader epoch
 * sluice advertises, 0: -1 or 0 pass, a larger one is UNKNOWN_LEADER_EPOCH (75), a
 * smaller one FENCED_LEADER_EPOCH (74), as Kafka's Partition does.
 *
 * Request (FetchRequest.json, apache/kafka clients/src/main/resources/common/message):
 *
 *   field                     type     versions  use
 *  +-------------------------+--------+---------+--------------------------------------+
 *  | replica_id              | int32  | 0+      | ignored (-1 for consumers)           |
 *  | max_wait_ms             | int32  | 0+      | long-poll bound; <= 0: answer at once|
 *  | min_bytes               | int32  | 0+      | record bytes to wait for             |
 *  | max_bytes               | int32  | 3+      | response record bytes (KIP-74)       |
 *  | isolation_level         | int8   | 4+      | 0 uncommitted, 1 committed           |
 *  | session_id              | int32  | 7+      | see above                            |
 *  | session_epoch           | int32  | 7+      | 0 / -1 full, else incremental        |
 *  | topics                  | array  | 0+      | of:                                  |
 *  |   topic                 | string |         |                                      |
 *  |   partitions            | array  |         | of:                                  |
 *  |     partition           | int32  |         |   index in the topic                 |
 *  |     current_leader_epoch| int32  | 9+      |   -1, or checked against 0           |
 *  |     fetch_offset        | int64  |         |   first offset wanted                |
 *  |     log_start_offset    | int64  | 5+      |   followers only: ignored            |
 *  |     partition_max_bytes | int32  |         |   record bytes of this partition     |
 *  | forgotten_topics_data   | array  | 7+      | of topic (string), partitions [int32]|
 *  | rack_id                 | string | 11+     | ignored                              |
 *  +-------------------------+--------+---------+--------------------------------------+
 *
 * Response (FetchResponse.json), after the response header v0:
 *
 *   field                     type     versions  value
 *  +-------------------------+--------+---------+--------------------------------------+
 *  | throttle_time_ms        | int32  | 1+      | 0                                    |
 *  | error_code              | int16  | 7+      | 0, or 70 (incremental fetch)         |
 *  | session_id              | int32  | 7+      | 0                                    |
 *  | responses               | array  | 0+      | per topic, in request order:         |
 *  |   topic                 | string |         |                                      |
 *  |   partitions            | array  |         | per partition, in request order:     |
 *  |     partition           | int32  |         |                                      |
 *  |     error_code          | int16  |         |   0, 1, 3, 6, 56, 74, 75, -1         |
 *  |     high_watermark      | int64  |         |   -1 on an error                     |
 *  |     last_stable_offset  | int64  | 4+      |   = high_watermark                   |
 *  |     log_start_offset    | int64  | 5+      |   -1 on an error                     |
 *  |     aborted_transactions| array  | 4+      |   null / empty, see above            |
 *  |     preferred_read_replica| int32| 11+     |   -1                                 |
 *  |     records             | bytes  | 0+      |   int32 length, whole batches        |
 *  +-------------------------+--------+---------+--------------------------------------+
 *
 * The response leaves as one buffer holding the size prefix and header, then external
 * slices: pieces of a heap buffer with every non-record field, interleaved with the
 * record slices of each partition. Error codes: UNKNOWN_TOPIC_OR_PARTITION (3) for a
 * topic or partition that does not exist, OFFSET_OUT_OF_RANGE (1) below the log start or
 * above the log end offset (with -1 watermarks, as Kafka), KAFKA_STORAGE_ERROR (56, v6+;
 * UNKNOWN_SERVER_ERROR before) for a failed disk read. A read the shard log refuses for
 * backpressure (no free pool chunk, every pin taken) returns no records, no error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/broker.h"
#include "core/logger.h"
#include "core/shard.h"
#include "core/shardlog.h"
#include "core/topics.h"
#include "io/loop.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

/* Kafka's isolation levels (IsolationLevel.java). */
#define FETCH_READ_COMMITTED 1
/* Full-fetch session epochs (FetchMetadata.java: INITIAL_EPOCH, FINAL_EPOCH). */
#define FETCH_EPOCH_INITIAL 0
#define FETCH_EPOCH_FINAL   (-1)
/* The leader epoch sluice advertises (Metadata v7+) and accepts. */
#define FETCH_LEADER_EPOCH 0
/* Bytes of the fixed response fields, of a topic entry besides its name, of a partition
 * entry (all at the highest version). */
#define FETCH_TOP_BYTES	      (4 + 2 + 4 + 4)
#define FETCH_TOPIC_BYTES     (2 + 4)
#define FETCH_PARTITION_BYTES (4 + 2 + 8 + 8 + 8 + 4 + 4 + 4)

enum fetch_state {
	FETCH_RUNNING = 0, /* a pass is going through the partitions */
	FETCH_READING,	   /* the pass waits for a disk read of the partition at cursor */
	FETCH_CALLING,	   /* the pass waits for the owner's answer for that partition */
	FETCH_WAITING,	   /* between passes: the long-poll */
	FETCH_ANSWERED,	   /* the response is out; the struct waits for its release */
};

/* One requested topic. */
struct fetch_topic {
	const char *name; /* in fetch.names */
	uint16_t len;	  /* bytes of name */
	uint32_t first;	  /* its first partition in fetch.parts */
	uint32_t count;	  /* its partitions */
};

/* One requested partition and what the current pass found for it. */
struct fetch_part {
	uint32_t topic;	      /* index in fetch.topics */
	int32_t partition;    /* index in the topic, as asked */
	int32_t leader_epoch; /* current_leader_epoch, -1 before v9 */
	int64_t fetch_offset; /* first offset wanted */
	uint32_t max_bytes;   /* partition_max_bytes (negative: 0) */
	/* found by the pass */
	uint32_t partition_id;	  /* broker-wide id, when the partition exists */
	uint32_t owner;		  /* its shard */
	bool exists;		  /* the topic and partition were found */
	int16_t error;		  /* KERR_* */
	int64_t high_watermark;	  /* -1 on an error */
	int64_t log_start_offset; /* -1 on an error */
	uint64_t bytes;		  /* record bytes this partition returns */
	struct shardlog_read *rd; /* local read (heap, reused by later passes), or NULL */
	bool holding;		  /* rd holds slices to send or release */
	uint8_t *copy;		  /* a forwarded read's bytes (heap), or NULL */
};

/*
 * A forwarded read: allocated by the requesting shard, owned by the partition's owner
 * from shard_call to its reply, then by the requester again, which frees it (and
 * takes DATA over).
 */
struct fetch_fwd {
	/* in */
	uint32_t partition_id; /* what to read */
	int64_t offset;	       /* from where */
	uint32_t max_bytes;    /* how much */
	bool min_one;	       /* return a first batch larger than max_bytes */
	int16_t version;       /* of the request, for the storage error's code */
	/* out */
	int16_t error;		  /* KERR_* */
	int64_t high_watermark;	  /* of the partition, -1 on an error */
	int64_t log_start_offset; /* -1 on an error */
	uint8_t *data;		  /* the batches (heap), NULL when none */
	uint32_t len;		  /* their bytes */
	/* the owner's, while it reads */
	struct shard *shard;	  /* the owner */
	uint32_t from;		  /* the requesting shard */
	struct ring_msg request;  /* to reply to */
	struct shardlog_read *rd; /* the read (heap) */
};

/* One Fetch request, from dispatch to the release of its response. */
struct fetch {
	struct api_request *req;    /* to answer; NULL once answered */
	struct server *server;	    /* the shard's net layer */
	struct shardlog *log;	    /* the shard's log, NULL without a broker layer */
	int16_t version;	    /* of the request */
	int8_t isolation;	    /* isolation_level */
	int16_t top_error;	    /* top-level error (v7+): 0 or 70 */
	int32_t max_wait_ms;	    /* long-poll bound */
	int32_t min_bytes;	    /* what the long-poll waits for */
	uint32_t max_bytes;	    /* response record bytes, clamped */
	uint32_t topic_count;	    /* entries of topics */
	uint32_t part_count;	    /* entries of parts */
	struct fetch_topic *topics; /* in request order */
	struct fetch_part *parts;   /* in request order, topic by topic */
	char *names;		    /* the topic names' bytes */
	enum fetch_state state;	    /* see enum fetch_state */
	/* the pass */
	uint32_t cursor;	 /* the partition being read */
	uint32_t limit;		 /* record bytes it may return (KIP-74) */
	uint64_t total;		 /* record bytes found so far */
	bool min_one;		 /* no partition returned data yet (KIP-74) */
	bool any_error;		 /* a partition had an error: answer at once */
	bool final;		 /* the wait is over: the pass answers whatever it finds */
	bool waited;		 /* the request waited at least once */
	bool abandoned;		 /* the server stopped: free once the I/O in flight ended */
	struct shard_call call;	 /* the forwarded read in flight */
	struct loop_timer timer; /* max_wait_ms */
	struct fetch *wait_prev; /* links of the wake-up list */
	struct fetch *wait_next; /* links of the wake-up list */
	bool listed;		 /* on the wake-up list */
	/* the response */
	uint8_t *hdr;	    /* every non-record field (heap) */
	struct iovec *iov;  /* header pieces and record slices */
	uint32_t iov_count; /* entries of iov */
};

/* One shard's long-poll wake-up list and counters: per thread, as a shard is a thread. */
struct fetch_shard {
	struct fetch *head;	      /* oldest waiter */
	struct fetch *tail;	      /* newest waiter */
	uint32_t count;		      /* waiters listed */
	struct api_fetch_stats stats; /* counters */
};

static _Thread_local struct fetch_shard fetch_local;

static void fetch_continue(struct fetch *f);

void api_fetch_stats(struct api_fetch_stats *out)
{
	*out = fetch_local.stats;
	out->waiting = fetch_local.count;
}

/* ---- wake-up list ---- */

static void fetch_unlist(struct fetch *f)
{
	if (!f->listed)
		return;
	if (f->wait_prev)
		f->wait_prev->wait_next = f->wait_next;
	else
		fetch_local.head = f->wait_next;
	if (f->wait_next)
		f->wait_next->wait_prev = f->wait_prev;
	else
		fetch_local.tail = f->wait_prev;
	f->wait_prev = f->wait_next = NULL;
	f->listed = false;
	fetch_local.count--;
}

static void fetch_list(struct fetch *f)
{
	ASSERT(!f->listed && fetch_local.count < LIMITS_FETCH_WAITERS_MAX);
	f->wait_prev = fetch_local.tail;
	f->wait_next = NULL;
	if (fetch_local.tail)
		fetch_local.tail->wait_next = f;
	else
		fetch_local.head = f;
	fetch_local.tail = f;
	f->listed = true;
	fetch_local.count++;
}

/* ---- freeing ---- */

/* Gives back what the pass holds for P: pins, pool chunks, a forwarded copy. */
static void fetch_part_drop(struct fetch *f, struct fetch_part *p)
{
	if (p->holding) {
		shardlog_read_release(f->log, p->rd);
		p->holding = false;
	}
	free(p->copy);
	p->copy = NULL;
	p->bytes = 0;
}

static void fetch_free(struct fetch *f)
{
	ASSERT(!f->listed && !loop_timer_armed(&f->timer));
	for (uint32_t i = 0; i < f->part_count; i++) {
		fetch_part_drop(f, &f->parts[i]);
		free(f->parts[i].rd);
	}
	free(f->parts);
	free(f->topics);
	free(f->names);
	free(f->hdr);
	free(f->iov);
	free(f);
}

/* The response was sent, or its connection closed. */
static void fetch_release(void *ctx)
{
	fetch_free(ctx);
}

static void fetch_abandon(struct api_request *req)
{
	struct fetch *f = req->ctx;
	fetch_unlist(f);
	loop_timer_disarm(f->server->loop, &f->timer);
	f->req = NULL;
	if (f->state == FETCH_READING || f->state == FETCH_CALLING)
		f->abandoned = true; /* the completion frees it */
	else
		fetch_free(f);
}

/* ---- the answer ---- */

static void fetch_iov_add(struct fetch *f, const void *base, size_t len)
{
	if (len == 0)
		return;
	f->iov[f->iov_count].iov_base = (void *)base;
	f->iov[f->iov_count].iov_len = len;
	f->iov_count++;
}

/* Writes the response (see the top of the file) and sends it with the record slices.
 * F is freed by the release once the response was sent; the caller must not touch it
 * after this call. */
static void fetch_answer(struct fetch *f)
{
	struct api_request *req = f->req;
	ASSERT(req && !f->listed);
	loop_timer_disarm(f->server->loop, &f->timer);
	f->state = FETCH_ANSWERED;
	f->req = NULL;
	req->ctx = NULL;
	req->abandon = NULL;

	size_t bytes = FETCH_TOP_BYTES;
	uint32_t iovs = 1;
	for (uint32_t t = 0; t < f->topic_count; t++)
		bytes += FETCH_TOPIC_BYTES + f->topics[t].len;
	for (uint32_t i = 0; i < f->part_count; i++) {
		const struct fetch_part *p = &f->parts[i];
		bytes += FETCH_PARTITION_BYTES;
		if (p->holding)
			iovs += p->rd->slice_count + 1;
		else if (p->copy)
			iovs += 2;
	}
	f->hdr = malloc(bytes);
	f->iov = calloc(iovs, sizeof(*f->iov));
	struct wire_writer w0;
	if (!f->hdr || !f->iov || api_response_begin(req, 0, &w0) < 0) {
		fetch_free(f);
		api_fail(req, "out of memory for the Fetch response");
		return;
	}
	struct wire_writer w;
	wire_writer_init(&w, f->hdr, bytes);
	wire_write_i32(&w, 0); /* throttle_time_ms */
	if (f->version >= 7) {
		wire_write_i16(&w, f->top_error);
		wire_write_i32(&w, 0); /* session_id: no session */
	}
	uint64_t record_bytes = 0;
	size_t piece = 0;
	wire_write_array_len(&w, (int32_t)f->topic_count);
	for (uint32_t t = 0; t < f->topic_count; t++) {
		const struct fetch_topic *topic = &f->topics[t];
		wire_write_string(&w, topic->name, topic->len);
		wire_write_array_len(&w, (int32_t)topic->count);
		for (uint32_t i = topic->first; i < topic->first + topic->count; i++) {
			const struct fetch_part *p = &f->parts[i];
			bool ok = p->error == KERR_NONE;
			wire_write_i32(&w, p->partition);
			wire_write_i16(&w, p->error);
			wire_write_i64(&w, ok ? p->high_watermark : -1);
			wire_write_i64(&w, ok ? p->high_watermark : -1); /* last_stable_offset */
			if (f->version >= 5)
				wire_write_i64(&w, ok ? p->log_start_offset : -1);
			/* aborted_transactions: none; null unless READ_COMMITTED asked */
			wire_write_array_len(&w, f->isolation == FETCH_READ_COMMITTED ? 0 : -1);
			if (f->version >= 11)
				wire_write_i32(&w, -1); /* preferred_read_replica */
			wire_write_i32(&w, (int32_t)p->bytes);
			if (p->bytes == 0 || !wire_writer_ok(&w))
				continue;
			fetch_iov_add(f, f->hdr + piece, w.len - piece);
			piece = w.len;
			if (p->holding) {
				for (uint32_t s = 0; s < p->rd->slice_count; s++)
					fetch_iov_add(f, p->rd->slices[s].data,
						      p->rd->slices[s].len);
			} else {
				fetch_iov_add(f, p->copy, p->bytes);
			}
			record_bytes += p->bytes;
		}
	}
	ASSERT(wire_writer_ok(&w)); /* BYTES bounds every field written */
	fetch_iov_add(f, f->hdr + piece, w.len - piece);
	ASSERT(f->iov_count <= iovs);
	fetch_local.stats.record_bytes += record_bytes;
	api_respond_ext(req, &w0, f->iov, f->iov_count, fetch_release, f);
}

/* ---- a pass over the partitions ---- */

/* Records the result of P's read, which shardlog_read (or the disk read's DONE) gave as
 * RET; P->rd holds the read when RET is 0. */
static void fetch_local_result(struct fetch *f, struct fetch_part *p, int ret)
{
	struct shardlog_read *rd = p->rd;
	switch (ret) {
	case 0:
		p->high_watermark = rd->high_watermark;
		p->log_start_offset = rd->log_start_offset;
		if (!f->min_one && rd->bytes > f->limit) {
			/* Its first batch does not fit what is left (KIP-74): none. */
			shardlog_read_release(f->log, rd);
			break;
		}
		p->holding = true;
		p->bytes = rd->bytes;
		break;
	case -ENODATA: /* at the high watermark: nothing yet */
		p->high_watermark = rd->high_watermark;
		p->log_start_offset = rd->log_start_offset;
		break;
	case -ERANGE:
		p->error = KERR_OFFSET_OUT_OF_RANGE;
		fetch_local.stats.out_of_range++;
		break;
	case -ENOENT: /* the shard log does not have it (deleted meanwhile) */
		p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		break;
	case -EAGAIN: {
		/* Backpressure (no pool chunk, every pin taken): no records this time. */
		struct shardlog_partition_info info;
		fetch_local.stats.read_backpressure++;
		if (shardlog_partition_info(f->log, p->partition_id, &info) < 0) {
			p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			break;
		}
		p->high_watermark = info.high_watermark;
		p->log_start_offset = info.log_start_offset;
		break;
	}
	default: /* a failed disk read (logged by the shard log) */
		p->error = f->version >= 6 ? KERR_KAFKA_STORAGE_ERROR : KERR_UNKNOWN_SERVER_ERROR;
		break;
	}
}

/* Counts the result of the partition at the cursor and moves on. */
static void fetch_step_done(struct fetch *f, const struct fetch_part *p)
{
	if (p->error != KERR_NONE)
		f->any_error = true;
	if (p->bytes > 0) {
		f->total += p->bytes;
		f->min_one = false;
	}
	f->cursor++;
}

/* A disk read of the partition at the cursor completed. */
static void fetch_read_done(void *ctx, struct shardlog_read *rd)
{
	struct fetch *f = ctx;
	ASSERT(f->state == FETCH_READING);
	struct fetch_part *p = &f->parts[f->cursor];
	ASSERT(p->rd == rd);
	if (f->abandoned) {
		shardlog_read_release(f->log, rd);
		fetch_free(f);
		return;
	}
	f->state = FETCH_RUNNING;
	if (rd->status < 0) {
		shardlog_read_release(f->log, rd);
		fetch_local_result(f, p, rd->status);
	} else {
		fetch_local_result(f, p, 0);
	}
	fetch_step_done(f, p);
	fetch_continue(f);
}

/* The owner answered the forwarded read of the partition at the cursor. */
static void fetch_call_done(struct shard_call *call, const struct ring_msg *reply)
{
	struct fetch *f = call->ctx;
	struct fetch_fwd *fw = reply->payload;
	ASSERT(f->state == FETCH_CALLING);
	struct fetch_part *p = &f->parts[f->cursor];
	if (f->abandoned) {
		free(fw->data);
		free(fw);
		fetch_free(f);
		return;
	}
	f->state = FETCH_RUNNING;
	if (reply->status < 0) {
		/* The owner serves no forwarded reads (-EOPNOTSUPP). */
		p->error = KERR_NOT_LEADER_OR_FOLLOWER;
		free(fw->data);
	} else {
		p->error = fw->error;
		p->high_watermark = fw->high_watermark;
		p->log_start_offset = fw->log_start_offset;
		p->copy = fw->data;
		p->bytes = fw->len;
		if (fw->error == KERR_OFFSET_OUT_OF_RANGE)
			fetch_local.stats.out_of_range++;
	}
	free(fw);
	fetch_step_done(f, p);
	fetch_continue(f);
}

/* Checks current_leader_epoch against sluice's leader epoch, as Kafka's Partition does. */
static int16_t fetch_epoch_error(int32_t epoch)
{
	if (epoch == -1 || epoch == FETCH_LEADER_EPOCH)
		return KERR_NONE;
	return epoch > FETCH_LEADER_EPOCH ? KERR_UNKNOWN_LEADER_EPOCH : KERR_FENCED_LEADER_EPOCH;
}

/* Reads the partition at the cursor. Returns true when the read went on (the pass
 * continues from its completion), false when P's result is known. */
static bool fetch_step(struct fetch *f, struct fetch_part *p)
{
	const struct server *s = f->server;
	p->error = KERR_NONE;
	p->high_watermark = -1;
	p->log_start_offset = -1;
	p->bytes = 0;
	p->exists = false;
	const struct fetch_topic *topic = &f->topics[p->topic];
	const struct topic_view *view =
	    s->topics ? topics_find_len(s->topics, topic->name, topic->len) : NULL;
	if (!view || p->partition < 0 || (uint32_t)p->partition >= view->partition_count) {
		p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return false;
	}
	p->partition_id = view->partitions[p->partition].partition_id;
	p->owner = view->partitions[p->partition].shard;
	p->exists = true;
	p->error = fetch_epoch_error(p->leader_epoch);
	if (p->error != KERR_NONE)
		return false;
	uint64_t left = f->max_bytes > f->total ? f->max_bytes - f->total : 0;
	uint32_t limit = (uint32_t)(p->max_bytes < left ? p->max_bytes : left);
	f->limit = limit;

	if (p->owner != s->shard->id) {
		struct fetch_fwd *fw = calloc(1, sizeof(*fw));
		if (!fw) {
			p->error = KERR_UNKNOWN_SERVER_ERROR;
			return false;
		}
		fw->partition_id = p->partition_id;
		fw->offset = p->fetch_offset;
		fw->max_bytes = limit;
		fw->min_one = f->min_one;
		fw->version = f->version;
		f->call.done = fetch_call_done;
		f->call.ctx = f;
		int ret = shard_call(s->shard, p->owner, SHARD_OP_FETCH, fw, 0, &f->call);
		if (ret < 0) { /* the mesh window to the owner is full */
			free(fw);
			p->error = KERR_NOT_LEADER_OR_FOLLOWER;
			return false;
		}
		fetch_local.stats.forwarded++;
		f->state = FETCH_CALLING;
		return true;
	}

	if (!f->log) {
		p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return false;
	}
	if (!p->rd) {
		p->rd = malloc(sizeof(*p->rd));
		if (!p->rd) {
			p->error = KERR_UNKNOWN_SERVER_ERROR;
			return false;
		}
	}
	if (!f->min_one && limit == 0) {
		/* Nothing would fit: the partition's state only. */
		struct shardlog_partition_info info;
		if (shardlog_partition_info(f->log, p->partition_id, &info) < 0) {
			p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		} else if (p->fetch_offset < info.log_start_offset ||
			   p->fetch_offset > info.next_offset) {
			p->error = KERR_OFFSET_OUT_OF_RANGE;
			fetch_local.stats.out_of_range++;
		} else {
			p->high_watermark = info.high_watermark;
			p->log_start_offset = info.log_start_offset;
		}
		return false;
	}
	int ret = shardlog_read(f->log, p->partition_id, p->fetch_offset, limit, p->rd,
				fetch_read_done, f);
	if (ret == -EINPROGRESS) {
		fetch_local.stats.disk_reads++;
		f->state = FETCH_READING;
		return true;
	}
	fetch_local_result(f, p, ret);
	return false;
}

static void fetch_pass(struct fetch *f)
{
	f->state = FETCH_RUNNING;
	f->cursor = 0;
	f->total = 0;
	f->min_one = true;
	f->any_error = false;
	fetch_continue(f);
}

/* True when a local partition F waits on has a new high watermark. */
static bool fetch_has_news(const struct fetch *f)
{
	for (uint32_t i = 0; i < f->part_count; i++) {
		const struct fetch_part *p = &f->parts[i];
		struct shardlog_partition_info info;
		if (!p->exists || p->error != KERR_NONE || p->owner != f->server->shard->id)
			continue;
		if (shardlog_partition_info(f->log, p->partition_id, &info) == 0 &&
		    info.high_watermark != p->high_watermark)
			return true;
	}
	return false;
}

/* The shard log made new data readable: every waiter with news reads again. */
static void fetch_on_advance(void *ctx, struct shardlog *log)
{
	struct fetch_shard *fs = ctx;
	ASSERT(fs == &fetch_local);
	/* Take the list: a waiter that goes on waiting lists itself again at the tail. */
	struct fetch *f = fs->head;
	uint32_t n = fs->count;
	for (uint32_t i = 0; i < n && f; i++) {
		struct fetch *next = f->wait_next;
		if (f->log == log && fetch_has_news(f)) {
			fetch_unlist(f);
			fetch_local.stats.woken++;
			fetch_pass(f);
		}
		f = next;
	}
}

/* max_wait_ms passed. */
static void fetch_on_timer(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	struct fetch *f = ctx;
	f->final = true;
	fetch_local.stats.expired++;
	if (f->state != FETCH_WAITING)
		return; /* a pass is reading: it answers when it ends */
	fetch_unlist(f);
	fetch_pass(f);
}

/* Whether a wait could end early: some partition lives in this shard's log. */
static bool fetch_has_local(const struct fetch *f)
{
	for (uint32_t i = 0; i < f->part_count; i++) {
		const struct fetch_part *p = &f->parts[i];
		if (p->exists && p->error == KERR_NONE && p->owner == f->server->shard->id)
			return true;
	}
	return false;
}

/* The pass went through every partition: answer, or wait for more. */
static void fetch_pass_end(struct fetch *f)
{
	if (f->final || f->any_error ||
	    f->total >= (uint64_t)(f->min_bytes > 0 ? f->min_bytes : 0) || f->max_wait_ms <= 0 ||
	    f->part_count == 0) {
		fetch_answer(f);
		return;
	}
	/* Below min_bytes: give the reads back and wait. */
	for (uint32_t i = 0; i < f->part_count; i++)
		fetch_part_drop(f, &f->parts[i]);
	if (!f->waited) {
		f->waited = true;
		if (loop_timer_arm(f->server->loop, &f->timer, (uint64_t)f->max_wait_ms) < 0) {
			fetch_answer(f); /* every timer is taken: no long-poll */
			return;
		}
		fetch_local.stats.long_polls++;
	}
	f->state = FETCH_WAITING;
	if (f->log && fetch_has_local(f)) {
		if (fetch_local.count < LIMITS_FETCH_WAITERS_MAX) {
			shardlog_on_advance(f->log, fetch_on_advance, &fetch_local);
			fetch_list(f);
		} else {
			fetch_local.stats.wait_list_full++;
		}
	}
}

static void fetch_continue(struct fetch *f)
{
	while (f->cursor < f->part_count) {
		struct fetch_part *p = &f->parts[f->cursor];
		if (fetch_step(f, p))
			return; /* the completion continues */
		fetch_step_done(f, p);
	}
	fetch_pass_end(f);
}

/* ---- the owner's side of a forwarded read ---- */

/* Copies the read's batches into FW->data (unless they do not fit, see min_one), drops
 * the read and replies. */
static void fetch_fwd_finish(struct fetch_fwd *fw, struct shardlog *log, int ret)
{
	struct shardlog_read *rd = fw->rd;
	fw->error = KERR_NONE;
	fw->high_watermark = -1;
	fw->log_start_offset = -1;
	switch (ret) {
	case 0:
		fw->high_watermark = rd->high_watermark;
		fw->log_start_offset = rd->log_start_offset;
		if (fw->min_one || rd->bytes <= fw->max_bytes) {
			fw->data = malloc(rd->bytes);
			if (!fw->data) {
				fw->high_watermark = fw->log_start_offset = -1;
				fw->error = KERR_UNKNOWN_SERVER_ERROR;
			} else {
				uint64_t at = 0;
				for (uint32_t s = 0; s < rd->slice_count; s++) {
					memcpy(fw->data + at, rd->slices[s].data,
					       rd->slices[s].len);
					at += rd->slices[s].len;
				}
				fw->len = (uint32_t)rd->bytes;
			}
		}
		shardlog_read_release(log, rd);
		break;
	case -ENODATA:
		fw->high_watermark = rd->high_watermark;
		fw->log_start_offset = rd->log_start_offset;
		break;
	case -ERANGE:
		fw->error = KERR_OFFSET_OUT_OF_RANGE;
		break;
	case -ENOENT:
		fw->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		break;
	case -EAGAIN: {
		struct shardlog_partition_info info;
		fetch_local.stats.read_backpressure++;
		if (shardlog_partition_info(log, fw->partition_id, &info) < 0) {
			fw->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		} else {
			fw->high_watermark = info.high_watermark;
			fw->log_start_offset = info.log_start_offset;
		}
		break;
	}
	default:
		shardlog_read_release(log, rd);
		fw->error = fw->version >= 6 ? KERR_KAFKA_STORAGE_ERROR : KERR_UNKNOWN_SERVER_ERROR;
		break;
	}
	free(rd);
	fw->rd = NULL;
	int sent = shard_reply(fw->shard, fw->from, &fw->request, 0, fw, 0);
	ASSERT(sent == 0); /* one reply per request always fits (core/mesh) */
}

static void fetch_fwd_read_done(void *ctx, struct shardlog_read *rd)
{
	struct fetch_fwd *fw = ctx;
	fetch_fwd_finish(fw, broker_log(fw->shard), rd->status < 0 ? rd->status : 0);
}

static void fetch_on_op(void *ctx, struct shard *shard, uint32_t from, const struct ring_msg *msg)
{
	struct fetch_fwd *fw = msg->payload;
	struct shardlog *log = broker_log(shard);
	fw->shard = shard;
	fw->from = from;
	fw->request = *msg;
	fetch_local.stats.served_for_peers++;
	fw->rd = log ? malloc(sizeof(*fw->rd)) : NULL;
	if (!fw->rd) {
		fw->error = log ? KERR_UNKNOWN_SERVER_ERROR : KERR_UNKNOWN_TOPIC_OR_PARTITION;
		fw->high_watermark = fw->log_start_offset = -1;
		int sent = shard_reply(shard, from, msg, 0, fw, 0);
		ASSERT(sent == 0);
		return;
	}
	int ret = shardlog_read(log, fw->partition_id, fw->offset, fw->max_bytes, fw->rd,
				fetch_fwd_read_done, fw);
	if (ret == -EINPROGRESS) {
		fetch_local.stats.disk_reads++;
		return;
	}
	fetch_fwd_finish(fw, log, ret);
}

void api_fetch_shard_init(struct shard *shard)
{
	if (shard->ops[SHARD_OP_FETCH] != fetch_on_op)
		shard_on_op(shard, SHARD_OP_FETCH, fetch_on_op, NULL);
}

/* ---- the request ---- */

/* Reads the request body into a new struct fetch. Returns 0 and *OUT, -EBADMSG for a
 * body that cannot be decoded, -ENOMEM. */
static int fetch_decode(struct api_request *req, struct fetch **out)
{
	struct wire_reader *r = &req->body;
	const int16_t v = req->api_version;
	wire_read_i32(r); /* replica_id */
	int32_t max_wait_ms = wire_read_i32(r);
	int32_t min_bytes = wire_read_i32(r);
	int32_t max_bytes = wire_read_i32(r); /* v3+: every accepted version has it */
	int8_t isolation = wire_read_i8(r);   /* v4+ */
	int32_t session_epoch = FETCH_EPOCH_FINAL;
	if (v >= 7) {
		wire_read_i32(r); /* session_id */
		session_epoch = wire_read_i32(r);
	}
	size_t part_min = 4 + 8 + 4 + (v >= 5 ? 8 : 0) + (v >= 9 ? 4 : 0);
	/* First walk: count and check. */
	struct wire_reader scan = *r;
	int32_t topics = wire_read_array_len(&scan, 2 + 4);
	uint64_t parts = 0, name_bytes = 0;
	for (int32_t t = 0; t < topics; t++) {
		struct wire_str name = wire_read_string(&scan);
		name_bytes += name.len;
		int32_t n = wire_read_array_len(&scan, part_min);
		wire_skip(&scan, (size_t)n * part_min);
		parts += (uint32_t)n;
	}
	if (v >= 7) {
		int32_t forgotten = wire_read_array_len(&scan, 2 + 4);
		for (int32_t t = 0; t < forgotten; t++) {
			wire_read_string(&scan);
			int32_t n = wire_read_array_len(&scan, 4);
			wire_skip(&scan, (size_t)n * 4);
		}
	}
	if (v >= 11)
		wire_read_string(&scan); /* rack_id */
	if (!wire_reader_ok(&scan))
		return -EBADMSG;

	struct fetch *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	loop_timer_init(&f->timer, fetch_on_timer, f);
	f->topics = calloc(topics ? (size_t)topics : 1, sizeof(*f->topics));
	f->parts = calloc(parts ? parts : 1, sizeof(*f->parts));
	f->names = malloc(name_bytes ? name_bytes : 1);
	if (!f->topics || !f->parts || !f->names) {
		fetch_free(f);
		return -ENOMEM;
	}
	f->req = req;
	f->server = req->server;
	f->log = broker_log(req->server->shard);
	f->version = v;
	f->isolation = isolation;
	f->max_wait_ms = max_wait_ms;
	f->min_bytes = min_bytes;
	f->max_bytes = max_bytes < 0 ? 0 : (uint32_t)max_bytes;
	if (f->max_bytes > LIMITS_FETCH_RESPONSE_BYTES_MAX)
		f->max_bytes = LIMITS_FETCH_RESPONSE_BYTES_MAX;
	if (session_epoch != FETCH_EPOCH_INITIAL && session_epoch != FETCH_EPOCH_FINAL) {
		/* An incremental fetch: there is no session to continue. */
		f->top_error = KERR_FETCH_SESSION_ID_NOT_FOUND;
		fetch_local.stats.session_errors++;
		*out = f;
		return 0;
	}
	/* Second walk: fill in. */
	size_t at = 0;
	uint32_t k = 0;
	f->topic_count = (uint32_t)topics;
	wire_read_array_len(r, 2 + 4); /* topics, counted above */
	for (int32_t t = 0; t < topics; t++) {
		struct fetch_topic *topic = &f->topics[t];
		struct wire_str name = wire_read_string(r);
		memcpy(f->names + at, name.ptr, name.len);
		topic->name = f->names + at;
		topic->len = (uint16_t)name.len;
		at += name.len;
		int32_t n = wire_read_array_len(r, part_min);
		topic->first = k;
		topic->count = (uint32_t)n;
		for (int32_t i = 0; i < n; i++, k++) {
			struct fetch_part *p = &f->parts[k];
			p->topic = (uint32_t)t;
			p->partition = wire_read_i32(r);
			p->leader_epoch = v >= 9 ? wire_read_i32(r) : -1;
			p->fetch_offset = wire_read_i64(r);
			if (v >= 5)
				wire_read_i64(r); /* log_start_offset: followers only */
			int32_t pmax = wire_read_i32(r);
			p->max_bytes = pmax < 0 ? 0 : (uint32_t)pmax;
			p->high_watermark = p->log_start_offset = -1;
		}
	}
	ASSERT(wire_reader_ok(r) && k == parts); /* the first walk checked every length */
	f->part_count = k;
	fetch_local.stats.partitions += k;
	*out = f;
	return 0;
}

int api_fetch_handle(struct api_request *req)
{
	api_fetch_shard_init(req->server->shard);
	struct fetch *f;
	int ret = fetch_decode(req, &f);
	if (ret == -EBADMSG)
		return ret;
	if (ret < 0) {
		api_fail(req, "out of memory for the Fetch request");
		return 0;
	}
	if (f->top_error != KERR_NONE) {
		f->topic_count = 0;
		fetch_answer(f);
		return 0;
	}
	/* Until it answers, the request may be deferred: the server then abandons it. */
	req->ctx = f;
	req->abandon = fetch_abandon;
	fetch_pass(f);
	return 0;
}
