"""Durability under kill -9: signed GitHub pushes from 16 concurrent
clients, the daemon killed mid-stream and restarted on the same state.

Checks: every delivery answered 202 is stored exactly once with its jobs;
a delivery never sent is not stored; deliveries sent without an answer are
re-sent (as GitHub's redelivery would) and then stored exactly once;
re-sending everything creates nothing new (200 duplicate, same counts)."""
import http.client
import json
import os
import threading
import time
import unittest

import harness

SECRET = "kill-test-secret"
N = 4000
CLIENTS = 16
KILL_AFTER = 2000       # answers seen before the kill
if harness.VALGRIND:    # memcheck is ~30x slower: same test, fewer requests
    N, KILL_AFTER = 800, 300

CONFIG = """
shutdown_timeout_s: 5
server:
  listen: "127.0.0.1:{port}"
  max_connections: 256
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
queue: {workers: 2}
retry: {base_s: 60, max_s: 300}
sources:
  - {name: github, type: github, secret_file: github.secret}
repos:
  - {name: deploy, url: "https://git.example.invalid/acme/deploy.git", poll_interval_s: 0, branch: main}
apps:
  - {name: web, repo: deploy, path: apps/web, cluster: c}
  - {name: api, repo: deploy, path: apps/api, cluster: c}
""" + harness.DEAD_CLUSTER

CLONE_URL = "https://git.example.invalid/acme/deploy.git"


def post(port, body, headers, timeout=20 * harness.TIMEOUT_SCALE):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/hooks/github", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class KillTest(unittest.TestCase):
    def setUp(self):
        self.d = harness.Daemon(CONFIG, secrets={"github.secret": SECRET,
                                                 **harness.DEAD_CLUSTER_FILES})
        self.addCleanup(self.d.cleanup)

    def events(self):
        """Every stored event, by paging the admin API."""
        out, after = [], None
        while True:
            q = "/api/v1/events?limit=1000"
            if after is not None:
                q += "&after=%d" % after
            page = self.d.api(q)
            out += page["events"]
            if page["next"] is None:
                return out
            after = page["next"]

    def job_ids(self):
        out, after = set(), None
        while True:
            q = "/api/v1/jobs?kind=sync&limit=1000"
            if after is not None:
                q += "&after=%d" % after
            page = self.d.api(q)
            out |= {j["id"] for j in page["jobs"]}
            if page["next"] is None:
                return out
            after = page["next"]

    def test_kill9_mid_stream(self):
        d = self.d
        d.start()
        bodies = {}
        for i in range(N):
            delivery = "kill-%05d-%s" % (i, os.urandom(4).hex())
            # Paths under both apps: each push makes two sync jobs.
            bodies[delivery] = harness.github_push_body(
                CLONE_URL, paths=["apps/web/d.yaml", "apps/api/d.yaml"])
        order = list(bodies)
        answers = {}            # delivery -> (status, json) or None
        lock = threading.Lock()
        seen = [0]
        killed = threading.Event()

        def client(k):
            for delivery in order[k::CLIENTS]:
                if killed.is_set():
                    return      # never sent
                body = bodies[delivery]
                try:
                    status, raw = post(d.port, body, harness.github_headers(
                        SECRET, body, delivery))
                    ans = (status, json.loads(raw) if raw else None)
                except (OSError, http.client.HTTPException):
                    ans = None  # sent, no answer
                with lock:
                    answers[delivery] = ans
                    if ans is not None:
                        seen[0] += 1
                if ans is None:
                    return

        def killer():
            while True:
                with lock:
                    if seen[0] >= KILL_AFTER:
                        break
                time.sleep(0.001)
            killed.set()
            d.kill9()

        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(CLIENTS)]
        kt = threading.Thread(target=killer)
        t0 = time.time()
        for t in threads:
            t.start()
        kt.start()
        for t in threads:
            t.join(60 * harness.TIMEOUT_SCALE)
        kt.join(60 * harness.TIMEOUT_SCALE)
        accepted = {k: v for k, v in answers.items()
                    if v is not None and v[0] == 202}
        noanswer = [k for k, v in answers.items() if v is None]
        other = {k: v for k, v in answers.items()
                 if v is not None and v[0] != 202}
        never = [k for k in order if k not in answers]
        self.assertEqual(other, {}, "unexpected answers before the kill")
        self.assertGreaterEqual(len(accepted), KILL_AFTER)
        self.assertGreater(len(never), 0, "the kill came too late")

        d.start()
        events = self.events()
        by_delivery = {}
        for e in events:
            self.assertEqual(e["source"], "github")
            by_delivery.setdefault(e["delivery"], []).append(e)
        jobs = self.job_ids()
        for delivery, (status, ans) in accepted.items():
            stored = by_delivery.get(delivery, [])
            self.assertEqual(len(stored), 1, delivery)
            self.assertEqual(len(ans["jobs"]), 2, ans)
            self.assertTrue(set(ans["jobs"]) <= set(stored[0]["jobs"]))
            self.assertTrue(set(ans["jobs"]) <= jobs)
        for delivery in never:
            self.assertNotIn(delivery, by_delivery)
        for delivery in noanswer:
            # Committed or not at the kill; never twice.
            self.assertLessEqual(len(by_delivery.get(delivery, [])), 1)

        # GitHub redelivers what got no answer.
        for delivery in noanswer:
            body = bodies[delivery]
            status, raw = post(d.port, body, harness.github_headers(
                SECRET, body, delivery))
            self.assertIn(status, (200, 202), raw)
            if status == 200:
                self.assertTrue(json.loads(raw).get("duplicate"))
        sent = list(accepted) + noanswer
        events = self.events()
        counts = {}
        for e in events:
            counts[e["delivery"]] = counts.get(e["delivery"], 0) + 1
        for delivery in sent:
            self.assertEqual(counts.get(delivery), 1, delivery)
        self.assertEqual(len(events), len(sent))
        jobs_before = self.job_ids()

        # Re-sending every sent delivery creates nothing new.
        errors = []

        def resend(k):
            for delivery in sent[k::CLIENTS]:
                body = bodies[delivery]
                status, raw = post(d.port, body, harness.github_headers(
                    SECRET, body, delivery))
                if status != 200 or not json.loads(raw).get("duplicate"):
                    errors.append((delivery, status, raw))

        threads = [threading.Thread(target=resend, args=(k,))
                   for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * harness.TIMEOUT_SCALE)
        self.assertEqual(errors[:5], [])
        self.assertEqual(len(self.events()), len(sent))
        self.assertEqual(self.job_ids(), jobs_before)
        print("\nkill test: %d accepted, %d unanswered, %d never sent, "
              "%.1f s" % (len(accepted), len(noanswer), len(never),
                          time.time() - t0))


if __name__ == "__main__":
    unittest.main()
