#!/bin/sh
# `make run`: gitopsd in the foreground on config/demo.yaml, with a local
# bare demo repository and the Kubernetes API simulator as the demo cluster.
# Everything lives under ./var/ (delete it to start over).
set -eu
cd "$(dirname "$0")/.."
B=${GITOPSD_BUILD:-build}
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

sim_pid=""
cleanup() {
	[ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
if [ -f test/support/kubesim.py ]; then
	rm -f "$VAR/kube/port"
	mkdir -p "$VAR/kube"
	/usr/bin/python3 test/support/kubesim.py --port 0 --dir "$VAR/kube" \
	    >"$VAR/kubesim.log" 2>&1 &
	sim_pid=$!
	i=0
	while [ ! -s "$VAR/kube/kubeconfig" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	cp "$VAR/kube/kubeconfig" "$VAR/kubeconfig"
fi

cat <<MSG

gitopsd demo
  webhooks:  http://127.0.0.1:8080/hooks/github    (GitHub, secret in $VAR/github.secret)
             http://127.0.0.1:8080/hooks/registry  (registry, token in $VAR/registry.token)
  admin API: http://127.0.0.1:9090/api/v1   metrics: http://127.0.0.1:9090/metrics
  cluster:   Kubernetes API simulator (kubeconfig $VAR/kubeconfig)

In another terminal:
  sh scripts/demo-image.sh 1.1.0     # plays the registry: localhost:5000/demo/web:1.1.0 was pushed
  sh scripts/demo-push.sh            # plays GitHub: a signed push of the repo's head
  $B/gitopsctl app demo              # watch the commit, the sync and the health arrive

MSG
$B/gitopsd -c config/demo.yaml
