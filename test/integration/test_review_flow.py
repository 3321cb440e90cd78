"""The review flow (docs/review-flow.md): a registry push becomes a commit
on a branch of its own, named by the repo's push_branch template, and a
pull/merge request against the followed branch, on each of GitHub,
GitLab, Gitea and Bitbucket Cloud (their REST APIs played by
test/support/githost_api.py; the Git side is a real bare repository).

For every provider:
- the branch gitopsd/web-1.1.0 holds one commit on top of main, main is
  untouched, one PR exists from that branch to main, with the title, the
  body listing the image old -> new with the digest and the event, and
  the labels; its URL is on the job (API detail.pr_url, gitopsctl job);
- the same update again (another event for the same tag) makes no second
  commit and no second PR: the open one is updated;
- the token is sent only in the provider's auth header and appears
  nowhere in the daemon's log nor the API.
Then, on GitHub: a refused token fails the job at once with the host's
message; a secondary rate limit (403 + Retry-After) fails the attempt and
keeps the job queued for a later retry; a templated push_branch that
expands to an invalid branch name is refused by `gitopsd -t`.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

import harness
from fault_peers import GitHTTP, git
from githost_api import GitHostAPI

ROOT = harness.ROOT
FIXTURES = os.path.join(ROOT, "test", "fixtures", "registry")
REG_TOKEN = "registry-notify-token-0123456789abcdef"
API_TOKEN = "hostapi-TOKEN-5f0e1d2c3b4a69788796a5b4c3d2e1f0"
CT_V1 = "application/vnd.docker.distribution.events.v1+json"
REGISTRY = "registry.test:5000"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "%s/acme/web:1.0.0"
""" % REGISTRY

PREFIX = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1",
          "bitbucket": "/2.0"}

def config(url, provider, api, max_s=2, close_stale=False, auth=False,
           **keys):
    """The configuration of these tests: one repository whose updates are
    proposed as pull requests through the provider's API at api."""
    pr = {"provider": provider, "api_url": api, "token_file": "api.token",
          "title": "deploy({{app}}): {{image}} {{old}} -> {{new}}",
          "body": "Proposed by gitopsd for {{repo}}.",
          "labels": ["gitopsd", "automated"]}
    if close_stale:
        pr["close_stale"] = True
    repo = {"name": "deploy", "url": url, "branch": "main"}
    if auth:
        repo["auth"] = {"username": "deployer",
                        "password_file": "git.password"}
    repo.update({"push_branch": "gitopsd/{{app}}-{{tag}}",
                 "author": {"name": "gitopsd-bot", "email": "bot@acme.test"},
                 "pull_request": pr})
    return harness.config(
        shutdown_timeout_s=None,
        retry={"base_s": 1, "max_s": max_s, "max_attempts": 3},
        sources=[{"name": "registry", "type": "registry",
                  "token_file": "registry.token", "verify_tag": False}],
        repos=[repo],
        apps=[{"name": "web", "repo": "deploy", "path": "apps/web",
               "cluster": "c",
               "images": [{"repository": REGISTRY + "/acme/web",
                           "policy": {"semver": ">=1.0.0"}}]}],
        clusters=harness.DEAD_CLUSTERS, **keys)


class ReviewFlowBase(unittest.TestCase):
    provider = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-review-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        src = os.path.join(self.tmp, "src")
        harness.write(os.path.join(src, "apps", "web", "deployment.yaml"),
                      DEPLOYMENT, mode=0o644)
        git("init", "-q", src)
        git("add", ".", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        self.bare = os.path.join(self.tmp, "srv", "acme", "deploy.git")
        git("clone", "-q", "--bare", src, self.bare)
        # Owner and name come from the URL's path: GitLab takes the whole
        # namespace, the others its last part.
        path = self.bare.strip("/")[:-len(".git")]
        owner = (path.rsplit("/", 1)[0] if self.provider == "gitlab"
                 else "acme")
        self.api = GitHostAPI(self.provider, API_TOKEN, self.bare, owner,
                              "deploy", PREFIX[self.provider]).start()
        self.addCleanup(self.api.stop)

    def start_daemon(self, token=API_TOKEN, max_s=2, close_stale=False,
                     **keys):
        url = getattr(self, "bare_url", None)
        self.d = harness.Daemon(
            config(url or self.bare, self.provider, self.api.url,
                   max_s=max_s, close_stale=close_stale, auth=bool(url),
                   **keys),
            secrets={"registry.token": REG_TOKEN + "\n",
                     "api.token": token + "\n",
                     "git.password": "s3cret-http\n",
                     **harness.DEAD_CLUSTER_FILES})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def post_push(self, tag, event_id):
        with open(os.path.join(FIXTURES,
                               "distribution-push-manifest.json")) as f:
            body = json.load(f)
        ev = body["events"][0]
        ev["id"] = event_id
        ev["target"]["tag"] = tag
        ev["target"]["repository"] = "acme/web"
        ev["request"]["host"] = REGISTRY
        r = self.d.post("/hooks/registry", json.dumps(body).encode(),
                        {"Content-Type": CT_V1,
                         "Authorization": "Bearer " + REG_TOKEN})
        self.assertEqual(r.status, 202, r)
        return ev["target"]["digest"]

    def jobs(self):
        return self.d.api("/api/v1/jobs?kind=update-image")["jobs"]

    def wait_job(self, pred, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            js = [j for j in self.jobs() if pred(j)]
            if js:
                return self.d.api("/api/v1/jobs/%d" % js[0]["id"])
            time.sleep(0.1)
        self.fail("no job matched: %r\n%s" % (self.jobs(),
                                              self.d.log()[-4000:]))

    def finished(self, exclude=()):
        return lambda j: j["id"] not in exclude and j["state"] in (
            "succeeded", "failed", "dead")


class ReviewFlowMixin:
    def test_branch_pr_and_idempotency(self):
        self.api.seed(60)       # unrelated open PRs: listing pages
        self.start_daemon()
        main = git("rev-parse", "main", cwd=self.bare)
        digest = self.post_push("1.1.0", "11111111-2222-3333-4444-5555555555aa")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "succeeded", job)
        branch = "gitopsd/web-1.1.0"
        tip = git("rev-parse", branch, cwd=self.bare)
        self.assertEqual(git("rev-parse", branch + "~1", cwd=self.bare), main)
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), main)
        self.assertIn("web:1.1.0", git("show", branch +
                                       ":apps/web/deployment.yaml",
                                       cwd=self.bare))
        mine = self.api.open_prs(branch)
        self.assertEqual(len(mine), 1, self.api.prs[-3:])
        pr = mine[0]
        self.assertEqual(pr["base"], "main")
        self.assertEqual(pr["title"], "deploy(web): web 1.0.0 -> 1.1.0")
        self.assertIn("Proposed by gitopsd for deploy.", pr["body"])
        self.assertIn("`1.0.0` -> `1.1.0`", pr["body"])
        self.assertIn(digest, pr["body"])
        self.assertIn(job["delivery"], pr["body"])
        if self.provider != "bitbucket":
            self.assertEqual(sorted(pr["labels"]), ["automated", "gitopsd"])
        detail = job["result"]["detail"]
        self.assertEqual(detail["pr_url"], self.api.web_url(pr))
        self.assertEqual(detail["pr"], "opened")
        self.assertEqual(detail["branch"], branch)
        self.assertEqual(job["result"]["commit"], tip)
        # No sync: clusters follow main, not the review branch.
        self.assertEqual(self.d.api("/api/v1/jobs?kind=sync")["jobs"], [])

        # The same update again: no second commit, no second PR.
        n_before = len(self.api.prs)
        self.post_push("1.1.0", "66666666-7777-8888-9999-0000000000bb")
        # To its end: an attempt that fails on the way to the host (seen
        # once under Valgrind: the host's connection closed with no
        # answer) is retried, and the retry must not add anything either.
        job2 = self.wait_job(lambda j: j["id"] != job["id"] and
                             j["state"] in ("succeeded", "dead"))
        self.assertEqual(job2["state"], "succeeded", job2)
        self.assertEqual(git("rev-parse", branch, cwd=self.bare), tip)
        self.assertEqual(len(self.api.prs), n_before)
        self.assertEqual(job2["result"]["detail"]["pr"], "updated")
        self.assertEqual(job2["result"]["detail"]["pr_url"],
                         self.api.web_url(pr))
        self.assertEqual(job2["result"]["detail"]["result"],
                         "branch reused")
        creates = [r for r in self.api.requests if r["method"] == "POST"
                   and r["path"].split("?")[0].endswith(
                       ("/pulls", "/merge_requests", "/pullrequests"))]
        self.assertEqual(len(creates), 1, creates)

        # gitopsctl job shows the PR.
        out = subprocess.run(
            [harness.binary("gitopsctl"), "--url",
             "http://127.0.0.1:%d" % self.d.admin_port, "job",
             str(job2["id"])], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(self.api.web_url(pr), out.stdout)

        # The token: only in the provider's auth header.
        for r in self.api.requests:
            for k, v in r["headers"].items():
                if API_TOKEN in v:
                    self.assertIn(k.lower(), ("authorization",
                                              "private-token"))
            self.assertNotIn(API_TOKEN, json.dumps(r["body"]))
        self.assertNotIn(API_TOKEN, self.d.log())
        self.assertNotIn(API_TOKEN, json.dumps(self.jobs()))
        self.assertNotIn(API_TOKEN, json.dumps(job2))

        # Merged: main has the tag; a new event proposes nothing.
        git("update-ref", "refs/heads/main", tip, cwd=self.bare)
        self.post_push("1.1.0", "99999999-7777-8888-9999-0000000000cc")
        job3 = self.wait_job(self.finished(exclude=(job["id"], job2["id"])))
        self.assertEqual(job3["state"], "succeeded", job3)
        self.assertNotIn("pr_url", job3["result"]["detail"])
        self.assertEqual(len(self.api.prs), n_before)

    def test_close_stale(self):
        # Open PRs: an older tag of web, a newer one, another app whose
        # branch shares the prefix.
        for head in ("gitopsd/web-1.0.5", "gitopsd/web-9.0.0",
                     "gitopsd/web-worker-1.0.0"):
            self.api._new_pr(head, "main", head, "", [])
        self.start_daemon(close_stale=True)
        self.post_push("1.1.0", "78787878-2222-3333-4444-5555555555aa")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(job["result"]["detail"]["pr_closed"],
                         [self.api.web_url(self.api.prs[0])])
        self.post_push("1.2.0", "89898989-2222-3333-4444-5555555555bb")
        job2 = self.wait_job(self.finished(exclude=(job["id"],)))
        self.assertEqual(job2["state"], "succeeded", job2)
        self.assertEqual(sorted(x["head"] for x in self.api.open_prs()),
                         ["gitopsd/web-1.2.0", "gitopsd/web-9.0.0",
                          "gitopsd/web-worker-1.0.0"])
        closed = [x for x in self.api.prs if x["state"] == "closed"]
        self.assertEqual(sorted(x["head"] for x in closed),
                         ["gitopsd/web-1.0.5", "gitopsd/web-1.1.0"])
        self.assertFalse(any(x["merged"] for x in closed))

    def test_declined_not_proposed_again(self):
        self.start_daemon()
        self.post_push("1.1.0", "12121212-2222-3333-4444-5555555555aa")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "succeeded", job)
        tip = git("rev-parse", "gitopsd/web-1.1.0", cwd=self.bare)
        self.api.close("gitopsd/web-1.1.0", merged=False)
        # The same tag again: not proposed, no commit, no PR.
        self.post_push("1.1.0", "34343434-2222-3333-4444-5555555555bb")
        job2 = self.wait_job(self.finished(exclude=(job["id"],)))
        self.assertEqual(job2["state"], "succeeded", job2)
        self.assertEqual(job2["result"]["detail"]["pr"], "declined")
        self.assertEqual(job2["result"]["detail"]["pr_url"],
                         self.api.web_url(self.api.prs[0]))
        self.assertEqual(len(self.api.prs), 1)
        self.assertEqual(self.api.open_prs(), [])
        self.assertEqual(git("rev-parse", "gitopsd/web-1.1.0",
                             cwd=self.bare), tip)
        # A newer tag: a new branch and a new PR.
        self.post_push("1.2.0", "56565656-2222-3333-4444-5555555555cc")
        job3 = self.wait_job(self.finished(exclude=(job["id"], job2["id"])))
        self.assertEqual(job3["state"], "succeeded", job3)
        self.assertEqual(job3["result"]["detail"]["pr"], "opened")
        self.assertEqual([x["head"] for x in self.api.open_prs()],
                         ["gitopsd/web-1.2.0"])


class GitHubReviewTest(ReviewFlowBase, ReviewFlowMixin):
    provider = "github"

    def test_refused_token_fails_with_the_hosts_message(self):
        self.start_daemon(token="not-the-token-abcdef0123456789")
        self.post_push("1.2.0", "abababab-2222-3333-4444-555555555555")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "dead", job)
        self.assertIn("Bad credentials", job["error"])
        self.assertIn("HTTP 401", job["error"])
        self.assertNotIn("not-the-token", json.dumps(job))
        self.assertNotIn("not-the-token", self.d.log())
        self.assertEqual(self.api.prs, [])

    def test_not_found_says_what_is_missing(self):
        real = self.api.url
        self.api.prefix = "/api/v3"
        self.start_daemon()
        # The daemon asks under /api/v3; the host has the repo elsewhere.
        self.api.owner = "someone-else"
        self.post_push("1.6.0", "bcbcbcbc-2222-3333-4444-555555555555")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "dead", job)
        self.assertIn("not found (HTTP 404)", job["error"])
        self.assertIn(real + "/repos/acme/deploy", job["error"])
        self.assertIn("check api_url", job["error"])
        self.assertEqual(self.api.prs, [])

    def test_secondary_rate_limit_is_retried_later(self):
        self.api.script = [(403, {"Retry-After": "30"}, {
            "message": "You have exceeded a secondary rate limit. Please "
                       "wait a few minutes before you try again."})]
        self.start_daemon(max_s=120)
        self.post_push("1.3.0", "cdcdcdcd-2222-3333-4444-555555555555")
        deadline = time.time() + 60
        job = None
        while time.time() < deadline:
            js = [j for j in self.jobs() if j["state"] == "failed"]
            if js:
                job = self.d.api("/api/v1/jobs/%d" % js[0]["id"])
                break
            time.sleep(0.1)
        self.assertIsNotNone(job, self.d.log()[-3000:])
        self.assertIn("rate limited", job["error"])
        self.assertIn("retry in 30 s", job["error"])
        # Not retried at once (retry.base_s 1 would, without Retry-After
        # honoured): no second listing within a few seconds.
        lists = len([r for r in self.api.requests if r["method"] == "GET"])
        time.sleep(3)   # the absence of a retry is under test
        self.assertEqual(len([r for r in self.api.requests
                              if r["method"] == "GET"]), lists)
        self.assertEqual(self.api.prs, [])


    def test_alert_carries_pr_url(self):
        got = []

        class Sink(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                got.append(self.rfile.read(n).decode())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        self.addCleanup(sink.server_close)
        self.addCleanup(sink.shutdown)
        self.start_daemon(
            notify_default=["hook"],
            notifiers=[{"name": "hook", "type": "webhook",
                        "url": "http://127.0.0.1:%d/hook"
                        % sink.server_address[1],
                        "on": ["all"], "body": "PR {{pr_url}}"}])
        self.post_push("1.5.0", "a5a5a5a5-2222-3333-4444-555555555555")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "succeeded", job)
        url = job["result"]["detail"]["pr_url"]
        deadline = time.time() + 30
        docs = []
        while time.time() < deadline and not docs:
            docs = [json.loads(b) for b in got
                    if json.loads(b).get("kind") == "update-image"]
            time.sleep(0.1)
        self.assertTrue(docs, got)
        self.assertEqual(docs[0]["pr_url"], url)
        self.assertEqual(docs[0]["text"], "PR " + url)
        self.assertNotIn(API_TOKEN, "".join(got))


class GitHubOverHTTPReviewTest(ReviewFlowBase):
    """The Git side over smart HTTP (git http-backend behind lighttpd):
    the per-update branch is fetched alone, absent first, then found."""
    provider = "github"

    def test_branch_over_http(self):
        srv = os.path.dirname(os.path.dirname(self.bare))
        git("config", "http.receivepack", "true", cwd=self.bare)
        http = GitHTTP(srv, "deployer", "s3cret-http").start()
        self.addCleanup(http.stop)
        self.bare_url = "http://127.0.0.1:%d/git/acme/deploy.git" % http.port
        self.start_daemon()
        main = git("rev-parse", "main", cwd=self.bare)
        for n, ev in enumerate(("11111111-aaaa-3333-4444-555555555555",
                                "22222222-aaaa-3333-4444-555555555555")):
            self.post_push("1.1.0", ev)
            job = self.wait_job(lambda j, n=n: j["id"] == n + 1 and
                                j["state"] in ("succeeded", "failed", "dead"))
            self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(git("rev-parse", "gitopsd/web-1.1.0~1",
                             cwd=self.bare), main)
        self.assertEqual(job["result"]["detail"]["result"], "branch reused")
        self.assertEqual(len(self.api.prs), 1)
        self.assertEqual(git("config", "remote.origin.url", cwd=os.path.join(
            self.d.tmp, "repos", "deploy.git")), self.bare_url)


class GitLabReviewTest(ReviewFlowBase, ReviewFlowMixin):
    provider = "gitlab"

    def test_conflict_is_resolved_by_looking_up(self):
        # An MR the listing does not show yet (a race with another
        # writer): the create answers 409 and the lookup finds it.
        self.start_daemon()
        real_list = self.api.list
        calls = []

        def racy_list(q, rawpath):
            if q.get("state") == "opened":
                calls.append(1)
            if len(calls) == 1 and q.get("state") == "opened":
                self.api._new_pr("gitopsd/web-1.4.0", "main", "by hand", "",
                                 [])
                return 200, {}, []
            return real_list(q, rawpath)
        self.api.list = racy_list
        self.post_push("1.4.0", "efefefef-2222-3333-4444-555555555555")
        job = self.wait_job(self.finished())
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(len(self.api.open_prs("gitopsd/web-1.4.0")), 1)
        self.assertEqual(job["result"]["detail"]["pr"], "updated")
        self.assertTrue(any(r["method"] == "POST" for r in
                            self.api.requests))


class GiteaReviewTest(ReviewFlowBase, ReviewFlowMixin):
    provider = "gitea"


class BitbucketReviewTest(ReviewFlowBase, ReviewFlowMixin):
    provider = "bitbucket"


class BranchTemplateCheckTest(unittest.TestCase):
    def test_invalid_branch_template_refused(self):
        tmp = tempfile.mkdtemp(prefix="gitopsd-review-t-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for tmpl, why in (("gitopsd/{{app}}..{{tag}}", "branch name"),
                          ("gitopsd/{{nope}}", "unknown variable"),
                          ("gitopsd/{{app", "without")):
            cfg = ("state: {path: \"%s/s.db\"}\nworkdir: \"%s/r\"\n"
                   "repos:\n  - {name: d, url: /nonexistent/d.git, "
                   "push_branch: \"%s\"}\n" % (tmp, tmp, tmpl))
            p = os.path.join(tmp, "c.yaml")
            harness.write(p, cfg)
            r = subprocess.run([harness.binary(), "-t", "-c", p],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, (tmpl, r.stdout, r.stderr))
            self.assertIn("push_branch", r.stderr + r.stdout)
            self.assertIn(why, r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
