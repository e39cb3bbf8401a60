# SPDX-License-Identifier: Apache-2.0
"""Process plumbing for the test peers, shared by the pytest fixtures, the demo and the benchmarks.

Starts moto's server and the scripts of tests/peers/ on free loopback ports and stops them by the
PID recorded when they were started, never by name.  Nothing here knows about pytest: a peer that
does not come up raises PeerError with the tail of its log, and the caller decides what that
means (a failed test, a demo that stops with a message).

Standard library only, so that Debian's python3 can import it without pip.
"""

import glob
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

PEERS = Path(__file__).resolve().parent
REPO = PEERS.parents[1]

NO_MOTO = "no python3 with moto[server] found; set MOTO_PYTHON or pip install 'moto[server]'"


class PeerError(Exception):
    """A peer could not be started (the message carries the tail of its log)."""


# ---------------------------------------------------------------- loopback addresses


def is_loopback_url(url):
    """Whether URL names a loopback host (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port():
    """A loopback TCP port that was free a moment ago (callers retry if another took it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def dead_loopback_url():
    """A loopback URL nothing listens on: anything sent there fails fast and stays local."""
    return "http://127.0.0.1:%d" % free_port()


# ---------------------------------------------------------------- processes


def stop_pid(proc):
    """Stop one child we started: SIGTERM, wait, SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def log_tail(path, n=20):
    """The last N lines of a log file ('' when it cannot be read)."""
    try:
        return "".join(Path(path).read_text(errors="replace").splitlines(True)[-n:])
    except OSError:
        return ""


class StderrFile:
    """For a process a test started with its stderr in the file self.err_path: self.err, which
    save_err() keeps in memory before the (scratch) filesystem the file lives on goes away."""

    saved_err = None

    @property
    def err(self):
        if self.saved_err is not None:
            return self.saved_err
        return self.err_path.read_text(errors="replace")

    def save_err(self):
        try:
            self.saved_err = self.err_path.read_text(errors="replace")
        except OSError:
            self.saved_err = ""


class Peer:
    """A started server: .url, .port, .pid, .log (path), .proc; stop() by its PID."""

    def __init__(self, name, proc, port, log):
        self.name, self.proc, self.port, self.log = name, proc, port, log
        self.pid = proc.pid
        self.url = "http://127.0.0.1:%d" % port

    def stop(self):
        stop_pid(self.proc)

    def alive(self):
        return self.proc.poll() is None

    def call(self, method, path, body=None):
        """JSON request to the peer itself (control APIs)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def __repr__(self):
        return "<%s pid=%d %s>" % (self.name, self.pid, self.url)


class Imds(Peer):
    """tests/peers/imds_server.py."""

    def control(self, knobs):
        """POST knobs to /_control/ (see imds_server.py); returns the JSON answer."""
        return self.call("POST", "/_control/", knobs)

    def stats(self):
        return self.call("GET", "/_control/stats")

    def reset(self):
        return self.call("POST", "/_control/reset", {})


class FaultProxy(Peer):
    """tests/peers/fault_proxy.py."""

    def faults(self, *faults):
        """Queue faults: dicts with kind, count, delay_ms, action (see fault_proxy.py)."""
        return self.call("POST", "/_control/faults", {"faults": list(faults)})

    def requests(self):
        return self.call("GET", "/_control/requests")

    def clear(self):
        return self.call("POST", "/_control/clear", {})

    def release(self):
        """Let the requests held by `hold` faults go on."""
        return self.call("POST", "/_control/release", {})

    def stats(self):
        return self.call("GET", "/_control/stats")


def start_peer_script(name, script, args, log_path, tmp_dir, cls=Peer, python=None):
    """Run tests/peers/SCRIPT on port 0 of 127.0.0.1 and learn its port from --port-file.

    Output goes to LOG_PATH; the port file is written under TMP_DIR.  Returns CLS(name, proc,
    port, log_path); raises PeerError (after stopping the process) when it does not come up."""
    port_file = Path(tmp_dir) / ("%s-%d.port" % (name, time.monotonic_ns()))
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [python or sys.executable, str(PEERS / script), "--host", "127.0.0.1", "--port", "0",
             "--port-file", str(port_file)] + [str(a) for a in args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 20
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc)
            raise PeerError("%s did not start:\n%s" % (name, log_tail(log_path)))
        time.sleep(0.02)
    port = int(port_file.read_text())
    port_file.unlink()
    return cls(name, proc, port, log_path)


# ---------------------------------------------------------------- moto


def _imports_moto(py):
    try:
        return subprocess.run([py, "-c", "import moto.server"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_moto_python():
    """MOTO_PYTHON, then each python3 on PATH, then pyenv versions: the first importing moto,
    or None."""
    candidates = []
    if os.environ.get("MOTO_PYTHON"):
        candidates.append(os.environ["MOTO_PYTHON"])
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and os.access(os.path.join(d, "python3"), os.X_OK):
            candidates.append(os.path.join(d, "python3"))
    for root in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")):
        if root:
            candidates += sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3")),
                                 reverse=True)
    seen = set()
    for py in candidates:
        if py not in seen:
            seen.add(py)
            if _imports_moto(py):
                return py
    return None


def _moto_answers(url):
    # GET on the reset endpoint is refused with 400 by moto and changes nothing: it proves the
    # port is ours (a moto) and that it is serving.
    try:
        urllib.request.urlopen(url + "/moto-api/reset", timeout=2)
    except urllib.error.HTTPError as e:
        return e.code == 400
    except OSError:
        return False
    return False


def start_moto(py, log_path):
    """Start moto's server with python PY on a free loopback port, retrying with another port
    if some other process took the one picked, through moto_server.py, which gives it EC2's
    unique AMI names and CopyImage's ClientToken.  Every attempt's output is kept in LOG_PATH.
    Returns a Peer; raises PeerError when moto does not come up."""
    for attempt in range(3):
        port = free_port()
        with open(log_path, "ab" if attempt else "wb") as out:
            proc = subprocess.Popen([py, str(PEERS / "moto_server.py"), "-H", "127.0.0.1", "-p",
                                     str(port)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True, env=dict(os.environ))
        peer = Peer("moto", proc, port, log_path)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _moto_answers(peer.url):
                return peer
            time.sleep(0.1)
        stop_pid(proc)
    raise PeerError("moto.server did not start:\n%s" % log_tail(log_path))


def reset_moto(peer):
    """Empty a moto server (POST /moto-api/reset)."""
    req = urllib.request.Request(peer.url + "/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=30).close()


# ---------------------------------------------------------------- scripts: demo and benchmarks

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "ALL_PROXY", "no_proxy", "NO_PROXY")
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def pin_environ_to_loopback():
    """Keep this process (botocore, urllib) and what it starts away from the real metadata
    service and real AWS: no proxies, no AWS_* settings from the caller, both endpoints on a
    dead loopback port and no shared config or credential files."""
    for var in list(os.environ):
        if var in PROXY_VARS or (var.startswith("AWS_") and var != "AWS_CA_BUNDLE"):
            del os.environ[var]
    os.environ.update({
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": dead_loopback_url(),
        "AWS_ENDPOINT_URL": dead_loopback_url(),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })


def minimal_env(home, imds_url=None, endpoint_url=None, **extra):
    """A minimal environment (as `env -i`) for the agent or a tool: PATH, LANG, TZ, HOME and
    both endpoints, always loopback (a dead port when not given); extra entries are added last.
    Raises ValueError for a non-loopback endpoint."""
    imds_url = imds_url or dead_loopback_url()
    endpoint_url = endpoint_url or dead_loopback_url()
    for url in (imds_url, endpoint_url):
        if not is_loopback_url(url):
            raise ValueError("refusing non-loopback endpoint %s" % url)
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "TZ": "UTC", "HOME": str(home),
           "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_url, "AWS_ENDPOINT_URL": endpoint_url,
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env.update({k: str(v) for k, v in extra.items()})
    return env


class LocalAws:
    """moto, one instance in it and an IMDS server describing that instance, all on loopback:
    what the agent sees on a real instance.  Optionally a fault proxy in front of moto, which
    is then .endpoint (else .endpoint is moto's URL).  close() stops every peer by its PID.

        with LocalAws(tmp_dir) as aws:
            aws.instance_id, aws.endpoint, aws.imds.url, aws.moto.url, aws.proxy
    """

    def __init__(self, tmp_dir, moto_python=None, region="us-east-1",
                 account_id="123456789012", fault_proxy=False, imds_args=()):
        # Imported here: moto_auth needs botocore, which peers.py itself does not.
        import moto_auth

        self.tmp_dir, self.region, self.account_id = Path(tmp_dir), region, account_id
        self.moto = self.imds = self.proxy = None
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        py = moto_python or find_moto_python()
        if py is None:
            raise PeerError(NO_MOTO)
        try:
            self.moto = start_moto(py, self.tmp_dir / "moto.log")
            self.instance_id = moto_auth.create_moto_instance(self.moto.url, region=region)
            self.imds = start_peer_script(
                "imds", "imds_server.py",
                ["--instance-id", self.instance_id, "--region", region,
                 "--availability-zone", region + "a", "--account-id", account_id]
                + list(imds_args),
                self.tmp_dir / "imds.log", self.tmp_dir, Imds)
            if fault_proxy:
                self.proxy = start_peer_script("fault-proxy", "fault_proxy.py",
                                               ["--upstream", self.moto.url],
                                               self.tmp_dir / "fault-proxy.log", self.tmp_dir,
                                               FaultProxy)
        except BaseException:
            self.close()
            raise
        self.endpoint = (self.proxy or self.moto).url

    @property
    def peers(self):
        return [p for p in (self.moto, self.imds, self.proxy) if p is not None]

    def ec2(self):
        """A botocore EC2 client on moto itself, with moto's dummy credentials."""
        import moto_auth

        return moto_auth.client(self.moto.url, "ec2", region=self.region)

    def close(self):
        """Stop every peer that was started, by PID, last started first."""
        for peer in reversed(self.peers):
            peer.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
