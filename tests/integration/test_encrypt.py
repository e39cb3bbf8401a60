# SPDX-License-Identifier: Apache-2.0
"""Encryption in place ([distribute] kms_key for the run's own region) end to end, against moto
behind the recording fault proxy (the rig of test_distribute.py): the run's image is copied in
its own region encrypted with the key and under the configured name, the copy becomes the run's
image, and the unencrypted original is deregistered with its snapshots; crashes after CopyImage
and after DeregisterImage resume to the same end with one copy.

moto ignores CopyImage's Encrypted and KmsKeyId (its images never say they are encrypted): what
was sent is asserted from the proxy's recorded requests, and the tests' moto
(tests/peers/moto_server.py) marks an image encrypted with the key's ARN when CopyImage asked for
it, or when CreateImage's instance has its root volume encrypted, as EC2 does.  The crashes are real: the proxy holds
the request (unforwarded), the agent is killed with SIGKILL, then the proxy lets the request go
on to moto, so that EC2 acted on a request whose answer nobody recorded.
"""

import json
import time

import pytest

from moto_auth import client  # tests/peers, on sys.path via conftest
from dist_rig import DEADLINE, MOTO_AMI, SRC, done_run, kms_key, rig_of, tags_of
from iam_policy import POLICY, TagBook, check_requests_against_policy, for_moto

NAME = "dist-{run_id}"  # the rig's [image] name


def configure(rig):
    key = kms_key(rig, SRC, "alias/golden")
    rig.configure(kms_key="%s:alias/golden" % SRC)
    return key


def key_arn(rig):
    return client(rig.moto.url, "kms", region=SRC).describe_key(KeyId="alias/golden")[
        "KeyMetadata"]["Arn"]


def run_images(rig, run_id):
    return rig.ec2().describe_images(Owners=["self"], Filters=[
        {"Name": "tag:ec2-imaged:run-id", "Values": [run_id]}])["Images"]


def snapshot_ids(rig):
    return {s["SnapshotId"] for s in rig.ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def assert_encrypted_in_place(rig, j):
    """One image of the run in its region: the copy, named as configured, sent with Encrypted
    and the key; the original and its snapshots gone."""
    run_id = j["run_id"]
    [im] = run_images(rig, run_id)
    assert im["ImageId"] == j["image_id"] and im["Name"] == NAME.format(run_id=run_id)
    assert im["State"] == "available"
    # Encrypted with the key (moto_server.py keeps what CopyImage asked for, by the key's ARN).
    [ebs] = [m["Ebs"] for m in im["BlockDeviceMappings"] if "Ebs" in m]
    assert ebs.get("Encrypted") is True and ebs.get("KmsKeyId") == key_arn(rig), ebs
    original = j["unencrypted_image_id"]
    assert original and original != j["image_id"]
    assert j["unencrypted_deregistered"] is True
    assert original not in {i["ImageId"] for i in rig.images()}
    snaps = j["unencrypted_snapshot_ids"]
    assert snaps and not set(snaps) & snapshot_ids(rig)
    assert tags_of(im)["ec2-imaged:run-id"] == run_id and tags_of(im)["team"] == "platform"
    # What moto ignores, as sent: one request for the copy (a retry sends the same token).
    sent = rig.sent("CopyImage")
    assert sent
    for q in sent:
        p = q["params"]
        assert p["SourceRegion"] == SRC and p["SourceImageId"] == original
        assert p["Encrypted"] == "true" and p["KmsKeyId"] == "alias/golden"
        assert p["Name"] == NAME.format(run_id=run_id)
        assert p["ClientToken"] == "%s-encrypt" % run_id
    dereg = rig.sent("DeregisterImage")
    assert dereg and {q["params"]["ImageId"] for q in dereg} == {original}
    assert all(q["params"].get("DeleteAssociatedSnapshots") == "true" for q in dereg)
    # status names the encrypted image: the last run in the history.
    s = rig.agent("status", "--json")
    assert s.returncode == 0, s.err
    last = json.loads(s.stdout_text)["history"][0]
    assert last["run_id"] == run_id and last["image_id"] == j["image_id"], last
    assert last["image_name"] == NAME.format(run_id=run_id)


def test_encrypt_in_place(rig):
    configure(rig)
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    # Made under a name of the run's own, so that the copy can take the configured one.
    [q] = rig.sent("CreateImage")
    assert q["params"]["Name"].startswith("ec2-imaged-unencrypted-")
    j = done_run(rig.agent("resume", "--json"))
    assert_encrypted_in_place(rig, j)
    assert len(rig.sent("CopyImage")) == 1 and len(rig.sent("DeregisterImage")) == 1


def test_lost_create_image_answer_is_found_under_the_unencrypted_name(rig):
    """CreateImage made the original, but its answer was lost: the run looks it up by the name
    it was made under (ec2-imaged-unencrypted-RUN_ID), not by the configured one, and goes on."""
    configure(rig)
    # The pre-flight's DryRun CreateImage passes; the real one's answer is dropped.
    rig.proxy.faults({"kind": "delay", "delay_ms": 0, "action": "CreateImage"},
                     {"kind": "drop_response", "action": "CreateImage"})
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    j = done_run(rig.agent("resume", "--json"))
    assert_encrypted_in_place(rig, j)
    [q] = rig.sent("CreateImage")
    assert q["fault"] == "drop_response", q
    assert q["params"]["Name"] == j["create_name"] == "ec2-imaged-unencrypted-" + j["run_id"]


def crash_at(rig, action):
    """`resume` with `action` held in the proxy: the agent is killed while it waits for the
    answer, then the request goes on to moto.  Returns the run state left behind."""
    rig.proxy.faults({"kind": "hold", "action": action, "delay_ms": 60000})
    p = rig.start("resume", "--json")
    deadline = time.monotonic() + DEADLINE
    while not rig.sent(action) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.sent(action), "never reached %s" % action
    p.kill()
    p.wait(timeout=DEADLINE)
    rig.proxy.release()
    return rig.state()["current"]


def wait_for(pred, what):
    deadline = time.monotonic() + DEADLINE
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_crash_after_copy_is_sent_resumes_with_one_copy(rig):
    configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    st = crash_at(rig, "CopyImage")
    # The original is recorded before CopyImage; the copy's id never was.
    assert st["phase"] == "distributing"
    assert st["unencrypted_image_id"] == st["image_id"]
    name = NAME.format(run_id=st["run_id"])
    wait_for(lambda: [i for i in rig.images() if i.get("Name") == name],
             "the held CopyImage never made its copy")
    j = done_run(rig.agent("resume", "--json"))
    assert_encrypted_in_place(rig, j)
    # The copy made by the killed run was adopted: no second request.
    assert len(rig.sent("CopyImage")) == 1


def test_crash_after_deregister_resumes_without_second_copy(rig):
    configure(rig)
    assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
    st = crash_at(rig, "DeregisterImage")
    original = st["unencrypted_image_id"]
    assert st["image_id"] != original and not st.get("unencrypted_deregistered")
    wait_for(lambda: original not in {i["ImageId"] for i in rig.images()},
             "the held DeregisterImage never deregistered")
    j = done_run(rig.agent("resume", "--json"))
    assert j["image_id"] == st["image_id"]
    assert_encrypted_in_place(rig, j)
    assert len(rig.sent("CopyImage")) == 1
    # Sent again after the crash: EC2's "not found" is taken as done.
    assert len(rig.sent("DeregisterImage")) == 2


def test_key_not_enabled_is_refused_before_create_image(rig):
    key = configure(rig)
    client(rig.moto.url, "kms", region=SRC).disable_key(KeyId=key["KeyId"])
    r = rig.agent("run", "--mode", "reboot", "--json")
    assert r.returncode == 1
    err = r.err + r.stdout_text
    assert "alias/golden" in err and "Disabled" in err, err
    assert rig.sent("CreateImage") == [] and rig.sent("CopyImage") == []


@pytest.fixture
def encrypted_rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """The rig, with the instance's root volume encrypted with alias/golden already."""
    kms = client(moto.url, "kms", region=SRC)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    ec2 = client(moto.url, "ec2", region=SRC)
    root = ec2.describe_images(ImageIds=[MOTO_AMI])["Images"][0]["RootDeviceName"]
    instance_id = ec2.run_instances(
        ImageId=MOTO_AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        BlockDeviceMappings=[{"DeviceName": root, "Ebs": {
            "VolumeSize": 8, "Encrypted": True, "KmsKeyId": key["Arn"]}}],
    )["Instances"][0]["InstanceId"]
    yield from rig_of(instance_id, tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin)


def test_image_encrypted_with_the_key_already_is_not_copied(encrypted_rig):
    rig = encrypted_rig
    rig.configure(kms_key="%s:alias/golden" % SRC)
    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.err
    [q] = rig.sent("CreateImage")
    j = done_run(rig.agent("resume", "--json"))
    [im] = run_images(rig, j["run_id"])
    assert im["ImageId"] == j["image_id"]
    [ebs] = [m["Ebs"] for m in im["BlockDeviceMappings"] if "Ebs" in m]
    assert ebs.get("KmsKeyId") == key_arn(rig), ebs
    assert rig.sent("CopyImage") == [] and rig.sent("DeregisterImage") == []
    assert "unencrypted_image_id" not in j
    # It keeps the name it was made under: an AMI cannot be renamed (README, Encryption).
    assert im["Name"] == q["params"]["Name"] == j["create_name"]


def test_encrypt_in_place_under_the_iam_policy(auth_rig):
    """The shipped policy (its KMS resources widened for moto, which cannot match an ARN) under
    moto's enforcement: encryption in place and, on the second run, retention; then every request
    evaluated against the file as shipped, with the tags of what was deregistered or deleted."""
    rig = auth_rig(for_moto(POLICY.read_text()))
    kms = client(rig.moto.url, "kms", rig.admin, SRC)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden", TargetKeyId=key["KeyId"])
    rig.configure(kms_key="%s:alias/golden" % SRC, keep_newest=1, lineage="web")
    book = TagBook(rig, (SRC,))

    def run():
        """run and resume; the tags are read while CopyImage is delayed in the proxy, when the
        original and its (tagged) snapshots are there: DeregisterImage and DeleteSnapshot are
        judged by them.  (A delay, not a hold: a released proxy lets later holds pass.)"""
        book.update()
        assert rig.agent("run", "--mode", "reboot", "--json").returncode == 0
        before = len(rig.sent("CopyImage"))
        rig.proxy.faults({"kind": "delay", "action": "CopyImage", "delay_ms": 8000})
        p = rig.start("resume", "--json")
        wait_for(lambda: len(rig.sent("CopyImage")) > before, "never reached CopyImage")
        book.update()
        _, p.err = p.communicate(timeout=DEADLINE * 4)
        p.out.seek(0)
        p.stdout_text = p.out.read()
        return done_run(p)

    first = run()
    second = run()
    left = {im["ImageId"] for im in rig.images()}
    assert left == {second["image_id"]}, (left, first["image_id"])
    assert len(rig.sent("CopyImage")) == 2
    check_requests_against_policy(rig, book)
