#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Sign one request with botocore's SigV4Auth at a fixed time and print the result.

test_sigv4_botocore.c runs this with Debian's /usr/bin/python3 (python3-botocore) and compares
the output with our sigv4_sign(). Output on stdout: line 1 is the Authorization header value,
the rest is botocore's canonical request (so that a mismatch can be told apart: canonicalisation
or key/signature). Only public example credentials (AKIDEXAMPLE) are ever passed in.

botocore adds X-Amz-Date itself, and X-Amz-Security-Token when the credentials carry a session
token, and takes Host from the URL; the caller passes only the other headers.
"""

import argparse
import datetime
import sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--timestamp", required=True, help="YYYYMMDDTHHMMSSZ")
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--session-token")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    p.add_argument("--body", default="")
    a = p.parse_args()

    when = datetime.datetime.strptime(a.timestamp, botocore.auth.SIGV4_TIMESTAMP)
    headers = {}
    for h in a.header:
        name, sep, value = h.partition(":")
        if not sep:
            p.error(f"--header needs 'Name: value': {h!r}")
        headers[name.strip()] = value.strip()

    request = AWSRequest(method=a.method, url=a.url, data=a.body.encode(), headers=headers)
    signer = botocore.auth.SigV4Auth(
        Credentials(a.access_key, a.secret_key, a.session_token), a.service, a.region
    )
    # Keep the canonical request add_auth() signs (recomputing it afterwards would take in the
    # Authorization header it has added by then).
    signed = []
    canonical_request = signer.canonical_request

    def capture(req):
        signed.append(canonical_request(req))
        return signed[-1]

    signer.canonical_request = capture

    # Freeze the clock the way botocore's own tests do (tests/unit/auth/test_sigv4.py):
    # SigV4Auth.add_auth() reads datetime.datetime.utcnow() and overwrites
    # request.context['timestamp'] with it, so setting the context alone would not stick.
    with mock.patch.object(
        botocore.auth.datetime, "datetime", mock.Mock(wraps=datetime.datetime)
    ) as fake:
        fake.utcnow.return_value = when
        signer.add_auth(request)

    if request.headers.get("X-Amz-Date") != a.timestamp:
        sys.exit(f"botocore signed with X-Amz-Date {request.headers.get('X-Amz-Date')!r}")
    print(request.headers["Authorization"])
    if len(signed) != 1:
        sys.exit(f"botocore computed {len(signed)} canonical requests, expected 1")
    print(signed[0])


if __name__ == "__main__":
    main()
