# SPDX-License-Identifier: Apache-2.0
"""Whether an XFS image needs a log replay to be consistent, read before anything mounts it.

Mounting an XFS replays its log, so a copy taken in the middle of metadata updates (a crash-
consistent copy) looks clean once a VM has mounted it. The log is therefore read first, with
`xfs_logprint -t` on a scratch copy of the image (the image itself is never opened by a tool
that could write to it):

  clean    an unmount record: nothing to replay (an unmounted filesystem, reboot mode)
  covered  the active range of the log holds nothing but superblock updates: what a freeze
           leaves. Since Linux 5.12 the freeze covers the log (two synchronous superblock
           transactions, "xfs: cover the log during log quiesce") instead of writing an
           unmount record, so xfs_logprint says DIRTY and xfs_repair -n warns of "valuable
           metadata changes", yet every change is in place and recovery replays an unmodified
           superblock
  dirty    anything else in the log: inodes, directory or allocation buffers, intents; the
           copy was not taken from a quiesced filesystem

`python3 xfslog.py IMAGE...` prints the verdict of each.
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STATE = re.compile(r"log tail: (\d+) head: (\d+) state: <(\w+)>")
# An item of a transaction starts its line with its kind ("BUF:", "INO:", "EFI:"...); the
# buffer's own description follows, indented, with its disk address.
ITEM = re.compile(r"^([A-Z]+): ")
BUF_BLKNO = re.compile(r"^\s+BUF:\s+#regs:\s*\d+\s+start blkno:(0x[0-9a-f]+)")
NOT_ITEMS = {"TRANS", "LOG"}


class LogState:
    def __init__(self, verdict, state, kinds, blknos, text):
        self.verdict, self.state, self.kinds, self.blknos = verdict, state, kinds, blknos
        self.text = text

    def __repr__(self):
        return "%s (log %s; items %s; buffers at %s)" % (
            self.verdict, self.state, ",".join(sorted(self.kinds)) or "none",
            ",".join(sorted(self.blknos)) or "none")


def classify(text):
    """The verdict on the output of `xfs_logprint -t`."""
    m = STATE.search(text)
    if not m:
        raise ValueError("xfs_logprint printed no log state:\n" + text[-2000:])
    state = m.group(3)
    kinds, blknos = set(), set()
    for line in text[m.end():].splitlines():
        im = ITEM.match(line)
        if im and im.group(1) not in NOT_ITEMS:
            kinds.add(im.group(1))
        bm = BUF_BLKNO.match(line)
        if bm:
            blknos.add(bm.group(1))
    if state == "CLEAN":
        verdict = "clean"
    elif kinds <= {"BUF"} and blknos <= {"0x0"}:
        verdict = "covered"  # the superblock is the buffer at disk address 0, nothing else
    else:
        verdict = "dirty"
    return LogState(verdict, state, kinds, blknos, text)


def log_state(img):
    """The verdict on the XFS in IMG (a raw image), read from a sparse scratch copy of it."""
    with tempfile.TemporaryDirectory(prefix="xfslog-", dir=Path(img).parent) as d:
        copy = Path(d) / "copy.img"
        subprocess.run(["cp", "--sparse=always", str(img), str(copy)], check=True,
                       stdin=subprocess.DEVNULL)
        r = subprocess.run(["xfs_logprint", "-t", str(copy)], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=300)
    if r.returncode != 0:
        raise ValueError("xfs_logprint -t %s: exit %d: %s" % (img, r.returncode, r.stderr[-500:]))
    return classify(r.stdout + r.stderr)


def missing_tools():
    return [t for t in ("xfs_logprint",) if not shutil.which(t)]


if __name__ == "__main__":
    for a in sys.argv[1:]:
        print("%s: %s" % (a, log_state(a)))
