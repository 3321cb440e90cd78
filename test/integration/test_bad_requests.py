"""The catalogue of bad requests (test/fixtures/bad-requests/*.req): each
gets its documented status, nothing is stored, the daemon keeps serving,
and the log names the cause without echoing any secret.

Case file format: header lines `expect: <status> [<status>...]` (one per
pipelined response) and optional `raw: true`, a line `---`, then the
request.  Without `raw`, the request is a head and a body separated by the
first blank line: head lines get CRLF ends, `{len}` is the body length, and
`{sig:SRC}` / `{sig1:SRC}` / `{sigtrunc:SRC}` / `{signoprefix:SRC}` are
signatures of the body with source SRC's secret.  With `raw`, every LF
becomes CRLF.  Anywhere: `{repeat:X:N}` is X repeated N times, `\\xHH` a
byte, `{secret:SRC}` the secret itself (for URL tokens)."""
import hashlib
import hmac
import os
import re
import socket
import time
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "..", "fixtures", "bad-requests")

SECRETS = {
    "github": "gh-secret-7f3a9c",
    "gitlab": "gl-token-55e1b2",
    "generic": "gen-secret-a81c",
    "registry": "reg-token-0c4d9e",
    "dockerhub": "hub-token-0123456789abcdef0123456789abcdef",
}

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  max_body_bytes: 65536
  max_header_bytes: 8192
  read_timeout_s: 3
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
sources:
  - {name: github, type: github, secret_file: github.secret}
  - {name: gitlab, type: gitlab, token_file: gitlab.secret}
  - {name: generic, type: generic-hmac, secret_file: generic.secret}
  - {name: registry, type: registry, token_file: registry.secret}
  - {name: dockerhub, type: dockerhub, token_file: dockerhub.secret}
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0, branch: main}
apps:
  - name: web
    repo: deploy
    path: apps/web
    images: [{repository: docker.io/acme/web}]
"""


def expand(text):
    text = re.sub(r"\{repeat:(.):(\d+)\}", lambda m: m.group(1) * int(m.group(2)),
                  text)
    text = re.sub(r"\{secret:(\w+)\}", lambda m: SECRETS[m.group(1)], text)
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\x", i):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


def build(path):
    with open(path) as f:
        meta, req = f.read().split("---\n", 1)
    opts = dict(l.split(": ", 1) for l in meta.strip().splitlines())
    expect = [int(x) for x in opts["expect"].split()]
    if opts.get("raw") == "true":
        return expect, expand(req.replace("\n", "\r\n"))
    head, _, body = req.partition("\n\n")
    body = expand(body)

    def sig(m):
        kind, src = m.group(1), m.group(2)
        key = SECRETS[src].encode()
        if kind == "sig1":
            return "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
        h = hmac.new(key, body, hashlib.sha256).hexdigest()
        return {"sig": "sha256=" + h, "sigtrunc": "sha256=" + h[:40],
                "signoprefix": h}[kind]
    head = re.sub(r"\{(sig|sig1|sigtrunc|signoprefix):(\w+)\}", sig, head)
    head = head.replace("{len}", str(len(body)))
    return expect, expand(head.replace("\n", "\r\n")) + b"\r\n\r\n" + body


def statuses(data):
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.1 (\d{3}) ", data)]


def send(port, data, want):
    s = socket.create_connection(("127.0.0.1", port), timeout=6)
    out = b""
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass	# the server may answer and close before all is sent
        deadline = time.time() + 6
        while time.time() < deadline and len(statuses(out)) < want:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


class BadRequestsTest(unittest.TestCase):
    def test_catalogue(self):
        names = sorted(n for n in os.listdir(CASES) if n.endswith(".req"))
        self.assertGreaterEqual(len(names), 40)
        d = harness.Daemon(CONFIG, secrets={k + ".secret": v
                                            for k, v in SECRETS.items()})
        self.addCleanup(d.cleanup)
        d.start()
        before = d.api("/api/v1/events?limit=1000")["events"]
        for name in names:
            with self.subTest(case=name):
                expect, data = build(os.path.join(CASES, name))
                out = send(d.port, data, len(expect))
                self.assertEqual(statuses(out)[:len(expect)], expect,
                                 "%s: %r" % (name, out[:300]))
                # Every error body is the stable JSON shape.
                if expect[-1] >= 400:
                    self.assertRegex(out, rb'\{"error":"(?:[^"\\]|\\.)*","code":%d\}'
                                     % expect[-1])
                self.assertEqual(d.get("/healthz").status, 200)
        after = d.api("/api/v1/events?limit=1000")["events"]
        self.assertEqual(before, after, "a bad request was stored")
        log = d.log()
        for secret in SECRETS.values():
            self.assertNotIn(secret, log)
        # The log names each refusal's cause.
        self.assertGreaterEqual(len(re.findall(r"cause=", log)), len(names))


if __name__ == "__main__":
    unittest.main()
