# SPDX-License-Identifier: Apache-2.0
"""The boot check ([boot_check] enable = yes) end to end, against moto behind the recording fault
proxy (the rig of test_distribute.py): after the image is available and before sharing and
publishing, one instance is launched from it (RunInstances with the run's tag, a ClientToken,
shutdown behaviour terminate, IMDSv2 only and the boot-check directive in its user-data), its
report is waited for, and it is terminated in every case.

moto runs no operating system: the test plays the clone, as its ec2-imaged would (see
run/bootcheck_report.c), by tagging the instance ec2-imaged:boot-check-result when RunInstances
has made it (ClonePlayer, talking to moto directly).  Covered: the success path (published after
the report), the failure path (the clone's reason fails the run, the image is tagged failed and,
with on_failure = deregister, deregistered; nothing shared or published), the timeout ("no
report within N s", the console output saved beside the state), and a crash between
RunInstances and the save of its answer (the instance found by its tag and terminated, one
instance ever).  Every run is `run --mode reboot` then `resume` against moto: nothing is frozen.
"""

import json
import subprocess

import pytest

from dist_rig import (BOOT_CHECK_TAG as TAG, MOTO_AMI, SHARE_ACCOUNT, ClonePlayer,
                      configure_boot_check, done_run, tags_of)
from iam_policy import (BOOT_CHECK_SIDS, FOR_MOTO_WIDEN, POLICY, TagBook,
                        check_requests_against_policy, for_moto)
from test_encrypt import crash_at, wait_for


def configure(rig, timeout_s=60, on_failure="keep", **dist):
    rig.configure(**dist)
    configure_boot_check(rig, timeout_s, on_failure)


def checked_instances(rig, run_id):
    """Every instance moto ever made for the run's boot check (terminated ones included)."""
    return [i for res in rig.ec2().describe_instances(Filters=[
        {"Name": "tag:" + TAG, "Values": [run_id]}])["Reservations"] for i in res["Instances"]]


def with_template(rig):
    rig.ec2().create_launch_template(LaunchTemplateName="web",
                                     LaunchTemplateData={"ImageId": MOTO_AMI})
    return dict(share_accounts=SHARE_ACCOUNT, launch_template="web", keep_newest=1,
                lineage="web")


def default_image(rig):
    [v] = rig.ec2().describe_launch_template_versions(LaunchTemplateName="web",
                                                      Versions=["$Default"])[
        "LaunchTemplateVersions"]
    return v["LaunchTemplateData"].get("ImageId")


def request_index(rig, action):
    return [i for i, q in enumerate(rig.proxy.requests())
            if q["action"] == action and q["params"].get("DryRun") != "true"]


def test_boot_check_passes_then_publishes(rig):
    configure(rig, **with_template(rig))
    with ClonePlayer(rig, "ok") as clone:
        j = done_run(rig.run_and_resume())
    run_id, image = j["run_id"], j["image_id"]
    assert j["boot_check"]["stage"] == "passed" and j["boot_check"]["terminated"], j
    [inst] = checked_instances(rig, run_id)
    assert inst["InstanceId"] == j["boot_check"]["instance_id"]
    assert inst["State"]["Name"] == "terminated" and inst["ImageId"] == image
    assert clone.user_data[inst["InstanceId"]] == "#!/bin/sh\n#ec2-imaged: boot-check=%s\n" % run_id
    [q] = rig.sent("RunInstances")
    p = q["params"]
    assert p["ImageId"] == image and p["InstanceType"] == "t3.micro"
    assert p["ClientToken"] == run_id + "-boot-check"
    assert p["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert p["MetadataOptions.HttpTokens"] == "required"
    assert p["TagSpecification.1.ResourceType"] == "instance"
    assert (p["TagSpecification.1.Tag.1.Key"], p["TagSpecification.1.Tag.1.Value"]) == (TAG, run_id)
    assert [q["params"]["InstanceId.1"] for q in rig.sent("TerminateInstances")] == \
        [inst["InstanceId"]]
    # Shared and published only after the report, and the image is the template's default.
    run_at = request_index(rig, "RunInstances")[0]
    tagged_at = [i for i in request_index(rig, "DescribeTags")][-1]
    assert all(i > tagged_at > run_at for i in request_index(rig, "ModifyImageAttribute") +
               request_index(rig, "CreateLaunchTemplateVersion"))
    assert default_image(rig) == image
    assert TAG not in tags_of(rig.ec2().describe_images(ImageIds=[image])["Images"][0])


@pytest.mark.parametrize("on_failure", ["keep", "deregister"])
def test_failed_report_fails_the_run_and_publishes_nothing(rig, on_failure):
    configure(rig, on_failure=on_failure, **with_template(rig))
    with ClonePlayer(rig, "failed:ssh.service failed; required ssh.service (failed)"):
        assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
        r = rig.agent("resume", "--json")
    assert r.returncode == 1, r.err
    j = json.loads(r.stdout_text)
    image = j["image_id"]
    assert j["phase"] == "failed" and j["boot_check"]["stage"] == "failed", j
    assert "boot check of %s failed: ssh.service failed" % image in j["error"], j["error"]
    [inst] = checked_instances(rig, j["run_id"])
    assert inst["State"]["Name"] == "terminated"
    # Nothing shared, published or retained; the template still launches the old image.
    for action in ("ModifyImageAttribute", "ModifySnapshotAttribute",
                   "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "PutParameter"):
        assert rig.sent(action) == [], action
    assert default_image(rig) == MOTO_AMI
    [q] = [q for q in rig.sent("CreateTags") if q["params"].get("ResourceId.1") == image and
           q["params"].get("Tag.1.Key") == TAG]
    assert q["params"]["Tag.1.Value"] == "failed"
    left = {im["ImageId"]: im for im in rig.images()}
    if on_failure == "keep":
        assert tags_of(left[image])[TAG] == "failed"
        assert rig.sent("DeregisterImage") == []
    else:
        assert image not in left
        assert [q["params"]["ImageId"] for q in rig.sent("DeregisterImage")] == [image]


def test_no_report_times_out_and_keeps_the_console(rig):
    configure(rig, timeout_s=10)
    with ClonePlayer(rig, None) as clone:
        assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
        r = rig.agent("resume", "--json")
    assert r.returncode == 1, r.err
    j = json.loads(r.stdout_text)
    assert "no report within 10 s" in j["error"], j["error"]
    [inst] = checked_instances(rig, j["run_id"])
    assert clone.seen == [inst["InstanceId"]]
    assert inst["State"]["Name"] == "terminated"
    [q] = rig.sent("GetConsoleOutput")
    assert q["params"]["InstanceId"] == inst["InstanceId"]
    console = rig.state_dir / ("boot-check-console-%s.txt" % j["run_id"])
    # moto answers GetConsoleOutput with a canned text: saved as decoded, byte for byte
    # (botocore decodes it too).
    out = rig.ec2().get_console_output(InstanceId=inst["InstanceId"])["Output"]
    assert out and console.read_text() == out
    assert (console.stat().st_mode & 0o777) == 0o600


def test_crash_between_run_instances_and_its_save(rig):
    """RunInstances held in the proxy, the agent killed, the request then let through to moto:
    the resumed run finds the instance by its tag, sends no second RunInstances, waits for its
    report and terminates it."""
    configure(rig)
    with ClonePlayer(rig, "ok"):
        assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
        st = crash_at(rig, "RunInstances")
        # Recorded before RunInstances was sent; its answer never saved.
        assert st["boot_check"]["stage"] == "launching", st
        assert "instance_id" not in st["boot_check"] or not st["boot_check"]["instance_id"]
        wait_for(lambda: checked_instances(rig, st["run_id"]), "the held RunInstances in moto")
        j = done_run(rig.agent("resume", "--json"))
    [inst] = checked_instances(rig, j["run_id"])
    assert j["boot_check"]["instance_id"] == inst["InstanceId"]
    assert inst["State"]["Name"] == "terminated"
    assert len(rig.sent("RunInstances")) == 1


def crash_unsent(rig, action):
    """`resume` killed while the proxy keeps `action`, which then never reaches moto (the
    proxy hangs up on it).  Returns the run state left behind."""
    rig.proxy.faults({"kind": "close", "action": action, "delay_ms": 60000})
    p = rig.start("resume", "--json")
    wait_for(lambda: p.poll() is not None or rig.sent(action), "never reached " + action)
    assert p.poll() is None, "the run ended before " + action
    p.kill()
    p.wait(timeout=60)
    return rig.state()["current"]


@pytest.mark.parametrize("stage,action", [("waiting", "DescribeTags"),
                                          ("passed", "TerminateInstances")])
def test_image_gone_on_resume_ends_the_run(rig, stage, action):
    """A run killed in the boot check (waiting for the report; passed, its instance not yet
    terminated) whose image is deregistered before the resume (by hand, by another tool): the
    resumed run terminates the instance, then ends failed, naming the image; nothing is
    shared, published or retained.  Nothing is shared: no grant step is there to notice."""
    dist = with_template(rig)
    del dist["share_accounts"]
    configure(rig, ssm_parameter="/golden/web", **dist)
    with ClonePlayer(rig, "ok"):
        assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
        st = crash_unsent(rig, action)
        assert st["boot_check"]["stage"] == stage, st
        [inst] = checked_instances(rig, st["run_id"])
        assert inst["State"]["Name"] == "running", inst
        image = st["image_id"]
        rig.ec2().deregister_image(ImageId=image)
        r = rig.agent("resume", "--json")
    assert r.returncode == 1, r.stdout_text + r.err
    j = json.loads(r.stdout_text)
    assert j["phase"] == "failed", j
    assert "image %s is not (or no longer) in us-east-1" % image in j["error"], j["error"]
    [inst] = checked_instances(rig, j["run_id"])
    assert inst["State"]["Name"] == "terminated"
    assert j["boot_check"]["terminated"], j
    for action in ("ModifyImageAttribute", "ModifySnapshotAttribute", "CopyImage",
                   "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "PutParameter",
                   "CreateGrant"):
        assert rig.sent(action) == [], action
    assert default_image(rig) == MOTO_AMI
    # A second resume does not start over: the run is over.
    again = rig.agent("resume", "--json")
    assert len(rig.sent("RunInstances")) == 1, again.err


def test_iam_policy_covers_a_failed_check(auth_rig):
    """The shipped policy (its boot check statements widened for moto, which matches no ARN)
    under moto's IAM enforcement, for a check that gets no report: RunInstances, DescribeTags,
    DescribeInstanceStatus, GetConsoleOutput, TerminateInstances, the image's failed tag and its
    deregistration; then each request evaluated against the file as shipped, with the tags the
    request put on the instance (RunInstances) or the instance had (TerminateInstances,
    GetConsoleOutput)."""
    rig = auth_rig(for_moto(POLICY.read_text(), widen=FOR_MOTO_WIDEN + BOOT_CHECK_SIDS))
    rig.configure()
    configure_boot_check(rig, timeout_s=10, on_failure="deregister")
    book = TagBook(rig, ("us-east-1",))
    book.update()
    # The image and its snapshots with the tags DeregisterImage and DeleteSnapshot are judged
    # by: as they are while the check runs (the snapshots are tagged when the image is ready).
    with ClonePlayer(rig, None, on_seen=book.update):
        assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
        r = rig.agent("resume", "--json")
    assert r.returncode == 1 and "no report within 10 s" in r.stdout_text, r.err
    for action in ("RunInstances", "GetConsoleOutput", "TerminateInstances", "DeregisterImage"):
        assert rig.sent(action), action
    sent = check_requests_against_policy(rig, book)
    assert {"ec2:RunInstances", "ec2:GetConsoleOutput", "ec2:TerminateInstances"} <= sent


# ---------------------------------------------------------------- the clone's side

FAKE_SYSTEMCTL = """#!/bin/sh
# A stand-in for systemctl: logs each call; answers from the files beside it.
here=$(dirname "$0")
echo "$*" >> "$here/calls"
case "$1" in
is-system-running) cat "$here/state"; [ "$(cat "$here/state")" = running ];;
list-units) cat "$here/failed";;
is-active) if grep -qx -- "$3" "$here/active"; then echo active; else echo inactive; exit 3; fi;;
poweroff) ;;
*) exit 1;;
esac
"""


@pytest.mark.parametrize("state,failed,active,want", [
    ("running", "", "ssh.service\n", "ok"),
    ("degraded", "nginx.service loaded failed failed A web server\n", "",
     "failed:system degraded; nginx.service failed; required ssh.service (inactive)"),
])
def test_clone_reports_by_tagging_itself(tmp_path, moto, imds_factory, agent_env, agent_bin,
                                         state, failed, active, want):
    """`first-boot` (the daemon's first worker) on an instance whose user-data carries the
    boot-check directive: it looks at systemd and the required units (a stand-in systemctl),
    tags its own instance with the report and powers off; the run=first-boot beside it is not
    acted on, and nothing else reaches AWS (no image, no other instance tagged)."""
    from moto_auth import client, create_moto_instance
    ec2 = client(moto.url, "ec2", region="us-east-1")
    me = create_moto_instance(moto.url, region="us-east-1", image_id=MOTO_AMI)
    other = create_moto_instance(moto.url, region="us-east-1", image_id=MOTO_AMI)
    ud = tmp_path / "user-data"
    ud.write_text("#!/bin/sh\n#ec2-imaged: run=first-boot\n#ec2-imaged: boot-check=0c1d-2e3f\n")
    imds = imds_factory(instance_id=me, region="us-east-1", user_data_file=ud)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sc = bin_dir / "systemctl"
    sc.write_text(FAKE_SYSTEMCTL)
    sc.chmod(0o755)
    (bin_dir / "state").write_text(state + "\n")
    (bin_dir / "failed").write_text(failed)
    (bin_dir / "active").write_text(active)
    conf = tmp_path / "ec2-imaged.conf"
    conf.write_text("[run]\nstate_dir = %s\n[hooks]\ndir = %s\n[daemon]\nuser_data = yes\n"
                    "cloud_init_wait_s = 0\n[boot_check]\nenable = yes\n"
                    "require_units = ssh.service\n" % (tmp_path / "state", tmp_path / "no-hooks"))
    env = agent_env(imds=imds, endpoint=moto)
    env["PATH"] = "%s:%s" % (bin_dir, env["PATH"])
    p = subprocess.run([agent_bin, "--config", str(conf), "first-boot", "--json"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["first_boot_run"] is False and j["boot_check_report"] == want, j
    tags = {t["Key"]: t["Value"] for t in ec2.describe_tags(Filters=[
        {"Name": "resource-id", "Values": [me, other]}])["Tags"]
        if t["ResourceId"] == me}
    assert tags.get("ec2-imaged:boot-check-result") == want, tags
    assert not [t for t in ec2.describe_tags(Filters=[
        {"Name": "resource-id", "Values": [other]}])["Tags"]
        if t["Key"].startswith("ec2-imaged:")]
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    calls = (bin_dir / "calls").read_text().splitlines()
    assert calls[0] == "is-system-running --wait" and calls[-1] == "poweroff", calls
    assert "is-active -- ssh.service" in calls
    # No first-boot run: its once-per-instance marker was never written.
    assert not (tmp_path / "state" / "first-boot").exists()
