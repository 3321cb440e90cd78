"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary
directory, listening on 127.0.0.1 on a free port (and a socket in that
directory), stopped and removed by stop().

initdb refuses to run as root, so as root the cluster belongs to the
`postgres` user of the Debian package and its commands run through
runuser; as anyone else they run as that user.  fsync is off: the tests
check what gitopsd asks of the server (a COMMIT before a 202), not the
server's own durability, and a shared CI machine is slow enough.
PgServer(options="-c fsync=on ...") adds server options after these
(the last of two wins): the ingest benchmark's server is durable.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    path = shutil.which("initdb")
    return os.path.dirname(path) if path else None


def available():
    """Why a server cannot be started here, or None when it can."""
    if _bindir() is None:
        return "no PostgreSQL server (initdb) installed: make deps"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user"
    return None


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgServer:
    def __init__(self, options=""):
        self.bindir = _bindir()
        self.options = options
        self.dir = tempfile.mkdtemp(prefix="gitopsd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = None
        self.user = "gitopsd"
        self._as = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.started = False

    def _run(self, args, **kw):
        return subprocess.run(self._as + args, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, **kw)

    def start(self):
        r = self._run([os.path.join(self.bindir, "initdb"), "-D", self.data,
                       "-A", "trust", "-U", self.user, "-E", "UTF8",
                       "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("initdb: " + r.stdout)
        err = None
        for _ in range(5):
            self.port = _free_port()
            try:
                self.resume()
            except RuntimeError as e:
                # Another process took the port between probe and bind.
                err = e
                time.sleep(0.2)
                continue
            self.started = True
            return self
        raise err

    def pause(self):
        """Stops the server, keeping its data and port for resume()."""
        r = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "-m", "fast", "-w", "stop"])
        if r.returncode != 0:
            raise RuntimeError("pg_ctl stop: " + r.stdout)

    def resume(self):
        opts = ("-c listen_addresses=127.0.0.1 -c port=%d "
                "-c unix_socket_directories=%s -c fsync=off "
                "-c full_page_writes=off -c max_connections=60 %s"
                % (self.port, self.dir, self.options))
        r = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "-o", opts, "-l", os.path.join(self.dir, "log"),
                       "-w", "-t", "60", "start"])
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start: " + r.stdout + self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""

    def dsn(self, db="postgres"):
        return ("host=127.0.0.1 port=%d user=%s dbname=%s connect_timeout=5"
                % (self.port, self.user, db))

    def psql(self, sql, db="postgres"):
        """Runs sql, returns its unaligned output (raises on an error)."""
        psql = os.path.join(self.bindir, "psql")
        if not os.path.exists(psql):
            psql = "psql"
        r = subprocess.run([psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-d", self.dsn(db), "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql: " + r.stderr)
        return r.stdout

    def createdb(self, name):
        self.psql('CREATE DATABASE "%s"' % name)
        return self.dsn(name)

    def stop(self):
        if self.started:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "-m", "immediate", "-w", "stop"])
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


class BlackholeProxy:
    """A TCP relay on 127.0.0.1 to a server's port.  blackhole() drops
    every relayed connection and from then on accepts new ones without a
    word: to a client, a database host that drops packets once the TCP
    handshake is done (a connect that never ends, unless timed out).
    relay() relays again.  close() stops it."""

    def __init__(self, port):
        self.target = port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.holes = False
        self.open = []          # every socket this relay holds
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.open.append(c)
                if self.holes:
                    continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.open.append(u)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _drop_all(self):
        with self.lock:
            socks, self.open = self.open, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def blackhole(self):
        with self.lock:
            self.holes = True
        self._drop_all()

    def relay(self):
        with self.lock:
            self.holes = False
        self._drop_all()

    def close(self):
        self.closed = True
        self.lsock.close()
        self._drop_all()


class ServerTestCase(unittest.TestCase):
    """One throwaway server for every test of the class (cls.pg); a test
    takes a database of its own with self.pg.createdb."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        try:
            cls.pg.start()
        except Exception:
            cls.pg.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
