/*
 * tests/fuzz/fuzz_request.c: a libFuzzer target over sluice's request decoding. Each
 * input is one request message as it follows the 4-byte size prefix on the wire
 * (request header v1, then a body); it goes through the real path a received frame
 * takes: net/wire's frame check, then api_dispatch (net/api), which reads the header
 * with wire_read_request_header, checks key and version against net/kafka's table and
 * calls the API's handler, whose decoder reads the body. The handlers run against a
 * fake shard that hosts no broker layer (no topic table, no shard log), the way a
 * server layer without a broker runs: every decoder runs in full, and what the handler
 * does next finds no topic, so nothing touches a disk or another shard. The fake
 * connection is held "busy and closing" (net/conn: an answer is stored in its slot and
 * nothing is sent, a close is a no-op), so an answer, a deferral or a failure of the
 * handler can be checked here without sockets: an answer must be a well-formed frame
 * (size prefix matching its bytes, the request's correlation id); a deferred request
 * has its loop timers fired at once (a Fetch long-poll expires) and is abandoned if it
 * is still waiting; a handler that returned an error must not have answered; nothing
 * may log an ERROR line (handlers log their own bugs so, e.g. an answer that overflowed
 * the size the handler computed for it). Record
 * batch validation is reached through the Produce handler once it exists, and directly
 * in tests/fuzz/fuzz_batch.c. ASan, UBSan and LeakSanitizer (per input) report what
 * goes wrong; an answer that breaks the rules above aborts.
 *
 * Build and run: `make fuzz` (clang with libFuzzer; tests/fuzz/local.mk), then
 *   tests/fuzz/fuzz_request -max_total_time=600 CORPUS_DIR $(srcdir)/tests/fuzz/corpus/request
 * The seed corpus holds real requests of every API sluice answers (a leading 4-byte size
 * is not part of a seed). tests/fuzz/run-fuzz.sh runs it in `make check` for a bounded
 * time. A crash leaves crash-<sha1> in the artifact directory: rerun the target with that
 * file as its only argument to reproduce.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/logger.h"
#include "core/shard.h"
#include "io/loop.h"
#include "net/api.h"
#include "net/conn.h"
#include "net/server.h"
#include "net/wire.h"

/* Timers a deferred request may arm before it is abandoned (a handler arms one or two). */
#define FUZZ_TIMERS_FIRED_MAX 64

static struct config fuzz_cfg;
static struct shard_set fuzz_set;
static struct shard fuzz_shard;
static struct server fuzz_server;
static struct conn fuzz_conn;
static struct api_request fuzz_reqs[LIMITS_CONN_INFLIGHT_MAX];
static int fuzz_log_fd = -1; /* reads the logger's file, or -1 (FUZZ_LOG_DEBUG) */
static off_t fuzz_log_seen;  /* its bytes already shown */

/* Sends the logger's lines to an unlinked scratch file that fuzz_log_fd also reads, so
 * that an ERROR line (a handler's own bug report, such as a response that overflowed
 * its buffer) stops the run; with FUZZ_LOG_DEBUG set every line goes to stderr. */
static void fuzz_log_setup(void)
{
	if (getenv("FUZZ_LOG_DEBUG")) {
		logger_set_level(LOGGER_DEBUG);
		return;
	}
	logger_set_level(LOGGER_ERROR);
	char path[] = "/tmp/sluice-fuzz-log.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || logger_open(path) < 0) {
		fprintf(stderr, "fuzz_request: cannot open a scratch log file\n");
		abort();
	}
	unlink(path);
	fuzz_log_fd = fd;
}

/* Aborts, showing them, when log lines were written since the last call. */
static void fuzz_log_check(void)
{
	struct stat st;
	if (fuzz_log_fd < 0 || fstat(fuzz_log_fd, &st) < 0 || st.st_size == fuzz_log_seen)
		return;
	char line[1024];
	ssize_t n = pread(fuzz_log_fd, line, sizeof(line) - 1, fuzz_log_seen);
	line[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "fuzz_request: the request made sluice log an error:\n%s\n", line);
	abort();
}

static void fuzz_setup(void)
{
	fuzz_log_setup();
	config_defaults(&fuzz_cfg);
	fuzz_cfg.advertised_host[0] = '\0';
	fuzz_set.cfg = &fuzz_cfg;
	fuzz_set.count = 2; /* shard 0 of two: Metadata lists two brokers */
	fuzz_set.shards = &fuzz_shard;
	fuzz_shard.id = 0;
	fuzz_shard.set = &fuzz_set;
	char why[256] = "";
	if (loop_init(&fuzz_shard.loop, 64, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz_request: cannot create an io_uring loop: %s\n", why);
		abort();
	}
	fuzz_server.shard = &fuzz_shard;
	fuzz_server.loop = &fuzz_shard.loop;
	fuzz_server.cfg = &fuzz_cfg;
	fuzz_server.topics = NULL;
	fuzz_server.listen_fd = -1;
	fuzz_server.port = fuzz_cfg.port;
	snprintf(fuzz_server.host, sizeof(fuzz_server.host), "127.0.0.1");
	snprintf(fuzz_server.cluster_id, sizeof(fuzz_server.cluster_id), "sluice-fuzz");
	fuzz_conn.server = &fuzz_server;
	fuzz_conn.state = CONN_CLOSING; /* conn_close is a no-op, nothing is armed or sent */
	fuzz_conn.busy = 1;		/* conn_after returns at once: the slot keeps the answer */
	fuzz_conn.fd = -1;
	fuzz_conn.reqs = fuzz_reqs;
	snprintf(fuzz_conn.peer, sizeof(fuzz_conn.peer), "fuzz");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	return 0;
}

static uint32_t fuzz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the answer in slot 0 and frees it. */
static void fuzz_check_answer(struct conn_slot *slot, int32_t correlation_id)
{
	const struct conn_response *resp = &slot->resp;
	size_t ext = 0;
	for (uint32_t i = 0; i < resp->ext_count; i++)
		ext += resp->ext[i].iov_len;
	if (resp->len < WIRE_SIZE_PREFIX_BYTES + WIRE_RESPONSE_HEADER_BYTES ||
	    fuzz_be32(resp->buf) != resp->len - WIRE_SIZE_PREFIX_BYTES + ext ||
	    (int32_t)fuzz_be32(resp->buf + WIRE_SIZE_PREFIX_BYTES) != correlation_id) {
		fprintf(stderr,
			"fuzz_request: malformed answer: %u bytes, size prefix %u, ext %zu\n",
			resp->len, resp->len >= 4 ? fuzz_be32(resp->buf) : 0, ext);
		abort();
	}
	free(resp->buf);
	if (resp->release)
		resp->release(resp->release_ctx);
}

/* Fires every armed timer of the loop at once (a long-poll expires), at most
 * FUZZ_TIMERS_FIRED_MAX of them. */
static void fuzz_fire_timers(struct loop *loop)
{
	for (int i = 0; i < FUZZ_TIMERS_FIRED_MAX && loop->timer_count > 0; i++) {
		struct loop_timer *t = loop->timers[0];
		loop_timer_disarm(loop, t);
		t->fn(t->ctx, loop, t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The framing check, as the receive path runs it on the same bytes. */
	uint32_t frame_len;
	wire_frame_length(data, size, (uint32_t)fuzz_cfg.request_max_bytes, &frame_len);
	if (size > fuzz_cfg.request_max_bytes)
		return 0;

	struct conn *c = &fuzz_conn;
	struct conn_slot *slot = &c->slots[0];
	memset(slot, 0, sizeof(*slot));
	slot->state = CONN_SLOT_WAITING;
	c->waiting = 1;

	/* A private copy, so that reading one byte past the input is an ASan report. */
	uint8_t *msg = malloc(size ? size : 1);
	if (!msg)
		return 0;
	if (size)
		memcpy(msg, data, size);
	int ret = api_dispatch(c, 0, msg, (uint32_t)size);
	int32_t correlation_id = c->reqs[0].correlation_id;
	/* The frame's bytes die when the dispatch returns; poison them by freeing. */
	free(msg);

	if (ret < 0 && slot->state != CONN_SLOT_WAITING) {
		fprintf(stderr, "fuzz_request: dispatch failed (%d) but the slot was answered\n",
			ret);
		abort();
	}
	if (ret == 0 && slot->state == CONN_SLOT_WAITING) {
		fuzz_fire_timers(&fuzz_shard.loop);
		if (slot->state == CONN_SLOT_WAITING) {
			struct api_request *req = &c->reqs[0];
			if (req->abandon)
				req->abandon(req);
			fuzz_fire_timers(
			    &fuzz_shard.loop); /* none may be left to a freed request */
			slot->state = CONN_SLOT_NONE;
		}
	}
	if (slot->state == CONN_SLOT_READY)
		fuzz_check_answer(slot, correlation_id);
	if (fuzz_shard.loop.timer_count > 0) {
		fprintf(stderr, "fuzz_request: %u timer(s) left armed after the request ended\n",
			fuzz_shard.loop.timer_count);
		abort();
	}
	fuzz_log_check();
	memset(slot, 0, sizeof(*slot));
	c->waiting = 0;
	return 0;
}
