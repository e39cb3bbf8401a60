# SPDX-License-Identifier: Apache-2.0
"""The recipient's side of sharing, `ec2-imaged import`, end to end against moto behind the
recording fault proxy, with two accounts: the owner (123456789012, moto's default account)
makes an image and shares it with the recipient (222222222222); the agent runs as the
recipient with nothing but AWS_PROFILE and the shared files (a profile that assumes a role in
the recipient's account with a source profile's static keys), no AWS_ACCESS_KEY_ID, no
AWS_REGION (the profile's region), and an IMDS server that counts every request it gets: it
must get none.

moto keeps each account's images apart and ignores CopyImage's Encrypted, KmsKeyId and
TagSpecification: the tests' moto (tests/peers/moto_server.py) shows an image to the accounts it
is shared with (DescribeImages by id, CopyImage), answers DescribeKey on another account's key
to an account it granted DescribeKey to, honours CopyImage's ClientToken and keeps the key a
copy was asked to be encrypted with; what was sent is asserted from the proxy's records.
"""

import json
import subprocess

import pytest

from conftest import start_moto
from moto_auth import ALLOW_ALL, client, create_moto_instance, enable_moto_auth  # tests/peers
from iam_policy import EC2_ON_OUR_BEHALF, POLICY, for_moto, policy_actions, policy_verdict

REGION = "us-east-1"
OWNER = "123456789012"  # moto's default account: the "testing" keys act in it
RECIPIENT = "222222222222"
ROLE = "arn:aws:iam::%s:role/importer" % RECIPIENT
AGENT_TIMEOUT = 120
# The source profile's keys: any well-formed pair acts in the owner's account while moto's
# authentication is off.
BASE_CREDS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def assume(endpoint, role_arn, creds=None):
    c = client(endpoint, "sts", creds).assume_role(
        RoleArn=role_arn, RoleSessionName="test", DurationSeconds=3600)["Credentials"]
    return c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]


class Accounts:
    """moto (behind the proxy) with an owner and a recipient, the recipient's profile files, and
    the agent run as the recipient."""

    def __init__(self, tmp, moto, proxy, imds, env, agent_bin, owner_creds=None,
                 base_creds=BASE_CREDS, recipient_creds=None):
        self.tmp, self.moto, self.proxy, self.imds = tmp, moto, proxy, imds
        self.agent_bin = agent_bin
        self.owner_creds = owner_creds  # None: moto's default ("testing") keys
        self.recipient_creds = recipient_creds or assume(
            moto.url, "arn:aws:iam::%s:role/admin" % RECIPIENT)
        creds = tmp / "credentials"
        creds.write_text("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                         % base_creds)
        conf = tmp / "config"
        conf.write_text("[profile recipient]\nrole_arn = %s\nsource_profile = base\n"
                        "region = %s\n" % (ROLE, REGION))
        self.config = tmp / "ec2-imaged.conf"
        self.config.write_text("[aws]\nmax_attempts = 2\nretry_deadline_ms = 10000\n"
                               "[run]\nwait_timeout_s = 60\nwait_poll_max_s = 1\n")
        self.env = dict(env, AWS_PROFILE="recipient", AWS_CONFIG_FILE=str(conf),
                        AWS_SHARED_CREDENTIALS_FILE=str(creds))
        assert not any(k in self.env for k in ("AWS_ACCESS_KEY_ID", "AWS_REGION",
                                               "AWS_DEFAULT_REGION"))

    def owner(self, service):
        return client(self.moto.url, service, self.owner_creds, REGION)

    def recipient(self, service):
        return client(self.moto.url, service, self.recipient_creds, REGION)

    def shared_image(self, name="golden-1", share=True):
        """An image of the owner's (made from an instance), shared with the recipient."""
        instance = create_moto_instance(self.moto.url, self.owner_creds, region=REGION)
        image = self.owner("ec2").create_image(InstanceId=instance, Name=name)["ImageId"]
        if share:
            self.owner("ec2").modify_image_attribute(
                ImageId=image, LaunchPermission={"Add": [{"UserId": RECIPIENT}]})
        return image

    def recipient_key(self, alias="alias/mine"):
        kms = self.recipient("kms")
        key = kms.create_key(Description="recipient")["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        return key

    def agent(self, *args):
        p = subprocess.run([self.agent_bin, "--config", str(self.config), *args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=self.env, timeout=AGENT_TIMEOUT)
        assert "ERROR: AddressSanitizer" not in p.stderr, p.stderr
        return p

    def imported(self, *args):
        p = self.agent("import", *args, "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def copies_sent(self):
        return [q for q in self.proxy.requests()
                if q["action"] == "CopyImage" and q["params"].get("DryRun") != "true"]

    def recipient_images(self):
        return self.recipient("ec2").describe_images(Owners=["self"])["Images"]

    def imds_hits(self):
        return self.imds.stats()["total"]


@pytest.fixture
def accounts(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    imds = imds_factory()
    proxy = fault_proxy(moto)
    return Accounts(tmp_path, moto, proxy, imds, agent_env(imds=imds, endpoint=proxy),
                    agent_bin)


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_import_copies_shared_image_with_profile_only(accounts):
    source = accounts.shared_image()
    key = accounts.recipient_key()
    j = accounts.imported(source, "--kms-key", "alias/mine")
    assert j["source_account"] == OWNER and j["region"] == REGION
    assert j["account"] == RECIPIENT and j["adopted"] is False
    assert j["kms_key"] == key["Arn"]
    # The copy is the recipient's, named as the source, tagged with where it came from, and
    # encrypted with the recipient's key (as CopyImage asked: moto_server.py keeps it).
    [im] = accounts.recipient_images()
    assert im["ImageId"] == j["image_id"] and im["OwnerId"] == RECIPIENT
    assert im["Name"] == "golden-1" and im["State"] == "available"
    assert tags_of(im)["ec2-imaged:imported-from"] == "%s/%s" % (OWNER, source)
    [ebs] = [m["Ebs"] for m in im["BlockDeviceMappings"] if "Ebs" in m]
    assert ebs.get("Encrypted") is True and ebs.get("KmsKeyId") == key["Arn"], ebs
    snap = accounts.recipient("ec2").describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])
    assert tags_of(snap["Snapshots"][0])["ec2-imaged:imported-from"] == "%s/%s" % (OWNER,
                                                                                   source)
    # What moto ignores, as sent: Encrypted, the key, a deterministic token.
    [q] = accounts.copies_sent()
    p = q["params"]
    assert p["SourceImageId"] == source and p["SourceRegion"] == REGION
    assert p["Encrypted"] == "true" and p["KmsKeyId"] == "alias/mine"
    assert p["ClientToken"].startswith("import-") and len(p["ClientToken"]) <= 64
    assert p["TagSpecification.1.ResourceType"] == "image"
    assert p["TagSpecification.1.Tag.1.Key"] == "ec2-imaged:imported-from"
    # The recipient's credentials came from the profile's role, and IMDS was never asked.
    sts = [r for r in accounts.proxy.requests() if r["action"] == "AssumeRole"]
    assert sts and sts[0]["params"]["RoleArn"] == ROLE
    assert accounts.imds_hits() == 0
    token = p["ClientToken"]

    # Again: the copy is found and adopted, not made twice.
    again = accounts.imported(source, "--kms-key", "alias/mine")
    assert again["image_id"] == j["image_id"] and again["adopted"] is True
    assert len(accounts.copies_sent()) == 1 and len(accounts.recipient_images()) == 1
    assert accounts.imds_hits() == 0
    assert token == accounts.copies_sent()[0]["params"]["ClientToken"]


def test_import_text_output_and_options_after_the_id(accounts):
    source = accounts.shared_image(name="golden-2")
    accounts.recipient_key()
    p = accounts.agent("import", source, "--region", REGION, "--kms-key", "alias/mine",
                       "--name", "imported-golden")
    assert p.returncode == 0, p.stderr
    [im] = accounts.recipient_images()
    assert im["Name"] == "imported-golden"
    assert p.stdout.startswith("imported %s/%s from %s as %s in %s" % (
        OWNER, source, REGION, im["ImageId"], REGION)), p.stdout


@pytest.mark.parametrize("fault", ["drop_response", "duplicate_name"])
def test_lost_copy_answer_is_adopted(accounts, fault):
    """CopyImage made the copy but its answer was lost (every attempt's connection dropped, so
    that the import fails) or said the name is taken: the copy is found by name and source and
    adopted, and no second CopyImage is sent."""
    source = accounts.shared_image()
    accounts.recipient_key()
    accounts.proxy.faults({"kind": fault, "action": "CopyImage", "count": 2})
    p = accounts.agent("import", source, "--kms-key", "alias/mine", "--json")
    sent = len(accounts.copies_sent())
    if fault == "drop_response":
        assert p.returncode == 1, p.stderr
        assert "CopyImage" in p.stderr
        assert sent == 2  # the client's own retry, with the same token
        j = accounts.imported(source, "--kms-key", "alias/mine")
    else:
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        assert sent == 1
    assert j["adopted"] is True
    [im] = accounts.recipient_images()
    assert im["ImageId"] == j["image_id"]
    assert tags_of(im)["ec2-imaged:imported-from"] == "%s/%s" % (OWNER, source)
    assert len(accounts.copies_sent()) == sent


def test_unshared_image_is_refused(accounts):
    source = accounts.shared_image(share=False)
    accounts.recipient_key()
    p = accounts.agent("import", source, "--kms-key", "alias/mine")
    assert p.returncode == 3, p.stderr
    assert "image %s in %s is not shared with %s (or does not exist)" % (
        source, REGION, RECIPIENT) in p.stderr, p.stderr
    assert accounts.copies_sent() == [] and accounts.recipient_images() == []
    # With --json too, the error is in the result.
    p = accounts.agent("import", source, "--kms-key", "alias/mine", "--json")
    assert p.returncode == 3
    assert "is not shared with %s" % RECIPIENT in json.loads(p.stdout)["error"]
    assert accounts.imds_hits() == 0


def test_aws_managed_key_is_refused(accounts):
    source = accounts.shared_image()
    p = accounts.agent("import", source, "--kms-key", "alias/aws/ebs")
    assert p.returncode == 3, p.stderr
    assert "alias/aws/ebs" in p.stderr and "AWS-managed" in p.stderr, p.stderr
    assert accounts.copies_sent() == [] and accounts.recipient_images() == []


def test_disabled_key_is_refused(accounts):
    source = accounts.shared_image()
    key = accounts.recipient_key()
    accounts.recipient("kms").disable_key(KeyId=key["KeyId"])
    p = accounts.agent("import", source, "--kms-key", "alias/mine")
    assert p.returncode == 3, p.stderr
    assert "is Disabled, not Enabled" in p.stderr, p.stderr
    assert accounts.copies_sent() == []


def test_source_key_without_grant_is_refused_then_granted(accounts):
    """An image encrypted with the owner's key: refused, naming the key, until the owner grants
    the recipient's account the use of it."""
    plain = accounts.shared_image(share=False)
    okms = accounts.owner("kms")
    okey = okms.create_key(Description="owner")["KeyMetadata"]
    ec2 = accounts.owner("ec2")
    source = ec2.copy_image(SourceImageId=plain, SourceRegion=REGION, Name="golden-enc",
                            Encrypted=True, KmsKeyId=okey["KeyId"])["ImageId"]
    ec2.modify_image_attribute(ImageId=source,
                               LaunchPermission={"Add": [{"UserId": RECIPIENT}]})
    accounts.recipient_key()
    p = accounts.agent("import", source, "--kms-key", "alias/mine")
    assert p.returncode == 3, p.stderr
    assert "the KMS key %s that encrypts %s's snapshots grants %s no access" % (
        okey["Arn"], source, RECIPIENT) in p.stderr, p.stderr
    assert accounts.copies_sent() == []
    okms.create_grant(KeyId=okey["KeyId"], GranteePrincipal="arn:aws:iam::%s:root" % RECIPIENT,
                      Operations=["Decrypt", "DescribeKey", "ReEncryptFrom", "CreateGrant"])
    j = accounts.imported(source, "--kms-key", "alias/mine")
    assert j["adopted"] is False and len(accounts.copies_sent()) == 1


def test_publishes_launch_template_and_ssm_parameter(accounts):
    source = accounts.shared_image()
    accounts.recipient_key()
    accounts.recipient("ec2").create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"InstanceType": "t3.micro"})
    j = accounts.imported(source, "--kms-key", "alias/mine", "--launch-template", "web",
                          "--ssm-parameter", "/golden/web")
    ssm = accounts.recipient("ssm").get_parameter(Name="/golden/web")["Parameter"]
    assert ssm["Value"] == j["image_id"]
    versions = accounts.recipient("ec2").describe_launch_template_versions(
        LaunchTemplateName="web", Versions=["$Default"])["LaunchTemplateVersions"]
    assert versions[0]["LaunchTemplateData"]["ImageId"] == j["image_id"]
    assert str(versions[0]["VersionNumber"]) == j["launch_template_version"]
    # Again: the version that holds the image is reused, none made.
    again = accounts.imported(source, "--kms-key", "alias/mine", "--launch-template", "web")
    assert again["launch_template_version"] == j["launch_template_version"]
    made = [q for q in accounts.proxy.requests() if q["action"] == "CreateLaunchTemplateVersion"]
    assert len(made) == 1


# ---------------------------------------------------------------- the recipient's IAM policy
#
# conf/iam-policy-recipient.json under moto's IAM enforcement (what moto enforces and what the
# test evaluates itself: see tests/peers/iam_policy.py). The recipient's
# roles are made in its account before moto's authentication is switched on (after that, nobody
# could make the first one there); the agent then assumes the importer role, which has only the
# shipped document (with the KMS and SSM statements' Resource widened to "*" for moto).


RECIPIENT_POLICY = POLICY.parent / "iam-policy-recipient.json"
# What EC2 does with the caller's permissions when CopyImage encrypts with a customer key (the
# EBS encryption requirements); the agent itself sends none of these for an import.
# The recipient launches nothing: no PassRole (which the owner's boot check needs).
EC2_ON_OUR_BEHALF_IMPORT = (EC2_ON_OUR_BEHALF - {"iam:PassRole"}) | {"kms:CreateGrant"}


@pytest.fixture
def moto_two_accounts(moto_python, request):
    """A moto of its own: the recipient's admin and importer roles, then authentication on.
    Yields the Peer with .admin: the owner's admin keys (moto_auth.enable_moto_auth)."""
    peer = start_moto(moto_python, request)
    try:
        boot = assume(peer.url, "arn:aws:iam::%s:role/admin" % RECIPIENT)
        iam = client(peer.url, "iam", boot)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
        for name, doc in (("admin", ALLOW_ALL),
                          ("importer", for_moto(RECIPIENT_POLICY.read_text(),
                                                ("ImportKmsKeys", "ImportSsmParameter")))):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
            iam.put_role_policy(RoleName=name, PolicyName="policy", PolicyDocument=doc)
        peer.admin = enable_moto_auth(peer.url)
        yield peer
    finally:
        peer.stop()


def test_iam_policy_recipient(tmp_path, moto_two_accounts, fault_proxy, imds_factory,
                              agent_env, agent_bin):
    """An import with every feature (a source encrypted with the owner's key, granted; the
    launch template; the SSM parameter) as a role with only the shipped recipient policy: it
    works under moto's enforcement, every request is allowed by the shipped document evaluated
    here (with the KMS key's and the parameter's ARNs), and every action it allows is sent or
    is one EC2 uses on the caller's behalf."""
    moto = moto_two_accounts
    imds = imds_factory()
    proxy = fault_proxy(moto)
    a = Accounts(tmp_path, moto, proxy, imds, agent_env(imds=imds, endpoint=proxy), agent_bin,
                 owner_creds=moto.admin, base_creds=moto.admin,
                 recipient_creds=assume(moto.url, "arn:aws:iam::%s:role/admin" % RECIPIENT,
                                        moto.admin))
    plain = a.shared_image(share=False)
    okms = a.owner("kms")
    okey = okms.create_key(Description="owner")["KeyMetadata"]
    source = a.owner("ec2").copy_image(SourceImageId=plain, SourceRegion=REGION,
                                       Name="golden-enc", Encrypted=True,
                                       KmsKeyId=okey["KeyId"])["ImageId"]
    a.owner("ec2").modify_image_attribute(ImageId=source,
                                          LaunchPermission={"Add": [{"UserId": RECIPIENT}]})
    okms.create_grant(KeyId=okey["KeyId"], GranteePrincipal="arn:aws:iam::%s:root" % RECIPIENT,
                      Operations=["Decrypt", "DescribeKey", "ReEncryptFrom", "CreateGrant"])
    key = a.recipient_key()
    a.recipient("ec2").create_launch_template(LaunchTemplateName="web",
                                              LaunchTemplateData={"InstanceType": "t3.micro"})
    proxy.clear()
    j = a.imported(source, "--kms-key", "alias/mine", "--launch-template", "web",
                   "--ssm-parameter", "/golden/web")
    assert [im["ImageId"] for im in a.recipient_images()] == [j["image_id"]]
    assert a.recipient("ssm").get_parameter(Name="/golden/web")["Parameter"]["Value"] == \
        j["image_id"]
    doc = json.loads(RECIPIENT_POLICY.read_text())
    sent = set()
    for q in proxy.requests():
        if q["action"] in (None, "AssumeRole", "GetCallerIdentity"):
            continue  # the profile's source keys; GetCallerIdentity needs no permission
        target = {k.lower(): v for k, v in q["headers"]}.get("x-amz-target", "")
        if target.startswith("TrentService."):
            kid = q["json"]["KeyId"]
            action, resource = "kms:" + q["action"], key["Arn"] if kid == "alias/mine" else kid
        elif target.startswith("AmazonSSM."):
            action = "ssm:" + q["action"]
            resource = "arn:aws:ssm:%s:%s:parameter%s" % (REGION, RECIPIENT, q["json"]["Name"])
        else:
            action, resource = "ec2:" + q["action"], "*"
        assert policy_verdict(doc, action, resource, None), (action, resource)
        sent.add(action)
    # The source key was checked as the recipient (the owner's grant lets it describe the key).
    assert okey["Arn"] in {(q["json"] or {}).get("KeyId") for q in proxy.requests()}
    allowed = policy_actions(doc)
    assert EC2_ON_OUR_BEHALF_IMPORT <= allowed
    assert allowed - EC2_ON_OUR_BEHALF_IMPORT == sent, (
        "allowed but never sent: %s; sent but not in the policy: %s"
        % (sorted(allowed - EC2_ON_OUR_BEHALF_IMPORT - sent), sorted(sent - allowed)))
    assert a.imds_hits() == 0


def test_import_from_another_region(accounts):
    """--source-region: the copy is made in the profile's region from the owner's image in
    another one, whose key is checked with a KMS client of that region."""
    other = "us-west-2"
    instance = create_moto_instance(accounts.moto.url, region=other)
    oec2 = client(accounts.moto.url, "ec2", None, other)
    okms = client(accounts.moto.url, "kms", None, other)
    okey = okms.create_key(Description="owner")["KeyMetadata"]
    plain = oec2.create_image(InstanceId=instance, Name="plain")["ImageId"]
    source = oec2.copy_image(SourceImageId=plain, SourceRegion=other, Name="golden-west",
                             Encrypted=True, KmsKeyId=okey["KeyId"])["ImageId"]
    oec2.modify_image_attribute(ImageId=source, LaunchPermission={"Add": [{"UserId": RECIPIENT}]})
    okms.create_grant(KeyId=okey["KeyId"], GranteePrincipal="arn:aws:iam::%s:root" % RECIPIENT,
                      Operations=["Decrypt", "DescribeKey"])
    accounts.recipient_key()
    j = accounts.imported(source, "--source-region", other, "--kms-key", "alias/mine")
    assert j["source_region"] == other and j["region"] == REGION
    [im] = accounts.recipient_images()
    assert im["ImageId"] == j["image_id"] and im["Name"] == "golden-west"
    [q] = accounts.copies_sent()
    assert q["params"]["SourceRegion"] == other and q["params"]["SourceImageId"] == source
    described = [r for r in accounts.proxy.requests() if r["action"] == "DescribeKey"]
    assert okey["Arn"] in {r["json"]["KeyId"] for r in described}
    assert accounts.imds_hits() == 0
