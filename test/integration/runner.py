#!/usr/bin/python3
"""Runs every test/integration/test_*.py module with unittest and prints
"integration: N passed, N failed" last.  argv[1] (optional) filters module
names: a module runs when its name contains one of the comma-separated
substrings.

Each test runs under a watchdog: a test (with its class set-up) that is
still running after GITOPSD_TEST_LIMIT seconds (default 300, three times
that under Valgrind) gets every thread's stack printed and a TestHang
raised in it, so it fails, its clean-ups stop what it started and the run
goes on.  A hang then costs one test, not the whole CI budget.  If the
clean-ups hang too, the runner prints the stacks again and exits."""
import faulthandler
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

LIMIT = int(os.environ.get("GITOPSD_TEST_LIMIT", "0") or 0) or (
    900 if os.environ.get("GITOPSD_VALGRIND") else 300)
# After the TestHang: time for tearDown and clean-ups before giving up.
GRACE = 120


class TestHang(Exception):
    """Raised in the main thread when a test overruns LIMIT.  An Exception,
    not a BaseException: unittest's class and module set-up handlers catch
    only Exception, and anything else would end the whole run.  (The
    tests' few `except Exception` blocks re-raise or fail.)"""


def _on_alarm(_signum, _frame):
    sys.stdout.write("\n!!! test still running after %d s: stacks follow\n"
                     % LIMIT)
    sys.stdout.flush()
    faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
    sys.stdout.flush()
    # The last resort, if the clean-ups block as well.
    faulthandler.dump_traceback_later(GRACE, exit=True, file=sys.stdout)
    raise TestHang("test overran the %d s watchdog" % LIMIT)


def _arm():
    faulthandler.cancel_dump_traceback_later()
    signal.alarm(LIMIT)


class TimedResult(unittest.TextTestResult):
    """Re-arms the watchdog at each test boundary (the window after a
    test's end covers the next class's set-up) and prints durations."""

    def startTest(self, test):
        _arm()
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        took = time.monotonic() - self._t0
        self.stream.write("    (%.1f s)\n" % took)
        self.stream.flush()
        _arm()


def main():
    flts = [f.strip() for f in
            (sys.argv[1] if len(sys.argv) > 1 else "").split(",")
            if f.strip()]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    # The watchdog covers loading the modules too (their imports run code).
    signal.signal(signal.SIGALRM, _on_alarm)
    _arm()
    try:
        for name in sorted(os.listdir(HERE)):
            if not (name.startswith("test_") and name.endswith(".py")):
                continue
            if flts and not any(f in name for f in flts):
                continue
            suite.addTests(loader.discover(HERE, pattern=name))
    except TestHang as e:
        print("integration: loading the modules: %s" % e)
        print("integration: 0 passed, 1 failed")
        sys.stdout.flush()
        return 1
    _arm()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout,
                                     resultclass=TimedResult).run(suite)
    signal.alarm(0)
    faulthandler.cancel_dump_traceback_later()
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
