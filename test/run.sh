#!/bin/sh
# Runs every test: the cmocka unit binaries (they start no process), then
# the integration suite (real gitopsd processes and the C suites of
# test/integration/*_suite.c, with real peers on 127.0.0.1).  Ends with
# one summary line "N passed, N failed" over all test cases.
#   GITOPSD_BUILD  build directory with sanitized binaries (build-san)
#   TEST_ONLY      unit | integration (default: both)
#   TEST_FILTER    substrings, comma-separated: run only the unit binaries
#                  and test modules whose names contain one of them
set -u
cd "$(dirname "$0")/.."
B=${GITOPSD_BUILD:-build-san}
ONLY=${TEST_ONLY:-}
FILTER=${TEST_FILTER:-}
export GITOPSD_BUILD="$B"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/test/lsan.supp:print_suppressions=0}
export CMOCKA_MESSAGE_OUTPUT=stdout

passed=0
failed=0
failures=""
log=$(mktemp "$B/test-log.XXXXXX")

# The unit binaries to run, from the sources: a binary left in $B/test by
# a test that moved to the integration side does not run here.
unit_bins() {
	for src in test/unit/test_*.c; do
		t="$B/test/$(basename "$src" .c)"
		[ -x "$t" ] || continue
		if [ -n "$FILTER" ]; then
			hit=""
			for f in $(echo "$FILTER" | tr ',' ' '); do
				case "$t" in *"$f"*) hit=1 ;; esac
			done
			[ -n "$hit" ] || continue
		fi
		echo "$t"
	done
}

if [ "$ONLY" != integration ]; then
	# Side by side: the slow ones mostly wait on the store's and the
	# queue's timers.  Reported in order afterwards.
	udir=$(mktemp -d "$B/unit-logs.XXXXXX")
	for t in $(unit_bins); do
		n=$(basename "$t")
		("$t" >"$udir/$n.log" 2>&1; echo $? >"$udir/$n.rc") &
	done
	wait
	for t in $(unit_bins); do
		n=$(basename "$t")
		rc=$(cat "$udir/$n.rc")
		cat "$udir/$n.log"
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$udir/$n.log" | tail -1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$udir/$n.log" | tail -1)
		p=${p:-0}
		f=${f:-0}
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			# Crashed or sanitizer abort before cmocka could count.
			f=1
		fi
		passed=$((passed + p))
		failed=$((failed + f))
		[ "$f" -eq 0 ] || failures="$failures $n"
	done
	rm -rf "$udir"
fi

if [ "$ONLY" != unit ]; then
	# Streamed as it runs (a CI that stops the run still shows how far
	# it got and the watchdog's stacks), kept in $log for the count.
	rcf=$(mktemp "$B/test-rc.XXXXXX")
	{ /usr/bin/python3 -u test/integration/runner.py "$FILTER" 2>&1
	  echo $? >"$rcf"; } | tee "$log"
	rc=$(cat "$rcf")
	rm -f "$rcf"
	line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	p=$(echo "$line" | sed -n 's/^integration: \([0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failures="$failures integration"
fi
rm -f "$log"

[ -z "$failures" ] || echo "failing:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
