"""The admin listener against browsers (DNS rebinding, cross-site request
forgery) and against being left open on a reachable address.

- A request whose Host is not the listener's address (localhost too on
  loopback, or an admin.allowed_hosts entry) is answered 421, before any
  route; /healthz and /readyz stay open to probes.
- A state-changing request with a foreign Origin (or "null"), or with a
  form content type, is answered 403 and changes nothing.
- An admin listener beyond loopback without a token is a configuration
  error, unless admin.insecure_no_token: true (then a warning).
- gitopsctl (libcurl: a proper Host, no Origin, no form type) still works.
"""
import os
import socket
import unittest

import harness

CTL = os.path.join(harness.ROOT, harness.BUILD, "gitopsctl")

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin:
  listen: "127.0.0.1:{admin_port}"
  allowed_hosts: [gitopsd.internal, "admin.example:8443"]
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: github, type: github, secret_file: github.secret}
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0}
apps:
  - {name: web, repo: deploy, path: apps/web, cluster: c}
""" + harness.DEAD_CLUSTER


def raw(port, head):
    """Send a hand-made request head; the status code of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


class AdminGuardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = harness.Daemon(CONFIG, secrets={"github.secret": "s" * 20,
                                                **harness.DEAD_CLUSTER_FILES})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def call(self, method, path, headers=None, body=None):
        return harness.request(self.d.admin_port, method, path, body,
                               headers or {})

    def sync_jobs(self):
        return self.d.api("/api/v1/jobs?app=web&kind=sync")["jobs"]

    def test_host_must_name_the_listener(self):
        port = self.d.admin_port
        for host, want in (
                ("127.0.0.1:%d" % port, 200),
                ("localhost:%d" % port, 200),   # bound to loopback
                ("LOCALHOST:%d" % port, 200),
                ("gitopsd.internal", 200),      # allowed, any port
                ("gitopsd.internal:1234", 200),
                ("admin.example:8443", 200),    # allowed with its port
                ("admin.example:%d" % port, 421),
                ("evil.example:%d" % port, 421),  # a rebound name
                ("evil.example", 421),
                ("127.0.0.1:%d" % (port + 1), 421),
                ("127.0.0.2:%d" % port, 421),
                ("[::1]:%d" % port, 421),       # not the bound address
                ("127.0.0.1:0%d" % port, 421),  # one spelling per port
                ("127.0.0.1:%d@evil" % port, 421)):
            r = self.call("GET", "/api/v1/apps", {"Host": host})
            self.assertEqual(r.status, want, host)
            if want == 421:
                self.assertIn("Host", r.json()["error"])
        r = self.call("GET", "/metrics", {"Host": "evil.example:%d" % port})
        self.assertEqual(r.status, 421)
        # Probes carry no data: any Host.
        for path in ("/readyz", "/healthz"):
            r = self.call("GET", path, {"Host": "evil.example"})
            self.assertEqual(r.status, 200, path)
        # No Host, or two.
        self.assertEqual(raw(port, "GET /api/v1/apps HTTP/1.0\r\n\r\n"), 421)
        self.assertEqual(raw(port, "GET /api/v1/apps HTTP/1.1\r\nHost: "
                             "127.0.0.1:%d\r\nHost: evil.example\r\n"
                             "Connection: close\r\n\r\n" % port), 421)
        self.assertIn("admin host", self.d.log())

    def test_foreign_origin_and_form_types_refused(self):
        port = self.d.admin_port
        before = len(self.sync_jobs())
        for origin in ("http://evil.example", "null",
                       "http://127.0.0.1:%d.evil.example" % port,
                       "http://127.0.0.1:%d" % (port + 1),
                       "https://127.0.0.1:%d" % (port + 1),
                       "file://"):
            r = self.call("POST", "/api/v1/apps/web/sync",
                          {"Origin": origin})
            self.assertEqual(r.status, 403, origin)
            self.assertIn("cross-origin", r.json()["error"])
        for ctype in ("application/x-www-form-urlencoded",
                      "multipart/form-data; boundary=x",
                      "text/plain;charset=UTF-8", " Text/Plain"):
            r = self.call("POST", "/api/v1/apps/web/sync",
                          {"Content-Type": ctype}, b"a=b")
            self.assertEqual(r.status, 403, ctype)
            self.assertIn("form content type", r.json()["error"])
        # Nothing was queued by the refused requests.
        self.assertEqual(len(self.sync_jobs()), before)
        # Same origin, JSON or no type: accepted.
        r = self.call("POST", "/api/v1/apps/web/sync",
                      {"Origin": "http://127.0.0.1:%d" % port,
                       "Content-Type": "application/json"}, b"{}")
        self.assertEqual(r.status, 202, r)
        r = self.call("POST", "/api/v1/apps/web/sync",
                      {"Origin": "http://localhost:%d" % port,
                       "Host": "localhost:%d" % port})
        self.assertEqual(r.status, 202, r)
        # Reading with a foreign Origin is not a change (and the browser
        # keeps the answer from the page: no CORS headers).
        r = self.call("GET", "/api/v1/apps", {"Origin": "http://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertNotIn("Access-Control-Allow-Origin", r.headers)
        self.assertIn("admin cross-site", self.d.log())

    @unittest.skipUnless(os.access(CTL, os.X_OK), "gitopsctl is not built")
    def test_gitopsctl_still_works(self):
        for url in ("http://127.0.0.1:%d" % self.d.admin_port,
                    "http://localhost:%d" % self.d.admin_port):
            p = harness.run_tool([CTL, "--url", url, "sync", "web"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            p = harness.run_tool([CTL, "--url", url, "apps"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class AdminTokenConfigTest(unittest.TestCase):
    """gitopsd -t on admin listeners beyond loopback (nothing is bound)."""

    def check(self, admin, secrets=None):
        d = harness.Daemon("""
admin: %s
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
""" % admin, secrets=secrets)
        self.addCleanup(d.cleanup)
        p = harness.run_tool([harness.binary(), "-t", "-c", d.config_path],
                             cwd=d.tmp, capture_output=True, text=True,
                             timeout=60)
        return p.returncode, p.stdout + p.stderr

    def test_beyond_loopback_needs_a_token(self):
        rc, out = self.check('{listen: "0.0.0.0:9090"}')
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"gitopsd.yaml:2:\d+: admin: the admin API "
                         r"listens on 0.0.0.0 without a token: set "
                         r"token_file \(or token_env\), or "
                         r"insecure_no_token: true")
        rc, out = self.check('{listen: "[::]:9090"}')
        self.assertEqual(rc, 1, out)
        rc, out = self.check('{listen: "0.0.0.0:9090", '
                             'insecure_no_token: true}')
        self.assertEqual(rc, 0, out)
        self.assertIn("warning: ", out)
        self.assertIn("without a token: anyone who reaches it", out)
        rc, out = self.check('{listen: "0.0.0.0:9090", token_file: t}',
                             secrets={"t": "token"})
        self.assertEqual(rc, 0, out)
        self.assertNotIn("without a token", out)
        rc, out = self.check('{listen: "127.0.0.1:9090"}')
        self.assertEqual(rc, 0, out)
        self.assertNotIn("without a token", out)


if __name__ == "__main__":
    unittest.main()
