"""Secrets never leave gitopsd: a real gitopsd runs a representative set of
flows with every kind of secret configured, then every log line, every
admin API answer, the metrics, every answer to a sender, every alert the
receivers got, the commits gitopsd pushed and every file it wrote (state
database, bare clones) are searched for each secret value (and the encodings a secret travels in: HTTP Basic and SMTP AUTH
PLAIN credentials).  None may be found.

Flows: a valid request from each sender type (github, gitlab, gitea,
bitbucket, generic-hmac, registry, dockerhub, harbor, quay: HMAC secrets,
header tokens, tokens in the URL path) and one with a wrong secret each; a
registry event that becomes an update-image job pushing over HTTP with a
password (git http-backend behind lighttpd, basic auth); another pushing
with a password the server refuses; a sync to the Kubernetes API simulator
with the kubeconfig's bearer token; failure alerts to Slack (token in the
URL), a signed webhook (token in the URL, HMAC secret) and SMTP with
STARTTLS and a login; the admin API with a bearer token (and a wrong one).

The detector is checked too: the secret values are long random strings,
each is found in the file the test wrote it to, and a planted copy in the
scanned text is reported, so a leak would fail the test."""
import base64
import json
import os
import secrets as pysecrets
import shutil
import tempfile
import time
import unittest
import uuid

import harness
import hook_cases
from fault_peers import (CT_V1, GitHTTP, Kubesim, all_pages, git, make_repo,
                         registry_push, wait_for)
from notify_receivers import Receiver, make_cert

REGISTRY = "registry.test:5000"

CASES = {
    "github": "github/push-branch.case",
    "gitlab": "gitlab/push.case",
    "gitea": "gitea/push-json.case",
    "bitbucket": "bitbucket/cloud-push.case",
    "generic-hmac": "generic/push.case",
    "registry": "registry/basic-auth.case",
    "dockerhub": "dockerhub/official.case",
    "harbor": "harbor/push.case",
    "quay": "quay/push.case",
}

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}", token_file: admin.token}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 1, max_attempts: 1}
notify: {max_attempts: 5, timeout_s: 5}
sources:
%(sources)s
repos:
  - name: deploy
    url: "%(git)s/deploy.git"
    poll_interval_s: 0
    branch: main
    auth: {username: deployer, password_file: git.password}
  - name: locked
    url: "%(git)s/locked.git"
    poll_interval_s: 0
    branch: main
    auth: {username: deployer, password_file: locked.password}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
  - name: web
    repo: deploy
    path: apps/web
    notify: [ops-slack, audit, mail]
    images:
      - {repository: "%(reg)s/acme/web", policy: {semver: ">=1.0.0"}}
  - name: demo
    repo: deploy
    path: apps/demo
    cluster: sim
    namespace: demo
    notify: [audit]
    sync: {timeout_s: 30}
  - name: vault
    repo: locked
    path: apps/vault
    notify: [ops-slack, audit, mail]
    images:
      - {repository: "%(reg)s/acme/vault", policy: {semver: ">=1.0.0"}}
notifiers:
  - {name: ops-slack, type: slack, url_file: slack.url}
  - {name: audit, type: webhook, url_file: hook.url, secret_file: hook.secret, on: [all]}
  - name: mail
    type: email
    smtp_url: "smtp://127.0.0.1:%(smtp)d"
    from: "gitopsd <gitopsd@example.test>"
    to: [oncall@example.test]
    require_tls: true
    ca_file: "%(cert)s"
    username: alerts
    password_file: smtp.password
"""

WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - {name: web, image: "%s/acme/web:1.0.0"}
""" % REGISTRY

DEMO_NS = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n"
DEMO_CM = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
           "data:\n  mode: blue\n")
VAULT = WEB.replace("acme/web", "acme/vault").replace("name: web",
                                                      "name: vault")


def secret(prefix):
    """A value that cannot occur by chance: prefix + 32 random hex."""
    return "%s-%s" % (prefix, pysecrets.token_hex(16))


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Detector:
    """Finds any of the needles (name -> list of forms) in texts."""

    def __init__(self, needles):
        self.needles = needles

    def scan(self, where, text):
        hits = []
        for name, forms in self.needles.items():
            for form in forms:
                if form in text:
                    hits.append("%s: %s (as %r...)" % (where, name,
                                                       form[:12]))
        return hits


@unittest.skipUnless(os.path.exists(os.path.join(harness.ROOT, harness.BUILD,
                                                 "gitopsd")),
                     "gitopsd not built")
class SecretsHygieneTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-hygiene-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.s = {t: secret("src-" + t.replace("-", "")) for t in CASES}
        self.s.update({
            "git.password": secret("git-pw"),
            "locked.password": secret("locked-pw"),
            "kube.token": secret("kube-token"),
            "slack.token": secret("slack-token"),
            "hook.urltoken": secret("hook-urltoken"),
            "hook.secret": secret("hook-hmac"),
            "smtp.password": secret("smtp-pw"),
            "admin.token": secret("admin-token"),
        })
        # The server accepts only its own password for "locked".
        self.srv = os.path.join(self.tmp, "srv")
        os.makedirs(self.srv)
        self.deploy = make_repo(self.srv, "deploy", {
            "apps/web/deployment.yaml": WEB,
            "apps/demo/ns.yaml": DEMO_NS,
            "apps/demo/settings.yaml": DEMO_CM})
        self.locked = make_repo(self.srv, "locked", {
            "apps/vault/deployment.yaml": VAULT})
        for bare in (self.deploy, self.locked):
            git("config", "http.receivepack", "true", cwd=bare)
        self.http_git = GitHTTP(self.srv, "deployer",
                                self.s["git.password"]).start()
        self.addCleanup(self.http_git.stop)
        self.sim = Kubesim(token=self.s["kube.token"])
        self.addCleanup(self.sim.stop)
        cert, key = make_cert(self.tmp)
        self.sink = Receiver("http", secret=self.s["hook.secret"],
                             script="500").start()
        self.addCleanup(self.sink.close)
        self.smtp = Receiver("smtp", cert=cert, key=key,
                             require_starttls=True,
                             login="alerts:" + self.s["smtp.password"]).start()
        self.addCleanup(self.smtp.close)

        sources, files = [], {}
        for t in CASES:
            name = "ci" if t == "generic-hmac" else t
            extra = ", verify_tag: false" if t == "registry" else ""
            sources.append("  - {name: %s, type: %s, secret_file: %s.secret%s}"
                           % (name, t, name, extra))
            files[name + ".secret"] = self.s[t] + "\n"
        files.update({
            "git.password": self.s["git.password"] + "\n",
            "locked.password": self.s["locked.password"] + "\n",
            "slack.url": "http://127.0.0.1:%d/slack/T0/B0/%s\n" % (
                self.sink.port, self.s["slack.token"]),
            "hook.url": "http://127.0.0.1:%d/hook?token=%s\n" % (
                self.sink.port, self.s["hook.urltoken"]),
            "hook.secret": self.s["hook.secret"] + "\n",
            "smtp.password": self.s["smtp.password"] + "\n",
            "admin.token": self.s["admin.token"] + "\n",
        })
        self.files = files
        self.d = harness.Daemon(CONFIG % {
            "sources": "\n".join(sources),
            "git": "http://127.0.0.1:%d/git" % self.http_git.port,
            "kubeconfig": self.sim.kubeconfig, "reg": REGISTRY,
            "smtp": self.smtp.port, "cert": cert}, secrets=files)
        self.addCleanup(self.d.cleanup)
        # Every form a secret could leak in.
        needles = {k: [v] for k, v in self.s.items()}
        needles["git.password"].append(b64("deployer:" +
                                           self.s["git.password"]))
        needles["locked.password"].append(b64("deployer:" +
                                              self.s["locked.password"]))
        needles["smtp.password"] += [
            b64("\0alerts\0" + self.s["smtp.password"]),
            b64(self.s["smtp.password"])]
        needles["registry"].append(b64("registry:" + self.s["registry"]))
        self.detector = Detector(needles)
        self.texts = []         # (where, text) to scan

    def keep(self, where, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts.append((where, text))

    def api(self, path):
        r = self.d.admin("GET", path, headers={
            "Authorization": "Bearer " + self.s["admin.token"]})
        self.keep("GET " + path, json.dumps(dict(r.headers)) + "\n" +
                  r.body.decode("utf-8", "replace"))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def jobs(self, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        return self.api("/api/v1/jobs?limit=100" + ("&" + qs if qs else ""))[
            "jobs"]

    def final(self, job_id, timeout=60):
        return wait_for("job %d final" % job_id, lambda: (
            lambda j: j if j["state"] in ("succeeded", "dead") else None)(
                self.api("/api/v1/jobs/%d" % job_id)), timeout=timeout)

    def send(self, req, secret_override=None):
        if secret_override is not None:
            req = hook_cases.load(CASES[req.source_type], secret_override)
        r = self.d.post(req.path, req.body, dict(req.headers))
        self.keep("answer to " + req.source_type,
                  json.dumps(dict(r.headers)) + "\n" +
                  r.body.decode("utf-8", "replace"))
        return r

    def run_flows(self):
        d = self.d
        d.start()
        # Each sender: good secret accepted, wrong secret refused.
        for t, rel in CASES.items():
            req = hook_cases.load(rel, self.s[t])
            r = self.send(req)
            self.assertIn(r.status, (200, 202), (t, r))
            wrong = "wrong-" + pysecrets.token_hex(16)
            r = self.send(req, secret_override=wrong)
            self.assertIn(r.status, (401, 403, 404), (t, r))

        # A registry event: update-image pushes over HTTP with a password.
        body = registry_push(REGISTRY, "acme/web", "1.1.0", str(uuid.uuid4()))
        r = d.post("/hooks/registry", body, {
            "Content-Type": CT_V1,
            "Authorization": "Bearer " + self.s["registry"]})
        self.keep("answer to registry event", r.body)
        self.assertEqual(r.status, 202, r)
        web_job = self.final(r.json()["jobs"][0])
        self.assertEqual(web_job["state"], "succeeded", web_job)
        self.assertTrue(web_job["result"].get("commit"), web_job)
        # The same against the repository whose password is refused.
        body = registry_push(REGISTRY, "acme/vault", "1.1.0",
                             str(uuid.uuid4()))
        r = d.post("/hooks/registry", body, {
            "Content-Type": CT_V1,
            "Authorization": "Bearer " + self.s["registry"]})
        self.keep("answer to registry event 2", r.body)
        self.assertEqual(r.status, 202, r)
        vault_job = self.final(r.json()["jobs"][0])
        self.assertEqual(vault_job["state"], "dead", vault_job)
        self.assertEqual(vault_job["result"]["error_kind"], "git-auth")

        # A push: sync of demo over HTTP (password) to the cluster (token).
        head = git("rev-parse", "main", cwd=self.deploy)
        gh = harness.github_push_body(
            "http://127.0.0.1:%d/git/deploy.git" % self.http_git.port,
            after=head, paths=["apps/demo/settings.yaml"])
        r = d.post("/hooks/github", gh, harness.github_headers(
            self.s["github"], gh, str(uuid.uuid4())))
        self.keep("answer to github push", r.body)
        self.assertEqual(r.status, 202, r)
        demo = [j for j in r.json()["jobs"]
                if self.api("/api/v1/jobs/%d" % j)["app"] == "demo"]
        self.assertEqual(len(demo), 1, r)
        sync = self.final(demo[0])
        self.assertEqual(sync["state"], "succeeded", sync)
        st, cm = self.sim.call("GET",
                               "/api/v1/namespaces/demo/configmaps/settings")
        self.assertEqual((st, cm["data"]), (200, {"mode": "blue"}))

        # Alerts: vault's push was refused (dead); the receiver answers
        # 500 once, then 200.  web has no cluster: it is updated in Git
        # only, and no sync of it fails.
        self.assertEqual([j for j in self.jobs(kind="sync")
                          if j["app"] == "web"], [])
        wait_for("alerts delivered", lambda: self.jobs(kind="notify") and all(
            j["state"] in ("succeeded", "dead")
            for j in self.jobs(kind="notify")) and
            len(self.smtp.records()) >= 1, timeout=60)
        recs = self.sink.records()
        # The first alert got a 500 (its error is in a job's attempts).
        self.assertEqual(recs[0]["status"], 500, recs)
        self.assertTrue([r for r in recs if r["path"].startswith("/slack/")
                         and r["status"] == 200], recs)
        self.assertTrue([r for r in recs if r["path"].startswith("/hook")
                         and r.get("signature_ok")], recs)
        self.assertTrue(all(m["tls"] and m["auth"]
                            for m in self.smtp.records()))

        # The admin API refuses a wrong token.
        r = d.admin("GET", "/api/v1/jobs",
                    headers={"Authorization": "Bearer wrong-token"})
        self.keep("admin 401", r.body)
        self.assertEqual(r.status, 401, r)

    def collect(self):
        d = self.d
        apps = self.api("/api/v1/apps")
        for app in apps["apps"] if isinstance(apps, dict) else apps:
            self.api("/api/v1/apps/" + app["name"])
        for j in all_pages(d, "/api/v1/jobs", "jobs",
                           token=self.s["admin.token"]):
            self.api("/api/v1/jobs/%d" % j["id"])
        self.keep("events", json.dumps(all_pages(
            d, "/api/v1/events", "events", token=self.s["admin.token"])))
        self.keep("metrics", d.admin("GET", "/metrics").body)
        self.keep("commits", git("log", "--format=%H%n%an %ae%n%B", "--all",
                                 cwd=self.deploy))
        for r in self.sink.records():
            # The URL is where Slack's and the webhook's tokens belong;
            # headers and body are what gitopsd wrote.
            self.keep("alert %s %s" % (r["path"].split("/")[1][:5],
                                       r.get("status")),
                      json.dumps(r["headers"]) + "\n" + r["body"])
        for m in self.smtp.records():
            self.keep("mail", json.dumps(m))
        # Last: the log, once everything (including shutdown) was logged.
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.keep("log", d.log())
        # Every file gitopsd wrote: the state database (events, jobs,
        # results), its bare clones (remote URLs in their config), the log.
        nfiles = 0
        for root, _, names in os.walk(d.tmp):
            for name in names:
                path = os.path.join(root, name)
                if root == d.tmp and name in self.files:
                    continue        # the secret files the test wrote
                with open(path, "rb") as f:
                    self.keep("file " + os.path.relpath(path, d.tmp),
                              f.read().decode("latin-1"))
                nfiles += 1
        self.assertTrue(os.path.exists(os.path.join(d.tmp, "state.db")))
        self.assertTrue(os.path.exists(os.path.join(d.tmp, "repos",
                                                    "deploy.git", "config")))
        self.assertGreater(nfiles, 20)

    def test_no_secret_in_any_output(self):
        self.run_flows()
        self.collect()
        # The detector works: every value is long and random, is in the
        # file it was written to, and a planted copy is found.
        for name, value in self.s.items():
            self.assertGreaterEqual(len(value), 32, name)
        for fname, content in self.files.items():
            self.assertTrue(self.detector.scan(fname, content), fname)
        log = [t for w, t in self.texts if w == "log"][0]
        self.assertGreater(len(log.splitlines()), 50)
        planted = log + "\nplanted " + self.s["hook.secret"] + "\n"
        self.assertEqual(len(self.detector.scan("planted", planted)), 1)
        hits = []
        for where, text in self.texts:
            hits += self.detector.scan(where, text)
        self.assertEqual(hits, [])
        print("\nsecrets hygiene: %d secrets, %d outputs (%d bytes) clean"
              % (len(self.s), len(self.texts),
                 sum(len(t) for _, t in self.texts)))


class SecretFileModeTest(unittest.TestCase):
    """A secret file other users can read is named, with its mode, by
    `gitopsd -t` and in the log at start; a 0600 one is not."""

    def test_readable_secret_warned_at_check_and_start(self):
        d = harness.Daemon("""
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}", token_file: admin.token}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: github, type: github, secret_file: github.secret}
""", secrets={"github.secret": "s3cret", "admin.token": "t0ken"})
        self.addCleanup(d.cleanup)
        loose = os.path.join(d.tmp, "github.secret")
        os.chmod(loose, 0o604)
        want = ("sources[0].secret_file: secret file %s has mode 0604: "
                "readable by others" % loose)
        p = harness.run_tool([harness.binary(), "-t", "-c", d.config_path],
                             cwd=d.tmp, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(want, p.stdout + p.stderr)
        self.assertNotIn("admin.token", p.stdout + p.stderr)
        d.start()
        self.assertIn(want, d.log())
        self.assertNotIn("admin.token_file: secret file", d.log())


if __name__ == "__main__":
    unittest.main()
