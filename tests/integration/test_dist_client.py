# SPDX-License-Identifier: Apache-2.0
"""The distribution calls (aws/ec2_dist.c) and the KMS/SSM JSON client (aws/awsjson.c) against
moto, directly and through the fault proxy, which records what was sent where moto ignores it.

Everything goes through build/tools/dist_probe, which makes one call and prints one JSON object.
"""

import pytest

import moto_auth as helpers

DUMMY = helpers.DUMMY_CREDS
SRC = "us-east-1"
DST = "us-west-2"


@pytest.fixture
def probe(aws_probe):
    run = aws_probe("dist_probe")
    return lambda endpoint, region, *call, flags=(): run(
        endpoint, "--region", region, *flags, *call, creds=DUMMY)[0]


def ok(r):
    assert r["ok"], r
    return r


def client(moto, service, region=SRC):
    return helpers.client(moto.url, service, DUMMY, region)


def sent(proxy, action):
    return [r for r in proxy.requests() if r["action"] == action]


@pytest.fixture
def image(moto):
    inst = helpers.create_moto_instance(moto.url, region=SRC)
    return client(moto, "ec2").create_image(InstanceId=inst, Name="golden-1")["ImageId"]


def test_copy_image_to_another_region(moto, image, fault_proxy, probe):
    proxy = fault_proxy()
    key = client(moto, "kms", DST).create_key(Description="golden")["KeyMetadata"]["KeyId"]
    r = ok(probe(proxy, DST, "copy-image", SRC, image, "golden-1-copy", key, "run1-us-west-2",
                 "ec2-imaged:lineage=web"))
    copy = r["image_id"]
    # moto keeps copies apart by the signing region.
    (im,) = client(moto, "ec2", DST).describe_images(ImageIds=[copy])["Images"]
    assert im["Name"] == "golden-1-copy"
    assert client(moto, "ec2", SRC).describe_images(Owners=["self"])["Images"][0][
        "ImageId"] == image
    # moto ignores Encrypted, KmsKeyId and ClientToken: what was sent is what counts.
    (req,) = sent(proxy, "CopyImage")
    p = req["params"]
    assert p["SourceRegion"] == SRC and p["SourceImageId"] == image
    assert p["Encrypted"] == "true" and p["KmsKeyId"] == key
    assert p["ClientToken"] == "run1-us-west-2" and p["CopyImageTags"] == "true"
    assert p["TagSpecification.1.ResourceType"] == "image"
    assert p["TagSpecification.1.Tag.1.Key"] == "ec2-imaged:lineage"


def test_copy_image_dry_run(moto, image, probe):
    r = ok(probe(moto, DST, "copy-image", SRC, image, "dry", "-", "-", "--dry-run"))
    assert r["image_id"] is None
    assert client(moto, "ec2", DST).describe_images(Owners=["self"])["Images"] == []


def test_share_image_and_snapshot(moto, image, fault_proxy, probe):
    proxy = fault_proxy()
    org = "arn:aws:organizations::123456789012:organization/o-abc123"
    ou = "arn:aws:organizations::123456789012:ou/o-abc123/ou-ab12-cdef3456"
    ok(probe(proxy, SRC, "share-image", image, "account:111122223333", "org:" + org, "ou:" + ou))
    (req,) = sent(proxy, "ModifyImageAttribute")
    assert req["params"]["LaunchPermission.Add.1.UserId"] == "111122223333"
    assert req["params"]["LaunchPermission.Add.2.OrganizationArn"] == org
    assert req["params"]["LaunchPermission.Add.3.OrganizationalUnitArn"] == ou
    perms = client(moto, "ec2").describe_image_attribute(
        ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    assert {"UserId": "111122223333"} in perms
    assert {"OrganizationArn": org} in perms

    ec2 = client(moto, "ec2")
    snap = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"]
    ok(probe(proxy, SRC, "share-snapshot", snap, "111122223333", "444455556666"))
    got = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert {p["UserId"] for p in got["CreateVolumePermissions"]} == {"111122223333",
                                                                      "444455556666"}


def test_images_by_tag(moto, image, probe):
    ec2 = client(moto, "ec2")
    ec2.create_tags(Resources=[image], Tags=[{"Key": "ec2-imaged:lineage", "Value": "web"}])
    inst = helpers.create_moto_instance(moto.url, region=SRC)
    ec2.create_image(InstanceId=inst, Name="other")
    r = ok(probe(moto, SRC, "images-by-tag", "ec2-imaged:lineage", "web"))
    assert [i["image_id"] for i in r["images"]] == [image]
    assert ok(probe(moto, SRC, "images-by-tag", "ec2-imaged:lineage", "db"))["images"] == []


def test_deprecation_sent(moto, image, fault_proxy, probe):
    # moto has no EnableImageDeprecation (HTTP 500): check what was sent, and that the 500 is
    # retried as transient and then reported.
    proxy = fault_proxy()
    r = probe(proxy, SRC, "deprecate", image, "2030-01-01T00:00:00Z",
              flags=("--max-attempts", "2"))
    reqs = sent(proxy, "EnableImageDeprecation")
    assert not r["ok"] and r["http_status"] == 500 and r["attempts"] == 2, r
    assert len(reqs) == 2
    for req in reqs:
        assert req["params"]["DeprecateAt"] == "2030-01-01T00:00:00Z"
        assert req["params"]["ImageId"] == image
    # EC2's answer, as the proxy's `ok` fault gives it: one call, success.
    proxy.call("POST", "/_control/reset", {})
    proxy.faults({"kind": "ok", "action": "EnableImageDeprecation"})
    r = ok(probe(proxy, SRC, "deprecate", image, "2030-01-01T00:00:00Z",
                 flags=("--max-attempts", "2")))
    assert len(sent(proxy, "EnableImageDeprecation")) == 1


def test_launch_template_version(moto, image, fault_proxy, probe):
    proxy = fault_proxy()
    ec2 = client(moto, "ec2")
    lt = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})["LaunchTemplate"]
    r = ok(probe(proxy, SRC, "lt-version", "web", image, "1"))
    assert r["version"] == 2
    (req,) = sent(proxy, "CreateLaunchTemplateVersion")
    assert req["params"]["LaunchTemplateName"] == "web"
    assert req["params"]["SourceVersion"] == "1"
    assert req["params"]["LaunchTemplateData.ImageId"] == image
    ok(probe(proxy, SRC, "lt-default", lt["LaunchTemplateId"], "2"))
    (req,) = sent(proxy, "ModifyLaunchTemplate")
    assert req["params"]["LaunchTemplateId"] == lt["LaunchTemplateId"]
    assert req["params"]["SetDefaultVersion"] == "2"
    r = ok(probe(moto, SRC, "lt-versions", "web", "$Default"))
    assert [(v["version"], v["default"], v["image_id"]) for v in r["versions"]] == [
        (2, True, image)]
    assert ok(probe(moto, SRC, "lt-ids"))["ids"] == [lt["LaunchTemplateId"]]


def test_kms_describe_key_and_grant(moto, fault_proxy, probe):
    proxy = fault_proxy()
    kms = client(moto, "kms", DST)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    r = ok(probe(proxy, DST, "kms-describe", "alias/golden"))
    assert (r["key_id"], r["arn"], r["key_manager"]) == (key["KeyId"], key["Arn"], "CUSTOMER")
    (req,) = sent(proxy, "DescribeKey")
    h = {k.lower(): v for k, v in req["headers"]}
    assert h["x-amz-target"] == "TrentService.DescribeKey"
    assert h["content-type"] == "application/x-amz-json-1.1"
    assert req["json"] == {"KeyId": "alias/golden"}

    r = probe(moto, DST, "kms-describe", "alias/nope")
    assert not r["ok"] and r["error_code"] == "NotFoundException" and r["http_status"] == 400

    r = ok(probe(proxy, DST, "kms-grant", key["KeyId"], "111122223333"))
    grants = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [g["GrantId"] for g in grants] == [r["grant_id"]]
    assert grants[0]["GranteePrincipal"] == "arn:aws:iam::111122223333:root"
    assert "Decrypt" in grants[0]["Operations"]


def test_kms_throttling_retried(moto, fault_proxy, probe):
    proxy = fault_proxy()
    key = client(moto, "kms").create_key()["KeyMetadata"]["KeyId"]
    proxy.faults({"kind": "throttle", "count": 2, "action": "DescribeKey"})
    r = ok(probe(proxy, SRC, "kms-describe", key))
    assert r["attempts"] == 3


def test_ssm_put_parameter(moto, image, fault_proxy, probe):
    proxy = fault_proxy()
    r = ok(probe(proxy, SRC, "ssm-put", "/golden/web", image))
    assert r["version"] == 1
    assert ok(probe(proxy, SRC, "ssm-put", "/golden/web", image))["version"] == 2
    req = sent(proxy, "PutParameter")[0]
    assert dict(req["headers"]).get("X-Amz-Target") == "AmazonSSM.PutParameter"
    assert req["json"] == {"Name": "/golden/web", "Value": image, "Type": "String",
                           "DataType": "aws:ec2:image", "Overwrite": True}
    got = client(moto, "ssm").get_parameter(Name="/golden/web")["Parameter"]
    assert got["Value"] == image and got["DataType"] == "aws:ec2:image"
    r = probe(moto, SRC, "ssm-put", "/golden/web", image, "no-overwrite")
    assert not r["ok"] and r["error_code"] == "ParameterAlreadyExists"
