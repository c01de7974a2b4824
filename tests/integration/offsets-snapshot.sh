#!/bin/bash
# tests/integration/offsets-snapshot.sh: committed offsets survive the retention of
# __consumer_offsets. Each coordinator restates every live offset every
# --offsets-snapshot-ms (here 300 ms) and the topic keeps three intervals, so its log
# start moves on while nothing committed is lost. A real sluiced (two shards, retention
# checked every 200 ms): group "keep" commits once through confluent-kafka (assign()
# style, generation -1), group "churn" commits 150 times over ~2 s; after several
# intervals the earliest offset of an __consumer_offsets partition has moved past 0
# (the log was trimmed), both groups still read back their last commits, and after a
# SIGTERM and a restart (the replay starts from the trimmed log) they still do.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3
checks=6
tap_plan $checks
skip_all() {
	for i in $(seq "$1" "$checks"); do tap_skip "offsets snapshot check $i" "$2"; done
	exit 0
}
[ -x "$PY" ] || skip_all 1 "no $PY (Debian's python3)"
"$PY" -c 'import confluent_kafka' 2>/dev/null ||
	skip_all 1 "$PY has no confluent_kafka (apt-get install python3-confluent-kafka)"

DATA=$(mktemp -d "$SLUICE_BUILDDIR/offsets-snapshot.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
port=$(free_port_base 2)
args=(--pool-bytes 96m --advertised-host 127.0.0.1 --port "$port" --shards 2
	--data-dir "$DATA/d" --offsets-snapshot-ms 300 --retention-check-ms 200
	--group-initial-rebalance-delay-ms 0)
if ! sluiced_start "$TEST_TMP/a.log" "${args[@]}"; then
	tap_ok 1 "sluiced starts"
	tap_diag "$(tail -5 "$TEST_TMP/a.log")"
	skip_all 2 "no daemon"
fi
tap_ok 0 "sluiced starts with --offsets-snapshot-ms 300"

cat >"$TEST_TMP/client.py" <<'PYEOF'
import sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
port, what = sys.argv[1], sys.argv[2]
boot = "127.0.0.1:%s" % port
def consumer(group):
    return Consumer({"bootstrap.servers": boot, "group.id": group,
                     "enable.auto.commit": False})
if what == "commit":
    p = Producer({"bootstrap.servers": boot})
    for i in range(200):
        p.produce("snap", key=str(i), value=str(i), partition=i % 2)
    p.flush(10)
    c = consumer("keep")
    c.commit(offsets=[TopicPartition("snap", 0, 37), TopicPartition("snap", 1, 41)],
             asynchronous=False)
    c.close()
    c = consumer("churn")
    for i in range(1, 151):
        c.commit(offsets=[TopicPartition("snap", 0, i % 100), TopicPartition("snap", 1, i)],
                 asynchronous=False)
        time.sleep(0.013)
    c.close()
    print("committed")
elif what == "trimmed":
    c = consumer("probe")
    lows = []
    for p in range(2):
        low, high = c.get_watermark_offsets(TopicPartition("__consumer_offsets", p), timeout=5)
        lows.append((low, high))
    c.close()
    print("watermarks", lows)
    print("ok" if any(low > 0 for low, high in lows) else "not trimmed")
elif what == "read":
    got = []
    for group in ("keep", "churn"):
        c = consumer(group)
        parts = c.committed([TopicPartition("snap", 0), TopicPartition("snap", 1)], timeout=10)
        got += [(group, t.partition, t.offset) for t in parts]
        c.close()
    print(got)
    want = [("keep", 0, 37), ("keep", 1, 41), ("churn", 0, 50), ("churn", 1, 150)]
    print("ok" if got == want else "mismatch, want %r" % (want,))
PYEOF
client() { timeout 60 "$PY" "$TEST_TMP/client.py" "$port" "$@" 2>&1; }

out=$(client commit)
tap_ok "$([ "$(echo "$out" | tail -1)" = committed ]; echo $?)" "group keep commits once, group churn 150 times ($(echo "$out" | tail -1))"
sleep 2.5 # eight snapshot intervals, several retention checks
out=$(client trimmed)
tap_ok "$([ "$(echo "$out" | tail -1)" = ok ]; echo $?)" \
	"retention trimmed __consumer_offsets ($(echo "$out" | head -1))"
out=$(client read)
tap_ok "$([ "$(echo "$out" | tail -1)" = ok ]; echo $?)" \
	"after the trim both groups read back their last commits ($(echo "$out" | head -1))"

kill -TERM "$SLUICED_PID"
wait_exit "$SLUICED_PID" 300
if ! sluiced_start "$TEST_TMP/b.log" "${args[@]}"; then
	tap_ok 1 "sluiced restarts"
	skip_all 6 "no daemon"
fi
out=$(client read)
tap_ok "$([ "$(echo "$out" | tail -1)" = ok ]; echo $?)" \
	"after a restart (replay from the trimmed log) the same commits ($(echo "$out" | head -1))"
bad=$(grep -h " ERROR " "$TEST_TMP/a.log" "$TEST_TMP/b.log" | head -3)
tap_ok "$([ -z "$bad" ]; echo $?)" "no ERROR line in the daemon's logs"
[ -z "$bad" ] || tap_diag "$bad"
tap_done
