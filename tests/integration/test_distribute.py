# SPDX-License-Identifier: Apache-2.0
"""Distribution after the image is available ([distribute]) end to end, against moto behind the
recording fault proxy: copies to two regions with KMS keys, sharing, snapshot permissions, the
refusal of an AWS-managed key, deprecation, retention, the launch template version, the SSM
parameter, and a crash between two steps resumed without a second copy.

Safety: every run here is `run --mode reboot` (and `[run] mode = reboot`) against moto, so
nothing is ever frozen: moto makes the image at once and `resume` finishes the run without a
real reboot.  The agent only talks to loopback peers (agent_env); servers stop by PID.
Where moto ignores a parameter (Encrypted/KmsKeyId on CopyImage, SourceVersion on launch
template versions) the test asserts what was sent, from the proxy's recorded requests; the tests'
moto (tests/peers/moto_server.py) honours CopyImage's ClientToken and EC2's unique AMI names.
"""

import base64
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest

SRC = "us-east-1"
DST = ("us-west-2", "eu-west-1")
MOTO_AMI = "ami-12c6146b"
ACCOUNT = "123456789012"
SHARE_ACCOUNT = "111122223333"
ORG = "arn:aws:organizations::123456789012:organization/o-abc123def4"
AGENT_TIMEOUT = 120  # seconds; the bound on one agent command
DEADLINE = 30
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


class Rig:
    """moto with one instance, the IMDS server that says we are it, the fault proxy in front of
    moto, a state dir and the config that ties them up."""

    def __init__(self, tmp, moto, proxy, env, agent_bin, instance_id):
        self.tmp, self.moto, self.proxy, self.env = tmp, moto, proxy, env
        self.agent_bin, self.instance_id = agent_bin, instance_id
        self.state_dir = tmp / "state"
        self.state_dir.mkdir(mode=0o700)
        self.config_path = tmp / "ec2-imaged.conf"
        self.procs = []

    def ec2(self, region=SRC):
        return client(self.moto.url, "ec2", region=region)

    def configure(self, notify=None, **dist):
        lines = ["[aws]", "max_attempts = 2", "retry_deadline_ms = 10000",
                 "[run]", "mode = reboot", "state_dir = %s" % self.state_dir,
                 "wait_timeout_s = 60", "wait_poll_max_s = 1",
                 "[image]", "name = dist-{run_id}", "tag = team=platform",
                 "[hooks]", "dir = %s" % (self.tmp / "no-hooks"),
                 "[distribute]"]
        lines += ["%s = %s" % (k, v) for k, v in dist.items()]
        lines += ["[notify]"] + ["%s = %s" % kv for kv in (notify or {}).items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, *args):
        out = open(self.tmp / ("agent-%d.out" % len(self.procs)), "w+")
        p = subprocess.Popen([self.agent_bin, "--config", str(self.config_path), *args],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                             env=self.env, start_new_session=True, text=True)
        p.out = out
        self.procs.append(p)
        return p

    def agent(self, *args):
        p = self.start(*args)
        try:
            _, err = p.communicate(timeout=AGENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail("ec2-imaged %s hung" % " ".join(args))
        p.out.seek(0)
        p.stdout_text, p.err = p.out.read(), err
        # Under the sanitizer build (EC2_IMAGED_BIN=build-san/...), failed runs count too.
        assert not SANITIZER_REPORT.search(err), "sanitizer report:\n" + err
        return p

    def run_and_resume(self):
        """`run --mode reboot` (CreateImage, then the run waits for the boot) and `resume`."""
        a = self.agent("run", "--mode", "reboot", "--json")
        assert a.returncode == 0, a.err
        r = self.agent("resume", "--json")
        return r

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())

    def sent(self, action):
        """The requests of action that were not DryRuns (EC2's form or KMS's JSON DryRun)."""
        return [q for q in self.proxy.requests()
                if q["action"] == action and q["params"].get("DryRun") != "true"
                and (q["json"] or {}).get("DryRun") is not True]

    def images(self, region=SRC):
        return self.ec2(region).describe_images(Owners=["self"])["Images"]

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=DEADLINE)
            p.out.close()


def rig_of(instance_id, tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """The Rig of moto's instance INSTANCE_ID, closed afterwards: a fixture yields from it."""
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT)
    proxy = fault_proxy(moto)
    r = Rig(tmp_path, moto, proxy, agent_env(imds=imds, endpoint=proxy), agent_bin, instance_id)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    instance_id = create_moto_instance(moto.url, region=SRC, image_id=MOTO_AMI)
    yield from rig_of(instance_id, tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin)


BOOT_CHECK_TAG = "ec2-imaged:boot-check"
BOOT_CHECK_RESULT = "ec2-imaged:boot-check-result"


class ClonePlayer(threading.Thread):
    """The clone's part, as run/bootcheck_report.c plays it on EC2: each instance tagged
    ec2-imaged:boot-check that appears in moto gets REPORT (None: no report at all) as its
    ec2-imaged:boot-check-result tag, once, after the test has read its user-data."""

    def __init__(self, rig, report, on_seen=None):
        super().__init__(daemon=True)
        self.ec2 = client(rig.moto.url, "ec2", getattr(rig, "admin", None), SRC)
        self.report, self.seen, self.user_data = report, [], {}
        self.on_seen = on_seen  # called when an instance appears (before its report)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for res in self.ec2.describe_instances(Filters=[
                    {"Name": "tag-key", "Values": [BOOT_CHECK_TAG]}])["Reservations"]:
                for inst in res["Instances"]:
                    iid = inst["InstanceId"]
                    if iid in self.seen:
                        continue
                    self.seen.append(iid)
                    ud = self.ec2.describe_instance_attribute(
                        InstanceId=iid, Attribute="userData")["UserData"].get("Value", "")
                    self.user_data[iid] = base64.b64decode(ud).decode()
                    if self.on_seen:
                        self.on_seen()
                    if self.report is not None:
                        self.ec2.create_tags(Resources=[iid],
                                             Tags=[{"Key": BOOT_CHECK_RESULT, "Value": self.report}])
            self.halt.wait(0.2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join(timeout=DEADLINE)


def configure_boot_check(rig, timeout_s=60, on_failure="keep"):
    """Add [boot_check] to the configuration rig.configure() wrote."""
    with open(rig.config_path, "a") as f:
        f.write("[boot_check]\nenable = yes\ninstance_type = t3.micro\n"
                "timeout_s = %d\non_failure = %s\nrequire_units = ssh.service\n"
                % (timeout_s, on_failure))


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def kms_key(rig, region, alias):
    kms = client(rig.moto.url, "kms", region=region)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key


def apply_kms_policy(rig, admin=None):
    """Add the statements `kms-policy --json` prints to each configured key's policy."""
    p = rig.agent("kms-policy", "--json")
    assert p.returncode == 0, p.err
    for k in json.loads(p.stdout_text)["keys"]:
        kms = client(rig.moto.url, "kms", admin, k["region"])
        key_id = kms.describe_key(KeyId=k["key"])["KeyMetadata"]["KeyId"]
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        policy["Statement"] += k["statements"]
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def done_run(r):
    assert r.returncode == 0, r.err
    j = json.loads(r.stdout_text)
    assert j["phase"] == "done", j
    return j


# ---------------------------------------------------------------- copies, sharing, publishing


def test_copies_share_publish(rig):
    keys = {reg: kms_key(rig, reg, "alias/golden") for reg in DST}
    ec2 = rig.ec2()
    lt = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "t3.micro"})["LaunchTemplate"]
    # A template of the same use in a copy's region, published there with that region's copy.
    lt_west = rig.ec2(DST[0]).create_launch_template(LaunchTemplateName="web-west",
                                                     LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "t3.micro"})["LaunchTemplate"]
    rig.configure(regions=" ".join(DST),
                  kms_key=" ".join("%s:alias/golden" % reg for reg in DST),
                  share_accounts=SHARE_ACCOUNT, share_organizations=ORG, create_grants="yes",
                  launch_template="web %s:web-west" % DST[0], launch_template_source_version="1",
                  ssm_parameter="/golden/web %s:/golden/eu" % DST[1], lineage="web",
                  protect_published="yes")
    # Shared with an organization: the keys' policies allow it (the pre-flight checks them).
    apply_kms_policy(rig)
    j = done_run(rig.run_and_resume())
    image = j["image_id"]
    copies = {}
    for reg in DST:
        [im] = rig.images(reg)
        copies[reg] = im["ImageId"]
        t = tags_of(im)
        assert t["ec2-imaged:lineage"] == "web" and t["ec2-imaged:run-id"] == j["run_id"]
        assert t["team"] == "platform"
    # What moto ignores, as sent: the region's key, Encrypted, the deterministic token.
    sent_copies = rig.sent("CopyImage")
    assert len(sent_copies) == 2
    for q in sent_copies:
        p = q["params"]
        assert p["SourceRegion"] == SRC and p["SourceImageId"] == image
        assert p["Encrypted"] == "true" and p["KmsKeyId"] == "alias/golden"
        assert p["ClientToken"] in {"%s-%s" % (j["run_id"], reg) for reg in DST}
        assert p["CopyImageTags"] == "true"
    assert {q["params"]["ClientToken"] for q in sent_copies} == {
        "%s-%s" % (j["run_id"], reg) for reg in DST}

    # Shared in every region, with the account and the organization; snapshots for the account.
    for reg, im in [(SRC, image)] + list(copies.items()):
        perms = rig.ec2(reg).describe_image_attribute(
            ImageId=im, Attribute="launchPermission")["LaunchPermissions"]
        assert {"UserId": SHARE_ACCOUNT} in perms and {"OrganizationArn": ORG} in perms, reg
        for bdm in rig.ec2(reg).describe_images(ImageIds=[im])["Images"][0][
                "BlockDeviceMappings"]:
            attr = rig.ec2(reg).describe_snapshot_attribute(
                SnapshotId=bdm["Ebs"]["SnapshotId"], Attribute="createVolumePermission")
            assert {"UserId": SHARE_ACCOUNT} in attr["CreateVolumePermissions"], reg

    # KMS grants on the customer keys of the copies, for the shared account.
    for reg in DST:
        grants = client(rig.moto.url, "kms", region=reg).list_grants(
            KeyId=keys[reg]["KeyId"])["Grants"]
        assert [g["GranteePrincipal"] for g in grants] == ["arn:aws:iam::%s:root" % SHARE_ACCOUNT]

    # The launch templates: in each region a new version with that region's image, made from
    # version 1, the default; no template in the region that has none.
    sent = {q["params"]["LaunchTemplateName"]: q for q in rig.sent("CreateLaunchTemplateVersion")}
    assert set(sent) == {"web", "web-west"}, sent
    for name, reg, im, t in (("web", SRC, image, lt), ("web-west", DST[0], copies[DST[0]], lt_west)):
        assert sent[name]["params"]["SourceVersion"] == "1"
        assert sent[name]["params"]["LaunchTemplateData.ImageId"] == im
        vers = rig.ec2(reg).describe_launch_template_versions(
            LaunchTemplateId=t["LaunchTemplateId"], Versions=["$Default"])["LaunchTemplateVersions"]
        assert vers[0]["VersionNumber"] == 2 and vers[0]["LaunchTemplateData"]["ImageId"] == im

    # The SSM parameter in each region holds that region's image: the plain name in every region
    # but the one with a name of its own.
    for reg, name, im in ((SRC, "/golden/web", image), (DST[0], "/golden/web", copies[DST[0]]),
                          (DST[1], "/golden/eu", copies[DST[1]])):
        p = client(rig.moto.url, "ssm", region=reg).get_parameter(Name=name)
        assert p["Parameter"]["Value"] == im and p["Parameter"]["DataType"] == "aws:ec2:image"
    ssm = client(rig.moto.url, "ssm", region=DST[1])
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/golden/web")

    # [image] imds_v2_only (default yes): ImdsSupport v2.0 on every image, as sent (moto ignores
    # it); protect_published: deregistration protection on every image (the tests' moto keeps it).
    imds = {q["params"]["ImageId"] for q in rig.sent("ModifyImageAttribute")
            if q["params"].get("ImdsSupport.Value") == "v2.0"}
    assert imds == {image} | set(copies.values())
    protected = {q["params"]["ImageId"] for q in rig.sent("EnableImageDeregistrationProtection")}
    assert protected == {image} | set(copies.values())
    for reg, im in [(SRC, image)] + list(copies.items()):
        with pytest.raises(Exception, match="deregistration protection"):
            rig.ec2(reg).deregister_image(ImageId=im)


def test_refuses_sharing_with_aws_managed_key(rig):
    # moto's DescribeKey says CUSTOMER even for alias/aws/ebs; the alias/aws/ prefix, which AWS
    # reserves for its own keys, is enough to refuse.
    rig.configure(regions=DST[0], kms_key="%s:alias/aws/ebs" % DST[0],
                  share_accounts=SHARE_ACCOUNT)
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    err = r.err + r.stdout_text
    assert "alias/aws/ebs" in err and "AWS-managed" in err and "kms_key" in err, err
    # Refused in the pre-flight: before CreateImage, before any copy or share.
    assert rig.sent("CreateImage") == [] and rig.sent("CopyImage") == []
    assert rig.sent("ModifyImageAttribute") == []

    # `check` names the same refusal.
    c = rig.agent("check", "--json")
    assert c.returncode == 3
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    assert item["result"] == "failed" and "alias/aws/ebs" in item["detail"], item


def test_check_dry_runs_each_step(rig):
    kms_key(rig, DST[0], "alias/golden")
    rig.ec2().create_launch_template(LaunchTemplateName="web",
                                     LaunchTemplateData={"ImageId": MOTO_AMI})
    rig.configure(regions=DST[0], kms_key="%s:alias/golden" % DST[0],
                  share_accounts=SHARE_ACCOUNT, keep_newest=3, launch_template="web")
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    for step in ("CopyImage in %s" % DST[0], "ModifyImageAttribute in %s" % SRC,
                 "CreateLaunchTemplateVersion in %s" % SRC, "ModifyLaunchTemplate in %s" % SRC):
        assert "DryRun %s: allowed" % step in item["detail"], item
    # DeregisterImage is only ever tried on an image ec2-imaged made (the IAM policy allows no
    # other): before the first run of the lineage there is none.
    assert "DryRun DeregisterImage in %s: not tried, no image of lineage %s made by " \
        "ec2-imaged yet" % (SRC, rig.instance_id) in item["detail"], item
    dry = [q for q in rig.proxy.requests() if q["params"].get("DryRun") == "true"]
    assert {q["action"] for q in dry} >= {"CopyImage", "ModifyImageAttribute"}
    assert "DeregisterImage" not in {q["action"] for q in rig.proxy.requests()}
    assert all(q["params"].get("DryRun") == "true" for q in rig.proxy.requests()
               if q["action"] in ("CopyImage", "ModifyImageAttribute"))
    assert rig.images(DST[0]) == []
    # After a run, the DryRun names that run's image.
    image = done_run(rig.run_and_resume())["image_id"]
    rig.proxy.clear()
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    [q] = [q for q in rig.proxy.requests() if q["action"] == "DeregisterImage"]
    assert q["params"]["DryRun"] == "true" and q["params"]["ImageId"] == image, q


def test_dry_run_lists_what_retention_would_deregister(rig):
    rig.configure(keep_newest=5, lineage="web")
    images = [done_run(rig.run_and_resume())["image_id"] for _ in range(2)]
    rig.configure(keep_newest=1, lineage="web")
    d = rig.agent("run", "--mode", "reboot", "--dry-run")
    assert d.returncode == 0, d.err
    for im in images:
        assert "would deregister %s" % im in d.stdout_text, d.stdout_text
    assert rig.sent("DeregisterImage") == [] or all(
        q["params"].get("DryRun") == "true" for q in rig.sent("DeregisterImage"))
    assert {im["ImageId"] for im in rig.images()} == set(images)


def test_deprecation_is_sent(rig):
    # moto has no EnableImageDeprecation (HTTP 500): the proxy answers for it instead.
    rig.configure(deprecate_after_days=30)
    rig.proxy.faults({"kind": "ok", "action": "EnableImageDeprecation", "count": 5})
    j = done_run(rig.run_and_resume())
    [q] = rig.sent("EnableImageDeprecation")
    assert q["params"]["ImageId"] == j["image_id"]
    started = j["started_us"] // 1000000
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started + 30 * 86400))
    assert q["params"]["DeprecateAt"] == at


# ---------------------------------------------------------------- retention


def test_retention_keeps_newest_and_referenced(rig):
    rig.configure(keep_newest=1, lineage="web")
    first = done_run(rig.run_and_resume())["image_id"]
    # A launch template's default version uses the first image: it must stay.
    rig.ec2().create_launch_template(LaunchTemplateName="pinned",
                                     LaunchTemplateData={"ImageId": first})
    # An image of the lineage that ec2-imaged did not make stays too.
    inst = create_moto_instance(rig.moto.url, region=SRC, image_id=MOTO_AMI)
    foreign = rig.ec2().create_image(InstanceId=inst, Name="hand-made", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "ec2-imaged:lineage", "Value": "web"}]}])[
        "ImageId"]
    second = done_run(rig.run_and_resume())["image_id"]
    assert rig.sent("DeregisterImage") == []
    third = done_run(rig.run_and_resume())["image_id"]
    left = {im["ImageId"] for im in rig.images()}
    assert left == {first, foreign, third}
    [q] = rig.sent("DeregisterImage")
    assert q["params"]["ImageId"] == second
    assert q["params"]["DeleteAssociatedSnapshots"] == "true"
    # The snapshots went with it.
    snaps = {s["SnapshotId"] for s in rig.ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    for im in rig.images():
        for bdm in im["BlockDeviceMappings"]:
            assert bdm["Ebs"]["SnapshotId"] in snaps
    assert len(rig.sent("DeleteSnapshot")) >= 1


def test_retention_lifts_the_protection_of_published_images(rig):
    rig.configure(keep_newest=1, lineage="web", protect_published="yes")
    first = done_run(rig.run_and_resume())["image_id"]
    second = done_run(rig.run_and_resume())["image_id"]
    assert {im["ImageId"] for im in rig.images()} == {second}
    # Protection lifted first (EC2 refuses to deregister a protected image), then deregistered.
    actions = [(q["action"], q["params"].get("ImageId")) for q in rig.proxy.requests()
               if q["action"] in ("DisableImageDeregistrationProtection", "DeregisterImage")
               and q["params"].get("DryRun") != "true"]
    assert actions == [("DisableImageDeregistrationProtection", first),
                       ("DeregisterImage", first)], actions
    assert [q["params"]["ImageId"] for q in rig.sent("EnableImageDeregistrationProtection")] == \
        [first, second]


def test_imds_v2_only_no_leaves_the_image_alone(rig):
    rig.configure(lineage="web", deprecate_after_days=30)
    rig.config_path.write_text(rig.config_path.read_text().replace(
        "[image]\n", "[image]\nimds_v2_only = no\n"))
    rig.proxy.faults({"kind": "ok", "action": "EnableImageDeprecation", "count": 10})
    done_run(rig.run_and_resume())
    assert not [q for q in rig.sent("ModifyImageAttribute") if "ImdsSupport.Value" in q["params"]]
    assert rig.sent("EnableImageDeregistrationProtection") == []


# ---------------------------------------------------------------- crash and resume


def test_crash_between_steps_resumes_without_second_copy(rig):
    rig.configure(regions=" ".join(DST), share_accounts=SHARE_ACCOUNT)
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    # The copies are made, then ModifyImageAttribute (ImdsSupport, the first step after the
    # tags) hangs in the proxy: kill the agent there.
    rig.proxy.faults({"kind": "delay", "delay_ms": 5000, "action": "ModifyImageAttribute"})
    p = rig.start("resume", "--json")
    deadline = time.monotonic() + DEADLINE
    while not rig.sent("ModifyImageAttribute") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.sent("ModifyImageAttribute"), "never reached the share step"
    p.kill()
    p.wait(timeout=DEADLINE)
    st = rig.state()["current"]
    assert st["phase"] == "distributing"
    assert all(d["image_id"] for d in st["distribution"])
    j = done_run(rig.agent("resume", "--json"))
    for reg in DST:
        assert len(rig.images(reg)) == 1, reg
    assert len(rig.sent("CopyImage")) == 2
    perms = rig.ec2().describe_image_attribute(ImageId=j["image_id"],
                                               Attribute="launchPermission")
    assert {"UserId": SHARE_ACCOUNT} in perms["LaunchPermissions"]


def test_throttled_copy_is_retried_with_the_same_token(rig):
    rig.configure(regions=DST[0], max_copies_in_flight=1)
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    # [aws] max_attempts = 2 here: one throttling answer, then the retry.
    rig.proxy.faults({"kind": "throttle", "count": 1, "action": "CopyImage"})
    j = done_run(rig.agent("resume", "--json"))
    sent = rig.sent("CopyImage")
    assert [q["fault"] for q in sent] == ["throttle", None]
    assert {q["params"]["ClientToken"] for q in sent} == {"%s-%s" % (j["run_id"], DST[0])}
    assert len(rig.images(DST[0])) == 1


def test_launch_template_version_retried_with_its_client_token(rig):
    """CreateLaunchTemplateVersion answered with a 500 (which may come after EC2 made the
    version) is sent again by the client's retry: with the same ClientToken, made of the run id
    and the region, so that EC2 makes one version.  (moto ignores the token: what was sent is
    checked.)"""
    rig.ec2().create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "t3.micro"})
    rig.configure(launch_template="web")
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    rig.proxy.faults({"kind": "error500", "action": "CreateLaunchTemplateVersion"})
    j = done_run(rig.agent("resume", "--json"))
    sent = rig.sent("CreateLaunchTemplateVersion")
    assert [q["fault"] for q in sent] == ["error500", None]
    assert [q["params"].get("ClientToken") for q in sent] == ["%s-%s" % (j["run_id"], SRC)] * 2
    vers = rig.ec2().describe_launch_template_versions(LaunchTemplateName="web")
    assert sorted(v["LaunchTemplateData"].get("ImageId") for v in
                  vers["LaunchTemplateVersions"]) == sorted([MOTO_AMI, j["image_id"]])


@pytest.mark.parametrize("fault", ["drop_response", "duplicate_name"])
def test_lost_copy_answer_makes_one_copy(rig, fault):
    """CopyImage reached EC2 and made the copy, but its answer was lost with the connection
    (drop_response) or said the name is taken (duplicate_name, as EC2 answers a second request
    for a name that exists): the run ends with the one copy, adopted, in the destination."""
    rig.configure(regions=DST[0], max_copies_in_flight=1)
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    rig.proxy.faults({"kind": fault, "action": "CopyImage"})
    j = done_run(rig.agent("resume", "--json"))
    [copy] = rig.images(DST[0])
    assert [d["image_id"] for d in j["distribution"] if d["region"] == DST[0]] == \
        [copy["ImageId"]]
    sent = rig.sent("CopyImage")
    assert sent[0]["fault"] == fault
    assert {q["params"]["ClientToken"] for q in sent} == {"%s-%s" % (j["run_id"], DST[0])}
    if fault == "drop_response":
        # Sent again by the client's own retry (a transport error; the token makes it one copy),
        # and not by libcurl as well: two requests, not three.
        assert len(sent) == 2, [q["fault"] for q in sent]
    else:
        assert len(sent) == 1


# ---------------------------------------------------------------- the IAM policy
#
# What moto 5.2 enforces of an IAM policy (moto/iam/access_control.py): each request's action
# against each statement's Action, and the statement's Resource against the literal "*" (moto
# names no resource for EC2, KMS or SSM requests); of the Condition operators only
# StringEquals, and only on values a request brings, none of which EC2, KMS or SSM requests do
# (every other operator, the shipped Null on aws:ResourceTag/ec2-imaged:run-id among them, is
# taken as met). So the shipped document is used as it is, except that the Resource of the KMS
# and SSM statements (key and parameter ARNs, which moto would compare with "*" and never match)
# is "*" where a test needs those calls; and each test then evaluates the shipped document
# itself, without moto, for every request the proxy recorded: its action against the
# statements' Actions, its key or parameter ARN against their Resources, and the retention
# statement's tag condition against the tags the image or snapshot had (policy_verdict).


POLICY = Path(__file__).resolve().parents[2] / "conf" / "iam-policy.json"
RUN_ID_TAG = "ec2-imaged:run-id"
# What EC2 does with the caller's permissions when CopyImage encrypts with a customer key (the
# EBS encryption requirements: CreateGrant, Decrypt, DescribeKey, GenerateDataKeyWithoutPlainText,
# ReEncrypt*): the agent sends none of these itself but DescribeKey and CreateGrant.
EC2_ON_OUR_BEHALF = {"kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                     "kms:GenerateDataKeyWithoutPlaintext",
                     # RunInstances with [boot_check] instance_profile: EC2 checks PassRole.
                     "iam:PassRole"}
# The boot check's statements name EC2 resources by ARN, which moto never matches (above).
BOOT_CHECK_SIDS = ("BootCheckLaunchTagged", "BootCheckLaunchFrom", "BootCheckOnlyOwnInstances")


FOR_MOTO_WIDEN = ("DistributeKmsKeys", "DistributeSsmParameter", "NotifyEventBridge",
                  "NotifySns")


def for_moto(document, widen=FOR_MOTO_WIDEN):
    """The shipped document with the Resource of the WIDEN statements set to "*" (see above);
    actions and conditions as shipped."""
    doc = json.loads(document)
    for st in doc["Statement"]:
        if st["Sid"] in widen:
            st["Resource"] = "*"
    return json.dumps(doc)


def iam_match(pattern, value, case=False):
    """IAM's wildcards: * any run, ? one character; actions compare case-insensitively."""
    rx = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(rx, value, 0 if case else re.IGNORECASE) is not None


def policy_verdict(doc, action, resource, tags):
    """Whether DOC allows ACTION ("ec2:CreateImage") on RESOURCE (an ARN, or "*" for EC2's
    resources, which the shipped policy does not narrow) whose tags are TAGS (a dict, or None
    when the action takes no tagged resource). Only the condition the shipped policy uses is
    understood: any other fails the test, so that a new one comes with its own evaluation."""
    for st in doc["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if st["Effect"] != "Allow" or not any(iam_match(a, action) for a in actions):
            continue
        if not any(iam_match(r, resource, case=True) for r in resources):
            continue
        met = True
        for op, keys in st.get("Condition", {}).items():
            for key, want in keys.items():
                # The resource's tags, or for aws:RequestTag those the request puts on it.
                assert op == "Null" and key.startswith(("aws:ResourceTag/", "aws:RequestTag/")), \
                    (op, key)
                present = tags is not None and key.split("/", 1)[1] in tags
                met = met and present == (want == "false")
        if met:
            return True
    return False


class TagBook:
    """The tags of every image and snapshot (all regions of the test) as moto's admin sees
    them, remembered across deregistrations: what EC2 evaluates aws:ResourceTag/... against."""

    def __init__(self, rig, regions):
        self.rig, self.regions, self.tags = rig, regions, {}

    def update(self):
        for reg in self.regions:
            ec2 = client(self.rig.moto.url, "ec2", self.rig.admin, reg)
            for im in ec2.describe_images(Owners=["self"])["Images"]:
                self.tags[im["ImageId"]] = tags_of(im)
            for sn in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
                self.tags[sn["SnapshotId"]] = tags_of(sn)
            for im in ec2.describe_images(ImageIds=[MOTO_AMI])["Images"] if reg == SRC else []:
                self.tags[im["ImageId"]] = tags_of(im)
            for res in ec2.describe_instances()["Reservations"]:
                for inst in res["Instances"]:
                    self.tags[inst["InstanceId"]] = tags_of(inst)


def kms_key_arn(rig, key_id, regions):
    """The ARN of the key KEY_ID (an id, ARN or alias) names in whichever of REGIONS has it."""
    for reg in regions:
        try:
            return client(rig.moto.url, "kms", rig.admin, reg).describe_key(
                KeyId=key_id)["KeyMetadata"]["Arn"]
        except Exception:  # noqa: BLE001 (NotFoundException: another region's)
            continue
    pytest.fail("no region of %s has the KMS key %s" % (regions, key_id))


def action_and_resource(rig, q, regions):
    """For a recorded request: its IAM action, the resource IAM evaluates (a KMS key's ARN, an
    SSM parameter's ARN, or "*" for EC2, whose resources the shipped policy does not narrow),
    and the id of the EC2 image or snapshot whose tags a condition would look at."""
    target = {k.lower(): v for k, v in q["headers"]}.get("x-amz-target", "")
    if target.startswith("TrentService."):
        return "kms:" + q["action"], kms_key_arn(rig, q["json"]["KeyId"], regions), None
    if target.startswith("AWSEvents."):
        [entry] = q["json"]["Entries"]
        return ("events:" + q["action"],
                "arn:aws:events:%s:%s:event-bus/%s" % (SRC, ACCOUNT, entry["EventBusName"]), None)
    if q["params"].get("Version") == "2010-03-31":  # SNS, in the Query protocol
        return "sns:" + q["action"], q["params"]["TopicArn"], None
    if target.startswith("AmazonSSM."):
        # The region is in the (redacted) signature; the policy's pattern names none.
        return ("ssm:" + q["action"],
                "arn:aws:ssm:%s:%s:parameter%s" % (SRC, ACCOUNT, q["json"]["Name"]), None)
    p = q["params"]
    return "ec2:" + q["action"], "*", p.get("ImageId") or p.get("SnapshotId")


def boot_check_resources(q, book):
    """The resources IAM evaluates a boot check's call on, each with the tags its conditions
    see: RunInstances on the new instance and volume (with the tags the request puts on them)
    and on the image, subnet, interface and group it uses; TerminateInstances and
    GetConsoleOutput on the instance (with its tags).  None for the other calls."""
    p, arn = q["params"], "arn:aws:ec2:%s:%s:%%s" % (SRC, ACCOUNT)
    if q["action"] == "RunInstances":
        asked = {v: p[k[:-3] + "Value"] for k, v in p.items()
                 if re.fullmatch(r"TagSpecification\.1\.Tag\.\d+\.Key", k)}
        return [(arn % "instance/i-new", asked), (arn % "volume/vol-new", asked),
                ("arn:aws:ec2:%s::image/%s" % (SRC, p["ImageId"]), None),
                (arn % "subnet/subnet-default", None), (arn % "network-interface/eni-new", None),
                (arn % "security-group/sg-default", None)]
    if q["action"] in ("TerminateInstances", "GetConsoleOutput"):
        iid = p.get("InstanceId.1") or p.get("InstanceId")
        return [(arn % ("instance/" + iid), book.tags.get(iid))]
    return None


def check_requests_against_policy(rig, book, doc=None):
    """Every request the agent sent is allowed by the shipped policy (evaluated here, with
    resources and conditions); returns the set of actions sent."""
    doc = doc or json.loads(POLICY.read_text())
    sent = set()
    book.update()  # the boot check's instances, made during the runs
    for q in rig.proxy.requests():
        if not q["action"]:
            continue
        for resource, tags in boot_check_resources(q, book) or []:
            assert policy_verdict(doc, "ec2:" + q["action"], resource, tags), \
                "the shipped policy does not allow ec2:%s on %s (tags %r)" % (
                    q["action"], resource, tags)
        if boot_check_resources(q, book):
            sent.add("ec2:" + q["action"])
            continue
        action, resource, tagged = action_and_resource(rig, q, book.regions)
        tags = book.tags.get(tagged) if tagged else None
        assert policy_verdict(doc, action, resource, tags), \
            "the shipped policy does not allow %s on %s (tags %r): %r" % (
                action, tagged or resource, tags, q["params"] or q["json"])
        sent.add(action)
    return sent


def policy_actions(doc=None):
    doc = doc or json.loads(POLICY.read_text())
    return {a for st in doc["Statement"]
            for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}


def policy_user(admin_url, admin_creds, name, document):
    iam = client(admin_url, "iam", admin_creds)
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def auth_rig(tmp_path, moto_auth, fault_proxy, imds_factory, agent_env, agent_bin):
    """A rig on a moto with IAM enforcement, whose agent has only the policy document given
    (auth_rig(document), default conf/iam-policy.json byte for byte).  moto_auth's admin sets up
    the instance, keys and template."""
    admin = moto_auth.creds
    instance_id = create_moto_instance(moto_auth.url, creds=admin, region=SRC,
                                       image_id=MOTO_AMI)
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT)
    proxy = fault_proxy(moto_auth)
    rigs = []

    def make(document=None):
        creds = policy_user(moto_auth.url, admin, "ec2-imaged-%d" % len(rigs),
                            document or POLICY.read_text())
        r = Rig(tmp_path / ("rig%d" % len(rigs)), moto_auth, proxy,
                agent_env(imds=imds, endpoint=proxy, creds=creds), agent_bin, instance_id)
        r.admin = admin
        r.ec2 = lambda region=SRC: client(moto_auth.url, "ec2", admin, region)
        rigs.append(r)
        return r

    (tmp_path / "rig0").mkdir()
    (tmp_path / "rig1").mkdir()
    try:
        yield make
    finally:
        for r in rigs:
            r.close()


def test_iam_policy_as_shipped(auth_rig):
    """conf/iam-policy.json byte for byte under moto's enforcement, with every feature whose
    calls need no KMS key or SSM parameter ARN: copies, sharing, deprecation, launch template,
    retention (two runs, the first image deregistered)."""
    rig = auth_rig()
    rig.ec2().create_launch_template(LaunchTemplateName="web",
                                     LaunchTemplateData={"ImageId": MOTO_AMI})
    rig.configure(regions=DST[0], share_accounts=SHARE_ACCOUNT, deprecate_after_days=30,
                  keep_newest=1, launch_template="web", lineage="web")
    # moto has no EnableImageDeprecation: the proxy answers it (so moto's IAM never sees it;
    # the evaluation below does).
    rig.proxy.faults({"kind": "ok", "action": "EnableImageDeprecation", "count": 10})
    book = TagBook(rig, (SRC, DST[0]))
    book.update()
    first = done_run(rig.run_and_resume())["image_id"]
    book.update()
    second = done_run(rig.run_and_resume())["image_id"]
    left = {im["ImageId"] for im in rig.images()}
    assert second in left and first not in left
    gone = [q["params"]["ImageId"] for q in rig.sent("DeregisterImage")]
    assert first in gone and second not in gone and len(gone) == 2, gone  # and first's copy
    assert rig.sent("DeleteSnapshot"), "no snapshot left for retention to delete"
    check_requests_against_policy(rig, book)


def test_iam_policy_every_feature(auth_rig):
    """Every feature at once (KMS keys and grants, the SSM parameter too, whose statements'
    resources moto cannot match: widened for moto only), then the shape of the shipped policy
    against what was sent: every request allowed by it, with its key or parameter ARN and, for
    retention, the tags of what it deregistered or deleted; and every action it allows sent by
    some feature, or used by EC2 on the agent's behalf for an encrypted copy."""
    rig = auth_rig(for_moto(POLICY.read_text(), widen=FOR_MOTO_WIDEN + BOOT_CHECK_SIDS))
    admin = rig.admin
    kms = client(rig.moto.url, "kms", admin, DST[0])
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    rig.ec2().create_launch_template(LaunchTemplateName="web",
                                     LaunchTemplateData={"ImageId": MOTO_AMI})
    # The end of each run told to a bus and a topic the admin made.
    client(rig.moto.url, "events", admin, SRC).create_event_bus(Name="golden")
    topic = client(rig.moto.url, "sns", admin, SRC).create_topic(Name="golden")["TopicArn"]
    rig.configure(regions=DST[0], kms_key="%s:alias/golden" % DST[0],
                  share_accounts=SHARE_ACCOUNT, share_organizations=ORG, create_grants="yes",
                  grant_ttl_days=1, deprecate_after_days=30, keep_newest=1,
                  launch_template="web", ssm_parameter="/golden/web", lineage="web",
                  protect_published="yes",
                  notify={"event_bus": "golden", "sns_topic_arn": topic})
    configure_boot_check(rig)
    # The organization's statement in the key policy, as `kms-policy` prints it (GetKeyPolicy
    # in the pre-flight checks it).
    apply_kms_policy(rig, admin)
    rig.proxy.faults({"kind": "ok", "action": "EnableImageDeprecation", "count": 10})
    book = TagBook(rig, (SRC, DST[0]))
    book.update()
    with ClonePlayer(rig, "ok"):
        resumed = rig.run_and_resume()
        # Told, not only sent: moto's IAM let both through.
        assert "put on EventBridge bus golden" in resumed.err, resumed.err
        assert "published to %s" % topic in resumed.err, resumed.err
        first = done_run(resumed)["image_id"]
        book.update()
        second = done_run(rig.run_and_resume())["image_id"]
    left = {im["ImageId"] for im in rig.images()}
    # The template's default version was moved to the second image; the first one went.
    assert second in left and first not in left
    copies = {im["ImageId"] for im in rig.images(DST[0])}
    p = client(rig.moto.url, "ssm", admin, DST[0]).get_parameter(Name="/golden/web")
    assert p["Parameter"]["Value"] in copies
    # The grant, reused by the second run, expires (its time moved back two days): revoked.
    path = rig.state_dir / "state.json"
    st = json.loads(path.read_text())
    [g] = st["grants"]
    g["created_us"] -= 2 * 86400 * 10**6
    path.write_text(json.dumps(st))
    r = rig.agent("grants", "--revoke-expired", "--json")
    assert r.returncode == 0 and json.loads(r.stdout_text)["revoked"] == 1, r.err
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
    sent = check_requests_against_policy(rig, book)
    # AssumeRole is target_accounts' (test_target_accounts.py sends it under this file).
    allowed = policy_actions() - {"sts:AssumeRole"}
    assert EC2_ON_OUR_BEHALF <= allowed, EC2_ON_OUR_BEHALF - allowed
    # The console output is read only when a boot check gets no report (test_boot_check.py).
    allowed -= {"ec2:GetConsoleOutput"}
    assert allowed - EC2_ON_OUR_BEHALF == sent, (
        "allowed but never sent: %s; sent but not in the policy: %s"
        % (sorted(allowed - EC2_ON_OUR_BEHALF - sent), sorted(sent - allowed)))


def test_iam_policy_without_share_statement_fails_preflight(auth_rig):
    doc = json.loads(POLICY.read_text())
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != "DistributeShare"]
    rig = auth_rig(json.dumps(doc))
    rig.configure(share_accounts=SHARE_ACCOUNT)
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    assert "ModifyImageAttribute" in r.err + r.stdout_text, r.err
    assert rig.sent("CreateImage") == []
