# SPDX-License-Identifier: Apache-2.0
"""The agent's IMDS client and credentials provider against tests/peers/imds_server.py.

Everything goes through build/tools/imds_probe, which runs a list of operations in one process
(so the token and credential caches carry over) and prints one JSON line per operation. The
`pause` operation lets a test change the server between two operations without racing the
probe. Every endpoint is a loopback test server: agent_env pins AWS_EC2_METADATA_SERVICE_ENDPOINT
to it, and the probe refuses anything else.
"""

import errno
import json
import os
import subprocess
import time
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CRED_PATH = "/latest/meta-data/iam/security-credentials/"
ID_PATH = "/latest/meta-data/instance-id"
# Stop a probe that hangs; not a performance bound (each run needs a few seconds at most).
HANG_GUARD_S = 120


@pytest.fixture
def probe_bin():
    tools = os.environ.get("EC2_IMAGED_TOOLS") or str(REPO / "build" / "tools")
    path = os.path.join(tools, "imds_probe")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built (make build/tools/imds_probe)" % path)
    return path


def parse_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class ProbeRun:
    """One imds_probe process: .results (per-op dicts), .final ({"token_fetches":...}), .log."""

    def __init__(self, binary, imds, env, flags, ops, log):
        self.log = log
        self.results = []
        self.final = None
        argv = [binary, "--endpoint", imds.url] + list(flags) + [str(o) for o in ops]
        self._err = open(log, "w")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True)

    def until_pause(self):
        """Read results up to and including the next pause; the probe then waits for resume()."""
        while True:
            line = self.proc.stdout.readline()
            assert line, "probe ended before a pause:\n" + self.stderr()
            r = json.loads(line)
            self.results.append(r)
            if r.get("op") == "pause":
                return [x for x in self.results if x.get("op") != "pause"]

    def resume(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self):
        out, _ = self.proc.communicate(timeout=HANG_GUARD_S)
        self._err.close()
        assert self.proc.returncode == 0, self.stderr()
        lines = parse_lines(out)
        self.final = lines.pop()
        assert "token_fetches" in self.final
        self.results += lines
        self.results = [r for r in self.results if r.get("op") != "pause"]
        return self

    def stderr(self):
        if not self._err.closed:
            self._err.flush()
        return Path(self.log).read_text(errors="replace")


@pytest.fixture
def probe(probe_bin, agent_env, tmp_path):
    """probe(imds, *ops, flags=(), env=None, start_only=False) -> ProbeRun (finished unless
    start_only).  Flags are imds_probe options such as "--ttl", "2"."""
    runs = []

    def run(imds, *ops, flags=(), env=None, start_only=False):
        log = tmp_path / ("probe-%d.log" % len(runs))
        p = ProbeRun(probe_bin, imds, env or agent_env(imds=imds), flags, ops, log)
        runs.append(p)
        if start_only:
            return p
        if p.proc.stdin:
            p.proc.stdin.close()
            p.proc.stdin = None
        return p.finish()

    yield run
    for p in runs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
        p._err.close()


def ok(result):
    assert result["ok"], result
    return result


def failed(result, code):
    assert not result["ok"], result
    assert result["errno"] == code, "%s: expected %s" % (result, errno.errorcode[code])
    return result


# ---------------------------------------------------------------- token handling


def test_token_fetched_once_and_reused(imds_factory, probe):
    imds = imds_factory(region="eu-west-3", availability_zone="eu-west-3c",
                        instance_id="i-0123456789abcdef0", account_id="123456789012",
                        role_name="imaged-role")
    ops = ["instance-id", "region", "az", "identity", "role", "creds", "user-data"]
    ops += ["get", "/latest/meta-data/"] * 10
    run = probe(imds, *ops)
    for r in run.results:
        ok(r)
    by_op = {r["op"]: r for r in run.results}
    assert by_op["instance-id"]["instance_id"] == "i-0123456789abcdef0"
    assert by_op["region"]["region"] == "eu-west-3"
    assert by_op["az"]["availability_zone"] == "eu-west-3c"
    ident = by_op["identity"]
    assert (ident["instance_id"], ident["region"], ident["availability_zone"],
            ident["account_id"]) == ("i-0123456789abcdef0", "eu-west-3", "eu-west-3c",
                                     "123456789012")
    assert ident["image_id"].startswith("ami-") and ident["instance_type"]
    assert by_op["role"]["role"] == "imaged-role"
    assert by_op["creds"]["source"] == "instance-role:imaged-role"
    assert by_op["user-data"]["body"] == "1234,john,reboot,true\n"
    assert run.final["token_fetches"] == 1
    stats = imds.stats()
    assert stats["token_puts"] == 1
    assert stats["unauthorized"] == 0
    assert stats["gets"]["/latest/meta-data/"] == 10


def test_short_ttl_token_is_renewed_before_it_expires(imds, probe):
    # TTL 4 s: the client renews 1 s early (a quarter of the TTL), so the token is reused at 1 s
    # and replaced at 4.5 s, without the server ever having to refuse it.
    run = probe(imds, "instance-id", "sleep", 1000, "instance-id", "sleep", 3500, "instance-id",
                flags=["--ttl", "4"])
    for r in run.results:
        ok(r)
    assert run.final["token_fetches"] == 2
    stats = imds.stats()
    assert stats["token_puts"] == 2
    assert stats["unauthorized"] == 0


def test_ttl_two_seconds_then_sleep_three(imds, probe):
    run = probe(imds, "instance-id", "sleep", 3000, "instance-id", flags=["--ttl", "2"])
    assert [r["ok"] for r in run.results] == [True, True, True]
    assert run.final["token_fetches"] == 2
    assert imds.stats()["unauthorized"] == 0


def test_server_expired_token_is_refreshed_once(imds, probe):
    run = probe(imds, "instance-id", "pause", "instance-id", "region", start_only=True)
    ok(run.until_pause()[0])
    imds.control({"expire_tokens": True})
    run.resume()
    run.finish()
    for r in run.results:
        ok(r)
    assert run.final["token_fetches"] == 2
    stats = imds.stats()
    assert stats["unauthorized"] == 1
    assert stats["token_puts"] == 2
    assert stats["gets"][ID_PATH] == 3


@pytest.mark.parametrize("allow_v1", [False, True])
def test_persistent_401_is_not_retried_forever(imds, probe, allow_v1):
    # Every GET of this path answers 401, whatever the token: one refresh, then give up, and
    # never try the GET without a token (not even when IMDSv1 is allowed).
    imds.control({"fail_next": 50, "status": 401, "path_prefix": ID_PATH})
    run = probe(imds, "instance-id", flags=["--allow-imdsv1"] if allow_v1 else [])
    failed(run.results[0], errno.EACCES)
    assert run.final["token_fetches"] == 2
    stats = imds.stats()
    # PUT, GET (401), PUT, GET (401): each GET right after a token, none tokenless.
    assert stats["token_puts"] == 2
    assert stats["total"] == 4
    assert stats["status"]["401"] == 2


@pytest.mark.parametrize("status,code", [(403, errno.EACCES), (404, errno.EOPNOTSUPP),
                                         (405, errno.EOPNOTSUPP), (400, errno.EINVAL)])
def test_refused_token_fails_without_imdsv1_fallback(imds_factory, probe, status, code):
    # The server would answer a tokenless GET: proving the client did not send one.
    imds = imds_factory(allow_imdsv1=True)
    imds.control({"refuse_tokens": True, "status": status})
    run = probe(imds, "instance-id", "creds")
    failed(run.results[0], code)
    failed(run.results[1], code)
    assert run.final["token_fetches"] == 0
    stats = imds.stats()
    assert stats["gets"] == {}
    assert stats["token_puts"] == 2


@pytest.mark.parametrize("status", [403, 404, 405])
def test_allow_imdsv1_falls_back_when_tokens_are_not_supported(imds_factory, probe, status):
    imds = imds_factory(allow_imdsv1=True, role_name="v1-role")
    imds.control({"refuse_tokens": True, "status": status})
    run = probe(imds, "instance-id", "creds", flags=["--allow-imdsv1"])
    assert ok(run.results[0])["instance_id"] == "i-1234567890abcdef0"
    assert ok(run.results[1])["role"] == "v1-role"
    assert run.final["token_fetches"] == 0
    stats = imds.stats()
    assert stats["gets"][ID_PATH] == 1
    assert stats["unauthorized"] == 0


def test_allow_imdsv1_does_not_fall_back_on_a_bad_request(imds_factory, probe):
    imds = imds_factory(allow_imdsv1=True)
    imds.control({"refuse_tokens": True, "status": 400})
    run = probe(imds, "instance-id", flags=["--allow-imdsv1"])
    failed(run.results[0], errno.EINVAL)
    assert imds.stats()["gets"] == {}


def test_allow_imdsv1_still_uses_tokens_when_they_work(imds, probe):
    run = probe(imds, "instance-id", "region", flags=["--allow-imdsv1"])
    ok(run.results[0])
    ok(run.results[1])
    assert run.final["token_fetches"] == 1
    assert imds.stats()["unauthorized"] == 0


# ---------------------------------------------------------------- retries and timeouts


def test_three_503_then_success(imds, probe):
    imds.control({"fail_next": 3, "status": 503})
    run = probe(imds, "instance-id")
    ok(run.results[0])
    stats = imds.stats()
    assert stats["status"]["503"] == 3
    assert run.final["token_fetches"] == 1
    # Three failed token PUTs, the PUT that worked, the GET.
    assert run.final["requests"] == 5


def test_503_on_gets_are_retried_with_the_same_token(imds, probe):
    imds.control({"fail_next": 3, "status": 503, "path_prefix": "/latest/meta-data/"})
    run = probe(imds, "instance-id")
    ok(run.results[0])
    assert run.final["token_fetches"] == 1
    assert imds.stats()["token_puts"] == 1


def test_endless_503_gives_up_at_the_deadline(imds, probe):
    imds.control({"fail_next": 100000, "status": 503})
    start = time.monotonic()
    run = probe(imds, "instance-id", flags=["--retry-deadline-ms", "1500"])
    elapsed = time.monotonic() - start
    failed(run.results[0], errno.ETIME)
    stats = imds.stats()
    # It retried, and it stopped because of the deadline, not because the failures ran out.
    assert 2 <= stats["status"]["503"] < 1000
    assert run.final["token_fetches"] == 0
    # Loose on purpose (a sanitizer build is slow): this checks "stopped", not speed.
    assert elapsed < 30


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_not_retried(imds, probe, status):
    imds.control({"fail_next": 10, "status": status, "path_prefix": ID_PATH})
    run = probe(imds, "instance-id")
    code = {400: errno.EINVAL, 403: errno.EACCES, 404: errno.ENOENT}[status]
    failed(run.results[0], code)
    assert imds.stats()["status"][str(status)] == 1


def test_delay_beyond_timeout_is_a_timeout_error(imds, probe):
    run = probe(imds, "instance-id", "pause", "instance-id",
                flags=["--timeout-ms", "300", "--retry-deadline-ms", "1000"], start_only=True)
    ok(run.until_pause()[0])
    imds.control({"delay_ms": 3000})
    run.resume()
    # Wait for the second result, then let the server answer promptly again.
    run.finish()
    failed(run.results[1], errno.ETIME)
    imds.control({"delay_ms": 0})
    again = probe(imds, "instance-id", flags=["--timeout-ms", "300"])
    ok(again.results[0])


def test_dead_endpoint_gives_up_at_the_deadline(imds, probe, agent_env):
    # agent_env() without a server points at a loopback port nothing listens on.
    dead = types.SimpleNamespace(url=agent_env()["AWS_EC2_METADATA_SERVICE_ENDPOINT"])
    run = probe(dead, "instance-id", flags=["--retry-deadline-ms", "500"])
    failed(run.results[0], errno.ETIME)
    assert run.final["requests"] >= 2


# ---------------------------------------------------------------- values and bodies


def test_user_data_404_is_enoent(imds, probe):
    imds.control({"user_data": None})
    run = probe(imds, "user-data", "instance-id")
    failed(run.results[0], errno.ENOENT)
    ok(run.results[1])


def test_oversized_user_data_is_efbig_and_the_client_recovers(imds, probe):
    imds.control({"user_data": "x" * (100 * 1024)})
    run = probe(imds, "user-data", "instance-id")
    failed(run.results[0], errno.EFBIG)
    ok(run.results[1])
    # 64 KiB is the default ceiling: exactly that much still fits.
    imds.control({"user_data": "y" * (64 * 1024)})
    run = probe(imds, "user-data")
    assert ok(run.results[0])["len"] == 64 * 1024


def test_malformed_values_are_ebadmsg(imds_factory, probe):
    imds = imds_factory(instance_id="not-an-instance", account_id="12345")
    run = probe(imds, "instance-id", "identity", "region")
    failed(run.results[0], errno.EBADMSG)
    failed(run.results[1], errno.EBADMSG)
    ok(run.results[2])


def test_no_role_is_enoent_and_provider_has_no_key(imds_factory, probe):
    imds = imds_factory(no_iam_role=True)
    run = probe(imds, "role", "creds", "provider-creds")
    failed(run.results[0], errno.ENOENT)
    failed(run.results[1], errno.ENOENT)
    failed(run.results[2], errno.ENOKEY)


def test_disabled_sends_nothing(imds, probe, agent_env):
    env = agent_env(imds=imds, AWS_EC2_METADATA_DISABLED="True")
    run = probe(imds, "instance-id", "provider-creds", env=env)
    failed(run.results[0], errno.ENODEV)
    failed(run.results[1], errno.ENOKEY)
    assert run.final["requests"] == 0
    assert imds.stats()["total"] == 0


def test_secrets_never_printed(imds_factory, probe):
    secret = "SeCrEtKeY0123456789/abcdefghijklmnopqrst"
    session = "SeSsIoNtOkEn" + "Q" * 200
    imds = imds_factory(role_name="quiet-role", access_key_id="ASIAQUIETROLE0000001",
                        secret_access_key=secret, session_token=session)
    run = probe(imds, "creds", "provider-creds", "get", CRED_PATH + "quiet-role",
                "get", "/latest/api/token", flags=["--debug"])
    ok(run.results[0])
    ok(run.results[1])
    ok(run.results[2])
    assert "body" not in run.results[2]
    out = json.dumps(run.results) + run.stderr()
    assert secret not in out
    assert session not in out
    # The server's IMDS tokens all start with this prefix.
    assert "AQAEA" not in out
    assert run.results[0]["access_key_id"] == "ASIAQUIETROLE0000001"


# ---------------------------------------------------------------- credentials provider


def test_provider_reuses_long_lived_credentials(imds, probe):
    run = probe(imds, "provider-creds", "provider-creds", "provider-creds")
    keys = {ok(r)["access_key_id"] for r in run.results}
    assert len(keys) == 1
    assert imds.stats()["credential_fetches"] == 1


def test_provider_refetches_credentials_expiring_within_five_minutes(imds_factory, probe):
    imds = imds_factory(credential_ttl=120)
    run = probe(imds, "provider-creds", "provider-creds", "provider-creds")
    for r in run.results:
        ok(r)
    assert imds.stats()["credential_fetches"] == 3
    assert run.final["token_fetches"] == 1


def test_provider_picks_up_rotated_credentials(imds_factory, probe):
    imds = imds_factory(credential_ttl=120)
    run = probe(imds, "provider-creds", "pause", "provider-creds", start_only=True)
    first = ok(run.until_pause()[0])
    imds.control({"rotate_credentials": True})
    run.resume()
    second = ok(run.finish().results[1])
    assert second["access_key_id"] != first["access_key_id"]
    assert second["token_sha256"] != first["token_sha256"]


def test_provider_refreshes_five_minutes_before_expiration(imds, probe):
    # Server credentials live 6 hours. The provider's clock (the test seam) jumps ahead: at
    # +5h50m they are still fresh; at +5h56m they are inside the 5-minute window.
    run = probe(imds, "provider-creds", "pause", "advance", 21000, "provider-creds",
                "advance", 360, "provider-creds", start_only=True)
    first = ok(run.until_pause()[0])
    imds.control({"rotate_credentials": True})
    run.resume()
    run.finish()
    cached, refreshed = ok(run.results[2]), ok(run.results[4])
    assert cached["access_key_id"] == first["access_key_id"]
    assert refreshed["access_key_id"] != first["access_key_id"]
    assert imds.stats()["credential_fetches"] == 2


def test_provider_keeps_valid_credentials_when_refresh_fails(imds, probe):
    run = probe(imds, "provider-creds", "advance", 21400, "pause", "provider-creds",
                "advance", 400, "provider-creds", flags=["--retry-deadline-ms", "800"],
                start_only=True)
    first = ok(run.until_pause()[0])
    imds.control({"fail_next": 100000, "status": 503})
    run.resume()
    run.finish()
    # Inside the refresh window, IMDS failing: the old set is still valid, so it is used.
    kept = ok(run.results[2])
    assert kept["access_key_id"] == first["access_key_id"]
    assert kept["token_sha256"] == first["token_sha256"]
    # Past Expiration there is nothing valid left to fall back on.
    failed(run.results[4], errno.ETIME)


def test_provider_invalidate_forces_a_fetch(imds, probe):
    run = probe(imds, "provider-creds", "invalidate", "provider-creds")
    ok(run.results[0])
    ok(run.results[2])
    assert imds.stats()["credential_fetches"] == 2


def test_environment_credentials_win(imds, probe, agent_env):
    env = agent_env(imds=imds, creds=("AKIDENVIRONMENT00001", "env-secret", "env-token"))
    run = probe(imds, "provider-creds", env=env)
    r = ok(run.results[0])
    assert r["source"] == "environment"
    assert r["access_key_id"] == "AKIDENVIRONMENT00001"
    assert r["expiration"] is None
    assert run.final["requests"] == 0
    assert "env-secret" not in json.dumps(run.results)


def test_half_set_environment_is_an_error(imds, probe, agent_env):
    env = agent_env(imds=imds, AWS_ACCESS_KEY_ID="AKIDENVIRONMENT00001")
    run = probe(imds, "provider-creds", env=env)
    failed(run.results[0], errno.EINVAL)
    assert imds.stats()["credential_fetches"] == 0
