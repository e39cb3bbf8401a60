# SPDX-License-Identifier: Apache-2.0
"""The daemon's life beyond one run: what it tells the service manager (STATUS= that no error
text can extend), how it stops a worker that will not stop, and its restart after an upgrade of
the package, deferred while a run is under way.

The rig, the daemon and the sockets that play the service manager are test_daemon.py's; the same
safety rules hold (scratch mounts listed, state and sockets in the test's tmp dir, loopback peers,
processes stopped by PID, a deadline on every wait).
"""

import json
import os
import signal
import time

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
