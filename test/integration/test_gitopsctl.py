"""gitopsctl: exit codes, messages and output against a real gitopsd.

Exit status contract (gitopsctl(1)): 0 ok, 1 the daemon answered with an
error, 2 usage error or daemon unreachable.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "support"))
import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GITOPSD_BUILD", "build-san")
CTL = os.path.join(ROOT, BUILD, "gitopsctl")
GITOPSD = os.path.join(ROOT, BUILD, "gitopsd")


def free_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ctl(*args, env=None, timeout=60):
    e = {k: v for k, v in os.environ.items()
         if k not in ("GITOPSD_URL", "GITOPSD_TOKEN_FILE")}
    if env:
        e.update(env)
    return harness.run_tool([CTL, *args], capture_output=True, text=True,
                            env=e, timeout=timeout)


@unittest.skipUnless(os.access(CTL, os.X_OK), "gitopsctl is not built")
class OfflineTest(unittest.TestCase):
    """What gitopsctl does without a daemon."""

    def test_version(self):
        with open(os.path.join(ROOT, "VERSION")) as f:
            version = f.read().strip()
        p = ctl("--version")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, "gitopsctl %s\n" % version)

    def test_help_documents_exit_codes(self):
        p = ctl("--help")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stderr, "")
        for cmd in ("apps", "app NAME", "jobs", "job ID", "retry ID",
                    "sync APP", "events"):
            self.assertIn("\n  " + cmd, p.stdout)
        for line in ("  0  success", "  1  gitopsd answered with an error",
                     "  2  usage error"):
            self.assertIn(line, p.stdout)

    def test_unreachable_is_2_with_a_message(self):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        for args, env in ((["--url", url, "apps"], None),
                          (["jobs"], {"GITOPSD_URL": url}),
                          (["--json", "sync", "web"], {"GITOPSD_URL": url})):
            p = ctl(*args, env=env)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertIn("cannot reach gitopsd at %s" % url, p.stderr)
            self.assertIn("is gitopsd running?", p.stderr)

    def test_flag_beats_environment(self):
        good, bad = free_port(), free_port()
        p = ctl("--url", "http://127.0.0.1:%d/" % good, "apps",
                env={"GITOPSD_URL": "http://127.0.0.1:%d" % bad})
        self.assertEqual(p.returncode, 2)
        self.assertIn("127.0.0.1:%d:" % good, p.stderr)

    def test_proxy_variables_are_ignored(self):
        # The token must not travel through a proxy: the connection goes
        # to the admin address itself.
        proxy, target = free_port(), free_port()
        p = ctl("--url", "http://127.0.0.1:%d" % target, "apps",
                env={"http_proxy": "http://127.0.0.1:%d" % proxy,
                     "HTTP_PROXY": "http://127.0.0.1:%d" % proxy,
                     "ALL_PROXY": "http://127.0.0.1:%d" % proxy})
        self.assertEqual(p.returncode, 2)
        self.assertIn("port %d" % target, p.stderr)
        self.assertNotIn("port %d" % proxy, p.stderr)

    def test_usage_errors_are_2(self):
        cases = [
            ([], "usage:"),
            (["frobnicate"], 'unknown command "frobnicate"'),
            (["app"], "usage: gitopsctl app NAME"),
            (["app", "a", "b"], "usage: gitopsctl app NAME"),
            (["job", "abc"], '"abc" is not a job id'),
            (["retry", "-3"], None),
            (["retry", "0"], '"0" is not a job id'),
            (["jobs", "--limit", "0"], "--limit: want 1..1000"),
            (["jobs", "--limit", "1001"], "--limit: want 1..1000"),
            (["jobs", "--state", "exploded"], "--state: want"),
            (["jobs", "--kind", "deploy"], "--kind: want"),
            (["apps", "--app", "web"], "apps takes no such option"),
            (["events", "--state", "dead"], "events takes no such option"),
            (["--timeout", "0", "apps"], "--timeout"),
            (["--url", "ftp://x", "apps"], "--url: want"),
            (["--no-such-flag", "apps"], None),
        ]
        for args, msg in cases:
            p = ctl(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
            self.assertEqual(p.stdout, "", args)
            if msg is not None:
                self.assertIn(msg, p.stderr, args)

    def test_token_file_problems_are_2(self):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        p = ctl("--url", url, "--token-file", "/nonexistent/admin.token",
                "apps")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/admin.token", p.stderr)
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                           "gitopsctl-test-%d.token" % os.getpid())
        try:
            with open(tmp, "w") as f:
                f.write("")
            p = ctl("--url", url, "apps", env={"GITOPSD_TOKEN_FILE": tmp})
            self.assertEqual(p.returncode, 2)
            self.assertIn("empty", p.stderr)
            with open(tmp, "w") as f:
                f.write("s3cr3t-line-one\nline-two\n")
            p = ctl("--url", url, "--token-file", tmp, "apps")
            self.assertEqual(p.returncode, 2)
            self.assertIn("more than one line", p.stderr)
            self.assertNotIn("s3cr3t", p.stderr)
        finally:
            os.unlink(tmp)

    def test_man_page_and_help_agree(self):
        p = ctl("--help")
        helpopts = set(re.findall(r"--[a-z][a-z-]+", p.stdout))
        with open(os.path.join(ROOT, "man", "gitopsctl.1")) as f:
            man = f.read().replace("\\-", "-")
        manopts = set(re.findall(r"--[a-z][a-z-]+", man))
        self.assertEqual(helpopts, manopts)


TOKEN = "admin-tok-3f9c2a71"
SECRET = "github-secret-for-gitopsctl"

CLONE_URL = "https://git.example.invalid/acme/deploy.git"

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}", token_file: "{tmp}/admin.token"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: github, type: github, secret_file: "{tmp}/github.secret"}
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0, branch: main}
apps:
  - name: web
    repo: deploy
    path: apps/web
    namespace: web
    cluster: c
    images: [{repository: registry.example.invalid/acme/web}]
  - {name: api-gateway, repo: deploy, path: apps/api, cluster: c}
clusters:
  - {name: c, kubeconfig: "{tmp}/c.kubeconfig"}
"""

FINAL = ("succeeded", "failed", "dead")


def columns(header):
    """Start offsets of the columns of a table header line."""
    return [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]


@unittest.skipUnless(os.access(CTL, os.X_OK) and os.access(GITOPSD, os.X_OK),
                     "gitopsd and gitopsctl are not built")
class DaemonTest(unittest.TestCase):
    """gitopsctl against a real gitopsd with an admin token."""

    def setUp(self):
        self.d = harness.Daemon(CONFIG, secrets={"admin.token": TOKEN + "\n",
                                                 "github.secret": SECRET,
                                                 **harness.DEAD_CLUSTER_FILES})
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.url = "http://127.0.0.1:%d" % self.d.admin_port
        self.token_file = os.path.join(self.d.tmp, "admin.token")

    def run_ctl(self, *args, token=True):
        env = {"GITOPSD_URL": self.url}
        if token:
            env["GITOPSD_TOKEN_FILE"] = self.token_file
        p = ctl(*args, env=env)
        self.assertNotIn(TOKEN, p.stdout + p.stderr)
        return p

    def api(self, method, path):
        return harness.request(self.d.admin_port, method, path, None,
                               {"Authorization": "Bearer " + TOKEN})

    def wait_final(self, job_id, timeout=60):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            p = self.run_ctl("--json", "job", str(job_id))
            self.assertEqual(p.returncode, 0, p.stderr)
            job = json.loads(p.stdout)
            if job["state"] in FINAL:
                return job
            time.sleep(0.1)
        self.fail("job %s never finished" % job_id)

    def test_token_missing_or_wrong_is_1(self):
        p = self.run_ctl("apps", token=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn("gitopsd requires an admin token (HTTP 401", p.stderr)
        bad = os.path.join(self.d.tmp, "wrong.token")
        harness.write(bad, "not-the-token\n")
        p = ctl("--url", self.url, "--token-file", bad, "apps")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("gitopsd refused the admin token (HTTP 401", p.stderr)
        self.assertNotIn("not-the-token", p.stderr)
        # The same 401 body as the API, raw, with --json.
        p = ctl("--url", self.url, "--token-file", bad, "--json", "apps")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["code"], 401)

    def test_apps_table_matches_the_api(self):
        p = self.run_ctl("apps")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "REPO", "CLUSTER",
                                            "NAMESPACE", "REVISION", "HEALTH",
                                            "SYNCED", "LAST-JOB"])
        api = json.loads(self.api("GET", "/api/v1/apps").body)["apps"]
        self.assertEqual([l.split()[0] for l in lines[1:]],
                         [a["name"] for a in api])
        self.assertEqual([a["name"] for a in api], ["web", "api-gateway"])
        # Every row starts its cells where the header's columns start.
        starts = columns(lines[0])
        for line in lines[1:]:
            for c in starts[1:]:
                self.assertEqual(line[c - 2:c], "  ", line)
                self.assertNotEqual(line[c], " ", line)
        row = lines[1].split()
        self.assertEqual(row[1:4], ["deploy", "c", "web"])
        self.assertEqual(row[5], api[0]["health"])
        self.assertFalse(any(l.endswith(" ") for l in lines))

    def test_json_is_the_api_answer(self):
        for args, path in ((["apps"], "/api/v1/apps"),
                           (["app", "web"], "/api/v1/apps/web"),
                           (["jobs"], "/api/v1/jobs"),
                           (["events"], "/api/v1/events")):
            p = self.run_ctl("--json", *args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout),
                             json.loads(self.api("GET", path).body), args)

    def test_app_detail_and_not_found(self):
        p = self.run_ctl("app", "web")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^name: +web$")
        self.assertRegex(p.stdout, r"(?m)^path: +apps/web$")
        self.assertRegex(p.stdout,
                         r"(?m)^  registry\.example\.invalid/acme/web +- +- +"
                         r"not yet$")
        p = self.run_ctl("app", "nope")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("GET /api/v1/apps/nope:", p.stderr)
        self.assertIn("(HTTP 404)", p.stderr)
        # A name that needs escaping reaches the daemon as one segment.
        p = self.run_ctl("app", "../jobs")
        self.assertEqual(p.returncode, 1)
        self.assertIn("(HTTP 404)", p.stderr)

    def test_sync_jobs_job_retry(self):
        p = self.run_ctl("sync", "web")
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.fullmatch(r"app web: sync queued as job (\d+)\n", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        first = int(m.group(1))
        job = self.wait_final(first)
        self.assertEqual((job["kind"], job["app"]), ("sync", "web"))
        p = self.run_ctl("sync", "api-gateway")
        self.assertEqual(p.returncode, 0, p.stderr)
        second = int(p.stdout.split()[-1])
        self.wait_final(second)

        p = self.run_ctl("jobs")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "KIND", "STATE", "APP",
                                            "ATTEMPTS", "TARGET", "UPDATED",
                                            "ERROR"])
        self.assertEqual([int(l.split()[0]) for l in lines[1:]],
                         [second, first])      # newest first
        p = self.run_ctl("jobs", "--app", "web")
        self.assertEqual([int(l.split()[0]) for l in
                          p.stdout.splitlines()[1:]], [first])
        p = self.run_ctl("jobs", "--kind", "update-image")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, "")
        self.assertIn("no jobs found", p.stderr)
        # Paging: one row, then the hint, then the next page.
        p = self.run_ctl("jobs", "--limit", "1")
        self.assertEqual(len(p.stdout.splitlines()), 2)
        m = re.search(r"\(more jobs: add --after (\d+)\)", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        p = self.run_ctl("jobs", "--limit", "1", "--after", m.group(1))
        self.assertEqual(int(p.stdout.splitlines()[1].split()[0]), first)

        p = self.run_ctl("job", str(first))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^id: +%d$" % first)
        self.assertRegex(p.stdout, r"(?m)^kind: +sync$")
        self.assertRegex(p.stdout, r"(?m)^state: +%s$" % job["state"])
        self.assertIn("attempts log:", p.stdout)

        # retry: 200 for a failed or dead job, 409 otherwise.
        p = self.run_ctl("retry", str(first))
        if job["state"] in ("failed", "dead"):
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "job %d: queued\n" % first)
        else:
            self.assertEqual(p.returncode, 1)
            self.assertIn("(HTTP 409)", p.stderr)
        p = self.run_ctl("retry", "999999")
        self.assertEqual(p.returncode, 1)
        self.assertIn("(HTTP 404)", p.stderr)
        p = self.run_ctl("job", "999999")
        self.assertEqual(p.returncode, 1)
        p = self.run_ctl("sync", "nope")
        self.assertEqual(p.returncode, 1)
        self.assertIn("(HTTP 404)", p.stderr)

    def test_events_after_a_push(self):
        body = harness.github_push_body(CLONE_URL,
                                        paths=["apps/web/deploy.yaml"])
        delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        r = self.d.post("/hooks/github", body,
                        harness.github_headers(SECRET, body, delivery))
        self.assertEqual(r.status, 202, r)
        job_ids = r.json().get("jobs")
        p = self.run_ctl("events")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "SOURCE", "RECEIVED",
                                            "KIND", "DELIVERY", "JOBS",
                                            "SUMMARY"])
        self.assertEqual(len(lines), 2, p.stdout)
        row = lines[1].split()
        self.assertEqual(row[1], "github")
        self.assertEqual(row[4], delivery)
        api = json.loads(self.api("GET", "/api/v1/events").body)["events"]
        self.assertEqual(row[5], ",".join(str(j) for j in api[0]["jobs"]))
        if job_ids is not None:
            self.assertEqual(sorted(api[0]["jobs"]), sorted(job_ids))
        self.assertGreater(len(api[0]["jobs"]), 0)
        # The job made by the push names its delivery.
        p = self.run_ctl("job", str(api[0]["jobs"][0]))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^source: +github$")
        self.assertRegex(p.stdout, r"(?m)^delivery: +%s$" % delivery)
        self.assertRegex(p.stdout, r"(?m)^app: +web$")

    def test_events_empty(self):
        p = self.run_ctl("events")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn("no events found", p.stderr)

    def test_online_backup_while_running(self):
        # docs/operations.md: sqlite3 ".backup" copies a consistent
        # database while gitopsd runs and writes.
        sqlite3 = shutil.which("sqlite3")
        if sqlite3 is None:
            self.skipTest("sqlite3 not installed")
        ids = []
        for app in ("web", "api-gateway", "web"):
            p = self.run_ctl("sync", app)
            self.assertEqual(p.returncode, 0, p.stderr)
            ids.append(int(p.stdout.split()[-1]))
        for i in ids:
            self.wait_final(i)
        dest = os.path.join(self.d.tmp, "backup.db")
        p = subprocess.run([sqlite3, os.path.join(self.d.tmp, "state.db"),
                            ".backup '%s'" % dest], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([sqlite3, dest, "PRAGMA integrity_check"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout.strip(), "ok", p.stderr)
        # The daemon still answers, and a daemon started on the backup
        # serves the same jobs.
        p = self.run_ctl("--json", "jobs")
        live = json.loads(p.stdout)["jobs"]
        self.d.stop()
        shutil.copy(dest, os.path.join(self.d.tmp, "state.db"))
        for ext in ("-wal", "-shm"):
            try:
                os.unlink(os.path.join(self.d.tmp, "state.db" + ext))
            except FileNotFoundError:
                pass
        self.d.start()
        p = self.run_ctl("--json", "jobs")
        self.assertEqual(p.returncode, 0, p.stderr)
        restored = json.loads(p.stdout)["jobs"]
        self.assertEqual([j["id"] for j in restored], [j["id"] for j in live])
        self.assertEqual(sorted(ids), sorted(j["id"] for j in restored))

    def test_daemon_gone_is_2(self):
        self.d.stop()
        p = self.run_ctl("apps")
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot reach gitopsd at " + self.url, p.stderr)


if __name__ == "__main__":
    unittest.main()
