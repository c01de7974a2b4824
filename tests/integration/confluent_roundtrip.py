# tests/integration/confluent_roundtrip.py: the confluent-kafka (librdkafka) side of
# confluent-roundtrip.sh, for Debian's /usr/bin/python3 with python3-confluent-kafka.
# Prints "ok: what" / "fail: what" per check and "# ..." figures.
#
#   produce PORT PREFIX COUNT STATE   an idempotent producer (enable.idempotence=true,
#       acks=all) writes COUNT messages to topic PREFIX-CODEC for each codec (none, gzip,
#       snappy, lz4, zstd); every delivery report must be a success; (partition, offset)
#       of each message is saved in STATE.
#   verify PORT STATE WHAT            a consumer with assign() reads every partition of
#       each topic from the beginning: every message is at the offset its delivery
#       report gave, with its key, value and headers, and nothing else is there.
#   killprod PORT TOPIC OUT STOP      produces until the file STOP exists (then flushes
#       for up to 60 s), appending "partition offset index" to OUT for each successful
#       delivery report as it arrives.
#   killcheck PORT TOPIC OUT          every message OUT lists is at its offset; no
#       message index appears twice in the topic.
#
# Message i of a topic has key b"%08d" % i, one header ("i", decimal i) and a value of
# 40 to 240 bytes made from i (so it compresses, and is checked without storing it).
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 12


def report(good, what):
    print(("ok: " if good else "fail: ") + what, flush=True)


def diag(what):
    print("# " + what, flush=True)


def key_of(i):
    return b"%08d" % i


def value_of(i):
    word = b"sluice-%d-" % (i % 97)
    return (b"%08d:" % i) + word * (4 + (i * 7919) % 20)


def producer(port, codec, extra=None):
    conf = {"bootstrap.servers": "127.0.0.1:%d" % port, "enable.idempotence": True,
            "acks": "all", "compression.type": codec, "linger.ms": 5,
            "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 1048576}
    conf.update(extra or {})
    return Producer(conf)


def consumer(port):
    return Consumer({"bootstrap.servers": "127.0.0.1:%d" % port, "group.id": "sluice-test",
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "fetch.wait.max.ms": 100, "log_level": 3})


def read_all(port, topic, deadline_s=120):
    """Every message of TOPIC: {(partition, offset): (key, value, headers)}."""
    c = consumer(port)
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, -2) for p in parts])  # -2: OFFSET_BEGINNING
    eof, got = set(), {}
    end = time.time() + deadline_s
    while len(eof) < len(parts) and time.time() < end:
        for m in c.consume(num_messages=10000, timeout=1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                continue
            eof.discard(m.partition())
            got[(m.partition(), m.offset())] = (m.key(), m.value(), m.headers())
    c.close()
    return got, len(eof) == len(parts)


def cmd_produce(port, prefix, count, state):
    saved = {}
    for codec in CODECS:
        topic = "%s-%s" % (prefix, codec)
        p = producer(port, codec)
        where = [None] * count
        failed = []

        def dr(err, msg, i=None):
            if err is not None:
                failed.append(str(err))
            else:
                where[int(msg.key())] = (msg.partition(), msg.offset())

        t0 = time.time()
        for i in range(count):
            while True:
                try:
                    p.produce(topic, key=key_of(i), value=value_of(i),
                              headers=[("i", b"%d" % i)], on_delivery=dr)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 1000 == 0:
                p.poll(0)
        left = p.flush(120)
        dt = time.time() - t0
        ok = left == 0 and not failed and all(w is not None for w in where)
        parts = len({w[0] for w in where if w})
        report(ok and parts == PARTITIONS,
               "%s: an idempotent acks=all producer gets %d successful delivery reports "
               "over %d partitions%s" % (codec, count, parts,
                                         "" if ok else " (%d left, %d failed: %s)"
                                         % (left, len(failed), failed[:2])))
        diag("%s: produced %d messages in %.2f s (%.0f msgs/s)" % (codec, count, dt, count / dt))
        saved[topic] = where
    with open(state, "w") as f:
        json.dump(saved, f)


def cmd_verify(port, state, what):
    with open(state) as f:
        saved = json.load(f)
    for topic, where in saved.items():
        t0 = time.time()
        got, complete = read_all(port, topic)
        dt = time.time() - t0
        bad = []
        for i, (part, off) in enumerate(where):
            m = got.get((part, off))
            if m != (key_of(i), value_of(i), [("i", b"%d" % i)]):
                bad.append((i, part, off))
        extra = len(got) - len(where)
        report(complete and not bad and extra == 0,
               "%s: %s: a consumer with assign() reads all %d messages back at their "
               "offsets, identical (%d differ, %d extra)" % (what, topic, len(where), len(bad),
                                                             extra))
        diag("%s: consumed %d messages in %.2f s (%.0f msgs/s)" % (topic, len(got), dt,
                                                                   len(got) / dt))


def cmd_killprod(port, topic, out, stop):
    p = producer(port, "lz4", {"message.timeout.ms": 60000})
    f = open(out, "a")

    def dr(err, msg):
        if err is None:
            f.write("%d %d %s\n" % (msg.partition(), msg.offset(), msg.key().decode()))

    i = 0
    while not os.path.exists(stop):
        try:
            p.produce(topic, key=key_of(i), value=value_of(i), headers=[("i", b"%d" % i)],
                      on_delivery=dr)
            i += 1
        except BufferError:
            p.poll(0.05)
        if i % 500 == 0:
            p.poll(0)
            f.flush()
            if i % 20000 == 0:
                time.sleep(0.05)  # a steady stream, not one burst
    left = p.flush(60)
    f.close()
    diag("killprod: %d messages produced, %d without a delivery report at exit" % (i, left))


def cmd_killcheck(port, topic, out):
    acked = {}
    with open(out) as f:
        for line in f:
            part, off, key = line.split()
            acked[int(key)] = (int(part), int(off))
    got, complete = read_all(port, topic)
    seen = {}
    for (part, off), (key, value, hdrs) in got.items():
        seen.setdefault(int(key), []).append((part, off))
    twice = [k for k, v in seen.items() if len(v) > 1]
    lost = [k for k, po in acked.items() if got.get(po, (None,))[0] != key_of(k)]
    corrupt = [po for po, (key, value, hdrs) in got.items() if value != value_of(int(key))]
    report(complete and len(acked) > 0 and not lost,
           "after SIGKILL and restart every one of the %d acknowledged messages is at its "
           "offset (%d missing)" % (len(acked), len(lost)))
    report(complete and not twice and not corrupt,
           "no message is in the log twice (%d of %d stored twice, %d corrupt)"
           % (len(twice), len(seen), len(corrupt)))
    diag("kill run: %d acknowledged, %d stored (stored beyond acknowledged: written, their "
         "reports lost)" % (len(acked), len(seen)))


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "produce":
        cmd_produce(port, sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif cmd == "verify":
        cmd_verify(port, sys.argv[3], sys.argv[4])
    elif cmd == "killprod":
        cmd_killprod(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif cmd == "killcheck":
        cmd_killcheck(port, sys.argv[3], sys.argv[4])
