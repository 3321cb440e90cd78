"""Replicas sharing one state store: each registers and heartbeats, GET
/api/v1/replicas and `gitopsctl replicas` list them, and the periodic work
(drift re-syncs here) runs on the one replica holding the "periodic" role,
which moves when that replica is killed (after the role's lease) or stops
(at once).  Two real gitopsd processes on a throwaway PostgreSQL on
127.0.0.1 (test/support/pg_server.py), the Kubernetes API simulator as
their cluster; and one process on SQLite, which holds the role alone."""
import json
import re
import shutil
import tempfile
import time
import unittest
import uuid

import harness
import pg_server
from e2e_peers import make_bare_repo
from fault_peers import wait_for
from test_sync import DEMO_APP, MANIFESTS, SIM_KEYS, Kubesim

HEARTBEAT_S = 1
# A replica is gone, and its role free, after three heartbeats.
TIMEOUT_S = 3 * HEARTBEAT_S
PG_STATE = {"driver": "postgres", "dsn_file": "pg.dsn",
            "heartbeat_s": HEARTBEAT_S}
LITE_STATE = {"path": "{tmp}/state.db", "heartbeat_s": HEARTBEAT_S}
# test_sync's app with a drift re-sync every second: periodic work.
DRIFT_APP = dict(DEMO_APP, sync=dict(DEMO_APP["sync"], interval_s=1))
DRIFT_LINE = "drift sync queued"
# An app whose sync the cluster refuses (an invalid name): a failure that
# lasts, its Alertmanager alert re-sent every 5 s -- periodic work.
BROKEN_CM = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"
             "  namespace: default\ndata: {a: \"1\"}\n")
BROKEN_APP = {"name": "broken", "repo": "deploy", "path": "apps/broken",
              "cluster": "sim", "sync": {"auto": False, "timeout_s": 10},
              "notify": ["am"]}
RESEND_LINE = "open alerts re-sent"


def build_missing():
    try:
        harness.binary()
        harness.binary("gitopsctl")
    except RuntimeError as e:
        return str(e)
    return None


def skip_reason():
    return pg_server.available() or build_missing()


def ctl(d, *args):
    return harness.run_tool(
        [harness.binary("gitopsctl"), "--url",
         "http://127.0.0.1:%d" % d.admin_port, *args],
        capture_output=True, text=True, timeout=60)


def metric(d, name):
    """name's samples on d's /metrics: {labels: value}."""
    r = d.admin("GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


class ReplicasMixin:
    def peers(self, prefix):
        """A simulated cluster and a bare repository of test_sync's
        manifests, both removed after the test."""
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = make_bare_repo(self.tmp, "deploy.git", dict({
            rel: text % "1.0.0" if "%s" in text else text
            for rel, text in MANIFESTS.items()}, **{
                "apps/broken/cm.yaml": BROKEN_CM}))

    def config(self, state, poll_s=0, **extra):
        keys = dict(SIM_KEYS, repos=[dict(r, poll_interval_s=poll_s)
                                     for r in SIM_KEYS["repos"]])
        keys.update(extra)
        keys.setdefault("apps", [DRIFT_APP])
        return harness.config(state=state, **keys) % {
            "url": self.bare, "kubeconfig": self.sim.kubeconfig}

    def replicas(self, d):
        r = d.admin("GET", "/api/v1/replicas")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_for(self, what, fn, timeout):
        return wait_for(what, fn, timeout)

    def holder(self, d):
        """The id of the replica holding "periodic" as d lists it."""
        holders = [r["id"] for r in self.replicas(d)["replicas"]
                   if "periodic" in r["roles"]]
        self.assertLessEqual(len(holders), 1, holders)
        return holders[0] if holders else None

    def own_id(self, d):
        mine = [r for r in self.replicas(d)["replicas"] if r["self"]]
        self.assertLessEqual(len(mine), 1, mine)
        return mine[0]["id"] if mine else None


@unittest.skipIf(skip_reason() is not None, skip_reason() or "")
class PostgresReplicasTest(ReplicasMixin, unittest.TestCase):
    pg = None

    @classmethod
    def tearDownClass(cls):
        if cls.pg is not None:
            cls.pg.stop()

    def setUp(self):
        # One server for the class, started by its first test.
        cls = type(self)
        if cls.pg is None:
            cls.pg = pg_server.PgServer()
            cls.pg.start()
        self.db = "r" + uuid.uuid4().hex[:12]
        self.dsn = self.pg.createdb(self.db)
        self.peers("pg-replicas-")

    def daemon(self, poll_s=0, state=PG_STATE, **extra):
        d = harness.Daemon(self.config(state, poll_s, **extra),
                           secrets={"github.secret": "s",
                                    "pg.dsn": self.dsn})
        self.addCleanup(d.cleanup)
        return d

    def sql(self, query):
        return self.pg.psql(query, self.db).strip()

    def two(self, poll_s=0, **extra):
        a = self.daemon(poll_s, **extra).start()
        b = self.daemon(poll_s, **extra).start()
        ids = {"a": self.wait_for("a registered", lambda: self.own_id(a), 10),
               "b": self.wait_for("b registered", lambda: self.own_id(b), 10)}
        # Both see both, alive, and the same one holder.
        for d in (a, b):
            self.wait_for("both listed alive", lambda d=d: sorted(
                r["id"] for r in self.replicas(d)["replicas"]
                if r["alive"]) == sorted(ids.values()), 10)
        held = self.wait_for("a holder", lambda: self.holder(a), 10)
        self.assertEqual(self.holder(b), held)
        return a, b, ids, held

    def test_polls_run_on_the_holder_only(self):
        # Polls are periodic work: with the repository polled every
        # second, only the holder of "periodic" asks the remote; after
        # kill -9 of the holder the other one takes the polls over.
        def repo_polls(d):
            return sum(v for k, v in metric(d, "gitopsd_polls_total").items()
                       if 'kind="repo"' in k)
        a, b, ids, held = self.two(poll_s=1)
        by_id = {ids["a"]: a, ids["b"]: b}
        holder, other = by_id[held], by_id[
            [i for i in by_id if i != held][0]]
        self.wait_for("the holder polls", lambda: repo_polls(holder) >= 3,
                      20)
        self.assertEqual(repo_polls(other), 0)
        holder.proc.kill()
        holder.proc.wait()
        self.wait_for("the other one polls", lambda: repo_polls(other) >= 2,
                      TIMEOUT_S + 20)

    def test_alert_resends_run_on_the_holder_only(self):
        # Re-sending a failing app's Alertmanager alert is periodic work:
        # whichever replica the failure happened on, only the holder of
        # "periodic" re-sends it (found in the shared outbox).
        a, b, ids, held = self.two(
            apps=[BROKEN_APP],
            notifiers=[{"name": "am", "type": "alertmanager",
                        "url": "http://127.0.0.1:%d" % harness.free_port(),
                        "resend_interval_s": 5}],
            notify={"max_attempts": 1})
        by_id = {ids["a"]: a, ids["b"]: b}
        holder, other = by_id[held], by_id[
            [i for i in by_id if i != held][0]]
        r = other.admin("POST", "/api/v1/apps/broken/sync")
        self.assertIn(r.status, (200, 202), r)
        self.wait_for("the sync dead", lambda: [
            j for j in other.api("/api/v1/jobs?app=broken&kind=sync")[
                "jobs"] if j["state"] == "dead"], 60)
        self.wait_for("re-sent twice by the holder",
                      lambda: holder.log().count(RESEND_LINE) >= 2, 30)
        self.assertEqual(other.log().count(RESEND_LINE), 0)

    def test_listed_one_holder_kill9_moves_the_role(self):
        a, b, ids, held = self.two()
        by_id = {ids["a"]: a, ids["b"]: b}
        holder, other = by_id[held], by_id[
            [i for i in by_id if i != held][0]]
        # Ids name the host and the process.
        for d, i in ((a, ids["a"]), (b, ids["b"])):
            self.assertIn("-%d-" % d.proc.pid, i)

        listing = self.replicas(a)
        self.assertEqual(len(listing["replicas"]), 2, listing)
        for r in listing["replicas"]:
            self.assertTrue(r["alive"], r)
            # Drift re-syncs every second: a job may be running.
            self.assertIsInstance(r["running"], int, r)
            self.assertGreaterEqual(r["running"], 0, r)
            self.assertIsNotNone(r["started"])
            self.assertIsNotNone(r["heartbeat"])
            self.assertTrue(r["version"], r)
            self.assertTrue(r["hostname"], r)
        self.assertEqual([(x["name"], x["holder"]) for x in
                          listing["roles"]], [("periodic", held)])
        # Counted at each heartbeat: b may have come after a's last one.
        self.wait_for("two in the gauge", lambda: metric(
            a, "gitopsd_replicas") == {"": 2.0}, 2 * HEARTBEAT_S + 2)
        # Set right after the hold's commit: under Valgrind the row can
        # be read before the gauge.
        self.wait_for("the holder's gauge", lambda: metric(
            holder, "gitopsd_role_held") == {'{role="periodic"}': 1.0},
            2 * HEARTBEAT_S + 2)
        self.assertEqual(metric(other, "gitopsd_role_held"),
                         {'{role="periodic"}': 0.0})
        self.assertIn('{backend="postgres"}',
                      metric(a, "gitopsd_store_errors_total"))

        # gitopsctl shows the same replicas, as a table and as JSON.
        p = ctl(b, "replicas")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), [
            "ID", "HOST", "VERSION", "STARTED", "HEARTBEAT", "ALIVE",
            "RUNNING", "ROLES"])
        rows = {l.split()[0]: l.split() for l in lines[1:]}
        self.assertEqual(set(rows), set(ids.values()))
        self.assertEqual(rows[held][-3], "yes")
        self.assertTrue(rows[held][-2].isdigit(), rows[held])
        self.assertEqual(rows[held][-1], "periodic")
        other_id = [i for i in rows if i != held][0]
        self.assertEqual(rows[other_id][-3], "yes")
        self.assertTrue(rows[other_id][-2].isdigit(), rows[other_id])
        self.assertEqual(rows[other_id][-1], "-")
        p = ctl(b, "--json", "replicas")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(r["id"] for r in
                                json.loads(p.stdout)["replicas"]),
                         sorted(ids.values()))

        # Drift re-syncs are queued by the holder only.
        self.wait_for("drift syncs queued",
                      lambda: holder.log().count(DRIFT_LINE) >= 3, 20)
        self.assertEqual(other.log().count(DRIFT_LINE), 0)
        self.assertNotEqual(self.sql(
            "SELECT count(*) FROM jobs WHERE params LIKE '%drift%'"), "0")

        # The holder dies: the other takes the role once its lease runs
        # out, and queues the drift syncs from then on.
        holder.kill9()
        t0 = time.time()
        self.wait_for("role taken over", lambda: self.holder(other) ==
                      self.own_id(other), TIMEOUT_S + 5)
        took = time.time() - t0
        self.assertLessEqual(took, (TIMEOUT_S + HEARTBEAT_S + 1.5) *
                             harness.TIMEOUT_SCALE, took)
        self.wait_for("survivor's drift syncs",
                      lambda: other.log().count(DRIFT_LINE) >= 2, 20)
        # After the timeout the dead one is listed, not alive.
        self.wait_for("dead replica not alive", lambda: {
            r["id"]: r["alive"] for r in self.replicas(other)["replicas"]
        } == {held: False, self.own_id(other): True}, TIMEOUT_S + 5)
        self.wait_for("one alive in the gauge", lambda: metric(
            other, "gitopsd_replicas") == {"": 1.0}, 5)
        self.assertEqual(other.stop(), 0, other.log()[-3000:])
        self.assertNotIn("Sanitizer", other.log())

    def test_clean_stop_hands_the_role_over_at_once(self):
        a, b, ids, held = self.two()
        by_id = {ids["a"]: a, ids["b"]: b}
        holder = by_id[held]
        other_id = [i for i in by_id if i != held][0]
        other = by_id[other_id]
        t0 = time.time()
        self.assertEqual(holder.stop(), 0, holder.log()[-3000:])
        # Its row and its role went with it.
        self.assertEqual(self.sql(
            "SELECT count(*) FROM replicas WHERE id = '%s'" % held), "0")
        self.wait_for("role taken over", lambda: self.holder(other) ==
                      other_id, TIMEOUT_S)
        # Within a heartbeat or two, not after the lease.
        self.assertLess(time.time() - t0, (2 * HEARTBEAT_S + 0.9) *
                        harness.TIMEOUT_SCALE)
        self.assertEqual([r["id"] for r in
                          self.replicas(other)["replicas"]], [other_id])
        self.assertEqual(other.stop(), 0, other.log()[-3000:])
        self.assertEqual(self.sql("SELECT count(*) FROM replicas"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM roles"), "0")

    def test_chosen_id_one_running_process(self):
        """state.replica names the replica across restarts; a second
        running process given the same id is refused at start, a
        process restarted after kill -9 takes its id over."""
        # Under Valgrind a busy store thread beats seconds late: the
        # second process watches three beats of 3 s there.
        state = dict(PG_STATE, replica="web-1.a_B",
                     heartbeat_s=3 if harness.VALGRIND else HEARTBEAT_S)
        a = self.daemon(state=state).start()
        self.wait_for("a registered", lambda: self.own_id(a) == "web-1.a_B",
                      10)
        b = self.daemon(state=state)
        b.start(wait=False)
        try:
            rc = b.proc.wait(timeout=30 * harness.TIMEOUT_SCALE)
        except Exception:
            self.fail("a second process took a live id:\n" + b.log())
        self.assertNotEqual(rc, 0)
        self.assertIn("replica id web-1.a_B is in use by a running process",
                      b.log())
        self.assertIn("pid %d" % a.proc.pid, b.log())
        # a was not disturbed: still the only one, alive.
        self.assertEqual([(r["id"], r["alive"]) for r in
                          self.replicas(a)["replicas"]],
                         [("web-1.a_B", True)])
        a.kill9()
        c = self.daemon(state=state).start()
        self.wait_for("c registered", lambda: self.own_id(c) == "web-1.a_B",
                      10)
        self.assertIn("replica id taken over", c.log())
        self.assertEqual(self.sql("SELECT pid FROM replicas"),
                         str(c.proc.pid))
        self.wait_for("c holds the role", lambda: self.holder(c) ==
                      "web-1.a_B", TIMEOUT_S + 5)
        self.assertEqual(c.stop(), 0, c.log()[-3000:])
        # Ids that are not short printable tokens are refused by -t.
        for bad in ("web 1", "-web", "x" * 64, "web/1", "\u00e9"):
            d = self.daemon(state=dict(PG_STATE, replica=bad))
            out = harness.run_tool([harness.binary(), "-t", "-c",
                                    d.config_path],
                                   capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0, bad)
            self.assertIn("must be 1 to 63 characters",
                          out.stdout + out.stderr)
        d = self.daemon(state=dict(PG_STATE, replica="x" * 63))
        out = harness.run_tool([harness.binary(), "-t", "-c", d.config_path],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


@unittest.skipIf(build_missing() is not None, build_missing() or "")
class SqliteReplicaTest(ReplicasMixin, unittest.TestCase):
    def test_one_process_holds_the_role_and_forgets_its_predecessor(self):
        self.peers("lite-replicas-")
        d = harness.Daemon(self.config(LITE_STATE),
                           secrets={"github.secret": "s"})
        self.addCleanup(d.cleanup)
        d.start()
        first = self.wait_for("registered", lambda: self.own_id(d), 10)
        # The row is written before the role is claimed (same beat or the
        # next one), so the holder is waited for, not read once.
        self.wait_for("holder", lambda: self.holder(d) == first, 5)
        self.wait_for("drift syncs queued",
                      lambda: d.log().count(DRIFT_LINE) >= 2, 20)
        # Killed and started again: the new process is the only replica
        # and holds the role at once, with no lease to wait out.
        d.kill9()
        d.start()
        second = self.wait_for("registered again", lambda: self.own_id(d),
                               10)
        self.assertNotEqual(first, second)
        self.wait_for("holder", lambda: self.holder(d) == second, 5)
        listing = self.replicas(d)
        self.assertEqual([(r["id"], r["alive"]) for r in
                          listing["replicas"]], [(second, True)])
        p = ctl(d, "replicas")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 2, p.stdout)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])

    def test_chosen_id_kept_across_a_restart(self):
        """On SQLite too a chosen id is kept, and the row after a restart
        is the new process's (its pid), not the predecessor's."""
        self.peers("lite-replicas-")
        d = harness.Daemon(self.config(dict(LITE_STATE, replica="lite-1")),
                           secrets={"github.secret": "s"})
        self.addCleanup(d.cleanup)
        d.start()
        self.wait_for("registered", lambda: self.own_id(d) == "lite-1", 10)
        d.kill9()
        d.start()
        self.wait_for("registered again", lambda: [
            (r["id"], r["pid"]) for r in self.replicas(d)["replicas"]] ==
            [("lite-1", d.proc.pid)], 10)
        self.wait_for("holder", lambda: self.holder(d) == "lite-1", 5)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
