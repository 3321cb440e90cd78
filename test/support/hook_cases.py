"""Build real sender requests from the webhook case files
(test/fixtures/cases/<sender>/<name>.case, format in
test/unit/test_webhook_cases.c) with another secret: every place the case
puts its secret (a header, a Basic credential, the URL path, an HMAC
signature) gets the given one.  Supports the keys the chosen cases use:
source, name, secret, path, header, body-file, sign, sign-sha1."""
import base64
import hashlib
import hmac
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "..", "fixtures", "cases")


class HookRequest:
    def __init__(self, source_type, name, path, headers, body):
        self.source_type = source_type
        self.name = name
        self.path = path            # /hooks/...
        self.headers = headers      # [(name, value)]
        self.body = body


def _swap(value, old, new):
    if value.startswith("Basic "):
        cred = base64.b64decode(value[6:]).decode()
        return "Basic " + base64.b64encode(
            cred.replace(old, new).encode()).decode()
    return value.replace(old, new)


def load(rel, secret):
    """The request of case rel (e.g. "github/push-branch.case"), its secret
    replaced by secret."""
    path = os.path.join(CASES, rel)
    with open(path, "rb") as f:
        data = f.read()
    head, _, body = data.partition(b"\n\n")
    meta = {"header": [], "sign": [], "sign-sha1": []}
    for line in head.decode().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition(": ")
        if key in meta and isinstance(meta[key], list):
            meta[key].append(value)
        else:
            meta[key] = value
    old = meta["secret"]
    if "body-file" in meta:
        with open(os.path.join(os.path.dirname(path), meta["body-file"]),
                  "rb") as f:
            body = f.read()
    name = meta.get("name", meta["source"])
    hook_path = "/hooks/" + _swap(meta.get("path", name), old, secret)
    headers = []
    for h in meta["header"]:
        k, _, v = h.partition(": ")
        headers.append((k, _swap(v, old, secret)))
    for kind, algo in (("sign", hashlib.sha256), ("sign-sha1", hashlib.sha1)):
        for s in meta[kind]:
            parts = s.split()
            if len(parts) > 3:
                raise ValueError("%s: signing the JSON of a form body is "
                                 "not supported here" % rel)
            header, prefix, _ = parts
            mac = hmac.new(secret.encode(), body, algo).hexdigest()
            headers.append((header, ("" if prefix == "-" else prefix) + mac))
    return HookRequest(meta["source"], name, hook_path, headers, body)
