"""Kubernetes sync: the API simulator's honesty, and the end-to-end path
(a signed GitHub push ends with the new revision applied to the simulated
cluster and recorded on the app).  Real processes on 127.0.0.1."""
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

import harness
from fault_peers import Kubesim


def cm(name, data, labels=None):
    md = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md,
            "data": data}


class KubesimTest(unittest.TestCase):
    """The simulator answers like the Kubernetes API it stands in for."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Kubesim()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def assertStatus(self, body, code, reason):
        self.assertEqual(body["kind"], "Status")
        self.assertEqual(body["apiVersion"], "v1")
        self.assertEqual(body["status"], "Failure")
        self.assertEqual(body["code"], code)
        self.assertEqual(body["reason"], reason)
        self.assertTrue(body["message"])

    def test_discovery_shapes(self):
        st, b = self.sim.call("GET", "/api")
        self.assertEqual((st, b["kind"], b["versions"]),
                         (200, "APIVersions", ["v1"]))
        st, b = self.sim.call("GET", "/apis")
        self.assertEqual(b["kind"], "APIGroupList")
        groups = {g["name"]: g for g in b["groups"]}
        for g in ("apps", "batch", "rbac.authorization.k8s.io",
                  "apiextensions.k8s.io", "networking.k8s.io"):
            self.assertEqual(groups[g]["preferredVersion"]["groupVersion"],
                             g + "/v1")
        st, b = self.sim.call("GET", "/apis/apps/v1")
        self.assertEqual((b["kind"], b["groupVersion"]),
                         ("APIResourceList", "apps/v1"))
        res = {r["name"]: r for r in b["resources"]}
        self.assertTrue(res["deployments"]["namespaced"])
        self.assertEqual(res["deployments"]["kind"], "Deployment")
        self.assertIn("patch", res["deployments"]["verbs"])
        self.assertIn("deployments/status", res)
        st, b = self.sim.call("GET", "/api/v1")
        res = {r["name"]: r for r in b["resources"]}
        self.assertFalse(res["namespaces"]["namespaced"])
        st, b = self.sim.call("GET", "/apis/nope.io/v1")
        self.assertStatus(b, 404, "NotFound")

    def test_auth_required(self):
        st, b = self.sim.call("GET", "/api/v1/namespaces", token=False)
        self.assertEqual(st, 401)
        self.assertStatus(b, 401, "Unauthorized")

    def test_server_side_apply_generation_and_resource_version(self):
        p = "/api/v1/namespaces/default/configmaps/ssa"
        st, b = self.sim.apply(p, cm("ssa", {"a": "1"}), manager=None)
        self.assertEqual(st, 400)
        self.assertIn("fieldManager", b["message"])
        st, b = self.sim.call("PATCH", p + "?fieldManager=t",
                              cm("ssa", {"a": "1"}),
                              "application/strategic-merge-patch+json")
        self.assertEqual(st, 415)
        st, created = self.sim.apply(p, cm("ssa", {"a": "1"}))
        self.assertEqual(st, 201)
        self.assertEqual(created["metadata"]["generation"], 1)
        st, same = self.sim.apply(p, cm("ssa", {"a": "1"}))
        self.assertEqual(st, 200)
        self.assertEqual(same["metadata"]["resourceVersion"],
                         created["metadata"]["resourceVersion"])
        st, relabel = self.sim.apply(p, cm("ssa", {"a": "1"}, {"x": "y"}))
        self.assertNotEqual(relabel["metadata"]["resourceVersion"],
                            created["metadata"]["resourceVersion"])
        self.assertEqual(relabel["metadata"]["generation"], 1)
        st, changed = self.sim.apply(p, cm("ssa", {"a": "2"}, {"x": "y"}))
        self.assertEqual(changed["metadata"]["generation"], 2)
        self.assertEqual(changed["metadata"]["uid"],
                         created["metadata"]["uid"])
        # Name in the body and in the URL must agree.
        st, b = self.sim.apply(p, cm("other", {}))
        self.assertStatus(b, 400, "BadRequest")

    def test_namespace_must_exist(self):
        st, b = self.sim.apply("/api/v1/namespaces/ghost/configmaps/x",
                               cm("x", {}))
        self.assertStatus(b, 404, "NotFound")
        self.assertEqual(b["message"], 'namespaces "ghost" not found')
        self.assertEqual(b["details"]["kind"], "namespaces")

    def test_validation_422(self):
        dep = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "Bad_Name"}, "spec": {}}
        st, b = self.sim.apply(
            "/apis/apps/v1/namespaces/default/deployments/Bad_Name", dep)
        self.assertStatus(b, 422, "Invalid")
        self.assertIn("metadata.name", b["message"])

    def test_list_selectors_and_delete(self):
        base = "/api/v1/namespaces/default/configmaps"
        for name, labels in (("s1", {"tier": "web", "env": "prod"}),
                             ("s2", {"tier": "db", "env": "prod"}),
                             ("s3", {"tier": "web"})):
            self.assertIn(self.sim.apply(base + "/" + name,
                                         cm(name, {}, labels))[0],
                          (200, 201))

        def names(sel):
            st, b = self.sim.call(
                "GET", base + "?labelSelector=" +
                urllib.request.quote(sel))
            self.assertEqual(st, 200)
            self.assertEqual(b["kind"], "ConfigMapList")
            self.assertTrue(b["metadata"]["resourceVersion"])
            return sorted(i["metadata"]["name"] for i in b["items"]
                          if i["metadata"]["name"] in ("s1", "s2", "s3"))
        self.assertEqual(names("tier=web"), ["s1", "s3"])
        self.assertEqual(names("tier==web,env=prod"), ["s1"])
        self.assertEqual(names("tier!=web"), ["s2"])
        self.assertEqual(names("tier in (db, web),env"), ["s1", "s2"])
        self.assertEqual(names("tier notin (web)"), ["s2"])
        self.assertEqual(names("tier,!env"), ["s3"])
        st, b = self.sim.call("GET", base + "?labelSelector=a%3D%3D%3Db")
        self.assertEqual(st, 400)
        st, b = self.sim.call("DELETE", base + "/s1?propagationPolicy=Sure")
        self.assertStatus(b, 400, "BadRequest")
        st, b = self.sim.call("DELETE",
                              base + "/s1?propagationPolicy=Background")
        self.assertEqual((st, b["status"]), (200, "Success"))
        st, b = self.sim.call("GET", base + "/s1")
        self.assertStatus(b, 404, "NotFound")

    def test_index_follows_changes_and_delete_preconditions(self):
        base = "/api/v1/namespaces/default/configmaps"
        sel = base + "?labelSelector=" + urllib.request.quote("ix=1")
        for name in ("ix1", "ix2"):
            self.sim.apply(base + "/" + name, cm(name, {}, {"ix": "1"}))

        def names(path):
            st, b = self.sim.call("GET", path)
            self.assertEqual(st, 200)
            return sorted(i["metadata"]["name"] for i in b["items"])
        self.assertEqual(names(sel), ["ix1", "ix2"])
        # A label removed (a new object under the same key) leaves the
        # label's index.
        st, _ = self.sim.call("PATCH", base + "/ix1",
                              {"metadata": {"labels": {"ix": None}}},
                              "application/merge-patch+json")
        self.assertEqual(st, 200)
        self.assertEqual(names(sel), ["ix2"])
        # DeleteOptions preconditions: another uid is a 409, the object
        # stays; its own uid deletes it.
        st, ix2 = self.sim.call("GET", base + "/ix2")
        st, b = self.sim.call("DELETE", base + "/ix2", {
            "kind": "DeleteOptions", "apiVersion": "v1",
            "preconditions": {"uid": "not-its-uid"}})
        self.assertStatus(b, 409, "Conflict")
        self.assertIn("Precondition failed", b["message"])
        self.assertEqual(names(sel), ["ix2"])
        st, b = self.sim.call("DELETE", base + "/ix2", {
            "kind": "DeleteOptions", "apiVersion": "v1",
            "propagationPolicy": "Background",
            "preconditions": {"uid": ix2["metadata"]["uid"]}})
        self.assertEqual((st, b["status"]), (200, "Success"))
        self.assertEqual(names(sel), [])
        # Cascades through the namespace and owner indexes.
        self.sim.apply("/api/v1/namespaces/ixns",
                       {"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "ixns"}})
        nsbase = "/api/v1/namespaces/ixns/configmaps"
        st, parent = self.sim.apply(nsbase + "/parent", cm("parent", {}))
        child = cm("child", {})
        child["metadata"]["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "parent",
            "uid": parent["metadata"]["uid"]}]
        self.sim.apply(nsbase + "/child", child)
        self.sim.apply(nsbase + "/other", cm("other", {}))
        self.assertEqual(names(nsbase), ["child", "other", "parent"])
        st, _ = self.sim.call("DELETE", nsbase + "/parent")
        self.assertEqual(names(nsbase), ["other"])
        st, _ = self.sim.call("DELETE", "/api/v1/namespaces/ixns")
        self.assertEqual(st, 200)
        st, b = self.sim.call("GET", nsbase + "/other")
        self.assertEqual(st, 404)
        self.assertEqual(names(nsbase), [])

    def test_rollout_status(self):
        self.sim.apply("/api/v1/namespaces/ro",
                       {"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "ro"}})

        def deploy(name, image):
            return {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name},
                    "spec": {"replicas": 3,
                             "selector": {"matchLabels": {"app": name}},
                             "template": {
                                 "metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [
                                     {"name": "c", "image": image}]}}}}
        base = "/apis/apps/v1/namespaces/ro/deployments/"
        self.sim.apply(base + "good", deploy("good", "nginx:1"))
        self.sim.apply(base + "bad", deploy("bad", "nginx:1-never-ready"))
        time.sleep(0.6)
        st, good = self.sim.call("GET", base + "good")
        self.assertEqual(good["status"]["availableReplicas"], 3)
        self.assertEqual(good["status"]["observedGeneration"], 1)
        st, bad = self.sim.call("GET", base + "bad")
        prog = [c for c in bad["status"]["conditions"]
                if c["type"] == "Progressing"][0]
        self.assertEqual((prog["status"], prog["reason"]),
                         ("False", "ProgressDeadlineExceeded"))

    def test_faults(self):
        st, _ = self.sim.call("POST", "/_sim/faults",
                              {"method": "GET", "path": "^/api/v1/nodes$",
                               "status": 503, "count": 1})
        self.assertEqual(st, 200)
        st, b = self.sim.call("GET", "/api/v1/nodes")
        self.assertStatus(b, 503, "ServiceUnavailable")
        st, b = self.sim.call("GET", "/api/v1/nodes")
        self.assertEqual(st, 200)
        self.sim.call("POST", "/_sim/faults",
                      {"method": "GET", "path": "^/api/v1/nodes$",
                       "drop": True, "count": 1})
        with self.assertRaises((urllib.error.URLError, ConnectionError,
                                ssl.SSLError, OSError)):
            self.sim.call("GET", "/api/v1/nodes")
        self.sim.call("DELETE", "/_sim/faults")


# ---- end to end through the daemon ----------------------------------------

SECRET = "sync-e2e-secret"

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}"}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 2, max_attempts: 2}
sources:
  - {name: github, type: github, secret_file: github.secret}
repos:
  - {name: deploy, url: "%(url)s", poll_interval_s: 0, branch: main}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
apps:
  - name: demo
    repo: deploy
    path: apps/demo
    cluster: sim
    namespace: demo
    sync: {auto: true, prune: true, timeout_s: 30}
"""

MANIFESTS = {
    "apps/demo/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n"
                         "  name: demo\n",
    "apps/demo/web.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:%s
""",
}


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=test", "-c",
                           "user.email=test@localhost", *args], cwd=cwd,
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def daemon_built():
    try:
        harness.binary()
        return True
    except RuntimeError:
        return False


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class SyncEndToEndTest(unittest.TestCase):
    def setUp(self):
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="sync-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = os.path.join(self.tmp, "deploy.git")
        self.work = os.path.join(self.tmp, "work")
        git("init", "-q", "--bare", "-b", "main", self.bare)
        git("init", "-q", "-b", "main", self.work)

    def commit(self, tag):
        for rel, text in MANIFESTS.items():
            p = os.path.join(self.work, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text % tag if "%s" in text else text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", "web " + tag, cwd=self.work)
        git("push", "-q", self.bare, "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push_event(self, d, after):
        body = json.dumps({
            "ref": "refs/heads/main", "before": "0" * 40, "after": after,
            "created": False, "deleted": False, "forced": False,
            "commits": [], "head_commit": {"id": after},
            "repository": {"full_name": "acme/deploy", "name": "deploy",
                           "clone_url": self.bare, "ssh_url": self.bare,
                           "html_url": "file://" + self.bare},
            "pusher": {"name": "test", "email": "test@localhost"},
        }).encode()
        return d.post("/hooks/github", body, {
            "Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": harness.github_signature(SECRET, body)})

    def wait_app(self, d, revision, timeout=60):
        deadline = time.time() + timeout
        app = None
        while time.time() < deadline:
            r = harness.request(d.admin_port, "GET", "/api/v1/apps/demo")
            if r.status == 200:
                app = r.json()
                if app.get("revision") == revision and \
                        app.get("health") == "Healthy":
                    return app
            time.sleep(0.2)
        self.fail("app never reached %s/Healthy: %r\n%s" %
                  (revision, app, d.log()[-4000:]))

    def test_push_applies_revision_and_records_it(self):
        first = self.commit("1.0.0")
        text = CONFIG % {"url": self.bare, "kubeconfig": self.sim.kubeconfig}
        d = harness.Daemon(text, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.start()
        r = self.push_event(d, first)
        self.assertEqual(r.status, 202, r)
        app = self.wait_app(d, first)
        self.assertEqual(app["cluster"], "sim")
        r = harness.request(d.admin_port, "GET", "/api/v1/jobs?app=demo")
        job = [j for j in r.json()["jobs"] if j["kind"] == "sync"][0]
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["result"]["revision"], first)
        self.assertEqual(job["result"]["detail"]["applied"], 2)
        self.assertEqual(job["result"]["detail"]["health"], "Healthy")
        st, dep = self.sim.call(
            "GET", "/apis/apps/v1/namespaces/demo/deployments/web")
        self.assertEqual(st, 200)
        self.assertEqual(dep["metadata"]["labels"]["gitopsd.io/app"],
                         "demo")
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, "registry.example/web:1.0.0")

        second = self.commit("1.1.0")
        r = self.push_event(d, second)
        self.assertEqual(r.status, 202, r)
        self.wait_app(d, second)
        st, dep2 = self.sim.call(
            "GET", "/apis/apps/v1/namespaces/demo/deployments/web")
        self.assertEqual(dep2["spec"]["template"]["spec"]["containers"][0]
                         ["image"], "registry.example/web:1.1.0")
        self.assertEqual(dep2["metadata"]["generation"], 2)

    def sync_jobs(self, d):
        r = harness.request(d.admin_port, "GET", "/api/v1/jobs?app=demo")
        return [j for j in r.json()["jobs"] if j["kind"] == "sync"]

    def test_kill9_while_waiting_for_health(self):
        """A sync whose rollout runs waits in the queue (state `waiting`,
        listed by the API, with its next look); a kill -9 then loses
        nothing: after the restart the same attempt looks again and
        succeeds, without a second apply or a counted attempt."""
        rev = self.commit("3.0.0")
        self.sim.call("POST", "/_sim/config", {"ready_delay": 8})
        text = CONFIG % {"url": self.bare, "kubeconfig": self.sim.kubeconfig}
        d = harness.Daemon(text, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(self.push_event(d, rev).status, 202)
        deadline = time.time() + 30
        job = None
        while time.time() < deadline:
            r = harness.request(d.admin_port, "GET",
                                "/api/v1/jobs?state=waiting")
            if r.json()["jobs"]:
                job = r.json()["jobs"][0]
                break
            time.sleep(0.05)
        self.assertIsNotNone(job, d.log()[-3000:])
        self.assertEqual((job["kind"], job["app"], job["attempts"]),
                         ("sync", "demo", 0))
        self.assertIsNotNone(job["not_before"])
        self.assertEqual(job["result"]["detail"]["health"], "Progressing")
        self.assertEqual(job["result"]["revision"], rev)
        d.kill9()

        d.start()
        self.wait_app(d, rev)
        job = self.sync_jobs(d)[0]
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 1))
        self.assertEqual(job["result"]["detail"]["health"], "Healthy")
        self.assertNotIn("wait", job["result"])
        one = harness.request(d.admin_port, "GET",
                              "/api/v1/jobs/%d" % job["id"]).json()
        self.assertEqual([a["ok"] for a in one["attempts_log"]], [True])
        patches = [q for q in self.sim.requests() if q["method"] == "PATCH"
                   and q["path"].endswith("/deployments/web")]
        self.assertEqual(len(patches), 1, patches)
        self.assertIn("waiting for health", d.log())

    def test_failed_rollout_is_dead_with_reason(self):
        rev = self.commit("2.0-never-ready")
        text = CONFIG % {"url": self.bare, "kubeconfig": self.sim.kubeconfig}
        d = harness.Daemon(text, secrets={"github.secret": SECRET})
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(self.push_event(d, rev).status, 202)
        deadline = time.time() + 60
        job = None
        while time.time() < deadline:
            r = harness.request(d.admin_port, "GET", "/api/v1/jobs?app=demo")
            jobs = [j for j in r.json()["jobs"] if j["kind"] == "sync"]
            if jobs and jobs[0]["state"] in ("dead", "succeeded"):
                job = jobs[0]
                break
            time.sleep(0.2)
        self.assertIsNotNone(job, d.log()[-3000:])
        # Permanent: no retry, dead at the first attempt.
        self.assertEqual((job["state"], job["attempts"]), ("dead", 1))
        self.assertIn("Deployment demo/web", json.dumps(job))
        self.assertIn("ProgressDeadlineExceeded", json.dumps(job))
        app = harness.request(d.admin_port, "GET",
                              "/api/v1/apps/demo").json()
        self.assertNotEqual(app.get("health"), "Healthy")


HOSTILE_CONFIG = CONFIG[:CONFIG.index("apps:\n")] + """\
apps:
  - name: demo
    repo: deploy
    path: deploy
    cluster: sim
    namespace: default
    sync: {auto: true}
    render: {command: [cat, leak.yaml]}
"""


@unittest.skipUnless(daemon_built(), "gitopsd not built")
class HostileRepositoryTest(unittest.TestCase):
    """A repository built with plumbing, as a hostile server would send it:
    a relative link out of the app to a canary beside the render
    directories, tree entries "..", ".git", ".GIT" and a backslash name.
    Each sync fails naming the entry; the canary never reaches the
    cluster; nothing is created outside the render directories, which
    are gone afterwards."""

    setUp = SyncEndToEndTest.setUp
    push_event = SyncEndToEndTest.push_event

    def plumb(self, deploy_extra, root_extra):
        def obj(data):
            return subprocess.run(
                ["git", "--git-dir", self.bare, "hash-object", "-w",
                 "--stdin"], input=data, check=True, capture_output=True,
                text=True).stdout.strip()

        def tree(lines):
            return subprocess.run(
                ["git", "--git-dir", self.bare, "mktree"],
                input="".join(lines), check=True, capture_output=True,
                text=True).stdout.strip()

        ok = obj("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                 "  name: hostile-ok\ndata: {a: '1'}\n")
        pwned = obj("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                    "  name: pwned\ndata: {a: '1'}\n")
        sub = tree(["100644 blob %s\tpwned.yaml\n" % pwned])
        parts = {"ok": ok, "pwned": pwned, "sub": sub,
                 # from <TMPDIR>/gitopsd-render-X/deploy, the layout
                 # before renders got a src/ directory: the canary
                 "leak": obj("../../../canary.yaml")}
        dep = tree(["100644 blob %s\tcm.yaml\n" % ok] +
                   [line % parts for line in deploy_extra])
        root = tree(["040000 tree %s\tdeploy\n" % dep] +
                    [line % parts for line in root_extra])
        head = ["-p", "main"] if subprocess.run(
            ["git", "--git-dir", self.bare, "rev-parse", "-q", "--verify",
             "main"], capture_output=True).returncode == 0 else []
        c = git("--git-dir", self.bare, "commit-tree", root, *head, "-m",
                "hostile")
        git("--git-dir", self.bare, "update-ref", "refs/heads/main", c)
        return c

    def wait_job(self, d, rev, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = harness.request(d.admin_port, "GET", "/api/v1/jobs?app=demo")
            for j in r.json()["jobs"]:
                if j["kind"] == "sync" and j.get("revision") == rev and \
                        j["state"] in ("dead", "succeeded"):
                    return j
            time.sleep(0.2)
        self.fail("no finished sync of %s\n%s" % (rev, d.log()[-4000:]))

    def test_hostile_tree_reads_and_writes_nothing_outside(self):
        rt = os.path.join(self.tmp, "rt")
        os.makedirs(rt)
        canary = "canary-" + uuid.uuid4().hex
        with open(os.path.join(self.tmp, "canary.yaml"), "w") as f:
            f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                    "  name: canary\ndata: {secret: %s}\n" % canary)
        before = sorted(os.listdir(self.tmp))
        cases = [
            (["120000 blob %(leak)s\tleak.yaml\n"], [],
             'deploy/leak.yaml: symlink refused: target '
             '\\"../../../canary.yaml\\" leaves deploy'),
            (["100644 blob %(ok)s\tleak.yaml\n"],
             ["040000 tree %(sub)s\t..\n"],
             '\\"..\\": tree entry name refused'),
            (["100644 blob %(ok)s\tleak.yaml\n",
              "040000 tree %(sub)s\t.git\n"], [],
             'deploy/\\".git\\": tree entry name refused'),
            (["100644 blob %(ok)s\tleak.yaml\n",
              "040000 tree %(sub)s\t.GIT\n"], [],
             'deploy/\\".GIT\\": tree entry name refused'),
            (["100644 blob %(ok)s\tleak.yaml\n",
              "100644 blob %(pwned)s\tx\\\\y.yaml\n"], [],
             'tree entry name refused'),
        ]
        text = HOSTILE_CONFIG % {"url": self.bare,
                                 "kubeconfig": self.sim.kubeconfig}
        d = harness.Daemon(text, secrets={"github.secret": SECRET},
                           env={"TMPDIR": rt})
        self.addCleanup(d.cleanup)
        d.start()
        for deploy_extra, root_extra, error in cases:
            rev = self.plumb(deploy_extra, root_extra)
            self.assertEqual(self.push_event(d, rev).status, 202)
            job = self.wait_job(d, rev)
            self.assertEqual((job["state"], job["attempts"]), ("dead", 1))
            self.assertIn(error, json.dumps(job))
            # Nothing outside: the render directory is gone, no file
            # beside it or the canary.  (Valgrind, when the suite runs
            # under it, keeps its own pipes in TMPDIR.)
            self.assertEqual([n for n in os.listdir(rt)
                              if not n.startswith("vgdb-pipe-")], [])
            self.assertEqual(sorted(os.listdir(self.tmp)), before)
        for name in ("canary", "pwned", "hostile-ok"):
            st, _ = self.sim.call(
                "GET", "/api/v1/namespaces/default/configmaps/" + name)
            self.assertEqual(st, 404, name)
        self.assertNotIn(canary, d.log())


if __name__ == "__main__":
    unittest.main()
