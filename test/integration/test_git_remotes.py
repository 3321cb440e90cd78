"""End to end: a registry push event becomes an update-image job in a real
gitopsd, which edits the manifests of a repository served by git
http-backend behind lighttpd (basic auth, password from a file), commits,
pushes, and queues a sync of the app at the new commit.

GitHTTPUpdateTest:
- the job succeeds, the branch holds one new commit by the configured
  author with the tag changed and nothing else, and the commit message
  carries the job and event trailers;
- a sync follow-up job exists for the app at that commit;
- a second event for the same tag succeeds without a commit;
- wrong credentials make the job dead at once with a git-auth error.

StalledRemoteTest (git.timeout_s: 2):
- a remote that accepts the connection and never answers: the job's
  attempts fail with "timed out" and are retried with backoff until the
  job is dead and the app's failure alert goes out; meanwhile the worker
  shows in gitopsd_workers_busy and gitopsd_oldest_running_job_seconds,
  and another app's job on another repository runs and succeeds;
- a pre-receive hook that sleeps (smart HTTP): the push times out, the
  attempt fails and is retried, and succeeds once the hook is quick;
- two apps syncing from the hung repository: the second one's attempt
  gives up waiting for the clone ("busy"), so a job of another repository
  runs on that worker while the first attempt still hangs.
"""
import socket
import json
import os
import shutil
import tempfile
import time
import unittest

import harness
from e2e_peers import parse_prometheus, samples
from fault_peers import GitHTTP, Kubesim, git, registry_push
from notify_receivers import Receiver

ROOT = harness.ROOT
FIXTURES = os.path.join(ROOT, "test", "fixtures", "registry")
TOKEN = "registry-notify-token-0123456789abcdef"
CT_V1 = "application/vnd.docker.distribution.events.v1+json"
REGISTRY = "registry.test:5000"


DEPLOYMENT = """# web: managed by gitopsd
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "%s/acme/web:1.0.0"   # keep this comment
"""

CONFIG = """
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 2, max_attempts: 3}
sources:
  - {name: registry, type: registry, token_file: registry.token, verify_tag: false}
repos:
  - name: deploy
    url: "http://127.0.0.1:%(git_port)d/git/deploy.git"
    poll_interval_s: 0
    branch: main
    auth: {username: deployer, password_file: git.password}
    author: {name: gitopsd-bot, email: bot@acme.test}
apps:
  - name: web
    repo: deploy
    path: apps/web
    cluster: c
    images:
      - {repository: "%(reg)s/acme/web", policy: {semver: ">=1.0.0"}}
""" + harness.DEAD_CLUSTER


class GitHTTPBase(unittest.TestCase):
    """A bare repository srv/deploy.git served by lighttpd (no tests)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-remotes-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.gitroot = os.path.join(self.tmp, "srv")
        os.makedirs(self.gitroot)
        src = os.path.join(self.tmp, "src")
        harness.write(os.path.join(src, "apps", "web", "deployment.yaml"),
                      DEPLOYMENT % REGISTRY, mode=0o644)
        harness.write(os.path.join(src, "README.md"), "deploy\n", mode=0o644)
        git("init", "-q", src)
        git("add", ".", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        self.bare = os.path.join(self.gitroot, "deploy.git")
        git("clone", "-q", "--bare", src, self.bare)
        git("config", "http.receivepack", "true", cwd=self.bare)
        self.http = GitHTTP(self.gitroot, "deployer", "s3cret-http").start()
        self.addCleanup(self.http.stop)

    def jobs(self, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        return self.d.api("/api/v1/jobs" + ("?" + q if q else ""))["jobs"]


class GitHTTPUpdateTest(GitHTTPBase):
    def start_daemon(self, password):
        self.d = harness.Daemon(
            CONFIG % {"git_port": self.http.port, "reg": REGISTRY},
            secrets={"registry.token": TOKEN + "\n",
                     "git.password": password + "\n",
                     **harness.DEAD_CLUSTER_FILES})
        self.addCleanup(self.d.cleanup)
        self.d.start()
        r = self.d.admin("GET", "/api/v1/jobs")
        if r.status == 404:
            self.skipTest("the durable queue is not merged: /api/v1/jobs 404")

    def post_push(self, tag, event_id):
        with open(os.path.join(FIXTURES, "distribution-push-manifest.json")) as f:
            body = json.load(f)
        ev = body["events"][0]
        ev["id"] = event_id
        ev["target"]["tag"] = tag
        ev["target"]["repository"] = "acme/web"
        ev["request"]["host"] = REGISTRY
        ev["target"]["url"] = "http://%s/v2/acme/web/manifests/%s" % (
            REGISTRY, ev["target"]["digest"])
        r = self.d.post("/hooks/registry", json.dumps(body).encode(),
                        {"Content-Type": CT_V1,
                         "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)

    def wait_job(self, pred, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            jobs = [j for j in self.jobs(kind="update-image") if pred(j)]
            if jobs:
                return jobs[0]
            time.sleep(0.1)
        self.fail("no job matched: %r\n%s" % (self.jobs(), self.d.log()[-4000:]))

    def test_push_event_commits_and_queues_sync(self):
        self.start_daemon("s3cret-http")
        before = git("rev-parse", "main", cwd=self.bare)
        self.post_push("1.1.0", "11111111-2222-3333-4444-555555555555")
        job = self.wait_job(lambda j: j["tag"] == "1.1.0" and
                            j["state"] in ("succeeded", "failed", "dead"))
        self.assertEqual(job["state"], "succeeded", job)
        commit = job["result"]["commit"]
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), commit)
        self.assertEqual(git("rev-parse", "main~1", cwd=self.bare), before)
        self.assertEqual(git("show", "main:apps/web/deployment.yaml",
                             cwd=self.bare) + "\n",
                         (DEPLOYMENT % REGISTRY).replace("web:1.0.0", "web:1.1.0"))
        self.assertEqual(git("diff", "--name-only", "main~1", "main",
                             cwd=self.bare), "apps/web/deployment.yaml")
        self.assertEqual(git("log", "-1", "--format=%an <%ae>", cwd=self.bare),
                         "gitopsd-bot <bot@acme.test>")
        msg = git("log", "-1", "--format=%B", cwd=self.bare)
        self.assertTrue(msg.startswith("deploy(web): web 1.0.0 -> 1.1.0\n"), msg)
        self.assertIn("Gitopsd-Job: %d" % job["id"], msg)
        self.assertIn("Gitopsd-Event: " + job["delivery"], msg)
        detail = job["result"]["detail"]
        self.assertEqual(detail["files"], ["apps/web/deployment.yaml"])
        self.assertEqual((detail["old"], detail["new"]), ("1.0.0", "1.1.0"))
        # The follow-up sync of the app at the pushed commit.
        deadline = time.time() + 10
        syncs = []
        while time.time() < deadline and not syncs:
            syncs = [j for j in self.jobs(kind="sync") if j["app"] == "web"]
            time.sleep(0.1)
        self.assertEqual(len(syncs), 1, self.jobs())
        self.assertEqual(syncs[0]["revision"], commit)

        # Same tag again (another event): success, no commit.
        self.post_push("1.1.0", "66666666-7777-8888-9999-000000000000")
        job2 = self.wait_job(lambda j: j["id"] != job["id"] and
                             j["state"] in ("succeeded", "failed", "dead"))
        self.assertEqual(job2["state"], "succeeded", job2)
        self.assertNotIn("commit", job2["result"])
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), commit)

    def test_wrong_password_is_a_permanent_auth_failure(self):
        self.start_daemon("not-the-password")
        before = git("rev-parse", "main", cwd=self.bare)
        self.post_push("1.2.0", "abababab-2222-3333-4444-555555555555")
        job = self.wait_job(lambda j: j["state"] in ("failed", "dead"))
        self.assertEqual(job["state"], "dead", job)
        self.assertEqual(job["result"]["error_kind"], "git-auth", job)
        self.assertNotIn("not-the-password", json.dumps(job))
        self.assertNotIn("not-the-password", self.d.log())
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), before)


STALL_CONFIG = """
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
queue: {workers: 2}
retry: {base_s: 1, max_s: 2, max_attempts: %(attempts)d}
git: {timeout_s: 2}
sources:
  - {name: registry, type: registry, token_file: registry.token, verify_tag: false}
repos:
  - name: stuck
    url: "%(stuck_url)s"
    poll_interval_s: 0
    branch: main
    auth: {username: deployer, password_file: git.password}
  - name: deploy
    url: "http://127.0.0.1:%(git_port)d/git/deploy.git"
    poll_interval_s: 0
    branch: main
    auth: {username: deployer, password_file: git.password}
apps:
  - name: web
    repo: stuck
    path: apps/web
    images:
      - {repository: "%(reg)s/acme/web", policy: {semver: ">=1.0.0"}}
    notify: [ops]
  - name: api
    repo: deploy
    path: apps/web
    images:
      - {repository: "%(reg)s/%(api_image)s", policy: {semver: ">=1.0.0"}}
notifiers:
  - {name: ops, type: webhook, url: "http://127.0.0.1:%(sink)d/alerts"}
"""


class StalledRemoteTest(GitHTTPBase):
    def setUp(self):
        super().setUp()
        # Accepted by the kernel (backlog), never answered.
        self.hung = socket.socket()
        self.hung.bind(("127.0.0.1", 0))
        self.hung.listen(16)
        self.addCleanup(self.hung.close)
        self.sink = Receiver("http").start()
        self.addCleanup(self.sink.close)

    def start_stall_daemon(self, stuck_url, attempts, api_image):
        self.d = harness.Daemon(STALL_CONFIG % {
            "stuck_url": stuck_url, "git_port": self.http.port,
            "api_image": api_image,
            "reg": REGISTRY, "attempts": attempts, "sink": self.sink.port},
            secrets={"registry.token": TOKEN + "\n",
                     "git.password": "s3cret-http\n"})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def post_image(self, repo, tag, event_id):
        r = self.d.post("/hooks/registry",
                        registry_push(REGISTRY, repo, tag, event_id),
                        {"Content-Type": CT_V1,
                         "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)

    def app_job(self, app):
        jobs = [j for j in self.jobs(kind="update-image")
                if j.get("app") == app]
        return jobs[0] if jobs else None

    def wait_app_job(self, app, pred, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            j = self.app_job(app)
            if j is not None and pred(j):
                return j
            time.sleep(0.1)
        self.fail("no %s job matched: %r\n%s" % (app, self.jobs(),
                                                  self.d.log()[-4000:]))

    def gauge(self, name):
        r = self.d.admin("GET", "/metrics")
        fams = parse_prometheus(r.body.decode())
        return samples(fams, name)[0]

    def test_hung_remote_times_out_and_others_run(self):
        port = self.hung.getsockname()[1]
        self.start_stall_daemon("http://127.0.0.1:%d/git/stuck.git" % port,
                                attempts=2, api_image="acme/web")
        t0 = time.time()
        # One event, two apps on two repositories: two jobs.
        self.post_image("acme/web", "1.1.0",
                        "aaaaaaaa-0000-0000-0000-000000000001")
        self.wait_app_job("web", lambda j: j["state"] == "running")
        time.sleep(0.8)
        # The stuck attempt is visible while it lasts.
        self.assertGreaterEqual(self.gauge("gitopsd_workers_busy"), 1)
        self.assertGreater(
            self.gauge("gitopsd_oldest_running_job_seconds"), 0.5)
        self.assertEqual(self.d.admin("GET", "/readyz").status, 200)
        # The other repository's job is not held up by it.
        api = self.wait_app_job(
            "api", lambda j: j["state"] in ("succeeded", "failed", "dead"))
        self.assertEqual(api["state"], "succeeded", api)
        web = self.app_job("web")
        self.assertEqual((web["state"], web["attempts"]), ("running", 0), web)
        # Each attempt times out after git.timeout_s; the retry too.
        web = self.wait_app_job("web", lambda j: j["state"] == "dead",
                                timeout=30)
        elapsed = time.time() - t0
        self.assertEqual(web["attempts"], 2, web)
        self.assertIn("fetch: timed out: no data from the remote for 2 s",
                      web["error"], web)
        self.assertGreaterEqual(elapsed, 4)
        self.assertLess(elapsed, 20)
        self.assertIn("timed out", self.d.log())
        # The dead job's app alerts, as for any failure.
        rec = self.sink.wait_records(1, timeout=30)
        self.assertIn("web", rec[0]["body"])
        self.assertEqual(self.gauge("gitopsd_workers_busy"), 0)

    def test_sleeping_pre_receive_hook_times_out_then_retries(self):
        hook = os.path.join(self.bare, "hooks", "pre-receive")
        harness.write(hook, "#!/bin/sh\nsleep 8\n", mode=0o755)
        self.start_stall_daemon(
            "http://127.0.0.1:%d/git/deploy.git" % self.http.port,
            attempts=5, api_image="acme/none")
        before = git("rev-parse", "main", cwd=self.bare)
        self.post_image("acme/web", "1.2.0",
                        "bbbbbbbb-0000-0000-0000-000000000001")
        web = self.wait_app_job(
            "web", lambda j: j["state"] == "failed" or
            j["state"] == "queued" and j["attempts"] >= 1, timeout=30)
        self.assertIn("push: timed out", web["error"], web)
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), before)
        os.unlink(hook)
        web = self.wait_app_job(
            "web", lambda j: j["state"] in ("succeeded", "dead"), timeout=60)
        self.assertEqual(web["state"], "succeeded", web)
        self.assertGreaterEqual(web["attempts"], 2, web)
        self.assertNotEqual(git("rev-parse", "main", cwd=self.bare), before)

    def test_jobs_behind_a_stalled_clone_free_their_workers(self):
        sim = Kubesim(ready_delay=0)
        self.addCleanup(sim.stop)
        port = self.hung.getsockname()[1]
        text = STALL_CONFIG.replace("git: {timeout_s: 2}",
                                    "git: {timeout_s: 10}")
        # Only api (on the other repository) takes the image.
        text = text.replace('"%(reg)s/acme/web"', '"%(reg)s/acme/none"')
        text = text.replace("\nnotifiers:", """
  - {name: s1, repo: stuck, path: apps/web, cluster: sim, namespace: default}
  - {name: s2, repo: stuck, path: apps/web, cluster: sim, namespace: default}
clusters:
  - {name: sim, kubeconfig: "%s"}
notifiers:""" % sim.kubeconfig)
        self.d = harness.Daemon(text % {
            "stuck_url": "http://127.0.0.1:%d/git/stuck.git" % port,
            "git_port": self.http.port, "api_image": "acme/web",
            "reg": REGISTRY, "attempts": 3, "sink": self.sink.port},
            secrets={"registry.token": TOKEN + "\n",
                     "git.password": "s3cret-http\n"})
        self.addCleanup(self.d.cleanup)
        self.d.start()
        t0 = time.time()
        for app in ("s1", "s2"):
            r = self.d.admin("POST", "/api/v1/apps/%s/sync" % app)
            self.assertIn(r.status, (200, 202), r)
        self.post_image("acme/web", "1.3.0",
                        "cccccccc-0000-0000-0000-000000000001")
        api = self.wait_app_job(
            "api", lambda j: j["state"] in ("succeeded", "dead"), timeout=30)
        self.assertEqual(api["state"], "succeeded", api)
        # Before the hung fetch's own deadline (10 s).
        self.assertLess(time.time() - t0, 9.5)
        syncs = {j["app"]: j for j in self.jobs(kind="sync")}
        # One still in its first attempt on the hung fetch; the other gave
        # up behind it at least once (it may be trying again by now, so
        # its state is whatever its retry has reached).
        hung = [j for j in syncs.values()
                if j["state"] == "running" and j["attempts"] == 0]
        self.assertEqual(len(hung), 1, syncs)
        other = syncs["s2" if hung[0]["app"] == "s1" else "s1"]
        self.assertGreaterEqual(other["attempts"], 1, other)
        self.assertIn("busy: another job's fetch or push", other["error"],
                      other)


if __name__ == "__main__":
    unittest.main()
