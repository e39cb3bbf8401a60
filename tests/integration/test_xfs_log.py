# SPDX-License-Identifier: Apache-2.0
"""The VM test's XFS check (tests/vm/xfslog.py) tells a copy of a frozen XFS from one taken
without the freeze, before anything mounts either.

The e2e test reads the log of the copied xfs volume before the clone mounts it, since a mount
replays the log and a crash-consistent copy would then look as clean as a frozen one. Here the
same check runs on copies of a loop-mounted scratch XFS (tests/peers/scratchfs.py): one taken
while it is frozen, one taken after a burst of metadata changes and a sync without the freeze
(the log holds them; the copy is crash-consistent only), and one of the unmounted filesystem.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scratchfs import ScratchFS  # tests/peers, on sys.path via conftest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "vm"))
import xfslog  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: losetup, mount and fsfreeze"),
    pytest.mark.skipif(not all(shutil.which(t) for t in
                               ("losetup", "mkfs.xfs", "fsfreeze", "mount", "xfs_logprint")),
                       reason="needs util-linux (losetup, mount, fsfreeze) and xfsprogs"),
]


def run(*args):
    return subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, check=True)


def churn(mnt, tag, n=150):
    """Metadata changes: files and a directory made, half the files removed again."""
    d = Path(mnt) / tag
    d.mkdir()
    for i in range(n):
        (d / ("f%d" % i)).write_text("%s %d\n" % (tag, i))
    for i in range(0, n, 2):
        (d / ("f%d" % i)).unlink()


def copy(img, dest):
    run("cp", "--sparse=always", img, dest)
    return dest


def test_frozen_copy_is_consistent_and_an_unfrozen_one_is_not(tmp_path):
    with ScratchFS() as scratch:
        mnt = scratch.make("xfs", name="data")
        img = scratch.dir / "data.img"
        churn(mnt, "before")
        run("sync", "-f", mnt)
        run("fsfreeze", "-f", mnt)
        try:
            frozen = copy(img, tmp_path / "frozen.img")
        finally:
            run("fsfreeze", "-u", mnt)
        # The same changes again, forced into the log by a sync, and copied right away: the
        # log holds them (inodes, directory and allocation buffers), not yet all in place.
        churn(mnt, "after")
        run("sync", "-f", mnt)
        crash = copy(img, tmp_path / "crash.img")

    # The copies themselves are not changed by the check (it reads a copy of each).
    before = frozen.read_bytes()
    st = xfslog.log_state(frozen)
    assert frozen.read_bytes() == before
    assert st.verdict in ("covered", "clean"), st
    st = xfslog.log_state(crash)
    assert st.verdict == "dirty", st
    assert st.kinds - {"BUF"}, st  # inode items at least: what only a log replay puts in place


def test_unmounted_copy_is_clean(tmp_path):
    with ScratchFS() as scratch:
        mnt = scratch.make("xfs", name="data")
        img = scratch.dir / "data.img"
        churn(mnt, "x")
        run("umount", mnt)
        try:
            st = xfslog.log_state(copy(img, tmp_path / "unmounted.img"))
        finally:
            run("mount", "-t", "xfs", scratch.loop_of(mnt), mnt)  # scratch unmounts it itself
    assert st.verdict == "clean" and st.state == "CLEAN", st


def test_classify_reads_logprint_output():
    """The parts of `xfs_logprint -t` the verdict rests on (xfsprogs 6.1's layout)."""
    head = ("xfs_logprint:\n    data device: 0xffffffffffffffff\n"
            "    log device: 0xffffffffffffffff daddr: 1048624 length: 131072\n\n")
    sb = ("LOG REC AT LSN cycle 1 block 168 (0x1, 0xa8)\n" + "=" * 76 + "\n"
          "TRANS: tid:0x48368c7a  #items:2  trans:0x48368c7a  q:0x55d51295fe30\n"
          "BUF: cnt:2 total:2 a:0x55d512960fe0 len:24 a:0x55d51295feb0 len:384 \n"
          "\tBUF:  #regs:2   start blkno:0x0   len:1   bmap size:1   flags:0x9000\n"
          "\tSUPER Block Buffer:\n")
    ino = ("INO: cnt:2 total:2 a:0x564d66c4ed90 len:56 a:0x564d66c696d0 len:176 \n"
           "\tINODE: #regs:2   ino:0x94d  flags:0x1   dsize:0\n\tCORE inode:\n")
    agf = ("BUF: cnt:2 total:2 a:0x5587cce20990 len:24 a:0x5587cce20a10 len:128 \n"
           "\tBUF:  #regs:2   start blkno:0x1   len:1   bmap size:1   flags:0x2800\n"
           "\tAGF Buffer: (XAGF)\n")
    dirty = "    log tail: 168 head: 172 state: <DIRTY>\n\n\n"
    assert xfslog.classify(head + "    log tail: 265 head: 265 state: <CLEAN>\n").verdict == \
        "clean"
    assert xfslog.classify(head + dirty + sb + sb).verdict == "covered"
    assert xfslog.classify(head + dirty + sb + ino).verdict == "dirty"
    assert xfslog.classify(head + dirty + sb + agf).verdict == "dirty"
    with pytest.raises(ValueError):
        xfslog.classify("xfs_logprint: unknown log operation type\n")
