# SPDX-License-Identifier: Apache-2.0
"""The agent's EC2 Query API client against moto, directly and through the fault proxy.

Everything goes through build/tools/ec2_probe, which makes one call and prints one JSON object
({"ok", result fields or "error": {errno, errno_name, code, message, request_id, http_status},
"attempts"}).  botocore (Debian's python3-botocore) sets moto up and checks what the client did.
Every endpoint is a loopback test server: agent_env pins AWS_ENDPOINT_URL to it and the probe
refuses anything else.

moto 5.2 quirks met here (see tests/peers/moto_auth.py for the auth ones):
  * CreateImage with a TagSpecification for "snapshot" raises NotImplementedError: HTTP 500 with
    an HTML body.  The tests tag images only (--no-snapshot-tags) and one test pins the quirk.
  * DeregisterImage ignores DeleteAssociatedSnapshots; the client deletes the snapshots itself.
  * DeleteSnapshot of a snapshot an image still uses is InvalidSnapshot.InUse, as in EC2.
  * Every request id is the literal "request-id".
  * IAM denials come from moto's auth layer as AccessDenied (HTTP 403), never as EC2's
    UnauthorizedOperation, so a DryRun by a user without permission cannot be told apart.
"""

import errno
import http.client
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

import moto_auth as helpers

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DUMMY = helpers.DUMMY_CREDS
# Stop a probe that hangs; not a performance bound (a call takes well under a second).
HANG_GUARD_S = 120
# Small backoff so that retry tests stay quick; the schedule itself is backoff.c's business.
FAST_RETRY = ("--retry-base-ms", "20", "--retry-cap-ms", "200")


@pytest.fixture
def probe_bin():
    tools = os.environ.get("EC2_IMAGED_TOOLS") or str(REPO / "build" / "tools")
    path = os.path.join(tools, "ec2_probe")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built (make build/tools/ec2_probe)" % path)
    return path


@pytest.fixture
def ec2_probe(probe_bin, agent_env):
    """ec2_probe(endpoint, *call, creds=DUMMY, flags=(), env=None) -> the probe's JSON result.

    flags are global options (--max-attempts ...); the exit status must match "ok"."""

    def run(endpoint, *call, creds=DUMMY, flags=(), env=None):
        url = getattr(endpoint, "url", endpoint)
        env = env or agent_env(endpoint=url, creds=creds)
        argv = [probe_bin, "--endpoint", url, "--region", REGION, *FAST_RETRY, *flags,
                *[str(c) for c in call]]
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=HANG_GUARD_S)
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        assert len(lines) == 1, "rc=%d stdout=%r stderr=%s" % (p.returncode, p.stdout, p.stderr)
        out = json.loads(lines[0])
        out["_stderr"] = p.stderr
        assert p.returncode == (0 if out["ok"] else 1), out
        return out

    return run


def ok(r):
    assert r["ok"], r
    return r


def failed(r, err, code=None, http_status=None):
    assert not r["ok"], r
    e = r["error"]
    assert e["errno"] == err, "%s: expected %s" % (r, errno.errorcode[err])
    if code is not None:
        assert e["code"] == code, r
    if http_status is not None:
        assert e["http_status"] == http_status, r
    return e


def ec2(endpoint, creds=None):
    return helpers.client(getattr(endpoint, "url", endpoint), "ec2", creds, REGION)


def sent(proxy, action):
    """The requests for ACTION the fault proxy saw, in order."""
    return [r for r in proxy.requests() if r["action"] == action]


@pytest.fixture
def instance(moto):
    return helpers.create_moto_instance(moto.url, region=REGION)


def image_snapshots(endpoint, image_id):
    im = ec2(endpoint).describe_images(ImageIds=[image_id])["Images"][0]
    snaps = [m["Ebs"]["SnapshotId"] for m in im["BlockDeviceMappings"] if "Ebs" in m]
    assert snaps
    return snaps


def assert_snapshots_gone(endpoint, snaps):
    client = ec2(endpoint)
    for s in snaps:
        with pytest.raises(client.exceptions.ClientError) as ei:
            client.describe_snapshots(SnapshotIds=[s])
        assert ei.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"


def make_image(ec2_probe, endpoint, instance, name, *extra):
    r = ok(ec2_probe(endpoint, "create-image", instance, name, "--no-snapshot-tags", *extra))
    assert r["image_id"].startswith("ami-")
    return r["image_id"]


# ---------------------------------------------------------------- the calls


def test_describe_instance(moto, instance, ec2_probe):
    r = ok(ec2_probe(moto, "describe-instance", instance))
    assert r["attempts"] == 1
    got = r["instance"]
    want = ec2(moto).describe_instances(InstanceIds=[instance])
    want = want["Reservations"][0]["Instances"][0]
    assert got["instance_id"] == instance
    assert got["state"] == want["State"]["Name"] == "running"
    assert got["root_device_name"] == want["RootDeviceName"]
    assert got["root_device_type"] == "ebs"
    assert got["image_id"] == want["ImageId"]
    assert got["architecture"] == want["Architecture"]
    assert [(d["device_name"], d["volume_id"]) for d in got["block_devices"]] == [
        (m["DeviceName"], m["Ebs"]["VolumeId"]) for m in want["BlockDeviceMappings"]]
    root = [d for d in got["block_devices"] if d["device_name"] == got["root_device_name"]]
    assert root and root[0]["volume_id"].startswith("vol-")


def test_describe_instance_not_found(moto, ec2_probe):
    r = ec2_probe(moto, "describe-instance", "i-0123456789abcdef0")
    e = failed(r, errno.EREMOTEIO, "InvalidInstanceID.NotFound", 400)
    assert "i-0123456789abcdef0" in e["message"]
    assert e["request_id"]
    assert r["attempts"] == 1


def test_create_image_dry_run_allowed(moto, instance, ec2_probe):
    r = ok(ec2_probe(moto, "create-image", instance, "dry-run-image", "--dry-run",
                     "--tag", "a=b"))
    assert r["image_id"] is None
    assert ec2(moto).describe_images(Owners=["self"])["Images"] == []


def test_create_image_with_tags(moto, instance, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    r = ok(ec2_probe(proxy, "create-image", instance, "ec2-imaged-web-1", "--no-reboot",
                     "--description", "nightly image & more", "--tag", "ec2-imaged:run=r1",
                     "--tag", "Name=web server", "--tag", "empty=", "--no-snapshot-tags"))
    image_id = r["image_id"]

    # What went on the wire (the proxy decodes the form): every parameter, no DryRun.
    (req,) = sent(proxy, "CreateImage")
    p = req["params"]
    assert p["Version"] == "2016-11-15"
    assert (p["InstanceId"], p["Name"], p["NoReboot"]) == (instance, "ec2-imaged-web-1", "true")
    assert p["Description"] == "nightly image & more"
    assert p["TagSpecification.1.ResourceType"] == "image"
    assert (p["TagSpecification.1.Tag.2.Key"], p["TagSpecification.1.Tag.2.Value"]) == (
        "Name", "web server")
    assert "TagSpecification.2.ResourceType" not in p and "DryRun" not in p
    headers = {k.lower(): v for k, v in req["headers"]}
    assert headers["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert headers["host"] == "127.0.0.1:%d" % proxy.port
    assert headers["authorization"] == "<redacted>" and headers["x-amz-date"].endswith("Z")

    want = ec2(moto).describe_images(ImageIds=[image_id])["Images"][0]
    assert {t["Key"]: t["Value"] for t in want["Tags"]} == {
        "ec2-imaged:run": "r1", "Name": "web server", "empty": ""}
    assert want["Description"] == "nightly image & more"


def test_create_image_snapshot_tag_specification(moto, instance, fault_proxy, ec2_probe):
    """Without --no-snapshot-tags the snapshots are tagged in the same call, as EC2 allows.
    moto 5.2 cannot do that (NotImplementedError -> HTML 500), which this test pins down."""
    proxy = fault_proxy()
    r = ec2_probe(proxy, "create-image", instance, "with-snapshot-tags", "--tag", "k=v",
                  flags=("--max-attempts", "2"))
    reqs = sent(proxy, "CreateImage")
    p = reqs[0]["params"]
    assert (p["TagSpecification.1.ResourceType"], p["TagSpecification.2.ResourceType"]) == (
        "image", "snapshot")
    assert (p["TagSpecification.2.Tag.1.Key"], p["TagSpecification.2.Tag.1.Value"]) == ("k", "v")
    # moto 5.2 answers with a non-XML 500. A moto that learned to tag snapshots in CreateImage
    # fails here on purpose: the agent could then tag them in the same call (README, Tags).
    assert not r["ok"], "moto now tags snapshots in CreateImage: %r" % r
    # The non-XML 500 counts as transient: retried, then given up with the status kept.
    e = failed(r, errno.ETIME, None, 500)
    assert e["code"] is None
    assert r["attempts"] == 2 and len(reqs) == 2
    assert ec2(moto).describe_images(Owners=["self"])["Images"] == []


def test_describe_images(moto, instance, ec2_probe):
    image_id = make_image(ec2_probe, moto, instance, "ec2-imaged-a", "--tag", "team=x")
    other = make_image(ec2_probe, moto, instance, "ec2-imaged-b")

    r = ok(ec2_probe(moto, "describe-images", "--name", "ec2-imaged-a"))
    (im,) = r["images"]
    assert im["image_id"] == image_id and im["name"] == "ec2-imaged-a"
    assert im["state"] == "available" and im["state_reason"] is None
    assert im["creation_date"].startswith("20")
    assert im["tags"] == {"team": "x"}
    want = ec2(moto).describe_images(ImageIds=[image_id])["Images"][0]
    assert im["snapshot_ids"] == [m["Ebs"]["SnapshotId"] for m in want["BlockDeviceMappings"]
                                  if "Ebs" in m]
    assert im["snapshot_ids"]

    r = ok(ec2_probe(moto, "describe-images", "--image-id", other))
    assert [i["name"] for i in r["images"]] == ["ec2-imaged-b"]
    # Owner=self: moto's hundreds of public AMIs are not listed.
    r = ok(ec2_probe(moto, "describe-images"))
    assert sorted(i["image_id"] for i in r["images"]) == sorted([image_id, other])
    r = ok(ec2_probe(moto, "describe-images", "--name", "no-such-image"))
    assert r["images"] == []


def test_describe_images_unknown_id(moto, ec2_probe):
    r = ec2_probe(moto, "describe-images", "--image-id", "ami-0123456789abcdef0")
    e = failed(r, errno.EREMOTEIO, "InvalidAMIID.NotFound", 400)
    assert e["request_id"] and "ami-0123456789abcdef0" in e["message"]


def test_create_tags(moto, instance, ec2_probe):
    image_id = make_image(ec2_probe, moto, instance, "to-tag")
    (snap,) = ok(ec2_probe(moto, "describe-images", "--image-id", image_id))["images"][0][
        "snapshot_ids"]
    ok(ec2_probe(moto, "create-tags", image_id, snap, "--tag", "ec2-imaged:run=r2",
                 "--tag", "x=y z"))
    client = ec2(moto)
    im = client.describe_images(ImageIds=[image_id])["Images"][0]
    assert {t["Key"]: t["Value"] for t in im["Tags"]} == {"ec2-imaged:run": "r2", "x": "y z"}
    sn = client.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in sn["Tags"]} == {"ec2-imaged:run": "r2", "x": "y z"}

    ok(ec2_probe(moto, "create-tags", image_id, "--tag", "dry=run", "--dry-run"))
    im = client.describe_images(ImageIds=[image_id])["Images"][0]
    assert "dry" not in {t["Key"] for t in im["Tags"]}


def test_deregister_dry_run_keeps_image(moto, instance, ec2_probe):
    image_id = make_image(ec2_probe, moto, instance, "keep-me")
    ok(ec2_probe(moto, "deregister-image", image_id, "--delete-snapshots", "--dry-run"))
    assert ec2(moto).describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"


def test_deregister_with_snapshots(moto, instance, fault_proxy, ec2_probe):
    image_id = make_image(ec2_probe, moto, instance, "to-delete")
    client = ec2(moto)
    snaps = image_snapshots(moto, image_id)
    proxy = fault_proxy()
    ok(ec2_probe(proxy, "deregister-image", image_id, "--delete-snapshots"))

    (dereg,) = sent(proxy, "DeregisterImage")
    assert dereg["params"]["DeleteAssociatedSnapshots"] == "true"
    # moto ignores DeleteAssociatedSnapshots, so the client deleted each snapshot itself.
    assert [r["params"]["SnapshotId"] for r in sent(proxy, "DeleteSnapshot")] == snaps
    assert client.describe_images(Owners=["self"])["Images"] == []
    assert_snapshots_gone(moto, snaps)


class HonouringProxy:
    """In front of moto, does what EC2 does and moto does not: DeregisterImage with
    DeleteAssociatedSnapshots=true deletes the image's snapshots too.  Records actions."""

    def __init__(self, upstream):
        self.upstream = urlsplit(upstream)
        self.client = ec2(upstream)
        self.actions = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = dict(parse_qsl(body.decode(), keep_blank_values=True))
                proxy.actions.append(params.get("Action"))
                snaps = []
                if params.get("Action") == "DeregisterImage" and \
                        params.get("DeleteAssociatedSnapshots") == "true":
                    im = proxy.client.describe_images(ImageIds=[params["ImageId"]])["Images"]
                    snaps = [m["Ebs"]["SnapshotId"] for m in im[0]["BlockDeviceMappings"]
                             if "Ebs" in m]
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port,
                                                  timeout=60)
                conn.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    conn.putheader(k, v)
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status == 200:
                    for s in snaps:
                        proxy.client.delete_snapshot(SnapshotId=s)
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.getheader("Content-Type", "text/xml"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def honouring_proxy(moto):
    p = HonouringProxy(moto.url)
    yield p
    p.stop()


def test_deregister_snapshots_already_gone(moto, instance, honouring_proxy, ec2_probe):
    """Against an EC2 that honours DeleteAssociatedSnapshots, the explicit DeleteSnapshot
    finds nothing, and InvalidSnapshot.NotFound is not an error."""
    image_id = make_image(ec2_probe, moto, instance, "gone")
    snaps = image_snapshots(moto, image_id)
    r = ok(ec2_probe(honouring_proxy, "deregister-image", image_id, "--delete-snapshots"))
    assert honouring_proxy.actions == ["DescribeImages", "DeregisterImage"] + [
        "DeleteSnapshot"] * len(snaps)
    assert r["attempts"] == 1
    assert_snapshots_gone(moto, snaps)
    # Once the image is gone, asking again fails at the image lookup.
    r = ec2_probe(moto, "deregister-image", image_id, "--delete-snapshots")
    assert not r["ok"] and r["error"]["code"].startswith("InvalidAMIID."), r


def test_delete_snapshot_in_use(moto, instance, ec2_probe):
    image_id = make_image(ec2_probe, moto, instance, "in-use")
    (snap,) = ok(ec2_probe(moto, "describe-images", "--image-id", image_id))["images"][0][
        "snapshot_ids"]
    ok(ec2_probe(moto, "delete-snapshot", snap, "--dry-run"))
    r = ec2_probe(moto, "delete-snapshot", snap)
    e = failed(r, errno.EREMOTEIO, "InvalidSnapshot.InUse", 400)
    assert image_id in e["message"]


def test_raw_call(moto, ec2_probe):
    r = ok(ec2_probe(moto, "raw", "DescribeRegions", "RegionName.1=eu-west-1"))
    assert r["root"] == "DescribeRegionsResponse"
    assert "<regionName>eu-west-1</regionName>" in r["xml"]


def test_endpoint_env_wins_over_config(moto, agent_env, ec2_probe):
    # --endpoint names a dead loopback port; AWS_ENDPOINT_URL_EC2 (moto) must win.
    env = agent_env(endpoint=None, creds=DUMMY, AWS_ENDPOINT_URL_EC2=moto.url)
    ok(ec2_probe(env["AWS_ENDPOINT_URL"], "describe-images", env=env))


# ---------------------------------------------------------------- retries and faults


def test_throttling_retried(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "throttle", "count": 3, "action": "DescribeImages"})
    r = ok(ec2_probe(proxy, "describe-images"))
    assert r["attempts"] == 4
    reqs = sent(proxy, "DescribeImages")
    assert len(reqs) == 4
    assert [q["fault"] for q in reqs] == ["throttle"] * 3 + [None]
    # Each attempt is signed afresh: the X-Amz-Date header is there on every one.
    assert all(any(k.lower() == "x-amz-date" for k, _ in q["headers"]) for q in reqs)


def test_5xx_retried(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "error500", "count": 1}, {"kind": "error503", "count": 1})
    r = ok(ec2_probe(proxy, "describe-images"))
    assert r["attempts"] == 3
    assert [q["fault"] for q in sent(proxy, "DescribeImages")] == ["error500", "error503", None]


def test_retries_exhausted(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "throttle", "count": 50})
    r = ec2_probe(proxy, "describe-images", flags=("--max-attempts", "3"))
    e = failed(r, errno.ETIME, "RequestLimitExceeded", 503)
    assert e["message"] == "Request limit exceeded." and e["request_id"]
    assert r["attempts"] == 3 and len(sent(proxy, "DescribeImages")) == 3


def test_retry_deadline(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "error503", "count": 1000})
    r = ec2_probe(proxy, "describe-images", flags=("--max-attempts", "1000",
                                                   "--retry-deadline-ms", "300"))
    failed(r, errno.ETIME, "Unavailable", 503)
    # The deadline, not the attempt limit, ended it.
    assert 1 < r["attempts"] < 1000
    assert len(sent(proxy, "DescribeImages")) == r["attempts"]


def test_malformed_answer_not_retried(moto, instance, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "malformed", "count": 5, "action": "CreateImage"})
    r = ec2_probe(proxy, "create-image", instance, "malformed", "--no-snapshot-tags")
    e = failed(r, errno.EBADMSG, None, 200)
    assert e["code"] is None
    # A mutating call that may have worked is not retried by the client. (libcurl would send it
    # again by itself if its reused connection died before the answer: see the next test.)
    assert r["attempts"] == 1 and len(sent(proxy, "CreateImage")) == 1


@pytest.mark.parametrize("once", [True, False])
def test_dropped_answer_on_a_reused_connection_is_not_resent_by_curl(moto, instance, fault_proxy,
                                                                      ec2_probe, once):
    """The request went out on a kept-alive connection, moto acted on it, and the connection
    died before any byte of the answer.  libcurl would send the request again on a fresh
    connection by itself (Curl_retry_request); http.c refuses the rewind, so what happens next is
    the client's decision: nothing for a call that must not run twice (CreateImage), its own
    counted retry otherwise."""
    proxy = fault_proxy()
    proxy.faults({"kind": "drop_response", "action": "CreateImage"})
    flags = ("--warm", "--once") if once else ("--warm",)
    r = ec2_probe(proxy, "create-image", instance, "dropped", "--no-snapshot-tags", flags=flags)
    [warm] = sent(proxy, "DescribeImages")
    creates = sent(proxy, "CreateImage")
    # The request under test went out on the warm-up's connection (the same client port).
    assert creates[0]["client"] == warm["client"], (warm["client"], creates[0]["client"])
    # Every CreateImage that reached the proxy is one the client itself decided to send.
    assert len(creates) == r["attempts"], (r, [c["client"] for c in creates])
    if once:
        failed(r, errno.ECONNRESET)
        assert r["attempts"] == 1
    else:
        # The client's retry reaches moto, which (like EC2) refuses the image's name now.
        failed(r, errno.EREMOTEIO, "InvalidAMIName.Duplicate", 400)
        assert r["attempts"] == 2
    images = ec2(moto).describe_images(Owners=["self"],
                                       Filters=[{"Name": "name", "Values": ["dropped"]}])
    assert len(images["Images"]) == 1


def test_malformed_describe(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "malformed", "count": 1, "action": "DescribeImages"})
    failed(ec2_probe(proxy, "describe-images"), errno.EBADMSG, None, 200)


def test_connection_reset_retried(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "reset", "count": 2, "action": "DescribeImages"})
    r = ok(ec2_probe(proxy, "describe-images"))
    assert r["attempts"] == 3
    assert [q["fault"] for q in sent(proxy, "DescribeImages")] == ["reset", "reset", None]


def test_slow_answer_times_out_and_is_retried(moto, fault_proxy, ec2_probe):
    proxy = fault_proxy()
    proxy.faults({"kind": "delay", "count": 1, "delay_ms": 3000, "action": "DescribeImages"})
    r = ok(ec2_probe(proxy, "describe-images", flags=("--timeout-ms", "1000")))
    # The delayed first attempt timed out and a later one succeeded. On a loaded machine moto
    # itself may be slower than the timeout once more, so the count is a lower bound.
    assert r["attempts"] >= 2
    assert proxy.stats()["by_kind"].get("delay") == 1


def test_body_ceiling(moto, ec2_probe):
    # moto's DescribeRegions answer is several kilobytes.
    r = ec2_probe(moto, "raw", "DescribeRegions", flags=("--max-body", "1024"))
    failed(r, errno.EFBIG)
    assert r["attempts"] == 1


def test_connection_refused_gives_up(agent_env, ec2_probe):
    env = agent_env(endpoint=None, creds=DUMMY)
    r = ec2_probe(env["AWS_ENDPOINT_URL"], "describe-images", env=env,
                  flags=("--max-attempts", "3"))
    e = failed(r, errno.ETIME)
    assert e["code"] is None and e["http_status"] == 0
    assert r["attempts"] == 3


def test_no_credentials(moto, agent_env, ec2_probe):
    env = agent_env(endpoint=moto, creds=None)
    r = ec2_probe(moto, "describe-images", env=env)
    failed(r, errno.ENOKEY)


# ---------------------------------------------------------------- signatures (moto auth on)


def test_signed_requests_accepted(moto_auth, ec2_probe):
    creds = moto_auth.creds
    iid = moto_auth_instance(moto_auth)
    r = ok(ec2_probe(moto_auth, "describe-instance", iid, creds=creds, flags=("--debug",)))
    assert r["instance"]["instance_id"] == iid
    # Values that encode differently under the various form rules: moto recomputes the
    # signature over the form as botocore encodes it, so these must match it byte for byte.
    tricky = ("--tag", "a=b c", "--tag", "u=\u00e9 \u00fc+&/=%~*'()!", "--tag", "sp ace=")
    ok(ec2_probe(moto_auth, "create-image", iid, "signed-dry-run", "--dry-run", *tricky,
                 creds=creds))
    image_id = ok(ec2_probe(moto_auth, "create-image", iid, "signed image (1)", *tricky,
                            "--no-snapshot-tags", creds=creds))["image_id"]
    im = ec2(moto_auth, creds).describe_images(ImageIds=[image_id])["Images"][0]
    assert {t["Key"]: t["Value"] for t in im["Tags"]} == {
        "a": "b c", "u": "\u00e9 \u00fc+&/=%~*'()!", "sp ace": ""}
    ok(ec2_probe(moto_auth, "deregister-image", image_id, "--delete-snapshots", creds=creds))
    # Nothing secret in what the probe printed, even with debug logging.
    assert creds[1] not in r["_stderr"] and "Signature=" not in r["_stderr"]


def test_session_token_signed(moto_auth, fault_proxy, ec2_probe):
    creds = helpers.role_credentials(moto_auth.url, moto_auth.creds)
    proxy = fault_proxy(moto_auth)
    ok(ec2_probe(proxy, "describe-images", creds=creds))
    (req,) = sent(proxy, "DescribeImages")
    assert "x-amz-security-token" in {k.lower() for k, _ in req["headers"]}
    # Without the token, moto refuses the temporary key.
    r = ec2_probe(moto_auth, "describe-images", creds=creds[:2])
    failed(r, errno.EREMOTEIO, "AuthFailure", 401)


def test_wrong_secret_is_auth_failure(moto_auth, ec2_probe):
    # Another last character: a secret that happened to end in the one we put there would be
    # the right one.
    secret = moto_auth.secret_access_key
    creds = (moto_auth.access_key_id, secret[:-1] + ("x" if secret[-1] != "x" else "y"))
    r = ec2_probe(moto_auth, "describe-images", creds=creds)
    e = failed(r, errno.EREMOTEIO, "AuthFailure", 401)
    assert "credentials" in e["message"]
    assert r["attempts"] == 1


def test_dry_run_without_permission(moto_auth, ec2_probe):
    iid = moto_auth_instance(moto_auth)
    creds = limited_user(moto_auth, ["ec2:Describe*"])
    ok(ec2_probe(moto_auth, "describe-instance", iid, creds=creds))
    r = ec2_probe(moto_auth, "create-image", iid, "not-allowed", "--dry-run", creds=creds)
    assert not r["ok"], r
    if r["error"]["code"] == "UnauthorizedOperation":
        failed(r, errno.EPERM, "UnauthorizedOperation")
        return
    # moto's IAM layer refuses before EC2's DryRun handling is reached.
    failed(r, errno.EREMOTEIO, "AccessDenied", 403)
    pytest.skip("moto 5.2 answers a denied DryRun with its IAM layer's AccessDenied (403), "
                "not EC2's UnauthorizedOperation; the -EPERM mapping is unit-level only")


def moto_auth_instance(peer):
    return helpers.create_moto_instance(peer.url, creds=peer.creds, region=REGION)


def limited_user(peer, actions, name="ec2-imaged-limited"):
    """An IAM user allowed only ACTIONS; returns its (akid, secret)."""
    iam = helpers.client(peer.url, "iam", peer.creds)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="limited", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
