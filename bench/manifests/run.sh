#!/bin/sh
# Benchmark: one update-image job on a repository of 10,000 YAML files,
# 1,000 of which reference the image, against the same change made with
# git clone + sed -i + git commit + git push.  Prints both and the ratio.
#   sh bench/manifests/run.sh [FILES] [EVERY]
set -eu
cd "$(dirname "$0")/../.."
FILES=${1:-10000}
EVERY=${2:-10}
B=build
make --no-print-directory B=$B $B/libgitopsd.a >/dev/null
PKGS="libevent libevent_openssl libevent_pthreads libgit2 libssh2 libcurl yaml-0.1 libcjson openssl sqlite3"
cc -std=c17 -O2 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags $PKGS) \
    -o $B/bench_update bench/manifests/bench_update.c $B/libgitopsd.a \
    $(pkg-config --libs $PKGS) $(pkg-config --libs libsystemd 2>/dev/null) \
    -lpthread -lm

T=$(mktemp -d /tmp/gitopsd-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
G="git -c user.name=bench -c user.email=bench@localhost -c init.defaultBranch=main"
/usr/bin/python3 bench/manifests/gen.py "$T/seed" "$FILES" "$EVERY"
( cd "$T/seed" && $G init -q && $G add -A && $G commit -qm seed )
$G init -q --bare "$T/a.git"
( cd "$T/seed" && $G push -q "$T/a.git" main )
RUNS=${RUNS:-3}
for i in $(seq 1 "$RUNS"); do
	cp -a "$T/a.git" "$T/a$i.git"
	cp -a "$T/a.git" "$T/b$i.git"
done
refs=$(grep -rl 'registry.acme.io/acme/web:1.0.0' "$T/seed/apps" | wc -l)
echo "repository: $FILES YAML files, $refs reference registry.acme.io/acme/web; $RUNS runs each, medians"
uptime | sed 's/^.*load/load/'

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# gitopsd cold: the first job on a repository clones it.
cold=$(for i in $(seq 1 "$RUNS"); do
	$B/bench_update "$T/work$i" "file://$T/a$i.git" apps/web 1.0.1 | cut -d' ' -f1
done | median)
# gitopsd warm: later jobs fetch into the existing clone.
warm=$(for i in $(seq 1 "$RUNS"); do
	$B/bench_update "$T/work1" "file://$T/a1.git" apps/web "1.1.$i" | cut -d' ' -f1
done | median)
changed=$(git --git-dir="$T/a2.git" diff --name-only main~1 main | wc -l)

# Reference: the same change with the git command line.
ref=$(for i in $(seq 1 "$RUNS"); do
	start=$(date +%s.%N)
	(
		cd "$T"
		$G clone -q "file://$T/b$i.git" ref$i
		cd ref$i
		grep -rl --include='*.yaml' 'registry.acme.io/acme/web:1.0.0' apps/web |
		    xargs sed -i 's#registry.acme.io/acme/web:1.0.0#registry.acme.io/acme/web:1.0.1#'
		$G commit -qam 'deploy(web): web 1.0.0 -> 1.0.1'
		$G push -q origin main
	)
	end=$(date +%s.%N)
	echo "$end - $start" | bc
done | median)
refchanged=$(git --git-dir="$T/b1.git" diff --name-only main~1 main | wc -l)
same=$(git --git-dir="$T/a2.git" rev-parse main^{tree})
other=$(git --git-dir="$T/b1.git" rev-parse main^{tree})

echo "files changed: gitopsd $changed, reference $refchanged"
[ "$same" = "$other" ] && echo "trees identical: yes" || echo "trees identical: NO"
printf 'gitopsd cold (clone + edit + commit + push): %.3f s\n' "$cold"
printf 'gitopsd warm (fetch + edit + commit + push): %.3f s\n' "$warm"
printf 'reference (git clone + sed -i + commit + push): %.3f s\n' "$ref"
printf 'ratio cold/reference: %.2f   warm/reference: %.2f\n' \
    "$(echo "$cold / $ref" | bc -l)" "$(echo "$warm / $ref" | bc -l)"
