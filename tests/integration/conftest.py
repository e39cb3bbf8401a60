# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the integration tests: real peers on loopback, started and stopped by PID.

Peers: moto's server (AWS APIs), tests/peers/imds_server.py (IMDSv2) and
tests/peers/fault_proxy.py (faults in front of moto).  Every server binds 127.0.0.1 only and is
stopped by the PID recorded when it was started.  The session starts with a guard that keeps
this process and its children away from the real metadata service and real AWS.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "peers"
LOG_DIR = REPO / "build" / "test-logs"
sys.path.insert(0, str(PEERS))

import moto_auth as _moto_auth  # noqa: E402  (tests/peers is not a package)
from peers import (NO_MOTO, FaultProxy, Imds, Peer, PeerError,  # noqa: E402
                   dead_loopback_url, find_moto_python, is_loopback_url, log_tail,
                   reset_moto, start_peer_script)
from peers import start_moto as _start_moto  # noqa: E402
from dist_rig import ACCOUNT, MOTO_AMI, SRC, Rig, rig_of  # noqa: E402
from iam_policy import POLICY, policy_user  # noqa: E402
import rootfs  # noqa: E402

PROBE_TIMEOUT_S = 120  # the bound on one probe call
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "ALL_PROXY", "no_proxy", "NO_PROXY")


# ---------------------------------------------------------------- safety guard


_guarded = False


def guard_environment():
    """Refuse to run if AWS endpoints point off the machine; then pin this process so that
    nothing (botocore's credential chain, urllib) can reach 169.254.169.254 or AWS."""
    for var in ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        if os.environ.get(var) and not is_loopback_url(os.environ[var]):
            pytest.exit("refusing to run: %s=%s is not loopback" % (var, os.environ[var]), 2)
    for var in PROXY_VARS:
        # A proxy would carry our loopback requests elsewhere (urllib and botocore honour it).
        os.environ.pop(var, None)
    for var in list(os.environ):
        if var.startswith("AWS_") and var != "AWS_CA_BUNDLE":
            del os.environ[var]
    os.environ.update({
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": dead_loopback_url(),
        "AWS_ENDPOINT_URL": dead_loopback_url(),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    global _guarded
    _guarded = True


def pytest_sessionstart(session):
    guard_environment()


@pytest.fixture(scope="session", autouse=True)
def _safety_guard():
    # pytest_sessionstart only runs for conftests loaded at start-up (e.g. not when pytest is
    # pointed at tests/): make sure the guard ran before any fixture starts a peer.
    if not _guarded:
        guard_environment()


# ---------------------------------------------------------------- process plumbing
# The plumbing itself (ports, PIDs, Peer, moto) lives in tests/peers/peers.py; what is left here
# turns its failures into test failures and names the logs after the test.


_log_counts = {}


def log_path(name, request):
    """build/test-logs/<test name>-<peer>-<n>.log, n counting the peers of that kind the test
    started; a later run overwrites its own earlier logs instead of piling them up."""
    node = "session" if request.scope == "session" else request.node.name
    stem = "%s-%s" % (re.sub(r"[^A-Za-z0-9_.-]+", "_", node)[:80], name)
    n = _log_counts.get(stem, 0)
    _log_counts[stem] = n + 1
    return LOG_DIR / ("%s-%d.log" % (stem, n))


def start_script(name, script, args, request, tmp_dir, cls=Peer):
    """Run one of tests/peers/*.py on port 0 and learn its port from --port-file."""
    try:
        return start_peer_script(name, script, args, log_path(name, request), tmp_dir, cls)
    except PeerError as e:
        pytest.fail(str(e))


# ---------------------------------------------------------------- moto


@pytest.fixture(scope="session")
def moto_python():
    """The python3 that can run moto.server (fails the test with a clear message if none)."""
    py = find_moto_python()
    if py is None:
        pytest.fail(NO_MOTO, pytrace=False)
    return py


def start_moto(py, request):
    """Start moto.server on a free loopback port (retrying if another process took it)."""
    try:
        return _start_moto(py, log_path("moto", request))
    except PeerError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def moto_session(moto_python, request):
    """One moto server for the whole session (started on first use)."""
    peer = start_moto(moto_python, request)
    yield peer
    peer.stop()


@pytest.fixture
def moto(moto_session):
    """The session's moto server, emptied (POST /moto-api/reset) before each test."""
    if moto_session.proc.poll() is not None:
        pytest.fail("moto server died:\n%s" % log_tail(moto_session.log), pytrace=False)
    reset_moto(moto_session)
    return moto_session


def start_moto_auth(py, request, prepare=None):
    """A dedicated moto with authentication on (it cannot be switched off again), stopped
    afterwards: a fixture yields from it. prepare(url), when given, runs while auth is off.

    Yields the Peer with .access_key_id and .secret_access_key of an IAM user allowed
    ec2/iam/kms/ssm/sts, and .creds == (access_key_id, secret_access_key)."""
    peer = start_moto(py, request)
    try:
        if prepare:
            prepare(peer.url)
        peer.access_key_id, peer.secret_access_key = _moto_auth.enable_moto_auth(peer.url)
        peer.creds = (peer.access_key_id, peer.secret_access_key)
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def moto_auth(moto_python, request):
    """start_moto_auth's peer."""
    yield from start_moto_auth(moto_python, request)


# ---------------------------------------------------------------- IMDS and fault proxy


@pytest.fixture
def imds_factory(request, tmp_path):
    """imds_factory(**overrides) -> Imds: an IMDSv2 server; each keyword becomes a flag of
    imds_server.py (role_name="r" -> --role-name r; True -> bare flag; None/False -> omitted)."""
    started = []

    def start(**overrides):
        args = []
        for k, v in overrides.items():
            if v is None or v is False:
                continue
            args.append("--" + k.replace("_", "-"))
            if v is not True:
                args.append(str(v))
        peer = start_script("imds", "imds_server.py", args, request, tmp_path, Imds)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def imds(imds_factory):
    """An IMDSv2 server with the default data (tests/data/imds)."""
    return imds_factory()


@pytest.fixture
def fault_proxy(request, tmp_path):
    """fault_proxy(upstream=None) -> FaultProxy in front of UPSTREAM (default: the `moto`
    fixture's server, reset for this test)."""
    started = []

    def start(upstream=None):
        if upstream is None:
            upstream = request.getfixturevalue("moto").url
        upstream = getattr(upstream, "url", upstream)
        peer = start_script("fault-proxy", "fault_proxy.py", ["--upstream", upstream],
                            request, tmp_path, FaultProxy)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


# ---------------------------------------------------------------- the agent under test


@pytest.fixture
def agent_bin():
    """Path of the built agent: $EC2_IMAGED_BIN or <repo>/build/ec2-imaged (else skip)."""
    path = os.environ.get("EC2_IMAGED_BIN") or str(REPO / "build" / "ec2-imaged")
    if not os.access(path, os.X_OK):
        pytest.skip("agent binary %s not built (run make, or set EC2_IMAGED_BIN)" % path)
    return path


@pytest.fixture
def agent_env(tmp_path):
    """agent_env(imds=None, endpoint=None, creds=None, **extra) -> dict for the agent's env.

    Starts from a minimal environment (no AWS_*, no proxies, HOME in tmp) so nothing from the
    developer's machine leaks in; both endpoints always point at loopback (a dead port when not
    given), so the agent can never reach 169.254.169.254 or AWS.  imds/endpoint are peers or
    URLs; creds is (akid, secret[, token]); extra entries are added last."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def make(imds=None, endpoint=None, creds=None, **extra):
        imds_url = getattr(imds, "url", imds) or dead_loopback_url()
        endpoint_url = getattr(endpoint, "url", endpoint) or dead_loopback_url()
        for url in (imds_url, endpoint_url):
            assert is_loopback_url(url), "refusing non-loopback endpoint %s" % url
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "TZ": "UTC", "HOME": str(home),
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_url,
               "AWS_ENDPOINT_URL": endpoint_url,
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MSAN_OPTIONS"):
            if var in os.environ:
                env[var] = os.environ[var]
        if creds:
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = creds[0], creds[1]
            if len(creds) > 2 and creds[2]:
                env["AWS_SESSION_TOKEN"] = creds[2]
        env.update({k: str(v) for k, v in extra.items()})
        return env

    return make


@pytest.fixture
def aws_probe(agent_env):
    """aws_probe(NAME) -> run(endpoint, *args, creds=None, **env) -> (json, stderr): runs
    build/tools/NAME (or $EC2_IMAGED_TOOLS/NAME; the test skips when it is not built) with
    `--endpoint URL ARGS...` in agent_env(endpoint, creds, **env), and checks that its exit
    status agrees with the "ok" of the JSON object it prints."""
    def probe(name):
        tools = os.environ.get("EC2_IMAGED_TOOLS") or str(REPO / "build" / "tools")
        path = os.path.join(tools, name)
        if not os.access(path, os.X_OK):
            pytest.skip("%s not built (make build/tools/%s)" % (path, name))

        def run(endpoint, *args, creds=None, **env):
            url = getattr(endpoint, "url", endpoint)
            p = subprocess.run([path, "--endpoint", url, *[str(a) for a in args]],
                               env=agent_env(endpoint=url, creds=creds, **env),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=PROBE_TIMEOUT_S)
            out = json.loads(p.stdout)
            assert p.returncode == (0 if out["ok"] else 1), (out, p.stderr)
            return out, p.stderr
        return run
    return probe


@pytest.fixture
def have_tool():
    """have_tool(name) -> path, or skip the test when the tool is not installed."""
    def check(name):
        path = shutil.which(name)
        if not path:
            pytest.skip("%s not installed" % name)
        return path
    return check


@pytest.fixture(scope="module")
def debian_rootfs():
    """The Debian root filesystem (tests/peers/rootfs.py) the sanitize tests clone, built once
    and kept; the test skips where it cannot be built here, and fails where the build fails."""
    why = rootfs.unavailable()
    if why:
        pytest.skip(why)
    try:
        return rootfs.ensure(log=str(LOG_DIR / "rootfs-build.log"))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        pytest.fail("cannot build the Debian root filesystem: %s" % e)


# ---------------------------------------------------------------- the distribution tests' rig
# tests/peers/dist_rig.py, for test_distribute.py and the tests built on it. A test file with a
# rig of its own (test_run.py, test_daemon.py) defines its own `rig`, which overrides this one.


@pytest.fixture
def rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    instance_id = _moto_auth.create_moto_instance(moto.url, region=SRC, image_id=MOTO_AMI)
    yield from rig_of(instance_id, tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin)


@pytest.fixture
def auth_rig(tmp_path, moto_auth, fault_proxy, imds_factory, agent_env, agent_bin):
    """A rig on a moto with IAM enforcement, whose agent has only the policy document given
    (auth_rig(document), default conf/iam-policy.json byte for byte).  moto_auth's admin sets up
    the instance, keys and template."""
    admin = moto_auth.creds
    instance_id = _moto_auth.create_moto_instance(moto_auth.url, creds=admin, region=SRC,
                                                  image_id=MOTO_AMI)
    imds = imds_factory(instance_id=instance_id, region=SRC, account_id=ACCOUNT)
    proxy = fault_proxy(moto_auth)
    rigs = []

    def make(document=None):
        creds = policy_user(moto_auth.url, admin, "ec2-imaged-%d" % len(rigs),
                            document or POLICY.read_text())
        r = Rig(tmp_path / ("rig%d" % len(rigs)), moto_auth, proxy,
                agent_env(imds=imds, endpoint=proxy, creds=creds), agent_bin, instance_id)
        r.admin = admin
        r.ec2 = lambda region=SRC: _moto_auth.client(moto_auth.url, "ec2", admin, region)
        rigs.append(r)
        return r

    (tmp_path / "rig0").mkdir()
    (tmp_path / "rig1").mkdir()
    try:
        yield make
    finally:
        for r in rigs:
            r.close()


# ---------------------------------------------------------------- skips the README allows
# `make check` passes --allowed-skips=tests/allowed-skips.txt: a skip that file does not list
# (a missing tool, a peer that could not start) fails the run, so that a green run is a whole
# run. Each line of the file is "TEST_ID: REASON", the test's id from the top of the repository
# and the start of the reason it gives; each line allows that test to skip once.


_skipped = []
_config = None


def pytest_addoption(parser):
    parser.addoption("--allowed-skips", metavar="FILE",
                     help="fail the run when a test skips for a reason FILE does not list")


def pytest_configure(config):
    global _config
    _config = config


def _record_skip(report):
    """Note a skip (not an xfail) as (test id from the top of the repository, reason)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    path, sep, rest = report.nodeid.partition("::")
    test = os.path.relpath(_config.rootpath / path, REPO) + sep + rest
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if reason.startswith("Skipped: "):
        reason = reason[len("Skipped: "):]
    _skipped.append((test, reason))


def pytest_runtest_logreport(report):
    _record_skip(report)


def pytest_collectreport(report):
    _record_skip(report)


def read_allowed_skips(path):
    """[(test id, reason prefix)] from an allowed-skips file; '#' starts a comment line."""
    allowed = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        test, sep, reason = line.partition(": ")
        if not sep or "::" not in test or not reason.strip():
            raise pytest.UsageError("%s:%d: not 'TEST_ID: REASON': %r" % (path, n, line))
        allowed.append((test.strip(), reason.strip()))
    return allowed


def unlisted_skips(skipped, allowed):
    """The skips that no line of allowed accounts for (each line allows one)."""
    left = list(allowed)
    out = []
    for test, reason in skipped:
        match = next((a for a in left if a[0] == test and reason.startswith(a[1])), None)
        if match:
            left.remove(match)
        else:
            out.append((test, reason))
    return out


def _unlisted(config):
    path = config.getoption("allowed_skips")
    return unlisted_skips(_skipped, read_allowed_skips(path)) if path else []


def pytest_sessionfinish(session, exitstatus):
    if _unlisted(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bad = _unlisted(config)
    if bad:
        terminalreporter.section("skips that %s does not list"
                                 % config.getoption("allowed_skips"), red=True)
        for test, reason in bad:
            terminalreporter.line("%s: %s" % (test, reason))
        terminalreporter.line("A test may skip only for a reason the README lists (Tests).")
