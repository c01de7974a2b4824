#!/usr/bin/python3
# tests/integration/groups_client.py: consumer groups of a running sluiced as clients see
# them, for tests/integration/groups.sh and sluicectl.sh (Debian's /usr/bin/python3 with
# python3-confluent-kafka 1.7 on librdkafka 2.0.2; raw requests through kafka_wire.py).
# Each check prints one "ok: what" or "fail: what" line; "# " lines are figures.
#
#   groups_client.py apis PORT                   exit 0 when the broker advertises every
#                                                group API (8-16), 3 (and why) when not
#   groups_client.py create PORT TOPIC PARTITIONS  creates a topic (AdminClient)
#   groups_client.py rebalance PORT TOPIC GROUP COUNT
#       3 consumers share a 12-partition topic while COUNT messages are produced; one
#       leaves a third of the way through, a new one joins at half way; every message
#       is consumed (duplicates counted), no partition is owned by two at once
#   groups_client.py commit PORT TOPIC GROUP STATE   commits known offsets, saves them
#   groups_client.py resume PORT TOPIC GROUP STATE   (after a broker restart) a new
#       consumer of the group starts exactly at the committed offsets
#   groups_client.py silent PORT TOPIC GROUP     a raw member joins, syncs, then stops
#       heartbeating; it is expelled after session.timeout.ms, its partitions move
#   groups_client.py assign PORT TOPIC GROUP     commits of an assign() consumer
#       (generation -1, empty member id) and OffsetFetch of a never-committed partition
#   groups_client.py lag PORT TOPIC GROUP EXPECT STOP
#       for sluicectl.sh: produces and commits known offsets, writes what sluicectl must
#       show to EXPECT, stays a member until the file STOP exists, then leaves
#
# Ownership check of "rebalance". confluent-kafka 1.7 does not expose the generation,
# so the check is on time instead, which is stronger: each consumer records, with one
# monotonic clock (all consumers are threads of this process), when its on_assign and
# on_revoke callbacks ran; consumer X owns partition P from the on_assign that gave it P
# to the on_revoke (or close) that took it. With Kafka's eager protocol a member revokes
# everything before it sends JoinGroup, and no member gets an assignment of the next
# generation before every member has joined it (SyncGroup waits for the leader, the
# leader's JoinGroup answer waits for all members), so on a correct coordinator the
# ownership intervals of one partition never overlap; a coordinator that completed a
# generation without a member that still owned partitions, or that handed the same
# partition to two members, makes two intervals overlap, and the check fails.
import json
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_wire as kw  # noqa: E402

HOST = "127.0.0.1"
GROUP_APIS = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
              12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups",
              16: "ListGroups"}
SESSION_MS = 6000  # sluiced's group.min.session.timeout.ms default, Kafka's too


def report(good, what):
    print(("ok: " if good else "fail: ") + what, flush=True)


def note(what):
    print("# " + what, flush=True)


def bootstrap(port):
    return "%s:%d" % (HOST, port)


def consumer_conf(port, group, **extra):
    conf = {"bootstrap.servers": bootstrap(port), "group.id": group,
            "broker.address.family": "v4", "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": 500, "max.poll.interval.ms": 20000,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "enable.partition.eof": False, "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 2000}
    conf.update(extra)
    return conf


def create_topic(port, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap(port), "broker.address.family": "v4"})
    a.create_topics([NewTopic(topic, partitions, 1)], request_timeout=15)[topic].result()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        t = a.list_topics(topic, timeout=5).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError("topic %s not in Metadata with %d partitions" % (topic, partitions))


def produce_keyed(port, topic, per_partition, tag):
    """Produces per_partition[p] messages to each partition p; returns {p: [(offset, key,
    value)]} from the delivery reports."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap(port), "broker.address.family": "v4",
                  "linger.ms": 5, "acks": "all"})
    got, errors = {}, []

    def dr(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            got.setdefault(msg.partition(), []).append((msg.offset(), msg.key().decode(),
                                                        msg.value().decode()))
    for part, n in enumerate(per_partition):
        for i in range(n):
            key = "%s-%d-%d" % (tag, part, i)
            p.produce(topic, key=key, value="value-of-" + key, partition=part, on_delivery=dr)
            p.poll(0)
    left = p.flush(30)
    if errors or left:
        raise RuntimeError("produce failed: %d errors (%s), %d undelivered"
                           % (len(errors), errors[:3], left))
    for part in got:
        got[part].sort()
    return got


# ---- raw group requests (non-flexible versions, layouts per Kafka's *Request.json) ----

def raw_call(s, key, version, body, corr=7):
    s.sendall(kw.frame(kw.header(key, version, corr) + body))
    r = kw.Reader(kw.response(s))
    if r.take(">i") != corr:
        raise ValueError("correlation id out of step")
    return r


def api_versions(port):
    with kw.connect(port, timeout=10) as s:
        r = raw_call(s, 18, 0, b"")
        err = r.take(">h")
        return err, {r.take(">h"): (r.take(">h"), r.take(">h")) for _ in range(r.take(">i"))}


def find_coordinator(port, group):
    """FindCoordinator v1, retried while the coordinator is not available yet."""
    deadline = time.monotonic() + 15
    with kw.connect(port, timeout=10) as s:
        while True:
            r = raw_call(s, 10, 1, kw.string(group.encode()) + struct.pack(">b", 0))
            r.take(">i")
            err = r.take(">h")
            r.string()  # error_message
            node = r.take(">i")
            r.string()  # host: 127.0.0.1, the only address the tests use
            cport = r.take(">i")
            if err in (14, 15) and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            if err:
                raise RuntimeError("FindCoordinator: error %d" % err)
            return node, cport


def subscription_bytes(topics):
    """ConsumerProtocol Subscription v0: version, [topic], user_data (null)."""
    return (struct.pack(">hi", 0, len(topics)) + b"".join(kw.string(t.encode()) for t in topics)
            + struct.pack(">i", -1))


def assignment_bytes(assigned):
    """ConsumerProtocol Assignment v0 of {topic: [partition]}."""
    out = struct.pack(">hi", 0, len(assigned))
    for topic, parts in assigned.items():
        out += kw.string(topic.encode()) + struct.pack(">i", len(parts))
        out += b"".join(struct.pack(">i", p) for p in parts)
    return out + struct.pack(">i", -1)


def parse_assignment(b):
    if not b:
        return {}
    r = kw.Reader(b)
    r.take(">h")
    out = {}
    for _ in range(r.take(">i")):
        topic = r.string()
        out[topic] = [r.take(">i") for _ in range(r.take(">i"))]
    return out


def join_group(s, group, member, topics, rebalance_ms=10000):
    """JoinGroup v1: (error, generation, protocol, leader, member_id, [(id, metadata)])."""
    meta = subscription_bytes(topics)
    body = (kw.string(group.encode()) + struct.pack(">ii", SESSION_MS, rebalance_ms)
            + kw.string(member.encode()) + kw.string(b"consumer") + struct.pack(">i", 1)
            + kw.string(b"range") + struct.pack(">i", len(meta)) + meta)
    r = raw_call(s, 11, 1, body)
    err, gen, proto, leader, mid = (r.take(">h"), r.take(">i"), r.string(), r.string(),
                                    r.string())
    members = []
    for _ in range(r.take(">i")):
        members.append((r.string(), r.raw(r.take(">i"))))
    return err, gen, proto, leader, mid, members


def sync_group(s, group, gen, member, assignments):
    """SyncGroup v1: (error, assignment bytes)."""
    body = kw.string(group.encode()) + struct.pack(">i", gen) + kw.string(member.encode())
    body += struct.pack(">i", len(assignments))
    for mid, b in assignments:
        body += kw.string(mid.encode()) + struct.pack(">i", len(b)) + b
    r = raw_call(s, 14, 1, body)
    r.take(">i")
    err = r.take(">h")
    return err, r.raw(r.take(">i"))


def heartbeat(s, group, gen, member):
    r = raw_call(s, 12, 1, kw.string(group.encode()) + struct.pack(">i", gen)
                 + kw.string(member.encode()))
    r.take(">i")
    return r.take(">h")


def offset_commit_v2(s, group, gen, member, topic, entries):
    """OffsetCommit v2 of [(partition, offset, metadata)]: {partition: error}."""
    body = (kw.string(group.encode()) + struct.pack(">i", gen) + kw.string(member.encode())
            + struct.pack(">q", -1) + struct.pack(">i", 1) + kw.string(topic.encode())
            + struct.pack(">i", len(entries)))
    for p, off, meta in entries:
        body += struct.pack(">iq", p, off) + kw.string(meta.encode())
    r = raw_call(s, 8, 2, body)
    out = {}
    for _ in range(r.take(">i")):
        r.string()
        for _ in range(r.take(">i")):
            p = r.take(">i")
            out[p] = r.take(">h")
    return out


def offset_fetch_v2(s, group, topic, partitions):
    """OffsetFetch v2: ({partition: (offset, metadata, error)}, top-level error)."""
    body = (kw.string(group.encode()) + struct.pack(">i", 1) + kw.string(topic.encode())
            + struct.pack(">i", len(partitions)) + b"".join(struct.pack(">i", p)
                                                          for p in partitions))
    r = raw_call(s, 9, 2, body)
    out = {}
    for _ in range(r.take(">i")):
        r.string()
        for _ in range(r.take(">i")):
            p = r.take(">i")
            out[p] = (r.take(">q"), r.string(), r.take(">h"))
    return out, r.take(">h")


# ---- apis ----

def cmd_apis(port):
    err, apis = api_versions(port)
    missing = [name for key, name in sorted(GROUP_APIS.items()) if key not in apis]
    if err or missing:
        print("the broker does not advertise the group APIs (%s)"
              % (", ".join(missing) if not err else "ApiVersions error %d" % err))
        return 3
    return 0


# ---- rebalance: three members, one leaves, one joins, while a producer writes ----

class Member(threading.Thread):
    def __init__(self, name, port, topic, group, events, lock):
        super().__init__(daemon=True)
        self.name, self.topic, self.events, self.lock = name, topic, events, lock
        self.port, self.group = port, group
        self.stop = threading.Event()
        self.closed = threading.Event()
        self.interval = 0  # ownership intervals started (assign callbacks)
        self.owned = set()
        self.got = []  # (partition, offset, interval, key, value)
        self.errors = []

    def event(self, kind, parts):
        with self.lock:
            self.events.append((time.monotonic(), self.name, kind, sorted(parts)))

    def on_assign(self, consumer, parts):
        self.event("assign", [p.partition for p in parts])
        self.interval += 1
        self.owned = set(p.partition for p in parts)

    def on_revoke(self, consumer, parts):
        self.event("revoke", [p.partition for p in parts])
        self.owned = set()

    def run(self):
        from confluent_kafka import Consumer
        c = Consumer(consumer_conf(self.port, self.group, **{
            "client.id": self.name, "enable.auto.commit": True,
            "auto.commit.interval.ms": 200}))
        c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        # poll(), not consume(N): librdkafka 2.0's batch consume may store (and so
        # auto-commit) offsets of messages a rebalance then drops from the batch
        # (librdkafka 2.0.0 release notes, "Known issues"), which skips them.
        while not self.stop.is_set():
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                self.errors.append(str(m.error()))
                continue
            self.got.append((m.partition(), m.offset(), self.interval, m.key(), m.value()))
        c.close()
        self.event("closed", sorted(self.owned))
        self.owned = set()
        self.closed.set()


def ownership_overlaps(events):
    """Intervals [start, end) per (member, partition) from the callbacks; returns the
    overlapping pairs of different members on one partition."""
    open_at, spans = {}, {}
    for t, name, kind, parts in sorted(events):
        if kind == "assign":
            for p in parts:
                open_at[(name, p)] = t
        else:  # revoke, or close: everything still open ends
            ends = parts if kind == "revoke" else [p for (n, p) in list(open_at) if n == name]
            for p in ends:
                if (name, p) in open_at:
                    spans.setdefault(p, []).append((open_at.pop((name, p)), t, name))
    for (name, p), t in open_at.items():
        spans.setdefault(p, []).append((t, float("inf"), name))
    bad = []
    for p, ss in spans.items():
        for i in range(len(ss)):
            for j in range(i + 1, len(ss)):
                a, b = ss[i], ss[j]
                if a[2] != b[2] and a[0] < b[1] and b[0] < a[1]:
                    bad.append((p, a, b))
    return bad, sum(len(s) for s in spans.values())


def explain_missing(missing, members, events, t0):
    """Prints, for the first partitions with missing messages, the missing ranges, who
    read the partition (offset ranges per ownership interval) and its assign/revoke
    events, to tell a consumer-side gap from a coordinator one."""
    by_part = {}
    for p, o in sorted(missing):
        r = by_part.setdefault(p, [])
        if r and r[-1][1] == o - 1:
            r[-1][1] = o
        else:
            r.append([o, o])
    for p in sorted(by_part)[:3]:
        note("partition %d missing %s" % (p, by_part[p][:4]))
        for m in members.values():
            spans = {}
            for mp, o, interval, _k, _v in m.got:
                if mp == p:
                    lo, hi = spans.get(interval, (o, o))
                    spans[interval] = (min(lo, o), max(hi, o))
            if spans:
                note("  %s read %s" % (m.name, sorted(spans.items())))
        for t, name, kind, parts in sorted(events):
            if p in parts or kind == "closed":
                note("  %.3f s %s %s %s" % (t - t0, name, kind, parts))


def cmd_rebalance(port, topic, group, count):
    from confluent_kafka import Producer
    parts = 12
    create_topic(port, topic, parts)
    events, lock = [], threading.Lock()
    members = {n: Member(n, port, topic, group, events, lock) for n in ("c1", "c2", "c3")}
    t0 = time.monotonic()
    for m in members.values():
        m.start()

    produced = {}  # (partition, offset) -> index
    prod_errors = []

    def dr(err, msg):
        if err is not None:
            prod_errors.append(str(err))
        else:
            produced[(msg.partition(), msg.offset())] = int(msg.key()[1:])

    def produce():
        # Paced at about 40,000 messages/s so that consumption, the leave and the join
        # all happen while the producer is still writing.
        p = Producer({"bootstrap.servers": bootstrap(port), "broker.address.family": "v4",
                      "linger.ms": 10, "acks": "all", "queue.buffering.max.messages": 200000})
        start = time.monotonic()
        for i in range(count):
            p.produce(topic, key=b"k%07d" % i, value=b"v%07d" % i, on_delivery=dr)
            if i % 1000 == 999:
                p.poll(0)
                ahead = start + (i + 1) / 40000.0 - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        p.flush(60)
    prod = threading.Thread(target=produce, daemon=True)
    prod.start()

    def consumed():
        return sum(len(m.got) for m in members.values())

    deadline = t0 + 55
    left_at = joined_at = None
    c2_assigns_at_leave = 0
    while time.monotonic() < deadline:
        time.sleep(0.05)
        n = consumed()
        if left_at is None and n >= count // 3:
            left_at = time.monotonic()
            c2_assigns_at_leave = members["c2"].interval
            members["c1"].stop.set()
        # The newcomer joins once the leave's rebalance is over (c2 got a new
        # assignment), so that the two are separate rebalances.
        if (joined_at is None and left_at is not None and members["c1"].closed.is_set()
                and members["c2"].interval > c2_assigns_at_leave and n >= count // 2):
            joined_at = time.monotonic()
            members["c4"] = Member("c4", port, topic, group, events, lock)
            members["c4"].start()
        if not prod.is_alive() and len(produced) == count and joined_at is not None:
            seen = set()
            for m in members.values():
                seen.update((g[0], g[1]) for g in m.got)
            if all(k in seen for k in produced):
                break
    final = {n: set(m.owned) for n, m in members.items() if not m.stop.is_set()}
    for m in members.values():
        m.stop.set()
    for m in members.values():
        m.join(15)
    elapsed = time.monotonic() - t0
    prod.join(5)
    note("%d messages, %.1f s from the consumers' start; leave at %s s, join at %s s"
         % (count, elapsed, left_at and round(left_at - t0, 1),
            joined_at and round(joined_at - t0, 1)))

    report(len(produced) == count and not prod_errors,
           "the producer's %d messages are all acknowledged (%d, errors %s)"
           % (count, len(produced), prod_errors[:3]))
    assigns = {n: sum(1 for e in events if e[1] == n and e[2] == "assign") for n in members}
    report(left_at is not None and joined_at is not None and assigns.get("c4", 0) >= 1
           and min(assigns["c2"], assigns["c3"]) >= 3 and members["c1"].closed.is_set(),
           "c1 left a third of the way, c4 joined half way; c2 and c3 went through at least "
           "3 assignments (assign callbacks: %s)" % assigns)

    seen = {}  # (partition, offset) -> [(member, interval)]
    wrong = []
    for m in members.values():
        for p, o, interval, key, value in m.got:
            seen.setdefault((p, o), []).append((m.name, interval))
            i = produced.get((p, o))
            if i is None or key != b"k%07d" % i or value != b"v%07d" % i:
                wrong.append((p, o, key, value))
    missing = [k for k in produced if k not in seen]
    report(not missing and not wrong and len(seen) == count,
           "the union of what the consumers read is exactly what was produced (%d distinct, "
           "%d missing, %d not as produced: %s %s)" % (len(seen), len(missing), len(wrong),
                                                       sorted(missing)[:3], wrong[:3]))
    if missing:
        explain_missing(missing, members, events, t0)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    same_interval = [k for k, v in dups.items() if len(set(v)) != len(v)]
    out_of_order = 0
    for m in members.values():
        last = {}
        for p, o, interval, _k, _v in m.got:
            if (interval, p) in last and o <= last[(interval, p)]:
                out_of_order += 1
            last[(interval, p)] = o
    note("%d messages read more than once (%d extra reads), all across a change of owner"
         % (len(dups), sum(len(v) - 1 for v in dups.values())) if not same_interval else
         "duplicates inside one ownership interval: %s" % same_interval[:3])
    report(not same_interval and out_of_order == 0,
           "duplicates only across rebalances: no message read twice by one owner in one "
           "assignment, offsets increasing (%d duplicated, %d within one assignment, "
           "%d out of order)" % (len(dups), len(same_interval), out_of_order))
    overlaps, spans = ownership_overlaps(events)
    report(not overlaps and spans >= 12,
           "no partition owned by two members at once (%d ownership intervals from "
           "assign/revoke callbacks; overlaps: %s)" % (spans, overlaps[:2]))
    owners = [p for s in final.values() for p in s]
    report(sorted(owners) == list(range(parts)) and set(final) == {"c2", "c3", "c4"}
           and all(final.values()),
           "at the end c2, c3 and c4 each own some partitions and together all 12 once "
           "(%s)" % {n: sorted(s) for n, s in final.items()})
    errors = [e for m in members.values() for e in m.errors]
    report(not errors, "no consumer error (%s)" % errors[:3])


# ---- commit / resume across a broker restart ----

TARGETS = [37, 120, 1, 200]  # committed offset per partition; 200 = everything read


def cmd_commit(port, topic, group, state_path):
    from confluent_kafka import Consumer, TopicPartition
    create_topic(port, topic, len(TARGETS))
    produced = produce_keyed(port, topic, [200] * len(TARGETS), "before")
    c = Consumer(consumer_conf(port, group, **{"client.id": "committer"}))
    c.subscribe([topic])
    read = {p: 0 for p in range(len(TARGETS))}
    committed = set()
    deadline = time.monotonic() + 30
    while len(committed) < len(TARGETS) and time.monotonic() < deadline:
        for m in c.consume(500, 0.2):
            if m.error():
                continue
            p = m.partition()
            read[p] = max(read[p], m.offset() + 1)
            if p not in committed and read[p] >= TARGETS[p]:
                c.commit(offsets=[TopicPartition(topic, p, TARGETS[p])], asynchronous=False)
                committed.add(p)
    got = {tp.partition: tp.offset for tp in
           c.committed([TopicPartition(topic, p) for p in range(len(TARGETS))], timeout=10)}
    c.close()
    report(got == dict(enumerate(TARGETS)),
           "a subscribed consumer commits offsets %s and reads them back (%s)" % (TARGETS, got))
    with open(state_path, "w") as f:
        json.dump({"produced": {str(p): v for p, v in produced.items()}}, f)


def cmd_resume(port, topic, group, state_path):
    from confluent_kafka import Consumer, TopicPartition
    with open(state_path) as f:
        produced = {int(p): v for p, v in json.load(f)["produced"].items()}
    more = produce_keyed(port, topic, [10] * len(TARGETS), "after")
    c = Consumer(consumer_conf(port, group, **{"client.id": "resumer"}))
    got = {tp.partition: tp.offset for tp in
           c.committed([TopicPartition(topic, p) for p in range(len(TARGETS))], timeout=15)}
    report(got == dict(enumerate(TARGETS)),
           "after the restart OffsetFetch returns the committed offsets %s (%s)"
           % (TARGETS, got))
    c.subscribe([topic])
    expect = {p: [tuple(x) for x in produced[p]][TARGETS[p]:] + more[p]
              for p in range(len(TARGETS))}
    read = {p: [] for p in range(len(TARGETS))}
    deadline = time.monotonic() + 30
    while (sum(len(v) for v in read.values()) < sum(len(v) for v in expect.values())
           and time.monotonic() < deadline):
        for m in c.consume(500, 0.2):
            if not m.error():
                read[m.partition()].append((m.offset(), m.key().decode(), m.value().decode()))
    c.close()
    first = {p: read[p][0][0] if read[p] else None for p in read}
    report(first == dict(enumerate(TARGETS)),
           "a new consumer of the group starts each partition at its committed offset "
           "(first offsets read %s)" % first)
    report(read == expect,
           "and reads exactly the messages from there on, as produced (%d read, %d expected)"
           % (sum(len(v) for v in read.values()), sum(len(v) for v in expect.values())))


# ---- silent: a raw member stops heartbeating ----

def cmd_silent(port, topic, group):
    parts = 4
    create_topic(port, topic, parts)
    events, lock = [], threading.Lock()
    b = Member("b", port, topic, group, events, lock)
    b.start()
    deadline = time.monotonic() + 20
    while b.owned != set(range(parts)) and time.monotonic() < deadline:
        time.sleep(0.05)
    report(b.owned == set(range(parts)), "consumer b alone owns all %d partitions (%s)"
           % (parts, sorted(b.owned)))
    _node, cport = find_coordinator(port, group)
    s = kw.connect(cport, timeout=20)
    err, gen, proto, leader, mid, others = join_group(s, group, "", [topic])
    mine = {}
    if err == 0:
        if leader == mid:  # not expected (b stays leader), but then assign like range
            ids = sorted(m for m, _ in others)
            plan = {m: {topic: [p for p in range(parts) if ids.index(m) == p * len(ids) //
                                parts]} for m in ids}
            assignments = [(m, assignment_bytes(a)) for m, a in plan.items()]
        else:
            assignments = []
        err, ab = sync_group(s, group, gen, mid, assignments)
        mine = parse_assignment(ab)
    report(err == 0 and mine.get(topic) and proto == "range",
           "a raw member joins (generation %d, protocol %s) and syncs: assigned %s (error %d)"
           % (gen, proto, mine, err))
    hb = []
    for _ in range(4):
        time.sleep(0.4)
        sent = time.monotonic()
        hb.append(heartbeat(s, group, gen, mid))
        answered = time.monotonic()
    deadline = time.monotonic() + 5
    while set(b.owned) | set(mine.get(topic, [])) != set(range(parts)) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    before = sorted(b.owned)
    report(hb == [0] * 4 and before and not set(before) & set(mine.get(topic, [])),
           "its heartbeats are answered 0 (%s); b owns the other partitions (%s)" % (hb, before))
    # Silence: wait for b to own everything again.
    took = None
    deadline = sent + (SESSION_MS + 8000) / 1000.0
    while time.monotonic() < deadline:
        if b.owned == set(range(parts)):
            took = time.monotonic()
            break
        time.sleep(0.02)
    with lock:
        assigned_all = [t for t, n, kind, ps in events
                        if n == "b" and kind == "assign" and ps == list(range(parts))
                        and t > sent]
    at = assigned_all[0] if assigned_all else took
    note("last heartbeat sent %.3f s, answered %.3f s; b assigned all partitions %s s after it"
         % (sent - sent, answered - sent, at and round(at - sent, 3)))
    report(at is not None and at >= sent + (SESSION_MS - 500) / 1000.0,
           "the silent member keeps its partitions until session.timeout.ms (%d ms) has "
           "passed (b got them %s ms after the last heartbeat)"
           % (SESSION_MS, at and int((at - sent) * 1000)))
    report(at is not None and at <= answered + (SESSION_MS + 4000) / 1000.0,
           "then it is expelled and b owns all %d partitions within 4 s (%s)"
           % (parts, sorted(b.owned)))
    late = heartbeat(s, group, gen, mid)
    report(late == 25, "a heartbeat of the expelled member: UNKNOWN_MEMBER_ID 25 (got %d)" % late)
    s.close()
    b.stop.set()
    b.join(10)


# ---- assign: commits without a generation ----

def cmd_assign(port, topic, group):
    from confluent_kafka import Consumer, TopicPartition
    create_topic(port, topic, 2)
    produce_keyed(port, topic, [20, 5], "assign")
    c = Consumer(consumer_conf(port, group, **{"client.id": "assigner"}))
    c.assign([TopicPartition(topic, 0, 0)])
    n = 0
    deadline = time.monotonic() + 15
    while n < 10 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            n += 1
    err = None
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
    except Exception as e:  # KafkaException
        err = e
    got = {tp.partition: tp.offset for tp in
           c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)}
    c.close()
    # librdkafka shows "nothing committed" (-1 on the wire) as OFFSET_INVALID, -1001.
    report(err is None and got == {0: 10, 1: -1001},
           "an assign() consumer commits offset 10 (generation -1, no member id) and "
           "reads it back; partition 1 has none (got %s, error %s)" % (got, err))
    _node, cport = find_coordinator(port, group)
    with kw.connect(cport, timeout=10) as s:
        fetched, top = offset_fetch_v2(s, group, topic, [0, 1])
        report(top == 0 and fetched.get(0, (0,))[0::2] == (10, 0)
               and fetched.get(1, (0,))[0::2] == (-1, 0),
               "raw OffsetFetch v2: partition 0 at 10, never-committed partition 1 at -1 "
               "with no error (got %s, error %d)" % (fetched, top))
        errs = offset_commit_v2(s, group, -1, "", topic, [(1, 3, "meta-x")])
        fetched, top = offset_fetch_v2(s, group, topic, [0, 1])
        report(errs == {1: 0} and top == 0 and fetched.get(1) == (3, "meta-x", 0)
               and fetched.get(0, (0,))[0::2] == (10, 0),
               "raw OffsetCommit v2 with generation -1 and an empty member id is accepted "
               "and the metadata string kept (commit %s, fetch %s)" % (errs, fetched))


# ---- lag: what sluicectl groups describe must show ----

LAG_PRODUCED = [50, 80, 120, 30]
LAG_COMMITTED = [10, 80, 1, 25]


def cmd_lag(port, topic, group, expect_path, stop_path):
    from confluent_kafka import Consumer, TopicPartition
    create_topic(port, topic, len(LAG_PRODUCED))
    produce_keyed(port, topic, LAG_PRODUCED, "lag")
    c = Consumer(consumer_conf(port, group, **{"client.id": "lag-client"}))
    owned = set()
    c.subscribe([topic], on_assign=lambda _c, ps: owned.update(p.partition for p in ps))
    read = {p: 0 for p in range(len(LAG_PRODUCED))}
    done = set()
    deadline = time.monotonic() + 20
    while len(done) < len(LAG_PRODUCED) and time.monotonic() < deadline:
        for m in c.consume(500, 0.2):
            if m.error():
                continue
            p = m.partition()
            read[p] = max(read[p], m.offset() + 1)
            if p not in done and read[p] >= LAG_COMMITTED[p]:
                c.commit(offsets=[TopicPartition(topic, p, LAG_COMMITTED[p])],
                         asynchronous=False)
                done.add(p)
    report(len(done) == len(LAG_PRODUCED),
           "lag setup: produced %s, committed %s" % (LAG_PRODUCED, LAG_COMMITTED))
    with open(expect_path + ".tmp", "w") as f:
        json.dump({"topic": topic, "produced": LAG_PRODUCED, "committed": LAG_COMMITTED,
                   "owned": sorted(owned)}, f)
    os.rename(expect_path + ".tmp", expect_path)
    while not os.path.exists(stop_path):
        c.poll(0.1)
    c.close()


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    a = sys.argv[3:]
    if cmd == "apis":
        return cmd_apis(port)
    if cmd == "create":
        create_topic(port, a[0], int(a[1]))
    elif cmd == "rebalance":
        cmd_rebalance(port, a[0], a[1], int(a[2]))
    elif cmd == "commit":
        cmd_commit(port, a[0], a[1], a[2])
    elif cmd == "resume":
        cmd_resume(port, a[0], a[1], a[2])
    elif cmd == "silent":
        cmd_silent(port, a[0], a[1])
    elif cmd == "assign":
        cmd_assign(port, a[0], a[1])
    elif cmd == "lag":
        cmd_lag(port, a[0], a[1], a[2], a[3])
    else:
        print("unknown command " + cmd)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
