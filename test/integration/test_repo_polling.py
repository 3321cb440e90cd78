"""Git repo polling: the safety net for push webhooks that never arrived.

The remote is a bare repository served by git http-backend behind lighttpd
(basic auth), whose access log shows what each poll asked for; commits are
pushed to it on disk, so they never appear there.  Two apps sync from it
into the Kubernetes simulator: a (apps/a) and b (apps/b), each a ConfigMap.

- A push without a webhook is deployed within the interval (2 s), and only
  the app whose path it touched is synced (the poll's diff filters paths).
- A poll that finds the head unchanged asks for info/refs only: no
  git-upload-pack request, no new job.
- A webhook for a head a poll handled queues nothing; a poll after a
  webhook handled a head queues nothing either.
- A push made while gitopsd was stopped is deployed within one interval of
  the start, still filtered by path.
- The poll shows in GET /api/v1/apps/<name> (repo_poll), in gitopsctl app
  and in gitopsd_polls_total{kind="repo"}.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
from fault_peers import GitHTTP, Kubesim, git

SECRET = "repo-poll-secret-0123456789"
PASSWORD = "s3cret-poll"
INTERVAL = 2

CONFIG = """
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 2, max_attempts: 2}
sources:
  - {name: github, type: github, secret_file: github.secret}
repos:
  - name: deploy
    url: "%(url)s"
    branch: main
    auth: {username: deployer, password_file: git.password}
    poll_interval_s: %(interval)d
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
  - {name: a, repo: deploy, path: apps/a, cluster: sim, namespace: default,
     sync: {timeout_s: 20}}
  - {name: b, repo: deploy, path: apps/b, cluster: sim, namespace: default,
     sync: {timeout_s: 20}}
"""

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {v: \"%s\"}\n"


class RepoPollingTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-repopoll-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        srv = os.path.join(self.tmp, "srv")
        os.makedirs(srv)
        self.bare = os.path.join(srv, "deploy.git")
        self.work = os.path.join(self.tmp, "work")
        git("init", "-q", "--bare", self.bare)
        git("init", "-q", self.work)
        self.write("apps/a/cm.yaml", CM % ("a", "1"))
        self.write("apps/b/cm.yaml", CM % ("b", "1"))
        self.head1 = self.commit("initial")
        self.http = GitHTTP(srv, "deployer", PASSWORD).start()
        self.addCleanup(self.http.stop)
        self.url = self.http.url("deploy.git")
        self.d = harness.Daemon(
            CONFIG % {"url": self.url, "interval": INTERVAL,
                      "kubeconfig": self.sim.kubeconfig},
            secrets={"github.secret": SECRET + "\n",
                     "git.password": PASSWORD + "\n"})
        self.addCleanup(self.d.cleanup)

    def write(self, rel, text):
        harness.write(os.path.join(self.work, rel), text, mode=0o644)

    def commit(self, msg):
        git("add", ".", cwd=self.work)
        git("commit", "-q", "-m", msg, cwd=self.work)
        git("push", "-q", self.bare, "HEAD:refs/heads/main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def cm(self, name):
        st, obj = self.sim.get("/api/v1/namespaces/default/configmaps/" +
                               name)
        return obj["data"]["v"] if st == 200 else None

    def syncs(self, app=None):
        q = "/api/v1/jobs?kind=sync&limit=100" + ("&app=" + app if app
                                                  else "")
        return self.d.api(q)["jobs"]

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return time.time()
            time.sleep(0.1)
        self.fail("%s: not within %.0f s\n%s" % (what, timeout,
                                               self.d.log()[-5000:]))

    def wait_synced(self, app, head, timeout):
        def done():
            return any(j["revision"] == head and j["state"] == "succeeded"
                       for j in self.syncs(app))
        return self.wait(done, timeout, "%s synced at %s" % (app, head))

    def polls(self, result):
        text = self.d.admin("GET", "/metrics").body.decode()
        key = 'gitopsd_polls_total{kind="repo",result="%s"} ' % result
        for line in text.splitlines():
            if line.startswith(key):
                return float(line.split()[-1])
        return 0.0

    def upload_packs(self):
        return [l for l in self.http.access_lines() if "git-upload-pack " in
                l.split("?")[0] + " " and l.startswith("POST")]

    def webhook(self, after, delivery):
        body = harness.github_push_body(self.url, after=after,
                                        paths=["apps/a/cm.yaml"])
        return self.d.post("/hooks/github", body,
                           harness.github_headers(SECRET, body, delivery))

    def test_push_without_webhook_is_deployed_and_filtered(self):
        self.d.start()
        # The first poll of a fresh store: a full change, both apps.
        self.wait_synced("a", self.head1, 30)
        self.wait_synced("b", self.head1, 30)
        self.assertEqual(self.cm("a"), "1")
        self.write("apps/a/cm.yaml", CM % ("a", "2"))
        head2 = self.commit("a to 2")
        t0 = time.time()
        self.wait(lambda: self.cm("a") == "2", INTERVAL + 15,
                  "a deployed at 2")
        # Within the interval plus the sync's own time.
        self.assertLess(time.time() - t0, INTERVAL + 10)
        self.wait_synced("a", head2, 20)
        self.assertEqual([j for j in self.syncs("b")
                          if j["revision"] == head2], [])
        ev = [e for e in self.d.api("/api/v1/events?limit=50")["events"]
              if e["source"] == "poll"]
        self.assertIn("poll:deploy:main@" + head2,
                      [e["delivery"] for e in ev])
        app = self.d.api("/api/v1/apps/a")
        self.assertEqual(app["repo_poll"]["interval_s"], INTERVAL)
        self.assertIn(app["repo_poll"]["result"], ("ok", "unchanged"))
        self.assertEqual(app["repo_poll"]["head"], head2)

        # Unchanged: only info/refs is asked for, nothing fetched.  (The
        # access log reaches the file up to four seconds late.)
        time.sleep(4.5)
        jobs_before = len(self.syncs())
        packs = len(self.upload_packs())
        refs = len([l for l in self.http.access_lines()
                    if "/info/refs?service=git-upload-pack" in l])
        unchanged = self.polls("unchanged")
        time.sleep(INTERVAL * 2 + 1)
        self.assertGreaterEqual(self.polls("unchanged"), unchanged + 1)
        time.sleep(4.5)
        self.assertEqual(len(self.upload_packs()), packs,
                         "%s\n%s" % (self.http.access_lines(),
                                      self.d.log()[-6000:]))
        self.assertGreater(len([l for l in self.http.access_lines()
                                if "/info/refs?service=git-upload-pack"
                                in l]), refs)
        self.assertEqual(len(self.syncs()), jobs_before)

        # A webhook for the head the poll handled adds nothing.
        r = self.webhook(head2, "late-delivery-1")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"already handled", r.body)
        self.assertEqual(len(self.syncs()), jobs_before)

        # gitopsctl app shows the repo's poll.
        ctl = os.path.join(os.path.dirname(harness.binary()), "gitopsctl")
        if os.access(ctl, os.X_OK):
            out = subprocess.run(
                [ctl, "--url", "http://127.0.0.1:%d" % self.d.admin_port,
                 "app", "a"], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertRegex(out.stdout, r"repo polled:\s+(ok|unchanged) ")

    def test_webhook_first_then_poll_adds_nothing(self):
        self.d.start()
        self.wait_synced("a", self.head1, 30)
        self.wait_synced("b", self.head1, 30)
        # Right after a poll, so that the webhook comes first.
        last = self.d.api("/api/v1/apps/a")["repo_poll"]["last"]
        self.wait(lambda: self.d.api("/api/v1/apps/a")["repo_poll"]["last"]
                  != last, INTERVAL + 5, "a poll")
        self.write("apps/a/cm.yaml", CM % ("a", "3"))
        head3 = self.commit("a to 3")
        r = self.webhook(head3, "push-3")
        self.assertEqual(r.status, 202, r)
        self.wait_synced("a", head3, 20)
        time.sleep(INTERVAL * 2 + 1)
        self.assertEqual(len([j for j in self.syncs("a")
                              if j["revision"] == head3]), 1)
        ev = [e["delivery"] for e in
              self.d.api("/api/v1/events?limit=50")["events"]]
        self.assertNotIn("poll:deploy:main@" + head3, ev)

    def test_push_while_stopped_is_deployed_within_one_interval(self):
        self.d.start()
        self.wait_synced("a", self.head1, 30)
        self.wait_synced("b", self.head1, 30)
        self.assertEqual(self.d.stop(), 0)
        self.write("apps/b/cm.yaml", CM % ("b", "4"))
        head4 = self.commit("b to 4")
        t0 = time.time()
        self.d.start()
        self.wait(lambda: self.cm("b") == "4", INTERVAL + 15,
                  "b deployed at 4")
        self.assertLess(time.time() - t0, INTERVAL + 10)
        self.wait_synced("b", head4, 20)
        # The last handled head came from the store: only b changed.
        self.assertEqual([j for j in self.syncs("a")
                          if j["revision"] == head4], [])


if __name__ == "__main__":
    unittest.main()
