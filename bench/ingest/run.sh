#!/bin/sh
# Ingest benchmark (not part of `make test`): wrk posts a signed ~7 KB GitHub
# push with a unique delivery id per request, first to gitopsd (durable:
# SQLite WAL, synchronous=FULL, 202 only after commit), then the same load
# to adnanh/webhook (/usr/bin/webhook, payload-hmac-sha256 trigger rule).
# Prints requests/s, p50/p99 latency, peak RSS and CPU time per request of
# each (and of wrk), and the ratios.
#
#   GITOPSD    binary (default build/gitopsd; `make B=build` builds it)
#   DURATION   seconds per run (10)   CONNS  connections (32)
#   THREADS    wrk threads (2)        BENCH_DIR  where state goes (/var/tmp)
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${GITOPSD:-build/gitopsd}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
[ -x "$BIN" ] || { echo "bench: $BIN not built (make B=build)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing" >&2; exit 1; }
command -v webhook >/dev/null || { echo "bench: webhook missing" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gitopsd-bench-XXXXXX")
export BENCH_WORK="$WORK"
GPID=""
WPID=""
cleanup() {
	[ -n "$GPID" ] && kill "$GPID" 2>/dev/null && wait "$GPID" 2>/dev/null
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

freeport() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
GPORT=$(freeport)
APORT=$(freeport)
WPORT=$(freeport)
SIZE=$(/usr/bin/python3 bench/ingest/gen.py "$WORK" "$GPORT" "$APORT" "$WPORT")

# Wait until a URL answers (any status).
wait_up() {
	i=0
	while ! curl -s -o /dev/null "$1"; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "bench: $1 did not come up" >&2; exit 1; }
		sleep 0.05
	done
}

# CPU seconds (user + system) a process has used so far.
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' \
	    "/proc/$1/stat"
}

hwm_kb() {
	sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"
}

# run NAME URL PID -> "NAME rps p50_ms p99_ms rss_mb non2xx errors
# server_cpu_us_per_request wrk_cpu_us_per_request"
run() {
	c0=$(cpu_s "$3")
	# wrk runs under a small wrapper that reports its CPU time (user +
	# system of the finished child) on the last line of its output.
	/usr/bin/python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("CPU %.3f" % (u.ru_utime + u.ru_stime))
sys.exit(r.returncode)' wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" \
	    -s bench/ingest/post.lua "$2" >"$WORK/wrk.out" 2>&1 ||
	    { cat "$WORK/wrk.out" >&2; exit 1; }
	c1=$(cpu_s "$3")
	kcpu=$(sed -n 's/^CPU //p' "$WORK/wrk.out")
	line=$(grep '^RESULT ' "$WORK/wrk.out" || true)
	[ -n "$line" ] || { cat "$WORK/wrk.out" >&2; exit 1; }
	rss=$(hwm_kb "$3")
	echo "$line" | awk -v name="$1" -v rss="$rss" -v c0="$c0" -v c1="$c1" \
	    -v kcpu="$kcpu" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%s %.0f %.2f %.2f %.1f %d %d %.0f %.0f\n", name,
		    v["requests"] / (v["duration_us"] / 1e6), v["p50_us"] / 1000,
		    v["p99_us"] / 1000, rss / 1024, v["non2xx"], v["errors"],
		    (c1 - c0) * 1e6 / v["requests"],
		    kcpu * 1e6 / v["requests"] }'
}

# What one synchronous 4 KiB write costs on this disk right now: the floor
# of a durable commit.
SYNCW=$(dd if=/dev/zero of="$WORK/ddtest" bs=4k count=200 oflag=dsync 2>&1 |
    awk '/copied/ { printf "%.2f", $(NF-3) * 1000 / 200 }')
rm -f "$WORK/ddtest"

(cd "$WORK" && exec "$ROOT/$BIN" -c "$WORK/gitopsd.yaml" \
    >"$WORK/gitopsd.log" 2>&1) &
GPID=$!
wait_up "http://127.0.0.1:$APORT/readyz"
# gitopsd's own pid (the subshell exec'd into it).
/usr/bin/python3 bench/ingest/probe.py "$APORT" "$DURATION" >"$WORK/probe" &
PPID_=$!
G=$(run gitopsd "http://127.0.0.1:$GPORT/hooks/github" "$GPID")
wait "$PPID_" || true
COMMITS=$(curl -s "http://127.0.0.1:$APORT/metrics" |
    sed -n 's/^gitopsd_store_commits_total \([0-9.e+]*\)$/\1/p')
EVENTS=$(curl -s "http://127.0.0.1:$APORT/api/v1/events?limit=1" |
    /usr/bin/python3 -c 'import json,sys; e=json.load(sys.stdin)["events"]; print(e[0]["id"] if e else 0)')
CSUM=$(curl -s "http://127.0.0.1:$APORT/metrics" |
    sed -n 's/^gitopsd_store_commit_seconds_sum \([0-9.e+-]*\)$/\1/p')
RESTARTS=$(curl -s "http://127.0.0.1:$APORT/metrics" |
    sed -n 's/^gitopsd_store_wal_restarts_total \([0-9.e+]*\)$/\1/p')
kill "$GPID"
wait "$GPID" 2>/dev/null || true
GPID=""
ROUNDS=$(sed -n 's/.*queue: \([0-9]* commits for .*\)/\1/p' "$WORK/gitopsd.log" | tail -1)

webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$WPORT" \
    >"$WORK/webhook.log" 2>&1 &
WPID=$!
wait_up "http://127.0.0.1:$WPORT/"
W=$(run webhook "http://127.0.0.1:$WPORT/hooks/github" "$WPID")
kill "$WPID"
wait "$WPID" 2>/dev/null || true
WPID=""

echo "ingest benchmark: ${SIZE}-byte signed GitHub push, unique delivery id per request,"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg),"
echo "one synchronous 4 KiB write (dd oflag=dsync) in the state directory: ${SYNCW} ms"
printf '%-10s %10s %9s %9s %9s %7s %7s %9s %9s\n' server req/s p50_ms p99_ms \
    rss_MB non2xx errors cpu_us/req wrk_us/req
for r in "$G" "$W"; do
	echo "$r" | awk '{ printf "%-10s %10s %9s %9s %9s %7s %7s %9s %9s\n",
	    $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
done
echo "$G $W" | awk '{ if ($11 > 0) printf "ratio gitopsd/webhook: %.1fx requests/s, %.1fx CPU per request\n", $2 / $11, ($17 > 0) ? $8 / $17 : 0 }'
echo "gitopsd: $EVENTS events stored in ${COMMITS:-?} durable commits (store rounds took ${CSUM:-?} s in total)"
echo "gitopsd store: ${ROUNDS:-?}; the log started over ${RESTARTS:-0} times"
cat "$WORK/probe"
