#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench-api: what the agent's API clients cost, next to the AWS CLI.  A benchmark, not a
test: it prints numbers and asserts nothing about them.

    bench_api.py [BIN [EC2_PROBE]]     (default build/ec2-imaged, build/tools/ec2_probe)
    BENCH_RUNS=N                       runs per command (default 10, after one warm-up run)

Starts moto and the IMDS test server on free loopback ports (one instance in moto, three images
of it owned by the account), then times, each in a minimal environment pointed at those peers:

  * `ec2-imaged whoami`: IMDSv2 token, identity document, role credentials;
  * one DescribeImages (Owner=self) through the agent's EC2 client (build/tools/ec2_probe);
  * the same DescribeImages with the AWS CLI (/usr/bin/aws when present, else `aws` on PATH).

Wall time is from spawn to exit as seen by this script, through /usr/bin/time (the spawn of
both, about a millisecond, is in every row alike); peak RSS is what /usr/bin/time reports (%M,
the child's ru_maxrss).  Not os.wait4() from here: a child spawned by this Python process starts
with its peak RSS, and would report at least that.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))

import peers  # noqa: E402  (tests/peers is not a package)

RUNS = int(os.environ.get("BENCH_RUNS", "10"))
TIMEOUT = 120  # seconds; one command that takes longer is killed and ends the benchmark
IMAGES = 3
TIME = "/usr/bin/time"
HAVE_TIME = os.access(TIME, os.X_OK)
DUMMY = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def run_once(cmd, env):
    """Run CMD under /usr/bin/time; returns (wall seconds, peak RSS in KiB or None without
    /usr/bin/time, stdout).  Raises RuntimeError on failure."""
    with tempfile.TemporaryDirectory() as d:
        out, err, rss = (os.path.join(d, n) for n in ("out", "err", "rss"))
        timed = [TIME, "-f", "%M", "-o", rss] if HAVE_TIME else []
        with open(out, "wb") as fo, open(err, "wb") as fe:
            t0 = time.perf_counter()
            try:
                code = subprocess.run(timed + cmd, env=env, stdin=subprocess.DEVNULL,
                                      stdout=fo, stderr=fe, timeout=TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                raise RuntimeError("%s took more than %d s" % (" ".join(cmd), TIMEOUT))
            wall = time.perf_counter() - t0
        stdout = Path(out).read_text(errors="replace")
        if code != 0:
            raise RuntimeError("%s exited with %d:\n%s%s" % (" ".join(cmd), code, stdout,
                                                            Path(err).read_text()))
        return wall, int(Path(rss).read_text().split()[-1]) if HAVE_TIME else None, stdout


def bench(cmd, env):
    """One warm-up run, then RUNS measured ones; returns (walls, rss values, last stdout)."""
    _, _, out = run_once(cmd, env)
    walls, rss = [], []
    for _ in range(RUNS):
        w, r, out = run_once(cmd, env)
        walls.append(w * 1000)
        if r is not None:
            rss.append(r / 1024)
    return walls, rss, out


def aws_cli():
    """/usr/bin/aws when present, else the first `aws` on PATH, else None."""
    if os.access("/usr/bin/aws", os.X_OK):
        return "/usr/bin/aws"
    return shutil.which("aws")


def version_of(cmd, env):
    try:
        r = subprocess.run(cmd + ["--version"], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=TIMEOUT)
        return (r.stdout or r.stderr).split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def imds_server_nagles():
    """Whether tests/peers/imds_server.py answers with Nagle on: its handler writes headers and
    body in two sends, so on a kept-alive connection each answer after the first waits for the
    client's delayed ACK (about 40 ms on Linux), which is then most of what whoami measures."""
    import imds_server

    return not getattr(imds_server.Handler, "disable_nagle_algorithm", False)


def main(argv):
    bin_path = os.path.abspath(argv[1] if len(argv) > 1 else REPO / "build" / "ec2-imaged")
    probe = os.path.abspath(argv[2] if len(argv) > 2 else REPO / "build" / "tools" / "ec2_probe")
    for p in (bin_path, probe):
        if not os.access(p, os.X_OK):
            raise SystemExit("%s not built (make %s)" % (p, os.path.relpath(p, REPO)))
    peers.pin_environ_to_loopback()
    tmp = Path(tempfile.mkdtemp(prefix="ec2-imaged-bench-"))
    try:
        with peers.LocalAws(tmp / "peers") as aws:
            return run(bin_path, probe, tmp, aws)
    except (peers.PeerError, RuntimeError) as e:
        print("bench-api: %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(bin_path, probe, tmp, aws):
    ec2 = aws.ec2()
    for i in range(IMAGES):
        ec2.create_image(InstanceId=aws.instance_id, Name="bench-%d" % i, NoReboot=True)
    home = tmp / "home"
    home.mkdir()
    conf = tmp / "ec2-imaged.conf"
    # whoami freezes nothing, but no config of ours leaves [freeze] mounts at `auto`.
    conf.write_text("[run]\nstate_dir = %s\n[hooks]\ndir = %s\n[freeze]\nmounts = %s\n"
                    % (tmp / "state", tmp / "hooks", tmp / "nothing-to-freeze"))

    agent_env = peers.minimal_env(home, aws.imds.url, aws.moto.url)
    api_env = peers.minimal_env(home, peers.dead_loopback_url(), aws.moto.url,
                                AWS_DEFAULT_REGION=aws.region, AWS_EC2_METADATA_DISABLED="true",
                                AWS_PAGER="", **DUMMY)
    rows = [("ec2-imaged whoami (IMDSv2 + role credentials)",
             [bin_path, "--config", str(conf), "whoami"], agent_env, None)]
    rows.append(("DescribeImages, agent's client (ec2_probe)",
                 [probe, "--endpoint", aws.moto.url, "--region", aws.region, "describe-images"],
                 api_env, lambda out: len(json.loads(out).get("images", []))))
    cli = aws_cli()
    if cli:
        rows.append(("DescribeImages, AWS CLI (%s %s)" % (cli, version_of([cli], api_env)),
                     [cli, "ec2", "describe-images", "--owners", "self", "--region", aws.region,
                      "--endpoint-url", aws.moto.url, "--output", "json"],
                     api_env, lambda out: len(json.loads(out)["Images"])))

    print("bench-api: %d runs each after one warm-up; peers on loopback: moto %s, IMDS %s"
          % (RUNS, aws.moto.url, aws.imds.url))
    print("instance %s with %d images owned by account %s\n"
          % (aws.instance_id, IMAGES, aws.account_id))
    head = "%-58s %9s %8s %8s %12s" % ("command", "median ms", "min ms", "max ms",
                                       "peak RSS MiB")
    print(head)
    print("-" * len(head))
    for name, cmd, env, count in rows:
        walls, rss, out = bench(cmd, env)
        note = ""
        if count is not None:
            n = count(out)
            note = "" if n == IMAGES else "  (saw %d images, not %d!)" % (n, IMAGES)
        print("%-58s %9.1f %8.1f %8.1f %12s%s"
              % (name, statistics.median(walls), min(walls), max(walls),
                 "%.1f" % max(rss) if rss else "n/a", note), flush=True)
    if imds_server_nagles():
        print("note: the IMDS test server sends without TCP_NODELAY, so each request after the "
              "first on a\nkept-alive connection waits ~40 ms for a delayed ACK: most of "
              "whoami's time above")
    if not HAVE_TIME:
        print("(peak RSS n/a: %s is missing; apt-get install time)" % TIME)
    if not cli:
        print("(no AWS CLI found: /usr/bin/aws absent and no `aws` on PATH)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
