#!/usr/bin/python3
"""Loopback receivers for alert tests: an HTTP sink (stands in for Slack and
for a generic webhook receiver) and an SMTP server (aiosmtpd).

Each records what it receives, one JSON object per line, in --record FILE,
after checking it the way the real receiver would:

  http: method, path, headers, body; "signature_ok" when --secret is given
        (X-Gitopsd-Signature-256 is sha256=<hex HMAC-SHA256 of the body>);
        "slack_ok"/"slack_error" for paths under /slack (Block Kit shape);
        "json_ok" when the body parses as JSON; "status" answered.
  smtp: envelope, parsed headers (Python's email package, decoded subject),
        body text, "crlf_ok", "defects", "tls" (STARTTLS was used),
        "auth" (login used).  Every AUTH command, answered or refused, also
        goes to RECORD.auth (mechanism, "tls"): a password sent in clear is
        seen even when the login fails.

--port binds a given port (a restarted receiver keeps its address).
Answers are scripted with --script "500,500,429:3" (one status per request,
":N" adds Retry-After: N, ":date+N" an HTTP-date N seconds ahead; 200 once the script is used up) or, while
running, POST /_script with the same text.  GET /_requests returns the
records as a JSON list.  The first line on stdout is "READY <port>".

  notify_sink.py http --record F [--secret S] [--script ...]
  notify_sink.py smtp --record F [--cert C --key K] [--require-starttls |
                      --implicit-tls]
                      [--login USER:PASS]
"""
import argparse
import asyncio
import email
import email.policy
import email.utils
import hashlib
import hmac
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def record(path, obj):
    with LOCK:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")
            f.flush()


def check_text_obj(o, where, errs, kinds=("plain_text", "mrkdwn")):
    if not isinstance(o, dict):
        errs.append("%s: not an object" % where)
        return
    if o.get("type") not in kinds:
        errs.append("%s: type %r not in %r" % (where, o.get("type"), kinds))
    if not isinstance(o.get("text"), str) or not o["text"]:
        errs.append("%s: empty text" % where)


def check_slack(doc):
    """Checks the shape Slack's incoming webhooks accept with Block Kit:
    a text fallback and blocks of header/section/context/divider/actions."""
    errs = []
    if not isinstance(doc, dict):
        return ["payload is not an object"]
    if not isinstance(doc.get("text"), str) or not doc["text"]:
        errs.append("text (fallback) missing")
    blocks = doc.get("blocks")
    if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
        return errs + ["blocks must be a list of 1..50"]
    for i, b in enumerate(blocks):
        w = "blocks[%d]" % i
        t = b.get("type") if isinstance(b, dict) else None
        if t == "header":
            check_text_obj(b.get("text"), w + ".text", errs, ("plain_text",))
            if isinstance(b.get("text"), dict) and \
                    len(b["text"].get("text", "")) > 150:
                errs.append(w + ": header text over 150 chars")
        elif t == "section":
            if "text" not in b and "fields" not in b:
                errs.append(w + ": section without text or fields")
            if "text" in b:
                check_text_obj(b["text"], w + ".text", errs)
                if len(b["text"].get("text", "")) > 3000:
                    errs.append(w + ": section text over 3000 chars")
            if "fields" in b:
                f = b["fields"]
                if not isinstance(f, list) or not f or len(f) > 10:
                    errs.append(w + ": fields must be a list of 1..10")
                else:
                    for j, x in enumerate(f):
                        check_text_obj(x, "%s.fields[%d]" % (w, j), errs)
                        if len(x.get("text", "")) > 2000:
                            errs.append(w + ": field over 2000 chars")
        elif t == "context":
            el = b.get("elements")
            if not isinstance(el, list) or not el or len(el) > 10:
                errs.append(w + ": context elements must be a list of 1..10")
            else:
                for j, x in enumerate(el):
                    check_text_obj(x, "%s.elements[%d]" % (w, j), errs)
        elif t in ("divider", "actions"):
            pass
        else:
            errs.append("%s: unknown block type %r" % (w, t))
    return errs


class Sink:
    def __init__(self, args):
        self.args = args
        self.script = self.parse_script(args.script or "")
        self.requests = []
        self.lock = threading.Lock()

    @staticmethod
    def parse_script(text):
        out = []
        for item in filter(None, (x.strip() for x in text.split(","))):
            code, _, ra = item.partition(":")
            out.append((int(code), ra or None))
        return out

    def next_answer(self):
        with self.lock:
            if self.script:
                return self.script.pop(0)
            return (200, None)


def make_handler(sink):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def reply(self, code, body=b"", ctype="text/plain", extra=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_requests":
                with sink.lock:
                    body = json.dumps(sink.requests).encode()
                self.reply(200, body, "application/json")
                return
            self.handle_hook()

        def do_POST(self):
            if self.path == "/_script":
                n = int(self.headers.get("Content-Length", "0"))
                text = self.rfile.read(n).decode()
                with sink.lock:
                    sink.script = Sink.parse_script(text)
                self.reply(200, b"ok")
                return
            self.handle_hook()

        def handle_hook(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n)
            code, retry_after = sink.next_answer()
            rec = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": raw.decode("utf-8", "replace"),
                "status": code,
            }
            try:
                doc = json.loads(raw)
                rec["json_ok"] = True
            except ValueError:
                doc = None
                rec["json_ok"] = False
            if sink.args.secret is not None:
                want = "sha256=" + hmac.new(sink.args.secret.encode(), raw,
                                            hashlib.sha256).hexdigest()
                got = self.headers.get("X-Gitopsd-Signature-256", "")
                rec["signature_ok"] = hmac.compare_digest(want, got)
            if self.path.startswith("/slack"):
                errs = check_slack(doc)
                rec["slack_ok"] = not errs
                rec["slack_error"] = "; ".join(errs)
            with sink.lock:
                sink.requests.append(rec)
            record(sink.args.record, rec)
            if retry_after and retry_after.startswith("date+"):
                # An HTTP-date that far ahead (the script splits on ","
                # and ":", so a date cannot be written in it).
                retry_after = email.utils.formatdate(
                    time.time() + int(retry_after[5:]), usegmt=True)
            extra = {"Retry-After": retry_after} if retry_after else None
            body = b"ok" if code == 200 else b"error %d" % code
            self.reply(code, body, extra=extra)

    return Handler


def run_http(args):
    sink = Sink(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(sink))
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


class MailHandler:
    def __init__(self, args):
        self.args = args

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        # Every line must end in CRLF on the wire (bare LF is a defect).
        lines = raw.split(b"\r\n")
        crlf_ok = all(b"\n" not in ln and b"\r" not in ln for ln in lines)
        body = msg.get_body(preferencelist=("plain",))
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg.get("From", "")),
            "to": [str(a.addr_spec) for a in msg.get("To").addresses]
            if msg.get("To") is not None else [],
            "subject": str(msg.get("Subject", "")),
            "subject_raw": msg.get("Subject").as_raw()
            if hasattr(msg.get("Subject", ""), "as_raw") else "",
            "date": str(msg.get("Date", "")),
            "date_ok": msg.get("Date") is not None and
            getattr(msg.get("Date"), "datetime", None) is not None,
            "message_id": str(msg.get("Message-ID", "")),
            "mime_version": str(msg.get("MIME-Version", "")),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "cte": str(msg.get("Content-Transfer-Encoding", "")),
            "body": body.get_content() if body is not None else "",
            "crlf_ok": crlf_ok,
            "defects": [type(d).__name__ for d in msg.defects] +
            [type(d).__name__ for h in msg.keys()
             for d in getattr(msg[h], "defects", [])],
            "tls": session.ssl is not None or bool(self.args.implicit_tls),
            "auth": session.authenticated,
            "max_line": max((len(ln) for ln in lines), default=0),
        }
        record(self.args.record, rec)
        return "250 Message accepted for delivery"


def run_smtp(args):
    from aiosmtpd.smtp import SMTP, AuthResult

    handler = MailHandler(args)
    ctx = None
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
    kw = {}
    if args.login:
        user, _, pw = args.login.partition(":")

        def authenticator(server, session, envelope, mechanism, data):
            ok = (mechanism in ("LOGIN", "PLAIN") and
                  data.login.decode() == user and
                  data.password.decode() == pw)
            return AuthResult(success=ok, handled=False)
        kw = {"authenticator": authenticator, "auth_required": True,
              "auth_require_tls": bool(args.cert)}

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    class RecordingSMTP(SMTP):
        async def smtp_AUTH(self, arg):
            record(args.record + ".auth", {
                "mechanism": arg.split()[0] if arg else "",
                "tls": self._tls_protocol is not None or
                bool(args.implicit_tls)})
            return await super().smtp_AUTH(arg)

    def factory():
        # smtps (--implicit-tls): TLS from the first byte, no STARTTLS.
        return RecordingSMTP(handler, hostname="sink.test",
                    tls_context=None if args.implicit_tls else ctx,
                    require_starttls=args.require_starttls, loop=loop, **kw)

    srv = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=args.port,
                           ssl=ctx if args.implicit_tls else None))
    print("READY %d" % srv.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("http", "smtp"))
    p.add_argument("--record", required=True)
    p.add_argument("--secret")
    p.add_argument("--script")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--login")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    import os
    import signal
    import warnings
    warnings.filterwarnings("ignore")
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))

    # The parent holds our stdin open: when it goes away (even killed, or a
    # failed test that never stopped us), stdin ends and so do we.
    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        os._exit(0)
    threading.Thread(target=watch_stdin, daemon=True).start()
    if args.mode == "http":
        run_http(args)
    else:
        run_smtp(args)


if __name__ == "__main__":
    main()
