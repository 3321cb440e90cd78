#!/usr/bin/python3
"""Loopback stand-ins for the incident services, written to their public
API documentation, for the incident notifier tests:

  pagerduty  Events API v2: POST /v2/enqueue, application/json; an event
             needs routing_key (32 characters), event_action (trigger,
             acknowledge, resolve) and, for trigger, payload.summary (at
             most 1024 characters), payload.source and payload.severity
             (critical, error, warning, info); dedup_key at most 255
             characters, required to acknowledge or resolve; timestamp
             ISO 8601; a body at most 512 KiB.  Answers 202 {"status":
             "success", "message": "Event processed", "dedup_key"}, 400
             {"status": "invalid event", "message": "Event object is
             invalid", "errors": [...]}.
  opsgenie   Alert API: header "Authorization: GenieKey <key>" (401
             otherwise); POST /v2/alerts creates (message required, at most
             130 characters; alias 512; description 15000; entity 512;
             tags at most 20 of 50 characters; details string values, 8000
             characters together; priority P1..P5); POST
             /v2/alerts/<id>/close?identifierType=alias|id|tiny closes
             (user 100, source 100, note 25000).  Answers 202 {"result":
             "Request will be processed", "took", "requestId"}, 422 for an
             invalid request.

Each keeps the state the service would: open incidents (pagerduty, by
dedup_key) or open alerts (opsgenie, by alias; a create with the alias of
an open alert raises its count).  GET /_state returns it; every request is
recorded (method, path, headers, body, "errors", "status") in --record
FILE, one JSON object per line.  --script "429,500" (or POST /_script)
answers the next requests with those statuses first (429 with the
service's own body).  The first line on stdout is "READY <port>"; it exits
when stdin closes.

  incident_sink.py pagerduty|opsgenie --record F [--key K] [--script ...]
"""
import argparse
import datetime
import json
import os
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOCK = threading.Lock()
PD_SEVERITIES = ("critical", "error", "warning", "info")


def iso8601_ok(s):
    try:
        datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return True
    except (ValueError, AttributeError):
        return False


def check_pagerduty(doc, raw):
    errs = []
    if len(raw) > 512 * 1024:
        return ["body over 512 KiB"]
    if not isinstance(doc, dict):
        return ["event is not a JSON object"]
    rk = doc.get("routing_key")
    if not isinstance(rk, str) or len(rk) != 32:
        errs.append("routing_key must be a 32 character string")
    action = doc.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errs.append("event_action must be trigger, acknowledge or resolve")
    dk = doc.get("dedup_key")
    if dk is not None and (not isinstance(dk, str) or not dk or
                           len(dk) > 255):
        errs.append("dedup_key must be a string of 1..255 characters")
    if action in ("acknowledge", "resolve") and dk is None:
        errs.append("dedup_key is required to %s" % action)
    if action == "trigger":
        pl = doc.get("payload")
        if not isinstance(pl, dict):
            errs.append("payload is required to trigger")
        else:
            s = pl.get("summary")
            if not isinstance(s, str) or not s or len(s) > 1024:
                errs.append("payload.summary must be 1..1024 characters")
            if not isinstance(pl.get("source"), str) or not pl["source"]:
                errs.append("payload.source is required")
            if pl.get("severity") not in PD_SEVERITIES:
                errs.append("payload.severity must be one of %s"
                            % ", ".join(PD_SEVERITIES))
            if "timestamp" in pl and not iso8601_ok(pl["timestamp"]):
                errs.append("payload.timestamp is not ISO 8601")
            for k in ("component", "group", "class"):
                if k in pl and not isinstance(pl[k], str):
                    errs.append("payload.%s must be a string" % k)
            if "custom_details" in pl and \
                    not isinstance(pl["custom_details"], dict):
                errs.append("payload.custom_details must be an object")
        for i, ln in enumerate(doc.get("links", [])):
            if not isinstance(ln, dict) or not isinstance(ln.get("href"),
                                                          str):
                errs.append("links[%d].href is required" % i)
    return errs


def check_opsgenie_create(doc):
    if not isinstance(doc, dict):
        return ["body is not a JSON object"]
    errs = []
    m = doc.get("message")
    if not isinstance(m, str) or not m.strip():
        errs.append("Message can not be empty.")
    elif len(m) > 130:
        errs.append("message is over 130 characters")
    for k, lim in (("alias", 512), ("description", 15000), ("entity", 512),
                   ("source", 100), ("user", 100), ("note", 25000)):
        if k in doc and (not isinstance(doc[k], str) or len(doc[k]) > lim):
            errs.append("%s must be a string of at most %d characters"
                        % (k, lim))
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 20 or any(
            not isinstance(t, str) or len(t) > 50 for t in tags):
        errs.append("tags: at most 20 strings of 50 characters")
    det = doc.get("details", {})
    if not isinstance(det, dict) or any(not isinstance(v, str)
                                        for v in det.values()):
        errs.append("details values must be strings")
    elif sum(len(k) + len(v) for k, v in det.items()) > 8000:
        errs.append("details over 8000 characters")
    if "priority" in doc and doc["priority"] not in ("P1", "P2", "P3", "P4",
                                                     "P5"):
        errs.append("priority must be P1..P5")
    return errs


def check_opsgenie_close(doc):
    if doc is None:
        return []
    if not isinstance(doc, dict):
        return ["body is not a JSON object"]
    errs = []
    for k, lim in (("user", 100), ("source", 100), ("note", 25000)):
        if k in doc and (not isinstance(doc[k], str) or len(doc[k]) > lim):
            errs.append("%s must be a string of at most %d characters"
                        % (k, lim))
    return errs


class Service:
    def __init__(self, args):
        self.args = args
        self.script = [int(x) for x in (args.script or "").split(",") if x]
        self.incidents = {}     # pagerduty: dedup_key -> state
        self.alerts = {}        # opsgenie: alias -> state

    def record(self, rec):
        with open(self.args.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    def pagerduty(self, method, path, headers, raw):
        if method != "POST" or urlsplit(path).path != "/v2/enqueue":
            return 404, {"status": "not found"}, []
        ctype = headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            return 400, {"status": "invalid event",
                         "message": "Content-Type must be JSON"}, \
                ["content type %r" % ctype]
        try:
            doc = json.loads(raw)
        except ValueError:
            return 400, {"status": "invalid event",
                         "message": "Event object is invalid"}, ["not JSON"]
        errs = check_pagerduty(doc, raw)
        if errs:
            return 400, {"status": "invalid event",
                         "message": "Event object is invalid",
                         "errors": errs}, errs
        dk = doc.get("dedup_key") or uuid.uuid4().hex
        inc = self.incidents.get(dk)
        if doc["event_action"] == "trigger":
            if inc is None or inc["status"] == "resolved":
                inc = self.incidents[dk] = {"status": "triggered",
                                            "events": 0}
            inc["events"] += 1
            inc["summary"] = doc["payload"]["summary"]
        elif inc is not None and doc["event_action"] == "resolve":
            inc["status"] = "resolved"
        return 202, {"status": "success", "message": "Event processed",
                     "dedup_key": dk}, []

    def opsgenie(self, method, path, headers, raw):
        if headers.get("authorization", "") != "GenieKey " + self.args.key:
            return 401, {"message": "Could not authenticate",
                         "took": 0.0, "requestId": str(uuid.uuid4())}, \
                ["bad Authorization"]
        u = urlsplit(path)
        parts = u.path.split("/")
        ok = {"result": "Request will be processed", "took": 0.01,
              "requestId": str(uuid.uuid4())}
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"message": "body is not JSON"}, ["not JSON"]
        if raw and not headers.get("content-type", "").startswith(
                "application/json"):
            return 415, {"message": "Unsupported Media Type"}, \
                ["content type"]
        if method == "POST" and u.path == "/v2/alerts":
            errs = check_opsgenie_create(doc)
            if errs:
                return 422, {"message": errs[0], "took": 0.0,
                             "requestId": ok["requestId"]}, errs
            alias = doc.get("alias") or str(uuid.uuid4())
            a = self.alerts.get(alias)
            if a is None or a["status"] == "closed":
                a = self.alerts[alias] = {"status": "open", "count": 0}
            a["count"] += 1
            a["message"] = doc["message"]
            return 202, ok, []
        if method == "POST" and len(parts) == 5 and parts[:3] == \
                ["", "v2", "alerts"] and parts[4] == "close":
            q = parse_qs(u.query)
            idtype = q.get("identifierType", ["id"])[0]
            if idtype not in ("id", "alias", "tiny"):
                return 422, {"message": "identifierType"}, ["identifierType"]
            errs = check_opsgenie_close(doc)
            if errs:
                return 422, {"message": errs[0]}, errs
            ident = unquote(parts[3])
            if idtype == "alias" and ident in self.alerts:
                self.alerts[ident]["status"] = "closed"
            # Asynchronous: an unknown alert is only seen in the request
            # status; the answer is 202 either way.
            return 202, ok, []
        return 404, {"message": "not found"}, ["no such endpoint"]


def make_handler(svc):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def reply(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n)
            if self.path == "/_state":
                with LOCK:
                    self.reply(200, {"incidents": svc.incidents,
                                     "alerts": svc.alerts})
                return
            if self.path == "/_script":
                with LOCK:
                    svc.script = [int(x) for x in raw.decode().split(",")
                                  if x]
                self.reply(200, {})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            with LOCK:
                scripted = svc.script.pop(0) if svc.script else None
                if scripted is not None:
                    code, errs = scripted, []
                    body = ({"status": "throttle event", "message":
                             "Requests for this service are arriving too "
                             "quickly.  Please retry later."}
                            if svc.args.mode == "pagerduty" else
                            {"message": "You are making too many requests!",
                             "took": 0.0, "requestId": str(uuid.uuid4())})
                else:
                    code, body, errs = getattr(svc, svc.args.mode)(
                        self.command, self.path, headers, raw)
                svc.record({"method": self.command, "path": self.path,
                            "headers": headers,
                            "body": raw.decode("utf-8", "replace"),
                            "errors": errs, "status": code})
            self.reply(code, body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("pagerduty", "opsgenie"))
    p.add_argument("--record", required=True)
    p.add_argument("--key", default="")
    p.add_argument("--script")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        os._exit(0)
    threading.Thread(target=watch_stdin, daemon=True).start()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port),
                              make_handler(Service(args)))
    print("READY %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
