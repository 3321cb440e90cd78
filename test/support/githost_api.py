"""Loopback stand-ins for the pull request REST APIs of GitHub, GitLab,
Gitea and Bitbucket Cloud, for the review-flow tests.

GitHostAPI(provider, token, bare, owner, name, prefix).start() serves on
127.0.0.1 (a free port) the endpoints gitopsd uses, written to each host's
documentation:

  github     Authorization: Bearer <token>; GET/POST {prefix}/repos/O/N/pulls
             (state, head=O:branch, per_page<=100, Link rel="next"),
             PATCH .../pulls/N, POST .../issues/N/labels.  A second PR for
             one head: 422 "Validation Failed" with "A pull request already
             exists for O:branch.".  Unknown head or base branch: 422.
  gitlab     PRIVATE-TOKEN: <token>; {prefix}/projects/<url-encoded path>/
             merge_requests (state=opened, source_branch, per_page<=100,
             Link and X-Next-Page), PUT .../merge_requests/IID with
             description, labels / add_labels as comma lists and
             state_event=close.  A second
             MR for one source branch: 409 with message ["Another open merge
             request already exists for this source branch: !IID"].
  gitea      Authorization: token <token>; {prefix}/repos/O/N/pulls
             (state, page, limit<=50, no head filter, Link rel="next",
             X-Total-Count), PATCH .../pulls/N answers 201, POST
             .../issues/N/labels with label names.  Duplicate: 409.
  bitbucket  Authorization: Bearer <token>; {prefix}/repositories/W/S/
             pullrequests (state=OPEN, BBQL q=source.branch.name="x",
             pagelen<=50, {"values", "next", "page", "size"}), PUT
             .../pullrequests/ID, POST .../pullrequests/ID/decline;
             title, source.branch.name and
             destination.branch.name; errors {"type": "error", "error":
             {"message": ...}}.

Commit statuses (POST, answered 201 with the status object):

  github     .../repos/O/N/statuses/SHA: state pending|success|failure|
             error (required), target_url, description (<= 140
             characters), context (default "default"); 422 "Validation
             Failed" otherwise, 422 "No commit found for SHA" for an
             unknown commit.
  gitlab     .../projects/<path>/statuses/SHA: state pending|running|
             success|failed|canceled (required), name or context,
             target_url, description; 400 {"message"} otherwise, 404
             "404 Commit Not Found".
  gitea      .../repos/O/N/statuses/SHA: state pending|success|error|
             failure|warning, context, target_url, description; 422
             otherwise, 404 for an unknown commit.
  bitbucket  .../repositories/W/S/commit/SHA/statuses/build: state
             INPROGRESS|SUCCESSFUL|FAILED|STOPPED, key (required, <= 40
             characters), url (required), name, description; 400 error
             object otherwise, 404 for an unknown commit.

Each accepted status is appended to .statuses as {sha, state, context,
target_url, description} (Bitbucket: context is the key, target_url the
url).

Branches are checked against the bare repository, as the host would.
Every request is recorded (method, path, query, headers, JSON body) in
.requests.  .script is a list of (status, headers, body) answered first,
for rate limits and errors.  .seed(n) adds n unrelated open PRs so that
listing pages.
"""
import json
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE_MAX = {"github": 100, "gitlab": 100, "gitea": 50, "bitbucket": 50}
PAGE_DEFAULT = {"github": 30, "gitlab": 20, "gitea": 30, "bitbucket": 10}


class GitHostAPI:
    def __init__(self, provider, token, bare, owner, name, prefix=""):
        self.provider = provider
        self.token = token
        self.bare = bare
        self.owner = owner          # GitLab: the whole namespace path
        self.name = name
        self.prefix = prefix
        self.prs = []
        self.statuses = []
        self.requests = []
        self.script = []
        self.lock = threading.Lock()
        self.server = None

    # -- state --------------------------------------------------------
    def seed(self, n):
        for i in range(n):
            self._new_pr("unrelated/%d" % i, "main", "other %d" % i, "", [])

    def close(self, head, merged):
        """A person closes (declines) or merges the open PR of head."""
        for p in self.open_prs(head):
            p["state"] = "closed"
            p["merged"] = merged

    def open_prs(self, head=None):
        return [p for p in self.prs if p["state"] == "open" and
                (head is None or p["head"] == head)]

    def branch_exists(self, b):
        r = subprocess.run(["git", "rev-parse", "--verify", "-q",
                            "refs/heads/" + b], cwd=self.bare,
                           capture_output=True)
        return r.returncode == 0 or b.startswith("unrelated/")

    def commit_exists(self, sha):
        r = subprocess.run(["git", "cat-file", "-e", sha + "^{commit}"],
                           cwd=self.bare, capture_output=True)
        return r.returncode == 0

    def _new_pr(self, head, base, title, body, labels):
        number = len(self.prs) + 1
        pr = {"number": number, "head": head, "base": base, "title": title,
              "body": body, "labels": list(labels), "state": "open",
              "merged": False}
        self.prs.append(pr)
        return pr

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, self.prefix)

    def web_url(self, pr):
        p, n = pr["number"], self.name
        return {
            "github": "https://github.test/%s/%s/pull/%d" % (self.owner, n, p),
            "gitlab": "https://gitlab.test/%s/%s/-/merge_requests/%d" % (
                self.owner, n, p),
            "gitea": "https://gitea.test/%s/%s/pulls/%d" % (self.owner, n, p),
            "bitbucket": "https://bitbucket.test/%s/%s/pull-requests/%d" % (
                self.owner, n, p),
        }[self.provider]

    def render(self, pr):
        u = self.web_url(pr)
        if self.provider in ("github", "gitea"):
            return {"number": pr["number"], "id": 1000 + pr["number"],
                    "html_url": u, "state": pr["state"],
                    "merged": pr["merged"],
                    "merged_at": "2026-12-01T10:00:00Z" if pr["merged"]
                    else None,
                    "title": pr["title"], "body": pr["body"],
                    "head": {"ref": pr["head"], "label": "%s:%s" % (
                        self.owner, pr["head"])},
                    "base": {"ref": pr["base"]},
                    "labels": [{"name": x} for x in pr["labels"]]}
        if self.provider == "gitlab":
            return {"id": 5000 + pr["number"], "iid": pr["number"],
                    "web_url": u, "state": self.state_name(pr),
                    "title": pr["title"],
                    "description": pr["body"], "source_branch": pr["head"],
                    "target_branch": pr["base"], "labels": pr["labels"]}
        return {"type": "pullrequest", "id": pr["number"],
                "title": pr["title"], "description": pr["body"],
                "state": self.state_name(pr),
                "source": {"branch": {"name": pr["head"]}},
                "destination": {"branch": {"name": pr["base"]}},
                "links": {"html": {"href": u}}}

    def state_name(self, pr):
        """The host's word for a PR's state, as its list filter takes."""
        if pr["state"] == "open":
            return {"gitlab": "opened", "bitbucket": "OPEN"}.get(
                self.provider, "open")
        if self.provider == "gitlab":
            return "merged" if pr["merged"] else "closed"
        if self.provider == "bitbucket":
            return "MERGED" if pr["merged"] else "DECLINED"
        return "closed"

    def error(self, status, message):
        if self.provider == "bitbucket":
            return status, {}, {"type": "error", "error": {"message": message}}
        if self.provider == "gitlab":
            return status, {}, {"message": message}
        return status, {}, {"message": message,
                            "documentation_url": "https://docs.test/rest"}

    # -- dispatch -------------------------------------------------------
    def auth_ok(self, headers):
        want = {"github": ("Authorization", "Bearer " + self.token),
                "gitlab": ("PRIVATE-TOKEN", self.token),
                "gitea": ("Authorization", "token " + self.token),
                "bitbucket": ("Authorization", "Bearer " + self.token)}
        k, v = want[self.provider]
        return headers.get(k) == v

    def repo_base(self):
        if self.provider == "gitlab":
            return "%s/projects/%s" % (self.prefix, urllib.parse.quote(
                "%s/%s" % (self.owner, self.name), safe=""))
        col = "repositories" if self.provider == "bitbucket" else "repos"
        return "%s/%s/%s/%s" % (self.prefix, col, self.owner, self.name)

    def handle(self, method, rawpath, headers, body):
        path, _, qs = rawpath.partition("?")
        q = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))
        if self.script:
            return self.script.pop(0)
        if not self.auth_ok(headers):
            msg = {"github": "Bad credentials", "gitlab": "401 Unauthorized",
                   "gitea": "token is required",
                   "bitbucket": "Access token expired or invalid."}
            return self.error(401, msg[self.provider])
        base = self.repo_base()
        # GitLab's project id arrives encoded; compare it so.
        if not path.startswith(base + "/"):
            return self.error(404, "Not Found" if self.provider != "gitlab"
                              else "404 Project Not Found")
        rest = path[len(base) + 1:]
        coll = {"github": "pulls", "gitea": "pulls",
                "gitlab": "merge_requests",
                "bitbucket": "pullrequests"}[self.provider]
        parts = rest.split("/")
        if (method == "POST" and self.provider != "bitbucket" and
                len(parts) == 2 and parts[0] == "statuses"):
            return self.status(parts[1], body)
        if (method == "POST" and self.provider == "bitbucket" and
                len(parts) == 4 and parts[0] == "commit" and
                parts[2:] == ["statuses", "build"]):
            return self.status(parts[1], body)
        if rest == coll and method == "GET":
            return self.list(q, rawpath)
        if rest == coll and method == "POST":
            return self.create(body)
        if len(parts) == 2 and parts[0] == coll and parts[1].isdigit():
            want = {"github": "PATCH", "gitea": "PATCH", "gitlab": "PUT",
                    "bitbucket": "PUT"}[self.provider]
            if method != want:
                return self.error(405, "Method Not Allowed")
            return self.update(int(parts[1]), body)
        if (len(parts) == 3 and parts[0] == coll and parts[2] == "decline"
                and method == "POST" and self.provider == "bitbucket"):
            prs = [x for x in self.prs if x["number"] == int(parts[1])]
            if not prs or prs[0]["state"] != "open":
                return self.error(404 if not prs else 400,
                                  "Pull request not found or not open")
            prs[0]["state"] = "closed"
            return 200, {}, self.render(prs[0])
        if (len(parts) == 3 and parts[0] == "issues" and parts[2] == "labels"
                and method == "POST" and self.provider in ("github", "gitea")):
            return self.add_labels(int(parts[1]), body)
        return self.error(404, "Not Found")

    def list(self, q, rawpath):
        p = self.provider
        items = [x for x in self.prs]
        state = q.get("state", {"github": "open", "gitea": "open",
                                "gitlab": "all", "bitbucket": "OPEN"}[p])
        if state != "all":
            items = [x for x in items if self.state_name(x) == state]
        if p == "github" and "head" in q:
            owner, _, ref = q["head"].partition(":")
            items = [x for x in items if owner == self.owner and
                     x["head"] == ref]
        if p == "gitlab" and "source_branch" in q:
            items = [x for x in items if x["head"] == q["source_branch"]]
        if p == "bitbucket" and "q" in q:
            pre = 'source.branch.name="'
            if not (q["q"].startswith(pre) and q["q"].endswith('"')):
                return self.error(400, "Invalid BBQL query")
            items = [x for x in items if x["head"] == q["q"][len(pre):-1]]
        size_key = {"github": "per_page", "gitlab": "per_page",
                    "gitea": "limit", "bitbucket": "pagelen"}[p]
        size = min(int(q.get(size_key, PAGE_DEFAULT[p])), PAGE_MAX[p])
        page = int(q.get("page", "1"))
        chunk = items[(page - 1) * size:page * size]
        more = page * size < len(items)
        nq = dict(q, page=str(page + 1))
        nurl = "http://127.0.0.1:%d%s?%s" % (
            self.port, rawpath.partition("?")[0], urllib.parse.urlencode(nq))
        out = [self.render(x) for x in chunk]
        hdrs = {}
        if p == "bitbucket":
            doc = {"values": out, "page": page, "pagelen": size,
                   "size": len(items)}
            if more:
                doc["next"] = nurl
            return 200, hdrs, doc
        if more:
            hdrs["Link"] = '<%s>; rel="next"' % nurl
            if p == "gitlab":
                hdrs["X-Next-Page"] = str(page + 1)
        if p == "gitea":
            hdrs["X-Total-Count"] = str(len(items))
        return 200, hdrs, out

    def create(self, body):
        p = self.provider
        if not isinstance(body, dict):
            return self.error(400, "Problems parsing JSON")
        if p == "bitbucket":
            head = ((body.get("source") or {}).get("branch") or {}).get("name")
            base = ((body.get("destination") or {}).get("branch")
                    or {}).get("name")
            text = body.get("description", "")
        elif p == "gitlab":
            head, base = body.get("source_branch"), body.get("target_branch")
            text = body.get("description", "")
        else:
            head, base = body.get("head"), body.get("base")
            text = body.get("body", "")
        title = body.get("title")
        if not title or not head or (not base and p != "bitbucket"):
            if p == "bitbucket":
                return self.error(400, "title: This field is required.")
            if p == "gitlab":
                return 400, {}, {"message": {"title": ["can't be blank"]}}
            return 422, {}, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "missing_field"}]}
        base = base or "main"
        if p == "github" and ":" in head:
            head = head.partition(":")[2]
        if not self.branch_exists(head) or not self.branch_exists(base):
            if p == "github":
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "field": "head",
                     "code": "invalid"}]}
            if p == "gitlab":
                return 422, {}, {"message": [
                    "Source branch \"%s\" does not exist" % head]}
            if p == "gitea":
                return self.error(404, "The target couldn't be found.")
            return self.error(400, "source: branch not found: %s" % head)
        dup = self.open_prs(head)
        if dup:
            if p == "github":
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "code": "custom",
                     "message": "A pull request already exists for %s:%s."
                     % (self.owner, head)}]}
            if p == "gitlab":
                return 409, {}, {"message": [
                    "Another open merge request already exists for this "
                    "source branch: !%d" % dup[0]["number"]]}
            if p == "gitea":
                return self.error(409, "pull request already exists for "
                                  "these targets")
            return self.error(400, "There are already open pull requests "
                              "from this branch")
        labels = []
        if p == "gitlab" and body.get("labels"):
            labels = body["labels"].split(",")
        pr = self._new_pr(head, base, title, text, labels)
        return 201, {}, self.render(pr)

    def update(self, number, body):
        p = self.provider
        prs = [x for x in self.prs if x["number"] == number]
        if not prs:
            return self.error(404, "Not Found")
        pr = prs[0]
        if not isinstance(body, dict):
            return self.error(400, "Problems parsing JSON")
        if "title" in body:
            pr["title"] = body["title"]
        # Closing: GitHub and Gitea "state", GitLab "state_event".
        if body.get("state") == "closed" and p in ("github", "gitea"):
            pr["state"] = "closed"
        if body.get("state_event") == "close" and p == "gitlab":
            pr["state"] = "closed"
        key = "description" if p in ("gitlab", "bitbucket") else "body"
        if key in body:
            pr["body"] = body[key]
        if p == "gitlab":
            if "labels" in body:
                pr["labels"] = [x for x in body["labels"].split(",") if x]
            for x in (body.get("add_labels") or "").split(","):
                if x and x not in pr["labels"]:
                    pr["labels"].append(x)
        return (201 if p == "gitea" else 200), {}, self.render(pr)

    STATES = {"github": ("pending", "success", "failure", "error"),
              "gitlab": ("pending", "running", "success", "failed",
                         "canceled"),
              "gitea": ("pending", "success", "error", "failure",
                        "warning"),
              "bitbucket": ("INPROGRESS", "SUCCESSFUL", "FAILED",
                            "STOPPED")}

    def status(self, sha, body):
        """A commit status, checked as the host documents its fields."""
        p = self.provider
        if not isinstance(body, dict):
            return self.error(400, "Problems parsing JSON")
        state = body.get("state")
        bad = None
        if state not in self.STATES[p]:
            bad = "state is missing or not one of %s" % (
                ", ".join(self.STATES[p]))
        desc = body.get("description")
        if desc is not None and not isinstance(desc, str):
            bad = "description must be a string"
        if p == "github" and desc is not None and len(desc) > 140:
            bad = "description is too long (maximum is 140 characters)"
        if p == "bitbucket":
            key = body.get("key")
            if not isinstance(key, str) or not key:
                bad = "key: This field is required."
            elif len(key) > 40:
                bad = "key: Ensure this value has at most 40 characters"
            if not isinstance(body.get("url"), str) or not body["url"]:
                bad = "url: This field is required."
            context, target = key, body.get("url")
        elif p == "gitlab":
            context = body.get("name") or body.get("context") or "default"
            target = body.get("target_url")
        else:
            context = body.get("context") or "default"
            target = body.get("target_url")
        if bad is not None:
            if p == "github":
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "Status", "code": "invalid",
                     "message": bad}]}
            if p == "gitea":
                return 422, {}, {"message": bad}
            return self.error(400, bad)
        if not self.commit_exists(sha):
            if p == "github":
                return 422, {}, {"message": "No commit found for SHA: " +
                                 sha}
            return self.error(404, "404 Commit Not Found"
                              if p == "gitlab" else "commit not found")
        st = {"sha": sha, "state": state, "context": context,
              "target_url": target, "description": desc}
        self.statuses.append(st)
        n = len(self.statuses)
        if p == "bitbucket":
            return 201, {}, {"type": "build", "key": context, "state": state,
                             "url": target, "name": body.get("name"),
                             "description": desc or ""}
        if p == "gitlab":
            return 201, {}, {"id": n, "sha": sha, "status": state,
                             "name": context, "target_url": target,
                             "description": desc}
        return 201, {}, {"id": n, "state": state, "context": context,
                         "target_url": target, "description": desc,
                         "url": "https://api.test/statuses/%d" % n}

    def add_labels(self, number, body):
        prs = [x for x in self.prs if x["number"] == number]
        if not prs:
            return self.error(404, "Not Found")
        if not isinstance(body, dict) or not isinstance(
                body.get("labels"), list):
            return 422, {}, {"message": "Invalid request"}
        for x in body["labels"]:
            if not isinstance(x, str):
                return 422, {}, {"message": "labels must be names"}
            if x not in prs[0]["labels"]:
                prs[0]["labels"].append(x)
        return 200, {}, [{"name": x} for x in prs[0]["labels"]]

    # -- server ---------------------------------------------------------
    def start(self):
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = "invalid"
                headers = {k: v for k, v in self.headers.items()}
                with api.lock:
                    api.requests.append({
                        "method": self.command, "path": self.path,
                        "headers": headers, "body": body})
                    status, hdrs, doc = api.handle(self.command, self.path,
                                                   headers, body)
                out = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
