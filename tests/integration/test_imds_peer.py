# SPDX-License-Identifier: Apache-2.0
"""The test peers are only worth trusting if real clients accept them.

IMDS server: botocore's IMDS fetchers and credential chain, and Debian's ec2-metadata script
(curl), plus protocol checks with a raw HTTP client.  Fault proxy: botocore against moto through
it.  Moto auth mode: SigV4 is really checked once enable_moto_auth() ran.
"""

import http.client
import json
import os
import re
import subprocess
import time
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from botocore.parsers import ResponseParserError
from botocore.utils import InstanceMetadataFetcher, InstanceMetadataRegionFetcher

import moto_auth as motoh  # tests/peers/moto_auth.py (the fixture has the same name)

TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOK = "X-aws-ec2-metadata-token"


def raw(peer, method, path, headers=None, target=None):
    """One request with exactly these headers; returns (status, headers, body bytes)."""
    u = urlsplit(peer.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, target or path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def token(peer, ttl="60"):
    status, _, body = raw(peer, "PUT", "/latest/api/token", {TTL: ttl})
    assert status == 200
    return body.decode()


def get(peer, path, tok=None):
    status, _, body = raw(peer, "GET", path, {TOK: tok} if tok else {})
    return status, body.decode()


def creds_of(peer, role):
    status, body = get(peer, "/latest/meta-data/iam/security-credentials/" + role, token(peer))
    assert status == 200
    return json.loads(body)


# ---------------------------------------------------------------- real IMDS clients


def test_botocore_fetchers_read_role_credentials_and_region(imds_factory):
    imds = imds_factory(role_name="imaged-role", region="eu-west-3",
                        availability_zone="eu-west-3c", access_key_id="AKIDFIXED0000EXAMPLE",
                        secret_access_key="fixed/secret", session_token="fixed-token")
    config = {"ec2_metadata_service_endpoint": imds.url}
    creds = InstanceMetadataFetcher(timeout=5, num_attempts=1,
                                    config=config).retrieve_iam_role_credentials()
    assert creds["role_name"] == "imaged-role"
    assert creds["access_key"] == "AKIDFIXED0000EXAMPLE"
    assert creds["secret_key"] == "fixed/secret"
    assert creds["token"] == "fixed-token"
    region = InstanceMetadataRegionFetcher(timeout=5, num_attempts=1,
                                           config=config).retrieve_region()
    assert region == "eu-west-3"
    stats = imds.stats()
    assert stats["token_puts"] == 2 and stats["unauthorized"] == 0


def test_botocore_credential_chain_uses_imdsv2(imds_factory, monkeypatch):
    imds = imds_factory(role_name="chain-role")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    session = botocore.session.Session()
    creds = session.get_credentials()
    assert creds is not None and creds.method == "iam-role"
    expected = creds_of(imds, "chain-role")
    frozen = creds.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        expected["AccessKeyId"], expected["SecretAccessKey"], expected["Token"])
    stats = imds.stats()
    assert stats["token_puts"] >= 2  # botocore's own, then ours in creds_of()
    assert stats["gets"]["/latest/meta-data/iam/security-credentials/chain-role"] >= 1
    assert stats["unauthorized"] == 0


def test_debian_ec2_metadata_script_through_http_proxy(imds_factory, have_tool, tmp_path):
    script = have_tool("ec2-metadata")
    have_tool("curl")
    # The script hard-codes the link-local address; it may only run with http_proxy pointing
    # at our loopback server, which then receives the absolute-form requests.
    text = open(script).read()
    assert 'METADATA_BASEURL="http://169.254.169.254"' in text
    imds = imds_factory(instance_id="i-0abc123def4567890", availability_zone="ap-south-1b",
                        instance_type="c6i.large")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path),
           "http_proxy": imds.url}
    assert env["http_proxy"].startswith("http://127.0.0.1:")
    assert not {"no_proxy", "NO_PROXY"} & set(env)
    out = subprocess.run([script, "-i", "-z", "-t", "-d"], env=env, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["instance-id: i-0abc123def4567890",
                                       "placement: ap-south-1b",
                                       "instance-type: c6i.large",
                                       "user-data: 1234,john,reboot,true"]
    stats = imds.stats()
    assert stats["token_puts"] == 1
    assert stats["absolute_form"] == stats["total"] == 5  # every request came via the proxy path


# ---------------------------------------------------------------- protocol details


def test_token_rules(imds):
    assert raw(imds, "PUT", "/latest/api/token")[0] == 400
    for bad in ("0", "21601", "abc", "-1", ""):
        assert raw(imds, "PUT", "/latest/api/token", {TTL: bad})[0] == 400, bad
    status, headers, body = raw(imds, "PUT", "/latest/api/token", {TTL: "21600"})
    assert status == 200 and headers[TTL] == "21600" and body
    assert raw(imds, "PUT", "/latest/api/token", {TTL: "60", "X-Forwarded-For": "10.0.0.1"})[0] \
        == 403
    assert raw(imds, "GET", "/latest/api/token")[0] == 405
    assert get(imds, "/latest/meta-data/instance-id")[0] == 401
    assert get(imds, "/latest/meta-data/instance-id", "not-a-token")[0] == 401
    assert get(imds, "/latest/meta-data/instance-id", body.decode()) == (200, "i-1234567890abcdef0")


def test_token_expiry_by_ttl_and_by_knob(imds):
    short = token(imds, "1")
    keep = token(imds, "600")
    time.sleep(1.3)
    assert get(imds, "/latest/meta-data/ami-id", short)[0] == 401
    assert get(imds, "/latest/meta-data/ami-id", keep)[0] == 200
    imds.control({"expire_tokens": True})
    assert get(imds, "/latest/meta-data/ami-id", keep)[0] == 401
    assert imds.stats()["unauthorized"] == 2


def test_imdsv1_mode_still_refuses_bad_tokens(imds_factory):
    imds = imds_factory(allow_imdsv1=True)
    assert get(imds, "/latest/meta-data/instance-id") == (200, "i-1234567890abcdef0")
    assert get(imds, "/latest/meta-data/instance-id", "bogus")[0] == 401
    imds.control({"allow_imdsv1": False})
    assert get(imds, "/latest/meta-data/instance-id")[0] == 401


def test_versions_listings_and_absolute_form(imds_factory):
    imds = imds_factory(role_name="lister", region="us-west-2")
    t = token(imds)
    status, versions = get(imds, "/", t)
    assert status == 200 and {"2009-04-04", "2021-07-15", "latest"} <= set(versions.split("\n"))
    for prefix in ("latest", "2021-07-15", "2009-04-04"):
        assert get(imds, "/%s/meta-data/placement/region" % prefix, t) == (200, "us-west-2")
    assert get(imds, "/1999-01-01/meta-data/instance-id", t)[0] == 404
    md = get(imds, "/latest/meta-data/", t)[1].split("\n")
    assert {"instance-id", "placement/", "iam/", "public-keys/"} <= set(md)
    placement = get(imds, "/latest/meta-data/placement/", t)
    assert get(imds, "/latest/meta-data/placement", t) == placement  # a dir without its slash
    assert "region" in placement[1].split("\n")
    assert get(imds, "/latest/meta-data/iam/", t) == (200, "info\nsecurity-credentials/")
    assert get(imds, "/latest/meta-data/iam/security-credentials/", t) == (200, "lister")
    assert get(imds, "/latest/meta-data/public-keys/", t) == (200, "0=test")
    assert get(imds, "/latest/meta-data/nonexistent", t)[0] == 404
    info = json.loads(get(imds, "/latest/meta-data/iam/info", t)[1])
    assert info["InstanceProfileArn"].endswith(":instance-profile/lister")
    # What curl sends through a proxy: the absolute form, with the link-local host in it.
    status, _, body = raw(imds, "GET", None, {TOK: t, "Host": "169.254.169.254"},
                          target="http://169.254.169.254/latest/meta-data/placement/region")
    assert (status, body) == (200, b"us-west-2")


def test_identity_document_follows_overrides(imds_factory):
    imds = imds_factory(instance_id="i-0123456789abcdef0", region="eu-central-1",
                        account_id="123456789012", ami_id="ami-0feedface0000000")
    t = token(imds)
    doc = json.loads(get(imds, "/latest/dynamic/instance-identity/document", t)[1])
    assert doc["accountId"] == "123456789012" and doc["region"] == "eu-central-1"
    assert doc["availabilityZone"] == "eu-central-1a" and doc["instanceId"] == "i-0123456789abcdef0"
    assert doc["imageId"] == "ami-0feedface0000000" and doc["architecture"] == "x86_64"
    assert "document" in get(imds, "/latest/dynamic/instance-identity/", t)[1].split("\n")


def test_user_data(imds_factory, tmp_path):
    none = imds_factory(no_user_data=True)
    t = token(none)
    assert get(none, "/latest/user-data", t)[0] == 404
    assert "user-data" not in get(none, "/latest/", t)[1].split("\n")
    none.control({"user_data": "#!/bin/sh\necho hi\n"})
    assert get(none, "/latest/user-data", t) == (200, "#!/bin/sh\necho hi\n")
    none.control({"user_data": None})
    assert get(none, "/latest/user-data", t)[0] == 404
    f = tmp_path / "ud.bin"
    f.write_bytes(b"\x00\xffbinary")
    with_file = imds_factory(user_data_file=f)
    status, _, body = raw(with_file, "GET", "/latest/user-data", {TOK: token(with_file)})
    assert (status, body) == (200, b"\x00\xffbinary")


def test_credentials_rotate(imds_factory):
    imds = imds_factory(role_name="rot")
    first = creds_of(imds, "rot")
    assert creds_of(imds, "rot") == first  # stable until it expires
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["Expiration"])
    assert first["Type"] == "AWS-HMAC" and first["Code"] == "Success"
    imds.control({"rotate_credentials": True})
    second = creds_of(imds, "rot")
    assert second["AccessKeyId"] != first["AccessKeyId"] and second["Token"] != first["Token"]
    # A short TTL makes the next issue expire by itself (Expiration is whole seconds).
    imds.control({"credential_ttl": 1, "rotate_credentials": True})
    third = creds_of(imds, "rot")
    time.sleep(1.1)
    fourth = creds_of(imds, "rot")
    assert fourth["AccessKeyId"] != third["AccessKeyId"]
    assert imds.stats()["credential_rotations"] == 3


def test_fixed_keys_rotate_token_only(imds_factory):
    imds = imds_factory(role_name="fixed", access_key_id="AKIDKEEP000000000000",
                        secret_access_key="keep-secret")
    first = creds_of(imds, "fixed")
    imds.control({"rotate_credentials": True})
    second = creds_of(imds, "fixed")
    assert second["AccessKeyId"] == first["AccessKeyId"] == "AKIDKEEP000000000000"
    assert second["SecretAccessKey"] == "keep-secret"
    assert second["Token"] != first["Token"]
    assert imds.stats()["credential_rotations"] == 1


def test_fault_knobs(imds):
    t = token(imds)
    imds.control({"fail_next": 2, "status": 503})
    assert get(imds, "/latest/meta-data/ami-id", t)[0] == 503
    assert raw(imds, "PUT", "/latest/api/token", {TTL: "60"})[0] == 503
    assert get(imds, "/latest/meta-data/ami-id", t)[0] == 200
    imds.control({"refuse_tokens": True})
    assert raw(imds, "PUT", "/latest/api/token", {TTL: "60"})[0] == 403
    imds.control({"refuse_tokens": True, "status": 401})
    assert raw(imds, "PUT", "/latest/api/token", {TTL: "60"})[0] == 401
    imds.reset()
    assert raw(imds, "PUT", "/latest/api/token", {TTL: "60"})[0] == 200
    assert imds.stats()["token_puts"] == 1  # reset cleared the counters


def test_log_holds_no_secrets(imds):
    t = token(imds)
    c = creds_of(imds, "baskinc-role")
    imds.stop()
    log = open(imds.log).read()
    assert "GET /latest/meta-data/iam/security-credentials/baskinc-role 200" in log
    for secret in (t, c["SecretAccessKey"], c["Token"]):
        assert secret not in log


# ---------------------------------------------------------------- fault proxy over moto


def test_fault_proxy_throttles_then_passes(fault_proxy):
    proxy = fault_proxy()
    ec2 = motoh.client(proxy.url, "ec2")
    proxy.faults({"kind": "throttle", "count": 1, "action": "DescribeInstances"})
    assert ec2.describe_regions()["Regions"]  # not matched by the action filter
    with pytest.raises(ClientError) as e:
        ec2.describe_instances()
    assert e.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert ec2.describe_instances()["Reservations"] == []
    reqs = proxy.requests()
    assert [r["action"] for r in reqs] == ["DescribeRegions", "DescribeInstances",
                                          "DescribeInstances"]
    assert [r["fault"] for r in reqs] == [None, "throttle", None]
    for r in reqs:
        auth = [v for k, v in r["headers"] if k.lower() == "authorization"]
        assert auth == ["<redacted>"]
        assert r["params"]["Version"]
    stats = proxy.stats()
    assert (stats["received"], stats["forwarded"], stats["faults_injected"]) == (3, 2, 1)
    proxy.clear()
    assert proxy.requests() == []


def test_fault_proxy_other_kinds(fault_proxy):
    proxy = fault_proxy()
    ec2 = motoh.client(proxy.url, "ec2")
    proxy.faults({"kind": "error500"}, {"kind": "malformed"}, {"kind": "reset"},
                 {"kind": "delay", "delay_ms": 50})
    with pytest.raises(ClientError) as e:
        ec2.describe_regions()
    assert e.value.response["Error"]["Code"] == "InternalError"
    with pytest.raises(ResponseParserError):
        ec2.describe_regions()
    with pytest.raises(ConnectionClosedError):
        ec2.describe_regions()
    assert ec2.describe_regions()["Regions"]
    assert proxy.stats()["by_kind"] == {"error500": 1, "malformed": 1, "reset": 1, "delay": 1}


# ---------------------------------------------------------------- moto with auth on


def test_moto_auth_checks_signatures(moto_auth):
    ec2 = motoh.client(moto_auth.url, "ec2", moto_auth.creds)
    assert ec2.describe_regions()["Regions"]
    assert ec2.describe_instances()["Reservations"] == []
    bad = motoh.client(moto_auth.url, "ec2", (moto_auth.access_key_id, "wrong-secret"))
    with pytest.raises(ClientError) as e:
        bad.describe_instances()
    assert e.value.response["Error"]["Code"] == "AuthFailure"


def test_moto_auth_with_role_credentials_served_by_imds(moto_auth, imds_factory, monkeypatch):
    akid, secret, session_token = motoh.role_credentials(moto_auth.url, moto_auth.creds)
    instance_id = motoh.create_moto_instance(moto_auth.url, moto_auth.creds)
    imds = imds_factory(instance_id=instance_id, region="us-east-1", account_id="123456789012",
                        access_key_id=akid, secret_access_key=secret,
                        session_token=session_token)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    session = botocore.session.Session()
    ec2 = session.create_client("ec2", region_name="us-east-1", endpoint_url=moto_auth.url)
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    assert found[0]["Instances"][0]["InstanceId"] == instance_id
    # The IMDS server keeps a given session token across rotation, as moto requires.
    imds.control({"rotate_credentials": True})
    assert creds_of(imds, "baskinc-role")["Token"] == session_token


# ---------------------------------------------------------------- fixtures for the agent's tests


def test_agent_env_is_minimal_and_loopback(agent_env, imds, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")  # must not reach the agent
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    env = agent_env(imds=imds, creds=("AKIDEXAMPLE", "s3cret"))
    assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == imds.url
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")  # dead port when not given
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cret" and "AWS_SESSION_TOKEN" not in env
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert "AWS_DEFAULT_REGION" not in env and "AWS_REGION" not in env
    assert not [k for k in env if "proxy" in k.lower()]
    assert agent_env(endpoint="http://localhost:1/", X_TEST=1)["X_TEST"] == "1"
    with pytest.raises(AssertionError):
        agent_env(endpoint="http://169.254.169.254")
