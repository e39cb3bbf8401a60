# SPDX-License-Identifier: Apache-2.0
"""Authentication failures the AWS SDKs recover from, against moto behind the fault proxy.

- A clock off from AWS's: the proxy's skewed_clock fault plays AWS on a clock an hour ahead,
  refusing a signature dated more than 5 minutes from it (RequestTimeTooSkewed for EC2,
  InvalidSignatureException for the JSON services) with its own Date. The client takes the
  offset from that Date, signs with it from then on, and tries again once, at once; even a call
  that must not run twice (CreateImage), since AWS acted on nothing it refused.
- Role credentials AWS no longer takes (revoked or rotated under us): the proxy's reject_key
  fault refuses the first key the IMDS test server handed out (AuthFailure, ExpiredToken), the
  IMDS server has a new set by then (rotate_on_fetch), and the client drops its cached set and
  tries once more with a fresh one. Environment credentials cannot be refreshed: no retry.
"""

import calendar
import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import moto_auth as helpers
from test_ec2_client import DUMMY, REGION, instance, ok, failed, ec2_probe, probe_bin  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
AHEAD = 3600  # seconds: AWS's clock, as the proxy plays it, is this far ahead of ours
TOLERANCE = 300
FIRST_KEY = "ASIAIMDSTEST00000001"  # imds_server.py: the first set it issues


def skew(proxy, count=100, action=None):
    fault = {"kind": "skewed_clock", "offset_s": AHEAD, "tolerance_s": TOLERANCE, "count": count}
    if action:
        fault["action"] = action
    proxy.faults(fault)


def signed_offsets(proxy):
    """For each request the proxy saw (control requests aside): its X-Amz-Date minus the time
    the proxy received it, in seconds (about 0 on our clock, about AHEAD on AWS's)."""
    out = []
    for r in proxy.requests():
        date = dict((k.lower(), v) for k, v in r["headers"]).get("x-amz-date")
        if r["action"] and date:
            signed = calendar.timegm(time.strptime(date, "%Y%m%dT%H%M%SZ"))
            out.append(signed - r["time"])
    return out


def refused_then_corrected(offsets, n_refused=1):
    """The first n_refused requests went out on our clock, every later one on AWS's."""
    assert len(offsets) > n_refused, offsets
    assert all(abs(o) < 60 for o in offsets[:n_refused]), offsets
    assert all(abs(o - AHEAD) < 60 for o in offsets[n_refused:]), offsets


# ---------------------------------------------------------------- clock skew


def test_ec2_call_signs_with_aws_time_after_request_time_too_skewed(moto, instance, fault_proxy,
                                                                    ec2_probe):
    proxy = fault_proxy(moto)
    skew(proxy)
    r = ok(ec2_probe(proxy, "describe-instance", instance))
    assert r["attempts"] == 2, r
    refused_then_corrected(signed_offsets(proxy))


def test_create_image_is_sent_again_after_a_refused_time(moto, instance, fault_proxy, ec2_probe):
    # CreateImage must not run twice, but a refused signature means EC2 did nothing.
    proxy = fault_proxy(moto)
    skew(proxy)
    r = ok(ec2_probe(proxy, "create-image", instance, "skew-test", "--no-snapshot-tags"))
    assert r["attempts"] == 2, r
    refused_then_corrected(signed_offsets(proxy))
    images = helpers.client(moto.url, "ec2", None, REGION).describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": ["skew-test"]}])["Images"]
    assert [i["ImageId"] for i in images] == [r["image_id"]]


def dist_probe_bin():
    tools = os.environ.get("EC2_IMAGED_TOOLS") or str(REPO / "build" / "tools")
    path = os.path.join(tools, "dist_probe")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built (make build/tools/dist_probe)" % path)
    return path


def test_json_service_signs_with_aws_time_after_invalid_signature(moto, fault_proxy, agent_env):
    key = helpers.client(moto.url, "kms", None, REGION).create_key()["KeyMetadata"]["KeyId"]
    proxy = fault_proxy(moto)
    skew(proxy)
    p = subprocess.run([dist_probe_bin(), "--endpoint", proxy.url, "--region", REGION,
                        "kms-describe", key], env=agent_env(endpoint=proxy, creds=DUMMY),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0 and out["ok"], (out, p.stderr)
    refused_then_corrected(signed_offsets(proxy))


# ---------------------------------------------------------------- through the agent


@pytest.fixture
def check(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """check() -> (exit status, JSON) of `ec2-imaged check --json` on an instance moto knows,
    with role credentials from the IMDS test server and EC2 behind the fault proxy."""
    instance_id = helpers.create_moto_instance(moto.url, region=REGION)
    imds = imds_factory(instance_id=instance_id, region=REGION, account_id="123456789012")
    proxy = fault_proxy(moto)
    config = tmp_path / "ec2-imaged.conf"
    config.write_text("[aws]\nmax_attempts = 3\nretry_deadline_ms = 10000\n"
                      "[run]\nstate_dir = %s\n[hooks]\ndir = %s\n"
                      % (tmp_path / "state", tmp_path / "hooks"))

    def run():
        p = subprocess.run([agent_bin, "--config", str(config), "check", "--json"],
                           env=agent_env(imds=imds, endpoint=proxy), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        try:
            return p.returncode, json.loads(p.stdout)
        except ValueError:
            pytest.fail("not JSON: %r\n%s" % (p.stdout, p.stderr))

    run.proxy, run.imds = proxy, imds
    return run


def test_the_offset_holds_for_every_later_call(check):
    skew(check.proxy)
    rc, out = check()
    assert rc == 0 and out["ok"], out
    # One refusal in the whole pre-flight: every call after the first is signed on AWS's time.
    offsets = signed_offsets(check.proxy)
    assert len(offsets) >= 3, offsets
    refused_then_corrected(offsets)


@pytest.mark.parametrize("code", ["AuthFailure", "ExpiredToken"])
def test_refused_role_credentials_are_fetched_again(check, code):
    check.imds.control({"rotate_on_fetch": True})
    check.proxy.faults({"kind": "reject_key", "access_key_id": FIRST_KEY, "code": code,
                        "count": 100})
    rc, out = check()
    assert rc == 0 and out["ok"], out
    keys = [r["access_key_id"] for r in check.proxy.requests() if r["action"]]
    # One call refused with the first set; the same call and every later one with the new set.
    assert keys[0] == FIRST_KEY and FIRST_KEY not in keys[1:], keys
    assert len(set(keys[1:])) == 1, keys
    assert check.imds.stats()["credential_fetches"] == 2


def test_environment_credentials_are_not_retried(moto, instance, fault_proxy, ec2_probe):
    proxy = fault_proxy(moto)
    proxy.faults({"kind": "reject_key", "access_key_id": DUMMY[0], "count": 100})
    r = ec2_probe(proxy, "describe-instance", instance)
    failed(r, errno.EREMOTEIO, code="AuthFailure")
    assert r["attempts"] == 1, r
