# SPDX-License-Identifier: Apache-2.0
"""The moto the tests run (tests/peers/moto_server.py) keeps EC2's rules that the agent's
"never two images" rests on: an AMI name is unique per account and region (CreateImage and
CopyImage refuse a taken one with InvalidAMIName.Duplicate, as EC2 does), CopyImage with the
same ClientToken makes one copy, and an image says it is encrypted, with the key's ARN, when
CopyImage asked for it or its instance's root volume is.  Checked with botocore, so the error is parsed by AWS's own
model of the answer."""

import json
import re

import pytest
from botocore.exceptions import ClientError

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest

REGION, OTHER = "us-east-1", "eu-west-1"
DUPLICATE = re.compile(r"^AMI name (\S+) is already in use by AMI (ami-[0-9a-f]+)$")


@pytest.fixture
def ec2(moto):
    return client(moto.url, "ec2", region=REGION)


@pytest.fixture
def instance(moto):
    return create_moto_instance(moto.url, region=REGION)


def refused_as_duplicate(call, name, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidAMIName.Duplicate", e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    m = DUPLICATE.match(err["Message"])
    assert m and m.group(1) == name, err["Message"]
    return m.group(2)


def test_create_image_refuses_a_taken_name(ec2, instance):
    first = ec2.create_image(InstanceId=instance, Name="golden-1", NoReboot=True)["ImageId"]
    assert refused_as_duplicate(ec2.create_image, "golden-1", InstanceId=instance,
                                Name="golden-1", NoReboot=True) == first
    named = ec2.describe_images(Owners=["self"],
                                Filters=[{"Name": "name", "Values": ["golden-1"]}])["Images"]
    assert [i["ImageId"] for i in named] == [first]
    # Another name is fine, and a deregistered image's name is free again.
    ec2.create_image(InstanceId=instance, Name="golden-2", NoReboot=True)
    ec2.deregister_image(ImageId=first)
    again = ec2.create_image(InstanceId=instance, Name="golden-1", NoReboot=True)["ImageId"]
    assert again != first


def test_copy_image_refuses_a_taken_name_in_the_destination(moto, ec2, instance):
    src = ec2.create_image(InstanceId=instance, Name="golden", NoReboot=True)["ImageId"]
    dst = client(moto.url, "ec2", region=OTHER)
    copy = dst.copy_image(SourceImageId=src, SourceRegion=REGION, Name="golden")["ImageId"]
    assert refused_as_duplicate(dst.copy_image, "golden", SourceImageId=src,
                                SourceRegion=REGION, Name="golden") == copy
    assert len(dst.describe_images(Owners=["self"])["Images"]) == 1


def test_copy_image_client_token_makes_one_copy(moto, ec2, instance):
    src = ec2.create_image(InstanceId=instance, Name="golden", NoReboot=True)["ImageId"]
    dst = client(moto.url, "ec2", region=OTHER)
    kw = dict(SourceImageId=src, SourceRegion=REGION, Name="golden", ClientToken="run-1-eu")
    first = dst.copy_image(**kw)["ImageId"]
    assert dst.copy_image(**kw)["ImageId"] == first
    assert [i["ImageId"] for i in dst.describe_images(Owners=["self"])["Images"]] == [first]


def ebs_of(ec2, image_id):
    [im] = ec2.describe_images(ImageIds=[image_id])["Images"]
    [ebs] = [m["Ebs"] for m in im["BlockDeviceMappings"] if "Ebs" in m]
    return ebs


def test_images_carry_the_encryption_they_were_made_with(moto, ec2, instance):
    """CopyImage with Encrypted and KmsKeyId (an alias here) gives an image encrypted with the
    key, named by its ARN; a copy of that without a key stays so; an unencrypted image and a
    plain copy say nothing; CreateImage of an instance whose root volume is encrypted gives an
    encrypted image."""
    kms = client(moto.url, "kms", region=REGION)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    src = ec2.create_image(InstanceId=instance, Name="plain", NoReboot=True)["ImageId"]
    assert "KmsKeyId" not in ebs_of(ec2, src) and not ebs_of(ec2, src).get("Encrypted")
    plain = ec2.copy_image(SourceImageId=src, SourceRegion=REGION, Name="plain-copy")["ImageId"]
    assert "KmsKeyId" not in ebs_of(ec2, plain)
    enc = ec2.copy_image(SourceImageId=src, SourceRegion=REGION, Name="enc", Encrypted=True,
                         KmsKeyId="alias/golden")["ImageId"]
    assert ebs_of(ec2, enc)["Encrypted"] is True and ebs_of(ec2, enc)["KmsKeyId"] == key["Arn"]
    again = ec2.copy_image(SourceImageId=enc, SourceRegion=REGION, Name="enc-2")["ImageId"]
    assert ebs_of(ec2, again)["KmsKeyId"] == key["Arn"]

    root = ec2.describe_images(ImageIds=["ami-12c6146b"])["Images"][0]["RootDeviceName"]
    vm = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                           BlockDeviceMappings=[{"DeviceName": root, "Ebs": {
                               "VolumeSize": 8, "Encrypted": True, "KmsKeyId": key["KeyId"]}}],
                           )["Instances"][0]["InstanceId"]
    made = ec2.create_image(InstanceId=vm, Name="from-encrypted", NoReboot=True)["ImageId"]
    assert ebs_of(ec2, made)["KmsKeyId"] == key["Arn"]


def test_product_codes_set_and_listed(moto, ec2, instance):
    """ModifyImageAttribute ProductCodes marks an image (the tests' way to have an AWS
    Marketplace image); DescribeImages lists the codes and DescribeInstances those of an
    instance launched from it, as EC2 does; other images and instances list none."""
    image = ec2.create_image(InstanceId=instance, Name="market", NoReboot=True)["ImageId"]
    assert ec2.describe_images(ImageIds=[image])["Images"][0].get("ProductCodes", []) == []
    ec2.modify_image_attribute(ImageId=image, ProductCodes=["8fsgd7m3k8bgn1c6rvw1ymq4b"])
    codes = [{"ProductCodeId": "8fsgd7m3k8bgn1c6rvw1ymq4b", "ProductCodeType": "marketplace"}]
    assert ec2.describe_images(ImageIds=[image])["Images"][0]["ProductCodes"] == codes
    vm = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    [res] = ec2.describe_instances(InstanceIds=[vm])["Reservations"]
    assert res["Instances"][0]["ProductCodes"] == codes
    [res] = ec2.describe_instances(InstanceIds=[instance])["Reservations"]
    assert res["Instances"][0].get("ProductCodes", []) == []


def test_kms_create_grant_dry_run_makes_no_grant(moto):
    """CreateGrant with DryRun: DryRunOperationException (412) for a key KMS has, no grant made;
    NotFoundException for one it has not.  Debian's botocore predates KMS's DryRun: the
    parameter is added to the body before signing."""
    kms = client(moto.url, "kms", region=REGION)
    dry = client(moto.url, "kms", region=REGION)

    def add_dry_run(params, **_):
        params["body"] = json.dumps(dict(json.loads(params["body"]), DryRun=True)).encode()

    dry.meta.events.register("before-call.kms.CreateGrant", add_dry_run)
    key = kms.create_key(Description="golden")["KeyMetadata"]["KeyId"]
    grant = dict(GranteePrincipal="arn:aws:iam::111122223333:root", Operations=["Decrypt"])
    with pytest.raises(ClientError) as e:
        dry.create_grant(KeyId=key, **grant)
    assert e.value.response["Error"]["Code"] == "DryRunOperationException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert kms.list_grants(KeyId=key)["Grants"] == []
    with pytest.raises(ClientError) as e:
        dry.create_grant(KeyId="00000000-0000-0000-0000-000000000000", **grant)
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    kms.create_grant(KeyId=key, **grant)
    assert len(kms.list_grants(KeyId=key)["Grants"]) == 1
