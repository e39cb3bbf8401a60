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

RunInstances of an image the front copied boots a VM from copies of its copies, when the VM set
for that image asked for it ("clone" in POST /_front/vm), and TerminateInstances shuts it down:
tests/vm/clones.py. Such a VM runs in a network namespace of its own, in which the front
listens too (--clone-netns); a call that comes in there is the clone's.

The VM it acts on is set by POST /_front/vm {"name": NAME, "qmp": SOCKET, "copies": {DRIVE_ID:
PATH}, "clone": {"dir", "netns", "tap", "mem", "region", "account"}}; the Nth image of a VM is
copied to PATH with ".N" before the suffix from the second on. GET /_front/status answers what it
did, with the time of each step ("events"), and every API call it forwarded ("calls"): the service
and action (EC2's Action=, the operation of X-Amz-Target for the JSON APIs: KMS, SSM, STS), DryRun,
the answer's status, and who called: the access key id of the SigV4 credential scope (each VM's
IMDS hands out its own), the source address, the network it came in on ("net": golden or clone) and
the VM there (the one set at the time, or the clone that runs), and what it acted on: the instance
ids of TerminateInstances, the resources and tags of CreateTags, the image of RunInstances and
ModifyImageAttribute (and the attribute), the Name of SSM calls, the LaunchTemplateId/Name of
launch template calls. Nothing secret is kept: no signature, session token or body. It runs in the
test's network namespaces only, listening on the link-local address the guests reach.
"""

import argparse
import base64
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clones import Clones, in_netns  # noqa: E402
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
        self.images = {}  # image id -> {"id", "copies", "done", "ok", "clone"}
        self.clones = Clones(self, upstream)
        self.t0 = time.monotonic()

    def note(self, what, **kw):
        ev = dict(kw, what=what, t=round(time.monotonic() - self.t0, 3))
        with self.lock:
            self.events.append(ev)
        print(json.dumps(ev), flush=True)

    def record_call(self, handler, form, status, body=b""):
        """One forwarded API call, with who made it (see the module comment)."""
        m = CREDENTIAL.search(handler.headers.get("Authorization", ""))
        target = handler.headers.get("X-Amz-Target", "")
        net = handler.server.net
        who = (self.vm or {}).get("name") if net == "golden" else self.clones.name_on_net()
        call = {"t": round(time.monotonic() - self.t0, 3), "src": handler.client_address[0],
                "net": net, "vm": who, "akid": m.group(1) if m else None,
                "service": m.group(3) if m else None,
                "action": target.rsplit(".", 1)[-1] if target else form.get("Action", [""])[0],
                "dry_run": form.get("DryRun", ["false"])[0].lower() == "true", "status": status}
        call.update(acted_on(form, body if target else b""))
        with self.lock:
            self.calls.append(call)
        print(json.dumps(dict(call, what="call")), flush=True)

    def new_image(self):
        """The record of the VM's next image: where its copies go (see the module comment)."""
        n = self.vm["images"] = self.vm.get("images", 0) + 1
        copies = {dev: re.sub(r"(\.[^./]*)?$", lambda m: ".%d%s" % (n, m.group(0)), path, 1)
                  if n > 1 else path for dev, path in self.vm["copies"].items()}
        return {"id": None, "copies": copies, "done": threading.Event(), "ok": False,
                "clone": self.vm.get("clone"), "n": n}

    def copies_end(self, image, error=None):
        image["ok"] = error is None
        image["done"].set()
        if error is None:
            self.note("copies-done", image=image["id"], n=image["n"])
        else:
            self.note("copies-failed", image=image["id"], n=image["n"], error=error)

    def backup(self, qmp, tag, copies):
        """Start drive-backup of every disk in one transaction; the copies are of this instant."""
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

    def no_reboot_copies(self, image):
        qmp = Qmp(self.vm["qmp"])
        jobs = self.backup(qmp, "img%d" % len(self.events), image["copies"])

        def finish():
            try:
                self.wait_jobs(qmp, jobs)
                self.copies_end(image)
            except Exception as e:  # noqa: BLE001  (reported through status)
                self.copies_end(image, str(e))
            finally:
                qmp.close()
        threading.Thread(target=finish, daemon=True).start()

    def reboot_copies(self, image):
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
                self.wait_jobs(qmp, self.backup(qmp, "img%d" % len(self.events),
                                                image["copies"]))
                self.copies_end(image)
                qmp.cmd("system_reset")
                qmp.cmd("cont")
                self.note("guest-started")
                qmp.close()
            except Exception as e:  # noqa: BLE001
                self.copies_end(image, str(e))
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
        front = self.server.front
        if self.path == "/_front/status":
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
            return self.create_image(form, body, no_reboot)
        status = self.forward(body)
        front.record_call(self, form, status, body)
        if action == "RunInstances" and not dry and status == 200:
            image = front.images.get(form.get("ImageId", [""])[0])
            ids = re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", self.answer.decode())
            if image and image["clone"] and len(ids) == 1:
                ud = base64.b64decode(form.get("UserData", [""])[0])
                front.clones.launch(image, ids[0], ud)
        if action == "TerminateInstances" and not dry and status == 200:
            front.clones.terminate(indexed(form, "InstanceId"))

    def create_image(self, form, body, no_reboot):
        front = self.server.front
        front.note("create-image", no_reboot=no_reboot, name=form.get("Name", [""])[0])
        if front.vm is None:
            front.record_call(self, form, 500)
            return self.reply(500, b"front: no VM set")
        image = front.new_image()
        if no_reboot:
            front.no_reboot_copies(image)
        status = self.forward(body)
        front.record_call(self, form, status)
        m = re.search(r"<imageId>(ami-[0-9a-f]+)</imageId>", self.answer.decode())
        if status == 200 and m:
            image["id"] = m.group(1)
            with front.lock:
                front.images[image["id"]] = image
            front.note("image", image=image["id"], n=image["n"], copies=image["copies"])
        if not no_reboot and status == 200:
            front.reboot_copies(image)

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
        self.answer = data
        self.reply(status, data, headers)
        return status


def indexed(form, prefix):
    """The values of PREFIX.1, PREFIX.2, ... of a query-protocol form, in order."""
    keys = [k for k in form if re.fullmatch(re.escape(prefix) + r"\.\d+", k)]
    return [form[k][0] for k in sorted(keys, key=lambda k: int(k.rsplit(".", 1)[1]))]


def acted_on(form, json_body):
    """What a call acted on, for the record (module comment); never a secret."""
    action = form.get("Action", [""])[0]
    if action == "TerminateInstances":
        return {"instances": indexed(form, "InstanceId")}
    if action == "CreateTags":
        return {"resources": indexed(form, "ResourceId"),
                "tags": {form[k][0]: form.get(k[:-3] + "Value", [""])[0]
                         for k in sorted(form) if re.fullmatch(r"Tag\.\d+\.Key", k)}}
    if action in ("RunInstances", "ModifyImageAttribute"):
        return {"image": form.get("ImageId", [""])[0],
                "attribute": form.get("Attribute", [None])[0]
                or ("launchPermission" if any(k.startswith("LaunchPermission") for k in form)
                    else "imdsSupport" if "ImdsSupport.Value" in form else None)}
    if "LaunchTemplate" in action:
        return {"template": (form.get("LaunchTemplateId") or form.get("LaunchTemplateName")
                             or [None])[0]}
    if json_body:
        try:
            name = json.loads(json_body).get("Name")
        except (ValueError, AttributeError):
            name = None
        return {"name": name} if isinstance(name, str) else {}
    return {}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="moto's URL")
    p.add_argument("--clone-netns", help="the clones' network namespace: listen there too")
    args = p.parse_args()
    front = Front(args.upstream)
    servers = [ThreadingHTTPServer((args.host, args.port), Handler)]
    servers[0].net = "golden"
    if args.clone_netns:
        servers.append(in_netns(args.clone_netns,
                                lambda: ThreadingHTTPServer((args.host, args.port), Handler)))
        servers[1].net = "clone"
    for srv in servers:
        srv.daemon_threads = True
        srv.front = front
        threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop(*_):
        front.clones.stop_all()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("listening on %s:%d%s, forwarding to %s"
          % (args.host, args.port, " (and in %s)" % args.clone_netns if args.clone_netns else "",
             args.upstream), flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
