"""What one client or one resource limit can do to the listener: the
descriptor limit (gitopsd under `prlimit --nofile`), one client holding
connections (a second client bound to 127.0.0.2 is still served), and an
unsigned flood against a source's rate limit.  Real gitopsd processes on
127.0.0.0/8."""
import os
import re
import resource
import socket
import time
import unittest

import harness

SECRET = "s3cret-for-limit-tests"

BASE = """
shutdown_timeout_s: 5
server:
  listen: "127.0.0.1:{port}"
  read_timeout_s: 30
  max_connections: %(max)d
  max_connections_per_client: %(per_client)d
admin: {listen: "127.0.0.1:{admin_port}"}
queue: {workers: 1}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: github, type: github, secret_file: github.secret%(rate)s}
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0, branch: main}
clusters:
  - {name: c, kubeconfig: kc}
apps:
  - {name: web, repo: deploy, path: apps/web, cluster: c}
"""

# A cluster nobody listens on: sync jobs fail later; webhooks are
# answered when stored, which is all these tests look at.
KUBECONFIG = ("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n"
              "  cluster: {server: \"https://127.0.0.1:1\"}\nusers:\n"
              "- name: u\n  user: {token: t}\ncontexts:\n- name: x\n"
              "  context: {cluster: c, user: u}\ncurrent-context: x\n")


def config(max_conn=1024, per_client=256, rate=""):
    return BASE % {"max": max_conn, "per_client": per_client, "rate": rate}


class NofileDaemon(harness.Daemon):
    """gitopsd started under `prlimit --nofile=512:512`: soft and hard, so
    gitopsd cannot raise the soft limit out of the way.  prlimit execs
    gitopsd: the process id is gitopsd's."""
    command_prefix = ["prlimit", "--nofile=512:512", "--"]


def cpu_seconds(pid):
    """utime + stime of a process from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5), counted after "pid (comm)".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def status_of(sock):
    """The status code the server sent on an otherwise idle connection,
    or None if it sent nothing within a short wait."""
    sock.settimeout(0.5)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return "reset"
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(m.group(1)) if m else ("closed" if not data else data[:40])


def get_from(port, path, source):
    s = connect(port, source)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(re.match(rb"HTTP/1\.1 (\d{3}) ", data).group(1))
    finally:
        s.close()


def refused_lines(log):
    """Lines about refused connections or failed accept() calls (today's
    summary line, and the per-connection and libevent lines it replaced)."""
    return [l for l in log.splitlines()
            if re.search(r"connections? (refused|dropped)|from accept\(\)",
                         l)]


class LimitsTest(unittest.TestCase):
    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2048 <= hard or soft < hard < 2048:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(hard, 4096), hard))
        self.socks = []
        self.addCleanup(self.close_all)

    def close_all(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def daemon(self, cls, text):
        d = cls(text, secrets={"github.secret": SECRET, "kc": KUBECONFIG})
        self.addCleanup(d.cleanup)
        d.start()
        return d

    def test_descriptor_limit_no_spin(self):
        """max_connections 1024 under a 512-descriptor limit: gitopsd
        lowers it and logs so, more connections than the limit neither
        spin the loop nor flood the log, /healthz answers on the admin
        listener meanwhile and on the public one afterwards."""
        d = self.daemon(NofileDaemon, config(max_conn=1024, per_client=0))
        m = re.search(r"max_connections lowered.*max_connections=(\d+).*",
                      d.log())
        self.assertIsNotNone(m, d.log())
        effective = int(m.group(1))
        self.assertLess(effective, 512 - 64)
        # 512, or a few less when Valgrind keeps descriptors for itself.
        nofile = int(re.search(r"nofile=(\d+)", m.group(0)).group(1))
        self.assertTrue(480 <= nofile <= 512, m.group(0))

        for _ in range(700):
            try:
                self.socks.append(connect(d.port))
            except OSError:
                break	# the backlog is full: fine, the load is there
        self.assertGreater(len(self.socks), effective)
        # Over a few seconds with every connection held, the process
        # must be idle, not accepting and failing in a loop.
        time.sleep(0.5)
        cpu0, t0 = cpu_seconds(d.proc.pid), time.time()
        time.sleep(3)
        busy = (cpu_seconds(d.proc.pid) - cpu0) / (time.time() - t0)
        self.assertLess(busy, 0.25, "gitopsd used %.0f%% of a core while "
                        "holding connections" % (busy * 100))
        self.assertEqual(d.admin("GET", "/healthz").status, 200)
        # Connections past the limit were answered 503 or closed.
        statuses = [status_of(s) for s in self.socks[effective:]]
        self.assertIn(503, statuses)
        self.close_all()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if d.get("/healthz", timeout=2).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        self.assertEqual(d.get("/healthz").status, 200)
        lines = refused_lines(d.log())
        self.assertLessEqual(len(lines), 4, "\n".join(lines[:20]))
        metrics = d.admin("GET", "/metrics").body.decode()
        self.assertRegex(metrics, r'gitopsd_connections_refused_total\{'
                         r'listener="public",cause="max_connections",'
                         r'outcome="refused"\} [1-9]')

    def test_one_client_cannot_hold_every_connection(self):
        """max_connections 30, 20 per client: 40 connections from
        127.0.0.1 get 20 served and the rest 503 (or a close); a client
        on 127.0.0.2 is served; one summary line, not one per refusal."""
        d = self.daemon(harness.Daemon, config(max_conn=30, per_client=20))
        for _ in range(40):
            self.socks.append(connect(d.port))
        time.sleep(0.3)
        statuses = [status_of(s) for s in self.socks]
        self.assertEqual(statuses[:20], [None] * 20, statuses)
        self.assertEqual(set(statuses[20:]), {503}, statuses)
        self.assertEqual(get_from(d.port, "/healthz", "127.0.0.2"), 200)
        # The 127.0.0.1 connections still held are served.
        s = self.socks[0]
        s.settimeout(5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200 "))
        metrics = d.admin("GET", "/metrics").body.decode()
        self.assertIn('gitopsd_connections_refused_total{listener="public",'
                      'cause="max_connections_per_client",'
                      'outcome="refused"} 20', metrics)
        # The first refusal is logged at once, the others summed into
        # the line at the period's end (here: at the stop).
        d.stop()
        lines = [l for l in d.log().splitlines()
                 if "connection" in l and "refused" in l]
        self.assertEqual(len(lines), 2, "\n".join(lines))
        self.assertEqual(sum(int(re.search(
            r"max_connections_per_client=(\d+)", l).group(1))
            for l in lines), 20, lines)
        self.assertIn("last_peer=127.0.0.1", lines[0])

    def test_unsigned_flood_does_not_starve_signed(self):
        """rate_limit 1/s, burst 3: 30 unsigned POSTs (401, then 429)
        leave the signed sender's budget whole: its pushes get 202."""
        d = self.daemon(harness.Daemon,
                        config(rate=", rate_limit: {rps: 1, burst: 3}"))
        codes = [d.post("/hooks/github", b"{}").status for _ in range(30)]
        self.assertEqual(codes[:3], [401] * 3)
        self.assertEqual(set(codes[3:]), {429})
        url = "https://git.example.invalid/acme/deploy.git"
        for i in range(3):
            body = harness.github_push_body(url, paths=["apps/web/d.yaml"])
            r = d.post("/hooks/github", body,
                       harness.github_headers(SECRET, body, "signed-%d" % i))
            self.assertEqual(r.status, 202, r)
        # The signed sender's own bucket still holds: a fourth at once is
        # over its burst.
        body = harness.github_push_body(url, paths=["apps/web/d.yaml"])
        r = d.post("/hooks/github", body,
                   harness.github_headers(SECRET, body, "signed-3"))
        self.assertEqual(r.status, 429, r)
        self.assertIn("cause=\"rate limit of unverified requests\"",
                      d.log())


if __name__ == "__main__":
    unittest.main()
