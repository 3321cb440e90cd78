"""Job leases across gitopsd replicas on one PostgreSQL database
(queue.lease_s, DESIGN.md section 9).  Two real gitopsd processes share a
throwaway PostgreSQL (test/support/pg_server.py); the Git remote is git
http-backend behind lighttpd with a slow pre-receive hook, the alert sink a
loopback webhook receiver.

- a push twice the lease long on a live replica keeps its lease.
- kill -9 of replica A while its update-image job pushes: replica B takes
  the job over once A's lease has ended and finishes it; one commit for
  the one image bump.
- replica A paused (SIGSTOP) past its lease while its attempt runs: B takes
  the job over, it fails there for good and is alerted once; when A runs
  again its late result is refused by the lease (no overwrite, no second
  alert).
- a database of schema 1 gets the lease columns at start, and a job left
  running there without a lease is taken over."""
import json
import os
import re
import signal
import time
import unittest
import uuid

import harness
import pg_server
from fault_peers import git, set_hook, wait_for
from notify_receivers import Receiver
from test_faults import (DEPLOYMENT, GIT_PASSWORD, REGISTRY,
                         TOKEN, GitJobMixin, job_detail)
from test_postgres import skip_reason

HOOK_SECRET = "lease-hook-secret-77b2"
LEASE_S = 2


def lease_config(url, attempts, sink):
    """test_faults' Git job on PostgreSQL, leases of LEASE_S, the app's
    alerts to a webhook sink."""
    return harness.config(
        state={"driver": "postgres", "dsn_file": "pg.dsn"},
        queue={"lease_s": LEASE_S},
        retry={"base_s": 1, "max_s": 1, "max_attempts": attempts},
        git={"push_retries": 1},
        sources=[{"name": "registry", "type": "registry",
                  "token_file": "registry.token", "verify_tag": False}],
        repos=[{"name": "deploy", "url": url, "branch": "main",
                "auth": {"username": "deployer",
                         "password_file": "git.password"}}],
        apps=[{"name": "web", "repo": "deploy", "path": "apps/web",
               "notify": ["audit"],
               "images": [{"repository": REGISTRY + "/acme/web",
                           "policy": {"semver": ">=1.0.0"}}]}],
        notifiers=[{"name": "audit", "type": "webhook",
                    "url": "http://127.0.0.1:%d/hook" % sink,
                    "secret_file": "hook.secret"}])


def metric(d, name):
    text = d.admin("GET", "/metrics").body.decode()
    m = re.search(r"^%s(?:\{\})? ([0-9.e+]+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


@unittest.skipIf(skip_reason() is not None, skip_reason() or "")
class LeaseTakeoverTest(GitJobMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_server.PgServer()
        cls.addClassCleanup(cls.pg.stop)
        cls.pg.start()

    def setUp(self):
        super().setUp()
        self.db = "l" + uuid.uuid4().hex[:12]
        self.dsn = self.pg.createdb(self.db)
        self.sink = Receiver("http", secret=HOOK_SECRET).start()
        self.addCleanup(self.sink.close)
        self.marker = os.path.join(self.tmp, "push-started")

    def daemon(self, attempts):
        d = harness.Daemon(
            lease_config(self.http.url("deploy.git"), attempts,
                         self.sink.port),
            secrets={"registry.token": TOKEN + "\n",
                     "git.password": GIT_PASSWORD + "\n",
                     "hook.secret": HOOK_SECRET, "pg.dsn": self.dsn})
        self.addCleanup(d.cleanup)
        return d

    def stall_first_push(self, then):
        """The first push waits in pre-receive (objects received, ref not
        moved yet) for a while, then ends with `then`; later ones end with
        it at once."""
        set_hook(self.bare, "pre-receive",
                 "cat >/dev/null\n"
                 "if [ ! -e '%s' ]; then touch '%s'; sleep 4; fi\n"
                 "%s\n" % (self.marker, self.marker, then))
        self.http.start()

    def start_pair(self, attempts):
        a = self.daemon(attempts).start()
        b = self.daemon(attempts).start()
        return a, b

    def running_on_a(self, a, tag):
        # A claims the job in the round that stores it: it runs on A.
        job_id = self.image_event(a, tag)
        wait_for("the push in flight", lambda: os.path.exists(self.marker),
                 timeout=60, interval=0.02)
        self.assertEqual(job_detail(a, job_id)["state"], "running")
        return job_id

    def sql(self, query):
        return self.pg.psql(query, self.db).strip()

    def test_schema_1_upgraded(self):
        """A database of schema 1 (no leases) gets the lease columns and
        the claim counter at the next start; a job left running there
        without a lease is taken over."""
        self.http.start()
        a = self.daemon(attempts=5).start()
        job_id = self.image_event(a, "1.3.0")
        self.wait_final(a, job_id)
        self.assertEqual(a.stop(), 0, a.log()[-3000:])
        self.sql("ALTER TABLE jobs DROP COLUMN lease_owner,"
                 " DROP COLUMN lease_until, DROP COLUMN claims;"
                 " UPDATE schema_version SET version = 1;"
                 " UPDATE jobs SET state = 2, started = 1")
        a.start()
        self.assertEqual(self.sql("SELECT max(version) FROM schema_version"),
                         "3")
        job = self.wait_final(a, job_id)
        # Its first attempt, the interrupted one, the one after it.
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 3),
                         job)
        self.assertIn("interrupted", json.dumps(job["attempts_log"]), job)
        self.assertEqual(self.sql("SELECT count(*) FROM jobs WHERE"
                                  " lease_owner IS NOT NULL"), "0")
        self.assertEqual(a.stop(), 0, a.log()[-3000:])

    def test_live_replica_keeps_its_lease(self):
        """A push that takes twice the lease on a live replica: A renews
        the lease, B takes nothing over, one attempt."""
        self.stall_first_push("exit 0")
        a, b = self.start_pair(attempts=5)
        job_id = self.running_on_a(a, "1.4.0")
        pushing = time.time()
        job = self.wait_final(a, job_id)
        # The push alone outlasted the lease.
        self.assertGreater(time.time() - pushing, LEASE_S, job)
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 1),
                         job)
        self.assertEqual(len(job["attempts_log"]), 1, job)
        self.assertEqual(metric(b, "gitopsd_lease_takeovers_total"), 0)
        self.assertEqual(metric(a, "gitopsd_lease_takeovers_total"), 0)
        self.assertEqual(len(self.trailer_commits(job_id)), 1)

    def test_kill9_taken_over_after_lease_one_commit(self):
        self.stall_first_push("exit 0")
        a, b = self.start_pair(attempts=5)
        self.assertEqual(metric(b, "gitopsd_lease_takeovers_total"), 0)
        job_id = self.running_on_a(a, "1.5.0")
        killed = time.time()
        a.kill9()

        job = self.wait_final(b, job_id)
        took = time.time() - killed
        self.assertEqual(job["state"], "succeeded", job)
        self.assertIn("interrupted", json.dumps(job["attempts_log"]), job)
        self.assertEqual(job["attempts"], 2, job)
        # Not before the lease has ended (it was renewed within a third
        # of it before the kill).
        self.assertGreater(took, LEASE_S * 2 / 3 - 0.1, took)
        self.assertEqual(len(self.trailer_commits(job_id)), 1)
        self.assertEqual(git("rev-list", "--count", "main", cwd=self.bare),
                         "2")
        self.assertEqual(
            git("show", "main:apps/web/deployment.yaml", cwd=self.bare),
            DEPLOYMENT.replace("1.0.0", "1.5.0").rstrip("\n"))
        self.assertEqual(metric(b, "gitopsd_lease_takeovers_total"), 1)
        self.assertIn("1 job(s) taken over after their lease ended",
                      b.log())
        self.assertEqual(b.stop(), 0, b.log()[-3000:])
        print("\nkill -9 of the replica running the push: taken over and "
              "finished by the other one %.1f s later (lease %d s)"
              % (took, LEASE_S))

    def test_paused_past_lease_result_refused_one_alert(self):
        self.stall_first_push("echo 'refused: main is frozen' >&2; exit 1")
        a, b = self.start_pair(attempts=2)
        self.addCleanup(lambda: a.proc.poll() is None and
                        os.kill(a.proc.pid, signal.SIGCONT))
        job_id = self.running_on_a(a, "1.6.0")
        os.kill(a.proc.pid, signal.SIGSTOP)

        # B takes the job over (A's attempt counted as interrupted) and
        # its own attempt is refused: dead, one alert.
        job = self.wait_final(b, job_id)
        self.assertEqual(job["state"], "dead", job)
        self.assertEqual(job["attempts"], 2, job)
        self.assertIn("pre-receive hook declined", job["error"], job)
        recs = self.sink.wait_records(1, timeout=30)
        self.assertEqual(len(recs), 1, recs)

        # A runs again: its attempt ends (the push refused long ago) and
        # its lease fences it off.
        os.kill(a.proc.pid, signal.SIGCONT)
        wait_for("A's late result refused", lambda: "its lease was taken"
                 " over while it ran" in a.log(), timeout=30)
        time.sleep(2)           # room for a second alert to show up
        self.assertEqual(len(self.sink.records()), 1, self.sink.records())
        after = job_detail(b, job_id)
        self.assertEqual((after["state"], after["attempts"], after["error"]),
                         (job["state"], job["attempts"], job["error"]))
        self.assertEqual(len(after["attempts_log"]), 2, after)
        self.assertEqual(git("rev-list", "--count", "main", cwd=self.bare),
                         "1")
        self.assertEqual(a.stop(), 0, a.log()[-3000:])
        self.assertEqual(b.stop(), 0, b.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
