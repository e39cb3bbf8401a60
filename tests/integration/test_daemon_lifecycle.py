# SPDX-License-Identifier: Apache-2.0
"""The daemon's life beyond one run: what it tells the service manager (STATUS= that no error
text can extend), how it stops a worker that will not stop, and its restart after an upgrade of
the package, deferred while a run is under way.

The rig, the daemon and the sockets that play the service manager are test_daemon.py's; the same
safety rules hold (scratch mounts listed, state and sockets in the test's tmp dir, loopback peers,
processes stopped by PID, a deadline on every wait).
"""

import ctypes
import json
import os
import signal
import time
from pathlib import Path

import pytest

from scratchfs import wait_until
from test_daemon import DEADLINE, RUN_DEADLINE, rig, pytestmark  # noqa: F401 (fixture, marks)


def hook(rig, phase, name, body):
    d = rig.hooks_dir / ("%s.d" % phase)
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o755)
    path = d / name
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def datagrams(notify):
    with notify.lock:
        return [m for _, m in notify.messages]


# ---------------------------------------------------------------- STATUS=


def test_status_cannot_carry_other_assignments(rig):
    # The error of the last run, as the state file holds it: AWS's message, a hook's, anything.
    rig.state_dir.mkdir(mode=0o700)
    (rig.state_dir / "state.json").write_text(json.dumps({"history": [{
        "run_id": "3f2a0c1e-0000-4000-8000-00000000beef", "result": "failed",
        "error": "CreateImage: boom\nMAINPID=1\nREADY=1\rWATCHDOG=trigger",
        "started_us": 1, "finished_us": 2}]}))
    d = rig.daemon()
    d.notify.wait_for("STATUS", lambda v: v.startswith("Idle; last run"), log=lambda: d.err)
    status = [m for m in datagrams(d.notify) if "STATUS" in m]
    assert status[-1] == {"STATUS": "Idle; last run 3f2a0c1e-0000-4000-8000-00000000beef "
                                    "failed: CreateImage: boom MAINPID=1 READY=1 "
                                    "WATCHDOG=trigger"}, status
    assert all(set(m) == {"STATUS"} for m in status), status
    assert "MAINPID" not in {k for m in datagrams(d.notify) for k in m}
    assert d.notify.values("READY") == ["1"]


# ---------------------------------------------------------------- hooks' leftovers


def test_a_daemon_a_hook_detaches_is_gone_after_the_hook_phase(rig):
    # setsid and a double fork: out of the hook's process group, its parent gone. The worker is
    # a subreaper while hooks run, so the orphan becomes its child and is killed.
    pid_file = rig.tmp / "detached.pid"
    hook(rig, "pre-image", "10-detach",
         "setsid sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > %s' "
         "</dev/null >/dev/null 2>&1 &\n"
         "while [ ! -s %s ]; do sleep 0.05; done\n" % (pid_file, pid_file))
    # The post-image hook looks whether it is still there (its pid cannot have been reused by
    # then: the worker reaped it only just before).
    seen = rig.tmp / "seen"
    hook(rig, "post-image", "10-look",
         "if kill -0 $(cat %s) 2>/dev/null; then echo alive; else echo gone; fi > %s\n"
         % (pid_file, seen))
    d = rig.daemon()
    d.ready()
    r = rig.trigger("--wait", "--json")
    pid = int(pid_file.read_text())
    try:
        assert r.returncode == 0, (r.stderr, d.err)
        assert seen.read_text() == "gone\n", d.err
        assert "hook 10-detach (pre-image) left processes behind, sending SIGTERM to them" in d.err
    finally:
        # Only when the test failed is it there, and ours: never a pid reused meanwhile.
        try:
            if Path("/proc/%d/cmdline" % pid).read_bytes() == b"sleep\x001000\x00":
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ---------------------------------------------------------------- restart after an upgrade

EXIT_RESTART = 75  # daemon/daemon.h: DAEMON_EXIT_RESTART


def upgrade(rig, d):
    """What the package's maintainer scripts do after an upgrade while the service runs
    (packaging/restart-after-upgrade): leave the marker, send SIGHUP (`systemctl reload`)."""
    (rig.run_dir / "restart-pending").touch()
    d.signal(signal.SIGHUP)


@pytest.fixture
def rrig(rig):
    """The rig, with a RUNTIME_DIRECTORY of its own, as systemd gives the service."""
    rig.run_dir = rig.tmp / "run"
    rig.run_dir.mkdir(mode=0o700)
    rig.env["RUNTIME_DIRECTORY"] = str(rig.run_dir)
    return rig


def test_upgrade_while_idle_restarts_at_once(rrig):
    d = rrig.daemon()
    d.ready()
    upgrade(rrig, d)
    assert d.wait() == EXIT_RESTART, d.err
    assert not (rrig.run_dir / "restart-pending").exists()
    assert "ec2-imaged was upgraded: exiting with status 75" in d.err
    d.notify.wait_for("STATUS", lambda v: v == "Restarting into the upgraded ec2-imaged")
    assert d.notify.values("STOPPING") == ["1"]
    assert "Configuration reloaded" not in d.err


def test_sighup_without_an_upgrade_only_reloads(rrig):
    d = rrig.daemon()
    d.ready()
    d.signal(signal.SIGHUP)
    assert wait_until(lambda: "Configuration reloaded" in d.err), d.err
    assert d.proc.poll() is None


def test_upgrade_during_a_run_waits_for_its_end(rrig):
    # The run is held in a pre-image hook, where the patch hook would upgrade the package.
    gate = rrig.tmp / "gate"
    hook(rrig, "pre-image", "10-wait", "while [ ! -e %s ]; do sleep 0.05; done\n" % gate)
    d = rrig.daemon()
    d.ready()
    d.signal(signal.SIGUSR1)
    d.notify.wait_for("STATUS", lambda v: "pre-image hooks" in v, log=lambda: d.err)
    upgrade(rrig, d)
    assert wait_until(lambda: "Reload deferred until the run under way ends" in d.err), d.err
    # The run goes on: the hook is still there, and so are the daemon and the marker.
    assert d.proc.poll() is None
    assert (rrig.run_dir / "restart-pending").exists()
    gate.touch()
    assert d.wait(timeout=RUN_DEADLINE) == EXIT_RESTART, d.err
    h = rrig.history()
    assert len(h) == 1 and h[0]["result"] == "success", h
    assert [i["ImageId"] for i in rrig.images()] == [h[0]["image_id"]]
    assert rrig.state().get("current") is None
    assert not (rrig.run_dir / "restart-pending").exists()
    # The new daemon starts idle: nothing to resume, nothing to restart.
    d2 = rrig.daemon()
    d2.ready()
    d2.notify.wait_for("STATUS", lambda v: v.startswith("Idle; last run %s succeeded"
                                                         % h[0]["run_id"]))
    assert d2.proc.poll() is None


# ---------------------------------------------------------------- stop_timeout_s


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            out += [int(c) for c in open("/proc/%d/task/%s/children" % (pid, task)).read().split()]
        except OSError:
            pass
    return out


PTRACE_SEIZE, PTRACE_DETACH = 0x4206, 17
WALL = 0x40000000  # __WALL: wait for a tracee that is not our child


def ptrace(req, pid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(req, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace(%d, %d)" % (req, pid))


def swallow_next_sigterm(pid, timeout=DEADLINE):
    """Make process pid (traced by us) ignore the next SIGTERM it gets: it stops at the signal's
    delivery, and we let it go on without it (PTRACE_DETACH with no signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG | WALL)
        if got == pid:
            assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTERM, status
            ptrace(PTRACE_DETACH, pid)
            return
        time.sleep(0.01)
    pytest.fail("process %d got no SIGTERM within %ss" % (pid, timeout))


def test_worker_that_does_not_stop_is_killed_after_stop_timeout(rig):
    rig.config_path.write_text(rig.config_path.read_text().replace("stop_timeout_s = 20",
                                                                   "stop_timeout_s = 2"))
    gate = rig.tmp / "gate"
    hook(rig, "pre-image", "10-wait", "while [ ! -e %s ]; do sleep 0.05; done\n" % gate)
    d = rig.daemon()
    d.ready()
    d.signal(signal.SIGUSR1)
    d.notify.wait_for("STATUS", lambda v: "pre-image hooks" in v, log=lambda: d.err)
    workers = children(d.pid)
    assert len(workers) == 1, workers
    worker = workers[0]
    try:
        # A worker that ignores SIGTERM (as a stuck one would): only SIGKILL ends it.
        ptrace(PTRACE_SEIZE, worker)
        d.signal(signal.SIGTERM)
        swallow_next_sigterm(worker)
        assert d.wait(timeout=DEADLINE) == 0, d.err
        assert "Stopping: asking worker %d to stop" % worker in d.err
        assert "Worker %d did not stop within 2s; killing it" % worker in d.err
        assert "Worker %d (run) was killed by signal 9" % worker in d.err
        assert not os.path.exists("/proc/%d" % worker)
    finally:
        gate.touch()  # lets the orphaned hook end, whatever happened
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
