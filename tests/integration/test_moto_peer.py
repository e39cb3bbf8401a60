# SPDX-License-Identifier: Apache-2.0
"""The moto the tests run (tests/peers/moto_server.py) keeps EC2's rules that the agent's
"never two images" rests on: an AMI name is unique per account and region (CreateImage and
CopyImage refuse a taken one with InvalidAMIName.Duplicate, as EC2 does), and CopyImage with the
same ClientToken makes one copy.  Checked with botocore, so the error is parsed by AWS's own
model of the answer."""

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
