"""Faults around a real gitopsd, each with real peers on 127.0.0.1 and a
bound in time; each test stops what it starts.

DiskFullTest       the state database cannot grow (RLIMIT_FSIZE): 503 with
                   Retry-After, nothing answered 202 is lost, 202 again once
                   the limit is raised on the running process.
GitRemoteFaultTest the Git remote down (retries, then dead with the reason;
                   or back in time: succeeds), refusing the push (pre-receive
                   hook), refusing the credentials (dead at once, git-auth).
KubeFaultTest      the Kubernetes API answering 503, dropping connections or
                   never answering (request timeout) in the middle of an
                   apply: the sync retries and nothing is pruned until an
                   attempt applied everything.
SinkDownTest       Slack/webhook/SMTP receivers down: the alerts wait as
                   failed notify jobs with the error, are delivered once when
                   the receivers come back.
KillDuringPushTest kill -9 while the push is in flight (a slow pre-receive
                   hook): after a restart the job succeeds with exactly one
                   commit carrying its trailer on the branch, whether the
                   interrupted push lands on the remote or not.
DiskFullJobTest    an attempt ending while the disk is full is recorded once
                   there is space, without a restart, and logged and
                   counted once.
StateDiskJobTest   the same on a tmpfs filled to the last page; stopped and
                   started again while full, it waits for room.
StateDiskStartTest gitopsd started while its state directory (a tmpfs) is
                   full or read-only: it runs and answers 503 until the disk
                   is writable, then accepts without a restart.
"""
import errno
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

import harness
from fault_peers import (CT_V1, GitHTTP, HangProxy, Kubesim, PipeLogDaemon,
                         all_pages, git, make_repo, registry_push, set_hook,
                         wait_for)
from notify_receivers import Receiver

SECRET = "faults-github-secret-5d1e"
TOKEN = "faults-registry-token-93ab7c"
REGISTRY = "registry.test:5000"
DEAD_URL = "https://git.example.invalid/acme/deploy.git"


def daemon_built():
    try:
        harness.binary()
        return True
    except RuntimeError:
        return False


def push_body(clone_url, after=None, paths=None):
    return harness.github_push_body(
        clone_url, after=after,
        paths=paths if paths is not None else ["apps/web/d.yaml"])


def post_push(d, body, delivery, timeout=30):
    return d.post("/hooks/github", body,
                  harness.github_headers(SECRET, body, delivery),
                  timeout=timeout)


def job_detail(d, job_id):
    return d.api("/api/v1/jobs/%d" % job_id)


# ---- a. the state database's disk is full --------------------------------

def disk_config(state="{tmp}/state.db"):
    return harness.config(
        state={"path": state},
        retry={"base_s": 60, "max_s": 300},
        repos=[{"name": "deploy", "url": DEAD_URL, "branch": "main"}],
        apps=[{"name": "web", "repo": "deploy", "path": "apps/web",
               "cluster": "c"}],
        clusters=harness.DEAD_CLUSTERS)


DISK_CONFIG = disk_config()


def can_mount_tmpfs():
    return os.geteuid() == 0 and shutil.which("mount") is not None


def fill_fs(directory):
    """Fill the file system of directory to the last page; returns the
    filler's path (unlink it to make room)."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 16, 4096):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return path


def healthz(d):
    """/healthz's status, None while nothing listens; fails at once if
    gitopsd exited."""
    if d.proc.poll() is not None:
        raise AssertionError("gitopsd exited %d:\n%s" % (
            d.proc.returncode, d.log()[-3000:]))
    try:
        return d.admin("GET", "/healthz").status
    except OSError:
        return None


STATE_DISK_CONFIG = disk_config("{tmp}/state/state.db")


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class DiskFullTest(unittest.TestCase):
    # Enough for the schema and a few rounds; pushes with a 48 KiB payload
    # fill it within a few dozen deliveries.
    FSIZE = 512 * 1024

    def setUp(self):
        self.d = PipeLogDaemon(DISK_CONFIG, secrets={
            "github.secret": SECRET, **harness.DEAD_CLUSTER_FILES})
        self.addCleanup(self.d.cleanup)

    def events(self):
        return {e["delivery"]: e for e in
                all_pages(self.d, "/api/v1/events", "events")}

    def test_disk_full_503_nothing_lost_recovers(self):
        d = self.d
        d.fsize = self.FSIZE
        d.start()
        pid = d.proc.pid
        answers = {}
        refused = []
        # A large payload (a push with many paths) makes each store round
        # write many pages, so the limit is reached quickly.
        paths = ["apps/web/%04d-%s.yaml" % (i, "x" * 40) for i in range(800)]
        for i in range(400):
            delivery = "disk-%04d-%s" % (i, uuid.uuid4().hex[:8])
            body = push_body(DEAD_URL, paths=paths)
            r = post_push(d, body, delivery)
            answers[delivery] = (r.status, body)
            if r.status == 503:
                refused.append((delivery, r))
                if len(refused) >= 5:
                    break
            else:
                self.assertEqual(r.status, 202, r)
        self.assertEqual(len(refused), 5,
                         "the file-size limit was never reached:\n" +
                         d.log()[-3000:])
        for delivery, r in refused:
            self.assertIn("Retry-After", r.headers, r.headers)
            self.assertEqual(r.headers["Retry-After"], "5")
            self.assertTrue(r.json().get("error"), r)
        self.assertIsNone(d.proc.poll(), "gitopsd died on a full disk")
        # Reads still work while writes fail.
        self.assertEqual(d.admin("GET", "/healthz").status, 200)
        stored = self.events()
        accepted = [k for k, v in answers.items() if v[0] == 202]
        for delivery in accepted:
            self.assertIn(delivery, stored)
        for delivery, _ in refused:
            self.assertNotIn(delivery, stored)

        # Space returns: the next round works without a restart.
        subprocess.run(["prlimit", "--pid", str(pid),
                        "--fsize=unlimited:unlimited"],
                       check=True)
        for delivery, _ in refused:
            body = answers[delivery][1]
            r = wait_for("202 after the limit was raised",
                         lambda: (lambda r: r if r.status == 202 else None)(
                             post_push(d, body, delivery)), timeout=20,
                         interval=0.5)
            self.assertEqual(r.status, 202, r)
            answers[delivery] = (202, body)
        fresh = "disk-after-" + uuid.uuid4().hex[:8]
        r = post_push(d, push_body(DEAD_URL), fresh)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])

        # After a restart, every delivery answered 202 is there once.
        d.fsize = None
        d.start()
        stored = self.events()
        accepted = [k for k, v in answers.items() if v[0] == 202] + [fresh]
        for delivery in accepted:
            self.assertIn(delivery, stored)
        # Once each: no delivery stored twice, nothing else stored.
        everything = all_pages(d, "/api/v1/events", "events")
        self.assertEqual(sorted(e["delivery"] for e in everything),
                         sorted(accepted))
        jobs = all_pages(d, "/api/v1/jobs?kind=sync", "jobs")
        job_ids = {j["id"] for j in jobs}
        for delivery in accepted:
            for j in stored[delivery]["jobs"]:
                self.assertIn(j, job_ids)
        print("\ndisk full: %d accepted before the limit, 503 after; "
              "recovered" % (len(accepted) - len(refused) - 1))


def disk_sync_config(state="{tmp}/state.db"):
    return harness.config(
        state={"path": state},
        retry={"base_s": 1, "max_s": 1, "max_attempts": 3},
        repos=[{"name": "deploy", "url": "%(url)s", "branch": "main"}],
        clusters=[{"name": "sim", "kubeconfig": "%(kubeconfig)s"}],
        apps=[{"name": "demo", "repo": "deploy", "path": "apps/demo",
               "cluster": "sim", "namespace": "demo",
               "sync": {"auto": True, "timeout_s": 2}}])


DISK_SYNC_CONFIG = disk_sync_config()

SLOW_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: "registry.example/web:1-slow"}
"""


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class DiskFullJobTest(unittest.TestCase):
    """An attempt that ends while the disk is full is recorded once there
    is space again, without a restart, and the app is not left blocked."""

    config = DISK_SYNC_CONFIG

    def make_daemon(self, config):
        d = PipeLogDaemon(config, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.fsize = 1 << 40       # soft limit, lowered while running
        return d

    def make_full(self, d):
        subprocess.run(["prlimit", "--pid", str(d.proc.pid),
                        "--fsize=1:unlimited"], check=True)

    def make_room(self, d):
        subprocess.run(["prlimit", "--pid", str(d.proc.pid),
                        "--fsize=unlimited:unlimited"], check=True)

    def fill_during_attempt(self):
        """A daemon whose disk fills while a sync attempt runs and stays
        full until that attempt ended; returns (daemon, job id)."""
        sim = Kubesim()
        self.addCleanup(sim.stop)
        tmp = tempfile.mkdtemp(prefix="gitopsd-faults-diskjob-")
        self.addCleanup(shutil.rmtree, tmp, True)
        bare = make_repo(tmp, "deploy", {
            "apps/demo/ns.yaml": NS, "apps/demo/web.yaml": SLOW_DEPLOYMENT})
        rev = git("rev-parse", "main", cwd=bare)
        d = self.make_daemon(self.config % {"url": bare,
                                            "kubeconfig": sim.kubeconfig})
        d.start()
        body = push_body(bare, after=rev, paths=["apps/demo/web.yaml"])
        r = post_push(d, body, "diskjob-1")
        self.assertEqual(r.status, 202, r)
        job_id = r.json()["jobs"][0]
        wait_for("the sync running", lambda: job_detail(d, job_id)["state"]
                 == "running", timeout=30, interval=0.05)
        self.make_full(d)
        # The attempt times out (2 s) while nothing can be written; stay
        # full long enough for the store to try recording it several times.
        t_full = time.time()
        r = post_push(d, push_body(bare, after=rev, paths=[]), "diskjob-2")
        self.assertEqual(r.status, 503, r)
        time.sleep(max(0, 9 - (time.time() - t_full)))     # under test
        self.assertEqual(job_detail(d, job_id)["state"], "running")
        return d, job_id

    def finishes_and_app_free(self, d, job_id, nlog):
        # Every attempt is recorded and the job ends dead (the rollout
        # never finishes) after max_attempts.
        job = wait_for("job %d final" % job_id, lambda: (
            lambda j: j if j["state"] in ("succeeded", "dead") else None)(
                job_detail(d, job_id)), timeout=60)
        self.assertEqual(job["state"], "dead", job)
        self.assertEqual(job["result"]["error_kind"], "timeout", job)
        self.assertEqual(len(job["attempts_log"]), nlog, job)
        for a in job["attempts_log"]:
            self.assertIsNotNone(a["ended"], job)
        # The app is free again: a manual sync runs.
        r = d.admin("POST", "/api/v1/apps/demo/sync")
        self.assertIn(r.status, (200, 202), r)
        new_id = r.json()["job"] if "job" in r.json() else r.json()["id"]
        wait_for("the manual sync running", lambda: job_detail(
            d, new_id)["state"] != "queued", timeout=30)
        return job

    def test_attempt_ending_while_full(self):
        d, job_id = self.fill_during_attempt()
        self.make_room(d)
        t_space = time.time()
        # Without a restart the job goes on.
        try:
            wait_for("job %d dead" % job_id, lambda: job_detail(
                d, job_id)["state"] == "dead", timeout=60)
        except AssertionError as e:
            # Rare in CI: keep what the daemon said, to see which step held.
            raise AssertionError("%s\n%r\n%s" % (
                e, job_detail(d, job_id), d.log()[-6000:])) from None
        # Each attempt is logged and counted once, although the store
        # tried to record the first one in every round while full.
        lines = re.findall(r"job %d sync app=demo \S+ attempt=(\d): (\w+)"
                           % job_id, d.log())
        self.assertEqual(lines, [("1", "failed"), ("2", "failed"),
                                 ("3", "dead")], d.log()[-3000:])
        metrics = d.admin("GET", "/metrics").body.decode()
        for result, n in (("failed", 2), ("dead", 1)):
            m = re.search(r'^gitopsd_jobs_total\{kind="sync",result="%s"\}'
                          r' (\d+)$' % result, metrics, re.M)
            self.assertIsNotNone(m, metrics)
            self.assertEqual(int(m.group(1)), n, result)
        self.finishes_and_app_free(d, job_id, 3)
        print("\ndisk full during an attempt: recorded, job finished %.1f s "
              "after space returned" % (time.time() - t_space))

    def test_stopped_while_full(self):
        d, job_id = self.fill_during_attempt()
        # SIGTERM while the attempt's result cannot be written: a clean
        # exit; the next start re-queues the job with that attempt counted.
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        d.fsize = None
        d.start()
        job = self.finishes_and_app_free(d, job_id, 3)
        self.assertIn("interrupted", job["attempts_log"][0]["error"], job)


@unittest.skipUnless(daemon_built(), "gitopsd not built")
@unittest.skipUnless(can_mount_tmpfs(), "mounting a tmpfs needs root")
class StateDiskJobTest(DiskFullJobTest):
    """The same on a state directory that is a real file system filling
    up (a 2 MiB tmpfs, filled to the last page): ENOSPC, not EFBIG."""

    config = disk_sync_config("{tmp}/state/state.db")

    def make_daemon(self, config):
        d = PipeLogDaemon(config, secrets={"github.secret": SECRET})
        self.state = os.path.join(d.tmp, "state")
        os.mkdir(self.state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                        self.state], check=True)
        self.addCleanup(d.cleanup)
        self.addCleanup(subprocess.run, ["umount", self.state], check=True)
        self.addCleanup(d.stop)
        return d

    def make_full(self, d):
        self.filler = fill_fs(self.state)

    def make_room(self, d):
        os.unlink(self.filler)

    def test_stopped_while_full(self):
        # Stopped while the attempt's end cannot be written, started again
        # while the disk is still full: the new process runs without its
        # store (webhooks 503) and, once there is room, re-queues the job
        # with the attempt counted as interrupted, without a restart.
        d, job_id = self.fill_during_attempt()
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        d.start(wait=False)
        wait_for("/healthz", lambda: healthz(d) == 200, timeout=30)
        self.assertEqual(d.admin("GET", "/readyz").status, 503)
        self.make_room(d)
        d.wait_ready()
        job = self.finishes_and_app_free(d, job_id, 3)
        self.assertIn("interrupted", job["attempts_log"][0]["error"], job)


@unittest.skipUnless(daemon_built(), "gitopsd not built")
@unittest.skipUnless(can_mount_tmpfs(), "mounting a tmpfs needs root")
class StateDiskStartTest(unittest.TestCase):
    """gitopsd started while its state directory (a small tmpfs) is full
    or read-only: it runs, /healthz 200, /readyz 503, webhooks 503 with
    Retry-After; once the disk is writable it accepts without a restart."""

    def setUp(self):
        self.d = harness.Daemon(STATE_DISK_CONFIG,
                                secrets={"github.secret": SECRET,
                                         **harness.DEAD_CLUSTER_FILES})
        self.state = os.path.join(self.d.tmp, "state")
        os.mkdir(self.state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                        self.state], check=True)
        # Cleanups run last-in first-out: the daemon stops, then unmount.
        self.addCleanup(self.d.cleanup)
        self.addCleanup(subprocess.run, ["umount", self.state], check=True)
        self.addCleanup(self.d.stop)

    def fill(self):
        return fill_fs(self.state)

    def push(self, delivery):
        return post_push(self.d, push_body(DEAD_URL, after="c" * 40),
                         delivery)

    def started_unavailable(self):
        """Start without waiting for readiness (it does not come): the
        process keeps running and answers as a full disk demands."""
        d = self.d
        d.start(wait=False)
        wait_for("/healthz", lambda: self.healthz() == 200, timeout=30)
        self.assertIsNone(d.proc.poll(), d.log()[-3000:])
        time.sleep(1.5)         # a few store retries: still alive
        self.assertIsNone(d.proc.poll(), d.log()[-3000:])
        self.assertEqual(self.healthz(), 200)
        self.assertEqual(d.admin("GET", "/readyz").status, 503)
        r = self.push("while-unavailable")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.headers.get("Retry-After"), "5", r.headers)
        self.assertEqual(d.admin("GET", "/api/v1/jobs").status, 503)
        self.assertIn("starting without it", d.log())
        self.assertRegex(d.admin("GET", "/metrics").body.decode(),
                         r"(?m)^gitopsd_store_available 0$")

    def healthz(self):
        return healthz(self.d)

    def accepts_again(self, before=None):
        d = self.d
        r = wait_for("202 once the disk is writable", lambda: (
            lambda r: r if r.status == 202 else None)(
                self.push("while-unavailable")), timeout=20, interval=0.3)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(d.admin("GET", "/readyz").status, 200)
        self.assertRegex(d.admin("GET", "/metrics").body.decode(),
                         r"(?m)^gitopsd_store_available 1$")
        delivered = {e["delivery"] for e in
                     all_pages(d, "/api/v1/events", "events")}
        self.assertIn("while-unavailable", delivered)
        if before is not None:
            self.assertIn(before, delivered)
            # The dedup window was loaded when the store opened.
            self.assertEqual(self.push(before).status, 200)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])

    def stored_once(self):
        """A delivery stored by a first run, which then stops."""
        self.d.start()
        self.assertEqual(self.push("before").status, 202)
        self.assertEqual(self.d.stop(), 0, self.d.log()[-3000:])
        return "before"

    def test_restart_while_full(self):
        before = self.stored_once()
        filler = self.fill()
        self.started_unavailable()
        os.unlink(filler)
        self.accepts_again(before)

    def test_first_start_on_a_full_disk(self):
        # No database file yet, and no room to create one.
        filler = self.fill()
        self.started_unavailable()
        # Stopped before the store ever opened: a clean exit.
        self.assertEqual(self.d.stop(), 0, self.d.log()[-3000:])
        self.started_unavailable()
        os.unlink(filler)
        self.accepts_again()

    def test_missing_directory_still_stops_the_start(self):
        # A mistake in the configuration, not a state of the disk: waiting
        # cannot fix it, so the start fails as before.
        self.d.write_config(disk_config("{tmp}/state/missing/state.db"))
        self.d.start(wait=False)
        self.assertEqual(self.d.proc.wait(30), 1)
        self.assertIn("state store:", self.d.log())
        self.assertNotIn("starting without it", self.d.log())

    def test_restart_on_a_read_only_disk(self):
        before = self.stored_once()
        subprocess.run(["mount", "-o", "remount,ro", self.state], check=True)
        self.started_unavailable()
        subprocess.run(["mount", "-o", "remount,rw", self.state], check=True)
        self.accepts_again(before)


# ---- b. the Git remote down or refusing ----------------------------------

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

def git_config(url, attempts, notify=None, **keys):
    """The Git job's configuration; notify names the app's notifier (in
    keys["notifiers"]), other keys are added."""
    app = {"name": "web", "repo": "deploy", "path": "apps/web",
           "images": [{"repository": REGISTRY + "/acme/web",
                       "policy": {"semver": ">=1.0.0"}}]}
    if notify is not None:
        app["notify"] = [notify]
    return harness.config(
        retry={"base_s": 1, "max_s": 1, "max_attempts": attempts},
        git={"push_retries": 1},
        sources=[{"name": "registry", "type": "registry",
                  "token_file": "registry.token", "verify_tag": False}],
        repos=[{"name": "deploy", "url": url, "branch": "main",
                "auth": {"username": "deployer",
                         "password_file": "git.password"}}],
        apps=[app], **keys)

GIT_PASSWORD = "faults-git-password-61c0"


class GitJobMixin:
    attempts = 3

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-faults-git-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.srv = os.path.join(self.tmp, "srv")
        os.makedirs(self.srv)
        self.bare = make_repo(self.srv, "deploy",
                              {"apps/web/deployment.yaml": DEPLOYMENT,
                               "README.md": "deploy\n"})
        git("config", "http.receivepack", "true", cwd=self.bare)
        self.http = GitHTTP(self.srv, "deployer", GIT_PASSWORD)
        self.addCleanup(self.http.stop)

    def daemon(self, password=GIT_PASSWORD, tmp=None, ports=None):
        d = harness.Daemon(
            git_config(self.http.url("deploy.git"), self.attempts),
            secrets={"registry.token": TOKEN + "\n",
                     "git.password": password + "\n"}, tmp=tmp, ports=ports)
        self.addCleanup(d.cleanup)
        return d

    def image_event(self, d, tag, event_id=None):
        body = registry_push(REGISTRY, "acme/web", tag,
                             event_id or str(uuid.uuid4()))
        r = d.post("/hooks/registry", body, {
            "Content-Type": CT_V1, "Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 202, r)
        job_ids = r.json()["jobs"]
        self.assertEqual(len(job_ids), 1, r)
        return job_ids[0]

    def wait_final(self, d, job_id, timeout=60):
        return wait_for("job %d final" % job_id, lambda: (
            lambda j: j if j["state"] in ("succeeded", "dead") else None)(
                job_detail(d, job_id)), timeout=timeout)

    def trailer_commits(self, job_id):
        log = git("log", "--format=%H%n%B%n--end--", "main", cwd=self.bare)
        return [c for c in log.split("--end--")
                if re.search(r"^Gitopsd-Job: %d$" % job_id, c, re.M)]


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class GitRemoteFaultTest(GitJobMixin, unittest.TestCase):
    def test_remote_down_retries_then_dead_with_reason(self):
        d = self.daemon().start()       # lighttpd never started: refused
        job_id = self.image_event(d, "1.1.0")
        job = self.wait_final(d, job_id)
        self.assertEqual(job["state"], "dead", job)
        self.assertEqual(job["attempts"], self.attempts, job)
        self.assertEqual(job["result"]["error_kind"], "git", job)
        err = job["error"] if job.get("error") else job["result"]["error"]
        self.assertIn("Connection refused", err, job)
        self.assertEqual(len(job["attempts_log"]), self.attempts, job)
        for a in job["attempts_log"]:
            self.assertIsNotNone(a["ended"], a)
        self.assertNotIn(GIT_PASSWORD, json.dumps(job))

    def test_remote_back_before_last_attempt_succeeds(self):
        d = self.daemon().start()
        job_id = self.image_event(d, "1.2.0")
        wait_for("a failed attempt", lambda: job_detail(d, job_id)
                 ["attempts"] >= 1 and job_detail(d, job_id)["state"]
                 in ("failed", "queued", "running"))
        self.http.start()
        job = self.wait_final(d, job_id)
        self.assertEqual(job["state"], "succeeded", job)
        self.assertGreaterEqual(job["attempts"], 2, job)
        self.assertEqual(len(self.trailer_commits(job_id)), 1)
        self.assertEqual(git("rev-parse", "main", cwd=self.bare),
                         job["result"]["commit"])

    def test_push_refused_by_hook_retries_then_dead(self):
        set_hook(self.bare, "pre-receive",
                 "echo 'refused: branch main is frozen' >&2\nexit 1\n")
        self.http.start()
        before = git("rev-parse", "main", cwd=self.bare)
        d = self.daemon().start()
        job_id = self.image_event(d, "1.3.0")
        job = self.wait_final(d, job_id)
        self.assertEqual(job["state"], "dead", job)
        self.assertEqual(job["attempts"], self.attempts, job)
        self.assertEqual(job["result"]["error_kind"], "git", job)
        self.assertIn("pre-receive hook declined", job["error"])
        self.assertEqual(job["attempts_log"][-1]["error"], job["error"])
        self.assertEqual(git("rev-parse", "main", cwd=self.bare), before)

    def test_credentials_refused_dead_at_once(self):
        self.http.start()
        d = self.daemon(password="faults-wrong-password-77").start()
        job_id = self.image_event(d, "1.4.0")
        job = self.wait_final(d, job_id)
        # Retrying cannot fix credentials: dead at the first attempt.
        self.assertEqual((job["state"], job["attempts"]), ("dead", 1), job)
        self.assertEqual(job["result"]["error_kind"], "git-auth", job)
        self.assertNotIn("faults-wrong-password-77", json.dumps(job))
        self.assertNotIn("faults-wrong-password-77", d.log())


# ---- e. kill -9 while the push is in flight -------------------------------

@unittest.skipUnless(daemon_built(), "gitopsd not built")
class KillDuringPushTest(GitJobMixin, unittest.TestCase):
    attempts = 5

    def test_kill9_during_push_one_commit(self):
        self.kill_during_push(wait_for_remote=False)

    def test_kill9_push_completes_on_remote_one_commit(self):
        # The remote finishes the interrupted push (or not) before gitopsd
        # restarts: either way one commit.
        self.kill_during_push(wait_for_remote=True)

    def kill_during_push(self, wait_for_remote):
        marker = os.path.join(self.tmp, "push-started")
        finished = os.path.join(self.tmp, "hook-finished")
        # The first push stalls in pre-receive (objects received, ref not
        # yet moved); gitopsd is killed then.
        set_hook(self.bare, "pre-receive",
                 "cat >/dev/null\n"
                 "if [ ! -e '%s' ]; then touch '%s'; sleep 3;"
                 " touch '%s'; fi\n"
                 "exit 0\n" % (marker, marker, finished))
        self.http.start()
        tmp = tempfile.mkdtemp(prefix="gitopsd-faults-kill-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ports = (harness.free_port(), harness.free_port())
        d = self.daemon(tmp=tmp, ports=ports).start()
        job_id = self.image_event(d, "1.5.0")
        wait_for("the push in flight", lambda: os.path.exists(marker),
                 timeout=60, interval=0.02)
        self.assertEqual(job_detail(d, job_id)["state"], "running")
        before = git("rev-parse", "main", cwd=self.bare)
        d.kill9()
        landed = None
        if wait_for_remote:
            wait_for("the interrupted hook to end",
                     lambda: os.path.exists(finished), timeout=20)
            # The ref update, if the push lands at all, follows the hook:
            # either outcome is valid, so there is no state to wait for.
            time.sleep(0.5)
            landed = git("rev-parse", "main", cwd=self.bare) != before
        d2 = self.daemon(tmp=tmp, ports=ports).start()
        job = self.wait_final(d2, job_id, timeout=90)
        self.assertEqual(job["state"], "succeeded", job)
        self.assertIn("interrupted", json.dumps(job["attempts_log"]))
        commits = self.trailer_commits(job_id)
        self.assertEqual(len(commits), 1, commits)
        self.assertEqual(git("show", "main:apps/web/deployment.yaml",
                             cwd=self.bare),
                         DEPLOYMENT.replace("1.0.0", "1.5.0").rstrip("\n"))
        # Exactly one commit was added to main.
        self.assertEqual(git("rev-list", "--count", "main", cwd=self.bare),
                         "2")
        detail = job["result"].get("detail") or {}
        if landed:
            self.assertNotIn("commit", job["result"], job)
        print("\nkill -9 during a push: the interrupted push %s; %d "
              "attempts, last: %s" % (
                  {None: "raced the restart", True: "landed",
                   False: "was dropped"}[landed], job["attempts"],
                  detail.get("result") or detail))


# ---- c. the Kubernetes API failing mid-apply ------------------------------

KUBE_CONFIG = harness.config(
    retry={"base_s": 1, "max_s": 1, "max_attempts": 20},
    repos=[{"name": "deploy", "url": "%(url)s", "branch": "main"}],
    clusters=[{"name": "sim", "kubeconfig": "%(kubeconfig)s"}],
    apps=[{"name": "demo", "repo": "deploy", "path": "apps/demo",
           "cluster": "sim", "namespace": "demo",
           "sync": {"auto": True, "prune": True, "timeout_s": 30}}])

NS = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n"


def configmap(name, value):
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
            "data:\n  value: \"%s\"\n" % (name, value))


CM = "/api/v1/namespaces/demo/configmaps/"


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class KubeFaultTest(unittest.TestCase):
    def setUp(self):
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-faults-kube-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = os.path.join(self.tmp, "deploy.git")
        self.work = os.path.join(self.tmp, "work")
        git("init", "-q", "--bare", self.bare)
        git("init", "-q", self.work)

    def daemon(self, kubeconfig):
        self.d = harness.Daemon(
            KUBE_CONFIG % {"url": self.bare, "kubeconfig": kubeconfig},
            secrets={"github.secret": SECRET})
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def commit(self, files):
        app = os.path.join(self.work, "apps", "demo")
        shutil.rmtree(app, ignore_errors=True)
        for rel, text in files.items():
            harness.write(os.path.join(app, rel), text, mode=0o644)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", "change", cwd=self.work)
        git("push", "-q", self.bare, "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def sync(self, rev):
        body = push_body(self.bare, after=rev, paths=["apps/demo/x.yaml"])
        r = post_push(self.d, body, str(uuid.uuid4()))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(len(r.json()["jobs"]), 1, r)
        return r.json()["jobs"][0]

    def final(self, job_id, timeout=60):
        return wait_for("sync job %d final" % job_id, lambda: (
            lambda j: j if j["state"] in ("succeeded", "dead") else None)(
                job_detail(self.d, job_id)), timeout=timeout)

    def fault_mid_apply(self, fault, proxy=None):
        self.daemon(proxy.kubeconfig if proxy else self.sim.kubeconfig)
        first = self.commit({"0-ns.yaml": NS,
                             "1-keep.yaml": configmap("keep", "1"),
                             "2-old.yaml": configmap("old", "1")})
        job = self.final(self.sync(first))
        self.assertEqual(job["state"], "succeeded", job)
        self.assertTrue(self.sim.exists(CM + "old"))

        # The next revision drops "old"; applying "keep" fails.
        second = self.commit({"0-ns.yaml": NS,
                              "1-keep.yaml": configmap("keep", "2")})
        self.sim.call("DELETE", "/_sim/requests")
        if proxy is not None:
            return self.hang_mid_apply(proxy, second)
        fault = dict(fault, method="PATCH", path="/configmaps/keep$")
        self.assertEqual(self.sim.call("POST", "/_sim/faults", fault)[0],
                         200)
        job_id = self.sync(second)
        job = wait_for("two failed attempts", lambda: (
            lambda j: j if j["attempts"] >= 2 and j["state"] != "running"
            else None)(job_detail(self.d, job_id)), timeout=60)
        self.assertIn(job["state"], ("failed", "queued"), job)
        self.assertEqual(job["result"]["error_kind"], "unreachable", job)
        # The failed attempts pruned nothing.
        self.assertTrue(self.sim.exists(CM + "old"))
        reqs = self.sim.requests()
        self.assertFalse([r for r in reqs if r["method"] == "DELETE"], reqs)
        self.assertTrue([r for r in reqs if r["method"] == "PATCH" and
                         r["path"].endswith("/configmaps/keep")], reqs)

        # The API recovers: the next attempt applies everything, then prunes.
        self.sim.call("DELETE", "/_sim/faults")
        return self.after_recovery(job_id)

    def after_recovery(self, job_id):
        job = self.final(job_id, timeout=120)
        self.assertEqual(job["state"], "succeeded", job)
        self.assertFalse(self.sim.exists(CM + "old"))
        st, keep = self.sim.call("GET", CM + "keep")
        self.assertEqual(keep["data"]["value"], "2")
        self.assertEqual(job["result"]["detail"]["pruned"], 1, job)
        # The only DELETE came after "keep" was applied.
        reqs = self.sim.requests()
        deletes = [i for i, r in enumerate(reqs) if r["method"] == "DELETE"]
        self.assertEqual([reqs[i]["path"] for i in deletes], [CM + "old"])
        applied = [i for i, r in enumerate(reqs) if r["method"] == "PATCH"
                   and r["path"] == CM + "keep"]
        self.assertLess(applied[-1], deletes[0])
        return job

    def hang_mid_apply(self, proxy, second):
        proxy.hang("PATCH", "/configmaps/keep$")
        job_id = self.sync(second)
        wait_for("the apply hanging", lambda: proxy.hung, timeout=30)
        t0 = time.time()
        time.sleep(1)   # the hang is under test: a second of it
        # While the request hangs nothing is pruned.
        self.assertEqual(job_detail(self.d, job_id)["state"], "running")
        self.assertTrue(self.sim.exists(CM + "old"))
        self.assertFalse([r for r in self.sim.requests()
                          if r["method"] == "DELETE"])
        job = self.after_recovery(job_id)
        first = job["attempts_log"][0]
        self.assertFalse(first["ok"], job)
        self.assertRegex(first["error"], r"(?i)timed? ?out", job)
        self.assertEqual(job["attempts"], 2, job)
        print("\nKubernetes API hanging mid-apply: attempt 1 gave up "
              "after %.0f s, attempt 2 applied and pruned" %
              (time.time() - t0))

    def test_request_timeout_mid_apply_retries_without_prune(self):
        # A request that never gets an answer is cut by the per-request
        # timeout (60 s): this test takes about a minute.
        proxy = HangProxy(self.sim)
        self.addCleanup(proxy.stop)
        self.fault_mid_apply(None, proxy=proxy)

    def test_503_mid_apply_retries_without_prune(self):
        self.fault_mid_apply({"status": 503})

    def test_dropped_connections_mid_apply_retry_without_prune(self):
        self.fault_mid_apply({"drop": True})


# ---- d. notification receivers down ---------------------------------------

def notify_config(http, smtp):
    return harness.config(
        retry={"base_s": 1, "max_s": 1, "max_attempts": 1},
        notify={"max_attempts": 50, "timeout_s": 3},
        repos=[{"name": "deploy", "url": DEAD_URL, "branch": "main"}],
        apps=[{"name": "web", "repo": "deploy", "path": "apps/web",
               "cluster": "c", "notify": ["ops-slack", "audit", "mail"]}],
        clusters=harness.DEAD_CLUSTERS,
        notifiers=[{"name": "ops-slack", "type": "slack",
                    "url_file": "slack.url"},
                   {"name": "audit", "type": "webhook",
                    "url": "http://127.0.0.1:%d/hook" % http,
                    "secret_file": "hook.secret"},
                   {"name": "mail", "type": "email",
                    "smtp_url": "smtp://127.0.0.1:%d" % smtp,
                    "from": "gitopsd@example.test",
                    "to": ["oncall@example.test"]}])


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class SinkDownTest(unittest.TestCase):
    def test_receivers_down_then_up_delivered_once(self):
        http = Receiver("http", secret="faults-hook-secret").start()
        smtp = Receiver("smtp").start()
        self.addCleanup(http.close)
        self.addCleanup(smtp.close)
        http.stop()
        smtp.stop()             # both down; their ports are kept
        d = harness.Daemon(
            notify_config(http.port, smtp.port),
            secrets={"github.secret": SECRET, **harness.DEAD_CLUSTER_FILES,
                     "slack.url": "http://127.0.0.1:%d/slack/T0/B0\n"
                     % http.port,
                     "hook.secret": "faults-hook-secret"})
        self.addCleanup(d.cleanup)
        d.start()
        body = push_body(DEAD_URL, after="9" * 40)
        self.assertEqual(post_push(d, body, "sink-1").status, 202)

        def notify_jobs():
            return d.api("/api/v1/jobs?kind=notify&limit=100")["jobs"]
        jobs = wait_for("three notify jobs failing", lambda: (
            lambda js: js if len(js) == 3 and all(
                j["attempts"] >= 2 and j["state"] in ("failed", "queued")
                for j in js) else None)(notify_jobs()), timeout=60)
        for j in jobs:
            self.assertTrue(j.get("error"), j)
            self.assertIn("Couldn't connect to server", j["error"], j)
        self.assertEqual(http.records(), [])
        self.assertEqual(smtp.records(), [])

        http.start()
        smtp.start()
        wait_for("notify jobs succeeded", lambda: all(
            j["state"] == "succeeded" for j in notify_jobs()), timeout=60)
        time.sleep(3)           # room for a second copy to show up
        recs = http.records()
        self.assertEqual(sorted(r["path"] for r in recs),
                         ["/hook", "/slack/T0/B0"], recs)
        self.assertTrue(all(r["status"] == 200 for r in recs), recs)
        self.assertEqual(len(smtp.records()), 1)
        hook = [r for r in recs if r["path"] == "/hook"][0]
        self.assertTrue(hook["signature_ok"])
        self.assertEqual(json.loads(hook["body"])["delivery"], "sink-1")
        self.assertEqual(len(notify_jobs()), 3)


if __name__ == "__main__":
    unittest.main()
