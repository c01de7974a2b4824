# tests/integration/kafka_wire.py: a small raw Kafka client for the integration tests
# (Debian's /usr/bin/python3, standard library only): request framing with header v1,
# Metadata v1, Fetch v4-11 and ListOffsets v1-5 requests and their response parsers
# (layouts per Kafka's FetchRequest/FetchResponse/ListOffsetRequest/ListOffsetResponse
# .json), and a RecordBatch v2 reader that walks uncompressed records (offsets,
# timestamps, keys, values, headers). It checks nothing by itself; the tests do.
import socket
import struct

HOST = "127.0.0.1"


def connect(port, timeout=30.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def header(key, version, corr, client=b"sluice-test"):
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


def string(b):
    return struct.pack(">h", len(b)) + b


class Reader:
    def __init__(self, b, p=0):
        self.b, self.p = b, p

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def raw(self, n):
        v = self.b[self.p:self.p + n]
        if len(v) != n:
            raise ValueError("short read")
        self.p += n
        return v

    def string(self):
        n = self.take(">h")
        return None if n < 0 else self.raw(n).decode()

    def uvarint(self):
        shift, v = 0, 0
        while True:
            c = self.b[self.p]
            self.p += 1
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                return v
            shift += 7

    def varint(self):
        z = self.uvarint()
        return (z >> 1) ^ -(z & 1)

    def left(self):
        return len(self.b) - self.p


# ---- Metadata v1 ----

def metadata(s, topics, corr=1):
    body = struct.pack(">i", len(topics)) + b"".join(string(t.encode()) for t in topics)
    s.sendall(frame(header(3, 1, corr) + body))
    r = Reader(response(s))
    r.take(">i")
    brokers = {}
    for _ in range(r.take(">i")):
        node, host, port, _rack = r.take(">i"), r.string(), r.take(">i"), r.string()
        brokers[node] = port
    r.take(">i")  # controller
    out = {}
    for _ in range(r.take(">i")):
        err, name, _internal = r.take(">h"), r.string(), r.take(">?")
        parts = {}
        for _ in range(r.take(">i")):
            _perr, idx, leader = r.take(">h"), r.take(">i"), r.take(">i")
            [r.take(">i") for _ in range(r.take(">i"))]
            [r.take(">i") for _ in range(r.take(">i"))]
            parts[idx] = leader
        out[name] = (err, parts)
    return brokers, out


# ---- Fetch ----

def fetch_request(version, topics, max_wait=0, min_bytes=1, max_bytes=0x7FFFFFFF,
                  isolation=0, session_id=0, epoch=-1, corr=1):
    """TOPICS: [(name, [(partition, offset, partition_max_bytes[, leader_epoch])])]."""
    body = struct.pack(">iiii", -1, max_wait, min_bytes, max_bytes) + struct.pack(">b", isolation)
    if version >= 7:
        body += struct.pack(">ii", session_id, epoch)
    body += struct.pack(">i", len(topics))
    for name, parts in topics:
        body += string(name.encode()) + struct.pack(">i", len(parts))
        for p in parts:
            part, offset, pmax = p[0], p[1], p[2]
            epoch_p = p[3] if len(p) > 3 else -1
            body += struct.pack(">i", part)
            if version >= 9:
                body += struct.pack(">i", epoch_p)
            body += struct.pack(">q", offset)
            if version >= 5:
                body += struct.pack(">q", -1)
            body += struct.pack(">i", pmax)
    if version >= 7:
        body += struct.pack(">i", 0)  # forgotten topics
    if version >= 11:
        body += string(b"")
    return frame(header(1, version, corr) + body)


def parse_fetch(body, version):
    """Returns {corr, error, session_id, topics: [(name, [partition dict])]}."""
    r = Reader(body)
    out = {"corr": r.take(">i"), "throttle": r.take(">i"), "error": 0, "session_id": 0}
    if version >= 7:
        out["error"], out["session_id"] = r.take(">h"), r.take(">i")
    topics = []
    for _ in range(r.take(">i")):
        name = r.string()
        parts = []
        for _ in range(r.take(">i")):
            p = {"partition": r.take(">i"), "error": r.take(">h"), "hwm": r.take(">q"),
                 "lso": r.take(">q")}
            if version >= 5:
                p["log_start"] = r.take(">q")
            n = r.take(">i")
            p["aborted"] = None if n < 0 else [r.take(">qq") for _ in range(n)]
            if version >= 11:
                p["preferred"] = r.take(">i")
            size = r.take(">i")
            p["records"] = r.raw(size) if size > 0 else b""
            parts.append(p)
        topics.append((name, parts))
    out["topics"] = topics
    if r.left() != 0:
        raise ValueError("%d bytes after the Fetch response" % r.left())
    return out


def fetch(s, version, topics, **kw):
    s.sendall(fetch_request(version, topics, **kw))
    return parse_fetch(response(s), version)


# ---- RecordBatch v2 ----

def batches(data):
    """Splits whole batches: [(base_offset, header dict, batch bytes)]."""
    out, p = [], 0
    while p < len(data):
        base, length = struct.unpack_from(">qi", data, p)
        b = data[p:p + 12 + length]
        if len(b) != 12 + length:
            raise ValueError("partial batch at %d" % p)
        (_ple, magic, crc, attr, lod, base_ts, max_ts, pid, pep, seq,
         count) = struct.unpack_from(">ibIhiqqqhii", b, 12)
        out.append((base, {"magic": magic, "attributes": attr, "last_offset_delta": lod,
                           "base_timestamp": base_ts, "max_timestamp": max_ts,
                           "producer_id": pid, "count": count, "crc": crc}, b))
        p += 12 + length
    return out


def records(data):
    """Walks the uncompressed records of every batch in DATA:
    [(offset, timestamp, key, value, [(hkey, hvalue)])]."""
    out = []
    for base, h, b in batches(data):
        if h["attributes"] & 7:
            raise ValueError("compressed batch at %d" % base)
        r = Reader(b, 61)
        for _ in range(h["count"]):
            length = r.varint()
            end = r.p + length
            r.take(">b")
            ts = r.varint()
            od = r.varint()
            kl = r.varint()
            key = None if kl < 0 else r.raw(kl)
            vl = r.varint()
            value = None if vl < 0 else r.raw(vl)
            hdrs = []
            for _ in range(r.varint()):
                hk = r.raw(r.varint())
                hl = r.varint()
                hdrs.append((hk, None if hl < 0 else r.raw(hl)))
            r.p = end
            out.append((base + od, h["base_timestamp"] + ts, key, value, hdrs))
    return out


# ---- ListOffsets ----

def list_offsets(s, version, topics, isolation=0, corr=1):
    """TOPICS: [(name, [(partition, timestamp[, leader_epoch])])]. Returns
    {(name, partition): (error, timestamp, offset, leader_epoch or None)}."""
    body = struct.pack(">i", -1)
    if version >= 2:
        body += struct.pack(">b", isolation)
    body += struct.pack(">i", len(topics))
    for name, parts in topics:
        body += string(name.encode()) + struct.pack(">i", len(parts))
        for p in parts:
            body += struct.pack(">i", p[0])
            if version >= 4:
                body += struct.pack(">i", p[2] if len(p) > 2 else -1)
            body += struct.pack(">q", p[1])
    s.sendall(frame(header(2, version, corr) + body))
    r = Reader(response(s))
    r.take(">i")
    if version >= 2:
        r.take(">i")
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            part, err, ts, off = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q")
            ep = r.take(">i") if version >= 4 else None
            out[(name, part)] = (err, ts, off, ep)
    if r.left() != 0:
        raise ValueError("%d bytes after the ListOffsets response" % r.left())
    return out
