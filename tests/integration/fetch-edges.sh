#!/bin/bash
# tests/integration/fetch-edges.sh: Fetch and ListOffsets as a raw client sees them, on a
# real sluiced on loopback (2 shards where the machine has 2 CPUs, a 4-partition topic
# written by confluent-kafka's producer): records back in order with the right
# watermarks at every Fetch version, offsets out of range, partition_max_bytes and
# max_bytes (KIP-74: the first batch always goes, later ones only if they fit), all
# partitions in one request through every shard (forwarding over the mesh), unknown
# topics and partitions, leader epochs, fetch sessions (incremental: 70), aborted
# transactions null/empty, long-polls answered at max_wait with no records or with what
# there is below min_bytes, a long-poll woken by a write, request bodies that cannot be
# decoded (a lying count, a cut body) closing only their connection, and ListOffsets
# earliest, latest and by time (the exact record, not its batch) through every shard.
# Until the net layer registers the forwarding operations at its start, the first
# requests go to every shard once (fetch_edges.py says why). Then SIGTERM,
# a restart on the same data (the tail cache is empty: reads go to disk), and the same
# checks again. The checks are in fetch_edges.py; this script starts the daemon and
# turns their "ok:"/"fail:"/"skip:" lines into TAP.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
shards=2
[ "$(nproc)" -lt 2 ] && shards=1
first_checks=$((22 + shards))
again_checks=$((18 + shards))
tap_plan $((first_checks + again_checks + 4))

if [ ! -x "$PY" ] || ! "$PY" -c 'import confluent_kafka' 2>/dev/null; then
	for i in $(seq $((first_checks + again_checks + 4))); do
		tap_skip "fetch edge check $i" "no $PY with confluent_kafka (apt-get install python3-confluent-kafka)"
	done
	exit 0
fi

# O_DIRECT does not work on tmpfs: keep the data under the build directory.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/fetch-edges.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base $((shards + 1)))
topic="edges-$$"
args=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards "$shards"
	--num-partitions 4 --data-dir "$DATA")
export EDGES_STATE="$TEST_TMP/state.json"
export PYTHONPATH="$SLUICE_SRCDIR/tests/integration${PYTHONPATH:+:$PYTHONPATH}"

report_lines() {
	local out=$1 expect=$2 n=0 line
	while IFS= read -r line; do
		case "$line" in
		"ok: "*) tap_ok 0 "${line#ok: }"; n=$((n + 1)) ;;
		"fail: "*) tap_ok 1 "${line#fail: }"; n=$((n + 1)) ;;
		"skip: "*) tap_skip "${line#skip: }" ""; n=$((n + 1)) ;;
		esac
	done <"$out"
	while [ "$n" -lt "$expect" ]; do
		tap_ok 1 "fetch edge check $((n + 1)) did not run"
		n=$((n + 1))
	done
	[ "$n" -eq "$expect" ] || tap_diag "expected $expect checks, got $n"
	grep -q '^fail: \|Traceback\|Error' "$out" && tap_diag "$(grep -v '^ok: ' "$out" | tail -20)"
	return 0
}

: >"$TEST_TMP/first.log"
sluiced_start "$TEST_TMP/first.log" "${args[@]}"
tap_ok $? "sluiced starts with $shards shards"
# Metadata auto-creates the topic; the producer then writes to it.
timeout 20 "$PY" -c '
import sys, time, kafka_wire as kw
s = kw.connect(int(sys.argv[1]))
for _ in range(50):
    if kw.metadata(s, [sys.argv[2]])[1][sys.argv[2]][0] == 0:
        break
    time.sleep(0.1)' "$port" "$topic"
timeout 300 "$PY" "$SLUICE_SRCDIR/tests/integration/fetch_edges.py" "$port" "$shards" "$topic" \
	first >"$TEST_TMP/first.out" 2>&1
report_lines "$TEST_TMP/first.out" "$first_checks"

kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 100
tap_ok $([ "$EXIT_STATUS" = 0 ] && echo 0 || echo 1) "SIGTERM: sluiced exits 0 ($EXIT_STATUS)"

: >"$TEST_TMP/again.log"
sluiced_start "$TEST_TMP/again.log" "${args[@]}"
tap_ok $? "sluiced restarts on the same data"
timeout 300 "$PY" "$SLUICE_SRCDIR/tests/integration/fetch_edges.py" "$port" "$shards" "$topic" \
	again >"$TEST_TMP/again.out" 2>&1
report_lines "$TEST_TMP/again.out" "$again_checks"
kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 100
tap_ok $([ "$EXIT_STATUS" = 0 ] && echo 0 || echo 1) "SIGTERM again: sluiced exits 0 ($EXIT_STATUS)"
tap_done
