"""Container registries end to end, with Debian's real docker-registry.

RegistryClientTest: registry_verify_tag() (through
build-san/support/registry_verify_tool) against the real registry, both
anonymous and in token-auth mode with a token issuer on loopback.

RegistryE2ETest: skopeo pushes a hand-built OCI image to the registry, the
registry notifies gitopsd (/hooks/registry with an Authorization header),
and gitopsd records exactly one update-image job for the app whose image
and policy match, and none for the others (GET /api/v1/jobs).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import registry_peer
import registry_token

ROOT = harness.ROOT
FIXTURES = os.path.join(ROOT, "test", "fixtures", "registry")
TOKEN = "registry-notify-token-0123456789abcdef"
CT_V1 = "application/vnd.docker.distribution.events.v1+json"


def verify_tool(args):
    path = harness.binary(os.path.join("support", "registry_verify_tool"))
    r = harness.run_tool([path] + args, capture_output=True, text=True,
                         timeout=60)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


class RegistryClientTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="gitopsd-regclient-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.layout = os.path.join(self.work, "layout")
        self.digests = registry_peer.build_oci_layout(self.layout,
                                                      ["1.2.3", "v2.0.0"])

    def test_anonymous(self):
        reg = registry_peer.DistributionRegistry().start()
        self.addCleanup(reg.stop)
        registry_peer.skopeo_push(self.layout, "1.2.3",
                                  reg.host + "/acme/web:1.2.3")
        # insecure: true -> plain http
        rc, out, err = verify_tool(["-k", reg.host, "acme/web", "1.2.3"])
        self.assertEqual((rc, out), (0, self.digests["1.2.3"]), err)
        # loopback without insecure: https fails to connect, http works
        rc, out, err = verify_tool([reg.host, "acme/web", "1.2.3"])
        self.assertEqual((rc, out), (0, self.digests["1.2.3"]), err)
        rc, out, err = verify_tool(["-k", reg.host, "acme/web", "v2.0.0"])
        self.assertEqual(rc, 1, err)
        self.assertIn("no such tag", err)
        rc, out, err = verify_tool(["-k", reg.host, "acme/nothing", "1.2.3"])
        self.assertEqual(rc, 1, err)
        # A name that is not a valid reference never reaches the network.
        rc, out, err = verify_tool(["-k", reg.host, "Acme/Web", "1.2.3"])
        self.assertEqual(rc, 2)

    def test_token_auth(self):
        issuer = registry_token.TokenIssuer(self.work, "ci", "pw-0123").start()
        self.addCleanup(issuer.stop)
        reg = registry_peer.DistributionRegistry(
            auth_token=issuer.registry_auth()).start()
        self.addCleanup(reg.stop)
        registry_peer.skopeo_push(self.layout, "v2.0.0",
                                  reg.host + "/team/app:v2.0.0",
                                  token=issuer.push_token("team/app"))
        good = os.path.join(self.work, "good")
        bad = os.path.join(self.work, "bad")
        harness.write(good, "pw-0123\n")
        harness.write(bad, "wrong\n")
        rc, out, err = verify_tool(["-k", "-u", "ci", "-p", good, reg.host,
                                    "team/app", "v2.0.0"])
        self.assertEqual((rc, out), (0, self.digests["v2.0.0"]), err)
        last = issuer.requests[-1]
        self.assertEqual(last["query"]["scope"], ["repository:team/app:pull"])
        self.assertEqual(last["query"]["service"], [registry_token.SERVICE])
        self.assertTrue(last["authorization"].startswith("Basic "))
        rc, out, err = verify_tool(["-k", "-u", "ci", "-p", good, reg.host,
                                    "team/app", "9.9.9"])
        self.assertEqual(rc, 1, err)
        rc, out, err = verify_tool(["-k", reg.host, "team/app", "v2.0.0"])
        self.assertEqual(rc, 2)
        self.assertIn("credentials needed", err)
        rc, out, err = verify_tool(["-k", "-u", "ci", "-p", bad, reg.host,
                                    "team/app", "v2.0.0"])
        self.assertEqual(rc, 2)
        self.assertIn("wrong credentials", err)
        self.assertNotIn("wrong\n", err)
        self.assertNotIn("pw-0123", err)


def git(*args, cwd=None):
    subprocess.run(["git"] + list(args), cwd=cwd, check=True,
                   capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t",
                            GIT_AUTHOR_EMAIL="t@example.invalid",
                            GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@example.invalid"))


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: %(name)s}
spec:
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      containers:
        - name: %(name)s
          image: %(image)s
"""

CONFIG = """
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: registry, type: registry, token_file: registry.token, verify_tag: false}
registries:
  - {host: "%(reg)s", insecure: true}
repos:
  - {name: deploy, url: "file://{tmp}/deploy.git", poll_interval_s: 0, branch: main}
apps:
  - name: web
    repo: deploy
    path: apps/web
    images:
      - {repository: "%(reg)s/acme/web", policy: {semver: ">=1.0.0 <2.0.0"}}
  - name: api
    repo: deploy
    path: apps/api
    images:
      - {repository: "%(reg)s/acme/api", policy: {semver: ">=1.0.0"}}
"""


class RegistryE2ETest(unittest.TestCase):
    def setUp(self):
        self.port, self.admin_port = harness.free_port(), harness.free_port()
        self.reg = registry_peer.DistributionRegistry(endpoint={
            "url": "http://127.0.0.1:%d/hooks/registry" % self.port,
            "headers": {"Authorization": "Bearer " + TOKEN}})
        self.addCleanup(self.reg.stop)
        self.d = harness.Daemon(CONFIG % {"reg": self.reg.host},
                                secrets={"registry.token": TOKEN + "\n"},
                                ports=(self.port, self.admin_port))
        self.addCleanup(self.d.cleanup)
        self.make_deploy_repo()
        self.d.start()
        r = self.d.admin("GET", "/api/v1/jobs")
        if r.status == 404:
            self.skipTest("the durable queue is not merged yet: "
                          "GET /api/v1/jobs answers 404")
        self.assertEqual(r.status, 200, r)

    def make_deploy_repo(self):
        src = os.path.join(self.d.tmp, "deploy-src")
        for name in ("web", "api"):
            path = os.path.join(src, "apps", name, "deployment.yaml")
            harness.write(path, DEPLOYMENT % {
                "name": name, "image": "%s/acme/%s:1.0.0" % (self.reg.host, name)},
                mode=0o644)
        git("init", "-q", "-b", "main", src)
        git("add", ".", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        git("clone", "-q", "--bare", src, os.path.join(self.d.tmp, "deploy.git"))

    def jobs(self, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        return self.d.api("/api/v1/jobs" + ("?" + q if q else ""))["jobs"]

    def wait_jobs(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            jobs = self.jobs(kind="update-image")
            if pred(jobs):
                return jobs
            time.sleep(0.1)
        self.fail("jobs never matched: %r\nregistry log:\n%s\ngitopsd log:\n%s"
                  % (self.jobs(), self.reg.read_log(), self.d.log()[-4000:]))

    def test_push_makes_one_update_image_job(self):
        self.reg.start()
        layout = os.path.join(self.d.tmp, "layout")
        digests = registry_peer.build_oci_layout(layout, ["2.0.0", "1.2.3"])
        # Delivered in push order: the policy refuses web:2.0.0, no app
        # uses acme/other, then web:1.2.3 is accepted.
        registry_peer.skopeo_push(layout, "2.0.0", self.reg.host + "/acme/web:2.0.0")
        registry_peer.skopeo_push(layout, "1.2.3", self.reg.host + "/acme/other:1.2.3")
        registry_peer.skopeo_push(layout, "1.2.3", self.reg.host + "/acme/web:1.2.3")
        jobs = self.wait_jobs(lambda j: len(j) >= 1)
        time.sleep(1.0)        # room for a duplicate or stray job to show up
        jobs = self.jobs(kind="update-image")
        self.assertEqual(len(jobs), 1, jobs)
        job = jobs[0]
        self.assertEqual(job["app"], "web")
        self.assertEqual(job["repo"], "deploy")
        self.assertEqual(job["image"], self.reg.host + "/acme/web")
        self.assertEqual(job["tag"], "1.2.3")
        self.assertEqual(job["digest"], digests["1.2.3"])
        self.assertEqual(job["source"], "registry")
        self.assertRegex(job["delivery"], r"^[0-9a-f]{8}-[0-9a-f-]{27}$")
        self.assertEqual(self.jobs(app="api"), [])
        # Blob pushes and the ignored manifests were answered 2xx: the
        # registry logged no failed delivery.
        self.assertNotIn("retryingsink: error writing events",
                         self.reg.read_log(tail=None))

    def test_captured_payload(self):
        with open(os.path.join(FIXTURES, "distribution-push-manifest.json"), "rb") as f:
            body = f.read()
        # The captured event names 127.0.0.1:41753/acme/web; this config's
        # registry port differs, so rewrite the host to the configured one.
        body = body.replace(b"127.0.0.1:41753", self.reg.host.encode())
        hdrs = {"Content-Type": CT_V1, "Authorization": "Bearer " + TOKEN}
        r = self.d.post("/hooks/registry", body,
                        dict(hdrs, Authorization="Bearer wrong"))
        self.assertEqual(r.status, 401, r)
        r = self.d.post("/hooks/registry", body,
                        {"Content-Type": CT_V1})
        self.assertEqual(r.status, 401, r)
        r = self.d.post("/hooks/registry", body,
                        dict(hdrs, **{"Content-Type": "text/plain"}))
        self.assertEqual(r.status, 415, r)
        r = self.d.post("/hooks/registry", b"{\"events\": [", hdrs)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.jobs(kind="update-image"), [])
        with open(os.path.join(FIXTURES, "distribution-push-blob.json"), "rb") as f:
            r = self.d.post("/hooks/registry", f.read(), hdrs)
        self.assertEqual(r.status, 200, r)
        r = self.d.post("/hooks/registry", body, hdrs)
        self.assertEqual(r.status, 202, r)
        # The registry retries with the same event id: a duplicate.
        r = self.d.post("/hooks/registry", body, hdrs)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json().get("duplicate"), r)
        jobs = self.jobs(kind="update-image")
        self.assertEqual(len(jobs), 1, jobs)
        self.assertEqual(jobs[0]["delivery"], "399dd390-8993-41c5-8e52-650ed3f49a16")
        self.assertEqual(jobs[0]["tag"], "1.2.3")


if __name__ == "__main__":
    unittest.main()
