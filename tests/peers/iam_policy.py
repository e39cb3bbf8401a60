# SPDX-License-Identifier: Apache-2.0
"""The shipped IAM policy (conf/iam-policy.json) in the distribution tests.

What moto 5.2 enforces of an IAM policy (moto/iam/access_control.py): each request's action
against each statement's Action, and the statement's Resource against the literal "*" (moto
names no resource for EC2, KMS or SSM requests); of the Condition operators only
StringEquals, and only on values a request brings, none of which EC2, KMS or SSM requests do
(every other operator, the shipped Null on aws:ResourceTag/ec2-imaged:run-id among them, is
taken as met). So the shipped document is used as it is, except that the Resource of the KMS
and SSM statements (key and parameter ARNs, which moto would compare with "*" and never match)
is "*" where a test needs those calls; and each test then evaluates the shipped document
itself, without moto, for every request the proxy recorded: its action against the
statements' Actions, its key or parameter ARN against their Resources, and the retention
statement's tag condition against the tags the image or snapshot had (policy_verdict).
"""

import json
import re
from pathlib import Path

import pytest

from dist_rig import ACCOUNT, MOTO_AMI, SRC, tags_of
from moto_auth import client

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
