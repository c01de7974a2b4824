#!/usr/bin/python3
# tests/fuzz/make-corpus.py: writes the seed corpora of the fuzz targets: one real request
# of each API and version sluice answers (tests/fuzz/corpus/request/, the bytes after the
# 4-byte size prefix, laid out as Kafka's message schemas say), and record batches and
# shard-log frames (tests/fuzz/corpus/batch/, behind fuzz_batch's mode byte). The seeds
# are committed; rerun this (python3 tests/fuzz/make-corpus.py [DIR]) after adding an
# API. It needs nothing outside Python's standard library.
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
    # Keys sluice does not answer, and a version out of range.
    yield "unknown_key", header(99, 0)
    yield "metadata-v9", header(3, 9) + b"\0\0\0"


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


main()
