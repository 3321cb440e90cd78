"""Real peers for the fault and secrets-hygiene tests (GitHTTP and git()
for the end-to-end and metrics tests too), each on 127.0.0.1 and stopped
by the test that started it:

- GitHTTP: git http-backend behind lighttpd with basic auth, which can be
  stopped and started again on the same port (the remote "goes down"), and
  whose repository can get a pre-receive hook (slow or refusing pushes).
- Kubesim: test/support/kubesim.py in its own temporary directory, with
  its fault injection and request log (for the sync and end-to-end tests
  too).
- PipeLogDaemon: a harness.Daemon started through `prlimit --fsize=N`
  whose output goes through a pipe copied by this process, so a file-size
  limit on gitopsd's writes does not also cut its log.
- SSHD: OpenSSH's sshd with one login key (with a passphrase) and the
  known_hosts line of its host key (needs root, for privilege separation).
- registry_push(): a Distribution push notification for one tag.
- wait_for(): poll with a deadline.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
KUBESIM = os.path.join(HERE, "kubesim.py")
FIXTURES = os.path.join(HERE, "..", "fixtures")
CT_V1 = "application/vnd.docker.distribution.events.v1+json"


def git(*args, cwd=None, check=True):
    r = subprocess.run(["git", "-c", "init.defaultBranch=main"] + list(args),
                       cwd=cwd, check=check, capture_output=True,
                       env=dict(os.environ, GIT_AUTHOR_NAME="t",
                                GIT_AUTHOR_EMAIL="t@example.invalid",
                                GIT_COMMITTER_NAME="t",
                                GIT_COMMITTER_EMAIL="t@example.invalid"))
    return r.stdout.decode().strip()


def wait_for(what, fn, timeout=30, interval=0.1):
    """fn() until it returns something true; AssertionError after timeout."""
    return harness.wait_until(fn, timeout, interval, what)


def make_repo(root, name, files):
    """A bare repository root/<name>.git holding files {path: text} on
    main; returns its path."""
    src = os.path.join(root, name + "-src")
    for rel, text in files.items():
        harness.write(os.path.join(src, rel), text, mode=0o644)
    git("init", "-q", src)
    git("add", ".", cwd=src)
    git("commit", "-q", "-m", "initial", cwd=src)
    bare = os.path.join(root, name + ".git")
    git("clone", "-q", "--bare", src, bare)
    shutil.rmtree(src, ignore_errors=True)
    return bare


class LoggedPeer:
    """A server process (self.proc) whose output goes to self.log; stop()
    ends it and closes the log, and may be called more than once."""
    proc = None
    log = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


class GitHTTP(LoggedPeer):
    """lighttpd + git http-backend serving root/*.git at /git/, basic auth
    user:password.  stop() then start() keeps the port.  Requests are
    logged to root/access.log (access_lines())."""

    def __init__(self, root, user, password):
        self.root = root
        self.port = harness.free_port()
        harness.write(os.path.join(root, "htpasswd"),
                      "%s:%s\n" % (user, password))
        self.conf = os.path.join(root, "lighttpd.conf")
        harness.write(self.conf, """
server.modules = ("mod_auth", "mod_authn_file", "mod_cgi", "mod_alias", "mod_setenv", "mod_accesslog")
server.document-root = "%(root)s"
accesslog.filename = "%(root)s/access.log"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(root)s/lighttpd-error.log"
auth.backend = "plain"
auth.backend.plain.userfile = "%(root)s/htpasswd"
auth.require = ( "/git/" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
alias.url = ( "/git/" => "/usr/lib/git-core/git-http-backend/" )
$HTTP["url"] =~ "^/git/" {
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => "%(root)s", "GIT_HTTP_EXPORT_ALL" => "1" )
}
""" % {"root": root, "port": self.port})
        self.proc = None
        self.log = None

    def access_lines(self):
        """The request lines logged so far ("GET /git/... HTTP/1.1")."""
        try:
            with open(os.path.join(self.root, "access.log")) as f:
                return [line.split('"')[1] for line in f if '"' in line]
        except FileNotFoundError:
            return []

    def url(self, name):
        """The clone URL of the repository root/name."""
        return "http://127.0.0.1:%d/git/%s" % (self.port, name)

    def start(self):
        self.log = open(os.path.join(self.root, "lighttpd.log"), "ab")
        self.proc = subprocess.Popen(["/usr/sbin/lighttpd", "-D", "-f",
                                      self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                harness.request(self.port, "GET", "/", timeout=1)
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("lighttpd did not start on %d" % self.port)


class SSHD(LoggedPeer):
    """sshd on 127.0.0.1 (free port) for root/ssh/: the ed25519 login key
    root/ssh/id (passphrase `passphrase`) and known_hosts naming the host
    key for [127.0.0.1]:port.  Needs root."""

    def __init__(self, root, passphrase):
        self.dir = os.path.join(root, "ssh")
        os.makedirs(self.dir, exist_ok=True)
        self.port = harness.free_port()
        self.key = os.path.join(self.dir, "id")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        for name, pw in (("hostkey", ""), ("id", passphrase)):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", pw,
                            "-f", os.path.join(self.dir, name)], check=True)
        shutil.copy(self.key + ".pub", os.path.join(self.dir,
                                                    "authorized_keys"))
        with open(os.path.join(self.dir, "hostkey.pub")) as f:
            harness.write(self.known_hosts, "[127.0.0.1]:%d %s" %
                          (self.port, f.read()), mode=0o644)
        self.conf = os.path.join(self.dir, "sshd_config")
        harness.write(self.conf, (
            "Port %(port)d\nListenAddress 127.0.0.1\n"
            "HostKey %(d)s/hostkey\nAuthorizedKeysFile %(d)s/authorized_keys\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nUsePAM no\nPidFile %(d)s/sshd.pid\n")
            % {"port": self.port, "d": self.dir})
        self.proc = None
        self.log = None

    def url(self, path):
        """The ssh:// URL of the repository at the absolute path."""
        return "ssh://root@127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        os.makedirs("/run/sshd", exist_ok=True)
        self.log = open(os.path.join(self.dir, "sshd.log"), "ab")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f",
                                      self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited %d" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return True
            except OSError:
                return False
        try:
            wait_for("sshd on %d" % self.port, up, timeout=10)
        except Exception:
            self.stop()
            raise
        return self


def set_hook(bare, name, script):
    path = os.path.join(bare, "hooks", name)
    harness.write(path, "#!/bin/sh\n" + script, mode=0o755)


class Kubesim:
    """A kubesim process in its own temporary directory."""

    def __init__(self, ready_delay=0.2, token=None):
        self.dir = tempfile.mkdtemp(prefix="gitopsd-kubesim-")
        args = ["/usr/bin/python3", KUBESIM, "--port", "0", "--dir",
                self.dir, "--ready-delay", str(ready_delay),
                "--exit-on-stdin-eof"]
        if token is not None:
            args += ["--token", token]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("kubesim did not start")
        self.port = int(line)
        with open(os.path.join(self.dir, "token")) as f:
            self.token = f.read().strip()
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(self.dir, "ca.crt"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, path, body=None, ctype="application/json",
             token=True):
        """(status, decoded JSON answer) of one request: body is sent as
        JSON, or as it is when bytes; token=False sends no bearer token."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else \
                json.dumps(body).encode()
        req = urllib.request.Request(
            "https://127.0.0.1:%d%s" % (self.port, path), data=data,
            method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        if token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path):
        return self.call("GET", path)

    def apply(self, path, obj, manager="test"):
        return self.call("PATCH", path + "?fieldManager=" + manager
                         if manager else path, obj,
                         "application/apply-patch+yaml")

    def exists(self, path):
        return self.call("GET", path)[0] == 200

    def requests(self):
        return self.call("GET", "/_sim/requests")[1]["requests"]


class PipeLogDaemon(harness.Daemon):
    """gitopsd under `prlimit --fsize=N`; its output is copied to the log
    file by a thread of the test process (not limited)."""

    fsize = None

    def start(self, wait=True, extra_args=None):
        self.keep_valgrind_result()
        args = harness.valgrind_wrap(
            [harness.binary(), "-c", self.config_path, "--log-level",
             "debug"] + (extra_args or []))
        if self.fsize is not None:
            # Soft limit only: the hard one stays unlimited so that the
            # soft one can be raised on the running process without
            # CAP_SYS_RESOURCE.
            args = ["prlimit", "--fsize=%d:unlimited" % self.fsize,
                    "--"] + args
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     cwd=self.tmp)
        logf, out = self.logf, self.proc.stdout

        def copy():
            for line in iter(out.readline, b""):
                logf.write(line)
                logf.flush()
            out.close()
        self.copier = threading.Thread(target=copy, daemon=True)
        self.copier.start()
        if wait:
            self.wait_ready()
        return self

    def stop(self, timeout=30):
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = -9
        elif self.proc is not None:
            rc = self.proc.returncode
        if getattr(self, "copier", None) is not None:
            self.copier.join(10)
            self.copier = None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        if getattr(self, "copier", None) is not None:
            self.copier.join(10)
            self.copier = None


def registry_push(registry, repository, tag, event_id):
    """A Distribution notification body for a manifest push of tag."""
    with open(os.path.join(FIXTURES, "registry",
                           "distribution-push-manifest.json")) as f:
        body = json.load(f)
    ev = body["events"][0]
    ev["id"] = event_id
    ev["target"]["tag"] = tag
    ev["target"]["repository"] = repository
    ev["request"]["host"] = registry
    ev["target"]["url"] = "http://%s/v2/%s/manifests/%s" % (
        registry, repository, ev["target"]["digest"])
    return json.dumps(body).encode()


def all_pages(d, path, key, token=None):
    """Every item of a paged admin list (limit 1000, following `next`)."""
    out, after = [], None
    sep = "&" if "?" in path else "?"
    while True:
        q = path + sep + "limit=1000"
        if after is not None:
            q += "&after=%d" % after
        page = d.api(q, token=token)
        out += page[key]
        if page.get("next") is None:
            return out
        after = page["next"]


class HangProxy:
    """A TLS proxy in front of kubesim (with kubesim's own certificate and
    CA) that forwards every request, except that a request matching
    hang(method, path_regex) gets no answer at all: its connection is held
    open until the client gives up.  kubeconfig: a copy of kubesim's
    pointing at the proxy."""

    def __init__(self, sim):
        import http.server
        import re as _re

        self.sim = sim
        self.rules = []
        self.hung = []          # (method, path) of requests left hanging
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                with proxy.lock:
                    rule = None
                    for r in proxy.rules:
                        if r["count"] > 0 and r["method"] == self.command \
                                and _re.search(r["path"],
                                               self.path.split("?")[0]):
                            r["count"] -= 1
                            rule = r
                            break
                    if rule is not None:
                        proxy.hung.append((self.command, self.path))
                if rule is not None:
                    proxy.stopping.wait(180)
                    self.close_connection = True
                    return
                import http.client
                conn = http.client.HTTPSConnection(
                    "127.0.0.1", sim.port, context=sim.ctx, timeout=30)
                try:
                    hdrs = {k: v for k, v in self.headers.items()
                            if k.lower() not in ("host", "connection",
                                                 "content-length")}
                    conn.request(self.command, self.path, body=body,
                                 headers=hdrs)
                    r = conn.getresponse()
                    data = r.read()
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("content-length", "connection",
                                             "transfer-encoding", "date",
                                             "server"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PATCH = do_POST = do_DELETE = do_PUT = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(sim.dir, "server.crt"),
                            os.path.join(sim.dir, "server.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.port = self.server.server_address[1]
        with open(sim.kubeconfig) as f:
            text = f.read()
        self.kubeconfig = os.path.join(sim.dir, "kubeconfig-proxy")
        with open(self.kubeconfig, "w") as f:
            f.write(text.replace("https://127.0.0.1:%d" % sim.port,
                                 "https://127.0.0.1:%d" % self.port))
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def hang(self, method, path, count=1):
        with self.lock:
            self.rules.append({"method": method, "path": path,
                               "count": count})

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
