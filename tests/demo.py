#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make demo: the main job of ec2-imaged against local peers, start to finish.

    demo.py [BIN]        (BIN defaults to build/ec2-imaged)

Starts moto (the EC2 API) and tests/peers/imds_server.py (IMDSv2) on free loopback ports,
creates an instance in moto and has the IMDS server describe it (account 123456789012,
us-east-1), then runs `ec2-imaged whoami`, `check` and a real `run`:

  * as root: no-reboot mode, freezing one scratch ext4 filesystem on a loop device made for the
    demo (the only filesystem named in the config: never `auto`), with a pre-image hook that
    writes a marker file onto it;
  * otherwise: FIFREEZE needs root, so reboot mode instead (EC2 would reboot the instance; here
    nothing reboots and `resume` plays the part of the boot), the marker in a temp dir.

Then it shows the image and its tags as moto describes them (botocore, dummy credentials) and
the freeze window measured by the agent.  Everything started is stopped by its PID; the scratch
filesystem is thawed, unmounted and detached whatever happens.  No packet leaves 127.0.0.1:
the agent runs in a minimal environment whose two endpoints are the local peers.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "peers"))

import peers  # noqa: E402  (tests/peers is not a package)
import scratchfs  # noqa: E402

AGENT_TIMEOUT = 300  # seconds; the bound on one agent command
MARKER = "ec2-imaged-demo-marker"

HOOK = """#!/bin/sh
# pre-image hook of the ec2-imaged demo: leave a mark on the filesystem being imaged.
printf 'run %s of %s, written by the pre-image hook\\n' "$EC2_IMAGED_RUN_ID" "$INSTANCE_ID" \\
    > '{marker}'
sync
echo "marker written to {marker}"
"""


def title(text):
    print("\n== %s" % text, flush=True)


def indent(text):
    return textwrap.indent(text.rstrip("\n"), "   ") if text.strip() else ""


def agent(bin_path, conf, env, *args, show_stdout=True):
    """Run one ec2-imaged command; print it, its output and its log lines (stderr).
    Returns its standard output; a failure ends the demo."""
    title("ec2-imaged " + " ".join(args))
    try:
        r = subprocess.run([bin_path, "--config", str(conf)] + list(args), env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=AGENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SystemExit("ec2-imaged %s did not finish in %d s" % (args[0], AGENT_TIMEOUT))
    shown = (r.stdout if show_stdout or r.returncode != 0 else "") + r.stderr
    if shown.strip():
        print(indent(shown))
    if r.returncode != 0:
        raise SystemExit("ec2-imaged %s failed with exit code %d" % (args[0], r.returncode))
    return r.stdout


def write_hooks(hooks_dir, marker):
    """HOOKS/pre-image.d/10-marker; root-owned and not group/world-writable, as the agent
    requires of hooks and their directories (whatever the umask)."""
    d = hooks_dir / "pre-image.d"
    d.mkdir(parents=True)
    hook = d / "10-marker"
    hook.write_text(HOOK.format(marker=marker))
    for p in (hooks_dir, d, hook):
        os.chmod(p, 0o755)
    return hook


def write_config(path, state_dir, hooks_dir, mounts):
    """The demo's configuration: every path in temp dirs, and the freeze list explicit (an
    empty list would mean `auto`: every filesystem of this machine)."""
    lines = ["[run]", "state_dir = %s" % state_dir, "wait_poll_max_s = 1",
             "[image]", "name = ec2-imaged-demo-{date:%Y%m%d-%H%M%S}",
             "description = ec2-imaged demo run {run_id} of {instance_id}",
             "tag = purpose=demo", "tag = team:owner=platform",
             "[hooks]", "dir = %s" % hooks_dir, "timeout_s = 30",
             "[freeze]", "mounts = %s" % " ".join(str(m) for m in mounts),
             "timeout_ms = 10000"]
    path.write_text("\n".join(lines) + "\n")


def show_image(aws, image_id):
    title("the image, as the EC2 API (moto) describes it")
    img = aws.ec2().describe_images(ImageIds=[image_id])["Images"][0]
    print("   %s  %s  (%s)" % (img["ImageId"], img.get("Name"), img.get("State")))
    if img.get("Description"):
        print("   description: %s" % img["Description"])
    for tag in sorted(img.get("Tags", []), key=lambda t: t["Key"]):
        print("   tag  %-28s %s" % (tag["Key"], tag["Value"]))
    snaps = [m["Ebs"]["SnapshotId"] for m in img.get("BlockDeviceMappings", []) if "Ebs" in m]
    if snaps:
        print("   snapshots: %s" % " ".join(snaps))


def why_no_freeze():
    """None when this process can freeze a scratch filesystem, else the reason it cannot."""
    if os.geteuid() != 0:
        return "not root: FIFREEZE, losetup and mount need root"
    missing = scratchfs.missing_tools()
    if missing:
        return "missing %s (make deps installs them)" % ", ".join(missing)
    return None


def demo(bin_path, tmp, scratch):
    print("ec2-imaged demo: every peer listens on 127.0.0.1; nothing is sent anywhere else")
    title("peers")
    aws = peers.LocalAws(tmp / "peers")
    try:
        print("   moto (EC2 API)  %s  pid %d" % (aws.moto.url, aws.moto.pid))
        print("   IMDS server     %s  pid %d" % (aws.imds.url, aws.imds.pid))
        print("   instance %s in moto, account %s, %s" % (aws.instance_id, aws.account_id,
                                                        aws.region))
        run_demo(bin_path, tmp, scratch, aws)
    finally:
        aws.close()
        title("clean-up")
        print("   stopped %s" % ", ".join("%s (pid %d)" % (p.name, p.pid) for p in aws.peers))


def run_demo(bin_path, tmp, scratch, aws):
    state_dir, hooks_dir = tmp / "state", tmp / "hooks"
    state_dir.mkdir(mode=0o700)
    no_freeze = why_no_freeze()
    if no_freeze is None:
        mnt = scratch.make("ext4")
        marker = mnt / MARKER
        title("scratch filesystem to freeze")
        print("   ext4 on %s, mounted at %s" % (scratch.loop_of(mnt), mnt))
    else:
        mnt = None
        marker = tmp / MARKER
    hook = write_hooks(hooks_dir, marker)
    conf = tmp / "ec2-imaged.conf"
    # Without a scratch filesystem the list names a path that does not exist: reboot mode
    # freezes nothing, and a no-reboot run would refuse it ("not a mount point").
    write_config(conf, state_dir, hooks_dir, [mnt or tmp / "nothing-to-freeze"])
    print("   pre-image hook %s writes %s" % (hook, marker))

    env = peers.minimal_env(tmp / "home", aws.imds.url, aws.endpoint)
    (tmp / "home").mkdir()
    agent(bin_path, conf, env, "whoami")
    agent(bin_path, conf, env, "check")

    if no_freeze is None:
        print("\n(no-reboot run: [freeze] mounts = %s, nothing else is frozen)" % mnt)
        out = agent(bin_path, conf, env, "run", "--json", show_stdout=False)
    else:
        print("\n(skipping the freeze: %s.\n A reboot-mode run instead: EC2 would reboot the "
              "instance; nothing reboots here,\n so `resume` plays the part of the boot.)"
              % no_freeze)
        agent(bin_path, conf, env, "run", "--mode", "reboot", "--json", show_stdout=False)
        out = agent(bin_path, conf, env, "resume", "--json", show_stdout=False)
    run = json.loads(out)

    show_image(aws, run["image_id"])
    title("result")
    print("   run %s: %s, image %s, consistency %s"
          % (run["run_id"], run["phase"], run["image_id"], run["consistency"]))
    if run.get("freeze_window_ms", -1) >= 0:
        print("   freeze window %d ms (first FIFREEZE to last FITHAW), of which the CreateImage "
              "round trip %d ms" % (run["freeze_window_ms"], run["create_call_ms"]))
        print("   frozen: %s" % " ".join(run.get("frozen_mounts") or []))
    else:
        print("   no freeze window: %s" % (no_freeze or "nothing was frozen"))
    times = run.get("phase_times") or {}
    print("   phases: %s" % ", ".join("%s %d ms" % (k, v["ms"]) for k, v in times.items()
                                      if "ms" in v))
    print("   marker: %s" % marker.read_text().strip())


def main(argv):
    bin_path = os.path.abspath(argv[1] if len(argv) > 1 else REPO / "build" / "ec2-imaged")
    if not os.access(bin_path, os.X_OK):
        raise SystemExit("%s not built (run make)" % bin_path)
    peers.pin_environ_to_loopback()
    tmp = Path(tempfile.mkdtemp(prefix="ec2-imaged-demo-"))
    ok = False
    try:
        scratch = scratchfs.ScratchFS()
        try:
            demo(bin_path, tmp, scratch)
            ok = True
        finally:
            made = [str(m) for m in scratch.mounts]
            scratch.cleanup()
            if made:
                print("   thawed, unmounted and detached %s" % " ".join(made))
    except peers.PeerError as e:
        print("demo: %s" % e, file=sys.stderr)
    except subprocess.CalledProcessError as e:
        print("demo: %s failed:\n%s" % (" ".join(map(str, e.cmd)), e.stderr), file=sys.stderr)
    finally:
        sys.stdout.flush()
        if ok or not any(tmp.iterdir()):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("demo failed; peer logs and config kept in %s" % tmp, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
