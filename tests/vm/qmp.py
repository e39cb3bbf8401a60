# SPDX-License-Identifier: Apache-2.0
"""A small QMP client (QEMU Machine Protocol over a Unix socket): commands and events."""

import json
import socket
import time


class QmpError(Exception):
    pass


class Qmp:
    """One QMP connection. cmd() returns the "return" value or raises QmpError; events that
    arrive meanwhile are kept for wait_event()."""

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.file = self.sock.makefile("rb")
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self, timeout=None):
        self.sock.settimeout(timeout)
        line = self.file.readline()
        if not line:
            raise QmpError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read(timeout=600)
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise QmpError("%s: %s" % (name, r["error"].get("desc", r["error"])))
            elif "return" in r:
                return r["return"]

    def wait_event(self, names, timeout, match=None):
        """The first event among NAMES (and matching MATCH(event), if given) seen so far or
        arriving within TIMEOUT seconds; raises QmpError on timeout."""
        names = {names} if isinstance(names, str) else set(names)
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] in names and (match is None or match(ev)):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QmpError("no %s event within %ds" % ("/".join(sorted(names)), timeout))
            try:
                r = self._read(timeout=left)
            except socket.timeout:
                continue
            if "event" in r:
                self.events.append(r)

    def close(self):
        self.file.close()
        self.sock.close()
