"""`make run`'s demo, as a user runs it: scripts/demo.sh in a temporary copy
of the tree (its var/ is the copy's), on free ports
(GITOPSD_DEMO_PORT/GITOPSD_DEMO_ADMIN_PORT), then the three commands it
prints, copied from its output and run with sh:

  1. scripts/demo-image.sh 1.1.0 plays the registry -> gitopsd commits the
     new tag to the demo's bare repository and syncs it;
  2. scripts/demo-push.sh plays GitHub (a signed push of that head);
  3. gitopsctl app demo shows the new revision, Healthy and tag 1.1.0.
The simulated cluster runs the new image.  Ctrl-C (SIGINT to the process
group) stops gitopsd and the simulator; demo.sh exits 0."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
from e2e_peers import git

ROOT = harness.ROOT


class DemoTest(unittest.TestCase):
    def setUp(self):
        harness.binary("gitopsd")
        harness.binary("gitopsctl")
        self.tree = tempfile.mkdtemp(prefix="gitopsd-demo-")
        self.addCleanup(shutil.rmtree, self.tree, True)
        for d in ("scripts", "config"):
            shutil.copytree(os.path.join(ROOT, d), os.path.join(self.tree, d))
        os.makedirs(os.path.join(self.tree, "test", "support"))
        shutil.copy(os.path.join(ROOT, "test", "support", "kubesim.py"),
                    os.path.join(self.tree, "test", "support"))
        if harness.VALGRIND:
            self.valgrind_build()
        else:
            os.symlink(os.path.join(ROOT, harness.BUILD),
                       os.path.join(self.tree, harness.BUILD))
        self.port, self.admin_port = harness.free_port(), harness.free_port()
        self.out_path = os.path.join(self.tree, "demo.out")
        self.out = open(self.out_path, "wb")
        self.addCleanup(self.out.close)
        env = dict(os.environ, GITOPSD_BUILD=harness.BUILD,
                   GITOPSD_DEMO_PORT=str(self.port),
                   GITOPSD_DEMO_ADMIN_PORT=str(self.admin_port))
        self.proc = subprocess.Popen(
            ["sh", "scripts/demo.sh"], cwd=self.tree, env=env,
            stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(self.kill)

    def valgrind_build(self):
        """demo.sh runs $GITOPSD_BUILD/gitopsd itself: under `make
        valgrind` that is a script exec'ing memcheck on the real binary
        (same pid, so demo.sh's signals reach it), and an error or a
        definite leak becomes demo.sh's exit status."""
        build = os.path.join(self.tree, harness.BUILD)
        os.makedirs(build)
        os.symlink(os.path.join(ROOT, harness.BUILD, "gitopsctl"),
                   os.path.join(build, "gitopsctl"))
        cmd = " ".join(shlex.quote(a) for a in harness.valgrind_wrap(
            [os.path.join(ROOT, harness.BUILD, "gitopsd")]))
        harness.write(os.path.join(build, "gitopsd"),
                      "#!/bin/sh\nexec %s \"$@\"\n" % cmd, mode=0o755)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait(self, what, pred, timeout=60):
        deadline = time.time() + timeout * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            v = pred()
            if v:
                return v
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.fail("%s never happened; demo.sh output:\n%s"
                  % (what, self.output()[-5000:]))

    def commands(self):
        """The three commands printed after "In another terminal", once
        gitopsd serves."""
        def ready():
            try:
                r = harness.request(self.admin_port, "GET", "/readyz",
                                    timeout=2)
            except OSError:
                return None
            return r.status == 200
        self.wait("gitopsd ready", ready)
        lines = self.output().split("\n")
        i = [n for n, l in enumerate(lines)
             if l.startswith("In another terminal")][0]
        cmds = [l.split("#")[0].strip() for l in lines[i + 1:i + 4]]
        self.assertEqual(len([c for c in cmds if c]), 3, lines[i:i + 4])
        return cmds

    def run_cmd(self, cmd):
        p = subprocess.run(["sh", "-c", cmd], cwd=self.tree,
                           capture_output=True, text=True, timeout=30,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                "HOME": self.tree})
        self.assertEqual(p.returncode, 0, (cmd, p.stdout, p.stderr))
        return p.stdout

    def kube_deployment(self):
        kube = os.path.join(self.tree, "var", "demo", "kube")
        with open(os.path.join(self.tree, "var", "demo",
                               "kubesim.log")) as f:
            port = int(f.readline())
        with open(os.path.join(kube, "token")) as f:
            token = f.read().strip()
        ctx = ssl.create_default_context(cafile=os.path.join(kube, "ca.crt"))
        req = urllib.request.Request(
            "https://127.0.0.1:%d/apis/apps/v1/namespaces/demo/deployments/web"
            % port, headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.loads(r.read()), port

    def test_demo_three_commands(self):
        image_cmd, push_cmd, ctl_cmd = self.commands()
        self.assertIn("scripts/demo-image.sh 1.1.0", image_cmd)
        self.assertIn("scripts/demo-push.sh", push_cmd)
        self.assertRegex(ctl_cmd, r"gitopsctl .*app demo$")
        # The status page's address, printed, serves the page.
        m = re.search(r"(?m)^\s+status page: (http://127\.0\.0\.1:(\d+)/)\s",
                      self.output())
        self.assertTrue(m, self.output())
        self.assertEqual(int(m.group(2)), self.admin_port)
        with urllib.request.urlopen(m.group(1), timeout=10) as page:
            self.assertEqual(page.headers["Content-Type"],
                             "text/html; charset=utf-8")
        bare = os.path.join(self.tree, "var", "demo", "deploy.git")
        before = git("rev-parse", "main", cwd=bare)

        # 1. The registry: accepted, one job; the tag is committed.
        r = json.loads(self.run_cmd(image_cmd))
        self.assertEqual(len(r["jobs"]), 1, r)
        self.wait("the demo commit", lambda: git(
            "rev-parse", "main", cwd=bare) != before)
        head = git("rev-parse", "main", cwd=bare)
        self.assertEqual(git("rev-parse", "main~1", cwd=bare), before)
        diff = git("diff", "-U0", before, head, cwd=bare)
        self.assertEqual([l for l in diff.split("\n")
                          if l[:1] in "+-" and l[:3] not in ("+++", "---")],
                         ["-          image: localhost:5000/demo/web:1.0.0",
                          "+          image: localhost:5000/demo/web:1.1.0"])

        # 2. GitHub: a signed push of that head, accepted.
        r = json.loads(self.run_cmd(push_cmd))
        self.assertTrue(r.get("jobs"), r)

        # 3. gitopsctl shows the revision, the health and the tag.
        def shown():
            out = self.run_cmd(ctl_cmd)
            ok = (re.search(r"(?m)^revision:\s+%s$" % head, out) and
                  re.search(r"(?m)^health:\s+Healthy$", out) and
                  re.search(r"(?m)^\s+localhost:5000/demo/web\s+1\.1\.0\s",
                            out))
            return out if ok else None
        self.wait("gitopsctl app demo at %s, Healthy, 1.1.0" % head[:12],
                  shown)
        dep, sim_port = self.kube_deployment()
        self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]
                         ["image"], "localhost:5000/demo/web:1.1.0")
        self.assertEqual(dep["status"]["availableReplicas"], 2)

        # Ctrl-C: everything stops, demo.sh exits 0.
        os.killpg(self.proc.pid, signal.SIGINT)
        self.assertEqual(self.proc.wait(60 * harness.TIMEOUT_SCALE), 0,
                         self.output()[-3000:])
        self.assertIn("draining", self.output())
        for port in (self.port, self.admin_port, sim_port):
            with self.assertRaises(ConnectionRefusedError, msg=port):
                socket.create_connection(("127.0.0.1", port), 2).close()


if __name__ == "__main__":
    unittest.main()
