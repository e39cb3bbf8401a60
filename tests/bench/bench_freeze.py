#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench-freeze: how long a no-reboot run keeps the filesystems frozen.  A benchmark, not a
test: it prints numbers and asserts nothing about them.  Root only (loop devices, mount,
FIFREEZE); otherwise it says so and exits 0.

    bench_freeze.py [BIN]          (default build/ec2-imaged)
    BENCH_RUNS=N                   runs per case (default 5)
    BENCH_DELAY_MS=MS              delay the fault proxy adds to CreateImage (default 200)

Peers: moto, the IMDS test server and the fault proxy in front of moto, all on loopback; the
agent's EC2 endpoint is the proxy, which holds every CreateImage for BENCH_DELAY_MS before
passing it on, as a slow API would.  The only filesystem frozen is a 512 MiB scratch ext4 on a
loop device made for the benchmark ([freeze] mounts names it; never `auto`), in two cases:

  idle    nothing waiting to be written (synced before the run);
  dirty   256 MiB written into a file on it without fsync right before the run.

Then, when MariaDB and PostgreSQL 15 are installed (install-build-deps.sh), a database case on
a scratch ext4 (data) and xfs (logs, WAL) of its own: both servers under load (pgbench and
three sessions committing rows, tests/peers/dbservers.py), imaged without hooks and with
mysql-hold (hold.d) and postgresql-checkpoint (pre-freeze); "held" is mysql-hold's held_ms
from the run's JSON: how long FLUSH TABLES WITH READ LOCK kept writes out.

From `ec2-imaged run --json` of each run: freeze_window_ms (first FIFREEZE to last FITHAW),
create_call_ms (the CreateImage round trip inside it) and phase_times.freezing (the whole phase:
syncfs, thaw guard, freeze, call, thaw).  The scratch filesystem is thawed, unmounted and
detached, and every peer stopped by its PID, whatever happens.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))

import dbservers  # noqa: E402
import peers  # noqa: E402  (tests/peers is not a package)
import scratchfs  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
DELAY_MS = int(os.environ.get("BENCH_DELAY_MS", "200"))
FS_SIZE = 512 << 20
DIRTY = 256 << 20
CHUNK = 1 << 20
AGENT_TIMEOUT = 300  # seconds; the bound on one run


def meminfo_dirty_mib():
    """System-wide Dirty: from /proc/meminfo, in MiB (shows the dirty data really is unwritten)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def syncfs(mnt):
    subprocess.run(["sync", "-f", str(mnt)], check=True, timeout=AGENT_TIMEOUT)


def prepare(mnt, dirty):
    """Leave MNT idle (everything written), or with DIRTY bytes written to a file and not
    flushed."""
    path = mnt / "dirty.bin"
    if path.exists():
        path.unlink()
    syncfs(mnt)
    if dirty:
        chunk = os.urandom(CHUNK)
        with open(path, "wb") as f:
            for _ in range(dirty // CHUNK):
                f.write(chunk)
        # Closed without fsync: the pages stay dirty until writeback or the agent's syncfs.


def write_config(path, tmp, mnt):
    hooks = tmp / "hooks"
    hooks.mkdir(mode=0o700)
    path.write_text("\n".join([
        "[run]", "state_dir = %s" % (tmp / "state"), "wait_poll_max_s = 1",
        "[image]", "name = bench-freeze-{run_id}",
        "[hooks]", "dir = %s" % hooks,
        "[freeze]", "mounts = %s" % mnt, "timeout_ms = 60000"]) + "\n")


def one_run(bin_path, conf, env, proxy):
    """One no-reboot run with CreateImage delayed at the proxy; returns its JSON result."""
    proxy.call("POST", "/_control/reset", {})
    # Two: the pre-flight DryRun CreateImage takes the first, the real call the second.
    proxy.faults({"kind": "delay", "delay_ms": DELAY_MS, "action": "CreateImage", "count": 2})
    r = subprocess.run([bin_path, "--config", str(conf), "run", "--json"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=AGENT_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError("ec2-imaged run failed (%d):\n%s%s" % (r.returncode, r.stdout,
                                                                  r.stderr))
    run = json.loads(r.stdout)
    if run.get("consistency") != "fs-frozen" or run.get("freeze_window_ms", -1) < 0:
        raise RuntimeError("the run froze nothing:\n%s%s" % (r.stdout, r.stderr))
    real = [q for q in proxy.requests()
            if q.get("action") == "CreateImage" and q["params"].get("DryRun") != "true"]
    run["delayed"] = bool(real) and all(q.get("fault") == "delay" for q in real)
    return run


def stats(values):
    return "%6d %6d" % (statistics.median(values), max(values))


def bench(bin_path, tmp, scratch, aws):
    mnt = scratch.make("ext4", size=FS_SIZE)
    conf = tmp / "ec2-imaged.conf"
    write_config(conf, tmp, mnt)
    home = tmp / "home"
    home.mkdir()
    env = peers.minimal_env(home, aws.imds.url, aws.proxy.url)

    print("bench-freeze: %d no-reboot runs per case; CreateImage delayed %d ms by the fault proxy"
          % (RUNS, DELAY_MS))
    print("frozen: %d MiB scratch ext4 on %s at %s (nothing else)"
          % (FS_SIZE >> 20, scratch.loop_of(mnt), mnt))
    print("window = first FIFREEZE to last FITHAW; call = CreateImage round trip inside it;")
    print("freezing = the whole phase (syncfs, thaw guard, freeze, call, thaw); median and max;")
    print("Dirty at go = Dirty: of /proc/meminfo (the whole machine) as each run starts\n")
    head = ("%-22s %12s  %13s  %13s  %13s  %13s"
            % ("case", "Dirty at go", "window ms", "call ms", "window-call", "freezing ms"))
    print(head)
    print("%-22s %12s  %13s  %13s  %13s  %13s"
          % ("", "MiB (median)", "median    max", "median    max", "median    max",
             "median    max"))
    print("-" * len(head))
    undelayed = 0
    for name, dirty in (("idle", 0), ("dirty: %d MiB unsynced" % (DIRTY >> 20), DIRTY)):
        runs, dirt = [], []
        for _ in range(RUNS):
            prepare(mnt, dirty)
            dirt.append(meminfo_dirty_mib())
            runs.append(one_run(bin_path, conf, env, aws.proxy))
        undelayed += sum(1 for r in runs if not r["delayed"])
        window = [r["freeze_window_ms"] for r in runs]
        call = [r["create_call_ms"] for r in runs]
        gap = [w - c for w, c in zip(window, call)]
        phase = [r["phase_times"]["freezing"]["ms"] for r in runs]
        print("%-22s %12.0f  %s  %s  %s  %s" % (name, statistics.median(dirt), stats(window),
                                               stats(call), stats(gap), stats(phase)),
              flush=True)
    prepare(mnt, 0)
    bench_db(bin_path, tmp, scratch, aws, env)
    if undelayed:
        print("\nnote: in %d run(s) the proxy did not delay the real CreateImage" % undelayed)
    return 0


def db_config(path, tmp, mounts, hooks, servers):
    """A config freezing MOUNTS whose hooks dir holds the database hooks when HOOKS: each a
    one-line exec (the agent gives hooks its configuration file in EC2_IMAGED_CONFIG)."""
    my, pg = servers
    hdir = tmp / ("hooks-db-%s" % ("on" if hooks else "off"))
    hdir.mkdir(mode=0o755, exist_ok=True)
    if hooks:
        for phase, name, script in (("hold", "10-mysql-hold", "mysql-hold"),
                                    ("pre-freeze", "50-postgresql-checkpoint",
                                     "postgresql-checkpoint")):
            (hdir / (phase + ".d")).mkdir(mode=0o755, exist_ok=True)
            hook = hdir / (phase + ".d") / name
            hook.write_text('#!/bin/sh\nexec %s "$@"\n' % (REPO / "hooks" / script))
            hook.chmod(0o755)
    path.write_text("\n".join([
        "[run]", "state_dir = %s" % (tmp / "state"), "wait_poll_max_s = 1",
        "[image]", "name = bench-db-{run_id}",
        "[hooks]", "dir = %s" % hdir,
        "[freeze]", "mounts = %s" % " ".join(str(m) for m in mounts), "timeout_ms = 60000",
        "[mysql]", "socket = %s" % my.socket, "position_file = %s" % (mounts[0] / "binlog-pos"),
        "[postgresql]", "clusters = %s:%d" % (pg.run, pg.port)]) + "\n")


def start_db_load(scratch):
    """MariaDB and PostgreSQL on a scratch ext4 and xfs, and their load; returns both."""
    os.chmod(scratch.dir, 0o711)  # the postgres user reaches its directories through it
    data = scratch.make("ext4", size=320 << 20, name="db-data")
    logs = scratch.make("xfs", name="db-logs")
    for m in (data, logs):
        os.chmod(m, 0o755)
    my = dbservers.MariaDB(data / "mysql", logs / "mysql", scratch.dir / "run-mysql")
    pg = dbservers.Postgres(data / "pg", logs / "pg", scratch.dir / "run-pg", 5432)
    my.init()
    my.start()
    my.sql("CREATE DATABASE t; CREATE TABLE t.inno (n INT PRIMARY KEY) ENGINE=InnoDB; "
           "CREATE TABLE t.isam (n INT PRIMARY KEY) ENGINE=MyISAM")
    pg.init()
    pg.start(["-c", "max_wal_size=96MB", "-c", "min_wal_size=32MB"])
    pg.sql("CREATE TABLE acks (n INT PRIMARY KEY)")
    as_pg = dict(preexec_fn=pg._as_postgres, cwd="/", stdin=subprocess.DEVNULL)
    bench = [str(dbservers.PG_BIN / "pgbench"), "-h", str(pg.run), "-p", "5432"]
    subprocess.run(bench + ["-i", "-q", "-s", "2", "postgres"], check=True, capture_output=True,
                   timeout=AGENT_TIMEOUT, **as_pg)
    scratch.spawn(bench + ["-n", "-c", "2", "-T", "3600", "postgres"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                  **{k: v for k, v in as_pg.items() if k != "stdin"})
    loads = [dbservers.Load(my.client_args() + ["--unbuffered"], "mysql", t)
             for t in ("t.inno", "t.isam")]
    loads.append(dbservers.Load([str(dbservers.PG_BIN / "psql"), "-X", "-q", "-A", "-t",
                                 pg.conninfo()], "pg", "acks"))
    return (my, pg), loads, [data, logs]


def bench_db(bin_path, tmp, scratch, aws, env):
    missing = dbservers.missing()
    if missing:
        print("\ndatabases: skipped, missing %s" % ", ".join(missing))
        return
    servers, loads = (None, None), []
    try:
        servers, loads, mounts = start_db_load(scratch)
        print("\ndatabases under load: MariaDB and PostgreSQL 15 on a scratch ext4 (data) and "
              "xfs (logs, WAL), both frozen; held = mysql-hold's held_ms")
        for name, hooks in (("db load, no hooks", False),
                            ("db load, mysql-hold + ckpt", True)):
            conf = tmp / ("db-%d.conf" % hooks)
            db_config(conf, tmp, mounts, hooks, servers)
            runs = [one_run(bin_path, conf, env, aws.proxy) for _ in range(RUNS)]
            window = [r["freeze_window_ms"] for r in runs]
            call = [r["create_call_ms"] for r in runs]
            held = [h["held_ms"] for r in runs for h in r.get("holders", [])]
            print("%-28s window %s  call %s  window-call %s  held %s" % (
                name, stats(window), stats(call), stats([w - c for w, c in zip(window, call)]),
                stats(held) if held else "     -      -"), flush=True)
    finally:
        for load in loads:
            load.stop()
        for s in servers:
            if s:
                s.stop()


def why_not():
    if os.geteuid() != 0:
        return "needs root (losetup, mount and FIFREEZE on a scratch ext4)"
    missing = scratchfs.missing_tools()
    if missing:
        return "missing %s (make deps installs them)" % ", ".join(missing)
    return None


def main(argv):
    bin_path = os.path.abspath(argv[1] if len(argv) > 1 else REPO / "build" / "ec2-imaged")
    reason = why_not()
    if reason:
        print("bench-freeze: skipped: %s" % reason)
        return 0
    if not os.access(bin_path, os.X_OK):
        raise SystemExit("%s not built (run make)" % bin_path)
    peers.pin_environ_to_loopback()
    tmp = Path(tempfile.mkdtemp(prefix="ec2-imaged-bench-"))
    scratch = scratchfs.ScratchFS()
    try:
        with peers.LocalAws(tmp / "peers", fault_proxy=True) as aws:
            return bench(bin_path, tmp, scratch, aws)
    except (peers.PeerError, RuntimeError, subprocess.SubprocessError) as e:
        print("bench-freeze: %s" % e, file=sys.stderr)
        return 1
    finally:
        scratch.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
