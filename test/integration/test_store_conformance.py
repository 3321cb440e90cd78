"""The store conformance suite (test/support/store_conformance.c) on every
backend: SQLite in a temporary directory, PostgreSQL on a throwaway server
started here on 127.0.0.1 (test/support/pg_server.py) and stopped after."""
import os
import subprocess
import unittest

import harness
import pg_server


def suite_binary():
    return harness.binary(os.path.join("support", "store_conformance"))


def run_suite(backend, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([suite_binary(), backend], env=e,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300 * harness.TIMEOUT_SCALE)


class StoreConformanceTest(unittest.TestCase):
    def check(self, r):
        self.assertEqual(r.returncode, 0, r.stdout)
        # Every case ran: a backend that cannot open reports failures,
        # never an empty pass.
        self.assertRegex(r.stdout, r"\[  PASSED  \] (1[89]|2[0-9]) test\(s\)")

    def test_sqlite(self):
        self.check(run_suite("sqlite"))

    @unittest.skipIf(pg_server.available() is not None,
                     pg_server.available() or "")
    def test_postgres(self):
        pg = pg_server.PgServer()
        self.addCleanup(pg.stop)
        pg.start()
        dsn = pg.createdb("conformance")
        self.check(run_suite("postgres", {"GITOPSD_TEST_PG_DSN": dsn}))

    def test_postgres_without_server_fails(self):
        """The suite fails loudly when its database is missing."""
        r = run_suite("postgres", {"GITOPSD_TEST_PG_DSN": ""})
        self.assertNotEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main()
