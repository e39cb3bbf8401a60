# SPDX-License-Identifier: Apache-2.0
"""KMS grants with a lifetime, against moto behind the recording fault proxy: each grant a run
makes is recorded in the state and listed by `grants --json`; a second run reuses it (ListGrants)
instead of adding one; with grant_ttl_days, `grants --revoke-expired` and the start of a run
revoke exactly the expired ones; a CreateGrant whose answer was lost leaks no grant (the next
attempt finds it by ListGrants and records it); retention revokes the grants of the images it
retires.  Time: a grant's creation time is moved into the past in the state file, the one
record the agent keeps of it.

Safety: as test_distribute.py (reboot mode against moto, nothing frozen, loopback peers only).
"""

import json
import time

from dist_rig import DST, SHARE_ACCOUNT, done_run, kms_key  # tests/peers, on sys.path via conftest
from moto_auth import client

DAY_US = 86400 * 10**6
OTHER_ACCOUNT = "444455556666"


def grants_json(rig, *args):
    p = rig.agent("grants", "--json", *args)
    assert p.stdout_text, p.err
    return p, json.loads(p.stdout_text)


def kms_grants(rig, region, key):
    return client(rig.moto.url, "kms", region=region).list_grants(KeyId=key["KeyId"])["Grants"]


def age_grants(rig, days, region=None):
    """Move the creation time of the recorded grants (of region, or all) days into the past."""
    path = rig.state_dir / "state.json"
    st = json.loads(path.read_text())
    for g in st["grants"]:
        if region is None or g["region"] == region:
            g["created_us"] -= days * DAY_US
    path.write_text(json.dumps(st))


def configure_grants(rig, regions, **extra):
    rig.configure(regions=" ".join(regions),
                  kms_key=" ".join("%s:alias/golden" % reg for reg in regions),
                  share_accounts=SHARE_ACCOUNT, create_grants="yes", **extra)


def test_grants_recorded_listed_and_reused(rig):
    key = kms_key(rig, DST[0], "alias/golden")
    configure_grants(rig, [DST[0]])
    j = done_run(rig.run_and_resume())
    copy = [d["image_id"] for d in j["distribution"] if d["region"] == DST[0]][0]
    [kg] = kms_grants(rig, DST[0], key)
    p, out = grants_json(rig)
    assert p.returncode == 0, p.err
    [g] = out["grants"]
    assert g["grant_id"] == kg["GrantId"] and g["key_arn"] == key["Arn"]
    assert g["grantee"] == SHARE_ACCOUNT and g["image_id"] == copy and g["region"] == DST[0]
    assert g["state"] == "active" and g["expires"] is None and g["created"]
    assert kg["Name"] == "ec2-imaged-%s" % j["run_id"]

    # A second run reuses the grant: still one in KMS, one recorded, now for the new copy, and
    # its lifetime starts again (the record, made a day older, is new again).
    age_grants(rig, 1)
    [aged] = grants_json(rig)[1]["grants"]
    j2 = done_run(rig.run_and_resume())
    copy2 = [d["image_id"] for d in j2["distribution"] if d["region"] == DST[0]][0]
    assert [x["GrantId"] for x in kms_grants(rig, DST[0], key)] == [kg["GrantId"]]
    [g2] = grants_json(rig)[1]["grants"]
    assert g2["grant_id"] == kg["GrantId"] and g2["image_id"] == copy2 != copy
    assert g2["created"] > aged["created"], (aged, g2)
    assert len(rig.sent("CreateGrant")) == 1
    assert len(rig.sent("ListGrants")) == 2


def test_revoke_expired_revokes_exactly_the_expired(rig):
    keys = {reg: kms_key(rig, reg, "alias/golden") for reg in DST}
    configure_grants(rig, DST, grant_ttl_days=3)
    done_run(rig.run_and_resume())
    assert all(len(kms_grants(rig, reg, keys[reg])) == 1 for reg in DST)
    _, out = grants_json(rig)
    assert {g["state"] for g in out["grants"]} == {"active"}
    assert all(g["expires"] for g in out["grants"])

    age_grants(rig, 4, region=DST[0])
    _, out = grants_json(rig)
    assert {g["region"]: g["state"] for g in out["grants"]} == {DST[0]: "expired",
                                                                 DST[1]: "active"}
    p, out = grants_json(rig, "--revoke-expired")
    assert p.returncode == 0, p.err
    assert out["revoked"] == 1
    assert {g["region"]: g["state"] for g in out["grants"]} == {DST[0]: "revoked",
                                                                 DST[1]: "active"}
    assert kms_grants(rig, DST[0], keys[DST[0]]) == []
    assert len(kms_grants(rig, DST[1], keys[DST[1]])) == 1
    [q] = rig.sent("RevokeGrant")
    # Again: nothing more to revoke.
    p, out = grants_json(rig, "--revoke-expired")
    assert p.returncode == 0 and out["revoked"] == 0
    assert len(rig.sent("RevokeGrant")) == 1


def test_run_start_revokes_expired_grants(rig):
    key = kms_key(rig, DST[0], "alias/golden")
    configure_grants(rig, [DST[0]], grant_ttl_days=1)
    done_run(rig.run_and_resume())
    [old] = kms_grants(rig, DST[0], key)
    age_grants(rig, 2)
    # The next run revokes the expired grant first, then grants anew for its own image.
    done_run(rig.run_and_resume())
    [new] = kms_grants(rig, DST[0], key)
    assert new["GrantId"] != old["GrantId"]
    out = grants_json(rig)[1]["grants"]
    assert {g["grant_id"]: g["state"] for g in out} == {old["GrantId"]: "revoked",
                                                       new["GrantId"]: "active"}


def test_lost_create_grant_answer_leaks_no_grant(rig):
    """CreateGrant made the grant but its answer never came back (as if the agent died before
    saving the state; the run fails): the next run finds it by ListGrants and records it, and
    makes no second one."""
    key = kms_key(rig, DST[0], "alias/golden")
    configure_grants(rig, [DST[0]], grant_ttl_days=1)
    # One attempt per call, so that the lost answer is not sent again by the client's retry.
    rig.config_path.write_text(rig.config_path.read_text().replace(
        "max_attempts = 2", "max_attempts = 1"))
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    rig.proxy.faults({"kind": "drop_response", "action": "CreateGrant"})
    r = rig.agent("resume", "--json")
    assert r.returncode != 0
    [made] = kms_grants(rig, DST[0], key)
    assert grants_json(rig)[1]["grants"] == []
    done_run(rig.run_and_resume())
    assert [g["GrantId"] for g in kms_grants(rig, DST[0], key)] == [made["GrantId"]]
    assert len(rig.sent("CreateGrant")) == 1
    [g] = grants_json(rig)[1]["grants"]
    assert g["grant_id"] == made["GrantId"] and g["state"] == "active"
    # Recorded, it expires like any other and is revoked.
    age_grants(rig, 2)
    p, out = grants_json(rig, "--revoke-expired")
    assert p.returncode == 0 and out["revoked"] == 1
    assert kms_grants(rig, DST[0], key) == []


def test_retention_revokes_the_grants_of_retired_images(rig):
    key = kms_key(rig, DST[0], "alias/golden")
    configure_grants(rig, [DST[0]], keep_newest=1, lineage="web")
    first = done_run(rig.run_and_resume())
    [g1] = kms_grants(rig, DST[0], key)
    # The second run shares with another account: the first grant serves the first image only.
    configure_grants(rig, [DST[0]], keep_newest=1, lineage="web")
    rig.config_path.write_text(rig.config_path.read_text().replace(
        "share_accounts = %s" % SHARE_ACCOUNT, "share_accounts = %s" % OTHER_ACCOUNT))
    done_run(rig.run_and_resume())
    first_copy = [d["image_id"] for d in first["distribution"] if d["region"] == DST[0]][0]
    assert first_copy not in {im["ImageId"] for im in rig.images(DST[0])}
    left = kms_grants(rig, DST[0], key)
    assert [g["GranteePrincipal"] for g in left] == ["arn:aws:iam::%s:root" % OTHER_ACCOUNT]
    out = {g["grant_id"]: g for g in grants_json(rig)[1]["grants"]}
    assert out[g1["GrantId"]]["state"] == "revoked"
    assert out[g1["GrantId"]]["image_id"] == first_copy
