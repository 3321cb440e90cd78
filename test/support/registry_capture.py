#!/usr/bin/python3
"""Captures the real notifications Debian's docker-registry sends.

Usage: registry_capture.py OUTDIR

Starts a notification listener and docker-registry (both on 127.0.0.1),
pushes a hand-built OCI image with skopeo, pulls its manifest, deletes it,
and writes each request the registry sent as OUTDIR/NN-<what>.json
({"headers": {...}, "body": "<exact text>"}).  The Authorization header the
registry was configured with is "Bearer capture-token".  Used to refresh
test/fixtures/registry/; the fixtures are these files, unedited.
"""
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import registry_peer  # noqa: E402


class Sink(http.server.BaseHTTPRequestHandler):
    got = []
    lock = threading.Lock()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with Sink.lock:
            Sink.got.append({"headers": dict(self.headers.items()),
                             "body": body.decode()})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_for(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/hooks/registry" % srv.server_address[1]
    reg = registry_peer.DistributionRegistry(
        endpoint={"url": url, "headers": {"Authorization": "Bearer capture-token"}})
    work = tempfile.mkdtemp(prefix="gitopsd-capture-")
    try:
        reg.start()
        layout = os.path.join(work, "layout")
        digests = registry_peer.build_oci_layout(layout, ["1.2.3"])
        registry_peer.skopeo_push(layout, "1.2.3", "%s/acme/web:1.2.3" % reg.host)
        # Three blob pushes (layer, config) + one manifest push at least.
        wait_for(lambda: any('"tag": "1.2.3"' in g["body"] for g in Sink.got))
        n_push = len(Sink.got)
        req = urllib.request.Request(
            "http://%s/v2/acme/web/manifests/1.2.3" % reg.host,
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        with urllib.request.urlopen(req) as r:
            r.read()
        wait_for(lambda: len(Sink.got) > n_push)
        n_pull = len(Sink.got)
        req = urllib.request.Request(
            "http://%s/v2/acme/web/manifests/%s" % (reg.host, digests["1.2.3"]),
            method="DELETE")
        with urllib.request.urlopen(req) as r:
            r.read()
        wait_for(lambda: len(Sink.got) > n_pull + 1)
        time.sleep(0.5)
    finally:
        reg.stop()
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    for i, g in enumerate(Sink.got):
        ev = json.loads(g["body"])["events"]
        kinds = "+".join("%s-%s" % (e["action"],
                                    "manifest" if "manifest" in e["target"].get("mediaType", "")
                                    or "tag" in e["target"] else "blob") for e in ev)
        path = os.path.join(out, "%02d-%s.json" % (i, kinds))
        with open(path, "w") as f:
            json.dump(g, f, indent=1)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main()
