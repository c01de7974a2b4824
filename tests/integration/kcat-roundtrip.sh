#!/bin/bash
# tests/integration/kcat-roundtrip.sh: issue 4's kcat round trip on a real sluiced on
# loopback. kcat (Debian's, librdkafka) produces 100,000 keyed messages with headers
# (kcat -P -K: -H, in 4 runs of 25,000 with their own headers, as kcat gives every message
# of a run the same -H headers) to a topic auto-created with 6 partitions
# (--num-partitions 6), then consumes them all back (kcat -C -e) and kcat_roundtrip.py
# compares keys, values, headers and each partition's order byte for byte with what was
# sent. kcat -L lists each shard as a broker; kcat -Q -t topic:p:ts, for a time taken
# between two runs, answers for every partition the offset of its first message of the
# later run (or -1 where there is none, as Kafka). Prints the consume rate (from the
# tail cache) as a TAP comment.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
COUNT=${KCAT_ROUNDTRIP_COUNT:-100000}
CHUNKS=4
PARTITIONS=6
tap_plan 9

if ! command -v kcat >/dev/null || [ ! -x "$PY" ]; then
	for i in $(seq 9); do
		tap_skip "kcat round trip check $i" "needs kcat and $PY (apt-get install kcat python3)"
	done
	exit 0
fi

shards=2
[ "$(nproc)" -lt 2 ] && shards=1
# O_DIRECT does not work on tmpfs: keep the data under the build directory.
DATA=$(mktemp -d "$SLUICE_BUILDDIR/kcat-roundtrip.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base $((shards + 1)))
broker="127.0.0.1:$port"
topic="kcat-roundtrip-$$"
helper="$SLUICE_SRCDIR/tests/integration/kcat_roundtrip.py"

: >"$TEST_TMP/sluiced.log"
sluiced_start "$TEST_TMP/sluiced.log" --pool-bytes 96m --advertised-host 127.0.0.1 \
	--port "$port" --shards "$shards" --num-partitions $PARTITIONS --data-dir "$DATA"
tap_ok $? "sluiced starts with $shards shards"

timeout 20 kcat -L -b "$broker" >"$TEST_TMP/L.out" 2>&1
missing=""
for i in $(seq 0 $((shards - 1))); do
	grep -q "broker $i at 127.0.0.1:$((port + i))" "$TEST_TMP/L.out" || missing="$missing $i"
done
grep -q " $shards brokers:" "$TEST_TMP/L.out" || missing="$missing count"
tap_ok $((${#missing} != 0)) "kcat -L lists each of the $shards shards as a broker${missing:+ (missing:$missing)}"

"$PY" "$helper" gen "$TEST_TMP" "$COUNT" $CHUNKS
produce_ok=0
qtime=0
t0=$(date +%s.%N)
for j in $(seq 0 $((CHUNKS - 1))); do
	if [ "$j" -eq 1 ]; then
		# kcat -Q's time: after every message of run 0 was stamped, before run 1's.
		sleep 1.1
		qtime=$(date +%s%3N)
		sleep 0.1
	fi
	trace="t-$j-$(printf "%$((j * 7))s" | tr ' ' x)"
	if ! timeout 120 kcat -P -b "$broker" -t "$topic" -K: -H "chunk=$j" -H "trace=$trace" \
		-X queue.buffering.max.messages=200000 -l "$TEST_TMP/chunk-$j.txt" \
		>"$TEST_TMP/P-$j.out" 2>&1; then
		produce_ok=1
		tap_diag "kcat -P run $j failed:" "$(tail -5 "$TEST_TMP/P-$j.out")"
	fi
done
t1=$(date +%s.%N)
tap_ok $produce_ok "kcat -P writes $COUNT keyed messages with headers in $CHUNKS runs"
tap_diag "$(echo "$t0 $t1 $COUNT" | awk '{ printf "produce: %d messages in %.2f s (4 kcat runs, 1.2 s of it waiting)", $3, $2 - $1 }')"

timeout 20 kcat -L -b "$broker" -t "$topic" >"$TEST_TMP/Lt.out" 2>&1
grep -q "topic \"$topic\" with $PARTITIONS partitions:" "$TEST_TMP/Lt.out"
tap_ok $? "the topic was auto-created with $PARTITIONS partitions"

t0=$(date +%s.%N)
timeout 120 kcat -C -b "$broker" -t "$topic" -o beginning -e -q \
	-f '%p\t%o\t%k\t%h\t%s\n' >"$TEST_TMP/C.out" 2>"$TEST_TMP/C.err"
rc=$?
t1=$(date +%s.%N)
tap_ok $rc "kcat -C -e consumes to the end of every partition and exits"
[ $rc -ne 0 ] && tap_diag "$(tail -5 "$TEST_TMP/C.err")"
bytes=$(stat -c %s "$TEST_TMP/C.out")
tap_diag "$(echo "$t0 $t1 $COUNT $bytes" | awk '{ s = $2 - $1; printf "consume: %d messages (%.1f MB of kcat output) in %.2f s: %.0f msgs/s, with kcat start-up and the last long-poll (fetch.wait.max.ms, 500) that tells it the end", $3, $4 / 1e6, s, $3 / s }')"

"$PY" "$helper" check "$TEST_TMP" $CHUNKS "$TEST_TMP/C.out" >"$TEST_TMP/check.out" 2>&1
n=0
while IFS= read -r line; do
	case "$line" in
	"ok: "*) tap_ok 0 "${line#ok: }"; n=$((n + 1)) ;;
	"fail: "*) tap_ok 1 "${line#fail: }"; n=$((n + 1)) ;;
	esac
done <"$TEST_TMP/check.out"
while [ $n -lt 3 ]; do
	tap_ok 1 "comparison check $((n + 1)) did not run"
	tap_diag "$(tail -5 "$TEST_TMP/check.out")"
	n=$((n + 1))
done

"$PY" "$helper" expect-q "$TEST_TMP" "$TEST_TMP/C.out" 1 >"$TEST_TMP/Q.want"
qargs=()
for p in $(seq 0 $((PARTITIONS - 1))); do
	qargs+=(-t "$topic:$p:$qtime")
done
timeout 20 kcat -Q -b "$broker" "${qargs[@]}" 2>"$TEST_TMP/Q.err" |
	sed -n 's/^.* \[\([0-9]*\)\] offset \(-\{0,1\}[0-9]*\)$/\1 \2/p' | sort -n >"$TEST_TMP/Q.got"
cmp -s "$TEST_TMP/Q.want" "$TEST_TMP/Q.got"
rc=$?
tap_ok $rc "kcat -Q -t topic:p:ts finds each partition's first message written after ts"
[ $rc -ne 0 ] && tap_diag "want: $(tr '\n' ' ' <"$TEST_TMP/Q.want")" "got: $(tr '\n' ' ' <"$TEST_TMP/Q.got")" "$(tail -3 "$TEST_TMP/Q.err")"

kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 100
[ "$EXIT_STATUS" = 0 ] || tap_diag "sluiced exit: $EXIT_STATUS" "$(tail -5 "$TEST_TMP/sluiced.log")"
tap_done
