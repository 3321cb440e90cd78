"""deploy/kubernetes/*.yaml, its replicated overlay deploy/kubernetes-ha
and the Dockerfile.

Parses every manifest (python3-yaml) and checks what running gitopsd in a
cluster depends on: a non-root pod with a read-only root file system,
probes on the ports the configuration listens on, every *_file key of the
configuration inside the mounted Secret and naming one of its keys, state
on a volume, the ServiceAccount bound to a ClusterRole that can apply and
prune, and a Dockerfile whose runtime stage installs exactly the packages
of the libraries the binaries link.  When gitopsd is built, the ConfigMap's
configuration is checked with `gitopsd -t` against the Secret's files.

The overlay (three replicas on PostgreSQL) is rendered here from its JSON
patches, and compared with `kubectl kustomize` where kubectl is installed;
the same checks run on it, except those of a single writer, plus its own:
replicas rolled one at a time, a PodDisruptionBudget that lets a drain
proceed and keeps two, no volume claim, the DSN in the Secret, and a
configuration that differs from the base one in its state only.
"""
import glob
import json
import os
import posixpath
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

try:
    import yaml
except ImportError:  # python3-yaml (scripts/deps.sh)
    yaml = None

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KDIR = os.path.join(ROOT, "deploy", "kubernetes")
HADIR = os.path.join(ROOT, "deploy", "kubernetes-ha")
KUBESIM = os.path.join(ROOT, "test", "support", "kubesim.py")
BUILD = os.environ.get("GITOPSD_BUILD", "build-san")

WRITE_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


def load_all():
    """[(file, doc)] for every document of every manifest."""
    docs = []
    for path in sorted(glob.glob(os.path.join(KDIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((os.path.basename(path), doc))
    return docs


def pointer(doc, path):
    """(parent, key) of an RFC 6901 JSON pointer in doc."""
    parts = [p.replace("~1", "/").replace("~0", "~")
             for p in path.split("/")[1:]]
    node = doc
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = parts[-1]
    if isinstance(node, list):
        last = len(node) if last == "-" else int(last)
    return node, last


def json_patch(doc, ops):
    """Apply RFC 6902 operations (add, replace, remove, test) to doc."""
    for op in ops:
        parent, key = pointer(doc, op["path"])
        if op["op"] == "test":
            if parent[key] != op["value"]:
                raise AssertionError("test failed: %r" % op)
        elif op["op"] == "remove":
            del parent[key]
        elif op["op"] == "add" and isinstance(parent, list):
            parent.insert(key, op["value"])
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and not (
                    isinstance(parent, list) or key in parent):
                raise AssertionError("replace of a missing %s" % op["path"])
            parent[key] = op["value"]
        else:
            raise AssertionError("unsupported op %r" % op)


def render_ha():
    """[(file, doc)] of deploy/kubernetes-ha as kustomize builds it: the
    base's objects and the overlay's, with its patches applied."""
    with open(os.path.join(HADIR, "kustomization.yaml"),
              encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    docs = []
    for res in kust["resources"]:
        if res == "../kubernetes":
            docs += [(n, d) for n, d in load_all()
                     if d["kind"] != "Kustomization"]
        else:
            with open(os.path.join(HADIR, res), encoding="utf-8") as f:
                docs += [(res, d) for d in yaml.safe_load_all(f)
                         if d is not None]
    for p in kust.get("patches", []):
        if "path" in p:
            with open(os.path.join(HADIR, p["path"]), encoding="utf-8") as f:
                patch = yaml.safe_load(f)
        else:
            patch = yaml.safe_load(p["patch"])
        t = p["target"]
        hits = [i for i, (_, d) in enumerate(docs)
                if d["kind"] == t["kind"] and
                d["metadata"]["name"] == t["name"]]
        assert len(hits) == 1, t
        if isinstance(patch, dict) and patch.get("$patch") == "delete":
            del docs[hits[0]]
        else:
            json_patch(docs[hits[0]][1], patch)
    return docs


def file_keys(node, prefix=""):
    """Yield (keypath, value) of every key ending in _file."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = "%s.%s" % (prefix, k) if prefix else str(k)
            if str(k).endswith("_file") and isinstance(v, str):
                yield p, v
            yield from file_keys(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from file_keys(v, "%s[%d]" % (prefix, i))


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


@unittest.skipIf(yaml is None, "python3-yaml not installed")
class ManifestTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.docs = load_all()
        cls.by_kind = {}
        for name, d in cls.docs:
            cls.by_kind.setdefault(d["kind"], []).append(d)

    def one(self, kind, name=None):
        objs = [d for d in self.by_kind.get(kind, [])
                if name is None or d["metadata"]["name"] == name]
        self.assertEqual(len(objs), 1, "%s %s" % (kind, name))
        return objs[0]

    def deployment(self):
        return self.one("Deployment", "gitopsd")

    def container(self):
        c = self.deployment()["spec"]["template"]["spec"]["containers"]
        self.assertEqual(len(c), 1)
        return c[0]

    def config(self):
        cm = self.one("ConfigMap", "gitopsd-config")
        return yaml.safe_load(cm["data"]["gitopsd.yaml"])

    def mounts(self):
        """{mountPath: volume} of the gitopsd container."""
        vols = {v["name"]: v for v in
                self.deployment()["spec"]["template"]["spec"]["volumes"]}
        out = {}
        for m in self.container()["volumeMounts"]:
            self.assertIn(m["name"], vols, m["name"])
            out[m["mountPath"]] = (m, vols[m["name"]])
        return out

    def test_every_document_is_a_kubernetes_object(self):
        self.assertGreater(len(self.docs), 0)
        for name, d in self.docs:
            self.assertIsInstance(d, dict, name)
            for k in ("apiVersion", "kind"):
                self.assertIn(k, d, name)
            if d["kind"] != "Kustomization":
                self.assertIn("name", d.get("metadata", {}), name)

    def test_kustomization_lists_every_manifest(self):
        k = self.one("Kustomization")
        files = {os.path.basename(p) for p in
                 glob.glob(os.path.join(KDIR, "*.yaml"))}
        files.discard("kustomization.yaml")
        self.assertEqual(set(k["resources"]), files)

    def test_namespaced_objects_share_one_namespace(self):
        ns = self.one("Namespace")["metadata"]["name"]
        for name, d in self.docs:
            if d["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                             "Kustomization"):
                continue
            self.assertEqual(d["metadata"].get("namespace"), ns,
                             "%s %s" % (name, d["kind"]))

    def test_pod_security(self):
        spec = self.deployment()["spec"]["template"]["spec"]
        psc = spec["securityContext"]
        self.assertIs(psc["runAsNonRoot"], True)
        self.assertGreater(psc["runAsUser"], 0)
        self.assertGreater(psc["runAsGroup"], 0)
        self.assertEqual(psc["seccompProfile"]["type"], "RuntimeDefault")
        csc = self.container()["securityContext"]
        self.assertIs(csc["readOnlyRootFilesystem"], True)
        self.assertIs(csc["allowPrivilegeEscalation"], False)
        self.assertIs(csc["runAsNonRoot"], True)
        self.assertEqual(csc["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("add", csc["capabilities"])
        self.assertNotIn("privileged", csc)
        self.assertFalse(spec.get("hostNetwork", False))
        # The image's user and the pod's user are the same.
        with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
            users = re.findall(r"^USER\s+(\d+)(?::(\d+))?", f.read(), re.M)
        self.assertEqual(users, [(str(psc["runAsUser"]),
                                  str(psc["runAsGroup"]))])

    def test_single_writer(self):
        spec = self.deployment()["spec"]
        self.assertEqual(spec["replicas"], 1)
        self.assertEqual(spec["strategy"]["type"], "Recreate")
        # The drain must fit in the grace period.
        grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        self.assertGreater(grace, self.config().get("shutdown_timeout_s", 30))

    def test_probes_hit_the_configured_listeners(self):
        c = self.container()
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        cfg = self.config()

        def probe_port(probe):
            p = probe["httpGet"]["port"]
            return ports[p] if isinstance(p, str) else p

        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(probe_port(c["livenessProbe"]),
                         port_of(cfg["server"]["listen"]))
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(probe_port(c["readinessProbe"]),
                         port_of(cfg["admin"]["listen"]))
        # The kubelet probes the pod IP: both listeners must be pod-wide.
        for key in ("server", "admin"):
            self.assertIn(cfg[key]["listen"].rsplit(":", 1)[0],
                          ("0.0.0.0", "[::]"), key)
        # With the admin port reachable in the cluster, the API needs a token.
        self.assertIn("token_file", cfg["admin"])

    def test_resources(self):
        r = self.container()["resources"]
        for k in ("cpu", "memory"):
            self.assertIn(k, r["requests"])
        self.assertIn("memory", r["limits"])

    def test_config_and_args_agree(self):
        c = self.container()
        args = c["args"]
        cfg_path = args[args.index("-c") + 1]
        m = self.mounts()
        d = posixpath.dirname(cfg_path)
        self.assertIn(d, m)
        mount, vol = m[d]
        self.assertIs(mount.get("readOnly"), True)
        self.assertEqual(vol["configMap"]["name"], "gitopsd-config")
        self.assertIn(posixpath.basename(cfg_path),
                      self.one("ConfigMap", "gitopsd-config")["data"])

    def test_secret_files_are_mounted_where_the_config_points(self):
        cfg = self.config()
        secret = self.one("Secret", "gitopsd-secrets")
        keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
        secret_mounts = {p: (m, v) for p, (m, v) in self.mounts().items()
                         if "secret" in v}
        self.assertEqual(len(secret_mounts), 1)
        (path, (mount, vol)), = secret_mounts.items()
        self.assertEqual(vol["secret"]["secretName"], "gitopsd-secrets")
        self.assertIs(mount.get("readOnly"), True)
        # Readable by the group (fsGroup), nobody else.
        self.assertEqual(vol["secret"]["defaultMode"] & 0o007, 0)
        files = list(file_keys(cfg))
        self.assertGreater(len(files), 0)
        used = set()
        for keypath, f in files:
            self.assertEqual(posixpath.dirname(f), path, keypath)
            self.assertIn(posixpath.basename(f), keys, keypath)
            used.add(posixpath.basename(f))
        self.assertEqual(used, keys, "Secret keys no *_file key uses")

    def test_state_on_a_volume(self):
        cfg = self.config()
        m = self.mounts()
        for p in (posixpath.dirname(cfg["state"]["path"]), cfg["workdir"]):
            covering = [mp for mp in m if p == mp or p.startswith(mp + "/")]
            self.assertEqual(len(covering), 1, p)
            mount, vol = m[covering[0]]
            self.assertFalse(mount.get("readOnly", False), p)
            self.assertTrue("persistentVolumeClaim" in vol or
                            "emptyDir" in vol, p)
        claim = m[posixpath.dirname(cfg["state"]["path"])][1]
        name = claim["persistentVolumeClaim"]["claimName"]
        self.one("PersistentVolumeClaim", name)

    def test_in_cluster(self):
        clusters = self.config()["clusters"]
        self.assertEqual([c["kubeconfig"] for c in clusters], ["in-cluster"])
        spec = self.deployment()["spec"]["template"]["spec"]
        self.assertIsNot(spec.get("automountServiceAccountToken"), False)
        sa = self.one("ServiceAccount", spec["serviceAccountName"])
        self.assertIsNot(sa.get("automountServiceAccountToken"), False)

    def test_rbac_allows_apply_prune_and_discovery(self):
        spec = self.deployment()["spec"]["template"]["spec"]
        ns = self.deployment()["metadata"]["namespace"]
        binding = self.one("ClusterRoleBinding")
        self.assertIn({"kind": "ServiceAccount",
                       "name": spec["serviceAccountName"],
                       "namespace": ns}, binding["subjects"])
        self.assertEqual(binding["roleRef"]["kind"], "ClusterRole")
        role = self.one("ClusterRole", binding["roleRef"]["name"])

        def allowed(group, resource):
            verbs = set()
            for r in role["rules"]:
                if group in r.get("apiGroups", []) and \
                        resource in r.get("resources", []):
                    verbs |= set(r["verbs"])
            return verbs

        for group, resource in (("", "configmaps"), ("", "services"),
                                ("", "secrets"), ("", "namespaces"),
                                ("", "serviceaccounts"),
                                ("apps", "deployments"),
                                ("apps", "statefulsets"),
                                ("apps", "daemonsets"), ("batch", "jobs"),
                                ("batch", "cronjobs"),
                                ("networking.k8s.io", "ingresses")):
            self.assertEqual(allowed(group, resource), WRITE_VERBS,
                             "%s/%s" % (group, resource))
        # Health is read from pods and replica sets, never written.
        self.assertEqual(allowed("", "pods"), {"get", "list", "watch"})
        self.assertEqual(allowed("apps", "replicasets"),
                         {"get", "list", "watch"})
        urls = set()
        for r in role["rules"]:
            if "get" in r.get("verbs", []):
                urls |= set(r.get("nonResourceURLs", []))
        for u in ("/api", "/api/*", "/apis", "/apis/*"):
            self.assertIn(u, urls)
        # No wildcard grants.
        for r in role["rules"]:
            for k in ("apiGroups", "resources", "verbs"):
                self.assertNotIn("*", r.get(k, []), r)

    def test_services_target_named_ports(self):
        ports = {p["name"] for p in self.container()["ports"]}
        labels = self.deployment()["spec"]["template"]["metadata"]["labels"]
        svcs = self.by_kind["Service"]
        self.assertEqual(len(svcs), 2)
        for s in svcs:
            for k, v in s["spec"]["selector"].items():
                self.assertEqual(labels.get(k), v)
            for p in s["spec"]["ports"]:
                self.assertIn(p["targetPort"], ports)
            self.assertEqual(s["spec"].get("type", "ClusterIP"), "ClusterIP")


@unittest.skipIf(yaml is None, "python3-yaml not installed")
class HAManifestTest(ManifestTest):
    """deploy/kubernetes-ha: every check of the base that is not about a
    single writer, and those of several replicas on PostgreSQL."""

    @classmethod
    def setUpClass(cls):
        cls.docs = render_ha()
        cls.by_kind = {}
        for name, d in cls.docs:
            cls.by_kind.setdefault(d["kind"], []).append(d)

    def test_kustomization_lists_every_manifest(self):
        with open(os.path.join(HADIR, "kustomization.yaml"),
                  encoding="utf-8") as f:
            kust = yaml.safe_load(f)
        files = {os.path.basename(p) for p in
                 glob.glob(os.path.join(HADIR, "*.yaml"))}
        used = {p["path"] for p in kust["patches"] if "path" in p}
        self.assertEqual(set(kust["resources"]) - {"../kubernetes"},
                         files - used - {"kustomization.yaml"})
        self.assertTrue(used <= files)

    @unittest.skipUnless(shutil.which("kubectl"), "kubectl not installed")
    def test_kubectl_kustomize_agrees(self):
        p = subprocess.run(["kubectl", "kustomize", HADIR],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        built = [d for d in yaml.safe_load_all(p.stdout) if d is not None]

        def key(d):
            return (d["kind"], d["metadata"]["name"])

        self.assertEqual(sorted(built, key=key),
                         sorted((d for _, d in self.docs), key=key))

    # Several writers: test_replicas instead.
    test_single_writer = None

    def test_replicas(self):
        spec = self.deployment()["spec"]
        self.assertGreaterEqual(spec["replicas"], 3)
        # One pod at a time, the new one ready before an old one goes.
        self.assertEqual(spec["strategy"]["type"], "RollingUpdate")
        self.assertEqual(spec["strategy"]["rollingUpdate"]
                         ["maxUnavailable"], 0)
        grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        self.assertGreater(grace, self.config().get("shutdown_timeout_s", 30))
        labels = spec["template"]["metadata"]["labels"]
        spread = spec["template"]["spec"]["topologySpreadConstraints"]
        self.assertIn("kubernetes.io/hostname",
                      [c["topologyKey"] for c in spread])
        for c in spread:
            for k, v in c["labelSelector"]["matchLabels"].items():
                self.assertEqual(labels.get(k), v)

    def test_disruption_budget(self):
        spec = self.deployment()["spec"]
        labels = spec["template"]["metadata"]["labels"]
        pdb = self.one("PodDisruptionBudget", "gitopsd")
        self.assertEqual(pdb["apiVersion"], "policy/v1")
        for k, v in pdb["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        # A drain may take one replica (a budget of all of them blocks
        # every node drain) and never the second.
        self.assertEqual(pdb["spec"]["minAvailable"], spec["replicas"] - 1)
        self.assertGreaterEqual(pdb["spec"]["minAvailable"], 2)

    def test_state_on_a_volume(self):
        """No volume claim: the state is in PostgreSQL, the clones in an
        emptyDir of each pod's own."""
        self.assertNotIn("PersistentVolumeClaim", self.by_kind)
        m = self.mounts()
        wd = self.config()["workdir"]
        covering = [mp for mp in m if wd == mp or wd.startswith(mp + "/")]
        self.assertEqual(len(covering), 1)
        mount, vol = m[covering[0]]
        self.assertFalse(mount.get("readOnly", False))
        self.assertIn("emptyDir", vol)
        for _, v in m.values():
            self.assertNotIn("persistentVolumeClaim", v)

    def test_state_in_postgres(self):
        state = self.config()["state"]
        self.assertEqual(state["driver"], "postgres")
        self.assertNotIn("path", state)
        secret = self.one("Secret", "gitopsd-secrets")
        self.assertIn(posixpath.basename(state["dsn_file"]),
                      secret["stringData"])

    def test_config_is_the_base_one_but_the_state(self):
        with open(os.path.join(KDIR, "configmap.yaml"),
                  encoding="utf-8") as f:
            base = yaml.safe_load(yaml.safe_load(f)["data"]["gitopsd.yaml"])
        ha = self.config()
        base.pop("state")
        ha.pop("state")
        self.assertEqual(ha, base)


class DockerfileTest(unittest.TestCase):

    def setUp(self):
        with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
            self.text = f.read()
        # Join continuation lines.
        self.lines = re.sub(r"\\\n", " ", self.text).splitlines()
        self.stages = []
        for line in self.lines:
            line = line.strip()
            if line.startswith("FROM "):
                self.stages.append([line])
            elif self.stages and line and not line.startswith("#"):
                self.stages[-1].append(line)

    def runtime_packages(self):
        pkgs = set()
        for line in self.stages[-1]:
            m = re.search(r"apt-get install (.*?)(&&|$)", line)
            if m:
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
        return pkgs

    def test_multi_stage_slim_non_root(self):
        self.assertGreaterEqual(len(self.stages), 2)
        self.assertRegex(self.stages[0][0], r"^FROM debian:12\S* AS \w+")
        self.assertEqual(self.stages[-1][0], "FROM debian:12-slim")
        final = self.stages[-1]
        users = [l for l in final if l.startswith("USER ")]
        self.assertEqual(len(users), 1)
        self.assertNotIn(users[0].split()[1].split(":")[0], ("0", "root"))
        self.assertTrue(any(l.startswith("COPY --from=") for l in final))
        # Nothing compiles in the runtime stage.
        self.assertFalse({"gcc", "make"} & self.runtime_packages())
        entry = [l for l in final if l.startswith("ENTRYPOINT")]
        self.assertEqual(len(entry), 1)
        self.assertIn("/usr/local/bin/gitopsd", entry[0])
        expose = [l for l in final if l.startswith("EXPOSE")]
        self.assertEqual(expose, ["EXPOSE 8080 9090"])

    def test_build_stage_copies_what_make_needs(self):
        # Every directory whose sources the Makefile compiles or installs.
        copied = set()
        for line in self.stages[0]:
            if line.startswith("COPY "):
                copied |= {w.rstrip("/") for w in line.split()[1:-1]}
        for d in ("Makefile", "VERSION", "include", "daemon", "handlers",
                  "notify", "tools", "systemd", "man", "config"):
            self.assertIn(d, copied)

    def linked_packages(self, binary):
        """Debian packages of the libraries binary links directly."""
        out = subprocess.run(["readelf", "-d", binary], capture_output=True,
                             text=True, check=True).stdout
        needed = re.findall(r"Shared library: \[(.+?)\]", out)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True,
                             check=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        pkgs = set()
        for lib in needed:
            if re.match(r"lib(asan|ubsan)\.", lib):
                continue
            self.assertIn(lib, paths, lib)
            real = os.path.realpath(paths[lib])
            cands = [real, re.sub(r"^/usr", "", real),
                     "/usr" + real if not real.startswith("/usr") else real]
            for c in cands:
                p = subprocess.run(["dpkg", "-S", c], capture_output=True,
                                   text=True)
                if p.returncode == 0:
                    pkgs.add(p.stdout.split(":")[0])
                    break
            else:
                self.fail("no package owns %s" % real)
        return pkgs

    @unittest.skipUnless(shutil.which("dpkg") and shutil.which("readelf"),
                         "needs dpkg and readelf")
    def test_runtime_packages_match_linked_libraries(self):
        bins = []
        for b in ("build", BUILD):
            for name in ("gitopsd", "gitopsctl"):
                p = os.path.join(ROOT, b, name)
                if os.access(p, os.X_OK) and name not in [n for n, _ in bins]:
                    bins.append((name, p))
        if not bins:
            self.skipTest("nothing built")
        have = self.runtime_packages()
        base = {"libc6", "libgcc-s1"}    # in debian:12-slim already
        for name, path in bins:
            for pkg in self.linked_packages(path) - base:
                self.assertIn(pkg, have, "%s links a library of %s" %
                              (name, pkg))


@unittest.skipIf(yaml is None, "python3-yaml not installed")
class ConfigCheckTest(unittest.TestCase):
    """The ConfigMap's configuration passes `gitopsd -t`, in the base and
    in the overlay."""

    def check(self, docs):
        gitopsd = os.path.join(ROOT, BUILD, "gitopsd")
        if not os.access(gitopsd, os.X_OK):
            self.skipTest("%s is not built" % gitopsd)
        cm = [d for _, d in docs if d["kind"] == "ConfigMap"][0]
        secret = [d for _, d in docs if d["kind"] == "Secret"][0]
        text = cm["data"]["gitopsd.yaml"]
        with tempfile.TemporaryDirectory() as d:
            sdir = os.path.join(d, "secrets")
            os.mkdir(sdir)
            for k, v in secret["stringData"].items():
                with open(os.path.join(sdir, k), "w") as f:
                    f.write(v + "\n")
            text = text.replace("/etc/gitopsd/secrets", sdir)
            text = text.replace("/var/lib/gitopsd", os.path.join(d, "state"))
            path = os.path.join(d, "gitopsd.yaml")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([gitopsd, "-t", "-c", path],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_gitopsd_accepts_the_configmap(self):
        self.check(load_all())

    def test_gitopsd_accepts_the_ha_configmap(self):
        self.check(render_ha())


# (apiVersion, kind) -> (API path prefix, plural, namespaced)
RESOURCES = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "PersistentVolumeClaim"): ("/api/v1", "persistentvolumeclaims",
                                      True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"):
        ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


@unittest.skipIf(yaml is None, "python3-yaml not installed")
@unittest.skipUnless(os.path.exists(KUBESIM),
                     "test/support/kubesim.py (the API simulator) not present")
class KubesimApplyTest(unittest.TestCase):
    """Server-side apply of every manifest to the Kubernetes API simulator,
    in kustomization order, then the Deployment must become available."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gitopsd-kubesim-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.token = "ops-test-token"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", KUBESIM, "--port", "0", "--dir", self.tmp,
             "--token", self.token, "--ready-delay", "0.2",
             "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop)
        line = self.proc.stdout.readline()
        self.assertTrue(line.strip().isdigit(), line)
        self.base = "https://127.0.0.1:%d" % int(line)
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(self.tmp, "ca.crt"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()

    def call(self, method, path, body=None, ctype=None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=body)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def path_of(self, obj):
        prefix, plural, namespaced = RESOURCES[(obj["apiVersion"],
                                                obj["kind"])]
        name = obj["metadata"]["name"]
        if namespaced:
            return "%s/namespaces/%s/%s/%s" % (
                prefix, obj["metadata"]["namespace"], plural, name)
        return "%s/%s/%s" % (prefix, plural, name)

    def test_apply_all(self):
        with open(os.path.join(KDIR, "kustomization.yaml")) as f:
            order = yaml.safe_load(f)["resources"]
        applied = []
        for fname in order:
            with open(os.path.join(KDIR, fname)) as f:
                for obj in yaml.safe_load_all(f):
                    if obj is None:
                        continue
                    path = self.path_of(obj)
                    st, body = self.call(
                        "PATCH", path + "?fieldManager=gitopsd-install",
                        json.dumps(obj).encode(),
                        "application/apply-patch+yaml")
                    self.assertIn(st, (200, 201), "%s: %s" % (path, body))
                    applied.append((path, obj))
        self.assertEqual(len(applied), 10)
        for path, obj in applied:
            st, live = self.call("GET", path)
            self.assertEqual(st, 200, path)
            self.assertEqual(live["metadata"]["labels"],
                             obj["metadata"].get("labels"), path)
        # The Deployment rolls out (the simulator's workload status).
        dep = [p for p, o in applied if o["kind"] == "Deployment"][0]
        deadline = time.time() + 30
        while time.time() < deadline:
            st, live = self.call("GET", dep)
            conds = {c["type"]: c["status"] for c in
                     live.get("status", {}).get("conditions", [])}
            if conds.get("Available") == "True":
                break
            time.sleep(0.1)
        self.assertEqual(conds.get("Available"), "True", live.get("status"))
        self.assertEqual(live["status"]["readyReplicas"], 1)


if __name__ == "__main__":
    unittest.main()
