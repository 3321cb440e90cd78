#!/bin/sh
# Installs the Debian packages (and the npm test fixtures) that building and
# testing gitopsd need.  Prints what it installs; does nothing when all are
# present.  Runs as root (or through sudo when available).
set -eu

# Build: compilers and libraries.  Test: real peers (git, registry, skopeo,
# SMTP server, web server for git smart HTTP, wrk, adnanh/webhook, systemd
# tools, node for the published GitHub examples, a PostgreSQL server and
# libpq for the postgres state backend, HAProxy in front of several
# replicas, headless Chromium and selenium for the status page, zlib for
# the unit test of its gzip copies, Prometheus Alertmanager for the
# alertmanager notifier).
PKGS="make gcc clang pkg-config libevent-dev libgit2-dev libcurl4-openssl-dev
libssh2-1-dev libyaml-dev libcjson-dev libssl-dev libsqlite3-dev libsystemd-dev
libcmocka-dev libclang-rt-14-dev git sqlite3 python3 python3-aiosmtpd
docker-registry skopeo lighttpd wrk webhook systemd openssl nodejs npm
curl ca-certificates iproute2 python3-yaml groff-base man-db openssh-server
cppcheck clang-tidy valgrind util-linux postgresql postgresql-common
libpq-dev haproxy chromium chromium-driver python3-selenium zlib1g-dev
prometheus-alertmanager"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		# nodejs/npm may come from outside apt (a preinstalled node).
		case "$p" in
		nodejs) command -v node >/dev/null 2>&1 && continue ;;
		npm) command -v npm >/dev/null 2>&1 && continue ;;
		esac
		missing="$missing $p"
	fi
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ -n "$missing" ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Published GitHub webhook examples for the handler tests.
if [ -f test/package.json ] && [ ! -d test/node_modules/@octokit/webhooks-examples ]; then
	echo "deps: installing npm test fixtures (test/package.json)"
	(cd test && npm install --no-audit --no-fund --silent)
fi
