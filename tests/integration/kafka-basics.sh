#!/bin/bash
# tests/integration/kafka-basics.sh: the Kafka front door of a real sluiced on loopback,
# as clients see it: kcat -L lists every shard as a broker at the advertised host and
# its own port; kcat -L -t NEW auto-creates the topic with num.partitions partitions
# led by shard (hash + p) % shards (FNV-1a, core/meta); a raw-socket client (Debian's /usr/bin/python3)
# checks the ApiVersions bytes at v0, v2 and v3 (error 35 and the list), pipelined and
# byte-by-byte requests answered in order, a Metadata request that spans receive
# buffers, and that each bad input (unknown API key, frame above request-max-bytes,
# negative size, truncated header, unsupported versions) closes only its own
# connection while the daemon keeps serving and counts it; the connection limit
# refuses the extra connection with a log line; SIGTERM exits 0.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

tap_plan 26
PY=/usr/bin/python3
ncpu=$(nproc)
shards=2
[ "$ncpu" -lt 2 ] && shards=1
# The shard log opens its segments O_DIRECT, which tmpfs refuses: keep the data under the
# build directory.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/kafka-basics.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base $((shards + 1)))
common=(--pool-bytes 96m --advertised-host 127.0.0.1 --request-max-bytes 1m)

client() { "$PY" "$TEST_TMP/client.py" "$@"; }
cat >"$TEST_TMP/client.py" <<'EOF'
# Raw Kafka client for kafka-basics.sh: each command prints "ok: what" or "fail: what".
import socket, struct, sys, time

HOST = "127.0.0.1"
# DESIGN §4's accepted maxima; every API is advertised from version 0, and only the
# APIs sluice answers today are advertised (with the consumer-group APIs 8-16 and
# DeleteGroups 42; the SASL APIs 17 and 36 join with their handlers).
DESIGN = [(0, 7), (1, 11), (2, 5), (3, 8), (8, 7), (9, 5), (10, 2), (11, 5), (12, 3),
          (13, 2), (14, 3), (15, 3), (16, 2), (18, 2), (19, 3), (20, 3), (22, 1), (32, 2),
          (37, 1), (42, 1)]


def report(good, what):
    print(("ok: " if good else "fail: ") + what)


def connect(port):
    s = socket.create_connection((HOST, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def header(key, version, corr, client=b"kafka-basics"):
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


def closed(s, wait=5.0):
    """True when the broker closes the connection (EOF or reset) within WAIT seconds."""
    s.settimeout(wait)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def api_versions_expected(corr, error, throttle):
    body = struct.pack(">ihi", corr, error, len(DESIGN))
    for key, vmax in DESIGN:
        body += struct.pack(">hhh", key, 0, vmax)
    if throttle:
        body += struct.pack(">i", 0)
    return body


def api_versions_v3(corr):
    # Header v2: v1 plus an empty tagged-field section; body: compact strings + tags.
    body = bytes([len(b"raw") + 1]) + b"raw" + bytes([len(b"1.0") + 1]) + b"1.0" + b"\0"
    return frame(header(18, 3, corr) + b"\0" + body)


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


def parse_metadata(body, version):
    r = Reader(body)
    out = {"corr": r.take(">i")}
    if version >= 3:
        out["throttle"] = r.take(">i")
    brokers = []
    for _ in range(r.take(">i")):
        b = (r.take(">i"), r.string(), r.take(">i"))
        if version >= 1:
            b += (r.string(),)
        brokers.append(b)
    out["brokers"] = brokers
    if version >= 2:
        out["cluster_id"] = r.string()
    if version >= 1:
        out["controller"] = r.take(">i")
    topics = []
    for _ in range(r.take(">i")):
        err, name = r.take(">h"), r.string()
        if version >= 1:
            r.take(">?")
        parts = []
        for _ in range(r.take(">i")):
            perr, idx, leader = r.take(">h"), r.take(">i"), r.take(">i")
            if version >= 7:
                r.take(">i")
            reps = [r.take(">i") for _ in range(r.take(">i"))]
            isr = [r.take(">i") for _ in range(r.take(">i"))]
            if version >= 5:
                [r.take(">i") for _ in range(r.take(">i"))]
            parts.append((perr, idx, leader, reps, isr))
        if version >= 8:
            r.take(">i")
        topics.append((err, name, parts))
    out["topics"] = topics
    if version >= 8:
        out["cluster_ops"] = r.take(">i")
    out["rest"] = len(body) - r.p
    return out


def cmd_good(port, shards):
    # ApiVersions v0 and v2: the exact bytes.
    s = connect(port)
    s.sendall(frame(header(18, 0, 11)))
    got = response(s)
    report(got == api_versions_expected(11, 0, False),
           "ApiVersions v0: error 0 and every API sluice answers, from version 0, no throttle")
    s.sendall(frame(header(18, 2, 12)))
    got = response(s)
    report(got == api_versions_expected(12, 0, True),
           "ApiVersions v2: the same list and throttle_time_ms 0")
    # v3 (flexible): error 35 with the v0-shaped list, and the connection stays usable.
    s.sendall(api_versions_v3(13))
    got = response(s)
    report(got == api_versions_expected(13, 35, False),
           "ApiVersions v3: error 35 UNSUPPORTED_VERSION with the v0-shaped list")
    s.sendall(frame(header(18, 1, 14)))
    got = response(s)
    report(got == api_versions_expected(14, 0, True),
           "after the v3 answer the connection still serves ApiVersions v1")
    s.close()

    # Metadata v8: brokers, cluster id, controller.
    s = connect(port)
    s.sendall(frame(header(3, 8, 21) + struct.pack(">i???", 0, True, False, False)))
    md = parse_metadata(response(s), 8)
    want = [(i, HOST, port + i, None) for i in range(shards)]
    report(md["corr"] == 21 and md["brokers"] == want and md["controller"] == 0 and
           md["cluster_id"].startswith("sluice-") and md["topics"] == [] and
           md["cluster_ops"] == -2**31 and md["rest"] == 0,
           "Metadata v8: every shard a broker at %s:port+id, controller 0, cluster id %s"
           % (HOST, md["cluster_id"]))

    # Pipelining past the in-flight limit: answers in request order.
    n = 100
    reqs = b""
    for i in range(n):
        if i % 3 == 1:
            reqs += frame(header(3, 1, 1000 + i) + struct.pack(">i", 0))
        else:
            reqs += frame(header(18, i % 3, 1000 + i))
    s.sendall(reqs)
    corrs = [struct.unpack(">i", response(s)[:4])[0] for _ in range(n)]
    report(corrs == list(range(1000, 1000 + n)),
           "%d pipelined requests (beyond the in-flight limit) answered in order" % n)

    # One request a byte at a time: the size prefix and header reassembled.
    req = frame(header(18, 2, 31))
    for b in req:
        s.sendall(bytes([b]))
        time.sleep(0.002)
    report(response(s) == api_versions_expected(31, 0, True),
           "a request sent one byte at a time is reassembled and answered")

    # A request larger than a receive buffer (64 KiB): 6000 unknown topics, no creation.
    names = ["no-such-topic-%06d" % i for i in range(6000)]
    body = struct.pack(">i", len(names))
    for nm in names:
        body += struct.pack(">h", len(nm)) + nm.encode()
    body += struct.pack(">?", False)
    s.sendall(frame(header(3, 4, 41) + body))
    md = parse_metadata(response(s), 4)
    report(md["corr"] == 41 and [t[1] for t in md["topics"]] == names and
           all(t[0] == 3 and t[2] == [] for t in md["topics"]) and md["rest"] == 0,
           "a %d-byte Metadata v4 request spanning buffers: 6000 topics answered "
           "UNKNOWN_TOPIC_OR_PARTITION in order, none created" % (len(body) + 30))

    # An invalid name gets 17.
    bad = "bad/name"
    s.sendall(frame(header(3, 1, 42) + struct.pack(">ih", 1, len(bad)) + bad.encode()))
    md = parse_metadata(response(s), 1)
    report(md["topics"] == [(17, bad, [])],
           "Metadata v1 for an invalid topic name: INVALID_TOPIC_EXCEPTION (17)")
    s.close()


def cmd_bad(port):
    cases = [
        ("an unknown API key (99)", frame(header(99, 0, 1))),
        ("a broker-only API key (LeaderAndIsr, 4)", frame(header(4, 0, 1))),
        ("a size prefix above request-max-bytes (2 MiB > 1 MiB)",
         struct.pack(">i", 2 * 1024 * 1024) + b"\0" * 16),
        ("a negative size prefix", struct.pack(">i", -5) + b"\0" * 8),
        ("a truncated request header (3 bytes)", frame(b"\x00\x12\x00")),
        ("Metadata v9 (flexible, not accepted)", frame(header(3, 9, 1) + b"\0\0\0")),
        ("Produce v2 (advertised, below the accepted minimum 3)",
         frame(header(0, 2, 1) + b"\0" * 12)),
    ]
    for what, data in cases:
        s = connect(port)
        s.sendall(data)
        report(closed(s), "%s closes the connection" % what)
        s.close()
    s = connect(port)
    s.sendall(frame(header(18, 0, 77)))
    report(response(s) == api_versions_expected(77, 0, False),
           "after the bad inputs a new connection is served")
    s.close()


def cmd_limit(port, limit):
    held = []
    for i in range(limit):
        s = connect(port)
        s.sendall(frame(header(18, 0, i)))
        response(s)
        held.append(s)
    extra = connect(port)
    refused = closed(extra)
    for s in held:
        s.sendall(frame(header(18, 0, 5)))
    alive = all(response(s)[:4] == struct.pack(">i", 5) for s in held)
    report(refused and alive, "with %d connections open the next one is closed, and the "
           "%d still work" % (limit, limit))


cmd = sys.argv[1]
if cmd == "good":
    cmd_good(int(sys.argv[2]), int(sys.argv[3]))
elif cmd == "bad":
    cmd_bad(int(sys.argv[2]))
elif cmd == "limit":
    cmd_limit(int(sys.argv[2]), int(sys.argv[3]))
EOF

# report_lines: turns the client's "ok: "/"fail: " lines into TAP checks; a client that
# died records one failure.
report_lines() {
	local out=$1 expect=$2 n=0
	while IFS= read -r line; do
		case "$line" in
		"ok: "*) tap_ok 0 "${line#ok: }"; n=$((n + 1)) ;;
		"fail: "*) tap_ok 1 "${line#fail: }"; n=$((n + 1)) ;;
		esac
	done <"$out"
	while [ $n -lt "$expect" ]; do
		tap_ok 1 "raw client check $((n + 1)) did not run"
		tap_diag "$(tail -5 "$out")"
		n=$((n + 1))
	done
}

# placement NAME P SHARDS: the shard of partition P (FNV-1a 32 of NAME, plus P).
placement() {
	"$PY" -c '
import sys
h = 0x811c9dc5
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x01000193) & 0xffffffff
print((h + int(sys.argv[2])) % int(sys.argv[3]))' "$1" "$2" "$3"
}

partitions=3
if ! sluiced_start "$TEST_TMP/main.log" "${common[@]}" --port "$port" --shards "$shards" \
	--num-partitions $partitions --data-dir "$DATA/main"; then
	tap_ok 1 "sluiced starts with --shards $shards"
	tap_diag "$(tail -5 "$TEST_TMP/main.log")"
	exit 1
fi
pid=$SLUICED_PID
n=$(grep -c "net: listening on 0.0.0.0 port" "$TEST_TMP/main.log")
tap_ok $((n != shards)) "each of the $shards shards listens on its own port"

# kcat -L: every shard a broker.
if command -v kcat >/dev/null; then
	timeout 20 kcat -L -b "127.0.0.1:$port" >"$TEST_TMP/kcat-L" 2>&1
	rc=$?
	missing=""
	for i in $(seq 0 $((shards - 1))); do
		grep -q "broker $i at 127.0.0.1:$((port + i))" "$TEST_TMP/kcat-L" || missing="$missing $i"
	done
	grep -q " $shards brokers:" "$TEST_TMP/kcat-L" || missing="$missing count"
	tap_ok $((rc != 0 || ${#missing} != 0)) "kcat -L lists each shard as a broker at 127.0.0.1:$port+id${missing:+ (missing:$missing)}"
	[ $rc -ne 0 ] && tap_diag "$(cat "$TEST_TMP/kcat-L")"

	# kcat -L -t NEW: auto-created with num.partitions partitions, placed.
	if grep -q "no broker layer" "$TEST_TMP/main.log"; then
		tap_skip "kcat -L -t auto-creates a topic" "sluiced hosts no broker layer"
	else
		topic="basics.auto-$$"
		timeout 20 kcat -L -b "127.0.0.1:$port" -t "$topic" >"$TEST_TMP/kcat-t" 2>&1
		rc=$?
		bad=0
		grep -q "topic \"$topic\" with $partitions partitions:" "$TEST_TMP/kcat-t" || bad=1
		for p in $(seq 0 $((partitions - 1))); do
			l=$(placement "$topic" "$p" "$shards")
			grep -q "partition $p, leader $l, replicas: $l, isrs: $l" "$TEST_TMP/kcat-t" || bad=1
		done
		tap_ok $((rc != 0 || bad != 0)) "kcat -L -t $topic auto-creates it with num.partitions=$partitions partitions led by shard (hash + p) % $shards"
		[ $bad -ne 0 ] && tap_diag "$(cat "$TEST_TMP/kcat-t")"
	fi
else
	tap_skip "kcat -L lists the shards" "kcat is not installed (apt-get install kcat)"
	tap_skip "kcat -L -t auto-creates a topic" "kcat is not installed"
fi

# Raw bytes: well-formed requests (9 checks), then bad ones (8 checks).
if [ -x "$PY" ]; then
	client good "$port" "$shards" >"$TEST_TMP/good.out" 2>&1
	report_lines "$TEST_TMP/good.out" 9
	client bad "$port" >"$TEST_TMP/bad.out" 2>&1
	report_lines "$TEST_TMP/bad.out" 8
else
	for i in $(seq 17); do tap_skip "raw-socket check $i" "no $PY (Debian's python3)"; done
fi

is_running "$pid"
tap_ok $? "the daemon is still running after the bad inputs"
kill -TERM "$pid"
wait_exit "$pid" 50
rc=$EXIT_STATUS
tap_ok "$([ "$rc" = 0 ]; echo $?)" "SIGTERM: exit status 0 (got $rc)"
# Shard 0's counters name each bad input: 2 unknown keys, 1 oversized frame, 2 bad
# frames (negative size, truncated header), and at least 3 unsupported versions (the
# raw ApiVersions v3, Metadata v9, Produce v2; kcat's own ApiVersions v3 add to them).
stats=$(grep "shard=0 net: stats:" "$TEST_TMP/main.log")
counter() { printf '%s\n' "$stats" | tr ' ' '\n' | sed -n "s/^$1=\([0-9]*\).*/\1/p"; }
bad=0
[ "$(counter unknown_api_keys)" = 2 ] || bad=1
[ "$(counter oversized_frames)" = 1 ] || bad=1
[ "$(counter bad_frames)" = 2 ] || bad=1
[ "$(counter unsupported_versions)" -ge 3 ] 2>/dev/null || bad=1
tap_ok $bad "shard 0 counted every bad input in its stop line"
[ $bad -ne 0 ] && tap_diag "$stats"
# The pipelined burst went past the in-flight slots (reading paused, then resumed), and
# the large request was assembled in a stash.
bad=0
[ "$(counter paused_inflight)" -ge 1 ] 2>/dev/null || bad=1
[ "$(counter assembly_bytes_max)" -ge 100000 ] 2>/dev/null || bad=1
tap_ok $bad "shard 0 paused a connection at the in-flight limit and assembled a spanning request"
[ $bad -ne 0 ] && tap_diag "$stats"

# The connection limit (one shard, --max-connections 4).
if sluiced_start "$TEST_TMP/limit.log" "${common[@]}" --port $((port + shards)) --shards 1 \
	--max-connections 4 --data-dir "$DATA/limit"; then
	lpid=$SLUICED_PID
	client limit $((port + shards)) 4 >"$TEST_TMP/limit.out" 2>&1
	report_lines "$TEST_TMP/limit.out" 1
	grep -q "refused: all 4 connection slots of this shard are in use" "$TEST_TMP/limit.log"
	tap_ok $? "the refusal is logged, naming the limit"
	kill -TERM "$lpid"
	wait_exit "$lpid" 50
else
	tap_ok 1 "sluiced starts with --max-connections 4"
	tap_diag "$(tail -5 "$TEST_TMP/limit.log")"
	tap_skip "refusal logged" "no daemon"
fi
tap_done
