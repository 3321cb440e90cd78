"""Commit statuses (notifier type commit-status, docs/review-flow.md): each
sync is reported back to the Git host on the commit it applied, on
GitHub, GitLab, Gitea and Bitbucket Cloud (their REST APIs played by
test/support/githost_api.py, which checks the documented request shapes;
the Git side is a real bare repository, the cluster the Kubernetes
simulator).

For every provider:
- a push that syncs and becomes healthy gives the pushed commit a pending
  status, then a success one, under the context gitopsd/<app>, each
  linking to the sync job on the status page (admin.public_url);
- a sync whose rollout fails gives pending, then failure;
- the token is sent only in the provider's auth header and appears
  nowhere in the daemon's log nor the API.
Then, on GitHub: a refused token fails the status at once with the host's
message (no retry, no token); a 429 with Retry-After is retried later;
chat sinks do not get sync.started unless their `on` lists `started`.
"""
import json
import os
import shutil
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
from fault_peers import Kubesim
from githost_api import GitHostAPI
import test_sync
from test_sync import SECRET, git

TOKEN = "status-TOKEN-9a8b7c6d5e4f30211203f4e5d6c7b8a9"
PUBLIC = "https://gitopsd.test:8443/"
PREFIX = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1",
          "bitbucket": "/2.0"}
PENDING = {"github": "pending", "gitlab": "running", "gitea": "pending",
           "bitbucket": "INPROGRESS"}
SUCCESS = {"github": "success", "gitlab": "success", "gitea": "success",
           "bitbucket": "SUCCESSFUL"}
FAILURE = {"github": "failure", "gitlab": "failed", "gitea": "failure",
           "bitbucket": "FAILED"}


def config(bare, kubeconfig, provider, api, extra_notifiers=(), notify=None,
           base_url=PUBLIC, max_attempts=2):
    status = {"name": "host", "type": "commit-status", "provider": provider,
              "api_url": api, "token_file": "api.token"}
    keys = {}
    if base_url is not None:
        keys["admin"] = {"public_url": base_url}
    return harness.config(
        repos=[{"name": "deploy", "url": bare, "branch": "main"}],
        retry={"base_s": 1, "max_s": 2, "max_attempts": max_attempts},
        notify={"max_attempts": 3},
        clusters=[{"name": "sim", "kubeconfig": kubeconfig}],
        notifiers=[status, *extra_notifiers],
        apps=[{"name": "demo", "repo": "deploy", "path": "apps/demo",
               "cluster": "sim", "namespace": "demo",
               "sync": {"auto": True, "prune": True, "timeout_s": 30},
               "notify": notify or ["host"]}],
        **keys)


class CommitStatusBase(unittest.TestCase):
    provider = None

    def setUp(self):
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-status-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # Owner and name come from the URL's path: GitLab takes the whole
        # namespace, the others its last part.
        self.bare = os.path.join(self.tmp, "srv", "acme", "deploy.git")
        self.work = os.path.join(self.tmp, "work")
        git("init", "-q", "--bare", "-b", "main", self.bare)
        git("init", "-q", "-b", "main", self.work)
        path = self.bare.strip("/")[:-len(".git")]
        owner = (path.rsplit("/", 1)[0] if self.provider == "gitlab"
                 else "acme")
        self.api = GitHostAPI(self.provider, TOKEN, self.bare, owner,
                              "deploy", PREFIX[self.provider]).start()
        self.addCleanup(self.api.stop)

    commit = test_sync.SyncEndToEndTest.commit
    push_event = test_sync.SyncEndToEndTest.push_event

    def start(self, **kw):
        self.d = harness.Daemon(
            config(self.bare, self.sim.kubeconfig, self.provider,
                   self.api.url, **kw),
            secrets={"github.secret": SECRET, "api.token": TOKEN + "\n"})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def push(self, after):
        r = self.push_event(self.d, after)
        self.assertEqual(r.status, 202, r)

    def statuses(self, n, timeout=60):
        def got():
            with self.api.lock:
                return list(self.api.statuses) if \
                    len(self.api.statuses) >= n else None
        return harness.wait_until(got, timeout=timeout,
                                  what="%d commit statuses (log: %s)" % (
                                      n, self.d.log()[-3000:]))

    def sync_job(self, sha):
        jobs = self.d.api("/api/v1/jobs?kind=sync")["jobs"]
        return [j for j in jobs if j.get("revision") == sha or
                (j.get("result") or {}).get("revision") == sha][0]

    def assertNoToken(self):
        self.assertNotIn(TOKEN, self.d.log())
        for path in ("/api/v1/jobs", "/api/v1/jobs?kind=notify",
                     "/api/v1/apps", "/api/v1/events"):
            self.assertNotIn(TOKEN, json.dumps(self.d.api(path)), path)

    def assertAuthOnlyInHeader(self):
        with self.api.lock:
            reqs = list(self.api.requests)
        self.assertTrue(reqs)
        for q in reqs:
            self.assertTrue(self.api.auth_ok(q["headers"]), q["headers"])
            self.assertNotIn(TOKEN, q["path"])
            self.assertNotIn(TOKEN, json.dumps(q["body"]))



class ProviderTests:
    def test_success_and_failure(self):
        p = self.provider
        sha = self.commit("1.0.0")
        self.start()
        self.push(sha)
        st = self.statuses(2)
        job = self.sync_job(sha)
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual([s["state"] for s in st], [PENDING[p], SUCCESS[p]])
        for s in st:
            self.assertEqual(s["sha"], sha)
            self.assertEqual(s["context"], "gitopsd/demo")
            self.assertEqual(s["target_url"],
                             PUBLIC + "#/jobs/%d" % job["id"])
            self.assertTrue(s["description"])
        self.assertIn("healthy", st[1]["description"])

        bad = self.commit("2.0-never-ready")
        self.push(bad)
        st = self.statuses(4)
        self.assertEqual([(s["sha"], s["state"]) for s in st[2:]],
                         [(bad, PENDING[p]), (bad, FAILURE[p])])
        self.assertEqual(st[3]["context"], "gitopsd/demo")
        self.assertIn("sync failed", st[3]["description"])
        self.assertLessEqual(len(st[3]["description"]), 140)
        self.assertNoToken()
        self.assertAuthOnlyInHeader()


def provider_class(name):
    return type("CommitStatus_" + name, (CommitStatusBase, ProviderTests),
                {"provider": name, "__doc__": "commit statuses on %s" % name})


GitHub = provider_class("github")
GitLab = provider_class("gitlab")
Gitea = provider_class("gitea")
Bitbucket = provider_class("bitbucket")


class CommitStatusErrors(CommitStatusBase):
    provider = "github"

    def notify_jobs(self):
        return self.d.api("/api/v1/jobs?kind=notify")["jobs"]

    def test_refused_token_fails_with_host_message(self):
        sha = self.commit("1.0.0")
        self.start()
        self.push(sha)
        self.statuses(1)      # pending
        self.api.script = [self.api.error(401, "Bad credentials")]

        def refused():
            return [j for j in self.notify_jobs() if j["state"] == "dead"]
        dead = harness.wait_until(refused, what="a dead notify job")
        # Permanent: dead at the first of its 3 attempts.
        self.assertEqual([j["attempts"] for j in dead], [1], dead)
        text = json.dumps(dead)
        self.assertIn("the token was refused (HTTP 401)", text)
        self.assertIn("Bad credentials", text)
        self.assertEqual(len(self.api.statuses), 1)
        self.assertNoToken()

    def test_rate_limit_retry_after(self):
        sha = self.commit("1.0.0")
        self.start()
        self.api.script = [(429, {"Retry-After": "1"},
                            {"message": "API rate limit exceeded"})]
        self.push(sha)
        st = self.statuses(1)
        # The pending status was rate limited and is not retried (a late
        # pending would overwrite the result); the result is sent.
        self.assertEqual([s["state"] for s in st], ["success"])
        self.assertEqual(st[0]["sha"], sha)
        log = self.d.log()
        self.assertIn("rate limited (HTTP 429), retry in 1 s", log)

    def test_result_retried_after_retry_after(self):
        sha = self.commit("1.0.0")
        self.start()
        self.push(sha)
        self.statuses(1)      # pending
        self.api.script = [(429, {"Retry-After": "1"},
                            {"message": "API rate limit exceeded"})]
        st = self.statuses(2)
        self.assertEqual([s["state"] for s in st], ["pending", "success"])
        # The host has the status before gitopsd records the attempt.
        harness.wait_until(lambda: [
            j for j in self.notify_jobs() if j["state"] == "succeeded"
            and j["attempts"] == 2], 10, what="the retried result recorded")

    def test_chat_sinks_get_started_only_when_asked(self):
        """A webhook sink with on: [all] gets the result, not the start;
        with on: [started] it gets sync.started."""
        got = []
        lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n))
                with lock:
                    got.append((self.path, body["event"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        sha = self.commit("1.0.0")
        self.start(extra_notifiers=[
            {"name": "all", "type": "webhook", "url": url + "/all",
             "on": ["all"]},
            {"name": "started", "type": "webhook", "url": url + "/started",
             "on": ["started"]}],
            notify=["host", "all", "started"])
        self.push(sha)
        self.statuses(2)

        def both():
            with lock:
                paths = {p for p, _ in got}
                return list(got) if paths == {"/all", "/started"} else None
        harness.wait_until(both, what="webhook deliveries")
        time.sleep(0.5)
        with lock:
            self.assertEqual(sorted(got), [("/all", "job.succeeded"),
                                           ("/started", "sync.started")])


if __name__ == "__main__":
    unittest.main()
