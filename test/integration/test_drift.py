"""Drift correction (apps[].sync.interval_s): a change made by hand in the
cluster is put back by the periodic re-sync, without any webhook."""
import os
import shutil
import tempfile
import time
import unittest

import harness
from test_sync import (DEMO_APP, MANIFESTS, SECRET, SIM_KEYS, Kubesim,
                       daemon_built, git)


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class DriftTest(unittest.TestCase):
    def setUp(self):
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="drift-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = os.path.join(self.tmp, "deploy.git")
        work = os.path.join(self.tmp, "work")
        git("init", "-q", "--bare", "-b", "main", self.bare)
        git("init", "-q", "-b", "main", work)
        for rel, text in MANIFESTS.items():
            p = os.path.join(work, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text % "1.0.0" if "%s" in text else text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "web", cwd=work)
        git("push", "-q", self.bare, "main", cwd=work)
        self.head = git("rev-parse", "HEAD", cwd=work)

    def deployment(self):
        return self.sim.call(
            "GET", "/apis/apps/v1/namespaces/demo/deployments/web")

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.2)
        self.fail(what)

    def start(self, interval):
        app = dict(DEMO_APP, sync=dict(DEMO_APP["sync"], interval_s=interval))
        text = harness.config(apps=[app], **SIM_KEYS) % {
            "url": self.bare, "kubeconfig": self.sim.kubeconfig}
        d = harness.Daemon(text, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.start()
        return d

    def test_manual_delete_is_put_back(self):
        d = self.start(2)
        # No webhook: the first drift sync applies the branch head.
        self.wait(lambda: self.deployment()[0] == 200, 30,
                  "drift never applied the app:\n" + d.log()[-3000:])
        app = d.api("/api/v1/apps/demo")
        self.wait(lambda: d.api("/api/v1/apps/demo").get("revision") ==
                  self.head, 30, "revision not recorded")
        uid = self.deployment()[1]["metadata"]["uid"]
        st, _ = self.sim.call(
            "DELETE", "/apis/apps/v1/namespaces/demo/deployments/web")
        self.assertEqual(st, 200)
        # The object is gone -- or already put back by a drift sync that
        # was running as it was deleted (every 2 s; slower under
        # Valgrind): then it is a new object, with a new uid.
        st, obj = self.deployment()
        if st == 200:
            self.assertNotEqual(obj["metadata"]["uid"], uid)
        else:
            self.assertEqual(st, 404)
        self.wait(lambda: self.deployment()[0] == 200, 30,
                  "manual delete not repaired:\n" + d.log()[-3000:])
        jobs = d.api("/api/v1/jobs?app=demo&kind=sync")["jobs"]
        self.assertGreaterEqual(len(jobs), 2)
        self.assertIsNotNone(app)

    def test_off_by_default(self):
        d = self.start(0)
        time.sleep(3)   # the absence of a drift sync is under test
        self.assertEqual(self.deployment()[0], 404)
        self.assertEqual(d.api("/api/v1/jobs?app=demo")["jobs"], [])


if __name__ == "__main__":
    unittest.main()
