/*
 * net/server.h: the "net" shard layer: on each shard, a listening TCP socket on
 * listen_host, port base_port + shard id, whose connections are accepted with one
 * multishot accept into a connection table preallocated at start (max-connections
 * entries, a free list, nginx style); a connection arriving when the table is full is
 * closed at once, counted, and logged (at most once a second). It owns what the
 * shard's connections share: the provided-buffer ring of pool chunks that every
 * multishot recv takes its buffers from, the assembly budget for frames that span
 * buffers (with the list of connections waiting for it), the per-shard counters, and
 * the values Metadata advertises (host, cluster id). It routes the net completion kinds
 * of the shard's loop to net/conn. It parses no request (net/api does) and touches no
 * disk; topics come from the broker layer below it (core/broker).
 *
 * Stop (the layer's stop, after the loop ended): the topic table is quiesced, deferred
 * requests are abandoned, the accept and every connection are cancelled and closed, and
 * the loop is turned (at most SERVER_STOP_DRAIN_MS) until their completions arrived;
 * then the buffers go back to the pool and the counters are logged in one line.
 */
#ifndef SLUICE_NET_SERVER_H
#define SLUICE_NET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/shard.h"
#include "io/loop.h"
#include "net/conn.h"

/* Request counters by API key: Kafka's keys 0-47 and room to spare. */
#define SERVER_API_KEYS 64
/* The provided-buffer group id of the receive ring (one per ring; nothing else uses
 * provided buffers). */
#define SERVER_RECV_BGID 7
/* Longest wait for in-flight operations when the layer stops. */
#define SERVER_STOP_DRAIN_MS 2000
/* A refused connection or a bad frame is logged at most this often (per kind). */
#define SERVER_LOG_INTERVAL_MS 1000

/* Counters of one shard, since start. Every bad input is counted here (issue 4, item 5). */
struct server_stats {
	uint64_t conns_accepted;		   /* connections taken into the table */
	uint64_t conns_refused;			   /* closed at once: the table was full */
	uint64_t conns_closed;			   /* connections closed, for any reason */
	uint64_t accept_errors;			   /* failed accept completions */
	uint64_t requests;			   /* frames handed to a handler */
	uint64_t requests_by_api[SERVER_API_KEYS]; /* of them, by API key */
	uint64_t bad_frames;			   /* negative size or unreadable header: closed */
	uint64_t oversized_frames;		   /* size above socket.request.max.bytes: closed */
	uint64_t truncated_frames;		   /* the client closed in the middle of a frame */
	uint64_t unknown_api_keys;		   /* a key sluice does not advertise: closed */
	uint64_t unsupported_versions;		   /* outside the accepted range: closed, except
						    * ApiVersions, answered with error 35 */
	uint64_t unimplemented;	     /* an advertised API without a handler yet: closed */
	uint64_t forwarded_requests; /* group requests sent to their coordinator shard */
	uint64_t served_forwarded;   /* requests run here for another shard's client */
	uint64_t bad_requests;	     /* a handler could not decode the body: closed */
	uint64_t bytes_in;	     /* bytes received */
	uint64_t bytes_out;	     /* bytes sent */
	uint64_t recv_no_buffers;    /* receives that found the buffer ring empty (re-armed) */
	uint64_t paused_inflight;    /* pauses because every in-flight slot was taken */
	uint64_t paused_budget;	     /* pauses because the assembly budget was used up */
	uint64_t sends;		     /* sendmsg operations */
	uint64_t sends_short;	     /* of them, sends that moved fewer bytes than asked */
	uint32_t conns_open;	     /* entries of the table in use (open or closing) */
	uint32_t conns_open_max;     /* high-water mark of conns_open */
	uint64_t assembly_bytes;     /* stash bytes held now (heap) */
	uint64_t assembly_bytes_max; /* high-water mark */
};

/* One shard's net layer. The handlers read it; only net/ writes it. */
struct api_forward;

struct server {
	struct shard *shard;		/* the shard it runs on */
	struct loop *loop;		/* &shard->loop */
	const struct config *cfg;	/* the daemon's settings */
	struct topics *topics;		/* the shard's topic table (core/broker), NULL if none */
	int listen_fd;			/* the listening socket, -1 once closed */
	uint16_t port;			/* the port it listens on: cfg->port + shard id */
	bool accept_armed;		/* the multishot accept is in the kernel */
	bool stopping;			/* the layer is stopping: refuse new connections */
	struct loop_timer accept_retry; /* re-arms a failed accept a little later */
	struct conn *conns;		/* conn_count entries */
	uint32_t conn_count;		/* cfg->max_connections */
	uint32_t free_head;		/* first free entry, CONN_NONE when the table is full */
	struct api_request *reqs;	/* conn_count * LIMITS_CONN_INFLIGHT_MAX requests */
	uint32_t wait_head, wait_tail;	/* connections paused for the budget, FIFO */
	uint64_t assembly_budget;	/* LIMITS_NET_ASSEMBLY_BYTES */
	struct io_uring_buf_ring *buf_ring; /* the provided-buffer ring (page-aligned heap) */
	uint32_t buf_count;		    /* its entries, a power of two */
	uint8_t **bufs;			    /* buffer id -> pool chunk */
	uint32_t buf_bytes;		    /* bytes per buffer: the pool's chunk size */
	bool buf_registered;		    /* the ring is registered with the loop's io_uring */
	uint64_t refused_logged_ns;	    /* when the last "table full" line was logged */
	uint64_t refused_unlogged;	    /* refusals since that line */
	uint64_t badframe_logged_ns;	    /* when the last bad-frame line was logged */
	uint64_t badframe_unlogged;	    /* bad frames since that line */
	uint64_t accept_logged_ns;	    /* when the last accept failure was logged */
	uint64_t accept_unlogged;	    /* accept failures since that line */
	char host[256];			    /* advertised host: cfg's, else gethostname() */
	char cluster_id[32];		    /* "sluice-" + 16 hex digits, see server_start */
	struct server_stats stats;	    /* counters */
	struct api_forward *forwarded_head; /* requests run here for other shards' clients,
					     * not answered yet (net/api.c) */
};

/* The layer to host after the broker layer (it takes pool chunks, so it comes after
 * the shard log's carve): {"net", start, stop, NULL}. Each shard's start binds its
 * socket (a failure names the address and the cause), builds its table and receive
 * ring, and queues the first accept; it needs no broker layer (Metadata then lists no
 * topics). */
struct shard_layer server_layer(void);

/* SHARD's net layer, from its start to its stop, on SHARD's thread; NULL when SHARD
 * hosts none. */
struct server *server_of(const struct shard *shard);

/* Copies S's counters into *OUT. */
void server_stats(const struct server *s, struct server_stats *out);

/* ---- for net/conn and net/api ---- */

/* The pool chunk of receive buffer BID (< buf_count). */
uint8_t *server_buffer(const struct server *s, uint32_t bid);

/* Gives receive buffer BID back to the kernel's ring. */
void server_buffer_return(struct server *s, uint32_t bid);

/* Puts C (OPEN, paused for the budget) at the end of the budget wait list. */
void server_budget_wait(struct server *s, struct conn *c);

/* Takes C off the budget wait list, if it is on it. */
void server_budget_unwait(struct server *s, struct conn *c);

/* Changes the stash bytes held by DELTA (a connection's stash grew or shrank). */
void server_assembly_add(struct server *s, int64_t delta);

/* Logs a closed bad frame (at most once per SERVER_LOG_INTERVAL_MS, with the count of
 * those not logged): "net: closed connection from PEER: WHY". */
void server_log_bad_frame(struct server *s, const struct conn *c, const char *why);

/* Gives C's table entry back to the free list (conn does it once C is done). */
void server_conn_release(struct server *s, struct conn *c);

#endif
