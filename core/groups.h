/*
 * core/groups.h: the consumer-group state machines and committed offsets of the groups
 * one shard coordinates (Kafka's GroupCoordinator and GroupMetadata, for the classic
 * JoinGroup/SyncGroup protocol of Kafka 2.3). One struct groups per coordinating
 * shard, used only from that shard's thread. It does no I/O and reads no clock: every
 * call that depends on time gets NOW_MS (CLOCK_REALTIME milliseconds) from the caller,
 * and the caller runs groups_tick at groups_next_deadline (it is told through the
 * deadline_changed option when that deadline may have moved). It knows nothing of the
 * wire format: net/api_<group API>.c decode requests and encode answers; core/
 * coordinator persists offsets in the shard log and replays them at start.
 *
 * Group states and moves (Kafka's names, reported by DescribeGroups):
 *
 *   Empty --join--> PreparingRebalance --all known members joined, or the rebalance
 *     timeout passed (members that did not rejoin are removed)--> CompletingRebalance
 *     --the leader's SyncGroup--> Stable
 *   Stable / CompletingRebalance --a join (new member, changed protocols, the
 *     leader rejoining), a leave, a session expiry--> PreparingRebalance
 *   any --last member gone--> Empty (generation + 1);  Empty with no offsets left --> gone
 *
 * A first join into an Empty group waits initial_rebalance_delay_ms (extended by each
 * new member, up to the rebalance timeout) so that members starting together land in
 * one generation (Kafka's group.initial.rebalance.delay.ms). Completing the join phase
 * bumps the generation, picks the protocol every member supports that has most votes
 * (each member votes for its first supported choice; ties go to the leader's order),
 * keeps the leader if it is still a member or takes the oldest member, and answers
 * every waiting join: the leader gets the member list with each member's metadata for
 * the chosen protocol, the others an empty list. Sync requests waiting when a rebalance
 * starts are answered REBALANCE_IN_PROGRESS (27); joins of members removed while
 * waiting are answered UNKNOWN_MEMBER_ID (25).
 *
 * Sessions: a member's session deadline is renewed by every JoinGroup, SyncGroup,
 * Heartbeat and OffsetCommit it sends; while its join waits in PreparingRebalance it
 * is bounded by the rebalance deadline instead. A member past its deadline is removed
 * (rebalance). Offsets of a group with no members expire offsets_retention_ms after
 * the later of their commit and the moment the group became empty; a group with no
 * members and no offsets is forgotten.
 *
 * Memory: every byte a request hands in (ids, protocol metadata, assignments, offset
 * metadata) is copied; every pointer handed out (results, views) is valid only until
 * the next call into this module. Limits (LIMITS_GROUPS_* in core/limits.h) bound the
 * sizes of what is kept; over a limit the call answers an error, never grows unbounded.
 */
#ifndef SLUICE_CORE_GROUPS_H
#define SLUICE_CORE_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct groups;

/* Kafka error codes this module answers (the same numbers as net/kafka.h's KERR_*). */
enum groups_error {
	GROUPS_OK = 0,
	GROUPS_UNKNOWN_SERVER_ERROR = -1,
	GROUPS_OFFSET_METADATA_TOO_LARGE = 12,
	GROUPS_COORDINATOR_NOT_AVAILABLE = 15,
	GROUPS_ILLEGAL_GENERATION = 22,
	GROUPS_INCONSISTENT_GROUP_PROTOCOL = 23,
	GROUPS_INVALID_GROUP_ID = 24,
	GROUPS_UNKNOWN_MEMBER_ID = 25,
	GROUPS_INVALID_SESSION_TIMEOUT = 26,
	GROUPS_REBALANCE_IN_PROGRESS = 27,
	GROUPS_INVALID_REQUEST = 42, /* a join or assignment over LIMITS_GROUPS_*_BYTES_MAX */
	GROUPS_NON_EMPTY_GROUP = 68,
	GROUPS_GROUP_ID_NOT_FOUND = 69,
	GROUPS_GROUP_MAX_SIZE_REACHED = 81,
};

enum groups_state {
	GROUPS_STATE_EMPTY = 0,
	GROUPS_STATE_PREPARING_REBALANCE,
	GROUPS_STATE_COMPLETING_REBALANCE,
	GROUPS_STATE_STABLE,
	GROUPS_STATE_DEAD, /* DescribeGroups of a group that does not exist */
};

/* Kafka's name of STATE: "Empty", "PreparingRebalance", "CompletingRebalance",
 * "Stable", "Dead". */
const char *groups_state_name(enum groups_state state);

/* A byte string handed in or out: not NUL-terminated; LEN 0 with PTR NULL allowed. */
struct groups_bytes {
	const uint8_t *ptr;
	uint32_t len;
};

struct groups_options {
	int32_t min_session_timeout_ms;	     /* Kafka group.min.session.timeout.ms: 6000 */
	int32_t max_session_timeout_ms;	     /* Kafka group.max.session.timeout.ms: 1800000 */
	int32_t initial_rebalance_delay_ms;  /* Kafka group.initial.rebalance.delay.ms: 3000 */
	int64_t offsets_retention_ms;	     /* Kafka offsets.retention.minutes x 60000 */
	uint32_t max_group_size;	     /* members per group; over it: 81 */
	void (*deadline_changed)(void *ctx); /* groups_next_deadline may have moved; may be NULL */
	void *ctx;			     /* for deadline_changed */
};

/* Returns 0 or -ENOMEM. */
int groups_create(struct groups **out, const struct groups_options *opts);

/* Answers every waiting join and sync with COORDINATOR_NOT_AVAILABLE (their callbacks
 * run) and frees everything. NULL is fine. */
void groups_destroy(struct groups *gs);

/* Earliest time (ms) at which groups_tick has work (a session expiry, the end of a join
 * phase, an offset expiry), or INT64_MAX when none. */
int64_t groups_next_deadline(const struct groups *gs);

/* Does what is due at NOW_MS: removes expired members (rebalancing their groups),
 * completes join phases whose deadline passed, expires offsets and forgets groups. */
void groups_tick(struct groups *gs, int64_t now_ms);

/* ---- JoinGroup ---- */

struct groups_protocol {
	struct groups_bytes name;     /* e.g. "range", "roundrobin", "cooperative-sticky" */
	struct groups_bytes metadata; /* opaque to the broker (the member's subscription) */
};

struct groups_join_request {
	struct groups_bytes group_id;
	struct groups_bytes member_id;	   /* empty for a new member */
	struct groups_bytes client_id;	   /* from the request header */
	struct groups_bytes client_host;   /* the peer's address, e.g. "/127.0.0.1" */
	struct groups_bytes protocol_type; /* e.g. "consumer" */
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;		 /* JoinGroup v1+; v0: = session timeout */
	const struct groups_protocol *protocols; /* in the member's order of preference */
	uint32_t protocol_count;		 /* >= 1, else INCONSISTENT_GROUP_PROTOCOL */
};

/* One member as the leader sees it in its join answer. */
struct groups_join_member {
	struct groups_bytes member_id;
	struct groups_bytes metadata; /* for the chosen protocol */
};

struct groups_join_result {
	int16_t error;		       /* GROUPS_OK or an error code */
	int32_t generation_id;	       /* -1 on error */
	struct groups_bytes protocol;  /* chosen protocol name; empty on error */
	struct groups_bytes leader_id; /* empty on error */
	struct groups_bytes member_id; /* the member's id (assigned for a new member); on
					* error the id sent, or empty */
	const struct groups_join_member *members; /* leader only; NULL otherwise */
	uint32_t member_count;
};

/* Runs once per join, maybe before groups_join returns (an error, or the answer of a
 * member whose join completes at once). RESULT and what it points to are valid only
 * during the call. */
typedef void (*groups_join_fn)(void *ctx, const struct groups_join_result *result);

/* JoinGroup. Errors answered at once: empty group id 24; session timeout outside
 * [min, max] 26; unknown non-empty member id 25; protocol type differing from the
 * group's, or no protocol common to every member, 23; group full 81 (also when the
 * group's members would hold more than LIMITS_GROUPS_GROUP_BYTES_MAX); a join over
 * LIMITS_GROUPS_MEMBER_BYTES_MAX 42; a new group past LIMITS_GROUPS_PER_SHARD_MAX 15;
 * while groups_destroy runs 15. A join waiting when its member is replaced by a newer
 * join of the same member is answered 27. Otherwise the
 * member (new ones get an id "<client_id>-<unique>") waits for the join phase to
 * complete and DONE(CTX, ...) runs then. Returns 0, or -ENOMEM (DONE not called). */
int groups_join(struct groups *gs, const struct groups_join_request *req, int64_t now_ms,
		groups_join_fn done, void *ctx);

/* ---- SyncGroup ---- */

struct groups_assignment {
	struct groups_bytes member_id;
	struct groups_bytes assignment; /* opaque to the broker */
};

struct groups_sync_request {
	struct groups_bytes group_id;
	int32_t generation_id;
	struct groups_bytes member_id;
	const struct groups_assignment *assignments; /* from the leader; empty from others */
	uint32_t assignment_count;
};

struct groups_sync_result {
	int16_t error;			 /* GROUPS_OK or an error code */
	struct groups_bytes assignment; /* the member's; empty on error */
};

typedef void (*groups_sync_fn)(void *ctx, const struct groups_sync_result *result);

/* SyncGroup. Unknown group or member 25; other generation 22; PreparingRebalance 27.
 * In CompletingRebalance the answer waits for the leader's sync, which stores every
 * member's assignment (members it leaves out get an empty one) and makes the group
 * Stable; in Stable the member gets its assignment at once. A leader's assignment over
 * LIMITS_GROUPS_ASSIGNMENT_BYTES_MAX (or all of them over the group's byte limit) is
 * answered 42 and nothing is stored. A sync waiting when the same member syncs again is
 * answered 27; one waiting when its member is removed, 25. Returns 0 or -ENOMEM. */
int groups_sync(struct groups *gs, const struct groups_sync_request *req, int64_t now_ms,
		groups_sync_fn done, void *ctx);

/* ---- Heartbeat, LeaveGroup ---- */

/* Heartbeat: renews the member's session. Unknown group or member 25; other
 * generation 22; PreparingRebalance or CompletingRebalance 27; Stable 0. As Kafka 2.3,
 * CompletingRebalance answers 27 whatever the generation (a member whose join answer is
 * on its way still has the previous one). */
int16_t groups_heartbeat(struct groups *gs, struct groups_bytes group_id, int32_t generation_id,
			 struct groups_bytes member_id, int64_t now_ms);

/* LeaveGroup (v0-2: one member): removes the member and rebalances the rest. Unknown
 * group or member 25. */
int16_t groups_leave(struct groups *gs, struct groups_bytes group_id, struct groups_bytes member_id,
		     int64_t now_ms);

/* ---- offsets ---- */

/* Whether an OffsetCommit may be stored (call before persisting it): a commit with
 * generation -1 and an empty member id (assign() consumers, admin tools) is accepted
 * when the group has no members (or does not exist yet); otherwise unknown member 25,
 * other generation 22, CompletingRebalance 27 (Kafka 2.3's rules). Renews the member's
 * session. Empty group id 24. In Kafka 2.3's order: a group that does not exist answers
 * 22 to a generation >= 0 (15 when it would be one group too many for this shard); any
 * negative generation is accepted while the group has no members, whatever the member
 * id; CompletingRebalance answers 27 before the member is looked up. */
int16_t groups_commit_check(struct groups *gs, struct groups_bytes group_id,
			    int32_t generation_id, struct groups_bytes member_id, int64_t now_ms);

/* Longest offset metadata string kept (longer: OFFSET_METADATA_TOO_LARGE, 12). */
#define GROUPS_OFFSET_METADATA_MAX 4096u

struct groups_offset {
	int64_t offset;		    /* the next offset to consume */
	int32_t leader_epoch;	    /* -1 when the client sent none (OffsetCommit < v6) */
	struct groups_bytes metadata; /* may be empty */
	int64_t commit_ms;	    /* when it was committed (CLOCK_REALTIME ms) */
};

/* Stores (TOPIC, PARTITION) -> OFFSET in GROUP_ID, creating the group (Empty) if it
 * does not exist. Called once the commit is durable (core/coordinator), and while
 * replaying the log at start. Returns 0 or -ENOMEM; also -EINVAL for what no check
 * lets through (empty or over-long group id or topic, negative partition, metadata over
 * GROUPS_OFFSET_METADATA_MAX) and -ENOSPC past LIMITS_GROUPS_OFFSETS_PER_GROUP_MAX,
 * LIMITS_GROUPS_OFFSETS_PER_SHARD_MAX or LIMITS_GROUPS_PER_SHARD_MAX (nothing stored). */
int groups_offset_put(struct groups *gs, struct groups_bytes group_id, struct groups_bytes topic,
		      int32_t partition, const struct groups_offset *offset);

/* Removes one committed offset (a tombstone replayed from the log). No-op if absent. */
void groups_offset_remove(struct groups *gs, struct groups_bytes group_id,
			  struct groups_bytes topic, int32_t partition);

/* Looks up a committed offset: true with *OUT set (its metadata valid until the next
 * call), false when none is committed. */
bool groups_offset_get(const struct groups *gs, struct groups_bytes group_id,
		       struct groups_bytes topic, int32_t partition, struct groups_offset *out);

/* Calls FN(CTX, ...) for each committed offset of GROUP_ID, grouped by topic (topics
 * in byte order of their names, partitions ascending). FN must not call into GS.
 * Returns the count. */
typedef void (*groups_offset_fn)(void *ctx, struct groups_bytes topic, int32_t partition,
				 const struct groups_offset *offset);
uint32_t groups_offsets_each(const struct groups *gs, struct groups_bytes group_id,
			     groups_offset_fn fn, void *ctx);

/* ---- DescribeGroups, ListGroups, DeleteGroups ---- */

struct groups_member_view {
	struct groups_bytes member_id;
	struct groups_bytes client_id;
	struct groups_bytes client_host;
	struct groups_bytes metadata;	/* for the chosen protocol; empty before one is chosen */
	struct groups_bytes assignment; /* empty until the leader's sync */
};

struct groups_view {
	struct groups_bytes group_id;
	enum groups_state state;
	int32_t generation_id;
	struct groups_bytes protocol_type; /* empty when the group never had members */
	struct groups_bytes protocol;	   /* chosen protocol; empty outside CompletingRebalance
					    * and Stable */
	struct groups_bytes leader_id;
	const struct groups_member_view *members;
	uint32_t member_count;
	uint32_t offset_count; /* committed offsets kept */
};

/* Fills *OUT for GROUP_ID (pointers valid until the next call). Returns false, with
 * OUT's state GROUPS_STATE_DEAD and no members, when the group does not exist. */
bool groups_describe(struct groups *gs, struct groups_bytes group_id, struct groups_view *out);

/* Number of groups kept, and the I-th (0 <= I < count; order stable between calls
 * that change nothing) as a view, for ListGroups and sluicectl. */
uint32_t groups_count(const struct groups *gs);
void groups_at(struct groups *gs, uint32_t i, struct groups_view *out);

/* DeleteGroups for one group: GROUP_ID_NOT_FOUND (69) when absent, NON_EMPTY_GROUP (68)
 * when it has members, else 0 — only a check: the caller persists the deletion, then
 * calls groups_remove. */
int16_t groups_delete_check(const struct groups *gs, struct groups_bytes group_id);

/* Forgets GROUP_ID and its offsets (after a persisted delete, or replaying one):
 * true. A group with members is left alone (returns false); so is an absent one. */
bool groups_remove(struct groups *gs, struct groups_bytes group_id);

/* ---- the records core/coordinator keeps in the shard log ---- */

/*
 * Each change of committed offsets is one record (key, value) in a RecordBatch of the
 * coordinator's offsets partition. Layout (big-endian, Kafka's string = i16 length +
 * bytes):
 *
 *   offset commit   key   = i16 version 1 | string group | string topic | i32 partition
 *                   value = i16 version 1 | i64 offset | i32 leader_epoch |
 *                           string metadata | i64 commit_ms
 *   offset removed  key as above, value null (length -1)
 *   group deleted   key   = i16 version 2 | string group;  value null
 *
 * Sized for one batch of at most GROUPS_RECORD_KEY_MAX + GROUPS_RECORD_VALUE_MAX bytes.
 */
#define GROUPS_RECORD_KEY_MAX	(2u + 2u + 32767u + 2u + 32767u + 4u)
#define GROUPS_RECORD_VALUE_MAX (2u + 8u + 4u + 2u + GROUPS_OFFSET_METADATA_MAX + 8u)

/* Bytes of the key and value of an offset commit record. */
size_t groups_record_commit_key_bytes(struct groups_bytes group_id, struct groups_bytes topic);
size_t groups_record_commit_value_bytes(const struct groups_offset *offset);

/* Writes the key (at KEY, KEY_CAP bytes) and value (at VALUE, VALUE_CAP bytes) of an
 * offset commit record. Returns 0, or -ENOBUFS when a buffer is too small (-EINVAL for
 * a string over 32767 bytes, which no request can carry). */
int groups_record_commit_encode(struct groups_bytes group_id, struct groups_bytes topic,
				int32_t partition, const struct groups_offset *offset, uint8_t *key,
				size_t key_cap, uint8_t *value, size_t value_cap);

/* Writes the key of a group-deleted record into KEY (KEY_CAP bytes). Returns its
 * length or -ENOBUFS. */
long groups_record_delete_encode(struct groups_bytes group_id, uint8_t *key, size_t key_cap);

/* Applies one record read back from the log (VALUE NULL for a null value) to GS:
 * offset put or remove, or group removal. Returns 0, -EBADMSG for a record that does
 * not parse (the caller counts and skips it), -ENOMEM, or -ENOSPC past a limit (as
 * groups_offset_put). */
int groups_record_apply(struct groups *gs, const uint8_t *key, int32_t key_len,
			const uint8_t *value, int32_t value_len);

/* Counters of this shard's groups. */
struct groups_stats {
	uint32_t groups;	  /* groups kept */
	uint32_t members;	  /* members in them */
	uint64_t offsets;	  /* committed offsets kept */
	uint64_t rebalances;	  /* join phases completed */
	uint64_t expired_members; /* members removed by session timeout */
	uint64_t expired_offsets; /* offsets removed by retention */
};
void groups_stats(const struct groups *gs, struct groups_stats *out);

#endif
