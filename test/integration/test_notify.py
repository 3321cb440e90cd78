"""Failure alerts end to end: a real gitopsd whose sync jobs fail, with real
receivers on 127.0.0.1 (test/support/notify_sink.py: an HTTP sink standing
in for Slack and for a webhook receiver, checking the Block Kit shape and
the HMAC signature; aiosmtpd parsing the mail with Python's email package).

The sync jobs fail because the repository's host does not exist
(git.example.invalid); retry.max_attempts 1 makes them dead at once, which
is what alerts.  Alerts are notify jobs in the state store: the tests check
that outages lose nothing and send nothing twice, that a restart delivers
what was pending, and that dedup sends one alert per failure."""
import datetime
import os
import shutil
import tempfile
import time
import unittest

import harness
from notify_receivers import Receiver, make_cert

SECRET = "notify-test-secret"
HOOK_SECRET = "hook-signing-key"
CLONE_URL = "https://git.example.invalid/acme/deploy.git"


def config(notify_attempts, notifiers):
    return harness.config(
        retry={"base_s": 1, "max_s": 1, "max_attempts": 1},
        notify={"max_attempts": notify_attempts, "repeat_after_s": 3600,
                "timeout_s": 3},
        links={"base_url": "https://gitopsd.test"},
        repos=[{"name": "deploy", "url": CLONE_URL, "branch": "main"}],
        apps=[{"name": "web", "repo": "deploy", "path": "apps/web",
               "cluster": "c", "notify": [n["name"] for n in notifiers]}],
        clusters=harness.DEAD_CLUSTERS,
        notifiers=notifiers)


def slack(port):
    return ({"name": "ops-slack", "type": "slack", "url_file": "slack.url"},
            {"slack.url": "http://127.0.0.1:%d/slack/T0/B0\n" % port})


def hook(port):
    return ({"name": "audit", "type": "webhook",
             "url": "http://127.0.0.1:%d/hook" % port,
             "secret_file": "hook.secret", "headers": {"X-Env": "prod"},
             "title": "{{app}} {{event}}"},
            {"hook.secret": HOOK_SECRET})


def mail(port, **extra):
    return (dict({"name": "oncall-mail", "type": "email",
                  "smtp_url": "smtp://127.0.0.1:%d" % port,
                  "from": "gitopsd <gitopsd@example.test>",
                  "to": ["oncall@example.test", "dev@example.test"],
                  "title": "Échec {{app}}: {{kind}}"}, **extra), {})


def rfc3339(text):
    return datetime.datetime.fromisoformat(
        text.replace("Z", "+00:00")).timestamp()


class NotifyTest(unittest.TestCase):
    def receiver(self, mode, **kw):
        r = Receiver(mode, **kw).start()
        self.addCleanup(r.close)
        return r

    def daemon(self, parts, notify_attempts=10, tmp=None, ports=None):
        secrets = {"github.secret": SECRET, **harness.DEAD_CLUSTER_FILES}
        for p in parts:
            secrets.update(p[1])
        text = config(notify_attempts, [p[0] for p in parts])
        d = harness.Daemon(text, secrets=secrets, tmp=tmp, ports=ports)
        self.addCleanup(d.cleanup)
        d.start()
        return d

    def push(self, d, delivery, after):
        body = harness.github_push_body(CLONE_URL, after=after,
                                        paths=["apps/web/deploy.yaml"])
        r = d.post("/hooks/github", body,
                   harness.github_headers(SECRET, body, delivery))
        self.assertIn(r.status, (200, 202), r)
        return r

    def jobs(self, d, kind):
        return d.api("/api/v1/jobs?app=web&kind=%s&limit=100" % kind)["jobs"]

    def wait_jobs(self, d, kind, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            js = self.jobs(d, kind)
            if js and pred(js):
                return js
            time.sleep(0.2)
        self.fail("%s jobs never matched: %r\n%s" %
                  (kind, self.jobs(d, kind), d.log()[-3000:]))

    def test_failure_alert_reaches_all_sinks(self):
        http = self.receiver("http", secret=HOOK_SECRET)
        smtp = self.receiver("smtp")
        d = self.daemon([slack(http.port), hook(http.port), mail(smtp.port)])
        rev = "1" * 40
        self.push(d, "del-1", rev)
        recs = http.wait_records(2)
        mails = smtp.wait_records(1)
        self.assertEqual(len(recs), 2, d.log()[-3000:])
        self.assertEqual(len(mails), 1, d.log()[-3000:])
        by_path = {r["path"]: r for r in recs}
        s = by_path["/slack/T0/B0"]
        self.assertTrue(s["slack_ok"], s.get("slack_error"))
        self.assertIn(rev, s["body"])
        h = by_path["/hook"]
        self.assertTrue(h["signature_ok"])
        self.assertEqual(h["headers"]["x-env"], "prod")
        import json
        ev = json.loads(h["body"])
        self.assertEqual(ev["event"], "job.failed")
        self.assertEqual(ev["app"], "web")
        self.assertEqual(ev["kind"], "sync")
        self.assertEqual(ev["revision"], rev)
        self.assertEqual(ev["delivery"], "del-1")
        self.assertEqual(ev["title"], "web job.failed")
        self.assertTrue(ev["url"].startswith("https://gitopsd.test/api/v1/jobs/"))
        self.assertEqual(h["headers"]["x-gitopsd-delivery"], ev["alert_id"])
        m = mails[0]
        self.assertEqual(m["subject"], "Échec web: sync")
        self.assertEqual(sorted(m["rcpt_tos"]),
                         ["dev@example.test", "oncall@example.test"])
        self.assertTrue(m["crlf_ok"])
        self.assertTrue(m["date_ok"])
        self.assertEqual(m["defects"], [])
        # Nothing more arrives, and the metrics say what was sent.
        time.sleep(2)
        self.assertEqual(len(http.records()), 2)
        self.assertEqual(len(smtp.records()), 1)
        metrics = d.admin("GET", "/metrics").body.decode()
        self.assertRegex(metrics, r'gitopsd_notifications_total\{notifier='
                         r'"ops-slack",result="sent"\} 1')

    def test_outage_500_429_nothing_lost_nothing_twice(self):
        http = self.receiver("http", script="500,500,429:1")
        d = self.daemon([slack(http.port)])
        self.push(d, "del-2", "2" * 40)
        js = self.wait_jobs(d, "notify",
                            lambda js: js[0]["state"] == "succeeded")
        self.assertEqual(len(js), 1)
        self.assertEqual(js[0]["attempts"], 4)
        time.sleep(2)   # room for a duplicate: the absence is under test
        recs = http.records()
        self.assertEqual([r["status"] for r in recs], [500, 500, 429, 200])
        self.assertEqual(len({r["body"] for r in recs}), 1)

    def test_retry_after_capped_at_retry_max_s(self):
        # A day in seconds, then a day as an HTTP-date: each retry still
        # comes within retry.max_s (1 s here), not a day later.
        http = self.receiver("http", script="429:86400,429:date+86400")
        d = self.daemon([slack(http.port)])
        self.push(d, "del-ra", "a" * 40)
        deadline = time.time() + 30
        seen_failed = 0
        while time.time() < deadline:
            js = self.jobs(d, "notify")
            if js and js[0]["state"] == "failed":
                seen_failed += 1
                job = d.api("/api/v1/jobs/%d" % js[0]["id"])
                # Read again: the retry may have come due in between.
                if job["state"] == "failed":
                    nb = rfc3339(job["not_before"])
                    up = rfc3339(job["updated"])
                    self.assertLessEqual(nb - up, 1.5, job)
            if js and js[0]["state"] == "succeeded":
                break
            time.sleep(0.1)
        self.assertEqual(js[0]["state"], "succeeded", d.log()[-3000:])
        self.assertEqual(js[0]["attempts"], 3)
        recs = http.records()
        self.assertEqual([r["status"] for r in recs], [429, 429, 200])

    def test_dedup_one_alert_per_failure(self):
        http = self.receiver("http")
        d = self.daemon([slack(http.port)])
        self.push(d, "del-a", "3" * 40)
        http.wait_records(1)
        self.wait_jobs(d, "sync", lambda js: all(j["state"] == "dead"
                                                 for j in js))
        # The same failure again (another delivery, same revision).
        self.push(d, "del-b", "3" * 40)
        self.wait_jobs(d, "sync", lambda js: len(js) == 2 and
                       all(j["state"] == "dead" for j in js))
        time.sleep(2)   # room for a second alert: the absence is under test
        self.assertEqual(len(http.records()), 1)
        # Another revision is another failure.
        self.push(d, "del-c", "4" * 40)
        self.assertEqual(len(http.wait_records(2)), 2)

    def test_restart_with_alerts_pending(self):
        http = self.receiver("http")
        port = http.port
        http.stop()             # down: deliveries fail and wait
        tmp = tempfile.mkdtemp(prefix="gitopsd-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ports = (harness.free_port(), harness.free_port())
        # Retries come every 0-1 s (full jitter): with the default 10
        # attempts the alert could go dead before this daemon is stopped.
        # Enough attempts that it is still waiting when the next one starts.
        d = self.daemon([slack(port)], tmp=tmp, ports=ports,
                        notify_attempts=200)
        self.push(d, "del-r", "5" * 40)
        self.wait_jobs(d, "notify", lambda js: js[0]["attempts"] >= 1 and
                       js[0]["state"] in ("failed", "queued"))
        # The outbox depth gauge shows the alert waiting (refreshed each
        # second by the queue).
        deadline = time.time() + 5
        depth = None
        while time.time() < deadline and depth != 1:
            m = d.admin("GET", "/metrics").body.decode()
            found = [l for l in m.splitlines()
                     if l.startswith("gitopsd_outbox_depth ")]
            depth = float(found[0].split()[1]) if found else None
            time.sleep(0.2)
        self.assertEqual(depth, 1)
        self.assertEqual(d.stop(), 0)
        http.start()            # same port
        d2 = self.daemon([slack(port)], tmp=tmp, ports=ports,
                         notify_attempts=200)
        js = self.wait_jobs(d2, "notify",
                            lambda js: js[0]["state"] == "succeeded")
        self.assertEqual(len(js), 1)
        time.sleep(2)   # room for a duplicate: the absence is under test
        self.assertEqual(len(http.records()), 1)

    def test_dead_after_max_attempts_error_visible(self):
        http = self.receiver("http", script="500,500,500,500")
        d = self.daemon([slack(http.port)], notify_attempts=2)
        self.push(d, "del-d", "6" * 40)
        js = self.wait_jobs(d, "notify", lambda js: js[0]["state"] == "dead")
        self.assertEqual(js[0]["attempts"], 2)
        self.assertIn("HTTP 500", js[0]["error"])
        self.assertEqual(len(http.records()), 2)

    def test_mail_starttls_required(self):
        tmpd = tempfile.mkdtemp(prefix="gitopsd-cert-")
        self.addCleanup(shutil.rmtree, tmpd, True)
        cert, key = make_cert(tmpd)
        smtp = self.receiver("smtp", cert=cert, key=key,
                             require_starttls=True, login="alerts:pw")
        part = mail(smtp.port, require_tls=True, ca_file=cert,
                    username="alerts", password_file="smtp.pw")
        d = self.daemon([(part[0], {"smtp.pw": "pw"})])
        self.push(d, "del-t", "7" * 40)
        mails = smtp.wait_records(1)
        self.assertEqual(len(mails), 1, d.log()[-3000:])
        self.assertTrue(mails[0]["tls"])
        self.assertTrue(mails[0]["auth"])
        self.assertEqual(mails[0]["subject"], "Échec web: sync")

    def test_mail_password_never_in_clear(self):
        """A server without STARTTLS gets no AUTH: the attempt fails."""
        smtp = self.receiver("smtp", login="alerts:pw")
        part = mail(smtp.port, username="alerts", password_file="smtp.pw")
        d = self.daemon([(part[0], {"smtp.pw": "pw"})], notify_attempts=1)
        self.push(d, "del-p", "8" * 40)
        js = self.wait_jobs(d, "notify", lambda js: js[0]["state"] == "dead")
        self.assertIn("oncall-mail: the SMTP server offers no STARTTLS: "
                      "refusing to send the password in clear",
                      js[0]["error"])
        self.assertEqual(smtp.auth_commands(), [])
        self.assertEqual(smtp.records(), [])

    def test_mail_allow_plaintext_auth(self):
        smtp = self.receiver("smtp", login="alerts:pw")
        part = mail(smtp.port, username="alerts", password_file="smtp.pw",
                    allow_plaintext_auth=True)
        d = self.daemon([(part[0], {"smtp.pw": "pw"})])
        self.push(d, "del-q", "9" * 40)
        mails = smtp.wait_records(1)
        self.assertEqual(len(mails), 1, d.log()[-3000:])
        self.assertTrue(mails[0]["auth"])
        self.assertFalse(mails[0]["tls"])
        self.assertEqual([a["tls"] for a in smtp.auth_commands()], [False])


class NotifyCheckTest(unittest.TestCase):
    """`gitopsd -t` reports notifier problems with their key paths."""

    def test_check_reports_templates_and_keys(self):
        tmp = tempfile.mkdtemp(prefix="gitopsd-ncheck-")
        self.addCleanup(shutil.rmtree, tmp, True)
        harness.write(os.path.join(tmp, "slack.url"),
                      "https://hooks.slack.test/x\n")
        cfg = os.path.join(tmp, "bad.yaml")
        harness.write(cfg, """
state: {path: "%(t)s/state.db"}
workdir: "%(t)s/repos"
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0}
apps:
  - {name: web, repo: deploy, notify: [ops-slack, mail, hook]}
notifiers:
  - {name: ops-slack, type: slack, url_file: slack.url, title: "{{app}} {{oops}}"}
  - {name: mail, type: email, smtp_url: "http://x", from: "me", to: ["a b"], body: "{{app"}
  - {name: hook, type: webhook, url: "ftp://x", headers: {X-Gitopsd-Event: x}}
""" % {"t": tmp})
        p = harness.run_tool([harness.binary(), "-t", "-c", cfg], cwd=tmp,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        out = p.stdout + p.stderr
        for want in (
                r"bad.yaml:9:\d+: notifiers\[0\].title: unknown variable "
                r"\"oops\"",
                r"bad.yaml:10:\d+: notifiers\[1\].body: unclosed",
                r"notifiers\[1\].smtp_url: must be smtp://",
                r"notifiers\[1\].from: not a mail address",
                r"notifiers\[1\].to\[0\]: not a mail address",
                r"notifiers\[2\].url: must be an http\(s\) URL",
                r"notifiers\[2\].headers.X-Gitopsd-Event: set by gitopsd"):
            self.assertRegex(out, want)

    def test_check_warns_about_smtp_password(self):
        tmp = tempfile.mkdtemp(prefix="gitopsd-ncheck-")
        self.addCleanup(shutil.rmtree, tmp, True)
        harness.write(os.path.join(tmp, "smtp.pw"), "pw\n")
        os.chmod(os.path.join(tmp, "smtp.pw"), 0o600)
        cfg = os.path.join(tmp, "mail.yaml")
        mail_keys = ('type: email, from: "a@example.test", '
                     'to: ["b@example.test"], username: u, '
                     'password_file: smtp.pw')
        harness.write(cfg, """
state: {path: "%(t)s/state.db"}
workdir: "%(t)s/repos"
notify_default: [plain, allowed, tls, starttls, moot]
notifiers:
  - {name: plain, smtp_url: "smtp://127.0.0.1:25", %(k)s}
  - {name: allowed, smtp_url: "smtp://127.0.0.1:25", allow_plaintext_auth: true, %(k)s}
  - {name: tls, smtp_url: "smtps://127.0.0.1:465", %(k)s}
  - {name: starttls, smtp_url: "smtp://127.0.0.1:587", require_tls: true, %(k)s}
  - {name: moot, smtp_url: "smtps://127.0.0.1:465", allow_plaintext_auth: true, %(k)s}
""" % {"t": tmp, "k": mail_keys})
        p = harness.run_tool([harness.binary(), "-t", "-c", cfg], cwd=tmp,
                             capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertRegex(out, r"mail.yaml:6:\d+: notifiers\[0\].smtp_url: "
                         r"notifier plain: a password on smtp:// without "
                         r"require_tls: STARTTLS is required anyway")
        self.assertRegex(out, r"mail.yaml:7:\d+: notifiers\[1\]"
                         r".allow_plaintext_auth: notifier allowed: the SMTP "
                         r"password may go out in clear")
        self.assertRegex(out, r"mail.yaml:10:\d+: notifiers\[4\]"
                         r".allow_plaintext_auth: notifier moot: no effect, "
                         r"TLS is required")
        self.assertNotIn("notifier tls:", out)
        self.assertNotIn("notifier starttls:", out)


if __name__ == "__main__":
    unittest.main()
