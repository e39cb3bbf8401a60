# SPDX-License-Identifier: Apache-2.0
"""Provenance in the tags of a run's images ([image] tag templates, run/provenance.h), end to end
against moto: the image, its snapshots, its copy in a second region and the copy's snapshots all
carry the values rendered once at the run's start, read back with DescribeImages and
DescribeSnapshots; a resumed run (reboot mode: the run stops after CreateImage, `resume` goes on
as after the reboot) keeps them although the configuration and patched-at changed in between; a
value that only its rendering makes too long fails the run before CreateImage.

Safety: every run is `run --mode reboot` against moto: nothing is frozen, moto makes the image at
once and `resume` finishes the run without a real reboot. The agent talks to loopback peers only
(agent_env); servers stop by PID (conftest).
"""

import hashlib
import json
import os
import platform
import socket
import subprocess

import pytest

from moto_auth import client, create_moto_instance  # tests/peers, on sys.path via conftest

SRC, DST = "us-east-1", "us-west-2"
MOTO_AMI = "ami-12c6146b"
ACCOUNT = "123456789012"
AGENT_TIMEOUT = 120

TAGS = ["built-by={hostname} on {kernel}", "source={source_image_id}",
        "os={os_id}/{os_version}", "patched={patched_at}", "config={config_sha256}"]


class Setup:
    """moto with one instance, the IMDS server that says we are it (launched from MOTO_AMI), a
    state directory and a configuration."""

    def __init__(self, tmp, moto, env, agent_bin):
        self.tmp, self.moto, self.env, self.agent_bin = tmp, moto, env, agent_bin
        self.state_dir = tmp / "state"
        self.state_dir.mkdir(mode=0o700)
        self.config_path = tmp / "ec2-imaged.conf"

    def configure(self, tags, extra=""):
        text = ("[aws]\nmax_attempts = 2\nretry_deadline_ms = 10000\n"
                "[run]\nmode = reboot\nstate_dir = %s\nwait_timeout_s = 60\nwait_poll_max_s = 1\n"
                "[image]\nname = prov-{run_id}\n%s"
                "[hooks]\ndir = %s\n"
                "[distribute]\nregions = %s\n%s"
                % (self.state_dir, "".join("tag = %s\n" % t for t in tags),
                   self.tmp / "no-hooks", DST, extra))
        self.config_path.write_text(text)
        return text.encode()

    def agent(self, *args):
        r = subprocess.run([self.agent_bin, "--config", str(self.config_path), *args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=self.env, timeout=AGENT_TIMEOUT)
        return r

    def ec2(self, region=SRC):
        return client(self.moto.url, "ec2", region=region)

    def images(self, region=SRC):
        return self.ec2(region).describe_images(Owners=["self"])["Images"]

    def snapshots(self, region, image):
        ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
               if "Ebs" in m and m["Ebs"].get("SnapshotId")]
        assert ids, image
        return self.ec2(region).describe_snapshots(SnapshotIds=ids)["Snapshots"]

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())


@pytest.fixture
def setup(tmp_path, moto, imds_factory, agent_env, agent_bin):
    instance_id = create_moto_instance(moto.url, region=SRC, image_id=MOTO_AMI)
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT,
                        ami_id=MOTO_AMI)
    return Setup(tmp_path, moto, agent_env(imds=imds, endpoint=moto), agent_bin)


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def expected(config_bytes, patched_at):
    """What the templates of TAGS render to on this machine, and our two defaults."""
    osr = platform.freedesktop_os_release()
    os_id, os_version = osr.get("ID", ""), osr.get("VERSION_ID", "")
    return {
        "built-by": "%s on %s" % (socket.gethostname(), os.uname().release),
        "source": MOTO_AMI,
        "os": "%s/%s" % (os_id, os_version),
        "patched": patched_at,
        # no hooks: the digest of the one configuration file, as the README defines it
        "config": hashlib.sha256(config_bytes).hexdigest(),
        "ec2-imaged:source-image": MOTO_AMI,
        "ec2-imaged:os": "%s %s" % (os_id, os_version),
    }


def test_image_snapshots_and_copy_carry_the_rendered_tags_across_a_resume(setup):
    conf = setup.configure(TAGS)
    (setup.state_dir / "patched-at").write_text("2026-12-01T10:00:00Z\n")
    want = expected(conf, "2026-12-01T10:00:00Z")

    a = setup.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.stderr
    st = setup.state()["current"]
    assert st["phase"] == "rebooting", st
    assert st["tags"] == want, st["tags"]
    assert list(st["tags"]) == list(want)  # the configured tags first, then the defaults

    # Between CreateImage and the resume (the reboot): a new patch, another configuration. The
    # resume and its copies keep what the run rendered.
    (setup.state_dir / "patched-at").write_text("2026-12-02T11:00:00Z\n")
    setup.configure(["os=changed", "other=x"], extra="# edited\n")
    r = setup.agent("resume", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["phase"] == "done", j
    assert j["tags"] == want

    [image] = setup.images(SRC)
    [copy] = setup.images(DST)
    assert image["ImageId"] == j["image_id"]
    for region, im in ((SRC, image), (DST, copy)):
        for resource in [im] + setup.snapshots(region, im):
            t = tags_of(resource)
            got = {k: t.get(k) for k in want}
            assert got == want, (region, resource.get("ImageId") or resource["SnapshotId"], t)
            assert "other" not in t and t["ec2-imaged:run-id"] == j["run_id"]


def test_defaults_replaced_and_never_patched(setup):
    setup.configure(["ec2-imaged:os={os_id}", "patched={patched_at}"], extra="")
    a = setup.agent("run", "--mode", "reboot", "--json")
    assert a.returncode == 0, a.stderr
    tags = setup.state()["current"]["tags"]
    osr = platform.freedesktop_os_release()
    assert tags == {"ec2-imaged:os": osr.get("ID", ""), "patched": "never",
                    "ec2-imaged:source-image": MOTO_AMI}, tags


def test_rendered_value_too_long_fails_before_create_image(setup):
    """200 characters pass the load (the placeholder may be short); with the 64 of the digest
    the value is 264 characters, which EC2 would refuse: the run fails naming the tag, and no
    image is made."""
    setup.configure(["ok=1", "long=%s{config_sha256}" % ("x" * 200)])
    a = setup.agent("run", "--mode", "reboot", "--json")
    assert a.returncode != 0
    assert "[image] tag 'long': the value renders to 264 characters, EC2 allows 256" in a.stderr
    assert setup.images(SRC) == []
    st = setup.state()
    assert st.get("current") is None, st
    [h] = st["history"]
    assert h["result"] == "failed" and h.get("image_id") is None, h
    assert "tag 'long'" in h["error"], h


def test_check_renders_the_tags_a_run_would(setup):
    """`check` renders the name and the tags as the run would, before anything is changed: a
    value EC2 would refuse once rendered fails it naming the tag; a good one is shown rendered."""
    setup.configure(["ok=1", "long=%s{config_sha256}" % ("x" * 200)])
    c = setup.agent("check", "--json")
    assert c.returncode == 3, c.stderr
    [item] = [i for i in json.loads(c.stdout)["checks"] if i["name"] == "name-and-tags"]
    assert item["result"] == "failed", item
    assert "[image] tag 'long': the value renders to 264 characters" in item["detail"], item
    assert setup.images(SRC) == []
    setup.configure(["built-from={source_image_id}"])
    c = setup.agent("check", "--json")
    [item] = [i for i in json.loads(c.stdout)["checks"] if i["name"] == "name-and-tags"]
    assert c.returncode == 0 and item["result"] == "ok", (c.stderr, item)
    assert "built-from=%s" % MOTO_AMI in item["detail"], item
    assert "ec2-imaged:source-image=%s" % MOTO_AMI in item["detail"], item


def test_config_errors_name_file_line_and_key(setup):
    lines = setup.configure(["team=blue", "{kernel}x=1", "team=red"]).decode().split("\n")
    first, second = lines.index("tag = team=blue") + 1, lines.index("tag = team=red") + 1
    r = setup.agent("run", "--mode", "reboot", "--json")
    assert r.returncode != 0
    assert ("%s:%d: [image] tag 'team': duplicate key (also on line %d)"
            % (setup.config_path, second, first)) in r.stderr, r.stderr
    setup.configure(["a={nosuch}"])
    r = setup.agent("run", "--mode", "reboot", "--json")
    assert "tag 'a': unknown field '{nosuch}'" in r.stderr, r.stderr
    assert setup.images(SRC) == []
