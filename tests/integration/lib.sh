# tests/integration/lib.sh: shared shell helpers of the integration tests, sourced by
# each tests/integration/*.sh. They print TAP (a plan, one "ok"/"not ok" line per check,
# "# SKIP reason" for what this machine cannot test), start sluiced on free loopback
# ports with a private data directory, wait for its start-up line, and make sure no
# daemon outlives the test (an EXIT trap kills what was started).

SLUICE_BUILDDIR=${SLUICE_BUILDDIR:-$(pwd)}
SLUICED="$SLUICE_BUILDDIR/sluiced"
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-test.XXXXXX")
tap_count=0
tap_failed=0
started_pids=""

tap_plan() { echo "1..$1"; }

# ok CONDITION-EXIT-STATUS DESCRIPTION: records one check.
tap_ok() {
	tap_count=$((tap_count + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $tap_count - $2"
	else
		echo "not ok $tap_count - $2"
		tap_failed=$((tap_failed + 1))
	fi
}

tap_skip() {
	tap_count=$((tap_count + 1))
	echo "ok $tap_count - $1 # SKIP $2"
}

tap_diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

cleanup() {
	for pid in $started_pids; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$TEST_TMP"
}
trap cleanup EXIT

# free_port_base COUNT: prints a port P such that no socket uses P..P+COUNT-1 now (any
# state: a client's connection bound to a port makes listen() on it fail too). Ports
# come from below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default), so a client connecting meanwhile cannot take them, in blocks of 64 (or
# more) picked by a hash of the pid: tests that make check runs side by side have
# neighbouring pids, and with P = base + pid their ranges overlapped (a test's second
# shard found its port taken).
free_port_base() {
	count=$1
	low=20000
	high=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$high" -gt $((low + 1000)) ] || high=32768
	block=64
	while [ "$block" -lt "$count" ]; do
		block=$((block * 2))
	done
	blocks=$(((high - low) / block))
	[ "$blocks" -gt 0 ] || blocks=1
	i=$((($$ * 2654435761) % blocks))
	tries=0
	while [ "$tries" -lt "$blocks" ]; do
		port=$((low + i * block))
		busy=no
		j=0
		while [ $j -lt "$count" ]; do
			if ss -Htan "sport = :$((port + j))" 2>/dev/null | grep -q .; then
				busy=yes
				break
			fi
			j=$((j + 1))
		done
		[ $busy = no ] && { echo "$port"; return; }
		i=$(((i + 1) % blocks))
		tries=$((tries + 1))
	done
	echo "$low"
}

# is_running PID: true while PID exists and has not exited (a zombie has exited).
is_running() {
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# sluiced_start LOGFILE ARGS...: starts sluiced in the background with its output in
# LOGFILE and sets SLUICED_PID; returns 0 once "sluiced running" is logged, 1 if the
# daemon exited or did not come up within 10 s.
sluiced_start() {
	log=$1
	shift
	: >"$log" # now: the background job's own redirect may come after the first grep
	"$SLUICED" "$@" >"$log" 2>&1 &
	SLUICED_PID=$!
	started_pids="$started_pids $SLUICED_PID"
	waited=0
	while [ $waited -lt 100 ]; do
		grep -q "sluiced running" "$log" && return 0
		is_running "$SLUICED_PID" || return 1
		sleep 0.1
		waited=$((waited + 1))
	done
	return 1
}

# wait_exit PID TENTHS: waits up to TENTHS/10 s for PID (a child of this shell) to
# exit; sets EXIT_STATUS to its exit status, or to "timeout". Not for use inside $(...),
# where the shell is no longer the daemon's parent.
wait_exit() {
	pid=$1
	tenths=$2
	i=0
	while [ $i -lt "$tenths" ]; do
		if ! is_running "$pid"; then
			wait "$pid"
			EXIT_STATUS=$?
			return
		fi
		sleep 0.1
		i=$((i + 1))
	done
	EXIT_STATUS=timeout
}

tap_done() {
	[ "$tap_failed" -eq 0 ]
}
