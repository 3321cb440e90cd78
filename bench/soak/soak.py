"""The soak run behind bench/soak/run.sh (see there for the knobs)."""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "support"))

import harness                                  # noqa: E402
from fault_peers import GitHTTP, Kubesim, git, make_repo  # noqa: E402

DURATION = int(os.environ.get("DURATION", "600"))
APPS = int(os.environ.get("APPS", "10"))
UPDATES = int(os.environ.get("UPDATES", "10000"))
WARMUP = int(os.environ.get("WARMUP", "60"))
TOKEN = "soak-dockerhub-token-0123456789abcdef"
PASSWORD = "soak-git-password"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %(name)s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %(name)s}
  template:
    metadata:
      labels: {app: %(name)s}
    spec:
      containers:
        - name: %(name)s
          image: %(image)s
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: %(name)s
data: {greeting: hello}
"""

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 5, max_attempts: 5}
sources:
  - {name: hub, type: dockerhub, token_file: hub.token, verify_tag: false}
repos:
  - name: deploy
    url: "%(git_url)s"
    branch: main
    auth: {username: soak, password_file: git.password}
    author: {name: gitopsd-soak, email: soak@localhost}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
%(apps)s
"""
APP = """  - name: %(name)s
    repo: deploy
    path: apps/%(name)s
    cluster: sim
    namespace: soak
    sync: {auto: true, interval_s: 1, timeout_s: 60}
"""
IMAGES = """    images:
      # Events drive the updates; polling would ask docker.io, off the machine.
      - {repository: docker.io/acme/web, policy: {semver: ">=1.0.0"},
         poll_interval_s: 0}
"""


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def jobs(d):
    """{(kind, result): count} from /metrics."""
    r = harness.request(d.admin_port, "GET", "/metrics")
    out = {}
    for m in re.finditer(r'^gitopsd_jobs_total\{([^}]*)\} (\S+)$',
                         r.body.decode(), re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[(labels.get("kind"), labels.get("result"))] = float(m.group(2))
    return out


def hub_event(d, n):
    body = json.dumps({
        "push_data": {"tag": "1.0.%d" % n, "pushed_at": int(time.time()),
                      "pusher": "soak"},
        "repository": {"repo_name": "acme/web", "namespace": "acme",
                       "name": "web"},
        "callback_url": "https://registry.hub.docker.com/u/acme/web/hook/"
                        + uuid.uuid4().hex}).encode()
    return d.post("/hooks/hub/" + TOKEN, body,
                  {"Content-Type": "application/json"})


def main():
    base = os.environ.get("BENCH_DIR", "/var/tmp")
    tmp = tempfile.mkdtemp(prefix="gitopsd-soak-", dir=base)
    stops = []
    try:
        sim = Kubesim(ready_delay=0)
        stops.append(sim.stop)
        gitroot = os.path.join(tmp, "srv")
        os.makedirs(gitroot)
        # The namespace exists beforehand, as one an admin made.
        status, _ = sim.apply("/api/v1/namespaces/soak", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "soak"}})
        if status not in (200, 201):
            raise SystemExit("soak: kubesim refused the namespace")
        files = {}
        names = ["app%02d" % i for i in range(APPS)]
        for i, name in enumerate(names):
            image = "docker.io/acme/web:1.0.0" if i == 0 else \
                "docker.io/acme/other:1.0.0"
            files["apps/%s/deployment.yaml" % name] = DEPLOYMENT % {
                "name": name, "image": image}
            files["apps/%s/configmap.yaml" % name] = CONFIGMAP % {
                "name": name}
        bare = make_repo(gitroot, "deploy", files)
        git("config", "http.receivepack", "true", cwd=bare)
        srv = GitHTTP(gitroot, "soak", PASSWORD).start()
        stops.append(srv.stop)
        apps = ""
        for i, name in enumerate(names):
            apps += APP % {"name": name} + (IMAGES if i == 0 else "")
        d = harness.Daemon(CONFIG % {
            "git_url": srv.url("deploy.git"), "kubeconfig": sim.kubeconfig,
            "apps": apps.rstrip("\n")},
            secrets={"hub.token": TOKEN + "\n",
                     "git.password": PASSWORD + "\n"})
        stops.append(d.cleanup)
        d.start()
        pid = d.proc.pid
        print("soak: %d apps re-synced every second, %d image events over "
              "%d s (warm-up %d s), pid %d" % (APPS, UPDATES, DURATION,
                                                WARMUP, pid), flush=True)
        t0 = time.time()
        sent = 0
        rss0 = None
        refused = 0
        next_report = WARMUP + 60
        while True:
            now = time.time() - t0
            if rss0 is not None and now >= next_report:
                print("soak: %4d s RSS %.1f MB" % (now, rss_kb(pid) / 1024.0),
                      flush=True)
                next_report += 60
            if rss0 is None and now >= WARMUP:
                rss0 = rss_kb(pid)
                jobs0 = jobs(d)
                print("soak: RSS after warm-up %.1f MB" % (rss0 / 1024.0),
                      flush=True)
            if now >= DURATION:
                break
            want = min(UPDATES, int(UPDATES * now / DURATION) + 1)
            while sent < want:
                sent += 1
                r = hub_event(d, sent)
                if r.status != 202:
                    if refused == 0:
                        print("soak: an image event got %d: %s" % (
                            r.status, r.body[:200]), flush=True)
                    refused += 1
            time.sleep(0.05)
        if rss0 is None:
            raise SystemExit("soak: DURATION must exceed WARMUP")
        rss1 = rss_kb(pid)
        j = jobs(d)

        def ran(kind):
            return sum(v - jobs0.get(k, 0) for k, v in j.items()
                       if k[0] == kind)
        print("soak: %d image events sent (%d refused)" % (sent, refused))
        print("soak: jobs after warm-up: sync %d, update-image %d, "
              "failed %d" % (ran("sync"), ran("update-image"),
                             sum(v - jobs0.get(k, 0) for k, v in j.items()
                                 if k[1] != "succeeded")))
        print("soak: RSS start %.1f MB, end %.1f MB, growth %+.1f MB "
              "over %d s" % (rss0 / 1024.0, rss1 / 1024.0,
                             (rss1 - rss0) / 1024.0, DURATION - WARMUP))
        failures = [ln for ln in d.log().splitlines()
                    if " error " in ln or " warn" in ln or "failed" in ln]
        if failures:
            print("soak: %d warnings/errors in the log, the last: %s" % (
                len(failures), failures[-1]))
        return 0 if rss1 - rss0 < 5 * 1024 else 1
    finally:
        for stop in reversed(stops):
            stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
