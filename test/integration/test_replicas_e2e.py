"""Three gitopsd replicas on one PostgreSQL database behind HAProxy, the
one webhook URL, end to end:

  16 concurrent senders post signed GitHub pushes and registry image
  events (each with its own delivery id) to HAProxy, which spreads them
  over three replicas (round robin, health check on each replica's
  /readyz, `option redispatch` and retries so a dead replica's
  connections go to another one); in the middle of the load one replica
  is killed with SIGKILL.

A sender behaves as GitHub's redelivery does: a delivery that got any
answer other than 202 (a 5xx, a 503 from HAProxy, a dropped connection)
is sent again, same id and body, after 0.2 s, until it is acknowledged,
either by a 202 or by `200 {"duplicate":true}` (stored by an earlier
attempt whose answer was lost).  Checks, in PostgreSQL (psql) and
through a surviving replica's admin API:

- every delivery is stored exactly once, whatever its answers were;
- every job ends exactly once: none left queued or running, one final
  state each, at most one successful attempt;
- one commit per image bump in the bare repository;
- one alert per failure: a loopback HTTP sink counts alert ids.

The test prints the counts.  Without leases (queue.lease_s) a job that
was running on the killed replica stays `running`; the killed replica
is then restarted (as systemd or Kubernetes would) and its start-up
recovery re-queues it.  With leases the survivors take the job over and
no restart is needed.  The kill of a replica while it runs a job is a
test of its own, which needs leases."""
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness
import pg_server
from e2e_peers import make_bare_repo
from fault_peers import GitHTTP, Kubesim, git
from notify_receivers import Receiver

SECRET = "replicas-e2e-github-secret"
TOKEN = "replicas-e2e-registry-token-0123456789"
GIT_PASSWORD = "replicas-e2e-git-password"
# A loopback port nothing listens on: image names resolve to no registry
# and nothing leaves the machine (verify_tag is off, polling too).
REGISTRY = "127.0.0.1:9"
REPLICAS = 3
SENDERS = 16
PUSHES = 1200           # GitHub pushes of app web: events, sync jobs
BUMPS = 8               # one image bump per app a0..a7: update-image jobs
FAILURES = 6            # one push per app bad0..bad5: a cluster that fails
# A push from a known base: its commits list is the whole change, so only
# the apps under its paths are synced (a new ref would sync every app).
BEFORE = "b" * 40
KILL_AFTER = 0.4        # share of deliveries acknowledged before the kill
if harness.VALGRIND:
    PUSHES = 300

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %(app)s
spec:
  selector:
    matchLabels: {app: %(app)s}
  template:
    metadata:
      labels: {app: %(app)s}
    spec:
      containers:
        - name: %(app)s
          image: %(registry)s/acme/%(app)s:1.0.0
"""

CONFIG_HEAD = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}", max_connections: 256}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {driver: postgres, dsn_file: pg.dsn}
workdir: "{tmp}/repos"
queue: {workers: 2%(lease)s}
retry: {base_s: 1, max_s: 1, max_attempts: 2}
notify: {repeat_after_s: 3600, timeout_s: 5}
sources:
  - {name: github, type: github, secret_file: github.secret}
  - {name: registry, type: registry, token_file: registry.token,
     verify_tag: false}
repos:
  - name: deploy
    url: "%(git_url)s"
    branch: main
    poll_interval_s: 0   # the senders' pushes are the events under test
    auth: {username: deployer, password_file: git.password}
    author: {name: gitopsd-bot, email: bot@acme.test}
%(extra_repos)snotifiers:
  - {name: sink, type: webhook, url: "%(sink)s", on: [failure]}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
  - {name: c, kubeconfig: "%(bad_kubeconfig)s"}
apps:
  - {name: web, repo: deploy, path: apps/web, cluster: sim,
     namespace: default, sync: {timeout_s: 20}}
"""

BUMP_APP = """  - name: %(app)s
    repo: deploy
    path: apps/%(app)s
    images:
      - {repository: "%(registry)s/acme/%(app)s", poll_interval_s: 0,
         policy: {semver: ">=1.0.0"}}
"""

BAD_APP = """  - {name: %(app)s, repo: deploy, path: apps/%(app)s, cluster: c,
     namespace: default, notify: [sink]}
"""


def skip_reason():
    why = pg_server.available()
    if why:
        return why
    if shutil.which("haproxy") is None:
        return "haproxy not installed: make deps"
    try:
        harness.binary()
    except RuntimeError as e:
        return str(e)
    return None


def leases_supported():
    """Whether this gitopsd has job leases: `gitopsd -t` accepts
    queue.lease_s.  Without them a killed replica's running jobs wait for
    its restart."""
    if skip_reason() is not None:
        return False
    tmp = tempfile.mkdtemp(prefix="gitopsd-lease-probe-")
    try:
        path = os.path.join(tmp, "gitopsd.yaml")
        harness.write(path, "server: {listen: \"127.0.0.1:1\"}\n"
                      "state: {path: \"%s/state.db\"}\n"
                      "queue: {lease_s: 5}\n" % tmp)
        r = harness.run_tool([harness.binary(), "-t", "-c", path],
                             capture_output=True, text=True)
        return r.returncode == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def registry_event(app, tag, event_id):
    digest = "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL,
                                    app + tag).hex * 2
    return json.dumps({"events": [{
        "id": event_id, "timestamp": "2026-01-01T00:00:00Z",
        "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": digest, "size": 100,
                   "repository": "acme/" + app, "tag": tag,
                   "url": "http://%s/v2/acme/%s/manifests/%s" % (
                       REGISTRY, app, tag)},
        "request": {"id": event_id, "host": REGISTRY, "method": "PUT",
                    "useragent": "skopeo"},
        "actor": {}, "source": {"addr": REGISTRY}}]}).encode()


class HAProxy:
    """HAProxy on a free loopback port in front of the replicas."""

    def __init__(self, tmp, replicas):
        self.port = harness.free_port()
        self.conf = os.path.join(tmp, "haproxy.cfg")
        self.sock = os.path.join(tmp, "haproxy.sock")
        servers = "".join(
            "  server r%d 127.0.0.1:%d check port %d\n"
            % (i, d.port, d.admin_port) for i, d in enumerate(replicas))
        # A refused connection (a dead replica not yet marked down by the
        # health check) is retried on another replica (redispatch).  A
        # request in flight when its replica dies is answered 502 and left
        # to the sender to deliver again, as GitHub does: HAProxy could
        # resend it (retry-on empty-response), but then no sender would
        # ever see the failure this test is about.
        harness.write(os.path.join(tmp, "haproxy.cfg"), """
global
  nbthread 1
  maxconn 512
  stats socket %s mode 600
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch 1
  retry-on conn-failure
frontend hooks
  bind 127.0.0.1:%d
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 200ms fall 1 rise 2
%s""" % (self.sock, self.port, servers), mode=0o644)
        self.log = open(os.path.join(tmp, "haproxy.log"), "wb")
        self.proc = None

    def start(self):
        r = subprocess.run(["haproxy", "-c", "-f", self.conf],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("haproxy -c: " + r.stdout + r.stderr)
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.conf],
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                harness.request(self.port, "GET", "/healthz", timeout=2)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("haproxy did not come up")

    def backend_stats(self):
        """HAProxy's counters of the backend: retries (wretr),
        redispatches (wredis), 5xx answered (hrsp_5xx)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock)
            s.sendall(b"show stat\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        lines = out.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "replicas" and \
                    row.get("svname") == "BACKEND":
                return {k: int(row[k] or 0)
                        for k in ("wretr", "wredis", "hrsp_5xx")}
        raise RuntimeError("no backend in haproxy stats: %r" % lines[:3])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def post(port, path, body, headers, timeout=20 * harness.TIMEOUT_SCALE):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@unittest.skipIf(skip_reason() is not None, skip_reason() or "")
class ReplicasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_server.PgServer()
        try:
            cls.pg.start()
        except Exception:
            cls.pg.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        self.db = "r" + uuid.uuid4().hex[:12]
        self.dsn = self.pg.createdb(self.db)
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-replicas-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.gitroot = os.path.join(self.tmp, "srv")
        os.makedirs(self.gitroot)
        self.bumped = ["a%d" % i for i in range(BUMPS)]
        self.bad = ["bad%d" % i for i in range(FAILURES)]
        files = {"README.md": "deploy\n"}
        for app in ["web"] + self.bumped + self.bad:
            files["apps/%s/deployment.yaml" % app] = DEPLOYMENT % {
                "app": app, "registry": REGISTRY}
        self.bare = make_bare_repo(self.gitroot, "deploy.git", files)
        self.http = GitHTTP(self.gitroot, "deployer", GIT_PASSWORD).start()
        self.addCleanup(self.http.stop)
        self.sim = Kubesim(ready_delay=0.05)
        self.addCleanup(self.sim.stop)
        # The failing apps' cluster: the simulator without its CA, so its
        # certificate does not verify, a failure no retry fixes.  One
        # attempt each: a replica killed during it leaves a job that has
        # attempts left (a job whose last attempt is interrupted ends
        # dead in start-up recovery without an alert).
        with open(self.sim.kubeconfig) as f:
            text = f.read()
        self.bad_kubeconfig = os.path.join(self.tmp, "bad.kubeconfig")
        harness.write(self.bad_kubeconfig, re.sub(
            r"(?m)^\s*certificate-authority:.*\n", "", text))
        self.sink = Receiver("http").start()
        self.addCleanup(self.sink.close)
        self.lease = leases_supported()

    def config(self, lease_s=None, extra_repos="", extra_apps=""):
        text = CONFIG_HEAD % {
            "lease": ", lease_s: %d" % lease_s if lease_s else "",
            "extra_repos": extra_repos,
            "git_url": self.http.url("deploy.git"),
            "kubeconfig": self.sim.kubeconfig,
            "bad_kubeconfig": self.bad_kubeconfig,
            "sink": "http://127.0.0.1:%d/alerts" % self.sink.port}
        for app in self.bumped:
            text += BUMP_APP % {"app": app, "registry": REGISTRY}
        for app in self.bad:
            text += BAD_APP % {"app": app}
        return text + extra_apps

    def replica(self, text):
        d = harness.Daemon(text, secrets={
            "github.secret": SECRET, "registry.token": TOKEN + "\n",
            "git.password": GIT_PASSWORD + "\n", "pg.dsn": self.dsn})
        self.addCleanup(d.cleanup)
        return d

    def sql(self, query):
        return self.pg.psql(query, self.db).strip()

    def all_jobs(self, d):
        out, after = [], None
        while True:
            q = "/api/v1/jobs?limit=1000"
            if after is not None:
                q += "&after=%d" % after
            page = d.api(q)
            out += page["jobs"]
            if page["next"] is None:
                return out
            after = page["next"]

    def deliveries(self):
        """(path, delivery, body, headers) of every request to send."""
        out = []
        clone = self.http.url("deploy.git")
        head = git("rev-parse", "main", cwd=self.bare).strip()
        for i in range(PUSHES):
            body = harness.github_push_body(clone, before=BEFORE, after=head,
                                            paths=["apps/web/x%d.yaml" % i])
            delivery = "push-%05d-%s" % (i, uuid.uuid4())
            out.append(("/hooks/github", delivery, body,
                        harness.github_headers(SECRET, body, delivery)))
        for app in self.bad:
            body = harness.github_push_body(
                clone, before=BEFORE, after=head,
                paths=["apps/%s/deployment.yaml" % app])
            delivery = "fail-%s-%s" % (app, uuid.uuid4())
            out.append(("/hooks/github", delivery, body,
                        harness.github_headers(SECRET, body, delivery)))
        for app in self.bumped:
            delivery = str(uuid.uuid4())
            body = registry_event(app, "1.1.0", delivery)
            out.append(("/hooks/registry", delivery, body, {
                "Content-Type":
                    "application/vnd.docker.distribution.events.v1+json",
                "Authorization": "Bearer " + TOKEN}))
        # Spread the jobs' deliveries over the whole load, the kill too.
        random.Random(20).shuffle(out)
        return out

    def wait_quiet(self, d, timeout=120, stable_s=5):
        """Waits until the jobs not yet ended have stayed the same (ids and
        states) for stable_s, longer than any retry delay here (and than
        a lease); returns them: none, or the ones stuck behind a dead
        replica."""
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        last, since = None, time.time()
        while time.time() < deadline:
            left = sorted((j["id"], j["kind"], j["app"], j["state"])
                          for j in self.all_jobs(d)
                          if j["state"] not in ("succeeded", "dead"))
            if left != last:
                last, since = left, time.time()
            elif time.time() - since >= stable_s:
                return left
            time.sleep(0.3)
        self.fail("jobs never settled: %r" % last)

    def test_kill9_during_load(self):
        text = self.config(lease_s=3 if self.lease else None)
        replicas = [self.replica(text) for _ in range(REPLICAS)]
        # One after the other: without leases a starting replica
        # re-queues every running job, and none runs yet.
        for d in replicas:
            d.start()
        proxy = HAProxy(self.tmp, replicas).start()
        self.addCleanup(proxy.stop)
        victim = replicas[1]
        survivor = replicas[0]

        work = self.deliveries()
        answers = {}            # delivery -> list of statuses, in order
        final = {}              # delivery -> "202" or "duplicate"
        lock = threading.Lock()
        acked = [0]
        kill_at = int(len(work) * KILL_AFTER)
        killed = threading.Event()
        errors = []

        def sender(k):
            for path, delivery, body, headers in work[k::SENDERS]:
                for _ in range(100):
                    try:
                        status, raw = post(proxy.port, path, body, headers)
                    except (OSError, http.client.HTTPException):
                        status, raw = 0, b""    # no answer
                    with lock:
                        answers.setdefault(delivery, []).append(status)
                    if status == 202:
                        outcome = "202"
                    elif status == 200 and json.loads(raw).get("duplicate"):
                        outcome = "duplicate"
                    elif status == 0 or status >= 500:
                        time.sleep(0.2)         # GitHub would redeliver
                        continue
                    else:
                        errors.append((delivery, status, raw[:200]))
                        return
                    with lock:
                        final[delivery] = outcome
                        acked[0] += 1
                        if acked[0] >= kill_at and not killed.is_set():
                            killed.set()
                            victim.kill9()
                    break
                else:
                    errors.append((delivery, "never acknowledged"))

        t0 = time.time()
        threads = [threading.Thread(target=sender, args=(k,))
                   for k in range(SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300 * harness.TIMEOUT_SCALE)
        load_s = time.time() - t0
        self.assertEqual(errors[:5], [])
        self.assertTrue(killed.is_set())
        self.assertIsNotNone(victim.proc.poll(), "the victim still runs")
        self.assertEqual(len(final), len(work))

        # Stored exactly once, whatever the answers were.
        rows = self.sql("SELECT source, delivery, count(*) FROM events"
                        " GROUP BY source, delivery").splitlines()
        stored = {}
        for line in rows:
            source, delivery, n = line.split("|")
            stored[delivery] = int(n)
        self.assertEqual({k: v for k, v in stored.items() if v != 1}, {})
        self.assertEqual(sorted(stored), sorted(final))
        self.assertEqual(int(self.sql("SELECT count(*) FROM events")),
                         len(work))
        # The admin API of a survivor sees them too.
        seen = set()
        after = None
        while True:
            q = "/api/v1/events?limit=1000"
            if after is not None:
                q += "&after=%d" % after
            page = survivor.api(q)
            seen |= {e["delivery"] for e in page["events"]}
            if page["next"] is None:
                break
            after = page["next"]
        self.assertEqual(seen, set(final))

        # GitHub's "Redeliver" of deliveries already stored: duplicates.
        again = random.Random(7).sample(work, 64)
        for path, delivery, body, headers in again:
            status, raw = post(proxy.port, path, body, headers)
            self.assertEqual(status, 200, raw)
            self.assertTrue(json.loads(raw).get("duplicate"), raw)
        self.assertEqual(int(self.sql("SELECT count(*) FROM events")),
                         len(work))
        proxy_stats = proxy.backend_stats()

        # Every job ends once.
        stuck = self.wait_quiet(survivor, stable_s=12 if self.lease else 5)
        recovered = None
        if stuck and not self.lease:
            # Without leases the killed replica's running jobs (and the
            # jobs of their app queued behind them) wait for it.
            recovered = stuck
            victim.start()
            stuck = self.wait_quiet(survivor)
        self.assertEqual(stuck, [], "jobs left unfinished")
        jobs = self.all_jobs(survivor)
        by_state = {}
        for j in jobs:
            by_state[j["state"]] = by_state.get(j["state"], 0) + 1
        self.assertEqual(set(by_state) - {"succeeded", "dead"}, set(),
                         by_state)
        self.assertEqual(len({j["id"] for j in jobs}), len(jobs))
        self.assertEqual(self.sql(
            "SELECT count(*) FROM (SELECT job_id FROM attempts WHERE ok = 1"
            " GROUP BY job_id HAVING count(*) > 1) t"), "0")
        updates = [j for j in jobs if j["kind"] == "update-image"]
        self.assertTrue(updates)
        self.assertTrue(all(j["state"] == "succeeded" for j in updates),
                        updates)
        syncs = [j for j in jobs if j["kind"] == "sync" and j["app"] == "web"]
        self.assertTrue(syncs)
        self.assertTrue(all(j["state"] == "succeeded" for j in syncs),
                        [j for j in syncs if j["state"] != "succeeded"])
        dead_syncs = [j for j in jobs if j["kind"] == "sync" and
                      j["app"] != "web"]
        self.assertEqual(sorted(j["app"] for j in dead_syncs),
                         sorted(self.bad))
        self.assertTrue(all(j["state"] == "dead" for j in dead_syncs),
                        dead_syncs)

        # One commit per image bump.
        log = git("log", "-p", "--format=COMMIT %H %s", "main",
                  cwd=self.bare)
        commits, added = [], {}
        for line in log.splitlines():
            if line.startswith("COMMIT "):
                commits.append(line.split()[1])
            m = re.match(r"^\+\s+image: %s/acme/(\w+):1\.1\.0" %
                         re.escape(REGISTRY), line)
            if m:
                added.setdefault(m.group(1), []).append(commits[-1])
        self.assertEqual({a: len(c) for a, c in added.items()},
                         {a: 1 for a in self.bumped})
        bump_commits = {c for cs in added.values() for c in cs}
        # Every commit but the first is a bump's.
        self.assertEqual(bump_commits, set(commits[:-1]))

        # One alert per failure.
        deadline = time.time() + 30 * harness.TIMEOUT_SCALE
        alerts = []
        while time.time() < deadline:
            alerts = [r for r in self.sink.records()
                      if r.get("path") == "/alerts"]
            if len(alerts) >= len(self.bad):
                break
            time.sleep(0.2)
        time.sleep(1)   # a second copy would come now
        alerts = [r for r in self.sink.records() if r.get("path") == "/alerts"]
        ids = {}
        for r in alerts:
            aid = r["headers"]["x-gitopsd-delivery"]
            ids[aid] = ids.get(aid, 0) + 1
        alerted = sorted(json.loads(r["body"])["app"] for r in alerts)
        notes = [j for j in jobs if j["kind"] == "notify"]

        statuses = [s for v in answers.values() for s in v]
        print("\nreplicas e2e: %d deliveries over %d senders in %.1f s "
              "through haproxy, replica %d killed after %d acknowledged%s;"
              "\n  answers: %d 202, %d 200 duplicate, %d 5xx, %d no answer"
              " (%d deliveries sent again after one), haproxy %s, %d"
              " redeliveries of stored ones all duplicates;"
              " stored events %s (distinct %d);\n  jobs by state %s "
              "(update-image %d, sync %d + %d failing, notify %d);"
              " commits %d (bumps %d);"
              " alerts %d (distinct ids %d, failures %d)" % (
                  len(work), SENDERS, load_s, 1, kill_at,
                  ", restarted to recover %d unfinished jobs %s" % (
                      len(recovered), recovered) if recovered else "",
                  statuses.count(202),
                  sum(1 for v in final.values() if v == "duplicate"),
                  sum(1 for s in statuses if s >= 500),
                  statuses.count(0),
                  sum(1 for v in answers.values() if len(v) > 1),
                  json.dumps(proxy_stats, sort_keys=True), len(again),
                  self.sql("SELECT count(*) FROM events"), len(stored),
                  json.dumps(by_state, sort_keys=True), len(updates),
                  len(syncs), len(dead_syncs), len(notes), len(commits) - 1,
                  len(added), len(alerts), len(ids), len(self.bad)))
        self.assertEqual(len(ids), len(self.bad), alerts)
        # An alert the receiver took just before its replica was killed
        # (its outcome not committed yet) is sent again by the replica that
        # takes the job over, with the same id for a receiver to drop:
        # delivery is at least once, and only such a job repeats.
        interrupted = [j for j in notes if j["attempts"] > 1]
        self.assertLessEqual(sum(n - 1 for n in ids.values()),
                             len(interrupted), (ids, notes))
        self.assertEqual(alerted, sorted(self.bad))
        self.assertTrue(all(j["state"] == "succeeded" for j in notes), notes)

        for d in replicas:
            if d.proc.poll() is None:
                self.assertEqual(d.stop(), 0, d.log()[-3000:])
            self.assertNotIn("Sanitizer", d.log())

    @unittest.skipUnless(leases_supported(),
                         "needs job leases (queue.lease_s)")
    def test_kill9_during_running_job(self):
        """A replica killed while its update-image job pushes: another
        replica takes the job over after the lease; one commit for the
        bump.  A job that fails the same way is alerted once."""
        # The first push of each repository hangs for 4 s in pre-receive
        # (marker file), so the job is certainly running at the kill; the
        # `locked` repository then refuses every push.
        hook = """#!/bin/sh
cat >/dev/null
if [ ! -e "$GIT_DIR/hung" ]; then touch "$GIT_DIR/hung"; sleep 4; fi
[ ! -e "$GIT_DIR/refuse" ] || { echo refused >&2; exit 1; }
exit 0
"""
        locked = make_bare_repo(self.gitroot, "locked.git", {
            "apps/l0/deployment.yaml": DEPLOYMENT % {
                "app": "l0", "registry": REGISTRY}})
        harness.write(os.path.join(locked, "refuse"), "")
        for bare in (self.bare, locked):
            harness.write(os.path.join(bare, "hooks", "pre-receive"), hook,
                          mode=0o755)
        text = self.config(lease_s=3, extra_repos=(
            "  - name: locked\n    url: \"%s\"\n    branch: main\n"
            "    poll_interval_s: 0\n"
            "    auth: {username: deployer, password_file: git.password}\n"
            % self.http.url("locked.git")), extra_apps=(
            "  - name: l0\n    repo: locked\n    path: apps/l0\n"
            "    notify: [sink]\n    images:\n"
            "      - {repository: \"%s/acme/l0\", poll_interval_s: 0,\n"
            "         policy: {semver: \">=1.0.0\"}}\n" % REGISTRY))
        a = self.replica(text)
        a.start()
        for app in ("a0", "l0"):
            delivery = str(uuid.uuid4())
            status, raw = post(a.port, "/hooks/registry",
                               registry_event(app, "1.1.0", delivery), {
                                   "Content-Type": "application/json",
                                   "Authorization": "Bearer " + TOKEN})
            self.assertEqual(status, 202, raw)
        deadline = time.time() + 30
        while time.time() < deadline:
            running = [j for j in self.all_jobs(a)
                       if j["state"] == "running"]
            if len(running) == 2:
                break
            time.sleep(0.05)
        self.assertEqual(len(running), 2, self.all_jobs(a))
        others = [self.replica(text) for _ in range(2)]
        for d in others:
            d.start()
        a.kill9()
        t0 = time.time()
        stuck = self.wait_quiet(others[0], timeout=60, stable_s=12)
        self.assertEqual(stuck, [])
        jobs = self.all_jobs(others[0])
        ups = {j["app"]: j for j in jobs if j["kind"] == "update-image"}
        self.assertEqual(ups["a0"]["state"], "succeeded", ups)
        self.assertEqual(ups["l0"]["state"], "dead", ups)
        log = git("log", "-p", "--format=COMMIT %H", "main",
                  cwd=self.bare)
        self.assertEqual(len(re.findall(
            r"(?m)^\+\s+image: .*/acme/a0:1\.1\.0", log)), 1, log)
        time.sleep(1)
        alerts = [r for r in self.sink.records()
                  if r.get("path") == "/alerts"]
        self.assertEqual([json.loads(r["body"])["app"] for r in alerts],
                         ["l0"], alerts)
        print("\nreplicas e2e: running jobs taken over in %.1f s after the "
              "kill; 1 commit, 1 alert" % (time.time() - t0))


if __name__ == "__main__":
    unittest.main()
