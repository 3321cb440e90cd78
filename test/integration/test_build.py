"""The build contract: warnings as errors in C17, dependencies through
pkg-config, `make deps` quiet when everything is installed, `make
install` honouring PREFIX and DESTDIR."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = harness.ROOT


def make(*args, **kw):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                          capture_output=True, text=True, **kw)


class BuildTest(unittest.TestCase):
    def test_compile_flags(self):
        out = make("-n", "-B", "B=build-flagcheck", "build-flagcheck/obj/daemon/util.o")
        self.assertEqual(out.returncode, 0, out.stderr)
        line = [l for l in out.stdout.splitlines() if "daemon/util.c" in l
                and " -c " in l][0]
        for flag in ("-std=c17", "-Wall", "-Wextra", "-Werror", "-Wshadow"):
            self.assertIn(flag, line.split())
        # Include paths come from pkg-config (cJSON's lives in a subdir).
        cflags = subprocess.run(["pkg-config", "--cflags", "libcjson"],
                                capture_output=True, text=True).stdout.split()
        for f in cflags:
            self.assertIn(f, line.split())
        libs = make("-n", "-B", "B=build-flagcheck", "build-flagcheck/gitopsd")
        for lib in ("-levent_openssl", "-levent_pthreads", "-lgit2", "-lssh2",
                    "-lcurl", "-lyaml", "-lcjson", "-lssl", "-lsqlite3", "-lpq"):
            self.assertIn(lib, libs.stdout)

    def test_only_git_c_calls_libgit2(self):
        # One module owns libgit2 (daemon/git.c, whose per-repository
        # lock covers every operation, and its network half:
        # daemon/gitnet.c, which only registers the socket stream and sets
        # libgit2's error text, and daemon/gitssh.c, the SSH transport,
        # which only registers itself and calls back into the remote's
        # callbacks): no other object of the daemon links against a
        # libgit2 symbol, and neither helper touches a repository.
        libdir = subprocess.run(["pkg-config", "--variable=libdir",
                                 "libgit2"], capture_output=True,
                                text=True).stdout.strip()
        so = os.path.join(libdir, "libgit2.so")
        exported = subprocess.run(["nm", "-D", "--defined-only", so],
                                  capture_output=True, text=True, check=True)
        libgit2 = {l.split()[-1] for l in exported.stdout.splitlines()
                   if len(l.split()) == 3}
        self.assertIn("git_tree_walk", libgit2)
        seen = {}
        for mod, path in self._objects().items():
            undef = subprocess.run(["nm", "--undefined-only", path],
                                   capture_output=True, text=True,
                                   check=True).stdout
            used = {l.split()[-1] for l in undef.splitlines()
                    if l.split()} & libgit2
            if used:
                seen[mod + ".o"] = sorted(used)
        self.assertEqual(sorted(seen), ["daemon/git.o", "daemon/gitnet.o",
                                        "daemon/gitssh.o"], seen)
        self.assertLessEqual(set(seen["daemon/gitnet.o"]), {
            "git_error_last", "git_error_set", "git_error_set_str",
            "git_stream_register"}, seen)
        self.assertLessEqual(set(seen["daemon/gitssh.o"]), {
            "git_error_clear", "git_error_last", "git_error_set_str",
            "git_transport_register", "git_transport_unregister",
            "git_transport_smart", "git_transport_smart_certificate_check",
            "git_transport_smart_credentials", "git_credential_free",
            "git_credential_get_username",
            "git_credential_userpass_plaintext_new"}, seen)

    def _objects(self):
        objdir = os.path.join(ROOT, harness.BUILD, "obj")
        if not os.path.isdir(objdir):
            self.skipTest("%s not built" % objdir)
        objs = {}
        for sub in ("daemon", "handlers", "notify"):
            for name in sorted(os.listdir(os.path.join(objdir, sub))):
                if name.endswith(".o"):
                    objs["%s/%s" % (sub, name[:-2])] = os.path.join(
                        objdir, sub, name)
        return objs

    def test_base_modules_form_no_circle(self):
        # buf <- log <- util: the buffers depend on nothing of gitopsd's,
        # the logger only on them, and util (whose allocators report
        # through the logger) on both; none of them on anything above.
        objs = self._objects()
        defined, needs = {}, {}
        for mod, path in objs.items():
            out = subprocess.run(["nm", path], capture_output=True,
                                 text=True, check=True).stdout
            needs[mod] = set()
            for l in out.splitlines():
                f = l.split()
                if len(f) == 3 and f[1] in "TDBR":
                    defined[f[2]] = mod
                elif len(f) == 2 and f[0] == "U":
                    needs[mod].add(f[1])
        def deps(mod):
            return sorted({defined[s] for s in needs[mod]
                           if s in defined and defined[s] != mod})
        self.assertEqual(deps("daemon/buf"), [])
        self.assertEqual(deps("daemon/log"), ["daemon/buf"])
        self.assertEqual(deps("daemon/util"), ["daemon/buf", "daemon/log"])

    def test_no_static_name_in_libgit2_namespace(self):
        # libgit2 owns the git_ prefix: a file-local function or variable
        # named git_* reads as a libgit2 call and could collide with one.
        bad = {}
        for mod, path in self._objects().items():
            out = subprocess.run(["nm", path], capture_output=True,
                                 text=True, check=True).stdout
            local = [l.split()[-1] for l in out.splitlines()
                     if len(l.split()) == 3 and l.split()[1] in "tdbr"
                     and l.split()[-1].startswith("git_")]
            if local:
                bad[mod] = local
        self.assertEqual(bad, {})

    def test_deps_quiet_when_installed(self):
        out = subprocess.run(["sh", "scripts/deps.sh"], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
        self.assertEqual(out.returncode, 0, out.stderr)
        # Everything the tests use is installed by now: nothing to do.
        self.assertEqual(out.stdout.strip(), "", out.stdout)

    def test_install_prefix_destdir(self):
        dest = tempfile.mkdtemp(prefix="gitopsd-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        out = make("install", "B=" + harness.BUILD, "DESTDIR=" + dest,
                   "PREFIX=/opt/gitopsd", "SYSCONFDIR=/etc")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for rel in ("opt/gitopsd/bin/gitopsd", "opt/gitopsd/bin/gitopsctl",
                    "etc/gitopsd/gitopsd.example.yaml",
                    "lib/systemd/system/gitopsd.service",
                    "lib/systemd/system/gitopsd-public.socket",
                    "opt/gitopsd/share/man/man8/gitopsd.8"):
            self.assertTrue(os.path.exists(os.path.join(dest, rel)), rel)
        self.assertTrue(os.access(os.path.join(dest, "opt/gitopsd/bin/gitopsd"),
                                  os.X_OK))
        # Nothing outside DESTDIR.
        self.assertFalse(os.path.exists("/opt/gitopsd/bin/gitopsd"))


if __name__ == "__main__":
    unittest.main()
