#!/usr/bin/python3
"""kubesim: a Kubernetes API server simulator for gitopsd's tests and demo.

Standard library only.  It speaks the parts of the Kubernetes REST API that
gitopsd uses, with the real shapes:

  * HTTPS with a CA and server certificate generated at start (openssl CLI),
    bearer-token authentication (401 Status otherwise); optionally client
    certificates signed by the same CA (the kubeconfig's client-certificate).
  * discovery: /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>
    (APIVersions, APIGroupList, APIGroup, APIResourceList).  Applying a
    CustomResourceDefinition serves its kind under its group/versions.
  * server-side apply: PATCH with Content-Type application/apply-patch+yaml,
    fieldManager required, create-or-update; metadata.generation is bumped
    only when something outside metadata/status changes, resourceVersion on
    every change (a no-op apply changes nothing).  One simplification: the
    applied configuration replaces the object's content (fields owned by
    other managers are not merged), which is what a single manager sees.
    JSON merge patches (application/merge-patch+json) are also accepted.
  * get, list (labelSelector: =, ==, !=, in, notin, exists, !exists), create
    (POST), delete (propagationPolicy Orphan/Background/Foreground, in the
    query or a DeleteOptions body; preconditions.uid: 409 Conflict when the
    object's differs; objects whose ownerReferences name the deleted uid
    go too unless Orphan;
    deleting a Namespace deletes what is in it at once: there is no
    Terminating phase and no finalizers).
  * a namespaced object in a missing namespace: 404 NotFound, as the API.
  * validation that the API does too: names (DNS-1123), a Deployment's
    selector must match its template labels (422 Invalid).
  * workload status: Deployments, StatefulSets, DaemonSets and Jobs become
    ready --ready-delay seconds after their spec changed, unless an image
    tag contains "never-ready" (Deployment: Progressing=False
    ProgressDeadlineExceeded; Job: Failed BackoffLimitExceeded) or "slow"
    (never ready, still progressing).
  * test-only endpoints (no authentication, loopback only):
      POST   /_sim/faults   {"method": "PATCH", "path": "<regex>",
                             "status": 503 | "drop": true, "count": N,
                             "message": "...", "retry_after": S}
                                        inject failures
      DELETE /_sim/faults   clear them
      GET    /_sim/requests the request log [{method, path, query}]
      DELETE /_sim/requests clear it
      POST   /_sim/config   {"ready_delay": seconds}

Usage: kubesim.py --port 0 --dir DIR [--token T] [--ready-delay S]
                  [--exit-on-stdin-eof]
Prints the port on the first line of stdout, then serves until SIGTERM.
DIR receives ca.crt, server.crt/key, client.crt/key, token and kubeconfig.
"""

import argparse
import base64
import copy
import datetime
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (group, version, kind, plural, namespaced)
BUILTIN = [
    ("", "v1", "Namespace", "namespaces", False),
    ("", "v1", "Node", "nodes", False),
    ("", "v1", "PersistentVolume", "persistentvolumes", False),
    ("", "v1", "ConfigMap", "configmaps", True),
    ("", "v1", "Secret", "secrets", True),
    ("", "v1", "Service", "services", True),
    ("", "v1", "ServiceAccount", "serviceaccounts", True),
    ("", "v1", "Pod", "pods", True),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    ("", "v1", "Endpoints", "endpoints", True),
    ("", "v1", "Event", "events", True),
    ("apps", "v1", "Deployment", "deployments", True),
    ("apps", "v1", "StatefulSet", "statefulsets", True),
    ("apps", "v1", "DaemonSet", "daemonsets", True),
    ("apps", "v1", "ReplicaSet", "replicasets", True),
    ("batch", "v1", "Job", "jobs", True),
    ("batch", "v1", "CronJob", "cronjobs", True),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding",
     "clusterrolebindings", False),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
     "customresourcedefinitions", False),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", True),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True),
    ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
]

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch",
         "update", "watch"]
WORKLOADS = {("apps", "Deployment"), ("apps", "StatefulSet"),
             ("apps", "DaemonSet"), ("batch", "Job")}
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_BODY = 3 * 1024 * 1024


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class APIError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {},
         "status": "Failure" if code >= 400 else "Success",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class Resource:
    def __init__(self, group, version, kind, plural, namespaced):
        self.group, self.version, self.kind = group, version, kind
        self.plural, self.namespaced = plural, namespaced

    @property
    def gv(self):
        return self.version if not self.group else self.group + "/" + \
            self.version

    def gk(self):
        return "%s.%s" % (self.kind, self.group) if self.group else self.kind

    def gr(self):
        return "%s.%s" % (self.plural, self.group) if self.group else \
            self.plural


# ---- label selectors -------------------------------------------------------

def split_selector(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


SET_RE = re.compile(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)$")
OP_RE = re.compile(r"^([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)$")
KEY_RE = re.compile(r"^(!?)\s*([A-Za-z0-9./_-]+)$")


def parse_selector(s):
    """Returns a predicate over a labels dict; raises APIError(400)."""
    reqs = []
    for part in split_selector(s or ""):
        m = SET_RE.match(part)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = OP_RE.match(part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, m.group(3)))
            continue
        m = KEY_RE.match(part)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists",
                         None))
            continue
        raise APIError(400, "BadRequest",
                       "unable to parse requirement: %r" % part)

    def match(labels):
        for key, op, val in reqs:
            have = key in labels
            v = labels.get(key)
            if op == "=" and v != val:
                return False
            if op == "!=" and have and v == val:
                return False
            if op == "in" and (not have or v not in val):
                return False
            if op == "notin" and have and v in val:
                return False
            if op == "exists" and not have:
                return False
            if op == "!exists" and have:
                return False
        return True
    # What an index can answer (ObjectIndex.candidates).
    match.equals = [(k, v) for k, op, v in reqs if op == "="]
    return match


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def content(obj):
    """What generation tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def images_of(obj):
    spec = obj.get("spec") or {}
    tmpl = ((spec.get("template") or {}).get("spec")) or {}
    out = []
    for key in ("containers", "initContainers"):
        for c in tmpl.get(key) or []:
            if isinstance(c, dict) and isinstance(c.get("image"), str):
                out.append(c["image"])
    return out


def image_tag(image):
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


class ObjectIndex(dict):
    """Objects by (group, plural, ns, name), indexed so that a get, a list
    of one kind (in one namespace, or by an equality label) and the
    cascades of a delete cost what they touch, not what is stored: a
    fan-out benchmark of thousands of apps must measure gitopsd, not us.
    Objects are replaced, never edited in place, when their labels,
    namespace or owners change (status is edited in place)."""

    def __init__(self):
        super().__init__()
        self.by_kind = {}      # (group, plural) -> {key: None}
        self.by_kind_ns = {}   # (group, plural, ns) -> {key: None}
        self.by_label = {}     # (group, plural, label, value) -> {key: None}
        self.by_ns = {}        # ns -> {key: None}
        self.by_owner = {}     # owner uid -> {key: None}
        self.terms = {}        # key -> the index entries it is in

    @staticmethod
    def _add(idx, k, key):
        idx.setdefault(k, {})[key] = None

    @staticmethod
    def _drop(idx, k, key):
        d = idx.get(k)
        if d is not None:
            d.pop(key, None)
            if not d:
                del idx[k]

    def _unindex(self, key):
        for idx, k in self.terms.pop(key, ()):
            self._drop(idx, k, key)

    def __setitem__(self, key, obj):
        self._unindex(key)
        super().__setitem__(key, obj)
        g, p, ns, _ = key
        md = obj.get("metadata") or {}
        terms = [(self.by_kind, (g, p)), (self.by_kind_ns, (g, p, ns)),
                 (self.by_ns, ns)]
        for lk, lv in (md.get("labels") or {}).items():
            terms.append((self.by_label, (g, p, lk, lv)))
        for ref in md.get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("uid"):
                terms.append((self.by_owner, ref["uid"]))
        for idx, k in terms:
            self._add(idx, k, key)
        self.terms[key] = terms

    def __delitem__(self, key):
        super().__delitem__(key)
        self._unindex(key)

    def pop(self, key, *default):
        if key in self:
            obj = super().pop(key)
            self._unindex(key)
            return obj
        return default[0] if default else super().pop(key)

    def candidates(self, group, plural, ns, equals):
        """Keys that may match: the smallest index that covers them."""
        sets = [self.by_label.get((group, plural, k, v), {})
                for k, v in equals]
        sets.append(self.by_kind_ns.get((group, plural, ns), {}) if ns
                    else self.by_kind.get((group, plural), {}))
        return list(min(sets, key=len))

    def in_namespace(self, ns):
        return list(self.by_ns.get(ns, {}))

    def owned_by(self, uid):
        return list(self.by_owner.get(uid, {}))


class Cluster:
    def __init__(self, ready_delay):
        self.lock = threading.RLock()
        self.resources = [Resource(*r) for r in BUILTIN]
        self.objects = ObjectIndex()  # (group, plural, ns, name) -> obj
        self.changed_at = {}       # key -> monotonic time of spec change
        self.settling = set()      # workloads whose status may change
        self.rv = 1000
        self.ready_delay = ready_delay
        self.faults = []
        self.requests = []
        for ns in ("default", "kube-system", "kube-public"):
            self._store(self.find("", "v1", "namespaces"),
                        {"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns}, "spec": {},
                         "status": {"phase": "Active"}}, "")

    # -- registry
    def find(self, group, version, plural):
        for r in self.resources:
            if r.group == group and r.version == version and \
                    r.plural == plural:
                return r
        return None

    def groups(self):
        seen = []
        for r in self.resources:
            if r.group and r.group not in [g for g, _ in seen]:
                seen.append((r.group, []))
            for g, vs in seen:
                if g == r.group and r.version not in vs:
                    vs.append(r.version)
        return seen

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _store(self, res, obj, ns):
        md = obj.setdefault("metadata", {})
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", now_rfc3339())
        md["generation"] = md.get("generation", 1)
        md["resourceVersion"] = self.next_rv()
        if res.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        key = (res.group, res.plural, ns if res.namespaced else "",
               md["name"])
        self.objects[key] = obj
        return key

    # -- CRDs serve their kinds
    def register_crd(self, crd):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural, kind = spec.get("group"), names.get("plural"), \
            names.get("kind")
        if not (group and plural and kind):
            raise APIError(422, "Invalid",
                           "CustomResourceDefinition.apiextensions.k8s.io "
                           "%r is invalid: spec.group, spec.names.plural "
                           "and spec.names.kind are required"
                           % crd["metadata"]["name"])
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        for v in spec.get("versions") or []:
            if v.get("served", True) and v.get("name") and \
                    not self.find(group, v["name"], plural):
                self.resources.append(Resource(group, v["name"], kind,
                                               plural, namespaced))

    # -- workload status
    def compute_status(self, res, key, obj):
        elapsed = time.monotonic() - self.changed_at.get(key, 0)
        images = images_of(obj)
        never = any("never-ready" in image_tag(i) for i in images)
        slow = any("slow" in image_tag(i) for i in images)
        ready = elapsed >= self.ready_delay and not never and not slow
        failed = elapsed >= self.ready_delay and never
        spec = obj.get("spec") or {}
        gen = obj["metadata"].get("generation", 1)
        kind = res.kind
        if kind == "Deployment":
            n = spec.get("replicas", 1)
            st = {"observedGeneration": gen, "replicas": n,
                  "updatedReplicas": n,
                  "readyReplicas": n if ready else 0,
                  "availableReplicas": n if ready else 0}
            if not ready:
                st["unavailableReplicas"] = n
            if failed:
                prog = {"type": "Progressing", "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "%s" has timed out progressing.'
                        % obj["metadata"]["name"]}
            elif ready:
                prog = {"type": "Progressing", "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "message": 'ReplicaSet "%s" has successfully '
                        'progressed.' % obj["metadata"]["name"]}
            else:
                prog = {"type": "Progressing", "status": "True",
                        "reason": "ReplicaSetUpdated",
                        "message": 'ReplicaSet "%s" is progressing.'
                        % obj["metadata"]["name"]}
            avail = {"type": "Available",
                     "status": "True" if ready else "False",
                     "reason": "MinimumReplicasAvailable" if ready else
                     "MinimumReplicasUnavailable",
                     "message": "Deployment has minimum availability." if
                     ready else "Deployment does not have minimum "
                     "availability."}
            st["conditions"] = [avail, prog]
            return st
        if kind == "StatefulSet":
            n = spec.get("replicas", 1)
            rev = "%s-%d" % (obj["metadata"]["name"], gen)
            return {"observedGeneration": gen, "replicas": n,
                    "readyReplicas": n if ready else 0,
                    "availableReplicas": n if ready else 0,
                    "currentReplicas": n if ready else 0,
                    "updatedReplicas": n if ready else 0,
                    "currentRevision": rev if ready else
                    "%s-%d" % (obj["metadata"]["name"], gen - 1),
                    "updateRevision": rev}
        if kind == "DaemonSet":
            n = 1  # one node
            return {"observedGeneration": gen, "desiredNumberScheduled": n,
                    "currentNumberScheduled": n, "numberMisscheduled": 0,
                    "numberReady": n if ready else 0,
                    "updatedNumberScheduled": n if ready else 0,
                    "numberAvailable": n if ready else 0,
                    **({} if ready else {"numberUnavailable": n})}
        if kind == "Job":
            comp = spec.get("completions", 1)
            if failed:
                return {"failed": spec.get("backoffLimit", 6) + 1,
                        "conditions": [{"type": "Failed", "status": "True",
                                        "reason": "BackoffLimitExceeded",
                                        "message": "Job has reached the "
                                        "specified backoff limit"}]}
            if ready:
                return {"succeeded": comp, "conditions": [
                    {"type": "Complete", "status": "True"}]}
            return {"active": 1}
        return None

    def changed(self, key):
        self.changed_at[key] = time.monotonic()
        self.settling.add(key)

    def unsettle_all(self):
        # A new ready_delay: every workload's status is worked out again.
        for g, k in WORKLOADS:
            for r in self.resources:
                if r.group == g and r.kind == k:
                    self.settling.update(
                        self.objects.by_kind.get((g, r.plural), {}))

    def tick(self):
        # Only workloads changed less than ready_delay ago can change
        # status: the others are not looked at (no scan of every object).
        with self.lock:
            for key in list(self.settling):
                obj = self.objects.get(key)
                res = self.by_plural(key[0], key[1])
                if obj is None or res is None or \
                        (res.group, res.kind) not in WORKLOADS:
                    self.settling.discard(key)
                    continue
                settled = time.monotonic() - self.changed_at.get(key, 0) \
                    >= self.ready_delay
                st = self.compute_status(res, key, obj)
                if st is not None and st != obj.get("status"):
                    obj["status"] = st
                    obj["metadata"]["resourceVersion"] = self.next_rv()
                if settled:
                    self.settling.discard(key)

    def by_plural(self, group, plural):
        for r in self.resources:
            if r.group == group and r.plural == plural:
                return r
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kubesim: " + (fmt % args) + "\n")

    # -- plumbing
    def setup(self):
        super().setup()
        # Headers and body leave in one segment; no Nagle/delayed-ACK stall.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        self.flush_headers()

    def send_status(self, e):
        extra = {}
        if getattr(e, "retry_after", None):
            extra["Retry-After"] = e.retry_after
        self.send_json(e.code, status_obj(e.code, e.reason, e.message,
                                          e.details), extra)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise APIError(413, "RequestEntityTooLarge",
                           "the request is too large")
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        q = {k: v[-1] for k, v in query.items()}
        cl = self.server.cluster
        try:
            body = self.read_body()
            if url.path.startswith("/_sim/"):
                return self.sim(method, url.path, body)
            with cl.lock:
                cl.requests.append({"method": method, "path": url.path,
                                    "query": q,
                                    "content_type":
                                    self.headers.get("Content-Type")})
                fault = self.match_fault(method, url.path)
            if fault is not None:
                if fault.get("drop"):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                code = int(fault.get("status", 503))
                reasons = {409: "Conflict", 422: "Invalid", 429:
                           "TooManyRequests", 500: "InternalError",
                           503: "ServiceUnavailable", 403: "Forbidden"}
                err = APIError(code, reasons.get(code, "Unknown"),
                               fault.get("message") or
                               "injected failure (%d)" % code)
                if fault.get("retry_after"):
                    err.retry_after = str(int(fault["retry_after"]))
                raise err
            self.authenticate()
            self.route(method, url.path, q, body)
        except APIError as e:
            self.send_status(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def match_fault(self, method, path):
        for f in self.server.cluster.faults:
            if f.get("method") and f["method"] != method:
                continue
            if f.get("path") and not re.search(f["path"], path):
                continue
            if f.get("count") is not None:
                if f["count"] <= 0:
                    continue
                f["count"] -= 1
            return f
        return None

    def authenticate(self):
        auth = self.headers.get("Authorization") or ""
        if auth == "Bearer " + self.server.token:
            return
        if not auth and self.server.client_cert_ok(self.connection):
            return
        raise APIError(401, "Unauthorized", "Unauthorized")

    def sim(self, method, path, body):
        cl = self.server.cluster
        with cl.lock:
            if path == "/_sim/faults" and method == "POST":
                cl.faults.append(json.loads(body or b"{}"))
                return self.send_json(200, {"faults": cl.faults})
            if path == "/_sim/faults" and method == "DELETE":
                cl.faults.clear()
                return self.send_json(200, {"faults": []})
            if path == "/_sim/requests" and method == "GET":
                return self.send_json(200, {"requests": cl.requests})
            if path == "/_sim/requests" and method == "DELETE":
                cl.requests.clear()
                return self.send_json(200, {"requests": []})
            if path == "/_sim/config" and method == "POST":
                cfg = json.loads(body or b"{}")
                if "ready_delay" in cfg:
                    cl.ready_delay = float(cfg["ready_delay"])
                    cl.unsettle_all()
                return self.send_json(200, {"ready_delay": cl.ready_delay})
        raise APIError(404, "NotFound", "no such simulator endpoint")

    # -- the API
    def route(self, method, path, q, body):
        cl = self.server.cluster
        segs = [s for s in path.split("/") if s]
        with cl.lock:
            if method == "GET" and segs == ["api"]:
                return self.send_json(200, {
                    "kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{
                        "clientCIDR": "0.0.0.0/0",
                        "serverAddress": "127.0.0.1:%d" %
                        self.server.server_address[1]}]})
            if method == "GET" and segs == ["apis"]:
                return self.send_json(200, {
                    "kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [self.group_obj(g, vs)
                               for g, vs in cl.groups()]})
            if method == "GET" and len(segs) == 2 and segs[0] == "apis":
                for g, vs in cl.groups():
                    if g == segs[1]:
                        return self.send_json(200, dict(
                            self.group_obj(g, vs), kind="APIGroup",
                            apiVersion="v1"))
                raise APIError(404, "NotFound",
                               "the server could not find the requested "
                               "resource")
            if segs[:2] == ["api", "v1"]:
                group, version, rest = "", "v1", segs[2:]
            elif len(segs) >= 3 and segs[0] == "apis":
                group, version, rest = segs[1], segs[2], segs[3:]
            else:
                raise APIError(404, "NotFound", "the server could not find "
                               "the requested resource")
            if not rest:
                return self.resource_list(method, group, version)
            ns = ""
            if rest[0] == "namespaces" and len(rest) >= 3:
                ns, rest = rest[1], rest[2:]
            res = cl.find(group, version, rest[0])
            if res is None or (ns and not res.namespaced):
                raise APIError(404, "NotFound", "the server could not find "
                               "the requested resource")
            name = rest[1] if len(rest) > 1 else None
            if len(rest) > 2:
                raise APIError(404, "NotFound", "the server could not find "
                               "the requested resource")
            if name is None:
                if method == "GET":
                    return self.list(res, ns, q)
                if method == "POST":
                    return self.create(res, ns, q, body)
                raise APIError(405, "MethodNotAllowed",
                               "the server does not allow this method on "
                               "the requested resource")
            if method == "GET":
                return self.send_json(200, self.get(res, ns, name))
            if method == "PATCH":
                return self.patch(res, ns, name, q, body)
            if method == "DELETE":
                return self.delete(res, ns, name, q, body)
            raise APIError(405, "MethodNotAllowed", "the server does not "
                           "allow this method on the requested resource")

    def group_obj(self, g, vs):
        gvs = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs]
        return {"name": g, "versions": gvs, "preferredVersion": gvs[0]}

    def resource_list(self, method, group, version):
        cl = self.server.cluster
        rs = [r for r in cl.resources if r.group == group and
              r.version == version]
        if method != "GET" or not rs:
            raise APIError(404, "NotFound", "the server could not find the "
                           "requested resource")
        out = []
        for r in rs:
            out.append({"name": r.plural, "singularName": r.kind.lower(),
                        "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": VERBS})
            if (r.group, r.kind) in WORKLOADS or r.kind == "Namespace":
                out.append({"name": r.plural + "/status", "singularName": "",
                            "namespaced": r.namespaced, "kind": r.kind,
                            "verbs": ["get", "patch", "update"]})
        return self.send_json(200, {"kind": "APIResourceList",
                                    "apiVersion": "v1",
                                    "groupVersion": rs[0].gv,
                                    "resources": out})

    def key(self, res, ns, name):
        return (res.group, res.plural, ns if res.namespaced else "", name)

    def not_found(self, res, name):
        return APIError(404, "NotFound", '%s "%s" not found' %
                        (res.gr(), name),
                        {"name": name, "group": res.group,
                         "kind": res.plural})

    def check_namespace(self, res, ns):
        cl = self.server.cluster
        if not res.namespaced:
            return
        if ("", "namespaces", "", ns) not in cl.objects:
            raise APIError(404, "NotFound", 'namespaces "%s" not found' % ns,
                           {"name": ns, "kind": "namespaces"})

    def get(self, res, ns, name):
        obj = self.server.cluster.objects.get(self.key(res, ns, name))
        if obj is None:
            raise self.not_found(res, name)
        return obj

    def list(self, res, ns, q):
        cl = self.server.cluster
        match = parse_selector(q.get("labelSelector"))
        items = []
        for key in sorted(cl.objects.candidates(res.group, res.plural, ns,
                                                match.equals)):
            g, p, ons, _ = key
            obj = cl.objects[key]
            if g != res.group or p != res.plural:
                continue
            if ns and ons != ns:
                continue
            if not match(obj["metadata"].get("labels") or {}):
                continue
            item = copy.deepcopy(obj)
            if not self.is_custom(res):
                # Typed lists from the API carry no per-item kind.
                item.pop("kind", None)
                item.pop("apiVersion", None)
            items.append(item)
        return self.send_json(200, {"kind": res.kind + "List",
                                    "apiVersion": res.gv,
                                    "metadata": {"resourceVersion":
                                                 str(cl.rv)},
                                    "items": items})

    def is_custom(self, res):
        return all(not (res.group == b[0] and res.plural == b[3])
                   for b in BUILTIN)

    def validate(self, res, ns, name, obj, url_name):
        if not isinstance(obj, dict):
            raise APIError(400, "BadRequest", "the body must be an object")
        if obj.get("apiVersion") != res.gv or obj.get("kind") != res.kind:
            raise APIError(400, "BadRequest",
                           "the API version in the data (%s) does not match "
                           "the expected API version (%s)" %
                           (obj.get("apiVersion"), res.gv)
                           if obj.get("apiVersion") != res.gv else
                           "the kind in the data (%s) does not match the "
                           "expected kind (%s)" % (obj.get("kind"),
                                                   res.kind))
        md = obj.get("metadata")
        if not isinstance(md, dict):
            raise APIError(400, "BadRequest", "metadata is required")
        if url_name is not None and md.get("name") != url_name:
            raise APIError(400, "BadRequest", "the name of the object (%s) "
                           "does not match the name on the URL (%s)" %
                           (md.get("name"), url_name))
        if res.namespaced and md.get("namespace") not in (None, "", ns):
            raise APIError(400, "BadRequest", "the namespace of the provided "
                           "object does not match the namespace sent on the "
                           "request")
        nm = md.get("name") or ""
        what = '%s "%s" is invalid: ' % (res.gk(), nm)
        if not nm or len(nm) > 253 or not NAME_RE.match(nm):
            raise APIError(422, "Invalid", what + "metadata.name: Invalid "
                           "value: %r: a lowercase RFC 1123 subdomain must "
                           "consist of lower case alphanumeric characters, "
                           "'-' or '.'" % nm,
                           {"name": nm, "group": res.group,
                            "kind": res.kind})
        for k in ("labels", "annotations"):
            v = md.get(k)
            if v is not None and (not isinstance(v, dict) or not all(
                    isinstance(x, str) for x in v.values())):
                raise APIError(400, "BadRequest", "metadata.%s: values must "
                               "be strings" % k)
        if res.kind in ("Deployment", "StatefulSet", "DaemonSet") and \
                res.group == "apps":
            spec = obj.get("spec") or {}
            sel = (spec.get("selector") or {}).get("matchLabels")
            tl = (((spec.get("template") or {}).get("metadata")) or {}) \
                .get("labels") or {}
            details = {"name": nm, "group": res.group, "kind": res.kind}
            if not sel:
                raise APIError(422, "Invalid", what + "spec.selector: "
                               "Required value", details)
            if any(tl.get(k) != v for k, v in sel.items()):
                raise APIError(422, "Invalid", what + "spec.template.metadata"
                               ".labels: Invalid value: %s: `selector` does "
                               "not match template `labels`" %
                               json.dumps(tl), details)
            if not images_of(obj):
                raise APIError(422, "Invalid", what + "spec.template.spec."
                               "containers: Required value", details)

    def patch(self, res, ns, name, q, body):
        cl = self.server.cluster
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        key = self.key(res, ns, name)
        old = cl.objects.get(key)
        if ctype == "application/apply-patch+yaml":
            if not q.get("fieldManager"):
                raise APIError(400, "BadRequest", "PatchOptions.meta.k8s.io "
                               "\"\" is invalid: fieldManager: Required "
                               "value: is required for apply patch")
            try:
                applied = json.loads(body)
            except ValueError:
                raise APIError(400, "BadRequest", "error decoding YAML: the "
                               "simulator accepts the JSON form of YAML "
                               "only")
            self.validate(res, ns, name, applied, name)
            self.check_namespace(res, ns)
            new = copy.deepcopy(applied)
            manager = q["fieldManager"]
        elif ctype == "application/merge-patch+json":
            if old is None:
                raise self.not_found(res, name)
            try:
                new = merge_patch(old, json.loads(body))
            except ValueError:
                raise APIError(400, "BadRequest", "invalid JSON patch")
            self.validate(res, ns, name, new, name)
            manager = q.get("fieldManager") or "kubesim"
        else:
            raise APIError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown "
                           "format - accepted media types include: "
                           "application/json-patch+json, "
                           "application/merge-patch+json, "
                           "application/apply-patch+yaml")
        return self.store(res, ns, key, old, new, manager)

    def store(self, res, ns, key, old, new, manager):
        cl = self.server.cluster
        md = new.setdefault("metadata", {})
        for k in ("uid", "resourceVersion", "generation", "creationTimestamp",
                  "managedFields", "deletionTimestamp"):
            md.pop(k, None)
        new.pop("status", None)
        if res.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if res.kind == "CustomResourceDefinition":
            cl.register_crd(new)
        if old is None:
            md["managedFields"] = [{"manager": manager,
                                    "operation": "Apply",
                                    "time": now_rfc3339()}]
            if res.kind == "Namespace":
                new["status"] = {"phase": "Active"}
            cl._store(res, new, ns)
            cl.changed(key)
            return self.send_json(201, new)
        omd = old["metadata"]
        for k in ("uid", "creationTimestamp", "generation",
                  "resourceVersion", "managedFields"):
            if k in omd:
                md[k] = omd[k]
        if "status" in old:
            new["status"] = old["status"]
        if new == old:
            return self.send_json(200, old)
        if content(new) != content(old):
            md["generation"] = omd.get("generation", 1) + 1
            cl.changed(key)
        md["resourceVersion"] = cl.next_rv()
        cl.objects[key] = new
        if (res.group, res.kind) in WORKLOADS:
            # The controller has not seen the new generation yet.
            st = cl.compute_status(res, key, new)
            if st is not None:
                new["status"] = st
        return self.send_json(200, new)

    def create(self, res, ns, q, body):
        cl = self.server.cluster
        try:
            obj = json.loads(body)
        except ValueError:
            raise APIError(400, "BadRequest", "invalid JSON body")
        self.validate(res, ns, None, obj, None)
        self.check_namespace(res, ns)
        key = self.key(res, ns, obj["metadata"]["name"])
        if key in cl.objects:
            raise APIError(409, "AlreadyExists", '%s "%s" already exists' %
                           (res.gr(), obj["metadata"]["name"]))
        return self.store(res, ns, key, None, obj,
                          q.get("fieldManager") or "kubesim")

    def delete(self, res, ns, name, q, body):
        cl = self.server.cluster
        try:
            opts = json.loads(body) if body else {}
        except ValueError:
            raise APIError(400, "BadRequest", "invalid DeleteOptions")
        if not isinstance(opts, dict):
            raise APIError(400, "BadRequest", "invalid DeleteOptions")
        pol = q.get("propagationPolicy") or opts.get("propagationPolicy")
        if pol not in (None, "Orphan", "Background", "Foreground"):
            raise APIError(400, "BadRequest", "propagationPolicy: Unsupported"
                           " value: %r" % pol)
        key = self.key(res, ns, name)
        obj = cl.objects.get(key)
        if obj is None:
            raise self.not_found(res, name)
        want = (opts.get("preconditions") or {}).get("uid")
        if want and want != obj["metadata"].get("uid"):
            raise APIError(409, "Conflict", "Precondition failed: UID in "
                           "precondition: %s, UID in object meta: %s" %
                           (want, obj["metadata"].get("uid")),
                           {"name": name, "group": res.group,
                            "kind": res.plural})
        cl.objects.pop(key, None)
        cl.changed_at.pop(key, None)
        if res.kind == "Namespace" and not res.group:
            for k in cl.objects.in_namespace(name):
                del cl.objects[k]
        if pol != "Orphan":
            uid = obj["metadata"].get("uid")
            for k in cl.objects.owned_by(uid):
                del cl.objects[k]
        cl.next_rv()
        return self.send_json(200, status_obj(200, "", "", {
            "name": name, "group": res.group, "kind": res.plural,
            "uid": obj["metadata"].get("uid")}) | {"status": "Success"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # TLS handshakes refused by clients with the wrong CA land here.
        if self.verbose:
            super().handle_error(request, client_address)

    def client_cert_ok(self, conn):
        try:
            return conn.getpeercert() is not None and \
                bool(conn.getpeercert())
        except (AttributeError, ValueError):
            return False


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(d):
    """CA, server cert for 127.0.0.1/localhost, a client cert; EC keys."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=kubesim-ca", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in (("server", "/CN=127.0.0.1", "san.ext"),
                            ("client", "/CN=gitopsd/O=system:masters",
                             "client.ext")):
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", ext, "-out", name + ".crt", cwd=d)


def write_kubeconfig(d, port, token):
    with open(os.path.join(d, "token"), "w") as f:
        f.write(token + "\n")
    # An absolute CA path: the demo copies this kubeconfig elsewhere.
    with open(os.path.join(d, "kubeconfig"), "w") as f:
        f.write("""apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: gitopsd
  user:
    token: %s
contexts:
- name: kubesim
  context:
    cluster: kubesim
    user: gitopsd
    namespace: default
current-context: kubesim
""" % (port, os.path.abspath(os.path.join(d, "ca.crt")), token))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--token", default=None)
    ap.add_argument("--ready-delay", type=float, default=0.5)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="stop when stdin closes (the test that started "
                    "us died without stopping us)")
    args = ap.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    make_pki(args.dir)
    token = args.token or base64.urlsafe_b64encode(os.urandom(24)).decode() \
        .rstrip("=")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(args.dir, "server.crt"),
                        os.path.join(args.dir, "server.key"))
    ctx.load_verify_locations(os.path.join(args.dir, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                 do_handshake_on_connect=False)
    srv.cluster = Cluster(args.ready_delay)
    srv.token = token
    srv.verbose = args.verbose
    port = srv.server_address[1]
    write_kubeconfig(args.dir, port, token)

    stop = threading.Event()

    def ticker():
        while not stop.wait(0.05):
            srv.cluster.tick()
    threading.Thread(target=ticker, daemon=True).start()

    def on_term(signum, frame):
        stop.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    if args.exit_on_stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            on_term(None, None)
        threading.Thread(target=watch_stdin, daemon=True).start()

    print(port, flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()


if __name__ == "__main__":
    main()
