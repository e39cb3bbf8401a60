# SPDX-License-Identifier: Apache-2.0
"""Real database servers for the database hook tests: MariaDB (mariadbd) and PostgreSQL 15
(postgres), from Debian's packages, started on directories the test gives (data on one
filesystem, logs or WAL on another) with no TCP listener: a unix socket in a directory of the
test's, and stopped by the PID each started with.  Plain Python (no pytest).

    db = MariaDB(data_dir, log_dir, run_dir); db.init(); db.start(); db.sql("SELECT 1")
    pg = Postgres(data_dir, wal_dir, run_dir); pg.init(); pg.start(); pg.sql("SELECT 1")
    ... db.stop(); pg.stop()     (also safe when start failed or the process is gone)
"""

import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

DEADLINE = 60  # seconds; the bound on a start, a stop or one statement
PG_BIN = Path("/usr/lib/postgresql/15/bin")
MARIADB_TOOLS = ("mariadbd", "mariadb", "mariadb-install-db")


def missing():
    """What the servers need and this machine lacks (empty when all is there)."""
    gone = [t for t in MARIADB_TOOLS if not shutil.which(t) and
            not Path("/usr/sbin", t).exists()]
    gone += [str(PG_BIN / t) for t in ("initdb", "postgres", "pg_ctl", "psql", "pgbench")
             if not (PG_BIN / t).exists()]
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        gone.append("user postgres")
    return gone


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            if not Path("/proc/%d" % pid).exists():
                return True
        time.sleep(0.05)
    return False


class _Server:
    proc = None
    log = None
    STOP_SIGNAL = signal.SIGTERM

    def stop(self, timeout=DEADLINE):
        """STOP_SIGNAL (a clean shutdown) to the PID we started, then SIGKILL at TIMEOUT."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(self.STOP_SIGNAL)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)

    def log_text(self):
        try:
            return Path(self.log).read_text(errors="replace")
        except OSError:
            return ""


class MariaDB(_Server):
    """mariadbd on DATA (tables), LOGS (InnoDB redo log, binary log), socket in RUN."""

    def __init__(self, data, logs, run, binlog=True):
        self.data, self.logs, self.run = Path(data), Path(logs), Path(run)
        self.socket = self.run / "mysqld.sock"
        self.log = self.run / "mariadb.err"
        self.binlog = binlog

    def options(self):
        opts = ["--no-defaults", "--user=root", "--datadir=%s" % self.data,
                "--innodb-log-group-home-dir=%s" % self.logs, "--skip-networking",
                "--socket=%s" % self.socket, "--pid-file=%s" % (self.run / "mysqld.pid"),
                "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=1", "--skip-name-resolve",
                "--log-error=%s" % self.log]
        if self.binlog:
            opts += ["--log-bin=%s" % (self.logs / "binlog"), "--server-id=1",
                     "--sync-binlog=1"]
        return opts

    def init(self):
        for d in (self.data, self.logs, self.run):
            d.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root",
                            "--datadir=%s" % self.data, "--auth-root-authentication-method=socket",
                            "--skip-test-db", "--innodb-log-group-home-dir=%s" % self.logs,
                            "--innodb-log-file-size=16M"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db failed:\n%s%s" % (r.stdout, r.stderr))

    def start(self):
        self.run.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["mariadbd"] + self.options(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited %d:\n%s" % (self.proc.returncode,
                                                                self.log_text()[-3000:]))
            if self.socket.exists() and self.sql("SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not answer:\n%s" % self.log_text()[-3000:])

    def client_args(self):
        return ["mariadb", "--no-defaults", "--protocol=SOCKET", "--socket=%s" % self.socket,
                "--user=root", "--batch", "--skip-column-names"]

    def sql(self, statements, check=True, timeout=DEADLINE):
        r = subprocess.run(self.client_args() + ["-e", statements], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("mariadb: %s: %s" % (statements[:200], r.stderr.strip()))
        return r

    def rows(self, statements):
        return [line.split("\t") for line in self.sql(statements).stdout.splitlines()]


class Postgres(_Server):
    """postgres (PostgreSQL 15) on DATA with its WAL in WAL (initdb --waldir), socket in RUN,
    run as the user postgres (the server refuses root)."""

    STOP_SIGNAL = signal.SIGINT  # a fast shutdown; SIGTERM waits for every session to end

    def __init__(self, data, wal, run, port=5432):
        self.data, self.wal, self.run = Path(data), Path(wal), Path(run)
        self.port = port
        self.log = self.run / "postgres.log"
        pw = pwd.getpwnam("postgres")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def _as_postgres(self):
        os.setgid(self.gid)
        os.setgroups([])
        os.setuid(self.uid)

    def _own(self, *dirs):
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, self.uid, self.gid)
            d.chmod(0o700)

    def init(self, password_file=None):
        """initdb; with PASSWORD_FILE (a file postgres can read holding a password), the
        superuser postgres gets that password and every connection must give it (scram)."""
        self._own(self.data, self.wal, self.run)
        # initdb wants an empty WAL directory of its own below the mount point.
        self.wal = self.wal / "pg_wal"
        args = [str(PG_BIN / "initdb"), "-D", str(self.data), "--waldir=%s" % self.wal,
                "-U", "postgres", "--no-instructions", "-E", "UTF8", "--locale=C"]
        if password_file:
            args += ["--auth=scram-sha-256", "--pwfile=%s" % password_file]
        else:
            args += ["--auth=trust"]
        r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120, preexec_fn=self._as_postgres, cwd="/")
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n%s%s" % (r.stdout, r.stderr))

    def start(self, extra=()):
        self._own(self.run)
        args = [str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.run),
                "-p", str(self.port), "-c", "listen_addresses=", "-c", "shared_buffers=32MB",
                "-c", "fsync=on", "-c", "logging_collector=off", "-c", "log_checkpoints=on",
                "-c", "max_wal_size=256MB"] + list(extra)
        with open(self.log, "ab") as log:
            os.chown(self.log, self.uid, self.gid)
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True,
                                         preexec_fn=self._as_postgres, cwd="/")
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited %d:\n%s" % (self.proc.returncode,
                                                                self.log_text()[-3000:]))
            r = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(self.run),
                                "-p", str(self.port)], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=DEADLINE)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not answer:\n%s" % self.log_text()[-3000:])

    def conninfo(self, passfile=None, dbname="postgres"):
        c = "host=%s port=%d user=postgres dbname=%s" % (self.run, self.port, dbname)
        return c + (" passfile=%s" % passfile if passfile else "")

    def sql(self, statements, passfile=None, check=True, timeout=DEADLINE, dbname="postgres"):
        r = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-c", statements, self.conninfo(passfile, dbname)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("psql: %s: %s" % (statements[:200], r.stderr.strip()))
        return r


class Load:
    """One client session committing numbered rows one at a time and recording, for each,
    when its commit was acknowledged (the answer to the statement after it came back).
    KIND 'mysql': INSERT into TABLE, then SELECT n; KIND 'pg': INSERT ... RETURNING n."""

    def __init__(self, args, kind, table):
        self.kind, self.table = kind, table
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     start_new_session=True)
        self.acked = {}  # n -> time.monotonic() of its acknowledgement
        self.sent = {}   # n -> time.monotonic() it was sent
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        try:
            while not self.stopping:
                n += 1
                if self.kind == "mysql":
                    stmt = "INSERT INTO %s (n) VALUES (%d); SELECT %d;\n" % (self.table, n, n)
                else:
                    stmt = "INSERT INTO %s (n) VALUES (%d) RETURNING n;\n" % (self.table, n)
                self.sent[n] = time.monotonic()
                self.proc.stdin.write(stmt)
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
                if not line:
                    return
                assert int(line) == n, line
                self.acked[n] = time.monotonic()
                time.sleep(0.002)
        except (BrokenPipeError, ValueError, OSError):
            return

    def progresses(self, timeout=DEADLINE):
        start = len(self.acked)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.acked) > start + 5:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)
        self.thread.join(timeout=DEADLINE)
