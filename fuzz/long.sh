#!/bin/sh
# Long fuzz runs: each named target (default: all) for FUZZ_SECONDS
# (default 600), FUZZ_JOBS (default 2) at a time, each from a scratch copy
# of its seed corpus with a random seed.  Prints one Markdown table row per
# target (the table in docs/security-testing.md) and keeps each run's log
# and any crash input under FUZZ_OUT (default build-fuzz/long/).
# Exits non-zero when any target crashed.
#
#   sh fuzz/long.sh                       # all targets, 10 minutes each
#   FUZZ_SECONDS=60 sh fuzz/long.sh fuzz_http fuzz_config
set -eu
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-2}
out=${FUZZ_OUT:-build-fuzz/long}
mkdir -p "$out"

if [ $# -eq 0 ]; then
	set --
	for bin in build-fuzz/fuzz_*; do
		[ -x "$bin" ] && set -- "$@" "$(basename "$bin")"
	done
fi

run_one() {
	t=$1
	work=$(mktemp -d)
	log="$out/$t.log"
	start=$(date -u +%H:%M:%S)
	t0=$(date +%s)
	rc=0
	seeds=""
	[ -d "fuzz/corpus/$t" ] && seeds="fuzz/corpus/$t"
	# shellcheck disable=SC2086
	"build-fuzz/$t" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix="$out/$t-" "$work" $seeds >"$log" 2>&1 || rc=$?
	t1=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -E '^#[0-9]+' "$log" | tail -1 |
	    sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(grep -E '^#[0-9]+' "$log" | tail -1 |
	    sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(find "$work" -type f | wc -l)
	el=$((t1 - t0))
	[ "$el" -gt 0 ] || el=1
	eps=$(( ${execs:-0} / el ))
	verdict=none
	[ "$rc" -eq 0 ] || verdict="CRASH (see $log)"
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
	    "$t" "$start" "$el" "${execs:-?}" "$eps" "${cov:-?}" "${ft:-?}" \
	    "$corp" "$verdict" >"$out/$t.row"
	cat "$out/$t.row"
	rm -rf "$work"
	[ "$rc" -eq 0 ]
}

fail=0
running=0
pids=""
for t in "$@"; do
	if [ ! -x "build-fuzz/$t" ]; then
		echo "long.sh: no build-fuzz/$t (make fuzz)" >&2
		exit 2
	fi
	run_one "$t" &
	pids="$pids $!"
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		# POSIX sh has no `wait -n`: wait for the oldest of the batch.
		first=${pids# }
		first=${first%% *}
		wait "$first" || fail=1
		pids=${pids#* "$first"}
		running=$((running - 1))
	fi
done
for p in $pids; do
	wait "$p" || fail=1
done
exit $fail
