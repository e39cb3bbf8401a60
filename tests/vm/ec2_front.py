#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A test front for the EC2 API: forwards every request to moto and, on CreateImage, does to
the guest what EC2 does to an instance.

  NoReboot=true   point-in-time copies of every disk of the VM, all at one instant (a QMP
                  transaction of drive-backup jobs), taken before moto is asked and before the
                  answer goes back, exactly while the agent holds its filesystems frozen; the
                  copies complete in the background (copy-before-write keeps them at that
                  instant).
  NoReboot=false  the answer goes back first; then the guest is shut down over ACPI
                  (system_powerdown; qemu runs with -no-shutdown, so it stops instead of
                  exiting), the disks are copied, and the guest is started again
                  (system_reset, cont).
  DryRun=true     forwarded only.

The VM it acts on is set by POST /_front/vm {"name": NAME, "qmp": SOCKET, "copies": {DRIVE_ID:
PATH}}; GET /_front/status answers what it did, with the time of each step ("events"), and every
API call it forwarded ("calls"): the service and action (EC2's Action=, the operation of
X-Amz-Target for the JSON APIs: KMS, SSM, STS), DryRun, the answer's status, and who called: the
access key id of the SigV4 credential scope (each VM's IMDS hands out its own), the source address
and the VM set at the time (one runs at a time). Nothing secret is kept: no signature, session
token or body. It runs in the test's network namespace only, listening on the link-local
address the guest reaches.
"""

import argparse
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qmp import Qmp  # noqa: E402

CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade",
       "content-length", "host"}


class Front:
    def __init__(self, upstream):
        self.upstream = upstream.rstrip("/")
        self.lock = threading.Lock()
        self.vm = None
        self.events = []
        self.calls = []
        self.t0 = time.monotonic()

    def note(self, what, **kw):
        ev = dict(kw, what=what, t=round(time.monotonic() - self.t0, 3))
        with self.lock:
            self.events.append(ev)
        print(json.dumps(ev), flush=True)

    def record_call(self, handler, form, status):
        """One forwarded API call, with who made it (see the module comment)."""
        m = CREDENTIAL.search(handler.headers.get("Authorization", ""))
        target = handler.headers.get("X-Amz-Target", "")
        call = {"t": round(time.monotonic() - self.t0, 3), "src": handler.client_address[0],
                "vm": (self.vm or {}).get("name"), "akid": m.group(1) if m else None,
                "service": m.group(3) if m else None,
                "action": target.rsplit(".", 1)[-1] if target else form.get("Action", [""])[0],
                "dry_run": form.get("DryRun", ["false"])[0].lower() == "true", "status": status}
        with self.lock:
            self.calls.append(call)
        print(json.dumps(dict(call, what="call")), flush=True)

    def backup(self, qmp, tag):
        """Start drive-backup of every disk in one transaction; the copies are of this instant."""
        copies = self.vm["copies"]
        actions = [{"type": "drive-backup",
                    "data": {"device": dev, "job-id": "%s-%s" % (tag, dev), "target": path,
                             "format": "raw", "sync": "full", "mode": "absolute-paths"}}
                   for dev, path in sorted(copies.items())]
        qmp.cmd("transaction", actions=actions)
        self.note("copies-started", tag=tag, copies=copies)
        return ["%s-%s" % (tag, dev) for dev in sorted(copies)]

    def wait_jobs(self, qmp, jobs, timeout=900):
        left = set(jobs)
        while left:
            ev = qmp.wait_event(["BLOCK_JOB_COMPLETED", "BLOCK_JOB_ERROR"], timeout)
            dev = ev["data"].get("device")
            if ev["event"] == "BLOCK_JOB_ERROR" or ev["data"].get("error"):
                raise RuntimeError("backup job %s failed: %s" % (dev, ev["data"]))
            left.discard(dev)

    def no_reboot_copies(self):
        qmp = Qmp(self.vm["qmp"])
        jobs = self.backup(qmp, "img%d" % len(self.events))

        def finish():
            try:
                self.wait_jobs(qmp, jobs)
                self.note("copies-done")
            except Exception as e:  # noqa: BLE001  (reported through status)
                self.note("copies-failed", error=str(e))
            finally:
                qmp.close()
        threading.Thread(target=finish, daemon=True).start()

    def reboot_copies(self):
        def run():
            try:
                qmp = Qmp(self.vm["qmp"])
                time.sleep(1)  # EC2 answers first; the stop comes a moment later
                self.note("powerdown-sent")
                qmp.cmd("system_powerdown")
                qmp.wait_event("SHUTDOWN", 600)
                # -no-shutdown: the VM is stopped, not gone; wait until it really is.
                while qmp.cmd("query-status")["status"] not in ("shutdown", "paused"):
                    time.sleep(0.2)
                self.note("guest-stopped")
                self.wait_jobs(qmp, self.backup(qmp, "img%d" % len(self.events)))
                self.note("copies-done")
                qmp.cmd("system_reset")
                qmp.cmd("cont")
                self.note("guest-started")
                qmp.close()
            except Exception as e:  # noqa: BLE001
                self.note("copies-failed", error=str(e))
        threading.Thread(target=run, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.log_date_time_string(), fmt % args))
        sys.stdout.flush()

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_front/status":
            front = self.server.front
            with front.lock:
                body = json.dumps({"events": front.events, "calls": front.calls}).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        query = urllib.parse.urlsplit(self.path).query
        front.record_call(self, urllib.parse.parse_qs(query), self.forward(b""))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        front = self.server.front
        if self.path == "/_front/vm":
            with front.lock:
                front.vm = json.loads(body)
            front.note("vm", **front.vm)
            return self.reply(200, b"{}", [("Content-Type", "application/json")])
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", [""])[0]
        dry = form.get("DryRun", ["false"])[0].lower() == "true"
        no_reboot = form.get("NoReboot", ["false"])[0].lower() == "true"
        if action == "CreateImage" and not dry:
            front.note("create-image", no_reboot=no_reboot, name=form.get("Name", [""])[0])
            if front.vm is None:
                front.record_call(self, form, 500)
                return self.reply(500, b"front: no VM set")
            if no_reboot:
                front.no_reboot_copies()
            status = self.forward(body)
            front.record_call(self, form, status)
            if not no_reboot and status == 200:
                front.reboot_copies()
            return
        front.record_call(self, form, self.forward(body))

    def forward(self, body):
        front = self.server.front
        req = urllib.request.Request(front.upstream + self.path, data=body or None,
                                     method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in HOP:
                req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, data, headers = r.status, r.read(), r.getheaders()
        except urllib.error.HTTPError as e:
            status, data, headers = e.code, e.read(), e.headers.items()
        self.reply(status, data, headers)
        return status


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="moto's URL")
    args = p.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.front = Front(args.upstream)
    print("listening on %s:%d, forwarding to %s" % (args.host, args.port, args.upstream),
          flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
