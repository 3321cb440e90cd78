"""A paging front for Debian's docker-registry.

docker-registry 2.8 ignores `n` on GET /v2/<name>/tags/list and never
pages, while Docker Hub, GHCR and Harbor do.  This front forwards every
request to the real registry (authorization included) and answers the tag
list itself the way the distribution spec pages it: at most `page` tags per
answer (or fewer when the client asks with `n`), sorted, continuing after
`last`, with `Link: <...?n=N&last=T>; rel="next"` while more remain.  It can
also answer the next tag-list requests 429 with a Retry-After, as a
rate-limited registry does, and it records the tag-list requests it saw.
"""
import http.server
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


class PagingFront:
    def __init__(self, upstream, page=50):
        self.upstream = upstream
        self.page = page
        self.throttle = []          # Retry-After values for the next 429s
        self.requests = []          # (time, path?query, status)
        self.lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                front.handle(self, "GET")

            def do_HEAD(self):
                front.handle(self, "HEAD")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.port = self.server.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def tag_requests(self):
        with self.lock:
            return list(self.requests)

    def _forward(self, req, method, path):
        headers = {k: v for k, v in req.headers.items()
                   if k.lower() in ("authorization", "accept")}
        up = urllib.request.Request("http://%s%s" % (self.upstream, path),
                                    headers=headers, method=method)
        try:
            with urllib.request.urlopen(up, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def _send(self, req, status, headers, body, method):
        req.send_response(status)
        for k, v in headers:
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if method != "HEAD":
            req.wfile.write(body)

    def handle(self, req, method):
        url = urllib.parse.urlsplit(req.path)
        if not url.path.endswith("/tags/list"):
            status, h, body = self._forward(req, method, req.path)
            keep = [(k, v) for k, v in h.items() if k.lower() in (
                "content-type", "docker-content-digest",
                "www-authenticate", "docker-distribution-api-version")]
            self._send(req, status, keep, body, method)
            return
        with self.lock:
            if self.throttle:
                wait = self.throttle.pop(0)
                self.requests.append((time.monotonic(), req.path, 429))
                body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS",
                                              "message": "slow down"}]})
                self._send(req, 429, [("Content-Type", "application/json"),
                                      ("Retry-After", str(wait))],
                           body.encode(), method)
                return
        status, h, body = self._forward(req, "GET", url.path)
        with self.lock:
            self.requests.append((time.monotonic(), req.path, status))
        if status != 200:
            keep = [(k, v) for k, v in h.items() if k.lower() in (
                "content-type", "www-authenticate")]
            self._send(req, status, keep, body, method)
            return
        doc = json.loads(body)
        tags = sorted(doc.get("tags") or [])
        q = urllib.parse.parse_qs(url.query)
        n = self.page
        if "n" in q and q["n"][0].isdigit():
            n = max(1, min(n, int(q["n"][0])))
        if "last" in q:
            tags = [t for t in tags if t > q["last"][0]]
        page, rest = tags[:n], tags[n:]
        headers = [("Content-Type", "application/json")]
        if rest:
            headers.append(("Link", '<%s?n=%d&last=%s>; rel="next"' % (
                url.path, n, urllib.parse.quote(page[-1]))))
        out = json.dumps({"name": doc.get("name"), "tags": page}).encode()
        self._send(req, 200, headers, out, method)
