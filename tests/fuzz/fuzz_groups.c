/*
 * tests/fuzz/fuzz_groups.c: a libFuzzer target over core/groups, the consumer-group
 * state machines and committed offsets. Each input is a program: its first bytes pick
 * the options (initial rebalance delay 0-50 ms, session timeouts 10-100000 ms, a small
 * offsets retention, a group size limit), then each op byte picks one call on three
 * group names and a clock that only the program moves: JoinGroup (member id empty, a
 * current member's, an old one's or garbage; 0-17 protocols from a small set of names
 * with metadata from the input; session and rebalance timeouts from the input), SyncGroup
 * (from the leader, with assignments for current members or garbage ids), Heartbeat,
 * LeaveGroup, OffsetCommit (groups_commit_check, then groups_offset_put of what it
 * allows), offset removal, DescribeGroups (and groups_at, groups_offsets_each,
 * groups_offset_get), DeleteGroups (check, then remove), groups_tick after the clock
 * moves (mostly forward; CLOCK_REALTIME may also step back), and groups_record_apply of
 * raw key and value bytes or of records groups_record_commit_encode and
 * groups_record_delete_encode wrote. An op byte with its top bit set makes the Nth
 * allocation core/groups does during that op fail (N from the next byte), so the
 * -ENOMEM paths run too: this file compiles core/groups.c in itself, with malloc,
 * calloc and realloc redirected, which also lets it call the module's own sanity walker
 * (group_sanity) and look at its heaps and tables. A join or sync callback may call back
 * into the module (heartbeat, leave, another join, a sync), as its contract allows.
 *
 * Every request's bytes live in exact-size heap copies freed when the call returns (so
 * a pointer core/groups kept is an ASan use-after-free), and every answer's bytes are
 * read during its callback. After every op it checks, aborting on a violation: each
 * accepted join and sync is answered exactly once (never when the call returned
 * -ENOMEM), and each one not yet answered is the waiting join or sync of exactly one
 * member; nothing is left on the outbox; group_sanity holds for every group, and the
 * group table, member and topic tables, both deadline heaps (order, slots, which
 * members and groups are on them) and the totals agree; a group's generation never
 * decreases while it exists; in CompletingRebalance and Stable every member supports the
 * chosen protocol and no join waits (no sync either in Stable), and a leader's sync
 * that makes the group Stable leaves each member the assignment it sent; answers carry
 * only documented error codes, and an OK join answer a consistent leader and member
 * list; after groups_tick(now) groups_next_deadline is past now, and it never moves
 * earlier than what the last deadline_changed call (or tick) showed without a new
 * deadline_changed call; offsets read back as put, in the order groups_offsets_each
 * promises. At the end groups_destroy must answer every waiting join and sync with
 * COORDINATOR_NOT_AVAILABLE; LeakSanitizer then checks that it freed everything.
 *
 * Build and run: `make fuzz` (clang with libFuzzer; tests/fuzz/local.mk), then
 *   tests/fuzz/fuzz_groups -max_total_time=600 CORPUS_DIR $(srcdir)/tests/fuzz/corpus/groups
 * The seed corpus (tests/fuzz/make-corpus.py) holds programs of whole rebalances.
 * tests/fuzz/run-fuzz.sh runs it in `make check` for a bounded time. A crash leaves
 * crash-<sha1> in the artifact directory: rerun the target with that file as its only
 * argument to reproduce (FUZZ_GROUPS_TRACE=1 prints each op).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation failures: core/groups.c is compiled below with these ---- */

static unsigned long fg_alloc_count; /* allocations core/groups made during this op */
static unsigned long fg_alloc_fail;  /* the one to fail (1-based), 0: none */

static bool fg_alloc_fails(void)
{
	return fg_alloc_fail && ++fg_alloc_count == fg_alloc_fail;
}

static void *fg_malloc(size_t n)
{
	return fg_alloc_fails() ? NULL : malloc(n);
}

static void *fg_calloc(size_t n, size_t size)
{
	return fg_alloc_fails() ? NULL : calloc(n, size);
}

static void *fg_realloc(void *p, size_t n)
{
	return fg_alloc_fails() ? NULL : realloc(p, n);
}

#define malloc(n)	fg_malloc(n)
#define calloc(n, size) fg_calloc(n, size)
#define realloc(p, n)	fg_realloc(p, n)
#include "core/groups.c"
#undef malloc
#undef calloc
#undef realloc

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The three group names a program plays with (and "" for an invalid one). */
#define FG_GROUPS 3
static const char *const fg_group_names[FG_GROUPS] = {"g0", "group-1", "a-longer-group-id-2"};

/* Protocol names a join picks from ("" and a one-letter one included). */
static const char *const fg_protocol_names[] = {
    "range", "roundrobin", "sticky", "cooperative-sticky", "", "r"};
#define FG_PROTOCOL_NAMES (sizeof(fg_protocol_names) / sizeof(fg_protocol_names[0]))
/* Topic names ("t" is a prefix of the others: the name order's tie-break). */
static const char *const fg_topic_names[] = {"t1", "t2", "topic-3", "t"};
#define FG_TOPIC_NAMES 4

/* Member ids seen in answers, per group, for "an old member's id". */
#define FG_SEEN_IDS	   16
#define FG_PROTOCOLS_MAX   17 /* one past LIMITS_GROUPS_PROTOCOLS_MAX */
#define FG_ASSIGNMENTS_MAX 8
#define FG_REQ_BUFS_MAX	   128
#define FG_START_MS	   INT64_C(1000000)

/* One join or sync handed to core/groups. */
struct fg_ticket {
	bool is_join;
	bool answered;
	bool refused;	 /* the call returned -ENOMEM: must never be answered */
	uint8_t group;	 /* index into fg_group_names */
	uint8_t reenter; /* what the callback calls back with (FG_REENTER_*) */
	uint32_t id_len; /* the member id sent (sync) */
	uint8_t id[LIMITS_GROUPS_MEMBER_ID_BYTES_MAX];
};

enum {
	FG_REENTER_NONE = 0,
	FG_REENTER_HEARTBEAT,
	FG_REENTER_LEAVE,
	FG_REENTER_JOIN,
	FG_REENTER_SYNC,
	FG_REENTER_KINDS,
};

/* The reader over the program's bytes: zeros once they run out. */
struct fg_prog {
	const uint8_t *at;
	size_t left;
};

static struct {
	struct groups *gs;
	int64_t now;
	int64_t armed;	   /* the deadline the caller last learned */
	bool notified;	   /* deadline_changed ran during the op */
	uint32_t op_index; /* for messages */
	const char *op_name;
	bool trace;
	int depth;	    /* callbacks running that call back in */
	uint64_t reentries; /* calls made from callbacks */
	bool destroying;
	struct fg_ticket **tickets;
	uint32_t ticket_count, ticket_cap;
	uint64_t accepted, answered;
	void *bufs[FG_REQ_BUFS_MAX]; /* the current request's byte copies */
	uint32_t buf_count;
	uint8_t seen[FG_GROUPS][FG_SEEN_IDS][LIMITS_GROUPS_MEMBER_ID_BYTES_MAX];
	uint32_t seen_len[FG_GROUPS][FG_SEEN_IDS];
	uint32_t seen_next[FG_GROUPS];
	bool present[FG_GROUPS]; /* at the last check */
	int32_t generation[FG_GROUPS];
} fg;

static void fg_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fg_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fuzz_groups: op %u (%s) at %lld ms: ", fg.op_index,
		fg.op_name ? fg.op_name : "-", (long long)fg.now);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

#define FG_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fg_fail(__VA_ARGS__);                                                      \
	} while (0)

static uint8_t fg_u8(struct fg_prog *p)
{
	if (!p->left)
		return 0;
	p->left--;
	return *p->at++;
}

static uint32_t fg_u32(struct fg_prog *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | fg_u8(p);
	return v;
}

static int64_t fg_i64(struct fg_prog *p)
{
	uint64_t high = fg_u32(p);
	return (int64_t)(high << 32 | fg_u32(p));
}

/* A private copy of N bytes at PTR, freed when the op's call returns. */
static struct groups_bytes fg_copy(const void *ptr, uint32_t n)
{
	if (n == 0 || fg.buf_count == FG_REQ_BUFS_MAX)
		return (struct groups_bytes){NULL, 0};
	uint8_t *copy = malloc(n);
	if (!copy)
		abort();
	memcpy(copy, ptr, n);
	fg.bufs[fg.buf_count++] = copy;
	return (struct groups_bytes){copy, n};
}

static struct groups_bytes fg_copy_str(const char *s)
{
	return fg_copy(s, (uint32_t)strlen(s));
}

/* Up to N bytes of the program, copied. */
static struct groups_bytes fg_take(struct fg_prog *p, uint32_t n)
{
	if (n > p->left)
		n = (uint32_t)p->left;
	struct groups_bytes b = fg_copy(p->at, n);
	p->at += n;
	p->left -= n;
	return b;
}

static void fg_free_bufs(void)
{
	for (uint32_t i = 0; i < fg.buf_count; i++)
		free(fg.bufs[i]);
	fg.buf_count = 0;
}

static struct groups_bytes fg_group_id(uint8_t k)
{
	return fg_copy_str(fg_group_names[k]);
}

static struct group *fg_group(uint8_t k)
{
	const char *name = fg_group_names[k];
	return group_find(fg.gs,
			  (struct groups_bytes){(const uint8_t *)name, (uint32_t)strlen(name)});
}

static bool fg_bytes_eq(struct groups_bytes a, struct groups_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void fg_remember_id(uint8_t k, struct groups_bytes id)
{
	if (id.len == 0 || id.len > LIMITS_GROUPS_MEMBER_ID_BYTES_MAX)
		return;
	for (uint32_t i = 0; i < FG_SEEN_IDS; i++)
		if (fg_bytes_eq((struct groups_bytes){fg.seen[k][i], fg.seen_len[k][i]}, id))
			return;
	uint32_t slot = fg.seen_next[k]++ % FG_SEEN_IDS;
	memcpy(fg.seen[k][slot], id.ptr, id.len);
	fg.seen_len[k][slot] = id.len;
}

/* A member id: empty, a current member's, one seen before, or garbage. */
static struct groups_bytes fg_member_id(struct fg_prog *p, uint8_t k)
{
	uint8_t sel = fg_u8(p);
	const struct group *g = fg_group(k);
	switch (sel & 3) {
	case 1:
		if (g && g->member_count) {
			const struct member *m = g->members[(sel >> 2) % g->member_count];
			return fg_copy(m->id.ptr, m->id.len);
		}
		return (struct groups_bytes){NULL, 0};
	case 2: {
		uint32_t slot = (sel >> 2) % FG_SEEN_IDS;
		return fg_copy(fg.seen[k][slot], fg.seen_len[k][slot]);
	}
	case 3:
		return fg_take(p, (sel >> 2) % 24);
	default:
		return (struct groups_bytes){NULL, 0};
	}
}

/* A generation: the group's, one off it, or any. */
static int32_t fg_generation(struct fg_prog *p, uint8_t k)
{
	const struct group *g = fg_group(k);
	int32_t current = g ? g->generation : 0;
	switch (fg_u8(p) & 7) {
	case 0:
	case 1:
	case 2:
	case 3:
		return current;
	case 4:
		return current - 1;
	case 5:
		return current + 1;
	case 6:
		return -1;
	default:
		return (int32_t)fg_u32(p);
	}
}

static uint8_t fg_group_index(struct fg_prog *p)
{
	return fg_u8(p) % FG_GROUPS;
}

static struct fg_ticket *fg_ticket_new(bool is_join, uint8_t k, uint8_t reenter)
{
	if (fg.ticket_count == fg.ticket_cap) {
		uint32_t cap = fg.ticket_cap ? fg.ticket_cap * 2 : 64;
		struct fg_ticket **grown = realloc(fg.tickets, cap * sizeof(*grown));
		if (!grown)
			abort();
		fg.tickets = grown;
		fg.ticket_cap = cap;
	}
	struct fg_ticket *t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	t->is_join = is_join;
	t->group = k;
	t->reenter = reenter % FG_REENTER_KINDS;
	fg.tickets[fg.ticket_count++] = t;
	return t;
}

/* Keeps the member id a sync of T was sent with. */
static void fg_ticket_set_id(struct fg_ticket *t, struct groups_bytes id)
{
	if (id.len == 0 || id.len > sizeof(t->id))
		return;
	memcpy(t->id, id.ptr, id.len);
	t->id_len = id.len;
}

/* The call that handed T in returned RC: counts it as accepted, or refused. */
static void fg_ticket_returned(struct fg_ticket *t, int rc)
{
	FG_CHECK(rc == 0 || rc == -ENOMEM, "a %s returned %d", t->is_join ? "join" : "sync", rc);
	if (rc == 0) {
		fg.accepted++;
		return;
	}
	FG_CHECK(fg_alloc_fail != 0, "-ENOMEM without a failed allocation");
	FG_CHECK(!t->answered, "a %s answered, then its call returned -ENOMEM",
		 t->is_join ? "join" : "sync");
	t->refused = true;
}

static void fg_ticket_answer(struct fg_ticket *t)
{
	FG_CHECK(!t->answered, "a %s answered twice", t->is_join ? "join" : "sync");
	FG_CHECK(!t->refused, "a refused %s answered", t->is_join ? "join" : "sync");
	t->answered = true;
	fg.answered++;
}

/* ---- callbacks ---- */

static void fg_join_cb(void *ctx, const struct groups_join_result *res);
static void fg_sync_cb(void *ctx, const struct groups_sync_result *res);

static void fg_deadline_changed(void *ctx)
{
	FG_CHECK(ctx == &fg, "deadline_changed with the wrong context");
	FG_CHECK(!fg.destroying, "deadline_changed during groups_destroy");
	fg.notified = true;
	fg.armed = groups_next_deadline(fg.gs);
}

/* A join request every field of which is fixed (for calls from callbacks). */
static int fg_plain_join(uint8_t k, struct groups_bytes member_id, uint8_t reenter)
{
	static const uint8_t meta[] = {0, 1, 0, 0, 0, 1, 0, 2, 't', '1'};
	struct groups_protocol proto = {.name = {(const uint8_t *)"range", 5},
					.metadata = {meta, sizeof(meta)}};
	struct groups_join_request req = {
	    .group_id = {(const uint8_t *)fg_group_names[k], (uint32_t)strlen(fg_group_names[k])},
	    .member_id = member_id,
	    .client_id = {(const uint8_t *)"reenter", 7},
	    .client_host = {(const uint8_t *)"/127.0.0.1", 10},
	    .protocol_type = {(const uint8_t *)"consumer", 8},
	    .session_timeout_ms = 1000,
	    .rebalance_timeout_ms = 500,
	    .protocols = &proto,
	    .protocol_count = 1,
	};
	struct fg_ticket *t = fg_ticket_new(true, k, reenter);
	int rc = groups_join(fg.gs, &req, fg.now, fg_join_cb, t);
	fg_ticket_returned(t, rc);
	return rc;
}

/* What the callback of ticket T calls back in with (MEMBER_ID and GENERATION from its
 * answer, valid during the callback). */
static void fg_reenter(struct fg_ticket *t, struct groups_bytes member_id, int32_t generation)
{
	if (t->reenter == FG_REENTER_NONE || fg.depth > 0)
		return;
	fg.depth++;
	fg.reentries++;
	if (fg.trace)
		fprintf(stderr, "  callback calls back in: %d\n", t->reenter);
	struct groups_bytes gid = {(const uint8_t *)fg_group_names[t->group],
				   (uint32_t)strlen(fg_group_names[t->group])};
	switch (t->reenter) {
	case FG_REENTER_HEARTBEAT: {
		int16_t e = groups_heartbeat(fg.gs, gid, generation, member_id, fg.now);
		FG_CHECK(e == 0 || e == 22 || e == 25 || e == 27, "heartbeat answered %d", e);
		break;
	}
	case FG_REENTER_LEAVE: {
		int16_t e = groups_leave(fg.gs, gid, member_id, fg.now);
		FG_CHECK(e == 0 || e == 25, "leave answered %d", e);
		break;
	}
	case FG_REENTER_JOIN:
		fg_plain_join(t->group, (struct groups_bytes){NULL, 0}, FG_REENTER_NONE);
		break;
	case FG_REENTER_SYNC: {
		struct groups_assignment a = {.member_id = member_id,
					      .assignment = {(const uint8_t *)"reenter", 7}};
		struct groups_sync_request req = {.group_id = gid,
						  .generation_id = generation,
						  .member_id = member_id,
						  .assignments = &a,
						  .assignment_count = 1};
		struct fg_ticket *s = fg_ticket_new(false, t->group, FG_REENTER_NONE);
		fg_ticket_set_id(s, member_id);
		fg_ticket_returned(s, groups_sync(fg.gs, &req, fg.now, fg_sync_cb, s));
		break;
	}
	}
	fg.depth--;
}

static void fg_join_cb(void *ctx, const struct groups_join_result *res)
{
	struct fg_ticket *t = ctx;
	FG_CHECK(t->is_join, "a sync answered through the join callback");
	fg_ticket_answer(t);
	int16_t e = res->error;
	if (fg.trace)
		fprintf(stderr,
			"  join answer (%s): error %d generation %d member %.*s, %u members%s\n",
			fg_group_names[t->group], e, res->generation_id, (int)res->member_id.len,
			(const char *)res->member_id.ptr, res->member_count,
			t->reenter && !fg.depth ? ", calls back in" : "");
	FG_CHECK(e == 0 || e == 15 || e == 23 || e == 24 || e == 25 || e == 26 || e == 27 ||
		     e == 42 || e == 81,
		 "join answered error %d", e);
	FG_CHECK(!fg.destroying || e == 15, "a join answered %d during groups_destroy", e);
	/* Read every byte handed out (ASan checks they are there). */
	uint8_t sink = 0;
	for (uint32_t i = 0; i < res->protocol.len; i++)
		sink ^= res->protocol.ptr[i];
	for (uint32_t i = 0; i < res->leader_id.len; i++)
		sink ^= res->leader_id.ptr[i];
	for (uint32_t i = 0; i < res->member_count; i++)
		for (uint32_t j = 0; j < res->members[i].metadata.len; j++)
			sink ^= res->members[i].metadata.ptr[j];
	(void)sink;
	fg_remember_id(t->group, res->member_id);
	if (e != GROUPS_OK) {
		FG_CHECK(res->generation_id == -1 && res->protocol.len == 0 &&
			     res->leader_id.len == 0 && res->members == NULL &&
			     res->member_count == 0,
			 "join error %d with a generation %d, protocol, leader or members", e,
			 res->generation_id);
	} else {
		FG_CHECK(res->generation_id >= 1, "join answered generation %d",
			 res->generation_id);
		FG_CHECK(res->leader_id.len > 0 && res->member_id.len > 0,
			 "join answered no leader or member id");
		bool leader = fg_bytes_eq(res->leader_id, res->member_id);
		FG_CHECK(leader == (res->members != NULL), "join answered a member list to %s",
			 leader ? "no leader" : "a follower");
		bool self = false, lead = false;
		for (uint32_t i = 0; i < res->member_count; i++) {
			self |= fg_bytes_eq(res->members[i].member_id, res->member_id);
			lead |= fg_bytes_eq(res->members[i].member_id, res->leader_id);
			fg_remember_id(t->group, res->members[i].member_id);
		}
		FG_CHECK(!leader || (self && lead), "the leader's member list lacks the leader");
		const struct group *g = fg_group(t->group);
		FG_CHECK(!g || res->generation_id <= g->generation,
			 "join answered generation %d, the group is at %d", res->generation_id,
			 g ? g->generation : -1);
	}
	fg_reenter(t, res->member_id, res->generation_id);
}

static void fg_sync_cb(void *ctx, const struct groups_sync_result *res)
{
	struct fg_ticket *t = ctx;
	FG_CHECK(!t->is_join, "a join answered through the sync callback");
	fg_ticket_answer(t);
	int16_t e = res->error;
	if (fg.trace)
		fprintf(stderr, "  sync answer (%s): error %d, %u bytes%s\n",
			fg_group_names[t->group], e, res->assignment.len,
			t->reenter && !fg.depth ? ", calls back in" : "");
	FG_CHECK(e == 0 || e == 15 || e == 22 || e == 25 || e == 27 || e == 42,
		 "sync answered error %d", e);
	FG_CHECK(!fg.destroying || e == 15, "a sync answered %d during groups_destroy", e);
	FG_CHECK(e == 0 || res->assignment.len == 0, "sync error %d with an assignment", e);
	uint8_t sink = 0;
	for (uint32_t i = 0; i < res->assignment.len; i++)
		sink ^= res->assignment.ptr[i];
	(void)sink;
	if (e == GROUPS_OK && fg.depth == 0 && fg.reentries == 0) {
		/* Nothing called back in: the member still holds what it is told. */
		const struct group *g = fg_group(t->group);
		const struct member *m =
		    g ? member_find(fg.gs, g, (struct groups_bytes){t->id, t->id_len}) : NULL;
		FG_CHECK(m, "sync answered OK to a member that is gone");
		FG_CHECK(fg_bytes_eq(res->assignment, bytes_of(m->assignment, m->assignment_len)),
			 "sync answered an assignment the member does not hold");
	}
	fg_reenter(t, (struct groups_bytes){t->id, t->id_len},
		   fg_group(t->group) ? fg_group(t->group)->generation : -1);
}

/* ---- the checks after every op ---- */

static void fg_check_heap(const struct heap *h, const char *name)
{
	for (uint32_t i = 0; i < h->count; i++) {
		FG_CHECK(h->nodes[i]->slot == i, "%s heap: node %u says slot %u", name, i,
			 h->nodes[i]->slot);
		if (i > 0)
			FG_CHECK(h->nodes[(i - 1) / 2]->due <= h->nodes[i]->due,
				 "%s heap: node %u is due before its parent", name, i);
	}
}

static void fg_check_group(const struct group *g, uint32_t *members, uint64_t *offsets,
			   uint32_t *on_session_heap)
{
	struct groups_bytes id = bytes_of(g->id, g->id_len);
	FG_CHECK(group_sanity(fg.gs, id), "group_sanity fails for '%.*s' (state %s)",
		 (int)g->id_len, (const char *)g->id, groups_state_name(g->state));
	bool chosen =
	    g->state == GROUPS_STATE_COMPLETING_REBALANCE || g->state == GROUPS_STATE_STABLE;
	struct groups_bytes protocol = bytes_of(g->protocol, g->protocol_len);
	for (uint32_t i = 0; i < g->member_count; i++) {
		const struct member *m = g->members[i];
		FG_CHECK(member_find(fg.gs, g, m->id) == m, "member %u not found by its id", i);
		FG_CHECK(m->protocol_count >= 1 && m->protocol_count <= LIMITS_GROUPS_PROTOCOLS_MAX,
			 "a member with %u protocols", m->protocol_count);
		FG_CHECK(m->session_timeout_ms >= fg.gs->opts.min_session_timeout_ms &&
			     m->session_timeout_ms <= fg.gs->opts.max_session_timeout_ms,
			 "a member with session timeout %d", m->session_timeout_ms);
		for (uint32_t j = 0; j < m->protocol_count; j++)
			FG_CHECK(m->protocols[j].name.len <= g->protocol_cap,
				 "a protocol name longer than the group's buffer");
		if (chosen) {
			FG_CHECK(member_supports(m, protocol),
				 "a member of a %s group does not support its protocol '%.*s'",
				 groups_state_name(g->state), (int)protocol.len,
				 (const char *)protocol.ptr);
			FG_CHECK(!m->join, "a join waits in %s", groups_state_name(g->state));
		}
		if (g->state == GROUPS_STATE_STABLE)
			FG_CHECK(!m->sync, "a sync waits in Stable");
		if (m->session.slot != GROUPS_NONE) {
			FG_CHECK(m->session.slot < fg.gs->sessions.count &&
				     fg.gs->sessions.nodes[m->session.slot] == &m->session,
				 "a member's session node is not where it says");
			FG_CHECK(
			    m->session.due == m->session_deadline_ms,
			    "a member is on the session heap at another time than its deadline");
			(*on_session_heap)++;
		}
	}
	if (g->due.slot != GROUPS_NONE)
		FG_CHECK(g->due.slot < fg.gs->deadlines.count &&
			     fg.gs->deadlines.nodes[g->due.slot] == &g->due,
			 "a group's deadline node is not where it says");
	uint64_t count = 0;
	for (uint32_t ti = 0; ti < g->topic_count; ti++) {
		const struct topic *t = g->topics[ti];
		FG_CHECK(topic_find(fg.gs, g, bytes_of(t->name, t->name_len)) == t,
			 "topic %u not found by its name", ti);
		for (uint32_t i = 0; i < t->count; i++) {
			const struct offset_entry *e = &t->entries[i];
			FG_CHECK(entry_find(t, e->partition) == i, "partition %d not found",
				 e->partition);
			FG_CHECK(e->partition >= 0 && e->metadata_len <= GROUPS_OFFSET_METADATA_MAX,
				 "an offset of partition %d, metadata %u bytes", e->partition,
				 e->metadata_len);
			FG_CHECK(g->commit_ms_floor <= e->commit_ms,
				 "an offset committed before the group's floor");
		}
		count += t->count;
	}
	*members += g->member_count;
	*offsets += count;
}

static void fg_check(void)
{
	struct groups *gs = fg.gs;
	FG_CHECK(gs->out_head == NULL && gs->out_tail == NULL, "answers left on the outbox");
	FG_CHECK(!gs->deadline_dirty, "a deadline_changed left owed");
	uint32_t members = 0, on_session_heap = 0, on_deadline_heap = 0;
	uint64_t offsets = 0;
	for (uint32_t i = 0; i < gs->group_count; i++) {
		const struct group *g = gs->groups[i];
		FG_CHECK(g->pos == i, "group %u says position %u", i, g->pos);
		FG_CHECK(group_find(gs, bytes_of(g->id, g->id_len)) == g, "group %u not found", i);
		fg_check_group(g, &members, &offsets, &on_session_heap);
		on_deadline_heap += g->due.slot != GROUPS_NONE;
	}
	FG_CHECK(members == gs->member_total, "%u members, the total says %u", members,
		 gs->member_total);
	FG_CHECK(offsets == gs->offset_total, "%llu offsets, the total says %llu",
		 (unsigned long long)offsets, (unsigned long long)gs->offset_total);
	FG_CHECK(on_session_heap == gs->sessions.count, "%u members on a session heap of %u",
		 on_session_heap, gs->sessions.count);
	FG_CHECK(on_deadline_heap == gs->deadlines.count, "%u groups on a deadline heap of %u",
		 on_deadline_heap, gs->deadlines.count);
	fg_check_heap(&gs->sessions, "session");
	fg_check_heap(&gs->deadlines, "deadline");

	/* Each unanswered ticket is exactly one member's waiting join or sync. */
	uint64_t waiting = 0;
	for (uint32_t i = 0; i < gs->group_count; i++) {
		const struct group *g = gs->groups[i];
		for (const struct member *m = g->oldest; m; m = m->newer) {
			if (m->join) {
				const struct fg_ticket *t = m->join->ctx;
				FG_CHECK(t->is_join && !t->answered && !t->refused,
					 "a member waits with an answered or refused join");
				waiting++;
			}
			if (m->sync) {
				const struct fg_ticket *t = m->sync->ctx;
				FG_CHECK(!t->is_join && !t->answered && !t->refused,
					 "a member waits with an answered or refused sync");
				waiting++;
			}
		}
	}
	FG_CHECK(waiting == fg.accepted - fg.answered,
		 "%llu joins and syncs wait, %llu accepted ones are unanswered",
		 (unsigned long long)waiting, (unsigned long long)(fg.accepted - fg.answered));

	/* Generations only grow while a group exists. */
	for (uint8_t k = 0; k < FG_GROUPS; k++) {
		const struct group *g = fg_group(k);
		if (g && fg.present[k])
			FG_CHECK(g->generation >= fg.generation[k],
				 "group %s went from generation %d to %d", fg_group_names[k],
				 fg.generation[k], g->generation);
		fg.present[k] = g != NULL;
		fg.generation[k] = g ? g->generation : 0;
	}

	int64_t next = groups_next_deadline(gs);
	FG_CHECK(next >= fg.armed,
		 "the next deadline moved earlier (%lld, the caller knows %lld) without "
		 "deadline_changed",
		 (long long)next, (long long)fg.armed);

	struct groups_stats st;
	groups_stats(gs, &st);
	FG_CHECK(st.groups == gs->group_count && st.members == members && st.offsets == offsets,
		 "groups_stats disagrees with the tables");
}

/* ---- ops ---- */

static void fg_op_join(struct fg_prog *p)
{
	static const char *const client_ids[] = {"consumer-1", "", "c2", NULL};
	static const char *const types[] = {"consumer", "consumer", "consumer", "consumer",
					    "consumer", "consumer", "connect",	""};
	static const int32_t sessions[] = {10, 11, 50, 1000, 100000, 9, 100001};
	static const int32_t rebalances[] = {-1, 0, 1, 20, 200, 5000, 100000};
	uint8_t gsel = fg_u8(p);
	uint8_t k = gsel % FG_GROUPS;
	struct groups_join_request req = {0};
	req.group_id = (gsel & 0x70) == 0x70 ? (struct groups_bytes){NULL, 0} : fg_group_id(k);
	req.member_id = fg_member_id(p, k);
	uint8_t csel = fg_u8(p) & 3;
	if (client_ids[csel]) {
		req.client_id = fg_copy_str(client_ids[csel]);
	} else {
		char long_id[200];
		memset(long_id, 'x', sizeof(long_id));
		req.client_id = fg_copy(long_id, sizeof(long_id));
	}
	req.client_host = fg_copy_str("/127.0.0.1");
	req.protocol_type = fg_copy_str(types[fg_u8(p) & 7]);
	uint8_t ssel = fg_u8(p) & 7;
	req.session_timeout_ms = ssel < 7 ? sessions[ssel] : (int32_t)fg_u32(p);
	uint8_t rsel = fg_u8(p) & 7;
	req.rebalance_timeout_ms = rsel < 7 ? rebalances[rsel] : (int32_t)fg_u32(p);
	uint8_t nsel = fg_u8(p) & 15;
	uint32_t count = nsel == 0    ? 0
			 : nsel == 14 ? FG_PROTOCOLS_MAX
			 : nsel == 15 ? 4
				      : 1 + nsel % 3;
	struct groups_protocol protos[FG_PROTOCOLS_MAX];
	for (uint32_t i = 0; i < count; i++) {
		protos[i].name = fg_copy_str(fg_protocol_names[fg_u8(p) % FG_PROTOCOL_NAMES]);
		protos[i].metadata = fg_take(p, fg_u8(p) % 24);
	}
	req.protocols = count ? protos : NULL;
	req.protocol_count = count;
	uint8_t reenter = fg_u8(p);
	if (fg.trace)
		fprintf(stderr,
			"  join %s member %u bytes, %u protocols, session %d rebalance %d\n",
			fg_group_names[k], req.member_id.len, count, req.session_timeout_ms,
			req.rebalance_timeout_ms);
	struct fg_ticket *t = fg_ticket_new(true, k, reenter);
	fg_ticket_returned(t, groups_join(fg.gs, &req, fg.now, fg_join_cb, t));
}

static void fg_op_sync(struct fg_prog *p)
{
	uint8_t k = fg_group_index(p);
	struct groups_sync_request req = {0};
	req.group_id = fg_group_id(k);
	req.member_id = fg_member_id(p, k);
	req.generation_id = fg_generation(p, k);
	struct groups_assignment as[FG_ASSIGNMENTS_MAX];
	uint8_t asel = fg_u8(p);
	const struct group *g = fg_group(k);
	uint32_t count = asel % 6;
	if (count == 5) /* one for every member, in order */
		count = g ? (g->member_count < FG_ASSIGNMENTS_MAX ? g->member_count
								  : FG_ASSIGNMENTS_MAX)
			  : 0;
	for (uint32_t i = 0; i < count; i++) {
		if (asel % 6 == 5)
			as[i].member_id = fg_copy(g->members[i]->id.ptr, g->members[i]->id.len);
		else
			as[i].member_id = fg_member_id(p, k);
		as[i].assignment = fg_take(p, fg_u8(p) % 20);
	}
	req.assignments = count ? as : NULL;
	req.assignment_count = count;
	uint8_t reenter = fg_u8(p);
	bool was_completing = g && g->state == GROUPS_STATE_COMPLETING_REBALANCE;
	int32_t generation = g ? g->generation : -1;
	if (fg.trace)
		fprintf(stderr, "  sync %s generation %d, %u assignments\n", fg_group_names[k],
			req.generation_id, count);
	struct fg_ticket *t = fg_ticket_new(false, k, reenter);
	fg_ticket_set_id(t, req.member_id);
	uint64_t reentries = fg.reentries;
	fg_ticket_returned(t, groups_sync(fg.gs, &req, fg.now, fg_sync_cb, t));
	g = fg_group(k);
	if (!was_completing || !g || g->state != GROUPS_STATE_STABLE ||
	    g->generation != generation || fg.reentries != reentries)
		return;
	/* The leader's sync made the group Stable: each member holds the last assignment the
	 * leader gave it, or none. */
	for (uint32_t i = 0; i < g->member_count; i++) {
		const struct member *m = g->members[i];
		struct groups_bytes want = {NULL, 0};
		for (uint32_t j = 0; j < count; j++)
			if (fg_bytes_eq(as[j].member_id, m->id))
				want = as[j].assignment;
		FG_CHECK(fg_bytes_eq(want, bytes_of(m->assignment, m->assignment_len)),
			 "a member holds another assignment than the leader's sync gave it");
	}
}

static void fg_op_heartbeat(struct fg_prog *p)
{
	uint8_t k = fg_group_index(p);
	struct groups_bytes member_id = fg_member_id(p, k);
	int32_t generation = fg_generation(p, k);
	int16_t e = groups_heartbeat(fg.gs, fg_group_id(k), generation, member_id, fg.now);
	FG_CHECK(e == 0 || e == 22 || e == 25 || e == 27, "heartbeat answered %d", e);
	const struct group *g = fg_group(k);
	FG_CHECK(e != 0 || (g && g->state == GROUPS_STATE_STABLE),
		 "heartbeat answered 0 outside Stable");
}

static void fg_op_leave(struct fg_prog *p)
{
	uint8_t k = fg_group_index(p);
	struct groups_bytes member_id = fg_member_id(p, k);
	int16_t e = groups_leave(fg.gs, fg_group_id(k), member_id, fg.now);
	FG_CHECK(e == 0 || e == 25, "leave answered %d", e);
	const struct group *g = fg_group(k);
	if (e == 0 && fg.reentries == 0)
		FG_CHECK(!g || !member_find(fg.gs, g, member_id),
			 "a member left and is still there");
}

/* An offset from the program; its bytes are copied. */
static struct groups_offset fg_offset(struct fg_prog *p)
{
	struct groups_offset o = {0};
	uint8_t sel = fg_u8(p);
	o.offset = (sel & 1) ? fg_i64(p) : sel;
	o.leader_epoch = (sel & 2) ? (int32_t)fg_u32(p) : -1;
	o.metadata = fg_take(p, fg_u8(p) % 16);
	switch ((sel >> 2) & 3) {
	case 0:
	case 1:
		o.commit_ms = fg.now;
		break;
	case 2:
		o.commit_ms = fg.now - (int64_t)fg_u8(p) * 100;
		break;
	default:
		o.commit_ms = fg_i64(p);
	}
	return o;
}

static void fg_check_offset_stored(uint8_t k, struct groups_bytes topic, int32_t partition,
				   const struct groups_offset *o)
{
	struct groups_offset got;
	FG_CHECK(groups_offset_get(fg.gs, fg_group_id(k), topic, partition, &got),
		 "an offset put is not there");
	FG_CHECK(got.offset == o->offset && got.leader_epoch == o->leader_epoch &&
		     got.commit_ms == o->commit_ms && fg_bytes_eq(got.metadata, o->metadata),
		 "an offset reads back otherwise than it was put");
}

static void fg_op_commit(struct fg_prog *p)
{
	uint8_t gsel = fg_u8(p);
	uint8_t k = gsel % FG_GROUPS;
	struct groups_bytes gid =
	    (gsel & 0x70) == 0x70 ? (struct groups_bytes){NULL, 0} : fg_group_id(k);
	struct groups_bytes member_id = fg_member_id(p, k);
	int32_t generation = fg_generation(p, k);
	int16_t e = groups_commit_check(fg.gs, gid, generation, member_id, fg.now);
	FG_CHECK(e == 0 || e == 15 || e == 22 || e == 24 || e == 25 || e == 27,
		 "commit check answered %d", e);
	FG_CHECK(gid.len || e == 24, "commit check of an empty group id answered %d", e);
	uint32_t n = 1 + fg_u8(p) % 3;
	if (e != 0)
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct groups_bytes topic = fg_copy_str(fg_topic_names[fg_u8(p) % FG_TOPIC_NAMES]);
		uint8_t psel = fg_u8(p);
		int32_t partition = psel == 0xff ? -1 : psel % 6;
		struct groups_offset o = fg_offset(p);
		int rc = groups_offset_put(fg.gs, gid, topic, partition, &o);
		FG_CHECK(rc == 0 || rc == -ENOMEM || (rc == -EINVAL && partition < 0),
			 "groups_offset_put returned %d", rc);
		FG_CHECK(rc != -ENOMEM || fg_alloc_fail, "groups_offset_put: -ENOMEM for nothing");
		if (rc == 0)
			fg_check_offset_stored(k, topic, partition, &o);
	}
}

static void fg_op_offset_remove(struct fg_prog *p)
{
	uint8_t k = fg_group_index(p);
	struct groups_bytes topic = fg_copy_str(fg_topic_names[fg_u8(p) % FG_TOPIC_NAMES]);
	int32_t partition = fg_u8(p) % 6;
	groups_offset_remove(fg.gs, fg_group_id(k), topic, partition);
	struct groups_offset got;
	FG_CHECK(!groups_offset_get(fg.gs, fg_group_id(k), topic, partition, &got),
		 "a removed offset is still there");
}

struct fg_each {
	uint8_t k;
	uint32_t count;
	struct groups_bytes last_topic;
	int32_t last_partition;
};

static void fg_each_offset(void *ctx, struct groups_bytes topic, int32_t partition,
			   const struct groups_offset *offset)
{
	struct fg_each *each = ctx;
	if (each->count > 0) {
		uint32_t n = topic.len < each->last_topic.len ? topic.len : each->last_topic.len;
		int c = memcmp(each->last_topic.ptr, topic.ptr, n);
		bool same = c == 0 && topic.len == each->last_topic.len;
		FG_CHECK(c < 0 || (c == 0 && each->last_topic.len <= topic.len),
			 "groups_offsets_each: topics out of order");
		FG_CHECK(!same || each->last_partition < partition,
			 "groups_offsets_each: partitions out of order");
	}
	each->count++;
	each->last_topic = topic;
	each->last_partition = partition;
	FG_CHECK(offset->metadata.len <= GROUPS_OFFSET_METADATA_MAX, "metadata too long");
}

static void fg_check_view(const struct groups_view *v, const struct group *g)
{
	FG_CHECK(v->state == g->state && v->generation_id == g->generation &&
		     v->member_count == g->member_count && v->offset_count == g->offset_count,
		 "a view disagrees with its group");
	bool chosen =
	    g->state == GROUPS_STATE_COMPLETING_REBALANCE || g->state == GROUPS_STATE_STABLE;
	FG_CHECK(chosen || v->protocol.len == 0, "a view names a protocol in %s",
		 groups_state_name(g->state));
	uint32_t i = 0;
	for (const struct member *m = g->oldest; m; m = m->newer, i++)
		FG_CHECK(fg_bytes_eq(v->members[i].member_id, m->id),
			 "a view's members are not in join order");
	FG_CHECK(v->leader_id.len == 0 || g->leader, "a view names a leader of no group");
}

static void fg_op_describe(struct fg_prog *p)
{
	uint8_t k = fg_group_index(p);
	struct groups_view v;
	bool found = groups_describe(fg.gs, fg_group_id(k), &v);
	const struct group *g = fg_group(k);
	FG_CHECK(found == (g != NULL), "groups_describe found %d", found);
	if (g)
		fg_check_view(&v, g);
	else
		FG_CHECK(v.state == GROUPS_STATE_DEAD && v.member_count == 0,
			 "a missing group described as alive");
	for (uint32_t i = 0; i < groups_count(fg.gs); i++) {
		groups_at(fg.gs, i, &v);
		fg_check_view(&v, fg.gs->groups[i]);
	}
	struct fg_each each = {.k = k};
	uint32_t n = groups_offsets_each(fg.gs, fg_group_id(k), fg_each_offset, &each);
	FG_CHECK(n == each.count && n == (g ? g->offset_count : 0),
		 "groups_offsets_each counted %u, called %u times", n, each.count);
}

static void fg_op_delete(struct fg_prog *p)
{
	uint8_t k = fg_group_index(p);
	const struct group *g = fg_group(k);
	int16_t e = groups_delete_check(fg.gs, fg_group_id(k));
	FG_CHECK(e == (!g ? 69 : g->member_count ? 68 : 0), "delete check answered %d", e);
	bool removed = groups_remove(fg.gs, fg_group_id(k));
	FG_CHECK(removed == (e == 0), "delete check %d, but groups_remove returned %d", e, removed);
	FG_CHECK(!removed || !fg_group(k), "a removed group is still there");
}

static void fg_op_tick(struct fg_prog *p)
{
	uint8_t b = fg_u8(p);
	int64_t step = b < 128	 ? b
		       : b < 200 ? (int64_t)(b - 128) * 100
				 : (int64_t)(b - 200) * 10000;
	fg.now += step;
	if (fg.trace)
		fprintf(stderr, "  tick +%lld\n", (long long)step);
	groups_tick(fg.gs, fg.now);
	int64_t next = groups_next_deadline(fg.gs);
	FG_CHECK(next > fg.now, "after groups_tick(%lld) the next deadline is %lld",
		 (long long)fg.now, (long long)next);
	fg.armed = next; /* the caller re-arms its timer after a tick */
}

static void fg_op_clock_back(struct fg_prog *p)
{
	fg.now -= (int64_t)fg_u8(p) * 50;
}

static void fg_op_record(struct fg_prog *p)
{
	uint8_t sel = fg_u8(p);
	uint8_t k = fg_group_index(p);
	if ((sel & 3) == 0) { /* raw bytes */
		uint8_t klen = fg_u8(p), vlen = fg_u8(p);
		struct groups_bytes key = fg_take(p, klen % 96);
		struct groups_bytes value = fg_take(p, vlen % 64);
		int32_t key_len = (klen & 0x80) && (klen & 0x40) ? -1 : (int32_t)key.len;
		bool null_value = vlen >= 0xf0;
		int rc = groups_record_apply(fg.gs, key.ptr, key_len, null_value ? NULL : value.ptr,
					     null_value ? -1 : (int32_t)value.len);
		FG_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM || rc == -ENOSPC,
			 "groups_record_apply returned %d", rc);
		FG_CHECK(rc != -ENOMEM || fg_alloc_fail,
			 "groups_record_apply: -ENOMEM for nothing");
		return;
	}
	struct groups_bytes gid = fg_group_id(k);
	if ((sel & 3) == 1) { /* a group deleted */
		uint8_t key[64];
		long n = groups_record_delete_encode(gid, key, sizeof(key));
		FG_CHECK(n > 0, "groups_record_delete_encode returned %ld", n);
		struct groups_bytes copy = fg_copy(key, (uint32_t)n);
		const struct group *g = fg_group(k);
		bool had_members = g && g->member_count;
		int rc = groups_record_apply(fg.gs, copy.ptr, (int32_t)copy.len, NULL, -1);
		FG_CHECK(rc == 0, "applying a group-deleted record returned %d", rc);
		FG_CHECK(had_members == (fg_group(k) != NULL),
			 "a group-deleted record left the group %s",
			 had_members ? "gone" : "there");
		return;
	}
	struct groups_bytes topic = fg_copy_str(fg_topic_names[fg_u8(p) % FG_TOPIC_NAMES]);
	int32_t partition = fg_u8(p) % 6;
	struct groups_offset o = fg_offset(p);
	uint8_t key[128], value[64];
	int rc = groups_record_commit_encode(gid, topic, partition, &o, key, sizeof(key), value,
					     sizeof(value));
	FG_CHECK(rc == 0, "groups_record_commit_encode returned %d", rc);
	size_t key_len = groups_record_commit_key_bytes(gid, topic);
	size_t value_len = groups_record_commit_value_bytes(&o);
	struct groups_bytes kcopy = fg_copy(key, (uint32_t)key_len);
	struct groups_bytes vcopy = fg_copy(value, (uint32_t)value_len);
	if ((sel & 3) == 3) { /* its tombstone */
		rc = groups_record_apply(fg.gs, kcopy.ptr, (int32_t)kcopy.len, NULL, -1);
		FG_CHECK(rc == 0, "applying an offset tombstone returned %d", rc);
		struct groups_offset got;
		FG_CHECK(!groups_offset_get(fg.gs, gid, topic, partition, &got),
			 "an offset tombstone left the offset");
		return;
	}
	rc = groups_record_apply(fg.gs, kcopy.ptr, (int32_t)kcopy.len, vcopy.ptr,
				 (int32_t)vcopy.len);
	FG_CHECK(rc == 0 || (rc == -ENOMEM && fg_alloc_fail),
		 "applying an offset commit record returned %d", rc);
	if (rc == 0)
		fg_check_offset_stored(k, topic, partition, &o);
}

enum {
	FG_OP_JOIN,
	FG_OP_SYNC,
	FG_OP_HEARTBEAT,
	FG_OP_LEAVE,
	FG_OP_COMMIT,
	FG_OP_OFFSET_REMOVE,
	FG_OP_DESCRIBE,
	FG_OP_DELETE,
	FG_OP_TICK,
	FG_OP_RECORD,
	FG_OP_CLOCK_BACK,
	FG_OP_KINDS,
};

static const char *const fg_op_names[FG_OP_KINDS] = {
    "join",	"sync",	  "heartbeat", "leave",	 "commit",     "offset-remove",
    "describe", "delete", "tick",      "record", "clock-back",
};

static void (*const fg_ops[FG_OP_KINDS])(struct fg_prog *) = {
    fg_op_join,	  fg_op_sync,	       fg_op_heartbeat,	 fg_op_leave,
    fg_op_commit, fg_op_offset_remove, fg_op_describe,	 fg_op_delete,
    fg_op_tick,	  fg_op_record,	       fg_op_clock_back,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_prog p = {data, size};
	memset(&fg, 0, sizeof(fg));
	fg.trace = getenv("FUZZ_GROUPS_TRACE") != NULL;
	uint8_t delay = fg_u8(&p), limits = fg_u8(&p);
	struct groups_options opts = {
	    .min_session_timeout_ms = 10,
	    .max_session_timeout_ms = 100000,
	    .initial_rebalance_delay_ms = delay % 51,
	    .offsets_retention_ms = 1 + (int64_t)(limits >> 4) * 250,
	    .max_group_size = limits & 7, /* 0: the module's own limit */
	    .deadline_changed = fg_deadline_changed,
	    .ctx = &fg,
	};
	fg.now = FG_START_MS;
	fg.armed = INT64_MAX;
	if (groups_create(&fg.gs, &opts) != 0)
		abort();
	fg_check();
	while (p.left) {
		uint8_t op = fg_u8(&p);
		fg_alloc_count = 0;
		fg_alloc_fail = (op & 0x80) ? fg_u8(&p) : 0;
		uint8_t kind = (op & 0x7f) % (FG_OP_KINDS + 2); /* the last two: tick */
		if (kind >= FG_OP_KINDS)
			kind = FG_OP_TICK;
		fg.op_index++;
		fg.op_name = fg_op_names[kind];
		fg.reentries = 0;
		fg.notified = false;
		if (fg.trace)
			fprintf(stderr, "op %u: %s (fail alloc %lu) at %lld\n", fg.op_index,
				fg.op_name, fg_alloc_fail, (long long)fg.now);
		fg_ops[kind](&p);
		fg_alloc_fail = 0;
		fg_free_bufs();
		fg_check();
	}
	fg.op_name = "destroy";
	fg.destroying = true;
	uint64_t waiting = fg.accepted - fg.answered;
	groups_destroy(fg.gs);
	fg.gs = NULL;
	FG_CHECK(fg.accepted == fg.answered, "%llu joins and syncs never answered (%llu waited)",
		 (unsigned long long)(fg.accepted - fg.answered), (unsigned long long)waiting);
	for (uint32_t i = 0; i < fg.ticket_count; i++)
		free(fg.tickets[i]);
	free(fg.tickets);
	fg_free_bufs();
	return 0;
}
