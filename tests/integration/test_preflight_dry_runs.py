# SPDX-License-Identifier: Apache-2.0
"""The pre-flight's DryRuns of the calls issue 16 added (`check`, and the start of every run,
before CreateImage and so before any freeze or reboot), against moto behind the recording fault
proxy:

- [boot_check] enable = yes: RunInstances as the check sends it ([boot_check] instance type,
  subnet, security groups, instance profile, its tags and metadata options), of this instance's
  own AMI (IMDS ami-id) as a stand-in for the image that does not exist yet;
- [image] imds_v2_only and [distribute] protect_published: ModifyImageAttribute ImdsSupport and
  EnableImageDeregistrationProtection on the lineage's newest image, not tried (and said so)
  before the lineage's first image;
- launch_template REGION:NAME words: CreateLaunchTemplateVersion and ModifyLaunchTemplate in
  that word's region.

moto honours DryRun on RunInstances, ModifyImageAttribute, CreateLaunchTemplateVersion and
ModifyLaunchTemplate; it lacks EnableImageDeregistrationProtection, which the tests' moto
(tests/peers/moto_server.py) answers, DryRun included.  A refusal is an IAM deny under moto's
enforcement (the policy without the call's action): it stops the run before CreateImage, naming
the call, the region and AWS's error code.  Every run is `--mode reboot`: nothing is frozen.
"""

import json
import time

import pytest

from moto_auth import client  # tests/peers, on sys.path via conftest
from dist_rig import ACCOUNT, BOOT_CHECK_TAG, DST, MOTO_AMI, SRC, configure_boot_check, done_run
from iam_policy import BOOT_CHECK_SIDS, FOR_MOTO_WIDEN, POLICY, for_moto

BOOT_CHECK_POLICY = for_moto(POLICY.read_text(), widen=FOR_MOTO_WIDEN + BOOT_CHECK_SIDS)


def detail_of(c):
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    return item["detail"]


def without(action, document):
    """DOCUMENT without ACTION; a statement left with no action goes too."""
    doc = json.loads(document)
    for s in doc["Statement"]:
        s["Action"] = [a for a in s["Action"] if a != action]
    doc["Statement"] = [s for s in doc["Statement"] if s["Action"]]
    return json.dumps(doc)


def nothing_made(rig):
    """No image, no instance, no image attribute, no template version: DryRuns only."""
    for action in ("CreateImage", "RunInstances", "ModifyImageAttribute",
                   "EnableImageDeregistrationProtection", "CreateLaunchTemplateVersion"):
        assert rig.sent(action) == [], action


def denied(what, region):
    """The refusal of a DryRun under moto's IAM enforcement, which answers AccessDenied (EC2
    answers UnauthorizedOperation, "is not permitted")."""
    return "DryRun %s in %s failed: AccessDenied: " % (what, region)


def refused(rig, want):
    """`check` fails (3) and the run fails (1) before CreateImage, both saying WANT."""
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    assert want in detail_of(c), detail_of(c)
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1, r.err
    assert want in r.err + r.stdout_text, r.err
    nothing_made(rig)


def dry_runs(rig, action):
    return [q["params"] for q in rig.proxy.requests()
            if q["action"] == action and q["params"].get("DryRun") == "true"]


@pytest.fixture
def ami_rig(rig, imds_factory, agent_env):
    """The rig, its IMDS saying that the instance was launched from moto's AMI (ami-id): the
    stand-in image, which moto has (the rig's own IMDS gives one moto has not)."""
    imds = imds_factory(instance_id=rig.instance_id, region=SRC, account_id=ACCOUNT,
                        ami_id=MOTO_AMI)
    rig.env = agent_env(imds=imds, endpoint=rig.proxy)
    return rig


# ---------------------------------------------------------------- the boot check's RunInstances


def test_boot_check_run_instances_dry_run(ami_rig):
    rig = ami_rig
    ec2 = rig.ec2()
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="checker", Description="boot check",
                                   VpcId=vpc)["GroupId"]
    client(rig.moto.url, "iam").create_instance_profile(InstanceProfileName="checker")
    rig.configure()
    configure_boot_check(rig)
    with open(rig.config_path, "a") as f:
        f.write("subnet = %s\nsecurity_groups = %s\ninstance_profile = checker\n" % (subnet, sg))
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    assert "DryRun RunInstances in %s: allowed" % SRC in detail_of(c), detail_of(c)
    [p] = dry_runs(rig, "RunInstances")
    assert p["ImageId"] == MOTO_AMI  # this instance's own AMI, from IMDS
    assert (p["InstanceType"], p["SubnetId"], p["SecurityGroupId.1"],
            p["IamInstanceProfile.Name"]) == ("t3.micro", subnet, sg, "checker"), p
    assert p["MetadataOptions.HttpTokens"] == "required", p
    assert p["InstanceInitiatedShutdownBehavior"] == "terminate", p
    for n, kind in (("1", "instance"), ("2", "volume")):
        assert p["TagSpecification.%s.ResourceType" % n] == kind, p
        assert p["TagSpecification.%s.Tag.1.Key" % n] == BOOT_CHECK_TAG, p
    # The DryRun launched nothing.
    assert ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": [BOOT_CHECK_TAG]}])[
        "Reservations"] == []


def test_denied_run_instances_dry_run_stops_the_run(auth_rig):
    rig = auth_rig(without("ec2:RunInstances", BOOT_CHECK_POLICY))
    rig.configure()
    configure_boot_check(rig)
    refused(rig, denied("RunInstances", SRC))
    assert len(dry_runs(rig, "RunInstances")) == 2  # check's and the run's


def test_boot_check_dry_run_not_tried_when_the_instances_image_is_gone(rig):
    """An instance outlives the image it was launched from (retention retired it, say): EC2
    refuses RunInstances of that image, DryRun included, with InvalidAMIID.*; that says nothing
    about the boot check, which launches the new image, so the DryRun is not tried, said so.
    (The rig's IMDS gives an ami-id that moto does not have.)"""
    ami = client(rig.moto.url, "ec2", region=SRC)
    rig.configure()
    configure_boot_check(rig)
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    [p] = dry_runs(rig, "RunInstances")
    assert ami.describe_images(Filters=[{"Name": "image-id", "Values": [p["ImageId"]]}])[
        "Images"] == []
    assert "DryRun RunInstances in %s: not tried, this instance's image %s is gone " \
        "(InvalidAMIID.NotFound)" % (SRC, p["ImageId"]) in detail_of(c), detail_of(c)


# ---------------------------------------------------------------- ImdsSupport, protection

SETTINGS = ("ModifyImageAttribute ImdsSupport", "EnableImageDeregistrationProtection")


def test_image_settings_dry_runs_name_the_lineages_newest_image(rig):
    rig.configure(keep_newest=3, lineage="web", protect_published="yes")
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    for what in SETTINGS:
        assert "DryRun %s in %s: not tried, no image of lineage web made by ec2-imaged yet" % (
            what, SRC) in detail_of(c), detail_of(c)
    assert not dry_runs(rig, "ModifyImageAttribute")
    assert not dry_runs(rig, "EnableImageDeregistrationProtection")

    done_run(rig.run_and_resume())
    # moto's CreationDate counts whole seconds: the second image is made in a later one.
    time.sleep(1.1)
    newest = done_run(rig.run_and_resume())["image_id"]
    rig.proxy.clear()
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    for what in SETTINGS:
        assert "DryRun %s in %s: allowed" % (what, SRC) in detail_of(c), detail_of(c)
    [p] = dry_runs(rig, "ModifyImageAttribute")
    assert (p["ImageId"], p["ImdsSupport.Value"]) == (newest, "v2.0"), [
        (i["ImageId"], i["CreationDate"]) for i in rig.images()]
    [p] = dry_runs(rig, "EnableImageDeregistrationProtection")
    assert p["ImageId"] == newest, p


def test_image_settings_not_dry_run_when_off(rig):
    rig.configure(keep_newest=3, lineage="web")
    with open(rig.config_path, "a") as f:
        f.write("[image]\nimds_v2_only = no\n")
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    for what in SETTINGS:
        assert what not in detail_of(c), detail_of(c)


@pytest.mark.parametrize("action,what", [
    ("ec2:ModifyImageAttribute", "ModifyImageAttribute ImdsSupport"),
    ("ec2:EnableImageDeregistrationProtection", "EnableImageDeregistrationProtection")])
def test_denied_image_setting_dry_run_stops_the_run(auth_rig, action, what):
    # A first run, with the policy as shipped, leaves an image of the lineage.
    first = auth_rig()
    first.configure(keep_newest=3, lineage="web", protect_published="yes")
    done_run(first.run_and_resume())
    rig = auth_rig(without(action, POLICY.read_text()))
    rig.configure(keep_newest=3, lineage="web", protect_published="yes")
    rig.proxy.clear()
    refused(rig, denied(what, SRC))


# ---------------------------------------------------------------- launch templates per region


def test_launch_template_dry_run_in_the_words_region(rig):
    """A REGION:NAME word is tried in that region (moto looks the template up there before it
    answers DryRunOperation: "allowed" says the request went to that region); the run's own
    region, which has no word, is not."""
    rig.ec2(DST[0]).create_launch_template(LaunchTemplateName="web-west", LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "t3.micro"})
    rig.configure(regions=DST[0], launch_template="%s:web-west" % DST[0])
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    for call in ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate"):
        assert "DryRun %s in %s: allowed" % (call, DST[0]) in detail_of(c), detail_of(c)
    [p] = dry_runs(rig, "CreateLaunchTemplateVersion")
    assert p["LaunchTemplateName"] == "web-west", p
    assert "in %s" % SRC not in " ".join(
        s for s in detail_of(c).split("; ") if "LaunchTemplate" in s)


def test_missing_launch_template_in_the_words_region_stops_the_run(rig):
    rig.configure(regions=DST[0], launch_template="%s:web-west" % DST[0])
    refused(rig, "DryRun CreateLaunchTemplateVersion in %s failed: "
            "InvalidLaunchTemplateName.NotFoundException" % DST[0])


def test_denied_launch_template_dry_run_in_the_words_region(auth_rig):
    rig = auth_rig(without("ec2:CreateLaunchTemplateVersion", POLICY.read_text()))
    rig.ec2(DST[0]).create_launch_template(LaunchTemplateName="web-west", LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "t3.micro"})
    rig.configure(regions=DST[0], launch_template="%s:web-west" % DST[0])
    refused(rig, denied("CreateLaunchTemplateVersion", DST[0]))


def test_boot_check_dry_run_ignored_terminates_what_it_launched(ami_rig):
    """An EC2 that ignores DryRun (the proxy drops it from the request, and moto launches):
    the pre-flight terminates the instance it did not mean to make and fails, naming it."""
    rig = ami_rig
    rig.configure()
    configure_boot_check(rig)
    rig.proxy.faults({"kind": "ignore_dry_run", "action": "RunInstances"})
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    [inst] = [i for res in rig.ec2().describe_instances(Filters=[
        {"Name": "tag:" + BOOT_CHECK_TAG, "Values": ["preflight"]}])["Reservations"]
        for i in res["Instances"]]
    assert "DryRun RunInstances in %s: EC2 launched %s (it ignored DryRun), terminated" % (
        SRC, inst["InstanceId"]) in detail_of(c), detail_of(c)
    assert inst["State"]["Name"] == "terminated"
