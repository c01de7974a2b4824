#!/bin/bash
# tests/integration/bench-smoke.sh: sluice-bench against a real sluiced on loopback, a
# smoke run of a few seconds, never a timing check. sluice-bench produce --messages
# 50000 --json bootstraps (CreateTopics, Metadata: one broker per shard), sends its own
# RecordBatch v2 batches to each partition's leader shard and exits 0; its last stdout
# line parses as JSON with msgs == 50000, errors == 0 and the latency fields; kcat
# (librdkafka) reads exactly those 50,000 records of 100 bytes back, so the batches are
# valid Kafka to a real client; sluice-bench consume reads the 50,000 back from offset 0;
# an e2e run at a bounded rate reports end-to-end latency samples with no errors; and a
# producer whose topic is deleted (and auto-created again) under it refreshes Metadata,
# routes to the new partitions and still gets exactly --messages acknowledged, with the
# refused batches counted as retried, not as errors, and records in the new topic.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

tap_plan 11
PY=/usr/bin/python3
BENCH="$SLUICE_BUILDDIR/tools/sluice-bench"
COUNT=50000

if [ ! -x "$BENCH" ] || [ ! -x "$PY" ]; then
	for i in $(seq 11); do
		tap_skip "bench smoke check $i" "needs $BENCH and $PY"
	done
	exit 0
fi

shards=2
[ "$(nproc)" -lt 2 ] && shards=1
# O_DIRECT segments: keep the data under the build directory, not on tmpfs.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/bench-smoke.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base "$shards")
broker="127.0.0.1:$port"
prefix="bench-smoke-$$"

sluiced_start "$TEST_TMP/sluiced.log" --pool-bytes 96m --advertised-host 127.0.0.1 \
	--port "$port" --shards "$shards" --data-dir "$DATA/d"
tap_ok $? "sluiced starts with $shards shards"

# check_json FILE MSGS: the last line of FILE is one JSON object with msgs == MSGS (or
# > 0 when MSGS is "any"), errors == 0 and every latency field a number.
check_json() {
	tail -n 1 "$1" | "$PY" -c '
import json, sys
o = json.loads(sys.stdin.readline())
want = sys.argv[1]
for k in ("msgs_per_sec", "mb_per_sec", "p50_us", "p99_us", "p999_us", "max_us", "errors", "msgs"):
    assert isinstance(o[k], (int, float)), k
assert o["errors"] == 0, "errors %d" % o["errors"]
if want == "any":
    assert o["msgs"] > 0, "no messages"
else:
    assert o["msgs"] == int(want), "msgs %d" % o["msgs"]
' "$2" 2>"$1.check"
}

# 16 KiB batches: with the default 1 MiB ones the first connection's window would take
# all 50,000 records (a batch is up to 9,500 of them) and one partition stay empty.
timeout 10 "$BENCH" produce --brokers "$broker" --topic-prefix "$prefix" --topics 1 \
	--partitions-per-topic 2 --message-size 100 --batch-bytes 16384 --messages $COUNT --json \
	>"$TEST_TMP/produce.out" 2>"$TEST_TMP/produce.err"
rc=$?
tap_ok $rc "sluice-bench produce --messages $COUNT --json exits 0"
[ $rc -eq 0 ] || tap_diag "exit $rc" "$(tail -5 "$TEST_TMP/produce.err")"
check_json "$TEST_TMP/produce.out" $COUNT
rc=$?
tap_ok $rc "its last line is JSON with msgs == $COUNT and errors == 0"
[ $rc -eq 0 ] || tap_diag "$(tail -2 "$TEST_TMP/produce.out")" "$(cat "$TEST_TMP/produce.out.check")"
tap_diag "$(head -n 2 "$TEST_TMP/produce.out")"

if command -v kcat >/dev/null; then
	timeout 20 kcat -C -b "$broker" -t "$prefix-0" -o beginning -e -q -f '%p %o %S\n' \
		>"$TEST_TMP/kcat.out" 2>"$TEST_TMP/kcat.err"
	rc=$?
	n=$(wc -l <"$TEST_TMP/kcat.out")
	sizes=$(awk '{ print $3 }' "$TEST_TMP/kcat.out" | sort -u | tr '\n' ' ')
	[ $rc -eq 0 ] && [ "$n" -eq $COUNT ]
	tap_ok $? "kcat -C -e reads back $COUNT records (got $n, exit $rc)"
	[ "$sizes" = "100 " ]
	tap_ok $? "every record kcat read has a 100-byte value (sizes: $sizes)"
	parts=$(awk '{ print $1 }' "$TEST_TMP/kcat.out" | sort -u | wc -l)
	[ "$parts" -eq 2 ]
	tap_ok $? "records landed in both partitions (got $parts)"
else
	tap_skip "kcat reads back $COUNT records" "needs kcat (apt-get install kcat)"
	tap_skip "kcat sees 100-byte values" "needs kcat (apt-get install kcat)"
	tap_skip "records landed in both partitions" "needs kcat (apt-get install kcat)"
fi

timeout 10 "$BENCH" consume --brokers "$broker" --topic-prefix "$prefix" --topics 1 \
	--messages $COUNT --duration 8 --json >"$TEST_TMP/consume.out" 2>"$TEST_TMP/consume.err"
rc=$?
check_json "$TEST_TMP/consume.out" $COUNT
rc2=$?
[ $rc -eq 0 ] && [ $rc2 -eq 0 ]
tap_ok $? "sluice-bench consume reads the $COUNT records back from offset 0 (exit $rc)"
[ $rc2 -eq 0 ] || tap_diag "$(tail -3 "$TEST_TMP/consume.out")" "$(tail -3 "$TEST_TMP/consume.err")"

timeout 10 "$BENCH" e2e --brokers "$broker" --topic-prefix "$prefix" --topics 1 \
	--rate 20000 --duration 2 --json >"$TEST_TMP/e2e.out" 2>"$TEST_TMP/e2e.err"
rc=$?
check_json "$TEST_TMP/e2e.out" any
rc2=$?
samples=$(tail -n 1 "$TEST_TMP/e2e.out" | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["samples"])' 2>/dev/null)
[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "${samples:-0}" -gt 0 ]
tap_ok $? "sluice-bench e2e at 20,000 msgs/s reports end-to-end latency (samples ${samples:-none}, exit $rc)"
[ $rc2 -eq 0 ] || tap_diag "$(tail -3 "$TEST_TMP/e2e.out")" "$(tail -3 "$TEST_TMP/e2e.err")"

# Re-routing: delete the topic once the producer runs (the first progress line); its
# next batches get UNKNOWN_TOPIC_OR_PARTITION, its Metadata refresh re-creates the topic
# (auto-create) and the refused records are sent again.
SLUICECTL="$SLUICE_BUILDDIR/tools/sluicectl"
RR_COUNT=60000
timeout 20 "$BENCH" produce --brokers "$broker" --topic-prefix "$prefix-rr" --topics 1 \
	--message-size 100 --rate 20000 --messages $RR_COUNT --json \
	>"$TEST_TMP/rr.out" 2>"$TEST_TMP/rr.err" &
rr_pid=$!
for i in $(seq 100); do
	grep -q '^\[ *1s\]' "$TEST_TMP/rr.err" 2>/dev/null && break
	sleep 0.1
done
"$SLUICECTL" --brokers "$broker" topics delete "$prefix-rr-0" >"$TEST_TMP/rr.delete" 2>&1
del_rc=$?
wait $rr_pid
rc=$?
check_json "$TEST_TMP/rr.out" $RR_COUNT
rc2=$?
counts=$(tail -n 1 "$TEST_TMP/rr.out" | "$PY" -c '
import json, sys
o = json.loads(sys.stdin.readline())
print(o["retried"], o["metadata_refreshes"])' 2>/dev/null)
set -- ${counts:-0 0}
[ $del_rc -eq 0 ] && [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$1" -ge 1 ] && [ "$2" -ge 1 ]
tap_ok $? "a producer whose topic is deleted under it refreshes Metadata and gets all $RR_COUNT acknowledged (retried $1, refreshes $2, delete exit $del_rc, exit $rc)"
[ $rc2 -eq 0 ] || tap_diag "$(tail -3 "$TEST_TMP/rr.out")" "$(tail -5 "$TEST_TMP/rr.err")"
if command -v kcat >/dev/null; then
	n=$(timeout 20 kcat -C -b "$broker" -t "$prefix-rr-0" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l)
	[ "$n" -gt 0 ] && [ "$n" -le $RR_COUNT ]
	tap_ok $? "the re-created topic holds the records sent after the delete (kcat reads $n)"
else
	tap_skip "the re-created topic holds records" "needs kcat (apt-get install kcat)"
fi

kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 100
[ "$EXIT_STATUS" = 0 ]
tap_ok $? "sluiced exits 0 on SIGTERM after the runs (status $EXIT_STATUS)"

tap_done
