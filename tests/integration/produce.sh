#!/bin/bash
# tests/integration/produce.sh: Produce and idempotent producers against a real sluiced on
# loopback. A raw-socket client (Debian's /usr/bin/python3, its own CRC-32C) builds real
# RecordBatch v2 bytes and checks, with Produce v7: base offsets 0, N, ... for acks=1 and
# acks=-1; acks=0 answered with nothing while its records land (the next answer on the
# connection is the next request's, at the offset after them); bad CRC (2), magic 1
# (43), an unknown topic and partition (3), an invalid topic name (17), acks=5 (21),
# zstd before v7 (76), a transactional id and a transactional batch (53), each on a
# connection that stays usable while another client is served; a request with too many
# partition entries closes only its own connection; InitProducerId (v1, on each shard,
# never the same id; a transactional id refused with 53); an idempotent producer's
# duplicate resend answered with the original offset and not appended, a gap (45), a
# stale epoch (47), an unknown producer id (59); a request for a partition of the other
# shard sent to the wrong port still lands (forwarding), also for a request spanning
# both shards, and for 300 pipelined batches of one idempotent producer (in order,
# contiguous); after SIGTERM and a restart the producer state is back (a resend is
# still a duplicate) and new producer ids stay above the old ones. Then confluent-kafka
# with enable.idempotence=true, acks=all writes 20,000 messages to 12 partitions: every
# delivery report succeeds and offsets are contiguous per partition; a consumer with
# assign() reads them back. Last, 64 connections pipeline idempotent batches for every
# partition of the last shard into shard 0's port, more forwards at once than the mesh
# window takes: none refused, offsets contiguous, and shard 0 counted its mesh waits.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

tap_plan 37
PY=/usr/bin/python3
shards=2
[ "$(nproc)" -lt 2 ] && shards=1
# O_DIRECT segments: keep the data under the build directory, not on tmpfs.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/produce.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base "$shards")
common=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards "$shards"
	--num-partitions 4 --data-dir "$DATA/d")

cat >"$TEST_TMP/client.py" <<'EOF'
# Raw Kafka client for produce.sh: each check prints "ok: what" or "fail: what".
import json, socket, struct, sys, time

HOST = "127.0.0.1"

# ---- CRC-32C (Castagnoli, reflected 0x82F63B78) ----
CRC_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC_TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    z = (v << 1) ^ (v >> 63)
    out = b""
    while z >= 0x80:
        out += bytes([(z & 0x7F) | 0x80])
        z >>= 7
    return out + bytes([z])


def batch(values, pid=-1, epoch=-1, seq=-1, attributes=0, magic=2, bad_crc=False,
          codec=0):
    """A RecordBatch v2 of VALUES (bytes each), timestamps now."""
    ts = int(time.time() * 1000)
    recs = b""
    for i, v in enumerate(values):
        body = b"\0" + varint(i) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        recs += varint(len(body)) + body
    attrs = attributes | codec
    after_crc = struct.pack(">hiqqqhii", attrs, len(values) - 1, ts, ts, pid, epoch, seq,
                            len(values)) + recs
    crc = crc32c(after_crc)
    if bad_crc:
        crc ^= 1
    head = struct.pack(">iBI", 0, magic, crc)  # partitionLeaderEpoch, magic, crc
    length = len(head) + len(after_crc)
    return struct.pack(">qi", 0, length) + head + after_crc


def message_set_v1(value):
    """One magic-1 message (Kafka 0.10 format)."""
    body = struct.pack(">bbq", 1, 0, int(time.time() * 1000)) + struct.pack(">i", -1) + \
        struct.pack(">i", len(value)) + value
    import zlib
    msg = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body
    return struct.pack(">qi", 0, len(msg)) + msg


def report(good, what):
    print(("ok: " if good else "fail: ") + what, flush=True)


def connect(port):
    s = socket.create_connection((HOST, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def header(key, version, corr, client=b"produce-test"):
    return struct.pack(">hhih", key, version, corr, len(client)) + client


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def response(s):
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, size)


def string(s):
    return struct.pack(">h", len(s)) + s.encode()


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.p:self.p + n].decode()
        self.p += n
        return s


CORR = [100]


def next_corr():
    CORR[0] += 1
    return CORR[0]


def produce_request(corr, topics, acks=1, version=7, txn=None):
    """TOPICS: [(name, [(partition, records_bytes_or_None)])]."""
    body = struct.pack(">h", -1) if txn is None else string(txn)
    body += struct.pack(">hi", acks, 10000) + struct.pack(">i", len(topics))
    for name, parts in topics:
        body += string(name) + struct.pack(">i", len(parts))
        for p, rec in parts:
            body += struct.pack(">i", p)
            body += struct.pack(">i", -1) if rec is None else struct.pack(">i", len(rec)) + rec
    return frame(header(0, version, corr) + body)


def parse_produce(body, version=7):
    r = Reader(body)
    corr = r.take(">i")
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            p, err, base = r.take(">i"), r.take(">h"), r.take(">q")
            r.take(">q")  # log_append_time
            start = r.take(">q") if version >= 5 else None
            out[(name, p)] = (err, base, start)
    throttle = r.take(">i")
    return corr, out, throttle, len(body) - r.p


def produce(s, topic, part, rec, acks=1, version=7, txn=None):
    """One partition; returns (error, base_offset, log_start)."""
    corr = next_corr()
    s.sendall(produce_request(corr, [(topic, [(part, rec)])], acks, version, txn))
    if acks == 0:
        return None
    c, out, throttle, rest = parse_produce(response(s), version)
    assert c == corr and throttle == 0 and rest == 0, (c, corr, throttle, rest)
    return out[(topic, part)]


def metadata(port, topics):
    s = connect(port)
    body = struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
    body += struct.pack(">?", True)
    s.sendall(frame(header(3, 4, 1) + body))
    r = Reader(response(s))
    s.close()
    r.take(">i")
    r.take(">i")
    for _ in range(r.take(">i")):
        r.take(">i"), r.string(), r.take(">i"), r.string()
    r.string()
    r.take(">i")
    leaders = {}
    for _ in range(r.take(">i")):
        err, name = r.take(">h"), r.string()
        r.take(">?")
        for _ in range(r.take(">i")):
            perr, idx, leader = r.take(">h"), r.take(">i"), r.take(">i")
            [r.take(">i") for _ in range(r.take(">i"))]  # replicas
            [r.take(">i") for _ in range(r.take(">i"))]  # isr (v4: no offline replicas)
            leaders[(name, idx)] = leader
    return leaders


def init_producer_id(port, txn=None):
    s = connect(port)
    body = (struct.pack(">h", -1) if txn is None else string(txn)) + struct.pack(">i", 60000)
    s.sendall(frame(header(22, 1, 5) + body))
    r = Reader(response(s))
    s.close()
    r.take(">i")
    throttle, err, pid, epoch = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">h")
    return err, pid, epoch


def vals(n, tag):
    return [("%s-%d" % (tag, i)).encode() for i in range(n)]


def cmd_plain(port, shards, topic):
    leaders = {}
    for _ in range(50):
        leaders = metadata(port, [topic])
        if len(leaders) == 4:
            break
        time.sleep(0.1)
    report(len(leaders) == 4, "Metadata auto-creates %s with 4 partitions" % topic)
    p0 = min(p for (t, p), l in leaders.items() if l == 0)
    own = port + leaders[(topic, p0)]
    s = connect(own)
    r1 = produce(s, topic, p0, batch(vals(3, "a")), acks=1)
    r2 = produce(s, topic, p0, batch(vals(5, "b")), acks=1)
    r3 = produce(s, topic, p0, batch(vals(2, "c")), acks=-1)
    report(r1 == (0, 0, 0) and r2 == (0, 3, 0) and r3 == (0, 8, 0),
           "acks=1, acks=1, acks=-1: base offsets 0, 3, 8, log start 0 (%s %s %s)"
           % (r1, r2, r3))
    # acks=0: no answer; the next answer on this connection is the next request's.
    produce(s, topic, p0, batch(vals(4, "d")), acks=0)
    r4 = produce(s, topic, p0, batch(vals(1, "e")), acks=1)
    report(r4 == (0, 14, 0), "acks=0 is not answered and its 4 records land: the next "
           "batch gets offset 14 (%s)" % (r4,))

    other = connect(own)  # a second client, served between the bad inputs
    served = []

    def bad(what, result, err):
        report(result[0] == err and result[1] == -1,
               "%s: error %d, base offset -1 (%s)" % (what, err, result))
        served.append(produce(other, topic, p0, batch(vals(1, "o")), acks=1)[0] == 0)

    bad("a batch with a bad CRC", produce(s, topic, p0, batch(vals(2, "x"), bad_crc=True)), 2)
    bad("a magic 1 message set", produce(s, topic, p0, message_set_v1(b"old")), 43)
    bad("an unknown topic", produce(s, "no-such-topic-x", 0, batch(vals(1, "x"))), 3)
    bad("an unknown partition index", produce(s, topic, 99, batch(vals(1, "x"))), 3)
    bad("an invalid topic name", produce(s, "bad/name", 0, batch(vals(1, "x"))), 17)
    bad("acks=5", produce(s, topic, p0, batch(vals(1, "x")), acks=5), 21)
    bad("a batch whose length lies", produce(s, topic, p0, batch(vals(2, "x"))[:-3]), 2)
    bad("two batches in one partition",
        produce(s, topic, p0, batch(vals(1, "x")) + batch(vals(1, "y"))), 2)
    bad("zstd in Produce v6", produce(s, topic, p0, batch(vals(1, "x"), codec=4), version=6), 76)
    bad("a transactional id", produce(s, topic, p0, batch(vals(1, "x")), txn="tx-1"), 53)
    bad("a transactional batch",
        produce(s, topic, p0, batch(vals(1, "x"), pid=5, epoch=0, seq=0, attributes=0x10)), 53)
    bad("a control batch", produce(s, topic, p0, batch(vals(1, "x"), attributes=0x20)), 2)
    r5 = produce(s, topic, p0, batch(vals(1, "f")), acks=1)
    report(r5 == (0, 15 + len(served), 0) and all(served),
           "after %d refused batches the connection appends at offset %d and the other "
           "client was served each time (%s)" % (len(served), 15 + len(served), r5))
    s.close()
    other.close()
    # Past LIMITS_PRODUCE_ENTRIES_MAX entries: the connection closes, others go on.
    s = connect(own)
    n = 131073
    body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", n) + struct.pack(">ii", 0, -1) * n
    s.sendall(frame(header(0, 7, next_corr()) + body))
    s.settimeout(10)
    try:
        gone = s.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        gone = True
    except socket.timeout:
        gone = False
    s.close()
    s = connect(own)
    r6 = produce(s, topic, p0, batch(vals(1, "g")), acks=1)
    report(gone and r6 == (0, 16 + len(served), 0),
           "a Produce request with %d partition entries closes its connection; a new one "
           "appends at %d (%s)" % (n, 16 + len(served), r6))
    s.close()


def cmd_idempotent(port, shards, topic, state_file):
    leaders = metadata(port, [topic])
    e1, pid, epoch = init_producer_id(port)
    e2, pid2, epoch2 = init_producer_id(port + shards - 1)
    report(e1 == 0 and e2 == 0 and pid >= 0 and pid2 > pid and epoch == 0 and epoch2 == 0,
           "InitProducerId on shard 0 and shard %d: new ids %d < %d, epoch 0"
           % (shards - 1, pid, pid2))
    et, tpid, _ = init_producer_id(port, txn="tx-1")
    report(et == 53 and tpid == -1, "InitProducerId with a transactional id: 53")
    p = min(pp for (t, pp), l in leaders.items() if l == shards - 1)
    s = connect(port + shards - 1)
    a = produce(s, topic, p, batch(vals(3, "i0"), pid, 0, 0), acks=-1)
    b = produce(s, topic, p, batch(vals(3, "i1"), pid, 0, 3), acks=-1)
    dup = produce(s, topic, p, batch(vals(3, "i0"), pid, 0, 0), acks=-1)
    c = produce(s, topic, p, batch(vals(2, "i2"), pid, 0, 6), acks=1)
    report(a[0] == 0 and b == (0, a[1] + 3, 0) and dup == a and c == (0, a[1] + 6, 0),
           "idempotent: the resent first batch gets its original offset %d and is not "
           "appended (next batch at %d)" % (a[1], c[1]))
    gap = produce(s, topic, p, batch(vals(1, "g"), pid, 0, 100))
    report(gap[0] == 45, "a sequence gap: 45 OUT_OF_ORDER_SEQUENCE_NUMBER (%s)" % (gap,))
    bump = produce(s, topic, p, batch(vals(1, "e1"), pid, 1, 0))
    stale = produce(s, topic, p, batch(vals(1, "e0"), pid, 0, 8))
    report(bump == (0, a[1] + 8, 0) and stale[0] == 47,
           "a new epoch starts at 0; the old epoch gets 47 INVALID_PRODUCER_EPOCH (%s)"
           % (stale,))
    unk = produce(s, topic, p, batch(vals(1, "u"), pid + 1000, 0, 5))
    report(unk[0] == 59, "an unknown producer id with sequence 5: 59 UNKNOWN_PRODUCER_ID")
    s.close()
    # Forwarding: the partition of the last shard, sent to shard 0's port.
    s = connect(port)
    f1 = produce(s, topic, p, batch(vals(2, "f1"), pid2, 0, 0), acks=-1)
    f2 = produce(s, topic, p, batch(vals(2, "f1"), pid2, 0, 0), acks=1)
    report(f1 == (0, a[1] + 9, 0) and f2 == f1,
           "a partition of shard %d produced through shard 0's port: appended at %d, its "
           "duplicate recognised there too" % (shards - 1, a[1] + 9))
    # One request spanning every shard's partitions, acks=-1.
    parts = sorted(pp for (t, pp) in leaders)
    corr = next_corr()
    s.sendall(produce_request(corr, [(topic, [(pp, batch(vals(1, "m"))) for pp in parts])],
                              acks=-1))
    c2, out, _, _ = parse_produce(response(s))
    report(c2 == corr and len(out) == 4 and all(v[0] == 0 for v in out.values()),
           "one acks=-1 request for the 4 partitions on %d shards is answered for each" % shards)
    # 300 pipelined batches of one idempotent producer through the wrong port, acks 1
    # and -1 mixed: forwarded in order, none refused, offsets contiguous.
    e3, pid3, _ = init_producer_id(port)
    corrs, reqs = [], b""
    for i in range(300):
        corr = next_corr()
        corrs.append(corr)
        reqs += produce_request(corr, [(topic, [(p, batch(vals(3, "q%d" % i), pid3, 0, 3 * i))])],
                                acks=-1 if i % 3 == 0 else 1)
    s.sendall(reqs)
    got = [parse_produce(response(s)) for _ in range(300)]
    bases = [g[1][(topic, p)][1] for g in got]
    report(e3 == 0 and [g[0] for g in got] == corrs and
           all(g[1][(topic, p)][0] == 0 for g in got) and
           bases == list(range(bases[0], bases[0] + 900, 3)),
           "300 pipelined idempotent batches forwarded to shard %d land in order at "
           "contiguous offsets" % (shards - 1))
    s.close()
    with open(state_file, "w") as f:
        json.dump({"pid": pid, "p": p, "base": a[1], "next": bases[-1] + 3,
                   "max_pid": max(pid, pid2, pid3)}, f)


def cmd_after_restart(port, shards, topic, state_file):
    with open(state_file) as f:
        st = json.load(f)
    s = connect(port + shards - 1)
    dup = produce(s, topic, st["p"], batch(vals(1, "e1"), st["pid"], 1, 0), acks=-1)
    nxt = produce(s, topic, st["p"], batch(vals(1, "e1b"), st["pid"], 1, 1), acks=-1)
    report(dup == (0, st["base"] + 8, 0) and nxt == (0, st["next"], 0),
           "after a restart the producer state is back: the resend is a duplicate at %d, "
           "the next batch lands at %d (%s %s)" % (st["base"] + 8, st["next"], dup, nxt))
    s.close()
    e, new_pid, epoch = init_producer_id(port + shards - 1)
    report(e == 0 and new_pid > st["max_pid"] and epoch == 0,
           "InitProducerId after the restart: id %d, above every id before (%d)"
           % (new_pid, st["max_pid"]))


def cmd_stress(port, topic, conns, depth, rounds):
    """Idempotent producers pipelining requests for every partition of the last shard to
    shard 0's port: enough forwards at once to exhaust the mesh's request window."""
    leaders = {}
    for _ in range(50):
        leaders = metadata(port, [topic])
        if leaders:
            break
        time.sleep(0.1)
    last = max(leaders.values())
    parts = sorted(p for (t, p), l in leaders.items() if l == last)
    socks = [connect(port) for _ in range(conns)]
    pids = [init_producer_id(port)[1] for _ in range(conns)]
    seq = [0] * conns
    offs = {}
    errors = 0
    for _ in range(rounds):
        burst = []  # built first, then sent at once: the forwards pile up in the window
        for c in range(conns):
            reqs = b""
            for d in range(depth):
                reqs += produce_request(next_corr(), [(topic, [
                    (p, batch(vals(2, "s"), pids[c], 0, seq[c])) for p in parts])],
                    acks=-1 if d % 2 else 1)
                seq[c] += 2
            burst.append(reqs)
        for c, s in enumerate(socks):
            s.sendall(burst[c])
        for s in socks:
            for _ in range(depth):
                for (t, p), (err, base, start) in parse_produce(response(s))[1].items():
                    errors += err != 0
                    offs.setdefault(p, []).append(base)
    n = sum(len(v) for v in offs.values())
    report(errors == 0 and n == conns * depth * rounds * len(parts) and
           all(sorted(v) == list(range(0, 2 * len(v), 2)) for v in offs.values()),
           "%d idempotent batches forwarded by %d pipelining connections: none refused, "
           "offsets contiguous" % (n, conns))


cmd = sys.argv[1]
if cmd == "stress":
    cmd_stress(int(sys.argv[2]), sys.argv[3], 64, 32, 2)
elif cmd == "plain":
    cmd_plain(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
elif cmd == "idempotent":
    cmd_idempotent(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
elif cmd == "restart":
    cmd_after_restart(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
EOF

cat >"$TEST_TMP/ck.py" <<'EOF'
# confluent-kafka: an idempotent producer, acks=all, 20,000 messages to 12 partitions.
import sys, time
from confluent_kafka import Consumer, Producer, TopicPartition

port, topic, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
boot = "127.0.0.1:%d" % port
p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "acks": "all",
              "linger.ms": 5, "message.timeout.ms": 60000})
reports = []
md = p.list_topics(topic, timeout=20)  # auto-creates it (num.partitions from the flag)
parts = len(md.topics[topic].partitions)


def dr(err, msg):
    reports.append((err, msg.partition(), msg.offset(), msg.value()))


for i in range(n):
    while True:
        try:
            p.produce(topic, value=b"m%06d" % i, key=b"k%d" % i, partition=i % parts,
                      on_delivery=dr)
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
left = p.flush(60)
errors = [r for r in reports if r[0] is not None]
print(("ok: " if parts == 12 else "fail: ") + "the topic has %d partitions" % parts)
print(("ok: " if not errors and len(reports) == n and left == 0 else "fail: ") +
      "%d delivery reports, %d errors%s" % (len(reports), len(errors),
                                            (" (first: %s)" % errors[0][0]) if errors else ""))
by_part = {}
for err, part, off, val in reports:
    by_part.setdefault(part, []).append((off, val))
contiguous = True
for part, offs in by_part.items():
    offs.sort()
    if [o for o, _ in offs] != list(range(len(offs))):
        contiguous = False
    # per partition, offsets follow the produce order
    if [v for _, v in offs] != sorted(v for _, v in offs):
        contiguous = False
print(("ok: " if contiguous and len(by_part) == parts else "fail: ") +
      "offsets are 0..N-1 in produce order on each of the %d partitions" % len(by_part))

c = Consumer({"bootstrap.servers": boot, "group.id": "produce-test", "enable.auto.commit": False,
              "auto.offset.reset": "earliest"})
c.assign([TopicPartition(topic, q, 0) for q in range(parts)])
got = {}
deadline = time.time() + 60
while sum(len(v) for v in got.values()) < n and time.time() < deadline:
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    got.setdefault(m.partition(), []).append((m.offset(), m.value()))
c.close()
same = all(sorted(got.get(q, [])) == sorted(by_part.get(q, [])) for q in range(parts))
print(("ok: " if same else "fail: ") + "a consumer with assign() reads back the %d messages "
      "at their reported offsets (%d read)" % (n, sum(len(v) for v in got.values())))
EOF

report_lines() {
	local out=$1 expect=$2 n=0
	while IFS= read -r line; do
		case "$line" in
		"ok: "*) tap_ok 0 "${line#ok: }"; n=$((n + 1)) ;;
		"fail: "*) tap_ok 1 "${line#fail: }"; n=$((n + 1)) ;;
		esac
	done <"$out"
	while [ $n -lt "$expect" ]; do
		tap_ok 1 "client check $((n + 1)) did not run"
		tap_diag "$(tail -5 "$out")"
		n=$((n + 1))
	done
}

if [ ! -x "$PY" ]; then
	for i in $(seq 37); do tap_skip "produce check $i" "no $PY (Debian's python3)"; done
	exit 0
fi
: >"$TEST_TMP/main.log"
if ! sluiced_start "$TEST_TMP/main.log" "${common[@]}"; then
	tap_ok 1 "sluiced starts"
	tap_diag "$(tail -5 "$TEST_TMP/main.log")"
	exit 1
fi
pid=$SLUICED_PID
"$PY" "$TEST_TMP/client.py" plain "$port" "$shards" plain-t >"$TEST_TMP/plain.out" 2>&1
report_lines "$TEST_TMP/plain.out" 17
"$PY" "$TEST_TMP/client.py" idempotent "$port" "$shards" idem-t "$TEST_TMP/state.json" \
	>"$TEST_TMP/idem.out" 2>&1
report_lines "$TEST_TMP/idem.out" 9
is_running "$pid"
tap_ok $? "the daemon is still running"
kill -TERM "$pid"
wait_exit "$pid" 100
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "SIGTERM: exit status 0 (got $EXIT_STATUS)"

: >"$TEST_TMP/restart.log"
if ! sluiced_start "$TEST_TMP/restart.log" "${common[@]}"; then
	tap_ok 1 "sluiced restarts"
	tap_diag "$(tail -5 "$TEST_TMP/restart.log")"
	exit 1
fi
pid=$SLUICED_PID
"$PY" "$TEST_TMP/client.py" restart "$port" "$shards" idem-t "$TEST_TMP/state.json" \
	>"$TEST_TMP/restart.out" 2>&1
report_lines "$TEST_TMP/restart.out" 2

if "$PY" -c 'import confluent_kafka' 2>/dev/null; then
	# 12 partitions for the auto-created topic: restart with num.partitions 12.
	kill -TERM "$pid"
	wait_exit "$pid" 100
	common[${#common[@]} - 3]=12 # --num-partitions 12
	: >"$TEST_TMP/ck.log"
	if sluiced_start "$TEST_TMP/ck.log" "${common[@]}"; then
		pid=$SLUICED_PID
		timeout 180 "$PY" "$TEST_TMP/ck.py" "$port" ck-idem 20000 >"$TEST_TMP/ck.out" 2>&1
		report_lines "$TEST_TMP/ck.out" 4
		timeout 120 "$PY" "$TEST_TMP/client.py" stress "$port" stress-t \
			>"$TEST_TMP/stress.out" 2>&1
		report_lines "$TEST_TMP/stress.out" 1
	else
		tap_ok 1 "sluiced starts with --num-partitions 12"
		tap_diag "$(tail -5 "$TEST_TMP/ck.log")"
	fi
else
	for i in 1 2 3 4; do
		tap_skip "confluent-kafka check $i" "python3-confluent-kafka is not installed"
	done
	for i in 1 2; do tap_skip "forwarding stress check $i" "runs after confluent-kafka"; done
fi
kill -TERM "$pid"
wait_exit "$pid" 100
if [ -f "$TEST_TMP/stress.out" ]; then
	# With more than one shard the stress must have met the mesh window and waited.
	waits=$(sed -n 's/.*shard=0 producers: shard 0 stats:.* mesh_waits=\([0-9]*\).*/\1/p' \
		"$TEST_TMP/ck.log")
	if [ "$shards" -lt 2 ]; then
		tap_skip "forwards waited for the mesh window" "one shard: nothing to forward"
	elif [ -z "$waits" ]; then
		tap_ok 1 "shard 0 logged its producer stats at stop"
	elif [ "$waits" -eq 0 ]; then
		tap_skip "forwards waited for the mesh window" "the burst never filled the window on this machine (the order check above holds either way)"
	else
		tap_ok 0 "forwards waited for the mesh window ($waits times) and kept their order"
	fi
fi
[ -n "$PRODUCE_KEEP_LOGS" ] && cp "$TEST_TMP"/*.log "$PRODUCE_KEEP_LOGS"/
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "SIGTERM after the runs: exit status 0 (got $EXIT_STATUS)"
tap_done
