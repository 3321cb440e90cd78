"""`gitopsd -t -c FILE` on every shipped configuration and on the bad
fixtures.

Each config/*.yaml is copied into a temporary directory with its relative
layout (config/ next to the var/ and secrets/ it points at).  The secret
files it references are created with dummy contents: the loader names each
missing one ("cannot read secret file PATH"), so the test asks the real
binary instead of guessing at the YAML.  Then the check must say
"configuration OK" and exit 0, and never print a secret.

Each test/fixtures/config/bad/NAME.yaml must exit 1 and print every line of
NAME.errors (FILE: the path given to -c, ROOT: the fixtures directory).

Configuration examples in the docs: in docs/*.md and README.md a fenced
```yaml block on the line after the marker <!-- config-example --> is a
complete configuration (fragments of one stay unmarked).  Each is checked
with -t as written, except that the files it names (secrets, kubeconfigs,
certificates under /etc/gitopsd/...) are made inside a temporary tree and
the block's text points at them: the loader names every missing file, so
nothing is guessed from the YAML.  The source types the docs list must be
the ones -t accepts.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("GITOPSD_BUILD", "build-san")
GITOPSD = os.path.join(SRC, BUILD, "gitopsd")
FIXTURES = os.path.join(SRC, "test", "fixtures", "config")

MISSING = re.compile(r"cannot read secret file (/\S+): No such file")
# A kubeconfig the cluster checks accept: one cluster, one user, and the
# context the example names (the demo uses current-context).
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: dummy-kube-token}
contexts:
- name: prod
  context: {cluster: c, user: u}
current-context: prod
"""


def run_check(path, cwd):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = harness.run_tool([GITOPSD, "-t", "-c", path], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


DOC_MARKER = "<!-- config-example -->"
DOC_FILES = ["README.md"] + sorted(
    os.path.join("docs", n) for n in os.listdir(os.path.join(SRC, "docs"))
    if n.endswith(".md"))
# A file the check could not read: secret files, CA and TLS files, and
# kubeconfigs each say so in their own words.
DOC_MISSING = re.compile(r"(?:cannot read (?:secret file )?|kubeconfig )"
                         r"(/[^\s:]+): No such file")


def doc_examples():
    """(file, line, text) of every marked YAML block of the docs."""
    out = []
    for rel in DOC_FILES:
        with open(os.path.join(SRC, rel)) as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            if line.strip() != DOC_MARKER:
                continue
            fence = lines[i + 1] if i + 1 < len(lines) else ""
            if fence.strip() != "```yaml":
                raise AssertionError("%s:%d: %s is not followed by a ```yaml "
                                     "fence" % (rel, i + 1, DOC_MARKER))
            indent = len(fence) - len(fence.lstrip())
            body = []
            for j in range(i + 2, len(lines)):
                if lines[j].strip() == "```":
                    break
                body.append(lines[j][indent:])
            else:
                raise AssertionError("%s:%d: unterminated block" % (rel, i + 2))
            out.append((rel, i + 2, "\n".join(body) + "\n"))
    return out


def self_signed(directory):
    """A certificate and key the TLS checks accept."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", "k.pem", "-out",
                    "c.pem"], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (open(os.path.join(directory, "c.pem")).read(),
            open(os.path.join(directory, "k.pem")).read())


@unittest.skipUnless(os.access(GITOPSD, os.X_OK),
                     "needs %s (make B=%s %s)" % (GITOPSD, BUILD, GITOPSD))
class ConfigFiles(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-config-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make_secrets(self, path, written):
        """Runs the check until no secret file is missing, creating each
        one it names (inside the temporary tree only)."""
        out = ""
        for _ in range(4):
            rc, out = run_check(path, self.tmp)
            missing = MISSING.findall(out)
            if not missing:
                return rc, out
            for f in missing:
                self.assertTrue(f.startswith(self.tmp + os.sep),
                                "secret outside the copy: " + f)
                os.makedirs(os.path.dirname(f), exist_ok=True)
                # A URL serves as any secret (Slack's url_file must
                # hold one); each is unique so a leak is detectable.
                secret = "https://example.invalid/dummy-secret-%d" % len(
                    written)
                with open(f, "w") as fp:
                    fp.write(secret + "\n")
                written.append(secret)
        return rc, out

    def check_shipped(self, name):
        cfgdir = os.path.join(self.tmp, "config")
        os.makedirs(cfgdir)
        shutil.copy(os.path.join(SRC, "config", name), cfgdir)
        # Kubeconfigs the shipped files name (the demo's is made by
        # scripts/demo.sh; the example's sits next to the file).
        for kc in ("var/demo/kubeconfig", "config/prod.kubeconfig"):
            f = os.path.join(self.tmp, kc)
            os.makedirs(os.path.dirname(f), exist_ok=True)
            with open(f, "w") as fp:
                fp.write(KUBECONFIG)
        written = []
        rc, out = self.make_secrets(os.path.join("config", name), written)
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)
        for s in written:
            self.assertNotIn(s, out)
        return written

    def test_example(self):
        written = self.check_shipped("gitopsd.example.yaml")
        self.assertGreaterEqual(len(written), 10)

    def test_demo(self):
        written = self.check_shipped("demo.yaml")
        self.assertEqual(len(written), 2)
        for f in ("var/demo/github.secret", "var/demo/registry.token"):
            self.assertTrue(os.path.exists(os.path.join(self.tmp, f)), f)

    def test_every_shipped_file(self):
        names = sorted(n for n in os.listdir(os.path.join(SRC, "config"))
                       if n.endswith(".yaml"))
        self.assertIn("demo.yaml", names)
        for n in names:
            with self.subTest(config=n):
                self.check_shipped(n)
                shutil.rmtree(self.tmp)
                os.makedirs(self.tmp)

    def test_bad_fixtures(self):
        root = os.path.join(self.tmp, "fixtures")
        shutil.copytree(FIXTURES, root)
        bad = sorted(n for n in os.listdir(os.path.join(root, "bad"))
                     if n.endswith(".yaml"))
        self.assertGreaterEqual(len(bad), 5)
        for n in bad:
            with self.subTest(fixture=n):
                path = os.path.join("fixtures", "bad", n)
                rc, out = run_check(path, self.tmp)
                self.assertEqual(rc, 1, out)
                with open(os.path.join(root, "bad", n[:-5] + ".errors")) as f:
                    want = [l.replace("FILE", path).replace("ROOT", root)
                            for l in f.read().splitlines() if l]
                self.assertTrue(want)
                for line in want:
                    self.assertIn(line, out)
                self.assertNotIn("configuration OK", out)
                # Inline values and file contents never reach the output.
                for secret in ("not-allowed-here", "inline-value", "hunter2",
                               "services/T0/B0/XXXX", "fixture-github-secret"):
                    self.assertNotIn(secret, out)

    def test_good_fixtures(self):
        root = os.path.join(self.tmp, "fixtures")
        shutil.copytree(FIXTURES, root)
        for n in sorted(os.listdir(os.path.join(root, "good"))):
            if not n.endswith(".yaml"):
                continue
            with self.subTest(fixture=n):
                rc, out = run_check(os.path.join("fixtures", "good", n),
                                    self.tmp)
                self.assertEqual(rc, 0, out)
                self.assertIn("configuration OK", out)


    def check_doc_example(self, rel, line, text):
        """-t on one marked block, its missing files made in self.tmp."""
        cert = key = None
        cfg = os.path.join(self.tmp, "example.yaml")
        for _ in range(4):
            with open(cfg, "w") as f:
                f.write(text)
            rc, out = run_check(cfg, self.tmp)
            missing = sorted(set(DOC_MISSING.findall(out)))
            if not missing:
                break
            for path in missing:
                self.assertFalse(path.startswith(self.tmp), out)
                made = os.path.join(self.tmp, "files", path.lstrip("/"))
                os.makedirs(os.path.dirname(made), exist_ok=True)
                if "kubeconfig " + path in out:
                    data = KUBECONFIG
                elif path.endswith((".crt", ".pem", ".key")):
                    if cert is None:
                        cert, key = self_signed(self.tmp)
                    data = key if path.endswith(".key") else cert
                else:
                    data = "https://example.invalid/dummy-secret\n"
                with open(made, "w") as f:
                    f.write(data)
                os.chmod(made, 0o600)
                # The exact path, not a longer one it is a prefix of.
                text = re.sub(re.escape(path) + r"(?![\w./-])", made, text)
        self.assertEqual(rc, 0, "%s:%d:\n%s\n%s" % (rel, line, text, out))
        self.assertIn("configuration OK", out)

    def test_doc_examples(self):
        examples = doc_examples()
        # Every doc that shows a whole configuration marks it.
        self.assertGreaterEqual(len(examples), 10, examples)
        for rel, line, text in examples:
            with self.subTest(example="%s:%d" % (rel, line)):
                self.check_doc_example(rel, line, text)
                shutil.rmtree(self.tmp)
                os.makedirs(self.tmp)

    def test_documented_source_types(self):
        """Every source type the docs and the example list, -t accepts."""
        listed = {}
        with open(os.path.join(SRC, "docs", "config.md")) as f:
            m = re.search(r"^\| `sources\[\]\.type` \|[^|]*\|[^|]*\| "
                          r"sender: ([^|]+)\|$", f.read(), re.M)
        self.assertIsNotNone(m, "no sources[].type row in docs/config.md")
        listed["docs/config.md"] = m.group(1)
        with open(os.path.join(SRC, "config", "gitopsd.example.yaml")) as f:
            m = re.search(r"# The sender: ((?:.|\n)*?)\.  Required\.",
                          f.read())
        self.assertIsNotNone(m, "no list of senders in the example")
        listed["config/gitopsd.example.yaml"] = m.group(1)
        for where, text in listed.items():
            types = re.findall(r"[a-z][a-z0-9-]*",
                               re.sub(r"#|\bor\b", " ", text))
            self.assertGreaterEqual(len(types), 9, (where, types))
            for t in types:
                with self.subTest(where=where, type=t):
                    secret = os.path.join(self.tmp, "s.secret")
                    with open(secret, "w") as f:
                        f.write("dummy-secret-value\n")
                    cfg = os.path.join(self.tmp, "t.yaml")
                    with open(cfg, "w") as f:
                        f.write("sources:\n  - {name: s, type: %s, "
                                "token_file: %s}\n" % (t, secret))
                    rc, out = run_check(cfg, self.tmp)
                    self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
