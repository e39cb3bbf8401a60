#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""IMDSv2 test server: a loopback stand-in for http://169.254.169.254.

It follows the documented Instance Metadata Service protocol closely enough that real clients
(botocore's fetchers, Debian's ec2-metadata script via http_proxy) work against it unchanged:
session tokens from PUT /latest/api/token with a TTL, 401 for a missing, unknown or expired
token, 400 for a bad TTL, 403 for a token PUT carrying X-Forwarded-For, directory listings with
trailing '/' on subdirectories, dated version prefixes, rotating role credentials and the
instance identity document.  Its data comes from the Amazon EC2 Metadata Mock default values
(tests/data/imds), with command-line overrides so that tests can line it up with moto.

Tests steer it through a control API on the same port under /_control/ (see Handler._control).
Standard library only: this runs under Debian's python3 with no pip.

Never logs a token, key or session token: one line per request with method, path and status.
"""

import argparse
import base64
import json
import math
import os
import re
import secrets
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from serving import serve_until_stopped  # this script's own folder (tests/peers)

# The versions real IMDS lists at GET /; every one serves the same tree here.
VERSIONS = [
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
    "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12", "2014-02-25",
    "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02", "2018-03-28",
    "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03", "2021-03-23",
    "2021-07-15", "2022-09-24", "latest",
]
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600


def default_data_path():
    """The AEMM defaults file: $EC2_IMAGED_TESTDATA/imds/..., else the repository's tests/data."""
    name = os.path.join("imds", "aemm-metadata-default-values.json")
    base = os.environ.get("EC2_IMAGED_TESTDATA")
    if base:
        return os.path.join(base, name)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(repo, "tests", "data", name)


def iso8601(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def imds_json(obj):
    # Real IMDS pretty-prints its JSON with a space on both sides of the colon; keeping that
    # shape makes clients' JSON parsers face what they will face on EC2.
    return json.dumps(obj, indent=2, separators=(",", " : "))


def random_key(n, alphabet=string.ascii_uppercase + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class State:
    """Everything mutable, behind one lock: tokens, credentials, knobs and statistics."""

    def __init__(self, args, userdata):
        self.lock = threading.Lock()
        self.args = args
        self.tokens = {}  # token -> monotonic expiry time
        self.rotations = 0
        self.issued = []
        self.creds = None
        self.initial_user_data = userdata
        self.reset_knobs()
        self.reset_stats()
        self.issue_credentials()

    def reset_knobs(self):
        self.fail_next = 0
        self.fail_status = 503
        self.fail_prefix = None
        self.delay_ms = 0
        self.refuse_tokens = None  # None, or the status a token PUT answers
        self.allow_imdsv1 = self.args.allow_imdsv1
        self.credential_ttl = self.args.credential_ttl
        self.rotate_on_fetch = False
        self.secret_marker = ""
        self.user_data = self.initial_user_data

    def reset_stats(self):
        self.stats = {"total": 0, "token_puts": 0, "tokens_issued": 0, "gets": {},
                      "status": {}, "unauthorized": 0, "absolute_form": 0,
                      "credential_fetches": 0}

    def issue_credentials(self):
        """Issue a fresh credential set, as IMDS does when the previous one expires.

        Keys given on the command line (to match a key moto knows) are kept across rotations;
        the token is kept too when given, since moto checks an assumed role's exact token.
        """
        a, now = self.args, time.time()
        self.rotations += 1
        # With secret_marker set, every secret and token starts and ends with it, so that a
        # test can look for the marker wherever a secret must never appear.
        mark = self.secret_marker
        secret = random_key(40 - 2 * len(mark), string.ascii_letters + string.digits + "/+")
        self.creds = {
            "Code": "Success",
            "LastUpdated": iso8601(now),
            "Type": "AWS-HMAC",
            "AccessKeyId": a.access_key_id or "ASIAIMDSTEST%08d" % self.rotations,
            "SecretAccessKey": a.secret_access_key or mark + secret + mark,
            "Token": a.session_token
            or mark + base64.b64encode(secrets.token_bytes(600)).decode() + mark,
            # Whole seconds, rounded up: never earlier than the moment they stop being served.
            "Expiration": iso8601(math.ceil(now + self.credential_ttl)),
        }
        self.creds_expiry = now + self.credential_ttl
        # What was issued when, without the secrets (GET /_control/stats).
        self.issued.append({"access_key_id": self.creds["AccessKeyId"], "issued": now,
                            "expires": float(math.ceil(now + self.credential_ttl))})

    def current_credentials(self):
        # Credentials are dated by the wall clock (Expiration is wall time), unlike tokens. As
        # IMDS does, new ones are served before the old ones expire (it says at least five
        # minutes before; a third of the lifetime for short ones), never expired ones.
        if time.time() >= self.creds_expiry - min(300, self.credential_ttl / 3):
            self.issue_credentials()
        return self.creds


class Tree:
    """The metadata tree: relative path ("meta-data/instance-id") -> value (str or callable)."""

    def __init__(self, data, args, state):
        md = data["metadata"]
        dyn = data["dynamic"]
        values = dict(md["values"])
        role = args.role_name or values["iam-security-credentials-role"]
        acct = args.account_id or values["iam-info"]["InstanceProfileArn"].split(":")[4]
        az = args.availability_zone or (args.region + "a" if args.region
                                        else values["placement-availability-zone"])
        region = args.region or az[:-1]
        values.update({"instance-id": args.instance_id or values["instance-id"],
                       "placement-availability-zone": az, "placement-region": region,
                       "mac-owner-id": acct, "ami-id": args.ami_id or values["ami-id"],
                       "instance-type": args.instance_type or values["instance-type"]})
        self.entries = {}
        paths = md["paths"]
        for key, path in paths.items():
            rel = path[len("/latest/"):]
            # A path that is also a parent of others is a directory; its listing is computed.
            if key not in values or any(p.startswith(path + "/") for p in paths.values()):
                continue
            if key.startswith("iam-"):
                continue  # served by the role-aware entries below
            v = values[key]
            self.entries[rel] = imds_json(v) if isinstance(v, (dict, list)) else str(v)
        self.entries["meta-data/events/maintenance/scheduled"] = "[]"
        # public-keys/ lists "index=name" on real IMDS, not "0/": ec2-metadata splits on '='.
        key_name = values["public-key"].split()[-1]
        self.public_keys_listing = "0=" + key_name
        if not args.no_iam_role:
            profile_id = "AIPA" + random_key(17)

            def iam_info():
                return imds_json({"Code": "Success",
                                  "LastUpdated": state.current_credentials()["LastUpdated"],
                                  "InstanceProfileArn":
                                  "arn:aws:iam::%s:instance-profile/%s" % (acct, role),
                                  "InstanceProfileId": profile_id})

            def role_creds():
                state.stats["credential_fetches"] += 1
                body = imds_json(state.current_credentials())
                # The next fetch gets a new set, as after a rotation (or a revocation).
                if state.rotate_on_fetch:
                    state.issue_credentials()
                return body

            self.entries["meta-data/iam/info"] = iam_info
            self.entries["meta-data/iam/security-credentials/" + role] = role_creds
        doc = dict(dyn["values"]["instance-identity-document"])
        doc.update({"accountId": acct, "availabilityZone": az, "region": region,
                    "instanceId": values["instance-id"], "imageId": values["ami-id"],
                    "instanceType": values["instance-type"], "privateIp": values["local-ipv4"]})
        for key, path in dyn["paths"].items():
            v = doc if key == "instance-identity-document" else dyn["values"][key]
            self.entries[path[len("/latest/"):]] = imds_json(v) if isinstance(v, dict) else v
        self.role, self.region, self.az = role, region, az

    def lookup(self, rel, user_data):
        """Return the body (bytes) for a path relative to a version root, or None for 404."""
        rel = rel.strip("/")
        if rel == "user-data":
            return None if user_data is None else user_data
        if rel in self.entries:
            v = self.entries[rel]
            return (v() if callable(v) else v).encode()
        if rel == "meta-data/public-keys":
            return self.public_keys_listing.encode()
        prefix = rel + "/" if rel else ""
        children = set()
        for p in self.entries:
            if p.startswith(prefix):
                head, sep, _ = p[len(prefix):].partition("/")
                children.add(head + "/" if sep and prefix else head)
        if not children:
            return None
        if not rel and user_data is not None:
            children.add("user-data")
        return "\n".join(sorted(children)).encode()


ERROR_PAGE = ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
              '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
              '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
              '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
              ' <head>\n  <title>%(code)d - %(reason)s</title>\n </head>\n'
              ' <body>\n  <h1>%(code)d - %(reason)s</h1>\n </body>\n</html>\n')


class Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate sends: without TCP_NODELAY every request after
    # the first on a kept-alive connection waits ~40 ms for a delayed ACK (Nagle).
    disable_nagle_algorithm = True

    # HTTP/1.1 keeps connections open, as real IMDS does and as libcurl and urllib3 expect.
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass  # replaced by log_request's single safe line

    def log_request(self, code="-", size="-"):
        # self.path never holds a token or key: those travel in headers and bodies only.
        sys.stderr.write("imds: %s %s %s\n" % (self.command, self.path, code))

    def send(self, status, body=b"", ctype="text/plain", extra=None):
        if status >= 400 and not body:
            reason = self.responses.get(status, ("Error",))[0]  # knobs may pick any status
            body = (ERROR_PAGE % {"code": status, "reason": reason}).encode()
            ctype = "text/html"
        st = self.server.state
        with st.lock:
            st.stats["status"][str(status)] = st.stats["status"].get(str(status), 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def target(self):
        # A client using http_proxy sends the absolute form ("GET http://169.254.169.254/x");
        # strip scheme and host so the ec2-metadata script can be pointed here via a proxy.
        path = self.path
        if not path.startswith("/"):
            with self.server.state.lock:
                self.server.state.stats["absolute_form"] += 1
            path = urlsplit(path).path or "/"
        path = urlsplit(path).path
        return re.sub("/{2,}", "/", path)

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        path = self.target()
        if path.startswith("/_control"):
            return self._control(path)
        st = self.server.state
        with st.lock:
            st.stats["total"] += 1
            delay = st.delay_ms
            fail = st.fail_next > 0 and (st.fail_prefix is None or path.startswith(st.fail_prefix))
            if fail:
                st.fail_next -= 1
            fail_status = st.fail_status
        self.read_body()  # keep the connection in sync even if a client sent a body
        if delay:
            time.sleep(delay / 1000.0)
        if fail:
            return self.send(fail_status)
        if path == TOKEN_PATH:
            return self._token()
        if self.command not in ("GET", "HEAD"):
            return self.send(405, extra={"Allow": "GET, HEAD"})
        return self._get(path)

    def _token(self):
        st = self.server.state
        if self.command != "PUT":
            return self.send(405, extra={"Allow": "PUT"})
        with st.lock:
            st.stats["token_puts"] += 1
            refuse = st.refuse_tokens
        # IMDS rejects token requests that went through a proxy adding X-Forwarded-For: this
        # is the documented defence against open reverse proxies on the instance.
        if self.headers.get("X-Forwarded-For") is not None:
            return self.send(403)
        if refuse:
            return self.send(refuse)
        ttl = (self.headers.get(TTL_HEADER) or "").strip()
        if not re.fullmatch(r"[0-9]{1,6}", ttl) or not 1 <= int(ttl) <= MAX_TTL:
            return self.send(400)
        token = "AQAEA" + secrets.token_urlsafe(42)
        with st.lock:
            st.tokens[token] = time.monotonic() + int(ttl)
            st.stats["tokens_issued"] += 1
        return self.send(200, token.encode(), extra={TTL_HEADER: ttl})

    def _get(self, path):
        st = self.server.state
        token = self.headers.get(TOKEN_HEADER)
        with st.lock:
            st.stats["gets"][path] = st.stats["gets"].get(path, 0) + 1
            expiry = st.tokens.get(token) if token is not None else None
            valid = expiry is not None and time.monotonic() < expiry
            # An invalid token is refused even when IMDSv1 is allowed: documented behaviour.
            if not valid and (token is not None or not st.allow_imdsv1):
                st.stats["unauthorized"] += 1
                authorized = False
            else:
                authorized = True
            user_data = st.user_data
        if not authorized:
            return self.send(401)
        if path == "/":
            return self.send(200, "\n".join(VERSIONS).encode())
        version, _, rel = path.lstrip("/").partition("/")
        if version not in VERSIONS:
            return self.send(404)
        with st.lock:
            body = self.server.tree.lookup(rel, user_data)
        if body is None:
            return self.send(404)
        extra = {}
        if valid:
            extra[TTL_HEADER] = str(max(0, int(expiry - time.monotonic())))
        return self.send(200, body, extra=extra)

    def _control(self, path):
        """Test-only knobs.  POST /_control/ (or /_control/set) with a JSON object of knobs:
        fail_next+status(+path_prefix), delay_ms, refuse_tokens(+status), expire_tokens,
        allow_imdsv1, credential_ttl, rotate_credentials, rotate_on_fetch (each fetch of the role's
        credentials is followed by a new set), user_data, secret_marker (a string every secret and
        token issued from then on starts and ends with).  GET /_control/stats (with the key ids
        issued, their issue and expiry times), POST /_control/reset.  Answers JSON; never echoes
        a secret key or token."""
        st = self.server.state
        raw = self.read_body()
        name = path[len("/_control"):].strip("/")
        if self.command == "GET" and name == "stats":
            with st.lock:
                out = json.loads(json.dumps(st.stats))
                # Counted since start (not cleared by reset): the first issue is not a rotation.
                out["credential_rotations"] = st.rotations - 1
                # Key ids are not secrets: when each set was issued and when it expires
                # (Expiration, whole seconds, as served).
                out["issued_credentials"] = list(st.issued)
                out["active_tokens"] = sum(1 for e in st.tokens.values()
                                           if e > time.monotonic())
            return self._json(200, out)
        if self.command != "POST":
            return self._json(405, {"error": "use POST, or GET /_control/stats"})
        try:
            knobs = json.loads(raw or b"{}")
            if not isinstance(knobs, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as e:
            return self._json(400, {"error": str(e)})
        with st.lock:
            if name == "reset":
                st.reset_knobs()
                st.reset_stats()
                return self._json(200, {"ok": True})
            if name not in ("", "set"):
                return self._json(404, {"error": "unknown control " + name})
            unknown = set(knobs) - {"fail_next", "status", "path_prefix", "delay_ms",
                                    "refuse_tokens", "expire_tokens", "allow_imdsv1",
                                    "credential_ttl", "rotate_credentials", "rotate_on_fetch",
                                    "user_data", "secret_marker"}
            if unknown:
                return self._json(400, {"error": "unknown knobs %s" % sorted(unknown)})
            if "fail_next" in knobs:
                st.fail_next = int(knobs["fail_next"])
                st.fail_status = int(knobs.get("status", 503))
                st.fail_prefix = knobs.get("path_prefix")
            if "delay_ms" in knobs:
                st.delay_ms = int(knobs["delay_ms"])
            if "refuse_tokens" in knobs:
                st.refuse_tokens = (int(knobs.get("status", 403))
                                    if knobs["refuse_tokens"] else None)
            if knobs.get("expire_tokens"):
                st.tokens.clear()
            if "allow_imdsv1" in knobs:
                st.allow_imdsv1 = bool(knobs["allow_imdsv1"])
            if "credential_ttl" in knobs:
                st.credential_ttl = int(knobs["credential_ttl"])
            if "secret_marker" in knobs:
                st.secret_marker = str(knobs["secret_marker"])
            if knobs.get("rotate_credentials"):
                st.issue_credentials()
            if "rotate_on_fetch" in knobs:
                st.rotate_on_fetch = bool(knobs["rotate_on_fetch"])
            if "user_data" in knobs:
                ud = knobs["user_data"]
                st.user_data = None if ud is None else ud.encode()
            return self._json(200, {"ok": True, "credential_rotations": st.rotations - 1})

    def _json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    p.add_argument("--data", default=None, help="AEMM-style JSON (default: tests/data)")
    p.add_argument("--instance-id")
    p.add_argument("--region")
    p.add_argument("--availability-zone")
    p.add_argument("--account-id")
    p.add_argument("--ami-id")
    p.add_argument("--instance-type")
    p.add_argument("--role-name")
    p.add_argument("--no-iam-role", action="store_true", help="instance without a profile")
    p.add_argument("--access-key-id")
    p.add_argument("--secret-access-key")
    p.add_argument("--session-token")
    p.add_argument("--credential-ttl", type=int, default=MAX_TTL, metavar="SECONDS")
    p.add_argument("--user-data-file")
    p.add_argument("--no-user-data", action="store_true")
    p.add_argument("--allow-imdsv1", action="store_true", help="serve tokenless GETs too")
    a = p.parse_args(argv)
    # The VM test (tests/vm) runs this as the guest's IMDS, on 169.254.169.254 inside a network
    # namespace of its own; anywhere else only loopback is allowed.
    if a.host not in ("127.0.0.1", "localhost", "::1") and not (
            a.host == "169.254.169.254" and in_private_netns()):
        p.error("refusing to bind a non-loopback address: %s" % a.host)
    return a


def in_private_netns():
    """True when this process runs in a network namespace that the VM test created
    (`ip netns add ec2i-e2e-PID`, bound under /run/netns), never in the machine's own."""
    try:
        me = os.stat("/proc/self/ns/net")
        names = [n for n in os.listdir("/run/netns") if n.startswith("ec2i-e2e-")]
    except OSError:
        return False
    for n in names:
        try:
            st = os.stat(os.path.join("/run/netns", n))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
            return True
    return False


def main(argv=None):
    args = parse_args(argv)
    with open(args.data or default_data_path(), encoding="utf-8") as f:
        data = json.load(f)
    if args.no_user_data:
        userdata = None
    elif args.user_data_file:
        with open(args.user_data_file, "rb") as f:
            userdata = f.read()
    else:
        userdata = base64.b64decode(data["userdata"]["values"]["userdata"])
    state = State(args, userdata)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = state
    server.tree = Tree(data, args, state)
    serve_until_stopped(server, args.port_file,
                        "imds: listening on %s:%d" % server.server_address[:2])


if __name__ == "__main__":
    main()
