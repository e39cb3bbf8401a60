# SPDX-License-Identifier: Apache-2.0
"""The end-to-end test's processes: peers it starts and stops by PID, and qemu guests under TCG
with a serial log, two QMP sockets (one for the EC2 front, one for the test) and the test's
kernel command line."""

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

from qmp import Qmp


class Fail(Exception):
    pass


class Proc:
    """A child started by this test and stopped by its PID (and process group)."""

    def __init__(self, name, cmd, log, **kw):
        self.name, self.log = name, log
        with open(log, "ab") as f:
            self.p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                      stdout=f, stderr=subprocess.STDOUT,
                                      start_new_session=True, **kw)

    def stop(self, timeout=20):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise Fail("%s did not answer" % url)


class Vm:
    """One guest. TAP and MAC: its network; NETNS: the network namespace qemu runs in (the tap
    is looked up there); STOP_ON_POWEROFF: qemu stops instead of exiting when the guest powers
    off (-no-shutdown), so that the EC2 front can start it again (reboot mode)."""

    def __init__(self, name, work, disks, uuid, cmdline="", tap="tap0",
                 mac="52:54:00:12:34:56", mem=1536, smp=2, netns=None, stop_on_poweroff=True):
        self.name, self.work = name, work
        self.serial = work / (name + ".serial.log")
        self.qmp_front = work / (name + ".front.qmp")
        self.qmp_ctl = work / (name + ".ctl.qmp")
        for p in (self.qmp_front, self.qmp_ctl):
            p.unlink(missing_ok=True)
        cmd = ["ip", "netns", "exec", netns] if netns else []
        cmd += ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", str(smp),
                "-m", str(mem), "-machine", "q35", "-display", "none", "-monitor", "none"]
        cmd += ["-no-shutdown"] if stop_on_poweroff else []
        cmd += ["-serial", "file:%s" % self.serial,
                "-kernel", work / "vmlinuz", "-initrd", work / "initrd.img",
                "-append", ("root=/dev/vda rw console=ttyS0 net.ifnames=0 loglevel=4 "
                            + cmdline).strip(),
                "-smbios", "type=1,manufacturer=Amazon EC2,product=t3.micro,serial=%s" % uuid,
                "-uuid", uuid,
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
                "-device", "virtio-net-pci,netdev=n0,mac=%s" % mac,
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_front,
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_ctl]
        for dev, path in disks.items():
            cmd += ["-drive", "file=%s,format=raw,if=virtio,id=%s,cache=writeback" % (path, dev)]
        self.proc = Proc(name, cmd, work / (name + ".qemu.log"))
        self.qmp = Qmp(self.qmp_ctl)

    def console(self):
        try:
            return self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, pattern, timeout, after=0):
        """The first match of PATTERN in the serial log at or after offset AFTER."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.p.poll() is not None:
                raise Fail("%s: qemu exited (%s)" % (self.name, self.proc.p.returncode))
            m = rx.search(self.console(), after)
            if m:
                return m
            time.sleep(1)
        raise Fail("%s: no /%s/ on the serial console within %ds (see %s)"
                   % (self.name, pattern, timeout, self.serial))

    def shutdown(self, timeout=300):
        """ACPI power button, then wait until the guest has powered off; qemu quits."""
        # Not an earlier SHUTDOWN (the front's, in reboot mode): one after this power-down.
        asked = time.time() - 1
        self.qmp.cmd("system_powerdown")
        self.qmp.wait_event("SHUTDOWN", timeout,
                            match=lambda ev: ev["timestamp"]["seconds"] >= asked)
        self.qmp.cmd("quit")
        self.qmp.close()
        self.proc.p.wait(60)

    def kill(self):
        try:
            self.qmp.close()
        except Exception:  # noqa: BLE001
            pass
        self.proc.stop()
