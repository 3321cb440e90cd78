#!/bin/sh
# `make run`: gitopsd in the foreground on config/demo.yaml, with a local
# bare demo repository and the Kubernetes API simulator as the demo cluster.
# Everything lives under ./var/ (delete it to start over).
#
# GITOPSD_BUILD (default build) names the build directory.
# GITOPSD_DEMO_PORT / GITOPSD_DEMO_ADMIN_PORT (default 8080 / 9090) move the
# two listeners: gitopsd then runs var/demo.yaml, a copy of config/demo.yaml
# with those ports (the helper scripts read the same variables).
set -eu
cd "$(dirname "$0")/.."
B=${GITOPSD_BUILD:-build}
PORT=${GITOPSD_DEMO_PORT:-8080}
ADMIN_PORT=${GITOPSD_DEMO_ADMIN_PORT:-9090}
VAR=var/demo
mkdir -p "$VAR"
umask 077

[ -s "$VAR/github.secret" ] || openssl rand -hex 20 >"$VAR/github.secret"
[ -s "$VAR/registry.token" ] || openssl rand -hex 20 >"$VAR/registry.token"

# The demo repository: one app with a Deployment and a Service.
if [ ! -d "$VAR/deploy.git" ]; then
	git init -q --bare -b main "$VAR/deploy.git"
	work=$(mktemp -d)
	git init -q -b main "$work"
	mkdir -p "$work/apps/demo"
	cat >"$work/apps/demo/namespace.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: demo
YAML
	cat >"$work/apps/demo/deployment.yaml" <<'YAML'
# The demo app.  gitopsd rewrites only the tag below when a newer image
# is pushed; comments and formatting stay as they are.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: localhost:5000/demo/web:1.0.0
          ports:
            - containerPort: 8080
YAML
	cat >"$work/apps/demo/service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: 8080
YAML
	git -C "$work" add -A
	git -C "$work" -c user.name=demo -c user.email=demo@localhost \
	    commit -q -m "demo app"
	git -C "$work" push -q "$(pwd)/$VAR/deploy.git" main
	rm -rf "$work"
fi

# The configuration: config/demo.yaml, or a copy with other ports.  The
# copy sits in var/ so its ../var paths name the same files.
CONFIG=config/demo.yaml
ctl=$B/gitopsctl
envs=
if [ "$PORT" != 8080 ] || [ "$ADMIN_PORT" != 9090 ]; then
	CONFIG=var/demo.yaml
	sed -e "s/\"127\.0\.0\.1:8080\"/\"127.0.0.1:$PORT\"/" \
	    -e "s/\"127\.0\.0\.1:9090\"/\"127.0.0.1:$ADMIN_PORT\"/" \
	    config/demo.yaml >"$CONFIG"
	if ! grep -q "listen: \"127.0.0.1:$PORT\"" "$CONFIG" ||
	    ! grep -q "listen: \"127.0.0.1:$ADMIN_PORT\"" "$CONFIG"; then
		echo "demo.sh: cannot set the ports in $CONFIG" >&2
		exit 1
	fi
	ctl="$ctl --url http://127.0.0.1:$ADMIN_PORT"
	envs="GITOPSD_DEMO_PORT=$PORT "
fi

sim_pid=""
gitopsd_pid=""
# Waits for the simulator: once demo.sh has returned, its port is closed.
cleanup() {
	[ -z "$gitopsd_pid" ] || kill "$gitopsd_pid" 2>/dev/null || true
	if [ -n "$sim_pid" ]; then
		kill "$sim_pid" 2>/dev/null || true
		wait "$sim_pid" 2>/dev/null || true
	fi
}
# Ctrl-C or SIGTERM: gitopsd drains (a second signal changes nothing),
# then the simulator is stopped.
stop() {
	[ -z "$gitopsd_pid" ] || kill -TERM "$gitopsd_pid" 2>/dev/null || true
	[ -n "$gitopsd_pid" ] || exit 130
}
trap cleanup EXIT
trap stop INT TERM
rm -f "$VAR/kube/kubeconfig"
mkdir -p "$VAR/kube"
/usr/bin/python3 test/support/kubesim.py --port 0 --dir "$VAR/kube" \
    >"$VAR/kubesim.log" 2>&1 &
sim_pid=$!
i=0
while [ ! -s "$VAR/kube/kubeconfig" ] && [ $i -lt 100 ]; do
	kill -0 "$sim_pid" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if [ ! -s "$VAR/kube/kubeconfig" ]; then
	echo "demo.sh: the Kubernetes API simulator did not start:" >&2
	cat "$VAR/kubesim.log" >&2
	exit 1
fi
cp "$VAR/kube/kubeconfig" "$VAR/kubeconfig"

cat <<MSG

gitopsd demo
  webhooks:  http://127.0.0.1:$PORT/hooks/github    (GitHub, secret in $VAR/github.secret)
             http://127.0.0.1:$PORT/hooks/registry  (registry, token in $VAR/registry.token)
  status page: http://127.0.0.1:$ADMIN_PORT/   (live; open it in a browser)
  admin API: http://127.0.0.1:$ADMIN_PORT/api/v1   metrics: http://127.0.0.1:$ADMIN_PORT/metrics
  cluster:   Kubernetes API simulator (kubeconfig $VAR/kubeconfig)

In another terminal, in $(pwd):
  ${envs}sh scripts/demo-image.sh 1.1.0     # plays the registry: localhost:5000/demo/web:1.1.0 was pushed
  ${envs}sh scripts/demo-push.sh            # plays GitHub: a signed push of the repo's head
  $ctl app demo              # the commit, the sync and the health arrive

MSG
# In the background, so this shell can run its traps while gitopsd runs.
$B/gitopsd -c "$CONFIG" &
gitopsd_pid=$!
rc=0
while :; do
	rc=0
	wait "$gitopsd_pid" || rc=$?
	kill -0 "$gitopsd_pid" 2>/dev/null || break
done
gitopsd_pid=""
exit "$rc"
