#!/bin/bash
# tests/integration/sluiced-start-stop.sh: starts the real sluiced and checks what an
# operator sees: --help lists every setting; with --shards 2 there are two shard
# threads, each pinned to its own single CPU; the start-up log names each shard's
# io_uring mode and buffer pool; SIGTERM and SIGINT exit 0 within 2 s; SIGHUP reopens
# the log file; bad settings, a data directory in use and an RLIMIT_MEMLOCK too low for
# registered buffers each exit 1 with one line naming the cause.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

tap_plan 13
ncpu=$(nproc)
port=$(free_port_base 4)
common=(--port "$port" --pool-bytes 96m)

# --help
"$SLUICED" --help >"$TEST_TMP/help" 2>&1
rc=$?
missing=""
for flag in --port --data-dir --shards --cpus --fsync --log-level --config --log-file --pool-bytes; do
	grep -q -- "$flag" "$TEST_TMP/help" || missing="$missing $flag"
done
tap_ok $((rc != 0 || ${#missing} != 0)) "--help exits 0 and lists every setting${missing:+ (missing:$missing)}"

# Two shards, each pinned to its own CPU.
if [ "$ncpu" -ge 2 ]; then
	if sluiced_start "$TEST_TMP/two.log" "${common[@]}" --shards 2 --data-dir "$TEST_TMP/d2"; then
		pid=$SLUICED_PID
		cpus=()
		for task in /proc/"$pid"/task/*; do
			name=$(cat "$task/comm")
			case "$name" in
			shard-*) cpus+=("$(awk '/^Cpus_allowed_list/ {print $2}' "$task/status")") ;;
			esac
		done
		single=0
		for c in "${cpus[@]}"; do [[ "$c" =~ ^[0-9]+$ ]] || single=1; done
		distinct=$(printf '%s\n' "${cpus[@]}" | sort -u | wc -l)
		tap_ok $((${#cpus[@]} != 2 || single != 0 || distinct != 2)) \
			"--shards 2: two shard threads, each pinned to one CPU (got: ${cpus[*]})"
		n=$(grep -c "shard up: cpu [0-9]*, numa node .*, io_uring .*, pool [0-9]* MiB" "$TEST_TMP/two.log")
		tap_ok $((n != 2)) "start-up log names each shard's io_uring mode and pool"
		kill -TERM "$pid"
		wait_exit "$pid" 20
		rc=$EXIT_STATUS
		tap_ok $([ "$rc" = 0 ]; echo $?) "SIGTERM: exit status 0 within 2 s (got $rc)"
		grep -q "shard stopping" "$TEST_TMP/two.log"
		tap_ok $? "every shard finished its loop"
	else
		tap_ok 1 "--shards 2 starts"; tap_diag "$(tail -5 "$TEST_TMP/two.log")"
		tap_skip "start-up log" "no daemon"; tap_skip "SIGTERM" "no daemon"; tap_skip "shard stop" "no daemon"
	fi
else
	for t in "--shards 2 pinning" "start-up log" "SIGTERM" "shard stop"; do
		tap_skip "$t" "needs 2 CPUs, this machine has $ncpu"
	done
fi

# SIGINT, one shard per CPU by default, --cpus picks the CPU.
last=$((ncpu - 1))
if sluiced_start "$TEST_TMP/int.log" "${common[@]}" --cpus "$last" --data-dir "$TEST_TMP/d1"; then
	pid=$SLUICED_PID
	pinned=$(for t in /proc/"$pid"/task/*; do
		[[ $(cat "$t/comm") == shard-* ]] && awk '/^Cpus_allowed_list/ {print $2}' "$t/status"
	done)
	tap_ok $([ "$pinned" = "$last" ]; echo $?) "--cpus $last: one shard pinned to CPU $last (got $pinned)"
	kill -INT "$pid"
	wait_exit "$pid" 20
	rc=$EXIT_STATUS
	tap_ok $([ "$rc" = 0 ]; echo $?) "SIGINT: exit status 0 within 2 s (got $rc)"
else
	tap_ok 1 "--cpus starts"; tap_diag "$(tail -5 "$TEST_TMP/int.log")"
	tap_skip "SIGINT" "no daemon"
fi

# SIGHUP reopens the log file after rotation.
if sluiced_start "$TEST_TMP/hup.out" "${common[@]}" --shards 1 --data-dir "$TEST_TMP/d3" \
	--log-file "$TEST_TMP/sluiced.log"; then
	:
fi
pid=$SLUICED_PID
for _ in $(seq 50); do grep -q "sluiced running" "$TEST_TMP/sluiced.log" 2>/dev/null && break; sleep 0.1; done
mv "$TEST_TMP/sluiced.log" "$TEST_TMP/sluiced.log.1"
kill -HUP "$pid"
for _ in $(seq 50); do grep -q "log file reopened" "$TEST_TMP/sluiced.log" 2>/dev/null && break; sleep 0.1; done
grep -q "log file reopened" "$TEST_TMP/sluiced.log" 2>/dev/null
tap_ok $? "SIGHUP: the log file is reopened at its path after rotation"

# A second daemon on the same data directory is refused.
timeout 20 "$SLUICED" "${common[@]}" --port $((port + 2)) --shards 1 --data-dir "$TEST_TMP/d3" >"$TEST_TMP/dup.log" 2>&1
rc=$?
grep -q "is in use by another sluiced" "$TEST_TMP/dup.log"
tap_ok $((rc != 1 || $? != 0)) "a data directory in use: exit 1 naming the lock"
kill -TERM "$pid"
wait_exit "$pid" 20
rc=$EXIT_STATUS

# Bad settings.
"$SLUICED" --no-such-flag 1 >"$TEST_TMP/bad1" 2>&1
rc=$?
grep -q "unknown setting 'no-such-flag'" "$TEST_TMP/bad1"
tap_ok $((rc != 1 || $? != 0)) "unknown flag: exit 1 naming it"
"$SLUICED" --port 70000 >"$TEST_TMP/bad2" 2>&1
rc=$?
grep -q "invalid value '70000' for setting 'port'" "$TEST_TMP/bad2"
tap_ok $((rc != 1 || $? != 0)) "bad value: exit 1 naming value and setting"
timeout 20 "$SLUICED" "${common[@]}" --shards $((ncpu + 1)) --data-dir "$TEST_TMP/d4" >"$TEST_TMP/bad3" 2>&1
rc=$?
grep -q "exceeds the $ncpu CPUs available" "$TEST_TMP/bad3"
tap_ok $((rc != 1 || $? != 0)) "--shards above the CPU count: exit 1 naming both"

# RLIMIT_MEMLOCK too low for registered buffers (an unprivileged user; root has
# CAP_IPC_LOCK and is exempt).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	mkdir -p "$TEST_TMP/d5" && chmod 777 "$TEST_TMP/d5" "$TEST_TMP"
	(ulimit -l 64 && timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
		"$SLUICED" "${common[@]}" --port $((port + 3)) --shards 1 --data-dir "$TEST_TMP/d5") \
		>"$TEST_TMP/memlock.log" 2>&1
	rc=$?
	grep -q "RLIMIT_MEMLOCK (64 KiB) is too low" "$TEST_TMP/memlock.log"
	tap_ok $((rc != 1 || $? != 0)) "RLIMIT_MEMLOCK too low: exit 1 naming the limit and the fix"
	[ $rc -ne 1 ] && tap_diag "$(cat "$TEST_TMP/memlock.log")"
else
	tap_skip "RLIMIT_MEMLOCK too low" "needs root, setpriv and the user nobody"
fi
tap_done
