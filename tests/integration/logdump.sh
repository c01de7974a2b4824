#!/bin/bash
# tests/integration/logdump.sh: checks sluice-logdump on a real shard log, as an operator
# would use it: `sluice-logbench --write-sample` writes a small deterministic log (shard 0,
# partitions 1-3, 1 MiB segments, cleanly closed, with padding frames), and logdump must
# list its segments, checkpoint and partitions (offset ranges and batch counts as the
# writer reports them), print every frame with --frames (filtered by --partition), pass
# --verify on the intact log (the zeroed preallocated tail is the end of the log, not an
# error), leave every file unchanged, and, after real damage made with dd (a flipped byte
# inside a frame, non-zero bytes in the zeroed tail, a flipped byte in the checkpoint),
# exit 1 naming the file and position of each error. Bad arguments exit 2.
. "$SLUICE_SRCDIR/tests/integration/lib.sh"

LOGDUMP="$SLUICE_BUILDDIR/tools/sluice-logdump"
LOGBENCH="$SLUICE_BUILDDIR/tools/sluice-logbench"
tap_plan 14

# --help
"$LOGDUMP" --help >"$TEST_TMP/help" 2>&1
rc=$?
missing=""
for flag in --shard --verify --frames --partition; do
	grep -q -- "$flag" "$TEST_TMP/help" || missing="$missing $flag"
done
tap_ok $((rc != 0 || ${#missing} != 0)) "--help exits 0 and lists every option${missing:+ (missing:$missing)}"

# Bad arguments.
"$LOGDUMP" "$TEST_TMP/no-such-dir" >"$TEST_TMP/nodir" 2>&1
rc1=$?
"$LOGDUMP" >/dev/null 2>&1
rc2=$?
tap_ok $((rc1 != 2 || rc2 != 2)) "a missing data directory or no argument: exit 2 (got $rc1, $rc2)"

# The sample log.
data="$TEST_TMP/data"
if ! "$LOGBENCH" --write-sample "$data" >"$TEST_TMP/sample" 2>"$TEST_TMP/sample.err"; then
	tap_diag "$(tail -3 "$TEST_TMP/sample.err")"
	reason="cannot write a shard log in $TEST_TMP (O_DIRECT or io_uring unavailable?)"
	while [ "$tap_count" -lt 14 ]; do tap_skip "logdump on a sample log" "$reason"; done
	exit 0
fi
shard="$data/shard-000"
segments=$(awk '/^sample: segments/ {print $3}' "$TEST_TMP/sample")
padding=$(awk '/^sample: segments/ {print $7}' "$TEST_TMP/sample")
md5sum "$shard"/* >"$TEST_TMP/md5"

# Listing.
"$LOGDUMP" "$data" >"$TEST_TMP/list" 2>&1
rc=$?
listed=$(grep -c '^    [0-9]\{20\}\.log ' "$TEST_TMP/list")
grep -q "^  checkpoint: covered position [0-9]*, 3 partitions" "$TEST_TMP/list"
ck=$?
tap_ok $((rc != 0 || listed != segments || ck != 0)) \
	"lists the $segments segments and the checkpoint (exit $rc, $listed segments listed)"

bad=""
total=0
while read -r _ _ id _ range _ batches _; do
	first=${range%..*}
	next=${range#*..}
	total=$((total + batches))
	line=$(awk -v id="$id" '$1 == id && NF == 9' "$TEST_TMP/list")
	set -- $line
	[ "$2" = "$first" ] && [ "$3" = "$next" ] && [ "$4" = "$batches" ] || bad="$bad $id"
done < <(grep '^sample: partition' "$TEST_TMP/sample")
tap_ok $((${#bad} != 0)) "partitions 1-3 with the offsets and batch counts the writer reported${bad:+ (wrong:$bad)}"

# --frames, --partition.
"$LOGDUMP" "$data" --frames >"$TEST_TMP/frames" 2>&1
data_frames=$(awk '$1 == "frame" && $NF == "no"' "$TEST_TMP/frames" | wc -l)
pad_frames=$(awk '$1 == "frame" && $NF == "yes"' "$TEST_TMP/frames" | wc -l)
tap_ok $((data_frames != total || pad_frames != padding)) \
	"--frames prints every frame ($data_frames batches of $total, $pad_frames padding of $padding)"
"$LOGDUMP" "$data" --frames --partition 2 >"$TEST_TMP/frames2" 2>&1
others=$(awk '$1 == "frame" && $2 ~ /^[0-9]+$/ && $3 != "2"' "$TEST_TMP/frames2" | wc -l)
mine=$(awk '$1 == "frame" && $3 == "2"' "$TEST_TMP/frames2" | wc -l)
want=$(awk '/^sample: partition 2 / {print $7}' "$TEST_TMP/sample")
tap_ok $((others != 0 || mine != want)) "--partition 2 shows only partition 2's $want frames (got $mine, $others others)"

# --verify on the intact log.
"$LOGDUMP" "$data" --verify >"$TEST_TMP/verify" 2>&1
rc=$?
grep -q "verify: 0 errors" "$TEST_TMP/verify"
tap_ok $((rc != 0 || $? != 0)) "--verify passes the intact log, zeroed tail included (exit $rc)"
"$LOGDUMP" "$data" --verify --shard 0 >/dev/null 2>&1
rc=$?
"$LOGDUMP" "$data" --shard 7 >/dev/null 2>&1
tap_ok $((rc != 0 || $? != 2)) "--shard 0 verifies, --shard 7 (missing) exits 2"

md5sum --quiet -c "$TEST_TMP/md5" >/dev/null 2>&1
tap_ok $? "no file was modified"

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
	orig=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((orig ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# A flipped byte inside a frame of the second segment.
seg2=$(ls "$shard" | grep '\.log$' | sed -n 2p)
seg2_start=$((10#${seg2%.log}))
pos=$(awk -v s="$seg2_start" '$1 == "frame" && $NF == "no" && $2 >= s {print $2; exit}' "$TEST_TMP/frames")
damaged="$TEST_TMP/damaged"
cp -r "$data" "$damaged"
flip_byte "$damaged/shard-000/$seg2" $((pos - seg2_start + 50))
"$LOGDUMP" "$damaged" --verify >"$TEST_TMP/bad1" 2>&1
rc=$?
grep -q "^shard-000/$seg2: position $pos (file offset $((pos - seg2_start))): bad crc" "$TEST_TMP/bad1"
tap_ok $((rc != 1 || $? != 0)) "a flipped byte: --verify exits 1 naming $seg2 and position $pos (exit $rc)"
[ $rc -ne 1 ] && tap_diag "$(head -5 "$TEST_TMP/bad1")"
"$LOGDUMP" "$damaged" >"$TEST_TMP/bad1b" 2>&1
rc=$?
grep -q "^shard-000/$seg2: position $pos .*bad crc" "$TEST_TMP/bad1b"
tap_ok $((rc != 1 || $? != 0)) "the frame CRC is checked without --verify too (exit $rc)"

# Non-zero bytes in the zeroed tail after the end of the log.
end=$(awk '/^sample: segments/ {print $5}' "$TEST_TMP/sample")
last=$(ls "$shard" | grep '\.log$' | tail -1)
last_start=$((10#${last%.log}))
garbage=$((end - last_start + 8192))
tail_dir="$TEST_TMP/tail"
cp -r "$data" "$tail_dir"
printf 'stale' | dd of="$tail_dir/shard-000/$last" bs=1 seek=$garbage conv=notrunc 2>/dev/null
"$LOGDUMP" "$tail_dir" --verify >"$TEST_TMP/bad2" 2>&1
rc=$?
grep -q "^shard-000/$last: position $((last_start + garbage)) (file offset $garbage): non-zero bytes after the end of the log at $end" "$TEST_TMP/bad2"
tap_ok $((rc != 1 || $? != 0)) "stale bytes after the end of the log: exit 1 naming the position (exit $rc)"
[ $rc -ne 1 ] && tap_diag "$(head -5 "$TEST_TMP/bad2")"

# A flipped byte in the checkpoint.
ck_dir="$TEST_TMP/ckpt"
cp -r "$data" "$ck_dir"
flip_byte "$ck_dir/shard-000/checkpoint" 60
"$LOGDUMP" "$ck_dir" --verify >"$TEST_TMP/bad3" 2>&1
rc=$?
grep -q "^shard-000/checkpoint: bad crc" "$TEST_TMP/bad3"
tap_ok $((rc != 1 || $? != 0)) "a damaged checkpoint: exit 1 naming it (exit $rc)"

# The damaged copies were only read.
cp "$TEST_TMP/bad1" "$TEST_TMP/bad1.again"
"$LOGDUMP" "$damaged" --verify >"$TEST_TMP/bad1.again" 2>&1
cmp -s "$TEST_TMP/bad1" "$TEST_TMP/bad1.again"
tap_ok $? "a second --verify of the damaged log reports the same (nothing was repaired)"
tap_done
