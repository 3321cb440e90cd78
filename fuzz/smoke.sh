#!/bin/sh
# Runs every libFuzzer target for FUZZ_SECONDS on its checked-in seed
# corpus (fuzz/corpus/<target>/, built from test/fixtures by
# fuzz/mkcorpus.py), in a scratch corpus directory so the tree is not
# modified, FUZZ_JOBS targets at a time (default 2: one per core of the
# CI machine).  Fails when any target crashes.
set -eu
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
# A fixed seed and a cap on runs make a smoke run repeatable: what passed
# here passes in CI, and a failure reproduces.  Longer exploratory runs
# use the binaries directly (docs/security-testing.md).
seed=${FUZZ_SEED:-1}
runs=${FUZZ_RUNS:-400000}

if [ "${1:-}" = one ]; then
	# One target; its report is printed whole when it ends, so that the
	# targets running side by side do not interleave their lines.
	bin=$2
	t=$(basename "$bin")
	work=$(mktemp -d)
	seeds=""
	[ -d "fuzz/corpus/$t" ] && seeds="fuzz/corpus/$t"
	rc=0
	# shellcheck disable=SC2086
	"$bin" -seed="$seed" -runs="$runs" -max_total_time="$secs" \
	    -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix=build-fuzz/ \
	    "$work" $seeds >"$work.log" 2>&1 || rc=$?
	rep="$work.report"
	echo "fuzz: $t for ${secs}s" >"$rep"
	if [ "$rc" -ne 0 ]; then
		tail -50 "$work.log" >>"$rep"
		echo "fuzz: $t FAILED" >>"$rep"
	else
		grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" \
		    "$work.log" | tail -3 >>"$rep" || true
	fi
	cat "$rep"
	rm -f "$rep"
	rm -rf "$work" "$work.log"
	exit "$rc"
fi

fail=0
ls build-fuzz/fuzz_* >/dev/null 2>&1 || { echo "fuzz: no targets built"; exit 1; }
for bin in build-fuzz/fuzz_*; do
	[ -x "$bin" ] && echo "$bin"
done | FUZZ_SECONDS=$secs xargs -P "$jobs" -n 1 sh "$0" one || fail=1
exit $fail
