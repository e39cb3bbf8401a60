# SPDX-License-Identifier: Apache-2.0
"""The distribution tests' rig (test_distribute.py and the tests built on it): moto with one
instance, the IMDS server that says we are it, the fault proxy in front of moto, a state dir and
the config that ties them up; and the helpers those tests share (the clone's part of the boot
check, KMS keys, tags, a finished run).  The fixtures `rig` and `auth_rig` that make one are in
tests/integration/conftest.py.
"""

import base64
import json
import re
import subprocess
import threading

import pytest

from moto_auth import client

SRC = "us-east-1"
DST = ("us-west-2", "eu-west-1")
MOTO_AMI = "ami-12c6146b"
ACCOUNT = "123456789012"
SHARE_ACCOUNT = "111122223333"
ORG = "arn:aws:organizations::123456789012:organization/o-abc123def4"
AGENT_TIMEOUT = 120  # seconds; the bound on one agent command
DEADLINE = 30
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


class Rig:
    """moto with one instance, the IMDS server that says we are it, the fault proxy in front of
    moto, a state dir and the config that ties them up."""

    def __init__(self, tmp, moto, proxy, env, agent_bin, instance_id):
        self.tmp, self.moto, self.proxy, self.env = tmp, moto, proxy, env
        self.agent_bin, self.instance_id = agent_bin, instance_id
        self.state_dir = tmp / "state"
        self.state_dir.mkdir(mode=0o700)
        self.config_path = tmp / "ec2-imaged.conf"
        self.procs = []

    def ec2(self, region=SRC):
        return client(self.moto.url, "ec2", region=region)

    def configure(self, notify=None, **dist):
        lines = ["[aws]", "max_attempts = 2", "retry_deadline_ms = 10000",
                 "[run]", "mode = reboot", "state_dir = %s" % self.state_dir,
                 "wait_timeout_s = 60", "wait_poll_max_s = 1",
                 "[image]", "name = dist-{run_id}", "tag = team=platform",
                 "[hooks]", "dir = %s" % (self.tmp / "no-hooks"),
                 "[distribute]"]
        lines += ["%s = %s" % (k, v) for k, v in dist.items()]
        lines += ["[notify]"] + ["%s = %s" % kv for kv in (notify or {}).items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, *args):
        out = open(self.tmp / ("agent-%d.out" % len(self.procs)), "w+")
        p = subprocess.Popen([self.agent_bin, "--config", str(self.config_path), *args],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                             env=self.env, start_new_session=True, text=True)
        p.out = out
        self.procs.append(p)
        return p

    def agent(self, *args):
        p = self.start(*args)
        try:
            _, err = p.communicate(timeout=AGENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail("ec2-imaged %s hung" % " ".join(args))
        p.out.seek(0)
        p.stdout_text, p.err = p.out.read(), err
        # Under the sanitizer build (EC2_IMAGED_BIN=build-san/...), failed runs count too.
        assert not SANITIZER_REPORT.search(err), "sanitizer report:\n" + err
        return p

    def run_and_resume(self):
        """`run --mode reboot` (CreateImage, then the run waits for the boot) and `resume`."""
        a = self.agent("run", "--mode", "reboot", "--json")
        assert a.returncode == 0, a.err
        r = self.agent("resume", "--json")
        return r

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())

    def sent(self, action):
        """The requests of action that were not DryRuns (EC2's form or KMS's JSON DryRun)."""
        return [q for q in self.proxy.requests()
                if q["action"] == action and q["params"].get("DryRun") != "true"
                and (q["json"] or {}).get("DryRun") is not True]

    def images(self, region=SRC):
        return self.ec2(region).describe_images(Owners=["self"])["Images"]

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=DEADLINE)
            p.out.close()


def rig_of(instance_id, tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """The Rig of moto's instance INSTANCE_ID, closed afterwards: a fixture yields from it."""
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT)
    proxy = fault_proxy(moto)
    r = Rig(tmp_path, moto, proxy, agent_env(imds=imds, endpoint=proxy), agent_bin, instance_id)
    try:
        yield r
    finally:
        r.close()


BOOT_CHECK_TAG = "ec2-imaged:boot-check"
BOOT_CHECK_RESULT = "ec2-imaged:boot-check-result"


class ClonePlayer(threading.Thread):
    """The clone's part, as run/bootcheck_report.c plays it on EC2: each instance tagged
    ec2-imaged:boot-check that appears in moto gets REPORT (None: no report at all) as its
    ec2-imaged:boot-check-result tag, once, after the test has read its user-data."""

    def __init__(self, rig, report, on_seen=None):
        super().__init__(daemon=True)
        self.ec2 = client(rig.moto.url, "ec2", getattr(rig, "admin", None), SRC)
        self.report, self.seen, self.user_data = report, [], {}
        self.on_seen = on_seen  # called when an instance appears (before its report)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for res in self.ec2.describe_instances(Filters=[
                    {"Name": "tag-key", "Values": [BOOT_CHECK_TAG]}])["Reservations"]:
                for inst in res["Instances"]:
                    iid = inst["InstanceId"]
                    if iid in self.seen:
                        continue
                    self.seen.append(iid)
                    ud = self.ec2.describe_instance_attribute(
                        InstanceId=iid, Attribute="userData")["UserData"].get("Value", "")
                    self.user_data[iid] = base64.b64decode(ud).decode()
                    if self.on_seen:
                        self.on_seen()
                    if self.report is not None:
                        self.ec2.create_tags(Resources=[iid],
                                             Tags=[{"Key": BOOT_CHECK_RESULT, "Value": self.report}])
            self.halt.wait(0.2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join(timeout=DEADLINE)


def configure_boot_check(rig, timeout_s=60, on_failure="keep"):
    """Add [boot_check] to the configuration rig.configure() wrote."""
    with open(rig.config_path, "a") as f:
        f.write("[boot_check]\nenable = yes\ninstance_type = t3.micro\n"
                "timeout_s = %d\non_failure = %s\nrequire_units = ssh.service\n"
                % (timeout_s, on_failure))


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def kms_key(rig, region, alias):
    kms = client(rig.moto.url, "kms", region=region)
    key = kms.create_key(Description="golden")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key


def done_run(r):
    assert r.returncode == 0, r.err
    j = json.loads(r.stdout_text)
    assert j["phase"] == "done", j
    return j
