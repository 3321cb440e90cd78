#!/usr/bin/python3
"""Runs every test/integration/test_*.py module with unittest and prints
"integration: N passed, N failed" last.  argv[1] (optional) filters module
names by substring."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))


def main():
    flt = sys.argv[1] if len(sys.argv) > 1 else ""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        if flt and flt not in name:
            continue
        suite.addTests(loader.discover(HERE, pattern=name))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    # A test with failing subtests appears once per subtest: count tests.
    failed = {id(t) if not hasattr(t, "test_case") else id(t.test_case)
              for t, _ in result.failures + result.errors}
    bad = len(failed) + len(result.unexpectedSuccesses)
    good = result.testsRun - bad - len(result.skipped)
    print("integration: %d passed, %d failed" % (good, bad))
    sys.stdout.flush()
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    # A stray non-daemon thread left by a failed test must not hang CI.
    os._exit(main())
