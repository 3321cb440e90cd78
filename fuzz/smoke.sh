#!/bin/sh
# Runs every libFuzzer target for FUZZ_SECONDS on its checked-in seed
# corpus (fuzz/corpus/<target>/, built from test/fixtures by
# fuzz/mkcorpus.py), in a scratch corpus directory so the tree is not
# modified.  Fails when any target crashes.
set -eu
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
# A fixed seed and a cap on runs make a smoke run repeatable: what passed
# here passes in CI, and a failure reproduces.  Longer exploratory runs
# use the binaries directly (docs/security-testing.md).
seed=${FUZZ_SEED:-1}
runs=${FUZZ_RUNS:-400000}
fail=0
for bin in build-fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	t=$(basename "$bin")
	work=$(mktemp -d)
	seeds=""
	[ -d "fuzz/corpus/$t" ] && seeds="fuzz/corpus/$t"
	echo "fuzz: $t for ${secs}s"
	# shellcheck disable=SC2086
	if ! "$bin" -seed="$seed" -runs="$runs" -max_total_time="$secs" \
	    -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix=build-fuzz/ \
	    "$work" $seeds \
	    >"$work.log" 2>&1; then
		tail -50 "$work.log"
		echo "fuzz: $t FAILED"
		fail=1
	else
		grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" \
		    "$work.log" | tail -3
	fi
	rm -rf "$work" "$work.log"
done
exit $fail
