/*
 * tests/unit/check_groups.c: Check tests of core/groups, the consumer-group state
 * machines on their own (no I/O, time passed in): a single member and three members
 * joining within the initial delay (one generation, the member list only to the
 * leader), the protocol vote and INCONSISTENT_GROUP_PROTOCOL, request errors (24, 25,
 * 26, 81), SyncGroup delivering the leader's assignments to waiting and later
 * followers, Heartbeat's answers, LeaveGroup, session expiry and the rebalance
 * timeout through groups_tick, waiting syncs answered 27, the OffsetCommit checks,
 * committed offsets (put, get, ordered iteration, removal, expiry of empty groups),
 * DeleteGroups checks, the DescribeGroups view, the record codec (a round trip into a
 * fresh state, deletes, and random garbage that must be refused without a crash),
 * callbacks that call back in, and a stress case (10,000 groups, 100,000 partitions in
 * one group, groups_next_deadline against a brute-force scan).
 */
#include "core/groups.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"

#define B(s)	     ((struct groups_bytes){(const uint8_t *)(s), (uint32_t)strlen(s)})
#define SESSION_MS   10000
#define REBALANCE_MS 30000
#define DELAY_MS     3000
#define DAY_MS	     (24LL * 3600 * 1000)

static unsigned deadline_calls;

static void on_deadline(void *ctx)
{
	(void)ctx;
	deadline_calls++;
}

static struct groups *make(int32_t initial_delay_ms, uint32_t max_size)
{
	struct groups_options o = {.min_session_timeout_ms = 6000,
				   .max_session_timeout_ms = 1800000,
				   .initial_rebalance_delay_ms = initial_delay_ms,
				   .offsets_retention_ms = 7 * DAY_MS,
				   .max_group_size = max_size,
				   .deadline_changed = on_deadline};
	struct groups *gs = NULL;
	ck_assert_int_eq(groups_create(&gs, &o), 0);
	return gs;
}

/* ----------------------------------------------------------------------------------- */
/* join and sync answers, copied out of the callbacks */

struct join_box {
	int calls;	       /* times the callback ran */
	int16_t error;	       /* last answer */
	int32_t generation;    /* its generation */
	char protocol[64];     /* chosen protocol */
	char leader[256];      /* leader id */
	char member[256];      /* member id */
	uint32_t member_count; /* members listed (leader only) */
	char members[8][256];  /* their ids */
	char metadata[8][256]; /* their metadata */
};

static void copy_str(char *dst, size_t cap, struct groups_bytes b)
{
	ck_assert_uint_lt(b.len, cap);
	if (b.len)
		memcpy(dst, b.ptr, b.len);
	dst[b.len] = '\0';
}

static bool bytes_eq_str(struct groups_bytes b, const char *s)
{
	return b.len == strlen(s) && (b.len == 0 || memcmp(b.ptr, s, b.len) == 0);
}

static void on_join(void *ctx, const struct groups_join_result *r)
{
	struct join_box *box = ctx;
	box->calls++;
	box->error = r->error;
	box->generation = r->generation_id;
	copy_str(box->protocol, sizeof(box->protocol), r->protocol);
	copy_str(box->leader, sizeof(box->leader), r->leader_id);
	copy_str(box->member, sizeof(box->member), r->member_id);
	box->member_count = r->member_count;
	ck_assert(r->member_count == 0 || r->members);
	for (uint32_t i = 0; i < r->member_count && i < 8; i++) {
		copy_str(box->members[i], sizeof(box->members[i]), r->members[i].member_id);
		copy_str(box->metadata[i], sizeof(box->metadata[i]), r->members[i].metadata);
	}
}

struct sync_box {
	int calls;	     /* times the callback ran */
	int16_t error;	     /* last answer */
	char assignment[64]; /* its assignment */
};

static void on_sync(void *ctx, const struct groups_sync_result *r)
{
	struct sync_box *box = ctx;
	box->calls++;
	box->error = r->error;
	copy_str(box->assignment, sizeof(box->assignment), r->assignment);
}

/* Joins GROUP as MEMBER ("" for new) with PROTOCOLS "a,b,c" (metadata "<name>@<client>"). */
static void join_full(struct groups *gs, struct join_box *box, const char *group,
		      const char *member, const char *client, const char *type,
		      const char *protocols, int32_t session_ms, int32_t rebalance_ms, int64_t now)
{
	static char names[8][32], metas[8][64];
	struct groups_protocol list[8];
	uint32_t n = 0;
	char copy[256];
	snprintf(copy, sizeof(copy), "%s", protocols);
	for (char *save, *tok = strtok_r(copy, ",", &save); tok && n < 8;
	     tok = strtok_r(NULL, ",", &save), n++) {
		snprintf(names[n], sizeof(names[n]), "%s", tok);
		snprintf(metas[n], sizeof(metas[n]), "%s@%s", tok, client);
		list[n] = (struct groups_protocol){B(names[n]), B(metas[n])};
	}
	struct groups_join_request req = {.group_id = B(group),
					  .member_id = B(member),
					  .client_id = B(client),
					  .client_host = B("/127.0.0.1"),
					  .protocol_type = B(type),
					  .session_timeout_ms = session_ms,
					  .rebalance_timeout_ms = rebalance_ms,
					  .protocols = list,
					  .protocol_count = n};
	memset(box, 0, sizeof(*box));
	ck_assert_int_eq(groups_join(gs, &req, now, on_join, box), 0);
}

static void join(struct groups *gs, struct join_box *box, const char *group, const char *member,
		 const char *client, const char *protocols, int64_t now)
{
	join_full(gs, box, group, member, client, "consumer", protocols, SESSION_MS, REBALANCE_MS,
		  now);
}

static void sync_req(struct groups *gs, struct sync_box *box, const char *group, int32_t gen,
		     const char *member, const char *const *pairs, int64_t now)
{
	struct groups_assignment list[8];
	uint32_t n = 0;
	for (; pairs && pairs[2 * n]; n++)
		list[n] = (struct groups_assignment){B(pairs[2 * n]), B(pairs[2 * n + 1])};
	struct groups_sync_request req = {.group_id = B(group),
					  .generation_id = gen,
					  .member_id = B(member),
					  .assignments = list,
					  .assignment_count = n};
	memset(box, 0, sizeof(*box));
	ck_assert_int_eq(groups_sync(gs, &req, now, on_sync, box), 0);
}

static enum groups_state state_of(struct groups *gs, const char *group)
{
	struct groups_view v;
	groups_describe(gs, B(group), &v);
	return v.state;
}

/* Builds a Stable group of N members (ids into IDS) joined at NOW; returns the time
 * after the join phase. */
static int64_t make_stable(struct groups *gs, const char *group, int n, char ids[][256],
			   int64_t now)
{
	struct join_box box[8];
	char client[16];
	for (int i = 0; i < n; i++) {
		snprintf(client, sizeof(client), "c%d", i);
		join(gs, &box[i], group, "", client, "range", now);
	}
	now += DELAY_MS;
	groups_tick(gs, now);
	if (box[0].calls == 0) { /* the delay was extended once for the later members */
		now += DELAY_MS;
		groups_tick(gs, now);
	}
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(box[i].calls, 1);
		ck_assert_int_eq(box[i].error, 0);
		snprintf(ids[i], 256, "%s", box[i].member);
	}
	struct sync_box sb;
	sync_req(gs, &sb, group, box[0].generation, box[0].leader, NULL, now);
	ck_assert_int_eq(sb.error, 0);
	ck_assert_int_eq(state_of(gs, group), GROUPS_STATE_STABLE);
	return now;
}

/* ----------------------------------------------------------------------------------- */

START_TEST(single_member)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct join_box a;
	deadline_calls = 0;
	join(gs, &a, "g", "", "client-1", "range,roundrobin", 1000);
	ck_assert_int_eq(a.calls, 0); /* waits the initial delay */
	ck_assert_uint_ge(deadline_calls, 1);
	ck_assert_int_eq(groups_next_deadline(gs), 1000 + DELAY_MS);
	ck_assert_int_eq(state_of(gs, "g"), GROUPS_STATE_PREPARING_REBALANCE);
	groups_tick(gs, 1000 + DELAY_MS - 1);
	ck_assert_int_eq(a.calls, 0);
	groups_tick(gs, 1000 + DELAY_MS);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.error, 0);
	ck_assert_int_eq(a.generation, 1);
	ck_assert_str_eq(a.protocol, "range");
	ck_assert_str_eq(a.leader, a.member);
	ck_assert(strncmp(a.member, "client-1-", 9) == 0 && strlen(a.member) == 9 + 16);
	ck_assert_uint_eq(a.member_count, 1);
	ck_assert_str_eq(a.members[0], a.member);
	ck_assert_str_eq(a.metadata[0], "range@client-1");
	ck_assert_int_eq(state_of(gs, "g"), GROUPS_STATE_COMPLETING_REBALANCE);
	/* the session now runs */
	ck_assert_int_eq(groups_next_deadline(gs), 1000 + DELAY_MS + SESSION_MS);

	struct sync_box s;
	const char *pairs[] = {a.member, "asg-1", NULL};
	sync_req(gs, &s, "g", 1, a.member, pairs, 5000);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_int_eq(s.error, 0);
	ck_assert_str_eq(s.assignment, "asg-1");
	ck_assert_int_eq(state_of(gs, "g"), GROUPS_STATE_STABLE);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(a.member), 6000), 0);
	ck_assert_int_eq(groups_next_deadline(gs), 6000 + SESSION_MS);
	/* two member ids differ */
	struct join_box b;
	join(gs, &b, "h", "", "client-1", "range", 6000);
	groups_tick(gs, 6000 + DELAY_MS);
	ck_assert_str_ne(a.member, b.member);
	groups_destroy(gs);
}
END_TEST

START_TEST(three_members_one_generation)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct join_box a, b, c;
	join(gs, &a, "g", "", "ca", "range", 0);
	join(gs, &b, "g", "", "cb", "range", 1000);
	join(gs, &c, "g", "", "cc", "range", 2000);
	groups_tick(gs, DELAY_MS);
	/* new members came during the delay: it is extended, once per delay */
	ck_assert_int_eq(a.calls + b.calls + c.calls, 0);
	ck_assert_int_eq(groups_next_deadline(gs), 2 * DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(a.generation, 1);
	ck_assert_int_eq(b.generation, 1);
	ck_assert_int_eq(c.generation, 1);
	ck_assert_str_eq(a.leader, a.member); /* the first member leads */
	ck_assert_str_eq(b.leader, a.member);
	ck_assert_str_eq(c.leader, a.member);
	ck_assert_uint_eq(a.member_count, 3);
	ck_assert_uint_eq(b.member_count, 0);
	ck_assert_uint_eq(c.member_count, 0);
	ck_assert_str_eq(a.members[0], a.member);
	ck_assert_str_eq(a.members[1], b.member);
	ck_assert_str_eq(a.members[2], c.member);
	ck_assert_str_eq(a.metadata[1], "range@cb");
	ck_assert_str_eq(a.metadata[2], "range@cc");
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.rebalances, 1);
	ck_assert_uint_eq(st.members, 3);
	groups_destroy(gs);
}
END_TEST

/* Joins A, B, C with the given protocol lists and returns the chosen protocol. */
static void vote(const char *pa, const char *pb, const char *pc, const char *expect)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct join_box a, b, c;
	join(gs, &a, "g", "", "ca", pa, 0);
	join(gs, &b, "g", "", "cb", pb, 0);
	if (pc)
		join(gs, &c, "g", "", "cc", pc, 0);
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	ck_assert_int_eq(a.error, 0);
	ck_assert_str_eq(a.protocol, expect);
	ck_assert_str_eq(b.protocol, expect);
	/* the leader's list carries each member's metadata for the chosen protocol */
	char want[64];
	snprintf(want, sizeof(want), "%s@cb", expect);
	ck_assert_str_eq(a.metadata[1], want);
	groups_destroy(gs);
}

START_TEST(protocol_vote)
{
	vote("roundrobin,range", "range,roundrobin", "range", "range"); /* only common one */
	vote("roundrobin,range", "roundrobin,range", "range,roundrobin", "roundrobin"); /* 2:1 */
	vote("range,roundrobin", "roundrobin,range", NULL, "range"); /* tie: leader's order */
	vote("sticky,range,roundrobin", "roundrobin,sticky", "range,sticky,roundrobin", "sticky");

	struct groups *gs = make(DELAY_MS, 0);
	struct join_box a, b;
	join(gs, &a, "g", "", "ca", "range,roundrobin", 0);
	join(gs, &b, "g", "", "cb", "sticky", 0); /* nothing in common */
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(b.error, GROUPS_INCONSISTENT_GROUP_PROTOCOL);
	ck_assert_int_eq(b.generation, -1);
	join_full(gs, &b, "g", "", "cb", "connect", "range", SESSION_MS, REBALANCE_MS, 0);
	ck_assert_int_eq(b.error, GROUPS_INCONSISTENT_GROUP_PROTOCOL); /* other type */
	join(gs, &b, "g", "", "cb", "", 0);
	ck_assert_int_eq(b.error, GROUPS_INCONSISTENT_GROUP_PROTOCOL); /* no protocol */
	join(gs, &b, "g", "", "cb", "roundrobin,x", 0);
	ck_assert_int_eq(b.calls, 0); /* accepted */
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	ck_assert_str_eq(a.protocol, "roundrobin");
	/* a known member changing to a list the others do not share */
	struct join_box a2;
	join(gs, &a2, "g", a.member, "ca", "range", 7000);
	ck_assert_int_eq(a2.error, GROUPS_INCONSISTENT_GROUP_PROTOCOL);
	groups_destroy(gs);
}
END_TEST

START_TEST(request_errors)
{
	struct groups *gs = make(DELAY_MS, 2);
	struct join_box a;
	join_full(gs, &a, "g", "", "c", "consumer", "range", 5999, 5999, 0);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.error, GROUPS_INVALID_SESSION_TIMEOUT);
	join_full(gs, &a, "g", "", "c", "consumer", "range", 1800001, 1800001, 0);
	ck_assert_int_eq(a.error, GROUPS_INVALID_SESSION_TIMEOUT);
	join(gs, &a, "", "", "c", "range", 0);
	ck_assert_int_eq(a.error, GROUPS_INVALID_GROUP_ID);
	ck_assert_uint_eq(groups_count(gs), 0); /* nothing created */
	/* unknown member id, group absent and present */
	join(gs, &a, "g", "nope", "c", "range", 0);
	ck_assert_int_eq(a.error, GROUPS_UNKNOWN_MEMBER_ID);
	ck_assert_str_eq(a.member, "nope");
	struct join_box b, c;
	join(gs, &b, "g", "", "c", "range", 0);
	join(gs, &a, "g", "nope", "c", "range", 0);
	ck_assert_int_eq(a.error, GROUPS_UNKNOWN_MEMBER_ID);
	/* max_group_size 2 */
	join(gs, &c, "g", "", "c", "range", 0);
	ck_assert_int_eq(c.calls, 0);
	join(gs, &a, "g", "", "c", "range", 0);
	ck_assert_int_eq(a.error, GROUPS_GROUP_MAX_SIZE_REACHED);
	/* the waiting joins still complete */
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	ck_assert_int_eq(b.error, 0);
	ck_assert_int_eq(c.error, 0);
	/* oversized metadata */
	static uint8_t big[(1u << 20) + 1];
	struct groups_protocol p = {B("range"), {big, sizeof(big)}};
	struct groups_join_request req = {.group_id = B("h"),
					  .client_id = B("c"),
					  .protocol_type = B("consumer"),
					  .session_timeout_ms = SESSION_MS,
					  .rebalance_timeout_ms = REBALANCE_MS,
					  .protocols = &p,
					  .protocol_count = 1};
	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(groups_join(gs, &req, 0, on_join, &a), 0);
	ck_assert_int_eq(a.error, GROUPS_INVALID_REQUEST);
	groups_destroy(gs);
}
END_TEST

START_TEST(sync_delivers_assignments)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct join_box a, b, c;
	join(gs, &a, "g", "", "ca", "range", 0);
	join(gs, &b, "g", "", "cb", "range", 0);
	join(gs, &c, "g", "", "cc", "range", 0);
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	int64_t t = 2 * DELAY_MS;
	struct sync_box sa, sb, sc, sx;
	/* errors first */
	sync_req(gs, &sx, "g", 2, b.member, NULL, t);
	ck_assert_int_eq(sx.error, GROUPS_ILLEGAL_GENERATION);
	sync_req(gs, &sx, "g", 1, "nope", NULL, t);
	ck_assert_int_eq(sx.error, GROUPS_UNKNOWN_MEMBER_ID);
	sync_req(gs, &sx, "zz", 1, b.member, NULL, t);
	ck_assert_int_eq(sx.error, GROUPS_UNKNOWN_MEMBER_ID);
	/* a follower waits for the leader */
	sync_req(gs, &sb, "g", 1, b.member, NULL, t);
	ck_assert_int_eq(sb.calls, 0);
	const char *pairs[] = {a.member, "for-a", b.member, "for-b", "ghost", "x", NULL};
	sync_req(gs, &sa, "g", 1, a.member, pairs, t + 10);
	ck_assert_int_eq(sa.calls, 1);
	ck_assert_str_eq(sa.assignment, "for-a");
	ck_assert_int_eq(sb.calls, 1);
	ck_assert_int_eq(sb.error, 0);
	ck_assert_str_eq(sb.assignment, "for-b");
	ck_assert_int_eq(state_of(gs, "g"), GROUPS_STATE_STABLE);
	/* a follower syncing after Stable gets its (empty: left out) assignment at once */
	sync_req(gs, &sc, "g", 1, c.member, NULL, t + 20);
	ck_assert_int_eq(sc.calls, 1);
	ck_assert_int_eq(sc.error, 0);
	ck_assert_str_eq(sc.assignment, "");
	sync_req(gs, &sb, "g", 1, b.member, NULL, t + 30);
	ck_assert_str_eq(sb.assignment, "for-b");
	/* a known follower joining again unchanged gets the generation at once */
	struct join_box b2;
	join(gs, &b2, "g", b.member, "cb", "range", t + 40);
	ck_assert_int_eq(b2.calls, 1);
	ck_assert_int_eq(b2.generation, 1);
	ck_assert_uint_eq(b2.member_count, 0);
	ck_assert_int_eq(state_of(gs, "g"), GROUPS_STATE_STABLE);
	/* sync during PreparingRebalance: 27 */
	struct join_box d;
	join(gs, &d, "g", "", "cd", "range", t + 50);
	sync_req(gs, &sx, "g", 1, b.member, NULL, t + 60);
	ck_assert_int_eq(sx.error, GROUPS_REBALANCE_IN_PROGRESS);
	groups_destroy(gs);
}
END_TEST

START_TEST(heartbeat_answers)
{
	struct groups *gs = make(DELAY_MS, 0);
	char ids[3][256];
	int64_t t = make_stable(gs, "g", 2, ids, 0);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), t), GROUPS_OK);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 0, B(ids[1]), t), GROUPS_ILLEGAL_GENERATION);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B("nope"), t), GROUPS_UNKNOWN_MEMBER_ID);
	ck_assert_int_eq(groups_heartbeat(gs, B("zz"), 1, B(ids[1]), t), GROUPS_UNKNOWN_MEMBER_ID);
	/* a new member: rebalance */
	struct join_box c, a, b;
	join(gs, &c, "g", "", "cc", "range", t);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[0]), t),
			 GROUPS_REBALANCE_IN_PROGRESS);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), t),
			 GROUPS_REBALANCE_IN_PROGRESS);
	join(gs, &a, "g", ids[0], "c0", "range", t + 1);
	join(gs, &b, "g", ids[1], "c1", "range", t + 2);
	ck_assert_int_eq(a.calls, 1); /* everyone rejoined: completes at once */
	ck_assert_int_eq(a.generation, 2);
	ck_assert_int_eq(c.generation, 2);
	ck_assert_uint_eq(a.member_count, 3);
	/* CompletingRebalance: 27, even from the previous generation (Kafka 2.3) */
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 2, B(ids[1]), t + 3),
			 GROUPS_REBALANCE_IN_PROGRESS);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), t + 3),
			 GROUPS_REBALANCE_IN_PROGRESS);
	struct sync_box s;
	sync_req(gs, &s, "g", 2, ids[0], NULL, t + 4);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 2, B(ids[1]), t + 5), GROUPS_OK);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), t + 5),
			 GROUPS_ILLEGAL_GENERATION);
	groups_destroy(gs);
}
END_TEST

START_TEST(leave_rebalances)
{
	struct groups *gs = make(DELAY_MS, 0);
	char ids[3][256];
	int64_t t = make_stable(gs, "g", 3, ids, 0);
	ck_assert_int_eq(groups_leave(gs, B("g"), B("nope"), t), GROUPS_UNKNOWN_MEMBER_ID);
	ck_assert_int_eq(groups_leave(gs, B("g"), B(ids[1]), t), GROUPS_OK);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[0]), t + 1),
			 GROUPS_REBALANCE_IN_PROGRESS);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[2]), t + 1),
			 GROUPS_REBALANCE_IN_PROGRESS);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), t + 1),
			 GROUPS_UNKNOWN_MEMBER_ID);
	struct join_box a, c;
	join(gs, &c, "g", ids[2], "c2", "range", t + 2);
	ck_assert_int_eq(c.calls, 0);
	join(gs, &a, "g", ids[0], "c0", "range", t + 3);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(a.generation, 2);
	ck_assert_uint_eq(a.member_count, 2);
	ck_assert_str_eq(c.leader, ids[0]);
	/* the leader leaves: the oldest remaining member leads next */
	struct sync_box s;
	sync_req(gs, &s, "g", 2, ids[0], NULL, t + 4);
	ck_assert_int_eq(groups_leave(gs, B("g"), B(ids[0]), t + 5), GROUPS_OK);
	join(gs, &c, "g", ids[2], "c2", "range", t + 6);
	ck_assert_int_eq(c.generation, 3);
	ck_assert_str_eq(c.leader, ids[2]);
	ck_assert_uint_eq(c.member_count, 1);
	/* the last member leaves: Empty, generation + 1 */
	ck_assert_int_eq(groups_leave(gs, B("g"), B(ids[2]), t + 7), GROUPS_OK);
	struct groups_view v;
	ck_assert(groups_describe(gs, B("g"), &v));
	ck_assert_int_eq(v.state, GROUPS_STATE_EMPTY);
	ck_assert_int_eq(v.generation_id, 4);
	/* no offsets: forgotten at the next tick */
	groups_tick(gs, t + 7);
	ck_assert(!groups_describe(gs, B("g"), &v));
	ck_assert_int_eq(v.state, GROUPS_STATE_DEAD);
	groups_destroy(gs);
}
END_TEST

START_TEST(session_expiry)
{
	struct groups *gs = make(DELAY_MS, 0);
	char ids[2][256];
	int64_t t = make_stable(gs, "g", 2, ids, 0); /* sessions renewed at t */
	for (int64_t now = t + 4000; now < t + SESSION_MS; now += 4000) {
		ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[0]), now), GROUPS_OK);
		groups_tick(gs, now);
	}
	ck_assert_int_eq(groups_next_deadline(gs), t + SESSION_MS);
	groups_tick(gs, t + SESSION_MS - 1);
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.expired_members, 0);
	/* member 1 was silent since t: removed at t + SESSION_MS */
	groups_tick(gs, t + SESSION_MS);
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.expired_members, 1);
	ck_assert_uint_eq(st.members, 1);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), t + 20000),
			 GROUPS_UNKNOWN_MEMBER_ID);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[0]), t + 20000),
			 GROUPS_REBALANCE_IN_PROGRESS);
	struct join_box a;
	join(gs, &a, "g", ids[0], "c0", "range", t + 20001);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.generation, 2);
	ck_assert_uint_eq(a.member_count, 1);
	groups_destroy(gs);
}
END_TEST

START_TEST(rebalance_timeout)
{
	struct groups *gs = make(DELAY_MS, 0);
	char ids[2][256];
	int64_t t = make_stable(gs, "g", 2, ids, 0);
	struct join_box c, a;
	join(gs, &c, "g", "", "cc", "range", t);
	join(gs, &a, "g", ids[0], "c0", "range", t + 100);
	/* the waiting members have no session deadline; member 1's runs */
	ck_assert_int_eq(groups_next_deadline(gs), t + SESSION_MS);
	/* member 1 keeps heartbeating (27) but never rejoins */
	int64_t now = t;
	for (now = t + 5000; now < t + REBALANCE_MS; now += 5000) {
		ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(ids[1]), now),
				 GROUPS_REBALANCE_IN_PROGRESS);
		groups_tick(gs, now);
	}
	ck_assert_int_eq(a.calls, 0);
	groups_tick(gs, t + REBALANCE_MS);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(a.generation, 2);
	ck_assert_uint_eq(a.member_count, 2);
	ck_assert_int_eq(groups_heartbeat(gs, B("g"), 2, B(ids[1]), t + REBALANCE_MS),
			 GROUPS_UNKNOWN_MEMBER_ID);
	/* the waiting members are not expired by their sessions while they wait */
	struct join_box x, y;
	join(gs, &x, "g", "", "cx", "range", t + REBALANCE_MS);
	join(gs, &y, "g", a.member, "c0", "range", t + REBALANCE_MS);
	for (now = t + REBALANCE_MS + 5000; now < t + 2 * REBALANCE_MS; now += 5000) {
		ck_assert_int_eq(groups_heartbeat(gs, B("g"), 2, B(c.member), now),
				 GROUPS_REBALANCE_IN_PROGRESS);
		groups_tick(gs, now);
	}
	ck_assert_int_eq(y.calls, 0); /* past their session deadlines, still waiting */
	ck_assert_int_eq(x.calls, 0);
	groups_tick(gs, t + 2 * REBALANCE_MS);
	ck_assert_int_eq(y.calls, 1);
	ck_assert_int_eq(y.generation, 3);
	ck_assert_uint_eq(y.member_count, 2); /* c did not rejoin */
	groups_destroy(gs);
}
END_TEST

START_TEST(pending_sync_answered_27)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct join_box a, b, c;
	join(gs, &a, "g", "", "ca", "range", 0);
	join(gs, &b, "g", "", "cb", "range", 0);
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	struct sync_box sb;
	sync_req(gs, &sb, "g", 1, b.member, NULL, 2 * DELAY_MS);
	ck_assert_int_eq(sb.calls, 0);
	join(gs, &c, "g", "", "cc", "range", 2 * DELAY_MS + 1);
	ck_assert_int_eq(sb.calls, 1);
	ck_assert_int_eq(sb.error, GROUPS_REBALANCE_IN_PROGRESS);
	/* a member removed while its sync waits: 25 */
	struct join_box a2, b2;
	join(gs, &a2, "g", a.member, "ca", "range", 2 * DELAY_MS + 2);
	join(gs, &b2, "g", b.member, "cb", "range", 2 * DELAY_MS + 3);
	ck_assert_int_eq(b2.generation, 2);
	sync_req(gs, &sb, "g", 2, b.member, NULL, 2 * DELAY_MS + 4);
	ck_assert_int_eq(groups_leave(gs, B("g"), B(b.member), 2 * DELAY_MS + 5), 0);
	ck_assert_int_eq(sb.calls, 1);
	ck_assert_int_eq(sb.error, GROUPS_UNKNOWN_MEMBER_ID);
	/* destroy answers what still waits with 15 */
	struct sync_box sc;
	char c_id[256];
	snprintf(c_id, sizeof(c_id), "%s", c.member);
	join(gs, &a2, "g", a.member, "ca", "range", 2 * DELAY_MS + 6);
	join(gs, &c, "g", c_id, "cc", "range", 2 * DELAY_MS + 7);
	ck_assert_int_eq(c.generation, 3);
	sync_req(gs, &sc, "g", 3, c_id, NULL, 2 * DELAY_MS + 8);
	struct join_box n;
	join(gs, &n, "other", "", "cn", "range", 2 * DELAY_MS + 9);
	groups_destroy(gs);
	ck_assert_int_eq(sc.calls, 1);
	ck_assert_int_eq(sc.error, GROUPS_COORDINATOR_NOT_AVAILABLE);
	ck_assert_int_eq(n.calls, 1);
	ck_assert_int_eq(n.error, GROUPS_COORDINATOR_NOT_AVAILABLE);
}
END_TEST

START_TEST(commit_check_rules)
{
	struct groups *gs = make(DELAY_MS, 0);
	ck_assert_int_eq(groups_commit_check(gs, B(""), -1, B(""), 0), GROUPS_INVALID_GROUP_ID);
	ck_assert_int_eq(groups_commit_check(gs, B("g"), -1, B(""), 0), GROUPS_OK); /* absent */
	ck_assert_int_eq(groups_commit_check(gs, B("g"), 3, B("m"), 0), GROUPS_ILLEGAL_GENERATION);
	struct groups_offset o = {.offset = 5, .leader_epoch = -1, .commit_ms = 0};
	ck_assert_int_eq(groups_offset_put(gs, B("g"), B("t"), 0, &o), 0);
	ck_assert_int_eq(state_of(gs, "g"), GROUPS_STATE_EMPTY);
	ck_assert_int_eq(groups_commit_check(gs, B("g"), -1, B(""), 0), GROUPS_OK); /* Empty */
	ck_assert_int_eq(groups_commit_check(gs, B("g"), 1, B("m"), 0), GROUPS_UNKNOWN_MEMBER_ID);
	/* CompletingRebalance: 27 */
	struct join_box a, b;
	join(gs, &a, "g", "", "ca", "range", 0);
	join(gs, &b, "g", "", "cb", "range", 0);
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	int64_t t = 2 * DELAY_MS;
	ck_assert_int_eq(groups_commit_check(gs, B("g"), 1, B(a.member), t),
			 GROUPS_REBALANCE_IN_PROGRESS);
	struct sync_box s;
	sync_req(gs, &s, "g", 1, a.member, NULL, t);
	/* Stable */
	ck_assert_int_eq(groups_commit_check(gs, B("g"), -1, B(""), t), GROUPS_UNKNOWN_MEMBER_ID);
	ck_assert_int_eq(groups_commit_check(gs, B("g"), 0, B(a.member), t),
			 GROUPS_ILLEGAL_GENERATION);
	ck_assert_int_eq(groups_commit_check(gs, B("g"), 1, B("nope"), t),
			 GROUPS_UNKNOWN_MEMBER_ID);
	/* a commit renews the session: b commits only, a heartbeats only */
	for (int64_t now = t + 4000; now <= t + 40000; now += 4000) {
		ck_assert_int_eq(groups_commit_check(gs, B("g"), 1, B(b.member), now), GROUPS_OK);
		ck_assert_int_eq(groups_heartbeat(gs, B("g"), 1, B(a.member), now), GROUPS_OK);
		groups_tick(gs, now);
	}
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.expired_members, 0);
	/* PreparingRebalance: members of the current generation may commit (Kafka 2.3) */
	ck_assert_int_eq(groups_leave(gs, B("g"), B(a.member), t + 40001), 0);
	ck_assert_int_eq(groups_commit_check(gs, B("g"), 1, B(b.member), t + 40002), GROUPS_OK);
	groups_destroy(gs);
}
END_TEST

struct each_box {
	int count;
	char text[4096];
};

static void on_offset(void *ctx, struct groups_bytes topic, int32_t partition,
		      const struct groups_offset *o)
{
	struct each_box *box = ctx;
	size_t len = strlen(box->text);
	snprintf(box->text + len, sizeof(box->text) - len, "%.*s/%d=%lld%s%.*s ", (int)topic.len,
		 (const char *)topic.ptr, partition, (long long)o->offset,
		 o->metadata.len ? ":" : "", (int)o->metadata.len, (const char *)o->metadata.ptr);
	box->count++;
}

START_TEST(offsets_store)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct groups_offset o = {.leader_epoch = 3, .commit_ms = 100};
	const char *topics[] = {"zeta", "alpha", "mid"};
	int parts[] = {5, 2, 9, 0, 7};
	for (int t = 0; t < 3; t++)
		for (int p = 0; p < 5; p++) {
			o.offset = 1000 * t + parts[p];
			o.metadata = (p == 0) ? B("meta") : (struct groups_bytes){0};
			ck_assert_int_eq(groups_offset_put(gs, B("g"), B(topics[t]), parts[p], &o),
					 0);
		}
	struct groups_offset got;
	ck_assert(groups_offset_get(gs, B("g"), B("mid"), 9, &got));
	ck_assert_int_eq(got.offset, 2009);
	ck_assert_int_eq(got.leader_epoch, 3);
	ck_assert_int_eq(got.commit_ms, 100);
	ck_assert_uint_eq(got.metadata.len, 0);
	ck_assert(groups_offset_get(gs, B("g"), B("mid"), 5, &got));
	ck_assert(got.metadata.len == 4 && memcmp(got.metadata.ptr, "meta", 4) == 0);
	ck_assert(!groups_offset_get(gs, B("g"), B("mid"), 1, &got));
	ck_assert(!groups_offset_get(gs, B("g"), B("nope"), 5, &got));
	ck_assert(!groups_offset_get(gs, B("h"), B("mid"), 5, &got));
	/* overwrite */
	o.offset = 42;
	o.metadata = B("new");
	ck_assert_int_eq(groups_offset_put(gs, B("g"), B("mid"), 5, &o), 0);
	ck_assert(groups_offset_get(gs, B("g"), B("mid"), 5, &got));
	ck_assert_int_eq(got.offset, 42);
	ck_assert(got.metadata.len == 3 && memcmp(got.metadata.ptr, "new", 3) == 0);
	/* ordered iteration; removal */
	groups_offset_remove(gs, B("g"), B("zeta"), 9);
	groups_offset_remove(gs, B("g"), B("zeta"), 99); /* absent: no-op */
	groups_offset_remove(gs, B("g"), B("nope"), 9);
	struct each_box box = {0};
	ck_assert_uint_eq(groups_offsets_each(gs, B("g"), on_offset, &box), 14);
	ck_assert_int_eq(box.count, 14);
	ck_assert_str_eq(box.text, "alpha/0=1000 alpha/2=1002 alpha/5=1005:meta alpha/7=1007 "
				   "alpha/9=1009 mid/0=2000 mid/2=2002 mid/5=42:new mid/7=2007 "
				   "mid/9=2009 zeta/0=0 zeta/2=2 zeta/5=5:meta zeta/7=7 ");
	struct groups_view v;
	ck_assert(groups_describe(gs, B("g"), &v));
	ck_assert_uint_eq(v.offset_count, 14);
	/* gets still work after the sort rebuilt the tables */
	ck_assert(groups_offset_get(gs, B("g"), B("zeta"), 7, &got));
	ck_assert_int_eq(got.offset, 7);
	/* the last offset removed: the group is forgotten at the next tick */
	for (int t = 0; t < 3; t++)
		for (int p = 0; p < 5; p++)
			groups_offset_remove(gs, B("g"), B(topics[t]), parts[p]);
	ck_assert_uint_eq(groups_offsets_each(gs, B("g"), on_offset, &box), 0);
	groups_tick(gs, 1);
	ck_assert_uint_eq(groups_count(gs), 0);
	/* refused input */
	o.metadata = (struct groups_bytes){0};
	ck_assert_int_eq(groups_offset_put(gs, B(""), B("t"), 0, &o), -EINVAL);
	ck_assert_int_eq(groups_offset_put(gs, B("g"), B(""), 0, &o), -EINVAL);
	ck_assert_int_eq(groups_offset_put(gs, B("g"), B("t"), -1, &o), -EINVAL);
	static uint8_t big[GROUPS_OFFSET_METADATA_MAX + 1];
	o.metadata = (struct groups_bytes){big, sizeof(big)};
	ck_assert_int_eq(groups_offset_put(gs, B("g"), B("t"), 0, &o), -EINVAL);
	ck_assert_uint_eq(groups_count(gs), 0);
	groups_destroy(gs);
}
END_TEST

START_TEST(offsets_expiry)
{
	struct groups *gs = make(DELAY_MS, 0);
	const int64_t keep = 7 * DAY_MS;
	struct groups_offset o = {.offset = 1, .leader_epoch = -1, .commit_ms = 1000};
	ck_assert_int_eq(groups_offset_put(gs, B("lonely"), B("t"), 0, &o), 0);
	o.commit_ms = 5000;
	ck_assert_int_eq(groups_offset_put(gs, B("lonely"), B("t"), 1, &o), 0);
	ck_assert_int_eq(groups_next_deadline(gs), 1000 + keep);
	/* a group with members keeps its offsets however old */
	char ids[1][256];
	o.commit_ms = 0;
	ck_assert_int_eq(groups_offset_put(gs, B("busy"), B("t"), 0, &o), 0);
	int64_t t = make_stable(gs, "busy", 1, ids, 0);
	int64_t now;
	for (now = t + 5000; now < 1000 + keep; now += 5000) {
		if (now % (24 * 3600 * 1000LL) < 5000) /* a day's worth of heartbeats at once */
			groups_tick(gs, now);
		ck_assert_int_eq(groups_heartbeat(gs, B("busy"), 1, B(ids[0]), now), 0);
	}
	groups_tick(gs, 1000 + keep - 1);
	struct groups_offset got;
	ck_assert(groups_offset_get(gs, B("lonely"), B("t"), 0, &got));
	groups_tick(gs, 1000 + keep);
	ck_assert(!groups_offset_get(gs, B("lonely"), B("t"), 0, &got));
	ck_assert(groups_offset_get(gs, B("lonely"), B("t"), 1, &got));
	ck_assert(groups_offset_get(gs, B("busy"), B("t"), 0, &got));
	ck_assert_int_eq(groups_next_deadline(gs), 5000 + keep); /* before busy's session */
	groups_tick(gs, 5000 + keep);
	ck_assert(!groups_offset_get(gs, B("lonely"), B("t"), 1, &got));
	ck_assert(groups_offset_get(gs, B("busy"), B("t"), 0, &got));
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.expired_offsets, 2);
	ck_assert_uint_eq(st.groups, 1); /* "lonely" forgotten */
	/* "busy" empties at E: its offsets go retention after E, not after their commit */
	now = 5000 + keep + 1;
	ck_assert_int_eq(groups_leave(gs, B("busy"), B(ids[0]), now), 0);
	groups_tick(gs, now + keep - 1);
	ck_assert(groups_offset_get(gs, B("busy"), B("t"), 0, &got));
	groups_tick(gs, now + keep);
	ck_assert(!groups_offset_get(gs, B("busy"), B("t"), 0, &got));
	ck_assert_uint_eq(groups_count(gs), 0);
	ck_assert_int_eq(groups_next_deadline(gs), INT64_MAX);
	groups_destroy(gs);
}
END_TEST

START_TEST(delete_groups)
{
	struct groups *gs = make(DELAY_MS, 0);
	ck_assert_int_eq(groups_delete_check(gs, B("g")), GROUPS_GROUP_ID_NOT_FOUND);
	ck_assert(!groups_remove(gs, B("g")));
	char ids[1][256];
	make_stable(gs, "g", 1, ids, 0);
	struct groups_offset o = {.offset = 1, .commit_ms = 1};
	ck_assert_int_eq(groups_offset_put(gs, B("g"), B("t"), 0, &o), 0);
	ck_assert_int_eq(groups_delete_check(gs, B("g")), GROUPS_NON_EMPTY_GROUP);
	ck_assert(!groups_remove(gs, B("g")));
	ck_assert_int_eq(groups_leave(gs, B("g"), B(ids[0]), DELAY_MS), 0);
	ck_assert_int_eq(groups_delete_check(gs, B("g")), GROUPS_OK);
	ck_assert(groups_remove(gs, B("g")));
	ck_assert_int_eq(groups_delete_check(gs, B("g")), GROUPS_GROUP_ID_NOT_FOUND);
	struct groups_offset got;
	ck_assert(!groups_offset_get(gs, B("g"), B("t"), 0, &got));
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.groups, 0);
	ck_assert_uint_eq(st.offsets, 0);
	ck_assert_int_eq(groups_next_deadline(gs), INT64_MAX);
	groups_destroy(gs);
}
END_TEST

START_TEST(describe_views)
{
	ck_assert_str_eq(groups_state_name(GROUPS_STATE_EMPTY), "Empty");
	ck_assert_str_eq(groups_state_name(GROUPS_STATE_PREPARING_REBALANCE), "PreparingRebalance");
	ck_assert_str_eq(groups_state_name(GROUPS_STATE_COMPLETING_REBALANCE),
			 "CompletingRebalance");
	ck_assert_str_eq(groups_state_name(GROUPS_STATE_STABLE), "Stable");
	ck_assert_str_eq(groups_state_name(GROUPS_STATE_DEAD), "Dead");
	struct groups *gs = make(DELAY_MS, 0);
	struct groups_view v;
	ck_assert(!groups_describe(gs, B("g"), &v));
	ck_assert_int_eq(v.state, GROUPS_STATE_DEAD);
	ck_assert_uint_eq(v.member_count, 0);
	struct join_box a, b;
	join(gs, &a, "g", "", "ca", "range,roundrobin", 0);
	join(gs, &b, "g", "", "cb", "roundrobin,range", 0);
	ck_assert(groups_describe(gs, B("g"), &v));
	ck_assert_int_eq(v.state, GROUPS_STATE_PREPARING_REBALANCE);
	ck_assert_uint_eq(v.member_count, 2);
	ck_assert_uint_eq(v.protocol.len, 0);
	ck_assert_uint_eq(v.members[0].metadata.len, 0);
	groups_tick(gs, DELAY_MS);
	groups_tick(gs, 2 * DELAY_MS);
	ck_assert(groups_describe(gs, B("g"), &v));
	ck_assert_int_eq(v.state, GROUPS_STATE_COMPLETING_REBALANCE);
	ck_assert_int_eq(v.generation_id, 1);
	ck_assert(v.protocol_type.len == 8 && !memcmp(v.protocol_type.ptr, "consumer", 8));
	ck_assert(v.protocol.len == 5 && !memcmp(v.protocol.ptr, "range", 5)); /* tie: leader */
	ck_assert(bytes_eq_str(v.leader_id, a.member));
	ck_assert(bytes_eq_str(v.members[0].member_id, a.member));
	ck_assert(bytes_eq_str(v.members[1].member_id, b.member));
	ck_assert(bytes_eq_str(v.members[1].client_id, "cb"));
	ck_assert(bytes_eq_str(v.members[1].client_host, "/127.0.0.1"));
	ck_assert(bytes_eq_str(v.members[1].metadata, "range@cb"));
	ck_assert_uint_eq(v.members[1].assignment.len, 0);
	struct sync_box s;
	const char *pairs[] = {a.member, "A", b.member, "BB", NULL};
	sync_req(gs, &s, "g", 1, a.member, pairs, 2 * DELAY_MS);
	ck_assert(groups_describe(gs, B("g"), &v));
	ck_assert_int_eq(v.state, GROUPS_STATE_STABLE);
	ck_assert(bytes_eq_str(v.members[0].assignment, "A"));
	ck_assert(bytes_eq_str(v.members[1].assignment, "BB"));
	/* ListGroups' walk */
	struct groups_offset o = {.offset = 1, .commit_ms = 1};
	ck_assert_int_eq(groups_offset_put(gs, B("h"), B("t"), 0, &o), 0);
	ck_assert_uint_eq(groups_count(gs), 2);
	bool seen_g = false, seen_h = false;
	for (uint32_t i = 0; i < groups_count(gs); i++) {
		groups_at(gs, i, &v);
		if (bytes_eq_str(v.group_id, "g")) {
			seen_g = true;
			ck_assert_int_eq(v.state, GROUPS_STATE_STABLE);
		} else if (bytes_eq_str(v.group_id, "h")) {
			seen_h = true;
			ck_assert_int_eq(v.state, GROUPS_STATE_EMPTY);
			ck_assert_uint_eq(v.protocol_type.len, 0);
			ck_assert_uint_eq(v.offset_count, 1);
		}
	}
	ck_assert(seen_g && seen_h);
	groups_destroy(gs);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* records */

struct collect {
	int count;
	uint64_t sum; /* a checksum of everything FN saw (wraps) */
};

static void on_collect(void *ctx, struct groups_bytes topic, int32_t partition,
		       const struct groups_offset *o)
{
	struct collect *c = ctx;
	c->count++;
	c->sum += (uint64_t)o->offset * 31 + (uint64_t)partition * 7 + (uint64_t)o->leader_epoch +
		  (uint64_t)o->commit_ms + o->metadata.len + topic.len;
}

static void apply_commit(struct groups *gs, const char *group, const char *topic, int32_t part,
			 const struct groups_offset *o)
{
	uint8_t key[256], value[GROUPS_RECORD_VALUE_MAX];
	size_t klen = groups_record_commit_key_bytes(B(group), B(topic));
	size_t vlen = groups_record_commit_value_bytes(o);
	ck_assert_int_eq(
	    groups_record_commit_encode(B(group), B(topic), part, o, key, klen, value, vlen), 0);
	ck_assert_int_eq(groups_record_apply(gs, key, (int32_t)klen, value, (int32_t)vlen), 0);
}

START_TEST(record_codec)
{
	struct groups *src = make(DELAY_MS, 0), *dst = make(DELAY_MS, 0);
	struct groups_offset o;
	for (int g = 0; g < 5; g++)
		for (int p = 0; p < 20; p++) {
			char group[16], topic[16], meta[16];
			snprintf(group, sizeof(group), "grp%d", g);
			snprintf(topic, sizeof(topic), "t%d", p % 3);
			snprintf(meta, sizeof(meta), "m%d", p);
			o = (struct groups_offset){.offset = g * 1000 + p,
						   .leader_epoch = p - 1,
						   .metadata =
						       p % 2 ? B(meta) : (struct groups_bytes){0},
						   .commit_ms = 1700000000000LL + p};
			ck_assert_int_eq(groups_offset_put(src, B(group), B(topic), p, &o), 0);
			apply_commit(dst, group, topic, p, &o);
		}
	for (int g = 0; g < 5; g++) {
		char group[16];
		snprintf(group, sizeof(group), "grp%d", g);
		struct collect a = {0}, b = {0};
		groups_offsets_each(src, B(group), on_collect, &a);
		groups_offsets_each(dst, B(group), on_collect, &b);
		ck_assert_int_eq(a.count, 20);
		ck_assert_int_eq(b.count, 20);
		ck_assert_int_eq(a.sum, b.sum);
	}
	struct groups_offset got;
	ck_assert(groups_offset_get(dst, B("grp3"), B("t1"), 7, &got));
	ck_assert_int_eq(got.offset, 3007);
	ck_assert_int_eq(got.leader_epoch, 6);
	ck_assert_int_eq(got.commit_ms, 1700000000007LL);
	ck_assert(bytes_eq_str(got.metadata, "m7"));
	/* a tombstone removes one offset */
	uint8_t key[64];
	size_t klen = groups_record_commit_key_bytes(B("grp3"), B("t1"));
	ck_assert_int_eq(groups_record_commit_encode(B("grp3"), B("t1"), 7, &got, key, klen,
						     (uint8_t[64]){0}, 64),
			 0);
	ck_assert_int_eq(groups_record_apply(dst, key, (int32_t)klen, NULL, -1), 0);
	ck_assert(!groups_offset_get(dst, B("grp3"), B("t1"), 7, &got));
	/* a delete record removes the group */
	long dlen = groups_record_delete_encode(B("grp2"), key, sizeof(key));
	ck_assert_int_eq(dlen, 4 + 4);
	ck_assert_int_eq(groups_record_apply(dst, key, (int32_t)dlen, NULL, -1), 0);
	ck_assert_int_eq(groups_delete_check(dst, B("grp2")), GROUPS_GROUP_ID_NOT_FOUND);
	ck_assert_int_eq(groups_delete_check(dst, B("grp1")), GROUPS_OK);
	/* buffers too small */
	ck_assert_int_eq(groups_record_delete_encode(B("grp2"), key, 7), -ENOBUFS);
	ck_assert_int_eq(groups_record_commit_encode(B("g"), B("t"), 0, &o, key, 10, key, 64),
			 -ENOBUFS);
	/* a delete record with a value, a commit without a key: refused */
	ck_assert_int_eq(groups_record_apply(dst, key, (int32_t)dlen, key, 4), -EBADMSG);
	ck_assert_int_eq(groups_record_apply(dst, NULL, -1, key, 4), -EBADMSG);
	groups_destroy(src);
	groups_destroy(dst);
}
END_TEST

START_TEST(record_garbage)
{
	struct groups *gs = make(DELAY_MS, 0);
	uint64_t rng = 42;
	uint8_t key[128], value[128], good_key[128], good_value[128];
	struct groups_offset o = {
	    .offset = 7, .leader_epoch = 1, .metadata = B("md"), .commit_ms = 99};
	size_t gk = groups_record_commit_key_bytes(B("group"), B("topic"));
	size_t gv = groups_record_commit_value_bytes(&o);
	ck_assert_int_eq(groups_record_commit_encode(B("group"), B("topic"), 3, &o, good_key, gk,
						     good_value, gv),
			 0);
	int ok = 0, bad = 0;
	for (int i = 0; i < 200000; i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t r = rng >> 11;
		int32_t klen, vlen;
		switch (r % 4) {
		case 0: /* random bytes */
			klen = (int32_t)(r >> 8) % 40;
			vlen = (int32_t)(r >> 16) % 40 - 1;
			for (int j = 0; j < klen; j++)
				key[j] = (uint8_t)(rng >> (j % 56));
			for (int j = 0; j < 40; j++)
				value[j] = (uint8_t)(rng >> ((j + 3) % 56));
			if (r & 0x100000) /* a plausible version */
				key[0] = 0, key[1] = (uint8_t)(1 + (r >> 21) % 2);
			break;
		case 1: /* truncated */
			memcpy(key, good_key, gk);
			memcpy(value, good_value, gv);
			klen = (int32_t)((r >> 8) % (gk + 1));
			vlen = (int32_t)((r >> 16) % (gv + 1));
			break;
		default: /* one byte flipped */
			memcpy(key, good_key, gk);
			memcpy(value, good_value, gv);
			klen = (int32_t)gk;
			vlen = (int32_t)gv;
			if (r & 1)
				key[(r >> 8) % gk] ^= (uint8_t)(1 + (r >> 20) % 255);
			else
				value[(r >> 8) % gv] ^= (uint8_t)(1 + (r >> 20) % 255);
			break;
		}
		int rc = groups_record_apply(gs, key, klen, vlen < 0 ? NULL : value, vlen);
		ck_assert(rc == 0 || rc == -EBADMSG);
		rc == 0 ? ok++ : bad++;
	}
	ck_assert_int_gt(bad, 1000);
	ck_assert_int_gt(ok, 100); /* flipped offsets and epochs still parse */
	/* everything kept is readable */
	for (uint32_t i = 0; i < groups_count(gs); i++) {
		struct groups_view v;
		groups_at(gs, i, &v);
		struct collect c = {0};
		ck_assert_uint_eq(groups_offsets_each(gs, v.group_id, on_collect, &c),
				  v.offset_count);
	}
	groups_destroy(gs);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* callbacks calling back in */

struct reenter {
	struct groups *gs;
	struct join_box box;
	const char *leave_group; /* leave this member's group from the callback */
	char leave_member[256];
	int16_t leave_error;
	struct join_box nested; /* a join issued from the callback */
};

static void on_join_reenter(void *ctx, const struct groups_join_result *r)
{
	struct reenter *re = ctx;
	on_join(&re->box, r);
	if (re->leave_group && r->error == 0) {
		re->leave_error = groups_leave(re->gs, B(re->leave_group), r->member_id, 1);
		join(re->gs, &re->nested, re->leave_group, "", "nested", "range", 1);
	}
}

START_TEST(callbacks_reenter)
{
	struct groups *gs = make(0, 0); /* no initial delay: answers inside groups_join */
	struct reenter re = {.gs = gs, .leave_group = "g"};
	struct groups_protocol p = {B("range"), B("md")};
	struct groups_join_request req = {.group_id = B("g"),
					  .client_id = B("c"),
					  .protocol_type = B("consumer"),
					  .session_timeout_ms = SESSION_MS,
					  .rebalance_timeout_ms = REBALANCE_MS,
					  .protocols = &p,
					  .protocol_count = 1};
	ck_assert_int_eq(groups_join(gs, &req, 0, on_join_reenter, &re), 0);
	/* the callback left the group (Empty, generation 2) and joined it again */
	ck_assert_int_eq(re.box.calls, 1);
	ck_assert_int_eq(re.box.generation, 1);
	ck_assert_int_eq(re.leave_error, 0);
	ck_assert_int_eq(re.nested.calls, 1);
	ck_assert_int_eq(re.nested.error, 0);
	ck_assert_int_eq(re.nested.generation, 3);
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.members, 1);
	groups_destroy(gs);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* stress */

START_TEST(stress_offsets)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct groups_offset o = {.leader_epoch = -1, .commit_ms = 1};
	char group[32], topic[32];
	for (int g = 0; g < 10000; g++) {
		snprintf(group, sizeof(group), "group-%d", g);
		for (int p = 0; p < 4; p++) {
			o.offset = g * 10 + p;
			ck_assert_int_eq(groups_offset_put(gs, B(group), B("topic"), p, &o), 0);
		}
	}
	/* 100,000 partitions over 10 topics in one group, in a scrambled order */
	for (uint32_t i = 0; i < 100000; i++) {
		uint32_t x = (i * 7919u) % 100000u;
		snprintf(topic, sizeof(topic), "big-%u", x % 10);
		o.offset = x;
		ck_assert_int_eq(groups_offset_put(gs, B("big"), B(topic), (int32_t)(x / 10), &o),
				 0);
	}
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.groups, 10001);
	ck_assert_uint_eq(st.offsets, 40000 + 100000);
	for (int g = 0; g < 10000; g += 97) {
		snprintf(group, sizeof(group), "group-%d", g);
		struct groups_offset got;
		ck_assert(groups_offset_get(gs, B(group), B("topic"), 3, &got));
		ck_assert_int_eq(got.offset, g * 10 + 3);
	}
	for (uint32_t x = 0; x < 100000; x += 13) {
		snprintf(topic, sizeof(topic), "big-%u", x % 10);
		struct groups_offset got;
		ck_assert(groups_offset_get(gs, B("big"), B(topic), (int32_t)(x / 10), &got));
		ck_assert_int_eq(got.offset, x);
	}
	struct collect c = {0};
	ck_assert_uint_eq(groups_offsets_each(gs, B("big"), on_collect, &c), 100000);
	/* remove every other partition, then every one: the group goes */
	for (uint32_t x = 0; x < 100000; x += 2) {
		snprintf(topic, sizeof(topic), "big-%u", x % 10);
		groups_offset_remove(gs, B("big"), B(topic), (int32_t)(x / 10));
	}
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.offsets, 40000 + 50000);
	c = (struct collect){0};
	ck_assert_uint_eq(groups_offsets_each(gs, B("big"), on_collect, &c), 50000);
	groups_destroy(gs);
}
END_TEST

struct order_check {
	char last_topic[32];
	int32_t last_part;
	int n;
};

static void on_order(void *ctx, struct groups_bytes topic, int32_t partition,
		     const struct groups_offset *o)
{
	struct order_check *oc = ctx;
	char name[32];
	copy_str(name, sizeof(name), topic);
	int c = strcmp(name, oc->last_topic);
	ck_assert_int_ge(c, 0);
	if (c == 0)
		ck_assert_int_gt(partition, oc->last_part);
	snprintf(oc->last_topic, sizeof(oc->last_topic), "%s", name);
	oc->last_part = partition;
	oc->n++;
	(void)o;
}

START_TEST(stress_offsets_order)
{
	struct groups *gs = make(DELAY_MS, 0);
	struct groups_offset o = {.leader_epoch = -1, .commit_ms = 1};
	char topic[32];
	uint64_t rng = 7;
	for (uint32_t i = 0; i < 100000; i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		uint32_t x = (uint32_t)(rng >> 33) % 200000u;
		snprintf(topic, sizeof(topic), "t%u", x % 7);
		ck_assert_int_eq(groups_offset_put(gs, B("g"), B(topic), (int32_t)(x / 7), &o), 0);
		if (i % 3 == 0) {
			snprintf(topic, sizeof(topic), "t%u", (x + 1) % 7);
			groups_offset_remove(gs, B("g"), B(topic), (int32_t)(x / 7));
		}
	}
	struct order_check oc = {"", -1, 0};
	uint32_t n = groups_offsets_each(gs, B("g"), on_order, &oc);
	struct groups_view v;
	ck_assert(groups_describe(gs, B("g"), &v));
	ck_assert_uint_eq(n, v.offset_count);
	ck_assert_int_eq(oc.n, (int)n);
	ck_assert_uint_gt(n, 50000);
	groups_destroy(gs);
}
END_TEST

#define STRESS_GROUPS  200
#define STRESS_MEMBERS 8

START_TEST(stress_deadlines)
{
	struct groups *gs = make(DELAY_MS, 0);
	static char ids[STRESS_GROUPS][STRESS_MEMBERS][256];
	static int64_t renewed[STRESS_GROUPS][STRESS_MEMBERS];
	static int32_t session[STRESS_GROUPS][STRESS_MEMBERS];
	uint64_t rng = 99;
#define RNG() (rng = rng * 6364136223846793005ULL + 1442695040888963407ULL, rng >> 33)
	static struct join_box boxes[STRESS_GROUPS][STRESS_MEMBERS];
	for (int g = 0; g < STRESS_GROUPS; g++) {
		char group[16], client[16];
		snprintf(group, sizeof(group), "g%d", g);
		for (int m = 0; m < STRESS_MEMBERS; m++) {
			snprintf(client, sizeof(client), "c%d", m);
			session[g][m] = 6000 + (int32_t)(RNG() % 54000);
			join_full(gs, &boxes[g][m], group, "", client, "consumer", "range",
				  session[g][m], DELAY_MS, 0);
		}
	}
	int64_t now = DELAY_MS;
	groups_tick(gs, now); /* rebalance timeout = delay: no extension */
	for (int g = 0; g < STRESS_GROUPS; g++) {
		char group[16];
		snprintf(group, sizeof(group), "g%d", g);
		for (int m = 0; m < STRESS_MEMBERS; m++) {
			ck_assert_int_eq(boxes[g][m].error, 0);
			ck_assert_int_eq(boxes[g][m].calls, 1);
			snprintf(ids[g][m], 256, "%s", boxes[g][m].member);
			renewed[g][m] = now;
		}
		struct sync_box s;
		sync_req(gs, &s, group, 1, ids[g][0], NULL, now);
		ck_assert_int_eq(s.error, 0);
		renewed[g][0] = now;
	}
	for (int step = 0; step < 50000; step++) {
		now += (int64_t)(RNG() % 3);
		int g = (int)(RNG() % STRESS_GROUPS), m = (int)(RNG() % STRESS_MEMBERS);
		char group[16];
		snprintf(group, sizeof(group), "g%d", g);
		/* keep everyone alive: heartbeat whoever is closest to expiry, and a random one */
		int64_t best = INT64_MAX;
		int bg = 0, bm = 0;
		for (int i = 0; i < STRESS_GROUPS; i++)
			for (int j = 0; j < STRESS_MEMBERS; j++)
				if (renewed[i][j] + session[i][j] < best) {
					best = renewed[i][j] + session[i][j];
					bg = i;
					bm = j;
				}
		ck_assert_int_eq(groups_next_deadline(gs), best);
		ck_assert_int_gt(best, now);
		groups_tick(gs, now); /* nothing due */
		if (best - now < 100 || (step & 1)) {
			g = bg;
			m = bm;
			snprintf(group, sizeof(group), "g%d", g);
		}
		ck_assert_int_eq(groups_heartbeat(gs, B(group), 1, B(ids[g][m]), now), 0);
		renewed[g][m] = now;
	}
	struct groups_stats st;
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.expired_members, 0);
	ck_assert_uint_eq(st.members, STRESS_GROUPS * STRESS_MEMBERS);
	/* everyone silent: all expire, every group goes Empty and is forgotten */
	now += 60000;
	groups_tick(gs, now);
	groups_tick(gs, now + REBALANCE_MS);
	groups_stats(gs, &st);
	ck_assert_uint_eq(st.members, 0);
	ck_assert_uint_eq(st.groups, 0);
	ck_assert_int_eq(groups_next_deadline(gs), INT64_MAX);
	groups_destroy(gs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("groups");
	unit_add_case(s, "single_member", single_member, 0, NULL);
	unit_add_case(s, "three_members_one_generation", three_members_one_generation, 0, NULL);
	unit_add_case(s, "protocol_vote", protocol_vote, 0, NULL);
	unit_add_case(s, "request_errors", request_errors, 0, NULL);
	unit_add_case(s, "sync_delivers_assignments", sync_delivers_assignments, 0, NULL);
	unit_add_case(s, "heartbeat_answers", heartbeat_answers, 0, NULL);
	unit_add_case(s, "leave_rebalances", leave_rebalances, 0, NULL);
	unit_add_case(s, "session_expiry", session_expiry, 0, NULL);
	unit_add_case(s, "rebalance_timeout", rebalance_timeout, 0, NULL);
	unit_add_case(s, "pending_sync_answered_27", pending_sync_answered_27, 0, NULL);
	unit_add_case(s, "commit_check_rules", commit_check_rules, 0, NULL);
	unit_add_case(s, "offsets_store", offsets_store, 0, NULL);
	unit_add_case(s, "offsets_expiry", offsets_expiry, 0, NULL);
	unit_add_case(s, "delete_groups", delete_groups, 0, NULL);
	unit_add_case(s, "describe_views", describe_views, 0, NULL);
	unit_add_case(s, "record_codec", record_codec, 0, NULL);
	unit_add_case(s, "record_garbage", record_garbage, 0, NULL);
	unit_add_case(s, "callbacks_reenter", callbacks_reenter, 0, NULL);
	unit_add_case(s, "stress_offsets", stress_offsets, 0, NULL);
	unit_add_case(s, "stress_offsets_order", stress_offsets_order, 0, NULL);
	unit_add_case(s, "stress_deadlines", stress_deadlines, 0, NULL);
	return unit_run(s);
}
