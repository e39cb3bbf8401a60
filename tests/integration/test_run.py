# SPDX-License-Identifier: Apache-2.0
"""`ec2-imaged run/resume/status/thaw` end to end: real FIFREEZE on loop-mounted ext4 and xfs,
moto behind the fault proxy for EC2, the IMDS test server for the instance's identity.

Safety: every configuration written here lists its scratch mounts in `[freeze] mounts` (the
Rig refuses to write one that does not, or that names anything but its own loop-mounted scratch
filesystems: `auto` would freeze this machine), and puts `[run] state_dir` and `[hooks] dir` in
the test's tmp dir.  The rig's finalizer kills what the test started, by PID, then thaws
(`fsfreeze -u`), unmounts and detaches every scratch filesystem, whatever happened in the test.
The agent only ever talks to loopback peers (agent_env).  Every wait has a deadline.

Run as root:
    /usr/bin/python3 -m pytest -q tests/integration/test_run.py
"""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest
from scratchfs import ScratchFS, Writer, is_frozen, proc_state, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="needs root: losetup, mount and FIFREEZE on scratch filesystems"),
    pytest.mark.skipif(not all(shutil.which(t) for t in
                               ("losetup", "mkfs.ext4", "mkfs.xfs", "fsfreeze", "mount")),
                       reason="needs util-linux (losetup, mount, fsfreeze), e2fsprogs, xfsprogs"),
]

REGION = "us-east-1"
MOTO_AMI = "ami-12c6146b"
ACCOUNT = "123456789012"
DEADLINE = 30  # seconds; the bound on any single wait
AGENT_TIMEOUT = 90  # seconds; the bound on one agent command
PROMPT = 2.5  # seconds; "promptly": a thaw on a signal or on the guard's pipe EOF
CONFIG_TAG = ("team:owner", "platform")
EXIT_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_UNFINISHED = 1, 2, 4, 5
GUARD_EXIT_ORPHANED = 2  # agent/host/freeze_guard.c: the guard thawed because its parent went away
PR_SET_CHILD_SUBREAPER = 36
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")
# The DryRun CreateImage of the pre-flight checks comes first and would take a fault queued for
# CreateImage: this no-op fault is queued in front of the one meant for the real call.
PASS_DRY_RUN = {"kind": "delay", "delay_ms": 0, "action": "CreateImage"}
RUN_PHASES = ("preflight", "pre-image", "pre-freeze", "freezing", "post-thaw", "waiting",
              "post-image")
REPO = Path(__file__).resolve().parents[2]
HOOK_PHASES = ("pre-image", "pre-freeze", "post-thaw", "post-image")


def unfinished_phases():
    """Every phase of enum run_phase, read from its string table in agent/core/state.c, but
    done and failed: a phase added there is tested here without anyone listing it."""
    names = re.findall(r'\[PHASE_[A-Z_]+\] = "([a-z-]+)"',
                       (REPO / "agent" / "core" / "state.c").read_text())
    assert "freezing" in names and "done" in names, names
    return [n for n in names if n not in ("done", "failed")]


def proc_stat(pid):
    """(comm, state letter, ppid) of /proc/PID/stat, or None when the process is gone."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    return stat[stat.index("(") + 1:stat.rindex(")")], rest[0], int(rest[1])


def children_named(comm):
    """Our own child processes called COMM (orphans we inherited as subreaper)."""
    me, found = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[0] == comm and st[2] == me:
                found.append(int(d))
    return found


def reap(pid, timeout=DEADLINE):
    """Exit status of a child of ours (an inherited orphan), None if it did not exit in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    return None


def timed_write(scratch, mnt, timeout=PROMPT):
    """Seconds a write+fsync from a new process took to finish on MNT (it waits for a thaw);
    None when it did not finish within TIMEOUT.  Unlike FIFREEZE probing this disturbs nobody."""
    t0 = time.monotonic()
    if scratch.writable(mnt, timeout):
        return time.monotonic() - t0
    return None


class Agent:
    """A running agent command, its stdout and stderr in files (nothing can fill a pipe)."""

    def __init__(self, rig, args):
        self.args = args
        n = len(rig.agents)
        self.out_path = rig.tmp / ("agent-%d.out" % n)
        self.err_path = rig.tmp / ("agent-%d.err" % n)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [rig.agent_bin, "--config", str(rig.config_path)] + list(args),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=rig.env,
                start_new_session=True)
        self.pid = self.proc.pid

    def wait(self, timeout=AGENT_TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("ec2-imaged %s still running after %ss; stderr:\n%s"
                        % (" ".join(self.args), timeout, self.err))

    @property
    def out(self):
        return self.out_path.read_text(errors="replace")

    @property
    def err(self):
        return self.err_path.read_text(errors="replace")

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            pytest.fail("not JSON on stdout:\n%s\nstderr:\n%s" % (self.out, self.err))


class Rig:
    """moto with one instance, the IMDS server that says we are it, the fault proxy in front of
    moto, scratch filesystems, a hooks dir, a state dir and the config that ties them up."""

    def __init__(self, tmp, moto, proxy, imds, env, agent_bin, instance_id):
        self.tmp, self.moto, self.proxy, self.imds = tmp, moto, proxy, imds
        self.env, self.agent_bin, self.instance_id = env, agent_bin, instance_id
        self.ec2 = client(moto.url, "ec2", region=REGION)
        self.scratch = ScratchFS(base=tmp)
        self.mounts = []
        self.agents = []
        self.state_dir = tmp / "state"
        self.state_dir.mkdir(mode=0o700)
        self.hooks_dir = tmp / "hooks"
        self.hooks_dir.mkdir()
        os.chmod(self.hooks_dir, 0o755)
        self.config_path = tmp / "ec2-imaged.conf"

    # ---- set-up

    def add_fs(self, kind):
        mnt = self.scratch.make(kind)
        self.mounts.append(mnt)
        return mnt

    def configure(self, mounts=None, **keys):
        """Write the config: the defaults below, then KEYS given as section__key=value (a list
        value repeats the key).  Freeze mounts are always explicit scratch mounts."""
        mounts = self.mounts if mounts is None else mounts
        # Never `auto`, never empty (which means auto), never a mount that is not ours.
        assert mounts, "a test config must list its scratch mounts in [freeze] mounts"
        for m in mounts:
            assert Path(m) in self.scratch.mounts, "%s is not a scratch mount" % m
        conf = {
            "aws": {"max_attempts": 3, "retry_deadline_ms": 10000, "timeout_ms": 20000},
            "run": {"state_dir": self.state_dir, "wait_timeout_s": 60, "wait_poll_max_s": 1},
            "image": {"name": "itest-{run_id}", "tag": ["%s=%s" % CONFIG_TAG]},
            "freeze": {"mounts": " ".join(str(m) for m in mounts), "timeout_ms": 60000,
                       "on_failure": "abort"},
            "hooks": {"dir": self.hooks_dir, "timeout_s": 30, "kill_grace_s": 1},
        }
        for name, value in keys.items():
            section, key = name.split("__", 1)
            assert (section, key) != ("freeze", "mounts"), "pass mounts= instead"
            conf.setdefault(section, {})[key] = value
        lines = []
        for section, kv in conf.items():
            lines.append("[%s]" % section)
            for k, v in kv.items():
                for item in (v if isinstance(v, list) else [v]):
                    lines.append("%s = %s" % (k, item))
            lines.append("")
        self.config_path.write_text("\n".join(lines))
        return self.config_path

    def hook(self, phase, name, body):
        """A root-owned 0755 shell hook in HOOKS/PHASE.d; returns its path."""
        d = self.hooks_dir / (phase + ".d")
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o755)
        path = d / name
        path.write_text("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def fault_create(self, fault):
        """Queue FAULT for the real CreateImage (the pre-flight DryRun passes untouched)."""
        self.proxy.faults(PASS_DRY_RUN, dict(fault, action="CreateImage"))

    # ---- running the agent

    def start(self, *args):
        a = Agent(self, args)
        self.agents.append(a)
        return a

    def agent(self, *args, timeout=AGENT_TIMEOUT):
        a = self.start(*args)
        a.rc = a.wait(timeout)
        return a

    # ---- looking

    def images(self, name=None):
        """Images in moto owned by us (all of them, or those named NAME)."""
        kw = {"Owners": ["self"]}
        if name:
            kw["Filters"] = [{"Name": "name", "Values": [name]}]
        return self.ec2.describe_images(**kw)["Images"]

    def create_calls(self):
        """The real (not DryRun) CreateImage requests the proxy has seen."""
        return [r for r in self.proxy.requests()
                if r["action"] == "CreateImage" and r["params"].get("DryRun") != "true"]

    def wait_create_sent(self):
        """Until the real CreateImage reached the proxy: the agent is inside its frozen window
        (it freezes before the call), so probing with FIFREEZE cannot race its own freeze."""
        assert wait_until(lambda: self.create_calls(), step=0.05), \
            "no CreateImage reached the proxy; agent stderr:\n%s" % self.agents[-1].err

    def wait_image_count(self, name, n=1):
        assert wait_until(lambda: len(self.images(name)) >= n, step=0.1), \
            "image %s never appeared in moto" % name

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())

    def all_thawed(self, timeout=10):
        return all(self.scratch.writable(m, timeout) for m in self.mounts)

    def close(self):
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.kill()  # its guard thaws; cleanup() below thaws anyway
                try:
                    a.proc.wait(timeout=DEADLINE)
                except subprocess.TimeoutExpired:
                    pass
        self.scratch.cleanup()
        for pid in children_named("ec2-imaged-guar"):  # inherited while we were subreaper
            reap(pid, timeout=5)


@pytest.fixture
def rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    # An AMI moto ships in us-east-1: listing Owners=amazon to find one takes seconds.
    instance_id = create_moto_instance(moto.url, region=REGION, image_id=MOTO_AMI)
    imds = imds_factory(instance_id=instance_id, region=REGION, account_id=ACCOUNT)
    proxy = fault_proxy(moto)
    r = Rig(tmp_path, moto, proxy, imds, agent_env(imds=imds, endpoint=proxy), agent_bin,
            instance_id)
    try:
        yield r
    finally:
        r.close()
    # Under the sanitizer build (EC2_IMAGED_BIN=build-san/...), also for runs that were meant to
    # fail or were killed: their exit status alone would not show a report.
    reports = [a.err for a in r.agents if SANITIZER_REPORT.search(a.err)]
    assert not reports, "sanitizer report:\n" + reports[0]


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def snapshots_of(rig, image):
    """The snapshots behind an image's EBS mappings (at least one: moto makes them)."""
    ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
           if "Ebs" in m and m["Ebs"].get("SnapshotId")]
    assert ids, image
    return rig.ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]


# ---------------------------------------------------------------- success


def test_no_reboot_run_on_ext4_and_xfs(rig):
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    marker = rig.tmp / "pre-image.marker"
    rig.hook("pre-image", "10-mark",
             'echo "$EC2_IMAGED_PHASE $EC2_IMAGED_RUN_ID $INSTANCE_ID" > %s\n' % marker)
    # Post-thaw hooks run after the thaw: this one writes to a frozen filesystem otherwise.
    rig.hook("post-thaw", "10-write", "echo thawed > %s/post-thaw\n" % ext4)
    rig.configure()

    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["image_id"].startswith("ami-")
    assert j["phase"] == "done" and j["error"] is None
    assert j["consistency"] == "fs-frozen"
    assert j["freeze_window_ms"] >= 0 and j["create_call_ms"] >= 0
    assert j["frozen_mounts"] == [str(ext4), str(xfs)]
    for phase in RUN_PHASES:
        assert j["phase_times"][phase]["ms"] >= 0, (phase, j["phase_times"])

    images = rig.images(j["image_name"])
    assert [im["ImageId"] for im in images] == [j["image_id"]]
    expected = {CONFIG_TAG[0]: CONFIG_TAG[1], "ec2-imaged:run-id": j["run_id"],
                "ec2-imaged:consistency": "fs-frozen",
                "ec2-imaged:source-instance": rig.instance_id}
    assert tags_of(images[0]) == expected
    for snap in snapshots_of(rig, images[0]):
        assert expected.items() <= tags_of(snap).items(), snap

    assert rig.all_thawed()
    assert not is_frozen(ext4) and not is_frozen(xfs)
    assert marker.read_text().split() == ["pre-image", j["run_id"], rig.instance_id]
    assert (ext4 / "post-thaw").read_text() == "thawed\n"

    s = rig.agent("status", "--json")
    assert s.rc == 0, s.err
    st = s.json()
    assert st["current"] is None
    h = st["history"][0]
    assert (h["run_id"], h["result"], h["image_id"], h["consistency"]) == \
        (j["run_id"], "success", j["image_id"], "fs-frozen")


def test_freeze_blocks_writers_during_create_image(rig):
    ext4 = rig.add_fs("ext4")
    rig.configure()
    writer = Writer(rig.scratch, ext4 / "writer.dat")
    assert writer.progresses_past(5), "the writer made no progress before the run"
    rig.fault_create({"kind": "delay", "delay_ms": 3000})

    a = rig.start("run", "--json")
    rig.wait_create_sent()
    assert is_frozen(ext4)
    # The writer's next write or fsync sleeps uninterruptibly on the frozen superblock.
    assert wait_until(lambda: writer.state() == "D"), "writer state %s" % writer.state()
    time.sleep(0.1)  # the line printed just before it blocked reaches our pump
    blocked_at = writer.count
    time.sleep(0.5)
    assert is_frozen(ext4), "the freeze ended before the check; lengthen the delay"
    assert writer.count == blocked_at, "the writer made progress on a frozen filesystem"

    assert a.wait() == 0, a.err
    assert writer.progresses_past(blocked_at), "the writer did not resume after the thaw"
    j = a.json()
    assert j["consistency"] == "fs-frozen"
    # The window covered the whole delayed call (the proxy sat on it for 3 s).
    assert j["create_call_ms"] >= 3000 and j["freeze_window_ms"] >= j["create_call_ms"]
    assert not is_frozen(ext4)


# ---------------------------------------------------------------- failures thaw


def test_pre_freeze_hook_failure(rig):
    ext4 = rig.add_fs("ext4")
    rig.hook("pre-freeze", "10-quiesce", "echo quiesced > %s/quiesced\n" % ext4)
    rig.hook("pre-freeze", "20-fails", "echo 'cannot quiesce the database' >&2\nexit 1\n")
    rig.hook("post-thaw", "10-resume", "rm %s/quiesced\necho resumed > %s/resumed\n"
             % (ext4, ext4))
    rig.configure()

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    j = a.json()
    assert j["phase"] == "failed"
    assert "20-fails" in j["error"], j["error"]
    assert "20-fails" in a.err
    assert not is_frozen(ext4) and rig.all_thawed()
    # What the pre-freeze hooks did is undone by the post-thaw hooks, failure or not.
    assert not (ext4 / "quiesced").exists() and (ext4 / "resumed").exists()
    assert rig.create_calls() == []
    assert rig.images() == []
    st = rig.state()
    assert st["current"] is None and st["history"][0]["result"] == "failed"


def test_create_image_failure_thaws(rig):
    ext4 = rig.add_fs("ext4")
    rig.hook("post-thaw", "10-resume", "echo resumed > %s/resumed\n" % ext4)
    rig.configure(aws__max_attempts=2, aws__retry_deadline_ms=2000)
    rig.fault_create({"kind": "error500", "count": 10})

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    j = a.json()
    assert j["phase"] == "failed" and "CreateImage" in j["error"], j
    # A 500 may come after EC2 acted: CreateImage is not repeated, the name is looked up instead.
    assert len(rig.create_calls()) == 1
    assert not is_frozen(ext4) and rig.all_thawed()
    assert (ext4 / "resumed").exists()  # post-thaw hooks ran after the failure
    assert rig.images() == []


def test_freeze_failure_aborts(rig):
    ext4 = rig.add_fs("ext4")
    rig.configure()
    subprocess.run(["fsfreeze", "-f", str(ext4)], check=True, timeout=DEADLINE)

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    assert "already frozen" in a.err
    assert "nothing was imaged" in a.json()["error"]
    assert rig.create_calls() == []
    assert rig.images() == []
    # Someone else's freeze is not ours to undo.
    assert is_frozen(ext4)
    subprocess.run(["fsfreeze", "-u", str(ext4)], check=True, timeout=DEADLINE)
    assert rig.all_thawed()


def test_freeze_failure_continue_takes_crash_consistent_image(rig):
    ext4 = rig.add_fs("ext4")
    rig.configure(freeze__on_failure="continue")
    subprocess.run(["fsfreeze", "-f", str(ext4)], check=True, timeout=DEADLINE)

    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["consistency"] == "crash"
    [image] = rig.images(j["image_name"])
    assert tags_of(image)["ec2-imaged:consistency"] == "crash"
    assert is_frozen(ext4)  # still someone else's; the rig's finalizer thaws it too
    subprocess.run(["fsfreeze", "-u", str(ext4)], check=True, timeout=DEADLINE)


# ---------------------------------------------------------------- interrupted runs


def test_sigterm_while_frozen_thaws_then_resume(rig):
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.configure()
    rig.fault_create({"kind": "delay", "delay_ms": 6000})

    a = rig.start("run", "--json")
    rig.wait_create_sent()
    assert is_frozen(ext4) and is_frozen(xfs)
    a.proc.send_signal(signal.SIGTERM)
    # Thawed long before CreateImage could have answered (6 s) or the guard timed out (60 s).
    for mnt in (ext4, xfs):
        assert timed_write(rig.scratch, mnt) is not None, \
            "%s not writable within %ss of SIGTERM" % (mnt, PROMPT)
    assert a.wait() == -signal.SIGTERM, a.err
    assert not is_frozen(ext4) and not is_frozen(xfs)

    st = rig.state()
    assert st["current"] is not None and st["current"]["phase"] in ("freezing", "creating")
    assert st["current"]["image_id"] is None
    name = st["current"]["image_name"]
    # The request left before the signal: EC2 (moto, after the proxy's delay) makes the image.
    rig.wait_image_count(name)

    r = rig.agent("resume", "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["run_id"] == st["current"]["run_id"] and j["phase"] == "done"
    # The thaw came before CreateImage's answer: the freeze may not have covered the snapshot.
    assert j["consistency"] == "crash"
    images = rig.images(name)
    assert len(images) == 1 and images[0]["ImageId"] == j["image_id"]
    assert tags_of(images[0])["ec2-imaged:consistency"] == "crash"
    for snap in snapshots_of(rig, images[0]):
        assert tags_of(snap)["ec2-imaged:consistency"] == "crash"
    assert len(rig.create_calls()) == 1  # resume adopted it by name, it did not call again
    assert rig.state()["current"] is None


@pytest.fixture
def subreaper():
    """Make this process the subreaper, so the guard of a killed agent becomes our child and
    its exit status can be read; undone afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def test_sigkill_while_frozen_guard_thaws_then_resume(rig, subreaper):
    ext4 = rig.add_fs("ext4")
    rig.configure(freeze__timeout_ms=5000)
    rig.fault_create({"kind": "delay", "delay_ms": 4000})

    a = rig.start("run", "--json")
    rig.wait_create_sent()
    assert is_frozen(ext4)
    a.proc.kill()
    assert a.wait() == -signal.SIGKILL
    # Nobody thaws but the guard, on the EOF of its pipe, well before its 5 s timeout; and its
    # exit status says which of the two it was.
    assert timed_write(rig.scratch, ext4) is not None, \
        "the guard did not thaw within %ss of SIGKILL" % PROMPT
    assert wait_until(lambda: children_named("ec2-imaged-guar"))
    [guard] = children_named("ec2-imaged-guar")
    assert reap(guard) == GUARD_EXIT_ORPHANED
    assert not is_frozen(ext4)

    st = rig.state()
    assert st["current"]["phase"] in ("freezing", "creating")
    name = st["current"]["image_name"]
    rig.wait_image_count(name)

    r = rig.agent("resume", "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["phase"] == "done" and j["consistency"] == "crash"
    [image] = rig.images(name)
    assert image["ImageId"] == j["image_id"]
    assert tags_of(image)["ec2-imaged:consistency"] == "crash"
    assert len(rig.create_calls()) == 1


# ---------------------------------------------------------------- reboot mode


CURL_RESENDS = pytest.mark.xfail(strict=True, reason=(
    "the agent does not repeat CreateImage after a lost answer, but libcurl re-sends a request "
    "on a reused connection that died before any byte of the answer; EC2 refuses the second "
    "image's name (InvalidAMIName.Duplicate), which the flow resolves by lookup "
    "(test_duplicate_name_answer_adopts_the_image), moto does not"))


@pytest.mark.parametrize("stop", ["sigkill", pytest.param("drop_response", marks=CURL_RESENDS)])
def test_reboot_mode_resumes_after_the_shutdown(rig, stop):
    ext4 = rig.add_fs("ext4")
    rig.configure()
    if stop == "sigkill":
        # EC2 stops the instance while the answer is on its way: the agent dies with the
        # request sent (the proxy forwards it after the delay) and no answer read.
        rig.fault_create({"kind": "delay", "delay_ms": 1500})
    else:
        # The request reached EC2, the answer never came back.
        rig.fault_create({"kind": "drop_response"})

    a = rig.start("run", "--mode", "reboot", "--json")
    if stop == "sigkill":
        rig.wait_create_sent()
        a.proc.kill()
        assert a.wait() == -signal.SIGKILL
    else:
        a.rc = a.wait()
    st = rig.state()
    assert st["current"]["phase"] == "rebooting", st
    assert st["current"]["mode"] == "reboot"
    name = st["current"]["image_name"]
    rig.wait_image_count(name)
    [call] = rig.create_calls()
    assert call["params"]["NoReboot"] == "false"
    assert not is_frozen(ext4)

    r = rig.agent("resume", "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["phase"] == "done" and j["consistency"] == "rebooted"
    assert j["boots"] >= 1
    [image] = rig.images(name)
    assert image["ImageId"] == j["image_id"]
    assert tags_of(image)["ec2-imaged:consistency"] == "rebooted"
    assert len(rig.create_calls()) == 1

    again = rig.agent("resume", "--json")
    assert again.rc == 0, again.err
    assert again.json() == {"resumed": False}
    plain = rig.agent("resume")
    assert plain.rc == 0 and "no unfinished run" in plain.out
    assert len(rig.images()) == 1


# ---------------------------------------------------------------- refusals


def test_second_run_is_refused_while_one_holds_the_lock(rig):
    rig.add_fs("ext4")
    started, release = rig.tmp / "hook-started", rig.tmp / "hook-release"
    rig.hook("pre-image", "10-wait",
             "touch %s\ni=0\nwhile [ ! -e %s ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n"
             % (started, release))
    rig.configure()

    first = rig.start("run", "--json")
    assert wait_until(started.exists), "the pre-image hook never started:\n" + first.err
    second = rig.agent("run", "--json")
    assert second.rc == EXIT_BUSY, second.err
    assert "Another run is under way" in second.err
    release.touch()
    assert first.wait() == 0, first.err
    assert len(rig.images()) == 1


def test_run_with_unfinished_run_exits_5(rig):
    rig.add_fs("ext4")
    rig.configure()
    rig.fault_create({"kind": "delay", "delay_ms": 1000})
    a = rig.start("run", "--mode", "reboot")
    rig.wait_create_sent()
    a.proc.kill()  # EC2 stops the instance
    assert a.wait() == -signal.SIGKILL
    assert rig.state()["current"]["phase"] == "rebooting"

    b = rig.agent("run")
    assert b.rc == EXIT_UNFINISHED, b.err
    assert "unfinished" in b.err and "resume" in b.err
    assert len(rig.create_calls()) == 1


def test_dry_run_changes_nothing(rig):
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.hook("pre-image", "10-stop-app", "exit 0\n")
    rig.hook("post-image", "90-notify", "exit 0\n")
    rig.configure()

    a = rig.agent("run", "--dry-run", "--json")
    assert a.rc == 0, a.err
    report = "\n".join(a.json()["dry_run_report"])
    assert "10-stop-app" in report and "90-notify" in report
    assert "would freeze: %s" % ext4 in report and "would freeze: %s" % xfs in report
    t = rig.agent("run", "--dry-run")
    assert t.rc == 0 and "would freeze: %s" % xfs in t.out

    assert [r["params"].get("DryRun") for r in rig.create_calls()] == []
    assert all(r["params"].get("DryRun") == "true" for r in rig.proxy.requests()
               if r["action"] == "CreateImage")
    assert rig.images() == []
    assert os.listdir(rig.state_dir) == []  # no state, not even the lock
    assert not is_frozen(ext4) and not is_frozen(xfs)


def test_thaw_command(rig):
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.configure()
    subprocess.run(["fsfreeze", "-f", str(xfs)], check=True, timeout=DEADLINE)
    assert is_frozen(xfs)

    a = rig.agent("thaw")
    assert a.rc == 0, a.err
    assert "thawed %s" % xfs in a.out
    assert str(ext4) not in a.out
    assert not is_frozen(xfs) and rig.all_thawed()
    again = rig.agent("thaw")
    assert again.rc == 0 and "nothing was frozen" in again.out


def test_unknown_config_key_names_file_and_line(rig):
    rig.add_fs("ext4")
    conf = rig.configure()
    lines = conf.read_text().splitlines()
    at = lines.index("[freeze]") + 1
    lines.insert(at, "frobnicate = yes")
    conf.write_text("\n".join(lines) + "\n")

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_USAGE, a.err
    assert "%s:%d" % (conf, at + 1) in a.err, a.err
    assert "frobnicate" in a.err
    assert rig.proxy.requests() == []
    assert not (rig.state_dir / "state.json").exists()


def test_duplicate_name_answer_adopts_the_image(rig):
    """EC2 made the image but its answer said InvalidAMIName.Duplicate (as for a CreateImage
    re-sent after a lost answer): the run looks the name up, adopts its own image, and ends with
    exactly one."""
    ext4 = rig.add_fs("ext4")
    rig.configure()
    rig.fault_create({"kind": "duplicate_name"})
    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["phase"] == "done" and j["image_id"], j
    assert len(rig.create_calls()) == 1
    [image] = rig.images(j["image_name"])
    assert image["ImageId"] == j["image_id"]
    assert not is_frozen(ext4) and rig.all_thawed()


# ---------------------------------------------------------------- reboot asked for by a hook


def test_pre_image_hook_asks_for_a_reboot_mode_image(rig):
    """STATE_DIR/reboot-required written by a pre-image hook (the shipped patch hook with
    [patch] on_reboot_required = reboot-mode) turns a no-reboot run into a reboot-mode one."""
    ext4 = rig.add_fs("ext4")
    ran = rig.tmp / "pre-freeze.ran"
    rig.hook("pre-image", "10-patch",
             'echo "/run/reboot-required" > %s/reboot-required\n' % rig.state_dir)
    rig.hook("pre-freeze", "10-mark", "touch %s\n" % ran)
    rig.configure()
    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    st = rig.state()
    assert st["current"]["phase"] == "rebooting" and st["current"]["mode"] == "reboot", st
    [call] = rig.create_calls()
    assert call["params"]["NoReboot"] == "false"
    assert not (rig.state_dir / "reboot-required").exists()
    assert not ran.exists() and not is_frozen(ext4)
    assert "asked for a reboot" in a.err


def test_a_stale_reboot_request_does_not_switch_the_run(rig):
    ext4 = rig.add_fs("ext4")
    (rig.state_dir / "reboot-required").write_text("left by an earlier run\n")
    rig.configure()
    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["phase"] == "done" and j["consistency"] == "fs-frozen", j
    assert not (rig.state_dir / "reboot-required").exists()
    assert not is_frozen(ext4)


# ---------------------------------------------------------------- a run belongs to its instance


def read_only(action):
    return action.startswith(("Describe", "Get"))


def plant_inherited_run(rig, phase, frozen_mounts=()):
    """What an instance launched from a golden image finds: the golden instance's image (made
    by its run, tagged so) and, in state.json, that run unfinished in PHASE, saved in another
    boot.  Returns (source instance id, run id, image id)."""
    source = create_moto_instance(rig.moto.url, region=REGION, image_id=MOTO_AMI)
    run_id = str(uuid.uuid4())
    name = "golden-" + run_id
    mode = "reboot" if phase == "rebooting" else "no-reboot"
    consistency = "rebooted" if mode == "reboot" else "fs-frozen"
    image_id = rig.ec2.create_image(
        InstanceId=source, Name=name, NoReboot=mode != "reboot",
        TagSpecifications=[{"ResourceType": "image", "Tags": [
            {"Key": "ec2-imaged:run-id", "Value": run_id},
            {"Key": "ec2-imaged:consistency", "Value": consistency},
            {"Key": "ec2-imaged:source-instance", "Value": source}]}])["ImageId"]
    known = phase in ("post-thaw", "waiting", "distributing", "post-image")
    current = {
        "run_id": run_id, "phase": phase, "mode": mode, "dry_run": False,
        "instance_id": source, "region": REGION, "image_name": name,
        "image_id": image_id if known else None, "consistency": consistency if known else None,
        "boot_id": str(uuid.uuid4()), "frozen_mounts": [str(m) for m in frozen_mounts],
        "started_us": int(time.time() * 1e6), "updated_us": int(time.time() * 1e6)}
    if phase in ("distributing", "post-image"):
        current["distribution"] = [{"region": REGION, "image_id": image_id,
                                    "state": "available", "done": []}]
    (rig.state_dir / "state.json").write_text(json.dumps(
        {"version": 1, "current": current, "history": []}))
    return source, run_id, image_id


def hook_markers(rig):
    """A hook in every phase that appends its phase and run id to a file; returns the file."""
    marker = rig.tmp / "hooks.ran"
    for phase in HOOK_PHASES:
        rig.hook(phase, "10-mark", 'echo "%s $EC2_IMAGED_RUN_ID" >> %s\n' % (phase, marker))
    return marker


def assert_filed_as_inherited(rig, run_id, source, marker):
    mutating = [r["action"] for r in rig.proxy.requests() if not read_only(r["action"] or "")]
    assert mutating == [], "changed by another instance's run: %s" % mutating
    assert not marker.exists(), "hooks ran for another instance's run:\n" + marker.read_text()
    st = rig.agent("status", "--json")
    assert st.rc == 0, st.err
    j = st.json()
    assert j["current"] is None, j
    h = j["history"][0]
    assert (h["run_id"], h["result"], h["instance_id"]) == (run_id, "inherited", source), h
    text = rig.agent("status")
    assert "last run %s: inherited" % run_id in text.out, text.out


@pytest.mark.parametrize("phase", unfinished_phases())
def test_inherited_run_is_filed_not_resumed(rig, phase):
    """A state.json that came with the image names another instance's run: `resume` files it as
    inherited and touches nothing of it (no hook, no AWS call that changes anything, no thaw),
    and the next run of this instance works."""
    ext4 = rig.add_fs("ext4")
    marker = hook_markers(rig)
    rig.configure(distribute__ssm_parameter="/itest/golden-ami")
    source, run_id, image_id = plant_inherited_run(rig, phase, [ext4])
    rig.proxy.clear()

    r = rig.agent("resume", "--json")
    assert_filed_as_inherited(rig, run_id, source, marker)
    assert r.rc == 0, r.err
    assert r.json() == {"resumed": False, "inherited": run_id}
    assert "filed as inherited" in r.err
    [image] = rig.images("golden-" + run_id)
    assert image["ImageId"] == image_id
    assert tags_of(image)["ec2-imaged:consistency"] in ("fs-frozen", "rebooted")

    n = rig.agent("run", "--json")
    assert n.rc == 0, n.err
    j = n.json()
    assert j["phase"] == "done" and j["instance_id"] == rig.instance_id, j
    assert j["run_id"] != run_id
    assert [ln.split() for ln in marker.read_text().splitlines()] == \
        [[p, j["run_id"]] for p in HOOK_PHASES]
    creates = rig.create_calls()
    assert [c["params"]["InstanceId"] for c in creates] == [rig.instance_id]
    assert [h["result"] for h in rig.state()["history"]] == ["success", "inherited"]


def test_run_files_an_inherited_run_and_images_this_instance(rig):
    """`run` (not only `resume`) checks whose the unfinished run is: no exit 5 for another
    instance's run, which is filed, and the new run images this instance."""
    rig.add_fs("ext4")
    marker = hook_markers(rig)
    rig.configure()
    source, run_id, _ = plant_inherited_run(rig, "rebooting")
    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["phase"] == "done" and j["instance_id"] == rig.instance_id
    assert [c["params"]["InstanceId"] for c in rig.create_calls()] == [rig.instance_id]
    assert all(ln.split()[1] == j["run_id"] for ln in marker.read_text().splitlines())
    h = rig.state()["history"]
    assert [(e["run_id"], e["result"]) for e in h] == \
        [(j["run_id"], "success"), (run_id, "inherited")]
    assert h[1]["instance_id"] == source


def test_inherited_freeze_is_not_thawed(rig):
    """The inherited run stood in the frozen window and names a mount that is frozen now by
    someone else (a backup tool): the resume does not undo that freeze."""
    ext4 = rig.add_fs("ext4")
    rig.configure()
    _, run_id, _ = plant_inherited_run(rig, "freezing", [ext4])
    subprocess.run(["fsfreeze", "-f", str(ext4)], check=True, timeout=DEADLINE)
    try:
        r = rig.agent("resume", "--json")
        assert r.rc == 0, r.err
        assert r.json()["inherited"] == run_id
        assert is_frozen(ext4), "resume thawed a freeze that is not its own"
    finally:
        subprocess.run(["fsfreeze", "-u", str(ext4)], timeout=DEADLINE)  # ours; may fail if thawed
