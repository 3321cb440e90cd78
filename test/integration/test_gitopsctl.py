"""gitopsctl: exit codes, messages and output against a real gitopsd.

Exit status contract (gitopsctl(1)): 0 ok, 1 the daemon answered with an
error, 2 usage error or daemon unreachable.
"""
import os
import re
import socket
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GITOPSD_BUILD", "build-san")
CTL = os.path.join(ROOT, BUILD, "gitopsctl")
GITOPSD = os.path.join(ROOT, BUILD, "gitopsd")


def free_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ctl(*args, env=None, timeout=60):
    e = {k: v for k, v in os.environ.items()
         if k not in ("GITOPSD_URL", "GITOPSD_TOKEN_FILE")}
    if env:
        e.update(env)
    return subprocess.run([CTL, *args], capture_output=True, text=True,
                          env=e, timeout=timeout)


@unittest.skipUnless(os.access(CTL, os.X_OK), "gitopsctl is not built")
class OfflineTest(unittest.TestCase):
    """What gitopsctl does without a daemon."""

    def test_version(self):
        with open(os.path.join(ROOT, "VERSION")) as f:
            version = f.read().strip()
        p = ctl("--version")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, "gitopsctl %s\n" % version)

    def test_help_documents_exit_codes(self):
        p = ctl("--help")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stderr, "")
        for cmd in ("apps", "app NAME", "jobs", "job ID", "retry ID",
                    "sync APP", "events"):
            self.assertIn("\n  " + cmd, p.stdout)
        for line in ("  0  success", "  1  gitopsd answered with an error",
                     "  2  usage error"):
            self.assertIn(line, p.stdout)

    def test_unreachable_is_2_with_a_message(self):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        for args, env in ((["--url", url, "apps"], None),
                          (["jobs"], {"GITOPSD_URL": url}),
                          (["--json", "sync", "web"], {"GITOPSD_URL": url})):
            p = ctl(*args, env=env)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertIn("cannot reach gitopsd at %s" % url, p.stderr)
            self.assertIn("is gitopsd running?", p.stderr)

    def test_flag_beats_environment(self):
        good, bad = free_port(), free_port()
        p = ctl("--url", "http://127.0.0.1:%d/" % good, "apps",
                env={"GITOPSD_URL": "http://127.0.0.1:%d" % bad})
        self.assertEqual(p.returncode, 2)
        self.assertIn("127.0.0.1:%d:" % good, p.stderr)

    def test_usage_errors_are_2(self):
        cases = [
            ([], "usage:"),
            (["frobnicate"], 'unknown command "frobnicate"'),
            (["app"], "usage: gitopsctl app NAME"),
            (["app", "a", "b"], "usage: gitopsctl app NAME"),
            (["job", "abc"], '"abc" is not a job id'),
            (["retry", "-3"], None),
            (["retry", "0"], '"0" is not a job id'),
            (["jobs", "--limit", "0"], "--limit: want 1..1000"),
            (["jobs", "--limit", "1001"], "--limit: want 1..1000"),
            (["jobs", "--state", "exploded"], "--state: want"),
            (["jobs", "--kind", "deploy"], "--kind: want"),
            (["apps", "--app", "web"], "apps takes no such option"),
            (["events", "--state", "dead"], "events takes no such option"),
            (["--timeout", "0", "apps"], "--timeout"),
            (["--url", "ftp://x", "apps"], "--url: want"),
            (["--no-such-flag", "apps"], None),
        ]
        for args, msg in cases:
            p = ctl(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
            self.assertEqual(p.stdout, "", args)
            if msg is not None:
                self.assertIn(msg, p.stderr, args)

    def test_token_file_problems_are_2(self):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        p = ctl("--url", url, "--token-file", "/nonexistent/admin.token",
                "apps")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/admin.token", p.stderr)
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                           "gitopsctl-test-%d.token" % os.getpid())
        try:
            with open(tmp, "w") as f:
                f.write("")
            p = ctl("--url", url, "apps", env={"GITOPSD_TOKEN_FILE": tmp})
            self.assertEqual(p.returncode, 2)
            self.assertIn("empty", p.stderr)
            with open(tmp, "w") as f:
                f.write("s3cr3t-line-one\nline-two\n")
            p = ctl("--url", url, "--token-file", tmp, "apps")
            self.assertEqual(p.returncode, 2)
            self.assertIn("more than one line", p.stderr)
            self.assertNotIn("s3cr3t", p.stderr)
        finally:
            os.unlink(tmp)

    def test_man_page_and_help_agree(self):
        p = ctl("--help")
        helpopts = set(re.findall(r"--[a-z][a-z-]+", p.stdout))
        with open(os.path.join(ROOT, "man", "gitopsctl.1")) as f:
            man = f.read().replace("\\-", "-")
        manopts = set(re.findall(r"--[a-z][a-z-]+", man))
        self.assertEqual(helpopts, manopts)


if __name__ == "__main__":
    unittest.main()
