#!/usr/bin/python3
# tests/integration/admin_client.py: the admin APIs of a running sluiced as clients see
# them, for tests/integration/admin.sh: confluent-kafka's AdminClient (librdkafka) creates
# topics (validate_only too), is refused for an existing name, grows partitions, describes
# a topic's and each broker's configs and deletes topics, with Metadata checked after each
# change; then a raw socket checks the exact answers of CreateTopics, DeleteTopics,
# CreatePartitions and DescribeConfigs at every version for the cases AdminClient does
# not send (assignments, replication factor, a null config value, repeated names, broker
# ids, unknown resource types, v0 layouts). Run with Debian's /usr/bin/python3 (it has
# python3-confluent-kafka). Each check prints one "ok: what" or "fail: what" line.
#
#   admin_client.py admin PORT SHARDS NUM_PARTITIONS   the AdminClient checks
#   admin_client.py raw PORT SHARDS NUM_PARTITIONS     the raw-socket checks
#   admin_client.py kept PORT                          after a restart: the kept topic
import socket
import struct
import sys

HOST = "127.0.0.1"
# DescribeConfigsResponse.ConfigSource ids.
TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5


def report(good, what):
    print(("ok: " if good else "fail: ") + what, flush=True)


# ---- AdminClient ----------------------------------------------------------------------

def admin(port):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": "%s:%d" % (HOST, port),
                        "broker.address.family": "v4"})


def outcome(futures):
    """{name: None or the KafkaError code} of a dict of futures."""
    out = {}
    for name, f in futures.items():
        try:
            f.result()
            out[name] = None
        except Exception as e:  # KafkaException carrying a KafkaError
            err = e.args[0] if e.args else e
            out[name] = err.code() if hasattr(err, "code") else str(err)
    return out


def partitions_of(a):
    md = a.list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}


def cmd_admin(port, shards, num_partitions):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic
    a = admin(port)
    t1, t2, t3, keep = "admin.one", "admin.two", "admin.validate-only", "admin.keep"

    got = outcome(a.create_topics([NewTopic(t1, 6, 1, config={"retention.ms": "3600000"}),
                                   NewTopic(t2, 3, 1),
                                   NewTopic(keep, 2, 1, config={"retention.ms": "1234",
                                                                "cleanup.policy": "compact"})],
                                  request_timeout=15))
    report(got == {t1: None, t2: None, keep: None},
           "CreateTopics: three topics created (got %s)" % got)
    parts = partitions_of(a)
    report(parts.get(t1) == 6 and parts.get(t2) == 3 and parts.get(keep) == 2,
           "Metadata lists them with 6, 3 and 2 partitions (got %s)" % parts)

    got = outcome(a.create_topics([NewTopic(t3, 4, 1)], validate_only=True, request_timeout=15))
    parts = partitions_of(a)
    report(got == {t3: None} and t3 not in parts,
           "CreateTopics validate_only: answered without error, nothing created (got %s)" % got)

    got = outcome(a.create_topics([NewTopic(t1, 6, 1)], request_timeout=15))
    report(got == {t1: KafkaError.TOPIC_ALREADY_EXISTS},
           "CreateTopics of an existing topic: TOPIC_ALREADY_EXISTS (got %s)" % got)

    got = outcome(a.create_topics([NewTopic("admin.bad/name", 1, 1),
                                   NewTopic("admin.rf3", 1, 3),
                                   NewTopic("admin.badcfg", 1, 1,
                                            config={"no.such.config": "1"}),
                                   NewTopic("admin.badval", 1, 1,
                                            config={"retention.ms": "soon"})],
                                  request_timeout=15))
    want = {"admin.bad/name": KafkaError.TOPIC_EXCEPTION,
            "admin.rf3": KafkaError.INVALID_REPLICATION_FACTOR,
            "admin.badcfg": KafkaError.INVALID_CONFIG,
            "admin.badval": KafkaError.INVALID_CONFIG}
    report(got == want and not any(n in partitions_of(a) for n in want),
           "CreateTopics refusals: invalid name 17, replication factor 3 38, unknown config "
           "and bad value 40, none created (got %s)" % got)

    got = outcome(a.create_partitions([NewPartitions(t1, 10)], request_timeout=15))
    parts = partitions_of(a)
    report(got == {t1: None} and parts.get(t1) == 10,
           "CreatePartitions 6 -> 10: Metadata shows 10 (got %s, %s)" % (got, parts.get(t1)))
    got = outcome(a.create_partitions([NewPartitions(t1, 12)], validate_only=True,
                                      request_timeout=15))
    report(got == {t1: None} and partitions_of(a).get(t1) == 10,
           "CreatePartitions validate_only 10 -> 12: no error, still 10 (got %s)" % got)
    got = outcome(a.create_partitions([NewPartitions(t1, 5), NewPartitions(t2, 3),
                                       NewPartitions("admin.none", 4)], request_timeout=15))
    want = {t1: KafkaError.INVALID_PARTITIONS, t2: KafkaError.INVALID_PARTITIONS,
            "admin.none": KafkaError.UNKNOWN_TOPIC_OR_PART}
    report(got == want, "CreatePartitions shrinking or keeping the count: 37; unknown topic: 3 "
           "(got %s)" % got)

    res = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t1)],
                             request_timeout=15)
    cfg = list(res.values())[0].result()
    rms, rb, cp = cfg.get("retention.ms"), cfg.get("retention.bytes"), cfg.get("cleanup.policy")
    report(rms is not None and rms.value == "3600000" and rms.source == TOPIC_CONFIG and
           not rms.is_default and rb is not None and rb.value == "-1" and
           rb.source == DEFAULT_CONFIG and cp is not None and cp.value == "delete",
           "DescribeConfigs topic: retention.ms 3600000 from TOPIC_CONFIG, retention.bytes -1 "
           "and cleanup.policy delete by default (got %s)" %
           {k: (v.value, v.source) for k, v in cfg.items()})

    for b in range(shards):
        res = a.describe_configs([ConfigResource(ConfigResource.Type.BROKER, str(b))],
                                 request_timeout=15)
        cfg = list(res.values())[0].result()
        np, pt, rms = cfg.get("num.partitions"), cfg.get("port"), cfg.get("log.retention.ms")
        report(np is not None and np.value == str(num_partitions) and
               np.source == STATIC_BROKER_CONFIG and pt is not None and
               pt.value == str(port + b) and rms is not None and rms.value == "604800000" and
               rms.source == DEFAULT_CONFIG and rms.is_read_only,
               "DescribeConfigs broker %d (sent to shard %d): num.partitions %d as set, port "
               "%d, log.retention.ms by default (got %s)" %
               (b, b, num_partitions, port + b,
                {k: (v.value, v.source) for k, v in cfg.items()}))

    res = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "admin.none")],
                             request_timeout=15)
    got = outcome(res)
    report(list(got.values()) == [KafkaError.UNKNOWN_TOPIC_OR_PART],
           "DescribeConfigs of a missing topic: UNKNOWN_TOPIC_OR_PARTITION (got %s)" % got)

    got = outcome(a.delete_topics([t1, t2], request_timeout=15))
    parts = partitions_of(a)
    report(got == {t1: None, t2: None} and t1 not in parts and t2 not in parts and
           keep in parts, "DeleteTopics: both deleted, Metadata no longer lists them "
           "(got %s, %s)" % (got, sorted(parts)))
    got = outcome(a.delete_topics([t1], request_timeout=15))
    report(got == {t1: KafkaError.UNKNOWN_TOPIC_OR_PART},
           "DeleteTopics of a deleted topic: UNKNOWN_TOPIC_OR_PARTITION (got %s)" % got)
    # The name can be used again.
    got = outcome(a.create_topics([NewTopic(t1, 2, 1)], request_timeout=15))
    parts = partitions_of(a)
    report(got == {t1: None} and parts.get(t1) == 2,
           "a deleted topic's name can be created again, with its new count (got %s)" % got)


def cmd_kept(port):
    from confluent_kafka.admin import ConfigResource
    a = admin(port)
    parts = partitions_of(a)
    res = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "admin.keep")],
                             request_timeout=15)
    cfg = list(res.values())[0].result()
    rms, cp = cfg.get("retention.ms"), cfg.get("cleanup.policy")
    report(parts.get("admin.keep") == 2 and "admin.two" not in parts and
           rms is not None and rms.value == "1234" and rms.source == TOPIC_CONFIG and
           cp is not None and cp.value == "compact",
           "after a restart: the kept topic, its 2 partitions and configs are there, the "
           "deleted one is not (got %s)" % sorted(parts))


# ---- raw socket -----------------------------------------------------------------------

def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">h", len(b)) + b


def ns(text):
    return struct.pack(">h", -1) if text is None else s(text)


def arr(items):
    return struct.pack(">i", len(items)) + b"".join(items)


def frame(key, version, corr, body):
    payload = struct.pack(">hhi", key, version, corr) + s("admin-raw") + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def call(sock, key, version, body, corr=1):
    sock.sendall(frame(key, version, corr, body))
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    resp = recv_exact(sock, size)
    got = struct.unpack(">i", resp[:4])[0]
    if got != corr:
        raise ValueError("correlation id %d, expected %d" % (got, corr))
    return Reader(resp[4:])


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
        v = self.b[self.p:self.p + n].decode()
        self.p += n
        return v

    def done(self):
        return self.p == len(self.b)


def ct_topic(name, partitions=1, replication=1, assignments=(), configs=()):
    return (s(name) + struct.pack(">ih", partitions, replication) +
            arr([struct.pack(">i", p) + arr([struct.pack(">i", b) for b in brokers])
                 for p, brokers in assignments]) +
            arr([s(k) + ns(v) for k, v in configs]))


def create_topics(sock, version, topics, validate_only=False):
    body = arr(topics) + struct.pack(">i", 10000)
    if version >= 1:
        body += struct.pack(">?", validate_only)
    r = call(sock, 19, version, body)
    if version >= 2:
        r.take(">i")
    out = []
    for _ in range(r.take(">i")):
        name, err = r.string(), r.take(">h")
        msg = r.string() if version >= 1 else "(v0)"
        out.append((name, err, msg))
    return out, r.done()


def metadata_partitions(sock, names):
    body = arr([s(n) for n in names]) + b"\0"  # v4: allow_auto_topic_creation false
    r = call(sock, 3, 4, body)
    r.take(">i")
    for _ in range(r.take(">i")):
        r.take(">i"), r.string(), r.take(">i"), r.string()
    r.string(), r.take(">i")
    out = {}
    for _ in range(r.take(">i")):
        err, name, _internal = r.take(">h"), r.string(), r.take(">?")
        n = r.take(">i")
        for _ in range(n):  # v4: no leader epoch (v7+), no offline replicas (v5+)
            r.take(">hii")
            [r.take(">i") for _ in range(r.take(">i"))]
            [r.take(">i") for _ in range(r.take(">i"))]
        out[name] = n if err == 0 else -err
    return out


def cmd_raw(port, shards, num_partitions):
    sock = socket.create_connection((HOST, port), timeout=10)

    # CreateTopics: every refusal at once, in v3 (throttle, messages) and v0 layouts.
    topics = [ct_topic("raw.assigned", -1, -1, assignments=[(0, [0])]),
              ct_topic("raw.both", 2, 1, assignments=[(0, [0])]),
              ct_topic("raw.zero", 0), ct_topic("raw.huge", 70000),
              ct_topic("raw.rf2", 1, 2), ct_topic("raw.nullcfg", configs=[("retention.ms", None)]),
              ct_topic("raw.dup"), ct_topic("raw.dup"), ct_topic(".."),
              ct_topic("raw.ok", -1, -1, configs=[("retention.ms", "1"), ("retention.ms", "2")])]
    got, whole = create_topics(sock, 3, topics)
    codes = [(n, e) for n, e, _ in got]
    want = [("raw.assigned", 39), ("raw.both", 42), ("raw.zero", 37), ("raw.huge", 37),
            ("raw.rf2", 38), ("raw.nullcfg", 42), ("raw.dup", 42), ("..", 17), ("raw.ok", 0)]
    msgs_ok = all((m is None) == (e == 0) for _, e, m in got)
    report(whole and codes == want and msgs_ok,
           "CreateTopics v3: assignments 39 (with counts 42), 0 and 70000 partitions 37, "
           "replication 2 38, a null config value 42, a repeated name 42 answered once, '..' "
           "17, -1/-1 created with the defaults; messages only on errors (got %s)" % got)
    parts = metadata_partitions(sock, ["raw.ok", "raw.dup", "raw.assigned"])
    report(parts == {"raw.ok": num_partitions, "raw.dup": -3, "raw.assigned": -3},
           "only raw.ok exists, with num.partitions partitions (got %s)" % parts)
    got, whole = create_topics(sock, 0, [ct_topic("raw.ok"), ct_topic("raw.v0")])
    report(whole and got == [("raw.ok", 36, "(v0)"), ("raw.v0", 0, "(v0)")],
           "CreateTopics v0: no messages, no throttle; existing 36, new 0 (got %s)" % got)
    got, whole = create_topics(sock, 1, [ct_topic("raw.vo"), ct_topic("raw.ok")],
                               validate_only=True)
    report(whole and [(n, e) for n, e, _ in got] == [("raw.vo", 0), ("raw.ok", 36)] and
           metadata_partitions(sock, ["raw.vo"]) == {"raw.vo": -3},
           "CreateTopics v1 validate_only: new 0 and not created, existing 36 (got %s)" % got)

    # Through the last shard (not the controller): its change goes to shard 0, and the
    # answer comes once every shard's table has it.
    last = socket.create_connection((HOST, port + shards - 1), timeout=10)
    got, whole = create_topics(last, 2, [ct_topic("raw.via-last", 3)])
    seen = metadata_partitions(sock, ["raw.via-last"])
    r = call(last, 20, 2, arr([s("raw.via-last")]) + struct.pack(">i", 1000))
    r.take(">i")
    deleted = [(r.string(), r.take(">h")) for _ in range(r.take(">i"))]
    gone = metadata_partitions(sock, ["raw.via-last"])
    last.close()
    report(whole and got == [("raw.via-last", 0, None)] and seen == {"raw.via-last": 3} and
           deleted == [("raw.via-last", 0)] and gone == {"raw.via-last": -3},
           "CreateTopics and DeleteTopics sent to shard %d: shard 0 lists the topic right after "
           "the create and not after the delete (got %s %s %s %s)" %
           (shards - 1, got, seen, deleted, gone))

    # DeleteTopics: repeats answered once, unknown 3, v0 without throttle.
    r = call(sock, 20, 0, arr([s("raw.v0"), s("raw.v0"), s("raw.none")]) + struct.pack(">i", 1000))
    got = [(r.string(), r.take(">h")) for _ in range(r.take(">i"))]
    report(r.done() and got == [("raw.v0", 0), ("raw.none", 3)],
           "DeleteTopics v0: a repeated name deleted and answered once, unknown 3 (got %s)" % got)
    r = call(sock, 20, 3, arr([s("raw.v0")]) + struct.pack(">i", 1000))
    throttle = r.take(">i")
    got = [(r.string(), r.take(">h")) for _ in range(r.take(">i"))]
    report(r.done() and throttle == 0 and got == [("raw.v0", 3)],
           "DeleteTopics v3: throttle 0, the deleted topic now 3 (got %s)" % got)

    # CreatePartitions: assignments 39, repeats 42, validate_only.
    body = arr([s("raw.ok") + struct.pack(">i", num_partitions + 2) +
                arr([arr([struct.pack(">i", 0)])]),
                s("raw.ok") + struct.pack(">ii", num_partitions + 3, -1),
                s("raw.none") + struct.pack(">ii", 3, -1)]) + struct.pack(">i?", 1000, False)
    r = call(sock, 37, 1, body)
    r.take(">i")
    got = [(r.string(), r.take(">h"), r.string()) for _ in range(r.take(">i"))]
    report(r.done() and [(n, e) for n, e, _ in got] == [("raw.ok", 42), ("raw.none", 3)],
           "CreatePartitions v1: a repeated topic 42 answered once, unknown 3 (got %s)" % got)
    body = arr([s("raw.ok") + struct.pack(">i", num_partitions + 2) +
                arr([arr([struct.pack(">i", 0)]), arr([struct.pack(">i", 0)])])])
    r = call(sock, 37, 0, body + struct.pack(">i?", 1000, False))
    r.take(">i")
    got = [(r.string(), r.take(">h"), r.string()) for _ in range(r.take(">i"))]
    report(r.done() and len(got) == 1 and got[0][1] == 39 and "places partitions" in got[0][2],
           "CreatePartitions v0 with an assignment: INVALID_REPLICA_ASSIGNMENT 39 and why "
           "(got %s)" % got)

    # DescribeConfigs: broker ids, types, key filter, v0 is_default.
    def describe(version, resources, synonyms=False):
        body = arr([struct.pack(">b", t) + s(n) +
                    (struct.pack(">i", -1) if k is None else arr([s(x) for x in k]))
                    for t, n, k in resources])
        if version >= 1:
            body += struct.pack(">?", synonyms)
        r = call(sock, 32, version, body)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            err, msg, typ, name = r.take(">h"), r.string(), r.take(">b"), r.string()
            cfgs = {}
            for _ in range(r.take(">i")):
                cname, value, ro = r.string(), r.string(), r.take(">?")
                src = r.take(">?") if version == 0 else r.take(">b")
                r.take(">?")
                syn = []
                if version >= 1:
                    syn = [(r.string(), r.string(), r.take(">b")) for _ in range(r.take(">i"))]
                cfgs[cname] = (value, ro, src, syn)
            out.append((err, msg, typ, name, cfgs))
        return out, r.done()

    other = shards  # no such broker
    got, whole = describe(1, [(4, str(other), None), (4, "zero", None), (8, "0", None),
                              (4, "", None), (2, "raw.none", None), (2, "bad/name", None)])
    codes = [(e, t, n, len(c)) for e, _, t, n, c in got]
    report(whole and codes == [(42, 4, str(other), 0), (42, 4, "zero", 0), (42, 8, "0", 0),
                               (0, 4, "", 0), (3, 2, "raw.none", 0), (17, 2, "bad/name", 0)] and
           "expected 0" in (got[0][1] or ""),
           "DescribeConfigs v1: another broker id 42, a non-integer id 42, type 8 42, '' no "
           "configs, missing topic 3, invalid name 17 (got %s)" % codes)
    got, whole = describe(0, [(4, "0", ["num.partitions", "log.dirs", "no.such"]),
                              (2, "raw.ok", ["retention.ms", "cleanup.policy"])])
    b, t = got[0][4], got[1][4]
    report(whole and sorted(b) == ["log.dirs", "num.partitions"] and
           b["num.partitions"][2] is False and b["num.partitions"][1] is True and
           sorted(t) == ["cleanup.policy", "retention.ms"] and t["retention.ms"][0] == "2" and
           t["retention.ms"][2] is False and t["cleanup.policy"] == ("delete", False, True, []),
           "DescribeConfigs v0: only the keys asked for; is_default false for a set value, "
           "true for a default; a repeated config at creation kept its last value (got %s)" % got)
    got, whole = describe(2, [(2, "raw.ok", ["retention.ms"])], synonyms=True)
    syn = got[0][4]["retention.ms"][3] if whole and got[0][4] else None
    report(whole and syn == [("retention.ms", "2", TOPIC_CONFIG),
                             ("log.retention.ms", "604800000", DEFAULT_CONFIG)],
           "DescribeConfigs v2 with synonyms: the topic's value, then the broker default "
           "(got %s)" % syn)
    got, whole = describe(1, [(2, "raw.ok", ["retention.ms"])], synonyms=False)
    report(whole and got[0][4]["retention.ms"][3] == [],
           "DescribeConfigs v1 without include_synonyms: empty synonym lists")
    sock.close()


cmd = sys.argv[1]
if cmd == "admin":
    cmd_admin(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
elif cmd == "raw":
    cmd_raw(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
elif cmd == "kept":
    cmd_kept(int(sys.argv[2]))
