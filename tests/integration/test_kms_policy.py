# SPDX-License-Identifier: Apache-2.0
"""Key policies for sharing with organizations and OUs, against moto behind the recording fault
proxy: `kms-policy --json` prints the statements each configured customer key needs; the
pre-flight (`check`) reads the key's policy (GetKeyPolicy) and fails, naming the key and the
missing statement, until those statements are in it (PutKeyPolicy), and then passes.

Safety: as test_distribute.py (no run, only `check`; loopback peers only).
"""

import json

from moto_auth import client  # tests/peers, on sys.path via conftest
from dist_rig import DST, ORG, kms_key

OU = "arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-34cd56ef"


def distribute_item(c):
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    return item


def test_kms_policy_makes_the_preflight_pass(rig):
    key = kms_key(rig, DST[0], "alias/golden")
    rig.configure(regions=" ".join(DST), kms_key="%s:alias/golden" % DST[0],
                  share_organizations=ORG, share_ous=OU)
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    item = distribute_item(c)
    assert item["result"] == "failed"
    assert key["Arn"] in item["detail"] and "ec2-imaged-share-organizations" in item["detail"]
    assert [q for q in rig.sent("GetKeyPolicy")]

    p = rig.agent("kms-policy", "--json")
    assert p.returncode == 0, p.err
    [k] = json.loads(p.stdout_text)["keys"]
    assert k["region"] == DST[0] and k["key"] == "alias/golden"
    orgs, ous = k["statements"]
    assert orgs["Sid"] == "ec2-imaged-share-organizations" and orgs["Effect"] == "Allow"
    assert "kms:Decrypt" in orgs["Action"] and "kms:CreateGrant" in orgs["Action"]
    assert orgs["Condition"]["StringEquals"] == {
        "kms:ViaService": "ec2.%s.amazonaws.com" % DST[0], "aws:PrincipalOrgID": ["o-abc123def4"]}
    assert ous["Condition"]["ForAnyValue:StringLike"] == {
        "aws:PrincipalOrgPaths": ["o-abc123def4/*/ou-ab12-34cd56ef/*"]}
    assert json.loads(rig.agent("kms-policy", "--region", DST[1], "--json").stdout_text) == {
        "keys": []}

    # Only the organization's statement in the policy: the OUs' is named as missing.
    kms = client(rig.moto.url, "kms", region=DST[0])
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    base = list(policy["Statement"])
    policy["Statement"] = base + [orgs]
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    c = rig.agent("check", "--json")
    assert c.returncode == 3 and "ec2-imaged-share-ous" in distribute_item(c)["detail"]

    # Both statements, but for another organization: they allow others, not the configured one.
    policy["Statement"] = base + json.loads(
        json.dumps([orgs, ous]).replace("o-abc123def4", "o-0ther0rg000"))
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    c = rig.agent("check", "--json")
    assert c.returncode == 3 and "ec2-imaged-share-organizations" in distribute_item(c)["detail"]

    policy["Statement"] = base + [orgs, ous]
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    c = rig.agent("check", "--json")
    assert c.returncode == 0, c.stdout_text + c.err
    assert distribute_item(c)["result"] == "ok"
