"""The whole chain end to end, with every peer real except the cluster:

  skopeo pushes an image to Debian's docker-registry
  -> the registry notifies gitopsd (/hooks/registry, bearer token)
  -> gitopsd verifies the tag with the registry, edits the manifest and
     commits + pushes to a bare repository served over smart HTTP
     (git http-backend behind lighttpd, basic auth)
  -> the test plays GitHub: it reads the new head of the bare repository
     and sends a signed push event for it (the update-image job also
     queues a sync itself: both paths end in one applied revision)
  -> the app is applied to the Kubernetes API simulator and is healthy
  -> `gitopsctl app web` shows the new tag and revision.
Then a tag whose rollout never completes makes the app unhealthy: exactly
one Slack message (HTTP sink checking the Block Kit shape) and one email
(aiosmtpd) arrive; a good tag after it brings exactly one recovery alert.

The time from the registry push to the app being healthy is printed
(`e2e: registry push to healthy: N.NNs`)."""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

import harness
import registry_peer
from e2e_peers import git, github_push, make_bare_repo
from fault_peers import GitHTTP, Kubesim
from notify_receivers import Receiver

TOKEN = "e2e-registry-token-0123456789abcdef"
GITHUB_SECRET = "e2e-github-secret"
GIT_PASSWORD = "e2e-git-password"

DEPLOYMENT = """# web: the image tag below is managed by gitopsd
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
          image: %s/acme/web:1.0.0   # keep this comment
"""

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 2, max_attempts: 3}
notify: {repeat_after_s: 3600, timeout_s: 5}
sources:
  - {name: registry, type: registry, token_file: registry.token}
  - {name: github, type: github, secret_file: github.secret}
registries:
  - {host: "%(reg)s", insecure: true}
repos:
  - name: deploy
    url: "%(git_url)s"
    poll_interval_s: 0
    branch: main
    auth: {username: deployer, password_file: git.password}
    author: {name: gitopsd-bot, email: bot@acme.test}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
  - name: web
    repo: deploy
    path: apps/web
    cluster: sim
    namespace: web
    images:
      - repository: "%(reg)s/acme/web"
        policy: {semver: ">=1.0.0", prerelease: true}
    sync: {auto: true, prune: true, timeout_s: 20}
    notify: [ops-slack, oncall-mail]
notifiers:
  - {name: ops-slack, type: slack, url_file: slack.url, on: [failure, recovery]}
  - name: oncall-mail
    type: email
    smtp_url: "smtp://127.0.0.1:%(smtp)d"
    from: "gitopsd <gitopsd@acme.test>"
    to: [oncall@acme.test]
    on: [failure]
"""


class EndToEndTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.port, self.admin_port = harness.free_port(), harness.free_port()
        self.sim = Kubesim(ready_delay=0.2)
        self.addCleanup(self.sim.stop)
        self.reg = registry_peer.DistributionRegistry(endpoint={
            "url": "http://127.0.0.1:%d/hooks/registry" % self.port,
            "headers": {"Authorization": "Bearer " + TOKEN}})
        self.addCleanup(self.reg.stop)
        gitroot = os.path.join(self.tmp, "srv")
        os.makedirs(gitroot)
        self.bare = make_bare_repo(gitroot, "deploy.git", {
            "apps/web/namespace.yaml": NAMESPACE,
            "apps/web/deployment.yaml": DEPLOYMENT % self.reg.host,
            "README.md": "deploy\n"})
        self.git_http = GitHTTP(gitroot, "deployer", GIT_PASSWORD).start()
        self.addCleanup(self.git_http.stop)
        self.clone_url = self.git_http.url("deploy.git")
        self.slack = Receiver("http").start()
        self.addCleanup(self.slack.close)
        self.smtp = Receiver("smtp").start()
        self.addCleanup(self.smtp.close)
        self.d = harness.Daemon(CONFIG % {
            "reg": self.reg.host, "git_url": self.clone_url,
            "kubeconfig": self.sim.kubeconfig, "smtp": self.smtp.port},
            secrets={"registry.token": TOKEN + "\n",
                     "github.secret": GITHUB_SECRET,
                     "git.password": GIT_PASSWORD + "\n",
                     "slack.url": "http://127.0.0.1:%d/slack/T0/B0\n"
                                  % self.slack.port},
            ports=(self.port, self.admin_port))
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.reg.start()
        self.layout = os.path.join(self.tmp, "layout")
        self.digests = registry_peer.build_oci_layout(
            self.layout, ["1.1.0", "1.2.0-never-ready", "1.2.0"])

    # -- helpers ----------------------------------------------------------

    def head(self):
        return git("rev-parse", "main", cwd=self.bare)

    def app(self):
        return self.d.api("/api/v1/apps/web")

    def jobs(self, kind):
        return self.d.api("/api/v1/jobs?app=web&kind=%s&limit=100"
                          % kind)["jobs"]

    def deployment(self):
        st, dep = self.sim.get("/apis/apps/v1/namespaces/web/deployments/web")
        return dep if st == 200 else None

    def wait(self, what, pred, timeout=40):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        self.fail("%s never happened\napp: %r\njobs: %r\nregistry log:\n%s\n"
                  "gitopsd log:\n%s" % (what, self.app(),
                                        self.jobs("update-image") +
                                        self.jobs("sync"),
                                        self.reg.read_log(2000),
                                        self.d.log()[-6000:]))

    def push_image(self, tag):
        """skopeo push; the registry notifies gitopsd.  Waits for the commit
        the update-image job makes and returns it."""
        before = self.head()
        registry_peer.skopeo_push(self.layout, tag,
                                  "%s/acme/web:%s" % (self.reg.host, tag))
        self.wait("the commit of %s" % tag, lambda: self.head() != before)
        commit = self.head()
        self.assertEqual(git("rev-parse", "main~1", cwd=self.bare), before)
        self.assertEqual(git("diff", "--name-only", "main~1", "main",
                             cwd=self.bare), "apps/web/deployment.yaml")
        text = git("show", "main:apps/web/deployment.yaml", cwd=self.bare)
        self.assertIn("image: %s/acme/web:%s   # keep this comment"
                      % (self.reg.host, tag), text)
        return before, commit

    def play_github(self, before, commit):
        """GitHub's push event for the commit gitopsd pushed."""
        changed = git("diff", "--name-only", before, commit,
                      cwd=self.bare).split("\n")
        r = github_push(self.d, GITHUB_SECRET, self.clone_url, commit,
                        before=before, modified=changed)
        self.assertEqual(r.status, 202, r)
        return r.json()

    def wait_final_syncs(self, commit):
        """Every sync job of the app has ended, and one names commit."""
        def done():
            js = self.jobs("sync")
            if not any(j.get("revision") == commit for j in js):
                return None
            if any(j["state"] in ("queued", "running", "waiting", "failed")
                   for j in js):
                return None
            return js
        return self.wait("the syncs of %s" % commit[:12], done)

    def gitopsctl_app(self):
        p = harness.run_tool([harness.binary("gitopsctl"), "--url",
                              "http://127.0.0.1:%d" % self.admin_port, "app",
                              "web"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def image(self):
        dep = self.deployment()
        return dep["spec"]["template"]["spec"]["containers"][0]["image"]

    # -- the chain --------------------------------------------------------

    def test_registry_push_to_healthy_then_alert_and_recovery(self):
        # 1. A good tag, all the way to a healthy app.
        t0 = time.monotonic()
        before, commit = self.push_image("1.1.0")
        t_commit = time.monotonic()
        self.play_github(before, commit)
        self.wait("web healthy at the new commit", lambda: (
            self.app().get("revision") == commit and
            self.app().get("health") == "Healthy"))
        t_healthy = time.monotonic()
        sys.stderr.write("\ne2e: registry push to healthy: %.2fs (push to "
                         "commit %.2fs)\n" % (t_healthy - t0, t_commit - t0))

        ups = self.jobs("update-image")
        self.assertEqual(len(ups), 1, ups)
        self.assertEqual(ups[0]["state"], "succeeded", ups[0])
        self.assertEqual(ups[0]["tag"], "1.1.0")
        self.assertEqual(ups[0]["result"]["commit"], commit)
        # The tag was verified with the registry: the job carries the
        # digest the registry names, the one skopeo pushed.
        self.assertEqual(ups[0]["digest"], self.digests["1.1.0"])
        # ... and gitopsd asked the registry for that manifest itself.
        asked = [l for l in self.reg.read_log(tail=None).split("\n")
                 if "useragent=gitopsd/" in l and
                 "uri=/v2/acme/web/manifests/1.1.0 " in l and
                 "response.status=200" in l]
        self.assertTrue(asked, self.reg.read_log())
        # Both paths (the follow-up sync, GitHub's push) end in syncs of
        # this one commit, all succeeded; the cluster saw one new
        # generation of the Deployment.
        syncs = self.wait_final_syncs(commit)
        self.assertTrue(all(j["state"] == "succeeded" for j in syncs), syncs)
        self.assertEqual({j["revision"] for j in syncs}, {commit}, syncs)
        dep = self.deployment()
        self.assertEqual(self.image(), "%s/acme/web:1.1.0" % self.reg.host)
        self.assertEqual(dep["metadata"]["generation"], 1, dep["metadata"])
        self.assertEqual(dep["status"]["availableReplicas"], 2)

        out = self.gitopsctl_app()
        self.assertRegex(out, r"(?m)^revision:\s+%s$" % commit)
        self.assertRegex(out, r"(?m)^health:\s+Healthy$")
        self.assertRegex(out, r"(?m)^\s+%s/acme/web\s+1\.1\.0\s"
                         % self.reg.host.replace(".", r"\."))
        # No alert so far.
        self.assertEqual(self.slack.records(), [])
        self.assertEqual(self.smtp.records(), [])

        # 2. A tag whose rollout never completes: unhealthy, one alert per
        # notifier.
        before, bad = self.push_image("1.2.0-never-ready")
        self.play_github(before, bad)
        self.wait("web unhealthy at %s" % bad[:12], lambda: (
            self.app().get("revision") == bad and
            self.app().get("health") not in (None, "Healthy", "Progressing")))
        syncs = [j for j in self.wait_final_syncs(bad)
                 if j["revision"] == bad]
        self.assertTrue(all(j["state"] == "dead" for j in syncs), syncs)
        self.assertIn("ProgressDeadlineExceeded", json.dumps(syncs))
        self.assertEqual(self.deployment()["metadata"]["generation"], 2)
        out = self.gitopsctl_app()
        self.assertRegex(out, r"(?m)^revision:\s+%s$" % bad)
        self.assertRegex(out, r"(?m)^health:\s+Degraded$")
        self.assertIn("ProgressDeadlineExceeded", out)
        slack = self.slack.wait_records(1)
        mails = self.smtp.wait_records(1)
        self.assertEqual(len(slack), 1, slack)
        self.assertTrue(slack[0]["slack_ok"], slack[0].get("slack_error"))
        self.assertEqual(slack[0]["path"], "/slack/T0/B0")
        self.assertIn(bad, slack[0]["body"])
        self.assertIn("ProgressDeadlineExceeded", slack[0]["body"])
        self.assertEqual(len(mails), 1, mails)
        self.assertEqual(mails[0]["rcpt_tos"], ["oncall@acme.test"])
        self.assertEqual(mails[0]["defects"], [])
        self.assertIn("web", mails[0]["subject"])

        # 3. A good tag: healthy again, one recovery alert.
        before, good = self.push_image("1.2.0")
        self.play_github(before, good)
        self.wait("web healthy at %s" % good[:12], lambda: (
            self.app().get("revision") == good and
            self.app().get("health") == "Healthy"))
        syncs = [j for j in self.wait_final_syncs(good)
                 if j["revision"] == good]
        self.assertTrue(all(j["state"] == "succeeded" for j in syncs), syncs)
        self.assertEqual(self.image(), "%s/acme/web:1.2.0" % self.reg.host)
        self.assertEqual(self.deployment()["metadata"]["generation"], 3)
        slack = self.slack.wait_records(2)
        self.assertEqual(len(slack), 2, slack)
        self.assertTrue(slack[1]["slack_ok"], slack[1].get("slack_error"))
        self.assertIn("recovered", slack[1]["body"])
        # Nothing more arrives: one failure alert per notifier, one
        # recovery alert.
        time.sleep(2)
        self.assertEqual(len(self.slack.records()), 2)
        self.assertEqual(len(self.smtp.records()), 1)
        notes = self.jobs("notify")
        self.assertEqual(len(notes), 3, notes)
        self.assertTrue(all(j["state"] == "succeeded" for j in notes), notes)
        out = self.gitopsctl_app()
        self.assertRegex(out, r"(?m)^revision:\s+%s$" % good)
        self.assertRegex(out, r"(?m)^health:\s+Healthy$")
        self.assertRegex(out, r"(?m)^last error:\s+-$")

    def test_event_for_a_tag_the_registry_lacks_changes_nothing(self):
        """verify_tag: a (token-authenticated) event naming a tag that was
        never pushed fails the job with a registry error; no commit."""
        with open(os.path.join(harness.ROOT, "test", "fixtures", "registry",
                               "distribution-push-manifest.json")) as f:
            body = json.load(f)
        ev = body["events"][0]
        ev["id"] = "0badc0de-1111-2222-3333-444444444444"
        ev["target"].update(repository="acme/web", tag="9.9.9", url=(
            "http://%s/v2/acme/web/manifests/9.9.9" % self.reg.host))
        ev["request"]["host"] = self.reg.host
        before = self.head()
        r = self.d.post("/hooks/registry", json.dumps(body).encode(), {
            "Content-Type": "application/vnd.docker.distribution.events."
                            "v1+json", "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)
        job = self.wait("the update-image job's first attempt", lambda: [
            j for j in self.jobs("update-image") if j["attempts"] >= 1 and
            j["state"] in ("failed", "dead")])[0]
        self.assertEqual(job["tag"], "9.9.9")
        self.assertEqual(job["result"]["error_kind"], "registry", job)
        self.assertIn("acme/web:9.9.9: no such tag", job["error"])
        self.assertEqual(self.head(), before)
        self.assertEqual(self.jobs("sync"), [])


if __name__ == "__main__":
    unittest.main()
