#!/bin/bash
# tests/fuzz/run-fuzz.sh: the `make check` run of the libFuzzer targets (tests/fuzz/local.mk
# builds them when configure found a clang that links libFuzzer). Each target runs for
# FUZZ_SECONDS (default 30) from its committed seed corpus (tests/fuzz/corpus/NAME), with
# new inputs kept in a scratch copy, and is one TAP check: ok when libFuzzer found
# nothing, not ok with the reproducer's path and the report's last lines when it
# crashed, leaked or timed out; SKIP, with the reason, when the target was not built. The
# exec count of each run is printed as a TAP comment. For a long run use the targets
# directly (see the header of each tests/fuzz/fuzz_*.c).
SLUICE_BUILDDIR=${SLUICE_BUILDDIR:-$(pwd)}
SLUICE_SRCDIR=${SLUICE_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${FUZZ_SECONDS:-30}
targets="fuzz_request fuzz_batch fuzz_groups"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "1..$(echo $targets | wc -w)"
n=0
failed=0
for target in $targets; do
	n=$((n + 1))
	bin="$SLUICE_BUILDDIR/tests/fuzz/$target"
	corpus=${target#fuzz_}
	if [ ! -x "$bin" ]; then
		echo "ok $n - $target # SKIP not built: configure found no clang that links" \
			"libFuzzer (apt-get install clang), so make fuzz builds nothing"
		continue
	fi
	mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
	log="$work/$target/log"
	# LeakSanitizer runs per input; the suppressions cover libnuma's cache (tests/lsan.supp).
	LSAN_OPTIONS="suppressions=$SLUICE_SRCDIR/tests/lsan.supp print_suppressions=0" \
		timeout $((seconds + 60)) "$bin" -max_total_time="$seconds" -max_len=16384 \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$work/$target/artifacts/" \
		"$work/$target/corpus" "$SLUICE_SRCDIR/tests/fuzz/corpus/$corpus" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "# $target: ${runs:-?} inputs in ${seconds} s"
	if [ $rc -eq 0 ]; then
		echo "ok $n - $target: $seconds s from the seed corpus, no finding"
		continue
	fi
	failed=$((failed + 1))
	echo "not ok $n - $target: exit status $rc"
	for f in "$work/$target/artifacts/"*; do
		[ -e "$f" ] || continue
		keep="$SLUICE_BUILDDIR/tests/fuzz/$(basename "$f")-$target"
		cp "$f" "$keep"
		echo "# reproducer kept as $keep: run $bin $keep"
	done
	tail -25 "$log" | sed 's/^/# /'
done
[ $failed -eq 0 ]
