# tests/integration/fetch_edges.py: Fetch and ListOffsets edge cases against a running
# sluiced (fetch-edges.sh starts it), as a raw client sees them (kafka_wire.py), with data
# written by confluent-kafka's producer. Prints "ok: what" or "fail: what" per check.
# Usage: fetch_edges.py PORT SHARDS TOPIC PHASE, PHASE "first" (data written, cache
# reads) or "again" (after a restart: the same answers from disk).
import json
import os
import sys
import threading
import time

import kafka_wire as kw
from confluent_kafka import Producer

PORT, SHARDS, TOPIC, PHASE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
STATE = os.environ.get("EDGES_STATE", "/tmp/fetch-edges.json")
T0 = 1600000000000
V = 11  # the highest Fetch version; others checked where layouts differ


def report(good, what):
    print(("ok: " if good else "fail: ") + what, flush=True)


def skip(what, why):
    print("skip: %s: %s" % (what, why), flush=True)


def producer():
    return Producer({"bootstrap.servers": "127.0.0.1:%d" % PORT, "linger.ms": 20,
                     "acks": "all"})


def produce(p, part, values, ts=None, key=None):
    for i, v in enumerate(values):
        p.produce(TOPIC, value=v, key=key, partition=part,
                  timestamp=(ts[i] if ts else 0))
    if p.flush(30) != 0:
        raise RuntimeError("produce did not finish")


def port_of(leader):
    return PORT + leader


def one(resp):
    return resp["topics"][0][1][0]


# Partition roles (4 partitions): A and B hold small batches, C stays empty until the
# wake-up check writes one record, D holds a batch larger than any partition_max_bytes
# used here, plus ten records with spread timestamps for ListOffsets.
A, B, C, D = 0, 1, 2, 3
C_HWM = 0 if PHASE == "first" else 1  # C gets one record in the first phase

if PHASE == "first":
    s0 = kw.connect(PORT)
    brokers, md = kw.metadata(s0, [TOPIC])
    err, leaders = md[TOPIC]
    report(err == 0 and len(leaders) == 4, "Metadata finds the 4-partition topic")
    p = producer()
    for k in range(5):
        produce(p, A, [b"a%d-%d" % (k, i) for i in range(10)])
        produce(p, B, [b"b%d-%d" % (k, i) for i in range(10)])
    produce(p, D, [b"D" * 20000], ts=[T0 - 1000])
    produce(p, D, [b"t%d" % i for i in range(10)], ts=[T0 + 10 * i for i in range(10)])
    with open(STATE, "w") as f:
        json.dump({"leaders": {str(k): v for k, v in leaders.items()}}, f)
else:
    with open(STATE) as f:
        leaders = {int(k): v for k, v in json.load(f)["leaders"].items()}

# Every shard serves forwarded reads only once its Fetch/ListOffsets code registered its
# mesh operation, which its own first request does until the net layer does it at start:
# one request to each shard first.
for sh in range(SHARDS):
    s = kw.connect(PORT + sh)
    kw.fetch(s, V, [(TOPIC, [(A, 0, 1)])])
    kw.list_offsets(s, 5, [(TOPIC, [(A, -1)])])
    s.close()

conns = {sh: kw.connect(PORT + sh) for sh in range(SHARDS)}


def owner(part):
    return conns[leaders[part]]


def other(part):
    return conns[(leaders[part] + 1) % SHARDS]


# -- what A and B hold: 50 records each, offsets 0..49, in order ---------------------
for part, prefix in ((A, b"a"), (B, b"b")):
    r = one(kw.fetch(owner(part), V, [(TOPIC, [(part, 0, 1 << 20)])]))
    recs = kw.records(r["records"])
    want = [b"%s%d-%d" % (prefix, k, i) for k in range(5) for i in range(10)]
    report(r["error"] == 0 and r["hwm"] == 50 and r["lso"] == 50 and r["log_start"] == 0 and
           [x[0] for x in recs] == list(range(50)) and [x[3] for x in recs] == want,
           "%s: partition %d returns its 50 records in order, hwm = lso = 50, log start 0"
           % (PHASE, part))

# -- every version's layout ----------------------------------------------------------
good = True
for v in range(4, 12):
    resp = kw.fetch(owner(A), v, [(TOPIC, [(A, 10, 1 << 20)])])
    r = one(resp)
    recs = kw.records(r["records"])
    good = good and r["error"] == 0 and r["hwm"] == 50 and recs[0][0] <= 10 and recs[-1][0] == 49
report(good, "%s: Fetch v4 to v11 each parse and return the records from offset 10" % PHASE)

# -- offsets out of range ------------------------------------------------------------
r = one(kw.fetch(owner(A), V, [(TOPIC, [(A, 51, 1 << 20)])]))
report(r["error"] == 1 and r["hwm"] == -1 and r["records"] == b"",
       "%s: an offset above the log end is OFFSET_OUT_OF_RANGE (1) with hwm -1" % PHASE)
r = one(kw.fetch(owner(A), V, [(TOPIC, [(A, -1, 1 << 20)])]))
report(r["error"] == 1 and r["records"] == b"",
       "%s: an offset below the log start is OFFSET_OUT_OF_RANGE (1)" % PHASE)
r = one(kw.fetch(owner(A), V, [(TOPIC, [(A, 50, 1 << 20)])]))
report(r["error"] == 0 and r["hwm"] == 50 and r["records"] == b"",
       "%s: the offset at the high watermark answers no records and no error" % PHASE)

# -- partition_max_bytes and max_bytes (KIP-74) ----------------------------------------
r = one(kw.fetch(owner(D), V, [(TOPIC, [(D, 0, 100)])]))
b = kw.batches(r["records"])
report(r["error"] == 0 and len(b) == 1 and b[0][0] == 0 and len(r["records"]) > 20000,
       "%s: partition_max_bytes 100 still returns the whole 20 KB first batch" % PHASE)
resp = kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 1 << 20), (B, 0, 1 << 20)])], max_bytes=1)
parts = resp["topics"][0][1]
report(len(kw.batches(parts[0]["records"])) == 1 and parts[1]["records"] == b"" and
       parts[1]["error"] == 0 and parts[1]["hwm"] == 50,
       "%s: max_bytes 1 returns one batch of the first partition, none of the next" % PHASE)
resp = kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 1 << 20), (D, 0, 1000)])])
parts = resp["topics"][0][1]
report(len(kw.records(parts[0]["records"])) == 50 and parts[1]["records"] == b"" and
       parts[1]["hwm"] == 11,
       "%s: a later partition whose first batch exceeds its partition_max_bytes returns none"
       % PHASE)

# -- several partitions, through their owner and through another shard ----------------
everything = [(TOPIC, [(A, 0, 1 << 20), (B, 0, 1 << 20), (C, 0, 1 << 20), (D, 0, 1 << 20)])]
answers = []
for sh in range(SHARDS):
    resp = kw.fetch(conns[sh], V, everything)
    answers.append([(x["partition"], x["error"], x["hwm"], x["records"])
                    for x in resp["topics"][0][1]])
report(all(a == answers[0] for a in answers) and
       [x[0] for x in answers[0]] == [A, B, C, D] and
       [len(kw.records(x[3])) if x[0] != D else 1 for x in answers[0]] == [50, 50, C_HWM, 1],
       "%s: one Fetch of all 4 partitions answers the same on every shard" % PHASE)
if SHARDS > 1:
    r = one(kw.fetch(other(A), V, [(TOPIC, [(A, 5, 1 << 20)])]))
    report(r["error"] == 0 and kw.records(r["records"])[-1][0] == 49,
           "%s: a partition of another shard is read through the mesh" % PHASE)
else:
    skip("%s: a partition of another shard is read through the mesh" % PHASE, "one shard")

# -- errors ---------------------------------------------------------------------------
resp = kw.fetch(conns[0], V, [("no-such-topic", [(0, 0, 100)]), (TOPIC, [(99, 0, 100)])])
report([t[1][0]["error"] for t in resp["topics"]] == [3, 3],
       "%s: an unknown topic and an unknown partition are UNKNOWN_TOPIC_OR_PARTITION" % PHASE)
resp = kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 100, 1), (A, 0, 100, -2), (A, 0, 100, 0)])])
report([x["error"] for x in resp["topics"][0][1]] == [75, 74, 0],
       "%s: current_leader_epoch 1 is 75, -2 is 74, 0 passes" % PHASE)
resp = kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 100)])], session_id=7, epoch=3)
report(resp["error"] == 70 and resp["topics"] == [] and resp["session_id"] == 0,
       "%s: an incremental fetch gets FETCH_SESSION_ID_NOT_FOUND (70)" % PHASE)
resp = kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 100)])], session_id=7, epoch=0)
report(resp["error"] == 0 and resp["session_id"] == 0 and one(resp)["hwm"] == 50,
       "%s: a full fetch naming a session is served with session_id 0" % PHASE)
r0 = one(kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 100)])], isolation=0))
r1 = one(kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 100)])], isolation=1))
report(r0["aborted"] is None and r1["aborted"] == [] and r0["preferred"] == -1,
       "%s: aborted_transactions null (uncommitted) or empty (committed); "
       "preferred_read_replica -1" % PHASE)

# -- bodies that cannot be decoded close their connection, and only it ----------------
if PHASE == "first":
    import socket
    import struct

    def closes(data):
        s = kw.connect(PORT, timeout=5)
        s.sendall(data)
        try:
            while True:
                if not s.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    lying = kw.header(1, 11, 9) + struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, 0, -1)
    lying += struct.pack(">i", 1000000) + kw.string(TOPIC.encode())  # 10^6 topics promised
    cut = kw.fetch_request(11, [(TOPIC, [(A, 0, 100)])])
    cut = struct.pack(">i", len(cut) - 4 - 10) + cut[4:-10]  # the body ends early
    lo_cut = kw.header(2, 5, 9) + struct.pack(">ib", -1, 0) + struct.pack(">i", 1)
    report(closes(kw.frame(lying)) and closes(cut) and closes(kw.frame(lo_cut)) and
           one(kw.fetch(owner(A), V, [(TOPIC, [(A, 49, 1 << 20)])]))["hwm"] == 50,
           "a Fetch with a lying topic count, a cut Fetch body and a cut ListOffsets body "
           "each close their connection; others are served on")

# -- long-poll --------------------------------------------------------------------------
resp = kw.fetch(owner(C), V, [(TOPIC, [(C, C_HWM, 1 << 20)])], max_wait=300)
r = one(resp)
report(r["error"] == 0 and r["records"] == b"" and r["hwm"] == C_HWM,
       "%s: a long-poll at the end of a partition answers at max_wait with no records" % PHASE)
resp = kw.fetch(owner(A), V, [(TOPIC, [(A, 0, 1 << 20)])], max_wait=300, min_bytes=1 << 24)
r = one(resp)
report(r["error"] == 0 and len(kw.records(r["records"])) == 50,
       "%s: min_bytes above what exists answers at max_wait with what there is" % PHASE)

if PHASE == "first":
    # Waits up to 120 s for data, the socket up to 60 s: an answer means the write woke it.
    hwm_c = 0
    holder = {}

    def waiter():
        try:
            s = kw.connect(port_of(leaders[C]), timeout=60)
            holder["resp"] = kw.fetch(s, V, [(TOPIC, [(C, hwm_c, 1 << 20)])],
                                      max_wait=120000)
        except Exception as e:  # noqa: BLE001 - reported below
            holder["err"] = repr(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    produce(producer(), C, [b"wake-up"])
    t.join()
    ok = "resp" in holder
    recs = kw.records(one(holder["resp"])["records"]) if ok else []
    report(ok and [x[3] for x in recs] == [b"wake-up"],
           "a long-poll with max_wait 120 s is answered by the record written meanwhile%s"
           % ("" if ok else " (%s)" % holder.get("err")))

    # Across shards: a long-poll on another shard waits max_wait for remote data.
    if SHARDS > 1:
        s = kw.connect(port_of((leaders[C] + 1) % SHARDS))
        resp = kw.fetch(s, V, [(TOPIC, [(C, 1, 1 << 20)])], max_wait=200)
        report(one(resp)["error"] == 0 and one(resp)["hwm"] == 1 and
               one(resp)["records"] == b"",
               "a forwarded long-poll at the end answers at max_wait with the owner's hwm")
    else:
        skip("a forwarded long-poll answers at max_wait", "one shard")

# -- ListOffsets ------------------------------------------------------------------------
base = 1  # D's timestamped records follow its 20 KB record
for sh in range(SHARDS):
    res = kw.list_offsets(conns[sh], 5, [(TOPIC, [(D, T0 + 35)])])[(TOPIC, D)]
    res_last = kw.list_offsets(conns[sh], 5, [(TOPIC, [(D, T0 + 90)])])[(TOPIC, D)]
    res_none = kw.list_offsets(conns[sh], 5, [(TOPIC, [(D, T0 + 91)])])[(TOPIC, D)]
    res_first = kw.list_offsets(conns[sh], 3, [(TOPIC, [(D, T0 - 5)])])[(TOPIC, D)]
    early = kw.list_offsets(conns[sh], 1, [(TOPIC, [(D, -2)])])[(TOPIC, D)]
    late = kw.list_offsets(conns[sh], 2, [(TOPIC, [(D, -1)])])[(TOPIC, D)]
    epoch = kw.list_offsets(conns[sh], 4, [(TOPIC, [(D, -1, 1)])])[(TOPIC, D)]
    unknown = kw.list_offsets(conns[sh], 5, [("no-such-topic", [(0, -1)])])
    report(early[:3] == (0, -1, 0) and late[:3] == (0, -1, 11) and
           res == (0, T0 + 40, base + 4, 0) and res_last == (0, T0 + 90, base + 9, 0) and
           res_none == (0, -1, -1, -1) and res_first == (0, T0, base, None) and
           epoch[0] == 75 and
           unknown[("no-such-topic", 0)][0] == 3,
           "%s: ListOffsets via shard %d: earliest 0, latest 11, by time the exact record "
           "(%s), none after the last, epoch 1 is 75, unknown topic 3" % (PHASE, sh, res))
