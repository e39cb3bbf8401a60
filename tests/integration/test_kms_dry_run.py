# SPDX-License-Identifier: Apache-2.0
"""The pre-flight's DryRun CreateGrant against a KMS that ignores DryRun: moto's own server,
without tests/peers/moto_server.py (which makes moto answer DryRunOperationException as KMS does).
Plain moto answers a DryRun CreateGrant with 200 and makes the grant. The pre-flight must refuse
(a KMS that does not honour DryRun has checked nothing) and must not leave that grant standing:
it revokes it, and says so, or names it when the revoke fails.
"""

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import log_path
from moto_auth import client, create_moto_instance  # tests/peers, via conftest
from peers import Peer, PeerError, free_port, stop_pid
from dist_rig import MOTO_AMI, SHARE_ACCOUNT, SRC, Rig, kms_key

DRY_RUN_GRANT = "ec2-imaged-preflight"


def _answers(url):
    try:
        urllib.request.urlopen(url + "/moto-api/reset", timeout=2)
    except urllib.error.HTTPError as e:
        return e.code == 400  # moto refuses a GET there: it is serving
    except OSError:
        return False
    return False


@pytest.fixture
def plain_moto(moto_python, request):
    """moto.server as moto ships it, on a free loopback port, stopped by its PID afterwards."""
    log = log_path("moto-plain", request)
    for _ in range(3):
        port = free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen([moto_python, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                     str(port)], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, start_new_session=True)
        peer = Peer("moto-plain", proc, port, log)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not _answers(peer.url):
            time.sleep(0.1)
        if proc.poll() is None and _answers(peer.url):
            yield peer
            peer.stop()
            return
        stop_pid(proc)
    pytest.fail(str(PeerError("plain moto.server did not start: see %s" % log)), pytrace=False)


@pytest.fixture
def plain_rig(tmp_path, plain_moto, fault_proxy, imds_factory, agent_env, agent_bin):
    instance_id = create_moto_instance(plain_moto.url, region=SRC, image_id=MOTO_AMI)
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id="123456789012")
    proxy = fault_proxy(plain_moto)
    rig = Rig(tmp_path, plain_moto, proxy, agent_env(imds=imds, endpoint=proxy), agent_bin,
              instance_id)
    try:
        yield rig
    finally:
        rig.close()


def grants_to(rig, key, account):
    return [g for g in client(rig.moto.url, "kms", region=SRC).list_grants(
        KeyId=key["KeyId"])["Grants"] if account in g["GranteePrincipal"]]


def dry_run_grants(rig):
    return [q for q in rig.proxy.requests()
            if q["action"] == "CreateGrant" and (q["json"] or {}).get("DryRun") is True]


def test_moto_makes_the_grant_of_a_dry_run(plain_rig):
    """The premise: this moto ignores DryRun (else the test below proves nothing)."""
    key = kms_key(plain_rig, SRC, "alias/golden")
    dry = client(plain_rig.moto.url, "kms", region=SRC)

    def add_dry_run(params, **_):  # Debian's botocore predates KMS's DryRun
        params["body"] = json.dumps(dict(json.loads(params["body"]), DryRun=True)).encode()

    dry.meta.events.register("before-call.kms.CreateGrant", add_dry_run)
    g = dry.create_grant(KeyId=key["KeyId"], Operations=["Decrypt"], Name="probe",
                         GranteePrincipal="arn:aws:iam::%s:root" % SHARE_ACCOUNT)
    assert g["GrantId"] and len(grants_to(plain_rig, key, SHARE_ACCOUNT)) == 1


def test_check_refuses_and_revokes_the_grant_of_an_ignored_dry_run(plain_rig):
    rig = plain_rig
    key = kms_key(rig, SRC, "alias/golden")
    rig.configure(kms_key="%s:alias/golden" % SRC, share_accounts=SHARE_ACCOUNT,
                  create_grants="yes")
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    assert item["result"] == "failed", item
    [q] = dry_run_grants(rig)
    assert "KMS made the grant (it ignored DryRun)" in item["detail"], item
    # What KMS made is gone again, and the RevokeGrant named it.
    assert grants_to(rig, key, SHARE_ACCOUNT) == [], grants_to(rig, key, SHARE_ACCOUNT)
    [rv] = rig.sent("RevokeGrant")
    assert rv["json"]["KeyId"] in (key["Arn"], key["KeyId"]), rv
    assert "grant %s was revoked" % rv["json"]["GrantId"] in item["detail"], item


def test_run_refuses_before_create_image_and_leaves_no_grant(plain_rig):
    rig = plain_rig
    key = kms_key(rig, SRC, "alias/golden")
    rig.configure(kms_key="%s:alias/golden" % SRC, share_accounts=SHARE_ACCOUNT,
                  create_grants="yes")
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode != 0, r.stdout_text + r.err
    assert "KMS made the grant (it ignored DryRun)" in r.stdout_text + r.err
    assert rig.sent("CreateImage") == []
    assert grants_to(rig, key, SHARE_ACCOUNT) == []


def test_a_failed_revoke_names_the_grant_left(plain_rig):
    """RevokeGrant failing (the proxy answers it 500 every time): the refusal names the grant that
    stands, so that it can be revoked by hand."""
    rig = plain_rig
    key = kms_key(rig, SRC, "alias/golden")
    rig.configure(kms_key="%s:alias/golden" % SRC, share_accounts=SHARE_ACCOUNT,
                  create_grants="yes")
    rig.proxy.faults({"kind": "error500", "action": "RevokeGrant", "count": 20})
    c = rig.agent("check", "--json")
    assert c.returncode == 3, c.stdout_text + c.err
    [item] = [i for i in json.loads(c.stdout_text)["checks"] if i["name"] == "distribute"]
    [left] = grants_to(rig, key, SHARE_ACCOUNT)
    assert "grant %s is left on" % left["GrantId"] in item["detail"], item
