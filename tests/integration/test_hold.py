# SPDX-License-Identifier: Apache-2.0
"""Held hooks (HOOKS/hold.d) end to end: real FIFREEZE on loop-mounted ext4 and xfs, moto behind
the fault proxy (which holds CreateImage while the test looks), the IMDS test server.

The holders are sh scripts that follow the protocol of the README (Held hooks): KEY=VALUE lines
and READY on $EC2_IMAGED_READY_FD, then a read of it until EOF, the release. They leave their
marks in the test's tmp dir, never on a scratch filesystem the agent freezes.

Safety as in test_run.py, whose rig this uses: every configuration lists only the rig's scratch
mounts, and the rig's finalizer kills what the test started, by PID, then thaws, unmounts and
detaches every scratch filesystem.  Holders are killed by the PID they wrote.

Run as root:
    /usr/bin/python3 -m pytest -q tests/integration/test_hold.py
"""

import os
import signal
import time

from scratchfs import is_frozen, wait_until
from test_run import DEADLINE, EXIT_FAILED, rig  # noqa: F401 (rig: the fixture)

HOLDER = """\
echo $$ > {d}/{n}.pid
test -e {d}/pre-freeze-ran && echo yes > {d}/{n}.after-pre-freeze
{before}
printf 'BINLOG_FILE=mysql-bin.000003\\nBINLOG_POS=1234\\n' >&"$EC2_IMAGED_READY_FD"
echo READY >&"$EC2_IMAGED_READY_FD"
cat <&"$EC2_IMAGED_READY_FD" >/dev/null
echo released > {d}/{n}.released
{after}
"""


def holder(rig, name, before="", after="", body=None):
    """A holder in hold.d; its marks are TMP/NAME.pid, .after-pre-freeze, .released."""
    text = body if body is not None else HOLDER.format(d=rig.tmp, n=name, before=before,
                                                       after=after)
    return rig.hook("hold", name, text)


def markers(rig, post_thaw_checks=(), post_thaw_waits=False):
    """A pre-freeze hook that marks its run, and a post-thaw hook that marks its own and, for
    each holder named, whether that holder had been released by then; with POST_THAW_WAITS it
    then waits (30 s at most) for TMP/go."""
    rig.hook("pre-freeze", "10-mark", "echo ran > %s/pre-freeze-ran\n" % rig.tmp)
    body = "echo ran > %s/post-thaw-ran\n" % rig.tmp
    if post_thaw_waits:
        body += "i=0; while [ ! -e {d}/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n" \
            .format(d=rig.tmp)
    for n in post_thaw_checks:
        body += "test -e {d}/{n}.released && echo yes > {d}/{n}.released-before-post-thaw\n" \
            .format(d=rig.tmp, n=n)
    rig.hook("post-thaw", "10-mark", body + "exit 0\n")


def pid_of(rig, name):
    p = rig.tmp / (name + ".pid")
    assert wait_until(lambda: p.exists() and p.read_text().strip(), timeout=DEADLINE), \
        "holder %s never started" % name
    return int(p.read_text())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (the agent reaps it a moment later).
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def kill_left(rig, *names):
    """Whatever a failed test left of its holders."""
    for n in names:
        p = rig.tmp / (n + ".pid")
        if p.exists() and p.read_text().strip():
            try:
                os.kill(int(p.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def holders_of(j):
    return {h["name"]: h for h in j.get("holders", [])}


def held_run(rig, name):
    """Start a run whose CreateImage the proxy holds; once it is sent (the agent is frozen),
    return the agent and the pid of holder NAME."""
    rig.fault_create({"kind": "hold"})
    a = rig.start("run", "--json")
    rig.wait_create_sent()
    return a, pid_of(rig, name)


def test_holder_holds_across_the_freeze(rig):
    """READY before the freeze, alive while CreateImage is held with the filesystems frozen,
    released after the thaw (its write after the release does not wait on a freeze) and before
    the post-thaw hooks; its KEY=VALUE lines and times in the run's JSON and in status --json."""
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    markers(rig, post_thaw_checks=["50-db"], post_thaw_waits=True)
    holder(rig, "50-db", after="echo after > %s/after-release\n" % ext4)
    rig.configure()
    try:
        a, pid = held_run(rig, "50-db")
        assert is_frozen(ext4) and is_frozen(xfs)
        assert alive(pid), "the holder is not holding while CreateImage is under way"
        assert not (rig.tmp / "50-db.released").exists()
        assert (rig.tmp / "50-db.after-pre-freeze").exists(), "held before the pre-freeze hooks"
        rig.proxy.release()
        # The run stands in its post-thaw hooks: status --json shows the holders it recorded.
        assert wait_until(lambda: (rig.tmp / "post-thaw-ran").exists(), timeout=DEADLINE)
        s = rig.agent("status", "--json")
        (rig.tmp / "go").write_text("")
        assert a.wait() == 0, a.err
    finally:
        (rig.tmp / "go").write_text("")
        kill_left(rig, "50-db")
    assert s.rc == 0, s.err
    cur = s.json()["current"]
    assert holders_of(cur)["50-db"]["end"] == "released", cur
    assert holders_of(cur)["50-db"]["values"]["BINLOG_POS"] == "1234", cur
    assert not alive(pid)
    assert (ext4 / "after-release").exists()
    assert (rig.tmp / "50-db.released-before-post-thaw").exists()
    j = a.json()
    assert j["consistency"] == "fs-frozen", j
    h = holders_of(j)["50-db"]
    assert h["end"] == "released" and h["exit_status"] == 0 and not h["lost_while_holding"], h
    assert h["ready_ms"] >= 0 and h["held_ms"] >= 0, h
    assert h["values"] == {"BINLOG_FILE": "mysql-bin.000003", "BINLOG_POS": "1234"}, h
    assert "message" not in h or h["message"] is None, h
    assert "is ready after" in a.err and "50-db" in a.err
    assert rig.state()["history"][0]["result"] == "success"


def test_no_ready_in_time_fails_before_the_freeze(rig):
    ext4 = rig.add_fs("ext4")
    markers(rig)
    holder(rig, "30-never", body="echo $$ > %s/30-never.pid\nexec sleep 60\n" % rig.tmp)
    rig.configure(hooks__hold_ready_timeout_s=1)
    try:
        a = rig.agent("run", "--json")
    finally:
        kill_left(rig, "30-never")
    assert a.rc == EXIT_FAILED, a.err
    j = a.json()
    assert "30-never (hold) did not say READY" in j["error"], j["error"]
    assert "nothing was frozen" in j["error"]
    assert j["freeze_window_ms"] == -1, j
    assert rig.create_calls() == [] and rig.images() == []
    assert (rig.tmp / "post-thaw-ran").exists()
    assert not alive(pid_of(rig, "30-never"))
    h = holders_of(j)["30-never"]
    assert h["end"] == "timed-out" and h["ready_ms"] == -1 and h["held_ms"] == -1, h
    assert not is_frozen(ext4)


def test_exit_before_ready_fails_and_releases_the_others(rig):
    ext4 = rig.add_fs("ext4")
    markers(rig)
    holder(rig, "10-ok")
    holder(rig, "20-quits", body="echo 'no database here' >&2\nexit 3\n")
    rig.configure()
    try:
        a = rig.agent("run", "--json")
    finally:
        kill_left(rig, "10-ok")
    assert a.rc == EXIT_FAILED, a.err
    j = a.json()
    assert "20-quits (hold) exited with status 3 before it said READY" in j["error"], j["error"]
    assert "no database here" in a.err
    assert rig.create_calls() == [] and j["freeze_window_ms"] == -1
    assert (rig.tmp / "post-thaw-ran").exists()
    # The one that was ready is released, as after a run.
    assert (rig.tmp / "10-ok.released").exists()
    hs = holders_of(j)
    assert hs["10-ok"]["end"] == "released" and hs["20-quits"]["end"] == "exited"
    assert hs["20-quits"]["exit_status"] == 3
    assert not is_frozen(ext4)


def test_death_while_holding_fails_the_run_after_the_thaw(rig):
    ext4 = rig.add_fs("ext4")
    markers(rig)
    holder(rig, "50-db")
    rig.configure()
    try:
        a, pid = held_run(rig, "50-db")
        os.kill(pid, signal.SIGKILL)
        # Its death changes nothing while frozen: the thaw still waits for CreateImage.
        time.sleep(0.5)
        assert is_frozen(ext4)
        rig.proxy.release()
        assert a.wait() == EXIT_FAILED, a.err
    finally:
        kill_left(rig, "50-db")
    j = a.json()
    assert "50-db (hold) was killed by signal SIGKILL while it held" in j["error"], j["error"]
    assert "not application-consistent" in j["error"] and j["image_id"] in j["error"]
    assert len(rig.images()) == 1
    h = holders_of(j)["50-db"]
    assert h["lost_while_holding"] and h["end"] == "killed" and h["signal"] == 9, h
    assert (rig.tmp / "post-thaw-ran").exists()
    assert not (rig.tmp / "50-db.released").exists()
    assert rig.all_thawed()


def test_hang_at_release_is_killed_and_does_not_delay_the_thaw(rig):
    ext4 = rig.add_fs("ext4")
    markers(rig)
    # SIGTERM ignored, by the sleep as well: only SIGKILL ends it.
    holder(rig, "50-stuck", before="trap '' TERM",
           after="while :; do sleep 1; done\n")
    rig.configure(hooks__kill_grace_s=3)
    try:
        a, pid = held_run(rig, "50-stuck")
        assert is_frozen(ext4)
        rig.proxy.release()
        # Released (it saw EOF) and hanging, with the filesystem already thawed.
        assert wait_until(lambda: (rig.tmp / "50-stuck.released").exists(), timeout=DEADLINE)
        assert rig.scratch.writable(ext4, 10), "not thawed while the holder hangs"
        assert alive(pid), "thawed only once the holder was killed (or it stopped hanging)"
        assert a.wait() == 0, a.err
    finally:
        kill_left(rig, "50-stuck")
    assert not alive(pid)
    j = a.json()
    h = holders_of(j)["50-stuck"]
    assert h["end"] == "timed-out" and h["signal"] == 9 and not h["lost_while_holding"], h
    assert "did not exit within 3000 ms of its release" in h["message"], h
    assert j["consistency"] == "fs-frozen" and j["phase"] == "done"
    assert (rig.tmp / "post-thaw-ran").exists()


def test_bad_line_fails_before_the_freeze(rig):
    rig.add_fs("ext4")
    markers(rig)
    holder(rig, "40-chatty", body="echo 'binlog position: 4' >&\"$EC2_IMAGED_READY_FD\"\n"
           "echo READY >&\"$EC2_IMAGED_READY_FD\"\nsleep 30\n")
    rig.configure()
    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    j = a.json()
    assert "40-chatty (hold) wrote a line" in j["error"] and "neither READY" in j["error"], j
    assert rig.create_calls() == [] and (rig.tmp / "post-thaw-ran").exists()


def test_reboot_mode_runs_no_holder(rig):
    rig.add_fs("ext4")
    holder(rig, "50-db")
    rig.configure()
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.rc == 0, a.err
    assert "held hook(s)" in a.err and "not run in reboot mode" in a.err, a.err
    assert not (rig.tmp / "50-db.pid").exists()


def test_dry_run_lists_the_holders(rig):
    rig.add_fs("ext4")
    holder(rig, "50-db")
    rig.configure()
    a = rig.agent("run", "--dry-run", "--json")
    assert a.rc == 0, a.err
    assert "hooks hold: 50-db would run" in a.json()["dry_run_report"], a.out
    assert not (rig.tmp / "50-db.pid").exists()
