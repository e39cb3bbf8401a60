# SPDX-License-Identifier: Apache-2.0
"""packaging/ssm/ec2-imaged-run.json, the SSM Command document that fleets use: its shape, and
that SSM (moto's) accepts it (CreateDocument) and runs it against instances selected by tag
(SendCommand with Targets=tag:Golden), as the README shows with `aws ssm send-command`."""

import json
from pathlib import Path

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "packaging" / "ssm" / "ec2-imaged-run.json"
REGION = "us-east-1"


def test_document_shape():
    d = json.loads(DOC.read_text())
    assert d["schemaVersion"] == "2.2"
    (step,) = d["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    commands = step["inputs"]["runCommand"]
    assert commands[-1] == "exec /usr/sbin/ec2-imaged trigger --wait --json"
    assert step["inputs"]["timeoutSeconds"] == "{{ executionTimeout }}"
    assert d["parameters"]["executionTimeout"]["default"] == "7200"


def test_create_document_and_send_command_by_tag(moto):
    ec2 = client(moto.url, "ec2", region=REGION)
    ssm = client(moto.url, "ssm", region=REGION)
    golden = [create_moto_instance(moto.url, region=REGION) for _ in range(2)]
    other = create_moto_instance(moto.url, region=REGION)
    ec2.create_tags(Resources=golden, Tags=[{"Key": "Golden", "Value": "true"}])

    r = ssm.create_document(Content=DOC.read_text(), Name="ec2-imaged-run",
                            DocumentType="Command", DocumentFormat="JSON")
    desc = r["DocumentDescription"]
    assert desc["Status"] == "Active" and desc["SchemaVersion"] == "2.2"
    assert [p["Name"] for p in desc["Parameters"]] == ["executionTimeout"]
    got = ssm.get_document(Name="ec2-imaged-run")
    assert json.loads(got["Content"]) == json.loads(DOC.read_text())

    cmd = ssm.send_command(DocumentName="ec2-imaged-run",
                           Targets=[{"Key": "tag:Golden", "Values": ["true"]}],
                           Parameters={"executionTimeout": ["3600"]},
                           Comment="golden image refresh")["Command"]
    assert cmd["DocumentName"] == "ec2-imaged-run"
    assert cmd["Targets"] == [{"Key": "tag:Golden", "Values": ["true"]}]
    assert cmd["Parameters"] == {"executionTimeout": ["3600"]}
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"]
    assert [c["CommandId"] for c in listed] == [cmd["CommandId"]]
    # The tag selects the golden instances and only them (moto resolves it through EC2).
    assert sorted(cmd["InstanceIds"]) == sorted(golden)
    for iid in golden:
        inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=iid)
        assert inv["DocumentName"] == "ec2-imaged-run" and inv["InstanceId"] == iid
