# SPDX-License-Identifier: Apache-2.0
"""[distribute] target_accounts end to end, against moto behind the recording fault proxy, with
two accounts (the owner, moto's default 123456789012, and the target 222222222222) and two
regions: one run encrypts the image with the owner's keys, shares it and grants the keys to the
target account, assumes the target's role, copies the image into the target account in each
region under the target's own key (what `ec2-imaged import` does), waits for the copies,
publishes them in the target's SSM parameter, and revokes the target's grants.

moto's AssumeRole into another account yields credentials that act in that account (the role
need not exist there, and neither its trust policy nor the ExternalId is checked: the request is
read from the proxy's records); moto ignores CopyImage's Encrypted and KmsKeyId (what was sent
is asserted from the records, and tests/peers/moto_server.py keeps the key a copy asked for).
The crashes are real: the proxy holds a request, the agent is killed, the request goes on.
"""

import json
from pathlib import Path

import pytest

from conftest import start_moto
from moto_auth import ALLOW_ALL, client, enable_moto_auth  # tests/peers, via conftest
from dist_rig import ACCOUNT, DEADLINE, SRC, done_run, tags_of
from iam_policy import POLICY, for_moto
from test_encrypt import wait_for

TARGET = "222222222222"
ROLE_NAME = "ec2-imaged-import"
ROLE_ARN = "arn:aws:iam::%s:role/%s" % (TARGET, ROLE_NAME)
EXTERNAL_ID = "golden-push-7"
DST = "us-west-2"
REGIONS = (SRC, DST)
PARAM = "/golden/pushed"
CONF = Path(__file__).resolve().parents[2] / "conf"
ROLE_POLICY = CONF / "iam-policy-target-role.json"
ROLE_TRUST = CONF / "iam-trust-target-role.json"


def target_creds(url, creds=None):
    """Credentials that act in the target account (an admin role there)."""
    c = client(url, "sts", creds).assume_role(
        RoleArn="arn:aws:iam::%s:role/admin" % TARGET, RoleSessionName="test",
        DurationSeconds=3600)["Credentials"]
    return c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]


class Target:
    """The target account as the test sees it."""

    def __init__(self, rig, admin=None):
        self.rig, self.creds = rig, target_creds(rig.moto.url, admin)

    def client(self, service, region):
        return client(self.rig.moto.url, service, self.creds, region)

    def images(self, region):
        return self.client("ec2", region).describe_images(Owners=["self"])["Images"]

    def key_arns(self):
        return {reg: self.client("kms", reg).describe_key(KeyId="alias/target")["KeyMetadata"][
            "Arn"] for reg in REGIONS}


def configure(rig, admin=None, **extra):
    """The owner's keys (alias/golden, both regions: the image is encrypted in place and its
    copy with them), the target's (alias/target), and the configuration that pushes."""
    owner_keys = {}
    for reg in REGIONS:
        kms = client(rig.moto.url, "kms", admin, reg)
        owner_keys[reg] = kms.create_key(Description="golden")["KeyMetadata"]
        kms.create_alias(AliasName="alias/golden", TargetKeyId=owner_keys[reg]["KeyId"])
    target = Target(rig, admin)
    for reg in REGIONS:
        kms = target.client("kms", reg)
        key = kms.create_key(Description="target")["KeyMetadata"]
        kms.create_alias(AliasName="alias/target", TargetKeyId=key["KeyId"])
    rig.configure(regions=DST, kms_key=" ".join("%s:alias/golden" % reg for reg in REGIONS),
                  target_accounts="%s:%s" % (TARGET, ROLE_NAME),
                  target_external_id=EXTERNAL_ID,
                  target_kms_key=" ".join("%s:%s:alias/target" % (TARGET, reg)
                                          for reg in REGIONS),
                  target_ssm_parameter="%s:%s" % (TARGET, PARAM), **extra)
    return owner_keys, target


def owner_key_id(rig):
    """The access key the agent signs the owner's calls with (CreateImage's)."""
    [q] = rig.sent("CreateImage")
    return q["access_key_id"]


def pushed_copies(rig):
    """The CopyImage requests signed with the target's credentials."""
    owner = owner_key_id(rig)
    return [q for q in rig.sent("CopyImage") if q["access_key_id"] != owner]


def assert_pushed(rig, j, owner_keys, target, admin=None):
    """In each region: one copy in the target account, of the run's image there, tagged with its
    source, sent encrypted with the target's key, published in its parameter; no grant of the
    owner's keys to the target is left; AssumeRole named the role and the external id."""
    sources = {d["region"]: d["image_id"] for d in j["distribution"]}
    assert set(sources) == set(REGIONS)
    records = {t["region"]: t for t in j["targets"]}
    arns = target.key_arns()
    for reg in REGIONS:
        [im] = target.images(reg)
        assert im["State"] == "available"
        assert tags_of(im)["ec2-imaged:imported-from"] == "%s/%s" % (ACCOUNT, sources[reg])
        # The run's rendered tags (its [image] tags and provenance) come along, on the snapshot
        # too (the tags of an image of any account carry the same values).
        assert j["tags"]["team"] == "platform" and "ec2-imaged:source-image" in j["tags"]
        for res in [im] + target.client("ec2", reg).describe_snapshots(
                SnapshotIds=[m["Ebs"]["SnapshotId"] for m in im["BlockDeviceMappings"]
                             if "Ebs" in m])["Snapshots"]:
            assert {k: tags_of(res).get(k) for k in j["tags"]} == j["tags"], tags_of(res)
        [ebs] = [m["Ebs"] for m in im["BlockDeviceMappings"] if "Ebs" in m]
        assert ebs.get("Encrypted") is True and ebs.get("KmsKeyId") == arns[reg], ebs
        assert records[reg] == {"account": TARGET, "region": reg, "image_id": im["ImageId"],
                                "state": "available"}
        assert target.client("ssm", reg).get_parameter(Name=PARAM)["Parameter"][
            "Value"] == im["ImageId"]
        # Shared with the target (the launch permission stays; the grants go).
        perms = client(rig.moto.url, "ec2", admin, reg).describe_image_attribute(
            ImageId=sources[reg], Attribute="launchPermission")["LaunchPermissions"]
        assert {"UserId": TARGET} in perms, reg
        grants = client(rig.moto.url, "kms", admin, reg).list_grants(
            KeyId=owner_keys[reg]["KeyId"])["Grants"]
        assert not [g for g in grants if TARGET in g["GranteePrincipal"]], grants
    # What moto ignores, as sent: one copy per region, encrypted with the target's key.
    pushed = pushed_copies(rig)
    assert {q["params"]["SourceImageId"] for q in pushed} == set(sources.values())
    for q in pushed:
        p = q["params"]
        assert p["Encrypted"] == "true" and p["KmsKeyId"] == "alias/target", p
        assert p["SourceImageId"] == sources[p["SourceRegion"]]
    # The grants were made for the target, and recorded revoked.
    made = [q for q in rig.sent("CreateGrant") if TARGET in q["json"]["GranteePrincipal"]]
    assert len(made) >= 2
    recorded = [g for g in rig.state()["grants"] if g["grantee"] == TARGET]
    assert len(recorded) == 2 and all(g["revoked_us"] > 0 for g in recorded), recorded
    assume = rig.sent("AssumeRole")
    assert assume
    for q in assume:
        assert q["params"]["RoleArn"] == ROLE_ARN
        assert q["params"]["ExternalId"] == EXTERNAL_ID
        assert q["params"]["RoleSessionName"] == "ec2-imaged-" + j["run_id"]


def test_push_into_target_account(rig):
    owner_keys, target = configure(rig)
    j = done_run(rig.run_and_resume())
    assert_pushed(rig, j, owner_keys, target)
    assert len(pushed_copies(rig)) == 2 and len(rig.sent("AssumeRole")) == 1
    # The grants went once the copies were available: after the last copy's request.
    revokes = rig.sent("RevokeGrant")
    assert len(revokes) == 2
    assert min(q["time"] for q in revokes) > max(q["time"] for q in pushed_copies(rig))


def crash_with(rig, fault, what):
    """`resume` with a request held in the proxy (fault): the agent is killed while it waits
    for the answer, then the request goes on.  Returns the run state left behind."""
    rig.proxy.faults(dict(fault, kind="hold", delay_ms=60000))
    p = rig.start("resume", "--json")
    wait_for(lambda: p.poll() is not None or [
        q for q in rig.proxy.requests() if q["fault"] == "hold"], "never reached " + what)
    assert p.poll() is None, "the run ended before " + what
    p.kill()
    p.wait(timeout=DEADLINE)
    rig.proxy.release()
    return rig.state()["current"]


def test_crash_after_assume_role_resumes(rig):
    owner_keys, target = configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    # The first call made with the role's credentials.
    st = crash_with(rig, {"not_access_key_id": owner_key_id(rig)}, "the target's first call")
    assert st["phase"] == "distributing"
    assert st["targets"][0]["state"] == "copying" and not st["targets"][0]["image_id"]
    j = done_run(rig.agent("resume", "--json"))
    assert_pushed(rig, j, owner_keys, target)
    assert len(pushed_copies(rig)) == 2 and len(rig.sent("AssumeRole")) == 2


def test_crash_while_target_copy_is_held_resumes_with_one_copy(rig):
    owner_keys, target = configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    st = crash_with(rig, {"action": "CopyImage", "not_access_key_id": owner_key_id(rig)},
                    "the target's CopyImage")
    [rec] = st["targets"]
    assert rec["state"] == "copying" and not rec["image_id"]
    wait_for(lambda: target.images(rec["region"]), "the held CopyImage never made its copy")
    j = done_run(rig.agent("resume", "--json"))
    assert_pushed(rig, j, owner_keys, target)
    # The copy made by the killed run was adopted: one request per region.
    assert len(pushed_copies(rig)) == 2


def test_crash_while_role_is_assumed_resumes(rig):
    owner_keys, target = configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    st = crash_with(rig, {"action": "AssumeRole"}, "AssumeRole")
    # Killed before it had the role: nothing of the target's recorded, nothing copied, and its
    # grants recorded (to be revoked) and standing (its copies still need them).
    assert st["phase"] == "distributing" and not st.get("targets"), st
    granted = [g for g in rig.state()["grants"] if g["grantee"] == TARGET]
    assert len(granted) == 2 and not any(g.get("revoked_us") for g in granted), granted
    for reg in REGIONS:
        assert not target.images(reg), reg
        grants = client(rig.moto.url, "kms", None, reg).list_grants(
            KeyId=owner_keys[reg]["KeyId"])["Grants"]
        assert [g for g in grants if TARGET in g["GranteePrincipal"]], (reg, grants)
    j = done_run(rig.agent("resume", "--json"))
    assert_pushed(rig, j, owner_keys, target)
    # The role assumed again (its credentials died with the run), the keys not granted again.
    assert len(pushed_copies(rig)) == 2 and len(rig.sent("AssumeRole")) == 2
    assert len([q for q in rig.sent("CreateGrant")
                if TARGET in q["json"]["GranteePrincipal"]]) == 2


@pytest.mark.parametrize("action,by_target", [("PutParameter", True), ("CreateGrant", False)])
def test_crash_at_other_steps_resumes(rig, action, by_target):
    """Held while the target's parameter is written (its copy made, not yet recorded available),
    while the owner grants a key: the same end, one copy each."""
    owner_keys, target = configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    fault = {"action": action}
    if by_target:
        fault["not_access_key_id"] = owner_key_id(rig)
    crash_with(rig, fault, action)
    j = done_run(rig.agent("resume", "--json"))
    assert_pushed(rig, j, owner_keys, target)
    assert len(pushed_copies(rig)) == 2


def test_crash_before_revoke_resumes_without_leftover_grant(rig):
    owner_keys, target = configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    st = crash_with(rig, {"action": "RevokeGrant"}, "RevokeGrant")
    assert all(t["state"] == "available" for t in st["targets"]) and len(st["targets"]) == 2
    j = done_run(rig.agent("resume", "--json"))
    assert_pushed(rig, j, owner_keys, target)
    # Copies all recorded: the resumed run neither assumed the role again nor copied.
    assert len(pushed_copies(rig)) == 2 and len(rig.sent("AssumeRole")) == 1


def test_target_words_are_checked_when_read(rig):
    rig.configure(target_accounts="2222:ec2-imaged-import")
    r = rig.agent("check")
    assert r.returncode != 0
    assert "target_accounts" in r.err and "'2222:ec2-imaged-import'" in r.err, r.err
    rig.configure(target_accounts="%s:%s" % (TARGET, ROLE_NAME),
                  target_kms_key="%s:us_east_1:alias/k" % TARGET)
    r = rig.agent("check")
    assert r.returncode != 0 and "target_kms_key" in r.err and "us_east_1" in r.err, r.err


def test_target_account_without_key_for_a_region_is_refused_before_create_image(rig):
    configure(rig)
    rig.configure(regions=DST, kms_key="%s:alias/golden" % DST,
                  target_accounts="%s:%s" % (TARGET, ROLE_NAME),
                  target_kms_key="%s:%s:alias/target" % (TARGET, SRC))
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode != 0
    err = r.err + r.stdout_text
    assert "target_kms_key" in err and DST in err and TARGET in err, err
    assert rig.sent("CreateImage") == []


def shipped_trust(owner_principal):
    """conf/iam-trust-target-role.json with its placeholders filled in."""
    text = ROLE_TRUST.read_text()
    arn = owner_principal
    return text.replace("arn:aws:iam::OWNER_ACCOUNT_ID:role/OWNER_INSTANCE_ROLE", arn).replace(
        "EXTERNAL_ID", EXTERNAL_ID)


def test_trust_policy_shape():
    """moto never evaluates a trust policy across accounts: its shape is checked here."""
    doc = json.loads(shipped_trust("arn:aws:iam::%s:role/i" % ACCOUNT))
    [st] = doc["Statement"]
    assert st["Effect"] == "Allow" and st["Action"] == "sts:AssumeRole"
    assert st["Principal"] == {"AWS": "arn:aws:iam::%s:role/i" % ACCOUNT}
    assert st["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}


@pytest.fixture
def moto_auth(moto_python, request):
    """moto with authentication on, and in the target account, made before it was switched
    on: an admin role for the test and the role the owner assumes, with
    conf/iam-policy-target-role.json (its KMS and SSM resources widened: moto's enforcement
    compares them with "*") and the shipped trust policy."""
    peer = start_moto(moto_python, request)
    try:
        iam = client(peer.url, "iam", target_creds(peer.url))
        anyone = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
        iam.create_role(RoleName="admin", AssumeRolePolicyDocument=anyone)
        iam.put_role_policy(RoleName="admin", PolicyName="allow", PolicyDocument=ALLOW_ALL)
        iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=shipped_trust(
            "arn:aws:iam::%s:user/ec2-imaged-0" % ACCOUNT))
        iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="import", PolicyDocument=for_moto(
            ROLE_POLICY.read_text(), widen=("ImportKmsKeys", "ImportSsmParameter")))
        peer.access_key_id, peer.secret_access_key = enable_moto_auth(peer.url)
        peer.creds = (peer.access_key_id, peer.secret_access_key)
        yield peer
    finally:
        peer.stop()


def test_push_under_the_iam_policies(auth_rig):
    """The owner's conf/iam-policy.json and the target role's conf/iam-policy-target-role.json
    under moto's enforcement (KMS and SSM resources widened for moto): the whole push."""
    rig = auth_rig(for_moto(POLICY.read_text()))
    owner_keys, target = configure(rig, rig.admin)
    j = done_run(rig.run_and_resume())
    assert_pushed(rig, j, owner_keys, target, rig.admin)
    # The role's file allows what its calls need and nothing else but what EC2 does with the
    # caller's permissions when CopyImage encrypts (CreateGrant on the key among them).
    owner = owner_key_id(rig)
    sent = {service(q) + ":" + q["action"] for q in rig.proxy.requests()
            if q["action"] and q["access_key_id"] not in (owner, None)}
    allowed = {a for st in json.loads(ROLE_POLICY.read_text())["Statement"] for a in st["Action"]}
    assert sent <= allowed, sent - allowed
    assert allowed - sent == {"kms:CreateGrant", "kms:Decrypt", "kms:ReEncryptFrom",
                              "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext"}, sent


def service(q):
    target = {k.lower(): v for k, v in q["headers"]}.get("x-amz-target", "")
    if target.startswith("TrentService."):
        return "kms"
    return "ssm" if target.startswith("AmazonSSM.") else "ec2"
