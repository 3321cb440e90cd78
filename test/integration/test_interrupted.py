"""A job's last attempt interrupted by kill -9 (SQLite, one process): at the
restart the job is taken over as dead ("interrupted; no attempts left")
and that failure is alerted like any other, once, through the outbox; the
app's outcome is dead, so its next success is a recovery.

The Git remote is git http-backend behind lighttpd with a pre-receive hook
that holds the push; the alert sink a loopback webhook receiver."""
import json
import os
import time
import unittest

import harness
from fault_peers import git, set_hook, wait_for
from notify_receivers import Receiver
from test_faults import (GIT_PASSWORD, TOKEN, GitJobMixin, daemon_built,
                         git_config, job_detail)

HOOK_SECRET = "interrupted-hook-secret-5c1e"


def one_attempt_config(url, sink):
    """test_faults' Git job with one attempt, its failures and recoveries
    alerted to a webhook sink."""
    return git_config(url, 1, notify="audit", notifiers=[
        {"name": "audit", "type": "webhook",
         "url": "http://127.0.0.1:%d/hook" % sink,
         "secret_file": "hook.secret", "on": ["failure", "recovery"]}])


def events(recs):
    return [json.loads(r["body"])["event"] for r in recs]


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class InterruptedLastAttemptTest(GitJobMixin, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.sink = Receiver("http", secret=HOOK_SECRET).start()
        self.addCleanup(self.sink.close)
        self.marker = os.path.join(self.tmp, "push-started")

    def daemon(self):
        d = harness.Daemon(
            one_attempt_config(self.http.url("deploy.git"), self.sink.port),
            secrets={"registry.token": TOKEN + "\n",
                     "git.password": GIT_PASSWORD + "\n",
                     "hook.secret": HOOK_SECRET})
        self.addCleanup(d.cleanup)
        return d

    def test_kill9_during_last_attempt_one_failure_alert(self):
        # The first push waits in pre-receive until the daemon is gone.
        set_hook(self.bare, "pre-receive",
                 "cat >/dev/null\n"
                 "if [ ! -e '%s' ]; then touch '%s'; sleep 10; exit 1; fi\n"
                 "exit 0\n" % (self.marker, self.marker))
        self.http.start()
        d = self.daemon().start()
        job_id = self.image_event(d, "1.7.0")
        wait_for("the push in flight", lambda: os.path.exists(self.marker),
                 timeout=60, interval=0.02)
        self.assertEqual(job_detail(d, job_id)["state"], "running")
        d.kill9()
        self.assertEqual(self.sink.records(), [])

        d.start()
        job = self.wait_final(d, job_id)
        self.assertEqual(job["state"], "dead", job)
        self.assertEqual(job["attempts"], 1, job)
        self.assertIn("interrupted", job["error"], job)
        recs = self.sink.wait_records(1, timeout=30)
        self.assertEqual(events(recs), ["job.failed"], recs)
        alert = json.loads(recs[0]["body"])
        self.assertEqual((alert["app"], alert["job"], alert["reason_kind"]),
                         ("web", job_id, "interrupted"), alert)
        self.assertTrue(recs[0]["signature_ok"], recs[0])
        app = d.api("/api/v1/apps/web")
        self.assertEqual((app["last_job"]["id"], app["last_job"]["state"]),
                         (job_id, "dead"), app)
        self.assertIn("interrupted", app["last_error"], app)

        # A second restart neither takes it over again nor alerts again.
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        d.start()
        time.sleep(2)           # room for a second alert to show up
        self.assertEqual(events(self.sink.records()), ["job.failed"])

        # The app's next success is its recovery.
        next_id = self.image_event(d, "1.8.0")
        job = self.wait_final(d, next_id)
        self.assertEqual(job["state"], "succeeded", job)
        recs = self.sink.wait_records(2, timeout=30)
        self.assertEqual(events(recs), ["job.failed", "job.recovered"], recs)
        self.assertEqual(len(self.trailer_commits(job_id)), 0)
        self.assertEqual(len(self.trailer_commits(next_id)), 1)
        self.assertEqual(git("rev-list", "--count", "main", cwd=self.bare),
                         "2")
        self.assertEqual(d.stop(), 0, d.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
