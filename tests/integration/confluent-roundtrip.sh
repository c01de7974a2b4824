#!/bin/bash
# tests/integration/confluent-roundtrip.sh: issue 4's confluent-kafka round trip on a real
# sluiced on loopback (confluent_roundtrip.py does the client side). An idempotent
# producer (enable.idempotence=true, acks=all) writes COUNT messages (default 200,000) to
# a 12-partition topic with each codec (none, gzip, snappy, lz4, zstd: one topic each),
# and every delivery report must be a success; a consumer with assign() reads every
# message back at the offset its report gave, identical; SIGTERM, restart, and the same
# read finds everything again; then a producer writes a steady stream while sluiced is
# SIGKILLed and restarted under it: afterwards every message whose delivery report said
# success is at its offset and no message is stored twice. Figures (produce and consume
# rates) are printed as TAP comments.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
COUNT=${CONFLUENT_ROUNDTRIP_COUNT:-200000}
CHECKS=22
tap_plan $CHECKS

if [ ! -x "$PY" ] || ! "$PY" -c 'import confluent_kafka' 2>/dev/null; then
	for i in $(seq $CHECKS); do
		tap_skip "confluent round trip check $i" "no $PY with confluent_kafka (apt-get install python3-confluent-kafka)"
	done
	exit 0
fi

shards=2
[ "$(nproc)" -lt 2 ] && shards=1
# O_DIRECT does not work on tmpfs: keep the data under the build directory.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/confluent-roundtrip.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base $((shards + 1)))
helper="$SLUICE_SRCDIR/tests/integration/confluent_roundtrip.py"
args=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards "$shards"
	--num-partitions 12 --data-dir "$DATA")

# report FILE EXPECTED: the helper's ok/fail lines as TAP, its "#" lines as comments.
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

stop_sluiced() {
	kill -TERM "$SLUICED_PID"
	wait_exit "$SLUICED_PID" 300
	tap_ok $([ "$EXIT_STATUS" = 0 ] && echo 0 || echo 1) "$1: SIGTERM, sluiced exits 0 ($EXIT_STATUS)"
}

: >"$TEST_TMP/s1.log"
sluiced_start "$TEST_TMP/s1.log" "${args[@]}"
tap_ok $? "sluiced starts with $shards shards"

timeout 900 "$PY" "$helper" produce "$port" cr "$COUNT" "$TEST_TMP/state.json" \
	>"$TEST_TMP/produce.out" 2>&1
report "$TEST_TMP/produce.out" 5
timeout 900 "$PY" "$helper" verify "$port" "$TEST_TMP/state.json" "before restart" \
	>"$TEST_TMP/verify1.out" 2>&1
report "$TEST_TMP/verify1.out" 5

stop_sluiced "after the round trip"
: >"$TEST_TMP/s2.log"
sluiced_start "$TEST_TMP/s2.log" "${args[@]}"
tap_ok $? "sluiced restarts on the same data"
timeout 900 "$PY" "$helper" verify "$port" "$TEST_TMP/state.json" "after restart" \
	>"$TEST_TMP/verify2.out" 2>&1
report "$TEST_TMP/verify2.out" 5

# SIGKILL under a running producer: wait until it has 20,000 acknowledged messages, kill,
# restart at once on the same ports, let it go on a while, then stop it.
acked="$TEST_TMP/acked.txt"
: >"$acked"
"$PY" "$helper" killprod "$port" cr-kill "$acked" "$TEST_TMP/stop" >"$TEST_TMP/killprod.out" 2>&1 &
prod=$!
waited=0
while [ "$(wc -l <"$acked")" -lt 20000 ] && [ $waited -lt 600 ] && is_running $prod; do
	sleep 0.1
	waited=$((waited + 1))
done
before=$(wc -l <"$acked")
kill -KILL "$SLUICED_PID"
wait_exit "$SLUICED_PID" 50
tap_diag "SIGKILL after $before acknowledged messages"
: >"$TEST_TMP/s3.log"
sluiced_start "$TEST_TMP/s3.log" "${args[@]}"
tap_ok $? "sluiced restarts after SIGKILL in the middle of a produce run"
sleep 3
touch "$TEST_TMP/stop"
wait_exit $prod 1200
[ "$EXIT_STATUS" = 0 ] || tap_diag "the producer exited with $EXIT_STATUS:" "$(tail -5 "$TEST_TMP/killprod.out")"
grep '^# ' "$TEST_TMP/killprod.out"
tap_diag "$(( $(wc -l <"$acked") - before )) more acknowledged after the restart"
timeout 300 "$PY" "$helper" killcheck "$port" cr-kill "$acked" >"$TEST_TMP/killcheck.out" 2>&1
report "$TEST_TMP/killcheck.out" 2
stop_sluiced "at the end"
tap_done
