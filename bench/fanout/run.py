#!/usr/bin/python3
"""Fan-out benchmark (not part of `make test`): one Git repository holding N
apps of three manifests each (a Deployment, a Service, a ConfigMap, each app
in its own namespace), a real gitopsd and the Kubernetes API simulator
(test/support/kubesim.py).  For each N it measures three pushes that every
app follows:

  first      the apps' first sync (everything is created)
  change     a commit that changes every app (ConfigMap data and image tag:
             every Deployment rolls out again)
  unchanged  the same revision pushed again (a re-sync that changes nothing)

and prints, per phase: seconds from the push until every app's sync
succeeded Healthy, gitopsd CPU (user + system) per app, API requests per app
(the simulator's request log), and gitopsd's RSS at the end of the phase
(VmRSS; the peak VmHWM is printed once per N), and the simulator's own
CPU time in the phase (sim_cpu_s: well below the phase's seconds means the
simulator was not what the phase waited for).

Environment:
  FANOUT_N      the sizes, space-separated (default "10 100"); "full" is
                "10 100 500 2000"
  GITOPSD       the binary (default build/gitopsd; `make B=build all`)
  READY_DELAY   seconds a workload takes to become ready on the simulator
                after a change (default 0.5)
  WORKERS       queue.workers (default: gitopsd's default, 4)
  QPS           clusters[].qps, the client rate limit (default: gitopsd's
                default, 50 requests/s with bursts of 100; 0: none)
  PHASE_TIMEOUT seconds one phase may take (default 1800)
  BENCH_DIR     where the repository, state and simulator go (/var/tmp)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "support"))
from fault_peers import Kubesim  # noqa: E402
from harness import free_port, github_headers  # noqa: E402
SECRET = "fanout-bench-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")

DEPLOY = """apiVersion: apps/v1
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
          image: registry.example/web:%(tag)s
"""
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  version: "%(tag)s"
"""


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=bench", "-c",
                           "user.email=bench@localhost", *args], cwd=cwd,
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_mem_mb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def http(url, data=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def app_name(i):
    return "app-%04d" % i


def write_apps(work, n, tag):
    for i in range(n):
        d = os.path.join(work, "apps", app_name(i))
        os.makedirs(d, exist_ok=True)
        for name, text in (("deploy.yaml", DEPLOY), ("svc.yaml", SERVICE),
                           ("cm.yaml", CONFIGMAP)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text % {"tag": tag})


def commit(work, bare, n, tag):
    write_apps(work, n, tag)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "web " + tag, cwd=work)
    git("push", "-q", bare, "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


class Daemon:
    def __init__(self, binary, tmp, n, bare, kubeconfig, workers, qps):
        self.port, self.admin = free_port(), free_port()
        self.bare = bare
        with open(os.path.join(tmp, "github.secret"), "w") as f:
            f.write(SECRET)
        os.chmod(os.path.join(tmp, "github.secret"), 0o600)
        apps = "".join(
            "  - {name: %s, repo: deploy, path: apps/%s, cluster: sim,"
            " namespace: %s,\n     sync: {auto: true, prune: true,"
            " timeout_s: 600}}\n" % (app_name(i), app_name(i), app_name(i))
            for i in range(n))
        cfg = ("shutdown_timeout_s: 5\n"
               "server: {listen: \"127.0.0.1:%d\"}\n"
               "admin: {listen: \"127.0.0.1:%d\"}\n"
               "state: {path: \"%s/state.db\"}\n"
               "workdir: \"%s/repos\"\n"
               "%s"
               "sources:\n"
               "  - {name: github, type: github, secret_file: github.secret}\n"
               "repos:\n"
               "  - {name: deploy, url: \"%s\", branch: main}\n"
               "clusters:\n"
               "  - {name: sim, kubeconfig: \"%s\"%s}\n"
               "apps:\n%s" % (
                   self.port, self.admin, tmp, tmp,
                   "queue: {workers: %d}\n" % workers if workers else "",
                   bare, kubeconfig, ", qps: %s" % qps if qps else "",
                   apps))
        path = os.path.join(tmp, "gitopsd.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(tmp, "gitopsd.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", path,
                                      "--log-level", "warn"], cwd=tmp,
                                     stdout=self.log, stderr=self.log)
        for _ in range(400):
            try:
                if http("http://127.0.0.1:%d/readyz" % self.admin)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("gitopsd did not come up (see %s/gitopsd.log)"
                           % tmp)

    def push(self, after):
        body = json.dumps({
            "ref": "refs/heads/main", "before": "0" * 40, "after": after,
            "created": False, "deleted": False, "forced": False,
            "commits": [], "head_commit": {"id": after},
            "repository": {"full_name": "acme/deploy", "name": "deploy",
                           "clone_url": self.bare, "ssh_url": self.bare,
                           "html_url": "file://" + self.bare},
            "pusher": {"name": "bench", "email": "bench@localhost"},
        }).encode()
        st, b = http("http://127.0.0.1:%d/hooks/github" % self.port, body,
                     github_headers(SECRET, body, str(uuid.uuid4())))
        if st != 202:
            raise RuntimeError("push: HTTP %d %s" % (st, b[:200]))

    def sync_counts(self):
        st, b = http("http://127.0.0.1:%d/metrics" % self.admin)
        out = {}
        for line in b.decode().splitlines():
            if line.startswith('gitopsd_jobs_total{kind="sync"'):
                result = line.split('result="', 1)[1].split('"', 1)[0]
                out[result] = float(line.rsplit(" ", 1)[1])
        return out

    def apps(self):
        st, b = http("http://127.0.0.1:%d/api/v1/apps" % self.admin,
                     timeout=120)
        return json.loads(b)["apps"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def phase(name, d, sim, n, revision, timeout):
    before = d.sync_counts()
    sim.call("DELETE", "/_sim/requests")
    c0, s0 = proc_cpu_s(d.proc.pid), proc_cpu_s(sim.proc.pid)
    t0 = time.monotonic()
    d.push(revision)
    while True:
        now = d.sync_counts()
        done = now.get("succeeded", 0) - before.get("succeeded", 0)
        bad = sum(now.get(k, 0) - before.get(k, 0) for k in ("failed",
                                                            "dead"))
        if done + bad >= n:
            break
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("%s: %d of %d syncs after %d s"
                               % (name, done, n, timeout))
        time.sleep(0.05)
    secs = time.monotonic() - t0
    cpu, scpu = proc_cpu_s(d.proc.pid) - c0, proc_cpu_s(sim.proc.pid) - s0
    reqs = len(sim.requests())
    apps = d.apps()
    healthy = sum(1 for a in apps if a.get("health") == "Healthy" and
                  a.get("revision") == revision)
    return {"phase": name, "n": n, "seconds": secs,
            "cpu_ms_per_app": cpu * 1000 / n,
            "requests_per_app": reqs / n, "rss_mb":
            proc_mem_mb(d.proc.pid, "VmRSS"), "healthy": healthy,
            "failed": int(bad), "sim_cpu_s": scpu}


def run_n(n, binary, ready_delay, workers, qps, timeout):
    tmp = tempfile.mkdtemp(prefix="gitopsd-fanout-",
                           dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    sim = d = None
    try:
        sim = Kubesim(ready_delay=ready_delay)
        for i in range(n):
            st, _ = sim.call("POST", "/api/v1/namespaces", {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": app_name(i)}})
            if st != 201:
                raise RuntimeError("namespace %s: HTTP %d" % (app_name(i),
                                                             st))
        bare, work = os.path.join(tmp, "deploy.git"), \
            os.path.join(tmp, "work")
        git("init", "-q", "--bare", "-b", "main", bare)
        git("init", "-q", "-b", "main", work)
        rev1 = commit(work, bare, n, "1.0")
        d = Daemon(binary, tmp, n, bare, sim.kubeconfig, workers, qps)
        rows = [phase("first", d, sim, n, rev1, timeout)]
        rev2 = commit(work, bare, n, "1.1")
        rows.append(phase("change", d, sim, n, rev2, timeout))
        rows.append(phase("unchanged", d, sim, n, rev2, timeout))
        hwm = proc_mem_mb(d.proc.pid, "VmHWM")
        return rows, hwm
    finally:
        if d is not None:
            d.stop()
        if sim is not None:
            sim.stop()
        shutil.rmtree(tmp, True)


def main():
    sizes = os.environ.get("FANOUT_N", "10 100")
    if sizes == "full":
        sizes = "10 100 500 2000"
    binary = os.environ.get("GITOPSD", os.path.join(ROOT, "build",
                                                    "gitopsd"))
    if not os.access(binary, os.X_OK):
        sys.exit("bench: %s not built (make B=build all)" % binary)
    ready_delay = float(os.environ.get("READY_DELAY", "0.5"))
    workers = int(os.environ.get("WORKERS", "0"))
    qps = os.environ.get("QPS")
    timeout = float(os.environ.get("PHASE_TIMEOUT", "1800"))
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print("fan-out benchmark: N apps x (Deployment, Service, ConfigMap), "
          "one push each phase;")
    print("%d CPUs, load average %s, simulator ready delay %.2f s, "
          "workers %s, client qps %s" % (
              os.cpu_count(), load, ready_delay, workers or "default (4)",
              qps if qps else "default (50, burst 100)"))
    print("%6s %-10s %9s %9s %10s %8s %8s %9s %9s" % (
        "N", "phase", "seconds", "s/app", "cpu_ms/app", "req/app",
        "rss_MB", "sim_cpu_s", "healthy"))
    for n in [int(x) for x in sizes.split()]:
        rows, hwm = run_n(n, binary, ready_delay, workers, qps, timeout)
        for r in rows:
            print("%6d %-10s %9.2f %9.3f %10.1f %8.1f %8.1f %9.1f %5d/%d%s"
                  % (n, r["phase"], r["seconds"], r["seconds"] / n,
                     r["cpu_ms_per_app"], r["requests_per_app"],
                     r["rss_mb"], r["sim_cpu_s"], r["healthy"], n,
                     " (%d failed)" % r["failed"] if r["failed"] else ""))
            sys.stdout.flush()
        print("%6d peak RSS %.1f MB" % (n, hwm))


if __name__ == "__main__":
    main()
