"""The daemon's foundation: routes, status codes, limits, TLS, reload,
drain, systemd notifications.  Real gitopsd processes on 127.0.0.1."""
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness

SECRET = "s3cret-for-daemon-tests"

BASE = """
shutdown_timeout_s: 5
server:
  listen: "127.0.0.1:{port}"
  max_body_bytes: 4096
  max_header_bytes: 2048
  read_timeout_s: 2
  max_connections: 8
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: github, type: github, secret_file: github.secret}
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0, branch: main}
apps:
  - {name: web, repo: deploy, path: apps/web}
"""


def raw(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


class DaemonTest(unittest.TestCase):
    def start(self, text=BASE, env=None, tls=False):
        self.d = harness.Daemon(text, secrets={"github.secret": SECRET},
                                env=env)
        self.addCleanup(self.d.cleanup)
        self.d.start()
        return self.d

    def test_version_and_help(self):
        out = harness.run_tool([harness.binary(), "--version"],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, r"^gitopsd \d+\.\d+\.\d+")
        out = harness.run_tool([harness.binary(), "--bogus"],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)
        out = harness.run_tool([harness.binary(), "--log-format", "xml"],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)

    def test_config_check(self):
        d = harness.Daemon(BASE, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        out = harness.run_tool([harness.binary(), "-t", "-c", d.config_path],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("configuration OK", out.stdout)
        bad = BASE.replace("type: github", "type: nosuchhost") + \
            "bogus_key: 1\n"
        d.write_config(bad)
        out = harness.run_tool([harness.binary(), "-t", "-c", d.config_path],
                               capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        # Every error, each as FILE:LINE:COLUMN: key: message.
        self.assertRegex(out.stdout, r"gitopsd\.yaml:\d+:\d+: bogus_key: ")
        self.assertRegex(out.stdout,
                         r"gitopsd\.yaml:\d+:\d+: sources\[0\]\.type: .*nosuchhost")
        self.assertNotIn("configuration OK", out.stdout)

    def test_routes_and_codes(self):
        d = self.start()
        r = d.get("/healthz")
        self.assertEqual(r.status, 200)
        r = d.admin("GET", "/readyz")
        self.assertEqual(r.status, 200)
        r = d.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json(), {"error": "not found", "code": 404})
        r = d.post("/hooks/unknown", b"{}", {"Content-Type": "application/json"})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["code"], 404)
        r = d.post("/hooks/..%2f..%2fetc", b"{}")
        self.assertEqual(r.status, 404)
        r = d.get("/hooks/github")
        self.assertEqual(r.status, 405)
        r = d.post("/hooks/github", b"{}", {"Content-Type": "application/json",
                                            "X-GitHub-Event": "push"})
        self.assertEqual(r.status, 401)
        r = d.post("/hooks/github", b"x" * 5000,
                   {"Content-Type": "application/json"})
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["code"], 413)
        m = d.admin("GET", "/metrics")
        self.assertEqual(m.status, 200)
        self.assertIn(b'gitopsd_webhooks_total{source="github",code="401"} 1',
                      m.body)
        self.assertIn(b"gitopsd_build_info{version=", m.body)
        # No secret in the log.
        self.assertNotIn(SECRET, d.log())

    def test_request_log_line(self):
        d = self.start()
        body = harness.github_push_body("https://git.example.invalid/x/y.git")
        d.post("/hooks/github", body,
               harness.github_headers(SECRET, body, "dlv-log-1"))
        time.sleep(0.2)
        line = [l for l in d.log().splitlines() if "dlv-log-1" in l]
        self.assertTrue(line, d.log())
        self.assertIn("source=github", line[0])
        self.assertIn("status=200", line[0])
        self.assertRegex(line[0], r"ms=\d+\.\d+")

    def test_json_log_format(self):
        d = harness.Daemon(BASE, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.start(extra_args=["--log-format", "json"])
        d.get("/healthz")
        d.get("/nope")
        time.sleep(0.2)
        lines = [l for l in d.log().splitlines() if l.startswith("{")]
        self.assertTrue(lines)
        for l in lines:
            json.loads(l)

    def test_header_cap_and_slow_client(self):
        d = self.start()
        out = raw(d.port, b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 4000 +
                  b"\r\n\r\n")
        self.assertIn(b" 431 ", out.split(b"\r\n")[0])
        # A client that trickles its headers is cut off (read_timeout_s 2)
        # while another is served.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=6)
        t0 = time.time()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        got = b""
        for _ in range(30):
            try:
                s.sendall(b"X: y\r\n")
            except OSError:
                break
            self.assertEqual(d.get("/healthz").status, 200)
            time.sleep(0.2)
            s.setblocking(False)
            try:
                got += s.recv(4096)
            except BlockingIOError:
                pass
            s.setblocking(True)
            if got:
                break
        s.close()
        self.assertIn(b" 408 ", got)
        self.assertLess(time.time() - t0, 5)

    def test_connection_cap(self):
        d = self.start()
        socks = [socket.create_connection(("127.0.0.1", d.port))
                 for _ in range(8)]
        time.sleep(0.2)
        try:
            out = raw(d.port, b"GET /healthz HTTP/1.1\r\n\r\n", timeout=2)
            self.assertIn(b" 503 ", out)
        finally:
            for s in socks:
                s.close()
        time.sleep(0.2)
        self.assertEqual(d.get("/healthz").status, 200)

    def test_reload(self):
        d = self.start()
        # A valid change: a second source appears; the port stays.
        text = BASE.replace(
            "sources:\n",
            "sources:\n  - {name: gh2, type: github, secret_file: github.secret}\n")
        d.write_config(text)
        d.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline:
            if d.post("/hooks/gh2", b"{}", {"Content-Type":
                                           "application/json"}).status == 401:
                break
            time.sleep(0.1)
        self.assertEqual(d.post("/hooks/gh2", b"{}").status, 401)
        # An invalid file is refused; the running config stays.
        d.write_config(text + "nonsense: [\n")
        d.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertIn("reload refused", d.log())
        self.assertEqual(d.post("/hooks/gh2", b"{}").status, 401)
        self.assertEqual(d.get("/healthz").status, 200)
        # A new listen address is rebound; the old one closes.
        newport = harness.free_port()
        d.write_config(text.replace("127.0.0.1:{port}",
                                    "127.0.0.1:%d" % newport))
        d.signal(signal.SIGHUP)
        deadline = time.time() + 5
        ok = False
        while time.time() < deadline and not ok:
            try:
                ok = harness.request(newport, "GET", "/healthz").status == 200
            except OSError:
                time.sleep(0.1)
        self.assertTrue(ok, d.log())
        with self.assertRaises(OSError):
            harness.request(d.port, "GET", "/healthz", timeout=2)
        self.assertEqual(d.stop(), 0)

    def test_ipv6_listen(self):
        text = BASE.replace('admin: {listen: "127.0.0.1:{admin_port}"}',
                            'admin: {listen: "[::1]:{admin_port}"}')
        d = harness.Daemon(text, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.start(wait=False)
        deadline = time.time() + 30
        status = None
        while time.time() < deadline and status != 200:
            try:
                c = socket.create_connection(("::1", d.admin_port), timeout=2)
                c.sendall(b"GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n")
                status = int(c.recv(100).split()[1])
                c.close()
            except OSError:
                time.sleep(0.1)
        self.assertEqual(status, 200, d.log())
        self.assertIn("admin: http://[::1]:", d.log())

    def test_queue_full_503(self):
        text = BASE.replace("state: {path:", "queue: {max_queued: 1}\nstate: {path:")
        text = text.replace("branch: main}\n", "branch: main}\n" +
                            harness.DEAD_CLUSTER)
        text = text.replace("path: apps/web}", "path: apps/web, cluster: c}")
        d = harness.Daemon(text, secrets={"github.secret": SECRET,
                                          **harness.DEAD_CLUSTER_FILES})
        self.addCleanup(d.cleanup)
        d.start()
        url = "https://git.example.invalid/acme/deploy.git"
        codes = {}
        last = None
        for i in range(6):
            body = harness.github_push_body(url)
            r = d.post("/hooks/github", body,
                       harness.github_headers(SECRET, body, "full-%d" % i))
            codes["full-%d" % i] = r.status
            if r.status == 503:
                last = r
        # One sync runs (one per app); one may wait; the rest are refused.
        self.assertIn(503, codes.values(), codes)
        self.assertEqual(last.json()["error"], "queue full")
        self.assertIn("Retry-After", last.headers)
        # Exactly the accepted deliveries were stored.
        events = d.api("/api/v1/events")["events"]
        self.assertEqual(sorted(e["delivery"] for e in events),
                         sorted(k for k, v in codes.items() if v == 202))

    def test_rate_limit(self):
        text = BASE.replace(
            "secret_file: github.secret}",
            "secret_file: github.secret, rate_limit: {rps: 0.5, burst: 2}}")
        d = self.start(text)
        codes = [d.post("/hooks/github", b"{}").status for _ in range(3)]
        self.assertEqual(codes, [401, 401, 429])
        r = d.post("/hooks/github", b"{}")
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json()["code"], 429)
        self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
        # Other routes and the bucket's refill are unaffected.
        self.assertEqual(d.get("/healthz").status, 200)
        time.sleep(2.2)
        self.assertEqual(d.post("/hooks/github", b"{}").status, 401)

    def test_sigterm_exits_zero(self):
        d = self.start()
        self.assertEqual(d.stop(), 0)
        self.assertIn("draining", d.log())

    def test_sd_notify(self):
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        self.addCleanup(sock.close)
        d = self.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        seen = []

        def wait_for(word):
            deadline = time.time() + 10
            while time.time() < deadline:
                msg = sock.recv(4096).decode()
                seen.append(msg)
                if word in msg:
                    return
            self.fail("%s not sent; got %r" % (word, seen))

        wait_for("READY=1")
        wait_for("WATCHDOG=1")
        wait_for("WATCHDOG=1")
        d.signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        wait_for("READY=1")
        d.signal(signal.SIGTERM)
        wait_for("STOPPING=1")
        self.assertEqual(d.proc.wait(10), 0)

    def test_tls(self):
        tmp = tempfile.mkdtemp()
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                        "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        text = BASE.replace("  max_connections: 8\n",
                            "  max_connections: 8\n  tls: {cert_file: %s, "
                            "key_file: %s}\n" % (cert, key))
        d = self.start(text)
        ctx = ssl.create_default_context(cafile=cert)
        with socket.create_connection(("127.0.0.1", d.port)) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                self.assertIn(t.version(), ("TLSv1.2", "TLSv1.3"))
                t.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
                self.assertIn(b" 200 ", t.recv(4096))
        # TLS 1.1 is refused.
        ctx11 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx11.check_hostname = False
        ctx11.verify_mode = ssl.CERT_NONE
        try:
            ctx11.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx11.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, AttributeError):
            return
        with socket.create_connection(("127.0.0.1", d.port)) as s:
            with self.assertRaises((ssl.SSLError, OSError)):
                with ctx11.wrap_socket(s) as t:
                    t.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                    t.recv(100)


if __name__ == "__main__":
    unittest.main()
