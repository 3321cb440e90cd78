"""The C suites of test/integration/*_suite.c: cmocka programs that drive
library code against real peers (git daemon, lighttpd with git
http-backend, the Kubernetes simulator, the notify sinks) or the npm
fixture of published GitHub examples, so they do not belong in test/unit.

Each suite runs once per class, from the repository root; every cmocka
case declared in its main() is one test here, passing when cmocka
reported it OK.  Under GITOPSD_VALGRIND the suites run plain (they link
the library, not the daemon Valgrind watches)."""
import os
import re
import subprocess
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))

# cmocka_unit_test(name), cmocka_unit_test_setup_teardown(name, s, t), ...
CASE_RE = re.compile(r"\bcmocka_unit_test\w*\(\s*(\w+)")
RESULT_RE = re.compile(r"^\[\s+(OK|FAILED|SKIPPED|ERROR)\s+\] (\w+)$",
                       re.M)


def declared_cases(source):
    with open(source) as f:
        text = f.read()
    main = text[text.rindex("\nmain("):]
    return CASE_RE.findall(main)


class CmockaSuite(unittest.TestCase):
    suite = None            # file name under test/integration, sans .c
    timeout = 600

    @classmethod
    def setUpClass(cls):
        env = dict(os.environ)
        env["CMOCKA_MESSAGE_OUTPUT"] = "stdout"
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        env.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0"
                       % os.path.join(harness.ROOT, "test", "lsan.supp"))
        binary = harness.binary(os.path.join("itest", cls.suite))
        r = subprocess.run([binary], cwd=harness.ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True,
                           timeout=cls.timeout * harness.TIMEOUT_SCALE)
        cls.returncode = r.returncode
        cls.output = r.stdout
        cls.results = {}
        for verdict, name in RESULT_RE.findall(r.stdout):
            # A case that fails after cmocka printed OK for it (a leak
            # report at exit) keeps the worse verdict.
            if cls.results.get(name) != "FAILED":
                cls.results[name] = verdict

    def check_case(self, name):
        verdict = self.results.get(name)
        if verdict == "SKIPPED":
            self.skipTest("skipped by the suite")
        self.assertEqual(verdict, "OK", "%s: %s\n%s"
                         % (self.suite, name, self.output[-8000:]))
        # Every case passed yet the program failed: a sanitizer report at
        # exit, which fails every case of the suite.
        if "FAILED" not in self.results.values():
            self.assertEqual(self.returncode, 0, self.output[-8000:])


def make_class(suite):
    cases = declared_cases(os.path.join(HERE, suite + ".c"))
    attrs = {"suite": suite}
    for name in cases:
        attrs[name] = (lambda n: lambda self: self.check_case(n))(name)
    cls_name = "".join(p.capitalize() for p in suite.split("_"))
    return type(cls_name, (CmockaSuite,), attrs)


for _src in sorted(os.listdir(HERE)):
    if _src.endswith("_suite.c"):
        _cls = make_class(_src[:-2])
        globals()[_cls.__name__] = _cls
del _src, _cls


if __name__ == "__main__":
    unittest.main()
