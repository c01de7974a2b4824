/*
 * net/conn.c: a connection's receive, send and close state machines on the shard's
 * io_uring (contract and invariants in net/conn.h). The receive side splits the bytes
 * of each multishot-recv buffer into frames, in place or through the stash, and reads
 * the rest of a large frame with one direct recv into the stash; the send side gathers
 * answered slots in order into one sendmsg; every event handler ends in conn_after,
 * which is where the connection re-arms (multishot or direct), sends, pauses or frees
 * itself.
 */
#include "net/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/logger.h"
#include "io/loop.h"
#include "net/api.h"
#include "net/server.h"
#include "net/wire.h"

/* Smallest stash: most spanning frames are small requests cut by a buffer's end. */
#define CONN_STASH_MIN_BYTES 4096u
/* iovecs a connection starts with; grown by doubling up to LIMITS_CONN_SEND_IOVECS_MAX. */
#define CONN_IOV_INITIAL 8u

static void conn_after(struct conn *c);

static inline struct conn_slot *conn_slot_at(struct conn *c, uint32_t i)
{
	return &c->slots[(c->head + i) % LIMITS_CONN_INFLIGHT_MAX];
}

static struct io_uring_sqe *conn_sqe(struct conn *c)
{
	return loop_get_sqe(c->server->loop);
}

/* ---- receive ---- */

/* Arms the recv into the ring's buffers: multishot when LEN is 0, else a single-shot one
 * of at most LEN bytes (the size prefix of the next frame, in large-frame mode). */
static void conn_arm_recv(struct conn *c, size_t len)
{
	struct io_uring_sqe *sqe = conn_sqe(c);
	if (len)
		io_uring_prep_recv(sqe, c->fd, NULL, len, 0);
	else
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = SERVER_RECV_BGID;
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_RECV, conn_id(c)));
	c->recv_armed = true;
	c->recv_direct = false;
	c->recv_cancelling = false;
}

/* Arms the single-shot recv of the LEN bytes that finish the frame at the stash's front,
 * straight into the room reserved for them. MSG_WAITALL: the kernel completes it once all
 * LEN bytes are there (or at end of file, an error or a cancel, with what it got). */
static void conn_arm_direct(struct conn *c, size_t len)
{
	ASSERT(c->rx_end + len <= c->rx_cap && len <= UINT32_MAX);
	struct io_uring_sqe *sqe = conn_sqe(c);
	io_uring_prep_recv(sqe, c->fd, c->rx_buf + c->rx_end, len, MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_RECV, conn_id(c)));
	c->recv_armed = true;
	c->recv_direct = true;
	c->recv_cancelling = false;
}

static void conn_cancel_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(c);
	io_uring_prep_cancel64(sqe, loop_udata(LOOP_KIND_NET_RECV, conn_id(c)), 0);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_CANCEL, conn_id(c)));
	c->recv_cancelling = true;
}

/* Resizes the stash to CAP bytes (>= the bytes it holds), moving them to its start. */
static int conn_stash_resize(struct conn *c, size_t cap)
{
	size_t have = c->rx_end - c->rx_start;
	ASSERT(cap >= have);
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if (have)
		memcpy(buf, c->rx_buf + c->rx_start, have);
	free(c->rx_buf);
	server_assembly_add(c->server, (int64_t)cap - (int64_t)c->rx_cap);
	c->rx_buf = buf;
	c->rx_cap = cap;
	c->rx_start = 0;
	c->rx_end = have;
	return 0;
}

/* Frees an empty stash and gives its bytes back to the budget. */
static void conn_stash_release(struct conn *c)
{
	ASSERT(c->rx_start == c->rx_end);
	if (c->rx_buf) {
		server_assembly_add(c->server, -(int64_t)c->rx_cap);
		free(c->rx_buf);
	}
	c->rx_buf = NULL;
	c->rx_cap = c->rx_start = c->rx_end = 0;
}

/* Appends N received bytes to the stash, growing it past the budget if it must: the
 * kernel has already taken them from the socket. What this can add beyond the budget is
 * bounded by the bytes in flight when a pause's cancel lands. */
static int conn_stash_append(struct conn *c, const uint8_t *data, size_t n)
{
	if (n == 0)
		return 0;
	size_t have = c->rx_end - c->rx_start;
	if (c->rx_end + n > c->rx_cap) {
		if (have + n <= c->rx_cap) {
			memmove(c->rx_buf, c->rx_buf + c->rx_start, have);
			c->rx_start = 0;
			c->rx_end = have;
		} else {
			size_t cap = 2 * c->rx_cap;
			if (cap < have + n)
				cap = have + n;
			if (cap < CONN_STASH_MIN_BYTES)
				cap = CONN_STASH_MIN_BYTES;
			int ret = conn_stash_resize(c, cap);
			if (ret < 0)
				return ret;
		}
	}
	memcpy(c->rx_buf + c->rx_end, data, n);
	c->rx_end += n;
	return 0;
}

/* The bytes (size prefix included) of the incomplete frame at the front of C's stash
 * whose size prefix is in, else 0 (no prefix yet, a whole frame, or a bad prefix). */
static size_t conn_partial_frame_bytes(const struct conn *c)
{
	size_t have = c->rx_end - c->rx_start;
	if (have < WIRE_SIZE_PREFIX_BYTES)
		return 0;
	uint32_t frame_len;
	int ret = wire_frame_length(c->rx_buf + c->rx_start, have,
				    (uint32_t)c->server->cfg->request_max_bytes, &frame_len);
	return ret == -EAGAIN ? WIRE_SIZE_PREFIX_BYTES + (size_t)frame_len : 0;
}

size_t conn_stash_needed(const struct conn *c)
{
	size_t total = conn_partial_frame_bytes(c);
	return total > c->rx_cap ? total : 0;
}

/* Makes the stash hold the whole frame at its front (TOTAL bytes) within the shard's
 * budget; a frame always fits when no other stash holds bytes, so one request up to
 * socket.request.max.bytes is never refused for good. Returns 0, -ENOBUFS when the
 * budget says no (the caller pauses), or -ENOMEM. */
static int conn_stash_reserve(struct conn *c, size_t total)
{
	size_t have = c->rx_end - c->rx_start;
	if (total <= have || c->rx_start + total <= c->rx_cap)
		return 0;
	if (total <= c->rx_cap) {
		memmove(c->rx_buf, c->rx_buf + c->rx_start, have);
		c->rx_start = 0;
		c->rx_end = have;
		return 0;
	}
	const struct server *s = c->server;
	uint64_t grow = total - c->rx_cap;
	bool alone = s->stats.assembly_bytes == c->rx_cap;
	if (!alone && s->stats.assembly_bytes + grow > s->assembly_budget)
		return -ENOBUFS;
	return conn_stash_resize(c, total);
}

/* The bytes the frame at C's stash's front still lacks when its room is reserved (a
 * direct recv may read them), else 0; *TOTAL (may be NULL): the frame's bytes then. */
static size_t conn_frame_rest(const struct conn *c, size_t *total_out)
{
	size_t total = conn_partial_frame_bytes(c);
	if (total == 0)
		return 0;
	if (c->rx_start + total > c->rx_cap)
		return 0; /* no room yet: the budget said no */
	if (total_out)
		*total_out = total;
	return total - (c->rx_end - c->rx_start);
}

static void conn_pause(struct conn *c, unsigned why)
{
	if (c->pause & why)
		return;
	c->pause |= why;
	if (why == CONN_PAUSE_INFLIGHT) {
		c->server->stats.paused_inflight++;
	} else {
		c->server->stats.paused_budget++;
		server_budget_wait(c->server, c);
	}
}

/* Closes C for a frame whose size prefix is unusable (RET from wire_frame_length). */
static void conn_bad_frame(struct conn *c, int ret, uint32_t frame_len)
{
	struct server *s = c->server;
	char why[128];
	if (ret == -EMSGSIZE) {
		s->stats.oversized_frames++;
		snprintf(why, sizeof(why), "frame of %u bytes above request-max-bytes %llu",
			 frame_len, (unsigned long long)s->cfg->request_max_bytes);
	} else {
		s->stats.bad_frames++;
		snprintf(why, sizeof(why), "negative frame size");
	}
	server_log_bad_frame(s, c, why);
	conn_close(c, why);
}

/* Hands one frame to net/api in the next slot (the caller checked there is one). */
static void conn_dispatch(struct conn *c, const uint8_t *msg, uint32_t len)
{
	ASSERT(c->count < LIMITS_CONN_INFLIGHT_MAX);
	uint32_t slot = (c->head + c->count) % LIMITS_CONN_INFLIGHT_MAX;
	struct conn_slot *s = &c->slots[slot];
	ASSERT(s->state == CONN_SLOT_IDLE);
	s->state = CONN_SLOT_WAITING;
	s->sent = s->total = 0;
	c->count++;
	c->waiting++;
	c->requests++;
	int ret = api_dispatch(c, slot, msg, len);
	if (ret < 0) {
		/* Not answered, and the connection closes: order no longer matters. */
		ASSERT(s->state == CONN_SLOT_WAITING);
		s->state = CONN_SLOT_NONE;
		c->waiting--;
		conn_close(c, "bad request");
	}
}

/* Dispatches the whole frames at the front of the stash while C may; reserves room for
 * the frame it cannot finish yet; frees the stash once empty. */
static void conn_stash_drain(struct conn *c)
{
	const uint32_t max_bytes = (uint32_t)c->server->cfg->request_max_bytes;
	while (c->state == CONN_OPEN && !c->pause && c->rx_end > c->rx_start) {
		uint32_t frame_len;
		int ret = wire_frame_length(c->rx_buf + c->rx_start, c->rx_end - c->rx_start,
					    max_bytes, &frame_len);
		if (ret == -EAGAIN) {
			if (frame_len == 0)
				break; /* the size prefix itself is not all there */
			ret = conn_stash_reserve(c, WIRE_SIZE_PREFIX_BYTES + (size_t)frame_len);
			if (ret == -ENOBUFS)
				conn_pause(c, CONN_PAUSE_BUDGET);
			else if (ret < 0)
				conn_close(c, "out of memory for a request");
			break;
		}
		if (ret < 0) {
			conn_bad_frame(c, ret, frame_len);
			return;
		}
		if (c->count == LIMITS_CONN_INFLIGHT_MAX) {
			conn_pause(c, CONN_PAUSE_INFLIGHT);
			break;
		}
		const uint8_t *msg = c->rx_buf + c->rx_start + WIRE_SIZE_PREFIX_BYTES;
		c->rx_start += WIRE_SIZE_PREFIX_BYTES + (size_t)frame_len;
		conn_dispatch(c, msg, frame_len);
	}
	if (c->rx_end == c->rx_start && c->rx_buf)
		conn_stash_release(c);
}

/* The LEN bytes a recv put at DATA: frames that lie whole in them are dispatched in
 * place; the rest goes to the stash. */
static void conn_rx_data(struct conn *c, const uint8_t *data, size_t len)
{
	const uint32_t max_bytes = (uint32_t)c->server->cfg->request_max_bytes;
	size_t pos = 0;
	while (pos < len && c->state == CONN_OPEN) {
		size_t left = len - pos;
		if (c->pause) {
			if (conn_stash_append(c, data + pos, left) < 0)
				conn_close(c, "out of memory for a request");
			return;
		}
		uint32_t frame_len;
		if (c->rx_end > c->rx_start) {
			/* Finish the frame at the stash's front first: its size prefix, then
			 * its body, then let the stash dispatch it. */
			size_t have = c->rx_end - c->rx_start, want;
			if (have < WIRE_SIZE_PREFIX_BYTES) {
				want = WIRE_SIZE_PREFIX_BYTES - have;
			} else {
				int ret = wire_frame_length(c->rx_buf + c->rx_start, have,
							    max_bytes, &frame_len);
				ASSERT(ret != 0); /* a whole frame would have been dispatched */
				if (ret < 0 && ret != -EAGAIN) {
					conn_bad_frame(c, ret, frame_len);
					return;
				}
				want = WIRE_SIZE_PREFIX_BYTES + (size_t)frame_len - have;
			}
			size_t take = want < left ? want : left;
			if (conn_stash_append(c, data + pos, take) < 0) {
				conn_close(c, "out of memory for a request");
				return;
			}
			pos += take;
			conn_stash_drain(c);
			continue;
		}
		int ret = wire_frame_length(data + pos, left, max_bytes, &frame_len);
		if (ret == -EAGAIN) {
			/* Room for the whole frame first when its size is known, so its
			 * bytes are copied once, not again by a growing stash (when the
			 * budget says no, the append below takes what it must and the
			 * drain pauses). */
			if (frame_len &&
			    conn_stash_reserve(c, WIRE_SIZE_PREFIX_BYTES + (size_t)frame_len) ==
				-ENOMEM) {
				conn_close(c, "out of memory for a request");
				return;
			}
			if (conn_stash_append(c, data + pos, left) < 0)
				conn_close(c, "out of memory for a request");
			else
				conn_stash_drain(c); /* reserves the frame, or pauses */
			return;
		}
		if (ret < 0) {
			conn_bad_frame(c, ret, frame_len);
			return;
		}
		if (c->count == LIMITS_CONN_INFLIGHT_MAX) {
			conn_pause(c, CONN_PAUSE_INFLIGHT);
			continue; /* the rest goes to the stash */
		}
		conn_dispatch(c, data + pos + WIRE_SIZE_PREFIX_BYTES, frame_len);
		pos += WIRE_SIZE_PREFIX_BYTES + (size_t)frame_len;
	}
}

/* The completion of C's direct recv: the bytes are in the stash already. */
static void conn_on_recv_direct(struct conn *c, const struct io_uring_cqe *cqe)
{
	struct server *s = c->server;
	ASSERT(!(cqe->flags & (IORING_CQE_F_MORE | IORING_CQE_F_BUFFER)));
	c->recv_armed = c->recv_direct = c->recv_cancelling = false;
	if (c->state != CONN_OPEN)
		return;
	if (cqe->res > 0) {
		ASSERT(c->rx_end + (size_t)cqe->res <= c->rx_cap);
		s->stats.bytes_in += (uint64_t)cqe->res;
		c->rx_end += (size_t)cqe->res;
		conn_stash_drain(c); /* conn_after re-arms: direct again if it came short */
	} else if (cqe->res == 0) {
		s->stats.truncated_frames++; /* the stash's front frame is not whole */
		conn_close(c, "closed by the client in the middle of a frame");
	} else if (cqe->res != -ECANCELED) {
		char why[96];
		snprintf(why, sizeof(why), "receive failed: %s", strerror(-cqe->res));
		conn_close(c, why);
	}
}

void conn_on_recv(struct conn *c, const struct io_uring_cqe *cqe)
{
	struct server *s = c->server;
	c->busy++;
	if (c->recv_direct) {
		conn_on_recv_direct(c, cqe);
		c->busy--;
		conn_after(c);
		return;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (cqe->res > 0 && c->state == CONN_OPEN) {
			s->stats.bytes_in += (uint64_t)cqe->res;
			conn_rx_data(c, server_buffer(s, bid), (size_t)cqe->res);
		}
		server_buffer_return(s, bid);
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		c->recv_armed = false;
		c->recv_cancelling = false;
		if (cqe->res == 0 && c->rx_end > c->rx_start && c->state == CONN_OPEN) {
			/* A frame cut short by the client's close: bad input, counted. */
			s->stats.truncated_frames++;
			conn_close(c, "closed by the client in the middle of a frame");
		} else if (cqe->res == 0) {
			conn_close(c, "closed by the client");
		} else if (cqe->res == -ENOBUFS) {
			s->stats.recv_no_buffers++; /* conn_after re-arms */
		} else if (cqe->res < 0 && cqe->res != -ECANCELED) {
			char why[96];
			snprintf(why, sizeof(why), "receive failed: %s", strerror(-cqe->res));
			conn_close(c, why);
		}
	}
	c->busy--;
	conn_after(c);
}

void conn_resume_budget(struct conn *c)
{
	ASSERT(c->pause & CONN_PAUSE_BUDGET);
	c->pause &= ~CONN_PAUSE_BUDGET;
	c->busy++;
	conn_stash_drain(c);
	c->busy--;
	conn_after(c);
}

/* ---- send ---- */

/* Adds the LEN bytes at BASE, less the first *SKIP of them, to C's iovecs. Returns false
 * when the iovecs are full (the bytes were not all added). */
static bool conn_iov_add(struct conn *c, uint32_t *n, const void *base, size_t len, size_t *skip)
{
	if (*skip >= len) {
		*skip -= len;
		return true;
	}
	if (*n == c->iov_cap) {
		if (c->iov_cap == LIMITS_CONN_SEND_IOVECS_MAX)
			return false;
		uint32_t cap = c->iov_cap ? 2 * c->iov_cap : CONN_IOV_INITIAL;
		if (cap > LIMITS_CONN_SEND_IOVECS_MAX)
			cap = LIMITS_CONN_SEND_IOVECS_MAX;
		struct iovec *iov = realloc(c->iov, cap * sizeof(*iov));
		if (!iov)
			return false;
		c->iov = iov;
		c->iov_cap = cap;
	}
	c->iov[*n].iov_base = (uint8_t *)base + *skip;
	c->iov[*n].iov_len = len - *skip;
	(*n)++;
	*skip = 0;
	return true;
}

/* Frees what a retired or dropped response holds. */
static void conn_slot_release(struct conn_slot *s)
{
	if (s->state == CONN_SLOT_READY) {
		free(s->resp.buf);
		if (s->resp.release)
			s->resp.release(s->resp.release_ctx);
	}
	memset(&s->resp, 0, sizeof(s->resp));
	s->state = CONN_SLOT_IDLE;
	s->sent = s->total = 0;
}

/* Retires the slot at the front (sent, or answered with no response). */
static void conn_retire_head(struct conn *c)
{
	conn_slot_release(conn_slot_at(c, 0));
	c->head = (c->head + 1) % LIMITS_CONN_INFLIGHT_MAX;
	c->count--;
}

/* Starts a sendmsg of the consecutive answered slots at the front, unless one is in
 * flight. */
static void conn_flush(struct conn *c)
{
	if (c->state != CONN_OPEN || c->send_inflight)
		return;
	while (c->count > 0 && conn_slot_at(c, 0)->state == CONN_SLOT_NONE)
		conn_retire_head(c);
	uint32_t n = 0;
	bool full = false;
	for (uint32_t i = 0; i < c->count && !full; i++) {
		struct conn_slot *s = conn_slot_at(c, i);
		if (s->state == CONN_SLOT_WAITING)
			break;
		if (s->state != CONN_SLOT_READY)
			continue;
		size_t skip = s->sent;
		full = !conn_iov_add(c, &n, s->resp.buf, s->resp.len, &skip);
		for (uint32_t e = 0; e < s->resp.ext_count && !full; e++)
			full = !conn_iov_add(c, &n, s->resp.ext[e].iov_base, s->resp.ext[e].iov_len,
					     &skip);
	}
	if (n == 0) {
		if (full) /* not even one iovec could be allocated */
			conn_close(c, "out of memory for a send");
		return;
	}
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = n;
	struct io_uring_sqe *sqe = conn_sqe(c);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_SEND, conn_id(c)));
	c->send_inflight = true;
	c->server->stats.sends++;
}

void conn_on_send(struct conn *c, const struct io_uring_cqe *cqe)
{
	struct server *s = c->server;
	ASSERT(c->send_inflight);
	c->send_inflight = false;
	c->busy++;
	if (cqe->res < 0) {
		char why[96];
		snprintf(why, sizeof(why), "send failed: %s", strerror(-cqe->res));
		conn_close(c, why);
	} else if (c->state == CONN_OPEN) {
		size_t done = (size_t)cqe->res, asked = 0;
		for (uint32_t i = 0; i < c->msg.msg_iovlen; i++)
			asked += c->iov[i].iov_len;
		if (done < asked)
			s->stats.sends_short++;
		s->stats.bytes_out += done;
		/* Retire every slot the bytes covered; the first one they did not cover whole
		 * remembers how far it got. */
		while (c->count > 0) {
			struct conn_slot *slot = conn_slot_at(c, 0);
			if (slot->state == CONN_SLOT_NONE) {
				conn_retire_head(c);
				continue;
			}
			if (slot->state != CONN_SLOT_READY || done == 0)
				break;
			size_t left = slot->total - slot->sent;
			if (done < left) {
				slot->sent += done;
				done = 0;
				break;
			}
			done -= left;
			conn_retire_head(c);
		}
		ASSERT(done == 0);
	}
	c->busy--;
	conn_after(c);
}

/* ---- answers ---- */

bool conn_slot_waiting(const struct conn *c, uint32_t slot)
{
	ASSERT(slot < LIMITS_CONN_INFLIGHT_MAX);
	return c->slots[slot].state == CONN_SLOT_WAITING;
}

void conn_respond(struct conn *c, uint32_t slot, const struct conn_response *resp)
{
	ASSERT(slot < LIMITS_CONN_INFLIGHT_MAX);
	struct conn_slot *s = &c->slots[slot];
	ASSERT(s->state == CONN_SLOT_WAITING && c->waiting > 0);
	ASSERT(resp->buf && resp->len > 0);
	s->resp = *resp;
	s->total = resp->len;
	for (uint32_t i = 0; i < resp->ext_count; i++)
		s->total += resp->ext[i].iov_len;
	s->sent = 0;
	s->state = CONN_SLOT_READY;
	c->waiting--;
	conn_after(c);
}

void conn_respond_none(struct conn *c, uint32_t slot)
{
	ASSERT(slot < LIMITS_CONN_INFLIGHT_MAX);
	struct conn_slot *s = &c->slots[slot];
	ASSERT(s->state == CONN_SLOT_WAITING && c->waiting > 0);
	s->state = CONN_SLOT_NONE;
	c->waiting--;
	conn_after(c);
}

/* ---- life cycle ---- */

void conn_open(struct conn *c, int fd)
{
	ASSERT(c->state == CONN_FREE);
	c->state = CONN_OPEN;
	c->fd = fd;
	c->recv_armed = c->recv_direct = c->recv_cancelling = c->send_inflight = false;
	c->recv_large = false;
	c->pause = 0;
	c->busy = 0;
	c->head = c->count = c->waiting = 0;
	c->rx_buf = NULL;
	c->rx_cap = c->rx_start = c->rx_end = 0;
	c->wait_prev = c->wait_next = CONN_NONE;
	c->requests = 0;
	conn_arm_recv(c, 0);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->state != CONN_OPEN)
		return;
	struct server *s = c->server;
	c->state = CONN_CLOSING;
	s->stats.conns_closed++;
	LOG_DEBUG("net: connection %u from %s closed after %llu requests: %s", c->index, c->peer,
		  (unsigned long long)c->requests, why);
	if (c->pause & CONN_PAUSE_BUDGET) {
		server_budget_unwait(s, c);
		c->pause &= ~CONN_PAUSE_BUDGET;
	}
	/* The shutdown ends a waiting recv (it reads end of file) and a send blocked on a
	 * full socket buffer; the cancel catches whatever is still queued. */
	shutdown(c->fd, SHUT_RDWR);
	if (c->recv_armed || c->send_inflight) {
		struct io_uring_sqe *sqe = conn_sqe(c);
		io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_CANCEL, conn_id(c)));
		c->recv_cancelling = c->recv_armed;
	}
	conn_after(c);
}

void conn_abandon(struct conn *c)
{
	ASSERT(c->state != CONN_FREE);
	c->busy++;
	conn_close(c, "broker stopping");
	for (uint32_t i = 0; i < LIMITS_CONN_INFLIGHT_MAX; i++) {
		if (c->slots[i].state != CONN_SLOT_WAITING)
			continue;
		struct api_request *req = &c->reqs[i];
		if (req->abandon)
			req->abandon(req);
		req->abandon = NULL;
		req->ctx = NULL;
		c->slots[i].state = CONN_SLOT_NONE;
		c->waiting--;
	}
	c->busy--;
	conn_after(c);
}

/* Frees C's table entry once nothing refers to it any more. */
static void conn_maybe_free(struct conn *c)
{
	if (c->state != CONN_CLOSING || c->busy || c->recv_armed || c->send_inflight || c->waiting)
		return;
	for (uint32_t i = 0; i < LIMITS_CONN_INFLIGHT_MAX; i++)
		conn_slot_release(&c->slots[i]);
	c->head = c->count = 0;
	c->rx_start = c->rx_end;
	conn_stash_release(c);
	free(c->iov);
	c->iov = NULL;
	c->iov_cap = 0;
	close(c->fd);
	c->fd = -1;
	c->pause = 0;
	server_conn_release(c->server, c);
}

/* Arms C's next recv (C is OPEN, not paused, with no recv armed). A frame at the stash's
 * front that lacks at least one receive buffer's worth (below that, switching receives
 * costs more than the copy it saves) is read directly into its room, and the connection
 * enters large-frame mode: from then on the next size prefix is read alone, so that the
 * frame behind it goes directly into the stash too (all of it, when it is at least a
 * receive buffer), until a smaller frame turns the multishot recv back on. */
static void conn_rearm(struct conn *c)
{
	size_t total = 0, rest = conn_frame_rest(c, &total);
	size_t have = c->rx_end - c->rx_start, large = c->server->buf_bytes;
	if (rest && (rest >= large || (c->recv_large && total >= large))) {
		c->recv_large = true;
		conn_arm_direct(c, rest);
	} else if (c->recv_large && !rest && have < WIRE_SIZE_PREFIX_BYTES) {
		conn_arm_recv(c, WIRE_SIZE_PREFIX_BYTES - have);
	} else {
		c->recv_large = false;
		conn_arm_recv(c, 0);
	}
}

/* The end of every event of C: act on what the handlers did. A paused connection
 * stops its multishot recv; a direct one reads only the frame's reserved room, so it is
 * left to finish (a pause cannot begin while it is armed: the frame it completes is not
 * whole, and its room is there). A large frame's rest is read directly: the multishot
 * recv is cancelled first, and the direct recv armed once its last completion came. */
static void conn_after(struct conn *c)
{
	if (c->busy)
		return;
	c->busy++;
	while (c->state == CONN_OPEN) {
		conn_flush(c);
		/* A retired slot lets a connection paused for slots dispatch what it holds. */
		if (!(c->pause & CONN_PAUSE_INFLIGHT) || c->count == LIMITS_CONN_INFLIGHT_MAX)
			break;
		c->pause &= ~CONN_PAUSE_INFLIGHT;
		conn_stash_drain(c);
	}
	if (c->state == CONN_OPEN && !c->recv_direct) {
		if (!c->recv_armed) {
			if (!c->pause)
				conn_rearm(c);
		} else if (!c->recv_cancelling &&
			   (c->pause || conn_frame_rest(c, NULL) >= c->server->buf_bytes)) {
			conn_cancel_recv(c);
		}
	}
	c->busy--;
	conn_maybe_free(c);
}

bool conn_sanity(const struct conn *c)
{
	if (c->state == CONN_FREE)
		return c->fd == -1 && !c->recv_armed && !c->send_inflight;
	if (c->rx_start > c->rx_end || c->rx_end > c->rx_cap || (!c->rx_buf) != (c->rx_cap == 0))
		return false;
	if (c->recv_direct && !c->recv_armed)
		return false;
	uint32_t waiting = 0, busy_slots = 0;
	for (uint32_t i = 0; i < LIMITS_CONN_INFLIGHT_MAX; i++) {
		waiting += c->slots[i].state == CONN_SLOT_WAITING;
		busy_slots += c->slots[i].state != CONN_SLOT_IDLE;
	}
	if (waiting != c->waiting)
		return false;
	if (c->state == CONN_OPEN) {
		if (busy_slots != c->count || c->count > LIMITS_CONN_INFLIGHT_MAX)
			return false;
		for (uint32_t i = 0; i < c->count; i++)
			if (c->slots[(c->head + i) % LIMITS_CONN_INFLIGHT_MAX].state ==
			    CONN_SLOT_IDLE)
				return false;
	}
	return true;
}
