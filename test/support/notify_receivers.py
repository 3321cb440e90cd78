"""Start and stop the alert receivers of test/support/notify_sink.py from
Python tests: Receiver("http", secret=...) or Receiver("smtp", ...).  Each
binds 127.0.0.1 (port 0, or a given port so a restarted receiver keeps its
address), records what it receives, and is stopped by the test that
started it (close() in tearDown/addCleanup).  The sink also exits when its
stdin (a pipe held here) closes."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "notify_sink.py")


class Receiver:
    def __init__(self, mode, record=None, port=0, secret=None, script=None,
                 cert=None, key=None, require_starttls=False, login=None):
        self.mode = mode
        self.dir = tempfile.mkdtemp(prefix="gitopsd-recv-")
        self.record = record or os.path.join(self.dir, "record.jsonl")
        self.args = ["/usr/bin/python3", SINK, mode, "--record", self.record,
                     "--port", str(port)]
        if secret is not None:
            self.args += ["--secret", secret]
        if script:
            self.args += ["--script", script]
        if cert:
            self.args += ["--cert", cert, "--key", key]
        if require_starttls:
            self.args += ["--require-starttls"]
        if login:
            self.args += ["--login", login]
        self.proc = None
        self.port = port

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError("receiver did not start: %r" % line)
        self.port = int(line.split()[1])
        # Keep the same port on a restart.
        i = self.args.index("--port")
        self.args[i + 1] = str(self.port)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self.proc = None

    def close(self):
        """Stop and remove the record directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def records(self):
        try:
            with open(self.record, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def auth_commands(self):
        """SMTP: every AUTH command the server received."""
        try:
            with open(self.record + ".auth", encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def set_script(self, text):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/_script" % self.port, data=text.encode(),
            method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def wait_records(self, n, timeout=30, pred=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            recs = [r for r in self.records() if pred is None or pred(r)]
            if len(recs) >= n:
                return recs
            time.sleep(0.1)
        return [r for r in self.records() if pred is None or pred(r)]


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return cert, key
