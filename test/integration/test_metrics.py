"""/metrics on the admin listener, parsed as the Prometheus text format.

MetricsTest drives a real gitopsd through some activity, then scrapes
/metrics and parses it (test/support/e2e_peers.parse_prometheus: HELP/TYPE,
samples with labels, histogram bucket/sum/count consistency) and checks
each documented family's type and values:

- webhooks: a GitHub push with a wrong signature (401), a registry event
  (202) and GitHub pushes (202);
- a push race: the repository (git http-backend behind lighttpd) has a
  pre-receive hook that, the first time, lets another writer move the
  branch while gitopsd's push is in flight, so receive-pack refuses the
  push (the ref is no longer where the push expected it) and gitopsd
  fetches, rebuilds and pushes again: git_push_retries_total counts it;
- the registry event's sync becomes healthy on the Kubernetes API
  simulator (event_to_deploy_seconds);
- a push for an app whose path is missing makes a dead sync, which sends
  one alert to a Slack-shaped sink (notifications_total).

ParserTest: the parser refuses what a scraper refuses, so the checks above
can fail."""
import json
import math
import os
import shutil
import stat
import tempfile
import time
import unittest

import harness
from e2e_peers import (PromError, git, github_push,
                       histogram_series, make_bare_repo, parse_prometheus,
                       samples)
from fault_peers import GitHTTP, Kubesim
from notify_receivers import Receiver

TOKEN = "metrics-registry-token-0123456789"
SECRET = "metrics-github-secret"
PASSWORD = "metrics-git-password"
REGISTRY = "registry.test:5000"
CT_V1 = "application/vnd.docker.distribution.events.v1+json"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.test:5000/acme/web:1.0.0
"""

# Runs inside receive-pack (git http-backend): the first push finds the
# branch moved by "another writer" between its negotiation and its ref
# update.  The quarantine variables are dropped so the other writer's
# objects and ref land in the repository itself, as a concurrent push's
# would.
RACE_HOOK = r'''#!/usr/bin/python3
import os, subprocess, sys
if os.path.exists("race.done"):
    sys.exit(0)
open("race.done", "w").close()
env = {k: v for k, v in os.environ.items() if k not in (
    "GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES")}
env.update(GIT_AUTHOR_NAME="other", GIT_AUTHOR_EMAIL="other@acme.test",
           GIT_COMMITTER_NAME="other", GIT_COMMITTER_EMAIL="other@acme.test")
def git(*a, data=None):
    return subprocess.run(["git"] + list(a), input=data, env=env, check=True,
                          capture_output=True).stdout.decode().strip()
for line in sys.stdin.read().splitlines():
    old, new, ref = line.split()
    if ref != "refs/heads/main":
        continue
    blob = git("hash-object", "-w", "--stdin", data=b"deploy\nedited meanwhile\n")
    entries = []
    for e in git("ls-tree", old).split("\n"):
        meta, name = e.split("\t", 1)
        if name == "README.md":
            meta = "100644 blob " + blob
        entries.append(meta + "\t" + name)
    tree = git("mktree", data=("\n".join(entries) + "\n").encode())
    c = git("commit-tree", tree, "-p", old, "-m", "a concurrent edit")
    git("update-ref", ref, c, old)
'''

CONFIG = harness.config(
    sources=[{"name": "github", "type": "github",
              "secret_file": "github.secret"},
             {"name": "registry", "type": "registry",
              "token_file": "registry.token", "verify_tag": False}],
    repos=[{"name": "deploy", "url": "%(git_url)s", "branch": "main",
            "auth": {"username": "deployer",
                     "password_file": "git.password"}}],
    apps=[{"name": "web", "repo": "deploy", "path": "apps/web",
           "cluster": "sim", "namespace": "default",
           "images": [{"repository": "registry.test:5000/acme/web",
                       "policy": {"semver": ">=1.0.0"}}],
           "sync": {"auto": True, "timeout_s": 20}},
          {"name": "broken", "repo": "deploy", "path": "apps/broken",
           "cluster": "sim", "namespace": "default", "notify": ["ops-slack"]}],
    retry={"base_s": 1, "max_s": 2, "max_attempts": 2},
    clusters=[{"name": "sim", "kubeconfig": "%(kubeconfig)s"}],
    notifiers=[{"name": "ops-slack", "type": "slack",
                "url_file": "slack.url"}])

FAMILIES = {
    "gitopsd_webhooks_total": "counter",
    "gitopsd_jobs_total": "counter",
    "gitopsd_queue_depth": "gauge",
    "gitopsd_workers_busy": "gauge",
    "gitopsd_oldest_running_job_seconds": "gauge",
    "gitopsd_git_operations_overdue": "gauge",
    "gitopsd_job_duration_seconds": "histogram",
    "gitopsd_event_to_deploy_seconds": "histogram",
    "gitopsd_notifications_total": "counter",
    "gitopsd_git_push_retries_total": "counter",
    "gitopsd_lease_takeovers_total": "counter",
    "gitopsd_build_info": "gauge",
}


def registry_event(tag, event_id):
    return json.dumps({"events": [{
        "id": event_id, "timestamp": "2026-01-01T00:00:00Z",
        "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": "sha256:" + "ab" * 32, "size": 100,
                   "repository": "acme/web", "tag": tag,
                   "url": "http://%s/v2/acme/web/manifests/%s" % (REGISTRY,
                                                                   tag)},
        "request": {"id": "r1", "host": REGISTRY, "method": "PUT",
                    "useragent": "skopeo"},
        "actor": {}, "source": {"addr": REGISTRY}}]}).encode()


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-metrics-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        gitroot = os.path.join(self.tmp, "srv")
        os.makedirs(gitroot)
        self.bare = make_bare_repo(gitroot, "deploy.git", {
            "apps/web/deployment.yaml": DEPLOYMENT, "README.md": "deploy\n"})
        hook = os.path.join(self.bare, "hooks", "pre-receive")
        harness.write(hook, RACE_HOOK, mode=0o755)
        os.chmod(hook, stat.S_IRWXU)
        self.http = GitHTTP(gitroot, "deployer", PASSWORD).start()
        self.addCleanup(self.http.stop)
        self.sim = Kubesim(ready_delay=0.1)
        self.addCleanup(self.sim.stop)
        self.slack = Receiver("http").start()
        self.addCleanup(self.slack.close)
        self.d = harness.Daemon(CONFIG % {
            "git_url": self.http.url("deploy.git"),
            "kubeconfig": self.sim.kubeconfig},
            secrets={"github.secret": SECRET,
                     "registry.token": TOKEN + "\n",
                     "git.password": PASSWORD + "\n",
                     "slack.url": "http://127.0.0.1:%d/slack/T/B\n"
                                  % self.slack.port})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def scrape(self):
        r = self.d.admin("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "")
                        .startswith("text/plain"), r.headers)
        return parse_prometheus(r.body.decode("utf-8"))

    def jobs(self, **q):
        query = "&".join("%s=%s" % kv for kv in q.items())
        return self.d.api("/api/v1/jobs?limit=200&" + query)["jobs"]

    def wait(self, what, pred, timeout=60):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.1)
        self.fail("%s never happened: %r\n%s" % (what, self.jobs(),
                                                 self.d.log()[-5000:]))

    def idle(self):
        js = self.jobs()
        return js and all(j["state"] in ("succeeded", "dead") for j in js)

    def test_metrics_after_activity(self):
        # Before any activity every family is declared with its type.
        fams = self.scrape()
        for name, typ in FAMILIES.items():
            self.assertIn(name, fams)
            self.assertEqual(fams[name]["type"], typ, name)
            self.assertTrue(fams[name]["help"], name)

        clone = self.http.url("deploy.git")
        body = harness.github_push_body(clone, paths=["apps/web/x.yaml"])
        r = self.d.post("/hooks/github", body, {
            "Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "bad-sig-1",
            "X-Hub-Signature-256": harness.github_signature("wrong", body)})
        self.assertEqual(r.status, 401, r)

        r = self.d.post("/hooks/registry", registry_event(
            "1.1.0", "aaaaaaaa-1111-2222-3333-444444444444"),
            {"Content-Type": CT_V1, "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)
        self.wait("the web app healthy", lambda: (
            self.d.api("/api/v1/apps/web").get("health") == "Healthy"))
        up = self.jobs(kind="update-image")[0]
        self.assertEqual(up["state"], "succeeded", up)
        self.assertGreaterEqual(up["result"]["detail"]["push_retries"], 1, up)
        # The concurrent edit is kept under gitopsd's commit.
        self.assertEqual(git("log", "-1", "--format=%s", "main~1",
                             cwd=self.bare), "a concurrent edit")
        head = git("rev-parse", "main", cwd=self.bare)
        self.assertEqual(up["result"]["commit"], head)

        # GitHub tells of the commit too; then a push for the app whose
        # path is missing: its sync is dead and alerts.
        prev = git("rev-parse", "main~1", cwd=self.bare)
        r = github_push(self.d, SECRET, clone, head, before=prev,
                        modified=["apps/web/deployment.yaml"])
        self.assertEqual(r.status, 202, r)
        r = github_push(self.d, SECRET, clone, head, before=prev,
                        modified=["apps/broken/deployment.yaml"])
        self.assertEqual(r.status, 202, r)
        self.assertEqual(len(self.slack.wait_records(1)), 1,
                         self.d.log()[-4000:])
        self.wait("every job final", self.idle)

        jobs = self.jobs()
        by = {}
        for j in jobs:
            by[(j["kind"], j["state"])] = by.get((j["kind"], j["state"]),
                                                 0) + 1
        # The queue gauges are refreshed between rounds.
        # Every state is waited for, not dead alone: the gauges of one
        # refresh may still show the last job running.
        want = {"dead": [by.get(("sync", "dead"), 0)], "queued": [0],
                "running": [0], "waiting": [0]}
        self.wait("queue_depth up to date", lambda: (lambda f: all(
            samples(f, "gitopsd_queue_depth", state=st) == v
            for st, v in want.items()))(self.scrape()))
        fams = self.scrape()
        for name, typ in FAMILIES.items():
            self.assertIn(name, fams)
            self.assertEqual(fams[name]["type"], typ, name)

        # build_info: one series, the version, value 1.
        with open(os.path.join(harness.ROOT, "VERSION")) as f:
            version = f.read().strip()
        self.assertEqual([(lab, v) for n, lab, v in
                          fams["gitopsd_build_info"]["samples"]],
                         [({"version": version}, 1.0)])

        def one(name, **labels):
            vals = samples(fams, name, **labels)
            self.assertEqual(len(vals), 1, (name, labels, vals))
            return vals[0]
        self.assertEqual(one("gitopsd_webhooks_total", source="github",
                             code=401), 1)
        self.assertEqual(one("gitopsd_webhooks_total", source="github",
                             code=202), 2)
        self.assertEqual(one("gitopsd_webhooks_total", source="registry",
                             code=202), 1)
        for lab in (lab for _, lab, _ in
                    fams["gitopsd_webhooks_total"]["samples"]):
            self.assertEqual(sorted(lab), ["code", "source"])

        # jobs_total agrees with the admin API, kind by kind.
        for (kind, state), n in by.items():
            self.assertEqual(one("gitopsd_jobs_total", kind=kind,
                                 result=state), n, (kind, state))
        self.assertEqual(by.get(("update-image", "succeeded")), 1)
        self.assertEqual(by.get(("sync", "dead")), 1, jobs)
        self.assertEqual(by.get(("notify", "succeeded")), 1)
        total = sum(v for _, _, v in fams["gitopsd_jobs_total"]["samples"])
        self.assertEqual(total, len(jobs))

        for state in ("queued", "running", "failed", "dead", "waiting"):
            one("gitopsd_queue_depth", state=state)
        self.assertEqual(one("gitopsd_queue_depth", state="queued"), 0)
        self.assertEqual(one("gitopsd_queue_depth", state="running"), 0)
        self.assertEqual(one("gitopsd_queue_depth", state="waiting"), 0)

        # job_duration_seconds: one histogram per kind, one observation per
        # finished attempt; a sync took some time, none took a minute.
        hist = histogram_series("gitopsd_job_duration_seconds",
                                fams["gitopsd_job_duration_seconds"])
        kinds = {dict(k)["kind"]: s for k, s in hist.items()}
        self.assertEqual(set(kinds), {"update-image", "sync", "notify"})
        for kind, s in kinds.items():
            n = sum(v for (k, _), v in by.items() if k == kind)
            self.assertEqual(s["count"], n, kind)
            # Clone, fetch, push and apply take milliseconds at least; an
            # alert to a loopback sink may take less than the 1 ms clock.
            if kind != "notify":
                self.assertGreater(s["sum"], 0, kind)
            self.assertLess(s["sum"], 60 * n, kind)

        # event_to_deploy_seconds: the registry event's and GitHub's
        # successful syncs, each well under the test's time.
        e2d = histogram_series("gitopsd_event_to_deploy_seconds",
                               fams["gitopsd_event_to_deploy_seconds"])
        self.assertEqual(list(e2d), [()])
        s = e2d[()]
        self.assertEqual(s["count"], by.get(("sync", "succeeded")))
        self.assertGreater(s["sum"], 0)
        self.assertLess(s["sum"] / s["count"], 30)

        self.assertEqual(one("gitopsd_notifications_total",
                             notifier="ops-slack", result="sent"), 1)
        self.assertGreaterEqual(one("gitopsd_git_push_retries_total",
                                    repo="deploy"),
                                up["result"]["detail"]["push_retries"])


class ParserTest(unittest.TestCase):
    GOOD = ('# HELP a_total Things.\n# TYPE a_total counter\n'
            'a_total{x="1",y="q\\"\\\\\\n"} 3\na_total{x="2"} 0\n'
            '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="1"} 2\n'
            'h_bucket{le="+Inf"} 2\nh_sum 1.25\nh_count 2\n')

    def test_good(self):
        f = parse_prometheus(self.GOOD)
        self.assertEqual(f["a_total"]["help"], "Things.")
        self.assertEqual(samples(f, "a_total", x=1), [3.0])
        self.assertEqual(f["a_total"]["samples"][0][1]["y"], 'q"\\\n')
        s = histogram_series("h", f["h"])[()]
        self.assertEqual((s["count"], s["sum"]), (2, 1.25))
        self.assertEqual(s["buckets"][-1][0], math.inf)

    def test_refused(self):
        bad = {
            "no type": "a 1\n",
            "bad line": "# TYPE a gauge\na{x=1} 2\n",
            "bad value": "# TYPE a gauge\na one\n",
            "duplicate": "# TYPE a gauge\na 1\na 2\n",
            "negative counter": "# TYPE a counter\na -1\n",
            "type after samples": "# TYPE a gauge\na 1\n# TYPE a gauge\n",
            "no newline": "# TYPE a gauge\na 1",
            "inf != count": self.GOOD.replace("h_count 2", "h_count 3"),
            "not cumulative": self.GOOD.replace('h_bucket{le="1"} 2',
                                                'h_bucket{le="1"} 0'),
            "no +Inf": self.GOOD.replace('h_bucket{le="+Inf"} 2\n', ""),
            "no sum": self.GOOD.replace("h_sum 1.25\n", ""),
            "bad escape": '# TYPE a gauge\na{x="\\q"} 1\n',
        }
        for why, text in bad.items():
            with self.assertRaises(PromError, msg=why):
                parse_prometheus(text)


if __name__ == "__main__":
    unittest.main()
