"""Socket activation: gitopsd serves the listening sockets systemd passes
(LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, sd_listen_fds(3)) instead of
binding the configured addresses, and the socket units verify."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness

ROOT = harness.ROOT

CONFIG = harness.config(
    shutdown_timeout_s=None,
    repos=None,
    apps=None)


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


class SocketActivationTest(unittest.TestCase):
    def test_inherited_sockets_are_served(self):
        pub, adm = listener(), listener()
        self.addCleanup(pub.close)
        self.addCleanup(adm.close)
        d = harness.Daemon(CONFIG, secrets={"github.secret": "x" * 20})
        self.addCleanup(d.cleanup)
        # Names in the other order than the fds: the names decide.
        # Through 8/9 first: the originals may themselves be 3 or 4.
        script = ("exec 8<&%d 9<&%d; exec 3<&8 4<&9 8<&- 9<&-; "
                  "LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=admin:public "
                  "exec \"$0\" \"$@\"" % (adm.fileno(), pub.fileno()))
        logf = open(d.log_path, "ab")
        self.addCleanup(logf.close)
        d.proc = subprocess.Popen(
            ["sh", "-c", script] +
            harness.valgrind_wrap([harness.binary(), "-c", d.config_path]),
            pass_fds=(pub.fileno(), adm.fileno()), stdout=logf,
            stderr=subprocess.STDOUT, cwd=d.tmp)
        pport, aport = pub.getsockname()[1], adm.getsockname()[1]
        pub.close()
        adm.close()
        deadline = time.time() + 30 * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            try:
                if harness.request(aport, "GET", "/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        self.assertEqual(harness.request(aport, "GET", "/readyz").status, 200,
                         d.log())
        self.assertEqual(harness.request(pport, "GET", "/healthz").status, 200)
        self.assertEqual(harness.request(pport, "POST", "/hooks/github",
                                         b"{}").status, 401)
        # The configured addresses were not bound.
        with self.assertRaises(OSError):
            harness.request(d.port, "GET", "/healthz", timeout=2)
        self.assertIn("socket activation", d.log())
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "no systemd-analyze")
    def test_socket_units_verify(self):
        tmp = tempfile.mkdtemp(prefix="gitopsd-units-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(ROOT, "systemd", "gitopsd.service")) as f:
            unit = f.read()
        unit = unit.replace("/usr/local/bin/gitopsd", harness.binary())
        # Documentation= man pages are checked by the service's own test.
        unit = "\n".join(l for l in unit.splitlines()
                         if not l.startswith("Documentation="))
        with open(os.path.join(tmp, "gitopsd.service"), "w") as f:
            f.write(unit + "\n")
        for name in ("gitopsd-public.socket", "gitopsd-admin.socket"):
            with open(os.path.join(ROOT, "systemd", name)) as f:
                text = "\n".join(l for l in f.read().splitlines()
                                 if not l.startswith("Documentation="))
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text + "\n")
        out = subprocess.run(
            ["systemd-analyze", "verify",
             os.path.join(tmp, "gitopsd-public.socket"),
             os.path.join(tmp, "gitopsd-admin.socket")],
            capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        noise = [l for l in (out.stdout + out.stderr).splitlines()
                 if "gitopsd" in l]
        self.assertEqual(noise, [])


if __name__ == "__main__":
    unittest.main()
