# SPDX-License-Identifier: Apache-2.0
"""Scratch filesystems to freeze: sparse images on loop devices, mounted under a temp dir.

Plain Python (no pytest), so that tests and scripts such as the demo can share it:

    from scratchfs import ScratchFS
    with ScratchFS() as scratch:
        ext4 = scratch.make("ext4")          # -> Path of the mount point
        xfs = scratch.make("xfs")
        view = scratch.bind(ext4, "view")    # a bind mount of it; scratch.tmpfs("t"): a tmpfs
        ... freeze them, scratch.is_frozen(ext4), scratch.writable(xfs) ...
    # left: every mount thawed, unmounted, detached, its image removed

Safety: the only filesystems this module ever thaws or unmounts are the ones it made itself.
cleanup() always runs `fsfreeze -u` on each of them first (a frozen superblock blocks the unmount
and every process writing to it), then unmounts (lazily as a last resort), detaches the loop
device and removes the image.  The bind and tmpfs mounts it made (bind(), tmpfs()) are unmounted
before any filesystem, newest first; a bind mount is only thawed when its source is on one of its
own filesystems, a tmpfs never.  cleanup() is idempotent, and it also runs at interpreter exit and
on SIGTERM in the process that made the filesystems.  Needs root, util-linux, e2fsprogs, xfsprogs.
"""

import atexit
import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
DEFAULT_SIZES = {"ext4": 64 << 20, "xfs": 300 << 20}  # mkfs.xfs refuses less than 300 MiB
MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"]}
TOOLS = ("losetup", "mount", "umount", "fsfreeze", "mkfs.ext4", "mkfs.xfs")
CMD_TIMEOUT = 60  # seconds; the bound on any one command this module runs

WRITE_ONCE = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"written while thawed\n")
os.fsync(fd)
"""


def _run(args, check=True, timeout=CMD_TIMEOUT):
    return subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=check)


def _quiet(args, timeout=CMD_TIMEOUT):
    """Run a clean-up command; its failure (or hang) is not ours to raise.  Returns the code."""
    try:
        return _run(args, check=False, timeout=timeout).returncode
    except (OSError, subprocess.SubprocessError):
        return -1


def _mounted(path):
    """Whether PATH is a mount point in /proc/self/mounts (os.path.ismount would stat it, which
    blocks on nothing here, but mountinfo is the authority)."""
    target = str(path).replace(" ", "\\040")
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == target for line in f if line.strip())
    except OSError:
        return False


def is_frozen(mnt):
    """Whether a mount is frozen, asked the only way the kernel answers: FIFREEZE is EBUSY on a
    frozen filesystem.  When it succeeds the mount was not frozen, and it is thawed at once.

    Do not probe while something is about to freeze the mount: the probe's own brief freeze
    would make that FIFREEZE fail with EBUSY."""
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.ioctl(fd, FIFREEZE, 0)
        except OSError as e:
            if e.errno == errno.EBUSY:
                return True
            raise
        try:
            fcntl.ioctl(fd, FITHAW, 0)
        except OSError as e:
            # EINVAL: someone else's thaw (a thaw guard sweeping up) undid our probe first.
            if e.errno != errno.EINVAL:
                raise
        return False
    finally:
        os.close(fd)


def missing_tools():
    """The tools this module needs that are not on PATH (empty when all are there)."""
    return [t for t in TOOLS if not shutil.which(t)]


class _Fs:
    def __init__(self, fstype, img, mnt, thaw=True):
        self.fstype, self.img, self.mnt = fstype, img, mnt
        self.loop = None
        self.mounted = False
        self.thaw = thaw  # whether `fsfreeze -u` on mnt touches nothing but our own filesystems


def _within(path, roots):
    """Whether PATH (resolved) is one of ROOTS or below one of them."""
    path = os.path.realpath(path)
    for root in roots:
        root = os.path.realpath(root)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


class ScratchFS:
    """Loop-mounted scratch filesystems under one temp dir; see the module comment."""

    def __init__(self, base=None, prefix="ec2-imaged-scratch-"):
        self.owner_pid = os.getpid()
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        self._fs = []
        self._extra = []  # bind and tmpfs mounts (_Fs without image or loop device)
        self._procs = []
        self._lock = threading.RLock()
        self._cleaning = False
        self._closed = False
        _register(self)

    # ------------------------------------------------------------ making

    def make(self, fstype="ext4", size=None, name=None, image_dir=None):
        """Make, attach and mount a new FSTYPE (ext4 or xfs) filesystem of SIZE bytes (64 MiB
        ext4, 300 MiB xfs by default); returns the mount point, DIR/NAME (NAME defaults to
        fstype, then fstype-2...).  Its image lives in DIR, or in IMAGE_DIR, which may be one of
        our own mounts (a loop filesystem backed by a file on another one; cleanup() takes the
        filesystems apart newest first, so the one on top goes first)."""
        if fstype not in MKFS:
            raise ValueError("fstype must be ext4 or xfs, not %r" % fstype)
        with self._lock:
            if self._closed:
                raise RuntimeError("ScratchFS already cleaned up")
            if name is None:
                taken = {fs.mnt.name for fs in self._fs + self._extra}
                name, n = fstype, 2
                while name in taken:
                    name, n = "%s-%d" % (fstype, n), n + 1
            fs = _Fs(fstype, Path(image_dir or self.dir) / (name + ".img"), self.dir / name)
            # Recorded before any step, so cleanup() undoes whatever part of it was done.
            self._fs.append(fs)
            with open(fs.img, "wb") as f:
                f.truncate(size or DEFAULT_SIZES[fstype])
            loop = _run(["losetup", "-f", "--show", fs.img]).stdout.strip()
            if not loop.startswith("/dev/loop"):
                raise RuntimeError("losetup answered %r" % loop)
            fs.loop = loop
            _run(MKFS[fstype] + [loop])
            fs.mnt.mkdir()
            _run(["mount", "-t", fstype, loop, fs.mnt])
            fs.mounted = True
            return fs.mnt

    def attach(self, img, fstype, name):
        """Attach and mount an existing image IMG (a copy of one of ours, say) at DIR/NAME;
        cleanup() unmounts and detaches it like the others and removes IMG.  An XFS copy
        carries its original's UUID, which XFS refuses twice: it is mounted with nouuid."""
        with self._lock:
            if self._closed:
                raise RuntimeError("ScratchFS already cleaned up")
            fs = _Fs(fstype, Path(img), self.dir / name)
            self._fs.append(fs)
            loop = _run(["losetup", "-f", "--show", fs.img]).stdout.strip()
            if not loop.startswith("/dev/loop"):
                raise RuntimeError("losetup answered %r" % loop)
            fs.loop = loop
            fs.mnt.mkdir()
            opts = ["-o", "nouuid"] if fstype == "xfs" else []
            _run(["mount", "-t", fstype] + opts + [loop, fs.mnt])
            fs.mounted = True
            return fs.mnt

    def bind(self, src, name):
        """Bind-mount SRC at DIR/NAME; returns the mount point.  cleanup() unmounts it before
        any of the filesystems (a bind of one of them must go first)."""
        with self._lock:
            own = [fs.mnt for fs in self._fs + self._extra if fs.mounted and fs.thaw]
            return self._mount_extra("bind", name, ["mount", "--bind", src],
                                     thaw=_within(src, own))

    def tmpfs(self, name):
        """Mount a 1 MiB tmpfs at DIR/NAME; returns the mount point."""
        return self._mount_extra("tmpfs", name, ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs"],
                                 thaw=False)

    def _mount_extra(self, kind, name, cmd, thaw):
        with self._lock:
            if self._closed:
                raise RuntimeError("ScratchFS already cleaned up")
            fs = _Fs(kind, None, self.dir / name, thaw=thaw)
            fs.mnt.mkdir()
            self._extra.append(fs)
            _run(cmd + [fs.mnt])
            fs.mounted = True
            return fs.mnt

    @property
    def mounts(self):
        """Mount points made so far (and not yet cleaned up): the filesystems, then the bind
        and tmpfs mounts."""
        return [fs.mnt for fs in self._fs + self._extra if fs.mounted]

    def loop_of(self, mnt):
        for fs in self._fs:
            if fs.mnt == Path(mnt):
                return fs.loop
        return None

    # ------------------------------------------------------------ probing

    is_frozen = staticmethod(is_frozen)

    def spawn(self, args, **kw):
        """Start a process (own session, /dev/null stdin unless given) that cleanup() kills
        after the thaw: a process blocked on a frozen filesystem cannot die before it."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen([str(a) for a in args], start_new_session=True, **kw)
        self._procs.append(proc)
        return proc

    def writable(self, mnt, timeout=10):
        """Write and fsync a file on MNT from a new process within TIMEOUT seconds.  On timeout
        (the filesystem is frozen) the process is left for cleanup() to kill."""
        proc = self.spawn([sys.executable, "-c", WRITE_ONCE, Path(mnt) / ".scratchfs-write"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return proc.wait(timeout=timeout) == 0
        except subprocess.TimeoutExpired:
            return False

    def thaw_all(self):
        """fsfreeze -u on every scratch mount, errors ignored (EINVAL: it was not frozen); bind
        mounts too when their source is ours (the same superblock), never a tmpfs."""
        for fs in self._fs + self._extra:
            if fs.mounted and fs.thaw:
                _quiet(["fsfreeze", "-u", fs.mnt])

    # ------------------------------------------------------------ cleaning up

    def cleanup(self):
        """Thaw, kill our processes, unmount, detach and remove everything; idempotent."""
        if os.getpid() != self.owner_pid:
            return  # a forked child: the filesystems are its parent's to clean up
        with self._lock:
            if self._closed or self._cleaning:
                return
            self._cleaning = True
            try:
                self._cleanup()
            finally:
                self._cleaning = False
                self._closed = True
                _unregister(self)
        _after_cleanup()

    def _cleanup(self):
        self.thaw_all()
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._procs = []
        for fs in reversed(self._extra):
            if fs.mounted:
                self._unmount(fs)
        self._extra = []
        for fs in reversed(self._fs):
            if fs.mounted:
                self._unmount(fs)
            if fs.loop:
                _quiet(["losetup", "-d", fs.loop])
                fs.loop = None
            try:
                fs.img.unlink()
            except FileNotFoundError:
                pass
        self._fs = []
        if not any(_mounted(p) for p in self.dir.rglob("*") if p.is_dir()):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _unmount(self, fs):
        for attempt in range(30):
            if fs.thaw:
                _quiet(["fsfreeze", "-u", fs.mnt])
            if _quiet(["umount", fs.mnt]) == 0 or not _mounted(fs.mnt):
                fs.mounted = False
                return
            time.sleep(0.1)
        # Busy for 3 s: detach it from the tree now; the kernel lets go of it when the last user
        # does, and `losetup -d` then frees the device (autoclear).
        _quiet(["umount", "-l", fs.mnt])
        fs.mounted = _mounted(fs.mnt)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def __repr__(self):
        return "<ScratchFS %s %s>" % (self.dir, [str(m) for m in self.mounts])


# ---------------------------------------------------------------- process-wide safety net

_live = []
_live_lock = threading.Lock()
_installed_pid = None
_prev_sigterm = None
_pending_sigterm = False


def _register(scratch):
    global _installed_pid, _prev_sigterm
    with _live_lock:
        _live.append(scratch)
        if _installed_pid == os.getpid():
            return
        _installed_pid = os.getpid()
    atexit.register(cleanup_all)
    if threading.current_thread() is threading.main_thread():
        _prev_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(scratch):
    with _live_lock:
        if scratch in _live:
            _live.remove(scratch)


def cleanup_all():
    """Clean up every ScratchFS of this process (atexit and SIGTERM call it)."""
    with _live_lock:
        live = list(_live)
    for scratch in reversed(live):
        scratch.cleanup()


def _on_sigterm(signum, frame):
    global _pending_sigterm
    if any(s._cleaning for s in list(_live)):
        # The signal interrupted a clean-up in this thread: stopping it half way would leave
        # its half behind.  It finishes, and _after_cleanup() then handles the signal.
        _pending_sigterm = True
        return
    cleanup_all()
    _chain_sigterm(signum, frame)


def _after_cleanup():
    global _pending_sigterm
    if _pending_sigterm and not any(s._cleaning for s in list(_live)):
        _pending_sigterm = False
        cleanup_all()
        _chain_sigterm(signal.SIGTERM, None)


def _chain_sigterm(signum, frame):
    """What SIGTERM would have done without us: the previous handler, or death by it."""
    prev = _prev_sigterm
    if callable(prev):
        prev(signum, frame)
    elif prev != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


# ---------------------------------------------------------------- processes on scratch filesystems

# A writer that writes and fsyncs one block in a loop and prints how many writes it made: it
# stalls (in D state) while its filesystem is frozen.
WRITER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
i = 0
while True:
    os.pwrite(fd, b"x" * 4096, (i % 64) * 4096)
    os.fsync(fd)
    i += 1
    print(i, flush=True)
    time.sleep(0.005)
"""

WAIT_DEADLINE = 30  # seconds; the default bound on any single wait


def wait_until(pred, timeout=WAIT_DEADLINE, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


PTRACE_ATTACH, PTRACE_DETACH = 16, 17
WALL = 0x40000000  # __WALL: wait for a tracee whatever its kind


@contextlib.contextmanager
def ptrace_held(pid):
    """PID stopped under ptrace by this thread for the duration of the block.  Unlike SIGSTOP,
    nothing but its tracer resumes it: not even the SIGCONT the kernel sends to a process group
    that its parent's death orphans.  Keeps a thaw guard from acting, so that a thaw seen in the
    meantime is provably someone else's."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace(PTRACE_ATTACH, %d)" % pid)
    try:
        os.waitpid(pid, WALL)  # its attach stop
        yield
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


# Where a task writing to a frozen filesystem sleeps: sb_start_write() waits on the superblock's
# percpu rw-semaphore, which FIFREEZE holds for writing until the thaw.
FREEZE_WCHAN = "percpu_rwsem_wait"


def proc_wchan(pid):
    """The kernel function PID sleeps in (/proc/PID/wchan), or None when the process is gone."""
    try:
        return Path("/proc/%d/wchan" % pid).read_text().strip()
    except OSError:
        return None


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, D, Z...), or None when the process is gone."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


class Writer:
    """WRITER on PATH, started through SCRATCH.spawn() (so that cleanup kills it); .count is how
    many writes it has made."""

    def __init__(self, scratch, path):
        self.proc = scratch.spawn([sys.executable, "-c", WRITER, str(path)],
                                  stdout=subprocess.PIPE)
        self.count = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.count = int(line)

    def progresses_past(self, n, timeout=WAIT_DEADLINE):
        return wait_until(lambda: self.count > n, timeout)

    def state(self):
        return proc_state(self.proc.pid)

    def blocked_by_freeze(self):
        """Whether the writer sleeps on a frozen superblock: in D state, in the wait of the
        superblock's freeze-protection lock (sb_start_write's percpu rw-semaphore).  A writer
        merely slowed by its fsync sleeps elsewhere (jbd2, xfs log), so this is the positive
        sign that the freeze holds it, where "no progress for a while" would only be a guess."""
        return self.state() == "D" and proc_wchan(self.proc.pid) == FREEZE_WCHAN
