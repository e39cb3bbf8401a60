# SPDX-License-Identifier: Apache-2.0
"""What cannot work is refused by the pre-flight (`check`, and the start of every run, before
CreateImage and so before any freeze or reboot), against moto behind the recording fault proxy:

- an instance of an AWS Marketplace image (product codes) is not shared: EC2 would refuse;
- sharing DryRuns ModifySnapshotAttribute on a snapshot of the lineage's last image, and KMS
  CreateGrant on each key for each account the run grants it to (share_accounts with
  create_grants, and target accounts); a denied DryRun (moto's IAM enforcement) stops the run,
  naming the call;
- public sharing (`all`) is refused as a configuration error.

The tests' moto (tests/peers/moto_server.py) lets ModifyImageAttribute set product codes (moto
has no way to) and honours CreateGrant's DryRun (moto ignores it and makes the grant); what was
sent is read from the proxy's records.  Every run is `--mode reboot` against moto: nothing is
frozen here.
"""

import json

import pytest

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest
from dist_rig import ACCOUNT, DST, MOTO_AMI, ORG, SHARE_ACCOUNT, SRC, Rig, done_run, kms_key
from iam_policy import POLICY, for_moto

CODE = "8fsgd7m3k8bgn1c6rvw1ymq4b"


def distribute_item(c):
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    return item


def nothing_made(rig):
    """Nothing but DryRuns of the calls that change anything: no image, copy, share, grant."""
    for action in ("CreateImage", "CopyImage", "ModifyImageAttribute", "ModifySnapshotAttribute",
                   "CreateGrant"):
        assert rig.sent(action) == [], action


@pytest.fixture
def market_rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """We are an instance launched from an image with an AWS Marketplace product code."""
    ec2 = client(moto.url, "ec2", region=SRC)
    builder = create_moto_instance(moto.url, region=SRC, image_id=MOTO_AMI)
    image = ec2.create_image(InstanceId=builder, Name="marketplace", NoReboot=True)["ImageId"]
    ec2.modify_image_attribute(ImageId=image, ProductCodes=[CODE])
    instance_id = create_moto_instance(moto.url, region=SRC, image_id=image)
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT, ami_id=image)
    proxy = fault_proxy(moto)
    r = Rig(tmp_path, moto, proxy, agent_env(imds=imds, endpoint=proxy), agent_bin, instance_id)
    r.image = image
    try:
        yield r
    finally:
        r.close()


@pytest.mark.parametrize("share", [{"share_accounts": SHARE_ACCOUNT},
                                   {"share_organizations": ORG}])
def test_marketplace_image_is_not_shared(market_rig, share):
    rig = market_rig
    rig.configure(**share)
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    item = distribute_item(c)
    assert item["result"] == "failed", item
    assert CODE in item["detail"] and "AWS Marketplace" in item["detail"], item
    assert "share_accounts" in item["detail"], item
    # Found by DescribeInstances of this instance (EC2 lists its image's codes there too).
    assert any(q["action"] == "DescribeInstances" and
               q["params"].get("InstanceId.1") == rig.instance_id for q in rig.proxy.requests())

    rig.proxy.clear()
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1, r.err
    assert CODE in r.err + r.stdout_text, r.err
    nothing_made(rig)
    assert {im["ImageId"] for im in rig.images()} == {rig.image}


def test_marketplace_image_copied_in_own_account(market_rig):
    """Without sharing, product codes do not matter: a copy to another region of this account
    is allowed, and the pre-flight does not look at them."""
    rig = market_rig
    rig.configure(regions=DST[0])
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    assert CODE not in distribute_item(c)["detail"]


def test_source_image_product_codes_named(rig):
    """The instance of moto's own AMI has no product codes: the check says so, and names the
    image it looked at (DescribeImages of it whoever owns it: no Owner filter)."""
    rig.configure(share_accounts=SHARE_ACCOUNT)
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    detail = distribute_item(c)["detail"]
    assert "product codes: none of AWS Marketplace on instance %s or its image %s" % (
        rig.instance_id, MOTO_AMI) in detail, detail
    [q] = [q for q in rig.proxy.requests() if q["action"] == "DescribeImages"
           and q["params"].get("ImageId.1") == MOTO_AMI]
    assert "Owner.1" not in q["params"], q


def test_dry_runs_snapshot_permission_and_grants(rig):
    key = kms_key(rig, DST[0], "alias/golden")
    rig.configure(regions=DST[0], kms_key="%s:alias/golden" % DST[0],
                  share_accounts=SHARE_ACCOUNT, create_grants="yes", lineage="web")
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    detail = distribute_item(c)["detail"]
    # Before the lineage's first image there is no snapshot to name.
    assert "DryRun ModifySnapshotAttribute in %s: not tried, no snapshot of an image of " \
        "lineage web made by ec2-imaged yet" % SRC in detail, detail
    assert "DryRun KMS CreateGrant on %s for %s in %s: allowed" % (
        key["Arn"], SHARE_ACCOUNT, DST[0]) in detail, detail
    [q] = [q for q in rig.proxy.requests() if q["action"] == "CreateGrant"]
    assert q["json"]["DryRun"] is True and q["json"]["KeyId"] == key["Arn"], q
    assert q["json"]["GranteePrincipal"] == "arn:aws:iam::%s:root" % SHARE_ACCOUNT, q
    assert "ModifySnapshotAttribute" not in {q["action"] for q in rig.proxy.requests()}
    # The DryRun made no grant.
    assert client(rig.moto.url, "kms", region=DST[0]).list_grants(
        KeyId=key["KeyId"])["Grants"] == []

    # After a run, the DryRun names a snapshot of that run's image, for the shared accounts.
    image = done_run(rig.run_and_resume())["image_id"]
    snaps = {b["Ebs"]["SnapshotId"] for b in rig.ec2().describe_images(
        ImageIds=[image])["Images"][0]["BlockDeviceMappings"]}
    rig.proxy.clear()
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    assert "DryRun ModifySnapshotAttribute in %s: allowed" % SRC in distribute_item(c)["detail"]
    [q] = [q for q in rig.proxy.requests() if q["action"] == "ModifySnapshotAttribute"]
    p = q["params"]
    assert p["DryRun"] == "true" and p["SnapshotId"] in snaps, q
    assert p["UserId.1"] == SHARE_ACCOUNT and p["OperationType"] == "add", q
    assert p["Attribute"] == "createVolumePermission", q


def without_action(action, document=None):
    doc = json.loads(document or POLICY.read_text())
    for s in doc["Statement"]:
        s["Action"] = [a for a in s["Action"] if a != action]
    return json.dumps(doc)


def test_denied_snapshot_dry_run_stops_the_run(auth_rig):
    # A first run, with the policy as shipped, leaves an image of the lineage.
    first = auth_rig()
    first.configure(share_accounts=SHARE_ACCOUNT, lineage="web")
    done_run(first.run_and_resume())
    rig = auth_rig(without_action("ec2:ModifySnapshotAttribute"))
    rig.configure(share_accounts=SHARE_ACCOUNT, lineage="web")
    rig.proxy.clear()
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    assert "DryRun ModifySnapshotAttribute in %s" % SRC in distribute_item(c)["detail"]
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    assert "DryRun ModifySnapshotAttribute in %s" % SRC in r.err + r.stdout_text, r.err
    nothing_made(rig)


def test_denied_grant_dry_run_stops_the_run(auth_rig):
    rig = auth_rig(without_action("kms:CreateGrant", for_moto(POLICY.read_text())))
    kms = client(rig.moto.url, "kms", rig.admin, DST[0])
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    rig.configure(regions=DST[0], kms_key="%s:alias/golden" % DST[0],
                  share_accounts=SHARE_ACCOUNT, create_grants="yes")
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    out = r.err + r.stdout_text
    assert "DryRun KMS CreateGrant on %s for %s in %s is not permitted" % (
        key["Arn"], SHARE_ACCOUNT, DST[0]) in out, out
    [q] = [q for q in rig.proxy.requests() if q["action"] == "CreateGrant"]
    assert q["json"]["DryRun"] is True
    nothing_made(rig)


@pytest.mark.parametrize("share", [{"share_accounts": "all"},
                                   {"share_accounts": "%s all" % SHARE_ACCOUNT},
                                   {"share_organizations": "all"}, {"share_ous": "all"}])
def test_public_sharing_refused(rig, share):
    kms_key(rig, DST[0], "alias/golden")
    rig.configure(regions=DST[0], kms_key="%s:alias/golden" % DST[0], **share)
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    item = distribute_item(c)
    assert item["result"] == "failed" and "'all' is not" in item["detail"], item
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1 and "'all' is not" in r.err + r.stdout_text, r.err
    nothing_made(rig)


def test_copy_key_this_account_cannot_use_named(rig):
    """A copy whose key KMS does not know in the destination region (or will not describe to
    this account) stops the run before CreateImage, naming the key and the region."""
    rig.configure(regions=DST[0], kms_key="%s:alias/nobody-made-this" % DST[0])
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    item = distribute_item(c)
    assert "KMS DescribeKey alias/nobody-made-this in %s: NotFoundException" % DST[0] \
        in item["detail"], item
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1 and "alias/nobody-made-this" in r.err + r.stdout_text, r.err
    nothing_made(rig)


def encrypted_rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin, key):
    """We are an instance whose root volume is encrypted with key (an id or alias)."""
    ec2 = client(moto.url, "ec2", region=SRC)
    root = ec2.describe_images(ImageIds=[MOTO_AMI])["Images"][0]["RootDeviceName"]
    instance_id = ec2.run_instances(
        ImageId=MOTO_AMI, MinCount=1, MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": root, "Ebs": {
            "VolumeSize": 8, "Encrypted": True, "KmsKeyId": key}}])["Instances"][0]["InstanceId"]
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT)
    proxy = fault_proxy(moto)
    return Rig(tmp_path, moto, proxy, agent_env(imds=imds, endpoint=proxy), agent_bin,
               instance_id)


@pytest.fixture
def volume_rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    rigs = []

    def make(key):
        rigs.append(encrypted_rig(tmp_path, moto, fault_proxy, imds_factory, agent_env,
                                  agent_bin, key))
        return rigs[-1]

    try:
        yield make
    finally:
        for r in rigs:
            r.close()


def test_volume_key_checked_before_the_image_is_made(moto, volume_rig):
    """Sharing an image of volumes encrypted with a customer key, without a key of the run's
    region to re-encrypt it: the pre-flight describes the volumes' key and DryRuns the grant on
    it; a disabled key stops the run, named, before CreateImage."""
    kms = client(moto.url, "kms", region=SRC)
    key = kms.create_key(Description="volumes")["KeyMetadata"]
    rig = volume_rig(key["KeyId"])
    rig.configure(share_accounts=SHARE_ACCOUNT, create_grants="yes")
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    detail = distribute_item(c)["detail"]
    assert "DryRun KMS CreateGrant on %s for %s in %s: allowed" % (
        key["Arn"], SHARE_ACCOUNT, SRC) in detail, detail
    assert any(q["action"] == "DescribeVolumes" for q in rig.proxy.requests())
    [q] = [q for q in rig.proxy.requests() if q["action"] == "CreateGrant"]
    assert q["json"]["DryRun"] is True and q["json"]["KeyId"] == key["Arn"], q

    kms.disable_key(KeyId=key["KeyId"])
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    assert "KMS key %s in %s is Disabled" % (key["KeyId"], SRC) in r.err + r.stdout_text, r.err
    nothing_made(rig)


def test_volumes_on_aws_managed_key_not_shared(volume_rig):
    """Volumes encrypted with the AWS-managed key: the image would be too, and cannot be shared;
    refused before CreateImage, naming the key.  (moto keeps the alias the volume was made with
    and says CUSTOMER of every key: the alias/aws/ prefix is what tells here; EC2 gives the key's
    ARN and KMS says AWS.)"""
    rig = volume_rig("alias/aws/ebs")
    rig.configure(share_accounts=SHARE_ACCOUNT)
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    out = r.err + r.stdout_text
    assert "AWS-managed KMS key alias/aws/ebs" in out and "kms_key = %s:" % SRC in out, out
    nothing_made(rig)


TARGET = "222222222222"


def test_denied_grant_for_a_target_account_stops_the_run(auth_rig):
    """A target account gets a grant on each key of the run's images whatever create_grants says
    (its copy needs it): the pre-flight DryRuns that grant as the run would make it, and a
    refused one stops the run before CreateImage, naming the key and the target account."""
    rig = auth_rig(without_action("kms:CreateGrant", for_moto(POLICY.read_text())))
    kms = client(rig.moto.url, "kms", rig.admin, SRC)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    rig.configure(kms_key="%s:alias/golden" % SRC,
                  target_accounts="%s:ec2-imaged-import" % TARGET,
                  target_kms_key="%s:%s:alias/target" % (TARGET, SRC))
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    want = "DryRun KMS CreateGrant on %s for %s in %s is not permitted: AccessDenied" % (
        key["Arn"], TARGET, SRC)
    assert want in distribute_item(c)["detail"], distribute_item(c)
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    assert want in r.err + r.stdout_text, r.err
    # One DryRun by `check`, one by the run: for the target account, on the key's ARN.
    grants = [q["json"] for q in rig.proxy.requests() if q["action"] == "CreateGrant"]
    assert [(g["DryRun"], g["KeyId"], g["GranteePrincipal"]) for g in grants] == \
        [(True, key["Arn"], "arn:aws:iam::%s:root" % TARGET)] * 2, grants
    nothing_made(rig)
