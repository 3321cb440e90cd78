#!/usr/bin/python3
"""Writes the benchmark's inputs into a directory: a signed ~7 KB GitHub
push (body.json, its X-Hub-Signature-256 in sig), a gitopsd config whose
app the push matches (so each request stores an event and a sync job), and
an adnanh/webhook hooks.json with a payload-hmac-sha256 trigger rule,
and gitopsd-pg.yaml.in, the same config on the postgres state driver with
@PORT@, @ADMIN@, @DSN@ (the DSN file) and @WORK@ (the replica's workdir)
for run.sh to fill in per replica.
usage: gen.py DIR GITOPSD_PORT ADMIN_PORT WEBHOOK_PORT"""
import hashlib
import hmac
import json
import os
import sys

out, port, admin, wport = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
secret = os.urandom(16).hex()
# A loopback port nothing listens on: the sync jobs the benchmark queues
# fail fast without a name lookup or traffic off this machine.
clone = "http://127.0.0.1:9/acme/deploy.git"
commits = []
i = 0
while True:
    sha = hashlib.sha1(str(i).encode()).hexdigest()
    commits.append({
        "id": sha, "tree_id": hashlib.sha1(sha.encode()).hexdigest(),
        "distinct": True, "message": "apps/web: bump image to 1.%d.0" % i,
        "timestamp": "2026-11-26T06:00:00Z",
        "url": "https://example.invalid/acme/deploy/commit/" + sha,
        "author": {"name": "Octo Cat", "email": "octo@example.invalid",
                   "username": "octocat"},
        "committer": {"name": "Octo Cat", "email": "octo@example.invalid",
                      "username": "octocat"},
        "added": [], "removed": [], "modified": ["apps/web/deployment.yaml"],
    })
    body = {
        "ref": "refs/heads/main", "before": "0" * 40, "after": commits[-1]["id"],
        "created": False, "deleted": False, "forced": False,
        "compare": "https://example.invalid/acme/deploy/compare/a...b",
        "commits": commits, "head_commit": commits[-1],
        "repository": {"id": 1, "name": "deploy", "full_name": "acme/deploy",
                       "private": True, "clone_url": clone,
                       "ssh_url": "git@example.invalid:acme/deploy.git",
                       "html_url": "https://example.invalid/acme/deploy",
                       "default_branch": "main"},
        "pusher": {"name": "octocat", "email": "octo@example.invalid"},
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    }
    data = json.dumps(body, indent=1).encode()
    if len(data) >= 7 * 1024:
        break
    i += 1
sig = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def write(name, text, mode=0o600):
    p = os.path.join(out, name)
    with open(p, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    os.chmod(p, mode)


write("body.json", data)
write("sig", sig)
write("github.secret", secret)
# The app's cluster: a loopback port nothing listens on (an app without a
# cluster is updated in Git only, and a push to it makes no job).
write("c.kubeconfig", """apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
""")
CONFIG = """
server: {listen: "127.0.0.1:%(port)s", max_connections: 1024}
admin: {listen: "127.0.0.1:%(admin)s"}
state: %(state)s
workdir: "%(work)s"
sources:
  - {name: github, type: github, secret_file: "%(out)s/github.secret"}
repos:
  - {name: deploy, url: "%(clone)s", branch: main%(poll)s}
clusters:
  - {name: c, kubeconfig: "%(out)s/c.kubeconfig"}
apps:
  - {name: web, repo: deploy, path: apps/web, cluster: c}
"""
# Every request pushes the same head: with the repository polled, a push
# for a head already handled is answered 200 and stored no more, so the
# benchmark turns polling off (INGEST_NO_POLL_KEY=1 leaves the key out,
# for builds older than Git polling).
POLL = "" if os.environ.get("INGEST_NO_POLL_KEY") else ", poll_interval_s: 0"
write("gitopsd.yaml", CONFIG % {
    "poll": POLL,
    "port": port, "admin": admin, "state": '{path: "%s/state.db"}' % out,
    "work": out + "/repos", "out": out, "clone": clone})
write("gitopsd-pg.yaml.in", CONFIG % {
    "poll": POLL,
    "port": "@PORT@", "admin": "@ADMIN@",
    "state": '{driver: postgres, dsn_file: "@DSN@"}', "work": "@WORK@",
    "out": out, "clone": clone})
write("hooks.json", json.dumps([{
    "id": "github",
    "execute-command": "/bin/true",
    "trigger-rule-mismatch-http-response-code": 401,
    "trigger-rule": {"match": {
        "type": "payload-hmac-sha256", "secret": secret,
        "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}},
}]))
print(len(data))
