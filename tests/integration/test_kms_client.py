# SPDX-License-Identifier: Apache-2.0
"""The KMS grant and key policy calls (aws/kms.c) against moto: ListGrants, RevokeGrant,
RetireGrant, GetKeyPolicy, PutKeyPolicy, each checked against what botocore then sees.

Everything goes through build/tools/kms_probe, which makes one call and prints one JSON object.
moto answers ListGrants in one page whatever Limit asks for and ignores its GranteePrincipal
filter; the paging and its ceiling are unit-tested against a peer that pages
(tests/unit/test_kms_pages.c), and the grantee filter is applied by the client as well. moto
answers PutKeyPolicy with `null` (KMS with no body: both read as {}), and grant calls on a key
it does not have with HTTP 500 (a KeyError) instead of NotFoundException, so that case is not
tested here.
"""

import json

import pytest

import moto_auth as helpers

DUMMY = helpers.DUMMY_CREDS
REGION = "us-east-1"
A = "arn:aws:iam::111122223333:root"
B = "arn:aws:iam::444455556666:root"
OPS = ["Decrypt", "DescribeKey", "CreateGrant"]


@pytest.fixture
def kms_probe(aws_probe):
    run = aws_probe("kms_probe")
    return lambda endpoint, *call: run(endpoint, "--region", REGION, *call, creds=DUMMY)[0]


def ok(r):
    assert r["ok"], r
    return r


@pytest.fixture
def kms(moto):
    return helpers.client(moto.url, "kms", DUMMY, REGION)


@pytest.fixture
def key(kms):
    return kms.create_key(Description="sharing")["KeyMetadata"]


def grant(kms, key, grantee, name):
    return kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=OPS,
                            Name=name)["GrantId"]


def grant_ids(kms, key):
    return {g["GrantId"] for g in kms.list_grants(KeyId=key["KeyId"])["Grants"]}


def test_list_grants(moto, kms, key, kms_probe, fault_proxy):
    ga, gb = grant(kms, key, A, "to-a"), grant(kms, key, B, "to-b")
    r = ok(kms_probe(moto, "list-grants", key["KeyId"]))
    got = {g["grant_id"]: g for g in r["grants"]}
    assert set(got) == {ga, gb}
    assert got[ga]["grantee_principal"] == A and got[ga]["name"] == "to-a"
    assert got[ga]["operations"] == OPS
    # One grantee's grants only (moto ignores the filter KMS applies; the client applies it too),
    # the filter as sent seen by the proxy.
    proxy = fault_proxy(moto)
    r = ok(kms_probe(proxy, "list-grants", key["KeyId"], B))
    assert [g["grant_id"] for g in r["grants"]] == [gb]
    (req,) = proxy.requests()
    assert req["json"]["GranteePrincipal"] == B and req["json"]["Limit"] == 100, req
    assert ok(kms_probe(moto, "list-grants", key["KeyId"], "arn:aws:iam::999999999999:root"))[
        "grants"] == []


def test_revoke_grant(moto, kms, key, kms_probe):
    ga, gb = grant(kms, key, A, "to-a"), grant(kms, key, B, "to-b")
    ok(kms_probe(moto, "revoke-grant", key["KeyId"], ga))
    assert grant_ids(kms, key) == {gb}
    # A grant already gone is KMS's NotFoundException, for the caller to judge.
    r = kms_probe(moto, "revoke-grant", key["KeyId"], ga)
    assert not r["ok"] and r["error_code"] == "NotFoundException", r
    assert grant_ids(kms, key) == {gb}


def test_retire_grant(moto, kms, key, kms_probe, fault_proxy):
    proxy = fault_proxy(moto)
    ga, gb = grant(kms, key, A, "to-a"), grant(kms, key, B, "to-b")
    ok(kms_probe(proxy, "retire-grant", key["KeyId"], gb))
    assert grant_ids(kms, key) == {ga}
    # moto's RevokeGrant would remove it too: what was sent is what tells them apart.
    (req,) = proxy.requests()
    assert req["action"] == "RetireGrant", req


def test_key_policy_round_trip(moto, kms, key, kms_probe):
    r = ok(kms_probe(moto, "get-policy", key["KeyId"]))
    policy = json.loads(r["policy"])
    assert policy["Statement"][0]["Principal"]["AWS"] == "arn:aws:iam::123456789012:root"
    policy["Statement"].append({
        "Sid": "ec2-imaged recipients", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt", "kms:CreateGrant"], "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}})
    text = json.dumps(policy)
    ok(kms_probe(moto, "put-policy", key["Arn"], text))
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == text
    assert ok(kms_probe(moto, "get-policy", key["KeyId"]))["policy"] == text
