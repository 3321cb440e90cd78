"""gitopsd on the PostgreSQL state backend (state.driver: postgres): a
signed push is stored once and its sync runs to the simulated cluster, a
redelivery is a duplicate, a database of a newer schema is refused, the
DSN never reaches the log, and a lost server is survived.  A throwaway
PostgreSQL on 127.0.0.1 (test/support/pg_server.py), real gitopsd
processes, a local bare repository and the Kubernetes API simulator."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness
import pg_server
from e2e_peers import make_bare_repo
from test_sync import DEMO_APP, MANIFESTS, SECRET, SIM_KEYS, Kubesim, git

# Trust authentication ignores it; it must still never be logged.
DSN_PASSWORD = "never-logged-Pw-7f3a"


def pg_config(state={"driver": "postgres", "dsn_file": "pg.dsn"}):
    """test_sync's app on the simulated cluster, its state in PostgreSQL."""
    return harness.config(state=state, apps=[DEMO_APP], **SIM_KEYS)


CONFIG = pg_config()


def push_body(bare, after):
    return json.dumps({
        "ref": "refs/heads/main", "before": "0" * 40, "after": after,
        "created": False, "deleted": False, "forced": False,
        "commits": [], "head_commit": {"id": after},
        "repository": {"full_name": "acme/deploy", "name": "deploy",
                       "clone_url": bare, "ssh_url": bare,
                       "html_url": "file://" + bare},
        "pusher": {"name": "test", "email": "test@localhost"},
    }).encode()


def skip_reason():
    why = pg_server.available()
    if why:
        return why
    try:
        harness.binary()
    except RuntimeError as e:
        return str(e)
    return None


@unittest.skipIf(skip_reason() is not None, skip_reason() or "")
class PostgresDaemonTest(pg_server.ServerTestCase):
    def setUp(self):
        self.db = "g" + uuid.uuid4().hex[:12]
        self.dsn = self.pg.createdb(self.db)
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="pg-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = make_bare_repo(self.tmp, "deploy.git", {
            rel: text % "1.0.0" if "%s" in text else text
            for rel, text in MANIFESTS.items()})
        self.rev = git("rev-parse", "main", cwd=self.bare)

    def daemon(self, dsn=None):
        text = CONFIG % {"url": self.bare, "kubeconfig": self.sim.kubeconfig}
        d = harness.Daemon(text, secrets={
            "github.secret": SECRET,
            "pg.dsn": (dsn or self.dsn) + " password=" + DSN_PASSWORD})
        self.addCleanup(d.cleanup)
        return d

    def sql(self, query):
        return self.pg.psql(query, self.db).strip()

    def post(self, d, delivery):
        body = push_body(self.bare, self.rev)
        return d.post("/hooks/github", body,
                      harness.github_headers(SECRET, body, delivery))

    def wait_job(self, d, timeout=60):
        deadline = time.time() + timeout
        jobs = None
        while time.time() < deadline:
            r = d.admin("GET", "/api/v1/jobs?app=demo")
            if r.status == 200:
                jobs = r.json()["jobs"]
                if jobs and all(j["state"] in ("succeeded", "dead")
                                for j in jobs):
                    return jobs
            time.sleep(0.2)
        self.fail("job never ended: %r\n%s" % (jobs, d.log()[-4000:]))

    def test_push_stored_once_and_synced(self):
        d = self.daemon()
        d.start()
        delivery = str(uuid.uuid4())
        r = self.post(d, delivery)
        self.assertEqual(r.status, 202, r)
        # Acknowledged means committed: the event is in the database now.
        self.assertEqual(self.sql(
            "SELECT count(*) FROM events WHERE delivery = '%s'" % delivery),
            "1")
        r = self.post(d, delivery)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json().get("duplicate"), r)

        jobs = self.wait_job(d)
        self.assertEqual(len(jobs), 1, jobs)
        self.assertEqual(jobs[0]["state"], "succeeded", jobs)
        self.assertEqual(jobs[0]["delivery"], delivery)
        self.assertEqual(jobs[0]["result"]["revision"], self.rev)
        st, dep = self.sim.call(
            "GET", "/apis/apps/v1/namespaces/demo/deployments/web")
        self.assertEqual(st, 200)
        # Stored once, run once, recorded in PostgreSQL (not in SQLite).
        self.assertEqual(self.sql(
            "SELECT count(*) FROM events WHERE delivery = '%s'" % delivery),
            "1")
        self.assertEqual(self.sql(
            "SELECT state, attempts FROM jobs WHERE kind = 1"), "3|1")
        self.assertEqual(self.sql("SELECT count(*) FROM attempts"), "1")
        self.assertEqual(self.sql(
            "SELECT revision FROM apps WHERE name = 'demo'"), self.rev)
        r = d.admin("GET", "/api/v1/events")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([e["delivery"] for e in r.json()["events"]],
                         [delivery])

        # A restart keeps the memory of the delivery.
        d.stop()
        d.start()
        r = self.post(d, delivery)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json().get("duplicate"), r)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertNotIn(DSN_PASSWORD, d.log())

    def test_one_delivery_two_processes(self):
        """The same delivery sent to two gitopsd processes on one database
        at the same moment gets one 202 and one duplicate, and the job runs
        once."""
        a = self.daemon()
        a.start()
        b = self.daemon()
        b.start()
        deliveries = [str(uuid.uuid4()) for _ in range(8)]
        for delivery in deliveries:
            answers = {}
            go = threading.Barrier(2)

            def send(d, name):
                go.wait()
                answers[name] = self.post(d, delivery)

            ts = [threading.Thread(target=send, args=(d, n))
                  for d, n in ((a, "a"), (b, "b"))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            got = sorted((r.status, bool(r.status == 200 and
                                         r.json().get("duplicate")))
                         for r in answers.values())
            self.assertEqual(got, [(200, True), (202, False)], answers)
        self.assertEqual(self.sql("SELECT count(*), count(DISTINCT delivery)"
                                  " FROM events"), "8|8")
        jobs = self.wait_job(a)
        self.assertTrue(all(j["state"] == "succeeded" for j in jobs), jobs)
        # Every sync attempt ran once: no job claimed by both processes.
        self.assertEqual(self.sql(
            "SELECT count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id"
            " WHERE a.n > 1 OR j.attempts != 1"), "0")
        self.assertEqual(a.stop(), 0, a.log()[-3000:])
        self.assertEqual(b.stop(), 0, b.log()[-3000:])

    def test_newer_schema_refused(self):
        d = self.daemon()
        d.start()
        d.stop()
        self.assertEqual(self.sql("SELECT max(version) FROM schema_version"),
                         "3")
        self.sql("INSERT INTO schema_version(version) VALUES (99)")
        d.start(wait=False)
        try:
            rc = d.proc.wait(timeout=30 * harness.TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            self.fail("gitopsd ran on a newer schema:\n" + d.log())
        self.assertNotEqual(rc, 0)
        self.assertIn("schema version 99, newer than this gitopsd", d.log())
        self.assertNotIn("Sanitizer", d.log())
        self.assertNotIn(DSN_PASSWORD, d.log())

    def test_server_lost_and_back(self):
        """While the server is away nothing is acknowledged; when it is
        back, gitopsd reconnects without a restart."""
        d = self.daemon()
        d.start()
        self.addCleanup(self.ensure_running)
        # A delivery before: its statements are prepared on the session
        # that is lost, and must be prepared again on the new one.
        before = str(uuid.uuid4())
        self.assertEqual(self.post(d, before).status, 202)
        self.pg.pause()
        lost = str(uuid.uuid4())
        r = self.post(d, lost)
        self.assertEqual(r.status, 503, r)
        self.assertIn("Retry-After", r.headers, r)
        self.pg.resume()
        deadline = time.time() + 30
        while True:
            r = self.post(d, lost)
            if r.status == 202 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.status, 202, "%r\n%s" % (r, d.log()[-3000:]))
        self.assertEqual(self.sql(
            "SELECT count(*) FROM events WHERE delivery = '%s'" % lost), "1")
        # The admin API's own connection comes back too.
        deadline = time.time() + 30
        while True:
            r = d.admin("GET", "/api/v1/events")
            if r.status == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([e["delivery"] for e in r.json()["events"]],
                         [lost, before])
        self.wait_job(d)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertIn("connection lost", d.log())
        self.assertNotIn(DSN_PASSWORD, d.log())

    def wait_status(self, d, path, want, timeout=30):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        while True:
            status = d.admin("GET", path).status
            if status == want or time.time() > deadline:
                return status
            time.sleep(0.1)

    def test_readyz_follows_database(self):
        """/readyz is 503 while the database is away (a load balancer
        stops sending hooks here), hooks get 503 with Retry-After, and
        both come back without a webhook once it returns."""
        d = self.daemon()
        d.start()
        self.addCleanup(self.ensure_running)
        self.assertEqual(d.admin("GET", "/readyz").status, 200)
        self.pg.pause()
        r = self.post(d, str(uuid.uuid4()))
        self.assertEqual(r.status, 503, r)
        self.assertIn("Retry-After", r.headers, r)
        self.assertEqual(self.wait_status(d, "/readyz", 503), 503,
                         d.log()[-3000:])
        # Still away a moment later: not a blip.
        time.sleep(1)
        self.assertEqual(d.admin("GET", "/readyz").status, 503)
        self.assertEqual(d.admin("GET", "/healthz").status, 200)
        self.assertIn("gitopsd_store_available 0",
                      d.admin("GET", "/metrics").body.decode())
        self.pg.resume()
        # No webhook meanwhile: the store thread reconnects by itself.
        self.assertEqual(self.wait_status(d, "/readyz", 200), 200,
                         d.log()[-3000:])
        back = str(uuid.uuid4())
        self.assertEqual(self.post(d, back).status, 202)
        self.assertEqual(self.sql(
            "SELECT count(*) FROM events WHERE delivery = '%s'" % back), "1")
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertIn("state store connection lost", d.log())
        self.assertIn("state store connection back", d.log())

    def test_blackholed_database_does_not_stop_the_loop(self):
        """A database host that takes TCP connections and never answers:
        the wake-up connection and the admin API's read connection are
        made again without blocking the event loop, so /healthz, /readyz
        and the admin API answer at once the whole time; the attempts time
        out; when the database answers again, everything comes back."""
        proxy = pg_server.BlackholeProxy(self.pg.port)
        self.addCleanup(proxy.close)
        # No connect_timeout: a blocking connect would wait for ever.
        d = self.daemon("host=127.0.0.1 port=%d user=%s dbname=%s" % (
            proxy.port, self.pg.user, self.db))
        d.start()
        # The wake-up connection is made from the loop right after start.
        time.sleep(0.5 * harness.TIMEOUT_SCALE)
        self.assertEqual(d.admin("GET", "/api/v1/jobs").status, 200)
        proxy.blackhole()
        # Past the loop's connect timeout (10 s), until an attempt is
        # seen to give up.
        t0 = time.time()
        worst, ready, api = 0.0, set(), set()

        def seen_all():
            # The store thread notices the loss only when its own call or
            # reconnect gives up: /readyz turns 503 then, not at once.
            return ("wake-ups: connect: timed out" in d.log() and
                    503 in ready and 503 in api)
        while time.time() < t0 + 12 or (
                not seen_all() and
                time.time() < t0 + 20 * harness.TIMEOUT_SCALE):
            for path, seen in (("/healthz", None), ("/readyz", ready),
                               ("/api/v1/jobs", api)):
                t = time.time()
                r = harness.request(d.admin_port, "GET", path,
                                    timeout=10 * harness.TIMEOUT_SCALE)
                worst = max(worst, time.time() - t)
                if seen is not None:
                    seen.add(r.status)
                else:
                    self.assertEqual(r.status, 200)
            time.sleep(0.1)
        self.assertLess(worst, 1.0 * harness.TIMEOUT_SCALE,
                        d.log()[-3000:])
        self.assertIn(503, ready, d.log()[-3000:])
        self.assertIn(503, api, d.log()[-3000:])
        self.assertIn("wake-ups: connect: timed out", d.log())
        proxy.relay()
        self.assertEqual(self.wait_status(d, "/readyz", 200), 200,
                         d.log()[-3000:])
        self.assertEqual(self.wait_status(d, "/api/v1/jobs", 200), 200,
                         d.log()[-3000:])
        deadline = time.time() + 30 * harness.TIMEOUT_SCALE
        while "wake-ups: listening again" not in d.log():
            self.assertLess(time.time(), deadline, d.log()[-3000:])
            time.sleep(0.1)
        back = str(uuid.uuid4())
        self.assertEqual(self.post(d, back).status, 202)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertNotIn(DSN_PASSWORD, d.log())

    def test_locked_table_does_not_stop_the_loop(self):
        """An admin read that waits on a lock another session holds is
        cancelled by the server after the loop connections' statement
        timeout (5 s): /healthz answers meanwhile within that bound, the
        read fails with 503, and the API answers again once the lock is
        gone.  Without the timeout the loop would wait for the lock."""
        d = self.daemon()
        d.start()
        self.assertEqual(d.admin("GET", "/api/v1/jobs").status, 200)
        psql = os.path.join(self.pg.bindir, "psql")
        if not os.path.exists(psql):
            psql = "psql"
        locker = subprocess.Popen(
            [psql, "-X", "-q", "-d", self.pg.dsn(self.db), "-c",
             "BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE;"
             " SELECT pg_sleep(600); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def unlock():
            # The server's backend sleeps on with the lock after its
            # client is gone: end it there.
            self.sql("SELECT pg_terminate_backend(pid) FROM pg_locks"
                     " WHERE granted AND mode = 'AccessExclusiveLock' AND"
                     " relation = 'jobs'::regclass")
            locker.kill()
            locker.wait()
        self.addCleanup(unlock)
        harness.wait_until(lambda: self.sql(
            "SELECT count(*) FROM pg_locks WHERE granted AND"
            " mode = 'AccessExclusiveLock' AND"
            " relation = 'jobs'::regclass") == "1", what="the lock")
        got = {}

        def read():
            t = time.time()
            r = harness.request(d.admin_port, "GET", "/api/v1/jobs",
                                timeout=60)
            got["status"], got["took"] = r.status, time.time() - t
        reader = threading.Thread(target=read)
        reader.start()
        # The read holds the loop until the server cancels it.
        time.sleep(0.5)
        worst = 0.0
        t0 = time.time()
        while time.time() < t0 + 8:
            t = time.time()
            r = harness.request(d.admin_port, "GET", "/healthz", timeout=30)
            worst = max(worst, time.time() - t)
            self.assertEqual(r.status, 200)
            time.sleep(0.1)
        reader.join(60)
        self.assertLess(worst, 7.0, d.log()[-3000:])
        self.assertEqual(got.get("status"), 503, (got, d.log()[-3000:]))
        self.assertLess(got["took"], 8.0, d.log()[-3000:])
        self.assertIn("statement timeout", d.log())
        unlock()
        self.assertEqual(self.wait_status(d, "/api/v1/jobs", 200), 200,
                         d.log()[-3000:])
        self.assertEqual(d.stop(), 0, d.log()[-3000:])

    def ensure_running(self):
        try:
            self.pg.psql("SELECT 1")
        except RuntimeError:
            self.pg.resume()

    def test_unreachable_database(self):
        """A database that does not answer may come later: gitopsd starts
        without it (not ready, hooks 503) instead of exiting; parameters
        that can never work still stop the start."""
        port = harness.free_port()
        d = self.daemon("host=127.0.0.1 port=%d user=gitopsd dbname=x "
                        "connect_timeout=2" % port)
        d.start(wait=False)
        deadline = time.time() + 30 * harness.TIMEOUT_SCALE
        while "starting without it" not in d.log():
            if d.proc.poll() is not None or time.time() > deadline:
                self.fail("gitopsd did not start without its database:\n"
                          + d.log())
            time.sleep(0.1)
        self.assertIsNone(d.proc.poll())
        # The line comes before the listeners are up (slow under Valgrind).
        status = None
        while status is None:
            try:
                status = d.admin("GET", "/readyz").status
            except OSError:
                if d.proc.poll() is not None or time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(status, 503)
        self.assertIn("postgres: cannot connect", d.log())
        self.assertEqual(d.stop(), 0, d.log())
        bad = self.daemon("host=127.0.0.1 port=%d no_such_parameter=1" % port)
        bad.start(wait=False)
        try:
            rc = bad.proc.wait(timeout=30 * harness.TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            self.fail("gitopsd started on a DSN that cannot work:\n" +
                      bad.log())
        self.assertNotEqual(rc, 0)
        for log in (d.log(), bad.log()):
            self.assertNotIn("Sanitizer", log)
            self.assertNotIn(DSN_PASSWORD, log)

    def test_config_check(self):
        d = self.daemon()
        out = harness.run_tool([harness.binary(), "-t", "-c", d.config_path],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertNotIn(DSN_PASSWORD, out.stdout + out.stderr)
        for text, msg in (
                ({"driver": "postgres"},
                 "driver postgres needs dsn_file or dsn_env"),
                ({"driver": "sqlite", "dsn_file": "pg.dsn"},
                 "dsn_file and dsn_env need driver: postgres")):
            d.write_config(pg_config(text) % {
                    "url": self.bare, "kubeconfig": self.sim.kubeconfig})
            out = harness.run_tool([harness.binary(), "-t", "-c",
                                    d.config_path],
                                   capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0, text)
            self.assertIn(msg, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
