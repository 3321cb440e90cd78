"""Start and stop real gitopsd processes for integration tests.

config(**keys) builds the YAML text of a configuration from the defaults
every test shares.  Daemon(config_text) writes the configuration (with
{tmp}, {port}, {admin_port} placeholders filled in) into a fresh temporary
directory, starts $GITOPSD_BUILD/gitopsd on 127.0.0.1 with free ports,
waits for /readyz, and stops it (SIGTERM, then SIGKILL) in stop().  Every
test that starts one stops it in tearDown or a finally block.
wait_until(pred) waits on a condition where a test would otherwise sleep.
"""
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GITOPSD_BUILD", "build-san")
# `make valgrind`: every daemon runs under memcheck; an error or a definite
# leak makes it exit VALGRIND_RC, which cleanup() turns into a failure.
VALGRIND = bool(os.environ.get("GITOPSD_VALGRIND"))
VALGRIND_RC = 99
TIMEOUT_SCALE = 10 if VALGRIND else 1


def valgrind_wrap(args):
    """args (a gitopsd, gitopsctl or support-tool command line) under
    memcheck when GITOPSD_VALGRIND is set, else unchanged."""
    if not VALGRIND:
        return list(args)
    return ["valgrind", "--quiet", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-fds=no",
            "--suppressions=%s" % os.path.join(ROOT, "test", "valgrind.supp"),
            "--error-exitcode=%d" % VALGRIND_RC] + list(args)


def run_tool(args, timeout=60, **kw):
    """subprocess.run of a short gitopsd, gitopsctl or support-tool command
    line (under memcheck in `make valgrind`, where a memcheck report fails
    the test)."""
    p = subprocess.run(valgrind_wrap(args), timeout=timeout * TIMEOUT_SCALE,
                       **kw)
    if VALGRIND and p.returncode == VALGRIND_RC:
        err = p.stderr or b""
        if isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        raise AssertionError("valgrind found errors in %s:\n%s"
                             % (" ".join(args), err[-4000:]))
    return p


def binary(name="gitopsd"):
    path = os.path.join(ROOT, BUILD, name)
    if not os.path.exists(path):
        raise RuntimeError("%s not built (make B=%s)" % (path, BUILD))
    return path


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def github_signature(secret, body):
    if isinstance(secret, str):
        secret = secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def write(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.chmod(path, mode)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


def request(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, dict(r.getheaders()), r.read())
    finally:
        conn.close()


class Daemon:
    """A gitopsd process on a temporary configuration."""
    # Words before the command line, e.g. ["prlimit", "--nofile=...", "--"].
    command_prefix = []

    def __init__(self, config_text, tmp=None, secrets=None, env=None,
                 ports=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="gitopsd-test-")
        self.own_tmp = tmp is None
        self.port, self.admin_port = ports or (free_port(), free_port())
        for name, value in (secrets or {}).items():
            write(os.path.join(self.tmp, name), value)
        self.config_path = os.path.join(self.tmp, "gitopsd.yaml")
        self.config_text = config_text
        self.write_config(config_text)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.valgrind_failed = False
        self.log_path = os.path.join(self.tmp, "gitopsd.log")

    def fill(self, text):
        return (text.replace("{tmp}", self.tmp)
                .replace("{port}", str(self.port))
                .replace("{admin_port}", str(self.admin_port)))

    def write_config(self, text):
        write(self.config_path, self.fill(text))

    def keep_valgrind_result(self):
        """Before a restart: what memcheck said about the previous process
        (stopped without a look at its exit status) still fails the test."""
        if VALGRIND and self.proc is not None and \
                self.proc.poll() == VALGRIND_RC:
            self.valgrind_failed = True

    def start(self, wait=True, extra_args=None):
        self.keep_valgrind_result()
        self.logf = open(self.log_path, "ab")
        args = [binary(), "-c", self.config_path, "--log-level", "debug"]
        args += extra_args or []
        args = self.command_prefix + valgrind_wrap(args)
        self.proc = subprocess.Popen(args, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     cwd=self.tmp)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout * TIMEOUT_SCALE
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gitopsd exited %d:\n%s" %
                                   (self.proc.returncode, self.log()))
            try:
                r = request(self.admin_port, "GET", "/readyz", timeout=2)
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gitopsd not ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def post(self, path, body, headers=None, timeout=30):
        return request(self.port, "POST", path, body, headers, timeout)

    def get(self, path, timeout=30):
        return request(self.port, "GET", path, None, None, timeout)

    def admin(self, method, path, body=None, headers=None):
        return request(self.admin_port, method, path, body, headers)

    def api(self, path, token=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        r = request(self.admin_port, "GET", path, None, h)
        if r.status != 200:
            raise AssertionError("%s -> %r" % (path, r))
        return r.json()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code (SIGKILL after timeout)."""
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = -9
        elif self.proc is not None:
            rc = self.proc.returncode
        if getattr(self, "logf", None):
            self.logf.close()
        return rc

    def cleanup(self):
        rc = self.stop(timeout=30 * TIMEOUT_SCALE)
        if VALGRIND and (rc == VALGRIND_RC or self.valgrind_failed):
            raise AssertionError("valgrind found errors:\n" + self.log()[-4000:])
        if self.own_tmp and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


# The configuration every integration test starts from: listeners on the
# daemon's free ports, state and work tree in its temporary directory, one
# GitHub source, one repository that is never reached, one app.
BASE_CONFIG = {
    "shutdown_timeout_s": 5,
    "server": {"listen": "127.0.0.1:{port}"},
    "admin": {"listen": "127.0.0.1:{admin_port}"},
    "state": {"path": "{tmp}/state.db"},
    "workdir": "{tmp}/repos",
    "sources": [{"name": "github", "type": "github",
                 "secret_file": "github.secret"}],
    "repos": [{"name": "deploy",
               "url": "https://git.example.invalid/acme/deploy.git",
               "branch": "main"}],
    "apps": [{"name": "web", "repo": "deploy", "path": "apps/web"}],
}


class _ConfigDumper(yaml.SafeDumper):
    """Writes a value shared between two keys twice: gitopsd refuses YAML
    aliases."""

    def ignore_aliases(self, data):
        return True


def config(**keys):
    """YAML text of BASE_CONFIG with the top-level keys given replaced or
    added; None drops a key.  server and admin add to the listener
    (limits, TLS, a token); another listen address replaces it.  Strings
    keep their {tmp}, {port}, {admin_port} placeholders for
    Daemon.fill().  A repository is not polled unless the test says so
    (poll_interval_s): a poll of a made-up host would leave the machine,
    and one of a loopback repository would queue syncs the test does not
    expect."""
    doc = dict(BASE_CONFIG)
    for key, value in keys.items():
        if value is None:
            doc.pop(key, None)
        elif key in ("server", "admin"):
            doc[key] = dict(BASE_CONFIG[key], **value)
        else:
            doc[key] = value
    if isinstance(doc.get("repos"), list):
        doc["repos"] = [dict(r, poll_interval_s=r.get("poll_interval_s", 0))
                        if isinstance(r, dict) else r for r in doc["repos"]]
    return yaml.dump(doc, Dumper=_ConfigDumper, sort_keys=False,
                     default_flow_style=None, allow_unicode=True,
                     width=1 << 16)


def wait_until(pred, timeout=30, interval=0.05, what=None):
    """Poll pred() until it returns a true value, and return that value;
    fails after timeout seconds (scaled under Valgrind) naming what."""
    deadline = time.time() + timeout * TIMEOUT_SCALE
    while True:
        got = pred()
        if got:
            return got
        if time.time() >= deadline:
            raise AssertionError("timed out waiting for %s (last: %r)" % (
                what or getattr(pred, "__name__", "a condition"), got))
        time.sleep(interval)


# A cluster whose API server is not there (port 1), for configurations
# whose apps must get sync jobs: an app without a cluster is updated in
# Git only and never synced.  Add DEAD_CLUSTER to the configuration text
# (or clusters=DEAD_CLUSTERS to config()), "cluster: c" to the apps, and
# DEAD_CLUSTER_FILES to the secrets.
DEAD_CLUSTER = "clusters:\n  - {name: c, kubeconfig: c.kubeconfig}\n"
DEAD_CLUSTERS = [{"name": "c", "kubeconfig": "c.kubeconfig"}]
DEAD_CLUSTER_FILES = {"c.kubeconfig": (
    "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n"
    "  cluster: {server: \"https://127.0.0.1:1\"}\nusers:\n"
    "- name: u\n  user: {token: t}\ncontexts:\n- name: x\n"
    "  context: {cluster: c, user: u}\ncurrent-context: x\n")}


def github_push_body(clone_url, ref="refs/heads/main", after=None,
                     before="0" * 40, paths=None, full_name="acme/deploy"):
    after = after or hashlib.sha1(os.urandom(8)).hexdigest()
    commit = {"id": after, "message": "change", "distinct": True,
              "added": [], "removed": [], "modified": paths or []}
    return json.dumps({
        "ref": ref, "before": before, "after": after, "created": False,
        "deleted": False, "forced": False,
        "commits": [commit], "head_commit": commit,
        "repository": {"full_name": full_name, "name": full_name.split("/")[-1],
                       "clone_url": clone_url,
                       "ssh_url": "git@example.invalid:%s.git" % full_name,
                       "html_url": "https://example.invalid/" + full_name},
        "pusher": {"name": "octo", "email": "octo@example.invalid"},
    }).encode()


def github_headers(secret, body, delivery, event="push"):
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": github_signature(secret, body)}


def urlquote(s):
    return urllib.parse.quote(s, safe="")
