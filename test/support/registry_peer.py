"""Real container-registry peers for integration tests.

- build_oci_layout(): writes a small OCI image layout directory by hand (a
  tar layer, an image config, a manifest and index.json), so `skopeo copy
  oci:<dir>:<tag> docker://...` can push it without any container tooling.
- DistributionRegistry: runs Debian's /usr/bin/docker-registry on
  127.0.0.1:<free port> with filesystem storage in a temporary directory and,
  optionally, a notifications endpoint; stop() ends it.
- skopeo_push(): pushes a layout tag to a registry over plain HTTP.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO_BIN = "/usr/bin/skopeo"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + digest


def build_oci_layout(layout, tags, payload=b"hello from gitopsd tests\n"):
    """Write an OCI image layout at `layout` whose index names one manifest
    per tag (each tag gets a distinct layer, hence a distinct digest).
    Returns {tag: manifest digest}."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    manifests = []
    digests = {}
    for tag in tags:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            content = payload + ("tag %s\n" % tag).encode()
            info = tarfile.TarInfo("hello.txt")
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        tar_bytes = raw.getvalue()
        diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
        # mtime=0 keeps the gzip stream, hence the digests, reproducible.
        layer = gzip.compress(tar_bytes, mtime=0)
        layer_digest = _blob(layout, layer)
        config = json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }, sort_keys=True).encode()
        config_digest = _blob(layout, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": len(config)},
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest, "size": len(layer)}],
        }, sort_keys=True).encode()
        manifest_digest = _blob(layout, manifest)
        manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })
        digests[tag] = manifest_digest
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": manifests}, f)
    return digests


def skopeo_push(layout, tag, dest, timeout=60, token=None, creds=None):
    """skopeo copy oci:<layout>:<tag> docker://<dest> over plain HTTP
    (with a bearer token for a registry in token-auth mode, or creds
    "user:password" for basic auth)."""
    cmd = [SKOPEO_BIN, "copy", "--quiet", "--dest-tls-verify=false"]
    if token:
        cmd.append("--dest-registry-token=" + token)
    if creds:
        cmd.append("--dest-creds=" + creds)
    cmd += ["oci:%s:%s" % (layout, tag), "docker://" + dest]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout, env=dict(os.environ, HOME=os.path.dirname(layout)))
    if res.returncode != 0:
        raise RuntimeError("skopeo copy failed: %s" % res.stderr.decode(errors="replace"))


class DistributionRegistry:
    """Debian's docker-registry on 127.0.0.1:<free port>.

    endpoint: None, or a dict {"url", "headers": {name: value}} for
    notifications.endpoints (small threshold/backoff so retries are quick).
    auth_token: None, or a dict {"realm", "service", "issuer", "cert"} for
    the registry's token authentication."""

    def __init__(self, endpoint=None, auth_token=None, ignore_blobs=False,
                 htpasswd=None):
        self.dir = tempfile.mkdtemp(prefix="gitopsd-registry-")
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.proc = None
        self.log_path = os.path.join(self.dir, "registry.log")
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % os.path.join(self.dir, "storage"),
            "  delete:",
            "    enabled: true",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: gitopsd-test-secret",
        ]
        if htpasswd:
            # The registry reads bcrypt hashes; glibc's crypt(3) makes them.
            # It checks the hash on every request: at the default cost
            # (2^12 rounds) that is about a quarter of a second of CPU per
            # request, so the lowest cost bcrypt allows (2^4) is used.
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt
            user, password = htpasswd
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                f.write("%s:%s\n" % (user, crypt.crypt(
                    password, crypt.mksalt(crypt.METHOD_BLOWFISH,
                                           rounds=16))))
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: gitopsd-test",
                "    path: %s" % path,
            ]
        if auth_token:
            lines += [
                "auth:",
                "  token:",
                "    realm: %s" % auth_token["realm"],
                "    service: %s" % auth_token["service"],
                "    issuer: %s" % auth_token["issuer"],
                "    rootcertbundle: %s" % auth_token["cert"],
            ]
        if endpoint:
            lines += [
                "notifications:",
                "  events:",
                "    includereferences: true",
                "  endpoints:",
                "    - name: gitopsd",
                "      url: %s" % endpoint["url"],
                "      timeout: 2s",
                "      threshold: 2",
                "      backoff: 200ms",
            ]
            headers = endpoint.get("headers") or {}
            if headers:
                lines.append("      headers:")
                for k, v in headers.items():
                    lines.append("        %s: [%s]" % (k, json.dumps(v)))
            if ignore_blobs:
                lines += [
                    "      ignore:",
                    "        mediatypes: [application/octet-stream]",
                    "        actions: [pull]",
                ]
        self.config_path = os.path.join(self.dir, "config.yml")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=15):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: %s" % self.read_log())
            try:
                with urllib.request.urlopen("http://%s/v2/" % self.host, timeout=1) as r:
                    r.read()
                return self
            except urllib.error.HTTPError:
                return self     # 401 with token auth: it serves
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start: %s" % self.read_log())

    def read_log(self, tail=4000):
        """The registry's log (its last `tail` characters; None: all)."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return text if tail is None else text[-tail:]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        shutil.rmtree(self.dir, ignore_errors=True)


def retag(host, repository, src_tag, tags, auth=None):
    """Give the manifest of src_tag more tags, one PUT each (what a push of
    the same image under another tag does, without copying blobs)."""
    accept = "application/vnd.oci.image.manifest.v1+json"
    headers = {"Accept": accept}
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" %
                                 (host, repository, src_tag), headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        ctype = r.headers["Content-Type"]
    for tag in tags:
        h = {"Content-Type": ctype}
        if auth:
            h["Authorization"] = auth
        req = urllib.request.Request("http://%s/v2/%s/manifests/%s" %
                                     (host, repository, tag), data=body,
                                     headers=h, method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
