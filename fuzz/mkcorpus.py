#!/usr/bin/python3
"""Rebuilds the generated seed corpora under fuzz/corpus/ from test/fixtures.

  fuzz_handler_<src>: variant byte (see fuzz/handler.inc) + each case body
  fuzz_http:          the raw requests of test/fixtures/bad-requests, and
                      good requests built from the cases, signed with the
                      fuzz configuration's secret (fuzz/fuzz.h)
  fuzz_config:        config/*.yaml and test/fixtures/config/{good,bad}
  fuzz_kubeconfig:    selector byte + test/fixtures/kube/*.yaml
  fuzz_template:      selector byte + template NUL values
  fuzz_policy:        the policy strings of the test configurations

fuzz_manifest, fuzz_yaml_json, fuzz_tree and fuzz_admin_guard are kept by
hand.  Run from the top of the tree: /usr/bin/python3 fuzz/mkcorpus.py"""
import glob
import hashlib
import hmac
import os
import re
import sys

sys.path.insert(0, "test/integration")
sys.path.insert(0, "test/support")
import test_bad_requests as bad  # noqa: E402

SECRET = "fuzz-secret-0123456789"
EVENTS = ["push", "ping", "registry_package", "package", "create",
          "Push Hook", "Tag Push Hook", "System Hook"]
SOURCES = {"github": "github", "gitlab": "gitlab", "gitea": "gitea",
           "bitbucket": "bitbucket", "generic": "generic",
           "generic-hmac": "generic", "registry": "registry",
           "dockerhub": "dockerhub", "harbor": "harbor", "quay": "quay"}
MAX_SEED = 16384


def out(target, name, data):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def parse_case(path):
    with open(path, "rb") as f:
        text = f.read()
    head, _, body = text.partition(b"\n\n")
    meta = {"header": []}
    for line in head.decode().splitlines():
        if line.startswith("#") or ": " not in line:
            continue
        k, v = line.split(": ", 1)
        if k == "header":
            meta["header"].append(v)
        else:
            meta[k] = v
    return meta, body


def variant(meta):
    v = 0x01
    hdrs = {h.split(": ", 1)[0].lower(): h.split(": ", 1)[1]
            for h in meta["header"] if ": " in h}
    ev = hdrs.get("x-github-event") or hdrs.get("x-gitlab-event") or \
        hdrs.get("x-gitea-event") or "push"
    if ev in EVENTS:
        v |= EVENTS.index(ev) << 3
    if "form" in hdrs.get("content-type", ""):
        v |= 0x04
    if "docker.distribution" in hdrs.get("content-type", ""):
        v |= 0x40
    if "sign-sha1" in meta:
        v |= 0x80
    return v


def signed_request(src, meta, body):
    hdrs = [h for h in meta["header"]
            if not re.match(r"(?i)(x-hub-signature|x-gitea-signature|"
                            r"x-signature|x-gitlab-token|authorization|"
                            r"content-length)", h)]
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    path = "/hooks/" + src
    if src == "github" or src == "bitbucket":
        hdrs.append("X-Hub-Signature%s: sha256=%s" %
                    ("-256" if src == "github" else "", mac))
    elif src == "gitea":
        hdrs.append("X-Gitea-Signature: " + mac)
    elif src == "generic":
        hdrs.append("X-Signature: sha256=" + mac)
    elif src == "gitlab":
        hdrs.append("X-Gitlab-Token: " + SECRET)
    elif src == "registry":
        hdrs.append("Authorization: Bearer " + SECRET)
    elif src == "harbor":
        hdrs.append("Authorization: " + SECRET)
    else:
        path += "/" + SECRET
    head = "POST %s HTTP/1.1\r\nHost: fuzz\r\n" % path
    head += "".join(h + "\r\n" for h in hdrs)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    return head.encode() + body


def main():
    bad.SECRETS = {k: SECRET for k in bad.SECRETS}
    for path in sorted(glob.glob("test/fixtures/bad-requests/*.req")):
        _, data = bad.build(path)
        if len(data) <= MAX_SEED:
            out("fuzz_http", os.path.basename(path)[:-4], data)
    good = {}
    for path in sorted(glob.glob("test/fixtures/cases/*/*.case")):
        meta, body = parse_case(path)
        src = SOURCES.get(meta.get("source", ""))
        if src is None or len(body) > MAX_SEED:
            continue
        name = os.path.basename(path)[:-5]
        v = variant(meta)
        out("fuzz_handler_" + src, name, bytes([v]) + body)
        if body[:1] in (b"{", b"["):
            out("fuzz_json", "%s-%s" % (src, name), body)
        if name in ("push", "push-json", "cloud-push", "official"):
            out("fuzz_handler_" + src, name + "-unsigned",
                bytes([v & ~0x3]) + body)
        good[src] = good.get(src, 0) + 1
        if meta.get("method", "POST") == "POST" and "path" not in meta \
                and good[src] <= 3:
            out("fuzz_http", "good-%s-%s" % (src, name),
                signed_request(src, meta, body))
    # The corners where the one-pass reader must read as cJSON reads.
    for i, doc in enumerate([
            b'\xef\xbb\xbf{"bom": 1}', b'\xef\xbb\xbf1', b'[01, 1., -0, 1e5, '
            b'1E+2, -1.5e-3, 12345678901234567, 1e999, 0.1e]',
            b'"' + b'9' * 80 + b'"', b'[' + b'9' * 80 + b']',
            b'{"s": "\\u00e9\\ud83d\\ude80\\n\\t\\"\\\\\\/\\b\\f\\r"}',
            b'["\\ud800", "\\udc00", "\\ud800\\u0041", "\\u00zz", "\\u0000"]',
            b'{"a": 1, "a": 2}', b'{"k": {"x": 1, "x": 2}}',
            b'\x01\x1f[\x0b1\x0c,\x7f2]\x0b', b'[1] \t\r\n', b'[1]\x0b',
            b'["raw \x01 control", "caf\xc3\xa9", "\xed\xa0\x80", "\xc0\xaf"]',
            b'[true, false, null, nul, tru, fals]', b'[' * 64 + b']' * 64,
            b'[' * 65 + b']' * 65, b'{"a":1,}', b'[1,]', b'{"a" 1}', b'',
            b'{"' + b'k' * 70 + b'": 1}']):
        out("fuzz_json", "edge%02d" % i, doc)
    for path in sorted(glob.glob("config/*.yaml") +
                       glob.glob("test/fixtures/config/*/*.yaml")):
        with open(path, "rb") as f:
            data = f.read()
        name = path.replace("/", "_")
        out("fuzz_config", name, data)
    for path in sorted(glob.glob("test/fixtures/kube/*.yaml")):
        with open(path, "rb") as f:
            data = f.read()
        base = os.path.basename(path)[:-5]
        for sel in (0, 1, 2, 6, 8):
            out("fuzz_kubeconfig", "%s-%d" % (base, sel),
                bytes([sel]) + data)
    templates = [
        b"{{app}}: {{kind}} failed",
        b"The {{kind}} job {{job}} of {{app}} failed after {{attempts}} "
        b"attempt(s): {{reason}}",
        b"{{ app }} recovered at {{time}} ({{url}})",
        b"{{image}}:{{tag}} from {{delivery}} rev {{revision}} {{object}}",
        b"{{event}} {{ unknown }}",
        b"unclosed {{app",
        b"{{}} empty",
        b"{{{{app}}}} nested",
        b"plain text, no variables",
    ]
    values = b"\0web\0image pull failed: <no&such>\n\0v1.2.3\0" \
        b"registry.acme.io/acme/web\0https://ci.example/\xc3\xa9"
    for i, t in enumerate(templates):
        out("fuzz_template", "t%02d" % i, bytes([i * 37 & 0xff]) + t + values)
    # kind byte (0 semver, 1 pattern (+0x40: extract $1), 3 digest;
    # 0x10 prerelease, 0x20 alphabetical), range, current, candidate, ref
    policies = set()
    for path in glob.glob("config/*.yaml") + \
            glob.glob("test/fixtures/config/*/*.yaml"):
        with open(path) as f:
            for m in re.finditer(r"(semver|pattern): *"
                                 r"(\"[^\"]*\"|'[^']*'|[^,}\n]*)", f.read()):
                policies.add((m.group(1), m.group(2).strip("\"'")))
    policies |= {("semver", ">=1.0.0 <2.0.0"), ("semver", "~1.2"),
                 ("semver", "^0.3.1"), ("pattern", "^v([0-9]+)$"),
                 ("pattern", "^main-[a-f0-9]+-([0-9]+)$")}
    tags = [(b"1.2.3", b"1.10.0-rc.1", b"registry.acme.io:5000/acme/web:1.2.3"),
            (b"v7", b"v12", b"nginx@sha256:" + b"ab" * 32),
            (b"main-abc123-17", b"main-def456-9", b"ghcr.io/acme/web:main")]
    for i, (kind, p) in enumerate(sorted(policies)):
        k = 0x00 if kind == "semver" else 0x41
        cur, cand, ref = tags[i % len(tags)]
        out("fuzz_policy", "cfg%02d" % i, bytes([k | (i & 0x30)]) +
            p.encode() + b"\0" + cur + b"\0" + cand + b"\0" + ref)
    out("fuzz_policy", "digest", b"\x03latest\0latest\0latest\0"
        b"docker.io/library/nginx:latest")


if __name__ == "__main__":
    main()
