"""Registry polling: the safety net for image events that never arrived.

The registry is Debian's docker-registry with notifications off, with
htpasswd basic auth or token auth (test/support/registry_token.py plays
the token service); a paging front (test/support/registry_front.py) pages
the tag list as Docker Hub and GHCR do, which docker-registry 2.8 does not,
and answers 429 with Retry-After when told to.  The listing itself is
checked through registry_verify_tool -l (registry_list_tags), the whole
safety net through a real gitopsd that polls every second or two.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import registry_front
import registry_peer
import registry_token

CT_V1 = "application/vnd.docker.distribution.events.v1+json"
TOKEN = "polling-notify-token-0123456789"

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
  - {host: "%(reg)s", insecure: true, username: ci, password_file: reg.pw}
sources:
  - {name: registry, type: registry, token_file: registry.token}
repos:
  - {name: deploy, url: "%(bare)s", poll_interval_s: 0, branch: main}
apps:
  - name: web
    repo: deploy
    path: apps/web
    images:
      - {repository: "%(reg)s/acme/web", policy: {semver: "%(range)s"},
         poll_interval_s: %(interval)d}
"""


def verify_tool(args):
    path = harness.binary(os.path.join("support", "registry_verify_tool"))
    r = harness.run_tool([path] + args, capture_output=True, text=True,
                         timeout=60)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=t", "-c",
                           "user.email=t@localhost", *args], cwd=cwd,
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


class Base(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="gitopsd-poll-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.layout = os.path.join(self.work, "oci")
        self.digests = registry_peer.build_oci_layout(
            self.layout, ["1.1.0", "1.2.0", "2.0.0"])
        self.pwfile = os.path.join(self.work, "pw")
        harness.write(self.pwfile, "pw-0123\n")

    def basic_registry(self):
        reg = registry_peer.DistributionRegistry(
            htpasswd=("ci", "pw-0123")).start()
        self.addCleanup(reg.stop)
        return reg

    def push(self, reg, tags, repo="acme/web"):
        for tag in tags:
            registry_peer.skopeo_push(self.layout, tag, "%s/%s:%s" % (
                reg.host, repo, tag), creds="ci:pw-0123")


class ListTagsTest(Base):
    def test_basic_auth(self):
        reg = self.basic_registry()
        self.push(reg, ["1.1.0", "2.0.0"])
        rc, out, err = verify_tool(["-l", "-k", "-u", "ci", "-p",
                                    self.pwfile, reg.host, "acme/web"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split("\n")), ["1.1.0", "2.0.0"])
        # Without credentials the registry's Basic challenge is refused.
        rc, out, err = verify_tool(["-l", "-k", reg.host, "acme/web"])
        self.assertEqual(rc, 2)
        self.assertIn("no credentials configured", err)

    def test_pages_followed(self):
        reg = self.basic_registry()
        self.push(reg, ["1.1.0"])
        more = ["1.%d.1" % i for i in range(130)]
        registry_peer.retag(reg.host, "acme/web", "1.1.0", more,
                            auth=basic("ci", "pw-0123"))
        front = registry_front.PagingFront(reg.host, page=50).start()
        self.addCleanup(front.stop)
        rc, out, err = verify_tool(["-l", "-k", "-u", "ci", "-p",
                                    self.pwfile, front.host, "acme/web"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split("\n")), sorted(more + ["1.1.0"]))
        seen = [p for _, p, st in front.tag_requests() if st == 200]
        # 131 tags in pages of 50: three answered pages, the later two
        # asked for with the Link's last=.
        self.assertEqual(len(seen), 3, seen)
        self.assertIn("n=1000", seen[0])
        self.assertTrue(all("last=" in p for p in seen[1:]), seen)

    def test_throttled(self):
        reg = self.basic_registry()
        self.push(reg, ["1.1.0"])
        front = registry_front.PagingFront(reg.host).start()
        self.addCleanup(front.stop)
        front.throttle = [17]
        rc, out, err = verify_tool(["-l", "-k", "-u", "ci", "-p",
                                    self.pwfile, front.host, "acme/web"])
        self.assertEqual((rc, out), (3, "retry-after: 17"), err)

    def test_token_auth(self):
        issuer = registry_token.TokenIssuer(self.work, "ci", "pw-0123").start()
        self.addCleanup(issuer.stop)
        reg = registry_peer.DistributionRegistry(
            auth_token=issuer.registry_auth()).start()
        self.addCleanup(reg.stop)
        registry_peer.skopeo_push(self.layout, "1.2.0",
                                  reg.host + "/team/app:1.2.0",
                                  token=issuer.push_token("team/app"))
        rc, out, err = verify_tool(["-l", "-k", "-u", "ci", "-p",
                                    self.pwfile, reg.host, "team/app"])
        self.assertEqual((rc, out), (0, "1.2.0"), err)
        last = issuer.requests[-1]
        self.assertEqual(last["query"]["scope"], ["repository:team/app:pull"])
        self.assertTrue(last["authorization"].startswith("Basic "))


class DaemonPollTest(Base):
    def start_daemon(self, reg_host, interval=1, rng="<2"):
        src = os.path.join(self.work, "src")
        harness.write(os.path.join(src, "apps/web/deployment.yaml"),
                      DEPLOYMENT % reg_host, mode=0o644)
        git("init", "-q", "-b", "main", src)
        git("add", ".", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        self.bare = os.path.join(self.work, "deploy.git")
        git("clone", "-q", "--bare", src, self.bare)
        self.d = harness.Daemon(CONFIG % {"reg": reg_host,
                                          "bare": self.bare, "range": rng,
                                          "interval": interval},
                                secrets={"registry.token": TOKEN,
                                         "reg.pw": "pw-0123\n"})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def commits(self):
        return git("log", "--format=%s", "main", cwd=self.bare).split("\n")

    def wait_for(self, cond, what, timeout=60):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.2)
        self.fail("%s\n%s" % (what, self.d.log()[-4000:]))

    def manifest(self):
        return git("show", "main:apps/web/deployment.yaml", cwd=self.bare)

    def test_poll_deploys_best_tag_once(self):
        reg = self.basic_registry()
        self.push(reg, ["1.1.0", "1.2.0", "2.0.0"])
        self.start_daemon(reg.host)
        self.wait_for(lambda: "web:1.2.0" in self.manifest(),
                      "the poll did not bring 1.2.0")
        bumps = [c for c in self.commits() if c.startswith("deploy(")]
        self.assertEqual(bumps, ["deploy(web): web 1.0.0 -> 1.2.0"])
        # More polls find the same tag and hand nothing over; the status
        # says what they saw.
        first = self.d.api("/api/v1/apps/web")["images"][0]["poll"]["last"]
        app = {}

        def polled_again():
            app.update(self.d.api("/api/v1/apps/web"))
            return app["images"][0]["poll"]["last"] != first
        self.wait_for(polled_again, "no later poll")
        p = app["images"][0]["poll"]
        self.assertEqual((p["interval_s"], p["result"], p["tag"]),
                         (1, "ok", "1.2.0"), p)
        self.assertIsNone(p["error"])
        # The registry's own event for the same tag, late: no new commit.
        with open(os.path.join(harness.ROOT, "test", "fixtures", "registry",
                               "distribution-push-manifest.json")) as f:
            body = json.load(f)
        ev = body["events"][0]
        ev["id"] = "late-event-1"
        ev["target"]["tag"] = "1.2.0"
        ev["target"]["repository"] = "acme/web"
        ev["target"]["digest"] = self.digests["1.2.0"]
        ev["request"]["host"] = reg.host
        r = self.d.post("/hooks/registry", json.dumps(body).encode(),
                        {"Content-Type": CT_V1,
                         "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)
        job = r.json()["jobs"][0]
        self.wait_for(lambda: self.d.api("/api/v1/jobs/%d" % job)["state"]
                      in ("succeeded", "dead"), "late event job")
        self.assertEqual(self.d.api("/api/v1/jobs/%d" % job)["state"],
                         "succeeded")
        bumps = [c for c in self.commits() if c.startswith("deploy(")]
        self.assertEqual(len(bumps), 1, bumps)
        events = self.d.api("/api/v1/events")["events"]
        self.assertEqual(len([e for e in events if e["source"] == "poll"]), 1,
                         events)
        metrics = self.d.admin("GET", "/metrics").body.decode()
        self.assertIn('gitopsd_poll_findings_total{kind="image"} 1', metrics)
        self.assertIn('gitopsd_polls_total{kind="image",result="ok"}',
                      metrics)

    def test_poll_honours_retry_after(self):
        reg = self.basic_registry()
        self.push(reg, ["1.1.0"])
        front = registry_front.PagingFront(reg.host).start()
        self.addCleanup(front.stop)
        front.throttle = [6]
        self.start_daemon(front.host, rng=">=1.0.0")
        self.wait_for(lambda: "web:1.1.0" in self.manifest(),
                      "the poll did not bring 1.1.0 after the 429")
        reqs = front.tag_requests()
        self.assertEqual(reqs[0][2], 429, reqs)
        # The next listing waited for Retry-After (6 s), though the image's
        # interval is 1 s.
        self.assertGreaterEqual(reqs[1][0] - reqs[0][0], 5.5, reqs)


if __name__ == "__main__":
    unittest.main()
