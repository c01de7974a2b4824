#!/usr/bin/python3
# tests/fuzz/make-corpus.py: writes the seed corpora of the fuzz targets: one real request
# of each API and version sluice answers (tests/fuzz/corpus/request/, the bytes after the
# 4-byte size prefix, laid out as Kafka's message schemas say), record batches and
# shard-log frames (tests/fuzz/corpus/batch/, behind fuzz_batch's mode byte), and
# programs of core/groups calls (tests/fuzz/corpus/groups/, in the op encoding that
# tests/fuzz/fuzz_groups.c reads: whole rebalances, commits, expiries, records). The
# seeds are committed; rerun this (python3 tests/fuzz/make-corpus.py [DIR]) after adding
# an API or changing fuzz_groups' encoding. It needs nothing outside Python's standard
# library.
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def crc32c(data):
    """CRC-32C (Castagnoli), reflected, as Kafka's batch CRC."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def s(text):
    b = text.encode()
    return struct.pack(">h", len(b)) + b


def ns(text):
    return struct.pack(">h", -1) if text is None else s(text)


def arr(items):
    return struct.pack(">i", len(items)) + b"".join(items)


def header(key, version, corr=7):
    return struct.pack(">hhi", key, version, corr) + s("fuzz-seed")


def varint(n):
    z = (n << 1) ^ (n >> 63)
    out = b""
    while True:
        if z < 0x80:
            return out + bytes([z])
        out += bytes([(z & 0x7F) | 0x80])
        z >>= 7


def record(offset_delta, key, value):
    body = b"\0" + varint(0) + varint(offset_delta)
    body += varint(len(key)) + key + varint(len(value)) + value + varint(0)
    return varint(len(body)) + body


def batch(count=2, magic=2, pid=-1, epoch=-1, seq=-1, attributes=0):
    records = b"".join(record(i, b"k%d" % i, b"value-%d" % i) for i in range(count))
    after_crc = struct.pack(">hiqqqhii", attributes, count - 1, 1700000000000, 1700000000000 + count,
                            pid, epoch, seq, count) + records
    crc = crc32c(after_crc)
    rest = struct.pack(">ibI", 0, magic, crc) + after_crc
    return struct.pack(">qi", 0, len(rest)) + rest


def frame(partition_id, payload):
    # core/frame.h: little-endian header, CRC-32C of bytes [12, frame_len).
    frame_len = 40 + len(payload)
    tail = struct.pack("<Iqiqi", partition_id, 0, 1, 1700000000002, 2) + payload
    return struct.pack("<III", 0x31434C53, frame_len, crc32c(tail)) + tail


def write(kind, name, data):
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def requests():
    # ApiVersions (18): empty bodies up to v2; v3 flexible (header v2, compact strings).
    for v in (0, 1, 2):
        yield "api_versions-v%d" % v, header(18, v)
    yield "api_versions-v3", header(18, 3) + b"\0" + b"\x05fuzz\x041.0\0"
    # Metadata (3).
    yield "metadata-v0-all", header(3, 0) + arr([])
    yield "metadata-v1-null", header(3, 1) + struct.pack(">i", -1)
    yield "metadata-v4", header(3, 4) + arr([s("t1"), s("bad/name")]) + b"\0"
    yield "metadata-v8", header(3, 8) + arr([s("t1")]) + b"\1\0\0"
    # CreateTopics (19): name, partitions, replication, assignments, configs; timeout; v1+
    # validate_only.
    topic = s("fuzz-topic") + struct.pack(">ih", 6, 1) + arr([]) + arr(
        [s("retention.ms") + ns("60000"), s("cleanup.policy") + ns("delete")])
    assigned = s("assigned") + struct.pack(">ih", -1, -1) + arr(
        [struct.pack(">i", 0) + arr([struct.pack(">i", 0)])]) + arr([])
    defaults = s("defaults") + struct.pack(">ih", -1, -1) + arr([]) + arr(
        [s("compression.type") + ns(None)])
    for v in range(4):
        body = arr([topic, assigned, defaults, topic]) + struct.pack(">i", 30000)
        if v >= 1:
            body += b"\1"
        yield "create_topics-v%d" % v, header(19, v) + body
    # DeleteTopics (20).
    for v in (0, 3):
        yield "delete_topics-v%d" % v, header(20, v) + arr([s("t1"), s("t1"), s("nope")]) + \
            struct.pack(">i", 30000)
    # CreatePartitions (37): name, count, nullable assignments; timeout, validate_only.
    for v in (0, 1):
        body = arr([s("t1") + struct.pack(">ii", 10, -1),
                    s("t2") + struct.pack(">i", 4) + arr([arr([struct.pack(">i", 1)])])])
        yield "create_partitions-v%d" % v, header(37, v) + body + struct.pack(">i?", 30000, False)
    # DescribeConfigs (32): type, name, nullable keys; v1+ include_synonyms.
    for v in (0, 1, 2):
        body = arr([b"\2" + s("t1") + struct.pack(">i", -1),
                    b"\4" + s("0") + arr([s("log.retention.ms"), s("num.partitions")]),
                    b"\4" + s("") + struct.pack(">i", -1),
                    b"\x08" + s("0") + struct.pack(">i", -1)])
        if v >= 1:
            body += b"\1"
        yield "describe_configs-v%d" % v, header(32, v) + body
    # Produce (0) v3+: transactional_id, acks, timeout, topics [name, [partition, records]].
    records = batch()
    for v in (3, 5, 7):
        body = ns(None) + struct.pack(">hi", -1, 30000) + arr(
            [s("t1") + arr([struct.pack(">i", 0) + struct.pack(">i", len(records)) + records,
                            struct.pack(">i", 1) + struct.pack(">i", -1)])])
        yield "produce-v%d" % v, header(0, v) + body
    old = batch(magic=1)
    yield "produce-v3-magic1", header(0, 3) + ns(None) + struct.pack(">hi", 1, 1000) + arr(
        [s("t1") + arr([struct.pack(">i", 0) + struct.pack(">i", len(old)) + old])])
    # Fetch (1) v4+: replica, max_wait, min_bytes, max_bytes, isolation, (v7+ session id,
    # epoch), topics [name, [partition, (v9+ epoch), offset, (v5+ log start), max]],
    # (v7+ forgotten), (v11 rack).
    for v in (4, 7, 11):
        part = struct.pack(">i", 0)
        if v >= 9:
            part += struct.pack(">i", -1)
        part += struct.pack(">q", 0)
        if v >= 5:
            part += struct.pack(">q", -1)
        part += struct.pack(">i", 1048576)
        body = struct.pack(">iiiib", -1, 100, 1, 52428800, 0)
        if v >= 7:
            body += struct.pack(">ii", 0, -1)
        body += arr([s("t1") + arr([part])])
        if v >= 7:
            body += arr([])
        if v >= 11:
            body += s("")
        yield "fetch-v%d" % v, header(1, v) + body
    # ListOffsets (2) v1+: replica, (v2+ isolation), topics [name, [partition, (v4+ epoch),
    # timestamp]].
    for v in (1, 2, 5):
        part = struct.pack(">i", 0) + (struct.pack(">i", -1) if v >= 4 else b"") + \
            struct.pack(">q", -2)
        body = struct.pack(">i", -1) + (b"\0" if v >= 2 else b"") + arr([s("t1") + arr([part])])
        yield "list_offsets-v%d" % v, header(2, v) + body
    # InitProducerId (22): nullable transactional id, timeout.
    for v in (0, 1):
        yield "init_producer_id-v%d" % v, header(22, v) + ns(None) + struct.pack(">i", 60000)
    # The group APIs. OffsetCommit (8) v2-7: group, generation, member, (v7+ instance id),
    # (v2-4 retention), topics [name, [partition, offset, (v6+ leader epoch), metadata]].
    member = "consumer-1-0123456789abcdef"
    for v in range(2, 8):
        body = s("fuzz-group") + struct.pack(">i", 1) + s(member)
        if v >= 7:
            body += ns("instance-1")
        if v <= 4:
            body += struct.pack(">q", -1)
        parts = []
        for part, meta in ((0, "m"), (1, None), (-1, "")):
            p = struct.pack(">iq", part, 42)
            if v >= 6:
                p += struct.pack(">i", 3)
            parts.append(p + ns(meta))
        body += arr([s("t1") + arr(parts), s("t1") + arr([]), s("") + arr(parts[:1])])
        yield "offset_commit-v%d" % v, header(8, v) + body
    yield "offset_commit-v2-assign", header(8, 2) + s("fuzz-group") + struct.pack(">i", -1) + \
        s("") + struct.pack(">q", -1) + arr([s("t1") + arr([struct.pack(">iq", 0, 7) + ns(None)])])
    # OffsetFetch (9) v1-5: group, topics [name, [partition]] (null from v2: all).
    for v in range(1, 6):
        body = s("fuzz-group") + arr([s("t1") + arr([struct.pack(">i", 0), struct.pack(">i", 9)]),
                                      s("t2") + arr([])])
        yield "offset_fetch-v%d" % v, header(9, v) + body
        if v >= 2:
            yield "offset_fetch-v%d-all" % v, header(9, v) + s("fuzz-group") + \
                struct.pack(">i", -1)
    # FindCoordinator (10) v0-2: key, (v1+ key type).
    yield "find_coordinator-v0", header(10, 0) + s("fuzz-group")
    for v in (1, 2):
        for key_type in (0, 1, 2):
            yield "find_coordinator-v%d-type%d" % (v, key_type), \
                header(10, v) + s("fuzz-group") + struct.pack(">b", key_type)
    # JoinGroup (11) v1-5: group, session, rebalance, member, (v5+ instance id), protocol
    # type, protocols [name, metadata bytes].
    subscription = struct.pack(">h", 1) + arr([s("t1"), s("t2")]) + struct.pack(">i", -1)
    for v in range(1, 6):
        body = s("fuzz-group") + struct.pack(">ii", 10000, 300000) + s("")
        if v >= 5:
            body += ns(None)
        body += s("consumer") + arr([s("range") + struct.pack(">i", len(subscription)) +
                                     subscription,
                                     s("roundrobin") + struct.pack(">i", len(subscription)) +
                                     subscription])
        yield "join_group-v%d" % v, header(11, v) + body
    yield "join_group-v1-known", header(11, 1) + s("fuzz-group") + \
        struct.pack(">ii", 10000, -1) + s(member) + s("consumer") + \
        arr([s("sticky") + struct.pack(">i", 0)])
    # Heartbeat (12) v0-3: group, generation, member, (v3+ instance id).
    for v in range(4):
        body = s("fuzz-group") + struct.pack(">i", 1) + s(member)
        if v >= 3:
            body += ns(None)
        yield "heartbeat-v%d" % v, header(12, v) + body
    # LeaveGroup (13) v0-2: group, member.
    for v in range(3):
        yield "leave_group-v%d" % v, header(13, v) + s("fuzz-group") + s(member)
    # SyncGroup (14) v0-3: group, generation, member, (v3+ instance id), assignments
    # [member, assignment bytes].
    assignment = struct.pack(">h", 1) + arr([s("t1") + arr([struct.pack(">i", 0)])]) + \
        struct.pack(">i", -1)
    for v in range(4):
        body = s("fuzz-group") + struct.pack(">i", 1) + s(member)
        if v >= 3:
            body += ns("instance-1")
        body += arr([s(member) + struct.pack(">i", len(assignment)) + assignment,
                     s("other") + struct.pack(">i", 0)])
        yield "sync_group-v%d" % v, header(14, v) + body
    # DescribeGroups (15) v0-3: groups [string], (v3+ include_authorized_operations).
    for v in range(4):
        body = arr([s("fuzz-group"), s(""), s("fuzz-group")])
        if v >= 3:
            body += b"\1"
        yield "describe_groups-v%d" % v, header(15, v) + body
    # ListGroups (16) v0-2: no fields.
    for v in range(3):
        yield "list_groups-v%d" % v, header(16, v)
    # DeleteGroups (42) v0-1: groups [string].
    for v in range(2):
        yield "delete_groups-v%d" % v, header(42, v) + arr([s("fuzz-group"), s("g2"),
                                                            s("fuzz-group")])
    # Keys sluice does not answer, and a version out of range.
    yield "unknown_key", header(99, 0)
    yield "metadata-v9", header(3, 9) + b"\0\0\0"


# ---- tests/fuzz/fuzz_groups.c's programs: two option bytes, then ops (see that file) ----

OP_JOIN, OP_SYNC, OP_HEARTBEAT, OP_LEAVE, OP_COMMIT, OP_OFFSET_REMOVE, OP_DESCRIBE, \
    OP_DELETE, OP_TICK, OP_RECORD, OP_CLOCK_BACK = range(11)
PROTOCOLS = ["range", "roundrobin", "sticky", "cooperative-sticky", "", "r"]
SESSIONS = [10, 11, 50, 1000, 100000, 9, 100001]
REBALANCES = [-1, 0, 1, 20, 200, 5000, 100000]
NEW, CURRENT, SEEN, GARBAGE = 0, 1, 2, 3


def g_member(kind, index=0, garbage=b""):
    """A member selector: a new member (empty id), current member INDEX, seen id INDEX,
    or GARBAGE bytes."""
    if kind == GARBAGE:
        return bytes([GARBAGE | (len(garbage) << 2)]) + garbage
    return bytes([kind | (index << 2)])


def g_join(group, member=g_member(NEW), protocols=("range", "roundrobin"), session=1000,
           rebalance=200, client=0, ptype=0, reenter=0, fail=0):
    out = g_op(OP_JOIN, fail) + bytes([group]) + member + bytes([client, ptype])
    out += bytes([SESSIONS.index(session), REBALANCES.index(rebalance)])
    # The protocol count selector: 0 none, 1 + n % 3 for n in 1..13, 14: 17, 15: 4.
    out += bytes([{0: 0, 1: 3, 2: 1, 3: 2, 4: 15, 17: 14}[len(protocols)]])
    for i, name in enumerate(protocols):
        meta = b"\0\1\0\0\0\1\0\2t" + bytes([0x31 + i])
        out += bytes([PROTOCOLS.index(name), len(meta)]) + meta
    return out + bytes([reenter])


def g_op(kind, fail=0):
    return bytes([kind | 0x80, fail]) if fail else bytes([kind])


def g_gen(delta=0):
    return bytes([{0: 0, -1: 4, 1: 5}[delta]])


def g_sync(group, member, assignments=None, members=1, reenter=0, fail=0):
    """ASSIGNMENTS None: one for each of the group's MEMBERS, in order; else a list of
    (member, bytes)."""
    out = g_op(OP_SYNC, fail) + bytes([group]) + member + g_gen()
    if assignments is None:
        out += bytes([5])
        for i in range(members):
            a = b"\0\1assign-%d" % i
            out += bytes([len(a)]) + a
    else:
        out += bytes([len(assignments)])
        for who, a in assignments:
            out += who + bytes([len(a)]) + a
    return out + bytes([reenter])


def g_offset(offset_sel=0, metadata=b"meta"):
    return bytes([offset_sel]) + bytes([len(metadata)]) + metadata


def g_commit(group, member, generation=g_gen(), offsets=((0, 0), (1, 2)), fail=0):
    out = g_op(OP_COMMIT, fail) + bytes([group]) + member + generation + bytes([len(offsets) - 1])
    for topic, partition in offsets:
        out += bytes([topic, partition]) + g_offset()
    return out


def g_tick(step):
    if step < 128:
        b = step
    elif step < 7200:
        b = 128 + step // 100
    else:
        b = 200 + min(step // 10000, 55)
    return g_op(OP_TICK) + bytes([b])


def g_record_commit(group, topic=0, partition=0, tombstone=False):
    return g_op(OP_RECORD) + bytes([3 if tombstone else 2, group, topic, partition]) + g_offset()


def groups_programs():
    delay0, retention = 0, 0x30  # no initial delay; retention 751 ms, no size limit
    yield "rebalance-two-members", bytes([delay0, retention]) + b"".join([
        g_join(0),                                   # -> CompletingRebalance, generation 1
        g_sync(0, g_member(CURRENT, 0)),             # leader: -> Stable
        g_op(OP_HEARTBEAT) + b"\0" + g_member(CURRENT, 0) + g_gen(),
        g_join(0, client=2),                         # a second member: PreparingRebalance
        g_join(0, g_member(CURRENT, 0)),             # the first rejoins: generation 2
        g_sync(0, g_member(CURRENT, 1), []),         # the follower waits for the leader
        g_sync(0, g_member(CURRENT, 0), members=2),  # the leader's: both answered
        g_commit(0, g_member(CURRENT, 1)),
        g_op(OP_DESCRIBE) + b"\0",
        g_op(OP_LEAVE) + b"\0" + g_member(CURRENT, 1),
        g_tick(300),                                 # the rebalance timeout passes
        g_tick(2000),                                # sessions expire: Empty
        g_tick(1000),                                # offsets expire: forgotten
    ])
    yield "initial-delay-four-members", bytes([30, 0x10]) + b"".join([
        g_join(1, protocols=("range",)),
        g_join(1, protocols=("roundrobin", "range"), client=2),
        g_join(1, protocols=("range", "sticky", "roundrobin"), client=1),
        g_join(1, protocols=("sticky",)),            # no common protocol: 23
        g_tick(25),
        g_join(1, client=3),                         # extends the delay
        g_tick(40),
        g_tick(300),
        g_sync(1, g_member(CURRENT, 0), members=4),
        g_op(OP_HEARTBEAT) + b"\1" + g_member(CURRENT, 2) + g_gen(),
        g_op(OP_DELETE) + b"\1",                    # 68: it has members
        g_tick(5000),
        g_op(OP_DELETE) + b"\1",
    ])
    yield "offsets-and-records", bytes([0, 0x80]) + b"".join([
        g_commit(2, g_member(NEW), bytes([6])),      # generation -1, no member: allowed
        g_record_commit(2, 1, 3),
        g_record_commit(2, 1, 3, tombstone=True),
        g_op(OP_RECORD) + bytes([0, 2, 14, 24]) +
        b"\0\1\0\2g0\0\2t1\0\0\0\1" +
        b"\0\1" + b"\0" * 7 + b"\x2a\xff\xff\xff\xff\0\0" + b"\0" * 8,
        g_op(OP_RECORD) + bytes([1, 2]),             # group deleted
        g_op(OP_OFFSET_REMOVE) + bytes([0, 0, 0]),
        g_op(OP_DESCRIBE) + b"\0",
        g_op(OP_CLOCK_BACK) + b"\x10",
        g_tick(120000),
    ])
    yield "reentrant-callbacks", bytes([0, 0x20]) + b"".join([
        g_join(0, reenter=3),                        # its answer joins another member
        g_join(0, g_member(CURRENT, 0), reenter=1),  # its answer heartbeats
        g_sync(0, g_member(CURRENT, 1), [], reenter=2),
        g_sync(0, g_member(CURRENT, 0), members=2, reenter=4),
        g_join(0, g_member(CURRENT, 0), protocols=("range",), reenter=2),
        g_tick(500),
        g_join(0, reenter=4),
    ])
    yield "allocation-failures", bytes([0, 0x40]) + b"".join([
        g_join(0, fail=1),
        g_join(0, fail=3),
        g_join(0),
        g_join(0, g_member(CURRENT, 0), protocols=("sticky", "range"), fail=2),
        g_sync(0, g_member(CURRENT, 0), fail=2),
        g_sync(0, g_member(CURRENT, 0)),
        g_commit(0, g_member(CURRENT, 0), fail=1),
        g_commit(1, g_member(NEW), bytes([6]), fail=2),
        g_tick(3000),
    ])


def main():
    for name, data in requests():
        write("request", name, data)
    good = batch(count=3)
    write("batch", "batch-raw", b"\0" + good)
    write("batch", "batch-fix-crc", b"\1" + good)
    write("batch", "batch-idempotent", b"\0" + batch(count=5, pid=1000, epoch=0, seq=0))
    write("batch", "batch-magic1", b"\0" + batch(magic=1))
    write("batch", "frame-sealed", b"\2" + frame(17, good))
    write("batch", "frame-pad", b"\0" + frame(0xFFFFFFFF, b"\0" * 24))
    write("batch", "frame-built", b"\3" + frame(17, good))
    for name, data in groups_programs():
        write("groups", name, data)


main()
