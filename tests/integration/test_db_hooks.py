# SPDX-License-Identifier: Apache-2.0
"""The database hooks (hooks/mysql-hold, postgresql-checkpoint, postgresql-hold, services-stop)
against real servers from Debian's packages: MariaDB and PostgreSQL 15, started here with their
data on a loop-mounted ext4 and their logs (InnoDB redo log, binary log, WAL) on a loop-mounted
xfs, sockets in a directory of the test's and no TCP listener, stopped by PID.  `make check-db`.

The agent runs with the held hooks installed as the README says (links into hold.d and
pre-freeze.d); the fault proxy holds CreateImage while the test copies both filesystems'
backing files (the image), then lets it go.  Each database is then started on the copies, at
new paths: every commit acknowledged before the freeze is there, MyISAM tables pass CHECK TABLE
with MyISAM's automatic repair turned off, and PostgreSQL says how much WAL it replayed.

Safety: the servers and every process started here are stopped by PID (the Rig's finalizer
thaws, unmounts and detaches every scratch filesystem); nothing listens on TCP.
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import dbservers  # tests/peers, on sys.path via conftest
from dbservers import PG_BIN, Load, MariaDB, Postgres
from scratchfs import ScratchFS, is_frozen, wait_until
from test_run import EXIT_FAILED, REPO, rig  # noqa: F401 (rig: the fixture)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: loop devices, FIFREEZE, servers"),
    pytest.mark.skipif(bool(dbservers.missing()),
                       reason="needs mariadb-server, mariadb-client and postgresql-15 "
                              "(packaging/install-build-deps.sh)"),
]

HOOKS = REPO / "hooks"
DEADLINE = 60
PG_PORT = 5432  # a unix socket in a directory of ours: no port is taken on this machine


class Dbs:
    """MariaDB and PostgreSQL on the rig's scratch ext4 (data) and xfs (logs, WAL)."""

    def __init__(self, rig, base, mysql=True, pg=True):
        self.rig, self.base = rig, base
        self.ext4 = rig.scratch.make("ext4", size=320 << 20, name="data")
        self.xfs = rig.scratch.make("xfs", name="logs")
        rig.mounts += [self.ext4, self.xfs]
        for m in (self.ext4, self.xfs):
            os.chmod(m, 0o755)
        self.my = self.pg = None
        self.loads = []
        if mysql:
            self.my = MariaDB(self.ext4 / "mysql", self.xfs / "mysql", base / "run-mysql")
            self.my.init()
            self.my.start()
            self.my.sql("CREATE DATABASE t; "
                        "CREATE TABLE t.inno (n INT PRIMARY KEY) ENGINE=InnoDB; "
                        "CREATE TABLE t.isam (n INT PRIMARY KEY) ENGINE=MyISAM; "
                        "CREATE TABLE t.free (n INT PRIMARY KEY) ENGINE=InnoDB")
        if pg:
            self.pg = Postgres(self.ext4 / "pg", self.xfs / "pg", base / "run-pg", PG_PORT)
            self.pg.init()
            self.pg.start(["-c", "max_wal_size=96MB", "-c", "min_wal_size=32MB"])
            self.pg.sql("CREATE TABLE acks (n INT PRIMARY KEY)")

    def stop(self):
        for load in self.loads:
            load.stop()
        self.loads = []
        for s in (self.my, self.pg):
            if s:
                s.stop()

    def start_load(self, pgbench=True):
        if self.my:
            for table in ("t.inno", "t.isam"):
                self.loads.append(Load(self.my.client_args() + ["--unbuffered"], "mysql",
                                       table))
        if self.pg:
            self.loads.append(Load([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t",
                                    self.pg.conninfo()], "pg", "acks"))
            if pgbench:
                run = dict(stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                           preexec_fn=self.pg._as_postgres, cwd="/")
                subprocess.run([str(PG_BIN / "pgbench"), "-i", "-q", "-s", "2",
                                "-h", str(self.pg.run), "-p", str(PG_PORT), "postgres"],
                               check=True, **run)
                self.bench = self.rig.scratch.spawn(
                    [str(PG_BIN / "pgbench"), "-n", "-c", "2", "-T", "600",
                     "-h", str(self.pg.run), "-p", str(PG_PORT), "postgres"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    preexec_fn=self.pg._as_postgres, cwd="/")
        for load in self.loads:
            assert load.progresses(), "the load made no progress"

    def hooks(self, **conf):
        """The shipped hooks in hold.d and pre-freeze.d, and their configuration.  (The agent
        does not tell hooks the --config it was given, so each is a one-line exec with it.)"""
        keys = {}
        if self.my:
            self.hook("hold", "10-mysql-hold", "mysql-hold")
            keys.update(mysql__socket=self.my.socket, mysql__lock_timeout_s=5,
                        mysql__position_file=self.ext4 / "mysql-binlog-position")
        if self.pg:
            self.hook("pre-freeze", "50-postgresql-checkpoint", "postgresql-checkpoint")
            keys.update(postgresql__clusters="%s:%d" % (self.pg.run, PG_PORT))
        keys.update(conf)
        keys.setdefault("hooks__hold_ready_timeout_s", 30)
        return self.rig.configure(**keys)

    def hook(self, phase, name, script):
        # No --config: the agent tells its hooks its configuration file (EC2_IMAGED_CONFIG).
        return self.rig.hook(phase, name, 'exec %s "$@"\n' % (HOOKS / script))

    def writable(self, wait_s=10):
        """MariaDB commits a row within WAIT_S (its lock wait bound), PostgreSQL too."""
        if self.my:
            r = self.my.sql("SET SESSION lock_wait_timeout = %d; "
                            "INSERT INTO t.free VALUES (%d)" % (wait_s, time.time_ns() % 10**9),
                            check=False, timeout=30)
            assert r.returncode == 0, "MariaDB is not writable: %s" % r.stderr
        if self.pg:
            self.pg.sql("INSERT INTO acks VALUES (-(random() * 1e9)::int)", timeout=30)
        return True


@pytest.fixture
def dbs(rig):
    """Scratch filesystems in a directory the postgres user can reach (the test's tmp dir is
    root's alone), the servers on them; stopped before the rig's clean-up unmounts."""
    base = Path(tempfile.mkdtemp(prefix="ec2-imaged-db-"))
    os.chmod(base, 0o711)
    rig.scratch.cleanup()
    rig.scratch = ScratchFS(base=base)
    os.chmod(rig.scratch.dir, 0o711)
    made = []
    # A hook killed by SIGKILL cannot remove its work directory (db.sh make_workdir).
    workdirs = set(Path("/run").glob("ec2-imaged-*-hold.*"))

    def make(**kw):
        d = Dbs(rig, base, **kw)
        made.append(d)
        return d
    try:
        yield make
    finally:
        for d in made:
            d.stop()
        for d in getattr(rig, "copies", []):
            d.stop()
        rig.scratch.thaw_all()
        rig.scratch.cleanup()
        shutil.rmtree(base, ignore_errors=True)
        for w in set(Path("/run").glob("ec2-imaged-*-hold.*")) - workdirs:
            shutil.rmtree(w, ignore_errors=True)


def copy_images(rig, dest):
    """The backing files of every scratch filesystem, copied now (while the agent holds them
    frozen): what the image would hold."""
    out = {}
    for name in ("data", "logs"):
        src = rig.scratch.dir / (name + ".img")
        out[name] = dest / (name + ".img")
        subprocess.run(["cp", "--sparse=always", str(src), str(out[name])], check=True,
                       timeout=120)
    return out


def start_copies(rig, dbs, imgs):
    """Both databases started on the copies, mounted at new paths."""
    data = rig.scratch.attach(imgs["data"], "ext4", "copy-data")
    logs = rig.scratch.attach(imgs["logs"], "xfs", "copy-logs")
    rig.copies = []
    my = MariaDB(data / "mysql", logs / "mysql", dbs.base / "run-mysql-copy")
    # MyISAM's automatic repair off: a table the copy caught open must show, not be mended.
    my.options = (lambda orig: lambda: orig() + ["--myisam-recover-options=OFF"])(my.options)
    # A restore at new paths: the binary log index names each file by its absolute path.
    index = my.logs / "binlog.index"
    index.write_text(index.read_text().replace(str(dbs.xfs), str(logs)))
    rig.copies.append(my)
    my.start()
    pg = Postgres(data / "pg", logs / "pg", dbs.base / "run-pg-copy", PG_PORT)
    # A restore at new paths: the WAL link of the data directory points at the copy's WAL.
    link = pg.data / "pg_wal"
    link.unlink()
    link.symlink_to(logs / "pg" / "pg_wal")
    rig.copies.append(pg)
    pg.start()
    return my, pg


def replayed_wal(log_text):
    """Bytes of WAL PostgreSQL replayed at its start, from its "redo starts at" and "redo done
    at" lines (0 when it said no redo was needed)."""
    def lsn(s):
        hi, lo = s.split("/")
        return (int(hi, 16) << 32) | int(lo, 16)
    start = re.search(r"redo starts at ([0-9A-F]+/[0-9A-F]+)", log_text)
    done = re.search(r"redo done at ([0-9A-F]+/[0-9A-F]+)", log_text)
    if start and done:
        return lsn(done.group(1)) - lsn(start.group(1))
    assert "redo is not required" in log_text or "database system was shut down" in log_text, \
        log_text[-3000:]
    return 0


def test_images_under_load_keep_every_acknowledged_commit(rig, dbs):
    """Under a steady load (pgbench and three committing sessions), a run with mysql-hold and
    postgresql-checkpoint; a copy of both filesystems taken while CreateImage is held: both
    databases start on it, every commit acknowledged before the freeze is in it, MyISAM is
    clean, and the binlog position in the run's JSON is the copy's."""
    d = dbs()
    d.hooks()
    d.start_load()
    rig.fault_create({"kind": "hold", "delay_ms": 120000})
    a = rig.start("run", "--json")
    rig.wait_create_sent()
    frozen_seen = time.monotonic()
    assert is_frozen(d.ext4) and is_frozen(d.xfs)
    imgs = copy_images(rig, d.base)
    rig.proxy.release()
    released = time.monotonic()
    assert a.wait() == 0, a.err
    j = a.json()
    assert j["consistency"] == "fs-frozen"
    [holder] = j["holders"]
    assert holder["name"] == "10-mysql-hold" and holder["end"] == "released", holder
    assert not holder["lost_while_holding"], holder
    d.writable()
    acked = {l.table: dict(l.acked) for l in d.loads}
    sent = {l.table: dict(l.sent) for l in d.loads}
    d.stop()

    my, pg = start_copies(rig, d, imgs)
    rows = {"t.inno": {int(r[0]) for r in my.rows("SELECT n FROM t.inno")},
            "t.isam": {int(r[0]) for r in my.rows("SELECT n FROM t.isam")},
            "acks": {int(n) for n in pg.sql("SELECT n FROM acks WHERE n > 0").stdout.split()}}
    for table, got in rows.items():
        before = {n for n, t in acked[table].items() if t < frozen_seen}
        after = {n for n, t in sent[table].items() if t > released}
        assert before, "%s: no commit acknowledged before the freeze" % table
        assert before <= got, "%s: acknowledged commits missing from the copy: %s" % (
            table, sorted(before - got)[:10])
        assert not (after & got), "%s: rows sent after the thaw are in the copy" % table
    check = my.rows("CHECK TABLE t.isam")
    assert [r[2:] for r in check] == [["status", "OK"]], check
    assert "crashed" not in my.log_text() and "repair" not in my.log_text().lower()

    # The binlog position of the image: in the image's position file and in the run's JSON.
    pos = dict(l.split("=", 1) for l in (d.ext4.parent / "copy-data" /
                                         "mysql-binlog-position").read_text().splitlines()
               if "=" in l and not l.startswith("#"))
    assert holder["values"]["MYSQL_BINLOG_FILE"] == pos["binlog_file"]
    assert holder["values"]["MYSQL_BINLOG_POS"] == pos["binlog_position"]
    binlog = d.xfs.parent / "copy-logs" / "mysql" / pos["binlog_file"]
    assert binlog.stat().st_size >= int(pos["binlog_position"])
    wal = replayed_wal(pg.log_text())
    print("PostgreSQL replayed %d bytes of WAL; %d, %d, %d rows; lock held %d ms; window %d ms"
          % (wal, len(rows["t.inno"]), len(rows["t.isam"]), len(rows["acks"]),
             holder["held_ms"], j["freeze_window_ms"]))


def blocked_session(my, statement, wait=True):
    """A client session that ran STATEMENT and keeps it (a lock, say) until closed; with
    WAIT false, one still running STATEMENT."""
    p = subprocess.Popen(my.client_args() + ["--unbuffered"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    p.stdin.write(statement + "; SELECT 'held';\n")
    p.stdin.flush()
    if wait:
        assert p.stdout.readline().strip() == "held"
    else:
        time.sleep(0.5)
    return p


@pytest.mark.parametrize("blocker, named", [
    ("LOCK TABLES t.isam WRITE", "(Sleep for "),
    ("UPDATE t.inno SET n = n WHERE SLEEP(60) = 0", "(Query for ")])
def test_lock_wait_timeout_fails_before_the_freeze_naming_the_blocker(rig, dbs, blocker, named):
    """Another session's LOCK TABLES (idle, holding it), or a long write (MariaDB's FTWRL waits
    for running writes, not reads): the lock is not granted in lock_timeout_s, the hook names
    the session in the way."""
    d = dbs(pg=False)
    d.hooks(mysql__lock_timeout_s=2)
    d.my.sql("INSERT INTO t.inno VALUES (0)")
    session = blocked_session(d.my, blocker, wait=blocker.startswith("LOCK"))
    try:
        a = rig.agent("run", "--json")
        assert a.rc == EXIT_FAILED, a.err
        assert not rig.create_calls(), "CreateImage was sent"
        assert "10-mysql-hold" in a.err and "lock wait timeout" in a.err, a.err
        blocked = re.search(r"lock wait timeout: blocked by session \d+ of root (.*)", a.err)
        assert blocked and blocked.group(1).startswith(named), a.err
        statement = blocker if "UPDATE" in blocker else "an open transaction or LOCK TABLES"
        assert statement in blocked.group(1), a.err
        # FTWRL's wait blocks every writer: it was killed, InnoDB takes writes again at once
        # (the server's own bound on the wait, lock_timeout_s + 5 s, is still seconds away).
        assert d.writable(wait_s=2)
        assert rig.all_thawed()
    finally:
        session.kill()
        session.wait(timeout=DEADLINE)


def hold_hook(rig, name, body):
    return rig.hook("hold", name, body)


def test_a_holder_that_never_says_ready_releases_the_lock(rig, dbs):
    d = dbs(pg=False)
    d.hooks(hooks__hold_ready_timeout_s=3)
    hold_hook(rig, "20-silent", "exec sleep 600\n")
    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    assert "20-silent" in a.err, a.err
    assert not rig.create_calls()
    # mysql-hold, ready, was released when the other failed: it unlocked and exited 0 itself.
    ends = {h["name"]: h["end"] for h in a.json()["holders"]}
    assert ends["10-mysql-hold"] == "released", a.json()["holders"]
    assert d.writable() and rig.all_thawed()


def holder_pids(agent, name):
    """PIDs of the agent's children running the shipped hook NAME (its subshells, children of
    the hook, have the same command line)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
                stat = (p / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if str(HOOKS / name).encode() in cmd and ppid == agent.pid:
                pids.append(int(p.name))
    return pids


def descendants(pid, comm=None):
    """PIDs of processes called COMM (any name: None) below PID."""
    parent, name = {}, {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            name[int(p.name)] = stat[stat.index("(") + 1:stat.rindex(")")]
            parent[int(p.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    out = []
    for p, c in name.items():
        up = parent.get(p)
        while up and up != pid:
            up = parent.get(up)
        if (comm is None or c == comm) and up == pid:
            out.append(p)
    return out


def alive(pid):
    """The process is there and not a zombie."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.mark.parametrize("victim", ["hook", "client"])
def test_a_holder_that_dies_while_holding_fails_the_run_and_frees_the_database(rig, dbs, victim):
    """mysql-hold killed while CreateImage is held, or its client session (the server would
    have dropped it): the agent reports the lock lost.  What the hook does itself is seen
    before the release, whose kill of the hook's process group would hide it: killed, its
    client does not outlive it (the client's input ends with the hook, and the lock with the
    session); its client killed, it ends by itself, with everything it started, through its
    EXIT trap (its work directory goes), and says why."""
    d = dbs(pg=False)
    d.hooks()
    workdirs = set(Path("/run").glob("ec2-imaged-mysql-hold.*"))
    rig.fault_create({"kind": "hold", "delay_ms": 120000})
    a = rig.start("run", "--json")
    rig.wait_create_sent()
    [pid] = holder_pids(a, "mysql-hold")
    [client] = descendants(pid, "mariadb")
    started = descendants(pid)
    [work] = set(Path("/run").glob("ec2-imaged-mysql-hold.*")) - workdirs
    os.kill(client if victim == "client" else pid, 9)
    if victim == "hook":
        assert wait_until(lambda: not alive(client), timeout=10), \
            "the hook's client %d outlived the hook" % client
    else:
        assert wait_until(lambda: not holder_pids(a, "mysql-hold"), timeout=10)
        assert wait_until(lambda: not any(alive(p) for p in started), timeout=10), \
            "left by the hook: %s" % [p for p in started if alive(p)]
        # Its EXIT trap ran: the work directory (the session's FIFO and output) is gone.
        assert wait_until(lambda: not work.exists(), timeout=10), "left: %s" % work
    rig.proxy.release()
    assert a.wait() == EXIT_FAILED, a.err
    j = a.json()
    [holder] = j["holders"]
    assert holder["lost_while_holding"], holder
    assert "10-mysql-hold" in a.err
    if victim == "hook":
        assert holder["end"] == "killed" and holder["signal"] == 9, holder
    else:
        assert holder["end"] == "exited" and holder["exit_status"] == 1, holder
        assert "the session holding the lock ended before the release" in a.err
    assert d.writable() and rig.all_thawed()


def test_a_holder_that_hangs_at_release_is_killed_and_the_lock_goes(rig, dbs):
    """A holder of its own (FTWRL in a client it keeps) that ignores the release and SIGTERM:
    killed with its client, the lock goes with the session."""
    d = dbs(pg=False)
    d.hooks()
    (rig.hooks_dir / "hold.d" / "10-mysql-hold").unlink()
    client = " ".join(d.my.client_args())
    hold_hook(rig, "30-stubborn", """trap '' TERM
fifo=$(mktemp -u /run/stubborn.XXXXXX); mkfifo "$fifo"
%s --unbuffered <"$fifo" >/dev/null 3>&- &
exec 4>"$fifo"; rm -f "$fifo"
echo 'FLUSH TABLES WITH READ LOCK; SELECT 1;' >&4
sleep 1
echo READY >&"$EC2_IMAGED_READY_FD"
cat <&"$EC2_IMAGED_READY_FD" >/dev/null
while :; do sleep 1; done
""" % client)
    a = rig.agent("run", "--json")
    j = a.json()
    [holder] = j["holders"]
    # Killed at the release, by SIGKILL (it ignores SIGTERM): reported, and the run stands
    # (the image was taken while it held).
    assert holder["end"] == "timed-out" and holder["signal"] == 9, holder
    assert holder["held_ms"] >= 0 and not holder["lost_while_holding"], holder
    assert a.rc == 0, a.err
    assert "30-stubborn" in a.err
    assert d.writable() and rig.all_thawed()


def release_then_sigterm(p, lines, ours):
    """Release the hold hook P (the end of its readiness socket), wait until its release watch
    saw it (its cat is gone: it is in its release statement), then SIGTERM the hook alone until
    it ends (a SIGTERM before its release trap is set only releases): it ended."""
    lines.close()
    ours.close()
    assert wait_until(lambda: not descendants(p.pid, "cat"), timeout=DEADLINE)
    deadline = time.monotonic() + DEADLINE
    while p.poll() is None and time.monotonic() < deadline:
        os.kill(p.pid, signal.SIGTERM)
        time.sleep(0.5)
    return p.poll() is not None


def test_mysql_hold_stuck_at_release_stops_its_client_on_sigterm(rig, dbs):
    """The shipped mysql-hold, released while its server does not answer (stopped): its UNLOCK
    TABLES hangs, and the SIGTERM the agent sends a grace period later comes (here to the hook
    alone, not to its process group): the hook itself ends its client, whose session took the
    lock, removes its work directory, and exits; nobody else kills anything."""
    d = dbs(pg=False)
    conf = rig.tmp / "my.conf"
    conf.write_text("[mysql]\nsocket = %s\nlock_timeout_s = 5\nposition_file = %s\n"
                    % (d.my.socket, rig.tmp / "pos"))
    workdirs = set(Path("/run").glob("ec2-imaged-mysql-hold.*"))
    ours, theirs = socket.socketpair()
    env = dict(os.environ, EC2_IMAGED_READY_FD=str(theirs.fileno()), EC2_IMAGED_RUN_ID="r-8")
    p = subprocess.Popen([str(HOOKS / "mysql-hold"), "--config", str(conf)], env=env,
                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    theirs.close()
    stopped = False
    try:
        lines = ours.makefile("r")
        while lines.readline() not in ("READY\n", ""):
            pass
        [client] = descendants(p.pid, "mariadb")
        [work] = set(Path("/run").glob("ec2-imaged-mysql-hold.*")) - workdirs
        os.kill(d.my.proc.pid, signal.SIGSTOP)
        stopped = True
        # Released, it is in its UNLOCK TABLES, which waits.
        assert release_then_sigterm(p, lines, ours), "mysql-hold ignored SIGTERM"
        assert wait_until(lambda: not alive(client), timeout=10), \
            "mysql-hold's client %d outlived it (exit %s: %s)" % (client, p.returncode, p.stderr.read())
        assert not work.exists(), "mysql-hold left its work directory %s" % work
    finally:
        if stopped:
            os.kill(d.my.proc.pid, signal.SIGCONT)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert d.writable()


def test_postgresql_hold_stuck_at_release_stops_its_client_on_sigterm(rig, dbs):
    """The shipped postgresql-hold, released while the server process of its session does not
    answer (stopped): its pg_backup_stop hangs, and the SIGTERM the agent sends a grace period
    later comes (here to the hook alone, not to its process group): the hook itself ends its
    psql, removes its work directory, and exits; once the server answers again the session is
    gone (and its backup aborted with it)."""
    d = dbs(mysql=False)
    conf = rig.tmp / "pg.conf"
    conf.write_text("[postgresql]\nclusters = %s:%d\nlabel_dir = %s\n"
                    % (d.pg.run, PG_PORT, rig.tmp / "labels"))
    session = ("SELECT pid FROM pg_stat_activity "
               "WHERE application_name = 'ec2-imaged-postgresql-hold'")
    workdirs = set(Path("/run").glob("ec2-imaged-postgresql-hold.*"))
    ours, theirs = socket.socketpair()
    env = dict(os.environ, EC2_IMAGED_READY_FD=str(theirs.fileno()), EC2_IMAGED_RUN_ID="r-9")
    # Its stderr in a file: a pipe would stay open as long as anything it left runs.
    err = rig.tmp / "hook.err"
    with open(err, "w") as f:
        p = subprocess.Popen([str(HOOKS / "postgresql-hold"), "--config", str(conf)], env=env,
                             pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stderr=f,
                             start_new_session=True)
    theirs.close()
    backend = work = None
    try:
        lines = ours.makefile("r")
        while lines.readline() not in ("READY\n", ""):
            pass
        [client] = descendants(p.pid, "psql")
        [work] = set(Path("/run").glob("ec2-imaged-postgresql-hold.*")) - workdirs
        backend = int(d.pg.sql(session).stdout)
        os.kill(backend, signal.SIGSTOP)
        # Released, it is in its pg_backup_stop, which waits.
        assert release_then_sigterm(p, lines, ours), "postgresql-hold ignored SIGTERM"
        assert wait_until(lambda: not alive(client), timeout=10), \
            "postgresql-hold's psql %d outlived it (exit %s: %s)" % (client, p.returncode,
                                                                    err.read_text())
        assert not work.exists(), "postgresql-hold left its work directory %s" % work
    finally:
        # Whatever of the hook's is left (its process group outlives it) goes before the server
        # answers again.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        if backend:
            os.kill(backend, signal.SIGCONT)
        if work:
            shutil.rmtree(work, ignore_errors=True)
    assert wait_until(lambda: d.pg.sql(session).stdout.strip() == "", timeout=DEADLINE)
    assert not list((rig.tmp / "labels").glob("r-9/*/backup_label"))
    assert d.writable()


# ---------------------------------------------------------------- the hooks by themselves


def test_a_readable_credential_file_is_refused_naming_it(tmp_path):
    opt = tmp_path / "client.cnf"
    opt.write_text("[client]\npassword = sekret\n")
    opt.chmod(0o644)
    conf = tmp_path / "c.conf"
    conf.write_text("[mysql]\nsocket = %s\noption_file = %s\n"
                    "[postgresql]\nclusters = %s:5432\npassfile = %s\n"
                    % (tmp_path / "none.sock", opt, tmp_path, opt))
    for hook in ("mysql-hold", "postgresql-checkpoint", "postgresql-hold"):
        r = subprocess.run([str(HOOKS / hook), "--config", str(conf)], capture_output=True,
                           text=True, timeout=DEADLINE, stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and str(opt) in r.stderr and "mode 644" in r.stderr, r
        assert "sekret" not in r.stdout + r.stderr


def test_postgresql_hold_writes_the_backup_label(rig, dbs):
    d = dbs(mysql=False)
    d.stop()
    conf = rig.tmp / "pg.conf"
    pgpass = rig.tmp / "pgpass"
    pgpass.write_text("*:*:*:postgres:%s\n" % "s3cret-pw")
    pgpass.chmod(0o600)
    conf.write_text("[postgresql]\nclusters = %s:%d\npassfile = %s\nlabel_dir = %s\n"
                    % (d.pg.run, PG_PORT, pgpass, rig.tmp / "labels"))
    d.pg.start()
    d.pg.sql("ALTER USER postgres PASSWORD 's3cret-pw'")
    ours, theirs = socket.socketpair()
    # A descriptor above 9, which dash cannot name (db.sh has bash move it).
    high = fcntl.fcntl(theirs.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    theirs.close()
    env = dict(os.environ, EC2_IMAGED_READY_FD=str(high), EC2_IMAGED_RUN_ID="r-7")
    try:
        p = subprocess.Popen([str(HOOKS / "postgresql-hold"), "--config", str(conf)], env=env,
                             pass_fds=[high], stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        os.close(high)
    try:
        assert ours.makefile("r").readline() == "READY\n"
        # One session of the hook's is in backup mode (a second pg_backup_start there would
        # fail; from our session it may start one of its own): it is the hook's, by name.
        r = d.pg.sql("SELECT count(*) FROM pg_stat_activity "
                     "WHERE application_name = 'ec2-imaged-postgresql-hold'")
        assert r.stdout.strip() == "1"
        ours.close()
        assert p.wait(timeout=DEADLINE) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
    [label] = list((rig.tmp / "labels" / "r-7").glob("*/backup_label"))
    text = label.read_text()
    assert text.startswith("START WAL LOCATION: ") and "LABEL: ec2-imaged r-7" in text, text
    assert "s3cret-pw" not in p.stderr.read()


def test_postgresql_hold_through_the_agent(rig, dbs):
    """postgresql-hold in hold.d: the cluster is in backup mode while the agent holds the
    freeze, and the label of that backup is left under label_dir/RUN_ID after the release."""
    d = dbs(mysql=False)
    d.hook("hold", "20-postgresql-hold", "postgresql-hold")
    labels = rig.tmp / "labels"
    rig.configure(postgresql__clusters="%s:%d" % (d.pg.run, PG_PORT),
                  postgresql__label_dir=labels)
    rig.fault_create({"kind": "hold", "delay_ms": 120000})
    a = rig.start("run", "--json")
    rig.wait_create_sent()
    # While frozen, the hook's session (by its application name) has started the backup and
    # sits idle in it.
    r = d.pg.sql("SELECT state, query FROM pg_stat_activity "
                 "WHERE application_name = 'ec2-imaged-postgresql-hold'")
    assert r.stdout.startswith("idle|SELECT pg_backup_start("), r.stdout
    rig.proxy.release()
    assert a.wait() == 0, a.err
    j = a.json()
    [holder] = j["holders"]
    assert holder["end"] == "released", holder
    [label] = list((labels / j["run_id"]).glob("*/backup_label"))
    text = label.read_text()
    assert "LABEL: ec2-imaged %s" % j["run_id"] in text, text
    assert d.writable() and rig.all_thawed()


def test_services_stop_restarts_what_it_stopped(tmp_path):
    """systemctl is played by a script (no systemd here): active units are stopped in order,
    inactive ones left alone, and post-thaw starts the stopped ones in reverse order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "systemctl").write_text("""#!/bin/sh
echo "$*" >>%s
case "$*" in "is-active --quiet -- idle.service") exit 3 ;; esac
exit 0
""" % calls)
    (bin_dir / "systemctl").chmod(0o755)
    conf = tmp_path / "c.conf"
    conf.write_text("[services]\nstop = app.service, idle.service worker.service\n")
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]),
               EC2_IMAGED_SERVICES_RECORD=str(tmp_path / "record"))
    for phase in ("pre-freeze", "post-thaw"):
        r = subprocess.run([str(HOOKS / "services-stop"), "--config", str(conf)],
                           env=dict(env, EC2_IMAGED_PHASE=phase), capture_output=True,
                           text=True, timeout=DEADLINE)
        assert r.returncode == 0, r
    assert [l for l in calls.read_text().splitlines() if not l.startswith("is-active")] == [
        "stop -- app.service", "stop -- worker.service",
        "start -- worker.service", "start -- app.service"]
    assert not (tmp_path / "record").exists()


def test_services_stop_restarts_when_the_run_fails(rig):
    """Through the agent, with CreateImage failing: the post-thaw link starts what the
    pre-freeze link stopped (systemctl played by a script, put first in PATH by the hook)."""
    rig.add_fs("ext4")
    bin_dir = rig.tmp / "bin"
    bin_dir.mkdir()
    calls = rig.tmp / "calls"
    (bin_dir / "systemctl").write_text('#!/bin/sh\necho "$*" >>%s\n' % calls)
    (bin_dir / "systemctl").chmod(0o755)
    record = rig.tmp / "services-stopped"
    for phase in ("pre-freeze", "post-thaw"):
        rig.hook(phase, "40-services-stop",
                 'PATH=%s:$PATH EC2_IMAGED_SERVICES_RECORD=%s exec %s\n'
                 % (bin_dir, record, HOOKS / "services-stop"))
    rig.configure(services__stop="db.service", aws__max_attempts=2,
                  aws__retry_deadline_ms=2000)
    rig.fault_create({"kind": "error500", "count": 10})
    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    assert calls.read_text().splitlines() == ["is-active --quiet -- db.service",
                                              "stop -- db.service", "start -- db.service"]
    assert not record.exists() and rig.all_thawed()

