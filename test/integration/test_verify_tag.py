"""Verify before acting: an update-image job asks the real registry
(Debian's docker-registry, an image pushed with skopeo) that the tag
exists and records its digest before it edits anything; a tag the
registry does not have ends the job dead with no commit; an unreachable
registry fails the attempt (retried), never a blind edit."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import registry_peer

ROOT = harness.ROOT
FIXTURES = os.path.join(ROOT, "test", "fixtures", "registry")
TOKEN = "verify-tag-notify-token-0123456789"
CT_V1 = "application/vnd.docker.distribution.events.v1+json"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: %s/acme/web:1.0.0
"""

CONFIG = """
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 1, max_attempts: 2}
registries:
  - {host: "%(reg)s", insecure: true}
sources:
  - {name: registry, type: registry, token_file: registry.token}
repos:
  - {name: deploy, url: "%(bare)s", poll_interval_s: 0, branch: main}
apps:
  - name: web
    repo: deploy
    path: apps/web
    images:
      - {repository: "%(reg)s/acme/web", policy: {semver: ">=1.0.0"}}
"""


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=t", "-c",
                           "user.email=t@localhost", *args], cwd=cwd,
                          check=True, capture_output=True,
                          text=True).stdout.strip()


class VerifyTagTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-verify-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.reg = registry_peer.DistributionRegistry().start()
        self.addCleanup(self.reg.stop)
        layout = os.path.join(self.tmp, "oci")
        self.digests = registry_peer.build_oci_layout(layout, ["1.1.0"])
        registry_peer.skopeo_push(layout, "1.1.0",
                                  "%s/acme/web:1.1.0" % self.reg.host)
        src = os.path.join(self.tmp, "src")
        harness.write(os.path.join(src, "apps/web/deployment.yaml"),
                      DEPLOYMENT % self.reg.host, mode=0o644)
        git("init", "-q", "-b", "main", src)
        git("add", ".", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        self.bare = os.path.join(self.tmp, "deploy.git")
        git("clone", "-q", "--bare", src, self.bare)
        self.d = harness.Daemon(CONFIG % {"reg": self.reg.host,
                                          "bare": self.bare},
                                secrets={"registry.token": TOKEN})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def event(self, tag, event_id):
        with open(os.path.join(FIXTURES,
                               "distribution-push-manifest.json")) as f:
            body = json.load(f)
        ev = body["events"][0]
        ev["id"] = event_id
        ev["target"]["tag"] = tag
        ev["target"]["repository"] = "acme/web"
        ev["request"]["host"] = self.reg.host
        r = self.d.post("/hooks/registry", json.dumps(body).encode(),
                        {"Content-Type": CT_V1,
                         "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)
        return r.json()["jobs"][0]

    def wait_final(self, job_id, states=("succeeded", "dead"), timeout=60):
        deadline = time.time() + timeout
        job = None
        while time.time() < deadline:
            job = self.d.api("/api/v1/jobs/%d" % job_id)
            if job["state"] in states:
                return job
            time.sleep(0.1)
        self.fail("job %d: %r\n%s" % (job_id, job, self.d.log()[-3000:]))

    def test_existing_tag_is_verified_and_recorded(self):
        job = self.wait_final(self.event("1.1.0", "verify-1"))
        self.assertEqual(job["state"], "succeeded", job)
        item = job["result"]["detail"]["images"][0]
        self.assertEqual(item["verified_digest"], self.digests["1.1.0"])
        self.assertIn("web:1.1.0", git("show", "main:apps/web/deployment.yaml",
                                       cwd=self.bare))

    def test_missing_tag_is_dead_without_commit(self):
        before = git("rev-parse", "main", cwd=self.bare)
        job = self.wait_final(self.event("9.9.9", "verify-2"))
        self.assertEqual(job["state"], "dead", job)
        self.assertIn("registry", job["error"])
        self.assertIn("9.9.9", job["error"])
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), before)

    def test_unreachable_registry_retries_then_dies(self):
        self.reg.stop()
        before = git("rev-parse", "main", cwd=self.bare)
        job = self.wait_final(self.event("1.1.0", "verify-3"))
        self.assertEqual(job["state"], "dead", job)
        self.assertIn("registry", job["error"])
        self.assertEqual(job["attempts"], 2)
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), before)


if __name__ == "__main__":
    unittest.main()
