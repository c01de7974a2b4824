/*
 * net/api_init_producer_id.c: the InitProducerId handler (API key 22), versions 0-1, for
 * idempotent producers: a new producer id from core/producers (the metadata's
 * persisted high-water mark on shard 0, asked over the mesh from the other shards, so
 * ids never repeat, across restarts too) with epoch 0. Transactions do not exist in
 * sluice: a request with a transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED
 * (53), the answer of a Kafka broker whose authorizer denies the id, which clients
 * treat as fatal with a clear message instead of retrying a coordinator that will
 * never come (COORDINATOR_NOT_AVAILABLE would make them retry forever).
 * transaction_timeout_ms is ignored.
 *
 * Errors: the broker stopping (or no producer state on this shard): COORDINATOR_NOT_
 * AVAILABLE (15, retried by clients); ids exhausted or the metadata journal failing:
 * UNKNOWN_SERVER_ERROR (-1). The producer id and epoch are -1 on every error.
 *
 * Request (InitProducerIdRequest.json, v0-1; v2+ are flexible and not accepted):
 *
 *   field                    type      versions  meaning
 *  +------------------------+---------+---------+--------------------------------------+
 *  | transactional_id       | nstring | 0+      | null for an idempotent producer       |
 *  | transaction_timeout_ms | int32   | 0+      | ignored                               |
 *  +------------------------+---------+---------+--------------------------------------+
 *
 * Response (InitProducerIdResponse.json; v1 only changes throttling):
 *
 *   field                    type      versions  value
 *  +------------------------+---------+---------+--------------------------------------+
 *  | throttle_time_ms       | int32   | 0+      | 0                                     |
 *  | error_code             | int16   | 0+      | 0, 53, 15 or -1                       |
 *  | producer_id            | int64   | 0+      | the new id, -1 on error               |
 *  | producer_epoch         | int16   | 0+      | 0, -1 on error                        |
 *  +------------------------+---------+---------+--------------------------------------+
 */
#include <errno.h>
#include <stdlib.h>

#include "core/broker.h"
#include "core/logger.h"
#include "core/producers.h"
#include "net/api.h"
#include "net/kafka.h"
#include "net/server.h"

#define IPID_RESPONSE_BYTES (4 + 2 + 8 + 2)

/* A request waiting for shard 0's answer. */
struct ipid_ctx {
	struct producers_id_op op; /* the id request (core/producers) */
	struct api_request *req;   /* NULL once abandoned */
};

static void ipid_answer(struct api_request *req, int16_t error, int64_t producer_id)
{
	struct wire_writer w;
	if (api_response_begin(req, IPID_RESPONSE_BYTES, &w) < 0) {
		api_fail(req, "out of memory for the InitProducerId response");
		return;
	}
	wire_write_i32(&w, 0); /* throttle_time_ms */
	wire_write_i16(&w, error);
	wire_write_i64(&w, error == KERR_NONE ? producer_id : -1);
	wire_write_i16(&w, error == KERR_NONE ? 0 : -1);
	api_respond(req, &w);
}

static void ipid_answer_op(struct api_request *req, const struct producers_id_op *op)
{
	int16_t error = KERR_NONE;
	if (op->status == -ESHUTDOWN || op->status == -EOPNOTSUPP)
		error = KERR_COORDINATOR_NOT_AVAILABLE;
	else if (op->status < 0)
		error = KERR_UNKNOWN_SERVER_ERROR;
	ipid_answer(req, error, op->producer_id);
}

static void ipid_done(void *arg, struct producers_id_op *op)
{
	struct ipid_ctx *ctx = arg;
	if (ctx->req)
		ipid_answer_op(ctx->req, op);
	free(ctx);
}

static void ipid_abandon(struct api_request *req)
{
	struct ipid_ctx *ctx = req->ctx;
	ctx->req = NULL; /* freed when shard 0's answer (or its failure) arrives */
}

int api_init_producer_id_handle(struct api_request *req)
{
	struct wire_reader *r = &req->body;
	struct wire_str txn = wire_read_nullable_string(r);
	(void)wire_read_i32(r); /* transaction_timeout_ms */
	if (!wire_reader_ok(r))
		return -EBADMSG;
	if (txn.ptr) {
		LOG_DEBUG("net: %s asked for transactional id '%.*s': sluice has no transactions",
			  req->conn->peer, (int)txn.len, txn.ptr);
		ipid_answer(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1);
		return 0;
	}
	struct producers *prod = broker_producers(req->server->shard);
	if (!prod) {
		ipid_answer(req, KERR_COORDINATOR_NOT_AVAILABLE, -1);
		return 0;
	}
	struct ipid_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		api_fail(req, "out of memory for the InitProducerId request");
		return 0;
	}
	ctx->req = req;
	if (producers_new_id(prod, &ctx->op, ipid_done, ctx) == 0) {
		ipid_answer_op(req, &ctx->op);
		free(ctx);
		return 0;
	}
	req->ctx = ctx;
	req->abandon = ipid_abandon;
	return 0;
}
