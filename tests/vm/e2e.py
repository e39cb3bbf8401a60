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
marker is in the copy; the sanitized items are absent from it, and so is the file that
e2e-tmp.service put in the host's /tmp and /var/tmp before the run; the golden VM is healthy
(systemd running, daemon active, the run succeeded, its status says so); every API call it made
carried its own IMDS credentials (the front records who calls, by access key id). On the
no-reboot golden the kill scenario follows its run (tests/vm/guest/usr/local/sbin/e2e-kill):
ec2-imaged.service is killed by SIGKILL between pre-freeze and post-thaw, the restore timer puts
the identity back byte for byte from the stash that outlived the service, and the restarted
service resumes the run and undoes its pre-freeze.

The VM "launched from the image" (another instance id, its own IMDS credentials) must boot with a
machine-id and host keys of its own, file the golden's run as inherited and change nothing in AWS.
In no-reboot mode it is the boot check's ([boot_check] enable = yes, written into the mode's root
disk): the run's RunInstances of its image makes the front boot it from copies of the copies, in
a network namespace of its own (tests/vm/clones.py), and the checks are that its ec2-imaged
reported `ok` by tagging its own instance under its own key (its one mutating call), that the run
published (SSM parameter, launch template) only after that report, and that the clone is gone:
TerminateInstances, its qemu exited, moto's instance terminated. After the kill scenario, the
broken-image case: a second run whose pre-image hook puts a unit that fails into the image
(tests/vm/guest/usr/local/sbin/e2e-broken) must fail with the clone's reason naming that unit,
its clone terminated, nothing of it published and the image tagged ec2-imaged:boot-check=failed.
In reboot mode the clone boots from the copies after the run. E2E_MODES (or --modes) picks the
modes.

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
from vm import Fail, Proc, Vm, wait_http  # noqa: E402

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


FAILURES = []


def check(cond, what):
    """Record one check: a failed one is reported and the test goes on, so that one run shows
    every check; the run fails at the end."""
    if not cond:
        FAILURES.append(what)
        print("    FAIL: %s" % what, flush=True)
    else:
        print("    ok: %s" % what, flush=True)


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


def check_copies(root, data, mode, golden, run_id):
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
    # Made by e2e-tmp.service before the run, outside ec2-imaged.service: sanitize's tmp-files
    # must have removed it from the host's /tmp and /var/tmp, the ones that go into the image.
    for d in ("/tmp", "/var/tmp"):
        check("e2e-host-tmp" not in debugfs_ls(root, d),
              "the host's %s/e2e-host-tmp is not in the copy" % d)
    # What a clone inherits: the golden's run, saved unfinished before CreateImage.
    try:
        cur = json.loads(debugfs_cat(root, "/var/lib/ec2-imaged/state.json"))["current"] or {}
    except ValueError:
        cur = {}
    check(cur.get("run_id") == run_id and cur.get("instance_id") == golden
          and cur.get("phase") not in (None, "done", "failed"),
          "the copy's state.json holds the golden's unfinished run %s (phase %s, instance %s)"
          % (cur.get("run_id"), cur.get("phase"), cur.get("instance_id")))


# ---------------------------------------------------------------- the boot check (no-reboot)

# The no-reboot golden's run checks its image by booting it (tests/vm/clones.py) and publishes
# it only then: to an SSM parameter and a launch template of moto's.
SSM_PARAMETER = "/e2e/golden-image"
LAUNCH_TEMPLATE = "e2e-golden"
BOOT_CHECK_CONF = ("# e2e: the boot check and what the run publishes after it (tests/vm/e2e.py).\n"
                   "[boot_check]\nenable = yes\nrequire_units = ssh.service\n"
                   "timeout_s = 1800\non_failure = keep\n\n[distribute]\n"
                   "ssm_parameter = %s\nlaunch_template = %s\n" % (SSM_PARAMETER, LAUNCH_TEMPLATE))
CLONE_TAP = "tap1"
CLONE_NETNS = [None]  # its name, set by inner()
PUBLISH = ("PutParameter", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate")


def add_boot_check_conf(work, root):
    """The boot check's configuration into ROOT (ext4, not mounted: debugfs), in conf.d."""
    conf = work / "60-e2e-boot-check.conf"
    conf.write_text(BOOT_CHECK_CONF)
    os.chmod(conf, 0o644)
    run(["debugfs", "-w", "-R", "write %s /etc/ec2-imaged/conf.d/60-e2e-boot-check.conf" % conf,
         root], capture_output=True)
    check(debugfs_cat(root, "/etc/ec2-imaged/conf.d/60-e2e-boot-check.conf") == BOOT_CHECK_CONF,
          "the boot check's configuration is in the no-reboot golden's root disk")


def moto_launch_template(moto):
    import moto_auth
    ec2 = moto_auth.client(moto, "ec2", region=REGION)
    ec2.create_launch_template(LaunchTemplateName=LAUNCH_TEMPLATE, LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})


def published(moto):
    """The image ids moto holds in the SSM parameter and the launch template's default."""
    import moto_auth
    ssm = moto_auth.client(moto, "ssm", region=REGION)
    ec2 = moto_auth.client(moto, "ec2", region=REGION)
    try:
        param = ssm.get_parameter(Name=SSM_PARAMETER)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        param = None
    lt = ec2.describe_launch_template_versions(LaunchTemplateName=LAUNCH_TEMPLATE,
                                               Versions=["$Default"])
    return param, lt["LaunchTemplateVersions"][0]["LaunchTemplateData"].get("ImageId")


def instance_state(moto, instance_id):
    import moto_auth
    ec2 = moto_auth.client(moto, "ec2", region=REGION)
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return inst["State"]["Name"], {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def wait_event(what, timeout, **match):
    """The first event of the front named WHAT whose fields match MATCH."""
    deadline = time.monotonic() + timeout
    while True:
        for e in front_status()["events"]:
            if e["what"] == what and all(e.get(k) == v for k, v in match.items()):
                return e
        if time.monotonic() > deadline:
            raise Fail("no %s %s event of the front within %d s" % (what, match, timeout))
        time.sleep(1)


def check_clone_gone(moto, started, verdict):
    """The boot check's clone STARTED (the front's event) was terminated: the golden's
    TerminateInstances of it, its VM gone, moto's instance terminated, its report tag in moto."""
    iid = started["instance"]
    exited = wait_event("clone-exited", 300, instance=iid)
    calls = front_status()["calls"]
    terms = [c for c in calls if c["action"] == "TerminateInstances" and not c["dry_run"]
             and iid in c.get("instances", []) and c["net"] == "golden"]
    alive = Path("/proc/%d" % started["pid"]).exists()
    state, tags = instance_state(moto, iid)
    check(terms and not alive and state == "terminated",
          "the clone %s was terminated: TerminateInstances by the golden (%d), its VM gone (%s, "
          "by %s), moto says %s" % (iid, len(terms), "alive" if alive else "exited",
                                    exited.get("by"), state))
    check(tags.get("ec2-imaged:boot-check-result", "").startswith(verdict),
          "moto holds the clone's report on its instance: %r (wanted %s...)"
          % (tags.get("ec2-imaged:boot-check-result"), verdict))
    return calls


def check_report_then_publish(calls, started):
    """The clone STARTED reported ok, under its own key, before the golden's first publishing
    call. Apart, so that it can be run on a record (front-calls.json) put out of order."""
    tags = [i for i, c in enumerate(calls) if c["action"] == "CreateTags" and c["net"] == "clone"
            and c.get("resources") == [started["instance"]] and c["akid"] == started["akid"]
            and c["tags"] == {"ec2-imaged:boot-check-result": "ok"} and c["status"] == 200]
    check(len(tags) == 1, "the clone reported ok: CreateTags of ec2-imaged:boot-check-result=ok "
          "on its own instance %s, signed with its key %s (%d such calls)"
          % (started["instance"], started["akid"], len(tags)))
    pubs = [i for i, c in enumerate(calls) if c["action"] in PUBLISH and c["net"] == "golden"
            and not c["dry_run"] and c["status"] == 200]
    check(tags and pubs and min(pubs) > tags[0],
          "the run published only after the clone's report: %s at call %s, the report at %s"
          % ("/".join(sorted({calls[i]["action"] for i in pubs})) or "nothing", pubs,
             tags[:1]))


def check_boot_check(work, moto, image_id, rep):
    """The run's boot check of IMAGE_ID, the first run of the no-reboot golden: a clone booted
    from it reported ok by tagging itself, the run published only after that, the clone is
    gone. Its report and calls are kept for check_inherited()."""
    stage("no-reboot: the boot check's clone of %s" % image_id)
    started = wait_event("clone-started", 60, image=image_id)
    clone = Path(work / (started["name"] + ".serial.log"))
    calls = check_clone_gone(moto, started, "ok")
    mine = [c for c in calls if c["net"] == "clone" and c["vm"] == started["name"]]
    (work / "front-calls.json").write_text(json.dumps(calls, indent=1))
    check_report_then_publish(calls, started)
    param, lt = published(moto)
    check(param == image_id and lt == image_id, "published: SSM parameter %s = %s, launch "
          "template %s default = %s (the image %s)" % (SSM_PARAMETER, param, LAUNCH_TEMPLATE,
                                                       lt, image_id))
    console = clone.read_text(errors="replace")
    m = re.search(r"E2E-STATUS (\{.*\})\r?\n", console)
    crep = re.search(REPORT, console)
    if not m or not crep:
        raise Fail("the clone's report is not on its console (%s)" % clone)
    (work / "clone-calls.json").write_text(json.dumps(mine, indent=1))
    (work / "clone-status.json").write_text(m.group(1))
    Path(work / "clone.serial.log").write_text(console)
    check_clone_report(report(crep), rep)
    check_clone_disks(started["disks"])
    return started


def check_broken(vm, moto, after, good_image):
    """The broken-image case (tests/vm/guest/usr/local/sbin/e2e-broken), after the kill
    scenario: the run fails with the clone's reason, its clone is terminated, nothing of the
    image is published and the image is tagged as failed."""
    stage("no-reboot: broken-image case: a second run whose image has a failing unit")
    run_m = vm.wait_console(r"E2E-BROKEN-RUN (\{.*\})\r?\n", 2400, after)
    res = report(vm.wait_console(r"E2E-BROKEN (.*)\r?\n", 300, run_m.end()))
    last = json.loads(run_m.group(1))
    image_id = last.get("image_id")
    err = last.get("error") or last.get("message") or ""
    check(res.get("rc") not in (None, "0") and last.get("result") == "failed"
          and "boot check" in err and "e2e-broken.service failed" in err,
          "the run failed (exit %s) with the clone's reason naming the failed unit: %s %r"
          % (res.get("rc"), last.get("result"), err))
    check(res.get("unit") == "absent" and res.get("daemon") == "active",
          "the golden does not keep the failing unit (%s), its daemon is %s"
          % (res.get("unit"), res.get("daemon")))
    if not image_id:
        raise Fail("the broken run names no image: %s" % last)
    started = wait_event("clone-started", 60, image=image_id)
    calls = check_clone_gone(moto, started, "failed:")
    since = min(i for i, c in enumerate(calls) if c["action"] == "RunInstances"
                and c.get("image") == image_id)
    pubs = ["%s %s" % (c["action"], c.get("attribute") or "") for c in calls[since:]
            if not c["dry_run"] and c["action"] in PUBLISH + ("ModifyImageAttribute",)]
    param, lt = published(moto)
    check(not pubs and param == good_image and lt == good_image,
          "nothing of %s was published (calls after its RunInstances: %s); SSM parameter %s and "
          "the launch template's default %s still the first image %s"
          % (image_id, ", ".join(pubs) or "none", param, lt, good_image))
    import moto_auth
    img = moto_auth.client(moto, "ec2", region=REGION).describe_images(
        ImageIds=[image_id])["Images"][0]
    tag = {t["Key"]: t["Value"] for t in img.get("Tags", [])}.get("ec2-imaged:boot-check")
    check(tag == "failed", "the image %s is tagged ec2-imaged:boot-check=%s" % (image_id, tag))


# ---------------------------------------------------------------- one mode


USER_DATA = {
    "no-reboot": "#cloud-config\n# e2e: image at the end of the first boot (README).\n"
                 "runcmd:\n  - [ec2-imaged, trigger, --wait]\n",
    "reboot": "#!/bin/sh\n# e2e: the daemon's own first-boot directive.\n"
              "#ec2-imaged: run=first-boot mode=reboot\necho first boot of $(hostname)\n",
}


def access_key_id(tag, mode):
    """The access key id the IMDS of one VM hands out: the front tells the callers apart by it."""
    return ("ASIAE2E%s%s" % (tag.upper(), "NR" if mode == "no-reboot" else "RB")).ljust(20, "0")


def start_imds(work, moto_url, instance_id, user_data, tag, akid):
    args = [sys.executable, REPO / "tests/peers/imds_server.py", "--host", IMDS_IP,
            "--port", "80", "--instance-id", instance_id, "--region", REGION,
            "--availability-zone", REGION + "a", "--account-id", ACCOUNT,
            "--access-key-id", akid]
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


def front_status():
    return front_call("/_front/status")


def wait_copies(work, copies):
    """Until the front's copies of this mode are complete; the front's events of this mode."""
    deadline = time.monotonic() + 600
    while True:
        events = front_status()["events"]
        # The front serves every mode: this mode's events are those since its VM was set.
        events = events[max(i for i, e in enumerate(events) if e["what"] == "vm"):]
        if any(e["what"] == "copies-done" for e in events):
            break
        if any(e["what"] == "copies-failed" for e in events) or time.monotonic() > deadline:
            raise Fail("the front's copies: %s" % events)
        time.sleep(1)
    (work / "front-events.json").write_text(json.dumps(events, indent=1))
    # drive-backup writes every block, zeros too: keep the kept copies sparse.
    for c in copies.values():
        run(["fallocate", "--dig-holes", c])
    return events


def status_of(vm, after, timeout=300):
    """The `ec2-imaged status --json` that e2e-report printed after offset AFTER."""
    return json.loads(vm.wait_console(r"E2E-STATUS (\{.*\})\r?\n", timeout, after).group(1))


def check_golden(mode, before, rep, status, image_id, golden_id):
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
    # Hooks run in the host's mount namespace: they see the host's /tmp (e2e-tmp.service).
    check(before.get("tmp") == "yes", "the pre-image hook sees the files e2e-tmp.service put "
          "in the host's /tmp and /var/tmp: %s" % before.get("tmp"))
    last = (status.get("history") or [{}])[0]
    check(status.get("current") is None and last.get("run_id") == before.get("run")
          and last.get("result") == "success" and last.get("image_id") == image_id,
          "golden's status: run %s %s, image %s" % (last.get("run_id"), last.get("result"),
                                                    last.get("image_id")))


def check_image(moto, mode, image_id, golden_id):
    import moto_auth
    ec2 = moto_auth.client(moto, "ec2", region=REGION)
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in img.get("Tags", [])}
    check(img["State"] == "available" and tags.get("ec2-imaged:source-instance") == golden_id,
          "image %s available, tagged with its source %s" % (image_id, golden_id))
    cons = tags.get("ec2-imaged:consistency")
    check(cons == ("fs-frozen" if mode == "no-reboot" else "rebooted"),
          "image consistency tag %s" % cons)


def check_kill(vm, after):
    """The kill scenario of the golden VM (tests/vm/guest/usr/local/sbin/e2e-kill)."""
    stage("no-reboot: kill scenario: ec2-imaged.service killed between pre-freeze and "
          "post-thaw, the restore timer, then a resume")
    killed = report(vm.wait_console(r"E2E-KILL killed (.*)\r?\n", 900, after))
    done = vm.wait_console(r"E2E-KILL-DONE (.*)\r?\n", 900, after)
    res = report(done)
    for m in re.finditer(r"E2E-KILL(-DIFF)? (.*)\r?\n", vm.console()[after:done.end()]):
        print("    guest: %s" % m.group(0).strip(), flush=True)
    check(killed.get("stash-blocked") == "tmpfs" and killed.get("keys-blocked") == "0",
          "pre-freeze stashed the identity on a tmpfs the host sees (%s) and removed the host "
          "keys (%s left)" % (killed.get("stash-blocked"), killed.get("keys-blocked")))
    check(killed.get("service") in ("failed", "inactive")
          and killed.get("stash-killed") == "tmpfs",
          "after SIGKILL of the service (%s) the stash is still there (%s)"
          % (killed.get("service"), killed.get("stash-killed")))
    check(res.get("timer-same") == "yes" and int(res.get("restore-lines", "0")) > 0,
          "the restore timer put the identity back byte for byte (host keys, machine-id, "
          "cloud-init state; %s items restored by ec2-imaged-restore-identity)"
          % res.get("restore-lines"))
    check(res.get("resumed-result") == "failed" and res.get("resumed-same") == "yes"
          and res.get("stash") == "none" and res.get("daemon") == "active",
          "restarted, the service resumed the run, which failed in pre-freeze as asked and "
          "undid it: identity unchanged (%s), stash %s, daemon %s, run %s"
          % (res.get("resumed-same"), res.get("stash"), res.get("daemon"),
             res.get("resumed-result")))


def check_calls(calls, who, akid, images):
    """The golden's calls reached the front under its own key, its IMAGES CreateImage calls
    among them: the record the clone's checks rely on works."""
    mine = [c for c in calls if c["vm"] == who]
    check(mine and all(c["akid"] == akid and c["net"] == "golden" for c in mine),
          "every API call while the %s VM ran was signed with its IMDS credentials (%s): %d "
          "calls" % (who, akid, len(mine)))
    creates = [c for c in mine if c["action"] == "CreateImage" and not c["dry_run"]]
    check(len(creates) == images, "the front recorded the %s VM's %d CreateImage (wanted %d)"
          % (who, len(creates), images))


def boot_golden(mode, work, golden_id, procs):
    stage("%s: boot the golden VM (%s), first boot images it" % (mode, golden_id))
    # The kill scenario and then the broken-image case run on the no-reboot golden, after its
    # run (90-e2e-report).
    vm = Vm("golden", work, {"root": work / "root.img", "data": work / "data.img"},
            "ec2e2e00-0000-4000-8000-00000000000%d" % (1 if mode == "no-reboot" else 2),
            cmdline="e2e.kill=1 e2e.broken=1" if mode == "no-reboot" else "")
    procs.append(vm)
    pre = vm.wait_console(r"E2E-PRE-IMAGE (.*)\r?\n", 1200)
    before = report(pre)
    stage("%s: golden VM booted, pre-image hooks ran: %s" % (mode, before))
    if mode == "reboot":
        vm.wait_console(r"reboot: Power down|Power down", 600, pre.end())
        stage("%s: golden VM shut down by the front (ACPI)" % mode)
    # The boot check (no-reboot) boots a clone before the run ends.
    post = vm.wait_console(r"E2E-POST-IMAGE (ami-\S+)", 2400, pre.end())
    stage("%s: run finished, %s available" % (mode, post.group(1)))
    status = status_of(vm, post.end())
    rep = report(vm.wait_console(REPORT, 300, post.end()))
    stage("%s: golden after the run: %s" % (mode, rep))
    return vm, before, post, rep, status


def run_mode(mode, gold, moto, procs):
    import moto_auth
    work = OUT / mode
    work.mkdir(parents=True, exist_ok=True)
    stage("%s: golden disks" % mode)
    for n in ("root.img", "data.img", "vmlinuz", "initrd.img"):
        run(["cp", "--sparse=always", gold / n, work / n])
    boot_check = mode == "no-reboot"
    if boot_check:
        add_boot_check_conf(work, work / "root.img")
        moto_launch_template(moto)
    golden_id = moto_auth.create_moto_instance(moto, region=REGION)
    keys = {t: access_key_id(t, mode) for t in ("golden", "clone")}
    imds = start_imds(work, moto, golden_id, USER_DATA[mode], "golden", keys["golden"])
    procs.append(imds)
    copies = {"root": str(work / "copy-root.img"), "data": str(work / "copy-data.img")}
    clone = {"dir": str(work), "netns": CLONE_NETNS[0], "tap": CLONE_TAP, "mem": 768,
             "region": REGION, "account": ACCOUNT}
    front_call("/_front/vm", {"name": "golden-" + mode, "qmp": str(work / "golden.front.qmp"),
                              "copies": copies, **({"clone": clone} if boot_check else {})})

    vm, before, post, rep, status = boot_golden(mode, work, golden_id, procs)
    image_id = post.group(1)
    events = wait_copies(work, copies)
    creates = [e for e in events if e["what"] == "create-image"]
    check(len(creates) == 1 and creates[0]["no_reboot"] == (mode == "no-reboot"),
          "one CreateImage with NoReboot=%s" % (mode == "no-reboot"))
    check_golden(mode, before, rep, status, image_id, golden_id)
    check_image(moto, mode, image_id, golden_id)
    check_copies(copies["root"], copies["data"], mode, golden_id, before.get("run"))
    if boot_check:
        # The clone launched from the image by the boot check is the VM launched from the
        # image: its checks are those of the clone booted after the run in reboot mode.
        started = check_boot_check(work, moto, image_id, rep)
        check_kill(vm, post.end())
        check_broken(vm, moto, post.end(), image_id)
    check_calls(front_status()["calls"], "golden-" + mode, keys["golden"],
                2 if boot_check else 1)

    stage("%s: shut the golden VM down" % mode)
    vm.shutdown()
    procs.remove(vm)
    imds.stop()
    procs.remove(imds)
    if boot_check:
        check_inherited(work, started["akid"], before.get("run"), started["instance"])
    else:
        clone_id = moto_auth.create_moto_instance(moto, region=REGION)
        boot_clone(mode, work, moto, clone_id, keys["clone"], copies, rep, procs)
        check_inherited(work, keys["clone"], before.get("run"))


def boot_check_report_call(c, instance_id):
    """The one mutating call a boot check's clone makes: its report, a tag on itself."""
    return (instance_id is not None and c["action"] == "CreateTags" and not c["dry_run"]
            and c.get("resources") == [instance_id]
            and list(c.get("tags", {})) == ["ec2-imaged:boot-check-result"])


def check_inherited(work, akid, golden_run, instance_id=None):
    """A run belongs to the instance that started it (issue 11, finding 1). The clone's disk
    holds the golden's unfinished run (check_copies): the clone files it in its history as
    `inherited` and resumes nothing of it: no EC2/KMS/SSM call that changes anything (anything
    but Describe*, Get*, List*, DryRun included), no hook. The boot check's clone (INSTANCE_ID)
    makes one, its report: CreateTags of ec2-imaged:boot-check-result on itself."""
    calls = json.loads((work / "clone-calls.json").read_text())
    status = json.loads((work / "clone-status.json").read_text())
    console = (work / "clone.serial.log").read_text(errors="replace")
    mutating = ["%s %s%s" % (c["service"], c["action"] or "?", " (DryRun)" if c["dry_run"] else "")
                for c in calls if not re.match(r"(Describe|Get|List)", c["action"] or "")
                and not boot_check_report_call(c, instance_id)]
    check(not mutating, "the clone made no mutating AWS call%s (%d calls; other mutating: %s)"
          % (" but its report" if instance_id else "", len(calls), ", ".join(mutating) or "none"))
    # The boot check's clone makes one call at least (its report); the other may make none.
    check((calls or instance_id is None) and all(c["akid"] == akid for c in calls),
          "every call while the clone ran was signed with the clone's IMDS credentials (%d)"
          % len(calls))
    hooks = re.findall(r"E2E-(?:PRE|POST)-IMAGE[^\r\n]*", console)
    check(not hooks, "no hook ran on the clone: %s" % (hooks or "none"))
    inherited = [h for h in status.get("history") or [] if h.get("run_id") == golden_run]
    check(status.get("current") is None and len(inherited) == 1
          and inherited[0].get("result") == "inherited",
          "the clone's status files the golden's run %s as inherited: current %s, %s"
          % (golden_run, status.get("current"), inherited))


def boot_clone(mode, work, moto, clone_id, akid, copies, rep, procs):
    stage("%s: boot a VM launched from the image (%s)" % (mode, clone_id))
    imds = start_imds(work, moto, clone_id, None, "clone", akid)
    procs.append(imds)
    front_call("/_front/vm", {"name": "clone-" + mode, "qmp": str(work / "clone.front.qmp"),
                              "copies": {}})
    clone = Vm("clone", work, {"root": copies["root"], "data": copies["data"]},
               "ec2e2e00-0000-4000-8000-00000000010%d" % (1 if mode == "no-reboot" else 2))
    procs.append(clone)
    cstatus = status_of(clone, 0, 900)  # printed just before the report, at the end of the boot
    crep = report(clone.wait_console(REPORT, 900))
    stage("%s: clone booted: %s" % (mode, crep))
    check_clone_report(crep, rep)
    calls = [c for c in front_status()["calls"] if c["vm"] == "clone-" + mode]
    (work / "clone-calls.json").write_text(json.dumps(calls, indent=1))
    (work / "clone-status.json").write_text(json.dumps(cstatus, indent=1))
    clone.shutdown()
    procs.remove(clone)
    check_clone_disks(copies)
    imds.stop()
    procs.remove(imds)


def check_clone_report(crep, rep):
    """A VM launched from the image (E2E-REPORT CREP), against the golden's (REP)."""
    stage("the VM launched from the image: %s" % crep)
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


def check_clone_disks(copies):
    """The clone's disks COPIES after it stopped."""
    r = run(["xfs_repair", "-n", "-f", copies["data"]], capture_output=True, text=True,
            check=False)
    check(r.returncode == 0, "copied xfs volume clean after the clone mounted and unmounted it "
          "(xfs_repair -n): %s" % (r.stderr.strip().splitlines()[-3:]))
    fl = re.search(r"^Filesystem features:\s*(.*)$", out(["dumpe2fs", "-h", copies["root"]]),
                   re.M).group(1)
    check("needs_recovery" not in fl.split(), "copied ext4 root clean after the clone's shutdown")


# ---------------------------------------------------------------- inside the namespace


def inner(args):
    from peers import find_moto_python, start_moto
    modes = args.modes.split(",")
    run(["ip", "link", "set", "lo", "up"])
    run(["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"])
    run(["ip", "addr", "add", IMDS_IP + "/16", "dev", "tap0"])
    run(["ip", "link", "set", "tap0", "up"])
    # The boot check's clones: a namespace of their own (tests/vm/clones.py says why).
    CLONE_NETNS[0] = cns = args.clone_netns
    run(["ip", "-n", cns, "link", "set", "lo", "up"])
    run(["ip", "-n", cns, "tuntap", "add", "dev", CLONE_TAP, "mode", "tap"])
    run(["ip", "-n", cns, "addr", "add", IMDS_IP + "/16", "dev", CLONE_TAP])
    run(["ip", "-n", cns, "link", "set", CLONE_TAP, "up"])
    procs = []
    ok = False
    try:
        gold = OUT / "golden"
        gold.mkdir(parents=True, exist_ok=True)
        stage("golden disks with %s" % args.deb)
        image.build_golden(Path(args.deb), gold, OUT / "dpkg-install.log",
                           image.guest_files(IMDS_IP, GUEST_IP, FRONT_PORT))
        stage("peers: moto, the EC2 front, IMDS on %s" % IMDS_IP)
        py = find_moto_python()
        if py is None:
            raise Fail("no python3 with moto[server] (see README)")
        moto = start_moto(py, OUT / "moto.log")
        procs.append(moto)
        # EC2 answers DHCP: cloud-init's Ec2Local datasource asks it for an ephemeral lease.
        for ns, tap in ((None, "tap0"), (cns, CLONE_TAP)):
            procs.append(Proc("dnsmasq-" + tap, (["ip", "netns", "exec", ns] if ns else []) + [
                "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--no-resolv",
                "--no-hosts", "--port=0", "--user=root", "--interface=" + tap,
                "--bind-interfaces", "--log-dhcp",
                "--dhcp-range=%s,%s,255.255.0.0,1h" % (GUEST_IP, GUEST_IP),
                "--dhcp-leasefile=%s" % (OUT / ("dnsmasq-%s.leases" % tap)), "--pid-file="],
                OUT / ("dnsmasq-%s.log" % tap)))
        front = Proc("front", [sys.executable, HERE / "ec2_front.py", "--host", IMDS_IP,
                               "--port", FRONT_PORT, "--upstream", moto.url,
                               "--clone-netns", cns], OUT / "front.log")
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
    p.add_argument("--modes", default=os.environ.get("E2E_MODES") or "no-reboot,reboot",
                   help="comma-separated (default: $E2E_MODES, else both)")
    p.add_argument("--clone-netns", help=argparse.SUPPRESS)
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
    cns = ns + "-clone"
    run(["ip", "netns", "add", ns])
    run(["ip", "netns", "add", cns])
    child = None
    try:
        cmd = ["ip", "netns", "exec", ns, sys.executable, __file__, "--inner", "--deb", args.deb,
               "--modes", args.modes, "--clone-netns", cns] + (["--keep"] if args.keep else [])
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        rc = child.wait()
    except KeyboardInterrupt:
        rc = 130
    finally:
        if child is not None and child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
        run(["ip", "netns", "del", ns], check=False)
        run(["ip", "netns", "del", cns], check=False)
    stage("e2e %s" % ("passed" if rc == 0 else "FAILED (logs and images in %s)" % OUT))
    return rc


if __name__ == "__main__":
    sys.exit(main())
