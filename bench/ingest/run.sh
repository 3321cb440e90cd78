#!/bin/sh
# Ingest benchmark (not part of `make test`): wrk posts a signed ~7 KB GitHub
# push with a unique delivery id per request, first to gitopsd (durable:
# SQLite WAL, synchronous=FULL, 202 only after commit), then the same load
# to adnanh/webhook (/usr/bin/webhook, payload-hmac-sha256 trigger rule).
# Prints requests/s, p50/p99 latency, peak RSS and CPU time per request of
# each (and of wrk), and the ratios.
#
# STATE=postgres adds, in the same run between the two, gitopsd on the
# postgres state driver (a throwaway durable PostgreSQL on 127.0.0.1, see
# pg.py; each mode on a fresh database): one replica; two replicas on one
# database, each loaded by its own wrk with half the connections; two
# replicas behind HAProxy (round robin) loaded by one wrk.  Their CPU per
# request includes PostgreSQL's (and HAProxy's); where the server's time
# went (pg_stat_statements, WAL syncs) is printed after the table.
#
#   GITOPSD    binary, absolute or relative to the tree (default
#              build/gitopsd; `make B=build` builds it)
#   INGEST_NO_POLL_KEY=1  leave repos[].poll_interval_s out of the config
#              (for builds older than Git polling; see gen.py)
#   DURATION   seconds per run (10)   CONNS  connections (32)
#   THREADS    wrk threads (2)        BENCH_DIR  where state goes (/var/tmp)
#   STATE      sqlite (default) or postgres
#   BENCH_KEEP set: keep the work directory (configs, logs)
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${GITOPSD:-build/gitopsd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
STATE=${STATE:-sqlite}
case $STATE in
sqlite | postgres) ;;
*) echo "bench: STATE is sqlite or postgres" >&2; exit 1 ;;
esac
[ -x "$BIN" ] || { echo "bench: $BIN not built (make B=build)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing" >&2; exit 1; }
command -v webhook >/dev/null || { echo "bench: webhook missing" >&2; exit 1; }
if [ "$STATE" = postgres ]; then
	command -v haproxy >/dev/null ||
	    { echo "bench: haproxy missing" >&2; exit 1; }
fi

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gitopsd-bench-XXXXXX")
export BENCH_WORK="$WORK"
GPID=""
WPID=""
PGPID=""
HPID=""
RPIDS=""
cleanup() {
	[ -n "$GPID" ] && kill "$GPID" 2>/dev/null && wait "$GPID" 2>/dev/null
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	for p in $RPIDS $HPID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[ -n "$PGPID" ] && kill "$PGPID" 2>/dev/null && wait "$PGPID" 2>/dev/null
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT INT TERM

freeport() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
GPORT=$(freeport)
APORT=$(freeport)
WPORT=$(freeport)
SIZE=$(/usr/bin/python3 bench/ingest/gen.py "$WORK" "$GPORT" "$APORT" "$WPORT")

# Wait until a URL answers (any status; with a second argument -f, a
# success).
wait_up() {
	i=0
	while ! curl -s ${2:-} -o /dev/null "$1"; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "bench: $1 did not come up" >&2; exit 1; }
		sleep 0.05
	done
}

# CPU seconds (user + system) the processes "PID..." have used so far,
# plus PostgreSQL's in the postgres modes.
cpu_s() {
	t=0
	for p in $1; do
		t=$(awk -v t="$t" -v hz="$(getconf CLK_TCK)" \
		    '{ printf "%.2f", t + ($14 + $15) / hz }' "/proc/$p/stat")
	done
	if [ -n "${PG_DATA:-}" ]; then
		t=$(echo "$t $(/usr/bin/python3 bench/ingest/pg.py cpu "$PG_DATA")" |
		    awk '{ printf "%.2f", $1 + $2 }')
	fi
	echo "$t"
}

# The largest peak RSS of the processes "PID...".
hwm_kb() {
	for p in $1; do
		sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status"
	done | sort -n | tail -1
}

# run NAME "URL..." "PID..." -> "NAME rps p50_ms p99_ms rss_mb non2xx
# errors server_cpu_us_per_request wrk_cpu_us_per_request".  One wrk per
# URL, all at once, the connections (and threads) shared out among them;
# requests/s is their sum, p50 the mean and p99 the worst of their own.
run() {
	c0=$(cpu_s "$3")
	n=$(echo "$2" | wc -w)
	i=0
	pids=""
	for url in $2; do
		i=$((i + 1))
		# wrk runs under a small wrapper that reports its CPU time (user +
		# system of the finished child) on the last line of its output.
		/usr/bin/python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("CPU %.3f" % (u.ru_utime + u.ru_stime))
sys.exit(r.returncode)' env BENCH_TAG="$i" \
		    wrk -t "$(((THREADS + n - 1) / n))" -c "$((CONNS / n))" \
		    -d "${DURATION}s" -s bench/ingest/post.lua "$url" \
		    >"$WORK/wrk.out.$i" 2>&1 &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || { cat "$WORK"/wrk.out.* >&2; exit 1; }
	done
	c1=$(cpu_s "$3")
	kcpu=$(cat "$WORK"/wrk.out.* | sed -n 's/^CPU //p' |
	    awk '{ t += $1 } END { print t }')
	lines=$(grep -h '^RESULT ' "$WORK"/wrk.out.* || true)
	[ "$(echo "$lines" | grep -c RESULT)" = "$n" ] ||
	    { cat "$WORK"/wrk.out.* >&2; exit 1; }
	rm -f "$WORK"/wrk.out.*
	rss=$(hwm_kb "$3")
	echo "$lines" | awk -v name="$1" -v rss="$rss" -v c0="$c0" -v c1="$c1" \
	    -v kcpu="$kcpu" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		req += v["requests"]; rps += v["requests"] / (v["duration_us"] / 1e6)
		p50 += v["p50_us"]; if (v["p99_us"] > p99) p99 = v["p99_us"]
		non2xx += v["non2xx"]; err += v["errors"]; n++
	} END {
		printf "%s %.0f %.2f %.2f %.1f %d %d %.0f %.0f\n", name, rps,
		    p50 / n / 1000, p99 / 1000, rss / 1024, non2xx, err,
		    (c1 - c0) * 1e6 / req, kcpu * 1e6 / req }'
}

# What one synchronous 4 KiB write costs on this disk right now: the floor
# of a durable commit.
SYNCW=$(dd if=/dev/zero of="$WORK/ddtest" bs=4k count=200 oflag=dsync 2>&1 |
    awk '/copied/ { printf "%.2f", $(NF-3) * 1000 / 200 }')
rm -f "$WORK/ddtest"

(cd "$WORK" && exec "$BIN" -c "$WORK/gitopsd.yaml" \
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

# The postgres modes.
# start_replica N DB: gitopsd replica N on database DB, listening on
# RPORT_N, its admin listener on RADMIN_N.
start_replica() {
	port=$(freeport)
	admin=$(freeport)
	mkdir -p "$WORK/$2.r$1"
	sed -e "s|@PORT@|$port|" -e "s|@ADMIN@|$admin|" \
	    -e "s|@DSN@|$WORK/$2.dsn|" -e "s|@WORK@|$WORK/$2.r$1/repos|" \
	    "$WORK/gitopsd-pg.yaml.in" >"$WORK/$2.r$1/gitopsd.yaml"
	(cd "$WORK/$2.r$1" && exec "$BIN" -c "$WORK/$2.r$1/gitopsd.yaml" \
	    >"$WORK/$2.r$1/gitopsd.log" 2>&1) &
	RPIDS="$RPIDS $!"
	eval "RPORT_$1=$port RADMIN_$1=$admin"
	wait_up "http://127.0.0.1:$admin/readyz" -f
}

# A counter summed over the replicas 1..N's /metrics.
metric_sum() {
	for r in $(seq "$2"); do
		eval "a=\$RADMIN_$r"
		curl -s "http://127.0.0.1:$a/metrics"
	done | awk -v m="$1" '$1 == m { t += $2 } END { printf "%.3f", t }'
}

# pg_mode NAME DB NREPLICAS haproxy|direct: one measured run; its table
# row goes to $WORK/row.NAME, the details to $WORK/detail.NAME.
pg_mode() {
	urls=""
	# r, not i: the helpers' loops use i.
	for r in $(seq "$3"); do
		start_replica "$r" "$2"
		eval "urls=\"\$urls http://127.0.0.1:\$RPORT_$r/hooks/github\""
	done
	pids=$RPIDS
	if [ "$4" = haproxy ]; then
		hport=$(freeport)
		{
			printf 'global\n  nbthread 1\n  maxconn 2048\n'
			printf 'defaults\n  mode http\n  timeout connect 1s\n'
			printf '  timeout client 30s\n  timeout server 30s\n'
			printf 'frontend hooks\n  bind 127.0.0.1:%s\n' "$hport"
			printf '  default_backend replicas\n'
			printf 'backend replicas\n  balance roundrobin\n'
			printf '  option httpchk GET /readyz\n'
			for r in $(seq "$3"); do
				eval "printf '  server r%s 127.0.0.1:%s check port %s\n' \
				    $r \$RPORT_$r \$RADMIN_$r"
			done
		} >"$WORK/haproxy.cfg"
		haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
		HPID=$!
		pids="$pids $HPID"
		wait_up "http://127.0.0.1:$hport/"
		urls="http://127.0.0.1:$hport/hooks/github"
	fi
	/usr/bin/python3 bench/ingest/pg.py reset "$(cat "$WORK/$2.dsn")"
	pg0=$(/usr/bin/python3 bench/ingest/pg.py cpu "$PG_DATA")
	run "$1" "$urls" "$pids" >"$WORK/row.$1"
	pg1=$(/usr/bin/python3 bench/ingest/pg.py cpu "$PG_DATA")
	commits=$(metric_sum gitopsd_store_commits_total "$3")
	csum=$(metric_sum gitopsd_store_commit_seconds_sum "$3")
	events=$(psql -X -At -d "$(cat "$WORK/$2.dsn")" \
	    -c "SELECT count(*) FROM events")
	{
		echo "$1: $events events stored in $commits commits" \
		    "($(echo "$events $commits $csum" | awk '{
			if ($2 > 0) printf "%.1f deliveries and %.2f ms each",
			    $1 / $2, $3 * 1000 / $2 }'));" \
		    "PostgreSQL's CPU $(echo "$pg0 $pg1 $events" | awk '{
			if ($3 > 0) printf "%.0f", ($2 - $1) * 1e6 / $3 }') µs" \
		    "per stored event"
		/usr/bin/python3 bench/ingest/pg.py top "$(cat "$WORK/$2.dsn")"
	} >"$WORK/detail.$1"
	for p in $RPIDS $HPID; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null || true
	done
	RPIDS=""
	HPID=""
	for r in $(seq "$3"); do
		sed -n 's/.*queue: \([0-9]* commits for .*\)/  replica '"$r"': \1/p' \
		    "$WORK/$2.r$r/gitopsd.log" | tail -1
		n=$(grep -c 'status=503' "$WORK/$2.r$r/gitopsd.log" || true)
		[ "$n" = 0 ] || echo "  replica $r: $n webhooks answered 503" \
		    "($(grep -c 'deadlock detected' "$WORK/$2.r$r/gitopsd.log" ||
		    true) deadlocks)"
	done >>"$WORK/detail.$1"
}

PGMODES=""
if [ "$STATE" = postgres ]; then
	/usr/bin/python3 bench/ingest/pg.py start "$WORK" b1 b2 b3 \
	    >"$WORK/pg.log" 2>&1 &
	PGPID=$!
	i=0
	while [ ! -e "$WORK/pg.env" ]; do
		i=$((i + 1))
		kill -0 "$PGPID" 2>/dev/null && [ $i -lt 600 ] ||
		    { cat "$WORK/pg.log" >&2; exit 1; }
		sleep 0.1
	done
	. "$WORK/pg.env"
	pg_mode pg-1 b1 1 direct
	pg_mode pg-2 b2 2 direct
	pg_mode pg-2-ha b3 2 haproxy
	PGMODES="pg-1 pg-2 pg-2-ha"
	PG_DATA=""
	kill "$PGPID"
	wait "$PGPID" 2>/dev/null || true
	PGPID=""
fi

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
ROWS="$G"
for m in $PGMODES; do
	ROWS="$ROWS
$(cat "$WORK/row.$m")"
done
ROWS="$ROWS
$W"
echo "$ROWS" | awk '{ printf "%-10s %10s %9s %9s %9s %7s %7s %9s %9s\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
echo "$ROWS" | awk '$1 != "webhook" { r[n++] = $0 }
    $1 == "webhook" { wr = $2; wc = $8 }
    END { for (i = 0; i < n; i++) { split(r[i], f, " ")
	if (wr > 0) printf "ratio %s/webhook: %.1fx requests/s, %.1fx CPU per request\n",
	    (f[1] == "gitopsd" ? "gitopsd" : f[1]), f[2] / wr,
	    (wc > 0) ? f[8] / wc : 0 } }'
echo "gitopsd: $EVENTS events stored in ${COMMITS:-?} durable commits (store rounds took ${CSUM:-?} s in total)"
echo "gitopsd store: ${ROUNDS:-?}; the log started over ${RESTARTS:-0} times"
cat "$WORK/probe"
for m in $PGMODES; do
	cat "$WORK/detail.$m"
done
