#!/usr/bin/python3
"""Loopback stand-ins for the incident and chat services, written to their
public API documentation, for the notifier tests:

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

  teams      a Workflows webhook: {"type": "message", "attachments":
             [{"contentType": "application/vnd.microsoft.card.adaptive",
             "content": an AdaptiveCard}]}, the card's elements typed
             (TextBlock text, FactSet facts of title/value), at most 28 KiB;
             202.
  discord    a channel webhook: content or embeds (at most 10; title 256,
             description 4096, at most 25 fields of name 256 / value 1024,
             footer 2048, 6000 in all, color 0..0xffffff); 204.  Its 429
             names the wait in the body only ({"retry_after": seconds}).
  googlechat an incoming webhook: Content-Type application/json;
             charset=UTF-8, text or cardsV2 (cardId, card with sections of
             widgets, each one of textParagraph, decoratedText,
             buttonList), at most 32000 bytes; 200 with the message.
  mattermost an incoming webhook: text or attachments (fields of title and
             value); 200 "ok".
  telegram   Bot API: POST /bot<--key>/sendMessage, chat_id, text of 1..4096
             characters after parsing, parse_mode HTML: only Telegram's
             tags, balanced, and the entities &lt; &gt; &amp; &quot;; 200
             {"ok": true, "result": message}, 400 "can't parse entities",
             429 with parameters.retry_after.

Each keeps the state the service would: open incidents (pagerduty, by
dedup_key) or open alerts (opsgenie, by alias; a create with the alias of
an open alert raises its count).  GET /_state returns it; every request is
recorded (method, path, headers, body, "errors", "status") in --record
FILE, one JSON object per line.  --script "429,500" (or POST /_script)
answers the next requests with those statuses first (429 with the
service's own body; 400 with its answer to a refused payload, Opsgenie's
422).  The first line on stdout is "READY <port>"; it exits
when stdin closes.

  incident_sink.py MODE --record F [--key K] [--script ...]
"""
import argparse
import datetime
import json
import os
import re
import signal
import sys
import threading
import time
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


def is_url(v):
    return isinstance(v, str) and re.match(r"^https?://[^\s<>\"]+$", v)


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
        self.messages = []      # chat services: what was posted

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
            return refused("pagerduty", errs)
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
                return refused("opsgenie", errs)
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
                return refused("opsgenie", errs)
            ident = unquote(parts[3])
            if idtype == "alias" and ident in self.alerts:
                self.alerts[ident]["status"] = "closed"
            # Asynchronous: an unknown alert is only seen in the request
            # status; the answer is 202 either way.
            return 202, ok, []
        return 404, {"message": "not found"}, ["no such endpoint"]


    # ---- chat services

    def json_body(self, headers, raw, ctype="application/json"):
        if not headers.get("content-type", "").startswith(ctype):
            return None, ["Content-Type %r, want %s" % (
                headers.get("content-type"), ctype)]
        try:
            return json.loads(raw), []
        except ValueError:
            return None, ["body is not JSON"]

    def teams(self, method, path, headers, raw):
        doc, errs = self.json_body(headers, raw)
        if not errs:
            errs = check_teams(doc, raw)
        if method != "POST":
            errs.append("method %s" % method)
        if errs:
            return refused("teams", errs)
        self.messages.append(doc)
        return 202, None, []

    def discord(self, method, path, headers, raw):
        doc, errs = self.json_body(headers, raw)
        if not errs:
            errs = check_discord(doc)
        if errs:
            return refused("discord", errs)
        self.messages.append(doc)
        return 204, None, []

    def googlechat(self, method, path, headers, raw):
        doc, errs = self.json_body(headers, raw,
                                   "application/json; charset=UTF-8")
        if not errs:
            errs = check_googlechat(doc, raw, urlsplit(path).query)
        if errs:
            return refused("googlechat", errs)
        self.messages.append(doc)
        return 200, {"name": "spaces/AAA/messages/%d" % len(self.messages),
                     "text": doc.get("text", "")}, []

    def mattermost(self, method, path, headers, raw):
        doc, errs = self.json_body(headers, raw)
        if not errs:
            errs = check_mattermost(doc)
        if errs:
            return refused("mattermost", errs)
        self.messages.append(doc)
        return 200, "ok", []

    def telegram(self, method, path, headers, raw):
        if method != "POST" or path != "/bot%s/sendMessage" % self.args.key:
            return 404, {"ok": False, "error_code": 404,
                         "description": "Not Found"}, ["path %s" % path]
        doc, errs = self.json_body(headers, raw)
        if not errs:
            errs = check_telegram(doc)
        if errs:
            return refused("telegram", errs)
        self.messages.append(doc)
        return 200, {"ok": True, "result": {
            "message_id": len(self.messages), "date": 0,
            "chat": {"id": doc["chat_id"]}, "text": doc["text"]}}, []


def refused(mode, errs):
    """(status, body, errs): the service's answer to a payload it refuses
    (Opsgenie: 422, the others 400), with its own error body."""
    msg = "; ".join(errs)
    return {
        "pagerduty": (400, {"status": "invalid event",
                            "message": "Event object is invalid",
                            "errors": errs}),
        "opsgenie": (422, {"message": msg, "took": 0.0,
                           "requestId": str(uuid.uuid4())}),
        "teams": (400, {"error": {"code": "InvalidRequestContent",
                                  "message": msg}}),
        "discord": (400, {"code": 50035, "message": "Invalid Form Body",
                          "errors": errs}),
        "googlechat": (400, {"error": {"code": 400, "message": msg,
                                       "status": "INVALID_ARGUMENT"}}),
        "mattermost": (400, {"id": "web.incoming_webhook.text.app_error",
                             "message": msg}),
        "telegram": (400, {"ok": False, "error_code": 400,
                           "description": "Bad Request: " + msg}),
    }[mode] + (errs,)


RATE_LIMITED = {
    "pagerduty": ({"status": "throttle event", "message": "Requests for "
                   "this service are arriving too quickly.  Please retry "
                   "later."}, {}),
    "opsgenie": ({"message": "You are making too many requests!",
                  "took": 0.0}, {}),
    "teams": ({"error": {"code": "TooManyRequests"}}, {"Retry-After": "1"}),
    "discord": ({"message": "You are being rate limited.",
                 "retry_after": 3.2, "global": False}, {}),
    "googlechat": ({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}},
                   {}),
    "mattermost": ({"message": "too many requests"}, {"Retry-After": "1"}),
    "telegram": ({"ok": False, "error_code": 429,
                  "description": "Too Many Requests: retry after 3",
                  "parameters": {"retry_after": 3}}, {}),
}


def check_teams(doc, raw):
    errs = []
    if len(raw) > 28 * 1024:
        errs.append("message over 28 KiB")
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return errs + ['type must be "message"']
    atts = doc.get("attachments")
    if not isinstance(atts, list) or not atts:
        return errs + ["attachments missing"]
    for i, a in enumerate(atts):
        if a.get("contentType") != "application/vnd.microsoft.card.adaptive":
            errs.append("attachments[%d].contentType" % i)
        c = a.get("content")
        if not isinstance(c, dict) or c.get("type") != "AdaptiveCard" or \
                not isinstance(c.get("version"), str):
            errs.append("attachments[%d].content is no AdaptiveCard" % i)
            continue
        # Teams renders Adaptive Cards up to 1.5.
        if not re.match(r"^1\.[0-5]$", c["version"]):
            errs.append("attachments[%d]: version %r not 1.0..1.5" % (
                i, c["version"]))
        body = c.get("body")
        if not isinstance(body, list) or not body:
            errs.append("attachments[%d]: empty card body" % i)
            body = []
        for j, el in enumerate(body):
            t = el.get("type")
            if t == "TextBlock":
                if not isinstance(el.get("text"), str) or not el["text"]:
                    errs.append("body[%d]: TextBlock without text" % j)
            elif t == "FactSet":
                facts = el.get("facts")
                if not isinstance(facts, list) or not facts:
                    errs.append("body[%d]: FactSet without facts" % j)
                    continue
                for f in facts:
                    if not isinstance(f.get("title"), str) or \
                            not isinstance(f.get("value"), str):
                        errs.append("body[%d]: fact without title/value" % j)
            else:
                errs.append("body[%d]: unexpected element %r" % (j, t))
        for j, ac in enumerate(c.get("actions", [])):
            if ac.get("type") != "Action.OpenUrl" or not is_url(ac.get("url")):
                errs.append("actions[%d]" % j)
    return errs


def check_discord(doc):
    if not isinstance(doc, dict):
        return ["not an object"]
    embeds = doc.get("embeds", [])
    content = doc.get("content")
    if not content and not embeds:
        return ["Cannot send an empty message"]
    errs = []
    if content is not None and (not isinstance(content, str) or
                                len(content) > 2000):
        errs.append("content over 2000 characters")
    if not isinstance(embeds, list) or len(embeds) > 10:
        return errs + ["more than 10 embeds"]
    total = 0   # the 6000 characters are of all the message's embeds
    for i, e in enumerate(embeds):
        for k, lim in (("title", 256), ("description", 4096)):
            if k in e:
                if not isinstance(e[k], str) or len(e[k]) > lim:
                    errs.append("embeds[%d].%s over %d" % (i, k, lim))
                else:
                    total += len(e[k])
        if "url" in e and not is_url(e["url"]):
            errs.append("embeds[%d].url is not a URL" % i)
        fields = e.get("fields", [])
        if len(fields) > 25:
            errs.append("embeds[%d]: more than 25 fields" % i)
        for j, f in enumerate(fields):
            n, v = f.get("name"), f.get("value")
            if not isinstance(n, str) or not n or len(n) > 256 or \
                    not isinstance(v, str) or not v or len(v) > 1024 or \
                    not isinstance(f.get("inline", False), bool):
                errs.append("embeds[%d].fields[%d]" % (i, j))
            else:
                total += len(n) + len(v)
        ft = e.get("footer", {}).get("text", "")
        if len(ft) > 2048:
            errs.append("embeds[%d].footer" % i)
        total += len(ft)
        c = e.get("color", 0)
        if not isinstance(c, int) or not 0 <= c <= 0xffffff:
            errs.append("embeds[%d].color" % i)
        if "timestamp" in e and not iso8601_ok(e["timestamp"]):
            errs.append("embeds[%d].timestamp" % i)
    if total > 6000:
        errs.append("embeds: %d characters in all, over 6000" % total)
    return errs


GCHAT_WIDGETS = ("textParagraph", "decoratedText", "buttonList")


def check_googlechat(doc, raw, query=""):
    errs = []
    q = parse_qs(query)
    if "key" not in q or "token" not in q:
        errs.append("the webhook URL's key and token are missing")
    if len(raw) > 32000:
        return errs + ["message over 32000 bytes"]
    if not isinstance(doc, dict) or not (doc.get("text") or
                                          doc.get("cardsV2")):
        return errs + ["Message cannot be empty"]
    if "text" in doc and (not isinstance(doc["text"], str) or
                          len(doc["text"]) > 4096):
        errs.append("text over 4096 characters")
    for i, c in enumerate(doc.get("cardsV2", [])):
        if not isinstance(c.get("cardId"), str) or \
                not isinstance(c.get("card"), dict):
            errs.append("cardsV2[%d]: cardId and card required" % i)
            continue
        h = c["card"].get("header")
        if h is not None and not (isinstance(h, dict) and
                                  isinstance(h.get("title"), str) and
                                  h["title"]):
            errs.append("cardsV2[%d]: header without title" % i)
        secs = c["card"].get("sections")
        if not isinstance(secs, list) or not secs:
            errs.append("cardsV2[%d]: no sections" % i)
            continue
        for j, sec in enumerate(secs):
            if not sec.get("widgets"):
                errs.append("section %d: no widgets" % j)
            for k, w in enumerate(sec.get("widgets", [])):
                keys = [x for x in w if x in GCHAT_WIDGETS]
                if len(keys) != 1 or len(w) != 1:
                    errs.append("widget %d.%d: one of %s" % (j, k,
                                                             GCHAT_WIDGETS))
                    continue
                v = w[keys[0]]
                if keys[0] in ("textParagraph", "decoratedText") and \
                        (not isinstance(v.get("text"), str) or
                         tg_html_errors(v["text"])):
                    errs.append("widget %d.%d: text (Google Chat HTML)" %
                                (j, k))
                if keys[0] == "buttonList":
                    for b in v.get("buttons", []):
                        if not b.get("text") or not is_url(
                                b.get("onClick", {}).get("openLink", {})
                                .get("url")):
                            errs.append("widget %d.%d: button" % (j, k))
    return errs


MM_COLOR = re.compile(r"^(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}|good|warning|"
                      r"danger)$")


def check_mattermost(doc):
    if not isinstance(doc, dict) or not (doc.get("text") or
                                          doc.get("attachments")):
        return ["text or attachments required"]
    errs = []
    if "text" in doc and (not isinstance(doc["text"], str) or
                          len(doc["text"]) > 16383):
        errs.append("text over 16383 characters")
    for i, a in enumerate(doc.get("attachments", [])):
        for k in ("fallback", "title", "text", "pretext", "footer"):
            if k in a and not isinstance(a[k], str):
                errs.append("attachments[%d].%s must be a string" % (i, k))
        if "color" in a and not (isinstance(a["color"], str) and
                                 MM_COLOR.match(a["color"])):
            errs.append("attachments[%d].color" % i)
        if "title_link" in a and not is_url(a["title_link"]):
            errs.append("attachments[%d].title_link" % i)
        for f in a.get("fields", []):
            if not isinstance(f.get("title"), str) or \
                    not isinstance(f.get("value"), str) or \
                    not isinstance(f.get("short", False), bool):
                errs.append("attachments[%d]: field title/value/short" % i)
    return errs


TG_TAGS = ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a",
           "code", "pre", "tg-spoiler", "blockquote", "span")


def tg_html(text):
    """(errors, shown text) of Telegram's HTML parse mode (Google Chat's
    card text takes the same subset): only its tags, balanced, and the
    entities &lt; &gt; &amp; &quot; or numeric."""
    stack, plain, pos = [], [], 0
    for m in re.finditer(r"<(/?)([a-z-]+)((?:\s[^<>]*)?)>|<|>|&(#?\w*;?)",
                         text):
        plain.append(text[pos:m.start()])
        pos = m.end()
        tok = m.group(0)
        if tok in ("<", ">"):
            return ["can't parse entities: unexpected %r" % tok], ""
        if tok.startswith("&"):
            ent = m.group(4)
            if ent not in ("lt;", "gt;", "amp;", "quot;") and \
                    not re.match(r"#(\d+|x[0-9a-fA-F]+);$", ent or ""):
                return ["can't parse entities: bad entity %r" % tok], ""
            plain.append("x")
            continue
        close, name = m.group(1), m.group(2)
        if name not in TG_TAGS:
            return ["can't parse entities: unsupported tag %r" % name], ""
        if close:
            if not stack or stack.pop() != name:
                return ["can't parse entities: unmatched end tag %r" %
                        name], ""
        else:
            if name == "a" and not re.match(r'\s+href="[^"]*"$',
                                            m.group(3)):
                return ["can't parse entities: <a> without href"], ""
            stack.append(name)
    plain.append(text[pos:])
    if stack:
        return ["can't parse entities: unclosed %r" % stack[-1]], ""
    return [], "".join(plain)


def tg_html_errors(text):
    return tg_html(text)[0]


def check_telegram(doc):
    if not isinstance(doc, dict):
        return ["not an object"]
    if doc.get("chat_id") in (None, ""):
        return ["chat_id is empty"]
    text = doc.get("text")
    if not isinstance(text, str) or not text:
        return ["message text is empty"]
    if doc.get("parse_mode") != "HTML":
        shown = text
    else:
        errs, shown = tg_html(text)
        if errs:
            return errs
    # Telegram counts the shown text in UTF-16 code units.
    if len(shown.encode("utf-16-le")) // 2 > 4096:
        return ["message is too long"]
    return []


def make_handler(svc):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def reply(self, code, obj, extra=None):
            body = b"" if obj is None else obj.encode() \
                if isinstance(obj, str) else json.dumps(obj).encode()
            self.send_response(code)
            if code != 204:
                self.send_header("Content-Type", "text/plain"
                                 if isinstance(obj, str) else
                                 "application/json")
                self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if code != 204:
                self.wfile.write(body)

        def handle_any(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n)
            if self.path == "/_state":
                with LOCK:
                    self.reply(200, {"incidents": svc.incidents,
                                     "alerts": svc.alerts,
                                     "messages": svc.messages})
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
                extra = None
                if scripted is not None:
                    code, errs = scripted, []
                    if scripted == 429:
                        body, extra = RATE_LIMITED[svc.args.mode]
                    elif scripted in (400, 422):
                        code, body, _ = refused(svc.args.mode,
                                                ["scripted bad payload"])
                    else:
                        body = {"error": scripted}
                else:
                    code, body, errs = getattr(svc, svc.args.mode)(
                        self.command, self.path, headers, raw)
                svc.record({"method": self.command, "path": self.path,
                            "headers": headers,
                            "body": raw.decode("utf-8", "replace"),
                            "errors": errs, "status": code,
                            "time": time.time()})
            self.reply(code, body, extra)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=tuple(RATE_LIMITED))
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
