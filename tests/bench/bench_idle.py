#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench-idle: what an idle `ec2-imaged daemon` costs.  A benchmark, not a test: it prints
numbers and asserts nothing about them.

    bench_idle.py [BIN]           (default build/ec2-imaged)
    BENCH_SECONDS=N               length of the measured idle window (default 60)
    BENCH_WATCHDOG_SEC=N          WatchdogSec= to simulate (default 60, as units/ec2-imaged.service)

Starts the local peers (moto with one instance, the IMDS server describing it; LocalAws), then
the daemon with a configuration in a temp dir, and a NOTIFY_SOCKET owned by this script that
plays the service manager (WATCHDOG_USEC/WATCHDOG_PID set as systemd would).  After READY=1 and a
short settling pause it reads /proc/PID/status (VmRSS, VmHWM and the voluntary and involuntary
context switches) and /proc/PID/smaps_rollup (Pss), waits BENCH_SECONDS, reads them again, and
prints the RSS and the wakeups per minute (context switches of all the daemon's threads) next to
the watchdog pings received meanwhile.  The aim: under 4 MiB RSS, and no wakeups but the
watchdog's.  The daemon is then stopped by its PID, and the peers by theirs.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))

import peers  # noqa: E402  (tests/peers is not a package)

SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
WATCHDOG_SEC = int(os.environ.get("BENCH_WATCHDOG_SEC", "60"))
SETTLE = 2  # seconds after READY=1 before the first reading
DEADLINE = 30  # seconds; the bound on the daemon's start and stop


def status_fields(pid):
    out = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def switches(pid):
    """Context switches of every thread of PID (one thread is expected, but count them all)."""
    total = 0
    for task in Path("/proc/%d/task" % pid).iterdir():
        f = status_fields(int(task.name)) if task.name != str(pid) else status_fields(pid)
        total += int(f["voluntary_ctxt_switches"]) + int(f["nonvoluntary_ctxt_switches"])
    return total


def pss_kib(pid):
    try:
        for line in Path("/proc/%d/smaps_rollup" % pid).read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def kib(field):
    return int(field.split()[0])


class Notify:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages, self.closed = [], False
        threading.Thread(target=self.pump, daemon=True).start()

    def pump(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536).decode()
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data))

    def count(self, text, since=0.0, until=float("inf")):
        return sum(1 for t, m in self.messages if since <= t <= until and text in m)


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else REPO / "build/ec2-imaged")
    if os.geteuid() != 0:
        sys.exit("bench-idle: needs root (the daemon's control socket is root-only)")
    peers.pin_environ_to_loopback()
    tmp = Path(tempfile.mkdtemp(prefix="ec2-imaged-bench-idle-"))
    daemon = None
    try:
        with peers.LocalAws(tmp / "peers") as aws:
            (tmp / "hooks").mkdir()
            (tmp / "not-a-mount").mkdir()
            conf = tmp / "ec2-imaged.conf"
            # No run happens; the mount list is explicit anyway (never `auto`).
            conf.write_text("[run]\nstate_dir = %s/state\n[freeze]\nmounts = %s/not-a-mount\n"
                            "[hooks]\ndir = %s/hooks\n[daemon]\ncontrol_socket = %s/control.sock\n"
                            % (tmp, tmp, tmp, tmp))
            notify = Notify(tmp / "notify.sock")
            env = peers.minimal_env(tmp, aws.imds.url, aws.endpoint,
                                    NOTIFY_SOCKET=tmp / "notify.sock",
                                    WATCHDOG_USEC=WATCHDOG_SEC * 1000000)
            with open(tmp / "daemon.err", "wb") as err:
                daemon = subprocess.Popen(
                    ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh",
                     binary, "--config", str(conf), "daemon"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                    start_new_session=True)
            pid = daemon.pid
            deadline = time.monotonic() + DEADLINE
            while not notify.count("READY=1"):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    sys.exit("bench-idle: the daemon did not become ready:\n%s"
                             % (tmp / "daemon.err").read_text())
                time.sleep(0.05)
            time.sleep(SETTLE)
            s0, t0, sw0 = status_fields(pid), time.monotonic(), switches(pid)
            print("bench-idle: measuring the idle daemon (pid %d) for %d s, WatchdogSec=%d s..."
                  % (pid, SECONDS, WATCHDOG_SEC), flush=True)
            time.sleep(SECONDS)
            s1, t1, sw1 = status_fields(pid), time.monotonic(), switches(pid)
            pss = pss_kib(pid)
            pings = notify.count("WATCHDOG=1", t0, t1)
            minutes = (t1 - t0) / 60
            wakeups = sw1 - sw0
            print()
            print("%-34s %10s" % ("", "idle daemon"))
            print("%-34s %10.2f MiB" % ("RSS (VmRSS)", kib(s1["VmRSS"]) / 1024))
            print("%-34s %10.2f MiB" % ("peak RSS (VmHWM)", kib(s1["VmHWM"]) / 1024))
            if pss is not None:
                print("%-34s %10.2f MiB" % ("PSS (smaps_rollup)", pss / 1024))
            print("%-34s %10d" % ("threads", int(s1["Threads"])))
            print("%-34s %10.1f" % ("wakeups per minute (ctx switches)", wakeups / minutes))
            print("%-34s %10.1f" % ("watchdog pings per minute", pings / minutes))
            print("%-34s %10.1f" % ("wakeups per minute, not the watchdog's",
                                    max(0, wakeups - pings) / minutes))
            print("%-34s %10.1f s" % ("window", t1 - t0))
            print()
            print("aim: RSS under 4 MiB (%s), no wakeups but the watchdog's (%s)"
                  % ("met" if kib(s1["VmRSS"]) < 4096 else "NOT met",
                     "met" if wakeups <= pings else "NOT met"))
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=DEADLINE)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
