#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end test in real VMs: a Debian 12 guest with the freshly built .deb images itself.

Run by `make e2e` as root. The test creates a network namespace and runs everything else in it
(re-executing itself with `ip netns exec`): there the host side owns 169.254.169.254 on a tap
device given to qemu, and the IMDS test server (port 80), moto (loopback of the namespace) and
tests/vm/ec2_front.py (the EC2 API on port 8080, forwarding to moto and copying the guest's
disks over QMP on CreateImage) listen. Nothing the guest does can leave the namespace.

For each mode (no-reboot, reboot) a golden VM boots from a copy of the golden disks (ext4 root,
xfs data volume), with SMBIOS "Amazon EC2", so cloud-init's Ec2 datasource reads its user-data
from the IMDS test server over IMDSv2 and the image is taken on first boot:
  no-reboot  #cloud-config runcmd `ec2-imaged trigger --wait` (README, first boot), the
             filesystems are frozen and the front copies the disks at CreateImage;
  reboot     the daemon's own `#ec2-imaged: run=first-boot mode=reboot` directive, the front
             shuts the guest down over ACPI, copies, starts it again, and the run resumes.
Then: the copies' ext4 needs no journal recovery and their xfs log needs no replay (read
before any VM mounts them: clean, or only the superblock updates of a freeze); the pre-image
marker is in the copy; the sanitized items are absent from it; a second VM "launched from the
image" (another instance id) boots from the copies with a machine-id and host keys of its own;
the golden VM is healthy (systemd running, daemon active, the run succeeded).

The time of each stage is printed. On failure, disk images, serial logs and peer logs stay in
build/e2e/; on success the disk images are removed and the logs kept.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "peers"))

import image  # noqa: E402
import xfslog  # noqa: E402
from qmp import Qmp  # noqa: E402

OUT = REPO / "build" / "e2e"
IMDS_IP = "169.254.169.254"
GUEST_IP = "169.254.10.10"
FRONT_PORT = 8080
REGION = "us-east-1"
ACCOUNT = "123456789012"
T0 = time.monotonic()


def stage(msg):
    print("=== [%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(c) for c in cmd], **kw)


def out(cmd):
    return run(cmd, capture_output=True, text=True).stdout


class Fail(Exception):
    pass


FAILURES = []


def check(cond, what):
    """Record one check: a failed one is reported and the test goes on, so that one run shows
    every check; the run fails at the end."""
    if not cond:
        FAILURES.append(what)
        print("    FAIL: %s" % what, flush=True)
    else:
        print("    ok: %s" % what, flush=True)


# ---------------------------------------------------------------- the golden disks


GUEST_FILES = {
    # Under TCG udev can take minutes to announce the disks: longer than systemd's 90 s.
    "etc/fstab": "/dev/vda / ext4 errors=remount-ro 0 1\n"
                 "/dev/vdb /data xfs defaults,x-systemd.device-timeout=600s 0 0\n",
    "etc/systemd/system.conf.d/50-e2e.conf":
        "[Manager]\nDefaultTimeoutStartSec=600s\n",
    "etc/hostname": "golden\n",
    "etc/systemd/network/10-e2e.network":
        "[Match]\nName=eth0\n\n[Network]\nAddress=%s/16\nLinkLocalAddressing=no\n" % GUEST_IP,
    # The datasource, its address and the test's network (static: no DHCP in the namespace).
    "etc/cloud/cloud.cfg.d/99-e2e.cfg":
        "datasource_list: [Ec2, None]\n"
        "datasource:\n  Ec2:\n    metadata_urls: ['http://%s']\n    max_wait: 240\n"
        "    timeout: 20\nnetwork:\n  config: disabled\n"
        # The base image has no locales package: C.UTF-8 needs no generation.
        "locale: C.UTF-8\n" % IMDS_IP,
    "etc/ec2-imaged/conf.d/50-e2e.conf":
        "# The EC2 API of the e2e test (tests/vm/ec2_front.py in the test's namespace).\n"
        "[aws]\nendpoint_url = http://%s:%d\n\n[daemon]\nuser_data = yes\n\n"
        "[freeze]\ntimeout_ms = 120000\n" % (IMDS_IP, FRONT_PORT),
    "etc/ec2-imaged/hooks/pre-image.d/10-e2e-marker":
        "#!/bin/sh\n# e2e: what was there before the image must be in the image.\nset -eu\n"
        "mkdir -p /var/lib/e2e\n"
        "echo \"$EC2_IMAGED_RUN_ID $EC2_IMAGED_MODE\" > /var/lib/e2e/pre-image-marker\n"
        "echo \"E2E-PRE-IMAGE run=$EC2_IMAGED_RUN_ID boot=$(cat /proc/sys/kernel/random/boot_id)"
        " machine-id=$(cat /etc/machine-id)"
        " hostkey=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub)"
        " ds=$(cat /run/cloud-init/cloud-id 2>/dev/null || echo none)"
        " cloudinit=$(cloud-init status 2>/dev/null | awk '{print $2}')\" > /dev/console\n",
    "etc/ec2-imaged/hooks/post-image.d/90-e2e-report":
        "#!/bin/sh\n# e2e: say on the console that the run is over, and report the system.\n"
        "echo \"E2E-POST-IMAGE $IMAGE_ID\" > /dev/console\n"
        "systemctl start --no-block e2e-report.service\n",
    "usr/local/sbin/e2e-report":
        "#!/bin/sh\n# e2e: one console line on the state of this system, once the boot is over.\n"
        "sys=$(systemctl is-system-running --wait)\nsleep 3\n"
        "failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\\n' ,)\n"
        "echo \"E2E-REPORT boot=$(cat /proc/sys/kernel/random/boot_id) system=$sys"
        " daemon=$(systemctl is-active ec2-imaged.service)"
        " timer=$(systemctl is-enabled ec2-imaged-run.timer)"
        " machine-id=$(cat /etc/machine-id)"
        " hostkey=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null)"
        " data=$(findmnt -no FSTYPE /data) failed=$failed"
        " cycles=$(journalctl -b -q | grep -c 'Found ordering cycle')"
        " cloudinit=$(cloud-init status 2>/dev/null | awk '{print $2}')"
        " ciid=$(cat /var/lib/cloud/data/instance-id 2>/dev/null || echo none)"
        " ds=$(cat /run/cloud-init/cloud-id 2>/dev/null || echo none)\" > /dev/console\n",
    "etc/systemd/system/e2e-report.service":
        "[Unit]\nDescription=e2e report on the console\nAfter=multi-user.target\n\n"
        # simple: the boot must not wait for the report, which waits for the boot.
        "[Service]\nType=simple\nExecStart=/usr/local/sbin/e2e-report\n\n"
        "[Install]\nWantedBy=multi-user.target\n",
}
EXECUTABLE = ("etc/ec2-imaged/hooks/pre-image.d/10-e2e-marker",
              "etc/ec2-imaged/hooks/post-image.d/90-e2e-report", "usr/local/sbin/e2e-report")


def build_golden(deb, work):
    """root.img (ext4, made with mkfs.ext4 -d), data.img (xfs), vmlinuz and initrd in WORK."""
    base = image.base_tarball(OUT / "mmdebstrap.log")  # made by main(), outside the namespace
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    run(["tar", "-C", tree, "--numeric-owner", "-xpf", base])
    shutil.copy(deb, tree / "tmp" / deb.name)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8"}
    with open(OUT / "dpkg-install.log", "w") as log:
        run(["chroot", tree, "dpkg", "-i", "/tmp/" + deb.name], env=env, stdout=log,
            stderr=subprocess.STDOUT)
    (tree / "tmp" / deb.name).unlink()
    for rel, text in GUEST_FILES.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, 0o755 if rel in EXECUTABLE else 0o644)
    for d in ("etc/ec2-imaged/hooks", "etc/ec2-imaged/hooks/pre-image.d",
              "etc/ec2-imaged/hooks/post-image.d"):
        os.chmod(tree / d, 0o755)
    # The shipped sanitize hook in the three phases it acts in (README: enabled by symlinks).
    for phase in ("pre-image", "pre-freeze", "post-thaw"):
        d = tree / "etc/ec2-imaged/hooks" / (phase + ".d")
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o755)
        (d / "50-sanitize").symlink_to("/usr/lib/ec2-imaged/hooks/sanitize")
    (tree / "data").mkdir(exist_ok=True)
    (tree / "etc/machine-id").write_text("uninitialized\n")
    # A cloud image asks nobody anything at its first boot.
    (tree / "etc/systemd/system/systemd-firstboot.service").symlink_to("/dev/null")
    (tree / "etc/localtime").unlink(missing_ok=True)
    (tree / "etc/localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    for unit in ("systemd-networkd.service", "e2e-report.service"):
        run(["systemctl", "--root=%s" % tree, "enable", unit], capture_output=True)
    # A console login prompt is not needed; serial-getty stays as it is.
    kernel = sorted((tree / "boot").glob("vmlinuz-*"))[-1]
    initrd = sorted((tree / "boot").glob("initrd.img-*"))[-1]
    shutil.copy(kernel, work / "vmlinuz")
    shutil.copy(initrd, work / "initrd.img")
    root = work / "root.img"
    root.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", tree, root, "3G"])
    data = work / "data.img"
    data.unlink(missing_ok=True)
    run(["truncate", "-s", "1G", data])
    run(["mkfs.xfs", "-q", "-L", "data", data])
    shutil.rmtree(tree)


# ---------------------------------------------------------------- VMs and peers


class Proc:
    """A child started by this test and stopped by its PID (and process group)."""

    def __init__(self, name, cmd, log, **kw):
        self.name, self.log = name, log
        with open(log, "ab") as f:
            self.p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                      stdout=f, stderr=subprocess.STDOUT,
                                      start_new_session=True, **kw)

    def stop(self, timeout=20):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise Fail("%s did not answer" % url)


class Vm:
    def __init__(self, name, work, disks, uuid):
        self.name, self.work = name, work
        self.serial = work / (name + ".serial.log")
        self.qmp_front = work / (name + ".front.qmp")
        self.qmp_ctl = work / (name + ".ctl.qmp")
        for p in (self.qmp_front, self.qmp_ctl):
            p.unlink(missing_ok=True)
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1536",
               "-machine", "q35", "-display", "none", "-monitor", "none", "-no-shutdown",
               "-serial", "file:%s" % self.serial,
               "-kernel", work / "vmlinuz", "-initrd", work / "initrd.img",
               "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 loglevel=4",
               "-smbios", "type=1,manufacturer=Amazon EC2,product=t3.micro,serial=%s" % uuid,
               "-uuid", uuid,
               "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
               "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_front,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_ctl]
        for dev, path in disks.items():
            cmd += ["-drive", "file=%s,format=raw,if=virtio,id=%s,cache=writeback" % (path, dev)]
        self.proc = Proc(name, cmd, work / (name + ".qemu.log"))
        self.qmp = Qmp(self.qmp_ctl)

    def console(self):
        try:
            return self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, pattern, timeout, after=0):
        """The first match of PATTERN in the serial log at or after offset AFTER."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.p.poll() is not None:
                raise Fail("%s: qemu exited (%s)" % (self.name, self.proc.p.returncode))
            m = rx.search(self.console(), after)
            if m:
                return m
            time.sleep(1)
        raise Fail("%s: no /%s/ on the serial console within %ds (see %s)"
                   % (self.name, pattern, timeout, self.serial))

    def shutdown(self, timeout=300):
        """ACPI power button, then wait until the guest has powered off; qemu quits."""
        # Not an earlier SHUTDOWN (the front's, in reboot mode): one after this power-down.
        asked = time.time() - 1
        self.qmp.cmd("system_powerdown")
        self.qmp.wait_event("SHUTDOWN", timeout,
                            match=lambda ev: ev["timestamp"]["seconds"] >= asked)
        self.qmp.cmd("quit")
        self.qmp.close()
        self.proc.p.wait(60)

    def kill(self):
        try:
            self.qmp.close()
        except Exception:  # noqa: BLE001
            pass
        self.proc.stop()


def report(m):
    return dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)


REPORT = r"E2E-REPORT (.*)\r?\n"


# ---------------------------------------------------------------- checks on disk images


def debugfs_cat(img, path):
    r = run(["debugfs", "-R", "cat %s" % path, img], capture_output=True, text=True, check=False)
    return r.stdout


def debugfs_ls(img, path):
    r = run(["debugfs", "-R", "ls -l %s" % path, img], capture_output=True, text=True,
            check=False)
    return r.stdout


def check_copies(root, data, mode, golden):
    stage("%s: checks on the copied disks" % mode)
    feats = out(["dumpe2fs", "-h", root])
    fl = re.search(r"^Filesystem features:\s*(.*)$", feats, re.M).group(1)
    check("needs_recovery" not in fl.split(), "copy of the ext4 root needs no journal recovery "
          "(features: %s)" % fl)
    # The xfs volume's log, before any VM mounts the copy (a mount replays the log, after which a
    # crash-consistent copy looks clean too): an unmounted XFS has a clean log; a frozen one a
    # covered log, whose active range holds superblock updates only (tests/vm/xfslog.py).
    # xfs_repair -n cannot tell them apart (it warns of the covered log's records); it runs
    # after the clone has mounted and unmounted the copy, below.
    xl = xfslog.log_state(data)
    want = ("covered", "clean") if mode == "no-reboot" else ("clean",)
    check(xl.verdict in want, "copy of the xfs volume is consistent before any mount: log %s, "
          "wanted %s (xfs_logprint -t on a copy of the copy)" % (xl, " or ".join(want)))
    marker = debugfs_cat(root, "/var/lib/e2e/pre-image-marker").split()
    check(len(marker) == 2 and marker[1] == mode, "pre-image marker in the copy: %s" % marker)
    mid = debugfs_cat(root, "/etc/machine-id").strip()
    check(mid in ("uninitialized", ""), "copy's /etc/machine-id is %r (sanitized)" % mid)
    keys = [ln for ln in debugfs_ls(root, "/etc/ssh").splitlines() if "ssh_host_" in ln]
    check(not keys, "no SSH host keys in the copy")
    check("instance" not in debugfs_ls(root, "/var/lib/cloud"),
          "no cloud-init instance state in the copy")
    rec = debugfs_cat(root, "/var/lib/ec2-imaged/imaged-instance-id").strip()
    check(rec == golden, "copy records the imaged instance id %s" % rec)


# ---------------------------------------------------------------- one mode


USER_DATA = {
    "no-reboot": "#cloud-config\n# e2e: image at the end of the first boot (README).\n"
                 "runcmd:\n  - [ec2-imaged, trigger, --wait]\n",
    "reboot": "#!/bin/sh\n# e2e: the daemon's own first-boot directive.\n"
              "#ec2-imaged: run=first-boot mode=reboot\necho first boot of $(hostname)\n",
}


def start_imds(work, moto_url, instance_id, user_data, tag):
    args = [sys.executable, REPO / "tests/peers/imds_server.py", "--host", IMDS_IP,
            "--port", "80", "--instance-id", instance_id, "--region", REGION,
            "--availability-zone", REGION + "a", "--account-id", ACCOUNT]
    if user_data is None:
        args.append("--no-user-data")
    else:
        ud = work / ("user-data-" + tag)
        ud.write_text(user_data)
        args += ["--user-data-file", ud]
    p = Proc("imds-" + tag, args, work / ("imds-%s.log" % tag))
    wait_http("http://%s/" % IMDS_IP)
    return p


def front_call(path, body=None):
    req = urllib.request.Request("http://%s:%d%s" % (IMDS_IP, FRONT_PORT, path),
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def run_mode(mode, gold, moto, procs):
    import moto_auth
    work = OUT / mode
    work.mkdir(parents=True, exist_ok=True)
    stage("%s: golden disks" % mode)
    for n in ("root.img", "data.img", "vmlinuz", "initrd.img"):
        run(["cp", "--sparse=always", gold / n, work / n])
    golden_id = moto_auth.create_moto_instance(moto, region=REGION)
    clone_id = moto_auth.create_moto_instance(moto, region=REGION)
    imds = start_imds(work, moto, golden_id, USER_DATA[mode], "golden")
    procs.append(imds)
    copies = {"root": str(work / "copy-root.img"), "data": str(work / "copy-data.img")}
    front_call("/_front/vm", {"qmp": str(work / "golden.front.qmp"), "copies": copies})

    stage("%s: boot the golden VM (%s), first boot images it" % (mode, golden_id))
    vm = Vm("golden", work, {"root": work / "root.img", "data": work / "data.img"},
            "ec2e2e00-0000-4000-8000-00000000000%d" % (1 if mode == "no-reboot" else 2))
    procs.append(vm)
    pre = vm.wait_console(r"E2E-PRE-IMAGE (.*)\r?\n", 1200)
    before = report(pre)
    stage("%s: golden VM booted, pre-image hooks ran: %s" % (mode, before))
    if mode == "reboot":
        vm.wait_console(r"reboot: Power down|Power down", 600, pre.end())
        stage("%s: golden VM shut down by the front (ACPI)" % mode)
    post = vm.wait_console(r"E2E-POST-IMAGE (ami-\S+)", 900, pre.end())
    image_id = post.group(1)
    stage("%s: run finished, %s available" % (mode, image_id))
    rep = report(vm.wait_console(REPORT, 300, post.end()))
    stage("%s: golden after the run: %s" % (mode, rep))
    events = front_call("/_front/status")["events"]
    deadline = time.monotonic() + 600
    while not any(e["what"] == "copies-done" for e in events[-3:]):
        if any(e["what"] == "copies-failed" for e in events) or time.monotonic() > deadline:
            raise Fail("the front's copies: %s" % events)
        time.sleep(1)
        events = front_call("/_front/status")["events"]
    (work / "front-events.json").write_text(json.dumps(events, indent=1))
    # drive-backup writes every block, zeros too: keep the kept copies sparse.
    for c in copies.values():
        run(["fallocate", "--dig-holes", c])
    # The front serves every mode: this mode's events are those since its VM was set.
    events = events[max(i for i, e in enumerate(events) if e["what"] == "vm"):]
    creates = [e for e in events if e["what"] == "create-image"]
    check(len(creates) == 1 and creates[0]["no_reboot"] == (mode == "no-reboot"),
          "one CreateImage with NoReboot=%s" % (mode == "no-reboot"))
    if mode == "reboot":
        check(before.get("boot") != rep.get("boot"), "the golden VM really rebooted (boot ids "
              "%s, %s) and the run resumed after the boot" % (before.get("boot"), rep.get("boot")))
    else:
        check(before.get("boot") == rep.get("boot"), "the golden VM did not reboot")
    check(rep.get("system") == "running", "golden systemd state: %s (failed units: %s)"
          % (rep.get("system"), rep.get("failed")))
    check(rep.get("daemon") == "active", "golden ec2-imaged.service active")
    check(rep.get("cycles") == "0", "no ordering cycle in the golden's boot")
    check(before.get("ds") == "aws", "cloud-init used the Ec2 datasource (cloud-id %s before "
          "the run)" % before.get("ds"))
    check(rep.get("cloudinit") == "done", "cloud-init status after the run: %s"
          % rep.get("cloudinit"))
    # runcmd's `trigger --wait` runs inside cloud-init; the directive's run waits for its end.
    check(before.get("cloudinit") == ("running" if mode == "no-reboot" else "done"),
          "cloud-init status when the pre-image hooks ran: %s" % before.get("cloudinit"))
    check(rep.get("ciid") == golden_id, "golden's cloud-init state names the golden instance "
          "after the run: %s" % rep.get("ciid"))
    check(rep.get("timer") == "disabled", "run timer shipped disabled")
    check(rep.get("data") == "xfs", "golden /data is xfs and mounted")
    check(re.fullmatch(r"[0-9a-f]{32}", rep.get("machine-id", "")) is not None,
          "golden machine-id is valid after the run")
    check(bool(rep.get("hostkey")), "golden has host keys after the run")
    if mode == "no-reboot":
        check(before.get("machine-id") == rep.get("machine-id")
              and before.get("hostkey") == rep.get("hostkey"),
              "golden kept its identity (machine-id and host key restored after the thaw)")

    ec2 = moto_auth.client(moto, "ec2", region=REGION)
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in img.get("Tags", [])}
    check(img["State"] == "available" and tags.get("ec2-imaged:source-instance") == golden_id,
          "image %s available, tagged with its source %s" % (image_id, golden_id))
    cons = tags.get("ec2-imaged:consistency")
    check(cons == ("fs-frozen" if mode == "no-reboot" else "rebooted"),
          "image consistency tag %s" % cons)

    check_copies(copies["root"], copies["data"], mode, golden_id)

    stage("%s: shut the golden VM down" % mode)
    vm.shutdown()
    procs.remove(vm)
    imds.stop()
    procs.remove(imds)

    stage("%s: boot a VM launched from the image (%s)" % (mode, clone_id))
    imds = start_imds(work, moto, clone_id, None, "clone")
    procs.append(imds)
    front_call("/_front/vm", {"qmp": str(work / "clone.front.qmp"), "copies": {}})
    clone = Vm("clone", work, {"root": copies["root"], "data": copies["data"]},
               "ec2e2e00-0000-4000-8000-00000000010%d" % (1 if mode == "no-reboot" else 2))
    procs.append(clone)
    crep = report(clone.wait_console(REPORT, 900))
    stage("%s: clone booted: %s" % (mode, crep))
    check(crep.get("system") == "running", "clone systemd state: %s (failed units: %s)"
          % (crep.get("system"), crep.get("failed")))
    check(crep.get("daemon") == "active", "clone ec2-imaged.service active")
    check(crep.get("cycles") == "0", "no ordering cycle in the clone's boot")
    check(crep.get("ds") == "aws", "clone: cloud-init used the Ec2 datasource")
    check(re.fullmatch(r"[0-9a-f]{32}", crep.get("machine-id", "")) is not None
          and crep["machine-id"] != rep.get("machine-id"),
          "clone machine-id %s differs from the golden's" % crep.get("machine-id"))
    check(bool(crep.get("hostkey")) and crep["hostkey"] != rep.get("hostkey"),
          "clone host key differs from the golden's")
    check(crep.get("data") == "xfs", "clone /data (from the copied volume) mounted")
    clone.shutdown()
    procs.remove(clone)
    r = run(["xfs_repair", "-n", "-f", copies["data"]], capture_output=True, text=True,
            check=False)
    check(r.returncode == 0, "copied xfs volume clean after the clone mounted and unmounted it "
          "(xfs_repair -n): %s" % (r.stderr.strip().splitlines()[-3:]))
    fl = re.search(r"^Filesystem features:\s*(.*)$", out(["dumpe2fs", "-h", copies["root"]]),
                   re.M).group(1)
    check("needs_recovery" not in fl.split(), "copied ext4 root clean after the clone's shutdown")
    imds.stop()
    procs.remove(imds)


# ---------------------------------------------------------------- inside the namespace


def inner(args):
    from peers import find_moto_python, start_moto
    modes = args.modes.split(",")
    run(["ip", "link", "set", "lo", "up"])
    run(["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"])
    run(["ip", "addr", "add", IMDS_IP + "/16", "dev", "tap0"])
    run(["ip", "link", "set", "tap0", "up"])
    procs = []
    ok = False
    try:
        gold = OUT / "golden"
        gold.mkdir(parents=True, exist_ok=True)
        stage("golden disks with %s" % args.deb)
        build_golden(Path(args.deb), gold)
        stage("peers: moto, the EC2 front, IMDS on %s" % IMDS_IP)
        py = find_moto_python()
        if py is None:
            raise Fail("no python3 with moto[server] (see README)")
        moto = start_moto(py, OUT / "moto.log")
        procs.append(moto)
        # EC2 answers DHCP: cloud-init's Ec2Local datasource asks it for an ephemeral lease.
        dhcp = Proc("dnsmasq", ["dnsmasq", "--keep-in-foreground", "--log-facility=-",
                                "--no-resolv", "--no-hosts", "--port=0", "--user=root",
                                "--interface=tap0", "--bind-interfaces", "--log-dhcp",
                                "--dhcp-range=%s,%s,255.255.0.0,1h" % (GUEST_IP, GUEST_IP),
                                "--dhcp-leasefile=%s" % (OUT / "dnsmasq.leases"),
                                "--pid-file="], OUT / "dnsmasq.log")
        procs.append(dhcp)
        front = Proc("front", [sys.executable, HERE / "ec2_front.py", "--host", IMDS_IP,
                               "--port", FRONT_PORT, "--upstream", moto.url],
                     OUT / "front.log")
        procs.append(front)
        wait_http("http://%s:%d/_front/status" % (IMDS_IP, FRONT_PORT))
        for mode in modes:
            before = len(FAILURES)
            try:
                run_mode(mode, gold, moto.url, procs)
            except Fail as e:
                FAILURES.append("%s: %s" % (mode, e))
                print("    FAIL: %s" % e, flush=True)
                for p in [p for p in procs if isinstance(p, Vm) or p.name.startswith("imds")]:
                    (p.kill if isinstance(p, Vm) else p.stop)()
                    procs.remove(p)
            stage("%s: %s" % (mode, "passed" if len(FAILURES) == before else "FAILED"))
        ok = not FAILURES
        if FAILURES:
            print("E2E FAILED checks:\n  " + "\n  ".join(FAILURES), flush=True)
    finally:
        for p in reversed(procs):
            (p.kill if isinstance(p, Vm) else p.stop)()
    if ok and not args.keep:
        for img in OUT.rglob("*.img"):
            img.unlink()
    return 0 if ok else 1


DEPS = ("qemu-system-x86", "mmdebstrap", "dnsmasq-base", "iproute2", "e2fsprogs", "xfsprogs",
        "python3-botocore")


def install_deps():
    """The Debian packages the test needs, installed when missing."""
    run([str(REPO / "packaging" / "install-debs.sh")] + list(DEPS))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--deb", help="the package (default: build/ec2-imaged_VERSION_ARCH.deb)")
    p.add_argument("--modes", default="no-reboot,reboot")
    p.add_argument("--keep", action="store_true", help="keep the disk images after a pass")
    args = p.parse_args()
    if args.inner:
        # SIGTERM from the outer process: unwind, so that every VM and peer is stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            return inner(args)
        except Fail as e:
            print("E2E FAILED: %s" % e, flush=True)
            print("kept for inspection: %s" % OUT, flush=True)
            return 1
    # SIGTERM (make, CI) unwinds like ^C: the inner process is stopped, the namespace removed.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.geteuid() != 0:
        print("e2e: needs root (network namespace, tap device, chroot)", file=sys.stderr)
        return 2
    install_deps()
    if not args.deb:
        version = re.search(r"^VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(),
                            re.M).group(1)
        arch = out(["dpkg", "--print-architecture"]).strip()
        args.deb = str(REPO / "build" / ("ec2-imaged_%s_%s.deb" % (version, arch)))
    if not Path(args.deb).exists():
        print("e2e: %s missing (make deb)" % args.deb, file=sys.stderr)
        return 2
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    # The base system comes from Debian's archive: made (or found in the cache) out here, since
    # nothing in the namespace reaches any network.
    stage("base image: %s" % image.base_tarball(OUT / "mmdebstrap.log"))
    ns = "ec2i-e2e-%d" % os.getpid()
    run(["ip", "netns", "add", ns])
    child = None
    try:
        cmd = ["ip", "netns", "exec", ns, sys.executable, __file__, "--inner", "--deb", args.deb,
               "--modes", args.modes] + (["--keep"] if args.keep else [])
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        rc = child.wait()
    except KeyboardInterrupt:
        rc = 130
    finally:
        if child is not None and child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
        run(["ip", "netns", "del", ns], check=False)
    stage("e2e %s" % ("passed" if rc == 0 else "FAILED (logs and images in %s)" % OUT))
    return rc


if __name__ == "__main__":
    sys.exit(main())
