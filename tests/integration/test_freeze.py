# SPDX-License-Identifier: Apache-2.0
"""Real FIFREEZE/FITHAW on loop-mounted ext4 and xfs, driven through tests/tools/freeze_probe.

Safety: everything frozen here is a scratch filesystem this file created (tests/peers/scratchfs.py:
a sparse image under pytest's tmp dir, attached with `losetup -f`, mounted under the same tmp dir).
freeze_probe itself refuses any mount that is not on a loop device.  The `scratch` fixture's
finalizer always runs `fsfreeze -u` on every scratch mount (errors ignored), kills what the test
started and the thaw guards it saw, unmounts and detaches the loop devices, whatever happened in
the test.  Every wait has a deadline.

Run as root:
    EC2_IMAGED_TOOLS=$PWD/build/tools /usr/bin/python3 -m pytest tests/integration/test_freeze.py
"""

import ctypes
import errno
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

# tests/peers, on sys.path via conftest
from scratchfs import ScratchFS, Writer, is_frozen, proc_state, ptrace_held, wait_until

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("EC2_IMAGED_TOOLS") or REPO / "build" / "tools")
PROBE = TOOLS / "freeze_probe"

PR_SET_CHILD_SUBREAPER = 36

GUARD_EXIT_ORPHANED = 2  # agent/host/freeze_guard.c: the guard thawed because its parent went away
LONG_TIMEOUT_MS = 120000  # a guard timeout no test waits for: a thaw before it is not the timeout
VERY_LONG_TIMEOUT_MS = 600000  # ten minutes: far beyond any wait of these tests
CRASHES = {"segv": signal.SIGSEGV, "bus": signal.SIGBUS, "abort": signal.SIGABRT,
           "ill": signal.SIGILL, "fpe": signal.SIGFPE}  # freeze_probe --crash KIND: its signal
DEADLINE = 30  # seconds; the bound on any single wait, so that nothing hangs forever

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="needs root: losetup, mount and FIFREEZE on scratch filesystems"),
    pytest.mark.skipif(not all(shutil.which(t) for t in
                               ("losetup", "mkfs.ext4", "mkfs.xfs", "fsfreeze", "mount")),
                       reason="needs util-linux (losetup, mount, fsfreeze), e2fsprogs, xfsprogs"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK),
                       reason="%s not built (make build/tools/freeze_probe, or set "
                              "EC2_IMAGED_TOOLS)" % PROBE),
]


def run(args, timeout=60, check=True):
    return subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=check)


def proc_comm(pid):
    try:
        return Path("/proc/%d/comm" % pid).read_text().strip()
    except OSError:
        return None


class Probe:
    """A running freeze_probe; its JSON lines come through a queue so every read has a timeout."""

    def __init__(self, scratch, args, stdin=subprocess.PIPE):
        self.proc = scratch.spawn([PROBE] + [str(a) for a in args], stdin=stdin,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.stderr = []
        self.pumps = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put),
                                       daemon=True),
                      threading.Thread(target=self._pump,
                                       args=(self.proc.stderr, self.stderr.append), daemon=True)]
        for t in self.pumps:
            t.start()

    @staticmethod
    def _pump(stream, put):
        for line in iter(stream.readline, b""):
            put(line.decode(errors="replace"))
        stream.close()

    def next(self, timeout=DEADLINE):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("freeze_probe printed nothing for %ss; stderr:\n%s"
                        % (timeout, "".join(self.stderr)))
        return json.loads(line)

    def release(self):
        """With --hold-stdin: let the probe thaw."""
        self.proc.stdin.write(b"\n")
        self.proc.stdin.flush()

    def wait(self, timeout=DEADLINE):
        """Exit status, once stdout and stderr are drained too (a SIGKILLed probe's guard
        holds neither: it maps /dev/null over its stdio)."""
        status = self.proc.wait(timeout=timeout)
        for t in self.pumps:
            t.join(timeout=timeout)
        return status

    def err(self):
        return "".join(self.stderr)


class Scratch(ScratchFS):
    """scratchfs.ScratchFS (64 MiB ext4, 300 MiB xfs, bind and tmpfs mounts, spawn, writable,
    thaw_all, cleanup), plus freeze_probe runs and the thaw guards they report."""

    def __init__(self, base):
        super().__init__(base=base)
        self.guard_pids = set()

    def probe(self, *args, **kw):
        return Probe(self, args, **kw)

    def writable(self, mnt, timeout=DEADLINE):  # these tests' deadline, not ScratchFS's 10 s
        return super().writable(mnt, timeout=timeout)

    def note_guard(self, pid):
        self.guard_pids.add(pid)

    def cleanup(self):
        # Thaw first (a guard may still hold a freeze), then kill the guards still alive (their
        # pid may have been reaped and reused: check the name), then the rest.
        try:
            if os.getpid() == self.owner_pid:
                self.thaw_all()
                for pid in self.guard_pids:
                    if proc_comm(pid) == "ec2-imaged-guar":
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass  # it exited in between
                self.guard_pids.clear()
        finally:
            super().cleanup()


@pytest.fixture
def scratch(tmp_path):
    s = Scratch(tmp_path)
    try:
        yield s
    finally:
        s.cleanup()


@pytest.fixture
def subreaper():
    """Make this process the subreaper, so the guard of a killed probe becomes our child and its
    exit status can be read; undone afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def reap_orphan(pid, timeout=DEADLINE):
    """Wait for an orphan we inherited as subreaper; its exit status (None if it did not exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    return None


def signal_masks(pid):
    """SigIgn, SigBlk, SigPnd and ShdPnd of /proc/PID/status, as integers."""
    masks = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("SigIgn", "SigBlk", "SigPnd", "ShdPnd"):
            masks[key] = int(value.strip(), 16)
    return masks


def frozen_line(probe, mounts):
    line = probe.next()
    assert "frozen" in line, "%s\n%s" % (line, probe.err())
    assert line["frozen"] == [str(m) for m in mounts]
    assert line["n_frozen"] == len(mounts)
    assert line["guard_pid"] > 0
    assert proc_comm(line["guard_pid"]) == "ec2-imaged-guar"
    return line


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", ["ext4", "xfs"])
def test_freeze_blocks_writer_until_thaw(scratch, kind):
    mnt = scratch.make(kind)
    writer = Writer(scratch, mnt / "writer.dat")
    assert writer.progresses_past(5), "writer made no progress before the freeze"

    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", mnt)
    line = frozen_line(probe, [mnt])
    frozen_seen = time.monotonic()
    scratch.note_guard(line["guard_pid"])
    # The writer's next write sleeps on the frozen superblock's freeze lock, and stays there
    # for as long as the filesystem is frozen: no write of it completes meanwhile.
    assert wait_until(writer.blocked_by_freeze), "writer state %s" % writer.state()
    blocked_at = writer.count
    assert is_frozen(mnt)
    assert writer.blocked_by_freeze() and writer.count == blocked_at

    released = time.monotonic()
    probe.release()
    line = probe.next()
    assert line["thawed"] is True and "error" not in line, line
    # The window reported spans at least what we saw frozen (both CLOCK_MONOTONIC).
    assert line["window_ms"] >= int((released - frozen_seen) * 1000), line
    assert probe.wait() == 0
    assert writer.progresses_past(blocked_at), "the writer did not resume after the thaw"
    assert not is_frozen(mnt)


def test_freeze_and_thaw_both_kinds(scratch):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", ext4, xfs)
    line = frozen_line(probe, [ext4, xfs])
    guard = line["guard_pid"]
    assert is_frozen(ext4) and is_frozen(xfs)

    probe.release()
    line = probe.next()
    assert line == {"thawed": True, "window_ms": line["window_ms"]}
    assert probe.wait() == 0
    assert not is_frozen(ext4) and not is_frozen(xfs)
    assert scratch.writable(ext4) and scratch.writable(xfs)
    # The probe disarmed and reaped its guard before exiting.
    assert proc_comm(guard) != "ec2-imaged-guar"


def test_guard_thaws_after_sigkill(scratch, subreaper):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    writer = Writer(scratch, xfs / "writer.dat")
    assert writer.progresses_past(3)
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", ext4, xfs)
    guard = frozen_line(probe, [ext4, xfs])["guard_pid"]
    scratch.note_guard(guard)
    assert wait_until(writer.blocked_by_freeze)
    blocked_at = writer.count

    probe.proc.kill()
    assert probe.wait() == -signal.SIGKILL
    # Nobody runs fsfreeze -u: the guard alone must thaw, long before its own timeout.
    assert reap_orphan(guard) == GUARD_EXIT_ORPHANED
    assert scratch.writable(ext4) and scratch.writable(xfs)
    assert writer.progresses_past(blocked_at)
    assert not is_frozen(ext4) and not is_frozen(xfs)


def test_guard_thaws_when_main_process_exits_without_thawing(scratch, subreaper):
    ext4 = scratch.make("ext4")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-ms", 0, "--no-thaw", ext4)
    guard = frozen_line(probe, [ext4])["guard_pid"]
    scratch.note_guard(guard)
    assert probe.next() == {"exiting": True}
    assert probe.wait() == 0
    assert reap_orphan(guard) == GUARD_EXIT_ORPHANED
    assert scratch.writable(ext4)


def test_guard_thaws_on_timeout_when_main_process_hangs(scratch):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    writer = Writer(scratch, ext4 / "writer.dat")
    assert writer.progresses_past(3)
    probe = scratch.probe("--timeout-ms", 2000, "--hang", ext4, xfs)
    guard = frozen_line(probe, [ext4, xfs])["guard_pid"]
    scratch.note_guard(guard)
    assert wait_until(writer.blocked_by_freeze)
    blocked_at = writer.count

    assert writer.progresses_past(blocked_at), "the guard did not thaw at its timeout"
    assert scratch.writable(xfs)
    # The probe still hangs; its guard thawed and exited (a zombie its hung parent never reaps).
    assert probe.proc.poll() is None
    assert wait_until(lambda: proc_state(guard) in ("Z", None))
    assert not is_frozen(ext4) and not is_frozen(xfs)


def test_sigterm_handler_thaws(scratch):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", "--sigterm-handler",
                          ext4, xfs)
    scratch.note_guard(frozen_line(probe, [ext4, xfs])["guard_pid"])

    probe.proc.send_signal(signal.SIGTERM)
    # The handler's FITHAWs succeeded, so it (not the guard, which only acts after the probe is
    # gone) thawed both.
    assert probe.next() == {"emergency_thawed": 2}
    assert probe.wait() == 128 + signal.SIGTERM
    assert scratch.writable(ext4) and scratch.writable(xfs)


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_crash_while_frozen_thaws_first(scratch, subreaper, kind):
    """A fault or an abort() in the frozen window thaws before the process dies.  The guard is
    held stopped meanwhile, so that only the dying process itself can have thawed (the guard
    would thaw once the process is gone: with a core dump onto a frozen filesystem, never)."""
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    probe = scratch.probe("--timeout-ms", VERY_LONG_TIMEOUT_MS, "--hold-stdin", "--crash", kind,
                          ext4, xfs)
    guard = frozen_line(probe, [ext4, xfs])["guard_pid"]
    scratch.note_guard(guard)
    with ptrace_held(guard):
        probe.release()
        assert probe.wait() == -CRASHES[kind], probe.err()
        # Bounded waits, far below the guard's ten minutes.
        assert scratch.writable(ext4) and scratch.writable(xfs)
        assert not is_frozen(ext4) and not is_frozen(xfs)
    assert reap_orphan(guard) == GUARD_EXIT_ORPHANED


def test_loop_filesystem_frozen_before_the_one_holding_its_image(scratch):
    """An ext4 whose loop image is a file on an xfs that is frozen too: freezing the xfs first
    would make the ext4's freeze (which writes its journal and superblock into that file) wait
    for the guard's timeout.  The configured order says xfs first; the backing file wins."""
    xfs = scratch.make("xfs")
    ext4 = scratch.make("ext4", image_dir=xfs)
    writer = Writer(scratch, ext4 / "writer.dat")
    assert writer.progresses_past(3)

    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", xfs, ext4)
    scratch.note_guard(frozen_line(probe, [ext4, xfs])["guard_pid"])
    assert is_frozen(ext4) and is_frozen(xfs)
    assert wait_until(lambda: writer.state() == "D")
    blocked_at = writer.count
    probe.release()
    line = probe.next()
    assert line["thawed"] is True and "error" not in line, line
    assert probe.wait() == 0
    assert writer.progresses_past(blocked_at)
    assert scratch.writable(ext4) and scratch.writable(xfs)

    # The thaw goes the other way: the xfs first, or the ext4's thaw (which writes its
    # superblock) would wait on it.
    run(["fsfreeze", "-f", ext4])
    run(["fsfreeze", "-f", xfs])
    probe = scratch.probe("--thaw-all", xfs, ext4, stdin=subprocess.DEVNULL)
    assert probe.next() == {"thawed_mounts": [str(xfs), str(ext4)], "count": 2}
    assert probe.wait() == 0
    assert scratch.writable(ext4) and scratch.writable(xfs)


def test_guard_death_makes_the_main_process_thaw(scratch):
    ext4 = scratch.make("ext4")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", ext4)
    guard = frozen_line(probe, [ext4])["guard_pid"]
    scratch.note_guard(guard)

    os.kill(guard, signal.SIGKILL)
    line = probe.next()
    assert line["thawed"] is True and line["errno"] == errno.ECHILD, line
    assert probe.wait() == 3
    assert "thaw guard died" in probe.err()
    assert scratch.writable(ext4)
    assert not is_frozen(ext4)


def test_guard_ignores_group_signals(scratch):
    ext4 = scratch.make("ext4")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", ext4)
    guard = frozen_line(probe, [ext4])["guard_pid"]
    scratch.note_guard(guard)
    assert os.getpgid(guard) == guard != os.getpgid(probe.proc.pid)

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)
    # Ignored (not blocked): the kernel drops such a signal when it is sent, so once kill()
    # returns there is nothing left to be delivered later, and no wait is needed to see that.
    mask = signal_masks(guard)
    for sig in sigs:
        assert mask["SigIgn"] & (1 << (sig - 1)), (sig, mask)
        assert not mask["SigBlk"] & (1 << (sig - 1)), (sig, mask)
        os.kill(guard, sig)
    mask = signal_masks(guard)
    assert not any((mask["SigPnd"] | mask["ShdPnd"]) & (1 << (s - 1)) for s in sigs), mask
    assert proc_comm(guard) == "ec2-imaged-guar"
    assert is_frozen(ext4)
    probe.release()
    assert probe.next()["thawed"] is True
    assert probe.wait() == 0
    assert not is_frozen(ext4)


def test_bind_mount_frozen_once(scratch):
    ext4 = scratch.make("ext4")
    (ext4 / "sub").mkdir()
    bind = scratch.bind(ext4, "bind")
    subbind = scratch.bind(ext4 / "sub", "subbind")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--hold-stdin", ext4, bind, subbind)
    frozen_line(probe, [ext4])
    probe.release()
    assert probe.next()["thawed"] is True
    assert probe.wait() == 0
    assert "%s is the same filesystem as %s" % (bind, ext4) in probe.err()
    assert scratch.writable(bind)


def test_failure_to_freeze_second_thaws_first(scratch):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    run(["fsfreeze", "-f", xfs])  # someone else's freeze: ours must fail with EBUSY
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, ext4, xfs, stdin=subprocess.DEVNULL)
    line = probe.next()
    assert line["errno"] == errno.EBUSY, line
    assert probe.wait() == 1
    assert "Failed to freeze %s: it is already frozen" % xfs in probe.err()
    # The first one, frozen before the failure, was thawed; the other's freeze is not ours.
    assert scratch.writable(ext4)
    assert not is_frozen(ext4)
    assert is_frozen(xfs)
    run(["fsfreeze", "-u", xfs])
    assert scratch.writable(xfs)


def test_thaw_all_reports_what_was_frozen(scratch):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    run(["fsfreeze", "-f", ext4])
    probe = scratch.probe("--thaw-all", ext4, xfs, stdin=subprocess.DEVNULL)
    assert probe.next() == {"thawed_mounts": [str(ext4)], "count": 1}
    assert probe.wait() == 0
    assert "Thawed %s, which was frozen" % ext4 in probe.err()
    assert not is_frozen(ext4) and not is_frozen(xfs)


def test_thaw_all_skips_entries_that_are_no_longer_mounts(scratch):
    ext4, xfs = scratch.make("ext4"), scratch.make("xfs")
    gone = ext4 / "was-a-mount"
    gone.mkdir()
    run(["fsfreeze", "-f", xfs])
    probe = scratch.probe("--thaw-all", gone, ext4, xfs, stdin=subprocess.DEVNULL)
    assert probe.next() == {"thawed_mounts": [str(xfs)], "count": 1}
    assert probe.wait() == 0
    assert "Cannot freeze %s: not a mount point; skipping it" % gone in probe.err()
    assert not is_frozen(xfs)


def test_directory_that_is_not_a_mount_point_is_refused(scratch):
    ext4 = scratch.make("ext4")
    sub = ext4 / "sub"
    sub.mkdir()
    # Through selection (mountinfo) ...
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, sub, stdin=subprocess.DEVNULL)
    assert probe.next()["errno"] == errno.EINVAL
    assert probe.wait() == 1
    assert "Cannot freeze %s: not a mount point" % sub in probe.err()
    # ... and straight to the set, whose own check keeps it from freezing the parent filesystem.
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, "--raw", sub, stdin=subprocess.DEVNULL)
    assert probe.next()["errno"] == errno.ENOTBLK
    assert probe.wait() == 1
    assert "no longer a mount point" in probe.err()
    assert not is_frozen(ext4)


def test_probe_refuses_mounts_not_on_loop_devices(scratch):
    tmp = scratch.tmpfs("tmpfs")
    probe = scratch.probe("--timeout-ms", LONG_TIMEOUT_MS, tmp, stdin=subprocess.DEVNULL)
    assert probe.next()["errno"] == errno.EPERM
    assert probe.wait() == 2
