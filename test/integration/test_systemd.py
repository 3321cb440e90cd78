"""The systemd unit, the sysusers/tmpfiles snippets and the man pages.

systemd-analyze verify needs the ExecStart binary and the man pages named
by Documentation= to exist.  The test installs the project with
`make install DESTDIR=<tmp>` (the real install target), then verifies a
copy of the installed unit in which only the /usr/local/bin/gitopsd prefix
is replaced by the temporary root, with MANPATH pointing at the installed
man pages.  The copy is checked to differ from the original in nothing
else.  The security review runs on the unit as shipped.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(ROOT, "systemd", "gitopsd.service")
BUILD = os.environ.get("GITOPSD_BUILD", "build-san")
ANALYZE = shutil.which("systemd-analyze")
# Exposure levels go from 0.0 (best) to 10.0; "OK" and better is below 4.0.
MAX_EXPOSURE = 4.0


def parse_unit(path):
    """Returns {section: [(key, value), ...]} keeping repeated keys."""
    sections = {}
    cur = None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = line[1:-1]
                sections.setdefault(cur, [])
                continue
            if cur is None or "=" not in line:
                raise ValueError("%s:%d: not key=value" % (path, n))
            k, v = line.split("=", 1)
            sections[cur].append((k.strip(), v.strip()))
    return sections


def values(sections, section, key):
    return [v for k, v in sections.get(section, []) if k == key]


def exposure(output):
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", output)
    if m is None:
        raise AssertionError("no overall exposure line in:\n" + output)
    return float(m.group(1)), m.group(2)


class UnitContentTest(unittest.TestCase):
    """The directives operations rely on are present with these values."""

    def setUp(self):
        self.u = parse_unit(UNIT)

    def test_service_directives(self):
        want = {
            "Type": "notify",
            "ExecStart": "/usr/local/bin/gitopsd -c /etc/gitopsd/gitopsd.yaml",
            "ExecReload": "/bin/kill -HUP $MAINPID",
            "WatchdogSec": "30s",
            "Restart": "on-failure",
            "User": "gitopsd",
            "Group": "gitopsd",
            "StateDirectory": "gitopsd",
            "ConfigurationDirectory": "gitopsd",
            "UMask": "0077",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes",
            "ProtectClock": "yes",
            "ProtectHostname": "yes",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
            "RestrictNamespaces": "yes",
            "RestrictRealtime": "yes",
            "RestrictSUIDSGID": "yes",
            "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes",
            "SystemCallArchitectures": "native",
            "CapabilityBoundingSet": "",
        }
        for k, v in want.items():
            self.assertEqual(values(self.u, "Service", k), [v], k)
        # The allow list first, then what is taken out of it.
        self.assertEqual(values(self.u, "Service", "SystemCallFilter")[0],
                         "@system-service")
        self.assertEqual(values(self.u, "Install", "WantedBy"),
                         ["multi-user.target"])

    def test_watchdog_below_stop_timeout(self):
        # The drain (shutdown_timeout_s, default 30) must fit in the stop
        # timeout or systemd kills the daemon mid-drain.
        stop = values(self.u, "Service", "TimeoutStopSec")
        self.assertEqual(len(stop), 1)
        self.assertGreater(int(stop[0].rstrip("s")), 30)


@unittest.skipIf(ANALYZE is None, "systemd-analyze not installed")
class SecurityTest(unittest.TestCase):
    """systemd-analyze security --offline on the unit as shipped."""

    def run_security(self, unit, *extra):
        return subprocess.run(
            [ANALYZE, "security", "--offline=true", "--no-pager", *extra,
             unit], capture_output=True, text=True, cwd="/", timeout=60)

    def test_exposure_ok_or_better(self):
        p = self.run_security(UNIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        level, word = exposure(p.stdout)
        print("systemd exposure: %.1f %s" % (level, word))
        self.assertLess(level, MAX_EXPOSURE, p.stdout)
        self.assertIn(word, ("SAFE", "OK"))
        # --threshold makes systemd-analyze itself fail above 3.9.
        p = self.run_security(UNIT, "--threshold=39")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_bare_unit_is_exposed(self):
        # The measurement must be able to fail: the same service without
        # its sandboxing scores far worse.
        u = parse_unit(UNIT)
        keep = {"Type", "ExecStart", "ExecReload", "User", "Group"}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gitopsd.service")
            with open(path, "w", encoding="utf-8") as f:
                f.write("[Service]\n")
                for k, v in u["Service"]:
                    if k in keep:
                        f.write("%s=%s\n" % (k, v))
            p = self.run_security(path)
            level, _ = exposure(p.stdout)
            self.assertGreaterEqual(level, MAX_EXPOSURE)
            p = self.run_security(path, "--threshold=39")
            self.assertNotEqual(p.returncode, 0)


@unittest.skipIf(ANALYZE is None, "systemd-analyze not installed")
class VerifyTest(unittest.TestCase):
    """systemd-analyze verify on the installed unit."""

    def setUp(self):
        if not os.access(os.path.join(ROOT, BUILD, "gitopsd"), os.X_OK):
            self.skipTest("%s/gitopsd is not built" % BUILD)
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-install-")
        self.dest = os.path.join(self.tmp, "root")
        p = subprocess.run(
            ["make", "--no-print-directory", "-s", "B=" + BUILD,
             "DESTDIR=" + self.dest, "install"],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_install_layout(self):
        for rel in ("usr/local/bin/gitopsd", "usr/local/bin/gitopsctl",
                    "lib/systemd/system/gitopsd.service",
                    "usr/local/lib/sysusers.d/gitopsd.conf",
                    "usr/local/lib/tmpfiles.d/gitopsd.conf",
                    "usr/local/share/man/man8/gitopsd.8",
                    "usr/local/share/man/man1/gitopsctl.1",
                    "usr/local/share/man/man5/gitopsd.yaml.5"):
            self.assertTrue(os.path.exists(os.path.join(self.dest, rel)), rel)

    def test_verify(self):
        installed = os.path.join(self.dest, "lib/systemd/system/gitopsd.service")
        with open(installed, encoding="utf-8") as f:
            orig = f.read().splitlines()
        prefix = self.dest + "/usr/local/bin/gitopsd"
        copy = [l.replace("/usr/local/bin/gitopsd", prefix) for l in orig]
        changed = [(a, b) for a, b in zip(orig, copy) if a != b]
        # Only ExecStart (and comments) may mention the binary.
        self.assertEqual([a.split("=")[0] for a, _ in changed
                          if not a.startswith("#")], ["ExecStart"])
        unitdir = os.path.join(self.tmp, "units")
        os.mkdir(unitdir)
        path = os.path.join(unitdir, "gitopsd.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(copy) + "\n")
        env = dict(os.environ,
                   MANPATH=os.path.join(self.dest, "usr/local/share/man"))
        p = subprocess.run([ANALYZE, "verify", path], capture_output=True,
                           text=True, env=env, cwd="/", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "", p.stderr)

    def test_verify_catches_a_missing_binary(self):
        # Without the installed binary the same check fails.
        unitdir = os.path.join(self.tmp, "units")
        os.mkdir(unitdir)
        path = os.path.join(unitdir, "gitopsd.service")
        with open(UNIT, encoding="utf-8") as f:
            text = f.read().replace("/usr/local/bin/gitopsd",
                                    self.tmp + "/nonexistent/gitopsd")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        env = dict(os.environ,
                   MANPATH=os.path.join(self.dest, "usr/local/share/man"))
        p = subprocess.run([ANALYZE, "verify", path], capture_output=True,
                           text=True, env=env, cwd="/", timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not executable", p.stderr)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("systemd-sysusers")
                     and shutil.which("systemd-tmpfiles"),
                     "needs root and systemd-sysusers/systemd-tmpfiles")
class SnippetsTest(unittest.TestCase):
    """sysusers and tmpfiles snippets applied to an empty root."""

    def test_user_and_directories(self):
        with tempfile.TemporaryDirectory() as root:
            os.mkdir(os.path.join(root, "etc"))
            for n in ("passwd", "group", "shadow", "gshadow"):
                open(os.path.join(root, "etc", n), "w").close()
            p = subprocess.run(
                ["systemd-sysusers", "--root=" + root,
                 os.path.join(ROOT, "systemd", "gitopsd.sysusers")],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(root, "etc", "passwd")) as f:
                users = [l.split(":") for l in f.read().splitlines()]
            gitopsd = [u for u in users if u[0] == "gitopsd"]
            self.assertEqual(len(gitopsd), 1)
            uid, gid, home, shell = (int(gitopsd[0][2]), int(gitopsd[0][3]),
                                     gitopsd[0][5], gitopsd[0][6])
            self.assertLess(uid, 1000)      # a system user
            self.assertEqual(home, "/var/lib/gitopsd")
            self.assertTrue(shell.endswith("nologin"))
            p = subprocess.run(
                ["systemd-tmpfiles", "--root=" + root, "--create",
                 os.path.join(ROOT, "systemd", "gitopsd.tmpfiles")],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            st = os.stat(os.path.join(root, "etc/gitopsd"))
            self.assertEqual((st.st_mode & 0o777, st.st_uid, st.st_gid),
                             (0o750, 0, gid))
            for d in ("var/lib/gitopsd", "var/lib/gitopsd/repos"):
                st = os.stat(os.path.join(root, d))
                self.assertEqual((st.st_mode & 0o777, st.st_uid, st.st_gid),
                                 (0o700, uid, gid), d)


GROFF = shutil.which("groff")
MAN = shutil.which("man")


@unittest.skipIf(GROFF is None, "groff not installed")
class ManPageTest(unittest.TestCase):
    """Every man page formats without a single groff warning."""

    PAGES = ("gitopsd.8", "gitopsctl.1", "gitopsd.yaml.5")

    def test_groff_no_warnings(self):
        for page in self.PAGES:
            path = os.path.join(ROOT, "man", page)
            p = subprocess.run([GROFF, "-man", "-Tutf8", "-ww", "-z", path],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, page + ": " + p.stderr)
            self.assertEqual(p.stderr, "", page + ": " + p.stderr)

    def test_groff_catches_a_broken_page(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "broken.1")
            with open(path, "w") as f:
                f.write('.TH BROKEN 1\n.SH NAME\nbroken\n.nosuchmacro\n'
                        '\\fBunclosed \\*[nosuchstring]\n')
            p = subprocess.run([GROFF, "-man", "-Tutf8", "-ww", "-z", path],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.stderr, "")

    @unittest.skipIf(MAN is None, "man not installed")
    def test_man_renders_sections(self):
        want = {
            "gitopsd.8": ["SYNOPSIS", "OPTIONS", "SIGNALS", "FILES",
                          "EXIT STATUS", "--log-level", "--log-format",
                          "SIGHUP", "SIGTERM"],
            "gitopsctl.1": ["COMMANDS", "EXIT STATUS", "GITOPSD_URL",
                            "GITOPSD_TOKEN_FILE", "--token-file"],
            "gitopsd.yaml.5": ["server.listen", "admin.token_file",
                               "state.path", "retry.max_attempts"],
        }
        env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0",
                   LC_ALL="C.UTF-8")
        for page, words in want.items():
            p = subprocess.run([MAN, "-l", "--warnings=w",
                                os.path.join(ROOT, "man", page)],
                               capture_output=True, text=True, env=env,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "", page + ": " + p.stderr)
            text = re.sub(r".\x08", "", p.stdout)
            text = text.replace("\u2010", "-").replace("\u2212", "-")
            for w in words:
                self.assertIn(w, text, page)

    def test_yaml5_documents_every_config_key(self):
        # The key list comes from the config schema itself
        # (config_schema_foreach, test/support/config_keys.c).
        dump = os.path.join(ROOT, BUILD, "support", "config_keys")
        if not os.access(dump, os.X_OK):
            self.skipTest("%s is not built" % dump)
        p = subprocess.run([dump], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        paths = p.stdout.split()
        self.assertGreater(len(paths), 100)
        # The source, not the rendering: hyphenation may split a key.
        with open(os.path.join(ROOT, "man", "gitopsd.yaml.5")) as f:
            text = re.sub(r"\\f[BIRP]", "", f.read()).replace("\\-", "-")

        def named(word):
            return re.search(r"(?<![a-z0-9_.])%s(?![a-z0-9_])"
                             % re.escape(word), text) is not None

        missing = []
        for path in paths:
            # Keys outside lists by their whole path ("server.tls.cert_file"),
            # keys inside a list entry by their path within the entry
            # ("policy.semver" under apps[].images[], "name" under sources[]).
            inner = path.rsplit("[].", 1)[-1]
            if not named(inner):
                missing.append(path)
        self.assertEqual(missing, [])

    def test_yaml5_example_passes_gitopsd_check(self):
        gitopsd = os.path.join(ROOT, BUILD, "gitopsd")
        if not os.access(gitopsd, os.X_OK):
            self.skipTest("%s is not built" % gitopsd)
        with open(os.path.join(ROOT, "man", "gitopsd.yaml.5")) as f:
            roff = f.read()
        m = re.search(r"^\.SH EXAMPLE\n\.EX\n(.*?)^\.EE", roff, re.M | re.S)
        self.assertIsNotNone(m)
        text = m.group(1).replace("\\-", "-").replace("\\e", "\\")
        with tempfile.TemporaryDirectory() as d:
            for path in set(re.findall(r"/etc/gitopsd/[\w.\-]+", text)):
                with open(os.path.join(d, os.path.basename(path)), "w") as f:
                    if path.endswith("kubeconfig"):
                        f.write(KUBECONFIG)
                    elif path.endswith(".url"):
                        f.write("https://hooks.example.invalid/T0/B0/x\n")
                    else:
                        f.write("secret-%s\n" % os.path.basename(path))
            text = text.replace("/etc/gitopsd", d)
            text = text.replace("/var/lib/gitopsd", d)
            path = os.path.join(d, "gitopsd.yaml")
            with open(path, "w") as f:
                f.write(text)
            p = harness.run_tool([gitopsd, "-t", "-c", path],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_gitopsd8_and_help_agree(self):
        gitopsd = os.path.join(ROOT, BUILD, "gitopsd")
        if not os.access(gitopsd, os.X_OK):
            self.skipTest("%s is not built" % gitopsd)
        p = harness.run_tool([gitopsd, "--help"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        helpopts = set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", p.stdout))
        with open(os.path.join(ROOT, "man", "gitopsd.8")) as f:
            man = f.read().replace("\\-", "-")
        opts = man.split(".SH OPTIONS", 1)[1].split(".SH ", 1)[0]
        manopts = set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", opts))
        self.assertEqual(helpopts, manopts)


# A syntactically complete kubeconfig for the man page example's cluster.
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: gitopsd
  user: {token: example}
contexts:
- name: prod
  context: {cluster: prod, user: gitopsd}
current-context: prod
"""


if __name__ == "__main__":
    unittest.main()
