"""Incident notifiers end to end: an app whose sync fails opens an incident
in the real Prometheus Alertmanager (Debian's prometheus-alertmanager,
started here on a free port), in PagerDuty and in Opsgenie (played by
test/support/incident_sink.py, which checks each request against the
service's documented shape and keeps the service's state); the same
failure again sends nothing more; the app's recovery -- after a gitopsd
restart in between -- resolves all three with the key the failure used.
Two failure reasons are two PagerDuty/Opsgenie incidents, both resolved
by the recovery; the Alertmanager alert is re-sent while the app fails,
its endsAt moving on, across a restart too.  The chat types are played by
the same sink; a payload a service refuses is not retried.

The app's repository is a local bare repository and its cluster the
Kubernetes API simulator: the first manifest names a ConfigMap the API
refuses (422, an invalid name), so the sync is dead at once
(retry.max_attempts 1); a commit that fixes the name makes the next sync
succeed, which is the recovery."""
import json
import os
import shutil
import tempfile
import time
import unittest

import harness
from fault_peers import Kubesim, git, make_repo, wait_for
from incident_peers import Alertmanager, IncidentSink

PD_KEY = "R0123456789abcdef0123456789abcde"    # 32 characters
OG_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"

BAD = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"
       "  namespace: default\ndata: {a: \"1\"}\n")
GOOD = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n"
        "  namespace: default\ndata: {a: \"1\"}\n")

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 5, max_attempts: 1}
notify: {max_attempts: %(notify_attempts)d, repeat_after_s: %(repeat)d, timeout_s: 5}
links: {base_url: "https://gitopsd.test"}
repos:
  - {name: deploy, url: "%(bare)s", branch: main}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
  - name: web
    repo: deploy
    path: apps/web
    cluster: sim
    sync: {auto: false, timeout_s: 10}
    notify: [%(names)s]
notifiers:
%(notifiers)s
"""


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-incident-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dtmp = os.path.join(self.tmp, "d")
        os.makedirs(self.dtmp)
        self.ports = (harness.free_port(), harness.free_port())
        self.sim = Kubesim(ready_delay=0.1)
        self.addCleanup(self.sim.stop)
        self.bare = make_repo(self.tmp, "deploy",
                              {"apps/web/config.yaml": BAD})

    def fix_repo(self, text=GOOD):
        src = os.path.join(self.tmp, "fix")
        if not os.path.isdir(src):
            git("clone", "-q", self.bare, src)
        harness.write(os.path.join(src, "apps/web/config.yaml"), text,
                      mode=0o644)
        git("-c", "user.name=t", "-c", "user.email=t@example.invalid",
            "commit", "-q", "-am", "change the manifest", cwd=src)
        git("push", "-q", "origin", "HEAD:main", cwd=src)

    def daemon(self, notifiers, notify_attempts=10, secrets=None,
               repeat=3600):
        names = ", ".join(n["name"] for n in notifiers)
        text = "".join("  - %s\n" % json.dumps(n) for n in notifiers)
        d = harness.Daemon(CONFIG % {
            "notify_attempts": notify_attempts, "bare": self.bare,
            "repeat": repeat,
            "kubeconfig": self.sim.kubeconfig, "names": names,
            "notifiers": text}, tmp=self.dtmp, ports=self.ports,
            secrets=dict({"pd.key": PD_KEY + "\n", "og.key": OG_KEY + "\n"},
                         **(secrets or {})))
        self.addCleanup(d.cleanup)
        d.start()
        return d

    def syncs(self, d):
        return d.api("/api/v1/jobs?app=web&kind=sync&limit=100")["jobs"]

    def notifies(self, d):
        return d.api("/api/v1/jobs?app=web&kind=notify&limit=100")["jobs"]

    def sync(self, d, want):
        """One manual sync, run to its end; want: its final state."""
        n = len(self.syncs(d))
        r = d.admin("POST", "/api/v1/apps/web/sync")
        self.assertIn(r.status, (200, 202), r)
        js = wait_for("sync %d final" % (n + 1), lambda: (
            lambda js: js if len(js) > n and all(
                j["state"] in ("succeeded", "dead") for j in js) else None)(
                    self.syncs(d)), timeout=60)
        newest = max(js, key=lambda j: j["id"])
        self.assertEqual(newest["state"], want, (newest, d.log()[-3000:]))
        return newest

    def settled(self, d, n):
        """n notify jobs, all succeeded."""
        try:
            return wait_for("%d alerts delivered" % n, lambda: (
                lambda js: js if len(js) == n and all(
                    j["state"] == "succeeded" for j in js) else None)(
                        self.notifies(d)), timeout=30)
        except AssertionError as e:
            self.fail("%s\n%r\n%s" % (e, self.notifies(d), d.log()[-4000:]))


    def dead(self, d, n):
        """n notify jobs, all dead."""
        return wait_for("%d alerts dead" % n, lambda: (
            lambda js: js if len(js) == n and all(
                j["state"] == "dead" for j in js) else None)(
                    self.notifies(d)), timeout=30)

    def pd_og(self, pd_script, og_key, og_script):
        """PagerDuty and Opsgenie sinks (scripted answers first) and a
        daemon alerting to both on failure."""
        pd = IncidentSink("pagerduty", script=pd_script).start()
        self.addCleanup(pd.close)
        og = IncidentSink("opsgenie", key=og_key, script=og_script).start()
        self.addCleanup(og.close)
        d = self.daemon([
            {"name": "pd", "type": "pagerduty", "routing_key_file": "pd.key",
             "api_url": pd.url},
            {"name": "og", "type": "opsgenie", "api_key_file": "og.key",
             "api_url": og.url}])
        return pd, og, d


class IncidentTest(Base):
    def test_failure_repeat_restart_recovery(self):
        am = Alertmanager()
        self.addCleanup(am.stop)
        pd = IncidentSink("pagerduty").start()
        self.addCleanup(pd.close)
        og = IncidentSink("opsgenie", key=OG_KEY).start()
        self.addCleanup(og.close)
        notifiers = [
            {"name": "am", "type": "alertmanager", "url": [am.url],
             "severity": "critical", "labels": {"team": "web"},
             "on": ["failure", "recovery"]},
            {"name": "pd", "type": "pagerduty", "routing_key_file": "pd.key",
             "api_url": pd.url, "on": ["failure", "recovery"]},
            {"name": "og", "type": "opsgenie", "api_key_file": "og.key",
             "api_url": og.url + "/", "on": ["failure", "recovery"]},
        ]
        d = self.daemon(notifiers)

        # 1. The failure opens an incident everywhere.
        bad = self.sync(d, "dead")
        self.settled(d, 3)
        alerts = wait_for("the alert in Alertmanager",
                          lambda: am.alerts(app="web"), timeout=30)
        self.assertEqual(len(alerts), 1, alerts)
        a = alerts[0]
        self.assertEqual(a["labels"], {
            "alertname": "GitopsdAppFailing", "app": "web", "cluster": "sim",
            "severity": "critical", "team": "web"})
        self.assertEqual(a["status"]["state"], "active")
        self.assertIn("Bad_Name", a["annotations"]["error"])
        self.assertEqual(a["annotations"]["error_kind"], "apply-rejected")
        self.assertEqual(a["annotations"]["job_url"],
                         "https://gitopsd.test/api/v1/jobs/%d" % bad["id"])
        self.assertEqual(a["annotations"]["summary"], "web: sync failed")
        # Not about to expire: endsAt four resend intervals (60 s) ahead.
        ends = harness_time(a["endsAt"])
        self.assertGreater(ends, time.time() + 200)
        self.assertLess(ends, time.time() + 250)

        trig = pd.records()
        self.assertEqual(len(trig), 1, trig)
        self.assertEqual(trig[0]["errors"], [])
        self.assertEqual(trig[0]["status"], 202)
        ev = json.loads(trig[0]["body"])
        self.assertEqual(ev["event_action"], "trigger")
        self.assertEqual(ev["routing_key"], PD_KEY)
        self.assertEqual(ev["payload"]["component"], "web")
        self.assertEqual(ev["payload"]["source"], "sim")
        self.assertIn("Bad_Name", ev["payload"]["custom_details"]["error"])
        dedup = ev["dedup_key"]
        self.assertEqual(pd.state()["incidents"][dedup]["status"],
                         "triggered")

        created = og.records()
        self.assertEqual(len(created), 1, created)
        self.assertEqual(created[0]["errors"], [])
        self.assertEqual(created[0]["path"], "/v2/alerts")
        body = json.loads(created[0]["body"])
        alias = body["alias"]
        self.assertEqual(body["message"], "web: sync failed")
        self.assertEqual(body["details"]["cluster"], "sim")
        self.assertIn("Bad_Name", body["details"]["error"])
        self.assertEqual(og.state()["alerts"][alias]["status"], "open")

        # 2. The same failure again: nothing more is sent.
        self.sync(d, "dead")
        time.sleep(2)
        self.assertEqual(len(self.notifies(d)), 3)
        self.assertEqual(len(pd.records()), 1)
        self.assertEqual(len(og.records()), 1)

        # 3. A restart, then the fix: the recovery resolves what the
        # failure opened, by the same keys.
        self.assertEqual(d.stop(), 0)
        self.fix_repo()
        d = self.daemon(notifiers)
        # Starting, the daemon re-sends the open Alertmanager alert (its
        # endsAt is minutes ahead); PagerDuty and Opsgenie get nothing.
        self.settled(d, 4)
        self.sync(d, "succeeded")
        self.settled(d, 7)
        wait_for("the alert resolved", lambda: am.alerts(app="web") == [],
                 timeout=30)
        res = pd.records()
        self.assertEqual(len(res), 2, res)
        self.assertEqual(res[1]["errors"], [])
        ev = json.loads(res[1]["body"])
        self.assertEqual(ev["event_action"], "resolve")
        self.assertEqual(ev["dedup_key"], dedup)
        self.assertEqual(pd.state()["incidents"][dedup]["status"],
                         "resolved")
        closed = og.records()
        self.assertEqual(len(closed), 2, closed)
        self.assertEqual(closed[1]["errors"], [])
        self.assertEqual(closed[1]["path"],
                         "/v2/alerts/%s/close?identifierType=alias" % alias)
        self.assertEqual(og.state()["alerts"][alias]["status"], "closed")

    def test_incident_per_failure_reason(self):
        # Two failure reasons of one app are two incidents (PagerDuty
        # dedup_key, Opsgenie alias); the same reason again is the same
        # incident; the recovery -- after a restart -- resolves both.
        pd = IncidentSink("pagerduty").start()
        self.addCleanup(pd.close)
        og = IncidentSink("opsgenie", key=OG_KEY).start()
        self.addCleanup(og.close)
        notifiers = [
            {"name": "pd", "type": "pagerduty", "routing_key_file": "pd.key",
             "api_url": pd.url, "on": ["failure", "recovery"]},
            {"name": "og", "type": "opsgenie", "api_key_file": "og.key",
             "api_url": og.url, "on": ["failure", "recovery"]},
        ]
        d = self.daemon(notifiers)
        self.sync(d, "dead")                    # sync/apply-rejected
        self.settled(d, 2)
        self.fix_repo("not: [valid yaml\n")     # sync/manifest
        self.sync(d, "dead")
        self.settled(d, 4)
        trig = [json.loads(r["body"]) for r in pd.records()]
        self.assertEqual([t["event_action"] for t in trig],
                         ["trigger", "trigger"])
        keys = [t["dedup_key"] for t in trig]
        self.assertNotEqual(keys[0], keys[1])
        self.assertEqual([t["payload"]["class"] for t in trig],
                         ["apply-rejected", "manifest"])
        aliases = [json.loads(r["body"])["alias"] for r in og.records()]
        self.assertEqual(len(set(aliases)), 2, aliases)
        self.assertEqual({k: v["status"] for k, v in
                          pd.state()["incidents"].items()},
                         {keys[0]: "triggered", keys[1]: "triggered"})

        # The same reason again (its text may differ): nothing new.
        self.sync(d, "dead")
        time.sleep(2)
        self.assertEqual(len(pd.records()), 2)
        self.assertEqual(len(og.records()), 2)

        self.assertEqual(d.stop(), 0)
        self.fix_repo(GOOD)
        d = self.daemon(notifiers)
        self.sync(d, "succeeded")
        self.settled(d, 8)
        res = [json.loads(r["body"]) for r in pd.records()[2:]]
        self.assertEqual([r["event_action"] for r in res],
                         ["resolve", "resolve"])
        self.assertEqual(sorted(r["dedup_key"] for r in res), sorted(keys))
        self.assertEqual({v["status"] for v in
                          pd.state()["incidents"].values()}, {"resolved"})
        closed = og.records()[2:]
        self.assertEqual(sorted(r["path"] for r in closed), sorted(
            "/v2/alerts/%s/close?identifierType=alias" % a
            for a in aliases))
        self.assertEqual({v["status"] for v in
                          og.state()["alerts"].values()}, {"closed"})
        for r in pd.records() + og.records():
            self.assertEqual(r["errors"], [], r)

    def test_alertmanager_alert_resent_while_failing(self):
        # One failure, no further attempts: gitopsd re-sends the alert
        # every resend_interval_s with endsAt four intervals ahead, so
        # its endsAt in Alertmanager moves on; a restart goes on
        # re-sending it; the recovery resolves it.
        am = Alertmanager()
        self.addCleanup(am.stop)
        notifiers = [{"name": "am", "type": "alertmanager", "url": am.url,
                      "resend_interval_s": 5,
                      "on": ["failure", "recovery"]}]
        d = self.daemon(notifiers)
        bad = self.sync(d, "dead")
        first = wait_for("the alert", lambda: am.alerts(app="web"))
        self.assertEqual(len(first), 1)
        ends0 = harness_time(first[0]["endsAt"])
        self.assertLess(ends0, time.time() + 21)
        self.assertGreater(ends0, time.time() + 10)

        def moved(after):
            al = am.alerts(app="web")
            return al if al and harness_time(al[0]["endsAt"]) > after + 3 \
                else None
        again = wait_for("endsAt moved on", lambda: moved(ends0), timeout=20)
        self.assertEqual(again[0]["fingerprint"], first[0]["fingerprint"])
        self.assertEqual(again[0]["startsAt"], first[0]["startsAt"])
        self.assertEqual(again[0]["status"]["state"], "active")
        # The re-sends are notify jobs of their own, the same failure's.
        alerts = [j["alert"] for j in self.notifies(d)]
        self.assertGreater(len(alerts), 1, alerts)
        self.assertEqual({(a["event"], a["job"]) for a in alerts},
                         {("job.failed", bad["id"])})

        # Across a restart: the open alert is found in the outbox.
        self.assertEqual(d.stop(), 0)
        ends1 = harness_time(am.alerts(app="web")[0]["endsAt"])
        d = self.daemon(notifiers)
        wait_for("endsAt moved on after the restart",
                 lambda: moved(ends1), timeout=20)

        self.fix_repo()
        self.sync(d, "succeeded")
        wait_for("the alert resolved", lambda: am.alerts(app="web") == [],
                 timeout=30)
        # Resolved stays resolved: no more re-sends.
        n = len(self.notifies(d))
        time.sleep(7)
        self.assertEqual(len(self.notifies(d)), n)
        self.assertEqual(am.alerts(app="web"), [])

    def test_pagerduty_429_retried_opsgenie_bad_key_rejected(self):
        pd, og, d = self.pd_og("429,429", "another-key", None)
        self.sync(d, "dead")
        recs = pd.wait_records(3)
        self.assertEqual([r["status"] for r in recs], [429, 429, 202])
        self.assertEqual(len({r["body"] for r in recs}), 1)
        self.assertEqual(list(pd.state()["incidents"].values())[0]["status"],
                         "triggered")
        # 401 is not retried: the alert is dead with the answer visible.
        js = wait_for("the opsgenie alert dead", lambda: [
            j for j in self.notifies(d) if j["state"] == "dead"], timeout=30)
        self.assertEqual(len(js), 1, js)
        self.assertIn("401", json.dumps(js[0]))
        self.assertEqual(len(og.records()), 1)


TG_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
CHAT = ("teams", "discord", "googlechat", "mattermost", "telegram")


class ChatTest(Base):
    def sinks(self, script=None):
        out = {}
        for mode in CHAT:
            s = IncidentSink(mode, key=TG_TOKEN if mode == "telegram" else "",
                             script=(script or {}).get(mode)).start()
            self.addCleanup(s.close)
            out[mode] = s
        return out

    def chat_daemon(self, sinks):
        notifiers, secrets = [], {"tg.token": TG_TOKEN + "\n"}
        for mode in CHAT[:4]:
            notifiers.append({"name": mode, "type": mode,
                              "url_file": mode + ".url",
                              "on": ["failure", "recovery"]})
            # Google Chat's webhook URLs carry the space's key and token.
            secrets[mode + ".url"] = "%s/hook/%s/x%s\n" % (
                sinks[mode].url, mode,
                "?key=k&token=t" if mode == "googlechat" else "")
        notifiers.append({"name": "telegram", "type": "telegram",
                          "bot_token_file": "tg.token", "chat_id": "-100123",
                          "api_url": sinks["telegram"].url,
                          "on": ["failure", "recovery"]})
        return self.daemon(notifiers, secrets=secrets)

    def test_failure_repeat_recovery(self):
        sinks = self.chat_daemon_sinks = self.sinks()
        d = self.chat_daemon(sinks)
        self.sync(d, "dead")
        self.settled(d, 5)
        for mode, s in sinks.items():
            recs = s.records()
            self.assertEqual(len(recs), 1, (mode, recs))
            self.assertEqual(recs[0]["errors"], [], mode)
            self.assertIn(recs[0]["status"], (200, 202, 204), mode)
            # The default message names the app, the cluster, the error
            # and the link.
            text = recs[0]["body"]
            for want in ("web", "sim", "Bad_Name",
                         "https://gitopsd.test/api/v1/jobs/"):
                self.assertIn(want, text, (mode, text))
        tg = json.loads(sinks["telegram"].records()[0]["body"])
        self.assertEqual(tg["chat_id"], "-100123")
        self.assertIn("&quot;Bad_Name&quot;", tg["text"])
        self.assertTrue(tg["text"].startswith("<b>web: sync failed</b>"))
        emb = json.loads(sinks["discord"].records()[0]["body"])["embeds"][0]
        self.assertEqual(emb["color"], 0xd73a49)
        card = json.loads(sinks["teams"].records()[0]["body"])
        facts = {f["title"]: f["value"] for f in card["attachments"][0][
            "content"]["body"][-1]["facts"]}
        self.assertEqual(facts["App"], "web")
        self.assertEqual(facts["Cluster"], "sim")

        # Repeat: nothing.
        self.sync(d, "dead")
        time.sleep(2)
        for mode, s in sinks.items():
            self.assertEqual(len(s.records()), 1, mode)

        # Recovery: one message each.
        self.fix_repo()
        self.sync(d, "succeeded")
        self.settled(d, 10)
        for mode, s in sinks.items():
            recs = s.records()
            self.assertEqual(len(recs), 2, (mode, recs))
            self.assertEqual(recs[1]["errors"], [], mode)
            self.assertIn("web recovered", recs[1]["body"], mode)
        emb = json.loads(sinks["discord"].records()[1]["body"])["embeds"][0]
        self.assertEqual(emb["color"], 0x2ea44f)

    def test_rate_limit_hints_in_the_body(self):
        # Discord and Telegram say how long to wait in the 429 body only
        # (3.2 s and 3 s); the retry waits that long, not the queue's 1 s.
        sinks = self.sinks({"discord": "429", "telegram": "429"})
        d = self.chat_daemon(sinks)
        self.sync(d, "dead")
        self.settled(d, 5)
        for mode in ("discord", "telegram"):
            recs = sinks[mode].records()
            self.assertEqual([r["status"] for r in recs],
                             [429, 204 if mode == "discord" else 200], mode)
            self.assertGreaterEqual(recs[1]["time"] - recs[0]["time"], 2.9,
                                    mode)

    def test_bad_payload_answer_is_permanent(self):
        # What each service answers a payload it refuses (400 and its own
        # error body) ends the alert at once -- a retry would be refused
        # the same way -- with the service's words in the job's error.
        sinks = self.sinks({mode: "400" for mode in CHAT})
        d = self.chat_daemon(sinks)
        self.sync(d, "dead")
        notes = self.dead(d, 5)
        self.assertEqual([j["attempts"] for j in notes], [1] * 5, notes)
        errors = json.dumps(notes)
        for want in ("InvalidRequestContent", "Invalid Form Body",
                     "INVALID_ARGUMENT", "app_error", "Bad Request"):
            self.assertIn(want, errors)
        for mode, s in sinks.items():
            self.assertEqual([r["status"] for r in s.records()], [400], mode)


class IncidentBadPayloadTest(Base):
    def test_refused_event_is_permanent(self):
        # PagerDuty's 400 and Opsgenie's 422 for an event they refuse are
        # not retried: the alert is dead after one attempt.
        pd, og, d = self.pd_og("400", OG_KEY, "422")
        self.sync(d, "dead")
        notes = self.dead(d, 2)
        self.assertEqual([j["attempts"] for j in notes], [1, 1], notes)
        self.assertIn("Event object is invalid", json.dumps(notes))
        time.sleep(2)
        self.assertEqual([r["status"] for r in pd.records()], [400])
        self.assertEqual([r["status"] for r in og.records()], [422])


class SinkValidatorsTest(unittest.TestCase):
    """The recording sink refuses what each service refuses: the checks
    the alert tests rely on are not vacuous."""

    @classmethod
    def setUpClass(cls):
        import incident_sink
        cls.s = incident_sink

    def test_teams_card(self):
        card = {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.4",
                        "body": [{"type": "TextBlock", "text": "t"}]}}]}
        raw = json.dumps(card).encode()
        self.assertEqual(self.s.check_teams(card, raw), [])
        for change in (
                lambda c: c["attachments"][0].update(
                    contentType="application/json"),
                lambda c: c["attachments"][0]["content"].update(
                    version="1.6"),
                lambda c: c["attachments"][0]["content"].update(body=[]),
                lambda c: c["attachments"][0]["content"].update(body=[
                    {"type": "FactSet", "facts": []}])):
            bad = json.loads(json.dumps(card))
            change(bad)
            self.assertTrue(self.s.check_teams(bad, raw), bad)
        self.assertTrue(self.s.check_teams({"text": "MessageCard"}, raw))

    def test_discord_limits(self):
        ok = {"embeds": [{"title": "t", "description": "d", "color": 1,
                          "fields": [{"name": "n", "value": "v"}]}]}
        self.assertEqual(self.s.check_discord(ok), [])
        for bad in ({"embeds": [{"title": "t"}] * 11},
                    # 6000 characters across all embeds, not each
                    {"embeds": [{"description": "x" * 3500}] * 2},
                    {"embeds": [{"fields": [{"name": "n", "value": ""}]}]},
                    {"embeds": [{"fields": [{"name": "n", "value": "v",
                                             "inline": "yes"}]}]},
                    {"embeds": [{"title": "t", "url": "not a url"}]},
                    {"content": "x" * 2001}, {}):
            self.assertTrue(self.s.check_discord(bad), bad)

    def test_telegram_html_and_length(self):
        base = {"chat_id": "-100123", "parse_mode": "HTML"}
        self.assertEqual(self.s.check_telegram(dict(
            base, text="<b>a &amp; b</b> <a href=\"https://x.test/\">x</a>"
            " &#x1F600;")), [])
        # 4096 UTF-16 units of shown text: entities count as one.
        self.assertEqual(self.s.check_telegram(dict(
            base, text="&amp;" * 4096)), [])
        for bad in ("a < b", "a > b", "a & b", "<script>x</script>", "<b>x",
                    "x" * 4097, "\U0001F600" * 2049):
            with self.subTest(text=bad[:20]):
                self.assertTrue(self.s.check_telegram(dict(base, text=bad)))

    def test_googlechat_and_mattermost(self):
        card = {"cardsV2": [{"cardId": "c", "card": {
            "header": {"title": "t"}, "sections": [{"widgets": [
                {"decoratedText": {"text": "a &lt; b"}}]}]}}]}
        raw = json.dumps(card).encode()
        q = "key=k&token=t"
        self.assertEqual(self.s.check_googlechat(card, raw, q), [])
        self.assertTrue(self.s.check_googlechat(card, raw, ""))
        self.assertTrue(self.s.check_googlechat({"text": "x" * 4097}, raw,
                                                q))
        for change in (
                lambda c: c["cardsV2"][0]["card"]["sections"][0][
                    "widgets"][0]["decoratedText"].update(text="a < b"),
                lambda c: c["cardsV2"][0]["card"].update(sections=[]),
                lambda c: c["cardsV2"][0]["card"].update(header={})):
            bad = json.loads(json.dumps(card))
            change(bad)
            self.assertTrue(self.s.check_googlechat(bad, raw, q), bad)
        ok = {"attachments": [{"fallback": "f", "color": "#ff0000",
                               "title_link": "https://x.test/",
                               "fields": [{"title": "t", "value": "v",
                                           "short": True}]}]}
        self.assertEqual(self.s.check_mattermost(ok), [])
        for change in (lambda a: a.update(color="red"),
                       lambda a: a.update(title_link="x"),
                       lambda a: a["fields"][0].update(value=1),
                       lambda a: a["fields"][0].update(short="yes")):
            bad = json.loads(json.dumps(ok))
            change(bad["attachments"][0])
            self.assertTrue(self.s.check_mattermost(bad), bad)


def harness_time(text):
    import datetime
    return datetime.datetime.fromisoformat(
        text.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    unittest.main()
