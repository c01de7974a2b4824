# tests/integration/kcat_roundtrip.py: input generator and checker of kcat-roundtrip.sh
# (Debian's /usr/bin/python3, standard library only). Prints "ok: what" / "fail: what".
#   gen DIR COUNT CHUNKS      writes DIR/chunk-J.txt: "key:value" lines, kcat -P -K: input
#   check DIR CHUNKS OUT      compares kcat -C output OUT ("%p\t%o\t%k\t%h\t%s\n") with
#                             the chunks: every message once, keys, values and headers
#                             byte for byte, each partition's offsets 0..n-1 holding its
#                             messages in the order they were written
#   expect-q DIR OUT CHUNK    prints, per partition, the offset of its first message of
#                             chunk CHUNK or a later one (what kcat -Q must answer for a
#                             time between chunks CHUNK-1 and CHUNK; -1 when it has none,
#                             as Kafka answers): "P OFFSET" lines
import os
import random
import sys

# Value bytes: printable ASCII without the key delimiter ':' and kcat's output field
# separator '\t' (newlines split messages).
ALPHABET = bytes(c for c in range(32, 127) if c not in b":\\")


def headers_of(chunk):
    """The -H flags of chunk J, as kcat -C prints them (%h: n=v,n=v)."""
    return [("chunk", str(chunk)), ("trace", "t-%d-%s" % (chunk, "x" * (chunk * 7)))]


def gen(d, count, chunks):
    rnd = random.Random(20240601)
    per = count // chunks
    for j in range(chunks):
        with open(os.path.join(d, "chunk-%d.txt" % j), "wb") as f:
            for i in range(j * per, count if j == chunks - 1 else (j + 1) * per):
                n = rnd.randrange(1, 300)
                value = b"v%06d|" % i + bytes(rnd.choice(ALPHABET) for _ in range(n))
                f.write(b"k%06d:" % i + value + b"\n")


def load_sent(d, chunks):
    """[(key, value, headers, chunk)] in the order they were written."""
    sent = []
    for j in range(chunks):
        hdr = ",".join("%s=%s" % kv for kv in headers_of(j)).encode()
        with open(os.path.join(d, "chunk-%d.txt" % j), "rb") as f:
            for line in f:
                key, value = line.rstrip(b"\n").split(b":", 1)
                sent.append((key, value, hdr, j))
    return sent


def load_got(out):
    """{partition: [(offset, key, headers, value)]} sorted by offset."""
    got = {}
    with open(out, "rb") as f:
        for line in f:
            fields = line.rstrip(b"\n").split(b"\t", 4)
            if len(fields) != 5:
                raise ValueError("bad output line %r" % line[:200])
            p, o, k, h, v = fields
            got.setdefault(int(p), []).append((int(o), k, h, v))
    for p in got:
        got[p].sort()
    return got


def report(good, what):
    print(("ok: " if good else "fail: ") + what, flush=True)


def check(d, chunks, out):
    sent = load_sent(d, chunks)
    got = load_got(out)
    total = sum(len(v) for v in got.values())
    where = {}
    for p, msgs in got.items():
        for o, k, h, v in msgs:
            where.setdefault(k, []).append((p, o, h, v))
    dup = sum(1 for v in where.values() if len(v) > 1)
    missing = sum(1 for k, _, _, _ in sent if k not in where)
    report(total == len(sent) and dup == 0 and missing == 0,
           "all %d messages came back exactly once (got %d, %d duplicated, %d missing)"
           % (len(sent), total, dup, missing))
    bad = [k for k, v, h, _ in sent if k in where and (where[k][0][3], where[k][0][2]) != (v, h)]
    report(not bad, "keys, values and headers are byte-identical (%d differ%s)"
           % (len(bad), ": %r" % bad[:3] if bad else ""))
    order_ok, holes = True, 0
    for p, msgs in got.items():
        if [m[0] for m in msgs] != list(range(len(msgs))):
            holes += 1
        want = [k for k, _, _, _ in sent if k in where and where[k][0][0] == p]
        if [m[1] for m in msgs] != want:
            order_ok = False
    report(order_ok and holes == 0 and len(got) > 1,
           "each of %d partitions holds offsets 0..n-1 in the order written (%d with gaps)"
           % (len(got), holes))


def expect_q(d, out, chunk):
    sent = load_sent(d, chunk + 1)
    got = load_got(out)
    chunk_of = {k: j for k, _, _, j in sent}
    for p in sorted(got):
        first = next((o for o, k, _, _ in got[p] if chunk_of.get(k, chunk) >= chunk), -1)
        print("%d %d" % (p, first))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "expect-q":
        expect_q(sys.argv[2], sys.argv[3], int(sys.argv[4]))
