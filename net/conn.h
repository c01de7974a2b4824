/*
 * net/conn.h: one Kafka client connection on a shard's io_uring: its receive and send
 * state machines and its close. It does not accept sockets or own the connection table
 * (net/server does), and it does not parse requests (it hands each whole frame to
 * net/api and gets each answer back through conn_respond).
 *
 * Receive: one multishot recv per connection, with buffers the kernel picks from the
 * shard's provided-buffer ring (pool chunks, net/server). Each completion's bytes are
 * split into frames (a 4-byte size, then a request; net/wire's wire_frame_length). A
 * frame that lies whole inside the buffer is handed to net/api in place; the bytes of
 * a frame that spans buffers (and whatever arrives while the connection may not
 * dispatch) are copied into the connection's stash, a heap buffer sized for the whole
 * frame (within the shard's assembly budget) as soon as its size prefix is there.
 * Either way the ring buffer goes back to the kernel before the completion handler
 * returns. A negative size or one above socket.request.max.bytes closes the connection.
 *
 * Large frames: once the stash holds room for a frame of which at least one receive
 * buffer's worth of bytes is still to come, the connection cancels its multishot recv
 * and, after its last completion, reads the rest of the frame with one single-shot
 * IORING_OP_RECV (MSG_WAITALL) straight into the stash: those bytes are copied once, by
 * the kernel, not a second time out of a ring buffer. The direct recv reads only the
 * room already reserved, never past the frame. The connection then stays in large-frame
 * mode: it reads the next size prefix alone (a 4-byte single-shot recv into a ring
 * buffer), reserves the frame, reads its rest directly, and so on, until a frame smaller
 * than a receive buffer turns the multishot recv back on.
 *
 * Order and backpressure: every frame takes the next of LIMITS_CONN_INFLIGHT_MAX slots
 * in request order; a handler answers its slot at once or later (conn_respond), and
 * responses leave strictly in slot order, however out of order they were answered.
 * When every slot is taken, or the stash cannot grow within the budget, the
 * connection pauses: it cancels its recv and the kernel stops reading the socket (TCP
 * backpressure) until a slot is freed or the budget has room.
 *
 * Send: one IORING_OP_SENDMSG in flight per connection, gathering the consecutive
 * answered slots at the front (each a header/body buffer plus optional external
 * slices, such as record batches in pool memory) into one iovec array of at most
 * LIMITS_CONN_SEND_IOVECS_MAX entries; a short send continues where it stopped. A
 * slot answered with "no response" (Produce acks=0) is retired in its turn. A buffer
 * is freed, and a response's release callback run, once its bytes were sent (or the
 * connection closed).
 *
 * Close: shutdown(2) and a cancel of the connection's operations; the slot in the
 * table is reused only after the last completion that names it arrived and every
 * deferred request was answered (counted below), so no completion can reach a reused
 * connection; user_data also carries a generation, checked in debug builds.
 *
 * Re-entrancy: handlers run inside conn's own event handling and may answer or close
 * at once; the connection acts on that (sends, re-arms, frees) when the outermost event
 * handler finishes (the busy count), so nothing is freed under a caller's feet.
 */
#ifndef SLUICE_NET_CONN_H
#define SLUICE_NET_CONN_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/limits.h"

struct server;
struct api_request;

/* Runs once the external slices of a response are no longer needed by the connection:
 * after the send that carried their last byte, or when the connection closed first. */
typedef void (*conn_release_fn)(void *ctx);

/* One response, as a handler hands it over. */
struct conn_response {
	uint8_t *buf;		 /* header and body (malloc'd); the connection frees it */
	uint32_t len;		 /* bytes of buf, the size prefix first */
	const struct iovec *ext; /* slices sent after buf, or NULL; stay valid until release */
	uint32_t ext_count;	 /* entries of ext */
	conn_release_fn release; /* may be NULL; runs exactly once per response */
	void *release_ctx;	 /* its argument */
};

enum conn_slot_state {
	CONN_SLOT_IDLE = 0, /* free */
	CONN_SLOT_WAITING,  /* a request was dispatched; its handler has not answered yet */
	CONN_SLOT_READY,    /* answered with a response, waiting for its turn to be sent */
	CONN_SLOT_NONE,	    /* answered with no response (acks=0): retired in its turn */
};

/* A request's place in the connection's response order. */
struct conn_slot {
	uint8_t state;		   /* enum conn_slot_state */
	size_t total;		   /* bytes of the response (buf and slices) */
	size_t sent;		   /* of them, already sent (by a short send) */
	struct conn_response resp; /* when READY */
};

enum conn_state {
	CONN_FREE = 0, /* on the server's free list */
	CONN_OPEN,     /* serving */
	CONN_CLOSING,  /* closed for the client; waiting for completions and handlers */
};

/* Why a connection does not read (bits of conn.pause). */
#define CONN_PAUSE_INFLIGHT 1u /* every slot is taken */
#define CONN_PAUSE_BUDGET   2u /* the stash cannot grow within the shard's budget */

/* conn_id: the user_data value of a connection's operations. */
#define CONN_ID_INDEX_BITS 24
#define CONN_ID_INDEX_MASK ((UINT64_C(1) << CONN_ID_INDEX_BITS) - 1)
_Static_assert(LIMITS_CONNECTIONS_PER_SHARD_MAX <= (1u << CONN_ID_INDEX_BITS),
	       "a connection index fits in the low bits of its user_data");

#define CONN_NONE UINT32_MAX /* no connection, in index links */

/*
 * Invariants while state != FREE (conn_sanity checks them):
 *  - slots[head .. head + count) (mod LIMITS_CONN_INFLIGHT_MAX) are the non-idle slots
 *    while OPEN, in request order; waiting counts those WAITING.
 *  - rx_start <= rx_end <= rx_cap; rx_buf is NULL exactly when rx_cap is 0, and the
 *    server's assembly_bytes counts rx_cap.
 *  - recv_direct only while recv_armed; while it is, the stash is neither moved nor
 *    freed (the kernel writes at rx_buf + rx_end), and its front frame is not whole.
 *  - (pause & CONN_PAUSE_BUDGET) exactly when the connection is on the server's budget
 *    wait list.
 *  - the connection returns to the free list only when not busy, with no recv armed,
 *    no send in flight and no slot WAITING.
 */
struct conn {
	struct server *server;	       /* the shard's net layer */
	uint32_t index;		       /* position in the server's table */
	uint32_t generation;	       /* bumped at every reuse of the position */
	enum conn_state state;	       /* see above */
	int fd;			       /* the socket, -1 when FREE */
	bool recv_armed;	       /* a recv is in the kernel (its final CQE not seen) */
	bool recv_direct;	       /* that recv is the single-shot one into the stash */
	bool recv_cancelling;	       /* a cancel of that recv was submitted */
	bool recv_large;	       /* large-frame mode: size prefix alone, then direct rest */
	bool send_inflight;	       /* a sendmsg is in the kernel */
	uint8_t pause;		       /* CONN_PAUSE_* bits */
	uint32_t busy;		       /* nesting depth of this connection's event handling */
	uint32_t head;		       /* oldest non-idle slot */
	uint32_t count;		       /* non-idle slots from head (OPEN) */
	uint32_t waiting;	       /* slots WAITING for their handler */
	uint8_t *rx_buf;	       /* the stash: bytes not yet dispatched; heap or NULL */
	size_t rx_cap;		       /* its size */
	size_t rx_start;	       /* first byte not dispatched */
	size_t rx_end;		       /* one past the last byte received */
	uint32_t wait_prev, wait_next; /* links of the server's budget wait list */
	uint32_t free_next;	       /* link of the server's free list */
	struct iovec *iov;	       /* the send's iovecs (heap, grown to iov_cap) */
	uint32_t iov_cap;	       /* entries of iov, <= LIMITS_CONN_SEND_IOVECS_MAX */
	struct msghdr msg;	       /* the send's header; stays put while it is in flight */
	uint64_t requests;	       /* frames dispatched on this connection */
	struct api_request *reqs;      /* LIMITS_CONN_INFLIGHT_MAX requests, by slot (server's) */
	struct conn_slot slots[LIMITS_CONN_INFLIGHT_MAX]; /* the response order */
	char peer[64];					  /* "address:port", for log lines */
};

/* The user_data value of C's operations: its index and generation. */
static inline uint64_t conn_id(const struct conn *c)
{
	return ((uint64_t)c->generation << CONN_ID_INDEX_BITS) | c->index;
}
static inline uint32_t conn_id_index(uint64_t id)
{
	return (uint32_t)(id & CONN_ID_INDEX_MASK);
}
static inline uint32_t conn_id_generation(uint64_t id)
{
	return (uint32_t)(id >> CONN_ID_INDEX_BITS);
}

/* Starts serving socket FD (accepted, blocking or not) in C, a FREE entry of its
 * server's table: arms the multishot recv. C becomes OPEN. */
void conn_open(struct conn *c, int fd);

/* A completion of C's recv, multishot or direct (LOOP_KIND_NET_RECV). */
void conn_on_recv(struct conn *c, const struct io_uring_cqe *cqe);

/* A completion of C's sendmsg (LOOP_KIND_NET_SEND). */
void conn_on_send(struct conn *c, const struct io_uring_cqe *cqe);

/* Closes C for the client (counted, WHY in a debug line): shutdown, cancel of its
 * operations. C goes back to the free list once nothing refers to it any more. A
 * no-op unless C is OPEN. Safe inside a handler. */
void conn_close(struct conn *c, const char *why);

/* Answers SLOT of C (WAITING) with RESP, which the connection now owns: its buf is
 * freed and its release run after the send, or at once when C is closing. Safe inside
 * the handler or from a later callback. */
void conn_respond(struct conn *c, uint32_t slot, const struct conn_response *resp);

/* Answers SLOT of C (WAITING) with no response: the slot is retired in its turn. */
void conn_respond_none(struct conn *c, uint32_t slot);

/* True when SLOT of C is still WAITING (its handler has not answered). */
bool conn_slot_waiting(const struct conn *c, uint32_t slot);

/* Resumes C after its server found room in the assembly budget (the server's hook):
 * clears CONN_PAUSE_BUDGET, dispatches what the stash holds, re-arms the recv. */
void conn_resume_budget(struct conn *c);

/* Bytes C's paused stash needs in all to continue (the frame being assembled), for the
 * server's budget check; 0 when it needs no more room. */
size_t conn_stash_needed(const struct conn *c);

/* Called by the server at stop for C (not FREE): each WAITING slot is abandoned (its
 * request's abandon callback, if any, runs), then C is closed. */
void conn_abandon(struct conn *c);

/* Checks the invariants above; for DASSERT and tests. */
bool conn_sanity(const struct conn *c);

#endif
