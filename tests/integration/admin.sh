#!/bin/bash
# tests/integration/admin.sh: the admin APIs of a real sluiced on loopback (two shards,
# --num-partitions 4), as clients use them: confluent-kafka's AdminClient (Debian's
# python3-confluent-kafka, run by /usr/bin/python3) creates topics with configs, with
# validate_only (nothing created) and refused ones (existing 36, invalid name 17,
# replication factor 38, unknown config or bad value 40); grows a topic 6 -> 10 and sees
# 10 in Metadata (validate_only, shrinking, unknown topic refused); describes a topic's
# configs (retention.ms set at creation reported as TOPIC_CONFIG, defaults as
# DEFAULT_CONFIG) and each broker's (num.partitions as set, port, defaults), sending each
# BROKER resource to its own shard; deletes topics (Metadata no longer lists them, a
# second delete is 3, the name can be reused). A raw socket then checks the exact answers
# AdminClient does not provoke (tests/integration/admin_client.py), and that a change asked
# of the last shard is in shard 0's table when it is answered. After a SIGTERM and a
# restart the kept topic, its partitions and configs are still there.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
shards=2
[ "$(nproc)" -lt 2 ] && shards=1
checks=$((30 + shards))
tap_plan $checks
num_partitions=4
# O_DIRECT segments: keep the data under the build directory, not on tmpfs.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/admin.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base "$shards")
args=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards "$shards"
	--num-partitions "$num_partitions" --data-dir "$DATA/d")
client() { "$PY" "$SLUICE_SRCDIR/tests/integration/admin_client.py" "$@"; }

# report_lines OUT EXPECT: the client's "ok: "/"fail: " lines as TAP checks; checks that
# did not run (the client died) fail.
report_lines() {
	local out=$1 expect=$2 n=0
	while IFS= read -r line; do
		case "$line" in
		"ok: "*) tap_ok 0 "${line#ok: }"; n=$((n + 1)) ;;
		"fail: "*) tap_ok 1 "${line#fail: }"; n=$((n + 1)) ;;
		esac
	done <"$out"
	while [ $n -lt "$expect" ]; do
		tap_ok 1 "admin client check $((n + 1)) did not run"
		n=$((n + 1))
	done
	grep -q "Traceback" "$out" && tap_diag "$(tail -8 "$out")"
	return 0
}

skip_all() {
	for i in $(seq "$1" "$checks"); do tap_skip "admin check $i" "$2"; done
	exit 0
}
[ -x "$PY" ] || skip_all 1 "no $PY (Debian's python3)"
"$PY" -c 'import confluent_kafka' 2>/dev/null ||
	skip_all 1 "$PY has no confluent_kafka (apt-get install python3-confluent-kafka)"

if ! sluiced_start "$TEST_TMP/a.log" "${args[@]}"; then
	tap_ok 1 "sluiced starts"
	tap_diag "$(tail -5 "$TEST_TMP/a.log")"
	skip_all 2 "no daemon"
fi
pid=$SLUICED_PID
tap_ok 0 "sluiced starts with $shards shards and num.partitions $num_partitions"

timeout 120 "$PY" "$SLUICE_SRCDIR/tests/integration/admin_client.py" admin "$port" "$shards" \
	"$num_partitions" >"$TEST_TMP/admin.out" 2>&1
report_lines "$TEST_TMP/admin.out" $((13 + shards))
timeout 60 "$PY" "$SLUICE_SRCDIR/tests/integration/admin_client.py" raw "$port" "$shards" \
	"$num_partitions" >"$TEST_TMP/raw.out" 2>&1
report_lines "$TEST_TMP/raw.out" 13

kill -TERM "$pid"
wait_exit "$pid" 100
tap_ok "$([ "$EXIT_STATUS" = 0 ]; echo $?)" "SIGTERM: exit status 0 (got $EXIT_STATUS)"
bad=$(grep -c " ERROR " "$TEST_TMP/a.log")
tap_ok "$([ "$bad" = 0 ]; echo $?)" "no ERROR lines in the daemon's log ($bad)"
[ "$bad" = 0 ] || tap_diag "$(grep " ERROR " "$TEST_TMP/a.log" | head -5)"

if sluiced_start "$TEST_TMP/b.log" "${args[@]}"; then
	timeout 60 "$PY" "$SLUICE_SRCDIR/tests/integration/admin_client.py" kept "$port" \
		>"$TEST_TMP/kept.out" 2>&1
	report_lines "$TEST_TMP/kept.out" 1
	kill -TERM "$SLUICED_PID"
	wait_exit "$SLUICED_PID" 100
else
	tap_ok 1 "sluiced restarts on the same data dir"
	tap_diag "$(tail -5 "$TEST_TMP/b.log")"
fi
tap_done
