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
    if undelayed:
        print("\nnote: in %d run(s) the proxy did not delay the real CreateImage" % undelayed)
    return 0


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
