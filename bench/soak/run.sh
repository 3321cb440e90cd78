#!/bin/sh
# Soak benchmark (not part of `make test`): APPS apps (10) on the Kubernetes
# simulator re-synced every second (sync.interval_s: 1) for DURATION seconds
# (600), while UPDATES image events (10,000, Docker Hub webhooks with
# increasing tags) make update-image jobs that commit and push to a
# repository served over smart HTTP (git http-backend behind lighttpd).
# Prints gitopsd's RSS after WARMUP seconds (60) and at the end, the growth,
# and the jobs run.  RSS must stay flat: growth under 5 MB.
#
#   GITOPSD_BUILD  build directory (default build; `make B=build`)
#   DURATION  APPS  UPDATES  WARMUP   as above
#   BENCH_DIR  where state goes (/var/tmp)
set -eu
cd "$(dirname "$0")/../.."
export GITOPSD_BUILD=${GITOPSD_BUILD:-build}
[ -x "$GITOPSD_BUILD/gitopsd" ] || {
	echo "soak: $GITOPSD_BUILD/gitopsd not built (make B=$GITOPSD_BUILD)" >&2
	exit 1
}
[ -x /usr/sbin/lighttpd ] || { echo "soak: lighttpd missing" >&2; exit 1; }
exec /usr/bin/python3 bench/soak/soak.py
