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
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest
from peers import StderrFile
from scratchfs import ScratchFS, Writer, is_frozen, proc_state, ptrace_held, wait_until

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
PR_CAPBSET_DROP, CAP_SYS_PTRACE = 24, 19
VERY_LONG_TIMEOUT_MS = 600000  # [freeze] timeout_ms far beyond any wait of these tests
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


def guard_of(pid):
    """The thaw guard of the agent PID (its child called ec2-imaged-guar), once it is there."""
    def find():
        return [int(d) for d in os.listdir("/proc") if d.isdigit()
                and (proc_stat(int(d)) or ("", "", 0))[0::2] == ("ec2-imaged-guar", pid)]
    assert wait_until(find, step=0.05), "agent %d has no thaw guard" % pid
    [guard] = find()
    return guard


def drop_ptrace_capability():
    """preexec_fn: root without CAP_SYS_PTRACE (bounding set, hence permitted after exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


def mem_openable(pid):
    """Whether a root process without CAP_SYS_PTRACE opens /proc/PID/mem.  For a target of the
    same user and capabilities the kernel allows it exactly when the target is dumpable."""
    r = subprocess.run([sys.executable, "-c",
                        "import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY))",
                        "/proc/%d/mem" % pid], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=DEADLINE, preexec_fn=drop_ptrace_capability)
    return r.returncode == 0


def unlimited_core():
    """preexec_fn: core files of any size (what a dumpable crash would then write)."""
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def wait_status(pid, timeout=DEADLINE):
    """The raw wait status of our child PID (os.WCOREDUMP needs it), None if it did not end
    within TIMEOUT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return status
        time.sleep(0.02)
    return None


def reap(pid, timeout=DEADLINE):
    """Exit status of a child of ours (an inherited orphan), None if it did not exit in time."""
    status = wait_status(pid, timeout)
    return None if status is None else os.waitstatus_to_exitcode(status)


def timed_write(scratch, mnt, timeout=PROMPT):
    """Seconds a write+fsync from a new process took to finish on MNT (it waits for a thaw);
    None when it did not finish within TIMEOUT.  Unlike FIFREEZE probing this disturbs nobody."""
    t0 = time.monotonic()
    if scratch.writable(mnt, timeout):
        return time.monotonic() - t0
    return None


class Agent(StderrFile):
    """A running agent command, its stdout and stderr in files (nothing can fill a pipe)."""

    def __init__(self, rig, args, stderr=None, err_path=None, **popen):
        """STDERR: a descriptor instead of the file (self.err is then empty); ERR_PATH: where the
        stderr file goes; POPEN: more arguments for subprocess.Popen (cwd, preexec_fn)."""
        self.args = args
        n = len(rig.agents)
        self.out_path = rig.tmp / ("agent-%d.out" % n)
        self.err_path = err_path or rig.tmp / ("agent-%d.err" % n)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [rig.agent_bin, "--config", str(rig.config_path)] + list(args),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err if stderr is None else stderr,
                env=rig.env, start_new_session=True, **popen)
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
            # A CreateImage without a clear answer is looked for this long (default 300 s).
            "run": {"state_dir": self.state_dir, "wait_timeout_s": 60, "wait_poll_max_s": 1,
                    "adopt_timeout_s": 6},
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

    def start(self, *args, **popen):
        a = Agent(self, args, **popen)
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
        self.scratch.thaw_all()
        for a in self.agents:
            a.save_err()
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
             'echo "$EC2_IMAGED_PHASE $EC2_IMAGED_RUN_ID $INSTANCE_ID $EC2_IMAGED_CONFIG" > %s\n'
             % marker)
    # Post-thaw hooks run after the thaw: this one writes to a frozen filesystem otherwise.
    rig.hook("post-thaw", "10-write", "echo thawed > %s/post-thaw\n" % ext4)
    # Known lower bounds for two durations: a pre-image hook that takes 300 ms and a CreateImage
    # the proxy holds for 400 ms.
    rig.hook("pre-image", "20-slow", "sleep 0.3\n")
    rig.fault_create({"kind": "delay", "delay_ms": 400})
    rig.configure()

    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["image_id"].startswith("ami-")
    assert j["phase"] == "done" and j["error"] is None
    assert j["consistency"] == "fs-frozen"
    # The window holds the CreateImage call, which holds the proxy's delay.
    assert j["freeze_window_ms"] >= j["create_call_ms"] >= 400, j
    assert j["frozen_mounts"] == [str(ext4), str(xfs)]
    times = j["phase_times"]
    assert times["pre-image"]["ms"] >= 300, times
    assert times["freezing"]["ms"] >= j["freeze_window_ms"] - 1, (times, j)  # clocks differ
    # Each phase is timed by its own start and end, in the order the run went through them.
    previous_end = 0
    for phase in RUN_PHASES:
        t = times[phase]
        assert previous_end <= t["start_us"] <= t["end_us"], (phase, times)
        assert t["ms"] == (t["end_us"] - t["start_us"]) // 1000, (phase, t)
        previous_end = t["end_us"]

    images = rig.images(j["image_name"])
    assert [im["ImageId"] for im in images] == [j["image_id"]]
    expected = {CONFIG_TAG[0]: CONFIG_TAG[1], "ec2-imaged:run-id": j["run_id"],
                "ec2-imaged:consistency": "fs-frozen",
                "ec2-imaged:source-instance": rig.instance_id,
                # the provenance defaults (test_provenance.py tests their values)
                "ec2-imaged:source-image": j["tags"]["ec2-imaged:source-image"],
                "ec2-imaged:os": j["tags"]["ec2-imaged:os"]}
    assert j["tags"]["ec2-imaged:source-image"].startswith("ami-"), j["tags"]
    assert tags_of(images[0]) == expected
    for snap in snapshots_of(rig, images[0]):
        assert expected.items() <= tags_of(snap).items(), snap

    assert rig.all_thawed()
    assert not is_frozen(ext4) and not is_frozen(xfs)
    # The shipped hooks read the configuration the agent was given, not the default file.
    assert marker.read_text().split() == ["pre-image", j["run_id"], rig.instance_id,
                                          str(rig.config_path)]
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
    # The writer's next write sleeps on the frozen superblock's freeze lock until the thaw.
    assert wait_until(writer.blocked_by_freeze), "writer state %s" % writer.state()
    blocked_at = writer.count
    assert is_frozen(ext4), "the freeze ended before the check; lengthen the delay"
    assert writer.blocked_by_freeze() and writer.count == blocked_at

    assert a.wait() == 0, a.err
    assert writer.progresses_past(blocked_at), "the writer did not resume after the thaw"
    j = a.json()
    assert j["consistency"] == "fs-frozen"
    # The window covered the whole delayed call (the proxy sat on it for 3 s).
    assert j["create_call_ms"] >= 3000 and j["freeze_window_ms"] >= j["create_call_ms"]
    assert not is_frozen(ext4)


# ---------------------------------------------------------------- nothing written while frozen


def test_nothing_written_while_frozen(rig):
    """The state directory and the log file are on the filesystem being frozen. Any write to
    them inside the window would sleep until the guard's thaw at [freeze] timeout_ms (60 s):
    the second CreateImage attempt would never reach the proxy while it holds the call, and the
    window would come out near the timeout. Two attempts are throttled inside the window (the
    only answer after which CreateImage is sent again), so two log lines are made there (-v);
    they are held and written after the thaw, in order, before the line that reports it."""
    ext4 = rig.add_fs("ext4")
    rig.state_dir = ext4 / "state"
    rig.state_dir.mkdir(mode=0o700)
    # The held CreateImage waits for the test, not for the agent's own deadlines.
    rig.configure(aws__max_attempts=4, aws__retry_deadline_ms=300000, aws__timeout_ms=300000)
    timeout_ms = 60000
    rig.proxy.faults(PASS_DRY_RUN, {"kind": "throttle", "count": 2, "action": "CreateImage"},
                     {"kind": "hold", "action": "CreateImage"})

    a = rig.start("-v", "run", "--json", err_path=ext4 / "agent.err")
    # Three attempts reached the proxy: the agent wrote nothing between them (a write would
    # have stopped it before the retry), and it is frozen now, waiting for the held answer.
    assert wait_until(lambda: len(rig.create_calls()) == 3, timeout=DEADLINE), a.err
    assert is_frozen(ext4)
    held = [line for line in a.err.splitlines() if "CreateImage attempt" in line]
    assert held == [], held  # not in the file yet
    rig.proxy.release()

    assert a.wait() == 0, a.err
    j = a.json()
    assert j["consistency"] == "fs-frozen", j
    # Compared with the timeout by an order of magnitude: no write waited for the guard.
    assert j["freeze_window_ms"] < timeout_ms / 10, j
    lines = a.err.splitlines()
    at = [i for i, line in enumerate(lines) if "CreateImage attempt" in line]
    assert len(at) == 2, lines
    assert "CreateImage attempt 1 failed (HTTP 503, RequestLimitExceeded)" in lines[at[0]], lines
    assert "CreateImage attempt 2 failed (HTTP 503, RequestLimitExceeded)" in lines[at[1]], lines
    answered = [i for i, line in enumerate(lines) if "CreateImage answered" in line]
    assert answered and at[0] < at[1] < answered[0], lines
    assert rig.state()["history"][0]["result"] == "success"
    assert not is_frozen(ext4)


# ---------------------------------------------------------------- credentials that expire


SECRET_MARK = "Zq9SeCrEtMaRk"


def check_credentials_used(imds, proxy):
    """Every request the proxy saw was signed with role credentials that IMDS had issued and
    that had not expired yet; returns the key ids used."""
    expires = {c["access_key_id"]: c["expires"] for c in imds.stats()["issued_credentials"]}
    used = []
    for q in proxy.requests():
        if q["path"].startswith("/_control"):
            continue
        akid = q["access_key_id"]
        assert akid in expires, "signed with %r, which IMDS never issued" % akid
        assert q["time"] < expires[akid], \
            "%s sent at %.3f with %s, expired at %.0f" % (q["action"], q["time"], akid,
                                                           expires[akid])
        if akid not in used:
            used.append(akid)
    return used


def test_credentials_expire_mid_run(rig):
    """Role credentials that live 3 s (IMDS serves new ones a second before), and a run that
    outlasts several of them (a pre-image hook takes 4 s): the run goes through, every request
    is signed with credentials that have not expired, and no secret key or token shows in the
    output, the log (-v), the state or the hooks' environment."""
    ext4 = rig.add_fs("ext4")
    rig.imds.control({"credential_ttl": 3, "secret_marker": SECRET_MARK,
                      "rotate_credentials": True})
    env_pre, env_post = rig.tmp / "pre-image.env", rig.tmp / "post-image.env"
    rig.hook("pre-image", "10-env", "env > %s\nsleep 4\n" % env_pre)
    rig.hook("post-image", "10-env", "env > %s\n" % env_post)
    rig.configure()

    a = rig.agent("-v", "run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["phase"] == "done" and j["consistency"] == "fs-frozen", j
    used = check_credentials_used(rig.imds, rig.proxy)
    assert len(used) >= 2, used  # the run went on past an expiry, with new credentials
    # (Only the names: an assertion that showed the text would show the secret.)
    leaked = [name for name, text in (
        ("stdout", a.out), ("stderr", a.err),
        ("state.json", (rig.state_dir / "state.json").read_text()),
        ("pre-image hook env", env_pre.read_text()),
        ("post-image hook env", env_post.read_text())) if SECRET_MARK in text]
    assert leaked == [], "a secret key or token in: %s" % ", ".join(leaked)
    assert "AWS_SECRET_ACCESS_KEY" not in env_pre.read_text()
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
    hooks_ran = rig.tmp / "hooks.ran"  # not on ext4, which someone else keeps frozen
    rig.hook("pre-freeze", "10-quiesce", "echo pre-freeze >> %s\n" % hooks_ran)
    rig.hook("post-thaw", "10-resume", "echo post-thaw >> %s\n" % hooks_ran)
    rig.configure()
    subprocess.run(["fsfreeze", "-f", str(ext4)], check=True, timeout=DEADLINE)

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    assert "already frozen" in a.err
    assert "nothing was imaged" in a.json()["error"]
    assert rig.create_calls() == []
    assert rig.images() == []
    # The freeze failed after the pre-freeze hooks: the post-thaw hooks undo what they did.
    assert hooks_ran.read_text().split() == ["pre-freeze", "post-thaw"], a.err
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_frozen_thaws_then_resume(rig, subreaper, sig):
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.configure()
    rig.fault_create({"kind": "delay", "delay_ms": 6000})

    a = rig.start("run", "--json")
    rig.wait_create_sent()
    assert is_frozen(ext4) and is_frozen(xfs)
    guard = guard_of(a.pid)
    # The guard is held stopped: were the signal to kill the agent without its handler's thaw,
    # nothing would thaw (the guard acts once the agent is gone, and not while held).
    with ptrace_held(guard):
        a.proc.send_signal(sig)
        assert a.wait() == -sig, a.err
        for mnt in (ext4, xfs):
            assert timed_write(rig.scratch, mnt, DEADLINE) is not None, \
                "%s still frozen after the agent died of %s" % (mnt, sig.name)
    assert reap(guard) == GUARD_EXIT_ORPHANED
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


def test_resume_from_the_save_after_the_thaw_keeps_fs_frozen(rig):
    """The run died after the save that follows the thaw and before its post-thaw hooks: the
    state holds the image id CreateImage answered inside the freeze, in the phase of the frozen
    window.  The resume goes on with the post-thaw hooks and keeps the image fs-frozen: nothing
    about the interruption touches a snapshot taken while frozen."""
    ext4 = rig.add_fs("ext4")
    marker = rig.tmp / "post-thaw.ran"
    rig.hook("post-thaw", "10-mark", "echo $EC2_IMAGED_RUN_ID >> %s\n" % marker)
    rig.configure()
    run_id = str(uuid.uuid4())
    name = "itest-" + run_id
    image_id = rig.ec2.create_image(
        InstanceId=rig.instance_id, Name=name, NoReboot=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": [
            {"Key": "ec2-imaged:run-id", "Value": run_id},
            {"Key": "ec2-imaged:consistency", "Value": "fs-frozen"},
            {"Key": "ec2-imaged:source-instance", "Value": rig.instance_id}]}])["ImageId"]
    now = int(time.time() * 1e6)
    # As the save after the thaw wrote it before this fix: phase "creating", the image known.
    (rig.state_dir / "state.json").write_text(json.dumps({"version": 1, "history": [],
        "current": {
            "run_id": run_id, "phase": "creating", "mode": "no-reboot", "dry_run": False,
            "instance_id": rig.instance_id, "region": REGION, "image_name": name,
            "image_id": image_id, "consistency": "fs-frozen", "create_outcome": "answered",
            "freeze_window_ms": 40, "create_call_ms": 35, "boot_id": str(uuid.uuid4()),
            "frozen_mounts": [str(ext4)], "started_us": now, "updated_us": now}}))
    r = rig.agent("resume", "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert (j["run_id"], j["phase"], j["image_id"], j["consistency"]) == \
        (run_id, "done", image_id, "fs-frozen"), j
    assert marker.read_text().split() == [run_id]
    [image] = rig.images(name)
    assert tags_of(image)["ec2-imaged:consistency"] == "fs-frozen"
    crash_tags = [q for q in rig.proxy.requests() if q["action"] == "CreateTags"
                  and "crash" in q["params"].values()]
    assert crash_tags == [], crash_tags
    assert rig.create_calls() == []


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


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT], ids=["SIGSEGV", "SIGABRT"])
def test_fatal_signal_while_frozen_thaws_first_and_dumps_no_core(rig, subreaper, sig):
    """A crash in the frozen window: the agent thaws before it dies, and writes no core file
    (its credentials are in its memory).  Its working directory is on the frozen ext4 and core
    files may be any size, so a core dump would go there: before the thaw it would hold the
    freeze for the guard's ten minutes, after it it would leave a file."""
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.configure(freeze__timeout_ms=VERY_LONG_TIMEOUT_MS)
    rig.fault_create({"kind": "delay", "delay_ms": 6000})

    a = rig.start("run", "--json", cwd=ext4, preexec_fn=unlimited_core)
    rig.wait_create_sent()
    assert is_frozen(ext4) and is_frozen(xfs)
    guard = guard_of(a.pid)
    with ptrace_held(guard):  # only the agent itself can thaw meanwhile
        os.kill(a.pid, sig)
        # Bounded: a core dump onto the frozen ext4 would wait for a thaw that never comes.
        status = wait_status(a.pid)
        assert status is not None, "the agent did not die of %s (a core dump onto the frozen " \
            "filesystem?)" % sig.name
        a.proc.returncode = os.waitstatus_to_exitcode(status)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig, (status, a.err)
        assert not os.WCOREDUMP(status), "the agent dumped core"
        for mnt in (ext4, xfs):
            assert rig.scratch.writable(mnt, DEADLINE), \
                "%s still frozen after the agent died of %s" % (mnt, sig.name)
    assert reap(guard) == GUARD_EXIT_ORPHANED
    assert not [p.name for p in ext4.iterdir() if p.name.startswith("core")]


def test_no_process_of_a_run_is_dumpable(rig):
    """The agent and its guard are not dumpable (PR_SET_DUMPABLE 0): no core file, and no
    process without CAP_SYS_PTRACE reads their memory, even as root.  Seen from a root process
    without CAP_SYS_PTRACE, like the agent: it can open /proc/PID/mem of a dumpable one."""
    ext4 = rig.add_fs("ext4")
    rig.configure()
    rig.fault_create({"kind": "delay", "delay_ms": 3000})
    control = rig.scratch.spawn(["sleep", "60"], preexec_fn=drop_ptrace_capability)
    assert mem_openable(control.pid), "the check cannot tell a dumpable process here"

    a = rig.start("run", "--json", preexec_fn=drop_ptrace_capability)
    rig.wait_create_sent()
    guard = guard_of(a.pid)
    assert is_frozen(ext4)
    assert not mem_openable(a.pid), "the agent is dumpable"
    assert not mem_openable(guard), "the thaw guard is dumpable"
    assert a.wait() == 0, a.err
    assert a.json()["consistency"] == "fs-frozen"


# ---------------------------------------------------------------- reboot mode


@pytest.mark.parametrize("stop", ["sigkill", "drop_response"])
def test_reboot_mode_resumes_after_the_shutdown(rig, stop):
    ext4 = rig.add_fs("ext4")
    rig.configure()
    if stop == "sigkill":
        # EC2 stops the instance while the answer is on its way: the agent dies with the
        # request sent (the proxy forwards it after the delay) and no answer read.
        rig.fault_create({"kind": "delay", "delay_ms": 1500})
    else:
        # The request reached EC2, the answer never came back: the connection (kept alive since
        # the name lookup) dies, and neither the agent nor libcurl sends CreateImage again.
        rig.fault_create({"kind": "drop_response"})

    a = rig.start("run", "--mode", "reboot", "--json")
    if stop == "sigkill":
        rig.wait_create_sent()
        a.proc.kill()
        assert a.wait() == -signal.SIGKILL
    else:
        a.rc = a.wait()
        # The unclear answer is resolved by the name lookup: the run goes on to the reboot.
        assert a.rc == 0, a.err
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


def test_config_changed_before_the_resume(rig):
    """The configuration changes while a reboot-mode run waits for its boot (a new name
    template, other tags, [run] mode = no-reboot). The resume keeps what the run recorded where
    it matters: the mode (no freeze, consistency "rebooted"), the image name it looks up, and
    the tags the image was made with, which its snapshots get too; one image, one CreateImage."""
    ext4 = rig.add_fs("ext4")
    rig.configure()
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.rc == 0, a.err
    st = rig.state()["current"]
    assert st["phase"] == "rebooting" and st["mode"] == "reboot", st
    name = st["image_name"]
    rig.configure(image__name="changed-{run_id}", image__tag=["team:owner=someone-else"],
                  run__mode="no-reboot")

    r = rig.agent("resume", "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert (j["run_id"], j["image_name"], j["mode"]) == (st["run_id"], name, "reboot"), j
    assert j["phase"] == "done" and j["consistency"] == "rebooted", j
    assert j["frozen_mounts"] == [] and not is_frozen(ext4)
    [image] = rig.images()
    assert image["ImageId"] == j["image_id"] and image["Name"] == name
    assert tags_of(image)[CONFIG_TAG[0]] == CONFIG_TAG[1]
    for snap in snapshots_of(rig, image):
        assert tags_of(snap) == tags_of(image), snap
    assert len(rig.create_calls()) == 1


# ---------------------------------------------------------------- an unwritable state dir


# Fills the filesystem of FILE to the last block (root may use the blocks kept for root).
FILL = """import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
size = 1 << 16
while size:
    try:
        os.write(fd, bytes(size))
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        size //= 2
os.fsync(fd)
"""


@pytest.mark.parametrize("how", ["read-only", "full", "full-mid-run"])
def test_state_dir_read_only_or_full(rig, how):
    """[run] state_dir on a 2 MiB ext4 of its own that is read-only, full, or filled by a
    pre-image hook: the run stops with an error naming the directory and the reason, before
    anything is frozen or any image made; once there is room again, the run goes on."""
    ext4 = rig.add_fs("ext4")  # what the run would freeze
    small = rig.scratch.make("ext4", size=2 << 20, name="statefs")
    rig.state_dir = small / "state"
    rig.state_dir.mkdir(mode=0o700)
    fill = [sys.executable, "-c", FILL, str(small / "fill")]
    if how == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small)], check=True, timeout=DEADLINE)
        reason = "Read-only file system"
    elif how == "full":
        subprocess.run(fill, check=True, timeout=DEADLINE)
        reason = "No space left on device"
    else:
        once = rig.tmp / "filled-once"
        rig.hook("pre-image", "10-fill", "[ -e %s ] || { touch %s; %s; }\n"
                 % (once, once, " ".join("'%s'" % w for w in fill)))
        reason = "No space left on device"
    rig.configure()

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    assert "%s: %s" % (rig.state_dir, reason) in a.err, a.err
    assert rig.create_calls() == [] and rig.images() == []
    assert not is_frozen(ext4) and rig.all_thawed()
    assert not [p for p in os.listdir(rig.state_dir) if ".tmp." in p]  # no half-written state

    # Room again: the run goes on (from where it stopped, for the one that had begun).
    if how == "read-only":
        subprocess.run(["mount", "-o", "remount,rw", str(small)], check=True, timeout=DEADLINE)
    else:
        (small / "fill").unlink()
    b = rig.agent("resume" if how == "full-mid-run" else "run", "--json")
    assert b.rc == 0, b.err
    assert b.json()["phase"] == "done" and len(rig.images()) == 1
    assert not is_frozen(ext4)


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


def leave_frozen_by_a_killed_run(rig, mounts):
    """What a SIGKILL of the whole service in the frozen window leaves (ExecStopPost's case):
    the agent and its guard killed together, MOUNTS frozen, the state in phase freezing."""
    rig.fault_create({"kind": "delay", "delay_ms": 6000})
    a = rig.start("run", "--json")
    rig.wait_create_sent()
    guard = guard_of(a.pid)
    with ptrace_held(guard):  # so that it cannot thaw between the two kills
        a.proc.kill()
        assert a.wait() == -signal.SIGKILL
        os.kill(guard, signal.SIGKILL)
    assert reap(guard) == -signal.SIGKILL
    st = rig.state()["current"]
    assert st["phase"] == "freezing" and st["frozen_mounts"] == [str(m) for m in mounts], st
    assert all(is_frozen(m) for m in mounts)


def test_thaw_leaves_a_freeze_that_is_not_ours(rig, subreaper):
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.configure(mounts=[ext4])
    leave_frozen_by_a_killed_run(rig, [ext4])
    try:
        # A backup tool's freeze, of a filesystem that [freeze] mounts does not name (yet).
        subprocess.run(["fsfreeze", "-f", str(xfs)], check=True, timeout=DEADLINE)
        a = rig.agent("thaw")
        assert a.rc == 0, a.err
        assert a.out == "thawed %s\n" % ext4
        assert not is_frozen(ext4) and rig.scratch.writable(ext4)
        assert is_frozen(xfs), "`thaw` undid a freeze that was not ours"

        # Nor when the configuration names it: ours is what the run recorded.
        rig.configure(mounts=[ext4, xfs])
        again = rig.agent("thaw")
        assert again.rc == 0 and again.out == "nothing was frozen\n", again.err
        assert is_frozen(xfs)

        # By hand, --all thaws whatever [freeze] mounts selects.
        everything = rig.agent("thaw", "--all")
        assert everything.rc == 0, everything.err
        assert everything.out == "thawed %s\n" % xfs
        assert not is_frozen(xfs)
    finally:
        subprocess.run(["fsfreeze", "-u", str(xfs)], capture_output=True, timeout=DEADLINE)
    assert rig.all_thawed()
    assert rig.agent("status", "--all").rc == EXIT_USAGE  # --all is thaw's alone


@pytest.mark.parametrize("log_to", ["full-pipe", "file-on-a-frozen-fs"])
def test_thaw_writes_no_line_before_everything_is_thawed(rig, subreaper, log_to):
    """`ec2-imaged thaw` (ExecStopPost) whose log would block on its first line: a pipe that is
    full and read by nobody until the end (journald with its queue full), or a file on the
    filesystem it thaws last.  Both filesystems are thawed all the same."""
    ext4, xfs = rig.add_fs("ext4"), rig.add_fs("xfs")
    rig.configure()
    log_file = ext4 / "thaw.log"
    log_file.write_text("")  # made while writable; the thaw appends to it while it is frozen
    leave_frozen_by_a_killed_run(rig, [ext4, xfs])

    drained, reader = [], None
    if log_to == "full-pipe":
        r, err = os.pipe()
        os.set_blocking(err, False)
        try:
            while True:
                os.write(err, b"." * 65536)
        except BlockingIOError:
            pass
        os.set_blocking(err, True)
    else:
        err = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        t = rig.start("thaw", stderr=err)
    finally:
        os.close(err)
    try:
        for mnt in (ext4, xfs):
            assert rig.scratch.writable(mnt, DEADLINE), \
                "%s still frozen: the thaw logged before it thawed everything" % mnt
    finally:
        if log_to == "full-pipe":
            def drain():
                with os.fdopen(r, "rb") as f:
                    drained.append(f.read())
            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
    assert t.wait() == 0
    if reader:
        reader.join(DEADLINE)
        log = drained[0].decode(errors="replace")
    else:
        log = log_file.read_text()
    # The reverse of the freeze order ([freeze] mounts: ext4, then xfs).
    assert t.out == "thawed %s\nthawed %s\n" % (xfs, ext4)
    for mnt in (ext4, xfs):
        assert "Thawed %s, which was frozen" % mnt in log, log[-2000:]


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


def test_dropped_answer_in_no_reboot_mode_makes_one_image(rig):
    """CreateImage reached EC2 inside the frozen window and its answer was lost with the
    connection: the agent thaws, does not send it again (nor lets libcurl do so on a fresh
    connection), finds the image by name and ends with exactly one."""
    ext4 = rig.add_fs("ext4")
    rig.configure()
    rig.fault_create({"kind": "drop_response"})
    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert j["phase"] == "done" and j["image_id"], j
    creates = rig.create_calls()
    assert [c["fault"] for c in creates] == ["drop_response"], creates
    # It went out on the connection the name lookup just before the freeze kept warm.
    lookups = [r for r in rig.proxy.requests() if r["action"] == "DescribeImages"
               and r["time"] < creates[0]["time"]]
    assert lookups and lookups[-1]["client"] == creates[0]["client"]
    [image] = rig.images(j["image_name"])
    assert image["ImageId"] == j["image_id"]
    # Adopted after an unclear answer: nothing proves the snapshot came before the thaw.
    assert (j["create_outcome"], j["consistency"]) == ("adopted", "crash"), j
    assert tags_of(image)["ec2-imaged:consistency"] == "crash"
    assert not is_frozen(ext4) and rig.all_thawed()


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
    assert (j["create_outcome"], j["consistency"]) == ("adopted", "crash"), j
    assert not is_frozen(ext4) and rig.all_thawed()


# ---------------------------------------------------------------- CreateImage past its budget


def held_create(answer, ms=4000):
    """CreateImage held by the proxy for MS, then forwarded to moto, and its answer then sent
    back (to a client that gave up: delivered) or dropped with the connection (lost)."""
    return {"kind": "delay" if answer == "delivered" else "drop_response", "delay_ms": ms}


@pytest.mark.parametrize("answer", ["delivered", "lost"])
def test_create_image_past_its_budget_is_adopted_as_crash(rig, answer):
    """CreateImage outlives its share of [freeze] timeout_ms: the agent gives up on the call,
    thaws, and the request reaches EC2 after the thaw.  The outcome is unknown, the name is
    looked up until [run] adopt_timeout_s, and the image that appears is this run's, marked
    crash-consistent (its snapshot postdates the thaw)."""
    ext4 = rig.add_fs("ext4")
    rig.configure(freeze__timeout_ms=2000, run__adopt_timeout_s=60)
    rig.fault_create(held_create(answer))
    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    j = a.json()
    assert (j["phase"], j["create_outcome"], j["consistency"]) == ("done", "adopted", "crash"), j
    assert "outcome is unknown" in a.err
    [image] = rig.images(j["image_name"])
    assert image["ImageId"] == j["image_id"]
    assert tags_of(image)["ec2-imaged:consistency"] == "crash"
    for snap in snapshots_of(rig, image):
        assert tags_of(snap)["ec2-imaged:consistency"] == "crash"
    assert len(rig.create_calls()) == 1
    assert not is_frozen(ext4) and rig.all_thawed()
    h = rig.state()["history"][0]
    assert (h["result"], h["create_outcome"], h["image_id"]) == \
        ("success", "adopted", j["image_id"])


@pytest.mark.parametrize("answer", ["delivered", "lost"])
def test_guard_thaw_during_a_live_create_image_marks_the_adopted_image_crash(rig, answer):
    """The guard's own thaw in a live run: CreateImage is held by the proxy past [freeze]
    timeout_ms while the agent is stopped (SIGSTOP), so that only the guard can thaw; then the
    agent goes on, its call ends without an answer (delivered too late, or lost), and the image
    that appears is adopted.  The guard thawed before any answer: the image is crash-consistent
    although the run learnt its id only from the lookup."""
    ext4 = rig.add_fs("ext4")
    rig.configure(freeze__timeout_ms=2000, run__adopt_timeout_s=60)
    rig.fault_create(held_create(answer, ms=3000))
    a = rig.start("run", "--json")
    rig.wait_create_sent()
    assert is_frozen(ext4)
    a.proc.send_signal(signal.SIGSTOP)
    try:
        assert timed_write(rig.scratch, ext4, timeout=DEADLINE) is not None, \
            "the guard did not thaw at [freeze] timeout_ms"
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert a.wait() == 0, a.err
    j = a.json()
    assert (j["phase"], j["create_outcome"], j["consistency"]) == ("done", "adopted", "crash"), j
    assert "the guard thawed" in a.err, a.err
    [image] = rig.images(j["image_name"])
    assert image["ImageId"] == j["image_id"]
    assert tags_of(image)["ec2-imaged:consistency"] == "crash"
    assert len(rig.create_calls()) == 1
    assert rig.all_thawed()


@pytest.mark.parametrize("then", ["run", "resume"])
@pytest.mark.parametrize("answer", ["delivered", "lost"])
def test_image_after_the_run_gave_up_is_deregistered_next_time(rig, answer, then):
    """The same held CreateImage, but the run looks only once ([run] adopt_timeout_s = 0) and
    fails before the image appears.  The failed run keeps the outcome "unknown" and the name; the
    next run (or resume) first finds the image by the failed run's id, tags it crash, records it
    and deregisters it with its snapshots: no image is left that no run knows."""
    rig.add_fs("ext4")
    rig.configure(freeze__timeout_ms=2000, run__adopt_timeout_s=0)
    rig.fault_create(held_create(answer))
    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    j = a.json()
    assert (j["phase"], j["create_outcome"], j["image_id"]) == ("failed", "unknown", None), j
    assert "adopt_timeout_s" in j["error"], j["error"]
    h = rig.state()["history"][0]
    assert (h["run_id"], h["result"], h["create_outcome"], h["image_name"]) == \
        (j["run_id"], "failed", "unknown", j["image_name"])
    rig.wait_image_count(j["image_name"])  # the held request reached EC2 after all
    [late] = rig.images(j["image_name"])
    assert tags_of(late)["ec2-imaged:run-id"] == j["run_id"]
    snaps = [s["SnapshotId"] for s in snapshots_of(rig, late)]

    b = rig.agent(then, "--json")
    assert b.rc == 0, b.err
    assert rig.images(j["image_name"]) == []
    left = {s["SnapshotId"] for s in rig.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not left & set(snaps), left & set(snaps)
    tagged = [r for r in rig.proxy.requests() if r["action"] == "CreateTags"
              and r["params"].get("ResourceId.1") == late["ImageId"]]
    assert tagged and any(v == "crash" for k, v in tagged[0]["params"].items()
                          if k.startswith("Tag.") and k.endswith(".Value")), tagged
    [dereg] = [r for r in rig.proxy.requests() if r["action"] == "DeregisterImage"]
    assert dereg["params"]["ImageId"] == late["ImageId"]
    entry = next(e for e in rig.state()["history"] if e["run_id"] == j["run_id"])
    assert (entry["create_outcome"], entry["image_id"], entry["consistency"]) == \
        ("deregistered", late["ImageId"], "crash"), entry
    if then == "run":
        n = b.json()
        assert n["phase"] == "done" and n["run_id"] != j["run_id"]
        assert [i["ImageId"] for i in rig.images()] == [n["image_id"]]
    else:
        assert b.json() == {"resumed": False}
        assert rig.images() == []


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
