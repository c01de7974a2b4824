#!/bin/bash
# tests/integration/sluicectl.sh: tools/sluicectl against a real sluiced on loopback (two
# shards). Usage errors exit 2 and a broker that cannot be reached exits 1, each with a
# message naming the problem. Topics: create (with --partitions and --config, and the
# broker's default count), list and describe (tables and --json) checked against
# `kcat -L -J` (names, partition counts, leaders, replicas) and against the messages
# produced (log start and end offsets), a second create is TOPIC_ALREADY_EXISTS, delete
# removes the topic from kcat's Metadata too. Groups (skipped, saying why, when the
# broker does not advertise the group APIs): groups_client.py lag produces a known number
# of messages to each partition and commits a known offset in each, and stays a member;
# `groups describe --json` then shows exactly those committed offsets, the end offsets
# and their difference as lag, the member (client id, assignment) owning each partition;
# the table shows the same numbers; `groups list` shows the group; deleting it while it
# has a member is NON_EMPTY_GROUP; once the member has left the group is Empty with the
# same offsets and can be deleted; an unknown group is GROUP_ID_NOT_FOUND (exit 1).
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
CTL="$SLUICE_BUILDDIR/tools/sluicectl"
CHECKS=35
tap_plan $CHECKS

skip_rest() {
	while [ "$tap_count" -lt $CHECKS ]; do
		tap_skip "sluicectl check $((tap_count + 1))" "$1"
	done
	exit 0
}
[ -x "$PY" ] || skip_rest "no $PY (Debian's python3)"
"$PY" -c 'import confluent_kafka' 2>/dev/null ||
	skip_rest "$PY has no confluent_kafka (apt-get install python3-confluent-kafka)"
command -v kcat >/dev/null || skip_rest "no kcat"

shards=2
[ "$(nproc)" -lt 2 ] && shards=1
DATA=$(mktemp -d "$SLUICE_BUILDDIR/sluicectl.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base "$shards")
args=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards "$shards"
	--num-partitions 3 --data-dir "$DATA/d" --group-initial-rebalance-delay-ms 100)
helper="$SLUICE_SRCDIR/tests/integration/groups_client.py"
out="$TEST_TMP/out"
err="$TEST_TMP/err"

# ctl ARGS...: runs sluicectl against the daemon; stdout in $out, stderr in $err, the
# exit status in $rc.
ctl() {
	timeout 30 "$CTL" --brokers "127.0.0.1:$port" "$@" >"$out" 2>"$err"
	rc=$?
}
# expect_rc WANT GREP-IN-STDERR DESCRIPTION: the last ctl's exit status and message.
expect_rc() {
	local good=1
	[ "$rc" = "$1" ] && { [ -z "$2" ] || grep -q -- "$2" "$err"; } && good=0
	tap_ok $good "$3 (exit $rc: $(head -c 200 "$err" | tr '\n' ' '))"
}
# pycheck DESCRIPTION SCRIPT ARGS...: a Python check that prints what it found and
# exits 0 when it holds.
pycheck() {
	local what=$1 script=$2 said
	shift 2
	said=$("$PY" -c "$script" "$@" 2>&1)
	tap_ok $? "$what ($(echo "$said" | tail -3 | tr '\n' ' ' | head -c 400))"
}

if ! sluiced_start "$TEST_TMP/s.log" "${args[@]}"; then
	tap_ok 1 "sluiced starts"
	tap_diag "$(tail -5 "$TEST_TMP/s.log")"
	skip_rest "no daemon"
fi
tap_ok 0 "sluiced starts with $shards shards"

# ---- usage and connection errors ----
"$CTL" >"$out" 2>"$err"
rc=$?
expect_rc 2 "missing the command" "no command: usage error"
"$CTL" --help >"$out" 2>"$err"
rc=$?
tap_ok "$([ $rc = 0 ] && grep -q "groups describe GROUP" "$out"; echo $?)" "--help prints the commands, exit 0"
ctl topics frob
expect_rc 2 "unknown subcommand 'topics frob'" "unknown subcommand: usage error"
ctl topics create x --partitions 0
expect_rc 2 "--partitions: '0' is not a number" "--partitions 0: usage error"
timeout 30 "$CTL" --brokers nohostport topics list >"$out" 2>"$err"
rc=$?
expect_rc 2 "--brokers: 'nohostport' is not host:port" "a --brokers entry without a port: usage error"
closed=$(free_port_base 1)
timeout 30 "$CTL" --brokers "127.0.0.1:$closed" --timeout-ms 2000 topics list >"$out" 2>"$err"
rc=$?
expect_rc 1 "no broker of --brokers 127.0.0.1:$closed answered.*refused" \
	"a broker address nobody listens on: exit 1, connection refused"

# ---- topics ----
ctl topics create ctl.a --partitions 5 --config retention.ms=123456
tap_ok "$([ $rc = 0 ] && grep -qx "created topic ctl.a" "$out"; echo $?)" \
	"topics create ctl.a --partitions 5 --config retention.ms=123456 (exit $rc)"
pycheck "DescribeConfigs (AdminClient) of ctl.a: retention.ms 123456 as --config set it" '
import sys
from confluent_kafka.admin import AdminClient, ConfigResource
a = AdminClient({"bootstrap.servers": "127.0.0.1:" + sys.argv[1], "broker.address.family": "v4"})
r = ConfigResource(ConfigResource.Type.TOPIC, "ctl.a")
c = a.describe_configs([r], request_timeout=10)[r].result()
print("retention.ms", c["retention.ms"].value)
sys.exit(0 if c["retention.ms"].value == "123456" else 1)' "$port"
ctl topics create ctl.a --partitions 5
expect_rc 1 "create topic 'ctl.a': TOPIC_ALREADY_EXISTS" "a second create: TOPIC_ALREADY_EXISTS, exit 1"
ctl topics create ctl.b
tap_ok "$rc" "topics create ctl.b with the broker's num.partitions"
ctl topics create ctl.bad --config retention.ms=forever
expect_rc 1 "create topic 'ctl.bad': INVALID_CONFIG" "a bad config value: INVALID_CONFIG, exit 1"
seq 1 7 | kcat -P -b "127.0.0.1:$port" -X broker.address.family=v4 -t ctl.a -p 2 2>/dev/null

kcat -L -J -b "127.0.0.1:$port" -X broker.address.family=v4 >"$TEST_TMP/kcat-all.json" 2>/dev/null
ctl --json topics list
cp "$out" "$TEST_TMP/list.json"
pycheck "topics list --json: the same topics and partition counts as kcat -L (ctl.a 5, ctl.b 3)" '
import json, sys
k = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
kt = {t["topic"]: len(t["partitions"]) for t in k["topics"]}
st = {t["name"]: t["partitions"] for t in s["topics"]}
print("kcat", kt, "sluicectl", st)
sys.exit(0 if kt == st and st.get("ctl.a") == 5 and st.get("ctl.b") == 3 else 1)' \
	"$TEST_TMP/kcat-all.json" "$TEST_TMP/list.json"
ctl topics list
tap_ok "$([ $rc = 0 ] && head -1 "$out" | grep -q "^TOPIC  *PARTITIONS" &&
	awk '$1 == "ctl.a" && $2 == 5 {a = 1} $1 == "ctl.b" && $2 == 3 {b = 1} END {exit !(a && b)}' "$out"; echo $?)" \
	"topics list: a table with ctl.a 5 and ctl.b 3"

kcat -L -J -b "127.0.0.1:$port" -X broker.address.family=v4 -t ctl.a >"$TEST_TMP/kcat-a.json" 2>/dev/null
ctl --json topics describe ctl.a
cp "$out" "$TEST_TMP/describe.json"
pycheck "topics describe --json ctl.a: leaders and replicas as kcat -L, end offset 7 in partition 2" '
import json, sys
k = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
kp = {p["partition"]: (p["leader"], [r["id"] for r in p["replicas"]])
      for t in k["topics"] if t["topic"] == "ctl.a" for p in t["partitions"]}
sp = {p["partition"]: (p["leader"], p["replicas"]) for t in s["topics"] for p in t["partitions"]}
ends = {p["partition"]: (p["start"], p["end"]) for t in s["topics"] for p in t["partitions"]}
print("kcat", kp, "sluicectl", sp, "start/end", ends)
sys.exit(0 if kp == sp and len(sp) == 5 and ends == {0: (0, 0), 1: (0, 0), 2: (0, 7), 3: (0, 0), 4: (0, 0)} else 1)' \
	"$TEST_TMP/kcat-a.json" "$TEST_TMP/describe.json"
ctl topics describe ctl.a
leader2=$("$PY" -c 'import json,sys; print([p["leader"] for t in json.load(open(sys.argv[1]))["topics"] for p in t["partitions"] if p["partition"] == 2][0])' "$TEST_TMP/describe.json" 2>/dev/null)
tap_ok "$([ $rc = 0 ] && awk -v l="$leader2" '$1 == "ctl.a" && $2 == 2 && $3 == l && $6 == 0 && $7 == 7 {f = 1} END {exit !f}' "$out"; echo $?)" \
	"topics describe ctl.a: the table row of partition 2 shows leader $leader2, start 0, end 7"
ctl topics describe ctl.nope
expect_rc 1 "topic 'ctl.nope': UNKNOWN_TOPIC_OR_PARTITION" "describe of an unknown topic: UNKNOWN_TOPIC_OR_PARTITION, exit 1"
ctl topics delete ctl.b
tap_ok "$([ $rc = 0 ] && grep -qx "deleted topic ctl.b" "$out" &&
	! kcat -L -b "127.0.0.1:$port" -X broker.address.family=v4 2>/dev/null | grep -q '"ctl.b"'; echo $?)" \
	"topics delete ctl.b: gone from kcat -L"
ctl topics delete ctl.b
expect_rc 1 "delete topic 'ctl.b': UNKNOWN_TOPIC_OR_PARTITION" "a second delete: UNKNOWN_TOPIC_OR_PARTITION, exit 1"

# ---- groups ----
if ! why=$("$PY" "$helper" apis "$port" 2>&1); then
	kill -TERM "$SLUICED_PID"
	wait_exit "$SLUICED_PID" 300
	skip_rest "${why:-ApiVersions failed}"
fi
stop="$TEST_TMP/stop"
expect="$TEST_TMP/expect.json"
timeout 60 "$PY" "$helper" lag "$port" ctl.lag ctl-group "$expect" "$stop" >"$TEST_TMP/lag.out" 2>&1 &
lag_pid=$!
started_pids="$started_pids $lag_pid"
waited=0
while [ ! -e "$expect" ] && [ $waited -lt 300 ] && is_running $lag_pid; do
	sleep 0.1
	waited=$((waited + 1))
done
tap_ok "$([ -e "$expect" ] && grep -q "^ok: lag setup" "$TEST_TMP/lag.out"; echo $?)" \
	"a consumer produced and committed known offsets and stays a member ($(tail -1 "$TEST_TMP/lag.out"))"

# check_describe FILE STATE: the JSON of groups describe against what the helper did.
check_describe='
import json, sys
d = json.load(open(sys.argv[1])); e = json.load(open(sys.argv[2])); state = sys.argv[3]
g = d["groups"][0]
rows = [(r["topic"], r["partition"], r["committed"], r["end"], r["lag"]) for r in g["partitions"]]
want = [(e["topic"], p, c, n, n - c) for p, (c, n) in enumerate(zip(e["committed"], e["produced"]))]
print("rows", rows)
members = g["members"]
ok = g["error"] is None and g["group"] == "ctl-group" and g["state"] == state and rows == want
ok = ok and g["protocol_type"] == "consumer" and g["lag"] == sum(r[4] for r in want)
if state == "Stable":
    m = members[0] if len(members) == 1 else {}
    assigned = sorted(p for a in m.get("assignment") or [] for p in a["partitions"]
                      if a["topic"] == e["topic"])
    print("member", m.get("client_id"), assigned, "owners", set(r["member"] for r in g["partitions"]))
    ok = ok and m.get("client_id") == "lag-client" and assigned == [0, 1, 2, 3]
    ok = ok and m.get("subscription") == [e["topic"]] and g["protocol"] in ("range", "roundrobin")
    ok = ok and all(r["member"] == m.get("member_id") for r in g["partitions"])
else:
    print("members", members)
    ok = ok and members == [] and all(r["member"] is None for r in g["partitions"])
sys.exit(0 if ok else 1)'
ctl --json groups describe ctl-group
cp "$out" "$TEST_TMP/g1.json"
pycheck "groups describe --json with a member: committed, end offsets and lag exactly as produced and committed, each partition owned by lag-client" \
	"$check_describe" "$TEST_TMP/g1.json" "$expect" Stable
ctl groups describe ctl-group
cp "$out" "$TEST_TMP/g1.txt"
pycheck "groups describe (table): the same numbers per partition, total lag, member and state" '
import json, sys
txt = open(sys.argv[1]).read().split("\n"); e = json.load(open(sys.argv[2]))
d = json.load(open(sys.argv[3]))["groups"][0]
mid = d["members"][0]["member_id"] if d["members"] else None
want = ["%s %d %d %d %d %s" % (e["topic"], p, c, n, n - c, mid) for p, (c, n) in
        enumerate(zip(e["committed"], e["produced"]))]
got = [" ".join(l.split()[:6]) for l in txt if l.startswith(e["topic"] + " ")]
total = sum(n - c for c, n in zip(e["committed"], e["produced"]))
print("got", got)
ok = got == want and ("TOTAL LAG %d" % total) in txt and "STATE Stable" in txt[0]
ok = ok and any(l.split()[:2] == [mid, "lag-client"] for l in txt if mid)
sys.exit(0 if ok else 1)' "$TEST_TMP/g1.txt" "$expect" "$TEST_TMP/g1.json"
ctl groups list
tap_ok "$([ $rc = 0 ] && awk '$1 == "ctl-group" && $2 == "consumer" && $3 == "Stable" && $4 == 1 {f = 1} END {exit !f}' "$out"; echo $?)" \
	"groups list: ctl-group, consumer, Stable, 1 member ($(grep ctl-group "$out"))"
ctl --json groups list
pycheck "groups list --json lists ctl-group with its coordinator" '
import json, sys
g = [x for x in json.load(open(sys.argv[1]))["groups"] if x["group"] == "ctl-group"]
print(g)
sys.exit(0 if len(g) == 1 and g[0]["state"] == "Stable" and g[0]["coordinator"] >= 0 else 1)' "$out"
ctl groups delete ctl-group
expect_rc 1 "delete group 'ctl-group': NON_EMPTY_GROUP" "groups delete while a member is in: NON_EMPTY_GROUP, exit 1"

touch "$stop"
wait_exit "$lag_pid" 200
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "the member leaves (exit $EXIT_STATUS)"
ctl --json groups describe ctl-group
cp "$out" "$TEST_TMP/g2.json"
pycheck "after it left: Empty, no members, the same committed offsets, end offsets and lag" \
	"$check_describe" "$TEST_TMP/g2.json" "$expect" Empty
ctl --json groups describe ctl-nobody
cp "$out" "$TEST_TMP/g3.json"
tap_ok "$([ $rc = 1 ] && grep -q "group 'ctl-nobody': GROUP_ID_NOT_FOUND" "$err" &&
	grep -q '"error":"GROUP_ID_NOT_FOUND"' "$TEST_TMP/g3.json"; echo $?)" \
	"describe of an unknown group: GROUP_ID_NOT_FOUND, exit 1 ($(head -c 200 "$err"))"
ctl groups delete ctl-group
tap_ok "$([ $rc = 0 ] && grep -qx "deleted group ctl-group" "$out"; echo $?)" \
	"groups delete of the empty group (exit $rc: $(cat "$err"))"
ctl groups describe ctl-group
expect_rc 1 "group 'ctl-group': GROUP_ID_NOT_FOUND" "a deleted group is GROUP_ID_NOT_FOUND, exit 1"
ctl groups list
tap_ok "$([ $rc = 0 ] && ! grep -q "^ctl-group " "$out"; echo $?)" "groups list no longer shows it"
# The offsets topic holds every group's commits: it cannot be deleted nor grown.
ctl topics delete __consumer_offsets
expect_rc 1 "INVALID_TOPIC_EXCEPTION" "topics delete __consumer_offsets is refused (INVALID_TOPIC_EXCEPTION), exit 1"
"$PY" - "$port" >"$TEST_TMP/cp.out" 2>&1 <<'PYEOF'
import sys
from confluent_kafka.admin import AdminClient, NewPartitions
a = AdminClient({"bootstrap.servers": "127.0.0.1:%s" % sys.argv[1]})
f = a.create_partitions([NewPartitions("__consumer_offsets", 8)])["__consumer_offsets"]
try:
    f.result(10)
    print("grown")
except Exception as e:
    print("refused", e)
PYEOF
tap_ok "$(grep -q "refused.*POLICY_VIOLATION" "$TEST_TMP/cp.out"; echo $?)" \
	"CreatePartitions on __consumer_offsets: POLICY_VIOLATION ($(head -c 200 "$TEST_TMP/cp.out"))"

kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 300
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "SIGTERM: sluiced exits 0 ($EXIT_STATUS)"
bad=$(grep " ERROR " "$TEST_TMP/s.log" | head -5)
tap_ok "$([ -z "$bad" ]; echo $?)" "no ERROR line in the daemon's log"
[ -z "$bad" ] || tap_diag "$bad"
tap_done
