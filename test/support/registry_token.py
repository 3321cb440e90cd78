"""A token issuer for Debian's docker-registry `auth: token:` mode.

The registry is the real thing; this is the token service its realm points
at (what Docker Hub's auth.docker.io or Harbor's core does): it checks HTTP
Basic credentials and answers {"token": <JWT>} signed RS256 with a key
whose self-signed certificate is the registry's rootcertbundle (the JWT
header carries it in x5c).  Signing uses the openssl command line, since
the Python standard library has no RSA.
"""
import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse

ISSUER = "gitopsd-test-issuer"
SERVICE = "gitopsd-test-registry"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    def __init__(self, workdir, username, password):
        self.username = username
        self.password = password
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", self.key, "-out", self.cert,
                        "-days", "1", "-subj", "/CN=" + ISSUER],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert,
                              "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                issuer.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), check=True,
                             capture_output=True).stdout
        return signing_input + "." + _b64url(sig)

    def handle(self, req):
        url = urllib.parse.urlsplit(req.path)
        q = urllib.parse.parse_qs(url.query)
        self.requests.append({"path": url.path, "query": q,
                              "authorization": req.headers.get("Authorization")})
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (self.username, self.password)).encode()).decode()
        if req.headers.get("Authorization") != want:
            req.send_response(401)
            req.send_header("WWW-Authenticate", 'Basic realm="token"')
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                access.append({"type": "repository", "name": parts[1],
                               "actions": parts[2].split(",")})
        now = int(time.time())
        token = self.sign({"iss": ISSUER, "sub": self.username,
                           "aud": q.get("service", [SERVICE])[0],
                           "exp": now + 300, "nbf": now - 10, "iat": now,
                           "jti": os.urandom(8).hex(), "access": access})
        body = json.dumps({"token": token, "expires_in": 300}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def registry_auth(self):
        """The `auth_token` argument of registry_peer.DistributionRegistry."""
        return {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                "cert": self.cert}

    def push_token(self, repository):
        """A push+pull token for skopeo (--dest-registry-token)."""
        now = int(time.time())
        return self.sign({"iss": ISSUER, "sub": self.username, "aud": SERVICE,
                          "exp": now + 300, "nbf": now - 10, "iat": now,
                          "jti": os.urandom(8).hex(),
                          "access": [{"type": "repository", "name": repository,
                                      "actions": ["push", "pull"]}]})
