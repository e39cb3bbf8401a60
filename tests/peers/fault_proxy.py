#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Loopback fault-injecting HTTP proxy in front of an upstream AWS endpoint (moto).

The client talks to this proxy as if it were the AWS endpoint (it is the client's endpoint URL,
not an http_proxy).  Requests are forwarded verbatim: method, path, every header in order
(Host included, as the client sent it) and the body byte for byte, so the client's SigV4
signature stays valid when moto checks it.  Queued faults answer instead of the upstream
(throttling, 5xx, malformed XML, a connection reset) or around it (delay, truncate, drop the
response after the upstream acted), so tests can drive the agent's retry and idempotency paths
against a real API implementation.

Control API on the same port under /_control/ (JSON in and out):
  POST /_control/faults   {"faults": [{"kind": K, "count": N, "delay_ms": M, "action": A}]}
                          appended to the queue; kinds: throttle, error500, error503, malformed,
                          delay, reset, close, truncate, drop_response, duplicate_name
                          (forwards, then answers InvalidAMIName.Duplicate, "AMI name N is
                          already in use by AMI ami-...", as EC2 answers a request whose name
                          exists: the request acted, the answer says no), and ok (an EC2 answer
                          <ActionResponse><return>true</return> without asking the upstream,
                          for actions moto does not implement, e.g. EnableImageDeprecation),
                          skewed_clock (AWS on a clock "offset_s" seconds from ours: a request
                          whose X-Amz-Date is more than "tolerance_s" (default 300) from it is
                          answered RequestTimeTooSkewed, or InvalidSignatureException for
                          X-Amz-Target calls, and the others are forwarded; every answer carries
                          that clock's Date), reject_key (a request signed with the access
                          key "access_key_id" is answered with "code", default AuthFailure, as
                          AWS answers credentials it no longer takes; others are forwarded), and
                          hold (keeps the request, unforwarded, until POST /_control/release or
                          for at most delay_ms, default 120000; then forwards it), and
                          ignore_dry_run (forwards the form body without DryRun=true, as an
                          endpoint that ignores DryRun would act: the call is made; the
                          signature no longer matches, so only for a moto without auth).  A request
                          takes the first queued fault whose optional "action" matches its
                          Action (form body or query) or X-Amz-Target operation (and, with
                          "not_access_key_id", that is not signed with that access key: a call
                          with another account's credentials, say); count defaults to 1.  With
                          delay_ms, any kind holds the request that long before it acts
                          (drop_response: held, forwarded, its answer dropped).
  GET  /_control/faults   the faults still queued
  GET  /_control/requests every request seen, Authorization and X-Amz-Security-Token redacted
                          (the access key id, which is no secret, is kept as access_key_id),
                          with the client's address:port (which tells a reused connection)
  POST /_control/release  let every held request go on (and later ones pass a hold at once)
  POST /_control/clear    forget recorded requests
  GET  /_control/stats    {"received", "forwarded", "faults_injected", "by_kind", "by_action"}
  POST /_control/reset    clear faults, requests and stats
Standard library only (Debian's python3, no pip).  Logs one line per request, no secrets.
"""

import argparse
import calendar
import email.utils
import http.client
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from serving import serve_until_stopped  # this script's own folder (tests/peers)

REDACTED = ("authorization", "x-amz-security-token")
HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "proxy-connection")
KINDS = ("throttle", "error500", "error503", "malformed", "delay", "reset", "close",
         "truncate", "drop_response", "duplicate_name", "ok", "skewed_clock", "reject_key",
         "hold", "ignore_dry_run")


def ec2_error(code, message):
    """An EC2 Query API error body, shaped as EC2 sends it."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
            '<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>'
            % (code, message, uuid.uuid4())).encode()


# EC2 (Query/XML) and JSON-protocol services (KMS, SSM) throttle with different shapes.
CANNED = {
    "throttle": (503, ("RequestLimitExceeded", "Request limit exceeded."),
                 (400, "ThrottlingException", "Rate exceeded")),
    "error500": (500, ("InternalError", "An internal error has occurred"),
                 (500, "InternalFailure", "An internal error has occurred")),
    "error503": (503, ("Unavailable", "The server is overloaded and can't handle the request."),
                 (503, "ServiceUnavailable", "Service unavailable")),
}


def access_key_id(headers):
    """The access key id of a SigV4 Authorization header (Credential=AKID/date/...), or None."""
    m = re.search(r"Credential=([^/,\s]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else None


def amz_date_epoch(headers):
    """X-Amz-Date (20261206T120000Z) as seconds since the epoch, or None."""
    try:
        return calendar.timegm(time.strptime(headers.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        if getattr(self, "release", None):
            self.release.set()  # nothing stays held across a reset
        self.release = threading.Event()  # set: held requests go on
        self.faults = []
        self.requests = []
        self.stats = {"received": 0, "forwarded": 0, "faults_injected": 0,
                      "by_kind": {}, "by_action": {}}

    def take_fault(self, action, key_id=None):
        """Pop one use of the first queued fault that applies to this action (and signer)."""
        for f in self.faults:
            other = f.get("not_access_key_id")
            if f.get("action") in (None, action) and (other is None or other != key_id):
                f["count"] -= 1
                if f["count"] <= 0:
                    self.faults.remove(f)
                self.stats["faults_injected"] += 1
                self.stats["by_kind"][f["kind"]] = self.stats["by_kind"].get(f["kind"], 0) + 1
                return dict(f)
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.rst = set()

    def shutdown_request(self, request):
        # socketserver half-closes (FIN) before closing; for a reset skip that, so the close
        # with SO_LINGER {1, 0} sends a bare RST.
        with self.state.lock:
            abort = id(request) in self.rst
            self.rst.discard(id(request))
        if abort:
            request.close()
        else:
            super().shutdown_request(request)


class Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate sends: without TCP_NODELAY every request after
    # the first on a kept-alive connection waits ~40 ms for a delayed ACK (Nagle).
    disable_nagle_algorithm = True

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, action, outcome):
        sys.stderr.write("proxy: %s %s %s %s\n" % (self.command, self.path.split("?")[0],
                                                    action or "-", outcome))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers, up to the empty line that ends the body
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size + 2)[:size])  # data, then its CRLF
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def dispatch(self):
        self.date = None  # per request: a handler serves every request of its connection
        body = self.read_body()
        if self.path.startswith("/_control"):
            return self.control(body)
        st = self.server.state
        params, payload, target = self.parse(body)
        action = params.get("Action") or (target.rsplit(".", 1)[-1] if target else None)
        with st.lock:
            st.stats["received"] += 1
            if action:
                st.stats["by_action"][action] = st.stats["by_action"].get(action, 0) + 1
            fault = st.take_fault(action, access_key_id(self.headers))
            st.requests.append({
                "time": time.time(), "method": self.command, "path": self.path,
                "client": "%s:%d" % self.client_address[:2],
                "headers": [[k, "<redacted>" if k.lower() in REDACTED else v]
                            for k, v in self.headers.items()],
                "access_key_id": access_key_id(self.headers),
                "params": params, "json": payload, "action": action,
                "fault": fault["kind"] if fault else None})
        kind = fault["kind"] if fault else None
        if kind == "skewed_clock":
            now = time.time() + float(fault.get("offset_s", 0))
            self.date = email.utils.formatdate(now, usegmt=True)
            signed = amz_date_epoch(self.headers)
            if signed is None or abs(signed - now) > float(fault.get("tolerance_s", 300)):
                return self.auth_error(target, action, "RequestTimeTooSkewed",
                                       "InvalidSignatureException",
                                       "The difference between the request time and the "
                                       "current time is too large.")
        if kind == "reject_key" and access_key_id(self.headers) == fault.get("access_key_id"):
            code = fault.get("code", "AuthFailure")
            return self.auth_error(target, action, code, code,
                                   "The security token included in the request is invalid.")
        if kind == "hold":
            self.log_line(action, "held")
            st.release.wait(fault.get("delay_ms", 120000) / 1000.0)
        elif kind == "delay" or (fault and "delay_ms" in fault):
            # The request is held first; then the fault acts (delay: forwarded as it is).
            time.sleep(fault.get("delay_ms", 1000) / 1000.0)
        if kind in CANNED:
            return self.canned(kind, target, action)
        if kind == "malformed":
            self.log_line(action, "200 malformed")
            return self.reply(200, [("Content-Type", "text/xml;charset=UTF-8")],
                              b'<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="'
                              b'http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>7a62c49f'
                              % (action or "Unknown").encode())
        if kind == "ok":
            self.log_line(action, "200 ok (not forwarded)")
            return self.reply(200, [("Content-Type", "text/xml;charset=UTF-8")],
                              b'<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="'
                              b'http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>%s'
                              b'</requestId><return>true</return></%sResponse>'
                              % ((action or "Unknown").encode(), str(uuid.uuid4()).encode(),
                                 (action or "Unknown").encode()))
        if kind in ("reset", "close"):
            self.log_line(action, kind)
            return self.hang_up(kind == "reset")
        if kind == "ignore_dry_run":
            body = re.sub(rb"(^|&)DryRun=true(?=&|$)", b"", body)
        try:
            status, headers, data = self.forward(body)
        except OSError as e:
            self.log_line(action, "upstream error %s" % e)
            return self.reply(502, [("Content-Type", "text/plain")], b"upstream unreachable\n")
        with st.lock:
            st.stats["forwarded"] += 1
        if kind == "drop_response":
            self.log_line(action, "%d dropped" % status)
            return self.hang_up(True)
        if kind == "duplicate_name":
            # EC2's message names the image that has the name: the one the upstream just made.
            made = re.search(rb"<imageId>(ami-[0-9a-f]+)</imageId>", data)
            self.log_line(action, "%d replaced by InvalidAMIName.Duplicate" % status)
            return self.reply(400, [("Content-Type", "text/xml;charset=UTF-8")],
                              ec2_error("InvalidAMIName.Duplicate",
                                        "AMI name %s is already in use by AMI %s"
                                        % (params.get("Name", ""),
                                           made.group(1).decode() if made else "ami-unknown")))
        if kind == "truncate":
            # Promise the full length, send half, then close: the client sees a short read.
            self.log_line(action, "%d truncated" % status)
            self.reply(status, headers, data[: len(data) // 2], length=len(data))
            return self.hang_up(False)
        self.log_line(action, status)
        return self.reply(status, headers, data)

    def access_key_id(self):
        """The key id of the SigV4 Authorization header (Credential=KEYID/date/...): an
        identifier, not a secret; None without one."""
        auth = self.headers.get("Authorization", "")
        at = auth.find("Credential=")
        return auth[at + 11:].split("/", 1)[0] if at >= 0 else None

    def parse(self, body):
        """Form params (query string and form body), JSON body and X-Amz-Target, for matching
        faults and for the request record."""
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        ctype = self.headers.get("Content-Type", "")
        payload = None
        if "x-www-form-urlencoded" in ctype:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif "json" in ctype and body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        return params, payload, self.headers.get("X-Amz-Target")

    def forward(self, body):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=120)
        try:
            # skip_host/skip_accept_encoding: send the client's headers and nothing of ours.
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in ("transfer-encoding", "content-length", "proxy-connection"):
                    conn.putheader(k, v)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            headers = [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            return resp.status, headers, data
        finally:
            conn.close()

    def canned(self, kind, target, action):
        status, (code, msg), (jstatus, jcode, jmsg) = CANNED[kind]
        self.log_line(action, "%d %s" % (jstatus if target else status, kind))
        if target:
            body = json.dumps({"__type": jcode, "message": jmsg}).encode()
            return self.reply(jstatus, [("Content-Type", "application/x-amz-json-1.1"),
                                        ("x-amzn-RequestId", str(uuid.uuid4()))], body)
        return self.reply(status, [("Content-Type", "text/xml;charset=UTF-8")],
                          ec2_error(code, msg))

    def auth_error(self, target, action, xml_code, json_code, message):
        """An authentication failure, shaped as EC2 (XML) or a JSON service answers it."""
        self.log_line(action, "403 %s" % (json_code if target else xml_code))
        if target:
            body = json.dumps({"__type": json_code, "message": message}).encode()
            return self.reply(400 if json_code == "InvalidSignatureException" else 403,
                              [("Content-Type", "application/x-amz-json-1.1"),
                               ("x-amzn-RequestId", str(uuid.uuid4()))], body)
        return self.reply(403 if xml_code == "RequestTimeTooSkewed" else 401,
                          [("Content-Type", "text/xml;charset=UTF-8")],
                          ec2_error(xml_code, message))

    def date_time_string(self, timestamp=None):
        # The Date of send_response(): a skewed_clock fault's clock, when one applies.
        return getattr(self, "date", None) or super().date_time_string(timestamp)

    def reply(self, status, headers, data, length=None):
        self.send_response(status)
        if getattr(self, "date", None):  # the upstream's Date would contradict it
            headers = [(k, v) for k, v in headers if k.lower() != "date"]
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def hang_up(self, rst):
        """Close without (further) answer; with rst, abort so the client sees ECONNRESET
        instead of an orderly end of stream (see Server.shutdown_request)."""
        self.close_connection = True
        if rst:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            with self.server.state.lock:
                self.server.rst.add(id(self.connection))

    def control(self, body):
        st = self.server.state
        name = self.path.split("?")[0][len("/_control"):].strip("/")
        with st.lock:
            if self.command == "GET" and name == "requests":
                return self.json(200, st.requests)
            if self.command == "GET" and name == "stats":
                return self.json(200, st.stats)
            if self.command == "GET" and name == "faults":
                return self.json(200, st.faults)
            if self.command != "POST":
                return self.json(405, {"error": "unknown control GET " + name})
            if name == "release":
                st.release.set()
                return self.json(200, {"ok": True})
            if name == "clear":
                st.requests = []
                return self.json(200, {"ok": True})
            if name == "reset":
                st.reset()
                return self.json(200, {"ok": True})
            if name not in ("", "faults"):
                return self.json(404, {"error": "unknown control " + name})
            try:
                faults = json.loads(body or b"{}")["faults"]
                for f in faults:
                    if f.get("kind") not in KINDS:
                        raise ValueError("unknown fault kind %r" % f.get("kind"))
                    f["count"] = int(f.get("count", 1))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                return self.json(400, {"error": "bad faults: %s" % e})
            st.faults.extend(faults)
            return self.json(200, {"ok": True, "queued": len(st.faults)})

    def json(self, status, obj):
        self.reply(status, [("Content-Type", "application/json")], json.dumps(obj).encode())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    a = p.parse_args(argv)
    up = urlsplit(a.upstream)
    if a.host not in ("127.0.0.1", "localhost", "::1") or \
            up.hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("refusing: listen address and upstream must both be loopback")
    server = Server((a.host, a.port), Handler)
    server.state = State()
    server.upstream = up
    serve_until_stopped(server, a.port_file, "proxy: listening on %s:%d -> %s" % (
        server.server_address[:2] + (a.upstream,)))


if __name__ == "__main__":
    main()
