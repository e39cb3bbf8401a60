# SPDX-License-Identifier: Apache-2.0
"""`ec2-imaged daemon` and `ec2-imaged trigger`: the sd_notify protocol spoken with a
NOTIFY_SOCKET this test owns (READY, STATUS, WATCHDOG, STOPPING), runs started by SIGUSR1 and by
`trigger --wait --json`, reloads with a good and a bad configuration, and SIGTERM in the middle of
a real freeze (the filesystem ends thawed, the daemon exits, a restarted daemon resumes the run and
exactly one image exists).

Safety: every configuration written here lists its scratch mounts (loop-mounted ext4 made by
ScratchFS in the test's tmp dir) in `[freeze] mounts`, and puts `[run] state_dir`, `[hooks] dir`
and `[daemon] control_socket` in the tmp dir.  The agent only talks to loopback peers (agent_env).
Daemons are stopped by their PID; every wait has a deadline.
"""

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest
from peers import StderrFile
from scratchfs import ScratchFS, is_frozen, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: loop mounts and FIFREEZE"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("losetup", "mkfs.ext4", "fsfreeze")),
                       reason="needs util-linux and e2fsprogs"),
]

REGION = "us-east-1"
ACCOUNT = "123456789012"
DEADLINE = 30  # seconds; the bound on any single wait
RUN_DEADLINE = 90  # seconds; the bound on a whole run
WATCHDOG_USEC = 1_000_000
EXIT_BUSY = 4
PASS_DRY_RUN = {"kind": "delay", "delay_ms": 0, "action": "CreateImage"}


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket whose messages we collect."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value}) in arrival order
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines()
                          if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def values(self, key):
        with self.lock:
            return [m[key] for _, m in self.messages if key in m]

    def wait_for(self, key, pred=lambda v: True, timeout=DEADLINE, log=lambda: ""):
        ok = wait_until(lambda: any(pred(v) for v in self.values(key)), timeout)
        assert ok, "no %s= matching in %r\n%s" % (key, self.values(key)[-20:], log())

    def close(self):
        self.closed = True
        self.sock.close()


class JournalSocket(NotifySocket):
    """journald's end of its native protocol: each datagram is one record of KEY=value lines (or
    KEY, newline, 64-bit little-endian length, binary value, newline).  With store=PATH it also
    writes each record's MESSAGE to that file, in arrival order, as journald writes its journal
    (on a frozen filesystem that write waits for the thaw; it happens in a thread of its own so
    that receiving goes on meanwhile)."""

    def __init__(self, path, store=None):
        self.store = store
        self.to_store = queue.Queue()
        super().__init__(path)
        if store:
            threading.Thread(target=self._store, daemon=True).start()

    def _store(self):
        with open(self.store, "a") as f:
            while True:
                message = self.to_store.get()
                if message is None:
                    return
                f.write(message.replace("\n", " ") + "\n")
                f.flush()

    def send_marker(self, text):
        """A record of ours, through the same socket: once it is received, so is every record
        sent before it (one receive queue, first in first out)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"MESSAGE=" + text.encode() + b"\n", self.path)

    @staticmethod
    def parse(data):
        fields, i = {}, 0
        while i < len(data):
            nl = data.index(b"\n", i)
            line = data[i:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                i = nl + 1
            else:
                k, size = line, int.from_bytes(data[nl + 1:nl + 9], "little")
                v = data[nl + 9:nl + 9 + size]
                i = nl + 9 + size + 1
            fields[k.decode()] = v.decode(errors="replace")
        return fields

    def _pump(self):
        while not self.closed:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            record = self.parse(data)
            with self.lock:
                self.messages.append((time.monotonic(), record))
            if self.store:
                self.to_store.put(record.get("MESSAGE", ""))

    def records(self):
        with self.lock:
            return [m for _, m in self.messages]


# In a mount namespace of its own, the daemon finds our socket where journald's would be; its
# stderr (a file) is declared the journal stream, as systemd does for a service.
JOURNAL_NS = ('mount -t tmpfs -o size=1m,mode=0755 tmpfs /run/systemd && '
              'mkdir /run/systemd/journal && : > /run/systemd/journal/socket && '
              'mount --bind "$TEST_JOURNAL_SOCKET" /run/systemd/journal/socket && '
              'WATCHDOG_PID=$$; export WATCHDOG_PID; '
              'JOURNAL_STREAM=$(stat -L -c "%d:%i" /proc/self/fd/2); export JOURNAL_STREAM; '
              'unset TEST_JOURNAL_SOCKET; exec "$@"')


class Daemon(StderrFile):
    """`ec2-imaged daemon` started so that WATCHDOG_PID is its own pid (sh execs into it); with
    journal=True in a private mount namespace whose journald is a socket of ours."""

    def __init__(self, rig, notify=True, journal=False, verbose=False, err_path=None,
                 journal_store=None):
        n = len(rig.daemons)
        self.err_path = err_path or rig.tmp / ("daemon-%d.err" % n)
        self.notify = NotifySocket(rig.tmp / ("notify-%d.sock" % n)) if notify else None
        self.journal = JournalSocket(rig.tmp / ("journal-%d.sock" % n),
                                     store=journal_store) if journal else None
        env = dict(rig.env)
        if self.notify:
            env.update(NOTIFY_SOCKET=self.notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
        argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"]
        if self.journal:
            env["TEST_JOURNAL_SOCKET"] = self.journal.path
            argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                    JOURNAL_NS, "sh"]
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv + [rig.agent_bin, "--config", str(rig.config_path)]
                + (["-v"] if verbose else []) + ["daemon"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                start_new_session=True)
        self.pid = self.proc.pid

    def ready(self):
        self.notify.wait_for("READY", lambda v: v == "1")

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=DEADLINE):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("daemon %d still running after %ss:\n%s" % (self.pid, timeout, self.err))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=DEADLINE)
        for sock in (self.notify, self.journal):
            if sock:
                sock.close()


FAKE_CLOUD_INIT = """#!/bin/sh
echo "$*" >> %(dir)s/calls
[ "$*" = "status --wait" ] || exit 64
while [ -e %(dir)s/running ]; do sleep 0.1; done
# What the world looked like when cloud-init finished: the time, and any run state by then.
{ date +%%s.%%N; ls %(state)s 2>/dev/null; } > %(dir)s/finished
echo "status: done"
exit $(cat %(dir)s/exit 2>/dev/null || echo 0)
"""


class Rig:
    """moto with one instance, IMDS saying we are it, the fault proxy in front of moto, one
    scratch ext4, and a config that keeps everything in the test's tmp dir."""

    def __init__(self, tmp, moto, proxy, imds, env, agent_bin):
        self.tmp, self.moto, self.proxy, self.env, self.agent_bin = tmp, moto, proxy, env, agent_bin
        self.ec2 = client(moto.url, "ec2", region=REGION)
        self.scratch = ScratchFS(base=tmp)
        self.mnt = self.scratch.make("ext4")
        self.state_dir = tmp / "state"
        self.hooks_dir = tmp / "hooks"
        self.hooks_dir.mkdir()
        os.chmod(self.hooks_dir, 0o755)
        self.socket = tmp / "control.sock"
        self.config_path = tmp / "ec2-imaged.conf"
        self.daemons = []
        # A stand-in for cloud-init, first on PATH, so that no test waits on a real one. It logs
        # each call; `status --wait` waits while cloud-init.running exists and then exits with
        # the status in cloud-init.exit (0 when there is none).
        self.cloud_init_dir = tmp / "cloud-init"
        bin_dir = tmp / "bin"
        self.cloud_init_dir.mkdir()
        bin_dir.mkdir()
        fake = bin_dir / "cloud-init"
        fake.write_text(FAKE_CLOUD_INIT % {"dir": self.cloud_init_dir, "state": self.state_dir})
        fake.chmod(0o755)
        self.env = dict(env, PATH="%s:%s" % (bin_dir, env["PATH"]))

    def configure(self, extra=""):
        assert Path(self.mnt) in self.scratch.mounts
        self.config_path.write_text(
            "[aws]\nmax_attempts = 3\nretry_deadline_ms = 10000\ntimeout_ms = 20000\n"
            "[run]\nstate_dir = %s\nwait_timeout_s = 60\nwait_poll_max_s = 1\n"
            "[image]\nname = dtest-{run_id}\n"
            "[freeze]\nmounts = %s\ntimeout_ms = 60000\n"
            "[hooks]\ndir = %s\ntimeout_s = 30\n"
            "[daemon]\ncontrol_socket = %s\nstop_timeout_s = 20\n%s"
            % (self.state_dir, self.mnt, self.hooks_dir, self.socket, extra))

    def daemon(self, **kw):
        d = Daemon(self, **kw)
        self.daemons.append(d)
        return d

    def trigger(self, *args, timeout=RUN_DEADLINE):
        return subprocess.run([self.agent_bin, "--config", str(self.config_path), "trigger"]
                              + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=self.env, timeout=timeout)

    def images(self):
        return self.ec2.describe_images(Owners=["self"])["Images"]

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())

    def history(self):
        try:
            return self.state().get("history") or []
        except (OSError, ValueError):
            return []

    def close(self):
        for d in self.daemons:
            d.stop()
        self.scratch.thaw_all()
        for d in self.daemons:
            d.save_err()
        self.scratch.cleanup()


@pytest.fixture
def rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    yield from rig_of(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin)


def rig_of(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """The configured Rig of a new moto instance, closed afterwards: a fixture yields from it."""
    instance_id = create_moto_instance(moto.url, region=REGION)
    imds = imds_factory(instance_id=instance_id, region=REGION, account_id=ACCOUNT)
    proxy = fault_proxy(moto)
    r = Rig(tmp_path, moto, proxy, imds, agent_env(imds=imds, endpoint=proxy), agent_bin)
    r.imds, r.instance_id = imds, instance_id
    r.configure()
    try:
        yield r
    finally:
        r.close()


# ---------------------------------------------------------------- sd_notify


def test_ready_watchdog_status_and_stopping(rig):
    d = rig.daemon()
    d.ready()
    d.notify.wait_for("STATUS", lambda v: v.startswith("Idle"))
    # WatchdogSec= of 1 s: sd-event pings at about half of it.
    d.notify.wait_for("WATCHDOG", lambda v: v == "1", timeout=5)
    assert wait_until(lambda: len(d.notify.values("WATCHDOG")) >= 3, timeout=10)
    assert (rig.socket.stat().st_mode & 0o777) == 0o600
    d.signal(signal.SIGTERM)
    assert d.wait() == 0, d.err
    # The datagram is read by the socket's own thread: wait for it rather than race it.
    d.notify.wait_for("STOPPING", lambda v: v == "1", timeout=5)
    assert d.notify.values("STOPPING") == ["1"]
    assert not rig.socket.exists()


def test_sigusr1_runs_and_status_follows_the_phases(rig):
    d = rig.daemon()
    d.ready()
    d.signal(signal.SIGUSR1)
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
    h = rig.history()[0]
    assert h["result"] == "success", h
    assert [i["ImageId"] for i in rig.images()] == [h["image_id"]]
    status = d.notify.values("STATUS")
    assert any(s.startswith("Freezing 1 filesystem") for s in status), status
    assert any(s.startswith("Waiting for %s (" % h["image_id"]) for s in status), status
    d.notify.wait_for("STATUS", lambda v: v == "Idle; last run %s succeeded: %s"
                      % (h["run_id"], h["image_id"]))
    assert not is_frozen(rig.mnt)
    # The worker's records reached the daemon's stderr (the journal, under systemd).
    assert "Run %s done" % h["run_id"] in d.err, d.err


def test_structured_journal_records_of_daemon_and_worker(rig, have_tool):
    have_tool("unshare")
    d_hooks = rig.hooks_dir / "pre-image.d"
    d_hooks.mkdir()
    os.chmod(d_hooks, 0o755)
    (d_hooks / "10-hello").write_text("#!/bin/sh\necho hello from the hook\n")
    os.chmod(d_hooks / "10-hello", 0o755)
    d = rig.daemon(journal=True)
    d.notify.wait_for("READY", lambda v: v == "1", log=lambda: d.err)
    r = rig.trigger("--wait", "--json")
    assert r.returncode == 0, (r.stderr, d.err)
    j = json.loads(r.stdout)
    recs = d.journal.records()
    by_id = {m.get("MESSAGE_ID"): m for m in recs if "MESSAGE_ID" in m}
    start = by_id["2b7e4c1d8a9f4e6b9c3d5a7f1e2b4c6d"]
    done = by_id["9a4d2e6f1b3c4d5e8f7a6b5c4d3e2f1a"]
    assert start["RUN_ID"] == done["RUN_ID"] == j["run_id"]
    assert done["IMAGE_ID"] == j["image_id"] and done["PHASE"] == "post-image"
    assert "Run %s done" % j["run_id"] in done["MESSAGE"]
    hook = [m for m in recs if m.get("HOOK") == "10-hello"]
    assert any("hello from the hook" in m["MESSAGE"] for m in hook), hook
    assert all(m["RUN_ID"] == j["run_id"] and m["PHASE"] == "pre-image" for m in hook)
    created = [m for m in recs if m["MESSAGE"].startswith("CreateImage answered")]
    assert created and created[0]["IMAGE_ID"] == j["image_id"], created
    # The daemon's own records went there too, and nothing went to plain stderr.
    assert any(m["MESSAGE"].startswith("Ready; runs start on SIGUSR1") for m in recs)
    assert all(m["PRIORITY"].isdigit() for m in recs)
    assert "Run %s" % j["run_id"] not in d.err, d.err


def test_trigger_while_a_run_is_under_way_says_busy(rig):
    # Hold the run in a pre-image hook until the test lets it go.
    gate = rig.tmp / "gate"
    d_hooks = rig.hooks_dir / "pre-image.d"
    d_hooks.mkdir()
    os.chmod(d_hooks, 0o755)
    hook = d_hooks / "10-wait"
    hook.write_text("#!/bin/sh\nwhile [ ! -e %s ]; do sleep 0.05; done\n" % gate)
    os.chmod(hook, 0o755)
    d = rig.daemon()
    d.ready()
    r = rig.trigger()
    assert r.returncode == 0 and "started" in r.stdout, r.stderr
    d.notify.wait_for("STATUS", lambda v: "pre-image hooks" in v, log=lambda: d.err)
    r = rig.trigger("--wait", "--json")
    assert r.returncode == EXIT_BUSY, r
    assert "under way" in r.stderr
    d.signal(signal.SIGUSR1)  # ignored with a log line
    assert wait_until(lambda: "Run requested by SIGUSR1 ignored" in d.err), d.err
    d.signal(signal.SIGHUP)  # deferred until the run ends
    assert wait_until(lambda: "Reload deferred until the run under way ends" in d.err), d.err
    assert "Configuration reloaded" not in d.err
    gate.touch()
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
    assert len(rig.images()) == 1
    assert wait_until(lambda: "Configuration reloaded" in d.err), d.err


@pytest.mark.parametrize("first", ["cli", "daemon", "together"])
def test_cli_run_racing_the_daemon(rig, first):
    """`ec2-imaged run` from a shell and the daemon's worker share the run lock: whichever
    takes it first runs, the other exits 4 at once, and there is one image and one run in the
    history. A pre-image hook holds the winner until the loser has answered."""
    gate, started = rig.tmp / "gate", rig.tmp / "started"
    hooks = rig.hooks_dir / "pre-image.d"
    hooks.mkdir()
    os.chmod(hooks, 0o755)
    (hooks / "10-wait").write_text("#!/bin/sh\necho $EC2_IMAGED_RUN_ID >> %s\n"
                                   "while [ ! -e %s ]; do sleep 0.05; done\n" % (started, gate))
    os.chmod(hooks / "10-wait", 0o755)
    d = rig.daemon()
    d.ready()

    def cli():
        return subprocess.Popen([rig.agent_bin, "--config", str(rig.config_path), "run",
                                 "--json"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=rig.env)

    def trigger():
        return subprocess.Popen([rig.agent_bin, "--config", str(rig.config_path), "trigger",
                                 "--wait", "--json"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=rig.env)

    def run_ids():
        # The hook's `>>` makes the file before echo writes the id: wait for the id itself.
        return started.read_text().split() if started.exists() else []

    procs = {}
    try:
        if first == "together":
            procs = {"cli": cli(), "daemon": trigger()}
        else:
            procs[first] = cli() if first == "cli" else trigger()
            assert wait_until(run_ids), d.err
            procs["daemon" if first == "cli" else "cli"] = \
                trigger() if first == "cli" else cli()
        # The loser answers while the winner still waits in its hook.
        assert wait_until(lambda: any(p.poll() is not None for p in procs.values())), d.err
        assert wait_until(run_ids), d.err
        assert len(run_ids()) == 1
        [(loser, lp)] = [(k, p) for k, p in procs.items() if p.poll() is not None]
        assert lp.returncode == EXIT_BUSY, (loser, lp.communicate(), d.err)
        out, err = lp.communicate()
        if loser == "cli":
            assert "Another run is under way" in err, err
        else:
            assert wait_until(lambda: "exited with status %d" % EXIT_BUSY in d.err), d.err
    finally:
        gate.touch()
        results = {k: p.communicate(timeout=RUN_DEADLINE) for k, p in procs.items()}
    [(winner, wp)] = [(k, p) for k, p in procs.items() if k != loser]
    assert wp.returncode == 0, (winner, results[winner], d.err)
    j = json.loads(results[winner][0])
    assert j["phase"] == "done" and j["run_id"] == started.read_text().split()[0], j
    assert [i["ImageId"] for i in rig.images()] == [j["image_id"]]
    assert [h["run_id"] for h in rig.history()] == [j["run_id"]]


PEER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES")
    sys.exit(0)
s.send(b"trigger")
print(s.recv(256).decode())
"""


def test_control_socket_is_root_only(rig):
    # A socket dir that others may traverse (pytest's tmp dirs are root-only 0700).
    sockdir = Path(tempfile.mkdtemp(prefix="ec2-imaged-ctl-"))
    try:
        os.chmod(sockdir, 0o755)
        rig.socket = sockdir / "control.sock"
        rig.configure()
        d = rig.daemon()
        d.ready()
        assert (rig.socket.stat().st_mode & 0o777) == 0o600
        as_nobody = dict(user=65534, group=65534, extra_groups=[], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=DEADLINE, env={})
        r = subprocess.run([sys.executable, "-c", PEER, str(rig.socket)], **as_nobody)
        assert r.stdout.strip() == "EACCES", r
        # Past the file mode, the peer's credentials are checked too.
        os.chmod(rig.socket, 0o666)
        r = subprocess.run([sys.executable, "-c", PEER, str(rig.socket)], **as_nobody)
        assert r.stdout.strip() == "refused only root may trigger runs", r
        assert wait_until(lambda: "non-root peer refused" in d.err), d.err
        assert "Run requested" not in d.err and rig.images() == []
        d.stop()
        assert not rig.socket.exists()
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def test_trigger_without_daemon_fails(rig):
    r = rig.trigger()
    assert r.returncode == 1
    assert "No ec2-imaged daemon listens on %s" % rig.socket in r.stderr


def test_reload_good_and_bad_config(rig):
    """A worker runs with the configuration the daemon accepted (at its start or at the last
    reload it accepted), drop-ins included, whatever the files say by the time it starts: an
    accepted reload takes effect at the next run without a restart, a refused one changes
    nothing, and an edit without SIGHUP is not seen."""
    dropins = Path(str(rig.config_path) + ".d")
    dropins.mkdir()
    (dropins / "50-team.conf").write_text("[image]\ntag = team=blue\n")
    d = rig.daemon()
    d.ready()
    n_ready = len(d.notify.values("READY"))
    # Good: a new image name template, accepted.
    text = rig.config_path.read_text().replace("dtest-{run_id}", "reloaded-{run_id}")
    rig.config_path.write_text(text)
    d.signal(signal.SIGHUP)
    assert wait_until(lambda: "Configuration reloaded" in d.err), d.err
    # The log line comes just before READY=1 is sent: wait for the datagram too.
    assert wait_until(lambda: len(d.notify.values("READY")) > n_ready), d.notify.messages
    assert "RELOADING" in [k for _, m in d.notify.messages for k in m]
    # Edited without SIGHUP: not the daemon's configuration, so not the run's.
    rig.config_path.write_text(text.replace("reloaded-{run_id}", "unreloaded-{run_id}"))
    (dropins / "50-team.conf").write_text("[image]\ntag = team=red\n")
    r = rig.trigger("--wait", "--json")
    assert r.returncode == 0, (r.stderr, d.err)
    j = json.loads(r.stdout)
    assert j["image_name"].startswith("reloaded-"), j
    [image] = [i for i in rig.images() if i["ImageId"] == j["image_id"]]
    assert {"Key": "team", "Value": "blue"} in image["Tags"], image["Tags"]
    # Bad: refused with file:line; the files keep the refused text, and the next run still
    # has the configuration accepted last.
    rig.config_path.write_text(text + "[run]\nmode = sideways\n")
    bad_line = len(text.splitlines()) + 2
    d.signal(signal.SIGHUP)
    assert wait_until(lambda: "Reload refused" in d.err), d.err
    assert "%s:%d: [run] mode" % (rig.config_path, bad_line) in d.err, d.err
    assert d.proc.poll() is None
    # (`trigger` reads the files itself, for the control socket's path, so SIGUSR1 here.)
    d.signal(signal.SIGUSR1)
    assert wait_until(lambda: len(rig.history()) == 2, timeout=RUN_DEADLINE), d.err
    assert rig.history()[0]["result"] == "success", (rig.history(), d.err)
    names = sorted(i["Name"] for i in rig.images())
    assert len(names) == 2 and all(n.startswith("reloaded-") for n in names), names


def test_bad_config_at_start_exits_2(rig):
    rig.config_path.write_text(rig.config_path.read_text() + "[daemon]\nnope = 1\n")
    d = rig.daemon()
    assert d.wait() == 2
    assert "unknown key 'nope'" in d.err


def test_reboot_mode_run_resumes_at_the_next_start(rig):
    rig.configure("[run]\nmode = reboot\n")
    d = rig.daemon()
    d.ready()
    r = rig.trigger("--wait", "--json")
    assert r.returncode == 0, (r.stderr, d.err)
    j = json.loads(r.stdout)
    # CreateImage with reboot was accepted; EC2 would now reboot the instance (moto does not).
    assert j["phase"] == "rebooting" and j["image_id"].startswith("ami-"), j
    d.notify.wait_for("STATUS", lambda v: v.startswith("Idle; run %s is unfinished" % j["run_id"]))
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    # "After the boot": the next daemon resumes the run to its end, with no second image.
    d2 = rig.daemon()
    d2.ready()
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d2.err
    h = rig.history()[0]
    assert h["run_id"] == j["run_id"] and h["result"] == "success", h
    assert [i["ImageId"] for i in rig.images()] == [j["image_id"]]
    assert "Resuming run %s" % j["run_id"] in d2.err


def test_ready_only_after_an_interrupted_freeze_is_thawed(rig):
    # What a SIGKILL of the whole service in the frozen window leaves: the state says freezing,
    # and the scratch filesystem is frozen.
    rig.state_dir.mkdir(mode=0o700)
    (rig.state_dir / "state.json").write_text(json.dumps({"current": {
        "run_id": "3f2a0c1e-0000-4000-8000-00000000dead", "phase": "freezing",
        "mode": "no-reboot", "image_name": "dtest-interrupted",
        "instance_id": rig.instance_id, "region": REGION, "boot_id": this_boot(),
        "frozen_mounts": [str(rig.mnt)]}}))
    subprocess.run(["fsfreeze", "-f", str(rig.mnt)], check=True, timeout=DEADLINE)
    assert is_frozen(rig.mnt)
    # The run resumes right after READY and freezes again for its own CreateImage: hold its
    # first call (the name lookup before the freeze), so that what we see is the thaw's work.
    rig.proxy.faults({"kind": "delay", "delay_ms": 3000, "action": "DescribeImages"})
    d = rig.daemon()
    d.notify.wait_for("READY", lambda v: v == "1", log=lambda: d.err)
    assert not is_frozen(rig.mnt)
    ready_at = next(t for t, m in d.notify.messages if m.get("READY") == "1")
    thawing = [t for t, m in d.notify.messages
               if m.get("STATUS", "").startswith("Thawing what an interrupted run left frozen")]
    assert thawing and thawing[0] < ready_at
    assert "The last run stopped in the frozen window; thawing first" in d.err
    # Then the interrupted run resumes (and, never having sent CreateImage, images once).
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
    assert "Resuming run 3f2a0c1e-0000-4000-8000-00000000dead" in d.err
    assert len(rig.images()) == 1


def this_boot():
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def plant_inherited_run(rig, phase):
    """The state an instance launched from a golden image finds: the golden instance's run,
    unfinished in PHASE, saved in the golden instance's boot, naming our scratch mount as
    frozen.  The golden instance exists in moto (CreateImage on it would succeed).  Returns the
    run id."""
    source = create_moto_instance(rig.moto.url, region=REGION)
    run_id = str(uuid.uuid4())
    rig.state_dir.mkdir(mode=0o700, exist_ok=True)
    (rig.state_dir / "state.json").write_text(json.dumps({"current": {
        "run_id": run_id, "phase": phase,
        "mode": "reboot" if phase == "rebooting" else "no-reboot",
        "image_name": "golden-" + run_id, "instance_id": source, "region": REGION,
        "boot_id": str(uuid.uuid4()), "frozen_mounts": [str(rig.mnt)]}}))
    return run_id, source


def mutating_calls(rig):
    return [r["action"] for r in rig.proxy.requests()
            if not (r["action"] or "").startswith(("Describe", "Get"))]


def test_inherited_frozen_run_is_neither_thawed_nor_resumed(rig):
    """A clone's daemon starts with the golden instance's run in the frozen window in its
    state, while a backup tool holds our scratch mount frozen: no thaw worker, no resume, the
    run filed as inherited, and the daemon then runs normally."""
    run_id, source = plant_inherited_run(rig, "freezing")
    subprocess.run(["fsfreeze", "-f", str(rig.mnt)], check=True, timeout=DEADLINE)
    try:
        d = rig.daemon()
        d.notify.wait_for("READY", lambda v: v == "1", log=lambda: d.err)
        assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
        assert is_frozen(rig.mnt), "the daemon thawed a freeze that is not its own"
    finally:
        subprocess.run(["fsfreeze", "-u", str(rig.mnt)], timeout=DEADLINE)  # may be thawed
    h = rig.history()[0]
    assert (h["run_id"], h["result"], h["instance_id"]) == (run_id, "inherited", source), h
    assert mutating_calls(rig) == [], d.err
    assert not any(v.startswith("Thawing") for v in d.notify.values("STATUS")), d.err
    assert "The last run stopped in the frozen window" not in d.err
    d.notify.wait_for("STATUS", lambda v: v.startswith("Idle; run %s of %s came with the image"
                                                        % (run_id, source)), log=lambda: d.err)
    d.signal(signal.SIGUSR1)
    assert wait_until(lambda: len(rig.history()) == 2, timeout=RUN_DEADLINE), d.err
    assert rig.history()[0]["result"] == "success", rig.history()
    creates = [r["params"]["InstanceId"] for r in rig.proxy.requests()
               if r["action"] == "CreateImage" and r["params"].get("DryRun") != "true"]
    assert creates == [rig.instance_id]


def test_inherited_run_then_the_first_boot_run(rig):
    """A clone launched with a first-boot directive: the inherited run (the golden instance's
    reboot-mode run) is filed, and the first-boot run of this instance follows."""
    run_id, source = plant_inherited_run(rig, "rebooting")
    (rig.state_dir / "first-boot").write_text(source + "\n")  # the golden instance had its own
    d = first_boot_daemon(rig)
    assert wait_until(lambda: len(rig.history()) == 2, timeout=RUN_DEADLINE), d.err
    new, old = rig.history()
    assert (old["run_id"], old["result"]) == (run_id, "inherited"), old
    assert new["result"] == "success" and new["instance_id"] == rig.instance_id, new
    assert (rig.state_dir / "first-boot").read_text() == rig.instance_id + "\n"
    images = rig.images()
    assert [i["ImageId"] for i in images] == [new["image_id"]]
    assert {t["Key"]: t["Value"] for t in images[0]["Tags"]}["ec2-imaged:source-instance"] == \
        rig.instance_id


# ---------------------------------------------------------------- SIGTERM in the frozen window


def test_sigterm_during_freeze_thaws_exits_and_resumes(rig):
    # CreateImage is held by the proxy for a while: the filesystem stays frozen meanwhile.
    rig.proxy.faults(PASS_DRY_RUN, {"kind": "delay", "delay_ms": 4000, "action": "CreateImage"})
    d = rig.daemon()
    d.ready()
    d.signal(signal.SIGUSR1)
    d.notify.wait_for("STATUS", lambda v: v.startswith("Freezing 1 filesystem"))
    assert wait_until(lambda: any(r["action"] == "CreateImage" and
                                  r["params"].get("DryRun") != "true"
                                  for r in rig.proxy.requests())), d.err
    assert is_frozen(rig.mnt)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0, d.err
    d.notify.wait_for("STOPPING", lambda v: v == "1", timeout=5)
    assert d.notify.values("STOPPING") == ["1"]
    assert not is_frozen(rig.mnt)
    assert rig.state()["current"]["phase"] in ("freezing", "creating"), rig.state()
    # The held CreateImage still reaches moto after its delay: wait until it did, so that the
    # resumed run finds the image by name rather than racing the proxy.
    assert wait_until(lambda: rig.proxy.stats()["forwarded"] >= 3, timeout=DEADLINE)
    d2 = rig.daemon()
    d2.ready()
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d2.err
    h = rig.history()[0]
    assert h["result"] == "success", h
    assert "Resuming run %s" % h["run_id"] in d2.err
    assert len(rig.images()) == 1
    assert not is_frozen(rig.mnt)


# ---------------------------------------------------------------- nothing written while frozen


@pytest.mark.parametrize("dest", ["journal", "file"])
def test_nothing_written_while_frozen(rig, dest, have_tool):
    """The state directory and the log destination on the filesystem the run freezes: the
    daemon's stderr (a file, which is also the worker's), or a journald whose journal file is
    there. Inside the window two CreateImage attempts are throttled (two debug lines of the
    worker's) and a trigger is refused (a line of the daemon's); the third attempt is held by the
    proxy until the test has looked: none of those lines is out yet, the daemon still answers
    (a write of its to the frozen file would stop its loop), and after the thaw they all come,
    each process's in order. A write inside the window would sleep until the guard's thaw at
    [freeze] timeout_ms (120 s here); the window is compared with that timeout."""
    journal = dest == "journal"
    if journal:
        have_tool("unshare")
    rig.state_dir = rig.mnt / "state"
    # The held CreateImage waits for the test, not for the agent's own deadlines.
    timeout_ms = 120000
    rig.configure("[aws]\nretry_deadline_ms = 300000\ntimeout_ms = 300000\n"
                  "[freeze]\ntimeout_ms = %d\n" % timeout_ms)
    rig.proxy.faults(PASS_DRY_RUN, {"kind": "throttle", "count": 2, "action": "CreateImage"},
                     {"kind": "hold", "action": "CreateImage"})
    d = rig.daemon(journal=journal, verbose=True, err_path=rig.mnt / "daemon.err",
                   journal_store=rig.mnt / "journal.log")
    d.notify.wait_for("READY", lambda v: v == "1", log=lambda: d.err)

    def messages():
        if journal:
            return [m.get("MESSAGE", "") for m in d.journal.records()]
        return [line.split(": ", 1)[-1] for line in d.err.splitlines()]

    def window_lines(lines):
        return [m for m in lines if "CreateImage attempt" in m
                or "Run requested by ec2-imaged trigger ignored" in m]

    run = subprocess.Popen([rig.agent_bin, "--config", str(rig.config_path), "trigger", "--wait",
                            "--json"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=rig.env)
    try:
        creates = lambda: [r for r in rig.proxy.requests()  # noqa: E731
                           if r["action"] == "CreateImage" and r["params"].get("DryRun") != "true"]
        assert wait_until(lambda: len(creates()) == 3), (creates(), d.err)
        assert is_frozen(rig.mnt)
        busy = rig.trigger(timeout=DEADLINE)
        assert busy.returncode == EXIT_BUSY and "under way" in busy.stderr, busy
        if journal:
            # Everything sent before the marker has been received once the marker is.
            d.journal.send_marker("test: frozen now")
            assert wait_until(lambda: "test: frozen now" in messages())
        assert window_lines(messages()) == [], messages()
        assert is_frozen(rig.mnt)
        frozen_until = len(messages())
    finally:
        rig.proxy.release()
        out, err = run.communicate(timeout=RUN_DEADLINE)
    assert run.returncode == 0, (err, d.err)
    j = json.loads(out)
    assert j["phase"] == "done" and j["consistency"] == "fs-frozen", j
    assert j["freeze_window_ms"] < timeout_ms / 10, j
    # After the thaw: the held lines, each process's in the order they were made.
    assert wait_until(lambda: any("Run %s done" % j["run_id"] in m for m in messages()))
    after = messages()[frozen_until:]
    worker = [m for m in after if "CreateImage attempt" in m or "CreateImage answered" in m]
    assert len(worker) == 3, after
    assert "CreateImage attempt 1 failed (HTTP 503, RequestLimitExceeded)" in worker[0], worker
    assert "CreateImage attempt 2 failed (HTTP 503, RequestLimitExceeded)" in worker[1], worker
    assert worker[2].startswith("CreateImage answered %s" % j["image_id"]), worker
    assert any("Run requested by ec2-imaged trigger ignored" in m for m in after), after
    if journal:
        # The journald stand-in wrote every record to its file on the frozen filesystem, in
        # the order received, once the thaw let it.
        stored = lambda: (rig.mnt / "journal.log").read_text().splitlines()  # noqa: E731
        assert wait_until(lambda: stored() == [m.replace("\n", " ") for m in messages()]), \
            (stored(), messages())
    assert rig.state()["history"][0]["result"] == "success"
    assert not is_frozen(rig.mnt)


# ---------------------------------------------------------------- credentials that expire


SECRET_MARK = "Zq9SeCrEtMaRk"


def test_credentials_expire_mid_run(rig):
    """The daemon's worker with role credentials that live 3 s and a run that outlasts several
    (a pre-image hook takes 4 s): the run goes through, every request is signed with
    credentials that have not expired, and no secret key or token shows in the daemon's and
    worker's log (-v), the result, the state or the hook's environment."""
    rig.imds.control({"credential_ttl": 3, "secret_marker": SECRET_MARK,
                      "rotate_credentials": True})
    hooks = rig.hooks_dir / "pre-image.d"
    hooks.mkdir()
    os.chmod(hooks, 0o755)
    env_dump = rig.tmp / "hook.env"
    (hooks / "10-env").write_text("#!/bin/sh\nenv > %s\nsleep 4\n" % env_dump)
    os.chmod(hooks / "10-env", 0o755)
    d = rig.daemon(verbose=True)
    d.ready()
    r = rig.trigger("--wait", "--json")
    assert r.returncode == 0, (r.stderr, d.err)
    j = json.loads(r.stdout)
    assert j["phase"] == "done", j
    expires = {c["access_key_id"]: c["expires"] for c in rig.imds.stats()["issued_credentials"]}
    used = []
    for q in rig.proxy.requests():
        akid = q["access_key_id"]
        assert akid in expires and q["time"] < expires[akid], (q["action"], q["time"], akid,
                                                               expires.get(akid))
        if akid not in used:
            used.append(akid)
    assert len(used) >= 2, used
    # (Only the names: an assertion that showed the text would show the secret.)
    leaked = [name for name, text in (
        ("daemon and worker log", d.err), ("result", r.stdout + r.stderr),
        ("state.json", (rig.state_dir / "state.json").read_text()),
        ("hook env", env_dump.read_text())) if SECRET_MARK in text]
    assert leaked == [], "a secret key or token in: %s" % ", ".join(leaked)


# ---------------------------------------------------------------- first boot from user-data


def test_first_boot_user_data_runs_once_per_instance(rig):
    rig.configure("user_data = yes\n")
    rig.imds.control({"user_data": "#!/bin/sh\n#ec2-imaged: run=first-boot mode=no-reboot\n"
                                   "echo hello\n"})
    d = rig.daemon()
    d.ready()
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
    assert rig.history()[0]["result"] == "success", rig.history()
    assert (rig.state_dir / "first-boot").read_text() == rig.instance_id + "\n"
    assert len(rig.images()) == 1
    assert (rig.cloud_init_dir / "calls").read_text() == "status --wait\n"
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    # The next start of the same instance: nothing happens.
    d2 = rig.daemon()
    d2.ready()
    assert wait_until(lambda: "No first-boot run: this instance had its first-boot run already"
                      in d2.err), d2.err
    assert len(rig.images()) == 1 and len(rig.history()) == 1


def first_boot_daemon(rig, extra=""):
    """A ready daemon whose user-data asks for a first-boot run."""
    rig.configure("user_data = yes\n" + extra)
    rig.imds.control({"user_data": "#ec2-imaged: run=first-boot\n"})
    d = rig.daemon()
    d.ready()
    return d


def test_first_boot_waits_for_cloud_init(rig):
    (rig.cloud_init_dir / "running").touch()
    d = first_boot_daemon(rig)
    assert wait_until(lambda: (rig.cloud_init_dir / "calls").exists()), d.err
    assert wait_until(lambda: "Waiting up to 1800 s for cloud-init to finish" in d.err), d.err
    (rig.cloud_init_dir / "running").unlink()
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
    assert rig.history()[0]["result"] == "success", rig.history()
    assert "cloud-init: status: done" in d.err
    assert len(rig.images()) == 1
    # Nothing happened while cloud-init ran, told by order rather than by a pause: when it
    # finished there was no run state yet (nor the first-boot record), and every EC2 request
    # came after it.
    finished, *state_files = (rig.cloud_init_dir / "finished").read_text().split()
    assert state_files == [], state_files
    sent = [r["time"] for r in rig.proxy.requests()]
    assert sent and min(sent) > float(finished), (finished, sent[:3])


@pytest.mark.parametrize("status, ran", [(1, False), (2, True)])
def test_first_boot_after_cloud_init_errors(rig, status, ran):
    (rig.cloud_init_dir / "exit").write_text("%d\n" % status)
    d = first_boot_daemon(rig)
    if ran:
        assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
        assert "cloud-init finished with recoverable errors" in d.err
        assert len(rig.images()) == 1
    else:
        assert wait_until(lambda: "Worker" in d.err and "exited with status 1" in d.err), d.err
        assert ("No first-boot run: helper cloud-init (first-boot wait) exited with status 1; "
                "see `cloud-init status --long`" in d.err), d.err
        assert rig.images() == [] and rig.history() == []
    # Either way the decision is recorded: this instance is not tried again.
    assert (rig.state_dir / "first-boot").read_text() == rig.instance_id + "\n"


def test_first_boot_cloud_init_wait_off(rig):
    (rig.cloud_init_dir / "running").touch()
    d = first_boot_daemon(rig, "cloud_init_wait_s = 0\n")
    assert wait_until(lambda: rig.history(), timeout=RUN_DEADLINE), d.err
    assert not (rig.cloud_init_dir / "calls").exists()


def test_first_boot_bad_directive_is_reported_and_ignored(rig):
    rig.configure("user_data = yes\n")
    rig.imds.control({"user_data": "#cloud-config\n#ec2-imaged: run=always\n"})
    d = rig.daemon()
    d.ready()
    assert wait_until(lambda: "user-data:2: #ec2-imaged: run: the only value is first-boot"
                      in d.err), d.err
    assert wait_until(lambda: "Worker" in d.err and "exited with status 1" in d.err), d.err
    assert rig.images() == [] and rig.history() == []


def test_first_boot_off_by_default(rig):
    rig.imds.control({"user_data": "#ec2-imaged: run=first-boot\n"})
    d = rig.daemon()
    d.ready()
    # A worker would be started right after READY=1 and the idle STATUS, before the loop runs:
    # a watchdog ping after READY (sent by the loop) shows that decision was made.
    ready = next(i for i, (_, m) in enumerate(d.notify.messages) if m.get("READY") == "1")
    assert wait_until(lambda: any("WATCHDOG" in m for _, m in d.notify.messages[ready:])), d.err
    assert d.notify.values("STATUS") == ["Idle; no run yet"], d.notify.values("STATUS")
    assert "first-boot" not in d.err and "Worker" not in d.err and rig.images() == []
    assert not any(p.endswith("/user-data") for p in rig.imds.stats()["gets"]), d.err


def test_first_boot_boot_check_reports_only(rig):
    """[boot_check] enable = yes (user_data left off): the daemon looks at the user-data, and an
    instance launched by a boot check reports by tagging itself and powers off; the
    run=first-boot beside the directive is not acted on."""
    from test_boot_check import FAKE_SYSTEMCTL
    bin_dir = Path(rig.env["PATH"].split(":")[0])
    sc = bin_dir / "systemctl"
    sc.write_text(FAKE_SYSTEMCTL)
    sc.chmod(0o755)
    (bin_dir / "state").write_text("running\n")
    (bin_dir / "failed").write_text("")
    (bin_dir / "active").write_text("")
    rig.configure("[boot_check]\nenable = yes\n")
    rig.imds.control({"user_data": "#ec2-imaged: run=first-boot\n"
                                   "#ec2-imaged: boot-check=0c1d-2e3f\n"})
    d = rig.daemon()
    d.ready()

    def report():
        return {t["Key"]: t["Value"] for t in rig.ec2.describe_tags(Filters=[
            {"Name": "resource-id", "Values": [rig.instance_id]}])["Tags"]}.get(
            "ec2-imaged:boot-check-result")
    assert wait_until(lambda: report() == "ok", timeout=RUN_DEADLINE), d.err
    assert wait_until(lambda: (bin_dir / "calls").exists() and
                      (bin_dir / "calls").read_text().endswith("poweroff\n")), d.err
    assert rig.images() == [] and rig.history() == []
    assert not (rig.state_dir / "first-boot").exists()
    assert not (rig.cloud_init_dir / "calls").exists()
