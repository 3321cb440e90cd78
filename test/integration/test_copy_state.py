"""`gitopsd --copy-state FROM_CONFIG TO_CONFIG`: a state made by a real
gitopsd on SQLite (pushes, synced and dead jobs, a manual retry, alerts)
is copied into a throwaway PostgreSQL (test/support/pg_server.py); gitopsd
started on PostgreSQL then shows the same events, jobs, attempts and apps
through /api/v1, still knows the old delivery ids, and numbers new jobs
past the copied ones.  Copied back into a new SQLite file, the history is
the same again.  A target that is not empty is refused."""
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest
import uuid

import harness
import pg_server
from e2e_peers import make_bare_repo
from notify_receivers import Receiver
from test_postgres import push_body, skip_reason
from test_sync import MANIFESTS, SECRET, Kubesim, git

# test_sync's app and one whose manifests do not exist (its syncs fail
# and die), both alerting a loopback webhook receiver.
CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
%(state)s
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 1, max_attempts: 2}
notify: {max_attempts: 2, repeat_after_s: 3600, timeout_s: 3}
sources:
  - {name: github, type: github, secret_file: "{tmp}/github.secret"}
repos:
  - {name: deploy, url: "%(url)s", branch: main, poll_interval_s: 0}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
  - name: demo
    repo: deploy
    path: apps/demo
    cluster: sim
    namespace: demo
    sync: {auto: true, prune: true, timeout_s: 30}
  - name: broken
    repo: deploy
    path: apps/missing
    cluster: sim
    namespace: demo
    sync: {auto: true, timeout_s: 30}
    notify: [audit]
notifiers:
  - {name: audit, type: webhook, url: "http://127.0.0.1:%(sink)d/hook"}
"""
SQLITE_STATE = 'state: {path: "{tmp}/state.db"}'
PG_STATE = 'state: {driver: postgres, dsn_file: "{tmp}/pg.dsn"}'
FINAL = ("succeeded", "dead")


@unittest.skipIf(skip_reason() is not None, skip_reason() or "")
class CopyStateTest(pg_server.ServerTestCase):
    def setUp(self):
        self.db = "c" + uuid.uuid4().hex[:12]
        self.dsn = self.pg.createdb(self.db)
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.sink = Receiver("http").start()
        self.addCleanup(self.sink.close)
        self.tmp = tempfile.mkdtemp(prefix="copy-state-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = make_bare_repo(self.tmp, "deploy.git", {
            rel: text % "1.0.0" if "%s" in text else text
            for rel, text in MANIFESTS.items()})
        self.rev = git("rev-parse", "main", cwd=self.bare)

    def daemon(self, state):
        text = CONFIG % {"state": state, "url": self.bare,
                         "kubeconfig": self.sim.kubeconfig,
                         "sink": self.sink.port}
        d = harness.Daemon(text, secrets={"github.secret": SECRET,
                                          "pg.dsn": self.dsn})
        self.addCleanup(d.cleanup)
        return d

    def post(self, d, delivery):
        body = push_body(self.bare, self.rev)
        return d.post("/hooks/github", body,
                      harness.github_headers(SECRET, body, delivery))

    def all_jobs(self, d):
        r = d.admin("GET", "/api/v1/jobs?limit=1000")
        self.assertEqual(r.status, 200, r)
        return r.json()["jobs"]

    def wait_final(self, d, n, timeout=90):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        jobs = []
        while time.time() < deadline:
            jobs = self.all_jobs(d)
            if len(jobs) >= n and all(j["state"] in FINAL for j in jobs):
                return jobs
            time.sleep(0.2)
        self.fail("jobs never ended: %r\n%s" % (jobs, d.log()[-4000:]))

    def views(self, d, job_ids):
        """What the admin API shows of the copied history."""
        out = {}
        for path in ("/api/v1/events?limit=1000", "/api/v1/jobs?limit=1000",
                     "/api/v1/apps"):
            r = d.admin("GET", path)
            self.assertEqual(r.status, 200, r)
            out[path] = r.json()
        for i in job_ids:
            r = d.admin("GET", "/api/v1/jobs/%d" % i)
            self.assertEqual(r.status, 200, r)
            out[i] = r.json()
        return out

    def copy(self, src, dst):
        return harness.run_tool([harness.binary(), "--copy-state",
                                 src.config_path, dst.config_path],
                                capture_output=True, text=True, timeout=120)

    def test_sqlite_into_postgres(self):
        lite = self.daemon(SQLITE_STATE)
        lite.start()
        deliveries = [str(uuid.uuid4()) for _ in range(3)]
        for dl in deliveries:
            r = self.post(lite, dl)
            self.assertEqual(r.status, 202, r)
            # One round per push: every push makes jobs of its own.
            self.wait_final(lite, 1)
        jobs = self.wait_final(lite, 2)
        dead = [j for j in jobs if j["state"] == "dead" and j["app"] == "broken"]
        self.assertTrue(dead, jobs)
        self.assertTrue([j for j in jobs if j["state"] == "succeeded"
                         and j["app"] == "demo"], jobs)
        # A dead job tried again: a second set of attempts in its history.
        r = lite.admin("POST", "/api/v1/jobs/%d/retry" % dead[0]["id"])
        self.assertEqual(r.status, 200, r)
        time.sleep(0.5)
        jobs = self.wait_final(lite, len(jobs))
        # Alerts sent (notify jobs) and their dedup keys stored.
        self.sink.wait_records(1)
        time.sleep(1)
        jobs = self.wait_final(lite, len(jobs))
        kinds = {j["kind"] for j in jobs}
        self.assertIn("notify", kinds, jobs)
        ids = [j["id"] for j in jobs]
        before = self.views(lite, ids)
        self.assertEqual(lite.stop(), 0, lite.log()[-3000:])
        # SQLite may hold a delivery twice (sent again after its dedup
        # window); PostgreSQL's unique key folds the later event into the
        # first, and its links and jobs follow.
        db = sqlite3.connect(os.path.join(lite.tmp, "state.db"))
        with db:
            cur = db.execute(
                "INSERT INTO events(source, delivery, received, kind,"
                " summary) SELECT source, delivery, received + 1, kind,"
                " summary FROM events WHERE delivery = ?", (deliveries[1],))
            db.execute("INSERT INTO event_jobs(event_id, job_id) SELECT ?,"
                       " job_id FROM event_jobs WHERE event_id = (SELECT id"
                       " FROM events WHERE delivery = ? ORDER BY id LIMIT"
                       " 1)", (cur.lastrowid, deliveries[1]))
        db.close()

        pg = self.daemon(PG_STATE)
        p = self.copy(lite, pg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        counts = {}
        for line in p.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) == 2:
                counts[parts[0]] = int(parts[1])
        self.assertEqual(counts["events"], 3, p.stdout)
        self.assertIn("1 events merged", p.stdout)
        self.assertEqual(counts["jobs"], len(jobs), p.stdout)
        self.assertGreaterEqual(counts["attempts"], len(jobs), p.stdout)
        self.assertEqual(counts["apps"], 2, p.stdout)
        self.assertGreaterEqual(counts["notify_keys"], 1, p.stdout)
        self.assertEqual(counts["app_inventory"], 1, p.stdout)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM jobs", self.db)
                         .strip(), str(len(jobs)))

        # A second copy into the same database is refused, nothing added.
        p = self.copy(lite, pg)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("is not empty", p.stderr)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM jobs", self.db)
                         .strip(), str(len(jobs)))

        pg.start()
        after = self.views(pg, ids)
        for k in before:
            self.assertEqual(after[k], before[k], k)
        # The old delivery ids still deduplicate.
        r = self.post(pg, deliveries[0])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json().get("duplicate"), r)
        # New rows are numbered past the copied ones.
        r = self.post(pg, str(uuid.uuid4()))
        self.assertEqual(r.status, 202, r)
        jobs_pg = self.wait_final(pg, len(jobs) + 1)
        self.assertGreater(max(j["id"] for j in jobs_pg), max(ids))
        r = pg.admin("GET", "/api/v1/events?limit=1000")
        evs = r.json()["events"]
        self.assertEqual(len(evs), 4, evs)
        all_ids = [j["id"] for j in jobs_pg]
        final = self.views(pg, all_ids)
        self.assertEqual(pg.stop(), 0, pg.log()[-3000:])

        # And back: PostgreSQL into a new SQLite file, the same history.
        lite2 = self.daemon(SQLITE_STATE)
        p = self.copy(pg, lite2)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lite2.start()
        self.assertEqual(self.views(lite2, all_ids), final)
        r = self.post(lite2, deliveries[2])
        self.assertTrue(r.status == 200 and r.json().get("duplicate"), r)
        self.assertEqual(lite2.stop(), 0, lite2.log()[-3000:])

    def test_missing_source_refused(self):
        lite = self.daemon(SQLITE_STATE)
        pg = self.daemon(PG_STATE)
        p = self.copy(lite, pg)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("no such state file", p.stderr)
        # Nothing created on either side.
        self.assertFalse(os.path.exists(os.path.join(lite.tmp, "state.db")))
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'jobs'",
            self.db).strip(), "0")


if __name__ == "__main__":
    unittest.main()
