/*
 * net/api.h: the Kafka request dispatch and what every API handler builds its answer
 * with. net/conn hands each whole request frame to api_dispatch, which reads the
 * request header, checks the API key and version against net/kafka's table and calls
 * the handler of the key (one file per API, net/api_<name>.c). This module decides the
 * connection-level fate of bad requests, each counted in the shard's server_stats:
 *
 *   the header cannot be read                     close (bad_frames)
 *   a key sluice does not advertise               close (unknown_api_keys)
 *   a version outside the accepted range          ApiVersions: error 35 and the list;
 *     (net/kafka: advertised from 0, accepted     any other API: close, one debug line
 *     from DESIGN §4's minimum)                   (unsupported_versions)
 *   an advertised API with no handler yet         close (unimplemented)
 *   a body the handler cannot decode              close (bad_requests); handlers with
 *                                                 an error code for it answer instead
 *
 * A handler answers synchronously (api_respond before it returns) or later: it returns
 * 0 without answering, keeps the struct api_request pointer (stable until it answers),
 * copies what it needs from the request (the body and client id views die when it
 * returns), and calls api_respond from its callback. Responses leave in request order
 * whatever the order of the answers (net/conn). Every answer is a response header v0
 * (no API sluice accepts is flexible; ApiVersions keeps v0 headers at every version).
 *
 * Zero-copy (Fetch): a response may carry external slices after its buffer, sent by
 * scatter/gather straight from where they lie (pool chunks, the shard log's cache):
 * api_respond_ext counts them in the frame's size prefix and runs RELEASE once they
 * were sent or the connection closed. This module allocates only response buffers.
 */
#ifndef SLUICE_NET_API_H
#define SLUICE_NET_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/conn.h"
#include "net/wire.h"

struct api_request;
struct api_forward; /* a forwarded request in flight (net/api.c, private) */

/* A handler: 0 when it answered or will answer later; a negative errno when the body
 * cannot be decoded and the connection must close (it must not have answered). */
typedef int (*api_handler_fn)(struct api_request *req);

/* Run at stop for a deferred request whose answer will never come (the topic table
 * was quiesced): frees the handler's context. Must not answer. */
typedef void (*api_abandon_fn)(struct api_request *req);

/* One request, from its dispatch to its answer. Lives in the server's preallocated
 * array (one per connection slot), so a deferred handler may keep the pointer. */
struct api_request {
	struct conn *conn;	   /* the connection; stays until the request is answered */
	struct server *server;	   /* the shard's net layer */
	uint32_t slot;		   /* place in the connection's response order */
	int16_t api_key;	   /* from the request header */
	int16_t api_version;	   /* from the request header, accepted by net/kafka */
	int32_t correlation_id;	   /* echoed in the response header */
	struct wire_str client_id; /* view into the frame: valid during the handler only */
	struct wire_reader body;   /* the body: valid during the handler only */
	void *ctx;		   /* the handler's own state while deferred */
	api_abandon_fn abandon;	   /* set by a deferring handler that holds CTX; may be NULL */
	bool deferred;		   /* the handler returned without answering */
	bool forwarded;		   /* run on this shard for another shard's connection
				    * (api_forward): CONN is NULL, the answer goes back */
	struct api_forward *fwd;   /* that forwarding's state, when FORWARDED */
	struct wire_reader body_all; /* the whole body, for api_forward (private) */
};

/* ---- dispatch (net/conn) ---- */

/* Handles the request frame MSG (LEN bytes after the size prefix) that C read into
 * SLOT. Returns 0 when the request was answered or deferred; a negative errno when
 * the connection must close (SLOT was not answered; the cause is counted and logged).
 * MSG is only read during the call. */
int api_dispatch(struct conn *c, uint32_t slot, const uint8_t *msg, uint32_t len);

/* True when API_KEY has a handler. ApiVersions advertises only these, so a client
 * never plans on an API that would close its connection (the consumer-group APIs of
 * DESIGN §4 join the list with their handlers). */
bool api_implemented(int16_t api_key);

/* Finds the topic names that appear more than once in one request (the admin APIs
 * answer each name once). ITEMS holds COUNT structs of STRIDE bytes, each with a
 * `const char *` name at NAME_OFF and a `uint16_t` length at LEN_OFF. Sets FIRST[i]
 * (COUNT entries, caller-allocated) to the index of the first place of item i's name
 * when that name appears more than once, else to API_NAME_UNIQUE. Returns 0 or
 * -ENOMEM; O(count log count). */
#define API_NAME_UNIQUE UINT32_MAX
int api_repeated_names(const void *items, uint32_t count, size_t stride, size_t name_off,
		       size_t len_off, uint32_t *first);

/* The client's address as "address:port" (log lines; JoinGroup's client_host), for a
 * forwarded request too. */
const char *api_request_peer(const struct api_request *req);

/*
 * Forwarding (the group APIs: a request reaching a shard that does not coordinate its
 * group): instead of answering, a handler calls api_forward(REQ, TO) and returns 0.
 * The request (header fields, client id, peer and the whole body from its first byte)
 * is copied to shard TO and dispatched there to the same handler with REQ->forwarded
 * set and REQ->conn NULL; whatever that handler answers (api_respond, maybe deferred)
 * travels back and is sent on the client's connection in its turn. Returns 0, or
 * -ELOOP when REQ is itself forwarded (answer NOT_COORDINATOR, 16: the coordinator
 * moved), -EAGAIN / -ENOMEM / -EINVAL (answer COORDINATOR_NOT_AVAILABLE, 15); on error
 * nothing was answered. Only api_respond and api_fail work on a forwarded request
 * (no external slices, no api_respond_none). A handler must not touch REQ->conn of a
 * forwarded request.
 */
int api_forward(struct api_request *req, uint32_t to);

/* Registers SHARD_OP_API_FORWARD on SERVER's shard (the coordinator's side of
 * api_forward): at the net layer's start (net/server.c). */
void api_forward_shard_init(struct server *server);

/* ---- answering (handlers) ---- */

/* Starts REQ's response in a new buffer with room for BODY_BYTES bytes after the size
 * prefix and response header, which it writes: the caller writes the body into W.
 * BODY_BYTES must bound what the handler writes (an overflow is a handler bug: the
 * connection is closed and it is logged). Returns 0 or -ENOMEM. */
int api_response_begin(struct api_request *req, size_t body_bytes, struct wire_writer *w);

/* Sends the response written into W (from api_response_begin) in REQ's turn. */
void api_respond(struct api_request *req, struct wire_writer *w);

/* As api_respond, followed by the EXT_COUNT slices at EXT (their bytes counted in the
 * size prefix; EXT and the bytes stay valid until RELEASE(RELEASE_CTX) runs, exactly
 * once, after the send or when the connection closed). */
void api_respond_ext(struct api_request *req, struct wire_writer *w, const struct iovec *ext,
		     uint32_t ext_count, conn_release_fn release, void *release_ctx);

/* Answers REQ with no response at all (Produce acks=0): its turn passes silently. */
void api_respond_none(struct api_request *req);

/* Gives up on REQ (a late decode error, no memory for the answer, a failure with no
 * error code to send): closes the connection, counted as bad_requests, and retires REQ
 * without an answer. A handler that calls it before returning returns 0. */
void api_fail(struct api_request *req, const char *why);

/* ---- handlers (one file each) ---- */

/* ApiVersions v0-2; any other version gets error 35 with the v0-shaped list
 * (net/api_versions.c). */
int api_versions_handle(struct api_request *req);

/* Metadata v0-8, auto-creating topics through core/topics (net/api_metadata.c). */
int api_metadata_handle(struct api_request *req);

/* CreateTopics v0-3, validate_only included, through core/topics
 * (net/api_create_topics.c). */
int api_create_topics_handle(struct api_request *req);

/* DeleteTopics v0-3, through core/topics (net/api_delete_topics.c). */
int api_delete_topics_handle(struct api_request *req);

/* CreatePartitions v0-1, validate_only included, through core/topics
 * (net/api_create_partitions.c). */
int api_create_partitions_handle(struct api_request *req);

/* DescribeConfigs v0-2: the broker's (this shard's) settings and a topic's configs
 * (net/api_describe_configs.c). */
int api_describe_configs_handle(struct api_request *req);

/* True when the LEN bytes at KEY name a topic config Kafka 2.3 knows (its LogConfig
 * names: retention.ms, cleanup.policy, ...), which CreateTopics accepts and
 * DescribeConfigs reports (net/api_describe_configs.c holds the one table). */
bool api_describe_configs_topic_key_known(const char *key, size_t len);

/* Fetch v4-11: whole record batches straight from the shard log (zero-copy slices), the
 * long-poll on min_bytes / max_wait_ms, forwarding of other shards' partitions
 * (net/api_fetch.c). */
int api_fetch_handle(struct api_request *req);

struct shard;
/* Registers SHARD_OP_FETCH on SHARD (from its thread; idempotent): the owner's side of a
 * forwarded Fetch read. api_fetch_handle calls it for its own shard; call it at the net
 * layer's start so that a shard serves forwarded reads before its first own Fetch. */
void api_fetch_shard_init(struct shard *shard);

/* Fetch counters of the calling shard's thread (net/api_fetch.c). */
struct api_fetch_stats {
	uint64_t partitions;	    /* partitions asked for */
	uint64_t record_bytes;	    /* record bytes answered */
	uint64_t long_polls;	    /* requests that waited for min_bytes */
	uint64_t woken;		    /* of them, answered early because data arrived */
	uint64_t expired;	    /* of them, answered when max_wait_ms passed */
	uint64_t wait_list_full;    /* waits without early wake-up: the list was full */
	uint64_t disk_reads;	    /* partition reads that went to disk */
	uint64_t forwarded;	    /* partition reads sent to their owning shard */
	uint64_t served_for_peers;  /* partition reads done for other shards */
	uint64_t out_of_range;	    /* partitions answered OFFSET_OUT_OF_RANGE */
	uint64_t read_backpressure; /* reads the shard log refused (-EAGAIN): no data */
	uint64_t session_errors;    /* incremental fetches answered FETCH_SESSION_ID_NOT_FOUND */
	uint32_t waiting;	    /* long-polls on the wake-up list now */
};
void api_fetch_stats(struct api_fetch_stats *out);

/* ListOffsets v1-5: earliest, latest, by timestamp (net/api_list_offsets.c). */
int api_list_offsets_handle(struct api_request *req);

/* Registers SHARD_OP_LIST_OFFSETS on SHARD, as api_fetch_shard_init. */
void api_list_offsets_shard_init(struct shard *shard);

/* Produce v3-7: validation, idempotence and appends on the owning shard through
 * core/producers; acks=0 never answered (net/api_produce.c). */
int api_produce_handle(struct api_request *req);

/* Produce counters of the calling shard's thread (net/api_produce.c). */
#define API_PRODUCE_ERROR_SLOTS 84 /* Kafka error codes -1 .. 82 */
struct api_produce_stats {
	uint64_t requests;	 /* Produce requests decoded */
	uint64_t partitions;	 /* partition entries in them */
	uint64_t acks0_requests; /* of the requests, acks=0 ones (never answered) */
	uint64_t deferred;	 /* requests that waited (acks=-1, forwarding, backpressure) */
	uint64_t batch_bytes;	 /* bytes of the batches handed to core/producers */
	uint64_t partitions_by_error[API_PRODUCE_ERROR_SLOTS]; /* partition answers by error
								* code, index code + 1 */
};
void api_produce_stats(struct api_produce_stats *out);

/* InitProducerId v0-1: a producer id for an idempotent producer; transactional ids are
 * refused (net/api_init_producer_id.c). */
int api_init_producer_id_handle(struct api_request *req);

/* ---- the group APIs (issue 6): coordinator on core/coordinator, state in core/groups;
 * every group-scoped handler forwards (api_forward) to the group's coordinator ---- */

/* FindCoordinator v0-2 (net/api_find_coordinator.c). */
int api_find_coordinator_handle(struct api_request *req);

struct groups;
/* The routing of every group-scoped handler (net/api_find_coordinator.c): false when
 * REQ was forwarded to GROUP_ID's coordinator shard (the handler returns 0 and answers
 * nothing); true with *ERROR 0 and *OUT set when this shard coordinates the group;
 * true with *ERROR the code to answer (15, 14 or 16) and *OUT NULL otherwise. */
bool api_find_coordinator_route(struct api_request *req, struct wire_str group_id,
				struct groups **out, int16_t *error);

/* Abandons the forwarded requests still unanswered on SERVER's shard (at its stop):
 * their handlers' abandon runs and their origins get -ESHUTDOWN (net/api.c). */
void api_forward_abandon_all(struct server *server);
/* JoinGroup v1-5 (net/api_join_group.c). */
int api_join_group_handle(struct api_request *req);
/* SyncGroup v0-3 (net/api_sync_group.c). */
int api_sync_group_handle(struct api_request *req);
/* Heartbeat v0-3 (net/api_heartbeat.c). */
int api_heartbeat_handle(struct api_request *req);
/* LeaveGroup v0-2 (net/api_leave_group.c). */
int api_leave_group_handle(struct api_request *req);
/* OffsetCommit v2-7 (net/api_offset_commit.c). */
int api_offset_commit_handle(struct api_request *req);
/* OffsetFetch v1-5 (net/api_offset_fetch.c). */
int api_offset_fetch_handle(struct api_request *req);
/* DescribeGroups v0-3: groups this shard coordinates; others NOT_COORDINATOR
 * (net/api_describe_groups.c). */
int api_describe_groups_handle(struct api_request *req);
/* ListGroups v0-2: the groups this shard coordinates (net/api_list_groups.c). */
int api_list_groups_handle(struct api_request *req);
/* DeleteGroups v0-1: groups this shard coordinates; others NOT_COORDINATOR
 * (net/api_delete_groups.c). */
int api_delete_groups_handle(struct api_request *req);

#endif
