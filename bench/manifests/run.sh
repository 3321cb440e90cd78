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
PKGS="libevent libevent_openssl libevent_pthreads libgit2 libcurl yaml-0.1 libcjson openssl sqlite3"
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
cp -a "$T/a.git" "$T/b.git"
refs=$(grep -rl 'registry.acme.io/acme/web:1.0.0' "$T/seed/apps" | wc -l)
echo "repository: $FILES YAML files, $refs reference registry.acme.io/acme/web"

# gitopsd: cold (first job clones) and warm (the clone is fetched).
cold=$($B/bench_update "$T/work" "file://$T/a.git" apps/web 1.0.1 | cut -d' ' -f1)
warm=$($B/bench_update "$T/work" "file://$T/a.git" apps/web 1.0.2 | cut -d' ' -f1)
changed=$(git --git-dir="$T/a.git" diff --name-only main~2 main~1 | wc -l)

# Reference: the same change with the git command line.
start=$(date +%s.%N)
(
	cd "$T"
	$G clone -q "file://$T/b.git" ref
	cd ref
	grep -rl --include='*.yaml' 'registry.acme.io/acme/web:1.0.0' apps/web |
	    xargs sed -i 's#registry.acme.io/acme/web:1.0.0#registry.acme.io/acme/web:1.0.1#'
	$G commit -qam 'deploy(web): web 1.0.0 -> 1.0.1'
	$G push -q origin main
)
end=$(date +%s.%N)
ref=$(echo "$end - $start" | bc)
refchanged=$(git --git-dir="$T/b.git" diff --name-only main~1 main | wc -l)
same=$(git --git-dir="$T/a.git" rev-parse main~1^{tree})
other=$(git --git-dir="$T/b.git" rev-parse main^{tree})

echo "files changed: gitopsd $changed, reference $refchanged"
[ "$same" = "$other" ] && echo "trees identical: yes" || echo "trees identical: NO"
printf 'gitopsd cold (clone + edit + commit + push): %.3f s\n' "$cold"
printf 'gitopsd warm (fetch + edit + commit + push): %.3f s\n' "$warm"
printf 'reference (git clone + sed -i + commit + push): %.3f s\n' "$ref"
printf 'ratio cold/reference: %.2f   warm/reference: %.2f\n' \
    "$(echo "$cold / $ref" | bc -l)" "$(echo "$warm / $ref" | bc -l)"
