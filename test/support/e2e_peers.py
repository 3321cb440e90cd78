"""Peers and helpers for the end-to-end and metrics tests.

- make_bare_repo(): a bare repository, pushable over smart HTTP, to serve
  with fault_peers.GitHTTP.
- parse_prometheus(): the Prometheus text exposition format (version
  0.0.4) parsed into families, with the checks a scraper makes.
- github_push(): a signed GitHub push event for a commit.
"""
import json
import math
import os
import re
import shutil
import tempfile
import uuid

import harness
from fault_peers import git


def make_bare_repo(gitroot, name, files):
    """A bare repository gitroot/name (pushable over smart HTTP) whose main
    branch holds files {relpath: text} in one commit."""
    src = tempfile.mkdtemp(prefix="gitopsd-src-")
    try:
        for rel, text in files.items():
            harness.write(os.path.join(src, rel), text, mode=0o644)
        git("init", "-q", src)
        git("add", ".", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        bare = os.path.join(gitroot, name)
        git("clone", "-q", "--bare", src, bare)
        git("config", "http.receivepack", "true", cwd=bare)
        return bare
    finally:
        shutil.rmtree(src, ignore_errors=True)


def github_push(d, secret, clone_url, after, before="0" * 40,
                full_name="acme/deploy", modified=()):
    """POST a signed GitHub push event for `after` to d's /hooks/github
    (one commit that modified the paths `modified`, as GitHub lists)."""
    commit = {"id": after, "message": "deploy", "distinct": True,
              "added": [], "removed": [], "modified": list(modified)}
    body = json.dumps({
        "ref": "refs/heads/main", "before": before, "after": after,
        "created": False, "deleted": False, "forced": False,
        "commits": [commit], "head_commit": commit,
        "repository": {"full_name": full_name,
                       "name": full_name.split("/")[-1],
                       "clone_url": clone_url, "ssh_url": clone_url,
                       "html_url": clone_url},
        "pusher": {"name": "octo", "email": "octo@example.invalid"},
    }).encode()
    return d.post("/hooks/github", body, harness.github_headers(
        secret, body, str(uuid.uuid4())))


# ---- Prometheus text exposition format ------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?$"
                     % _NAME)
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class PromError(ValueError):
    pass


def _float(text, lineno):
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    try:
        return float(text)
    except ValueError:
        raise PromError("line %d: bad value %r" % (lineno, text)) from None


def _labels(text, lineno):
    """`a="x",b="y\\"z"` -> {"a": "x", "b": "y\"z"}; escapes \\\\ \\" \\n."""
    out = {}
    i, n = 0, len(text)
    while i < n:
        m = re.match(r"[ \t]*(%s)[ \t]*=[ \t]*\"" % _LABEL, text[i:])
        if not m:
            raise PromError("line %d: bad label at %r" % (lineno, text[i:]))
        name = m.group(1)
        i += m.end()
        val = []
        while True:
            if i >= n:
                raise PromError("line %d: unterminated label value" % lineno)
            c = text[i]
            if c == "\\":
                if i + 1 >= n or text[i + 1] not in "\\\"n":
                    raise PromError("line %d: bad escape" % lineno)
                val.append("\n" if text[i + 1] == "n" else text[i + 1])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise PromError("line %d: newline in label value" % lineno)
            else:
                val.append(c)
                i += 1
        if name in out:
            raise PromError("line %d: label %s twice" % (lineno, name))
        out[name] = "".join(val)
        rest = text[i:].lstrip(" \t")
        if rest.startswith(","):
            i = n - len(rest) + 1
        elif rest == "":
            break
        else:
            raise PromError("line %d: junk after label %s" % (lineno, name))
    return out


def _family_of(sample, families):
    """The family a sample name belongs to (histogram suffixes)."""
    if sample in families:
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            base = sample[:-len(suffix)]
            if base in families and families[base]["type"] in (
                    "histogram", "summary"):
                return base
    return None


def parse_prometheus(text):
    """Parse and check an exposition.  Returns {family: {"type", "help",
    "samples": [(name, {labels}, value)]}}.  Raises PromError on anything a
    Prometheus scraper would refuse or that breaks the format's rules:
    malformed lines, TYPE after samples or twice, a sample of no declared
    family, duplicate series, negative counters, and histograms whose
    buckets are not cumulative or whose +Inf bucket differs from _count."""
    families = {}
    seen_series = set()
    if text and not text.endswith("\n"):
        raise PromError("exposition does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not re.fullmatch(_NAME, parts[2]):
                    raise PromError("line %d: bad %s" % (lineno, parts[1]))
                fam = families.setdefault(parts[2], {
                    "type": None, "help": None, "samples": []})
                arg = parts[3] if len(parts) > 3 else ""
                if parts[1] == "TYPE":
                    if fam["type"] is not None:
                        raise PromError("line %d: second TYPE for %s"
                                        % (lineno, parts[2]))
                    if fam["samples"]:
                        raise PromError("line %d: TYPE after samples of %s"
                                        % (lineno, parts[2]))
                    if arg not in _TYPES:
                        raise PromError("line %d: unknown type %r"
                                        % (lineno, arg))
                    fam["type"] = arg
                else:
                    if fam["help"] is not None:
                        raise PromError("line %d: second HELP for %s"
                                        % (lineno, parts[2]))
                    fam["help"] = arg
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise PromError("line %d: not a sample: %r" % (lineno, line))
        name, ltext, vtext = m.group(1), m.group(2), m.group(3)
        labels = _labels(ltext, lineno) if ltext else {}
        value = _float(vtext, lineno)
        fname = _family_of(name, families)
        if fname is None:
            raise PromError("line %d: %s has no TYPE" % (lineno, name))
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise PromError("line %d: duplicate series %r" % (lineno, key))
        seen_series.add(key)
        fam = families[fname]
        if fam["type"] == "counter" and (value < 0 or math.isnan(value)):
            raise PromError("line %d: counter %s is %r" % (lineno, name,
                                                           value))
        if fam["type"] == "histogram" and name == fname:
            raise PromError("line %d: histogram sample without suffix"
                            % lineno)
        fam["samples"].append((name, labels, value))
    for fname, fam in families.items():
        if fam["type"] is None:
            raise PromError("%s has HELP but no TYPE" % fname)
        if fam["type"] == "histogram":
            for series in histogram_series(fname, fam).values():
                _check_histogram(fname, series)
    return families


def histogram_series(fname, fam):
    """{labels without le: {"buckets": [(le, count)], "sum", "count"}}."""
    out = {}
    for name, labels, value in fam["samples"]:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = out.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fname + "_bucket":
            if "le" not in labels:
                raise PromError("%s: bucket without le" % fname)
            s["buckets"].append((_float(labels["le"], 0), value))
        elif name == fname + "_sum":
            s["sum"] = value
        elif name == fname + "_count":
            s["count"] = value
    return out


def _check_histogram(fname, s):
    if s["sum"] is None or s["count"] is None:
        raise PromError("%s: missing _sum or _count" % fname)
    if not s["buckets"] or s["buckets"][-1][0] != math.inf:
        raise PromError("%s: the last bucket is not le=\"+Inf\"" % fname)
    les = [le for le, _ in s["buckets"]]
    if les != sorted(les) or len(set(les)) != len(les):
        raise PromError("%s: bucket bounds not increasing" % fname)
    counts = [c for _, c in s["buckets"]]
    if any(b < a for a, b in zip(counts, counts[1:])):
        raise PromError("%s: buckets not cumulative: %r" % (fname, counts))
    if counts[-1] != s["count"]:
        raise PromError("%s: +Inf bucket %r != _count %r"
                        % (fname, counts[-1], s["count"]))
    if s["count"] == 0 and s["sum"] != 0:
        raise PromError("%s: _sum %r with no observations" % (fname,
                                                             s["sum"]))
    if s["count"] != int(s["count"]):
        raise PromError("%s: fractional _count" % fname)


def samples(families, name, **labels):
    """Values of the samples called `name` whose labels include `labels`."""
    fname = _family_of(name, families)
    if fname is None:
        return []
    return [v for n, lab, v in families[fname]["samples"] if n == name and
            all(lab.get(k) == str(val) for k, val in labels.items())]
