#!/bin/bash
# tests/integration/groups.sh: consumer groups on a real sluiced on loopback (issue 6),
# with real clients (tests/integration/groups_client.py does the Python side):
#  1. three confluent-kafka consumers of one group share a 12-partition topic while a
#     producer writes 300,000 messages; one leaves a third of the way, a new one joins
#     half way; the union of what they read is exactly what was produced (duplicates
#     counted, and only across changes of owner) and no partition is owned by two
#     members at once (assign/revoke callback intervals; see groups_client.py);
#  2. a consumer commits known offsets; sluiced is stopped with SIGTERM and restarted on
#     the same data; a new consumer of the group starts exactly at those offsets;
#  3. two `kcat -G` instances share a topic: each gets a non-empty, disjoint part of the
#     partitions and together they read every message once;
#  4. a raw-protocol member joins, syncs, then stops heartbeating: it keeps its
#     partitions until session.timeout.ms, then they go to the other member, and its
#     next heartbeat is UNKNOWN_MEMBER_ID;
#  5. an assign() consumer commits with generation -1 and no member id; OffsetFetch of a
#     never-committed partition is -1 without error.
# When the broker does not advertise the group APIs every check is skipped, saying so.
# GROUPS_COUNT overrides the 300,000 messages of part 1.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
COUNT=${GROUPS_COUNT:-300000}
CHECKS=29
tap_plan $CHECKS
helper="$SLUICE_SRCDIR/tests/integration/groups_client.py"

skip_rest() {
	while [ "$tap_count" -lt $CHECKS ]; do
		tap_skip "groups check $((tap_count + 1))" "$1"
	done
	exit 0
}
[ -x "$PY" ] || skip_rest "no $PY (Debian's python3)"
"$PY" -c 'import confluent_kafka' 2>/dev/null ||
	skip_rest "$PY has no confluent_kafka (apt-get install python3-confluent-kafka)"

shards=2
[ "$(nproc)" -lt 2 ] && shards=1
# O_DIRECT segments: keep the data under the build directory, not on tmpfs.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/groups.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base "$shards")
args=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards "$shards"
	--num-partitions 4 --data-dir "$DATA/d" --group-initial-rebalance-delay-ms 300)

# report FILE EXPECTED: the helper's ok/fail lines as TAP, its "#" lines as comments;
# checks that did not run (the helper died) fail.
report() {
	local n=0 line
	while IFS= read -r line; do
		case "$line" in
		"ok: "*) tap_ok 0 "${line#ok: }"; n=$((n + 1)) ;;
		"fail: "*) tap_ok 1 "${line#fail: }"; n=$((n + 1)) ;;
		"# "*) echo "$line" ;;
		esac
	done <"$1"
	if [ $n -ne "$2" ]; then
		tap_diag "expected $2 checks, got $n:" "$(grep -v '^ok: \|^# ' "$1" | tail -8)"
		while [ $n -lt "$2" ]; do
			tap_ok 1 "check $((n + 1)) of $(basename "$1") did not run"
			n=$((n + 1))
		done
	fi
}

log_errors() {
	grep " ERROR " "$1" | head -5
}

if ! sluiced_start "$TEST_TMP/s1.log" "${args[@]}"; then
	tap_ok 1 "sluiced starts"
	tap_diag "$(tail -5 "$TEST_TMP/s1.log")"
	skip_rest "no daemon"
fi
tap_ok 0 "sluiced starts with $shards shards"
if ! why=$("$PY" "$helper" apis "$port" 2>&1); then
	kill -TERM "$SLUICED_PID"
	wait_exit "$SLUICED_PID" 300
	skip_rest "${why:-ApiVersions failed}"
fi

# 1. Rebalances under load.
start=$(date +%s)
timeout 90 "$PY" "$helper" rebalance "$port" grp.rebalance grp-rebalance "$COUNT" \
	>"$TEST_TMP/rebalance.out" 2>&1
report "$TEST_TMP/rebalance.out" 7
tap_diag "part 1 took $(($(date +%s) - start)) s"

# 2. Committed offsets across a SIGTERM and a restart.
timeout 60 "$PY" "$helper" commit "$port" grp.resume grp-resume "$TEST_TMP/resume.json" \
	>"$TEST_TMP/commit.out" 2>&1
report "$TEST_TMP/commit.out" 1
kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 300
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "SIGTERM: sluiced exits 0 ($EXIT_STATUS)"
bad=$(log_errors "$TEST_TMP/s1.log")
tap_ok "$([ -z "$bad" ]; echo $?)" "no ERROR line in the first run's log"
[ -z "$bad" ] || tap_diag "$bad"
if ! sluiced_start "$TEST_TMP/s2.log" "${args[@]}"; then
	tap_ok 1 "sluiced restarts on the same data"
	tap_diag "$(tail -5 "$TEST_TMP/s2.log")"
	skip_rest "no daemon after the restart"
fi
tap_ok 0 "sluiced restarts on the same data"
timeout 60 "$PY" "$helper" resume "$port" grp.resume grp-resume "$TEST_TMP/resume.json" \
	>"$TEST_TMP/resume.out" 2>&1
report "$TEST_TMP/resume.out" 3

# 3. Two kcat -G instances share a 4-partition topic.
kt=grp.kcat
kg=grp-kcat
timeout 30 "$PY" "$helper" create "$port" "$kt" 4 >"$TEST_TMP/kcat-create.out" 2>&1 ||
	tap_diag "creating $kt failed: $(tail -3 "$TEST_TMP/kcat-create.out")"
kcat_group() {
	kcat -b "127.0.0.1:$port" -X broker.address.family=v4 -X session.timeout.ms=6000 \
		-X heartbeat.interval.ms=500 -X auto.offset.reset=earliest -u \
		-f '%p %o %k\n' -G "$kg" "$kt" >"$TEST_TMP/kcat-$1.out" 2>"$TEST_TMP/kcat-$1.err" &
	started_pids="$started_pids $!"
	eval "kcat_$1=\$!"
}
# last_assigned NAME: the partitions NAME owns after its latest rebalance line (kcat
# prints "% Group G rebalanced (memberid M): assigned: T [0], T [2]", or "revoked: ..."),
# one a line.
last_assigned() {
	grep 'rebalanced (memberid' "$TEST_TMP/kcat-$1.err" | tail -1 | grep 'assigned:' |
		sed 's/.*assigned://' | grep -o '\[[0-9]*\]' | tr -d '[]' | sort -n
}
kcat_group a
kcat_group b
waited=0
while [ $waited -lt 200 ]; do
	pa=$(last_assigned a | tr '\n' ' ')
	pb=$(last_assigned b | tr '\n' ' ')
	all=$( (last_assigned a; last_assigned b) | sort -n | tr '\n' ' ')
	[ -n "$pa" ] && [ -n "$pb" ] && [ "$all" = "0 1 2 3 " ] && break
	sleep 0.1
	waited=$((waited + 1))
done
tap_ok "$([ -n "$pa" ] && [ -n "$pb" ] && [ "$all" = "0 1 2 3 " ]; echo $?)" \
	"kcat -G: two instances get non-empty, disjoint parts of the 4 partitions ([$pa] and [$pb])"
kcount=2000
seq 1 $kcount | sed 's/.*/key-&:value-&/' |
	kcat -P -b "127.0.0.1:$port" -X broker.address.family=v4 -t "$kt" -K : 2>"$TEST_TMP/kcat-p.err"
waited=0
while [ "$(cat "$TEST_TMP/kcat-a.out" "$TEST_TMP/kcat-b.out" | wc -l)" -lt $kcount ] &&
	[ $waited -lt 200 ]; do
	sleep 0.1
	waited=$((waited + 1))
done
kill -TERM "$kcat_a" "$kcat_b" 2>/dev/null
wait_exit "$kcat_a" 100
wait_exit "$kcat_b" 100
read_a=$(cut -d' ' -f1 "$TEST_TMP/kcat-a.out" | sort -nu | tr '\n' ' ')
read_b=$(cut -d' ' -f1 "$TEST_TMP/kcat-b.out" | sort -nu | tr '\n' ' ')
keys=$(cat "$TEST_TMP/kcat-a.out" "$TEST_TMP/kcat-b.out" | cut -d' ' -f3 | sort | uniq | wc -l)
lines=$(cat "$TEST_TMP/kcat-a.out" "$TEST_TMP/kcat-b.out" | wc -l)
expect_keys=$(seq 1 $kcount | sed 's/^/key-/' | sort)
got_keys=$(cat "$TEST_TMP/kcat-a.out" "$TEST_TMP/kcat-b.out" | cut -d' ' -f3 | sort)
tap_ok "$([ -n "$read_a" ] && [ -n "$read_b" ] && [ "$read_a" = "$pa" ] && [ "$read_b" = "$pb" ]; echo $?)" \
	"kcat -G: each instance read only its own partitions, and both read ([$read_a] and [$read_b])"
tap_ok "$([ "$got_keys" = "$expect_keys" ]; echo $?)" \
	"kcat -G: together they read each of the $kcount messages exactly once ($lines lines, $keys distinct keys)"

# 4. A member that stops heartbeating.
timeout 60 "$PY" "$helper" silent "$port" grp.silent grp-silent >"$TEST_TMP/silent.out" 2>&1
report "$TEST_TMP/silent.out" 6

# 5. assign() commits and never-committed partitions.
timeout 60 "$PY" "$helper" assign "$port" grp.assign grp-assign >"$TEST_TMP/assign.out" 2>&1
report "$TEST_TMP/assign.out" 3

kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 300
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "SIGTERM at the end: sluiced exits 0 ($EXIT_STATUS)"
bad=$(log_errors "$TEST_TMP/s2.log")
tap_ok "$([ -z "$bad" ]; echo $?)" "no ERROR line in the second run's log"
[ -z "$bad" ] || tap_diag "$bad"
tap_done
