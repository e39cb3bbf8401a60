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

import json
import time

import pytest

# tests/peers, on sys.path via conftest; the fixtures rig and auth_rig are conftest's.
from dist_rig import (DEADLINE, DST, MOTO_AMI, ORG, SHARE_ACCOUNT, SRC, ClonePlayer,
                      configure_boot_check, done_run, kms_key, tags_of)
from iam_policy import (BOOT_CHECK_SIDS, EC2_ON_OUR_BEHALF, FOR_MOTO_WIDEN, POLICY, TagBook,
                        check_requests_against_policy, for_moto, policy_actions)
from moto_auth import client, create_moto_instance


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
# What moto enforces of it and what each test evaluates itself: tests/peers/iam_policy.py.


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
